//! Modules that follow the ABI predict what they should.

use edge_runtime::{HostError, ModelModule, ModuleLimits, Prediction, Task};

use crate::fixtures::{argmax, linear, linear_reference};
use crate::support::runtime;

const WEIGHTS: [f64; 3] = [0.5, -1.25, 2.0];
const INTERCEPT: f64 = 0.75;

fn rows(n: usize) -> Vec<Vec<f64>> {
    (0..n)
        .map(|i| {
            let i = i as f64;
            vec![i, 1.0 - i / 7.0, (i * 0.37).sin()]
        })
        .collect()
}

#[test]
fn a_linear_regression_predicts() {
    let module = ModelModule::load(runtime(), &linear(&WEIGHTS, INTERCEPT).wasm(), ModuleLimits::default()).unwrap();
    assert_eq!(module.n_features(), 3);
    assert_eq!(module.n_outputs(), 1);
    assert_eq!(module.output_stride(), 1);
    assert_eq!(module.max_rows(), 1024);
    assert_eq!(module.task(), Task::Regression);
    assert_eq!(module.metadata(), None);

    for n in [0, 1, 2, 1000] {
        let rows = rows(n);
        let predictions = module.predict(&rows).unwrap();
        assert_eq!(predictions.len(), n);
        for (row, prediction) in rows.iter().zip(&predictions) {
            assert_eq!(
                prediction,
                &Prediction::Value(linear_reference(&WEIGHTS, INTERCEPT, row))
            );
        }
    }
}

#[test]
fn batches_longer_than_max_rows_are_split() {
    let mut source = linear(&WEIGHTS, INTERCEPT);
    source.max_rows = 16;
    let module = ModelModule::load(runtime(), &source.wasm(), ModuleLimits::default()).unwrap();
    assert_eq!(module.max_rows(), 16);
    let rows = rows(100);
    let expected: Vec<f64> = rows
        .iter()
        .map(|row| linear_reference(&WEIGHTS, INTERCEPT, row))
        .collect();

    let predictions = module.predict(&rows).unwrap();
    let values: Vec<f64> = predictions
        .iter()
        .map(|p| match p {
            Prediction::Value(v) => *v,
            other => panic!("a regressor returned {other:?}"),
        })
        .collect();
    assert_eq!(values, expected);

    let flat: Vec<f64> = rows.concat();
    let mut outputs = vec![42.0];
    module.predict_flat(&flat, &mut outputs).unwrap();
    assert_eq!(outputs, expected);
}

#[test]
fn a_classifier_writes_label_and_probabilities() {
    let module = ModelModule::load(runtime(), &argmax(3).wasm(), ModuleLimits::default()).unwrap();
    assert_eq!(module.task(), Task::Classification);
    assert_eq!(module.n_outputs(), 3);
    assert_eq!(module.output_stride(), 4);

    let rows = [[1.0, 2.0, 1.0], [3.0, 0.5, 0.5], [1.0, 1.0, 2.0], [1.0, 1.0, 1.0]];
    let predictions = module.predict(&rows).unwrap();
    let expected = [
        (1, [0.25, 0.5, 0.25]),
        (0, [0.75, 0.125, 0.125]),
        (2, [0.25, 0.25, 0.5]),
        (0, [1.0 / 3.0; 3]),
    ];
    assert_eq!(predictions.len(), expected.len());
    for (prediction, (label, probabilities)) in predictions.iter().zip(expected) {
        assert_eq!(
            prediction,
            &Prediction::Class {
                label,
                probabilities: probabilities.to_vec()
            }
        );
    }

    let mut outputs = Vec::new();
    module.predict_flat(&rows.concat(), &mut outputs).unwrap();
    assert_eq!(&outputs[..4], &[1.0, 0.25, 0.5, 0.25]);
}

#[test]
fn the_manifest_section_is_returned() {
    let mut source = linear(&WEIGHTS, INTERCEPT);
    source.manifest = Some(r#"{"schema_version":1,"name":"wine"}"#.into());
    let module = ModelModule::load(runtime(), &source.wasm(), ModuleLimits::default()).unwrap();
    assert_eq!(module.metadata(), Some(&br#"{"schema_version":1,"name":"wine"}"#[..]));
}

#[test]
fn a_non_finite_value_names_its_row_and_feature() {
    let mut source = linear(&WEIGHTS, INTERCEPT);
    source.max_rows = 16;
    let module = ModelModule::load(runtime(), &source.wasm(), ModuleLimits::default()).unwrap();
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let mut rows = rows(50);
        rows[37][2] = bad;
        let error = module.predict(&rows).unwrap_err();
        assert_eq!(
            error,
            HostError::Input {
                row: 37,
                feature: Some(2),
                message: "not a finite number".into()
            },
            "{bad}"
        );
        let mut outputs = Vec::new();
        let flat_error = module.predict_flat(&rows.concat(), &mut outputs).unwrap_err();
        assert_eq!(flat_error, error);
        assert!(outputs.is_empty(), "no partial outputs");
    }
    // The module keeps serving after an input error.
    assert_eq!(module.predict(&rows(3)).unwrap().len(), 3);
}

#[test]
fn rows_of_the_wrong_width_are_input_errors() {
    let module = ModelModule::load(runtime(), &linear(&WEIGHTS, INTERCEPT).wasm(), ModuleLimits::default()).unwrap();
    let rows = vec![vec![1.0, 2.0, 3.0], vec![1.0, 2.0]];
    assert!(matches!(
        module.predict(&rows),
        Err(HostError::Input { row: 1, feature: None, message }) if message == "expected 3 features, got 2"
    ));
    let mut outputs = Vec::new();
    assert!(matches!(
        module.predict_flat(&[1.0; 7], &mut outputs),
        Err(HostError::Input {
            row: 2,
            feature: None,
            ..
        })
    ));
}

#[test]
fn concurrent_callers_get_their_own_answers() {
    let module = std::sync::Arc::new(
        ModelModule::load(runtime(), &linear(&WEIGHTS, INTERCEPT).wasm(), ModuleLimits::default()).unwrap(),
    );
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let module = module.clone();
            std::thread::spawn(move || {
                for i in 0..200 {
                    let row = [t as f64, i as f64, 1.0];
                    let expected = linear_reference(&WEIGHTS, INTERCEPT, &row);
                    assert_eq!(module.predict(&[row]).unwrap(), [Prediction::Value(expected)]);
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
}
