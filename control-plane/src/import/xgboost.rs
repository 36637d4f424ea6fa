//! XGBoost's JSON model (`Booster.save_model("m.json")`, schema in xgboost's `doc/model.schema`)
//! -> a boosted IR.
//!
//! - `gbtree` boosters only (`dart` and `gblinear` are refused by name); one target, one value
//!   per leaf. `tree_info[t]` is the class tree `t` adds to, which covers `num_parallel_tree`
//!   (XGBoost sums a forest's trees).
//! - Objectives: `reg:squarederror` (identity), `reg:logistic` (a regressor ending in a
//!   sigmoid), `binary:logistic` (two classes, sigmoid), `multi:softprob` / `multi:softmax`
//!   (softmax; `multi:softmax` predicts only the label, the IR also the probabilities),
//!   `count:poisson` (exp). Anything else is refused, named.
//! - `base_score` is in the objective's output space, a scalar (`"5E-1"`) or, since XGBoost
//!   3.1, a vector (`"[5E-1]"`, one value per class for softmax). The margin the sums start from
//!   is its inverse link: logit for the sigmoid objectives, `ln` for Poisson, the value itself
//!   otherwise (the softmax objectives keep it as a margin: their `ProbToMargin` is the identity,
//!   and their fitted vectors hold negative values).
//! - Splits: `(x as f32) < split_condition` goes to the left child, a missing value to the
//!   `default_left` side ([`Node::Split`]). Categorical splits (`split_type` 1, categories in
//!   `categories[categories_segments[j]..][..categories_sizes[j]]` for node
//!   `categories_nodes[j]`): XGBoost sends the categories in the set to the right, so the IR's
//!   [`Node::SplitIn`] (in-set goes left) swaps the children and the default side. Leaves
//!   (`left_children[i] == -1`) hold their value in `split_conditions[i]`.
//! - Features are named by `feature_names`, else the caller's names, else `f0..f{n-1}`; classes
//!   by the caller's names, else `0..k-1`.

use anyhow::{Context, anyhow, bail};
use model_wasm::ir::{Cast, MAX_CATEGORY, Missing};
use model_wasm::{Body, IR_VERSION, Link, ModelIr, Node, Output, Tree};
use serde_json::Value;

use super::{
    CategoryBudget, ImportOptions, ImportedModel, ModelFormat, check_feature_count, class_names, feature_names,
    renumber, validated,
};

/// What the objective makes of the sums.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Task {
    Regression(Link),
    Binary,
    Multiclass(usize),
}

pub(super) fn import(bytes: &[u8], options: &ImportOptions) -> anyhow::Result<ImportedModel> {
    let root: Value =
        serde_json::from_slice(bytes).map_err(|e| anyhow!("not valid JSON, or the file is cut short: {e}"))?;
    let library = match root.get("version").and_then(Value::as_array) {
        Some(v) if !v.is_empty() && v.iter().all(|p| p.as_u64().is_some()) => format!(
            "xgboost {}",
            v.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(".")
        ),
        _ => "xgboost (version not given)".into(),
    };
    let learner = key(&root, "learner", "")?;
    let objective = key(key(learner, "objective", "learner")?, "name", "learner.objective")?
        .as_str()
        .context("learner.objective.name is not a string")?;
    let params = key(learner, "learner_model_param", "learner")?;
    let n_features = check_feature_count(
        count(key(params, "num_feature", "learner.learner_model_param")?)
            .context("learner.learner_model_param.num_feature")?,
        "learner.learner_model_param.num_feature",
    )?;
    let num_class = match params.get("num_class") {
        Some(v) => count(v).context("learner.learner_model_param.num_class")?,
        None => 0,
    };
    if let Some(targets) = params.get("num_target") {
        let targets = count(targets).context("learner.learner_model_param.num_target")?;
        if targets > 1 {
            bail!("the model has {targets} targets; only single-target models can be imported");
        }
    }
    let task = match objective {
        "reg:squarederror" => Task::Regression(Link::Identity),
        "reg:logistic" => Task::Regression(Link::Sigmoid),
        "count:poisson" => Task::Regression(Link::Exp),
        "binary:logistic" => Task::Binary,
        "multi:softprob" | "multi:softmax" => {
            if !(2..=1 << 16).contains(&num_class) {
                bail!("objective {objective} with num_class {num_class}: expected 2 to 65536 classes");
            }
            Task::Multiclass(num_class as usize)
        }
        other => bail!(
            "objective '{other}' is not supported (supported: reg:squarederror, reg:logistic, binary:logistic, \
             multi:softprob, multi:softmax, count:poisson)"
        ),
    };
    let outputs = match task {
        Task::Multiclass(k) => k,
        _ => 1,
    };
    let mut notes = Vec::new();
    let base_score = base_margins(params, task, outputs)?;

    let booster = key(learner, "gradient_booster", "learner")?;
    let name = key(booster, "name", "learner.gradient_booster")?.as_str().unwrap_or("");
    match name {
        "gbtree" => {}
        "dart" => bail!(
            "the booster is dart (trees weighted by dropout); only gbtree boosters can be imported: retrain with booster=gbtree"
        ),
        "gblinear" => bail!("the booster is gblinear (a linear model); only gbtree boosters can be imported"),
        other => bail!("unknown booster '{other}'; only gbtree boosters can be imported"),
    }
    let model = key(booster, "model", "learner.gradient_booster")?;
    let trees = key(model, "trees", "learner.gradient_booster.model")?
        .as_array()
        .context("learner.gradient_booster.model.trees is not an array")?;
    let info = key(model, "tree_info", "learner.gradient_booster.model")?
        .as_array()
        .context("learner.gradient_booster.model.tree_info is not an array")?;
    if info.len() != trees.len() {
        bail!("tree_info has {} entries for {} trees", info.len(), trees.len());
    }
    if trees.is_empty() {
        bail!("the model has no trees");
    }
    let mut tree_outputs = Vec::with_capacity(trees.len());
    for (t, class) in info.iter().enumerate() {
        let class = class
            .as_u64()
            .filter(|&c| (c as usize) < outputs)
            .with_context(|| format!("tree_info[{t}] = {class} is not one of the model's {outputs} output(s)"))?;
        tree_outputs.push(class as u32);
    }
    let mut budget = CategoryBudget::default();
    let ir_trees = trees
        .iter()
        .enumerate()
        .map(|(t, tree)| read_tree(tree, n_features, &mut budget).with_context(|| format!("tree {t}")))
        .collect::<anyhow::Result<Vec<Tree>>>()?;
    if let Some(parallel) = model
        .get("gbtree_model_param")
        .and_then(|p| p.get("num_parallel_tree"))
        .and_then(|v| count(v).ok())
        .filter(|&p| p > 1)
    {
        notes.push(format!(
            "num_parallel_tree {parallel}: each forest's trees add to their output, as XGBoost sums them"
        ));
    }
    if objective == "multi:softmax" {
        notes.push("multi:softmax predicts only labels; the IR also gives the softmax probabilities".into());
    }

    let own_names = match learner.get("feature_names").and_then(Value::as_array) {
        Some(names) if !names.is_empty() => Some(
            names
                .iter()
                .map(|n| n.as_str().map(str::to_owned))
                .collect::<Option<Vec<String>>>()
                .context("learner.feature_names holds something other than strings")?,
        ),
        _ => None,
    };
    let features = feature_names(own_names, options, n_features, &mut notes).context("learner.feature_names")?;
    let (link, output) = match task {
        Task::Regression(link) => (
            link,
            Output::Regression {
                target: "target".into(),
            },
        ),
        Task::Binary => (
            Link::Sigmoid,
            Output::Classification {
                classes: class_names(options, 2)?,
            },
        ),
        Task::Multiclass(k) => (
            Link::Softmax,
            Output::Classification {
                classes: class_names(options, k)?,
            },
        ),
    };
    let ir = validated(ModelIr {
        ir_version: IR_VERSION,
        features,
        preprocess: vec![],
        body: Body::Boosted {
            trees: ir_trees,
            tree_outputs,
            base_score,
            link,
        },
        output,
    })?;
    Ok(ImportedModel {
        ir,
        format: ModelFormat::Xgboost,
        library,
        notes,
    })
}

/// `base_score` (output space, a scalar or `[v, ...]`) as margins, one per output.
fn base_margins(params: &Value, task: Task, outputs: usize) -> anyhow::Result<Vec<f64>> {
    let at = "learner.learner_model_param.base_score";
    let text = match params.get("base_score") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(other) => bail!("{at} is {other}, expected a number in a string"),
        None => bail!("{at} is missing"),
    };
    let inner = text.trim();
    let inner = inner
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .unwrap_or(inner);
    let values = inner
        .split(',')
        .map(|v| v.trim().parse::<f64>().ok().filter(|v| v.is_finite()))
        .collect::<Option<Vec<f64>>>()
        .with_context(|| format!("{at} = {text:?} is not a number or a list of numbers"))?;
    let values = match values.len() {
        1 => vec![values[0]; outputs],
        n if n == outputs => values,
        n => bail!("{at} holds {n} values for {outputs} output(s)"),
    };
    values
        .into_iter()
        .map(|p| {
            let margin = match task {
                Task::Regression(Link::Sigmoid) | Task::Binary => {
                    if !(p > 0.0 && p < 1.0) {
                        bail!("{at} = {p} is not a probability strictly between 0 and 1");
                    }
                    (p / (1.0 - p)).ln()
                }
                Task::Regression(Link::Exp) => {
                    if p <= 0.0 {
                        bail!("{at} = {p} is not a positive mean (the Poisson objective takes its log)");
                    }
                    p.ln()
                }
                Task::Regression(_) | Task::Multiclass(_) => p,
            };
            Ok(margin)
        })
        .collect()
}

fn read_tree(tree: &Value, n_features: usize, budget: &mut CategoryBudget) -> anyhow::Result<Tree> {
    if let Some(size) = tree.get("tree_param").and_then(|p| p.get("size_leaf_vector")) {
        let size = count(size).context("tree_param.size_leaf_vector")?;
        if size > 1 {
            bail!("leaves hold vectors of {size} values (a multi-output tree); only one value per leaf is taken");
        }
    }
    let left = ints(tree, "left_children")?;
    let n = left.len();
    let right = ints(tree, "right_children")?;
    let features = ints(tree, "split_indices")?;
    let conditions = floats(tree, "split_conditions")?;
    let default_left = flags(tree, "default_left")?;
    let split_type = match tree.get("split_type") {
        Some(_) => ints(tree, "split_type")?,
        None => vec![0; n],
    };
    for (name, len) in [
        ("right_children", right.len()),
        ("split_indices", features.len()),
        ("split_conditions", conditions.len()),
        ("default_left", default_left.len()),
        ("split_type", split_type.len()),
    ] {
        if len != n {
            bail!("{name} has {len} entries, left_children {n}");
        }
    }
    if let Some(declared) = tree.get("tree_param").and_then(|p| p.get("num_nodes")) {
        let declared = count(declared).context("tree_param.num_nodes")?;
        if declared != n as u64 {
            bail!("tree_param.num_nodes is {declared}, the arrays hold {n} nodes");
        }
    }
    let categories = Categories::read(tree, n)?;
    let child = |i: usize, c: i64, side: &str| -> anyhow::Result<u32> {
        if c < 0 || c as u64 >= n as u64 {
            bail!("node {i}: {side} child {c} does not exist ({n} nodes)");
        }
        Ok(c as u32)
    };
    let mut nodes = Vec::with_capacity(n);
    for i in 0..n {
        if left[i] == -1 {
            nodes.push(Node::Leaf {
                value: f64::from(conditions[i]),
            });
            continue;
        }
        let (l, r) = (child(i, left[i], "left")?, child(i, right[i], "right")?);
        let feature = features[i];
        if feature < 0 || feature as u64 >= n_features as u64 {
            bail!("node {i}: split_indices = {feature} is not one of the {n_features} features");
        }
        let feature = feature as u32;
        let node = match split_type[i] {
            0 => Node::Split {
                feature,
                threshold: conditions[i],
                left: l,
                right: r,
                missing: if default_left[i] { Missing::Left } else { Missing::Right },
            },
            // In-set categories go right in XGBoost, left in the IR: swap.
            1 => Node::SplitIn {
                feature,
                categories: categories.of(i, budget)?,
                cast: Cast::F32,
                left: r,
                right: l,
                missing: if default_left[i] { Missing::Right } else { Missing::Left },
            },
            other => bail!("node {i}: split_type {other} is unknown (0 numerical, 1 categorical)"),
        };
        nodes.push(node);
    }
    let nodes = renumber(nodes).map_err(|e| anyhow!(e))?;
    Ok(Tree { nodes })
}

/// A tree's categorical sets.
struct Categories {
    nodes: Vec<i64>,
    segments: Vec<i64>,
    sizes: Vec<i64>,
    values: Vec<i64>,
}

impl Categories {
    fn read(tree: &Value, n: usize) -> anyhow::Result<Categories> {
        let optional = |name: &str| -> anyhow::Result<Vec<i64>> {
            match tree.get(name) {
                None => Ok(vec![]),
                Some(_) => ints(tree, name),
            }
        };
        let categories = Categories {
            nodes: optional("categories_nodes")?,
            segments: optional("categories_segments")?,
            sizes: optional("categories_sizes")?,
            values: optional("categories")?,
        };
        let m = categories.nodes.len();
        if categories.segments.len() != m || categories.sizes.len() != m {
            bail!(
                "categories_nodes has {m} entries, categories_segments {}, categories_sizes {}",
                categories.segments.len(),
                categories.sizes.len()
            );
        }
        if let Some(&node) = categories.nodes.iter().find(|&&i| i < 0 || i as u64 >= n as u64) {
            bail!("categories_nodes names node {node}, the tree has {n}");
        }
        Ok(categories)
    }

    /// Node `i`'s categories, ascending.
    fn of(&self, i: usize, budget: &mut CategoryBudget) -> anyhow::Result<Vec<u32>> {
        let j = self
            .nodes
            .iter()
            .position(|&node| node == i as i64)
            .with_context(|| format!("node {i}: a categorical split without an entry in categories_nodes"))?;
        let (start, size) = (self.segments[j], self.sizes[j]);
        let total = self.values.len() as i64;
        if start < 0 || size < 0 || start > total || size > total - start {
            bail!("node {i}: categories_segments {start} and categories_sizes {size} run past the {total} categories");
        }
        budget.take(size as u64).with_context(|| format!("node {i}"))?;
        let mut set = Vec::with_capacity(size as usize);
        for &c in &self.values[start as usize..(start + size) as usize] {
            if c < 0 || c >= i64::from(MAX_CATEGORY) {
                bail!("node {i}: category {c} is not in 0..{MAX_CATEGORY}");
            }
            set.push(c as u32);
        }
        set.sort_unstable();
        set.dedup();
        Ok(set)
    }
}

fn key<'a>(value: &'a Value, name: &str, parent: &str) -> anyhow::Result<&'a Value> {
    value.get(name).with_context(|| {
        if parent.is_empty() {
            format!("no '{name}' key")
        } else {
            format!("{parent} has no '{name}' key")
        }
    })
}

/// A non-negative count, written as a number or a decimal string (`"4"`).
fn count(value: &Value) -> anyhow::Result<u64> {
    match value {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .with_context(|| format!("{value} is not a non-negative integer"))
}

fn array<'a>(tree: &'a Value, name: &str) -> anyhow::Result<&'a Vec<Value>> {
    tree.get(name)
        .with_context(|| format!("no '{name}' key"))?
        .as_array()
        .with_context(|| format!("'{name}' is not an array"))
}

fn ints(tree: &Value, name: &str) -> anyhow::Result<Vec<i64>> {
    array(tree, name)?
        .iter()
        .enumerate()
        .map(|(i, v)| {
            v.as_i64()
                .with_context(|| format!("{name}[{i}] = {v} is not an integer"))
        })
        .collect()
}

fn floats(tree: &Value, name: &str) -> anyhow::Result<Vec<f32>> {
    array(tree, name)?
        .iter()
        .enumerate()
        .map(|(i, v)| {
            v.as_f64()
                .map(|x| x as f32)
                .with_context(|| format!("{name}[{i}] = {v} is not a number"))
        })
        .collect()
}

/// `default_left`: 0/1 integers (JSON) or booleans.
fn flags(tree: &Value, name: &str) -> anyhow::Result<Vec<bool>> {
    array(tree, name)?
        .iter()
        .enumerate()
        .map(|(i, v)| match v {
            Value::Bool(b) => Ok(*b),
            Value::Number(n) if n.as_u64() == Some(0) => Ok(false),
            Value::Number(n) if n.as_u64() == Some(1) => Ok(true),
            _ => Err(anyhow!("{name}[{i}] = {v} is not 0, 1 or a boolean")),
        })
        .collect()
}
