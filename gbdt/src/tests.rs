use linfa::ParamGuard;
use ndarray::Array2;

use super::*;
use crate::rng::Rng;

/// `n` rows of `d` features in [0, 1), a share `missing` of them NaN; seeded.
fn features(n: usize, d: usize, missing: f64, seed: u64) -> Array2<f64> {
    let mut rng = Rng::new(seed);
    Array2::from_shape_fn((n, d), |_| {
        let v = rng.f64();
        if rng.f64() < missing { f64::NAN } else { v }
    })
}

fn value(x: f64, default: f64) -> f64 {
    if x.is_nan() { default } else { x }
}

/// A binary label that depends on three features, missing values included.
fn binary(x: &Array2<f64>) -> Vec<usize> {
    x.rows()
        .into_iter()
        .map(|r| usize::from(value(r[0], 0.9) + 0.5 * value(r[1], 0.0) - 0.3 * value(r[2], 0.5) > 0.6))
        .collect()
}

fn accuracy(model: impl Fn(&[f64]) -> Vec<f64>, x: &Array2<f64>, y: &[usize]) -> f64 {
    let right = x
        .rows()
        .into_iter()
        .zip(y)
        .filter(|(r, c)| {
            let p = model(&r.to_vec());
            let best = (0..p.len())
                .max_by(|a, b| p[*a].total_cmp(&p[*b]).then(b.cmp(a)))
                .unwrap();
            best == **c
        })
        .count();
    right as f64 / y.len() as f64
}

#[test]
fn boosting_learns_and_routes_missing_values() {
    let x = features(3000, 6, 0.15, 1);
    let y = binary(&x);
    let data = Dataset {
        x: x.view(),
        target: Target::Classes { y: &y, n_classes: 2 },
        categorical: &[],
    };
    let model = GbdtParams::new(Objective::LogLoss).check().unwrap().fit(&data).unwrap();
    assert_eq!(model.trees.len(), 100);
    let test = features(1000, 6, 0.15, 2);
    let acc = accuracy(|r| model.predict(r), &test, &binary(&test));
    assert!(acc > 0.93, "held-out accuracy {acc}");
    // Every split says where a missing value goes, so a row of NaN predicts.
    let p = model.predict(&[f64::NAN; 6]);
    assert!((p[0] + p[1] - 1.0).abs() < 1e-12 && p[1].is_finite());
}

#[test]
fn the_model_does_not_depend_on_the_number_of_threads() {
    let x = features(20_000, 8, 0.1, 3);
    let y = binary(&x);
    let data = Dataset {
        x: x.view(),
        target: Target::Classes { y: &y, n_classes: 2 },
        categorical: &[],
    };
    let fit = |threads| {
        GbdtParams::new(Objective::LogLoss)
            .n_estimators(30)
            .subsample(0.8)
            .feature_fraction(0.75)
            .seed(9)
            .threads(threads)
            .check()
            .unwrap()
            .fit(&data)
            .unwrap()
    };
    assert_eq!(fit(1), fit(2));
    assert_eq!(fit(1), fit(3));
    let forest = |threads| {
        ForestParams::default()
            .n_trees(12)
            .max_depth(Some(6))
            .seed(4)
            .threads(threads)
            .check()
            .unwrap()
            .fit(&data)
            .unwrap()
    };
    assert_eq!(forest(1), forest(2));
}

#[test]
fn categorical_features_split_on_sets() {
    // 12 categories; the label is 1 for categories 1, 4 and 7, whatever their order.
    let mut rng = Rng::new(5);
    let n = 4000;
    let x = Array2::from_shape_fn((n, 2), |(_, j)| if j == 0 { rng.below(12) as f64 } else { rng.f64() });
    let y: Vec<usize> = x
        .rows()
        .into_iter()
        .map(|r| usize::from([1.0, 4.0, 7.0].contains(&r[0])))
        .collect();
    let data = Dataset {
        x: x.view(),
        target: Target::Classes { y: &y, n_classes: 2 },
        categorical: &[true, false],
    };
    let model = GbdtParams::new(Objective::LogLoss)
        .n_estimators(10)
        .check()
        .unwrap()
        .fit(&data)
        .unwrap();
    let Node::Categorical {
        feature, categories, ..
    } = &model.trees[0].nodes[0]
    else {
        panic!("the root is not a category set: {:?}", model.trees[0].nodes[0]);
    };
    assert_eq!(*feature, 0);
    // The set is the three categories or the nine others.
    assert!(
        categories == &[1, 4, 7] || categories == &[0, 2, 3, 5, 6, 8, 9, 10, 11],
        "{categories:?}"
    );
    assert_eq!(accuracy(|r| model.predict(r), &x, &y), 1.0);
    // A category never seen, or a value that is no category, goes right like ONNX's BRANCH_EQ.
    assert_eq!(model.predict(&[40.0, 0.5]), model.predict(&[2.5, 0.5]));
}

#[test]
fn regression_squared_error_and_poisson() {
    let x = features(4000, 4, 0.05, 6);
    let mean = |r: ndarray::ArrayView1<f64>| 1.0 + 3.0 * value(r[0], 0.5) + 2.0 * (value(r[1], 0.2) > 0.5) as u8 as f64;
    let y: Vec<f64> = x.rows().into_iter().map(mean).collect();
    let data = Dataset {
        x: x.view(),
        target: Target::Values(&y),
        categorical: &[],
    };
    let model = GbdtParams::new(Objective::SquaredError)
        .check()
        .unwrap()
        .fit(&data)
        .unwrap();
    let rmse = (x
        .rows()
        .into_iter()
        .zip(&y)
        .map(|(r, t)| (model.predict(&r.to_vec())[0] - t).powi(2))
        .sum::<f64>()
        / y.len() as f64)
        .sqrt();
    assert!(rmse < 0.1, "rmse {rmse}");

    // Counts drawn around the same mean: the Poisson fit predicts positive rates near it.
    let mut rng = Rng::new(7);
    let counts: Vec<f64> = x
        .rows()
        .into_iter()
        .map(|r| {
            let lambda = mean(r);
            let (mut k, mut p, limit) = (0.0, 1.0, (-lambda).exp());
            loop {
                p *= rng.f64();
                if p <= limit {
                    break k;
                }
                k += 1.0;
            }
        })
        .collect();
    let data = Dataset {
        x: x.view(),
        target: Target::Values(&counts),
        categorical: &[],
    };
    let model = GbdtParams::new(Objective::Poisson).check().unwrap().fit(&data).unwrap();
    assert_eq!(model.link, Link::Exp);
    let low = model.predict(&[0.05, 0.1, 0.5, 0.5])[0];
    let high = model.predict(&[0.95, 0.9, 0.5, 0.5])[0];
    assert!((0.8..1.9).contains(&low) && (5.0..7.5).contains(&high), "{low} {high}");
}

#[test]
fn multiclass_and_early_stopping() {
    let x = features(3000, 5, 0.05, 8);
    let y: Vec<usize> = x
        .rows()
        .into_iter()
        .map(|r| (value(r[0], 0.1) * 3.0) as usize % 3)
        .collect();
    let data = Dataset {
        x: x.view(),
        target: Target::Classes { y: &y, n_classes: 3 },
        categorical: &[],
    };
    let model = GbdtParams::new(Objective::LogLoss)
        .n_estimators(500)
        .learning_rate(0.3)
        .early_stopping_rounds(Some(5))
        .check()
        .unwrap()
        .fit(&data)
        .unwrap();
    assert_eq!(model.link, Link::Softmax);
    assert!(model.rounds < 500, "early stopping kept {} rounds", model.rounds);
    assert_eq!(model.trees.len(), 3 * model.rounds);
    assert!(model.validation_loss.len() > model.rounds);
    let p = model.predict(&[0.5, 0.0, 0.0, 0.0, 0.0]);
    assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    assert!(accuracy(|r| model.predict(r), &x, &y) > 0.97);
}

#[test]
fn the_forest_soft_votes() {
    let x = features(3000, 6, 0.1, 10);
    let y = binary(&x);
    let data = Dataset {
        x: x.view(),
        target: Target::Classes { y: &y, n_classes: 2 },
        categorical: &[],
    };
    let forest = ForestParams::default()
        .n_trees(50)
        .max_depth(Some(8))
        .check()
        .unwrap()
        .fit(&data)
        .unwrap();
    let test = features(1000, 6, 0.1, 11);
    let acc = accuracy(|r| forest.predict(r), &test, &binary(&test));
    assert!(acc > 0.88, "forest accuracy {acc}");
    let p = forest.predict(&test.row(0).to_vec());
    assert!((p[0] + p[1] - 1.0).abs() < 1e-5, "{p:?}");
}

#[test]
fn bad_parameters_and_data_are_named() {
    let err = GbdtParams::new(Objective::LogLoss)
        .learning_rate(0.0)
        .check()
        .unwrap_err();
    assert_eq!(err.to_string(), "learning_rate = 0: must be greater than 0");
    let err = GbdtParams::new(Objective::LogLoss).num_leaves(1).check().unwrap_err();
    assert_eq!(err.to_string(), "num_leaves = 1: must be at least 2");

    let mut x = features(100, 2, 0.0, 12);
    let params = GbdtParams::new(Objective::SquaredError).check().unwrap();
    let mut y = vec![1.0; 100];
    y[17] = f64::NAN;
    let data = Dataset {
        x: x.view(),
        target: Target::Values(&y),
        categorical: &[],
    };
    assert_eq!(
        params.fit(&data).unwrap_err().to_string(),
        "target: NaN in row 17 is not a finite number"
    );
    x.column_mut(1).fill(f64::NAN);
    let y = vec![1.0; 100];
    let data = Dataset {
        x: x.view(),
        target: Target::Values(&y),
        categorical: &[],
    };
    assert_eq!(params.fit(&data).unwrap_err(), Error::AllMissing { feature: 1 });
}
