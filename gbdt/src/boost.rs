//! Gradient boosting: each round fits one tree per output to the loss's gradients and hessians
//! (Newton steps, LightGBM's leaf-wise growth), shrunk by the learning rate.

use crate::bins::Binned;
use crate::error::{Error, Result};
use crate::grow::{GrowParams, Stats, grow};
use crate::model::{Booster, Link, Node, softmax};
use crate::params::{GbdtValidParams, Objective};
use crate::rng::Rng;
use crate::{Dataset, Target};

/// LightGBM's `min_sum_hessian_in_leaf`.
const MIN_HESSIAN: f64 = 1e-3;
/// LightGBM's `poisson_max_delta_step`: the Poisson hessian is `exp(margin + this)`, which keeps
/// the first steps from overshooting.
const POISSON_MAX_DELTA_STEP: f64 = 0.7;

impl GbdtValidParams {
    /// Fits a boosted ensemble.
    pub fn fit(&self, data: &Dataset<'_>) -> Result<Booster> {
        let n = data.check()?;
        let (outputs, link) = match (self.objective, data.target) {
            (Objective::LogLoss, Target::Classes { n_classes: 2, .. }) => (1, Link::Sigmoid),
            (Objective::LogLoss, Target::Classes { n_classes, .. }) => (n_classes, Link::Softmax),
            (Objective::SquaredError, Target::Values(_)) => (1, Link::Identity),
            (Objective::Poisson, Target::Values(y)) => {
                if let Some((row, v)) = y.iter().enumerate().find(|(_, v)| **v < 0.0) {
                    return Err(Error::Target {
                        row,
                        value: *v,
                        why: "negative (poisson needs counts)",
                    });
                }
                (1, Link::Exp)
            }
            (objective, _) => {
                return Err(Error::Targets(format!(
                    "objective {objective:?} does not fit this target (classes need log_loss, values squared_error or poisson)"
                )));
            }
        };
        let mut rng = Rng::new(self.seed);
        let (train_rows, valid_rows) = match self.early_stopping_rounds {
            Some(_) => holdout(&data.target, n, self.validation_fraction, &mut rng),
            None => ((0..n).collect(), Vec::new()),
        };
        let binned = Binned::new(data.x, &train_rows, data.categorical, self.max_bins, self.threads)?;
        let base_score = base_score(self.objective, &data.target, &train_rows, outputs)?;

        let mut margins: Vec<f64> = Vec::with_capacity(n * outputs);
        for b in &base_score {
            margins.extend(std::iter::repeat_n(*b, n));
        }
        let mut g = vec![0.0; n * outputs];
        let mut h = vec![0.0; n * outputs];
        let features: Vec<usize> = (0..data.x.ncols()).collect();
        let grow_params = GrowParams {
            max_leaves: self.num_leaves,
            max_depth: self.max_depth.unwrap_or(usize::MAX),
            min_samples_leaf: self.min_samples_leaf,
            min_hessian: MIN_HESSIAN,
            node_features: None,
            threads: self.threads,
        };
        let mut trees = Vec::new();
        let mut tree_outputs = Vec::new();
        let mut validation_loss = Vec::new();
        let mut best = (f64::INFINITY, 0usize);
        let mut in_bag_mask = vec![false; n];
        for round in 0..self.n_estimators {
            let in_bag: Vec<u32> = if self.subsample < 1.0 {
                let mut rows: Vec<u32> = train_rows
                    .iter()
                    .filter(|_| rng.f64() < self.subsample)
                    .map(|r| *r as u32)
                    .collect();
                if rows.is_empty() {
                    rows.push(train_rows[rng.below(train_rows.len())] as u32);
                }
                rows
            } else {
                train_rows.iter().map(|r| *r as u32).collect()
            };
            let tree_features = if self.feature_fraction < 1.0 {
                let k = ((self.feature_fraction * features.len() as f64).round() as usize).max(1);
                rng.choose(&features, k)
            } else {
                features.clone()
            };
            gradients(
                self.objective,
                &data.target,
                &margins,
                outputs,
                &train_rows,
                &mut g,
                &mut h,
            );
            // Rows the trees are not grown on get their leaves by routing.
            in_bag_mask.iter_mut().for_each(|m| *m = false);
            in_bag.iter().for_each(|r| in_bag_mask[*r as usize] = true);
            let others: Vec<usize> = (0..n).filter(|r| !in_bag_mask[*r]).collect();
            for k in 0..outputs {
                let mut rows = in_bag.clone();
                let stats = Stats::Newton {
                    g: &g[k * n..(k + 1) * n],
                    h: &h[k * n..(k + 1) * n],
                    lambda: self.l2_regularization,
                };
                let mut grown = grow(&binned, stats, &mut rows, &tree_features, &grow_params, &mut rng);
                for node in &mut grown.tree.nodes {
                    if let Node::Leaf { values } = node {
                        values[0] *= self.learning_rate;
                    }
                }
                let leaf_value = |i: usize| match &grown.tree.nodes[i] {
                    Node::Leaf { values } => values[0],
                    _ => unreachable!("a leaf"),
                };
                let m = &mut margins[k * n..(k + 1) * n];
                for &(leaf, start, end) in &grown.leaf_rows {
                    let v = leaf_value(leaf);
                    for r in &rows[start..end] {
                        m[*r as usize] += v;
                    }
                }
                for &r in &others {
                    m[r] += leaf_value(grown.leaf_of(&binned, r));
                }
                trees.push(grown.tree);
                tree_outputs.push(k);
            }
            if let Some(patience) = self.early_stopping_rounds {
                let loss = loss(self.objective, &data.target, &margins, outputs, &valid_rows);
                validation_loss.push(loss);
                if loss < best.0 {
                    best = (loss, round);
                } else if round - best.1 >= patience {
                    break;
                }
            }
        }
        let rounds = if self.early_stopping_rounds.is_some() {
            best.1 + 1
        } else {
            trees.len() / outputs
        };
        trees.truncate(rounds * outputs);
        tree_outputs.truncate(rounds * outputs);
        Ok(Booster {
            trees,
            tree_outputs,
            base_score,
            link,
            rounds,
            validation_loss,
        })
    }
}

/// Rows held out for early stopping: `fraction` of each class (of all rows, for values), seeded.
fn holdout(target: &Target<'_>, n: usize, fraction: f64, rng: &mut Rng) -> (Vec<usize>, Vec<usize>) {
    let groups: Vec<Vec<usize>> = match target {
        Target::Classes { y, n_classes } => {
            let mut g = vec![Vec::new(); *n_classes];
            for (i, c) in y.iter().enumerate() {
                g[*c].push(i);
            }
            g
        }
        Target::Values(_) => vec![(0..n).collect()],
    };
    let mut valid = Vec::new();
    for mut rows in groups {
        rng.shuffle(&mut rows);
        let take = ((rows.len() as f64 * fraction).round() as usize).min(rows.len().saturating_sub(1));
        valid.extend_from_slice(&rows[..take]);
    }
    if valid.is_empty() && n >= 2 {
        valid.push(rng.below(n));
    }
    valid.sort_unstable();
    let mut is_valid = vec![false; n];
    valid.iter().for_each(|r| is_valid[*r] = true);
    ((0..n).filter(|r| !is_valid[*r]).collect(), valid)
}

fn base_score(objective: Objective, target: &Target<'_>, rows: &[usize], outputs: usize) -> Result<Vec<f64>> {
    let n = rows.len() as f64;
    Ok(match (objective, target) {
        (Objective::SquaredError, Target::Values(y)) => vec![rows.iter().map(|r| y[*r]).sum::<f64>() / n],
        (Objective::Poisson, Target::Values(y)) => {
            let mean = rows.iter().map(|r| y[*r]).sum::<f64>() / n;
            if mean <= 0.0 {
                return Err(Error::Targets(
                    "every training value is 0: poisson needs some counts".into(),
                ));
            }
            vec![mean.ln()]
        }
        (_, Target::Classes { y, n_classes }) => {
            let mut counts = vec![0.0; *n_classes];
            rows.iter().for_each(|r| counts[y[*r]] += 1.0);
            if outputs == 1 {
                let p = (counts[1] / n).clamp(1e-15, 1.0 - 1e-15);
                vec![(p / (1.0 - p)).ln()]
            } else {
                counts.iter().map(|c| (c / n).max(1e-15).ln()).collect()
            }
        }
        _ => unreachable!("checked in fit"),
    })
}

#[allow(clippy::too_many_arguments)]
fn gradients(
    objective: Objective,
    target: &Target<'_>,
    margins: &[f64],
    outputs: usize,
    rows: &[usize],
    g: &mut [f64],
    h: &mut [f64],
) {
    let n = margins.len() / outputs;
    match (objective, target) {
        (Objective::SquaredError, Target::Values(y)) => {
            for &r in rows {
                g[r] = margins[r] - y[r];
                h[r] = 1.0;
            }
        }
        (Objective::Poisson, Target::Values(y)) => {
            for &r in rows {
                g[r] = margins[r].exp() - y[r];
                h[r] = (margins[r] + POISSON_MAX_DELTA_STEP).exp();
            }
        }
        (_, Target::Classes { y, .. }) if outputs == 1 => {
            for &r in rows {
                let p = 1.0 / (1.0 + (-margins[r]).exp());
                g[r] = p - f64::from(u8::from(y[r] == 1));
                h[r] = (p * (1.0 - p)).max(1e-16);
            }
        }
        (_, Target::Classes { y, .. }) => {
            let factor = outputs as f64 / (outputs as f64 - 1.0);
            let mut p = vec![0.0; outputs];
            for &r in rows {
                let max = (0..outputs)
                    .map(|k| margins[k * n + r])
                    .fold(f64::NEG_INFINITY, f64::max);
                let mut sum = 0.0;
                for (k, pk) in p.iter_mut().enumerate() {
                    *pk = (margins[k * n + r] - max).exp();
                    sum += *pk;
                }
                for (k, pk) in p.iter().enumerate() {
                    let pk = pk / sum;
                    g[k * n + r] = pk - f64::from(u8::from(y[r] == k));
                    h[k * n + r] = (factor * pk * (1.0 - pk)).max(1e-16);
                }
            }
        }
        _ => unreachable!("checked in fit"),
    }
}

/// The mean loss of `rows`.
fn loss(objective: Objective, target: &Target<'_>, margins: &[f64], outputs: usize, rows: &[usize]) -> f64 {
    let n = margins.len() / outputs;
    let total: f64 = match (objective, target) {
        (Objective::SquaredError, Target::Values(y)) => rows.iter().map(|&r| (margins[r] - y[r]).powi(2)).sum(),
        (Objective::Poisson, Target::Values(y)) => rows.iter().map(|&r| margins[r].exp() - y[r] * margins[r]).sum(),
        (_, Target::Classes { y, .. }) if outputs == 1 => rows
            .iter()
            .map(|&r| {
                let p = (1.0 / (1.0 + (-margins[r]).exp())).clamp(1e-15, 1.0 - 1e-15);
                if y[r] == 1 { -p.ln() } else { -(1.0 - p).ln() }
            })
            .sum(),
        (_, Target::Classes { y, .. }) => rows
            .iter()
            .map(|&r| {
                let z: Vec<f64> = (0..outputs).map(|k| margins[k * n + r]).collect();
                -softmax(&z)[y[r]].max(1e-15).ln()
            })
            .sum(),
        _ => unreachable!("checked in fit"),
    };
    total / rows.len().max(1) as f64
}
