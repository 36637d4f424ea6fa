use std::fmt;
use std::time::Duration;

use base64::Engine;

use super::MlflowError;

/// The experiment runs go to when `MLFLOW_EXPERIMENT_NAME` is not set.
pub(super) const DEFAULT_EXPERIMENT: &str = "wasmline";

/// Where the MLflow tracking server is and how to talk to it, read from the variables MLflow's own
/// clients use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MlflowConfig {
    tracking_uri: String,
    /// Credentials sent with every request.
    pub auth: Auth,
    /// The experiment [`Tracker`](super::Tracker) logs runs to.
    pub experiment_name: String,
    /// Time to establish a connection (default 5 s).
    pub connect_timeout: Duration,
    /// Time for a whole call, upload included (default 30 s).
    pub request_timeout: Duration,
}

/// How requests authenticate.
#[derive(Clone, PartialEq, Eq, Default)]
pub enum Auth {
    #[default]
    None,
    /// `MLFLOW_TRACKING_USERNAME` and `MLFLOW_TRACKING_PASSWORD` (MLflow's basic-auth app).
    Basic { username: String, password: String },
    /// `MLFLOW_TRACKING_TOKEN`.
    Bearer(String),
}

impl fmt::Debug for Auth {
    // Secrets stay out of logs and panic messages.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::None => f.write_str("None"),
            Auth::Basic { username, .. } => write!(f, "Basic {{ username: {username:?}, password: <redacted> }}"),
            Auth::Bearer(_) => f.write_str("Bearer(<redacted>)"),
        }
    }
}

impl Auth {
    /// The `Authorization` header value, if any.
    pub fn header_value(&self) -> Option<String> {
        match self {
            Auth::None => None,
            Auth::Basic { username, password } => Some(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"))
            )),
            Auth::Bearer(token) => Some(format!("Bearer {token}")),
        }
    }
}

impl MlflowConfig {
    /// A config for the server at `tracking_uri` (`http://` or `https://`, optionally with a path
    /// prefix), without credentials, for [`DEFAULT_EXPERIMENT`].
    pub fn new(tracking_uri: &str) -> Result<MlflowConfig, MlflowError> {
        let invalid = |message: String| MlflowError::invalid(tracking_uri, "configuration", message);
        let uri = tracking_uri.trim().trim_end_matches('/');
        let Some((scheme, rest)) = uri.split_once("://") else {
            return Err(invalid(
                "MLFLOW_TRACKING_URI must be an http:// or https:// URL of an MLflow tracking server".to_owned(),
            ));
        };
        if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
            return Err(invalid(format!(
                "MLFLOW_TRACKING_URI scheme '{scheme}' is not supported: Wasmline talks to a tracking \
                 server over http:// or https:// (start one with `mlflow server`)"
            )));
        }
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        if authority.is_empty() {
            return Err(invalid("MLFLOW_TRACKING_URI has no host".to_owned()));
        }
        if authority.contains('@') {
            let host = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
            return Err(MlflowError::invalid(
                &format!("{scheme}://{host}"),
                "configuration",
                "credentials in MLFLOW_TRACKING_URI are not supported: set MLFLOW_TRACKING_USERNAME and \
                 MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_TOKEN)",
            ));
        }
        if rest.contains(['?', '#']) {
            return Err(invalid(
                "MLFLOW_TRACKING_URI must not have a query or fragment".to_owned(),
            ));
        }
        Ok(MlflowConfig {
            tracking_uri: uri.to_owned(),
            auth: Auth::None,
            experiment_name: DEFAULT_EXPERIMENT.to_owned(),
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
        })
    }

    /// Reads `MLFLOW_TRACKING_URI`, `MLFLOW_TRACKING_USERNAME`/`MLFLOW_TRACKING_PASSWORD` (basic
    /// auth, preferred when both are set, as MLflow's client does) or `MLFLOW_TRACKING_TOKEN`
    /// (bearer) and `MLFLOW_EXPERIMENT_NAME`.
    ///
    /// `Ok(None)` when `MLFLOW_TRACKING_URI` is unset or empty: tracking is off. An error when it
    /// is set but unusable (a `file:` or `databricks` URI, a username without a password), so that
    /// a misconfiguration is reported rather than silently ignored.
    pub fn from_env() -> Result<Option<MlflowConfig>, MlflowError> {
        MlflowConfig::from_vars(|name| std::env::var(name).ok())
    }

    /// [`MlflowConfig::from_env`] over any source of variables.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Option<MlflowConfig>, MlflowError> {
        let var = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        let Some(uri) = var("MLFLOW_TRACKING_URI") else {
            return Ok(None);
        };
        let mut config = MlflowConfig::new(&uri)?;
        config.auth = match (var("MLFLOW_TRACKING_USERNAME"), var("MLFLOW_TRACKING_PASSWORD")) {
            (Some(username), Some(password)) => Auth::Basic { username, password },
            (None, None) => match var("MLFLOW_TRACKING_TOKEN") {
                Some(token) => Auth::Bearer(token),
                None => Auth::None,
            },
            (Some(_), None) | (None, Some(_)) => {
                return Err(MlflowError::invalid(
                    &config.tracking_uri,
                    "configuration",
                    "set both MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD, or neither",
                ));
            }
        };
        if let Some(name) = var("MLFLOW_EXPERIMENT_NAME") {
            config.experiment_name = name;
        }
        Ok(Some(config))
    }

    /// The server's base URL, without a trailing slash.
    pub fn tracking_uri(&self) -> &str {
        &self.tracking_uri
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn from(vars: &[(&str, &str)]) -> Result<Option<MlflowConfig>, MlflowError> {
        let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        MlflowConfig::from_vars(|name| vars.get(name).cloned())
    }

    #[test]
    fn unset_or_empty_uri_means_tracking_is_off() {
        assert_eq!(from(&[]).unwrap(), None);
        assert_eq!(from(&[("MLFLOW_TRACKING_URI", " ")]).unwrap(), None);
    }

    #[test]
    fn defaults() {
        let config = from(&[("MLFLOW_TRACKING_URI", "http://mlflow:5000/")])
            .unwrap()
            .unwrap();
        assert_eq!(config.tracking_uri(), "http://mlflow:5000");
        assert_eq!(config.auth, Auth::None);
        assert_eq!(config.experiment_name, "wasmline");
        assert_eq!(config.connect_timeout, Duration::from_secs(5));
        assert_eq!(config.request_timeout, Duration::from_secs(30));
    }

    #[test]
    fn a_path_prefix_is_kept() {
        let config = MlflowConfig::new("https://example.org/mlflow/").unwrap();
        assert_eq!(config.tracking_uri(), "https://example.org/mlflow");
    }

    #[test]
    fn basic_auth_wins_over_a_token_and_headers_are_encoded() {
        let config = from(&[
            ("MLFLOW_TRACKING_URI", "http://mlflow:5000"),
            ("MLFLOW_TRACKING_USERNAME", "alice"),
            ("MLFLOW_TRACKING_PASSWORD", "s3cret:!"),
            ("MLFLOW_TRACKING_TOKEN", "tok"),
            ("MLFLOW_EXPERIMENT_NAME", "wine"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(config.experiment_name, "wine");
        // base64("alice:s3cret:!")
        assert_eq!(config.auth.header_value().unwrap(), "Basic YWxpY2U6czNjcmV0OiE=");
        assert!(
            !format!("{config:?}").contains("s3cret"),
            "the password is not in Debug output"
        );

        let config = from(&[
            ("MLFLOW_TRACKING_URI", "http://mlflow:5000"),
            ("MLFLOW_TRACKING_TOKEN", "tok"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(config.auth.header_value().unwrap(), "Bearer tok");
        assert!(!format!("{config:?}").contains("tok\""));
    }

    #[test]
    fn unusable_settings_are_errors_not_silence() {
        for uri in [
            "file:///tmp/mlruns",
            "./mlruns",
            "databricks",
            "sqlite:///mlflow.db",
            "http://",
        ] {
            let err = from(&[("MLFLOW_TRACKING_URI", uri)]).unwrap_err();
            assert!(matches!(err, MlflowError::Invalid { .. }), "{uri}: {err}");
        }
        let err = from(&[("MLFLOW_TRACKING_URI", "http://u:pw@mlflow:5000")]).unwrap_err();
        assert!(!err.to_string().contains("pw"), "{err}");
        let err = from(&[
            ("MLFLOW_TRACKING_URI", "http://mlflow:5000"),
            ("MLFLOW_TRACKING_USERNAME", "alice"),
        ])
        .unwrap_err();
        assert!(err.to_string().contains("MLFLOW_TRACKING_PASSWORD"), "{err}");
    }
}
