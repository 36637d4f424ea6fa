use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};

use crate::config::ProfileConfig;
use crate::import::ImportOptions;
use crate::pipeline::{self, ImportRequest};
use crate::registry::{self, ModelSelector};

#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// List registered models, their versions and aliases.
    List,
    /// Print a version's manifest (JSON), after verifying its signature.
    Show {
        /// NAME (latest version), NAME@VERSION or NAME@ALIAS.
        model: ModelSelector,
    },
    /// Point an alias at a version, after verifying the version's manifest and artifacts.
    Promote {
        name: String,
        version: u64,
        #[command(flatten)]
        alias: AliasArgs,
    },
    /// Move an alias back to its previous version.
    Rollback {
        name: String,
        #[command(flatten)]
        alias: AliasArgs,
    },
    /// Register a model made elsewhere (XGBoost JSON, LightGBM text, ONNX) as a new signed version:
    /// model.wasm checked against the IR, model.onnx where it can be written faithfully, the
    /// source file kept.
    Import(ImportArgs),
    /// Write every artifact of a version (and its manifest) to a directory, checking each sha256.
    Download {
        /// NAME (latest version), NAME@VERSION or NAME@ALIAS.
        model: ModelSelector,
        /// The directory to write to (created if needed).
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The model file: XGBoost's JSON (`save_model("m.json")`), LightGBM's text
    /// (`save_model("model.txt")`) or ONNX.
    pub file: PathBuf,
    /// The model to add a version to.
    #[arg(long)]
    pub name: String,
    /// The file's format: xgboost, lightgbm or onnx (default: detected).
    #[arg(long)]
    pub format: Option<String>,
    /// Feature names, comma-separated, when the file has none.
    #[arg(long, value_delimiter = ',')]
    pub features: Option<Vec<String>>,
    /// Class labels, comma-separated, when the file has none.
    #[arg(long, value_delimiter = ',')]
    pub classes: Option<Vec<String>>,
    /// A CSV of rows in the model's feature space (its columns: the features, by name, and
    /// --target): the drift reference, the sample rows and, with --target, held-out metrics.
    #[arg(long)]
    pub reference_data: Option<PathBuf>,
    /// The target column of --reference-data.
    #[arg(long, requires = "reference_data")]
    pub target: Option<String>,
    /// Also take models whose labels the IR reproduces exactly but whose probabilities it cannot.
    #[arg(long)]
    pub labels_only: bool,
}

#[derive(Debug, Args)]
pub struct AliasArgs {
    /// The alias to move.
    #[arg(long, default_value = "production")]
    pub alias: String,
    /// Who moves it, for the alias history (default: $USER).
    #[arg(long, env = "WASMLINE_USER")]
    pub by: Option<String>,
}

impl AliasArgs {
    fn by(&self) -> String {
        self.by
            .clone()
            .or_else(|| std::env::var("USER").ok())
            .unwrap_or_else(|| "unknown".to_owned())
    }
}

impl ModelsCommand {
    pub async fn execute(self, store: &str) -> anyhow::Result<()> {
        let store = super::open_store(store).await?;
        let store = store.as_ref();
        match self {
            ModelsCommand::List => {
                let names = registry::list_models(store).await?;
                if names.is_empty() {
                    println!("no models in {}", store.describe());
                }
                for name in names {
                    let versions = registry::list_versions(store, &name).await?;
                    let aliases: Vec<String> = registry::list_aliases(store, &name)
                        .await?
                        .into_iter()
                        .map(|(alias, record)| format!("{alias} -> {}", record.version))
                        .collect();
                    let latest = versions.last().copied().unwrap_or_default();
                    // One bad version should not hide the others: say what is wrong and go on.
                    let about = match registry::load_version(store, &name, latest).await {
                        Ok(m) => {
                            let metric = m.selection_metric;
                            let score = m
                                .metrics
                                .get(metric.name())
                                .map_or_else(|| "n/a".to_owned(), |v| format!("{v:.4}"));
                            format!(
                                "{} {metric} {score}, {}",
                                m.family,
                                m.created_at.format("%Y-%m-%d %H:%M:%S UTC")
                            )
                        }
                        Err(e) => format!("cannot load: {e:#}"),
                    };
                    let aliases = if aliases.is_empty() {
                        "none".to_owned()
                    } else {
                        aliases.join(", ")
                    };
                    println!(
                        "{name}\tversions {}\tlatest {latest}: {about}\taliases: {aliases}",
                        versions.len()
                    );
                }
            }
            ModelsCommand::Show { model } => {
                let manifest = registry::load_manifest(store, &model).await?;
                println!("{}", serde_json::to_string_pretty(&manifest)?);
            }
            ModelsCommand::Promote { name, version, alias } => {
                let before = registry::get_alias(store, &name, &alias.alias).await?;
                let record = registry::set_alias(store, &name, &alias.alias, version, &alias.by()).await?;
                match before {
                    Some(b) if b.version == version => println!("{name}@{} is already version {version}", alias.alias),
                    Some(b) => println!("{name}@{}: version {} -> {version}", alias.alias, b.version),
                    None => println!("{name}@{} -> version {}", alias.alias, record.version),
                }
            }
            ModelsCommand::Rollback { name, alias } => {
                let before = registry::get_alias(store, &name, &alias.alias).await?;
                let record = registry::rollback(store, &name, &alias.alias, &alias.by()).await?;
                let from = before.map(|b| b.version.to_string()).unwrap_or_default();
                println!(
                    "{name}@{}: rolled back from version {from} to {}",
                    alias.alias, record.version
                );
            }
            ModelsCommand::Import(args) => {
                let format = match &args.format {
                    Some(f) => Some(
                        f.parse::<crate::import::ModelFormat>()
                            .map_err(|e| anyhow::anyhow!("--format: {e}"))?,
                    ),
                    None => None,
                };
                let request = ImportRequest {
                    file: args.file,
                    name: args.name,
                    format,
                    options: ImportOptions {
                        features: args.features,
                        classes: args.classes,
                        labels_only: args.labels_only,
                    },
                    reference_data: args.reference_data,
                    target: args.target,
                    reference_bins: ProfileConfig::default().reference_bins,
                };
                println!("{}", pipeline::import(store, request).await?);
            }
            ModelsCommand::Download { model, out } => {
                let manifest = registry::load_manifest(store, &model).await?;
                // Every artifact is checked before anything is written.
                let mut files = Vec::new();
                for file in manifest.artifacts.keys() {
                    files.push((file.clone(), registry::load_artifact(store, &manifest, file).await?));
                }
                std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
                for (file, body) in &files {
                    let path = out.join(file);
                    std::fs::write(&path, body).with_context(|| format!("cannot write {}", path.display()))?;
                }
                let path = out.join("manifest.json");
                std::fs::write(&path, serde_json::to_vec_pretty(&manifest)?)
                    .with_context(|| format!("cannot write {}", path.display()))?;
                println!(
                    "wrote {} artifacts and manifest.json of {} to {} (sha256 checked)",
                    files.len(),
                    manifest.id(),
                    out.display()
                );
            }
        }
        Ok(())
    }
}
