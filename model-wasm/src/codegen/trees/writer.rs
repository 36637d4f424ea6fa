//! A tree as code: nested `if`/`else` blocks between large subtrees, small subtrees and splits
//! with a leaf child without a branch (`select` or boolean arithmetic), and the subtrees past a
//! function's budgets outlined into functions of their own (*pieces*).

use std::collections::{BTreeMap, VecDeque};

use wasm_encoder::{BlockType, Function, ValType};

use super::ensemble::Ensemble;
use super::keys::{order_key, order_key64};
use crate::codegen::emit::{FunctionBody, i32_at, i64_at};
use crate::codegen::layout::{KeyKind, Layout, set_words};
use crate::codegen::module::ModuleBuilder;
use crate::ir::{Missing, Node};

/// Most nodes one function holds (about 12 bytes of code each). Groups of trees run tree-major
/// over a batch, so a smaller group keeps its code and the rows' keys closer: in V8, 2,048
/// against 4,096 was 25-40% faster per row at 10,000 rows on 1,000-tree GBDT models and 5-8%
/// on forests; at batch 1 it made no difference.
pub(in crate::codegen) const NODE_BUDGET: u32 = 2048;
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
        let mut writer = Writer::new(module, &mut pieces, ensemble, layout, piece.tree, 1);
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
    layout: &'a Layout,
    /// The tree being written.
    pub tree: usize,
    pub body: FunctionBody,
    /// The local of each key slot this function reads (see [`Layout::key_slots`]).
    loads: BTreeMap<u32, u32>,
    /// Scratch locals for categorical splits.
    scratch: Option<(u32, u32)>,
    /// Nodes this function may still take.
    remaining: u32,
    /// See [`Writer::sum_locals`].
    sums: Option<(u32, Vec<u32>)>,
    /// See [`Writer::margin_locals`].
    margins: Option<BTreeMap<u32, u32>>,
    /// The local holding the current row's offset into the keys buffer (a piece's parameter).
    pub keys: u32,
}

impl<'a> Writer<'a> {
    pub(super) fn new(
        module: &'a mut ModuleBuilder,
        pieces: &'a mut VecDeque<Piece>,
        ensemble: &'a Ensemble<'a>,
        layout: &'a Layout,
        tree: usize,
        n_params: u32,
    ) -> Self {
        Writer {
            module,
            pieces,
            ensemble,
            layout,
            scratch: None,
            tree,
            body: FunctionBody::new(n_params),
            loads: BTreeMap::new(),
            remaining: NODE_BUDGET,
            sums: None,
            margins: None,
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
            Node::Split { .. } | Node::SplitLe { .. } | Node::SplitIn { .. }
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
            node => {
                let (left, right) = node.children().expect("a split");
                self.remaining = self.remaining.saturating_sub(1);
                let (left, right) = (left as usize, right as usize);
                let nodes = &self.ensemble.trees[self.tree].nodes;
                let leaf = |n: usize| nodes[n].children().is_none();
                match (leaf(left), leaf(right)) {
                    (false, false) if self.ensemble.sizes[self.tree][i] > self.ensemble.branch_free => {
                        self.condition(i);
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
                            (1, 0) => self.condition(i),
                            (0, 1) => self.negated_condition(i),
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
                            self.condition(i);
                            self.body.code().i32_or();
                        } else {
                            self.negated_condition(i);
                            self.body.code().i32_and();
                        }
                        self.remaining = self.remaining.saturating_sub(1);
                    }
                    (false, true) if self.ensemble.boolean => {
                        // x < t ? S : c
                        self.node(left, depth + 1);
                        if self.class(right) == 0 {
                            self.condition(i);
                            self.body.code().i32_and();
                        } else {
                            self.negated_condition(i);
                            self.body.code().i32_or();
                        }
                        self.remaining = self.remaining.saturating_sub(1);
                    }
                    _ => {
                        self.node(left, depth + 1);
                        self.node(right, depth + 1);
                        self.condition(i);
                        self.body.code().select();
                    }
                }
            }
        }
    }

    /// Pushes whether split `i` sends the row left (an `i32`, 0 or 1), from the keys: `key < t`
    /// for an `f32` split (`x < t` in `f32`), `key <= t` for an `f64` one, with the missing
    /// values already at their side (see [`KeyKind`]); a category set's membership.
    fn condition(&mut self, i: usize) {
        let node = &self.ensemble.trees[self.tree].nodes[i];
        let (feature, kind) = KeyKind::of(node).expect("a split");
        let key = self.key(feature, kind);
        match node {
            Node::Split { threshold, .. } => {
                self.body
                    .code()
                    .local_get(key)
                    .i32_const(order_key(*threshold))
                    .i32_lt_s();
            }
            Node::SplitLe { threshold, .. } => {
                self.body
                    .code()
                    .local_get(key)
                    .i64_const(order_key64(*threshold))
                    .i64_le_s();
            }
            Node::SplitIn {
                categories, missing, ..
            } => {
                let words = set_words(categories);
                let bits = 32 * words as i32;
                if words <= 1 {
                    // (set >> c) & (c < 32, unsigned): negative indices are in no set.
                    let set = categories.iter().fold(0u32, |s, c| s | 1 << c);
                    self.body
                        .code()
                        .i32_const(set as i32)
                        .local_get(key)
                        .i32_shr_u()
                        .local_get(key)
                        .i32_const(bits.max(32))
                        .i32_lt_u()
                        .i32_and();
                } else {
                    // (word[c / 32] >> c) & in_range, with c clamped to 0 for the load.
                    let (index, in_range) = self.scratch();
                    let at = self.layout.category_sets[self.tree][i];
                    self.body
                        .code()
                        .local_get(key)
                        .i32_const(bits)
                        .i32_lt_u()
                        .local_set(in_range)
                        .local_get(key)
                        .i32_const(0)
                        .local_get(in_range)
                        .select()
                        .local_tee(index)
                        .i32_const(5)
                        .i32_shr_u()
                        .i32_const(2)
                        .i32_shl()
                        .i32_load(i32_at(at))
                        .local_get(index)
                        .i32_shr_u()
                        .local_get(in_range)
                        .i32_and();
                }
                if *missing == Missing::Left {
                    self.body.code().local_get(key).i32_const(-2).i32_eq().i32_or();
                }
            }
            Node::Leaf { .. } | Node::Weights { .. } => unreachable!("a split"),
        }
    }

    /// Pushes the negation of [`Writer::condition`].
    fn negated_condition(&mut self, i: usize) {
        if let Node::Split { threshold, .. } = self.ensemble.trees[self.tree].nodes[i] {
            // Neither side is NaN, so it is `>=`.
            let (feature, kind) = KeyKind::of(&self.ensemble.trees[self.tree].nodes[i]).expect("a split");
            let key = self.key(feature, kind);
            self.body
                .code()
                .local_get(key)
                .i32_const(order_key(threshold))
                .i32_ge_s();
        } else {
            self.condition(i);
            self.body.code().i32_eqz();
        }
    }

    /// Two `i32` scratch locals.
    fn scratch(&mut self) -> (u32, u32) {
        let body = &mut self.body;
        *self
            .scratch
            .get_or_insert_with(|| (body.local(ValType::I32), body.local(ValType::I32)))
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
                    // A value: its `f64` bits (see `Accumulator::leaf`).
                    _ => self.body.code().i64_const(value.to_bits() as i64),
                };
            }
            _ => unreachable!("a leaf"),
        }
    }

    /// The class of a leaf of a vote.
    fn class(&self, i: usize) -> i32 {
        match self.ensemble.trees[self.tree].nodes[i] {
            Node::Leaf { value } => value as i32,
            _ => unreachable!("a vote's leaf"),
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

    /// The locals of a group of boosted trees: one margin per output its trees add to.
    pub(super) fn margin_locals(&mut self, outputs: impl Iterator<Item = u32>) -> BTreeMap<u32, u32> {
        let body = &mut self.body;
        self.margins
            .get_or_insert_with(|| {
                outputs
                    .map(|k| (k, 0))
                    .collect::<BTreeMap<_, _>>()
                    .into_keys()
                    .map(|k| (k, body.local(ValType::F64)))
                    .collect()
            })
            .clone()
    }

    /// The local holding the key of `feature` read as `kind`.
    fn key(&mut self, feature: u32, kind: KeyKind) -> u32 {
        let slot = self.layout.key_slot(feature, kind);
        let ty = self.slot_type(slot);
        let body = &mut self.body;
        *self.loads.entry(slot).or_insert_with(|| body.local(ty))
    }

    /// The type of a key slot's value: `i64` for the `f64` keys of an ensemble of `f64` splits,
    /// else `i32`.
    fn slot_type(&self, slot: u32) -> ValType {
        match self.layout.key_slots[slot as usize].1 {
            KeyKind::Category { .. } => ValType::I32,
            _ if self.layout.key_bytes == 8 => ValType::I64,
            _ => ValType::I32,
        }
    }

    /// The function: `header` (raw code, before the loads: a group's row loop), the loads of
    /// the keys at the offset in the `keys` local, then the tree code.
    pub(super) fn finish(self, layout: &Layout, header: &[u8]) -> Function {
        let mut prologue = header.to_vec();
        let mut code = wasm_encoder::InstructionSink::new(&mut prologue);
        for (slot, local) in &self.loads {
            code.local_get(self.keys);
            match self.slot_type(*slot) {
                ValType::I64 => code.i64_load(i64_at(layout.key_address(*slot))),
                _ => code.i32_load(i32_at(layout.key_address(*slot))),
            };
            code.local_set(*local);
        }
        self.body.finish_with_prologue(&prologue)
    }
}
