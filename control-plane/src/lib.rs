//! Wasmline's control plane: the library behind the `wasmline` binary.
//!
//! The modules are private; this page re-exports what the binary, the benches and the
//! integration tests use. Bottom to top (a module imports only modules below it; the
//! `architecture` test in `tests/` holds the code to this order, docs/ARCHITECTURE.md explains it):
//! - `rng`, `progress`, `text`, `digest`: small helpers.
//! - `store`: the object store (local directory or S3), the control plane's only state.
//! - `data`: column types, the streaming schema-checking reader, the in-memory table, transform ops.
//! - `config`: `pipeline.toml`, strictly checked (one file per section).
//! - `profile`, `train`, `onnx`, `mlflow`: data profiles and drift references; linfa training and
//!   metrics; the IR as ONNX (and ONNX models imported); experiment tracking in MLflow.
//! - `import`: model files made elsewhere (XGBoost JSON, LightGBM text, ONNX) -> the IR.
//! - `dataset`: dataset versions in the store (DVC layout), read back as tables.
//! - `registry`: signed model manifests, verified artifacts, aliases and the compare gate.
//! - `pipeline`: the idempotent steps, run records.
//! - `server`: `wasmline serve`, the HTTP API (axum).
//! - `commands`: the command line.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use wasmline::{LocalStore, Pipeline, PipelineConfig, RunOptions, new_run_id};
//!
//! let store = LocalStore::open("./wasmline-data")?;
//! let config = PipelineConfig::load("examples/winequality/pipeline.toml".as_ref())?;
//! let pipeline = Pipeline::new(&store, config, new_run_id(), RunOptions::default())?;
//! for report in pipeline.run_all(|_| {}).await? {
//!     println!("{report}");
//! }
//! # Ok(()) }
//! ```

mod commands;
mod config;
mod data;
mod dataset;
mod digest;
mod import;
mod mlflow;
mod onnx;
mod pipeline;
mod profile;
mod progress;
mod registry;
mod rng;
mod server;
mod store;
mod text;
mod train;

// The command line: all the binary needs.
pub use commands::Cli;
// The store.
pub use store::{ETag, ErrorKind, Key, LocalStore, ObjectMeta, ObjectStore, S3Config, S3Store, StoreError};
// Pipelines, their configs and the datasets they version.
pub use config::{Family, Metric, ModelSpec, PipelineConfig};
pub use dataset::{DatasetRecord, load_dataset};
pub use pipeline::{Pipeline, RunOptions, StepName, StepReport, new_run_id};
// Training (the benches fit candidates directly).
pub use train::{Candidate, Fitted, Metrics, Targets, TrainData, candidates, fit, score};
// The registry, read.
pub use registry::{IR_ARTIFACT, Manifest, ModelSelector, list_models, load_artifact, load_manifest, load_version};
// ONNX: export, the tract check, import.
pub use onnx::{ImportError, ImportOptions, ParityReport, check_with_tract, import_onnx, import_onnx_with, to_onnx};
// XGBoost, LightGBM and ONNX model files -> the IR (scripts/bench-gbdt's bench calls it).
pub use import::{ImportOptions as ModelImportOptions, ImportedModel, ModelFormat, import_model};
// MLflow tracking.
pub use mlflow::{
    Auth, MetricPoint, MlflowClient, MlflowConfig, MlflowError, TAG_DATASET, TAG_DATASET_VERSION, TAG_GIT_COMMIT,
    TAG_RUN_ID, TrackedRun, Tracker,
};
