//! The group functions: consecutive trees share one function up to the node budget. A group
//! takes `n_rows` and runs its trees on every row in turn: its code stays hot in the processor's
//! caches and branch predictor for the whole batch, where a row at a time would run through all
//! the trees' code (measured on the bundled wine forest, 7 groups: about 25% faster per row at
//! batch 1000). Per row it loads the keys of the features its trees test, the row's accumulator
//! from the output row, adds its trees, and stores the accumulator back.

use std::collections::VecDeque;
use std::ops::Range;

use wasm_encoder::{Function, ValType};

use super::ensemble::{Accumulator, Ensemble};
use super::writer::{NODE_BUDGET, Piece, Writer};
use crate::codegen::emit::{FunctionBody, end_loop, f32_at, f64_at, i32_at, i64_at, start_loop};
use crate::codegen::layout::Layout;
use crate::codegen::module::ModuleBuilder;

/// Adds `add_vote` or `add_weights` when the accumulator lives in memory; its index.
pub(super) fn add_helper(module: &mut ModuleBuilder, layout: &Layout, ensemble: &Ensemble) -> Option<u32> {
    let params = [ValType::I32, ValType::I32];
    match ensemble.accumulator {
        Accumulator::VotesInMemory => Some(module.add(&params, &[], add_vote(layout))),
        Accumulator::SumsInMemory => Some(module.add(&params, &[], add_weights(layout, ensemble.n_classes))),
        Accumulator::Binary
        | Accumulator::Packed { .. }
        | Accumulator::SumsInLocals
        | Accumulator::Average
        | Accumulator::Boosted => None,
    }
}

/// Writes every group's function (`(n_rows)`), outlining into `pieces`; their indices in tree
/// order. `add` is the index of [`add_helper`]'s function, if any.
pub(super) fn write_groups(
    module: &mut ModuleBuilder,
    layout: &Layout,
    ensemble: &Ensemble,
    pieces: &mut VecDeque<Piece>,
    add: Option<u32>,
) -> Vec<u32> {
    tree_groups(&ensemble.sizes, NODE_BUDGET)
        .into_iter()
        .map(|group| write_group(module, layout, ensemble, pieces, add, group))
        .collect()
}

/// One group's function: per row, its trees' leaves added to the row's accumulator.
fn write_group(
    module: &mut ModuleBuilder,
    layout: &Layout,
    ensemble: &Ensemble,
    pieces: &mut VecDeque<Piece>,
    add: Option<u32>,
    group: Range<usize>,
) -> u32 {
    let index = module.declare(&[ValType::I32], &[]);
    let mut writer = Writer::new(module, pieces, ensemble, layout, group.start, 1);
    let rows = GroupRows::new(&mut writer.body, layout);
    writer.keys = rows.keys;
    for t in group.clone() {
        writer.tree = t;
        add_tree(&mut writer, layout, ensemble, add, rows.out, &group);
    }
    let mut code = writer.body.code();
    match ensemble.accumulator.slot0() {
        Some(ValType::I32) => code.i32_store(i32_at(layout.output)),
        Some(ValType::I64) => code.i64_store(i64_at(layout.output)),
        Some(_) => code.f64_store(f64_at(layout.output)),
        None => &mut code,
    };
    rows.next(&mut writer.body, layout);
    let body = writer.finish(layout, &rows.header);
    module.define(index, body);
    index
}

/// Writes tree `writer.tree` of `group` and adds its leaf to the accumulator of the row whose
/// output offset is in the local `out`.
fn add_tree(
    writer: &mut Writer,
    layout: &Layout,
    ensemble: &Ensemble,
    add: Option<u32>,
    out: u32,
    group: &Range<usize>,
) {
    let t = writer.tree;
    let first_of_group = t == group.start;
    match ensemble.accumulator {
        Accumulator::Binary => {
            if first_of_group {
                load_slot0(writer, layout, out, ValType::I32);
            }
            writer.node(0, 0);
            writer.body.code().i32_add();
        }
        Accumulator::Packed { .. } => {
            // The leaf is its class's shift: one more vote is `1 << shift`.
            if first_of_group {
                load_slot0(writer, layout, out, ValType::I64);
            }
            writer.body.code().i64_const(1);
            writer.node(0, 0);
            writer.body.code().i64_shl().i64_add();
        }
        Accumulator::SumsInLocals => {
            // The leaf is its row in the weight table: each class's sum adds its weight, in
            // tree order.
            let n_classes = ensemble.n_classes;
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
        Accumulator::Average if t == 0 => {
            // The sum starts with tree 0's value.
            writer.body.code().local_get(out);
            writer.node(0, 0);
            writer.body.code().f64_reinterpret_i64();
        }
        Accumulator::Average => {
            if first_of_group {
                load_slot0(writer, layout, out, ValType::F64);
            }
            writer.node(0, 0);
            writer.body.code().f64_reinterpret_i64().f64_add();
        }
        Accumulator::VotesInMemory | Accumulator::SumsInMemory => {
            writer.node(0, 0);
            let add = add.expect("added for these accumulators");
            writer.body.code().local_get(out).call(add);
        }
        Accumulator::Boosted => {
            // Each output the group's trees add to is a local for the row: loaded from its
            // slot before the group's first tree, stored after its last.
            let boost = ensemble.boost.as_ref().expect("a boosted ensemble");
            let margins = writer.margin_locals(group.clone().map(|t| boost.tree_outputs[t]));
            if first_of_group {
                for (&k, &margin) in &margins {
                    writer
                        .body
                        .code()
                        .local_get(out)
                        .f64_load(f64_at(layout.output + 8 * boost.slot(k)))
                        .local_set(margin);
                }
            }
            let margin = margins[&boost.tree_outputs[t]];
            writer.body.code().local_get(margin);
            writer.node(0, 0);
            writer.body.code().f64_reinterpret_i64().f64_add().local_set(margin);
            if t + 1 == group.end {
                for (&k, &margin) in &margins {
                    writer
                        .body
                        .code()
                        .local_get(out)
                        .local_get(margin)
                        .f64_store(f64_at(layout.output + 8 * boost.slot(k)));
                }
            }
        }
    }
}

/// Pushes the address of the row's output (for the store after the group's trees) and the
/// accumulator in its slot 0, of type `ty`.
fn load_slot0(writer: &mut Writer, layout: &Layout, out: u32, ty: ValType) {
    let mut code = writer.body.code();
    code.local_get(out);
    match ty {
        ValType::I32 => code.local_get(out).i32_load(i32_at(layout.output)),
        ValType::I64 => code.local_get(out).i64_load(i64_at(layout.output)),
        _ => code.local_get(out).f64_load(f64_at(layout.output)),
    };
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

/// Consecutive runs of trees whose nodes add up to at most `budget` (a larger tree alone).
fn tree_groups(sizes: &[Vec<u32>], budget: u32) -> Vec<Range<usize>> {
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
