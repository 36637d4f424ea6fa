//! validate: the expectations of `pipeline.toml` checked on the processed data (train and test),
//! a JSON report and a Markdown summary; a failed critical expectation stops the run.

use std::collections::HashMap;
use std::fmt::Write as _;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::transform::TransformOutput;
use super::{Pipeline, StepName, Summary};
use crate::config::{Check, Expectation, Severity};
use crate::data::{Table, Values};
use crate::digest::sha256_hex;

/// How many failing rows a result lists.
const EXAMPLES: usize = 5;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct ExpectationResult {
    /// 1-based position in the config.
    pub index: usize,
    pub expect: String,
    pub columns: Vec<String>,
    pub severity: Severity,
    pub passed: bool,
    pub checked_rows: u64,
    pub failed_rows: u64,
    /// What failed, in words.
    pub message: String,
    /// The first failing rows, as `train.csv row 17: 3.9`.
    pub examples: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct ValidationReport {
    pub dataset: String,
    pub run_id: String,
    pub rows: u64,
    /// False when a critical expectation failed.
    pub passed: bool,
    pub results: Vec<ExpectationResult>,
}

/// What validate produced.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct ValidateOutput {
    pub passed: bool,
    pub expectations: usize,
    pub warnings: usize,
    pub report_json: String,
    pub report_md: String,
}

impl Summary for ValidateOutput {
    fn summary(&self) -> String {
        format!(
            "{} expectations passed{}, report {}",
            self.expectations - self.warnings,
            if self.warnings > 0 {
                format!(", {} warnings", self.warnings)
            } else {
                String::new()
            },
            self.report_md
        )
    }
}

pub(super) async fn prepare(p: &Pipeline<'_>) -> anyhow::Result<(String, TransformOutput)> {
    let t: TransformOutput = p.outputs_of(StepName::Transform).await?;
    let expectations = serde_json::to_string(&p.config.expectations)?;
    Ok((sha256_hex(&["validate", &t.train.md5, &t.test.md5, &expectations]), t))
}

pub(super) async fn run(p: &Pipeline<'_>, t: TransformOutput) -> anyhow::Result<ValidateOutput> {
    let (train, test) = t.load(p.store).await?;
    let report = validate(
        &p.config.dataset.name,
        &p.run_id,
        &p.config.expectations,
        &[("train.csv", &train), ("test.csv", &test)],
    );
    let json_key = p.artifact_key(StepName::Validate, "report.json");
    let md_key = p.artifact_key(StepName::Validate, "report.md");
    p.store
        .put(&json_key, Bytes::from(serde_json::to_vec_pretty(&report)?))
        .await?;
    p.store.put(&md_key, Bytes::from(markdown(&report))).await?;
    if !report.passed {
        let mut message = String::from("validation failed:");
        for r in report
            .results
            .iter()
            .filter(|r| !r.passed && r.severity == Severity::Critical)
        {
            write!(message, "\n  expectation {} ({}): {}", r.index, r.expect, r.message).expect("write to string");
            if !r.examples.is_empty() {
                write!(message, "; first failing rows: {}", r.examples.join(", ")).expect("write to string");
            }
        }
        write!(message, "\n  report: {md_key} in {}", p.store.describe()).expect("write to string");
        return Err(super::ExpectationsFailed(message).into());
    }
    Ok(ValidateOutput {
        passed: report.passed,
        expectations: report.results.len(),
        warnings: report.results.iter().filter(|r| !r.passed).count(),
        report_json: json_key.to_string(),
        report_md: md_key.to_string(),
    })
}

/// Checks every expectation against the named parts of the data (rows are reported per part).
pub(super) fn validate(
    dataset: &str,
    run_id: &str,
    expectations: &[Expectation],
    parts: &[(&str, &Table)],
) -> ValidationReport {
    let rows: u64 = parts.iter().map(|(_, t)| t.rows() as u64).sum();
    let results: Vec<ExpectationResult> = expectations
        .iter()
        .enumerate()
        .map(|(i, e)| check(i + 1, e, parts, rows))
        .collect();
    ValidationReport {
        dataset: dataset.to_owned(),
        run_id: run_id.to_owned(),
        rows,
        passed: results.iter().all(|r| r.passed || r.severity == Severity::Warning),
        results,
    }
}

/// Collects failing rows across parts.
struct Failures {
    count: u64,
    examples: Vec<String>,
}

impl Failures {
    fn new() -> Self {
        Failures {
            count: 0,
            examples: Vec::new(),
        }
    }

    fn add(&mut self, part: &str, row: usize, value: impl FnOnce() -> String) {
        self.count += 1;
        if self.examples.len() < EXAMPLES {
            self.examples.push(format!("{part} row {}: {}", row + 1, value()));
        }
    }
}

fn shown(values: &Values, row: usize) -> String {
    if values.is_missing(row) {
        "missing".into()
    } else {
        format!("{:?}", values.text(row))
    }
}

fn check(index: usize, e: &Expectation, parts: &[(&str, &Table)], rows: u64) -> ExpectationResult {
    let mut failures = Failures::new();
    let columns: Vec<String> = e.check.columns().iter().map(|c| c.to_string()).collect();
    // A column an expectation names but the data lacks fails the expectation, with a message.
    let missing_column = columns
        .iter()
        .find(|c| parts.iter().any(|(_, t)| t.column(c).is_none()));
    let message = if let (Some(c), false) = (missing_column, matches!(e.check, Check::ColumnsMatch { .. })) {
        Some(format!("column '{c}' is not in the processed data"))
    } else {
        match &e.check {
            Check::ColumnsMatch { columns: expected } => {
                let table = parts[0].1;
                let mut problems = Vec::new();
                for (name, ty) in expected {
                    match table.column(name) {
                        None => problems.push(format!("'{name}' is missing")),
                        Some(c) if c.ty != *ty => problems.push(format!("'{name}' is {}, expected {ty}", c.ty)),
                        Some(_) => {}
                    }
                }
                for c in &table.columns {
                    if !expected.contains_key(&c.name) {
                        problems.push(format!("'{}' is not expected", c.name));
                    }
                }
                (!problems.is_empty()).then(|| format!("columns differ: {}", problems.join(", ")))
            }
            Check::NotNull { columns } => {
                let mut per_column = Vec::new();
                for c in columns {
                    let mut n = 0;
                    for (part, t) in parts {
                        let v = &t.column(c).expect("checked").values;
                        for r in (0..v.len()).filter(|&r| v.is_missing(r)) {
                            n += 1;
                            failures.add(part, r, || format!("'{c}' is missing"));
                        }
                    }
                    if n > 0 {
                        per_column.push(format!("'{c}' has {n} missing values"));
                    }
                }
                (!per_column.is_empty()).then(|| per_column.join("; "))
            }
            Check::Range { column, min, max } => {
                let lo = min.unwrap_or(f64::NEG_INFINITY);
                let hi = max.unwrap_or(f64::INFINITY);
                let mut not_numeric = None;
                for (part, t) in parts {
                    let c = t.column(column).expect("checked");
                    match c.numbers() {
                        Some(v) => {
                            for (r, x) in v.iter().enumerate() {
                                if let Some(x) = x
                                    && !(lo..=hi).contains(x)
                                {
                                    failures.add(part, r, || x.to_string());
                                }
                            }
                        }
                        None => not_numeric = Some(c.ty),
                    }
                }
                let bounds = format!("[{}, {}]", fmt_bound(*min), fmt_bound(*max));
                match not_numeric {
                    Some(ty) => Some(format!("'{column}' is a {ty} column; a range needs numbers")),
                    None => (failures.count > 0)
                        .then(|| format!("{} of {rows} rows of '{column}' are outside {bounds}", failures.count)),
                }
            }
            Check::AllowedValues { column, values } => {
                for (part, t) in parts {
                    let v = &t.column(column).expect("checked").values;
                    for r in (0..v.len()).filter(|&r| !v.is_missing(r)) {
                        let text = v.text(r);
                        if !values.contains(&text) {
                            failures.add(part, r, || format!("{text:?}"));
                        }
                    }
                }
                (failures.count > 0).then(|| {
                    format!(
                        "{} of {rows} rows of '{column}' have values outside {values:?}",
                        failures.count
                    )
                })
            }
            Check::Unique { columns } => {
                let mut seen: HashMap<Vec<String>, ()> = HashMap::new();
                for (part, t) in parts {
                    let cols: Vec<&Values> = columns.iter().map(|c| &t.column(c).expect("checked").values).collect();
                    for r in 0..t.rows() {
                        let key: Vec<String> = cols.iter().map(|v| shown(v, r)).collect();
                        if seen.insert(key.clone(), ()).is_some() {
                            failures.add(part, r, || key.join(", "));
                        }
                    }
                }
                (failures.count > 0).then(|| format!("{} rows repeat an earlier value of {columns:?}", failures.count))
            }
            Check::RowCount { min, max } => {
                let low = min.is_some_and(|m| rows < m);
                let high = max.is_some_and(|m| rows > m);
                (low || high).then(|| {
                    format!(
                        "{rows} rows, expected between {} and {}",
                        min.map_or("0".into(), |m| m.to_string()),
                        max.map_or("any".into(), |m| m.to_string())
                    )
                })
            }
            Check::MaxMissingShare { columns, max } => {
                let mut over = Vec::new();
                for c in columns {
                    let missing: usize = parts
                        .iter()
                        .map(|(_, t)| t.column(c).expect("checked").values.missing_count())
                        .sum();
                    let share = if rows == 0 { 0.0 } else { missing as f64 / rows as f64 };
                    if share > *max {
                        over.push(format!(
                            "'{c}' is {:.1}% missing (at most {:.1}%)",
                            share * 100.0,
                            max * 100.0
                        ));
                    }
                }
                (!over.is_empty()).then(|| over.join("; "))
            }
        }
    };
    ExpectationResult {
        index,
        expect: e.check.name().to_owned(),
        columns,
        severity: e.severity,
        passed: message.is_none(),
        checked_rows: rows,
        failed_rows: failures.count,
        message: message.unwrap_or_else(|| "passed".to_owned()),
        examples: failures.examples,
    }
}

fn fmt_bound(b: Option<f64>) -> String {
    b.map_or("any".into(), |b| b.to_string())
}

/// The report as Markdown, for people and pull-request comments.
pub(super) fn markdown(report: &ValidationReport) -> String {
    let mut md = String::new();
    let verdict = if report.passed { "passed" } else { "FAILED" };
    writeln!(md, "# Data validation: {} ({verdict})\n", report.dataset).expect("write to string");
    writeln!(md, "Run `{}`, {} rows checked.\n", report.run_id, report.rows).expect("write to string");
    writeln!(
        md,
        "| # | expectation | columns | severity | result | failed rows | details |"
    )
    .expect("write to string");
    writeln!(md, "|---|---|---|---|---|---|---|").expect("write to string");
    for r in &report.results {
        let result = match (r.passed, r.severity) {
            (true, _) => "✅ passed",
            (false, Severity::Critical) => "❌ failed",
            (false, Severity::Warning) => "⚠️ warning",
        };
        let mut details = r.message.replace('|', "\\|");
        if !r.examples.is_empty() {
            write!(details, " (first: {})", r.examples.join("; ").replace('|', "\\|")).expect("write to string");
        }
        writeln!(
            md,
            "| {} | {} | {} | {:?} | {result} | {} | {details} |",
            r.index,
            r.expect,
            r.columns.join(", ").replace('|', "\\|"),
            r.severity,
            r.failed_rows
        )
        .expect("write to string");
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{Column, ColumnType};

    fn table(xs: &[Option<f64>], tags: &[&str]) -> Table {
        Table {
            columns: vec![
                Column {
                    name: "x".into(),
                    ty: ColumnType::Float,
                    values: Values::Number(xs.to_vec()),
                },
                Column {
                    name: "tag".into(),
                    ty: ColumnType::Categorical,
                    values: Values::Text(tags.iter().map(|t| Some(t.to_string())).collect()),
                },
            ],
        }
    }

    fn expectations(toml_text: &str) -> Vec<Expectation> {
        #[derive(Deserialize)]
        struct E {
            expectations: Vec<Expectation>,
        }
        toml::from_str::<E>(toml_text).unwrap().expectations
    }

    #[test]
    fn each_expectation_passes_and_fails_as_it_should() {
        let train = table(&[Some(1.0), Some(5.0), None], &["a", "b", "a"]);
        let test = table(&[Some(9.0)], &["c"]);
        let e = expectations(
            r#"
[[expectations]]
expect = "range"
column = "x"
min = 0
max = 6
[[expectations]]
expect = "not_null"
columns = ["x", "tag"]
severity = "warning"
[[expectations]]
expect = "allowed_values"
column = "tag"
values = ["a", "b"]
[[expectations]]
expect = "unique"
columns = ["tag"]
[[expectations]]
expect = "row_count"
min = 2
max = 3
[[expectations]]
expect = "max_missing_share"
columns = ["x"]
max = 0.5
[[expectations]]
expect = "columns_match"
columns = { x = "float", tag = "categorical" }
"#,
        );
        let report = validate("d", "r", &e, &[("train.csv", &train), ("test.csv", &test)]);
        let r = &report.results;
        assert_eq!(r[0].message, "1 of 4 rows of 'x' are outside [0, 6]");
        assert_eq!(r[0].examples, ["test.csv row 1: 9"]);
        assert_eq!(r[1].message, "'x' has 1 missing values");
        assert_eq!(r[1].examples, ["train.csv row 3: 'x' is missing"]);
        assert!(!r[2].passed && r[2].examples == ["test.csv row 1: \"c\""]);
        assert_eq!(r[3].examples, ["train.csv row 3: \"a\""]);
        assert_eq!(r[4].message, "4 rows, expected between 2 and 3");
        assert!(r[5].passed, "25% missing is within 50%");
        assert!(r[6].passed, "{}", r[6].message);
        assert!(!report.passed, "critical failures fail the report");
        let md = markdown(&report);
        assert!(md.contains("| 1 | range | x | Critical | ❌ failed | 1 |"), "{md}");
        assert!(md.contains("⚠️ warning"), "{md}");
    }

    #[test]
    fn warnings_alone_do_not_fail_and_unknown_columns_do() {
        let t = table(&[Some(1.0)], &["a"]);
        let e = expectations("[[expectations]]\nexpect = \"range\"\ncolumn = \"x\"\nmax = 0\nseverity = \"warning\"\n");
        assert!(validate("d", "r", &e, &[("train.csv", &t)]).passed);
        let e = expectations("[[expectations]]\nexpect = \"not_null\"\ncolumns = [\"y\"]\n");
        let report = validate("d", "r", &e, &[("train.csv", &t)]);
        assert!(!report.passed);
        assert_eq!(report.results[0].message, "column 'y' is not in the processed data");
    }
}
