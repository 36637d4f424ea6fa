//! Held-out metrics, computed from the predictions of the model IR (the model as shipped).
//! Definitions follow scikit-learn's: macro averages over the classes present in the truth or
//! the predictions, one-vs-rest ROC-AUC for multiclass, log-loss with probabilities clipped to
//! [1e-15, 1 - 1e-15].

use std::collections::BTreeMap;

use model_wasm::{ModelIr, Outputs};
use serde::{Deserialize, Serialize};

use crate::config::Metric;

/// The truth to score against.
#[derive(Debug, Clone, PartialEq)]
pub enum Targets {
    /// Class indices.
    Classes(Vec<usize>),
    Values(Vec<f64>),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassificationMetrics {
    pub accuracy: f64,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    /// None when only one class is present in the truth.
    pub roc_auc: Option<f64>,
    pub log_loss: f64,
    pub classes: Vec<String>,
    /// `confusion[true][predicted]`.
    pub confusion: Vec<Vec<u64>>,
    /// Per class: precision, recall, F1, support.
    pub per_class: Vec<ClassScores>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassScores {
    pub class: String,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub support: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegressionMetrics {
    pub rmse: f64,
    pub mae: f64,
    pub r2: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "task", rename_all = "snake_case")]
pub enum Metrics {
    Classification(ClassificationMetrics),
    Regression(RegressionMetrics),
}

impl Metrics {
    pub fn get(&self, metric: Metric) -> Option<f64> {
        match (self, metric) {
            (Metrics::Classification(m), Metric::Accuracy) => Some(m.accuracy),
            (Metrics::Classification(m), Metric::Precision) => Some(m.precision),
            (Metrics::Classification(m), Metric::Recall) => Some(m.recall),
            (Metrics::Classification(m), Metric::F1) => Some(m.f1),
            (Metrics::Classification(m), Metric::RocAuc) => m.roc_auc,
            (Metrics::Classification(m), Metric::LogLoss) => Some(m.log_loss),
            (Metrics::Regression(m), Metric::Rmse) => Some(m.rmse),
            (Metrics::Regression(m), Metric::Mae) => Some(m.mae),
            (Metrics::Regression(m), Metric::R2) => Some(m.r2),
            _ => None,
        }
    }

    /// Every scalar metric by name (what MLflow and the manifest record).
    pub fn scalars(&self) -> BTreeMap<String, f64> {
        Metric::ALL
            .into_iter()
            .filter_map(|m| self.get(m).map(|v| (m.name().to_owned(), v)))
            .collect()
    }
}

/// Scores `ir` on rows `x` against `truth`.
pub fn score(ir: &ModelIr, x: &[Vec<f64>], truth: &Targets) -> model_wasm::Result<Metrics> {
    let predictions = x
        .iter()
        .map(|row| ir.predict(row))
        .collect::<model_wasm::Result<Vec<_>>>()?;
    Ok(match (truth, ir.outputs(predictions)) {
        (Targets::Classes(y), Outputs::Classes { labels, probabilities }) => {
            Metrics::Classification(classification(y, &labels, &probabilities, ir.classes()))
        }
        (Targets::Values(y), Outputs::Values(values)) => Metrics::Regression(regression(y, &values)),
        _ => panic!("the truth and the model are of different tasks"),
    })
}

pub(crate) fn classification(
    truth: &[usize],
    labels: &[usize],
    probabilities: &[Vec<f64>],
    classes: &[String],
) -> ClassificationMetrics {
    let k = classes.len();
    let n = truth.len().max(1) as f64;
    let mut confusion = vec![vec![0u64; k]; k];
    for (t, p) in truth.iter().zip(labels) {
        confusion[*t][*p] += 1;
    }
    let correct: u64 = (0..k).map(|c| confusion[c][c]).sum();
    let mut per_class = Vec::with_capacity(k);
    let (mut p_sum, mut r_sum, mut f_sum, mut present) = (0.0, 0.0, 0.0, 0usize);
    for c in 0..k {
        let tp = confusion[c][c] as f64;
        let predicted: u64 = (0..k).map(|t| confusion[t][c]).sum();
        let support: u64 = confusion[c].iter().sum();
        let precision = if predicted > 0 { tp / predicted as f64 } else { 0.0 };
        let recall = if support > 0 { tp / support as f64 } else { 0.0 };
        let f1 = if precision + recall > 0.0 {
            2.0 * precision * recall / (precision + recall)
        } else {
            0.0
        };
        if predicted > 0 || support > 0 {
            present += 1;
            p_sum += precision;
            r_sum += recall;
            f_sum += f1;
        }
        per_class.push(ClassScores {
            class: classes[c].clone(),
            precision,
            recall,
            f1,
            support,
        });
    }
    let present = present.max(1) as f64;
    let log_loss = truth
        .iter()
        .zip(probabilities)
        .map(|(t, p)| -p[*t].clamp(1e-15, 1.0 - 1e-15).ln())
        .sum::<f64>()
        / n;
    ClassificationMetrics {
        accuracy: correct as f64 / n,
        precision: p_sum / present,
        recall: r_sum / present,
        f1: f_sum / present,
        roc_auc: roc_auc(truth, probabilities, k),
        log_loss,
        classes: classes.to_vec(),
        confusion,
        per_class,
    }
}

/// Binary: the AUC of P(class 1). Multiclass: the mean of one-vs-rest AUCs over classes present in
/// the truth with at least one negative. None when no AUC is defined.
fn roc_auc(truth: &[usize], probabilities: &[Vec<f64>], k: usize) -> Option<f64> {
    let auc_for = |class: usize| -> Option<f64> {
        let scores: Vec<(f64, bool)> = truth
            .iter()
            .zip(probabilities)
            .map(|(t, p)| (p[class], *t == class))
            .collect();
        binary_auc(&scores)
    };
    if k == 2 {
        return auc_for(1);
    }
    let aucs: Vec<f64> = (0..k).filter_map(auc_for).collect();
    (!aucs.is_empty()).then(|| aucs.iter().sum::<f64>() / aucs.len() as f64)
}

/// Mann-Whitney U over (score, is_positive), ties counted half.
fn binary_auc(scores: &[(f64, bool)]) -> Option<f64> {
    let positives = scores.iter().filter(|s| s.1).count();
    let negatives = scores.len() - positives;
    if positives == 0 || negatives == 0 {
        return None;
    }
    let mut sorted: Vec<(f64, bool)> = scores.to_vec();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    // Average ranks over ties.
    let mut rank_sum_pos = 0.0;
    let mut i = 0;
    while i < sorted.len() {
        let mut j = i;
        while j + 1 < sorted.len() && sorted[j + 1].0 == sorted[i].0 {
            j += 1;
        }
        let avg_rank = (i + j) as f64 / 2.0 + 1.0;
        rank_sum_pos += avg_rank * sorted[i..=j].iter().filter(|s| s.1).count() as f64;
        i = j + 1;
    }
    let (p, q) = (positives as f64, negatives as f64);
    Some((rank_sum_pos - p * (p + 1.0) / 2.0) / (p * q))
}

pub(crate) fn regression(truth: &[f64], predicted: &[f64]) -> RegressionMetrics {
    let n = truth.len().max(1) as f64;
    let mean = truth.iter().sum::<f64>() / n;
    let (mut se, mut ae, mut tot) = (0.0, 0.0, 0.0);
    for (t, p) in truth.iter().zip(predicted) {
        se += (t - p).powi(2);
        ae += (t - p).abs();
        tot += (t - mean).powi(2);
    }
    RegressionMetrics {
        rmse: (se / n).sqrt(),
        mae: ae / n,
        r2: if tot > 0.0 { 1.0 - se / tot } else { 0.0 },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classes(k: usize) -> Vec<String> {
        (0..k).map(|i| i.to_string()).collect()
    }

    #[test]
    fn classification_metrics_match_hand_computed_values() {
        // truth 0 0 1 1 1, predicted 0 1 1 1 0
        let truth = [0, 0, 1, 1, 1];
        let labels = [0, 1, 1, 1, 0];
        let probs: Vec<Vec<f64>> = [0.2, 0.6, 0.7, 0.9, 0.4].iter().map(|p| vec![1.0 - p, *p]).collect();
        let m = classification(&truth, &labels, &probs, &classes(2));
        assert_eq!(m.accuracy, 0.6);
        assert_eq!(m.confusion, vec![vec![1, 1], vec![1, 2]]);
        // class 0: p = 1/2, r = 1/2; class 1: p = 2/3, r = 2/3
        assert!((m.precision - (0.5 + 2.0 / 3.0) / 2.0).abs() < 1e-12);
        assert!((m.f1 - (0.5 + 2.0 / 3.0) / 2.0).abs() < 1e-12);
        // positives' scores 0.7 0.9 0.4, negatives' 0.2 0.6: pairs won 5 of 6
        assert!((m.roc_auc.unwrap() - 5.0 / 6.0).abs() < 1e-12);
        let expected_ll = -([0.8f64, 0.4, 0.7, 0.9, 0.4].iter().map(|p| p.ln()).sum::<f64>()) / 5.0;
        assert!((m.log_loss - expected_ll).abs() < 1e-12);
    }

    #[test]
    fn auc_counts_ties_half_and_needs_both_classes() {
        assert_eq!(binary_auc(&[(0.5, true), (0.5, false)]), Some(0.5));
        assert_eq!(binary_auc(&[(0.5, true), (0.7, true)]), None);
    }

    #[test]
    fn multiclass_auc_averages_one_vs_rest() {
        let truth = [0, 1, 2];
        let probs = vec![vec![0.8, 0.1, 0.1], vec![0.1, 0.8, 0.1], vec![0.1, 0.1, 0.8]];
        let m = classification(&truth, &[0, 1, 2], &probs, &classes(3));
        assert_eq!(m.roc_auc, Some(1.0));
        assert_eq!(m.f1, 1.0);
    }

    #[test]
    fn regression_metrics() {
        let m = regression(&[1.0, 2.0, 3.0], &[1.0, 2.0, 5.0]);
        assert!((m.rmse - (4.0f64 / 3.0).sqrt()).abs() < 1e-12);
        assert!((m.mae - 2.0 / 3.0).abs() < 1e-12);
        assert!((m.r2 - (1.0 - 4.0 / 2.0)).abs() < 1e-12);
    }

    #[test]
    fn metric_directions() {
        assert!(Metric::F1.better(0.8, 0.7));
        assert!(Metric::Rmse.better(1.0, 2.0));
        assert_eq!(Metric::F1.worsening(0.79, 0.8), 0.010000000000000009);
        assert!(Metric::LogLoss.worsening(0.5, 0.4) > 0.0);
    }
}
