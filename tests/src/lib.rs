//! Fixtures for Wasmline's tests: real servers (S3, HTTP, ...) started as child processes on
//! 127.0.0.1 and free ports, polled for readiness with a deadline, and stopped (with their whole
//! process group) when the fixture is dropped. Also the paths of the workspace's binaries.
//!
//! The external programs come from `scripts/test`, which installs them into the cache and puts
//! them on `PATH`. A test whose program is missing fails and says how to get it; nothing is skipped.

pub mod process;
pub mod servers;

use std::path::PathBuf;

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// Path of a binary built from this workspace (`wasmline`, later `wasmline-edge`), next to the
/// running test executable. `cargo test --workspace` builds them before any test runs.
pub fn workspace_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().and_then(|d| d.parent()).expect("target profile dir");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is not built: run the tests with `cargo test --workspace` (scripts/test does)",
        path.display()
    );
    path
}

/// The bundled example data and configs.
pub fn examples_dir() -> PathBuf {
    workspace_root().join("examples")
}
