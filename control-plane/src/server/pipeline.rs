//! Pipeline runs over HTTP: trigger (admin), status, cancel (admin).
//!
//! A triggered run executes in this server's process, step by step; a cancel request stops it
//! between two steps (the step under way finishes, so nothing is half-written) and marks it
//! `cancelled`. The run's record lives in the store like any CLI run's, so `GET` works on any
//! replica and for runs started from the command line; public routes show a failed run's step
//! and error kind, not its error (which can quote the data), and the log has the whole error.
//!
//! A run holds a lease in its record, renewed by this process ([`heartbeats`]); a shutdown stops
//! runs before their next step (`abandoned`, with the reason) and waits for the steps under way
//! up to the grace. A run may read only the sources [`allowed_sources`] allows, checked before
//! the trigger answers and again just before the read.

use std::collections::{BTreeMap, HashMap};
use std::path::Path as FsPath;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::watch;

use super::{ApiError, ApiJson, AppState, ErrorBody};
use crate::config::PipelineConfig;
use crate::data::AllowedSources;
use crate::dataset::DatasetRecord;
use crate::pipeline::{LeaseHolder, Pipeline, RunOptions, new_owner_id, new_run_id};
use crate::store::get_json;

/// How this server runs pipelines (`wasmline serve` flags).
#[derive(Debug, Clone)]
pub(crate) struct RunSettings {
    /// How long a run's (or retrain's) lease holds without a heartbeat.
    pub lease: Duration,
    /// How long a shutdown waits for the steps under way.
    pub shutdown_grace: Duration,
    /// `--allow-source` prefixes: paths (relative ones from the working directory) or URLs.
    pub allow_sources: Vec<String>,
}

impl Default for RunSettings {
    fn default() -> Self {
        RunSettings {
            lease: Duration::from_secs(60),
            shutdown_grace: Duration::from_secs(30),
            allow_sources: Vec::new(),
        }
    }
}

/// Runs this server is executing (run id -> its cancel flag), the lease they are held under, the
/// sources they may read, and the count of background work a shutdown waits for.
#[derive(Debug)]
pub(super) struct ActiveRuns {
    runs: Mutex<HashMap<String, Arc<AtomicBool>>>,
    pub(super) holder: LeaseHolder,
    /// The `--allow-source` prefixes, resolved once.
    flags: AllowedSources,
    shutdown_grace: Duration,
    /// When a shutdown began: runs stop before their next step.
    stopping: Mutex<Option<tokio::time::Instant>>,
    /// Runs and retrain records still being written.
    work: Arc<watch::Sender<usize>>,
}

impl ActiveRuns {
    pub(super) fn new(settings: RunSettings) -> anyhow::Result<ActiveRuns> {
        anyhow::ensure!(
            settings.lease >= Duration::from_secs(1),
            "the run lease must be a second or more"
        );
        let mut flags = AllowedSources::new();
        for prefix in &settings.allow_sources {
            flags
                .add(prefix, FsPath::new(""), "--allow-source")
                .map_err(anyhow::Error::msg)?;
        }
        Ok(ActiveRuns {
            runs: Mutex::default(),
            holder: LeaseHolder::new(new_owner_id(), settings.lease),
            flags,
            shutdown_grace: settings.shutdown_grace,
            stopping: Mutex::default(),
            work: Arc::new(watch::channel(0).0),
        })
    }

    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<AtomicBool>>> {
        self.runs.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts a piece of background work until the guard drops.
    pub(super) fn work(&self) -> WorkGuard {
        self.work.send_modify(|n| *n += 1);
        WorkGuard(self.work.clone())
    }

    /// A shutdown began: no run starts, and running ones stop before their next step.
    pub(super) fn begin_shutdown(&self) {
        let mut stopping = self.stopping.lock().unwrap_or_else(PoisonError::into_inner);
        stopping.get_or_insert_with(tokio::time::Instant::now);
    }

    pub(super) fn stopping(&self) -> bool {
        self.stopping.lock().unwrap_or_else(PoisonError::into_inner).is_some()
    }

    /// Waits until every run and retrain record is written, or the shutdown grace (from the
    /// shutdown's start) runs out; the runs still in a step are named in the log, their leases
    /// left to expire (the next control plane marks them abandoned).
    pub(super) async fn drain(&self) {
        self.begin_shutdown();
        let started = self
            .stopping
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .expect("shutting down");
        let mut idle = self.work.subscribe();
        let waited = tokio::time::timeout_at(started + self.shutdown_grace, idle.wait_for(|n| *n == 0)).await;
        if waited.is_err() {
            let left: Vec<String> = self.lock().keys().cloned().collect();
            tracing::warn!(
                runs = ?left,
                grace_s = self.shutdown_grace.as_secs_f64(),
                "steps still under way at the end of the shutdown grace: leaving them to their leases"
            );
        }
    }
}

/// Background work in progress; counted down when dropped.
#[derive(Debug)]
pub(super) struct WorkGuard(Arc<watch::Sender<usize>>);

impl Drop for WorkGuard {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// Runs `beat` every `every` until it returns false or `stop` turns true (or its sender
/// goes). A beat under way always finishes, so a caller that stops the loop and awaits it knows
/// no heartbeat write is in flight.
pub(super) async fn heartbeats<F, Fut>(every: Duration, mut stop: watch::Receiver<bool>, mut beat: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    loop {
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            changed = stop.changed() => if changed.is_err() || *stop.borrow() { return },
        }
        if !beat().await {
            return;
        }
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
#[utoipa::path(post, path = "/api/v1/pipeline/runs", tag = "pipeline", request_body = TriggerRequest, security(("admin" = [])), responses((status = 202, description = "Started", body = TriggerAnswer), (status = 401, description = "Missing or wrong admin token", body = ErrorBody), (status = 403, description = "The config reads a source this server does not allow", body = ErrorBody), (status = 422, description = "The config is refused", body = ErrorBody), (status = 503, description = "The server is shutting down", body = ErrorBody)))]
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
    start_run(&state, config, run_id.clone(), allowed).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(TriggerAnswer {
            url: format!("/api/v1/pipeline/runs/{run_id}"),
            run_id,
            status: "running".into(),
        }),
    ))
}

/// Starts run `run_id` under this server's lease: its record is created `running` (and listed
/// under `leases/`), then it runs in the background, registered as active (so it can be
/// cancelled) and heartbeating until it ends; logged when it does, with the whole error. The
/// handle gives its outcome: `succeeded`, `cancelled` or `abandoned` (a shutdown stopped it).
pub(super) async fn start_run(
    state: &AppState,
    config: PipelineConfig,
    run_id: String,
    allowed: AllowedSources,
) -> Result<tokio::task::JoinHandle<anyhow::Result<&'static str>>, ApiError> {
    if state.inner.runs.stopping() {
        return Err(ApiError::user(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "this control plane is shutting down; start the run on another",
        ));
    }
    let options = RunOptions {
        lease: Some(state.inner.runs.holder.clone()),
        sources: Some(Arc::new(allowed)),
        ..RunOptions::default()
    };
    // Counted from before the record exists, so a shutdown from now on waits for the run.
    let work = state.inner.runs.work();
    Pipeline::new(state.store(), config.clone(), run_id.clone(), options.clone())?
        .begin()
        .await?;
    let cancel = Arc::new(AtomicBool::new(false));
    state.inner.runs.lock().insert(run_id.clone(), cancel.clone());
    let state = state.clone();
    Ok(tokio::spawn(async move {
        let _work = work;
        let (stop_beats, beats_stopped) = watch::channel(false);
        let beats = tokio::spawn(run_heartbeats(
            state.clone(),
            config.clone(),
            run_id.clone(),
            options.clone(),
            beats_stopped,
        ));
        let outcome = match Pipeline::new(state.store(), config, run_id.clone(), options) {
            Ok(pipeline) => execute(&state, &pipeline, &cancel).await,
            Err(e) => Err(e),
        };
        let _ = stop_beats.send(true);
        let _ = beats.await;
        match &outcome {
            Ok(status) => tracing::info!(run_id = %run_id, status, "pipeline run ended"),
            Err(e) => tracing::warn!(run_id = %run_id, error = format!("{e:#}"), "pipeline run failed"),
        }
        state.inner.runs.lock().remove(&run_id);
        outcome
    }))
}

/// Renews a run's lease until the run ends here or is no longer this process's.
async fn run_heartbeats(
    state: AppState,
    config: PipelineConfig,
    run_id: String,
    options: RunOptions,
    stop: watch::Receiver<bool>,
) {
    let Ok(pipeline) = Pipeline::new(state.store(), config, run_id.clone(), options) else {
        return;
    };
    let pipeline = &pipeline;
    let run_id = run_id.as_str();
    heartbeats(state.inner.runs.holder.heartbeat_every(), stop, move || async move {
        match pipeline.heartbeat().await {
            Ok(held) => held,
            Err(e) => {
                // The store may be back by the next heartbeat; the lease lasts three of them.
                tracing::warn!(run_id, error = format!("{e:#}"), "cannot renew the run's lease");
                true
            }
        }
    })
    .await;
}

async fn execute(state: &AppState, pipeline: &Pipeline<'_>, cancel: &AtomicBool) -> anyhow::Result<&'static str> {
    for &step in pipeline.steps() {
        // Checked between steps, so no step is left half done.
        if cancel.load(Ordering::SeqCst) {
            pipeline.mark_cancelled().await?;
            return Ok("cancelled");
        }
        if state.inner.runs.stopping() {
            pipeline
                .mark_abandoned(format!(
                    "the control plane running it (owner {}) shut down before step {step}; the finished steps stay valid",
                    state.inner.runs.holder.owner
                ))
                .await?;
            return Ok("abandoned");
        }
        let report = pipeline.run_step(step).await?;
        tracing::info!(run_id = %pipeline.run_id, step = %report.step, summary = %report.summary, "pipeline step");
    }
    Ok("succeeded")
}

/// `GET /api/v1/pipeline/runs/{id}`: the run record, and whether this server is executing it.
#[utoipa::path(get, path = "/api/v1/pipeline/runs/{id}", tag = "pipeline", params(("id" = String, Path)), responses((status = 200, description = "The run record and whether this server executes it", body = serde_json::Value), (status = 404, description = "Unknown run", body = ErrorBody)))]
pub(super) async fn status(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    // A triggered run's record is written before the trigger answers.
    let mut run = super::api::read_run(&state, &id).await?;
    let active = state.inner.runs.lock().contains_key(&id);
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
