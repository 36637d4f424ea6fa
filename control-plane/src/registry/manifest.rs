//! `models/{name}/{version}/manifest.json`: what a model is, where it came from, and the digest
//! of every artifact, signed.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, bail, ensure};
use chrono::{DateTime, Utc};
use model_wasm::ReferenceProfile;
use serde::{Deserialize, Serialize};

use crate::config::Metric;
use crate::config::TaskKind;
use crate::dataset::DatasetRecord;
use crate::store::{Key, ObjectStore};
use crate::train::TrainData;

/// Version of the manifest's JSON form; bumped on incompatible changes.
pub(super) const MANIFEST_SCHEMA_VERSION: u32 = 1;

/// A registered model version. Written by [`register`](super::register) only; read with
/// [`load_manifest`](super::load_manifest), which verifies the signature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub schema_version: u32,
    pub name: String,
    pub version: u64,
    pub created_at: DateTime<Utc>,
    pub task: TaskKind,
    /// The model's inputs, in the order the model takes them.
    pub features: Vec<FeatureSchema>,
    pub output: OutputSchema,
    /// The model family, e.g. `random_forest`.
    pub family: String,
    /// Hyperparameters of the chosen candidate.
    pub params: BTreeMap<String, serde_json::Value>,
    /// Held-out metrics by name (`f1`, `rmse`, ...).
    pub metrics: BTreeMap<String, f64>,
    /// The metric that selected this model and gates its promotion.
    pub selection_metric: Metric,
    pub dataset: DatasetRef,
    pub run_id: String,
    /// Every artifact stored beside the manifest, by file name.
    pub artifacts: BTreeMap<String, ArtifactInfo>,
    /// What the training data looked like, for drift detection.
    pub reference_profile: ReferenceProfile,
    /// A few test rows (feature order), for smoke tests and the web page.
    pub sample_rows: Vec<Vec<f64>>,
    /// Where a model made elsewhere came from (`wasmline models import`); absent for versions the
    /// pipeline trained, whose `dataset` and `run_id` tell.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lineage: Option<Lineage>,
    /// ed25519 over [`Manifest::canonical_bytes`].
    #[serde(default)]
    pub signature: Option<Signature>,
}

/// One input of the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureSchema {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: FeatureType,
    /// The smallest and largest value seen in the training data.
    pub min: f64,
    pub max: f64,
    /// For an ordinal-encoded column: the category of each code (value `k` is `categories[k]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub categories: Option<Vec<String>>,
    /// Whether the model takes a missing value (NaN, `null`) here ([`ModelIr::accepts_missing`](
    /// model_wasm::ModelIr::accepts_missing)); edges and browsers refuse one where it is false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub missing: bool,
}

/// Every model input is a number (categorical columns are encoded before training).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeatureType {
    Float,
}

/// What the model predicts: the target column, and for a classifier its classes in index order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputSchema {
    pub target: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classes: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatasetRef {
    pub name: String,
    pub version: u64,
}

impl std::fmt::Display for DatasetRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}", self.name, self.version)
    }
}

/// Where an imported version came from, and what its registration could not give it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lineage {
    /// One line: `imported from model.json (sha256 ab12..., xgboost, xgboost 2.1.3)`.
    pub summary: String,
    /// The model file as it was given, kept as the artifact [`SourceModel::artifact`].
    pub source: SourceModel,
    /// Why there is no `model.onnx`, when there is none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_onnx: Option<String>,
    /// The rows behind the reference profile, the sample rows and the metrics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference_data: Option<ReferenceData>,
    /// Why the reference profile is empty (drift is not monitored) and there are no metrics, when
    /// there was no reference data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_drift_reference: Option<String>,
    /// What the importer noted: what the IR does not keep of the original, metadata not used.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// An imported model file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceModel {
    /// The path as the user gave it.
    pub file: String,
    pub sha256: String,
    pub size: u64,
    /// `xgboost`, `lightgbm` or `onnx`.
    pub format: String,
    /// The library (and version) that wrote it, as the file says; empty when it does not.
    pub library: String,
    /// The artifact holding its bytes (`source.json`, `source.txt`, `source.onnx`).
    pub artifact: String,
}

/// The CSV an import was given with `--reference-data`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReferenceData {
    pub file: String,
    pub sha256: String,
    pub rows: u64,
    /// The target column the metrics were computed against, if one was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

/// Size and digest of a stored artifact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactInfo {
    pub size: u64,
    /// Lowercase hex.
    pub sha256: String,
}

impl ArtifactInfo {
    pub fn of(bytes: &[u8]) -> ArtifactInfo {
        ArtifactInfo {
            size: bytes.len() as u64,
            sha256: super::sha256_hex(bytes),
        }
    }
}

/// A manifest's signature (shared with every verifier).
pub use model_wasm::signature::Signature;

impl Manifest {
    /// The bytes the signature covers: the manifest as JSON without its `signature` member, with
    /// object keys sorted at every level and no whitespace.
    ///
    /// Defined on the JSON rather than on this struct so that any reader (the edge, a browser, a
    /// script) can recompute it from the stored text alone, and so that members a later schema
    /// adds are covered too. Numbers are written as serde_json writes them (shortest round-trip
    /// form), so parsing the stored manifest and re-serialising gives the same bytes.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut value = serde_json::to_value(self).expect("manifests serialise");
        if let serde_json::Value::Object(map) = &mut value {
            map.remove("signature");
        }
        canonical_json(&value)
    }

    /// `name@version`.
    pub fn id(&self) -> String {
        format!("{}@{}", self.name, self.version)
    }

    /// The feature names, in model input order.
    pub fn feature_names(&self) -> Vec<String> {
        self.features.iter().map(|f| f.name.clone()).collect()
    }

    /// Where this manifest lives in the store.
    pub fn key(&self) -> anyhow::Result<Key> {
        super::version_key(&self.name, self.version, "manifest.json")
    }
}

pub(crate) use model_wasm::signature::canonical_json;

/// Everything about a model that its registration does not decide (version, time, artifact
/// digests and signature are added by [`register`](super::register)).
#[derive(Debug, Clone, PartialEq)]
pub struct ManifestDraft {
    pub name: String,
    pub task: TaskKind,
    pub features: Vec<FeatureSchema>,
    pub output: OutputSchema,
    pub family: String,
    pub params: BTreeMap<String, serde_json::Value>,
    pub metrics: BTreeMap<String, f64>,
    pub selection_metric: Metric,
    pub dataset: DatasetRef,
    pub run_id: String,
    pub reference_profile: ReferenceProfile,
    pub sample_rows: Vec<Vec<f64>>,
    pub lineage: Option<Lineage>,
}

/// How many test rows [`ManifestDraft::from_dataset`] keeps as samples.
pub(crate) const SAMPLE_ROWS: usize = 5;

impl ManifestDraft {
    /// A draft with everything the dataset tells: task, feature schema (ranges from `train`,
    /// categories of ordinal-encoded columns), output, dataset reference, the reference profile
    /// stored by the profile step, and the first test rows as samples. The caller fills in
    /// `family`, `params` and `metrics` (and `selection_metric`, which defaults to f1 or rmse,
    /// and `run_id`, which defaults to the dataset's run).
    pub(crate) async fn from_dataset(
        store: &dyn ObjectStore,
        name: &str,
        record: &DatasetRecord,
        train: &TrainData,
        test: &TrainData,
    ) -> anyhow::Result<ManifestDraft> {
        let reference_key = Key::new(record.profile.reference.clone())?;
        let body = store
            .get(&reference_key)
            .await
            .with_context(|| format!("cannot read the reference profile of dataset {}", record.name))?;
        let reference_profile: ReferenceProfile =
            serde_json::from_slice(&body).with_context(|| format!("{reference_key} is not a reference profile"))?;
        let features = train
            .features
            .iter()
            .enumerate()
            .map(|(j, name)| {
                let column = train.x.column(j);
                let min = column.iter().copied().fold(f64::INFINITY, f64::min);
                let max = column.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let categories = record
                    .encodings
                    .get(name)
                    .filter(|e| e.method == crate::data::EncodeMethod::Ordinal)
                    .map(|e| e.categories.clone());
                FeatureSchema {
                    name: name.clone(),
                    ty: FeatureType::Float,
                    min,
                    max,
                    categories,
                    missing: false,
                }
            })
            .collect();
        let classification = record.task == TaskKind::Classification;
        Ok(ManifestDraft {
            name: name.to_owned(),
            task: record.task,
            features,
            output: OutputSchema {
                target: record.target.clone(),
                classes: classification.then(|| record.classes.clone()),
            },
            family: String::new(),
            params: BTreeMap::new(),
            metrics: BTreeMap::new(),
            selection_metric: if classification { Metric::F1 } else { Metric::Rmse },
            dataset: DatasetRef {
                name: record.name.clone(),
                version: record.version,
            },
            run_id: record.run_id.clone(),
            reference_profile,
            sample_rows: sample_rows(&test.row_vecs()),
            lineage: None,
        })
    }

    /// Checks the draft is a manifest worth signing: names, finite numbers (JSON has no NaN),
    /// consistent task, output and metric.
    pub(crate) fn check(&self) -> anyhow::Result<()> {
        super::check_name("model", &self.name)?;
        ensure!(!self.features.is_empty(), "a model needs at least one feature");
        let mut seen = BTreeSet::new();
        for f in &self.features {
            ensure!(seen.insert(f.name.as_str()), "feature '{}' is listed twice", f.name);
            ensure!(
                f.min.is_finite() && f.max.is_finite() && f.min <= f.max,
                "feature '{}' has an invalid range [{}, {}]",
                f.name,
                f.min,
                f.max
            );
        }
        match (self.task, &self.output.classes) {
            (TaskKind::Classification, Some(classes)) if classes.len() >= 2 => {}
            (TaskKind::Classification, _) => bail!("a classifier's output needs at least two classes"),
            (TaskKind::Regression, None) => {}
            (TaskKind::Regression, Some(_)) => bail!("a regressor's output has no classes"),
        }
        ensure!(
            self.selection_metric.for_classification() == (self.task == TaskKind::Classification),
            "the selection metric {} does not apply to {}",
            self.selection_metric,
            task_name(self.task)
        );
        ensure!(!self.family.is_empty(), "the model family is not set");
        if let Some((name, value)) = self.metrics.iter().find(|(_, v)| !v.is_finite()) {
            bail!("metric '{name}' is {value}: only finite metrics can be recorded");
        }
        for (i, row) in self.sample_rows.iter().enumerate() {
            ensure!(
                row.len() == self.features.len(),
                "sample row {} has {} values for {} features",
                i + 1,
                row.len(),
                self.features.len()
            );
            ensure!(
                row.iter().all(|v| v.is_finite()),
                "sample row {} has a non-finite value",
                i + 1
            );
        }
        Key::segment(&self.run_id).map_err(|e| anyhow::anyhow!("run id: {e}"))?;
        Ok(())
    }

    pub(crate) fn into_manifest(
        self,
        version: u64,
        created_at: DateTime<Utc>,
        artifacts: BTreeMap<String, ArtifactInfo>,
    ) -> Manifest {
        Manifest {
            schema_version: MANIFEST_SCHEMA_VERSION,
            name: self.name,
            version,
            created_at,
            task: self.task,
            features: self.features,
            output: self.output,
            family: self.family,
            params: self.params,
            metrics: self.metrics,
            selection_metric: self.selection_metric,
            dataset: self.dataset,
            run_id: self.run_id,
            artifacts,
            reference_profile: self.reference_profile,
            sample_rows: self.sample_rows,
            lineage: self.lineage,
            signature: None,
        }
    }
}

pub(crate) fn task_name(task: TaskKind) -> &'static str {
    match task {
        TaskKind::Classification => "classification",
        TaskKind::Regression => "regression",
    }
}

/// The manifest's sample rows (JSON has no NaN): the first complete test rows; when every row
/// misses a value, the first rows with each gap filled by its column's mean.
fn sample_rows(rows: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let complete: Vec<Vec<f64>> = rows
        .iter()
        .filter(|r| r.iter().all(|v| v.is_finite()))
        .take(SAMPLE_ROWS)
        .cloned()
        .collect();
    if !complete.is_empty() || rows.is_empty() {
        return complete;
    }
    let means: Vec<f64> = (0..rows[0].len())
        .map(|j| {
            let known: Vec<f64> = rows.iter().map(|r| r[j]).filter(|v| v.is_finite()).collect();
            if known.is_empty() {
                0.0
            } else {
                known.iter().sum::<f64>() / known.len() as f64
            }
        })
        .collect();
    rows.iter()
        .take(SAMPLE_ROWS)
        .map(|r| {
            r.iter()
                .zip(&means)
                .map(|(v, m)| if v.is_finite() { *v } else { *m })
                .collect()
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use model_wasm::FeatureReference;

    use super::*;

    /// A small, valid classification draft over `features`.
    pub(crate) fn draft(name: &str, features: &[&str]) -> ManifestDraft {
        ManifestDraft {
            name: name.to_owned(),
            task: TaskKind::Classification,
            features: features
                .iter()
                .map(|f| FeatureSchema {
                    name: (*f).to_owned(),
                    ty: FeatureType::Float,
                    min: -1.5,
                    max: 0.1 + 0.2,
                    categories: None,
                    missing: false,
                })
                .collect(),
            output: OutputSchema {
                target: "good".into(),
                classes: Some(vec!["0".into(), "1".into()]),
            },
            family: "logistic_regression".into(),
            params: BTreeMap::from([("alpha".to_owned(), serde_json::json!(0.1))]),
            metrics: BTreeMap::from([
                ("f1".to_owned(), 0.7512345678901234),
                ("accuracy".to_owned(), 1.0 / 3.0),
            ]),
            selection_metric: Metric::F1,
            dataset: DatasetRef {
                name: "wine".into(),
                version: 1,
            },
            run_id: "run-1".into(),
            reference_profile: ReferenceProfile {
                rows: 3,
                features: features
                    .iter()
                    .map(|f| FeatureReference::numeric_from_values(f, &[0.1, 0.7, 1e-7], 3).unwrap())
                    .collect(),
            },
            sample_rows: vec![features.iter().map(|_| 0.1).collect()],
            lineage: None,
        }
    }

    #[test]
    fn canonical_bytes_are_stable_through_a_json_round_trip() {
        let mut m = draft("wine", &["alcohol", "pH"]).into_manifest(3, Utc::now(), BTreeMap::new());
        m.artifacts.insert("model.onnx".into(), ArtifactInfo::of(b"onnx"));
        let canonical = m.canonical_bytes();
        // Through the pretty text the store holds, into the struct and back.
        let text = serde_json::to_string_pretty(&m).unwrap();
        let back: Manifest = serde_json::from_str(&text).unwrap();
        assert_eq!(back, m);
        assert_eq!(back.canonical_bytes(), canonical);
        // Through an untyped value, as a reader without this struct would do it.
        let mut value: serde_json::Value = serde_json::from_str(&text).unwrap();
        value.as_object_mut().unwrap().remove("signature");
        assert_eq!(canonical_json(&value), canonical);
        // The signature is not covered; keys are sorted and there is no whitespace.
        let mut signed = m.clone();
        signed.signature = Some(Signature {
            algorithm: "ed25519".into(),
            key_id: "k".into(),
            value: "v".into(),
        });
        assert_eq!(signed.canonical_bytes(), canonical);
        let s = String::from_utf8(canonical).unwrap();
        assert!(s.starts_with("{\"artifacts\":{\"model.onnx\":{\"sha256\":"), "{s}");
        assert!(!s.contains(' ') && !s.contains('\n') && !s.contains("signature"));
    }

    #[test]
    fn drafts_are_checked() {
        assert!(draft("wine", &["a"]).check().is_ok());
        let mut d = draft("../x", &["a"]);
        assert!(d.check().unwrap_err().to_string().contains("invalid model name '../x'"));
        d = draft("wine", &["a", "a"]);
        assert!(
            d.check()
                .unwrap_err()
                .to_string()
                .contains("feature 'a' is listed twice")
        );
        d = draft("wine", &["a"]);
        d.metrics.insert("log_loss".into(), f64::NAN);
        assert!(d.check().unwrap_err().to_string().contains("metric 'log_loss' is NaN"));
        d = draft("wine", &["a"]);
        d.selection_metric = Metric::Rmse;
        assert!(
            d.check()
                .unwrap_err()
                .to_string()
                .contains("rmse does not apply to classification")
        );
        d = draft("wine", &["a"]);
        d.sample_rows = vec![vec![1.0, 2.0]];
        assert!(
            d.check()
                .unwrap_err()
                .to_string()
                .contains("sample row 1 has 2 values for 1 features")
        );
    }
}
