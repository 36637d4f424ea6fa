use alloc::{format, string::String};

/// Errors from building or using model-wasm's data structures.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// A profile was asked for from no usable values.
    #[error("feature '{feature}': {reason}")]
    InvalidReference { feature: String, reason: String },
    /// A model IR that the evaluator, the ONNX writer or the code generator cannot trust.
    #[error("invalid model: {0}")]
    InvalidModel(String),
    /// An input row that cannot be predicted (the feature is empty when the row as a whole is wrong).
    #[error("{}{reason}", if feature.is_empty() { String::new() } else { format!("feature '{feature}': ") })]
    InvalidInput { feature: String, reason: String },
    /// A row of a batch that cannot be predicted: `rows[2]: feature 'pH' is missing`. Rows are
    /// numbered from 0, as the caller's array indexes them.
    #[error("rows[{row}]: {}{reason}", feature.as_deref().map(|f| format!("feature '{f}' ")).unwrap_or_default())]
    InvalidRow {
        row: usize,
        feature: Option<String>,
        reason: String,
    },
    /// A manifest that cannot be read, or that contradicts itself.
    #[error("invalid manifest: {0}")]
    InvalidManifest(String),
    /// An artifact whose bytes are not the ones the manifest lists (size or sha256).
    #[error("{file} does not match the manifest: {reason}")]
    ArtifactMismatch { file: String, reason: String },
    /// A compiled model module that does not follow the module ABI (docs/MODULE_ABI.md), or that
    /// does not fit its manifest.
    #[error("invalid model module: {0}")]
    InvalidModule(String),
}

/// Result alias for this crate.
pub type Result<T, E = Error> = core::result::Result<T, E>;
