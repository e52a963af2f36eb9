//! `personalize-ops healthcheck`: asks the daemon's `/healthz` and exits 0 when healthy, for
//! container health checks in an image without curl or a shell.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{Context, EXIT_FAILURE};

/// The whole check (connect, request, answer) is bounded by this; orchestrators give a health
/// check command a few seconds at most.
const DEADLINE: Duration = Duration::from_secs(2);

/// The status line and headers of `/healthz` are short; more than this is not our endpoint.
const MAX_RESPONSE: u64 = 64 * 1024;

/// Arguments of `healthcheck`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The endpoint to ask (plain HTTP); healthy means a 200 answer within 2 seconds.
    #[arg(long, default_value = "http://127.0.0.1:8080/healthz", value_name = "URL")]
    pub url: String,
}

/// Exits 0 when the endpoint answers 200 in time, 1 otherwise (the reason on stderr).
pub async fn run(args: Args, _ctx: &Context) -> anyhow::Result<ExitCode> {
    match tokio::time::timeout(DEADLINE, status_of(&args.url)).await {
        Ok(Ok(200)) => Ok(ExitCode::SUCCESS),
        Ok(Ok(code)) => {
            eprintln!("personalize-ops healthcheck: {} answered HTTP {code}", args.url);
            Ok(ExitCode::from(EXIT_FAILURE))
        }
        Ok(Err(e)) => {
            eprintln!("personalize-ops healthcheck: {}: {e:#}", args.url);
            Ok(ExitCode::from(EXIT_FAILURE))
        }
        Err(_) => {
            eprintln!(
                "personalize-ops healthcheck: {} did not answer within {DEADLINE:?}",
                args.url
            );
            Ok(ExitCode::from(EXIT_FAILURE))
        }
    }
}

/// The HTTP status code of `GET url` (HTTP/1.1, `Connection: close`).
async fn status_of(url: &str) -> anyhow::Result<u16> {
    let parsed = url::Url::parse(url).context("not a URL")?;
    if parsed.scheme() != "http" {
        bail!("only http:// URLs are supported (the health endpoint is plain HTTP)");
    }
    let host = parsed.host_str().context("the URL has no host")?;
    let port = parsed.port_or_known_default().unwrap_or(80);
    let mut path = parsed.path().to_string();
    if let Some(query) = parsed.query() {
        path = format!("{path}?{query}");
    }
    let mut stream = tokio::net::TcpStream::connect((host, port))
        .await
        .with_context(|| format!("cannot connect to {host}:{port}"))?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .context("cannot send the request")?;
    let mut response = Vec::new();
    stream
        .take(MAX_RESPONSE)
        .read_to_end(&mut response)
        .await
        .context("cannot read the answer")?;
    parse_status(&response)
}

/// The code of an HTTP/1.x status line (`HTTP/1.1 200 OK`).
fn parse_status(response: &[u8]) -> anyhow::Result<u16> {
    let line_end = response
        .iter()
        .position(|&b| b == b'\n')
        .unwrap_or(response.len());
    let line = String::from_utf8_lossy(&response[..line_end]);
    let mut parts = line.split_whitespace();
    match (parts.next(), parts.next().map(str::parse::<u16>)) {
        (Some(version), Some(Ok(code))) if version.starts_with("HTTP/1.") => Ok(code),
        _ => bail!("not an HTTP answer: {:?}", line.trim_end()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_status_line() {
        assert_eq!(
            parse_status(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok").ok(),
            Some(200)
        );
        assert_eq!(
            parse_status(b"HTTP/1.0 503 Service Unavailable\r\n").ok(),
            Some(503)
        );
        assert!(parse_status(b"").is_err());
        assert!(parse_status(b"SSH-2.0-OpenSSH\r\n").is_err());
        assert!(parse_status(b"HTTP/1.1 abc\r\n").is_err());
    }
}
