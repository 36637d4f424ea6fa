//! The request: the body of `POST .../infer`, and its inputs parsed into row-major rows of the
//! model's features, checked (datatype FP32 or FP64, shape, data length, finite values, batch
//! size). Either one tensor of shape `[n_rows, n_features]` or one `[n_rows]` tensor per feature.
//!
//! A missing value, NaN (the bare token, see `json.rs`, or the string `"NaN"`) or `null`, is
//! passed on as NaN for a feature whose manifest entry says `missing: true` (the model routes
//! it); for any other feature it is refused with the row and the feature. Infinities are refused
//! everywhere.

use serde::Deserialize;
use serde_json::Value;

use super::error::ApiError;
use crate::ServedModel;

/// The body of `POST .../infer`.
#[derive(Debug, Clone, Deserialize)]
pub(super) struct InferRequest {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    #[expect(dead_code, reason = "the protocol's parameters: accepted, not used")]
    pub parameters: Option<Value>,
    pub inputs: Vec<InputTensor>,
    #[serde(default)]
    pub outputs: Option<Vec<RequestedOutput>>,
}

/// One input tensor.
#[derive(Debug, Clone, Deserialize)]
pub(super) struct InputTensor {
    pub name: String,
    pub shape: Vec<i64>,
    pub datatype: String,
    #[serde(default)]
    #[expect(dead_code, reason = "the protocol's parameters: accepted, not used")]
    pub parameters: Option<Value>,
    pub data: Value,
}

/// An output the client asks for.
#[derive(Debug, Clone, Deserialize)]
pub(super) struct RequestedOutput {
    pub name: String,
    #[serde(default)]
    #[expect(dead_code, reason = "the protocol's parameters: accepted, not used")]
    pub parameters: Option<Value>,
}

/// The request's inputs as row-major rows of the model's features, checked: datatype, shape,
/// data length, finiteness, batch size.
pub(super) fn features(model: &ServedModel, inputs: &[InputTensor], max_rows: usize) -> Result<Vec<f64>, ApiError> {
    let names = &model.manifest().features;
    let n_features = names.len();
    if inputs.is_empty() {
        return Err(ApiError::bad_request("the request has no inputs"));
    }
    for input in inputs {
        if !matches!(input.datatype.as_str(), "FP64" | "FP32") {
            return Err(ApiError::bad_request(format!(
                "input '{}': datatype {} is not supported; send FP32 or FP64",
                input.name, input.datatype
            )));
        }
    }
    let (n_rows, rows) = if let [input] = inputs
        && input.shape.len() == 2
    {
        let n_rows = dim(input, 0)?;
        let width = dim(input, 1)?;
        if width != n_features {
            return Err(ApiError::bad_request(format!(
                "input '{}': expected {n_features} features (shape [n, {n_features}]), got shape {:?}",
                input.name, input.shape
            )));
        }
        check_rows(n_rows, max_rows)?;
        (n_rows, values(input, n_rows * n_features)?)
    } else {
        // One 1-D tensor per feature, by name.
        let mut columns: Vec<Option<Vec<f64>>> = vec![None; n_features];
        let mut n_rows = None;
        for input in inputs {
            let Some(index) = names.iter().position(|f| f.name == input.name) else {
                return Err(ApiError::bad_request(format!(
                    "unknown input '{}': send one tensor of shape [n, {n_features}], or one tensor of \
                     shape [n] per feature named {}",
                    input.name,
                    names
                        .iter()
                        .map(|f| format!("'{}'", f.name))
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            };
            let rows = match input.shape.len() {
                1 => dim(input, 0)?,
                2 if dim(input, 1)? == 1 => dim(input, 0)?,
                _ => {
                    return Err(ApiError::bad_request(format!(
                        "input '{}': a per-feature tensor has shape [n], got {:?}",
                        input.name, input.shape
                    )));
                }
            };
            if *n_rows.get_or_insert(rows) != rows {
                return Err(ApiError::bad_request(format!(
                    "input '{}' has {rows} rows, other inputs have {}",
                    input.name,
                    n_rows.unwrap_or_default()
                )));
            }
            if columns[index].is_some() {
                return Err(ApiError::bad_request(format!("input '{}' is given twice", input.name)));
            }
            check_rows(rows, max_rows)?;
            columns[index] = Some(values(input, rows)?);
        }
        let missing: Vec<String> = names
            .iter()
            .zip(&columns)
            .filter(|(_, c)| c.is_none())
            .map(|(f, _)| format!("'{}'", f.name))
            .collect();
        if !missing.is_empty() {
            return Err(ApiError::bad_request(format!(
                "expected {n_features} features, missing input for {}",
                missing.join(", ")
            )));
        }
        let n_rows = n_rows.unwrap_or_default();
        let columns: Vec<Vec<f64>> = columns.into_iter().flatten().collect();
        let mut rows = Vec::with_capacity(n_rows * n_features);
        for r in 0..n_rows {
            rows.extend(columns.iter().map(|c| c[r]));
        }
        (n_rows, rows)
    };
    let takes_missing: Vec<bool> = names.iter().map(|f| f.missing).collect();
    if let Some(i) = rows
        .iter()
        .zip(takes_missing.iter().cycle())
        .position(|(v, &missing_ok)| !(v.is_finite() || (missing_ok && v.is_nan())))
    {
        let v = rows[i];
        return Err(ApiError::bad_request(format!(
            "row {}, feature '{}': {}",
            i / n_features,
            names[i % n_features].name,
            if v.to_bits() == NULL.to_bits() {
                "null is not a number".to_owned()
            } else {
                format!("{v} is not a finite number")
            }
        )));
    }
    debug_assert_eq!(rows.len(), n_rows * n_features);
    Ok(rows)
}

fn check_rows(n_rows: usize, max_rows: usize) -> Result<(), ApiError> {
    if n_rows == 0 {
        return Err(ApiError::bad_request("the batch is empty (0 rows)"));
    }
    if n_rows > max_rows {
        return Err(ApiError::too_large(format!(
            "the batch has {n_rows} rows, the limit is {max_rows}; split it"
        )));
    }
    Ok(())
}

/// Dimension `i` of the tensor's shape, as a count.
fn dim(input: &InputTensor, i: usize) -> Result<usize, ApiError> {
    input
        .shape
        .get(i)
        .and_then(|d| usize::try_from(*d).ok())
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "input '{}': shape {:?} has a negative or missing dimension",
                input.name, input.shape
            ))
        })
}

/// A `null` in a tensor's data: a NaN with a payload of its own, so that a feature that takes no
/// missing value refuses it as `null` rather than as NaN. To the module it is a NaN like any.
const NULL: f64 = f64::from_bits(0x7ff8_0000_0000_0bad);

/// The tensor's data, flattened, as exactly `expected` numbers. Accepts `null` (as [`NULL`]) and
/// the strings `NaN`, `Infinity` and `-Infinity` (as some JSON writers send them, and as
/// `json.rs` rewrites the bare tokens); which features take a NaN is checked afterwards.
fn values(input: &InputTensor, expected: usize) -> Result<Vec<f64>, ApiError> {
    fn flatten(value: &Value, out: &mut Vec<f64>, name: &str, limit: usize) -> Result<(), ApiError> {
        if out.len() > limit {
            return Ok(());
        }
        match value {
            Value::Array(items) => items.iter().try_for_each(|v| flatten(v, out, name, limit)),
            Value::Number(n) => {
                out.push(n.as_f64().unwrap_or(f64::NAN));
                Ok(())
            }
            Value::Null => {
                out.push(NULL);
                Ok(())
            }
            Value::String(s) if matches!(s.as_str(), "NaN" | "nan") => {
                out.push(f64::NAN);
                Ok(())
            }
            Value::String(s) if matches!(s.as_str(), "Infinity" | "inf" | "+Infinity") => {
                out.push(f64::INFINITY);
                Ok(())
            }
            Value::String(s) if matches!(s.as_str(), "-Infinity" | "-inf") => {
                out.push(f64::NEG_INFINITY);
                Ok(())
            }
            other => Err(ApiError::bad_request(format!(
                "input '{name}': {other} is not a number (datatype FP32/FP64)"
            ))),
        }
    }
    let mut out = Vec::with_capacity(expected);
    flatten(&input.data, &mut out, &input.name, expected)?;
    if out.len() != expected {
        return Err(ApiError::bad_request(format!(
            "input '{}': shape {:?} needs {expected} values, data has {}",
            input.name,
            input.shape,
            if out.len() > expected {
                "more".to_owned()
            } else {
                out.len().to_string()
            }
        )));
    }
    Ok(out)
}
