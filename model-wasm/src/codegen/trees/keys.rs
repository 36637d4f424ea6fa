//! The first pass of `predict`, per row: each feature the trees test, scaled, as the `i32` key
//! the splits compare (see [`order_key`]), stored in the row's slot of the keys buffer, and a
//! fresh accumulator in the row's output slots.

use wasm_encoder::ValType;

use super::ensemble::Ensemble;
use crate::codegen::emit::{FunctionBody, i32_at, i64_at};
use crate::codegen::layout::{KeyKind, Layout};
use crate::codegen::predict::{Phase, Row};
use crate::ir::{Cast, MAX_CATEGORY, Missing, ZERO_THRESHOLD};

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
            // Each margin starts at its base score.
            None if let Some(boost) = &ensemble.boost => {
                for (k, base) in boost.base_score.iter().enumerate() {
                    row.push_output_address(f);
                    f.code()
                        .f64_const((*base).into())
                        .f64_store(row.slot(boost.slot(k as u32)));
                }
            }
            None => {
                for k in 0..ensemble.n_classes {
                    row.push_output_address(f);
                    f.code().f64_const(0.0.into()).f64_store(row.slot(1 + k));
                }
            }
        }
    }))
}

/// Scales each feature the splits use, and stores it in each of its used key slots as the
/// slot's [`KeyKind`] says: its [`order_key`] (of its `f32` value, or of its `f64` value in an
/// ensemble of `f64` splits), with a missing value at the slot's place, or its category.
fn store_features(f: &mut FunctionBody, row: &Row, used: &[bool]) {
    let layout = row.layout;
    let wide = layout.key_bytes == 8;
    let x = f.local(ValType::F64);
    let (bits, sign) = (f.local(ValType::I32), f.local(ValType::I32));
    let (bits64, sign64) = (f.local(ValType::I64), f.local(ValType::I64));
    let mut loaded = None;
    for (slot, &(feature, kind)) in layout.key_slots.iter().enumerate().filter(|(s, _)| used[*s]) {
        if loaded != Some(feature) {
            row.push_feature(f, feature as usize);
            f.code().local_set(x);
            loaded = Some(feature);
        }
        row.push_row_offset(f, layout.keys_row_bytes());
        let at = layout.key_address(slot as u32);
        if let KeyKind::Category { cast, missing } = kind {
            push_category(f, x, cast, missing);
            f.code().i32_store(i32_at(at));
            continue;
        }
        // (magnitude ^ sign) - sign: the magnitude, negated when the sign bit is set.
        if wide {
            f.code()
                .local_get(x)
                .i64_reinterpret_f64()
                .local_tee(bits64)
                .i64_const(i64::MAX)
                .i64_and()
                .local_get(bits64)
                .i64_const(63)
                .i64_shr_s()
                .local_tee(sign64)
                .i64_xor()
                .local_get(sign64)
                .i64_sub();
        } else {
            f.code()
                .local_get(x)
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
                .i32_sub();
        }
        // A missing value (and, for the zero kinds, a value near zero) at its place.
        let (low, high) = if wide {
            (i64::MIN, i64::MAX)
        } else {
            (i64::from(i32::MIN), i64::from(i32::MAX))
        };
        let replacement = match kind {
            KeyKind::Plain => None,
            KeyKind::MissingLow | KeyKind::ZeroLow => Some(low),
            KeyKind::MissingHigh | KeyKind::ZeroHigh => Some(high),
            KeyKind::MissingZero => Some(0),
            KeyKind::Category { .. } => unreachable!("stored above"),
        };
        if let Some(value) = replacement {
            let mut code = f.code();
            if wide {
                code.i64_const(value);
            } else {
                code.i32_const(value as i32);
            }
            // select(key, value, is_ordinary): keep the key unless the value is missing.
            code.local_get(x).local_get(x).f64_eq();
            if matches!(kind, KeyKind::ZeroLow | KeyKind::ZeroHigh) {
                // ... and not within the zero threshold: `|x| > t` (false for NaN too).
                code.i32_eqz()
                    .local_get(x)
                    .f64_abs()
                    .f64_const(ZERO_THRESHOLD.into())
                    .f64_le()
                    .i32_or()
                    .i32_eqz();
            }
            // The stack is [key, replacement, keep]: select keeps the key when `keep`.
            f.code().select();
        }
        if wide {
            f.code().i64_store(i64_at(at));
        } else {
            f.code().i32_store(i32_at(at));
        }
    }
}

/// Pushes the category index of the value in local `x` (`i32`): as `cast` reads it, -1 when it
/// has none, and a missing value as -2 ([`Missing::Left`]), category 0 ([`Missing::AsZero`]) or
/// -1.
fn push_category(f: &mut FunctionBody, x: u32, cast: Cast, missing: Missing) {
    // WebAssembly 1.0 has no saturating truncation, and `trunc` traps past `i32` or on NaN:
    // every value is clamped first. Categories are below 2^24 (MAX_CATEGORY), so a value
    // clamped to 2^24 is in no set, as it was.
    let limit = MAX_CATEGORY as f64;
    let mut code = f.code();
    match cast {
        // x as f32 >= 0 ? trunc(min(x as f32, 2^24)) : -1 (NaN: -1). Exact: the same, and -1
        // unless x as f32 is a whole number (an f64 past f32 demotes to infinity, index 2^24,
        // in no set).
        Cast::F32 | Cast::Exact => {
            code.local_get(x)
                .f32_demote_f64()
                .f32_const(0.0.into())
                .local_get(x)
                .f32_demote_f64()
                .f32_const(0.0.into())
                .f32_ge()
                .select()
                .f32_const((limit as f32).into())
                .f32_min()
                .i32_trunc_f32_s()
                .i32_const(-1)
                .local_get(x)
                .f32_demote_f64()
                .f32_const(0.0.into())
                .f32_ge();
            if cast == Cast::Exact {
                code.local_get(x)
                    .f32_demote_f64()
                    .f32_trunc()
                    .local_get(x)
                    .f32_demote_f64()
                    .f32_eq()
                    .i32_and();
            }
            code.select();
        }
        // (int)x for x clamped to [-1, 2^24] (negative results are in no set: compared
        // unsigned; (-1, 0) truncates to 0 as in C); NaN is read as 0 here, set apart below.
        Cast::F64 => {
            code.local_get(x)
                .f64_const(0.0.into())
                .local_get(x)
                .local_get(x)
                .f64_eq()
                .select()
                .f64_const((-1.0).into())
                .f64_max()
                .f64_const(limit.into())
                .f64_min()
                .i32_trunc_f64_s();
        }
    }
    let nan = match (missing, cast) {
        (Missing::Left, _) => Some(-2),
        (Missing::AsZero, Cast::F32 | Cast::Exact) => Some(0),
        // NaN was read as 0 already.
        (Missing::AsZero, Cast::F64) => None,
        (_, Cast::F64) => Some(-1),
        // NaN >= 0 is false: already -1.
        (_, Cast::F32 | Cast::Exact) => None,
    };
    if let Some(value) = nan {
        code.i32_const(value).local_get(x).local_get(x).f64_eq().select();
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

/// An `i64` whose signed order is the order of `f64` values that are not NaN, as [`order_key`]
/// for `f32` (the generated code computes the same map).
pub(in crate::codegen) fn order_key64(value: f64) -> i64 {
    let bits = value.to_bits() as i64;
    let magnitude = bits & i64::MAX;
    if bits < 0 { -magnitude } else { magnitude }
}
