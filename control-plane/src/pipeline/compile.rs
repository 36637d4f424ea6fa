//! compile: the IR becomes a self-contained WebAssembly module (`model_wasm::codegen`, no
//! imports, a few KB), which runs in wasmtime through edge-runtime's host on the whole test split
//! and must agree with the IR evaluator: labels identical, numbers within 1e-5. (The IR was held
//! to linfa on the same rows by train and export.) The module carries the model's schema and
//! reference profile in its `wasmline.manifest` custom section.

use std::time::Instant;

use anyhow::Context;
use bytes::Bytes;
use edge_runtime::{ModelModule, ModuleLimits, Runtime, RuntimeConfig};
use model_wasm::{ModelIr, Prediction};
use serde::{Deserialize, Serialize};

use super::train_step::TrainOutput;
use super::{Pipeline, StepName, Summary};
use crate::dataset::DatasetRecord;
use crate::digest::{sha256_bytes, sha256_hex};
use crate::onnx::ParityReport;
use crate::store::Key;

/// What compile produced.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct CompileOutput {
    pub wasm_key: String,
    pub wasm_sha256: String,
    pub wasm_size: u64,
    /// Test rows run through wasmtime.
    pub rows: usize,
    /// Largest scaled difference between wasmtime and the IR evaluator.
    pub max_difference: f64,
    /// wasmtime's compile time of the module, in milliseconds.
    pub wasmtime_compile_ms: f64,
}

impl Summary for CompileOutput {
    fn summary(&self) -> String {
        format!(
            "model.wasm {} bytes; wasmtime = IR on {} test rows (max difference {:.1e}; compiled in {:.0} ms)",
            self.wasm_size, self.rows, self.max_difference, self.wasmtime_compile_ms
        )
    }
}

/// The metadata a module carries about itself (its `wasmline.manifest` custom section).
pub(super) async fn module_metadata(
    store: &dyn crate::store::ObjectStore,
    name: &str,
    ir: &ModelIr,
    dataset: &DatasetRecord,
) -> anyhow::Result<Vec<u8>> {
    let reference: serde_json::Value = super::get_json(store, &Key::new(dataset.profile.reference.clone())?)
        .await?
        .context("the reference profile is missing from the store: rerun profile")?;
    Ok(serde_json::to_vec(&serde_json::json!({
        "model": name,
        "dataset": { "name": dataset.name, "version": dataset.version },
        "features": ir.features,
        "output": ir.output,
        "reference_profile": reference,
    }))?)
}

pub(super) async fn prepare(p: &Pipeline<'_>) -> anyhow::Result<(String, (TrainOutput, DatasetRecord))> {
    let train: TrainOutput = p.outputs_of(StepName::Train).await?;
    let dataset: DatasetRecord = p.outputs_of(StepName::Version).await?;
    let digest = sha256_hex(&[
        "compile",
        &train.ir_sha256,
        &dataset.content_digest,
        &train.model_name,
        &model_wasm::codegen::ABI_VERSION.to_string(),
    ]);
    Ok((digest, (train, dataset)))
}

pub(super) async fn run(
    p: &Pipeline<'_>,
    (train, dataset): (TrainOutput, DatasetRecord),
) -> anyhow::Result<CompileOutput> {
    let ir = train.load_ir(p.store).await?;
    let (_, test) = dataset.train_data(p.store).await?;
    let rows = test.row_vecs();
    let metadata = module_metadata(p.store, &train.model_name, &ir, &dataset).await?;
    let (wasm, report, compile_time) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let progress = super::model_stages("compile", &ir, 3);
        let wasm = model_wasm::codegen::compile(&ir, &metadata)?;
        progress.inc(1);
        progress.milestone(&format!(
            "model.wasm {} bytes generated; compiling it in wasmtime",
            wasm.len()
        ));
        let runtime = Runtime::new(RuntimeConfig::default())?;
        let started = Instant::now();
        let module = ModelModule::load(&runtime, &wasm, ModuleLimits::default())
            .context("wasmtime refused the generated module")?;
        let compile_time = started.elapsed();
        progress.inc(1);
        progress.milestone(&format!(
            "compiled in {:.0} ms; predicting {} test rows in wasmtime",
            compile_time.as_secs_f64() * 1000.0,
            rows.len()
        ));
        let got = module
            .predict(&rows)
            .context("the generated module failed in wasmtime")?;
        progress.inc(1);
        progress.finish();
        let expected: Vec<Prediction> = rows.iter().map(|r| ir.predict(r)).collect::<Result<_, _>>()?;
        Ok((wasm, ParityReport::compare(&expected, &got), compile_time))
    })
    .await??;
    if !report.is_ok() {
        anyhow::bail!("the WebAssembly module disagrees with the model IR in wasmtime: {report}");
    }
    let key = p.artifact_key(StepName::Compile, "model.wasm");
    p.store.put(&key, Bytes::from(wasm.clone())).await?;
    Ok(CompileOutput {
        wasm_key: key.to_string(),
        wasm_sha256: sha256_bytes(&wasm),
        wasm_size: wasm.len() as u64,
        rows: report.rows,
        max_difference: report.max_rel_diff,
        wasmtime_compile_ms: compile_time.as_secs_f64() * 1000.0,
    })
}
