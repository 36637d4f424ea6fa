//! scikit-learn models, converted by skl2onnx, imported into the IR: `scripts/make_sklearn_onnx.py`
//! (the venv's python, which `scripts/test` puts on PATH) trains them on the wine data and writes
//! the files with sklearn's own predictions; the IR evaluator must give the same labels and, within
//! the parity tolerance, the same numbers. Each IR is then exported again and run in tract, and
//! compiled to a module and run in wasmtime.

use std::path::Path;
use std::process::Command;

use edge_runtime::{ModelModule, ModuleLimits, Runtime, RuntimeConfig};
use model_wasm::parity::agree;
use model_wasm::{Body, ModelIr, Output, Prediction};
use serde_json::Value;
use tests::process::find_program;
use wasmline::{ImportError, ImportOptions, ParityReport, check_with_tract, import_onnx, import_onnx_with, to_onnx};

/// Runs the script into `dir`; returns expected.json.
fn make_models(dir: &Path) -> Value {
    let script = tests::workspace_root().join("scripts/make_sklearn_onnx.py");
    let output = Command::new(find_program("python"))
        .arg(script)
        .arg(dir)
        .output()
        .expect("run python");
    assert!(
        output.status.success(),
        "make_sklearn_onnx.py failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&std::fs::read(dir.join("expected.json")).unwrap()).unwrap()
}

fn numbers(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}

/// Holds the IR's predictions on `rows` to sklearn's (`expected`): labels identical; numbers
/// within the parity rule, probabilities unless the model gives labels only. Returns how many rows
/// had their probabilities compared.
fn assert_same_predictions(
    name: &str,
    ir: &ModelIr,
    rows: &[Vec<f64>],
    expected: &Value,
    all_probabilities: bool,
) -> usize {
    let mut compared = 0;
    for (r, row) in rows.iter().enumerate() {
        let prediction = ir.predict(row).unwrap_or_else(|e| panic!("{name}, row {r}: {e}"));
        match (&ir.output, prediction) {
            (Output::Classification { .. }, Prediction::Class { label, probabilities }) => {
                let want_label = expected["labels"][r].as_u64().unwrap() as usize;
                assert_eq!(
                    label, want_label,
                    "{name}, row {r}: label (probabilities {probabilities:?})"
                );
                if all_probabilities {
                    let want = numbers(&expected["probabilities"][r]);
                    assert_eq!(want.len(), probabilities.len(), "{name}, row {r}");
                    for (a, b) in want.iter().zip(&probabilities) {
                        assert!(agree(*a, *b), "{name}, row {r}: sklearn {want:?}, IR {probabilities:?}");
                    }
                    compared += 1;
                }
            }
            (Output::Regression { .. }, Prediction::Value(v)) => {
                let want = expected["values"][r].as_f64().unwrap();
                assert!(agree(want, v), "{name}, row {r}: sklearn {want}, IR {v}");
                compared += 1;
            }
            (_, p) => panic!("{name}: {p:?} does not fit the task"),
        }
    }
    compared
}

/// `linear Sigmoid`, `9 tree(s) Vote`.
fn body_kind(body: &Body) -> String {
    match body {
        Body::Linear { link, .. } => format!("linear {link:?}"),
        Body::Trees { trees, aggregate } => format!("{} tree(s) {aggregate:?}", trees.len()),
        Body::Boosted { trees, link, .. } => format!("{} boosted tree(s) {link:?}", trees.len()),
    }
}

#[test]
fn sklearn_models_import_with_sklearns_predictions_and_round_trip_through_tract() {
    let dir = tempfile::tempdir().unwrap();
    let expected = make_models(dir.path());
    let rows: Vec<Vec<f64>> = expected["rows"].as_array().unwrap().iter().map(numbers).collect();
    assert!(rows.len() >= 100, "{} rows", rows.len());
    let wine_features: Vec<String> = serde_json::from_value(expected["features"].clone()).unwrap();
    let read = |name: &str| std::fs::read(dir.path().join(format!("{name}.onnx"))).unwrap();

    // (model, whether only its labels are exact, what the body must be)
    let supported = [
        ("linear_regression", false, "linear Identity"),
        ("scaler_linear_regression", false, "linear Identity"),
        ("logistic_binary", false, "linear Sigmoid"),
        ("logistic_multinomial", false, "linear Softmax"),
        ("scaler_logistic", false, "linear Sigmoid"),
        ("decision_tree", false, "1 tree(s) Sum"),
        ("decision_tree_pure", false, "1 tree(s) Vote"),
        ("decision_tree_regressor", false, "1 tree(s) Average"),
        ("random_forest_regressor", false, "8 tree(s) Average"),
        ("random_forest_pure", false, "9 tree(s) Vote"),
        ("random_forest_soft", false, "5 tree(s) Sum"),
        ("random_forest_soft_multiclass", false, "30 tree(s) Sum"),
        ("linear_svc", true, "linear Softmax"),
    ];
    let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
    for (name, labels_only, body) in supported {
        let want = &expected["models"][name];
        assert_eq!(want["supported"], true, "{name}");
        let bytes = read(name);
        let imported = if labels_only {
            let strict = import_onnx(&bytes).unwrap_err().to_string();
            assert!(strict.contains("--labels-only"), "{name}: {strict}");
            let imported = import_onnx_with(&bytes, ImportOptions { labels_only: true }).unwrap();
            assert!(!imported.notes.is_empty(), "{name}: the notes say what changed");
            imported
        } else {
            let imported = import_onnx(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
            // Soft votes say so; nothing else is noted.
            let soft = body.ends_with("Sum");
            assert_eq!(
                imported.notes.iter().any(|n| n.contains("class distributions")),
                soft,
                "{name}: {:?}",
                imported.notes
            );
            imported
        };
        let ir = &imported.ir;
        assert!(
            imported.producer.starts_with("skl2onnx "),
            "{name}: {}",
            imported.producer
        );
        assert!(
            imported.opsets.iter().any(|(d, _)| d == "ai.onnx.ml"),
            "{name}: {:?}",
            imported.opsets
        );
        assert!(
            imported.ops.iter().all(|op| op.starts_with("ai.onnx")),
            "{name}: {:?}",
            imported.ops
        );
        assert_eq!(imported.graph_name, name);
        assert_eq!(body_kind(&ir.body), body, "{name}: {:?}", imported.ops);
        if name == "scaler_logistic" {
            assert_eq!(ir.features, wine_features, "metadata 'features' names them");
        } else {
            assert_eq!(
                ir.features,
                (0..11).map(|i| format!("f{i}")).collect::<Vec<_>>(),
                "{name}"
            );
        }
        assert_eq!(ir.preprocess.len(), usize::from(name.starts_with("scaler_")), "{name}");
        match &ir.output {
            Output::Classification { classes } => assert_eq!(
                classes,
                &want["classes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| c.as_str().unwrap().to_owned())
                    .collect::<Vec<_>>(),
                "{name}"
            ),
            Output::Regression { target } => {
                assert_eq!(want["task"], "regression", "{name}");
                let t = if name == "scaler_linear_regression" {
                    "quality"
                } else {
                    "target"
                };
                assert_eq!(target, t, "{name}");
            }
        }

        let compared = assert_same_predictions(name, ir, &rows, want, !labels_only);
        if labels_only {
            assert_eq!(compared, 0, "{name}: sklearn gives no probabilities");
            eprintln!("{name}: labels identical on {} rows", rows.len());
        } else {
            assert_eq!(compared, rows.len(), "{name}");
            eprintln!("{name}: {} rows agree with sklearn", rows.len());
        }

        // Round trip: the IR written as ONNX again, in tract, against the evaluator.
        let onnx = to_onnx(ir, name).unwrap_or_else(|e| panic!("{name}: {e}"));
        let report = check_with_tract(&onnx, ir, &rows).unwrap_or_else(|e| panic!("{name}: {e:#}"));
        assert!(report.is_ok(), "{name} in tract: {report}");

        // And the module made from it, in wasmtime.
        let wasm = model_wasm::codegen::compile(ir, b"{}").unwrap();
        let module = ModelModule::load(&runtime, &wasm, ModuleLimits::default()).unwrap();
        let expected: Vec<Prediction> = rows.iter().map(|r| ir.predict(r).unwrap()).collect();
        let report = ParityReport::compare(&expected, &module.predict(&rows).unwrap());
        assert!(report.is_ok(), "{name} in wasmtime: {report}");
    }

    // Refused, with the reason.
    assert_eq!(
        import_onnx(&read("svm")).unwrap_err().to_string(),
        "unsupported ONNX op(s): ai.onnx.ml.SVMClassifier"
    );
    let bytes = read("logistic_multinomial");
    let err = import_onnx(&bytes[..bytes.len() * 2 / 3]).unwrap_err();
    assert!(matches!(err, ImportError::NotOnnx(_)), "{err}");

    // The command: a summary on stdout and the IR file; errors on stderr with exit code 1.
    let wasmline = env!("CARGO_BIN_EXE_wasmline");
    let out = dir.path().join("scaler_logistic.ir.json");
    let run = Command::new(wasmline)
        .arg("import-onnx")
        .arg(dir.path().join("scaler_logistic.onnx"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{stdout}{}", String::from_utf8_lossy(&run.stderr));
    for line in [
        "ops: ai.onnx.ml.Scaler, ai.onnx.ml.LinearClassifier, ai.onnx.Cast, ai.onnx.ml.ZipMap",
        "classification, classes: 0, 1",
        "model: scale -> linear (sigmoid, 1 output(s))",
        "features (11): fixed acidity, volatile acidity,",
        &format!("wrote {}", out.display()),
    ] {
        assert!(stdout.contains(line), "{line:?} not in:\n{stdout}");
    }
    let written: ModelIr = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(written, import_onnx(&read("scaler_logistic")).unwrap().ir);

    let tree_out = dir.path().join("tree.json");
    let run = |extra: &[&str]| {
        Command::new(wasmline)
            .arg("import-onnx")
            .arg(dir.path().join("linear_svc.onnx"))
            .arg("--out")
            .arg(&tree_out)
            .args(extra)
            .output()
            .unwrap()
    };
    let refused = run(&[]);
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("cannot import") && stderr.contains("--labels-only"),
        "{stderr}"
    );
    assert!(!tree_out.exists());
    let accepted = run(&["--labels-only"]);
    let stdout = String::from_utf8_lossy(&accepted.stdout);
    assert!(accepted.status.success() && stdout.contains("note: "), "{stdout}");
    assert!(tree_out.exists());
}
