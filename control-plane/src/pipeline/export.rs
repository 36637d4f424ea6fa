//! export: the trained IR becomes an ONNX file, which is run in tract on the whole test split
//! and must agree with the IR evaluator (labels identical, numbers within 1e-5); the IR itself was
//! held to linfa's predictions on the same rows by the train step, and is checked again here.

use anyhow::Context;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::train_step::TrainOutput;
use super::{Pipeline, StepName, Summary};
use crate::dataset::DatasetRecord;
use crate::digest::{sha256_bytes, sha256_hex};
use crate::store::Key;
use crate::store::get_json;
use crate::train::{LinfaPredictions, check_parity};

/// What export produced.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct ExportOutput {
    pub onnx_key: String,
    pub onnx_sha256: String,
    pub onnx_size: u64,
    /// Rows of the test split run through tract.
    pub rows: usize,
    /// Largest scaled difference between tract and the IR evaluator.
    pub tract_max_difference: f64,
    /// Largest difference between the IR evaluator and linfa.
    pub linfa_max_difference: f64,
}

impl Summary for ExportOutput {
    fn summary(&self) -> String {
        format!(
            "model.onnx {} bytes; tract = IR = linfa on {} test rows (max difference {:.1e} / {:.1e})",
            self.onnx_size, self.rows, self.tract_max_difference, self.linfa_max_difference
        )
    }
}

pub(super) async fn prepare(p: &Pipeline<'_>) -> anyhow::Result<(String, (TrainOutput, DatasetRecord))> {
    let train: TrainOutput = p.outputs_of(StepName::Train).await?;
    let dataset: DatasetRecord = p.outputs_of(StepName::Version).await?;
    let digest = sha256_hex(&["export", &train.ir_sha256, &dataset.content_digest, &train.model_name]);
    Ok((digest, (train, dataset)))
}

pub(super) async fn run(
    p: &Pipeline<'_>,
    (train, dataset): (TrainOutput, DatasetRecord),
) -> anyhow::Result<ExportOutput> {
    let ir = train.load_ir(p.store).await?;
    let (_, test) = dataset.train_data(p.store).await?;
    let rows = test.row_vecs();
    let linfa: LinfaPredictions = get_json(p.store, &Key::new(train.linfa_key.clone())?)
        .await?
        .context("linfa's test predictions are missing from the store: rerun train")?;
    let linfa_parity = check_parity(&ir, &linfa, &rows).context("the IR no longer matches linfa")?;
    let name = train.model_name.clone();
    let (onnx, report) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let progress = super::model_stages("export", &ir, 2);
        let onnx = crate::onnx::to_onnx(&ir, &name)?;
        progress.inc(1);
        progress.milestone(&format!(
            "model.onnx {} bytes written; running it in tract on {} test rows",
            onnx.len(),
            rows.len()
        ));
        let report = crate::onnx::check_with_tract(&onnx, &ir, &rows)?;
        progress.inc(1);
        progress.finish();
        Ok((onnx, report))
    })
    .await??;
    if !report.is_ok() {
        anyhow::bail!("the ONNX file disagrees with the model IR in tract: {report}");
    }
    let key = p.artifact_key(StepName::Export, "model.onnx");
    p.store.put(&key, Bytes::from(onnx.clone())).await?;
    Ok(ExportOutput {
        onnx_key: key.to_string(),
        onnx_sha256: sha256_bytes(&onnx),
        onnx_size: onnx.len() as u64,
        rows: report.rows,
        tract_max_difference: report.max_rel_diff,
        linfa_max_difference: linfa_parity.max_relative_difference,
    })
}
