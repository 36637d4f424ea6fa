//! `wasmline`: the control plane's command line.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;
use wasmline::Cli;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("WASMLINE_LOG").unwrap_or_else(|_| EnvFilter::new("warn,wasmline=info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .init();
    let cli = Cli::parse();
    let error_exit_code = cli.error_exit_code();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(error_exit_code);
        }
    };
    let result = runtime.block_on(cli.execute());
    // Blocking work left behind (a pipeline step `serve` stopped waiting for when its shutdown
    // grace ran out) must not hold the exit up: its run's lease expires and another control
    // plane marks it abandoned.
    runtime.shutdown_background();
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(error_exit_code)
        }
    }
}
