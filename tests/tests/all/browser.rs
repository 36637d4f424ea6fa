//! The browser SDK in a real browser: models trained by `wasmline`, downloaded as a user downloads
//! them, loaded by the browser SDK (`web/sdk`) in Debian's Chromium under the store's signing key,
//! must predict exactly what the reference evaluator predicts (`wasmline predict`), refuse a
//! module whose sha256 does not match, refuse a module and manifest re-hashed without the signing
//! key (the signature no longer verifies), and refuse bad rows naming the row and the feature. The
//! browser side is `tests/browser/parity.mjs`; it saves screenshots under the target directory.
//!
//! Nothing is built here: scripts/test builds the SDK before the tests and passes its directory in
//! `WASMLINE_SDK_PKG`, and installs node, Chromium and playwright-core (`NODE_PATH`).

use std::path::{Path, PathBuf};
use std::process::Command;

use tests::process::find_program;
use tests::workspace_root;

use crate::Scratch;
use crate::train::{test_split, train_section, with_training};

const CHROMIUM: &str = "/usr/bin/chromium";

/// The SDK built by scripts/test, or a panic that says how to get it.
fn sdk_pkg() -> PathBuf {
    let Some(dir) = std::env::var_os("WASMLINE_SDK_PKG") else {
        panic!(
            "WASMLINE_SDK_PKG is not set: run the tests through scripts/test, which builds the browser SDK \
             (scripts/lib/tools.sh, `build_sdk`) and sets it"
        );
    };
    let dir = PathBuf::from(dir);
    for file in ["wasmline_sdk.js", "wasmline_sdk_bg.wasm"] {
        assert!(
            dir.join(file).is_file(),
            "{} is missing: WASMLINE_SDK_PKG must be the browser SDK's build directory",
            dir.join(file).display()
        );
    }
    dir
}

/// Where the screenshots and the page's results go: beside the test binary, kept after the run.
fn output_dir(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let profile = exe.parent().and_then(Path::parent).expect("target profile dir");
    profile.join("browser-parity").join(name)
}

/// Trains `model` in `s` (the data steps are shared between models of one scratch store),
/// downloads it, predicts its test split with the reference evaluator, and runs the browser
/// parity script on it.
fn browser_parity(s: &Scratch, example: &str, dataset: &str, model: &str, train: &str) {
    let config = with_training(s, example, model, train);
    s.run(&["pipeline", "run", "-c", config.to_str().unwrap()]).ok();
    let dir = s.path().join(format!("{model}-download"));
    s.run(&["models", "download", model, "--out", dir.to_str().unwrap()])
        .ok();
    assert!(
        dir.join("model.wasm").is_file(),
        "`wasmline models download {model}` gave no model.wasm (files: {:?}): the pipeline's compile step must \
         store the module beside model.onnx and list its sha256 in the manifest",
        std::fs::read_dir(&dir)
            .map(|d| d.flatten().map(|e| e.file_name()).collect::<Vec<_>>())
            .unwrap_or_default()
    );
    let expected = s.path().join(format!("{model}-expected.json"));
    let test = test_split(s, dataset);
    s.run(&[
        "predict",
        model,
        "--data",
        test.to_str().unwrap(),
        "--output",
        expected.to_str().unwrap(),
    ])
    .ok();

    chromium_agrees(model, &dir, &signing_key(s), &expected);
}

/// The public key that verifies the manifests of `s`'s store (what `GET /api/v1/signing-key`
/// serves).
pub(crate) fn signing_key(s: &Scratch) -> PathBuf {
    let key = s.store().join("keys/manifest-signing.pub.json");
    assert!(key.is_file(), "{} is missing: no version was signed", key.display());
    key
}

/// Runs the browser parity script on the downloaded model in `dir` (manifest.json, model.wasm),
/// trusting `key` (the store's public key file), and `expected` (`wasmline predict --output`'s
/// form: rows, with NaN as null, and the evaluator's labels and probabilities or values).
pub(crate) fn chromium_agrees(model: &str, dir: &Path, key: &Path, expected: &Path) {
    find_program("node");
    assert!(
        Path::new(CHROMIUM).is_file(),
        "{CHROMIUM} is missing: apt-get install chromium (scripts/test does)"
    );
    let out = output_dir(model);
    let output = Command::new(find_program("node"))
        .arg(workspace_root().join("tests/browser/parity.mjs"))
        .arg("--sdk")
        .arg(sdk_pkg())
        .arg("--model")
        .arg(dir)
        .arg("--key")
        .arg(key)
        .arg("--expected")
        .arg(expected)
        .arg("--out")
        .arg(&out)
        .output()
        .expect("run node tests/browser/parity.mjs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "browser parity failed for {model} ({}; screenshots in {}):\n{stdout}{stderr}",
        output.status,
        out.display()
    );
    for said in [
        "a changed module is refused",
        "a re-hashed module and manifest are refused: ",
        "the genuine manifest reformatted (on one line) still verifies",
    ] {
        assert!(stdout.contains(said), "no '{said}' in:\n{stdout}");
    }
    for shot in ["parity.png", "reformatted.png", "tampered.png", "rehashed.png"] {
        assert!(out.join(shot).is_file(), "no screenshot {shot} in {}", out.display());
    }
    println!("{stdout}");
}

#[test]
fn the_sdk_in_chromium_predicts_what_the_reference_evaluator_predicts() {
    find_program("node");
    assert!(
        Path::new(CHROMIUM).is_file(),
        "{CHROMIUM} is missing: apt-get install chromium (scripts/test does)"
    );
    sdk_pkg();
    let wine = Scratch::new();
    browser_parity(
        &wine,
        "winequality",
        "winequality-red",
        "wine-logistic",
        &train_section("wine-logistic", "f1", "logistic_regression", "alpha = [1.0]"),
    );
    browser_parity(
        &wine,
        "winequality",
        "winequality-red",
        "wine-forest",
        &train_section("wine-forest", "f1", "random_forest", "n_trees = [10], max_depth = [5]"),
    );
    let diabetes = Scratch::new();
    browser_parity(
        &diabetes,
        "diabetes",
        "diabetes",
        "diabetes-linear",
        &train_section("diabetes-linear", "rmse", "linear_regression", ""),
    );
}
