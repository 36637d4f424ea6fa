//! Wasmline's control plane: the library behind the `wasmline` binary.
//!
//! - [`store`]: the object store (local directory or S3), the control plane's only state.
//! - [`config`]: `pipeline.toml`, strictly checked.
//! - [`data`]: column types, the streaming schema-checking reader, the in-memory table.
//! - [`mlflow`]: experiment tracking and model registry in an MLflow server (optional, never fatal).
//! - [`onnx`]: the IR written as ONNX, and checked in tract.
//! - [`pipeline`]: the idempotent steps (ingest, transform, validate, profile, version).
//! - [`profile`]: data profiles, the offline HTML report and the drift reference profile.
//! - [`registry`]: signed model manifests, verified artifacts, aliases and the compare gate.
//! - [`server`]: `wasmline serve`, the HTTP API (axum).
//! - [`commands`]: the command line.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use wasmline::{config::PipelineConfig, pipeline::{Pipeline, RunOptions, new_run_id}, store::LocalStore};
//!
//! let store = LocalStore::open("./wasmline-data")?;
//! let config = PipelineConfig::load("examples/winequality/pipeline.toml".as_ref())?;
//! let pipeline = Pipeline::new(&store, config, new_run_id(), RunOptions::default())?;
//! for report in pipeline.run_all(|_| {}).await? {
//!     println!("{report}");
//! }
//! # Ok(()) }
//! ```

pub mod commands;
pub mod config;
pub mod data;
pub mod mlflow;
pub mod onnx;
pub mod pipeline;
pub mod profile;
pub mod progress;
pub mod registry;
pub mod rng;
pub mod server;
pub mod store;
pub mod train;
