//! Test support for the binary's unit tests: the integration tests' own helpers (`tests/all/`),
//! compiled from the same files, so both suites build models, hand-written modules and the
//! control plane's stand-in one way.

#[path = "../../tests/all/fixtures.rs"]
pub mod fixtures;
#[path = "../../tests/all/standin.rs"]
pub mod standin;
#[path = "../../tests/all/support.rs"]
pub mod support;
