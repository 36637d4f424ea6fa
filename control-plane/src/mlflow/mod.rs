//! Experiment tracking and model registry in MLflow, over its REST API.
//!
//! Optional: the object store is Wasmline's record of runs and models; MLflow mirrors them for
//! people who use its UI. [`Tracker`] is what the pipeline calls, and it never fails a pipeline
//! (see its policy). [`MlflowClient`] is the REST client beneath it, blocking (`ureq`).
//!
//! Configured by MLflow's own variables: `MLFLOW_TRACKING_URI` (an `http(s)://` tracking server;
//! unset = tracking off), `MLFLOW_TRACKING_USERNAME`/`MLFLOW_TRACKING_PASSWORD` or
//! `MLFLOW_TRACKING_TOKEN`, `MLFLOW_EXPERIMENT_NAME` (default `wasmline`).
//!
//! Artifacts are uploaded through the server's artifact proxy, so the server needs
//! `--artifacts-destination` (or its default `./mlartifacts`) and no `--no-serve-artifacts`;
//! Wasmline never needs credentials for MLflow's artifact store.
//!
//! Tested against a real `mlflow server` (`control-plane/tests/all/mlflow.rs`).

mod client;
mod config;
mod error;
mod tracker;

pub use client::{MetricPoint, MlflowClient, RunStatus};
pub use config::{Auth, MlflowConfig};
pub use error::MlflowError;
pub use tracker::{TAG_DATASET, TAG_DATASET_VERSION, TAG_GIT_COMMIT, TAG_RUN_ID, TrackedRun, Tracker};
