//! Tabular data: column types, the streaming reader that checks rows against a declared schema,
//! the in-memory [`Table`] the transform step works on, and the sources data is fetched from.

mod allowed;
mod check;
mod error;
mod parquet;
mod read;
mod source;
mod table;
mod transform;

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::progress::Progress;

pub(crate) use allowed::{AllowedSources, SourceRefused};
pub(crate) use check::check;
pub(crate) use error::DataError;
pub(crate) use parquet::{parquet_columns, scan_parquet_text};
pub(crate) use read::{Cell, DEFAULT_MAX_LINE_BYTES, ReadOptions, ScanStats};
pub(crate) use read::{header_names, parse_bool, parse_integer};
pub(crate) use source::{FetchedSource, fetch_source, fetch_source_within};
pub(crate) use table::{Column, Table, Values};
pub(crate) use transform::{EncodeMethod, Encoding, FillStrategy, TransformStep, apply_step, split_indices};

/// Reads `path`, calling `on_row(row_number, cells)` for every data row (1-based row numbers;
/// `cells` follow the order of `opts.columns`), and returns the rows, the bytes and their MD5.
/// `name` is how errors refer to the file. CSV and JSON Lines go through [`read`], Parquet
/// through [`parquet`]; both check every value against the declared columns the same way.
pub(crate) fn scan(
    path: &Path,
    name: &str,
    opts: &ReadOptions<'_>,
    progress: &Progress,
    mut on_row: impl FnMut(u64, &[Cell<'_>]) -> Result<(), DataError>,
) -> Result<ScanStats, DataError> {
    match opts.format {
        Format::Parquet => parquet::scan_parquet(path, name, opts, progress, &mut on_row),
        Format::Csv | Format::Jsonl => read::scan_text(path, name, opts, progress, &mut on_row),
    }
}

/// The type of a column as declared in `pipeline.toml`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColumnType {
    Float,
    Integer,
    Boolean,
    Categorical,
    String,
}

impl ColumnType {
    pub fn is_numeric(self) -> bool {
        matches!(self, ColumnType::Float | ColumnType::Integer)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ColumnType::Float => "float",
            ColumnType::Integer => "integer",
            ColumnType::Boolean => "boolean",
            ColumnType::Categorical => "categorical",
            ColumnType::String => "string",
        }
    }
}

impl std::fmt::Display for ColumnType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Csv,
    Jsonl,
    Parquet,
}

impl Format {
    /// The format a file name's extension says: `.jsonl`/`.ndjson`/`.json` JSON Lines,
    /// `.parquet`/`.pq` Parquet, anything else CSV. Query strings of URLs are ignored.
    pub fn from_name(name: &str) -> Format {
        let name = name.split(['?', '#']).next().unwrap_or_default().to_ascii_lowercase();
        if name.ends_with(".jsonl") || name.ends_with(".ndjson") || name.ends_with(".json") {
            Format::Jsonl
        } else if name.ends_with(".parquet") || name.ends_with(".pq") {
            Format::Parquet
        } else {
            Format::Csv
        }
    }

    /// The usual file extension.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Jsonl => "jsonl",
            Format::Parquet => "parquet",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnSpec {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: ColumnType,
    /// Whether missing values are allowed (default false).
    #[serde(default)]
    pub nullable: bool,
    /// Whether NaN and infinities are accepted in a float column (default false).
    #[serde(default)]
    pub allow_non_finite: bool,
}
