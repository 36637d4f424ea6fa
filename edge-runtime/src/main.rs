//! `wasmline-edge`: serves Wasmline model modules over KServe v2 from a local folder
//! (`--models-dir`) or following an alias on a control plane (`--control-plane`, `--models`).

mod edge;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;
use edge_runtime::kserve::InferLimits;
use edge_runtime::{
    DEFAULT_MAX_MODULE_BYTES, LoadOptions, MANIFEST_FILE, MODULE_FILE, ModuleLimits, QueueLimits, Runtime,
    RuntimeConfig, ServedModel,
};
use model_wasm::signature::PublicKey;
use tokio::sync::watch;

use crate::edge::cache::Cache;
use crate::edge::client::ControlPlane;
use crate::edge::metrics::EdgeMetrics;
use crate::edge::models::EdgeModels;
use crate::edge::outbox::{self, Outbox};
use crate::edge::sync::{self, SyncContext, Trust};

/// Serves Wasmline models (WebAssembly modules) over the Open Inference Protocol (KServe v2).
#[derive(Debug, Parser)]
#[command(name = "wasmline-edge", version)]
struct Args {
    /// The control plane's base URL, e.g. http://127.0.0.1:8080.
    #[arg(long, env = "WASMLINE_EDGE_CONTROL_PLANE", conflicts_with = "models_dir")]
    control_plane: Option<String>,

    /// The models to serve, comma separated (with --models-dir: default every subfolder).
    #[arg(long, env = "WASMLINE_EDGE_MODELS", value_delimiter = ',')]
    models: Vec<String>,

    /// The alias to follow on the control plane.
    #[arg(long, env = "WASMLINE_EDGE_ALIAS", default_value = "production")]
    alias: String,

    /// This node's name in metrics and telemetry (A-Z a-z 0-9 . _ -; default: the host name).
    #[arg(long, env = "WASMLINE_EDGE_NODE_ID")]
    node_id: Option<String>,

    /// Where models, the pinned key and pending telemetry are kept.
    #[arg(long, env = "WASMLINE_EDGE_CACHE_DIR", default_value = "wasmline-edge-cache")]
    cache_dir: PathBuf,

    /// Serve the models in DIR/{name}/manifest.json + DIR/{name}/model.wasm; no control plane.
    #[arg(long, env = "WASMLINE_EDGE_MODELS_DIR")]
    models_dir: Option<PathBuf>,

    /// The address to listen on (port 0 picks a free port; the log says which).
    #[arg(long, env = "WASMLINE_EDGE_ADDR", default_value = "127.0.0.1:9000")]
    addr: SocketAddr,

    /// The public key manifests must be signed with (JSON: algorithm, key_id, public_key).
    /// Without it the control plane's key is pinned on first contact (trust on first use).
    #[arg(long, env = "WASMLINE_EDGE_TRUSTED_KEY")]
    trusted_key: Option<PathBuf>,

    /// Bearer token for posting telemetry to the control plane.
    #[arg(long, env = "WASMLINE_EDGE_TOKEN", hide_env_values = true)]
    edge_token: Option<String>,

    /// Seconds the control plane may hold an alias long poll.
    #[arg(long, env = "WASMLINE_EDGE_POLL_INTERVAL", default_value_t = 25)]
    poll_interval: u64,

    /// Seconds between telemetry batches.
    #[arg(long, env = "WASMLINE_EDGE_TELEMETRY_INTERVAL", default_value_t = 60)]
    telemetry_interval: u64,

    /// Most rows in one infer request.
    #[arg(long, env = "WASMLINE_EDGE_MAX_BATCH_ROWS", default_value_t = 10_000)]
    max_batch_rows: usize,

    /// Largest infer request body, in bytes.
    #[arg(long, env = "WASMLINE_EDGE_MAX_BODY_BYTES", default_value_t = 4 << 20)]
    max_body_bytes: usize,

    /// Rows in the sliding window drift is computed over (0: no drift tracking; requests are
    /// still counted and timed).
    #[arg(long, env = "WASMLINE_EDGE_DRIFT_WINDOW", default_value_t = 1000)]
    drift_window: usize,

    /// Compute drift over the rows of the last this many seconds only (still at most
    /// `--drift-window` rows); without it the window is the last `--drift-window` rows, however old.
    #[arg(long, env = "WASMLINE_EDGE_DRIFT_WINDOW_SECONDS", value_parser = clap::value_parser!(u64).range(1..))]
    drift_window_seconds: Option<u64>,

    /// A feature drifts when its PSI against the reference profile reaches this value.
    #[arg(long, env = "WASMLINE_EDGE_DRIFT_THRESHOLD", default_value_t = model_wasm::PSI_DRIFT_THRESHOLD)]
    drift_threshold: f64,

    /// Largest module accepted, in bytes (checked before compiling).
    #[arg(long, env = "WASMLINE_EDGE_MAX_MODULE_BYTES", default_value_t = DEFAULT_MAX_MODULE_BYTES)]
    max_module_bytes: usize,

    /// Longest pause, in seconds, between retries after the control plane failed to answer or a
    /// version failed to load for a transient reason (no free instance, a call past its deadline).
    #[arg(long, env = "WASMLINE_EDGE_MAX_BACKOFF", default_value_t = 30)]
    max_backoff: u64,

    /// Most telemetry batches kept on disk while the control plane is away (oldest dropped).
    #[arg(long, env = "WASMLINE_EDGE_MAX_PENDING_BATCHES", default_value_t = 10_000)]
    max_pending_batches: usize,

    /// Milliseconds one call into a module may run.
    #[arg(long, env = "WASMLINE_EDGE_DEADLINE_MS", default_value_t = 100)]
    deadline_ms: u64,

    /// Module instances alive at once across every loaded version (idle ones and calls).
    #[arg(long, env = "WASMLINE_EDGE_MAX_INSTANCES", default_value_t = RuntimeConfig::default().max_instances,
          value_parser = clap::value_parser!(u32).range(1..))]
    max_instances: u32,

    /// Milliseconds an infer request waits for an instance while every one is in a call; then 503.
    #[arg(long, env = "WASMLINE_EDGE_QUEUE_TIMEOUT_MS", default_value_t = 5000)]
    queue_timeout_ms: u64,

    /// Most infer requests waiting for an instance at once; one more gets a 503 at once.
    #[arg(long, env = "WASMLINE_EDGE_MAX_QUEUED", default_value_t = QueueLimits::default().max_waiting)]
    max_queued: usize,
}

impl Args {
    /// The model set the flags describe: `names`, with the drift window and threshold.
    fn edge_models(&self, names: Vec<String>, metrics: &Arc<EdgeMetrics>) -> EdgeModels {
        let models =
            EdgeModels::new(names, metrics.clone(), self.drift_window).with_drift_threshold(self.drift_threshold);
        match self.drift_window_seconds {
            Some(seconds) => models.with_drift_max_age(Duration::from_secs(seconds)),
            None => models,
        }
    }
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(args));
    // Blocking control-plane calls (a long poll) are not waited for.
    runtime.shutdown_timeout(Duration::from_secs(1));
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let node = match &args.node_id {
        Some(node) => node.clone(),
        None => default_node_id(),
    };
    check_id("--node-id", &node, 64)?;
    for name in &args.models {
        check_id("--models", name, 128)?;
    }
    let metrics = Arc::new(EdgeMetrics::new(&node));
    let engine = Runtime::new(RuntimeConfig {
        max_instances: args.max_instances,
        ..RuntimeConfig::default()
    })
    .context("starting the wasmtime engine")?;
    let trusted_key = match &args.trusted_key {
        Some(path) => Some(read_key(path)?),
        None => None,
    };
    let options = LoadOptions {
        limits: ModuleLimits {
            deadline: Duration::from_millis(args.deadline_ms),
            ..ModuleLimits::default()
        },
        max_module_bytes: args.max_module_bytes,
        trusted_key,
    };
    let limits = InferLimits {
        max_batch_rows: args.max_batch_rows,
        max_body_bytes: args.max_body_bytes,
        queue: QueueLimits {
            timeout: Duration::from_millis(args.queue_timeout_ms),
            max_waiting: args.max_queued,
        },
    };

    let (models, control) = if let Some(dir) = &args.models_dir {
        (serve_dir(dir, &args, &metrics, &engine, &options)?, None)
    } else if let Some(url) = &args.control_plane {
        if args.models.is_empty() {
            bail!("--models NAME[,NAME...] is required with --control-plane");
        }
        let cache = Cache::open(&args.cache_dir)
            .with_context(|| format!("opening the cache dir {}", args.cache_dir.display()))?;
        let trust = match &options.trusted_key {
            Some(key) => Trust::fixed(key.clone()),
            None => Trust::pinned(&cache).context("reading the pinned signing key")?,
        };
        let cached_options = LoadOptions {
            trusted_key: trust.key(),
            ..options.clone()
        };
        let models = Arc::new(args.edge_models(args.models.clone(), &metrics));
        for name in &args.models {
            sync::load_cached(&cache, &models, &engine, &cached_options, name);
        }
        let client = ControlPlane::new(url, args.edge_token.clone());
        let context = Arc::new(SyncContext {
            client,
            cache,
            models: models.clone(),
            runtime: engine.clone(),
            trust: Arc::new(trust),
            options: options.clone(),
            alias: args.alias.clone(),
            poll_wait: Duration::from_secs(args.poll_interval.clamp(1, 60)),
            max_backoff: Duration::from_secs(args.max_backoff.max(1)),
        });
        (models, Some(context))
    } else {
        bail!("give --control-plane URL with --models NAME[,NAME...], or --models-dir DIR");
    };

    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .with_context(|| format!("binding {}", args.addr))?;
    let bound = listener.local_addr().context("reading the bound address")?;
    tracing::info!(addr = %bound, node = %node, "listening on {bound}");
    println!("listening on {bound}");

    let (stop, stopped) = watch::channel(false);
    let mut background = Vec::new();
    if let Some(context) = control {
        for name in &args.models {
            background.push(tokio::spawn(sync::follow(
                context.clone(),
                name.clone(),
                stopped.clone(),
            )));
        }
        if context.client.has_token() {
            let outbox = Outbox::open(
                &context.cache.telemetry_dir(),
                args.max_pending_batches,
                metrics.clone(),
            )
            .context("opening the telemetry outbox")?;
            background.push(tokio::spawn(outbox::run(
                models.clone(),
                outbox,
                context.client.clone(),
                node.clone(),
                Duration::from_secs(args.telemetry_interval.max(1)),
                context.max_backoff,
                stopped.clone(),
            )));
        } else {
            tracing::warn!("no --edge-token: telemetry is not pushed to the control plane (GET /metrics still has it)");
        }
    }

    let app = edge::server::app(models, limits);
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("serving");
    let _ = stop.send(true);
    for task in background {
        // The telemetry task writes its last batch to disk; a long poll is not waited for.
        let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
    }
    tracing::info!("stopped");
    served
}

/// Loads `DIR/{name}/manifest.json` + `DIR/{name}/model.wasm` for each model.
fn serve_dir(
    dir: &Path,
    args: &Args,
    metrics: &Arc<EdgeMetrics>,
    engine: &Runtime,
    options: &LoadOptions,
) -> anyhow::Result<Arc<EdgeModels>> {
    let names = if args.models.is_empty() {
        subfolders(dir)?
    } else {
        args.models.clone()
    };
    if names.is_empty() {
        bail!("no models in {}", dir.display());
    }
    let models = Arc::new(args.edge_models(names.clone(), metrics));
    if options.trusted_key.is_none() {
        tracing::warn!(dir = %dir.display(), "no --trusted-key: manifest signatures in the models folder are not checked");
    }
    for name in &names {
        let folder = dir.join(name);
        let manifest = std::fs::read(folder.join(MANIFEST_FILE))
            .with_context(|| format!("reading {}", folder.join(MANIFEST_FILE).display()))?;
        let wasm = std::fs::read(folder.join(MODULE_FILE))
            .with_context(|| format!("reading {}", folder.join(MODULE_FILE).display()))?;
        let model = ServedModel::load(engine, &manifest, &wasm, options)
            .with_context(|| format!("loading model '{name}' from {}", folder.display()))?;
        if model.name() != name {
            bail!("{} holds model '{}', not '{name}'", folder.display(), model.name());
        }
        tracing::info!(model = %name, version = model.version(), "loaded");
        models.install(Arc::new(model));
    }
    Ok(models)
}

/// Resolves on ctrl-c or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    tracing::info!("shutting down");
}

fn read_key(path: &Path) -> anyhow::Result<PublicKey> {
    let bytes = std::fs::read(path).with_context(|| format!("reading the trusted key {}", path.display()))?;
    let key: PublicKey =
        serde_json::from_slice(&bytes).with_context(|| format!("{} is not a public key", path.display()))?;
    key.verifying_key()
        .with_context(|| format!("checking the trusted key {}", path.display()))?;
    Ok(key)
}

fn subfolders(dir: &Path) -> anyhow::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let entry = entry?;
        if entry.file_type()?.is_dir()
            && let Some(name) = entry.file_name().to_str()
            && entry.path().join(MANIFEST_FILE).is_file()
        {
            names.push(name.to_owned());
        }
    }
    names.sort();
    Ok(names)
}

/// 1 to `max` characters of `A-Z a-z 0-9 . _ -` (what telemetry and URLs accept).
fn check_id(what: &str, value: &str, max: usize) -> anyhow::Result<()> {
    let ok = (1..=max).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if !ok {
        bail!("{what} '{value}' must be 1 to {max} characters of A-Z a-z 0-9 . _ -");
    }
    Ok(())
}

/// The host name, cleaned to the id alphabet; `edge` when there is none.
fn default_node_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .unwrap_or_default();
    let clean: String = host
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .take(64)
        .collect();
    if clean.is_empty() { "edge".to_owned() } else { clean }
}
