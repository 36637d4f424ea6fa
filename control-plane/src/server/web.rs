//! The web page (`web/`) at `/`, and the browser SDK (`web/sdk`) at `/sdk/`.
//!
//! The page's files and the browser SDK are compiled into the binary, so `wasmline serve` needs
//! nothing beside it and the page predicts in the browser out of the box. What is built from them
//! is checked in by `scripts/build-web`: the SDK (its JavaScript minified, `wasmline_sdk.js`, and
//! its module, `wasmline_sdk_bg.wasm`) under `web/sdk/dist/`, the page's `app.js` minified under
//! `web/dist/`, and a zopfli gzip of every file beside them. `scripts/test` rebuilds them and
//! fails when a byte differs, so the embedded copies are always what `web/` builds. `--web-dir`
//! and `--sdk-dir` serve either from a folder instead, to work on them without rebuilding.

use std::path::PathBuf;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;

use super::{ApiError, AppState};

/// A file built into the binary.
struct File {
    name: &'static str,
    bytes: &'static [u8],
    /// The same bytes gzipped ahead of time (zopfli, by scripts/build-web: 4% smaller than
    /// gzipping on the fly, and no work per request), served as they are to a client that takes
    /// gzip.
    gzip: Option<&'static [u8]>,
    content_type: &'static str,
}

type Files = &'static [File];

const JS: &str = "text/javascript; charset=utf-8";

/// The page's files: app.js minified, each gzipped ahead of time (web/dist, by scripts/build-web).
const PAGE: Files = &[
    File {
        name: "index.html",
        bytes: include_bytes!("../../../web/index.html"),
        gzip: Some(include_bytes!("../../../web/dist/index.html.gz")),
        content_type: "text/html; charset=utf-8",
    },
    File {
        name: "app.js",
        bytes: include_bytes!("../../../web/dist/app.js"),
        gzip: Some(include_bytes!("../../../web/dist/app.js.gz")),
        content_type: JS,
    },
    File {
        name: "style.css",
        bytes: include_bytes!("../../../web/style.css"),
        gzip: Some(include_bytes!("../../../web/dist/style.css.gz")),
        content_type: "text/css; charset=utf-8",
    },
];

/// The SDK files the page imports.
const SDK_FILES: Files = &[
    File {
        name: "wasmline_sdk.js",
        bytes: include_bytes!("../../../web/sdk/dist/wasmline_sdk.js"),
        gzip: Some(include_bytes!("../../../web/sdk/dist/wasmline_sdk.js.gz")),
        content_type: JS,
    },
    File {
        name: "wasmline_sdk_bg.wasm",
        bytes: include_bytes!("../../../web/sdk/dist/wasmline_sdk_bg.wasm"),
        gzip: Some(include_bytes!("../../../web/sdk/dist/wasmline_sdk_bg.wasm.gz")),
        content_type: "application/wasm",
    },
];

/// Where the page and the SDK come from.
#[derive(Debug, Clone, Default)]
pub(crate) struct WebOptions {
    /// Serve the page from this folder rather than from the binary.
    pub web_dir: Option<PathBuf>,
    /// Serve the SDK from this folder (scripts/build-web's output) rather than from the binary.
    pub sdk_dir: Option<PathBuf>,
}

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/",
            get(|state: State<AppState>, headers: HeaderMap| page(state, Path("index.html".to_owned()), headers)),
        )
        .route("/web/{file}", get(page))
        .route("/sdk/{file}", get(sdk))
        // Files from a folder (--web-dir, --sdk-dir) are gzipped on the fly.
        .layer(tower_http::compression::CompressionLayer::new())
}

async fn page(
    State(state): State<AppState>,
    Path(file): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let unreadable =
        |path: &std::path::Path, e| ApiError::Unexpected(anyhow::anyhow!("cannot read {}: {e}", path.display()));
    serve(
        PAGE,
        "page",
        state.inner.web.web_dir.as_deref(),
        &file,
        &headers,
        unreadable,
    )
    .await
}

async fn sdk(
    State(state): State<AppState>,
    Path(file): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let missing =
        |path: &std::path::Path, e| ApiError::not_found(format!("the browser SDK is missing {}: {e}", path.display()));
    serve(
        SDK_FILES,
        "SDK",
        state.inner.web.sdk_dir.as_deref(),
        &file,
        &headers,
        missing,
    )
    .await
}

/// `file` of `files` (a `what` file): read from `dir` when one is given (`unreadable` says why
/// it cannot be), else the copy built into the binary, served without copying it (gzipped
/// ahead of time to a client that takes gzip, where the build made that copy).
async fn serve(
    files: Files,
    what: &str,
    dir: Option<&std::path::Path>,
    file: &str,
    request: &HeaderMap,
    unreadable: impl Fn(&std::path::Path, std::io::Error) -> ApiError,
) -> Result<Response, ApiError> {
    let Some(f) = files.iter().find(|f| f.name == file) else {
        return Err(ApiError::not_found(format!("no {what} file '{file}'")));
    };
    let body = match (dir, f.gzip) {
        (Some(dir), _) => {
            let path = dir.join(f.name);
            Bytes::from(tokio::fs::read(&path).await.map_err(|e| unreadable(&path, e))?)
        }
        (None, Some(gzip)) => {
            let takes_gzip = takes_gzip(request);
            let mut response = with_type(
                Bytes::from_static(if takes_gzip { gzip } else { f.bytes }),
                f.content_type,
            );
            let headers = response.headers_mut();
            if takes_gzip {
                headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            }
            headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
            return Ok(response);
        }
        (None, None) => Bytes::from_static(f.bytes),
    };
    Ok(with_type(body, f.content_type))
}

/// Whether `Accept-Encoding` takes gzip: `gzip` or `*` listed without `q=0`.
fn takes_gzip(request: &HeaderMap) -> bool {
    request
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| {
            let mut parts = coding.split(';').map(str::trim);
            let name = parts.next().unwrap_or_default();
            let refused = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q == 0.0)
            });
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        })
}

fn with_type(body: Bytes, content_type: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}
