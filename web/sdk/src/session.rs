//! The SDK's Rust side, independent of the ABI that carries it: a [`Session`] is one model as a
//! page loads it, from its manifest's bytes to the checked rows and telemetry of each `predict`.
//! Every rule is model-wasm's, as an edge applies it; this module only sequences them and lays
//! their results out for JavaScript ([`Tape`]).

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use model_wasm::Error;
use model_wasm::abi::{self, Layout, export};
use model_wasm::json;
use model_wasm::manifest::ManifestView;
use model_wasm::schema::{Cell, InputSchema};
use model_wasm::signature::{PublicKey, SignatureError, SignedMessage, manifest_signed_message};
use model_wasm::telemetry::{DriftSnapshot, Telemetry, TelemetryReport};

/// The module's file name in a model directory (beside `manifest.json`), as messages name it.
pub const MODULE_FILE: &str = "model.wasm";

/// The `runtime` label of a browser's telemetry.
pub const RUNTIME: &str = "browser";

/// The key `loadModel` was given, checked: `ed25519`, 32 bytes of hex, a key id that matches
/// them.
pub fn trusted_key(algorithm: &str, key_id: &str, public_key: &str) -> Result<PublicKey, String> {
    let key = PublicKey {
        algorithm: algorithm.into(),
        key_id: key_id.into(),
        public_key: public_key.into(),
    };
    key.key_bytes()
        .map_err(|e| format!("the signing key is refused: {e}"))?;
    Ok(key)
}

/// Every rule of the manifest's signature but the ed25519 arithmetic (the browser's WebCrypto
/// does that): a refusal reads as an edge's (`manifest signature refused: ...`).
pub fn signed_message(manifest: &[u8], key: &PublicKey) -> Result<SignedMessage, String> {
    manifest_signed_message(manifest, key).map_err(signature_refused)
}

/// `manifest signature refused: {why}`, as an edge words it.
pub fn signature_refused(why: SignatureError) -> String {
    format!("manifest signature refused: {why}")
}

/// What JavaScript needs of the module ABI, as JSON: `{memory, layout: [the queries of a
/// `Layout`, in its fields' order], calls: [predict, error_row, error_feature, last_error_ptr,
/// last_error_len], ok, non_finite}` (the last two: `predict`'s statuses).
pub fn abi_names() -> String {
    let list = |names: &[&str]| {
        let mut list = String::from("[");
        for (i, name) in names.iter().enumerate() {
            if i > 0 {
                list.push(',');
            }
            list.push_str(&json::quoted(name));
        }
        list + "]"
    };
    let (layout, calls) = abi::FUNCTION_EXPORTS.split_at(abi::LAYOUT_QUERIES);
    format!(
        "{{\"memory\":{},\"layout\":{},\"calls\":{},\"ok\":{},\"non_finite\":{}}}",
        json::quoted(export::MEMORY),
        list(layout),
        list(calls),
        abi::STATUS_OK,
        abi::STATUS_NON_FINITE,
    )
}

/// `invalid model module: model.wasm: {message}`, as the SDK names a module that breaks the ABI.
pub fn module_error(message: &str) -> String {
    Error::InvalidModule(format!("{MODULE_FILE}: {message}")).to_string()
}

/// `rows[{row}]: {reason}`, or `rows[{row}]: feature '{name}' {reason}`.
pub fn row_error(row: usize, feature: Option<String>, reason: &str) -> String {
    Error::InvalidRow {
        row,
        feature,
        reason: reason.into(),
    }
    .to_string()
}

/// One model: its manifest from load on, its schema and telemetry once the module passed.
#[derive(Debug)]
pub struct Session {
    manifest: ManifestView,
    ready: Option<Ready>,
    /// The cells of the row being checked (JavaScript pushes them one by one), and its keys.
    cells: Vec<Cell>,
    keys: Vec<String>,
    /// The checked rows of the current `predict`, concatenated in feature order.
    rows: Vec<f64>,
}

#[derive(Debug)]
struct Ready {
    schema: InputSchema,
    telemetry: Telemetry,
}

impl Session {
    /// A manifest whose signature verified: parsed and checked as every runtime does.
    pub fn open(manifest: &[u8]) -> Result<Session, String> {
        Ok(Session {
            manifest: ManifestView::from_json(manifest).map_err(|e| e.to_string())?,
            ready: None,
            cells: Vec::new(),
            keys: Vec::new(),
            rows: Vec::new(),
        })
    }

    /// Checks the module's bytes against the manifest's size and sha256.
    pub fn verify_module(&self, bytes: &[u8]) -> Result<(), String> {
        self.manifest
            .verify_artifact(MODULE_FILE, bytes)
            .map_err(|e| e.to_string())
    }

    /// The instantiated module's layout, checked against the ABI and the manifest; the session
    /// then predicts.
    pub fn start(&mut self, layout: Layout) -> Result<(), String> {
        let manifest = &self.manifest;
        layout
            .check(manifest.features.len(), manifest.classes().len())
            .map_err(|e| e.to_string())?;
        self.ready = Some(Ready {
            schema: InputSchema::of_manifest(manifest).map_err(|e| e.to_string())?,
            telemetry: Telemetry::new(manifest, RUNTIME),
        });
        Ok(())
    }

    fn ready(&self) -> &Ready {
        self.ready
            .as_ref()
            .expect("JavaScript starts a session before it predicts")
    }

    fn ready_mut(&mut self) -> &mut Ready {
        self.ready
            .as_mut()
            .expect("JavaScript starts a session before it predicts")
    }

    /// The schema (the model's features, which take missing values).
    pub fn schema(&self) -> &InputSchema {
        &self.ready().schema
    }

    /// Starts the cells of a new row.
    pub fn clear_row(&mut self) {
        self.cells.clear();
        self.keys.clear();
    }

    pub fn push_cell(&mut self, cell: Cell) {
        self.cells.push(cell);
    }

    pub fn push_key(&mut self, key: &str) {
        self.keys.push(key.into());
    }

    /// Checks row `row` from the pushed cells: for a named row, one cell per feature in model
    /// order ([`Cell::Missing`] for a feature the row lacks) and every key it carries; for a
    /// positional row, its values. Returns the feature vector.
    pub fn check_row(&self, row: usize, named: bool) -> Result<Vec<f64>, String> {
        let schema = self.schema();
        let mut out = alloc::vec![0.0; schema.len()];
        let checked = if named {
            let cell = |name: &str| schema.position(name).map_or(Cell::Missing, |j| self.cells[j].clone());
            schema.named_row(row, &self.keys, cell, &mut out)
        } else {
            schema.positional_row(row, &self.cells, &mut out)
        };
        checked.map_err(|e| e.to_string())?;
        Ok(out)
    }

    /// The buffer JavaScript fills with a `predict`'s rows (`n_rows` feature vectors).
    pub fn rows_buffer(&mut self, n_rows: usize) -> &mut [f64] {
        let n = self.schema().len();
        self.rows.clear();
        self.rows.resize(n_rows * n, 0.0);
        &mut self.rows
    }

    /// A `predict` that succeeded on the rows in [`rows_buffer`](Self::rows_buffer).
    pub fn record_ok(&mut self, seconds: f64) {
        let rows = core::mem::take(&mut self.rows);
        self.ready_mut().telemetry.record_ok(&rows, seconds);
        self.rows = rows;
    }

    pub fn record_error(&mut self) {
        self.ready_mut().telemetry.record_error();
    }

    pub fn drift(&self) -> DriftSnapshot {
        self.ready().telemetry.drift()
    }

    pub fn report(&self) -> TelemetryReport {
        self.ready().telemetry.report()
    }

    pub fn reset(&mut self) {
        self.ready_mut().telemetry.reset();
    }
}

/// Numbers and strings in the order JavaScript reads them back (`wasmline_sdk.js`, `Tape`): a
/// string is its UTF-8 length on the number tape and its bytes on the text tape, a list its
/// length and then its items. Counts up to 2^53 are exact as `f64`.
#[derive(Debug, Default)]
pub struct Tape {
    pub numbers: Vec<f64>,
    pub text: Vec<u8>,
}

impl Tape {
    pub fn clear(&mut self) {
        self.numbers.clear();
        self.text.clear();
    }

    pub fn number(&mut self, x: f64) {
        self.numbers.push(x);
    }

    pub fn count(&mut self, n: u64) {
        self.numbers.push(n as f64);
    }

    pub fn flag(&mut self, b: bool) {
        self.numbers.push(if b { 1.0 } else { 0.0 });
    }

    pub fn string(&mut self, s: &str) {
        self.count(s.len() as u64);
        self.text.extend_from_slice(s.as_bytes());
    }

    pub fn numbers(&mut self, items: &[f64]) {
        self.count(items.len() as u64);
        self.numbers.extend_from_slice(items);
    }

    pub fn counts(&mut self, items: &[u64]) {
        self.count(items.len() as u64);
        self.numbers.extend(items.iter().map(|&c| c as f64));
    }

    /// `{threshold, drifted_ratio, features: [{name, counts, missing, observed, psi, drifted, ks?}]}`.
    pub fn drift(&mut self, d: &DriftSnapshot) {
        self.number(d.threshold);
        self.number(d.drifted_ratio);
        self.count(d.features.len() as u64);
        for f in &d.features {
            self.string(&f.name);
            self.counts(&f.counts);
            self.count(f.missing);
            self.count(f.observed);
            self.number(f.psi);
            self.flag(f.drifted);
            self.flag(f.ks.is_some());
            self.number(f.ks.unwrap_or(0.0));
        }
    }

    /// `{model, version, runtime, predictions: {ok, error, rows}, latency_seconds: {le, counts,
    /// sum, count}, drift}`.
    pub fn report(&mut self, r: &TelemetryReport) {
        self.string(&r.model);
        self.count(r.version);
        self.string(&r.runtime);
        self.count(r.predictions.ok);
        self.count(r.predictions.error);
        self.count(r.predictions.rows);
        let l = &r.latency_seconds;
        self.numbers(&l.le);
        self.counts(&l.counts);
        self.number(l.sum);
        self.count(l.count);
        self.drift(&r.drift);
    }
}
