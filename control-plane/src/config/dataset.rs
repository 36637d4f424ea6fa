//! `[dataset]`: where the data is, how to read it, its declared columns.

use serde::{Deserialize, Serialize};

use crate::data::{ColumnSpec, Format};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetConfig {
    /// Dataset name: a store key segment (`[A-Za-z0-9._=+@-]`).
    pub name: String,
    /// A path (relative to the config file), an `http(s)://` URL or an `s3://bucket/key` URL.
    pub source: String,
    /// `csv`, `jsonl` or `parquet`; by default from the source's extension (`.jsonl`, `.ndjson`,
    /// `.json`; `.parquet`, `.pq`; anything else is CSV).
    #[serde(default)]
    pub format: Option<Format>,
    /// CSV field delimiter (one ASCII character).
    #[serde(default = "default_delimiter")]
    pub delimiter: char,
    /// Cell values read as missing (CSV, and Parquet string columns, read as CSV fields are); JSON
    /// `null` and a Parquet null are always missing.
    #[serde(default = "default_missing")]
    pub missing_values: Vec<String>,
    /// Columns in the source that the schema does not declare: an error unless this is true.
    #[serde(default)]
    pub ignore_extra_columns: bool,
    /// Longest line read, in bytes (default 1 MiB): a longer one stops the read with an error
    /// naming it, so a file without line breaks cannot take the memory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_line_bytes: Option<usize>,
    pub columns: Vec<ColumnSpec>,
}

fn default_delimiter() -> char {
    ','
}

fn default_missing() -> Vec<String> {
    ["", "NA", "N/A", "null", "NULL"].map(String::from).to_vec()
}
