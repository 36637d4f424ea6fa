//! What a runtime reads of a model's `manifest.json`: the feature schema, the output, the digest
//! of every artifact and the reference profile for drift.
//!
//! The control plane writes the full manifest (`control-plane/src/registry/manifest.rs`); this is
//! a view of the members a browser or an edge needs, and it ignores the others, so a reader keeps
//! working when the writer adds members. The signature is not checked here.
//!
//! ```
//! use model_wasm::manifest::ManifestView;
//!
//! let json = r#"{
//!   "schema_version": 1, "name": "wine", "version": 3,
//!   "features": [{"name": "alcohol", "type": "float", "min": 8.4, "max": 14.9}],
//!   "output": {"target": "good", "classes": ["0", "1"]},
//!   "artifacts": {"model.wasm": {"size": 3, "sha256":
//!     "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"}},
//!   "reference_profile": {"rows": 1, "features": []}
//! }"#;
//! let manifest = ManifestView::from_json(json.as_bytes()).unwrap();
//! assert_eq!(manifest.feature_names(), ["alcohol"]);
//! manifest.verify_artifact("model.wasm", b"abc").unwrap();
//! let err = manifest.verify_artifact("model.wasm", b"abd").unwrap_err();
//! assert!(err.to_string().starts_with("model.wasm does not match the manifest: sha256"));
//! ```

use alloc::{borrow::ToOwned, format, string::String, vec::Vec};

use serde::{Deserialize, Serialize};

use crate::json::{self, read};
use crate::{Error, ReferenceProfile, Result};

/// The manifest schema version this view reads.
pub const MANIFEST_SCHEMA_VERSION: u32 = 1;

/// The members of `manifest.json` that runtimes use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestView {
    pub schema_version: u32,
    pub name: String,
    pub version: u64,
    /// The model's inputs, in the order the model takes them.
    pub features: Vec<FeatureView>,
    pub output: OutputView,
    /// Every artifact stored beside the manifest, by file name.
    #[serde(default)]
    /// Sorted by file name (serde's form is a JSON object, `{file: {size, sha256}}`).
    #[serde(with = "artifact_map")]
    pub artifacts: Vec<(String, ArtifactView)>,
    /// What the training data looked like, for drift detection.
    pub reference_profile: ReferenceProfile,
    /// A few test rows, in feature order.
    #[serde(default)]
    pub sample_rows: Vec<Vec<f64>>,
}

/// One input of the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureView {
    pub name: String,
    /// The smallest and largest value seen in the training data.
    pub min: f64,
    pub max: f64,
    /// For an ordinal-encoded column: the category of each code (value `k` is `categories[k]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub categories: Option<Vec<String>>,
    /// Whether the model routes a missing value (NaN, `null`) of this feature
    /// ([`crate::ModelIr::accepts_missing`]); other features refuse one.
    #[serde(default, skip_serializing_if = "core::ops::Not::not")]
    pub missing: bool,
}

/// What the model predicts: the target column, and for a classifier its classes in index order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputView {
    pub target: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classes: Option<Vec<String>>,
}

/// Size and digest of a stored artifact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactView {
    pub size: u64,
    /// Lowercase hex.
    pub sha256: String,
}

impl ManifestView {
    /// Parses and checks a manifest: a schema version this view reads, at least one feature,
    /// unique feature names, and two or more classes for a classifier.
    ///
    /// Read with [`crate::json`] (not serde), as every runtime reads it: members the view does
    /// not know are ignored, a missing or `null` optional member takes its default.
    pub fn from_json(bytes: &[u8]) -> Result<ManifestView> {
        let not_a_manifest = |e: String| Error::InvalidManifest(format!("not a model manifest: {e}"));
        let value = json::parse(bytes).map_err(not_a_manifest)?;
        let manifest = ManifestView::read(&value).map_err(not_a_manifest)?;
        manifest.check()?;
        Ok(manifest)
    }

    /// The view of a parsed manifest, with serde's rules for the derived `Deserialize`: every
    /// member required but those marked `default`.
    fn read(v: &json::Value) -> read::Result<ManifestView> {
        let feature = |f: &json::Value, at: &str| -> read::Result<FeatureView> {
            Ok(FeatureView {
                name: read::field(f, at, "name", &read::string)?,
                min: read::field(f, at, "min", &read::number)?,
                max: read::field(f, at, "max", &read::number)?,
                categories: read::optional_field(f, at, "categories", &read::strings)?,
                missing: read::optional_field(f, at, "missing", &read::boolean)?.unwrap_or(false),
            })
        };
        let artifacts = |a: &json::Value, at: &str| -> read::Result<Vec<(String, ArtifactView)>> {
            let members = a
                .as_object()
                .ok_or_else(|| format!("{at} is {}, not an object", a.kind()))?;
            // The members come sorted by name: so are the artifacts.
            let mut artifacts = Vec::with_capacity(members.len());
            for (file, info) in members {
                let at = read::path(at, file);
                let artifact = ArtifactView {
                    size: read::field(info, &at, "size", &read::integer)?,
                    sha256: read::field(info, &at, "sha256", &read::string)?,
                };
                artifacts.push((file.clone(), artifact));
            }
            Ok(artifacts)
        };
        let output = |o: &json::Value, at: &str| -> read::Result<OutputView> {
            Ok(OutputView {
                target: read::field(o, at, "target", &read::string)?,
                classes: read::optional_field(o, at, "classes", &read::strings)?,
            })
        };
        let schema_version = read::field(v, "", "schema_version", &read::integer)?;
        let output = read::field(v, "", "output", &output)?;
        let artifacts = read::optional_field(v, "", "artifacts", &artifacts)?.unwrap_or_default();
        Ok(ManifestView {
            schema_version: u32::try_from(schema_version).map_err(|_| "schema_version is too large".to_owned())?,
            name: read::field(v, "", "name", &read::string)?,
            version: read::field(v, "", "version", &read::integer)?,
            features: read::field(v, "", "features", &|f, at| read::list(f, at, &feature))?,
            output,
            artifacts,
            reference_profile: read::field(v, "", "reference_profile", &ReferenceProfile::read)?,
            sample_rows: read::optional_field(v, "", "sample_rows", &|rows, at| read::list(rows, at, &read::numbers))?
                .unwrap_or_default(),
        })
    }

    fn check(&self) -> Result<()> {
        let invalid = |m: String| Err(Error::InvalidManifest(m));
        if self.schema_version != MANIFEST_SCHEMA_VERSION {
            return invalid(format!(
                "schema version {} is not supported (expected {MANIFEST_SCHEMA_VERSION})",
                self.schema_version
            ));
        }
        if self.features.is_empty() {
            return invalid("the model has no features".to_owned());
        }
        let mut seen: Vec<&str> = Vec::with_capacity(self.features.len());
        for f in &self.features {
            match seen.binary_search(&f.name.as_str()) {
                Err(at) => seen.insert(at, &f.name),
                Ok(_) => return invalid(format!("feature '{}' is listed twice", f.name)),
            }
        }
        if let Some(classes) = &self.output.classes
            && classes.len() < 2
        {
            return invalid(format!("a classifier needs two classes or more, not {}", classes.len()));
        }
        Ok(())
    }

    /// `name@version`.
    pub fn id(&self) -> String {
        format!("{}@{}", self.name, self.version)
    }

    /// The feature names, in model input order.
    pub fn feature_names(&self) -> Vec<String> {
        self.features.iter().map(|f| f.name.clone()).collect()
    }

    /// The classes in index order; empty for a regressor.
    pub fn classes(&self) -> &[String] {
        self.output.classes.as_deref().unwrap_or_default()
    }

    /// Checks that `bytes` are the artifact `file` the manifest lists: same size, same sha256.
    pub fn verify_artifact(&self, file: &str, bytes: &[u8]) -> Result<()> {
        let mismatch = |reason: String| {
            Err(Error::ArtifactMismatch {
                file: file.to_owned(),
                reason,
            })
        };
        let Some((_, expected)) = self.artifacts.iter().find(|(name, _)| name == file) else {
            return mismatch(format!("the manifest of {} lists no {file}", self.id()));
        };
        let actual = sha256_hex(bytes);
        if !actual.eq_ignore_ascii_case(&expected.sha256) {
            return mismatch(format!(
                "sha256 is {actual}, the manifest of {} says {} (refusing to run it)",
                self.id(),
                expected.sha256
            ));
        }
        if bytes.len() as u64 != expected.size {
            return mismatch(format!(
                "{} bytes, the manifest of {} says {}",
                bytes.len(),
                self.id(),
                expected.size
            ));
        }
        Ok(())
    }
}

/// [`ManifestView::artifacts`] in serde's form of a map: `{file: {size, sha256}}`.
mod artifact_map {
    use alloc::{collections::BTreeMap, string::String, vec::Vec};

    use serde::{Deserialize, Deserializer, Serializer};

    use super::ArtifactView;

    pub fn serialize<S: Serializer>(artifacts: &[(String, ArtifactView)], s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(artifacts.iter().map(|(file, a)| (file, a)))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(String, ArtifactView)>, D::Error> {
        Ok(BTreeMap::<String, ArtifactView>::deserialize(d)?.into_iter().collect())
    }
}

/// The sha256 of `bytes`, lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    crate::signature::hex(&crate::sha256::digest(bytes))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::FeatureReference;

    /// A manifest over `features` (numeric references from a few values), with `model.wasm`
    /// listed as `wasm`.
    pub(crate) fn manifest(features: &[&str], classes: Option<&[&str]>, wasm: &[u8]) -> ManifestView {
        ManifestView {
            schema_version: MANIFEST_SCHEMA_VERSION,
            name: "wine".into(),
            version: 2,
            features: features
                .iter()
                .map(|f| FeatureView {
                    name: (*f).into(),
                    min: 0.0,
                    max: 10.0,
                    categories: None,
                    missing: false,
                })
                .collect(),
            output: OutputView {
                target: "quality".into(),
                classes: classes.map(|c| c.iter().map(|s| (*s).to_owned()).collect()),
            },
            artifacts: vec![(
                "model.wasm".to_owned(),
                ArtifactView {
                    size: wasm.len() as u64,
                    sha256: sha256_hex(wasm),
                },
            )],
            reference_profile: ReferenceProfile {
                rows: 10,
                features: features
                    .iter()
                    .map(|f| {
                        let values: Vec<f64> = (0..10).map(f64::from).collect();
                        FeatureReference::numeric_from_values(f, &values, 5).unwrap()
                    })
                    .collect(),
            },
            sample_rows: vec![features.iter().map(|_| 1.0).collect()],
        }
    }

    #[test]
    fn reads_what_the_control_plane_writes_and_ignores_the_rest() {
        let json = serde_json::json!({
            "schema_version": 1, "name": "wine", "version": 7, "created_at": "2026-11-28T08:00:00Z",
            "task": "classification", "family": "random_forest", "params": {"n_trees": 20},
            "metrics": {"f1": 0.8}, "selection_metric": "f1", "dataset": {"name": "w", "version": 1},
            "run_id": "r1", "signature": null,
            "features": [
                {"name": "alcohol", "type": "float", "min": 8.4, "max": 14.9},
                {"name": "colour", "type": "float", "min": 0.0, "max": 1.0, "categories": ["red", "white"]}
            ],
            "output": {"target": "good", "classes": ["0", "1"]},
            "artifacts": {"model.onnx": {"size": 1, "sha256": "00"}},
            "reference_profile": {"rows": 5, "features": [
                {"kind": "numeric", "name": "alcohol", "edges": [10.0], "proportions": [0.5, 0.5]}
            ]},
            "sample_rows": [[9.0, 1.0]]
        });
        let m = ManifestView::from_json(json.to_string().as_bytes()).unwrap();
        assert_eq!(m.id(), "wine@7");
        assert_eq!(m.feature_names(), ["alcohol", "colour"]);
        assert_eq!(m.classes(), ["0", "1"]);
        assert_eq!(
            m.features[1].categories.as_deref(),
            Some(&["red".to_owned(), "white".to_owned()][..])
        );
        assert_eq!(m.reference_profile.features.len(), 1);
        // The hand-written reader and the derived Deserialize agree.
        assert_eq!(serde_json::from_value::<ManifestView>(json).unwrap(), m);

        let mut full = manifest(&["a", "b"], Some(&["x", "y"][..]), b"wasm");
        full.features[1].categories = Some(vec!["red".into(), "white \"w\"".into()]);
        full.features[0].missing = true;
        full.reference_profile.features[1] =
            FeatureReference::categorical_from_values("b", [Some("red"), Some("red"), None, Some("white")]).unwrap();
        let text = serde_json::to_string_pretty(&full).unwrap();
        assert_eq!(ManifestView::from_json(text.as_bytes()).unwrap(), full);
    }

    #[test]
    fn members_of_the_wrong_type_are_named_by_their_path() {
        let base = serde_json::to_value(manifest(&["a", "b"], None, b"wasm")).unwrap();
        let check = |edit: &dyn Fn(&mut serde_json::Value), expected: &str| {
            let mut v = base.clone();
            edit(&mut v);
            let err = ManifestView::from_json(v.to_string().as_bytes()).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("invalid manifest: not a model manifest: {expected}")
            );
        };
        check(
            &|v| v["features"][1]["min"] = "0".into(),
            "features[1].min is a string, not a finite number",
        );
        check(
            &|v| v["features"][0]["categories"] = 3.into(),
            "features[0].categories is the number 3, not an array",
        );
        check(
            &|v| v["version"] = (-1).into(),
            "version is the number -1, not a non-negative integer",
        );
        check(
            &|v| v["artifacts"]["model.wasm"]["size"] = serde_json::Value::Null,
            "artifacts.model.wasm.size is missing",
        );
        check(
            &|v| v["reference_profile"]["features"][0]["kind"] = "ordinal".into(),
            "reference_profile.features[0].kind is 'ordinal', not 'numeric' or 'categorical'",
        );
        check(
            &|v| v["sample_rows"] = serde_json::json!([[1, true]]),
            "sample_rows[0][1] is a boolean, not a finite number",
        );
        check(
            &|v| *v = serde_json::json!([1]),
            "the document is an array, not an object",
        );
        let err = ManifestView::from_json(b"{\"name\": \"w\",\n \"name\": \"v\"}").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid manifest: not a model manifest: line 2 column 2: key 'name' is given twice"
        );
    }

    #[test]
    fn bad_manifests_are_refused_with_the_reason() {
        let base = manifest(&["a", "b"], Some(&["x", "y"][..]), b"wasm");
        let check = |edit: &dyn Fn(&mut serde_json::Value), expected: &str| {
            let mut v = serde_json::to_value(&base).unwrap();
            edit(&mut v);
            let err = ManifestView::from_json(v.to_string().as_bytes()).unwrap_err();
            assert!(err.to_string().contains(expected), "{err}");
        };
        check(&|v| v["schema_version"] = 2.into(), "schema version 2 is not supported");
        check(&|v| v["features"] = serde_json::json!([]), "the model has no features");
        check(
            &|v| v["features"][1]["name"] = "a".into(),
            "feature 'a' is listed twice",
        );
        check(
            &|v| v["output"]["classes"] = serde_json::json!(["x"]),
            "two classes or more",
        );
        check(
            &|v| v.as_object_mut().unwrap().retain(|k, _| k != "reference_profile"),
            "not a model manifest: reference_profile is missing",
        );
        let err = ManifestView::from_json(b"<html>").unwrap_err();
        assert!(
            err.to_string().starts_with("invalid manifest: not a model manifest"),
            "{err}"
        );
    }

    #[test]
    fn artifacts_are_verified_by_digest_and_size() {
        let m = manifest(&["a"], None, b"\0asm module");
        m.verify_artifact("model.wasm", b"\0asm module").unwrap();
        let err = m.verify_artifact("model.wasm", b"\0asm modulf").unwrap_err();
        assert!(
            matches!(&err, Error::ArtifactMismatch { file, .. } if file == "model.wasm"),
            "{err:?}"
        );
        assert!(err.to_string().contains("sha256 is "), "{err}");
        assert!(err.to_string().contains("the manifest of wine@2 says"), "{err}");
        let err = m.verify_artifact("model.onnx", b"").unwrap_err();
        assert_eq!(
            err.to_string(),
            "model.onnx does not match the manifest: the manifest of wine@2 lists no model.onnx"
        );
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
