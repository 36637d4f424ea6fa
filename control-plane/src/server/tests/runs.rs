//! Handler tests of pipeline runs started over HTTP: the sources a run may read
//! (`--allow-source`), what public routes show of a failed run, leases and shutdown.

use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::http::StatusCode;

use super::super::pipeline::RunSettings;
use super::{ADMIN_TOKEN, TestApp, error_message, wait_for_end};
use crate::pipeline::{LeaseHolder, Pipeline, RunOptions};
use crate::server::ServerOptions;

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/winequality")
        .join(name)
}

/// The wine example's data steps (no `[train]`), reading `source`.
fn data_config(source: &str) -> String {
    let text = std::fs::read_to_string(example("pipeline.toml")).unwrap();
    let data = text.split("\n[train]").next().unwrap();
    let line = data.lines().find(|l| l.starts_with("source = ")).unwrap();
    data.replace(line, &format!("source = {source:?}"))
}

fn trigger_body(source: &str) -> String {
    serde_json::json!({ "config": data_config(source) }).to_string()
}

async fn app_allowing(prefixes: &[String], lease: Duration, grace: Duration) -> TestApp {
    TestApp::with(ServerOptions {
        runs: RunSettings {
            lease,
            shutdown_grace: grace,
            allow_sources: prefixes.to_vec(),
        },
        ..ServerOptions::default()
    })
    .await
}

/// A folder the server may read (with the wine data), a file beside it that it may not, and a
/// symlink inside pointing out.
struct Folders {
    _dir: tempfile::TempDir,
    allowed: PathBuf,
    secret: PathBuf,
}

impl Folders {
    fn new() -> Folders {
        let dir = tempfile::tempdir().unwrap();
        let allowed = dir.path().join("allowed");
        std::fs::create_dir_all(&allowed).unwrap();
        std::fs::copy(example("winequality-red.csv"), allowed.join("wine.csv")).unwrap();
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(&outside).unwrap();
        let secret = outside.join("secret.csv");
        std::fs::copy(example("winequality-red.csv"), &secret).unwrap();
        std::os::unix::fs::symlink(&secret, allowed.join("link.csv")).unwrap();
        Folders {
            _dir: dir,
            allowed,
            secret,
        }
    }

    fn inside(&self, name: &str) -> String {
        self.allowed.join(name).display().to_string()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_triggered_config_reads_only_allowed_sources() {
    let folders = Folders::new();
    let app = app_allowing(
        &[
            folders.allowed.display().to_string(),
            "http://127.0.0.1:9/allowed/".into(),
        ],
        Duration::from_secs(60),
        Duration::from_secs(30),
    )
    .await;
    let trigger = |source: String| {
        let app = &app;
        async move {
            app.send(
                "POST",
                "/api/v1/pipeline/runs",
                Some(ADMIN_TOKEN),
                &trigger_body(&source),
            )
            .await
        }
    };
    let refused = [
        folders.secret.display().to_string(),
        format!("{}/../outside/secret.csv", folders.allowed.display()),
        folders.inside("link.csv"),
        "http://127.0.0.1:9/elsewhere/wine.csv".into(),
        "http://127.0.0.1:9/allowed/../elsewhere/wine.csv".into(),
        "s3://bucket/wine.csv".into(),
    ];
    for source in refused {
        let (status, body) = trigger(source.clone()).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{source}: {body}");
        assert_eq!(body["error"]["code"], "source_not_allowed", "{body}");
        let message = error_message(&body);
        assert!(
            message.contains(&format!("source '{source}' is not allowed")),
            "{message}"
        );
        assert!(
            message.contains(&format!("{} (--allow-source)", folders.allowed.display()))
                && message.contains("http://127.0.0.1:9/allowed/ (--allow-source)")
                && message.contains("(the bundled example)"),
            "the message names what is allowed: {message}"
        );
    }
    assert!(app.store.list("runs/").await.unwrap().is_empty(), "nothing started");

    // Inside: the run goes, and succeeds.
    let (status, answer) = trigger(folders.inside("wine.csv")).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let run = wait_for_end(&app, answer["run_id"].as_str().unwrap()).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert!(run.get("lease").is_none(), "an ended run holds no lease: {run}");
    assert!(app.store.list("leases/").await.unwrap().is_empty());

    // An allowed URL goes too (nothing listens there: the run fails fetching it).
    let (status, answer) = trigger("http://127.0.0.1:9/allowed/wine.csv".into()).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let run = wait_for_end(&app, answer["run_id"].as_str().unwrap()).await;
    assert_eq!(run["status"], "failed", "{run}");
    assert_eq!(run["error_kind"], "fetch", "{run}");

    // Without a config: the bundled example, always allowed.
    let (status, answer) = app.send("POST", "/api/v1/pipeline/runs", Some(ADMIN_TOKEN), "{}").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let id = answer["run_id"].as_str().unwrap();
    app.send(
        "POST",
        &format!("/api/v1/pipeline/runs/{id}/cancel"),
        Some(ADMIN_TOKEN),
        "",
    )
    .await;
    wait_for_end(&app, id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_runs_public_record_quotes_none_of_the_data() {
    let folders = Folders::new();
    // A file whose first line has a column the schema does not declare: the reader's error
    // quotes it.
    let wine = std::fs::read_to_string(example("winequality-red.csv")).unwrap();
    let mut lines = wine.lines();
    let header = lines.next().unwrap();
    let row = lines.next().unwrap();
    let leaky = folders.allowed.join("leaky.csv");
    std::fs::write(&leaky, format!("{header},TOPSECRET_api_key=hunter2\n{row},1\n")).unwrap();
    let app = app_allowing(
        &[folders.allowed.display().to_string()],
        Duration::from_secs(60),
        Duration::from_secs(30),
    )
    .await;
    let (status, answer) = app
        .send(
            "POST",
            "/api/v1/pipeline/runs",
            Some(ADMIN_TOKEN),
            &trigger_body(&leaky.display().to_string()),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let id = answer["run_id"].as_str().unwrap().to_owned();
    let run = wait_for_end(&app, &id).await;
    assert_eq!(run["status"], "failed", "{run}");

    // The operator's copy in the store has the whole error...
    let stored: serde_json::Value = serde_json::from_slice(
        &app.store
            .get(&crate::store::Key::new(format!("runs/{id}/run.json")).unwrap())
            .await
            .unwrap(),
    )
    .unwrap();
    assert!(stored["error"].as_str().unwrap().contains("TOPSECRET"), "{stored}");
    // ... every public route the step and the kind only.
    for uri in [
        format!("/api/v1/pipeline/runs/{id}"),
        format!("/api/v1/runs/{id}"),
        "/api/v1/runs".to_owned(),
    ] {
        let (status, body) = app.get(&uri).await;
        assert_eq!(status, StatusCode::OK, "{uri}: {body}");
        let text = body.to_string();
        assert!(!text.contains("TOPSECRET"), "{uri} quotes the file: {text}");
        assert!(
            text.contains("step ingest failed (data); the whole error is in the control plane's log"),
            "{uri}: {text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_whose_lease_expired_shows_abandoned_with_the_reason() {
    let app = app_allowing(&[], Duration::from_secs(60), Duration::from_secs(30)).await;
    // A run begun by a process that then died: its lease is never renewed.
    let dead = LeaseHolder::new("dead-host/42/beef".into(), Duration::from_secs(1));
    let config = crate::config::bundled_example().unwrap();
    let id = crate::pipeline::new_run_id();
    let options = RunOptions {
        lease: Some(dead.clone()),
        ..RunOptions::default()
    };
    Pipeline::new(app.store.as_ref(), config.clone(), id.clone(), options.clone())
        .unwrap()
        .begin()
        .await
        .unwrap();
    let (_, run) = app.get(&format!("/api/v1/pipeline/runs/{id}")).await;
    assert_eq!(run["status"], "running", "{run}");
    assert_eq!(run["lease"]["owner"], "dead-host/42/beef", "{run}");
    assert_eq!(run["active"], false, "not this server's");

    // Within the lease, a scan leaves it alone.
    super::super::leases::scan(&app.state).await;
    assert_eq!(app.get(&format!("/api/v1/runs/{id}")).await.1["status"], "running");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    super::super::leases::scan(&app.state).await;
    for uri in [format!("/api/v1/pipeline/runs/{id}"), format!("/api/v1/runs/{id}")] {
        let (_, run) = app.get(&uri).await;
        assert_eq!(run["status"], "abandoned", "{run}");
        let reason = run["error"].as_str().unwrap();
        assert!(
            reason.starts_with("lease expired at ") && reason.contains("owner dead-host/42/beef stopped heartbeating"),
            "{reason}"
        );
        assert!(run.get("lease").is_none(), "{run}");
    }
    assert!(app.store.list("leases/").await.unwrap().is_empty());

    // The dead process, were it only slow, may not write to the run any more.
    let late = Pipeline::new(app.store.as_ref(), config, id.clone(), options).unwrap();
    let e = late.run_step(crate::pipeline::StepName::Ingest).await.unwrap_err();
    assert!(e.downcast_ref::<crate::pipeline::LeaseLost>().is_some(), "{e:#}");
    assert_eq!(app.get(&format!("/api/v1/runs/{id}")).await.1["status"], "abandoned");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retrain_whose_lease_expired_is_recorded_abandoned() {
    let app = app_allowing(&[], Duration::from_secs(60), Duration::from_secs(30)).await;
    let lease = crate::pipeline::Lease::new(
        "dead-host/7/cafe",
        chrono::Utc::now() - chrono::Duration::seconds(120),
        Duration::from_secs(60),
    );
    let record = serde_json::json!({
        "id": "20250101T000000.000Z-abcdef", "model": "wine", "alertname": "WasmlineDataDrift",
        "received_at": "2025-01-01T00:00:00Z", "action": "started", "run_id": "r1",
        "production_before": 1, "outcome": null, "production_after": null, "detail": null,
        "lease": lease,
    });
    let key = crate::store::Key::new("hooks/retrains/wine/20250101T000000.000Z-abcdef.json").unwrap();
    let entry = crate::pipeline::lease_entry_key("retrains", "wine/20250101T000000.000Z-abcdef").unwrap();
    crate::pipeline::enter_lease(app.store.as_ref(), &entry, &key, &lease)
        .await
        .unwrap();
    crate::store::put_json(app.store.as_ref(), &key, &record).await.unwrap();

    super::super::leases::scan(&app.state).await;
    let (_, list) = app.get("/api/v1/hooks/retrains?model=wine").await;
    let found = &list["triggers"][0];
    assert_eq!(found["outcome"], "abandoned", "{list}");
    assert!(
        found["detail"]
            .as_str()
            .unwrap()
            .contains("owner dead-host/7/cafe stopped heartbeating"),
        "{list}"
    );
    assert!(app.store.list("leases/").await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_stops_runs_between_steps_and_refuses_new_ones() {
    let folders = Folders::new();
    let app = app_allowing(
        &[folders.allowed.display().to_string()],
        Duration::from_secs(60),
        Duration::from_secs(60),
    )
    .await;
    let body = trigger_body(&folders.inside("wine.csv"));
    let (status, answer) = app
        .send("POST", "/api/v1/pipeline/runs", Some(ADMIN_TOKEN), &body)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let id = answer["run_id"].as_str().unwrap().to_owned();

    app.state.inner.runs.begin_shutdown();
    let (status, answer) = app
        .send("POST", "/api/v1/pipeline/runs", Some(ADMIN_TOKEN), &body)
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{answer}");
    let started = std::time::Instant::now();
    app.state.inner.runs.drain().await;
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "the run ended within the grace"
    );

    let (_, run) = app.get(&format!("/api/v1/pipeline/runs/{id}")).await;
    assert_eq!(run["status"], "abandoned", "{run}");
    assert_eq!(run["active"], false, "{run}");
    let reason = run["error"].as_str().unwrap();
    assert!(
        reason.contains(&format!(
            "(owner {}) shut down before step",
            app.state.inner.runs.holder.owner
        )),
        "{reason}"
    );
    assert!(run["steps"].as_array().unwrap().len() < 5, "stopped early: {run}");
    assert!(
        app.store.list("leases/").await.unwrap().is_empty(),
        "the lease is given up"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_move_the_lease_on_and_stop_once_it_is_lost() {
    let app = app_allowing(&[], Duration::from_secs(60), Duration::from_secs(30)).await;
    let holder = LeaseHolder::new("alive/1/0001".into(), Duration::from_secs(1));
    let id = crate::pipeline::new_run_id();
    let options = RunOptions {
        lease: Some(holder),
        ..RunOptions::default()
    };
    let pipeline = Pipeline::new(
        app.store.as_ref(),
        crate::config::bundled_example().unwrap(),
        id.clone(),
        options,
    )
    .unwrap();
    pipeline.begin().await.unwrap();
    let expiry = || async {
        let (_, run) = app.get(&format!("/api/v1/runs/{id}")).await;
        let at = run["lease"]["expires_at"].as_str().unwrap().to_owned();
        chrono::DateTime::parse_from_rfc3339(&at).unwrap().to_utc()
    };
    let first = expiry().await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(pipeline.heartbeat().await.unwrap(), "still held");
    let renewed = expiry().await;
    assert!(renewed > first, "{renewed} > {first}");

    // Just before the renewed expiry a scan leaves it; at it, the run is abandoned, and the
    // next heartbeat finds it lost.
    let before = crate::pipeline::scan_run_leases(app.store.as_ref(), renewed - chrono::Duration::milliseconds(1))
        .await
        .unwrap();
    assert_eq!(before[0].1, crate::pipeline::LeaseFound::Held);
    crate::pipeline::scan_run_leases(app.store.as_ref(), renewed)
        .await
        .unwrap();
    assert_eq!(app.get(&format!("/api/v1/runs/{id}")).await.1["status"], "abandoned");
    assert!(!pipeline.heartbeat().await.unwrap(), "lost");
}
