//! Wasmline's control plane.
pub mod store;
