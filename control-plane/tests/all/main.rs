//! The control plane's integration tests, one binary.

mod import_onnx;
mod mlflow;
mod models_import;
mod onnx;
mod storage;
