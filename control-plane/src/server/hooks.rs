//! Drift-triggered retraining: `POST /api/v1/hooks/alertmanager` takes Alertmanager's webhook
//! (admin token), and for each *firing* drift alert naming a `model` starts a pipeline run with
//! the config that trained the model's production version, on its data source as it is now
//! (new rows make a new dataset version). The run promotes only through its compare step (the
//! gate), so a worse candidate leaves production where it is.
//!
//! A cooldown per model (default one hour) turns repeated alerts into no-ops. Every trigger is
//! recorded at `hooks/retrains/{model}/{id}.json` with what was done and, once the run ends,
//! its outcome (promoted, kept production, failed); `GET /api/v1/hooks/retrains` lists them.
//! The records are in the store, so the cooldown holds across restarts and replicas.
//!
//! A record waiting for its run's outcome holds a lease, renewed by the process running it
//! like the run's; a control plane that finds the lease expired records the outcome
//! `abandoned` with the reason. Failed runs are recorded with their error's kind only (the
//! records are public; the run's whole error is in the log and the run's record).
//!
//! Starting a retrain first takes the next number at `hooks/retrain-claims/{model}/{n}.json` with
//! a conditional create, after checking that claim `n - 1` is older than the cooldown: of several
//! webhooks at once (on one replica or many) exactly one starts a retrain, and the others record
//! `cooldown`.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{ApiError, ApiJson, AppState, ErrorBody};
use crate::config::PipelineConfig;
use crate::dataset::load_dataset;
use crate::pipeline::{Lease, LeaseFound, Leased, new_run_id};
use crate::registry;
use crate::store::{ErrorKind, Key};

/// Where trigger records live.
pub(super) const RETRAINS_PREFIX: &str = "hooks/retrains/";
/// The lease index's kind for retrains: `leases/retrains/{model}/{id}.json`.
const RETRAIN_LEASES: &str = "retrains";

/// Where the numbered claims that serialise retrain starts live.
const CLAIMS_PREFIX: &str = "hooks/retrain-claims/";

/// `hooks/retrain-claims/{model}/{n}.json`: retrain `n` of a model was started at `at`.
#[derive(Debug, Serialize, Deserialize)]
struct Claim {
    at: DateTime<Utc>,
    trigger: String,
}

/// Alertmanager's webhook body (version 4), the members used.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub(super) struct AlertmanagerWebhook {
    pub version: String,
    #[serde(default)]
    pub alerts: Vec<Alert>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub(super) struct Alert {
    /// `firing` or `resolved`.
    pub status: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// One trigger: what the hook did for one alert.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub(super) struct RetrainRecord {
    pub id: String,
    pub model: String,
    pub alertname: String,
    pub received_at: DateTime<Utc>,
    /// `started`, `cooldown` (a retrain started less than the cooldown ago) or `ignored`.
    pub action: String,
    pub run_id: Option<String>,
    /// The production version when the alert came.
    pub production_before: Option<u64>,
    /// Once the run ended: `promoted`, `kept` (the gate kept production), `failed`,
    /// `cancelled`, or `abandoned` (the process running it stopped: see `detail`).
    pub outcome: Option<String>,
    pub production_after: Option<u64>,
    pub detail: Option<String>,
    /// Held by the process running the retrain until the outcome is recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<Lease>,
}

impl RetrainRecord {
    fn key(&self) -> anyhow::Result<Key> {
        Ok(Key::new(format!("{RETRAINS_PREFIX}{}/{}.json", self.model, self.id))?)
    }

    fn lease_entry(&self) -> anyhow::Result<Key> {
        crate::pipeline::lease_entry_key(RETRAIN_LEASES, &format!("{}/{}", self.model, self.id))
    }
}

impl Leased for RetrainRecord {
    fn open_lease(&self) -> Option<&Lease> {
        self.lease.as_ref().filter(|_| self.outcome.is_none())
    }

    fn abandon(&mut self, reason: String, _now: DateTime<Utc>) {
        self.outcome = Some("abandoned".into());
        self.detail = Some(reason);
        self.lease = None;
    }
}

/// Marks every retrain whose lease expired by `now` abandoned.
pub(super) async fn scan_leases(state: &AppState, now: DateTime<Utc>) -> anyhow::Result<Vec<(String, LeaseFound)>> {
    crate::pipeline::scan_leases::<RetrainRecord>(state.store(), RETRAIN_LEASES, now).await
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub(super) struct HookAnswer {
    pub triggers: Vec<RetrainRecord>,
}

/// Whether an alert asks for a retrain: a drift alert (by name) that names a model.
fn is_drift(alert: &Alert) -> bool {
    alert.status == "firing"
        && alert.labels.contains_key("model")
        && alert
            .labels
            .get("alertname")
            .is_some_and(|n| n.to_ascii_lowercase().contains("drift"))
}

#[utoipa::path(post, path = "/api/v1/hooks/alertmanager", tag = "hooks", request_body = serde_json::Value,
    security(("alertmanager" = []), ("admin" = [])),
    responses((status = 200, description = "What was done for each drift alert", body = HookAnswer),
        (status = 400, description = "Not an Alertmanager webhook", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 404, description = "An alert names an unknown model", body = ErrorBody)))]
pub(super) async fn alertmanager(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<ApiJson<AlertmanagerWebhook>, ApiError>,
) -> Result<(StatusCode, Json<HookAnswer>), ApiError> {
    state.check_alertmanager(&headers)?;
    let ApiJson(hook) = body?;
    if hook.version != "4" {
        return Err(ApiError::bad_request(format!(
            "webhook version '{}': Alertmanager's version 4 is supported",
            hook.version
        )));
    }
    let drift: Vec<&Alert> = hook.alerts.iter().filter(|a| is_drift(a)).collect();
    // Unknown models are refused before anything starts.
    for alert in &drift {
        let model = &alert.labels["model"];
        if registry::list_versions(state.store(), model).await?.is_empty() {
            return Err(ApiError::not_found(format!(
                "alert for model '{model}', which does not exist"
            )));
        }
    }
    let mut triggers = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for alert in drift {
        let model = alert.labels["model"].clone();
        if !seen.insert(model.clone()) {
            continue; // one trigger per model per webhook
        }
        if alert.labels.get("trust").is_some_and(|t| t == "advisory") {
            // Browsers are anonymous: their figures never start a retrain by themselves (a model
            // is opted in with `--act-on-browser-telemetry`, which exports `trust="opted-in"`).
            let record = ignored(
                &model,
                &alert.labels["alertname"],
                "the alert is on browser telemetry, which is advisory (trust=\"advisory\"): see --act-on-browser-telemetry",
            );
            save(&state, &record).await?;
            triggers.push(record);
            continue;
        }
        triggers.push(trigger(&state, &model, &alert.labels["alertname"]).await?);
    }
    Ok((StatusCode::OK, Json(HookAnswer { triggers })))
}

/// A trigger that started nothing, and why.
fn ignored(model: &str, alertname: &str, why: &str) -> RetrainRecord {
    let now = Utc::now();
    RetrainRecord {
        id: format!("{}-{}", now.format("%Y%m%dT%H%M%S%.3fZ"), &new_run_id()[17..]),
        model: model.to_owned(),
        alertname: alertname.to_owned(),
        received_at: now,
        action: "ignored".into(),
        run_id: None,
        production_before: None,
        outcome: None,
        production_after: None,
        detail: Some(why.to_owned()),
        lease: None,
    }
}

async fn trigger(state: &AppState, model: &str, alertname: &str) -> Result<RetrainRecord, ApiError> {
    let now = Utc::now();
    let production = registry::get_alias(state.store(), model, "production").await?;
    let mut record = RetrainRecord {
        id: format!("{}-{}", now.format("%Y%m%dT%H%M%S%.3fZ"), &new_run_id()[17..]),
        model: model.to_owned(),
        alertname: alertname.to_owned(),
        received_at: now,
        action: "started".into(),
        run_id: None,
        production_before: production.as_ref().map(|p| p.version),
        outcome: None,
        production_after: None,
        detail: None,
        lease: None,
    };
    let (last, next) = last_claim(state, model).await?;
    let cooldown = state.inner.retrain_cooldown;
    if let Some(last) = last
        && now.signed_duration_since(last).to_std().unwrap_or_default() < cooldown
    {
        record.action = "cooldown".into();
        record.detail = Some(format!(
            "a retrain started at {last}; the cooldown is {} s",
            cooldown.as_secs()
        ));
        save(state, &record).await?;
        return Ok(record);
    }
    let config = match production_config(state, model).await {
        Ok(config) => config,
        Err(e) => {
            record.action = "ignored".into();
            record.detail = Some(format!("{e:#}"));
            save(state, &record).await?;
            return Ok(record);
        }
    };
    let allowed = super::pipeline::allowed_sources(state).await?;
    if let Err(e) = super::pipeline::check_source(&allowed, &config) {
        record.action = "ignored".into();
        record.detail = Some(match e {
            ApiError::User { message, .. } => message,
            ApiError::Unexpected(e) => format!("{e:#}"),
        });
        save(state, &record).await?;
        return Ok(record);
    }
    if !claim(state, model, next, &record).await? {
        record.action = "cooldown".into();
        record.detail = Some("another retrain of this model started at the same moment".into());
        save(state, &record).await?;
        return Ok(record);
    }
    let run_id = new_run_id();
    let runs = &state.inner.runs;
    record.run_id = Some(run_id.clone());
    record.lease = Some(runs.holder.lease(now));
    let lease_entry = record.lease_entry()?;
    let key = record.key()?;
    crate::pipeline::enter_lease(
        state.store(),
        &lease_entry,
        &key,
        record.lease.as_ref().expect("a lease"),
    )
    .await?;
    save(state, &record).await?;
    let run = match super::pipeline::start_run(state, config, run_id.clone(), allowed).await {
        Ok(run) => run,
        Err(e) => {
            tracing::warn!(model, status = %e.status(), "the retrain's run could not start");
            let mut failed = record.clone();
            failed.outcome = Some("failed".into());
            failed.detail = Some("the run could not start".into());
            failed.lease = None;
            save(state, &failed).await?;
            crate::pipeline::leave_lease(state.store(), &lease_entry).await?;
            return Err(e);
        }
    };
    let work = runs.work();
    let task_state = state.clone();
    let (before, model) = (record.production_before, record.model.clone());
    tokio::spawn(async move {
        let _work = work;
        let state = task_state;
        let holder = state.inner.runs.holder.clone();
        let (stop_beats, beats_stopped) = tokio::sync::watch::channel(false);
        let beats = {
            let (state, key, holder) = (state.clone(), key.clone(), holder.clone());
            tokio::spawn(async move {
                let (state, key, holder) = (&state, &key, &holder);
                super::pipeline::heartbeats(holder.heartbeat_every(), beats_stopped, move || async move {
                    renew(state, key, holder).await
                })
                .await;
            })
        };
        let result = run
            .await
            .unwrap_or_else(|e| Err(anyhow::anyhow!("the run's task failed: {e}")));
        let _ = stop_beats.send(true);
        let _ = beats.await;
        let after = registry::get_alias(state.store(), &model, "production")
            .await
            .ok()
            .flatten()
            .map(|p| p.version);
        let (outcome, detail) = match &result {
            Err(e) => (
                "failed",
                Some(format!(
                    "the run failed ({}); see /api/v1/runs/{run_id}",
                    crate::pipeline::error_kind(e)
                )),
            ),
            Ok("cancelled") => ("cancelled", None),
            Ok("abandoned") => ("abandoned", Some(format!("see /api/v1/runs/{run_id}"))),
            Ok(_) if after != before => ("promoted", None),
            Ok(_) => (
                "kept",
                Some(format!(
                    "the compare gate kept production (see runs/{run_id}/artifacts/compare/report.md)"
                )),
            ),
        };
        let written = crate::pipeline::update_json::<RetrainRecord>(state.store(), &key, |done| {
            if done.outcome.is_some() {
                // Marked abandoned elsewhere meanwhile (this process stopped heartbeating for a
                // whole lease): that record stands.
                return Ok(false);
            }
            done.production_after = after;
            done.outcome = Some(outcome.to_owned());
            done.detail = detail.clone();
            done.lease = None;
            Ok(true)
        })
        .await;
        tracing::info!(record = %key, run_id = %run_id, outcome, "drift retrain ended");
        if let Err(e) = written {
            tracing::warn!(record = %key, error = format!("{e:#}"), "cannot record the retrain outcome");
        }
        if let Err(e) = crate::pipeline::leave_lease(state.store(), &lease_entry).await {
            tracing::warn!(record = %key, error = format!("{e:#}"), "cannot remove the retrain's lease entry");
        }
    });
    Ok(record)
}

/// Renews a retrain record's lease; false once it is no longer this process's.
async fn renew(state: &AppState, key: &Key, holder: &crate::pipeline::LeaseHolder) -> bool {
    let renewed = crate::pipeline::update_json::<RetrainRecord>(state.store(), key, |record| {
        let ours = record.open_lease().is_some_and(|l| l.owner == holder.owner);
        if ours {
            record.lease = Some(holder.lease(Utc::now()));
        }
        Ok(ours)
    })
    .await;
    match renewed {
        Ok(Some(record)) => record.open_lease().is_some_and(|l| l.owner == holder.owner),
        Ok(None) => false,
        Err(e) => {
            tracing::warn!(record = %key, error = format!("{e:#}"), "cannot renew the retrain's lease");
            true
        }
    }
}

/// The config that trained the model's production version, pointed at its data source's
/// absolute location.
async fn production_config(state: &AppState, model: &str) -> anyhow::Result<PipelineConfig> {
    let manifest = registry::load_manifest(
        state.store(),
        &format!("{model}@production").parse::<registry::ModelSelector>()?,
    )
    .await?;
    let run = Key::new(format!("runs/{}/run.json", manifest.run_id))?;
    let run: serde_json::Value = serde_json::from_slice(&state.store().get(&run).await?)?;
    let mut value = run["config"].clone();
    let name = value["dataset"]["name"].as_str().unwrap_or_default().to_owned();
    let dataset = load_dataset(state.store(), &name, None).await?;
    value["dataset"]["source"] = serde_json::Value::String(dataset.source.uri);
    PipelineConfig::from_json(value, std::env::current_dir()?)
        .map_err(|e| anyhow::anyhow!("the config of production's run {}: {e}", manifest.run_id))
}

/// When the model's last retrain started (None: never) and the number the next one claims.
async fn last_claim(state: &AppState, model: &str) -> Result<(Option<DateTime<Utc>>, u64), ApiError> {
    let prefix = format!("{CLAIMS_PREFIX}{model}/");
    let claims = state.store().list(&prefix).await.map_err(anyhow::Error::from)?;
    let numbered = claims.iter().filter_map(|m| {
        let n = m.key.as_str().strip_prefix(&prefix)?.strip_suffix(".json")?;
        Some((n.parse::<u64>().ok()?, &m.key))
    });
    let Some((n, key)) = numbered.max_by_key(|(n, _)| *n) else {
        return Ok((None, 1));
    };
    let body = state.store().get(key).await.map_err(anyhow::Error::from)?;
    let claim: Claim =
        serde_json::from_slice(&body).map_err(|e| anyhow::anyhow!("{key} is not a retrain claim: {e}"))?;
    Ok((Some(claim.at), n + 1))
}

/// Takes claim `n` for `record`; false when another trigger took it first.
async fn claim(state: &AppState, model: &str, n: u64, record: &RetrainRecord) -> Result<bool, ApiError> {
    let key = Key::new(format!("{CLAIMS_PREFIX}{model}/{n:012}.json")).map_err(anyhow::Error::from)?;
    let claim = Claim {
        at: record.received_at,
        trigger: record.id.clone(),
    };
    let body = Bytes::from(serde_json::to_vec_pretty(&claim).map_err(anyhow::Error::from)?);
    match state.store().create_new(&key, body).await {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(anyhow::Error::from(e).into()),
    }
}

async fn save(state: &AppState, record: &RetrainRecord) -> Result<(), ApiError> {
    let key = record.key()?;
    let body = Bytes::from(serde_json::to_vec_pretty(record).map_err(anyhow::Error::from)?);
    state.store().put(&key, body).await.map_err(anyhow::Error::from)?;
    Ok(())
}

async fn list(state: &AppState, model: Option<&str>) -> Result<Vec<RetrainRecord>, ApiError> {
    let prefix = match model {
        Some(m) => format!("{RETRAINS_PREFIX}{m}/"),
        None => RETRAINS_PREFIX.to_owned(),
    };
    let mut records = Vec::new();
    for meta in state.store().list(&prefix).await.map_err(anyhow::Error::from)? {
        match state.store().get(&meta.key).await {
            Ok(body) => {
                if let Ok(r) = serde_json::from_slice::<RetrainRecord>(&body) {
                    records.push(r);
                }
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(anyhow::Error::from(e).into()),
        }
    }
    records.sort_by_key(|r| std::cmp::Reverse(r.received_at));
    Ok(records)
}

#[derive(Debug, Deserialize)]
pub(super) struct RetrainQuery {
    model: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/hooks/retrains", tag = "hooks", params(("model" = Option<String>, Query)),
    responses((status = 200, description = "Every drift-triggered retrain, newest first, with its outcome", body = HookAnswer)))]
pub(super) async fn retrains(
    State(state): State<AppState>,
    query: Result<axum::extract::Query<RetrainQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<HookAnswer>, ApiError> {
    let axum::extract::Query(query) = query?;
    if let Some(m) = &query.model {
        Key::segment(m).map_err(|e| ApiError::bad_request(e.to_string()))?;
    }
    Ok(Json(HookAnswer {
        triggers: list(&state, query.model.as_deref()).await?,
    }))
}
