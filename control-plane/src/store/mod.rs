//! Object storage: the control plane's only state.
//!
//! One [`ObjectStore`] interface, two backends: [`LocalStore`] (a directory, the embedded default)
//! and [`S3Store`] (any S3-compatible server). Keys are `/`-separated relative paths checked by
//! [`Key::new`]; the layout of keys is described in `docs/ARCHITECTURE.md`.

mod error;
mod json;
mod key;
mod local;
mod s3;
#[cfg(test)]
pub(crate) mod testing;

use std::path::Path;

use async_trait::async_trait;
use bytes::Bytes;

pub use error::{ErrorKind, StoreError, StoreResult};
pub(crate) use json::{get_json, put_json};
pub use key::Key;
pub use local::LocalStore;
pub use s3::{S3Config, S3Store};

/// What [`ObjectStore::head`] and [`ObjectStore::list`] tell about an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    pub key: Key,
    pub size: u64,
}

/// Which content of an object a reader saw: the S3 ETag, or on disk the md5 of the bytes. A
/// conditional replace ([`ObjectStore::put_if_match`]) names it and fails if the object changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ETag(pub(crate) String);

impl std::fmt::Display for ETag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A flat key-value store of immutable-ish objects.
///
/// Every backend passes the same conformance suite (`control-plane/tests/all/storage.rs`).
#[async_trait]
pub trait ObjectStore: Send + Sync + std::fmt::Debug {
    /// A human-readable location, e.g. `/srv/wasmline` or `s3://bucket/prefix`.
    fn describe(&self) -> String;

    /// Writes `body` at `key`, replacing what was there. Readers see the old or the new object,
    /// never a partial one.
    async fn put(&self, key: &Key, body: Bytes) -> StoreResult<()>;

    /// Streams a local file to `key` (multipart on S3 above the backend's threshold).
    async fn put_file(&self, key: &Key, path: &Path) -> StoreResult<()>;

    /// Writes `body` at `key` only if nothing is there yet; fails with [`ErrorKind::AlreadyExists`]
    /// otherwise. Two concurrent callers never both succeed (on backends that honour it).
    async fn create_new(&self, key: &Key, body: Bytes) -> StoreResult<()>;

    /// Reads a whole object; [`ErrorKind::NotFound`] when absent.
    async fn get(&self, key: &Key) -> StoreResult<Bytes>;

    /// Reads a whole object and the tag of what was read, for a later [`ObjectStore::put_if_match`].
    async fn get_tagged(&self, key: &Key) -> StoreResult<(Bytes, ETag)>;

    /// Replaces the object at `key` only if it still holds what `expected` tagged: the read half of
    /// a compare-and-swap. Fails with [`ErrorKind::Conflict`] when another writer replaced it
    /// since, and [`ErrorKind::NotFound`] when it is gone. Two writers naming the same tag never
    /// both succeed (on S3 servers that serialise conditional writes, as AWS S3 does).
    async fn put_if_match(&self, key: &Key, body: Bytes, expected: &ETag) -> StoreResult<()>;

    /// Streams an object into a local file (created or truncated); returns its size.
    async fn get_to_file(&self, key: &Key, path: &Path) -> StoreResult<u64>;

    /// Size of an object; [`ErrorKind::NotFound`] when absent.
    async fn head(&self, key: &Key) -> StoreResult<ObjectMeta>;

    /// Every object whose key starts with `prefix` (a plain string prefix, `""` for all), sorted by
    /// key. Backends page through their listings internally.
    async fn list(&self, prefix: &str) -> StoreResult<Vec<ObjectMeta>>;

    /// Removes an object; removing an absent object is not an error.
    async fn delete(&self, key: &Key) -> StoreResult<()>;

    /// Whether an object exists.
    async fn exists(&self, key: &Key) -> StoreResult<bool> {
        match self.head(key).await {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// Opens the store a user named: `s3://bucket[/prefix]` or a local directory path.
pub(crate) async fn open(location: &str) -> StoreResult<Box<dyn ObjectStore>> {
    if let Some(rest) = location.strip_prefix("s3://") {
        let config = S3Config::from_env(rest)?;
        Ok(Box::new(S3Store::connect(config).await?))
    } else if location.contains("://") {
        Err(StoreError::new(
            ErrorKind::InvalidInput,
            format!("unsupported store '{location}': use a directory path or s3://bucket/prefix"),
        ))
    } else {
        Ok(Box::new(LocalStore::open(location)?))
    }
}
