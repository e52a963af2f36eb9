//! A loopback HTTP endpoint that answers its first requests with the HTML "500 Internal Server
//! Error" page moto's web server (werkzeug) sends when it breaks under load, then a fixed answer.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// werkzeug's `InternalServerError` page, byte for byte (`get_body()` of the installed werkzeug).
pub const MOTO_500_PAGE: &str = "<!doctype html>\n<html lang=en>\n<title>500 Internal Server Error</title>\n<h1>Internal Server Error</h1>\n<p>The server encountered an internal error and was unable to complete your request. Either the server is overloaded or there is an error in the application.</p>\n";

/// The endpoint; stops accepting when dropped.
pub struct HtmlErrors {
    addr: SocketAddr,
    requests: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for HtmlErrors {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl HtmlErrors {
    /// Answers the first `failures` requests with [`MOTO_500_PAGE`], every later one with 200,
    /// `content_type` and `body`.
    pub async fn start(failures: usize, content_type: &'static str, body: &'static str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("binds");
        let addr = listener.local_addr().expect("address");
        let requests = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&requests);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let counted = Arc::clone(&counted);
                tokio::spawn(async move {
                    let _ = serve(stream, &counted, failures, content_type, body).await;
                });
            }
        });
        Self { addr, requests, task }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests answered so far (every attempt, retries included).
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

/// Serves one keep-alive connection. Each request is read whole (head and `Content-Length` body)
/// before it is answered, so closing never resets a request the client is still sending.
async fn serve(
    mut stream: TcpStream,
    counted: &AtomicUsize,
    failures: usize,
    content_type: &str,
    body: &str,
) -> std::io::Result<()> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let head_end = loop {
            if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buffer.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buffer[..head_end]).to_ascii_lowercase();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        while buffer.len() < head_end + length {
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buffer.extend_from_slice(&chunk[..n]);
        }
        buffer.drain(..head_end + length);
        let answer = if counted.fetch_add(1, Ordering::SeqCst) < failures {
            format!(
                "HTTP/1.1 500 INTERNAL SERVER ERROR\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\n\r\n{MOTO_500_PAGE}",
                MOTO_500_PAGE.len()
            )
        } else {
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
        };
        stream.write_all(answer.as_bytes()).await?;
    }
}
