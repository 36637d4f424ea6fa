//! The answers: the named output tensors of a prediction (`label` and `probabilities` for a
//! classifier, `value` for a regressor), and [`ApiError`], the `{"error": "..."}` body of every
//! answer that is not a success.

use serde::Serialize;

use super::error::ApiError;
use super::tensors::RequestedOutput;
use crate::{ServedModel, Task};

/// The answer of `POST .../infer`.
#[derive(Debug, Clone, Serialize)]
pub(super) struct InferResponse {
    pub model_name: String,
    pub model_version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub outputs: Vec<OutputTensor>,
}

/// One output tensor.
#[derive(Debug, Clone, Serialize)]
pub(super) struct OutputTensor {
    pub name: String,
    pub datatype: String,
    pub shape: Vec<usize>,
    pub data: OutputData,
}

/// An output tensor's values, flat and row-major.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub(super) enum OutputData {
    Bytes(Vec<String>),
    Fp64(Vec<f64>),
}

/// The output names of the model's task.
fn output_names(model: &ServedModel) -> &'static [&'static str] {
    match model.task() {
        Task::Classification => &["label", "probabilities"],
        Task::Regression => &["value"],
    }
}

pub(super) fn requested_outputs(
    model: &ServedModel,
    requested: Option<&[RequestedOutput]>,
) -> Result<Vec<&'static str>, ApiError> {
    let available = output_names(model);
    let Some(requested) = requested.filter(|r| !r.is_empty()) else {
        return Ok(available.to_vec());
    };
    requested
        .iter()
        .map(|r| {
            available.iter().find(|a| **a == r.name).copied().ok_or_else(|| {
                ApiError::bad_request(format!(
                    "unknown output '{}'; the model gives: {}",
                    r.name,
                    available.join(", ")
                ))
            })
        })
        .collect()
}

/// The named outputs of `raw` (the module's `output_stride` values per row).
pub(super) fn build_response(model: &ServedModel, id: Option<String>, raw: &[f64], outputs: &[&str]) -> InferResponse {
    let stride = model.module().output_stride();
    let n = raw.len() / stride;
    let classes = model.manifest().classes();
    let tensors = outputs
        .iter()
        .map(|name| match *name {
            "label" => OutputTensor {
                name: "label".into(),
                datatype: "BYTES".into(),
                shape: vec![n],
                data: OutputData::Bytes(
                    raw.chunks_exact(stride)
                        .map(|row| classes.get(row[0] as usize).cloned().unwrap_or_default())
                        .collect(),
                ),
            },
            "probabilities" => OutputTensor {
                name: "probabilities".into(),
                datatype: "FP64".into(),
                shape: vec![n, stride - 1],
                data: OutputData::Fp64(
                    raw.chunks_exact(stride)
                        .flat_map(|row| row[1..].iter().copied())
                        .collect(),
                ),
            },
            _ => OutputTensor {
                name: "value".into(),
                datatype: "FP64".into(),
                shape: vec![n],
                data: OutputData::Fp64(raw.iter().step_by(stride).copied().collect()),
            },
        })
        .collect();
    InferResponse {
        model_name: model.name().to_owned(),
        model_version: model.version().to_string(),
        id,
        outputs: tensors,
    }
}
