//! ONNX export of the model IR ([`to_onnx`]), its check in tract ([`check_with_tract`]), and the
//! import of ONNX models made elsewhere ([`import_onnx`]; scikit-learn via skl2onnx).
//!
//! Every file has one input, `input`: float32 `[batch, n_features]`, features in the order of
//! the metadata entry `features` (a JSON array). Classifiers output `label` (int64 `[batch]`,
//! the class *index*; the names are the metadata entry `classes`, a JSON array) and
//! `probabilities` (float32 `[batch, n_classes]`); regressors output `value` (float32
//! `[batch, 1]`, target name in the metadata entry `target`). Opset 13 of the default domain,
//! plus `ai.onnx.ml` 3 for tree ensembles; producer `wasmline`. Every IR is written (up to 2^24
//! leaves in the ensembles that index them; [`unfaithful`] says when not).
//!
//! The graphs, per body, are chosen so that tract 0.23.9 and onnxruntime both run them, and
//! agree with [`ModelIr::predict`](model_wasm::ModelIr::predict) up to the rounding of the
//! inputs and outputs to `f32` (labels exactly, ties included):
//! - Scaling and linear models are computed in f64 (`Cast` to double, then `Sub`/`Mul` with
//!   initializers, `MatMul` + `Add`), as the evaluator does, and rounded to f32 only at the
//!   outputs. Standard ops only: tract has no `ai.onnx.ml` Scaler. Sigmoid is written out as
//!   `1 / (1 + exp(-z))` (tract's `Sigmoid` is f32 only) and the probabilities are
//!   `Concat(1 - p, p)`; softmax is `Softmax(axis 1)`. `label` is `ArgMax(keepdims 0,
//!   select_last_index 0)` over the f64 probabilities: ties go to the lowest index, as in the
//!   evaluator.
//! - Voting forests are one `TreeEnsembleClassifier` (`BRANCH_LT`, post-transform `NONE`) in
//!   which every leaf adds 1 to its class, so the scores are vote counts, exact in f32;
//!   `label` is `ArgMax` over the counts (ties to the lowest index) and `probabilities` the
//!   counts divided by the number of trees. The ensemble's own label output is not used:
//!   onnxruntime's two-class path does not take the argmax (it picks the second class whenever
//!   its score is positive).
//! - Averaging forests: tract has no `TreeEnsembleRegressor`, so a `TreeEnsembleClassifier`
//!   with one "class" per tree puts the global index of the leaf each tree reaches in that
//!   tree's column (an exact f32 integer); `Cast` to int64, `Gather` of the leaf values (f64),
//!   `ReduceMean` over the trees in f64, `Cast` to f32. The value is the evaluator's mean
//!   rounded once, whatever the leaf values.
//! - Boosted sums (XGBoost, LightGBM): the same leaf indices and `Gather` of the margins (f64),
//!   then a `MatMul` with a 0/1 matrix [trees, outputs] adds each tree's margin to its output in
//!   f64, `Add` puts the base scores in, and the link follows as for linear models (`Exp` for
//!   the log link; a regressor's sigmoid gives `value`).
//! - Splits. `Node::Split` is `BRANCH_LT` on its `f32` threshold. `Node::SplitLe` (LightGBM's
//!   `x <= t` in f64) is `BRANCH_LEQ` on the largest `f32` at or below `t`: for a float32 input
//!   that is the same test. A category set is a chain of `BRANCH_EQ` nodes, one per category,
//!   whose true branches share the split's left child, reading a derived column that holds the
//!   library's category of the value (XGBoost: `-1` below zero, else `Floor`; LightGBM: C's
//!   truncation, `Ceil` below zero), so `2.5` is category 2 and `-0.5` is LightGBM's 0. A
//!   missing-value rule is `nodes_missing_value_tracks_true` (where the split sends NaN); for
//!   LightGBM's zero type the split reads a column in which `|x| <= 1e-35` is NaN. The derived
//!   columns are blocks after the input's, `Concat`enated once per model.
//! - The file's input is float32, so it answers for each row rounded to `f32`; for LightGBM's
//!   `f64` splits and category casts that can differ from the IR on a value that is not an
//!   `f32`, which is why [`check_with_tract`] holds the file to the evaluator on rounded rows.
//! - Ensembles declare at least three classes (unused ones get no leaf weight, and their
//!   columns are sliced off): with two or fewer, both runtimes switch to a "binary" layout that
//!   rewrites the scores (tract when every leaf weight is on class 0, onnxruntime when only one
//!   class has weights).
//! - Scaling before trees runs in f64 and is rounded to f32 once before the ensemble, which
//!   compares `f32` values with `f32` thresholds, like the evaluator.
//!
//! ```
//! use model_wasm::{Body, IR_VERSION, Link, ModelIr, Output};
//! use wasmline::{check_with_tract, to_onnx};
//!
//! let ir = ModelIr {
//!     ir_version: IR_VERSION,
//!     features: vec!["x".into()],
//!     preprocess: vec![],
//!     body: Body::Linear { weights: vec![2.0], intercepts: vec![1.0], link: Link::Identity },
//!     output: Output::Regression { target: "y".into() },
//! };
//! let onnx = to_onnx(&ir, "double-plus-one").unwrap();
//! let report = check_with_tract(&onnx, &ir, &[vec![0.5], vec![-3.0]]).unwrap();
//! assert!(report.is_ok(), "{report}");
//! ```

mod check;
mod export;
mod import;

pub use check::{ParityReport, check_with_tract};
pub use export::{to_onnx, unfaithful};
pub(crate) use import::MAX_FEATURES;
pub use import::{ImportError, ImportOptions, Imported, import_onnx, import_onnx_with};

/// The input's name.
pub(crate) const INPUT: &str = "input";
/// Classifiers' class index output.
pub(crate) const LABEL: &str = "label";
/// Classifiers' probability output.
pub(crate) const PROBABILITIES: &str = "probabilities";
/// Regressors' output.
pub(crate) const VALUE: &str = "value";

#[derive(Debug, thiserror::Error)]
pub enum OnnxError {
    #[error("invalid model: {0}")]
    InvalidModel(#[source] model_wasm::Error),
    #[error("the model cannot be written as ONNX: {0}")]
    Unsupported(String),
    #[error("row {row}: {source}")]
    InvalidRow {
        row: usize,
        #[source]
        source: model_wasm::Error,
    },
    /// The bytes are not an ONNX model, or not one tract can load.
    #[error("{0}")]
    Load(String),
    #[error("tract failed to run the model: {0}")]
    Run(String),
    /// The model's input or outputs (names, types, shapes) are not those [`to_onnx`] writes for
    /// this IR.
    #[error("the ONNX model does not fit the IR: {0}")]
    Signature(String),
}

#[cfg(test)]
mod tests;
