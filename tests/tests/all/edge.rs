//! The control plane (`wasmline serve` on a disk store) and two edges (`wasmline-edge`) as real
//! processes: a promotion reaches both edges under a steady request loop without a failed request;
//! with the control plane down the edges keep serving, and an edge restarts from its cache; the
//! telemetry they buffered meanwhile arrives exactly once when the control plane is back; tampered
//! versions (module bytes, manifest signature) are refused while the last good version serves.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use model_wasm::{ModelIr, Prediction};
use serde_json::{Value, json};
use tests::process::{ChildGuard, free_port};
use tests::workspace_bin;

use crate::train::with_training;
use crate::{Edge, Scratch};

pub(crate) const TOKEN: &str = "edge-token-for-tests";
const MODEL: &str = "wine";

/// A logistic regression on the wine data, registered and moved to `alias`.
fn train(s: &Scratch, name: &str, alpha: f64, alias: &str) {
    let section = format!(
        "[train]\nmodel_name = \"{MODEL}\"\nmetric = \"f1\"\nfolds = 3\nalias = \"{alias}\"\n\n\
         [[train.models]]\nfamily = \"logistic_regression\"\ngrid = {{ alpha = [{alpha:?}] }}\n"
    );
    let config = with_training(s, "winequality", name, &section);
    s.run(&["pipeline", "run", "-c", config.to_str().unwrap()]).ok();
}

pub(crate) fn control_plane(s: &Scratch, port: u16, log: &str) -> ChildGuard {
    let mut cmd = Command::new(workspace_bin("wasmline"));
    cmd.args(["--store", s.store().to_str().unwrap(), "serve"])
        .args(["--addr", &format!("127.0.0.1:{port}"), "--poll-ms", "50"])
        .env("WASMLINE_EDGE_TOKEN", TOKEN);
    let mut guard = ChildGuard::spawn("wasmline serve", cmd, &s.path().join(log));
    guard.wait_for_listening();
    guard
}

fn edge(s: &Scratch, node: &str, control_plane: u16, run: usize) -> Edge {
    Edge::start(
        s,
        node,
        run,
        &format!("127.0.0.1:{control_plane}"),
        MODEL,
        "127.0.0.1:0",
        |cmd| {
            cmd.env("WASMLINE_EDGE_TOKEN", TOKEN).env("WASMLINE_LOG", "info");
        },
    )
}

/// One row through an edge: (HTTP status, served version, body).
fn infer(addr: &str, row: &[f64]) -> (u16, Option<u64>, Value) {
    let body = json!({"inputs": [{"name": "input", "shape": [1, row.len()], "datatype": "FP64", "data": row}]});
    let response = ureq::post(&format!("http://{addr}/v2/models/{MODEL}/infer"))
        .config()
        .http_status_as_error(false)
        .build()
        .send_json(&body);
    match response {
        Ok(mut r) => {
            let status = r.status().as_u16();
            let body: Value = r.body_mut().read_json().unwrap_or(Value::Null);
            let version = body["model_version"].as_str().and_then(|v| v.parse().ok());
            (status, version, body)
        }
        Err(e) => (0, None, json!({ "transport": e.to_string() })),
    }
}

fn ir(s: &Scratch, version: u64) -> ModelIr {
    serde_json::from_slice(&std::fs::read(s.store().join(format!("models/{MODEL}/{version}/model.ir.json"))).unwrap())
        .unwrap()
}

fn sample_rows(s: &Scratch, version: u64) -> Vec<Vec<f64>> {
    let manifest: Value = serde_json::from_slice(
        &std::fs::read(s.store().join(format!("models/{MODEL}/{version}/manifest.json"))).unwrap(),
    )
    .unwrap();
    serde_json::from_value(manifest["sample_rows"].clone()).unwrap()
}

/// The edge's answer is the IR's.
#[track_caller]
fn assert_answer(ir: &ModelIr, row: &[f64], body: &Value) {
    let Prediction::Class { label, probabilities } = ir.predict(row).unwrap() else {
        panic!("a classifier")
    };
    let outputs = body["outputs"].as_array().unwrap();
    let named = |n: &str| {
        outputs
            .iter()
            .find(|o| o["name"] == n)
            .unwrap_or_else(|| panic!("{n}: {body}"))
    };
    assert_eq!(named("label")["data"][0], ir.classes()[label], "{body}");
    let got: Vec<f64> = serde_json::from_value(named("probabilities")["data"].clone()).unwrap();
    for (g, w) in got.iter().zip(&probabilities) {
        assert!(model_wasm::parity::agree(*w, *g), "{got:?} != {probabilities:?}");
    }
}

/// Sends rows to every edge until `stop`; per edge, the (status, version) of each request.
fn request_loop(addrs: Vec<String>, rows: Vec<Vec<f64>>, stop: Arc<AtomicBool>) -> Vec<Vec<(u16, Option<u64>)>> {
    let threads: Vec<_> = addrs
        .into_iter()
        .map(|addr| {
            let (rows, stop) = (rows.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut seen = Vec::new();
                for row in rows.iter().cycle() {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let (status, version, _) = infer(&addr, row);
                    seen.push((status, version));
                }
                seen
            })
        })
        .collect();
    threads.into_iter().map(|t| t.join().unwrap()).collect()
}

/// `ok` predictions the control plane recorded from `node`, over all its batches.
fn recorded_ok(store: &Path, node: &str) -> (u64, usize) {
    let dir = store.join("telemetry/batches").join(node);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return (0, 0);
    };
    let mut ok = 0;
    let mut batches = 0;
    for e in entries.flatten() {
        let batch: Value = serde_json::from_slice(&std::fs::read(e.path()).unwrap()).unwrap();
        batches += 1;
        for report in batch["reports"].as_array().unwrap() {
            ok += report["predictions"]["ok"].as_u64().unwrap();
        }
    }
    (ok, batches)
}

fn metric(addr: &str, name: &str) -> f64 {
    let text = ureq::get(&format!("http://{addr}/metrics"))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    text.lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn pending(cache: &Path) -> usize {
    std::fs::read_dir(cache.join("telemetry/pending")).map_or(0, |d| d.count())
}

#[test]
fn edges_follow_promotions_serve_offline_and_deliver_telemetry_once() {
    let s = Scratch::new();
    train(&s, "v1", 1.0, "production");
    train(&s, "v2", 0.3, "staging");
    let port = free_port();
    let cp = control_plane(&s, port, "serve-1.log");
    let mut a = edge(&s, "edge-a", port, 1);
    let b = edge(&s, "edge-b", port, 1);
    let rows = sample_rows(&s, 1);
    let (ir1, ir2) = (ir(&s, 1), ir(&s, 2));
    let mut sent = [0u64; 2];
    for (i, e) in [&a, &b].into_iter().enumerate() {
        let (status, version, body) = infer(&e.addr, &rows[0]);
        assert_eq!((status, version), (200, Some(1)), "{body}");
        assert_answer(&ir1, &rows[0], &body);
        sent[i] += 1;
    }

    // Promote version 2 under a steady request loop: both edges switch, no request fails.
    let stop = Arc::new(AtomicBool::new(false));
    let looping = {
        let (addrs, rows, stop) = (vec![a.addr.clone(), b.addr.clone()], rows.clone(), stop.clone());
        std::thread::spawn(move || request_loop(addrs, rows, stop))
    };
    std::thread::sleep(Duration::from_millis(300));
    s.run(&["models", "promote", MODEL, "2", "--alias", "production"]).ok();
    let promoted = Instant::now();
    let mut switched = [false; 2];
    while switched != [true; 2] {
        assert!(
            promoted.elapsed() < Duration::from_secs(30),
            "the edges did not switch to version 2"
        );
        for (i, e) in [&a, &b].into_iter().enumerate() {
            if !switched[i] {
                let (status, version, body) = infer(&e.addr, &rows[0]);
                assert_eq!(status, 200, "{body}");
                sent[i] += 1;
                switched[i] = version == Some(2);
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let switched = promoted.elapsed();
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    let seen = looping.join().unwrap();
    for (i, requests) in seen.iter().enumerate() {
        assert!(requests.len() > 10, "the loop ran: {} requests", requests.len());
        assert!(
            requests.iter().all(|(status, _)| *status == 200),
            "a request failed: {requests:?}"
        );
        let versions: Vec<u64> = requests.iter().map(|(_, v)| v.unwrap()).collect();
        assert!(versions.windows(2).all(|w| w[0] <= w[1]), "1s then 2s: {versions:?}");
        assert_eq!(versions.last(), Some(&2));
        sent[i] += requests.len() as u64;
    }
    eprintln!("alias moved -> both edges serving version 2 in {switched:?}");
    let (_, _, body) = infer(&b.addr, &rows[1]);
    assert_answer(&ir2, &rows[1], &body);
    sent[1] += 1;

    // The control plane goes away: the edges keep serving, and one restarts from its cache.
    drop(cp);
    for (i, e) in [&a, &b].into_iter().enumerate() {
        for row in &rows {
            let (status, version, body) = infer(&e.addr, row);
            assert_eq!((status, version), (200, Some(2)), "{body}");
            sent[i] += 1;
        }
    }
    drop(a.guard); // SIGTERM: the edge writes its last counts to its outbox.
    let restarted = Instant::now();
    a = edge(&s, "edge-a", port, 2);
    eprintln!(
        "edge restart with the control plane down, cached model ready in {:?}",
        restarted.elapsed()
    );
    let (status, version, body) = infer(&a.addr, &rows[2]);
    assert_eq!((status, version), (200, Some(2)), "{body}");
    assert_answer(&ir2, &rows[2], &body);
    sent[0] += 1;

    // Back: every count arrives, once.
    let cp = control_plane(&s, port, "serve-2.log");
    let cache = |e: &Edge| s.path().join(&e.node);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got = [recorded_ok(&s.store(), "edge-a").0, recorded_ok(&s.store(), "edge-b").0];
        if got == sent && pending(&cache(&a)) == 0 && pending(&cache(&b)) == 0 {
            break;
        }
        assert!(
            got.iter().zip(&sent).all(|(g, s)| g <= s),
            "more predictions recorded than made (a batch counted twice?): {got:?} > {sent:?}"
        );
        assert!(
            Instant::now() < deadline,
            "telemetry did not arrive: recorded {got:?}, sent {sent:?}\n{}",
            a.guard.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    eprintln!(
        "telemetry: {sent:?} predictions recorded exactly once, in {:?} batches",
        [recorded_ok(&s.store(), "edge-a").1, recorded_ok(&s.store(), "edge-b").1]
    );

    // Tampered versions: the module's bytes, then the manifest's content. Refused by both edges;
    // version 2 keeps serving.
    for (version, tamper) in [(3u64, "model.wasm"), (4, "manifest.json")] {
        train(&s, &format!("v{version}"), 0.1 * version as f64, "staging");
        let dir = s.store().join(format!("models/{MODEL}/{version}"));
        tamper_file(&dir.join(tamper));
        let refused_before = [&a, &b].map(|e| metric(&e.addr, "wasmline_edge_model_refused_total"));
        // Straight into the store, as a compromised store or control plane would (the CLI
        // checks artifacts before it moves an alias).
        let alias = json!({"version": version, "updated_at": "2026-11-28T00:00:00Z", "by": "attacker", "history": []});
        std::fs::write(
            s.store().join(format!("models/{MODEL}/aliases/production.json")),
            serde_json::to_vec(&alias).unwrap(),
        )
        .unwrap();
        for (e, before) in [&a, &b].into_iter().zip(refused_before) {
            let deadline = Instant::now() + Duration::from_secs(30);
            while metric(&e.addr, "wasmline_edge_model_refused_total") <= before {
                assert!(Instant::now() < deadline, "{} did not refuse version {version}", e.node);
                std::thread::sleep(Duration::from_millis(100));
            }
            let (status, served, _) = infer(&e.addr, &rows[0]);
            assert_eq!((status, served), (200, Some(2)), "{}: tampered {tamper}", e.node);
        }
        let log = a.guard.log_text();
        assert!(log.contains(&format!("{version}")), "the refusal is logged:\n{log}");
    }
    drop(cp);
}

/// Changes one byte in the middle of a file (a JSON manifest stays JSON: a digit changes).
fn tamper_file(path: &PathBuf) {
    let mut bytes = std::fs::read(path).unwrap();
    let at = if path.extension().is_some_and(|e| e == "json") {
        let text = String::from_utf8(bytes.clone()).unwrap();
        let metrics = text.find("\"metrics\"").expect("a metrics member");
        metrics + text[metrics..].find(|c: char| c.is_ascii_digit()).unwrap()
    } else {
        bytes.len() / 2
    };
    bytes[at] = if bytes[at] == b'1' { b'2' } else { b'1' };
    std::fs::write(path, bytes).unwrap();
}
