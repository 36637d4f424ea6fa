//! `POST /api/v1/telemetry`: batches of prediction telemetry from edges.
//!
//! A batch is checked whole (token, size, JSON shape, [`TelemetryBatch::validate`]) before
//! anything is written, then recorded at `telemetry/batches/{node}/{batch_id}.json` with a
//! conditional create: the first delivery answers `202`, a replay of the same batch (a retry
//! after a lost answer, a buffer flushed after a restart) answers `200` with `duplicate: true`
//! and counts nothing twice, whichever replica it reaches.
//!
//! `POST /api/v1/telemetry/browser` takes no credential: browsers are anonymous, so what they
//! report is advisory. A browser batch is accepted only for registered versions and the
//! features of their manifest, at most [`BROWSER_BATCHES_PER_MINUTE`] a minute per address (not
//! per client-chosen node), within a byte budget per hour, and is kept for the retention
//! (`--browser-telemetry-retention-hours`) at `telemetry/browser/{hour}/{batch_id}.json`. Its
//! figures are exported with `trust="advisory"`, which the alert rules and the retrain hook
//! ignore, unless the model was opted in (`--act-on-browser-telemetry MODEL`: `trust="opted-in"`).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::Duration;

use axum::Extension;
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, Utc};
use model_wasm::telemetry::TelemetryBatch;
use serde::{Deserialize, Serialize};

use super::{ApiError, AppState, BROWSER_BATCHES_PER_MINUTE, ErrorBody};
use crate::store::{ErrorKind, Key, ObjectStore};

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
        Ok(body) => record(&state, &body, Source::Edge).await,
        Err(r) => Err(too_large(r)),
    };
    state.inner.metrics.batch("edge", outcome(&result));
    result
}

/// Where browsers' batches are kept.
pub(super) const BROWSER_TELEMETRY_PREFIX: &str = "telemetry/browser/";
/// Largest browser batch.
pub(super) const BROWSER_BODY_LIMIT: usize = 64 * 1024;
/// Bytes of browser batches one replica stores per hour; past it, browsers get 429 until the
/// next hour.
pub(super) const BROWSER_BYTES_PER_HOUR: u64 = 64 * 1024 * 1024;
/// Most predictions (ok + error) one browser report may claim.
pub(super) const BROWSER_MAX_PREDICTIONS: u64 = 1_000_000;

/// Where a batch came from.
#[derive(Debug, Clone, Copy)]
enum Source {
    Edge,
    /// A browser at this address (None when the server does not know it: handler tests).
    Browser(Option<IpAddr>),
}

/// What browsers may still post: batches per address per minute, bytes per hour.
#[derive(Debug)]
pub(super) struct BrowserBudget {
    retention: Duration,
    /// Address -> (minute, batches posted in it); bounded (cleared of old minutes when large).
    rate: Mutex<HashMap<IpAddr, (i64, u32)>>,
    /// (hour, bytes stored in it).
    bytes: Mutex<(i64, u64)>,
}

impl BrowserBudget {
    pub(super) fn new(retention: Duration) -> BrowserBudget {
        BrowserBudget {
            retention,
            rate: Mutex::default(),
            bytes: Mutex::default(),
        }
    }

    /// Counts one batch from `address`, or refuses it.
    fn admit(&self, address: Option<IpAddr>, bytes: u64, now: DateTime<Utc>) -> Result<(), ApiError> {
        let minute = now.timestamp() / 60;
        // IPv6 clients get a /64 each, so one host cannot rotate through its addresses.
        let address = address.map_or(IpAddr::from([0, 0, 0, 0]), |a| match a {
            IpAddr::V6(v6) => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
            v4 => v4,
        });
        {
            let mut table = self.rate.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if table.len() > 100_000 {
                table.retain(|_, (m, _)| *m == minute);
            }
            let entry = table.entry(address).or_insert((minute, 0));
            if entry.0 != minute {
                *entry = (minute, 0);
            }
            if entry.1 >= BROWSER_BATCHES_PER_MINUTE {
                return Err(ApiError::user(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limited",
                    format!("{address} posted {BROWSER_BATCHES_PER_MINUTE} batches this minute; try again later"),
                ));
            }
            entry.1 += 1;
        }
        let hour = now.timestamp() / 3600;
        let mut used = self.bytes.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if used.0 != hour {
            *used = (hour, 0);
        }
        if used.1.saturating_add(bytes) > BROWSER_BYTES_PER_HOUR {
            return Err(ApiError::user(
                StatusCode::TOO_MANY_REQUESTS,
                "budget_exhausted",
                "this hour's budget for browser telemetry is used up; try again next hour",
            ));
        }
        used.1 += bytes;
        Ok(())
    }
}

/// `POST /api/v1/telemetry/browser`: no token (any page may post), so smaller, rate-limited per
/// address, bounded in storage, only `runtime: "browser"` reports, and advisory.
#[utoipa::path(post, path = "/api/v1/telemetry/browser", tag = "telemetry", request_body = serde_json::Value, responses((status = 202, description = "Recorded", body = TelemetryAck), (status = 400, description = "Not a valid browser batch", body = ErrorBody), (status = 413, description = "Over 64 KiB", body = ErrorBody), (status = 422, description = "Unknown model or version", body = ErrorBody), (status = 429, description = "Too many batches from this client", body = ErrorBody)))]
pub(super) async fn ingest_browser(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<TelemetryAck>), ApiError> {
    let address = peer.map(|Extension(ConnectInfo(addr))| addr.ip());
    let result = match body {
        Ok(body) => record(&state, &body, Source::Browser(address)).await,
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

/// Checks a batch whole, records it once (a conditional create), and counts its reports the
/// first time only.
async fn record(state: &AppState, body: &Bytes, source: Source) -> Result<(StatusCode, Json<TelemetryAck>), ApiError> {
    let batch: TelemetryBatch =
        serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("not a telemetry batch: {e}")))?;
    batch.validate().map_err(ApiError::bad_request)?;
    if let Source::Browser(_) = source {
        for r in &batch.reports {
            if r.runtime != "browser" {
                return Err(ApiError::bad_request(format!(
                    "runtime '{}': this endpoint takes browser telemetry only",
                    r.runtime
                )));
            }
            let predictions = r.predictions.ok.checked_add(r.predictions.error);
            if predictions.is_none_or(|n| n > BROWSER_MAX_PREDICTIONS) {
                return Err(ApiError::bad_request(format!(
                    "model '{}': a browser report counts at most {BROWSER_MAX_PREDICTIONS} predictions",
                    r.model
                )));
            }
        }
    }
    for r in &batch.reports {
        let Some(features) = state.registered_features(&r.model, r.version).await? else {
            return Err(ApiError::unprocessable(format!(
                "unknown model '{}' version {}: telemetry is taken for registered versions only",
                r.model, r.version
            )));
        };
        if let Some(f) = r.drift.features.iter().find(|f| !features.contains(&f.name)) {
            return Err(ApiError::unprocessable(format!(
                "model '{}' version {} has no feature '{}': drift is taken for its features only",
                r.model, r.version, f.name
            )));
        }
    }
    let now = Utc::now();
    let key = match source {
        Source::Edge => format!("{TELEMETRY_PREFIX}{}/{}.json", batch.node, batch.batch_id),
        Source::Browser(address) => {
            state.inner.browser.admit(address, body.len() as u64, now)?;
            format!(
                "{BROWSER_TELEMETRY_PREFIX}{}/{}.json",
                now.format(HOUR_FORMAT),
                batch.batch_id
            )
        }
    };
    let key = Key::new(key).map_err(|e| ApiError::bad_request(e.to_string()))?;
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
        source = ?source,
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

/// The hour directories of browser batches: `2026120715`.
const HOUR_FORMAT: &str = "%Y%m%d%H";

/// Removes browser batches older than the retention, every `period`.
pub(super) async fn expire_browser_batches_every(state: AppState, period: Duration) {
    loop {
        let retention = state.inner.browser.retention;
        match expire_browser_batches(state.store(), Utc::now(), retention).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(removed = n, "expired browser telemetry batches"),
            Err(e) => tracing::warn!(error = %e, "cannot expire browser telemetry batches"),
        }
        tokio::time::sleep(period).await;
    }
}

/// Removes the browser batches of hours that ended more than `retention` before `now` (and those
/// of the layout before hours: `telemetry/browser/{client}/...`); returns how many.
pub(super) async fn expire_browser_batches(
    store: &dyn ObjectStore,
    now: DateTime<Utc>,
    retention: Duration,
) -> anyhow::Result<usize> {
    let cutoff = now - chrono::Duration::from_std(retention)? - chrono::Duration::hours(1);
    let cutoff = cutoff.format(HOUR_FORMAT).to_string();
    let mut removed = 0;
    for meta in store.list(BROWSER_TELEMETRY_PREFIX).await? {
        let Some((hour, _)) = meta.key.as_str()[BROWSER_TELEMETRY_PREFIX.len()..].split_once('/') else {
            continue;
        };
        let is_hour = hour.len() == cutoff.len() && hour.bytes().all(|b| b.is_ascii_digit());
        if !is_hour || hour < cutoff.as_str() {
            store.delete(&meta.key).await?;
            removed += 1;
        }
    }
    Ok(removed)
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
