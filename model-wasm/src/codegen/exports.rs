//! The ABI's small exports (docs/MODULE_ABI.md): the constants a host reads once, and the error
//! globals behind `error_row`, `error_feature`, `last_error_ptr` and `last_error_len`.

use wasm_encoder::ValType;

use super::emit::FunctionBody;
use super::layout::Layout;
use super::module::{ERROR_FEATURE, ERROR_ROW, LAST_ERROR_LEN, LAST_ERROR_PTR, ModuleBuilder};
use super::{ABI_VERSION, MAX_ROWS};
use crate::abi::export;

/// Adds one `() -> i32` function per constant and per error global; their export names and indices.
pub(super) fn getters(module: &mut ModuleBuilder, layout: &Layout, n_outputs: usize) -> Vec<(&'static str, u32)> {
    let constants = [
        (export::ABI_VERSION, ABI_VERSION),
        (export::N_FEATURES, layout.n_features as i32),
        (export::N_OUTPUTS, n_outputs as i32),
        (export::OUTPUT_STRIDE, layout.output_stride as i32),
        (export::MAX_ROWS, MAX_ROWS),
        (export::INPUT_PTR, layout.input as i32),
        (export::OUTPUT_PTR, layout.output as i32),
    ];
    let globals = [
        (export::ERROR_ROW, ERROR_ROW),
        (export::ERROR_FEATURE, ERROR_FEATURE),
        (export::LAST_ERROR_PTR, LAST_ERROR_PTR),
        (export::LAST_ERROR_LEN, LAST_ERROR_LEN),
    ];
    let mut exports = Vec::new();
    for (name, value) in constants {
        let mut f = FunctionBody::new(0);
        f.code().i32_const(value);
        exports.push((name, module.add(&[], &[ValType::I32], f.finish())));
    }
    for (name, global) in globals {
        let mut f = FunctionBody::new(0);
        f.code().global_get(global);
        exports.push((name, module.add(&[], &[ValType::I32], f.finish())));
    }
    exports
}
