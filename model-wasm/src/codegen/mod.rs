//! The code generator: a validated [`ModelIr`] becomes a small self-contained WebAssembly module
//! that computes its predictions (the contract is `docs/MODULE_ABI.md`, ABI version 1).
//!
//! The module has no imports; it exports `memory` (fixed size: input, output and scratch buffers
//! plus the error messages), the ABI's constant getters, `predict(n_rows) -> status` and the error
//! getters, and carries the caller's metadata (the manifest) in the custom section
//! [`MANIFEST_SECTION`]. The model is *code*: weights and thresholds are instruction constants,
//! trees are nested `if`s (one function per tree, big or deep subtrees outlined), so engines
//! compile a model to straight machine code. Sizes (see the `module_sizes` test): 785 bytes for an
//! 11-feature linear regression, of which ~430 are the ABI (export names, getters, messages);
//! about 20 KB for 20 trees of depth 6.
//!
//! Code map, one concern per module: `emit` (encoder helpers), `layout` (memory, the data
//! segment), `module` (sections, globals, exports), `exports` (the ABI's constant and error
//! getters), `predict` (checks and the row loop), `linear` (scores and links), `exp` (the `exp`
//! WebAssembly lacks), `trees/` (trees as functions, one file per pass).
//!
//! ```
//! use model_wasm::codegen::{MANIFEST_SECTION, compile};
//! use model_wasm::{Body, IR_VERSION, Link, ModelIr, Output};
//!
//! let ir = ModelIr {
//!     ir_version: IR_VERSION,
//!     features: vec!["x".into()],
//!     preprocess: vec![],
//!     body: Body::Linear { weights: vec![2.0], intercepts: vec![1.0], link: Link::Identity },
//!     output: Output::Regression { target: "y".into() },
//! };
//! let module = compile(&ir, br#"{"name":"double"}"#).unwrap();
//! assert_eq!(&module[..4], b"\0asm");
//! assert!(module.windows(MANIFEST_SECTION.len()).any(|w| w == MANIFEST_SECTION.as_bytes()));
//! ```

mod emit;
mod exp;
mod exports;
mod layout;
mod linear;
mod module;
mod predict;
mod trees;

#[cfg(test)]
mod tests;

use crate::Result;
use crate::ir::{Body, ModelIr};

/// The ABI version `wasmline_abi_version` returns, and the custom section holding the metadata
/// given to [`compile`] (the host side's constants: one truth for both sides).
pub use crate::abi::{ABI_VERSION, MANIFEST_SECTION};
/// The rows one `predict` call takes at most.
pub const MAX_ROWS: i32 = 1024;

/// Compiles `ir` to a WebAssembly module carrying `metadata` in [`MANIFEST_SECTION`].
///
/// The IR is validated first ([`ModelIr::validate`]): an invalid model is refused before any byte
/// is made. A model whose buffers or functions would be too large for engines (over 2 GiB of
/// memory, a function body over V8's 7.6 MB) is refused too.
pub fn compile(ir: &ModelIr, metadata: &[u8]) -> Result<Vec<u8>> {
    ir.validate()?;
    let layout = layout::Layout::new(ir)?;
    let mut module = module::ModuleBuilder::default();
    let mut exports = exports::getters(&mut module, &layout, ir.n_outputs());
    let predict = match &ir.body {
        Body::Linear {
            weights,
            intercepts,
            link,
        } => linear::predict(&mut module, ir, &layout, weights, intercepts, *link),
        Body::Trees { .. } | Body::Boosted { .. } => trees::predict(&mut module, ir, &layout),
    };
    exports.push((crate::abi::export::PREDICT, predict));
    module.finish(&layout, &exports, metadata)
}
