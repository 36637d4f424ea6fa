//! SDK errors -> [`StoreError`]s whose [`ErrorKind`] callers can branch on and whose messages
//! say what to do.

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};

use super::S3Config;
use crate::store::{ErrorKind, Key, StoreError};

/// An error and its sources, `a: b: c`, without the SDK's debug dump.
pub(super) fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
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
pub(super) enum Target<'a> {
    Object(&'a Key),
    Listing(&'a str),
    Bucket,
}

/// Maps an SDK error to a store error whose kind callers can branch on and whose message says
/// what to do.
pub(super) fn map_error<E>(config: &S3Config, op: &str, target: Target<'_>, err: SdkError<E>) -> StoreError
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
