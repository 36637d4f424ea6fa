//! `[profile]`: the data profile's and drift reference's binning.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileConfig {
    /// Histogram bins in the report.
    #[serde(default = "default_hist_bins")]
    pub histogram_bins: usize,
    /// Quantile bins of the drift reference profile.
    #[serde(default = "default_reference_bins")]
    pub reference_bins: usize,
    /// A column is "high cardinality" above this many distinct values (categorical columns).
    #[serde(default = "default_high_cardinality")]
    pub high_cardinality: usize,
}

impl Default for ProfileConfig {
    fn default() -> Self {
        ProfileConfig {
            histogram_bins: default_hist_bins(),
            reference_bins: default_reference_bins(),
            high_cardinality: default_high_cardinality(),
        }
    }
}

fn default_hist_bins() -> usize {
    20
}

fn default_reference_bins() -> usize {
    10
}

fn default_high_cardinality() -> usize {
    50
}
