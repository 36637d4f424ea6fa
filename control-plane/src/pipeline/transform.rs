//! transform: the declarative steps of `pipeline.toml`, then a seeded (and for classification,
//! stratified) train/test split. Both splits are stored content-addressed as CSV.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use super::ingest::{IngestOutput, md5_file, read_options, reading_config};
use super::{Pipeline, StepName, Summary, dvc_key, sha256_hex};
use crate::config::{ColumnSpec, EncodeMethod, FillStrategy, PipelineConfig, TaskKind, TransformStep};
use crate::data::{Column, ColumnType, Table, Values};
use crate::progress::Progress;
use crate::rng::SplitMix64;
use crate::store::Key;

/// A stored file of the processed data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataFile {
    pub key: String,
    pub md5: String,
    pub size: u64,
    pub rows: u64,
}

/// How a categorical column was encoded (the model's preprocessing needs it later).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Encoding {
    pub method: EncodeMethod,
    pub categories: Vec<String>,
}

/// What transform produced.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TransformOutput {
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
    pub async fn load(&self, store: &dyn crate::store::ObjectStore) -> anyhow::Result<(Table, Table)> {
        load_split(store, &self.train, &self.test, &self.columns, "the processed data").await
    }
}

/// Downloads a train/test pair of processed CSV files and reads them with `columns`; `what` names
/// them in errors.
pub(crate) async fn load_split(
    store: &dyn crate::store::ObjectStore,
    train: &DataFile,
    test: &DataFile,
    columns: &[ColumnSpec],
    what: &str,
) -> anyhow::Result<(Table, Table)> {
    let tmp = tempfile::tempdir()?;
    let mut tables = Vec::new();
    for (name, file) in [("train.csv", train), ("test.csv", test)] {
        let path = tmp.path().join(name);
        store
            .get_to_file(&Key::new(file.key.clone())?, &path)
            .await
            .with_context(|| format!("cannot read {name} of {what} from the store"))?;
        let columns = columns.to_vec();
        tables.push(tokio::task::spawn_blocking(move || Table::read_csv(&path, &columns)).await??);
    }
    let test = tables.pop().expect("two tables");
    let train = tables.pop().expect("two tables");
    Ok((train, test))
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
pub struct Shaped {
    pub table: Table,
    pub encodings: BTreeMap<String, Encoding>,
    pub dropped: BTreeMap<String, u64>,
    pub classes: Vec<String>,
}

/// Applies the config's transforms in order and checks the target.
pub fn apply(config: &PipelineConfig, mut table: Table) -> anyhow::Result<Shaped> {
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

fn col_mut<'t>(table: &'t mut Table, name: &str) -> anyhow::Result<&'t mut Column> {
    table
        .column_mut(name)
        .with_context(|| format!("unknown column '{name}'"))
}

fn apply_step(
    table: &mut Table,
    step: &TransformStep,
    encodings: &mut BTreeMap<String, Encoding>,
) -> anyhow::Result<()> {
    match step {
        TransformStep::Select { columns } => {
            let mut kept = Vec::with_capacity(columns.len());
            for name in columns {
                let i = table
                    .position(name)
                    .with_context(|| format!("unknown column '{name}'"))?;
                kept.push(table.columns[i].clone());
            }
            table.columns = kept;
        }
        TransformStep::Drop { columns } => table.columns.retain(|c| !columns.contains(&c.name)),
        TransformStep::Rename { columns } => {
            for c in &mut table.columns {
                if let Some(new) = columns.get(&c.name) {
                    c.name = new.clone();
                }
            }
        }
        TransformStep::Cast { column, to } => cast(col_mut(table, column)?, *to)?,
        TransformStep::FillMissing {
            columns,
            strategy,
            value,
        } => {
            let names: Vec<String> = if columns.is_empty() {
                table.columns.iter().map(|c| c.name.clone()).collect()
            } else {
                columns.clone()
            };
            for name in names {
                fill(col_mut(table, &name)?, *strategy, value.as_ref())?;
            }
        }
        TransformStep::DropMissing { columns } => {
            let keep: Vec<bool> = (0..table.rows())
                .map(|r| {
                    table
                        .columns
                        .iter()
                        .filter(|c| columns.is_empty() || columns.contains(&c.name))
                        .all(|c| !c.values.is_missing(r))
                })
                .collect();
            table.retain_rows(&keep);
        }
        TransformStep::DeriveLabel {
            source,
            target,
            threshold,
            inclusive,
            labels,
        } => {
            let src = table
                .column(source)
                .with_context(|| format!("unknown column '{source}'"))?;
            let numbers = src
                .numbers()
                .with_context(|| format!("column '{source}' is a {} column: derive_label needs numbers", src.ty))?;
            let above = |x: f64| if *inclusive { x >= *threshold } else { x > *threshold };
            let (ty, values) = match labels {
                Some([below, at_or_above]) => (
                    ColumnType::Categorical,
                    Values::Text(
                        numbers
                            .iter()
                            .map(|x| x.map(|x| if above(x) { at_or_above.clone() } else { below.clone() }))
                            .collect(),
                    ),
                ),
                None => (
                    ColumnType::Integer,
                    Values::Number(
                        numbers
                            .iter()
                            .map(|x| x.map(|x| if above(x) { 1.0 } else { 0.0 }))
                            .collect(),
                    ),
                ),
            };
            let column = Column {
                name: target.clone(),
                ty,
                values,
            };
            match table.position(target) {
                Some(i) => table.columns[i] = column,
                None => table.columns.push(column),
            }
        }
        TransformStep::Encode {
            column,
            method,
            categories,
        } => {
            let i = table
                .position(column)
                .with_context(|| format!("unknown column '{column}'"))?;
            let (new_columns, encoding) = encode(&table.columns[i], *method, categories.as_deref())?;
            table.columns.splice(i..=i, new_columns);
            encodings.insert(column.clone(), encoding);
        }
        TransformStep::Deduplicate { columns } => {
            let cols: Vec<&Column> = table
                .columns
                .iter()
                .filter(|c| columns.is_empty() || columns.contains(&c.name))
                .collect();
            let mut seen = HashSet::with_capacity(table.rows());
            let keep: Vec<bool> = (0..table.rows())
                .map(|r| {
                    // Missing and empty text must not collide: tag each value.
                    let key: Vec<(bool, String)> = cols
                        .iter()
                        .map(|c| (c.values.is_missing(r), c.values.text(r)))
                        .collect();
                    seen.insert(key)
                })
                .collect();
            table.retain_rows(&keep);
        }
    }
    Ok(())
}

/// Encodes one column; values outside given categories are errors naming the row.
fn encode(
    src: &Column,
    method: EncodeMethod,
    categories: Option<&[String]>,
) -> anyhow::Result<(Vec<Column>, Encoding)> {
    let name = &src.name;
    let texts: Vec<Option<String>> = (0..src.values.len())
        .map(|r| (!src.values.is_missing(r)).then(|| src.values.text(r)))
        .collect();
    let cats: Vec<String> = match categories {
        Some(c) => c.to_vec(),
        None => texts
            .iter()
            .flatten()
            .cloned()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect(),
    };
    if method == EncodeMethod::OneHot && categories.is_none() && cats.len() > 100 {
        bail!(
            "column '{name}' has {} distinct values: one-hot encoding it would make as many columns",
            cats.len()
        );
    }
    let index: BTreeMap<&str, usize> = cats.iter().enumerate().map(|(k, c)| (c.as_str(), k)).collect();
    let mut codes = Vec::with_capacity(texts.len());
    for (row, t) in texts.iter().enumerate() {
        codes.push(match t {
            None => None,
            Some(t) => Some(*index.get(t.as_str()).with_context(|| {
                format!(
                    "row {}, column '{name}': '{t}' is not among the categories {cats:?}",
                    row + 1
                )
            })?),
        });
    }
    let columns = match method {
        EncodeMethod::Ordinal => vec![Column {
            name: name.clone(),
            ty: ColumnType::Integer,
            values: Values::Number(codes.iter().map(|c| c.map(|k| k as f64)).collect()),
        }],
        EncodeMethod::OneHot => cats
            .iter()
            .enumerate()
            .map(|(k, cat)| Column {
                name: format!("{name}={cat}"),
                ty: ColumnType::Integer,
                values: Values::Number(
                    codes
                        .iter()
                        .map(|c| c.map(|c| if c == k { 1.0 } else { 0.0 }))
                        .collect(),
                ),
            })
            .collect(),
    };
    Ok((
        columns,
        Encoding {
            method,
            categories: cats,
        },
    ))
}

fn cast(c: &mut Column, to: ColumnType) -> anyhow::Result<()> {
    let name = c.name.clone();
    let err = |row: usize, value: String| {
        anyhow::anyhow!("row {}, column '{name}': '{value}' is not {}", row + 1, article(to))
    };
    let values = match (&c.values, to) {
        (Values::Number(v), ColumnType::Float) => Values::Number(v.clone()),
        (Values::Number(v), ColumnType::Integer) => {
            if let Some((r, x)) = v
                .iter()
                .enumerate()
                .find_map(|(r, x)| x.filter(|x| x.fract() != 0.0).map(|x| (r, x)))
            {
                return Err(err(r, x.to_string()));
            }
            Values::Number(v.clone())
        }
        (Values::Bool(v), ColumnType::Float | ColumnType::Integer) => {
            Values::Number(v.iter().map(|b| b.map(|b| if b { 1.0 } else { 0.0 })).collect())
        }
        (Values::Text(v), ColumnType::Float | ColumnType::Integer) => {
            let mut out = Vec::with_capacity(v.len());
            for (r, t) in v.iter().enumerate() {
                out.push(match t {
                    None => None,
                    Some(t) => {
                        let parsed = if to == ColumnType::Integer {
                            crate::data::parse_integer(t.trim())
                        } else {
                            t.trim().parse::<f64>().ok().filter(|x| x.is_finite())
                        };
                        Some(parsed.ok_or_else(|| err(r, t.clone()))?)
                    }
                });
            }
            Values::Number(out)
        }
        (Values::Number(v), ColumnType::Boolean) => {
            let mut out = Vec::with_capacity(v.len());
            for (r, x) in v.iter().enumerate() {
                out.push(match x {
                    None => None,
                    Some(x) if *x == 0.0 => Some(false),
                    Some(x) if *x == 1.0 => Some(true),
                    Some(x) => return Err(err(r, x.to_string())),
                });
            }
            Values::Bool(out)
        }
        (Values::Text(v), ColumnType::Boolean) => {
            let mut out = Vec::with_capacity(v.len());
            for (r, t) in v.iter().enumerate() {
                out.push(match t {
                    None => None,
                    Some(t) => Some(crate::data::parse_bool(t.trim()).ok_or_else(|| err(r, t.clone()))?),
                });
            }
            Values::Bool(out)
        }
        (Values::Bool(v), ColumnType::Boolean) => Values::Bool(v.clone()),
        (values, ColumnType::Categorical | ColumnType::String) => Values::Text(
            (0..values.len())
                .map(|r| (!values.is_missing(r)).then(|| values.text(r)))
                .collect(),
        ),
    };
    c.values = values;
    c.ty = to;
    Ok(())
}

fn article(ty: ColumnType) -> String {
    match ty {
        ColumnType::Integer => "an integer".into(),
        other => format!("a {other}"),
    }
}

fn fill(c: &mut Column, strategy: FillStrategy, value: Option<&toml::Value>) -> anyhow::Result<()> {
    if c.values.missing_count() == 0 {
        return Ok(());
    }
    let (name, ty) = (c.name.clone(), c.ty);
    match (&mut c.values, strategy) {
        (Values::Number(v), FillStrategy::Mean | FillStrategy::Median) => {
            let mut present: Vec<f64> = v.iter().flatten().copied().collect();
            let n = present.len();
            let fill = if strategy == FillStrategy::Mean {
                present.iter().sum::<f64>() / n as f64
            } else {
                present.sort_by(f64::total_cmp);
                if n % 2 == 1 {
                    present[n / 2]
                } else {
                    (present[n / 2 - 1] + present[n / 2]) / 2.0
                }
            };
            if n == 0 {
                bail!("column '{name}' has no values to compute a fill value from");
            }
            let fill = if ty == ColumnType::Integer { fill.round() } else { fill };
            v.iter_mut().filter(|x| x.is_none()).for_each(|x| *x = Some(fill));
        }
        (_, FillStrategy::Mean | FillStrategy::Median) => {
            bail!("column '{name}' is a {ty} column: mean and median need numbers (use mode or constant)")
        }
        (values, FillStrategy::Mode) => {
            let mut counts: BTreeMap<String, usize> = BTreeMap::new();
            for r in 0..values.len() {
                if !values.is_missing(r) {
                    *counts.entry(values.text(r)).or_default() += 1;
                }
            }
            // The most frequent value; ties go to the smallest, so the result is deterministic.
            let mode = counts
                .into_iter()
                .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))
                .map(|(v, _)| v)
                .with_context(|| format!("column '{name}' has no values to take the mode of"))?;
            fill_text(values, &mode).with_context(|| format!("column '{name}'"))?;
        }
        (values, FillStrategy::Constant) => {
            let value = value.context("strategy = \"constant\" needs a value")?;
            let text = match value {
                toml::Value::String(s) => s.clone(),
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Float(f) => f.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                other => bail!("value {other} is not a number, string or boolean"),
            };
            fill_text(values, &text).with_context(|| format!("column '{name}': fill value '{text}' does not fit"))?;
        }
    }
    Ok(())
}

/// Fills missing values with `text` parsed for the column's kind of values.
fn fill_text(values: &mut Values, text: &str) -> anyhow::Result<()> {
    match values {
        Values::Number(v) => {
            let x: f64 = text
                .parse()
                .ok()
                .filter(|x: &f64| x.is_finite())
                .context("not a number")?;
            v.iter_mut().filter(|x| x.is_none()).for_each(|slot| *slot = Some(x));
        }
        Values::Bool(v) => {
            let b = crate::data::parse_bool(text).context("not a boolean")?;
            v.iter_mut().filter(|x| x.is_none()).for_each(|slot| *slot = Some(b));
        }
        Values::Text(v) => v
            .iter_mut()
            .filter(|x| x.is_none())
            .for_each(|slot| *slot = Some(text.to_owned())),
    }
    Ok(())
}

/// Row indices of the train and test parts, each sorted. Stratified: every group (class) is
/// split on its own, so class shares are the same in both parts; each class keeps at least one
/// training row.
pub fn split_indices(groups: &[String], test_fraction: f64, seed: u64, stratify: bool) -> (Vec<usize>, Vec<usize>) {
    let mut rng = SplitMix64(seed);
    let mut buckets: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, g) in groups.iter().enumerate() {
        buckets
            .entry(if stratify { g.as_str() } else { "" })
            .or_default()
            .push(i);
    }
    let (mut train, mut test) = (Vec::new(), Vec::new());
    for (_, mut rows) in buckets {
        rng.shuffle(&mut rows);
        let n_test = ((rows.len() as f64 * test_fraction).round() as usize).min(rows.len().saturating_sub(1));
        test.extend_from_slice(&rows[..n_test]);
        train.extend_from_slice(&rows[n_test..]);
    }
    train.sort_unstable();
    test.sort_unstable();
    (train, test)
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
