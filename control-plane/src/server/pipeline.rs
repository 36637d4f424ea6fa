//! Pipeline runs over HTTP: trigger (admin), status, cancel (admin).
//!
//! A triggered run executes in this server's process, step by step; a cancel request stops it
//! between two steps (the step under way finishes, so nothing is half-written) and marks it
//! `cancelled`. The run's record lives in the store like any CLI run's, so `GET` works on any
//! replica and for runs started from the command line.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{ApiError, ApiJson, AppState, ErrorBody};
use crate::config::PipelineConfig;
use crate::pipeline::{Pipeline, RunOptions, new_run_id};

/// Runs this server is executing: run id -> its cancel flag.
#[derive(Debug, Default)]
pub(super) struct ActiveRuns(Mutex<HashMap<String, Arc<AtomicBool>>>);

impl ActiveRuns {
    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<AtomicBool>>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct TriggerRequest {
    /// A `pipeline.toml` (text); relative sources resolve against the server's working
    /// directory. Without one, the bundled wine-quality example.
    #[serde(default)]
    pub config: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub(super) struct TriggerAnswer {
    pub run_id: String,
    pub status: String,
    /// Where to follow it.
    pub url: String,
}

/// `POST /api/v1/pipeline/runs` (admin): 202 with the run id; the run goes on in the background.
#[utoipa::path(post, path = "/api/v1/pipeline/runs", tag = "pipeline", request_body = TriggerRequest, security(("admin" = [])), responses((status = 202, description = "Started", body = TriggerAnswer), (status = 401, description = "Missing or wrong admin token", body = ErrorBody), (status = 422, description = "The config is refused", body = ErrorBody)))]
pub(super) async fn trigger(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<ApiJson<TriggerRequest>, ApiError>,
) -> Result<(StatusCode, Json<TriggerAnswer>), ApiError> {
    state.check_admin(&headers)?;
    let ApiJson(request) = body?;
    let config = match request.config {
        Some(text) => {
            let base = std::env::current_dir().map_err(anyhow::Error::from)?;
            PipelineConfig::parse(&text, base).map_err(|e| ApiError::unprocessable(format!("config: {e}")))?
        }
        None => crate::config::bundled_example()?,
    };
    let run_id = new_run_id();
    // Checked before answering: a config the pipeline refuses is the caller's error.
    Pipeline::new(state.store(), config.clone(), run_id.clone(), RunOptions::default())
        .map_err(|e| ApiError::unprocessable(format!("{e:#}")))?;
    spawn_run(&state, config, run_id.clone());
    Ok((
        StatusCode::ACCEPTED,
        Json(TriggerAnswer {
            url: format!("/api/v1/pipeline/runs/{run_id}"),
            run_id,
            status: "running".into(),
        }),
    ))
}

/// Starts run `run_id` in the background: registered as active (so it can be cancelled) until it
/// ends, logged when it does. The handle gives its outcome.
pub(super) fn spawn_run(
    state: &AppState,
    config: PipelineConfig,
    run_id: String,
) -> tokio::task::JoinHandle<anyhow::Result<&'static str>> {
    let cancel = Arc::new(AtomicBool::new(false));
    state.inner.runs.lock().insert(run_id.clone(), cancel.clone());
    let state = state.clone();
    tokio::spawn(async move {
        let outcome = execute(&state, config, &run_id, &cancel).await;
        match &outcome {
            Ok(status) => tracing::info!(run_id = %run_id, status, "pipeline run ended"),
            Err(e) => tracing::warn!(run_id = %run_id, error = format!("{e:#}"), "pipeline run failed"),
        }
        state.inner.runs.lock().remove(&run_id);
        outcome
    })
}

async fn execute(
    state: &AppState,
    config: PipelineConfig,
    run_id: &str,
    cancel: &AtomicBool,
) -> anyhow::Result<&'static str> {
    let pipeline = Pipeline::new(state.store(), config, run_id.to_owned(), RunOptions::default())?;
    for (i, &step) in pipeline.steps().iter().enumerate() {
        // Checked between steps: the first step creates the run's record, so even a run
        // cancelled at once has one, which says so.
        if i > 0 && cancel.load(Ordering::SeqCst) {
            pipeline.mark_cancelled().await?;
            return Ok("cancelled");
        }
        let report = pipeline.run_step(step).await?;
        tracing::info!(run_id, step = %report.step, summary = %report.summary, "pipeline step");
    }
    Ok("succeeded")
}

/// `GET /api/v1/pipeline/runs/{id}`: the run record, and whether this server is executing it.
#[utoipa::path(get, path = "/api/v1/pipeline/runs/{id}", tag = "pipeline", params(("id" = String, Path)), responses((status = 200, description = "The run record and whether this server executes it", body = serde_json::Value), (status = 404, description = "Unknown run", body = ErrorBody)))]
pub(super) async fn status(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let active = state.inner.runs.lock().contains_key(&id);
    let mut run = match super::api::read_run(&state, &id).await {
        // Triggered, its first step not started yet.
        Err(ApiError::User { status, .. }) if status == StatusCode::NOT_FOUND && active => {
            serde_json::json!({"run_id": id, "status": "running", "steps": []})
        }
        other => other?,
    };
    if let Value::Object(map) = &mut run {
        map.insert("active".into(), Value::Bool(active));
    }
    Ok(Json(run))
}

/// `POST /api/v1/pipeline/runs/{id}/cancel` (admin): 202 when the run will stop before its next
/// step; 409 when it is not running here.
#[utoipa::path(post, path = "/api/v1/pipeline/runs/{id}/cancel", tag = "pipeline", params(("id" = String, Path)), security(("admin" = [])), responses((status = 202, description = "Stops before its next step", body = serde_json::Value), (status = 401, description = "Missing or wrong admin token", body = ErrorBody), (status = 404, description = "Unknown run", body = ErrorBody), (status = 409, description = "Not running on this server", body = ErrorBody)))]
pub(super) async fn cancel(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    state.check_admin(&headers)?;
    let flag = state.inner.runs.lock().get(&id).cloned();
    if let Some(flag) = flag {
        flag.store(true, Ordering::SeqCst);
        return Ok((
            StatusCode::ACCEPTED,
            Json(serde_json::json!({"run_id": id, "cancelling": true})),
        ));
    }
    let run = super::api::read_run(&state, &id).await?;
    Err(ApiError::user(
        StatusCode::CONFLICT,
        "conflict",
        format!("run {id} is not running on this server (status: {})", run["status"]),
    ))
}
