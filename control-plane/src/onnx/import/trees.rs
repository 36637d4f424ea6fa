//! `TreeEnsembleClassifier` and `TreeEnsembleRegressor` -> [`Body::Trees`].

use std::collections::{BTreeMap, HashMap, HashSet};

use model_wasm::ir::{Cast, MAX_CATEGORY, Missing};
use model_wasm::{Aggregate, Body, Link, Node, Tree};
use tract_onnx::pb::NodeProto;

use super::attrs::{describe, floats, int, ints, no_post_transform, required, string, strings};
use super::{Result, invalid, unsupported};

/// Relative slack when leaf weights, stored as `f32`, are compared (`1/9` as `f32` is not
/// `1/9`). Distinct shares of real forests differ by far more.
const WEIGHT_SLACK: f64 = 1e-6;

/// The `nodes_*` attributes of a tree ensemble, one entry per node.
struct RawNode {
    feature: i64,
    mode: String,
    value: f32,
    true_id: i64,
    false_id: i64,
    /// `nodes_missing_value_tracks_true`: whether a NaN takes the true branch (`None`: the
    /// attribute is absent and the IR refuses missing values on this split).
    nan_true: Option<bool>,
}

/// `nodes_missing_value_tracks_true`, when it says anything: skl2onnx writes it all zeros on
/// scikit-learn's trees, which were trained without a missing-value direction, so an all-zero
/// attribute is read as absent (missing values refused) rather than as "NaN takes every false
/// branch".
fn missing_tracks(node: &NodeProto) -> Option<&[i64]> {
    ints(node, "nodes_missing_value_tracks_true").filter(|t| t.iter().any(|&v| v != 0))
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
    let tracks = missing_tracks(node);
    let len = tree_ids.len();
    if tracks.is_some_and(|t| t.len() != len) {
        return Err(invalid(format!(
            "{}: nodes_missing_value_tracks_true has {} entries for {len} nodes",
            describe(node),
            tracks.map_or(0, <[i64]>::len)
        )));
    }
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
            nan_true: tracks.map(|t| t[i] != 0),
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

/// A category set that onnxmltools wrote as a chain of `BRANCH_EQ` nodes.
struct Chain {
    categories: Vec<u32>,
    /// Where a value in none of the categories goes: the last node's false branch.
    right: i64,
}

/// onnxmltools writes a LightGBM category set as a chain of `BRANCH_EQ` nodes on one feature, one
/// per category, whose true branches all go to one node and whose false branches each go to the
/// next (the last one's to the set's right child). Per head of a chain (a lone `BRANCH_EQ` too):
/// its categories and right child; and the ids of the nodes after the heads, which the sets
/// replace. A node joins its predecessor's chain only when nothing else points at it, so a
/// tree that shares nodes otherwise is still refused. Values must be categories: whole
/// numbers from 0 to 2^24, which `BRANCH_EQ` tests exactly as [`Cast::Exact`] reads them.
fn category_chains(
    nodes: &BTreeMap<i64, RawNode>,
    at: impl Fn(i64, String) -> super::ImportError,
) -> Result<(HashMap<i64, Chain>, HashSet<i64>)> {
    let mut pointers: HashMap<i64, usize> = HashMap::new();
    for raw in nodes.values().filter(|r| r.mode != "LEAF") {
        for child in [raw.true_id, raw.false_id] {
            *pointers.entry(child).or_default() += 1;
        }
    }
    // The node after `id` in its chain, if any.
    let next = |id: i64| -> Option<i64> {
        let raw = nodes.get(&id)?;
        let after = nodes.get(&raw.false_id)?;
        (raw.mode == "BRANCH_EQ"
            && after.mode == "BRANCH_EQ"
            && after.feature == raw.feature
            && after.true_id == raw.true_id
            && after.nan_true == raw.nan_true
            && pointers.get(&raw.false_id) == Some(&1))
        .then_some(raw.false_id)
    };
    let followers: HashSet<i64> = nodes.keys().filter_map(|&id| next(id)).collect();
    let mut chains = HashMap::new();
    for (&head, raw) in nodes {
        if raw.mode != "BRANCH_EQ" || followers.contains(&head) {
            continue;
        }
        let mut categories = Vec::new();
        let mut id = head;
        // Every follower has one pointer, so a walk visits each node once; the bound is a guard.
        for _ in 0..nodes.len() {
            let value = nodes[&id].value;
            if !(value >= 0.0 && value.trunc() == value && (value as u64) < u64::from(MAX_CATEGORY)) {
                return Err(at(
                    id,
                    format!(
                        "BRANCH_EQ on {value}: only category sets (whole numbers from 0 to {MAX_CATEGORY}) can be imported"
                    ),
                ));
            }
            categories.push(value as u32);
            match next(id) {
                Some(after) => id = after,
                None => break,
            }
        }
        categories.sort_unstable();
        categories.dedup();
        chains.insert(
            head,
            Chain {
                categories,
                right: nodes[&id].false_id,
            },
        );
    }
    Ok((chains, followers))
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
        let (chains, followers) = category_chains(nodes, |id, what| {
            unsupported(format!("{}: tree {t}, node {id}: {what}", describe(node)))
        })?;
        // A split's (true, false) children; a category set's false child is its chain's end.
        let children_of = |id: i64, raw: &RawNode| (raw.true_id, chains.get(&id).map_or(raw.false_id, |c| c.right));
        // Breadth first from the root: IR index = position in `order`.
        let mut order = vec![root];
        let mut index: HashMap<i64, u32> = HashMap::from([(root, 0)]);
        let mut next = 0;
        while next < order.len() {
            let id = order[next];
            let raw = &nodes[&id];
            if raw.mode != "LEAF" {
                let (yes, no) = children_of(id, raw);
                for child in [yes, no] {
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
        if order.len() + followers.len() != nodes.len() {
            return Err(invalid(format!(
                "{}: tree {t}: {} nodes are not reachable from the root",
                describe(node),
                nodes.len() - followers.len() - order.len()
            )));
        }
        let mut ir_nodes = Vec::with_capacity(order.len());
        for &id in &order {
            let raw = &nodes[&id];
            // Every split's children were numbered by the walk above.
            let children = || {
                let (yes, no) = children_of(id, raw);
                (index[&yes], index[&no])
            };
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
                // onnxruntime: a NaN takes the true branch when the flag is 1, else the false
                // branch; the true branch is on the left unless swapped.
                let missing = match raw.nan_true {
                    None => Missing::Refuse,
                    Some(nan_true) if nan_true != swap => Missing::Left,
                    Some(_) => Missing::Right,
                };
                Node::Split {
                    feature: raw.feature as u32,
                    threshold,
                    left,
                    right,
                    missing,
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
                // x == c for each c of the chain: left when the value is one of the categories.
                "BRANCH_EQ" => {
                    let (left, right) = children();
                    Node::SplitIn {
                        feature: raw.feature as u32,
                        categories: chains[&id].categories.clone(),
                        cast: Cast::Exact,
                        left,
                        right,
                        missing: match raw.nan_true {
                            None => Missing::Refuse,
                            Some(true) => Missing::Left,
                            Some(false) => Missing::Right,
                        },
                    }
                }
                "BRANCH_NEQ" => {
                    return Err(unsupported(format!(
                        "{}: tree {t}, node {id} uses the split mode BRANCH_NEQ (BRANCH_LT, BRANCH_LEQ, BRANCH_GT, \
                         BRANCH_GTE and BRANCH_EQ category sets are supported)",
                        describe(node)
                    )));
                }
                other => {
                    return Err(unsupported(format!(
                        "{}: tree {t}, node {id} uses the split mode {other} (BRANCH_LT, BRANCH_LEQ, BRANCH_GT, BRANCH_GTE and \
                         BRANCH_EQ category sets are supported)",
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

/// A leaf's margin: the sum of its weights, as `f64` of the `f32`s.
fn margin(leaves: &LeafWeights, t: i64, id: i64) -> f64 {
    leaves
        .get(&(t, id))
        .map_or(0.0, |w| w.iter().map(|(_, w)| f64::from(*w)).sum())
}

/// The class ids the leaves name, sorted and distinct; each must be one of the `n_classes`.
fn leaf_class_ids(node: &NodeProto, leaves: &LeafWeights, n_classes: usize) -> Result<Vec<i64>> {
    let mut class_ids: Vec<i64> = leaves.values().flatten().map(|(c, _)| *c).collect();
    class_ids.sort_unstable();
    class_ids.dedup();
    if let Some(c) = class_ids.iter().find(|c| !(0..n_classes as i64).contains(c)) {
        return Err(invalid(format!(
            "{}: class id {c} of {n_classes} classes",
            describe(node)
        )));
    }
    Ok(class_ids)
}

/// A boosted classifier (onnxmltools' XGBoost and LightGBM): `LOGISTIC` over two classes with
/// one class id (onnxruntime's binary form: the score is class 1's margin, P(class 1) its
/// sigmoid, P(class 0) the rest), or `SOFTMAX` with each tree adding to one class.
fn boosted_classifier(node: &NodeProto, n: usize, n_classes: usize, post: &str) -> Result<Body> {
    let forest = read_nodes(node, n)?;
    let leaves = read_leaf_weights(node, "class", &forest)?;
    let base = floats(node, "base_values").unwrap_or(&[]);
    let class_ids = leaf_class_ids(node, &leaves, n_classes)?;
    let (link, base_score, tree_outputs) = match post {
        "LOGISTIC" => {
            if n_classes != 2 || class_ids.len() > 1 {
                return Err(unsupported(format!(
                    "{} with post_transform LOGISTIC over {n_classes} classes and {} class ids (only the binary form, \
                     two classes and one class id, can be imported)",
                    describe(node),
                    class_ids.len()
                )));
            }
            let b = match base {
                [] => 0.0,
                [b] => f64::from(*b),
                other => {
                    return Err(unsupported(format!(
                        "{}: {} base values in the binary form",
                        describe(node),
                        other.len()
                    )));
                }
            };
            (Link::Sigmoid, vec![b], vec![0; forest.len()])
        }
        _ => {
            let base_score = match base {
                [] => vec![0.0; n_classes],
                b if b.len() == n_classes => b.iter().map(|v| f64::from(*v)).collect(),
                other => {
                    return Err(invalid(format!(
                        "{}: {} base values for {n_classes} classes",
                        describe(node),
                        other.len()
                    )));
                }
            };
            // Each tree's leaves add to one class: the tree's output.
            let mut outputs = Vec::with_capacity(forest.len());
            for &t in forest.keys() {
                let mut ids: Vec<i64> = leaves
                    .iter()
                    .filter(|((tree, _), _)| *tree == t)
                    .flat_map(|(_, w)| w.iter().map(|(c, _)| *c))
                    .collect();
                ids.sort_unstable();
                ids.dedup();
                match ids[..] {
                    [] => outputs.push(0),
                    [c] => outputs.push(c as u32),
                    _ => {
                        return Err(unsupported(format!(
                            "{} with post_transform SOFTMAX: tree {t} adds to {} classes (the IR's boosted trees add \
                             to one class each)",
                            describe(node),
                            ids.len()
                        )));
                    }
                }
            }
            (Link::Softmax, base_score, outputs)
        }
    };
    let trees = build_trees(node, &forest, |t, id| {
        Ok(Node::Leaf {
            value: margin(&leaves, t, id),
        })
    })?;
    Ok(Body::Boosted {
        trees,
        tree_outputs,
        base_score,
        link,
    })
}

pub(super) fn tree_classifier(node: &NodeProto, n: usize, n_classes: usize, notes: &mut Vec<String>) -> Result<Body> {
    if let Some(post @ ("LOGISTIC" | "SOFTMAX")) = string(node, "post_transform").as_deref() {
        return boosted_classifier(node, n, n_classes, post);
    }
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
    let class_ids = leaf_class_ids(node, &leaves, n_classes)?;
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

pub(super) fn tree_regressor(node: &NodeProto, n: usize) -> Result<Body> {
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
    let aggregate = string(node, "aggregate_function").unwrap_or_else(|| "SUM".into());
    let mut factor = 1.0;
    match aggregate.as_str() {
        // A sum over trees (gradient boosting: onnxmltools' XGBoost and LightGBM, scikit-learn's
        // GradientBoostingRegressor): the base value plus the leaves, in f64.
        // scikit-learn's forests (skl2onnx: SUM of weights already divided by the number of trees,
        // no base values, no missing-value flags) stay a mean over trees, as before.
        "SUM" if floats(node, "base_values").is_some() || missing_tracks(node).is_some() => {
            let trees = build_trees(node, &forest, |t, id| {
                Ok(Node::Leaf {
                    value: margin(&leaves, t, id),
                })
            })?;
            return Ok(Body::Boosted {
                tree_outputs: vec![0; trees.len()],
                trees,
                base_score: vec![base],
                link: Link::Identity,
            });
        }
        "SUM" => factor = forest.len() as f64,
        "AVERAGE" => {}
        other => {
            return Err(unsupported(format!(
                "{} with aggregate_function {other} (SUM and AVERAGE are supported)",
                describe(node)
            )));
        }
    }
    // The IR averages the leaves: a sum over trees is the mean of n_trees * value, and the mean
    // of (value + base) is the mean plus the base.
    let trees = build_trees(node, &forest, |t, id| {
        Ok(Node::Leaf {
            value: margin(&leaves, t, id) * factor + base,
        })
    })?;
    Ok(Body::Trees {
        trees,
        aggregate: Aggregate::Average,
    })
}
