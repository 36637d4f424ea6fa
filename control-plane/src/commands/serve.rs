//! `wasmline serve`: the control plane's HTTP API.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;

use crate::server::{self, ServerOptions};

#[derive(Debug, Args)]
pub struct ServeCommand {
    /// Address to listen on (port 0 picks a free port; the address is printed).
    #[arg(long, env = "WASMLINE_ADDR", default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,

    /// The token edges send with their telemetry (`Authorization: Bearer ...`). Without one, edge
    /// telemetry is refused.
    #[arg(long, env = "WASMLINE_EDGE_TOKEN", hide_env_values = true)]
    pub edge_token: Option<String>,

    /// The token writes need (`Authorization: Bearer ...`): promote, roll back, trigger a run.
    /// Without one, every write is refused.
    #[arg(long, env = "WASMLINE_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,

    /// How often (milliseconds) a long poll on an alias re-reads it from the store.
    #[arg(long, env = "WASMLINE_POLL_MS", default_value_t = 250, value_parser = clap::value_parser!(u64).range(10..=10_000))]
    pub poll_ms: u64,

    /// Serve the web page from this folder instead of the copy built into the binary.
    #[arg(long, env = "WASMLINE_WEB_DIR")]
    pub web_dir: Option<std::path::PathBuf>,

    /// The browser SDK the page imports: wasm-pack's output folder (model_wasm.js, model_wasm_bg.wasm).
    #[arg(long, env = "WASMLINE_SDK_PKG")]
    pub sdk_dir: Option<std::path::PathBuf>,

    /// Least seconds between two drift-triggered retrains of one model (Alertmanager webhook).
    #[arg(long, env = "WASMLINE_RETRAIN_COOLDOWN", default_value_t = 3600)]
    pub retrain_cooldown: u64,
}

impl ServeCommand {
    pub async fn execute(self, store: &str) -> anyhow::Result<()> {
        let opened: Arc<dyn crate::store::ObjectStore> = Arc::from(super::open_store(store).await?);
        let listener = tokio::net::TcpListener::bind(self.addr)
            .await
            .with_context(|| format!("cannot listen on {}", self.addr))?;
        let local = listener.local_addr()?;
        let options = ServerOptions {
            edge_token: self.edge_token,
            admin_token: self.admin_token,
            poll_every: Duration::from_millis(self.poll_ms),
            retrain_cooldown: Duration::from_secs(self.retrain_cooldown),
            web: server::WebOptions {
                web_dir: self.web_dir,
                sdk_dir: self.sdk_dir,
            },
        };
        tracing::info!(store = %opened.describe(), "serving");
        // Printed, not only logged: scripts and tests read the address from here.
        println!("listening on http://{local}");
        server::serve(listener, opened, options, server::shutdown_signal()).await
    }
}
