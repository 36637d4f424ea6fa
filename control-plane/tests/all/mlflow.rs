//! MLflow tracking and registry against a real `mlflow server` (one per test binary: it takes
//! 5-60 s to start, so one test runs the sub-cases in turn against it), read back through
//! MLflow's own REST API rather than our client. Plus what needs no MLflow: the headers we send
//! (a local capture server), an unreachable server, a server that never answers.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{Value, json};
use tests::process::free_port;
use tests::servers::MlflowServer;
use wasmline::{
    Auth, MetricPoint, MlflowClient, MlflowConfig, MlflowError, TAG_DATASET, TAG_DATASET_VERSION, TAG_GIT_COMMIT,
    TAG_RUN_ID, TrackedRun, Tracker,
};

/// MLflow's REST API, spoken without our client.
struct Rest {
    base: String,
}

impl Rest {
    fn get(&self, path: &str, query: &[(&str, &str)]) -> Value {
        let mut request = ureq::get(format!("{}{path}", self.base));
        for (k, v) in query {
            request = request.query(*k, *v);
        }
        let text = request
            .call()
            .unwrap_or_else(|e| panic!("GET {path} {query:?}: {e}"))
            .body_mut()
            .read_to_string()
            .unwrap();
        serde_json::from_str(&text).unwrap()
    }

    fn post(&self, path: &str, body: Value) -> Value {
        let text = ureq::post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .send(body.to_string())
            .unwrap_or_else(|e| panic!("POST {path}: {e}"))
            .body_mut()
            .read_to_string()
            .unwrap();
        serde_json::from_str(&text).unwrap()
    }

    fn bytes(&self, path: &str) -> Vec<u8> {
        ureq::get(format!("{}{path}", self.base))
            .call()
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
            .body_mut()
            .read_to_vec()
            .unwrap()
    }

    fn run(&self, run_id: &str) -> Value {
        self.get("/api/2.0/mlflow/runs/get", &[("run_id", run_id)])["run"].clone()
    }
}

/// `[{key, value}, ...]` as (key, value) pairs; values stringified for metrics.
fn pairs(list: &Value) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = list
        .as_array()
        .map(|a| a.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|e| {
            let value = match &e["value"] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (e["key"].as_str().unwrap().to_owned(), value)
        })
        .collect();
    pairs.sort();
    pairs
}

fn value_of<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

fn tracker_for(server: &MlflowServer, experiment: &str) -> Tracker {
    let mut config = MlflowConfig::new(&server.url).unwrap();
    config.experiment_name = experiment.to_owned();
    Tracker::new(config)
}

fn client_for(server: &MlflowServer) -> MlflowClient {
    MlflowClient::new(MlflowConfig::new(&server.url).unwrap())
}

fn kv(k: impl Into<String>, v: impl Into<String>) -> (String, String) {
    (k.into(), v.into())
}

#[test]
fn tracking_and_registry_against_a_real_mlflow_server() {
    let server = MlflowServer::start();
    eprintln!(
        "mlflow server answered /health {:.1?} after it was started",
        server.startup
    );
    let rest = Rest {
        base: server.url.clone(),
    };
    // One server, the sub-cases in turn (each uses its own experiments and model names).
    let cases: [Case; 5] = [
        ("a run reads back", a_run_reads_back_through_mlflows_api),
        ("batches", large_logs_arrive_in_several_batches),
        ("registry", model_versions_and_the_production_alias),
        ("errors", server_errors_name_the_uri_and_the_call),
        ("unusable setups", unusable_experiments_are_reported),
    ];
    for (name, case) in cases {
        let start = Instant::now();
        case(&server, &rest);
        eprintln!("{name}: {:.1?}", start.elapsed());
    }
}

type Case = (&'static str, fn(&MlflowServer, &Rest));

fn a_run_reads_back_through_mlflows_api(server: &MlflowServer, rest: &Rest) {
    let wasm: Vec<u8> = [b"\0asm\x01\0\0\0".as_slice(), &(0..=255).collect::<Vec<u8>>()].concat();
    let run = TrackedRun {
        name: "winequality-logistic-0".into(),
        run_id: "20250101-120000-ab12".into(),
        dataset: Some("winequality".into()),
        dataset_version: Some("3".into()),
        git_commit: Some("0123456789abcdef0123456789abcdef01234567".into()),
        tags: vec![kv("team", "ml"), kv(TAG_RUN_ID, "not ours: ours win")],
        params: vec![kv("model", "logistic"), kv("c", "0.1")],
        metrics: vec![("accuracy".into(), 0.91), ("log_loss".into(), 0.25)],
        artifacts: vec![
            (
                "reports/evaluation report.md".into(),
                Bytes::from_static(b"# Evaluation\n"),
            ),
            ("model/model.wasm".into(), Bytes::from(wasm.clone())),
        ],
    };
    let tracker = tracker_for(server, "round-trip");
    let run_id = tracker.track_run(&run).unwrap().expect("tracking is on");

    let got = rest.run(&run_id);
    let info = &got["info"];
    assert_eq!(info["status"], "FINISHED");
    assert_eq!(info["run_name"], "winequality-logistic-0");
    let experiment_id = info["experiment_id"].as_str().unwrap().to_owned();
    let experiment = rest.get("/api/2.0/mlflow/experiments/get", &[("experiment_id", &experiment_id)]);
    assert_eq!(experiment["experiment"]["name"], "round-trip");
    assert_eq!(
        info["artifact_uri"],
        format!("mlflow-artifacts:/{experiment_id}/{run_id}/artifacts")
    );

    let params = pairs(&got["data"]["params"]);
    assert_eq!(params, [kv("c", "0.1"), kv("model", "logistic")]);
    let metrics = pairs(&got["data"]["metrics"]);
    assert_eq!(metrics, [kv("accuracy", "0.91"), kv("log_loss", "0.25")]);
    let tags = pairs(&got["data"]["tags"]);
    assert_eq!(value_of(&tags, "mlflow.runName"), Some("winequality-logistic-0"));
    assert_eq!(value_of(&tags, TAG_RUN_ID), Some("20250101-120000-ab12"));
    assert_eq!(value_of(&tags, TAG_DATASET), Some("winequality"));
    assert_eq!(value_of(&tags, TAG_DATASET_VERSION), Some("3"));
    assert_eq!(value_of(&tags, TAG_GIT_COMMIT), run.git_commit.as_deref());
    assert_eq!(value_of(&tags, "team"), Some("ml"));

    // Found by our tag, the way a user would look a Wasmline run up.
    let search = rest.post(
        "/api/2.0/mlflow/runs/search",
        json!({
            "experiment_ids": [experiment_id],
            "filter": "tags.`wasmline.run_id` = '20250101-120000-ab12'",
        }),
    );
    let found: Vec<&str> = search["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["info"]["run_id"].as_str().unwrap())
        .collect();
    assert_eq!(found, [run_id.as_str()]);

    // Artifacts: listed by MLflow, downloadable through its proxy, stored under the destination.
    let listed = rest.get("/api/2.0/mlflow/artifacts/list", &[("run_id", &run_id)]);
    let mut top: Vec<(&str, bool)> = listed["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["path"].as_str().unwrap(), f["is_dir"].as_bool().unwrap()))
        .collect();
    top.sort();
    assert_eq!(top, [("model", true), ("reports", true)]);
    let reports = rest.get(
        "/api/2.0/mlflow/artifacts/list",
        &[("run_id", &run_id), ("path", "reports")],
    );
    assert_eq!(reports["files"][0]["path"], "reports/evaluation report.md");
    assert_eq!(reports["files"][0]["file_size"], 13);
    let base = format!("/api/2.0/mlflow-artifacts/artifacts/{experiment_id}/{run_id}/artifacts");
    assert_eq!(rest.bytes(&format!("{base}/model/model.wasm")), wasm);
    assert_eq!(
        rest.bytes(&format!("{base}/reports/evaluation%20report.md")),
        b"# Evaluation\n"
    );
    let on_disk = server
        .artifacts_dir
        .join(&experiment_id)
        .join(&run_id)
        .join("artifacts/model/model.wasm");
    assert_eq!(std::fs::read(on_disk).unwrap(), wasm);

    // A second run goes to the same experiment; without a name, MLflow makes one up.
    let second = tracker
        .track_run(&TrackedRun {
            run_id: "20250101-120000-ab12".into(),
            ..TrackedRun::default()
        })
        .unwrap()
        .unwrap();
    let second_info = &rest.run(&second)["info"];
    assert_eq!(second_info["experiment_id"], experiment_id.as_str());
    assert!(!second_info["run_name"].as_str().unwrap().is_empty(), "{second_info}");
    assert_ne!(second, run_id);
}

fn large_logs_arrive_in_several_batches(server: &MlflowServer, rest: &Rest) {
    let client = client_for(server);
    let experiment = client.get_or_create_experiment("batches").unwrap();

    // 250 params, 1200 metrics, 150 tags: over every count limit of one log-batch request.
    let run = client.create_run(&experiment.experiment_id, "counts", &[]).unwrap();
    let params: Vec<_> = (0..250).map(|i| kv(format!("p{i:03}"), i.to_string())).collect();
    let metrics: Vec<_> = (0..1200)
        .map(|i| MetricPoint::now(format!("m{i:04}"), f64::from(i) / 8.0))
        .collect();
    let tags: Vec<_> = (0..150).map(|i| kv(format!("t{i:03}"), format!("tag {i}"))).collect();
    client.log_batch(&run.run_id, &params, &metrics, &tags).unwrap();
    let got = rest.run(&run.run_id);
    let mut want_params = params.clone();
    want_params.sort();
    assert_eq!(pairs(&got["data"]["params"]), want_params);
    let got_metrics = pairs(&got["data"]["metrics"]);
    assert_eq!(got_metrics.len(), 1200);
    assert_eq!(value_of(&got_metrics, "m1199"), Some("149.875"));
    let got_tags = pairs(&got["data"]["tags"]);
    assert!(tags.iter().all(|t| got_tags.contains(t)), "every tag arrived");

    // 100 params of 6000 characters and 100 tags of 8000: within the count limits but 1.4 MB,
    // over MLflow's 1 MB per request. A 7000-character param is cut to 6000, as MLflow would.
    let run = client.create_run(&experiment.experiment_id, "sizes", &[]).unwrap();
    let mut params: Vec<_> = (0..100).map(|i| kv(format!("p{i:03}"), "x".repeat(6000))).collect();
    params.push(kv("long", "é".repeat(7000)));
    let tags: Vec<_> = (0..100).map(|i| kv(format!("t{i:03}"), "y".repeat(8000))).collect();
    client.log_batch(&run.run_id, &params, &[], &tags).unwrap();
    let got = rest.run(&run.run_id);
    let got_params = pairs(&got["data"]["params"]);
    assert_eq!(got_params.len(), 101);
    assert_eq!(value_of(&got_params, "long"), Some("é".repeat(6000).as_str()));
    assert!(
        got_params
            .iter()
            .filter(|(k, _)| k != "long")
            .all(|(_, v)| v.len() == 6000)
    );
    let got_tags = pairs(&got["data"]["tags"]);
    assert_eq!(
        got_tags
            .iter()
            .filter(|(k, v)| k.starts_with('t') && v.len() == 8000)
            .count(),
        100
    );

    // Non-finite metrics are accepted (MLflow keeps NaN, and stores infinity as f64::MAX).
    client
        .log_batch(
            &run.run_id,
            &[],
            &[
                MetricPoint::now("nan", f64::NAN),
                MetricPoint::now("inf", f64::INFINITY),
            ],
            &[],
        )
        .unwrap();
    let got_metrics = pairs(&rest.run(&run.run_id)["data"]["metrics"]);
    assert_eq!(value_of(&got_metrics, "nan"), Some("NaN"));
    let inf: f64 = value_of(&got_metrics, "inf").unwrap().parse().unwrap();
    assert_eq!(inf, f64::MAX);
}

fn model_versions_and_the_production_alias(server: &MlflowServer, rest: &Rest) {
    let tracker = tracker_for(server, "registry");
    let client = tracker.client().unwrap().clone();
    let mut run_ids = Vec::new();
    for i in 0..2 {
        let run = TrackedRun {
            name: format!("candidate-{i}"),
            run_id: format!("run-{i}"),
            ..TrackedRun::default()
        };
        run_ids.push(tracker.track_run(&run).unwrap().unwrap());
    }
    let alias = |name: &str| {
        rest.get(
            "/api/2.0/mlflow/registered-models/alias",
            &[("name", name), ("alias", "production")],
        )
    };

    let v1 = tracker
        .register_model(
            "wine-quality",
            "s3://wasmline/models/wine-quality/1",
            Some(&run_ids[0]),
            Some("production"),
        )
        .unwrap();
    assert_eq!(v1.as_deref(), Some("1"));
    let found = alias("wine-quality");
    assert_eq!(found["model_version"]["version"], "1");
    assert_eq!(found["model_version"]["source"], "s3://wasmline/models/wine-quality/1");
    assert_eq!(found["model_version"]["run_id"], run_ids[0].as_str());

    // The model exists now: registering again adds a version, and the alias moves to it.
    let v2 = tracker
        .register_model(
            "wine-quality",
            "s3://wasmline/models/wine-quality/2",
            Some(&run_ids[1]),
            Some("production"),
        )
        .unwrap();
    assert_eq!(v2.as_deref(), Some("2"));
    assert_eq!(alias("wine-quality")["model_version"]["version"], "2");
    let model = rest.get("/api/2.0/mlflow/registered-models/get", &[("name", "wine-quality")]);
    assert_eq!(
        model["registered_model"]["aliases"],
        json!([{ "alias": "production", "version": "2" }]),
        "the alias left version 1"
    );

    // Moving it back (a rollback) through the client.
    client
        .set_registered_model_alias("wine-quality", "production", "1")
        .unwrap();
    let back = client
        .get_model_version_by_alias("wine-quality", "production")
        .unwrap()
        .unwrap();
    assert_eq!(
        (back.version.as_str(), back.aliases.as_slice()),
        ("1", ["production".to_owned()].as_slice())
    );
    assert_eq!(
        client.get_model_version_by_alias("wine-quality", "staging").unwrap(),
        None
    );
    assert_eq!(
        client
            .get_model_version_by_alias("no-such-model", "production")
            .unwrap(),
        None
    );
    assert!(
        !client.create_registered_model("wine-quality").unwrap(),
        "already exists is not an error"
    );

    // A version from the run's own artifacts, with tags. MLflow accepts an mlflow-artifacts:
    // source only inside the artifacts of the run given with it.
    let run = client.get_run(&run_ids[0]).unwrap();
    let source = format!("{}/model", run.artifact_uri);
    client.create_registered_model("plain").unwrap();
    let version = client
        .create_model_version("plain", &source, Some(&run.run_id), &[kv("wasmline.version", "7")])
        .unwrap();
    assert_eq!((version.version.as_str(), version.status.as_str()), ("1", "READY"));
    let err = client.create_model_version("plain", &source, None, &[]).unwrap_err();
    assert_eq!(err.error_code(), Some("INVALID_PARAMETER_VALUE"), "{err}");
}

fn server_errors_name_the_uri_and_the_call(server: &MlflowServer, _rest: &Rest) {
    let client = client_for(server);
    let err = client
        .log_batch("0123456789abcdef0123456789abcdef", &[kv("a", "1")], &[], &[])
        .unwrap_err();
    assert!(
        matches!(&err, MlflowError::Http { status: 404, error_code, .. } if error_code == "RESOURCE_DOES_NOT_EXIST"),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains(&server.url) && text.contains("POST /api/2.0/mlflow/runs/log-batch"),
        "{text}"
    );

    // Params are immutable; MLflow's message repeats both values in full, ours stays short.
    let experiment = client.get_or_create_experiment("errors").unwrap();
    let run = client.create_run(&experiment.experiment_id, "immutable", &[]).unwrap();
    client
        .log_batch(&run.run_id, &[kv("p", "a".repeat(6000))], &[], &[])
        .unwrap();
    let err = client
        .log_batch(&run.run_id, &[kv("p", "b".repeat(6000))], &[], &[])
        .unwrap_err();
    assert_eq!(err.error_code(), Some("INVALID_PARAMETER_VALUE"), "{err}");
    assert!(err.to_string().len() < 800, "{} characters", err.to_string().len());

    // MLflow reserves aliases like v1.
    client.create_registered_model("errors").unwrap();
    let version = client
        .create_model_version("errors", "s3://b/errors/1", None, &[])
        .unwrap();
    let err = client
        .set_registered_model_alias("errors", "v1", &version.version)
        .unwrap_err();
    assert_eq!(err.status(), Some(400), "{err}");
}

fn unusable_experiments_are_reported(server: &MlflowServer, rest: &Rest) {
    // A deleted experiment keeps its name taken: say so rather than fail obscurely.
    let client = client_for(server);
    let gone = client.get_or_create_experiment("gone").unwrap();
    rest.post(
        "/api/2.0/mlflow/experiments/delete",
        json!({ "experiment_id": gone.experiment_id }),
    );
    let tracker = tracker_for(server, "gone");
    let err = tracker.track_run(&TrackedRun::default()).unwrap_err();
    assert!(
        matches!(err, MlflowError::Invalid { .. }) && err.to_string().contains("deleted"),
        "{err}"
    );

    // An experiment whose artifacts are not proxied (a local artifact location): the run is
    // marked FAILED and the error says why.
    let local = server.artifacts_dir.with_file_name("unproxied");
    let created = rest.post(
        "/api/2.0/mlflow/experiments/create",
        json!({ "name": "unproxied", "artifact_location": local }),
    );
    let experiment_id = created["experiment_id"].as_str().unwrap().to_owned();
    let tracker = tracker_for(server, "unproxied");
    let err = tracker
        .track_run(&TrackedRun {
            name: "with-artifacts".into(),
            artifacts: vec![("a.txt".into(), Bytes::from_static(b"a"))],
            ..TrackedRun::default()
        })
        .unwrap_err();
    assert!(err.to_string().contains("--artifacts-destination"), "{err}");
    let runs = rest.post(
        "/api/2.0/mlflow/runs/search",
        json!({ "experiment_ids": [experiment_id] }),
    );
    assert_eq!(runs["runs"][0]["info"]["status"], "FAILED");

    // A bad artifact path is refused before anything is created.
    let tracker = tracker_for(server, "bad-paths");
    let err = tracker
        .track_run(&TrackedRun {
            artifacts: vec![("../escape.txt".into(), Bytes::from_static(b"x"))],
            ..TrackedRun::default()
        })
        .unwrap_err();
    assert!(matches!(err, MlflowError::Invalid { .. }), "{err}");
    assert_eq!(client.get_experiment_by_name("bad-paths").unwrap(), None);
}

/// A one-request-per-connection HTTP server that records each request's head and answers every
/// request with `response`.
fn capture_server(requests: usize, response: String) -> (String, JoinHandle<Vec<String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        let mut heads = Vec::new();
        for _ in 0..requests {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream);
            let mut head = String::new();
            let mut content_length = 0;
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if let Some((name, value)) = line.split_once(':')
                    && name.eq_ignore_ascii_case("content-length")
                {
                    content_length = value.trim().parse().unwrap();
                }
                if line == "\r\n" || line.is_empty() {
                    break;
                }
                head.push_str(&line);
            }
            let mut body = vec![0; content_length];
            reader.read_exact(&mut body).unwrap();
            reader.get_mut().write_all(response.as_bytes()).unwrap();
            heads.push(head);
        }
        heads
    });
    (url, handle)
}

/// A complete HTTP/1.1 response that closes the connection.
fn response(status: &str, content_type: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

#[test]
fn credentials_are_sent_as_authorization_headers() {
    let experiment = r#"{"experiment":{"experiment_id":"1","name":"a b/c","lifecycle_stage":"active"}}"#;
    let (url, server) = capture_server(3, response("200 OK", "application/json", experiment));
    let mut config = MlflowConfig::new(&url).unwrap();
    for auth in [
        Auth::Basic {
            username: "alice".into(),
            password: "s3cret".into(),
        },
        Auth::Bearer("token-123".into()),
        Auth::None,
    ] {
        config.auth = auth;
        let experiment = MlflowClient::new(config.clone())
            .get_experiment_by_name("a b/c")
            .unwrap()
            .unwrap();
        assert_eq!(experiment.experiment_id, "1");
    }
    let heads = server.join().unwrap();
    assert!(
        heads[0].starts_with("GET /api/2.0/mlflow/experiments/get-by-name?experiment_name=a%20b%2Fc HTTP/1.1\r\n"),
        "{}",
        heads[0]
    );
    // base64("alice:s3cret")
    assert_eq!(header(&heads[0], "authorization"), Some("Basic YWxpY2U6czNjcmV0"));
    assert_eq!(header(&heads[1], "authorization"), Some("Bearer token-123"));
    assert_eq!(header(&heads[2], "authorization"), None);
}

#[test]
fn an_error_page_that_is_not_mlflows_json_is_still_reported() {
    let (url, server) = capture_server(1, response("403 Forbidden", "text/html", "<h1>Access denied</h1>\n"));
    let err = MlflowClient::new(MlflowConfig::new(&url).unwrap())
        .create_registered_model("m")
        .unwrap_err();
    server.join().unwrap();
    assert!(
        matches!(&err, MlflowError::Http { status: 403, error_code, message, .. }
            if error_code.is_empty() && message == "<h1>Access denied</h1>"),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("POST /api/2.0/mlflow/registered-models/create"),
        "{err}"
    );
}

#[test]
fn an_unreachable_server_fails_fast_and_the_tracker_reports_it() {
    let url = format!("http://127.0.0.1:{}", free_port());
    let tracker = Tracker::new(MlflowConfig::new(&url).unwrap());
    let start = Instant::now();
    let err = tracker
        .track_run(&TrackedRun {
            name: "r".into(),
            ..TrackedRun::default()
        })
        .unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(3), "{:?}", start.elapsed());
    assert!(err.is_unreachable(), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains(&url) && text.contains("experiments/get-by-name"),
        "{text}"
    );
    let err = tracker
        .register_model("m", "s3://b/m/1", None, Some("production"))
        .unwrap_err();
    assert!(err.is_unreachable(), "{err:?}");
}

#[test]
fn a_server_that_never_answers_times_out() {
    // Accepts the connection (the kernel does, from the backlog) and never answers.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut config = MlflowConfig::new(&format!("http://{}", listener.local_addr().unwrap())).unwrap();
    config.request_timeout = Duration::from_secs(1);
    let start = Instant::now();
    let err = MlflowClient::new(config).get_experiment_by_name("x").unwrap_err();
    let elapsed = start.elapsed();
    assert!(
        elapsed >= Duration::from_millis(900) && elapsed < Duration::from_secs(5),
        "{elapsed:?}"
    );
    assert!(
        err.is_unreachable() && err.to_string().contains("no answer in time"),
        "{err}"
    );
    drop(listener);
}
