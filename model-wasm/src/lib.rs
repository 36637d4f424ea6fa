//! The pure core of Wasmline: no I/O, no async runtime, builds for `wasm32-unknown-unknown`.
//!
//! It holds the model IR ([`ModelIr`]) with its reference evaluator and checks, and the *reference profile*: what the training data looked like, per feature, in the
//! form the drift monitor needs (bin edges and proportions for numeric features, category
//! frequencies for categorical ones), and the population stability index (PSI) that compares a
//! window of live values against it. The control plane writes the profile at training time; edges
//! and browsers read it from the model manifest and score their recent traffic with the same code.
//!
//! What every runtime of a compiled model shares lives here too, so edges (natively) and browsers
//! (through the SDK) apply one set of rules: [`abi`] (the generated module's contract),
//! [`manifest`] (the view of `manifest.json` runtimes read, artifact digests), [`schema`] (rows
//! checked by feature name) and [`telemetry`] (counts, latency histogram, drift windows).
//! [`codegen`] compiles a [`ModelIr`] to such a module. The browser SDK is a crate of its own,
//! `wasmline-sdk` (`web/sdk`, compiled to a `no_std` wasm32 module under `wasmline_sdk.js`): these
//! modules, `loadModel(baseUrl, signingKey)` and a `Model` with `predict`, `driftSnapshot` and
//! `telemetry`.
//!
//! Feature `std` (on by default) adds the IR, its evaluator, [`codegen`], the parity cases,
//! signing ([`signature::canonical_json`]) and ed25519 verification. Without it the crate is
//! `no_std` + `alloc` and holds the runtime modules above, all a browser needs: the SDK then links
//! no std, and so no panic machinery that formats floats. The float functions those modules use
//! come from `libm` in both builds, so a PSI is the same bits on an edge and in a browser.
//!
//! ```
//! use model_wasm::{DriftWindow, FeatureReference, PSI_DRIFT_THRESHOLD};
//!
//! // Training data: alcohol between 8 and 15 %.
//! let train: Vec<f64> = (0..1000).map(|i| 8.0 + 7.0 * i as f64 / 1000.0).collect();
//! let reference = FeatureReference::numeric_from_values("alcohol", &train, 10).unwrap();
//!
//! let mut same = DriftWindow::new(&reference);
//! (0..200).for_each(|i| same.observe_number(8.0 + 7.0 * i as f64 / 200.0));
//! assert!(same.psi() < PSI_DRIFT_THRESHOLD, "the same distribution does not drift");
//!
//! let mut stronger = DriftWindow::new(&reference);
//! (0..200).for_each(|i| stronger.observe_number(12.0 + 3.0 * i as f64 / 200.0));
//! assert!(stronger.psi() >= PSI_DRIFT_THRESHOLD, "stronger wines drift");
//! ```

#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

pub mod abi;
#[cfg(feature = "std")]
pub mod codegen;
mod decimal;
mod error;
#[cfg(feature = "std")]
mod eval;
#[cfg(feature = "std")]
pub mod ir;
pub mod json;
pub mod manifest;
#[cfg(feature = "std")]
pub mod parity;
mod profile;
pub mod schema;
mod sha256;
pub mod signature;
pub mod telemetry;

pub use error::{Error, Result};
#[cfg(feature = "std")]
pub use eval::{sigmoid, softmax};
#[cfg(feature = "std")]
pub use ir::{
    Aggregate, Body, IR_VERSION, Link, MAX_CLASSES, ModelIr, Node, Output, Outputs, Prediction, Preprocess, Tree,
};
pub use profile::{DriftWindow, FeatureReference, PSI_DRIFT_THRESHOLD, ReferenceProfile, ks_statistic, psi};
