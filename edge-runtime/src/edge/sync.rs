//! Following an alias on the control plane: one task per model long-polls the alias and, when
//! it points at a version other than the served one, downloads the manifest and module, passes
//! them through [`ServedModel::load`] (signature, digest, compile, smoke prediction), stores
//! them in the [`Cache`] and swaps them in.
//!
//! - A failed install is counted (`wasmline_edge_load_failures_total{kind}`) and sorted by its
//!   [`LoadFailure`] kind. A version whose bytes are at fault (signature, digest, size, manifest,
//!   ABI, shape, a smoke prediction that traps or is refused) is refused for good: logged,
//!   counted (`wasmline_edge_model_refused_total`) and remembered, so the long poll then holds
//!   on it (`known=` that version) and it is not fetched again; the old version keeps serving.
//! - A transient failure (the control plane unreachable or answering oddly, no free instance in
//!   the runtime's pool, a compile or smoke prediction past its deadline on a loaded machine) is
//!   logged with the pause before the next attempt (also in
//!   `wasmline_edge_load_retry_timestamp_seconds`), and the version is tried again after an
//!   exponential backoff with jitter (capped at `--max-backoff`), until it loads, is refused for
//!   good or the alias moves on. A failure to reach the control plane is also counted in
//!   `wasmline_edge_sync_failures_total`; the edge recovers by itself when it returns, and serves
//!   from memory (and after a restart, from the cache, see [`load_cached`]) meanwhile.
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
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use model_wasm::signature::PublicKey;
use tokio::sync::watch;

use edge_runtime::{LoadError, LoadFailure, LoadOptions, MANIFEST_FILE, MODULE_FILE, Runtime, ServedModel};

use super::cache::{Cache, Served, write_atomic};
use super::client::{ClientError, ControlPlane};
use super::metrics::EdgeMetrics;
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
    /// The version did not pass the load gate; [`LoadError::kind`] says whether for good.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The control plane could not be reached or answered oddly: try again later.
    #[error(transparent)]
    Fetch(#[from] ClientError),
}

impl SyncError {
    fn kind(&self) -> LoadFailure {
        match self {
            SyncError::Load(error) => error.kind(),
            SyncError::Fetch(_) => LoadFailure::Transient,
        }
    }
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
                    no_retry(&metrics, &name);
                    known = Some(target);
                    // A control plane that does not hold long polls must not be hammered.
                    Duration::from_secs(1).saturating_sub(started.elapsed())
                } else if let Some(previous) = ctx.models.previous(&name).filter(|p| p.version() == target) {
                    failures = 0;
                    no_retry(&metrics, &name);
                    tracing::info!(model = %name, version = target, "the alias moved back: serving the previous version again");
                    ctx.models.install(previous);
                    record_served(&ctx, &name);
                    known = Some(target);
                    Duration::ZERO
                } else {
                    match install(&ctx, &name, target).await {
                        Ok(model) => {
                            failures = 0;
                            no_retry(&metrics, &name);
                            tracing::info!(model = %name, version = target, sha256 = model.sha256(), from = ?current, "serving a new version");
                            ctx.models.install(model);
                            record_served(&ctx, &name);
                            known = Some(target);
                            Duration::ZERO
                        }
                        Err(error) => {
                            let kind = error.kind();
                            metrics.load_failures.with_label_values(&[&name, kind.label()]).inc();
                            match kind {
                                LoadFailure::Permanent => {
                                    failures = 0;
                                    no_retry(&metrics, &name);
                                    metrics.model_refused.with_label_values(&[&name]).inc();
                                    tracing::error!(model = %name, version = target, %error, serving = ?current, "refused a version for good; the served one stays");
                                    refused.insert(target);
                                    known = Some(target);
                                    Duration::ZERO
                                }
                                LoadFailure::Transient => {
                                    failures += 1;
                                    if matches!(error, SyncError::Fetch(_)) {
                                        metrics.sync_failures.with_label_values(&[&name]).inc();
                                    }
                                    let pause = backoff(failures, ctx.max_backoff);
                                    let at = SystemTime::now() + pause;
                                    let at = at.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs_f64();
                                    metrics.load_retry_at.with_label_values(&[&name]).set(at);
                                    tracing::warn!(model = %name, version = target, %error, failures, retry_in = ?pause, serving = ?current, "cannot load a version for now; will retry");
                                    pause
                                }
                            }
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

/// No version of `name` waits for another attempt.
fn no_retry(metrics: &EdgeMetrics, name: &str) {
    let _ = metrics.load_retry_at.remove_label_values(&[name]);
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
                ClientError::TooLarge(limit) => SyncError::Load(LoadError::Manifest(format!(
                    "the manifest is larger than {limit} bytes"
                ))),
                other => SyncError::Fetch(other),
            })?;
        let limit = ctx.options.max_module_bytes as u64;
        let wasm = ctx
            .client
            .artifact(&name, version, MODULE_FILE, limit)
            .map_err(|e| match e {
                ClientError::TooLarge(_) => SyncError::Load(LoadError::TooLarge {
                    size: ctx.options.max_module_bytes + 1,
                    limit: ctx.options.max_module_bytes,
                }),
                other => SyncError::Fetch(other),
            })?;
        let options = LoadOptions {
            trusted_key: Some(key),
            ..ctx.options.clone()
        };
        let model = ServedModel::load(&ctx.runtime, &manifest, &wasm, &options)?;
        if model.name() != name || model.version() != version {
            return Err(SyncError::Load(LoadError::Manifest(format!(
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
        Err(SyncError::Fetch(ClientError::Transport(format!(
            "the load task failed: {e}"
        ))))
    })
}

#[cfg(test)]
mod tests {
    use edge_runtime::kserve::ModelSet;
    use edge_runtime::{ModelModule, ModuleLimits, QueueLimits, RuntimeConfig};

    use super::*;
    use crate::edge::testing::standin::StandIn;
    use crate::edge::testing::support::{model_files, other_signing_key, public_key, regressor_ir, signing_key};

    /// A sync context following `stand_in` with `runtime`, trusting the test key; backoffs of
    /// at most 20 ms, so retries come quickly.
    fn context(stand_in: &StandIn, runtime: Runtime, cache: &std::path::Path) -> Arc<SyncContext> {
        let metrics = Arc::new(EdgeMetrics::new("test-node"));
        Arc::new(SyncContext {
            client: ControlPlane::new(&stand_in.url(), None),
            cache: Cache::open(cache).unwrap(),
            models: Arc::new(EdgeModels::new(vec!["wine".into()], metrics, 10)),
            runtime,
            trust: Arc::new(Trust::fixed(public_key(&signing_key()))),
            options: LoadOptions::default(),
            alias: "production".into(),
            poll_wait: Duration::from_secs(1),
            max_backoff: Duration::from_millis(20),
        })
    }

    /// Waits (polling) until `done`, failing the test after a minute.
    async fn until(what: &str, mut done: impl FnMut() -> bool) {
        let give_up = Instant::now() + Duration::from_secs(60);
        while !done() {
            assert!(Instant::now() < give_up, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn load_failures(ctx: &SyncContext, kind: LoadFailure) -> u64 {
        ctx.models
            .metrics()
            .load_failures
            .with_label_values(&["wine", kind.label()])
            .get()
    }

    /// An async runtime for a test (the stand-in runs on its own, so it starts outside this one).
    fn block_on<F: Future>(test: F) -> F::Output {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
            .block_on(test)
    }

    #[test]
    fn a_version_that_finds_the_instance_pool_full_is_tried_again_and_then_served() {
        let key = signing_key();
        let stand_in = StandIn::start(public_key(&key));
        stand_in.publish("wine", 1, &model_files("wine", 1, &regressor_ir(1.0), Some(&key)));
        stand_in.set_alias("wine", 1);
        block_on(pool_full_then_served(&stand_in));
    }

    async fn pool_full_then_served(stand_in: &StandIn) {
        // A pool of one instance, in a call of another module for as long as `held` lives.
        let runtime = Runtime::new(RuntimeConfig {
            max_instances: 1,
            ..RuntimeConfig::default()
        })
        .unwrap();
        let wasm = model_wasm::codegen::compile(&regressor_ir(0.0), b"{}").unwrap();
        let other = ModelModule::load(&runtime, &wasm, ModuleLimits::default()).unwrap();
        let held = other.lease(QueueLimits::default()).await.unwrap();

        let cache = tempfile::tempdir().unwrap();
        let ctx = context(stand_in, runtime, cache.path());
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(follow(ctx.clone(), "wine".into(), stopped));

        until("two attempts to find no free instance", || {
            load_failures(&ctx, LoadFailure::Transient) >= 2
        })
        .await;
        assert_eq!(ctx.models.current_version("wine"), None);
        let metrics = ctx.models.metrics().render();
        assert!(
            metrics.contains(r#"wasmline_edge_load_retry_timestamp_seconds{model="wine"}"#),
            "{metrics}"
        );

        // The instance comes free: the next attempt loads the version, and it answers.
        drop(held);
        until("version 1 to be served", || {
            ctx.models.current_version("wine") == Some(1)
        })
        .await;
        let model = ctx.models.current("wine").unwrap();
        let mut outputs = Vec::new();
        model.module().predict_flat(&[1.0, 1.0], &mut outputs).unwrap();
        assert_eq!(outputs, [0.0], "y = 1 + x0 - 2 x1");
        assert_eq!(load_failures(&ctx, LoadFailure::Permanent), 0);
        assert_eq!(ctx.models.metrics().model_refused.with_label_values(&["wine"]).get(), 0);
        let metrics = ctx.models.metrics().render();
        assert!(
            !metrics.contains("wasmline_edge_load_retry_timestamp_seconds{"),
            "no retry is pending: {metrics}"
        );
        stop.send(true).unwrap();
        task.await.unwrap();
    }

    /// How many times the stand-in served `file` of `wine@version`, and saw a poll holding on it.
    fn seen(stand_in: &StandIn, version: u64) -> (usize, usize, usize) {
        let registry = stand_in.registry();
        let fetched = |file: &str| {
            registry
                .fetched
                .iter()
                .filter(|(n, v, f)| n == "wine" && *v == version && f == file)
                .count()
        };
        let polls = registry
            .polls
            .iter()
            .filter(|(n, known)| n == "wine" && *known == Some(version))
            .count();
        (fetched(MANIFEST_FILE), fetched(MODULE_FILE), polls)
    }

    #[test]
    fn a_bad_digest_or_signature_is_refused_for_good_and_not_fetched_again() {
        let key = signing_key();
        let stand_in = StandIn::start(public_key(&key));
        let mut tampered = model_files("wine", 1, &regressor_ir(1.0), Some(&key));
        let last = tampered.wasm.len() - 1;
        tampered.wasm[last] ^= 0x01;
        stand_in.publish("wine", 1, &tampered);
        stand_in.publish(
            "wine",
            2,
            &model_files("wine", 2, &regressor_ir(2.0), Some(&other_signing_key())),
        );
        stand_in.set_alias("wine", 1);
        block_on(refused_for_good(&stand_in));
    }

    async fn refused_for_good(stand_in: &StandIn) {
        let cache = tempfile::tempdir().unwrap();
        let ctx = context(stand_in, crate::edge::testing::support::runtime().clone(), cache.path());
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(follow(ctx.clone(), "wine".into(), stopped));
        let refused = |n: u64| ctx.models.metrics().model_refused.with_label_values(&["wine"]).get() == n;

        for (n, version) in [(1, 1), (2, 2)] {
            if version == 2 {
                stand_in.set_alias("wine", 2);
            }
            until("the version to be refused", || refused(n)).await;
            // Two long polls holding on the refused version: the decision not to fetch it
            // again was made twice.
            until("two polls holding on the version", || seen(stand_in, version).2 >= 2).await;
            let (manifests, modules, _) = seen(stand_in, version);
            assert_eq!(
                (manifests, modules),
                (1, 1),
                "version {version}: the manifest and module were fetched once"
            );
            assert_eq!(load_failures(&ctx, LoadFailure::Permanent), n);
        }
        assert_eq!(load_failures(&ctx, LoadFailure::Transient), 0);
        assert_eq!(ctx.models.current_version("wine"), None);
        stop.send(true).unwrap();
        task.await.unwrap();
    }

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
