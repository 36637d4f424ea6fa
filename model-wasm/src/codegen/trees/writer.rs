//! A tree as code: nested `if`/`else` blocks between large subtrees, small subtrees and splits
//! with a leaf child without a branch (`select` or boolean arithmetic), and the subtrees past a
//! function's budgets outlined into functions of their own (*pieces*).

use std::collections::{BTreeMap, VecDeque};

use wasm_encoder::{BlockType, Function, ValType};

use super::ensemble::Ensemble;
use super::keys::order_key;
use crate::codegen::emit::{FunctionBody, i32_at};
use crate::codegen::layout::Layout;
use crate::codegen::module::ModuleBuilder;
use crate::ir::Node;

/// Most nodes one function holds (about 12 bytes of code each).
pub(in crate::codegen) const NODE_BUDGET: u32 = 4096;
/// Most `if` blocks nested in one function.
pub(in crate::codegen) const MAX_NESTING: u32 = 64;

/// A function to write: the subtree of `tree` under `node`, outlined from a larger function.
#[derive(Debug)]
pub(super) struct Piece {
    tree: usize,
    node: usize,
    index: u32,
}

/// Writes the outlined pieces, and the pieces they outline in turn, until none is left.
pub(super) fn write_pieces(
    module: &mut ModuleBuilder,
    layout: &Layout,
    ensemble: &Ensemble,
    mut pieces: VecDeque<Piece>,
) {
    while let Some(piece) = pieces.pop_front() {
        let mut writer = Writer::new(module, &mut pieces, ensemble, piece.tree, 1);
        writer.node(piece.node, 0);
        let body = writer.finish(layout, &[]);
        module.define(piece.index, body);
    }
}

/// Writes one function: whole trees or a subtree, with the pieces past the budgets outlined.
pub(super) struct Writer<'a> {
    module: &'a mut ModuleBuilder,
    pieces: &'a mut VecDeque<Piece>,
    ensemble: &'a Ensemble<'a>,
    /// The tree being written.
    pub tree: usize,
    pub body: FunctionBody,
    /// The local of each feature this function tests.
    loads: BTreeMap<u32, u32>,
    /// Nodes this function may still take.
    remaining: u32,
    /// See [`Writer::sum_locals`].
    sums: Option<(u32, Vec<u32>)>,
    /// The local holding the current row's offset into the keys buffer (a piece's parameter).
    pub keys: u32,
}

impl<'a> Writer<'a> {
    pub(super) fn new(
        module: &'a mut ModuleBuilder,
        pieces: &'a mut VecDeque<Piece>,
        ensemble: &'a Ensemble<'a>,
        tree: usize,
        n_params: u32,
    ) -> Self {
        Writer {
            module,
            pieces,
            ensemble,
            tree,
            body: FunctionBody::new(n_params),
            loads: BTreeMap::new(),
            remaining: NODE_BUDGET,
            sums: None,
            keys: 0,
        }
    }
}

impl Writer<'_> {
    /// Writes the subtree under `i`, `depth` blocks deep; leaves its leaf value on the stack.
    ///
    /// A split with a leaf child needs no branch: its value is `select(left, right, x < t)`, with
    /// the other child's subtree evaluated either way (it only computes, so this is exact; the
    /// work stays one path's). Between two classes it is boolean arithmetic on the condition
    /// (`x < t` itself, `(x < t) | S`, `(x >= t) & S`, ...). Smaller and faster than an `if`.
    /// A subtree of at most `branch_free` nodes is evaluated whole, both children of each split
    /// and a `select`. The branches left are the ones between larger subtrees.
    pub(super) fn node(&mut self, i: usize, depth: u32) {
        match &self.ensemble.trees[self.tree].nodes[i] {
            Node::Leaf { .. } | Node::Weights { .. } => {
                self.remaining = self.remaining.saturating_sub(1);
                self.leaf_value(i);
            }
            Node::Split { .. }
                if depth > 0 && (depth >= MAX_NESTING || self.ensemble.sizes[self.tree][i] > self.remaining) =>
            {
                let index = self.module.declare(&[ValType::I32], &[self.ensemble.leaf]);
                self.pieces.push_back(Piece {
                    tree: self.tree,
                    node: i,
                    index,
                });
                self.body.code().local_get(self.keys).call(index);
            }
            &Node::Split {
                feature,
                threshold,
                left,
                right,
            } => {
                self.remaining = self.remaining.saturating_sub(1);
                let (left, right) = (left as usize, right as usize);
                let nodes = &self.ensemble.trees[self.tree].nodes;
                let leaf = |n: usize| !matches!(nodes[n], Node::Split { .. });
                match (leaf(left), leaf(right)) {
                    (false, false) if self.ensemble.sizes[self.tree][i] > self.ensemble.branch_free => {
                        self.condition(feature, threshold);
                        self.body.code().if_(BlockType::Result(self.ensemble.leaf));
                        self.node(left, depth + 1);
                        self.body.code().else_();
                        self.node(right, depth + 1);
                        self.body.code().end();
                    }
                    (true, true) if self.ensemble.boolean => {
                        // Leaves 1, 0: the condition; 0, 1: its negation (the leaves differ, or
                        // the value is the one leaf's).
                        match (self.class(left), self.class(right)) {
                            (1, 0) => self.condition(feature, threshold),
                            (0, 1) => self.negated_condition(feature, threshold),
                            (c, _) => {
                                self.body.code().i32_const(c);
                            }
                        }
                        self.remaining = self.remaining.saturating_sub(2);
                    }
                    (true, false) if self.ensemble.boolean => {
                        // x < t ? c : S
                        self.node(right, depth + 1);
                        if self.class(left) == 1 {
                            self.condition(feature, threshold);
                            self.body.code().i32_or();
                        } else {
                            self.negated_condition(feature, threshold);
                            self.body.code().i32_and();
                        }
                        self.remaining = self.remaining.saturating_sub(1);
                    }
                    (false, true) if self.ensemble.boolean => {
                        // x < t ? S : c
                        self.node(left, depth + 1);
                        if self.class(right) == 0 {
                            self.condition(feature, threshold);
                            self.body.code().i32_and();
                        } else {
                            self.negated_condition(feature, threshold);
                            self.body.code().i32_or();
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

    /// Pushes `x[feature] < threshold` (in `f32`, as the IR splits), compared as keys.
    fn condition(&mut self, feature: u32, threshold: f32) {
        let x = self.feature(feature);
        self.body.code().local_get(x).i32_const(order_key(threshold)).i32_lt_s();
    }

    /// Pushes the negation of [`Writer::condition`]: neither value is NaN, so it is `>=`.
    fn negated_condition(&mut self, feature: u32, threshold: f32) {
        let x = self.feature(feature);
        self.body.code().local_get(x).i32_const(order_key(threshold)).i32_ge_s();
    }

    /// Pushes the value of the leaf `i`: its class, its row in the weight table, or its value.
    fn leaf_value(&mut self, i: usize) {
        match &self.ensemble.trees[self.tree].nodes[i] {
            Node::Weights { .. } => {
                self.body.code().i32_const(self.ensemble.rows[self.tree][i] as i32);
            }
            Node::Leaf { value } => {
                match (self.ensemble.leaf, self.ensemble.packed) {
                    (ValType::I64, Some(width)) => self.body.code().i64_const(*value as i64 * i64::from(width)),
                    (ValType::I32, _) => self.body.code().i32_const(*value as i32),
                    _ => self.body.code().f64_const((*value).into()),
                };
            }
            Node::Split { .. } => unreachable!("a leaf"),
        }
    }

    /// The class of a leaf of a vote.
    fn class(&self, i: usize) -> i32 {
        match self.ensemble.trees[self.tree].nodes[i] {
            Node::Leaf { value } => value as i32,
            Node::Weights { .. } | Node::Split { .. } => unreachable!("a vote's leaf"),
        }
    }

    /// The locals of a group that sums class weights: the current tree's row in the weight
    /// table, and one sum per class.
    pub(super) fn sum_locals(&mut self, n_classes: u32) -> (u32, Vec<u32>) {
        let body = &mut self.body;
        self.sums
            .get_or_insert_with(|| {
                let row = body.local(ValType::I32);
                (row, (0..n_classes).map(|_| body.local(ValType::F64)).collect())
            })
            .clone()
    }

    /// The local holding the key of `feature`.
    fn feature(&mut self, feature: u32) -> u32 {
        let body = &mut self.body;
        *self.loads.entry(feature).or_insert_with(|| body.local(ValType::I32))
    }

    /// The function: `header` (raw code, before the loads: a group's row loop), the loads of
    /// the keys at the offset in the `keys` local, then the tree code.
    pub(super) fn finish(self, layout: &Layout, header: &[u8]) -> Function {
        let mut prologue = header.to_vec();
        let mut code = wasm_encoder::InstructionSink::new(&mut prologue);
        for (feature, local) in &self.loads {
            code.local_get(self.keys)
                .i32_load(i32_at(layout.feature_keys + 4 * feature))
                .local_set(*local);
        }
        self.body.finish_with_prologue(&prologue)
    }
}
