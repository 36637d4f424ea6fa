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
        ("diabetes", "diabetes", "rmse", "linear_regression", ""),
        ("diabetes", "diabetes", "rmse", "elastic_net", "penalty = [0.1]"),
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
fn training_is_deterministic_across_processes() {
    let train = train_section("wine", "f1", "random_forest", "n_trees = [15], max_depth = [6]");
    let mut files = Vec::new();
    for _ in 0..2 {
        let s = Scratch::new();
        let config = with_training(&s, "winequality", "forest", &train);
        s.run(&["pipeline", "run", "-c", config.to_str().unwrap()]).ok();
        let version = s.store().join("models/wine/1");
        files.push((
            std::fs::read(version.join("model.ir.json")).unwrap(),
            std::fs::read(version.join("model.onnx")).unwrap(),
        ));
    }
    assert!(
        files[0].0 == files[1].0,
        "the same data and config give the same model IR"
    );
    assert!(files[0].1 == files[1].1, "and the same ONNX bytes");
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
}

#[test]
fn bad_training_configs_are_named() {
    let s = Scratch::new();
    let cases = [
        (
            train_section("m", "f1", "gradient_boosting", ""),
            "unknown variant `gradient_boosting`",
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
        err.contains("feature 'alcohol' has 1 missing values in the training data"),
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
