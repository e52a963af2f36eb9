//! The health endpoint: `/healthz` (the process answers) and `/readyz` (its queue and table answer).
//!
//! Readiness probes are cheap calls with a timeout; their verdict is cached for a few seconds so that
//! frequent load-balancer checks do not turn into a stream of AWS calls, and concurrent checks share
//! one probe round.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json};
use axum::routing::get;
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::Mutex;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::intake::sqs::SqsIntake;
use crate::store::StateStore;

/// A dependency that must answer for the process to be ready.
#[async_trait::async_trait]
pub trait Probe: Send + Sync {
    /// Shown in the readiness report (`queue`, `table`).
    fn name(&self) -> &str;
    /// One cheap call; the error text is reported.
    async fn probe(&self) -> Result<(), String>;
}

/// Probes the state store with [`StateStore::ping`].
pub struct StoreProbe(pub Arc<dyn StateStore>);

#[async_trait::async_trait]
impl Probe for StoreProbe {
    fn name(&self) -> &str {
        "table"
    }

    async fn probe(&self) -> Result<(), String> {
        self.0.ping().await.map_err(|e| e.to_string())
    }
}

#[async_trait::async_trait]
impl Probe for SqsIntake {
    fn name(&self) -> &str {
        "queue"
    }

    async fn probe(&self) -> Result<(), String> {
        self.ping().await.map_err(|e| e.to_string())
    }
}

/// One probe's verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub name: String,
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Every probe's verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReadinessReport {
    pub ready: bool,
    /// The first failure, for a one-line answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub checks: Vec<Check>,
}

/// Runs the probes, with a timeout each, and caches the report.
pub struct Readiness {
    probes: Vec<Arc<dyn Probe>>,
    cache_for: Duration,
    timeout: Duration,
    /// The last report and when it was made; the lock is held while probing so callers share a round.
    cached: Mutex<Option<(Instant, ReadinessReport)>>,
}

impl Readiness {
    pub fn new(probes: Vec<Arc<dyn Probe>>, cache_for: Duration, timeout: Duration) -> Self {
        Self {
            probes,
            cache_for,
            timeout,
            cached: Mutex::new(None),
        }
    }

    /// The current report: cached if younger than `cache_for`, else a new probe round.
    pub async fn check(&self) -> ReadinessReport {
        let mut cached = self.cached.lock().await;
        if let Some((at, report)) = cached.as_ref()
            && at.elapsed() < self.cache_for
        {
            return report.clone();
        }
        let rounds = self.probes.iter().map(|p| async move {
            let error = match tokio::time::timeout(self.timeout, p.probe()).await {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(e),
                Err(_) => Some(format!("no answer within {:?}", self.timeout)),
            };
            Check {
                name: p.name().to_string(),
                ok: error.is_none(),
                error,
            }
        });
        let checks = futures::future::join_all(rounds).await;
        let reason = checks
            .iter()
            .find(|c| !c.ok)
            .map(|c| format!("{}: {}", c.name, c.error.as_deref().unwrap_or("failed")));
        let report = ReadinessReport {
            ready: reason.is_none(),
            reason,
            checks,
        };
        if !report.ready {
            tracing::warn!(reason = report.reason.as_deref().unwrap_or(""), "not ready");
        }
        *cached = Some((Instant::now(), report.clone()));
        report
    }
}

async fn healthz() -> impl IntoResponse {
    Json(serde_json::json!({ "status": "alive" }))
}

async fn readyz(State(readiness): State<Arc<Readiness>>) -> impl IntoResponse {
    let report = readiness.check().await;
    let status = if report.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(report))
}

/// The routes: `GET /healthz`, `GET /readyz`.
pub fn router(readiness: Arc<Readiness>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(readiness)
}

/// Serves the health routes on `listener` until `shutdown` is cancelled.
///
/// # Errors
/// The server's I/O error.
pub async fn serve(
    listener: TcpListener,
    readiness: Arc<Readiness>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router(readiness))
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    struct Switch {
        name: &'static str,
        up: AtomicBool,
        hang: AtomicBool,
        calls: AtomicUsize,
    }

    impl Switch {
        fn new(name: &'static str) -> Arc<Self> {
            Arc::new(Self {
                name,
                up: AtomicBool::new(true),
                hang: AtomicBool::new(false),
                calls: AtomicUsize::new(0),
            })
        }
    }

    #[async_trait::async_trait]
    impl Probe for Switch {
        fn name(&self) -> &str {
            self.name
        }

        async fn probe(&self) -> Result<(), String> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            if self.hang.load(Ordering::SeqCst) {
                std::future::pending::<()>().await;
            }
            if self.up.load(Ordering::SeqCst) {
                Ok(())
            } else {
                Err("connection refused".into())
            }
        }
    }

    fn readiness(queue: &Arc<Switch>, table: &Arc<Switch>, cache_for: Duration) -> Readiness {
        Readiness::new(
            vec![queue.clone() as Arc<dyn Probe>, table.clone() as Arc<dyn Probe>],
            cache_for,
            Duration::from_millis(50),
        )
    }

    #[tokio::test]
    async fn reports_are_cached() {
        let (queue, table) = (Switch::new("queue"), Switch::new("table"));
        let r = readiness(&queue, &table, Duration::from_secs(3600));
        assert!(r.check().await.ready);
        table.up.store(false, Ordering::SeqCst);
        assert!(r.check().await.ready, "cached");
        assert_eq!(table.calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn stale_reports_are_refreshed() {
        let (queue, table) = (Switch::new("queue"), Switch::new("table"));
        let r = readiness(&queue, &table, Duration::ZERO);
        assert!(r.check().await.ready);
        table.up.store(false, Ordering::SeqCst);
        let report = r.check().await;
        assert!(!report.ready);
        assert_eq!(report.reason.as_deref(), Some("table: connection refused"));
        assert_eq!(
            report.checks[0],
            Check {
                name: "queue".into(),
                ok: true,
                error: None
            }
        );
        assert_eq!(table.calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_hanging_dependency_times_out() {
        let (queue, table) = (Switch::new("queue"), Switch::new("table"));
        queue.hang.store(true, Ordering::SeqCst);
        let report = readiness(&queue, &table, Duration::ZERO).check().await;
        assert!(!report.ready);
        assert!(
            report
                .reason
                .expect("reason")
                .starts_with("queue: no answer within")
        );
    }

    async fn get(address: std::net::SocketAddr, path: &str) -> (u16, serde_json::Value) {
        let mut stream = tokio::net::TcpStream::connect(address).await.expect("connect");
        let request = format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.expect("write");
        let mut response = String::new();
        stream.read_to_string(&mut response).await.expect("read");
        let status = response[9..12].parse().expect("status code");
        let body = response.split("\r\n\r\n").nth(1).expect("body");
        (status, serde_json::from_str(body).expect("JSON body"))
    }

    #[tokio::test]
    async fn serves_liveness_and_readiness_over_http() {
        let (queue, table) = (Switch::new("queue"), Switch::new("table"));
        let r = Arc::new(Readiness::new(
            vec![queue.clone() as Arc<dyn Probe>, table.clone() as Arc<dyn Probe>],
            Duration::ZERO,
            Duration::from_secs(2),
        ));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        let stop = CancellationToken::new();
        let server = tokio::spawn(serve(listener, r, stop.clone()));

        assert_eq!(
            get(address, "/healthz").await,
            (200, serde_json::json!({"status": "alive"}))
        );
        let (status, body) = get(address, "/readyz").await;
        assert_eq!((status, body["ready"].clone()), (200, serde_json::json!(true)));
        table.up.store(false, Ordering::SeqCst);
        let (status, body) = get(address, "/readyz").await;
        assert_eq!(status, 503);
        assert_eq!(body["reason"], "table: connection refused");
        assert_eq!(body["checks"][1]["error"], "connection refused");

        stop.cancel();
        server.await.expect("task").expect("clean shutdown");
    }
}
