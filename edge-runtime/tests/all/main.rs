//! edge-runtime's integration tests: one binary, one module per concern.

mod edge;
mod fixtures;
mod kserve;
mod outbox;
mod parity;
mod predict;
mod refuse;
mod sandbox;
mod standin;
mod support;

use std::sync::LazyLock;

use edge_runtime::{Runtime, RuntimeConfig};

/// One runtime for the tests that need no special sizing, as a process would have.
pub fn runtime() -> &'static Runtime {
    static RUNTIME: LazyLock<Runtime> =
        LazyLock::new(|| Runtime::new(RuntimeConfig::default()).expect("the engine starts"));
    &RUNTIME
}
