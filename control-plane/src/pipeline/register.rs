//! register: the model's artifacts and signed manifest go to the registry
//! (`models/{name}/{version}/`), and to MLflow when `MLFLOW_TRACKING_URI` is set.

use anyhow::Context;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::compile::CompileOutput;
use super::evaluate::EvaluateOutput;
use super::export::ExportOutput;
use super::record::git_commit;
use super::train_step::TrainOutput;
use super::{Pipeline, StepName, Summary};
use crate::dataset::DatasetRecord;
use crate::digest::sha256_hex;
use crate::mlflow::{TrackedRun, Tracker};
use crate::registry::{self, ManifestDraft};
use crate::store::Key;

/// What register produced.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct RegisterOutput {
    pub name: String,
    pub version: u64,
    pub manifest_key: String,
    /// The MLflow run and model version, when tracking was on and reachable.
    #[serde(default)]
    pub mlflow_run_id: Option<String>,
    #[serde(default)]
    pub mlflow_version: Option<String>,
}

impl Summary for RegisterOutput {
    fn summary(&self) -> String {
        let mlflow = match (&self.mlflow_run_id, &self.mlflow_version) {
            (Some(run), Some(v)) => format!("; MLflow run {run}, model version {v}"),
            (Some(run), None) => format!("; MLflow run {run}"),
            _ => String::new(),
        };
        format!(
            "model {} version {} ({}){mlflow}",
            self.name, self.version, self.manifest_key
        )
    }
}

pub(super) struct RegisterInputs {
    train: TrainOutput,
    evaluate: EvaluateOutput,
    export: ExportOutput,
    compile: CompileOutput,
    dataset: DatasetRecord,
}

pub(super) async fn prepare(p: &Pipeline<'_>) -> anyhow::Result<(String, RegisterInputs)> {
    let inputs = RegisterInputs {
        train: p.outputs_of(StepName::Train).await?,
        evaluate: p.outputs_of(StepName::Evaluate).await?,
        export: p.outputs_of(StepName::Export).await?,
        compile: p.outputs_of(StepName::Compile).await?,
        dataset: p.outputs_of(StepName::Version).await?,
    };
    let digest = sha256_hex(&[
        "register",
        &inputs.train.model_name,
        &inputs.train.ir_sha256,
        &inputs.export.onnx_sha256,
        &inputs.compile.wasm_sha256,
        &serde_json::to_string(&inputs.evaluate.metrics)?,
    ]);
    Ok((digest, inputs))
}

pub(super) async fn run(p: &Pipeline<'_>, inputs: RegisterInputs) -> anyhow::Result<RegisterOutput> {
    let RegisterInputs {
        train,
        evaluate,
        export,
        compile,
        dataset,
    } = inputs;
    let (train_data, test_data) = dataset.train_data(p.store).await?;
    let mut draft = ManifestDraft::from_dataset(p.store, &train.model_name, &dataset, &train_data, &test_data).await?;
    draft.family = train.best.family.name().to_owned();
    draft.params = train.best.params.clone();
    draft.metrics = evaluate.metrics.scalars();
    draft.selection_metric = train.metric;
    draft.run_id = p.run_id.clone();
    // Edges and browsers take a missing value only where the model routes one.
    let ir = train.load_ir(p.store).await?;
    for (feature, accepts) in draft.features.iter_mut().zip(ir.accepts_missing()) {
        feature.missing = accepts;
    }
    let mut artifacts = Vec::new();
    for (name, key) in [
        ("model.ir.json", &train.ir_key),
        ("model.onnx", &export.onnx_key),
        ("model.wasm", &compile.wasm_key),
        ("metrics.json", &evaluate.metrics_json),
        ("report.html", &evaluate.report_html),
    ] {
        let bytes = p
            .store
            .get(&Key::new(key.clone())?)
            .await
            .with_context(|| format!("cannot read {key}"))?;
        artifacts.push((name.to_owned(), bytes));
    }
    let manifest = registry::register(p.store, draft, artifacts.clone()).await?;
    let manifest_key = format!("models/{}/{}/manifest.json", manifest.name, manifest.version);

    // MLflow mirrors the run and the version; it never fails the pipeline.
    let tracker = Tracker::from_env();
    let (mut mlflow_run_id, mut mlflow_version) = (None, None);
    if tracker.is_enabled() {
        let mut run_artifacts: Vec<(String, Bytes)> = artifacts
            .into_iter()
            .filter(|(name, _)| name != "model.ir.json")
            .collect();
        run_artifacts.push((
            "manifest.json".into(),
            Bytes::from(serde_json::to_vec_pretty(&manifest)?),
        ));
        let run = TrackedRun {
            name: format!("{}-v{}", manifest.name, manifest.version),
            run_id: p.run_id.clone(),
            dataset: Some(dataset.name.clone()),
            dataset_version: Some(dataset.version.to_string()),
            git_commit: git_commit(),
            tags: vec![
                ("wasmline.model".into(), manifest.name.clone()),
                ("wasmline.model_version".into(), manifest.version.to_string()),
                ("wasmline.family".into(), manifest.family.clone()),
            ],
            params: train
                .best
                .params
                .iter()
                .map(|(k, v)| (k.clone(), v.to_string()))
                .chain([("family".to_owned(), manifest.family.clone())])
                .collect(),
            metrics: evaluate
                .metrics
                .scalars()
                .into_iter()
                .chain([(format!("cv_{}", train.metric), train.best_cv.mean)])
                .collect(),
            artifacts: run_artifacts,
        };
        match tracker.track_run_async(run).await {
            Ok(id) => mlflow_run_id = id,
            Err(e) => eprintln!("warning: MLflow tracking skipped: {e}"),
        }
        if let Some(run_id) = &mlflow_run_id {
            let source = format!("runs:/{run_id}/model.onnx");
            match tracker
                .register_model_async(manifest.name.clone(), source, Some(run_id.clone()), None)
                .await
            {
                Ok(v) => mlflow_version = v,
                Err(e) => eprintln!("warning: MLflow model registration skipped: {e}"),
            }
        }
    }
    Ok(RegisterOutput {
        name: manifest.name.clone(),
        version: manifest.version,
        manifest_key,
        mlflow_run_id,
        mlflow_version,
    })
}
