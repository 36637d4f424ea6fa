//! `ai.onnx.ml.Scaler` -> [`Preprocess::Scale`]: both are `(x - offset) * scale`; a one-value
//! offset or scale applies to every feature.

use model_wasm::Preprocess;
use tract_onnx::pb::NodeProto;

use super::attrs::{floats, to_f64};
use super::{Result, invalid};

/// `(offset, scale)` of one Scaler, as given (one value or one per feature).
pub(super) type Scaling = (Vec<f64>, Vec<f64>);

/// The `offset` and `scale` of a Scaler node (empty when not given).
pub(super) fn read(node: &NodeProto) -> Scaling {
    let offset = floats(node, "offset").unwrap_or_default();
    let scale = floats(node, "scale").unwrap_or_default();
    (to_f64(offset), to_f64(scale))
}

/// Refuses Scalers that give neither one value nor one per feature.
pub(super) fn check_lengths(preprocess: &[Scaling], n: usize) -> Result<()> {
    for (p, (offset, scale)) in preprocess.iter().enumerate() {
        for (what, values) in [("offset", offset), ("scale", scale)] {
            if values.len() > 1 && values.len() != n {
                return Err(invalid(format!(
                    "Scaler {p}: {} {what} values for {n} features",
                    values.len()
                )));
            }
        }
    }
    Ok(())
}

/// The IR's preprocessing for `n` features, in the Scalers' order.
pub(super) fn to_preprocess(preprocess: Vec<Scaling>, n: usize) -> Vec<Preprocess> {
    preprocess
        .into_iter()
        .map(|(offset, scale)| Preprocess::Scale {
            center: broadcast(offset, n, 0.0),
            scale: broadcast(scale, n, 1.0),
        })
        .collect()
}

/// `values` for `n` features: as given, repeated when one value is given, `fill` when none.
fn broadcast(values: Vec<f64>, n: usize, fill: f64) -> Vec<f64> {
    match values.len() {
        0 => vec![fill; n],
        1 => vec![values[0]; n],
        _ => values,
    }
}
