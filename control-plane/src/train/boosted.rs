//! `gradient_boosting` and `random_forest`: fitted with the workspace's `gbdt` crate, whose trees
//! become IR trees node for node (`f32` thresholds, missing-value directions, category sets), so
//! the IR predicts exactly what the trainer predicts. The IR's body comes out; `families` wraps it.

use model_wasm::ir::{Cast, Missing};
use model_wasm::{Aggregate, Body, Link, Node, Tree};

use super::{Candidate, Targets, TrainData};
use linfa::ParamGuard;

/// Threads a fit uses when the grid does not say (`n_threads`, 0 = every core).
fn threads(c: &Candidate, default: usize) -> usize {
    match c.int("n_threads") {
        Some(0) => std::thread::available_parallelism().map_or(1, |n| n.get()),
        Some(n) => n as usize,
        None => default,
    }
}

fn target(data: &TrainData) -> gbdt::Target<'_> {
    match &data.targets {
        Targets::Classes(y) => gbdt::Target::Classes {
            y,
            n_classes: data.classes.len(),
        },
        Targets::Values(y) => gbdt::Target::Values(y),
    }
}

/// The objective the grid names, or the task's own; a mismatch names the key and the value.
fn objective(c: &Candidate, data: &TrainData) -> anyhow::Result<gbdt::Objective> {
    let classes = matches!(data.targets, Targets::Classes(_));
    Ok(match (c.str("objective"), classes) {
        (None | Some("log_loss"), true) => gbdt::Objective::LogLoss,
        (None | Some("squared_error"), false) => gbdt::Objective::SquaredError,
        (Some("poisson"), false) => gbdt::Objective::Poisson,
        (Some(other), _) => anyhow::bail!(
            "hyperparameter 'objective': '{other}' does not fit the target '{}', which is {} (use {})",
            data.target,
            if classes { "a class" } else { "a number" },
            if classes {
                "log_loss"
            } else {
                "squared_error or poisson"
            }
        ),
    })
}

/// Says which feature a `gbdt` error is about, by name.
fn named(e: gbdt::Error, data: &TrainData) -> anyhow::Error {
    let name = |f: usize| data.features.get(f).map_or("?", String::as_str);
    match e {
        gbdt::Error::AllMissing { feature } => {
            anyhow::anyhow!("feature '{}' is missing in every training row", name(feature))
        }
        gbdt::Error::Infinite { feature, row, value } => {
            anyhow::anyhow!("feature '{}' is {value} in row {}", name(feature), row + 1)
        }
        gbdt::Error::NotACategory {
            feature,
            row,
            value,
            max,
        } => anyhow::anyhow!(
            "categorical feature '{}': {value} in row {} is not a category code (a whole number from 0 to {max}; encode the column with method = \"ordinal\")",
            name(feature),
            row + 1
        ),
        gbdt::Error::Target { row, value, why } => {
            anyhow::anyhow!("target '{}': {value} in row {} is {why}", data.target, row + 1)
        }
        other => anyhow::anyhow!("{other}"),
    }
}

pub(super) fn fit_boosting(
    c: &Candidate,
    data: &TrainData,
    seed: u64,
    default_threads: usize,
) -> anyhow::Result<(Body, gbdt::Booster)> {
    let mut params = gbdt::GbdtParams::new(objective(c, data)?)
        .seed(seed)
        .threads(threads(c, default_threads))
        .max_depth(c.int("max_depth").map(|d| d as usize));
    if let Some(v) = c.int("n_estimators") {
        params = params.n_estimators(v as usize);
    }
    if let Some(v) = c.float("learning_rate") {
        params = params.learning_rate(v);
    }
    if let Some(v) = c.int("num_leaves") {
        params = params.num_leaves(v as usize);
    }
    if let Some(v) = c.int("min_samples_leaf") {
        params = params.min_samples_leaf(v as usize);
    }
    if let Some(v) = c.float("feature_fraction") {
        params = params.feature_fraction(v);
    }
    if let Some(v) = c.float("subsample") {
        params = params.subsample(v);
    }
    if let Some(v) = c.float("l2_regularization") {
        params = params.l2_regularization(v);
    }
    if let Some(v) = c.int("max_bins") {
        params = params.max_bins(v as usize);
    }
    if let Some(v) = c.int("early_stopping_rounds") {
        params = params.early_stopping_rounds(Some(v as usize));
    }
    if let Some(v) = c.float("validation_fraction") {
        params = params.validation_fraction(v);
    }
    let params = params.check().map_err(|e| anyhow::anyhow!("hyperparameter {e}"))?;
    let native = c.str("categorical") == Some("native");
    let categorical: Vec<bool> = if native {
        data.categorical.clone()
    } else {
        vec![false; data.features.len()]
    };
    let dataset = gbdt::Dataset {
        x: data.x.view(),
        target: target(data),
        categorical: &categorical,
    };
    let model = params.fit(&dataset).map_err(|e| named(e, data))?;
    let body = Body::Boosted {
        trees: model
            .trees
            .iter()
            .map(|t| ir_tree(t, |v| Node::Leaf { value: v[0] }))
            .collect(),
        tree_outputs: model.tree_outputs.iter().map(|k| *k as u32).collect(),
        base_score: model.base_score.clone(),
        link: match model.link {
            gbdt::Link::Identity => Link::Identity,
            gbdt::Link::Sigmoid => Link::Sigmoid,
            gbdt::Link::Softmax => Link::Softmax,
            gbdt::Link::Exp => Link::Exp,
        },
    };
    Ok((body, model))
}

pub(super) fn fit_forest(
    c: &Candidate,
    data: &TrainData,
    seed: u64,
    default_threads: usize,
) -> anyhow::Result<(Body, gbdt::Forest)> {
    let mut params = gbdt::ForestParams::default()
        .seed(seed)
        .threads(threads(c, default_threads))
        .max_depth(c.int("max_depth").map(|d| d as usize))
        .feature_fraction(c.float("feature_fraction"))
        .bootstrap(c.bool("bootstrap").unwrap_or(true))
        .split_quality(if c.str("split_quality") == Some("entropy") {
            gbdt::SplitQuality::Entropy
        } else {
            gbdt::SplitQuality::Gini
        });
    if let Some(v) = c.int("n_trees") {
        params = params.n_trees(v as usize);
    }
    if let Some(v) = c.int("min_samples_leaf") {
        params = params.min_samples_leaf(v as usize);
    }
    if let Some(v) = c.int("max_bins") {
        params = params.max_bins(v as usize);
    }
    let params = params.check().map_err(|e| anyhow::anyhow!("hyperparameter {e}"))?;
    let dataset = gbdt::Dataset {
        x: data.x.view(),
        target: target(data),
        categorical: &[],
    };
    let model = params.fit(&dataset).map_err(|e| named(e, data))?;
    let body = Body::Trees {
        trees: model
            .trees
            .iter()
            .map(|t| {
                ir_tree(t, |v| Node::Weights {
                    weights: v.iter().map(|w| *w as f32).collect(),
                })
            })
            .collect(),
        aggregate: Aggregate::Sum,
    };
    Ok((body, model))
}

/// A `gbdt` tree as an IR tree, node for node; `leaf` makes each leaf.
fn ir_tree(tree: &gbdt::Tree, leaf: impl Fn(&[f64]) -> Node) -> Tree {
    let missing = |left: bool| if left { Missing::Left } else { Missing::Right };
    let nodes = tree
        .nodes
        .iter()
        .map(|n| match n {
            gbdt::Node::Numeric {
                feature,
                threshold,
                missing_left,
                left,
                right,
            } => Node::Split {
                feature: *feature as u32,
                threshold: *threshold,
                left: *left as u32,
                right: *right as u32,
                missing: missing(*missing_left),
            },
            gbdt::Node::Categorical {
                feature,
                categories,
                missing_left,
                left,
                right,
            } => Node::SplitIn {
                feature: *feature as u32,
                categories: categories.clone(),
                cast: Cast::Exact,
                left: *left as u32,
                right: *right as u32,
                missing: missing(*missing_left),
            },
            gbdt::Node::Leaf { values } => leaf(values),
        })
        .collect();
    Tree { nodes }
}
