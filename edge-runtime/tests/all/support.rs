//! Models as the control plane publishes them (IR compiled by `model_wasm::codegen`, a manifest
//! with digests, a reference profile and sample rows, optionally signed), and one runtime to
//! load them with.
//!
//! Shared with the `wasmline-edge` binary's unit tests through `#[path]` (`src/edge/testing.rs`),
//! so it names its siblings `super::`, never `crate::`.

#![allow(dead_code)]

use std::path::Path;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use ed25519_dalek::{Signer, SigningKey};
use edge_runtime::{LoadOptions, Runtime, RuntimeConfig, ServedModel};
use model_wasm::ir::Missing;
use model_wasm::manifest::sha256_hex;
use model_wasm::signature::{PublicKey, Signature, canonical_json, hex};
use model_wasm::{Body, FeatureReference, IR_VERSION, Link, ModelIr, Node, Output, Prediction, Tree};
use serde_json::{Value, json};

/// One runtime for the tests that need no special sizing, as a process would have.
pub fn runtime() -> &'static Runtime {
    static RUNTIME: LazyLock<Runtime> =
        LazyLock::new(|| Runtime::new(RuntimeConfig::default()).expect("the engine starts"));
    &RUNTIME
}

pub const CLASSES: [&str; 3] = ["low", "mid", "high"];
pub const FEATURES: [&str; 3] = ["alcohol", "acidity", "sugar"];

/// A softmax classifier over [`FEATURES`] into [`CLASSES`].
pub fn classifier_ir() -> ModelIr {
    ModelIr {
        ir_version: IR_VERSION,
        features: FEATURES.map(String::from).to_vec(),
        preprocess: vec![],
        body: Body::Linear {
            weights: vec![1.0, -0.5, 0.2, -1.0, 0.3, 0.1, 0.5, 0.5, -0.7],
            intercepts: vec![0.1, 0.0, -0.1],
            link: Link::Softmax,
        },
        output: Output::Classification {
            classes: CLASSES.map(String::from).to_vec(),
        },
    }
}

/// `y = intercept + x0 - 2 x1`: a regressor over `x0`, `x1`.
pub fn regressor_ir(intercept: f64) -> ModelIr {
    ModelIr {
        ir_version: IR_VERSION,
        features: vec!["x0".into(), "x1".into()],
        preprocess: vec![],
        body: Body::Linear {
            weights: vec![1.0, -2.0],
            intercepts: vec![intercept],
            link: Link::Identity,
        },
        output: Output::Regression { target: "y".into() },
    }
}

/// A boosted regressor over `x0`, `x1`, `x2` that routes missing values of `x0` (left) and `x1`
/// (right) and refuses them for `x2` (a split on it has no missing rule):
/// `y = 0.5 + (x0 < 5 or missing ? 1 : -1) + (x1 < 2 ? (x2 < 3 ? 0.125 : 0.0625) : 0.25)`.
pub fn boosted_ir() -> ModelIr {
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
            link: Link::Identity,
        },
        output: Output::Regression { target: "y".into() },
    }
}

/// The signing key of the test control plane, and another one.
pub fn signing_key() -> SigningKey {
    SigningKey::from_bytes(&[42; 32])
}

pub fn other_signing_key() -> SigningKey {
    SigningKey::from_bytes(&[43; 32])
}

pub fn public_key(key: &SigningKey) -> PublicKey {
    PublicKey::of(&key.verifying_key())
}

/// A model version's two files.
#[derive(Debug, Clone)]
pub struct ModelFiles {
    pub manifest: Vec<u8>,
    pub wasm: Vec<u8>,
}

/// The manifest (as JSON) of `name@version` for `ir` and its module bytes.
pub fn manifest_value(name: &str, version: u64, ir: &ModelIr, wasm: &[u8]) -> Value {
    let values: Vec<f64> = (0..100).map(|i| f64::from(i) / 10.0).collect();
    let features: Vec<Value> = ir
        .features
        .iter()
        .zip(ir.accepts_missing())
        .map(|(f, missing)| {
            let mut view = json!({"name": f, "type": "float", "min": 0.0, "max": 9.9});
            if missing {
                view["missing"] = json!(true);
            }
            view
        })
        .collect();
    let references: Vec<FeatureReference> = ir
        .features
        .iter()
        .map(|f| FeatureReference::numeric_from_values(f, &values, 5).unwrap())
        .collect();
    let output = match &ir.output {
        Output::Classification { classes } => json!({"target": "quality", "classes": classes}),
        Output::Regression { target } => json!({"target": target}),
    };
    json!({
        "schema_version": 1,
        "name": name,
        "version": version,
        "features": features,
        "output": output,
        "artifacts": {"model.wasm": {"size": wasm.len(), "sha256": sha256_hex(wasm)}},
        "reference_profile": {"rows": 100, "features": references},
        "sample_rows": [vec![1.0; ir.features.len()], vec![5.0; ir.features.len()]],
    })
}

/// Adds a `signature` member made with `key`.
pub fn sign(mut manifest: Value, key: &SigningKey) -> Vec<u8> {
    manifest.as_object_mut().unwrap().remove("signature");
    let signature = key.sign(&canonical_json(&manifest));
    manifest["signature"] = serde_json::to_value(Signature {
        algorithm: "ed25519".into(),
        key_id: public_key(key).key_id,
        value: hex(&signature.to_bytes()),
    })
    .unwrap();
    serde_json::to_vec_pretty(&manifest).unwrap()
}

/// `name@version` of `ir`, compiled, with a manifest signed by `key` (unsigned without one).
pub fn model_files(name: &str, version: u64, ir: &ModelIr, key: Option<&SigningKey>) -> ModelFiles {
    let wasm = model_wasm::codegen::compile(ir, b"{}").unwrap();
    with_module(name, version, ir, wasm, key)
}

/// Like [`model_files`] with the given module bytes (which need not come from `ir`).
pub fn with_module(name: &str, version: u64, ir: &ModelIr, wasm: Vec<u8>, key: Option<&SigningKey>) -> ModelFiles {
    let value = manifest_value(name, version, ir, &wasm);
    let manifest = match key {
        Some(key) => sign(value, key),
        None => serde_json::to_vec_pretty(&value).unwrap(),
    };
    ModelFiles { manifest, wasm }
}

/// A module over `n_features` whose `predict` never returns.
pub fn looping_module(n_features: i32) -> Vec<u8> {
    super::fixtures::with_body(n_features, "(loop $forever (br $forever))").wasm()
}

/// A loaded model, unsigned, for handler tests.
pub fn served(name: &str, version: u64, ir: &ModelIr) -> Arc<ServedModel> {
    let files = model_files(name, version, ir, None);
    Arc::new(ServedModel::load(runtime(), &files.manifest, &files.wasm, &LoadOptions::default()).unwrap())
}

/// What the IR's reference evaluator says for `row`.
pub fn reference(ir: &ModelIr, row: &[f64]) -> Prediction {
    ir.predict(row).unwrap()
}

/// Writes `files` as `dir/{name}/manifest.json` and `dir/{name}/model.wasm`.
pub fn write_model_dir(dir: &Path, name: &str, files: &ModelFiles) {
    let folder = dir.join(name);
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join("manifest.json"), &files.manifest).unwrap();
    std::fs::write(folder.join("model.wasm"), &files.wasm).unwrap();
}

/// Polls `check` until it gives `Some`, failing the test after `timeout`.
pub fn eventually<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// An infer request with one `[n, k]` tensor.
pub fn matrix_request(rows: &[Vec<f64>]) -> Value {
    json!({
        "id": "req-1",
        "inputs": [{
            "name": "input",
            "datatype": "FP64",
            "shape": [rows.len(), rows.first().map_or(0, Vec::len)],
            "data": rows.concat(),
        }]
    })
}
