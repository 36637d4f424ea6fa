//! The promotion gate: a candidate against a baseline, both scored on the same held-out rows.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, bail, ensure};
use model_wasm::ModelIr;
use serde::{Deserialize, Serialize};

use super::manifest::task_name;
use super::{DatasetRef, IR_ARTIFACT, Manifest, load_artifact};
use crate::config::Metric;
use crate::config::TaskKind;
use crate::dataset::{DatasetRecord, load_dataset};
use crate::store::ObjectStore;
use crate::train::{Metrics, TrainData, metrics};

/// Differences of a metric smaller than this are float noise, not changes.
const NOISE: f64 = 1e-12;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ModelVersionRef {
    pub name: String,
    pub version: u64,
}

impl std::fmt::Display for ModelVersionRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}", self.name, self.version)
    }
}

impl From<&Manifest> for ModelVersionRef {
    fn from(m: &Manifest) -> Self {
        ModelVersionRef {
            name: m.name.clone(),
            version: m.version,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Verdict {
    /// The gating metric improved.
    Better,
    /// The gating metric got worse by at most the tolerance (or did not change).
    NotWorse,
    /// The gating metric got worse by more than the tolerance: do not promote.
    Worse,
}

impl Verdict {
    #[cfg(test)]
    /// Whether the candidate may be promoted.
    pub fn passes(self) -> bool {
        self != Verdict::Worse
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Verdict::Better => "better",
            Verdict::NotWorse => "not worse",
            Verdict::Worse => "worse",
        }
    }
}

/// What [`compare`] found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Comparison {
    pub candidate: ModelVersionRef,
    pub baseline: ModelVersionRef,
    /// Whose test split both were scored on (the candidate's dataset, or the baseline's when the
    /// candidate was imported).
    pub dataset: DatasetRef,
    pub test_rows: usize,
    /// The gating metric.
    pub metric: Metric,
    /// How much worse the gating metric may get, in its own units.
    pub tolerance: f64,
    pub candidate_metrics: Metrics,
    pub baseline_metrics: Metrics,
    /// Candidate minus baseline, for every metric both have.
    pub deltas: BTreeMap<String, f64>,
    pub verdict: Verdict,
    pub reason: String,
}

impl Comparison {
    #[cfg(test)]
    /// The gating metric of the candidate and of the baseline.
    pub fn gating_values(&self) -> (f64, f64) {
        let get = |m: &Metrics| m.get(self.metric).expect("compare checked the metric is defined");
        (get(&self.candidate_metrics), get(&self.baseline_metrics))
    }
}

/// Scores both models' IR on the test split of the candidate's dataset (the baseline's when the
/// candidate was imported, [`Manifest::lineage`]) and applies the rule: the
/// candidate passes unless `metric` gets worse by more than `tolerance`. The two models must have
/// the same task and the same features (each is fed the columns in its own order).
pub(crate) async fn compare(
    store: &dyn ObjectStore,
    candidate: &Manifest,
    baseline: &Manifest,
    metric: Metric,
    tolerance: f64,
) -> anyhow::Result<Comparison> {
    ensure!(
        tolerance.is_finite() && tolerance >= 0.0,
        "the tolerance must be a finite number at least 0, not {tolerance}"
    );
    ensure!(
        candidate.task == baseline.task,
        "cannot compare {} ({}) with {} ({})",
        candidate.id(),
        task_name(candidate.task),
        baseline.id(),
        task_name(baseline.task)
    );
    ensure!(
        metric.for_classification() == (candidate.task == TaskKind::Classification),
        "the metric {metric} does not apply to {}",
        task_name(candidate.task)
    );
    let (ours, theirs): (BTreeSet<String>, BTreeSet<String>) = (
        candidate.feature_names().into_iter().collect(),
        baseline.feature_names().into_iter().collect(),
    );
    if ours != theirs {
        bail!(
            "{} and {} do not take the same features: only the candidate has {:?}, only the baseline has {:?}",
            candidate.id(),
            baseline.id(),
            ours.difference(&theirs).collect::<Vec<_>>(),
            theirs.difference(&ours).collect::<Vec<_>>()
        );
    }
    // An imported version was trained on no dataset of the store: both are scored on the test
    // split of the other's.
    let dataset = match (candidate.lineage.is_some(), baseline.lineage.is_some()) {
        (true, false) => &baseline.dataset,
        (true, true) => bail!(
            "{} and {} were both imported: neither has a dataset in the store to compare them on",
            candidate.id(),
            baseline.id()
        ),
        (false, _) => &candidate.dataset,
    };
    let record = load_dataset(store, &dataset.name, Some(dataset.version))
        .await
        .with_context(|| format!("cannot load dataset {dataset}, the test data of {}", candidate.id()))?;
    let (_, test) = record.load_tables(store).await?;
    let candidate_ir = load_ir(store, candidate, &record).await?;
    let baseline_ir = load_ir(store, baseline, &record).await?;
    let test_rows = test.rows();
    let (candidate_metrics, baseline_metrics) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let score = |ir: &ModelIr| -> anyhow::Result<Metrics> {
            let data = TrainData::from_table(&test, &ir.features, &record.target, record.task, &record.classes)?;
            Ok(metrics::score(ir, &data.row_vecs(), &data.targets)?)
        };
        Ok((score(&candidate_ir)?, score(&baseline_ir)?))
    })
    .await??;
    let value = |m: &Metrics, who: &Manifest| {
        m.get(metric).with_context(|| {
            format!(
                "{metric} is not defined for {} on the test split of {dataset} (a single class present?)",
                who.id()
            )
        })
    };
    let (c, b) = (
        value(&candidate_metrics, candidate)?,
        value(&baseline_metrics, baseline)?,
    );
    let baseline_scalars = baseline_metrics.scalars();
    let deltas = candidate_metrics
        .scalars()
        .into_iter()
        .filter_map(|(name, v)| baseline_scalars.get(&name).map(|b| (name, v - b)))
        .collect();
    let (verdict, reason) = judge(metric, c, b, tolerance);
    Ok(Comparison {
        candidate: candidate.into(),
        baseline: baseline.into(),
        dataset: dataset.clone(),
        test_rows,
        metric,
        tolerance,
        candidate_metrics,
        baseline_metrics,
        deltas,
        verdict,
        reason,
    })
}

/// The rule: worse by more than the tolerance fails; a strict improvement is better.
fn judge(metric: Metric, candidate: f64, baseline: f64, tolerance: f64) -> (Verdict, String) {
    let worsening = metric.worsening(candidate, baseline);
    let (drop, rise) = if metric.higher_is_better() {
        ("dropped", "rose")
    } else {
        ("rose", "dropped")
    };
    let change = format!("({baseline:.4} -> {candidate:.4})");
    if worsening > tolerance + NOISE {
        (
            Verdict::Worse,
            format!("{metric} {drop} by {worsening:.4} {change}, more than the tolerance {tolerance}"),
        )
    } else if worsening < -NOISE {
        (
            Verdict::Better,
            format!("{metric} {rise} by {:.4} {change}", -worsening),
        )
    } else if worsening > NOISE {
        (
            Verdict::NotWorse,
            format!("{metric} {drop} by {worsening:.4} {change}, within the tolerance {tolerance}"),
        )
    } else {
        (Verdict::NotWorse, format!("{metric} is unchanged ({candidate:.4})"))
    }
}

/// The model's IR, checked against the dataset it will be scored on.
async fn load_ir(store: &dyn ObjectStore, manifest: &Manifest, record: &DatasetRecord) -> anyhow::Result<ModelIr> {
    let body = load_artifact(store, manifest, IR_ARTIFACT).await?;
    let ir: ModelIr = serde_json::from_slice(&body)
        .with_context(|| format!("{IR_ARTIFACT} of {} is not a model IR", manifest.id()))?;
    ensure!(
        ir.features == manifest.feature_names(),
        "{IR_ARTIFACT} of {} does not take the features its manifest lists",
        manifest.id()
    );
    if record.task == TaskKind::Classification {
        ensure!(
            ir.classes() == record.classes.as_slice(),
            "{} predicts the classes {:?} but dataset {}@{} has {:?}",
            manifest.id(),
            ir.classes(),
            record.name,
            record.version,
            record.classes
        );
    }
    Ok(ir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rule_applies_the_tolerance_in_the_metric_direction() {
        assert_eq!(judge(Metric::F1, 0.80, 0.70, 0.005).0, Verdict::Better);
        assert_eq!(judge(Metric::F1, 0.70, 0.70, 0.005).0, Verdict::NotWorse);
        assert_eq!(judge(Metric::F1, 0.697, 0.70, 0.005).0, Verdict::NotWorse);
        // Exactly at the tolerance passes, despite float noise in 0.7 - 0.695.
        assert_eq!(judge(Metric::F1, 0.695, 0.70, 0.005).0, Verdict::NotWorse);
        let (verdict, reason) = judge(Metric::F1, 0.69, 0.70, 0.005);
        assert_eq!(verdict, Verdict::Worse);
        assert_eq!(
            reason,
            "f1 dropped by 0.0100 (0.7000 -> 0.6900), more than the tolerance 0.005"
        );
        // Lower is better for errors.
        assert_eq!(judge(Metric::Rmse, 1.0, 2.0, 0.0).0, Verdict::Better);
        let (verdict, reason) = judge(Metric::Rmse, 2.5, 2.0, 0.1);
        assert_eq!(verdict, Verdict::Worse);
        assert!(reason.starts_with("rmse rose by 0.5000"), "{reason}");
    }
}
