//! A loopback TCP relay in front of a service, for chaos tests: it records which Personalize
//! operations pass through it (and when their answers come back), and it can be cut off to
//! simulate an outage of what is behind it (new connections refused, open ones dropped).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// What a relay saw and whether it lets traffic through.
#[derive(Default)]
struct Shared {
    /// Every `AmazonPersonalize.<Op>` request sent through, in order.
    ops: Mutex<Vec<String>>,
    /// Answers received to mutating operations (anything but Describe/List/Get).
    answered_mutating: AtomicUsize,
    down: AtomicBool,
    /// Cancelled to drop every open connection (a new token replaces it).
    cut: Mutex<CancellationToken>,
}

/// A relay on a free loopback port, forwarding to `upstream`; stops when dropped.
pub struct Relay {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: CancellationToken,
}

fn is_mutating(op: &str) -> bool {
    !["Describe", "List", "Get"].iter().any(|p| op.starts_with(p))
}

/// The operation names (`AmazonPersonalize.<Op>`) in `bytes`.
fn ops_in(bytes: &[u8]) -> Vec<String> {
    const MARK: &[u8] = b"AmazonPersonalize.";
    let mut found = Vec::new();
    let mut i = 0;
    while let Some(at) = bytes[i..].windows(MARK.len()).position(|w| w == MARK) {
        let start = i + at + MARK.len();
        let end = bytes[start..]
            .iter()
            .position(|b| !b.is_ascii_alphanumeric())
            .map_or(bytes.len(), |n| start + n);
        found.push(String::from_utf8_lossy(&bytes[start..end]).into_owned());
        i = end;
    }
    found
}

impl Relay {
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("relay binds");
        let addr = listener.local_addr().expect("relay address");
        let shared = Arc::new(Shared::default());
        let stop = CancellationToken::new();
        let (loop_shared, loop_stop) = (Arc::clone(&shared), stop.clone());
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    a = listener.accept() => a,
                    () = loop_stop.cancelled() => return,
                };
                let Ok((client, _)) = accepted else { continue };
                if loop_shared.down.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let cut = loop_shared.cut.lock().expect("lock").clone();
                tokio::spawn(relay(client, upstream, Arc::clone(&loop_shared), cut));
            }
        });
        Self { addr, shared, stop }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every Personalize operation requested through the relay so far, in order.
    pub fn ops(&self) -> Vec<String> {
        self.shared.ops.lock().expect("lock").clone()
    }

    /// The mutating operations among [`Relay::ops`] from index `from` on.
    pub fn mutating_since(&self, from: usize) -> Vec<String> {
        self.ops()
            .into_iter()
            .skip(from)
            .filter(|op| is_mutating(op))
            .collect()
    }

    /// Answers to mutating operations received so far.
    pub fn answered_mutating(&self) -> usize {
        self.shared.answered_mutating.load(Ordering::SeqCst)
    }

    /// Outage: open connections are dropped and new ones refused until [`Relay::restore`].
    pub fn cut_off(&self) {
        self.shared.down.store(true, Ordering::SeqCst);
        let mut cut = self.shared.cut.lock().expect("lock");
        cut.cancel();
        *cut = CancellationToken::new();
    }

    pub fn restore(&self) {
        self.shared.down.store(false, Ordering::SeqCst);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.cancel();
        self.shared.cut.lock().expect("lock").cancel();
    }
}

async fn relay(mut client: TcpStream, upstream: SocketAddr, shared: Arc<Shared>, cut: CancellationToken) {
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        return;
    };
    let (mut client_read, mut client_write) = client.split();
    let (mut server_read, mut server_write) = server.split();
    // Operations sent on this connection and not answered yet (HTTP/1.1 answers come in order).
    let in_flight: Mutex<std::collections::VecDeque<String>> = Mutex::default();
    let upstream_dir = async {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match client_read.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            let ops = ops_in(&buf[..n]);
            if !ops.is_empty() {
                shared.ops.lock().expect("lock").extend(ops.iter().cloned());
                in_flight.lock().expect("lock").extend(ops);
            }
            if server_write.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    };
    let downstream_dir = async {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match server_read.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            let answers = buf[..n].windows(9).filter(|w| w == b"HTTP/1.1 ").count();
            for _ in 0..answers {
                let op = in_flight.lock().expect("lock").pop_front();
                if op.as_deref().is_some_and(is_mutating) {
                    shared.answered_mutating.fetch_add(1, Ordering::SeqCst);
                }
            }
            if client_write.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    };
    tokio::select! {
        () = upstream_dir => {}
        () = downstream_dir => {}
        () = cut.cancelled() => {}
    }
}
