//! The web page in a real browser, against a real `wasmline serve`.
//!
//! A newcomer's first visit: the README's first command (`wasmline pipeline run`, no flags, in an
//! empty folder), then `wasmline serve` with no flag but a free port, and the page predicts in
//! Chromium with the browser SDK built into the binary.
//!
//! The whole page: two versions of a model are trained, the server serves the page and the
//! browser SDK (the copies built into the binary) and the API with an admin token, and `tests/browser/page.mjs` drives
//! Debian's Chromium through every tab: predictions in the page agree with the server's own
//! KServe answer, a wrong token is refused, the admin token promotes and rolls back, runs
//! compare, the page's telemetry shows in `/metrics` under `runtime="browser"`, and the page pins
//! the control plane's signing key on first load (another pinned key: every model refused until
//! the pin is forgotten). Screenshots go beside the test binary (`web-page/`).
//!
//! Nothing is built here: scripts/test installs node, Chromium and playwright-core (`NODE_PATH`),
//! and checks that the SDK the binary embeds (`web/sdk/dist`) is what `web/sdk` builds.

use std::path::{Path, PathBuf};
use std::process::Command;

use tests::process::{ChildGuard, find_program};
use tests::{workspace_bin, workspace_root};

use crate::Scratch;
use crate::train::with_training;

const CHROMIUM: &str = "/usr/bin/chromium";
const MODEL: &str = "wine";
const ADMIN_TOKEN: &str = "admin-token-for-the-web-test";

/// Runs `tests/browser/page.mjs` against the page at `url`; returns its output, or panics with it
/// and the server's log.
fn drive_page(url: &str, args: &[&str], out: &Path, server: &ChildGuard) -> String {
    let output = Command::new(find_program("node"))
        .arg(workspace_root().join("tests/browser/page.mjs"))
        .args(["--url", url, "--model"])
        .args(args)
        .arg("--out")
        .arg(out)
        .output()
        .expect("run node tests/browser/page.mjs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the web page test failed ({}; screenshots in {}):\n{stdout}{stderr}\n--- wasmline serve:\n{}",
        output.status,
        out.display(),
        server.log_text()
    );
    stdout
}

/// Where a test's screenshots go: beside the test binary.
fn screenshots(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    exe.parent()
        .and_then(Path::parent)
        .expect("target profile dir")
        .join(name)
}

/// `GET url`'s body.
fn body(url: &str) -> Vec<u8> {
    let mut response = ureq::get(url).call().unwrap_or_else(|e| panic!("GET {url}: {e}"));
    response
        .body_mut()
        .with_config()
        .limit(64 << 20)
        .read_to_vec()
        .expect("the body")
}

/// The page and SDK the server at `url` serves are this checkout's (not a binary built from
/// another worktree sharing the target directory, nor one built before web/sdk/dist changed).
fn assert_serves_this_checkout(url: &str) {
    for (path, file) in [
        ("/", "web/index.html"),
        ("/web/app.js", "web/dist/app.js"),
        ("/sdk/wasmline_sdk.js", "web/sdk/dist/wasmline_sdk.js"),
        ("/sdk/wasmline_sdk_bg.wasm", "web/sdk/dist/wasmline_sdk_bg.wasm"),
    ] {
        let source = std::fs::read(workspace_root().join(file)).expect("the checkout's file");
        assert!(
            body(&format!("{url}{path}")) == source,
            "{} serves another {file} than this checkout's: rebuild it (cargo build -p control-plane)",
            workspace_bin("wasmline").display()
        );
    }
}

#[test]
fn after_the_readme_first_command_the_page_predicts_in_chromium_with_no_flags() {
    find_program("node");
    assert!(
        Path::new(CHROMIUM).is_file(),
        "{CHROMIUM} is missing: apt-get install chromium (scripts/test does)"
    );
    let s = Scratch::new();
    // The README's first command, in an empty folder: the bundled data, the store in ./wasmline-data.
    let without_settings = |cmd: &mut Command| {
        cmd.current_dir(s.path());
        for var in [
            "WASMLINE_STORE",
            "WASMLINE_SDK_DIR",
            "WASMLINE_SDK_PKG",
            "WASMLINE_WEB_DIR",
            "WASMLINE_CONFIG_FILE",
        ] {
            cmd.env_remove(var);
        }
    };
    let mut run = Command::new(workspace_bin("wasmline"));
    run.args(["pipeline", "run"]);
    without_settings(&mut run);
    let output = run.output().expect("run wasmline pipeline run");
    assert!(
        output.status.success(),
        "wasmline pipeline run failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(s.path().join("wasmline-data").is_dir(), "no ./wasmline-data store");

    let started = std::time::Instant::now();
    let mut cmd = Command::new(workspace_bin("wasmline"));
    // No flag but the address: port 8080 may be taken on this machine.
    cmd.args(["serve", "--addr", "127.0.0.1:0"]);
    without_settings(&mut cmd);
    let mut server = ChildGuard::spawn("wasmline serve", cmd, &s.path().join("serve.log"));
    let url = format!("http://{}", server.wait_for_listening());
    assert_serves_this_checkout(&url);

    let out = screenshots("web-page-first-visit");
    let stdout = drive_page(&url, &["wine-quality", "--only", "predict"], &out, &server);
    assert!(
        out.join("predict.png").is_file(),
        "no screenshot predict.png in {}",
        out.display()
    );
    for said in [
        "examples predicted in the page agree with POST /v2/models/wine-quality/infer",
        "load to first prediction",
        "downloaded /sdk/wasmline_sdk_bg.wasm",
    ] {
        assert!(stdout.contains(said), "no '{said}' in:\n{stdout}");
    }
    // The first visit's budget (bodies as sent, gzipped): the browser runtime at most 30 KB, the
    // whole page with the bundled model under 100 KB.
    let sdk = sent(&stdout, "SDK ");
    let all = sent(&stdout, "bodies ");
    assert!(sdk <= 30_000, "the SDK took {sdk} B to send:\n{stdout}");
    assert!(all < 100_000, "the first visit took {all} B to send:\n{stdout}");
    println!("{stdout}");
    println!(
        "web page: serve start to the page's first prediction: {:.2} s",
        started.elapsed().as_secs_f64()
    );
}

/// From page.mjs's summary, the bytes sent for the part `label` names ("SDK ", "bodies "): the
/// `M` of `{label}N B (M B sent, ...)`.
fn sent(stdout: &str, label: &str) -> u64 {
    let summary = stdout
        .lines()
        .find(|l| l.contains("load to first prediction"))
        .expect("page.mjs's summary line");
    let after = &summary[summary
        .find(label)
        .unwrap_or_else(|| panic!("no '{label}' in {summary}"))
        + label.len()..];
    let sent = after
        .split_once(" B (")
        .and_then(|(_, rest)| rest.split_once(" B sent"));
    sent.and_then(|(n, _)| n.parse().ok())
        .unwrap_or_else(|| panic!("no '{label}N B (M B sent' in {summary}"))
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
    let s = Scratch::new();
    train(&s, "v1", 1.0, "production");
    train(&s, "v2", 0.3, "staging");

    let mut cmd = Command::new(workspace_bin("wasmline"));
    cmd.args(["--store", s.store().to_str().unwrap(), "serve"])
        .args(["--addr", "127.0.0.1:0"])
        .env("WASMLINE_ADMIN_TOKEN", ADMIN_TOKEN)
        .env_remove("WASMLINE_SDK_DIR")
        .env_remove("WASMLINE_WEB_DIR");
    let mut server = ChildGuard::spawn("wasmline serve", cmd, &s.path().join("serve.log"));
    let url = format!("http://{}", server.wait_for_listening());
    assert_serves_this_checkout(&url);

    let out = screenshots("web-page");
    let stdout = drive_page(&url, &[MODEL, "--token", ADMIN_TOKEN], &out, &server);
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
