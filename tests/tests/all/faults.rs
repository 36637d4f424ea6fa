//! Faults and load across processes: two `wasmline serve` processes on one store move one alias
//! at once, on the disk store and on S3 (moto, which answers conditional writes one at a time as
//! S3 does; s3s-fs checks If-Match but does not serialise it, so it is not used for races).

use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tests::process::{ChildGuard, free_port};
use tests::servers::MotoServer;
use tests::workspace_bin;

use crate::Scratch;
use crate::train::{train_section, with_training};

const ADMIN: &str = "admin-token";
const REQUESTS: usize = 200;
const CLIENTS: usize = 16;

/// Two versions of `wine` in `store`: two pipeline runs with different grids, at the same time
/// (two processes registering at once). They get distinct versions, each holding its own run's
/// files: every artifact matches its manifest's digest (`models download` checks them).
fn two_versions(s: &Scratch, store: &str) {
    let configs: Vec<_> = ["1.0", "0.01"]
        .iter()
        .map(|alpha| {
            with_training(
                s,
                "winequality",
                &format!("wine-{alpha}"),
                &train_section("wine", "f1", "logistic_regression", &format!("alpha = [{alpha}]")),
            )
        })
        .collect();
    std::thread::scope(|scope| {
        let runs: Vec<_> = configs
            .iter()
            .map(|config| {
                scope.spawn(|| {
                    s.run_with_store(store, &["pipeline", "run", "-c", config.to_str().unwrap()])
                        .ok()
                })
            })
            .collect();
        for run in runs {
            run.join().unwrap();
        }
    });
    let mut run_ids = std::collections::BTreeSet::new();
    for version in [1, 2] {
        let shown = s
            .run_with_store(store, &["models", "show", &format!("wine@{version}")])
            .ok();
        let manifest: Value = serde_json::from_str(&shown).unwrap_or_else(|e| panic!("{e}: {shown}"));
        assert_eq!(manifest["version"], version, "{manifest}");
        run_ids.insert(manifest["run_id"].as_str().unwrap().to_owned());
        let dir = s.path().join(format!("download-{version}"));
        s.run_with_store(
            store,
            &[
                "models",
                "download",
                &format!("wine@{version}"),
                "--out",
                dir.to_str().unwrap(),
            ],
        )
        .ok();
    }
    assert_eq!(run_ids.len(), 2, "each version is its own run's: {run_ids:?}");
    let three = s.run_with_store(store, &["models", "show", "wine@3"]).fails();
    assert!(three.contains("no version 3"), "{three}");
}

fn serve(s: &Scratch, store: &str, name: &str) -> (ChildGuard, String) {
    let port = free_port();
    let mut cmd = Command::new(workspace_bin("wasmline"));
    cmd.args(["--store", store, "serve", "--addr", &format!("127.0.0.1:{port}")])
        .env("WASMLINE_ADMIN_TOKEN", ADMIN)
        .envs(s.env.iter().map(|(k, v)| (k, v)));
    let mut child = ChildGuard::spawn(name, cmd, &s.path().join(format!("{name}.log")));
    child.wait_for_listening();
    (child, format!("http://127.0.0.1:{port}"))
}

/// `REQUESTS` promotes and rollbacks of `wine@production` from `CLIENTS` threads, spread over
/// both servers. Every answer is a 200 (or a 409 for a rollback with nothing to roll back to),
/// every 200 names a transition the alias log holds with the same version, the log has no gap and
/// each move starts where the previous ended, and the alias ends at the last transition.
fn contend(servers: &[String; 2], backend: &str) {
    let next = Arc::new(Mutex::new(0usize));
    let answers = Arc::new(Mutex::new(Vec::new()));
    let started = Instant::now();
    let threads: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (next, answers, servers) = (next.clone(), answers.clone(), servers.clone());
            std::thread::spawn(move || {
                let agent = ureq::Agent::new_with_config(
                    ureq::Agent::config_builder()
                        .http_status_as_error(false)
                        .timeout_global(Some(Duration::from_secs(60)))
                        .build(),
                );
                loop {
                    let i = {
                        let mut n = next.lock().unwrap();
                        if *n == REQUESTS {
                            return;
                        }
                        *n += 1;
                        *n - 1
                    };
                    let server = &servers[i % 2];
                    let sent = Instant::now();
                    let response = if i % 4 == 3 {
                        agent
                            .post(&format!("{server}/api/v1/models/wine/aliases/production/rollback"))
                            .header("Authorization", &format!("Bearer {ADMIN}"))
                            .send_empty()
                    } else {
                        agent
                            .put(&format!("{server}/api/v1/models/wine/aliases/production"))
                            .header("Authorization", &format!("Bearer {ADMIN}"))
                            .send_json(serde_json::json!({"version": 1 + i % 2}))
                    };
                    let mut response = response.unwrap_or_else(|e| panic!("request {i}: {e}"));
                    let status = response.status().as_u16();
                    let body: Value = response.body_mut().read_json().unwrap_or(Value::Null);
                    answers.lock().unwrap().push((i, status, body, sent.elapsed()));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let elapsed = started.elapsed();
    let answers = std::mem::take(&mut *answers.lock().unwrap());
    assert_eq!(answers.len(), REQUESTS);

    let log: Value = ureq::get(&format!("{}/api/v1/models/wine/aliases/production/log", servers[0]))
        .call()
        .unwrap()
        .body_mut()
        .read_json()
        .unwrap();
    let log = log["transitions"].as_array().unwrap().clone();
    let numbers: Vec<u64> = log.iter().map(|e| e["transition"].as_u64().unwrap()).collect();
    assert_eq!(
        numbers,
        (1..=log.len() as u64).collect::<Vec<_>>(),
        "{backend}: a gap in the log"
    );
    for pair in log.windows(2) {
        assert_eq!(pair[1]["from"], pair[0]["version"], "{backend}: {pair:?}");
    }
    let mut moves = std::collections::BTreeSet::new();
    for (i, status, body, _) in &answers {
        match status {
            200 => {
                let t = body["transition"].as_u64().unwrap();
                let entry = &log[t as usize - 1];
                assert_eq!(
                    entry["version"], body["version"],
                    "{backend}: request {i} answered {body}"
                );
                moves.insert(t);
            }
            409 if i % 4 == 3 => assert_eq!(body["error"]["code"], "conflict", "{backend}: {body}"),
            _ => panic!("{backend}: request {i} got {status}: {body}"),
        }
    }
    let last = log.last().unwrap();
    let alias: Value = ureq::get(&format!("{}/api/v1/models/wine/aliases/production", servers[1]))
        .call()
        .unwrap()
        .body_mut()
        .read_json()
        .unwrap();
    assert_eq!(
        alias["version"], last["version"],
        "{backend}: the alias is the last transition"
    );
    assert!(
        log.len() > 20,
        "{backend}: only {} transitions: the requests did not contend",
        log.len()
    );

    let mut latencies: Vec<Duration> = answers.iter().map(|a| a.3).collect();
    latencies.sort();
    eprintln!(
        "{backend}: {REQUESTS} alias moves from {CLIENTS} clients over 2 servers in {elapsed:.2?}: {:.0} requests/s, p50 {:.1?}, p99 {:.1?}; {} transitions, {} answered as moves",
        REQUESTS as f64 / elapsed.as_secs_f64(),
        latencies[REQUESTS / 2],
        latencies[REQUESTS * 99 / 100],
        log.len(),
        moves.len()
    );
}

#[test]
fn two_servers_moving_one_alias_on_disk_lose_no_transition() {
    let s = Scratch::new();
    let store = s.store();
    let store = store.to_str().unwrap();
    two_versions(&s, store);
    let (_a, a) = serve(&s, store, "serve-a");
    let (_b, b) = serve(&s, store, "serve-b");
    contend(&[a, b], "disk");
}

#[test]
fn two_servers_moving_one_alias_on_s3_lose_no_transition() {
    let moto = MotoServer::start();
    ureq::put(&format!("{}/{}", moto.endpoint, moto.bucket))
        .send_empty()
        .expect("create the bucket");
    let mut s = Scratch::new();
    s.env = moto.env();
    let store = moto.url();
    two_versions(&s, &store);
    let (_a, a) = serve(&s, &store, "serve-a");
    let (_b, b) = serve(&s, &store, "serve-b");
    contend(&[a, b], "s3 (moto)");
}
