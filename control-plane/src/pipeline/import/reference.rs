//! `--reference-data FILE.csv [--target COL]`: rows in an imported model's feature space.
//!
//! The header must name every feature of the model (any order) and nothing else but the target.
//! A cell may be empty, `NA` or `NaN` only for a feature the model takes missing
//! ([`ModelIr::accepts_missing`]); infinities are refused everywhere.

use std::path::Path;

use anyhow::{Context, bail};
use model_wasm::{ModelIr, Output};

use crate::data::{ColumnSpec, ColumnType, Format, ReadOptions, Table, Values};
use crate::train::Targets;

/// The reference rows of an import.
#[derive(Debug, Clone)]
pub(crate) struct ReferenceRows {
    /// As read, for the drift reference profile.
    pub table: Table,
    /// IR feature order, NaN where missing.
    pub rows: Vec<Vec<f64>>,
    /// The target, when one was named.
    pub targets: Option<Targets>,
}

/// Reads and checks the reference data of `ir` (the file's errors name it, the row and the column).
pub(crate) fn read(path: &Path, ir: &ModelIr, target: Option<&str>) -> anyhow::Result<ReferenceRows> {
    let name = path.display().to_string();
    check_header(path, &name, &ir.features, target)?;
    let accepts = ir.accepts_missing();
    let mut columns: Vec<ColumnSpec> = ir
        .features
        .iter()
        .map(|f| ColumnSpec {
            name: f.clone(),
            ty: ColumnType::Float,
            nullable: true,
            allow_non_finite: true,
        })
        .collect();
    let classification = matches!(ir.output, Output::Classification { .. });
    if let Some(target) = target {
        columns.push(ColumnSpec {
            name: target.to_owned(),
            ty: if classification {
                ColumnType::String
            } else {
                ColumnType::Float
            },
            nullable: false,
            allow_non_finite: false,
        });
    }
    let missing = vec![String::new(), "NA".to_owned(), "NaN".to_owned(), "nan".to_owned()];
    let opts = ReadOptions {
        format: Format::Csv,
        delimiter: b',',
        missing_values: &missing,
        ignore_extra_columns: true,
        columns: &columns,
        max_line_bytes: crate::data::DEFAULT_MAX_LINE_BYTES,
    };
    let table = Table::read(path, &name, &opts, &crate::progress::Progress::hidden())?;
    let n_rows = table.rows();
    let mut rows = vec![vec![0.0; ir.n_features()]; n_rows];
    for (j, feature) in ir.features.iter().enumerate() {
        let column = table.column(feature).expect("a declared column");
        let Values::Number(values) = &column.values else {
            bail!("{name}: column '{feature}' is not numeric");
        };
        for (r, value) in values.iter().enumerate() {
            let x = value.unwrap_or(f64::NAN);
            if x.is_infinite() {
                bail!("{name}: row {}, column '{feature}': {x} is not a finite number", r + 1);
            }
            if x.is_nan() && !accepts[j] {
                bail!(
                    "{name}: row {}, column '{feature}': the value is missing, and the model has no rule for a \
                     missing '{feature}' (only features its splits route missing values for may be empty)",
                    r + 1
                );
            }
            rows[r][j] = x;
        }
    }
    let targets = match target {
        None => None,
        Some(target) => {
            let column = table.column(target).expect("a declared column");
            Some(match &ir.output {
                Output::Classification { classes } => {
                    let mut y = Vec::with_capacity(n_rows);
                    for r in 0..n_rows {
                        let text = column.values.text(r);
                        let k = classes.iter().position(|c| *c == text).with_context(|| {
                            format!(
                                "{name}: row {}, column '{target}': '{text}' is not one of the model's classes {classes:?} \
                                 (name them with --classes if the file has none)",
                                r + 1
                            )
                        })?;
                        y.push(k);
                    }
                    Targets::Classes(y)
                }
                Output::Regression { .. } => {
                    let values = column
                        .numbers()
                        .with_context(|| format!("{name}: column '{target}' is not numeric"))?;
                    Targets::Values(values.iter().map(|v| v.unwrap_or(f64::NAN)).collect())
                }
            })
        }
    };
    Ok(ReferenceRows { table, rows, targets })
}

/// The header names the model's features, in any order, and the target; nothing else.
fn check_header(path: &Path, name: &str, features: &[String], target: Option<&str>) -> anyhow::Result<()> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_path(path)
        .with_context(|| format!("cannot read {name}"))?;
    let mut record = csv::ByteRecord::new();
    let read = reader
        .read_byte_record(&mut record)
        .with_context(|| format!("{name}: cannot read the header"))?;
    if !read {
        bail!("{name}: the file is empty (no header, no rows)");
    }
    let header: Vec<String> = record
        .iter()
        .enumerate()
        .map(|(i, field)| {
            let field = if i == 0 {
                field.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(field)
            } else {
                field
            };
            String::from_utf8_lossy(field).trim().to_owned()
        })
        .collect();
    let quoted = |names: Vec<&str>| names.iter().map(|n| format!("'{n}'")).collect::<Vec<_>>().join(", ");
    if let Some(target) = target {
        if features.iter().any(|f| f == target) {
            bail!("--target '{target}' is one of the model's features, not a target");
        }
        if !header.iter().any(|h| h == target) {
            bail!(
                "{name}: the target column '{target}' (--target) is not in the header (columns: {})",
                quoted(header.iter().map(String::as_str).collect())
            );
        }
    }
    let missing: Vec<&str> = features
        .iter()
        .filter(|f| !header.contains(f))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        bail!(
            "{name}: the header lacks the model's feature(s) {} (the model takes {})",
            quoted(missing),
            quoted(features.iter().map(String::as_str).collect())
        );
    }
    let extra: Vec<&str> = header
        .iter()
        .filter(|h| !features.contains(h) && Some(h.as_str()) != target)
        .map(String::as_str)
        .collect();
    if !extra.is_empty() {
        let hint = if target.is_none() {
            " (name the target column with --target)"
        } else {
            ""
        };
        bail!(
            "{name}: column(s) {} are not features of the model{hint} (the model takes {})",
            quoted(extra),
            quoted(features.iter().map(String::as_str).collect())
        );
    }
    let mut seen = std::collections::BTreeSet::new();
    if let Some(twice) = header.iter().find(|h| !seen.insert(h.as_str())) {
        bail!("{name}: column '{twice}' appears twice in the header");
    }
    Ok(())
}
