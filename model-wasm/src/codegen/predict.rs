//! `predict(n_rows) -> status`: the checks and the row loop every body shares.
//!
//! Invariants of the generated function:
//! - It writes outputs only when it returns 0: the range check (status 1) and a pass over every
//!   input value (status 2, at the first non-finite value in row-major order) come before any row
//!   is computed.
//! - Each row is computed from the input buffer alone (no state carries from one row to the next),
//!   with the IR's arithmetic in the IR's order, so results match the reference evaluator.

use wasm_encoder::{BlockType, Function, MemArg, ValType};

use super::MAX_ROWS;
use super::emit::{FunctionBody, end_loop, f64_at, start_loop};
use super::layout::{Layout, Message};
use super::module::{ERROR_FEATURE, ERROR_ROW, LAST_ERROR_LEN, LAST_ERROR_PTR};
use crate::abi::{STATUS_BAD_ROW_COUNT, STATUS_NON_FINITE, STATUS_OK};
use crate::ir::{ModelIr, Preprocess};

/// Most features per row for which the finiteness check is written out per value (beyond, a
/// loop over every value does it, in less code).
const UNROLLED_CHECK_FEATURES: u32 = 64;

/// What a body's code needs to read the current row and write its outputs.
#[derive(Debug)]
pub(super) struct Row<'a> {
    pub ir: &'a ModelIr,
    pub layout: &'a Layout,
    /// Local: byte offset of the current row in the input buffer.
    input: u32,
    /// Local: byte offset of the current row in the output buffer.
    output: u32,
}

impl Row<'_> {
    /// Pushes feature `i` of the current row after every preprocessing step, as `f64`.
    ///
    /// A step that cannot change the value (a center of +0.0, a scale of 1.0) is left out: `x - 0.0`
    /// and `x * 1.0` are `x` to the bit for every `x`, `-0.0` and infinities included.
    pub(super) fn push_feature(&self, f: &mut FunctionBody, i: usize) {
        let mut code = f.code();
        code.local_get(self.input)
            .f64_load(f64_at(self.layout.input + 8 * i as u32));
        for step in &self.ir.preprocess {
            match step {
                Preprocess::Scale { center, scale } => {
                    if center[i].to_bits() != 0f64.to_bits() {
                        code.f64_const(center[i].into()).f64_sub();
                    }
                    if scale[i] != 1.0 {
                        code.f64_const(scale[i].into()).f64_mul();
                    }
                }
            }
        }
    }

    /// Pushes `n * row index` for a per-row region of `n` bytes a row, where `n` is the input
    /// row's size (8 bytes a feature) times a power of two (`4 * n_features` is half of it).
    pub(super) fn push_row_offset(&self, f: &mut FunctionBody, bytes_per_row: u32) {
        let input_row = self.layout.input_row_bytes();
        f.code().local_get(self.input);
        if bytes_per_row <= input_row {
            let shift = (input_row / bytes_per_row).trailing_zeros();
            debug_assert_eq!(input_row / bytes_per_row, 1 << shift);
            f.code().i32_const(shift as i32).i32_shr_u();
        } else {
            let shift = (bytes_per_row / input_row).trailing_zeros();
            debug_assert_eq!(bytes_per_row / input_row, 1 << shift);
            f.code().i32_const(shift as i32).i32_shl();
        }
    }

    /// Pushes the address operand of the current output row; store with [`Row::slot`].
    pub(super) fn push_output_address(&self, f: &mut FunctionBody) {
        f.code().local_get(self.output);
    }

    /// The memory operand of output slot `slot` (0: label or value, 1..: probabilities).
    pub(super) fn slot(&self, slot: u32) -> MemArg {
        f64_at(self.layout.output + 8 * slot)
    }

    /// Writes `[label, probabilities...]` from one `f64` local per class: the label is the class
    /// with the highest probability, ties to the lowest index (as the evaluator's `class_of`).
    pub(super) fn store_classes(&self, f: &mut FunctionBody, probabilities: &[u32]) {
        for (k, p) in probabilities.iter().enumerate() {
            self.push_output_address(f);
            f.code().local_get(*p).f64_store(self.slot(1 + k as u32));
        }
        let best = f.local(ValType::F64);
        let label = f.local(ValType::I32);
        f.code()
            .local_get(probabilities[0])
            .local_set(best)
            .i32_const(0)
            .local_set(label);
        for (k, p) in probabilities.iter().enumerate().skip(1) {
            f.code()
                .local_get(*p)
                .local_get(best)
                .f64_gt()
                .if_(BlockType::Empty)
                .local_get(*p)
                .local_set(best)
                .i32_const(k as i32)
                .local_set(label)
                .end();
        }
        self.push_output_address(f);
        f.code().local_get(label).f64_convert_i32_u().f64_store(self.slot(0));
    }
}

/// The `predict` function; `row` writes the code that computes the current row's outputs.
pub(super) fn function(ir: &ModelIr, layout: &Layout, row: impl FnOnce(&mut FunctionBody, &Row)) -> Function {
    function_in_phases(ir, layout, vec![Phase::Rows(Box::new(row))])
}

/// Writes the code for the current row.
pub(super) type RowCode<'a> = Box<dyn FnOnce(&mut FunctionBody, &Row) + 'a>;
/// Writes code that runs once; it gets the local holding `n_rows`.
pub(super) type OnceCode<'a> = Box<dyn FnOnce(&mut FunctionBody, u32) + 'a>;

/// A part of `predict` after the checks: code for each row in turn (a loop over the rows runs
/// it), or code run once.
pub(super) enum Phase<'a> {
    Rows(RowCode<'a>),
    Once(OnceCode<'a>),
}

/// The `predict` function with the checks, then each phase in order over all the rows.
pub(super) fn function_in_phases(ir: &ModelIr, layout: &Layout, phases: Vec<Phase>) -> Function {
    const N_ROWS: u32 = 0;
    let mut f = FunctionBody::new(1);
    let end = f.local(ValType::I32);
    let at = f.local(ValType::I32);
    let output = f.local(ValType::I32);

    // Status 1: n_rows outside 0..=max_rows (unsigned, so negative counts are caught too).
    f.code()
        .local_get(N_ROWS)
        .i32_const(MAX_ROWS)
        .i32_gt_u()
        .if_(BlockType::Empty);
    fail(&mut f, layout.bad_rows, STATUS_BAD_ROW_COUNT);
    f.code().end();

    f.code()
        .local_get(N_ROWS)
        .i32_const(layout.input_row_bytes() as i32)
        .i32_mul()
        .local_set(end);

    // Every value finite? Per row, the sum of `x * 0.0`: 0 when every value is finite, NaN as
    // soon as one is not (NaN and infinities times zero are NaN), so the common case costs a
    // multiply and an add per value and one branch per row. A row that fails goes to the scan
    // below, which finds the value.
    let accepts = ir.accepts_missing();
    let finite = (1..=UNROLLED_CHECK_FEATURES).contains(&layout.n_features) && !accepts.contains(&true);
    if accepts.contains(&true) {
        missing_check(&mut f, layout, &accepts, at, end);
    } else if finite {
        // Never written: a local starts as +0.0, and `local.get` is 7 bytes shorter than the
        // constant.
        let zero = f.local(ValType::F64);
        let sum = f.local(ValType::F64);
        f.code()
            .block(BlockType::Empty) // all finite: skip the scan
            .block(BlockType::Empty) // a row is not: the scan
            .loop_(BlockType::Empty)
            .local_get(at)
            .local_get(end)
            .i32_ge_u()
            .br_if(2);
        // Summed as a balanced tree: a chain of adds would make each row wait on one long
        // sequence of additions.
        fn products(f: &mut FunctionBody, layout: &Layout, at: u32, zero: u32, features: std::ops::Range<u32>) {
            if features.len() == 1 {
                f.code()
                    .local_get(at)
                    .f64_load(f64_at(layout.input + 8 * features.start))
                    .local_get(zero)
                    .f64_mul();
            } else {
                let middle = features.start + features.len() as u32 / 2;
                products(f, layout, at, zero, features.start..middle);
                products(f, layout, at, zero, middle..features.end);
                f.code().f64_add();
            }
        }
        products(&mut f, layout, at, zero, 0..layout.n_features);
        // sum != sum: NaN. (Not kept in `zero`: the next row would wait for this one's sum.)
        f.code()
            .local_tee(sum)
            .local_get(sum)
            .f64_ne()
            .br_if(1)
            .local_get(at)
            .i32_const(layout.input_row_bytes() as i32)
            .i32_add()
            .local_set(at)
            .br(0)
            .end()
            .end()
            .i32_const(0)
            .local_set(at);
    }

    // Status 2: the first non-finite value, in row-major order. `|x| < inf` is false for NaN too.
    if !accepts.contains(&true) {
        scan(&mut f, layout, at, end);
    }
    if finite {
        f.code().end();
    }

    for phase in phases {
        match phase {
            Phase::Once(code) => code(&mut f, N_ROWS),
            Phase::Rows(row) => {
                f.code().i32_const(0).local_set(at).i32_const(0).local_set(output);
                start_loop(&mut f.code(), at, end);
                row(
                    &mut f,
                    &Row {
                        ir,
                        layout,
                        input: at,
                        output,
                    },
                );
                end_loop(
                    &mut f.code(),
                    &[(at, layout.input_row_bytes()), (output, layout.output_row_bytes())],
                );
            }
        }
    }
    f.code().i32_const(STATUS_OK);
    f.finish()
}

/// Status 2: the first value that is NaN or infinite, in row-major order.
fn scan(f: &mut FunctionBody, layout: &Layout, at: u32, end: u32) {
    let n_features = layout.n_features as i32;
    f.code()
        .block(BlockType::Empty)
        .loop_(BlockType::Empty)
        .local_get(at)
        .local_get(end)
        .i32_ge_u()
        .br_if(1)
        .local_get(at)
        .f64_load(f64_at(layout.input))
        .f64_abs()
        .f64_const(f64::INFINITY.into())
        .f64_lt()
        .i32_eqz()
        .if_(BlockType::Empty)
        .local_get(at)
        .i32_const(3)
        .i32_shr_u()
        .local_tee(at)
        .i32_const(n_features)
        .i32_div_u()
        .global_set(ERROR_ROW)
        .local_get(at)
        .i32_const(n_features)
        .i32_rem_u()
        .global_set(ERROR_FEATURE);
    fail(f, layout.not_finite, STATUS_NON_FINITE);
    f.code()
        .end()
        .local_get(at)
        .i32_const(8)
        .i32_add()
        .local_set(at)
        .br(0)
        .end()
        .end();
}

/// Status 2 for a model that routes missing values: per row, per feature, an infinity, or NaN
/// where the feature refuses a missing value (`accepts[i]` false).
fn missing_check(f: &mut FunctionBody, layout: &Layout, accepts: &[bool], at: u32, end: u32) {
    f.code()
        .block(BlockType::Empty)
        .loop_(BlockType::Empty)
        .local_get(at)
        .local_get(end)
        .i32_ge_u()
        .br_if(1);
    for (i, accepts) in accepts.iter().enumerate() {
        let mut code = f.code();
        code.local_get(at)
            .f64_load(f64_at(layout.input + 8 * i as u32))
            .f64_abs()
            .f64_const(f64::INFINITY.into());
        if *accepts {
            code.f64_eq();
        } else {
            code.f64_lt().i32_eqz();
        }
        code.if_(BlockType::Empty)
            .local_get(at)
            .i32_const(layout.input_row_bytes() as i32)
            .i32_div_u()
            .global_set(ERROR_ROW)
            .i32_const(i as i32)
            .global_set(ERROR_FEATURE);
        fail(f, layout.not_finite, STATUS_NON_FINITE);
        f.code().end();
    }
    f.code()
        .local_get(at)
        .i32_const(layout.input_row_bytes() as i32)
        .i32_add()
        .local_set(at)
        .br(0)
        .end()
        .end()
        .i32_const(0)
        .local_set(at);
}

/// Keeps `message` for `last_error_*` and returns `status`.
fn fail(f: &mut FunctionBody, message: Message, status: i32) {
    f.code()
        .i32_const(message.ptr as i32)
        .global_set(LAST_ERROR_PTR)
        .i32_const(message.len as i32)
        .global_set(LAST_ERROR_LEN)
        .i32_const(status)
        .return_();
}
