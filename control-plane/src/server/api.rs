//! The REST API's reads (models, runs, datasets) and the registry's writes (aliases), under
//! `/api/v1`. Reads are public; writes need the admin token.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{Html, IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{ApiError, ApiJson, AppState, ErrorBody};
use crate::dataset::{DatasetRecord, load_dataset, versions as dataset_versions};
use crate::registry::{self, AliasLogEntry, AliasRecord, Manifest};
use crate::store::{ErrorKind, Key};

// ---------------------------------------------------------------- models

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub(super) struct ModelSummary {
    pub name: String,
    pub latest_version: u64,
    pub versions: Vec<u64>,
    /// Alias -> version.
    pub aliases: BTreeMap<String, u64>,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub(super) struct ModelList {
    pub models: Vec<ModelSummary>,
    /// Records that could not be read, left out of the list (the others are listed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<Skipped>,
}

/// A record a list route left out, and why.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub(super) struct Skipped {
    pub name: String,
    pub reason: String,
}

impl Skipped {
    /// Logs the full error; the answer names the record and the error's outermost context only.
    fn of(what: &str, name: &str, e: &anyhow::Error) -> Skipped {
        tracing::warn!(what, name, error = format!("{e:#}"), "left out of a list: unreadable");
        Skipped {
            name: name.to_owned(),
            reason: format!("unreadable {what}: {e}"),
        }
    }
}

#[utoipa::path(get, path = "/api/v1/models", tag = "models", responses((status = 200, description = "Every registered model with its versions and aliases", body = ModelList)))]
pub async fn list_models(State(state): State<AppState>) -> Result<Json<ModelList>, ApiError> {
    let store = state.store();
    let mut models = Vec::new();
    let mut skipped = Vec::new();
    for name in registry::list_models(store).await? {
        let summary = async {
            let versions = registry::list_versions(store, &name).await?;
            let aliases = registry::list_aliases(store, &name)
                .await?
                .into_iter()
                .map(|(alias, r)| (alias, r.version))
                .collect();
            anyhow::Ok(ModelSummary {
                latest_version: versions.last().copied().unwrap_or_default(),
                name: name.clone(),
                versions,
                aliases,
            })
        };
        match summary.await {
            Ok(summary) => models.push(summary),
            Err(e) => skipped.push(Skipped::of("model", &name, &e)),
        }
    }
    Ok(Json(ModelList { models, skipped }))
}

/// One version as the model page lists it (the manifest without its bulky members).
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct VersionSummary {
    pub version: u64,
    pub family: String,
    pub task: Value,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub run_id: String,
    pub dataset: Value,
    pub params: BTreeMap<String, Value>,
    pub metrics: BTreeMap<String, f64>,
    pub selection_metric: String,
}

impl VersionSummary {
    fn of(m: &Manifest) -> VersionSummary {
        VersionSummary {
            version: m.version,
            family: m.family.clone(),
            task: serde_json::to_value(m.task).unwrap_or(Value::Null),
            created_at: m.created_at,
            run_id: m.run_id.clone(),
            dataset: serde_json::to_value(&m.dataset).unwrap_or(Value::Null),
            params: m.params.clone(),
            metrics: m.metrics.clone(),
            selection_metric: m.selection_metric.name().to_owned(),
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub(super) struct ModelDetail {
    pub name: String,
    pub versions: Vec<VersionSummary>,
    pub aliases: BTreeMap<String, AliasRecord>,
}

#[utoipa::path(get, path = "/api/v1/models/{name}", tag = "models", params(("name" = String, Path, description = "Model name")), responses((status = 200, description = "Versions (metrics, lineage) and aliases with history", body = serde_json::Value), (status = 404, description = "Unknown model", body = ErrorBody)))]
pub(super) async fn show_model(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<ModelDetail>, ApiError> {
    let store = state.store();
    let numbers = registry::list_versions(store, &name).await?;
    if numbers.is_empty() {
        return Err(ApiError::not_found(format!("model '{name}' does not exist")));
    }
    let mut versions = Vec::new();
    for v in numbers {
        versions.push(VersionSummary::of(&registry::load_version(store, &name, v).await?));
    }
    let aliases = registry::list_aliases(store, &name).await?;
    Ok(Json(ModelDetail {
        name,
        versions,
        aliases,
    }))
}

#[utoipa::path(get, path = "/api/v1/models/{name}/versions/{version}", tag = "models", params(("name" = String, Path), ("version" = u64, Path)), responses((status = 200, description = "The signed manifest", body = serde_json::Value), (status = 404, description = "Unknown model or version", body = ErrorBody)))]
pub(super) async fn show_version(
    State(state): State<AppState>,
    Path((name, version)): Path<(String, String)>,
) -> Result<Json<Manifest>, ApiError> {
    let version = parse_version(&version)?;
    Ok(Json(registry::load_version(state.store(), &name, version).await?))
}

pub(super) fn parse_version(version: &str) -> Result<u64, ApiError> {
    version
        .parse()
        .map_err(|_| ApiError::bad_request(format!("version '{version}' is not a number")))
}

#[utoipa::path(get, path = "/api/v1/models/{name}/aliases", tag = "aliases", params(("name" = String, Path)), responses((status = 200, description = "Alias to record with history", body = serde_json::Value), (status = 404, description = "Unknown model", body = ErrorBody)))]
pub(super) async fn list_aliases(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<BTreeMap<String, AliasRecord>>, ApiError> {
    if registry::list_versions(state.store(), &name).await?.is_empty() {
        return Err(ApiError::not_found(format!("model '{name}' does not exist")));
    }
    Ok(Json(registry::list_aliases(state.store(), &name).await?))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct SetAlias {
    pub version: u64,
}

/// `PUT /api/v1/models/{name}/aliases/{alias}` (admin): points the alias at a version whose
/// manifest and artifacts verify.
#[utoipa::path(put, path = "/api/v1/models/{name}/aliases/{alias}", tag = "aliases", params(("name" = String, Path), ("alias" = String, Path)), request_body = SetAlias, security(("admin" = [])), responses((status = 200, description = "The alias record", body = serde_json::Value), (status = 401, description = "Missing or wrong admin token", body = ErrorBody), (status = 404, description = "Unknown model or version", body = ErrorBody)))]
pub(super) async fn set_alias(
    State(state): State<AppState>,
    Path((name, alias)): Path<(String, String)>,
    headers: HeaderMap,
    body: Result<ApiJson<SetAlias>, ApiError>,
) -> Result<Json<AliasRecord>, ApiError> {
    state.check_admin(&headers)?;
    let ApiJson(SetAlias { version }) = body?;
    let record = registry::set_alias(state.store(), &name, &alias, version, "api").await?;
    Ok(Json(record))
}

/// `POST /api/v1/models/{name}/aliases/{alias}/rollback` (admin).
#[utoipa::path(post, path = "/api/v1/models/{name}/aliases/{alias}/rollback", tag = "aliases", params(("name" = String, Path), ("alias" = String, Path)), security(("admin" = [])), responses((status = 200, description = "The alias record after the rollback", body = serde_json::Value), (status = 401, description = "Missing or wrong admin token", body = ErrorBody), (status = 409, description = "Nothing to roll back to", body = ErrorBody)))]
pub(super) async fn rollback_alias(
    State(state): State<AppState>,
    Path((name, alias)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Json<AliasRecord>, ApiError> {
    state.check_admin(&headers)?;
    Ok(Json(registry::rollback(state.store(), &name, &alias, "api").await?))
}

#[derive(Debug, Serialize, Deserialize)]
pub(super) struct AliasLog {
    pub transitions: Vec<AliasLogEntry>,
}

/// `GET /api/v1/models/{name}/aliases/{alias}/log`: every move of the alias, oldest first (the
/// record's `history` keeps the last 50; the log keeps them all).
#[utoipa::path(get, path = "/api/v1/models/{name}/aliases/{alias}/log", tag = "aliases", params(("name" = String, Path), ("alias" = String, Path)), responses((status = 200, description = "Every transition of the alias: {transition, from, version, updated_at, by}", body = serde_json::Value), (status = 404, description = "Unknown model or alias", body = ErrorBody)))]
pub(super) async fn alias_log(
    State(state): State<AppState>,
    Path((name, alias)): Path<(String, String)>,
) -> Result<Json<AliasLog>, ApiError> {
    let store = state.store();
    if registry::get_alias(store, &name, &alias).await?.is_none() {
        return Err(ApiError::not_found(format!("model '{name}' has no alias '{alias}'")));
    }
    Ok(Json(AliasLog {
        transitions: registry::alias_log(store, &name, &alias).await?,
    }))
}

// ---------------------------------------------------------------- runs

#[derive(Debug, Deserialize)]
pub(super) struct RunFilter {
    /// `pipeline` or `candidate`.
    kind: Option<String>,
    status: Option<String>,
    dataset: Option<String>,
    /// The runs of one pipeline run (its candidates).
    parent: Option<String>,
    limit: Option<usize>,
}

#[derive(Debug, Serialize, Deserialize)]
pub(super) struct RunList {
    pub runs: Vec<Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<Skipped>,
}

/// Every `runs/{id}/run.json`, newest first, with their metrics flattened into `metrics`.
#[utoipa::path(get, path = "/api/v1/runs", tag = "runs", params(("kind" = Option<String>, Query), ("status" = Option<String>, Query), ("dataset" = Option<String>, Query), ("parent" = Option<String>, Query), ("limit" = Option<usize>, Query)), responses((status = 200, description = "Runs, newest first, with their metrics", body = serde_json::Value)))]
pub(super) async fn list_runs(
    State(state): State<AppState>,
    query: Result<Query<RunFilter>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<RunList>, ApiError> {
    let Query(filter) = query?;
    let store = state.store();
    let mut runs = Vec::new();
    let mut skipped = Vec::new();
    for meta in store.list("runs/").await.map_err(anyhow::Error::from)? {
        let key = meta.key.as_str();
        let Some(id) = key.strip_prefix("runs/").and_then(|k| k.strip_suffix("/run.json")) else {
            continue;
        };
        if id.contains('/') {
            continue;
        }
        let run = match load_run(&state, id).await {
            Ok(run) => run,
            Err(ApiError::Unexpected(e)) => {
                skipped.push(Skipped::of("run", id, &e));
                continue;
            }
            Err(e) => return Err(e),
        };
        let matches = |field: &str, want: &Option<String>| want.as_ref().is_none_or(|w| run[field] == *w.as_str());
        if matches("kind", &filter.kind)
            && matches("status", &filter.status)
            && matches("dataset", &filter.dataset)
            && matches("parent_run_id", &filter.parent)
        {
            runs.push(run);
        }
    }
    runs.sort_by(|a, b| b["created_at"].as_str().cmp(&a["created_at"].as_str()));
    runs.truncate(filter.limit.unwrap_or(100).min(1000));
    Ok(Json(RunList { runs, skipped }))
}

#[utoipa::path(get, path = "/api/v1/runs/{id}", tag = "runs", params(("id" = String, Path)), responses((status = 200, description = "The run record", body = serde_json::Value), (status = 404, description = "Unknown run", body = ErrorBody)))]
pub(super) async fn show_run(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    Ok(Json(load_run(&state, &id).await?))
}

#[derive(Debug, Deserialize)]
pub(super) struct CompareQuery {
    /// Comma-separated run ids.
    ids: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub(super) struct RunComparison {
    pub runs: Vec<Value>,
    /// Metric -> run id -> value, for every metric any of the runs has.
    pub metrics: BTreeMap<String, BTreeMap<String, f64>>,
}

#[utoipa::path(get, path = "/api/v1/runs/compare", tag = "runs", params(("ids" = String, Query, description = "Two or more run ids, comma-separated")), responses((status = 200, description = "The runs, and metric to run to value", body = serde_json::Value), (status = 400, description = "Fewer than two ids", body = ErrorBody)))]
pub(super) async fn compare_runs(
    State(state): State<AppState>,
    query: Result<Query<CompareQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<RunComparison>, ApiError> {
    let Query(CompareQuery { ids }) = query?;
    let ids: Vec<&str> = ids.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
    if ids.len() < 2 {
        return Err(ApiError::bad_request("ids: give two or more run ids, comma-separated"));
    }
    let mut runs = Vec::new();
    let mut metrics: BTreeMap<String, BTreeMap<String, f64>> = BTreeMap::new();
    for id in ids {
        let run = load_run(&state, id).await?;
        if let Some(m) = run["metrics"].as_object() {
            for (name, v) in m {
                if let Some(v) = v.as_f64() {
                    metrics.entry(name.clone()).or_default().insert(id.to_owned(), v);
                }
            }
        }
        runs.push(run);
    }
    Ok(Json(RunComparison { runs, metrics }))
}

/// A run record, with `metrics`: a candidate's cross-validation means, or a pipeline run's
/// held-out metrics (its evaluate step).
async fn load_run(state: &AppState, id: &str) -> Result<Value, ApiError> {
    let mut run = read_run(state, id).await?;
    let metrics = if let Some(means) = run["cv"]["means"].as_object() {
        Some(Value::Object(means.clone()))
    } else {
        let evaluate = Key::new(format!("runs/{id}/steps/evaluate.json")).map_err(anyhow::Error::from)?;
        match state.store().get(&evaluate).await {
            Ok(body) => serde_json::from_slice::<Value>(&body).ok().map(|step| {
                let all = &step["outputs"]["metrics"];
                let numbers: serde_json::Map<String, Value> = all
                    .as_object()
                    .into_iter()
                    .flatten()
                    .filter(|(_, v)| v.is_number())
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                Value::Object(numbers)
            }),
            Err(e) if e.kind() == ErrorKind::NotFound => None,
            Err(e) => return Err(anyhow::Error::from(e).into()),
        }
    };
    if let (Some(metrics), Value::Object(map)) = (metrics, &mut run) {
        map.insert("metrics".into(), metrics);
    }
    Ok(run)
}

/// `runs/{id}/run.json` as public routes show it (a failed run's error reduced to its step and
/// kind: [`crate::pipeline::public_view`]); 404 when there is no such run.
pub(super) async fn read_run(state: &AppState, id: &str) -> Result<Value, ApiError> {
    let key = Key::segment(id)
        .and_then(|_| Key::new(format!("runs/{id}/run.json")))
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let mut run = read_json(state, &key, || format!("run '{id}' does not exist")).await?;
    crate::pipeline::public_view(&mut run);
    Ok(run)
}

async fn read_json<T: serde::de::DeserializeOwned>(
    state: &AppState,
    key: &Key,
    missing: impl FnOnce() -> String,
) -> Result<T, ApiError> {
    match state.store().get(key).await {
        Ok(body) => serde_json::from_slice(&body)
            .map_err(|e| ApiError::Unexpected(anyhow::anyhow!("{key} is not valid JSON: {e}"))),
        Err(e) if e.kind() == ErrorKind::NotFound => Err(ApiError::not_found(missing())),
        Err(e) => Err(anyhow::Error::from(e).into()),
    }
}

// ---------------------------------------------------------------- datasets

#[derive(Debug, Serialize, Deserialize)]
pub(super) struct DatasetList {
    pub datasets: Vec<DatasetRecord>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<Skipped>,
}

/// The latest version of every dataset.
#[utoipa::path(get, path = "/api/v1/datasets", tag = "datasets", responses((status = 200, description = "The latest version of every dataset", body = serde_json::Value)))]
pub(super) async fn list_datasets(State(state): State<AppState>) -> Result<Json<DatasetList>, ApiError> {
    let store = state.store();
    let mut names: Vec<String> = store
        .list("datasets/")
        .await
        .map_err(anyhow::Error::from)?
        .iter()
        .filter_map(|m| m.key.as_str().split('/').nth(1).map(str::to_owned))
        .collect();
    names.dedup();
    let mut datasets = Vec::new();
    let mut skipped = Vec::new();
    for name in names {
        match load_dataset(store, &name, None).await {
            Ok(dataset) => datasets.push(dataset),
            Err(e) => skipped.push(Skipped::of("dataset", &name, &e)),
        }
    }
    Ok(Json(DatasetList { datasets, skipped }))
}

async fn dataset(state: &AppState, name: &str, version: Option<&str>) -> Result<DatasetRecord, ApiError> {
    Key::segment(name).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let all = dataset_versions(state.store(), name).await?;
    let version = version.map(parse_version).transpose()?;
    match version {
        _ if all.is_empty() => Err(ApiError::not_found(format!("dataset '{name}' does not exist"))),
        Some(v) if !all.contains(&v) => Err(ApiError::not_found(format!(
            "dataset '{name}' has no version {v} (it has: {})",
            all.iter().map(u64::to_string).collect::<Vec<_>>().join(", ")
        ))),
        _ => Ok(load_dataset(state.store(), name, version).await?),
    }
}

#[utoipa::path(get, path = "/api/v1/datasets/{name}", tag = "datasets", params(("name" = String, Path)), responses((status = 200, description = "The record of the latest version", body = serde_json::Value), (status = 404, description = "Unknown dataset", body = ErrorBody)))]
pub(super) async fn show_dataset(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<DatasetRecord>, ApiError> {
    Ok(Json(dataset(&state, &name, None).await?))
}

#[utoipa::path(get, path = "/api/v1/datasets/{name}/versions/{version}", tag = "datasets", params(("name" = String, Path), ("version" = u64, Path)), responses((status = 200, description = "The record of the version", body = serde_json::Value), (status = 404, description = "Unknown dataset or version", body = ErrorBody)))]
pub(super) async fn show_dataset_version(
    State(state): State<AppState>,
    Path((name, version)): Path<(String, String)>,
) -> Result<Json<DatasetRecord>, ApiError> {
    Ok(Json(dataset(&state, &name, Some(&version)).await?))
}

/// `GET /api/v1/datasets/{name}/versions/{v}/reports/{profile|quality}`: the profile's offline
/// HTML report, or the validation (quality) report as JSON.
#[utoipa::path(get, path = "/api/v1/datasets/{name}/versions/{version}/reports/{report}", tag = "datasets", params(("name" = String, Path), ("version" = u64, Path), ("report" = String, Path, description = "profile (HTML) or quality (JSON)")), responses((status = 200, description = "The report"), (status = 404, description = "Unknown dataset, version or report", body = ErrorBody)))]
pub(super) async fn dataset_report(
    State(state): State<AppState>,
    Path((name, version, report)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    let record = dataset(&state, &name, Some(&version)).await?;
    let (key, html) = match report.as_str() {
        "profile" => (&record.profile.html, true),
        "quality" => (&record.quality.report_json, false),
        other => {
            return Err(ApiError::not_found(format!(
                "no report '{other}' (one of: profile, quality)"
            )));
        }
    };
    let key = Key::new(key.as_str()).map_err(anyhow::Error::from)?;
    let body = read_bytes(&state, &key).await?;
    Ok(if html {
        Html(body).into_response()
    } else {
        ([(axum::http::header::CONTENT_TYPE, "application/json")], body).into_response()
    })
}

async fn read_bytes(state: &AppState, key: &Key) -> Result<Vec<u8>, ApiError> {
    match state.store().get(key).await {
        Ok(body) => Ok(body.to_vec()),
        Err(e) if e.kind() == ErrorKind::NotFound => Err(ApiError::not_found(format!("{key} is missing"))),
        Err(e) => Err(anyhow::Error::from(e).into()),
    }
}
