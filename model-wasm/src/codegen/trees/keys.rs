//! The first pass of `predict`, per row: each feature the trees test, scaled, as the `i32` key
//! the splits compare (see [`order_key`]), stored in the row's slot of the keys buffer, and a
//! fresh accumulator in the row's output slots.

use wasm_encoder::ValType;

use super::ensemble::Ensemble;
use crate::codegen::emit::{FunctionBody, i32_at, i64_at};
use crate::codegen::layout::Layout;
use crate::codegen::predict::{Phase, Row};

/// The pass: every row's keys and a fresh accumulator.
pub(super) fn prepare<'a>(ensemble: &'a Ensemble, layout: &'a Layout, used: &'a [bool]) -> Phase<'a> {
    Phase::Rows(Box::new(move |f: &mut FunctionBody, row: &Row| {
        store_features(f, row, used);
        match ensemble.accumulator.slot0() {
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
                for k in 0..ensemble.n_classes {
                    row.push_output_address(f);
                    f.code().f64_const(0.0.into()).f64_store(row.slot(1 + k));
                }
            }
        }
    }))
}

/// Scales each used feature of the row, demotes it to `f32` and stores its [`order_key`] in
/// the keys buffer.
fn store_features(f: &mut FunctionBody, row: &Row, used: &[bool]) {
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
pub(in crate::codegen) fn order_key(value: f32) -> i32 {
    let bits = value.to_bits() as i32;
    let magnitude = bits & i32::MAX;
    if bits < 0 { -magnitude } else { magnitude }
}
