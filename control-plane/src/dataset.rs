//! Dataset versions: the record `datasets/{name}/{version}.json` that the pipeline's version step
//! writes (pointing at the raw and processed data, stored content-addressed in DVC's remote layout
//! `dvc/files/md5/ab/cdef...`, and at the quality and profile reports), reading versions back, the
//! processed train/test split as tables, and `.dvc` files for a user's git repository.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::config::TaskKind;
use crate::data::{ColumnSpec, Encoding, Format, Table};
use crate::store::{Key, ObjectStore, get_json};
use crate::train::TrainData;

pub(crate) const DATASET_SCHEMA_VERSION: u32 = 1;

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

/// A stored file of the processed data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataFile {
    pub key: String,
    pub md5: String,
    pub size: u64,
    pub rows: u64,
}

impl DatasetRecord {
    pub fn key(&self) -> Key {
        Self::key_of(&self.name, self.version)
    }

    /// `datasets/{name}/{version}.json`.
    pub fn key_of(name: &str, version: u64) -> Key {
        Key::new(format!("datasets/{name}/{version}.json")).expect("checked dataset name")
    }
}

/// The `dvc/files/md5/ab/cdef...` key of content with this MD5 (DVC 3 remote layout).
pub(crate) fn dvc_key(md5: &str) -> Key {
    Key::new(format!("dvc/files/md5/{}/{}", &md5[..2], &md5[2..])).expect("md5 hex is a valid key")
}

/// The versions of a dataset, ascending.
pub(crate) async fn versions(store: &dyn ObjectStore, name: &str) -> anyhow::Result<Vec<u64>> {
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
    get_json(store, &DatasetRecord::key_of(name, version))
        .await?
        .with_context(|| format!("dataset '{name}' has no version {version}"))
}

/// The file name a `.dvc` file gives the raw data: the last part of the source path or URL.
fn raw_file_name(record: &DatasetRecord) -> String {
    let uri = record.source.uri.split(['?', '#']).next().unwrap_or_default();
    let name = uri.rsplit(['/', '\\']).next().unwrap_or_default();
    if name.is_empty() || name == "." || name == ".." {
        format!("{}.{}", record.name, record.source.format.extension())
    } else {
        name.to_owned()
    }
}

/// A DVC 3 `.dvc` file for the raw data of a version: `dvc pull` with a remote at
/// `<store>/dvc` fetches exactly these bytes.
pub(crate) fn dvc_file_text(record: &DatasetRecord) -> String {
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
pub(crate) fn write_dvc_file(path: &Path, record: &DatasetRecord) -> anyhow::Result<()> {
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
    pub async fn load_tables(&self, store: &dyn ObjectStore) -> anyhow::Result<(Table, Table)> {
        let what = format!("dataset {}@{}", self.name, self.version);
        load_split(store, &self.train, &self.test, &self.columns, &what).await
    }

    /// The version's train and test splits as training data (features, target, classes).
    pub async fn train_data(&self, store: &dyn ObjectStore) -> anyhow::Result<(TrainData, TrainData)> {
        let (train, test) = self.load_tables(store).await?;
        let make = |table: &Table| -> anyhow::Result<TrainData> {
            let mut data = TrainData::from_table(table, &self.features, &self.target, self.task, &self.classes)?;
            // Ordinal-encoded columns hold category codes.
            for (flag, name) in data.categorical.iter_mut().zip(&self.features) {
                *flag = self
                    .encodings
                    .get(name)
                    .is_some_and(|e| e.method == crate::data::EncodeMethod::Ordinal);
            }
            Ok(data)
        };
        Ok((make(&train)?, make(&test)?))
    }
}

/// Downloads a train/test pair of processed CSV files and reads them with `columns`; `what` names
/// them in errors.
pub(crate) async fn load_split(
    store: &dyn ObjectStore,
    train: &DataFile,
    test: &DataFile,
    columns: &[ColumnSpec],
    what: &str,
) -> anyhow::Result<(Table, Table)> {
    let tmp = tempfile::tempdir()?;
    let mut tables = Vec::new();
    for (name, file) in [("train.csv", train), ("test.csv", test)] {
        let path = tmp.path().join(name);
        store
            .get_to_file(&Key::new(file.key.clone())?, &path)
            .await
            .with_context(|| format!("cannot read {name} of {what} from the store"))?;
        let columns = columns.to_vec();
        tables.push(tokio::task::spawn_blocking(move || Table::read_csv(&path, &columns)).await??);
    }
    let test = tables.pop().expect("two tables");
    let train = tables.pop().expect("two tables");
    Ok((train, test))
}
