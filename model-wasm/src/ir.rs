//! The model intermediate representation: the single source of truth for a trained model.
//!
//! The ONNX file, the generated WebAssembly module and the reference evaluator ([`ModelIr::predict`])
//! are all made from it, so they agree by construction, and the parity tests hold each of them to
//! the evaluator.
//!
//! Semantics, exactly:
//! - Inputs are `f64` features in [`ModelIr::features`] order. Missing or non-finite inputs are
//!   errors, never guessed.
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
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Link {
    Identity,
    Sigmoid,
    Softmax,
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
    },
    /// A class index (vote) or a value (average).
    Leaf { value: f64 },
    /// One weight per class (sum): what this tree adds to each class's probability.
    Weights { weights: Vec<f32> },
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
    /// The index of the leaf `x` (IR feature order) reaches: splits go left when
    /// `(x[feature] as f32) < threshold`. The tree must have passed [`ModelIr::validate`].
    pub fn leaf_index(&self, x: &[f64]) -> usize {
        let mut i = 0usize;
        while let Node::Split {
            feature,
            threshold,
            left,
            right,
        } = &self.nodes[i]
        {
            i = if (x[*feature as usize] as f32) < *threshold {
                *left
            } else {
                *right
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

    pub fn classes(&self) -> &[String] {
        match &self.output {
            Output::Classification { classes } => classes,
            Output::Regression { .. } => &[],
        }
    }
}
