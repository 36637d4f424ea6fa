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
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
