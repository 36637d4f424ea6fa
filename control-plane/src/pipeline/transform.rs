//! transform: the declarative steps of `pipeline.toml`, then a seeded (and for classification,
//! stratified) train/test split. Both splits are stored content-addressed as CSV.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use super::ingest::{IngestOutput, md5_file, read_options, reading_config};
use super::{Pipeline, StepName, Summary};
use crate::config::{PipelineConfig, TaskKind};
use crate::data::{ColumnSpec, Encoding, apply_step, split_indices};
use crate::data::{ColumnType, Table};
use crate::dataset::dvc_key;
use crate::dataset::{DataFile, load_split};
use crate::digest::sha256_hex;
use crate::progress::Progress;
use crate::store::Key;

/// What transform produced.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct TransformOutput {
    /// Schema of the processed data (train and test share it).
    pub columns: Vec<ColumnSpec>,
    pub target: String,
    pub task: TaskKind,
    /// Classes of the target, sorted (classification only).
    #[serde(default)]
    pub classes: Vec<String>,
    pub encodings: BTreeMap<String, Encoding>,
    pub rows_in: u64,
    pub rows_out: u64,
    /// Rows removed, by the step that removed them.
    pub dropped: BTreeMap<String, u64>,
    pub train: DataFile,
    pub test: DataFile,
}

impl Summary for TransformOutput {
    fn summary(&self) -> String {
        format!(
            "{} -> {} rows, {} columns, train {} / test {}",
            self.rows_in,
            self.rows_out,
            self.columns.len(),
            self.train.rows,
            self.test.rows
        )
    }
}

impl TransformOutput {
    /// Reads the stored train and test tables back.
    pub(super) async fn load(&self, store: &dyn crate::store::ObjectStore) -> anyhow::Result<(Table, Table)> {
        load_split(store, &self.train, &self.test, &self.columns, "the processed data").await
    }
}

pub(super) async fn prepare(p: &Pipeline<'_>) -> anyhow::Result<(String, IngestOutput)> {
    let ingest: IngestOutput = p.outputs_of(StepName::Ingest).await?;
    let c = &p.config;
    let shape = serde_json::json!({ "transform": c.transform, "split": c.split, "task": c.task }).to_string();
    let digest = sha256_hex(&["transform", &ingest.md5, &reading_config(p), &shape]);
    Ok((digest, ingest))
}

pub(super) async fn run(p: &Pipeline<'_>, ingest: IngestOutput) -> anyhow::Result<TransformOutput> {
    let tmp = tempfile::tempdir()?;
    let raw = tmp.path().join("raw");
    p.store
        .get_to_file(&Key::new(ingest.raw_key.clone())?, &raw)
        .await
        .context("cannot read the ingested data back from the store")?;
    let config = p.config.clone();
    let dir = tmp.path().to_owned();
    let (output, files) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let table = Table::read(&raw, &ingest.source, &read_options(&config), &Progress::hidden())?;
        let rows_in = table.rows() as u64;
        let shaped = apply(&config, table)?;
        let (train, test) = split(&config, &shaped.table)?;
        let mut files = Vec::new();
        let mut refs = Vec::new();
        for (name, part) in [("train.csv", &train), ("test.csv", &test)] {
            let path = dir.join(name);
            part.write_csv(&path)?;
            let md5 = md5_file(&path)?;
            let size = std::fs::metadata(&path)?.len();
            refs.push(DataFile {
                key: dvc_key(&md5).to_string(),
                md5,
                size,
                rows: part.rows() as u64,
            });
            files.push(path);
        }
        let test_ref = refs.pop().expect("two files");
        let train_ref = refs.pop().expect("two files");
        let output = TransformOutput {
            columns: shaped.table.specs(),
            target: config.task.target.clone(),
            task: config.task.kind,
            classes: shaped.classes,
            encodings: shaped.encodings,
            rows_in,
            rows_out: shaped.table.rows() as u64,
            dropped: shaped.dropped,
            train: train_ref,
            test: test_ref,
        };
        Ok((output, files))
    })
    .await??;
    for (file, data) in files.iter().zip([&output.train, &output.test]) {
        let key = Key::new(data.key.clone())?;
        if !p.store.exists(&key).await? {
            p.store
                .put_file(&key, file)
                .await
                .with_context(|| format!("cannot store processed data in {}", p.store.describe()))?;
        }
    }
    Ok(output)
}

/// The transformed table and what the transforms recorded.
#[derive(Debug)]
pub(super) struct Shaped {
    pub table: Table,
    pub encodings: BTreeMap<String, Encoding>,
    pub dropped: BTreeMap<String, u64>,
    pub classes: Vec<String>,
}

/// Applies the config's transforms in order and checks the target.
pub(super) fn apply(config: &PipelineConfig, mut table: Table) -> anyhow::Result<Shaped> {
    let mut encodings = BTreeMap::new();
    let mut dropped: BTreeMap<String, u64> = BTreeMap::new();
    for (i, step) in config.transform.iter().enumerate() {
        let at = format!("transform step {} ({})", i + 1, step.name());
        let before = table.rows();
        apply_step(&mut table, step, &mut encodings).with_context(|| at.clone())?;
        if table.rows() < before {
            *dropped.entry(step.name().to_owned()).or_default() += (before - table.rows()) as u64;
        }
        if table.rows() == 0 {
            bail!("{at} left no rows");
        }
    }
    let target = &config.task.target;
    let column = table
        .column(target)
        .with_context(|| format!("task.target '{target}' is not a column after the transforms"))?;
    let missing = column.values.missing_count();
    if missing > 0 {
        bail!("task.target '{target}' has {missing} missing values: drop or fill them in a transform step");
    }
    let classes = match config.task.kind {
        TaskKind::Classification => {
            if column.ty == ColumnType::Float {
                bail!(
                    "task.target '{target}' is a float column: classification needs classes (derive a label, or cast it to integer or categorical)"
                );
            }
            let set: BTreeSet<String> = (0..table.rows()).map(|r| column.values.text(r)).collect();
            let mut classes: Vec<String> = set.into_iter().collect();
            if column.ty.is_numeric() {
                classes.sort_by(|a, b| {
                    a.parse::<f64>()
                        .unwrap_or(0.0)
                        .total_cmp(&b.parse::<f64>().unwrap_or(0.0))
                });
            }
            classes
        }
        TaskKind::Regression => {
            if !column.ty.is_numeric() {
                bail!(
                    "task.target '{target}' is a {} column: regression needs a number",
                    column.ty
                );
            }
            Vec::new()
        }
    };
    Ok(Shaped {
        table,
        encodings,
        dropped,
        classes,
    })
}

fn split(config: &PipelineConfig, table: &Table) -> anyhow::Result<(Table, Table)> {
    let target = table.column(&config.task.target).expect("checked by apply");
    let groups: Vec<String> = (0..table.rows()).map(|r| target.values.text(r)).collect();
    let (train, test) = split_indices(
        &groups,
        config.split.test_fraction,
        config.split.seed,
        config.stratify(),
    );
    if test.is_empty() || train.is_empty() {
        bail!(
            "the split of {} rows with test_fraction {} leaves an empty part: more rows are needed",
            table.rows(),
            config.split.test_fraction
        );
    }
    Ok((table.take(&train), table.take(&test)))
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::data::{Column, Values};

    fn table() -> Table {
        Table {
            columns: vec![
                Column {
                    name: "x".into(),
                    ty: ColumnType::Float,
                    values: Values::Number(vec![Some(1.0), None, Some(3.0), Some(3.0), Some(8.0)]),
                },
                Column {
                    name: "colour".into(),
                    ty: ColumnType::Categorical,
                    values: Values::Text(vec![
                        Some("red".into()),
                        Some("white".into()),
                        None,
                        None,
                        Some("red".into()),
                    ]),
                },
                Column {
                    name: "q".into(),
                    ty: ColumnType::Integer,
                    values: Values::Number(vec![Some(5.0), Some(6.0), Some(7.0), Some(7.0), Some(4.0)]),
                },
            ],
        }
    }

    fn config(transforms: &str) -> PipelineConfig {
        let text = format!(
            r#"
[dataset]
name = "t"
source = "t.csv"
columns = [{{ name = "x", type = "float", nullable = true }}, {{ name = "colour", type = "categorical", nullable = true }}, {{ name = "q", type = "integer" }}]
{transforms}
[task]
kind = "classification"
target = "good"
"#
        );
        PipelineConfig::parse(&text, PathBuf::new()).unwrap()
    }

    const LABEL: &str = "[[transform]]\nop = \"derive_label\"\nsource = \"q\"\ntarget = \"good\"\nthreshold = 6\n";

    #[test]
    fn derive_fill_encode_and_deduplicate() {
        let transforms = format!(
            "{LABEL}[[transform]]\nop = \"fill_missing\"\ncolumns = [\"x\"]\nstrategy = \"mean\"\n\
             [[transform]]\nop = \"fill_missing\"\ncolumns = [\"colour\"]\nstrategy = \"constant\"\nvalue = \"unknown\"\n\
             [[transform]]\nop = \"encode\"\ncolumn = \"colour\"\nmethod = \"one_hot\"\n\
             [[transform]]\nop = \"deduplicate\"\n"
        );
        let shaped = apply(&config(&transforms), table()).unwrap();
        let t = &shaped.table;
        assert_eq!(
            t.names(),
            ["x", "colour=red", "colour=unknown", "colour=white", "q", "good"]
        );
        // Rows 3 and 4 were equal after filling: one is gone.
        assert_eq!(t.rows(), 4);
        assert_eq!(shaped.dropped["deduplicate"], 1);
        assert_eq!(
            t.column("x").unwrap().values,
            Values::Number(vec![Some(1.0), Some(3.75), Some(3.0), Some(8.0)])
        );
        assert_eq!(
            t.column("good").unwrap().values,
            Values::Number(vec![Some(0.0), Some(1.0), Some(1.0), Some(0.0)])
        );
        assert_eq!(t.column("colour=unknown").unwrap().values.text(2), "1");
        assert_eq!(shaped.encodings["colour"].categories, ["red", "unknown", "white"]);
        assert_eq!(shaped.classes, ["0", "1"]);
    }

    #[test]
    fn ordinal_encoding_with_fixed_categories_refuses_others() {
        let transforms = format!(
            "{LABEL}[[transform]]\nop = \"encode\"\ncolumn = \"colour\"\nmethod = \"ordinal\"\ncategories = [\"white\", \"red\"]\n"
        );
        let shaped = apply(&config(&transforms), table()).unwrap();
        assert_eq!(
            shaped.table.column("colour").unwrap().values,
            Values::Number(vec![Some(1.0), Some(0.0), None, None, Some(1.0)])
        );
        let transforms = format!(
            "{LABEL}[[transform]]\nop = \"encode\"\ncolumn = \"colour\"\nmethod = \"ordinal\"\ncategories = [\"white\"]\n"
        );
        let err = format!("{:#}", apply(&config(&transforms), table()).unwrap_err());
        assert!(
            err.contains("row 1, column 'colour': 'red' is not among the categories"),
            "{err}"
        );
    }

    #[test]
    fn missing_target_values_are_an_error() {
        let transforms = "[[transform]]\nop = \"derive_label\"\nsource = \"x\"\ntarget = \"good\"\nthreshold = 2\n";
        let err = apply(&config(transforms), table()).unwrap_err().to_string();
        assert_eq!(
            err,
            "task.target 'good' has 1 missing values: drop or fill them in a transform step"
        );
    }

    #[test]
    fn cast_names_the_row_that_does_not_convert() {
        let transforms = format!("{LABEL}[[transform]]\nop = \"cast\"\ncolumn = \"colour\"\nto = \"float\"\n");
        let err = format!("{:#}", apply(&config(&transforms), table()).unwrap_err());
        assert_eq!(
            err,
            "transform step 2 (cast): row 1, column 'colour': 'red' is not a float"
        );
    }

    #[test]
    fn split_is_seeded_stratified_and_complete() {
        let groups: Vec<String> = (0..1000)
            .map(|i| if i % 4 == 0 { "a" } else { "b" }.to_owned())
            .collect();
        let (train, test) = split_indices(&groups, 0.2, 7, true);
        assert_eq!(train.len() + test.len(), 1000);
        assert_eq!(test.len(), 200);
        let test_a = test.iter().filter(|&&i| groups[i] == "a").count();
        assert_eq!(test_a, 50, "class shares kept");
        assert_eq!(
            split_indices(&groups, 0.2, 7, true),
            (train.clone(), test.clone()),
            "same seed, same split"
        );
        assert_ne!(
            split_indices(&groups, 0.2, 8, true).1,
            test,
            "another seed, another split"
        );
        let all: BTreeSet<usize> = train.iter().chain(&test).copied().collect();
        assert_eq!(all.len(), 1000, "no row lost or repeated");
    }
}
