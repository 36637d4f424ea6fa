//! `pipeline.toml`: what data to read, how to shape it, what to expect of it.
//!
//! Loading is strict: unknown keys are errors that name the closest known key, and every column
//! name the config uses is checked against the declared schema (with a suggestion) before any
//! step runs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::data::ColumnType;
pub use crate::train::Metric;

/// The embedded default: the bundled wine-quality example.
pub const DEFAULT_CONFIG_PATH: &str = "examples/winequality/pipeline.toml";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    pub dataset: DatasetConfig,
    #[serde(default)]
    pub transform: Vec<TransformStep>,
    pub task: TaskConfig,
    #[serde(default)]
    pub split: SplitConfig,
    #[serde(default)]
    pub expectations: Vec<Expectation>,
    #[serde(default)]
    pub profile: ProfileConfig,
    /// Training; without it the pipeline stops after the data steps.
    #[serde(default)]
    pub train: Option<TrainConfig>,
    /// Where the config was read from; relative sources resolve against its directory.
    #[serde(skip)]
    pub base_dir: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetConfig {
    /// Dataset name: a store key segment (`[A-Za-z0-9._=+@-]`).
    pub name: String,
    /// A path (relative to the config file), an `http(s)://` URL or an `s3://bucket/key` URL.
    pub source: String,
    /// `csv` or `jsonl`; by default from the source's extension.
    #[serde(default)]
    pub format: Option<Format>,
    /// CSV field delimiter (one ASCII character).
    #[serde(default = "default_delimiter")]
    pub delimiter: char,
    /// Cell values read as missing (CSV); JSON `null` is always missing.
    #[serde(default = "default_missing")]
    pub missing_values: Vec<String>,
    /// Columns in the source that the schema does not declare: an error unless this is true.
    #[serde(default)]
    pub ignore_extra_columns: bool,
    pub columns: Vec<ColumnSpec>,
}

fn default_delimiter() -> char {
    ','
}

fn default_missing() -> Vec<String> {
    ["", "NA", "N/A", "null", "NULL"].map(String::from).to_vec()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Csv,
    Jsonl,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnSpec {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: ColumnType,
    /// Whether missing values are allowed (default false).
    #[serde(default)]
    pub nullable: bool,
    /// Whether NaN and infinities are accepted in a float column (default false).
    #[serde(default)]
    pub allow_non_finite: bool,
}

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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskKind {
    Classification,
    Regression,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskConfig {
    pub kind: TaskKind,
    /// The column to predict (after transforms).
    pub target: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SplitConfig {
    /// Share of rows held out for testing, in (0, 1).
    #[serde(default = "default_test_fraction")]
    pub test_fraction: f64,
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Keep class shares equal in both splits (default: true for classification).
    #[serde(default)]
    pub stratify: Option<bool>,
}

impl Default for SplitConfig {
    fn default() -> Self {
        SplitConfig {
            test_fraction: default_test_fraction(),
            seed: default_seed(),
            stratify: None,
        }
    }
}

fn default_test_fraction() -> f64 {
    0.2
}

fn default_seed() -> u64 {
    42
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// A failure stops the pipeline.
    #[default]
    Critical,
    /// A failure is reported and the pipeline goes on.
    Warning,
}

/// An expectation about the processed data (train and test).
// No `deny_unknown_fields` here: serde does not support it with `flatten`; `Check` denies them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Expectation {
    #[serde(flatten)]
    pub check: Check,
    #[serde(default)]
    pub severity: Severity,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "expect", rename_all = "snake_case", deny_unknown_fields)]
pub enum Check {
    /// Exactly these columns with these types (order free).
    ColumnsMatch {
        columns: BTreeMap<String, ColumnType>,
    },
    NotNull {
        columns: Vec<String>,
    },
    /// Values within `[min, max]` (either bound optional).
    Range {
        column: String,
        #[serde(default)]
        min: Option<f64>,
        #[serde(default)]
        max: Option<f64>,
    },
    /// Values among `values` (compared as text; numbers in their shortest form).
    AllowedValues {
        column: String,
        values: Vec<String>,
    },
    Unique {
        columns: Vec<String>,
    },
    RowCount {
        #[serde(default)]
        min: Option<u64>,
        #[serde(default)]
        max: Option<u64>,
    },
    /// At most this share of missing values in each column.
    MaxMissingShare {
        columns: Vec<String>,
        max: f64,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileConfig {
    /// Histogram bins in the report.
    #[serde(default = "default_hist_bins")]
    pub histogram_bins: usize,
    /// Quantile bins of the drift reference profile.
    #[serde(default = "default_reference_bins")]
    pub reference_bins: usize,
    /// A column is "high cardinality" above this many distinct values (categorical columns).
    #[serde(default = "default_high_cardinality")]
    pub high_cardinality: usize,
}

impl Default for ProfileConfig {
    fn default() -> Self {
        ProfileConfig {
            histogram_bins: default_hist_bins(),
            reference_bins: default_reference_bins(),
            high_cardinality: default_high_cardinality(),
        }
    }
}

fn default_hist_bins() -> usize {
    20
}

fn default_reference_bins() -> usize {
    10
}

fn default_high_cardinality() -> usize {
    50
}

/// How models are trained, selected and promoted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// The registered model's name (default: the dataset's name).
    #[serde(default)]
    pub model_name: Option<String>,
    /// Selects the best candidate and gates promotion (default: f1 or rmse).
    #[serde(default)]
    pub metric: Option<Metric>,
    /// Cross-validation folds on the training split.
    #[serde(default = "default_folds")]
    pub folds: usize,
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// A candidate is promoted when its metric is at most this much worse than production's.
    #[serde(default = "default_tolerance")]
    pub tolerance: f64,
    /// The alias `pipeline run` promotes to.
    #[serde(default = "default_alias")]
    pub alias: String,
    pub models: Vec<ModelSpec>,
}

fn default_folds() -> usize {
    5
}

fn default_tolerance() -> f64 {
    0.005
}

fn default_alias() -> String {
    "production".to_owned()
}

/// One model family and its hyperparameter grid (every combination is a candidate).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    pub family: Family,
    #[serde(default)]
    pub grid: BTreeMap<String, Vec<toml::Value>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    LinearRegression,
    ElasticNet,
    LogisticRegression,
    DecisionTree,
    RandomForest,
}

impl Family {
    pub fn name(self) -> &'static str {
        match self {
            Family::LinearRegression => "linear_regression",
            Family::ElasticNet => "elastic_net",
            Family::LogisticRegression => "logistic_regression",
            Family::DecisionTree => "decision_tree",
            Family::RandomForest => "random_forest",
        }
    }

    pub fn task(self) -> TaskKind {
        match self {
            Family::LinearRegression | Family::ElasticNet => TaskKind::Regression,
            Family::LogisticRegression | Family::DecisionTree | Family::RandomForest => TaskKind::Classification,
        }
    }
}

impl TrainConfig {
    pub fn metric(&self, task: TaskKind) -> Metric {
        self.metric.unwrap_or(match task {
            TaskKind::Classification => Metric::F1,
            TaskKind::Regression => Metric::Rmse,
        })
    }
}

/// A config error with the file it came from.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ConfigError {
    pub path: String,
    pub message: String,
}

impl PipelineConfig {
    /// Reads and checks a config file.
    pub fn load(path: &Path) -> Result<PipelineConfig, ConfigError> {
        let err = |message: String| ConfigError {
            path: path.display().to_string(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(format!("cannot read: {e}")))?;
        let base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Self::parse(&text, base_dir).map_err(err)
    }

    /// Parses and checks config text; relative sources resolve against `base_dir`.
    pub fn parse(text: &str, base_dir: PathBuf) -> Result<PipelineConfig, String> {
        let mut config: PipelineConfig = toml::from_str(text).map_err(|e| explain_toml_error(&e))?;
        config.base_dir = base_dir;
        config.check()?;
        Ok(config)
    }

    /// A config as a run recorded it (its canonical JSON), checked again.
    pub fn from_json(value: serde_json::Value, base_dir: PathBuf) -> Result<PipelineConfig, String> {
        let mut config: PipelineConfig = serde_json::from_value(value).map_err(|e| e.to_string())?;
        config.base_dir = base_dir;
        config.check()?;
        Ok(config)
    }

    /// A stable digest of everything that decides the data steps' outputs.
    pub fn canonical_json(&self) -> String {
        serde_json::to_string(self).expect("config serialises")
    }

    /// The source resolved: URLs as they are, paths against the config's directory.
    pub fn resolved_source(&self) -> String {
        let s = &self.dataset.source;
        if s.contains("://") || Path::new(s).is_absolute() {
            s.clone()
        } else {
            self.base_dir.join(s).display().to_string()
        }
    }

    pub fn format(&self) -> Format {
        self.dataset.format.unwrap_or_else(|| {
            let s = self.dataset.source.to_ascii_lowercase();
            if s.ends_with(".jsonl") || s.ends_with(".ndjson") || s.ends_with(".json") {
                Format::Jsonl
            } else {
                Format::Csv
            }
        })
    }

    pub fn stratify(&self) -> bool {
        self.split
            .stratify
            .unwrap_or(self.task.kind == TaskKind::Classification)
    }

    /// Semantic checks: names, the flow of columns through the transforms, values in range.
    fn check(&self) -> Result<(), String> {
        crate::store::Key::segment(&self.dataset.name).map_err(|e| format!("dataset.name: {e}"))?;
        if !self.dataset.delimiter.is_ascii() {
            return Err("dataset.delimiter must be one ASCII character".into());
        }
        if self.dataset.columns.is_empty() {
            return Err("dataset.columns: declare at least one column".into());
        }
        let mut columns: Vec<String> = Vec::new();
        for c in &self.dataset.columns {
            if columns.contains(&c.name) {
                return Err(format!("dataset.columns: column '{}' is declared twice", c.name));
            }
            columns.push(c.name.clone());
        }
        if !(self.split.test_fraction > 0.0 && self.split.test_fraction < 1.0) {
            return Err(format!(
                "split.test_fraction must be between 0 and 1, not {}",
                self.split.test_fraction
            ));
        }
        // Follow the column set through the transforms so a misspelt name is caught here, with the
        // step that uses it.
        for (i, step) in self.transform.iter().enumerate() {
            let at = format!("transform step {} ({})", i + 1, step.name());
            let known = |name: &str, columns: &[String]| -> Result<(), String> {
                if columns.iter().any(|c| c == name) {
                    Ok(())
                } else {
                    Err(format!("{at}: unknown column '{name}'{}", suggest(name, columns)))
                }
            };
            match step {
                TransformStep::Select { columns: keep } => {
                    for c in keep {
                        known(c, &columns)?;
                    }
                    columns = keep.clone();
                }
                TransformStep::Drop { columns: gone } => {
                    for c in gone {
                        known(c, &columns)?;
                    }
                    columns.retain(|c| !gone.contains(c));
                }
                TransformStep::Rename { columns: map } => {
                    for (old, new) in map {
                        known(old, &columns)?;
                        if columns.contains(new) && !map.contains_key(new) {
                            return Err(format!(
                                "{at}: renaming '{old}' to '{new}' would clash with an existing column"
                            ));
                        }
                    }
                    for c in &mut columns {
                        if let Some(new) = map.get(c) {
                            *c = new.clone();
                        }
                    }
                }
                TransformStep::Cast { column, .. } | TransformStep::Encode { column, .. } => {
                    known(column, &columns)?;
                    if let TransformStep::Encode {
                        method: EncodeMethod::OneHot,
                        categories: Some(cats),
                        ..
                    } = step
                    {
                        let pos = columns.iter().position(|c| c == column).expect("checked");
                        columns.splice(pos..=pos, cats.iter().map(|cat| format!("{column}={cat}")));
                    }
                }
                TransformStep::FillMissing {
                    columns: cols,
                    strategy,
                    value,
                } => {
                    for c in cols {
                        known(c, &columns)?;
                    }
                    if (*strategy == FillStrategy::Constant) != value.is_some() {
                        return Err(format!(
                            "{at}: 'value' is required with strategy = \"constant\" and only then"
                        ));
                    }
                }
                TransformStep::DropMissing { columns: cols } | TransformStep::Deduplicate { columns: cols } => {
                    for c in cols {
                        known(c, &columns)?;
                    }
                }
                TransformStep::DeriveLabel {
                    source,
                    target,
                    threshold,
                    ..
                } => {
                    known(source, &columns)?;
                    if !threshold.is_finite() {
                        return Err(format!("{at}: threshold must be a finite number"));
                    }
                    if !columns.contains(target) {
                        columns.push(target.clone());
                    }
                }
            }
        }
        // One-hot encoding without fixed categories makes columns only the data can name: from here
        // on, names may be data-dependent, so only names we can see are checked.
        let open_ended = self.transform.iter().any(|s| {
            matches!(
                s,
                TransformStep::Encode {
                    method: EncodeMethod::OneHot,
                    categories: None,
                    ..
                }
            )
        });
        let check_name = |what: &str, name: &str| -> Result<(), String> {
            if open_ended || columns.iter().any(|c| c == name) {
                Ok(())
            } else {
                Err(format!("{what}: unknown column '{name}'{}", suggest(name, &columns)))
            }
        };
        check_name("task.target", &self.task.target)?;
        for (i, e) in self.expectations.iter().enumerate() {
            let at = format!("expectation {} ({})", i + 1, e.check.name());
            for c in e.check.columns() {
                check_name(&at, c)?;
            }
            if let Check::MaxMissingShare { max, .. } = &e.check
                && !(0.0..=1.0).contains(max)
            {
                return Err(format!("{at}: max must be a share between 0 and 1"));
            }
        }
        if self.profile.histogram_bins == 0 || self.profile.reference_bins == 0 {
            return Err("profile: bins must be at least 1".into());
        }
        if let Some(train) = &self.train {
            self.check_train(train)?;
        }
        Ok(())
    }

    fn check_train(&self, train: &TrainConfig) -> Result<(), String> {
        if let Some(name) = &train.model_name {
            crate::store::Key::segment(name).map_err(|e| format!("train.model_name: {e}"))?;
        }
        crate::store::Key::segment(&train.alias).map_err(|e| format!("train.alias: {e}"))?;
        if train.models.is_empty() {
            return Err("train.models: list at least one model family".into());
        }
        if train.folds < 2 {
            return Err(format!("train.folds must be at least 2, not {}", train.folds));
        }
        if !(train.tolerance >= 0.0 && train.tolerance.is_finite()) {
            return Err("train.tolerance must be a non-negative number".into());
        }
        let task = self.task.kind;
        let metric = train.metric(task);
        if metric.for_classification() != (task == TaskKind::Classification) {
            return Err(format!("train.metric '{metric}' does not apply to {task:?} (task.kind)").to_lowercase());
        }
        for (i, spec) in train.models.iter().enumerate() {
            let at = format!("train.models[{}] ({})", i + 1, spec.family.name());
            if spec.family.task() != task {
                return Err(
                    format!("{at}: a {:?} family cannot learn a {:?} task", spec.family.task(), task).to_lowercase(),
                );
            }
            crate::train::check_grid(spec).map_err(|e| format!("{at}: {e}"))?;
        }
        Ok(())
    }
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

impl Check {
    pub fn name(&self) -> &'static str {
        match self {
            Check::ColumnsMatch { .. } => "columns_match",
            Check::NotNull { .. } => "not_null",
            Check::Range { .. } => "range",
            Check::AllowedValues { .. } => "allowed_values",
            Check::Unique { .. } => "unique",
            Check::RowCount { .. } => "row_count",
            Check::MaxMissingShare { .. } => "max_missing_share",
        }
    }

    /// The columns this check names.
    pub fn columns(&self) -> Vec<&str> {
        match self {
            Check::ColumnsMatch { columns } => columns.keys().map(String::as_str).collect(),
            Check::NotNull { columns } | Check::Unique { columns } | Check::MaxMissingShare { columns, .. } => {
                columns.iter().map(String::as_str).collect()
            }
            Check::Range { column, .. } | Check::AllowedValues { column, .. } => vec![column.as_str()],
            Check::RowCount { .. } => vec![],
        }
    }
}

/// `"; did you mean 'x'?"` for the closest candidate, or nothing when none is close.
pub fn suggest<S: AsRef<str>>(name: &str, candidates: &[S]) -> String {
    candidates
        .iter()
        .map(|c| {
            let (a, b) = (name.to_lowercase(), c.as_ref().to_lowercase());
            let mut score = strsim::normalized_damerau_levenshtein(&a, &b);
            // "maximum" for "max", "alc" for "alcohol": a prefix is a strong hint.
            if a.starts_with(&b) || b.starts_with(&a) {
                score = score.max(0.6);
            }
            (score, c.as_ref())
        })
        .filter(|(score, _)| *score >= 0.5)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| format!("; did you mean '{c}'?"))
        .unwrap_or_default()
}

/// toml's messages list the expected keys for an unknown one; add the closest as a suggestion.
fn explain_toml_error(err: &toml::de::Error) -> String {
    let message = err.to_string();
    let Some(rest) = err.message().strip_prefix("unknown field `") else {
        return message;
    };
    let Some((field, expected)) = rest.split_once("`, expected ") else {
        return message;
    };
    let candidates: Vec<&str> = expected
        .split('`')
        .enumerate()
        .filter_map(|(i, s)| (i % 2 == 1).then_some(s))
        .collect();
    format!("{}{}", message.trim_end(), suggest(field, &candidates))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
[dataset]
name = "wine"
source = "wine.csv"
columns = [
  { name = "alcohol", type = "float" },
  { name = "quality", type = "integer" },
]

[[transform]]
op = "derive_label"
source = "quality"
target = "good"
threshold = 6

[task]
kind = "classification"
target = "good"
"#;

    #[test]
    fn minimal_config_loads_with_defaults() {
        let c = PipelineConfig::parse(MINIMAL, PathBuf::from("/data")).unwrap();
        assert_eq!(c.split.test_fraction, 0.2);
        assert!(c.stratify());
        assert_eq!(c.format(), Format::Csv);
        assert_eq!(c.resolved_source(), "/data/wine.csv");
    }

    #[test]
    fn unknown_key_is_named_with_a_suggestion() {
        let text = MINIMAL.replace("threshold = 6", "treshold = 6");
        let err = PipelineConfig::parse(&text, PathBuf::new()).unwrap_err();
        assert!(err.contains("unknown field `treshold`"), "{err}");
        assert!(err.contains("did you mean 'threshold'?"), "{err}");
        assert!(err.contains("line"), "the error says where: {err}");
    }

    #[test]
    fn misspelt_column_is_named_with_a_suggestion() {
        let text = MINIMAL.replace("source = \"quality\"", "source = \"qualty\"");
        let err = PipelineConfig::parse(&text, PathBuf::new()).unwrap_err();
        assert_eq!(
            err,
            "transform step 1 (derive_label): unknown column 'qualty'; did you mean 'quality'?"
        );
    }

    #[test]
    fn misspelt_target_and_expectation_columns_are_caught() {
        let text = format!("{MINIMAL}\n[[expectations]]\nexpect = \"not_null\"\ncolumns = [\"alcohl\"]\n");
        let err = PipelineConfig::parse(&text, PathBuf::new()).unwrap_err();
        assert!(
            err.contains("unknown column 'alcohl'; did you mean 'alcohol'?"),
            "{err}"
        );
    }

    #[test]
    fn unknown_expectation_keys_are_refused() {
        let text = format!("{MINIMAL}\n[[expectations]]\nexpect = \"range\"\ncolumn = \"alcohol\"\nmaximum = 3\n");
        let err = PipelineConfig::parse(&text, PathBuf::new()).unwrap_err();
        assert!(err.contains("unknown field `maximum`"), "{err}");
        assert!(err.contains("did you mean 'max'?"), "{err}");
    }

    #[test]
    fn dataset_name_cannot_escape_the_store() {
        let text = MINIMAL.replace("name = \"wine\"", "name = \"../wine\"");
        let err = PipelineConfig::parse(&text, PathBuf::new()).unwrap_err();
        assert!(err.starts_with("dataset.name"), "{err}");
    }
}
