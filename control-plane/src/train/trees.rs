//! linfa decision trees into IR trees.
//!
//! Two things change on the way, both checked:
//! - Thresholds become `f32` (ONNX and the generated modules compare in `f32`). linfa splits at
//!   the midpoint `t` of two neighbouring training values `a < t <= b`; the IR takes the `f32`
//!   nearest `t`, nudged so that `f32(a) < t32 <= f32(b)`. Every training value then goes the way
//!   it went in linfa; a split whose neighbours are equal in `f32` cannot be exported and is an error.
//! - Leaf classes are recounted from the training rows that reach each leaf, ties going to the
//!   lowest class index (linfa breaks ties through a `HashMap`, arbitrarily). A leaf whose class
//!   differs from linfa's without a tie is an error.

use std::collections::HashMap;

use linfa_trees::TreeNode;
use model_wasm::{Node, Tree};
use ndarray::ArrayView2;

/// An IR tree and, per node, whether it is a leaf whose class was a tie, and linfa's own `f64`
/// threshold (NaN for leaves).
#[derive(Debug, Clone)]
pub(super) struct ConvertedTree {
    pub tree: Tree,
    pub tied: Vec<bool>,
    pub thresholds64: Vec<f64>,
}

impl ConvertedTree {
    /// Whether `row` ends in another leaf when the splits compare in `f64` with linfa's thresholds
    /// than in `f32` with the IR's: a value on a split's rounding boundary, where linfa and every
    /// `f32` runtime (ONNX included) legitimately differ.
    pub(super) fn on_f32_boundary(&self, row: &[f64]) -> bool {
        let mut i = 0usize;
        while let Node::Split {
            feature, left, right, ..
        } = &self.tree.nodes[i]
        {
            i = if row[*feature as usize] < self.thresholds64[i] {
                *left
            } else {
                *right
            } as usize;
        }
        i != leaf_of(&self.tree, row)
    }
}

/// The `f32` threshold that routes every training value as `t` does in `f64`.
pub(super) fn f32_threshold(t: f64, sorted: &[f64], feature: &str) -> anyhow::Result<f32> {
    let i = sorted.partition_point(|v| *v < t);
    let mut t32 = t as f32;
    if i > 0 {
        let a32 = sorted[i - 1] as f32;
        if t32 <= a32 {
            t32 = a32.next_up();
        }
    }
    if i < sorted.len() {
        let b32 = sorted[i] as f32;
        if t32 > b32 {
            anyhow::bail!(
                "feature '{feature}': training values {} and {} are equal in float32, so the split at {t} cannot be exported",
                sorted[i - 1],
                sorted[i]
            );
        }
    }
    Ok(t32)
}

/// Converts a fitted linfa tree trained on `x` (columns = the tree's local features) and class
/// indices `y`. `feature_map[local]` is the IR feature index; `names` are the IR feature names.
pub(super) fn convert<'a>(
    root: &TreeNode<f64, usize>,
    x: ArrayView2<'a, f64>,
    y: &[usize],
    class_weights: &[f32],
    feature_map: &'a [usize],
    names: &'a [String],
) -> anyhow::Result<ConvertedTree> {
    let mut builder = Builder {
        x,
        feature_map,
        names,
        sorted: HashMap::new(),
        nodes: Vec::new(),
        linfa_class: Vec::new(),
        thresholds64: Vec::new(),
    };
    builder.build(root)?;
    let Builder {
        mut nodes,
        linfa_class,
        thresholds64,
        ..
    } = builder;

    // Recount the leaves' classes from the training rows, routed the IR's way.
    let n_classes = class_weights.len().max(y.iter().copied().max().unwrap_or(0) + 1);
    let mut counts: HashMap<usize, Vec<f32>> = HashMap::new();
    let local_of: HashMap<usize, usize> = feature_map.iter().enumerate().map(|(l, g)| (*g, l)).collect();
    for (row, class) in x.rows().into_iter().zip(y) {
        let mut i = 0usize;
        while let Node::Split {
            feature,
            threshold,
            left,
            right,
            ..
        } = &nodes[i]
        {
            let v = row[local_of[&(*feature as usize)]];
            i = if (v as f32) < *threshold { *left } else { *right } as usize;
        }
        // Summed in row order in f32, as linfa sums its class weights.
        counts.entry(i).or_insert_with(|| vec![0.0; n_classes])[*class] +=
            class_weights.get(*class).copied().unwrap_or(1.0);
    }
    let mut tied = vec![false; nodes.len()];
    for (i, node) in nodes.iter_mut().enumerate() {
        let Node::Leaf { value } = node else { continue };
        let Some(c) = counts.get(&i) else { continue };
        let max = c.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let best = c.iter().position(|k| *k == max).expect("a maximum");
        tied[i] = c.iter().filter(|k| **k == max).count() > 1;
        if Some(best) != linfa_class[i] && !tied[i] {
            anyhow::bail!(
                "leaf {i}: the training rows give class {best}, linfa says {:?}; the f32 thresholds changed the routing",
                linfa_class[i]
            );
        }
        *value = best as f64;
    }
    Ok(ConvertedTree {
        tree: Tree { nodes },
        tied,
        thresholds64,
    })
}

/// Builds IR nodes in depth-first order; a split's children are patched in after they are built.
struct Builder<'a> {
    x: ArrayView2<'a, f64>,
    feature_map: &'a [usize],
    names: &'a [String],
    /// Sorted training values per local feature, computed when first needed.
    sorted: HashMap<usize, Vec<f64>>,
    nodes: Vec<Node>,
    linfa_class: Vec<Option<usize>>,
    thresholds64: Vec<f64>,
}

impl Builder<'_> {
    fn build(&mut self, node: &TreeNode<f64, usize>) -> anyhow::Result<u32> {
        let index = self.nodes.len();
        if node.is_leaf() {
            self.nodes.push(Node::Leaf {
                value: node.prediction().unwrap_or_default() as f64,
            });
            self.linfa_class.push(node.prediction());
            self.thresholds64.push(f64::NAN);
            return Ok(index as u32);
        }
        let (local, t, _) = node.split();
        let x = self.x;
        let column = self.sorted.entry(local).or_insert_with(|| {
            let mut c: Vec<f64> = x.column(local).to_vec();
            c.sort_by(f64::total_cmp);
            c
        });
        let threshold = f32_threshold(t, column, &self.names[self.feature_map[local]])?;
        self.nodes.push(Node::Leaf { value: 0.0 });
        self.linfa_class.push(None);
        self.thresholds64.push(t);
        let children = node.children();
        let (Some(left), Some(right)) = (children[0].as_ref(), children[1].as_ref()) else {
            anyhow::bail!("linfa returned a split node without two children");
        };
        let left = self.build(left)?;
        let right = self.build(right)?;
        self.nodes[index] = Node::Split {
            feature: self.feature_map[local] as u32,
            threshold,
            left,
            right,
            missing: Default::default(),
        };
        Ok(index as u32)
    }
}

/// The leaf `row` (in IR feature order) reaches in `tree`.
pub(super) fn leaf_of(tree: &Tree, row: &[f64]) -> usize {
    tree.leaf_index(row)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_keep_every_training_value_on_its_side() {
        // Neighbours that are close in f32: the midpoint rounds onto the lower one.
        let a = 1.0f64;
        let b = f64::from(1.0f32.next_up());
        let t = (a + b) / 2.0;
        let t32 = f32_threshold(t, &[0.5, a, b, 2.0], "x").unwrap();
        assert!((a as f32) < t32 && t32 <= b as f32);
        // The usual case: the nearest f32.
        assert_eq!(f32_threshold(0.25, &[0.0, 0.5], "x").unwrap(), 0.25f32);
        // Distinct in f64, equal in f32: refused.
        let c = 1.0 + 1e-12;
        let err = f32_threshold((1.0 + c) / 2.0, &[1.0, c], "alcohol")
            .unwrap_err()
            .to_string();
        assert!(err.contains("feature 'alcohol'"), "{err}");
    }
}
