//! ONNX models made elsewhere -> the model IR ([`import_onnx`]), so they get the same modules.
//!
//! What is taken: scikit-learn models as skl2onnx writes them (opset 13 or so, `ai.onnx.ml` 1-3),
//! a chain from one float tensor input `[N, n_features]` through
//! - zero or more `ai.onnx.ml.Scaler` (-> [`Preprocess::Scale`]: both are `(x - offset) * scale`;
//!   a one-value offset or scale applies to every feature), `Cast` to float and `Identity`;
//! - one model op: `LinearRegressor` (one target, no post-transform), `LinearClassifier`,
//!   `TreeEnsembleClassifier` or `TreeEnsembleRegressor` (float attributes, not `*_as_tensor`);
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
//!   above the threshold; `BRANCH_GTE`/`BRANCH_GT` swap the branches (inputs are never NaN in the
//!   IR). `BRANCH_EQ`/`BRANCH_NEQ` are refused. Trees are renumbered from their root.
//! - `TreeEnsembleClassifier`: when each leaf puts its whole weight on one class and every leaf
//!   weighs `1 / n_trees`, the scores are vote shares: the IR's [`Aggregate::Vote`]. Otherwise
//!   (scikit-learn's soft-voting forests and single trees, whose leaves hold class shares, or
//!   weighted trees) every leaf keeps its class weights and the IR sums them
//!   ([`Aggregate::Sum`]), as the original does. With two classes and one class id in the
//!   weights (skl2onnx's binary form), a leaf's weight is class 1's share and class 0 gets the
//!   tree's rest, as onnxruntime reads it.
//! - `TreeEnsembleRegressor` leaves add up their target weights; `SUM` over trees becomes the
//!   IR's mean of `n_trees * value`, `AVERAGE` the mean of the values; `base_values` are added to
//!   every leaf.
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

use std::collections::{BTreeMap, HashMap};

use model_wasm::{Aggregate, Body, IR_VERSION, Link, ModelIr, Node, Output, Preprocess, Tree};
use prost::Message;
use tract_onnx::pb::tensor_proto::DataType;
use tract_onnx::pb::{AttributeProto, GraphProto, ModelProto, NodeProto, ValueInfoProto};

const DEFAULT: &str = "ai.onnx";

/// The ops the importer reads, by qualified name (`domain.op`).
pub const SUPPORTED_OPS: &[&str] = &[
    "ai.onnx.ml.Scaler",
    "ai.onnx.ml.LinearRegressor",
    "ai.onnx.ml.LinearClassifier",
    "ai.onnx.ml.TreeEnsembleClassifier",
    "ai.onnx.ml.TreeEnsembleRegressor",
    "ai.onnx.ml.Normalizer",
    "ai.onnx.ml.ZipMap",
    "ai.onnx.Cast",
    "ai.onnx.Identity",
    "ai.onnx.Softmax",
];

/// Relative slack when leaf weights, stored as `f32`, are compared (`1/9` as `f32` is not
/// `1/9`). Distinct shares of real forests differ by far more.
const WEIGHT_SLACK: f64 = 1e-6;

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
    let refused: Vec<String> = ops
        .iter()
        .filter(|op| !SUPPORTED_OPS.contains(&op.as_str()))
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
        preprocess: preprocess
            .into_iter()
            .map(|(offset, scale)| Preprocess::Scale {
                center: broadcast(offset, n, 0.0),
                scale: broadcast(scale, n, 1.0),
            })
            .collect(),
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

fn domain_name(domain: &str) -> &str {
    if domain.is_empty() { DEFAULT } else { domain }
}

/// `domain.op_type`, the default domain written `ai.onnx`.
fn qualified(node: &NodeProto) -> String {
    format!("{}.{}", domain_name(&node.domain), node.op_type)
}

/// A node, named for messages: `ai.onnx.ml.Scaler node 'Scaler1'`.
fn describe(node: &NodeProto) -> String {
    if node.name.is_empty() {
        format!("{} node", qualified(node))
    } else {
        format!("{} node '{}'", qualified(node), node.name)
    }
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

/// `values` for `n` features: as given, repeated when one value is given, `fill` when none.
fn broadcast(values: Vec<f64>, n: usize, fill: f64) -> Vec<f64> {
    match values.len() {
        0 => vec![fill; n],
        1 => vec![values[0]; n],
        _ => values,
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

/// `(offset, scale)` of one Scaler, as given (one value or one per feature).
type Scaling = (Vec<f64>, Vec<f64>);

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
                "ai.onnx.ml.Scaler" => {
                    let offset = floats(node, "offset").unwrap_or_default();
                    let scale = floats(node, "scale").unwrap_or_default();
                    scaling.push((to_f64(offset), to_f64(scale)));
                }
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
                | "ai.onnx.ml.TreeEnsembleRegressor" => return Ok((scaling, node)),
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
        let declared = tensor_type(self.input).and_then(|(_, dims)| match dims[..] {
            [_, Some(n)] if n > 0 => Some(n as usize),
            _ => None,
        });
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
        match (declared, implied) {
            (Some(n), _) => Ok(n),
            (None, Some(n)) if n > 0 => Ok(n),
            _ => Err(unsupported(format!(
                "the input '{}' does not have the shape [N, n_features] with a fixed n_features",
                self.input.name
            ))),
        }
    }

    fn model(
        &mut self,
        node: &'a NodeProto,
        n: usize,
        preprocess: &[Scaling],
        metadata: &HashMap<&str, &str>,
        notes: &mut Vec<String>,
    ) -> Result<(Body, Output)> {
        for (p, (offset, scale)) in preprocess.iter().enumerate() {
            for (what, values) in [("offset", offset), ("scale", scale)] {
                if values.len() > 1 && values.len() != n {
                    return Err(invalid(format!(
                        "Scaler {p}: {} {what} values for {n} features",
                        values.len()
                    )));
                }
            }
        }
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

/// Element type and dimensions (fixed ones as `Some`) of a tensor-typed value.
fn tensor_type(value: &ValueInfoProto) -> Option<(i32, Vec<Option<i64>>)> {
    use tract_onnx::pb::tensor_shape_proto::dimension::Value;
    use tract_onnx::pb::type_proto::Value as Type;
    let Some(Type::TensorType(tensor)) = value.r#type.as_ref()?.value.as_ref() else {
        return None;
    };
    let dims = tensor
        .shape
        .as_ref()
        .map(|s| {
            s.dim
                .iter()
                .map(|d| match d.value {
                    Some(Value::DimValue(v)) => Some(v),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    Some((tensor.elem_type, dims))
}

fn attribute<'n>(node: &'n NodeProto, name: &str) -> Option<&'n AttributeProto> {
    node.attribute.iter().find(|a| a.name == name)
}

fn floats<'n>(node: &'n NodeProto, name: &str) -> Option<&'n [f32]> {
    attribute(node, name).map(|a| a.floats.as_slice())
}

fn ints<'n>(node: &'n NodeProto, name: &str) -> Option<&'n [i64]> {
    attribute(node, name).map(|a| a.ints.as_slice())
}

fn int(node: &NodeProto, name: &str) -> Option<i64> {
    attribute(node, name).map(|a| a.i)
}

fn string(node: &NodeProto, name: &str) -> Option<String> {
    attribute(node, name).map(|a| String::from_utf8_lossy(&a.s).into_owned())
}

fn strings(node: &NodeProto, name: &str) -> Option<Vec<String>> {
    attribute(node, name).map(|a| {
        a.strings
            .iter()
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect()
    })
}

fn required<'n, T: ?Sized>(node: &NodeProto, name: &str, value: Option<&'n T>) -> Result<&'n T> {
    value.ok_or_else(|| invalid(format!("{} has no attribute '{name}'", describe(node))))
}

fn to_f64(values: &[f32]) -> Vec<f64> {
    values.iter().map(|v| f64::from(*v)).collect()
}

/// The classes, from `{ints_name}` (as decimal strings) or `classlabels_strings`.
fn class_labels(node: &NodeProto, ints_name: &str) -> Result<Vec<String>> {
    match (ints(node, ints_name), strings(node, "classlabels_strings")) {
        (Some(ints), _) if !ints.is_empty() => Ok(ints.iter().map(i64::to_string).collect()),
        (_, Some(strings)) if !strings.is_empty() => Ok(strings),
        _ => Err(invalid(format!(
            "{} has neither '{ints_name}' nor 'classlabels_strings'",
            describe(node)
        ))),
    }
}

/// Refuses a post-transform other than NONE.
fn no_post_transform(node: &NodeProto) -> Result<()> {
    match string(node, "post_transform").as_deref() {
        None | Some("NONE") => Ok(()),
        Some(other) => Err(unsupported(format!("{} with post_transform {other}", describe(node)))),
    }
}

fn linear_regressor(node: &NodeProto, n: usize) -> Result<Body> {
    no_post_transform(node)?;
    let targets = int(node, "targets").unwrap_or(1);
    if targets != 1 {
        return Err(unsupported(format!(
            "{} with {targets} targets (the IR predicts one value)",
            describe(node)
        )));
    }
    let weights = required(node, "coefficients", floats(node, "coefficients"))?;
    if weights.len() != n {
        return Err(invalid(format!(
            "{}: {} coefficients for {n} features",
            describe(node),
            weights.len()
        )));
    }
    let intercepts = match floats(node, "intercepts") {
        None | Some([]) => vec![0.0],
        Some([b]) => vec![f64::from(*b)],
        Some(other) => {
            return Err(invalid(format!(
                "{}: {} intercepts for one target",
                describe(node),
                other.len()
            )));
        }
    };
    Ok(Body::Linear {
        weights: to_f64(weights),
        intercepts,
        link: Link::Identity,
    })
}

/// How a LinearClassifier's scores end up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scores {
    /// `z`, untransformed.
    Raw,
    /// Probabilities: softmax over the rows, or binary sigmoid (already summing to one).
    Softmax,
    BinarySigmoid,
    /// A sigmoid per row, not summing to one (one-vs-rest).
    Logistic,
    /// One-vs-rest sigmoids divided by their sum.
    NormalizedLogistic,
}

fn linear_classifier(
    node: &NodeProto,
    n: usize,
    n_classes: usize,
    transforms: &[String],
    options: ImportOptions,
    notes: &mut Vec<String>,
) -> Result<Body> {
    let coefficients = required(node, "coefficients", floats(node, "coefficients"))?;
    let intercepts = floats(node, "intercepts").unwrap_or_default();
    let rows = if intercepts.is_empty() {
        coefficients.len() / n
    } else {
        intercepts.len()
    };
    if rows == 0 || coefficients.len() != rows * n || !(intercepts.is_empty() || intercepts.len() == rows) {
        return Err(invalid(format!(
            "{}: {} coefficients and {} intercepts for {n} features",
            describe(node),
            coefficients.len(),
            intercepts.len()
        )));
    }
    if !(rows == n_classes || (rows == 1 && n_classes == 2)) {
        return Err(invalid(format!(
            "{}: {rows} rows of coefficients for {n_classes} classes",
            describe(node)
        )));
    }
    let intercept = |k: usize| intercepts.get(k).copied().unwrap_or(0.0);
    let row = |k: usize| &coefficients[k * n..(k + 1) * n];
    // skl2onnx writes a binary model as two rows, the second the negation of the first.
    let complementary = rows == 2 && row(0).iter().zip(row(1)).all(|(a, b)| *a == -*b) && intercept(0) == -intercept(1);
    let binary = rows == 1 || complementary;
    let post = string(node, "post_transform").unwrap_or_else(|| "NONE".into());
    let mut scores = match post.as_str() {
        "NONE" => Scores::Raw,
        "SOFTMAX" if rows >= 2 => Scores::Softmax,
        "LOGISTIC" if binary => Scores::BinarySigmoid,
        "LOGISTIC" => Scores::Logistic,
        other => {
            return Err(unsupported(format!(
                "{} with post_transform {other} over {rows} row(s) of coefficients",
                describe(node)
            )));
        }
    };
    for t in transforms {
        scores = match (scores, t.as_str()) {
            (Scores::Softmax | Scores::BinarySigmoid, "Normalizer L1") => scores,
            (Scores::Logistic, "Normalizer L1") => Scores::NormalizedLogistic,
            (Scores::Raw, "Softmax") if rows >= 2 => Scores::Softmax,
            _ => {
                return Err(unsupported(format!(
                    "{t} after the {post} scores of {}",
                    describe(node)
                )));
            }
        };
    }
    let sigmoid_row = if rows == 1 { 0 } else { 1 };
    let sigmoid = || Body::Linear {
        weights: to_f64(row(sigmoid_row)),
        intercepts: vec![f64::from(intercept(sigmoid_row))],
        link: Link::Sigmoid,
    };
    let softmax = || Body::Linear {
        weights: to_f64(coefficients),
        intercepts: (0..rows).map(|k| f64::from(intercept(k))).collect(),
        link: Link::Softmax,
    };
    match scores {
        Scores::BinarySigmoid => Ok(sigmoid()),
        Scores::Softmax => Ok(softmax()),
        approximate => {
            let what = match approximate {
                Scores::Raw => "raw decision scores (post_transform NONE), not probabilities",
                Scores::Logistic => "one-vs-rest probabilities (a sigmoid per class, not summing to one)",
                _ => "one-vs-rest probabilities (a sigmoid per class, divided by their sum)",
            };
            if !options.labels_only {
                return Err(unsupported(format!(
                    "{} outputs {what}, which the IR's links (sigmoid for two classes, softmax) cannot give; \
                     the labels would be the same: import with --labels-only to accept other probabilities",
                    describe(node)
                )));
            }
            let (body, link) = if rows == 1 {
                (sigmoid(), "a sigmoid")
            } else {
                (softmax(), "a softmax")
            };
            notes.push(format!(
                "the original outputs {what}; the IR turns the same scores into probabilities with {link}: \
                 the labels are the same, the probabilities are not"
            ));
            Ok(body)
        }
    }
}

/// The `nodes_*` attributes of a tree ensemble, one entry per node.
struct RawNode {
    feature: i64,
    mode: String,
    value: f32,
    true_id: i64,
    false_id: i64,
}

/// Per tree id (in order), the nodes by node id.
type Forest = BTreeMap<i64, BTreeMap<i64, RawNode>>;

/// Reads and checks the `nodes_*` attributes; refuses double-precision attributes.
fn read_nodes(node: &NodeProto, n: usize) -> Result<Forest> {
    if let Some(a) = node.attribute.iter().find(|a| a.name.ends_with("_as_tensor")) {
        return Err(unsupported(format!(
            "{} has double-precision attributes ({}); only float ensembles can be imported",
            describe(node),
            a.name
        )));
    }
    let tree_ids = required(node, "nodes_treeids", ints(node, "nodes_treeids"))?;
    let node_ids = required(node, "nodes_nodeids", ints(node, "nodes_nodeids"))?;
    let features = required(node, "nodes_featureids", ints(node, "nodes_featureids"))?;
    let values = required(node, "nodes_values", floats(node, "nodes_values"))?;
    let modes =
        strings(node, "nodes_modes").ok_or_else(|| invalid(format!("{} has no nodes_modes", describe(node))))?;
    let true_ids = required(node, "nodes_truenodeids", ints(node, "nodes_truenodeids"))?;
    let false_ids = required(node, "nodes_falsenodeids", ints(node, "nodes_falsenodeids"))?;
    let len = tree_ids.len();
    if [
        node_ids.len(),
        features.len(),
        values.len(),
        modes.len(),
        true_ids.len(),
        false_ids.len(),
    ]
    .iter()
    .any(|l| *l != len)
    {
        return Err(invalid(format!(
            "{}: the nodes_* attributes have different lengths",
            describe(node)
        )));
    }
    if len == 0 {
        return Err(invalid(format!("{} has no nodes", describe(node))));
    }
    let mut forest = Forest::new();
    for i in 0..len {
        if modes[i] != "LEAF" && !(0..n as i64).contains(&features[i]) {
            return Err(invalid(format!(
                "{}: tree {}, node {} splits on feature {} of {n}",
                describe(node),
                tree_ids[i],
                node_ids[i],
                features[i]
            )));
        }
        let raw = RawNode {
            feature: features[i],
            mode: modes[i].clone(),
            value: values[i],
            true_id: true_ids[i],
            false_id: false_ids[i],
        };
        if forest
            .entry(tree_ids[i])
            .or_default()
            .insert(node_ids[i], raw)
            .is_some()
        {
            return Err(invalid(format!(
                "{}: tree {} has node {} twice",
                describe(node),
                tree_ids[i],
                node_ids[i]
            )));
        }
    }
    Ok(forest)
}

/// Leaf contents: `(tree id, node id) -> [(class or target id, weight)]`.
type LeafWeights = HashMap<(i64, i64), Vec<(i64, f32)>>;

fn read_leaf_weights(node: &NodeProto, prefix: &str, forest: &Forest) -> Result<LeafWeights> {
    let attr = |suffix: &str| format!("{prefix}_{suffix}");
    let trees = required(node, &attr("treeids"), ints(node, &attr("treeids")))?;
    let nodes = required(node, &attr("nodeids"), ints(node, &attr("nodeids")))?;
    let ids = required(node, &attr("ids"), ints(node, &attr("ids")))?;
    let weights = required(node, &attr("weights"), floats(node, &attr("weights")))?;
    if [nodes.len(), ids.len(), weights.len()]
        .iter()
        .any(|l| *l != trees.len())
    {
        return Err(invalid(format!(
            "{}: the {prefix}_* attributes have different lengths",
            describe(node)
        )));
    }
    let mut leaves = LeafWeights::new();
    for i in 0..trees.len() {
        match forest.get(&trees[i]).and_then(|t| t.get(&nodes[i])) {
            Some(raw) if raw.mode == "LEAF" => {}
            _ => {
                return Err(invalid(format!(
                    "{}: a weight for tree {}, node {}, which is not a leaf",
                    describe(node),
                    trees[i],
                    nodes[i]
                )));
            }
        }
        leaves
            .entry((trees[i], nodes[i]))
            .or_default()
            .push((ids[i], weights[i]));
    }
    Ok(leaves)
}

/// The ensemble's trees in the IR, renumbered from their roots; `leaf(tree id, node id)` gives
/// each leaf's IR value.
fn build_trees(node: &NodeProto, forest: &Forest, mut leaf: impl FnMut(i64, i64) -> Result<Node>) -> Result<Vec<Tree>> {
    let mut trees = Vec::with_capacity(forest.len());
    for (&t, nodes) in forest {
        let at = |id: i64, what: String| invalid(format!("{}: tree {t}, node {id}: {what}", describe(node)));
        // The root is the node no other node points at.
        let mut pointed: Vec<i64> = nodes
            .values()
            .filter(|r| r.mode != "LEAF")
            .flat_map(|r| [r.true_id, r.false_id])
            .collect();
        pointed.sort_unstable();
        let roots: Vec<i64> = nodes
            .keys()
            .copied()
            .filter(|id| pointed.binary_search(id).is_err())
            .collect();
        let [root] = roots[..] else {
            return Err(invalid(format!(
                "{}: tree {t} has {} roots (nodes no other node points at)",
                describe(node),
                roots.len()
            )));
        };
        // Breadth first from the root: IR index = position in `order`.
        let mut order = vec![root];
        let mut index: HashMap<i64, u32> = HashMap::from([(root, 0)]);
        let mut next = 0;
        while next < order.len() {
            let id = order[next];
            let raw = &nodes[&id];
            if raw.mode != "LEAF" {
                for child in [raw.true_id, raw.false_id] {
                    if !nodes.contains_key(&child) {
                        return Err(at(id, format!("child {child} does not exist")));
                    }
                    if index.contains_key(&child) {
                        return Err(at(child, "is reached twice".into()));
                    }
                    index.insert(child, order.len() as u32);
                    order.push(child);
                }
            }
            next += 1;
        }
        if order.len() != nodes.len() {
            return Err(invalid(format!(
                "{}: tree {t}: {} nodes are not reachable from the root",
                describe(node),
                nodes.len() - order.len()
            )));
        }
        let mut ir_nodes = Vec::with_capacity(order.len());
        for &id in &order {
            let raw = &nodes[&id];
            // Every split's children were numbered by the walk above.
            let children = || (index[&raw.true_id], index[&raw.false_id]);
            let t_value = raw.value;
            let next_up = || {
                let up = t_value.next_up();
                if up.is_finite() {
                    Ok(up)
                } else {
                    Err(at(id, format!("threshold {t_value} has no finite f32 above it")))
                }
            };
            if raw.mode != "LEAF" && !t_value.is_finite() {
                return Err(at(id, format!("threshold {t_value} is not a finite number")));
            }
            // Left when (x as f32) < threshold; `swap` sends the ONNX "true" branch right.
            let split = |threshold: f32, swap: bool| {
                let (yes, no) = children();
                let (left, right) = if swap { (no, yes) } else { (yes, no) };
                Node::Split {
                    feature: raw.feature as u32,
                    threshold,
                    left,
                    right,
                }
            };
            ir_nodes.push(match raw.mode.as_str() {
                "LEAF" => leaf(t, id)?,
                // x < t
                "BRANCH_LT" => split(t_value, false),
                // x <= t  <=>  x < next_up(t), for f32 x
                "BRANCH_LEQ" => split(next_up()?, false),
                // x >= t  <=>  !(x < t)
                "BRANCH_GTE" => split(t_value, true),
                // x > t  <=>  !(x < next_up(t))
                "BRANCH_GT" => split(next_up()?, true),
                other => {
                    return Err(unsupported(format!(
                        "{}: tree {t}, node {id} uses the split mode {other} (BRANCH_LT, BRANCH_LEQ, BRANCH_GT and BRANCH_GTE are supported)",
                        describe(node)
                    )));
                }
            });
        }
        trees.push(Tree { nodes: ir_nodes });
    }
    Ok(trees)
}

fn no_base_values(node: &NodeProto) -> Result<()> {
    match floats(node, "base_values") {
        Some(values) if values.iter().any(|v| *v != 0.0) => Err(unsupported(format!(
            "{} with non-zero base_values (the IR's vote has no base score)",
            describe(node)
        ))),
        _ => Ok(()),
    }
}

fn tree_classifier(node: &NodeProto, n: usize, n_classes: usize, notes: &mut Vec<String>) -> Result<Body> {
    no_post_transform(node)?;
    no_base_values(node)?;
    let forest = read_nodes(node, n)?;
    let leaves = read_leaf_weights(node, "class", &forest)?;
    let n_trees = forest.len();
    if let Some((_, w)) = leaves.values().flatten().find(|(_, w)| *w < 0.0 || !w.is_finite()) {
        return Err(unsupported(format!(
            "{} has a leaf weight of {w}: only votes and class shares (non-negative) can be imported",
            describe(node)
        )));
    }
    let mut class_ids: Vec<i64> = leaves.values().flatten().map(|(c, _)| *c).collect();
    class_ids.sort_unstable();
    class_ids.dedup();
    if let Some(c) = class_ids.iter().find(|c| !(0..n_classes as i64).contains(c)) {
        return Err(invalid(format!(
            "{}: class id {c} of {n_classes} classes",
            describe(node)
        )));
    }
    // onnxruntime's binary form: two classes and one class id; a leaf's weight is class 1's
    // score, and class 0 gets the tree's share (1 / n_trees) minus it.
    let binary_form = n_classes == 2 && class_ids.len() == 1;
    let unit = 1.0 / n_trees as f64;
    let distribution = |t: i64, id: i64| -> Vec<f64> {
        let weights = leaves.get(&(t, id)).map_or(&[][..], Vec::as_slice);
        let mut d = vec![0.0; n_classes];
        if binary_form {
            let w: f64 = weights.iter().map(|(_, w)| f64::from(*w)).sum();
            d[0] = unit - w;
            d[1] = w;
        } else {
            for (c, w) in weights {
                d[*c as usize] += f64::from(*w);
            }
        }
        d
    };
    // Per leaf: its majority class (ties to the lowest), whether it is pure, and its total.
    let mut impure = 0usize;
    let mut off_unit = 0usize;
    let mut n_leaves = 0usize;
    let votes = build_trees(node, &forest, |t, id| {
        let d = distribution(t, id);
        let total: f64 = d.iter().sum();
        let mut class = 0;
        for (k, v) in d.iter().enumerate() {
            if *v > d[class] {
                class = k;
            }
        }
        let slack = WEIGHT_SLACK * d[class].abs().max(unit);
        n_leaves += 1;
        if d.iter().enumerate().any(|(k, v)| k != class && v.abs() > slack) {
            impure += 1;
        }
        if (total - unit).abs() > WEIGHT_SLACK * unit {
            off_unit += 1;
        }
        Ok(Node::Leaf { value: class as f64 })
    })?;
    if impure == 0 && off_unit == 0 {
        // A plain vote: the smallest module, and the same answers.
        return Ok(Body::Trees {
            trees: votes,
            aggregate: Aggregate::Vote,
        });
    }
    // Class distributions (a soft vote) or weighted trees: the leaves keep their weights and the
    // IR sums them, as the original does.
    let trees = build_trees(node, &forest, |t, id| {
        Ok(Node::Weights {
            weights: distribution(t, id).into_iter().map(|w| w as f32).collect(),
        })
    })?;
    notes.push(if impure > 0 {
        format!(
            "{impure} of the {n_leaves} leaves hold class distributions: the probabilities are the sums of \
             the leaves' class weights over the trees (a soft vote), as in the original"
        )
    } else {
        format!("{off_unit} of the {n_leaves} leaves do not weigh 1/{n_trees}: the trees' class weights are summed")
    });
    Ok(Body::Trees {
        trees,
        aggregate: Aggregate::Sum,
    })
}

fn tree_regressor(node: &NodeProto, n: usize) -> Result<Body> {
    no_post_transform(node)?;
    let targets = int(node, "n_targets").unwrap_or(1);
    if targets != 1 {
        return Err(unsupported(format!(
            "{} with {targets} targets (the IR predicts one value)",
            describe(node)
        )));
    }
    let base = match floats(node, "base_values") {
        None | Some([]) => 0.0,
        Some([b]) => f64::from(*b),
        Some(other) => {
            return Err(invalid(format!(
                "{}: {} base values for one target",
                describe(node),
                other.len()
            )));
        }
    };
    let forest = read_nodes(node, n)?;
    let leaves = read_leaf_weights(node, "target", &forest)?;
    if leaves.values().flatten().any(|(target, _)| *target != 0) {
        return Err(invalid(format!("{}: a target id other than 0", describe(node))));
    }
    let n_trees = forest.len() as f64;
    let aggregate = string(node, "aggregate_function").unwrap_or_else(|| "SUM".into());
    // The IR averages the leaves: a sum over trees is the mean of n_trees * value.
    let factor = match aggregate.as_str() {
        "SUM" => n_trees,
        "AVERAGE" => 1.0,
        other => {
            return Err(unsupported(format!(
                "{} with aggregate_function {other} (SUM and AVERAGE are supported)",
                describe(node)
            )));
        }
    };
    let trees = build_trees(node, &forest, |t, id| {
        let value: f64 = leaves
            .get(&(t, id))
            .map_or(0.0, |w| w.iter().map(|(_, w)| f64::from(*w)).sum());
        Ok(Node::Leaf {
            value: value * factor + base,
        })
    })?;
    Ok(Body::Trees {
        trees,
        aggregate: Aggregate::Average,
    })
}

#[cfg(test)]
#[path = "import_tests.rs"]
mod tests;
