//! `[task]` (what to predict) and `[split]` (the held-out share).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskKind {
    Classification,
    Regression,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskConfig {
    pub kind: TaskKind,
    /// The column to predict (after transforms).
    pub target: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SplitConfig {
    /// Share of rows held out for testing, in (0, 1).
    #[serde(default = "default_test_fraction")]
    pub test_fraction: f64,
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Keep class shares equal in both splits (default: true for classification).
    #[serde(default)]
    pub stratify: Option<bool>,
}

impl Default for SplitConfig {
    fn default() -> Self {
        SplitConfig {
            test_fraction: default_test_fraction(),
            seed: default_seed(),
            stratify: None,
        }
    }
}

fn default_test_fraction() -> f64 {
    0.2
}

pub(super) fn default_seed() -> u64 {
    42
}
