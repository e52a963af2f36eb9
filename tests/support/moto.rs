//! A `moto_server` child process for tests that talk to S3, SQS, DynamoDB, SNS or CloudWatch.
//!
//! Each [`Moto`] is its own server on a free loopback port, killed when the value is dropped, so
//! tests do not share state. Inside one server, use [`unique_name`] for buckets, queues and tables.

use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;

/// How long moto may take to answer its first request (it starts in about 0.5 s when warm).
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// A running `moto_server`, killed on drop.
pub struct Moto {
    child: Child,
    port: u16,
    /// Keeps moto's output for the failure message if it never becomes ready.
    log: tempfile::NamedTempFile,
}

impl Moto {
    /// Starts `moto_server -H 127.0.0.1 -p 0` and waits until it answers. The server binds the port
    /// itself and logs it: a free port picked here and handed over could be taken by another process
    /// in between (tests start servers all the time), and moto would exit or, worse, the test would
    /// talk to the other process's server.
    ///
    /// # Panics
    /// When `moto_server` is not installed (the message says how to install it), or when it does
    /// not answer within a minute (the message includes its output).
    pub fn start() -> Self {
        let log = tempfile::NamedTempFile::new().expect("a temporary file for moto's log");
        let log_out = log.reopen().expect("reopen the log file");
        let log_err = log.reopen().expect("reopen the log file");
        let child = match Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::from(log_out))
            .stderr(Stdio::from(log_err))
            .spawn()
        {
            Ok(child) => child,
            Err(e) if e.kind() == ErrorKind::NotFound => panic!(
                "moto_server is not installed; these tests need it: pip install \"moto[server]==5.2.1\""
            ),
            Err(e) => panic!("cannot start moto_server: {e}"),
        };
        let mut moto = Self { child, port: 0, log };
        moto.wait_until_ready();
        moto
    }

    /// The server's process id (the benchmarks sample its CPU time).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// SDK configuration for this server: static test credentials, region us-east-1, standard retries.
    /// Build S3 clients with [`Moto::s3_client`] (path-style addressing).
    pub async fn sdk_config(&self) -> SdkConfig {
        aws_config::defaults(BehaviorVersion::latest())
            .endpoint_url(self.endpoint())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("test", "test", None, None, "moto-test"))
            .load()
            .await
    }

    /// An S3 client with `force_path_style`, which moto needs on 127.0.0.1.
    pub async fn s3_client(&self) -> aws_sdk_s3::Client {
        let config = self.sdk_config().await;
        aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&config)
                .force_path_style(true)
                .build(),
        )
    }

    /// Creates a bucket with a unique name and returns the name.
    pub async fn bucket(&self, s3: &aws_sdk_s3::Client, prefix: &str) -> String {
        let name = unique_name(prefix);
        s3.create_bucket()
            .bucket(&name)
            .send()
            .await
            .expect("create a bucket in moto");
        name
    }

    fn wait_until_ready(&mut self) {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("poll moto_server") {
                panic!(
                    "moto_server exited with {status} before answering:\n{}",
                    self.log_text()
                );
            }
            if self.port == 0 {
                self.port = bound_port(&self.log_text()).unwrap_or(0);
            }
            if self.port != 0 && answers(SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))) {
                return;
            }
            if started.elapsed() > STARTUP_TIMEOUT {
                panic!(
                    "moto_server did not answer on port {} within {STARTUP_TIMEOUT:?}:\n{}",
                    self.port,
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn log_text(&self) -> String {
        let mut text = String::new();
        if let Ok(mut file) = File::open(self.log.path()) {
            let _ = file.read_to_string(&mut text);
        }
        text
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether `GET /moto-api/data.json` gets an HTTP 200.
fn answers(address: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&address, Duration::from_millis(500)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let request = format!("GET /moto-api/data.json HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.") && &head[9..12] == b"200"
}

/// The port in moto's startup line (` * Running on http://127.0.0.1:<port>`), once it is logged.
fn bound_port(log: &str) -> Option<u16> {
    const MARK: &str = "Running on http://127.0.0.1:";
    let rest = &log[log.find(MARK)? + MARK.len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// `prefix-<12 hex>`: lowercase and short enough for bucket, queue and table names.
pub fn unique_name(prefix: &str) -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}-{}", &id[..12])
}

/// The child's stdout lines, read on a thread (its stdout must be piped).
pub fn lines_of(child: &mut Child) -> std::sync::mpsc::Receiver<String> {
    use std::io::BufRead as _;
    let stdout = child.stdout.take().expect("stdout piped");
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}
