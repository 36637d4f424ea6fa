//! `ai.onnx.ml` opset 5 `TreeEnsemble` -> the same node as a `TreeEnsembleRegressor` (opset 3),
//! which [`tree_regressor`](super::trees::tree_regressor) reads.
//!
//! Opset 5 keeps interior nodes (`nodes_*`) and leaves (`leaf_*`) apart, points at each by
//! index (`nodes_trueleafs`/`nodes_falseleafs` say which), names each tree's root
//! (`tree_roots`), holds thresholds and leaf weights in tensors, and codes modes, the aggregate
//! and the post-transform as numbers. Each tree is walked from its root with an explicit stack
//! and renumbered from 0; a node or leaf reached twice, or an index past the lists, is an error
//! naming the tree. `BRANCH_MEMBER` becomes the chain of `BRANCH_EQ` nodes onnxmltools writes
//! for a category set (one per value of its set in `membership_values`, NaN-separated, in node
//! order), which the importer reads back as one set. Float thresholds only: a double ensemble
//! is refused as the opset 3 `*_as_tensor` attributes are.

use std::collections::HashMap;

use tract_onnx::pb::tensor_proto::DataType;
use tract_onnx::pb::{NodeProto, TensorProto};

use super::attrs::{describe, int, ints, required};
use super::{Result, invalid, unsupported};
use crate::onnx::export::{attr_floats, attr_int, attr_ints, attr_string, attr_strings};

/// Opset 5's `nodes_modes` codes, in order.
const MODES: [&str; 7] = [
    "BRANCH_LEQ",
    "BRANCH_LT",
    "BRANCH_GTE",
    "BRANCH_GT",
    "BRANCH_EQ",
    "BRANCH_NEQ",
    "BRANCH_MEMBER",
];

fn tensor<'n>(node: &'n NodeProto, name: &str) -> Option<&'n TensorProto> {
    node.attribute
        .iter()
        .find(|a| a.name == name)
        .and_then(|a| a.t.as_ref())
}

/// A float tensor attribute's values (from `float_data` or little-endian `raw_data`); a double
/// one is refused.
fn floats(node: &NodeProto, name: &str) -> Result<Option<Vec<f32>>> {
    let Some(t) = tensor(node, name) else {
        return Ok(None);
    };
    if t.data_type != DataType::Float as i32 {
        return Err(unsupported(format!(
            "{}: {name} is not a float tensor (data type {}); only float ensembles can be imported",
            describe(node),
            t.data_type
        )));
    }
    if !t.float_data.is_empty() {
        return Ok(Some(t.float_data.clone()));
    }
    if t.raw_data.len() % 4 != 0 {
        return Err(invalid(format!(
            "{}: {name} holds {} bytes, not whole floats",
            describe(node),
            t.raw_data.len()
        )));
    }
    Ok(Some(
        t.raw_data
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
    ))
}

/// `nodes_modes`: a uint8 tensor (in `int32_data` or `raw_data`), as opset 3's mode names.
fn modes(node: &NodeProto) -> Result<Vec<&'static str>> {
    let t = tensor(node, "nodes_modes").ok_or_else(|| invalid(format!("{} has no nodes_modes", describe(node))))?;
    let codes: Vec<i64> = if !t.int32_data.is_empty() {
        t.int32_data.iter().map(|c| i64::from(*c)).collect()
    } else {
        t.raw_data.iter().map(|c| i64::from(*c)).collect()
    };
    codes
        .iter()
        .map(|&c| {
            usize::try_from(c)
                .ok()
                .and_then(|c| MODES.get(c).copied())
                .ok_or_else(|| invalid(format!("{}: node mode {c} is not one of opset 5's", describe(node))))
        })
        .collect()
}

/// A child: an interior node or a leaf, by index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Child {
    Node(usize),
    Leaf(usize),
}

/// The opset 3 attributes, built one node at a time.
#[derive(Default)]
struct Legacy {
    tree_ids: Vec<i64>,
    node_ids: Vec<i64>,
    features: Vec<i64>,
    modes: Vec<&'static str>,
    values: Vec<f32>,
    true_ids: Vec<i64>,
    false_ids: Vec<i64>,
    tracks: Vec<i64>,
    target_trees: Vec<i64>,
    target_nodes: Vec<i64>,
    target_ids: Vec<i64>,
    target_weights: Vec<f32>,
}

impl Legacy {
    fn leaf(&mut self, t: i64, id: i64, target: i64, weight: f32) {
        self.split(t, id, 0, "LEAF", 0.0, 0, 0, 0);
        self.target_trees.push(t);
        self.target_nodes.push(id);
        self.target_ids.push(target);
        self.target_weights.push(weight);
    }

    #[allow(clippy::too_many_arguments)]
    fn split(&mut self, t: i64, id: i64, feature: i64, mode: &'static str, value: f32, yes: i64, no: i64, nan: i64) {
        self.tree_ids.push(t);
        self.node_ids.push(id);
        self.features.push(feature);
        self.modes.push(mode);
        self.values.push(value);
        self.true_ids.push(yes);
        self.false_ids.push(no);
        self.tracks.push(nan);
    }
}

/// The `TreeEnsembleRegressor` that computes what `node` (an opset 5 `TreeEnsemble`) computes.
pub(super) fn as_regressor(node: &NodeProto) -> Result<NodeProto> {
    let need = |name: &str| required(node, name, ints(node, name));
    let roots = need("tree_roots")?;
    let features = need("nodes_featureids")?;
    let true_ids = need("nodes_truenodeids")?;
    let false_ids = need("nodes_falsenodeids")?;
    let true_leafs = need("nodes_trueleafs")?;
    let false_leafs = need("nodes_falseleafs")?;
    let leaf_targets = need("leaf_targetids")?;
    let tracks = ints(node, "nodes_missing_value_tracks_true");
    let splits =
        floats(node, "nodes_splits")?.ok_or_else(|| invalid(format!("{} has no nodes_splits", describe(node))))?;
    let weights =
        floats(node, "leaf_weights")?.ok_or_else(|| invalid(format!("{} has no leaf_weights", describe(node))))?;
    let members = floats(node, "membership_values")?.unwrap_or_default();
    let modes = modes(node)?;
    let n = features.len();
    if [
        true_ids.len(),
        false_ids.len(),
        true_leafs.len(),
        false_leafs.len(),
        splits.len(),
        modes.len(),
    ]
    .iter()
    .chain(tracks.map(<[i64]>::len).as_ref())
    .any(|l| *l != n)
    {
        return Err(invalid(format!(
            "{}: the nodes_* attributes have different lengths",
            describe(node)
        )));
    }
    if weights.len() != leaf_targets.len() {
        return Err(invalid(format!(
            "{}: the leaf_* attributes have different lengths",
            describe(node)
        )));
    }
    // The sets of BRANCH_MEMBER nodes, in node order, NaN-separated.
    let mut sets = members.split(|v| v.is_nan());
    let mut set_of = HashMap::new();
    for (i, mode) in modes.iter().enumerate() {
        if *mode == "BRANCH_MEMBER" {
            let set = sets.next().unwrap_or_default();
            if set.is_empty() {
                return Err(invalid(format!(
                    "{}: node {i} is BRANCH_MEMBER with no set",
                    describe(node)
                )));
            }
            set_of.insert(i, set);
        }
    }

    let child = |i: usize, leaf: i64, index: i64| -> Result<Child> {
        let bad = || {
            invalid(format!(
                "{}: node {i} points at {index}, past the lists",
                describe(node)
            ))
        };
        let index = usize::try_from(index).map_err(|_| bad())?;
        match leaf {
            0 if index < n => Ok(Child::Node(index)),
            1 if index < weights.len() => Ok(Child::Leaf(index)),
            0 | 1 => Err(bad()),
            other => Err(invalid(format!("{}: node {i}: a leaf flag of {other}", describe(node)))),
        }
    };
    let mut legacy = Legacy::default();
    for (t, &root) in roots.iter().enumerate() {
        let t = t as i64;
        let root = usize::try_from(root)
            .ok()
            .filter(|r| *r < n)
            .map(Child::Node)
            .ok_or_else(|| {
                invalid(format!(
                    "{}: tree {t} has its root at node {root}, past the nodes",
                    describe(node)
                ))
            })?;
        // Ids in the order reached; `stack` holds what is numbered but not yet written.
        let mut ids: HashMap<Child, i64> = HashMap::from([(root, 0)]);
        let mut next_id = 1i64;
        let mut stack = vec![root];
        while let Some(at) = stack.pop() {
            let id = ids[&at];
            let i = match at {
                Child::Leaf(l) => {
                    legacy.leaf(t, id, leaf_targets[l], weights[l]);
                    continue;
                }
                Child::Node(i) => i,
            };
            let mut number = |c: Child, stack: &mut Vec<Child>| -> Result<i64> {
                if ids.contains_key(&c) {
                    return Err(invalid(format!(
                        "{}: tree {t}: {c:?} is reached twice (a tree is not a graph)",
                        describe(node)
                    )));
                }
                ids.insert(c, next_id);
                next_id += 1;
                stack.push(c);
                Ok(next_id - 1)
            };
            let (yes, no) = (
                child(i, true_leafs[i], true_ids[i])?,
                child(i, false_leafs[i], false_ids[i])?,
            );
            if let (Child::Leaf(l), true) = (yes, yes == no) {
                // Both ways to one leaf: opset 5's form of a tree that is a single leaf.
                ids.insert(yes, id);
                legacy.leaf(t, id, leaf_targets[l], weights[l]);
                continue;
            }
            let yes = number(yes, &mut stack)?;
            let no = number(no, &mut stack)?;
            let nan = tracks.map_or(0, |tr| tr[i]);
            match set_of.get(&i) {
                // A chain: this node tests the first value, new nodes the others.
                Some(set) => {
                    let mut id = id;
                    for (j, value) in set.iter().enumerate() {
                        let last = j + 1 == set.len();
                        let after = if last { no } else { next_id };
                        legacy.split(t, id, features[i], "BRANCH_EQ", *value, yes, after, nan);
                        if !last {
                            id = next_id;
                            next_id += 1;
                        }
                    }
                }
                None => legacy.split(t, id, features[i], modes[i], splits[i], yes, no, nan),
            }
        }
    }

    let aggregate = match int(node, "aggregate_function").unwrap_or(1) {
        0 => "AVERAGE",
        1 => "SUM",
        2 => "MIN",
        3 => "MAX",
        other => return Err(invalid(format!("{}: aggregate_function {other}", describe(node)))),
    };
    let post = match int(node, "post_transform").unwrap_or(0) {
        0 => "NONE",
        1 => "SOFTMAX",
        2 => "LOGISTIC",
        3 => "SOFTMAX_ZERO",
        4 => "PROBIT",
        other => return Err(invalid(format!("{}: post_transform {other}", describe(node)))),
    };
    let mut attribute = vec![
        attr_ints("nodes_treeids", &legacy.tree_ids),
        attr_ints("nodes_nodeids", &legacy.node_ids),
        attr_ints("nodes_featureids", &legacy.features),
        attr_strings("nodes_modes", &legacy.modes),
        attr_floats("nodes_values", &legacy.values),
        attr_ints("nodes_truenodeids", &legacy.true_ids),
        attr_ints("nodes_falsenodeids", &legacy.false_ids),
        attr_ints("target_treeids", &legacy.target_trees),
        attr_ints("target_nodeids", &legacy.target_nodes),
        attr_ints("target_ids", &legacy.target_ids),
        attr_floats("target_weights", &legacy.target_weights),
        attr_string("aggregate_function", aggregate),
        attr_string("post_transform", post),
    ];
    if tracks.is_some() {
        attribute.push(attr_ints("nodes_missing_value_tracks_true", &legacy.tracks));
    }
    if let Some(targets) = int(node, "n_targets") {
        attribute.push(attr_int("n_targets", targets));
    }
    Ok(NodeProto {
        op_type: "TreeEnsembleRegressor".into(),
        attribute,
        ..node.clone()
    })
}
