//! `LinearRegressor` and `LinearClassifier` -> [`Body::Linear`].

use model_wasm::{Body, Link};
use tract_onnx::pb::NodeProto;

use super::attrs::{describe, floats, int, no_post_transform, required, string, to_f64};
use super::{ImportOptions, Result, invalid, unsupported};

pub(super) fn linear_regressor(node: &NodeProto, n: usize) -> Result<Body> {
    no_post_transform(node)?;
    let targets = int(node, "targets").unwrap_or(1);
    if targets != 1 {
        return Err(unsupported(format!(
            "{} with {targets} targets (the IR predicts one value)",
            describe(node)
        )));
    }
    let weights = required(node, "coefficients", floats(node, "coefficients"))?;
    if weights.len() != n {
        return Err(invalid(format!(
            "{}: {} coefficients for {n} features",
            describe(node),
            weights.len()
        )));
    }
    let intercepts = match floats(node, "intercepts") {
        None | Some([]) => vec![0.0],
        Some([b]) => vec![f64::from(*b)],
        Some(other) => {
            return Err(invalid(format!(
                "{}: {} intercepts for one target",
                describe(node),
                other.len()
            )));
        }
    };
    Ok(Body::Linear {
        weights: to_f64(weights),
        intercepts,
        link: Link::Identity,
    })
}

/// How a LinearClassifier's scores end up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scores {
    /// `z`, untransformed.
    Raw,
    /// Probabilities: softmax over the rows, or binary sigmoid (already summing to one).
    Softmax,
    BinarySigmoid,
    /// A sigmoid per row, not summing to one (one-vs-rest).
    Logistic,
    /// One-vs-rest sigmoids divided by their sum.
    NormalizedLogistic,
}

pub(super) fn linear_classifier(
    node: &NodeProto,
    n: usize,
    n_classes: usize,
    transforms: &[String],
    options: ImportOptions,
    notes: &mut Vec<String>,
) -> Result<Body> {
    let coefficients = required(node, "coefficients", floats(node, "coefficients"))?;
    let intercepts = floats(node, "intercepts").unwrap_or_default();
    let rows = if intercepts.is_empty() {
        coefficients.len() / n
    } else {
        intercepts.len()
    };
    if rows == 0 || coefficients.len() != rows * n || !(intercepts.is_empty() || intercepts.len() == rows) {
        return Err(invalid(format!(
            "{}: {} coefficients and {} intercepts for {n} features",
            describe(node),
            coefficients.len(),
            intercepts.len()
        )));
    }
    if !(rows == n_classes || (rows == 1 && n_classes == 2)) {
        return Err(invalid(format!(
            "{}: {rows} rows of coefficients for {n_classes} classes",
            describe(node)
        )));
    }
    let intercept = |k: usize| intercepts.get(k).copied().unwrap_or(0.0);
    let row = |k: usize| &coefficients[k * n..(k + 1) * n];
    // skl2onnx writes a binary model as two rows, the second the negation of the first.
    let complementary = rows == 2 && row(0).iter().zip(row(1)).all(|(a, b)| *a == -*b) && intercept(0) == -intercept(1);
    let binary = rows == 1 || complementary;
    let post = string(node, "post_transform").unwrap_or_else(|| "NONE".into());
    let mut scores = match post.as_str() {
        "NONE" => Scores::Raw,
        "SOFTMAX" if rows >= 2 => Scores::Softmax,
        "LOGISTIC" if binary => Scores::BinarySigmoid,
        "LOGISTIC" => Scores::Logistic,
        other => {
            return Err(unsupported(format!(
                "{} with post_transform {other} over {rows} row(s) of coefficients",
                describe(node)
            )));
        }
    };
    for t in transforms {
        scores = match (scores, t.as_str()) {
            (Scores::Softmax | Scores::BinarySigmoid, "Normalizer L1") => scores,
            (Scores::Logistic, "Normalizer L1") => Scores::NormalizedLogistic,
            (Scores::Raw, "Softmax") if rows >= 2 => Scores::Softmax,
            _ => {
                return Err(unsupported(format!(
                    "{t} after the {post} scores of {}",
                    describe(node)
                )));
            }
        };
    }
    let sigmoid_row = if rows == 1 { 0 } else { 1 };
    let sigmoid = || Body::Linear {
        weights: to_f64(row(sigmoid_row)),
        intercepts: vec![f64::from(intercept(sigmoid_row))],
        link: Link::Sigmoid,
    };
    let softmax = || Body::Linear {
        weights: to_f64(coefficients),
        intercepts: (0..rows).map(|k| f64::from(intercept(k))).collect(),
        link: Link::Softmax,
    };
    match scores {
        Scores::BinarySigmoid => Ok(sigmoid()),
        Scores::Softmax => Ok(softmax()),
        approximate => {
            let what = match approximate {
                Scores::Raw => "raw decision scores (post_transform NONE), not probabilities",
                Scores::Logistic => "one-vs-rest probabilities (a sigmoid per class, not summing to one)",
                _ => "one-vs-rest probabilities (a sigmoid per class, divided by their sum)",
            };
            if !options.labels_only {
                return Err(unsupported(format!(
                    "{} outputs {what}, which the IR's links (sigmoid for two classes, softmax) cannot give; \
                     the labels would be the same: import with --labels-only to accept other probabilities",
                    describe(node)
                )));
            }
            let (body, link) = if rows == 1 {
                (sigmoid(), "a sigmoid")
            } else {
                (softmax(), "a softmax")
            };
            notes.push(format!(
                "the original outputs {what}; the IR turns the same scores into probabilities with {link}: \
                 the labels are the same, the probabilities are not"
            ));
            Ok(body)
        }
    }
}
