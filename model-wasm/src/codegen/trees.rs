//! Tree ensembles as code, not data: every split is an `if` on `x[feature] as f32 < threshold`
//! (the IR's split, to the bit), every leaf a constant.
//!
//! Comparisons are on integers: each feature, as `f32`, is mapped once per row to its
//! [`order_key`], an `i32` whose signed order is the float order, and each threshold to its key
//! at compile time. A split is then `i32.lt_s(key, constant)`, which machines compare with an
//! immediate operand, where a float constant must first be moved into a register.
//!
//! Functions:
//! - `predict` runs in three passes over the batch. First, per row, it scales each feature the
//!   trees use, demotes it to `f32` and stores its key in the row's slot of the keys buffer, and
//!   clears the row's accumulator, which lives in the row's output slots until the outputs are
//!   written. Then it calls each *group* once, with `n_rows`. Last, per row, it turns the
//!   accumulator into the outputs. The sums keep the evaluator's order.
//! - A group holds consecutive trees, as many as fit in [`NODE_BUDGET`] nodes, and runs them on
//!   every row in turn (tree-major: its code stays hot for the whole batch). Per row it loads the
//!   keys of the features its trees test into locals, then evaluates each tree in order as
//!   nested `if`/`else` blocks that leave the leaf on the stack (vote: the leaf's class; sum: the
//!   leaf's row in the weight table, a data segment of `n_classes` f32 per leaf; average: the
//!   leaf's value), and adds it to the row's accumulator: class 1's votes (two classes), every
//!   class's votes packed in one `i64` (when the counts fit: a leaf is then its class's bit
//!   offset, and a vote adds `1 << offset`), or the `f64` sum in tree order (average), kept on
//!   the stack through the group's trees. Class weights are summed per class in locals within a
//!   group (up to [`MAX_SUMS_IN_LOCALS`] classes) or by each tree through `add_weights(row, out)`;
//!   votes that do not fit an `i64` are counted per class through `add_vote(class, out)`.
//! - A function holds at most [`NODE_BUDGET`] nodes and nests at most [`MAX_NESTING`] blocks; a
//!   subtree past either limit is *outlined*: written as a function of its own
//!   (`(keys offset) -> leaf`) and called where it was. So no body grows past what engines
//!   compile quickly, however large or deep the tree, and the generator's recursion is bounded
//!   by [`MAX_NESTING`].

use std::collections::{BTreeMap, VecDeque};

use wasm_encoder::{BlockType, Function, ValType};

use super::emit::{DivideByCount, FunctionBody, end_loop, f32_at, f64_at, i32_at, i64_at, start_loop};
use super::layout::Layout;
use super::module::ModuleBuilder;
use super::predict::{self, Phase};
use crate::ir::{Aggregate, ModelIr, Node, Tree};

/// Most nodes one function holds (about 12 bytes of code each).
pub(super) const NODE_BUDGET: u32 = 4096;
/// Most `if` blocks nested in one function.
pub(super) const MAX_NESTING: u32 = 64;
/// Subtrees of at most `limit` nodes are evaluated whole, without a branch: each split a
/// `select` between its children's values. Cheaper than the branches of its path when rows of
/// varying data mispredict them, and the more so the larger the ensemble: the more branches,
/// the fewer the processor's predictor can learn. Per ensemble size, `(most nodes, limit)`.
/// Measured per row at batch 1000 on the wine forests (binary votes):
/// - 20 trees of depth 6 (1,174 nodes): fastest with 7;
/// - 100 trees of depth 8 (12,086 nodes): 933 ns with 7, 402 ns with 15, 554 ns with 31;
/// - 100 trees of depth 12 (23,694 nodes, the bundled model): 1,013 ns with 15, 454 ns with
///   31, 582 ns with 63.
pub(super) const BRANCH_FREE_NODES: [(usize, u32); 3] = [(2048, 7), (16384, 15), (usize::MAX, 31)];

/// The branch-free subtree limit for an ensemble of `nodes` nodes.
pub(super) fn branch_free_limit(nodes: usize) -> u32 {
    BRANCH_FREE_NODES
        .iter()
        .find(|(most, _)| nodes <= *most)
        .map_or(BRANCH_FREE_NODES[BRANCH_FREE_NODES.len() - 1].1, |(_, limit)| *limit)
}

/// Most classes whose weight sums (summing trees) a group keeps in locals; with more, each tree
/// adds to them in memory.
pub(super) const MAX_SUMS_IN_LOCALS: u32 = 16;

/// A function to write: the subtree of `tree` under `node`, outlined from a larger function.
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
    let binary = aggregate == Aggregate::Vote && ir.n_outputs() == 2;
    let packed = (aggregate == Aggregate::Vote && !binary)
        .then(|| packed_votes(trees.len(), ir.n_outputs()))
        .flatten();
    let leaf = match aggregate {
        Aggregate::Vote if packed.is_some() => ValType::I64,
        Aggregate::Vote | Aggregate::Sum => ValType::I32,
        Aggregate::Average => ValType::F64,
    };
    let ensemble = Ensemble {
        trees,
        sizes: trees.iter().map(subtree_sizes).collect(),
        rows: weight_table(trees).0,
        leaf,
        boolean: binary,
        packed,
        branch_free: branch_free_limit(trees.iter().map(|t| t.nodes.len()).sum()),
    };
    let n_classes = ir.n_outputs() as u32;
    let votes_in_memory = aggregate == Aggregate::Vote && !binary && packed.is_none();
    let add_vote = votes_in_memory.then(|| module.add(&[ValType::I32, ValType::I32], &[], add_vote(layout)));
    // Class sums in locals within each group's row (in the output row between groups), when
    // there are few classes; otherwise each tree adds to them in memory through `add_weights`.
    let sums_in_locals = aggregate == Aggregate::Sum && n_classes <= MAX_SUMS_IN_LOCALS;
    let add_weights = (aggregate == Aggregate::Sum && !sums_in_locals)
        .then(|| module.add(&[ValType::I32, ValType::I32], &[], add_weights(layout, n_classes)));
    // The accumulator kept in slot 0 of each row's output until the outputs are written.
    let slot0 = match aggregate {
        Aggregate::Vote if binary => Some(ValType::I32),
        Aggregate::Vote if packed.is_some() => Some(ValType::I64),
        Aggregate::Average => Some(ValType::F64),
        Aggregate::Vote | Aggregate::Sum => None,
    };

    // Consecutive trees share one function up to the node budget. A group takes `n_rows` and
    // runs its trees on every row in turn: its code stays hot in the processor's caches and
    // branch predictor for the whole batch, where a row at a time would run through all the
    // trees' code (measured on the bundled wine forest, 7 groups: about 25% faster per row at
    // batch 1000). Per row it loads the keys of the features its trees test, the row's
    // accumulator from the output row, adds its trees, and stores the accumulator back.
    let mut pieces = VecDeque::new();
    let mut groups = Vec::new();
    for group in tree_groups(&ensemble.sizes, NODE_BUDGET) {
        let index = module.declare(&[ValType::I32], &[]);
        let mut writer = Writer::new(module, &mut pieces, &ensemble, group.start, 1);
        let rows = GroupRows::new(&mut writer.body, layout);
        writer.keys = rows.keys;
        let out = rows.out;
        let load_slot0 = |writer: &mut Writer, ty: ValType| {
            let mut code = writer.body.code();
            code.local_get(out);
            match ty {
                ValType::I32 => code.local_get(out).i32_load(i32_at(layout.output)),
                ValType::I64 => code.local_get(out).i64_load(i64_at(layout.output)),
                _ => code.local_get(out).f64_load(f64_at(layout.output)),
            };
        };
        for t in group.clone() {
            writer.tree = t;
            let first_of_group = t == group.start;
            match aggregate {
                Aggregate::Vote if binary => {
                    if first_of_group {
                        load_slot0(&mut writer, ValType::I32);
                    }
                    writer.node(0, 0);
                    writer.body.code().i32_add();
                }
                Aggregate::Vote if packed.is_some() => {
                    // The leaf is its class's shift: one more vote is `1 << shift`.
                    if first_of_group {
                        load_slot0(&mut writer, ValType::I64);
                    }
                    writer.body.code().i64_const(1);
                    writer.node(0, 0);
                    writer.body.code().i64_shl().i64_add();
                }
                Aggregate::Sum if sums_in_locals => {
                    // The leaf is its row in the weight table: each class's sum adds its
                    // weight, in tree order.
                    let (row, sums) = writer.sum_locals(n_classes);
                    if first_of_group {
                        for (k, sum) in sums.iter().enumerate() {
                            writer
                                .body
                                .code()
                                .local_get(out)
                                .f64_load(f64_at(layout.output + 8 * (1 + k as u32)))
                                .local_set(*sum);
                        }
                    }
                    writer.node(0, 0);
                    writer
                        .body
                        .code()
                        .i32_const(4 * n_classes as i32)
                        .i32_mul()
                        .local_set(row);
                    for (k, sum) in sums.iter().enumerate() {
                        writer
                            .body
                            .code()
                            .local_get(*sum)
                            .local_get(row)
                            .f32_load(f32_at(layout.weights + 4 * k as u32))
                            .f64_promote_f32()
                            .f64_add()
                            .local_set(*sum);
                    }
                    if t + 1 == group.end {
                        for (k, sum) in sums.iter().enumerate() {
                            writer
                                .body
                                .code()
                                .local_get(out)
                                .local_get(*sum)
                                .f64_store(f64_at(layout.output + 8 * (1 + k as u32)));
                        }
                    }
                }
                Aggregate::Average if t == 0 => {
                    // The sum starts with tree 0's value.
                    writer.body.code().local_get(out);
                    writer.node(0, 0);
                }
                Aggregate::Average => {
                    if first_of_group {
                        load_slot0(&mut writer, ValType::F64);
                    }
                    writer.node(0, 0);
                    writer.body.code().f64_add();
                }
                Aggregate::Vote | Aggregate::Sum => {
                    writer.node(0, 0);
                    let add = add_vote.or(add_weights).expect("added for these aggregates");
                    writer.body.code().local_get(out).call(add);
                }
            }
        }
        let mut code = writer.body.code();
        match slot0 {
            Some(ValType::I32) => code.i32_store(i32_at(layout.output)),
            Some(ValType::I64) => code.i64_store(i64_at(layout.output)),
            Some(_) => code.f64_store(f64_at(layout.output)),
            None => &mut code,
        };
        rows.next(&mut writer.body, layout);
        let body = writer.finish(layout, &rows.header);
        module.define(index, body);
        groups.push(index);
    }
    while let Some(piece) = pieces.pop_front() {
        let mut writer = Writer::new(module, &mut pieces, &ensemble, piece.tree, 1);
        writer.node(piece.node, 0);
        let body = writer.finish(layout, &[]);
        module.define(piece.index, body);
    }

    let mut used = vec![false; ir.n_features()];
    for node in trees.iter().flat_map(|t| &t.nodes) {
        if let Node::Split { feature, .. } = node {
            used[*feature as usize] = true;
        }
    }
    // First every row's keys and a fresh accumulator, then the groups over all the rows, then
    // every row's outputs from its accumulator.
    let prepare = Phase::Rows(Box::new(|f: &mut FunctionBody, row: &predict::Row| {
        store_features(f, row, &used);
        match slot0 {
            Some(ValType::I32) => {
                row.push_output_address(f);
                f.code().i32_const(0).i32_store(i32_at(layout.output));
            }
            Some(ValType::I64) => {
                row.push_output_address(f);
                f.code().i64_const(0).i64_store(i64_at(layout.output));
            }
            // The group of tree 0 writes the first value.
            Some(_) => {}
            None => {
                for k in 0..n_classes {
                    row.push_output_address(f);
                    f.code().f64_const(0.0.into()).f64_store(row.slot(1 + k));
                }
            }
        }
    }));
    let run_groups = Phase::Once(Box::new(|f: &mut FunctionBody, n_rows: u32| {
        for group in &groups {
            f.code().local_get(n_rows).call(*group);
        }
    }));
    let outputs = Phase::Rows(Box::new(|f: &mut FunctionBody, row: &predict::Row| match aggregate {
        Aggregate::Vote if binary => {
            // Two classes: each tree gives 0 or 1, so class 1's votes are their sum.
            let ones = f.local(ValType::I32);
            let (p0, p1) = (f.local(ValType::F64), f.local(ValType::F64));
            row.push_output_address(f);
            f.code()
                .i32_load(i32_at(layout.output))
                .local_set(ones)
                .i32_const(trees.len() as i32)
                .local_get(ones)
                .i32_sub()
                .f64_convert_i32_u()
                .f64_div_by_count(trees.len())
                .local_set(p0)
                .local_get(ones)
                .f64_convert_i32_u()
                .f64_div_by_count(trees.len())
                .local_set(p1);
            row.store_classes(f, &[p0, p1]);
        }
        Aggregate::Vote if let Some(width) = packed => {
            // Every class's votes in one i64, `width` bits each: class k's are bits
            // `k * width..(k + 1) * width`.
            let votes = f.local(ValType::I64);
            row.push_output_address(f);
            f.code().i64_load(i64_at(layout.output)).local_set(votes);
            let probabilities: Vec<u32> = (0..n_classes)
                .map(|k| {
                    let p = f.local(ValType::F64);
                    f.code()
                        .local_get(votes)
                        .i64_const(i64::from(k * width))
                        .i64_shr_u()
                        .i64_const((1i64 << width) - 1)
                        .i64_and()
                        .f64_convert_i64_u()
                        .f64_div_by_count(trees.len())
                        .local_set(p);
                    p
                })
                .collect();
            row.store_classes(f, &probabilities);
        }
        Aggregate::Vote | Aggregate::Sum => {
            // Per-class counts or sums of weights, as f64, in the output row: a class's
            // probability is its share of the votes, or its sum.
            let probabilities: Vec<u32> = (0..n_classes)
                .map(|k| {
                    let p = f.local(ValType::F64);
                    row.push_output_address(f);
                    let mut code = f.code();
                    code.f64_load(row.slot(1 + k));
                    if aggregate == Aggregate::Vote {
                        code.f64_div_by_count(trees.len());
                    }
                    code.local_set(p);
                    p
                })
                .collect();
            row.store_classes(f, &probabilities);
        }
        Aggregate::Average => {
            row.push_output_address(f);
            row.push_output_address(f);
            f.code()
                .f64_load(row.slot(0))
                .f64_div_by_count(trees.len())
                .f64_store(row.slot(0));
        }
    }));
    let body = predict::function_in_phases(ir, layout, vec![prepare, run_groups, outputs]);
    module.add(&[ValType::I32], &[ValType::I32], body)
}

/// The row loop of a group function: locals for the current row's keys offset and output
/// offset, and the header that starts the loop (written before the keys are loaded).
struct GroupRows {
    keys: u32,
    out: u32,
    header: Vec<u8>,
}

impl GroupRows {
    /// The locals and the loop header, for a function whose parameter 0 is `n_rows`.
    fn new(f: &mut FunctionBody, layout: &Layout) -> Self {
        let (keys, out, end) = (f.local(ValType::I32), f.local(ValType::I32), f.local(ValType::I32));
        let mut header = Vec::new();
        let mut code = wasm_encoder::InstructionSink::new(&mut header);
        code.local_get(0)
            .i32_const(layout.keys_row_bytes() as i32)
            .i32_mul()
            .local_set(end);
        start_loop(&mut code, keys, end);
        GroupRows { keys, out, header }
    }

    /// Ends the loop: next row, and back.
    fn next(&self, f: &mut FunctionBody, layout: &Layout) {
        end_loop(
            &mut f.code(),
            &[
                (self.keys, layout.keys_row_bytes()),
                (self.out, layout.output_row_bytes()),
            ],
        );
    }
}

/// The bits per class when every class's vote count fits one `i64` (a count is at most the
/// number of trees), else `None`.
fn packed_votes(n_trees: usize, n_classes: usize) -> Option<u32> {
    let width = usize::BITS - n_trees.leading_zeros();
    (n_classes as u64 * u64::from(width) <= 64).then_some(width)
}

/// Consecutive runs of trees whose nodes add up to at most `budget` (a larger tree alone).
fn tree_groups(sizes: &[Vec<u32>], budget: u32) -> Vec<std::ops::Range<usize>> {
    let mut groups = Vec::new();
    let (mut start, mut nodes) = (0, 0u32);
    for (t, size) in sizes.iter().map(|s| s[0]).enumerate() {
        if t > start && nodes + size > budget {
            groups.push(start..t);
            (start, nodes) = (t, 0);
        }
        nodes += size;
    }
    if start < sizes.len() {
        groups.push(start..sizes.len());
    }
    groups
}

/// Scales each used feature of the row, demotes it to `f32` and stores its [`order_key`] in
/// the keys buffer.
fn store_features(f: &mut FunctionBody, row: &predict::Row, used: &[bool]) {
    let (bits, sign) = (f.local(ValType::I32), f.local(ValType::I32));
    for (i, _) in used.iter().enumerate().filter(|(_, u)| **u) {
        row.push_row_offset(f, row.layout.keys_row_bytes());
        row.push_feature(f, i);
        // (magnitude ^ sign) - sign: the magnitude, negated when the sign bit is set.
        f.code()
            .f32_demote_f64()
            .i32_reinterpret_f32()
            .local_tee(bits)
            .i32_const(i32::MAX)
            .i32_and()
            .local_get(bits)
            .i32_const(31)
            .i32_shr_s()
            .local_tee(sign)
            .i32_xor()
            .local_get(sign)
            .i32_sub()
            .i32_store(i32_at(row.layout.feature_keys + 4 * i as u32));
    }
}

/// An `i32` whose signed order is the order of `f32` values that are not NaN: the bits of a
/// value whose sign bit is clear, the negated magnitude bits of one whose sign bit is set. Both
/// zeros map to 0, as they compare equal; infinities map past every finite value.
/// So for such `x` and `t`, `x < t` exactly when `order_key(x) < order_key(t)`. The generated
/// code computes the same map (see `store_features`). Row values are never NaN (the finiteness
/// check runs first; demoting a finite `f64` gives at worst an infinity) and neither are
/// thresholds (validated).
pub(super) fn order_key(value: f32) -> i32 {
    let bits = value.to_bits() as i32;
    let magnitude = bits & i32::MAX;
    if bits < 0 { -magnitude } else { magnitude }
}

/// `add_vote(class: i32, out: i32)`: one more vote for `class` in the counts (`f64`, exact for
/// integers) in the output row at offset `out`.
fn add_vote(layout: &Layout) -> Function {
    const CLASS: u32 = 0;
    const OUT: u32 = 1;
    let mut f = FunctionBody::new(2);
    f.code()
        .local_get(CLASS)
        .i32_const(3)
        .i32_shl()
        .local_get(OUT)
        .i32_add()
        .local_tee(CLASS)
        .local_get(CLASS)
        .f64_load(f64_at(layout.output + 8))
        .f64_const(1.0.into())
        .f64_add()
        .f64_store(f64_at(layout.output + 8));
    f.finish()
}

/// `add_weights(row: i32, out: i32)`: adds the weight table's row (one `f32` per class) to the
/// class sums in the output row at offset `out`, in class order, in `f64`.
fn add_weights(layout: &Layout, n_classes: u32) -> Function {
    const ROW: u32 = 0;
    const OUT: u32 = 1;
    let mut f = FunctionBody::new(2);
    f.code()
        .local_get(ROW)
        .i32_const(4 * n_classes as i32)
        .i32_mul()
        .local_set(ROW);
    for k in 0..n_classes {
        f.code()
            .local_get(OUT)
            .local_get(OUT)
            .f64_load(f64_at(layout.output + 8 * (1 + k)))
            .local_get(ROW)
            .f32_load(f32_at(layout.weights + 4 * k))
            .f64_promote_f32()
            .f64_add()
            .f64_store(f64_at(layout.output + 8 * (1 + k)));
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

/// What every function of an ensemble is written from.
struct Ensemble<'a> {
    trees: &'a [Tree],
    /// Per tree, the nodes under each node.
    sizes: Vec<Vec<u32>>,
    /// Per tree, each node's row in the weight table (summing trees).
    rows: Vec<Vec<u32>>,
    /// The leaves' type.
    leaf: ValType,
    /// Whether every leaf is 0 or 1 (a vote between two classes), so that a split with a leaf
    /// child is boolean arithmetic on its condition.
    boolean: bool,
    /// Votes packed into one `i64`, this many bits per class: a leaf is its class's shift
    /// (`class * width`, as `i64`).
    packed: Option<u32>,
    /// Subtrees of at most this many nodes are written without a branch.
    branch_free: u32,
}

/// Writes one function: whole trees or a subtree, with the pieces past the budgets outlined.
struct Writer<'a> {
    module: &'a mut ModuleBuilder,
    pieces: &'a mut VecDeque<Piece>,
    ensemble: &'a Ensemble<'a>,
    /// The tree being written.
    tree: usize,
    body: FunctionBody,
    /// The local of each feature this function tests.
    loads: BTreeMap<u32, u32>,
    /// Nodes this function may still take.
    remaining: u32,
    /// See [`Writer::sum_locals`].
    sums: Option<(u32, Vec<u32>)>,
    /// The local holding the current row's offset into the keys buffer (a piece's parameter).
    keys: u32,
}

impl<'a> Writer<'a> {
    fn new(
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
    fn node(&mut self, i: usize, depth: u32) {
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
    fn sum_locals(&mut self, n_classes: u32) -> (u32, Vec<u32>) {
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

    /// The function: the feature loads, then the tree code.
    /// The function: `header` (raw code, before the loads: a group's row loop), the loads of
    /// the keys at the offset in the `keys` local, then the tree code.
    fn finish(self, layout: &Layout, header: &[u8]) -> Function {
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
