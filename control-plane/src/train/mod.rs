//! Training with linfa: hyperparameter grids, seeded k-fold cross-validation, and the conversion
//! of each fitted linfa model into the model IR ([`model_wasm::ModelIr`]), checked against linfa's
//! own predictions.
//!
//! Families: linear regression (linfa-linear), elastic net (linfa-elasticnet), logistic regression
//! binary and multinomial (linfa-logistic), decision tree (linfa-trees) and random forest (bagged
//! linfa-trees, each tree on a bootstrap sample and a random feature subset, seeded). Logistic
//! regression and elastic net see standardised features; the scaling becomes the IR's
//! preprocessing, so the shipped model takes raw features.
//!
//! Ties: linfa-trees picks a leaf's class among tied classes through a `HashMap`, so its pick is
//! arbitrary. The IR re-derives every leaf's class from the training rows that reach it and breaks
//! ties towards the lowest class index; the parity check accepts a difference from linfa only on
//! such tied leaves.

mod boosted;
mod families;
pub(crate) mod metrics;
mod trees;

use std::collections::BTreeMap;
use std::time::Instant;

use model_wasm::ModelIr;
use ndarray::Array2;
use serde::{Deserialize, Serialize};

use crate::config::{Family, Metric, ModelSpec, TaskKind, TrainConfig};
use crate::data::{Table, Values};
use crate::rng::SplitMix64;
pub use families::{Fitted, LinfaPredictions, LinfaRow};
pub use metrics::{Metrics, Targets, score};

/// One point of a grid: a family and its hyperparameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    pub family: Family,
    pub params: BTreeMap<String, serde_json::Value>,
}

impl Candidate {
    /// `random_forest(max_depth=8, n_trees=100)`.
    pub fn label(&self) -> String {
        let params: Vec<String> = self.params.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!("{}({})", self.family.name(), params.join(", "))
    }

    fn float(&self, name: &str) -> Option<f64> {
        self.params.get(name).and_then(serde_json::Value::as_f64)
    }

    fn int(&self, name: &str) -> Option<u64> {
        self.params.get(name).and_then(serde_json::Value::as_u64)
    }

    fn bool(&self, name: &str) -> Option<bool> {
        self.params.get(name).and_then(serde_json::Value::as_bool)
    }

    fn str(&self, name: &str) -> Option<&str> {
        self.params.get(name).and_then(serde_json::Value::as_str)
    }
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    /// A number in [min, max].
    Float(f64, f64),
    /// An integer in [min, max].
    Int(u64, u64),
    /// A number greater than 0 and at most max.
    Positive(f64),
    Bool,
    Choice(&'static [&'static str]),
}

/// The hyperparameters each family takes.
fn param_kinds(family: Family) -> &'static [(&'static str, Kind)] {
    const QUALITY: Kind = Kind::Choice(&["gini", "entropy"]);
    // Threads a tree fit uses (0: every core); the model is the same on any number.
    const THREADS: Kind = Kind::Int(0, 1024);
    match family {
        Family::LinearRegression => &[("fit_intercept", Kind::Bool)],
        Family::ElasticNet => &[
            ("penalty", Kind::Float(0.0, 1e6)),
            ("l1_ratio", Kind::Float(0.0, 1.0)),
            ("max_iterations", Kind::Int(1, 1_000_000)),
            ("tolerance", Kind::Float(1e-12, 1.0)),
        ],
        Family::LogisticRegression => &[
            ("alpha", Kind::Float(0.0, 1e6)),
            ("max_iterations", Kind::Int(1, 100_000)),
            ("fit_intercept", Kind::Bool),
        ],
        Family::DecisionTree => &[
            ("max_depth", Kind::Int(1, 64)),
            ("min_weight_split", Kind::Float(1.0, 1e9)),
            ("min_weight_leaf", Kind::Float(1.0, 1e9)),
            ("split_quality", QUALITY),
        ],
        Family::RandomForest => &[
            ("n_trees", Kind::Int(1, 2000)),
            ("max_depth", Kind::Int(1, 64)),
            ("feature_fraction", Kind::Positive(1.0)),
            ("bootstrap", Kind::Bool),
            ("min_samples_leaf", Kind::Int(1, 1_000_000_000)),
            ("split_quality", QUALITY),
            ("max_bins", Kind::Int(2, 255)),
            ("n_threads", THREADS),
        ],
        Family::GradientBoosting => &[
            ("n_estimators", Kind::Int(1, 100_000)),
            ("learning_rate", Kind::Positive(1000.0)),
            ("num_leaves", Kind::Int(2, 131_072)),
            ("max_depth", Kind::Int(1, 64)),
            ("min_samples_leaf", Kind::Int(1, 1_000_000_000)),
            ("feature_fraction", Kind::Positive(1.0)),
            ("subsample", Kind::Positive(1.0)),
            ("l2_regularization", Kind::Float(0.0, 1e9)),
            ("max_bins", Kind::Int(2, 255)),
            ("early_stopping_rounds", Kind::Int(1, 100_000)),
            ("validation_fraction", Kind::Positive(0.5)),
            ("objective", Kind::Choice(&["squared_error", "poisson", "log_loss"])),
            ("categorical", Kind::Choice(&["ordinal", "native"])),
            ("n_threads", THREADS),
        ],
    }
}

fn to_json(name: &str, kind: Kind, value: &toml::Value) -> Result<serde_json::Value, String> {
    let bad = |what: &str| Err(format!("hyperparameter '{name}': {value} is not {what}"));
    match (kind, value) {
        (Kind::Float(lo, hi), toml::Value::Float(_) | toml::Value::Integer(_)) => {
            let v = value
                .as_float()
                .unwrap_or_else(|| value.as_integer().unwrap_or_default() as f64);
            if !(lo..=hi).contains(&v) {
                return bad(&format!("between {lo} and {hi}"));
            }
            Ok(serde_json::json!(v))
        }
        (Kind::Int(lo, hi), toml::Value::Integer(i)) => {
            if *i < 0 || !(lo..=hi).contains(&(*i as u64)) {
                return bad(&format!("an integer between {lo} and {hi}"));
            }
            Ok(serde_json::json!(i))
        }
        (Kind::Positive(hi), toml::Value::Float(_) | toml::Value::Integer(_)) => {
            let v = value
                .as_float()
                .unwrap_or_else(|| value.as_integer().unwrap_or_default() as f64);
            if !(v > 0.0 && v <= hi) {
                return bad(&format!("greater than 0 and at most {hi}"));
            }
            Ok(serde_json::json!(v))
        }
        (Kind::Bool, toml::Value::Boolean(b)) => Ok(serde_json::json!(b)),
        (Kind::Choice(options), toml::Value::String(s)) if options.contains(&s.as_str()) => Ok(serde_json::json!(s)),
        (Kind::Float(..) | Kind::Positive(_), _) => bad("a number"),
        (Kind::Int(lo, hi), _) => bad(&format!("an integer between {lo} and {hi}")),
        (Kind::Bool, _) => bad("true or false"),
        (Kind::Choice(options), _) => bad(&format!("one of {options:?}")),
    }
}

/// Checks every family's grid of a `[train]` section for a `task`; the error names the model by
/// its place.
pub(crate) fn check_grids(config: &TrainConfig, task: TaskKind) -> Result<(), String> {
    for (i, spec) in config.models.iter().enumerate() {
        let at = |e: String| format!("train.models[{}] ({}): {e}", i + 1, spec.family.name());
        for candidate in candidates(spec).map_err(at)? {
            if let Some(objective) = candidate.str("objective") {
                let fits = match task {
                    TaskKind::Classification => objective == "log_loss",
                    TaskKind::Regression => objective != "log_loss",
                };
                if !fits {
                    return Err(at(format!(
                        "hyperparameter 'objective': '{objective}' does not fit a {} task (use {})",
                        format!("{task:?}").to_lowercase(),
                        match task {
                            TaskKind::Classification => "log_loss",
                            TaskKind::Regression => "squared_error or poisson",
                        }
                    )));
                }
            }
        }
    }
    Ok(())
}

/// Every combination of the grid's values, in a fixed order.
pub fn candidates(spec: &ModelSpec) -> Result<Vec<Candidate>, String> {
    let kinds = param_kinds(spec.family);
    let names: Vec<&str> = kinds.iter().map(|(n, _)| *n).collect();
    let mut axes: Vec<(String, Vec<serde_json::Value>)> = Vec::new();
    for (name, values) in &spec.grid {
        let Some((_, kind)) = kinds.iter().find(|(n, _)| n == name) else {
            let known = if names.is_empty() {
                "none".to_owned()
            } else {
                names.join(", ")
            };
            return Err(format!(
                "unknown hyperparameter '{name}'{} (it takes: {known})",
                crate::text::suggest(name, &names)
            ));
        };
        if values.is_empty() {
            return Err(format!("hyperparameter '{name}' has an empty list of values"));
        }
        let values = values
            .iter()
            .map(|v| to_json(name, *kind, v))
            .collect::<Result<Vec<_>, _>>()?;
        axes.push((name.clone(), values));
    }
    let mut out = vec![BTreeMap::new()];
    for (name, values) in &axes {
        out = out
            .into_iter()
            .flat_map(|params| {
                values.iter().map(move |v| {
                    let mut p = params.clone();
                    p.insert(name.clone(), v.clone());
                    p
                })
            })
            .collect();
    }
    Ok(out
        .into_iter()
        .map(|params| Candidate {
            family: spec.family,
            params,
        })
        .collect())
}

/// Features and target as the trainers want them.
#[derive(Debug, Clone)]
pub struct TrainData {
    pub features: Vec<String>,
    /// One row per example; NaN where a value is missing.
    pub x: Array2<f64>,
    pub targets: Targets,
    /// Classes, in index order (classification only).
    pub classes: Vec<String>,
    pub target: String,
    /// Per feature, whether it holds the codes of an ordinal-encoded categorical column
    /// (`gradient_boosting` with `categorical = "native"` splits them on category sets).
    pub categorical: Vec<bool>,
}

impl TrainData {
    /// Takes `features` and `target` from a table. Every feature must be numeric (or boolean); a
    /// missing value becomes NaN (the families that cannot learn from one refuse it when they
    /// fit). The target's values must be among `classes` (classification).
    pub fn from_table(
        table: &Table,
        features: &[String],
        target: &str,
        task: TaskKind,
        classes: &[String],
    ) -> anyhow::Result<TrainData> {
        let rows = table.rows();
        let mut x = Array2::zeros((rows, features.len()));
        for (j, name) in features.iter().enumerate() {
            let column = table
                .column(name)
                .ok_or_else(|| anyhow::anyhow!("feature '{name}' is not in the data"))?;
            match &column.values {
                Values::Number(v) => {
                    for (i, value) in v.iter().enumerate() {
                        let value = value.unwrap_or(f64::NAN);
                        if value.is_infinite() {
                            anyhow::bail!("feature '{name}' has a non-finite value in row {}", i + 1);
                        }
                        x[[i, j]] = value;
                    }
                }
                Values::Bool(v) => {
                    for (i, b) in v.iter().enumerate() {
                        x[[i, j]] = b.map_or(f64::NAN, |b| if b { 1.0 } else { 0.0 });
                    }
                }
                Values::Text(_) => anyhow::bail!(
                    "feature '{name}' is a {} column: encode it (op = \"encode\") in a transform step",
                    column.ty
                ),
            }
        }
        let column = table
            .column(target)
            .ok_or_else(|| anyhow::anyhow!("target '{target}' is not in the data"))?;
        let targets = match task {
            TaskKind::Classification => {
                let mut y = Vec::with_capacity(rows);
                for r in 0..rows {
                    let text = column.values.text(r);
                    let k = classes.iter().position(|c| *c == text).ok_or_else(|| {
                        anyhow::anyhow!("target value '{text}' in row {} is not a known class", r + 1)
                    })?;
                    y.push(k);
                }
                Targets::Classes(y)
            }
            TaskKind::Regression => {
                let v = column
                    .numbers()
                    .ok_or_else(|| anyhow::anyhow!("target '{target}' is not numeric"))?;
                Targets::Values(v.iter().map(|x| x.unwrap_or(f64::NAN)).collect())
            }
        };
        Ok(TrainData {
            features: features.to_vec(),
            x,
            targets,
            classes: classes.to_vec(),
            target: target.to_owned(),
            categorical: vec![false; features.len()],
        })
    }

    /// Refuses a missing value: what the families that cannot learn from one call.
    pub fn check_complete(&self) -> anyhow::Result<()> {
        for (j, name) in self.features.iter().enumerate() {
            let missing = self.x.column(j).iter().filter(|v| v.is_nan()).count();
            if missing > 0 {
                anyhow::bail!(
                    "feature '{name}' has {missing} missing values: fill or drop them in a transform step, or train gradient_boosting or random_forest, which learn from them"
                );
            }
        }
        Ok(())
    }

    /// Checks a whole training split before any candidate trains: [`TrainData::check`], a target
    /// value for every row, no feature missing everywhere, at least two rows of every class that
    /// has any (so each can be in a fold's training rows), and no more classes than a module
    /// outputs.
    pub fn check_split(&self) -> anyhow::Result<()> {
        self.check()?;
        for (j, name) in self.features.iter().enumerate() {
            if self.x.column(j).iter().all(|v| v.is_nan()) {
                anyhow::bail!(
                    "feature '{name}' is missing in every row of the training split: drop it (op = \"drop\") or fill it"
                );
            }
        }
        match &self.targets {
            Targets::Values(y) => {
                if let Some(row) = y.iter().position(|v| !v.is_finite()) {
                    anyhow::bail!(
                        "target '{}' is {} in row {} of the training split: drop such rows (op = \"drop_missing\")",
                        self.target,
                        if y[row].is_nan() {
                            "missing".to_owned()
                        } else {
                            y[row].to_string()
                        },
                        row + 1
                    );
                }
            }
            Targets::Classes(y) => {
                if self.classes.len() > model_wasm::MAX_CLASSES {
                    anyhow::bail!(
                        "target '{}' has {} classes: a module predicts at most {}",
                        self.target,
                        self.classes.len(),
                        model_wasm::MAX_CLASSES
                    );
                }
                let mut counts = vec![0usize; self.classes.len()];
                y.iter().for_each(|k| counts[*k] += 1);
                if let Some(k) = counts.iter().position(|c| *c == 1) {
                    anyhow::bail!(
                        "target '{}': class '{}' has a single row in the training split; every class needs at least two (drop or merge it)",
                        self.target,
                        self.classes[k]
                    );
                }
            }
        }
        Ok(())
    }

    pub fn rows(&self) -> usize {
        self.x.nrows()
    }

    /// The rows as vectors (what the IR evaluator takes).
    pub fn row_vecs(&self) -> Vec<Vec<f64>> {
        self.x.rows().into_iter().map(|r| r.to_vec()).collect()
    }

    /// The subset of rows at `indices`.
    pub fn select(&self, indices: &[usize]) -> TrainData {
        TrainData {
            features: self.features.clone(),
            x: self.x.select(ndarray::Axis(0), indices),
            targets: match &self.targets {
                Targets::Classes(y) => Targets::Classes(indices.iter().map(|&i| y[i]).collect()),
                Targets::Values(y) => Targets::Values(indices.iter().map(|&i| y[i]).collect()),
            },
            classes: self.classes.clone(),
            target: self.target.clone(),
            categorical: self.categorical.clone(),
        }
    }

    /// Checks the data can train anything: a classifier needs two classes present.
    pub fn check(&self) -> anyhow::Result<()> {
        if self.rows() == 0 {
            anyhow::bail!("the training split is empty");
        }
        if let Targets::Classes(y) = &self.targets {
            let mut present: Vec<usize> = y.clone();
            present.sort_unstable();
            present.dedup();
            if present.len() < 2 {
                let only = present.first().map(|k| self.classes[*k].as_str()).unwrap_or("none");
                anyhow::bail!(
                    "the target '{}' has a single class ('{only}') in the training data: a classifier needs at least two",
                    self.target
                );
            }
        }
        Ok(())
    }
}

/// Cross-validation of one candidate.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct CvResult {
    pub metric: Metric,
    pub mean: f64,
    pub std: f64,
    pub folds: Vec<f64>,
    /// Mean of every metric over the folds.
    pub means: BTreeMap<String, f64>,
    pub seconds: f64,
}

/// Fold of each row: seeded, stratified by class for classification.
pub(crate) fn fold_assignment(targets: &Targets, folds: usize, seed: u64) -> Vec<usize> {
    let mut rng = SplitMix64(seed ^ 0x5EED_F01D);
    let n = match targets {
        Targets::Classes(y) => y.len(),
        Targets::Values(y) => y.len(),
    };
    let mut groups: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for i in 0..n {
        let g = match targets {
            Targets::Classes(y) => y[i],
            Targets::Values(_) => 0,
        };
        groups.entry(g).or_default().push(i);
    }
    let mut fold = vec![0; n];
    let mut offset = 0;
    for (_, mut rows) in groups {
        rng.shuffle(&mut rows);
        for (k, i) in rows.into_iter().enumerate() {
            fold[i] = (k + offset) % folds;
        }
        // Continue the round-robin where the last class stopped, so fold sizes stay even.
        offset = (offset + 1) % folds;
    }
    fold
}

/// k-fold cross-validation: fit on k-1 folds, score the IR on the held-out fold. Folds run on
/// two threads; each finished fold counts one on `progress`.
pub(crate) fn cross_validate(
    candidate: &Candidate,
    data: &TrainData,
    folds: usize,
    seed: u64,
    metric: Metric,
    progress: &crate::progress::Progress,
) -> anyhow::Result<CvResult> {
    let started = Instant::now();
    let assignment = fold_assignment(&data.targets, folds, seed);
    let run_fold = |k: usize| -> anyhow::Result<Metrics> {
        let (train_idx, test_idx): (Vec<usize>, Vec<usize>) = (0..data.rows()).partition(|&i| assignment[i] != k);
        let train = data.select(&train_idx);
        let test = data.select(&test_idx);
        // Folds already run on two threads.
        let fitted = families::fit(candidate, &train, seed.wrapping_add(k as u64), 1)?;
        let metrics = score(&fitted.ir, &test.row_vecs(), &test.targets)?;
        progress.inc(1);
        Ok(metrics)
    };
    let results: Vec<anyhow::Result<Metrics>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..2)
            .map(|worker| {
                let run_fold = &run_fold;
                scope.spawn(move || {
                    (0..folds)
                        .filter(|k| k % 2 == worker)
                        .map(|k| (k, run_fold(k)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut all: Vec<(usize, anyhow::Result<Metrics>)> = handles
            .into_iter()
            .flat_map(|h| h.join().expect("fold thread"))
            .collect();
        all.sort_by_key(|(k, _)| *k);
        all.into_iter().map(|(_, r)| r).collect()
    });
    let per_fold: Vec<Metrics> = results.into_iter().collect::<anyhow::Result<_>>()?;
    let scores: Vec<f64> = per_fold.iter().map(|m| m.get(metric).unwrap_or(f64::NAN)).collect();
    let mean = scores.iter().sum::<f64>() / scores.len() as f64;
    let std = (scores.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / scores.len() as f64).sqrt();
    let mut means: BTreeMap<String, f64> = BTreeMap::new();
    for m in &per_fold {
        for (name, v) in m.scalars() {
            *means.entry(name).or_default() += v / per_fold.len() as f64;
        }
    }
    Ok(CvResult {
        metric,
        mean,
        std,
        folds: scores,
        means,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Fits a candidate on all of `data`.
/// Fits a candidate on all of `data`; tree families use every core unless the grid says.
pub fn fit(candidate: &Candidate, data: &TrainData, seed: u64) -> anyhow::Result<Fitted> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    families::fit(candidate, data, seed, threads)
}

/// How the IR's predictions compare with linfa's on some rows.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Parity {
    pub rows: usize,
    /// Rows whose label differs only because linfa broke a tie arbitrarily.
    pub tie_differences: usize,
    /// Largest relative difference of a probability or value.
    pub max_relative_difference: f64,
}

pub(crate) use model_wasm::parity::{agree, scaled_difference};

/// Compares the IR with linfa's own predictions on `x`; an error names the first row that differs.
pub(crate) fn check_parity(ir: &ModelIr, linfa: &LinfaPredictions, x: &[Vec<f64>]) -> anyhow::Result<Parity> {
    let mut parity = Parity {
        rows: x.len(),
        ..Parity::default()
    };
    for (i, row) in x.iter().enumerate() {
        let ours = ir.predict(row)?;
        let theirs = linfa.row(i);
        match (ours, theirs) {
            (model_wasm::Prediction::Value(a), LinfaRow::Value { value: b }) => {
                parity.max_relative_difference = parity.max_relative_difference.max(scaled_difference(a, b));
                if !agree(a, b) {
                    anyhow::bail!("row {}: the IR predicts {a}, linfa {b}", i + 1);
                }
            }
            (
                model_wasm::Prediction::Class { label, probabilities },
                LinfaRow::Class {
                    label: theirs,
                    probabilities: their_probabilities,
                    tie,
                },
            ) => {
                if let Some(p) = their_probabilities
                    && !tie
                {
                    for (a, b) in probabilities.iter().zip(&p) {
                        parity.max_relative_difference = parity.max_relative_difference.max(scaled_difference(*a, *b));
                        if !agree(*a, *b) {
                            anyhow::bail!("row {}: probabilities differ: IR {probabilities:?}, linfa {p:?}", i + 1);
                        }
                    }
                }
                if label != theirs {
                    if tie {
                        parity.tie_differences += 1;
                    } else {
                        anyhow::bail!("row {}: the IR predicts class {label}, linfa class {theirs}", i + 1);
                    }
                }
            }
            (ours, theirs) => anyhow::bail!(
                "row {}: the IR and linfa disagree on the kind of output ({ours:?} vs {theirs:?})",
                i + 1
            ),
        }
    }
    Ok(parity)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(family: Family, grid: &str) -> ModelSpec {
        let grid: BTreeMap<String, Vec<toml::Value>> = toml::from_str(grid).unwrap();
        ModelSpec { family, grid }
    }

    #[test]
    fn grids_expand_to_every_combination() {
        let c = candidates(&spec(Family::RandomForest, "n_trees = [10, 20]\nmax_depth = [3, 5, 7]")).unwrap();
        assert_eq!(c.len(), 6);
        assert_eq!(c[0].label(), "random_forest(max_depth=3, n_trees=10)");
        assert_eq!(candidates(&spec(Family::LinearRegression, "")).unwrap().len(), 1);
    }

    #[test]
    fn bad_grids_are_named() {
        let err = candidates(&spec(Family::RandomForest, "n_tree = [10]")).unwrap_err();
        assert!(
            err.contains("unknown hyperparameter 'n_tree'; did you mean 'n_trees'?"),
            "{err}"
        );
        let err = candidates(&spec(Family::RandomForest, "n_trees = []")).unwrap_err();
        assert_eq!(err, "hyperparameter 'n_trees' has an empty list of values");
        let err = candidates(&spec(Family::DecisionTree, "split_quality = [\"mse\"]")).unwrap_err();
        assert!(err.contains("one of [\"gini\", \"entropy\"]"), "{err}");
        let err = candidates(&spec(Family::ElasticNet, "l1_ratio = [1.5]")).unwrap_err();
        assert!(err.contains("between 0 and 1"), "{err}");
    }

    #[test]
    fn folds_are_stratified_and_seeded() {
        let y: Vec<usize> = (0..100).map(|i| usize::from(i % 5 == 0)).collect();
        let folds = fold_assignment(&Targets::Classes(y.clone()), 5, 1);
        for k in 0..5 {
            let in_fold: Vec<usize> = (0..100).filter(|&i| folds[i] == k).collect();
            assert_eq!(in_fold.len(), 20);
            assert_eq!(in_fold.iter().filter(|&&i| y[i] == 1).count(), 4);
        }
        assert_eq!(folds, fold_assignment(&Targets::Classes(y), 5, 1));
    }
}

/// Training on the bundled data: every family fits, its IR matches linfa on the held-out rows,
/// and reaches a sensible score.
#[cfg(test)]
mod bundled {
    use super::*;
    use crate::config::TaskKind;
    use crate::data::ColumnSpec;
    use crate::data::ColumnType;
    use model_wasm::parity::TOLERANCE as PARITY_TOLERANCE;

    fn load(file: &str, target: &str, threshold: Option<f64>) -> (TrainData, TrainData) {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../examples")
            .join(file);
        let header = std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .next()
            .unwrap()
            .to_owned();
        let names: Vec<String> = header.split(',').map(|h| h.trim_matches('"').to_owned()).collect();
        let specs: Vec<ColumnSpec> = names
            .iter()
            .map(|n| ColumnSpec {
                name: n.clone(),
                ty: ColumnType::Float,
                nullable: false,
                allow_non_finite: false,
            })
            .collect();
        let mut table = Table::read_csv(&path, &specs).unwrap();
        let features: Vec<String> = names.iter().filter(|n| *n != target).cloned().collect();
        let (task, classes) = match threshold {
            Some(t) => {
                let c = table.column_mut(target).unwrap();
                if let Values::Number(v) = &mut c.values {
                    v.iter_mut()
                        .for_each(|x| *x = x.map(|x| if x >= t { 1.0 } else { 0.0 }));
                }
                (TaskKind::Classification, vec!["0".to_owned(), "1".to_owned()])
            }
            None => (TaskKind::Regression, vec![]),
        };
        let data = TrainData::from_table(&table, &features, target, task, &classes).unwrap();
        let idx: Vec<usize> = (0..data.rows()).collect();
        let (test, train): (Vec<usize>, Vec<usize>) = idx.into_iter().partition(|i| i % 5 == 0);
        (data.select(&train), data.select(&test))
    }

    fn fit_and_check(family: Family, grid: &str, data: &(TrainData, TrainData)) -> Metrics {
        let spec = ModelSpec {
            family,
            grid: toml::from_str(grid).unwrap(),
        };
        let candidate = candidates(&spec).unwrap().remove(0);
        let fitted = fit(&candidate, &data.0, 7).unwrap();
        let linfa = fitted.linfa_predict(&data.1.x);
        // The predictions are stored as JSON between the train and export steps.
        let linfa: LinfaPredictions = serde_json::from_str(&serde_json::to_string(&linfa).unwrap()).unwrap();
        let parity = check_parity(&fitted.ir, &linfa, &data.1.row_vecs()).unwrap();
        assert!(parity.max_relative_difference <= PARITY_TOLERANCE, "{parity:?}");
        score(&fitted.ir, &data.1.row_vecs(), &data.1.targets).unwrap()
    }

    #[test]
    fn wine_classifiers_match_linfa_and_learn() {
        let data = load("winequality/winequality-red.csv", "quality", Some(6.0));
        for (family, grid, min_accuracy) in [
            (Family::LogisticRegression, "alpha = [1.0]", 0.7),
            (Family::DecisionTree, "max_depth = [6]", 0.65),
            (Family::RandomForest, "n_trees = [30]\nmax_depth = [8]", 0.7),
        ] {
            let m = fit_and_check(family, grid, &data);
            let accuracy = m.get(Metric::Accuracy).unwrap();
            assert!(accuracy > min_accuracy, "{family:?}: accuracy {accuracy}");
        }
    }

    #[test]
    fn diabetes_regressors_match_linfa_and_learn() {
        let data = load("diabetes/diabetes.csv", "progression", None);
        for family in [Family::LinearRegression, Family::ElasticNet] {
            let grid = if family == Family::ElasticNet {
                "penalty = [0.1]"
            } else {
                ""
            };
            let m = fit_and_check(family, grid, &data);
            assert!(m.get(Metric::R2).unwrap() > 0.3, "{family:?}: {m:?}");
        }
    }

    #[test]
    fn cross_validation_is_reproducible() {
        let (train, _) = load("winequality/winequality-red.csv", "quality", Some(6.0));
        let spec = ModelSpec {
            family: Family::DecisionTree,
            grid: toml::from_str("max_depth = [4]").unwrap(),
        };
        let c = candidates(&spec).unwrap().remove(0);
        let hidden = crate::progress::Progress::hidden();
        let a = cross_validate(&c, &train, 5, 3, Metric::F1, &hidden).unwrap();
        let b = cross_validate(&c, &train, 5, 3, Metric::F1, &hidden).unwrap();
        assert_eq!(a.folds, b.folds);
        assert!(a.mean > 0.6, "{a:?}");
    }

    #[test]
    fn a_single_class_target_is_refused() {
        let (mut train, _) = load("winequality/winequality-red.csv", "quality", Some(6.0));
        train.targets = Targets::Classes(vec![1; train.rows()]);
        let spec = ModelSpec {
            family: Family::LogisticRegression,
            grid: Default::default(),
        };
        let err = fit(&candidates(&spec).unwrap()[0], &train, 1).unwrap_err().to_string();
        assert!(err.contains("single class ('1')"), "{err}");
    }

    /// Wine with a share of its feature values removed (every `every`-th value, row-major).
    fn with_missing(mut data: TrainData, every: usize) -> TrainData {
        for (i, v) in data.x.iter_mut().enumerate() {
            if i % every == 3 {
                *v = f64::NAN;
            }
        }
        data
    }

    #[test]
    fn gradient_boosting_learns_every_task_and_matches_its_ir() {
        let wine = load("winequality/winequality-red.csv", "quality", Some(6.0));
        let m = fit_and_check(Family::GradientBoosting, "n_estimators = [60]", &wine);
        assert!(m.get(Metric::Accuracy).unwrap() > 0.75, "{m:?}");
        assert!(m.get(Metric::RocAuc).unwrap() > 0.82, "{m:?}");

        let diabetes = load("diabetes/diabetes.csv", "progression", None);
        for objective in ["squared_error", "poisson"] {
            let grid =
                format!("objective = [\"{objective}\"]\nn_estimators = [80]\nlearning_rate = [0.05]\nnum_leaves = [8]");
            let m = fit_and_check(Family::GradientBoosting, &grid, &diabetes);
            assert!(m.get(Metric::R2).unwrap() > 0.3, "{objective}: {m:?}");
        }

        // Three classes from the wine quality score: softmax, one tree per class and round.
        let (train, test) = load("winequality/winequality-red.csv", "quality", None);
        let bucket = |data: TrainData| {
            let Targets::Values(y) = &data.targets else {
                unreachable!()
            };
            let y = y.iter().map(|q| (*q as usize).clamp(5, 7) - 5).collect();
            TrainData {
                targets: Targets::Classes(y),
                classes: vec!["low".into(), "mid".into(), "high".into()],
                ..data
            }
        };
        let three = (bucket(train), bucket(test));
        let m = fit_and_check(Family::GradientBoosting, "n_estimators = [40]", &three);
        assert!(m.get(Metric::Accuracy).unwrap() > 0.6, "{m:?}");
    }

    #[test]
    fn tree_families_learn_from_missing_values_and_the_others_refuse_them() {
        let (train, test) = load("winequality/winequality-red.csv", "quality", Some(6.0));
        let data = (with_missing(train, 7), with_missing(test, 7));
        for (family, grid, min_accuracy) in [
            (Family::GradientBoosting, "n_estimators = [60]", 0.72),
            (Family::RandomForest, "n_trees = [40]\nmax_depth = [8]", 0.7),
        ] {
            let m = fit_and_check(family, grid, &data);
            assert!(m.get(Metric::Accuracy).unwrap() > min_accuracy, "{family:?}: {m:?}");
            let fitted = fit(&candidates(&spec(family, grid)).unwrap()[0], &data.0, 1).unwrap();
            assert!(
                fitted.ir.accepts_missing().iter().all(|a| *a),
                "{family:?} refuses a missing value"
            );
        }
        let err = fit(
            &candidates(&spec(Family::LogisticRegression, "")).unwrap()[0],
            &data.0,
            1,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("feature 'fixed acidity' has") && err.contains("train gradient_boosting or random_forest"),
            "{err}"
        );
    }

    #[test]
    fn native_categorical_features_split_on_category_sets() {
        let (mut train, mut test) = load("winequality/winequality-red.csv", "quality", Some(6.0));
        // alcohol as 12 category codes, in an order unrelated to its value.
        let a = train.features.iter().position(|f| f == "alcohol").unwrap();
        for data in [&mut train, &mut test] {
            data.x
                .column_mut(a)
                .mapv_inplace(|v| ((v * 2.0) as u64 * 7 % 12) as f64);
            data.categorical[a] = true;
        }
        let data = (train, test);
        let grid = "n_estimators = [30]\ncategorical = [\"native\"]\nmin_samples_leaf = [10]";
        fit_and_check(Family::GradientBoosting, grid, &data);
        let fitted = fit(
            &candidates(&spec(Family::GradientBoosting, grid)).unwrap()[0],
            &data.0,
            1,
        )
        .unwrap();
        let model_wasm::Body::Boosted { trees, .. } = &fitted.ir.body else {
            panic!("not boosted")
        };
        let sets = trees
            .iter()
            .flat_map(|t| &t.nodes)
            .filter(|n| {
                matches!(**n, model_wasm::Node::SplitIn { feature, cast: model_wasm::ir::Cast::Exact, .. } if feature as usize == a)
            })
            .count();
        assert!(sets > 0, "no category-set split on alcohol");
        // Without "native", the codes are numbers.
        let ordinal = fit(
            &candidates(&spec(Family::GradientBoosting, "n_estimators = [30]")).unwrap()[0],
            &data.0,
            1,
        )
        .unwrap();
        let model_wasm::Body::Boosted { trees, .. } = &ordinal.ir.body else {
            panic!("not boosted")
        };
        assert!(
            !trees
                .iter()
                .flat_map(|t| &t.nodes)
                .any(|n| matches!(n, model_wasm::Node::SplitIn { .. }))
        );
    }

    #[test]
    fn bad_boosting_grids_and_splits_are_named() {
        for (grid, expected) in [
            (
                "learning_rate = [0.0]",
                "hyperparameter 'learning_rate': 0.0 is not greater than 0 and at most 1000",
            ),
            (
                "learning_rate = [-0.1]",
                "hyperparameter 'learning_rate': -0.1 is not greater than 0 and at most 1000",
            ),
            (
                "num_leaves = [1]",
                "hyperparameter 'num_leaves': 1 is not an integer between 2 and 131072",
            ),
            (
                "n_estimators = []",
                "hyperparameter 'n_estimators' has an empty list of values",
            ),
            (
                "objective = [\"huber\"]",
                "hyperparameter 'objective': \"huber\" is not one of [\"squared_error\", \"poisson\", \"log_loss\"]",
            ),
        ] {
            assert_eq!(candidates(&spec(Family::GradientBoosting, grid)).unwrap_err(), expected);
        }
        let (train, _) = load("winequality/winequality-red.csv", "quality", Some(6.0));
        let poisson = &candidates(&spec(Family::GradientBoosting, "objective = [\"poisson\"]")).unwrap()[0];
        let err = format!("{:#}", fit(poisson, &train, 1).unwrap_err());
        assert!(
            err.contains("hyperparameter 'objective': 'poisson' does not fit the target 'quality', which is a class"),
            "{err}"
        );

        let mut all_missing = train.clone();
        all_missing.x.column_mut(2).fill(f64::NAN);
        let err = all_missing.check_split().unwrap_err().to_string();
        assert!(
            err.starts_with("feature 'citric acid' is missing in every row"),
            "{err}"
        );

        let mut lonely = train.clone();
        lonely.classes.push("rare".into());
        let Targets::Classes(y) = &mut lonely.targets else {
            unreachable!()
        };
        y[10] = 2;
        let err = lonely.check_split().unwrap_err().to_string();
        assert!(err.contains("class 'rare' has a single row"), "{err}");

        let mut many = train.clone();
        many.classes = (0..=model_wasm::MAX_CLASSES).map(|k| k.to_string()).collect();
        let err = many.check_split().unwrap_err().to_string();
        assert_eq!(err, "target 'quality' has 1025 classes: a module predicts at most 1024");

        let (mut diabetes, _) = load("diabetes/diabetes.csv", "progression", None);
        let Targets::Values(y) = &mut diabetes.targets else {
            unreachable!()
        };
        y[4] = f64::NAN;
        let err = diabetes.check_split().unwrap_err().to_string();
        assert!(
            err.starts_with("target 'progression' is missing in row 5 of the training split"),
            "{err}"
        );
    }

    fn spec(family: Family, grid: &str) -> ModelSpec {
        ModelSpec {
            family,
            grid: toml::from_str(grid).unwrap(),
        }
    }
}
