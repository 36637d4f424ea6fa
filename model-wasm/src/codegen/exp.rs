//! `exp(x: f64) -> f64` as a generated function: WebAssembly has no `exp` instruction.
//!
//! The algorithm is fdlibm's `e_exp.c` (also musl's and FreeBSD's), whose error is below 1 ulp:
//! 1. Reduce: `x = k*ln2 + r` with `k = nearest(x / ln2)` and `|r| <= ~0.5*ln2`; `ln2` is split in
//!    `LN2_HI` (whose low bits are zero, so `k*LN2_HI` is exact) and `LN2_LO`, `r = hi - lo`.
//! 2. Approximate `exp(r)` with fdlibm's Remez polynomial in `r*r`:
//!    `c = r - r²(P1 + r²(P2 + r²(P3 + r²(P4 + r²P5))))`, `exp(r) = 1 - ((lo - r*c/(2-c)) - hi)`.
//! 3. Scale by `2^k` by adding `k` to the exponent bits; below `k = -1021` (subnormal results) add
//!    `k + 1000` and multiply by `2^-1000`, which rounds once.
//!
//! Out of range: NaN gives NaN, `x > 709.78...` gives +inf, `x < -745.13...` gives 0.

use wasm_encoder::{BlockType, Function, ValType};

use super::emit::FunctionBody;

/// The constants, bit for bit as in fdlibm (decimal values in the comments).
const LN2_HI: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000); // 6.93147180369123816490e-01
const LN2_LO: f64 = f64::from_bits(0x3dea_39ef_3579_3c76); // 1.90821492927058770002e-10
const INV_LN2: f64 = f64::from_bits(0x3ff7_1547_652b_82fe); // 1.44269504088896338700e+00
const P1: f64 = f64::from_bits(0x3fc5_5555_5555_553e); // 1.66666666666666019037e-01
const P2: f64 = f64::from_bits(0xbf66_c16c_16be_bd93); // -2.77777777770155933842e-03
const P3: f64 = f64::from_bits(0x3f11_566a_af25_de2c); // 6.61375632143793436117e-05
const P4: f64 = f64::from_bits(0xbebb_bd41_c5d2_6bf1); // -1.65339022054652515390e-06
const P5: f64 = f64::from_bits(0x3e66_3769_72be_a4d0); // 4.13813679705723846039e-08
/// Above this, exp overflows.
const OVERFLOW: f64 = f64::from_bits(0x4086_2e42_fefa_39ef); // 7.09782712893383973096e+02
/// Below this, exp underflows to 0.
const UNDERFLOW: f64 = f64::from_bits(0xc087_4910_d52d_3051); // -7.45133219101941108420e+02
/// 2^-1000.
const TWO_M1000: f64 = f64::from_bits(0x0170_0000_0000_0000);

/// The signature of [`function`].
pub(super) const PARAMS: [ValType; 1] = [ValType::F64];
pub(super) const RESULTS: [ValType; 1] = [ValType::F64];

/// The body of `exp`.
pub(super) fn function() -> Function {
    const X: u32 = 0;
    let mut f = FunctionBody::new(1);
    let k = f.local(ValType::F64);
    let hi = f.local(ValType::F64);
    let lo = f.local(ValType::F64);
    let r = f.local(ValType::F64);
    let t = f.local(ValType::F64);
    let c = f.local(ValType::F64);
    let ki = f.local(ValType::I32);
    let bits = f.local(ValType::I64);
    let mut code = f.code();

    // Special cases: NaN, overflow, underflow.
    code.local_get(X)
        .local_get(X)
        .f64_ne()
        .if_(BlockType::Empty)
        .local_get(X)
        .return_()
        .end();
    code.local_get(X)
        .f64_const(OVERFLOW.into())
        .f64_gt()
        .if_(BlockType::Empty)
        .f64_const(f64::INFINITY.into())
        .return_()
        .end();
    code.local_get(X)
        .f64_const(UNDERFLOW.into())
        .f64_lt()
        .if_(BlockType::Empty)
        .f64_const(0.0.into())
        .return_()
        .end();

    // 1. x = k*ln2 + r.
    code.local_get(X)
        .f64_const(INV_LN2.into())
        .f64_mul()
        .f64_nearest()
        .local_set(k);
    code.local_get(X)
        .local_get(k)
        .f64_const(LN2_HI.into())
        .f64_mul()
        .f64_sub()
        .local_set(hi);
    code.local_get(k).f64_const(LN2_LO.into()).f64_mul().local_set(lo);
    code.local_get(hi).local_get(lo).f64_sub().local_tee(r);
    code.local_get(r).f64_mul().local_set(t);

    // 2. c = r - t*(P1 + t*(P2 + t*(P3 + t*(P4 + t*P5)))), by Horner from P5.
    code.local_get(r).f64_const(P5.into());
    for p in [P4, P3, P2, P1] {
        code.local_get(t).f64_mul().f64_const(p.into()).f64_add();
    }
    code.local_get(t).f64_mul().f64_sub().local_set(c);
    // y = 1 - ((lo - r*c/(2 - c)) - hi)
    code.f64_const(1.0.into())
        .local_get(lo)
        .local_get(r)
        .local_get(c)
        .f64_mul()
        .f64_const(2.0.into())
        .local_get(c)
        .f64_sub()
        .f64_div()
        .f64_sub()
        .local_get(hi)
        .f64_sub()
        .f64_sub();

    // 3. y * 2^k through the exponent bits (y = exp(r) is in [0.70, 1.42], so adding k keeps a
    //    normal number from k = -1021 up to the overflow threshold).
    code.i64_reinterpret_f64()
        .local_set(bits)
        .local_get(k)
        .i32_trunc_f64_s()
        .local_tee(ki)
        .i32_const(-1021)
        .i32_ge_s()
        .if_(BlockType::Result(ValType::F64))
        .local_get(bits)
        .local_get(ki)
        .i64_extend_i32_s()
        .i64_const(52)
        .i64_shl()
        .i64_add()
        .f64_reinterpret_i64()
        .else_()
        .local_get(bits)
        .local_get(ki)
        .i32_const(1000)
        .i32_add()
        .i64_extend_i32_s()
        .i64_const(52)
        .i64_shl()
        .i64_add()
        .f64_reinterpret_i64()
        .f64_const(TWO_M1000.into())
        .f64_mul()
        .end();
    f.finish()
}

/// `sigmoid(z: f64) -> f64` as the evaluator's: `1 / (1 + exp(-z))` for `z >= 0`, else
/// `e / (1 + e)` with `e = exp(z)`, so `exp` never overflows.
pub(super) fn sigmoid(exp: u32) -> Function {
    const Z: u32 = 0;
    let mut f = FunctionBody::new(1);
    let e = f.local(ValType::F64);
    f.code()
        .local_get(Z)
        .f64_const(0.0.into())
        .f64_ge()
        .if_(BlockType::Result(ValType::F64))
        .f64_const(1.0.into())
        .f64_const(1.0.into())
        .local_get(Z)
        .f64_neg()
        .call(exp)
        .f64_add()
        .f64_div()
        .else_()
        .local_get(Z)
        .call(exp)
        .local_tee(e)
        .f64_const(1.0.into())
        .local_get(e)
        .f64_add()
        .f64_div()
        .end();
    f.finish()
}

/// The end of a softmax, as the evaluator's: each score in `z` (locals) becomes
/// `exp(z_k - max) / sum`, the exps summed in order.
pub(super) fn softmax_from_max(f: &mut FunctionBody, z: &[u32], max: u32, exp: u32) {
    let sum = f.local(ValType::F64);
    for (k, z_k) in z.iter().enumerate() {
        f.code()
            .local_get(*z_k)
            .local_get(max)
            .f64_sub()
            .call(exp)
            .local_tee(*z_k);
        if k > 0 {
            f.code().local_get(sum).f64_add();
        }
        f.code().local_set(sum);
    }
    for z_k in z {
        f.code().local_get(*z_k).local_get(sum).f64_div().local_set(*z_k);
    }
}
