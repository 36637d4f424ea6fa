//! Linear bodies: `z[k] = intercepts[k] + sum_i weights[k][i] * x[i]` in `f64`, then the link.
//!
//! The weights are code (`f64.const`), not data. The sums run in the evaluator's order (the
//! products added from feature 0 up, the intercept last), and WebAssembly's `f64` arithmetic is
//! IEEE 754 without fused operations, so `z` matches the evaluator to the bit; the links differ
//! from it only by the generated `exp` (below 1 ulp, against the platform's).

use wasm_encoder::ValType;

use super::emit::FunctionBody;
use super::exp;
use super::layout::Layout;
use super::module::ModuleBuilder;
use super::predict::{self, Row};
use crate::ir::{Link, ModelIr};

/// Adds `predict` for a linear body (and the helpers its link needs); its index.
pub(super) fn predict(
    module: &mut ModuleBuilder,
    ir: &ModelIr,
    layout: &Layout,
    weights: &[f64],
    intercepts: &[f64],
    link: Link,
) -> u32 {
    let body = match link {
        Link::Exp => unreachable!("validated: a linear model has no exp link"),
        Link::Identity => predict::function(ir, layout, |f, row| {
            row.push_output_address(f);
            push_score(f, row, weights, intercepts[0]);
            f.code().f64_store(row.slot(0));
        }),
        Link::Sigmoid => {
            let exp = module.add(&exp::PARAMS, &exp::RESULTS, exp::function());
            let sigmoid = module.add(&exp::PARAMS, &exp::RESULTS, exp::sigmoid(exp));
            predict::function(ir, layout, |f, row| {
                let p0 = f.local(ValType::F64);
                let p1 = f.local(ValType::F64);
                push_score(f, row, weights, intercepts[0]);
                f.code()
                    .call(sigmoid)
                    .local_set(p1)
                    .f64_const(1.0.into())
                    .local_get(p1)
                    .f64_sub()
                    .local_set(p0);
                row.store_classes(f, &[p0, p1]);
            })
        }
        Link::Softmax => {
            let exp = module.add(&exp::PARAMS, &exp::RESULTS, exp::function());
            predict::function(ir, layout, |f, row| softmax_row(f, row, weights, intercepts, exp))
        }
    };
    module.add(&[ValType::I32], &[ValType::I32], body)
}

/// Pushes the score of a single-output model: the running sum stays on the operand stack.
fn push_score(f: &mut FunctionBody, row: &Row, weights: &[f64], intercept: f64) {
    for (i, w) in weights.iter().enumerate() {
        row.push_feature(f, i);
        f.code().f64_const((*w).into()).f64_mul();
        if i > 0 {
            f.code().f64_add();
        }
    }
    f.code().f64_const(intercept.into()).f64_add();
}

/// Softmax over several scores, as the evaluator's `softmax`: the maximum subtracted first
/// (NaN scores skipped as `f64::max` does), exps summed in order, each divided by the sum.
fn softmax_row(f: &mut FunctionBody, row: &Row, weights: &[f64], intercepts: &[f64], exp: u32) {
    let n = row.layout.n_features as usize;
    let x = f.local(ValType::F64);
    let s: Vec<u32> = intercepts.iter().map(|_| f.local(ValType::F64)).collect();
    let max = f.local(ValType::F64);

    // Each feature once, into every output's running sum.
    for i in 0..n {
        row.push_feature(f, i);
        f.code().local_set(x);
        for (k, s_k) in s.iter().enumerate() {
            f.code().local_get(x).f64_const(weights[k * n + i].into()).f64_mul();
            if i > 0 {
                f.code().local_get(*s_k).f64_add();
            }
            f.code().local_set(*s_k);
        }
    }
    f.code().f64_const(f64::NEG_INFINITY.into()).local_set(max);
    for (s_k, b_k) in s.iter().zip(intercepts) {
        // z = b + s, then max = if z > max { z } else { max }.
        f.code()
            .local_get(*s_k)
            .f64_const((*b_k).into())
            .f64_add()
            .local_tee(*s_k)
            .local_get(max)
            .local_get(*s_k)
            .local_get(max)
            .f64_gt()
            .select()
            .local_set(max);
    }
    exp::softmax_from_max(f, &s, max, exp);
    row.store_classes(f, &s);
}
