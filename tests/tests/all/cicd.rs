//! CI/CD as code: the Airflow DAG (parsed by Airflow's DagBag, run by `airflow dags test` against
//! the real binary and the disk store, resumed after a mid-DAG failure), the dev-to-test gate
//! script, the branch-protection script's dry run, and the workflow lint.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tests::{workspace_bin, workspace_root};

use crate::train::{train_section, with_training};
use crate::{STEPS, Scratch};

/// Airflow 3 from its cached venv (scripts/lib/tools.sh `ensure_airflow`), with a home of its own
/// (SQLite metadata database, logs) in a temporary directory and only our DAG folder.
struct Airflow {
    home: tempfile::TempDir,
    bin: PathBuf,
}

impl Airflow {
    fn venv() -> PathBuf {
        let venv = std::env::var_os("WASMLINE_AIRFLOW_VENV")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(std::env::var("HOME").expect("HOME")).join(".cache/wasmline/airflow-venv")
            });
        assert!(
            venv.join("bin/airflow").is_file(),
            "Airflow is not installed in {}: run the tests through scripts/test, which installs it (scripts/requirements-airflow.txt)",
            venv.display()
        );
        venv
    }

    /// A fresh home, without the metadata database (enough to parse DAGs).
    fn unmigrated() -> Airflow {
        Airflow {
            home: tempfile::tempdir().expect("tempdir"),
            bin: Self::venv().join("bin"),
        }
    }

    /// A fresh home with its database migrated (what `airflow dags test` needs).
    fn start() -> Airflow {
        let airflow = Airflow::unmigrated();
        let out = airflow
            .command("airflow")
            .args(["db", "migrate"])
            .output()
            .expect("airflow");
        assert_ok("airflow db migrate", &out);
        airflow
    }

    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(self.bin.join(program));
        cmd.current_dir(self.home.path())
            .env("AIRFLOW_HOME", self.home.path())
            .env("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
            .env("AIRFLOW__CORE__DAGS_FOLDER", workspace_root().join("dags"))
            // A failure fails the task at once: the tests rerun by hand, as an operator would.
            .env("WASMLINE_DAG_RETRIES", "0")
            .env_remove("WASMLINE_BIN")
            .env_remove("WASMLINE_STORE")
            .env_remove("WASMLINE_CONFIG");
        cmd
    }

    /// `airflow dags test wasmline_pipeline` with the binary, store and config from the
    /// environment, and the DAG run's conf.
    fn run_dag(&self, store: &Path, config: &Path, conf: &str) -> Output {
        self.command("airflow")
            .args(["dags", "test", "wasmline_pipeline", "--conf", conf])
            .env("WASMLINE_BIN", workspace_bin("wasmline"))
            .env("WASMLINE_STORE", store)
            .env("WASMLINE_CONFIG", config)
            .output()
            .expect("run airflow dags test")
    }
}

#[track_caller]
fn assert_ok(what: &str, out: &Output) {
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn json_file(path: &Path) -> serde_json::Value {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The sha256 of version 1's model IR (and ONNX file), from its manifest.
fn model_digests(store: &Path, model: &str) -> (String, String) {
    let manifest = json_file(&store.join(format!("models/{model}/1/manifest.json")));
    let artifacts = &manifest["artifacts"];
    (
        artifacts["model.ir.json"]["sha256"]
            .as_str()
            .expect("ir sha256")
            .to_owned(),
        artifacts["model.onnx"]["sha256"]
            .as_str()
            .expect("onnx sha256")
            .to_owned(),
    )
}

/// A fast training config (one logistic regression) on the bundled wine data.
fn logistic_config(s: &Scratch) -> PathBuf {
    with_training(
        s,
        "winequality",
        "logistic",
        &train_section("wine", "f1", "logistic_regression", "alpha = [1.0]"),
    )
}

/// What `wasmline pipeline run` makes of the same config, in a store of its own.
fn reference_digests(config: &Path) -> (String, String) {
    let reference = Scratch::new();
    reference.run(&["pipeline", "run", "-c", config.to_str().unwrap()]).ok();
    model_digests(&reference.store(), "wine")
}

#[test]
fn the_dag_has_one_task_per_step_in_order_with_retries_and_a_weekly_schedule() {
    let airflow = Airflow::unmigrated();
    let out_file = airflow.home.path().join("dag.json");
    let script = r#"
import json, sys
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
dag = bag.dags.get("wasmline_pipeline")
out = {"import_errors": {str(k): str(v) for k, v in bag.import_errors.items()}, "dag_ids": sorted(bag.dag_ids)}
if dag is not None:
    out["schedule"] = str(dag.schedule)
    out["catchup"] = dag.catchup
    out["tasks"] = {
        t.task_id: {
            "operator": type(t).__name__,
            "upstream": sorted(t.upstream_task_ids),
            "downstream": sorted(t.downstream_task_ids),
            "retries": t.retries,
            "command": t.bash_command,
        }
        for t in dag.tasks
    }
json.dump(out, open(sys.argv[2], "w"))
"#;
    let out = airflow
        .command("python")
        // The defaults, not the tests' no-retry setting.
        .env_remove("WASMLINE_DAG_RETRIES")
        .arg("-c")
        .arg(script)
        .arg(workspace_root().join("dags"))
        .arg(&out_file)
        .output()
        .expect("run python");
    assert_ok("DagBag", &out);
    let dag = json_file(&out_file);
    assert_eq!(
        dag["import_errors"],
        serde_json::json!({}),
        "the DAG folder imports cleanly"
    );
    assert_eq!(dag["dag_ids"], serde_json::json!(["wasmline_pipeline"]));
    assert_eq!(dag["schedule"], "@weekly");
    assert_eq!(dag["catchup"], false);
    let tasks = dag["tasks"].as_object().expect("tasks");
    assert_eq!(tasks.len(), STEPS.len(), "one task per step: {:?}", tasks.keys());
    for (i, step) in STEPS.iter().enumerate() {
        let task = &tasks[*step];
        assert_eq!(task["operator"], "BashOperator", "{step}");
        let upstream: Vec<&str> = STEPS[..i].last().into_iter().copied().collect();
        let downstream: Vec<&str> = STEPS.get(i + 1).into_iter().copied().collect();
        assert_eq!(
            task["upstream"],
            serde_json::json!(upstream),
            "{step} runs after {upstream:?}"
        );
        assert_eq!(
            task["downstream"],
            serde_json::json!(downstream),
            "{step} runs before {downstream:?}"
        );
        assert!(
            task["retries"].as_u64().unwrap() >= 1,
            "{step} retries: {}",
            task["retries"]
        );
        let command = task["command"].as_str().unwrap();
        assert!(
            command.contains(&format!("pipeline step {step} --run-id \"$run\"")),
            "{step} calls its step with the run id:\n{command}"
        );
        if *step != "ingest" {
            assert!(
                command.contains("WASMLINE_INGEST_RUN_ID"),
                "{step} continues ingest's run:\n{command}"
            );
        }
    }
}

#[test]
fn the_dag_run_makes_the_same_model_as_pipeline_run() {
    let airflow = Airflow::start();
    let s = Scratch::new();
    let config = logistic_config(&s);
    // No run id in the conf: ingest makes one from Airflow's and hands it on through XCom.
    let out = airflow.run_dag(&s.store(), &config, "{}");
    assert_ok("airflow dags test", &out);

    let runs: Vec<String> = std::fs::read_dir(s.store().join("runs"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        // Not the candidates' runs (`RUN.c01`, ...).
        .filter(|n| {
            !n.rsplit_once(".c")
                .is_some_and(|(_, k)| k.chars().all(|c| c.is_ascii_digit()))
        })
        .collect();
    assert_eq!(runs.len(), 1, "one pipeline run: {runs:?}");
    assert!(runs[0].starts_with("airflow-manual__"), "{runs:?}");
    let run = json_file(&s.store().join(format!("runs/{}/run.json", runs[0])));
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(
        run["steps"],
        serde_json::json!(*STEPS),
        "every step, in order, in one run"
    );
    let alias = json_file(&s.store().join("models/wine/aliases/production.json"));
    assert_eq!(alias["version"], 1, "the compare task promoted the first model");

    assert_eq!(
        model_digests(&s.store(), "wine"),
        reference_digests(&config),
        "the DAG's model IR and ONNX file are those of `wasmline pipeline run` on the same data"
    );
}

#[test]
fn a_dag_run_that_fails_mid_way_resumes_at_the_failed_step() {
    let airflow = Airflow::start();
    let s = Scratch::new();
    let config = logistic_config(&s);
    let run_id = "weekly-7";
    let conf = format!("{{\"run_id\": \"{run_id}\"}}");
    // The data steps ran (as the DAG's first five tasks would) ...
    for step in &STEPS[..5] {
        s.run(&[
            "pipeline",
            "step",
            step,
            "--run-id",
            run_id,
            "-c",
            config.to_str().unwrap(),
        ])
        .ok();
    }
    // ... then the training split disappears from the store.
    let record = json_file(&s.store().join("datasets/winequality-red/1.json"));
    let split = s.store().join(record["train"]["key"].as_str().unwrap());
    let aside = s.path().join("train-split");
    std::fs::rename(&split, &aside).unwrap();

    let failed = airflow.run_dag(&s.store(), &config, &conf);
    let log = text(&failed);
    assert!(!failed.status.success(), "the DAG run fails:\n{log}");
    for step in &STEPS[..5] {
        assert!(
            log.contains(&format!("{step:<9} up to date")),
            "{step} was a no-op:\n{log}"
        );
    }
    assert!(
        log.contains("Marking run") && log.contains("failed"),
        "Airflow marks the run failed:\n{log}"
    );
    assert!(!s.store().join("models").exists(), "nothing was registered");
    let steps_dir = s.store().join(format!("runs/{run_id}/steps"));
    let before: Vec<(String, Vec<u8>)> = STEPS[..5]
        .iter()
        .map(|st| {
            (
                st.to_string(),
                std::fs::read(steps_dir.join(format!("{st}.json"))).unwrap(),
            )
        })
        .collect();
    assert!(!steps_dir.join("train.json").exists(), "train did not finish");

    // The data is back: the rerun does nothing twice and resumes at train.
    std::fs::rename(&aside, &split).unwrap();
    let rerun = airflow.run_dag(&s.store(), &config, &conf);
    assert_ok("the rerun", &rerun);
    let log = text(&rerun);
    for (step, bytes) in &before {
        assert!(
            log.contains(&format!("{step:<9} up to date")),
            "{step} was a no-op:\n{log}"
        );
        assert_eq!(
            &std::fs::read(steps_dir.join(format!("{step}.json"))).unwrap(),
            bytes,
            "{step}'s record is untouched"
        );
    }
    for step in &STEPS[5..] {
        assert!(
            log.lines()
                .any(|l| l.contains(&format!("{step:<9} ")) && !l.contains("up to date")),
            "{step} ran:\n{log}"
        );
    }
    let run = json_file(&s.store().join(format!("runs/{run_id}/run.json")));
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["steps"], serde_json::json!(*STEPS));
    assert_eq!(
        model_digests(&s.store(), "wine"),
        reference_digests(&config),
        "the resumed run's model is the one an uninterrupted run makes"
    );
}

/// `scripts/ci/dev-to-test` in a scratch store, with the built binary.
fn dev_to_test(s: &Scratch, config: &Path, report: &Path) -> Output {
    Command::new(workspace_root().join("scripts/ci/dev-to-test"))
        .args([
            "--config",
            config.to_str().unwrap(),
            "--report",
            report.to_str().unwrap(),
        ])
        .current_dir(s.path())
        .env("WASMLINE_BIN", workspace_bin("wasmline"))
        .env("WASMLINE_STORE", s.store())
        .env_remove("WASMLINE_CONFIG")
        .env_remove("WASMLINE_DVC_FILE")
        .env_remove("WASMLINE_CI_ALIAS")
        .output()
        .expect("run scripts/ci/dev-to-test")
}

#[test]
fn the_dev_to_test_gate_fails_a_worse_candidate_and_never_moves_production() {
    let s = Scratch::new();
    let report = s.path().join("report.md");
    let good = logistic_config(&s);
    let alias = |name: &str| json_file(&s.store().join(format!("models/wine/aliases/{name}.json")))["version"].clone();

    // No production model yet: the first candidate passes, and production stays unset.
    let out = dev_to_test(&s, &good, &report);
    assert_ok("dev-to-test (first)", &out);
    let md = std::fs::read_to_string(&report).unwrap();
    assert!(md.contains("no baseline yet"), "{md}");
    assert!(
        !s.store().join("models/wine/aliases/production.json").exists(),
        "a PR never promotes"
    );
    assert_eq!(alias("candidate"), 1);

    // Production is what the pipeline promotes on master (the bundled config's alias).
    s.run(&["models", "promote", "wine", "1"]).ok();
    assert_eq!(alias("production"), 1);

    // A one-split tree is worse than the logistic regression: exit 1, and the report says why.
    let worse = with_training(
        &s,
        "winequality",
        "stump",
        &train_section("wine", "f1", "decision_tree", "max_depth = [1]"),
    );
    let out = dev_to_test(&s, &worse, &report);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a worse candidate fails the gate:\n{}",
        text(&out)
    );
    let md = std::fs::read_to_string(&report).unwrap();
    assert!(md.contains("wine@2") || md.contains("version 2"), "{md}");
    assert!(md.to_lowercase().contains("worse"), "{md}");
    assert_eq!(alias("production"), 1, "production did not move");
    assert_eq!(
        alias("candidate"),
        1,
        "the pipeline's own gate kept the better candidate too"
    );

    // A config that names a missing file is an error (2), not a verdict.
    let out = dev_to_test(&s, &s.path().join("missing.toml"), &report);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    // The copy of the config the script writes is gone afterwards.
    let leftovers: Vec<_> = std::fs::read_dir(s.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(".ci-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// The two-space-indented job ids under `jobs:` of a workflow file.
fn workflow_jobs(workflow: &str) -> Vec<String> {
    let text = std::fs::read_to_string(workspace_root().join(".github/workflows").join(workflow)).unwrap();
    let mut jobs = Vec::new();
    let mut in_jobs = false;
    for line in text.lines() {
        if !line.starts_with(' ') && !line.is_empty() {
            in_jobs = line.trim_end() == "jobs:";
        } else if in_jobs
            && let Some(id) = line.strip_prefix("  ").and_then(|l| l.strip_suffix(':'))
            && !id.starts_with([' ', '#'])
        {
            jobs.push(id.to_owned());
        }
    }
    jobs
}

#[test]
fn github_setup_dry_run_protects_each_branch_with_its_workflows_jobs() {
    let out = Command::new(workspace_root().join("scripts/github-setup"))
        .args(["--dry-run", "--repo", "acme/wasmline", "--from", "main"])
        .env_remove("GITHUB_TOKEN")
        .env_remove("GH_TOKEN")
        .output()
        .expect("run scripts/github-setup");
    assert_ok("github-setup --dry-run", &out);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let api = "https://api.github.com/repos/acme/wasmline";
    assert!(
        stdout.starts_with(&format!("GET {api}/git/ref/heads/main\n")),
        "{stdout}"
    );

    // The calls, each a line `METHOD URL` and maybe a JSON body after it.
    let mut calls: Vec<(String, serde_json::Value)> = Vec::new();
    let mut body = String::new();
    for line in stdout.lines() {
        if line.starts_with("GET ") || line.starts_with("POST ") || line.starts_with("PUT ") {
            if let Some(last) = calls.last_mut()
                && !body.is_empty()
            {
                last.1 = serde_json::from_str(&body).unwrap();
            }
            body.clear();
            calls.push((line.to_owned(), serde_json::Value::Null));
        } else {
            body.push_str(line);
            body.push('\n');
        }
    }
    if let Some(last) = calls.last_mut() {
        last.1 = serde_json::from_str(&body).unwrap();
    }

    for (branch, workflow, jobs) in [
        (
            "dev",
            "feature-to-dev.yml",
            vec!["fmt", "clippy", "test", "wasm32", "deny", "lint-workflows"],
        ),
        ("test", "dev-to-test.yml", vec!["retrain-and-compare"]),
        ("master", "test-to-master.yml", vec!["test", "compose", "images"]),
    ] {
        assert_eq!(workflow_jobs(workflow), jobs, "the jobs of {workflow}");
        let create = calls
            .iter()
            .find(|(c, b)| c == &format!("POST {api}/git/refs") && b["ref"] == format!("refs/heads/{branch}"))
            .unwrap_or_else(|| panic!("{branch} is created:\n{stdout}"));
        assert_eq!(create.1["sha"], "<sha of main>");
        let (_, protection) = calls
            .iter()
            .find(|(c, _)| c == &format!("PUT {api}/branches/{branch}/protection"))
            .unwrap_or_else(|| panic!("{branch} is protected:\n{stdout}"));
        let checks: Vec<&str> = protection["required_status_checks"]["checks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["context"].as_str().unwrap())
            .collect();
        assert_eq!(checks, jobs, "{branch} requires every job of {workflow}");
        assert_eq!(protection["required_status_checks"]["strict"], true);
        assert_eq!(
            protection["required_pull_request_reviews"]["required_approving_review_count"],
            1
        );
        assert_eq!(protection["allow_force_pushes"], false, "{branch}: no force-push");
        assert_eq!(protection["allow_deletions"], false);
        assert_eq!(protection["enforce_admins"], true);
    }
    assert_eq!(
        calls.len(),
        1 + 3 + 3,
        "one GET, three branches, three protections:\n{stdout}"
    );

    // Without --dry-run and without a token it refuses, before any call.
    let out = Command::new(workspace_root().join("scripts/github-setup"))
        .args(["--repo", "acme/wasmline"])
        .env_remove("GITHUB_TOKEN")
        .env_remove("GH_TOKEN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("GITHUB_TOKEN"), "{}", text(&out));
}

#[test]
fn the_workflows_lint_clean_and_pin_every_action() {
    let out = Command::new(workspace_root().join("scripts/ci/lint-workflows"))
        .output()
        .expect("run scripts/ci/lint-workflows");
    assert_ok("scripts/ci/lint-workflows", &out);
    // The linter's own rule, checked on a bad file: a tag instead of a SHA is refused.
    let dir = tempfile::tempdir().unwrap();
    let workflows = dir.path().join(".github/workflows");
    std::fs::create_dir_all(&workflows).unwrap();
    std::fs::create_dir_all(dir.path().join("scripts/ci")).unwrap();
    std::fs::create_dir_all(dir.path().join("scripts/lib")).unwrap();
    for f in [
        "scripts/ci/lint-workflows",
        "scripts/lib/tools.sh",
        "scripts/requirements-lint.txt",
    ] {
        std::fs::copy(workspace_root().join(f), dir.path().join(f)).unwrap();
    }
    std::fs::write(
        workflows.join("bad.yml"),
        "name: bad\non: push\npermissions:\n  contents: read\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    steps:\n      - uses: dtolnay/rust-toolchain@stable\n        with:\n          toolchain: stable\n",
    )
    .unwrap();
    let out = Command::new(dir.path().join("scripts/ci/lint-workflows"))
        .output()
        .unwrap();
    assert!(!out.status.success(), "a tag-pinned action fails the lint");
    assert!(text(&out).contains("not pinned by commit SHA"), "{}", text(&out));
}
