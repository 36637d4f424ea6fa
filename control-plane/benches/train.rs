//! Training benchmark (a bench binary, not criterion): fit time and held-out metrics per family on
//! a dataset version's train/test split. Prints one JSON object per family on stdout, for
//! `scripts/bench-train`, which puts them beside scikit-learn's.
//!
//! Usage: `cargo bench -p control-plane --bench train -- STORE DATASET REPEATS`

use std::time::Instant;

use wasmline::{Family, LocalStore, Metric, ModelSpec, load_dataset};

/// The configurations compared with scikit-learn (see scripts/bench/train_sklearn.py).
const FAMILIES: &[(&str, Family, &str)] = &[
    (
        "logistic_regression",
        Family::LogisticRegression,
        "alpha = [1.0]\nmax_iterations = [200]",
    ),
    ("decision_tree", Family::DecisionTree, "max_depth = [6]"),
    (
        "random_forest",
        Family::RandomForest,
        "n_trees = [100]\nmax_depth = [8]\nfeature_fraction = [0.4]",
    ),
    (
        "random_forest_bagged",
        Family::RandomForest,
        "n_trees = [100]\nmax_depth = [8]\nfeature_fraction = [1.0]",
    ),
];

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let [store, dataset, repeats] = args.as_slice() else {
        anyhow::bail!("usage: train STORE DATASET REPEATS");
    };
    let repeats: usize = repeats.parse()?;
    let runtime = tokio::runtime::Runtime::new()?;
    let store = LocalStore::open(store)?;
    let record = runtime.block_on(load_dataset(&store, dataset, None))?;
    let (train_data, test_data) = runtime.block_on(record.train_data(&store))?;
    for (name, family, grid) in FAMILIES {
        let spec = ModelSpec {
            family: *family,
            grid: toml::from_str(grid)?,
        };
        let candidate = wasmline::candidates(&spec).map_err(anyhow::Error::msg)?.remove(0);
        let mut times = Vec::new();
        let mut fitted = None;
        for r in 0..repeats {
            let started = Instant::now();
            fitted = Some(wasmline::fit(&candidate, &train_data, 42 + r as u64)?);
            times.push(started.elapsed().as_secs_f64());
        }
        times.sort_by(f64::total_cmp);
        let fitted = fitted.expect("at least one repeat");
        let metrics = wasmline::score(&fitted.ir, &test_data.row_vecs(), &test_data.targets)?;
        println!(
            "{}",
            serde_json::json!({
                "family": name,
                "fit_seconds_median": times[times.len() / 2],
                "accuracy": metrics.get(Metric::Accuracy),
                "f1": metrics.get(Metric::F1),
                "roc_auc": metrics.get(Metric::RocAuc),
            })
        );
    }
    Ok(())
}
