//! Pipeline runs started over HTTP, across processes: a `wasmline serve` killed with SIGKILL
//! leaves its run to the next one, which marks it `abandoned` once the lease expires; one
//! stopped with SIGTERM stops its run between two steps and exits within its grace.

use std::process::Command;
use std::time::{Duration, Instant};

use rustix::process::Signal;
use serde_json::Value;
use tests::process::{ChildGuard, free_port};
use tests::workspace_bin;

use crate::Scratch;

const ADMIN_TOKEN: &str = "admin-token";

/// `wasmline serve` on the scratch store with a 2 s run lease; returns it and its address.
fn serve(s: &Scratch, log: &str, extra: &[&str]) -> (ChildGuard, String) {
    let mut cmd = Command::new(workspace_bin("wasmline"));
    cmd.current_dir(s.path())
        .args(["--store", s.store().to_str().unwrap(), "serve"])
        .args(["--addr", &format!("127.0.0.1:{}", free_port())])
        .args(["--run-lease-secs", "2"])
        .args(extra)
        .env("WASMLINE_ADMIN_TOKEN", ADMIN_TOKEN);
    let mut guard = ChildGuard::spawn("wasmline serve", cmd, &s.path().join(log));
    let addr = guard.wait_for_listening();
    (guard, addr)
}

/// Starts the bundled example (training included: long enough to be caught running).
fn trigger(addr: &str) -> String {
    let mut answer = ureq::post(&format!("http://{addr}/api/v1/pipeline/runs"))
        .header("Authorization", &format!("Bearer {ADMIN_TOKEN}"))
        .send_json(serde_json::json!({}))
        .unwrap_or_else(|e| panic!("trigger: {e}"));
    assert_eq!(answer.status(), 202);
    let answer: Value = answer.body_mut().read_json().unwrap();
    answer["run_id"].as_str().unwrap().to_owned()
}

fn get(addr: &str, path: &str) -> Value {
    ureq::get(&format!("http://{addr}{path}"))
        .call()
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .body_mut()
        .read_json()
        .unwrap()
}

#[test]
fn a_killed_servers_run_is_marked_abandoned_by_the_next_server() {
    let s = Scratch::new();
    let (mut first, addr) = serve(&s, "serve-1.log", &[]);
    let id = trigger(&addr);
    let run = get(&addr, &format!("/api/v1/pipeline/runs/{id}"));
    assert_eq!(run["status"], "running", "{run}");
    assert_eq!(run["active"], true, "{run}");
    let owner = run["lease"]["owner"].as_str().unwrap().to_owned();
    // Alive, the server keeps its lease: past one and a half leases, its own scans leave the
    // run running, with a later heartbeat.
    std::thread::sleep(Duration::from_secs(3));
    let later = get(&addr, &format!("/api/v1/pipeline/runs/{id}"));
    assert_eq!(later["status"], "running", "{later}");
    assert!(
        later["lease"]["heartbeat_at"].as_str() > run["lease"]["heartbeat_at"].as_str(),
        "{run}\n{later}"
    );

    first.signal(Signal::KILL);
    first.wait_exit(Duration::from_secs(10));
    let stored = std::fs::read_to_string(s.store().join(format!("runs/{id}/run.json"))).unwrap();
    assert!(stored.contains("\"status\": \"running\""), "left running: {stored}");

    // The next server on the same store finds the lease expired and says so.
    let (second, addr) = serve(&s, "serve-2.log", &[]);
    let deadline = Instant::now() + Duration::from_secs(30);
    let run = loop {
        let run = get(&addr, &format!("/api/v1/pipeline/runs/{id}"));
        if run["status"] != "running" {
            break run;
        }
        assert!(Instant::now() < deadline, "still running: {run}\n{}", second.log_text());
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(run["status"], "abandoned", "{run}");
    assert_eq!(run["active"], false, "{run}");
    let reason = run["error"].as_str().unwrap();
    assert!(
        reason.starts_with("lease expired at ") && reason.contains(&format!("owner {owner} stopped heartbeating")),
        "{reason}"
    );
    assert_eq!(get(&addr, &format!("/api/v1/runs/{id}"))["status"], "abandoned");
    assert!(second.log_text().contains("marked abandoned"), "{}", second.log_text());
    assert!(
        std::fs::read_dir(s.store().join("leases/runs"))
            .unwrap()
            .next()
            .is_none(),
        "no lease is left listed"
    );
}

#[test]
fn sigterm_stops_the_run_between_steps_and_exits_within_the_grace() {
    let s = Scratch::new();
    let (mut server, addr) = serve(&s, "serve.log", &["--shutdown-grace", "60"]);
    let id = trigger(&addr);
    let started = Instant::now();
    server.signal(Signal::TERM);
    let status = server.wait_exit(Duration::from_secs(90));
    assert!(status.success(), "{status}:\n{}", server.log_text());
    assert!(started.elapsed() < Duration::from_secs(60), "exited within the grace");

    let stored: Value =
        serde_json::from_str(&std::fs::read_to_string(s.store().join(format!("runs/{id}/run.json"))).unwrap()).unwrap();
    assert_eq!(stored["status"], "abandoned", "{stored}");
    let reason = stored["error"].as_str().unwrap();
    assert!(reason.contains(") shut down before step "), "{reason}");
    assert!(stored.get("lease").is_none(), "the lease is given up: {stored}");
    let steps = stored["steps"].as_array().unwrap().len();
    assert!(
        steps < wasmline::StepName::ALL.len(),
        "stopped before the end: {stored}"
    );
}
