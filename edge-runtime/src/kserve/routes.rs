//! The `/v2` router and its handlers: lookups of a model and version, metadata, readiness, and
//! infer (parse, lease an instance (waiting while the pool is full), predict on the request's
//! task or the blocking pool, answer, report the [`Outcome`]).

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::error::ApiError;
use super::json::quote_non_finite;
use super::responses::{build_response, requested_outputs};
use super::tensors::{InferRequest, features};
use super::{InferLimits, ModelSet, Outcome};
use crate::{HostError, ServedModel, Task};

/// The platform name in model metadata.
const PLATFORM: &str = "wasmline_wasm";

#[derive(Clone, Debug)]
struct KserveState {
    models: Arc<dyn ModelSet>,
    limits: InferLimits,
}

/// The `/v2` routes over `models` (see the module docs). Mount it beside other routes with
/// `Router::merge`.
pub fn router<S: ModelSet>(models: Arc<S>, limits: InferLimits) -> Router {
    let state = KserveState { models, limits };
    Router::new()
        .route("/v2", get(server_metadata))
        .route("/v2/health/live", get(live))
        .route("/v2/health/ready", get(ready))
        .route("/v2/models/{name}", get(model_metadata))
        .route("/v2/models/{name}/ready", get(model_ready))
        .route("/v2/models/{name}/infer", post(infer))
        .route("/v2/models/{name}/versions/{version}", get(version_metadata))
        .route("/v2/models/{name}/versions/{version}/ready", get(version_ready))
        .route("/v2/models/{name}/versions/{version}/infer", post(version_infer))
        .layer(DefaultBodyLimit::max(limits.max_body_bytes))
        .with_state(state)
}

async fn server_metadata(State(state): State<KserveState>) -> Response {
    axum::Json(json!({
        "name": state.models.server_name(),
        "version": env!("CARGO_PKG_VERSION"),
        "extensions": [],
    }))
    .into_response()
}

async fn live() -> Response {
    axum::Json(json!({ "live": true })).into_response()
}

async fn ready(State(state): State<KserveState>) -> Response {
    let missing: Vec<String> = state
        .models
        .model_names()
        .into_iter()
        .filter(|name| state.models.current(name).is_none())
        .collect();
    if missing.is_empty() {
        axum::Json(json!({ "ready": true })).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({ "ready": false, "not_loaded": missing })),
        )
            .into_response()
    }
}

/// The model's current version, or why there is none.
fn lookup(state: &KserveState, name: &str, version: Option<&str>) -> Result<Arc<ServedModel>, ApiError> {
    if !state.models.model_names().iter().any(|n| n == name) {
        return Err(ApiError::not_found(format!("unknown model '{name}'")));
    }
    match version {
        None => state.models.current(name).ok_or_else(|| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("model '{name}' is not loaded yet"),
            )
        }),
        Some(wanted) => {
            let versions = state.models.versions(name);
            versions
                .iter()
                .find(|m| wanted.parse::<u64>() == Ok(m.version()))
                .cloned()
                .ok_or_else(|| {
                    let loaded: Vec<String> = versions.iter().map(|m| m.version().to_string()).collect();
                    ApiError::not_found(format!(
                        "model '{name}' has no loaded version '{wanted}' (loaded: {})",
                        if loaded.is_empty() {
                            "none".to_owned()
                        } else {
                            loaded.join(", ")
                        }
                    ))
                })
        }
    }
}

async fn model_metadata(State(state): State<KserveState>, Path(name): Path<String>) -> Result<Response, ApiError> {
    let model = lookup(&state, &name, None)?;
    Ok(metadata(&state, &model))
}

async fn version_metadata(
    State(state): State<KserveState>,
    Path((name, version)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let model = lookup(&state, &name, Some(&version))?;
    Ok(metadata(&state, &model))
}

fn metadata(state: &KserveState, model: &ServedModel) -> Response {
    let manifest = model.manifest();
    let versions: Vec<String> = state
        .models
        .versions(model.name())
        .iter()
        .map(|m| m.version().to_string())
        .collect();
    let inputs: Vec<Value> = manifest
        .features
        .iter()
        .map(|f| json!({ "name": f.name, "datatype": "FP64", "shape": [-1] }))
        .collect();
    let outputs = match model.task() {
        Task::Classification => json!([
            { "name": "label", "datatype": "BYTES", "shape": [-1] },
            { "name": "probabilities", "datatype": "FP64", "shape": [-1, manifest.classes().len()] },
        ]),
        Task::Regression => json!([{ "name": "value", "datatype": "FP64", "shape": [-1] }]),
    };
    axum::Json(json!({
        "name": model.name(),
        "versions": versions,
        "platform": PLATFORM,
        "inputs": inputs,
        "outputs": outputs,
        "parameters": {
            "version": model.version().to_string(),
            "task": match model.task() { Task::Classification => "classification", Task::Regression => "regression" },
            "target": manifest.output.target,
            "classes": manifest.classes(),
            "sha256": model.sha256(),
            "batch_input": { "shape": [-1, manifest.features.len()], "datatype": "FP64" },
        },
    }))
    .into_response()
}

async fn model_ready(State(state): State<KserveState>, Path(name): Path<String>) -> Result<Response, ApiError> {
    readiness(&state, &name, None)
}

async fn version_ready(
    State(state): State<KserveState>,
    Path((name, version)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    readiness(&state, &name, Some(&version))
}

fn readiness(state: &KserveState, name: &str, version: Option<&str>) -> Result<Response, ApiError> {
    match lookup(state, name, version) {
        Ok(_) => Ok(axum::Json(json!({ "name": name, "ready": true })).into_response()),
        Err(e) if e.status == StatusCode::SERVICE_UNAVAILABLE => Ok((
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({ "name": name, "ready": false })),
        )
            .into_response()),
        Err(e) => Err(e),
    }
}

async fn infer(
    State(state): State<KserveState>,
    Path(name): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let model = lookup(&state, &name, None)?;
    run_infer(&state, model, body).await
}

async fn version_infer(
    State(state): State<KserveState>,
    Path((name, version)): Path<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let model = lookup(&state, &name, Some(&version))?;
    run_infer(&state, model, body).await
}

/// Batches of at most this many rows are predicted on the request's own task. A generated module
/// takes microseconds for them, less than handing them to the blocking pool costs (two thread
/// switches, which were most of the edge's CPU time under load); larger batches go to the pool
/// so they never hold up the async workers. Either way a call stops at the module's deadline.
const INLINE_ROWS: usize = 64;

/// Parses, predicts, answers, and reports the outcome to the model set.
async fn run_infer(
    state: &KserveState,
    model: Arc<ServedModel>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let prepared = match prepare(state, &model, body) {
        Ok(prepared) => prepared,
        Err(error) => {
            state.models.observe(&model, &Outcome::Invalid);
            return Err(error);
        }
    };
    let Prepared { id, features, outputs } = prepared;
    let lease = match model.module().lease(state.limits.queue).await {
        Ok(lease) => lease,
        Err(error @ HostError::Busy(_)) => {
            tracing::warn!(model = model.name(), version = model.version(), %error, "request refused");
            state.models.observe(&model, &Outcome::Error);
            let busy = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, format!("{error}; try again"));
            return Ok(([(header::RETRY_AFTER, "1")], busy).into_response());
        }
        Err(error) => return Err(module_failed(state, &model, &error)),
    };
    let predict = |model: &ServedModel, lease, features: Vec<f64>| {
        let mut raw = Vec::new();
        let start = Instant::now();
        let result = model.module().predict_flat_on(lease, &features, &mut raw);
        (result, raw, features, start.elapsed())
    };
    let joined = if features.len() <= INLINE_ROWS * model.module().n_features().max(1) {
        Ok(predict(&model, lease, features))
    } else {
        let task_model = model.clone();
        tokio::task::spawn_blocking(move || predict(&task_model, lease, features)).await
    };
    let (result, raw, features, elapsed) = match joined {
        Ok(done) => done,
        Err(join) => {
            tracing::error!(model = model.name(), version = model.version(), error = %join, "inference task failed");
            state.models.observe(&model, &Outcome::Error);
            return Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "inference failed"));
        }
    };
    match result {
        Ok(()) => {
            state.models.observe(
                &model,
                &Outcome::Ok {
                    rows: &features,
                    seconds: elapsed.as_secs_f64(),
                },
            );
            Ok(axum::Json(build_response(&model, id, &raw, &outputs)).into_response())
        }
        Err(HostError::Input { row, feature, message }) => {
            state.models.observe(&model, &Outcome::Invalid);
            let names = &model.manifest().features;
            Err(ApiError::bad_request(match feature.and_then(|f| names.get(f)) {
                Some(f) => format!("row {row}, feature '{}': {message}", f.name),
                None => format!("row {row}: {message}"),
            }))
        }
        Err(error) => Err(module_failed(state, &model, &error)),
    }
}

/// A call into the module that failed (a trap, a timeout, a limit): logged, counted, a 500.
fn module_failed(state: &KserveState, model: &ServedModel, error: &HostError) -> ApiError {
    tracing::error!(model = model.name(), version = model.version(), %error, "inference failed in the module");
    state.models.observe(model, &Outcome::Error);
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("inference failed: {error}"))
}

/// A request checked against the model: row-major features and the outputs to send.
#[derive(Debug)]
struct Prepared {
    id: Option<String>,
    features: Vec<f64>,
    outputs: Vec<&'static str>,
}

/// The body parsed and checked against the model: its size, JSON, the outputs asked for, the
/// inputs.
fn prepare(
    state: &KserveState,
    model: &ServedModel,
    body: Result<Bytes, BytesRejection>,
) -> Result<Prepared, ApiError> {
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::too_large(format!(
                "the request body is larger than the limit of {} bytes",
                state.limits.max_body_bytes
            ))
        } else {
            ApiError::new(rejection.status(), rejection.body_text())
        }
    })?;
    let body = quote_non_finite(&body)?;
    let request: InferRequest =
        serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(format!("malformed JSON: {e}")))?;
    let outputs = requested_outputs(model, request.outputs.as_deref())?;
    let features = features(model, &request.inputs, state.limits.max_batch_rows)?;
    Ok(Prepared {
        id: request.id,
        features,
        outputs,
    })
}
