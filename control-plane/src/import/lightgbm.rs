//! LightGBM's text model (`Booster.save_model("model.txt")`, written by `src/io/tree.cpp` and
//! `gbdt_model_text.cpp`) -> a boosted IR.
//!
//! - Objectives: `regression`, `regression_l1`, `huber`, `fair`, `quantile`, `mape` (identity);
//!   `binary` (two classes, sigmoid: a `sigmoid:S` other than 1 is folded into the leaves, with
//!   a note); `multiclass num_class:K` (softmax; tree `t` adds to class `t % K`); `poisson`,
//!   `gamma`, `tweedie` (exp); `cross_entropy` (a regressor ending in a sigmoid). Refused, with
//!   the reason: other objectives (`multiclassova`, ranking, `regression sqrt`,
//!   `cross_entropy_lambda`, custom), linear trees (`is_linear=1`) and random-forest mode
//!   (`average_output`).
//! - LightGBM folds the initial score into the first trees' leaves: the base scores are zero.
//! - Numerical splits go left when `x <= threshold` in `f64` ([`Node::SplitLe`], thresholds
//!   parsed exactly; LightGBM's `inf`, its split of NaN against every number, becomes `f64::MAX`,
//!   the same routing for the finite inputs the IR takes). `decision_type` bits: 1 categorical, 2 default left, `(d >> 2) & 3` the
//!   missing type: 0 None ([`Missing::AsZero`]), 1 Zero ([`Missing::ZeroLeft`] /
//!   [`Missing::ZeroRight`] by the default side), 2 NaN ([`Missing::Left`] / [`Missing::Right`]);
//!   any other bit is refused.
//! - Categorical splits: `threshold` indexes `cat_boundaries`, whose consecutive entries bound
//!   the split's `u32` words in `cat_threshold`; bit `b` of word `w` is category `32 w + b`. The
//!   categories in the set go left ([`Node::SplitIn`], [`Cast::F64`]); with the NaN missing type
//!   a missing value goes right, else it is read as 0.
//! - Leaves are children `-1 - k` (leaf `k`); a tree of one leaf is that leaf.
//! - Features are named by `feature_names=`; classes by the caller's names, else `0..k-1`.

use anyhow::{Context, anyhow, bail};
use model_wasm::ir::{Cast, MAX_CATEGORY, Missing};
use model_wasm::{Body, IR_VERSION, Link, ModelIr, Node, Output, Tree};

use super::{
    CategoryBudget, ImportOptions, ImportedModel, ModelFormat, check_feature_count, class_names, feature_names,
    renumber, validated,
};

const CATEGORICAL: u8 = 1;
const DEFAULT_LEFT: u8 = 2;

/// A `Tree=` block: its line number and its `(line, key, value)` lines.
type Block<'a> = (usize, Vec<(usize, &'a str, &'a str)>);

/// What the objective makes of the sums.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Task {
    Regression(Link),
    Binary { sigmoid: f64 },
    Multiclass(usize),
}

pub(super) fn import(bytes: &[u8], options: &ImportOptions) -> anyhow::Result<ImportedModel> {
    let text = std::str::from_utf8(bytes).map_err(|e| anyhow!("not UTF-8 text ({e}): not a LightGBM text model"))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l.trim_end()));
    match lines.next() {
        Some((_, "tree")) => {}
        _ => bail!("line 1 is not 'tree': not a LightGBM text model"),
    }
    // The header: `key=value` lines (and bare flags such as `average_output`) up to the first tree.
    let mut header: Vec<(&str, &str)> = Vec::new();
    let mut blocks: Vec<Block<'_>> = Vec::new();
    let mut ended = false;
    for (number, line) in lines.by_ref() {
        if line == "end of trees" {
            ended = true;
            break;
        }
        if line.is_empty() {
            continue;
        }
        let (k, v) = line.split_once('=').unwrap_or((line, ""));
        if k == "Tree" {
            blocks.push((number, Vec::new()));
        } else if let Some((_, block)) = blocks.last_mut() {
            block.push((number, k, v));
        } else {
            header.push((k, v));
        }
    }
    if !ended {
        bail!("no 'end of trees' line: the file is cut short");
    }
    let tail: Vec<&str> = lines.map(|(_, l)| l).collect();
    let get = |name: &str| header.iter().find(|(k, _)| *k == name).map(|(_, v)| *v);
    let library = match get("version") {
        Some(v) if !v.is_empty() => format!("lightgbm {v}"),
        _ => bail!("the header has no 'version='"),
    };
    if header.iter().any(|(k, _)| *k == "average_output") {
        bail!(
            "the model averages its trees (average_output: random forest mode, boosting=rf); only boosted (summed) trees can be imported"
        );
    }
    let number = |name: &str| -> anyhow::Result<u64> {
        let v = get(name).with_context(|| format!("the header has no '{name}='"))?;
        v.trim()
            .parse::<u64>()
            .map_err(|_| anyhow!("header {name}={v} is not a non-negative integer"))
    };
    let max_feature_idx = number("max_feature_idx")?;
    let n_features = check_feature_count(max_feature_idx.saturating_add(1), "header max_feature_idx")?;
    let num_class = number("num_class")?;
    let per_iteration = number("num_tree_per_iteration")?;
    let objective = get("objective").context("the header has no 'objective=' (a custom objective?)")?;
    let task = read_objective(objective, num_class)?;
    let outputs = match task {
        Task::Multiclass(k) => k,
        _ => 1,
    };
    if per_iteration != outputs as u64 {
        bail!(
            "header num_tree_per_iteration={per_iteration}, the objective '{objective}' makes {outputs} per iteration"
        );
    }
    let mut notes = Vec::new();
    let scale = match task {
        Task::Binary { sigmoid } if sigmoid != 1.0 => {
            notes.push(format!(
                "the binary objective's sigmoid:{sigmoid} is folded into the leaf values (each multiplied by {sigmoid})"
            ));
            sigmoid
        }
        _ => 1.0,
    };
    if blocks.is_empty() {
        bail!("the model has no trees");
    }
    let mut budget = CategoryBudget::default();
    let mut trees = Vec::with_capacity(blocks.len());
    let mut tree_outputs = Vec::with_capacity(blocks.len());
    for (t, (line, block)) in blocks.iter().enumerate() {
        let tree =
            read_tree(block, n_features, scale, &mut budget).with_context(|| format!("tree {t} (line {line})"))?;
        trees.push(tree);
        tree_outputs.push((t % outputs) as u32);
    }
    if let Some(pandas) = tail.iter().find_map(|l| l.strip_prefix("pandas_categorical:"))
        && pandas.trim() != "null"
    {
        notes.push(
            "the file maps pandas categories to codes (pandas_categorical); the imported model takes the codes".into(),
        );
    }
    let own_names = get("feature_names").map(|v| v.split_whitespace().map(str::to_owned).collect());
    let features = feature_names(own_names, options, n_features, &mut notes).context("header feature_names")?;
    let (link, output) = match task {
        Task::Regression(link) => (
            link,
            Output::Regression {
                target: "target".into(),
            },
        ),
        Task::Binary { .. } => (
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
            trees,
            tree_outputs,
            base_score: vec![0.0; outputs],
            link,
        },
        output,
    })?;
    Ok(ImportedModel {
        ir,
        format: ModelFormat::Lightgbm,
        library,
        notes,
    })
}

fn read_objective(objective: &str, num_class: u64) -> anyhow::Result<Task> {
    let mut words = objective.split_whitespace();
    let name = words.next().unwrap_or("");
    let mut sigmoid = 1.0;
    let mut declared_classes = None;
    for word in words {
        match word.split_once(':') {
            Some(("sigmoid", s)) => {
                sigmoid = s
                    .parse::<f64>()
                    .ok()
                    .filter(|s| s.is_finite() && *s > 0.0)
                    .with_context(|| format!("objective parameter sigmoid:{s} is not a positive number"))?;
            }
            Some(("num_class", k)) => {
                declared_classes = Some(
                    k.parse::<u64>()
                        .map_err(|_| anyhow!("objective parameter num_class:{k}"))?,
                );
            }
            None if word == "sqrt" => bail!(
                "objective '{objective}': the model was trained on sqrt(label) (reg_sqrt) and squares its output; this cannot be imported"
            ),
            _ => {}
        }
    }
    Ok(match name {
        "regression" | "regression_l1" | "huber" | "fair" | "quantile" | "mape" => Task::Regression(Link::Identity),
        "poisson" | "gamma" | "tweedie" => Task::Regression(Link::Exp),
        "cross_entropy" => Task::Regression(Link::Sigmoid),
        "binary" => Task::Binary { sigmoid },
        "multiclass" => {
            let k = declared_classes.unwrap_or(num_class);
            if k != num_class || !(2..=1 << 16).contains(&k) {
                bail!(
                    "objective '{objective}' with header num_class={num_class}: expected 2 to 65536 classes, the same in both"
                );
            }
            Task::Multiclass(k as usize)
        }
        "multiclassova" => bail!(
            "objective '{objective}' (one-vs-all: one sigmoid per class, probabilities that need not sum to one) cannot be imported; retrain with objective=multiclass"
        ),
        _ => bail!(
            "objective '{objective}' is not supported (supported: regression, regression_l1, huber, fair, quantile, mape, \
             binary, multiclass, poisson, gamma, tweedie, cross_entropy)"
        ),
    })
}

/// One `Tree=` block's `key=value` lines.
fn read_tree(
    block: &[(usize, &str, &str)],
    n_features: usize,
    scale: f64,
    budget: &mut CategoryBudget,
) -> anyhow::Result<Tree> {
    let get = |name: &str| block.iter().find(|(_, k, _)| *k == name).map(|(_, _, v)| *v);
    let need = |name: &str| get(name).with_context(|| format!("no '{name}='"));
    if let Some(linear) = get("is_linear")
        && linear.trim() != "0"
    {
        bail!("is_linear={linear}: linear trees (a linear model in each leaf) cannot be imported");
    }
    let num_leaves: u64 = need("num_leaves")?
        .trim()
        .parse()
        .map_err(|_| anyhow!("num_leaves is not a non-negative integer"))?;
    let leaf_value: Vec<f64> = list(need("leaf_value")?, "leaf_value")?;
    if num_leaves == 0 || leaf_value.len() as u64 != num_leaves {
        bail!("num_leaves={num_leaves}, leaf_value holds {} values", leaf_value.len());
    }
    let leaf = |v: f64| Node::Leaf { value: v * scale };
    if num_leaves == 1 {
        return Ok(Tree {
            nodes: vec![leaf(leaf_value[0])],
        });
    }
    let internal = leaf_value.len() - 1;
    let split_feature: Vec<i64> = list(need("split_feature")?, "split_feature")?;
    let threshold: Vec<f64> = list(need("threshold")?, "threshold")?;
    let decision_type: Vec<i64> = list(need("decision_type")?, "decision_type")?;
    let left_child: Vec<i64> = list(need("left_child")?, "left_child")?;
    let right_child: Vec<i64> = list(need("right_child")?, "right_child")?;
    for (name, len) in [
        ("split_feature", split_feature.len()),
        ("threshold", threshold.len()),
        ("decision_type", decision_type.len()),
        ("left_child", left_child.len()),
        ("right_child", right_child.len()),
    ] {
        if len != internal {
            bail!("{name} holds {len} values, num_leaves={num_leaves} needs {internal}");
        }
    }
    let num_cat: u64 = get("num_cat")
        .unwrap_or("0")
        .trim()
        .parse()
        .map_err(|_| anyhow!("num_cat is not a non-negative integer"))?;
    let (boundaries, words): (Vec<u64>, Vec<u32>) = if num_cat > 0 {
        (
            list(need("cat_boundaries")?, "cat_boundaries")?,
            list(need("cat_threshold")?, "cat_threshold")?,
        )
    } else {
        (vec![], vec![])
    };
    if num_cat > 0 && boundaries.len() as u64 != num_cat + 1 {
        bail!("num_cat={num_cat}, cat_boundaries holds {} values", boundaries.len());
    }
    // Internal node i is IR node i; leaf k is IR node internal + k.
    let child = |i: usize, c: i64, side: &str| -> anyhow::Result<u32> {
        if c >= 0 {
            if c as u64 >= internal as u64 {
                bail!("node {i}: {side}_child {c} does not exist ({internal} internal nodes)");
            }
            Ok(c as u32)
        } else {
            let k = !c as u64;
            if k >= num_leaves {
                bail!("node {i}: {side}_child {c} is leaf {k}, the tree has {num_leaves} leaves");
            }
            Ok((internal as u64 + k) as u32)
        }
    };
    let mut nodes = Vec::with_capacity(2 * internal + 1);
    for i in 0..internal {
        let (left, right) = (child(i, left_child[i], "left")?, child(i, right_child[i], "right")?);
        let feature = split_feature[i];
        if feature < 0 || feature as u64 >= n_features as u64 {
            bail!("node {i}: split_feature {feature} is not one of the {n_features} features");
        }
        let feature = feature as u32;
        let d = u8::try_from(decision_type[i])
            .ok()
            .filter(|d| d >> 4 == 0 && (d >> 2) & 3 != 3)
            .with_context(|| {
                format!(
                    "node {i}: decision_type {} has unknown bits (known: 1 categorical, 2 default left, 4 and 8 the missing type 0-2)",
                    decision_type[i]
                )
            })?;
        let missing_type = (d >> 2) & 3;
        let default_left = d & DEFAULT_LEFT != 0;
        let node = if d & CATEGORICAL != 0 {
            let t = threshold[i];
            if !(t >= 0.0 && t.fract() == 0.0 && t < boundaries.len() as f64 - 1.0) {
                bail!(
                    "node {i}: categorical threshold {t} is not an index into cat_boundaries ({} sets)",
                    boundaries.len().saturating_sub(1)
                );
            }
            let j = t as usize;
            Node::SplitIn {
                feature,
                categories: category_set(&words, boundaries[j], boundaries[j + 1], budget)
                    .with_context(|| format!("node {i}: category set {j}"))?,
                cast: Cast::F64,
                left,
                right,
                missing: if missing_type == 2 {
                    Missing::Right
                } else {
                    Missing::AsZero
                },
            }
        } else {
            let missing = match (missing_type, default_left) {
                (0, _) => Missing::AsZero,
                (1, true) => Missing::ZeroLeft,
                (1, false) => Missing::ZeroRight,
                (_, true) => Missing::Left,
                (_, false) => Missing::Right,
            };
            // LightGBM splits "NaN against every number" at `threshold=inf`: `x <= inf` holds for
            // every finite x, as `x <= f64::MAX` does, and inputs are never infinite (the IR
            // refuses them), so the largest finite threshold routes every row the same way.
            let threshold = if threshold[i] == f64::INFINITY {
                f64::MAX
            } else {
                threshold[i]
            };
            Node::SplitLe {
                feature,
                threshold,
                left,
                right,
                missing,
            }
        };
        nodes.push(node);
    }
    nodes.extend(leaf_value.iter().map(|&v| leaf(v)));
    let nodes = renumber(nodes).map_err(|e| anyhow!(e))?;
    Ok(Tree { nodes })
}

/// The categories of the words `start..end` of `cat_threshold`, checked against the words held
/// and [`MAX_CATEGORY`] before anything is made.
fn category_set(words: &[u32], start: u64, end: u64, budget: &mut CategoryBudget) -> anyhow::Result<Vec<u32>> {
    if start > end || end > words.len() as u64 {
        bail!(
            "cat_boundaries {start}..{end} is not a range of the {} words of cat_threshold",
            words.len()
        );
    }
    let max_words = u64::from(MAX_CATEGORY / 32);
    if end - start > max_words {
        bail!(
            "{} words ({} bits) of categories; categories must be below {MAX_CATEGORY}",
            end - start,
            (end - start) * 32
        );
    }
    let ones: u64 = words[start as usize..end as usize]
        .iter()
        .map(|w| u64::from(w.count_ones()))
        .sum();
    budget.take(ones)?;
    let mut set = Vec::new();
    for (w, &word) in words[start as usize..end as usize].iter().enumerate() {
        for b in 0..32 {
            if word >> b & 1 == 1 {
                set.push(w as u32 * 32 + b);
            }
        }
    }
    Ok(set)
}

/// A space-separated list.
fn list<T: std::str::FromStr>(text: &str, name: &str) -> anyhow::Result<Vec<T>> {
    text.split_whitespace()
        .enumerate()
        .map(|(i, v)| {
            v.parse::<T>()
                .map_err(|_| anyhow!("{name}: value {i} ({v:?}) is not a {}", std::any::type_name::<T>()))
        })
        .collect()
}
