//! `wasmline init`: a commented `pipeline.toml` inferred from a CSV or Parquet file, which
//! `wasmline pipeline run --config` runs unchanged.
//!
//! One streaming pass over the whole file (through the checking reader, every column read as
//! text) keeps, per column, which types every value still fits, the missing count, the numeric
//! range and up to [`MAX_CATEGORIES`] + 1 distinct values: memory stays flat whatever the rows.
//! A Parquet file's values are fed to the same rules as the text a CSV of it would hold
//! (integers in decimal, floats always with a point or an exponent, so a float column stays
//! `float`; booleans as `true`/`false`; a null is missing); columns of a type the reader does not
//! read (timestamps, lists, ...) are left out, with `ignore_extra_columns = true`.
//!
//! The rules, in order (missing values, i.e. `[dataset] missing_values`' defaults, are skipped):
//! - every value `true`/`false`/`yes`/`no` (any case): `boolean`;
//! - every value a whole number written without a point (`-3`, `42`): `integer` (a few distinct
//!   values do not make it categorical: counts and scores stay numbers);
//! - every value a number: `float` (`NaN`/`inf` allowed with `allow_non_finite`);
//! - otherwise text: `categorical` with at most [`MAX_CATEGORIES`] distinct values and at most
//!   one per ten rows (10 always allowed), else `string` (ids, free text), which is dropped;
//! - nullable when any value is missing; a column missing everywhere is dropped.
//!
//! The target decides the task when `--task` is not given: classification for a boolean or text
//! target, or an integer one with at most [`MAX_INTEGER_CLASSES`] distinct values; regression
//! otherwise. The config is parsed and checked by the real parser before it is written, and it is
//! written beside its final place, then renamed: an error writes nothing.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;

use crate::config::{PipelineConfig, TaskKind};
use crate::data::{ColumnSpec, ColumnType, DEFAULT_MAX_LINE_BYTES, Format, ReadOptions, scan};
use crate::data::{parquet_columns, scan_parquet_text};
use crate::progress::Progress;
use crate::text::suggest;

/// Text columns with more distinct values than this are `string`, not `categorical`.
const MAX_CATEGORIES: usize = 50;
/// An integer target with at most this many distinct values is classified.
const MAX_INTEGER_CLASSES: usize = 20;
/// Above this many rows, fewer folds and a smaller grid.
const LARGE_ROWS: u64 = 200_000;
/// What `[dataset]` reads as missing by default (its `missing_values`).
const MISSING: [&str; 5] = ["", "NA", "N/A", "null", "NULL"];

/// Write a commented `pipeline.toml` for a CSV or Parquet file: every column's type and
/// nullability, the expectations the data meets (as warnings), and a training grid for the task
/// and size.
#[derive(Debug, Args)]
pub struct InitCommand {
    /// The data file: CSV with a header line, or Parquet (`.parquet`, `.pq`).
    pub data: PathBuf,
    /// The column to predict.
    #[arg(long)]
    pub target: String,
    /// The task (default: from the target's type and values).
    #[arg(long, value_enum)]
    pub task: Option<TaskKind>,
    /// Where to write the config.
    #[arg(long, default_value = "pipeline.toml")]
    pub out: PathBuf,
    /// Overwrite OUT when it exists.
    #[arg(long)]
    pub force: bool,
}

impl InitCommand {
    pub fn execute(self) -> anyhow::Result<()> {
        let summary = self.run()?;
        print!("{summary}");
        Ok(())
    }

    /// Infers, renders, checks and writes the config; returns the summary to print.
    fn run(&self) -> anyhow::Result<String> {
        let out = &self.out;
        if !self.force && out.exists() {
            bail!("{} already exists: pass --force to overwrite it", out.display());
        }
        let file = self.data.display().to_string();
        let profile = match Format::from_name(&file) {
            Format::Csv => infer(&self.data, &file)?,
            Format::Parquet => infer_parquet(&self.data, &file)?,
            Format::Jsonl => {
                bail!("{file}: init reads CSV and Parquet files (write the config for a JSON Lines file by hand)")
            }
        };
        let out_dir = match out.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let source = source_for(&self.data, &out_dir);
        let name = dataset_name(&self.data);
        let generated = render(&profile, &file, &name, &source, &self.target, self.task)?;
        verify(&generated.toml, &out_dir)?;

        let mut tmp =
            tempfile::NamedTempFile::new_in(&out_dir).with_context(|| format!("cannot write {}", out.display()))?;
        std::io::Write::write_all(&mut tmp, generated.toml.as_bytes())
            .with_context(|| format!("cannot write {}", out.display()))?;
        let persisted = if self.force {
            tmp.persist(out)
        } else {
            // Not replaced if it appeared meanwhile.
            tmp.persist_noclobber(out)
        };
        persisted
            .map_err(|e| e.error)
            .with_context(|| format!("cannot write {}", out.display()))?;
        Ok(format!(
            "{}wrote {}: run it with `wasmline pipeline run --config {}`\n",
            generated.summary,
            out.display(),
            out.display()
        ))
    }
}

/// The generated config must be one `pipeline run` takes: parsed and checked by the real parser
/// and the grids' check. A failure here is a bug in init, and nothing is written.
fn verify(toml: &str, base_dir: &Path) -> anyhow::Result<PipelineConfig> {
    let bug = |e: String| anyhow::anyhow!("init made a config the pipeline refuses (a bug in init): {e}");
    let config = PipelineConfig::parse(toml, base_dir.to_path_buf()).map_err(bug)?;
    if let Some(train) = &config.train {
        crate::train::check_grids(train, config.task.kind).map_err(bug)?;
    }
    Ok(config)
}

/// What one pass saw of a column.
#[derive(Debug, Clone)]
struct ColumnStats {
    name: String,
    missing: u64,
    /// Every value so far fits the type.
    boolean: bool,
    integer: bool,
    float: bool,
    finite: u64,
    nan: u64,
    infinite: u64,
    min: f64,
    max: f64,
    /// Distinct values as read (at most `MAX_CATEGORIES`), unless `many`.
    distinct: BTreeSet<String>,
    many: bool,
}

impl ColumnStats {
    fn new(name: String) -> Self {
        ColumnStats {
            name,
            missing: 0,
            boolean: true,
            integer: true,
            float: true,
            finite: 0,
            nan: 0,
            infinite: 0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            distinct: BTreeSet::new(),
            many: false,
        }
    }

    fn observe(&mut self, text: &str) {
        let t = text.trim();
        if self.boolean && !["true", "false", "yes", "no"].iter().any(|w| t.eq_ignore_ascii_case(w)) {
            self.boolean = false;
        }
        if self.integer && !t.parse::<i64>().is_ok_and(|i| i.unsigned_abs() <= 1 << 53) {
            self.integer = false;
        }
        if self.float {
            match t.parse::<f64>() {
                Ok(v) if v.is_finite() => {
                    self.finite += 1;
                    self.min = self.min.min(v);
                    self.max = self.max.max(v);
                }
                Ok(v) if v.is_nan() => self.nan += 1,
                Ok(_) => self.infinite += 1,
                Err(_) => self.float = false,
            }
        }
        if !self.many && !self.distinct.contains(text) {
            if self.distinct.len() == MAX_CATEGORIES {
                self.many = true;
                self.distinct.clear();
            } else {
                self.distinct.insert(text.to_owned());
            }
        }
    }

    fn present(&self, rows: u64) -> u64 {
        rows - self.missing
    }
}

/// The file's columns as one pass saw them.
#[derive(Debug)]
struct Profile {
    format: Format,
    rows: u64,
    columns: Vec<ColumnStats>,
    /// Columns left out (a Parquet type the reader does not read), with why.
    skipped: Vec<(String, String)>,
}

/// Refuses names no config can declare: empty, or twice.
fn check_names(file: &str, names: &[String]) -> anyhow::Result<()> {
    for (i, name) in names.iter().enumerate() {
        if name.is_empty() {
            bail!("{file}: column {} has no name", i + 1);
        }
        if let Some(j) = names[..i].iter().position(|h| h == name) {
            bail!(
                "{file}: columns {} and {} are both named '{name}': rename one",
                j + 1,
                i + 1
            );
        }
    }
    Ok(())
}

/// Reads the header, refuses what cannot be a pipeline's input, then streams every row.
fn infer(path: &Path, file: &str) -> anyhow::Result<Profile> {
    let header = read_header(path, file)?;
    if header.iter().all(|h| h.parse::<f64>().is_ok()) {
        let shown: Vec<&str> = header.iter().take(4).map(String::as_str).collect();
        bail!(
            "{file}: the first line looks like data, not a header (every field is a number: {}{}): add a line naming the columns",
            shown.join(", "),
            if header.len() > 4 { ", ..." } else { "" }
        );
    }
    check_names(file, &header)?;
    let specs: Vec<ColumnSpec> = header
        .iter()
        .map(|name| ColumnSpec {
            name: name.clone(),
            ty: ColumnType::String,
            nullable: true,
            allow_non_finite: false,
        })
        .collect();
    let missing: Vec<String> = MISSING.map(String::from).to_vec();
    let opts = ReadOptions {
        format: Format::Csv,
        delimiter: b',',
        missing_values: &missing,
        ignore_extra_columns: false,
        columns: &specs,
        max_line_bytes: DEFAULT_MAX_LINE_BYTES,
    };
    let mut columns: Vec<ColumnStats> = header.into_iter().map(ColumnStats::new).collect();
    let stats = scan(path, file, &opts, &Progress::hidden(), |_, cells| {
        for (stats, cell) in columns.iter_mut().zip(cells) {
            match cell {
                crate::data::Cell::Text(t) => stats.observe(t),
                _ => stats.missing += 1,
            }
        }
        Ok(())
    })?;
    Ok(Profile {
        format: Format::Csv,
        rows: stats.rows,
        columns,
        skipped: Vec::new(),
    })
}

/// The Parquet file's columns: the schema's names, each value fed to the rules as the text a CSV
/// of the file would hold (see the module docs).
fn infer_parquet(path: &Path, file: &str) -> anyhow::Result<Profile> {
    let all = parquet_columns(path, file)?;
    check_names(file, &all.iter().map(|c| c.name.clone()).collect::<Vec<_>>())?;
    let (read, skipped): (Vec<_>, Vec<_>) = all.into_iter().partition(|c| c.kind.is_some());
    let skipped: Vec<(String, String)> = skipped
        .into_iter()
        .map(|c| (c.name, format!("{}, a type wasmline does not read", c.described)))
        .collect();
    if read.is_empty() {
        bail!("{file}: no column is of a type wasmline reads (booleans, integers, floats, decimals, strings)");
    }
    let names: Vec<String> = read.into_iter().map(|c| c.name).collect();
    let mut columns: Vec<ColumnStats> = names.iter().cloned().map(ColumnStats::new).collect();
    let rows = scan_parquet_text(path, file, &names, |row| {
        for (stats, value) in columns.iter_mut().zip(row) {
            match value {
                Some(text) if !MISSING.contains(&text.trim()) => stats.observe(text),
                _ => stats.missing += 1,
            }
        }
    })?;
    if rows == 0 {
        bail!("{file}: the file has no rows");
    }
    Ok(Profile {
        format: Format::Parquet,
        rows,
        columns,
        skipped,
    })
}

/// The header's names, cleaned as the reader cleans them (byte-order mark, spaces).
fn read_header(path: &Path, file: &str) -> anyhow::Result<Vec<String>> {
    let f = std::fs::File::open(path).with_context(|| format!("cannot read {file}"))?;
    // Bounded like the reader's lines: a file without line breaks is not read whole here.
    let limited = std::io::Read::take(f, DEFAULT_MAX_LINE_BYTES as u64 + 1);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(limited);
    let mut record = csv::ByteRecord::new();
    let read = reader
        .read_byte_record(&mut record)
        .with_context(|| format!("cannot read the header of {file}"))?;
    if !read {
        bail!("{file}: the file is empty (no header, no rows)");
    }
    Ok(crate::data::header_names(&record))
}

/// How init will use a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// A feature as read (numbers, booleans).
    Keep,
    /// A categorical feature, ordinal-encoded.
    Encode,
    /// Dropped: `string` or missing everywhere.
    Drop,
    Target,
}

/// A column's inferred declaration and role.
struct Decided<'p> {
    stats: &'p ColumnStats,
    ty: ColumnType,
    role: Role,
    /// Why, for the comments and the summary.
    why: String,
}

impl Decided<'_> {
    fn nullable(&self) -> bool {
        self.stats.missing > 0
    }

    /// Distinct values as the pipeline shows them (numbers in their shortest form), sorted the
    /// way the pipeline sorts classes.
    fn values(&self) -> Vec<String> {
        if self.ty.is_numeric() {
            let set: BTreeSet<i64> = self
                .stats
                .distinct
                .iter()
                .filter_map(|t| t.trim().parse().ok())
                .collect();
            set.into_iter().map(|v| (v as f64).to_string()).collect()
        } else if self.ty == ColumnType::Boolean {
            let set: BTreeSet<bool> = self
                .stats
                .distinct
                .iter()
                .filter_map(|t| crate::data::parse_bool(t.trim()))
                .collect();
            set.into_iter().map(|b| b.to_string()).collect()
        } else {
            self.stats.distinct.iter().cloned().collect()
        }
    }
}

fn decide_type(stats: &ColumnStats, rows: u64) -> (ColumnType, String) {
    let present = stats.present(rows);
    let distinct = stats.distinct.len();
    if present == 0 {
        return (ColumnType::String, "missing in every row".into());
    }
    if stats.boolean {
        return (ColumnType::Boolean, "every value true/false or yes/no".into());
    }
    if stats.integer {
        return (ColumnType::Integer, "every value a whole number".into());
    }
    if stats.float {
        return (ColumnType::Float, "every value a number".into());
    }
    let limit = MAX_CATEGORIES.min((rows as usize / 10).max(10));
    if !stats.many && distinct <= limit {
        (ColumnType::Categorical, format!("text with {distinct} distinct values"))
    } else if stats.many {
        (
            ColumnType::String,
            format!("text with over {MAX_CATEGORIES} distinct values"),
        )
    } else {
        (
            ColumnType::String,
            format!("text with {distinct} distinct values in {rows} rows"),
        )
    }
}

/// The rendered config and the summary of what was inferred.
struct Generated {
    toml: String,
    summary: String,
}

/// A TOML string (quoted and escaped).
fn q(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

fn q_list<S: AsRef<str>>(items: &[S]) -> String {
    let items: Vec<String> = items.iter().map(|s| q(s.as_ref())).collect();
    format!("[{}]", items.join(", "))
}

/// A TOML number: `{:?}` writes `5.0`, `0.1`, `1e20`, all TOML floats.
fn num(v: f64) -> String {
    format!("{v:?}")
}

fn plural(n: u64, one: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {one}s")
    }
}

/// A range with 10% of the span as margin each side, rounded outwards to a step that keeps a few
/// digits; a column with no negative value keeps 0 as its floor.
fn range_with_margin(min: f64, max: f64) -> (f64, f64) {
    let span = max - min;
    let margin = if span > 0.0 {
        span * 0.1
    } else if min != 0.0 {
        min.abs() * 0.1
    } else {
        1.0
    };
    let step = 10f64.powf(margin.log10().floor());
    let decimals = (-step.log10().round()).max(0.0) as usize;
    let round = |v: f64| format!("{v:.decimals$}").parse::<f64>().unwrap_or(v);
    // The epsilon keeps 1.1 / 0.1 = 11.000000000000002 from rounding up a whole step.
    let mut lo = round(((min - margin) / step + 1e-9).floor() * step);
    let hi = round(((max + margin) / step - 1e-9).ceil() * step);
    if min >= 0.0 && lo < 0.0 {
        lo = 0.0;
    }
    (lo, hi)
}

fn render(
    profile: &Profile,
    file: &str,
    name: &str,
    source: &str,
    target: &str,
    task: Option<TaskKind>,
) -> anyhow::Result<Generated> {
    let rows = profile.rows;
    let names: Vec<&str> = profile.columns.iter().map(|c| c.name.as_str()).collect();
    if let Some((_, why)) = profile.skipped.iter().find(|(name, _)| name == target) {
        bail!("{file}: the target '{target}' is {why}");
    }
    let Some(target_stats) = profile.columns.iter().find(|c| c.name == target) else {
        bail!(
            "{file}: --target '{target}' is not a column{}",
            match suggest(target, &names).as_str() {
                "" => format!(" (the columns: {})", names.join(", ")),
                s => s.to_owned(),
            }
        );
    };
    if target_stats.present(rows) == 0 {
        bail!("{file}: the target '{target}' is missing in every row");
    }

    // The target's type and the task.
    let (mut target_ty, target_why) = decide_type(target_stats, rows);
    if matches!(target_ty, ColumnType::String | ColumnType::Categorical) {
        target_ty = ColumnType::Categorical;
    }
    let integer_classes =
        target_ty == ColumnType::Integer && !target_stats.many && target_stats.distinct.len() <= MAX_INTEGER_CLASSES;
    let (task, task_why) = match task {
        Some(kind) => (kind, "as --task says".to_owned()),
        None => match target_ty {
            ColumnType::Boolean => (TaskKind::Classification, "the target is boolean".into()),
            ColumnType::Categorical => (TaskKind::Classification, "the target is text".into()),
            ColumnType::Integer if integer_classes => (
                TaskKind::Classification,
                format!(
                    "the target is an integer with {} distinct values (at most {MAX_INTEGER_CLASSES})",
                    target_stats.distinct.len()
                ),
            ),
            ColumnType::Integer => (
                TaskKind::Regression,
                format!("the target is an integer with over {MAX_INTEGER_CLASSES} distinct values"),
            ),
            _ => (TaskKind::Regression, "the target is a float".into()),
        },
    };
    match (task, target_ty) {
        (TaskKind::Classification, ColumnType::Float) => bail!(
            "{file}: the target '{target}' is a float column: classification needs classes (pass --task regression, or derive a label in the config)"
        ),
        (TaskKind::Classification, _) if target_stats.many => bail!(
            "{file}: the target '{target}' has over {MAX_CATEGORIES} distinct values: too many classes for init (pass --task regression if it is a number)"
        ),
        (TaskKind::Regression, ty) if !ty.is_numeric() => bail!(
            "{file}: the target '{target}' is a {ty} column: regression needs numbers (pass --task classification)"
        ),
        _ => {}
    }
    let kind = format!("{task:?}").to_lowercase();
    if task == TaskKind::Regression && (target_stats.nan > 0 || target_stats.infinite > 0) {
        bail!("{file}: the target '{target}' has NaN or infinite values, which training refuses");
    }

    // Every column's type and role.
    let decided: Vec<Decided<'_>> = profile
        .columns
        .iter()
        .map(|stats| {
            if stats.name == target {
                return Decided {
                    stats,
                    ty: target_ty,
                    role: Role::Target,
                    why: format!("the target; {target_why}"),
                };
            }
            let (ty, why) = decide_type(stats, rows);
            let role = match ty {
                _ if stats.present(rows) == 0 => Role::Drop,
                ColumnType::Float if stats.infinite > 0 || stats.finite == 0 => Role::Drop,
                ColumnType::Categorical => Role::Encode,
                ColumnType::String => Role::Drop,
                _ => Role::Keep,
            };
            let why = if ty == ColumnType::Float && stats.infinite > 0 {
                format!("{why}, {} infinite (training refuses them)", stats.infinite)
            } else if ty == ColumnType::Float && stats.finite == 0 {
                format!("{why}, none finite")
            } else {
                why
            };
            Decided { stats, ty, role, why }
        })
        .collect();
    let target_d = decided.iter().find(|d| d.role == Role::Target).expect("found above");
    let classes = if task == TaskKind::Classification {
        let classes = target_d.values();
        if classes.len() < 2 {
            bail!(
                "{file}: the target '{target}' has a single value ('{}') in every row: classification needs at least two classes",
                classes.first().map(String::as_str).unwrap_or("")
            );
        }
        classes
    } else {
        Vec::new()
    };
    let features: Vec<&Decided<'_>> = decided
        .iter()
        .filter(|d| matches!(d.role, Role::Keep | Role::Encode))
        .collect();
    if features.is_empty() {
        bail!(
            "{file}: no column besides the target can be a feature (every other one is text with many values, or missing)"
        );
    }
    let feature_missing = features.iter().any(|d| d.nullable() || d.stats.nan > 0);
    let categorical = features.iter().any(|d| d.role == Role::Encode);
    let kept_rows = rows - target_stats.missing;
    let large = rows > LARGE_ROWS;

    let mut t = String::new();
    let w = &mut t;
    // Writing to a String cannot fail.
    macro_rules! out {
        ($($arg:tt)*) => { writeln!(w, $($arg)*).expect("write to a string") };
    }
    out!(
        "# Written by `wasmline init {file} --target {target}` from {rows} rows and {} columns.",
        names.len()
    );
    out!("# Every value was read: the types, ranges and categories below are what the file holds.");
    out!("# Review it, then run: wasmline pipeline run --config <this file>");
    out!();
    out!("[dataset]");
    out!("# The name versions the data in the store (the file's name, made a valid store key).");
    out!("name = {}", q(name));
    out!("source = {}", q(source));
    if profile.format == Format::Parquet {
        out!("format = \"parquet\"");
    }
    if !profile.skipped.is_empty() {
        for (name, why) in &profile.skipped {
            out!("# '{name}' is left out: {why}.");
        }
        out!("ignore_extra_columns = true");
    }
    out!("# Types: true/false/yes/no = boolean; whole numbers = integer; other numbers = float; text");
    out!("# with at most {MAX_CATEGORIES} distinct values (and one per 10 rows) = categorical; other text = string.");
    if profile.format == Format::Parquet {
        out!("# Parquet values are typed as the text a CSV of them would hold: a float column stays float.");
        out!("# A null, or a missing value in a string column (empty, NA, N/A, null, NULL), makes a column nullable.");
    } else {
        out!("# A missing value (empty, NA, N/A, null, NULL) makes a column nullable.");
    }
    out!("columns = [");
    for d in &decided {
        let mut notes = vec![d.why.clone()];
        if d.stats.missing > 0 {
            notes.push(format!("{}: nullable", plural(d.stats.missing, "missing value")));
        }
        if d.stats.nan > 0 {
            notes.push(format!("{} NaN", d.stats.nan));
        }
        let mut line = format!("  {{ name = {}, type = {}", q(&d.stats.name), q(d.ty.as_str()));
        if d.nullable() {
            line.push_str(", nullable = true");
        }
        if d.ty == ColumnType::Float && d.stats.nan + d.stats.infinite > 0 {
            line.push_str(", allow_non_finite = true");
        }
        line.push_str(" },");
        out!("{line} # {}", notes.join("; "));
    }
    out!("]");

    // Transforms.
    let dropped: Vec<&Decided<'_>> = decided.iter().filter(|d| d.role == Role::Drop).collect();
    if !dropped.is_empty() {
        out!();
        out!("[[transform]]");
        for d in &dropped {
            out!("# '{}': {}; not a feature.", d.stats.name, d.why);
        }
        out!("op = \"drop\"");
        let cols: Vec<&str> = dropped.iter().map(|d| d.stats.name.as_str()).collect();
        out!("columns = {}", q_list(&cols));
    }
    if target_stats.missing > 0 {
        out!();
        out!("[[transform]]");
        out!(
            "# The target is missing in {}: training needs it, so those rows go.",
            plural(target_stats.missing, "row")
        );
        out!("op = \"drop_missing\"");
        out!("columns = {}", q_list(&[target]));
    }
    for d in decided.iter().filter(|d| d.role == Role::Encode) {
        out!();
        out!("[[transform]]");
        out!(
            "# '{}' is categorical ({} values): category codes, which gradient boosting splits on as sets.",
            d.stats.name,
            d.stats.distinct.len()
        );
        out!("op = \"encode\"");
        out!("column = {}", q(&d.stats.name));
        out!("method = \"ordinal\"");
    }

    out!();
    out!("[task]");
    out!("# {kind}: {task_why}.");
    out!("kind = {}", q(&kind));
    out!("target = {}", q(target));
    out!();
    out!("[split]");
    out!("test_fraction = 0.2");
    out!("seed = 42");

    // Expectations: what this file satisfies, as warnings (new data may differ and still train).
    out!();
    out!("# Expectations: what this file satisfies. Warnings: a failure is reported, the run goes on;");
    out!("# remove `severity` to make one stop the run.");
    out!();
    out!("[[expectations]]");
    out!("# {kept_rows} rows here; warn below 90% of that.");
    out!("expect = \"row_count\"");
    out!("min = {}", (kept_rows * 9 / 10).max(1));
    out!("severity = \"warning\"");
    let complete: Vec<&str> = decided
        .iter()
        .filter(|d| d.role != Role::Drop && !d.nullable() && d.stats.nan == 0)
        .map(|d| d.stats.name.as_str())
        .collect();
    if !complete.is_empty() {
        out!();
        out!("[[expectations]]");
        out!("# No value is missing in these columns.");
        out!("expect = \"not_null\"");
        out!("columns = {}", q_list(&complete));
        out!("severity = \"warning\"");
    }
    for d in &decided {
        let numeric = d.ty.is_numeric() && d.stats.finite > 0 && d.stats.nan == 0;
        let ranged = match d.role {
            Role::Keep => numeric,
            Role::Target => numeric && task == TaskKind::Regression,
            _ => false,
        };
        if ranged {
            let (lo, hi) = range_with_margin(d.stats.min, d.stats.max);
            // Whole bounds for an integer column, written as TOML integers.
            let bound = |v: f64| {
                if d.ty == ColumnType::Integer {
                    format!("{v}")
                } else {
                    num(v)
                }
            };
            let (lo, hi) = match d.ty {
                ColumnType::Integer => (lo.floor(), hi.ceil()),
                _ => (lo, hi),
            };
            out!();
            out!("[[expectations]]");
            out!("# Seen: {} to {}; 10% of the span as margin.", d.stats.min, d.stats.max);
            out!("expect = \"range\"");
            out!("column = {}", q(&d.stats.name));
            out!("min = {}", bound(lo));
            out!("max = {}", bound(hi));
            out!("severity = \"warning\"");
        }
    }
    for d in &decided {
        match d.role {
            Role::Encode => {
                let cats = d.values();
                let codes: Vec<String> = (0..cats.len()).map(|k| k.to_string()).collect();
                let shown: Vec<String> = cats
                    .iter()
                    .take(8)
                    .enumerate()
                    .map(|(k, c)| format!("{k} = {c:?}"))
                    .collect();
                out!();
                out!("[[expectations]]");
                out!(
                    "# '{}' holds category codes after the encoding ({}{}): a category not seen here",
                    d.stats.name,
                    shown.join(", "),
                    if cats.len() > 8 { ", ..." } else { "" }
                );
                out!("# gets code {} and fails this.", cats.len());
                out!("expect = \"allowed_values\"");
                out!("column = {}", q(&d.stats.name));
                out!("values = {}", q_list(&codes));
                out!("severity = \"warning\"");
            }
            Role::Target if task == TaskKind::Classification => {
                out!();
                out!("[[expectations]]");
                out!("# The classes seen.");
                out!("expect = \"allowed_values\"");
                out!("column = {}", q(target));
                out!("values = {}", q_list(&classes));
                out!("severity = \"warning\"");
            }
            _ => {}
        }
    }

    // Training.
    out!();
    out!("[train]");
    out!(
        "# {} rows{}: {} folds.{}",
        rows,
        if large { " (large)" } else { "" },
        if large { 3 } else { 5 },
        if large {
            " A small grid: each candidate trains on most of the file per fold."
        } else {
            ""
        }
    );
    out!("model_name = {}", q(name));
    match task {
        TaskKind::Classification => out!("metric = \"f1\""),
        TaskKind::Regression => out!("metric = \"rmse\""),
    }
    out!("folds = {}", if large { 3 } else { 5 });
    out!("seed = 42");
    out!();
    out!("[[train.models]]");
    out!("# Histogram gradient boosting: learns from missing values as they are.");
    if categorical {
        out!("# categorical = \"native\": the encoded columns split on category sets.");
    }
    let leaves = if large {
        "[31]"
    } else if rows < 2000 {
        "[8, 15]"
    } else {
        "[15, 31]"
    };
    let native = if categorical {
        ", categorical = [\"native\"]"
    } else {
        ""
    };
    out!("family = \"gradient_boosting\"");
    out!("grid = {{ n_estimators = [200], learning_rate = [0.05], num_leaves = {leaves}{native} }}");
    if task == TaskKind::Classification {
        out!();
        out!("[[train.models]]");
        out!("# A random forest: learns from missing values too.");
        out!("family = \"random_forest\"");
        if large {
            out!("grid = {{ n_trees = [50], max_depth = [12] }}");
        } else {
            out!("grid = {{ n_trees = [100], max_depth = [8, 12] }}");
        }
    }
    if feature_missing {
        out!();
        let family = match task {
            TaskKind::Classification => "logistic_regression",
            TaskKind::Regression => "elastic_net",
        };
        out!("# No {family}: it refuses missing values, which some features have.");
    } else {
        out!();
        out!("[[train.models]]");
        out!("# A linear baseline (no feature has missing values, so it can train).");
        match (task, large) {
            (TaskKind::Classification, false) => {
                out!("family = \"logistic_regression\"");
                out!("grid = {{ alpha = [0.1, 1.0, 10.0], max_iterations = [200] }}");
            }
            (TaskKind::Classification, true) => {
                out!("family = \"logistic_regression\"");
                out!("grid = {{ alpha = [1.0], max_iterations = [200] }}");
            }
            (TaskKind::Regression, false) => {
                out!("family = \"elastic_net\"");
                out!("grid = {{ penalty = [0.01, 0.1, 1.0], l1_ratio = [0.5, 1.0] }}");
            }
            (TaskKind::Regression, true) => {
                out!("family = \"elastic_net\"");
                out!("grid = {{ penalty = [0.1], l1_ratio = [0.5] }}");
            }
        }
    }

    let mut summary = format!("{file}: {rows} rows, {} columns\n", names.len());
    let width = names.iter().map(|n| n.chars().count()).max().unwrap_or(0);
    for d in &decided {
        let role = match d.role {
            Role::Keep => "",
            Role::Encode => ", encoded",
            Role::Drop => ", dropped",
            Role::Target => ", target",
        };
        let nullable = if d.nullable() { ", nullable" } else { "" };
        summary.push_str(&format!(
            "  {:width$}  {}{nullable}{role}\n",
            d.stats.name,
            d.ty.as_str()
        ));
    }
    summary.push_str(&format!("task: {kind} of '{target}': {task_why}\n"));
    Ok(Generated { toml: t, summary })
}

/// The dataset name: the file's stem with every character a store key refuses made '-'.
fn dataset_name(data: &Path) -> String {
    let stem = data.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    let mut name: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._=+@-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    // "my data (v2)" -> "my-data-v2": one dash for a run of refused characters, none at the ends.
    while name.contains("--") {
        name = name.replace("--", "-");
    }
    let mut name = name.trim_matches('-').to_owned();
    if name.starts_with(".tmp") {
        name.replace_range(..1, "_");
    }
    if crate::store::Key::segment(&name).is_err() {
        name = "dataset".into();
    }
    name
}

/// The source as the config must name it: relative paths resolve against the config's folder, so
/// a path given from elsewhere is rewritten relative to it (absolute paths stay).
fn source_for(data: &Path, out_dir: &Path) -> String {
    if data.is_absolute() || out_dir == Path::new(".") {
        return data.display().to_string();
    }
    let (Ok(data_abs), Ok(dir_abs)) = (data.canonicalize(), out_dir.canonicalize()) else {
        return data.display().to_string();
    };
    let d: Vec<Component<'_>> = data_abs.components().collect();
    let b: Vec<Component<'_>> = dir_abs.components().collect();
    let common = d.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let mut rel = PathBuf::new();
    for _ in common..b.len() {
        rel.push("..");
    }
    for c in &d[common..] {
        rel.push(c);
    }
    rel.display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Family;
    use crate::data::TransformStep;

    /// Runs init on `data` with the config written into `dir`; the config read back, its text.
    fn init_file(
        data: &Path,
        dir: &Path,
        target: &str,
        task: Option<TaskKind>,
    ) -> Result<(PipelineConfig, String), String> {
        let out = dir.join("pipeline.toml");
        let command = InitCommand {
            data: data.to_path_buf(),
            target: target.into(),
            task,
            out: out.clone(),
            force: false,
        };
        command.run().map_err(|e| format!("{e:#}"))?;
        let text = std::fs::read_to_string(&out).unwrap();
        let config = PipelineConfig::load(&out).map_err(|e| e.to_string())?;
        crate::pipeline::Pipeline::check(&config)?;
        Ok((config, text))
    }

    /// Writes `csv` as `name` in a new tempdir and runs init there.
    fn init_csv(name: &str, csv: &str, target: &str) -> (tempfile::TempDir, Result<(PipelineConfig, String), String>) {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join(name);
        std::fs::write(&data, csv).unwrap();
        let result = init_file(&data, dir.path(), target, None);
        (dir, result)
    }

    fn types(config: &PipelineConfig) -> Vec<(String, ColumnType, bool)> {
        config
            .dataset
            .columns
            .iter()
            .map(|c| (c.name.clone(), c.ty, c.nullable))
            .collect()
    }

    fn families(config: &PipelineConfig) -> Vec<Family> {
        config.train.as_ref().unwrap().models.iter().map(|m| m.family).collect()
    }

    fn example(path: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples").join(path)
    }

    #[test]
    fn init_on_the_wine_data_classifies_the_integer_quality() {
        let dir = tempfile::tempdir().unwrap();
        let (config, text) =
            init_file(&example("winequality/winequality-red.csv"), dir.path(), "quality", None).unwrap();
        let types = types(&config);
        assert_eq!(types.len(), 12);
        assert!(
            types[..11]
                .iter()
                .all(|(_, ty, nullable)| *ty == ColumnType::Float && !nullable)
        );
        assert_eq!(types[11], ("quality".into(), ColumnType::Integer, false));
        assert_eq!(config.dataset.name, "winequality-red");
        assert_eq!(config.task.kind, TaskKind::Classification);
        assert!(config.transform.is_empty());
        assert!(
            text.contains("# classification: the target is an integer with 6 distinct values"),
            "{text}"
        );
        assert!(
            text.contains("values = [\"3\", \"4\", \"5\", \"6\", \"7\", \"8\"]"),
            "{text}"
        );
        assert!(text.contains("min = 1439\n"), "90% of 1599 rows: {text}");
        assert_eq!(
            families(&config),
            [
                Family::GradientBoosting,
                Family::RandomForest,
                Family::LogisticRegression
            ]
        );
        let train = config.train.as_ref().unwrap();
        assert_eq!((train.folds, train.metric), (5, Some(crate::config::Metric::F1)));
        assert!(
            config
                .expectations
                .iter()
                .all(|e| e.severity == crate::config::Severity::Warning)
        );
    }

    #[test]
    fn init_on_the_diabetes_data_regresses_the_float_progression() {
        let dir = tempfile::tempdir().unwrap();
        let (config, text) = init_file(&example("diabetes/diabetes.csv"), dir.path(), "progression", None).unwrap();
        assert!(
            types(&config)
                .iter()
                .all(|(_, ty, nullable)| *ty == ColumnType::Float && !nullable)
        );
        assert_eq!(config.task.kind, TaskKind::Regression);
        assert!(text.contains("# regression: the target is a float."), "{text}");
        assert_eq!(families(&config), [Family::GradientBoosting, Family::ElasticNet]);
        assert_eq!(config.train.as_ref().unwrap().metric, Some(crate::config::Metric::Rmse));
        // progression is 25 to 346: the range has 10% of the span each side, floored at 0.
        assert!(
            text.contains("column = \"progression\"\nmin = 0.0\nmax = 380.0\n"),
            "{text}"
        );
    }

    /// 200 rows: an id unique per row, a colour of three values, a float and an integer with
    /// missing values, a boolean, an integer with few values, and a 0/1 target.
    fn mixed_csv(rows: usize) -> String {
        let mut csv = String::from("id,colour,weight,count,flag,grade,target\n");
        for i in 0..rows {
            let colour = ["red", "green", "blue"][i % 3];
            let weight = if i % 17 == 3 {
                String::new()
            } else {
                format!("{:.2}", 1.5 + (i % 13) as f64 * 0.25)
            };
            let count = if i % 23 == 5 {
                "NA".to_owned()
            } else {
                ((i * 7) % 40).to_string()
            };
            let flag = if i % 2 == 0 { "true" } else { "False" };
            let grade = i % 4;
            let target = u8::from((i % 13) + 2 * (i % 3) > 8);
            csv.push_str(&format!("u{i:05},{colour},{weight},{count},{flag},{grade},{target}\n"));
        }
        csv
    }

    #[test]
    fn init_infers_categories_ids_missing_values_integers_and_booleans() {
        let (_dir, result) = init_csv("my data (v2).csv", &mixed_csv(200), "target");
        let (config, text) = result.unwrap();
        assert_eq!(
            types(&config),
            [
                ("id".into(), ColumnType::String, false),
                ("colour".into(), ColumnType::Categorical, false),
                ("weight".into(), ColumnType::Float, true),
                ("count".into(), ColumnType::Integer, true),
                ("flag".into(), ColumnType::Boolean, false),
                ("grade".into(), ColumnType::Integer, false),
                ("target".into(), ColumnType::Integer, false),
            ]
        );
        assert_eq!(config.dataset.name, "my-data-v2");
        assert_eq!(config.task.kind, TaskKind::Classification);
        assert_eq!(
            config.transform,
            [
                TransformStep::Drop {
                    columns: vec!["id".into()]
                },
                TransformStep::Encode {
                    column: "colour".into(),
                    method: crate::data::EncodeMethod::Ordinal,
                    categories: None
                },
            ]
        );
        assert!(
            text.contains("# 'id': text with over 50 distinct values; not a feature."),
            "{text}"
        );
        assert!(text.contains("12 missing values: nullable"), "{text}");
        // Missing values: no logistic regression; a categorical feature: native category splits.
        assert_eq!(families(&config), [Family::GradientBoosting, Family::RandomForest]);
        assert!(text.contains("categorical = [\"native\"]"), "{text}");
        // An integer column's range in whole numbers: 0 to 3 seen, floored at 0.
        assert!(text.contains("column = \"grade\"\nmin = 0\nmax = 4\n"), "{text}");
        assert!(
            text.contains("# No logistic_regression: it refuses missing values"),
            "{text}"
        );
        assert!(
            text.contains("columns = [\"colour\", \"flag\", \"grade\", \"target\"]"),
            "{text}"
        );
        assert!(
            text.contains("column = \"colour\"\nvalues = [\"0\", \"1\", \"2\"]"),
            "{text}"
        );
    }

    /// Every step of `config` on a local store in `dir`.
    async fn run_pipeline(dir: &Path, config: PipelineConfig) -> Vec<crate::pipeline::StepReport> {
        let store = crate::store::LocalStore::open(dir.join("store")).unwrap();
        let pipeline = crate::pipeline::Pipeline::new(
            &store,
            config,
            crate::pipeline::new_run_id(),
            crate::pipeline::RunOptions::default(),
        )
        .unwrap();
        pipeline.run_all(|_| {}).await.unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_generated_config_runs_through_the_whole_pipeline() {
        let (dir, result) = init_csv("mixed.csv", &mixed_csv(120), "target");
        let (config, _) = result.unwrap();
        let reports = run_pipeline(dir.path(), config).await;
        assert_eq!(reports.len(), crate::pipeline::StepName::ALL.len());
        let shown: Vec<String> = reports.iter().map(ToString::to_string).collect();
        assert!(
            shown
                .iter()
                .any(|r| r.contains("gradient_boosting") || r.contains("random_forest")),
            "{shown:#?}"
        );
    }

    /// `mixed_csv(rows)` as a typed Parquet file in three row groups: strings (the colours
    /// dictionary-encoded), a nullable double, a nullable int64, a boolean, int32 and int64;
    /// `extra` adds a timestamp column, which the reader does not read.
    fn mixed_parquet(path: &Path, rows: usize, extra: bool) {
        use std::sync::Arc;

        use arrow_array::builder::StringDictionaryBuilder;
        use arrow_array::types::Int32Type;
        use arrow_array::{ArrayRef, BooleanArray, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray};
        use arrow_array::{TimestampMillisecondArray, cast::AsArray};

        let csv = mixed_csv(rows);
        let mut reader = csv::Reader::from_reader(csv.as_bytes());
        let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        let text = |i: usize| records.iter().map(move |r| r[i].to_owned());
        let number = |s: String| (!s.is_empty() && s != "NA").then(|| s.parse::<f64>().unwrap());
        let mut colours = StringDictionaryBuilder::<Int32Type>::new();
        text(1).for_each(|c| colours.append_value(c));
        let mut columns: Vec<(&str, ArrayRef)> = vec![
            ("id", Arc::new(StringArray::from_iter_values(text(0)))),
            ("colour", Arc::new(colours.finish())),
            ("weight", Arc::new(Float64Array::from_iter(text(2).map(number)))),
            (
                "count",
                Arc::new(Int64Array::from_iter(text(3).map(|s| number(s).map(|v| v as i64)))),
            ),
            (
                "flag",
                Arc::new(BooleanArray::from_iter(text(4).map(|s| Some(s == "true")))),
            ),
            (
                "grade",
                Arc::new(Int32Array::from_iter_values(text(5).map(|s| s.parse().unwrap()))),
            ),
            (
                "target",
                Arc::new(Int64Array::from_iter_values(text(6).map(|s| s.parse().unwrap()))),
            ),
        ];
        if extra {
            let when = TimestampMillisecondArray::from_iter_values((0..rows as i64).map(|i| 1_700_000_000_000 + i));
            columns.push(("seen", Arc::new(when)));
        }
        let batch = RecordBatch::try_from_iter(columns).unwrap();
        assert!(batch.column(1).as_any_dictionary_opt().is_some());
        let props = parquet::file::properties::WriterProperties::builder()
            .set_max_row_group_row_count(Some(rows.div_ceil(3)))
            .build();
        let file = std::fs::File::create(path).unwrap();
        let mut writer = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), Some(props)).unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
    }

    /// The config with what depends on the file's name and format taken out.
    fn comparable(config: &PipelineConfig) -> serde_json::Value {
        let mut value = serde_json::to_value(config).unwrap();
        let dataset = value["dataset"].as_object_mut().unwrap();
        for key in ["source", "format", "ignore_extra_columns"] {
            dataset.remove(key);
        }
        value
    }

    /// init on a Parquet file decides what it decides on the same rows as CSV (types,
    /// nullability, categories, expectations, grid), writes `format = "parquet"`, leaves out a
    /// column of a type the reader does not read, and the pipeline runs the config it wrote.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn init_on_parquet_infers_what_it_infers_on_the_same_csv_and_the_config_runs() {
        let (_csv_dir, from_csv) = init_csv("mixed.csv", &mixed_csv(200), "target");
        let (from_csv, _) = from_csv.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("mixed.parquet");
        mixed_parquet(&data, 200, true);
        let (config, text) = init_file(&data, dir.path(), "target", None).unwrap();
        assert_eq!(comparable(&config), comparable(&from_csv));
        assert_eq!(config.dataset.format, Some(Format::Parquet));
        assert!(config.dataset.ignore_extra_columns);
        assert!(
            text.contains(
                "# 'seen' is left out: a column of type Timestamp(ms), a type wasmline does not read.\nignore_extra_columns = true\n"
            ),
            "{text}"
        );

        let reports = run_pipeline(dir.path(), config).await;
        assert_eq!(reports.len(), crate::pipeline::StepName::ALL.len());
        assert!(reports[0].to_string().contains("200 rows"), "{}", reports[0]);
    }

    #[test]
    fn init_refuses_a_parquet_target_it_cannot_read_and_a_file_that_is_not_parquet() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("mixed.parquet");
        mixed_parquet(&data, 30, true);
        let err = init_file(&data, dir.path(), "seen", None).unwrap_err();
        assert!(
            err.ends_with(
                "mixed.parquet: the target 'seen' is a column of type Timestamp(ms), a type wasmline does not read"
            ),
            "{err}"
        );
        std::fs::write(&data, mixed_csv(30)).unwrap();
        let err = init_file(&data, dir.path(), "target", None).unwrap_err();
        assert!(
            err.ends_with("mixed.parquet: not a Parquet file (it does not start with PAR1)"),
            "{err}"
        );
        assert!(!dir.path().join("pipeline.toml").exists());
    }

    #[test]
    fn a_text_target_is_classified_and_a_missing_target_value_drops_its_row() {
        let mut csv = String::from("x,kind\n");
        for i in 0..60 {
            let kind = if i == 7 { "" } else { ["cat", "dog"][i % 2] };
            csv.push_str(&format!("{i},{kind}\n"));
        }
        let (_dir, result) = init_csv("pets.csv", &csv, "kind");
        let (config, text) = result.unwrap();
        assert_eq!(config.task.kind, TaskKind::Classification);
        assert_eq!(types(&config)[1], ("kind".into(), ColumnType::Categorical, true));
        assert_eq!(
            config.transform,
            [TransformStep::DropMissing {
                columns: vec!["kind".into()]
            }]
        );
        assert!(text.contains("values = [\"cat\", \"dog\"]"), "{text}");
        assert!(text.contains("min = 53\n"), "90% of the 59 rows with a target: {text}");
    }

    #[test]
    fn bad_inputs_get_errors_that_name_the_file_and_write_nothing() {
        let cases = [
            ("", "t", "the file is empty (no header, no rows)"),
            ("a,t\n", "t", "the file has a header but no data rows"),
            (
                "1.5,2\n3,4\n",
                "t",
                "the first line looks like data, not a header (every field is a number: 1.5, 2)",
            ),
            ("a,t,a\n1,2,3\n", "t", "columns 1 and 3 are both named 'a': rename one"),
            (
                "alcohol,quality\n1,2\n3,4\n",
                "qualty",
                "--target 'qualty' is not a column; did you mean 'quality'?",
            ),
            ("a,t\n1,\n2,NA\n", "t", "the target 't' is missing in every row"),
            (
                "a,t\n1,x\n2,x\n",
                "t",
                "the target 't' has a single value ('x') in every row",
            ),
            (
                "a,t\n1,2\n3,4,5\n",
                "t",
                "row 2 (line 3): has 3 fields, the header has 2",
            ),
        ];
        for (csv, target, expected) in cases {
            let (dir, result) = init_csv("bad.csv", csv, target);
            let err = result.unwrap_err();
            let file = dir.path().join("bad.csv").display().to_string();
            assert!(err.starts_with(&format!("{file}: ")), "{err}");
            assert!(err.contains(expected), "expected '{expected}' in: {err}");
            assert!(!dir.path().join("pipeline.toml").exists(), "{csv:?}: nothing written");
            assert_eq!(
                std::fs::read_dir(dir.path()).unwrap().count(),
                1,
                "no temporary file left"
            );
        }
    }

    #[test]
    fn an_existing_config_is_kept_without_force() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("d.csv");
        std::fs::write(&data, "a,t\n1,1.5\n2,2.5\n3,0.5\n").unwrap();
        let out = dir.path().join("pipeline.toml");
        std::fs::write(&out, "mine").unwrap();
        let mut command = InitCommand {
            data,
            target: "t".into(),
            task: None,
            out: out.clone(),
            force: false,
        };
        let err = format!("{:#}", command.run().unwrap_err());
        assert_eq!(
            err,
            format!("{} already exists: pass --force to overwrite it", out.display())
        );
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "mine");
        command.force = true;
        let summary = command.run().unwrap();
        assert!(
            summary.contains("task: regression of 't': the target is a float"),
            "{summary}"
        );
        assert!(std::fs::read_to_string(&out).unwrap().contains("kind = \"regression\""));
    }

    #[test]
    fn the_task_flag_overrides_and_is_checked_against_the_target() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("d.csv");
        std::fs::write(&data, "a,t,s\n1,1,x\n2,2,y\n3,3,x\n4,1,y\n").unwrap();
        let (config, _) = init_file(&data, dir.path(), "t", Some(TaskKind::Regression)).unwrap();
        assert_eq!(config.task.kind, TaskKind::Regression);
        std::fs::remove_file(dir.path().join("pipeline.toml")).unwrap();
        let err = init_file(&data, dir.path(), "s", Some(TaskKind::Regression)).unwrap_err();
        assert!(
            err.contains("the target 's' is a categorical column: regression needs numbers"),
            "{err}"
        );
        std::fs::write(&data, "a,t\n1,1.5\n2,2.5\n").unwrap();
        let err = init_file(&data, dir.path(), "t", Some(TaskKind::Classification)).unwrap_err();
        assert!(
            err.contains("the target 't' is a float column: classification needs classes"),
            "{err}"
        );
    }

    #[test]
    fn ranges_get_a_margin_rounded_outwards() {
        assert_eq!(range_with_margin(2.74, 4.01), (2.6, 4.2));
        assert_eq!(range_with_margin(0.0, 1.0), (0.0, 1.1));
        assert_eq!(range_with_margin(-5.0, 5.0), (-6.0, 6.0));
        assert_eq!(range_with_margin(7.0, 7.0), (6.3, 7.7));
    }

    #[test]
    fn dataset_names_and_sources_follow_the_store_and_the_config_folder() {
        assert_eq!(dataset_name(Path::new("a/b c.csv")), "b-c");
        assert_eq!(dataset_name(Path::new(".tmpx.csv")), "_tmpx");
        assert_eq!(source_for(Path::new("data/x.csv"), Path::new(".")), "data/x.csv");
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("data")).unwrap();
        std::fs::create_dir_all(dir.path().join("configs")).unwrap();
        std::fs::write(dir.path().join("data/x.csv"), "a\n1\n").unwrap();
        let cwd = std::env::current_dir().unwrap();
        let rel = |p: &Path| pathdiff(p, &cwd);
        let got = source_for(&rel(&dir.path().join("data/x.csv")), &rel(&dir.path().join("configs")));
        assert_eq!(got, "../data/x.csv");
    }

    /// `path` relative to `base` (both absolute), for the test above.
    fn pathdiff(path: &Path, base: &Path) -> PathBuf {
        let p: Vec<_> = path.components().collect();
        let b: Vec<_> = base.components().collect();
        let common = p.iter().zip(&b).take_while(|(x, y)| x == y).count();
        let mut rel = PathBuf::new();
        for _ in common..b.len() {
            rel.push("..");
        }
        p[common..].iter().for_each(|c| rel.push(c));
        rel
    }
}
