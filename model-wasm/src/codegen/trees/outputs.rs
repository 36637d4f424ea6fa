//! The last pass of `predict`, per row: the accumulator becomes the outputs (a classifier's
//! label and probabilities, a regressor's value).

use wasm_encoder::ValType;

use super::ensemble::{Accumulator, Ensemble};
use crate::codegen::emit::{DivideByCount, FunctionBody, i32_at, i64_at};
use crate::codegen::layout::Layout;
use crate::codegen::predict::{Phase, Row};

/// The pass: every row's outputs from its accumulator.
pub(super) fn outputs<'a>(ensemble: &'a Ensemble, layout: &'a Layout) -> Phase<'a> {
    let n_trees = ensemble.trees.len();
    let n_classes = ensemble.n_classes;
    Phase::Rows(Box::new(move |f: &mut FunctionBody, row: &Row| {
        match ensemble.accumulator {
            Accumulator::Binary => {
                // Two classes: each tree gives 0 or 1, so class 1's votes are their sum.
                let ones = f.local(ValType::I32);
                let (p0, p1) = (f.local(ValType::F64), f.local(ValType::F64));
                row.push_output_address(f);
                f.code()
                    .i32_load(i32_at(layout.output))
                    .local_set(ones)
                    .i32_const(n_trees as i32)
                    .local_get(ones)
                    .i32_sub()
                    .f64_convert_i32_u()
                    .f64_div_by_count(n_trees)
                    .local_set(p0)
                    .local_get(ones)
                    .f64_convert_i32_u()
                    .f64_div_by_count(n_trees)
                    .local_set(p1);
                row.store_classes(f, &[p0, p1]);
            }
            Accumulator::Packed { width } => {
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
                            .f64_div_by_count(n_trees)
                            .local_set(p);
                        p
                    })
                    .collect();
                row.store_classes(f, &probabilities);
            }
            Accumulator::VotesInMemory | Accumulator::SumsInLocals | Accumulator::SumsInMemory => {
                // Per-class counts or sums of weights, as f64, in the output row: a class's
                // probability is its share of the votes, or its sum.
                let probabilities: Vec<u32> = (0..n_classes)
                    .map(|k| {
                        let p = f.local(ValType::F64);
                        row.push_output_address(f);
                        let mut code = f.code();
                        code.f64_load(row.slot(1 + k));
                        if ensemble.accumulator == Accumulator::VotesInMemory {
                            code.f64_div_by_count(n_trees);
                        }
                        code.local_set(p);
                        p
                    })
                    .collect();
                row.store_classes(f, &probabilities);
            }
            Accumulator::Average => {
                row.push_output_address(f);
                row.push_output_address(f);
                f.code()
                    .f64_load(row.slot(0))
                    .f64_div_by_count(n_trees)
                    .f64_store(row.slot(0));
            }
        }
    }))
}
