//! train: every candidate of every grid is cross-validated on the training split (each one a run
//! of its own, `runs/{run_id}.c{NN}/run.json`); the best is refitted on the whole training split,
//! turned into the model IR, and checked against linfa on the test split.

use std::time::Instant;

use anyhow::Context;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::record::git_commit;
use super::{Pipeline, StepName, Summary};
use crate::config::Metric;
use crate::config::TrainConfig;
use crate::dataset::DatasetRecord;
use crate::digest::sha256_bytes;
use crate::digest::sha256_hex;
use crate::progress::Progress;
use crate::store::put_json;
use crate::store::{Key, ObjectStore, get_json};
use crate::train::{self, Candidate, CvResult, Parity};
use model_wasm::ModelIr;

/// `runs/{id}/run.json` of one candidate.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct CandidateRun {
    pub run_id: String,
    pub kind: String,
    pub parent_run_id: String,
    pub status: super::Status,
    pub created_at: DateTime<Utc>,
    pub candidate: Candidate,
    pub dataset: String,
    pub dataset_version: u64,
    pub cv: CvResult,
    #[serde(default)]
    pub git_commit: Option<String>,
}

/// A candidate in the train step's summary.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct CandidateSummary {
    pub run_id: String,
    pub label: String,
    pub cv_mean: f64,
    pub cv_std: f64,
    pub seconds: f64,
}

/// What train produced.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct TrainOutput {
    pub dataset: String,
    pub dataset_version: u64,
    pub model_name: String,
    pub metric: Metric,
    pub candidates: Vec<CandidateSummary>,
    /// The winner's run and configuration.
    pub best_run_id: String,
    pub best: Candidate,
    pub best_cv: CvResult,
    /// The IR of the winner refitted on the whole training split.
    pub ir_key: String,
    pub ir_sha256: String,
    /// linfa's predictions on the test split (for the export step's check).
    pub linfa_key: String,
    /// The IR against linfa on the test split.
    pub parity: Parity,
    pub fit_seconds: f64,
}

impl Summary for TrainOutput {
    fn summary(&self) -> String {
        format!(
            "{} candidates, best {} with cv {} {:.4} ± {:.4}",
            self.candidates.len(),
            self.best.label(),
            self.metric,
            self.best_cv.mean,
            self.best_cv.std
        )
    }
}

pub(super) fn train_config<'a>(p: &'a Pipeline<'_>) -> anyhow::Result<&'a TrainConfig> {
    p.config
        .train
        .as_ref()
        .context("the config has no [train] section: add one to train models")
}

pub(super) async fn prepare(p: &Pipeline<'_>) -> anyhow::Result<(String, DatasetRecord)> {
    let dataset: DatasetRecord = p.outputs_of(StepName::Version).await?;
    let train = serde_json::to_string(train_config(p)?)?;
    let digest = sha256_hex(&["train", &dataset.content_digest, &dataset.name, &train]);
    Ok((digest, dataset))
}

pub(super) async fn run(p: &Pipeline<'_>, dataset: DatasetRecord) -> anyhow::Result<TrainOutput> {
    let config = train_config(p)?.clone();
    let metric = config.metric(dataset.task);
    let model_name = config.model_name.clone().unwrap_or_else(|| dataset.name.clone());
    let (train_data, test_data) = dataset.train_data(p.store).await?;
    train_data.check_split()?;
    let mut candidates: Vec<Candidate> = Vec::new();
    for spec in &config.models {
        candidates.extend(train::candidates(spec).map_err(|e| anyhow::anyhow!("{}: {e}", spec.family.name()))?);
    }
    let git_commit = git_commit();
    let mut summaries = Vec::with_capacity(candidates.len());
    let mut best: Option<(usize, CvResult)> = None;
    let progress = std::sync::Arc::new(Progress::count("train"));
    progress.set_length(Some((candidates.len() * config.folds) as u64));
    let started = Instant::now();
    for (i, candidate) in candidates.iter().enumerate() {
        let (c, data, folds, seed) = (candidate.clone(), train_data.clone(), config.folds, config.seed);
        let shown = progress.clone();
        let cv = tokio::task::spawn_blocking(move || train::cross_validate(&c, &data, folds, seed, metric, &shown))
            .await?
            .with_context(|| format!("cross-validating {}", candidate.label()))?;
        let run_id = format!("{}.c{:02}", p.run_id, i + 1);
        let record = CandidateRun {
            run_id: run_id.clone(),
            kind: "candidate".into(),
            parent_run_id: p.run_id.clone(),
            status: super::Status::Succeeded,
            created_at: Utc::now(),
            candidate: candidate.clone(),
            dataset: dataset.name.clone(),
            dataset_version: dataset.version,
            cv: cv.clone(),
            git_commit: git_commit.clone(),
        };
        put_json(p.store, &Key::new(format!("runs/{run_id}/run.json"))?, &record).await?;
        tracing::info!(candidate = %candidate.label(), cv_mean = cv.mean, cv_std = cv.std, "cross-validated");
        summaries.push(CandidateSummary {
            run_id,
            label: candidate.label(),
            cv_mean: cv.mean,
            cv_std: cv.std,
            seconds: cv.seconds,
        });
        // NaN never wins; ties keep the earlier candidate.
        if !cv.mean.is_nan() && best.as_ref().is_none_or(|(_, b)| metric.better(cv.mean, b.mean)) {
            best = Some((i, cv));
        }
        if let Some((b, cv)) = &best {
            progress.milestone(&format!(
                "{}/{} candidates ({} folds each), {:.1} s, best {} {metric} {:.4}",
                i + 1,
                candidates.len(),
                config.folds,
                started.elapsed().as_secs_f64(),
                candidates[*b].label(),
                cv.mean
            ));
        }
    }
    progress.finish();
    let (best_index, best_cv) = best.context("no candidate produced a usable cross-validation score")?;
    let best_candidate = candidates[best_index].clone();
    let started = Instant::now();
    let (c, data, seed) = (best_candidate.clone(), train_data.clone(), config.seed);
    let fitted = tokio::task::spawn_blocking(move || train::fit(&c, &data, seed)).await??;
    let fit_seconds = started.elapsed().as_secs_f64();
    if !best_candidate.family.takes_missing() {
        test_data
            .check_complete()
            .with_context(|| format!("{} cannot predict the test split", best_candidate.label()))?;
    }
    let linfa = fitted.linfa_predict(&test_data.x);
    let parity = train::check_parity(&fitted.ir, &linfa, &test_data.row_vecs())
        .context("the model IR does not reproduce linfa's predictions on the test split")?;

    let ir_json = serde_json::to_vec_pretty(&fitted.ir)?;
    let ir_key = p.artifact_key(StepName::Train, "model.ir.json");
    let linfa_key = p.artifact_key(StepName::Train, "linfa-test-predictions.json");
    p.store.put(&ir_key, Bytes::from(ir_json.clone())).await?;
    p.store
        .put(&linfa_key, Bytes::from(serde_json::to_vec(&linfa)?))
        .await?;
    Ok(TrainOutput {
        dataset: dataset.name.clone(),
        dataset_version: dataset.version,
        model_name,
        metric,
        candidates: summaries,
        best_run_id: format!("{}.c{:02}", p.run_id, best_index + 1),
        best: best_candidate,
        best_cv,
        ir_key: ir_key.to_string(),
        ir_sha256: sha256_bytes(&ir_json),
        linfa_key: linfa_key.to_string(),
        parity,
        fit_seconds,
    })
}

impl TrainOutput {
    /// Reads the IR this step stored, checked (evaluate, export and compile all start from it).
    pub(super) async fn load_ir(&self, store: &dyn ObjectStore) -> anyhow::Result<ModelIr> {
        let ir: ModelIr = get_json(store, &Key::new(self.ir_key.clone())?)
            .await?
            .context("the trained model IR is missing from the store: rerun train")?;
        ir.validate()?;
        Ok(ir)
    }
}
