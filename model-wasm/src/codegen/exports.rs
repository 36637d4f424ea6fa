//! The ABI's small exports (docs/MODULE_ABI.md): the constants a host reads once, and the error
//! globals behind `error_row`, `error_feature`, `last_error_ptr` and `last_error_len`.

use wasm_encoder::ValType;

use super::emit::FunctionBody;
use super::layout::Layout;
use super::module::{ERROR_FEATURE, ERROR_ROW, LAST_ERROR_LEN, LAST_ERROR_PTR, ModuleBuilder};
use super::{ABI_VERSION, MAX_ROWS};

/// Adds one `() -> i32` function per constant and per error global; their export names and indices.
pub(super) fn getters(module: &mut ModuleBuilder, layout: &Layout, n_outputs: usize) -> Vec<(&'static str, u32)> {
    let constants = [
        ("wasmline_abi_version", ABI_VERSION),
        ("n_features", layout.n_features as i32),
        ("n_outputs", n_outputs as i32),
        ("output_stride", layout.output_stride as i32),
        ("max_rows", MAX_ROWS),
        ("input_ptr", layout.input as i32),
        ("output_ptr", layout.output as i32),
    ];
    let globals = [
        ("error_row", ERROR_ROW),
        ("error_feature", ERROR_FEATURE),
        ("last_error_ptr", LAST_ERROR_PTR),
        ("last_error_len", LAST_ERROR_LEN),
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
