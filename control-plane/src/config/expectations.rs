//! `[[expectations]]`: what the processed data must satisfy.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::data::ColumnType;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// A failure stops the pipeline.
    #[default]
    Critical,
    /// A failure is reported and the pipeline goes on.
    Warning,
}

/// An expectation about the processed data (train and test).
// No `deny_unknown_fields` here: serde does not support it with `flatten`; `Check` denies them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Expectation {
    #[serde(flatten)]
    pub check: Check,
    #[serde(default)]
    pub severity: Severity,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "expect", rename_all = "snake_case", deny_unknown_fields)]
pub enum Check {
    /// Exactly these columns with these types (order free).
    ColumnsMatch {
        columns: BTreeMap<String, ColumnType>,
    },
    NotNull {
        columns: Vec<String>,
    },
    /// Values within `[min, max]` (either bound optional).
    Range {
        column: String,
        #[serde(default)]
        min: Option<f64>,
        #[serde(default)]
        max: Option<f64>,
    },
    /// Values among `values` (compared as text; numbers in their shortest form).
    AllowedValues {
        column: String,
        values: Vec<String>,
    },
    Unique {
        columns: Vec<String>,
    },
    RowCount {
        #[serde(default)]
        min: Option<u64>,
        #[serde(default)]
        max: Option<u64>,
    },
    /// At most this share of missing values in each column.
    MaxMissingShare {
        columns: Vec<String>,
        max: f64,
    },
}

impl Check {
    pub fn name(&self) -> &'static str {
        match self {
            Check::ColumnsMatch { .. } => "columns_match",
            Check::NotNull { .. } => "not_null",
            Check::Range { .. } => "range",
            Check::AllowedValues { .. } => "allowed_values",
            Check::Unique { .. } => "unique",
            Check::RowCount { .. } => "row_count",
            Check::MaxMissingShare { .. } => "max_missing_share",
        }
    }

    /// The columns this check names.
    pub fn columns(&self) -> Vec<&str> {
        match self {
            Check::ColumnsMatch { columns } => columns.keys().map(String::as_str).collect(),
            Check::NotNull { columns } | Check::Unique { columns } | Check::MaxMissingShare { columns, .. } => {
                columns.iter().map(String::as_str).collect()
            }
            Check::Range { column, .. } | Check::AllowedValues { column, .. } => vec![column.as_str()],
            Check::RowCount { .. } => vec![],
        }
    }
}
