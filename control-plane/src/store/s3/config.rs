//! [`S3Config`]: where the bucket is and how to reach it, read from the environment the way the
//! AWS tools do, and the SDK client it makes.

use std::fmt;
use std::time::Duration;

use aws_sdk_s3::Client;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};

use super::{MIB, MIN_PART_SIZE};
use crate::store::{ErrorKind, Key, StoreError, StoreResult};

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
    pub(super) fn validate(&self) -> StoreResult<()> {
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

    /// The SDK client for this configuration (static credentials, no aws-config). Nothing is
    /// sent yet.
    pub(super) fn client(&self) -> Client {
        let credentials = Credentials::new(
            &self.access_key_id,
            &self.secret_access_key,
            self.session_token.clone(),
            None,
            "wasmline",
        );
        let mut builder = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(self.region.clone()))
            .credentials_provider(credentials)
            .force_path_style(self.force_path_style)
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(self.connect_timeout)
                    .operation_timeout(self.operation_timeout)
                    .build(),
            )
            .retry_config(RetryConfig::standard().with_max_attempts(self.max_attempts))
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
        if let Some(endpoint) = &self.endpoint {
            builder = builder.endpoint_url(endpoint.trim_end_matches('/'));
        }
        Client::from_conf(builder.build())
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

#[cfg(test)]
pub(super) mod tests {
    use std::collections::HashMap;

    use super::*;

    pub(in crate::store::s3) fn config(location: &str, vars: &[(&str, &str)]) -> StoreResult<S3Config> {
        let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        S3Config::from_lookup(location, |name| vars.get(name).cloned())
    }

    pub(in crate::store::s3) const CREDS: [(&str, &str); 2] =
        [("AWS_ACCESS_KEY_ID", "AK"), ("AWS_SECRET_ACCESS_KEY", "SK")];

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
}
