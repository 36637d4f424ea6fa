//! The `wasmline` command line: one subcommand per module, each a struct with `execute()`.

mod compare;
mod datasets;
mod drift;
mod import_onnx;
mod init;
mod models;
mod pipeline;
mod predict;
mod serve;
mod values;

use clap::{Parser, Subcommand};

pub(crate) use compare::{COMPARE_ERROR_EXIT_CODE, CompareCommand, CompareOutcome};
pub(crate) use datasets::DatasetsCommand;
pub(crate) use drift::DriftCommand;
pub use import_onnx::ImportOnnxCommand;
pub(crate) use init::InitCommand;
pub(crate) use models::ModelsCommand;
pub(crate) use pipeline::PipelineCommand;
pub(crate) use predict::PredictCommand;
pub(crate) use serve::ServeCommand;

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
    /// Write a commented pipeline.toml for a CSV file: column types inferred from every row,
    /// expectations the data meets (as warnings), a training grid for the task and size.
    Init(InitCommand),
    /// Run the pipeline, or one of its steps.
    #[command(subcommand)]
    Pipeline(PipelineCommand),
    /// Inspect versioned datasets.
    #[command(subcommand)]
    Datasets(DatasetsCommand),
    /// The model registry: list, show, promote, roll back, download.
    #[command(subcommand)]
    Models(ModelsCommand),
    /// Compare a candidate model with a baseline on the same test data (the promotion gate).
    /// Exit code 0: not worse beyond the tolerance (or no baseline yet); 1: worse; 2: error.
    Compare(CompareCommand),
    /// Predict a CSV or JSON Lines file with a registered model; JSON out.
    Predict(PredictCommand),
    /// Score a data file against a model's training profile: PSI (and KS) per feature.
    Drift(DriftCommand),
    /// Turn an ONNX model made elsewhere (scikit-learn via skl2onnx) into a model IR (JSON) and print
    /// what was found; `wasmline models import` registers such a model as a version.
    ImportOnnx(ImportOnnxCommand),
    /// Serve the HTTP API: aliases, published models and telemetry ingest for edges.
    Serve(ServeCommand),
}

impl Cli {
    /// Runs the command. `Ok` holds the exit code: 0, unless the command reports an outcome
    /// through it (`compare`: 1 = worse). On error, `main` prints it and exits with
    /// [`Cli::error_exit_code`].
    pub async fn execute(self) -> anyhow::Result<u8> {
        match self.command {
            Command::Init(c) => c.execute().map(|()| 0),
            Command::Pipeline(c) => c.execute(&self.store).await.map(|()| 0),
            Command::Datasets(c) => c.execute(&self.store).await.map(|()| 0),
            Command::Models(c) => c.execute(&self.store).await.map(|()| 0),
            Command::Compare(c) => c.execute(&self.store).await.map(CompareOutcome::exit_code),
            Command::Predict(c) => c.execute(&self.store).await.map(|()| 0),
            Command::Drift(c) => c.execute(&self.store).await.map(|()| 0),
            Command::ImportOnnx(c) => c.execute().map(|()| 0),
            Command::Serve(c) => c.execute(&self.store).await.map(|()| 0),
        }
    }

    /// The exit code when the command fails: 1, or 2 for `compare` (whose 1 means "worse").
    pub fn error_exit_code(&self) -> u8 {
        match self.command {
            Command::Compare(_) => COMPARE_ERROR_EXIT_CODE,
            _ => 1,
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

/// Reads the named feature columns (floats) of a CSV, JSON Lines (`.jsonl`, `.ndjson`) or Parquet
/// (`.parquet`, `.pq`) file,
/// ignoring other columns. An empty or `NA` cell is read as missing where `nullable` says so (and
/// refused elsewhere); with `lenient`, every cell may be missing and non-finite ones are too.
pub(crate) async fn read_features(
    path: &std::path::Path,
    names: &[String],
    nullable: &[bool],
    lenient: bool,
) -> anyhow::Result<crate::data::Table> {
    use crate::data::{ColumnSpec, Format};
    use crate::data::{ColumnType, ReadOptions, Table};
    let columns: Vec<ColumnSpec> = names
        .iter()
        .enumerate()
        .map(|(i, name)| ColumnSpec {
            name: name.clone(),
            ty: ColumnType::Float,
            nullable: lenient || nullable.get(i).copied().unwrap_or(false),
            allow_non_finite: lenient,
        })
        .collect();
    let format = match Format::from_name(&path.display().to_string()) {
        // `.json` stays CSV here, as it always was for feature files.
        Format::Jsonl if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("json")) => Format::Csv,
        format => format,
    };
    let path = path.to_path_buf();
    Ok(tokio::task::spawn_blocking(move || {
        let missing = vec![String::new(), "NA".to_owned()];
        let opts = ReadOptions {
            format,
            delimiter: b',',
            missing_values: &missing,
            ignore_extra_columns: true,
            columns: &columns,
            max_line_bytes: crate::data::DEFAULT_MAX_LINE_BYTES,
        };
        Table::read(
            &path,
            &path.display().to_string(),
            &opts,
            &crate::progress::Progress::hidden(),
        )
    })
    .await??)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};

    use super::*;
    use crate::data::Values;

    /// `predict --data` and `drift --data` take Parquet (`.parquet`, `.pq`) as they take CSV: the
    /// named features as floats (an int64 column too), other columns ignored, nulls missing
    /// where allowed.
    #[tokio::test]
    async fn feature_files_may_be_parquet() {
        let dir = tempfile::tempdir().unwrap();
        let columns: Vec<(&str, ArrayRef)> = vec![
            ("note", Arc::new(StringArray::from(vec!["a", "b"]))),
            ("alcohol", Arc::new(Float64Array::from(vec![Some(9.5), None]))),
            ("quality", Arc::new(Int64Array::from(vec![5, 6]))),
        ];
        let batch = RecordBatch::try_from_iter(columns).unwrap();
        for name in ["rows.parquet", "rows.pq"] {
            let path = dir.path().join(name);
            let mut writer =
                parquet::arrow::ArrowWriter::try_new(std::fs::File::create(&path).unwrap(), batch.schema(), None)
                    .unwrap();
            writer.write(&batch).unwrap();
            writer.close().unwrap();
            let names = ["quality".to_owned(), "alcohol".to_owned()];
            let table = read_features(&path, &names, &[false, true], false).await.unwrap();
            assert_eq!(table.names(), ["quality", "alcohol"]);
            assert_eq!(table.columns[0].values, Values::Number(vec![Some(5.0), Some(6.0)]));
            assert_eq!(table.columns[1].values, Values::Number(vec![Some(9.5), None]));
            let err = read_features(&path, &names, &[false, false], false)
                .await
                .unwrap_err()
                .to_string();
            assert!(
                err.ends_with(&format!(
                    "{name}: row group 1, row 2, column 'alcohol': null in a column that is not nullable"
                )),
                "{err}"
            );
        }
    }
}
