//! Run records: `runs/{run_id}/run.json` (status, config, steps done, the lease of the process
//! running it) and `runs/{run_id}/steps/{step}.json` (what a finished step produced), the trait
//! that sums a step's outputs up in one line, and the public view of a run record.

use std::fmt;

use anyhow::bail;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::lease::{self, Lease, Leased};
use super::{Pipeline, StepName};
use crate::digest::sha256_hex;
use crate::store::{get_json, put_json};

/// The lease index's kind for runs: `leases/runs/{run_id}.json`.
pub(crate) const RUN_LEASES: &str = "runs";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Running,
    Succeeded,
    Failed,
    /// Stopped between two steps on request; its finished steps stay valid (a rerun with the
    /// same run id resumes after them).
    Cancelled,
    /// The process running it stopped before it ended: its lease expired (the process died), or
    /// the server shut down between two steps. Finished steps stay valid, as for `Cancelled`.
    Abandoned,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Running => "running",
            Status::Succeeded => "succeeded",
            Status::Failed => "failed",
            Status::Cancelled => "cancelled",
            Status::Abandoned => "abandoned",
        }
    }
}

/// `runs/{run_id}/run.json` for a pipeline run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct RunRecord {
    pub run_id: String,
    pub kind: String,
    pub dataset: String,
    pub status: Status,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub config_digest: String,
    /// The config the run was started with (canonical JSON).
    pub config: serde_json::Value,
    /// Steps finished so far, in order.
    pub steps: Vec<StepName>,
    /// The whole error, as the operator needs it (it can quote the data: a header, a cell);
    /// public routes show [`public_view`] instead.
    #[serde(default)]
    pub error: Option<String>,
    /// What kind of error stopped the run ([`error_kind`]): what public routes show of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_kind: Option<String>,
    /// The step that failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_step: Option<StepName>,
    #[serde(default)]
    pub git_commit: Option<String>,
    /// Held by the process running it, while it runs (see [`super::lease`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<Lease>,
}

impl Leased for RunRecord {
    fn open_lease(&self) -> Option<&Lease> {
        self.lease.as_ref().filter(|_| self.status == Status::Running)
    }

    fn abandon(&mut self, reason: String, now: DateTime<Utc>) {
        self.status = Status::Abandoned;
        self.error = Some(reason);
        self.error_kind = Some("abandoned".into());
        self.lease = None;
        self.updated_at = now;
    }
}

/// Marks every run whose lease expired by `now` abandoned (see [`lease::scan`]).
pub(crate) async fn scan_run_leases(
    store: &dyn crate::store::ObjectStore,
    now: DateTime<Utc>,
) -> anyhow::Result<Vec<(String, lease::Found)>> {
    lease::scan::<RunRecord>(store, RUN_LEASES, now).await
}

/// The run's process lost its lease: another control plane marked the run abandoned (its
/// heartbeats stopped for a whole lease), so this process must stop writing to it.
#[derive(Debug, thiserror::Error)]
#[error("run {run_id} is no longer this process's to run: {status}")]
pub struct LeaseLost {
    pub run_id: String,
    pub status: String,
}

/// A critical expectation failed (validate step): the message lists failing rows.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct ExpectationsFailed(pub String);

/// A coarse, content-free name for what stopped a run: `fetch` (the source could not be
/// downloaded), `read` (the source could not be read), `data` (rows or the file do not match the
/// declared schema), `source_not_allowed`, `expectations`, `config`, `store`, `registry`,
/// `lease`, or `error`.
pub(crate) fn error_kind(e: &anyhow::Error) -> &'static str {
    use crate::data::DataError;
    for cause in e.chain() {
        if let Some(data) = cause.downcast_ref::<DataError>() {
            return match data {
                DataError::Fetch { .. } => "fetch",
                DataError::Io { .. } => "read",
                DataError::Cell { .. } | DataError::Value { .. } | DataError::Row { .. } | DataError::File { .. } => {
                    "data"
                }
                DataError::NotAllowed(_) => "source_not_allowed",
            };
        }
        if cause.is::<ExpectationsFailed>() {
            return "expectations";
        }
        if cause.is::<crate::config::ConfigError>() {
            return "config";
        }
        if cause.is::<crate::store::StoreError>() {
            return "store";
        }
        if cause.is::<crate::registry::RegistryError>() {
            return "registry";
        }
        if cause.is::<LeaseLost>() {
            return "lease";
        }
    }
    "error"
}

/// A run record as public routes show it: a failed run's error is replaced by its step and
/// kind (the whole error can quote the data, e.g. a file's first line, and stays in the store
/// and the server's log). Other statuses' errors are the pipeline's own words (`cancelled`, the
/// reason a run was abandoned) and are kept. Works on any `run.json` (records written before
/// `error_kind` existed say `error`).
pub fn public_view(run: &mut serde_json::Value) {
    let serde_json::Value::Object(map) = run else { return };
    if map.get("status").and_then(|s| s.as_str()) != Some("failed") {
        return;
    }
    let Some(error) = map.get("error").and_then(|e| e.as_str()) else {
        return;
    };
    let step = map
        .get("failed_step")
        .and_then(|s| s.as_str())
        .map(str::to_owned)
        .or_else(|| {
            // Older records: "{step}: {message}".
            let (step, _) = error.split_once(':')?;
            StepName::ALL
                .iter()
                .find(|s| s.as_str() == step)
                .map(|s| s.as_str().to_owned())
        });
    let kind = map
        .get("error_kind")
        .and_then(|k| k.as_str())
        .unwrap_or("error")
        .to_owned();
    let text = match step {
        Some(step) => format!("step {step} failed ({kind}); the whole error is in the control plane's log"),
        None => format!("the run failed ({kind}); the whole error is in the control plane's log"),
    };
    map.insert("error".into(), serde_json::Value::String(text));
    map.insert("error_kind".into(), serde_json::Value::String(kind));
}

/// `runs/{run_id}/steps/{step}.json`: what a finished step produced.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepRecord<T> {
    pub step: StepName,
    pub run_id: String,
    pub input_digest: String,
    pub started_at: DateTime<Utc>,
    pub duration_ms: u64,
    /// Set when the outputs were reused from an earlier run with the same inputs.
    #[serde(default)]
    pub reused_from: Option<String>,
    pub outputs: T,
}

/// What running one step did.
#[derive(Debug, Clone)]
pub struct StepReport {
    pub step: StepName,
    /// False when the step was a no-op (same inputs as a finished step).
    pub executed: bool,
    pub summary: String,
    pub seconds: f64,
}

impl fmt::Display for StepReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.executed {
            write!(f, "{:<9} {} ({:.2} s)", self.step, self.summary, self.seconds)
        } else {
            write!(f, "{:<9} up to date: {}", self.step, self.summary)
        }
    }
}

/// A one-line description of a step's outputs.
pub trait Summary {
    fn summary(&self) -> String;
}

/// A new run id: UTC time plus random hex, sortable by start time.
pub fn new_run_id() -> String {
    let now = Utc::now();
    let noise = sha256_hex(&[
        &now.timestamp_nanos_opt().unwrap_or_default().to_string(),
        &std::process::id().to_string(),
        &format!("{:p}", &now),
    ]);
    format!("{}-{}", now.format("%Y%m%dT%H%M%SZ"), &noise[..6])
}

pub(crate) fn git_commit() -> Option<String> {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        .filter(|s| !s.is_empty())
}

impl Pipeline<'_> {
    /// Loads the run record, creating it if `create` (the first step of a run).
    pub(super) async fn open_run(&self, create: bool) -> anyhow::Result<RunRecord> {
        let digest = self.config_digest();
        if let Some(run) = get_json::<RunRecord>(self.store, &self.run_key()).await? {
            if run.config_digest != digest {
                bail!(
                    "run {} was started with a different config (digest {}); start a new run for this config",
                    self.run_id,
                    &run.config_digest[..12]
                );
            }
            return Ok(run);
        }
        if !create {
            bail!(
                "run {} does not exist in {}: start it with `wasmline pipeline step ingest --run-id {}`",
                self.run_id,
                self.store.describe(),
                self.run_id
            );
        }
        let now = Utc::now();
        let run = self.new_record(now);
        put_json(self.store, &self.run_key(), &run).await?;
        Ok(run)
    }

    fn new_record(&self, now: DateTime<Utc>) -> RunRecord {
        RunRecord {
            run_id: self.run_id.clone(),
            kind: "pipeline".into(),
            dataset: self.config.dataset.name.clone(),
            status: Status::Running,
            created_at: now,
            updated_at: now,
            config_digest: self.config_digest(),
            config: serde_json::from_str(&self.config.canonical_json()).expect("valid json"),
            steps: Vec::new(),
            error: None,
            error_kind: None,
            failed_step: None,
            git_commit: git_commit(),
            lease: self.options.lease.as_ref().map(|holder| holder.lease(now)),
        }
    }

    fn lease_entry(&self) -> anyhow::Result<crate::store::Key> {
        lease::entry_key(RUN_LEASES, &self.run_id)
    }

    /// Starts a new run under this process's lease (the options' [`super::LeaseHolder`]): the
    /// run is listed under `leases/` and its record created `running`, so a client sees it at
    /// once and a control plane finds it if this process dies. Fails if the run id is taken.
    pub async fn begin(&self) -> anyhow::Result<()> {
        let holder = self
            .options
            .lease
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("a run begins under a lease"))?;
        let run = self.new_record(Utc::now());
        let taken = run.lease.as_ref().expect("a lease");
        lease::enter(self.store, &self.lease_entry()?, &self.run_key(), taken).await?;
        let body = bytes::Bytes::from(serde_json::to_vec_pretty(&run)?);
        self.store
            .create_new(&self.run_key(), body)
            .await
            .map_err(|e| anyhow::anyhow!("cannot start run {} ({}): {e}", self.run_id, holder.owner))?;
        Ok(())
    }

    /// Reads, changes and writes the run record. Under a lease, the write renews the lease while
    /// the run stays `running` and gives it up (and leaves the lease index) when it ends; and a
    /// record no longer leased to this process is not written ([`LeaseLost`]).
    pub(super) async fn update_run(&self, f: impl FnOnce(&mut RunRecord)) -> anyhow::Result<()> {
        let Some(holder) = &self.options.lease else {
            let mut run = self.open_run(false).await?;
            f(&mut run);
            run.updated_at = Utc::now();
            return put_json(self.store, &self.run_key(), &run).await;
        };
        let _writing = holder.writes.lock().await;
        self.open_run(false).await?;
        let mut f = Some(f);
        let run = lease::update_json::<RunRecord>(self.store, &self.run_key(), |run| {
            let ours = run.lease.as_ref().is_some_and(|l| l.owner == holder.owner);
            if !ours || run.status != Status::Running {
                return Err(LeaseLost {
                    run_id: self.run_id.clone(),
                    status: match &run.error {
                        Some(error) => format!("{}: {error}", run.status.as_str()),
                        None => run.status.as_str().to_owned(),
                    },
                }
                .into());
            }
            if let Some(f) = f.take() {
                f(run);
            }
            let now = Utc::now();
            run.updated_at = now;
            run.lease = (run.status == Status::Running).then(|| holder.lease(now));
            Ok(true)
        })
        .await?
        .ok_or_else(|| anyhow::anyhow!("run {} disappeared from {}", self.run_id, self.store.describe()))?;
        if run.status != Status::Running {
            lease::leave(self.store, &self.lease_entry()?).await?;
        }
        Ok(())
    }

    /// Renews the run's lease (the heartbeat). False when the run is no longer running under
    /// this process's lease (it ended, or another control plane marked it abandoned): the
    /// heartbeat stops, and the run's next write says which.
    pub async fn heartbeat(&self) -> anyhow::Result<bool> {
        match self.update_run(|_| {}).await {
            Ok(()) => Ok(true),
            Err(e) if e.downcast_ref::<LeaseLost>().is_some() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Marks the run cancelled (called between steps, so no step is half done).
    pub async fn mark_cancelled(&self) -> anyhow::Result<()> {
        self.update_run(|run| {
            run.status = Status::Cancelled;
            run.error = Some("cancelled".into());
            run.error_kind = Some("cancelled".into());
        })
        .await
    }

    /// Marks the run abandoned by its own process, with `reason` (a server shutting down stops
    /// its runs between two steps).
    pub async fn mark_abandoned(&self, reason: String) -> anyhow::Result<()> {
        self.update_run(|run| {
            run.status = Status::Abandoned;
            run.error = Some(reason);
            run.error_kind = Some("abandoned".into());
        })
        .await
    }
}
