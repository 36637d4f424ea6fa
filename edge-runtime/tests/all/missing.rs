//! Missing values through a real edge: a boosted model whose splits route NaN answers rows with
//! NaN and `null` as the evaluator does, sent as raw JSON with the bare `NaN` token and by a real
//! `tritonclient[http]` client (the test venv's python, see `scripts/requirements-test.txt`); a
//! model without missing-value rules refuses them with the feature's name.

use std::path::PathBuf;
use std::process::Command;

use model_wasm::{ModelIr, Prediction};
use serde_json::{Value, json};

use crate::process::Edge;
use crate::support::{boosted_ir, classifier_ir, model_files, write_model_dir};

/// An edge serving `boosted` ([`boosted_ir`]) and `wine` (a linear classifier) from a models dir.
fn edge() -> (Edge, tempfile::TempDir, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    write_model_dir(dir.path(), "boosted", &model_files("boosted", 1, &boosted_ir(), None));
    write_model_dir(dir.path(), "wine", &model_files("wine", 2, &classifier_ir(), None));
    let edge = Edge::spawn(&[
        "--models-dir",
        dir.path().to_str().unwrap(),
        "--cache-dir",
        cache.path().to_str().unwrap(),
        "--node-id",
        "edge-missing",
    ]);
    edge.wait_ready();
    (edge, dir, cache)
}

fn value_of(ir: &ModelIr, row: &[f64]) -> f64 {
    match ir.predict(row).unwrap() {
        Prediction::Value(v) => v,
        Prediction::Class { .. } => panic!("a regressor"),
    }
}

fn error_of(body: &str) -> String {
    serde_json::from_str::<Value>(body).unwrap()["error"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn an_edge_predicts_nan_and_null_where_the_model_routes_them() {
    let (edge, _dir, _cache) = edge();
    let ir = boosted_ir();
    let nan = f64::NAN;
    let body = r#"{"inputs": [{"name": "input", "datatype": "FP64", "shape": [3, 3],
        "data": [NaN, 1, 1, 7, null, 9, 2, NaN, 8]}]}"#;
    let (status, answer) = edge.post_text("/v2/models/boosted/infer", body);
    assert_eq!(status, 200, "{answer}");
    let answer: Value = serde_json::from_str(&answer).unwrap();
    let expected = [[nan, 1.0, 1.0], [7.0, nan, 9.0], [2.0, nan, 8.0]].map(|row| value_of(&ir, &row));
    assert_eq!(answer["outputs"][0]["data"], json!(expected));
    // The evaluator sent them their own ways: x0 missing left, x1 missing right.
    assert_eq!(expected, [1.625, -0.25, 1.75]);

    // x2 has a split without a missing rule: refused, by name.
    let (status, answer) = edge.post_text(
        "/v2/models/boosted/infer",
        r#"{"inputs": [{"name": "input", "datatype": "FP64", "shape": [1, 3], "data": [1, 1, NaN]}]}"#,
    );
    assert_eq!(
        (status, error_of(&answer)),
        (400, "row 0, feature 'x2': NaN is not a finite number".into())
    );
    // A linear model routes no missing value at all.
    for (data, message) in [
        ("[1, NaN, 3]", "row 0, feature 'acidity': NaN is not a finite number"),
        ("[1, 2, null]", "row 0, feature 'sugar': null is not a number"),
        (
            "[Infinity, 2, 3]",
            "row 0, feature 'alcohol': inf is not a finite number",
        ),
    ] {
        let body =
            format!(r#"{{"inputs": [{{"name": "input", "datatype": "FP64", "shape": [1, 3], "data": {data}}}]}}"#);
        let (status, answer) = edge.post_text("/v2/models/wine/infer", &body);
        assert_eq!((status, error_of(&answer)), (400, message.to_owned()), "{data}");
    }
}

/// The test venv's `python`: on `PATH` when run through `scripts/test`, else in the cache.
fn venv_python() -> PathBuf {
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join("python"))
            .find(|p| p.is_file())
    });
    let cached = std::env::var_os("WASMLINE_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/wasmline")))
        .map(|c| c.join("venv/bin/python"));
    for python in on_path.into_iter().chain(cached) {
        let has_client = Command::new(&python)
            .args(["-c", "import tritonclient.http"])
            .output()
            .is_ok_and(|o| o.status.success());
        if has_client {
            return python;
        }
    }
    panic!(
        "no python with tritonclient[http]: run the tests through scripts/test, which installs it into ~/.cache/wasmline/venv"
    );
}

#[test]
fn tritonclient_sends_np_nan_and_gets_the_evaluators_answer() {
    let (edge, dir, _cache) = edge();
    let ir = boosted_ir();
    let nan = f64::NAN;
    let rows = [
        [nan, 1.0, 1.0],
        [7.0, nan, 9.0],
        [nan, nan, 4.0],
        [4.0, 0.5, 1.0],
        [5.0, 2.0, 0.0],
    ];
    let expected: Vec<f64> = rows.iter().map(|row| value_of(&ir, row)).collect();
    // Python's json reads NaN tokens: the rows go as it would write them.
    let cases = format!(
        r#"{{"rows": {}, "expected": {}, "refused": {{"rows": [[1.0, 1.0, NaN]], "message": "row 0, feature 'x2': NaN is not a finite number"}}}}"#,
        serde_json::to_string(&rows.map(|r| r.map(|v| if v.is_nan() { None } else { Some(v) }))).unwrap(),
        serde_json::to_string(&expected).unwrap()
    )
    .replace("null", "NaN");
    let cases_file = dir.path().join("cases.json");
    std::fs::write(&cases_file, cases).unwrap();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/triton_infer.py");
    let output = Command::new(venv_python())
        .arg(script)
        .arg(edge.base.trim_start_matches("http://"))
        .arg("boosted")
        .arg(&cases_file)
        .output()
        .expect("run python");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{text}\nedge log:\n{}", edge.log());
    assert!(text.contains("5 rows with NaN predicted as expected"), "{text}");
}
