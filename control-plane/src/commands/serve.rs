//! `wasmline serve`: the control plane's HTTP API.
//!
//! Settings come from flags, then `WASMLINE_*` variables, then an optional TOML file
//! (`--config-file`, keys named like the flags with underscores), then the defaults.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use serde::Deserialize;

use crate::server::{self, ServerOptions};

const DEFAULT_ADDR: &str = "127.0.0.1:8080";
const DEFAULT_POLL_MS: u64 = 250;
const DEFAULT_RETRAIN_COOLDOWN: u64 = 3600;
const DEFAULT_RUN_LEASE_SECS: u64 = 60;
const DEFAULT_SHUTDOWN_GRACE: u64 = 30;

#[derive(Debug, Args)]
pub struct ServeCommand {
    /// Address to listen on (port 0 picks a free port; the address is printed) [default: 127.0.0.1:8080].
    #[arg(long, env = "WASMLINE_ADDR")]
    pub addr: Option<SocketAddr>,

    /// The token edges send with their telemetry (`Authorization: Bearer ...`). Without one, edge
    /// telemetry is refused.
    #[arg(long, env = "WASMLINE_EDGE_TOKEN", hide_env_values = true)]
    pub edge_token: Option<String>,

    /// The token writes need (`Authorization: Bearer ...`): promote, roll back, trigger a run.
    /// Without one, every write is refused.
    #[arg(long, env = "WASMLINE_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,

    /// The token Alertmanager sends to the retrain hook (`POST /api/v1/hooks/alertmanager`), and
    /// that route alone takes (the admin token works there too), so Alertmanager needs no admin
    /// token.
    #[arg(long, env = "WASMLINE_ALERTMANAGER_TOKEN", hide_env_values = true)]
    pub alertmanager_token: Option<String>,

    /// How often (milliseconds, 10 to 10000) a long poll on an alias re-reads it [default: 250].
    #[arg(long, env = "WASMLINE_POLL_MS")]
    pub poll_ms: Option<u64>,

    /// Serve the web page from this folder instead of the copy built into the binary.
    #[arg(long, env = "WASMLINE_WEB_DIR")]
    pub web_dir: Option<PathBuf>,

    /// Serve the browser SDK from this folder (scripts/build-web's output: wasmline_sdk.js,
    /// wasmline_sdk_bg.wasm) instead of the copy built into the binary.
    #[arg(long, env = "WASMLINE_SDK_DIR")]
    pub sdk_dir: Option<PathBuf>,

    /// Least seconds between two drift-triggered retrains of one model [default: 3600].
    #[arg(long, env = "WASMLINE_RETRAIN_COOLDOWN")]
    pub retrain_cooldown: Option<u64>,

    /// A model whose browser telemetry the alert rules and the retrain hook may act on
    /// (repeatable). Browsers are anonymous: by default their figures are exported with
    /// `trust="advisory"`, which the bundled rules and the hook ignore; an opted-in model's get
    /// `trust="opted-in"`.
    #[arg(
        long = "act-on-browser-telemetry",
        value_name = "MODEL",
        env = "WASMLINE_ACT_ON_BROWSER_TELEMETRY",
        value_delimiter = ','
    )]
    pub act_on_browser_telemetry: Vec<String>,

    /// Hours browsers' telemetry batches are kept in the store (1 to 8760) [default: 24].
    #[arg(long, env = "WASMLINE_BROWSER_TELEMETRY_RETENTION_HOURS")]
    pub browser_telemetry_retention_hours: Option<u64>,

    /// Most long polls on aliases waiting at once; more answer 503 [default: 10000].
    #[arg(long, env = "WASMLINE_MAX_LONG_POLLS")]
    pub max_long_polls: Option<usize>,
    /// Seconds a run's (or drift retrain's) lease lasts without a heartbeat (renewed every third
    /// of it); a control plane that finds a lease expired marks the run `abandoned` [default: 60].
    #[arg(long, env = "WASMLINE_RUN_LEASE_SECS")]
    pub run_lease_secs: Option<u64>,

    /// Seconds a shutdown (SIGTERM, ctrl-c) waits for the pipeline steps under way; runs stop
    /// before their next step [default: 30].
    #[arg(long, env = "WASMLINE_SHUTDOWN_GRACE")]
    pub shutdown_grace: Option<u64>,

    /// A path (folder or file) or URL prefix (`https://host/path/`, `s3://bucket/prefix/`) that a
    /// pipeline run started over HTTP may read from; repeatable (comma-separated in the
    /// variable). Always allowed: the bundled example and the sources of the store's datasets.
    #[arg(
        long = "allow-source",
        value_name = "PREFIX",
        env = "WASMLINE_ALLOW_SOURCE",
        value_delimiter = ','
    )]
    pub allow_source: Vec<String>,

    /// A TOML file with any of the settings above (`addr = "0.0.0.0:8080"`, `admin_token = ...`);
    /// flags and variables win over it.
    #[arg(long, env = "WASMLINE_SERVE_CONFIG")]
    pub config_file: Option<PathBuf>,
}

/// The settings a `--config-file` may hold.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServeFile {
    addr: Option<SocketAddr>,
    edge_token: Option<String>,
    admin_token: Option<String>,
    alertmanager_token: Option<String>,
    poll_ms: Option<u64>,
    web_dir: Option<PathBuf>,
    sdk_dir: Option<PathBuf>,
    retrain_cooldown: Option<u64>,
    #[serde(default)]
    act_on_browser_telemetry: Vec<String>,
    browser_telemetry_retention_hours: Option<u64>,
    max_long_polls: Option<usize>,
    run_lease_secs: Option<u64>,
    shutdown_grace: Option<u64>,
    allow_source: Option<Vec<String>>,
}

impl ServeFile {
    fn read(path: &Path) -> anyhow::Result<ServeFile> {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
    }
}

impl ServeCommand {
    /// The address and the server's options: flag or variable, else the file, else the default.
    fn settings(self) -> anyhow::Result<(SocketAddr, ServerOptions)> {
        let file = match &self.config_file {
            Some(path) => ServeFile::read(path)?,
            None => ServeFile::default(),
        };
        let poll_ms = self.poll_ms.or(file.poll_ms).unwrap_or(DEFAULT_POLL_MS);
        anyhow::ensure!(
            (10..=10_000).contains(&poll_ms),
            "poll_ms = {poll_ms}: give 10 to 10000 milliseconds"
        );
        let retention_hours = self
            .browser_telemetry_retention_hours
            .or(file.browser_telemetry_retention_hours)
            .unwrap_or(24);
        anyhow::ensure!(
            (1..=8760).contains(&retention_hours),
            "browser_telemetry_retention_hours = {retention_hours}: give 1 to 8760 hours"
        );
        let trusted = if self.act_on_browser_telemetry.is_empty() {
            file.act_on_browser_telemetry
        } else {
            self.act_on_browser_telemetry
        };
        for model in &trusted {
            crate::registry::check_name("model", model)?;
        }
        let run_lease_secs = self
            .run_lease_secs
            .or(file.run_lease_secs)
            .unwrap_or(DEFAULT_RUN_LEASE_SECS);
        anyhow::ensure!(
            (1..=86_400).contains(&run_lease_secs),
            "run_lease_secs = {run_lease_secs}: give 1 to 86400 seconds"
        );
        let allow_sources = if self.allow_source.is_empty() {
            file.allow_source.unwrap_or_default()
        } else {
            self.allow_source
        };
        let addr = match self.addr.or(file.addr) {
            Some(addr) => addr,
            None => DEFAULT_ADDR.parse()?,
        };
        Ok((
            addr,
            ServerOptions {
                edge_token: self.edge_token.or(file.edge_token),
                admin_token: self.admin_token.or(file.admin_token),
                alertmanager_token: self.alertmanager_token.or(file.alertmanager_token),
                poll_every: Duration::from_millis(poll_ms),
                retrain_cooldown: Duration::from_secs(
                    self.retrain_cooldown
                        .or(file.retrain_cooldown)
                        .unwrap_or(DEFAULT_RETRAIN_COOLDOWN),
                ),
                web: server::WebOptions {
                    web_dir: self.web_dir.or(file.web_dir),
                    sdk_dir: self.sdk_dir.or(file.sdk_dir),
                },
                trusted_browser_models: trusted.into_iter().collect(),
                browser_retention: Duration::from_secs(retention_hours * 3600),
                max_long_polls: self.max_long_polls.or(file.max_long_polls).unwrap_or(10_000),
                runs: server::RunSettings {
                    lease: Duration::from_secs(run_lease_secs),
                    shutdown_grace: Duration::from_secs(
                        self.shutdown_grace
                            .or(file.shutdown_grace)
                            .unwrap_or(DEFAULT_SHUTDOWN_GRACE),
                    ),
                    allow_sources,
                },
            },
        ))
    }

    pub async fn execute(self, store: &str) -> anyhow::Result<()> {
        let (addr, options) = self.settings()?;
        let opened: Arc<dyn crate::store::ObjectStore> = Arc::from(super::open_store(store).await?);
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr}"))?;
        let local = listener.local_addr()?;
        tracing::info!(store = %opened.describe(), "serving");
        // Printed, not only logged: scripts and tests read the address from here.
        println!("listening on http://{local}");
        server::serve(listener, opened, options, server::shutdown_signal()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command(config_file: Option<PathBuf>) -> ServeCommand {
        ServeCommand {
            addr: None,
            edge_token: None,
            admin_token: Some("from-the-flag".into()),
            alertmanager_token: None,
            poll_ms: None,
            web_dir: None,
            sdk_dir: None,
            retrain_cooldown: None,
            act_on_browser_telemetry: Vec::new(),
            browser_telemetry_retention_hours: None,
            max_long_polls: None,
            run_lease_secs: None,
            shutdown_grace: None,
            allow_source: Vec::new(),
            config_file,
        }
    }

    #[test]
    fn flags_win_over_the_file_and_the_file_over_defaults() {
        let (addr, options) = command(None).settings().unwrap();
        assert_eq!(addr.to_string(), DEFAULT_ADDR);
        assert_eq!(options.poll_every, Duration::from_millis(DEFAULT_POLL_MS));
        assert_eq!(options.runs.lease, Duration::from_secs(DEFAULT_RUN_LEASE_SECS));
        assert_eq!(options.runs.shutdown_grace, Duration::from_secs(DEFAULT_SHUTDOWN_GRACE));
        assert!(options.runs.allow_sources.is_empty());

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("serve.toml");
        std::fs::write(
            &file,
            "addr = \"127.0.0.1:9999\"\nadmin_token = \"from-the-file\"\nedge_token = \"e\"\npoll_ms = 50\n\
             run_lease_secs = 5\nshutdown_grace = 2\nallow_source = [\"/srv/data\", \"https://data.example.com/\"]\n",
        )
        .unwrap();
        let (addr, options) = command(Some(file.clone())).settings().unwrap();
        assert_eq!(options.runs.lease, Duration::from_secs(5));
        assert_eq!(options.runs.shutdown_grace, Duration::from_secs(2));
        assert_eq!(options.runs.allow_sources, ["/srv/data", "https://data.example.com/"]);
        let mut flagged = command(Some(file.clone()));
        flagged.allow_source = vec!["/only/this".into()];
        assert_eq!(flagged.settings().unwrap().1.runs.allow_sources, ["/only/this"]);
        assert_eq!(addr.port(), 9999);
        assert_eq!(options.admin_token.as_deref(), Some("from-the-flag"));
        assert_eq!(options.edge_token.as_deref(), Some("e"));
        assert_eq!(options.poll_every, Duration::from_millis(50));

        std::fs::write(&file, "adress = \"x\"\n").unwrap();
        let e = format!("{:#}", command(Some(file.clone())).settings().unwrap_err());
        assert!(e.contains("serve.toml") && e.contains("unknown field `adress`"), "{e}");
        std::fs::write(&file, "poll_ms = 1\n").unwrap();
        let e = command(Some(file.clone())).settings().unwrap_err().to_string();
        assert!(e.contains("10 to 10000"), "{e}");
        std::fs::write(&file, "run_lease_secs = 0\n").unwrap();
        let e = command(Some(file)).settings().unwrap_err().to_string();
        assert!(e.contains("1 to 86400"), "{e}");
        let e = format!(
            "{:#}",
            command(Some(dir.path().join("missing.toml"))).settings().unwrap_err()
        );
        assert!(e.contains("missing.toml"), "{e}");
    }
}
