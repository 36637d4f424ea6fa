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
use crate::server::telemetry::TELEMETRY_PREFIX;
use crate::store::{Key, LocalStore};

mod runs;

const EDGE_TOKEN: &str = "edge-secret";
const ADMIN_TOKEN: &str = "admin-secret";

struct TestApp {
    _dir: tempfile::TempDir,
    store: Arc<dyn ObjectStore>,
    state: AppState,
    _stop: watch::Sender<bool>,
}

impl TestApp {
    async fn new() -> TestApp {
        TestApp::with(ServerOptions::default()).await
    }

    /// An app over a fresh store with the edge and admin tokens and `options`' other settings.
    async fn with(options: ServerOptions) -> TestApp {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn ObjectStore> = Arc::new(LocalStore::open(dir.path()).unwrap());
        TestApp::over(dir, store, options).await
    }

    async fn over(dir: tempfile::TempDir, store: Arc<dyn ObjectStore>, options: ServerOptions) -> TestApp {
        let (stop, stopped) = watch::channel(false);
        let options = ServerOptions {
            edge_token: Some(EDGE_TOKEN.into()),
            admin_token: Some(ADMIN_TOKEN.into()),
            poll_every: Duration::from_millis(20),
            ..options
        };
        let state = AppState::new(store.clone(), options, stopped).await.unwrap();
        TestApp {
            _dir: dir,
            store,
            state,
            _stop: stop,
        }
    }

    /// Points `winequality-red@production` at `version`.
    async fn promote(&self, version: u64) {
        crate::registry::set_alias(self.store.as_ref(), "winequality-red", "production", version, "test")
            .await
            .unwrap();
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
    app.promote(good.version).await;

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
    // Gzipped for a client that takes it (a page's first visit).
    let request = Request::get(&uri)
        .header(header::ACCEPT_ENCODING, "gzip")
        .body(Body::empty())
        .unwrap();
    let (status, gzipped_headers, gzipped) = app.call(request).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(gzipped_headers[header::CONTENT_ENCODING], "gzip");
    assert!(
        gzipped.len() < wasm.len(),
        "{} B gzipped, {} B as stored",
        gzipped.len(),
        wasm.len()
    );
    let mut unzipped = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gzipped[..]), &mut unzipped).unwrap();
    assert!(unzipped == wasm, "the gzip holds the module");

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

/// One model, dataset or run whose record is garbage: that one is unavailable (logged, exported,
/// named in the list's `skipped`), every other one is served and listed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_unreadable_record_takes_down_its_model_only() {
    let app = TestApp::new().await;
    let (_, good, _) = wine_models(app.store.as_ref()).await;
    app.promote(good.version).await;
    for (key, body) in [
        ("models/broken/1/manifest.json", "{\"not\": \"a manifest\"}"),
        ("models/broken/aliases/production.json", "garbage"),
        ("datasets/broken/1.json", "garbage"),
        ("runs/20260101T000000Z-broken/run.json", "garbage"),
    ] {
        app.store
            .put(&Key::new(key).unwrap(), bytes::Bytes::from(body.to_owned()))
            .await
            .unwrap();
    }
    app.state.refresh_models().await.unwrap();
    let row = &good.sample_rows[0];
    let (status, body) = app
        .send("POST", "/v2/models/winequality-red/infer", None, &infer_body(row))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = app.get("/v2/models/broken/ready").await;
    assert!(
        status.is_client_error() || status == StatusCode::SERVICE_UNAVAILABLE,
        "{status}"
    );
    let (_, _, text) = app.call(Request::get("/metrics").body(Body::empty()).unwrap()).await;
    let text = String::from_utf8(text).unwrap();
    assert!(
        text.contains("wasmline_model_unavailable{model=\"broken\",reason=\"unreadable\"} 1"),
        "{text}"
    );
    assert!(
        !text.contains("wasmline_model_unavailable{model=\"winequality-red\""),
        "{text}"
    );

    for (uri, list, good_one) in [
        ("/api/v1/models", "models", "winequality-red"),
        ("/api/v1/datasets", "datasets", "winequality-red"),
        ("/api/v1/runs", "runs", ""),
    ] {
        let (status, body) = app.get(uri).await;
        assert_eq!(status, StatusCode::OK, "{uri}: {body}");
        assert!(
            body["skipped"][0]["name"].as_str().unwrap().contains("broken"),
            "{uri}: {body}"
        );
        assert!(
            body["skipped"][0]["reason"].as_str().unwrap().starts_with("unreadable"),
            "{body}"
        );
        if !good_one.is_empty() {
            let names: Vec<&str> = body[list]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["name"].as_str().unwrap())
                .collect();
            assert!(names.contains(&good_one), "{uri}: {body}");
        }
    }
}

/// 1,000 long polls on one alias share one store read per poll interval, a long poll past the
/// cap is refused with 503, and every waiter answers when the time is up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_poll_waiters_share_their_reads_and_are_capped() {
    const WAITERS: usize = 1000;
    let dir = tempfile::tempdir().unwrap();
    let counting = Arc::new(crate::store::testing::FaultyStore::new(
        LocalStore::open(dir.path()).unwrap(),
    ));
    let options = ServerOptions {
        max_long_polls: WAITERS,
        ..ServerOptions::default()
    };
    let app = TestApp::over(dir, counting.clone(), options).await;
    let (_, good, _) = wine_models(app.store.as_ref()).await;
    app.promote(good.version).await;
    let poll = app.state.inner.poll_every;
    let wait = Duration::from_secs(3);
    let uri = format!(
        "/api/v1/models/winequality-red/aliases/production?known={}&wait={}",
        good.version,
        wait.as_secs_f64()
    );
    let before = counting.alias_reads.load(std::sync::atomic::Ordering::Relaxed);
    let started = tokio::time::Instant::now();
    let mut waiters = Vec::new();
    for _ in 0..WAITERS {
        let (state, uri) = (app.state.clone(), uri.clone());
        waiters.push(tokio::spawn(async move {
            let request = Request::get(&uri).body(Body::empty()).unwrap();
            super::app(state).oneshot(request).await.unwrap().status()
        }));
    }
    // Wait until every poll is waiting, then one more is refused.
    while app.state.inner.alias_reads.waiting() < WAITERS {
        assert!(started.elapsed() < wait, "the waiters did not all start waiting");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (status, body) = app.get(&uri).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(error_message(&body).contains("long polls are waiting"), "{body}");
    for waiter in waiters {
        assert_eq!(waiter.await.unwrap(), StatusCode::OK);
    }
    let elapsed = started.elapsed();
    let reads = counting.alias_reads.load(std::sync::atomic::Ordering::Relaxed) - before;
    // Each request reads once on arrival (WAITERS + 1); the waiting ones share one read per
    // interval. Unshared, every waiter would read once per interval: WAITERS * wait / poll.
    let intervals = (elapsed.as_secs_f64() / poll.as_secs_f64()).ceil() as usize;
    let shared = reads - (WAITERS + 1);
    eprintln!(
        "{WAITERS} waiters for {elapsed:?}: {reads} alias reads ({shared} shared re-reads over {intervals} intervals; unshared: about {})",
        WAITERS * intervals
    );
    assert!(shared <= intervals + 1, "{shared} re-reads in {intervals} intervals");
    assert_eq!(app.state.inner.alias_reads.waiting(), 0);
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
        br#"{"schema_version": 1, "name": "winequality-red", "version": 1,
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
    wine_models(app.store.as_ref()).await;
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
    wine_models(app.store.as_ref()).await;
    let good = serde_json::to_vec(&batch("b-1")).unwrap();
    let mut invalid = batch("b-2");
    invalid.reports[0].latency_seconds.count += 5;
    let mut unknown = batch("b-3");
    unknown.reports[0].version = 9;
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
            StatusCode::BAD_REQUEST,
            "not the sum",
        ),
        (
            Some(EDGE_TOKEN),
            serde_json::to_vec(&unknown).unwrap(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown model 'winequality-red' version 9",
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

impl TestApp {
    async fn send(&self, method: &str, uri: &str, token: Option<&str>, body: &str) -> (StatusCode, serde_json::Value) {
        let mut request = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::CONTENT_TYPE, "application/json");
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let (status, _, body) = self.call(request.body(Body::from(body.to_owned())).unwrap()).await;
        (status, serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_registry_reads_and_the_token_guarded_alias_writes() {
    let app = TestApp::new().await;
    let (record, good, bad) = wine_models(app.store.as_ref()).await;
    let (status, body) = app.get("/api/v1/models").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["models"][0]["name"], "winequality-red");
    assert_eq!(body["models"][0]["versions"], serde_json::json!([1, 2]));

    let (status, body) = app.get("/api/v1/models/winequality-red").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["versions"][1]["family"], "constant");
    assert!(body["versions"][0]["metrics"]["f1"].is_number(), "{body}");
    let (status, body) = app.get("/api/v1/models/winequality-red/versions/2").await;
    assert_eq!((status, body["version"].as_u64()), (StatusCode::OK, Some(2)));

    // Writes: no token, a wrong one, then the admin's.
    let uri = "/api/v1/models/winequality-red/aliases/production";
    let set = |v: u64| format!("{{\"version\": {v}}}");
    let (status, body) = app.send("PUT", uri, None, &set(good.version)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, _) = app.send("PUT", uri, Some("guess"), &set(good.version)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(app.get(uri).await.0 == StatusCode::NOT_FOUND, "nothing moved");
    for (v, status) in [
        (good.version, StatusCode::OK),
        (bad.version, StatusCode::OK),
        (9, StatusCode::NOT_FOUND),
    ] {
        let (got, body) = app.send("PUT", uri, Some(ADMIN_TOKEN), &set(v)).await;
        assert_eq!(got, status, "{body}");
    }
    let (status, body) = app.send("PUT", uri, Some(ADMIN_TOKEN), "{\"version\": \"two\"}").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, body) = app.send("PUT", uri, Some(ADMIN_TOKEN), "{not json").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = app
        .send("POST", &format!("{uri}/rollback"), Some(ADMIN_TOKEN), "")
        .await;
    assert_eq!(
        (status, body["version"].as_u64()),
        (StatusCode::OK, Some(good.version)),
        "{body}"
    );
    let (status, body) = app.get("/api/v1/models/winequality-red/aliases").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["production"]["version"], good.version);

    // Datasets and their reports.
    let (status, body) = app.get("/api/v1/datasets").await;
    assert_eq!(
        (status, body["datasets"][0]["name"].as_str()),
        (StatusCode::OK, Some("winequality-red"))
    );
    let uri = format!(
        "/api/v1/datasets/winequality-red/versions/{}/reports/profile",
        record.version
    );
    let (status, headers, html) = app.call(Request::get(&uri).body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/html"));
    assert!(
        String::from_utf8_lossy(&html).contains("<svg"),
        "an offline report with inline charts"
    );
    let (status, body) = app.get("/api/v1/datasets/winequality-red/versions/7").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(error_message(&body).contains("no version 7"), "{body}");
    assert_eq!(app.get("/api/v1/datasets/nope").await.0, StatusCode::NOT_FOUND);
}

fn infer_body(row: &[f64]) -> String {
    serde_json::json!({"inputs": [{"name": "input", "shape": [1, row.len()], "datatype": "FP64", "data": row}]})
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_production_model_answers_kserve_v2_and_shows_in_metrics() {
    let app = TestApp::new().await;
    let (_, good, _) = wine_models(app.store.as_ref()).await;
    // Nothing in production: not ready, unknown model.
    app.state.refresh_models().await.unwrap();
    let row = &good.sample_rows[0];
    let (status, body) = app
        .send("POST", "/v2/models/winequality-red/infer", None, &infer_body(row))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

    app.promote(good.version).await;
    app.state.refresh_models().await.unwrap();
    assert_eq!(app.get("/v2/health/ready").await.0, StatusCode::OK);
    let (status, body) = app
        .send("POST", "/v2/models/winequality-red/infer", None, &infer_body(row))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["model_version"], good.version.to_string());
    let ir: model_wasm::ModelIr = serde_json::from_slice(
        &crate::registry::load_artifact(app.store.as_ref(), &good, crate::registry::IR_ARTIFACT)
            .await
            .unwrap(),
    )
    .unwrap();
    let model_wasm::Prediction::Class { label, probabilities } = ir.predict(row).unwrap() else {
        panic!()
    };
    let outputs = body["outputs"].as_array().unwrap();
    let label_out = outputs.iter().find(|o| o["name"] == "label").unwrap();
    assert_eq!(label_out["data"][0], ir.classes()[label]);
    let p = outputs.iter().find(|o| o["name"] == "probabilities").unwrap();
    for (got, want) in p["data"].as_array().unwrap().iter().zip(&probabilities) {
        assert!(model_wasm::parity::agree(*want, got.as_f64().unwrap()));
    }
    // Bad requests are 4xx with a message.
    let short = infer_body(&row[..3]);
    let (status, body) = app.send("POST", "/v2/models/winequality-red/infer", None, &short).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, _) = app.send("POST", "/v2/models/winequality-red/infer", None, "{").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let (_, _, text) = app.call(Request::get("/metrics").body(Body::empty()).unwrap()).await;
    let text = String::from_utf8(text).unwrap();
    let ok = format!(
        "wasmline_inference_requests_total{{model=\"winequality-red\",version=\"{}\",runtime=\"wasmtime\",node=\"control-plane\",outcome=\"ok\"}} 1",
        good.version
    );
    assert!(text.contains(&ok), "{text}");
    assert!(text.contains("outcome=\"invalid\"} 2"), "{text}");
    assert!(
        text.contains(
            "wasmline_http_requests_total{method=\"POST\",route=\"/v2/models/{name}/infer\",status=\"200\"} 1"
        ),
        "labelled by the matched route:\n{text}"
    );
}

fn browser_batch(batch_id: &str, client: &str) -> TelemetryBatch {
    let mut b = batch(batch_id);
    b.node = client.into();
    b.reports[0].runtime = "browser".into();
    b
}

/// A browser batch from `address`, as the server sees it (its peer address).
fn browser_post(body: Vec<u8>, address: [u8; 4]) -> Request<Body> {
    let mut request = Request::post("/api/v1/telemetry/browser")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body))
        .unwrap();
    request
        .extensions_mut()
        .insert(axum::extract::ConnectInfo(SocketAddr::from((address, 40000))));
    request
}

#[tokio::test]
async fn browser_telemetry_is_checked_rate_limited_and_exported_as_advisory() {
    let app = TestApp::new().await;
    wine_models(app.store.as_ref()).await;
    let post = |body: Vec<u8>, address: [u8; 4]| app.call(browser_post(body, address));
    let (status, _, _) = post(
        serde_json::to_vec(&browser_batch("b-1", "client-1")).unwrap(),
        [10, 0, 0, 1],
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    // Kept by hour (for expiry), not by the node the client claims.
    let stored = app.store.list(telemetry::BROWSER_TELEMETRY_PREFIX).await.unwrap();
    assert_eq!(stored.len(), 1);
    let hour = chrono::Utc::now().format("%Y%m%d%H").to_string();
    assert_eq!(stored[0].key.as_str(), format!("telemetry/browser/{hour}/b-1.json"));

    // Absurd or foreign batches: 4xx, nothing counted.
    let mut negative = browser_batch("b-2", "client-1");
    negative.reports[0].latency_seconds.sum = -1.0;
    let mut buckets = browser_batch("b-3", "client-1");
    buckets.reports[0].latency_seconds.counts = vec![0; 10_000];
    let mut edge = browser_batch("b-4", "client-1");
    edge.reports[0].runtime = "wasmtime".into();
    let mut huge = browser_batch("b-5", "client-1");
    huge.reports[0].predictions.ok = u64::MAX;
    huge.reports[0].predictions.error = u64::MAX;
    let mut forged = browser_batch("b-6", "client-1");
    forged.reports[0].drift.features[0].name = "made_up_feature".into();
    for (bad, status, expected) in [
        (negative, StatusCode::BAD_REQUEST, "sum"),
        (buckets, StatusCode::BAD_REQUEST, "entries"),
        (edge, StatusCode::BAD_REQUEST, "browser telemetry only"),
        (huge, StatusCode::BAD_REQUEST, "at most 1000000 predictions"),
        (forged, StatusCode::UNPROCESSABLE_ENTITY, "no feature 'made_up_feature'"),
    ] {
        let (got, _, body) = post(serde_json::to_vec(&bad).unwrap(), [10, 0, 0, 1]).await;
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(got, status, "{body}");
        assert!(error_message(&body).contains(expected), "{body}");
    }
    let (status, _, _) = post(vec![b'x'; telemetry::BROWSER_BODY_LIMIT + 1], [10, 0, 0, 1]).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);

    let (_, _, text) = app.call(Request::get("/metrics").body(Body::empty()).unwrap()).await;
    let text = String::from_utf8(text).unwrap();
    assert!(
        text.contains("wasmline_inference_requests_total{model=\"winequality-red\",version=\"1\",runtime=\"browser\",node=\"browser\",trust=\"advisory\",outcome=\"ok\"} 1"),
        "{text}"
    );
    assert!(
        text.contains(
            "wasmline_data_drift_ratio{model=\"winequality-red\",version=\"1\",node=\"browser\",trust=\"advisory\"}"
        ),
        "{text}"
    );
    assert!(!text.contains("made_up_feature"), "{text}");
    assert!(text.contains("source=\"browser\",outcome=\"rejected\"} 6"), "{text}");
    let (status, summary) = app.get("/api/v1/telemetry/summary?model=winequality-red").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(summary["models"][0]["ok"], 1);
    assert!(summary["models"][0]["latency_seconds"]["p50"].is_number(), "{summary}");

    // One address may post BROWSER_BATCHES_PER_MINUTE batches a minute (one was posted above),
    // whatever node names it claims.
    let mut limited = 0;
    for i in 0..BROWSER_BATCHES_PER_MINUTE + 1 {
        let batch = browser_batch(&format!("r-{i}"), &format!("rotating-{i}"));
        let (status, _, _) = post(serde_json::to_vec(&batch).unwrap(), [10, 0, 0, 2]).await;
        if status == StatusCode::TOO_MANY_REQUESTS {
            limited += 1;
        }
    }
    assert_eq!(limited, 1, "a flood from one address is cut");
    let (status, _, _) = post(
        serde_json::to_vec(&browser_batch("other", "client-3")).unwrap(),
        [10, 0, 0, 3],
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "other addresses are not");
}

/// 10,000 anonymous posts from 50 addresses, each with a new node name, forged drift and some
/// with u64::MAX counters: nothing panics (a debug build checks overflow), the stored batches are
/// bounded by the per-address limit, the series by the manifest, and no series the alert rules
/// read (`trust!="advisory"`) appears.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_forged_browser_telemetry_moves_no_alert_and_stays_bounded() {
    let app = TestApp::new().await;
    wine_models(app.store.as_ref()).await;
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    for i in 0..10_000u32 {
        let mut batch = browser_batch(&format!("flood-{i}"), &format!("node-{i}"));
        let report = &mut batch.reports[0];
        report.drift.drifted_ratio = 1.0;
        for f in &mut report.drift.features {
            f.psi = 1e300;
            f.drifted = true;
        }
        if i % 3 == 0 {
            report.predictions.ok = u64::MAX;
        }
        let address = [10, 1, (i % 50) as u8, 1];
        let (status, _, _) = app
            .call(browser_post(serde_json::to_vec(&batch).unwrap(), address))
            .await;
        *statuses.entry(status.as_u16()).or_default() += 1;
    }
    let accepted = statuses.get(&202).copied().unwrap_or_default();
    assert!(
        accepted > 0 && accepted <= 50 * BROWSER_BATCHES_PER_MINUTE as usize * 2,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.keys().copied().collect::<Vec<_>>(),
        [202, 400, 429],
        "accepted, refused (u64::MAX counts) or rate-limited, nothing else: {statuses:?}"
    );
    let stored = app.store.list(telemetry::BROWSER_TELEMETRY_PREFIX).await.unwrap();
    assert_eq!(stored.len(), accepted);
    let (_, _, text) = app.call(Request::get("/metrics").body(Body::empty()).unwrap()).await;
    let text = String::from_utf8(text).unwrap();
    let drift: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("wasmline_data_drift_ratio{") || l.starts_with("wasmline_feature_psi{"))
        .collect();
    assert!(!drift.is_empty(), "{text}");
    assert!(
        drift.iter().all(|l| l.contains("trust=\"advisory\"")),
        "a drift series the alert rules would read: {drift:?}"
    );
    let series: BTreeSet<&str> = text
        .lines()
        .filter(|l| l.starts_with("wasmline_inference_requests_total{"))
        .map(|l| l.split_once(",outcome=").unwrap().0)
        .collect();
    assert_eq!(
        series.len(),
        1,
        "one series for one model version, whatever the nodes: {series:?}"
    );
    assert!(!text.contains("node-"), "client node names are no label values");
}

#[tokio::test]
async fn an_opted_in_models_browser_telemetry_is_exported_for_the_alert_rules() {
    let app = TestApp::with(ServerOptions {
        trusted_browser_models: ["winequality-red".to_owned()].into(),
        ..ServerOptions::default()
    })
    .await;
    wine_models(app.store.as_ref()).await;
    let body = serde_json::to_vec(&browser_batch("b-1", "client-1")).unwrap();
    assert_eq!(
        app.call(browser_post(body, [10, 0, 0, 1])).await.0,
        StatusCode::ACCEPTED
    );
    let (_, _, text) = app.call(Request::get("/metrics").body(Body::empty()).unwrap()).await;
    let text = String::from_utf8(text).unwrap();
    assert!(
        text.contains(
            "wasmline_data_drift_ratio{model=\"winequality-red\",version=\"1\",node=\"browser\",trust=\"opted-in\"}"
        ),
        "{text}"
    );
}

#[tokio::test]
async fn browser_batches_expire_after_the_retention() {
    let app = TestApp::new().await;
    let now = chrono::Utc::now();
    let hour = |h: i64| (now - chrono::Duration::hours(h)).format("%Y%m%d%H").to_string();
    for (h, id) in [(0, "now"), (24, "a-day-ago"), (26, "older"), (300, "much-older")] {
        let key = Key::new(format!("telemetry/browser/{}/{id}.json", hour(h))).unwrap();
        app.store.put(&key, bytes::Bytes::from_static(b"{}")).await.unwrap();
    }
    // The layout before hours (by client id) is expired too.
    let legacy = Key::new("telemetry/browser/some-client/b-1.json").unwrap();
    app.store.put(&legacy, bytes::Bytes::from_static(b"{}")).await.unwrap();
    let removed = telemetry::expire_browser_batches(app.store.as_ref(), now, Duration::from_secs(24 * 3600))
        .await
        .unwrap();
    assert_eq!(removed, 3);
    let left: Vec<String> = app
        .store
        .list(telemetry::BROWSER_TELEMETRY_PREFIX)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.key.as_str().rsplit('/').next().unwrap().to_owned())
        .collect();
    assert_eq!(left, ["a-day-ago.json", "now.json"]);
}

#[tokio::test]
async fn pipeline_runs_start_report_and_cancel_over_the_api() {
    let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/winequality/pipeline.toml");
    let app = TestApp::with(ServerOptions {
        runs: RunSettings {
            allow_sources: vec![data.parent().unwrap().display().to_string()],
            ..RunSettings::default()
        },
        ..ServerOptions::default()
    })
    .await;
    let example = std::fs::read_to_string(&data).unwrap();
    let csv = data.with_file_name("winequality-red.csv");
    let source = example.lines().find(|l| l.starts_with("source = ")).unwrap();
    let config = example.replace(source, &format!("source = {:?}", csv.display().to_string()));
    let body = serde_json::json!({ "config": config }).to_string();

    let (status, _) = app.send("POST", "/api/v1/pipeline/runs", None, &body).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let broken = serde_json::json!({ "config": "[data]\nsourc = 1" }).to_string();
    let (status, answer) = app
        .send("POST", "/api/v1/pipeline/runs", Some(ADMIN_TOKEN), &broken)
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert!(error_message(&answer).starts_with("config:"), "{answer}");
    assert!(app.store.list("runs/").await.unwrap().is_empty(), "nothing started");

    // Started, then cancelled before its last step: it stops between two steps.
    let (status, answer) = app
        .send("POST", "/api/v1/pipeline/runs", Some(ADMIN_TOKEN), &body)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let id = answer["run_id"].as_str().unwrap().to_owned();
    let (status, _) = app
        .send(
            "POST",
            &format!("/api/v1/pipeline/runs/{id}/cancel"),
            Some(ADMIN_TOKEN),
            "",
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let run = wait_for_end(&app, &id).await;
    assert_eq!(run["status"], "cancelled", "{run}");
    assert!(run["steps"].as_array().unwrap().len() < 11, "{run}");
    let (status, answer) = app
        .send(
            "POST",
            &format!("/api/v1/pipeline/runs/{id}/cancel"),
            Some(ADMIN_TOKEN),
            "",
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    let (status, _) = app
        .send("POST", "/api/v1/pipeline/runs/nope/cancel", Some(ADMIN_TOKEN), "")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// Polls a triggered run until this server no longer executes it.
async fn wait_for_end(app: &TestApp, id: &str) -> serde_json::Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let (status, run) = app.get(&format!("/api/v1/pipeline/runs/{id}")).await;
        if status == StatusCode::OK && run["active"] == false {
            return run;
        }
        assert!(tokio::time::Instant::now() < deadline, "run {id} did not end: {run}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The wine example with a quick logistic regression (model `wine`), reading `csv`.
fn quick_wine_config(csv: &std::path::Path) -> crate::config::PipelineConfig {
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/winequality/pipeline.toml");
    let text = std::fs::read_to_string(example).unwrap();
    let data = text.split("\n[train]").next().unwrap();
    let source = data.lines().find(|l| l.starts_with("source = ")).unwrap();
    let text = format!(
        "{}\n[train]\nmodel_name = \"wine\"\nmetric = \"f1\"\nfolds = 3\n\n[[train.models]]\nfamily = \"logistic_regression\"\ngrid = {{ alpha = [1.0] }}\n",
        data.replace(source, &format!("source = {:?}", csv.display().to_string()))
    );
    crate::config::PipelineConfig::parse(&text, csv.parent().unwrap().to_path_buf()).unwrap()
}

fn drift_alert(model: &str) -> String {
    serde_json::json!({
        "version": "4", "status": "firing", "receiver": "wasmline",
        "alerts": [
            {"status": "firing", "labels": {"alertname": "WasmlineDataDrift", "model": model, "severity": "warning"}},
            {"status": "firing", "labels": {"alertname": "WasmlineHighLatency", "model": model}},
            {"status": "resolved", "labels": {"alertname": "WasmlineDataDrift", "model": "other"}}
        ]
    })
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drift_alert_retrains_through_the_gate_once_per_cooldown() {
    let app = TestApp::new().await;
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("wine.csv");
    let original = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/winequality/winequality-red.csv"),
    )
    .unwrap();
    std::fs::write(&csv, &original).unwrap();
    let pipeline = crate::pipeline::Pipeline::new(
        app.store.as_ref(),
        quick_wine_config(&csv),
        crate::pipeline::new_run_id(),
        crate::pipeline::RunOptions::default(),
    )
    .unwrap();
    pipeline.run_all(|_| {}).await.unwrap();

    // Refused: no token, not a webhook, an unknown model.
    let hook = "/api/v1/hooks/alertmanager";
    assert_eq!(
        app.send("POST", hook, None, &drift_alert("wine")).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (status, body) = app.send("POST", hook, Some(ADMIN_TOKEN), "{\"alerts\": 3}").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, body) = app.send("POST", hook, Some(ADMIN_TOKEN), &drift_alert("nope")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(error_message(&body).contains("'nope'"), "{body}");
    assert!(app.store.list(hooks::RETRAINS_PREFIX).await.unwrap().is_empty());

    // New data whose labels carry no signal: the retrained candidate is worse, the gate keeps
    // production, and the record says so.
    let mut lines: Vec<&str> = original.lines().collect();
    let header = lines.remove(0);
    let qualities: Vec<&str> = lines.iter().map(|l| l.rsplit(',').next().unwrap()).collect();
    let shuffled: Vec<String> = lines
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let (features, _) = l.rsplit_once(',').unwrap();
            format!("{features},{}", qualities[(i * 7919) % qualities.len()])
        })
        .collect();
    std::fs::write(&csv, format!("{header}\n{}\n", shuffled.join("\n"))).unwrap();
    // An alert on browser telemetry (trust="advisory") starts nothing.
    let mut advisory: serde_json::Value = serde_json::from_str(&drift_alert("wine")).unwrap();
    advisory["alerts"][0]["labels"]["trust"] = "advisory".into();
    let advisory = advisory.to_string();
    let (status, body) = app.send("POST", hook, Some(ADMIN_TOKEN), &advisory).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["triggers"][0]["action"], "ignored", "{body}");
    assert!(
        body["triggers"][0]["detail"].as_str().unwrap().contains("advisory"),
        "{body}"
    );

    // Six webhooks at once (Alertmanager replicas, retries): exactly one starts a retrain.
    let alert = drift_alert("wine");
    let post = || app.send("POST", hook, Some(ADMIN_TOKEN), &alert);
    let answers = tokio::join!(post(), post(), post(), post(), post(), post());
    let answers = [answers.0, answers.1, answers.2, answers.3, answers.4, answers.5];
    let mut started = Vec::new();
    for (status, body) in answers {
        assert_eq!(status, StatusCode::OK, "{body}");
        let triggers = body["triggers"].as_array().unwrap();
        assert_eq!(triggers.len(), 1, "one drift alert for one model: {body}");
        match triggers[0]["action"].as_str() {
            Some("started") => started.push(triggers[0]["run_id"].as_str().unwrap().to_owned()),
            Some("cooldown") => {}
            _ => panic!("{body}"),
        }
    }
    assert_eq!(started.len(), 1, "{started:?}");
    let run_id = started.remove(0);
    let run = wait_for_end(&app, &run_id).await;
    assert_eq!(run["status"], "succeeded", "{run}");

    // Another alert within the cooldown starts nothing.
    let (_, body) = app.send("POST", hook, Some(ADMIN_TOKEN), &drift_alert("wine")).await;
    assert_eq!(body["triggers"][0]["action"], "cooldown", "{body}");

    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let record = loop {
        let (_, list) = app.get("/api/v1/hooks/retrains?model=wine").await;
        let started = list["triggers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["action"] == "started")
            .cloned()
            .unwrap();
        if !started["outcome"].is_null() {
            break started;
        }
        assert!(tokio::time::Instant::now() < deadline, "no outcome recorded: {list}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(record["outcome"], "kept", "{record}");
    assert_eq!(record["production_before"], 1);
    assert_eq!(record["production_after"], 1, "production stays");
    assert!(record["detail"].as_str().unwrap().contains("report.md"), "{record}");
    let alias = crate::registry::get_alias(app.store.as_ref(), "wine", "production")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(alias.version, 1);
    assert!(
        crate::registry::list_versions(app.store.as_ref(), "wine")
            .await
            .unwrap()
            .len()
            == 2,
        "the candidate was registered, not promoted"
    );
}

#[tokio::test]
async fn the_page_and_the_sdk_built_into_the_binary_are_served_compressed() {
    let app = TestApp::new().await;
    let read =
        |file: &str| std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(file)).unwrap();
    let js = "text/javascript; charset=utf-8";
    for (path, file, gzip, content_type) in [
        (
            "/",
            "web/index.html",
            "web/dist/index.html.gz",
            "text/html; charset=utf-8",
        ),
        ("/web/app.js", "web/dist/app.js", "web/dist/app.js.gz", js),
        (
            "/web/style.css",
            "web/style.css",
            "web/dist/style.css.gz",
            "text/css; charset=utf-8",
        ),
        (
            "/sdk/wasmline_sdk.js",
            "web/sdk/dist/wasmline_sdk.js",
            "web/sdk/dist/wasmline_sdk.js.gz",
            js,
        ),
        (
            "/sdk/wasmline_sdk_bg.wasm",
            "web/sdk/dist/wasmline_sdk_bg.wasm",
            "web/sdk/dist/wasmline_sdk_bg.wasm.gz",
            "application/wasm",
        ),
    ] {
        let (status, _, body) = app.call(Request::get(path).body(Body::empty()).unwrap()).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert!(body == read(file), "{path} is not {file}");
        let request = Request::get(path)
            .header(header::ACCEPT_ENCODING, "deflate, gzip")
            .body(Body::empty())
            .unwrap();
        let (status, headers, gzipped) = app.call(request).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers[header::CONTENT_ENCODING], "gzip", "{path}");
        assert_eq!(headers[header::CONTENT_TYPE], content_type, "{path}");
        // Each goes out as the build gzipped it (zopfli).
        assert!(gzipped == read(gzip), "{path} is not {gzip}");
        assert_eq!(headers[header::VARY], "accept-encoding", "{path}");
    }
    // A client that refuses gzip gets the file as it is.
    let request = Request::get("/sdk/wasmline_sdk_bg.wasm")
        .header(header::ACCEPT_ENCODING, "gzip;q=0, br")
        .body(Body::empty())
        .unwrap();
    let (status, headers, body) = app.call(request).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!headers.contains_key(header::CONTENT_ENCODING));
    assert!(body == read("web/sdk/dist/wasmline_sdk_bg.wasm"), "the module as it is");
    let (status, body) = app.get("/sdk/model.wasm").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error_message(&body), "no SDK file 'model.wasm'");
    assert_eq!(app.get("/sdk/../secret").await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_retrain_hook_takes_the_alertmanager_token_which_opens_nothing_else() {
    const ALERTMANAGER_TOKEN: &str = "alertmanager-secret";
    let app = TestApp::with(ServerOptions {
        alertmanager_token: Some(ALERTMANAGER_TOKEN.into()),
        ..ServerOptions::default()
    })
    .await;
    let hook = "/api/v1/hooks/alertmanager";
    // Past the token check, both tokens reach the body check (not a webhook: 422).
    for token in [ALERTMANAGER_TOKEN, ADMIN_TOKEN] {
        let (status, body) = app.send("POST", hook, Some(token), "{\"alerts\": 3}").await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{token}: {body}");
    }
    let (status, body) = app.send("POST", hook, Some(EDGE_TOKEN), "{}").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(error_message(&body), "invalid Alertmanager token");
    let (status, body) = app.send("POST", hook, None, "{}").await;
    assert_eq!(
        (status, error_message(&body)),
        (StatusCode::UNAUTHORIZED, "missing bearer token")
    );
    // The Alertmanager token is no admin token: writes refuse it.
    let (status, body) = app
        .send(
            "PUT",
            "/api/v1/models/wine/aliases/production",
            Some(ALERTMANAGER_TOKEN),
            "{\"version\": 1}",
        )
        .await;
    assert_eq!(
        (status, error_message(&body)),
        (StatusCode::UNAUTHORIZED, "invalid admin token")
    );
    let (status, body) = app
        .send("POST", "/api/v1/pipeline/runs", Some(ALERTMANAGER_TOKEN), "{}")
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
}

#[tokio::test]
async fn methods_a_client_makes_up_count_as_other_so_the_series_stay_bounded() {
    let app = TestApp::new().await;
    for method in ["FROBNICATE", "X-1", "GET"] {
        let request = Request::builder()
            .method(method)
            .uri("/api/v1/models")
            .body(Body::empty())
            .unwrap();
        app.call(request).await;
    }
    let (_, _, text) = app.call(Request::get("/metrics").body(Body::empty()).unwrap()).await;
    let text = String::from_utf8(text).unwrap();
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("wasmline_http_requests_total{") && l.contains("route=\"/api/v1/models\""))
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("method=\"other\"") && l.ends_with(" 2")),
        "{lines:?}"
    );
    assert!(lines.iter().any(|l| l.contains("method=\"GET\"")), "{lines:?}");
    assert!(!text.contains("FROBNICATE") && !text.contains("X-1"), "{text}");
}
