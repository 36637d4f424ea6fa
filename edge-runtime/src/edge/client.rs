//! The control plane as the edge sees it: four HTTP calls, blocking (run them on a blocking
//! thread), no shared code with the control plane.
//!
//! - `GET {base}/api/v1/signing-key`: the manifest signing key;
//! - `GET {base}/api/v1/models/{name}/aliases/{alias}?known={v}&wait={s}`: the alias, held
//!   up to `wait` seconds while it still points at `known` (a long poll);
//! - `GET {base}/api/v1/models/{name}/versions/{v}/artifacts/{file}`: `manifest.json`,
//!   `model.wasm`;
//! - `POST {base}/api/v1/telemetry` with `Authorization: Bearer {token}`: a telemetry batch.

use std::time::Duration;

use model_wasm::signature::PublicKey;
use serde::Deserialize;

/// What went wrong talking to the control plane.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No answer: connection refused, timeout, a broken connection.
    #[error("cannot reach the control plane: {0}")]
    Transport(String),
    /// An answer with a status other than the expected one.
    #[error("the control plane answered {status}: {body}")]
    Status { status: u16, body: String },
    /// A body larger than allowed.
    #[error("the answer is larger than {0} bytes")]
    TooLarge(u64),
    /// A body that is not what the contract says.
    #[error("unexpected answer: {0}")]
    Invalid(String),
}

/// `GET /api/v1/models/{name}/aliases/{alias}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AliasState {
    pub model: String,
    pub alias: String,
    pub version: u64,
}

/// A blocking client for one control plane.
#[derive(Debug, Clone)]
pub struct ControlPlane {
    base: String,
    agent: ureq::Agent,
    token: Option<String>,
}

/// Longest error body kept for a message.
const MAX_ERROR_BODY: u64 = 4096;

impl ControlPlane {
    /// A client for `base` (e.g. `http://127.0.0.1:8080`); `token` authorises telemetry.
    pub fn new(base: &str, token: Option<String>) -> ControlPlane {
        let agent = ureq::Agent::new_with_config(
            ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_connect(Some(Duration::from_secs(5)))
                .timeout_global(Some(Duration::from_secs(60)))
                .user_agent(concat!("wasmline-edge/", env!("CARGO_PKG_VERSION")))
                .build(),
        );
        ControlPlane {
            base: base.trim_end_matches('/').to_owned(),
            agent,
            token,
        }
    }

    pub fn has_token(&self) -> bool {
        self.token.is_some()
    }

    /// `GET /api/v1/signing-key`, checked.
    pub fn signing_key(&self) -> Result<PublicKey, ClientError> {
        let bytes = self.get(&format!("{}/api/v1/signing-key", self.base), 64 << 10, None)?;
        let key: PublicKey =
            serde_json::from_slice(&bytes).map_err(|e| ClientError::Invalid(format!("signing key: {e}")))?;
        key.verifying_key()
            .map_err(|e| ClientError::Invalid(format!("signing key: {e}")))?;
        Ok(key)
    }

    /// The alias, long-polled: the control plane holds the answer up to `wait` while the alias
    /// still points at `known`. `Ok(None)` when the model or alias does not exist (404).
    pub fn alias(
        &self,
        name: &str,
        alias: &str,
        known: Option<u64>,
        wait: Duration,
    ) -> Result<Option<AliasState>, ClientError> {
        let mut url = format!("{}/api/v1/models/{name}/aliases/{alias}", self.base);
        if let Some(known) = known {
            url.push_str(&format!("?known={known}&wait={}", wait.as_secs()));
        }
        let timeout = wait + Duration::from_secs(10);
        match self.get(&url, 64 << 10, Some(timeout)) {
            Ok(bytes) => {
                let state: AliasState =
                    serde_json::from_slice(&bytes).map_err(|e| ClientError::Invalid(format!("alias: {e}")))?;
                Ok(Some(state))
            }
            Err(ClientError::Status { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// One artifact of a version, at most `limit` bytes.
    pub fn artifact(&self, name: &str, version: u64, file: &str, limit: u64) -> Result<Vec<u8>, ClientError> {
        let url = format!("{}/api/v1/models/{name}/versions/{version}/artifacts/{file}", self.base);
        self.get(&url, limit, Some(Duration::from_secs(120)))
    }

    /// `POST /api/v1/telemetry`: the status of the answer (any status is `Ok`).
    pub fn post_telemetry(&self, batch: &[u8]) -> Result<(u16, String), ClientError> {
        let mut request = self
            .agent
            .post(format!("{}/api/v1/telemetry", self.base))
            .content_type("application/json");
        if let Some(token) = &self.token {
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        let mut response = request
            .config()
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .send(batch)
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_ERROR_BODY)
            .read_to_string()
            .unwrap_or_default();
        Ok((status, body))
    }

    fn get(&self, url: &str, limit: u64, timeout: Option<Duration>) -> Result<Vec<u8>, ClientError> {
        let mut request = self.agent.get(url);
        if let Some(timeout) = timeout {
            request = request.config().timeout_global(Some(timeout)).build();
        }
        let mut response = request.call().map_err(|e| ClientError::Transport(e.to_string()))?;
        let status = response.status().as_u16();
        if status != 200 {
            let body = response
                .body_mut()
                .with_config()
                .limit(MAX_ERROR_BODY)
                .read_to_string()
                .unwrap_or_default();
            return Err(ClientError::Status { status, body });
        }
        response
            .body_mut()
            .with_config()
            .limit(limit)
            .read_to_vec()
            .map_err(|e| match e {
                ureq::Error::BodyExceedsLimit(limit) => ClientError::TooLarge(limit),
                other => ClientError::Transport(other.to_string()),
            })
    }
}
