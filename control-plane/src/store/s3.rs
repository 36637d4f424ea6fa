//! S3 backend: any S3-compatible server (AWS, MinIO, s3s, moto, ...) through aws-sdk-s3.
//!
//! The client is configured by hand from [`S3Config`] (no aws-config): static credentials, an
//! optional custom endpoint, path-style addressing, timeouts and standard retries. Checksums are
//! only computed and validated where S3 requires them, so servers that do not speak the newer
//! flexible-checksum protocol (trailing CRC32 headers) still work.

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::{ByteStream, Length};
use aws_sdk_s3::types::{BucketLocationConstraint, CompletedMultipartUpload, CompletedPart, CreateBucketConfiguration};
use bytes::Bytes;
use tokio::io::AsyncWriteExt;

use super::{ErrorKind, Key, ObjectMeta, ObjectStore, StoreError, StoreResult};

const MIB: u64 = 1024 * 1024;
/// S3's smallest part (all but the last) and largest part count in a multipart upload.
const MIN_PART_SIZE: u64 = 5 * MIB;
const MAX_PARTS: u64 = 10_000;
/// Parts uploaded at the same time.
const PARTS_IN_FLIGHT: usize = 4;
/// Uploads get this much extra operation time per MiB on top of `operation_timeout`, so a large
/// body on a slow link is not cut off by a timeout meant for small requests.
const UPLOAD_TIME_PER_MIB: Duration = Duration::from_secs(1);

/// Where and how to reach an S3-compatible bucket.
///
/// [`S3Config::from_env`] reads it the way the AWS tools do; tests build it with [`S3Config::new`]
/// and struct update syntax.
#[derive(Clone)]
pub struct S3Config {
    pub bucket: String,
    /// Key prefix inside the bucket, without leading or trailing `/` (may be empty).
    pub prefix: String,
    /// E.g. `http://127.0.0.1:9000`; `None` means AWS itself.
    pub endpoint: Option<String>,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
    /// `http://host/bucket/key` instead of `http://bucket.host/key` (most non-AWS servers).
    pub force_path_style: bool,
    /// Objects at least this large are uploaded in parts.
    pub multipart_threshold: u64,
    /// Size of each part (at least 5 MiB; raised when a file would need more than 10 000 parts).
    pub part_size: u64,
    /// Keys asked for per ListObjectsV2 request (1 to 1000).
    pub list_page_size: u32,
    /// Limit on establishing a connection.
    pub connect_timeout: Duration,
    /// Limit on one operation, retries included (uploads get more time per MiB of body).
    pub operation_timeout: Duration,
    /// Attempts per operation, the first included (standard retry mode).
    pub max_attempts: u32,
}

impl fmt::Debug for S3Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Config")
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field("session_token", &self.session_token.as_ref().map(|_| "<redacted>"))
            .field("force_path_style", &self.force_path_style)
            .field("multipart_threshold", &self.multipart_threshold)
            .field("part_size", &self.part_size)
            .field("list_page_size", &self.list_page_size)
            .field("connect_timeout", &self.connect_timeout)
            .field("operation_timeout", &self.operation_timeout)
            .field("max_attempts", &self.max_attempts)
            .finish()
    }
}

impl S3Config {
    /// A configuration for `bucket` on AWS (us-east-1) with default limits.
    pub fn new(
        bucket: impl Into<String>,
        access_key_id: impl Into<String>,
        secret_access_key: impl Into<String>,
    ) -> S3Config {
        S3Config {
            bucket: bucket.into(),
            prefix: String::new(),
            endpoint: None,
            region: "us-east-1".to_owned(),
            access_key_id: access_key_id.into(),
            secret_access_key: secret_access_key.into(),
            session_token: None,
            force_path_style: false,
            multipart_threshold: 16 * MIB,
            part_size: 8 * MIB,
            list_page_size: 1000,
            connect_timeout: Duration::from_secs(5),
            operation_timeout: Duration::from_secs(60),
            max_attempts: 3,
        }
    }

    /// Reads `bucket[/prefix]` plus the usual AWS environment variables: `AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION` / `AWS_DEFAULT_REGION` (default
    /// us-east-1), `AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL`, and `WASMLINE_S3_PATH_STYLE`
    /// (`true`/`false`; by default path-style exactly when an endpoint is set).
    pub fn from_env(bucket_and_prefix: &str) -> StoreResult<S3Config> {
        S3Config::from_lookup(bucket_and_prefix, |name| std::env::var(name).ok())
    }

    fn from_lookup(bucket_and_prefix: &str, lookup: impl Fn(&str) -> Option<String>) -> StoreResult<S3Config> {
        let var = |name: &str| lookup(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let (bucket, prefix) = parse_location(bucket_and_prefix)?;
        let (Some(access_key_id), Some(secret_access_key)) = (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY"))
        else {
            return Err(StoreError::new(
                ErrorKind::Unauthorized,
                format!(
                    "no S3 credentials for s3://{bucket_and_prefix}: set AWS_ACCESS_KEY_ID and \
                     AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary credentials)"
                ),
            ));
        };
        let endpoint = var("AWS_ENDPOINT_URL_S3").or_else(|| var("AWS_ENDPOINT_URL"));
        let force_path_style = match var("WASMLINE_S3_PATH_STYLE") {
            None => endpoint.is_some(),
            Some(v) => parse_bool(&v).ok_or_else(|| {
                StoreError::new(
                    ErrorKind::InvalidInput,
                    format!("WASMLINE_S3_PATH_STYLE must be true or false, not '{v}'"),
                )
            })?,
        };
        Ok(S3Config {
            prefix,
            endpoint,
            region: var("AWS_REGION")
                .or_else(|| var("AWS_DEFAULT_REGION"))
                .unwrap_or_else(|| "us-east-1".to_owned()),
            session_token: var("AWS_SESSION_TOKEN"),
            force_path_style,
            ..S3Config::new(bucket, access_key_id, secret_access_key)
        })
    }

    /// The server this configuration talks to, for messages.
    pub fn endpoint_label(&self) -> String {
        match &self.endpoint {
            Some(endpoint) => endpoint.trim_end_matches('/').to_owned(),
            None => format!("https://s3.{}.amazonaws.com", self.region),
        }
    }

    /// `s3://bucket/prefix` (or `s3://bucket`).
    pub fn location(&self) -> String {
        if self.prefix.is_empty() {
            format!("s3://{}", self.bucket)
        } else {
            format!("s3://{}/{}", self.bucket, self.prefix)
        }
    }

    /// Checks what a caller may have set by hand.
    fn validate(&self) -> StoreResult<()> {
        let invalid = |msg: String| Err(StoreError::new(ErrorKind::InvalidInput, msg));
        check_bucket(&self.bucket)?;
        if !self.prefix.is_empty() {
            Key::new(self.prefix.as_str()).map_err(|e| {
                StoreError::new(
                    ErrorKind::InvalidInput,
                    format!("invalid S3 prefix '{}': {e}", self.prefix),
                )
            })?;
        }
        if let Some(endpoint) = &self.endpoint
            && !(endpoint.starts_with("http://") || endpoint.starts_with("https://"))
        {
            return invalid(format!(
                "invalid S3 endpoint '{endpoint}': expected http://host[:port] or https://host[:port]"
            ));
        }
        if self.part_size < MIN_PART_SIZE {
            return invalid(format!(
                "S3 part size {} is below S3's minimum of 5 MiB",
                self.part_size
            ));
        }
        if !(1..=1000).contains(&self.list_page_size) {
            return invalid(format!(
                "S3 list page size {} is not between 1 and 1000",
                self.list_page_size
            ));
        }
        if self.max_attempts == 0 {
            return invalid("S3 max_attempts must be at least 1".to_owned());
        }
        Ok(())
    }
}

/// Splits `bucket[/prefix]` and checks both halves.
fn parse_location(bucket_and_prefix: &str) -> StoreResult<(String, String)> {
    let trimmed = bucket_and_prefix.trim_matches('/');
    let (bucket, prefix) = trimmed.split_once('/').unwrap_or((trimmed, ""));
    check_bucket(bucket)?;
    let prefix = prefix.trim_matches('/');
    if !prefix.is_empty() {
        Key::new(prefix).map_err(|e| {
            StoreError::new(
                ErrorKind::InvalidInput,
                format!("invalid S3 location 's3://{bucket_and_prefix}': {e}"),
            )
        })?;
    }
    Ok((bucket.to_owned(), prefix.to_owned()))
}

fn check_bucket(bucket: &str) -> StoreResult<()> {
    let ok = !bucket.is_empty()
        && bucket.len() <= 255
        && bucket.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(StoreError::new(
            ErrorKind::InvalidInput,
            format!("invalid S3 bucket name '{bucket}': use s3://bucket[/prefix]"),
        ))
    }
}

fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

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
        let credentials = Credentials::new(
            &config.access_key_id,
            &config.secret_access_key,
            config.session_token.clone(),
            None,
            "wasmline",
        );
        let mut builder = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(config.region.clone()))
            .credentials_provider(credentials)
            .force_path_style(config.force_path_style)
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(config.connect_timeout)
                    .operation_timeout(config.operation_timeout)
                    .build(),
            )
            .retry_config(RetryConfig::standard().with_max_attempts(config.max_attempts))
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
        if let Some(endpoint) = &config.endpoint {
            builder = builder.endpoint_url(endpoint.trim_end_matches('/'));
        }
        Ok(S3Store {
            client: Client::from_conf(builder.build()),
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
    async fn get_object(&self, key: &Key) -> StoreResult<aws_sdk_s3::operation::get_object::GetObjectOutput> {
        self.client
            .get_object()
            .bucket(&self.config.bucket)
            .key(self.object_key(key))
            .send()
            .await
            .map_err(|e| map_error(&self.config, "get", Target::Object(key), e))
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

    async fn put_multipart(&self, key: &Key, path: &Path, size: u64) -> StoreResult<()> {
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

fn upload_timeout(config: &S3Config, bytes: u64) -> Duration {
    config.operation_timeout + UPLOAD_TIME_PER_MIB * u32::try_from(bytes / MIB).unwrap_or(u32::MAX)
}

/// An error and its sources, `a: b: c`, without the SDK's debug dump.
fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = cause.source();
    }
    out
}

/// What an operation was about, for messages.
#[derive(Debug, Clone, Copy)]
enum Target<'a> {
    Object(&'a Key),
    Listing(&'a str),
    Bucket,
}

/// Maps an SDK error to a store error whose kind callers can branch on and whose message says
/// what to do.
fn map_error<E>(config: &S3Config, op: &str, target: Target<'_>, err: SdkError<E>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let endpoint = config.endpoint_label();
    let location = config.location();
    let subject = match target {
        Target::Object(key) => format!("object '{key}' in {location}"),
        Target::Listing(prefix) => format!("objects under '{prefix}' in {location}"),
        Target::Bucket => format!("bucket '{}'", config.bucket),
    };
    match &err {
        SdkError::TimeoutError(_) => {
            let message = format!(
                "S3 at {endpoint} did not finish {op} of {subject} within {:?}",
                config.operation_timeout
            );
            return StoreError::with_source(ErrorKind::Unavailable, message, err);
        }
        SdkError::DispatchFailure(failure) => {
            let why = if failure.is_timeout() { "timed out" } else { "failed" };
            let message = format!(
                "cannot reach S3 at {endpoint} ({op} of {subject} {why}): {}",
                error_chain(&err)
            );
            return StoreError::with_source(ErrorKind::Unavailable, message, err);
        }
        _ => {}
    }
    let status = err.raw_response().map(|r| r.status().as_u16());
    let code = err.code().map(str::to_owned);
    let reason = code
        .clone()
        .or_else(|| status.map(|s| format!("HTTP {s}")))
        .unwrap_or_else(|| "no response".to_owned());
    let (kind, message) = match (code.as_deref(), status) {
        (Some("NoSuchBucket"), _) => (
            ErrorKind::NotFound,
            format!("bucket '{}' does not exist at {endpoint} ({op})", config.bucket),
        ),
        (Some("NoSuchKey" | "NotFound" | "NoSuchUpload"), _) | (None, Some(404)) => {
            (ErrorKind::NotFound, format!("{subject} not found"))
        }
        (
            Some(
                "SignatureDoesNotMatch"
                | "InvalidAccessKeyId"
                | "InvalidToken"
                | "ExpiredToken"
                | "InvalidSecurity"
                | "AuthorizationHeaderMalformed",
            ),
            _,
        ) => (
            ErrorKind::Unauthorized,
            format!(
                "S3 at {endpoint} rejected the credentials ({reason}): check AWS_ACCESS_KEY_ID and \
                 AWS_SECRET_ACCESS_KEY"
            ),
        ),
        (Some("AccessDenied"), _) | (_, Some(401 | 403)) => (
            ErrorKind::Unauthorized,
            format!(
                "S3 at {endpoint} denied {op} of {subject} ({reason}): check the credentials in \
                 AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY and what they may access"
            ),
        ),
        (Some("SlowDown" | "ServiceUnavailable" | "RequestTimeout"), _) | (_, Some(503)) => (
            ErrorKind::Unavailable,
            format!("S3 at {endpoint} is unavailable ({reason}) for {op} of {subject}"),
        ),
        _ => (
            ErrorKind::Other,
            format!(
                "S3 at {endpoint}: {op} of {subject} failed ({reason}): {}",
                error_chain(&err)
            ),
        ),
    };
    StoreError::with_source(kind, message, err)
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
        let len = body.len() as u64;
        let result = self
            .client
            .put_object()
            .bucket(&self.config.bucket)
            .key(self.object_key(key))
            .if_none_match("*")
            .body(ByteStream::from(body))
            .customize()
            .config_override(aws_sdk_s3::Config::builder().timeout_config(self.upload_timeout(len)))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) => {
                let status = e.raw_response().map(|r| r.status().as_u16());
                let lost_race = matches!(e.code(), Some("PreconditionFailed" | "ConditionalRequestConflict"))
                    || (e.code().is_none() && matches!(status, Some(409 | 412)));
                if lost_race {
                    Err(StoreError::with_source(
                        ErrorKind::AlreadyExists,
                        format!("object '{key}' already exists in {}", self.config.location()),
                        e,
                    ))
                } else {
                    Err(map_error(&self.config, "create", Target::Object(key), e))
                }
            }
        }
    }

    async fn get(&self, key: &Key) -> StoreResult<Bytes> {
        let output = self.get_object(key).await?;
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
    use std::collections::HashMap;

    use super::*;

    fn config(location: &str, vars: &[(&str, &str)]) -> StoreResult<S3Config> {
        let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        S3Config::from_lookup(location, |name| vars.get(name).cloned())
    }

    const CREDS: [(&str, &str); 2] = [("AWS_ACCESS_KEY_ID", "AK"), ("AWS_SECRET_ACCESS_KEY", "SK")];

    #[test]
    fn reads_bucket_prefix_and_defaults() {
        let c = config("bucket/some/prefix/", &CREDS).unwrap();
        assert_eq!((c.bucket.as_str(), c.prefix.as_str()), ("bucket", "some/prefix"));
        assert_eq!(c.region, "us-east-1");
        assert_eq!(c.endpoint, None);
        assert!(!c.force_path_style);
        assert_eq!(c.location(), "s3://bucket/some/prefix");
        assert_eq!(c.endpoint_label(), "https://s3.us-east-1.amazonaws.com");
        let c = config("bucket", &CREDS).unwrap();
        assert_eq!((c.bucket.as_str(), c.prefix.as_str()), ("bucket", ""));
        assert_eq!(c.location(), "s3://bucket");
    }

    #[test]
    fn endpoint_region_and_path_style() {
        let mut vars = CREDS.to_vec();
        vars.extend([
            ("AWS_ENDPOINT_URL", "http://generic:1"),
            ("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9000/"),
            ("AWS_DEFAULT_REGION", "eu-west-1"),
            ("AWS_SESSION_TOKEN", "T"),
        ]);
        let c = config("b", &vars).unwrap();
        assert_eq!(c.endpoint.as_deref(), Some("http://127.0.0.1:9000/"));
        assert_eq!(c.endpoint_label(), "http://127.0.0.1:9000");
        assert_eq!(c.region, "eu-west-1");
        assert_eq!(c.session_token.as_deref(), Some("T"));
        assert!(c.force_path_style);
        vars.extend([("AWS_REGION", "ap-south-1"), ("WASMLINE_S3_PATH_STYLE", "false")]);
        let c = config("b", &vars).unwrap();
        assert_eq!(c.region, "ap-south-1");
        assert!(!c.force_path_style);
        vars.push(("WASMLINE_S3_PATH_STYLE", "maybe"));
        let err = config("b", &vars).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
    }

    #[test]
    fn missing_credentials_name_the_variables() {
        let err = config("b", &[("AWS_ACCESS_KEY_ID", "AK")]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unauthorized);
        assert!(err.to_string().contains("AWS_SECRET_ACCESS_KEY"), "{err}");
        assert!(err.to_string().contains("AWS_ACCESS_KEY_ID"), "{err}");
    }

    #[test]
    fn refuses_bad_locations() {
        for location in ["", "/", "bad bucket", "b/../x", "b/a//c"] {
            let err = config(location, &CREDS).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{location}");
        }
    }

    #[test]
    fn debug_hides_the_secret() {
        let c = config("b", &CREDS).unwrap();
        let shown = format!("{c:?}");
        assert!(shown.contains("AK") && !shown.contains("\"SK\""), "{shown}");
    }

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
