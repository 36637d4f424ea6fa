//! The transform ops of `pipeline.toml`'s `[[transform]]` steps, applied to a [`Table`] in memory,
//! and the seeded (optionally stratified) train/test split of row indices.

use std::collections::{BTreeMap, HashSet};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use super::{Column, ColumnType, Table, Values};
use crate::rng::SplitMix64;
use std::collections::BTreeSet;

/// One declarative transform, applied in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum TransformStep {
    /// Keep only these columns, in this order.
    Select { columns: Vec<String> },
    /// Remove these columns.
    Drop { columns: Vec<String> },
    /// Rename columns: `{ old = "new" }`.
    Rename { columns: BTreeMap<String, String> },
    /// Convert a column to another type; values that do not convert are errors.
    Cast { column: String, to: ColumnType },
    /// Replace missing values in these columns (all nullable columns when empty).
    FillMissing {
        #[serde(default)]
        columns: Vec<String>,
        strategy: FillStrategy,
        /// The value for `strategy = "constant"` (a number, or a string for text columns).
        #[serde(default)]
        value: Option<toml::Value>,
    },
    /// Drop rows with a missing value in these columns (any column when empty).
    DropMissing {
        #[serde(default)]
        columns: Vec<String>,
    },
    /// A label from a numeric column: 1 where `source` >= `threshold` (or > with
    /// `inclusive = false`), else 0; with `labels = [below, at_or_above]` a categorical column instead.
    DeriveLabel {
        source: String,
        target: String,
        threshold: f64,
        #[serde(default = "yes")]
        inclusive: bool,
        #[serde(default)]
        labels: Option<[String; 2]>,
    },
    /// Encode a categorical column as numbers: one 0/1 column per category (`one_hot`, columns named
    /// `column=category`) or one column of category indices (`ordinal`). Categories are those given,
    /// or those seen in the data, sorted.
    Encode {
        column: String,
        method: EncodeMethod,
        #[serde(default)]
        categories: Option<Vec<String>>,
    },
    /// Drop repeated rows (equal in `columns`, or in all columns when empty), keeping the first.
    Deduplicate {
        #[serde(default)]
        columns: Vec<String>,
    },
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FillStrategy {
    Mean,
    Median,
    Mode,
    Constant,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EncodeMethod {
    OneHot,
    Ordinal,
}

impl TransformStep {
    pub fn name(&self) -> &'static str {
        match self {
            TransformStep::Select { .. } => "select",
            TransformStep::Drop { .. } => "drop",
            TransformStep::Rename { .. } => "rename",
            TransformStep::Cast { .. } => "cast",
            TransformStep::FillMissing { .. } => "fill_missing",
            TransformStep::DropMissing { .. } => "drop_missing",
            TransformStep::DeriveLabel { .. } => "derive_label",
            TransformStep::Encode { .. } => "encode",
            TransformStep::Deduplicate { .. } => "deduplicate",
        }
    }
}

/// How a categorical column was encoded (the model's preprocessing needs it later).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Encoding {
    pub method: EncodeMethod,
    pub categories: Vec<String>,
}

fn col_mut<'t>(table: &'t mut Table, name: &str) -> anyhow::Result<&'t mut Column> {
    table
        .column_mut(name)
        .with_context(|| format!("unknown column '{name}'"))
}

/// Applies one step; `encodings` records how categorical columns were encoded.
pub(crate) fn apply_step(
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
pub(crate) fn split_indices(
    groups: &[String],
    test_fraction: f64,
    seed: u64,
    stratify: bool,
) -> (Vec<usize>, Vec<usize>) {
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
