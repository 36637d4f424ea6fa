//! edge-runtime's integration tests: one binary, one module per concern.

mod edge;
mod fixtures;
mod missing;
mod parity;
mod predict;
mod process;
mod refuse;
mod sandbox;
mod standin;
mod support;
