//! Models as the control plane publishes them (IR compiled by `model_wasm::codegen`, a manifest
//! with digests, a reference profile and sample rows, optionally signed), and a guard around a
//! real `wasmline-edge` process.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ed25519_dalek::{Signer, SigningKey};
use edge_runtime::{LoadOptions, ServedModel};
use model_wasm::manifest::sha256_hex;
use model_wasm::signature::{PublicKey, Signature, canonical_json, hex};
use model_wasm::{Body, FeatureReference, IR_VERSION, Link, ModelIr, Output, Prediction};
use serde_json::{Value, json};

use crate::runtime;

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
        .map(|f| json!({"name": f, "type": "float", "min": 0.0, "max": 9.9}))
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
    crate::fixtures::with_body(n_features, "(loop $forever (br $forever))").wasm()
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

/// A `wasmline-edge` child process, killed on drop.
#[derive(Debug)]
pub struct Edge {
    child: Child,
    probe: Probe,
    stderr: Arc<std::sync::Mutex<Vec<String>>>,
}

/// Requests to an edge by base URL.
#[derive(Debug, Clone)]
pub struct Probe {
    pub base: String,
}

impl std::ops::Deref for Edge {
    type Target = Probe;

    fn deref(&self) -> &Probe {
        &self.probe
    }
}

impl Edge {
    /// Starts the binary with `args` (plus `--addr 127.0.0.1:0`) and waits for its
    /// `listening on` line.
    pub fn spawn(args: &[&str]) -> Edge {
        let mut child = Command::new(env!("CARGO_BIN_EXE_wasmline-edge"))
            .args(args)
            .args(["--addr", "127.0.0.1:0"])
            .env("RUST_LOG", "info")
            .env_remove("WASMLINE_EDGE_CONTROL_PLANE")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the edge binary starts");
        let stderr = Arc::new(std::sync::Mutex::new(Vec::new()));
        let lines = stderr.clone();
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                lines.lock().unwrap().push(line);
            }
        });
        let out = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("listening on ") {
                    let _ = tx.send(addr.trim().to_owned());
                }
            }
        });
        let mut edge = Edge {
            child,
            probe: Probe { base: String::new() },
            stderr,
        };
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(addr) => edge.probe.base = format!("http://{addr}"),
            Err(_) => panic!("the edge did not start:\n{}", edge.log()),
        }
        edge
    }

    /// Sends SIGTERM and waits for the process to exit.
    #[cfg(unix)]
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
        eventually("the edge to exit", Duration::from_secs(60), || {
            self.child.try_wait().unwrap()
        })
    }

    /// The process's log so far.
    pub fn log(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }
}

impl Probe {
    pub fn get(&self, path: &str) -> (u16, String) {
        http(agent().get(format!("{}{path}", self.base)).call())
    }

    pub fn post(&self, path: &str, body: &Value) -> (u16, String) {
        http(
            agent()
                .post(format!("{}{path}", self.base))
                .content_type("application/json")
                .send(body.to_string().as_bytes()),
        )
    }

    /// Waits for `GET /v2/health/ready` to answer 200.
    pub fn wait_ready(&self) {
        eventually("the edge to be ready", Duration::from_secs(60), || {
            (self.get("/v2/health/ready").0 == 200).then_some(())
        });
    }

    /// The served version of `model`, from its metadata.
    pub fn served_version(&self, model: &str) -> Option<String> {
        let (status, body) = self.get(&format!("/v2/models/{model}"));
        (status == 200).then(|| {
            serde_json::from_str::<Value>(&body).unwrap()["versions"][0]
                .as_str()
                .unwrap()
                .to_owned()
        })
    }

    /// A metric's value (the first sample whose line starts with `prefix`).
    pub fn metric(&self, prefix: &str) -> Option<f64> {
        let (_, body) = self.get("/metrics");
        body.lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    }
}

impl Drop for Edge {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A client that returns 4xx and 5xx answers instead of errors, with a timeout.
pub fn agent() -> &'static ureq::Agent {
    static AGENT: std::sync::LazyLock<ureq::Agent> = std::sync::LazyLock::new(|| {
        ureq::Agent::new_with_config(
            ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_global(Some(Duration::from_secs(30)))
                .build(),
        )
    });
    &AGENT
}

/// Status and body of a blocking request; transport errors are status 0.
pub fn http(result: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> (u16, String) {
    match result {
        Ok(mut response) => {
            let status = response.status().as_u16();
            (status, response.body_mut().read_to_string().unwrap_or_default())
        }
        Err(ureq::Error::StatusCode(code)) => (code, String::new()),
        Err(_) => (0, String::new()),
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
