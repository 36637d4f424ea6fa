/// Errors from building or using model-wasm's data structures.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// A profile was asked for from no usable values.
    #[error("feature '{feature}': {reason}")]
    InvalidReference { feature: String, reason: String },
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
