//! `POST /api/v1/telemetry`: batches of prediction telemetry from edges.
//!
//! A batch is checked whole (token, size, JSON shape, [`TelemetryBatch::validate`]) before
//! anything is written, then recorded at `telemetry/batches/{node}/{batch_id}.json` with a
//! conditional create: the first delivery answers `202`, a replay of the same batch (a retry
//! after a lost answer, a buffer flushed after a restart) answers `200` with `duplicate: true`
//! and counts nothing twice, whichever replica it reaches.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use model_wasm::telemetry::TelemetryBatch;
use serde::{Deserialize, Serialize};

use super::{ApiError, AppState, ErrorBody};
use crate::store::{ErrorKind, Key};

/// Where accepted batches are kept.
pub(super) const TELEMETRY_PREFIX: &str = "telemetry/batches/";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub(super) struct TelemetryAck {
    pub batch_id: String,
    pub duplicate: bool,
}

#[utoipa::path(post, path = "/api/v1/telemetry", tag = "telemetry", request_body = serde_json::Value, security(("edge" = [])), responses((status = 202, description = "Recorded", body = TelemetryAck), (status = 200, description = "Already recorded (same batch_id)", body = TelemetryAck), (status = 400, description = "Not a valid batch", body = ErrorBody), (status = 401, description = "Missing or wrong edge token", body = ErrorBody), (status = 413, description = "Over 1 MiB", body = ErrorBody), (status = 422, description = "Unknown model or version", body = ErrorBody)))]
pub(super) async fn ingest(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<TelemetryAck>), ApiError> {
    state.check_edge_token(&headers)?;
    let result = match body {
        Ok(body) => record(&state, &body, "edge", TELEMETRY_PREFIX).await,
        Err(r) => Err(too_large(r)),
    };
    state.inner.metrics.batch("edge", outcome(&result));
    result
}

/// Where browsers' batches are kept.
pub(super) const BROWSER_TELEMETRY_PREFIX: &str = "telemetry/browser/";
/// Largest browser batch.
pub(super) const BROWSER_BODY_LIMIT: usize = 64 * 1024;

/// `POST /api/v1/telemetry/browser`: no token (any page may post), so smaller, rate-limited per
/// client id, and only `runtime: "browser"` reports.
#[utoipa::path(post, path = "/api/v1/telemetry/browser", tag = "telemetry", request_body = serde_json::Value, responses((status = 202, description = "Recorded", body = TelemetryAck), (status = 400, description = "Not a valid browser batch", body = ErrorBody), (status = 413, description = "Over 64 KiB", body = ErrorBody), (status = 422, description = "Unknown model or version", body = ErrorBody), (status = 429, description = "Too many batches from this client", body = ErrorBody)))]
pub(super) async fn ingest_browser(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<TelemetryAck>), ApiError> {
    let result = match body {
        Ok(body) => record(&state, &body, "browser", BROWSER_TELEMETRY_PREFIX).await,
        Err(r) => Err(too_large(r)),
    };
    state.inner.metrics.batch("browser", outcome(&result));
    result
}

fn too_large(r: BytesRejection) -> ApiError {
    ApiError::user(r.status(), "too_large", r.body_text())
}

fn outcome(result: &Result<(StatusCode, Json<TelemetryAck>), ApiError>) -> &'static str {
    match result {
        Ok((_, ack)) if ack.duplicate => "duplicate",
        Ok(_) => "accepted",
        Err(_) => "rejected",
    }
}

/// Checks a batch whole, records it once under `prefix` (a conditional create), and counts its
/// reports the first time only.
async fn record(
    state: &AppState,
    body: &Bytes,
    source: &str,
    prefix: &str,
) -> Result<(StatusCode, Json<TelemetryAck>), ApiError> {
    let batch: TelemetryBatch =
        serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("not a telemetry batch: {e}")))?;
    batch.validate().map_err(ApiError::bad_request)?;
    if source == "browser" {
        if let Some(r) = batch.reports.iter().find(|r| r.runtime != "browser") {
            return Err(ApiError::bad_request(format!(
                "runtime '{}': this endpoint takes browser telemetry only",
                r.runtime
            )));
        }
        state.rate_limit(&batch.node)?;
    }
    for r in &batch.reports {
        if !state.is_registered(&r.model, r.version).await? {
            return Err(ApiError::unprocessable(format!(
                "unknown model '{}' version {}: telemetry is taken for registered versions only",
                r.model, r.version
            )));
        }
    }
    let key = Key::new(format!("{prefix}{}/{}.json", batch.node, batch.batch_id))
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let duplicate = match state.store().create_new(&key, body.clone()).await {
        Ok(()) => false,
        Err(e) if e.kind() == ErrorKind::AlreadyExists => true,
        Err(e) => {
            return Err(ApiError::Unexpected(
                anyhow::Error::new(e).context(format!("cannot record {key}")),
            ));
        }
    };
    if !duplicate {
        for report in &batch.reports {
            state.inner.metrics.ingest(&batch.node, report);
        }
    }
    tracing::info!(
        source,
        node = %batch.node,
        batch_id = %batch.batch_id,
        reports = batch.reports.len(),
        duplicate,
        "telemetry batch"
    );
    let status = if duplicate {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    Ok((
        status,
        Json(TelemetryAck {
            batch_id: batch.batch_id,
            duplicate,
        }),
    ))
}

/// `GET /api/v1/telemetry/summary[?model=NAME]`: the aggregated figures the monitoring page draws.
#[utoipa::path(get, path = "/api/v1/telemetry/summary", tag = "telemetry", params(("model" = Option<String>, Query)), responses((status = 200, description = "Aggregated telemetry per model, version, runtime and node", body = serde_json::Value)))]
pub(super) async fn summary(
    State(state): State<AppState>,
    axum::extract::Query(query): axum::extract::Query<SummaryQuery>,
) -> Json<super::metrics::TelemetrySummary> {
    Json(state.inner.metrics.summary(query.model.as_deref()))
}

#[derive(Debug, Deserialize)]
pub(super) struct SummaryQuery {
    model: Option<String>,
}
