//! The health endpoint: `/healthz` (the process and its background loops are alive) and `/readyz`
//! (its queue and table answer).
//!
//! Liveness: each background loop registered with [`Readiness::watch`] ticks a [`Liveness`] handle
//! every round; a loop that has not ticked for `stalled_periods` of its period makes `/healthz` answer
//! 503, so the orchestrator replaces a replica whose intake or reconciler is wedged.
//!
//! Readiness probes are cheap calls with a timeout; their verdict is cached for a few seconds so that
//! frequent load-balancer checks do not turn into a stream of AWS calls, and concurrent checks share
//! one probe round.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
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

use crate::locks::LockRecovering;
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
#[must_use]
pub struct ReadinessReport {
    pub ready: bool,
    /// The first failure, for a one-line answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub checks: Vec<Check>,
}

/// Periods a watched loop may miss before it counts as stalled, unless told otherwise.
pub const DEFAULT_STALLED_PERIODS: u32 = 3;

/// A background loop's heartbeat. The loop calls [`Liveness::tick`] every round; clones share it.
#[derive(Debug, Clone)]
pub struct Liveness {
    origin: Instant,
    /// Milliseconds from `origin` to the last tick.
    last_tick_ms: Arc<AtomicU64>,
}

impl Default for Liveness {
    fn default() -> Self {
        Self::new()
    }
}

impl Liveness {
    /// A handle that counts as ticked now.
    pub fn new() -> Self {
        Self {
            origin: Instant::now(),
            last_tick_ms: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The loop made progress.
    pub fn tick(&self) {
        let ms = u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_tick_ms.fetch_max(ms, Ordering::Relaxed);
    }

    /// Time since the last tick (or since the handle was made).
    pub fn since_last_tick(&self) -> Duration {
        let last = Duration::from_millis(self.last_tick_ms.load(Ordering::Relaxed));
        self.origin.elapsed().saturating_sub(last)
    }
}

/// One watched loop.
struct Watched {
    name: String,
    liveness: Liveness,
    period: Duration,
}

/// One loop's verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LoopCheck {
    pub name: String,
    pub alive: bool,
    pub since_last_tick_ms: u64,
    pub period_ms: u64,
}

/// Every watched loop's verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[must_use]
pub struct LivenessReport {
    pub alive: bool,
    /// The first stalled loop, for a one-line answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub loops: Vec<LoopCheck>,
}

/// Runs the probes, with a timeout each, and caches the report; tracks the watched loops.
pub struct Readiness {
    probes: Vec<Arc<dyn Probe>>,
    cache_for: Duration,
    timeout: Duration,
    /// The last report and when it was made; the lock is held while probing so callers share a round.
    cached: Mutex<Option<(Instant, ReadinessReport)>>,
    watched: std::sync::Mutex<Vec<Watched>>,
    stalled_periods: u32,
}

impl Readiness {
    pub fn new(probes: Vec<Arc<dyn Probe>>, cache_for: Duration, timeout: Duration) -> Self {
        Self {
            probes,
            cache_for,
            timeout,
            cached: Mutex::new(None),
            watched: std::sync::Mutex::new(Vec::new()),
            stalled_periods: DEFAULT_STALLED_PERIODS,
        }
    }

    /// A loop counts as stalled after `periods` periods without a tick (at least 1).
    pub fn with_stalled_periods(mut self, periods: u32) -> Self {
        self.stalled_periods = periods.max(1);
        self
    }

    /// Watches a background loop that ticks `liveness` about every `period`; `/healthz` fails once it
    /// has not ticked for `stalled_periods × period`. Returns the handle for convenience.
    pub fn watch(&self, name: impl Into<String>, liveness: Liveness, period: Duration) -> Liveness {
        let watched = Watched {
            name: name.into(),
            liveness: liveness.clone(),
            period,
        };
        self.watched.lock_recovering().push(watched);
        liveness
    }

    /// Whether every watched loop ticked recently enough.
    pub fn liveness(&self) -> LivenessReport {
        let watched = self.watched.lock_recovering();
        let millis = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let loops: Vec<LoopCheck> = watched
            .iter()
            .map(|w| {
                let since = w.liveness.since_last_tick();
                LoopCheck {
                    name: w.name.clone(),
                    alive: since <= w.period.saturating_mul(self.stalled_periods),
                    since_last_tick_ms: millis(since),
                    period_ms: millis(w.period),
                }
            })
            .collect();
        let reason = loops.iter().find(|l| !l.alive).map(|l| {
            format!(
                "{}: no progress for {} ms (period {} ms)",
                l.name, l.since_last_tick_ms, l.period_ms
            )
        });
        if let Some(reason) = &reason {
            tracing::warn!(%reason, "a background loop stalled");
        }
        LivenessReport {
            alive: reason.is_none(),
            reason,
            loops,
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

async fn healthz(State(readiness): State<Arc<Readiness>>) -> impl IntoResponse {
    let report = readiness.liveness();
    let mut body = serde_json::json!({ "status": if report.alive { "alive" } else { "stalled" } });
    if let Some(reason) = &report.reason {
        body["reason"] = serde_json::json!(reason);
    }
    if !report.loops.is_empty() {
        body["loops"] = serde_json::json!(report.loops);
    }
    let status = if report.alive {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body))
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

/// The routes: `GET /healthz` (watched loops), `GET /readyz` (probes).
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

    #[tokio::test]
    async fn a_loop_that_stops_ticking_fails_liveness_and_recovers_when_it_ticks() {
        let (queue, table) = (Switch::new("queue"), Switch::new("table"));
        let r = Arc::new(readiness(&queue, &table, Duration::ZERO).with_stalled_periods(3));
        // A slow loop that keeps ticking stays alive; a fast one that stops is stalled after 3 periods.
        let steady = r.watch("reconciler", Liveness::new(), Duration::from_secs(60));
        let intake = r.watch("intake", Liveness::new(), Duration::from_millis(20));
        steady.tick();
        assert!(r.liveness().alive);
        tokio::time::sleep(Duration::from_millis(100)).await;
        let report = r.liveness();
        assert!(!report.alive);
        let reason = report.reason.expect("reason");
        assert!(reason.starts_with("intake: no progress for"), "{reason}");
        assert_eq!(
            report
                .loops
                .iter()
                .map(|l| (l.name.as_str(), l.alive))
                .collect::<Vec<_>>(),
            [("reconciler", true), ("intake", false)]
        );

        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        let stop = CancellationToken::new();
        let server = tokio::spawn(serve(listener, r.clone(), stop.clone()));
        let (status, body) = get(address, "/healthz").await;
        assert_eq!(
            (status, body["status"].clone()),
            (503, serde_json::json!("stalled"))
        );
        assert_eq!(body["loops"][1]["name"], "intake");
        // Readiness is about dependencies, not loops: still ready.
        assert_eq!(get(address, "/readyz").await.0, 200);

        // Ticking again revives it (checked within its 60 ms allowance, with a generous re-tick loop:
        // a loaded machine may pause between tick and check).
        let mut revived = false;
        for _ in 0..50 {
            intake.tick();
            if r.liveness().alive {
                revived = true;
                break;
            }
        }
        assert!(revived, "a tick makes the loop alive again");
        stop.cancel();
        server.await.expect("task").expect("clean shutdown");
    }

    #[test]
    fn liveness_counts_from_the_last_tick_of_any_clone() {
        let l = Liveness::new();
        std::thread::sleep(Duration::from_millis(200));
        let before = l.since_last_tick();
        assert!(before >= Duration::from_millis(200));
        let clone = l.clone();
        // Retried: a loaded machine may pause between the tick and the reading.
        let fresher = (0..20).any(|_| {
            clone.tick();
            l.since_last_tick() < before
        });
        assert!(fresher, "a clone's tick counts for every handle");
    }
}
