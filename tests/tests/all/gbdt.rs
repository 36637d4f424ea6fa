//! GBDT parity against the libraries themselves: `scripts/gbdt/parity_models.py`, run with the
//! GBDT venv (`scripts/lib/tools.sh` `ensure_gbdt_venv`: XGBoost, LightGBM), trains models on
//! generated data (numeric, with NaNs, with categoricals; binary, multiclass, regression, poisson,
//! gamma, reg:logistic; 1 to 500 trees) and writes rows that include NaN, unseen, negative and
//! fractional categories, thresholds and the values one ulp either side of them, with the
//! library's own `predict` and `pred_leaf`. Each model is imported with `wasmline models import`
//! into a store, promoted, and served by a `wasmline-edge` following `wasmline serve`; then on
//! every row:
//! - the IR evaluator takes the library's path: in every tree, the leaf it reaches holds the
//!   value of the leaf `pred_leaf` names;
//! - the IR evaluator, the control plane's `/v2` and the edge (the module in wasmtime) give the
//!   library's label and its numbers within 1e-9 relative for LightGBM (it sums in `f64`), 1e-5
//!   for XGBoost (`f32`);
//! - the SDK in Chromium (`tests/browser/parity.mjs`), on the model as a browser downloads it,
//!   gives the evaluator's answers on every row, NaN sent as `null`;
//! - the registered `model.onnx` in onnxruntime (`scripts/onnx_parity.py`) gives the evaluator's
//!   labels and numbers within 1e-5 on the same rows as its float32 input holds them (for
//!   XGBoost, which reads its input as `f32`, those are the rows the library saw).
//!
//! Besides the relative bound, a difference below the precision of the library's own arithmetic
//! at 1.0 passes (XGBoost: `f32` epsilon; LightGBM: 4 `f64` ulps): a probability `1 - p` with `p`
//! near 1 has no more absolute precision than `p` itself.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use model_wasm::{ModelIr, Node, Outputs, Prediction};
use serde_json::{Value, json};
use tests::process::free_port;

use crate::edge::{TOKEN, control_plane};
use crate::{Edge, Scratch};

/// The GBDT venv: WASMLINE_GBDT_VENV (scripts/test sets it), else its place in the cache.
pub(crate) fn gbdt_python() -> PathBuf {
    let venv = std::env::var_os("WASMLINE_GBDT_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var("HOME").expect("HOME")).join(".cache/wasmline/gbdt-venv"));
    let python = venv.join("bin/python");
    assert!(
        python.is_file(),
        "XGBoost/LightGBM are not installed in {}: run the tests through scripts/test, which installs them (scripts/requirements-gbdt.txt)",
        venv.display()
    );
    python
}

/// One model the script trained, with its rows and the library's answers.
struct Case {
    name: String,
    library: String,
    file: PathBuf,
    reference: PathBuf,
    classes: Option<Vec<String>>,
    tolerance: f64,
    rows: Vec<Vec<f64>>,
    outputs: Vec<Vec<f64>>,
    labels: Option<Vec<usize>>,
    leaf_values: Vec<Vec<f64>>,
}

fn numbers(v: &Value) -> Vec<f64> {
    v.as_array()
        .expect("an array")
        .iter()
        .map(|x| x.as_f64().unwrap_or(f64::NAN))
        .collect()
}

fn make_cases(dir: &Path) -> Vec<Case> {
    let script = tests::workspace_root().join("scripts/gbdt/parity_models.py");
    let output = Command::new(gbdt_python())
        .arg(script)
        .arg(dir)
        .output()
        .expect("run python");
    assert!(
        output.status.success(),
        "parity_models.py failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let cases: Value = serde_json::from_slice(&std::fs::read(dir.join("cases.json")).unwrap()).unwrap();
    cases["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let name = c["name"].as_str().unwrap().to_owned();
            Case {
                file: dir.join(c["file"].as_str().unwrap()),
                reference: dir.join(format!("{name}.reference.csv")),
                library: c["library"].as_str().unwrap().to_owned(),
                classes: c.get("classes").map(|v| {
                    v.as_array()
                        .unwrap()
                        .iter()
                        .map(|s| s.as_str().unwrap().to_owned())
                        .collect()
                }),
                tolerance: c["tolerance"].as_f64().unwrap(),
                rows: c["rows"].as_array().unwrap().iter().map(numbers).collect(),
                outputs: c["outputs"].as_array().unwrap().iter().map(numbers).collect(),
                labels: c.get("labels").map(|v| {
                    v.as_array()
                        .unwrap()
                        .iter()
                        .map(|l| l.as_u64().unwrap() as usize)
                        .collect()
                }),
                leaf_values: c["leaf_values"].as_array().unwrap().iter().map(numbers).collect(),
                name,
            }
        })
        .collect()
}

impl Case {
    /// Whether `got` is the library's `want` within this library's tolerance (see the module docs).
    fn agrees(&self, want: f64, got: f64) -> bool {
        let floor = if self.library == "xgboost" {
            f64::from(f32::EPSILON)
        } else {
            4.0 * f64::EPSILON
        };
        want == got || (want - got).abs() <= self.tolerance * want.abs().max(got.abs()) || (want - got).abs() <= floor
    }

    /// Holds one row's answer (label index when a classifier, numbers) to the library's.
    #[track_caller]
    fn check(&self, path: &str, r: usize, label: Option<usize>, got: &[f64]) {
        let want = &self.outputs[r];
        let row = &self.rows[r];
        if let Some(labels) = &self.labels {
            assert_eq!(
                label,
                Some(labels[r]),
                "{}, {path}, row {r} {row:?}: label; library {want:?}, got {got:?}",
                self.name
            );
        }
        assert_eq!(got.len(), want.len(), "{}, {path}, row {r}: outputs {got:?}", self.name);
        for (w, g) in want.iter().zip(got) {
            assert!(
                self.agrees(*w, *g),
                "{}, {path}, row {r} {row:?}: library {want:?}, got {got:?} (tolerance {})",
                self.name,
                self.tolerance
            );
        }
    }
}

/// The IR the CLI registered for `name` (version 1).
fn registered_ir(s: &Scratch, name: &str) -> ModelIr {
    let path = s.store().join(format!("models/{name}/1/model.ir.json"));
    serde_json::from_slice(&std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
}

/// The reference evaluator on every row: the library's path in every tree, then its answer.
fn check_evaluator(case: &Case, ir: &ModelIr) {
    let trees = ir.trees();
    assert_eq!(trees.len(), case.leaf_values[0].len(), "{}: trees", case.name);
    for (r, row) in case.rows.iter().enumerate() {
        for (t, tree) in trees.iter().enumerate() {
            let Node::Leaf { value } = tree.nodes[tree.leaf_index(row)] else {
                panic!("{}: tree {t} ends in a leaf", case.name)
            };
            let want = case.leaf_values[r][t];
            assert!(
                case.agrees(want, value),
                "{}, row {r} {row:?}, tree {t}: the IR reaches a leaf of {value}, the library's pred_leaf one of {want}",
                case.name
            );
        }
        let prediction = ir
            .predict(row)
            .unwrap_or_else(|e| panic!("{}, row {r} {row:?}: {e}", case.name));
        match prediction {
            Prediction::Class { label, probabilities } => case.check("IR", r, Some(label), &probabilities),
            Prediction::Value(v) => case.check("IR", r, None, &[v]),
        }
    }
}

/// The registered `model.onnx` in onnxruntime, against the evaluator on the rows as the file's
/// float32 input holds them.
fn check_onnxruntime(s: &Scratch, case: &Case, ir: &ModelIr) {
    let version = s.store().join(format!("models/{}/1", case.name));
    let manifest: Value = serde_json::from_slice(&std::fs::read(version.join("manifest.json")).unwrap()).unwrap();
    assert!(
        manifest["lineage"].get("no_onnx").is_none(),
        "{}: no model.onnx: {}",
        case.name,
        manifest["lineage"]["no_onnx"]
    );
    let rows: Vec<Vec<f64>> = case
        .rows
        .iter()
        .map(|r| r.iter().map(|v| f64::from(*v as f32)).collect())
        .collect();
    let predictions: Vec<Prediction> = rows.iter().map(|r| ir.predict(r).unwrap()).collect();
    let expected = match ir.outputs(predictions) {
        Outputs::Classes { labels, probabilities } => {
            json!({"rows": rows, "labels": labels, "probabilities": probabilities})
        }
        Outputs::Values(values) => json!({"rows": rows, "values": values}),
    };
    let path = s.path().join(format!("{}.onnx-expected.json", case.name));
    std::fs::write(&path, expected.to_string()).unwrap();
    crate::train::onnxruntime_agrees(&version.join("model.onnx"), &path);
}

/// The model as a browser downloads it, in the SDK in Chromium, against the evaluator on every
/// row (NaN sent as `null`).
fn check_chromium(s: &Scratch, case: &Case, ir: &ModelIr) {
    let dir = s.path().join(format!("{}-download", case.name));
    s.run(&["models", "download", &case.name, "--out", dir.to_str().unwrap()])
        .ok();
    let predictions: Vec<Prediction> = case.rows.iter().map(|r| ir.predict(r).unwrap()).collect();
    let expected = match ir.outputs(predictions) {
        Outputs::Classes { labels, probabilities } => json!({
            "rows": case.rows, "classes": ir.classes(), "labels": labels, "probabilities": probabilities,
        }),
        Outputs::Values(values) => json!({"rows": case.rows, "values": values}),
    };
    let path = s.path().join(format!("{}.browser-expected.json", case.name));
    std::fs::write(&path, expected.to_string()).unwrap();
    let key = crate::browser::signing_key(s);
    crate::browser::chromium_agrees(&format!("gbdt-{}", case.name), &dir, &key, &path);
}

/// Every row in one KServe v2 request to `server` (the edge or the control plane; NaN as `null`);
/// checks each answer.
fn check_kserve(case: &Case, ir: &ModelIr, server: &str, addr: &str) {
    let n_features = case.rows[0].len();
    let data: Vec<Value> = case
        .rows
        .iter()
        .flatten()
        .map(|v| if v.is_nan() { Value::Null } else { json!(v) })
        .collect();
    let body = json!({"inputs": [{
        "name": "input", "shape": [case.rows.len(), n_features], "datatype": "FP64", "data": data,
    }]});
    let mut response = ureq::post(&format!("http://{addr}/v2/models/{}/infer", case.name))
        .config()
        .http_status_as_error(false)
        .build()
        .send_json(&body)
        .unwrap_or_else(|e| panic!("{} on the {server}: {e}", case.name));
    let status = response.status().as_u16();
    let answer: Value = response.body_mut().read_json().unwrap_or(Value::Null);
    assert_eq!(status, 200, "{} on the {server}: {answer}", case.name);
    let outputs: BTreeMap<&str, &Value> = answer["outputs"]
        .as_array()
        .unwrap_or_else(|| panic!("{}: {answer}", case.name))
        .iter()
        .map(|o| (o["name"].as_str().unwrap(), &o["data"]))
        .collect();
    if case.labels.is_some() {
        let labels = outputs["label"].as_array().unwrap();
        let probabilities = numbers(outputs["probabilities"]);
        let k = ir.classes().len();
        assert_eq!(labels.len(), case.rows.len(), "{}", case.name);
        for (r, label) in labels.iter().enumerate() {
            let label = ir.classes().iter().position(|c| c == label.as_str().unwrap());
            case.check(server, r, label, &probabilities[r * k..(r + 1) * k]);
        }
    } else {
        let values = numbers(outputs["value"]);
        assert_eq!(values.len(), case.rows.len(), "{}", case.name);
        for (r, v) in values.iter().enumerate() {
            case.check(server, r, None, &[*v]);
        }
    }
}

#[test]
fn imported_xgboost_and_lightgbm_models_give_their_libraries_answers_in_the_evaluator_onnxruntime_the_control_plane_an_edge_and_chromium()
 {
    let s = Scratch::new();
    let dir = s.path().join("gbdt");
    let cases = make_cases(&dir);
    assert!(cases.len() >= 10, "{} models", cases.len());
    let mut irs = Vec::new();
    for case in &cases {
        let mut args = vec![
            "models".to_owned(),
            "import".into(),
            case.file.display().to_string(),
            "--name".into(),
            case.name.clone(),
            "--reference-data".into(),
            case.reference.display().to_string(),
            "--target".into(),
            "target".into(),
        ];
        if let Some(classes) = &case.classes {
            args.extend(["--classes".into(), classes.join(",")]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        s.run(&args).ok();
        s.run(&["models", "promote", &case.name, "1", "--alias", "production"])
            .ok();
        let ir = registered_ir(&s, &case.name);
        check_evaluator(case, &ir);
        check_onnxruntime(&s, case, &ir);
        irs.push(ir);
    }
    let rows: usize = cases.iter().map(|c| c.rows.len()).sum();
    eprintln!(
        "IR evaluator and model.onnx in onnxruntime: {} models, {rows} rows: the library's leaves and answers",
        cases.len()
    );

    let port = free_port();
    let mut cp = control_plane(&s, port, "serve.log");
    let cp_addr = format!("127.0.0.1:{port}");
    // The control plane loads the promoted versions after it starts listening.
    cp.wait_until(Duration::from_secs(120), || {
        cases.iter().all(|c| {
            ureq::get(&format!("http://{cp_addr}/v2/models/{}/ready", c.name))
                .call()
                .is_ok()
        })
    });
    for (case, ir) in cases.iter().zip(&irs) {
        check_kserve(case, ir, "control plane", &cp_addr);
    }
    eprintln!(
        "control plane /v2: {} models, {rows} rows: the library's answers",
        cases.len()
    );
    let names: Vec<&str> = cases.iter().map(|c| c.name.as_str()).collect();
    let edge = Edge::start(
        &s,
        "edge-gbdt",
        1,
        &format!("127.0.0.1:{port}"),
        &names.join(","),
        "127.0.0.1:0",
        |cmd| {
            cmd.env("WASMLINE_EDGE_TOKEN", TOKEN);
        },
    );
    for (case, ir) in cases.iter().zip(&irs) {
        check_kserve(case, ir, "edge", &edge.addr);
    }
    eprintln!("edge: {} models, {rows} rows: the library's answers", cases.len());
    for (case, ir) in cases.iter().zip(&irs) {
        check_chromium(&s, case, ir);
    }
    eprintln!(
        "the SDK in Chromium: {} models, {rows} rows: the evaluator's answers",
        cases.len()
    );
}
