//! `wasmline serve`: the control plane over HTTP (axum).
//!
//! One [`app`] router over one [`AppState`], one error type ([`ApiError`]: `{"error": {"code",
//! "message"}}`), so handler tests run with `oneshot` and no socket. What edges need:
//!
//! | route | |
//! |---|---|
//! | `GET /v2/health/live` | liveness |
//! | `GET /api/v1/signing-key` | the public key that verifies manifests |
//! | `GET /api/v1/models/{name}/aliases/{alias}` | the version an alias points at; long poll with `?known=V&wait=S` |
//! | `GET /api/v1/models/{name}/versions/{version}/artifacts/{file}` | a published file, as stored (public, CORS) |
//! | `POST /api/v1/telemetry` | telemetry batches from edges (edge token), idempotent by `batch_id` |
//!
//! The server keeps no state of its own beyond caches: everything lives in the store, so several
//! replicas can share one bucket (telemetry deduplication included: a batch is recorded with a
//! conditional create).

mod error;
mod registry;
mod telemetry;
mod web;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRequest};
use axum::http::{HeaderMap, Method, header};
use axum::routing::{get, post};
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower_http::cors::{Any, CorsLayer};

pub use error::ApiError;
pub use telemetry::TELEMETRY_PREFIX;
pub use web::WebOptions;

use crate::registry::PublicKey;
use crate::store::ObjectStore;

/// Largest request body any route reads unless it says otherwise.
pub const DEFAULT_BODY_LIMIT: usize = 64 * 1024;
/// Largest telemetry batch.
pub const TELEMETRY_BODY_LIMIT: usize = 1024 * 1024;
/// Longest a long poll may wait.
pub const MAX_LONG_POLL: Duration = Duration::from_secs(60);

/// What every handler shares.
#[derive(Debug, Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Arc<dyn ObjectStore>,
    public_key: PublicKey,
    /// The sha256 of the edge token (compared in constant time); None: edge telemetry is refused.
    edge_token: Option<[u8; 32]>,
    /// How often a long poll re-reads an alias.
    poll_every: Duration,
    /// Turns true when the server shuts down, so long polls answer at once.
    shutdown: watch::Receiver<bool>,
    web: WebOptions,
}

/// How the server is set up (from flags and environment variables, see `wasmline serve --help`).
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// The token edges send with their telemetry (`Authorization: Bearer ...`).
    pub edge_token: Option<String>,
    /// How often a long poll re-reads an alias from the store.
    pub poll_every: Duration,
    /// Where the web page and the browser SDK come from.
    pub web: WebOptions,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            edge_token: None,
            poll_every: Duration::from_millis(250),
            web: WebOptions::default(),
        }
    }
}

impl AppState {
    /// The state over a store, creating the manifest signing key there on first start.
    pub async fn new(
        store: Arc<dyn ObjectStore>,
        options: ServerOptions,
        shutdown: watch::Receiver<bool>,
    ) -> anyhow::Result<AppState> {
        let signer = crate::registry::ManifestSigner::load_or_create(store.as_ref()).await?;
        Ok(AppState {
            inner: Arc::new(Inner {
                store,
                public_key: signer.public_key().clone(),
                edge_token: options.edge_token.filter(|t| !t.is_empty()).map(|t| digest(&t)),
                poll_every: options.poll_every,
                shutdown,
                web: options.web,
            }),
        })
    }

    fn store(&self) -> &dyn ObjectStore {
        self.inner.store.as_ref()
    }

    /// Checks `Authorization: Bearer <edge token>`.
    fn check_edge_token(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let Some(expected) = &self.inner.edge_token else {
            return Err(ApiError::unauthorized(
                "this control plane accepts no edge telemetry: it was started without an edge token (WASMLINE_EDGE_TOKEN)",
            ));
        };
        let given = bearer(headers).ok_or_else(|| ApiError::unauthorized("missing bearer token"))?;
        if constant_time_eq(&digest(given), expected) {
            Ok(())
        } else {
            Err(ApiError::unauthorized("invalid edge token"))
        }
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Equal digests, in time that does not depend on where they differ.
fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The whole API.
pub fn app(state: AppState) -> Router {
    // Published files are readable by any page (browsers load models cross-origin).
    let public = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET, Method::HEAD])
        .allow_headers(Any);
    let api = Router::new()
        .route("/signing-key", get(registry::signing_key))
        .route("/models/{name}/aliases/{alias}", get(registry::alias))
        .route(
            "/models/{name}/versions/{version}/artifacts/{file}",
            get(registry::artifact),
        )
        .layer(public)
        .route(
            "/telemetry",
            post(telemetry::ingest).layer(DefaultBodyLimit::max(TELEMETRY_BODY_LIMIT)),
        );
    Router::new()
        .route("/v2/health/live", get(live))
        .nest("/api/v1", api)
        .merge(web::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(DEFAULT_BODY_LIMIT))
        .with_state(state)
}

async fn live() -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({ "live": true }))
}

async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(format!("no route for {}", uri.path()))
}

async fn method_not_allowed(method: Method, uri: axum::http::Uri) -> ApiError {
    ApiError::user(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{method} is not allowed on {}", uri.path()),
    )
}

/// `axum::Json` whose rejections answer with [`ApiError`]'s body.
#[derive(Debug, FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

/// Serves `app` on `listener` until `shutdown` completes, then lets in-flight requests finish
/// (long polls answer at once).
pub async fn serve(
    listener: TcpListener,
    store: Arc<dyn ObjectStore>,
    options: ServerOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (stop, stopped) = watch::channel(false);
    let state = AppState::new(store, options, stopped).await?;
    let signal = async move {
        shutdown.await;
        tracing::info!("shutting down");
        let _ = stop.send(true);
    };
    axum::serve(listener, app(state)).with_graceful_shutdown(signal).await?;
    Ok(())
}

/// Completes on ctrl-c or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

#[cfg(test)]
pub(crate) mod tests;
