//! `wasmline drift`: scores a data file against a registered model's reference profile, feature by
//! feature, with the same code edges and browsers run ([`model_wasm::telemetry::DriftMonitor`]).

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use model_wasm::manifest::ManifestView;
use model_wasm::telemetry::{DriftMonitor, DriftSnapshot};

use crate::data::Values;
use crate::registry::{self, ModelSelector};

/// Per-feature PSI (and KS for numeric features) of a file against a model's training profile.
#[derive(Debug, Args)]
pub struct DriftCommand {
    /// NAME (its production version), NAME@VERSION or NAME@ALIAS.
    #[arg(long)]
    pub model: String,
    /// A CSV (or .jsonl) file with a column for every feature; other columns are ignored.
    #[arg(long)]
    pub data: PathBuf,
    /// A feature drifts when its PSI reaches this value.
    #[arg(long, default_value_t = model_wasm::PSI_DRIFT_THRESHOLD)]
    pub threshold: f64,
    /// Print the result as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

impl DriftCommand {
    pub async fn execute(self, store: &str) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.threshold.is_finite() && self.threshold >= 0.0,
            "--threshold must be a number >= 0"
        );
        let store = super::open_store(store).await?;
        let selector: ModelSelector = if self.model.contains('@') {
            self.model.parse()?
        } else {
            format!("{}@production", self.model).parse()?
        };
        let manifest = registry::load_manifest(store.as_ref(), &selector).await?;
        let view = ManifestView::from_json(&serde_json::to_vec(&manifest)?)
            .context("the manifest has no usable reference profile")?;
        let names: Vec<String> = view.features.iter().map(|f| f.name.clone()).collect();
        // Missing and non-finite values are counted as missing by the drift window, not refused.
        let table = super::read_features(&self.data, &names, &[], true).await?;
        let n_features = table.columns.len();
        let mut flat = Vec::with_capacity(table.rows() * n_features);
        for r in 0..table.rows() {
            for c in &table.columns {
                flat.push(match &c.values {
                    Values::Number(v) => v[r].unwrap_or(f64::NAN),
                    _ => f64::NAN,
                });
            }
        }
        let mut monitor = DriftMonitor::with_threshold(&view, self.threshold);
        monitor.observe_rows(&flat, n_features);
        let snapshot = monitor.snapshot();
        if self.json {
            let out = serde_json::json!({
                "model": view.name,
                "version": view.version,
                "rows": table.rows(),
                "drift": snapshot,
            });
            println!("{}", serde_json::to_string_pretty(&out)?);
        } else {
            print!("{}", render_table(&view, table.rows(), &snapshot));
        }
        Ok(())
    }
}

/// The per-feature table a person reads.
fn render_table(view: &ManifestView, rows: usize, snapshot: &DriftSnapshot) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} v{}: {rows} rows against the training profile (drifted: PSI >= {})",
        view.name, view.version, snapshot.threshold
    );
    let width = snapshot.features.iter().map(|f| f.name.len()).max().unwrap_or(7).max(7);
    let _ = writeln!(
        out,
        "{:<width$}  {:>8}  {:>6}  {:>8}  drifted",
        "feature", "psi", "ks", "missing"
    );
    for f in &snapshot.features {
        let ks = f.ks.map_or_else(|| "-".to_owned(), |ks| format!("{ks:.3}"));
        let _ = writeln!(
            out,
            "{:<width$}  {:>8.4}  {:>6}  {:>8}  {}",
            f.name,
            f.psi,
            ks,
            f.missing,
            if f.drifted { "yes" } else { "no" }
        );
    }
    let drifted = snapshot.features.iter().filter(|f| f.drifted).count();
    let _ = writeln!(
        out,
        "drift ratio {:.3} ({drifted} of {} features)",
        snapshot.drifted_ratio,
        snapshot.features.len()
    );
    out
}
