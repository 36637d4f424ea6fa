//! Hand-written modules that follow `docs/MODULE_ABI.md`, as WAT, with knobs to break them.
//!
//! Shared with `examples/bench.rs` and the `wasmline-edge` binary's unit tests
//! (`src/edge/testing.rs`) through `#[path]`.

#![allow(dead_code)]

/// A module's shape and body; [`AbiModule::wasm`] assembles it.
#[derive(Debug, Clone)]
pub struct AbiModule {
    pub abi_version: i32,
    pub n_features: i32,
    pub n_outputs: i32,
    pub stride: i32,
    pub max_rows: i32,
    /// Overrides the computed page count.
    pub pages: Option<u32>,
    /// Overrides the computed output offset.
    pub output_ptr: Option<i32>,
    /// WAT run after the finiteness check, with `$n` rows of input; see [`linear`], [`argmax`].
    pub body: String,
    /// Extra module fields placed first (imports must precede definitions).
    pub prelude: String,
    /// Extra module fields placed last.
    pub extra: String,
    /// Exports left out (the function stays, unexported).
    pub skip_exports: Vec<&'static str>,
    /// f64 constants at byte 64 (weights), read with `(call $w (local.get $f))`.
    pub weights: Vec<f64>,
    pub manifest: Option<String>,
}

pub const INPUT_PTR: i32 = 1024;

impl AbiModule {
    fn base(n_features: i32, n_outputs: i32, stride: i32, body: String) -> Self {
        Self {
            abi_version: 1,
            n_features,
            n_outputs,
            stride,
            max_rows: 1024,
            pages: None,
            output_ptr: None,
            body,
            prelude: String::new(),
            extra: String::new(),
            skip_exports: Vec::new(),
            weights: Vec::new(),
            manifest: None,
        }
    }

    pub fn output_ptr(&self) -> i32 {
        self.output_ptr
            .unwrap_or(INPUT_PTR + self.max_rows * self.n_features * 8)
    }

    pub fn wat(&self) -> String {
        let out = self.output_ptr();
        let end = out + self.max_rows * self.stride * 8;
        let pages = self.pages.unwrap_or((end as u32).div_ceil(65536));
        let export = |name: &'static str| {
            if self.skip_exports.contains(&name) {
                String::new()
            } else {
                format!("(export \"{name}\")")
            }
        };
        let weights: String = self
            .weights
            .iter()
            .flat_map(|w| w.to_le_bytes())
            .map(|b| format!("\\{b:02x}"))
            .collect();
        let constant =
            |name: &'static str, value: i32| format!("(func {} (result i32) (i32.const {value}))\n", export(name));
        let Self {
            abi_version,
            n_features: nf,
            n_outputs,
            stride,
            max_rows,
            body,
            prelude,
            extra,
            ..
        } = self;
        format!(
            r#"(module
  {prelude}
  (memory {mem_export} {pages})
  (global $error_row (mut i32) (i32.const 0))
  (global $error_feature (mut i32) (i32.const 0))
  (global $err_ptr (mut i32) (i32.const 0))
  (global $err_len (mut i32) (i32.const 0))
  (data (i32.const 0) "n_rows out of rangenot a finite number")
  (data (i32.const 64) "{weights}")
  {abi}{nfc}{noc}{sc}{mrc}{ipc}{opc}
  (func {er} (result i32) (global.get $error_row))
  (func {ef} (result i32) (global.get $error_feature))
  (func {lp} (result i32) (global.get $err_ptr))
  (func {ll} (result i32) (global.get $err_len))
  (func $in (param $r i32) (param $f i32) (result f64)
    (f64.load (i32.add (i32.const {INPUT_PTR})
      (i32.shl (i32.add (i32.mul (local.get $r) (i32.const {nf})) (local.get $f)) (i32.const 3)))))
  (func $out (param $r i32) (param $k i32) (param $v f64)
    (f64.store (i32.add (i32.const {out})
      (i32.shl (i32.add (i32.mul (local.get $r) (i32.const {stride})) (local.get $k)) (i32.const 3)))
      (local.get $v)))
  (func $w (param $f i32) (result f64)
    (f64.load (i32.add (i32.const 64) (i32.shl (local.get $f) (i32.const 3)))))
  (func {pe} (param $n i32) (result i32)
    (local $r i32) (local $f i32) (local $best i32)
    (local $acc f64) (local $x f64) (local $bestv f64) (local $sum f64)
    (if (i32.or (i32.lt_s (local.get $n) (i32.const 0)) (i32.gt_s (local.get $n) (i32.const {max_rows})))
      (then (global.set $err_ptr (i32.const 0)) (global.set $err_len (i32.const 19))
            (return (i32.const 1))))
    (local.set $r (i32.const 0))
    (block $done (loop $rows
      (br_if $done (i32.ge_s (local.get $r) (local.get $n)))
      (local.set $f (i32.const 0))
      (block $fdone (loop $feats
        (br_if $fdone (i32.ge_s (local.get $f) (i32.const {nf})))
        (local.set $x (call $in (local.get $r) (local.get $f)))
        (if (f64.ne (f64.sub (local.get $x) (local.get $x)) (f64.const 0))
          (then (global.set $error_row (local.get $r)) (global.set $error_feature (local.get $f))
                (global.set $err_ptr (i32.const 19)) (global.set $err_len (i32.const 19))
                (return (i32.const 2))))
        (local.set $f (i32.add (local.get $f) (i32.const 1)))
        (br $feats)))
      (local.set $r (i32.add (local.get $r) (i32.const 1)))
      (br $rows)))
    {body}
    (i32.const 0))
  {extra}
)"#,
            mem_export = export("memory"),
            abi = constant("wasmline_abi_version", *abi_version),
            nfc = constant("n_features", *nf),
            noc = constant("n_outputs", *n_outputs),
            sc = constant("output_stride", *stride),
            mrc = constant("max_rows", *max_rows),
            ipc = constant("input_ptr", INPUT_PTR),
            opc = constant("output_ptr", out),
            er = export("error_row"),
            ef = export("error_feature"),
            lp = export("last_error_ptr"),
            ll = export("last_error_len"),
            pe = export("predict"),
        )
    }

    pub fn wasm(&self) -> Vec<u8> {
        let wat = self.wat();
        let mut bytes = wat::parse_str(&wat).unwrap_or_else(|e| panic!("{e}\n{wat}"));
        if let Some(manifest) = &self.manifest {
            append_custom_section(&mut bytes, "wasmline.manifest", manifest.as_bytes());
        }
        bytes
    }
}

/// `y = intercept + weights . x`: a linear regression over `weights.len()` features.
pub fn linear(weights: &[f64], intercept: f64) -> AbiModule {
    let nf = weights.len();
    let body = format!(
        r#"(local.set $r (i32.const 0))
    (block $done (loop $rows
      (br_if $done (i32.ge_s (local.get $r) (local.get $n)))
      (local.set $acc (f64.const {intercept:?}))
      (local.set $f (i32.const 0))
      (block $fdone (loop $feats
        (br_if $fdone (i32.ge_s (local.get $f) (i32.const {nf})))
        (local.set $acc (f64.add (local.get $acc)
          (f64.mul (call $w (local.get $f)) (call $in (local.get $r) (local.get $f)))))
        (local.set $f (i32.add (local.get $f) (i32.const 1)))
        (br $feats)))
      (call $out (local.get $r) (i32.const 0) (local.get $acc))
      (local.set $r (i32.add (local.get $r) (i32.const 1)))
      (br $rows)))"#
    );
    let mut module = AbiModule::base(nf as i32, 1, 1, body);
    module.weights = weights.to_vec();
    module
}

/// The reference for [`linear`].
pub fn linear_reference(weights: &[f64], intercept: f64, row: &[f64]) -> f64 {
    weights.iter().zip(row).fold(intercept, |acc, (w, x)| acc + w * x)
}

/// A classifier over `classes` features, one per class: the label is the largest feature (ties
/// to the lowest index), the probabilities are the features divided by their sum.
pub fn argmax(classes: i32) -> AbiModule {
    let body = format!(
        r#"(local.set $r (i32.const 0))
    (block $done (loop $rows
      (br_if $done (i32.ge_s (local.get $r) (local.get $n)))
      (local.set $sum (f64.const 0))
      (local.set $best (i32.const 0))
      (local.set $bestv (call $in (local.get $r) (i32.const 0)))
      (local.set $f (i32.const 0))
      (block $fdone (loop $feats
        (br_if $fdone (i32.ge_s (local.get $f) (i32.const {classes})))
        (local.set $x (call $in (local.get $r) (local.get $f)))
        (local.set $sum (f64.add (local.get $sum) (local.get $x)))
        (if (f64.gt (local.get $x) (local.get $bestv))
          (then (local.set $best (local.get $f)) (local.set $bestv (local.get $x))))
        (local.set $f (i32.add (local.get $f) (i32.const 1)))
        (br $feats)))
      (call $out (local.get $r) (i32.const 0) (f64.convert_i32_s (local.get $best)))
      (local.set $f (i32.const 0))
      (block $pdone (loop $probs
        (br_if $pdone (i32.ge_s (local.get $f) (i32.const {classes})))
        (call $out (local.get $r) (i32.add (local.get $f) (i32.const 1))
          (f64.div (call $in (local.get $r) (local.get $f)) (local.get $sum)))
        (local.set $f (i32.add (local.get $f) (i32.const 1)))
        (br $probs)))
      (local.set $r (i32.add (local.get $r) (i32.const 1)))
      (br $rows)))"#
    );
    AbiModule::base(classes, classes, classes + 1, body)
}

/// A regressor over `n_features` whose predict runs `body` (after the finiteness check).
pub fn with_body(n_features: i32, body: &str) -> AbiModule {
    AbiModule::base(n_features, 1, 1, body.to_string())
}

/// Appends a custom section to a binary module.
pub fn append_custom_section(bytes: &mut Vec<u8>, name: &str, data: &[u8]) {
    let mut payload = Vec::new();
    leb128(&mut payload, name.len());
    payload.extend_from_slice(name.as_bytes());
    payload.extend_from_slice(data);
    bytes.push(0);
    leb128(bytes, payload.len());
    bytes.extend_from_slice(&payload);
}

fn leb128(out: &mut Vec<u8>, mut value: usize) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}
