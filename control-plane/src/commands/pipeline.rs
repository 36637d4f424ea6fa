use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};

use crate::config::{ConfigError, PipelineConfig, bundled_example};
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

/// Loads the user's config, or the bundled example.
fn load_config(path: Option<&Path>) -> anyhow::Result<PipelineConfig> {
    if let Some(path) = path {
        let config = PipelineConfig::load(path)?;
        // Before the store is opened: a bad config stores nothing.
        Pipeline::check(&config).map_err(|message| ConfigError {
            path: path.display().to_string(),
            message,
        })?;
        return Ok(config);
    }
    eprintln!("using the bundled wine-quality example (pass --config FILE for your own pipeline)");
    bundled_example()
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
            ..RunOptions::default()
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
