//! S3 backend: any S3-compatible server (AWS, MinIO, s3s, moto, ...) through aws-sdk-s3.
//!
//! The client is configured by hand from [`S3Config`] (no aws-config): static credentials, an
//! optional custom endpoint, path-style addressing, timeouts and standard retries. Checksums are
//! only computed and validated where S3 requires them, so servers that do not speak the newer
//! flexible-checksum protocol (trailing CRC32 headers) still work.
//!
//! The files: this one holds [`S3Store`] and its [`ObjectStore`] implementation; `config.rs` the
//! [`S3Config`], its reading from the environment and the SDK client it makes; `multipart.rs`
//! the uploads in parts; `errors.rs` the mapping of SDK errors to [`ErrorKind`]s.

mod config;
mod errors;
mod multipart;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::operation::get_object::GetObjectOutput;
use aws_sdk_s3::primitives::{ByteStream, Length};
use aws_sdk_s3::types::{BucketLocationConstraint, CreateBucketConfiguration};
use bytes::Bytes;
use tokio::io::AsyncWriteExt;

use super::{ETag, ErrorKind, Key, ObjectMeta, ObjectStore, StoreError, StoreResult};
pub use config::S3Config;
use errors::{Target, map_error};

const MIB: u64 = 1024 * 1024;
/// S3's smallest part (all but the last) and largest part count in a multipart upload.
const MIN_PART_SIZE: u64 = 5 * MIB;
const MAX_PARTS: u64 = 10_000;
/// Parts uploaded at the same time.
const PARTS_IN_FLIGHT: usize = 4;
/// Uploads get this much extra operation time per MiB on top of `operation_timeout`, so a large
/// body on a slow link is not cut off by a timeout meant for small requests.
const UPLOAD_TIME_PER_MIB: Duration = Duration::from_secs(1);

/// A bucket (below an optional prefix) on an S3-compatible server.
#[derive(Debug, Clone)]
pub struct S3Store {
    client: Client,
    config: Arc<S3Config>,
}

impl S3Store {
    /// Builds the client. Nothing is sent yet: a wrong endpoint, bucket or credentials show up
    /// as an error of the matching [`ErrorKind`] on first use.
    pub async fn connect(config: S3Config) -> StoreResult<S3Store> {
        config.validate()?;
        Ok(S3Store {
            client: config.client(),
            config: Arc::new(config),
        })
    }

    pub fn config(&self) -> &S3Config {
        &self.config
    }

    /// Creates the bucket; a bucket that already exists is fine.
    pub async fn ensure_bucket(&self) -> StoreResult<()> {
        let mut request = self.client.create_bucket().bucket(&self.config.bucket);
        if self.config.region != "us-east-1" {
            request = request.create_bucket_configuration(
                CreateBucketConfiguration::builder()
                    .location_constraint(BucketLocationConstraint::from(self.config.region.as_str()))
                    .build(),
            );
        }
        match request.send().await {
            Ok(_) => {
                tracing::info!(bucket = %self.config.bucket, endpoint = %self.config.endpoint_label(), "created bucket");
                Ok(())
            }
            Err(e) if matches!(e.code(), Some("BucketAlreadyOwnedByYou" | "BucketAlreadyExists")) => Ok(()),
            Err(e) => Err(map_error(&self.config, "create bucket", Target::Bucket, e)),
        }
    }

    /// The full key of `key` in the bucket.
    async fn get_object(&self, key: &Key) -> StoreResult<GetObjectOutput> {
        self.client
            .get_object()
            .bucket(&self.config.bucket)
            .key(self.object_key(key))
            .send()
            .await
            .map_err(|e| map_error(&self.config, "get", Target::Object(key), e))
    }

    async fn collect(&self, key: &Key, output: GetObjectOutput) -> StoreResult<Bytes> {
        let body = output.body.collect().await.map_err(|e| {
            StoreError::with_source(
                ErrorKind::Unavailable,
                format!(
                    "reading object '{key}' from S3 at {} failed: {e}",
                    self.config.endpoint_label()
                ),
                e,
            )
        })?;
        Ok(body.into_bytes())
    }

    /// A put with `If-None-Match: *` or `If-Match: ETAG`. A lost race (412, or 409 when the
    /// server saw two conditional writes at once) is [`ErrorKind::AlreadyExists`] for a create
    /// and [`ErrorKind::Conflict`] for a replace.
    async fn put_conditionally(&self, key: &Key, body: Bytes, condition: Condition<'_>) -> StoreResult<()> {
        let len = body.len() as u64;
        let request = self
            .client
            .put_object()
            .bucket(&self.config.bucket)
            .key(self.object_key(key));
        let request = match condition {
            Condition::Absent => request.if_none_match("*"),
            Condition::Matches(tag) => request.if_match(&tag.0),
        };
        let result = request
            .body(ByteStream::from(body))
            .customize()
            .config_override(aws_sdk_s3::Config::builder().timeout_config(self.upload_timeout(len)))
            .send()
            .await;
        let Err(e) = result else { return Ok(()) };
        let status = e.raw_response().map(|r| r.status().as_u16());
        let lost_race = matches!(e.code(), Some("PreconditionFailed" | "ConditionalRequestConflict"))
            || (e.code().is_none() && matches!(status, Some(409 | 412)));
        match condition {
            Condition::Absent if lost_race => Err(StoreError::with_source(
                ErrorKind::AlreadyExists,
                format!("object '{key}' already exists in {}", self.config.location()),
                e,
            )),
            Condition::Matches(tag) if lost_race => Err(StoreError::with_source(
                ErrorKind::Conflict,
                format!(
                    "object '{key}' in {} changed since it was read (expected ETag {tag})",
                    self.config.location()
                ),
                e,
            )),
            Condition::Absent => Err(map_error(&self.config, "create", Target::Object(key), e)),
            Condition::Matches(_) => Err(map_error(&self.config, "replace", Target::Object(key), e)),
        }
    }

    fn object_key(&self, key: &Key) -> String {
        if self.config.prefix.is_empty() {
            key.as_str().to_owned()
        } else {
            format!("{}/{}", self.config.prefix, key)
        }
    }

    fn upload_timeout(&self, bytes: u64) -> TimeoutConfig {
        TimeoutConfig::builder()
            .operation_timeout(upload_timeout(&self.config, bytes))
            .build()
    }
}

/// What a conditional put requires of the object already at the key.
#[derive(Clone, Copy)]
enum Condition<'a> {
    Absent,
    Matches(&'a ETag),
}

fn upload_timeout(config: &S3Config, bytes: u64) -> Duration {
    config.operation_timeout + UPLOAD_TIME_PER_MIB * u32::try_from(bytes / MIB).unwrap_or(u32::MAX)
}

#[async_trait]
impl ObjectStore for S3Store {
    fn describe(&self) -> String {
        self.config.location()
    }

    async fn put(&self, key: &Key, body: Bytes) -> StoreResult<()> {
        let len = body.len() as u64;
        self.client
            .put_object()
            .bucket(&self.config.bucket)
            .key(self.object_key(key))
            .body(ByteStream::from(body))
            .customize()
            .config_override(aws_sdk_s3::Config::builder().timeout_config(self.upload_timeout(len)))
            .send()
            .await
            .map_err(|e| map_error(&self.config, "put", Target::Object(key), e))?;
        Ok(())
    }

    async fn put_file(&self, key: &Key, path: &Path) -> StoreResult<()> {
        let size = tokio::fs::metadata(path)
            .await
            .map_err(|e| StoreError::io(path.display(), e))?
            .len();
        if size >= self.config.multipart_threshold {
            return self.put_multipart(key, path, size).await;
        }
        let body = ByteStream::read_from()
            .path(path)
            .length(Length::Exact(size))
            .build()
            .await
            .map_err(|e| {
                StoreError::with_source(ErrorKind::Other, format!("cannot read {}: {e}", path.display()), e)
            })?;
        self.client
            .put_object()
            .bucket(&self.config.bucket)
            .key(self.object_key(key))
            .content_length(size as i64)
            .body(body)
            .customize()
            .config_override(aws_sdk_s3::Config::builder().timeout_config(self.upload_timeout(size)))
            .send()
            .await
            .map_err(|e| map_error(&self.config, "put", Target::Object(key), e))?;
        Ok(())
    }

    async fn create_new(&self, key: &Key, body: Bytes) -> StoreResult<()> {
        self.put_conditionally(key, body, Condition::Absent).await
    }

    async fn get(&self, key: &Key) -> StoreResult<Bytes> {
        let output = self.get_object(key).await?;
        self.collect(key, output).await
    }

    async fn get_tagged(&self, key: &Key) -> StoreResult<(Bytes, ETag)> {
        let output = self.get_object(key).await?;
        let Some(tag) = output.e_tag.clone() else {
            return Err(StoreError::new(
                ErrorKind::Other,
                format!(
                    "S3 at {} answered object '{key}' without an ETag: conditional writes need one",
                    self.config.endpoint_label()
                ),
            ));
        };
        let body = self.collect(key, output).await?;
        Ok((body, ETag(tag)))
    }

    async fn put_if_match(&self, key: &Key, body: Bytes, expected: &ETag) -> StoreResult<()> {
        self.put_conditionally(key, body, Condition::Matches(expected)).await
    }

    async fn get_to_file(&self, key: &Key, path: &Path) -> StoreResult<u64> {
        let mut output = self.get_object(key).await?;
        let write_err = |e: std::io::Error| StoreError::io(path.display(), e);
        let mut file = tokio::fs::File::create(path).await.map_err(write_err)?;
        let mut written = 0u64;
        loop {
            let chunk = output.body.try_next().await.map_err(|e| {
                StoreError::with_source(
                    ErrorKind::Unavailable,
                    format!(
                        "reading object '{key}' from S3 at {} failed after {written} bytes: {e}",
                        self.config.endpoint_label()
                    ),
                    e,
                )
            })?;
            let Some(chunk) = chunk else { break };
            file.write_all(&chunk).await.map_err(write_err)?;
            written += chunk.len() as u64;
        }
        file.flush().await.map_err(write_err)?;
        file.sync_all().await.map_err(write_err)?;
        Ok(written)
    }

    async fn head(&self, key: &Key) -> StoreResult<ObjectMeta> {
        let output = self
            .client
            .head_object()
            .bucket(&self.config.bucket)
            .key(self.object_key(key))
            .send()
            .await
            .map_err(|e| map_error(&self.config, "head", Target::Object(key), e))?;
        Ok(ObjectMeta {
            key: key.clone(),
            size: output.content_length.unwrap_or(0).max(0) as u64,
        })
    }

    async fn list(&self, prefix: &str) -> StoreResult<Vec<ObjectMeta>> {
        let base = if self.config.prefix.is_empty() {
            String::new()
        } else {
            format!("{}/", self.config.prefix)
        };
        let page_size = i32::try_from(self.config.list_page_size).unwrap_or(1000);
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .client
                .list_objects_v2()
                .bucket(&self.config.bucket)
                .prefix(format!("{base}{prefix}"))
                .max_keys(page_size)
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(|e| map_error(&self.config, "list", Target::Listing(prefix), e))?;
            for object in page.contents() {
                let Some(relative) = object.key().and_then(|k| k.strip_prefix(&base)) else {
                    continue;
                };
                // Objects written by other tools may not be valid keys; they are not ours.
                if let Ok(key) = Key::new(relative) {
                    let size = object.size().unwrap_or(0).max(0) as u64;
                    out.push(ObjectMeta { key, size });
                }
            }
            match page.next_continuation_token() {
                Some(next) if page.is_truncated() == Some(true) => token = Some(next.to_owned()),
                _ => break,
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    async fn delete(&self, key: &Key) -> StoreResult<()> {
        let result = self
            .client
            .delete_object()
            .bucket(&self.config.bucket)
            .key(self.object_key(key))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // S3 answers 204 for an absent object; some servers say NoSuchKey instead, which is
            // what we wanted too. A missing bucket (NoSuchBucket) is still an error.
            Err(e)
                if e.code() == Some("NoSuchKey")
                    || (e.code().is_none() && e.raw_response().map(|r| r.status().as_u16()) == Some(404)) =>
            {
                Ok(())
            }
            Err(e) => Err(map_error(&self.config, "delete", Target::Object(key), e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::config::tests::{CREDS, config};
    use super::*;

    #[tokio::test]
    async fn keys_live_below_the_prefix() {
        let c = S3Config {
            prefix: "p/q".into(),
            ..config("b", &CREDS).unwrap()
        };
        let store = S3Store::connect(c).await.unwrap();
        assert_eq!(store.object_key(&Key::new("a/b").unwrap()), "p/q/a/b");
        assert_eq!(store.describe(), "s3://b/p/q");
        let bad = S3Config {
            part_size: MIB,
            ..config("b", &CREDS).unwrap()
        };
        assert_eq!(S3Store::connect(bad).await.unwrap_err().kind(), ErrorKind::InvalidInput);
    }
}
