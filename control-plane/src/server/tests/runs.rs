//! Handler tests of pipeline runs started over HTTP: the sources a run may read
//! (`--allow-source`), what public routes show of a failed run.

use std::path::{Path, PathBuf};

use axum::http::StatusCode;

use super::super::pipeline::RunSettings;
use super::{ADMIN_TOKEN, TestApp, error_message, wait_for_end};
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

async fn app_allowing(prefixes: &[String]) -> TestApp {
    TestApp::with(ServerOptions {
        runs: RunSettings {
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
    let app = app_allowing(&[
        folders.allowed.display().to_string(),
        "http://127.0.0.1:9/allowed/".into(),
    ])
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
    let app = app_allowing(&[folders.allowed.display().to_string()]).await;
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
