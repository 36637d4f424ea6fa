//! End-to-end tests: the `wasmline` binary run as a user runs it.

mod cli;
