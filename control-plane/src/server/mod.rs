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

mod api;
mod error;
mod hooks;
mod leases;
pub(crate) mod metrics;
mod models;
mod openapi;
mod pipeline;
mod registry;
mod telemetry;
mod web;

use std::collections::BTreeSet;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::extract::{DefaultBodyLimit, FromRequest};
use axum::http::{HeaderMap, Method, header};
use axum::routing::{get, post};
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower_http::cors::{Any, CorsLayer};

pub(crate) use error::{ApiError, ErrorBody};
pub(crate) use pipeline::RunSettings;
pub(crate) use web::WebOptions;

use crate::registry::PublicKey;
use crate::store::ObjectStore;

/// Largest request body any route reads unless it says otherwise.
pub(crate) const DEFAULT_BODY_LIMIT: usize = 64 * 1024;
/// Largest telemetry batch.
pub(crate) const TELEMETRY_BODY_LIMIT: usize = 1024 * 1024;
/// Batches one browser address (an IPv4 address, an IPv6 /64) may post per minute.
pub(crate) const BROWSER_BATCHES_PER_MINUTE: u32 = 30;
/// Longest a long poll may wait.
pub(crate) const MAX_LONG_POLL: Duration = Duration::from_secs(60);

/// A version's feature names.
type FeatureNames = Arc<BTreeSet<String>>;

/// What every handler shares.
#[derive(Debug, Clone)]
pub(crate) struct AppState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Arc<dyn ObjectStore>,
    public_key: PublicKey,
    /// The sha256 of the edge token (compared in constant time); None: edge telemetry is refused.
    edge_token: Option<[u8; 32]>,
    /// The sha256 of the admin token (writes); None: every write is refused.
    admin_token: Option<[u8; 32]>,
    /// The sha256 of the Alertmanager token, which the retrain hook alone takes (besides the
    /// admin token), so Alertmanager never holds the admin token.
    alertmanager_token: Option<[u8; 32]>,
    /// How often a long poll re-reads an alias.
    poll_every: Duration,
    /// Turns true when the server shuts down, so long polls answer at once.
    shutdown: watch::Receiver<bool>,
    web: WebOptions,
    metrics: Arc<metrics::Metrics>,
    models: Arc<models::RegistryModels>,
    /// Pipeline runs this server executes.
    runs: pipeline::ActiveRuns,
    /// Least time between two drift-triggered retrains of one model.
    retrain_cooldown: Duration,
    /// The feature names of (model, version) pairs known to be registered (versions are never
    /// deleted, manifests never change).
    registered: std::sync::RwLock<std::collections::HashMap<(String, u64), FeatureNames>>,
    /// Alias reads shared by long polls, and their count.
    alias_reads: registry::AliasReads,
    /// Browser address -> (minute, batches posted in it), and the bytes stored per hour.
    browser: telemetry::BrowserBudget,
}

/// How the server is set up (from flags and environment variables, see `wasmline serve --help`).
#[derive(Debug, Clone)]
pub(crate) struct ServerOptions {
    /// The token edges send with their telemetry (`Authorization: Bearer ...`).
    pub edge_token: Option<String>,
    /// The token writes need (promote, roll back, trigger a run).
    pub admin_token: Option<String>,
    /// The token the retrain hook takes besides the admin token (Alertmanager's).
    pub alertmanager_token: Option<String>,
    /// How often a long poll re-reads an alias from the store.
    pub poll_every: Duration,
    /// Where the web page and the browser SDK come from.
    pub web: WebOptions,
    /// Least time between two drift-triggered retrains of one model.
    pub retrain_cooldown: Duration,
    /// Models whose browser telemetry alert rules and the retrain hook may act on (exported with
    /// `trust="opted-in"` instead of `trust="advisory"`).
    pub trusted_browser_models: BTreeSet<String>,
    /// How long browsers' batches are kept in the store.
    pub browser_retention: Duration,
    /// Most long polls waiting at once (then 503).
    pub max_long_polls: usize,
    /// Run leases, the shutdown grace, the sources runs may read.
    pub runs: RunSettings,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            edge_token: None,
            admin_token: None,
            alertmanager_token: None,
            poll_every: Duration::from_millis(250),
            web: WebOptions::default(),
            retrain_cooldown: Duration::from_secs(3600),
            trusted_browser_models: BTreeSet::new(),
            browser_retention: Duration::from_secs(24 * 3600),
            max_long_polls: 10_000,
            runs: RunSettings::default(),
        }
    }
}

impl AppState {
    /// The state over a store, creating the manifest signing key there on first start.
    pub(crate) async fn new(
        store: Arc<dyn ObjectStore>,
        options: ServerOptions,
        shutdown: watch::Receiver<bool>,
    ) -> anyhow::Result<AppState> {
        let signer = crate::registry::ManifestSigner::load_or_create(store.as_ref()).await?;
        let metrics = Arc::new(metrics::Metrics::new(options.trusted_browser_models.clone()));
        let models = Arc::new(models::RegistryModels::new(
            signer.public_key().clone(),
            metrics.clone(),
        )?);
        Ok(AppState {
            inner: Arc::new(Inner {
                store,
                public_key: signer.public_key().clone(),
                edge_token: options.edge_token.filter(|t| !t.is_empty()).map(|t| digest(&t)),
                admin_token: options.admin_token.filter(|t| !t.is_empty()).map(|t| digest(&t)),
                alertmanager_token: options.alertmanager_token.filter(|t| !t.is_empty()).map(|t| digest(&t)),
                poll_every: options.poll_every,
                shutdown,
                web: options.web,
                metrics,
                models,
                browser: telemetry::BrowserBudget::new(options.browser_retention),
                alias_reads: registry::AliasReads::new(options.poll_every, options.max_long_polls),
                runs: pipeline::ActiveRuns::new(options.runs)?,
                registered: std::sync::RwLock::default(),
                retrain_cooldown: options.retrain_cooldown,
            }),
        })
    }

    fn store(&self) -> &dyn ObjectStore {
        self.inner.store.as_ref()
    }

    /// The feature names of `model@version`, or None when no such version is registered
    /// (remembered once seen).
    async fn registered_features(&self, model: &str, version: u64) -> Result<Option<FeatureNames>, ApiError> {
        let pair = (model.to_owned(), version);
        if let Some(features) = self
            .inner
            .registered
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&pair)
        {
            return Ok(Some(features.clone()));
        }
        if !crate::registry::version_exists(self.store(), model, version).await? {
            return Ok(None);
        }
        let manifest = crate::registry::load_version(self.store(), model, version).await?;
        let features = Arc::new(manifest.feature_names().into_iter().collect::<BTreeSet<_>>());
        self.inner
            .registered
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(pair, features.clone());
        Ok(Some(features))
    }

    #[cfg(test)]
    /// Loads the models whose production alias moved (the server does this every second).
    pub async fn refresh_models(&self) -> anyhow::Result<()> {
        self.inner.models.refresh(self.store()).await
    }

    /// Checks `Authorization: Bearer <edge token>`.
    fn check_edge_token(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        check_token(
            headers,
            self.inner.edge_token.as_ref(),
            "edge",
            "this control plane accepts no edge telemetry: it was started without an edge token (WASMLINE_EDGE_TOKEN)",
        )
    }

    /// Checks `Authorization: Bearer <admin token>`.
    fn check_admin(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        check_token(
            headers,
            self.inner.admin_token.as_ref(),
            "admin",
            "this control plane takes no writes: it was started without an admin token (WASMLINE_ADMIN_TOKEN)",
        )
    }
}

impl AppState {
    /// Checks `Authorization: Bearer <Alertmanager token>` (the retrain hook's own), or the admin
    /// token.
    fn check_alertmanager(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let matches = |expected: Option<&[u8; 32]>| {
            bearer(headers)
                .zip(expected)
                .is_some_and(|(given, e)| constant_time_eq(&digest(given), e))
        };
        if matches(self.inner.alertmanager_token.as_ref()) || matches(self.inner.admin_token.as_ref()) {
            return Ok(());
        }
        match (&self.inner.alertmanager_token, &self.inner.admin_token, bearer(headers)) {
            (None, None, _) => Err(ApiError::unauthorized(
                "this control plane takes no alerts: it was started without an Alertmanager or admin token \
                 (WASMLINE_ALERTMANAGER_TOKEN, WASMLINE_ADMIN_TOKEN)",
            )),
            (_, _, None) => Err(ApiError::unauthorized("missing bearer token")),
            _ => Err(ApiError::unauthorized("invalid Alertmanager token")),
        }
    }
}

fn check_token(headers: &HeaderMap, expected: Option<&[u8; 32]>, what: &str, unset: &str) -> Result<(), ApiError> {
    let Some(expected) = expected else {
        return Err(ApiError::unauthorized(unset));
    };
    let given = bearer(headers).ok_or_else(|| ApiError::unauthorized("missing bearer token"))?;
    if constant_time_eq(&digest(given), expected) {
        Ok(())
    } else {
        Err(ApiError::unauthorized(format!("invalid {what} token")))
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
pub(crate) fn app(state: AppState) -> Router {
    // Published files are readable by any page (browsers load models cross-origin).
    let public = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET, Method::HEAD])
        .allow_headers(Any);
    let api = Router::new()
        .route("/signing-key", get(registry::signing_key))
        .route("/models", get(api::list_models))
        .route("/models/{name}", get(api::show_model))
        .route("/models/{name}/versions/{version}", get(api::show_version))
        .route(
            "/models/{name}/versions/{version}/artifacts/{file}",
            // A page's first visit downloads the module and manifest: gzip takes them to a third
            // (at its best level: a version's files never change, and are small).
            get(registry::artifact)
                .layer(tower_http::compression::CompressionLayer::new().quality(tower_http::CompressionLevel::Best)),
        )
        .route("/models/{name}/aliases", get(api::list_aliases))
        .route(
            "/models/{name}/aliases/{alias}",
            get(registry::alias).put(api::set_alias),
        )
        .route("/models/{name}/aliases/{alias}/rollback", post(api::rollback_alias))
        .route("/models/{name}/aliases/{alias}/log", get(api::alias_log))
        .route("/runs", get(api::list_runs))
        .route("/runs/compare", get(api::compare_runs))
        .route("/runs/{id}", get(api::show_run))
        .route("/datasets", get(api::list_datasets))
        .route("/datasets/{name}", get(api::show_dataset))
        .route("/datasets/{name}/versions/{version}", get(api::show_dataset_version))
        .route(
            "/datasets/{name}/versions/{version}/reports/{report}",
            get(api::dataset_report),
        )
        .layer(public)
        .route("/pipeline/runs", post(pipeline::trigger))
        .route("/pipeline/runs/{id}", get(pipeline::status))
        .route("/pipeline/runs/{id}/cancel", post(pipeline::cancel))
        .route("/telemetry/summary", get(telemetry::summary))
        .route("/openapi.json", get(openapi::document))
        .route("/hooks/alertmanager", post(hooks::alertmanager))
        .route("/hooks/retrains", get(hooks::retrains))
        .route(
            "/telemetry",
            post(telemetry::ingest).layer(DefaultBodyLimit::max(TELEMETRY_BODY_LIMIT)),
        )
        .route(
            "/telemetry/browser",
            post(telemetry::ingest_browser).layer(DefaultBodyLimit::max(telemetry::BROWSER_BODY_LIMIT)),
        );
    let v2 = edge_runtime::kserve::router(state.inner.models.clone(), edge_runtime::kserve::InferLimits::default());
    Router::new()
        .nest("/api/v1", api)
        .route("/metrics", get(render_metrics))
        .route("/api/docs", get(openapi::page))
        .merge(web::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state.clone())
        .merge(v2)
        .route_layer(axum::middleware::from_fn_with_state(state, track))
        .layer(DefaultBodyLimit::max(DEFAULT_BODY_LIMIT))
}

async fn render_metrics(State(state): State<AppState>) -> impl axum::response::IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        state.inner.metrics.render(),
    )
}

/// Counts every routed request by method (a known one or `other`), matched route (never the raw
/// path) and status.
async fn track(
    State(state): State<AppState>,
    path: Option<axum::extract::MatchedPath>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let method = edge_runtime::kserve::method_label(request.method());
    let response = next.run(request).await;
    let route = path.as_ref().map_or("unmatched", |p| p.as_str());
    state.inner.metrics.http(method, route, response.status().as_u16());
    response
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
pub(crate) struct ApiJson<T>(pub T);

/// Serves `app` on `listener` until `shutdown` completes, then lets in-flight requests finish
/// (long polls answer at once) and runs finish their step under way, up to the shutdown grace.
pub(crate) async fn serve(
    listener: TcpListener,
    store: Arc<dyn ObjectStore>,
    options: ServerOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (stop, stopped) = watch::channel(false);
    let state = AppState::new(store.clone(), options, stopped.clone()).await?;
    let stopped_for_leases = stopped.clone();
    let follower = tokio::spawn(
        state
            .inner
            .models
            .clone()
            .follow(store, Duration::from_secs(1), stopped),
    );
    let scanner = tokio::spawn(leases::watch(state.clone(), stopped_for_leases));
    let draining = state.clone();
    let signal = async move {
        shutdown.await;
        tracing::info!("shutting down");
        draining.inner.runs.begin_shutdown();
        let _ = stop.send(true);
    };
    let janitor = tokio::spawn(telemetry::expire_browser_batches_every(
        state.clone(),
        Duration::from_secs(600),
    ));
    axum::serve(
        listener,
        app(state.clone()).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(signal)
    .await?;
    state.inner.runs.drain().await;
    scanner.abort();
    follower.abort();
    janitor.abort();
    Ok(())
}

/// Completes on ctrl-c or SIGTERM.
pub(crate) async fn shutdown_signal() {
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
