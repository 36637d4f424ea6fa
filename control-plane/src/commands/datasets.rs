use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};

use crate::dataset::{load_dataset, versions, write_dvc_file};

#[derive(Debug, Subcommand)]
pub enum DatasetsCommand {
    /// List datasets and their latest versions.
    List,
    /// Print a dataset version's record (JSON).
    Show(DatasetRef),
    /// Write a DVC `.dvc` file for a version's raw data.
    DvcFile {
        #[command(flatten)]
        dataset: DatasetRef,
        /// Where to write the `.dvc` file.
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Debug, Args)]
pub struct DatasetRef {
    /// NAME or NAME@VERSION (latest version by default).
    pub dataset: String,
}

impl DatasetRef {
    fn parse(&self) -> anyhow::Result<(&str, Option<u64>)> {
        match self.dataset.split_once('@') {
            None => Ok((&self.dataset, None)),
            Some((name, v)) => {
                let v = v
                    .parse()
                    .with_context(|| format!("'{v}' is not a version number (expected NAME@VERSION)"))?;
                Ok((name, Some(v)))
            }
        }
    }
}

impl DatasetsCommand {
    pub async fn execute(self, store: &str) -> anyhow::Result<()> {
        let store = super::open_store(store).await?;
        match self {
            DatasetsCommand::List => {
                let mut names: Vec<String> = store
                    .list("datasets/")
                    .await?
                    .iter()
                    .filter_map(|m| m.key.as_str().split('/').nth(1).map(str::to_owned))
                    .collect();
                names.dedup();
                if names.is_empty() {
                    println!("no datasets in {}", store.describe());
                }
                for name in names {
                    let all = versions(store.as_ref(), &name).await?;
                    let record = load_dataset(store.as_ref(), &name, None).await?;
                    println!(
                        "{name}\tversions {}\tlatest {}: {} rows (train {}, test {}), {}",
                        all.len(),
                        record.version,
                        record.raw.rows,
                        record.train.rows,
                        record.test.rows,
                        record.created_at.format("%Y-%m-%d %H:%M:%S UTC")
                    );
                }
            }
            DatasetsCommand::Show(r) => {
                let (name, version) = r.parse()?;
                let record = load_dataset(store.as_ref(), name, version).await?;
                println!("{}", serde_json::to_string_pretty(&record)?);
            }
            DatasetsCommand::DvcFile { dataset, out } => {
                let (name, version) = dataset.parse()?;
                let record = load_dataset(store.as_ref(), name, version).await?;
                write_dvc_file(&out, &record)?;
                println!("wrote {} (dataset {name} version {})", out.display(), record.version);
            }
        }
        Ok(())
    }
}
