use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use model_wasm::{Aggregate, Body, Link, ModelIr, Output, Preprocess};

use crate::onnx::{ImportOptions, Imported, import_onnx_with};

/// Turn an ONNX model made elsewhere (scikit-learn via skl2onnx: linear and logistic regression,
/// decision trees, forests, scalers) into a model IR, and print what was found.
#[derive(Debug, Args)]
pub struct ImportOnnxCommand {
    /// The .onnx file.
    pub file: PathBuf,
    /// Where to write the IR as JSON (default: beside FILE, as NAME.ir.json).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Also take models whose labels the IR reproduces exactly but whose probabilities it cannot
    /// (a decision tree with class fractions in its leaves, one-vs-rest or raw-score linear
    /// classifiers); the summary says what changed.
    #[arg(long)]
    pub labels_only: bool,
}

impl ImportOnnxCommand {
    pub fn execute(self) -> anyhow::Result<()> {
        let bytes = std::fs::read(&self.file).with_context(|| format!("cannot read {}", self.file.display()))?;
        let options = ImportOptions {
            labels_only: self.labels_only,
        };
        let imported =
            import_onnx_with(&bytes, options).with_context(|| format!("cannot import {}", self.file.display()))?;
        let out = self.out.clone().unwrap_or_else(|| default_out(&self.file));
        let json = serde_json::to_string_pretty(&imported.ir)?;
        std::fs::write(&out, json + "\n").with_context(|| format!("cannot write {}", out.display()))?;
        print!("{}", summary(&self.file, &imported));
        println!("wrote {}", out.display());
        Ok(())
    }
}

/// `dir/model.onnx` -> `dir/model.ir.json`.
fn default_out(file: &Path) -> PathBuf {
    let stem = file.file_stem().map_or_else(|| "model".into(), |s| s.to_string_lossy());
    file.with_file_name(format!("{stem}.ir.json"))
}

/// What was found, one fact a line.
pub(crate) fn summary(file: &Path, imported: &Imported) -> String {
    let ir = &imported.ir;
    let producer = if imported.producer.is_empty() {
        "unknown producer"
    } else {
        &imported.producer
    };
    let opsets: Vec<String> = imported.opsets.iter().map(|(d, v)| format!("{d} {v}")).collect();
    let mut text = format!(
        "imported {} (graph '{}', {producer}, ONNX IR {}, opsets {})\n",
        file.display(),
        imported.graph_name,
        imported.onnx_ir_version,
        opsets.join(", ")
    );
    text += &format!("ops: {}\n", imported.ops.join(", "));
    text += &format!("features ({}): {}\n", ir.n_features(), ir.features.join(", "));
    text += &match &ir.output {
        Output::Classification { classes } => format!("classification, classes: {}\n", classes.join(", ")),
        Output::Regression { target } => format!("regression, target: {target}\n"),
    };
    text += &format!("model: {}\n", describe(ir));
    for note in &imported.notes {
        text += &format!("note: {note}\n");
    }
    text
}

/// `scale -> linear (softmax, 6 outputs)`, `tree ensemble (9 trees, vote, 2143 nodes)`.
fn describe(ir: &ModelIr) -> String {
    let mut steps: Vec<String> = ir
        .preprocess
        .iter()
        .map(|p| match p {
            Preprocess::Scale { .. } => "scale".to_owned(),
        })
        .collect();
    steps.push(match &ir.body {
        Body::Linear { intercepts, link, .. } => {
            let link = match link {
                Link::Identity => "identity",
                Link::Sigmoid => "sigmoid",
                Link::Softmax => "softmax",
                Link::Exp => "exp",
            };
            format!("linear ({link}, {} output(s))", intercepts.len())
        }
        Body::Trees { trees, aggregate } => {
            let aggregate = match aggregate {
                Aggregate::Vote => "vote",
                Aggregate::Average => "average",
                Aggregate::Sum => "sum of class weights",
            };
            let nodes: usize = trees.iter().map(|t| t.nodes.len()).sum();
            format!("trees ({} tree(s), {aggregate}, {nodes} nodes)", trees.len())
        }
        Body::Boosted {
            trees,
            base_score,
            link,
            ..
        } => {
            let nodes: usize = trees.iter().map(|t| t.nodes.len()).sum();
            format!(
                "boosted trees ({} tree(s), {} output(s), {link:?} link, {nodes} nodes)",
                trees.len(),
                base_score.len()
            )
        }
    });
    steps.join(" -> ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ir_goes_beside_the_onnx_file_by_default() {
        assert_eq!(
            default_out(Path::new("dir/model.onnx")),
            PathBuf::from("dir/model.ir.json")
        );
        assert_eq!(default_out(Path::new("plain")), PathBuf::from("plain.ir.json"));
    }
}
