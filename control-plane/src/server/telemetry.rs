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

use super::{ApiError, AppState};
use crate::store::{ErrorKind, Key};

/// Where accepted batches are kept.
pub const TELEMETRY_PREFIX: &str = "telemetry/batches/";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TelemetryAck {
    pub batch_id: String,
    pub duplicate: bool,
}

pub(super) async fn ingest(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<TelemetryAck>), ApiError> {
    state.check_edge_token(&headers)?;
    let body = body.map_err(|r| ApiError::user(r.status(), "too_large", r.body_text()))?;
    let batch: TelemetryBatch =
        serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(format!("not a telemetry batch: {e}")))?;
    batch.validate().map_err(ApiError::unprocessable)?;
    let key = Key::new(format!("{TELEMETRY_PREFIX}{}/{}.json", batch.node, batch.batch_id))
        .map_err(|e| ApiError::unprocessable(e.to_string()))?;
    let duplicate = match state.store().create_new(&key, body).await {
        Ok(()) => false,
        Err(e) if e.kind() == ErrorKind::AlreadyExists => true,
        Err(e) => {
            return Err(ApiError::Unexpected(
                anyhow::Error::new(e).context(format!("cannot record {key}")),
            ));
        }
    };
    tracing::info!(
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
