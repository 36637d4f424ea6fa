//! Wasmline's edge runtime: the wasmtime host that runs generated model modules, and the KServe
//! v2 routes that serve them.
//!
//! A library for two servers: the `wasmline-edge` binary of this package (model sync, offline
//! cache, telemetry; its parts are private to it, in `src/edge/`), and the control plane, which
//! reuses the host and [`kserve::router`] for server-side inference. It knows nothing of the
//! control plane's code; the edge talks to the control plane over HTTP only.
//!
//! The code map. The modules are private and re-exported here, but for [`kserve`]:
//! - `runtime.rs`: [`Runtime`] and [`RuntimeConfig`], one engine per process: a wasmtime engine
//!   for untrusted code (Cranelift, epoch interruption advanced by a 1 ms ticker thread, the
//!   pooling allocator, no WASI, no imports); [`RUNTIME_LABEL`].
//! - `module.rs`: [`ModelModule`] under its [`ModuleLimits`], and the [`Lease`] of an instance;
//!   `pool.rs`: the runtime's instance slots, counted, waited for up to [`QueueLimits`], taken
//!   back from idle instances; `module_check.rs`: the module contract as the host checks it
//!   ([`ABI_VERSION`], [`MANIFEST_SECTION`]); `error.rs`: [`HostError`].
//! - `served.rs`: [`ServedModel::load`], the one gate a version passes (signature, digest,
//!   compile, smoke prediction), with its [`LoadOptions`], and [`LoadError`] with its
//!   [`LoadFailure`] kind (refuse the version for good, or try again later).
//! - [`kserve`]: the Open Inference Protocol over any [`kserve::ModelSet`]: `routes.rs` (the
//!   router and handlers), `tensors.rs` (the request's inputs into rows), `responses.rs` (named
//!   outputs and the `{"error": "..."}` body).
//!
//! The binary, `src/main.rs` (flags, wiring) over `src/edge/`: `models.rs` (the edge's served and
//! previous versions, swapped atomically, with their telemetry), `sync.rs` (following an alias
//! on the control plane), `cache.rs` (the on-disk cache), `client.rs` (the control plane's HTTP
//! calls), `outbox.rs` (telemetry batches buffered on disk until delivered), `metrics.rs`
//! (Prometheus) and `server.rs` (the edge's router).
//!
//! The host:
//! - [`ModelModule::load`] compiles a module and holds it to `docs/MODULE_ABI.md` before it
//!   runs anything: no imports, every export with its type, ABI version 1, buffers inside its
//!   memory, memory within the limit. [`ModelModule::metadata`] is its `wasmline.manifest`
//!   section.
//! - [`ModelModule::predict`] (rows to [`Prediction`]s) and [`ModelModule::predict_flat`] (a
//!   row-major tensor to raw outputs, no per-row allocation) split batches into `max_rows`
//!   chunks and call the module under the [`ModuleLimits`]: an epoch deadline per call and a
//!   memory limit.
//!
//! Instances: each call runs in an instance with its own store, taken from the module's
//! lock-free queue of idle ones (a crossbeam `ArrayQueue` of [`ModuleLimits::idle_instances`]
//! slots: one atomic operation takes an instance, one gives it back) or instantiated from the
//! `InstancePre` when the queue is empty. An instance goes back to the queue after a call that
//! returned predictions or an input error (and is dropped if the queue is full), and is dropped
//! after a trap, a timeout or a limit. Reuse is what makes batch-1 calls cheap: writing a row and
//! calling `predict` costs well under a microsecond, instantiating (even pooled) costs several.
//! Every instance holds one of the runtime's [`RuntimeConfig::max_instances`] slots; an idle
//! instance gives its slot up when another module needs one. When every slot is in a call,
//! [`ModelModule::lease`] waits for an instance (up to [`QueueLimits`]) and the non-waiting calls
//! fail with [`HostError::Busy`]; wasmtime never sees an instantiation its pool cannot hold.
//!
//! Errors are kinds a server maps to responses: [`HostError::Input`] (the caller's row: 400,
//! with the row and feature index), [`HostError::InvalidModule`] (refuse the module, keep the
//! previous one), [`HostError::Timeout`], [`HostError::Trap`], [`HostError::Limits`],
//! [`HostError::Busy`] (no instance free: 503, try again).
//!
//! ```
//! use edge_runtime::{HostError, ModelModule, ModuleLimits, Prediction, Runtime, RuntimeConfig};
//!
//! // y = 2 * x0 + x1, written by hand to the module ABI (a generated module also rejects NaN,
//! // except for the features whose missing values the model routes).
//! let wasm = wat::parse_str(r#"(module
//!   (memory (export "memory") 1)
//!   (func (export "wasmline_abi_version") (result i32) i32.const 1)
//!   (func (export "n_features") (result i32) i32.const 2)
//!   (func (export "n_outputs") (result i32) i32.const 1)
//!   (func (export "output_stride") (result i32) i32.const 1)
//!   (func (export "max_rows") (result i32) i32.const 16)
//!   (func (export "input_ptr") (result i32) i32.const 0)
//!   (func (export "output_ptr") (result i32) i32.const 256)
//!   (func (export "error_row") (result i32) i32.const 0)
//!   (func (export "error_feature") (result i32) i32.const 0)
//!   (func (export "last_error_ptr") (result i32) i32.const 0)
//!   (func (export "last_error_len") (result i32) i32.const 0)
//!   (func (export "predict") (param $n i32) (result i32) (local $r i32)
//!     (loop $rows (if (i32.lt_s (local.get $r) (local.get $n)) (then
//!       (f64.store offset=256 (i32.shl (local.get $r) (i32.const 3))
//!         (f64.add (f64.mul (f64.const 2) (f64.load (i32.shl (local.get $r) (i32.const 4))))
//!                  (f64.load offset=8 (i32.shl (local.get $r) (i32.const 4)))))
//!       (local.set $r (i32.add (local.get $r) (i32.const 1)))
//!       (br $rows))))
//!     i32.const 0))"#)?;
//!
//! let runtime = Runtime::new(RuntimeConfig::default())?;
//! let model = ModelModule::load(&runtime, &wasm, ModuleLimits::default())?;
//! assert_eq!(model.n_features(), 2);
//!
//! // 40 rows: three calls into the module (max_rows is 16).
//! let rows: Vec<[f64; 2]> = (0..40).map(|i| [i as f64, 1.0]).collect();
//! let predictions = model.predict(&rows)?;
//! assert_eq!(predictions[3], Prediction::Value(7.0));
//! assert_eq!(predictions.len(), 40);
//!
//! // The batch fast path: a row-major tensor in, output_stride values per row out.
//! let mut outputs = Vec::new();
//! model.predict_flat(&[1.0, 2.0, 3.0, 4.0], &mut outputs)?;
//! assert_eq!(outputs, [4.0, 10.0]);
//!
//! // A row of the wrong width is the caller's error.
//! let error = model.predict(&[vec![1.0]]).unwrap_err();
//! assert!(matches!(error, HostError::Input { row: 0, feature: None, .. }));
//!
//! // A module importing anything is refused.
//! let importing = wat::parse_str(r#"(module (import "env" "now" (func)))"#)?;
//! let error = ModelModule::load(&runtime, &importing, ModuleLimits::default()).unwrap_err();
//! assert_eq!(error.to_string(), "invalid model module: imports are not allowed: env.now");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod error;
pub mod kserve;
mod module;
mod module_check;
mod pool;
mod runtime;
mod served;

pub use error::{HostError, Result};
pub use model_wasm::{DriftWindow, Prediction, ReferenceProfile};
pub use module::{Lease, ModelModule, ModuleLimits, Task};
pub use module_check::{ABI_VERSION, MANIFEST_SECTION};
pub use pool::QueueLimits;
pub use runtime::{RUNTIME_LABEL, Runtime, RuntimeConfig};
pub use served::{
    DEFAULT_MAX_MODULE_BYTES, LoadError, LoadFailure, LoadOptions, MANIFEST_FILE, MODULE_FILE, ServedModel,
};
