//! Training benchmark (a bench binary, not criterion): fit time and held-out metrics per family,
//! at 1 and 2 threads for the families that take `n_threads`. Prints one JSON object per (family,
//! threads) on stdout, for `scripts/bench-train`, which puts them beside LightGBM's and
//! scikit-learn's (scripts/bench/train_peers.py, same settings).
//!
//! Usage:
//!   cargo bench -p control-plane --bench train -- STORE DATASET REPEATS
//!   cargo bench -p control-plane --bench train -- csv TRAIN.csv TEST.csv TARGET classification|regression REPEATS
//!
//! The first takes a dataset version's train/test split from a store (the bundled sets) and adds
//! the rows the wine set always had (a logistic regression, one tree, a forest that considers
//! every feature); the second reads two CSV files (a header row, an empty field is a missing
//! value; every column but TARGET is a feature).

use std::collections::BTreeSet;
use std::time::Instant;

use anyhow::Context;
use ndarray::Array2;
use wasmline::{Family, LocalStore, Metric, ModelSpec, Targets, TrainData, load_dataset};

const THREADS: [usize; 2] = [1, 2];

/// One configuration to time: the name the table shows, the family, its grid (TOML), and whether
/// it takes `n_threads` (then it is timed at each of THREADS).
struct Config {
    name: &'static str,
    family: Family,
    grid: String,
    threaded: bool,
}

/// The configurations for a task, on `n_features` features; `bundled` adds the wine rows.
fn configs(classification: bool, n_features: usize, bundled: bool) -> Vec<Config> {
    let objective = if classification { "log_loss" } else { "squared_error" };
    let mut out = Vec::new();
    if bundled && classification {
        out.push(Config {
            name: "logistic_regression",
            family: Family::LogisticRegression,
            grid: "alpha = [1.0]\nmax_iterations = [200]".into(),
            threaded: false,
        });
        out.push(Config {
            name: "decision_tree",
            family: Family::DecisionTree,
            grid: "max_depth = [6]".into(),
            threaded: false,
        });
    }
    // LightGBM's defaults where the table's settings leave them: no L2, no row or feature sampling.
    out.push(Config {
        name: "gradient_boosting",
        family: Family::GradientBoosting,
        grid: format!(
            "n_estimators = [100]\nnum_leaves = [31]\nlearning_rate = [0.1]\nmax_bins = [255]\n\
             min_samples_leaf = [20]\nl2_regularization = [0.0]\nsubsample = [1.0]\n\
             feature_fraction = [1.0]\nobjective = [\"{objective}\"]"
        ),
        threaded: true,
    });
    if classification {
        // scikit-learn's max_features = "sqrt": floor(sqrt(p)) of the p features at each split.
        let per_split = (n_features as f64).sqrt().floor().max(1.0) / n_features as f64;
        out.push(Config {
            name: "random_forest",
            family: Family::RandomForest,
            grid: format!("n_trees = [100]\nmax_depth = [8]\nfeature_fraction = [{per_split}]"),
            threaded: true,
        });
        if bundled {
            out.push(Config {
                name: "random_forest_bagged",
                family: Family::RandomForest,
                grid: "n_trees = [100]\nmax_depth = [8]\nfeature_fraction = [1.0]".into(),
                threaded: true,
            });
        }
    }
    out
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let (train, test, repeats, bundled) = match args.as_slice() {
        [mode, train, test, target, task, repeats] if mode == "csv" => {
            let classification = match task.as_str() {
                "classification" => true,
                "regression" => false,
                other => anyhow::bail!("task '{other}': expected classification or regression"),
            };
            let (train, classes) = read_csv(train, target, classification, None)?;
            let (test, _) = read_csv(test, target, classification, Some(classes))?;
            (train, test, repeats, false)
        }
        [store, dataset, repeats] => {
            let runtime = tokio::runtime::Runtime::new()?;
            let store = LocalStore::open(store)?;
            let record = runtime.block_on(load_dataset(&store, dataset, None))?;
            let (train, test) = runtime.block_on(record.train_data(&store))?;
            (train, test, repeats, true)
        }
        _ => anyhow::bail!(
            "usage: train STORE DATASET REPEATS | train csv TRAIN.csv TEST.csv TARGET classification|regression REPEATS"
        ),
    };
    let repeats: usize = repeats.parse()?;
    anyhow::ensure!(repeats > 0, "REPEATS must be at least 1");
    let classification = matches!(train.targets, Targets::Classes(_));
    let metrics: &[Metric] = if classification {
        &[Metric::Accuracy, Metric::F1, Metric::RocAuc, Metric::LogLoss]
    } else {
        &[Metric::Rmse, Metric::R2]
    };
    let test_rows = test.row_vecs();
    for config in configs(classification, train.features.len(), bundled) {
        let threads: &[usize] = if config.threaded { &THREADS } else { &[1] };
        for &n in threads {
            let mut grid = config.grid.clone();
            if config.threaded {
                grid.push_str(&format!("\nn_threads = [{n}]"));
            }
            let spec = ModelSpec {
                family: config.family,
                grid: toml::from_str(&grid)?,
            };
            let candidate = wasmline::candidates(&spec).map_err(anyhow::Error::msg)?.remove(0);
            let mut times = Vec::new();
            let mut fitted = None;
            for r in 0..repeats {
                let started = Instant::now();
                fitted = Some(wasmline::fit(&candidate, &train, 42 + r as u64)?);
                times.push(started.elapsed().as_secs_f64());
            }
            times.sort_by(f64::total_cmp);
            let fitted = fitted.expect("at least one repeat");
            let scores = wasmline::score(&fitted.ir, &test_rows, &test.targets)?;
            let mut record = serde_json::json!({
                "family": config.name,
                "library": "wasmline",
                "threads": n,
                "repeats": repeats,
                "fit_seconds": times[times.len() / 2],
            });
            for &metric in metrics {
                record[metric.name()] = serde_json::json!(scores.get(metric));
            }
            println!("{record}");
        }
    }
    Ok(())
}

/// A CSV file as training data: every column but `target` is a feature (an empty field is NaN).
/// For classification the classes are `classes` if given (the test file takes the training
/// file's), else the target's distinct values in numeric order (text order if not all numbers).
fn read_csv(
    path: &str,
    target: &str,
    classification: bool,
    classes: Option<Vec<String>>,
) -> anyhow::Result<(TrainData, Vec<String>)> {
    let mut reader = csv::Reader::from_path(path).with_context(|| format!("reading {path}"))?;
    let header: Vec<String> = reader.headers()?.iter().map(str::to_owned).collect();
    let t = header
        .iter()
        .position(|h| h == target)
        .with_context(|| format!("{path} has no column '{target}'"))?;
    let features: Vec<String> = header.iter().filter(|h| *h != target).cloned().collect();
    let mut x = Vec::new();
    let mut y = Vec::new();
    for (i, row) in reader.records().enumerate() {
        let row = row.with_context(|| format!("{path}, row {}", i + 1))?;
        for (j, field) in row.iter().enumerate() {
            if j == t {
                y.push(field.to_owned());
            } else if field.is_empty() {
                x.push(f64::NAN);
            } else {
                x.push(
                    field
                        .parse()
                        .with_context(|| format!("{path}, row {}: '{field}'", i + 1))?,
                );
            }
        }
    }
    let x = Array2::from_shape_vec((y.len(), features.len()), x)?;
    let (targets, classes) = if classification {
        let classes = classes.unwrap_or_else(|| {
            let mut distinct: Vec<String> = y.iter().cloned().collect::<BTreeSet<_>>().into_iter().collect();
            distinct.sort_by(|a, b| match (a.parse::<f64>(), b.parse::<f64>()) {
                (Ok(a), Ok(b)) => a.total_cmp(&b),
                _ => a.cmp(b),
            });
            distinct
        });
        let indices = y
            .iter()
            .map(|v| {
                classes
                    .iter()
                    .position(|c| c == v)
                    .with_context(|| format!("{path}: class '{v}' not in training"))
            })
            .collect::<anyhow::Result<Vec<usize>>>()?;
        (Targets::Classes(indices), classes)
    } else {
        let values = y
            .iter()
            .map(|v| v.parse::<f64>().with_context(|| format!("{path}: target '{v}'")))
            .collect::<anyhow::Result<Vec<f64>>>()?;
        (Targets::Values(values), Vec::new())
    };
    let data = TrainData {
        categorical: vec![false; features.len()],
        features,
        x,
        targets,
        classes: classes.clone(),
        target: target.to_owned(),
    };
    Ok((data, classes))
}
