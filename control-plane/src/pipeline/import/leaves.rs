//! Rows that reach every leaf of every tree: what a module made from an imported model is
//! checked on when there is no reference data.
//!
//! Each tree is walked from its root; at each leaf the splits on the way say, per feature, which
//! side the value must take. A value that takes all of them is picked among candidates (the
//! midpoints between the split thresholds on that feature and a little beyond them, the
//! thresholds themselves and their neighbours one ulp away in `f32` and `f64`, the categories of
//! the sets and values that have none), each tried with [`Node::goes_left`] itself, so the row
//! takes the path under the IR's own rules. Leaves of different trees share a row when they
//! constrain different features (or agree), so a model of thousands of trees needs a few hundred
//! rows, not one per leaf. Every row is then walked through every tree to count the leaves
//! actually reached; a leaf no finite value reaches (its path contradicts itself) is counted
//! as not reached.

use std::collections::BTreeSet;

use model_wasm::{ModelIr, Node, Preprocess, Tree};

/// How many existing rows a leaf is tried in before a new row is started.
const ROW_TRIES: usize = 256;

/// The generated rows (finite values, IR feature order) and how many leaves they reach.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LeafRows {
    pub rows: Vec<Vec<f64>>,
    /// Leaves over all trees.
    pub leaves: usize,
    /// Leaves some row reaches.
    pub reached: usize,
}

/// Rows reaching every leaf of `ir`'s trees (for a model without trees: a few plain rows, zeros,
/// ones and minus ones). `ir` must have passed [`ModelIr::validate`].
pub(crate) fn leaf_rows(ir: &ModelIr) -> LeafRows {
    let n = ir.n_features();
    let trees = ir.trees();
    if trees.is_empty() {
        return LeafRows {
            rows: [0.0, 1.0, -1.0].iter().map(|v| vec![*v; n]).collect(),
            leaves: 0,
            reached: 0,
        };
    }
    // Rows in the body's space (after preprocessing); None: not constrained yet.
    let mut rows: Vec<Vec<Option<f64>>> = Vec::new();
    for tree in trees {
        for (ordinal, assignment) in leaf_assignments(tree).into_iter().enumerate() {
            let Some(assignment) = assignment else { continue };
            place(&mut rows, &assignment, ordinal, n);
        }
    }
    let rows: Vec<Vec<f64>> = rows
        .into_iter()
        .map(|row| raw_row(ir, &row.into_iter().map(|v| v.unwrap_or(0.0)).collect::<Vec<_>>()))
        .collect();
    let (leaves, reached) = count_reached(ir, &rows);
    LeafRows { rows, leaves, reached }
}

/// Per leaf of `tree` (in walk order): the value each feature its path tests must have, or
/// `None` when no candidate value takes the whole path.
fn leaf_assignments(tree: &Tree) -> Vec<Option<Vec<(usize, f64)>>> {
    let mut out = Vec::new();
    // (node, the splits on the way: node index and whether the path goes left)
    let mut stack: Vec<(usize, Vec<(usize, bool)>)> = vec![(0, Vec::new())];
    while let Some((i, path)) = stack.pop() {
        let node = &tree.nodes[i];
        match node.children() {
            // Validated trees are acyclic; the depth bound keeps a walk finite regardless.
            Some((left, right)) if path.len() < tree.nodes.len() => {
                let mut to_right = path.clone();
                to_right.push((i, false));
                stack.push((right as usize, to_right));
                let mut to_left = path;
                to_left.push((i, true));
                stack.push((left as usize, to_left));
            }
            Some(_) => out.push(None),
            None => out.push(assign(tree, &path)),
        }
    }
    out
}

/// A value per feature on `path` that takes every split of it the way the path goes.
fn assign(tree: &Tree, path: &[(usize, bool)]) -> Option<Vec<(usize, f64)>> {
    let features: BTreeSet<u32> = path
        .iter()
        .filter_map(|(i, _)| tree.nodes[*i].split_feature())
        .collect();
    features
        .into_iter()
        .map(|feature| {
            let splits: Vec<(&Node, bool)> = path
                .iter()
                .map(|(i, left)| (&tree.nodes[*i], *left))
                .filter(|(node, _)| node.split_feature() == Some(feature))
                .collect();
            candidates(&splits)
                .into_iter()
                .find(|x| splits.iter().all(|(node, left)| node.goes_left(*x) == *left))
                .map(|x| (feature as usize, x))
        })
        .collect()
}

/// Values worth trying for a feature tested by `splits`, the most robust first.
fn candidates(splits: &[(&Node, bool)]) -> Vec<f64> {
    let mut thresholds: Vec<f64> = Vec::new();
    let mut categories: BTreeSet<u32> = BTreeSet::new();
    for (node, _) in splits {
        match node {
            Node::Split { threshold, .. } => thresholds.push(f64::from(*threshold)),
            Node::SplitLe { threshold, .. } => thresholds.push(*threshold),
            Node::SplitIn { categories: set, .. } => categories.extend(set.iter().copied()),
            Node::Leaf { .. } | Node::Weights { .. } => {}
        }
    }
    thresholds.retain(|t| t.is_finite());
    thresholds.sort_by(f64::total_cmp);
    thresholds.dedup();
    let mut out = Vec::new();
    if let (Some(first), Some(last)) = (thresholds.first(), thresholds.last()) {
        out.push(first - 1.0 - first.abs());
        out.push(last + 1.0 + last.abs());
    }
    out.extend(thresholds.windows(2).map(|w| w[0] + (w[1] - w[0]) / 2.0));
    for t in &thresholds {
        let f = *t as f32;
        out.extend([
            *t,
            t.next_down(),
            t.next_up(),
            f64::from(f.next_down()),
            f64::from(f.next_up()),
        ]);
    }
    out.extend(categories.iter().map(|c| f64::from(*c)));
    if let Some(last) = categories.last() {
        out.push(f64::from(*last) + 1.0);
    }
    out.extend([0.0, -1.0, 1.0]);
    out.retain(|x| x.is_finite());
    out
}

/// Puts a leaf's assignment into a row whose values agree (free or equal), trying at most
/// [`ROW_TRIES`] rows from `ordinal`, so that the leaves of one tree spread over the rows.
fn place(rows: &mut Vec<Vec<Option<f64>>>, assignment: &[(usize, f64)], ordinal: usize, n: usize) {
    let fits = |row: &[Option<f64>]| {
        assignment
            .iter()
            .all(|(j, x)| row[*j].is_none_or(|v| v.to_bits() == x.to_bits()))
    };
    let len = rows.len();
    let chosen = (0..len.min(ROW_TRIES))
        .map(|k| (ordinal + k) % len)
        .find(|&r| fits(&rows[r]));
    let row = match chosen {
        Some(r) => &mut rows[r],
        None => {
            rows.push(vec![None; n]);
            rows.last_mut().expect("just pushed")
        }
    };
    for (j, x) in assignment {
        row[*j] = Some(*x);
    }
}

/// The input that becomes `z` after the IR's preprocessing (as near as `f64` allows; the
/// reached leaves are counted on the real thing).
fn raw_row(ir: &ModelIr, z: &[f64]) -> Vec<f64> {
    let mut x = z.to_vec();
    for step in ir.preprocess.iter().rev() {
        match step {
            Preprocess::Scale { center, scale } => {
                for ((v, c), s) in x.iter_mut().zip(center).zip(scale) {
                    *v = if *s != 0.0 && s.is_finite() { *v / s + c } else { *c };
                }
            }
        }
    }
    x.iter().map(|v| if v.is_finite() { *v } else { 0.0 }).collect()
}

/// `x` as the trees see it.
fn preprocessed(ir: &ModelIr, row: &[f64]) -> Vec<f64> {
    let mut x = row.to_vec();
    for step in &ir.preprocess {
        match step {
            Preprocess::Scale { center, scale } => {
                for ((v, c), s) in x.iter_mut().zip(center).zip(scale) {
                    *v = (*v - c) * s;
                }
            }
        }
    }
    x
}

/// (leaves over all trees, leaves some row reaches).
fn count_reached(ir: &ModelIr, rows: &[Vec<f64>]) -> (usize, usize) {
    let scaled: Vec<Vec<f64>> = rows.iter().map(|r| preprocessed(ir, r)).collect();
    let (mut leaves, mut reached) = (0, 0);
    for tree in ir.trees() {
        let hit: BTreeSet<usize> = scaled.iter().map(|x| tree.leaf_index(x)).collect();
        leaves += tree.nodes.iter().filter(|n| n.children().is_none()).count();
        reached += hit.len();
    }
    (leaves, reached)
}

#[cfg(test)]
mod tests {
    use model_wasm::ir::{Cast, Missing};
    use model_wasm::{Body, IR_VERSION, Link, Output};

    use super::*;

    fn split(feature: u32, threshold: f32, left: u32, right: u32) -> Node {
        Node::Split {
            feature,
            threshold,
            left,
            right,
            missing: Missing::Refuse,
        }
    }

    fn leaf(value: f64) -> Node {
        Node::Leaf { value }
    }

    fn boosted(trees: Vec<Tree>) -> ModelIr {
        let n = trees.len();
        let ir = ModelIr {
            ir_version: IR_VERSION,
            features: vec!["a".into(), "b".into(), "c".into()],
            preprocess: vec![],
            body: Body::Boosted {
                trees,
                tree_outputs: vec![0; n],
                base_score: vec![0.5],
                link: Link::Identity,
            },
            output: Output::Regression { target: "y".into() },
        };
        ir.validate().unwrap();
        ir
    }

    fn split_le(feature: u32, threshold: f64, left: u32, right: u32) -> Node {
        Node::SplitLe {
            feature,
            threshold,
            left,
            right,
            missing: Missing::Refuse,
        }
    }

    #[test]
    fn every_leaf_is_reached_even_one_ulp_from_a_threshold() {
        // f32 splits: a < 0.1, then a < the next f32 above 0.1: the middle leaf is one f32 wide.
        let t = 0.1f32;
        let ir = boosted(vec![Tree {
            nodes: vec![
                split(0, t, 1, 2),
                leaf(1.0),
                split(0, t.next_up(), 3, 4),
                leaf(2.0),
                leaf(3.0),
            ],
        }]);
        let rows = leaf_rows(&ir);
        assert_eq!((rows.leaves, rows.reached), (3, 3), "{:?}", rows.rows);

        // f64 splits (LightGBM): the same one f64 wide; a categorical split in another tree.
        let t = 0.1f64;
        let tree1 = Tree {
            nodes: vec![
                split_le(0, t, 1, 2),
                leaf(1.0),
                split_le(0, t.next_up(), 3, 4),
                leaf(2.0),
                leaf(3.0),
            ],
        };
        let tree2 = Tree {
            nodes: vec![
                split_le(1, -2.5, 1, 2),
                leaf(4.0),
                Node::SplitIn {
                    feature: 2,
                    categories: vec![3, 7],
                    cast: Cast::F64,
                    left: 3,
                    right: 4,
                    missing: Missing::Right,
                },
                leaf(5.0),
                leaf(6.0),
            ],
        };
        let ir = boosted(vec![tree1, tree2]);
        let rows = leaf_rows(&ir);
        assert_eq!((rows.leaves, rows.reached), (6, 6), "{:?}", rows.rows);
        assert!(
            rows.rows.len() <= 3,
            "leaves of different trees share rows: {:?}",
            rows.rows
        );
        assert!(rows.rows.iter().flatten().all(|v| v.is_finite()));
        for row in &rows.rows {
            ir.predict(row).unwrap();
        }
    }

    #[test]
    fn a_contradictory_path_is_counted_as_not_reached() {
        // a < 1 then a >= 2 cannot both hold: leaf 3 is dead.
        let tree = Tree {
            nodes: vec![
                split(0, 1.0, 1, 4),
                split(0, 2.0, 2, 3),
                leaf(1.0),
                leaf(2.0),
                leaf(3.0),
            ],
        };
        let rows = leaf_rows(&boosted(vec![tree]));
        assert_eq!((rows.leaves, rows.reached), (3, 2));
    }

    #[test]
    fn scaled_inputs_are_inverted_before_the_trees() {
        let mut ir = boosted(vec![Tree {
            nodes: vec![split(0, 0.25, 1, 2), leaf(1.0), leaf(2.0)],
        }]);
        ir.preprocess = vec![Preprocess::Scale {
            center: vec![10.0, 0.0, 0.0],
            scale: vec![0.5, 1.0, 1.0],
        }];
        let rows = leaf_rows(&ir);
        assert_eq!((rows.leaves, rows.reached), (2, 2), "{:?}", rows.rows);
    }

    #[test]
    fn a_model_without_trees_gets_plain_rows() {
        let ir = ModelIr {
            ir_version: IR_VERSION,
            features: vec!["a".into()],
            preprocess: vec![],
            body: Body::Linear {
                weights: vec![2.0],
                intercepts: vec![1.0],
                link: Link::Identity,
            },
            output: Output::Regression { target: "y".into() },
        };
        let rows = leaf_rows(&ir);
        assert_eq!(rows.rows, vec![vec![0.0], vec![1.0], vec![-1.0]]);
        assert_eq!((rows.leaves, rows.reached), (0, 0));
    }

    #[test]
    fn tract_checks_every_row_of_small_ensembles_and_a_spread_of_large_ones() {
        let stump = || Tree {
            nodes: vec![split(0, 0.5, 1, 2), leaf(1.0), leaf(2.0)],
        };
        let rows: Vec<Vec<f64>> = (0..5000).map(|i| vec![i as f64, 0.0, 0.0]).collect();
        let small = boosted(vec![stump(); 10]);
        assert_eq!(super::super::tract_sample(&small, &rows), rows);
        // 5,000 trees of 2 leaves: 25 million steps a row.
        let large = boosted(vec![stump(); 5000]);
        let sample = super::super::tract_sample(&large, &rows);
        let fit = (super::super::TRACT_BUDGET / 25_000_000) as usize;
        assert_eq!(sample.len(), fit.max(64));
        assert_eq!((sample[0][0], sample[sample.len() - 1][0]), (0.0, 4999.0));
        assert!(sample.windows(2).all(|w| w[0][0] < w[1][0]), "evenly spread, in order");
    }
}
