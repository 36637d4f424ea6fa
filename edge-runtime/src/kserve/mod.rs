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
//! Missing values: for a feature the model routes (its manifest entry says `missing: true`), a
//! value may be `null` or NaN, written as the bare `NaN` token of Python's `json` and of
//! tritonclient (accepted inside an input's `data` only), or as the string `"NaN"`. Any other
//! feature refuses them, and infinities are refused everywhere, with the row and the feature.
//!
//! Every refusal is a 4xx with a body `{"error": "..."}` that says what to fix: malformed JSON
//! (400), an unknown model or version (404), a wrong datatype, feature count, shape or a value
//! that is not finite (400), an empty batch (400), more rows than [`InferLimits::max_batch_rows`]
//! or a body over [`InferLimits::max_body_bytes`] (413). A module that traps or runs past its
//! deadline fails that one request with a 500; the model keeps serving.
//!
//! A request takes an instance of the model before it predicts. When every slot of the
//! runtime's instance pool is in a call, it waits for one, up to [`InferLimits::queue`]: past
//! its timeout, or when too many requests wait already, it gets a 503 with the same
//! `{"error": "..."}` body (and `Retry-After: 1`).
//!
//! The files, one concern each: this one the contract ([`ModelSet`], [`Outcome`],
//! [`InferLimits`]); `routes.rs` the router and its handlers; `json.rs` the body's NaN and
//! Infinity tokens; `tensors.rs` the request's inputs parsed and checked into row-major rows; `responses.rs` the named outputs and [`ApiError`], the
//! `{"error": "..."}` body of every refusal.
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

mod error;
mod json;
mod responses;
mod routes;
mod tensors;

use std::sync::Arc;

use crate::{QueueLimits, ServedModel};

pub use error::ApiError;
pub use routes::router;

/// An HTTP method as a metric label: one of the standard methods, else `other`. A client picks
/// the method, and every distinct label value is a new series, so the values must be bounded.
pub fn method_label(method: &axum::http::Method) -> &'static str {
    match method.as_str() {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "PATCH" => "PATCH",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    }
}

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
    /// Failed in the module (a trap, a timeout, a limit), or found no free instance (a 5xx).
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
    /// How long a request waits for an instance while the pool is full, and how many may wait.
    pub queue: QueueLimits,
}

impl Default for InferLimits {
    fn default() -> Self {
        Self {
            max_batch_rows: 10_000,
            max_body_bytes: 4 << 20,
            queue: QueueLimits::default(),
        }
    }
}
