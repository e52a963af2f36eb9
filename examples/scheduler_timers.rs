//! Timer overhead of the scheduler with 10,000 schedules loaded, measured in one run: resident
//! memory, CPU while idle, and fire latency (from the fire instant to the fire being claimed and
//! recorded as a pending action) at p50/p99.
//!
//! `cargo run --release --example scheduler_timers`. One replica's [`Runtime`] on an SQLite state store
//! (a file, as `local` mode), 100 groups × 100 schedules: 9,900 that do not fire during the run
//! (`cron(0 3 1 1 ? *)`) and 100 `rate(1 minute)` whose anchors are spread over a minute. The first
//! 20 s nothing fires (idle); then each rate schedule fires twice; a stand-in worker ends each action
//! at once so the next fire is started, not coalesced.

#[path = "support/proc_stats.rs"]
mod proc_stats;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use personalize_ops::metrics::MemorySink;
use personalize_ops::schedule::{Runtime, RuntimeConfig};
use personalize_ops::store::{
    Acquire, FireOutcome, FireStatus, LeaseGrant, Schedule, SqliteStore, StateStore, SystemClock,
};
use proc_stats::{cpu_time, rss_kib};
use tokio_util::sync::CancellationToken;

const GROUPS: usize = 100;
const PER_GROUP: usize = 100;
const FIRING: usize = 100;
const IDLE: Duration = Duration::from_secs(20);

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let store = Arc::new(SqliteStore::open(&dir.path().join("state.db"))?);
    let t0 = Utc::now();
    // The rate schedules' first fires fall in [t0 + IDLE + 5 s, t0 + IDLE + 65 s).
    let first = t0 + chrono::Duration::from_std(IDLE)? + chrono::Duration::seconds(5);
    let mut firing = 0;
    for g in 0..GROUPS {
        let group = format!("group-{g:03}");
        let LeaseGrant::Acquired(lease) = store
            .acquire_lease(&group, "bench", Duration::from_secs(600), Acquire::Lease)
            .await?
            .0
        else {
            return Err("lease held".into());
        };
        for i in 0..PER_GROUP {
            let fires = (g * PER_GROUP + i).is_multiple_of(GROUPS * PER_GROUP / FIRING);
            let (expression, created_at) = if fires {
                firing += 1;
                let spread = chrono::Duration::milliseconds(600 * (firing as i64 - 1));
                ("rate(1 minute)", first + spread - chrono::Duration::minutes(1))
            } else {
                ("cron(0 3 1 1 ? *)", t0)
            };
            let schedule = Schedule {
                group: group.clone(),
                name: format!("schedule-{i:03}"),
                expression: expression.into(),
                target: r#"{"action":"import"}"#.into(),
                created_at,
                last_fire: None,
                next_fire: None,
                active: true,
                pending_fire: None,
                last_outcome: None,
            };
            store.put_schedule(&lease, &schedule).await?;
        }
        store.release_lease(&lease).await?;
    }
    let runtime = Arc::new(Runtime::new(
        store.clone(),
        Arc::new(SystemClock),
        Arc::new(MemorySink::new()),
        RuntimeConfig {
            owner: "bench".into(),
            catch_up: chrono::Duration::hours(1),
            claim_ttl: Duration::from_secs(300),
            reload: Duration::from_secs(30),
        },
    ));
    let latencies: Arc<Mutex<Vec<f64>>> = Arc::default();
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn({
        let (runtime, latencies, shutdown) = (runtime.clone(), latencies.clone(), shutdown.clone());
        runtime.run_observed(Arc::new(tokio::sync::Notify::new()), shutdown, move |report| {
            let now = Utc::now();
            let mut l = latencies
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for (group, name, fire) in &report.started {
                l.push((now - *fire).num_microseconds().unwrap_or(i64::MAX) as f64 / 1000.0);
                let _ = done_tx.send((group.clone(), name.clone(), *fire));
            }
        })
    });
    // The stand-in worker: ends each action at once.
    let worker = tokio::spawn({
        let store = store.clone();
        async move {
            while let Some((group, name, fire)) = done_rx.recv().await {
                let outcome = FireOutcome {
                    fire,
                    status: FireStatus::Succeeded,
                    detail: "benchmark".into(),
                    at: Utc::now(),
                };
                let _ = store.finish_fire(&group, &name, &outcome).await;
            }
        }
    });

    // Idle: after the first load, nothing fires for IDLE.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (cpu0, wall0) = (cpu_time("self"), Instant::now());
    tokio::time::sleep(IDLE - Duration::from_secs(4)).await;
    let (idle_cpu, idle_wall) = (cpu_time("self") - cpu0, wall0.elapsed());
    let (rss, peak) = rss_kib("self");
    println!("schedules loaded: {}", runtime.loaded());
    println!(
        "idle: RSS {:.1} MiB (peak {:.1} MiB), CPU {:.2} % of one core over {:.0} s",
        rss as f64 / 1024.0,
        peak as f64 / 1024.0,
        100.0 * idle_cpu.as_secs_f64() / idle_wall.as_secs_f64(),
        idle_wall.as_secs_f64()
    );

    // Firing: two minutes and a few seconds, each rate schedule fires twice.
    let (cpu0, wall0) = (cpu_time("self"), Instant::now());
    tokio::time::sleep(Duration::from_secs(130)).await;
    let fire_cpu = cpu_time("self") - cpu0;
    let end = Utc::now();
    // Fire instants up to `end` (less a second: a fire that late may be handled after it).
    let horizon = end - chrono::Duration::seconds(1);
    let expected: usize = (0..FIRING)
        .map(|i| {
            let first = first + chrono::Duration::milliseconds(600 * i as i64);
            (0..)
                .map(|k| first + chrono::Duration::minutes(k))
                .take_while(|f| *f <= horizon)
                .count()
        })
        .sum();
    shutdown.cancel();
    task.await?;
    worker.abort();
    let mut l = latencies
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    l.sort_by(f64::total_cmp);
    let pick = |q: f64| {
        l.get(((l.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or(f64::NAN)
    };
    println!(
        "fires: {} (at least {} expected); latency after the instant p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; CPU {:.2} % of one core while firing",
        l.len(),
        expected,
        pick(0.5),
        pick(0.99),
        l.last().copied().unwrap_or(f64::NAN),
        100.0 * fire_cpu.as_secs_f64() / wall0.elapsed().as_secs_f64()
    );
    Ok(())
}
