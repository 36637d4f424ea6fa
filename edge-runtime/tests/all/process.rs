//! A guard around a real `wasmline-edge` process, and blocking HTTP requests to it.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::support::eventually;

/// A `wasmline-edge` child process, killed on drop.
#[derive(Debug)]
pub struct Edge {
    child: Child,
    probe: Probe,
    stderr: Arc<std::sync::Mutex<Vec<String>>>,
}

/// Requests to an edge by base URL.
#[derive(Debug, Clone)]
pub struct Probe {
    pub base: String,
}

impl std::ops::Deref for Edge {
    type Target = Probe;

    fn deref(&self) -> &Probe {
        &self.probe
    }
}

impl Edge {
    /// Starts the binary with `args` (plus `--addr 127.0.0.1:0`) and waits for its
    /// `listening on` line.
    pub fn spawn(args: &[&str]) -> Edge {
        let mut child = Command::new(env!("CARGO_BIN_EXE_wasmline-edge"))
            .args(args)
            .args(["--addr", "127.0.0.1:0"])
            .env("RUST_LOG", "info")
            .env_remove("WASMLINE_EDGE_CONTROL_PLANE")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the edge binary starts");
        let stderr = Arc::new(std::sync::Mutex::new(Vec::new()));
        let lines = stderr.clone();
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                lines.lock().unwrap().push(line);
            }
        });
        let out = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("listening on ") {
                    let _ = tx.send(addr.trim().to_owned());
                }
            }
        });
        let mut edge = Edge {
            child,
            probe: Probe { base: String::new() },
            stderr,
        };
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(addr) => edge.probe.base = format!("http://{addr}"),
            Err(_) => panic!("the edge did not start:\n{}", edge.log()),
        }
        edge
    }

    /// Sends SIGTERM and waits for the process to exit.
    #[cfg(unix)]
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
        eventually("the edge to exit", Duration::from_secs(60), || {
            self.child.try_wait().unwrap()
        })
    }

    /// The process's log so far.
    pub fn log(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }
}

impl Probe {
    pub fn get(&self, path: &str) -> (u16, String) {
        http(agent().get(format!("{}{path}", self.base)).call())
    }

    pub fn post(&self, path: &str, body: &Value) -> (u16, String) {
        http(
            agent()
                .post(format!("{}{path}", self.base))
                .content_type("application/json")
                .send(body.to_string().as_bytes()),
        )
    }

    /// Posts `body` as it is (JSON, or what Python's json writes: NaN tokens included).
    pub fn post_text(&self, path: &str, body: &str) -> (u16, String) {
        http(
            agent()
                .post(format!("{}{path}", self.base))
                .content_type("application/json")
                .send(body.as_bytes()),
        )
    }

    /// Waits for `GET /v2/health/ready` to answer 200.
    pub fn wait_ready(&self) {
        eventually("the edge to be ready", Duration::from_secs(60), || {
            (self.get("/v2/health/ready").0 == 200).then_some(())
        });
    }

    /// The served version of `model`, from its metadata.
    pub fn served_version(&self, model: &str) -> Option<String> {
        let (status, body) = self.get(&format!("/v2/models/{model}"));
        (status == 200).then(|| {
            serde_json::from_str::<Value>(&body).unwrap()["versions"][0]
                .as_str()
                .unwrap()
                .to_owned()
        })
    }

    /// A metric's value (the first sample whose line starts with `prefix`).
    pub fn metric(&self, prefix: &str) -> Option<f64> {
        let (_, body) = self.get("/metrics");
        body.lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    }
}

impl Drop for Edge {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A client that returns 4xx and 5xx answers instead of errors, with a timeout.
pub fn agent() -> &'static ureq::Agent {
    static AGENT: std::sync::LazyLock<ureq::Agent> = std::sync::LazyLock::new(|| {
        ureq::Agent::new_with_config(
            ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_global(Some(Duration::from_secs(30)))
                .build(),
        )
    });
    &AGENT
}

/// Status and body of a blocking request; transport errors are status 0.
pub fn http(result: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> (u16, String) {
    match result {
        Ok(mut response) => {
            let status = response.status().as_u16();
            (status, response.body_mut().read_to_string().unwrap_or_default())
        }
        Err(ureq::Error::StatusCode(code)) => (code, String::new()),
        Err(_) => (0, String::new()),
    }
}
