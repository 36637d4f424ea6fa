//! End-to-end tests: the `wasmline` binary run as a user runs it, against real servers.

mod api;
mod architecture;
mod browser;
mod cicd;
mod cli;
mod dvc;
mod edge;
mod faults;
mod gbdt;
mod monitoring;
mod parquet;
mod runs;
mod train;
mod web;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::LazyLock;
use std::time::Duration;

use tests::process::ChildGuard;
use tests::{examples_dir, workspace_bin};
use wasmline::StepName;

/// The pipeline's steps in order, as `wasmline pipeline run` runs them: the control plane's own
/// list, so the CLI's output and the Airflow DAG are checked against what the pipeline runs.
pub static STEPS: LazyLock<[&str; StepName::ALL.len()]> = LazyLock::new(|| StepName::ALL.map(StepName::as_str));

/// A `wasmline-edge` process and where it listens.
#[derive(Debug)]
pub struct Edge {
    pub guard: ChildGuard,
    pub addr: String,
    pub node: String,
}

impl Edge {
    /// Starts `wasmline-edge` as `node` at `addr`, following `control_plane` (`host:port`) for
    /// `models`, with its cache in the scratch directory, polls, telemetry and backoff in seconds,
    /// and its log in `{node}-{run}.log`; `configure` adds what the test needs (the token, flags).
    /// Returns once `/v2/health/ready` answers 200: every model loaded.
    pub fn start(
        s: &Scratch,
        node: &str,
        run: usize,
        control_plane: &str,
        models: &str,
        addr: &str,
        configure: impl FnOnce(&mut Command),
    ) -> Edge {
        let mut cmd = Command::new(workspace_bin("wasmline-edge"));
        cmd.args(["--control-plane", &format!("http://{control_plane}")])
            .args(["--models", models, "--node-id", node, "--addr", addr])
            .args(["--cache-dir", s.path().join(node).to_str().unwrap()])
            .args([
                "--poll-interval",
                "2",
                "--telemetry-interval",
                "1",
                "--max-backoff",
                "1",
            ]);
        configure(&mut cmd);
        let mut guard = ChildGuard::spawn(node, cmd, &s.path().join(format!("{node}-{run}.log")));
        let addr = guard.wait_for_listening();
        let url = format!("http://{addr}/v2/health/ready");
        guard.wait_until(Duration::from_secs(60), || {
            ureq::get(&url).call().is_ok_and(|r| r.status() == 200)
        });
        Edge {
            guard,
            addr,
            node: node.to_owned(),
        }
    }
}

/// A scratch directory with a store, and a way to run `wasmline` in it.
#[derive(Debug, Default)]
pub struct Scratch {
    pub dir: Dir,
    pub env: Vec<(String, String)>,
}

impl Scratch {
    pub fn new() -> Scratch {
        Scratch::default()
    }

    pub fn path(&self) -> &Path {
        self.dir.0.path()
    }

    pub fn store(&self) -> PathBuf {
        self.path().join("store")
    }

    /// Runs `wasmline ARGS` in the scratch directory with the local store.
    pub fn run(&self, args: &[&str]) -> Run {
        let store = self.store();
        self.run_with_store(store.to_str().expect("utf-8 path"), args)
    }

    pub fn run_with_store(&self, store: &str, args: &[&str]) -> Run {
        let output = Command::new(workspace_bin("wasmline"))
            .current_dir(self.path())
            .env("WASMLINE_STORE", store)
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env_remove("AWS_ENDPOINT_URL")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .args(args)
            .output()
            .expect("run wasmline");
        Run(output)
    }

    /// Writes a file into the scratch directory and returns its path.
    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.path().join(name);
        std::fs::write(&path, contents).expect("write file");
        path
    }

    /// A copy of a bundled example's pipeline.toml with its source replaced, written here.
    pub fn example_config(&self, example: &str, source: &str) -> PathBuf {
        let text = std::fs::read_to_string(examples_dir().join(example).join("pipeline.toml")).expect("example");
        let original = text
            .lines()
            .find(|l| l.starts_with("source = "))
            .expect("a source line")
            .to_owned();
        let text = text.replace(&original, &format!("source = {source:?}"));
        self.write(&format!("{example}.toml"), &text)
    }

    /// Like [`Scratch::example_config`], without the `[train]` section: the data steps only.
    pub fn example_data_config(&self, example: &str, source: &str) -> PathBuf {
        let path = self.example_config(example, source);
        let text = std::fs::read_to_string(&path).expect("config");
        let data_only = text.split("\n[train]").next().expect("text").to_owned();
        std::fs::write(&path, data_only).expect("write config");
        path
    }

    /// The bundled example's own data file, as an absolute path.
    pub fn example_data(example: &str) -> String {
        let dir = examples_dir().join(example);
        let csv = std::fs::read_dir(&dir)
            .expect("example folder")
            .flatten()
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|e| e == "csv"))
            .expect("a csv file");
        csv.display().to_string()
    }

    /// Every file in the store below `prefix`, relative to the store.
    pub fn store_files(&self, prefix: &str) -> Vec<String> {
        let mut out = Vec::new();
        let root = self.store();
        let mut stack = vec![root.join(prefix)];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else { continue };
            for e in entries.flatten() {
                if e.path().is_dir() {
                    stack.push(e.path());
                } else {
                    out.push(e.path().strip_prefix(&root).unwrap().display().to_string());
                }
            }
        }
        out.sort();
        out
    }
}

/// A temporary directory (a newtype so [`Scratch`] can derive `Default`).
#[derive(Debug)]
pub struct Dir(tempfile::TempDir);

impl Default for Dir {
    fn default() -> Self {
        Dir(tempfile::tempdir().expect("tempdir"))
    }
}

/// The output of one `wasmline` run.
#[derive(Debug)]
pub struct Run(pub Output);

impl Run {
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.0.stdout).into_owned()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.0.stderr).into_owned()
    }

    /// Asserts success and returns stdout.
    #[track_caller]
    pub fn ok(&self) -> String {
        assert!(
            self.0.status.success(),
            "wasmline failed ({}):\nstdout:\n{}\nstderr:\n{}",
            self.0.status,
            self.stdout(),
            self.stderr()
        );
        self.stdout()
    }

    /// Asserts failure with exit code 1 and returns stderr.
    #[track_caller]
    pub fn fails(&self) -> String {
        assert_eq!(
            self.0.status.code(),
            Some(1),
            "wasmline should have failed:\nstdout:\n{}\nstderr:\n{}",
            self.stdout(),
            self.stderr()
        );
        self.stderr()
    }
}

/// Runs a program to success and returns its stdout.
#[track_caller]
pub fn sh(dir: &Path, program: &str, args: &[&str], env: &[(String, String)]) -> String {
    let output = Command::new(tests::process::find_program(program))
        .current_dir(dir)
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(
        output.status.success(),
        "{program} {args:?} failed:\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}
