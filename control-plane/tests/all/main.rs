//! The control plane's integration tests, one binary.

mod storage;
