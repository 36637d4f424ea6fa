//! The real `wasmline-edge` binary, on a free 127.0.0.1 port with a temporary cache dir.

use serde_json::json;

use crate::support::{CLASSES, Edge, classifier_ir, matrix_request, model_files, reference, write_model_dir};

#[test]
fn serves_a_models_dir() {
    let dir = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let ir = classifier_ir();
    write_model_dir(dir.path(), "wine", &model_files("wine", 4, &ir, None));
    let edge = Edge::spawn(&[
        "--models-dir",
        dir.path().to_str().unwrap(),
        "--cache-dir",
        cache.path().to_str().unwrap(),
        "--node-id",
        "edge-test",
    ]);
    edge.wait_ready();

    let rows: Vec<Vec<f64>> = (0..20)
        .map(|i| vec![f64::from(i) / 2.0, 3.0, f64::from(i % 5)])
        .collect();
    let (status, body) = edge.post("/v2/models/wine/infer", &matrix_request(&rows));
    assert_eq!(status, 200, "{body}");
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["model_version"], "4");
    for (i, row) in rows.iter().enumerate() {
        let model_wasm::Prediction::Class { label, probabilities } = reference(&ir, row) else {
            panic!("a classifier")
        };
        assert_eq!(body["outputs"][0]["data"][i], CLASSES[label], "row {i}");
        for (k, p) in probabilities.iter().enumerate() {
            let got = body["outputs"][1]["data"][i * 3 + k].as_f64().unwrap();
            assert!((got - p).abs() <= 1e-9, "row {i} class {k}: {got} vs {p}");
        }
    }
    let (status, body) = edge.post("/v2/models/wine/infer", &json!({"inputs": [{"name": "x"}]}));
    assert_eq!(status, 400, "{body}");
    assert!(edge.metric("wasmline_model_info{").is_some());
}
