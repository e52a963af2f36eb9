//! The `personalize-ops` binary as a child process of a test: killed on drop, stderr kept in a file.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A daemon child process, killed on drop; its stderr goes to a file.
pub struct Process {
    pub child: Child,
    log: tempfile::NamedTempFile,
}

impl Process {
    /// Starts the binary with `args` and `env` added to the test's environment (less `RUST_LOG`).
    pub fn start(args: &[&str], env: &[(String, String)]) -> Self {
        let log = tempfile::NamedTempFile::new().expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_personalize-ops"))
            .args(args)
            .env_remove("RUST_LOG")
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log.reopen().expect("reopen log")))
            .spawn()
            .expect("start the binary");
        Self { child, log }
    }

    /// Everything it wrote to stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }

    /// Sends the signal `name` (`TERM`, `KILL`, …).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([format!("-{name}"), self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// Waits for the exit, at most `limit`.
    pub fn wait(&mut self, limit: Duration) -> Option<ExitStatus> {
        let started = Instant::now();
        while started.elapsed() < limit {
            if let Some(status) = self.child.try_wait().expect("poll child") {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// The port of the health endpoint, from the JSON log line "health endpoint listening".
    pub fn health_port(&self) -> Option<String> {
        self.log().lines().find_map(|l| {
            let line: serde_json::Value = serde_json::from_str(l).ok()?;
            if line["message"] != "health endpoint listening" {
                return None;
            }
            line["address"].as_str()?.rsplit(':').next().map(str::to_string)
        })
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// Kept here for the tests that import it from `process`; it lives in `moto.rs`, which the benchmarks
// include with the serial moto (`aws.rs`) and without this file.
#[allow(unused_imports)]
pub use super::moto::lines_of;

/// Runs the binary to its end with `args` and `env` added to the test's environment (less
/// `RUST_LOG`); its output. Without blocking the runtime: the built-in Personalize it talks to may
/// run on it.
pub async fn output(args: &[&str], env: &[(String, String)]) -> std::process::Output {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_personalize-ops"));
    command
        .args(args)
        .env_remove("RUST_LOG")
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null());
    tokio::time::timeout(Duration::from_secs(300), command.output())
        .await
        .expect("the command ends")
        .expect("the command runs")
}

/// Settings for fast local runs: short polls of every kind, a high call rate, a short lease.
pub fn fast_settings(dir: &Path) -> PathBuf {
    let mut text = String::from(
        "[personalize]\nimport_role_arn = \"arn:aws:iam::000000000000:role/personalize\"\n\
         [reconcile]\ncalls_per_second = 200.0\n\
         [daemon]\nlease_duration_secs = 3\nmax_clock_skew_secs = 1\n",
    );
    for kind in personalize_ops::settings::RECONCILE_KINDS {
        text.push_str(&format!(
            "[reconcile.kinds.{kind}]\npoll_min_secs = 0.1\npoll_max_secs = 0.5\n"
        ));
    }
    let path = dir.join("settings.toml");
    std::fs::write(&path, text).expect("settings");
    path
}

/// `GET path` on 127.0.0.1:`port`; the whole response.
pub fn http_get(port: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(format!("127.0.0.1:{port}")).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .expect("write");
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response
}
