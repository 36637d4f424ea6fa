//! Fixtures for Wasmline's tests: real servers (S3, HTTP, ...) started as child processes on
//! 127.0.0.1 and free ports, polled for readiness with a deadline, and stopped (with their whole
//! process group) when the fixture is dropped. Also the paths of the workspace's binaries.
//!
//! The external programs come from `scripts/test`, which installs them into the cache and puts
//! them on `PATH`. A test whose program is missing fails and says how to get it; nothing is skipped.

pub mod process;
pub mod servers;

use std::path::PathBuf;

/// The workspace root: the parent of the package directory `cargo test` runs the test in.
///
/// Read at run time: the compile-time value names the checkout that built this crate, and two
/// checkouts sharing one target directory (a CI clone and a working copy) share its artifacts.
pub fn workspace_root() -> PathBuf {
    let package = std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into());
    PathBuf::from(package).parent().expect("workspace root").to_path_buf()
}

/// Path of a binary built from this workspace (`wasmline`, later `wasmline-edge`), next to the
/// running test executable. `cargo test --workspace` builds them before any test runs; a binary
/// older than the workspace's sources (e.g. after `cargo test -p tests` alone) is refused rather
/// than tested.
pub fn workspace_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().and_then(|d| d.parent()).expect("target profile dir");
    let path = dir.join(name);
    let built = std::fs::metadata(&path).and_then(|m| m.modified()).unwrap_or_else(|_| {
        panic!(
            "{} is not built: run the tests with `cargo test --workspace` (scripts/test does)",
            path.display()
        )
    });
    if let Some(source) = newest_source(name)
        && source > built
    {
        panic!(
            "{} is older than the workspace's sources: run `cargo build --workspace` (or `cargo test --workspace`) first",
            path.display()
        );
    }
    path
}

/// The modification time of the newest Rust source or manifest of the crates binary `name` is
/// built from (`wasmline-edge` does not link the control plane, so its changes do not age it).
fn newest_source(name: &str) -> Option<std::time::SystemTime> {
    let root = workspace_root();
    let crates: &[&str] = if name == "wasmline-edge" {
        &["edge-runtime", "model-wasm"]
    } else {
        &["control-plane", "edge-runtime", "model-wasm"]
    };
    let mut newest = None;
    let mut stack: Vec<PathBuf> = crates
        .iter()
        .flat_map(|c| [root.join(c).join("src"), root.join(c).join("Cargo.toml")])
        .collect();
    while let Some(path) = stack.pop() {
        let Ok(meta) = std::fs::metadata(&path) else { continue };
        if meta.is_dir() {
            stack.extend(
                std::fs::read_dir(&path)
                    .into_iter()
                    .flatten()
                    .flatten()
                    .map(|e| e.path()),
            );
        } else if let Ok(modified) = meta.modified() {
            newest = newest.max(Some(modified));
        }
    }
    newest
}

/// The bundled example data and configs.
pub fn examples_dir() -> PathBuf {
    workspace_root().join("examples")
}
