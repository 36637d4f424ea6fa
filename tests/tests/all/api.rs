//! The control plane's REST API as a client sees it: Schemathesis generates requests from
//! `/api/v1/openapi.json` (valid and invalid: wrong types, missing fields, odd strings) against a
//! running `wasmline serve` with a registered model, and no request may get a 5xx.

use std::process::Command;

use tests::process::{ChildGuard, find_program, free_port};
use tests::workspace_bin;

use crate::Scratch;
use crate::train::{train_section, with_training};

#[test]
fn schemathesis_finds_no_server_error() {
    let s = Scratch::new();
    let config = with_training(
        &s,
        "winequality",
        "wine",
        &train_section("wine", "f1", "logistic_regression", "alpha = [1.0]"),
    );
    s.run(&["pipeline", "run", "-c", config.to_str().unwrap()]).ok();
    let port = free_port();
    let mut cmd = Command::new(workspace_bin("wasmline"));
    cmd.args([
        "--store",
        s.store().to_str().unwrap(),
        "serve",
        "--addr",
        &format!("127.0.0.1:{port}"),
    ])
    .env("WASMLINE_EDGE_TOKEN", "edge-token")
    .env("WASMLINE_ADMIN_TOKEN", "admin-token-the-fuzzer-does-not-have");
    let mut server = ChildGuard::spawn("wasmline serve", cmd, &s.path().join("serve.log"));
    server.wait_for_listening();

    let out = Command::new(find_program("schemathesis"))
        .current_dir(s.path())
        .args(["run", &format!("http://127.0.0.1:{port}/api/v1/openapi.json")])
        .args([
            "--checks",
            "not_a_server_error",
            "--max-time",
            "30",
            "--workers",
            "2",
            "--seed",
            "1",
        ])
        // The edge token lets telemetry bodies reach validation; writes stay unauthorised.
        .args(["--header", "Authorization: Bearer edge-token"])
        .env("SCHEMATHESIS_HOOKS", "")
        .output()
        .expect("run schemathesis");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let log = server.log_text();
    assert!(
        out.status.success(),
        "schemathesis found failures:\n{stdout}\n{}\nserver log:\n{log}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("passed"), "{stdout}");
    assert!(!log.contains("request failed"), "a 5xx was logged:\n{log}");
    let summary: Vec<&str> = stdout.lines().filter(|l| l.contains("generated")).collect();
    eprintln!("schemathesis: {summary:?}");
}
