//! Following an alias on the control plane: one task per model long-polls the alias and, when
//! it points at a version other than the served one, downloads the manifest and module, passes
//! them through [`ServedModel::load`] (signature, digest, compile, smoke prediction), stores
//! them in the [`Cache`] and swaps them in.
//!
//! - A refused version is logged, counted (`wasmline_edge_model_refused_total`) and remembered:
//!   the long poll then holds on it (`known=` that version), so it is not fetched again in a
//!   loop, and the old version keeps serving.
//! - A failure to reach the control plane is counted (`wasmline_edge_sync_failures_total`) and
//!   retried after an exponential backoff with jitter (capped), forever: the edge recovers by
//!   itself when the control plane returns, and serves from memory (and after a restart, from
//!   the cache, see [`load_cached`]) meanwhile.
//! - The alias moving back to the previous version swaps it back in without a download.
//!
//! Trust: manifests are checked against a [`Trust`]: a key given by the operator, or the
//! control plane's key pinned in the cache on first contact (trust on first use). A pinned key
//! is never replaced: if the control plane later presents another one, that is logged as an
//! error on every contact, and manifests signed with it are refused.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use model_wasm::signature::PublicKey;
use tokio::sync::watch;

use edge_runtime::{LoadError, LoadOptions, MANIFEST_FILE, MODULE_FILE, Runtime, ServedModel};

use super::cache::{Cache, Served, write_atomic};
use super::client::{ClientError, ControlPlane};
use super::models::EdgeModels;

/// Largest manifest accepted (they carry reference profiles).
pub const MAX_MANIFEST_BYTES: u64 = 8 << 20;

/// The key manifests must be signed with.
#[derive(Debug)]
pub struct Trust {
    key: RwLock<Option<PublicKey>>,
    /// Where a key learnt from the control plane is pinned; `None` for an operator's key.
    pin: Option<PathBuf>,
    compared: AtomicBool,
    fetch: tokio::sync::Mutex<()>,
}

impl Trust {
    /// The operator's key (`--trusted-key`): never learnt, never replaced.
    pub fn fixed(key: PublicKey) -> Trust {
        Trust {
            key: RwLock::new(Some(key)),
            pin: None,
            compared: AtomicBool::new(false),
            fetch: tokio::sync::Mutex::new(()),
        }
    }

    /// Trust on first use: the key pinned in `cache`, or the control plane's on first contact.
    pub fn pinned(cache: &Cache) -> std::io::Result<Trust> {
        let path = cache.trusted_key_path();
        let key = match std::fs::read(&path) {
            Ok(bytes) => {
                let key: PublicKey = serde_json::from_slice(&bytes)
                    .map_err(|e| std::io::Error::other(format!("{} is not a public key: {e}", path.display())))?;
                key.verifying_key()
                    .map_err(|e| std::io::Error::other(format!("{}: {e}", path.display())))?;
                Some(key)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        Ok(Trust {
            key: RwLock::new(key),
            pin: Some(path),
            compared: AtomicBool::new(false),
            fetch: tokio::sync::Mutex::new(()),
        })
    }

    /// The trusted key, if known yet.
    pub fn key(&self) -> Option<PublicKey> {
        self.key.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// The trusted key, learning (and pinning) the control plane's on first use. Once per
    /// process, compares a known key with the control plane's and says so loudly if they differ.
    pub async fn ensure(&self, client: &ControlPlane) -> Result<PublicKey, ClientError> {
        let _guard = self.fetch.lock().await;
        let known = self.key();
        if let Some(known) = &known
            && self.compared.load(Ordering::Relaxed)
        {
            return Ok(known.clone());
        }
        let remote = {
            let client = client.clone();
            blocking(move || client.signing_key()).await
        };
        match (known, remote) {
            (Some(known), Ok(remote)) => {
                self.compared.store(true, Ordering::Relaxed);
                if remote != known {
                    tracing::error!(
                        trusted = %known.key_id,
                        presented = %remote.key_id,
                        pin = ?self.pin,
                        "THE CONTROL PLANE PRESENTS ANOTHER SIGNING KEY than the trusted one; manifests signed with it \
                         are refused (to trust the new key, replace the trusted key file and restart)"
                    );
                }
                Ok(known)
            }
            // The comparison waits for the next contact; the known key keeps working.
            (Some(known), Err(_)) => Ok(known),
            (None, Ok(remote)) => {
                if let Some(pin) = &self.pin {
                    let json = serde_json::to_vec_pretty(&remote).map_err(|e| ClientError::Invalid(e.to_string()))?;
                    write_atomic(pin, &json)
                        .map_err(|e| ClientError::Invalid(format!("cannot pin the key in {}: {e}", pin.display())))?;
                    tracing::info!(key_id = %remote.key_id, pin = %pin.display(), "pinned the control plane's signing key (trust on first use)");
                }
                self.compared.store(true, Ordering::Relaxed);
                *self.key.write().unwrap_or_else(PoisonError::into_inner) = Some(remote.clone());
                Ok(remote)
            }
            (None, Err(e)) => Err(e),
        }
    }
}

/// What a sync task needs.
#[derive(Debug)]
pub struct SyncContext {
    pub client: ControlPlane,
    pub cache: Cache,
    pub models: Arc<EdgeModels>,
    pub runtime: Runtime,
    pub trust: Arc<Trust>,
    /// The sandbox and size limits (the key comes from [`trust`](Self::trust)).
    pub options: LoadOptions,
    /// The alias followed.
    pub alias: String,
    /// How long the control plane may hold a long poll.
    pub poll_wait: Duration,
    /// The longest pause between two attempts after failures.
    pub max_backoff: Duration,
}

/// Why an attempt to install a version failed.
#[derive(Debug, thiserror::Error)]
enum SyncError {
    /// The version itself is bad: do not fetch it again.
    #[error(transparent)]
    Refused(#[from] LoadError),
    /// The control plane could not be reached or answered oddly: try again later.
    #[error(transparent)]
    Transient(#[from] ClientError),
}

/// Runs `f` on a blocking thread.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ClientError> + Send + 'static,
) -> Result<T, ClientError> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(ClientError::Transport(format!("the request task failed: {e}"))))
}

/// Exponential backoff with jitter: about `0.5 s * 2^(failures - 1)`, capped at `max`, each
/// pause drawn from its upper half.
pub fn backoff(failures: u32, max: Duration) -> Duration {
    let base = Duration::from_millis(500).saturating_mul(1 << failures.saturating_sub(1).min(16));
    let delay = base.min(max);
    delay / 2 + delay.mul_f64(fastrand::f64() / 2.0)
}

/// Loads the versions the cache says were served last (previous first, so the current one ends
/// up served), checking them like any download: the edge serves at once, control plane or not.
pub fn load_cached(cache: &Cache, models: &EdgeModels, runtime: &Runtime, options: &LoadOptions, name: &str) {
    let Some(served) = cache.served(name) else {
        return;
    };
    for version in served.previous.into_iter().chain([served.current]) {
        let loaded = cache
            .read_version(name, version)
            .map_err(|e| e.to_string())
            .and_then(|(manifest, wasm)| {
                ServedModel::load(runtime, &manifest, &wasm, options).map_err(|e| e.to_string())
            });
        match loaded {
            Ok(model) if model.name() == name && model.version() == version => {
                tracing::info!(model = name, version, "loaded from the cache");
                models.install(Arc::new(model));
            }
            Ok(_) => tracing::warn!(
                model = name,
                version,
                "the cached manifest names another model; ignored"
            ),
            Err(error) => tracing::warn!(model = name, version, %error, "cannot load the cached version"),
        }
    }
}

/// Follows the alias of `name` until `stop` turns true.
pub async fn follow(ctx: Arc<SyncContext>, name: String, mut stop: watch::Receiver<bool>) {
    let metrics = ctx.models.metrics().clone();
    let mut known = ctx.models.current_version(&name);
    let mut refused: HashSet<u64> = HashSet::new();
    let mut failures: u32 = 0;
    loop {
        if *stop.borrow() {
            return;
        }
        let started = Instant::now();
        let poll = {
            let client = ctx.client.clone();
            let (name, alias, wait) = (name.clone(), ctx.alias.clone(), ctx.poll_wait);
            blocking(move || client.alias(&name, &alias, known, wait))
        };
        let answer = tokio::select! {
            answer = poll => answer,
            _ = stop.changed() => return,
        };
        let pause = match answer {
            Ok(Some(state)) => {
                let target = state.version;
                let current = ctx.models.current_version(&name);
                if Some(target) == current || refused.contains(&target) {
                    failures = 0;
                    known = Some(target);
                    // A control plane that does not hold long polls must not be hammered.
                    Duration::from_secs(1).saturating_sub(started.elapsed())
                } else if let Some(previous) = ctx.models.previous(&name).filter(|p| p.version() == target) {
                    failures = 0;
                    tracing::info!(model = %name, version = target, "the alias moved back: serving the previous version again");
                    ctx.models.install(previous);
                    record_served(&ctx, &name);
                    known = Some(target);
                    Duration::ZERO
                } else {
                    match install(&ctx, &name, target).await {
                        Ok(model) => {
                            failures = 0;
                            tracing::info!(model = %name, version = target, sha256 = model.sha256(), from = ?current, "serving a new version");
                            ctx.models.install(model);
                            record_served(&ctx, &name);
                            known = Some(target);
                            Duration::ZERO
                        }
                        Err(SyncError::Refused(error)) => {
                            failures = 0;
                            metrics.model_refused.with_label_values(&[&name]).inc();
                            tracing::error!(model = %name, version = target, %error, serving = ?current, "refused a version; the served one stays");
                            refused.insert(target);
                            known = Some(target);
                            Duration::ZERO
                        }
                        Err(SyncError::Transient(error)) => {
                            failures += 1;
                            metrics.sync_failures.with_label_values(&[&name]).inc();
                            tracing::warn!(model = %name, version = target, %error, failures, "cannot fetch a version; will retry");
                            backoff(failures, ctx.max_backoff)
                        }
                    }
                }
            }
            Ok(None) => {
                failures += 1;
                metrics.sync_failures.with_label_values(&[&name]).inc();
                tracing::warn!(model = %name, alias = %ctx.alias, "the control plane has no such model or alias; will retry");
                backoff(failures, ctx.max_backoff)
            }
            Err(error) => {
                failures += 1;
                metrics.sync_failures.with_label_values(&[&name]).inc();
                tracing::warn!(model = %name, %error, failures, "cannot reach the control plane; serving what is loaded");
                backoff(failures, ctx.max_backoff)
            }
        };
        if !pause.is_zero() {
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                _ = stop.changed() => return,
            }
        }
    }
}

/// Writes which versions are served to the cache.
fn record_served(ctx: &SyncContext, name: &str) {
    let Some(current) = ctx.models.current_version(name) else {
        return;
    };
    let served = Served {
        current,
        previous: ctx.models.previous(name).map(|p| p.version()),
    };
    if let Err(error) = ctx.cache.set_served(name, served) {
        tracing::warn!(model = name, %error, "cannot record the served version in the cache");
    }
}

/// Downloads, checks, caches one version.
async fn install(ctx: &Arc<SyncContext>, name: &str, version: u64) -> Result<Arc<ServedModel>, SyncError> {
    let key = ctx.trust.ensure(&ctx.client).await?;
    let ctx2 = ctx.clone();
    let name = name.to_owned();
    tokio::task::spawn_blocking(move || {
        let ctx = ctx2;
        let manifest = ctx
            .client
            .artifact(&name, version, MANIFEST_FILE, MAX_MANIFEST_BYTES)
            .map_err(|e| match e {
                ClientError::TooLarge(limit) => SyncError::Refused(LoadError::Manifest(format!(
                    "the manifest is larger than {limit} bytes"
                ))),
                other => SyncError::Transient(other),
            })?;
        let limit = ctx.options.max_module_bytes as u64;
        let wasm = ctx
            .client
            .artifact(&name, version, MODULE_FILE, limit)
            .map_err(|e| match e {
                ClientError::TooLarge(_) => SyncError::Refused(LoadError::TooLarge {
                    size: ctx.options.max_module_bytes + 1,
                    limit: ctx.options.max_module_bytes,
                }),
                other => SyncError::Transient(other),
            })?;
        let options = LoadOptions {
            trusted_key: Some(key),
            ..ctx.options.clone()
        };
        let model = ServedModel::load(&ctx.runtime, &manifest, &wasm, &options)?;
        if model.name() != name || model.version() != version {
            return Err(SyncError::Refused(LoadError::Manifest(format!(
                "the manifest is {}, expected {name}@{version}",
                model.manifest().id()
            ))));
        }
        if let Err(error) = ctx.cache.store_version(&name, version, &manifest, &wasm) {
            tracing::warn!(model = %name, version, %error, "cannot cache the version; serving it anyway");
        }
        Ok(Arc::new(model))
    })
    .await
    .unwrap_or_else(|e| {
        Err(SyncError::Transient(ClientError::Transport(format!(
            "the load task failed: {e}"
        ))))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_the_cap_with_jitter() {
        let cap = Duration::from_secs(30);
        for failures in 1..40 {
            let d = backoff(failures, cap);
            assert!(d <= cap, "{failures}: {d:?}");
        }
        let first = backoff(1, cap);
        assert!(first >= Duration::from_millis(250) && first <= Duration::from_millis(500));
        let late = backoff(30, cap);
        assert!(late >= cap / 2);
    }
}
