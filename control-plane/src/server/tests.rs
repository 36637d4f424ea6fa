//! Handler tests: the router over a real local store, driven with `oneshot` (no socket).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use model_wasm::telemetry::{Telemetry, TelemetryBatch};
use tower::ServiceExt;

use super::*;
use crate::registry::tests::wine_models;
use crate::store::{Key, LocalStore};

const EDGE_TOKEN: &str = "edge-secret";

struct TestApp {
    _dir: tempfile::TempDir,
    store: Arc<dyn ObjectStore>,
    state: AppState,
    _stop: watch::Sender<bool>,
}

impl TestApp {
    async fn new() -> TestApp {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn ObjectStore> = Arc::new(LocalStore::open(dir.path()).unwrap());
        let (stop, stopped) = watch::channel(false);
        let options = ServerOptions {
            edge_token: Some(EDGE_TOKEN.into()),
            poll_every: Duration::from_millis(20),
            ..ServerOptions::default()
        };
        let state = AppState::new(store.clone(), options, stopped).await.unwrap();
        TestApp {
            _dir: dir,
            store,
            state,
            _stop: stop,
        }
    }

    async fn call(&self, request: Request<Body>) -> (StatusCode, HeaderMap, Vec<u8>) {
        let response = app(self.state.clone()).oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await.unwrap().to_bytes().to_vec();
        (status, headers, body)
    }

    async fn get(&self, uri: &str) -> (StatusCode, serde_json::Value) {
        let (status, _, body) = self.call(Request::get(uri).body(Body::empty()).unwrap()).await;
        (status, serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null))
    }

    async fn post_telemetry(&self, token: Option<&str>, body: Vec<u8>) -> (StatusCode, serde_json::Value) {
        let mut request = Request::post("/api/v1/telemetry").header(header::CONTENT_TYPE, "application/json");
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let (status, _, body) = self.call(request.body(Body::from(body)).unwrap()).await;
        (status, serde_json::from_slice(&body).unwrap())
    }
}

fn error_message(body: &serde_json::Value) -> &str {
    body["error"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("not an error body: {body}"))
}

#[tokio::test]
async fn liveness_and_the_signing_key_that_verifies_manifests() {
    let app = TestApp::new().await;
    let (status, body) = app.get("/v2/health/live").await;
    assert_eq!((status, body), (StatusCode::OK, serde_json::json!({ "live": true })));

    let (status, body) = app.get("/api/v1/signing-key").await;
    assert_eq!(status, StatusCode::OK);
    let key: PublicKey = serde_json::from_value(body).unwrap();
    assert_eq!(key, crate::registry::load_public_key(app.store.as_ref()).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edges_read_aliases_and_published_files_that_verify() {
    let app = TestApp::new().await;
    let (_, good, _) = wine_models(app.store.as_ref()).await;
    crate::registry::set_alias(
        app.store.as_ref(),
        "winequality-red",
        "production",
        good.version,
        "test",
    )
    .await
    .unwrap();

    let (status, body) = app.get("/api/v1/models/winequality-red/aliases/production").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["version"], good.version);
    assert_eq!(body["model"], "winequality-red");

    let uri = format!(
        "/api/v1/models/winequality-red/versions/{}/artifacts/manifest.json",
        good.version
    );
    let (status, headers, manifest) = app.call(Request::get(&uri).body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_TYPE], "application/json");
    let (_, key) = app.get("/api/v1/signing-key").await;
    let key: PublicKey = serde_json::from_value(key).unwrap();
    model_wasm::signature::verify_manifest(&manifest, &key).unwrap();
    let view = model_wasm::manifest::ManifestView::from_json(&manifest).unwrap();

    let uri = format!(
        "/api/v1/models/winequality-red/versions/{}/artifacts/model.wasm",
        good.version
    );
    let (status, headers, wasm) = app.call(Request::get(&uri).body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_TYPE], "application/wasm");
    assert_eq!(
        headers[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        "*",
        "browsers load modules cross-origin"
    );
    view.verify_artifact("model.wasm", &wasm).unwrap();

    // The entity tag saves a second download.
    let etag = headers[header::ETAG].clone();
    let request = Request::get(&uri)
        .header(header::IF_NONE_MATCH, etag)
        .body(Body::empty())
        .unwrap();
    assert_eq!(app.call(request).await.0, StatusCode::NOT_MODIFIED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_poll_answers_when_the_alias_moves() {
    let app = TestApp::new().await;
    let (_, good, bad) = wine_models(app.store.as_ref()).await;
    let store = app.store.clone();
    crate::registry::set_alias(store.as_ref(), "winequality-red", "production", good.version, "test")
        .await
        .unwrap();

    // Nothing moves: the poll waits its time out, then answers with the same version.
    let uri = format!(
        "/api/v1/models/winequality-red/aliases/production?known={}&wait=0.2",
        good.version
    );
    let started = tokio::time::Instant::now();
    let (status, body) = app.get(&uri).await;
    assert_eq!((status, body["version"].as_u64()), (StatusCode::OK, Some(good.version)));
    assert!(started.elapsed() >= Duration::from_millis(200));

    // The alias moves while the poll waits (a whole minute at most): it answers with the new version.
    let uri = format!(
        "/api/v1/models/winequality-red/aliases/production?known={}&wait=60",
        good.version
    );
    let mover = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        crate::registry::set_alias(store.as_ref(), "winequality-red", "production", bad.version, "test")
            .await
            .unwrap();
    });
    let (status, body) = app.get(&uri).await;
    mover.await.unwrap();
    assert_eq!((status, body["version"].as_u64()), (StatusCode::OK, Some(bad.version)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_or_invalid_names_are_4xx_with_a_json_error() {
    let app = TestApp::new().await;
    let (_, good, _) = wine_models(app.store.as_ref()).await;
    let v = good.version;
    for (uri, status, expected) in [
        (
            "/api/v1/models/nope/aliases/production".to_owned(),
            StatusCode::NOT_FOUND,
            "'nope' does not exist",
        ),
        (
            "/api/v1/models/winequality-red/aliases/staging".to_owned(),
            StatusCode::NOT_FOUND,
            "no alias 'staging'",
        ),
        (
            "/api/v1/models/winequality-red/aliases/production?wait=-1".to_owned(),
            StatusCode::BAD_REQUEST,
            "wait=-1",
        ),
        (
            "/api/v1/models/winequality-red/versions/99/artifacts/model.wasm".to_owned(),
            StatusCode::NOT_FOUND,
            "no version 99",
        ),
        (
            format!("/api/v1/models/winequality-red/versions/{v}/artifacts/secret.json"),
            StatusCode::NOT_FOUND,
            "not a published file",
        ),
        (
            "/api/v1/models/winequality-red/versions/one/artifacts/model.wasm".to_owned(),
            StatusCode::BAD_REQUEST,
            "'one' is not a number",
        ),
        (
            "/api/v1/models/..%2Fkeys/versions/1/artifacts/manifest.json".to_owned(),
            StatusCode::BAD_REQUEST,
            "invalid model name",
        ),
        ("/api/v1/nothing".to_owned(), StatusCode::NOT_FOUND, "no route"),
    ] {
        let (got, body) = app.get(&uri).await;
        assert_eq!(got, status, "{uri}: {body}");
        assert!(error_message(&body).contains(expected), "{uri}: {body}");
    }
    let (status, _, body) = app
        .call(Request::delete("/api/v1/signing-key").body(Body::empty()).unwrap())
        .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert!(error_message(&body).contains("DELETE"));
}

fn batch(batch_id: &str) -> TelemetryBatch {
    let manifest = model_wasm::manifest::ManifestView::from_json(
        br#"{"schema_version": 1, "name": "wine", "version": 1,
             "features": [{"name": "alcohol", "min": 8, "max": 15}],
             "output": {"target": "quality"},
             "reference_profile": {"rows": 100, "features": [
               {"kind": "numeric", "name": "alcohol", "edges": [10, 12], "proportions": [0.3, 0.4, 0.3]}]}}"#,
    )
    .unwrap();
    let mut telemetry = Telemetry::new(&manifest, "wasmtime");
    telemetry.record_ok(&[9.5, 11.0], 0.000_3);
    TelemetryBatch {
        batch_id: batch_id.into(),
        node: "edge-1".into(),
        reports: vec![telemetry.report()],
    }
}

#[tokio::test]
async fn telemetry_is_recorded_once_per_batch() {
    let app = TestApp::new().await;
    let body = serde_json::to_vec(&batch("b-1")).unwrap();
    let (status, ack) = app.post_telemetry(Some(EDGE_TOKEN), body.clone()).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{ack}");
    assert_eq!(ack, serde_json::json!({"batch_id": "b-1", "duplicate": false}));
    let stored = app
        .store
        .get(&Key::new("telemetry/batches/edge-1/b-1.json").unwrap())
        .await
        .unwrap();
    assert_eq!(stored.as_ref(), body.as_slice());

    // A replay (the answer was lost) is acknowledged and not recorded again.
    let (status, ack) = app.post_telemetry(Some(EDGE_TOKEN), body).await;
    assert_eq!((status, ack["duplicate"].as_bool()), (StatusCode::OK, Some(true)));
    assert_eq!(app.store.list(TELEMETRY_PREFIX).await.unwrap().len(), 1);
}

#[tokio::test]
async fn bad_telemetry_is_refused_and_nothing_is_recorded() {
    let app = TestApp::new().await;
    let good = serde_json::to_vec(&batch("b-1")).unwrap();
    let mut invalid = batch("b-2");
    invalid.reports[0].latency_seconds.count += 5;
    let cases: Vec<(Option<&str>, Vec<u8>, StatusCode, &str)> = vec![
        (None, good.clone(), StatusCode::UNAUTHORIZED, "missing bearer token"),
        (
            Some("wrong"),
            good.clone(),
            StatusCode::UNAUTHORIZED,
            "invalid edge token",
        ),
        (
            Some(EDGE_TOKEN),
            b"{\"batch_id\": ".to_vec(),
            StatusCode::BAD_REQUEST,
            "not a telemetry batch",
        ),
        (
            Some(EDGE_TOKEN),
            br#"{"batch_id": "x", "node": "n", "reports": [], "extra": 1}"#.to_vec(),
            StatusCode::BAD_REQUEST,
            "unknown field",
        ),
        (
            Some(EDGE_TOKEN),
            serde_json::to_vec(&invalid).unwrap(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "not the sum",
        ),
        (
            Some(EDGE_TOKEN),
            vec![b' '; TELEMETRY_BODY_LIMIT + 1],
            StatusCode::PAYLOAD_TOO_LARGE,
            "",
        ),
    ];
    for (token, body, status, expected) in cases {
        let (got, answer) = app.post_telemetry(token, body).await;
        assert_eq!(got, status, "{answer}");
        assert!(error_message(&answer).contains(expected), "{answer}");
    }
    assert!(app.store.list(TELEMETRY_PREFIX).await.unwrap().is_empty());
}

#[tokio::test]
async fn without_an_edge_token_no_telemetry_is_taken() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn ObjectStore> = Arc::new(LocalStore::open(dir.path()).unwrap());
    let (_stop, stopped) = watch::channel(false);
    let state = AppState::new(store, ServerOptions::default(), stopped).await.unwrap();
    let request = Request::post("/api/v1/telemetry")
        .header(header::AUTHORIZATION, "Bearer anything")
        .body(Body::from(serde_json::to_vec(&batch("b-1")).unwrap()))
        .unwrap();
    let response = app(state).oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}
