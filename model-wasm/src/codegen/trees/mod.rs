//! Tree ensembles as code, not data: every split is an `if` on `x[feature] as f32 < threshold`
//! (the IR's split, to the bit), every leaf a constant.
//!
//! Comparisons are on integers: each feature, as `f32`, is mapped once per row to its
//! [`order_key`](keys::order_key), an `i32` whose signed order is the float order, and each
//! threshold to its key at compile time. A split is then `i32.lt_s(key, constant)`, which
//! machines compare with an immediate operand, where a float constant must first be moved into
//! a register.
//!
//! Functions:
//! - `predict` runs in three passes over the batch. First, per row, it scales each feature the
//!   trees use, demotes it to `f32` and stores its key in the row's slot of the keys buffer, and
//!   clears the row's accumulator, which lives in the row's output slots until the outputs are
//!   written. Then it calls each *group* once, with `n_rows`. Last, per row, it turns the
//!   accumulator into the outputs. The sums keep the evaluator's order.
//! - A group holds consecutive trees, as many as fit in [`NODE_BUDGET`](writer::NODE_BUDGET)
//!   nodes, and runs them on every row in turn (tree-major: its code stays hot for the whole
//!   batch). Per row it loads the keys of the features its trees test into locals, then
//!   evaluates each tree in order as nested `if`/`else` blocks that leave the leaf on the stack
//!   (vote: the leaf's class; sum: the leaf's row in the weight table, a data segment of
//!   `n_classes` f32 per leaf; average: the leaf's value), and adds it to the row's accumulator:
//!   class 1's votes (two classes), every class's votes packed in one `i64` (when the counts fit:
//!   a leaf is then its class's bit offset, and a vote adds `1 << offset`), or the `f64` sum in
//!   tree order (average), kept on the stack through the group's trees. Class weights are summed
//!   per class in locals within a group (up to
//!   [`MAX_SUMS_IN_LOCALS`](ensemble::MAX_SUMS_IN_LOCALS) classes) or by each tree through
//!   `add_weights(row, out)`; votes that do not fit an `i64` are counted per class through
//!   `add_vote(class, out)`.
//! - A function holds at most [`NODE_BUDGET`](writer::NODE_BUDGET) nodes and nests at most
//!   [`MAX_NESTING`](writer::MAX_NESTING) blocks; a subtree past either limit is *outlined*:
//!   written as a function of its own (`(keys offset) -> leaf`) and called where it was. So no
//!   body grows past what engines compile quickly, however large or deep the tree, and the
//!   generator's recursion is bounded by [`MAX_NESTING`](writer::MAX_NESTING).
//!
//! Passes and files, one concern each: `ensemble` (what the functions are written from, and how a
//! row's leaves add up: the accumulator), `keys` (the first pass: each row's keys), `groups` (the
//! group functions), `writer` (a tree as code: branches, branch-free subtrees, outlined pieces),
//! `outputs` (the last pass: each row's outputs).

mod ensemble;
mod groups;
mod keys;
mod outputs;
mod writer;

use std::collections::VecDeque;

use wasm_encoder::ValType;

use ensemble::Ensemble;
// The limits and the key map the tests check against.
#[cfg(test)]
pub(super) use ensemble::{MAX_SUMS_IN_LOCALS, branch_free_limit};
#[cfg(test)]
pub(super) use keys::order_key;
#[cfg(test)]
pub(super) use writer::{MAX_NESTING, NODE_BUDGET};

use super::emit::FunctionBody;
use super::layout::{Layout, used_slots};
use super::module::ModuleBuilder;
use super::predict::{self, Phase};
use crate::ir::ModelIr;

/// Adds the trees' functions and `predict` for a tree body; the index of `predict`.
pub(super) fn predict(module: &mut ModuleBuilder, ir: &ModelIr, layout: &Layout) -> u32 {
    let ensemble = Ensemble::new(ir);
    let add = groups::add_helper(module, layout, &ensemble);
    let mut pieces = VecDeque::new();
    let groups = groups::write_groups(module, layout, &ensemble, &mut pieces, add);
    writer::write_pieces(module, layout, &ensemble, pieces);

    // First every row's keys and a fresh accumulator, then the groups over all the rows, then
    // every row's outputs from its accumulator.
    let used = used_slots(layout, ensemble.trees);
    let links = outputs::links(module, &ensemble);
    let run_groups = Phase::Once(Box::new(|f: &mut FunctionBody, n_rows: u32| {
        for group in &groups {
            f.code().local_get(n_rows).call(*group);
        }
    }));
    let phases = vec![
        keys::prepare(&ensemble, layout, &used),
        run_groups,
        outputs::outputs(&ensemble, layout, links),
    ];
    let body = predict::function_in_phases(ir, layout, phases);
    module.add(&[ValType::I32], &[ValType::I32], body)
}
