//! Runs an ONNX file in tract and holds it to the IR's reference evaluator.

use std::fmt;

use model_wasm::{ModelIr, Output, Prediction};
use prost::Message;
use tract_onnx::pb::ModelProto;
use tract_onnx::prelude::*;

use super::{INPUT, LABEL, OnnxError, PROBABILITIES, VALUE};

pub(super) use model_wasm::parity::{TOLERANCE, scaled_difference};

/// How one runtime's predictions compare with the reference evaluator's.
#[derive(Debug, Clone, PartialEq)]
pub struct ParityReport {
    pub rows: usize,
    /// Rows whose label differs or where a number is off by more than [`TOLERANCE`].
    pub mismatches: usize,
    /// Largest `|expected - got|` over all numbers (probabilities or values).
    pub max_abs_diff: f64,
    /// Largest [`scaled_difference`] over all numbers.
    pub max_rel_diff: f64,
    pub first_mismatch: Option<Mismatch>,
}

/// The first row that disagrees.
#[derive(Debug, Clone, PartialEq)]
pub struct Mismatch {
    pub row: usize,
    pub expected: Prediction,
    pub got: Prediction,
}

impl ParityReport {
    /// Compares predictions row by row: labels must be identical and every number within
    /// [`TOLERANCE`] ([`scaled_difference`]). A prediction of the wrong kind, or with another
    /// number of probabilities, is a mismatch.
    pub fn compare(expected: &[Prediction], got: &[Prediction]) -> ParityReport {
        assert_eq!(expected.len(), got.len(), "one prediction per row on each side");
        let mut report = ParityReport {
            rows: expected.len(),
            mismatches: 0,
            max_abs_diff: 0.0,
            max_rel_diff: 0.0,
            first_mismatch: None,
        };
        for (row, (e, g)) in expected.iter().zip(got).enumerate() {
            // Pairs of numbers to compare, and whether the rest (kind, label, length) agrees.
            let (pairs, same_shape): (Vec<(f64, f64)>, bool) = match (e, g) {
                (
                    Prediction::Class {
                        label: le,
                        probabilities: pe,
                    },
                    Prediction::Class {
                        label: lg,
                        probabilities: pg,
                    },
                ) if pe.len() == pg.len() => (pe.iter().copied().zip(pg.iter().copied()).collect(), le == lg),
                (Prediction::Value(a), Prediction::Value(b)) => (vec![(*a, *b)], true),
                _ => (Vec::new(), false),
            };
            let mut agrees = same_shape;
            for (a, b) in pairs {
                let rel = scaled_difference(a, b);
                // NaN counts as the largest difference there is.
                report.max_abs_diff = report.max_abs_diff.max(nan_to_inf((a - b).abs()));
                report.max_rel_diff = report.max_rel_diff.max(nan_to_inf(rel));
                agrees &= rel <= TOLERANCE;
            }
            if !agrees {
                report.mismatches += 1;
                if report.first_mismatch.is_none() {
                    report.first_mismatch = Some(Mismatch {
                        row,
                        expected: e.clone(),
                        got: g.clone(),
                    });
                }
            }
        }
        report
    }

    /// No row disagrees.
    pub fn is_ok(&self) -> bool {
        self.mismatches == 0
    }
}

fn nan_to_inf(x: f64) -> f64 {
    if x.is_nan() { f64::INFINITY } else { x }
}

impl fmt::Display for ParityReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_ok() {
            write!(f, "{} rows agree", self.rows)?;
        } else {
            write!(f, "{} of {} rows disagree", self.mismatches, self.rows)?;
        }
        write!(
            f,
            " (max abs diff {:.3e}, max rel diff {:.3e}, tolerance {TOLERANCE:e})",
            self.max_abs_diff, self.max_rel_diff
        )?;
        if let Some(m) = &self.first_mismatch {
            write!(f, "; first: {m}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn show(p: &Prediction) -> String {
            match p {
                Prediction::Class { label, probabilities } => {
                    format!("label {label}, probabilities {probabilities:?}")
                }
                Prediction::Value(v) => format!("value {v}"),
            }
        }
        write!(
            f,
            "row {}: expected {}, got {}",
            self.row,
            show(&self.expected),
            show(&self.got)
        )
    }
}

/// Loads `onnx` in tract, predicts all `rows` in one batch and compares with [`ModelIr::predict`]
/// on the same rows rounded to `f32` (see [`ParityReport::compare`] for the rule).
///
/// The ONNX input is float32, so the file answers for each row rounded to `f32`, and that is
/// what the evaluator is given here too. For trees that compare in `f32` it is the row as
/// given; for LightGBM's `f64` splits and category casts a value that is not an `f32` may fall on
/// the other side of a threshold than its `f32` neighbour, which is the file's contract, not a
/// disagreement.
///
/// A disagreement is reported in the [`ParityReport`], not as an error; errors are a model that
/// fails validation, a row the evaluator refuses, bytes tract cannot load or run, and outputs
/// that do not have the names, types or shapes [`to_onnx`](super::to_onnx) writes.
pub fn check_with_tract(onnx: &[u8], ir: &ModelIr, rows: &[Vec<f64>]) -> Result<ParityReport, OnnxError> {
    ir.validate().map_err(OnnxError::InvalidModel)?;
    let expected = rows
        .iter()
        .enumerate()
        .map(|(row, values)| {
            let values: Vec<f64> = values.iter().map(|v| as_onnx_input(*v)).collect();
            ir.predict(&values)
                .map_err(|source| OnnxError::InvalidRow { row, source })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let got = predict_with_tract(onnx, ir, rows)?;
    Ok(ParityReport::compare(&expected, &got))
}

/// `x` as the float32 input holds it, kept finite: a number past `f32::MAX` becomes `±f32::MAX`
/// (the input holds an infinity there, which every threshold and category test treats alike).
fn as_onnx_input(x: f64) -> f64 {
    f64::from((x as f32).clamp(f32::MIN, f32::MAX))
}

/// The fixed second dimension of a rank-2 tensor input.
fn input_columns(input: &tract_onnx::pb::ValueInfoProto) -> Option<i64> {
    use tract_onnx::pb::tensor_shape_proto::dimension::Value;
    use tract_onnx::pb::type_proto::Value as Type;
    let Some(Type::TensorType(tensor)) = input.r#type.as_ref()?.value.as_ref() else {
        return None;
    };
    match &tensor.shape.as_ref()?.dim[..] {
        [_, column] => match column.value {
            Some(Value::DimValue(n)) => Some(n),
            _ => None,
        },
        _ => None,
    }
}

/// Predicts `rows` with tract, reading the outputs as the IR's task prescribes.
fn predict_with_tract(onnx: &[u8], ir: &ModelIr, rows: &[Vec<f64>]) -> Result<Vec<Prediction>, OnnxError> {
    let proto = ModelProto::decode(onnx)
        .map_err(|e| OnnxError::Load(format!("not an ONNX model (the protobuf does not decode: {e})")))?;
    let Some(graph) = &proto.graph else {
        return Err(OnnxError::Load("not an ONNX model (it has no graph)".into()));
    };
    let input_names: Vec<&str> = graph.input.iter().map(|i| i.name.as_str()).collect();
    if input_names != [INPUT] {
        return Err(OnnxError::Signature(format!(
            "the model's inputs are {input_names:?}, expected [{INPUT:?}]"
        )));
    }
    let n = ir.n_features();
    let columns = input_columns(&graph.input[0]);
    if columns != Some(n as i64) {
        return Err(OnnxError::Signature(format!(
            "the input does not have the shape [batch, {n}] ({n} features)"
        )));
    }
    let output_names: Vec<&str> = graph.output.iter().map(|o| o.name.as_str()).collect();
    let position = |name: &str| {
        output_names
            .iter()
            .position(|o| *o == name)
            .ok_or_else(|| OnnxError::Signature(format!("no output {name:?} among {output_names:?}")))
    };
    let wanted: &[&str] = match ir.output {
        Output::Classification { .. } => &[LABEL, PROBABILITIES],
        Output::Regression { .. } => &[VALUE],
    };
    for name in wanted {
        position(name)?;
    }
    let model = tract_onnx::onnx()
        .model_for_proto_model(&proto)
        .and_then(|m| m.into_optimized())
        .and_then(|m| m.into_runnable())
        .map_err(|e| OnnxError::Load(format!("tract cannot load the model: {e:#}")))?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }

    let data: Vec<f32> = rows.iter().flatten().map(|v| *v as f32).collect();
    let input = Tensor::from_shape(&[rows.len(), n], &data).map_err(|e| OnnxError::Run(format!("{e:#}")))?;
    let outputs = model
        .run(tvec!(input.into()))
        .map_err(|e| OnnxError::Run(format!("{e:#}")))?;
    let column = |name: &str, columns: usize| -> Result<Vec<f64>, OnnxError> {
        let tensor = &outputs[position(name)?];
        let shape_ok = tensor.shape() == [rows.len(), columns];
        let values = tensor
            .to_plain_array_view::<f32>()
            .map_err(|e| OnnxError::Signature(format!("{name}: {e:#}")))?;
        if !shape_ok {
            return Err(OnnxError::Signature(format!(
                "{name} has shape {:?}, expected [{}, {columns}]",
                tensor.shape(),
                rows.len()
            )));
        }
        Ok(values.iter().map(|v| f64::from(*v)).collect())
    };
    Ok(match &ir.output {
        Output::Classification { classes } => {
            let k = classes.len();
            let probabilities = column(PROBABILITIES, k)?;
            let labels = &outputs[position(LABEL)?];
            if labels.shape() != [rows.len()] {
                return Err(OnnxError::Signature(format!(
                    "{LABEL} has shape {:?}, expected [{}]",
                    labels.shape(),
                    rows.len()
                )));
            }
            let labels = labels
                .to_plain_array_view::<i64>()
                .map_err(|e| OnnxError::Signature(format!("{LABEL}: {e:#}")))?;
            labels
                .iter()
                .zip(probabilities.chunks(k))
                .map(|(label, p)| Prediction::Class {
                    // A negative label cannot be a class: usize::MAX makes it a mismatch.
                    label: usize::try_from(*label).unwrap_or(usize::MAX),
                    probabilities: p.to_vec(),
                })
                .collect()
        }
        Output::Regression { .. } => column(VALUE, 1)?.into_iter().map(Prediction::Value).collect(),
    })
}
