//! ONNX models made elsewhere -> the model IR ([`import_onnx`]), so they get the same modules.
//!
//! What is taken: scikit-learn models as skl2onnx writes them (opset 13 or so, `ai.onnx.ml` 1-3),
//! a chain from one float tensor input `[N, n_features]` through
//! - zero or more `ai.onnx.ml.Scaler` (-> [`Preprocess::Scale`]: both are `(x - offset) * scale`;
//!   a one-value offset or scale applies to every feature), `Cast` to float and `Identity`;
//! - one model op: `LinearRegressor` (one target, no post-transform), `LinearClassifier`,
//!   `TreeEnsembleClassifier` or `TreeEnsembleRegressor` (float attributes, not `*_as_tensor`),
//!   or opset 5's `TreeEnsemble` with one target (float tensors; read as the regressor it is,
//!   `BRANCH_MEMBER` sets as `BRANCH_EQ` chains: `ensemble5`);
//! - after it, only what reshapes the outputs: `ZipMap`, `Cast`, `Identity`, a `Normalizer` (L1)
//!   over probabilities that already sum to one, or a `Softmax` over raw scores.
//!
//! Every op outside that list is refused by name before anything else is read
//! (`unsupported ONNX op(s): ai.onnx.ml.SVMClassifier`). The conversions are exact, or refused:
//! - `LinearClassifier`: `SOFTMAX` scores (or `NONE` followed by `Softmax`) are a softmax link
//!   over one row per class. `LOGISTIC` scores are a sigmoid link when they are binary: one row
//!   and two classes, or two rows that are each other's negation (skl2onnx's form), whose
//!   probabilities `[sigmoid(-z), sigmoid(z)]` already sum to one.
//! - Tree splits: the IR sends `x` left when `(x as f32) < t`. `BRANCH_LT` is that; for `f32`
//!   values `x <= t` is `x < next_up(t)`, so `BRANCH_LEQ` (scikit-learn's) takes the next `f32`
//!   above the threshold; `BRANCH_GTE`/`BRANCH_GT` swap the branches. With
//!   `nodes_missing_value_tracks_true` (onnxmltools' XGBoost and LightGBM files) each split routes
//!   a NaN as onnxruntime does: to the true branch where the flag is 1, else to the false branch;
//!   without it a NaN input is refused. A chain of `BRANCH_EQ` nodes on one feature sharing their
//!   true branch (onnxmltools' LightGBM category sets) becomes one category set read as
//!   `BRANCH_EQ` does (`Cast::Exact`: `2.5` is no category, where LightGBM's own text model
//!   reads category 2); a `BRANCH_EQ` on a value that is not a whole number from 0 to 2^24, and
//!   `BRANCH_NEQ`, are refused. Trees are renumbered from their root.
//! - `TreeEnsembleClassifier`: when each leaf puts its whole weight on one class and every leaf
//!   weighs `1 / n_trees`, the scores are vote shares: the IR's [`Aggregate::Vote`]. Otherwise
//!   (scikit-learn's soft-voting forests and single trees, whose leaves hold class shares, or
//!   weighted trees) every leaf keeps its class weights and the IR sums them
//!   ([`Aggregate::Sum`]), as the original does. With two classes and one class id in the
//!   weights (skl2onnx's binary form), a leaf's weight is class 1's share and class 0 gets the
//!   tree's rest, as onnxruntime reads it. A `LOGISTIC` classifier in that binary form, or a
//!   `SOFTMAX` one whose trees each add to one class (onnxmltools' boosted models), becomes a
//!   [`Body::Boosted`](model_wasm::Body::Boosted): `base_values` as base scores, then the link.
//! - `TreeEnsembleRegressor` leaves add up their target weights; `SUM` over trees with
//!   `base_values` or missing-value flags (onnxmltools) becomes a boosted identity sum from the
//!   base value; other `SUM`s (skl2onnx's forests) the IR's mean of `n_trees * value`, `AVERAGE`
//!   the mean of the values, `base_values` added to every leaf.
//!
//! Refused, because the IR cannot give the original's answers (see [`ImportOptions::labels_only`]
//! for the cases where the labels would still be exact):
//! - one-vs-rest (`LOGISTIC` over three or more classes, normalized or not) and raw-score
//!   (`NONE`) linear classifiers: same labels as a softmax, other probabilities.
//! - post-transforms other than these, `MIN`/`MAX` tree aggregates, several targets, several
//!   model ops, several inputs, non-float inputs, and any graph that is not such a chain.
//!
//! Features are named by the metadata entry `features` (a JSON array, as [`to_onnx`](super::to_onnx)
//! writes it) or `f0..f{n-1}`; the regression target by the entry `target`, else `target`;
//! classes come from `classlabels_int64s`/`classlabels_ints` (as decimal strings) or
//! `classlabels_strings`.
//!
//! The files: this one walks the graph (from the input through the preprocessing to the model op
//! and on to the outputs); `attrs.rs` reads attributes and value types; `scaler.rs` turns
//! Scalers into the IR's preprocessing; `linear.rs` and `trees.rs` convert the model ops.
//!
//! [`Preprocess::Scale`]: model_wasm::Preprocess::Scale
//! [`Aggregate::Vote`]: model_wasm::Aggregate::Vote
//! [`Aggregate::Sum`]: model_wasm::Aggregate::Sum

mod attrs;
mod ensemble5;
mod linear;
mod scaler;
mod trees;

use std::collections::HashMap;

use model_wasm::{Body, IR_VERSION, ModelIr, Output};
use prost::Message;
use tract_onnx::pb::tensor_proto::DataType;
use tract_onnx::pb::{GraphProto, ModelProto, NodeProto, ValueInfoProto};

use attrs::{class_labels, describe, domain_name, floats, int, qualified, string, tensor_type};
use linear::{linear_classifier, linear_regressor};
use scaler::Scaling;
use trees::{tree_classifier, tree_regressor};

/// The ops the importer reads, by qualified name (`domain.op`).
pub(super) const SUPPORTED_OPS: &[&str] = &[
    "ai.onnx.ml.Scaler",
    "ai.onnx.ml.LinearRegressor",
    "ai.onnx.ml.LinearClassifier",
    "ai.onnx.ml.TreeEnsembleClassifier",
    "ai.onnx.ml.TreeEnsembleRegressor",
    "ai.onnx.ml.TreeEnsemble",
    "ai.onnx.ml.Normalizer",
    "ai.onnx.ml.ZipMap",
    "ai.onnx.Cast",
    "ai.onnx.Identity",
    "ai.onnx.Softmax",
];

/// The most features an imported model may take. A file's declared sizes are not trusted: an
/// input dimension of `10^12` would otherwise make as many feature names (and the IR's checks
/// compare names pairwise).
pub(crate) const MAX_FEATURES: usize = 1 << 16;

/// How strict the import is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportOptions {
    /// Also take models whose labels the IR reproduces exactly but whose probabilities it cannot:
    /// one-vs-rest and raw-score linear classifiers (which become a softmax, or a sigmoid for one
    /// row). [`Imported::notes`] says what changed.
    pub labels_only: bool,
}

/// What [`import_onnx`] found, and the IR it made.
#[derive(Debug, Clone, PartialEq)]
pub struct Imported {
    /// Validated.
    pub ir: ModelIr,
    /// `producer_name` and `producer_version`, e.g. `skl2onnx 1.20.0` (empty when not given).
    pub producer: String,
    /// The ONNX IR version of the file.
    pub onnx_ir_version: i64,
    /// The imported opsets, the default domain written `ai.onnx`.
    pub opsets: Vec<(String, i64)>,
    /// The graph's ops in order of first use, qualified (`ai.onnx.ml.LinearClassifier`).
    pub ops: Vec<String>,
    /// The graph's name.
    pub graph_name: String,
    /// What the IR does not keep of the original (only with [`ImportOptions::labels_only`]),
    /// and metadata that was not used.
    pub notes: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The bytes are not an ONNX model (or are cut short).
    #[error("not an ONNX model: {0}")]
    NotOnnx(String),
    /// Ops outside [`SUPPORTED_OPS`], qualified, in order of first use.
    #[error("unsupported ONNX op(s): {}", .0.join(", "))]
    UnsupportedOps(Vec<String>),
    /// Supported ops used in a way the IR cannot represent.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// The file breaks the ONNX operator specification (missing or inconsistent attributes).
    #[error("invalid ONNX model: {0}")]
    Invalid(String),
    /// The IR made from the file fails its checks.
    #[error("the imported model is not a valid IR: {0}")]
    InvalidIr(#[source] model_wasm::Error),
}

type Result<T> = std::result::Result<T, ImportError>;

fn unsupported(message: impl Into<String>) -> ImportError {
    ImportError::Unsupported(message.into())
}

fn invalid(message: impl Into<String>) -> ImportError {
    ImportError::Invalid(message.into())
}

/// Imports an ONNX model with the default (strict) [`ImportOptions`].
///
/// ```no_run
/// let bytes = std::fs::read("model.onnx").unwrap();
/// let imported = wasmline::import_onnx(&bytes).unwrap();
/// println!("{} ops from {}: {:?}", imported.ops.len(), imported.producer, imported.ir.output);
/// ```
pub fn import_onnx(bytes: &[u8]) -> Result<Imported> {
    import_onnx_with(bytes, ImportOptions::default())
}

/// Imports an ONNX model (see the [module documentation](self) for what is taken and refused).
pub fn import_onnx_with(bytes: &[u8], options: ImportOptions) -> Result<Imported> {
    let model = ModelProto::decode(bytes).map_err(|e| {
        ImportError::NotOnnx(format!(
            "the bytes do not decode as an ONNX protobuf, or the file is cut short ({e})"
        ))
    })?;
    let Some(graph) = model.graph.as_ref() else {
        return Err(ImportError::NotOnnx("the protobuf holds no graph".into()));
    };
    if model.ir_version <= 0 || model.opset_import.is_empty() {
        return Err(ImportError::NotOnnx(
            "no IR version or no opset: not an ONNX file, or one cut short".into(),
        ));
    }
    let mut ops: Vec<String> = Vec::new();
    for node in &graph.node {
        let op = qualified(node);
        if !ops.contains(&op) {
            ops.push(op);
        }
    }
    // onnxmltools ends its LightGBM classifiers with `probabilities * 1`: taken when every Mul is
    // such a no-op.
    let muls_by_one = graph
        .node
        .iter()
        .filter(|n| qualified(n) == "ai.onnx.Mul")
        .all(|n| mul_by_one(graph, n));
    let refused: Vec<String> = ops
        .iter()
        .filter(|op| !(SUPPORTED_OPS.contains(&op.as_str()) || muls_by_one && op.as_str() == "ai.onnx.Mul"))
        .cloned()
        .collect();
    if !refused.is_empty() {
        return Err(ImportError::UnsupportedOps(refused));
    }

    let mut notes = Vec::new();
    let metadata: HashMap<&str, &str> = model
        .metadata_props
        .iter()
        .map(|e| (e.key.as_str(), e.value.as_str()))
        .collect();
    let mut importer = GraphImporter::new(graph, options)?;
    let (preprocess, model_node) = importer.preprocessing()?;
    let n = importer.n_features(model_node)?;
    let features = feature_names(&metadata, n, &mut notes);
    let (body, output) = importer.model(model_node, n, &preprocess, &metadata, &mut notes)?;
    importer.all_nodes_used()?;

    let ir = ModelIr {
        ir_version: IR_VERSION,
        features,
        preprocess: scaler::to_preprocess(preprocess, n),
        body,
        output,
    };
    ir.validate().map_err(ImportError::InvalidIr)?;
    let producer = [model.producer_name.as_str(), model.producer_version.as_str()]
        .iter()
        .filter(|s| !s.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join(" ");
    Ok(Imported {
        ir,
        producer,
        onnx_ir_version: model.ir_version,
        opsets: model
            .opset_import
            .iter()
            .map(|o| (domain_name(&o.domain).to_owned(), o.version))
            .collect(),
        ops,
        graph_name: graph.name.clone(),
        notes,
    })
}

/// Whether `node` multiplies its input by a constant 1 (one element, float): a no-op.
fn mul_by_one(graph: &GraphProto, node: &NodeProto) -> bool {
    let [a, b] = &node.input[..] else {
        return false;
    };
    let one = |name: &str| {
        graph.initializer.iter().any(|t| {
            t.name == name
                && t.data_type == DataType::Float as i32
                && t.dims.iter().product::<i64>() == 1
                && (t.float_data[..] == [1.0] || (t.float_data.is_empty() && t.raw_data[..] == 1.0f32.to_le_bytes()))
        })
    };
    one(a) != one(b)
}

fn feature_names(metadata: &HashMap<&str, &str>, n: usize, notes: &mut Vec<String>) -> Vec<String> {
    let default = || (0..n).map(|i| format!("f{i}")).collect();
    let Some(text) = metadata.get("features") else {
        return default();
    };
    match serde_json::from_str::<Vec<String>>(text) {
        Ok(names) if names.len() == n => names,
        Ok(names) => {
            notes.push(format!(
                "metadata 'features' names {} features, the model takes {n}: they are named f0..f{}",
                names.len(),
                n - 1
            ));
            default()
        }
        Err(_) => {
            notes.push(format!(
                "metadata 'features' is not a JSON array of names: the features are named f0..f{}",
                n - 1
            ));
            default()
        }
    }
}

/// Walks a graph: which node makes and which nodes read each value, and which nodes were read.
struct GraphImporter<'a> {
    graph: &'a GraphProto,
    options: ImportOptions,
    input: &'a ValueInfoProto,
    consumers: HashMap<&'a str, Vec<usize>>,
    used: Vec<bool>,
}

impl<'a> GraphImporter<'a> {
    fn new(graph: &'a GraphProto, options: ImportOptions) -> Result<GraphImporter<'a>> {
        let initializers: Vec<&str> = graph.initializer.iter().map(|t| t.name.as_str()).collect();
        // Before ONNX IR 4, initializers were listed among the inputs too.
        let inputs: Vec<&ValueInfoProto> = graph
            .input
            .iter()
            .filter(|i| !initializers.contains(&i.name.as_str()))
            .collect();
        let [input] = inputs[..] else {
            let names: Vec<&str> = inputs.iter().map(|i| i.name.as_str()).collect();
            return Err(unsupported(format!(
                "the model has {} inputs ({}); only models with one float tensor input [N, n_features] can be imported",
                inputs.len(),
                names.join(", ")
            )));
        };
        match tensor_type(input) {
            Some((elem, _)) if elem == DataType::Float as i32 => {}
            Some((elem, _)) => {
                let name = DataType::try_from(elem).map_or_else(|_| format!("type {elem}"), |t| format!("{t:?}"));
                return Err(unsupported(format!(
                    "the input '{}' holds {name} values; only a float tensor [N, n_features] can be imported",
                    input.name
                )));
            }
            None => {
                return Err(unsupported(format!(
                    "the input '{}' is not a tensor; only a float tensor [N, n_features] can be imported",
                    input.name
                )));
            }
        }
        let mut consumers: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, node) in graph.node.iter().enumerate() {
            for name in &node.input {
                if !name.is_empty() {
                    consumers.entry(name.as_str()).or_default().push(i);
                }
            }
        }
        Ok(GraphImporter {
            graph,
            options,
            input,
            consumers,
            used: vec![false; graph.node.len()],
        })
    }

    fn readers(&self, value: &str) -> Vec<usize> {
        self.consumers.get(value).cloned().unwrap_or_default()
    }

    /// Follows the input through Scalers, Casts and Identities to the model op.
    fn preprocessing(&mut self) -> Result<(Vec<Scaling>, &'a NodeProto)> {
        let graph = self.graph;
        let mut value = self.input.name.as_str();
        let mut scaling = Vec::new();
        loop {
            let readers = self.readers(value);
            let i = match readers[..] {
                [i] => i,
                [] => return Err(unsupported(format!("'{value}' reaches no model op"))),
                _ => {
                    let names: Vec<String> = readers.iter().map(|&i| describe(&graph.node[i])).collect();
                    return Err(unsupported(format!(
                        "'{value}' is read by {} nodes ({}); only a chain of preprocessing ops ending in one model op can be imported",
                        readers.len(),
                        names.join(", ")
                    )));
                }
            };
            let node = &graph.node[i];
            if std::mem::replace(&mut self.used[i], true) {
                return Err(invalid(format!("{} is reached twice (a cycle)", describe(node))));
            }
            if node.input.len() != 1 || node.output.is_empty() {
                return Err(invalid(format!(
                    "{} has {} inputs and {} outputs",
                    describe(node),
                    node.input.len(),
                    node.output.len()
                )));
            }
            match qualified(node).as_str() {
                "ai.onnx.ml.Scaler" => scaling.push(scaler::read(node)),
                "ai.onnx.Cast" => {
                    let to = int(node, "to").ok_or_else(|| invalid(format!("{} has no 'to'", describe(node))))?;
                    if to != DataType::Float as i64 {
                        return Err(unsupported(format!(
                            "{} turns the input into another type than float",
                            describe(node)
                        )));
                    }
                }
                "ai.onnx.Identity" => {}
                "ai.onnx.ml.LinearRegressor"
                | "ai.onnx.ml.LinearClassifier"
                | "ai.onnx.ml.TreeEnsembleClassifier"
                | "ai.onnx.ml.TreeEnsembleRegressor"
                | "ai.onnx.ml.TreeEnsemble" => return Ok((scaling, node)),
                _ => {
                    return Err(unsupported(format!(
                        "{} between the input and the model",
                        describe(node)
                    )));
                }
            }
            value = node.output[0].as_str();
        }
    }

    /// The number of features: the input's second dimension, else what the model op implies.
    fn n_features(&self, model: &NodeProto) -> Result<usize> {
        let implied = match model.op_type.as_str() {
            "LinearRegressor" => {
                let targets = int(model, "targets").unwrap_or(1).max(1) as usize;
                floats(model, "coefficients").map(|c| c.len() / targets)
            }
            "LinearClassifier" => {
                let rows = floats(model, "intercepts").map_or(0, <[f32]>::len);
                floats(model, "coefficients")
                    .filter(|_| rows > 0)
                    .map(|c| c.len() / rows)
            }
            _ => None,
        };
        let declared = tensor_type(self.input).and_then(|(_, dims)| match dims[..] {
            [_, Some(n)] if n > 0 => Some(n),
            _ => None,
        });
        let n = match (declared, implied) {
            (Some(n), _) => u64::try_from(n).unwrap_or(u64::MAX),
            (None, Some(n)) if n > 0 => n as u64,
            _ => {
                return Err(unsupported(format!(
                    "the input '{}' does not have the shape [N, n_features] with a fixed n_features",
                    self.input.name
                )));
            }
        };
        if n > MAX_FEATURES as u64 {
            return Err(unsupported(format!(
                "the input '{}' declares {n} features; at most {MAX_FEATURES} are taken",
                self.input.name
            )));
        }
        Ok(n as usize)
    }

    fn model(
        &mut self,
        node: &'a NodeProto,
        n: usize,
        preprocess: &[Scaling],
        metadata: &HashMap<&str, &str>,
        notes: &mut Vec<String>,
    ) -> Result<(Body, Output)> {
        scaler::check_lengths(preprocess, n)?;
        let target = || Output::Regression {
            target: metadata.get("target").map_or("target", |t| t).to_owned(),
        };
        match node.op_type.as_str() {
            "LinearRegressor" => {
                self.plain_outputs(node, "values")?;
                Ok((linear_regressor(node, n)?, target()))
            }
            "LinearClassifier" => {
                let classes = class_labels(node, "classlabels_ints")?;
                let transforms = self.score_transforms(node)?;
                let body = linear_classifier(node, n, classes.len(), &transforms, self.options, notes)?;
                Ok((body, Output::Classification { classes }))
            }
            "TreeEnsembleRegressor" => {
                self.plain_outputs(node, "values")?;
                Ok((tree_regressor(node, n)?, target()))
            }
            // Opset 5: read as the regressor it is written as.
            "TreeEnsemble" => {
                self.plain_outputs(node, "values")?;
                Ok((tree_regressor(&ensemble5::as_regressor(node)?, n)?, target()))
            }
            _ => {
                let classes = class_labels(node, "classlabels_int64s")?;
                let transforms = self.score_transforms(node)?;
                if !transforms.is_empty() {
                    return Err(unsupported(format!(
                        "{} after a tree ensemble's scores",
                        transforms.join(" and ")
                    )));
                }
                let body = tree_classifier(node, n, classes.len(), notes)?;
                Ok((body, Output::Classification { classes }))
            }
        }
    }

    /// Checks that a regressor's output only goes through Casts (to float or double) and
    /// Identities.
    fn plain_outputs(&mut self, node: &NodeProto, what: &str) -> Result<()> {
        for output in &node.output {
            let transforms = self.downstream(output, true)?;
            if let Some(t) = transforms.first() {
                return Err(unsupported(format!("{t} after the {what} of {}", describe(node))));
            }
        }
        Ok(())
    }

    /// A classifier: its label output may only be cast; returns the transforms its scores go
    /// through (Normalizer, Softmax), in order.
    fn score_transforms(&mut self, node: &NodeProto) -> Result<Vec<String>> {
        if node.output.len() != 2 {
            return Err(invalid(format!(
                "{} has {} outputs, expected 2 (label, scores)",
                describe(node),
                node.output.len()
            )));
        }
        if let Some(t) = self.downstream(&node.output[0], false)?.first() {
            return Err(unsupported(format!("{t} after the label of {}", describe(node))));
        }
        self.downstream(&node.output[1], true)
    }

    /// Marks everything that reads `value` (transitively) as used, and returns the transforms
    /// (`Normalizer L1`, `Softmax`) met on the way, in order. Casts, Identities and ZipMaps do not
    /// change numbers; `numbers` says whether a Cast must keep them floating-point. Branches must
    /// apply the same transforms.
    fn downstream(&mut self, value: &str, numbers: bool) -> Result<Vec<String>> {
        let graph = self.graph;
        let mut found: Option<Vec<String>> = None;
        for i in self.readers(value) {
            let node = &graph.node[i];
            if std::mem::replace(&mut self.used[i], true) {
                return Err(unsupported(format!(
                    "{} is reached twice (only chains of one-input ops can be imported)",
                    describe(node)
                )));
            }
            let this = match qualified(node).as_str() {
                "ai.onnx.Identity" | "ai.onnx.ml.ZipMap" => None,
                "ai.onnx.Mul" if mul_by_one(graph, node) => None,
                "ai.onnx.Cast" => {
                    let to = int(node, "to").unwrap_or(0);
                    if numbers && to != DataType::Float as i64 && to != DataType::Double as i64 {
                        return Err(unsupported(format!(
                            "{} turns the model's numbers into another type than float or double",
                            describe(node)
                        )));
                    }
                    None
                }
                "ai.onnx.ml.Normalizer" => {
                    let norm = string(node, "norm").unwrap_or_else(|| "MAX".into());
                    Some(format!("Normalizer {norm}"))
                }
                "ai.onnx.Softmax" => {
                    let axis = int(node, "axis").unwrap_or(-1);
                    if axis != 1 && axis != -1 {
                        return Err(unsupported(format!("{} over axis {axis}", describe(node))));
                    }
                    Some("Softmax".to_owned())
                }
                _ => return Err(unsupported(format!("{} after the model", describe(node)))),
            };
            let mut path: Vec<String> = this.into_iter().collect();
            for output in &node.output {
                path.extend(self.downstream(output, numbers)?);
            }
            match &found {
                Some(other) if *other != path => {
                    return Err(unsupported(format!(
                        "the model's '{value}' goes through [{}] on one path and [{}] on another",
                        other.join(", "),
                        path.join(", ")
                    )));
                }
                _ => found = Some(path),
            }
        }
        Ok(found.unwrap_or_default())
    }

    fn all_nodes_used(&self) -> Result<()> {
        match self.used.iter().position(|u| !u) {
            Some(i) => Err(unsupported(format!(
                "{} is not on the chain from the input through the model to the outputs",
                describe(&self.graph.node[i])
            ))),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests;
