//! `wasmline models import`: a model made elsewhere (XGBoost, LightGBM, ONNX) becomes a normal
//! signed version of the registry, beside the versions the pipeline's steps register.
//!
//! What it does, in order, before anything is written to the store:
//! 1. reads the file into the model IR ([`crate::import`]);
//! 2. with `--reference-data`, reads those rows ([`reference`]): they give the drift reference
//!    profile (as the profile step builds it from a training split), the sample rows the edge's
//!    load gate predicts, the feature ranges and, with `--target`, the held-out metrics (as the
//!    evaluate step computes them). Without them the version has an empty reference profile
//!    (drift is not monitored), no metrics, and its lineage says so;
//! 3. compiles `model.wasm` and runs it in wasmtime against the IR evaluator on the reference
//!    rows and on rows made to reach every leaf ([`leaves`]): labels identical, numbers within
//!    the parity tolerance, as the compile step does;
//! 4. writes `model.onnx` and checks it in tract, as the export step does, when the IR can be
//!    written as ONNX faithfully ([`crate::onnx::unfaithful`]); otherwise the lineage says why
//!    there is none;
//! 5. registers the IR, the module, the ONNX file, the metrics and the source file as it was
//!    given (`source.json`, `source.txt`, `source.onnx`), with a lineage naming the file, its
//!    sha256, its format and the library that wrote it.
//!
//! Architecture invariant: a failure at any step registers nothing (the registry claims a
//! version number only once every check passed).

mod leaves;
mod reference;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use bytes::Bytes;
use edge_runtime::{ModelModule, ModuleLimits, Runtime, RuntimeConfig};
use model_wasm::{Body, ModelIr, Output, Prediction, ReferenceProfile};

use crate::config::{Metric, TaskKind};
use crate::digest::sha256_bytes;
use crate::import::{ImportOptions, ImportedModel, ModelFormat, import_model};
use crate::onnx::{OnnxError, ParityReport};
use crate::registry::{
    self, DatasetRef, FeatureSchema, FeatureType, IR_ARTIFACT, Lineage, Manifest, ManifestDraft, OutputSchema,
    ReferenceData, SAMPLE_ROWS, SourceModel,
};
use crate::store::ObjectStore;
use crate::train::metrics;

pub(crate) use leaves::{LeafRows, leaf_rows};

/// What the user asked for.
#[derive(Debug, Clone)]
pub(crate) struct ImportRequest {
    pub file: PathBuf,
    /// The registry model to add a version to.
    pub name: String,
    /// Detected from the file when `None`.
    pub format: Option<ModelFormat>,
    pub options: ImportOptions,
    pub reference_data: Option<PathBuf>,
    /// The target column of the reference data (metrics need it).
    pub target: Option<String>,
    /// Quantile bins of the drift reference of numeric features.
    pub reference_bins: usize,
}

/// What was registered, and how it was checked.
#[derive(Debug, Clone)]
pub(crate) struct ImportReport {
    pub manifest: Manifest,
    /// A line describing the model (`boosted trees (100 trees, ...)`).
    pub model: String,
    /// Reference rows the module was checked on.
    pub reference_rows: usize,
    /// The generated rows, and the leaves they reach.
    pub generated: LeafRows,
    /// Largest scaled difference between wasmtime and the IR evaluator.
    pub max_difference: f64,
    pub wasm_size: usize,
    pub wasmtime_compile_ms: f64,
    /// The ONNX file's check in tract (its largest difference to the IR, on how many rows), or
    /// why there is no ONNX file.
    pub onnx: Result<TractCheck, String>,
}

impl fmt::Display for ImportReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = &self.manifest;
        let lineage = m.lineage.as_ref().expect("imports have a lineage");
        writeln!(f, "{}", lineage.summary)?;
        writeln!(f, "model: {}", self.model)?;
        writeln!(
            f,
            "features ({}): {}",
            m.features.len(),
            m.features
                .iter()
                .map(|x| if x.missing {
                    format!("{} (missing allowed)", x.name)
                } else {
                    x.name.clone()
                })
                .collect::<Vec<_>>()
                .join(", ")
        )?;
        let generated = if self.generated.leaves > 0 {
            format!(
                "{} generated rows reaching {} of {} leaves",
                self.generated.rows.len(),
                self.generated.reached,
                self.generated.leaves
            )
        } else {
            format!("{} generated rows", self.generated.rows.len())
        };
        writeln!(
            f,
            "model.wasm {} bytes: wasmtime = IR on {} reference rows and {generated} (max difference {:.1e}; compiled in {:.0} ms)",
            self.wasm_size, self.reference_rows, self.max_difference, self.wasmtime_compile_ms
        )?;
        match &self.onnx {
            Ok(c) => writeln!(
                f,
                "model.onnx: tract = IR on {} of the {} rows (max difference {:.1e})",
                c.rows, c.of, c.max_difference
            )?,
            Err(why) => writeln!(f, "no model.onnx: {why}")?,
        }
        match (&lineage.reference_data, &lineage.no_drift_reference) {
            (Some(data), _) => writeln!(
                f,
                "drift reference and sample rows from {} ({} rows)",
                data.file, data.rows
            )?,
            (None, Some(why)) => writeln!(f, "no drift reference: {why}")?,
            (None, None) => {}
        }
        if m.metrics.is_empty() {
            writeln!(f, "metrics: none (give --reference-data with --target)")?;
        } else {
            let scalars: Vec<String> = m.metrics.iter().map(|(k, v)| format!("{k} {v:.4}")).collect();
            writeln!(f, "metrics on the reference data: {}", scalars.join(", "))?;
        }
        for note in &lineage.notes {
            writeln!(f, "note: {note}")?;
        }
        write!(
            f,
            "registered {} ({} artifacts: {})",
            m.id(),
            m.artifacts.len(),
            m.artifacts.keys().cloned().collect::<Vec<_>>().join(", ")
        )
    }
}

/// Why a version without reference data has no drift reference.
const NO_REFERENCE: &str = "no --reference-data was given: the reference profile is empty, so drift is not \
                            monitored, and there are no held-out metrics";

/// Imports `request.file` and registers it as a new version of `request.name`.
pub(crate) async fn import(store: &dyn ObjectStore, request: ImportRequest) -> anyhow::Result<ImportReport> {
    registry::check_name("model", &request.name)?;
    if request.target.is_some() && request.reference_data.is_none() {
        bail!("--target names a column of --reference-data, which is not given");
    }
    let file = request.file.display().to_string();
    let bytes = std::fs::read(&request.file).with_context(|| format!("cannot read {file}"))?;
    let work = request.clone();
    let source = bytes.clone();
    let checked = tokio::task::spawn_blocking(move || check(&work, &source)).await??;

    let Checked {
        imported,
        reference,
        generated,
        wasm,
        onnx,
        parity,
        compile_ms,
        model,
    } = checked;
    let ir = &imported.ir;
    let accepts = ir.accepts_missing();
    let classification = matches!(ir.output, Output::Classification { .. });

    let (reference_profile, metrics, reference_data, sample_rows, range_rows) = match &reference {
        Some(r) => {
            let data_file = request
                .reference_data
                .as_deref()
                .expect("reference rows come from a file");
            let profile = crate::profile::reference_profile(&r.table, &ir.features, request.reference_bins)
                .with_context(|| format!("{}: cannot build the drift reference", data_file.display()))?;
            let metrics = match &r.targets {
                Some(targets) => Some(metrics::score(ir, &r.rows, targets)?),
                None => None,
            };
            let data = ReferenceData {
                file: data_file.display().to_string(),
                sha256: sha256_bytes(
                    &std::fs::read(data_file).with_context(|| format!("cannot read {}", data_file.display()))?,
                ),
                rows: r.rows.len() as u64,
                target: request.target.clone(),
            };
            let finite: Vec<Vec<f64>> = r
                .rows
                .iter()
                .filter(|row| row.iter().all(|v| v.is_finite()))
                .take(SAMPLE_ROWS)
                .cloned()
                .collect();
            let samples = if finite.is_empty() {
                generated.rows.iter().take(SAMPLE_ROWS).cloned().collect()
            } else {
                finite
            };
            (profile, metrics, Some(data), samples, r.rows.clone())
        }
        None => (
            ReferenceProfile {
                rows: 0,
                features: vec![],
            },
            None,
            None,
            generated.rows.iter().take(SAMPLE_ROWS).cloned().collect(),
            generated.rows.clone(),
        ),
    };

    let features = ir
        .features
        .iter()
        .enumerate()
        .map(|(j, name)| {
            let finite = || range_rows.iter().map(|r| r[j]).filter(|v| v.is_finite());
            let min = finite().fold(f64::INFINITY, f64::min);
            let max = finite().fold(f64::NEG_INFINITY, f64::max);
            let (min, max) = if min <= max { (min, max) } else { (0.0, 0.0) };
            FeatureSchema {
                name: name.clone(),
                ty: FeatureType::Float,
                min,
                max,
                categories: None,
                missing: accepts[j],
            }
        })
        .collect();

    let sha256 = sha256_bytes(&bytes);
    let artifact = format!(
        "source.{}",
        match imported.format {
            ModelFormat::Xgboost => "json",
            ModelFormat::Lightgbm => "txt",
            ModelFormat::Onnx => "onnx",
        }
    );
    let library = if imported.library.is_empty() {
        "library not stated".to_owned()
    } else {
        imported.library.clone()
    };
    let lineage = Lineage {
        summary: format!("imported from {file} (sha256 {sha256}, {}, {library})", imported.format),
        source: SourceModel {
            file: file.clone(),
            sha256,
            size: bytes.len() as u64,
            format: imported.format.to_string(),
            library: imported.library.clone(),
            artifact: artifact.clone(),
        },
        no_onnx: onnx.as_ref().err().cloned(),
        no_drift_reference: reference_data.is_none().then(|| NO_REFERENCE.to_owned()),
        reference_data,
        notes: imported.notes.clone(),
    };
    let target = match (&request.target, &ir.output) {
        (Some(t), _) => t.clone(),
        (None, Output::Regression { target }) => target.clone(),
        (None, Output::Classification { .. }) => "class".to_owned(),
    };
    let run_id = format!("import-{}", super::new_run_id());
    let draft = ManifestDraft {
        name: request.name.clone(),
        task: if classification {
            TaskKind::Classification
        } else {
            TaskKind::Regression
        },
        features,
        output: OutputSchema {
            target,
            classes: classification.then(|| ir.classes().to_vec()),
        },
        family: format!("{}_{}", imported.format, body_kind(ir)),
        params: BTreeMap::from([
            ("format".to_owned(), serde_json::json!(imported.format.to_string())),
            ("library".to_owned(), serde_json::json!(imported.library)),
        ]),
        metrics: metrics.as_ref().map(|m| m.scalars()).unwrap_or_default(),
        selection_metric: if classification { Metric::F1 } else { Metric::Rmse },
        dataset: DatasetRef {
            name: IMPORTED_DATASET.to_owned(),
            version: 0,
        },
        run_id,
        reference_profile,
        sample_rows,
        lineage: Some(lineage),
    };

    let mut ir_json = serde_json::to_vec_pretty(ir)?;
    ir_json.push(b'\n');
    let mut artifacts: Vec<(String, Bytes)> = vec![
        (IR_ARTIFACT.to_owned(), Bytes::from(ir_json)),
        ("model.wasm".to_owned(), Bytes::from(wasm.clone())),
        (artifact, Bytes::from(bytes)),
    ];
    let onnx_check = match onnx {
        Ok((onnx, check)) => {
            artifacts.push(("model.onnx".to_owned(), Bytes::from(onnx)));
            Ok(check)
        }
        Err(why) => Err(why),
    };
    if let Some(m) = &metrics {
        artifacts.push(("metrics.json".to_owned(), Bytes::from(serde_json::to_vec_pretty(m)?)));
    }
    let manifest = registry::register(store, draft, artifacts).await?;
    Ok(ImportReport {
        manifest,
        model,
        reference_rows: reference.as_ref().map_or(0, |r| r.rows.len()),
        generated,
        max_difference: parity.max_rel_diff,
        wasm_size: wasm.len(),
        wasmtime_compile_ms: compile_ms,
        onnx: onnx_check,
    })
}

/// The dataset name of an imported version's manifest (version 0): it was not trained on a
/// dataset of the store; its lineage says where its reference rows came from (and the compare
/// gate scores it on the other model's dataset).
const IMPORTED_DATASET: &str = "none";

/// The ONNX file in tract: its largest difference to the IR, on `rows` of the `of` check rows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TractCheck {
    pub max_difference: f64,
    pub rows: usize,
    pub of: usize,
}

/// Tree-steps tract may take in the ONNX check (a few seconds).
/// tract finds a leaf's weights by skipping through all the ensemble's leaves before it, so a
/// row costs about trees x leaves / 2 steps: 4 million for 500 trees of 32 leaves.
const TRACT_BUDGET: u64 = 2_000_000_000;

/// The check rows tract runs: all of them while they fit [`TRACT_BUDGET`], else evenly spaced
/// ones that do (at least 64), first and last included. The module in wasmtime runs them all.
fn tract_sample(ir: &ModelIr, rows: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let trees = ir.trees().len() as u64;
    let leaves = ir
        .trees()
        .iter()
        .flat_map(|t| &t.nodes)
        .filter(|n| n.children().is_none())
        .count() as u64;
    let per_row = (trees * leaves / 2).max(1);
    let fit = usize::try_from(TRACT_BUDGET / per_row).unwrap_or(usize::MAX).max(64);
    if rows.len() <= fit {
        return rows.to_vec();
    }
    (0..fit)
        .map(|i| rows[i * (rows.len() - 1) / (fit - 1)].clone())
        .collect()
}

/// What the checks, which need no store, produced.
struct Checked {
    imported: ImportedModel,
    reference: Option<reference::ReferenceRows>,
    generated: LeafRows,
    wasm: Vec<u8>,
    /// The ONNX file and its check in tract, or why there is none.
    onnx: Result<(Vec<u8>, TractCheck), String>,
    parity: ParityReport,
    compile_ms: f64,
    model: String,
}

/// Steps 1 to 4 (blocking work: parsing, compiling, wasmtime, tract).
fn check(request: &ImportRequest, bytes: &[u8]) -> anyhow::Result<Checked> {
    let file = request.file.display().to_string();
    // Its errors name the file (and the format, once known).
    let imported = import_model(bytes, &request.file, request.format, &request.options)?;
    let ir = &imported.ir;
    let reference = match &request.reference_data {
        Some(path) => Some(reference::read(path, ir, request.target.as_deref())?),
        None => None,
    };
    let generated = leaf_rows(ir);
    let mut rows: Vec<Vec<f64>> = reference.as_ref().map(|r| r.rows.clone()).unwrap_or_default();
    rows.extend(generated.rows.iter().cloned());
    let expected: Vec<Prediction> = rows
        .iter()
        .enumerate()
        .map(|(i, row)| {
            ir.predict(row).with_context(|| match &reference {
                Some(r) if i < r.rows.len() => format!(
                    "{}: row {}: the model cannot predict it",
                    request.reference_data.as_deref().map(Path::display).expect("a file"),
                    i + 1
                ),
                _ => format!("generated check row {}: the model cannot predict it", i + 1),
            })
        })
        .collect::<anyhow::Result<_>>()?;

    let metadata = serde_json::to_vec(&serde_json::json!({
        "model": request.name,
        "imported_from": { "format": imported.format.to_string(), "sha256": sha256_bytes(bytes) },
        "features": ir.features,
        "output": ir.output,
    }))?;
    let wasm = model_wasm::codegen::compile(ir, &metadata)
        .with_context(|| format!("cannot compile the model of {file} to WebAssembly"))?;
    let runtime = Runtime::new(RuntimeConfig::default())?;
    let started = Instant::now();
    let module =
        ModelModule::load(&runtime, &wasm, ModuleLimits::default()).context("wasmtime refused the generated module")?;
    let compile_ms = started.elapsed().as_secs_f64() * 1000.0;
    let got = module
        .predict(&rows)
        .context("the generated module failed in wasmtime")?;
    let parity = ParityReport::compare(&expected, &got);
    if !parity.is_ok() {
        bail!("the WebAssembly module made from {file} disagrees with the model IR in wasmtime: {parity}");
    }

    let onnx = match crate::onnx::unfaithful(ir) {
        Some(why) => Err(why),
        None => match crate::onnx::to_onnx(ir, &request.name) {
            Ok(onnx) => {
                let sample = tract_sample(ir, &rows);
                let report = crate::onnx::check_with_tract(&onnx, ir, &sample)
                    .with_context(|| format!("tract cannot run the ONNX file written for {file}"))?;
                if !report.is_ok() {
                    bail!("the ONNX file written for {file} disagrees with the model IR in tract: {report}");
                }
                let check = TractCheck {
                    max_difference: report.max_rel_diff,
                    rows: sample.len(),
                    of: rows.len(),
                };
                Ok((onnx, check))
            }
            Err(OnnxError::Unsupported(why)) => Err(why),
            Err(e) => return Err(e).with_context(|| format!("cannot write the model of {file} as ONNX")),
        },
    };
    let model = describe(ir);
    Ok(Checked {
        imported,
        reference,
        generated,
        wasm,
        onnx,
        parity,
        compile_ms,
        model,
    })
}

/// `linear`, `trees`, `boosted_trees`: the family's second half.
fn body_kind(ir: &ModelIr) -> &'static str {
    match ir.body {
        Body::Linear { .. } => "linear",
        Body::Trees { .. } => "trees",
        Body::Boosted { .. } => "boosted_trees",
    }
}

/// One line about the model.
fn describe(ir: &ModelIr) -> String {
    let task = match &ir.output {
        Output::Classification { classes } => format!("classification ({})", classes.join(", ")),
        Output::Regression { target } => format!("regression ({target})"),
    };
    let body = match &ir.body {
        Body::Linear { intercepts, link, .. } => format!("linear ({link:?} link, {} output(s))", intercepts.len()),
        Body::Trees { trees, aggregate } => format!("{} tree(s), {aggregate:?}", trees.len()),
        Body::Boosted {
            trees,
            base_score,
            link,
            ..
        } => format!(
            "boosted, {} tree(s), {} output(s), {link:?} link",
            trees.len(),
            base_score.len()
        ),
    };
    let nodes: usize = ir.trees().iter().map(|t| t.nodes.len()).sum();
    if nodes > 0 {
        format!("{task}, {body}, {nodes} nodes")
    } else {
        format!("{task}, {body}")
    }
}
