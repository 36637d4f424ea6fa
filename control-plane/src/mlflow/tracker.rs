use bytes::Bytes;

use super::client::check_artifact_path;
use super::{MetricPoint, MlflowClient, MlflowConfig, MlflowError, RunStatus};

/// Tag with Wasmline's own run id (`runs/{run_id}/run.json` in the object store).
pub const TAG_RUN_ID: &str = "wasmline.run_id";
/// Tag with the dataset's name.
pub const TAG_DATASET: &str = "wasmline.dataset";
/// Tag with the dataset's version (`datasets/{name}/{version}.json`).
pub const TAG_DATASET_VERSION: &str = "wasmline.dataset_version";
/// MLflow's tag for the source commit, shown in its UI.
pub const TAG_GIT_COMMIT: &str = "mlflow.source.git.commit";

/// One run to record in MLflow: what a training candidate or a pipeline run produced.
#[derive(Debug, Clone, Default)]
pub struct TrackedRun {
    /// The run's name in MLflow (`mlflow.runName`), e.g. `winequality-random_forest-3`.
    pub name: String,
    /// Wasmline's run id, tagged `wasmline.run_id`.
    pub run_id: String,
    /// Tagged `wasmline.dataset` when known.
    pub dataset: Option<String>,
    /// Tagged `wasmline.dataset_version` when known.
    pub dataset_version: Option<String>,
    /// Tagged `mlflow.source.git.commit` when known.
    pub git_commit: Option<String>,
    /// More tags; ours above win over these.
    pub tags: Vec<(String, String)>,
    pub params: Vec<(String, String)>,
    /// Final values (step 0, timestamped when logged).
    pub metrics: Vec<(String, f64)>,
    /// Files for the run's artifacts: a relative path (`reports/validation.md`) and the bytes.
    pub artifacts: Vec<(String, Bytes)>,
}

impl TrackedRun {
    /// The tags [`Tracker::track_run`] creates the run with.
    fn our_tags(&self) -> Vec<(String, String)> {
        let mut tags = vec![(TAG_RUN_ID.to_owned(), self.run_id.clone())];
        let known = [
            (TAG_DATASET, &self.dataset),
            (TAG_DATASET_VERSION, &self.dataset_version),
            (TAG_GIT_COMMIT, &self.git_commit),
        ];
        for (key, value) in known {
            if let Some(value) = value {
                tags.push((key.to_owned(), value.clone()));
            }
        }
        tags
    }
}

/// Experiment tracking for the pipeline: runs (params, metrics, tags, artifacts) and registered
/// model versions with aliases, in an MLflow tracking server named by `MLFLOW_TRACKING_URI`.
///
/// # Policy: MLflow never fails the pipeline
///
/// MLflow is a mirror for people who browse experiments there; the object store stays the
/// source of truth. So:
/// - When `MLFLOW_TRACKING_URI` is unset, the tracker is off: every call does nothing and returns
///   `Ok(None)`, without touching the network.
/// - When it is set but unusable (a `file:` URI, half the credentials), or when the server is
///   down, slow (5 s to connect, 30 s per call) or answers with an error, the call returns an
///   [`MlflowError`] that names the tracking URI and the call. The caller logs it as a warning —
///   `tracking skipped: {err}` — and carries on; it never turns it into a failed step.
/// - A run whose logging fails half-way is marked `FAILED` in MLflow when the server still
///   answers, so a partial run is not mistaken for a complete one.
///
/// The methods block (they make HTTP calls with `ureq`); async callers use the `_async`
/// variants, which run them on tokio's blocking pool.
///
/// ```no_run
/// # async fn demo() {
/// use wasmline::{TrackedRun, Tracker};
///
/// let tracker = Tracker::from_env();
/// let run = TrackedRun {
///     name: "winequality-logistic-0".into(),
///     run_id: "20250101-120000-ab12".into(),
///     params: vec![("c".into(), "0.1".into())],
///     metrics: vec![("accuracy".into(), 0.91)],
///     artifacts: vec![("reports/evaluation.md".into(), "# Evaluation\n".into())],
///     ..TrackedRun::default()
/// };
/// match tracker.track_run_async(run).await {
///     Ok(Some(mlflow_run_id)) => tracing::info!(%mlflow_run_id, "run tracked in mlflow"),
///     Ok(None) => {} // MLFLOW_TRACKING_URI is unset
///     Err(err) => tracing::warn!("tracking skipped: {err}"),
/// }
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Tracker {
    state: State,
}

#[derive(Debug, Clone)]
enum State {
    Off,
    On(MlflowClient),
    /// `MLFLOW_TRACKING_URI` is set but unusable; every call reports why.
    Misconfigured(MlflowError),
}

impl Tracker {
    /// A tracker configured by the `MLFLOW_*` variables ([`MlflowConfig::from_env`]). Never fails:
    /// a configuration error is returned by each call instead, so it reaches the caller's warning.
    pub fn from_env() -> Tracker {
        match MlflowConfig::from_env() {
            Ok(Some(config)) => Tracker::new(config),
            Ok(None) => Tracker::disabled(),
            Err(err) => Tracker {
                state: State::Misconfigured(err),
            },
        }
    }

    pub fn new(config: MlflowConfig) -> Tracker {
        Tracker {
            state: State::On(MlflowClient::new(config)),
        }
    }

    /// A tracker that does nothing.
    pub fn disabled() -> Tracker {
        Tracker { state: State::Off }
    }

    /// Whether tracking was asked for (`MLFLOW_TRACKING_URI` set), usable or not.
    pub fn is_enabled(&self) -> bool {
        !matches!(self.state, State::Off)
    }

    /// The client, when tracking is on and configured.
    pub fn client(&self) -> Option<&MlflowClient> {
        match &self.state {
            State::On(client) => Some(client),
            _ => None,
        }
    }

    fn active_client(&self) -> Result<Option<&MlflowClient>, MlflowError> {
        match &self.state {
            State::Off => Ok(None),
            State::On(client) => Ok(Some(client)),
            State::Misconfigured(err) => Err(err.clone()),
        }
    }

    /// Records a finished run in the configured experiment (created if missing): tags at
    /// creation, then params and metrics in batches, then the artifacts, then status `FINISHED`.
    /// Returns MLflow's run id, or `None` when tracking is off. Blocking.
    pub fn track_run(&self, run: &TrackedRun) -> Result<Option<String>, MlflowError> {
        let Some(client) = self.active_client()? else {
            return Ok(None);
        };
        let uri = client.tracking_uri();
        for (path, _) in &run.artifacts {
            check_artifact_path(path).map_err(|m| MlflowError::invalid(uri, "artifacts of the run", m))?;
        }
        let experiment = client.get_or_create_experiment(&client.config().experiment_name)?;
        let ours = run.our_tags();
        let info = client.create_run(&experiment.experiment_id, &run.name, &ours)?;
        let extra_tags: Vec<(String, String)> = run
            .tags
            .iter()
            .filter(|(k, _)| k != "mlflow.runName" && !ours.iter().any(|(ok, _)| ok == k))
            .cloned()
            .collect();
        let metrics: Vec<MetricPoint> = run
            .metrics
            .iter()
            .map(|(k, v)| MetricPoint::now(k.clone(), *v))
            .collect();
        let logged = client
            .log_batch(&info.run_id, &run.params, &metrics, &extra_tags)
            .and_then(|()| {
                run.artifacts
                    .iter()
                    .try_for_each(|(path, bytes)| client.upload_artifact(&info, path, bytes))
            });
        match logged {
            Ok(()) => {
                client.set_terminated(&info.run_id, RunStatus::Finished)?;
                tracing::debug!(mlflow_run_id = %info.run_id, uri, "run tracked in mlflow");
                Ok(Some(info.run_id))
            }
            Err(err) => {
                // Best effort: the server may be the reason we failed.
                let _ = client.set_terminated(&info.run_id, RunStatus::Failed);
                Err(err)
            }
        }
    }

    /// Registers `source` (where the model's files are, e.g. `s3://bucket/models/wine/3`) as a new
    /// version of model `name` (created if missing), linked to MLflow run `run_id`, and points
    /// `alias` at it. Returns MLflow's version number, or `None` when tracking is off. Blocking.
    ///
    /// MLflow numbers versions itself; they need not match Wasmline's.
    pub fn register_model(
        &self,
        name: &str,
        source: &str,
        run_id: Option<&str>,
        alias: Option<&str>,
    ) -> Result<Option<String>, MlflowError> {
        let Some(client) = self.active_client()? else {
            return Ok(None);
        };
        client.create_registered_model(name)?;
        let version = client.create_model_version(name, source, run_id, &[])?;
        if let Some(alias) = alias {
            client.set_registered_model_alias(name, alias, &version.version)?;
        }
        Ok(Some(version.version))
    }

    /// [`Tracker::track_run`] on tokio's blocking pool.
    pub async fn track_run_async(&self, run: TrackedRun) -> Result<Option<String>, MlflowError> {
        let tracker = self.clone();
        blocking(move || tracker.track_run(&run)).await
    }

    /// [`Tracker::register_model`] on tokio's blocking pool.
    pub async fn register_model_async(
        &self,
        name: String,
        source: String,
        run_id: Option<String>,
        alias: Option<String>,
    ) -> Result<Option<String>, MlflowError> {
        let tracker = self.clone();
        blocking(move || tracker.register_model(&name, &source, run_id.as_deref(), alias.as_deref())).await
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(f).await {
        Ok(value) => value,
        // A panic in a tracker call is a bug: let it through.
        Err(err) => std::panic::resume_unwind(err.into_panic()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_disabled_tracker_does_nothing() {
        let tracker = Tracker::disabled();
        assert!(!tracker.is_enabled());
        let run = TrackedRun {
            name: "r".into(),
            ..TrackedRun::default()
        };
        assert_eq!(tracker.track_run(&run).unwrap(), None);
        assert_eq!(
            tracker
                .register_model("m", "s3://b/m/1", None, Some("production"))
                .unwrap(),
            None
        );
    }

    #[test]
    fn a_misconfigured_tracker_reports_on_every_call() {
        let err = MlflowConfig::new("file:///tmp/mlruns").unwrap_err();
        let tracker = Tracker {
            state: State::Misconfigured(err.clone()),
        };
        assert!(tracker.is_enabled());
        assert_eq!(tracker.track_run(&TrackedRun::default()).unwrap_err(), err);
        assert_eq!(tracker.register_model("m", "s3://b/m/1", None, None).unwrap_err(), err);
    }

    #[test]
    fn our_tags_skip_unknown_values() {
        let run = TrackedRun {
            run_id: "r1".into(),
            dataset: Some("wine".into()),
            git_commit: Some("abc".into()),
            ..TrackedRun::default()
        };
        assert_eq!(
            run.our_tags(),
            [
                (TAG_RUN_ID.to_owned(), "r1".to_owned()),
                (TAG_DATASET.to_owned(), "wine".to_owned()),
                (TAG_GIT_COMMIT.to_owned(), "abc".to_owned()),
            ]
        );
    }
}
