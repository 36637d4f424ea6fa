use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::error::shorten;
use super::{MlflowConfig, MlflowError};

/// Most params (and, separately, tags) in one `runs/log-batch` request.
pub(super) const MAX_PARAMS_PER_BATCH: usize = 100;
/// Most tags in one `runs/log-batch` request.
pub(super) const MAX_TAGS_PER_BATCH: usize = 100;
/// Most metrics in one `runs/log-batch` request.
pub(super) const MAX_METRICS_PER_BATCH: usize = 1000;
/// Most params, metrics and tags together in one `runs/log-batch` request.
pub(super) const MAX_ENTITIES_PER_BATCH: usize = 1000;
/// Longest param value, in characters; longer values are cut to it (as MLflow's server does).
pub(super) const MAX_PARAM_VALUE_CHARS: usize = 6000;
/// Longest tag value, in characters; longer values are cut to it (as MLflow's server does).
pub(super) const MAX_TAG_VALUE_CHARS: usize = 8000;
/// MLflow refuses `log-batch` bodies over 1 MB; batches stay under this many bytes.
const MAX_BATCH_BYTES: usize = 900_000;
/// Longest server message kept in an error (MLflow echoes whole rejected values).
const MAX_MESSAGE_CHARS: usize = 500;

/// A metric value at a step.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricPoint {
    pub key: String,
    /// NaN and infinities are sent as MLflow expects them (`"NaN"`, `"Infinity"`); MLflow stores
    /// infinities as the largest finite double.
    pub value: f64,
    /// Milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
    pub step: i64,
}

impl MetricPoint {
    /// A metric at step 0, timestamped now.
    pub fn now(key: impl Into<String>, value: f64) -> MetricPoint {
        MetricPoint {
            key: key.into(),
            value,
            timestamp_ms: now_ms(),
            step: 0,
        }
    }
}

/// An MLflow experiment.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Experiment {
    pub experiment_id: String,
    pub name: String,
    #[serde(default)]
    pub artifact_location: String,
    /// `active` or `deleted`.
    #[serde(default)]
    pub lifecycle_stage: String,
}

/// What MLflow says about a run.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RunInfo {
    pub run_id: String,
    pub experiment_id: String,
    #[serde(default)]
    pub run_name: String,
    /// `mlflow-artifacts:/{experiment}/{run}/artifacts` when the server proxies artifacts.
    #[serde(default)]
    pub artifact_uri: String,
    /// `RUNNING`, `FINISHED`, `FAILED`, `KILLED`, `SCHEDULED`.
    #[serde(default)]
    pub status: String,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    Finished,
    Failed,
    Killed,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Finished => "FINISHED",
            RunStatus::Failed => "FAILED",
            RunStatus::Killed => "KILLED",
        }
    }
}

/// A version of a registered model.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ModelVersion {
    pub name: String,
    /// MLflow's version number, as the decimal string its API uses.
    pub version: String,
    #[serde(default)]
    pub source: String,
    #[serde(default)]
    pub run_id: String,
    /// `READY`, `PENDING_REGISTRATION` or `FAILED_REGISTRATION`.
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub aliases: Vec<String>,
}

/// A blocking client for MLflow's REST API (tracking, proxied artifacts, model registry).
///
/// Every call is one or a few HTTP requests bounded by the config's timeouts; from async code run
/// it in `tokio::task::spawn_blocking`. The client is cheap to clone (connections are pooled and
/// shared).
#[derive(Debug, Clone)]
pub struct MlflowClient {
    config: MlflowConfig,
    agent: ureq::Agent,
    authorization: Option<String>,
}

impl MlflowClient {
    pub fn new(config: MlflowConfig) -> MlflowClient {
        let agent = ureq::Agent::config_builder()
            .timeout_connect(Some(config.connect_timeout))
            .timeout_global(Some(config.request_timeout))
            .http_status_as_error(false)
            .user_agent(concat!("wasmline/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        MlflowClient {
            authorization: config.auth.header_value(),
            config,
            agent,
        }
    }

    pub fn config(&self) -> &MlflowConfig {
        &self.config
    }

    pub fn tracking_uri(&self) -> &str {
        self.config.tracking_uri()
    }

    /// The experiment called `name`, deleted or not; `None` when there is none.
    pub fn get_experiment_by_name(&self, name: &str) -> Result<Option<Experiment>, MlflowError> {
        #[derive(Deserialize)]
        struct Answer {
            experiment: Experiment,
        }
        let answer: Result<Answer, _> =
            self.get("/api/2.0/mlflow/experiments/get-by-name", &[("experiment_name", name)]);
        match answer {
            Ok(a) => Ok(Some(a.experiment)),
            Err(e) if e.error_code() == Some("RESOURCE_DOES_NOT_EXIST") => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The active experiment called `name`, created if missing. A deleted experiment of that name
    /// is an error (MLflow keeps the name taken until the experiment is purged).
    pub fn get_or_create_experiment(&self, name: &str) -> Result<Experiment, MlflowError> {
        let call = "POST /api/2.0/mlflow/experiments/create";
        if name.trim().is_empty() {
            return Err(MlflowError::invalid(
                self.tracking_uri(),
                call,
                "the experiment name is empty",
            ));
        }
        for _ in 0..2 {
            if let Some(experiment) = self.get_experiment_by_name(name)? {
                if experiment.lifecycle_stage == "deleted" {
                    return Err(MlflowError::invalid(
                        self.tracking_uri(),
                        call,
                        format!(
                            "experiment '{name}' (id {}) is deleted: restore it (`mlflow experiments restore \
                             --experiment-id {}`) or choose another MLFLOW_EXPERIMENT_NAME",
                            experiment.experiment_id, experiment.experiment_id
                        ),
                    ));
                }
                return Ok(experiment);
            }
            match self.post::<Value>("/api/2.0/mlflow/experiments/create", &json!({ "name": name })) {
                // Read it back for its artifact location.
                Ok(_) => continue,
                // Someone else created it between our two calls.
                Err(e) if e.error_code() == Some("RESOURCE_ALREADY_EXISTS") => continue,
                Err(e) => return Err(e),
            }
        }
        Err(MlflowError::bad_response(
            self.tracking_uri(),
            call,
            format!("experiment '{name}' was created but cannot be read back"),
        ))
    }

    /// Starts a run named `run_name` (also the `mlflow.runName` tag, which older servers need) in
    /// an experiment, with tags. An empty name lets MLflow make one up (`auspicious-jay-505`).
    pub fn create_run(
        &self,
        experiment_id: &str,
        run_name: &str,
        tags: &[(String, String)],
    ) -> Result<RunInfo, MlflowError> {
        let mut all_tags: Vec<Value> = Vec::with_capacity(tags.len() + 1);
        if !run_name.is_empty() && !tags.iter().any(|(k, _)| k == "mlflow.runName") {
            all_tags.push(tag_json("mlflow.runName", run_name));
        }
        all_tags.extend(tags.iter().map(|(k, v)| tag_json(k, v)));
        let mut body = json!({
            "experiment_id": experiment_id,
            "start_time": now_ms(),
            "tags": all_tags,
        });
        if !run_name.is_empty() {
            body["run_name"] = json!(run_name);
        }
        let answer: RunAnswer = self.post("/api/2.0/mlflow/runs/create", &body)?;
        Ok(answer.run.info)
    }

    pub fn get_run(&self, run_id: &str) -> Result<RunInfo, MlflowError> {
        let answer: RunAnswer = self.get("/api/2.0/mlflow/runs/get", &[("run_id", run_id)])?;
        Ok(answer.run.info)
    }

    /// Logs params, metrics and tags to a run, in as many `runs/log-batch` requests as MLflow's
    /// limits need (100 params, 100 tags, 1000 metrics, 1000 entities, 1 MB per request). Param
    /// values over 6000 characters and tag values over 8000 are cut to that length. Params cannot
    /// change once logged: logging a key again with another value is an error. Batches are sent
    /// in order; on an error the earlier ones stay logged.
    pub fn log_batch(
        &self,
        run_id: &str,
        params: &[(String, String)],
        metrics: &[MetricPoint],
        tags: &[(String, String)],
    ) -> Result<(), MlflowError> {
        for batch in split_batches(params, metrics, tags) {
            let body = json!({
                "run_id": run_id,
                "params": batch.params,
                "metrics": batch.metrics,
                "tags": batch.tags,
            });
            self.post::<Value>("/api/2.0/mlflow/runs/log-batch", &body)?;
        }
        Ok(())
    }

    /// Stores `bytes` at `path_in_run` (`reports/validation.md`) among a run's artifacts, through
    /// the server's artifact proxy (`PUT /api/2.0/mlflow-artifacts/artifacts/...`). The run's
    /// artifact URI must be `mlflow-artifacts:/...`, which it is when the server proxies artifacts
    /// (`mlflow server --artifacts-destination ...`, the default since MLflow 2); otherwise the
    /// error says so.
    pub fn upload_artifact(&self, run: &RunInfo, path_in_run: &str, bytes: &[u8]) -> Result<(), MlflowError> {
        let call = format!("PUT artifact {path_in_run:?} of run {}", run.run_id);
        check_artifact_path(path_in_run).map_err(|m| MlflowError::invalid(self.tracking_uri(), &call, m))?;
        let root = proxied_artifact_root(&run.artifact_uri).ok_or_else(|| {
            MlflowError::invalid(
                self.tracking_uri(),
                &call,
                format!(
                    "the run's artifact URI is '{}', not mlflow-artifacts:/...: the server does not proxy \
                     artifacts (start it with --artifacts-destination, without --no-serve-artifacts)",
                    run.artifact_uri
                ),
            )
        })?;
        let endpoint = format!(
            "/api/2.0/mlflow-artifacts/artifacts/{}/{}",
            encode_path(root),
            encode_path(path_in_run)
        );
        self.send("PUT", &endpoint, &[], Some(("application/octet-stream", bytes)))?;
        Ok(())
    }

    /// Ends a run with `status` and the current time.
    pub fn set_terminated(&self, run_id: &str, status: RunStatus) -> Result<(), MlflowError> {
        let body = json!({ "run_id": run_id, "status": status.as_str(), "end_time": now_ms() });
        self.post::<Value>("/api/2.0/mlflow/runs/update", &body)?;
        Ok(())
    }

    /// Creates a registered model; `Ok(false)` when it already exists.
    pub fn create_registered_model(&self, name: &str) -> Result<bool, MlflowError> {
        match self.post::<Value>("/api/2.0/mlflow/registered-models/create", &json!({ "name": name })) {
            Ok(_) => Ok(true),
            Err(e) if e.error_code() == Some("RESOURCE_ALREADY_EXISTS") => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Adds a version to a registered model. `source` is where the model's files are: any
    /// `s3://`, `gs://`, `http(s)://` URI; an `mlflow-artifacts:/`, `runs:/` or local source only
    /// inside the artifacts of the run given as `run_id` (MLflow 3 refuses it otherwise). Returns
    /// the new version (MLflow numbers them 1, 2, ...).
    pub fn create_model_version(
        &self,
        name: &str,
        source: &str,
        run_id: Option<&str>,
        tags: &[(String, String)],
    ) -> Result<ModelVersion, MlflowError> {
        #[derive(Deserialize)]
        struct Answer {
            model_version: ModelVersion,
        }
        let mut body = json!({
            "name": name,
            "source": source,
            "tags": tags.iter().map(|(k, v)| json!({ "key": k, "value": v })).collect::<Vec<_>>(),
        });
        if let Some(run_id) = run_id {
            body["run_id"] = json!(run_id);
        }
        let answer: Answer = self.post("/api/2.0/mlflow/model-versions/create", &body)?;
        Ok(answer.model_version)
    }

    /// Points `alias` (`production`) at `version`, moving it from whichever version had it.
    /// MLflow reserves aliases of the form `v1`, `v2`, ... and `latest`.
    pub fn set_registered_model_alias(&self, name: &str, alias: &str, version: &str) -> Result<(), MlflowError> {
        let body = json!({ "name": name, "alias": alias, "version": version });
        self.post::<Value>("/api/2.0/mlflow/registered-models/alias", &body)?;
        Ok(())
    }

    /// The version behind `alias`; `None` when the model or the alias does not exist.
    pub fn get_model_version_by_alias(&self, name: &str, alias: &str) -> Result<Option<ModelVersion>, MlflowError> {
        #[derive(Deserialize)]
        struct Answer {
            model_version: ModelVersion,
        }
        let answer: Result<Answer, _> = self.get(
            "/api/2.0/mlflow/registered-models/alias",
            &[("name", name), ("alias", alias)],
        );
        match answer {
            Ok(a) => Ok(Some(a.model_version)),
            Err(e) if e.error_code() == Some("RESOURCE_DOES_NOT_EXIST") => Ok(None),
            // A missing alias of an existing model is a 400 INVALID_PARAMETER_VALUE ("Registered
            // model alias production not found."), not a 404.
            Err(MlflowError::Http {
                error_code, message, ..
            }) if error_code == "INVALID_PARAMETER_VALUE" && message.contains("not found") => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn get<T: DeserializeOwned>(&self, endpoint: &str, query: &[(&str, &str)]) -> Result<T, MlflowError> {
        let text = self.send("GET", endpoint, query, None)?;
        self.parse(&format!("GET {endpoint}"), &text)
    }

    fn post<T: DeserializeOwned>(&self, endpoint: &str, body: &Value) -> Result<T, MlflowError> {
        let body = serde_json::to_vec(body).expect("JSON values serialise");
        let text = self.send("POST", endpoint, &[], Some(("application/json", &body)))?;
        self.parse(&format!("POST {endpoint}"), &text)
    }

    fn parse<T: DeserializeOwned>(&self, call: &str, text: &str) -> Result<T, MlflowError> {
        serde_json::from_str(text).map_err(|e| {
            MlflowError::bad_response(self.tracking_uri(), call, format!("{e} in {:?}", shorten(text, 200)))
        })
    }

    /// One request; the body of a 2xx answer, or an error naming the call.
    fn send(
        &self,
        method: &str,
        endpoint: &str,
        query: &[(&str, &str)],
        body: Option<(&str, &[u8])>,
    ) -> Result<String, MlflowError> {
        let call = format!("{method} {endpoint}");
        let uri = self.tracking_uri();
        let mut url = format!("{uri}{endpoint}");
        for (i, (k, v)) in query.iter().enumerate() {
            url.push(if i == 0 { '?' } else { '&' });
            url.push_str(&encode_component(k));
            url.push('=');
            url.push_str(&encode_component(v));
        }
        let mut request = ureq::http::Request::builder().method(method).uri(&url);
        if let Some(value) = &self.authorization {
            request = request.header("authorization", value);
        }
        if let Some((content_type, _)) = body {
            request = request.header("content-type", content_type);
        }
        let request = request
            .body(body.map_or(&[][..], |(_, bytes)| bytes))
            .map_err(|e| MlflowError::invalid(uri, &call, e.to_string()))?;
        let mut response = self
            .agent
            .run(request)
            .map_err(|e| MlflowError::transport(uri, &call, e))?;
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .with_config()
            .limit(64 * 1024 * 1024)
            .read_to_string()
            .map_err(|e| MlflowError::transport(uri, &call, e))?;
        if (200..300).contains(&status) {
            return Ok(text);
        }
        #[derive(Deserialize)]
        struct ErrorBody {
            #[serde(default)]
            error_code: String,
            #[serde(default)]
            message: String,
        }
        let (error_code, message) = match serde_json::from_str::<ErrorBody>(&text) {
            Ok(body) => (body.error_code, shorten(&body.message, MAX_MESSAGE_CHARS)),
            Err(_) => (String::new(), shorten(&text, MAX_MESSAGE_CHARS)),
        };
        Err(MlflowError::Http {
            uri: uri.to_owned(),
            call,
            status,
            error_code,
            message,
        })
    }
}

/// One `log-batch` request's entities, as MLflow's JSON.
#[derive(Debug, Default)]
struct Batch {
    params: Vec<Value>,
    metrics: Vec<Value>,
    tags: Vec<Value>,
    bytes: usize,
}

enum Entity {
    Param,
    Metric,
    Tag,
}

/// Packs entities, in order, into as few batches as MLflow's limits allow.
fn split_batches(params: &[(String, String)], metrics: &[MetricPoint], tags: &[(String, String)]) -> Vec<Batch> {
    let entities = params
        .iter()
        .map(|(k, v)| {
            (
                Entity::Param,
                json!({ "key": k, "value": cut(v, MAX_PARAM_VALUE_CHARS) }),
            )
        })
        .chain(metrics.iter().map(|m| (Entity::Metric, metric_json(m))))
        .chain(tags.iter().map(|(k, v)| (Entity::Tag, tag_json(k, v))));
    let mut batches = Vec::new();
    let mut batch = Batch::default();
    for (kind, value) in entities {
        let size = serde_json::to_string(&value).map_or(0, |s| s.len()) + 1;
        let full = match kind {
            Entity::Param => batch.params.len() >= MAX_PARAMS_PER_BATCH,
            Entity::Metric => batch.metrics.len() >= MAX_METRICS_PER_BATCH,
            Entity::Tag => batch.tags.len() >= MAX_TAGS_PER_BATCH,
        } || batch.params.len() + batch.metrics.len() + batch.tags.len() >= MAX_ENTITIES_PER_BATCH
            || batch.bytes + size > MAX_BATCH_BYTES;
        if full && batch.bytes > 0 {
            batches.push(std::mem::take(&mut batch));
        }
        batch.bytes += size;
        match kind {
            Entity::Param => batch.params.push(value),
            Entity::Metric => batch.metrics.push(value),
            Entity::Tag => batch.tags.push(value),
        }
    }
    if batch.bytes > 0 {
        batches.push(batch);
    }
    batches
}

fn tag_json(key: &str, value: &str) -> Value {
    json!({ "key": key, "value": cut(value, MAX_TAG_VALUE_CHARS) })
}

fn metric_json(metric: &MetricPoint) -> Value {
    // Protobuf's JSON mapping spells non-finite doubles as strings; serde_json would write null.
    let value = if metric.value.is_nan() {
        json!("NaN")
    } else if metric.value == f64::INFINITY {
        json!("Infinity")
    } else if metric.value == f64::NEG_INFINITY {
        json!("-Infinity")
    } else {
        json!(metric.value)
    };
    json!({ "key": metric.key, "value": value, "timestamp": metric.timestamp_ms, "step": metric.step })
}

/// The first `max` characters of `s`.
fn cut(s: &str, max: usize) -> &str {
    s.char_indices().nth(max).map_or(s, |(end, _)| &s[..end])
}

pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The path under the artifact proxy of an `mlflow-artifacts:` URI (`mlflow-artifacts:/1/abc/artifacts`
/// or `mlflow-artifacts://host:port/1/abc/artifacts`; the host, if any, is the tracking server).
fn proxied_artifact_root(artifact_uri: &str) -> Option<&str> {
    let rest = artifact_uri.strip_prefix("mlflow-artifacts:")?;
    let path = match rest.strip_prefix("//") {
        Some(authority_and_path) => &authority_and_path[authority_and_path.find('/')?..],
        None => rest,
    };
    let path = path.trim_matches('/');
    (!path.is_empty()).then_some(path)
}

/// A relative `/`-separated path with no empty, `.` or `..` segments. The artifact proxy would
/// write outside the run's directory otherwise.
pub(crate) fn check_artifact_path(path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Err("the artifact path is empty".to_owned());
    }
    if path.contains('\\') || path.split('/').any(|s| s.is_empty() || s == "." || s == "..") {
        return Err(format!(
            "artifact path {path:?} must be relative, with '/' between non-empty names and no '.' or '..'"
        ));
    }
    Ok(())
}

/// Percent-encodes a query component or path segment (everything but RFC 3986 unreserved bytes).
fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Percent-encodes each segment of a `/`-separated path.
fn encode_path(path: &str) -> String {
    path.split('/').map(encode_component).collect::<Vec<_>>().join("/")
}

/// MLflow's answer to `runs/create` and `runs/get`: `{"run": {"info": ...}}`.
#[derive(Deserialize)]
struct RunAnswer {
    run: RunEnvelope,
}

#[derive(Deserialize)]
struct RunEnvelope {
    info: RunInfo,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(n: usize, value_len: usize) -> Vec<(String, String)> {
        (0..n).map(|i| (format!("p{i}"), "x".repeat(value_len))).collect()
    }

    fn metrics(n: usize) -> Vec<MetricPoint> {
        (0..n).map(|i| MetricPoint::now(format!("m{i}"), i as f64)).collect()
    }

    fn counts(batches: &[Batch]) -> Vec<(usize, usize, usize)> {
        batches
            .iter()
            .map(|b| (b.params.len(), b.metrics.len(), b.tags.len()))
            .collect()
    }

    #[test]
    fn batches_respect_the_count_limits() {
        assert!(split_batches(&[], &[], &[]).is_empty());
        assert_eq!(counts(&split_batches(&params(100, 1), &[], &[])), [(100, 0, 0)]);
        assert_eq!(
            counts(&split_batches(&params(250, 1), &[], &[])),
            [(100, 0, 0), (100, 0, 0), (50, 0, 0)]
        );
        assert_eq!(
            counts(&split_batches(&params(50, 1), &metrics(1200), &params(150, 1))),
            [(50, 950, 0), (0, 250, 100), (0, 0, 50)]
        );
    }

    #[test]
    fn batches_stay_under_a_megabyte() {
        // 100 params of 6000 characters and 100 tags of 8000: within the count limits, 1.4 MB.
        let batches = split_batches(&params(100, 6000), &[], &params(100, 8000));
        assert!(batches.len() >= 2, "{:?}", counts(&batches));
        assert!(batches.iter().all(|b| b.bytes <= MAX_BATCH_BYTES));
        let total: usize = batches.iter().map(|b| b.params.len() + b.tags.len()).sum();
        assert_eq!(total, 200);
    }

    #[test]
    fn long_values_are_cut_on_a_char_boundary() {
        let batches = split_batches(
            &[("p".to_owned(), "é".repeat(7000))],
            &[],
            &[("t".to_owned(), "x".repeat(9000))],
        );
        let param = batches[0].params[0]["value"].as_str().unwrap();
        assert_eq!(param.chars().count(), MAX_PARAM_VALUE_CHARS);
        let tag = batches[0].tags[0]["value"].as_str().unwrap();
        assert_eq!(tag.len(), MAX_TAG_VALUE_CHARS);
    }

    #[test]
    fn non_finite_metrics_use_protobuf_spellings() {
        let json = |v: f64| {
            metric_json(&MetricPoint {
                key: "k".into(),
                value: v,
                timestamp_ms: 1,
                step: 2,
            })["value"]
                .clone()
        };
        assert_eq!(json(f64::NAN), "NaN");
        assert_eq!(json(f64::INFINITY), "Infinity");
        assert_eq!(json(f64::NEG_INFINITY), "-Infinity");
        assert_eq!(json(0.25), 0.25);
    }

    #[test]
    fn artifact_roots_and_paths() {
        assert_eq!(
            proxied_artifact_root("mlflow-artifacts:/1/abc/artifacts"),
            Some("1/abc/artifacts")
        );
        assert_eq!(
            proxied_artifact_root("mlflow-artifacts://mlflow:5000/1/abc/artifacts/"),
            Some("1/abc/artifacts")
        );
        assert_eq!(proxied_artifact_root("s3://bucket/1/abc/artifacts"), None);
        assert_eq!(proxied_artifact_root("/srv/mlruns/1/abc/artifacts"), None);

        assert!(check_artifact_path("reports/validation report.md").is_ok());
        for bad in ["", "/etc/passwd", "a//b", "../x", "a/./b", "a/", "a\\b"] {
            assert!(check_artifact_path(bad).is_err(), "{bad:?}");
        }
        assert_eq!(encode_path("reports/a b+é.md"), "reports/a%20b%2B%C3%A9.md");
    }
}
