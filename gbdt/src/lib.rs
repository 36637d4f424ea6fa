//! Histogram gradient boosting and random forests, written for Wasmline's model IR.
//!
//! - [`GbdtParams`]: gradient boosting with LightGBM's parameters and defaults (leaf-wise trees,
//!   `num_leaves`, `min_samples_leaf`, `feature_fraction`, `subsample`, L2, `max_bins`, early
//!   stopping on a held-out share), for squared error, Poisson, binary and multiclass log-loss.
//! - [`ForestParams`]: scikit-learn's random forest (bootstrap, features sampled at each split,
//!   soft vote).
//!
//! Both learn from missing values (NaN): every split learns where a missing value goes, so a
//! fitted model routes one at prediction time. Boosting splits categorical features (whole-number
//! codes) on category sets, as LightGBM does.
//!
//! What makes the trees exportable as they are: a numeric split is `(x as f32) < threshold` with
//! an `f32` threshold between two bins, so ONNX, the generated WebAssembly and the trainer route
//! every value alike; and every sum runs in a fixed order in one thread, so a fit gives the same
//! model on any number of threads.
//!
//! ```
//! use gbdt::{Dataset, GbdtParams, Objective, Target};
//! use linfa::ParamGuard;
//! use ndarray::Array2;
//!
//! // y = 1 when x0 > 0.5, and a missing x0 means 1 too.
//! let x = Array2::from_shape_fn((400, 2), |(i, j)| {
//!     if j == 0 && i % 10 == 0 { f64::NAN } else { ((i * 37 + j * 11) % 100) as f64 / 100.0 }
//! });
//! let y: Vec<usize> = (0..400).map(|i| usize::from(x[[i, 0]].is_nan() || x[[i, 0]] > 0.5)).collect();
//! let data = Dataset { x: x.view(), target: Target::Classes { y: &y, n_classes: 2 }, categorical: &[] };
//! let model = GbdtParams::new(Objective::LogLoss).n_estimators(20).check()?.fit(&data)?;
//! assert!(model.predict(&[0.9, 0.1])[1] > 0.9);
//! assert!(model.predict(&[f64::NAN, 0.1])[1] > 0.9);
//! assert!(model.predict(&[0.1, 0.1])[1] < 0.1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod bins;
mod boost;
mod error;
mod forest;
mod grow;
mod model;
mod parallel;
mod params;
mod rng;

use ndarray::ArrayView2;

pub use bins::MAX_CATEGORIES;
pub use error::{Error, Result};
pub use model::{Booster, Forest, Link, Node, Tree, category};
pub use params::{ForestParams, ForestValidParams, GbdtParams, GbdtValidParams, Objective, SplitQuality};

/// What a model learns from.
#[derive(Debug, Clone, Copy)]
pub struct Dataset<'a> {
    /// One row per example; NaN is a missing value.
    pub x: ArrayView2<'a, f64>,
    pub target: Target<'a>,
    /// Per feature, whether it holds category codes (missing entries: numeric).
    pub categorical: &'a [bool],
}

/// The target of each row.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    /// Class indices below `n_classes`.
    Classes { y: &'a [usize], n_classes: usize },
    /// Finite values.
    Values(&'a [f64]),
}

impl Dataset<'_> {
    /// The number of rows, once the target fits them.
    fn check(&self) -> Result<usize> {
        let n = self.x.nrows();
        if n == 0 {
            return Err(Error::Empty);
        }
        match self.target {
            Target::Classes { y, n_classes } => {
                if y.len() != n {
                    return Err(Error::Shape {
                        rows: n,
                        targets: y.len(),
                    });
                }
                if n_classes < 2 {
                    return Err(Error::Targets(format!("{n_classes} classes: a classifier needs two")));
                }
                if let Some((row, class)) = y.iter().enumerate().find(|(_, c)| **c >= n_classes) {
                    return Err(Error::Class {
                        row,
                        class: *class,
                        classes: n_classes,
                    });
                }
            }
            Target::Values(y) => {
                if y.len() != n {
                    return Err(Error::Shape {
                        rows: n,
                        targets: y.len(),
                    });
                }
                if let Some((row, v)) = y.iter().enumerate().find(|(_, v)| !v.is_finite()) {
                    return Err(Error::Target {
                        row,
                        value: *v,
                        why: "not a finite number",
                    });
                }
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests;
