//! The SDK's JavaScript side, run in Node by wasm-bindgen-test-runner (`cargo test -p wasmline-sdk
//! --target wasm32-unknown-unknown`, see scripts/test): JavaScript values as the schema check sees
//! them, a generated module that routes missing values predicting rows with `null`,
//! `undefined` and `NaN` as the IR's evaluator does, and `loadModel` over a stand-in `fetch`
//! trusting a manifest only when its signature verifies against the key it is given (Node's
//! WebCrypto doing the ed25519 arithmetic, as a browser's does).

use ed25519_dalek::{Signer, SigningKey};
use js_sys::{Object, Uint8Array};
use model_wasm::ir::Missing;
use model_wasm::manifest::sha256_hex;
use model_wasm::signature::{SIGNATURE_ALGORITHM, Signature, canonical_json, hex};
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

/// The model compiled, and its (unsigned) manifest, whose features say which take missing values.
fn compiled(ir: &ModelIr) -> (Vec<u8>, serde_json::Value) {
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
        "reference_profile": {"rows": 4, "features": [
            {"kind": "numeric", "name": "x0", "edges": [2.0, 5.0], "proportions": [0.25, 0.5, 0.25]},
            {"kind": "categorical", "name": "x2", "categories": ["1", "9"], "proportions": [0.75, 0.25]},
        ]},
    });
    (wasm, manifest)
}

/// The model compiled and loaded as `loadModel` loads one (minus the fetches and the signature).
fn load(ir: &ModelIr) -> Model {
    let (wasm, manifest) = compiled(ir);
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

    // The telemetry the page posts is the report's serde form, member for member (the SDK
    // builds the objects itself rather than linking serde_json).
    let report = model.telemetry.report();
    assert_eq!(report.predictions.rows, 5);
    assert!(report.drift.features.iter().any(|f| f.missing > 0 && f.ks.is_some()));
    let posted = as_json(&model.telemetry());
    assert_eq!(posted, numbers_as_f64(serde_json::to_value(&report).unwrap()));
    // As the control plane reads it.
    let text = String::from(js_sys::JSON::stringify(&model.telemetry()).unwrap());
    assert_eq!(
        serde_json::from_str::<model_wasm::telemetry::TelemetryReport>(&text).unwrap(),
        report
    );
    let drift = as_json(&model.drift_snapshot());
    assert_eq!(
        drift,
        numbers_as_f64(serde_json::to_value(model.telemetry.drift()).unwrap())
    );
}

/// A JavaScript value as its JSON text reads (`JSON.stringify`, as the page posts it), numbers
/// as `f64` (JavaScript writes 1.0 as 1).
fn as_json(value: &JsValue) -> serde_json::Value {
    let text = String::from(js_sys::JSON::stringify(value).unwrap());
    numbers_as_f64(serde_json::from_str(&text).unwrap())
}

fn numbers_as_f64(value: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::Number(n) => json!(n.as_f64().unwrap()),
        Value::Array(items) => Value::Array(items.into_iter().map(numbers_as_f64).collect()),
        Value::Object(members) => Value::Object(members.into_iter().map(|(k, v)| (k, numbers_as_f64(v))).collect()),
        other => other,
    }
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

// ---------- loadModel and the manifest's signature ----------

/// The control plane's key in the tests, and another one.
const TRUSTED: [u8; 32] = [7; 32];
const OTHER: [u8; 32] = [8; 32];

fn public_key(seed: [u8; 32]) -> PublicKey {
    PublicKey::of(&SigningKey::from_bytes(&seed).verifying_key())
}

/// The key as `GET /api/v1/signing-key` gives it to a page: a plain object.
fn key_object(seed: [u8; 32]) -> JsValue {
    js_sys::JSON::parse(&serde_json::to_string(&public_key(seed)).unwrap()).unwrap()
}

/// `manifest` signed as the control plane signs (over its canonical bytes), with `key_id` in the
/// signature member (the signer's own unless a test lies about it).
fn sign(manifest: &serde_json::Value, seed: [u8; 32], key_id: &str) -> serde_json::Value {
    let signature = SigningKey::from_bytes(&seed).sign(&canonical_json(manifest));
    let mut signed = manifest.clone();
    signed["signature"] = serde_json::to_value(Signature {
        algorithm: SIGNATURE_ALGORITHM.into(),
        key_id: key_id.into(),
        value: hex(&signature.to_bytes()),
    })
    .unwrap();
    signed
}

/// Makes the global `fetch` answer `{dir}/manifest.json` and `{dir}/model.wasm` with these bytes
/// (on top of what earlier calls served; anything else is a 404).
fn serve(dir: &str, manifest: &serde_json::Value, wasm: &[u8]) {
    let install = Function::new_with_args(
        "entries",
        "const files = (globalThis.__sdkTestFiles ??= new Map());
         for (const [url, bytes] of entries) files.set(url, bytes);
         globalThis.fetch = async (url) => files.has(url)
           ? new Response(files.get(url))
           : new Response('not found', { status: 404, statusText: 'Not Found' });",
    );
    let manifest = serde_json::to_vec_pretty(manifest).unwrap();
    let entries: Array = [("manifest.json", &manifest[..]), ("model.wasm", wasm)]
        .into_iter()
        .map(|(file, bytes)| Array::of2(&format!("{dir}/{file}").into(), &Uint8Array::from(bytes)))
        .collect();
    install.call1(&JsValue::UNDEFINED, &entries).unwrap();
}

/// Why `loadModel(dir, key)` refused the model (a panic if it loaded it).
async fn load_error(dir: &str, key: JsValue) -> String {
    match load_model(dir.into(), key).await {
        Ok(model) => panic!("loadModel({dir}) accepted {}", model.manifest.id()),
        Err(e) => message(e),
    }
}

/// The IR's answer for one row of `boosted_ir`'s features, and the SDK's.
fn predicted(model: &mut Model, row: [f64; 3]) -> f64 {
    let result = model
        .predict(rows(vec![rows(row.map(JsValue::from).to_vec())]))
        .unwrap_or_else(|e| panic!("{}", message(e)));
    values(&result)[0]
}

#[wasm_bindgen_test]
async fn a_model_signed_by_the_trusted_key_loads_and_predicts() {
    let ir = boosted_ir();
    let (wasm, manifest) = compiled(&ir);
    let trusted = public_key(TRUSTED);
    serve("/genuine", &sign(&manifest, TRUSTED, &trusted.key_id), &wasm);

    let mut model = load_model("/genuine".into(), key_object(TRUSTED))
        .await
        .unwrap_or_else(|e| panic!("{}", message(e)));
    assert_eq!(predicted(&mut model, [4.0, 0.5, 1.0]), expected(&ir, [4.0, 0.5, 1.0]));
    assert_eq!(predicted(&mut model, [4.0, 0.5, 1.0]), 1.625);
    // The key's JSON text does as well as the object.
    let text = serde_json::to_string(&trusted).unwrap();
    let model = load_model("/genuine/".into(), text.into()).await;
    assert_eq!(model.map(|m| m.name()).map_err(message), Ok("boosted".to_owned()));
}

#[wasm_bindgen_test]
async fn a_module_and_manifest_rehashed_without_the_key_are_refused() {
    let trusted = public_key(TRUSTED);
    let (wasm, manifest) = compiled(&boosted_ir());
    let genuine = sign(&manifest, TRUSTED, &trusted.key_id);
    // Another working model, and the genuine manifest with its digest and size: a server that
    // swaps both. The digest alone would accept it; the signature no longer covers the manifest.
    let mut other_ir = boosted_ir();
    if let Body::Boosted { base_score, .. } = &mut other_ir.body {
        base_score[0] = 100.5;
    }
    let other = model_wasm::codegen::compile(&other_ir, b"{}").unwrap();
    assert_ne!(other, wasm);
    let mut rehashed = genuine.clone();
    rehashed["artifacts"]["model.wasm"] = json!({"size": other.len(), "sha256": sha256_hex(&other)});
    ManifestView::from_json(rehashed.to_string().as_bytes())
        .unwrap()
        .verify_artifact(MODULE_FILE, &other)
        .unwrap();
    serve("/rehashed", &rehashed, &other);

    assert_eq!(
        load_error("/rehashed", key_object(TRUSTED)).await,
        "/rehashed/manifest.json: manifest signature refused: the signature does not match its content \
         (it was changed after signing)"
    );
}

#[wasm_bindgen_test]
async fn a_manifest_signed_by_another_key_is_refused() {
    let (trusted, other) = (public_key(TRUSTED), public_key(OTHER));
    let (wasm, manifest) = compiled(&boosted_ir());
    serve("/other-key", &sign(&manifest, OTHER, &other.key_id), &wasm);
    assert_eq!(
        load_error("/other-key", key_object(TRUSTED)).await,
        format!(
            "/other-key/manifest.json: manifest signature refused: it was signed by key {}, not by the trusted \
             key {}",
            other.key_id, trusted.key_id
        )
    );
    // Signed by the other key under the trusted key's id: the ed25519 check (WebCrypto) refuses it.
    serve("/forged-id", &sign(&manifest, OTHER, &trusted.key_id), &wasm);
    assert_eq!(
        load_error("/forged-id", key_object(TRUSTED)).await,
        "/forged-id/manifest.json: manifest signature refused: the signature does not match its content \
         (it was changed after signing)"
    );
    // The same manifest loads for a page that trusts the other key.
    let model = load_model("/other-key".into(), key_object(OTHER)).await;
    assert_eq!(model.map(|m| m.version()).map_err(message), Ok(1.0));
}

#[wasm_bindgen_test]
async fn an_unsigned_manifest_is_refused() {
    let (wasm, manifest) = compiled(&boosted_ir());
    serve("/unsigned", &manifest, &wasm);
    assert_eq!(
        load_error("/unsigned", key_object(TRUSTED)).await,
        "/unsigned/manifest.json: manifest signature refused: it is not signed"
    );
    let mut null = manifest.clone();
    null["signature"] = serde_json::Value::Null;
    serve("/null-signature", &null, &wasm);
    assert_eq!(
        load_error("/null-signature", key_object(TRUSTED)).await,
        "/null-signature/manifest.json: manifest signature refused: it is not signed"
    );
}

#[wasm_bindgen_test]
async fn load_model_needs_a_well_formed_key() {
    let trusted = public_key(TRUSTED);
    let (wasm, manifest) = compiled(&boosted_ir());
    serve("/keys", &sign(&manifest, TRUSTED, &trusted.key_id), &wasm);
    for missing in [
        JsValue::UNDEFINED,
        JsValue::NULL,
        Object::new().into(),
        "not json".into(),
    ] {
        let error = load_error("/keys", missing).await;
        assert!(
            error.starts_with("loadModel(baseUrl, signingKey) needs the control plane's signing key"),
            "{error}"
        );
    }
    let wrong_id = PublicKey {
        key_id: "0000000000000000".into(),
        ..trusted.clone()
    };
    assert_eq!(
        load_error("/keys", serde_json::to_string(&wrong_id).unwrap().into()).await,
        "the signing key is refused: invalid public key: key id 0000000000000000 does not match the public key"
    );
    let rsa = PublicKey {
        algorithm: "rsa".into(),
        ..trusted
    };
    assert_eq!(
        load_error("/keys", serde_json::to_string(&rsa).unwrap().into()).await,
        "the signing key is refused: invalid public key: unsupported key algorithm 'rsa'"
    );
}
