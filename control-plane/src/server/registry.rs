//! Registry reads for edges and browsers: the signing key, aliases (with long poll), published files.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::{ApiError, AppState, ErrorBody, MAX_LONG_POLL};
use crate::registry::{self, PUBLISHED_FILES, PublicKey, RegistryError};

#[utoipa::path(get, path = "/api/v1/signing-key", tag = "registry", responses((status = 200, description = "The ed25519 public key that verifies manifests", body = serde_json::Value)))]
pub(super) async fn signing_key(State(state): State<AppState>) -> Json<PublicKey> {
    Json(state.inner.public_key.clone())
}

/// `GET /api/v1/models/{name}/aliases/{alias}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub(super) struct AliasAnswer {
    pub model: String,
    pub alias: String,
    pub version: u64,
    pub updated_at: DateTime<Utc>,
    pub by: String,
}

#[derive(Debug, Deserialize)]
pub(super) struct LongPoll {
    /// The version the caller has: wait while the alias still points there.
    known: Option<u64>,
    /// Seconds to wait at most (capped at [`MAX_LONG_POLL`]).
    wait: Option<f64>,
}

#[utoipa::path(get, path = "/api/v1/models/{name}/aliases/{alias}", tag = "aliases", params(("name" = String, Path), ("alias" = String, Path), ("known" = Option<u64>, Query, description = "Long poll: wait while the alias points at this version"), ("wait" = Option<f64>, Query, description = "Seconds to wait at most (60)")), responses((status = 200, description = "The version the alias points at", body = AliasAnswer), (status = 404, description = "Unknown model or alias", body = ErrorBody)))]
pub(super) async fn alias(
    State(state): State<AppState>,
    Path((name, alias)): Path<(String, String)>,
    query: Result<Query<LongPoll>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<AliasAnswer>, ApiError> {
    let Query(poll) = query?;
    let wait = match poll.wait {
        None => 0.0,
        Some(w) if w.is_finite() && w >= 0.0 => w.min(MAX_LONG_POLL.as_secs_f64()),
        Some(w) => return Err(ApiError::bad_request(format!("wait={w}: seconds, a number >= 0"))),
    };
    let deadline = Instant::now() + std::time::Duration::from_secs_f64(wait);
    let mut shutdown = state.inner.shutdown.clone();
    let mut _waiting = None;
    loop {
        // The first read is the store's own; a waiting poll's re-reads are shared.
        let record = if _waiting.is_none() {
            registry::get_alias(state.store(), &name, &alias).await?
        } else {
            state.inner.alias_reads.read(&state, &name, &alias).await?
        };
        match record {
            Some(r) if poll.known != Some(r.version) || Instant::now() >= deadline || *shutdown.borrow() => {
                return Ok(Json(AliasAnswer {
                    model: name,
                    alias,
                    version: r.version,
                    updated_at: r.updated_at,
                    by: r.by,
                }));
            }
            Some(_) => {}
            None => return Err(unknown_alias(&state, &name, &alias).await),
        }
        if _waiting.is_none() {
            _waiting = Some(state.inner.alias_reads.wait()?);
        }
        let next = (Instant::now() + state.inner.poll_every).min(deadline);
        tokio::select! {
            () = tokio::time::sleep_until(next) => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// Alias reads shared by waiting long polls: one store read per alias per poll interval, however
/// many wait on it, and at most `max_waiters` long polls at once. (A request's first read goes to
/// the store, so an answer is never older than the request.)
#[derive(Debug)]
pub(super) struct AliasReads {
    every: std::time::Duration,
    max_waiters: usize,
    waiters: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    latest: std::sync::Mutex<std::collections::HashMap<(String, String), Slot>>,
}

/// The latest read of one alias, locked by the waiter refreshing it.
type Slot = std::sync::Arc<tokio::sync::Mutex<Option<Read>>>;

/// An alias as read at `at`.
#[derive(Debug, Clone)]
struct Read {
    at: Instant,
    record: Option<registry::AliasRecord>,
}

/// A long poll waiting (counted until dropped).
pub(super) struct Waiting(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

impl AliasReads {
    pub(super) fn new(every: std::time::Duration, max_waiters: usize) -> AliasReads {
        AliasReads {
            every,
            max_waiters,
            waiters: std::sync::Arc::default(),
            latest: std::sync::Mutex::default(),
        }
    }

    /// The alias as read at most one poll interval ago: the first waiter after that reads the
    /// store, the others wait for its answer.
    async fn read(&self, state: &AppState, name: &str, alias: &str) -> Result<Option<registry::AliasRecord>, ApiError> {
        let slot = {
            let mut latest = self.latest.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if latest.len() > 10_000 {
                // Made-up names must not grow the table: keep the slots someone is using.
                latest.retain(|_, slot| std::sync::Arc::strong_count(slot) > 1);
            }
            latest.entry((name.to_owned(), alias.to_owned())).or_default().clone()
        };
        let mut slot = slot.lock().await;
        if let Some(read) = slot.as_ref()
            && read.at.elapsed() < self.every
        {
            return Ok(read.record.clone());
        }
        let record = registry::get_alias(state.store(), name, alias).await?;
        *slot = Some(Read {
            at: Instant::now(),
            record: record.clone(),
        });
        Ok(record)
    }

    /// How many long polls are waiting.
    #[cfg(test)]
    pub(super) fn waiting(&self) -> usize {
        self.waiters.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Counts a long poll that is about to wait, or refuses it (503) past the cap.
    fn wait(&self) -> Result<Waiting, ApiError> {
        let before = self.waiters.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let waiting = Waiting(self.waiters.clone());
        if before >= self.max_waiters {
            return Err(ApiError::user(
                StatusCode::SERVICE_UNAVAILABLE,
                "too_many_waiters",
                format!(
                    "{} long polls are waiting already (--max-long-polls); poll again later",
                    self.max_waiters
                ),
            ));
        }
        Ok(waiting)
    }
}

async fn unknown_alias(state: &AppState, name: &str, alias: &str) -> ApiError {
    match registry::list_aliases(state.store(), name).await {
        Ok(aliases) => {
            let versions = registry::list_versions(state.store(), name).await.unwrap_or_default();
            if versions.is_empty() && aliases.is_empty() {
                ApiError::not_found(format!("model '{name}' does not exist"))
            } else {
                ApiError::from(anyhow::Error::new(RegistryError::UnknownAlias {
                    name: name.to_owned(),
                    alias: alias.to_owned(),
                    available: aliases.into_keys().collect(),
                }))
            }
        }
        Err(e) => e.into(),
    }
}

/// `GET /api/v1/models/{name}/versions/{version}/artifacts/{file}`: the stored bytes, with their
/// sha256 as the entity tag (an unchanged file answers `304` to `If-None-Match`).
#[utoipa::path(get, path = "/api/v1/models/{name}/versions/{version}/artifacts/{file}", tag = "registry", params(("name" = String, Path), ("version" = u64, Path), ("file" = String, Path, description = "manifest.json, model.wasm, model.onnx or model.ir.json")), responses((status = 200, description = "The stored bytes (ETag: sha256)"), (status = 304, description = "Not modified"), (status = 404, description = "Unknown model, version or file", body = ErrorBody)))]
pub(super) async fn artifact(
    State(state): State<AppState>,
    Path((name, version, file)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let version: u64 = version
        .parse()
        .map_err(|_| ApiError::bad_request(format!("version '{version}' is not a number")))?;
    if !PUBLISHED_FILES.contains(&file.as_str()) {
        return Err(ApiError::not_found(format!(
            "'{file}' is not a published file (one of: {})",
            PUBLISHED_FILES.join(", ")
        )));
    }
    let body = registry::read_published(state.store(), &name, version, &file).await?;
    let etag = format!("\"{}\"", model_wasm::manifest::sha256_hex(&body));
    if headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == etag.as_bytes())
    {
        return Ok(StatusCode::NOT_MODIFIED.into_response());
    }
    let content_type = match file.rsplit('.').next() {
        Some("json") => "application/json",
        Some("wasm") => "application/wasm",
        _ => "application/octet-stream",
    };
    let mut response = body.into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::ETAG,
        HeaderValue::from_str(&etag).expect("hex is a valid header"),
    );
    // A version's files never change; the ETag lets a cache check cheaply anyway.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, no-cache"));
    Ok(response)
}
