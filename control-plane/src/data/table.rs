//! The in-memory table the transform, validate and profile steps work on.

use std::io::Write;
use std::path::Path;

use super::{Cell, ColumnType, DataError, ReadOptions, scan};
use crate::data::{ColumnSpec, Format};
use crate::progress::Progress;

/// A column's values; `None` is a missing value.
#[derive(Debug, Clone, PartialEq)]
pub enum Values {
    /// Float and integer columns.
    Number(Vec<Option<f64>>),
    Bool(Vec<Option<bool>>),
    /// Categorical and string columns.
    Text(Vec<Option<String>>),
}

impl Values {
    fn empty(ty: ColumnType) -> Values {
        match ty {
            ColumnType::Float | ColumnType::Integer => Values::Number(Vec::new()),
            ColumnType::Boolean => Values::Bool(Vec::new()),
            ColumnType::Categorical | ColumnType::String => Values::Text(Vec::new()),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Values::Number(v) => v.len(),
            Values::Bool(v) => v.len(),
            Values::Text(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn is_missing(&self, row: usize) -> bool {
        match self {
            Values::Number(v) => v[row].is_none(),
            Values::Bool(v) => v[row].is_none(),
            Values::Text(v) => v[row].is_none(),
        }
    }

    pub fn missing_count(&self) -> usize {
        (0..self.len()).filter(|&i| self.is_missing(i)).count()
    }

    /// The value of `row` as text (numbers in their shortest round-trip form, missing as "").
    pub fn text(&self, row: usize) -> String {
        match self {
            Values::Number(v) => v[row].map(|x| x.to_string()).unwrap_or_default(),
            Values::Bool(v) => v[row].map(|x| x.to_string()).unwrap_or_default(),
            Values::Text(v) => v[row].clone().unwrap_or_default(),
        }
    }

    /// Keeps the rows where `keep` is true.
    pub fn retain(&mut self, keep: &[bool]) {
        fn go<T>(v: &mut Vec<T>, keep: &[bool]) {
            let mut i = 0;
            v.retain(|_| {
                i += 1;
                keep[i - 1]
            });
        }
        match self {
            Values::Number(v) => go(v, keep),
            Values::Bool(v) => go(v, keep),
            Values::Text(v) => go(v, keep),
        }
    }

    /// The rows at `indices`, in that order.
    pub fn take(&self, indices: &[usize]) -> Values {
        match self {
            Values::Number(v) => Values::Number(indices.iter().map(|&i| v[i]).collect()),
            Values::Bool(v) => Values::Bool(indices.iter().map(|&i| v[i]).collect()),
            Values::Text(v) => Values::Text(indices.iter().map(|&i| v[i].clone()).collect()),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub name: String,
    pub ty: ColumnType,
    pub values: Values,
}

impl Column {
    /// The spec this column would be declared with (nullable when it has missing values).
    pub fn spec(&self) -> ColumnSpec {
        let non_finite = matches!(&self.values, Values::Number(v) if v.iter().flatten().any(|x| !x.is_finite()));
        ColumnSpec {
            name: self.name.clone(),
            ty: self.ty,
            nullable: self.values.missing_count() > 0,
            allow_non_finite: non_finite,
        }
    }

    /// The numbers of a numeric column (`None` for other types).
    pub fn numbers(&self) -> Option<&[Option<f64>]> {
        match &self.values {
            Values::Number(v) => Some(v),
            _ => None,
        }
    }
}

/// Columns of equal length.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Table {
    pub columns: Vec<Column>,
}

impl Table {
    /// Reads a whole file into memory through the checking reader.
    pub fn read(path: &Path, name: &str, opts: &ReadOptions<'_>, progress: &Progress) -> Result<Table, DataError> {
        let mut columns: Vec<Column> = opts
            .columns
            .iter()
            .map(|c| Column {
                name: c.name.clone(),
                ty: c.ty,
                values: Values::empty(c.ty),
            })
            .collect();
        scan(path, name, opts, progress, |_, cells| {
            for (column, cell) in columns.iter_mut().zip(cells) {
                match (&mut column.values, *cell) {
                    (Values::Number(v), Cell::Number(x)) => v.push(Some(x)),
                    (Values::Number(v), Cell::Missing) => v.push(None),
                    (Values::Bool(v), Cell::Bool(b)) => v.push(Some(b)),
                    (Values::Bool(v), Cell::Missing) => v.push(None),
                    (Values::Text(v), Cell::Text(s)) => v.push(Some(s.to_owned())),
                    (Values::Text(v), Cell::Missing) => v.push(None),
                    (_, cell) => unreachable!("reader produced {cell:?} for a {} column", column.ty),
                }
            }
            Ok(())
        })?;
        Ok(Table { columns })
    }

    /// Reads a CSV file this module wrote, given its column specs.
    pub fn read_csv(path: &Path, columns: &[ColumnSpec]) -> Result<Table, DataError> {
        let missing = [String::new()];
        let opts = ReadOptions {
            format: Format::Csv,
            delimiter: b',',
            missing_values: &missing,
            ignore_extra_columns: false,
            columns,
            max_line_bytes: crate::data::DEFAULT_MAX_LINE_BYTES,
        };
        Table::read(path, &path.display().to_string(), &opts, &Progress::hidden())
    }

    pub fn rows(&self) -> usize {
        self.columns.first().map_or(0, |c| c.values.len())
    }

    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    pub fn column_mut(&mut self, name: &str) -> Option<&mut Column> {
        self.columns.iter_mut().find(|c| c.name == name)
    }

    pub fn position(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }

    pub fn names(&self) -> Vec<&str> {
        self.columns.iter().map(|c| c.name.as_str()).collect()
    }

    pub fn specs(&self) -> Vec<ColumnSpec> {
        self.columns.iter().map(Column::spec).collect()
    }

    /// Keeps the rows where `keep` is true.
    pub fn retain_rows(&mut self, keep: &[bool]) {
        for c in &mut self.columns {
            c.values.retain(keep);
        }
    }

    /// The rows of several tables with the same columns, one after the other.
    pub fn concat(tables: &[&Table]) -> Table {
        let mut out = tables.first().map(|t| (*t).clone()).unwrap_or_default();
        for t in tables.iter().skip(1) {
            for (into, from) in out.columns.iter_mut().zip(&t.columns) {
                match (&mut into.values, &from.values) {
                    (Values::Number(a), Values::Number(b)) => a.extend_from_slice(b),
                    (Values::Bool(a), Values::Bool(b)) => a.extend_from_slice(b),
                    (Values::Text(a), Values::Text(b)) => a.extend_from_slice(b),
                    _ => panic!("concat of tables with different column types"),
                }
            }
        }
        out
    }

    /// A table of the rows at `indices`.
    pub fn take(&self, indices: &[usize]) -> Table {
        Table {
            columns: self
                .columns
                .iter()
                .map(|c| Column {
                    name: c.name.clone(),
                    ty: c.ty,
                    values: c.values.take(indices),
                })
                .collect(),
        }
    }

    /// Writes the table as CSV: header, numbers in shortest round-trip form, missing as empty
    /// fields. The same table always gives the same bytes, so its MD5 identifies it.
    pub fn write_csv(&self, path: &Path) -> Result<(), DataError> {
        let file = std::fs::File::create(path).map_err(|e| DataError::io(path, e))?;
        let mut out = csv::WriterBuilder::new().from_writer(std::io::BufWriter::new(file));
        let write_err = |e: csv::Error| DataError::file(path.display().to_string(), e.to_string());
        out.write_record(self.names()).map_err(write_err)?;
        let mut record: Vec<String> = Vec::with_capacity(self.columns.len());
        for row in 0..self.rows() {
            record.clear();
            record.extend(self.columns.iter().map(|c| c.values.text(row)));
            out.write_record(&record).map_err(write_err)?;
        }
        let mut inner = out
            .into_inner()
            .map_err(|e| DataError::file(path.display().to_string(), e.to_string()))?;
        inner.flush().map_err(|e| DataError::io(path, e))
    }
}
