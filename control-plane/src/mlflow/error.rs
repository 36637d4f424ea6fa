/// What went wrong when talking to MLflow. Every message names the tracking URI and the call
/// (`POST /api/2.0/mlflow/runs/create`), so a warning in a log is enough to find the cause.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MlflowError {
    /// No answer: connection refused, DNS failure, TLS failure or a timeout.
    #[error("MLflow at {uri} is unreachable ({call}): {message}")]
    Unreachable { uri: String, call: String, message: String },
    /// The server answered with an error status. `error_code` is MLflow's (`RESOURCE_DOES_NOT_EXIST`,
    /// `INVALID_PARAMETER_VALUE`, ...), empty when the body was not MLflow's JSON error (a proxy's
    /// HTML page, say).
    #[error("MLflow at {uri} answered {call} with HTTP {status}{}: {message}", code_suffix(.error_code))]
    Http {
        uri: String,
        call: String,
        status: u16,
        error_code: String,
        message: String,
    },
    /// A configuration or argument we refuse before sending anything, or a server set up in a way
    /// we cannot use (an experiment that is deleted, artifacts that are not proxied).
    #[error("MLflow at {uri}: {call}: {message}")]
    Invalid { uri: String, call: String, message: String },
    /// The server answered 2xx with a body we cannot read (not JSON, a field missing).
    #[error("MLflow at {uri} gave an unexpected answer to {call}: {message}")]
    BadResponse { uri: String, call: String, message: String },
}

fn code_suffix(code: &str) -> String {
    if code.is_empty() {
        String::new()
    } else {
        format!(" {code}")
    }
}

impl MlflowError {
    /// MLflow's error code of an [`MlflowError::Http`] error.
    pub fn error_code(&self) -> Option<&str> {
        match self {
            MlflowError::Http { error_code, .. } if !error_code.is_empty() => Some(error_code),
            _ => None,
        }
    }

    /// The HTTP status of an [`MlflowError::Http`] error.
    pub fn status(&self) -> Option<u16> {
        match self {
            MlflowError::Http { status, .. } => Some(*status),
            _ => None,
        }
    }

    pub fn is_unreachable(&self) -> bool {
        matches!(self, MlflowError::Unreachable { .. })
    }

    pub(crate) fn invalid(uri: &str, call: &str, message: impl Into<String>) -> MlflowError {
        MlflowError::Invalid {
            uri: uri.to_owned(),
            call: call.to_owned(),
            message: message.into(),
        }
    }

    pub(crate) fn bad_response(uri: &str, call: &str, message: impl Into<String>) -> MlflowError {
        MlflowError::BadResponse {
            uri: uri.to_owned(),
            call: call.to_owned(),
            message: message.into(),
        }
    }

    /// Maps a transport error of `ureq` (no HTTP status) to our kinds.
    pub(crate) fn transport(uri: &str, call: &str, err: ureq::Error) -> MlflowError {
        let message = match &err {
            ureq::Error::Timeout(what) => format!("no answer in time ({what})"),
            ureq::Error::HostNotFound => "host not found".to_owned(),
            other => other.to_string(),
        };
        match err {
            ureq::Error::Io(_)
            | ureq::Error::Timeout(_)
            | ureq::Error::HostNotFound
            | ureq::Error::ConnectionFailed
            | ureq::Error::Tls(_)
            | ureq::Error::Rustls(_)
            | ureq::Error::Pem(_) => MlflowError::Unreachable {
                uri: uri.to_owned(),
                call: call.to_owned(),
                message,
            },
            ureq::Error::BadUri(_) | ureq::Error::Http(_) | ureq::Error::InvalidProxyUrl => {
                MlflowError::invalid(uri, call, message)
            }
            _ => MlflowError::bad_response(uri, call, message),
        }
    }
}

/// At most `max` characters of a server's message: MLflow repeats whole rejected values (up to
/// megabytes) and SQL statements in its messages.
pub(crate) fn shorten(message: &str, max: usize) -> String {
    let message = message.trim();
    match message.char_indices().nth(max) {
        None => message.to_owned(),
        Some((cut, _)) => format!("{}... ({} characters)", &message[..cut], message.chars().count()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_uri_and_the_call() {
        let err = MlflowError::Http {
            uri: "http://mlflow:5000".to_owned(),
            call: "POST /api/2.0/mlflow/runs/create".to_owned(),
            status: 404,
            error_code: "RESOURCE_DOES_NOT_EXIST".to_owned(),
            message: "no experiment 7".to_owned(),
        };
        assert_eq!(
            err.to_string(),
            "MLflow at http://mlflow:5000 answered POST /api/2.0/mlflow/runs/create with HTTP 404 \
             RESOURCE_DOES_NOT_EXIST: no experiment 7"
        );
        assert_eq!(err.error_code(), Some("RESOURCE_DOES_NOT_EXIST"));
        assert_eq!(err.status(), Some(404));
    }

    #[test]
    fn long_messages_are_shortened_on_a_char_boundary() {
        assert_eq!(shorten("  short  ", 10), "short");
        assert_eq!(shorten(&"é".repeat(20), 4), "éééé... (20 characters)");
    }
}
