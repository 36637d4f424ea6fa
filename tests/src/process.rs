//! Child processes that die with their fixture.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free TCP port on 127.0.0.1 (the OS picks it; it is released before the server binds it).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// Finds `program` on `PATH`, or panics with a message that says how to install it.
pub fn find_program(program: &str) -> PathBuf {
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join(program);
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    panic!("`{program}` is not on PATH: run the tests through scripts/test, which installs it into ~/.cache/wasmline");
}

/// A child process in its own process group, killed (group and all) on drop. Its output goes to
/// a log file that is printed if the fixture fails to start.
#[derive(Debug)]
pub struct ChildGuard {
    child: Child,
    name: String,
    log: PathBuf,
}

impl ChildGuard {
    /// Spawns `cmd` in a new process group with stdout and stderr to `log`.
    pub fn spawn(name: &str, mut cmd: Command, log: &Path) -> ChildGuard {
        let out = std::fs::File::create(log).expect("create log file");
        let err = out.try_clone().expect("clone log file");
        cmd.stdin(Stdio::null()).stdout(out).stderr(err).process_group(0);
        let child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        ChildGuard {
            child,
            name: name.to_owned(),
            log: log.to_owned(),
        }
    }

    /// Waits until something accepts TCP connections on `addr`, or panics after `deadline` with
    /// the child's log.
    pub fn wait_for_port(&mut self, addr: SocketAddr, deadline: Duration) {
        self.wait_until(deadline, || {
            TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
        });
    }

    /// Polls `ready` every 100 ms until it holds, or panics after `deadline` with the child's log.
    pub fn wait_until(&mut self, deadline: Duration, mut ready: impl FnMut() -> bool) {
        let start = Instant::now();
        loop {
            if ready() {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "{} exited with {status} before it was ready:\n{}",
                    self.name,
                    self.log_text()
                );
            }
            if start.elapsed() > deadline {
                panic!("{} was not ready within {deadline:?}:\n{}", self.name, self.log_text());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until a line of the child's log gives `Some`, or panics after `deadline` with the log.
    pub fn wait_for_line<T>(&mut self, deadline: Duration, mut parse: impl FnMut(&str) -> Option<T>) -> T {
        let log = self.log.clone();
        let mut found = None;
        self.wait_until(deadline, || {
            found = std::fs::read_to_string(&log)
                .unwrap_or_default()
                .lines()
                .find_map(&mut parse);
            found.is_some()
        });
        found.expect("found")
    }

    /// Waits for the `listening on [http://]ADDR` line a server prints; its address (`host:port`).
    pub fn wait_for_listening(&mut self) -> String {
        self.wait_for_line(Duration::from_secs(60), |l| {
            let rest = l.strip_prefix("listening on ")?;
            Some(rest.trim_start_matches("http://").trim().to_owned())
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` to the child alone (not its group), e.g. `KILL` to crash it, `TERM` to
    /// stop it gracefully.
    pub fn signal(&self, signal: rustix::process::Signal) {
        let pid = rustix::process::Pid::from_raw(self.child.id() as i32).expect("a child's pid");
        rustix::process::kill_process(pid, signal).unwrap_or_else(|e| panic!("cannot signal {}: {e}", self.name));
    }

    /// Waits until the child exits, or panics after `deadline` with its log; its exit status.
    pub fn wait_exit(&mut self, deadline: Duration) -> std::process::ExitStatus {
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            if start.elapsed() > deadline {
                panic!("{} did not exit within {deadline:?}:\n{}", self.name, self.log_text());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        // The child leads its own process group (spawned with `process_group(0)`): signal the
        // whole group, so helpers it started die too, then reap the leader. The syscall is called
        // directly with the group id: an earlier version ran `kill -TERM -PGID`, which procps-ng's
        // kill read as `kill(-1)`, i.e. every process we may signal.
        let Some(pgid) = rustix::process::Pid::from_raw(self.child.id() as i32) else {
            return;
        };
        let _ = rustix::process::kill_process_group(pgid, rustix::process::Signal::TERM);
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = self.child.try_wait() {
                // The leader is gone; stragglers in its group get no second chance.
                let _ = rustix::process::kill_process_group(pgid, rustix::process::Signal::KILL);
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = rustix::process::kill_process_group(pgid, rustix::process::Signal::KILL);
        let _ = self.child.wait();
    }
}
