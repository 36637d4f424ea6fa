//! The API's one error type: every failure answers `{"error": {"code", "message"}}`.
//!
//! User errors (4xx) show their message; an unexpected failure (500) is logged with its whole
//! chain and answered with an opaque message, so store paths and credentials never leak.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::registry::RegistryError;

#[derive(Debug)]
pub(crate) enum ApiError {
    /// A request the server understood and refuses (4xx), with a message for the caller.
    User {
        status: StatusCode,
        code: &'static str,
        message: String,
    },
    /// Anything else: 500, logged, not shown.
    Unexpected(anyhow::Error),
}

/// The body of every error answer (documentation type; answers are built from [`ApiError`]).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ErrorDetail {
    /// Machine-readable: `not_found`, `bad_request`, `unauthorized`, ...
    pub code: String,
    pub message: String,
}

#[derive(Serialize)]
struct Body<'a> {
    error: Detail<'a>,
}

#[derive(Serialize)]
struct Detail<'a> {
    code: &'a str,
    message: &'a str,
}

impl ApiError {
    pub(crate) fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::user(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub(crate) fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::user(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub(crate) fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::user(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub(crate) fn unprocessable(message: impl Into<String>) -> ApiError {
        ApiError::user(StatusCode::UNPROCESSABLE_ENTITY, "invalid", message)
    }

    pub(crate) fn user(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::User {
            status,
            code,
            message: message.into(),
        }
    }

    pub(crate) fn status(&self) -> StatusCode {
        match self {
            ApiError::User { status, .. } => *status,
            ApiError::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// Registry errors inside an `anyhow` chain become 404 (unknown names) or 400 (invalid names);
/// the rest is unexpected.
impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> ApiError {
        match e.downcast_ref::<RegistryError>() {
            Some(r) if r.is_not_found() => ApiError::not_found(r.to_string()),
            Some(r @ RegistryError::InvalidName { .. }) => ApiError::bad_request(r.to_string()),
            Some(r @ RegistryError::NothingToRollBack { .. }) => {
                ApiError::user(StatusCode::CONFLICT, "conflict", r.to_string())
            }
            Some(r @ RegistryError::Contended { .. }) => {
                ApiError::user(StatusCode::CONFLICT, "contended", r.to_string())
            }
            _ => ApiError::Unexpected(e),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> ApiError {
        let status = r.status();
        let code = match status {
            StatusCode::PAYLOAD_TOO_LARGE => "too_large",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
            _ => "invalid_json",
        };
        ApiError::user(status, code, r.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> ApiError {
        ApiError::bad_request(r.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> ApiError {
        ApiError::bad_request(r.body_text())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, message) = match &self {
            ApiError::User { status, code, message } => (*status, *code, message.as_str()),
            ApiError::Unexpected(e) => {
                tracing::error!(error = format!("{e:#}"), "request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal server error (see the server log)",
                )
            }
        };
        (
            status,
            Json(Body {
                error: Detail { code, message },
            }),
        )
            .into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_errors_map_to_their_status() {
        let unknown = anyhow::Error::new(RegistryError::UnknownModel {
            name: "wine".into(),
            store: "local".into(),
        })
        .context("cannot read the alias");
        assert_eq!(ApiError::from(unknown).status(), StatusCode::NOT_FOUND);
        let invalid = anyhow::Error::new(RegistryError::InvalidName {
            what: "model",
            name: "..".into(),
            reason: "dots".into(),
        });
        assert_eq!(ApiError::from(invalid).status(), StatusCode::BAD_REQUEST);
        let other = anyhow::anyhow!("disk on fire");
        assert_eq!(ApiError::from(other).status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
