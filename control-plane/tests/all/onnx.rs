//! The exported ONNX files in onnxruntime: every hand-made IR of `src/onnx/cases.rs` is written,
//! with its rows and the reference evaluator's outputs, and `scripts/onnx_parity.py` runs it in
//! onnxruntime (the venv's python, which `scripts/test` puts on PATH).

use std::path::Path;
use std::process::Command;

use model_wasm::{Outputs, Prediction};
use serde_json::{Value, json};
use tests::process::find_program;
use wasmline::to_onnx;

include!("../../src/onnx/cases.rs");

/// The rows and what the evaluator predicts for them, in the script's JSON form.
fn expected(case: &Case) -> Value {
    let predictions: Vec<Prediction> = case.rows.iter().map(|r| case.ir.predict(r).unwrap()).collect();
    match case.ir.outputs(predictions) {
        Outputs::Classes { labels, probabilities } => {
            json!({"rows": case.rows, "labels": labels, "probabilities": probabilities})
        }
        Outputs::Values(values) => json!({"rows": case.rows, "values": values}),
    }
}

/// Runs the script; returns whether it passed, and its output.
fn onnx_parity(model: &Path, expected: &Path) -> (Option<i32>, String) {
    let script = tests::workspace_root().join("scripts/onnx_parity.py");
    let output = Command::new(find_program("python"))
        .arg(script)
        .arg(model)
        .arg(expected)
        .output()
        .expect("run python");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code(), text)
}

#[test]
fn onnxruntime_agrees_with_the_evaluator_on_every_body_kind() {
    let dir = tempfile::tempdir().unwrap();
    for case in cases() {
        let model = dir.path().join(format!("{}.onnx", case.name));
        let json = dir.path().join(format!("{}.json", case.name));
        std::fs::write(&model, to_onnx(&case.ir, case.name).unwrap()).unwrap();
        std::fs::write(&json, expected(&case).to_string()).unwrap();
        let (code, report) = onnx_parity(&model, &json);
        assert_eq!(code, Some(0), "{}: {report}", case.name);
        assert!(
            report.contains(&format!("{ROWS} rows agree")),
            "{}: {report}",
            case.name
        );
    }
}

#[test]
fn the_parity_script_fails_on_a_wrong_label_or_number() {
    let dir = tempfile::tempdir().unwrap();
    let cases = cases();
    let case = |name: &str| cases.iter().find(|c| c.name == name).unwrap();

    let forest = case("vote_forest");
    let model = dir.path().join("forest.onnx");
    std::fs::write(&model, to_onnx(&forest.ir, forest.name).unwrap()).unwrap();
    let mut wrong = expected(forest);
    let label = wrong["labels"][7].as_u64().unwrap();
    wrong["labels"][7] = json!((label + 1) % 3);
    let json = dir.path().join("wrong_label.json");
    std::fs::write(&json, wrong.to_string()).unwrap();
    let (code, report) = onnx_parity(&model, &json);
    assert_eq!(code, Some(1), "{report}");
    assert!(
        report.contains("1 of 200 rows disagree") && report.contains("first: row 7"),
        "{report}"
    );

    let regression = case("average_forest");
    let model = dir.path().join("regression.onnx");
    std::fs::write(&model, to_onnx(&regression.ir, regression.name).unwrap()).unwrap();
    let mut wrong = expected(regression);
    let value = wrong["values"][3].as_f64().unwrap();
    wrong["values"][3] = json!(value * (1.0 + 1e-4) + 1e-3);
    let json = dir.path().join("wrong_value.json");
    std::fs::write(&json, wrong.to_string()).unwrap();
    let (code, report) = onnx_parity(&model, &json);
    assert_eq!(code, Some(1), "{report}");
    assert!(report.contains("first: row 3"), "{report}");

    let (code, report) = onnx_parity(&dir.path().join("missing.onnx"), &json);
    assert_eq!(code, Some(2), "{report}");
}
