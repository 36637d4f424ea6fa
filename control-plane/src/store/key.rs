use std::fmt;

use super::{ErrorKind, StoreError, StoreResult};

/// A checked object key: `/`-separated segments of `[A-Za-z0-9._=+@-]`, none empty, `.` or `..`,
/// no leading or trailing `/`, at most 1024 bytes. Every key the control plane builds from user
/// input (dataset, model and alias names) goes through [`Key::new`], so no input can climb out of
/// the store root.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key(String);

impl Key {
    pub fn new(key: impl Into<String>) -> StoreResult<Key> {
        let key = key.into();
        let invalid = |why: &str| {
            Err(StoreError::new(
                ErrorKind::InvalidInput,
                format!("invalid object key '{key}': {why}"),
            ))
        };
        if key.is_empty() || key.len() > 1024 {
            return invalid("must be 1 to 1024 bytes long");
        }
        for segment in key.split('/') {
            if segment.is_empty() || segment == "." || segment == ".." {
                return invalid("empty, '.' or '..' path segment");
            }
            if segment.starts_with(".tmp") {
                return invalid("segments starting with '.tmp' are reserved");
            }
            if let Some(c) = segment
                .chars()
                .find(|c| !(c.is_ascii_alphanumeric() || "._=+@-".contains(*c)))
            {
                return invalid(&format!("character {c:?} is not allowed"));
            }
        }
        Ok(Key(key))
    }

    /// Checks one path segment (a dataset, model or alias name) on its own.
    pub fn segment(name: &str) -> StoreResult<&str> {
        if name.contains('/') {
            return Err(StoreError::new(
                ErrorKind::InvalidInput,
                format!("invalid name '{name}': '/' is not allowed"),
            ));
        }
        Key::new(name).map(|_| name)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key of `name` below this one.
    pub fn join(&self, name: &str) -> StoreResult<Key> {
        Key::new(format!("{}/{name}", self.0))
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_layout_keys() {
        for k in [
            "dvc/files/md5/ab/cdef0123",
            "datasets/wine/3.json",
            "models/wine-quality/12/model.wasm",
            "models/m/aliases/production.json",
        ] {
            assert_eq!(Key::new(k).unwrap().as_str(), k);
        }
    }

    #[test]
    fn refuses_keys_that_escape_or_are_odd() {
        for k in [
            "", "/abs", "a//b", "a/../b", "..", "./a", "a/", "a b", "a\\b", "a/.tmp-x", "ü",
        ] {
            let err = Key::new(k).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{k}");
        }
        assert!(Key::segment("../x").is_err());
        assert!(Key::segment("production").is_ok());
    }
}
