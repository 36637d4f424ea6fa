//! The monitoring path with real processes: an S3 server (s3s-fs), the control plane on it, two
//! edges serving two models, Prometheus (Debian's) scraping all three with the rules of
//! `monitoring/alerts.yml` (every `for:` shortened to seconds), and Alertmanager routing with
//! `monitoring/alertmanager.yml` to a webhook receiver that stands in for the control plane's
//! retrain hook.
//!
//! Normal traffic (the wine data itself) goes to both models on both edges, to the control
//! plane's own `/v2`, and as a browser's telemetry batch; then the rows sent to one model are
//! shifted. Asserted through Prometheus's HTTP API: latency and exact request counts arrive per
//! runtime and node, the drift ratio rises on the shifted model only, the drift alerts go pending
//! then firing (for that model only) and reach the webhook with the bearer token, and every query
//! of the Grafana dashboard parses and returns series. Faults: telemetry for an unregistered model
//! or version is refused (and counted as rejected), an edge restarted mid-window is
//! counted once, an edge whose wall clock is hours off and jumps forward then back (edge-b runs
//! under libfaketime) produces no negative rate, no counter reset and no lost or doubled
//! telemetry, an edge that stops answering fires `EdgeDown`, and Prometheus going away changes
//! nothing for the edges and the control plane.
//!
//! Also here: `scripts/check-monitoring` (the static checks of the monitoring and deployment
//! files) passes.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use model_wasm::manifest::ManifestView;
use model_wasm::telemetry::{DriftMonitor, DriftSnapshot, Telemetry, TelemetryBatch};
use serde_json::{Value, json};
use tests::process::{ChildGuard, free_port};
use tests::servers::{Alertmanager, Prometheus, S3sFs};
use tests::{workspace_bin, workspace_root};

use crate::train::with_training;
use crate::{Edge, Scratch};

const EDGE_TOKEN: &str = "edge-token-for-monitoring";
const HOOK_TOKEN: &str = "alertmanager-token-for-monitoring";
/// The model whose traffic shifts.
const SHIFTED: &str = "wine";
/// The model whose traffic stays normal.
const STEADY: &str = "wine-steady";
/// Rows in each edge's drift window.
const WINDOW: usize = 200;
/// Rows per infer request.
const BATCH: usize = 10;

/// `scripts/check-monitoring`: promtool unit tests of every rule, amtool, the dashboard against
/// `@grafana/schema`, docker-compose config, the compose spec and hadolint.
#[test]
fn static_checks_pass() {
    let output = Command::new(workspace_root().join("scripts/check-monitoring"))
        .output()
        .expect("run scripts/check-monitoring");
    assert!(
        output.status.success(),
        "scripts/check-monitoring failed:\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// `wasmline drift` scores a file against the production profile with model-wasm's numbers, and
/// honours `--threshold`.
#[test]
fn drift_command_scores_a_file_per_feature() {
    let s = Scratch::new();
    let section = "[train]\nmodel_name = \"wine\"\nmetric = \"f1\"\nfolds = 3\nalias = \"production\"\n\n\
                   [[train.models]]\nfamily = \"logistic_regression\"\ngrid = { alpha = [1.0] }\n";
    let config = with_training(&s, "winequality", "drift", section);
    s.run(&["pipeline", "run", "-c", config.to_str().unwrap()]).ok();
    let bytes = std::fs::read(s.store().join("models/wine/1/manifest.json")).unwrap();
    let view = ManifestView::from_json(&bytes).unwrap();
    let rows = wine_rows();
    let names: Vec<&str> = view.features.iter().map(|f| f.name.as_str()).collect();
    let write = |name: &str, rows: &[Vec<f64>]| {
        let mut text = format!("{},extra\n", names.join(","));
        for r in rows {
            let cells: Vec<String> = r.iter().map(|v| v.to_string()).collect();
            text.push_str(&format!("{},x\n", cells.join(",")));
        }
        s.write(name, &text)
    };
    // Normal: 500 rows of the training data. Shifted: alcohol up by 2.5 degrees.
    let normal = write("normal.csv", &rows[..500]);
    let alcohol = names.iter().position(|n| *n == "alcohol").unwrap();
    let shifted_rows: Vec<Vec<f64>> = rows[..500]
        .iter()
        .map(|r| {
            let mut r = r.clone();
            r[alcohol] += 2.5;
            r
        })
        .collect();
    let shifted = write("shifted.csv", &shifted_rows);

    let table = s
        .run(&["drift", "--model", "wine", "--data", normal.to_str().unwrap()])
        .ok();
    assert!(table.contains("wine v1: 500 rows"), "{table}");
    assert!(table.contains("drift ratio 0.000 (0 of 11 features)"), "{table}");
    let table = s
        .run(&["drift", "--model", "wine", "--data", shifted.to_str().unwrap()])
        .ok();
    let line = table
        .lines()
        .find(|l| l.starts_with("alcohol"))
        .expect("an alcohol row");
    assert!(line.ends_with("yes"), "{table}");
    assert!(table.contains("(1 of 11 features)"), "{table}");

    // The JSON is model-wasm's snapshot, number for number; a higher threshold drifts nothing.
    for (threshold, drifted) in [(0.2, 1), (1000.0, 0)] {
        let out = s
            .run(&[
                "drift",
                "--model",
                "wine@1",
                "--data",
                shifted.to_str().unwrap(),
                "--threshold",
                &threshold.to_string(),
                "--json",
            ])
            .ok();
        let out: Value = serde_json::from_str(&out).unwrap();
        let expected = drift_of(&view, &shifted_rows, threshold);
        assert_eq!(out["drift"], serde_json::to_value(&expected).unwrap());
        assert_eq!(expected.features.iter().filter(|f| f.drifted).count(), drifted);
        assert!(
            expected.features.iter().all(|f| f.ks.is_some()),
            "numeric features have a KS"
        );
    }
    let err = s
        .run(&["drift", "--model", "nope", "--data", normal.to_str().unwrap()])
        .fails();
    assert!(err.contains("nope"), "{err}");
}

#[test]
fn prometheus_sees_traffic_latency_and_drift_and_alerts_fire() {
    let s = Scratch::new();
    let s3 = S3sFs::start();
    let store = s3.url();
    let s = Scratch { env: s3.env(), ..s };
    for model in [SHIFTED, STEADY] {
        train(&s, &store, model);
    }
    let rows = wine_rows();

    // The control plane and two edges, each edge serving both models.
    let cp_port = free_port();
    let mut cp_cmd = Command::new(workspace_bin("wasmline"));
    cp_cmd
        .args(["--store", &store, "serve", "--addr", &format!("127.0.0.1:{cp_port}")])
        .args(["--poll-ms", "50"])
        .env("WASMLINE_EDGE_TOKEN", EDGE_TOKEN)
        .envs(s3.env());
    let mut cp = ChildGuard::spawn("wasmline serve", cp_cmd, &s.path().join("serve.log"));
    let cp_addr = cp.wait_for_listening();
    // Fixed ports: Prometheus scrapes a restarted edge where it was.
    let a_addr = format!("127.0.0.1:{}", free_port());
    let mut a = edge(&s, "edge-a", &a_addr, &cp_addr, 1, None);
    // edge-b's wall clock starts two hours behind; it jumps a day ahead for the normal traffic and
    // 27 hours back for the shifted traffic.
    let clock = SkewedClock::new(&s, "-2h");
    let b = edge(
        &s,
        "edge-b",
        &format!("127.0.0.1:{}", free_port()),
        &cp_addr,
        1,
        Some(&clock),
    );

    // Alertmanager with the stack's routes, posting to our receiver; Prometheus with the rules.
    let hook = Webhook::start();
    let am_config = s.path().join("alertmanager.yml");
    std::fs::write(&am_config, alertmanager_config(&s, &hook.url)).unwrap();
    let alertmanager = Alertmanager::start(&am_config);
    let rules = s.path().join("alerts.yml");
    std::fs::write(&rules, fast_rules()).unwrap();
    let prom_config = s.path().join("prometheus.yml");
    std::fs::write(
        &prom_config,
        prometheus_config(&rules, &cp_addr, &[&a.addr, &b.addr], &alertmanager.addr),
    )
    .unwrap();
    let prometheus = Prometheus::start(&prom_config);
    let prom = Prom(prometheus.url.clone());
    prom.wait_for("every target up", Duration::from_secs(60), "sum(up)", |v| {
        v == Some(3.0)
    });

    clock.set("+1d");

    // Normal traffic: the training data, both models, both edges, plus the control plane's own
    // /v2, a browser's telemetry and a few refused (invalid) requests.
    let mut sent = Sent::default();
    for edge in [&a, &b] {
        for model in [SHIFTED, STEADY] {
            sent.send(&edge.node, &edge.addr, model, &rows[..WINDOW * 2]);
        }
        for _ in 0..3 {
            let (status, _) = post_infer(&edge.addr, STEADY, &json!({"inputs": []}));
            assert_eq!(status, 400);
            sent.invalid += 1;
        }
    }
    for chunk in rows[..50].chunks(BATCH) {
        let (status, body) = post_infer(&cp_addr, SHIFTED, &infer_body(chunk));
        assert_eq!(status, 200, "{body}");
    }
    post_browser_telemetry(&s3, &cp_addr, &rows[..100]);
    // A batch for a model or version the registry does not have is refused, and counted so.
    for (model, version) in [("nope", 1), (SHIFTED, 99)] {
        let mut telemetry = Telemetry::new(&manifest(&s3, SHIFTED), "browser");
        telemetry.record_ok(&rows[0], 0.000_04);
        let mut report = telemetry.report();
        (report.model, report.version) = (model.to_owned(), version);
        let batch = TelemetryBatch {
            batch_id: format!("browser-unknown-{model}-{version}"),
            node: "client-2".into(),
            reports: vec![report],
        };
        let status = ureq::post(&format!("http://{cp_addr}/api/v1/telemetry/browser"))
            .config()
            .http_status_as_error(false)
            .build()
            .send_json(&batch)
            .unwrap()
            .status();
        assert!(status.is_client_error(), "{model} v{version}: {status}");
    }
    prom.wait_for(
        "rejected telemetry batches",
        Duration::from_secs(30),
        "sum(wasmline_telemetry_batches_total{source=\"browser\",outcome=\"rejected\"})",
        |v| v == Some(2.0),
    );

    // Exact counts per node, latency per runtime, low drift everywhere.
    for edge in [&a, &b] {
        let expected = sent.ok(&edge.node) as f64;
        prom.wait_for(
            &format!("{}'s ok count", edge.node),
            Duration::from_secs(30),
            &format!(
                "sum(wasmline_inference_requests_total{{job=\"wasmline-edge\",node=\"{}\",outcome=\"ok\"}})",
                edge.node
            ),
            |v| v == Some(expected),
        );
    }
    prom.wait_for(
        "invalid requests",
        Duration::from_secs(30),
        "sum(wasmline_inference_requests_total{job=\"wasmline-edge\",outcome=\"invalid\"})",
        |v| v == Some(sent.invalid as f64),
    );
    prom.wait_for(
        "the control plane's own inference",
        Duration::from_secs(30),
        "sum(wasmline_inference_requests_total{job=\"wasmline-control-plane\",node=\"control-plane\",outcome=\"ok\"})",
        |v| v == Some(5.0),
    );
    prom.wait_for(
        "latency of the browser and of wasmtime",
        Duration::from_secs(30),
        "count(count by (runtime) (wasmline_inference_duration_seconds_count > 0))",
        |v| v == Some(2.0),
    );
    // Over every call so far (the traffic may all predate the first scrape: no rate yet).
    let p95 = prom.value("histogram_quantile(0.95, sum by (le) (wasmline_inference_duration_seconds_bucket{runtime=\"wasmtime\",job=\"wasmline-edge\"}))");
    assert!(p95.is_some_and(|p| p > 0.0 && p < 0.5), "p95 of the edges: {p95:?}");
    let before = drift_ratios(&prom);
    assert_eq!(before.len(), 4, "a ratio per model and edge: {before:?}");
    for ((model, node), ratio) in &before {
        assert!(*ratio < 0.5, "{model} on {node} drifts on normal data: {before:?}");
    }

    // Shifted traffic for one model: every feature far above its training range. edge-b's batches
    // of the normal traffic went out a day ahead (the waits above took seconds; it reports every
    // second); now its clock jumps back.
    let shifted: Vec<Vec<f64>> = rows.iter().map(|r| r.iter().map(|v| v * 3.0 + 1.0).collect()).collect();
    clock.set("-3h");
    let shift_started = Instant::now();
    for edge in [&a, &b] {
        sent.send(&edge.node, &edge.addr, SHIFTED, &shifted[..WINDOW]);
        sent.send(&edge.node, &edge.addr, STEADY, &rows[WINDOW * 2..WINDOW * 3]);
    }
    prom.wait_for(
        "the shifted model's drift on both edges",
        Duration::from_secs(30),
        &format!("count(wasmline_data_drift_ratio{{job=\"wasmline-edge\",model=\"{SHIFTED}\"}} >= 0.5)"),
        |v| v == Some(2.0),
    );
    let after = drift_ratios(&prom);
    for ((model, node), ratio) in &after {
        if model == SHIFTED {
            assert_eq!(*ratio, 1.0, "every feature of {model} drifted on {node}: {after:?}");
        } else {
            assert!(*ratio < 0.5, "{model} on {node} was not shifted: {after:?}");
        }
    }
    let psi = prom.vector(&format!(
        "wasmline_feature_psi{{job=\"wasmline-edge\",model=\"{SHIFTED}\",node=\"edge-a\"}}"
    ));
    assert_eq!(psi.len(), 11, "a PSI per feature: {psi:?}");
    // The edge's PSI per feature is the one model-wasm computes over the same window.
    let expected = drift_of(
        &manifest(&s3, SHIFTED),
        &shifted[..WINDOW],
        model_wasm::PSI_DRIFT_THRESHOLD,
    );
    for series in &psi {
        let feature = label(series, "feature");
        let got: f64 = series["value"][1].as_str().unwrap().parse().unwrap();
        let want = expected.features.iter().find(|f| f.name == feature).unwrap().psi;
        assert_eq!(got, want, "PSI of {feature}");
    }

    // The drift alerts: pending first (their history in ALERTS), then firing, for the shifted
    // model only; Alertmanager posts them to the hook with the bearer token.
    prom.wait_for(
        "DataDriftHigh firing on both edges",
        Duration::from_secs(60),
        "count(ALERTS{alertname=\"DataDriftHigh\",alertstate=\"firing\"})",
        |v| v == Some(2.0),
    );
    let to_firing = shift_started.elapsed();
    prom.wait_for(
        "DataDriftJump firing on both edges",
        Duration::from_secs(60),
        "count(ALERTS{alertname=\"DataDriftJump\",alertstate=\"firing\"})",
        |v| v == Some(2.0),
    );
    let pending = prom.vector("ALERTS{alertname=\"DataDriftHigh\",alertstate=\"pending\"}[5m]");
    assert_eq!(pending.len(), 2, "pending before firing, on each edge: {pending:?}");
    let firing = prom.vector("ALERTS{alertstate=\"firing\"}");
    let names: BTreeSet<(String, String)> = firing
        .iter()
        .map(|a| (label(a, "alertname"), label(a, "model")))
        .collect();
    assert_eq!(
        names,
        [("DataDriftHigh", SHIFTED), ("DataDriftJump", SHIFTED)]
            .map(|(a, m)| (a.to_owned(), m.to_owned()))
            .into(),
        "only the shifted model's drift alerts fire (no latency, error or node alert): {firing:?}"
    );
    let posted = hook.wait_for(Duration::from_secs(60), |r| r.body.contains("DataDriftHigh"));
    assert_eq!(
        posted.authorization.as_deref(),
        Some(format!("Bearer {HOOK_TOKEN}").as_str())
    );
    let body: Value = serde_json::from_str(&posted.body).unwrap();
    assert_eq!(body["status"], "firing", "{body}");
    for alert in body["alerts"].as_array().unwrap() {
        assert_eq!(alert["labels"]["model"], SHIFTED, "{body}");
        assert_eq!(alert["labels"]["action"], "retrain", "{body}");
    }
    eprintln!("shifted traffic -> DataDriftHigh firing in {to_firing:?} (scrape and evaluation every 1 s, `for: 3s`)");

    // Every query of the dashboard parses and returns series.
    check_dashboard_queries(&prom);

    // edge-b's clock went from 2 hours behind to a day ahead to 3 hours behind: Prometheus stamps
    // what it scrapes with its own clock, the control plane stamps batches on arrival, and batch
    // ids do not depend on the clock alone. So no rate is negative, no counter reset, and every
    // request of edge-b reached the control plane exactly once.
    let expected = sent.ok("edge-b");
    prom.wait_for(
        "edge-b's final ok count",
        Duration::from_secs(30),
        "sum(wasmline_inference_requests_total{job=\"wasmline-edge\",node=\"edge-b\",outcome=\"ok\"})",
        |v| v == Some(expected as f64),
    );
    for expr in [
        "min(min_over_time(rate(wasmline_inference_requests_total{node=\"edge-b\"}[5s])[10m:1s]))",
        "min(min_over_time(rate(wasmline_inference_duration_seconds_count{node=\"edge-b\"}[5s])[10m:1s]))",
    ] {
        let least = prom.value(expr);
        assert!(least.is_some_and(|v| v >= 0.0), "{expr}: {least:?}");
    }
    let resets = prom.value("sum(resets(wasmline_inference_requests_total{node=\"edge-b\"}[10m]))");
    assert_eq!(resets, Some(0.0), "edge-b's counters never went down");
    wait_for_recorded(&s3, &b, expected);
    // The skew was real: edge-b named batches by its clock, behind and ahead of the real one.
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let offsets_h: Vec<i64> = std::fs::read_dir(s3.data_dir.join(&s3.bucket).join("telemetry/batches/edge-b"))
        .unwrap()
        .flatten()
        .filter_map(|e| {
            e.file_name()
                .to_str()?
                .strip_prefix("edge-b-")?
                .get(..13)?
                .parse::<i64>()
                .ok()
        })
        .map(|ms| (ms - now_ms) / 3_600_000)
        .collect();
    assert!(
        offsets_h.iter().any(|h| *h >= 20) && offsets_h.iter().any(|h| *h <= -1),
        "hours off in edge-b's batch ids: {offsets_h:?}"
    );
    let log = b.guard.log_text();
    assert!(!log.contains("ERROR"), "edge-b logged errors:\n{log}");

    // An edge restarted mid-window: its counters start again from zero (nothing replayed into
    // them, so Prometheus sees one reset, which rate() and increase() handle), and the control
    // plane records every request of the edge exactly once across the restart.
    drop(a.guard);
    a = edge(&s, "edge-a", &a_addr, &cp_addr, 2, None);
    sent.send(&a.node, &a.addr, STEADY, &rows[..WINDOW / 2]);
    let total = sent.ok("edge-a") as f64;
    prom.wait_for(
        "edge-a's restarted counter",
        Duration::from_secs(30),
        "sum(wasmline_inference_requests_total{job=\"wasmline-edge\",node=\"edge-a\",outcome=\"ok\"})",
        |v| v == Some((WINDOW / 2 / BATCH) as f64),
    );
    let resets = prom.value(&format!(
        "sum(resets(wasmline_inference_requests_total{{job=\"wasmline-edge\",node=\"edge-a\",model=\"{STEADY}\",outcome=\"ok\"}}[10m]))"
    ));
    assert_eq!(resets, Some(1.0), "one counter reset");
    wait_for_recorded(&s3, &a, total as u64);

    // An edge that stops answering: EdgeDown fires for it, and only for it.
    let b_addr = b.addr.clone();
    drop(b.guard);
    prom.wait_for(
        "EdgeDown for edge-b",
        Duration::from_secs(60),
        &format!("count(ALERTS{{alertname=\"EdgeDown\",alertstate=\"firing\",instance=\"{b_addr}\"}})"),
        |v| v == Some(1.0),
    );
    assert_eq!(
        prom.vector("ALERTS{alertname=\"EdgeDown\"}").len(),
        1,
        "only edge-b is down"
    );

    // Prometheus goes away: the edge and the control plane serve and deliver telemetry as before.
    drop(prometheus);
    let delivered = metric(&a.addr, "wasmline_edge_telemetry_delivered_total");
    sent.send(&a.node, &a.addr, STEADY, &rows[..WINDOW / 2]);
    let (status, body) = post_infer(&cp_addr, STEADY, &infer_body(&rows[..BATCH]));
    assert_eq!(status, 200, "{body}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while metric(&a.addr, "wasmline_edge_telemetry_delivered_total") <= delivered
        || recorded_ok(&s3, "edge-a") != sent.ok("edge-a")
    {
        assert!(Instant::now() < deadline, "telemetry stopped without Prometheus");
        std::thread::sleep(Duration::from_millis(200));
    }
    let text = get_text(&format!("http://{}/metrics", a.addr));
    assert!(text.contains("wasmline_inference_requests_total"), "{text}");
    drop(cp);
}

// ---- the processes ----

/// A logistic regression on the wine data, registered as `model` and promoted to production.
fn train(s: &Scratch, store: &str, model: &str) {
    let section = format!(
        "[train]\nmodel_name = \"{model}\"\nmetric = \"f1\"\nfolds = 3\nalias = \"production\"\n\n\
         [[train.models]]\nfamily = \"logistic_regression\"\ngrid = {{ alpha = [1.0] }}\n"
    );
    let config = with_training(s, "winequality", model, &section);
    s.run_with_store(store, &["pipeline", "run", "-c", config.to_str().unwrap()])
        .ok();
}

/// Waits until the control plane recorded exactly `total` ok requests of `edge`; fails at once if
/// it recorded more.
fn wait_for_recorded(s3: &S3sFs, edge: &Edge, total: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let recorded = recorded_ok(s3, &edge.node);
        if recorded == total {
            return;
        }
        assert!(
            recorded < total,
            "the control plane counted {recorded} of {}'s {total} requests",
            edge.node
        );
        assert!(
            Instant::now() < deadline,
            "telemetry of {}: {recorded} of {total}\n{}",
            edge.node,
            edge.guard.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A wall clock for one process, set by the test while it runs: libfaketime (Debian `faketime`)
/// reads the offset from a file on every call. The monotonic clock is left alone, as an NTP step
/// leaves it.
struct SkewedClock {
    file: std::path::PathBuf,
    library: std::path::PathBuf,
}

impl SkewedClock {
    fn new(s: &Scratch, offset: &str) -> SkewedClock {
        let library = ["/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib"]
            .iter()
            .map(|dir| Path::new(dir).join("faketime/libfaketimeMT.so.1"))
            .find(|p| p.exists())
            .expect("libfaketime (Debian package faketime; scripts/test installs it)");
        let clock = SkewedClock {
            file: s.path().join("faketime"),
            library,
        };
        clock.set(offset);
        clock
    }

    /// Moves the clock to `offset` from the real time (`-2h`, `+1d`, ...).
    fn set(&self, offset: &str) {
        std::fs::write(&self.file, offset).unwrap();
    }

    fn apply(&self, cmd: &mut Command) {
        cmd.env("LD_PRELOAD", &self.library)
            .env("FAKETIME_TIMESTAMP_FILE", &self.file)
            .env("FAKETIME_NO_CACHE", "1")
            .env("FAKETIME_DONT_FAKE_MONOTONIC", "1");
    }
}

fn edge(s: &Scratch, node: &str, addr: &str, control_plane: &str, run: usize, clock: Option<&SkewedClock>) -> Edge {
    Edge::start(
        s,
        node,
        run,
        control_plane,
        &format!("{SHIFTED},{STEADY}"),
        addr,
        |cmd| {
            cmd.args(["--drift-window", &WINDOW.to_string()])
                .env("WASMLINE_EDGE_TOKEN", EDGE_TOKEN);
            if let Some(clock) = clock {
                clock.apply(cmd);
            }
        },
    )
}

/// alerts.yml with every `for:` at 3 s, so pending lasts a few evaluations and firing follows.
fn fast_rules() -> String {
    let text = std::fs::read_to_string(workspace_root().join("monitoring/alerts.yml")).unwrap();
    let fast: Vec<String> = text
        .lines()
        .map(|l| match l.trim_start().strip_prefix("for: ") {
            Some(_) => format!("{}for: 3s", &l[..l.len() - l.trim_start().len()]),
            None => l.to_owned(),
        })
        .collect();
    assert!(
        fast.len() > 10 && text.contains("for: 5m"),
        "alerts.yml has `for:` lines"
    );
    fast.join("\n")
}

/// The test's Prometheus: every second, the stack's job names, local targets.
fn prometheus_config(rules: &Path, control_plane: &str, edges: &[&str], alertmanager: &str) -> String {
    format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
         rule_files:\n  - {rules:?}\n\
         alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: [{alertmanager:?}]\n\
         scrape_configs:\n\
         \x20 - job_name: wasmline-control-plane\n    static_configs:\n      - targets: [{control_plane:?}]\n\
         \x20 - job_name: wasmline-edge\n    static_configs:\n      - targets: [{}]\n",
        edges.iter().map(|e| format!("{e:?}")).collect::<Vec<_>>().join(", "),
        rules = rules.display().to_string(),
    )
}

/// monitoring/alertmanager.yml with the hook's URL and token file local, and no waiting.
fn alertmanager_config(s: &Scratch, hook_url: &str) -> String {
    let token = s.path().join("hook-token");
    std::fs::write(&token, HOOK_TOKEN).unwrap();
    let text = std::fs::read_to_string(workspace_root().join("monitoring/alertmanager.yml")).unwrap();
    let replaced = text
        .replace("http://control-plane:8080/api/v1/hooks/alertmanager", hook_url)
        .replace("/run/secrets/alertmanager_token", token.to_str().unwrap())
        .replace("group_wait: 30s", "group_wait: 1s")
        .replace("group_interval: 5m", "group_interval: 1s");
    assert_ne!(replaced, text, "alertmanager.yml has the hook's URL and token file");
    replaced
}

// ---- traffic ----

/// The wine data's feature columns (all but the last), in a fixed shuffled order.
fn wine_rows() -> Vec<Vec<f64>> {
    let mut reader = csv::Reader::from_path(Scratch::example_data("winequality")).unwrap();
    let mut rows: Vec<Vec<f64>> = reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            r.iter().take(r.len() - 1).map(|v| v.parse().unwrap()).collect()
        })
        .collect();
    // Fisher-Yates with a fixed xorshift: the file's order is not random.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in (1..rows.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        rows.swap(i, (x % (i as u64 + 1)) as usize);
    }
    rows
}

fn infer_body(rows: &[Vec<f64>]) -> Value {
    let flat: Vec<f64> = rows.iter().flatten().copied().collect();
    json!({"inputs": [{"name": "input", "shape": [rows.len(), rows[0].len()], "datatype": "FP64", "data": flat}]})
}

fn post_infer(addr: &str, model: &str, body: &Value) -> (u16, Value) {
    let mut response = ureq::post(&format!("http://{addr}/v2/models/{model}/infer"))
        .config()
        .http_status_as_error(false)
        .build()
        .send_json(body)
        .unwrap();
    let status = response.status().as_u16();
    (status, response.body_mut().read_json().unwrap_or(Value::Null))
}

/// Successful requests sent, per node.
#[derive(Default)]
struct Sent {
    ok: std::collections::BTreeMap<String, u64>,
    invalid: u64,
}

impl Sent {
    /// `rows` to `model` on an edge, [`BATCH`] rows a request; every request must succeed.
    fn send(&mut self, node: &str, addr: &str, model: &str, rows: &[Vec<f64>]) {
        for chunk in rows.chunks(BATCH) {
            let (status, body) = post_infer(addr, model, &infer_body(chunk));
            assert_eq!(status, 200, "{node} {model}: {body}");
            *self.ok.entry(node.to_owned()).or_default() += 1;
        }
    }

    fn ok(&self, node: &str) -> u64 {
        self.ok.get(node).copied().unwrap_or(0)
    }
}

/// Version 1's manifest of `model`, from the S3 server's folder.
fn manifest(s3: &S3sFs, model: &str) -> ManifestView {
    let bytes = std::fs::read(
        s3.data_dir
            .join(&s3.bucket)
            .join(format!("models/{model}/1/manifest.json")),
    )
    .expect("the manifest in the S3 server's folder");
    ManifestView::from_json(&bytes).unwrap()
}

/// The drift of `rows` as model-wasm computes it (on edges, in browsers, in `wasmline drift`).
fn drift_of(manifest: &ManifestView, rows: &[Vec<f64>], threshold: f64) -> DriftSnapshot {
    let mut monitor = DriftMonitor::with_threshold(manifest, threshold);
    let flat: Vec<f64> = rows.iter().flatten().copied().collect();
    monitor.observe_rows(&flat, manifest.features.len());
    monitor.snapshot()
}

/// What a browser running the SDK posts: its telemetry over `rows`, one predict call each.
fn post_browser_telemetry(s3: &S3sFs, control_plane: &str, rows: &[Vec<f64>]) {
    let manifest = manifest(s3, SHIFTED);
    let mut telemetry = Telemetry::new(&manifest, "browser");
    for row in rows {
        telemetry.record_ok(row, 0.000_04);
    }
    let batch = TelemetryBatch {
        batch_id: "browser-test-1".into(),
        node: "client-1".into(),
        reports: vec![telemetry.report()],
    };
    let response = ureq::post(&format!("http://{control_plane}/api/v1/telemetry/browser"))
        .send_json(&batch)
        .unwrap();
    assert_eq!(response.status(), 202);
}

/// `ok` predictions the control plane recorded from `node`, over all its batches in the bucket.
fn recorded_ok(s3: &S3sFs, node: &str) -> u64 {
    let dir = s3.data_dir.join(&s3.bucket).join("telemetry/batches").join(node);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return 0;
    };
    let mut ok = 0;
    for e in entries.flatten() {
        let Ok(batch) = serde_json::from_slice::<Value>(&std::fs::read(e.path()).unwrap_or_default()) else {
            continue; // being written
        };
        for report in batch["reports"].as_array().unwrap() {
            ok += report["predictions"]["ok"].as_u64().unwrap();
        }
    }
    ok
}

fn get_text(url: &str) -> String {
    ureq::get(url).call().unwrap().body_mut().read_to_string().unwrap()
}

/// The sum of a metric's samples on a /metrics page.
fn metric(addr: &str, name: &str) -> f64 {
    get_text(&format!("http://{addr}/metrics"))
        .lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

// ---- Prometheus's HTTP API ----

struct Prom(String);

impl Prom {
    /// The result of an instant query (`data.result`); panics unless Prometheus answers success.
    fn vector(&self, expr: &str) -> Vec<Value> {
        let mut response = ureq::get(&format!("{}/api/v1/query", self.0))
            .query("query", expr)
            .config()
            .http_status_as_error(false)
            .build()
            .call()
            .unwrap();
        let body: Value = response.body_mut().read_json().unwrap();
        assert_eq!(body["status"], "success", "{expr}: {body}");
        body["data"]["result"].as_array().cloned().unwrap_or_default()
    }

    /// The value of a query that returns one series, or None when it returns none.
    fn value(&self, expr: &str) -> Option<f64> {
        let result = self.vector(expr);
        assert!(result.len() <= 1, "{expr}: {result:?}");
        result.first().map(|s| s["value"][1].as_str().unwrap().parse().unwrap())
    }

    /// Polls `expr` every 200 ms until `ok` holds for its value, or panics after `deadline`.
    fn wait_for(&self, what: &str, deadline: Duration, expr: &str, ok: impl Fn(Option<f64>) -> bool) {
        let start = Instant::now();
        loop {
            let value = self.value(expr);
            if ok(value) {
                return;
            }
            assert!(
                start.elapsed() < deadline,
                "{what}: `{expr}` is {value:?} after {deadline:?}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

fn label(series: &Value, name: &str) -> String {
    series["metric"][name].as_str().unwrap_or_default().to_owned()
}

/// The edges' drift ratio per (model, node).
fn drift_ratios(prom: &Prom) -> std::collections::BTreeMap<(String, String), f64> {
    prom.vector("wasmline_data_drift_ratio{job=\"wasmline-edge\"}")
        .iter()
        .map(|s| {
            (
                (label(s, "model"), label(s, "node")),
                s["value"][1].as_str().unwrap().parse().unwrap(),
            )
        })
        .collect()
}

/// Every PromQL query of the Grafana dashboard (panels, annotations) parses and returns series
/// with its variables at "All"; every variable's `label_values` has values.
fn check_dashboard_queries(prom: &Prom) {
    let path = workspace_root().join("monitoring/grafana/dashboards/wasmline.json");
    let dashboard: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let mut queries = Vec::new();
    let mut stack = vec![&dashboard["panels"]];
    while let Some(panels) = stack.pop() {
        for panel in panels.as_array().into_iter().flatten() {
            stack.push(&panel["panels"]);
            for target in panel["targets"].as_array().into_iter().flatten() {
                let expr = target["expr"].as_str().expect("a PromQL target");
                queries.push((panel["title"].as_str().unwrap().to_owned(), expr.to_owned()));
            }
        }
    }
    for annotation in dashboard["annotations"]["list"].as_array().unwrap() {
        if let Some(expr) = annotation["target"]["expr"].as_str() {
            queries.push((annotation["name"].as_str().unwrap().to_owned(), expr.to_owned()));
        }
    }
    assert!(queries.len() >= 12, "{queries:?}");
    for (title, expr) in &queries {
        // Grafana's values for "All" and for a one-hour view.
        let expr = expr
            .replace("$model", ".*")
            .replace("$node", ".*")
            .replace("$runtime", ".*")
            .replace("$__rate_interval", "5m");
        assert!(
            !expr.contains("$_")
                && !expr.contains("${")
                && !expr.split('$').skip(1).any(|r| r.starts_with(char::is_alphabetic)),
            "{title}: an unknown variable in {expr}"
        );
        let result = prom.vector(&expr);
        assert!(!result.is_empty(), "panel '{title}': `{expr}` returns no series");
    }
    for variable in dashboard["templating"]["list"].as_array().unwrap() {
        let Some(query) = variable["query"]["query"].as_str() else {
            continue;
        };
        let inner = query
            .strip_prefix("label_values(")
            .and_then(|q| q.strip_suffix(')'))
            .expect("label_values(METRIC, LABEL)");
        let (selector, label) = inner.rsplit_once(", ").unwrap();
        let selector = selector.replace("$model", ".*");
        let values = prom.label_values(label, &selector);
        assert!(!values.is_empty(), "variable {query}: no values");
    }
    eprintln!("{} dashboard queries return series", queries.len());
}

impl Prom {
    fn label_values(&self, label: &str, selector: &str) -> Vec<Value> {
        let mut response = ureq::get(&format!("{}/api/v1/label/{label}/values", self.0))
            .query("match[]", selector)
            .call()
            .unwrap();
        let body: Value = response.body_mut().read_json().unwrap();
        body["data"].as_array().cloned().unwrap_or_default()
    }
}

// ---- the webhook receiver ----

#[derive(Debug, Clone)]
struct Posted {
    authorization: Option<String>,
    body: String,
}

/// An HTTP server on 127.0.0.1 that records every request's Authorization header and body and
/// answers 200: the retrain hook as Alertmanager sees it.
struct Webhook {
    url: String,
    posted: Arc<Mutex<Vec<Posted>>>,
}

impl Webhook {
    fn start() -> Webhook {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/api/v1/hooks/alertmanager", listener.local_addr().unwrap());
        let posted = Arc::new(Mutex::new(Vec::new()));
        let log = posted.clone();
        // Dies with the test binary; accepts one request per connection.
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                let mut reader = BufReader::new(&stream);
                let mut authorization = None;
                let mut length = 0usize;
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                    let lower = line.to_ascii_lowercase();
                    if let Some(v) = lower.strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                    if lower.starts_with("authorization:") {
                        authorization = Some(line["authorization:".len()..].trim().to_owned());
                    }
                    line.clear();
                }
                let mut body = vec![0; length];
                if reader.read_exact(&mut body).is_ok() {
                    log.lock().unwrap().push(Posted {
                        authorization,
                        body: String::from_utf8_lossy(&body).into_owned(),
                    });
                }
                let _ = (&stream).write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            }
        });
        Webhook { url, posted }
    }

    fn wait_for(&self, deadline: Duration, matches: impl Fn(&Posted) -> bool) -> Posted {
        let start = Instant::now();
        loop {
            if let Some(p) = self.posted.lock().unwrap().iter().find(|p| matches(p)) {
                return p.clone();
            }
            assert!(
                start.elapsed() < deadline,
                "nothing matching was posted to the hook: {:?}",
                self.posted.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}
