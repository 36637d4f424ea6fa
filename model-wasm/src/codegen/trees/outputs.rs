//! The last pass of `predict`, per row: the accumulator becomes the outputs (a classifier's
//! label and probabilities, a regressor's value).

use wasm_encoder::ValType;

use super::ensemble::{Accumulator, Ensemble};
use crate::codegen::emit::{DivideByCount, FunctionBody, i32_at, i64_at};
use crate::codegen::exp;
use crate::codegen::layout::Layout;
use crate::codegen::module::ModuleBuilder;
use crate::codegen::predict::{Phase, Row};
use crate::ir::Link;

/// The functions a boosted ensemble's link calls: `exp`, and `sigmoid` made of it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Links {
    exp: u32,
    sigmoid: u32,
}

/// Adds the link's functions for a boosted ensemble whose link needs them.
pub(super) fn links(module: &mut ModuleBuilder, ensemble: &Ensemble) -> Option<Links> {
    let boost = ensemble.boost.as_ref()?;
    if boost.link == Link::Identity {
        return None;
    }
    let exp = module.add(&exp::PARAMS, &exp::RESULTS, exp::function());
    let sigmoid = module.add(&exp::PARAMS, &exp::RESULTS, exp::sigmoid(exp));
    Some(Links { exp, sigmoid })
}

/// The pass: every row's outputs from its accumulator.
pub(super) fn outputs<'a>(ensemble: &'a Ensemble, layout: &'a Layout, links: Option<Links>) -> Phase<'a> {
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
            Accumulator::Boosted => {
                let boost = ensemble.boost.as_ref().expect("a boosted ensemble");
                boosted_outputs(f, row, boost.link, boost.classifier, n_classes, links);
            }
        }
    }))
}

/// A boosted row's outputs from its margins: the link, as the evaluator applies it.
fn boosted_outputs(
    f: &mut FunctionBody,
    row: &Row,
    link: Link,
    classifier: bool,
    n_classes: u32,
    links: Option<Links>,
) {
    let call = |links: Option<Links>, pick: fn(Links) -> u32| pick(links.expect("added for this link"));
    match (link, classifier) {
        (Link::Identity, _) => {}
        (Link::Exp | Link::Sigmoid, false) => {
            let function = if link == Link::Exp {
                call(links, |l| l.exp)
            } else {
                call(links, |l| l.sigmoid)
            };
            row.push_output_address(f);
            row.push_output_address(f);
            f.code().f64_load(row.slot(0)).call(function).f64_store(row.slot(0));
        }
        (Link::Sigmoid, true) => {
            let (p0, p1) = (f.local(ValType::F64), f.local(ValType::F64));
            row.push_output_address(f);
            f.code()
                .f64_load(row.slot(1))
                .call(call(links, |l| l.sigmoid))
                .local_set(p1)
                .f64_const(1.0.into())
                .local_get(p1)
                .f64_sub()
                .local_set(p0);
            row.store_classes(f, &[p0, p1]);
        }
        (Link::Softmax, _) => {
            // As the evaluator's softmax: the maximum subtracted, exps summed in order, each
            // divided by the sum.
            let exp = call(links, |l| l.exp);
            let z: Vec<u32> = (0..n_classes).map(|_| f.local(ValType::F64)).collect();
            let max = f.local(ValType::F64);
            f.code().f64_const(f64::NEG_INFINITY.into()).local_set(max);
            for (k, z_k) in z.iter().enumerate() {
                row.push_output_address(f);
                f.code()
                    .f64_load(row.slot(1 + k as u32))
                    .local_tee(*z_k)
                    .local_get(max)
                    .local_get(*z_k)
                    .local_get(max)
                    .f64_gt()
                    .select()
                    .local_set(max);
            }
            exp::softmax_from_max(f, &z, max, exp);
            row.store_classes(f, &z);
        }
        (Link::Exp, true) => unreachable!("validated: no such boosted classifier"),
    }
}
