use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use model_wasm::{ModelIr, Outputs, Prediction};

use crate::data::Values;
use crate::registry::{self, ModelSelector};

/// Batch prediction with a registered model (the reference evaluator of its IR).
#[derive(Debug, Args)]
pub struct PredictCommand {
    /// NAME, NAME@VERSION or NAME@ALIAS.
    pub model: ModelSelector,
    /// A CSV (or .jsonl) file with a column for every feature; other columns are ignored.
    #[arg(long)]
    pub data: PathBuf,
    /// Where to write the predictions as JSON (default: standard output).
    #[arg(long)]
    pub output: Option<PathBuf>,
}

impl PredictCommand {
    pub async fn execute(self, store: &str) -> anyhow::Result<()> {
        let store = super::open_store(store).await?;
        let manifest = registry::load_manifest(store.as_ref(), &self.model).await?;
        let ir: ModelIr =
            serde_json::from_slice(&registry::load_artifact(store.as_ref(), &manifest, "model.ir.json").await?)
                .context("model.ir.json is not a model IR")?;
        ir.validate()?;
        let table = super::read_features(&self.data, &ir.features, &ir.accepts_missing(), false).await?;
        let rows: Vec<Vec<f64>> = (0..table.rows())
            .map(|r| {
                table
                    .columns
                    .iter()
                    .map(|c| match &c.values {
                        Values::Number(v) => v[r].unwrap_or(f64::NAN),
                        _ => f64::NAN,
                    })
                    .collect()
            })
            .collect();
        let predictions: Vec<Prediction> = rows
            .iter()
            .enumerate()
            .map(|(i, row)| {
                ir.predict(row)
                    .with_context(|| format!("{}: row {}", self.data.display(), i + 1))
            })
            .collect::<anyhow::Result<_>>()?;
        let mut out = serde_json::json!({
            "model": manifest.name,
            "version": manifest.version,
            "rows": rows,
        });
        match ir.outputs(predictions) {
            Outputs::Values(values) => out["values"] = serde_json::json!(values),
            Outputs::Classes { labels, probabilities } => {
                out["classes"] = serde_json::json!(ir.classes());
                out["labels"] = serde_json::json!(labels);
                out["probabilities"] = serde_json::json!(probabilities);
            }
        }
        let text = serde_json::to_string(&out)?;
        match &self.output {
            Some(path) => std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?,
            None => println!("{text}"),
        }
        Ok(())
    }
}
