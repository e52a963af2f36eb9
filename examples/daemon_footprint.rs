//! Measures the daemon's footprint: idle RSS and CPU, and RSS and CPU with 100 groups in flight.
//!
//! `cargo run --release --example daemon_footprint [SECONDS] [GROUPS]` (defaults 10 and 100). The daemon
//! runs in this process on the SQLite store (a temporary file) with a reconciler that keeps every group
//! pending (each pass sleeps 20 ms, as a Personalize round trip would, and asks to be polled again in
//! one second), so the numbers are the daemon's own: dispatch, leases, state writes, notifications.
//! Set `PERSONALIZE_OPS_BIN` to a built `personalize-ops` to also measure `local` (with the built-in
//! Personalize) idle as a separate process.

#[path = "support/proc_stats.rs"]
mod proc_stats;

use proc_stats::{cpu_time, rss_kib};

use std::sync::Arc;
use std::time::{Duration, Instant};

use personalize_ops::daemon::{
    Daemon, DaemonConfig, DaemonStats, GroupReconciler, PassError, PassInput, PassReport, PassSink,
    PassStatus,
};
use personalize_ops::metrics::LogSink;
use personalize_ops::notify::Notifications;
use personalize_ops::notify::message::Location;
use personalize_ops::objects::ObjectUrl;
use personalize_ops::store::{
    DesiredSource, NewDesired, ResourceKind, ResourceState, SqliteStore, StateStore, SystemClock,
};
use tokio_util::sync::CancellationToken;

/// Keeps every group pending.
struct AlwaysPending;

#[async_trait::async_trait]
impl GroupReconciler for AlwaysPending {
    async fn pass(&self, input: PassInput<'_>, _sink: &PassSink) -> Result<PassReport, PassError> {
        tokio::time::sleep(Duration::from_millis(20)).await;
        Ok(PassReport {
            status: PassStatus::Pending {
                retry_after: Duration::from_secs(1),
            },
            resources: vec![ResourceState {
                kind: ResourceKind::SolutionVersion,
                name: format!("{}-solution", input.group),
                status: "CREATE IN_PROGRESS".into(),
                arn: None,
                reason: None,
            }],
            failures: vec![],
        })
    }
}

fn report(label: &str, pid: &str, wall: Duration, cpu: Duration) {
    let (rss, peak) = rss_kib(pid);
    println!(
        "{label:<38} RSS {:>6.1} MiB (peak {:>6.1} MiB)  CPU {:>5.2} % of one core over {:.0} s",
        rss as f64 / 1024.0,
        peak as f64 / 1024.0,
        100.0 * cpu.as_secs_f64() / wall.as_secs_f64(),
        wall.as_secs_f64()
    );
}

fn config() -> DaemonConfig {
    DaemonConfig {
        owner: "footprint".into(),
        concurrency: 8,
        lease_duration: Duration::from_secs(60),
        resync_interval: Duration::from_secs(600),
        dispatch_interval: Duration::from_secs(1),
        error_retry: Duration::from_secs(30),
        max_passes_per_turn: 20,
        shutdown_grace: Duration::from_secs(15),
        location: Location {
            partition: "aws".into(),
            region: "us-east-1".into(),
            account: "000000000000".into(),
        },
    }
}

async fn measure_in_process(seconds: u64, groups: usize) -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let store = Arc::new(SqliteStore::open(&dir.path().join("state.sqlite"))?);
    let daemon = Arc::new(Daemon::new(
        store.clone(),
        Arc::new(AlwaysPending),
        Notifications::default(),
        Arc::new(LogSink),
        Arc::new(SystemClock),
        config(),
    ));
    let stats = daemon.stats();
    let stop = CancellationToken::new();
    let task = tokio::spawn(daemon.run(None, stop.clone()));
    // Let start-up allocations settle before the idle window.
    tokio::time::sleep(Duration::from_secs(1)).await;

    let (cpu0, t0) = (cpu_time("self"), Instant::now());
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    report(
        "daemon idle (in process)",
        "self",
        t0.elapsed(),
        cpu_time("self") - cpu0,
    );

    for i in 0..groups {
        let group = format!("group-{i:04}");
        store
            .put_desired(&NewDesired {
                group: group.clone(),
                text: format!(r#"{{"datasetGroup": {{"serviceConfig": {{"name": "{group}"}}}}}}"#),
                source: DesiredSource {
                    url: ObjectUrl::new("data", format!("train/{group}/config.json")),
                    etag: None,
                    version_id: None,
                    sequencer: None,
                    last_modified: Some(chrono::Utc::now()),
                },
            })
            .await?;
    }
    let passes0 = DaemonStats::get(&stats.passes);
    let (cpu0, t0) = (cpu_time("self"), Instant::now());
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let wall = t0.elapsed();
    report(
        &format!("daemon with {groups} groups in flight"),
        "self",
        wall,
        cpu_time("self") - cpu0,
    );
    let passes = DaemonStats::get(&stats.passes) - passes0;
    println!(
        "{:<38} {passes} passes in {:.0} s ({:.1} passes/s, concurrency 8, 20 ms per pass)",
        "",
        wall.as_secs_f64(),
        passes as f64 / wall.as_secs_f64()
    );
    stop.cancel();
    let t0 = Instant::now();
    task.await??;
    println!("{:<38} graceful stop in {:?}", "", t0.elapsed());
    Ok(())
}

fn measure_binary(bin: &str, seconds: u64) -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let mut child = std::process::Command::new(bin)
        .args(["--log-level", "warn", "local"])
        .arg(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    let pid = child.id().to_string();
    std::thread::sleep(Duration::from_secs(2));
    let (cpu0, t0) = (cpu_time(&pid), Instant::now());
    std::thread::sleep(Duration::from_secs(seconds));
    report(
        "`personalize-ops local` idle",
        &pid,
        t0.elapsed(),
        cpu_time(&pid) - cpu0,
    );
    let _ = std::process::Command::new("kill").args(["-TERM", &pid]).status();
    child.wait()?;
    Ok(())
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let seconds: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(10);
    let groups: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100);
    measure_in_process(seconds, groups).await?;
    if let Ok(bin) = std::env::var("PERSONALIZE_OPS_BIN") {
        measure_binary(&bin, seconds)?;
    }
    Ok(())
}
