//! `pipeline.toml`: what data to read, how to shape it, what to expect of it.
//!
//! Loading is strict: unknown keys are errors that name the closest known key, and every column
//! name the config uses is checked against the declared schema (with a suggestion) before any
//! step runs.

mod bundled;
mod dataset;
mod expectations;
mod profile;
mod task;
mod train;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::data::{EncodeMethod, FillStrategy, Format, TransformStep};
use crate::text::suggest;
pub(crate) use bundled::{bundled_example, bundled_example_source};
pub(crate) use dataset::DatasetConfig;
pub(crate) use expectations::{Check, Expectation, Severity};
pub(crate) use profile::ProfileConfig;
pub(crate) use task::{SplitConfig, TaskConfig, TaskKind};
pub use train::{Family, Metric, ModelSpec, RefitGap, TrainConfig};

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
        self.dataset
            .format
            .unwrap_or_else(|| Format::from_name(&self.dataset.source))
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
            train.check(self.task.kind)?;
        }
        Ok(())
    }
}

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
