//! Turning caller rows into the model's feature vectors, refusing anything that would give a
//! silent wrong answer: a missing or unknown feature, a value that is not a number, an infinity,
//! and a missing value (NaN, `null`) for a feature the model does not route. Every error names
//! the row (`rows[i]`, as the caller's array indexes it) and the feature.
//!
//! A feature whose manifest entry says `missing: true` (the model routes missing values of it,
//! [`crate::ModelIr::accepts_missing`]) takes NaN, `null` and JavaScript's `undefined`, all
//! passed on as NaN; a feature left out of a named row stays an error even then (send `null`),
//! so a misspelt or forgotten name is never taken for a missing value.
//!
//! The browser SDK feeds it JavaScript values and the edge JSON values, through [`Cell`], so both
//! refuse the same rows with the same words.
//!
//! ```
//! use model_wasm::schema::InputSchema;
//!
//! let schema = InputSchema::new(vec!["alcohol".into(), "pH".into()]).unwrap();
//! let rows = serde_json::json!([{"pH": 3.2, "alcohol": 11.0}, [12.5, 3.4], {"alcohol": 9.0}]);
//! let mut x = vec![0.0; 2];
//! schema.json_row(0, &rows[0], &mut x).unwrap();
//! assert_eq!(x, [11.0, 3.2]);
//! schema.json_row(1, &rows[1], &mut x).unwrap();
//! assert_eq!(x, [12.5, 3.4]);
//! let err = schema.json_row(2, &rows[2], &mut x).unwrap_err();
//! assert_eq!(err.to_string(), "rows[2]: feature 'pH' is missing");
//!
//! // A model that routes missing values of pH.
//! let schema = schema.with_missing(vec![false, true]).unwrap();
//! schema.json_row(3, &serde_json::json!({"alcohol": 9.0, "pH": null}), &mut x).unwrap();
//! assert!(x[1].is_nan());
//! let err = schema.json_row(4, &serde_json::json!([null, 3.1]), &mut x).unwrap_err();
//! assert_eq!(err.to_string(), "rows[4]: feature 'alcohol' is null, not a number");
//! ```

use alloc::{borrow::ToOwned, format, string::String, vec, vec::Vec};

use crate::manifest::ManifestView;
use crate::{Error, Result};

/// One value of a caller's row, as the schema check sees it.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Number(f64),
    /// Not in the row at all: a named row without the feature.
    Missing,
    /// An explicit "no value": JSON's or JavaScript's `null` (`"null"`), JavaScript's `undefined`
    /// (`"undefined"`); the word is for the message. A missing value where the feature takes one.
    Null(&'static str),
    /// Anything else, described for the error message: `a string ("3.2")`, `null`, ...
    Other(String),
}

/// The model's features, in input order, and the checks a row must pass.
#[derive(Debug, Clone, PartialEq)]
pub struct InputSchema {
    names: Vec<String>,
    /// `(name, position)`, sorted by name.
    index: Vec<(String, usize)>,
    /// Per feature: whether a missing value (NaN) is passed on rather than refused.
    missing: Vec<bool>,
}

impl InputSchema {
    /// A schema over `names` (the model's input order) that refuses every missing value; names
    /// must be unique.
    pub fn new(names: Vec<String>) -> Result<InputSchema> {
        let mut index: Vec<(String, usize)> = Vec::with_capacity(names.len());
        for (i, name) in names.iter().enumerate() {
            match index.binary_search_by(|(n, _)| n.as_str().cmp(name)) {
                Err(at) => index.insert(at, (name.clone(), i)),
                Ok(_) => return Err(Error::InvalidManifest(format!("feature '{name}' is listed twice"))),
            }
        }
        let missing = vec![false; names.len()];
        Ok(InputSchema { names, index, missing })
    }

    /// The schema of a manifest's features: their names, and which take missing values.
    pub fn of_manifest(manifest: &ManifestView) -> Result<InputSchema> {
        InputSchema::new(manifest.feature_names())?.with_missing(manifest.features.iter().map(|f| f.missing).collect())
    }

    /// The same schema passing on missing values (as NaN) of the features marked `true`, one flag
    /// per feature.
    pub fn with_missing(mut self, missing: Vec<bool>) -> Result<InputSchema> {
        if missing.len() != self.names.len() {
            return Err(Error::InvalidManifest(format!(
                "{} missing-value flags for {} features",
                missing.len(),
                self.names.len()
            )));
        }
        self.missing = missing;
        Ok(self)
    }

    /// Whether feature `i` takes a missing value.
    pub fn accepts_missing(&self, i: usize) -> bool {
        self.missing.get(i).copied().unwrap_or(false)
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The position of a feature in the input order.
    pub fn position(&self, name: &str) -> Option<usize> {
        let at = self.index.binary_search_by(|(n, _)| n.as_str().cmp(name)).ok()?;
        Some(self.index[at].1)
    }

    /// Fills `out` (one slot per feature) from row `row` given by name: `keys` are every name
    /// the row carries, `get` gives the value of a feature. Unknown names are reported first (a
    /// misspelt name is then not reported as a missing feature).
    pub fn named_row<K: AsRef<str>>(
        &self,
        row: usize,
        keys: impl IntoIterator<Item = K>,
        mut get: impl FnMut(&str) -> Cell,
        out: &mut [f64],
    ) -> Result<()> {
        assert!(out.len() == self.len(), "one output slot per feature");
        for key in keys {
            let key = key.as_ref();
            if self.position(key).is_none() {
                return Err(Error::InvalidRow {
                    row,
                    feature: Some(key.to_owned()),
                    reason: format!("is not one of the model's features ({})", self.listing()),
                });
            }
        }
        for (i, (slot, name)) in out.iter_mut().zip(&self.names).enumerate() {
            *slot = self.number(row, i, get(name))?;
        }
        Ok(())
    }

    /// Fills `out` from row `row` given as values in feature order.
    pub fn positional_row(&self, row: usize, cells: &[Cell], out: &mut [f64]) -> Result<()> {
        assert!(out.len() == self.len(), "one output slot per feature");
        if cells.len() != self.len() {
            return Err(Error::InvalidRow {
                row,
                feature: None,
                reason: format!(
                    "{} value{} for {} features (in order: {})",
                    cells.len(),
                    if cells.len() == 1 { "" } else { "s" },
                    self.len(),
                    self.listing()
                ),
            });
        }
        for (i, (slot, cell)) in out.iter_mut().zip(cells).enumerate() {
            *slot = self.number(row, i, cell.clone())?;
        }
        Ok(())
    }

    /// Fills `out` from a JSON row: an object `{feature: number}` or an array in feature order.
    #[cfg(feature = "std")]
    pub fn json_row(&self, row: usize, value: &serde_json::Value, out: &mut [f64]) -> Result<()> {
        match value {
            serde_json::Value::Object(map) => self.named_row(
                row,
                map.keys(),
                |name| map.get(name).map_or(Cell::Missing, json_cell),
                out,
            ),
            serde_json::Value::Array(items) => {
                let cells: Vec<Cell> = items.iter().map(json_cell).collect();
                self.positional_row(row, &cells, out)
            }
            other => Err(Error::InvalidRow {
                row,
                feature: None,
                reason: format!(
                    "is {}, not an object {{feature: number}} or an array in feature order",
                    describe_json(other)
                ),
            }),
        }
    }

    /// The value of feature `i` in row `row`, or why there is none.
    fn number(&self, row: usize, i: usize, cell: Cell) -> Result<f64> {
        let takes_missing = self.accepts_missing(i);
        let reason = match cell {
            Cell::Number(v) if v.is_finite() => return Ok(v),
            Cell::Number(v) if v.is_nan() && takes_missing => return Ok(f64::NAN),
            Cell::Null(_) if takes_missing => return Ok(f64::NAN),
            Cell::Number(v) if v.is_nan() => "is NaN, not a finite number".to_owned(),
            Cell::Number(v) => format!(
                "is {}, not a finite number",
                if v > 0.0 { "Infinity" } else { "-Infinity" }
            ),
            Cell::Missing if takes_missing => "is missing (send null or NaN for a missing value)".to_owned(),
            Cell::Missing => "is missing".to_owned(),
            Cell::Null(word) => format!("is {word}, not a number"),
            Cell::Other(what) => format!("is {what}, not a number"),
        };
        Err(Error::InvalidRow {
            row,
            feature: Some(self.names[i].clone()),
            reason,
        })
    }

    /// The feature names for a message, shortened past a dozen.
    fn listing(&self) -> String {
        const SHOWN: usize = 12;
        let mut s = String::new();
        for (i, name) in self.names.iter().take(SHOWN).enumerate() {
            if i > 0 {
                s.push_str(", ");
            }
            s.push_str(name);
        }
        if self.len() > SHOWN {
            s.push_str(&format!(", ... {} more", self.len() - SHOWN));
        }
        s
    }
}

#[cfg(feature = "std")]
fn json_cell(value: &serde_json::Value) -> Cell {
    match value {
        serde_json::Value::Null => Cell::Null("null"),
        _ => match value.as_f64() {
            Some(v) => Cell::Number(v),
            None => Cell::Other(describe_json(value)),
        },
    }
}

#[cfg(feature = "std")]
fn describe_json(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::Null => "null".to_owned(),
        serde_json::Value::Bool(b) => format!("a boolean ({b})"),
        serde_json::Value::Number(n) => format!("the number {n}"),
        serde_json::Value::String(s) => describe_string(s),
        serde_json::Value::Array(_) => "an array".to_owned(),
        serde_json::Value::Object(_) => "an object".to_owned(),
    }
}

/// `a string ("3.2")`, cut after 20 characters; quoted as JSON quotes a string.
pub fn describe_string(s: &str) -> String {
    const SHOWN: usize = 20;
    match s.char_indices().nth(SHOWN) {
        Some((cut, _)) => format!("a string ({}...)", crate::json::quoted(s.get(..cut).unwrap_or(s))),
        None => format!("a string ({})", crate::json::quoted(s)),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn schema() -> InputSchema {
        InputSchema::new(vec!["alcohol".into(), "pH".into(), "sulphates".into()]).unwrap()
    }

    fn row_error(value: serde_json::Value) -> String {
        let mut out = [0.0; 3];
        schema().json_row(4, &value, &mut out).unwrap_err().to_string()
    }

    #[test]
    fn named_and_positional_rows_give_the_feature_order() {
        let s = schema();
        let mut out = [0.0; 3];
        s.json_row(0, &json!({"sulphates": 0.5, "alcohol": 11, "pH": 3.25}), &mut out)
            .unwrap();
        assert_eq!(out, [11.0, 3.25, 0.5]);
        s.json_row(1, &json!([1, 2.5, -3e-9]), &mut out).unwrap();
        assert_eq!(out, [1.0, 2.5, -3e-9]);
        assert_eq!(s.position("pH"), Some(1));
        assert_eq!(s.position("ph"), None);
    }

    #[test]
    fn every_bad_value_is_named_with_its_row_and_feature() {
        assert_eq!(
            row_error(json!({"alcohol": 11, "pH": 3.2})),
            "rows[4]: feature 'sulphates' is missing"
        );
        assert_eq!(
            row_error(json!({"alcohol": 11, "ph": 3.2, "sulphates": 1})),
            "rows[4]: feature 'ph' is not one of the model's features (alcohol, pH, sulphates)"
        );
        assert_eq!(
            row_error(json!({"alcohol": "11.5", "pH": 3.2, "sulphates": 1})),
            "rows[4]: feature 'alcohol' is a string (\"11.5\"), not a number"
        );
        assert_eq!(
            row_error(json!({"alcohol": 11, "pH": null, "sulphates": 1})),
            "rows[4]: feature 'pH' is null, not a number"
        );
        assert_eq!(
            row_error(json!([1, true, 2])),
            "rows[4]: feature 'pH' is a boolean (true), not a number"
        );
        assert_eq!(
            row_error(json!([1, 2])),
            "rows[4]: 2 values for 3 features (in order: alcohol, pH, sulphates)"
        );
        assert_eq!(
            row_error(json!(12)),
            "rows[4]: is the number 12, not an object {feature: number} or an array in feature order"
        );
    }

    #[test]
    fn nan_and_infinities_are_refused() {
        let s = schema();
        let mut out = [0.0; 3];
        let cells = |v: f64| [Cell::Number(1.0), Cell::Number(v), Cell::Number(2.0)];
        for (v, word) in [
            (f64::NAN, "NaN"),
            (f64::INFINITY, "Infinity"),
            (f64::NEG_INFINITY, "-Infinity"),
        ] {
            let err = s.positional_row(9, &cells(v), &mut out).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("rows[9]: feature 'pH' is {word}, not a finite number")
            );
            assert!(matches!(err, Error::InvalidRow { row: 9, feature: Some(ref f), .. } if f == "pH"));
        }
        let err = s
            .named_row(0, ["alcohol", "pH", "sulphates"], |_| Cell::Missing, &mut out)
            .unwrap_err();
        assert_eq!(err.to_string(), "rows[0]: feature 'alcohol' is missing");
    }

    /// `pH` takes missing values, `alcohol` and `sulphates` do not.
    fn routing_ph() -> InputSchema {
        schema().with_missing(vec![false, true, false]).unwrap()
    }

    #[test]
    fn a_feature_the_model_routes_takes_nan_and_null_as_nan() {
        let s = routing_ph();
        let mut out = [0.0; 3];
        for cell in [Cell::Number(f64::NAN), Cell::Null("null"), Cell::Null("undefined")] {
            out = [0.0; 3];
            s.positional_row(0, &[Cell::Number(1.0), cell.clone(), Cell::Number(2.0)], &mut out)
                .unwrap_or_else(|e| panic!("{cell:?}: {e}"));
            assert_eq!((out[0], out[2]), (1.0, 2.0));
            assert!(out[1].is_nan(), "{cell:?} gives {}", out[1]);
        }
        s.json_row(1, &json!({"alcohol": 11, "pH": null, "sulphates": 0.5}), &mut out)
            .unwrap();
        assert!(out[1].is_nan());
        s.json_row(2, &json!([11, null, 0.5]), &mut out).unwrap();
        assert!(out[1].is_nan());
        // A NaN with another payload (or sign) is still NaN, passed on as the quiet NaN.
        let odd = f64::from_bits(0xfff0_0000_0000_0001);
        s.positional_row(3, &[Cell::Number(1.0), Cell::Number(odd), Cell::Number(2.0)], &mut out)
            .unwrap();
        assert_eq!(out[1].to_bits(), f64::NAN.to_bits());
        assert!(s.accepts_missing(1));
        assert!(!s.accepts_missing(0));
        assert!(!s.accepts_missing(99));
    }

    #[test]
    fn the_other_features_keep_refusing_a_missing_value_by_name() {
        let s = routing_ph();
        let mut out = [0.0; 3];
        let err = |row: serde_json::Value| s.json_row(7, &row, &mut [0.0; 3]).unwrap_err().to_string();
        assert_eq!(
            err(json!({"alcohol": null, "pH": null, "sulphates": 1})),
            "rows[7]: feature 'alcohol' is null, not a number"
        );
        assert_eq!(
            err(json!([1, null, null])),
            "rows[7]: feature 'sulphates' is null, not a number"
        );
        let nan = s
            .positional_row(
                8,
                &[Cell::Number(f64::NAN), Cell::Number(1.0), Cell::Number(2.0)],
                &mut out,
            )
            .unwrap_err();
        assert_eq!(
            nan.to_string(),
            "rows[8]: feature 'alcohol' is NaN, not a finite number"
        );
        let undefined = s
            .positional_row(
                8,
                &[Cell::Number(1.0), Cell::Number(1.0), Cell::Null("undefined")],
                &mut out,
            )
            .unwrap_err();
        assert_eq!(
            undefined.to_string(),
            "rows[8]: feature 'sulphates' is undefined, not a number"
        );
        // Infinities stay refused, also where NaN is legal.
        for (v, word) in [(f64::INFINITY, "Infinity"), (f64::NEG_INFINITY, "-Infinity")] {
            let e = s
                .positional_row(9, &[Cell::Number(1.0), Cell::Number(v), Cell::Number(2.0)], &mut out)
                .unwrap_err();
            assert_eq!(
                e.to_string(),
                format!("rows[9]: feature 'pH' is {word}, not a finite number")
            );
        }
        // Left out of a named row is not a missing value, even for pH.
        assert_eq!(
            err(json!({"alcohol": 1, "sulphates": 1})),
            "rows[7]: feature 'pH' is missing (send null or NaN for a missing value)"
        );
        // Strings are not numbers, "NaN" included.
        assert_eq!(
            err(json!([1, "NaN", 2])),
            "rows[7]: feature 'pH' is a string (\"NaN\"), not a number"
        );
    }

    #[test]
    fn the_flags_come_from_the_manifest_one_per_feature() {
        let mut manifest = crate::manifest::tests::manifest(&["a", "b"], None, b"x");
        manifest.features[1].missing = true;
        let s = InputSchema::of_manifest(&manifest).unwrap();
        assert_eq!((s.accepts_missing(0), s.accepts_missing(1)), (false, true));
        let err = schema().with_missing(vec![true]).unwrap_err();
        assert!(
            err.to_string().contains("1 missing-value flags for 3 features"),
            "{err}"
        );
        // The field is left out of the JSON when false, and read as false when absent.
        let text = serde_json::to_value(&manifest.features).unwrap();
        assert_eq!(text[0].get("missing"), None);
        assert_eq!(text[1]["missing"], true);
        let back: Vec<crate::manifest::FeatureView> = serde_json::from_value(text).unwrap();
        assert_eq!(back, manifest.features);
    }

    #[test]
    fn long_strings_and_feature_lists_are_shortened() {
        assert_eq!(
            describe_string("abcdefghijklmnopqrstuvwxyz"),
            "a string (\"abcdefghijklmnopqrst\"...)"
        );
        assert_eq!(describe_string("tab\there \"é\""), r#"a string ("tab\there \"é\"")"#);
        let many = InputSchema::new((0..15).map(|i| format!("f{i}")).collect()).unwrap();
        let mut out = vec![0.0; 15];
        let err = many.json_row(0, &json!({"x": 1}), &mut out).unwrap_err().to_string();
        assert!(err.ends_with("f10, f11, ... 3 more)"), "{err}");
        assert!(InputSchema::new(vec!["a".into(), "a".into()]).is_err());
    }
}
