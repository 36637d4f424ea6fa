//! Model files made elsewhere -> the model IR ([`import_model`]): XGBoost JSON, LightGBM text and
//! ONNX (through [`crate::onnx::import_onnx_with`]), so they get the same modules and checks.
//!
//! The format is given or detected from the first bytes: LightGBM's text model starts with the
//! line `tree` and then `version=...`; XGBoost's JSON model is an object with a `learner`; an ONNX
//! model is a protobuf whose first field is the IR version (byte `0x08`).
//!
//! What each importer takes and refuses is in its file (`xgboost.rs`, `lightgbm.rs`); both build
//! [`Body::Boosted`](model_wasm::Body::Boosted) ensembles whose splits are the library's own
//! comparisons ([`Node::Split`] for XGBoost's `f32` `<`, [`Node::SplitLe`] for LightGBM's `f64`
//! `<=`, [`Node::SplitIn`] for categories), so [`ModelIr::predict`] gives the library's
//! predictions (the tests hold the checked-in fixtures of `scripts/gbdt/make_fixtures.py` to
//! that).
//!
//! **Architecture Invariant:** every size a file declares is checked against the data it holds
//! (or [`MAX_FEATURES`], [`model_wasm::ir::MAX_CATEGORY`]) before anything is allocated from it,
//! and trees are walked with an explicit stack, never by recursion: a hostile file gets an
//! error naming the file and the part (tree, node, key), never a panic or an abort.

mod lightgbm;
mod xgboost;

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use anyhow::{Context, bail};
use model_wasm::{ModelIr, Node, Output};

use crate::onnx::{self, MAX_FEATURES};

/// The model file formats [`import_model`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ModelFormat {
    /// `Booster.save_model("m.json")`.
    Xgboost,
    /// `Booster.save_model("model.txt")`.
    Lightgbm,
    /// An ONNX protobuf (scikit-learn via skl2onnx, or Wasmline's own).
    Onnx,
}

impl ModelFormat {
    pub(crate) const ALL: [ModelFormat; 3] = [ModelFormat::Xgboost, ModelFormat::Lightgbm, ModelFormat::Onnx];

    pub(crate) fn name(self) -> &'static str {
        match self {
            ModelFormat::Xgboost => "xgboost",
            ModelFormat::Lightgbm => "lightgbm",
            ModelFormat::Onnx => "onnx",
        }
    }
}

impl fmt::Display for ModelFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ModelFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<ModelFormat, String> {
        ModelFormat::ALL
            .into_iter()
            .find(|f| f.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| format!("unknown model format '{s}' (expected xgboost, lightgbm or onnx)"))
    }
}

/// What the caller knows that the file may not say.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportOptions {
    /// Feature names, in the model's order, for files that do not name their features (a file's
    /// own names win, with a note).
    pub features: Option<Vec<String>>,
    /// Class labels, in the order of class indices (XGBoost and LightGBM files only number them).
    pub classes: Option<Vec<String>>,
    /// ONNX only: also take models whose labels the IR keeps but whose probabilities it cannot
    /// (see [`crate::onnx::ImportOptions::labels_only`]).
    pub labels_only: bool,
}

/// What [`import_model`] made.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportedModel {
    /// Validated.
    pub ir: ModelIr,
    pub format: ModelFormat,
    /// The library that wrote the file and its version, as the file says: `xgboost 3.1.2`,
    /// `lightgbm v4`, or the ONNX producer (`skl2onnx 1.20.0`).
    pub library: String,
    /// What the IR does differently from the file (folded parameters, names not used).
    pub notes: Vec<String>,
}

/// Detects the format when `format` is None (ONNX protobuf, XGBoost JSON with "learner",
/// LightGBM text starting "tree\nversion=" ...), parses, builds and validates the IR. Errors
/// name the file and the part (tree index, node, key).
pub fn import_model(
    bytes: &[u8],
    file: &Path,
    format: Option<ModelFormat>,
    options: &ImportOptions,
) -> anyhow::Result<ImportedModel> {
    let format = match format {
        Some(format) => format,
        None => detect(bytes).with_context(|| format!("cannot import {}", file.display()))?,
    };
    let imported = match format {
        ModelFormat::Xgboost => xgboost::import(bytes, options),
        ModelFormat::Lightgbm => lightgbm::import(bytes, options),
        ModelFormat::Onnx => import_onnx(bytes, options),
    };
    imported.with_context(|| format!("cannot import {} as a {format} model", file.display()))
}

/// The format of a file, from its first bytes.
pub(crate) fn detect(bytes: &[u8]) -> anyhow::Result<ModelFormat> {
    let text = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let start = text.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(text.len());
    let text = &text[start..];
    if let Some(rest) = text.strip_prefix(b"tree")
        && let Some(rest) = rest.strip_prefix(b"\r\n").or_else(|| rest.strip_prefix(b"\n"))
        && rest.starts_with(b"version=")
    {
        return Ok(ModelFormat::Lightgbm);
    }
    if text.starts_with(b"{") {
        // UBJSON (XGBoost's `.ubj`) also opens with '{', then a length marker.
        if matches!(text.get(1), Some(b'L' | b'i' | b'U' | b'l' | b'I' | b'#' | b'$')) {
            bail!(
                "this looks like XGBoost's binary UBJSON form; save the model as JSON (`booster.save_model(\"model.json\")`)"
            );
        }
        let head = &text[..text.len().min(4096)];
        if head.windows(9).any(|w| w == b"\"learner\"") {
            return Ok(ModelFormat::Xgboost);
        }
        bail!("a JSON file without a \"learner\" object near its start: not an XGBoost model");
    }
    if text.starts_with(b"version=") {
        return Ok(ModelFormat::Lightgbm);
    }
    // ONNX: field 1 (ir_version, a varint) comes first.
    if bytes.first() == Some(&0x08) {
        return Ok(ModelFormat::Onnx);
    }
    bail!(
        "not a model format this importer knows: expected XGBoost JSON (an object with \"learner\"), \
         LightGBM text (starting \"tree\" then \"version=\") or ONNX (a protobuf); name the format to get \
         that format's own error"
    )
}

fn import_onnx(bytes: &[u8], options: &ImportOptions) -> anyhow::Result<ImportedModel> {
    let imported = onnx::import_onnx_with(
        bytes,
        onnx::ImportOptions {
            labels_only: options.labels_only,
        },
    )?;
    let mut ir = imported.ir;
    let mut notes = imported.notes;
    if let Some(features) = &options.features {
        ir.features = given_names(features, ir.features.len(), "features", "--features")?;
        notes.push("features named as given".into());
    }
    if let Some(classes) = &options.classes {
        let Output::Classification { classes: own } = &mut ir.output else {
            bail!("classes were given, but the model is a regressor");
        };
        *own = given_names(classes, own.len(), "classes", "--classes")?;
        notes.push("classes named as given".into());
    }
    ir.validate().context("the renamed model is not a valid IR")?;
    Ok(ImportedModel {
        ir,
        format: ModelFormat::Onnx,
        library: if imported.producer.is_empty() {
            "unknown ONNX producer".into()
        } else {
            imported.producer
        },
        notes,
    })
}

/// Names given by the caller, which must be as many as the model has.
fn given_names(names: &[String], n: usize, what: &str, flag: &str) -> anyhow::Result<Vec<String>> {
    if names.len() != n {
        bail!("{flag} gives {} {what}, the model has {n}", names.len());
    }
    Ok(names.to_vec())
}

/// The feature names: the file's own, else the caller's, else `f0..f{n-1}`. `n` must have been
/// checked against [`MAX_FEATURES`].
fn feature_names(
    own: Option<Vec<String>>,
    options: &ImportOptions,
    n: usize,
    notes: &mut Vec<String>,
) -> anyhow::Result<Vec<String>> {
    debug_assert!(n <= MAX_FEATURES);
    match (own, &options.features) {
        (Some(own), given) => {
            if own.len() != n {
                bail!("the file names {} features, the model has {n}", own.len());
            }
            if given.as_ref().is_some_and(|g| *g != own) {
                notes.push("the file names its features: the names given were not used".into());
            }
            Ok(own)
        }
        (None, Some(given)) => given_names(given, n, "features", "--features"),
        (None, None) => Ok((0..n).map(|i| format!("f{i}")).collect()),
    }
}

/// Class labels: the caller's, else `0..k-1`.
fn class_names(options: &ImportOptions, k: usize) -> anyhow::Result<Vec<String>> {
    match &options.classes {
        Some(given) => given_names(given, k, "classes", "--classes"),
        None => Ok((0..k).map(|i| i.to_string()).collect()),
    }
}

/// Checks a declared feature count before anything is made from it.
fn check_feature_count(n: u64, key: &str) -> anyhow::Result<usize> {
    if n == 0 {
        bail!("{key} declares no features");
    }
    if n > MAX_FEATURES as u64 {
        bail!("{key} declares {n} features; at most {MAX_FEATURES} are taken");
    }
    Ok(n as usize)
}

/// The categories all the categorical splits of a model may list, in all: the IR's own limit
/// (its code generator writes one bit per category), checked as each set is read so that sets
/// shared by many splits cannot multiply one file's bytes.
#[derive(Debug, Default)]
struct CategoryBudget {
    used: u64,
}

impl CategoryBudget {
    const LIMIT: u64 = model_wasm::ir::MAX_CATEGORY as u64;

    fn take(&mut self, n: u64) -> anyhow::Result<()> {
        self.used = self.used.saturating_add(n);
        if self.used > Self::LIMIT {
            bail!("the category sets list more than {} categories in all", Self::LIMIT);
        }
        Ok(())
    }
}

/// Renumbers a tree in the order its nodes are reached from node 0 (depth first, left first),
/// leaving out nodes no path reaches (XGBoost keeps pruned nodes in its arrays). Refuses a child
/// index out of range and a node reached twice (a cycle or a shared child). Walks with an
/// explicit stack: each node is entered once, so the stack never holds more than `n + 1`.
fn renumber(nodes: Vec<Node>) -> Result<Vec<Node>, String> {
    const UNSEEN: u32 = u32::MAX;
    let n = nodes.len();
    if n == 0 {
        return Err("the tree has no nodes".into());
    }
    if n >= UNSEEN as usize {
        return Err(format!("{n} nodes are too many"));
    }
    let mut index = vec![UNSEEN; n];
    let mut order = Vec::new();
    let mut stack = vec![(0usize, None::<usize>)];
    while let Some((i, parent)) = stack.pop() {
        if index[i] != UNSEEN {
            let via = parent.map_or(String::new(), |p| format!(" (from node {p})"));
            return Err(format!("node {i} is reached twice{via}: a cycle or a shared child"));
        }
        index[i] = order.len() as u32;
        order.push(i);
        if let Some((left, right)) = nodes[i].children() {
            for child in [right, left] {
                if child as usize >= n {
                    return Err(format!("node {i}: child {child} does not exist ({n} nodes)"));
                }
                stack.push((child as usize, Some(i)));
            }
        }
    }
    let mut nodes: Vec<Option<Node>> = nodes.into_iter().map(Some).collect();
    Ok(order
        .iter()
        .map(|&i| {
            let mut node = nodes[i].take().expect("each node is taken once");
            set_children(&mut node, &index);
            node
        })
        .collect())
}

fn set_children(node: &mut Node, index: &[u32]) {
    match node {
        Node::Split { left, right, .. } | Node::SplitLe { left, right, .. } | Node::SplitIn { left, right, .. } => {
            *left = index[*left as usize];
            *right = index[*right as usize];
        }
        Node::Leaf { .. } | Node::Weights { .. } => {}
    }
}

/// Validates the IR a file made.
fn validated(ir: ModelIr) -> anyhow::Result<ModelIr> {
    ir.validate().context("the imported model is not a valid IR")?;
    Ok(ir)
}

#[cfg(test)]
mod tests;
