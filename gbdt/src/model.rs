//! Fitted models: trees whose splits read raw `f64` features exactly as the model IR does.

/// One tree; `nodes[0]` is the root.
#[derive(Debug, Clone, PartialEq)]
pub struct Tree {
    pub nodes: Vec<Node>,
}

/// A node. A split first routes a missing value (NaN) by `missing_left`, then tests the value.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// Left when `(x[feature] as f32) < threshold`.
    Numeric {
        feature: usize,
        threshold: f32,
        missing_left: bool,
        left: usize,
        right: usize,
    },
    /// Left when `x[feature] as f32` is a whole number `c >= 0` and `c` is in `categories`
    /// (ascending); any other value goes right.
    Categorical {
        feature: usize,
        categories: Vec<u32>,
        missing_left: bool,
        left: usize,
        right: usize,
    },
    /// A margin (boosting, one value) or per-class weights (forest).
    Leaf { values: Vec<f64> },
}

/// The category of `x` as a categorical split reads it (ONNX's `BRANCH_EQ` on a float tensor).
pub fn category(x: f64) -> Option<u32> {
    let c = x as f32;
    (c >= 0.0 && c.trunc() == c).then_some(c as u32)
}

impl Tree {
    /// The leaf `x` reaches.
    pub fn leaf(&self, x: &[f64]) -> &[f64] {
        let mut i = 0;
        loop {
            i = match &self.nodes[i] {
                Node::Leaf { values } => return values,
                Node::Numeric {
                    feature,
                    threshold,
                    missing_left,
                    left,
                    right,
                } => branch(x[*feature], *missing_left, (*left, *right), |v| (v as f32) < *threshold),
                Node::Categorical {
                    feature,
                    categories,
                    missing_left,
                    left,
                    right,
                } => branch(x[*feature], *missing_left, (*left, *right), |v| {
                    category(v).is_some_and(|c| categories.binary_search(&c).is_ok())
                }),
            }
        }
    }

    /// Number of leaves.
    pub fn leaves(&self) -> usize {
        self.nodes.iter().filter(|n| matches!(n, Node::Leaf { .. })).count()
    }
}

/// The child a split sends `v` to: a missing value by `missing_left`, any other by `test`.
fn branch(v: f64, missing_left: bool, (left, right): (usize, usize), test: impl Fn(f64) -> bool) -> usize {
    let goes_left = if v.is_nan() { missing_left } else { test(v) };
    if goes_left { left } else { right }
}

/// How a boosted model's summed margins become predictions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// Squared error: the margin is the prediction.
    Identity,
    /// Binary log-loss: P(class 1) = sigmoid(margin).
    Sigmoid,
    /// Multiclass log-loss: one margin per class, softmax.
    Softmax,
    /// Poisson: `exp(margin)`.
    Exp,
}

/// A fitted gradient-boosted ensemble.
#[derive(Debug, Clone, PartialEq)]
pub struct Booster {
    pub trees: Vec<Tree>,
    /// The output each tree adds to (the class, for softmax; else 0).
    pub tree_outputs: Vec<usize>,
    /// Per output, the margin the sum starts from.
    pub base_score: Vec<f64>,
    pub link: Link,
    /// Boosting rounds kept (the best round, with early stopping).
    pub rounds: usize,
    /// The validation loss per round, with early stopping.
    pub validation_loss: Vec<f64>,
}

impl Booster {
    /// The summed margins of `x`: the base score, then each tree's leaf in tree order, in `f64`.
    pub fn margins(&self, x: &[f64]) -> Vec<f64> {
        let mut z = self.base_score.clone();
        for (tree, k) in self.trees.iter().zip(&self.tree_outputs) {
            z[*k] += tree.leaf(x)[0];
        }
        z
    }

    /// The prediction for `x`: the value (regression) or the class probabilities.
    pub fn predict(&self, x: &[f64]) -> Vec<f64> {
        let z = self.margins(x);
        match self.link {
            Link::Identity => z,
            Link::Exp => vec![z[0].exp()],
            Link::Sigmoid => {
                let p = 1.0 / (1.0 + (-z[0]).exp());
                vec![1.0 - p, p]
            }
            Link::Softmax => softmax(&z),
        }
    }
}

pub(crate) fn softmax(z: &[f64]) -> Vec<f64> {
    let max = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = z.iter().map(|v| (v - max).exp()).collect();
    let sum: f64 = e.iter().sum();
    e.into_iter().map(|v| v / sum).collect()
}

/// A fitted random forest (classification): each leaf holds its class shares divided by the
/// number of trees, rounded to `f32` (what an ONNX tree ensemble stores), so the probabilities are
/// the sums of the leaves in tree order, in `f64`: scikit-learn's soft vote.
#[derive(Debug, Clone, PartialEq)]
pub struct Forest {
    pub trees: Vec<Tree>,
    pub n_classes: usize,
}

impl Forest {
    /// The class probabilities of `x`.
    pub fn predict(&self, x: &[f64]) -> Vec<f64> {
        let mut p = vec![0.0; self.n_classes];
        for tree in &self.trees {
            for (a, b) in p.iter_mut().zip(tree.leaf(x)) {
                *a += *b;
            }
        }
        p
    }
}
