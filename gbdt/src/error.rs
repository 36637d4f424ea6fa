//! The crate's error type.

/// Why parameters were refused or a fit could not start. Features and rows are 0-based indices;
/// callers that know names say them.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// A hyperparameter outside its range: `name` is the LightGBM-style key.
    #[error("{name} = {value}: {why}")]
    InvalidParam {
        name: &'static str,
        value: String,
        why: &'static str,
    },
    #[error("no training rows")]
    Empty,
    #[error("x has {rows} rows but the target has {targets} values")]
    Shape { rows: usize, targets: usize },
    #[error("feature {feature}: every training value is missing")]
    AllMissing { feature: usize },
    #[error("feature {feature}: {value} in row {row} is infinite")]
    Infinite { feature: usize, row: usize, value: f64 },
    #[error("categorical feature {feature}: {value} in row {row} is not a category (a whole number from 0 to {max})")]
    NotACategory {
        feature: usize,
        row: usize,
        value: f64,
        max: u32,
    },
    #[error("target: {value} in row {row} is {why}")]
    Target { row: usize, value: f64, why: &'static str },
    #[error("target: class {class} in row {row} is not below the {classes} classes")]
    Class { row: usize, class: usize, classes: usize },
    #[error("target: {0}")]
    Targets(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<Error> for linfa::Error {
    fn from(e: Error) -> Self {
        linfa::Error::Parameters(e.to_string())
    }
}
