//! The SDK's JavaScript side, run in Node by wasm-bindgen-test-runner (`cargo test -p wasmline-sdk
//! --target wasm32-unknown-unknown`, see scripts/test): JavaScript values as the schema check sees
//! them, and a generated module that routes missing values predicting rows with `null`,
//! `undefined` and `NaN` as the IR's evaluator does.

use js_sys::{Object, Uint8Array};
use model_wasm::ir::Missing;
use model_wasm::manifest::sha256_hex;
use model_wasm::{Body, IR_VERSION, ModelIr, Node, Output, Prediction, Tree};
use serde_json::json;
use wasm_bindgen_test::wasm_bindgen_test;

use super::*;

/// `y = 0.5 + (x0 < 5 or missing ? 1 : -1) + (x1 < 2 ? (x2 < 3 ? 0.125 : 0.0625) : 0.25)`,
/// missing `x1` going right; a split on `x2` has no missing rule, so `x2` refuses one.
fn boosted_ir() -> ModelIr {
    let split = |feature, threshold, left, right, missing| Node::Split {
        feature,
        threshold,
        left,
        right,
        missing,
    };
    let leaf = |value| Node::Leaf { value };
    ModelIr {
        ir_version: IR_VERSION,
        features: vec!["x0".into(), "x1".into(), "x2".into()],
        preprocess: vec![],
        body: Body::Boosted {
            trees: vec![
                Tree {
                    nodes: vec![split(0, 5.0, 1, 2, Missing::Left), leaf(1.0), leaf(-1.0)],
                },
                Tree {
                    nodes: vec![
                        split(1, 2.0, 1, 2, Missing::Right),
                        split(2, 3.0, 3, 4, Missing::Refuse),
                        leaf(0.25),
                        leaf(0.125),
                        leaf(0.0625),
                    ],
                },
            ],
            tree_outputs: vec![0, 0],
            base_score: vec![0.5],
            link: model_wasm::Link::Identity,
        },
        output: Output::Regression { target: "y".into() },
    }
}

/// The model compiled, with a manifest whose features say which take missing values, loaded
/// as `loadModel` loads one (minus the fetches).
fn load(ir: &ModelIr) -> Model {
    let wasm = model_wasm::codegen::compile(ir, b"{}").unwrap();
    let features: Vec<serde_json::Value> = ir
        .features
        .iter()
        .zip(ir.accepts_missing())
        .map(|(name, missing)| json!({"name": name, "min": 0.0, "max": 9.0, "missing": missing}))
        .collect();
    let manifest = json!({
        "schema_version": 1, "name": "boosted", "version": 1, "features": features,
        "output": {"target": "y"},
        "artifacts": {"model.wasm": {"size": wasm.len(), "sha256": sha256_hex(&wasm)}},
        "reference_profile": {"rows": 1, "features": []},
    });
    let manifest = ManifestView::from_json(manifest.to_string().as_bytes()).unwrap();
    manifest.verify_artifact(MODULE_FILE, &wasm).unwrap();
    let module = WebAssembly::Module::new(&Uint8Array::from(&wasm[..]).into()).unwrap();
    let instance = WebAssembly::Instance::new(&module, &Object::new()).unwrap();
    Model::new(manifest, &instance).unwrap()
}

/// A JavaScript object with these members.
fn object(members: &[(&str, JsValue)]) -> JsValue {
    let o = Object::new();
    for (key, value) in members {
        set(&o, &(*key).into(), value);
    }
    o.into()
}

fn rows(rows: Vec<JsValue>) -> JsValue {
    rows.into_iter().collect::<Array>().into()
}

fn values(result: &Array) -> Vec<f64> {
    result
        .iter()
        .map(|r| Reflect::get(&r, &"value".into()).unwrap().as_f64().unwrap())
        .collect()
}

fn message(error: JsError) -> String {
    js_message(&JsValue::from(error))
}

fn expected(ir: &ModelIr, row: [f64; 3]) -> f64 {
    match ir.predict(&row).unwrap() {
        Prediction::Value(v) => v,
        Prediction::Class { .. } => unreachable!("a regressor"),
    }
}

#[wasm_bindgen_test]
fn javascript_values_become_cells() {
    assert_eq!(cell(&JsValue::NULL), Cell::Null("null"));
    assert_eq!(cell(&JsValue::UNDEFINED), Cell::Null("undefined"));
    assert!(matches!(cell(&JsValue::from(f64::NAN)), Cell::Number(v) if v.is_nan()));
    assert_eq!(cell(&JsValue::from(-2.5)), Cell::Number(-2.5));
    assert_eq!(cell(&JsValue::from(f64::INFINITY)), Cell::Number(f64::INFINITY));
    assert_eq!(cell(&"NaN".into()), Cell::Other("a string (\"NaN\")".into()));
    assert_eq!(cell(&JsValue::TRUE), Cell::Other("a boolean (true)".into()));
    assert_eq!(cell(&Array::new().into()), Cell::Other("an array".into()));
}

#[wasm_bindgen_test]
fn null_undefined_and_nan_predict_where_the_model_routes_them() {
    let ir = boosted_ir();
    let mut model = load(&ir);
    let nan = f64::NAN;
    let missing: Vec<bool> = model
        .features()
        .iter()
        .map(|f| Reflect::get(&f, &"missing".into()).unwrap().is_truthy())
        .collect();
    assert_eq!(missing, [true, true, false]);

    let result = model
        .predict(rows(vec![
            object(&[("x0", JsValue::NULL), ("x1", 1.0.into()), ("x2", 1.0.into())]),
            object(&[("x0", 7.0.into()), ("x1", JsValue::UNDEFINED), ("x2", 9.0.into())]),
            object(&[("x0", nan.into()), ("x1", nan.into()), ("x2", 4.0.into())]),
            rows(vec![JsValue::UNDEFINED, JsValue::NULL, 2.0.into()]),
            rows(vec![4.0.into(), 0.5.into(), 1.0.into()]),
        ]))
        .unwrap_or_else(|e| panic!("{}", message(e)));
    let want = [
        [nan, 1.0, 1.0],
        [7.0, nan, 9.0],
        [nan, nan, 4.0],
        [nan, nan, 2.0],
        [4.0, 0.5, 1.0],
    ]
    .map(|row| expected(&ir, row));
    assert_eq!(values(&result), want);
    // The routes taken: x0 missing left (+1), x1 missing right (+0.25).
    assert_eq!(want, [1.625, -0.25, 1.75, 1.75, 1.625]);
}

#[wasm_bindgen_test]
fn other_missing_values_are_refused_with_the_row_and_feature() {
    let mut model = load(&boosted_ir());
    let refused = |model: &mut Model, row: JsValue| message(model.predict(rows(vec![row])).unwrap_err());
    assert_eq!(
        refused(
            &mut model,
            object(&[("x0", 1.0.into()), ("x1", 1.0.into()), ("x2", JsValue::NULL)])
        ),
        "rows[0]: feature 'x2' is null, not a number"
    );
    assert_eq!(
        refused(&mut model, rows(vec![1.0.into(), 1.0.into(), JsValue::UNDEFINED])),
        "rows[0]: feature 'x2' is undefined, not a number"
    );
    assert_eq!(
        refused(&mut model, rows(vec![1.0.into(), 1.0.into(), f64::NAN.into()])),
        "rows[0]: feature 'x2' is NaN, not a finite number"
    );
    assert_eq!(
        refused(&mut model, rows(vec![f64::INFINITY.into(), 1.0.into(), 1.0.into()])),
        "rows[0]: feature 'x0' is Infinity, not a finite number"
    );
    // Left out is not a missing value, even where one is taken.
    assert_eq!(
        refused(&mut model, object(&[("x0", 1.0.into()), ("x2", 1.0.into())])),
        "rows[0]: feature 'x1' is missing (send null or NaN for a missing value)"
    );
}
