//! The model intermediate representation: the single source of truth for a trained model.
//!
//! The ONNX file, the generated WebAssembly module and the reference evaluator ([`ModelIr::predict`])
//! are all made from it, so they agree by construction, and the parity tests hold each of them to
//! the evaluator.
//!
//! Semantics, exactly:
//! - Inputs are `f64` features in [`ModelIr::features`] order. Infinities are errors. A missing
//!   input (NaN) is legal only for a feature the model routes ([`ModelIr::accepts_missing`]: a
//!   tree model none of whose splits on that feature has [`Missing::Refuse`], and at least one of
//!   whose splits defines a missing rule); anywhere else it is an error naming the feature, never
//!   guessed.
//! - [`Preprocess::Scale`] maps `x[i]` to `(x[i] - center[i]) * scale[i]`, in `f64`.
//! - [`Body::Linear`]: `z[k] = intercepts[k] + sum_i weights[k * n + i] * x[i]`, in `f64`, then the link:
//!   identity (regression, one output), sigmoid (binary: one score `z`, P(class 1) = sigmoid(z)),
//!   or softmax over all outputs (multiclass).
//! - [`Body::Trees`]: every tree is walked from node 0; a split sends `x` left when
//!   `(x[feature] as f32) < threshold` (ONNX's `BRANCH_LT` on a float tensor), so thresholds are
//!   `f32` values. Leaves hold a class index ([`Aggregate::Vote`]: probabilities are vote shares,
//!   the label is the class with most votes, ties to the lowest index), a value
//!   ([`Aggregate::Average`]: the mean over trees), or per-class weights ([`Aggregate::Sum`]:
//!   probabilities are the sums over trees, in tree order, in `f64`, of the `f32` weights; the
//!   label is the largest, ties to the lowest index: scikit-learn's soft vote, whose forests
//!   store each leaf's class shares divided by the number of trees).
//! - [`Body::Boosted`] (XGBoost, LightGBM): output `k` starts at `base_score[k]` and each tree
//!   adds its leaf value to its own output (`tree_outputs[t]`), in tree order, in `f64`; then the
//!   link: identity, sigmoid, exp (one output), or softmax (one output per class). With a sigmoid
//!   link a classifier has two classes and one output (P(class 1)); a regressor may also end in a
//!   sigmoid (`reg:logistic`) or exp (`count:poisson`, LightGBM's poisson/gamma/tweedie).
//! - Splits, as the source library makes them. [`Node::Split`] (ONNX, XGBoost, our trees): left
//!   when `(x as f32) < threshold`. [`Node::SplitLe`] (LightGBM): left when `x <= threshold` in
//!   `f64`. [`Node::SplitIn`]: left when the value's category is in the set (see [`Cast`]: as
//!   XGBoost, LightGBM or ONNX's `BRANCH_EQ` reads it), right
//!   otherwise, values without a category included. One ensemble compares numbers in one
//!   precision: its numerical splits are all [`Node::Split`] or all [`Node::SplitLe`].
//!   Before the test, a split's [`Missing`] rule routes a missing value.

use serde::{Deserialize, Serialize};

/// Version of the IR's JSON form; bumped on incompatible changes.
pub const IR_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelIr {
    pub ir_version: u32,
    /// Input feature names, in order.
    pub features: Vec<String>,
    /// Applied in order to the feature vector before the body.
    #[serde(default)]
    pub preprocess: Vec<Preprocess>,
    pub body: Body,
    pub output: Output,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Preprocess {
    /// `x[i] = (x[i] - center[i]) * scale[i]` for every feature (standard scaling: center = mean,
    /// scale = 1 / standard deviation).
    Scale { center: Vec<f64>, scale: Vec<f64> },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Body {
    Linear {
        /// Row-major, one row of `features.len()` weights per output.
        weights: Vec<f64>,
        intercepts: Vec<f64>,
        link: Link,
    },
    Trees {
        trees: Vec<Tree>,
        aggregate: Aggregate,
    },
    /// A boosted ensemble (gradient boosting): per output a base score plus the leaf values of
    /// the trees that add to it, then the link.
    Boosted {
        /// Leaves are [`Node::Leaf`] values (margins).
        trees: Vec<Tree>,
        /// The output each tree adds to, one per tree: 0 unless softmax, where it is the class.
        tree_outputs: Vec<u32>,
        /// Per output, the margin the sum starts from.
        base_score: Vec<f64>,
        link: Link,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Link {
    Identity,
    Sigmoid,
    Softmax,
    /// `exp(z)`: log-link regression (Poisson, gamma, Tweedie); boosted models only.
    Exp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Aggregate {
    /// Leaves hold class indices; each tree votes.
    Vote,
    /// Leaves hold values; the prediction is their mean.
    Average,
    /// Leaves hold per-class weights ([`Node::Weights`]); the probabilities are their sums.
    Sum,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tree {
    /// `nodes[0]` is the root.
    pub nodes: Vec<Node>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "node", rename_all = "snake_case")]
pub enum Node {
    /// Go to `left` when `(x[feature] as f32) < threshold`, else to `right`.
    Split {
        feature: u32,
        threshold: f32,
        left: u32,
        right: u32,
        #[serde(default, skip_serializing_if = "Missing::is_refuse")]
        missing: Missing,
    },
    /// Go to `left` when `x[feature] <= threshold`, compared in `f64` (LightGBM's numerical
    /// split), else to `right`.
    SplitLe {
        feature: u32,
        threshold: f64,
        left: u32,
        right: u32,
        #[serde(default, skip_serializing_if = "Missing::is_refuse")]
        missing: Missing,
    },
    /// Go to `left` when the category of `x[feature]` (see [`Cast`]) is one of `categories`
    /// (ascending, no repeats, each below [`MAX_CATEGORY`]), else to `right`.
    SplitIn {
        feature: u32,
        categories: Vec<u32>,
        cast: Cast,
        left: u32,
        right: u32,
        #[serde(default, skip_serializing_if = "Missing::is_refuse")]
        missing: Missing,
    },
    /// A class index (vote), a value (average) or a margin (boosted).
    Leaf { value: f64 },
    /// One weight per class (sum): what this tree adds to each class's probability.
    Weights { weights: Vec<f32> },
}

/// A classifier has at most this many classes: a batch of [`crate::codegen::MAX_ROWS`] rows of
/// probabilities then fits the module's output buffer (8 MiB).
pub const MAX_CLASSES: usize = 1024;

/// Categories are below this (XGBoost's own limit, `2^24`: the integers an `f32` holds exactly).
pub const MAX_CATEGORY: u32 = 1 << 24;

/// How a categorical split reads the category of a value that is not missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cast {
    /// XGBoost: `c = x as f32`; no category when `c < 0`, else `trunc(c)`.
    F32,
    /// LightGBM: C's `(int)x`, truncation toward zero (values past `i32` saturate); no category
    /// when the result is negative. So `-0.5` is category 0 and `-1.0` has none.
    F64,
    /// ONNX's `BRANCH_EQ` (onnxmltools' LightGBM category sets): `c = x as f32` is category `c`
    /// only when it is a whole number `>= 0`; `2.5` and `-1.0` have none.
    Exact,
}

/// What a split does with a missing input (NaN).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Missing {
    /// The model defines no missing handling here: a missing input is an error naming the feature.
    #[default]
    Refuse,
    /// A missing value goes left (XGBoost's `default_left`, LightGBM's NaN missing type).
    Left,
    /// A missing value goes right.
    Right,
    /// A missing value is read as `0.0` and then tested (LightGBM's `None` missing type, and its
    /// categorical splits without the NaN type).
    AsZero,
    /// A missing value, and any value with `|x| <= 1e-35` (LightGBM's `kZeroThreshold`, an
    /// `f32`), goes left (LightGBM's `Zero` missing type); numerical splits only.
    ZeroLeft,
    /// As [`Missing::ZeroLeft`], to the right.
    ZeroRight,
}

impl Missing {
    pub fn is_refuse(&self) -> bool {
        *self == Missing::Refuse
    }
}

/// LightGBM's `kZeroThreshold`: `1e-35f`, compared with `f64` values.
pub const ZERO_THRESHOLD: f64 = 1e-35f32 as f64;

impl Node {
    /// The feature a split tests.
    pub fn split_feature(&self) -> Option<u32> {
        match self {
            Node::Split { feature, .. } | Node::SplitLe { feature, .. } | Node::SplitIn { feature, .. } => {
                Some(*feature)
            }
            Node::Leaf { .. } | Node::Weights { .. } => None,
        }
    }

    /// A split's children, `(left, right)`.
    pub fn children(&self) -> Option<(u32, u32)> {
        match self {
            Node::Split { left, right, .. } | Node::SplitLe { left, right, .. } | Node::SplitIn { left, right, .. } => {
                Some((*left, *right))
            }
            Node::Leaf { .. } | Node::Weights { .. } => None,
        }
    }

    /// A split's missing rule.
    pub fn missing(&self) -> Option<Missing> {
        match self {
            Node::Split { missing, .. } | Node::SplitLe { missing, .. } | Node::SplitIn { missing, .. } => {
                Some(*missing)
            }
            Node::Leaf { .. } | Node::Weights { .. } => None,
        }
    }

    /// Whether a split sends `x` (its feature's value, NaN when missing) left. The split's
    /// missing rule must allow a NaN `x` (see [`ModelIr::accepts_missing`]).
    pub fn goes_left(&self, x: f64) -> bool {
        match self {
            Node::Split { threshold, missing, .. } => match route_missing(*missing, x) {
                Route::Left => true,
                Route::Right => false,
                Route::Test(x) => (x as f32) < *threshold,
            },
            Node::SplitLe { threshold, missing, .. } => match route_missing(*missing, x) {
                Route::Left => true,
                Route::Right => false,
                Route::Test(x) => x <= *threshold,
            },
            Node::SplitIn {
                categories,
                cast,
                missing,
                ..
            } => match route_missing(*missing, x) {
                Route::Left => true,
                Route::Right => false,
                Route::Test(x) => category(x, *cast).is_some_and(|c| categories.binary_search(&c).is_ok()),
            },
            Node::Leaf { .. } | Node::Weights { .. } => unreachable!("a split"),
        }
    }
}

/// Where a split's missing rule sends `x`, or the value to test.
enum Route {
    Left,
    Right,
    Test(f64),
}

fn route_missing(missing: Missing, x: f64) -> Route {
    let zero = x.is_nan() || (-ZERO_THRESHOLD..=ZERO_THRESHOLD).contains(&x);
    match missing {
        Missing::Left if x.is_nan() => Route::Left,
        Missing::Right if x.is_nan() => Route::Right,
        Missing::AsZero if x.is_nan() => Route::Test(0.0),
        Missing::ZeroLeft if zero => Route::Left,
        Missing::ZeroRight if zero => Route::Right,
        _ => Route::Test(x),
    }
}

/// The category of a value that is not NaN, as [`Cast`] reads it; `None` when it has none.
pub fn category(x: f64, cast: Cast) -> Option<u32> {
    match cast {
        Cast::F32 => {
            let c = x as f32;
            (c >= 0.0).then_some(c as u32)
        }
        Cast::F64 => {
            // Rust's `as` saturates where C's cast is undefined; both give no category here.
            let c = x as i32;
            (c >= 0).then_some(c as u32)
        }
        Cast::Exact => {
            let c = x as f32;
            // Whole numbers past u32 saturate to u32::MAX, past every category.
            (c >= 0.0 && c.trunc() == c).then_some(c as u32)
        }
    }
}

/// What the model predicts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "task", rename_all = "snake_case")]
pub enum Output {
    /// Class labels, in the order of class indices.
    Classification {
        classes: Vec<String>,
    },
    Regression {
        target: String,
    },
}

/// One prediction.
#[derive(Debug, Clone, PartialEq)]
pub enum Prediction {
    Class {
        /// Index into the classes.
        label: usize,
        probabilities: Vec<f64>,
    },
    Value(f64),
}

/// A model's predictions for several rows, by kind.
#[derive(Debug, Clone, PartialEq)]
pub enum Outputs {
    Classes {
        labels: Vec<usize>,
        probabilities: Vec<Vec<f64>>,
    },
    Values(Vec<f64>),
}

impl Tree {
    /// The index of the leaf `x` (IR feature order) reaches (see [`Node::goes_left`]). The tree
    /// must have passed [`ModelIr::validate`].
    pub fn leaf_index(&self, x: &[f64]) -> usize {
        let mut i = 0usize;
        while let (Some(feature), Some((left, right))) = (self.nodes[i].split_feature(), self.nodes[i].children()) {
            i = if self.nodes[i].goes_left(x[feature as usize]) {
                left
            } else {
                right
            } as usize;
        }
        i
    }
}

impl ModelIr {
    pub fn n_features(&self) -> usize {
        self.features.len()
    }

    /// Number of classes (classification) or 1.
    pub fn n_outputs(&self) -> usize {
        match &self.output {
            Output::Classification { classes } => classes.len(),
            Output::Regression { .. } => 1,
        }
    }

    /// Splits this model's predictions into labels and probabilities, or values.
    ///
    /// # Panics
    /// If a prediction is not of this model's kind (they must come from [`ModelIr::predict`]).
    pub fn outputs(&self, predictions: Vec<Prediction>) -> Outputs {
        match self.output {
            Output::Classification { .. } => {
                let (labels, probabilities) = predictions
                    .into_iter()
                    .map(|p| match p {
                        Prediction::Class { label, probabilities } => (label, probabilities),
                        Prediction::Value(_) => panic!("a classifier predicts classes"),
                    })
                    .unzip();
                Outputs::Classes { labels, probabilities }
            }
            Output::Regression { .. } => Outputs::Values(
                predictions
                    .into_iter()
                    .map(|p| match p {
                        Prediction::Value(v) => v,
                        Prediction::Class { .. } => panic!("a regressor predicts values"),
                    })
                    .collect(),
            ),
        }
    }

    /// The trees of a tree body.
    pub fn trees(&self) -> &[Tree] {
        match &self.body {
            Body::Trees { trees, .. } | Body::Boosted { trees, .. } => trees,
            Body::Linear { .. } => &[],
        }
    }

    /// Whether a missing value (NaN) is legal for each feature: a tree model that defines
    /// missing handling (some split has a rule other than [`Missing::Refuse`]) accepts it for
    /// every feature none of whose splits refuses it.
    pub fn accepts_missing(&self) -> Vec<bool> {
        let splits = || {
            self.trees()
                .iter()
                .flat_map(|t| &t.nodes)
                .filter_map(|n| Some((n.split_feature()?, n.missing()?)))
        };
        let mut accepts = vec![splits().any(|(_, m)| m != Missing::Refuse); self.n_features()];
        for (feature, missing) in splits() {
            if missing == Missing::Refuse
                && let Some(a) = accepts.get_mut(feature as usize)
            {
                *a = false;
            }
        }
        accepts
    }

    pub fn classes(&self) -> &[String] {
        match &self.output {
            Output::Classification { classes } => classes,
            Output::Regression { .. } => &[],
        }
    }
}
