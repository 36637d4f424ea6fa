//! Wasmline's browser SDK (built with `wasm-pack build web/sdk --target web`, see
//! `scripts/lib/tools.sh`): loads a model's manifest and generated module, checks the manifest's
//! ed25519 signature against the key it is given, then the module's sha256 and ABI, and predicts
//! from named features, keeping telemetry and the drift window.
//!
//! ```js
//! import init, { loadModel } from "./pkg/wasmline_sdk.js";
//! await init();
//! // The control plane's key, {algorithm, key_id, public_key}: pin it (web/app.js keeps it in
//! // localStorage on first load) rather than trusting whatever a later load serves.
//! const key = await (await fetch("/api/v1/signing-key")).json();
//! const model = await loadModel("/api/v1/models/wine/versions/3/artifacts", key);   // manifest.json, model.wasm
//! const [p] = model.predict([{ alcohol: 11.2, pH: 3.3 /* ... every feature */ }]);
//! // p = { label: "1", probabilities: { "0": 0.2, "1": 0.8 } }, or { value: 5.6 } for a regressor
//! model.telemetry();     // counts, latency histogram and drift, ready to post
//! ```
//!
//! This crate only moves values between JavaScript and model-wasm's plain modules, which hold
//! every rule: [`model_wasm::signature`] (the signature's rules and the bytes it covers, as an
//! edge checks them), [`model_wasm::manifest`] (digests), [`model_wasm::schema`] (row checks),
//! [`model_wasm::abi`] (the module's contract) and [`model_wasm::telemetry`] (counts, latency,
//! drift). The one exception is the ed25519 arithmetic, which is the browser's WebCrypto
//! (`crypto.subtle`, `Ed25519`, RFC 8032 verification): ed25519-dalek's `verify_strict`, which
//! an edge runs, would add 9.5 KB of gzip to the SDK (17 KB with its precomputed tables). A
//! signature the control plane made passes both; one made without its private key passes
//! neither. WebCrypto exists only in a secure context (https, or http on localhost): elsewhere
//! every model is refused, with a message that says so.

use js_sys::{Array, Function, Object, Reflect, Uint8Array, WebAssembly};
use wasm_bindgen::prelude::*;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

use model_wasm::Error;
use model_wasm::abi::{self, Layout, export};
use model_wasm::manifest::ManifestView;
use model_wasm::schema::{Cell, InputSchema, describe_string};
use model_wasm::signature::{PublicKey, SignatureError, manifest_signed_message};
use model_wasm::telemetry::Telemetry;

#[wasm_bindgen]
extern "C" {
    /// The global `fetch` (windows, workers and Node.js alike).
    #[wasm_bindgen(js_name = fetch)]
    fn global_fetch(url: &str) -> js_sys::Promise;

    /// JavaScript's `String(value)`: numbers in their shortest form, with no float formatting
    /// linked into the SDK.
    #[wasm_bindgen(js_name = String)]
    fn js_string(value: &JsValue) -> String;

    /// `performance.now()`, in milliseconds.
    #[wasm_bindgen(js_namespace = performance, js_name = now)]
    fn performance_now() -> f64;

    /// WebCrypto's `SubtleCrypto` (`crypto.subtle`), as much of it as the signature check uses.
    type Subtle;

    #[wasm_bindgen(method, catch, js_name = importKey)]
    fn import_key(
        this: &Subtle,
        format: &str,
        key_data: &Uint8Array,
        algorithm: &str,
        extractable: bool,
        usages: &Array,
    ) -> Result<js_sys::Promise, JsValue>;

    #[wasm_bindgen(method, catch)]
    fn verify(
        this: &Subtle,
        algorithm: &str,
        key: &JsValue,
        signature: &Uint8Array,
        data: &Uint8Array,
    ) -> Result<js_sys::Promise, JsValue>;
}

// A page runs the SDK on one thread (wasm32-unknown-unknown has no threads without atomics).
// The one `unsafe` of the workspace: lol_alloc's promise that nothing allocates concurrently.
#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code)]
#[global_allocator]
static ALLOCATOR: lol_alloc::AssumeSingleThreaded<lol_alloc::FreeListAllocator> =
    // SAFETY: this module is only ever instantiated without shared memory, on one thread.
    unsafe { lol_alloc::AssumeSingleThreaded::new(lol_alloc::FreeListAllocator::new()) };

/// The file names a model directory holds.
const MANIFEST_FILE: &str = "manifest.json";
const MODULE_FILE: &str = "model.wasm";

/// Loads the model at `baseUrl` (a directory holding `manifest.json` and `model.wasm`) and
/// trusts it only as far as `signingKey` does: `signingKey` is the control plane's public key as
/// `GET /api/v1/signing-key` returns it, `{algorithm, key_id, public_key}` (an object or its JSON
/// text). The manifest must be signed by that key (same key id, `ed25519`, a signature over its
/// canonical bytes that verifies); only then is the module checked against the manifest's
/// sha256, instantiated with no imports and its exports checked against the module ABI and the
/// manifest. Each refusal is an error naming the file and the reason.
#[wasm_bindgen(js_name = loadModel)]
pub async fn load_model(base_url: String, signing_key: JsValue) -> Result<Model, JsError> {
    let key = trusted_key(&signing_key)?;
    let base = base_url.trim_end_matches('/');
    let manifest_url = format!("{base}/{MANIFEST_FILE}");
    let manifest = verified_manifest(&fetch_bytes(&manifest_url).await?, &key)
        .await
        .map_err(|e| JsError::new(&format!("{manifest_url}: {e}")))?;
    let bytes = fetch_bytes(&format!("{base}/{MODULE_FILE}")).await?;
    manifest.verify_artifact(MODULE_FILE, &bytes)?;
    let instance = instantiate(&bytes).await?;
    Ok(Model::new(manifest, &instance)?)
}

/// A loaded model: its manifest, the instantiated module, and its telemetry.
#[wasm_bindgen]
#[derive(Debug)]
pub struct Model {
    manifest: ManifestView,
    schema: InputSchema,
    /// The feature names as JavaScript strings, made once.
    js_names: Vec<JsValue>,
    /// The class names, and the keys of a result, as JavaScript strings.
    js_classes: Vec<JsValue>,
    js_keys: [JsValue; 3],
    layout: Layout,
    memory: WebAssembly::Memory,
    exports: Exports,
    telemetry: Telemetry,
}

/// The module's functions, looked up once.
#[derive(Debug)]
struct Exports {
    predict: Function,
    error_row: Function,
    error_feature: Function,
    last_error_ptr: Function,
    last_error_len: Function,
}

#[wasm_bindgen]
impl Model {
    /// The model's name.
    #[wasm_bindgen(getter)]
    pub fn name(&self) -> String {
        self.manifest.name.clone()
    }

    /// The registry version.
    #[wasm_bindgen(getter)]
    pub fn version(&self) -> f64 {
        self.manifest.version as f64
    }

    /// `classification` or `regression`.
    #[wasm_bindgen(getter)]
    pub fn task(&self) -> String {
        if self.manifest.classes().is_empty() {
            "regression".into()
        } else {
            "classification".into()
        }
    }

    /// The target column the model predicts.
    #[wasm_bindgen(getter)]
    pub fn target(&self) -> String {
        self.manifest.output.target.clone()
    }

    /// The inputs, in model order: `[{name, min, max}]` (min and max as seen in training; an
    /// ordinal-encoded feature also has `categories`, the category of each code, and one whose
    /// missing values the model routes `missing: true`).
    #[wasm_bindgen(getter)]
    pub fn features(&self) -> Array {
        self.manifest
            .features
            .iter()
            .map(|f| {
                let o = Object::new();
                set(&o, &"name".into(), &f.name.as_str().into());
                set(&o, &"min".into(), &f.min.into());
                set(&o, &"max".into(), &f.max.into());
                if let Some(categories) = &f.categories {
                    set(&o, &"categories".into(), &strings(categories));
                }
                if f.missing {
                    set(&o, &"missing".into(), &true.into());
                }
                JsValue::from(o)
            })
            .collect()
    }

    /// The classes in index order (empty for a regressor).
    #[wasm_bindgen(getter)]
    pub fn classes(&self) -> Array {
        strings(self.manifest.classes())
    }

    /// A few test rows from training, as objects `{feature: number}`.
    #[wasm_bindgen(getter, js_name = sampleRows)]
    pub fn sample_rows(&self) -> Array {
        self.manifest
            .sample_rows
            .iter()
            .map(|row| {
                let o = Object::new();
                for (name, v) in self.js_names.iter().zip(row) {
                    set(&o, name, &(*v).into());
                }
                JsValue::from(o)
            })
            .collect()
    }

    /// Predicts `rows`: an array of objects `{feature: number}` (every feature, no other key) or
    /// of arrays in feature order. Returns `[{label, probabilities: {class: p}}]` for a
    /// classifier and `[{value}]` for a regressor. A feature the model routes missing values of
    /// (`missing: true` in `features`) takes `null`, `undefined` or `NaN`. A row that cannot be
    /// predicted (missing or unknown feature, a value that is not a finite number, a missing value
    /// elsewhere) fails the whole call with an error naming the row and the feature.
    pub fn predict(&mut self, rows: JsValue) -> Result<Array, JsError> {
        let start = performance_now();
        match self.try_predict(&rows) {
            Ok((x, results)) => {
                let seconds = (performance_now() - start) / 1000.0;
                self.telemetry.record_ok(&x, seconds);
                Ok(results)
            }
            Err(e) => {
                self.telemetry.record_error();
                Err(JsError::new(&e.to_string()))
            }
        }
    }

    /// The drift of every monitored feature since the last reset:
    /// `{threshold, drifted_ratio, features: [{name, counts, missing, observed, psi, drifted}]}`.
    #[wasm_bindgen(js_name = driftSnapshot)]
    pub fn drift_snapshot(&self) -> JsValue {
        drift_js(&self.telemetry.drift())
    }

    /// Counts, latency histogram and drift since the last reset, as the control plane ingests
    /// them: `{model, version, runtime: "browser", predictions: {ok, error, rows},
    /// latency_seconds: {le, counts, sum, count}, drift}`.
    pub fn telemetry(&self) -> JsValue {
        report_js(&self.telemetry.report())
    }

    /// Starts a new telemetry window (call it once a report was delivered).
    #[wasm_bindgen(js_name = resetTelemetry)]
    pub fn reset_telemetry(&mut self) {
        self.telemetry.reset();
    }
}

impl Model {
    fn new(manifest: ManifestView, instance: &WebAssembly::Instance) -> model_wasm::Result<Model> {
        let exports: Object = instance.exports();
        let memory = Reflect::get(&exports, &export::MEMORY.into())
            .ok()
            .and_then(|m| m.dyn_into::<WebAssembly::Memory>().ok())
            .ok_or_else(|| module_error(format!("it does not export a memory named '{}'", export::MEMORY)))?;
        for name in abi::FUNCTION_EXPORTS {
            function(&exports, name)?;
        }
        let call = |name: &str| call_i32(&function(&exports, name)?, None);
        let layout = Layout {
            abi_version: call(export::ABI_VERSION)?,
            n_features: call(export::N_FEATURES)?,
            n_outputs: call(export::N_OUTPUTS)?,
            output_stride: call(export::OUTPUT_STRIDE)?,
            max_rows: call(export::MAX_ROWS)?,
            input_ptr: call(export::INPUT_PTR)?,
            output_ptr: call(export::OUTPUT_PTR)?,
            memory_bytes: memory.buffer().unchecked_into::<js_sys::ArrayBuffer>().byte_length() as u64,
        };
        layout.check(manifest.features.len(), manifest.classes().len())?;
        let schema = InputSchema::of_manifest(&manifest)?;
        Ok(Model {
            exports: Exports {
                predict: function(&exports, export::PREDICT)?,
                error_row: function(&exports, export::ERROR_ROW)?,
                error_feature: function(&exports, export::ERROR_FEATURE)?,
                last_error_ptr: function(&exports, export::LAST_ERROR_PTR)?,
                last_error_len: function(&exports, export::LAST_ERROR_LEN)?,
            },
            telemetry: Telemetry::new(&manifest, "browser"),
            js_names: schema.names().iter().map(|n| JsValue::from(n.as_str())).collect(),
            js_classes: manifest.classes().iter().map(|c| JsValue::from(c.as_str())).collect(),
            js_keys: ["label", "probabilities", "value"].map(JsValue::from),
            manifest,
            schema,
            layout,
            memory,
        })
    }

    /// The checked feature vectors (concatenated) and the results.
    fn try_predict(&self, rows: &JsValue) -> model_wasm::Result<(Vec<f64>, Array)> {
        if !Array::is_array(rows) {
            return Err(Error::InvalidInput {
                feature: String::new(),
                reason: "predict takes an array of rows (objects {feature: number} or arrays in feature order); \
                         wrap a single row in [ ]"
                    .into(),
            });
        }
        let rows: &Array = rows.unchecked_ref();
        let n = self.schema.len();
        let mut x = vec![0.0; rows.length() as usize * n];
        for (i, (row, out)) in rows.iter().zip(x.chunks_exact_mut(n)).enumerate() {
            self.read_row(i, &row, out)?;
        }
        let stride = self.layout.output_stride as usize;
        let mut y = Vec::with_capacity(rows.length() as usize * stride);
        let max_rows = self.layout.max_rows as usize;
        for (c, chunk) in x.chunks(max_rows * n).enumerate() {
            y.extend(self.run(c * max_rows, chunk)?);
        }
        let results = y
            .chunks_exact(stride)
            .map(|out| self.result(out))
            .collect::<model_wasm::Result<Array>>()?;
        Ok((x, results))
    }

    fn read_row(&self, i: usize, row: &JsValue, out: &mut [f64]) -> model_wasm::Result<()> {
        if Array::is_array(row) {
            let cells: Vec<Cell> = row.unchecked_ref::<Array>().iter().map(|v| cell(&v)).collect();
            self.schema.positional_row(i, &cells, out)
        } else if row.is_object() && !row.is_function() {
            let object: &Object = row.unchecked_ref();
            let values: Vec<JsValue> = self
                .js_names
                .iter()
                .map(|name| Reflect::get(object, name).unwrap_or(JsValue::UNDEFINED))
                .collect();
            // The common case without a string crossing the boundary: exactly the features' keys,
            // all finite numbers (a row the schema check accepts as it is).
            let n_keys = Object::keys(object).length() as usize;
            if n_keys == out.len() {
                let numbers = values.iter().map(|v| v.as_f64().filter(|x| x.is_finite()));
                if let Some(x) = numbers.collect::<Option<Vec<f64>>>() {
                    out.copy_from_slice(&x);
                    return Ok(());
                }
            }
            let keys: Vec<String> = Object::keys(object).iter().filter_map(|k| k.as_string()).collect();
            // A key left out is missing; one set to undefined is a missing value.
            let get = |name: &str| match self.schema.position(name) {
                Some(j) if Object::has_own(object, &self.js_names[j]) => cell(&values[j]),
                _ => Cell::Missing,
            };
            self.schema.named_row(i, &keys, get, out)
        } else {
            let what = match cell(row) {
                Cell::Number(_) => format!("the number {}", js_string(row)),
                Cell::Missing => "undefined".into(),
                Cell::Null(word) => word.into(),
                Cell::Other(what) => what,
            };
            Err(Error::InvalidRow {
                row: i,
                feature: None,
                reason: format!("is {what}, not an object {{feature: number}} or an array in feature order"),
            })
        }
    }

    /// Runs one `predict` call on at most `max_rows` rows (`x`, concatenated) whose first is
    /// `rows[first]`; returns the output slots.
    fn run(&self, first: usize, x: &[f64]) -> model_wasm::Result<Vec<f64>> {
        let n_rows = x.len() / self.schema.len();
        let buffer = self.memory.buffer();
        js_sys::Float64Array::new_with_byte_offset_and_length(&buffer, self.layout.input_ptr as u32, x.len() as u32)
            .copy_from(x);
        let status = call_i32(&self.exports.predict, Some(n_rows as i32))?;
        match status {
            abi::STATUS_OK => {}
            abi::STATUS_NON_FINITE => {
                let row = call_i32(&self.exports.error_row, None)? as usize;
                let feature = call_i32(&self.exports.error_feature, None)? as usize;
                return Err(Error::InvalidRow {
                    row: first + row,
                    feature: self.schema.names().get(feature).cloned(),
                    reason: "is not a finite number (refused by the module)".into(),
                });
            }
            other => {
                let message = self.last_error().unwrap_or_default();
                return Err(module_error(format!("predict returned status {other}: {message}")));
            }
        }
        let len = n_rows * self.layout.output_stride as usize;
        Ok(
            js_sys::Float64Array::new_with_byte_offset_and_length(&buffer, self.layout.output_ptr as u32, len as u32)
                .to_vec(),
        )
    }

    /// The module's message for its last non-zero status.
    fn last_error(&self) -> model_wasm::Result<String> {
        let ptr = call_i32(&self.exports.last_error_ptr, None)?;
        let len = call_i32(&self.exports.last_error_len, None)?;
        let bytes = self
            .memory
            .buffer()
            .unchecked_into::<js_sys::ArrayBuffer>()
            .byte_length();
        if ptr < 0 || len < 0 || ptr as u64 + len as u64 > bytes as u64 {
            return Err(module_error(format!(
                "its error message {ptr}+{len} lies outside memory"
            )));
        }
        let text = Uint8Array::new_with_byte_offset_and_length(&self.memory.buffer(), ptr as u32, len as u32).to_vec();
        Ok(String::from_utf8_lossy(&text).into_owned())
    }

    /// `{label, probabilities}` or `{value}` from one row's output slots.
    fn result(&self, out: &[f64]) -> model_wasm::Result<JsValue> {
        let o = Object::new();
        let [label_key, probabilities_key, value_key] = &self.js_keys;
        let classes = &self.js_classes;
        if classes.is_empty() {
            set(&o, value_key, &out[0].into());
        } else {
            let index = out[0];
            let label = (index.fract() == 0.0 && index >= 0.0)
                .then_some(index as usize)
                .and_then(|k| classes.get(k))
                .ok_or_else(|| {
                    module_error(format!(
                        "it returned label index {} for {} classes",
                        js_string(&index.into()),
                        classes.len()
                    ))
                })?;
            set(&o, label_key, label);
            let probabilities = Object::new();
            for (class, p) in classes.iter().zip(&out[1..]) {
                set(&probabilities, class, &(*p).into());
            }
            set(&o, probabilities_key, &probabilities);
        }
        Ok(o.into())
    }
}

/// The key `loadModel` was given (the object, or its JSON text), checked: `ed25519`, 32 bytes
/// of hex, a key id that matches them.
fn trusted_key(value: &JsValue) -> Result<PublicKey, JsError> {
    let object = match value.as_string() {
        Some(text) => js_sys::JSON::parse(&text).unwrap_or(JsValue::UNDEFINED),
        None => value.clone(),
    };
    let member = |name: &str| Reflect::get(&object, &name.into()).ok().and_then(|v| v.as_string());
    let (Some(algorithm), Some(key_id), Some(public_key)) =
        (member("algorithm"), member("key_id"), member("public_key"))
    else {
        return Err(JsError::new(
            "loadModel(baseUrl, signingKey) needs the control plane's signing key, {algorithm, key_id, public_key} \
             as GET /api/v1/signing-key returns it (pinned on first use), to verify the manifest",
        ));
    };
    let key = PublicKey {
        algorithm,
        key_id,
        public_key,
    };
    key.key_bytes()
        .map_err(|e| JsError::new(&format!("the signing key is refused: {e}")))?;
    Ok(key)
}

/// The manifest, read only once its signature verified against `key`: every rule but the
/// arithmetic is model-wasm's ([`manifest_signed_message`], as on an edge), the ed25519 check is
/// the browser's WebCrypto. A refusal reads as the edge's (`manifest signature refused: ...`).
async fn verified_manifest(bytes: &[u8], key: &PublicKey) -> Result<ManifestView, String> {
    let refused = |e: SignatureError| format!("manifest signature refused: {e}");
    let signed = manifest_signed_message(bytes, key).map_err(refused)?;
    let subtle = Reflect::get(&js_sys::global(), &"crypto".into())
        .and_then(|crypto| Reflect::get(&crypto, &"subtle".into()))
        .ok()
        .filter(JsValue::is_object)
        .ok_or(
            "manifest signature cannot be checked: this page is not a secure context (https, or http on \
             localhost), so the browser offers no WebCrypto (crypto.subtle); refusing the model",
        )?
        .unchecked_into::<Subtle>();
    let unavailable = |e: JsValue| {
        format!(
            "manifest signature cannot be checked: WebCrypto Ed25519: {}",
            js_message(&e)
        )
    };
    let public_key = Uint8Array::from(&signed.public_key[..]);
    let usages = Array::of1(&"verify".into());
    let key = subtle
        .import_key("raw", &public_key, "Ed25519", false, &usages)
        .map_err(unavailable)?;
    let key = JsFuture::from(key)
        .await
        .map_err(|e| refused(SignatureError::BadKey(js_message(&e))))?;
    let signature = Uint8Array::from(&signed.signature[..]);
    let message = Uint8Array::from(&signed.message[..]);
    let verified = subtle
        .verify("Ed25519", &key, &signature, &message)
        .map_err(unavailable)?;
    if JsFuture::from(verified).await.map_err(unavailable)?.as_bool() != Some(true) {
        return Err(refused(SignatureError::Mismatch));
    }
    ManifestView::from_json(bytes).map_err(|e| e.to_string())
}

/// The bytes at `url`, or an error naming the URL and the HTTP status.
async fn fetch_bytes(url: &str) -> Result<Vec<u8>, JsError> {
    let response = JsFuture::from(global_fetch(url))
        .await
        .map_err(|e| JsError::new(&format!("cannot fetch {url}: {}", js_message(&e))))?;
    let response: web_sys::Response = response
        .dyn_into()
        .map_err(|_| JsError::new(&format!("cannot fetch {url}: not a Response")))?;
    if !response.ok() {
        return Err(JsError::new(&format!(
            "cannot fetch {url}: HTTP {} {}",
            response.status(),
            response.status_text()
        )));
    }
    let body = response
        .array_buffer()
        .map_err(|e| JsError::new(&format!("cannot read {url}: {}", js_message(&e))))?;
    let body = JsFuture::from(body)
        .await
        .map_err(|e| JsError::new(&format!("cannot read {url}: {}", js_message(&e))))?;
    Ok(Uint8Array::new(&body).to_vec())
}

/// `WebAssembly.instantiate(bytes, {})`: the module gets no imports.
async fn instantiate(bytes: &[u8]) -> Result<WebAssembly::Instance, JsError> {
    let result = JsFuture::from(WebAssembly::instantiate_buffer(bytes, &Object::new()))
        .await
        .map_err(|e| JsError::new(&module_error(format!("cannot instantiate it: {}", js_message(&e))).to_string()))?;
    Reflect::get(&result, &"instance".into())
        .ok()
        .and_then(|i| i.dyn_into::<WebAssembly::Instance>().ok())
        .ok_or_else(|| JsError::new("WebAssembly.instantiate gave no instance"))
}

fn module_error(message: String) -> Error {
    Error::InvalidModule(format!("{MODULE_FILE}: {message}"))
}

fn function(exports: &Object, name: &str) -> model_wasm::Result<Function> {
    Reflect::get(exports, &name.into())
        .ok()
        .and_then(|f| f.dyn_into::<Function>().ok())
        .ok_or_else(|| module_error(format!("it does not export the function '{name}'")))
}

/// Calls an export that returns an `i32`; a trap becomes an error.
fn call_i32(f: &Function, arg: Option<i32>) -> model_wasm::Result<i32> {
    let result = match arg {
        Some(a) => f.call1(&JsValue::UNDEFINED, &a.into()),
        None => f.call0(&JsValue::UNDEFINED),
    };
    let value =
        result.map_err(|e| module_error(format!("'{}' trapped: {}", String::from(f.name()), js_message(&e))))?;
    value
        .as_f64()
        .map(|v| v as i32)
        .ok_or_else(|| module_error(format!("'{}' did not return a number", String::from(f.name()))))
}

/// What the schema check sees of a JavaScript value: `null` and `undefined` are missing values
/// (taken, as NaN is, by the features the model routes).
fn cell(v: &JsValue) -> Cell {
    if let Some(x) = v.as_f64() {
        Cell::Number(x)
    } else if v.is_undefined() {
        Cell::Null("undefined")
    } else if v.is_null() {
        Cell::Null("null")
    } else if let Some(s) = v.as_string() {
        Cell::Other(describe_string(&s))
    } else if let Some(b) = v.as_bool() {
        Cell::Other(format!("a boolean ({b})"))
    } else if v.is_bigint() {
        Cell::Other("a BigInt".into())
    } else if Array::is_array(v) {
        Cell::Other("an array".into())
    } else {
        Cell::Other(format!("of type {}", v.js_typeof().as_string().unwrap_or_default()))
    }
}

/// The message of a thrown JavaScript value.
fn js_message(e: &JsValue) -> String {
    e.dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| e.as_string())
        .unwrap_or_else(|| js_string(e))
}

fn set(o: &Object, key: &JsValue, value: &JsValue) {
    // Setting a data property on a plain object cannot throw.
    let _ = Reflect::set(o, key, value);
}

fn strings(items: &[String]) -> Array {
    items.iter().map(|s| JsValue::from(s.as_str())).collect()
}

/// An object from `(key, value)` pairs.
fn object<const N: usize>(members: [(&str, JsValue); N]) -> JsValue {
    let o = Object::new();
    for (key, value) in members {
        set(&o, &key.into(), &value);
    }
    o.into()
}

fn numbers<T: Copy + Into<f64>>(items: &[T]) -> JsValue {
    items
        .iter()
        .map(|v| JsValue::from((*v).into()))
        .collect::<Array>()
        .into()
}

fn counts(items: &[u64]) -> JsValue {
    items.iter().map(|c| JsValue::from(*c as f64)).collect::<Array>().into()
}

/// [`DriftSnapshot`](model_wasm::telemetry::DriftSnapshot) as the object its serde form is
/// (the SDK's tests compare the two): `{threshold, drifted_ratio, features: [...]}`.
fn drift_js(d: &model_wasm::telemetry::DriftSnapshot) -> JsValue {
    let features: Array = d
        .features
        .iter()
        .map(|f| {
            let o = object([
                ("name", f.name.as_str().into()),
                ("counts", counts(&f.counts)),
                ("missing", (f.missing as f64).into()),
                ("observed", (f.observed as f64).into()),
                ("psi", f.psi.into()),
                ("drifted", f.drifted.into()),
            ]);
            if let Some(ks) = f.ks {
                set(o.unchecked_ref(), &"ks".into(), &ks.into());
            }
            o
        })
        .collect();
    object([
        ("threshold", d.threshold.into()),
        ("drifted_ratio", d.drifted_ratio.into()),
        ("features", features.into()),
    ])
}

/// [`TelemetryReport`](model_wasm::telemetry::TelemetryReport) as the object its serde form is.
fn report_js(r: &model_wasm::telemetry::TelemetryReport) -> JsValue {
    let (p, l) = (&r.predictions, &r.latency_seconds);
    object([
        ("model", r.model.as_str().into()),
        ("version", (r.version as f64).into()),
        ("runtime", r.runtime.as_str().into()),
        (
            "predictions",
            object([
                ("ok", (p.ok as f64).into()),
                ("error", (p.error as f64).into()),
                ("rows", (p.rows as f64).into()),
            ]),
        ),
        (
            "latency_seconds",
            object([
                ("le", numbers(&l.le)),
                ("counts", counts(&l.counts)),
                ("sum", l.sum.into()),
                ("count", (l.count as f64).into()),
            ]),
        ),
        ("drift", drift_js(&r.drift)),
    ])
}

#[cfg(all(test, target_arch = "wasm32"))]
mod tests;
