//! Data profiles: per-column statistics, correlations and warnings ([`build_profile`]), an
//! offline HTML report ([`render_html`]), and the drift reference profile ([`reference_profile`]).
//!
//! A [`DatasetProfile`] is written as `profile.json`; it holds no NaN (undefined statistics are
//! `null`), so it always reads back.

mod html;
mod stats;

use serde::{Deserialize, Serialize};

pub(crate) use html::render_html;
pub(crate) use stats::{Frequencies, NumericStats};

use crate::config::ProfileConfig;
use crate::data::{ColumnType, Table, Values};
use model_wasm::{FeatureReference, ReferenceProfile};

/// A column is reported as mostly missing above this share.
pub(crate) const HIGH_MISSING_SHARE: f64 = 0.2;
/// A column is reported as skewed above this absolute skewness.
pub(crate) const STRONG_SKEW: f64 = 2.0;
/// A pair of columns is reported as highly correlated above this absolute Pearson r.
pub(crate) const HIGH_CORRELATION: f64 = 0.9;

/// The profile of one table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct DatasetProfile {
    pub dataset: String,
    pub rows: u64,
    pub columns: Vec<ColumnProfile>,
    /// Pearson correlations of the numeric columns.
    pub correlations: Correlations,
    pub warnings: Vec<Warning>,
}

/// What one column holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ColumnProfile {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: ColumnType,
    /// Present (non-missing) values.
    pub count: u64,
    pub missing: u64,
    /// `missing / rows` (0 for an empty table).
    pub missing_share: f64,
    /// Distinct present values.
    pub distinct: u64,
    pub summary: ColumnSummary,
}

/// The type-specific part of a column profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum ColumnSummary {
    /// Numeric columns with at least one finite value.
    Numeric(NumericStats),
    /// Categorical, string and boolean columns with at least one value (booleans as
    /// `"true"`/`"false"`).
    Frequencies(Frequencies),
    /// No value to summarise.
    Empty,
}

/// A symmetric matrix of correlations; `None` where undefined (a column without spread, or fewer
/// than two rows where both columns are present).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub(crate) struct Correlations {
    pub columns: Vec<String>,
    /// `values[i][j]` is the correlation of `columns[i]` and `columns[j]`.
    pub values: Vec<Vec<Option<f64>>>,
}

impl Correlations {
    /// The correlation of two columns by name.
    pub(crate) fn get(&self, a: &str, b: &str) -> Option<f64> {
        let i = self.columns.iter().position(|c| c == a)?;
        let j = self.columns.iter().position(|c| c == b)?;
        self.values[i][j]
    }
}

/// Something about the data worth a look before training on it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Warning {
    pub column: String,
    /// The second column of a correlated pair.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub other_column: Option<String>,
    pub kind: WarningKind,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum WarningKind {
    /// At most one distinct value.
    Constant,
    /// More than [`HIGH_MISSING_SHARE`] of the values missing.
    HighMissing,
    /// A categorical column with many distinct values, or a string column of unique values.
    HighCardinality,
    /// |skewness| above [`STRONG_SKEW`].
    Skewed,
    /// |r| above [`HIGH_CORRELATION`] with another column.
    HighCorrelation,
}

impl WarningKind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            WarningKind::Constant => "constant",
            WarningKind::HighMissing => "high missing",
            WarningKind::HighCardinality => "high cardinality",
            WarningKind::Skewed => "skewed",
            WarningKind::HighCorrelation => "high correlation",
        }
    }
}

/// Computes the profile of `table`.
pub(crate) fn build_profile(dataset: &str, table: &Table, config: &ProfileConfig) -> DatasetProfile {
    let rows = table.rows();
    let columns: Vec<ColumnProfile> = table
        .columns
        .iter()
        .map(|c| column_profile(&c.name, c.ty, &c.values, rows, config.histogram_bins))
        .collect();

    let numeric: Vec<(&str, &[Option<f64>])> = table
        .columns
        .iter()
        .filter_map(|c| Some((c.name.as_str(), c.numbers()?)))
        .collect();
    let mut values = vec![vec![None; numeric.len()]; numeric.len()];
    for i in 0..numeric.len() {
        // A column with spread correlates with itself exactly, not to within rounding.
        values[i][i] = stats::pearson(numeric[i].1, numeric[i].1).map(|_| 1.0);
        for j in i + 1..numeric.len() {
            let r = stats::pearson(numeric[i].1, numeric[j].1);
            values[i][j] = r;
            values[j][i] = r;
        }
    }
    let correlations = Correlations {
        columns: numeric.iter().map(|(name, _)| (*name).to_owned()).collect(),
        values,
    };

    let warnings = warnings(&columns, &correlations, config);
    DatasetProfile {
        dataset: dataset.to_owned(),
        rows: rows as u64,
        columns,
        correlations,
        warnings,
    }
}

fn column_profile(name: &str, ty: ColumnType, values: &Values, rows: usize, bins: usize) -> ColumnProfile {
    let (count, distinct, summary) = match values {
        Values::Number(v) => {
            let present: Vec<f64> = v.iter().flatten().copied().collect();
            let summary = stats::numeric_stats(&present, bins).map_or(ColumnSummary::Empty, ColumnSummary::Numeric);
            (present.len(), stats::distinct_numbers(&present), summary)
        }
        Values::Bool(v) => {
            let present = v.iter().flatten().map(|b| if *b { "true" } else { "false" });
            text_summary(present)
        }
        Values::Text(v) => text_summary(v.iter().flatten().map(String::as_str)),
    };
    let missing = rows - count;
    ColumnProfile {
        name: name.to_owned(),
        ty,
        count: count as u64,
        missing: missing as u64,
        missing_share: if rows == 0 { 0.0 } else { missing as f64 / rows as f64 },
        distinct,
        summary,
    }
}

fn text_summary<'a>(present: impl IntoIterator<Item = &'a str>) -> (usize, u64, ColumnSummary) {
    let (frequencies, distinct) = stats::frequencies(present);
    let count = frequencies.top.iter().map(|v| v.count).sum::<u64>() + frequencies.other;
    let summary = if count == 0 {
        ColumnSummary::Empty
    } else {
        ColumnSummary::Frequencies(frequencies)
    };
    (count as usize, distinct, summary)
}

fn warnings(columns: &[ColumnProfile], correlations: &Correlations, config: &ProfileConfig) -> Vec<Warning> {
    let mut out = Vec::new();
    let mut warn = |column: &str, kind, message: String| {
        out.push(Warning {
            column: column.to_owned(),
            other_column: None,
            kind,
            message,
        })
    };
    for c in columns {
        let rows = c.count + c.missing;
        if rows > 0 && c.distinct <= 1 {
            let message = match c.distinct {
                0 => "has no values".to_owned(),
                _ => format!(
                    "has a single value{}",
                    single_value(c).map(|v| format!(" ({v})")).unwrap_or_default()
                ),
            };
            warn(&c.name, WarningKind::Constant, message);
        }
        if c.missing_share > HIGH_MISSING_SHARE {
            let message = format!(
                "{:.1}% of values are missing ({} of {rows})",
                c.missing_share * 100.0,
                c.missing
            );
            warn(&c.name, WarningKind::HighMissing, message);
        }
        match c.ty {
            ColumnType::Categorical if c.distinct as usize > config.high_cardinality => {
                let message = format!(
                    "{} distinct values (more than {}): consider grouping rare categories",
                    c.distinct, config.high_cardinality
                );
                warn(&c.name, WarningKind::HighCardinality, message);
            }
            ColumnType::String if c.count > 1 && c.distinct == c.count => {
                let message = format!("every value is distinct ({}): an identifier or free text?", c.distinct);
                warn(&c.name, WarningKind::HighCardinality, message);
            }
            _ => {}
        }
        if let ColumnSummary::Numeric(s) = &c.summary
            && let Some(skew) = s.skewness.filter(|s| s.abs() > STRONG_SKEW)
        {
            let side = if skew > 0.0 { "right" } else { "left" };
            let message =
                format!("strongly skewed to the {side} (skewness {skew:.2}): a log or rank transform may help");
            warn(&c.name, WarningKind::Skewed, message);
        }
    }
    let names = &correlations.columns;
    for i in 0..names.len() {
        for j in i + 1..names.len() {
            if let Some(r) = correlations.values[i][j].filter(|r| r.abs() > HIGH_CORRELATION) {
                out.push(Warning {
                    column: names[i].clone(),
                    other_column: Some(names[j].clone()),
                    kind: WarningKind::HighCorrelation,
                    message: format!("highly correlated with '{}' (r = {r:.3})", names[j]),
                });
            }
        }
    }
    out
}

/// The one value of a constant column, as text.
fn single_value(c: &ColumnProfile) -> Option<String> {
    match &c.summary {
        ColumnSummary::Numeric(s) => Some(s.min.to_string()),
        ColumnSummary::Frequencies(f) => f.top.first().map(|v| format!("'{}'", v.value)),
        ColumnSummary::Empty => None,
    }
}

/// The drift reference of `features` in the training table: quantile bins for numeric columns
/// (missing values skipped), category frequencies for categorical, string and boolean columns.
pub(crate) fn reference_profile(
    train: &Table,
    features: &[String],
    bins: usize,
) -> Result<ReferenceProfile, model_wasm::Error> {
    let features = features
        .iter()
        .map(|name| {
            let column = train.column(name).ok_or_else(|| model_wasm::Error::InvalidReference {
                feature: name.clone(),
                reason: "no such column in the training table".to_owned(),
            })?;
            match &column.values {
                Values::Number(v) => {
                    let present: Vec<f64> = v.iter().flatten().copied().collect();
                    FeatureReference::numeric_from_values(name, &present, bins)
                }
                Values::Bool(v) => FeatureReference::categorical_from_values(
                    name,
                    v.iter().map(|b| b.map(|b| if b { "true" } else { "false" })),
                ),
                Values::Text(v) => FeatureReference::categorical_from_values(name, v.iter().map(Option::as_deref)),
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ReferenceProfile {
        rows: train.rows() as u64,
        features,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use std::path::Path;

    use super::*;
    use crate::data::Column;
    use crate::data::ColumnSpec;
    use crate::profile::stats::TOP_VALUES;

    pub(crate) fn numbers(name: &str, v: &[Option<f64>]) -> Column {
        Column {
            name: name.to_owned(),
            ty: ColumnType::Float,
            values: Values::Number(v.to_vec()),
        }
    }

    pub(crate) fn texts(name: &str, ty: ColumnType, v: &[Option<&str>]) -> Column {
        Column {
            name: name.to_owned(),
            ty,
            values: Values::Text(v.iter().map(|s| s.map(str::to_owned)).collect()),
        }
    }

    /// Six rows: two number columns (one value of `x` missing), a category, a boolean; nothing
    /// worth a warning.
    pub(crate) fn tiny() -> Table {
        Table {
            columns: vec![
                numbers("x", &[Some(7.0), Some(2.0), None, Some(1.0), Some(3.0), Some(2.0)]),
                numbers(
                    "y",
                    &[Some(1.0), Some(0.0), Some(4.0), Some(2.0), Some(-1.0), Some(5.0)],
                ),
                texts(
                    "colour",
                    ColumnType::Categorical,
                    &[
                        Some("red"),
                        Some("white"),
                        Some("red"),
                        Some("rosé"),
                        Some("red"),
                        Some("white"),
                    ],
                ),
                Column {
                    name: "organic".into(),
                    ty: ColumnType::Boolean,
                    values: Values::Bool(vec![Some(true), Some(false), Some(true), None, Some(true), Some(true)]),
                },
            ],
        }
    }

    fn config(bins: usize) -> ProfileConfig {
        ProfileConfig {
            histogram_bins: bins,
            ..ProfileConfig::default()
        }
    }

    fn kinds(p: &DatasetProfile, column: &str) -> Vec<WarningKind> {
        p.warnings
            .iter()
            .filter(|w| w.column == column)
            .map(|w| w.kind)
            .collect()
    }

    #[test]
    fn column_statistics_on_a_tiny_table() {
        let p = build_profile("tiny", &tiny(), &config(3));
        assert_eq!((p.rows, p.columns.len()), (6, 4));
        let x = &p.columns[0];
        assert_eq!((x.ty, x.count, x.missing, x.distinct), (ColumnType::Float, 5, 1, 4));
        assert!((x.missing_share - 1.0 / 6.0).abs() < 1e-12);
        let ColumnSummary::Numeric(s) = &x.summary else {
            panic!("{:?}", x.summary)
        };
        // 7 2 1 3 2: deviations from 3 are 4 -1 -2 0 -1, squares sum to 22.
        assert!((s.mean - 3.0).abs() < 1e-12);
        assert!((s.std.unwrap() - 5.5f64.sqrt()).abs() < 1e-12);
        assert_eq!((s.quantiles.p25, s.quantiles.p50, s.quantiles.p75), (2.0, 2.0, 3.0));
        assert!((s.quantiles.p5 - 1.2).abs() < 1e-12 && (s.quantiles.p95 - 6.2).abs() < 1e-12);
        assert_eq!(s.histogram.edges, vec![1.0, 3.0, 5.0, 7.0]);
        assert_eq!(s.histogram.counts, vec![3, 1, 1]);
        assert_eq!(s.histogram.counts.iter().sum::<u64>(), x.count);
        let ColumnSummary::Numeric(y) = &p.columns[1].summary else {
            panic!()
        };
        assert_eq!((y.zeros, y.min, y.max), (1, -1.0, 5.0));

        let colour = &p.columns[2];
        assert_eq!((colour.count, colour.distinct), (6, 3));
        let ColumnSummary::Frequencies(f) = &colour.summary else {
            panic!()
        };
        let top: Vec<(&str, u64)> = f.top.iter().map(|v| (v.value.as_str(), v.count)).collect();
        assert_eq!(top, [("red", 3), ("white", 2), ("rosé", 1)]);
        assert_eq!(f.other, 0);

        let organic = &p.columns[3];
        assert_eq!((organic.count, organic.missing, organic.distinct), (5, 1, 2));
        let ColumnSummary::Frequencies(f) = &organic.summary else {
            panic!()
        };
        assert_eq!((f.top[0].value.as_str(), f.top[0].count), ("true", 4));
    }

    #[test]
    fn correlation_matrix_covers_numeric_columns_only() {
        let x: Vec<Option<f64>> = (0..10).map(|i| Some(i as f64)).collect();
        let up: Vec<Option<f64>> = x.iter().map(|v| v.map(|v| 2.0 * v - 3.0)).collect();
        let down: Vec<Option<f64>> = x.iter().map(|v| v.map(|v| -v)).collect();
        let table = Table {
            columns: vec![
                numbers("x", &x),
                numbers("up", &up),
                texts("t", ColumnType::String, &[Some("a"); 10]),
                numbers("down", &down),
                numbers("flat", &[Some(1.0); 10]),
            ],
        };
        let p = build_profile("c", &table, &ProfileConfig::default());
        let c = &p.correlations;
        assert_eq!(c.columns, ["x", "up", "down", "flat"]);
        assert!((c.get("x", "up").unwrap() - 1.0).abs() < 1e-12);
        assert!((c.get("down", "x").unwrap() + 1.0).abs() < 1e-12);
        assert_eq!(c.get("x", "flat"), None);
        assert_eq!(c.get("flat", "flat"), None);
        assert_reads_back(&p);
    }

    #[test]
    fn a_normal_table_has_no_warnings() {
        let p = build_profile("tiny", &tiny(), &ProfileConfig::default());
        assert_eq!(p.warnings, []);
    }

    #[test]
    fn constant_and_missing_columns_are_reported() {
        let column = |name, v: [Option<f64>; 10]| numbers(name, &v);
        let table = Table {
            columns: vec![
                column("const", [Some(7.0); 10]),
                texts("label", ColumnType::Categorical, &[Some("a"); 10]),
                column(
                    "holes",
                    [
                        Some(1.),
                        None,
                        Some(3.),
                        None,
                        Some(2.),
                        None,
                        Some(4.),
                        Some(1.),
                        Some(2.),
                        Some(3.),
                    ],
                ),
                column(
                    "ok",
                    [
                        Some(2.),
                        Some(1.),
                        None,
                        Some(4.),
                        Some(3.),
                        None,
                        Some(1.),
                        Some(5.),
                        Some(4.),
                        Some(3.),
                    ],
                ),
            ],
        };
        let p = build_profile("w", &table, &ProfileConfig::default());
        assert_eq!(kinds(&p, "const"), [WarningKind::Constant]);
        assert_eq!(kinds(&p, "label"), [WarningKind::Constant]);
        assert_eq!(kinds(&p, "holes"), [WarningKind::HighMissing]);
        assert_eq!(kinds(&p, "ok"), [], "20% missing is not above the limit");
        let w = p.warnings.iter().find(|w| w.column == "holes").unwrap();
        assert!(
            w.message.contains("30.0% of values are missing (3 of 10)"),
            "{}",
            w.message
        );
    }

    #[test]
    fn high_cardinality_is_reported_for_many_categories_and_unique_strings() {
        let ids: Vec<String> = (0..60).map(|i| format!("id-{i}")).collect();
        let ids: Vec<Option<&str>> = ids.iter().map(|s| Some(s.as_str())).collect();
        let few: Vec<Option<&str>> = (0..60).map(|i| Some(["a", "b", "c"][i % 3])).collect();
        let table = Table {
            columns: vec![
                texts("cat", ColumnType::Categorical, &ids),
                texts("text", ColumnType::String, &ids),
                texts("few", ColumnType::Categorical, &few),
                texts("repeats", ColumnType::String, &few),
            ],
        };
        let p = build_profile("w", &table, &ProfileConfig::default());
        assert_eq!(kinds(&p, "cat"), [WarningKind::HighCardinality]);
        assert_eq!(kinds(&p, "text"), [WarningKind::HighCardinality]);
        assert_eq!(kinds(&p, "few"), []);
        assert_eq!(kinds(&p, "repeats"), []);
        let ColumnSummary::Frequencies(f) = &p.columns[0].summary else {
            panic!()
        };
        assert_eq!((f.top.len(), f.other), (TOP_VALUES, 40));
        let generous = ProfileConfig {
            high_cardinality: 60,
            ..ProfileConfig::default()
        };
        assert_eq!(kinds(&build_profile("w", &table, &generous), "cat"), []);
    }

    #[test]
    fn skew_and_correlation_are_reported() {
        // One large value among many small ones: skewness about 4.5.
        let skewed: Vec<Option<f64>> = (0..20)
            .map(|i| Some(if i == 0 { 100.0 } else { (i % 3) as f64 }))
            .collect();
        let x: Vec<Option<f64>> = (0..20).map(|i| Some(i as f64)).collect();
        let noisy: Vec<Option<f64>> = (0..20).map(|i| Some(i as f64 + [0.3, -0.2, 0.1][i % 3])).collect();
        let table = Table {
            columns: vec![numbers("skewed", &skewed), numbers("x", &x), numbers("noisy", &noisy)],
        };
        let p = build_profile("w", &table, &ProfileConfig::default());
        assert_eq!(kinds(&p, "skewed"), [WarningKind::Skewed]);
        assert_eq!(kinds(&p, "x"), [WarningKind::HighCorrelation]);
        let w = p
            .warnings
            .iter()
            .find(|w| w.kind == WarningKind::HighCorrelation)
            .unwrap();
        assert_eq!(w.other_column.as_deref(), Some("noisy"));
        assert!(w.message.contains("'noisy'"), "{}", w.message);
    }

    #[test]
    fn reference_profile_round_trips() {
        let features: Vec<String> = ["x", "colour", "organic"].map(String::from).to_vec();
        let r = reference_profile(&tiny(), &features, 2).unwrap();
        assert_eq!(r.rows, 6);
        let names: Vec<&str> = r.features.iter().map(FeatureReference::name).collect();
        assert_eq!(names, ["x", "colour", "organic"]);
        // x without its missing value: 1 2 2 3 7, median 2.
        let FeatureReference::Numeric { edges, proportions, .. } = r.feature("x").unwrap() else {
            panic!()
        };
        assert_eq!(
            (edges.as_slice(), proportions.as_slice()),
            ([2.0].as_slice(), [0.2, 0.8].as_slice())
        );
        let FeatureReference::Categorical {
            categories,
            proportions,
            ..
        } = r.feature("organic").unwrap()
        else {
            panic!()
        };
        assert_eq!(categories, &["true", "false"]);
        assert_eq!(proportions, &[0.8, 0.2]);
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(serde_json::from_str::<ReferenceProfile>(&json).unwrap(), r);
    }

    #[test]
    fn reference_profile_names_a_bad_feature() {
        let err = reference_profile(&tiny(), &["alcohol".to_owned()], 10).unwrap_err();
        assert!(
            matches!(&err, model_wasm::Error::InvalidReference { feature, .. } if feature == "alcohol"),
            "{err}"
        );
        let mut table = tiny();
        table.columns.push(numbers("empty", &[None; 6]));
        let err = reference_profile(&table, &["empty".to_owned()], 10).unwrap_err();
        assert!(err.to_string().contains("'empty'"), "{err}");
    }

    fn wine() -> Table {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/winequality/winequality-red.csv");
        let names = [
            "fixed acidity",
            "volatile acidity",
            "citric acid",
            "residual sugar",
            "chlorides",
            "free sulfur dioxide",
            "total sulfur dioxide",
            "density",
            "pH",
            "sulphates",
            "alcohol",
            "quality",
        ];
        let specs: Vec<ColumnSpec> = names
            .iter()
            .map(|name| ColumnSpec {
                name: (*name).to_owned(),
                ty: if *name == "quality" {
                    ColumnType::Integer
                } else {
                    ColumnType::Float
                },
                nullable: false,
                allow_non_finite: false,
            })
            .collect();
        Table::read_csv(&path, &specs).unwrap()
    }

    #[test]
    fn profiles_the_bundled_wine_data() {
        let p = build_profile("winequality-red", &wine(), &ProfileConfig::default());
        assert_eq!((p.rows, p.columns.len()), (1599, 12));
        let alcohol = p.columns.iter().find(|c| c.name == "alcohol").unwrap();
        let ColumnSummary::Numeric(s) = &alcohol.summary else {
            panic!()
        };
        assert_eq!((s.min, s.max), (8.4, 14.9));
        assert_eq!(s.histogram.counts.len(), 20);
        assert_eq!(s.histogram.counts.iter().sum::<u64>(), 1599);
        let quality = p.columns.iter().find(|c| c.name == "quality").unwrap();
        assert_eq!(
            (quality.ty, quality.distinct, quality.missing),
            (ColumnType::Integer, 6, 0)
        );
        assert_eq!(p.correlations.columns.len(), 12);
        // Well known: alcohol goes with quality (r about 0.48), density against alcohol (about -0.50).
        let r = p.correlations.get("alcohol", "quality").unwrap();
        assert!((0.45..0.50).contains(&r), "{r}");
        // Chlorides and residual sugar have a long right tail.
        let skewed: Vec<&str> = p
            .warnings
            .iter()
            .filter(|w| w.kind == WarningKind::Skewed)
            .map(|w| w.column.as_str())
            .collect();
        assert!(
            skewed.contains(&"chlorides") && skewed.contains(&"residual sugar"),
            "{skewed:?}"
        );
        // To look at the report: WASMLINE_PROFILE_HTML=/tmp/profile.html cargo test -p control-plane --lib wine
        if let Some(path) = std::env::var_os("WASMLINE_PROFILE_HTML") {
            std::fs::write(path, render_html(&p)).unwrap();
        }
        assert_reads_back(&p);
    }

    /// The profile's JSON parses back to the same profile. serde_json (without its
    /// `float_roundtrip` feature) may read a float one ulp off, so numbers compare within 1e-15.
    fn assert_reads_back(p: &DatasetProfile) {
        fn same(a: &serde_json::Value, b: &serde_json::Value) -> bool {
            use serde_json::Value as V;
            match (a, b) {
                (V::Number(x), V::Number(y)) => {
                    let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
                    (x - y).abs() <= 1e-15 * x.abs().max(y.abs())
                }
                (V::Array(x), V::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y)),
                (V::Object(x), V::Object(y)) => {
                    x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
                }
                _ => a == b,
            }
        }
        let json = serde_json::to_string(p).unwrap();
        // serde_json writes NaN as null, which would not read back into an f64.
        let back: DatasetProfile = serde_json::from_str(&json).expect("profile.json reads back");
        assert!(same(
            &serde_json::to_value(&back).unwrap(),
            &serde_json::to_value(p).unwrap()
        ));
    }
}
