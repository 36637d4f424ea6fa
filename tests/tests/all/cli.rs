//! `wasmline pipeline` as a user runs it: the bundled defaults, idempotent reruns, single steps,
//! every source kind, and each kind of bad input (clear message, exit 1, nothing half-written).

use tests::examples_dir;
use tests::servers::{HttpServer, S3sFs};

use crate::{STEPS, Scratch};

fn wine_csv() -> String {
    std::fs::read_to_string(examples_dir().join("winequality/winequality-red.csv")).expect("wine data")
}

/// MD5 through Python's hashlib, independent of our own implementation.
fn md5_hex(bytes: &[u8]) -> String {
    let mut child = std::process::Command::new("python3")
        .args([
            "-c",
            "import hashlib,sys; print(hashlib.md5(sys.stdin.buffer.read()).hexdigest())",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), bytes).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// Nothing of a failed run may look finished: no dataset record, no temporary leftovers.
#[track_caller]
fn assert_nothing_published(s: &Scratch) {
    assert_eq!(
        s.store_files("datasets"),
        Vec::<String>::new(),
        "no dataset record after a failure"
    );
    assert_eq!(
        s.store_files(".tmp"),
        Vec::<String>::new(),
        "no temporary files left behind"
    );
}

#[test]
fn bundled_default_runs_and_a_rerun_is_a_no_op() {
    let s = Scratch::new();
    let run = s.run(&["pipeline", "run"]);
    let out = run.ok();
    // The bundled forest is large enough (60 trees, over 10,000 nodes) for export and compile
    // to say each stage off a terminal.
    let log = run.stderr();
    for stage in [
        "export: model.onnx ",
        "bytes written; running it in tract on 320 test rows",
        "compile: model.wasm ",
        "bytes generated; compiling it in wasmtime",
        "predicting 320 test rows in wasmtime",
    ] {
        assert!(log.contains(stage), "no '{stage}' in:\n{log}");
    }
    for step in *STEPS {
        assert!(out.lines().any(|l| l.starts_with(step)), "{step} reported:\n{out}");
    }
    assert!(out.contains("1599 rows"), "{out}");
    assert!(out.contains("dataset winequality-red version 1"), "{out}");
    assert!(out.contains("model wine-quality version 1"), "{out}");
    assert!(
        out.contains("production -> version 1"),
        "the first model is promoted:\n{out}"
    );
    assert!(out.contains("wasmtime = IR on 320 test rows"), "{out}");
    let wasm = std::fs::read(s.store().join("models/wine-quality/1/model.wasm")).unwrap();
    assert_eq!(&wasm[..4], b"\0asm", "the registry holds the module");
    // The raw bytes are stored at their MD5 in DVC's layout.
    let md5 = md5_hex(wine_csv().as_bytes());
    let raw = s.store().join(format!("dvc/files/md5/{}/{}", &md5[..2], &md5[2..]));
    assert_eq!(std::fs::read_to_string(raw).unwrap(), wine_csv());
    // The record points at everything and the reports are there.
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(s.store().join("datasets/winequality-red/1.json")).unwrap()).unwrap();
    assert_eq!(record["raw"]["md5"], md5.as_str());
    assert_eq!(
        record["train"]["rows"].as_u64().unwrap() + record["test"]["rows"].as_u64().unwrap(),
        1599
    );
    assert_eq!(record["quality"]["passed"], true);
    for key in ["json", "html", "reference"] {
        let key = record["profile"][key].as_str().unwrap();
        assert!(s.store().join(key).is_file(), "{key} stored");
    }
    let html = std::fs::read_to_string(s.store().join(record["profile"]["html"].as_str().unwrap())).unwrap();
    assert!(
        html.contains("<svg") && !html.contains("src=\"http"),
        "offline report with charts"
    );

    let again = s.run(&["pipeline", "run"]).ok();
    assert_eq!(
        again.matches("up to date").count(),
        11,
        "every step is a no-op:\n{again}"
    );
    assert_eq!(
        s.store_files("datasets"),
        ["datasets/winequality-red/1.json"],
        "no second version"
    );
}

#[test]
fn regression_example_runs() {
    let s = Scratch::new();
    let config = examples_dir().join("diabetes/pipeline.toml");
    let out = s.run(&["pipeline", "run", "--config", config.to_str().unwrap()]).ok();
    assert!(out.contains("442 rows"), "{out}");
    assert!(out.contains("train 354 / test 88"), "{out}");
    assert!(out.contains("model diabetes-progression version 1"), "{out}");
    let record = s.run(&["datasets", "show", "diabetes@1"]).ok();
    let record: serde_json::Value = serde_json::from_str(&record).unwrap();
    assert_eq!(record["task"], "regression");
    assert_eq!(record["features"].as_array().unwrap().len(), 10);
}

#[test]
fn steps_run_one_by_one_with_a_run_id_and_in_order_only() {
    let s = Scratch::new();
    let config = s.example_data_config("winequality", &Scratch::example_data("winequality"));
    let step = |name: &str, run: &str| {
        s.run(&[
            "pipeline",
            "step",
            name,
            "--run-id",
            run,
            "-c",
            config.to_str().unwrap(),
        ])
    };
    let err = step("transform", "airflow-1").fails();
    assert!(err.contains("run airflow-1 does not exist"), "{err}");
    for name in ["ingest", "transform", "validate", "profile", "version"] {
        let out = step(name, "airflow-1").ok();
        assert!(out.contains(name), "{out}");
    }
    let run: serde_json::Value =
        serde_json::from_slice(&std::fs::read(s.store().join("runs/airflow-1/run.json")).unwrap()).unwrap();
    assert_eq!(run["status"], "succeeded", "a config without [train] ends at version");
    assert_eq!(run["steps"].as_array().unwrap().len(), 5);
    // A rerun of a finished step says so and does nothing.
    let out = step("transform", "airflow-1").ok();
    assert!(out.contains("up to date: inputs unchanged"), "{out}");
    // A step of a run that skipped one fails and names what is missing.
    step("ingest", "airflow-2").ok();
    let err = step("validate", "airflow-2").fails();
    assert!(err.contains("step 'transform' has not run in run airflow-2"), "{err}");
    let err = step("ingest", "../x").fails();
    assert!(err.contains("run id"), "{err}");
    // Training steps need a [train] section.
    let err = step("train", "airflow-1").fails();
    assert!(err.contains("no [train] section"), "{err}");
}

#[test]
fn http_and_json_lines_sources() {
    let s = Scratch::new();
    let server = HttpServer::start(&examples_dir().join("winequality"));
    let config = s.example_data_config("winequality", &format!("{}/winequality-red.csv", server.url));
    let out = s.run(&["pipeline", "run", "--config", config.to_str().unwrap()]).ok();
    assert!(out.contains("1599 rows"), "{out}");

    // The same rows as JSON Lines give the same processed data.
    let mut lines = String::new();
    let wine = wine_csv();
    let mut reader = csv::Reader::from_reader(wine.as_bytes());
    let header = reader.headers().unwrap().clone();
    for record in reader.records() {
        let record = record.unwrap();
        let object: serde_json::Map<String, serde_json::Value> = header
            .iter()
            .zip(record.iter())
            .map(|(k, v)| (k.to_owned(), serde_json::from_str(v).unwrap()))
            .collect();
        lines.push_str(&serde_json::to_string(&object).unwrap());
        lines.push('\n');
    }
    s.write("wine.jsonl", &lines);
    let config = s.example_data_config("winequality", "wine.jsonl");
    let out = s.run(&["pipeline", "run", "--config", config.to_str().unwrap()]).ok();
    assert!(out.contains("1599 rows"), "{out}");
    let v1: serde_json::Value =
        serde_json::from_slice(&std::fs::read(s.store().join("datasets/winequality-red/1.json")).unwrap()).unwrap();
    let v2: serde_json::Value =
        serde_json::from_slice(&std::fs::read(s.store().join("datasets/winequality-red/2.json")).unwrap()).unwrap();
    assert_eq!(
        v1["train"]["md5"], v2["train"]["md5"],
        "same processed bytes from CSV and JSON Lines"
    );
}

#[test]
fn s3_source_and_s3_store() {
    let s3 = S3sFs::start();
    let mut s = Scratch::new();
    s.env = s3.env();
    std::fs::create_dir_all(s3.data_dir.join(&s3.bucket).join("raw")).unwrap();
    std::fs::write(s3.data_dir.join(&s3.bucket).join("raw/wine.csv"), wine_csv()).unwrap();
    let config = s.example_data_config("winequality", &format!("s3://{}/raw/wine.csv", s3.bucket));
    let store = format!("s3://{}/team-a", s3.bucket);
    let out = s
        .run_with_store(&store, &["pipeline", "run", "--config", config.to_str().unwrap()])
        .ok();
    assert!(out.contains("dataset winequality-red version 1"), "{out}");
    let md5 = md5_hex(wine_csv().as_bytes());
    let raw = s3
        .data_dir
        .join(&s3.bucket)
        .join(format!("team-a/dvc/files/md5/{}/{}", &md5[..2], &md5[2..]));
    assert_eq!(
        std::fs::read_to_string(raw).unwrap(),
        wine_csv(),
        "raw data in the S3 store's DVC layout"
    );
    let again = s
        .run_with_store(&store, &["pipeline", "run", "--config", config.to_str().unwrap()])
        .ok();
    assert_eq!(again.matches("up to date").count(), 5, "{again}");
    let listed = s.run_with_store(&store, &["datasets", "list"]).ok();
    assert!(listed.contains("winequality-red\tversions 1"), "{listed}");
}

#[test]
fn wrong_s3_secret_is_a_clear_authentication_error() {
    let s3 = S3sFs::start();
    let mut s = Scratch::new();
    s.env = s3.env();
    s.env.retain(|(k, _)| k != "AWS_SECRET_ACCESS_KEY");
    s.env.push(("AWS_SECRET_ACCESS_KEY".into(), "not-the-secret".into()));
    let store = format!("s3://{}/x", s3.bucket);
    let err = s.run_with_store(&store, &["pipeline", "run"]).fails();
    assert!(err.contains("rejected the credentials"), "{err}");
    assert!(err.contains("AWS_SECRET_ACCESS_KEY"), "{err}");
}

/// Runs the wine pipeline on `data` (written as `bad.csv`) and returns the error.
fn run_on(s: &Scratch, data: &str) -> String {
    s.write("bad.csv", data);
    let config = s.example_config("winequality", "bad.csv");
    let err = s
        .run(&["pipeline", "run", "--config", config.to_str().unwrap()])
        .fails();
    assert_nothing_published(s);
    err
}

fn with_cell(row: usize, column: usize, value: &str) -> String {
    let mut lines: Vec<String> = wine_csv().lines().map(str::to_owned).collect();
    let mut fields: Vec<&str> = lines[row].split(',').collect();
    fields[column] = value;
    lines[row] = fields.join(",");
    lines.join("\n") + "\n"
}

#[test]
fn wrong_type_names_file_row_and_column() {
    let s = Scratch::new();
    let err = run_on(&s, &with_cell(17, 10, "abc"));
    assert!(
        err.contains("bad.csv: row 17 (line 18), column 'alcohol': 'abc' is not a float"),
        "{err}"
    );
}

#[test]
fn nan_and_infinity_are_refused() {
    let s = Scratch::new();
    let err = run_on(&s, &with_cell(3, 8, "NaN"));
    assert!(
        err.contains("row 3 (line 4), column 'pH': 'NaN' is not a finite number"),
        "{err}"
    );
    let err = run_on(&s, &with_cell(5, 0, "inf"));
    assert!(
        err.contains("row 5 (line 6), column 'fixed acidity': 'inf' is not a finite number"),
        "{err}"
    );
}

#[test]
fn empty_header_only_and_ragged_files_are_refused() {
    let s = Scratch::new();
    assert!(run_on(&s, "").contains("bad.csv: the file is empty"));
    let header = wine_csv().lines().next().unwrap().to_owned() + "\n";
    assert!(run_on(&s, &header).contains("bad.csv: the file has a header but no data rows"));
    let mut ragged: Vec<String> = wine_csv().lines().map(str::to_owned).collect();
    ragged[9].push_str(",1.0");
    let err = run_on(&s, &(ragged.join("\n") + "\n"));
    assert!(
        err.contains("bad.csv: row 9 (line 10): has 13 fields, the header has 12"),
        "{err}"
    );
}

#[test]
fn missing_file_and_unreachable_url_are_named() {
    let s = Scratch::new();
    let config = s.example_config("winequality", "no-such.csv");
    let err = s
        .run(&["pipeline", "run", "--config", config.to_str().unwrap()])
        .fails();
    assert!(err.contains("no-such.csv: No such file or directory"), "{err}");
    let port = tests::process::free_port();
    let url = format!("http://127.0.0.1:{port}/wine.csv");
    let config = s.example_config("winequality", &url);
    let err = s
        .run(&["pipeline", "run", "--config", config.to_str().unwrap()])
        .fails();
    assert!(err.contains(&format!("cannot fetch {url}")), "{err}");
    let server = HttpServer::start(s.path());
    let url = format!("{}/missing.csv", server.url);
    let config = s.example_config("winequality", &url);
    let err = s
        .run(&["pipeline", "run", "--config", config.to_str().unwrap()])
        .fails();
    assert!(err.contains("HTTP 404"), "{err}");
    assert_nothing_published(&s);
}

#[test]
fn config_mistakes_are_named_with_a_suggestion() {
    let s = Scratch::new();
    let config = s.example_config("winequality", "x.csv");
    let text = std::fs::read_to_string(&config).unwrap();
    s.write("typo.toml", &text.replace("threshold = 6", "treshold = 6"));
    let err = s.run(&["pipeline", "run", "--config", "typo.toml"]).fails();
    assert!(err.contains("typo.toml: TOML parse error at line"), "{err}");
    assert!(
        err.contains("unknown field `treshold`") && err.contains("did you mean 'threshold'?"),
        "{err}"
    );
    s.write("column.toml", &text.replace("column = \"pH\"", "column = \"ph\""));
    let err = s.run(&["pipeline", "run", "--config", "column.toml"]).fails();
    assert!(err.contains("unknown column 'ph'; did you mean 'pH'?"), "{err}");
    let err = s.run(&["pipeline", "run", "--config", "absent.toml"]).fails();
    assert!(err.contains("absent.toml: cannot read"), "{err}");
}

#[test]
fn a_store_root_that_is_not_writable_is_refused() {
    let s = Scratch::new();
    s.write("file", "not a directory");
    let store = s.path().join("file/store");
    let err = s.run_with_store(store.to_str().unwrap(), &["pipeline", "run"]).fails();
    assert!(err.contains("is not a writable directory"), "{err}");
}

#[test]
fn a_failed_critical_expectation_stops_the_run_and_names_rows() {
    let s = Scratch::new();
    // Two rows with an impossible pH.
    let data = with_cell(4, 8, "7.9");
    let data = {
        let mut lines: Vec<String> = data.lines().map(str::to_owned).collect();
        let mut fields: Vec<&str> = lines[11].split(',').collect();
        fields[8] = "0.5";
        lines[11] = fields.join(",");
        lines.join("\n") + "\n"
    };
    let err = run_on(&s, &data);
    assert!(err.contains("validation failed"), "{err}");
    assert!(
        err.contains("expectation 3 (range): 2 of 1599 rows of 'pH' are outside [2.5, 4.5]"),
        "{err}"
    );
    assert!(
        err.contains("row") && (err.contains(": 7.9") || err.contains(": 0.5")),
        "{err}"
    );
    // The reports of the failed run are kept for the user to read.
    let reports = s.store_files("runs");
    assert!(reports.iter().any(|f| f.ends_with("validate/report.md")), "{reports:?}");
    let run = reports.iter().find(|f| f.ends_with("run.json")).unwrap();
    let run: serde_json::Value = serde_json::from_slice(&std::fs::read(s.store().join(run)).unwrap()).unwrap();
    assert_eq!(run["status"], "failed");
}
