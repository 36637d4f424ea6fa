//! The web page (`web/`) at `/`, and the browser SDK (`web/sdk`) at `/sdk/`.
//!
//! The page's files and the browser SDK are compiled into the binary, so `wasmline serve` needs
//! nothing beside it and the page predicts in the browser out of the box. The SDK's build (its
//! JavaScript minified, `wasmline_sdk.js`, and its module, `wasmline_sdk_bg.wasm`) is checked in
//! under `web/sdk/dist/` by `scripts/build-sdk`; `scripts/test` rebuilds it and fails when the
//! bytes differ, so the embedded copy is always the one `web/sdk` builds. `--web-dir`
//! and `--sdk-dir` serve either from a folder instead, to work on them without rebuilding.

use std::path::PathBuf;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;

use super::{ApiError, AppState};

/// Files built into the binary: (name, bytes, content type).
type Files = &'static [(&'static str, &'static [u8], &'static str)];

/// The page's files.
const PAGE: Files = &[
    (
        "index.html",
        include_bytes!("../../../web/index.html"),
        "text/html; charset=utf-8",
    ),
    (
        "app.js",
        include_bytes!("../../../web/app.js"),
        "text/javascript; charset=utf-8",
    ),
    (
        "style.css",
        include_bytes!("../../../web/style.css"),
        "text/css; charset=utf-8",
    ),
];

/// The SDK files the page imports.
const SDK_FILES: Files = &[
    (
        "wasmline_sdk.js",
        include_bytes!("../../../web/sdk/dist/wasmline_sdk.js"),
        "text/javascript; charset=utf-8",
    ),
    (
        "wasmline_sdk_bg.wasm",
        include_bytes!("../../../web/sdk/dist/wasmline_sdk_bg.wasm"),
        "application/wasm",
    ),
];

/// Where the page and the SDK come from.
#[derive(Debug, Clone, Default)]
pub(crate) struct WebOptions {
    /// Serve the page from this folder rather than from the binary.
    pub web_dir: Option<PathBuf>,
    /// Serve the SDK from this folder (wasm-pack's output) rather than from the binary.
    pub sdk_dir: Option<PathBuf>,
}

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/",
            get(|state: State<AppState>| page(state, Path("index.html".to_owned()))),
        )
        .route("/web/{file}", get(page))
        .route("/sdk/{file}", get(sdk))
        // The SDK's module is most of what a first visit downloads: gzip halves it.
        .layer(tower_http::compression::CompressionLayer::new())
}

async fn page(State(state): State<AppState>, Path(file): Path<String>) -> Result<Response, ApiError> {
    let unreadable =
        |path: &std::path::Path, e| ApiError::Unexpected(anyhow::anyhow!("cannot read {}: {e}", path.display()));
    serve(PAGE, "page", state.inner.web.web_dir.as_deref(), &file, unreadable).await
}

async fn sdk(State(state): State<AppState>, Path(file): Path<String>) -> Result<Response, ApiError> {
    let missing =
        |path: &std::path::Path, e| ApiError::not_found(format!("the browser SDK is missing {}: {e}", path.display()));
    serve(SDK_FILES, "SDK", state.inner.web.sdk_dir.as_deref(), &file, missing).await
}

/// `file` of `files` (a `what` file): read from `dir` when one is given (`unreadable` says why
/// it cannot be), else the copy built into the binary, served without copying it.
async fn serve(
    files: Files,
    what: &str,
    dir: Option<&std::path::Path>,
    file: &str,
    unreadable: impl Fn(&std::path::Path, std::io::Error) -> ApiError,
) -> Result<Response, ApiError> {
    let Some((name, embedded, content_type)) = files.iter().find(|(name, _, _)| *name == file) else {
        return Err(ApiError::not_found(format!("no {what} file '{file}'")));
    };
    let body = match dir {
        Some(dir) => {
            let path = dir.join(name);
            Bytes::from(tokio::fs::read(&path).await.map_err(|e| unreadable(&path, e))?)
        }
        None => Bytes::from_static(embedded),
    };
    Ok(with_type(body, content_type))
}

fn with_type(body: Bytes, content_type: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}
