use model_wasm::Prediction;
use prost::Message;
use tract_onnx::pb::ModelProto;

use super::*;
use model_wasm::parity::{TOLERANCE, scaled_difference};

include!("cases.rs");

#[test]
fn every_body_kind_agrees_with_the_evaluator_in_tract() {
    for case in cases() {
        let onnx = to_onnx(&case.ir, case.name).unwrap_or_else(|e| panic!("{}: {e}", case.name));
        let report = check_with_tract(&onnx, &case.ir, &case.rows).unwrap_or_else(|e| panic!("{}: {e:#}", case.name));
        eprintln!("{}: {report}", case.name);
        assert_eq!(report.rows, ROWS, "{}", case.name);
        assert!(
            report.is_ok(),
            "{}: {report}; row {:?}",
            case.name,
            report.first_mismatch.as_ref().map(|m| &case.rows[m.row])
        );
        assert!(report.max_rel_diff <= 1e-6, "{}: {report}", case.name);
    }
}

#[test]
fn the_cases_cover_ties_and_f32_thresholds() {
    let cases = cases();
    let case = |name: &str| cases.iter().find(|c| c.name == name).unwrap();
    let predictions = |c: &Case| -> Vec<Prediction> { c.rows.iter().map(|r| c.ir.predict(r).unwrap()).collect() };
    let tie_to_first = |p: &Prediction| match p {
        Prediction::Class { label, probabilities } => {
            probabilities.iter().filter(|q| **q == probabilities[*label]).count() > 1
        }
        Prediction::Value(_) => false,
    };
    for name in [
        "binary_logistic",
        "softmax_3_classes",
        "vote_forest",
        "vote_forest_binary",
    ] {
        assert!(
            predictions(case(name)).iter().any(tie_to_first),
            "{name} has no row with tied probabilities"
        );
    }
    // 0.1 (f64) is below 0.1f32, so an f64 compare would send it left; the rows hold it.
    let forest = case("vote_forest");
    assert!(forest.rows.iter().any(|r| r[0] == 0.1) && forest.rows.iter().any(|r| r[0] == f64::from(0.1f32)));
}

#[test]
fn the_boosted_cases_hold_the_values_each_split_kind_treats_apart() {
    let cases = cases();
    let case = |name: &str| cases.iter().find(|c| c.name == name).unwrap();
    let column = |c: &Case, j: usize| -> Vec<f64> { c.rows.iter().map(|r| r[j]).collect() };
    let has = |values: &[f64], x: f64| values.iter().any(|v| v.to_bits() == x.to_bits());
    // XGBoost's categories: -0.5 has none, 2.5 is category 2; NaN goes its split's way.
    let categories = column(case("boosted_binary"), 2);
    for x in [f64::NAN, -0.5, -1.0, 2.5, 3e9] {
        assert!(has(&categories, x), "boosted_binary has no category {x}");
    }
    // LightGBM's: -0.5 is category 0; its zero type sends 1e-36 and NaN alike.
    let softmax = case("boosted_softmax");
    for x in [
        f64::NAN,
        1e-36,
        -1e-36,
        2e-35,
        f64::from(0.1f32),
        f64::from(0.1f32.next_down()),
    ] {
        assert!(has(&column(softmax, 0), x), "boosted_softmax feature 0 has no {x}");
    }
    assert!(has(&column(softmax, 2), -0.5));
    // 0.1f32 is above 0.1, so LightGBM's `<=` in f64 sends it right; its f32 neighbour below, left.
    let first = &softmax.ir.trees()[0].nodes[0];
    assert!(!first.goes_left(f64::from(0.1f32)) && first.goes_left(f64::from(0.1f32.next_down())));
}

#[test]
fn the_file_names_its_inputs_outputs_and_classes() {
    let cases = cases();
    for case in &cases {
        let proto = ModelProto::decode(&to_onnx(&case.ir, case.name).unwrap()[..]).unwrap();
        assert_eq!(proto.producer_name, "wasmline");
        let graph = proto.graph.unwrap();
        assert_eq!(graph.name, case.name);
        assert_eq!(graph.input.iter().map(|i| i.name.as_str()).collect::<Vec<_>>(), [INPUT]);
        let outputs: Vec<&str> = graph.output.iter().map(|o| o.name.as_str()).collect();
        let meta = |key: &str| {
            proto
                .metadata_props
                .iter()
                .find(|e| e.key == key)
                .map(|e| e.value.clone())
        };
        assert_eq!(
            meta("features").unwrap(),
            serde_json::to_string(&case.ir.features).unwrap()
        );
        let domains: Vec<(&str, i64)> = proto
            .opset_import
            .iter()
            .map(|o| (o.domain.as_str(), o.version))
            .collect();
        match &case.ir.body {
            Body::Trees { .. } | Body::Boosted { .. } => assert_eq!(domains, [("", 13), ("ai.onnx.ml", 3)]),
            Body::Linear { .. } => assert_eq!(domains, [("", 13)]),
        }
        match &case.ir.output {
            Output::Classification { classes } => {
                assert_eq!(outputs, [LABEL, PROBABILITIES]);
                assert_eq!(meta("classes").unwrap(), serde_json::to_string(classes).unwrap());
                assert_eq!(meta("task").unwrap(), "classification");
            }
            Output::Regression { target } => {
                assert_eq!(outputs, [VALUE]);
                assert_eq!(meta("target").unwrap(), *target);
                assert_eq!(meta("task").unwrap(), "regression");
            }
        }
    }
}

#[test]
fn bytes_that_are_not_onnx_are_refused_clearly() {
    let cases = cases();
    let case = &cases[0];
    let onnx = to_onnx(&case.ir, case.name).unwrap();
    for (what, bytes, expected) in [
        (
            "text",
            &b"this is not an onnx file"[..],
            "not an ONNX model (the protobuf does not decode",
        ),
        (
            "truncated",
            &onnx[..onnx.len() / 2],
            "not an ONNX model (the protobuf does not decode",
        ),
        ("empty", &[][..], "not an ONNX model (it has no graph)"),
    ] {
        let err = check_with_tract(bytes, &case.ir, &case.rows).unwrap_err();
        assert!(matches!(err, OnnxError::Load(_)), "{what}: {err:?}");
        assert!(err.to_string().contains(expected), "{what}: {err}");
    }
}

#[test]
fn a_model_of_another_task_is_refused() {
    let cases = cases();
    let regression = cases.iter().find(|c| c.name == "linear_regression").unwrap();
    let classifier = cases.iter().find(|c| c.name == "softmax_3_classes").unwrap();
    let onnx = to_onnx(&regression.ir, "r").unwrap();
    let err = check_with_tract(&onnx, &classifier.ir, &classifier.rows[..3]).unwrap_err();
    assert!(matches!(err, OnnxError::Signature(_)), "{err:?}");
    assert!(err.to_string().contains("shape [batch, 2]"), "{err}");
    let mut three = classifier.ir.clone();
    three.features.push("x2".into());
    if let Body::Linear { weights, .. } = &mut three.body {
        *weights = vec![1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0];
    }
    if let Some(Preprocess::Scale { center, scale }) = three.preprocess.first_mut() {
        center.push(0.0);
        scale.push(1.0);
    }
    let rows: Vec<Vec<f64>> = vec![vec![1.0, 2.0, 3.0]];
    let err = check_with_tract(&onnx, &three, &rows).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the ONNX model does not fit the IR: no output \"label\" among [\"value\"]"
    );
}

#[test]
fn disagreements_are_reported_with_the_first_row() {
    let cases = cases();
    for name in ["softmax_3_classes", "average_forest"] {
        let case = cases.iter().find(|c| c.name == name).unwrap();
        let onnx = to_onnx(&case.ir, name).unwrap();
        let mut other = case.ir.clone();
        match &mut other.body {
            Body::Linear { intercepts, .. } => intercepts[2] += 0.1,
            Body::Trees { trees, .. } => trees[2].nodes[0] = Node::Leaf { value: 1.3 },
            Body::Boosted { .. } => unreachable!("no case is boosted"),
        }
        let report = check_with_tract(&onnx, &other, &case.rows).unwrap();
        assert!(!report.is_ok());
        assert_eq!(report.first_mismatch.as_ref().unwrap().row, 0, "{report}");
        assert!(report.to_string().contains("first: row 0: expected"), "{report}");
    }
}

#[test]
fn bad_models_and_rows_are_errors() {
    let cases = cases();
    let case = &cases[0];
    let onnx = to_onnx(&case.ir, case.name).unwrap();
    let mut broken = case.ir.clone();
    broken.features.push("extra".into());
    assert!(matches!(to_onnx(&broken, "b"), Err(OnnxError::InvalidModel(_))));
    assert!(matches!(
        check_with_tract(&onnx, &broken, &[]),
        Err(OnnxError::InvalidModel(_))
    ));
    let err = check_with_tract(&onnx, &case.ir, &[vec![1.0, 2.0, 3.0], vec![1.0, f64::NAN, 3.0]]).unwrap_err();
    assert_eq!(err.to_string(), "row 1: feature 'x1': NaN is not a finite number");
    let report = check_with_tract(&onnx, &case.ir, &[]).unwrap();
    assert_eq!((report.rows, report.is_ok()), (0, true));
}

#[test]
fn differences_are_relative_with_an_absolute_floor() {
    assert_eq!(scaled_difference(100.0, 100.0), 0.0);
    assert!(scaled_difference(100.0, 100.0009) <= TOLERANCE);
    assert!(scaled_difference(100.0, 100.002) > TOLERANCE);
    assert!(scaled_difference(1e-30, 0.0) <= TOLERANCE);
    assert!(scaled_difference(0.0, 9e-7) <= TOLERANCE);
    assert!(scaled_difference(0.0, 2e-6) > TOLERANCE);
    assert!(scaled_difference(1.0, f64::NAN).is_nan());
    let report = ParityReport::compare(&[Prediction::Value(1.0)], &[Prediction::Value(f64::NAN)]);
    assert_eq!((report.mismatches, report.max_rel_diff), (1, f64::INFINITY));
    let report = ParityReport::compare(
        &[Prediction::Class {
            label: 0,
            probabilities: vec![0.5, 0.5],
        }],
        &[Prediction::Class {
            label: 1,
            probabilities: vec![0.5, 0.5],
        }],
    );
    assert!(!report.is_ok(), "labels must be identical");
    assert_eq!((report.max_abs_diff, report.max_rel_diff), (0.0, 0.0));
}
