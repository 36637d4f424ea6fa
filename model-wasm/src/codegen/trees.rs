//! Tree ensembles as code, not data: every split is an `if` on
//! `f32.lt(x[feature] as f32, threshold)` (the IR's split, to the bit), every leaf a constant.
//!
//! Functions:
//! - One function per tree, `() -> i32` (vote: the leaf's class; sum: the leaf's row in the
//!   weight table, a data segment of `n_classes` f32 per leaf) or `() -> f64` (average: the
//!   leaf's value). It loads the features it tests from the row's `f32` buffer into locals first,
//!   then walks nested `if`/`else` blocks that leave the leaf on the stack.
//! - A function holds at most [`NODE_BUDGET`] nodes and nests at most [`MAX_NESTING`] blocks; a
//!   subtree past either limit is *outlined*: written as a function of its own (same signature)
//!   and called where it was. So no body grows past what engines compile quickly, however large
//!   or deep the tree, and the generator's recursion is bounded by [`MAX_NESTING`].
//! - `predict` scales each feature the trees use, demotes it to `f32` once per row into the
//!   buffer, then calls the trees in order: votes go to per-class counters in memory through
//!   `add_vote(class)`, class weights to per-class `f64` sums through `add_weights(row)`, values
//!   are summed in `f64` in tree order (the evaluator's order).

use std::collections::{BTreeMap, VecDeque};

use wasm_encoder::{BlockType, Function, ValType};

use super::emit::{FunctionBody, f32_at, f64_at, i32_at};
use super::layout::Layout;
use super::module::ModuleBuilder;
use super::predict;
use crate::ir::{Aggregate, ModelIr, Node, Tree};

/// Most nodes one function holds (about 12 bytes of code each).
pub(super) const NODE_BUDGET: u32 = 4096;
/// Most `if` blocks nested in one function.
pub(super) const MAX_NESTING: u32 = 64;

/// A function to write: the subtree of `tree` under `node`.
#[derive(Debug)]
struct Piece {
    tree: usize,
    node: usize,
    index: u32,
}

/// Adds the trees' functions and `predict` for a tree body; the index of `predict`.
pub(super) fn predict(
    module: &mut ModuleBuilder,
    ir: &ModelIr,
    layout: &Layout,
    trees: &[Tree],
    aggregate: Aggregate,
) -> u32 {
    let leaf = match aggregate {
        Aggregate::Vote | Aggregate::Sum => ValType::I32,
        Aggregate::Average => ValType::F64,
    };
    let (rows, _) = weight_table(trees);
    let mut pieces = VecDeque::new();
    let roots: Vec<u32> = (0..trees.len())
        .map(|tree| {
            let index = module.declare(&[], &[leaf]);
            pieces.push_back(Piece { tree, node: 0, index });
            index
        })
        .collect();
    let sizes: Vec<Vec<u32>> = trees.iter().map(subtree_sizes).collect();
    while let Some(piece) = pieces.pop_front() {
        let mut writer = PieceWriter {
            module,
            pieces: &mut pieces,
            piece: &piece,
            tree: &trees[piece.tree],
            sizes: &sizes[piece.tree],
            rows: &rows[piece.tree],
            leaf,
            boolean: aggregate == Aggregate::Vote && ir.n_outputs() == 2,
            body: FunctionBody::new(0),
            loads: BTreeMap::new(),
            remaining: NODE_BUDGET,
        };
        writer.node(piece.node, 0);
        let body = writer.finish(layout);
        module.define(piece.index, body);
    }

    let mut used = vec![false; ir.n_features()];
    for node in trees.iter().flat_map(|t| &t.nodes) {
        if let Node::Split { feature, .. } = node {
            used[*feature as usize] = true;
        }
    }
    let n_trees = trees.len() as f64;
    let body = match aggregate {
        Aggregate::Vote if ir.n_outputs() == 2 => predict::function(ir, layout, |f, row| {
            // Two classes: each tree returns 0 or 1, so class 1's votes are the sum of the
            // returns, kept on the stack (no counters in memory, no call per vote).
            store_features(f, row, &used);
            for (t, root) in roots.iter().enumerate() {
                f.code().call(*root);
                if t > 0 {
                    f.code().i32_add();
                }
            }
            let ones = f.local(ValType::I32);
            let (p0, p1) = (f.local(ValType::F64), f.local(ValType::F64));
            f.code()
                .local_set(ones)
                .i32_const(roots.len() as i32)
                .local_get(ones)
                .i32_sub()
                .f64_convert_i32_u()
                .f64_const(n_trees.into())
                .f64_div()
                .local_set(p0)
                .local_get(ones)
                .f64_convert_i32_u()
                .f64_const(n_trees.into())
                .f64_div()
                .local_set(p1);
            row.store_classes(f, &[p0, p1]);
        }),
        Aggregate::Vote => {
            let add_vote = module.add(&[ValType::I32], &[], add_vote(layout));
            predict::function(ir, layout, |f, row| {
                store_features(f, row, &used);
                let n_classes = ir.n_outputs() as u32;
                for k in 0..n_classes {
                    f.code()
                        .i32_const(0)
                        .i32_const(0)
                        .i32_store(i32_at(layout.votes + 4 * k));
                }
                for root in &roots {
                    f.code().call(*root).call(add_vote);
                }
                let probabilities: Vec<u32> = (0..n_classes)
                    .map(|k| {
                        let p = f.local(ValType::F64);
                        f.code()
                            .i32_const(0)
                            .i32_load(i32_at(layout.votes + 4 * k))
                            .f64_convert_i32_u()
                            .f64_const(n_trees.into())
                            .f64_div()
                            .local_set(p);
                        p
                    })
                    .collect();
                row.store_classes(f, &probabilities);
            })
        }
        Aggregate::Sum => {
            let add_weights = module.add(&[ValType::I32], &[], add_weights(layout, ir.n_outputs() as u32));
            predict::function(ir, layout, |f, row| {
                store_features(f, row, &used);
                let n_classes = ir.n_outputs() as u32;
                for k in 0..n_classes {
                    f.code()
                        .i32_const(0)
                        .f64_const(0.0.into())
                        .f64_store(f64_at(layout.votes + 8 * k));
                }
                for root in &roots {
                    f.code().call(*root).call(add_weights);
                }
                let probabilities: Vec<u32> = (0..n_classes)
                    .map(|k| {
                        let p = f.local(ValType::F64);
                        f.code()
                            .i32_const(0)
                            .f64_load(f64_at(layout.votes + 8 * k))
                            .local_set(p);
                        p
                    })
                    .collect();
                row.store_classes(f, &probabilities);
            })
        }
        Aggregate::Average => predict::function(ir, layout, |f, row| {
            store_features(f, row, &used);
            row.push_output_address(f);
            for (t, root) in roots.iter().enumerate() {
                f.code().call(*root);
                if t > 0 {
                    f.code().f64_add();
                }
            }
            f.code().f64_const(n_trees.into()).f64_div().f64_store(row.slot(0));
        }),
    };
    module.add(&[ValType::I32], &[ValType::I32], body)
}

/// Scales each used feature of the row and stores it, as `f32`, in the features buffer.
fn store_features(f: &mut FunctionBody, row: &predict::Row, used: &[bool]) {
    for (i, _) in used.iter().enumerate().filter(|(_, u)| **u) {
        f.code().i32_const(0);
        row.push_feature(f, i);
        f.code()
            .f32_demote_f64()
            .f32_store(f32_at(row.layout.features_f32 + 4 * i as u32));
    }
}

/// `add_vote(class: i32)`: one more vote for `class` in the counters.
fn add_vote(layout: &Layout) -> Function {
    const CLASS: u32 = 0;
    let mut f = FunctionBody::new(1);
    f.code()
        .local_get(CLASS)
        .i32_const(2)
        .i32_shl()
        .local_tee(CLASS)
        .local_get(CLASS)
        .i32_load(i32_at(layout.votes))
        .i32_const(1)
        .i32_add()
        .i32_store(i32_at(layout.votes));
    f.finish()
}

/// `add_weights(row: i32)`: adds the weight table's row (one `f32` per class) to the class sums,
/// in class order, in `f64`.
fn add_weights(layout: &Layout, n_classes: u32) -> Function {
    const ROW: u32 = 0;
    let mut f = FunctionBody::new(1);
    f.code()
        .local_get(ROW)
        .i32_const(4 * n_classes as i32)
        .i32_mul()
        .local_set(ROW);
    for k in 0..n_classes {
        f.code()
            .i32_const(0)
            .i32_const(0)
            .f64_load(f64_at(layout.votes + 8 * k))
            .local_get(ROW)
            .f32_load(f32_at(layout.weights + 4 * k))
            .f64_promote_f32()
            .f64_add()
            .f64_store(f64_at(layout.votes + 8 * k));
    }
    f.finish()
}

/// The class weights of every [`Node::Weights`] leaf, as one table: trees in order, nodes in
/// index order, one row of `n_classes` weights per leaf. Returns each node's row (0 for the
/// nodes that are not such leaves) per tree, and the table.
pub(super) fn weight_table(trees: &[Tree]) -> (Vec<Vec<u32>>, Vec<f32>) {
    let mut table = Vec::new();
    let mut next = 0u32;
    let rows = trees
        .iter()
        .map(|tree| {
            tree.nodes
                .iter()
                .map(|node| match node {
                    Node::Weights { weights } => {
                        table.extend_from_slice(weights);
                        next += 1;
                        next - 1
                    }
                    Node::Leaf { .. } | Node::Split { .. } => 0,
                })
                .collect()
        })
        .collect();
    (rows, table)
}

/// The number of nodes under each node, itself included. The tree must be valid.
fn subtree_sizes(tree: &Tree) -> Vec<u32> {
    // Parents come before children in a depth-first order, so summing it backwards is post-order.
    let mut order = Vec::with_capacity(tree.nodes.len());
    let mut stack = vec![0usize];
    while let Some(i) = stack.pop() {
        order.push(i);
        if let Node::Split { left, right, .. } = tree.nodes[i] {
            stack.extend([left as usize, right as usize]);
        }
    }
    let mut sizes = vec![1u32; tree.nodes.len()];
    for &i in order.iter().rev() {
        if let Node::Split { left, right, .. } = tree.nodes[i] {
            sizes[i] = 1 + sizes[left as usize] + sizes[right as usize];
        }
    }
    sizes
}

/// Writes one function: a subtree, with the pieces past the budgets outlined.
struct PieceWriter<'a> {
    module: &'a mut ModuleBuilder,
    pieces: &'a mut VecDeque<Piece>,
    piece: &'a Piece,
    tree: &'a Tree,
    sizes: &'a [u32],
    /// Each node's row in the weight table (summing trees).
    rows: &'a [u32],
    /// The leaves' type.
    leaf: ValType,
    /// Whether every leaf is 0 or 1 (a vote between two classes), so that a split with a leaf
    /// child is boolean arithmetic on its condition.
    boolean: bool,
    body: FunctionBody,
    /// The local of each feature this function tests.
    loads: BTreeMap<u32, u32>,
    /// Nodes this function may still take.
    remaining: u32,
}

impl PieceWriter<'_> {
    /// Writes the subtree under `i`, `depth` blocks deep; leaves its leaf value on the stack.
    ///
    /// A split with a leaf child needs no branch: its value is `select(left, right, x < t)`, with
    /// the other child's subtree evaluated either way (it only computes, so this is exact; the
    /// work stays one path's). Between two classes it is boolean arithmetic on the condition
    /// (`x < t` itself, `(x < t) | S`, `!(x < t) & S`, ...). Smaller and faster than an `if`: the
    /// branches left are the ones between subtrees.
    fn node(&mut self, i: usize, depth: u32) {
        match &self.tree.nodes[i] {
            Node::Leaf { .. } | Node::Weights { .. } => {
                self.remaining = self.remaining.saturating_sub(1);
                self.leaf_value(i);
            }
            Node::Split { .. } if depth > 0 && (depth >= MAX_NESTING || self.sizes[i] > self.remaining) => {
                let index = self.module.declare(&[], &[self.leaf]);
                self.pieces.push_back(Piece {
                    tree: self.piece.tree,
                    node: i,
                    index,
                });
                self.body.code().call(index);
            }
            &Node::Split {
                feature,
                threshold,
                left,
                right,
            } => {
                self.remaining = self.remaining.saturating_sub(1);
                let (left, right) = (left as usize, right as usize);
                let leaf = |n: usize| !matches!(self.tree.nodes[n], Node::Split { .. });
                match (leaf(left), leaf(right)) {
                    (false, false) => {
                        self.condition(feature, threshold);
                        self.body.code().if_(BlockType::Result(self.leaf));
                        self.node(left, depth + 1);
                        self.body.code().else_();
                        self.node(right, depth + 1);
                        self.body.code().end();
                    }
                    (true, true) if self.boolean => {
                        // Leaves 1, 0: the condition; 0, 1: its negation (the leaves differ, or
                        // the value is the one leaf's).
                        match (self.class(left), self.class(right)) {
                            (1, 0) => self.condition(feature, threshold),
                            (0, 1) => {
                                self.condition(feature, threshold);
                                self.body.code().i32_eqz();
                            }
                            (c, _) => {
                                self.body.code().i32_const(c);
                            }
                        }
                        self.remaining = self.remaining.saturating_sub(2);
                    }
                    (true, false) if self.boolean => {
                        // x < t ? c : S
                        self.node(right, depth + 1);
                        self.condition(feature, threshold);
                        if self.class(left) == 1 {
                            self.body.code().i32_or();
                        } else {
                            self.body.code().i32_eqz().i32_and();
                        }
                        self.remaining = self.remaining.saturating_sub(1);
                    }
                    (false, true) if self.boolean => {
                        // x < t ? S : c
                        self.node(left, depth + 1);
                        self.condition(feature, threshold);
                        if self.class(right) == 0 {
                            self.body.code().i32_and();
                        } else {
                            self.body.code().i32_eqz().i32_or();
                        }
                        self.remaining = self.remaining.saturating_sub(1);
                    }
                    _ => {
                        self.node(left, depth + 1);
                        self.node(right, depth + 1);
                        self.condition(feature, threshold);
                        self.body.code().select();
                    }
                }
            }
        }
    }

    /// Pushes `x[feature] < threshold` (in `f32`, as the IR splits).
    fn condition(&mut self, feature: u32, threshold: f32) {
        let x = self.feature(feature);
        self.body.code().local_get(x).f32_const(threshold.into()).f32_lt();
    }

    /// Pushes the value of the leaf `i`: its class, its row in the weight table, or its value.
    fn leaf_value(&mut self, i: usize) {
        match &self.tree.nodes[i] {
            Node::Weights { .. } => {
                self.body.code().i32_const(self.rows[i] as i32);
            }
            Node::Leaf { value } => {
                match self.leaf {
                    ValType::I32 => self.body.code().i32_const(*value as i32),
                    _ => self.body.code().f64_const((*value).into()),
                };
            }
            Node::Split { .. } => unreachable!("a leaf"),
        }
    }

    /// The class of a leaf of a vote.
    fn class(&self, i: usize) -> i32 {
        match self.tree.nodes[i] {
            Node::Leaf { value } => value as i32,
            Node::Weights { .. } | Node::Split { .. } => unreachable!("a vote's leaf"),
        }
    }

    /// The local holding `feature` as `f32`.
    fn feature(&mut self, feature: u32) -> u32 {
        let body = &mut self.body;
        *self.loads.entry(feature).or_insert_with(|| body.local(ValType::F32))
    }

    /// The function: the feature loads, then the tree code.
    fn finish(self, layout: &Layout) -> Function {
        let mut prologue = Vec::new();
        let mut code = wasm_encoder::InstructionSink::new(&mut prologue);
        for (feature, local) in &self.loads {
            code.i32_const(0)
                .f32_load(f32_at(layout.features_f32 + 4 * feature))
                .local_set(*local);
        }
        self.body.finish_with_prologue(&prologue)
    }
}
