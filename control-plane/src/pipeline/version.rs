//! version: the dataset record `datasets/{name}/{version}.json`, written last, pointing at the raw
//! and processed data (stored in DVC's remote layout by ingest and transform) and at the reports.
//! Versions are numbered 1, 2, ... and allocated by conditional create, so two writers never take
//! the same number; data identical to an existing version reuses that version.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, bail};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::ingest::IngestOutput;
use super::profile_step::ProfileOutput;
use super::transform::{DataFile, Encoding, TransformOutput};
use super::validate::ValidateOutput;
use super::{Pipeline, StepName, Summary, get_json, sha256_hex};
use crate::config::{ColumnSpec, Format, TaskKind};
use crate::store::{ErrorKind, Key, ObjectStore};

pub const DATASET_SCHEMA_VERSION: u32 = 1;

/// `datasets/{name}/{version}.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DatasetRecord {
    pub schema_version: u32,
    pub name: String,
    pub version: u64,
    pub created_at: DateTime<Utc>,
    /// The run that created this version.
    pub run_id: String,
    /// Identifies the data: the same raw and processed bytes give the same digest.
    pub content_digest: String,
    pub source: SourceRef,
    pub raw: DataFile,
    pub train: DataFile,
    pub test: DataFile,
    /// Schema of the processed data.
    pub columns: Vec<ColumnSpec>,
    pub features: Vec<String>,
    pub target: String,
    pub task: TaskKind,
    #[serde(default)]
    pub classes: Vec<String>,
    pub encodings: BTreeMap<String, Encoding>,
    pub quality: QualityRef,
    pub profile: ProfileRef,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SourceRef {
    pub uri: String,
    pub format: Format,
    /// Schema the raw rows were checked against.
    pub columns: Vec<ColumnSpec>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QualityRef {
    pub passed: bool,
    pub warnings: usize,
    pub report_json: String,
    pub report_md: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProfileRef {
    pub json: String,
    pub html: String,
    pub reference: String,
}

impl Summary for DatasetRecord {
    fn summary(&self) -> String {
        format!("dataset {} version {} ({})", self.name, self.version, self.key())
    }
}

impl DatasetRecord {
    pub fn key(&self) -> Key {
        record_key(&self.name, self.version)
    }
}

fn record_key(name: &str, version: u64) -> Key {
    Key::new(format!("datasets/{name}/{version}.json")).expect("checked dataset name")
}

/// Everything version reads.
pub(super) struct Inputs {
    ingest: IngestOutput,
    transform: TransformOutput,
    validate: ValidateOutput,
    profile: ProfileOutput,
}

pub(super) async fn prepare(p: &Pipeline<'_>) -> anyhow::Result<(String, Inputs)> {
    let inputs = Inputs {
        ingest: p.outputs_of(StepName::Ingest).await?,
        transform: p.outputs_of(StepName::Transform).await?,
        validate: p.outputs_of(StepName::Validate).await?,
        profile: p.outputs_of(StepName::Profile).await?,
    };
    let digest = sha256_hex(&[
        "version",
        &p.config.dataset.name,
        &inputs.ingest.md5,
        &inputs.transform.train.md5,
        &inputs.transform.test.md5,
        &inputs.validate.report_json,
        &inputs.profile.reference,
    ]);
    Ok((digest, inputs))
}

pub(super) async fn run(p: &Pipeline<'_>, inputs: Inputs) -> anyhow::Result<DatasetRecord> {
    let Inputs {
        ingest,
        transform,
        validate,
        profile,
    } = inputs;
    let name = p.config.dataset.name.clone();
    let content_digest = sha256_hex(&[&ingest.md5, &transform.train.md5, &transform.test.md5]);
    let existing = versions(p.store, &name).await?;
    for version in existing.iter().rev() {
        if let Some(record) = get_json::<DatasetRecord>(p.store, &record_key(&name, *version)).await?
            && record.content_digest == content_digest
        {
            return Ok(record);
        }
    }
    let mut record = DatasetRecord {
        schema_version: DATASET_SCHEMA_VERSION,
        name: name.clone(),
        version: 0,
        created_at: Utc::now(),
        run_id: p.run_id.clone(),
        content_digest,
        source: SourceRef {
            uri: ingest.source.clone(),
            format: ingest.format,
            columns: ingest.columns.clone(),
        },
        raw: DataFile {
            key: ingest.raw_key.clone(),
            md5: ingest.md5.clone(),
            size: ingest.size,
            rows: ingest.rows,
        },
        features: profile.features.clone(),
        train: transform.train,
        test: transform.test,
        columns: transform.columns,
        target: transform.target,
        task: transform.task,
        classes: transform.classes,
        encodings: transform.encodings,
        quality: QualityRef {
            passed: validate.passed,
            warnings: validate.warnings,
            report_json: validate.report_json,
            report_md: validate.report_md,
        },
        profile: ProfileRef {
            json: profile.profile_json,
            html: profile.profile_html,
            reference: profile.reference,
        },
    };
    // Every object the record points at must be there before the record is.
    for key in [
        &record.raw.key,
        &record.train.key,
        &record.test.key,
        &record.quality.report_json,
        &record.profile.reference,
    ] {
        let key = Key::new(key.clone())?;
        if !p.store.exists(&key).await? {
            bail!("{key} is missing from {}: rerun the pipeline", p.store.describe());
        }
    }
    let mut next = existing.last().copied().unwrap_or(0) + 1;
    for _ in 0..100 {
        record.version = next;
        let body = Bytes::from(serde_json::to_vec_pretty(&record)?);
        match p.store.create_new(&record.key(), body).await {
            Ok(()) => return Ok(record),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => next += 1,
            Err(e) => return Err(e).context("cannot write the dataset record"),
        }
    }
    bail!("could not allocate a version of dataset {name}: too many concurrent writers")
}

/// The versions of a dataset, ascending.
pub async fn versions(store: &dyn ObjectStore, name: &str) -> anyhow::Result<Vec<u64>> {
    let prefix = format!("datasets/{name}/");
    let mut versions: Vec<u64> = store
        .list(&prefix)
        .await
        .with_context(|| format!("cannot list {prefix}"))?
        .iter()
        .filter_map(|m| {
            m.key
                .as_str()
                .strip_prefix(&prefix)?
                .strip_suffix(".json")?
                .parse()
                .ok()
        })
        .collect();
    versions.sort_unstable();
    Ok(versions)
}

/// Reads `datasets/{name}/{version}.json` (the latest version when `version` is None).
pub async fn load_dataset(store: &dyn ObjectStore, name: &str, version: Option<u64>) -> anyhow::Result<DatasetRecord> {
    Key::segment(name)?;
    let version = match version {
        Some(v) => v,
        None => *versions(store, name)
            .await?
            .last()
            .with_context(|| format!("dataset '{name}' has no versions in {}", store.describe()))?,
    };
    get_json(store, &record_key(name, version))
        .await?
        .with_context(|| format!("dataset '{name}' has no version {version}"))
}

/// The file name a `.dvc` file gives the raw data: the last part of the source path or URL.
fn raw_file_name(record: &DatasetRecord) -> String {
    let uri = record.source.uri.split(['?', '#']).next().unwrap_or_default();
    let name = uri.rsplit(['/', '\\']).next().unwrap_or_default();
    if name.is_empty() || name == "." || name == ".." {
        format!(
            "{}.{}",
            record.name,
            if record.source.format == Format::Jsonl {
                "jsonl"
            } else {
                "csv"
            }
        )
    } else {
        name.to_owned()
    }
}

/// A DVC 3 `.dvc` file for the raw data of a version: `dvc pull` with a remote at
/// `<store>/dvc` fetches exactly these bytes.
pub fn dvc_file_text(record: &DatasetRecord) -> String {
    format!(
        "# dataset {} version {} (wasmline)\nouts:\n- md5: {}\n  size: {}\n  hash: md5\n  path: {}\n",
        record.name,
        record.version,
        record.raw.md5,
        record.raw.size,
        yaml_string(&raw_file_name(record))
    )
}

/// A YAML scalar, quoted when plain style could be misread.
fn yaml_string(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        && !["true", "false", "null", "yes", "no", "on", "off", "~"].contains(&s.to_ascii_lowercase().as_str());
    if plain {
        s.to_owned()
    } else {
        serde_json::to_string(s).expect("string serialises")
    }
}

/// Writes the `.dvc` file atomically (temporary file, then rename).
pub fn write_dvc_file(path: &Path, record: &DatasetRecord) -> anyhow::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(dir).with_context(|| format!("cannot write {}", path.display()))?;
    std::io::Write::write_all(&mut tmp, dvc_file_text(record).as_bytes())?;
    tmp.persist(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

impl DatasetRecord {
    /// Reads the version's train and test tables from the store.
    pub async fn load_tables(
        &self,
        store: &dyn ObjectStore,
    ) -> anyhow::Result<(crate::data::Table, crate::data::Table)> {
        let what = format!("dataset {}@{}", self.name, self.version);
        super::transform::load_split(store, &self.train, &self.test, &self.columns, &what).await
    }

    /// The version's train and test splits as training data (features, target, classes).
    pub async fn train_data(
        &self,
        store: &dyn ObjectStore,
    ) -> anyhow::Result<(crate::train::TrainData, crate::train::TrainData)> {
        let (train, test) = self.load_tables(store).await?;
        let make = |table: &crate::data::Table| {
            crate::train::TrainData::from_table(table, &self.features, &self.target, self.task, &self.classes)
        };
        Ok((make(&train)?, make(&test)?))
    }
}
