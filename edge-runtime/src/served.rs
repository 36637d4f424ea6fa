//! A model ready to serve: its manifest and its module, checked against each other and
//! smoke-tested before anything routes a request to it.
//!
//! [`ServedModel::load`] is the one gate a version passes on its way in, whether it comes from
//! the control plane, the edge's cache or a local folder, in this order (cheapest and most
//! decisive first): module size cap (compile time is otherwise unbounded), manifest parse,
//! ed25519 signature against the trusted key, sha256 and size of `model.wasm` against the
//! manifest, compile and ABI check in wasmtime, the module's shape against the manifest
//! (feature count, task, classes), and a prediction on the manifest's `sample_rows` under the
//! sandbox's deadline and memory limit. A version that fails any step is refused with a
//! [`LoadError`] naming the step, and of a [`LoadFailure`] kind: most failures are properties
//! of the version's bytes ([`LoadFailure::Permanent`]: refuse it for good), but a load can also
//! fail because the host is busy (no free instance) or the machine is loaded (a call past its
//! deadline), which says nothing of the version ([`LoadFailure::Transient`]: try again later).

use model_wasm::manifest::{ManifestView, sha256_hex};
use model_wasm::signature::{PublicKey, SignatureError, verify_manifest};

use crate::{HostError, ModelModule, ModuleLimits, Runtime, Task};

/// The artifact file the edge runs.
pub const MODULE_FILE: &str = "model.wasm";
/// The manifest file.
pub const MANIFEST_FILE: &str = "manifest.json";
/// Default cap on a module's size, checked before compiling.
pub const DEFAULT_MAX_MODULE_BYTES: usize = 16 << 20;

/// How a version is checked on its way in.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// The sandbox every call runs in.
    pub limits: ModuleLimits,
    /// Larger modules are refused before compiling.
    pub max_module_bytes: usize,
    /// The key manifests must be signed with; `None` skips the signature check (a local folder
    /// the operator vouches for).
    pub trusted_key: Option<PublicKey>,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            limits: ModuleLimits::default(),
            max_module_bytes: DEFAULT_MAX_MODULE_BYTES,
            trusted_key: None,
        }
    }
}

/// Why a version was refused. Every variant means "keep serving what you had"; [`kind`]
/// (LoadError::kind) says whether to refuse it for good or try again later.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    #[error("the module is {size} bytes, the limit is {limit}")]
    TooLarge { size: usize, limit: usize },
    #[error("invalid manifest: {0}")]
    Manifest(String),
    #[error("manifest signature refused: {0}")]
    Signature(#[from] SignatureError),
    #[error("{0}")]
    Artifact(String),
    #[error("module refused: {0}")]
    Module(HostError),
    #[error("the module does not match its manifest: {0}")]
    Mismatch(String),
    #[error("the smoke prediction on the manifest's sample rows failed: {0}")]
    Smoke(HostError),
}

/// Whether a failed load may succeed when tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadFailure {
    /// The host was busy or the machine loaded: the same bytes may load a moment later.
    Transient,
    /// The bytes are at fault (signature, digest, size, manifest, ABI, shape, a smoke prediction
    /// that traps or is refused): they will fail the same way every time.
    Permanent,
}

impl LoadFailure {
    /// The `kind` label of `wasmline_edge_load_failures_total`: `transient` or `permanent`.
    pub fn label(self) -> &'static str {
        match self {
            LoadFailure::Transient => "transient",
            LoadFailure::Permanent => "permanent",
        }
    }
}

impl LoadError {
    /// [`LoadFailure::Transient`] when compiling, instantiating or the smoke prediction failed
    /// for want of a free instance ([`HostError::Busy`]) or ran past its deadline
    /// ([`HostError::Timeout`]: a loaded machine, or a module that loops, which is then tried
    /// again after each backoff); [`LoadFailure::Permanent`] otherwise.
    pub fn kind(&self) -> LoadFailure {
        match self {
            LoadError::Module(error) | LoadError::Smoke(error) if error.is_transient() => LoadFailure::Transient,
            _ => LoadFailure::Permanent,
        }
    }
}

/// A version that passed every check of [`ServedModel::load`]. Requests hold it in an `Arc`,
/// so a swap never cuts a request short: it finishes on the version it started with.
#[derive(Debug)]
pub struct ServedModel {
    manifest: ManifestView,
    manifest_bytes: Vec<u8>,
    module: ModelModule,
    sha256: String,
}

impl ServedModel {
    /// Checks and loads one version (see the module docs for the order of the checks).
    pub fn load(
        runtime: &Runtime,
        manifest_bytes: &[u8],
        wasm: &[u8],
        options: &LoadOptions,
    ) -> Result<ServedModel, LoadError> {
        if wasm.len() > options.max_module_bytes {
            return Err(LoadError::TooLarge {
                size: wasm.len(),
                limit: options.max_module_bytes,
            });
        }
        let manifest = ManifestView::from_json(manifest_bytes).map_err(|e| LoadError::Manifest(e.to_string()))?;
        if let Some(key) = &options.trusted_key {
            verify_manifest(manifest_bytes, key)?;
        }
        manifest
            .verify_artifact(MODULE_FILE, wasm)
            .map_err(|e| LoadError::Artifact(e.to_string()))?;
        let module = ModelModule::load(runtime, wasm, options.limits.clone()).map_err(LoadError::Module)?;
        check_shape(&manifest, &module)?;
        if !manifest.sample_rows.is_empty() {
            let n = module.n_features();
            if let Some(row) = manifest.sample_rows.iter().find(|row| row.len() != n) {
                return Err(LoadError::Mismatch(format!(
                    "a sample row has {} values, the model takes {n} features",
                    row.len()
                )));
            }
            let flat: Vec<f64> = manifest.sample_rows.concat();
            let mut out = Vec::new();
            module.predict_flat(&flat, &mut out).map_err(LoadError::Smoke)?;
        }
        Ok(ServedModel {
            sha256: sha256_hex(wasm),
            manifest,
            manifest_bytes: manifest_bytes.to_vec(),
            module,
        })
    }

    pub fn name(&self) -> &str {
        &self.manifest.name
    }

    pub fn version(&self) -> u64 {
        self.manifest.version
    }

    pub fn manifest(&self) -> &ManifestView {
        &self.manifest
    }

    /// The manifest file as it was loaded (signature included).
    pub fn manifest_bytes(&self) -> &[u8] {
        &self.manifest_bytes
    }

    pub fn module(&self) -> &ModelModule {
        &self.module
    }

    /// The module's sha256, lowercase hex.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    pub fn task(&self) -> Task {
        self.module.task()
    }
}

/// The module must take the manifest's features and predict its classes (or one value).
fn check_shape(manifest: &ManifestView, module: &ModelModule) -> Result<(), LoadError> {
    let features = manifest.features.len();
    if module.n_features() != features {
        return Err(LoadError::Mismatch(format!(
            "the module takes {} features, the manifest lists {features}",
            module.n_features()
        )));
    }
    let classes = manifest.classes().len();
    match module.task() {
        Task::Classification if classes != module.n_outputs() => Err(LoadError::Mismatch(format!(
            "the module predicts {} classes, the manifest lists {classes}",
            module.n_outputs()
        ))),
        Task::Regression if classes != 0 => Err(LoadError::Mismatch(format!(
            "the module is a regressor, the manifest lists {classes} classes"
        ))),
        _ => Ok(()),
    }
}
