//! The Open Inference Protocol (KServe v2) over REST, for any set of loaded models.
//!
//! [`router`] mounts the `/v2` routes over a [`ModelSet`]: the edge implements it with the
//! versions it synced, the control plane with the versions in its registry, and both answer the
//! same requests the same way:
//!
//! | route | answer |
//! | --- | --- |
//! | `GET /v2` | server metadata |
//! | `GET /v2/health/live` | `{"live": true}` |
//! | `GET /v2/health/ready` | 200 when every model of the set is loaded, else 503 |
//! | `GET /v2/models/{name}[/versions/{v}]` | model metadata: versions, platform, inputs, outputs |
//! | `GET /v2/models/{name}[/versions/{v}]/ready` | 200 when loaded, 503 while not yet, 404 unknown |
//! | `POST /v2/models/{name}[/versions/{v}]/infer` | predictions |
//!
//! Inputs are either one tensor of shape `[n_rows, n_features]` (any name; FP32 or FP64;
//! `data` flat row-major or nested) or one tensor per feature named by feature name, each of
//! shape `[n_rows]`. Outputs are named: a classifier gives `label` (BYTES, the class names,
//! `[n]`) and `probabilities` (FP64, `[n, n_classes]`), a regressor `value` (FP64, `[n]`); a
//! request's `outputs` list picks among them. The request's `id` is echoed.
//!
//! Every refusal is a 4xx with a body `{"error": "..."}` that says what to fix: malformed JSON
//! (400), an unknown model or version (404), a wrong datatype, feature count, shape or a value
//! that is not finite (400), an empty batch (400), more rows than [`InferLimits::max_batch_rows`]
//! or a body over [`InferLimits::max_body_bytes`] (413). A module that traps or runs past its
//! deadline fails that one request with a 500; the model keeps serving.
//!
//! ```
//! use std::sync::Arc;
//! use edge_runtime::kserve::{self, InferLimits, ModelSet};
//! use edge_runtime::ServedModel;
//!
//! /// No models at all: every model route answers 404, readiness is trivially 200.
//! #[derive(Debug)]
//! struct Empty;
//! impl ModelSet for Empty {
//!     fn model_names(&self) -> Vec<String> { Vec::new() }
//!     fn current(&self, _: &str) -> Option<Arc<ServedModel>> { None }
//!     fn versions(&self, _: &str) -> Vec<Arc<ServedModel>> { Vec::new() }
//! }
//! let app: axum::Router = kserve::router(Arc::new(Empty), InferLimits::default());
//! # drop(app);
//! ```

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::{HostError, ServedModel, Task};

/// The platform name in model metadata.
pub const PLATFORM: &str = "wasmline_wasm";

/// The models a server answers for. Implementations are cheap to query (a lock and an `Arc`
/// clone): every request asks.
pub trait ModelSet: Send + Sync + std::fmt::Debug + 'static {
    /// The `name` of `GET /v2`.
    fn server_name(&self) -> String {
        "wasmline".to_owned()
    }

    /// Every model the server is meant to serve, loaded or not: `GET /v2/health/ready` is 200
    /// only when each has a current version, and a name outside this list is a 404.
    fn model_names(&self) -> Vec<String>;

    /// The version served by default (`/v2/models/{name}/infer`), if one is loaded.
    fn current(&self, name: &str) -> Option<Arc<ServedModel>>;

    /// Every loaded version of the model, the current one first (the edge also keeps the
    /// previous one); `/versions/{v}/` routes reach these and no others.
    fn versions(&self, name: &str) -> Vec<Arc<ServedModel>>;

    /// Called once per infer request on a known, loaded model, after it was answered: for
    /// metrics, telemetry and drift. The default does nothing.
    fn observe(&self, model: &ServedModel, outcome: &Outcome<'_>) {
        let _ = (model, outcome);
    }
}

/// How an infer request on a loaded model ended.
#[derive(Debug, Clone, Copy)]
pub enum Outcome<'a> {
    /// Predicted `rows` (row-major, in feature order) in `seconds` (time inside the module).
    Ok { rows: &'a [f64], seconds: f64 },
    /// Refused: the request was the caller's error (a 4xx).
    Invalid,
    /// Failed in the module: a trap, a timeout, a limit (a 5xx).
    Error,
}

impl Outcome<'_> {
    /// The `outcome` label of `wasmline_inference_requests_total`: `ok`, `invalid` or `error`.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Ok { .. } => "ok",
            Outcome::Invalid => "invalid",
            Outcome::Error => "error",
        }
    }
}

/// Request size limits.
#[derive(Debug, Clone, Copy)]
pub struct InferLimits {
    /// Most rows in one request.
    pub max_batch_rows: usize,
    /// Largest request body, in bytes.
    pub max_body_bytes: usize,
}

impl Default for InferLimits {
    fn default() -> Self {
        Self {
            max_batch_rows: 10_000,
            max_body_bytes: 4 << 20,
        }
    }
}

/// An answer that is not a success: a status and a message, sent as `{"error": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, message)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.status, self.message)
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(json!({ "error": self.message }))).into_response()
    }
}

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
pub const INLINE_ROWS: usize = 64;

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
    let predict = |model: &ServedModel, features: Vec<f64>| {
        let mut raw = Vec::new();
        let start = Instant::now();
        let result = model.module().predict_flat(&features, &mut raw);
        (result, raw, features, start.elapsed())
    };
    let joined = if features.len() <= INLINE_ROWS * model.module().n_features().max(1) {
        Ok(predict(&model, features))
    } else {
        let task_model = model.clone();
        tokio::task::spawn_blocking(move || predict(&task_model, features)).await
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
        Err(error) => {
            tracing::error!(model = model.name(), version = model.version(), %error, "inference failed in the module");
            state.models.observe(&model, &Outcome::Error);
            Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("inference failed: {error}"),
            ))
        }
    }
}

/// A request checked against the model: row-major features and the outputs to send.
#[derive(Debug)]
struct Prepared {
    id: Option<String>,
    features: Vec<f64>,
    outputs: Vec<&'static str>,
}

/// The body of `POST .../infer`.
#[derive(Debug, Clone, Deserialize)]
pub struct InferRequest {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub parameters: Option<Value>,
    pub inputs: Vec<InputTensor>,
    #[serde(default)]
    pub outputs: Option<Vec<RequestedOutput>>,
}

/// One input tensor.
#[derive(Debug, Clone, Deserialize)]
pub struct InputTensor {
    pub name: String,
    pub shape: Vec<i64>,
    pub datatype: String,
    #[serde(default)]
    pub parameters: Option<Value>,
    pub data: Value,
}

/// An output the client asks for.
#[derive(Debug, Clone, Deserialize)]
pub struct RequestedOutput {
    pub name: String,
    #[serde(default)]
    pub parameters: Option<Value>,
}

/// The answer of `POST .../infer`.
#[derive(Debug, Clone, Serialize)]
pub struct InferResponse {
    pub model_name: String,
    pub model_version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub outputs: Vec<OutputTensor>,
}

/// One output tensor.
#[derive(Debug, Clone, Serialize)]
pub struct OutputTensor {
    pub name: String,
    pub datatype: String,
    pub shape: Vec<usize>,
    pub data: OutputData,
}

/// An output tensor's values, flat and row-major.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum OutputData {
    Bytes(Vec<String>),
    Fp64(Vec<f64>),
}

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

/// The output names of the model's task.
fn output_names(model: &ServedModel) -> &'static [&'static str] {
    match model.task() {
        Task::Classification => &["label", "probabilities"],
        Task::Regression => &["value"],
    }
}

fn requested_outputs(
    model: &ServedModel,
    requested: Option<&[RequestedOutput]>,
) -> Result<Vec<&'static str>, ApiError> {
    let available = output_names(model);
    let Some(requested) = requested.filter(|r| !r.is_empty()) else {
        return Ok(available.to_vec());
    };
    requested
        .iter()
        .map(|r| {
            available.iter().find(|a| **a == r.name).copied().ok_or_else(|| {
                ApiError::bad_request(format!(
                    "unknown output '{}'; the model gives: {}",
                    r.name,
                    available.join(", ")
                ))
            })
        })
        .collect()
}

/// The request's inputs as row-major rows of the model's features, checked: datatype, shape,
/// data length, finiteness, batch size.
fn features(model: &ServedModel, inputs: &[InputTensor], max_rows: usize) -> Result<Vec<f64>, ApiError> {
    let names = &model.manifest().features;
    let n_features = names.len();
    if inputs.is_empty() {
        return Err(ApiError::bad_request("the request has no inputs"));
    }
    for input in inputs {
        if !matches!(input.datatype.as_str(), "FP64" | "FP32") {
            return Err(ApiError::bad_request(format!(
                "input '{}': datatype {} is not supported; send FP32 or FP64",
                input.name, input.datatype
            )));
        }
    }
    let (n_rows, rows) = if let [input] = inputs
        && input.shape.len() == 2
    {
        let n_rows = dim(input, 0)?;
        let width = dim(input, 1)?;
        if width != n_features {
            return Err(ApiError::bad_request(format!(
                "input '{}': expected {n_features} features (shape [n, {n_features}]), got shape {:?}",
                input.name, input.shape
            )));
        }
        check_rows(n_rows, max_rows)?;
        (n_rows, values(input, n_rows * n_features)?)
    } else {
        // One 1-D tensor per feature, by name.
        let mut columns: Vec<Option<Vec<f64>>> = vec![None; n_features];
        let mut n_rows = None;
        for input in inputs {
            let Some(index) = names.iter().position(|f| f.name == input.name) else {
                return Err(ApiError::bad_request(format!(
                    "unknown input '{}': send one tensor of shape [n, {n_features}], or one tensor of \
                     shape [n] per feature named {}",
                    input.name,
                    names
                        .iter()
                        .map(|f| format!("'{}'", f.name))
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            };
            let rows = match input.shape.len() {
                1 => dim(input, 0)?,
                2 if dim(input, 1)? == 1 => dim(input, 0)?,
                _ => {
                    return Err(ApiError::bad_request(format!(
                        "input '{}': a per-feature tensor has shape [n], got {:?}",
                        input.name, input.shape
                    )));
                }
            };
            if *n_rows.get_or_insert(rows) != rows {
                return Err(ApiError::bad_request(format!(
                    "input '{}' has {rows} rows, other inputs have {}",
                    input.name,
                    n_rows.unwrap_or_default()
                )));
            }
            if columns[index].is_some() {
                return Err(ApiError::bad_request(format!("input '{}' is given twice", input.name)));
            }
            check_rows(rows, max_rows)?;
            columns[index] = Some(values(input, rows)?);
        }
        let missing: Vec<String> = names
            .iter()
            .zip(&columns)
            .filter(|(_, c)| c.is_none())
            .map(|(f, _)| format!("'{}'", f.name))
            .collect();
        if !missing.is_empty() {
            return Err(ApiError::bad_request(format!(
                "expected {n_features} features, missing input for {}",
                missing.join(", ")
            )));
        }
        let n_rows = n_rows.unwrap_or_default();
        let columns: Vec<Vec<f64>> = columns.into_iter().flatten().collect();
        let mut rows = Vec::with_capacity(n_rows * n_features);
        for r in 0..n_rows {
            rows.extend(columns.iter().map(|c| c[r]));
        }
        (n_rows, rows)
    };
    if let Some(i) = rows.iter().position(|v| !v.is_finite()) {
        return Err(ApiError::bad_request(format!(
            "row {}, feature '{}': {} is not a finite number",
            i / n_features,
            names[i % n_features].name,
            rows[i]
        )));
    }
    debug_assert_eq!(rows.len(), n_rows * n_features);
    Ok(rows)
}

fn check_rows(n_rows: usize, max_rows: usize) -> Result<(), ApiError> {
    if n_rows == 0 {
        return Err(ApiError::bad_request("the batch is empty (0 rows)"));
    }
    if n_rows > max_rows {
        return Err(ApiError::too_large(format!(
            "the batch has {n_rows} rows, the limit is {max_rows}; split it"
        )));
    }
    Ok(())
}

/// Dimension `i` of the tensor's shape, as a count.
fn dim(input: &InputTensor, i: usize) -> Result<usize, ApiError> {
    input
        .shape
        .get(i)
        .and_then(|d| usize::try_from(*d).ok())
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "input '{}': shape {:?} has a negative or missing dimension",
                input.name, input.shape
            ))
        })
}

/// The tensor's data, flattened, as exactly `expected` numbers. Accepts the strings `NaN`,
/// `Infinity` and `-Infinity` (as some JSON writers send them) so they can be refused by name.
fn values(input: &InputTensor, expected: usize) -> Result<Vec<f64>, ApiError> {
    fn flatten(value: &Value, out: &mut Vec<f64>, name: &str, limit: usize) -> Result<(), ApiError> {
        if out.len() > limit {
            return Ok(());
        }
        match value {
            Value::Array(items) => items.iter().try_for_each(|v| flatten(v, out, name, limit)),
            Value::Number(n) => {
                out.push(n.as_f64().unwrap_or(f64::NAN));
                Ok(())
            }
            Value::String(s) if matches!(s.as_str(), "NaN" | "nan") => {
                out.push(f64::NAN);
                Ok(())
            }
            Value::String(s) if matches!(s.as_str(), "Infinity" | "inf" | "+Infinity") => {
                out.push(f64::INFINITY);
                Ok(())
            }
            Value::String(s) if matches!(s.as_str(), "-Infinity" | "-inf") => {
                out.push(f64::NEG_INFINITY);
                Ok(())
            }
            other => Err(ApiError::bad_request(format!(
                "input '{name}': {other} is not a number (datatype FP32/FP64)"
            ))),
        }
    }
    let mut out = Vec::with_capacity(expected);
    flatten(&input.data, &mut out, &input.name, expected)?;
    if out.len() != expected {
        return Err(ApiError::bad_request(format!(
            "input '{}': shape {:?} needs {expected} values, data has {}",
            input.name,
            input.shape,
            if out.len() > expected {
                "more".to_owned()
            } else {
                out.len().to_string()
            }
        )));
    }
    Ok(out)
}

/// The named outputs of `raw` (the module's `output_stride` values per row).
pub fn build_response(model: &ServedModel, id: Option<String>, raw: &[f64], outputs: &[&str]) -> InferResponse {
    let stride = model.module().output_stride();
    let n = raw.len() / stride;
    let classes = model.manifest().classes();
    let tensors = outputs
        .iter()
        .map(|name| match *name {
            "label" => OutputTensor {
                name: "label".into(),
                datatype: "BYTES".into(),
                shape: vec![n],
                data: OutputData::Bytes(
                    raw.chunks_exact(stride)
                        .map(|row| classes.get(row[0] as usize).cloned().unwrap_or_default())
                        .collect(),
                ),
            },
            "probabilities" => OutputTensor {
                name: "probabilities".into(),
                datatype: "FP64".into(),
                shape: vec![n, stride - 1],
                data: OutputData::Fp64(
                    raw.chunks_exact(stride)
                        .flat_map(|row| row[1..].iter().copied())
                        .collect(),
                ),
            },
            _ => OutputTensor {
                name: "value".into(),
                datatype: "FP64".into(),
                shape: vec![n],
                data: OutputData::Fp64(raw.iter().step_by(stride).copied().collect()),
            },
        })
        .collect();
    InferResponse {
        model_name: model.name().to_owned(),
        model_version: model.version().to_string(),
        id,
        outputs: tensors,
    }
}
