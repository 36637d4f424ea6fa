//! Multipart uploads: files at least [`S3Config::multipart_threshold`] large go up in parts,
//! several at a time; a failed upload is aborted so that S3 does not keep its parts.
//!
//! [`S3Config::multipart_threshold`]: super::S3Config::multipart_threshold

use std::path::Path;

use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::primitives::{ByteStream, Length};
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};

use super::errors::{Target, error_chain, map_error};
use super::{MAX_PARTS, PARTS_IN_FLIGHT, S3Store, upload_timeout};
use crate::store::{ErrorKind, Key, StoreError, StoreResult};

impl S3Store {
    pub(super) async fn put_multipart(&self, key: &Key, path: &Path, size: u64) -> StoreResult<()> {
        let object_key = self.object_key(key);
        let created = self
            .client
            .create_multipart_upload()
            .bucket(&self.config.bucket)
            .key(&object_key)
            .send()
            .await
            .map_err(|e| map_error(&self.config, "start multipart upload", Target::Object(key), e))?;
        let Some(upload_id) = created.upload_id else {
            return Err(StoreError::new(
                ErrorKind::Other,
                format!(
                    "S3 at {} started a multipart upload of '{key}' without an upload id",
                    self.config.endpoint_label()
                ),
            ));
        };
        let result = async {
            let parts = self.upload_parts(key, &object_key, &upload_id, path, size).await?;
            self.client
                .complete_multipart_upload()
                .bucket(&self.config.bucket)
                .key(&object_key)
                .upload_id(&upload_id)
                .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
                .send()
                .await
                .map_err(|e| map_error(&self.config, "complete multipart upload", Target::Object(key), e))?;
            Ok(())
        }
        .await;
        if result.is_err() {
            let aborted = self
                .client
                .abort_multipart_upload()
                .bucket(&self.config.bucket)
                .key(&object_key)
                .upload_id(&upload_id)
                .send()
                .await;
            if let Err(e) = aborted {
                tracing::warn!(key = %key, upload_id, error = %error_chain(&e), "could not abort multipart upload");
            }
        }
        result
    }

    /// Uploads `path` in parts, [`PARTS_IN_FLIGHT`] at a time; returns them in order.
    async fn upload_parts(
        &self,
        key: &Key,
        object_key: &str,
        upload_id: &str,
        path: &Path,
        size: u64,
    ) -> StoreResult<Vec<CompletedPart>> {
        let part_size = self.config.part_size.max(size.div_ceil(MAX_PARTS));
        let count = size.div_ceil(part_size).max(1);
        let mut tasks = tokio::task::JoinSet::new();
        let mut parts = Vec::with_capacity(count as usize);
        let mut next = 0u64;
        while next < count || !tasks.is_empty() {
            while next < count && tasks.len() < PARTS_IN_FLIGHT {
                let offset = next * part_size;
                let length = part_size.min(size - offset);
                let number = i32::try_from(next + 1).expect("at most 10 000 parts");
                let (client, config) = (self.client.clone(), self.config.clone());
                let (key, object_key, upload_id) = (key.clone(), object_key.to_owned(), upload_id.to_owned());
                let path = path.to_owned();
                tasks.spawn(async move {
                    let body = ByteStream::read_from()
                        .path(&path)
                        .offset(offset)
                        .length(Length::Exact(length))
                        .build()
                        .await
                        .map_err(|e| {
                            StoreError::with_source(ErrorKind::Other, format!("cannot read {}: {e}", path.display()), e)
                        })?;
                    let uploaded = client
                        .upload_part()
                        .bucket(&config.bucket)
                        .key(&object_key)
                        .upload_id(&upload_id)
                        .part_number(number)
                        .content_length(length as i64)
                        .body(body)
                        .customize()
                        .config_override(
                            aws_sdk_s3::Config::builder().timeout_config(
                                TimeoutConfig::builder()
                                    .operation_timeout(upload_timeout(&config, length))
                                    .build(),
                            ),
                        )
                        .send()
                        .await
                        .map_err(|e| map_error(&config, &format!("upload part {number}"), Target::Object(&key), e))?;
                    Ok::<_, StoreError>(
                        CompletedPart::builder()
                            .part_number(number)
                            .set_e_tag(uploaded.e_tag)
                            .build(),
                    )
                });
                next += 1;
            }
            if let Some(joined) = tasks.join_next().await {
                let part =
                    joined.map_err(|e| StoreError::new(ErrorKind::Other, format!("upload task failed: {e}")))??;
                parts.push(part);
            }
        }
        parts.sort_by_key(|p| p.part_number);
        Ok(parts)
    }
}
