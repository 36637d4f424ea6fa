//! Real servers for tests.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::process::{ChildGuard, find_program, free_port};

/// A static HTTP server (`python3 -m http.server`) serving a directory on 127.0.0.1.
#[derive(Debug)]
pub struct HttpServer {
    pub url: String,
    _child: ChildGuard,
    _logs: tempfile::TempDir,
}

impl HttpServer {
    pub fn start(dir: &Path) -> HttpServer {
        let port = free_port();
        let logs = tempfile::tempdir().expect("tempdir");
        let mut cmd = Command::new(find_program("python3"));
        cmd.args([
            "-m",
            "http.server",
            "--bind",
            "127.0.0.1",
            &port.to_string(),
            "--directory",
        ])
        .arg(dir);
        let mut child = ChildGuard::spawn("python3 -m http.server", cmd, &logs.path().join("http.log"));
        child.wait_for_port(SocketAddr::from(([127, 0, 0, 1], port)), Duration::from_secs(20));
        HttpServer {
            url: format!("http://127.0.0.1:{port}"),
            _child: child,
            _logs: logs,
        }
    }
}

/// The AWS_* variables a child process (`wasmline`, `dvc`, ...) needs to use an S3 server.
fn s3_env(endpoint: &str, access_key: &str, secret_key: &str) -> Vec<(String, String)> {
    [
        ("AWS_ACCESS_KEY_ID", access_key),
        ("AWS_SECRET_ACCESS_KEY", secret_key),
        ("AWS_REGION", "us-east-1"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
        ("AWS_ENDPOINT_URL", endpoint),
        ("AWS_ENDPOINT_URL_S3", endpoint),
        // boto (dvc) must not wait for an instance metadata service that is not there.
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// An S3 server keeping objects as files (`s3s-fs`), with credentials checked and one bucket
/// created. It does not serialise conditional writes: two racing `If-None-Match: *` puts can both
/// succeed, so race tests use [`MotoServer`].
#[derive(Debug)]
pub struct S3sFs {
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// A bucket that exists when `start` returns.
    pub bucket: String,
    pub access_key: String,
    pub secret_key: String,
    /// The server's root: one directory per bucket, one file per object.
    pub data_dir: PathBuf,
    _child: ChildGuard,
    _data: tempfile::TempDir,
    _logs: tempfile::TempDir,
}

impl S3sFs {
    pub fn start() -> S3sFs {
        let port = free_port();
        let data = tempfile::tempdir().expect("tempdir");
        let logs = tempfile::tempdir().expect("tempdir");
        let bucket = "wasmline-test".to_owned();
        std::fs::create_dir(data.path().join(&bucket)).expect("create bucket directory");
        let (access_key, secret_key) = ("wasmline-test-key".to_owned(), "wasmline-test-secret".to_owned());
        let mut cmd = Command::new(find_program("s3s-fs"));
        cmd.args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", &access_key, "--secret-key", &secret_key])
            .arg(data.path());
        let mut child = ChildGuard::spawn("s3s-fs", cmd, &logs.path().join("s3s-fs.log"));
        child.wait_for_port(SocketAddr::from(([127, 0, 0, 1], port)), Duration::from_secs(20));
        S3sFs {
            endpoint: format!("http://127.0.0.1:{port}"),
            bucket,
            access_key,
            secret_key,
            data_dir: data.path().to_owned(),
            _child: child,
            _data: data,
            _logs: logs,
        }
    }

    /// `s3://BUCKET`.
    pub fn url(&self) -> String {
        format!("s3://{}", self.bucket)
    }

    /// The AWS_* variables a child process needs to use this server.
    pub fn env(&self) -> Vec<(String, String)> {
        s3_env(&self.endpoint, &self.access_key, &self.secret_key)
    }
}

/// moto's S3 (`moto_server`), in memory. It accepts any credentials and starts with no buckets:
/// create [`MotoServer::bucket`] through the API (`S3Store::ensure_bucket`).
///
/// moto checks `If-None-Match` / `If-Match` and then writes, in a thread per connection, so two
/// racing conditional puts could both pass the check. It is started with one lock around its
/// request handler ([`MOTO_SERIAL`]): requests are answered one at a time, as AWS S3 serialises
/// conditional writes to one key, so exactly one of several racing conditional puts wins. s3s-fs
/// checks the conditions too but does not serialise them: races are tested on moto and on disk.
#[derive(Debug)]
pub struct MotoServer {
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// The bucket tests should use (not created yet).
    pub bucket: String,
    pub access_key: String,
    pub secret_key: String,
    _child: ChildGuard,
    _logs: tempfile::TempDir,
}

/// `moto_server` with its WSGI application behind one lock.
const MOTO_SERIAL: &str = r#"
import sys, threading
from moto.moto_server import werkzeug_app
lock = threading.Lock()
call = werkzeug_app.DomainDispatcherApplication.__call__
def serial(self, environ, start_response):
    with lock:
        return call(self, environ, start_response)
werkzeug_app.DomainDispatcherApplication.__call__ = serial
from moto.server import main
main(sys.argv[1:])
"#;

impl MotoServer {
    pub fn start() -> MotoServer {
        let port = free_port();
        let logs = tempfile::tempdir().expect("tempdir");
        let moto = find_program("moto_server");
        let python = moto.with_file_name("python3");
        let mut cmd = Command::new(if python.exists() {
            python
        } else {
            PathBuf::from("python3")
        });
        cmd.args(["-c", MOTO_SERIAL, "-H", "127.0.0.1", "-p", &port.to_string()]);
        let mut child = ChildGuard::spawn("moto_server", cmd, &logs.path().join("moto.log"));
        child.wait_for_port(SocketAddr::from(([127, 0, 0, 1], port)), Duration::from_secs(30));
        MotoServer {
            endpoint: format!("http://127.0.0.1:{port}"),
            bucket: "wasmline-test".to_owned(),
            access_key: "testing".to_owned(),
            secret_key: "testing".to_owned(),
            _child: child,
            _logs: logs,
        }
    }

    /// `s3://BUCKET`.
    pub fn url(&self) -> String {
        format!("s3://{}", self.bucket)
    }

    /// The AWS_* variables a child process needs to use this server.
    pub fn env(&self) -> Vec<(String, String)> {
        s3_env(&self.endpoint, &self.access_key, &self.secret_key)
    }
}

/// An MLflow tracking server (`mlflow server`) with a SQLite backend store and proxied artifacts
/// (`--artifacts-destination`), so runs get `mlflow-artifacts:/...` URIs and clients upload
/// through the server. Starting it takes 5-60 s (Python imports); share one per test binary.
///
/// MLflow's background job runner is off (`MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false`): it starts
/// seven `huey` processes and leaves a directory in /dev/shm per start. Telemetry is off too.
#[derive(Debug)]
pub struct MlflowServer {
    /// `http://127.0.0.1:PORT`, the tracking URI.
    pub url: String,
    /// Where uploaded artifacts land: `{experiment_id}/{run_id}/artifacts/...`.
    pub artifacts_dir: PathBuf,
    /// How long the server took to answer `/health`.
    pub startup: Duration,
    _child: ChildGuard,
    _dir: tempfile::TempDir,
}

impl MlflowServer {
    pub fn start() -> MlflowServer {
        let port = free_port();
        let dir = tempfile::tempdir().expect("tempdir");
        let artifacts_dir = dir.path().join("artifacts");
        let mut cmd = Command::new(find_program("mlflow"));
        cmd.arg("server")
            .arg("--backend-store-uri")
            .arg(format!("sqlite:///{}", dir.path().join("mlflow.db").display()))
            .arg("--artifacts-destination")
            .arg(&artifacts_dir)
            .args(["--host", "127.0.0.1", "--port", &port.to_string(), "--workers", "1"])
            .current_dir(dir.path())
            .env("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
            .env("MLFLOW_DISABLE_TELEMETRY", "true")
            .env("DO_NOT_TRACK", "true");
        let started = std::time::Instant::now();
        let mut child = ChildGuard::spawn("mlflow server", cmd, &dir.path().join("mlflow.log"));
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        child.wait_until(Duration::from_secs(120), || http_status(addr, "/health") == Some(200));
        MlflowServer {
            url: format!("http://127.0.0.1:{port}"),
            artifacts_dir,
            startup: started.elapsed(),
            _child: child,
            _dir: dir,
        }
    }
}

/// The status code of `GET path` on `addr` (HTTP/1.1, no body read), or `None` when nothing
/// answers within a second.
fn http_status(addr: SocketAddr, path: &str) -> Option<u16> {
    use std::io::{Read, Write};
    let timeout = Duration::from_secs(1);
    let mut stream = std::net::TcpStream::connect_timeout(&addr, timeout).ok()?;
    stream.set_read_timeout(Some(timeout)).ok()?;
    stream.set_write_timeout(Some(timeout)).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).ok()?;
    // "HTTP/1.1 200"
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

/// Prometheus (Debian's `prometheus`) with a config file the test writes, on 127.0.0.1, with its
/// data in a temporary directory. Ready when `/-/ready` answers 200 (its first scrape follows
/// within one scrape interval).
#[derive(Debug)]
pub struct Prometheus {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    _child: ChildGuard,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    /// Starts Prometheus with `config` (a prometheus.yml; rule files it names by absolute path).
    pub fn start(config: &Path) -> Prometheus {
        let port = free_port();
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cmd = Command::new(find_program("prometheus"));
        cmd.arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=warn");
        let mut child = ChildGuard::spawn("prometheus", cmd, &dir.path().join("prometheus.log"));
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        child.wait_until(Duration::from_secs(60), || http_status(addr, "/-/ready") == Some(200));
        Prometheus {
            url: format!("http://127.0.0.1:{port}"),
            _child: child,
            _dir: dir,
        }
    }
}

/// Alertmanager (Debian's `prometheus-alertmanager`) with a config file the test writes, on
/// 127.0.0.1, clustering off (it would listen on every interface).
#[derive(Debug)]
pub struct Alertmanager {
    /// `127.0.0.1:PORT`, as a Prometheus `alertmanagers` target.
    pub addr: String,
    _child: ChildGuard,
    _dir: tempfile::TempDir,
}

impl Alertmanager {
    pub fn start(config: &Path) -> Alertmanager {
        let port = free_port();
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cmd = Command::new(find_program("prometheus-alertmanager"));
        cmd.arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .arg("--log.level=warn");
        let mut child = ChildGuard::spawn("alertmanager", cmd, &dir.path().join("alertmanager.log"));
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        child.wait_until(Duration::from_secs(60), || http_status(addr, "/-/ready") == Some(200));
        Alertmanager {
            addr: format!("127.0.0.1:{port}"),
            _child: child,
            _dir: dir,
        }
    }
}
