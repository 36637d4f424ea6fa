//! S3 backend (aws-sdk-s3). Being written: see the helper task.
use std::path::Path;

use async_trait::async_trait;
use bytes::Bytes;

use super::{ErrorKind, Key, ObjectMeta, ObjectStore, StoreError, StoreResult};

/// Where and how to reach an S3-compatible bucket.
#[derive(Debug, Clone)]
pub struct S3Config {
    pub bucket: String,
    /// Key prefix inside the bucket, without leading or trailing `/` (may be empty).
    pub prefix: String,
    pub endpoint: Option<String>,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
    pub force_path_style: bool,
    /// Objects at least this large are uploaded in parts.
    pub multipart_threshold: u64,
    pub part_size: u64,
}

impl S3Config {
    pub fn from_env(_bucket_and_prefix: &str) -> StoreResult<S3Config> {
        Err(StoreError::new(ErrorKind::Unavailable, "S3 backend not built yet"))
    }
}

#[derive(Debug)]
pub struct S3Store {
    config: S3Config,
}

impl S3Store {
    pub async fn connect(config: S3Config) -> StoreResult<S3Store> {
        Ok(S3Store { config })
    }
}

#[async_trait]
impl ObjectStore for S3Store {
    fn describe(&self) -> String {
        format!("s3://{}/{}", self.config.bucket, self.config.prefix)
    }
    async fn put(&self, _key: &Key, _body: Bytes) -> StoreResult<()> {
        Err(StoreError::new(ErrorKind::Unavailable, "S3 backend not built yet"))
    }
    async fn put_file(&self, _key: &Key, _path: &Path) -> StoreResult<()> {
        Err(StoreError::new(ErrorKind::Unavailable, "S3 backend not built yet"))
    }
    async fn create_new(&self, _key: &Key, _body: Bytes) -> StoreResult<()> {
        Err(StoreError::new(ErrorKind::Unavailable, "S3 backend not built yet"))
    }
    async fn get(&self, _key: &Key) -> StoreResult<Bytes> {
        Err(StoreError::new(ErrorKind::Unavailable, "S3 backend not built yet"))
    }
    async fn get_to_file(&self, _key: &Key, _path: &Path) -> StoreResult<u64> {
        Err(StoreError::new(ErrorKind::Unavailable, "S3 backend not built yet"))
    }
    async fn head(&self, _key: &Key) -> StoreResult<ObjectMeta> {
        Err(StoreError::new(ErrorKind::Unavailable, "S3 backend not built yet"))
    }
    async fn list(&self, _prefix: &str) -> StoreResult<Vec<ObjectMeta>> {
        Err(StoreError::new(ErrorKind::Unavailable, "S3 backend not built yet"))
    }
    async fn delete(&self, _key: &Key) -> StoreResult<()> {
        Err(StoreError::new(ErrorKind::Unavailable, "S3 backend not built yet"))
    }
}
