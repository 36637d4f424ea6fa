//! The pure core of Wasmline: no I/O, no async runtime, builds for `wasm32-unknown-unknown`.
//!
//! Today it holds the *reference profile*: what the training data looked like, per feature, in the
//! form the drift monitor needs (bin edges and proportions for numeric features, category
//! frequencies for categorical ones), and the population stability index (PSI) that compares a
//! window of live values against it. The control plane writes the profile at training time; edges
//! and browsers read it from the model manifest and score their recent traffic with the same code.
//!
//! ```
//! use model_wasm::{FeatureReference, DriftWindow};
//!
//! let reference = FeatureReference::numeric_from_values("alcohol", &[9.4, 9.8, 10.0, 11.2, 12.8], 4).unwrap();
//! let mut window = DriftWindow::new(&reference);
//! for v in [9.5, 9.9, 10.1, 11.0, 12.5] {
//!     window.observe_number(v);
//! }
//! assert!(window.psi() < 0.2, "the same distribution does not drift");
//! ```

mod error;
mod profile;

pub use error::{Error, Result};
pub use profile::{DriftWindow, FeatureReference, PSI_DRIFT_THRESHOLD, ReferenceProfile, psi};
