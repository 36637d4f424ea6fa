//! Run records: `runs/{run_id}/run.json` (status, config, steps done) and
//! `runs/{run_id}/steps/{step}.json` (what a finished step produced), the trait that sums a
//! step's outputs up in one line, and the public view of a run record.

use std::fmt;

use anyhow::bail;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Pipeline, StepName};
use crate::digest::sha256_hex;
use crate::store::{get_json, put_json};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Running,
    Succeeded,
    Failed,
    /// Stopped between two steps on request; its finished steps stay valid (a rerun with the
    /// same run id resumes after them).
    Cancelled,
}

/// `runs/{run_id}/run.json` for a pipeline run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct RunRecord {
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
}

/// A critical expectation failed (validate step): the message lists failing rows.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct ExpectationsFailed(pub String);

/// A coarse, content-free name for what stopped a run: `fetch` (the source could not be
/// downloaded), `read` (the source could not be read), `data` (rows or the file do not match the
/// declared schema), `source_not_allowed`, `expectations`, `config`, `store`, `registry`, or
/// `error`.
pub(crate) fn error_kind(e: &anyhow::Error) -> &'static str {
    use crate::data::DataError;
    for cause in e.chain() {
        if let Some(data) = cause.downcast_ref::<DataError>() {
            return match data {
                DataError::Fetch { .. } => "fetch",
                DataError::Io { .. } => "read",
                DataError::Cell { .. } | DataError::Row { .. } | DataError::File { .. } => "data",
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
    }
    "error"
}

/// A run record as public routes show it: a failed run's error is replaced by its step and
/// kind (the whole error can quote the data, e.g. a file's first line, and stays in the store
/// and the server's log). Other statuses' errors are the pipeline's own words (`cancelled`) and
/// are kept. Works on any `run.json` (records written before
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
        }
    }

    pub(super) async fn update_run(&self, f: impl FnOnce(&mut RunRecord)) -> anyhow::Result<()> {
        let mut run = self.open_run(false).await?;
        f(&mut run);
        run.updated_at = Utc::now();
        put_json(self.store, &self.run_key(), &run).await
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
}
