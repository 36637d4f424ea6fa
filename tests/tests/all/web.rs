//! The web page in a real browser, against a real `wasmline serve`: two versions of a model are
//! trained, the server serves the page (the copy built into the binary), the browser SDK
//! (`WASMLINE_SDK_PKG`) and the API with an admin token, and `tests/browser/page.mjs` drives
//! Debian's Chromium through every tab: predictions in the page agree with the server's own
//! KServe answer, a wrong token is refused, the admin token promotes and rolls back, runs
//! compare, the page's telemetry shows in `/metrics` under `runtime="browser"`, and the page pins
//! the control plane's signing key on first load (another pinned key: every model refused until
//! the pin is forgotten). Screenshots go beside the test binary (`web-page/`).
//!
//! Nothing is built here: scripts/test builds the SDK and installs node, Chromium and
//! playwright-core (`NODE_PATH`).

use std::path::{Path, PathBuf};
use std::process::Command;

use tests::process::{ChildGuard, find_program};
use tests::{workspace_bin, workspace_root};

use crate::Scratch;
use crate::train::with_training;

const CHROMIUM: &str = "/usr/bin/chromium";
const MODEL: &str = "wine";
const ADMIN_TOKEN: &str = "admin-token-for-the-web-test";

/// The SDK built by scripts/test, or a panic that says how to get it.
fn sdk_pkg() -> PathBuf {
    let Some(dir) = std::env::var_os("WASMLINE_SDK_PKG") else {
        panic!(
            "WASMLINE_SDK_PKG is not set: run the tests through scripts/test, which builds the browser SDK \
             (wasm-pack build web/sdk --target web) and sets it"
        );
    };
    let dir = PathBuf::from(dir);
    for file in ["wasmline_sdk.js", "wasmline_sdk_bg.wasm"] {
        assert!(
            dir.join(file).is_file(),
            "{} is missing: WASMLINE_SDK_PKG must be wasm-pack's output directory",
            dir.join(file).display()
        );
    }
    dir
}

/// A logistic regression on the wine data, registered and moved to `alias`.
fn train(s: &Scratch, name: &str, alpha: f64, alias: &str) {
    let section = format!(
        "[train]\nmodel_name = \"{MODEL}\"\nmetric = \"f1\"\nfolds = 3\nalias = \"{alias}\"\n\n\
         [[train.models]]\nfamily = \"logistic_regression\"\ngrid = {{ alpha = [{alpha:?}] }}\n"
    );
    let config = with_training(s, "winequality", name, &section);
    s.run(&["pipeline", "run", "-c", config.to_str().unwrap()]).ok();
}

#[test]
fn the_web_page_predicts_in_chromium_what_the_server_predicts_and_drives_the_api() {
    find_program("node");
    assert!(
        Path::new(CHROMIUM).is_file(),
        "{CHROMIUM} is missing: apt-get install chromium (scripts/test does)"
    );
    let sdk = sdk_pkg();
    let s = Scratch::new();
    train(&s, "v1", 1.0, "production");
    train(&s, "v2", 0.3, "staging");

    let mut cmd = Command::new(workspace_bin("wasmline"));
    cmd.args(["--store", s.store().to_str().unwrap(), "serve"])
        .args(["--addr", "127.0.0.1:0", "--sdk-dir", sdk.to_str().unwrap()])
        .env("WASMLINE_ADMIN_TOKEN", ADMIN_TOKEN)
        .env_remove("WASMLINE_WEB_DIR");
    let mut server = ChildGuard::spawn("wasmline serve", cmd, &s.path().join("serve.log"));
    let url = format!("http://{}", server.wait_for_listening());

    // The page the binary serves is this checkout's (not a binary built from another worktree
    // sharing the target directory).
    let served = ureq::get(&format!("{url}/"))
        .call()
        .expect("GET /")
        .body_mut()
        .read_to_string()
        .expect("the page");
    let source = std::fs::read_to_string(workspace_root().join("web/index.html")).expect("web/index.html");
    assert_eq!(
        served,
        source,
        "{} serves another web/index.html than this checkout's: rebuild it (cargo build -p control-plane)",
        workspace_bin("wasmline").display()
    );

    let exe = std::env::current_exe().expect("current exe");
    let out = exe
        .parent()
        .and_then(Path::parent)
        .expect("target profile dir")
        .join("web-page");
    let output = Command::new(find_program("node"))
        .arg(workspace_root().join("tests/browser/page.mjs"))
        .args(["--url", &url, "--model", MODEL, "--token", ADMIN_TOKEN])
        .arg("--out")
        .arg(&out)
        .output()
        .expect("run node tests/browser/page.mjs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the web page test failed ({}; screenshots in {}):\n{stdout}{stderr}\n--- wasmline serve:\n{}",
        output.status,
        out.display(),
        server.log_text()
    );
    for shot in [
        "predict.png",
        "predict-phone.png",
        "models.png",
        "runs.png",
        "monitoring.png",
        "key-changed.png",
    ] {
        assert!(out.join(shot).is_file(), "no screenshot {shot} in {}", out.display());
    }
    for said in ["load to first prediction", "pinned signing key"] {
        assert!(stdout.contains(said), "no '{said}' in:\n{stdout}");
    }
    println!("{stdout}");
}
