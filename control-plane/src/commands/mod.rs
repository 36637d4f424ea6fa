//! The `wasmline` command line: one subcommand per module, each a struct with `execute()`.

mod datasets;
mod pipeline;

use clap::{Parser, Subcommand};

pub use datasets::DatasetsCommand;
pub use pipeline::PipelineCommand;

/// Wasmline: tabular models from raw data to browsers and edge nodes.
#[derive(Debug, Parser)]
#[command(name = "wasmline", version, about, long_about = None)]
pub struct Cli {
    /// Where Wasmline keeps everything: a directory, or s3://bucket/prefix (credentials, region and
    /// endpoint from the usual AWS_* variables).
    #[arg(long, global = true, env = "WASMLINE_STORE", default_value = "./wasmline-data")]
    pub store: String,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the pipeline, or one of its steps.
    #[command(subcommand)]
    Pipeline(PipelineCommand),
    /// Inspect versioned datasets.
    #[command(subcommand)]
    Datasets(DatasetsCommand),
}

impl Cli {
    pub async fn execute(self) -> anyhow::Result<()> {
        match self.command {
            Command::Pipeline(c) => c.execute(&self.store).await,
            Command::Datasets(c) => c.execute(&self.store).await,
        }
    }
}

/// Opens the store a user named, with a message that says which.
pub(crate) async fn open_store(location: &str) -> anyhow::Result<Box<dyn crate::store::ObjectStore>> {
    use anyhow::Context;
    crate::store::open(location)
        .await
        .with_context(|| format!("cannot open the store '{location}'"))
}
