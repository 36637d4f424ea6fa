//! Reading nodes: their names for messages, their attributes, and the types of values.

use tract_onnx::pb::{AttributeProto, NodeProto, ValueInfoProto};

use super::{Result, invalid, unsupported};

const DEFAULT: &str = "ai.onnx";

pub(super) fn domain_name(domain: &str) -> &str {
    if domain.is_empty() { DEFAULT } else { domain }
}

/// `domain.op_type`, the default domain written `ai.onnx`.
pub(super) fn qualified(node: &NodeProto) -> String {
    format!("{}.{}", domain_name(&node.domain), node.op_type)
}

/// A node, named for messages: `ai.onnx.ml.Scaler node 'Scaler1'`.
pub(super) fn describe(node: &NodeProto) -> String {
    if node.name.is_empty() {
        format!("{} node", qualified(node))
    } else {
        format!("{} node '{}'", qualified(node), node.name)
    }
}

/// Element type and dimensions (fixed ones as `Some`) of a tensor-typed value.
pub(super) fn tensor_type(value: &ValueInfoProto) -> Option<(i32, Vec<Option<i64>>)> {
    use tract_onnx::pb::tensor_shape_proto::dimension::Value;
    use tract_onnx::pb::type_proto::Value as Type;
    let Some(Type::TensorType(tensor)) = value.r#type.as_ref()?.value.as_ref() else {
        return None;
    };
    let dims = tensor
        .shape
        .as_ref()
        .map(|s| {
            s.dim
                .iter()
                .map(|d| match d.value {
                    Some(Value::DimValue(v)) => Some(v),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    Some((tensor.elem_type, dims))
}

fn attribute<'n>(node: &'n NodeProto, name: &str) -> Option<&'n AttributeProto> {
    node.attribute.iter().find(|a| a.name == name)
}

pub(super) fn floats<'n>(node: &'n NodeProto, name: &str) -> Option<&'n [f32]> {
    attribute(node, name).map(|a| a.floats.as_slice())
}

pub(super) fn ints<'n>(node: &'n NodeProto, name: &str) -> Option<&'n [i64]> {
    attribute(node, name).map(|a| a.ints.as_slice())
}

pub(super) fn int(node: &NodeProto, name: &str) -> Option<i64> {
    attribute(node, name).map(|a| a.i)
}

pub(super) fn string(node: &NodeProto, name: &str) -> Option<String> {
    attribute(node, name).map(|a| String::from_utf8_lossy(&a.s).into_owned())
}

pub(super) fn strings(node: &NodeProto, name: &str) -> Option<Vec<String>> {
    attribute(node, name).map(|a| {
        a.strings
            .iter()
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect()
    })
}

pub(super) fn required<'n, T: ?Sized>(node: &NodeProto, name: &str, value: Option<&'n T>) -> Result<&'n T> {
    value.ok_or_else(|| invalid(format!("{} has no attribute '{name}'", describe(node))))
}

pub(super) fn to_f64(values: &[f32]) -> Vec<f64> {
    values.iter().map(|v| f64::from(*v)).collect()
}

/// The classes, from `{ints_name}` (as decimal strings) or `classlabels_strings`.
pub(super) fn class_labels(node: &NodeProto, ints_name: &str) -> Result<Vec<String>> {
    match (ints(node, ints_name), strings(node, "classlabels_strings")) {
        (Some(ints), _) if !ints.is_empty() => Ok(ints.iter().map(i64::to_string).collect()),
        (_, Some(strings)) if !strings.is_empty() => Ok(strings),
        _ => Err(invalid(format!(
            "{} has neither '{ints_name}' nor 'classlabels_strings'",
            describe(node)
        ))),
    }
}

/// Refuses a post-transform other than NONE.
pub(super) fn no_post_transform(node: &NodeProto) -> Result<()> {
    match string(node, "post_transform").as_deref() {
        None | Some("NONE") => Ok(()),
        Some(other) => Err(unsupported(format!("{} with post_transform {other}", describe(node)))),
    }
}
