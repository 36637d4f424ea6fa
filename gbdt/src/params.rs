//! Hyperparameters, checked once (`Params` -> `ValidParams`, linfa's `ParamGuard`).

use linfa::ParamGuard;

use crate::error::{Error, Result};

/// What the boosting minimises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Objective {
    /// Regression, squared error (LightGBM `regression`).
    SquaredError,
    /// Regression of counts, Poisson log-likelihood with a log link (LightGBM `poisson`).
    Poisson,
    /// Classification, log-loss: binary (one output, sigmoid) or multiclass (softmax).
    LogLoss,
}

/// Checked gradient-boosting parameters; names and defaults are LightGBM's.
#[derive(Debug, Clone, PartialEq)]
pub struct GbdtValidParams {
    pub objective: Objective,
    pub n_estimators: usize,
    pub learning_rate: f64,
    pub num_leaves: usize,
    /// `None`: no depth limit.
    pub max_depth: Option<usize>,
    /// LightGBM's `min_data_in_leaf`.
    pub min_samples_leaf: usize,
    /// Share of features each tree may use (LightGBM's `feature_fraction`, per tree).
    pub feature_fraction: f64,
    /// Share of rows each round trains on, drawn anew every round (LightGBM's
    /// `bagging_fraction` with `bagging_freq = 1`).
    pub subsample: f64,
    /// L2 on leaf values (LightGBM's `lambda_l2`).
    pub l2_regularization: f64,
    pub max_bins: usize,
    /// Stop when the validation loss has not improved for this many rounds, and keep the best.
    pub early_stopping_rounds: Option<usize>,
    /// The share of the training rows held out for early stopping.
    pub validation_fraction: f64,
    pub seed: u64,
    /// Threads used; the model does not depend on it.
    pub threads: usize,
}

/// Gradient-boosting parameters, checked by [`ParamGuard::check`].
#[derive(Debug, Clone, PartialEq)]
pub struct GbdtParams(pub(crate) GbdtValidParams);

impl GbdtParams {
    pub fn new(objective: Objective) -> GbdtParams {
        GbdtParams(GbdtValidParams {
            objective,
            n_estimators: 100,
            learning_rate: 0.1,
            num_leaves: 31,
            max_depth: None,
            min_samples_leaf: 20,
            feature_fraction: 1.0,
            subsample: 1.0,
            l2_regularization: 0.0,
            max_bins: 255,
            early_stopping_rounds: None,
            validation_fraction: 0.1,
            seed: 0,
            threads: 1,
        })
    }
}

macro_rules! setters {
    ($params:ident { $($name:ident: $ty:ty),* $(,)? }) => {
        impl $params {
            $(
                pub fn $name(mut self, $name: $ty) -> Self {
                    self.0.$name = $name;
                    self
                }
            )*
        }
    };
}

setters!(GbdtParams {
    n_estimators: usize,
    learning_rate: f64,
    num_leaves: usize,
    max_depth: Option<usize>,
    min_samples_leaf: usize,
    feature_fraction: f64,
    subsample: f64,
    l2_regularization: f64,
    max_bins: usize,
    early_stopping_rounds: Option<usize>,
    validation_fraction: f64,
    seed: u64,
    threads: usize,
});

fn invalid<T>(name: &'static str, value: impl std::fmt::Display, why: &'static str) -> Result<T> {
    Err(Error::InvalidParam {
        name,
        value: value.to_string(),
        why,
    })
}

/// A share in (0, 1].
fn share(name: &'static str, v: f64) -> Result<()> {
    if v > 0.0 && v <= 1.0 {
        Ok(())
    } else {
        invalid(name, v, "must be greater than 0 and at most 1")
    }
}

fn max_bins(v: usize) -> Result<()> {
    if (2..=255).contains(&v) {
        Ok(())
    } else {
        invalid("max_bins", v, "must be from 2 to 255")
    }
}

impl ParamGuard for GbdtParams {
    type Checked = GbdtValidParams;
    type Error = Error;

    fn check_ref(&self) -> Result<&GbdtValidParams> {
        let p = &self.0;
        if p.n_estimators == 0 {
            return invalid("n_estimators", 0, "must be at least 1");
        }
        if !(p.learning_rate > 0.0 && p.learning_rate.is_finite()) {
            return invalid("learning_rate", p.learning_rate, "must be greater than 0");
        }
        if p.num_leaves < 2 {
            return invalid("num_leaves", p.num_leaves, "must be at least 2");
        }
        if p.max_depth == Some(0) {
            return invalid("max_depth", 0, "must be at least 1");
        }
        if p.min_samples_leaf == 0 {
            return invalid("min_samples_leaf", 0, "must be at least 1");
        }
        share("feature_fraction", p.feature_fraction)?;
        share("subsample", p.subsample)?;
        if !(p.l2_regularization >= 0.0 && p.l2_regularization.is_finite()) {
            return invalid("l2_regularization", p.l2_regularization, "must be 0 or more");
        }
        max_bins(p.max_bins)?;
        if p.early_stopping_rounds == Some(0) {
            return invalid("early_stopping_rounds", 0, "must be at least 1");
        }
        if !(p.validation_fraction > 0.0 && p.validation_fraction < 1.0) {
            return invalid("validation_fraction", p.validation_fraction, "must be between 0 and 1");
        }
        Ok(p)
    }

    fn check(self) -> Result<GbdtValidParams> {
        self.check_ref()?;
        Ok(self.0)
    }
}

/// How a forest's tree measures a split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SplitQuality {
    Gini,
    Entropy,
}

/// Checked random-forest parameters; names and defaults are scikit-learn's.
#[derive(Debug, Clone, PartialEq)]
pub struct ForestValidParams {
    pub n_trees: usize,
    pub max_depth: Option<usize>,
    /// Features tried at each split: `None` is scikit-learn's `"sqrt"`.
    pub feature_fraction: Option<f64>,
    /// Each tree on a bootstrap sample (drawn with replacement) of the rows.
    pub bootstrap: bool,
    pub min_samples_leaf: usize,
    pub split_quality: SplitQuality,
    pub max_bins: usize,
    pub seed: u64,
    /// Trees grown at once; the model does not depend on it.
    pub threads: usize,
}

/// Random-forest parameters, checked by [`ParamGuard::check`].
#[derive(Debug, Clone, PartialEq)]
pub struct ForestParams(pub(crate) ForestValidParams);

impl Default for ForestParams {
    fn default() -> Self {
        ForestParams(ForestValidParams {
            n_trees: 100,
            max_depth: None,
            feature_fraction: None,
            bootstrap: true,
            min_samples_leaf: 1,
            split_quality: SplitQuality::Gini,
            max_bins: 255,
            seed: 0,
            threads: 1,
        })
    }
}

setters!(ForestParams {
    n_trees: usize,
    max_depth: Option<usize>,
    feature_fraction: Option<f64>,
    bootstrap: bool,
    min_samples_leaf: usize,
    split_quality: SplitQuality,
    max_bins: usize,
    seed: u64,
    threads: usize,
});

impl ParamGuard for ForestParams {
    type Checked = ForestValidParams;
    type Error = Error;

    fn check_ref(&self) -> Result<&ForestValidParams> {
        let p = &self.0;
        if p.n_trees == 0 {
            return invalid("n_trees", 0, "must be at least 1");
        }
        if p.max_depth == Some(0) {
            return invalid("max_depth", 0, "must be at least 1");
        }
        if let Some(f) = p.feature_fraction {
            share("feature_fraction", f)?;
        }
        if p.min_samples_leaf == 0 {
            return invalid("min_samples_leaf", 0, "must be at least 1");
        }
        max_bins(p.max_bins)?;
        Ok(p)
    }

    fn check(self) -> Result<ForestValidParams> {
        self.check_ref()?;
        Ok(self.0)
    }
}
