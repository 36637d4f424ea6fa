//! Wasmline's edge runtime.
//!
//! Not built yet: this crate will host the generated model modules in wasmtime, serve them over the
//! Open Inference Protocol and report telemetry (see `docs/ARCHITECTURE.md`, Step 4 of the plan).
//! Today it only re-exports the drift types it will use, so the dependency arrow
//! edge-runtime -> model-wasm is in place and checked by the build.

pub use model_wasm::{DriftWindow, ReferenceProfile};
