use std::path::PathBuf;

/// Errors reading data: each names the file, and where it can, the row, line and column.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{file}: {source}")]
    Io {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}: row {row} (line {line}), column '{column}': {message}")]
    Cell {
        file: String,
        row: u64,
        line: u64,
        column: String,
        message: String,
    },
    /// A value of a Parquet file: its row group and its row in the file, both 1-based.
    #[error("{file}: row group {group}, row {row}, column '{column}': {message}")]
    Value {
        file: String,
        group: usize,
        row: u64,
        column: String,
        message: String,
    },
    #[error("{file}: row {row} (line {line}): {message}")]
    Row {
        file: String,
        row: u64,
        line: u64,
        message: String,
    },
    #[error("{file}: {message}")]
    File { file: String, message: String },
    #[error("cannot fetch {url}: {message}")]
    Fetch { url: String, message: String },
    /// A run that may read only some sources named another.
    #[error(transparent)]
    NotAllowed(#[from] super::SourceRefused),
}

impl DataError {
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        DataError::Io {
            file: path.display().to_string(),
            source,
        }
    }

    pub(crate) fn file(file: impl Into<String>, message: impl Into<String>) -> Self {
        DataError::File {
            file: file.into(),
            message: message.into(),
        }
    }
}

impl From<(PathBuf, std::io::Error)> for DataError {
    fn from((path, source): (PathBuf, std::io::Error)) -> Self {
        DataError::io(&path, source)
    }
}
