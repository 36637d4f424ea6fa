//! Real servers for tests.

use std::net::SocketAddr;
use std::path::Path;
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
        cmd.args(["-m", "http.server", "--bind", "127.0.0.1", &port.to_string(), "--directory"])
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
