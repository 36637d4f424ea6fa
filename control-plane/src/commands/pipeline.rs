use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand};

use crate::config::PipelineConfig;
use crate::pipeline::{Pipeline, RunOptions, StepName, new_run_id};

#[derive(Debug, Subcommand)]
pub enum PipelineCommand {
    /// Run every step in order (a finished step whose inputs are unchanged is skipped).
    Run(RunArgs),
    /// Run one step of a run (what an Airflow task calls).
    Step(StepArgs),
}

#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// The pipeline config; without it, the bundled wine-quality example.
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// Also write a DVC `.dvc` file for the raw data here (version step).
    #[arg(long)]
    pub dvc_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Run id to use (default: a new one); reusing one resumes that run.
    #[arg(long)]
    pub run_id: Option<String>,
}

#[derive(Debug, Args)]
pub struct StepArgs {
    /// The step to run.
    pub name: StepName,
    #[command(flatten)]
    pub config: ConfigArgs,
    /// The run the step belongs to (`ingest` starts it).
    #[arg(long)]
    pub run_id: String,
}

/// The bundled example, compiled in so `wasmline pipeline run` works from any directory.
const EXAMPLE_CONFIG: &str = include_str!("../../../examples/winequality/pipeline.toml");
const EXAMPLE_DATA: &[u8] = include_bytes!("../../../examples/winequality/winequality-red.csv");

/// Loads the user's config, or the bundled example.
fn load_config(path: Option<&Path>) -> anyhow::Result<PipelineConfig> {
    if let Some(path) = path {
        return Ok(PipelineConfig::load(path)?);
    }
    eprintln!("using the bundled wine-quality example (pass --config FILE for your own pipeline)");
    bundled_example()
}

/// The bundled wine-quality example: its data unpacked to a stable temporary folder.
pub fn bundled_example() -> anyhow::Result<PipelineConfig> {
    let dir = std::env::temp_dir().join("wasmline-example-winequality");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let data = dir.join("winequality-red.csv");
    if std::fs::read(&data).ok().as_deref() != Some(EXAMPLE_DATA) {
        // Written beside, then renamed: two processes unpacking at once never read half a file.
        let partial = dir.join(format!("winequality-red.csv.{}", std::process::id()));
        std::fs::write(&partial, EXAMPLE_DATA).with_context(|| format!("cannot write {}", partial.display()))?;
        std::fs::rename(&partial, &data).with_context(|| format!("cannot write {}", data.display()))?;
    }
    PipelineConfig::parse(EXAMPLE_CONFIG, dir).map_err(|e| anyhow::anyhow!("bundled example: {e}"))
}

impl PipelineCommand {
    pub async fn execute(self, store: &str) -> anyhow::Result<()> {
        let (config_args, run_id, only) = match self {
            PipelineCommand::Run(a) => (a.config, a.run_id.unwrap_or_else(new_run_id), None),
            PipelineCommand::Step(a) => (a.config, a.run_id, Some(a.name)),
        };
        let config = load_config(config_args.config.as_deref())?;
        let store = super::open_store(store).await?;
        let options = RunOptions {
            dvc_file: config_args.dvc_file,
        };
        let pipeline = Pipeline::new(store.as_ref(), config, run_id, options)?;
        println!("run {} (store {})", pipeline.run_id, store.describe());
        match only {
            Some(step) => println!("{}", pipeline.run_step(step).await?),
            None => {
                pipeline.run_all(|report| println!("{report}")).await?;
            }
        }
        Ok(())
    }
}
