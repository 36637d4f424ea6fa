//! Run records: `runs/{run_id}/run.json` (status, config, steps done) and
//! `runs/{run_id}/steps/{step}.json` (what a finished step produced), and the trait that sums a
//! step's outputs up in one line.

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
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub git_commit: Option<String>,
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
        let run = RunRecord {
            run_id: self.run_id.clone(),
            kind: "pipeline".into(),
            dataset: self.config.dataset.name.clone(),
            status: Status::Running,
            created_at: now,
            updated_at: now,
            config_digest: digest,
            config: serde_json::from_str(&self.config.canonical_json()).expect("valid json"),
            steps: Vec::new(),
            error: None,
            git_commit: git_commit(),
        };
        put_json(self.store, &self.run_key(), &run).await?;
        Ok(run)
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
        })
        .await
    }
}
