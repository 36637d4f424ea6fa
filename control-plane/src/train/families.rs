//! Fitting each family with linfa and turning the fitted model into the IR.

use linfa::prelude::*;
use linfa_elasticnet::ElasticNet;
use linfa_linear::{FittedLinearRegression, LinearRegression};
use linfa_logistic::{
    FittedLogisticRegression, LogisticRegression, MultiFittedLogisticRegression, MultiLogisticRegression,
};
use linfa_trees::{DecisionTree, SplitQuality};
use model_wasm::{Aggregate, Body, IR_VERSION, Link, ModelIr, Output, Preprocess};
use ndarray::{Array1, Array2, Axis};
use serde::{Deserialize, Serialize};

use super::boosted;
use super::trees::{ConvertedTree, convert, leaf_of};
use super::{Candidate, Targets, TrainData};
use crate::config::Family;

/// Intercept given to a class the training data lacked (a multinomial fit on a fold without it):
/// finite, and far enough below any real score that its probability is zero in float64.
const ABSENT_CLASS_INTERCEPT: f64 = -1.0e3;

/// Standard scaling fitted on training data: `(x - center) * scale`.
#[derive(Debug, Clone)]
struct Scale {
    center: Vec<f64>,
    scale: Vec<f64>,
}

impl Scale {
    fn fit(x: &Array2<f64>) -> Scale {
        let n = x.nrows().max(1) as f64;
        let center: Vec<f64> = x.columns().into_iter().map(|c| c.sum() / n).collect();
        let scale = x
            .columns()
            .into_iter()
            .zip(&center)
            .map(|(c, m)| {
                let std = (c.iter().map(|v| (v - m).powi(2)).sum::<f64>() / n).sqrt();
                if std > 1e-12 { 1.0 / std } else { 1.0 }
            })
            .collect();
        Scale { center, scale }
    }

    fn apply(&self, x: &Array2<f64>) -> Array2<f64> {
        let mut out = x.clone();
        for (j, mut column) in out.columns_mut().into_iter().enumerate() {
            column.mapv_inplace(|v| (v - self.center[j]) * self.scale[j]);
        }
        out
    }

    fn preprocess(&self) -> Preprocess {
        Preprocess::Scale {
            center: self.center.clone(),
            scale: self.scale.clone(),
        }
    }
}

/// A fitted linfa model, kept to produce linfa's own predictions for the parity check.
#[derive(Debug)]
enum LinfaModel {
    Linear(FittedLinearRegression<f64>),
    ElasticNet(ElasticNet<f64>, Scale),
    Logistic(FittedLogisticRegression<f64, usize>, Scale),
    MultiLogistic(MultiFittedLogisticRegression<f64, usize>, Scale),
    /// Each tree with the features it saw and its tied leaves.
    Trees(Vec<(DecisionTree<f64, usize>, Vec<usize>, ConvertedTree)>),
    Booster(gbdt::Booster),
    Forest(gbdt::Forest),
}

/// A trained model: its IR, and the linfa model it came from.
#[derive(Debug)]
pub struct Fitted {
    pub ir: ModelIr,
    model: LinfaModel,
}

/// linfa's prediction for one row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LinfaRow {
    Value {
        value: f64,
    },
    Class {
        label: usize,
        /// None where linfa gives no probabilities (a single tree).
        probabilities: Option<Vec<f64>>,
        /// This row may legitimately differ: a tie linfa broke its own way, or a value on an f32
        /// rounding boundary of a tree split (linfa compares in f64, the IR and ONNX in f32).
        tie: bool,
    },
}

/// linfa's predictions on a set of rows (stored with the model for the export step's check).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LinfaPredictions {
    pub rows: Vec<LinfaRow>,
}

impl LinfaPredictions {
    pub fn row(&self, i: usize) -> LinfaRow {
        self.rows[i].clone()
    }
}

impl Fitted {
    /// linfa's own predictions on `x` (raw features, IR order).
    pub fn linfa_predict(&self, x: &Array2<f64>) -> LinfaPredictions {
        let n_classes = self.ir.n_outputs();
        let rows = match &self.model {
            LinfaModel::Linear(m) => m.predict(x).iter().map(|v| LinfaRow::Value { value: *v }).collect(),
            LinfaModel::ElasticNet(m, s) => m
                .predict(&s.apply(x))
                .iter()
                .map(|v| LinfaRow::Value { value: *v })
                .collect(),
            LinfaModel::Logistic(m, s) => {
                let xs = s.apply(x);
                let labels = m.predict(&xs);
                let p_pos = m.predict_probabilities(&xs);
                let pos = m.labels().pos.class;
                labels
                    .iter()
                    .zip(p_pos.iter())
                    .map(|(label, p)| {
                        let p1 = if pos == 1 { *p } else { 1.0 - p };
                        LinfaRow::Class {
                            label: *label,
                            probabilities: Some(vec![1.0 - p1, p1]),
                            // linfa picks the positive class at exactly 0.5, the IR the first.
                            tie: *p == 0.5,
                        }
                    })
                    .collect()
            }
            LinfaModel::MultiLogistic(m, s) => {
                let xs = s.apply(x);
                let labels = m.predict(&xs);
                let probs = m.predict_probabilities(&xs);
                labels
                    .iter()
                    .zip(probs.rows())
                    .map(|(label, p)| {
                        let mut full = vec![0.0; n_classes];
                        for (j, class) in m.classes().iter().enumerate() {
                            full[*class] = p[j];
                        }
                        LinfaRow::Class {
                            label: *label,
                            probabilities: Some(full),
                            tie: false,
                        }
                    })
                    .collect()
            }
            LinfaModel::Trees(trees) => {
                let mut votes = vec![vec![0u32; n_classes]; x.nrows()];
                let mut tie = vec![false; x.nrows()];
                for (tree, features, converted) in trees {
                    let labels = tree.predict(&x.select(Axis(1), features));
                    for (i, label) in labels.iter().enumerate() {
                        votes[i][*label] += 1;
                        let row: Vec<f64> = x.row(i).to_vec();
                        tie[i] |= converted.tied[leaf_of(&converted.tree, &row)] || converted.on_f32_boundary(&row);
                    }
                }
                let single = trees.len() == 1;
                votes
                    .into_iter()
                    .zip(tie)
                    .map(|(v, tie)| {
                        let max = *v.iter().max().expect("classes");
                        let label = v.iter().position(|c| *c == max).expect("a maximum");
                        let vote_tie = v.iter().filter(|c| **c == max).count() > 1;
                        let total = trees.len() as f64;
                        LinfaRow::Class {
                            label,
                            probabilities: (!single).then(|| v.iter().map(|c| *c as f64 / total).collect()),
                            tie: tie || vote_tie,
                        }
                    })
                    .collect()
            }
            LinfaModel::Booster(m) => {
                let classifier = matches!(self.ir.output, Output::Classification { .. });
                x.rows()
                    .into_iter()
                    .map(|r| tree_row(m.predict(r.as_slice().expect("row-major")), classifier))
                    .collect()
            }
            LinfaModel::Forest(m) => x
                .rows()
                .into_iter()
                .map(|r| tree_row(m.predict(r.as_slice().expect("row-major")), true))
                .collect(),
        };
        LinfaPredictions { rows }
    }
}

fn output(data: &TrainData) -> Output {
    match data.targets {
        Targets::Classes(_) => Output::Classification {
            classes: data.classes.clone(),
        },
        Targets::Values(_) => Output::Regression {
            target: data.target.clone(),
        },
    }
}

/// A `gbdt` model's prediction of one row (values, or class probabilities), as the parity check
/// compares it.
fn tree_row(prediction: Vec<f64>, classifier: bool) -> LinfaRow {
    if !classifier {
        return LinfaRow::Value { value: prediction[0] };
    }
    let max = prediction.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let label = prediction.iter().position(|p| *p == max).unwrap_or(0);
    let tie = prediction.iter().filter(|p| **p == max).count() > 1;
    LinfaRow::Class {
        label,
        probabilities: Some(prediction),
        tie,
    }
}

fn ir(data: &TrainData, preprocess: Vec<Preprocess>, body: Body) -> anyhow::Result<ModelIr> {
    let ir = ModelIr {
        ir_version: IR_VERSION,
        features: data.features.clone(),
        preprocess,
        body,
        output: output(data),
    };
    ir.validate()?;
    Ok(ir)
}

fn values(data: &TrainData) -> anyhow::Result<Array1<f64>> {
    match &data.targets {
        Targets::Values(y) => Ok(Array1::from(y.clone())),
        Targets::Classes(_) => anyhow::bail!("a regression family needs a numeric target"),
    }
}

fn classes(data: &TrainData) -> anyhow::Result<Array1<usize>> {
    match &data.targets {
        Targets::Classes(y) => Ok(Array1::from(y.clone())),
        Targets::Values(_) => anyhow::bail!("a classification family needs classes"),
    }
}

fn quality(c: &Candidate) -> SplitQuality {
    if c.str("split_quality") == Some("entropy") {
        SplitQuality::Entropy
    } else {
        SplitQuality::Gini
    }
}

/// Fits `candidate` on `data`; `seed` drives the forest's bootstraps and feature subsets, and
/// boosting's row and feature samples. `threads` is what a tree family uses unless its grid says
/// (`n_threads`); no model depends on it.
pub(super) fn fit(candidate: &Candidate, data: &TrainData, seed: u64, threads: usize) -> anyhow::Result<Fitted> {
    data.check()?;
    if !candidate.family.takes_missing() {
        data.check_complete()?;
    }
    let label = candidate.label();
    fit_family(candidate, data, seed, threads).map_err(|e| e.context(format!("fitting {label}")))
}

fn fit_family(c: &Candidate, data: &TrainData, seed: u64, threads: usize) -> anyhow::Result<Fitted> {
    let nf = data.features.len();
    match c.family {
        Family::LinearRegression => {
            let y = values(data)?;
            let model = LinearRegression::new()
                .with_intercept(c.bool("fit_intercept").unwrap_or(true))
                .fit(&Dataset::new(data.x.clone(), y))?;
            let body = Body::Linear {
                weights: model.params().to_vec(),
                intercepts: vec![model.intercept()],
                link: Link::Identity,
            };
            Ok(Fitted {
                ir: ir(data, vec![], body)?,
                model: LinfaModel::Linear(model),
            })
        }
        Family::ElasticNet => {
            let y = values(data)?;
            let scale = Scale::fit(&data.x);
            let model = ElasticNet::params()
                .penalty(c.float("penalty").unwrap_or(1.0))
                .l1_ratio(c.float("l1_ratio").unwrap_or(0.5))
                .max_iterations(c.int("max_iterations").unwrap_or(1000) as u32)
                .tolerance(c.float("tolerance").unwrap_or(1e-4))
                .fit(&Dataset::new(scale.apply(&data.x), y))?;
            let body = Body::Linear {
                weights: model.hyperplane().to_vec(),
                intercepts: vec![model.intercept()],
                link: Link::Identity,
            };
            Ok(Fitted {
                ir: ir(data, vec![scale.preprocess()], body)?,
                model: LinfaModel::ElasticNet(model, scale),
            })
        }
        Family::LogisticRegression => {
            let y = classes(data)?;
            let scale = Scale::fit(&data.x);
            let xs = scale.apply(&data.x);
            let alpha = c.float("alpha").unwrap_or(1.0);
            let iterations = c.int("max_iterations").unwrap_or(100);
            let intercept = c.bool("fit_intercept").unwrap_or(true);
            if data.classes.len() == 2 {
                let model = LogisticRegression::default()
                    .alpha(alpha)
                    .max_iterations(iterations)
                    .with_intercept(intercept)
                    .fit(&Dataset::new(xs, y))?;
                // linfa models P(positive class); the IR's sigmoid gives P(class 1).
                let sign = if model.labels().pos.class == 1 { 1.0 } else { -1.0 };
                let body = Body::Linear {
                    weights: model.params().iter().map(|w| sign * w).collect(),
                    intercepts: vec![sign * model.intercept()],
                    link: Link::Sigmoid,
                };
                Ok(Fitted {
                    ir: ir(data, vec![scale.preprocess()], body)?,
                    model: LinfaModel::Logistic(model, scale),
                })
            } else {
                let model = MultiLogisticRegression::default()
                    .alpha(alpha)
                    .max_iterations(iterations)
                    .with_intercept(intercept)
                    .fit(&Dataset::new(xs, y))?;
                let k = data.classes.len();
                let mut weights = vec![0.0; k * nf];
                let mut intercepts = vec![ABSENT_CLASS_INTERCEPT; k];
                for (j, class) in model.classes().iter().enumerate() {
                    for f in 0..nf {
                        weights[class * nf + f] = model.params()[[f, j]];
                    }
                    intercepts[*class] = model.intercept()[j];
                }
                let body = Body::Linear {
                    weights,
                    intercepts,
                    link: Link::Softmax,
                };
                Ok(Fitted {
                    ir: ir(data, vec![scale.preprocess()], body)?,
                    model: LinfaModel::MultiLogistic(model, scale),
                })
            }
        }
        Family::DecisionTree => {
            let y = classes(data)?;
            let all: Vec<usize> = (0..nf).collect();
            let (tree, converted) = fit_tree(
                c,
                data,
                &data.x,
                y.as_slice().expect("contiguous"),
                &all,
                c.int("max_depth"),
            )?;
            let body = Body::Trees {
                trees: vec![converted.tree.clone()],
                aggregate: Aggregate::Vote,
            };
            Ok(Fitted {
                ir: ir(data, vec![], body)?,
                model: LinfaModel::Trees(vec![(tree, all, converted)]),
            })
        }
        Family::GradientBoosting => {
            let (body, model) = boosted::fit_boosting(c, data, seed, threads)?;
            Ok(Fitted {
                ir: ir(data, vec![], body)?,
                model: LinfaModel::Booster(model),
            })
        }
        Family::RandomForest => {
            classes(data)?;
            let (body, model) = boosted::fit_forest(c, data, seed, threads)?;
            Ok(Fitted {
                ir: ir(data, vec![], body)?,
                model: LinfaModel::Forest(model),
            })
        }
    }
}

/// Sample weights by class: `1 + (K - 1 - k) * 2^-12`, exact in f32. linfa-trees picks a leaf's
/// class among tied weight sums through a `HashMap`, i.e. at random per process; with a distinct
/// weight per class no two classes tie, and the lower class index wins what would have been a tie
/// (as in the IR and scikit-learn), so the same data always gives the same trees. The weights are
/// too close to 1 to change which class has the majority in a leaf of fewer than 4096 / (K - 1) rows.
pub(super) fn class_weights(k: usize) -> Vec<f32> {
    (0..k).map(|c| 1.0 + (k - 1 - c) as f32 / 4096.0).collect()
}

/// One linfa tree on `x` (columns = `features` of `data`), converted to the IR.
fn fit_tree(
    c: &Candidate,
    data: &TrainData,
    x: &Array2<f64>,
    y: &[usize],
    features: &[usize],
    max_depth: Option<u64>,
) -> anyhow::Result<(DecisionTree<f64, usize>, ConvertedTree)> {
    let weights = class_weights(data.classes.len());
    let row_weights: Array1<f32> = y.iter().map(|k| weights[*k]).collect();
    let tree = DecisionTree::params()
        .split_quality(quality(c))
        .max_depth(max_depth.map(|d| d as usize))
        .min_weight_split(c.float("min_weight_split").unwrap_or(2.0) as f32)
        .min_weight_leaf(c.float("min_weight_leaf").unwrap_or(1.0) as f32)
        .fit(&Dataset::new(x.clone(), Array1::from(y.to_vec())).with_weights(row_weights))?;
    let converted = convert(tree.root_node(), x.view(), y, &weights, features, &data.features)?;
    Ok((tree, converted))
}
