//! The pipeline: ordered, idempotent steps over content-addressed objects.
//!
//! A *run* (`runs/{run_id}/run.json`) executes the steps in order. Each step computes a digest of
//! its inputs (the content hashes of the objects it reads and the part of the config it obeys)
//! before doing any work. When a step with the same digest has already succeeded — in this run or
//! in any earlier one (`cache/steps/{step}/{digest}.json`) — it is a no-op that says so. A step
//! stores its objects first (content-addressed or under the run) and its record last, so a failed
//! or interrupted step leaves nothing that a later step would take for finished.

mod compare;
mod compile;
mod evaluate;
mod export;
mod import;
mod ingest;
mod lease;
mod profile_step;
mod record;
mod register;
mod train_step;
mod transform;
mod validate;
mod version;

use std::fmt;
use std::time::Instant;

use anyhow::bail;
use chrono::Utc;
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::config::PipelineConfig;
use crate::dataset::{DatasetRecord, write_dvc_file};
use crate::digest::sha256_hex;
use crate::store::{Key, ObjectStore};
use crate::store::{get_json, put_json};

pub(crate) use import::{ImportRequest, import};
pub(crate) use lease::{Found as LeaseFound, Lease, LeaseHolder, Leased, entry_key as lease_entry_key, new_owner_id};
pub(crate) use lease::{enter as enter_lease, leave as leave_lease, scan as scan_leases, update_json};
pub(crate) use record::{ExpectationsFailed, error_kind, scan_run_leases};
pub use record::{LeaseLost, Status, StepRecord, StepReport, Summary, new_run_id, public_view};

/// A model with this many tree nodes or more is large: its export and compile stages take long
/// enough (seconds at hundreds of thousands of nodes) to be logged off a terminal too.
const LARGE_MODEL_NODES: usize = 10_000;

/// Progress over `stages` of `step` on `ir`: a bar on a terminal; log lines off one for a large model.
fn model_stages(step: &str, ir: &model_wasm::ModelIr, stages: u64) -> crate::progress::Progress {
    let nodes: usize = ir.trees().iter().map(|t| t.nodes.len()).sum();
    let progress = crate::progress::Progress::stages(step, stages, nodes >= LARGE_MODEL_NODES);
    progress.milestone(&format!("{} trees, {nodes} nodes", ir.trees().len()));
    progress
}

/// The steps, in the order a run executes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
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

/// Options a user gives on the command line, and those a server adds.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Write a `.dvc` file for the raw data here (version step).
    pub dvc_file: Option<std::path::PathBuf>,
    /// The lease the run is held under (server runs): see [`Pipeline::begin`].
    pub(crate) lease: Option<LeaseHolder>,
    /// Where the run may read data from (runs a server starts): the ingest step checks its
    /// source again just before reading it, and follows only redirects that stay inside.
    pub(crate) sources: Option<std::sync::Arc<crate::data::AllowedSources>>,
}

/// One pipeline run against one store.
#[derive(Debug)]
pub struct Pipeline<'a> {
    pub store: &'a dyn ObjectStore,
    pub config: PipelineConfig,
    pub run_id: String,
    pub options: RunOptions,
}

impl<'a> Pipeline<'a> {
    pub fn new(
        store: &'a dyn ObjectStore,
        config: PipelineConfig,
        run_id: String,
        options: RunOptions,
    ) -> anyhow::Result<Self> {
        Key::segment(&run_id).map_err(|e| anyhow::anyhow!("run id: {e}"))?;
        Self::check(&config).map_err(anyhow::Error::msg)?;
        Ok(Pipeline {
            store,
            config,
            run_id,
            options,
        })
    }

    /// What the config's own check leaves to the steps' modules: the training grids, which the
    /// trainer checks (it knows each family's hyperparameters).
    pub fn check(config: &PipelineConfig) -> Result<(), String> {
        match &config.train {
            Some(train) => crate::train::check_grids(train, config.task.kind),
            None => Ok(()),
        }
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
                self.step(step, register::prepare(self), |p| register::run(self, p))
                    .await
            }
            StepName::Compare => self.step(step, compare::prepare(self), |p| compare::run(self, p)).await,
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
                    run.error_kind = None;
                    run.failed_step = None;
                })
                .await?
            }
            Err(e) if e.downcast_ref::<LeaseLost>().is_some() => {} // not ours to write any more
            Err(e) => {
                let message = format!("{step}: {e:#}");
                let kind = error_kind(e);
                // The original error matters more than a failure to record it.
                let _ = self
                    .update_run(|run| {
                        run.status = Status::Failed;
                        run.error = Some(message);
                        run.error_kind = Some(kind.to_owned());
                        run.failed_step = Some(step);
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
