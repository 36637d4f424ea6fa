//! The real `wasmline-edge` binary, on a free 127.0.0.1 port with a temporary cache dir.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use model_wasm::telemetry::TelemetryBatch;
use serde_json::{Value, json};

use crate::process::{Edge, Probe};
use crate::standin::{StandIn, TOKEN};
use crate::support::{
    CLASSES, classifier_ir, eventually, looping_module, matrix_request, model_files, other_signing_key, public_key,
    reference, regressor_ir, signing_key, with_module, write_model_dir,
};

#[test]
fn serves_a_models_dir() {
    let dir = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let ir = classifier_ir();
    write_model_dir(dir.path(), "wine", &model_files("wine", 4, &ir, None));
    let edge = Edge::spawn(&[
        "--models-dir",
        dir.path().to_str().unwrap(),
        "--cache-dir",
        cache.path().to_str().unwrap(),
        "--node-id",
        "edge-test",
    ]);
    edge.wait_ready();

    let rows: Vec<Vec<f64>> = (0..20)
        .map(|i| vec![f64::from(i) / 2.0, 3.0, f64::from(i % 5)])
        .collect();
    let (status, body) = edge.post("/v2/models/wine/infer", &matrix_request(&rows));
    assert_eq!(status, 200, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["model_version"], "4");
    for (i, row) in rows.iter().enumerate() {
        let model_wasm::Prediction::Class { label, probabilities } = reference(&ir, row) else {
            panic!("a classifier")
        };
        assert_eq!(body["outputs"][0]["data"][i], CLASSES[label], "row {i}");
        for (k, p) in probabilities.iter().enumerate() {
            let got = body["outputs"][1]["data"][i * 3 + k].as_f64().unwrap();
            assert!((got - p).abs() <= 1e-9, "row {i} class {k}: {got} vs {p}");
        }
    }
    let (status, body) = edge.post("/v2/models/wine/infer", &json!({"inputs": [{"name": "x"}]}));
    assert_eq!(status, 400, "{body}");
    assert!(edge.metric("wasmline_model_info{").is_some());
}

#[test]
fn with_one_instance_concurrent_batches_queue_and_all_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    write_model_dir(dir.path(), "reg", &model_files("reg", 1, &regressor_ir(0.5), None));
    let edge = Edge::spawn(&[
        "--models-dir",
        dir.path().to_str().unwrap(),
        "--cache-dir",
        cache.path().to_str().unwrap(),
        "--max-instances",
        "1",
    ]);
    edge.wait_ready();
    // Batches of 500 rows from 8 clients at once, one instance to share: they wait their turn.
    let clients: Vec<_> = (0..8)
        .map(|client| {
            let base = edge.base.clone();
            std::thread::spawn(move || {
                let probe = Probe { base };
                let rows: Vec<Vec<f64>> = (0..500).map(|i| vec![f64::from(client), f64::from(i)]).collect();
                (0..5)
                    .map(|_| probe.post("/v2/models/reg/infer", &matrix_request(&rows)))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for client in clients {
        for (status, body) in client.join().unwrap() {
            assert_eq!(status, 200, "{body}");
        }
    }
}

/// The arguments of an edge following `stand_in` with `cache` as its cache dir.
fn follower_args(stand_in: &StandIn, cache: &Path, node: &str) -> Vec<String> {
    [
        "--control-plane",
        &stand_in.url(),
        "--models",
        "wine",
        "--cache-dir",
        cache.to_str().unwrap(),
        "--node-id",
        node,
        "--edge-token",
        TOKEN,
        "--telemetry-interval",
        "1",
        "--poll-interval",
        "5",
        "--max-backoff",
        "1",
    ]
    .map(String::from)
    .to_vec()
}

fn spawn(args: &[String]) -> Edge {
    Edge::spawn(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

/// `y = intercept + x0 - 2 x1` at (1, 1): the version's answer tells it apart.
fn answer(edge: &Probe, path: &str) -> (u16, Option<(String, f64)>) {
    let (status, body) = edge.post(path, &matrix_request(&[vec![1.0, 1.0]]));
    let parsed = (status == 200).then(|| {
        let body: Value = serde_json::from_str(&body).unwrap();
        (
            body["model_version"].as_str().unwrap().to_owned(),
            body["outputs"][0]["data"][0].as_f64().unwrap(),
        )
    });
    (status, parsed)
}

const DEADLINE: Duration = Duration::from_secs(60);

#[test]
fn follows_the_alias_without_failing_a_request_and_refuses_bad_versions() {
    let key = signing_key();
    let stand_in = StandIn::start(public_key(&key));
    for version in [1, 2] {
        stand_in.publish(
            "wine",
            version,
            &model_files("wine", version, &regressor_ir(version as f64), Some(&key)),
        );
    }
    stand_in.set_alias("wine", 1);
    let cache = tempfile::tempdir().unwrap();
    let edge = spawn(&follower_args(&stand_in, cache.path(), "edge-a"));
    edge.wait_ready();
    assert_eq!(answer(&edge, "/v2/models/wine/infer"), (200, Some(("1".into(), 0.0))));
    assert!(
        cache.path().join("trusted-key.json").is_file(),
        "the key is pinned on first use"
    );

    // A steady request loop while the alias moves: every request answers, first v1 then v2.
    let stop = Arc::new(AtomicBool::new(false));
    let looper = {
        let (stop, base) = (stop.clone(), edge.base.clone());
        std::thread::spawn(move || {
            let probe = Probe { base };
            let mut seen = Vec::new();
            while !stop.load(Ordering::Relaxed) && seen.len() < 100_000 {
                seen.push(answer(&probe, "/v2/models/wine/infer"));
            }
            seen
        })
    };
    stand_in.set_alias("wine", 2);
    eventually("the edge to serve version 2", DEADLINE, || {
        (edge.served_version("wine").as_deref() == Some("2")).then_some(())
    });
    // Let the loop see the new version.
    eventually("the loop to reach version 2", DEADLINE, || {
        (answer(&edge, "/v2/models/wine/infer").1.is_some_and(|(v, _)| v == "2")).then_some(())
    });
    stop.store(true, Ordering::Relaxed);
    let seen = looper.join().unwrap();
    assert!(!seen.is_empty());
    let failed: Vec<_> = seen.iter().filter(|(status, _)| *status != 200).collect();
    assert!(
        failed.is_empty(),
        "{} of {} requests failed: {:?}",
        failed.len(),
        seen.len(),
        failed.first()
    );
    let versions: Vec<&str> = seen.iter().map(|(_, a)| a.as_ref().unwrap().0.as_str()).collect();
    let switch = versions.iter().position(|v| *v == "2").unwrap_or(versions.len());
    assert!(
        versions[..switch].iter().all(|v| *v == "1"),
        "only v1 before the switch"
    );
    assert!(versions[switch..].iter().all(|v| *v == "2"), "only v2 after it");
    for (_, answer) in &seen {
        let (version, value) = answer.as_ref().unwrap();
        assert_eq!(*value, if version == "1" { 0.0 } else { 1.0 });
    }

    // Bad versions are refused; version 2 keeps serving.
    let refused = |n: f64| {
        eventually("the version to be refused", DEADLINE, || {
            (edge.metric("wasmline_edge_model_refused_total{") == Some(n)).then_some(())
        });
        assert_eq!(answer(&edge, "/v2/models/wine/infer"), (200, Some(("2".into(), 1.0))));
    };
    let mut tampered = model_files("wine", 3, &regressor_ir(3.0), Some(&key));
    let last = tampered.wasm.len() - 1;
    tampered.wasm[last] ^= 0x01;
    stand_in.publish("wine", 3, &tampered);
    stand_in.set_alias("wine", 3);
    refused(1.0);

    let other = model_files("wine", 4, &regressor_ir(4.0), Some(&other_signing_key()));
    stand_in.publish("wine", 4, &other);
    stand_in.set_alias("wine", 4);
    refused(2.0);

    // A smoke prediction past its deadline may be a loaded machine's doing: that version is not
    // refused but tried again after each backoff, while version 2 keeps serving.
    let looping = with_module("wine", 5, &regressor_ir(5.0), looping_module(2), Some(&key));
    stand_in.publish("wine", 5, &looping);
    stand_in.set_alias("wine", 5);
    let failures = |kind: &str| {
        edge.metric(&format!(
            r#"wasmline_edge_load_failures_total{{kind="{kind}",model="wine"}}"#
        ))
    };
    eventually("two attempts at the looping version", DEADLINE, || {
        failures("transient").is_some_and(|n| n >= 2.0).then_some(())
    });
    assert_eq!(failures("permanent"), Some(2.0));
    assert_eq!(edge.metric("wasmline_edge_model_refused_total{"), Some(2.0));
    assert!(edge.metric("wasmline_edge_load_retry_timestamp_seconds{").is_some());
    assert_eq!(answer(&edge, "/v2/models/wine/infer"), (200, Some(("2".into(), 1.0))));
    let log = edge.log();
    assert!(log.contains("does not match the manifest: sha256"), "{log}");
    assert!(log.contains("not by the trusted key"), "{log}");
    assert!(log.contains("did not finish within its deadline"), "{log}");
    assert!(log.contains("cannot load a version for now; will retry"), "{log}");

    // A good version after the bad ones is taken; the previous one stays addressable.
    stand_in.publish("wine", 6, &model_files("wine", 6, &regressor_ir(6.0), Some(&key)));
    stand_in.set_alias("wine", 6);
    eventually("the edge to serve version 6", DEADLINE, || {
        (edge.served_version("wine").as_deref() == Some("6")).then_some(())
    });
    assert_eq!(answer(&edge, "/v2/models/wine/infer"), (200, Some(("6".into(), 5.0))));
    assert_eq!(edge.metric("wasmline_edge_load_retry_timestamp_seconds{"), None);
    assert_eq!(
        answer(&edge, "/v2/models/wine/versions/2/infer"),
        (200, Some(("2".into(), 1.0)))
    );
    assert_eq!(answer(&edge, "/v2/models/wine/versions/5/infer").0, 404);

    // The alias moving back swaps the previous version in.
    stand_in.set_alias("wine", 2);
    eventually("the edge to serve version 2 again", DEADLINE, || {
        (edge.served_version("wine").as_deref() == Some("2")).then_some(())
    });
}

/// The ok predictions counted in the pending batches on disk.
fn pending_ok(cache: &Path) -> u64 {
    let dir = cache.join("telemetry/pending");
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
                .filter_map(|e| std::fs::read(e.path()).ok())
                .filter_map(|b| serde_json::from_slice::<TelemetryBatch>(&b).ok())
                .flat_map(|b| b.reports)
                .map(|r| r.predictions.ok)
                .sum()
        })
        .unwrap_or(0)
}

#[test]
fn offline_the_edge_serves_from_cache_and_buffers_telemetry_until_delivered_once() {
    let key = signing_key();
    let mut stand_in = StandIn::start(public_key(&key));
    stand_in.publish("wine", 1, &model_files("wine", 1, &regressor_ir(1.0), Some(&key)));
    stand_in.set_alias("wine", 1);
    let cache = tempfile::tempdir().unwrap();
    let args = follower_args(&stand_in, cache.path(), "edge-b");
    let edge = spawn(&args);
    edge.wait_ready();

    // The control plane goes away; the edge keeps answering and writes telemetry to disk.
    stand_in.stop();
    for _ in 0..10 {
        assert_eq!(answer(&edge, "/v2/models/wine/infer"), (200, Some(("1".into(), 0.0))));
    }
    eventually("the counts to be on disk", DEADLINE, || {
        (pending_ok(cache.path()) == 10).then_some(())
    });
    assert!(
        edge.metric("wasmline_edge_telemetry_pending_batches")
            .is_some_and(|n| n >= 1.0)
    );
    assert!(
        edge.metric("wasmline_edge_sync_failures_total{")
            .is_some_and(|n| n >= 1.0)
    );

    // A restart with the control plane still down serves from the cache.
    drop(edge);
    let edge = spawn(&args);
    edge.wait_ready();
    assert_eq!(answer(&edge, "/v2/models/wine/infer"), (200, Some(("1".into(), 0.0))));

    // The control plane returns: every batch arrives, each once.
    stand_in.restart();
    eventually("the telemetry to be delivered", DEADLINE, || {
        let registry = stand_in.registry();
        let ok: u64 = registry
            .accepted
            .iter()
            .flat_map(|b| &b.reports)
            .map(|r| r.predictions.ok)
            .sum();
        (ok == 11).then_some(())
    });
    eventually("the pending folder to empty", DEADLINE, || {
        (pending_ok(cache.path()) == 0).then_some(())
    });
    let registry = stand_in.registry();
    let unique: HashSet<&String> = registry.posted_ids.iter().collect();
    assert_eq!(
        unique.len(),
        registry.posted_ids.len(),
        "no batch posted twice: {:?}",
        registry.posted_ids
    );
    for batch in &registry.accepted {
        assert_eq!(batch.node, "edge-b");
        assert!(
            batch
                .reports
                .iter()
                .all(|r| r.runtime == "wasmtime" && r.model == "wine")
        );
    }
}

#[test]
fn a_pinned_key_is_never_replaced_by_another_one() {
    let first = signing_key();
    let cache = tempfile::tempdir().unwrap();
    std::fs::write(
        cache.path().join("trusted-key.json"),
        serde_json::to_vec(&public_key(&first)).unwrap(),
    )
    .unwrap();
    // A control plane (or an impostor) with another key, signing with it.
    let other = other_signing_key();
    let stand_in = StandIn::start(public_key(&other));
    stand_in.publish("wine", 1, &model_files("wine", 1, &regressor_ir(1.0), Some(&other)));
    stand_in.set_alias("wine", 1);
    let edge = spawn(&follower_args(&stand_in, cache.path(), "edge-c"));
    eventually("the version to be refused", DEADLINE, || {
        (edge.metric("wasmline_edge_model_refused_total{") == Some(1.0)).then_some(())
    });
    assert_eq!(edge.get("/v2/health/ready").0, 503);
    let log = edge.log();
    assert!(log.contains("THE CONTROL PLANE PRESENTS ANOTHER SIGNING KEY"), "{log}");
    let pinned: model_wasm::signature::PublicKey =
        serde_json::from_slice(&std::fs::read(cache.path().join("trusted-key.json")).unwrap()).unwrap();
    assert_eq!(pinned, public_key(&first), "the pin is unchanged");
}

#[cfg(unix)]
#[test]
fn sigterm_stops_gracefully_and_keeps_the_last_counts() {
    let key = signing_key();
    let mut stand_in = StandIn::start(public_key(&key));
    stand_in.publish("wine", 1, &model_files("wine", 1, &regressor_ir(1.0), Some(&key)));
    stand_in.set_alias("wine", 1);
    let cache = tempfile::tempdir().unwrap();
    let mut args = follower_args(&stand_in, cache.path(), "edge-d");
    // No batch before the shutdown.
    let interval = args.iter().position(|a| a == "--telemetry-interval").unwrap();
    args[interval + 1] = "3600".into();
    let mut edge = spawn(&args);
    edge.wait_ready();
    stand_in.stop();
    for _ in 0..3 {
        assert_eq!(answer(&edge, "/v2/models/wine/infer").0, 200);
    }
    assert_eq!(pending_ok(cache.path()), 0);
    let status = edge.terminate();
    assert!(status.success(), "{status:?}\n{}", edge.log());
    assert_eq!(pending_ok(cache.path()), 3, "the last batch is on disk");
}
