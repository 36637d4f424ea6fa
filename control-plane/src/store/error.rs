use std::fmt;

/// What went wrong, coarsely, so callers can branch on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The object (or bucket) does not exist.
    NotFound,
    /// A conditional create found an object already there.
    AlreadyExists,
    /// A conditional replace found the object changed since it was read (its tag differs).
    Conflict,
    /// The credentials were rejected or lack permission.
    Unauthorized,
    /// A key, location or configuration the caller gave is not valid.
    InvalidInput,
    /// The backend could not be reached or timed out.
    Unavailable,
    /// Anything else (I/O errors, unexpected answers).
    Other,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ErrorKind::NotFound => "not found",
            ErrorKind::AlreadyExists => "already exists",
            ErrorKind::Conflict => "changed since read",
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::InvalidInput => "invalid input",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Other => "error",
        })
    }
}

/// A storage error: a kind to branch on and a message for people.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct StoreError {
    kind: ErrorKind,
    message: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl StoreError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        StoreError {
            kind,
            message: message.into(),
            source: None,
        }
    }

    pub fn with_source(
        kind: ErrorKind,
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        StoreError {
            kind,
            message: message.into(),
            source: Some(Box::new(source)),
        }
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// Maps an I/O error on `what` (a path or key) to a store error of the matching kind.
    pub(crate) fn io(what: impl fmt::Display, err: std::io::Error) -> Self {
        use std::io::ErrorKind as Io;
        let kind = match err.kind() {
            Io::NotFound => ErrorKind::NotFound,
            Io::AlreadyExists => ErrorKind::AlreadyExists,
            Io::PermissionDenied | Io::ReadOnlyFilesystem => ErrorKind::Unauthorized,
            _ => ErrorKind::Other,
        };
        StoreError::with_source(kind, format!("{what}: {err}"), err)
    }
}

pub type StoreResult<T> = Result<T, StoreError>;
