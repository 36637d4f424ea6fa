//! What every function of an ensemble is written from: the trees, their subtree sizes, how the
//! trees' leaves add up per row (the [`Accumulator`]), and the branch-free subtree limit.

use wasm_encoder::ValType;

use crate::codegen::layout::weight_table;
use crate::ir::{Aggregate, Body, Link, ModelIr, Output, Tree};

/// Subtrees of at most `limit` nodes are evaluated whole, without a branch: each split a
/// `select` between its children's values. Cheaper than the branches of its path when rows of
/// varying data mispredict them, and the more so the larger the ensemble: the more branches,
/// the fewer the processor's predictor can learn. Per ensemble size, `(most nodes, limit)`.
/// Measured per row at batch 1000 on the wine forests (binary votes):
/// - 20 trees of depth 6 (1,174 nodes): fastest with 7;
/// - 100 trees of depth 8 (12,086 nodes): 933 ns with 7, 402 ns with 15, 554 ns with 31;
/// - 100 trees of depth 12 (23,694 nodes, the bundled model): 1,013 ns with 15, 454 ns with
///   31, 582 ns with 63.
const BRANCH_FREE_NODES: [(usize, u32); 3] = [(2048, 7), (16384, 15), (usize::MAX, 31)];

/// The branch-free subtree limit for an ensemble of `nodes` nodes.
pub(in crate::codegen) fn branch_free_limit(nodes: usize) -> u32 {
    BRANCH_FREE_NODES
        .iter()
        .find(|(most, _)| nodes <= *most)
        .map_or(BRANCH_FREE_NODES[BRANCH_FREE_NODES.len() - 1].1, |(_, limit)| *limit)
}

/// Most classes whose weight sums (summing trees) a group keeps in locals; with more, each tree
/// adds to them in memory.
pub(in crate::codegen) const MAX_SUMS_IN_LOCALS: u32 = 16;

/// How a row's leaves add up, from the trees' first group to the outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Accumulator {
    /// A vote between two classes: each leaf is 0 or 1, class 1's votes an `i32` in output slot 0.
    Binary,
    /// A vote whose counts fit one `i64` in output slot 0, `width` bits per class: a leaf is its
    /// class's shift (`class * width`), and a vote adds `1 << shift`.
    Packed { width: u32 },
    /// A vote counted per class in the output row's `f64` slots, through `add_vote`.
    VotesInMemory,
    /// Class weights summed per class in a group's locals (at most [`MAX_SUMS_IN_LOCALS`]
    /// classes), kept in the output row's slots between groups.
    SumsInLocals,
    /// Class weights added by each tree to the output row's slots, through `add_weights`.
    SumsInMemory,
    /// The `f64` sum of the leaves in tree order, in output slot 0.
    Average,
    /// Boosted margins: per output an `f64` sum from its base score, in its margin slot
    /// ([`Boost::slot`]), kept in a group's locals for the outputs its trees add to.
    Boosted,
}

impl Accumulator {
    fn new(aggregate: Aggregate, n_trees: usize, n_classes: usize) -> Self {
        match aggregate {
            Aggregate::Vote if n_classes == 2 => Accumulator::Binary,
            Aggregate::Vote => match packed_votes(n_trees, n_classes) {
                Some(width) => Accumulator::Packed { width },
                None => Accumulator::VotesInMemory,
            },
            Aggregate::Sum if n_classes as u64 <= u64::from(MAX_SUMS_IN_LOCALS) => Accumulator::SumsInLocals,
            Aggregate::Sum => Accumulator::SumsInMemory,
            Aggregate::Average => Accumulator::Average,
        }
    }

    /// The type of the accumulator kept in slot 0 of each row's output until the outputs are
    /// written; `None` when it lives in the class slots.
    pub(super) fn slot0(self) -> Option<ValType> {
        match self {
            Accumulator::Binary => Some(ValType::I32),
            Accumulator::Packed { .. } => Some(ValType::I64),
            Accumulator::Average => Some(ValType::F64),
            Accumulator::VotesInMemory
            | Accumulator::SumsInLocals
            | Accumulator::SumsInMemory
            | Accumulator::Boosted => None,
        }
    }

    /// The type of a leaf's value: a class, a shift, a row of the weight table, or a value's
    /// `f64` bits. A value travels through the tree's selects and blocks as an `i64`, and is
    /// reinterpreted once per tree: an `f64` `select` costs about what a branch does (timed in
    /// V8 and in wasmtime, not read from machine code), so branch-free subtrees of `f64` leaves
    /// ran slower than branches. With `i64` bits, `scripts/bench-gbdt` in wasmtime: LightGBM's
    /// 1,000 trees of 31 leaves from 53 to 7 us per row at batch 10,000; V8: average forests
    /// 2.5 to 3.5 times faster.
    fn leaf(self) -> ValType {
        match self {
            Accumulator::Packed { .. } | Accumulator::Average | Accumulator::Boosted => ValType::I64,
            Accumulator::Binary
            | Accumulator::VotesInMemory
            | Accumulator::SumsInLocals
            | Accumulator::SumsInMemory => ValType::I32,
        }
    }
}

/// A boosted body's outputs: what each tree adds to, where the sums start, and the link.
#[derive(Debug)]
pub(super) struct Boost<'a> {
    pub tree_outputs: &'a [u32],
    pub base_score: &'a [f64],
    pub link: Link,
    /// Whether the model is a classifier (margins in the class slots 1.., else in slot 0).
    pub classifier: bool,
}

impl Boost<'_> {
    /// The output row's slot holding output `k`'s margin until the outputs are written.
    pub(super) fn slot(&self, k: u32) -> u32 {
        if self.classifier { 1 + k } else { 0 }
    }
}

/// What every function of an ensemble is written from.
#[derive(Debug)]
pub(super) struct Ensemble<'a> {
    pub trees: &'a [Tree],
    /// A boosted body's outputs.
    pub boost: Option<Boost<'a>>,
    pub n_classes: u32,
    pub accumulator: Accumulator,
    /// Per tree, the nodes under each node.
    pub sizes: Vec<Vec<u32>>,
    /// Per tree, each node's row in the weight table (summing trees).
    pub rows: Vec<Vec<u32>>,
    /// The leaves' type.
    pub leaf: ValType,
    /// Whether every leaf is 0 or 1 (a vote between two classes), so that a split with a leaf
    /// child is boolean arithmetic on its condition.
    pub boolean: bool,
    /// Votes packed into one `i64`, this many bits per class: a leaf is its class's shift
    /// (`class * width`, as `i64`).
    pub packed: Option<u32>,
    /// Subtrees of at most this many nodes are written without a branch.
    pub branch_free: u32,
}

impl<'a> Ensemble<'a> {
    /// The ensemble of a tree body.
    pub(super) fn new(ir: &'a ModelIr) -> Self {
        let (trees, accumulator, boost) = match &ir.body {
            Body::Trees { trees, aggregate } => (
                trees.as_slice(),
                Accumulator::new(*aggregate, trees.len(), ir.n_outputs()),
                None,
            ),
            Body::Boosted {
                trees,
                tree_outputs,
                base_score,
                link,
            } => (
                trees.as_slice(),
                Accumulator::Boosted,
                Some(Boost {
                    tree_outputs,
                    base_score,
                    link: *link,
                    classifier: matches!(ir.output, Output::Classification { .. }),
                }),
            ),
            Body::Linear { .. } => unreachable!("a tree body"),
        };
        Ensemble {
            trees,
            boost,
            n_classes: ir.n_outputs() as u32,
            accumulator,
            sizes: trees.iter().map(subtree_sizes).collect(),
            rows: weight_table(trees).0,
            leaf: accumulator.leaf(),
            boolean: accumulator == Accumulator::Binary,
            packed: match accumulator {
                Accumulator::Packed { width } => Some(width),
                _ => None,
            },
            branch_free: branch_free_limit(trees.iter().map(|t| t.nodes.len()).sum()),
        }
    }
}

/// The bits per class when every class's vote count fits one `i64` (a count is at most the
/// number of trees), else `None`.
fn packed_votes(n_trees: usize, n_classes: usize) -> Option<u32> {
    let width = usize::BITS - n_trees.leading_zeros();
    (n_classes as u64 * u64::from(width) <= 64).then_some(width)
}

/// The number of nodes under each node, itself included. The tree must be valid.
fn subtree_sizes(tree: &Tree) -> Vec<u32> {
    // Parents come before children in a depth-first order, so summing it backwards is post-order.
    let mut order = Vec::with_capacity(tree.nodes.len());
    let mut stack = vec![0usize];
    while let Some(i) = stack.pop() {
        order.push(i);
        if let Some((left, right)) = tree.nodes[i].children() {
            stack.extend([left as usize, right as usize]);
        }
    }
    let mut sizes = vec![1u32; tree.nodes.len()];
    for &i in order.iter().rev() {
        if let Some((left, right)) = tree.nodes[i].children() {
            sizes[i] = 1 + sizes[left as usize] + sizes[right as usize];
        }
    }
    sizes
}
