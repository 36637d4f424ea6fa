//! A small stand-in for the control plane, following its HTTP contract: the signing key, the
//! alias with long polls, artifacts, and telemetry ingest (bearer token, dedupe by batch id).
//! It runs on its own tokio runtime so [`StandIn::stop`] really closes its socket and every
//! connection, and [`StandIn::start`] can bring it back on the same port with the same state.

#![allow(dead_code)]

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use model_wasm::signature::PublicKey;
use model_wasm::telemetry::TelemetryBatch;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::watch;

use super::support::ModelFiles;

pub const TOKEN: &str = "edge-secret";

/// What the stand-in holds and saw.
#[derive(Debug, Default)]
pub struct Registry {
    pub aliases: HashMap<String, u64>,
    pub artifacts: HashMap<(String, u64, String), Vec<u8>>,
    /// Every batch accepted (first deliveries only), and every POST's batch id.
    pub accepted: Vec<TelemetryBatch>,
    pub posted_ids: Vec<String>,
    /// Every alias request as it arrived: the model and its `known=` version.
    pub polls: Vec<(String, Option<u64>)>,
    /// Every artifact request: model, version, file.
    pub fetched: Vec<(String, u64, String)>,
    seen: HashSet<String>,
}

#[derive(Debug, Clone)]
struct Shared {
    registry: Arc<Mutex<Registry>>,
    key: PublicKey,
    changed: watch::Sender<u64>,
}

/// The stand-in; stopped on drop.
#[derive(Debug)]
pub struct StandIn {
    shared: Shared,
    pub addr: SocketAddr,
    runtime: Option<tokio::runtime::Runtime>,
}

impl StandIn {
    /// Starts on a free port.
    pub fn start(key: PublicKey) -> StandIn {
        let shared = Shared {
            registry: Arc::default(),
            key,
            changed: watch::channel(0).0,
        };
        let mut stand_in = StandIn {
            shared,
            addr: "127.0.0.1:0".parse().unwrap(),
            runtime: None,
        };
        stand_in.restart();
        stand_in
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// (Re)starts serving on the same address with the same state.
    pub fn restart(&mut self) {
        assert!(self.runtime.is_none(), "already running");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let app = app(self.shared.clone());
        let addr = self.addr;
        let listener = runtime.block_on(async move {
            // The port may linger briefly after a stop; retry with a deadline.
            let start = std::time::Instant::now();
            loop {
                match tokio::net::TcpListener::bind(addr).await {
                    Ok(listener) => break listener,
                    Err(e) if start.elapsed() < Duration::from_secs(30) => {
                        let _ = e;
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    Err(e) => panic!("cannot bind {addr}: {e}"),
                }
            }
        });
        self.addr = listener.local_addr().unwrap();
        runtime.spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        self.runtime = Some(runtime);
    }

    /// Stops serving: the socket and every connection close at once.
    pub fn stop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }

    /// Publishes `files` as `name@version` (the alias does not move).
    pub fn publish(&self, name: &str, version: u64, files: &ModelFiles) {
        let mut registry = self.shared.registry.lock().unwrap();
        for (file, bytes) in [("manifest.json", &files.manifest), ("model.wasm", &files.wasm)] {
            registry
                .artifacts
                .insert((name.to_owned(), version, file.to_owned()), bytes.clone());
        }
    }

    /// Points the alias `production` of `name` at `version`, waking long polls.
    pub fn set_alias(&self, name: &str, version: u64) {
        self.shared
            .registry
            .lock()
            .unwrap()
            .aliases
            .insert(name.to_owned(), version);
        self.shared.changed.send_modify(|n| *n += 1);
    }

    pub fn registry(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.shared.registry.lock().unwrap()
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.stop();
    }
}

fn app(shared: Shared) -> Router {
    Router::new()
        .route("/v2/health/live", get(|| async { axum::Json(json!({"live": true})) }))
        .route("/api/v1/signing-key", get(signing_key))
        .route("/api/v1/models/{name}/aliases/{alias}", get(alias))
        .route(
            "/api/v1/models/{name}/versions/{version}/artifacts/{file}",
            get(artifact),
        )
        .route("/api/v1/telemetry", post(telemetry))
        .with_state(shared)
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, axum::Json(json!({"error": {"code": code, "message": message}}))).into_response()
}

async fn signing_key(State(shared): State<Shared>) -> Response {
    axum::Json(shared.key.clone()).into_response()
}

#[derive(Debug, Deserialize)]
struct Poll {
    known: Option<u64>,
    wait: Option<u64>,
}

async fn alias(
    State(shared): State<Shared>,
    Path((name, alias)): Path<(String, String)>,
    Query(poll): Query<Poll>,
) -> Response {
    if alias != "production" {
        return error(StatusCode::NOT_FOUND, "not_found", "no such alias");
    }
    shared.registry.lock().unwrap().polls.push((name.clone(), poll.known));
    let mut changed = shared.changed.subscribe();
    let current = || shared.registry.lock().unwrap().aliases.get(&name).copied();
    if let (Some(known), Some(wait)) = (poll.known, poll.wait) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(wait.min(60));
        while current() == Some(known) {
            if tokio::time::timeout_at(deadline, changed.changed()).await.is_err() {
                break;
            }
        }
    }
    match current() {
        Some(version) => axum::Json(json!({
            "model": name, "alias": alias, "version": version,
            "updated_at": "2026-11-28T10:00:00Z", "by": "test",
        }))
        .into_response(),
        None => error(StatusCode::NOT_FOUND, "not_found", "no such model"),
    }
}

async fn artifact(State(shared): State<Shared>, Path((name, version, file)): Path<(String, u64, String)>) -> Response {
    let mut registry = shared.registry.lock().unwrap();
    registry.fetched.push((name.clone(), version, file.clone()));
    match registry.artifacts.get(&(name, version, file)) {
        Some(bytes) => bytes.clone().into_response(),
        None => error(StatusCode::NOT_FOUND, "not_found", "no such artifact"),
    }
}

async fn telemetry(State(shared): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let authorised = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("Bearer {TOKEN}"));
    if !authorised {
        return error(StatusCode::UNAUTHORIZED, "unauthorized", "missing or wrong token");
    }
    let batch: TelemetryBatch = match serde_json::from_slice(&body) {
        Ok(batch) => batch,
        Err(e) => return error(StatusCode::BAD_REQUEST, "invalid", &e.to_string()),
    };
    if let Err(e) = batch.validate() {
        return error(StatusCode::UNPROCESSABLE_ENTITY, "invalid", &e);
    }
    let mut registry = shared.registry.lock().unwrap();
    registry.posted_ids.push(batch.batch_id.clone());
    let id = batch.batch_id.clone();
    if registry.seen.insert(id.clone()) {
        registry.accepted.push(batch);
        (
            StatusCode::ACCEPTED,
            axum::Json(json!({"batch_id": id, "duplicate": false})),
        )
            .into_response()
    } else {
        axum::Json(json!({"batch_id": id, "duplicate": true})).into_response()
    }
}
