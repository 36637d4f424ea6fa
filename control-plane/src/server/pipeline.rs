//! Pipeline runs over HTTP: trigger (admin), status, cancel (admin).
//!
//! A triggered run executes in this server's process, step by step; a cancel request stops it
//! between two steps (the step under way finishes, so nothing is half-written) and marks it
//! `cancelled`. The run's record lives in the store like any CLI run's, so `GET` works on any
//! replica and for runs started from the command line; public routes show a failed run's step
//! and error kind, not its error (which can quote the data), and the log has the whole error.
//!
//! A run may read only the sources [`allowed_sources`] allows, checked before the trigger
//! answers and again just before the read.

use std::collections::{BTreeMap, HashMap};
use std::path::Path as FsPath;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{ApiError, ApiJson, AppState, ErrorBody};
use crate::config::PipelineConfig;
use crate::data::AllowedSources;
use crate::dataset::DatasetRecord;
use crate::pipeline::{Pipeline, RunOptions, new_run_id};
use crate::store::get_json;

/// How this server runs pipelines (`wasmline serve` flags).
#[derive(Debug, Clone, Default)]
pub(crate) struct RunSettings {
    /// `--allow-source` prefixes: paths (relative ones from the working directory) or URLs.
    pub allow_sources: Vec<String>,
}

/// Runs this server is executing (run id -> its cancel flag), and the sources they may read.
#[derive(Debug)]
pub(super) struct ActiveRuns {
    runs: Mutex<HashMap<String, Arc<AtomicBool>>>,
    /// The `--allow-source` prefixes, resolved once.
    flags: AllowedSources,
}

impl ActiveRuns {
    pub(super) fn new(settings: RunSettings) -> anyhow::Result<ActiveRuns> {
        let mut flags = AllowedSources::new();
        for prefix in &settings.allow_sources {
            flags
                .add(prefix, FsPath::new(""), "--allow-source")
                .map_err(anyhow::Error::msg)?;
        }
        Ok(ActiveRuns {
            runs: Mutex::default(),
            flags,
        })
    }

    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<AtomicBool>>> {
        self.runs.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Where runs this server starts may read: the `--allow-source` prefixes, the bundled example,
/// and the source of the latest version of every dataset in the store (so a drift retrain can
/// read its data again).
pub(super) async fn allowed_sources(state: &AppState) -> Result<AllowedSources, ApiError> {
    let mut allowed = state.inner.runs.flags.clone();
    let here = FsPath::new("");
    let example = crate::config::bundled_example_source();
    allowed
        .add(&example.display().to_string(), here, "the bundled example")
        .map_err(anyhow::Error::msg)?;
    let mut latest: BTreeMap<String, u64> = BTreeMap::new();
    for meta in state.store().list("datasets/").await.map_err(anyhow::Error::from)? {
        let parts: Vec<&str> = meta.key.as_str().split('/').collect();
        if let ["datasets", name, file] = parts[..]
            && let Some(version) = file.strip_suffix(".json").and_then(|v| v.parse::<u64>().ok())
        {
            let entry = latest.entry(name.to_owned()).or_default();
            *entry = (*entry).max(version);
        }
    }
    for (name, version) in latest {
        if let Some(record) = get_json::<DatasetRecord>(state.store(), &DatasetRecord::key_of(&name, version)).await? {
            // A source that is no longer a valid prefix (an odd URL) is simply not allowed.
            let _ = allowed.add(&record.source.uri, here, &format!("dataset {name}"));
        }
    }
    Ok(allowed)
}

/// Refuses (403) a config whose source is not allowed, before anything reads it.
pub(super) fn check_source(allowed: &AllowedSources, config: &PipelineConfig) -> Result<(), ApiError> {
    allowed
        .check(&config.resolved_source(), FsPath::new(""))
        .map_err(|e| ApiError::user(StatusCode::FORBIDDEN, "source_not_allowed", e.to_string()))
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct TriggerRequest {
    /// A `pipeline.toml` (text); relative sources resolve against the server's working
    /// directory, and the source must be one `--allow-source` allows. Without one, the bundled
    /// wine-quality example.
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
#[utoipa::path(post, path = "/api/v1/pipeline/runs", tag = "pipeline", request_body = TriggerRequest, security(("admin" = [])), responses((status = 202, description = "Started", body = TriggerAnswer), (status = 401, description = "Missing or wrong admin token", body = ErrorBody), (status = 403, description = "The config reads a source this server does not allow", body = ErrorBody), (status = 422, description = "The config is refused", body = ErrorBody)))]
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
    let allowed = allowed_sources(&state).await?;
    check_source(&allowed, &config)?;
    let run_id = new_run_id();
    // Checked before answering: a config the pipeline refuses is the caller's error.
    Pipeline::new(state.store(), config.clone(), run_id.clone(), RunOptions::default())
        .map_err(|e| ApiError::unprocessable(format!("{e:#}")))?;
    spawn_run(&state, config, run_id.clone(), allowed);
    Ok((
        StatusCode::ACCEPTED,
        Json(TriggerAnswer {
            url: format!("/api/v1/pipeline/runs/{run_id}"),
            run_id,
            status: "running".into(),
        }),
    ))
}

/// Starts run `run_id` in the background, reading only `allowed`: registered as active (so it
/// can be cancelled) until it ends, logged when it does, with the whole error. The handle gives
/// its outcome.
pub(super) fn spawn_run(
    state: &AppState,
    config: PipelineConfig,
    run_id: String,
    allowed: AllowedSources,
) -> tokio::task::JoinHandle<anyhow::Result<&'static str>> {
    let cancel = Arc::new(AtomicBool::new(false));
    state.inner.runs.lock().insert(run_id.clone(), cancel.clone());
    let state = state.clone();
    tokio::spawn(async move {
        let options = RunOptions {
            sources: Some(Arc::new(allowed)),
            ..RunOptions::default()
        };
        let outcome = execute(&state, config, &run_id, options, &cancel).await;
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
    options: RunOptions,
    cancel: &AtomicBool,
) -> anyhow::Result<&'static str> {
    let pipeline = Pipeline::new(state.store(), config, run_id.to_owned(), options)?;
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
