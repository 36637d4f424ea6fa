//! IR -> ONNX `ModelProto`, encoded with tract-onnx's generated protobuf types.

use model_wasm::ir::{Cast, Missing, ZERO_THRESHOLD};
use model_wasm::{Aggregate, Body, Link, ModelIr, Node, Output, Preprocess, Tree};
use prost::Message;
use tract_onnx::pb::attribute_proto::AttributeType;
use tract_onnx::pb::tensor_proto::DataType;
use tract_onnx::pb::tensor_shape_proto::{Dimension, dimension};
use tract_onnx::pb::{
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, StringStringEntryProto, TensorProto,
    TensorShapeProto, TypeProto, ValueInfoProto, type_proto,
};

use super::{INPUT, LABEL, OnnxError, PROBABILITIES, VALUE};

/// ONNX IR version 8 (ONNX 1.10): read by every runtime that knows opset 13.
const IR_VERSION: i64 = 8;
/// The default domain's opset: ArgMax with `select_last_index`, Softmax over one axis.
const OPSET: i64 = 13;
const ML_DOMAIN: &str = "ai.onnx.ml";
const ML_OPSET: i64 = 3;
/// The symbolic batch dimension.
const BATCH: &str = "batch";
/// Tree ensembles always declare at least this many classes: with two or fewer, tract and
/// onnxruntime each take a "binary" special case that rewrites the scores (see the module doc).
const MIN_ENSEMBLE_CLASSES: usize = 3;
/// Leaf indices travel through the ensemble as `f32` weights, exact up to 2^24.
const MAX_LEAVES: usize = 1 << 24;

/// Why the ONNX file would not answer as the IR does, if it would not: every body, split kind and
/// missing-value rule is written (see the [module documentation](super)), so what is left is size:
/// a tree ensemble whose leaves travel as `f32` indices has at most 2^24 of them.
pub fn unfaithful(ir: &ModelIr) -> Option<String> {
    let leaves = ir
        .trees()
        .iter()
        .flat_map(|t| &t.nodes)
        .filter(|n| matches!(n, Node::Leaf { .. }))
        .count();
    let indexed = matches!(
        ir.body,
        Body::Boosted { .. }
            | Body::Trees {
                aggregate: Aggregate::Average,
                ..
            }
    );
    (indexed && leaves > MAX_LEAVES)
        .then(|| format!("{leaves} leaves in the ensemble; at most {MAX_LEAVES} can be exported"))
}

/// Writes `ir` as an ONNX model (see the [module documentation](super) for the graphs).
///
/// The IR is validated first; `model_name` becomes the graph name. A model ONNX would not
/// answer as the IR does is refused with the reason ([`unfaithful`]).
pub fn to_onnx(ir: &ModelIr, model_name: &str) -> Result<Vec<u8>, OnnxError> {
    ir.validate().map_err(OnnxError::InvalidModel)?;
    if let Some(reason) = unfaithful(ir) {
        return Err(OnnxError::Unsupported(reason));
    }
    let mut g = GraphBuilder::default();
    let n = ir.n_features();

    let uses_ml = !matches!(ir.body, Body::Linear { .. });
    let outputs = match &ir.body {
        Body::Linear {
            weights,
            intercepts,
            link,
        } => {
            let x = g.cast(INPUT, DataType::Double);
            let x = scale(&mut g, ir, x);
            let k = intercepts.len();
            // MatMul takes the weights as [n_features, n_outputs]: the IR's rows transposed.
            let w_t: Vec<f64> = (0..n * k).map(|j| weights[(j % k) * n + j / k]).collect();
            let w = g.initializer_f64("weights", &[n, k], &w_t);
            let b = g.initializer_f64("intercepts", &[k], intercepts);
            let xw = g.op("MatMul", &[&x, &w], vec![]);
            let z = g.op("Add", &[&xw, &b], vec![]);
            link_outputs(&mut g, &z, *link, ir)
        }
        Body::Boosted {
            trees,
            tree_outputs,
            base_score,
            link,
        } => {
            // Tree t puts the global index of the leaf it reaches in score column t; the indices
            // pick the margins (f64) with Gather, and a MatMul with a 0/1 matrix adds each tree's
            // margin to its output, in f64, before the base score and the link.
            let x = tree_input(&mut g, ir);
            let reached = reached_leaf_values(&mut g, &x, trees);
            let k = base_score.len();
            let mut to_output = vec![0.0; trees.len() * k];
            for (t, &output) in tree_outputs.iter().enumerate() {
                to_output[t * k + output as usize] = 1.0;
            }
            let to_output = g.initializer_f64("tree_outputs", &[trees.len(), k], &to_output);
            let sums = g.op("MatMul", &[&reached, &to_output], vec![]);
            let base = g.initializer_f64("base_score", &[k], base_score);
            let z = g.op("Add", &[&sums, &base], vec![]);
            link_outputs(&mut g, &z, *link, ir)
        }
        Body::Trees { trees, aggregate } => {
            let x = tree_input(&mut g, ir);
            match aggregate {
                Aggregate::Vote => {
                    // Each leaf adds 1 to its class: the scores are vote counts, exact in f32.
                    let n_classes = ir.n_outputs();
                    let mut leaves = LeafWeights::default();
                    for (t, tree) in trees.iter().enumerate() {
                        for (i, node) in tree.nodes.iter().enumerate() {
                            if let Node::Leaf { value } = node {
                                leaves.push(t, i, *value as usize, 1.0);
                            }
                        }
                    }
                    let slots = n_classes.max(MIN_ENSEMBLE_CLASSES);
                    let scores = ensemble(&mut g, &x, trees, slots, leaves);
                    let votes = g.slice_columns(&scores, n_classes);
                    let n_trees = g.initializer_f32("n_trees", &[], &[trees.len() as f32]);
                    g.op_named(
                        "ArgMax",
                        &[&votes],
                        LABEL,
                        vec![
                            attr_int("axis", 1),
                            attr_int("keepdims", 0),
                            attr_int("select_last_index", 0),
                        ],
                    );
                    g.op_named("Div", &[&votes, &n_trees], PROBABILITIES, vec![]);
                    vec![
                        value_info(LABEL, DataType::Int64, None),
                        value_info(PROBABILITIES, DataType::Float, Some(n_classes)),
                    ]
                }
                Aggregate::Sum => {
                    // Each leaf adds its class weights: the scores are the class sums.
                    let n_classes = ir.n_outputs();
                    let mut leaves = LeafWeights::default();
                    for (t, tree) in trees.iter().enumerate() {
                        for (i, node) in tree.nodes.iter().enumerate() {
                            if let Node::Weights { weights } = node {
                                for (k, w) in weights.iter().enumerate() {
                                    leaves.push(t, i, k, *w);
                                }
                            }
                        }
                    }
                    let slots = n_classes.max(MIN_ENSEMBLE_CLASSES);
                    let scores = ensemble(&mut g, &x, trees, slots, leaves);
                    let sums = g.slice_columns(&scores, n_classes);
                    g.op_named(
                        "ArgMax",
                        &[&sums],
                        LABEL,
                        vec![
                            attr_int("axis", 1),
                            attr_int("keepdims", 0),
                            attr_int("select_last_index", 0),
                        ],
                    );
                    g.op_named("Identity", &[&sums], PROBABILITIES, vec![]);
                    vec![
                        value_info(LABEL, DataType::Int64, None),
                        value_info(PROBABILITIES, DataType::Float, Some(n_classes)),
                    ]
                }
                Aggregate::Average => {
                    // As a boosted sum, with the mean over the trees (ReduceMean, f64) in place
                    // of the sums: the value is the evaluator's mean rounded once to f32.
                    let reached = reached_leaf_values(&mut g, &x, trees);
                    let mean = g.op(
                        "ReduceMean",
                        &[&reached],
                        vec![attr_ints("axes", &[1]), attr_int("keepdims", 1)],
                    );
                    g.op_named("Cast", &[&mean], VALUE, vec![attr_int("to", DataType::Float as i64)]);
                    vec![value_info(VALUE, DataType::Float, Some(1))]
                }
            }
        }
    };

    let mut metadata = vec![
        entry(
            "features",
            serde_json::to_string(&ir.features).expect("strings serialize"),
        ),
        entry("wasmline.ir_version", ir.ir_version.to_string()),
    ];
    match &ir.output {
        Output::Classification { classes } => {
            metadata.push(entry("task", "classification".into()));
            metadata.push(entry(
                "classes",
                serde_json::to_string(classes).expect("strings serialize"),
            ));
        }
        Output::Regression { target } => {
            metadata.push(entry("task", "regression".into()));
            metadata.push(entry("target", target.clone()));
        }
    }
    let doc = match &ir.output {
        Output::Classification { .. } => {
            "input: float32 [batch, n_features] in the order of metadata 'features'. \
             label: int64 [batch], the index of the class in metadata 'classes' (ties go to the lowest index). \
             probabilities: float32 [batch, n_classes]."
        }
        Output::Regression { .. } => {
            "input: float32 [batch, n_features] in the order of metadata 'features'. value: float32 [batch, 1]."
        }
    };

    let mut opset_import = vec![OperatorSetIdProto {
        domain: String::new(),
        version: OPSET,
    }];
    if uses_ml {
        opset_import.push(OperatorSetIdProto {
            domain: ML_DOMAIN.into(),
            version: ML_OPSET,
        });
    }
    let model = ModelProto {
        ir_version: IR_VERSION,
        opset_import,
        producer_name: "wasmline".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        doc_string: doc.into(),
        graph: Some(GraphProto {
            name: model_name.into(),
            node: g.nodes,
            initializer: g.initializers,
            input: vec![value_info(INPUT, DataType::Float, Some(n))],
            output: outputs,
            ..Default::default()
        }),
        metadata_props: metadata,
        ..Default::default()
    };
    Ok(model.encode_to_vec())
}

/// Applies the preprocessing steps to `x` (f64).
fn scale(g: &mut GraphBuilder, ir: &ModelIr, mut x: String) -> String {
    let n = ir.n_features();
    for (p, step) in ir.preprocess.iter().enumerate() {
        match step {
            Preprocess::Scale { center, scale } => {
                let c = g.initializer_f64(&format!("scale{p}_center"), &[n], center);
                let s = g.initializer_f64(&format!("scale{p}_scale"), &[n], scale);
                let centered = g.op("Sub", &[&x, &c], vec![]);
                x = g.op("Mul", &[&centered, &s], vec![]);
            }
        }
    }
    x
}

/// The outputs of a score `z` ([batch, k] f64) through `link`: a regressor's `value`, or a
/// classifier's `label` and `probabilities` (see [`class_outputs`]).
fn link_outputs(g: &mut GraphBuilder, z: &str, link: Link, ir: &ModelIr) -> Vec<ValueInfoProto> {
    let value = |g: &mut GraphBuilder, v: &str| {
        g.op_named("Cast", &[v], VALUE, vec![attr_int("to", DataType::Float as i64)]);
        vec![value_info(VALUE, DataType::Float, Some(1))]
    };
    match (link, &ir.output) {
        (Link::Identity, _) => value(g, z),
        (Link::Exp, _) => {
            let e = g.op("Exp", &[z], vec![]);
            value(g, &e)
        }
        (Link::Sigmoid, output) => {
            // p = 1 / (1 + exp(-z)) in f64 (tract's Sigmoid op is f32 only), probabilities
            // [1 - p, p]. The evaluator uses this form for z >= 0 and exp(z) / (1 + exp(z))
            // below, which differs in the last bits of an f64 only.
            let one = g.initializer_f64("one", &[], &[1.0]);
            let minus_z = g.op("Neg", &[z], vec![]);
            let e = g.op("Exp", &[&minus_z], vec![]);
            let denominator = g.op("Add", &[&one, &e], vec![]);
            let p = g.op("Div", &[&one, &denominator], vec![]);
            if matches!(output, Output::Regression { .. }) {
                return value(g, &p);
            }
            let q = g.op("Sub", &[&one, &p], vec![]);
            let probabilities = g.op("Concat", &[&q, &p], vec![attr_int("axis", 1)]);
            class_outputs(g, &probabilities, ir)
        }
        (Link::Softmax, _) => {
            let probabilities = g.op("Softmax", &[z], vec![attr_int("axis", 1)]);
            class_outputs(g, &probabilities, ir)
        }
    }
}

/// The f32 tensor a tree ensemble reads, [batch, columns]: the input (scaled in f64 first, then
/// rounded to f32 once, as in the evaluator), then one block of `n_features` columns per other
/// way a split reads a value (see [`ReadAs`]), derived from it.
struct TreeInput {
    name: String,
    /// The first column of each block, by [`ReadAs`] (the plain values start at 0).
    blocks: Vec<(ReadAs, usize)>,
}

/// How a split reads its feature's value, each from its own block of columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReadAs {
    /// The value as it is.
    Value,
    /// XGBoost's category (`Cast::F32`): `-1` below zero, else `floor(x)`; NaN stays NaN.
    CategoryF32,
    /// LightGBM's category (`Cast::F64`, C's `(int)x`): `x` truncated toward zero (`-0.5` is
    /// category 0, `-1.0` none); NaN stays NaN.
    CategoryF64,
    /// LightGBM's zero missing type: `|x| <= 1e-35` becomes NaN, so the missing-value rule
    /// routes it.
    ZeroAsMissing,
}

impl ReadAs {
    fn of(node: &Node) -> Option<ReadAs> {
        Some(match node {
            Node::SplitIn { cast: Cast::F32, .. } => ReadAs::CategoryF32,
            Node::SplitIn { cast: Cast::F64, .. } => ReadAs::CategoryF64,
            // BRANCH_EQ's own test.
            Node::SplitIn { cast: Cast::Exact, .. } => ReadAs::Value,
            Node::Split { missing, .. } | Node::SplitLe { missing, .. } => match missing {
                Missing::ZeroLeft | Missing::ZeroRight => ReadAs::ZeroAsMissing,
                _ => ReadAs::Value,
            },
            Node::Leaf { .. } | Node::Weights { .. } => return None,
        })
    }
}

impl TreeInput {
    /// The column a split reads its feature from.
    fn column(&self, node: &Node) -> i64 {
        let feature = node.split_feature().expect("a split");
        let read_as = ReadAs::of(node).expect("a split");
        let start = self
            .blocks
            .iter()
            .find(|(r, _)| *r == read_as)
            .map_or(0, |(_, start)| *start);
        (start + feature as usize) as i64
    }
}

fn tree_input(g: &mut GraphBuilder, ir: &ModelIr) -> TreeInput {
    let x = if ir.preprocess.is_empty() {
        INPUT.to_string()
    } else {
        let x = g.cast(INPUT, DataType::Double);
        let x = scale(g, ir, x);
        g.cast(&x, DataType::Float)
    };
    let mut kinds: Vec<ReadAs> = ir
        .trees()
        .iter()
        .flat_map(|t| &t.nodes)
        .filter_map(ReadAs::of)
        .collect();
    kinds.sort_by_key(|r| *r as u8);
    kinds.dedup();
    kinds.retain(|r| *r != ReadAs::Value);
    if kinds.is_empty() {
        return TreeInput {
            name: x,
            blocks: Vec::new(),
        };
    }
    let n = ir.n_features();
    // `x < 0`, made once, for the category blocks only.
    let mut negative = None;
    let mut is_negative = |g: &mut GraphBuilder| -> String {
        negative
            .get_or_insert_with(|| {
                let zero = g.initializer_f32("zero", &[], &[0.0]);
                g.op("Less", &[&x, &zero], vec![])
            })
            .clone()
    };
    let mut parts = vec![x.clone()];
    let mut blocks = Vec::new();
    for (b, kind) in kinds.into_iter().enumerate() {
        let part = match kind {
            ReadAs::Value => unreachable!("removed above"),
            ReadAs::CategoryF32 => {
                let negative = is_negative(g);
                let minus_one = g.initializer_f32("minus_one", &[], &[-1.0]);
                let floor = g.op("Floor", &[&x], vec![]);
                g.op("Where", &[&negative, &minus_one, &floor], vec![])
            }
            ReadAs::CategoryF64 => {
                let negative = is_negative(g);
                let ceil = g.op("Ceil", &[&x], vec![]);
                let floor = g.op("Floor", &[&x], vec![]);
                g.op("Where", &[&negative, &ceil, &floor], vec![])
            }
            ReadAs::ZeroAsMissing => {
                let magnitude = g.op("Abs", &[&x], vec![]);
                let limit = g.initializer_f32("zero_threshold", &[], &[ZERO_THRESHOLD as f32]);
                let tiny = g.op("LessOrEqual", &[&magnitude, &limit], vec![]);
                let nan = g.initializer_f32("nan", &[], &[f32::NAN]);
                g.op("Where", &[&tiny, &nan, &x], vec![])
            }
        };
        parts.push(part);
        blocks.push((kind, (b + 1) * n));
    }
    let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
    let name = g.op("Concat", &refs, vec![attr_int("axis", 1)]);
    TreeInput { name, blocks }
}

/// One column per tree, each leaf adding its global index (an exact `f32` integer) to its
/// tree's column, and the leaf values in that order.
fn leaf_indices(trees: &[Tree]) -> (LeafWeights, Vec<f64>) {
    let mut leaves = LeafWeights::default();
    let mut values = Vec::new();
    for (t, tree) in trees.iter().enumerate() {
        for (i, node) in tree.nodes.iter().enumerate() {
            if let Node::Leaf { value } = node {
                leaves.push(t, i, t, values.len() as f32);
                values.push(*value);
            }
        }
    }
    (leaves, values)
}

/// The value of the leaf each tree reaches, [batch, n_trees] f64: the ensemble gives the leaf
/// indices ([`leaf_indices`]), `Gather` picks their values.
fn reached_leaf_values(g: &mut GraphBuilder, x: &TreeInput, trees: &[Tree]) -> String {
    let (leaves, values) = leaf_indices(trees);
    let slots = trees.len().max(MIN_ENSEMBLE_CLASSES);
    let scores = ensemble(g, x, trees, slots, leaves);
    let leaf_ids = g.slice_columns(&scores, trees.len());
    let leaf_ids = g.cast(&leaf_ids, DataType::Int64);
    let leaf_values = g.initializer_f64("leaf_values", &[values.len()], &values);
    g.op("Gather", &[&leaf_values, &leaf_ids], vec![attr_int("axis", 0)])
}

/// The largest `f32` at or below `t`: for an `f32` input `x`, `x <= t` in `f64` exactly when
/// `x <= f32_at_or_below(t)`. `f64::MAX` (LightGBM's `threshold=inf`, every number goes left)
/// stays above everything: +inf, so that an `f64` too large for the float input, which arrives
/// as +inf, goes left too.
fn f32_at_or_below(t: f64) -> f32 {
    if t == f64::MAX {
        return f32::INFINITY;
    }
    let f = t as f32;
    if f64::from(f) > t { f.next_down() } else { f }
}

/// `label` (ArgMax over the f64 probabilities, ties to the lowest index, like the evaluator) and
/// `probabilities` rounded to f32.
fn class_outputs(g: &mut GraphBuilder, probabilities: &str, ir: &ModelIr) -> Vec<ValueInfoProto> {
    g.op_named(
        "ArgMax",
        &[probabilities],
        LABEL,
        vec![
            attr_int("axis", 1),
            attr_int("keepdims", 0),
            attr_int("select_last_index", 0),
        ],
    );
    g.op_named(
        "Cast",
        &[probabilities],
        PROBABILITIES,
        vec![attr_int("to", DataType::Float as i64)],
    );
    vec![
        value_info(LABEL, DataType::Int64, None),
        value_info(PROBABILITIES, DataType::Float, Some(ir.n_outputs())),
    ]
}

/// The `class_*` attributes of a TreeEnsembleClassifier: one weight per leaf.
#[derive(Default)]
struct LeafWeights {
    tree_ids: Vec<i64>,
    node_ids: Vec<i64>,
    class_ids: Vec<i64>,
    weights: Vec<f32>,
}

impl LeafWeights {
    fn push(&mut self, tree: usize, node: usize, class: usize, weight: f32) {
        self.tree_ids.push(tree as i64);
        self.node_ids.push(node as i64);
        self.class_ids.push(class as i64);
        self.weights.push(weight);
    }
}

/// An `ai.onnx.ml` TreeEnsembleClassifier over `x` with `slots` classes (0..slots) and no
/// post-transform; returns its scores, [batch, slots] f32 (its label output is not used).
///
/// Node `i` of a tree keeps id `i`. A numerical split is `BRANCH_LT` on its `f32` threshold, or
/// `BRANCH_LEQ` on the largest `f32` at or below its `f64` one; a category set is a chain of
/// `BRANCH_EQ` nodes, one per category (ids after the tree's own), whose true branches all go to
/// the split's left child and whose last false branch goes to its right child (an empty set is
/// a `BRANCH_LT` against -inf). `nodes_missing_value_tracks_true` is where the split sends NaN.
fn ensemble(g: &mut GraphBuilder, x: &TreeInput, trees: &[Tree], slots: usize, leaves: LeafWeights) -> String {
    let mut tree_ids = Vec::new();
    let mut node_ids = Vec::new();
    let mut feature_ids = Vec::new();
    let mut modes = Vec::new();
    let mut values = Vec::new();
    let mut true_ids = Vec::new();
    let mut false_ids = Vec::new();
    let mut nan_true = Vec::new();
    let mut push =
        |t: usize, id: usize, feature: i64, mode: &'static str, value: f32, yes: usize, no: usize, nan: bool| {
            tree_ids.push(t as i64);
            node_ids.push(id as i64);
            feature_ids.push(feature);
            modes.push(mode);
            values.push(value);
            true_ids.push(yes as i64);
            false_ids.push(no as i64);
            nan_true.push(i64::from(nan));
        };
    for (t, tree) in trees.iter().enumerate() {
        let mut next_id = tree.nodes.len();
        let mut chains = Vec::new();
        for (i, node) in tree.nodes.iter().enumerate() {
            let Some((left, right)) = node.children() else {
                push(t, i, 0, "LEAF", 0.0, 0, 0, false);
                continue;
            };
            let (left, right) = (left as usize, right as usize);
            let column = x.column(node);
            let nan_left = node.missing().is_some_and(|m| !m.is_refuse()) && node.goes_left(f64::NAN);
            match node {
                Node::Split { threshold, .. } => push(t, i, column, "BRANCH_LT", *threshold, left, right, nan_left),
                Node::SplitLe { threshold, .. } => push(
                    t,
                    i,
                    column,
                    "BRANCH_LEQ",
                    f32_at_or_below(*threshold),
                    left,
                    right,
                    nan_left,
                ),
                Node::SplitIn { categories, .. } => match categories.split_first() {
                    None => push(t, i, column, "BRANCH_LT", f32::NEG_INFINITY, left, right, nan_left),
                    Some((first, rest)) => {
                        let no = if rest.is_empty() { right } else { next_id };
                        push(t, i, column, "BRANCH_EQ", *first as f32, left, no, nan_left);
                        for (j, c) in rest.iter().enumerate() {
                            let no = if j + 1 == rest.len() { right } else { next_id + 1 };
                            chains.push((next_id, column, *c as f32, left, no, nan_left));
                            next_id += 1;
                        }
                    }
                },
                Node::Leaf { .. } | Node::Weights { .. } => unreachable!("a split"),
            }
        }
        for (id, column, category, left, no, nan_left) in chains {
            push(t, id, column, "BRANCH_EQ", category, left, no, nan_left);
        }
    }
    let labels: Vec<i64> = (0..slots as i64).collect();
    let unused_label = g.fresh("ensemble_label");
    let scores = g.fresh("ensemble_scores");
    let node_name = g.fresh("TreeEnsembleClassifier");
    let mut attribute = vec![
        attr_ints("classlabels_int64s", &labels),
        attr_ints("nodes_treeids", &tree_ids),
        attr_ints("nodes_nodeids", &node_ids),
        attr_ints("nodes_featureids", &feature_ids),
        attr_strings("nodes_modes", &modes),
        attr_floats("nodes_values", &values),
        attr_ints("nodes_truenodeids", &true_ids),
        attr_ints("nodes_falsenodeids", &false_ids),
        attr_ints("class_treeids", &leaves.tree_ids),
        attr_ints("class_nodeids", &leaves.node_ids),
        attr_ints("class_ids", &leaves.class_ids),
        attr_floats("class_weights", &leaves.weights),
        attr_string("post_transform", "NONE"),
    ];
    if nan_true.contains(&1) {
        attribute.push(attr_ints("nodes_missing_value_tracks_true", &nan_true));
    }
    g.nodes.push(NodeProto {
        input: vec![x.name.clone()],
        output: vec![unused_label, scores.clone()],
        name: node_name,
        op_type: "TreeEnsembleClassifier".into(),
        domain: ML_DOMAIN.into(),
        attribute,
        ..Default::default()
    });
    scores
}

/// Nodes and initializers, with fresh names for intermediate values.
#[derive(Default)]
struct GraphBuilder {
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
    counter: usize,
}

impl GraphBuilder {
    fn fresh(&mut self, stem: &str) -> String {
        self.counter += 1;
        format!("{stem}_{}", self.counter)
    }

    /// A node of the default domain with one output, named after the op.
    fn op(&mut self, op_type: &str, inputs: &[&str], attribute: Vec<AttributeProto>) -> String {
        let output = self.fresh(&op_type.to_lowercase());
        self.op_named(op_type, inputs, &output, attribute)
    }

    fn op_named(&mut self, op_type: &str, inputs: &[&str], output: &str, attribute: Vec<AttributeProto>) -> String {
        let name = self.fresh(op_type);
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![output.into()],
            name,
            op_type: op_type.into(),
            attribute,
            ..Default::default()
        });
        output.into()
    }

    fn cast(&mut self, x: &str, to: DataType) -> String {
        self.op("Cast", &[x], vec![attr_int("to", to as i64)])
    }

    /// Columns `0..n` of a [batch, m] tensor.
    fn slice_columns(&mut self, x: &str, n: usize) -> String {
        let starts = self.initializer_i64(&[0]);
        let ends = self.initializer_i64(&[n as i64]);
        let axes = self.initializer_i64(&[1]);
        self.op("Slice", &[x, &starts, &ends, &axes], vec![])
    }

    fn initializer_f64(&mut self, stem: &str, dims: &[usize], data: &[f64]) -> String {
        let name = self.fresh(stem);
        self.initializers.push(TensorProto {
            name: name.clone(),
            dims: dims.iter().map(|d| *d as i64).collect(),
            data_type: DataType::Double as i32,
            double_data: data.to_vec(),
            ..Default::default()
        });
        name
    }

    fn initializer_f32(&mut self, stem: &str, dims: &[usize], data: &[f32]) -> String {
        let name = self.fresh(stem);
        self.initializers.push(TensorProto {
            name: name.clone(),
            dims: dims.iter().map(|d| *d as i64).collect(),
            data_type: DataType::Float as i32,
            float_data: data.to_vec(),
            ..Default::default()
        });
        name
    }

    fn initializer_i64(&mut self, data: &[i64]) -> String {
        let name = self.fresh("ints");
        self.initializers.push(TensorProto {
            name: name.clone(),
            dims: vec![data.len() as i64],
            data_type: DataType::Int64 as i32,
            int64_data: data.to_vec(),
            ..Default::default()
        });
        name
    }
}

/// A graph input or output: `[batch]` or `[batch, columns]`.
fn value_info(name: &str, elem_type: DataType, columns: Option<usize>) -> ValueInfoProto {
    let mut dim = vec![Dimension {
        value: Some(dimension::Value::DimParam(BATCH.into())),
        ..Default::default()
    }];
    if let Some(columns) = columns {
        dim.push(Dimension {
            value: Some(dimension::Value::DimValue(columns as i64)),
            ..Default::default()
        });
    }
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: elem_type as i32,
                shape: Some(TensorShapeProto { dim }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn entry(key: &str, value: String) -> StringStringEntryProto {
    StringStringEntryProto { key: key.into(), value }
}

pub(super) fn attr(name: &str, r#type: AttributeType) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: r#type as i32,
        ..Default::default()
    }
}

pub(super) fn attr_int(name: &str, i: i64) -> AttributeProto {
    AttributeProto {
        i,
        ..attr(name, AttributeType::Int)
    }
}

pub(super) fn attr_ints(name: &str, ints: &[i64]) -> AttributeProto {
    AttributeProto {
        ints: ints.to_vec(),
        ..attr(name, AttributeType::Ints)
    }
}

pub(super) fn attr_floats(name: &str, floats: &[f32]) -> AttributeProto {
    AttributeProto {
        floats: floats.to_vec(),
        ..attr(name, AttributeType::Floats)
    }
}

pub(super) fn attr_string(name: &str, s: &str) -> AttributeProto {
    AttributeProto {
        s: s.as_bytes().to_vec(),
        ..attr(name, AttributeType::String)
    }
}

pub(super) fn attr_strings(name: &str, strings: &[&str]) -> AttributeProto {
    AttributeProto {
        strings: strings.iter().map(|s| s.as_bytes().to_vec()).collect(),
        ..attr(name, AttributeType::Strings)
    }
}
