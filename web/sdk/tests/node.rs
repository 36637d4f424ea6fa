//! The SDK as a page uses it, in Node (`sdk.mjs`): a generated module that routes missing values
//! predicting rows with `null`, `undefined` and `NaN` as the IR's evaluator does, every other
//! value refused with the edge's message, telemetry and drift as the control plane reads them,
//! and `loadModel` trusting a manifest only when its signature verifies against the key it is
//! given (Node's WebCrypto doing the ed25519 arithmetic, as a browser's does).
//!
//! The SDK is `WASMLINE_SDK_PKG` when set (scripts/test sets it to the fresh build), else the
//! checked-in build (`web/sdk/dist`).

use std::path::{Path, PathBuf};
use std::process::Command;

use ed25519_dalek::{Signer, SigningKey};
use model_wasm::ir::Missing;
use model_wasm::manifest::{ManifestView, sha256_hex};
use model_wasm::schema::InputSchema;
use model_wasm::signature::{PublicKey, SIGNATURE_ALGORITHM, Signature, canonical_json, hex};
use model_wasm::telemetry::{Telemetry, TelemetryReport};
use model_wasm::{Body, IR_VERSION, ModelIr, Node, Output, Prediction, Tree};
use serde_json::{Value, json};

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
fn compiled(ir: &ModelIr) -> (Vec<u8>, Value) {
    let wasm = model_wasm::codegen::compile(ir, b"{}").unwrap();
    let features: Vec<Value> = ir
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
        "sample_rows": [[1.5, 0.25, 9.0]],
    });
    (wasm, manifest)
}

/// The control plane's key in the tests, and another one.
const TRUSTED: [u8; 32] = [7; 32];
const OTHER: [u8; 32] = [8; 32];

fn public_key(seed: [u8; 32]) -> PublicKey {
    PublicKey::of(&SigningKey::from_bytes(&seed).verifying_key())
}

/// `manifest` signed as the control plane signs (over its canonical bytes), with `key_id` in the
/// signature member (the signer's own unless a test lies about it).
fn sign(manifest: &Value, seed: [u8; 32], key_id: &str) -> Value {
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

fn write_model(fixtures: &Path, dir: &str, manifest: &Value, wasm: &[u8]) {
    let dir = fixtures.join(dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("manifest.json"), serde_json::to_vec_pretty(manifest).unwrap()).unwrap();
    std::fs::write(dir.join("model.wasm"), wasm).unwrap();
}

/// The SDK's two files: the fresh build scripts/test makes, else the checked-in one.
fn sdk_dir() -> PathBuf {
    std::env::var_os("WASMLINE_SDK_PKG")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("dist"))
}

/// Writes the fixtures, runs `sdk.mjs` over them and returns what it printed.
fn run_sdk_in_node(ir: &ModelIr) -> Value {
    let scratch = tempfile::tempdir().unwrap();
    let fixtures = scratch.path().join("fixtures");
    let (wasm, manifest) = compiled(ir);
    let (trusted, other) = (public_key(TRUSTED), public_key(OTHER));
    let genuine = sign(&manifest, TRUSTED, &trusted.key_id);
    write_model(&fixtures, "genuine", &genuine, &wasm);

    // Another working model, and the genuine manifest with its digest and size: a server that
    // swaps both. The digest alone would accept it; the signature no longer covers the manifest.
    let mut other_ir = ir.clone();
    if let Body::Boosted { base_score, .. } = &mut other_ir.body {
        base_score[0] = 100.5;
    }
    let other_wasm = model_wasm::codegen::compile(&other_ir, b"{}").unwrap();
    assert_ne!(other_wasm, wasm);
    let mut rehashed = genuine.clone();
    rehashed["artifacts"]["model.wasm"] = json!({"size": other_wasm.len(), "sha256": sha256_hex(&other_wasm)});
    write_model(&fixtures, "rehashed", &rehashed, &other_wasm);
    // The genuine manifest beside another module.
    write_model(&fixtures, "tampered-module", &genuine, &other_wasm);
    write_model(&fixtures, "other-key", &sign(&manifest, OTHER, &other.key_id), &wasm);
    // Signed by the other key under the trusted key's id: the ed25519 check (WebCrypto) refuses it.
    write_model(&fixtures, "forged-id", &sign(&manifest, OTHER, &trusted.key_id), &wasm);
    write_model(&fixtures, "unsigned", &manifest, &wasm);
    // A module that breaks the ABI (its `predict` export renamed), listed and signed as it is.
    let at = wasm
        .windows(8)
        .position(|w| w == b"\x07predict")
        .expect("the export's name");
    let mut broken = wasm.clone();
    broken[at + 7] = b'T';
    let mut listed = manifest.clone();
    listed["artifacts"]["model.wasm"] = json!({"size": broken.len(), "sha256": sha256_hex(&broken)});
    write_model(
        &fixtures,
        "no-predict",
        &sign(&listed, TRUSTED, &trusted.key_id),
        &broken,
    );
    let mut null = manifest.clone();
    null["signature"] = Value::Null;
    write_model(&fixtures, "null-signature", &null, &wasm);

    let keys = json!({
        "trusted": trusted,
        "other": other,
        "wrongId": PublicKey { key_id: "0000000000000000".into(), ..trusted.clone() },
        "rsa": PublicKey { algorithm: "rsa".into(), ..trusted.clone() },
    });
    std::fs::write(fixtures.join("keys.json"), keys.to_string()).unwrap();

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sdk.mjs");
    let output = Command::new("node")
        .arg(&script)
        .arg(sdk_dir())
        .arg(&fixtures)
        .output()
        .expect("node (Node.js 20 or later) runs the SDK's tests");
    assert!(
        output.status.success(),
        "node {} failed: {}",
        script.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn expected(ir: &ModelIr, row: [f64; 3]) -> f64 {
    match ir.predict(&row).unwrap() {
        Prediction::Value(v) => v,
        Prediction::Class { .. } => unreachable!("a regressor"),
    }
}

/// A JSON value with every number as `f64` (JavaScript writes 1.0 as 1).
fn numbers_as_f64(value: Value) -> Value {
    match value {
        Value::Number(n) => json!(n.as_f64().unwrap()),
        Value::Array(items) => Value::Array(items.into_iter().map(numbers_as_f64).collect()),
        Value::Object(members) => Value::Object(members.into_iter().map(|(k, v)| (k, numbers_as_f64(v))).collect()),
        other => other,
    }
}

/// The edge's message for a JSON row (model-wasm's `json_row`).
fn edge_refusal(schema: &InputSchema, row: Value) -> String {
    schema.json_row(0, &row, &mut [0.0; 3]).unwrap_err().to_string()
}

#[test]
fn the_sdk_in_node_predicts_refuses_and_reports_as_an_edge_does() {
    let ir = boosted_ir();
    let out = run_sdk_in_node(&ir);
    let (_, manifest) = compiled(&ir);
    let view = ManifestView::from_json(manifest.to_string().as_bytes()).unwrap();

    assert_eq!(
        out["model"],
        json!({
            "name": "boosted", "version": 1, "task": "regression", "target": "y",
            "features": [
                {"name": "x0", "min": 0, "max": 9, "missing": true},
                {"name": "x1", "min": 0, "max": 9, "missing": true},
                {"name": "x2", "min": 0, "max": 9},
            ],
            "classes": [],
            "sampleRows": [{"x0": 1.5, "x1": 0.25, "x2": 9}],
        })
    );

    // null, undefined and NaN take the routes the IR takes for a missing value: x0 missing left
    // (+1), x1 missing right (+0.25).
    let nan = f64::NAN;
    let rows = [
        [nan, 1.0, 1.0],
        [7.0, nan, 9.0],
        [nan, nan, 4.0],
        [nan, nan, 2.0],
        [4.0, 0.5, 1.0],
    ];
    let want = rows.map(|row| expected(&ir, row));
    assert_eq!(want, [1.625, -0.25, 1.75, 1.75, 1.625]);
    assert_eq!(out["routed"], json!(want));
    assert_eq!(out["batchRows"], 2500);
    assert_eq!(out["batchMismatches"], 0);

    // The telemetry the page posts reads as the control plane reads it, member for member the
    // report's serde form, and its drift is model-wasm's over the same rows.
    let text = out["telemetryText"].as_str().unwrap();
    let posted: TelemetryReport = serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert_eq!(
        numbers_as_f64(out["telemetry"].clone()),
        numbers_as_f64(serde_json::to_value(&posted).unwrap())
    );
    let mut native = Telemetry::new(&view, "browser");
    native.record_ok(rows.as_flattened(), posted.latency_seconds.sum);
    let native = native.report();
    assert_eq!(
        (posted.model.as_str(), posted.version, posted.runtime.as_str()),
        ("boosted", 1, "browser")
    );
    assert_eq!(posted.predictions, native.predictions);
    assert_eq!(posted.latency_seconds.le, native.latency_seconds.le);
    assert_eq!(posted.latency_seconds.count, 1);
    assert_eq!(posted.latency_seconds.counts.iter().sum::<u64>(), 1);
    assert_eq!(posted.drift, native.drift);
    assert!(posted.drift.features.iter().any(|f| f.missing > 0 && f.ks.is_some()));
    assert_eq!(
        numbers_as_f64(out["drift"].clone()),
        numbers_as_f64(serde_json::to_value(&native.drift).unwrap())
    );

    // Each refusal is the edge's message for the same value, where JSON has one.
    let schema = InputSchema::of_manifest(&view).unwrap();
    let refused = &out["refused"];
    let cases = [
        ("nullX2", edge_refusal(&schema, json!({"x0": 1, "x1": 1, "x2": null}))),
        ("absentX1", edge_refusal(&schema, json!({"x0": 1, "x2": 1}))),
        (
            "unknown",
            edge_refusal(&schema, json!({"x0": 1, "x1": 1, "x2": 1, "x9": 1})),
        ),
        ("string", edge_refusal(&schema, json!({"x0": "NaN", "x1": 1, "x2": 1}))),
        (
            "longString",
            edge_refusal(&schema, json!([1, "a value far too long to be shown whole", 1])),
        ),
        ("boolean", edge_refusal(&schema, json!([true, 1, 1]))),
        ("array", edge_refusal(&schema, json!({"x0": [], "x1": 1, "x2": 1}))),
        ("short", edge_refusal(&schema, json!([1]))),
    ];
    for (case, edge) in cases {
        assert_eq!(refused[case], json!(edge), "{case}");
    }
    assert_eq!(refused["nullX2"], "rows[0]: feature 'x2' is null, not a number");
    assert_eq!(
        refused["string"],
        "rows[0]: feature 'x0' is a string (\"NaN\"), not a number"
    );
    // JavaScript's own values.
    let js_only = [
        ("undefinedX2", "rows[0]: feature 'x2' is undefined, not a number"),
        ("nanX2", "rows[0]: feature 'x2' is NaN, not a finite number"),
        ("infinityX0", "rows[0]: feature 'x0' is Infinity, not a finite number"),
        ("holes", "rows[0]: feature 'x2' is undefined, not a number"),
        ("object", "rows[0]: feature 'x1' is of type object, not a number"),
        ("bigint", "rows[0]: feature 'x2' is a BigInt, not a number"),
        (
            "number",
            "rows[0]: is the number 5, not an object {feature: number} or an array in feature order",
        ),
        (
            "null",
            "rows[0]: is null, not an object {feature: number} or an array in feature order",
        ),
        (
            "text",
            "rows[0]: is a string (\"x0=1\"), not an object {feature: number} or an array in feature order",
        ),
        (
            "notArray",
            "predict takes an array of rows (objects {feature: number} or arrays in feature order); wrap a \
             single row in [ ]",
        ),
        (
            "second",
            "rows[1]: feature 'x1' is missing (send null or NaN for a missing value)",
        ),
    ];
    for (case, message) in js_only {
        assert_eq!(refused[case], message, "{case}");
    }
    let n_refused = refused.as_object().unwrap().len();
    assert_eq!(out["afterRefusals"], json!({"ok": 0, "error": n_refused, "rows": 0}));
    assert_eq!(out["afterReset"], json!({"ok": 0, "error": 0, "rows": 0}));
}

#[test]
fn load_model_trusts_only_a_manifest_signed_by_its_key() {
    let out = run_sdk_in_node(&boosted_ir());
    let (trusted, other) = (public_key(TRUSTED), public_key(OTHER));
    assert_eq!(out["keyText"], "loaded boosted");
    let changed = "manifest signature refused: the signature does not match its content (it was changed after signing)";
    let loads = &out["loads"];
    let expected = [
        ("/rehashed trusted", format!("/rehashed/manifest.json: {changed}")),
        (
            "/other-key trusted",
            format!(
                "/other-key/manifest.json: manifest signature refused: it was signed by key {}, not by the trusted \
                 key {}",
                other.key_id, trusted.key_id
            ),
        ),
        ("/forged-id trusted", format!("/forged-id/manifest.json: {changed}")),
        ("/other-key other", "loaded boosted".into()),
        (
            "/unsigned trusted",
            "/unsigned/manifest.json: manifest signature refused: it is not signed".into(),
        ),
        (
            "/null-signature trusted",
            "/null-signature/manifest.json: manifest signature refused: it is not signed".into(),
        ),
        (
            "/no-predict trusted",
            "invalid model module: model.wasm: it does not export the function 'predict'".into(),
        ),
        (
            "/no-such-model trusted",
            "cannot fetch /no-such-model/manifest.json: HTTP 404 Not Found".into(),
        ),
    ];
    for (case, message) in expected {
        assert_eq!(loads[case], json!(message), "{case}");
    }
    assert_eq!(
        out["freed"],
        json!({"predict": "this Model was freed", "telemetry": "this Model was freed", "other": 1.625, "otherCalls": 1})
    );
    let tampered = loads["/tampered-module trusted"].as_str().unwrap();
    assert!(
        tampered.starts_with("model.wasm does not match the manifest: sha256 is "),
        "{tampered}"
    );

    let bad_keys: Vec<&str> = out["badKeys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect();
    for missing in &bad_keys[..4] {
        assert!(
            missing.starts_with("loadModel(baseUrl, signingKey) needs the control plane's signing key"),
            "{missing}"
        );
    }
    assert_eq!(
        bad_keys[4..],
        [
            "the signing key is refused: invalid public key: key id 0000000000000000 does not match the public key",
            "the signing key is refused: invalid public key: unsupported key algorithm 'rsa'",
        ]
    );
}
