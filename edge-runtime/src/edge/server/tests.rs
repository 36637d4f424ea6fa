//! The KServe v2 routes, driven with `oneshot` (no socket): answers against the IR's reference
//! evaluator, and every refusal with its status and message.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use edge_runtime::kserve::InferLimits;
use edge_runtime::{LoadOptions, QueueLimits, Runtime, RuntimeConfig, ServedModel};
use model_wasm::{ModelIr, Prediction};
use serde_json::{Value, json};
use tower::ServiceExt;

use super::app;
use crate::edge::metrics::EdgeMetrics;
use crate::edge::models::EdgeModels;
use crate::edge::testing::support::{
    CLASSES, boosted_ir, classifier_ir, matrix_request, model_files, regressor_ir, runtime, served, with_module,
};

/// An edge serving `wine` (classifier, v3, with v2 kept) and `reg` (regressor, v1); `missing`
/// is configured but never loaded unless `all_loaded`.
fn edge(limits: InferLimits, all_loaded: bool) -> (Router, Arc<EdgeModels>) {
    let mut names = vec!["wine".to_owned(), "reg".to_owned()];
    if !all_loaded {
        names.push("missing".to_owned());
    }
    let models = Arc::new(EdgeModels::new(names, Arc::new(EdgeMetrics::new("test-node")), 100));
    models.install(served("wine", 2, &classifier_ir()));
    models.install(served("wine", 3, &classifier_ir()));
    models.install(served("reg", 1, &regressor_ir(0.5)));
    (app(models.clone(), limits), models)
}

async fn call(app: &Router, method: &str, path: &str, body: Option<Vec<u8>>) -> (StatusCode, Value) {
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json")
        .body(body.map_or_else(Body::empty, Body::from))
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
    let value =
        serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
    (status, value)
}

async fn infer(app: &Router, path: &str, body: &Value) -> (StatusCode, Value) {
    call(app, "POST", path, Some(body.to_string().into_bytes())).await
}

/// Asserts a refusal: the status and the exact error message.
async fn refused(app: &Router, path: &str, body: Vec<u8>, status: StatusCode, message: &str) {
    let (got, value) = call(app, "POST", path, Some(body)).await;
    assert_eq!(got, status, "{value}");
    assert_eq!(value["error"].as_str(), Some(message), "{value}");
}

fn class_of(ir: &ModelIr, row: &[f64]) -> (String, Vec<f64>) {
    match ir.predict(row).unwrap() {
        Prediction::Class { label, probabilities } => (CLASSES[label].to_owned(), probabilities),
        Prediction::Value(_) => panic!("a classifier"),
    }
}

fn rows() -> Vec<Vec<f64>> {
    vec![vec![1.0, 2.0, 3.0], vec![9.0, 0.5, 1.0], vec![0.0, 7.0, 2.5]]
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

fn assert_classes(body: &Value, rows: &[Vec<f64>]) {
    let ir = classifier_ir();
    let labels = body["outputs"][0]["data"].as_array().unwrap();
    let probabilities = body["outputs"][1]["data"].as_array().unwrap();
    assert_eq!(body["outputs"][1]["shape"], json!([rows.len(), 3]));
    for (i, row) in rows.iter().enumerate() {
        let (label, p) = class_of(&ir, row);
        assert_eq!(labels[i], label, "row {i}");
        for (k, p) in p.iter().enumerate() {
            assert!(
                close(probabilities[i * 3 + k].as_f64().unwrap(), *p),
                "row {i} class {k}"
            );
        }
    }
}

#[tokio::test]
async fn a_matrix_predicts_what_the_ir_predicts() {
    let (app, _) = edge(InferLimits::default(), true);
    let (status, body) = infer(&app, "/v2/models/wine/infer", &matrix_request(&rows())).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["model_name"], "wine");
    assert_eq!(body["model_version"], "3");
    assert_eq!(body["id"], "req-1");
    assert_eq!(body["outputs"][0]["name"], "label");
    assert_eq!(body["outputs"][0]["datatype"], "BYTES");
    assert_eq!(body["outputs"][1]["name"], "probabilities");
    assert_classes(&body, &rows());

    // Nested data and FP32 are accepted too.
    let nested = json!({"inputs": [{"name": "x", "datatype": "FP32", "shape": [3, 3], "data": rows()}]});
    let (status, body) = infer(&app, "/v2/models/wine/infer", &nested).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.get("id").is_none());
    assert_classes(&body, &rows());
}

#[tokio::test]
async fn one_tensor_per_feature_by_name() {
    let (app, _) = edge(InferLimits::default(), true);
    let columns: Vec<Value> = ["sugar", "alcohol", "acidity"]
        .iter()
        .map(|name| {
            let i = crate::edge::testing::support::FEATURES.iter().position(|f| f == name).unwrap();
            json!({"name": name, "datatype": "FP64", "shape": [3], "data": rows().iter().map(|r| r[i]).collect::<Vec<_>>()})
        })
        .collect();
    let (status, body) = infer(&app, "/v2/models/wine/infer", &json!({"inputs": columns})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_classes(&body, &rows());
}

#[tokio::test]
async fn outputs_can_be_picked_and_versions_addressed() {
    let (app, _) = edge(InferLimits::default(), true);
    let mut request = matrix_request(&rows());
    request["outputs"] = json!([{"name": "probabilities"}]);
    let (status, body) = infer(&app, "/v2/models/wine/versions/2/infer", &request).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["model_version"], "2");
    assert_eq!(body["outputs"].as_array().unwrap().len(), 1);
    assert_eq!(body["outputs"][0]["name"], "probabilities");

    let (status, body) = infer(
        &app,
        "/v2/models/reg/infer",
        &matrix_request(&[vec![3.0, 1.0], vec![0.0, 0.0]]),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["outputs"][0]["name"], "value");
    assert_eq!(body["outputs"][0]["shape"], json!([2]));
    let reference = |row: &[f64]| match regressor_ir(0.5).predict(row).unwrap() {
        Prediction::Value(v) => v,
        Prediction::Class { .. } => panic!(),
    };
    assert_eq!(
        body["outputs"][0]["data"],
        json!([reference(&[3.0, 1.0]), reference(&[0.0, 0.0])])
    );
}

#[tokio::test]
async fn bad_requests_are_refused_with_the_reason() {
    let limits = InferLimits {
        max_batch_rows: 4,
        max_body_bytes: 2000,
        ..InferLimits::default()
    };
    let (app, _) = edge(limits, true);
    let path = "/v2/models/wine/infer";
    let body = |v: Value| v.to_string().into_bytes();
    let tensor = |datatype: &str, shape: Value, data: Value| {
        body(json!({"inputs": [{"name": "input", "datatype": datatype, "shape": shape, "data": data}]}))
    };
    let bad = StatusCode::BAD_REQUEST;

    refused(
        &app,
        path,
        b"{\"inputs\": [".to_vec(),
        bad,
        "malformed JSON: EOF while parsing a list at line 1 column 12",
    )
    .await;
    refused(
        &app,
        path,
        tensor("FP64", json!([1, 2]), json!([1, 2])),
        bad,
        "input 'input': expected 3 features (shape [n, 3]), got shape [1, 2]",
    )
    .await;
    refused(
        &app,
        path,
        tensor("INT64", json!([1, 3]), json!([1, 2, 3])),
        bad,
        "input 'input': datatype INT64 is not supported; send FP32 or FP64",
    )
    .await;
    refused(
        &app,
        path,
        tensor("FP64", json!([2, 3]), json!([1, 2, 3, 4, 5])),
        bad,
        "input 'input': shape [2, 3] needs 6 values, data has 5",
    )
    .await;
    refused(
        &app,
        path,
        tensor("FP64", json!([1, 3]), json!([1, "NaN", 3])),
        bad,
        "row 0, feature 'acidity': NaN is not a finite number",
    )
    .await;
    refused(
        &app,
        path,
        tensor("FP64", json!([2, 3]), json!([1, 2, 3, 4, 5, "-Infinity"])),
        bad,
        "row 1, feature 'sugar': -inf is not a finite number",
    )
    .await;
    refused(
        &app,
        path,
        tensor("FP64", json!([1, 3]), json!([1, true, 3])),
        bad,
        "input 'input': true is not a number (datatype FP32/FP64)",
    )
    .await;
    refused(
        &app,
        path,
        tensor("FP64", json!([0, 3]), json!([])),
        bad,
        "the batch is empty (0 rows)",
    )
    .await;
    refused(
        &app,
        path,
        tensor("FP64", json!([5, 3]), json!(vec![1.0; 15])),
        StatusCode::PAYLOAD_TOO_LARGE,
        "the batch has 5 rows, the limit is 4; split it",
    )
    .await;
    refused(
        &app,
        path,
        tensor("FP64", json!([1, 3]), json!(vec![1.0; 1000])),
        StatusCode::PAYLOAD_TOO_LARGE,
        "the request body is larger than the limit of 2000 bytes",
    )
    .await;
    refused(
        &app,
        path,
        body(json!({"inputs": [{"name": "alcohol", "datatype": "FP64", "shape": [1], "data": [1]}]})),
        bad,
        "expected 3 features, missing input for 'acidity', 'sugar'",
    )
    .await;
    refused(
        &app,
        path,
        body(json!({"inputs": [{"name": "colour", "datatype": "FP64", "shape": [1], "data": [1]}]})),
        bad,
        "unknown input 'colour': send one tensor of shape [n, 3], or one tensor of shape [n] per feature named \
         'alcohol', 'acidity', 'sugar'",
    )
    .await;
    refused(
        &app,
        path,
        body(json!({"inputs": []})),
        bad,
        "the request has no inputs",
    )
    .await;
    let mut request = matrix_request(&rows()[..1]);
    request["outputs"] = json!([{"name": "value"}]);
    refused(
        &app,
        path,
        body(request),
        bad,
        "unknown output 'value'; the model gives: label, probabilities",
    )
    .await;

    let ok = body(matrix_request(&rows()[..1]));
    refused(
        &app,
        "/v2/models/beer/infer",
        ok.clone(),
        StatusCode::NOT_FOUND,
        "unknown model 'beer'",
    )
    .await;
    refused(
        &app,
        "/v2/models/wine/versions/1/infer",
        ok.clone(),
        StatusCode::NOT_FOUND,
        "model 'wine' has no loaded version '1' (loaded: 3, 2)",
    )
    .await;
    refused(
        &app,
        "/v2/models/wine/versions/latest/infer",
        ok,
        StatusCode::NOT_FOUND,
        "model 'wine' has no loaded version 'latest' (loaded: 3, 2)",
    )
    .await;
}

#[tokio::test]
async fn health_metadata_and_readiness() {
    let (app, _) = edge(InferLimits::default(), false);
    let (status, body) = call(&app, "GET", "/v2/health/live", None).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"live": true})));
    let (status, body) = call(&app, "GET", "/v2/health/ready", None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["not_loaded"], json!(["missing"]));
    let (status, _) = call(&app, "GET", "/v2/models/missing/ready", None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let (status, _) = call(&app, "GET", "/v2/models/wine/ready", None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = call(&app, "GET", "/v2/models/beer/ready", None).await;
    assert_eq!(
        (status, &body["error"]),
        (StatusCode::NOT_FOUND, &json!("unknown model 'beer'"))
    );

    let (status, body) = call(&app, "GET", "/v2/models/wine", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["versions"], json!(["3", "2"]));
    assert_eq!(body["platform"], "wasmline_wasm");
    assert_eq!(
        body["inputs"][2],
        json!({"name": "sugar", "datatype": "FP64", "shape": [-1]})
    );
    assert_eq!(body["outputs"][1]["shape"], json!([-1, 3]));
    let (status, body) = call(&app, "GET", "/v2", None).await;
    assert_eq!((status, &body["name"]), (StatusCode::OK, &json!("wasmline-edge")));
    let (status, body) = call(&app, "GET", "/nowhere", None).await;
    assert_eq!(
        (status, &body["error"]),
        (StatusCode::NOT_FOUND, &json!("no route for GET /nowhere"))
    );

    let (app, _) = edge(InferLimits::default(), true);
    let (status, _) = call(&app, "GET", "/v2/health/ready", None).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn metrics_count_outcomes_and_drift() {
    let (app, models) = edge(InferLimits::default(), true);
    infer(&app, "/v2/models/wine/infer", &matrix_request(&rows())).await;
    // Every row far above the training range: all three features drift.
    infer(&app, "/v2/models/wine/infer", &matrix_request(&vec![vec![50.0; 3]; 50])).await;
    infer(&app, "/v2/models/wine/infer", &json!({"inputs": []})).await;
    // A method the client made up is counted as `other`, not as a series of its own.
    call(&app, "FROBNICATE", "/v2/health/live", None).await;
    let (status, text) = call(&app, "GET", "/metrics", None).await;
    assert_eq!(status, StatusCode::OK);
    let text = text.as_str().unwrap();
    let labels = r#"model="wine",node="test-node",outcome="ok",runtime="wasmtime",version="3""#;
    assert!(
        text.contains(&format!("wasmline_inference_requests_total{{{labels}}} 2")),
        "{text}"
    );
    assert!(
        text.contains(r#"outcome="invalid",runtime="wasmtime",version="3"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"wasmline_inference_duration_seconds_count{model="wine",node="test-node",runtime="wasmtime",version="3"} 2"#),
        "{text}"
    );
    assert!(
        text.contains(r#"wasmline_data_drift_ratio{model="wine",node="test-node",version="3"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"wasmline_feature_psi{feature="sugar",model="wine",node="test-node",version="3"}"#),
        "{text}"
    );
    assert!(
        text.contains(r#"wasmline_model_info{model="wine",node="test-node","#),
        "{text}"
    );
    assert!(
        text.contains(r#"wasmline_http_requests_total{method="POST",path="/v2/models/{name}/infer",status="200"} 2"#),
        "{text}"
    );
    assert!(
        text.contains(r#"wasmline_http_requests_total{method="other",path="/v2/health/live""#)
            && !text.contains("FROBNICATE"),
        "{text}"
    );

    let reports = models.take_reports();
    assert_eq!(reports.len(), 1);
    assert_eq!(
        (
            reports[0].predictions.ok,
            reports[0].predictions.error,
            reports[0].predictions.rows
        ),
        (2, 1, 53)
    );
    assert_eq!(reports[0].drift.drifted_ratio, 1.0);
    assert!(models.take_reports().is_empty(), "counts start again after a report");
}

#[tokio::test]
async fn a_time_window_forgets_rows_older_than_its_age() {
    const AGE: Duration = Duration::from_secs(2);
    let models = Arc::new(
        EdgeModels::new(vec!["wine".to_owned()], Arc::new(EdgeMetrics::new("test-node")), 100).with_drift_max_age(AGE),
    );
    models.install(served("wine", 1, &classifier_ir()));
    let app = app(models.clone(), InferLimits::default());
    let drift_ratio = r#"wasmline_data_drift_ratio{model="wine",node="test-node",version="1"}"#;

    // Shifted rows: every feature drifts while they are in the window.
    let started = Instant::now();
    infer(&app, "/v2/models/wine/infer", &matrix_request(&vec![vec![50.0; 3]; 50])).await;
    let (_, text) = call(&app, "GET", "/metrics", None).await;
    assert!(started.elapsed() < AGE, "the test machine is too slow for this window");
    assert!(text.as_str().unwrap().contains(&format!("{drift_ratio} 1")), "{text}");

    // Past the age, the window is empty: no drift gauges at all (no recent rows, nothing to
    // state), although the 100-row count window would still hold every row.
    tokio::time::sleep(AGE + Duration::from_millis(200)).await;
    let (_, text) = call(&app, "GET", "/metrics", None).await;
    let text = text.as_str().unwrap();
    assert!(!text.contains("wasmline_data_drift_ratio{"), "{text}");
    assert!(!text.contains("wasmline_feature_psi{"), "{text}");
    assert!(
        text.contains(r#"outcome="ok",runtime="wasmtime",version="1"} 1"#),
        "counters stay: {text}"
    );

    // New rows are the whole window: the report's drift counts them alone.
    infer(&app, "/v2/models/wine/infer", &matrix_request(&rows())).await;
    let reports = models.take_reports();
    assert_eq!(reports[0].predictions.ok, 2);
    for feature in &reports[0].drift.features {
        assert_eq!(feature.observed, rows().len() as u64, "{}", feature.name);
    }
}

#[tokio::test]
async fn a_zero_row_window_tracks_no_drift_but_counts_requests() {
    let models = Arc::new(EdgeModels::new(
        vec!["wine".to_owned()],
        Arc::new(EdgeMetrics::new("test-node")),
        0,
    ));
    models.install(served("wine", 1, &classifier_ir()));
    let app = app(models.clone(), InferLimits::default());
    infer(&app, "/v2/models/wine/infer", &matrix_request(&vec![vec![50.0; 3]; 50])).await;
    let (_, text) = call(&app, "GET", "/metrics", None).await;
    let text = text.as_str().unwrap();
    assert!(!text.contains("wasmline_data_drift_ratio{"), "{text}");
    assert!(
        text.contains(r#"outcome="ok",runtime="wasmtime",version="1"} 1"#),
        "{text}"
    );
    let reports = models.take_reports();
    assert_eq!((reports[0].predictions.ok, reports[0].predictions.rows), (1, 50));
    assert!(
        reports[0].drift.features.iter().all(|f| f.observed == 0),
        "{:?}",
        reports[0].drift
    );
}

#[tokio::test]
async fn a_trap_fails_one_request_and_the_model_keeps_serving() {
    // Traps when x0 > 100; the manifest's sample rows (1 and 5) pass the smoke test.
    let module = crate::edge::testing::fixtures::with_body(
        2,
        "(if (f64.gt (call $in (i32.const 0) (i32.const 0)) (f64.const 100)) (then unreachable))",
    )
    .wasm();
    let files = with_module("trappy", 1, &regressor_ir(0.0), module, None);
    let model = ServedModel::load(runtime(), &files.manifest, &files.wasm, &LoadOptions::default()).unwrap();
    let models = Arc::new(EdgeModels::new(
        vec!["trappy".into()],
        Arc::new(EdgeMetrics::new("n")),
        10,
    ));
    models.install(Arc::new(model));
    let app = app(models, InferLimits::default());
    let path = "/v2/models/trappy/infer";
    let (status, body) = infer(&app, path, &matrix_request(&[vec![500.0, 0.0]])).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .starts_with("inference failed: the model module trapped"),
        "{body}"
    );
    let (status, body) = infer(&app, path, &matrix_request(&[vec![5.0, 0.0]])).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, text) = call(&app, "GET", "/metrics", None).await;
    assert!(
        text.as_str()
            .unwrap()
            .contains(r#"outcome="error",runtime="wasmtime",version="1"} 1"#)
    );
}

/// What the IR's evaluator predicts for a regressor's row.
fn value_of(ir: &ModelIr, row: &[f64]) -> f64 {
    match ir.predict(row).unwrap() {
        Prediction::Value(v) => v,
        Prediction::Class { .. } => panic!("a regressor"),
    }
}

#[tokio::test]
async fn missing_values_reach_a_model_that_routes_them_and_are_refused_elsewhere() {
    let models = Arc::new(EdgeModels::new(
        vec!["boosted".into(), "wine".into()],
        Arc::new(EdgeMetrics::new("test-node")),
        100,
    ));
    let ir = boosted_ir();
    models.install(served("boosted", 1, &ir));
    models.install(served("wine", 3, &classifier_ir()));
    let app = app(models.clone(), InferLimits::default());
    let path = "/v2/models/boosted/infer";
    let nan = f64::NAN;

    // A matrix as Python's json.dumps writes NaN (a bare token), with null beside it.
    let body = br#"{"id": "m", "inputs": [{"name": "input", "datatype": "FP64", "shape": [4, 3],
        "data": [[NaN, 1.0, 1.0], [7.0, NaN, 9.0], [null, null, 1.0], [-NaN, 0.5, 4.0]]}]}"#;
    let (status, body) = call(&app, "POST", path, Some(body.to_vec())).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let expected = [[nan, 1.0, 1.0], [7.0, nan, 9.0], [nan, nan, 1.0], [nan, 0.5, 4.0]].map(|row| value_of(&ir, &row));
    // The missing values took their routes: x0 left (+1), x1 right (+0.25).
    assert_eq!(expected, [1.625, -0.25, 1.75, 1.5625]);
    assert_eq!(body["outputs"][0]["data"], json!(expected), "{body}");

    // One tensor per feature, with null, the bare token and the string "NaN".
    let body = br#"{"inputs": [
        {"name": "x0", "datatype": "FP64", "shape": [3], "data": [null, 6, "NaN"]},
        {"name": "x1", "datatype": "FP32", "shape": [3], "data": [NaN, 0, 3]},
        {"name": "x2", "datatype": "FP64", "shape": [3], "data": [1, 1, 1]}]}"#;
    let (status, body) = call(&app, "POST", path, Some(body.to_vec())).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let expected = [[nan, nan, 1.0], [6.0, 0.0, 1.0], [nan, 3.0, 1.0]].map(|row| value_of(&ir, &row));
    assert_eq!(body["outputs"][0]["data"], json!(expected), "{body}");

    // x2 takes no missing value, and no feature takes an infinity.
    let bad = StatusCode::BAD_REQUEST;
    let matrix = |data: &str| {
        format!(r#"{{"inputs": [{{"name": "input", "datatype": "FP64", "shape": [2, 3], "data": {data}}}]}}"#)
            .into_bytes()
    };
    refused(
        &app,
        path,
        matrix("[1, 1, 1, 1, 1, NaN]"),
        bad,
        "row 1, feature 'x2': NaN is not a finite number",
    )
    .await;
    refused(
        &app,
        path,
        matrix("[[1, 1, null], [1, 1, 1]]"),
        bad,
        "row 0, feature 'x2': null is not a number",
    )
    .await;
    refused(
        &app,
        path,
        matrix("[[1, 1, 1], [Infinity, 1, 1]]"),
        bad,
        "row 1, feature 'x0': inf is not a finite number",
    )
    .await;
    refused(
        &app,
        path,
        matrix("[[1, -Infinity, 1], [1, 1, 1]]"),
        bad,
        "row 0, feature 'x1': -inf is not a finite number",
    )
    .await;
    // The tokens are JSON only inside an input's data.
    refused(
        &app,
        path,
        br#"{"id": NaN, "inputs": []}"#.to_vec(),
        bad,
        "malformed JSON: NaN at line 1 column 8: NaN and Infinity are accepted only in an input's data",
    )
    .await;

    // A model without missing-value rules refuses both, naming the feature.
    let wine = "/v2/models/wine/infer";
    let wine_matrix = |data: &str| {
        format!(r#"{{"inputs": [{{"name": "input", "datatype": "FP64", "shape": [1, 3], "data": {data}}}]}}"#)
            .into_bytes()
    };
    refused(
        &app,
        wine,
        wine_matrix("[1, NaN, 3]"),
        bad,
        "row 0, feature 'acidity': NaN is not a finite number",
    )
    .await;
    refused(
        &app,
        wine,
        wine_matrix("[null, 2, 3]"),
        bad,
        "row 0, feature 'alcohol': null is not a number",
    )
    .await;

    // Drift counts the missing values apart: 5 of the 7 accepted x0 values, none binned.
    let reports = models.take_reports();
    let boosted = reports.iter().find(|r| r.model == "boosted").unwrap();
    assert_eq!(boosted.predictions.rows, 7);
    let x0 = &boosted.drift.features[0];
    assert_eq!((x0.name.as_str(), x0.missing, x0.observed), ("x0", 5, 2), "{x0:?}");
    assert!(x0.psi.is_finite(), "{x0:?}");
    let x2 = &boosted.drift.features[2];
    assert_eq!((x2.missing, x2.observed), (0, 7), "{x2:?}");
}

/// An edge serving `reg` (`y = 0.5 + x0 - 2 x1`) on a runtime of one instance: the router, the
/// model, the runtime.
fn one_instance_edge(limits: InferLimits) -> (Router, Arc<ServedModel>, Runtime) {
    let runtime = Runtime::new(RuntimeConfig {
        max_instances: 1,
        ..RuntimeConfig::default()
    })
    .unwrap();
    let files = model_files("reg", 1, &regressor_ir(0.5), None);
    let model = Arc::new(ServedModel::load(&runtime, &files.manifest, &files.wasm, &LoadOptions::default()).unwrap());
    let models = Arc::new(EdgeModels::new(
        vec!["reg".into()],
        Arc::new(EdgeMetrics::new("test-node")),
        10,
    ));
    models.install(model.clone());
    (app(models, limits), model, runtime)
}

/// Waits (yielding) until `runtime` has `n` calls waiting for an instance.
async fn until_waiting(runtime: &Runtime, n: usize) {
    let give_up = Instant::now() + Duration::from_secs(60);
    while runtime.waiting_calls() != n {
        assert!(
            Instant::now() < give_up,
            "{} calls wait, not {n}",
            runtime.waiting_calls()
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_one_instance_concurrent_batches_wait_for_it_and_all_succeed() {
    let (app, model, runtime) = one_instance_edge(InferLimits::default());
    // The only instance is in a call while the requests come: each has to wait for it.
    let held = model.module().lease(QueueLimits::default()).await.unwrap();
    // Batches of 200 rows: predicted on the blocking pool.
    let batches: Vec<Vec<Vec<f64>>> = (0..8)
        .map(|b| (0..200).map(|i| vec![f64::from(b), f64::from(i) / 10.0]).collect())
        .collect();
    let requests: Vec<_> = batches
        .iter()
        .map(|rows| {
            let (app, body) = (app.clone(), matrix_request(rows));
            tokio::spawn(async move { infer(&app, "/v2/models/reg/infer", &body).await })
        })
        .collect();
    until_waiting(&runtime, batches.len()).await;
    drop(held);

    let ir = regressor_ir(0.5);
    for (rows, request) in batches.iter().zip(requests) {
        let (status, body) = request.await.unwrap();
        assert_eq!(status, StatusCode::OK, "{body}");
        let values = body["outputs"][0]["data"].as_array().unwrap();
        assert_eq!(values.len(), rows.len());
        for (row, value) in rows.iter().zip(values) {
            assert!(close(value.as_f64().unwrap(), value_of(&ir, row)), "{row:?}: {value}");
        }
    }
    assert_eq!(runtime.waiting_calls(), 0);
    assert!(runtime.live_instances() <= 1);
}

#[tokio::test]
async fn a_request_that_waits_past_its_timeout_or_finds_the_queue_full_gets_a_503() {
    let (quick, model, runtime) = one_instance_edge(InferLimits {
        queue: QueueLimits {
            timeout: Duration::from_millis(20),
            max_waiting: 1,
        },
        ..InferLimits::default()
    });
    let path = "/v2/models/reg/infer";
    let request = matrix_request(&[vec![1.0, 2.0]]);
    let held = model.module().lease(QueueLimits::default()).await.unwrap();

    let response = quick
        .clone()
        .oneshot(
            Request::post(path)
                .header("content-type", "application/json")
                .body(Body::from(request.to_string()))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["retry-after"], "1");
    let body: Value =
        serde_json::from_slice(&axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap()).unwrap();
    assert_eq!(
        body,
        json!({"error": "no instance free: no instance came free within 20ms: every one of the 1 instances of \
                          the pool is in a call; try again"})
    );

    // One request waits (without a timeout that matters here); the next finds the queue full.
    let patient = {
        let models = Arc::new(EdgeModels::new(
            vec!["reg".into()],
            Arc::new(EdgeMetrics::new("test-node")),
            10,
        ));
        models.install(model.clone());
        let queue = QueueLimits {
            timeout: Duration::from_secs(3600),
            max_waiting: 1,
        };
        app(
            models,
            InferLimits {
                queue,
                ..InferLimits::default()
            },
        )
    };
    let waiting = {
        let (patient, request) = (patient.clone(), request.clone());
        tokio::spawn(async move { infer(&patient, path, &request).await })
    };
    until_waiting(&runtime, 1).await;
    let (status, body) = infer(&patient, path, &request).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(
        body["error"],
        "no instance free: every one of the 1 instances of the pool is in a call, and the queue for one is full \
         (1 waiting); try again"
    );
    drop(held);
    let (status, body) = waiting.await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["outputs"][0]["data"], json!([-2.5]));

    let (_, text) = call(&quick, "GET", "/metrics", None).await;
    assert!(
        text.as_str()
            .unwrap()
            .contains(r#"outcome="error",runtime="wasmtime",version="1"} 1"#),
        "the refused request is counted as an error"
    );
}
