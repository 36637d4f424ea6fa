//! Training, export, registry and tracking through the `wasmline` binary: every family's ONNX
//! file agrees with onnxruntime, training is deterministic across processes, MLflow (a real
//! server) sees runs and aliases, and bad configs, models and artifacts are refused clearly.

use std::path::{Path, PathBuf};
use std::process::Command;

use tests::process::{find_program, free_port};
use tests::servers::MlflowServer;
use tests::workspace_root;

use crate::Scratch;

/// The example's config with its `[train]` section replaced by `train`.
pub(crate) fn with_training(s: &Scratch, example: &str, name: &str, train: &str) -> PathBuf {
    let path = s.example_data_config(example, &Scratch::example_data(example));
    let text = std::fs::read_to_string(&path).unwrap();
    let path = s.path().join(format!("{name}.toml"));
    std::fs::write(&path, format!("{text}\n{train}")).unwrap();
    path
}

pub(crate) fn train_section(model: &str, metric: &str, family: &str, grid: &str) -> String {
    format!(
        "[train]\nmodel_name = \"{model}\"\nmetric = \"{metric}\"\nfolds = 3\n\n[[train.models]]\nfamily = \"{family}\"\ngrid = {{ {grid} }}\n"
    )
}

/// The test split of the latest version of `dataset`, as a file path in the store.
pub(crate) fn test_split(s: &Scratch, dataset: &str) -> PathBuf {
    let record = s.run(&["datasets", "show", dataset]).ok();
    let record: serde_json::Value = serde_json::from_str(&record).unwrap();
    s.store().join(record["test"]["key"].as_str().unwrap())
}

/// Runs `scripts/onnx_parity.py` (onnxruntime) on `model` and the evaluator's `expected` outputs.
pub(crate) fn onnxruntime_agrees(model: &Path, expected: &Path) {
    let output = Command::new(find_program("python"))
        .arg(workspace_root().join("scripts/onnx_parity.py"))
        .arg(model)
        .arg(expected)
        .output()
        .expect("run the parity script");
    assert!(
        output.status.success(),
        "onnxruntime disagrees with the model IR:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn every_family_exports_an_onnx_file_that_onnxruntime_agrees_with() {
    let cases = [
        (
            "winequality",
            "winequality-red",
            "f1",
            "logistic_regression",
            "alpha = [1.0]",
        ),
        (
            "winequality",
            "winequality-red",
            "f1",
            "decision_tree",
            "max_depth = [6]",
        ),
        (
            "winequality",
            "winequality-red",
            "f1",
            "random_forest",
            "n_trees = [20], max_depth = [8]",
        ),
        (
            "winequality",
            "winequality-red",
            "f1",
            "gradient_boosting",
            "n_estimators = [40], num_leaves = [15]",
        ),
        ("diabetes", "diabetes", "rmse", "linear_regression", ""),
        ("diabetes", "diabetes", "rmse", "elastic_net", "penalty = [0.1]"),
        (
            "diabetes",
            "diabetes",
            "rmse",
            "gradient_boosting",
            "n_estimators = [50], num_leaves = [8], objective = [\"poisson\"]",
        ),
    ];
    for (example, dataset, metric, family, grid) in cases {
        let s = Scratch::new();
        let model = family.replace('_', "-");
        let config = with_training(&s, example, family, &train_section(&model, metric, family, grid));
        let out = s.run(&["pipeline", "run", "-c", config.to_str().unwrap()]).ok();
        assert!(out.contains(&format!("model {model} version 1")), "{out}");
        assert!(out.contains("tract = IR = linfa"), "{out}");
        assert!(out.contains("wasmtime = IR"), "{out}");
        let dir = s.path().join("download");
        s.run(&["models", "download", &model, "--out", dir.to_str().unwrap()])
            .ok();
        let expected = s.path().join("expected.json");
        let test = test_split(&s, dataset);
        s.run(&[
            "predict",
            &model,
            "--data",
            test.to_str().unwrap(),
            "--output",
            expected.to_str().unwrap(),
        ])
        .ok();
        onnxruntime_agrees(&dir.join("model.onnx"), &expected);
    }
}

#[test]
fn training_is_deterministic_across_processes_and_thread_counts() {
    let cases = [
        (
            "random_forest",
            "n_trees = [15], max_depth = [6], n_threads = [{threads}]",
        ),
        (
            "gradient_boosting",
            "n_estimators = [30], subsample = [0.8], feature_fraction = [0.7], early_stopping_rounds = [5], n_threads = [{threads}]",
        ),
    ];
    for (family, grid) in cases {
        let mut files = Vec::new();
        for threads in [1, 2] {
            let train = train_section("wine", "f1", family, &grid.replace("{threads}", &threads.to_string()));
            let s = Scratch::new();
            let config = with_training(&s, "winequality", family, &train);
            s.run(&["pipeline", "run", "-c", config.to_str().unwrap()]).ok();
            let version = s.store().join("models/wine/1");
            let read = |name: &str| std::fs::read(version.join(name)).unwrap();
            files.push([read("model.ir.json"), read("model.onnx"), read("model.wasm")]);
        }
        for (i, what) in ["model IR", "ONNX", "WebAssembly"].iter().enumerate() {
            assert!(
                files[0][i] == files[1][i],
                "{family}: the same data give the same {what} bytes in two processes on 1 and 2 threads"
            );
        }
    }
}

/// Wine with every 9th feature value blanked and a categorical column `cellar` (six cellars,
/// named in an order unrelated to alcohol, which decides them): gradient boosting trains on it
/// as it is, and every runtime agrees on rows with missing values and category codes.
#[test]
fn gradient_boosting_takes_missing_values_and_category_sets_end_to_end() {
    let s = Scratch::new();
    let source = std::fs::read_to_string(Scratch::example_data("winequality")).unwrap();
    let mut csv = String::new();
    let cellars = ["oak", "cave", "barn", "tower", "dock", "mill"];
    for (i, line) in source.lines().enumerate() {
        let cells: Vec<&str> = line.split(',').collect();
        if i == 0 {
            csv.push_str(&format!("{line},\"cellar\"\n"));
            continue;
        }
        let alcohol: f64 = cells[10].parse().unwrap();
        let cellar = cellars[((alcohol - 8.0).max(0.0) as usize * 5) % 6];
        let row: Vec<&str> = cells
            .iter()
            .enumerate()
            .map(|(j, c)| if j < 11 && (i * 11 + j) % 9 == 0 { "" } else { c })
            .collect();
        csv.push_str(&format!("{},{cellar}\n", row.join(",")));
    }
    let data = s.path().join("wine-gaps.csv");
    std::fs::write(&data, csv).unwrap();
    let example = std::fs::read_to_string(s.example_data_config("winequality", data.to_str().unwrap())).unwrap();
    let columns_end = example.find("]\n\n[[transform]]").unwrap();
    let mut config = example[..columns_end]
        .replace("type = \"float\" }", "type = \"float\", nullable = true }")
        .replace(
            "{ name = \"quality\", type = \"integer\" },",
            "{ name = \"quality\", type = \"integer\" },\n  { name = \"cellar\", type = \"categorical\" },",
        );
    let rest = &example[columns_end..];
    // The expectations that say "no missing value" go: the data now has some.
    let rest = rest.split("\n[[expectations]]\nexpect = \"not_null\"").next().unwrap();
    config.push_str(rest);
    config.push_str("\n[[transform]]\nop = \"encode\"\ncolumn = \"cellar\"\nmethod = \"ordinal\"\n");
    config.push_str(&train_section(
        "wine-gaps",
        "f1",
        "gradient_boosting",
        "n_estimators = [40], categorical = [\"native\"], min_samples_leaf = [10]",
    ));
    let path = s.path().join("gaps.toml");
    std::fs::write(&path, &config).unwrap();
    let out = s.run(&["pipeline", "run", "-c", path.to_str().unwrap()]).ok();
    assert!(out.contains("model wine-gaps version 1"), "{out}");
    assert!(out.contains("wasmtime = IR"), "{out}");

    let dir = s.path().join("download");
    s.run(&["models", "download", "wine-gaps", "--out", dir.to_str().unwrap()])
        .ok();
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    let features = manifest["features"].as_array().unwrap();
    assert!(
        features.iter().all(|f| f["missing"] == true),
        "every feature takes a missing value: {features:?}"
    );
    let cellar = features.iter().find(|f| f["name"] == "cellar").unwrap();
    assert_eq!(cellar["categories"].as_array().unwrap().len(), 6, "{cellar}");
    let ir = std::fs::read_to_string(dir.join("model.ir.json")).unwrap();
    assert!(ir.contains("\"split_in\""), "a category-set split on cellar");

    let test = test_split(&s, "winequality-red");
    assert!(
        std::fs::read_to_string(&test).unwrap().contains(",,"),
        "the test split has missing values"
    );
    let expected = s.path().join("expected.json");
    s.run(&[
        "predict",
        "wine-gaps",
        "--data",
        test.to_str().unwrap(),
        "--output",
        expected.to_str().unwrap(),
    ])
    .ok();
    onnxruntime_agrees(&dir.join("model.onnx"), &expected);
}

/// Runs `script` in the GBDT venv's Python (scikit-learn) with `args`; its stdout.
fn sklearn(script: &str, args: &[&Path]) -> String {
    let output = Command::new(crate::gbdt::gbdt_python())
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("run python");
    assert!(
        output.status.success(),
        "python failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// A generated 10-class set of 64 features (scikit-learn's `make_classification`), from a CSV to
/// a registered model with nothing written by hand but the grid: `wasmline init` writes the
/// config, the pipeline's logistic regression scores within a point of scikit-learn's
/// `LogisticRegression` (same split, standardised, the same L2) on the held-out rows, and its
/// refit passes the check against its own cross-validation.
#[test]
fn a_generated_ten_class_set_trains_as_well_as_scikit_learn() {
    let s = Scratch::new();
    let csv = s.path().join("ten.csv");
    sklearn(
        "import sys, numpy as np\n\
         from sklearn.datasets import make_classification\n\
         x, y = make_classification(n_samples=3000, n_features=64, n_informative=30, n_classes=10, class_sep=2.5, random_state=0)\n\
         np.savetxt(sys.argv[1], np.column_stack([x, y]), delimiter=',', fmt=['%.6f'] * 64 + ['%d'], comments='',\n\
                    header=','.join([f'f{i}' for i in range(64)] + ['label']))\n",
        &[&csv],
    );
    let config = s.path().join("ten.toml");
    let out = s
        .run(&[
            "init",
            csv.to_str().unwrap(),
            "--target",
            "label",
            "--out",
            config.to_str().unwrap(),
        ])
        .ok();
    assert!(out.contains("classification"), "{out}");
    // The inferred config as it is, with one family in its grid.
    let text = std::fs::read_to_string(&config).unwrap();
    let data = text.split("\n[train]").next().unwrap();
    let train = train_section(
        "ten",
        "accuracy",
        "logistic_regression",
        "alpha = [1.0], max_iterations = [300]",
    );
    std::fs::write(&config, format!("{data}\n{train}")).unwrap();
    let out = s.run(&["pipeline", "run", "-c", config.to_str().unwrap()]).ok();
    let ours: f64 = out
        .split("evaluate  accuracy ")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no held-out accuracy in:\n{out}"));

    let record: serde_json::Value = serde_json::from_str(&s.run(&["datasets", "show", "ten"]).ok()).unwrap();
    let split = |part: &str| s.store().join(record[part]["key"].as_str().unwrap());
    let theirs: f64 = sklearn(
        "import sys, numpy as np\n\
         from sklearn.linear_model import LogisticRegression\n\
         from sklearn.pipeline import make_pipeline\n\
         from sklearn.preprocessing import StandardScaler\n\
         tr = np.genfromtxt(sys.argv[1], delimiter=',', names=True)\n\
         te = np.genfromtxt(sys.argv[2], delimiter=',', names=True)\n\
         cols = [c for c in tr.dtype.names if c != 'label']\n\
         X = lambda t: np.column_stack([t[c] for c in cols])\n\
         m = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000)).fit(X(tr), tr['label'])\n\
         print(m.score(X(te), te['label']))\n",
        &[&split("train"), &split("test")],
    )
    .trim()
    .parse()
    .unwrap();
    eprintln!("held-out accuracy: wasmline {ours}, scikit-learn {theirs}");
    assert!(
        ours >= theirs - 0.01,
        "held-out accuracy {ours} against scikit-learn's {theirs}:\n{out}"
    );
}

fn http_json(url: &str, body: Option<serde_json::Value>) -> serde_json::Value {
    let response = match body {
        Some(b) => ureq::post(url).send_json(b),
        None => ureq::get(url).call(),
    }
    .unwrap_or_else(|e| panic!("{url}: {e}"));
    response.into_body().read_json().unwrap()
}

#[test]
fn mlflow_sees_the_run_the_model_version_and_the_alias() {
    let mlflow = MlflowServer::start();
    let mut s = Scratch::new();
    s.env = vec![
        ("MLFLOW_TRACKING_URI".into(), mlflow.url.clone()),
        ("MLFLOW_EXPERIMENT_NAME".into(), "wine-e2e".into()),
    ];
    let config = with_training(
        &s,
        "winequality",
        "logistic",
        &train_section("wine", "f1", "logistic_regression", "alpha = [1.0]"),
    );
    let out = s.run(&["pipeline", "run", "-c", config.to_str().unwrap()]).ok();
    assert!(out.contains("MLflow run"), "{out}");
    let experiment = http_json(
        &format!(
            "{}/api/2.0/mlflow/experiments/get-by-name?experiment_name=wine-e2e",
            mlflow.url
        ),
        None,
    );
    let experiment_id = experiment["experiment"]["experiment_id"].as_str().unwrap().to_owned();
    let runs = http_json(
        &format!("{}/api/2.0/mlflow/runs/search", mlflow.url),
        Some(serde_json::json!({ "experiment_ids": [experiment_id] })),
    );
    let run = &runs["runs"][0];
    let metrics: Vec<&str> = run["data"]["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["key"].as_str().unwrap())
        .collect();
    for m in ["accuracy", "f1", "roc_auc", "log_loss"] {
        assert!(metrics.contains(&m), "metric {m} logged: {metrics:?}");
    }
    let tags = run["data"]["tags"].to_string();
    assert!(
        tags.contains("wasmline.dataset_version") && tags.contains("winequality-red"),
        "{tags}"
    );
    let run_id = run["info"]["run_id"].as_str().unwrap();
    let artifacts = http_json(
        &format!("{}/api/2.0/mlflow/artifacts/list?run_id={run_id}", mlflow.url),
        None,
    );
    let names = artifacts["files"].to_string();
    assert!(
        names.contains("model.onnx") && names.contains("manifest.json"),
        "{names}"
    );
    let alias = http_json(
        &format!(
            "{}/api/2.0/mlflow/registered-models/alias?name=wine&alias=production",
            mlflow.url
        ),
        None,
    );
    assert_eq!(alias["model_version"]["version"], "1", "{alias}");
}

#[test]
fn an_unreachable_mlflow_does_not_fail_the_run() {
    let mut s = Scratch::new();
    s.env = vec![(
        "MLFLOW_TRACKING_URI".into(),
        format!("http://127.0.0.1:{}", free_port()),
    )];
    let config = with_training(
        &s,
        "winequality",
        "logistic",
        &train_section("wine", "f1", "logistic_regression", "alpha = [1.0]"),
    );
    let run = s.run(&["pipeline", "run", "-c", config.to_str().unwrap()]);
    let out = run.ok();
    assert!(out.contains("production -> version 1"), "{out}");
    assert!(run.stderr().contains("MLflow tracking skipped"), "{}", run.stderr());
    // Off a terminal, training says where it stands after each candidate.
    assert!(
        run.stderr().contains("train: 1/1 candidates (3 folds each)")
            && run.stderr().contains("best logistic_regression(alpha=1.0) f1 0."),
        "{}",
        run.stderr()
    );
}

#[test]
fn bad_training_configs_are_named() {
    let s = Scratch::new();
    let cases = [
        (
            train_section("m", "f1", "gradient_boosting", "learning_rate = [0]"),
            "hyperparameter 'learning_rate': 0 is not greater than 0 and at most 1000",
        ),
        (
            train_section("m", "f1", "gradient_boosting", "num_leaves = [1]"),
            "hyperparameter 'num_leaves': 1 is not an integer between 2 and 131072",
        ),
        (
            train_section("m", "f1", "gradient_boosting", "objective = [\"poisson\"]"),
            "hyperparameter 'objective': 'poisson' does not fit a classification task (use log_loss)",
        ),
        (
            train_section("m", "f1", "random_forest", "n_tree = [10]"),
            "unknown hyperparameter 'n_tree'; did you mean 'n_trees'?",
        ),
        (
            train_section("m", "f1", "decision_tree", "max_depth = []"),
            "hyperparameter 'max_depth' has an empty list of values",
        ),
        (
            train_section("m", "rmse", "decision_tree", ""),
            "train.metric 'rmse' does not apply to classification",
        ),
        (
            train_section("m", "f1", "linear_regression", ""),
            "cannot learn a classification task",
        ),
        (train_section("../m", "f1", "decision_tree", ""), "train.model_name"),
        (
            train_section("m", "f1", "decision_tree", "").replacen(
                "folds = 3\n",
                "folds = 3\nrefit_margin = -1.0\n",
                1,
            ),
            "train.refit_margin must be a non-negative number, not -1",
        ),
    ];
    for (i, (train, expected)) in cases.iter().enumerate() {
        let config = with_training(&s, "winequality", &format!("bad{i}"), train);
        let err = s.run(&["pipeline", "run", "-c", config.to_str().unwrap()]).fails();
        assert!(err.contains(expected), "{expected}:\n{err}");
    }
    assert!(!s.store().exists(), "a bad config stops before anything is stored");
}

#[test]
fn a_single_class_target_and_missing_features_are_refused() {
    let s = Scratch::new();
    let config = with_training(&s, "winequality", "one", &train_section("m", "f1", "decision_tree", ""));
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("threshold = 6", "threshold = 0");
    std::fs::write(&config, text).unwrap();
    let err = s.run(&["pipeline", "run", "-c", config.to_str().unwrap()]).fails();
    assert!(err.contains("the target 'good' has a single class ('1')"), "{err}");
    assert!(!s.store().join("models").exists(), "nothing registered");

    // A nullable feature with gaps the transforms leave in.
    let mut data = std::fs::read_to_string(Scratch::example_data("winequality")).unwrap();
    data = data.replacen(
        "\n7.4,0.7,0,1.9,0.076,11,34,0.9978,3.51,0.56,9.4,5\n",
        "\n7.4,0.7,0,1.9,0.076,11,34,0.9978,3.51,0.56,,5\n",
        1,
    );
    s.write("gaps.csv", &data);
    let config = with_training(
        &s,
        "winequality",
        "gaps",
        &train_section("m", "f1", "decision_tree", ""),
    );
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace(&Scratch::example_data("winequality"), "gaps.csv")
        .replace(
            "{ name = \"alcohol\", type = \"float\" }",
            "{ name = \"alcohol\", type = \"float\", nullable = true }",
        )
        .replace(", \"sulphates\", \"alcohol\"]", ", \"sulphates\"]");
    std::fs::write(&config, text).unwrap();
    let err = s.run(&["pipeline", "run", "-c", config.to_str().unwrap()]).fails();
    assert!(
        err.contains("feature 'alcohol' has 1 missing values: fill or drop them in a transform step, or train gradient_boosting or random_forest"),
        "{err}"
    );
}

#[test]
fn registry_refuses_bad_versions_aliases_and_corrupted_artifacts() {
    let s = Scratch::new();
    let config = with_training(
        &s,
        "winequality",
        "logistic",
        &train_section("wine", "f1", "logistic_regression", "alpha = [1.0]"),
    );
    s.run(&["pipeline", "run", "-c", config.to_str().unwrap()]).ok();
    let err = s.run(&["models", "promote", "wine", "7"]).fails();
    assert!(err.contains("model 'wine' has no version 7"), "{err}");
    let bad_alias = s.run(&["models", "promote", "wine", "1", "--alias", "../x"]);
    assert_ne!(bad_alias.0.status.code(), Some(0));
    assert!(bad_alias.stderr().contains("../x"), "{}", bad_alias.stderr());
    assert!(!s.store().join("models/x.json").exists() && !s.store().join("models/wine/x.json").exists());

    // One flipped byte in the stored ONNX file: refused, never served.
    let onnx = s.store().join("models/wine/1/model.onnx");
    let mut bytes = std::fs::read(&onnx).unwrap();
    bytes[100] ^= 0xff;
    std::fs::write(&onnx, bytes).unwrap();
    let out = s.path().join("out");
    let err = s
        .run(&["models", "download", "wine", "--out", out.to_str().unwrap()])
        .fails();
    assert!(err.contains("model.onnx") && err.contains("corrupted"), "{err}");
    assert!(!out.join("model.onnx").exists(), "nothing written");
}

#[test]
fn a_worse_candidate_stays_out_of_production_and_the_gate_says_why() {
    let s = Scratch::new();
    let good = with_training(
        &s,
        "winequality",
        "good",
        &train_section("wine", "f1", "logistic_regression", "alpha = [1.0]"),
    );
    s.run(&["pipeline", "run", "-c", good.to_str().unwrap()]).ok();
    // A huge L2 penalty flattens the model: it predicts one class.
    let bad = with_training(
        &s,
        "winequality",
        "bad",
        &train_section("wine", "f1", "logistic_regression", "alpha = [100000.0]"),
    );
    let out = s.run(&["pipeline", "run", "-c", bad.to_str().unwrap()]).ok();
    assert!(out.contains("model wine version 2"), "{out}");
    assert!(out.contains("production stays at version 1"), "{out}");
    let alias: serde_json::Value =
        serde_json::from_slice(&std::fs::read(s.store().join("models/wine/aliases/production.json")).unwrap()).unwrap();
    assert_eq!(alias["version"], 1);

    let report = s.path().join("report.md");
    let gate = s.run(&[
        "compare",
        "--candidate",
        "wine@2",
        "--baseline",
        "wine@production",
        "--report",
        report.to_str().unwrap(),
    ]);
    assert_eq!(gate.0.status.code(), Some(1), "worse: exit 1\n{}", gate.stdout());
    let text = std::fs::read_to_string(&report).unwrap();
    assert!(text.contains("f1"), "{text}");
    let gate = s.run(&["compare", "--candidate", "wine@1", "--baseline", "wine@1"]);
    assert_eq!(gate.0.status.code(), Some(0), "not worse: exit 0");
    let gate = s.run(&["compare", "--candidate", "wine@9", "--baseline", "wine@production"]);
    assert_eq!(gate.0.status.code(), Some(2), "an error: exit 2");
}
