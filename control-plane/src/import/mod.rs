//! Models made elsewhere, read into the model IR.
//!
//! TEMPORARY: the importers' branch replaces this file at merge. Until then only ONNX is read
//! (through [`crate::onnx::import_onnx_with`]); XGBoost and LightGBM are refused.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use anyhow::{Context, bail, ensure};
use model_wasm::{ModelIr, Output};

/// The formats `wasmline models import` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ModelFormat {
    Xgboost,
    Lightgbm,
    Onnx,
}

impl fmt::Display for ModelFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ModelFormat::Xgboost => "xgboost",
            ModelFormat::Lightgbm => "lightgbm",
            ModelFormat::Onnx => "onnx",
        })
    }
}

impl FromStr for ModelFormat {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> anyhow::Result<ModelFormat> {
        match s {
            "xgboost" => Ok(ModelFormat::Xgboost),
            "lightgbm" => Ok(ModelFormat::Lightgbm),
            "onnx" => Ok(ModelFormat::Onnx),
            _ => bail!("unknown model format '{s}' (expected xgboost, lightgbm or onnx)"),
        }
    }
}

/// What the user tells the importer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ImportOptions {
    /// Feature names, when the file has none.
    pub features: Option<Vec<String>>,
    /// Class labels, when the file has none.
    pub classes: Option<Vec<String>>,
    /// Also take models whose labels the IR reproduces but not their probabilities.
    pub labels_only: bool,
}

/// A model read into the IR.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ImportedModel {
    /// Validated.
    pub ir: ModelIr,
    pub format: ModelFormat,
    /// The library (and version) that wrote the file, as the file says.
    pub library: String,
    pub notes: Vec<String>,
}

/// Reads `bytes` (the contents of `file`) as a model of `format` (detected when `None`).
pub(crate) fn import_model(
    bytes: &[u8],
    file: &Path,
    format: Option<ModelFormat>,
    options: &ImportOptions,
) -> anyhow::Result<ImportedModel> {
    let format = format.unwrap_or(match file.extension().and_then(|e| e.to_str()) {
        Some("json") => ModelFormat::Xgboost,
        Some("txt") => ModelFormat::Lightgbm,
        _ => ModelFormat::Onnx,
    });
    if format != ModelFormat::Onnx {
        bail!(
            "{}: reading {format} models is not available in this build",
            file.display()
        );
    }
    let imported = crate::onnx::import_onnx_with(
        bytes,
        crate::onnx::ImportOptions {
            labels_only: options.labels_only,
        },
    )
    .with_context(|| format!("{}", file.display()))?;
    let mut ir = imported.ir;
    if let Some(features) = &options.features {
        ensure!(
            features.len() == ir.features.len(),
            "{}: --features names {} features, the model takes {}",
            file.display(),
            features.len(),
            ir.features.len()
        );
        ir.features = features.clone();
    }
    if let Some(classes) = &options.classes {
        match &mut ir.output {
            Output::Classification { classes: ours } => {
                ensure!(
                    classes.len() == ours.len(),
                    "{}: --classes names {} classes, the model has {}",
                    file.display(),
                    classes.len(),
                    ours.len()
                );
                *ours = classes.clone();
            }
            Output::Regression { .. } => bail!("{}: --classes given for a regression model", file.display()),
        }
    }
    ir.validate()
        .with_context(|| format!("{}: the model is not a valid IR", file.display()))?;
    Ok(ImportedModel {
        ir,
        format,
        library: imported.producer,
        notes: imported.notes,
    })
}
