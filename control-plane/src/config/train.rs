//! `[train]`: the candidate families and their grids, the selection metric, promotion.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::task::{TaskKind, default_seed};

/// A metric that selects candidates and gates promotion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    Accuracy,
    Precision,
    Recall,
    F1,
    RocAuc,
    LogLoss,
    Rmse,
    Mae,
    R2,
}

impl Metric {
    /// Every metric, classification's first.
    pub const ALL: [Metric; 9] = [
        Metric::Accuracy,
        Metric::Precision,
        Metric::Recall,
        Metric::F1,
        Metric::RocAuc,
        Metric::LogLoss,
        Metric::Rmse,
        Metric::Mae,
        Metric::R2,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Metric::Accuracy => "accuracy",
            Metric::Precision => "precision",
            Metric::Recall => "recall",
            Metric::F1 => "f1",
            Metric::RocAuc => "roc_auc",
            Metric::LogLoss => "log_loss",
            Metric::Rmse => "rmse",
            Metric::Mae => "mae",
            Metric::R2 => "r2",
        }
    }

    pub fn higher_is_better(self) -> bool {
        !matches!(self, Metric::LogLoss | Metric::Rmse | Metric::Mae)
    }

    pub fn for_classification(self) -> bool {
        !matches!(self, Metric::Rmse | Metric::Mae | Metric::R2)
    }

    /// `a` is better than `b`.
    pub fn better(self, a: f64, b: f64) -> bool {
        if self.higher_is_better() { a > b } else { a < b }
    }

    /// How much worse `candidate` is than `baseline` (positive = worse), in the metric's units.
    pub fn worsening(self, candidate: f64, baseline: f64) -> f64 {
        if self.higher_is_better() {
            baseline - candidate
        } else {
            candidate - baseline
        }
    }
}

impl std::fmt::Display for Metric {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.name())
    }
}

/// How models are trained, selected and promoted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// The registered model's name (default: the dataset's name).
    #[serde(default)]
    pub model_name: Option<String>,
    /// Selects the best candidate and gates promotion (default: f1 or rmse).
    #[serde(default)]
    pub metric: Option<Metric>,
    /// Cross-validation folds on the training split.
    #[serde(default = "default_folds")]
    pub folds: usize,
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// A candidate is promoted when its metric is at most this much worse than production's.
    #[serde(default = "default_tolerance")]
    pub tolerance: f64,
    /// The alias `pipeline run` promotes to.
    #[serde(default = "default_alias")]
    pub alias: String,
    /// How much worse (in the metric's units) the winner refitted on the whole training split may
    /// score on that split than its cross-validation mean. A refit that scores worse on rows it
    /// has seen than the fold models did on rows they had not did not fit as they did.
    #[serde(default = "default_refit_margin")]
    pub refit_margin: f64,
    /// What a larger gap does: `fail` the run (default) or `warn` and go on.
    #[serde(default)]
    pub refit_gap: RefitGap,
    pub models: Vec<ModelSpec>,
}

/// What the evaluate step does when the refit scores worse than cross-validation by more than
/// `refit_margin`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefitGap {
    #[default]
    Fail,
    Warn,
}

fn default_refit_margin() -> f64 {
    0.02
}

fn default_folds() -> usize {
    5
}

fn default_tolerance() -> f64 {
    0.005
}

fn default_alias() -> String {
    "production".to_owned()
}

/// One model family and its hyperparameter grid (every combination is a candidate).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    pub family: Family,
    #[serde(default)]
    pub grid: BTreeMap<String, Vec<toml::Value>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    LinearRegression,
    ElasticNet,
    LogisticRegression,
    DecisionTree,
    RandomForest,
    GradientBoosting,
}

impl Family {
    pub fn name(self) -> &'static str {
        match self {
            Family::LinearRegression => "linear_regression",
            Family::ElasticNet => "elastic_net",
            Family::LogisticRegression => "logistic_regression",
            Family::DecisionTree => "decision_tree",
            Family::RandomForest => "random_forest",
            Family::GradientBoosting => "gradient_boosting",
        }
    }

    /// Whether the family learns `task`.
    pub fn learns(self, task: TaskKind) -> bool {
        match self {
            Family::LinearRegression | Family::ElasticNet => task == TaskKind::Regression,
            Family::LogisticRegression | Family::DecisionTree | Family::RandomForest => {
                task == TaskKind::Classification
            }
            Family::GradientBoosting => true,
        }
    }

    /// Whether the family trains on missing values as they are (and its models route them).
    pub fn takes_missing(self) -> bool {
        matches!(self, Family::RandomForest | Family::GradientBoosting)
    }
}

impl TrainConfig {
    pub fn metric(&self, task: TaskKind) -> Metric {
        self.metric.unwrap_or(match task {
            TaskKind::Classification => Metric::F1,
            TaskKind::Regression => Metric::Rmse,
        })
    }
}

impl TrainConfig {
    /// Checks the section for a config whose task is `task`. The grids are the trainer's to check
    /// (`train::check_grids`): it knows each family's hyperparameters.
    pub(super) fn check(&self, task: TaskKind) -> Result<(), String> {
        if let Some(name) = &self.model_name {
            crate::store::Key::segment(name).map_err(|e| format!("train.model_name: {e}"))?;
        }
        crate::store::Key::segment(&self.alias).map_err(|e| format!("train.alias: {e}"))?;
        if self.models.is_empty() {
            return Err("self.models: list at least one model family".into());
        }
        if self.folds < 2 {
            return Err(format!("self.folds must be at least 2, not {}", self.folds));
        }
        if !(self.tolerance >= 0.0 && self.tolerance.is_finite()) {
            return Err("self.tolerance must be a non-negative number".into());
        }
        if !(self.refit_margin >= 0.0 && self.refit_margin.is_finite()) {
            return Err(format!(
                "train.refit_margin must be a non-negative number, not {}",
                self.refit_margin
            ));
        }
        let metric = self.metric(task);
        if metric.for_classification() != (task == TaskKind::Classification) {
            return Err(format!("train.metric '{metric}' does not apply to {task:?} (task.kind)").to_lowercase());
        }
        for (i, spec) in self.models.iter().enumerate() {
            let at = format!("self.models[{}] ({})", i + 1, spec.family.name());
            if !spec.family.learns(task) {
                let other = match task {
                    TaskKind::Classification => "regression",
                    TaskKind::Regression => "classification",
                };
                return Err(format!("{at}: a {other} family cannot learn a {task:?} task").to_lowercase());
            }
        }
        Ok(())
    }
}
