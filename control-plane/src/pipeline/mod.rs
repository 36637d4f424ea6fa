//! The pipeline: ordered, idempotent steps over content-addressed objects.
//!
//! A *run* (`runs/{run_id}/run.json`) executes the steps in order. Each step computes a digest of
//! its inputs (the content hashes of the objects it reads and the part of the config it obeys)
//! before doing any work. When a step with the same digest has already succeeded — in this run or
//! in any earlier one (`cache/steps/{step}/{digest}.json`) — it is a no-op that says so. A step
//! stores its objects first (content-addressed or under the run) and its record last, so a failed
//! or interrupted step leaves nothing that a later step would take for finished.

mod compile;
mod evaluate;
mod export;
mod ingest;
mod register;
mod train_step;
mod transform;
mod validate;
mod version;

use std::fmt;
use std::time::Instant;

use anyhow::{Context, bail};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use sha2::{Digest, Sha256};

use crate::config::PipelineConfig;
use crate::store::{ErrorKind, Key, ObjectStore};

pub use compile::{CompileOutput, module_metadata};
pub use evaluate::EvaluateOutput;
pub use export::ExportOutput;
pub use ingest::IngestOutput;
pub use profile_step::ProfileOutput;
pub use register::{CompareOutput, RegisterOutput};
pub use train_step::{CandidateRun, TrainOutput};
pub use transform::{TransformOutput, split_indices};
pub use validate::ValidateOutput;
pub use validate::{ExpectationResult, ValidationReport};
pub use version::{DatasetRecord, dvc_file_text, load_dataset, versions, write_dvc_file};

/// The steps, in the order a run executes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum StepName {
    Ingest,
    Transform,
    Validate,
    Profile,
    Version,
    Train,
    Evaluate,
    Export,
    Compile,
    Register,
    Compare,
}

impl StepName {
    pub const ALL: [StepName; 11] = [
        StepName::Ingest,
        StepName::Transform,
        StepName::Validate,
        StepName::Profile,
        StepName::Version,
        StepName::Train,
        StepName::Evaluate,
        StepName::Export,
        StepName::Compile,
        StepName::Register,
        StepName::Compare,
    ];

    /// The data steps: all a config without `[train]` runs.
    pub const DATA: [StepName; 5] = [
        StepName::Ingest,
        StepName::Transform,
        StepName::Validate,
        StepName::Profile,
        StepName::Version,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StepName::Ingest => "ingest",
            StepName::Transform => "transform",
            StepName::Validate => "validate",
            StepName::Profile => "profile",
            StepName::Version => "version",
            StepName::Train => "train",
            StepName::Evaluate => "evaluate",
            StepName::Export => "export",
            StepName::Compile => "compile",
            StepName::Register => "register",
            StepName::Compare => "compare",
        }
    }
}

impl fmt::Display for StepName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

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
pub struct RunRecord {
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

/// Options a user gives on the command line.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Write a `.dvc` file for the raw data here (version step).
    pub dvc_file: Option<std::path::PathBuf>,
}

/// One pipeline run against one store.
#[derive(Debug)]
pub struct Pipeline<'a> {
    pub store: &'a dyn ObjectStore,
    pub config: PipelineConfig,
    pub run_id: String,
    pub options: RunOptions,
}

pub fn sha256_hex(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p.as_bytes());
    }
    hex::encode(h.finalize())
}

/// Lowercase hex SHA-256 of some bytes (artifact checksums).
pub fn sha256_bytes(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
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

/// The `dvc/files/md5/ab/cdef...` key of content with this MD5 (DVC 3 remote layout).
pub fn dvc_key(md5: &str) -> Key {
    Key::new(format!("dvc/files/md5/{}/{}", &md5[..2], &md5[2..])).expect("md5 hex is a valid key")
}

pub(crate) async fn get_json<T: DeserializeOwned>(store: &dyn ObjectStore, key: &Key) -> anyhow::Result<Option<T>> {
    match store.get(key).await {
        Ok(bytes) => Ok(Some(
            serde_json::from_slice(&bytes).with_context(|| format!("{key} in the store is not valid"))?,
        )),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {key}")),
    }
}

pub(crate) async fn put_json<T: Serialize>(store: &dyn ObjectStore, key: &Key, value: &T) -> anyhow::Result<()> {
    let body = serde_json::to_vec_pretty(value).expect("records serialise");
    store
        .put(key, Bytes::from(body))
        .await
        .with_context(|| format!("cannot write {key} to {}", store.describe()))
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

impl<'a> Pipeline<'a> {
    pub fn new(
        store: &'a dyn ObjectStore,
        config: PipelineConfig,
        run_id: String,
        options: RunOptions,
    ) -> anyhow::Result<Self> {
        Key::segment(&run_id).map_err(|e| anyhow::anyhow!("run id: {e}"))?;
        Ok(Pipeline {
            store,
            config,
            run_id,
            options,
        })
    }

    fn run_key(&self) -> Key {
        Key::new(format!("runs/{}/run.json", self.run_id)).expect("checked run id")
    }

    fn step_key(&self, step: StepName) -> Key {
        Key::new(format!("runs/{}/steps/{step}.json", self.run_id)).expect("checked run id")
    }

    /// Key of an artifact this run writes, e.g. `runs/{id}/artifacts/validate/report.json`.
    pub(crate) fn artifact_key(&self, step: StepName, name: &str) -> Key {
        Key::new(format!("runs/{}/artifacts/{step}/{name}", self.run_id)).expect("checked run id")
    }

    fn config_digest(&self) -> String {
        sha256_hex(&[&self.config.canonical_json()])
    }

    /// Loads the run record, creating it if `create` (the first step of a run).
    async fn open_run(&self, create: bool) -> anyhow::Result<RunRecord> {
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

    async fn update_run(&self, f: impl FnOnce(&mut RunRecord)) -> anyhow::Result<()> {
        let mut run = self.open_run(false).await?;
        f(&mut run);
        run.updated_at = Utc::now();
        put_json(self.store, &self.run_key(), &run).await
    }

    /// The outputs of an earlier step of this run; an error if it has not run.
    pub(crate) async fn outputs_of<T: DeserializeOwned>(&self, step: StepName) -> anyhow::Result<T> {
        match get_json::<StepRecord<T>>(self.store, &self.step_key(step)).await? {
            Some(record) => Ok(record.outputs),
            None => bail!(
                "step '{step}' has not run in run {}: run it first (`wasmline pipeline step {step} --run-id {}`)",
                self.run_id,
                self.run_id
            ),
        }
    }

    /// The steps this config runs: the data steps, then training when `[train]` is there.
    pub fn steps(&self) -> &'static [StepName] {
        if self.config.train.is_some() {
            &StepName::ALL
        } else {
            &StepName::DATA
        }
    }

    /// Marks the run cancelled (called between steps, so no step is half done).
    pub async fn mark_cancelled(&self) -> anyhow::Result<()> {
        self.update_run(|run| {
            run.status = Status::Cancelled;
            run.error = Some("cancelled".into());
        })
        .await
    }

    /// Runs every step in order; stops at the first failure.
    pub async fn run_all(&self, mut on_step: impl FnMut(&StepReport)) -> anyhow::Result<Vec<StepReport>> {
        let mut reports = Vec::new();
        for &step in self.steps() {
            let report = self.run_step(step).await?;
            on_step(&report);
            reports.push(report);
        }
        Ok(reports)
    }

    /// Runs one step (idempotent); records the failure in the run on error.
    pub async fn run_step(&self, step: StepName) -> anyhow::Result<StepReport> {
        self.open_run(step == StepName::Ingest).await?;
        let result = match step {
            StepName::Ingest => self.step(step, ingest::prepare(self), |p| ingest::run(self, p)).await,
            StepName::Transform => {
                self.step(step, transform::prepare(self), |p| transform::run(self, p))
                    .await
            }
            StepName::Validate => {
                self.step(step, validate::prepare(self), |p| validate::run(self, p))
                    .await
            }
            StepName::Profile => {
                self.step(step, profile_step::prepare(self), |p| profile_step::run(self, p))
                    .await
            }
            StepName::Version => self.step(step, version::prepare(self), |p| version::run(self, p)).await,
            StepName::Train => {
                self.step(step, train_step::prepare(self), |p| train_step::run(self, p))
                    .await
            }
            StepName::Evaluate => {
                self.step(step, evaluate::prepare(self), |p| evaluate::run(self, p))
                    .await
            }
            StepName::Export => self.step(step, export::prepare(self), |p| export::run(self, p)).await,
            StepName::Compile => self.step(step, compile::prepare(self), |p| compile::run(self, p)).await,
            StepName::Register => {
                self.step(step, register::prepare_register(self), |p| {
                    register::run_register(self, p)
                })
                .await
            }
            StepName::Compare => {
                self.step(step, register::prepare_compare(self), |p| {
                    register::run_compare(self, p)
                })
                .await
            }
        };
        if step == StepName::Version
            && result.is_ok()
            && let Some(path) = &self.options.dvc_file
        {
            let record: DatasetRecord = self.outputs_of(StepName::Version).await?;
            write_dvc_file(path, &record)?;
        }
        match &result {
            Ok(_) => {
                self.update_run(|run| {
                    if !run.steps.contains(&step) {
                        run.steps.push(step);
                    }
                    // Done when the last step of this pipeline is (steps may run one by one).
                    let last = *self.steps().last().expect("a pipeline has steps");
                    run.status = if step == last {
                        Status::Succeeded
                    } else {
                        Status::Running
                    };
                    run.error = None;
                })
                .await?
            }
            Err(e) => {
                let message = format!("{step}: {e:#}");
                // The original error matters more than a failure to record it.
                let _ = self
                    .update_run(|run| {
                        run.status = Status::Failed;
                        run.error = Some(message);
                    })
                    .await;
            }
        }
        result
    }

    /// The idempotency wrapper every step goes through.
    ///
    /// `prepare` computes the input digest (and whatever it had to fetch to do so, handed on to
    /// `work`); `work` runs only when no finished step has the same digest.
    async fn step<T, P, D, W, F>(&self, step: StepName, prepare: D, work: W) -> anyhow::Result<StepReport>
    where
        T: Serialize + DeserializeOwned + Summary,
        D: Future<Output = anyhow::Result<(String, P)>>,
        W: FnOnce(P) -> F,
        F: Future<Output = anyhow::Result<T>>,
    {
        let started = Instant::now();
        let started_at = Utc::now();
        let (digest, prepared) = prepare.await?;
        if let Some(done) = get_json::<StepRecord<T>>(self.store, &self.step_key(step)).await?
            && done.input_digest == digest
        {
            return Ok(StepReport {
                step,
                executed: false,
                summary: format!("inputs unchanged, {}", done.outputs.summary()),
                seconds: started.elapsed().as_secs_f64(),
            });
        }
        let cache_key = Key::new(format!("cache/steps/{step}/{digest}.json")).expect("hex digest");
        if let Some(earlier) = get_json::<StepRecord<T>>(self.store, &cache_key).await? {
            let summary = format!("same inputs as run {}, {}", earlier.run_id, earlier.outputs.summary());
            let record = StepRecord {
                step,
                run_id: self.run_id.clone(),
                input_digest: digest,
                started_at,
                duration_ms: started.elapsed().as_millis() as u64,
                reused_from: Some(earlier.reused_from.unwrap_or(earlier.run_id)),
                outputs: earlier.outputs,
            };
            put_json(self.store, &self.step_key(step), &record).await?;
            return Ok(StepReport {
                step,
                executed: false,
                summary,
                seconds: started.elapsed().as_secs_f64(),
            });
        }
        let outputs = work(prepared).await?;
        let record = StepRecord {
            step,
            run_id: self.run_id.clone(),
            input_digest: digest,
            started_at,
            duration_ms: started.elapsed().as_millis() as u64,
            reused_from: None,
            outputs,
        };
        put_json(self.store, &self.step_key(step), &record).await?;
        put_json(self.store, &cache_key, &record).await?;
        Ok(StepReport {
            step,
            executed: true,
            summary: record.outputs.summary(),
            seconds: started.elapsed().as_secs_f64(),
        })
    }
}

/// A one-line description of a step's outputs.
pub trait Summary {
    fn summary(&self) -> String;
}

mod profile_step;
