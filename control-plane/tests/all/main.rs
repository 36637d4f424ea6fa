//! The control plane's integration tests, one binary.

mod mlflow;
mod onnx;
mod storage;
