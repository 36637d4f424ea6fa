//! Wasmline's browser SDK: the Rust half of `wasmline_sdk.js` (`web/sdk`), compiled for
//! `wasm32-unknown-unknown` and shrunk with binaryen's `wasm-opt` (`scripts/build-web`).
//!
//! ```js
//! import init, { loadModel } from "/sdk/wasmline_sdk.js";
//! await init();
//! // The control plane's key, {algorithm, key_id, public_key}: pin it (web/app.js keeps it in
//! // localStorage on first load) rather than trusting whatever a later load serves.
//! const key = await (await fetch("/api/v1/signing-key")).json();
//! const model = await loadModel("/api/v1/models/wine/versions/3/artifacts", key);   // manifest.json, model.wasm
//! const [p] = model.predict([{ alcohol: 11.2, pH: 3.3 /* ... every feature */ }]);
//! // p = { label: "1", probabilities: { "0": 0.2, "1": 0.8 } }, or { value: 5.6 } for a regressor
//! model.telemetry();     // counts, latency histogram and drift, ready to post
//! ```
//!
//! JavaScript does what only a page can: fetch, instantiate the model's module, call it, and
//! the ed25519 arithmetic of the manifest's signature (WebCrypto, `crypto.subtle`, RFC 8032;
//! ed25519-dalek's `verify_strict`, which an edge runs, would add 9.5 KB of gzip). Every rule is
//! this module's, which is model-wasm's as an edge runs them: [`model_wasm::signature`] (the
//! signature's rules and the bytes it covers), [`model_wasm::manifest`] (the manifest, digests),
//! [`model_wasm::abi`] (the module's contract), [`model_wasm::schema`] (row checks) and
//! [`model_wasm::telemetry`] (counts, latency, drift). [`session`] sequences them;
//! `exports` is the plain ABI the JavaScript calls (no wasm-bindgen: its glue and async runtime
//! weighed more than the rules).
//!
//! Built for wasm32 the crate is `no_std`: its panic handler traps without formatting, so none
//! of std's panic and formatting machinery is linked.
#![cfg_attr(target_arch = "wasm32", no_std)]

extern crate alloc;

#[cfg(target_arch = "wasm32")]
mod exports;
pub mod session;

// A page runs the SDK on one thread (wasm32-unknown-unknown has no threads without atomics).
// lol_alloc's promise that nothing allocates concurrently is the `unsafe` here.
#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code)]
#[global_allocator]
static ALLOCATOR: lol_alloc::AssumeSingleThreaded<lol_alloc::FreeListAllocator> =
    // SAFETY: this module is only ever instantiated without shared memory, on one thread.
    unsafe { lol_alloc::AssumeSingleThreaded::new(lol_alloc::FreeListAllocator::new()) };

/// A panic (a broken invariant, never bad input: that is an error) traps; JavaScript turns the
/// trap into an exception.
#[cfg(target_arch = "wasm32")]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    core::arch::wasm32::unreachable()
}
