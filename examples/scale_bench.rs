//! Many dataset groups at once under one account-wide Personalize quota, by one or several replicas.
//!
//! Starts the built-in Personalize with `tps=N` (control-plane calls beyond N per second answered
//! `ThrottlingException`, account-wide: every replica shares it) and applies `--groups` small
//! configurations (group, schema, dataset, import, solution, version, campaign) at once, split round
//! robin over `--replicas` reconcilers, each with its own adaptive rate limiter whose ceiling is
//! `--calls-per-second` (default: the quota, so several replicas must find their share by backing
//! off). Durations are the realistic ones times `--time-scale`, polls likewise. Prints the total time
//! against calls ÷ quota, the throttled share of calls, and the median and p99 group converge times.
//!
//! `cargo run --release --example scale_bench -- [--groups 200] [--replicas 1] [--tps 20]
//! [--time-scale 0.001] [--calls-per-second 20]`

#[path = "support/fleet.rs"]
mod fleet;

use fleet::{arg, config, percentile};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use aws_sdk_personalize::config::retry::RetryConfig;
use aws_sdk_personalize::config::{BehaviorVersion, Credentials, Region};
use chrono::{SubsecRound, Utc};
use personalize_ops::emulator::faults::FaultSpec;
use personalize_ops::emulator::{self, EmulatorConfig};
use personalize_ops::objects::{DirStore, ObjectUrl};
use personalize_ops::reconcile::{PassOutcome, RateLimiter, Reconciler};
use personalize_ops::settings::Settings;
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let groups = arg("--groups", 200.0) as usize;
    let replicas = (arg("--replicas", 1.0) as usize).max(1);
    let tps = arg("--tps", 20.0);
    let scale = arg("--time-scale", 0.001);
    let ceiling = arg("--calls-per-second", tps);
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/data");
    let dir = tempfile::tempdir()?;
    let mut specs = Vec::new();
    for i in 0..groups {
        let name = format!("scale-{i:04}");
        let text = config(&name);
        let spec = personalize_ops::spec::load(&text)
            .spec
            .ok_or_else(|| anyhow::anyhow!("invalid generated configuration for {name}"))?;
        let folder = dir.path().join("train").join(&name);
        std::fs::create_dir_all(&folder)?;
        std::fs::write(folder.join("config.json"), &text)?;
        std::fs::copy(fixtures.join("interactions.csv"), folder.join("interactions.csv"))?;
        specs.push(spec);
    }

    let mut config = EmulatorConfig::new(Arc::new(DirStore::new(dir.path(), "local")));
    config.time_scale = scale;
    config.faults = FaultSpec::parse(&format!("tps={tps}"))?;
    // The account's quotas raised to the run's size: the API rate is what is measured here.
    let q = &mut config.quotas;
    q.dataset_groups = groups + 1;
    q.schemas = groups + 1;
    q.pending_import_jobs = groups + 1;
    q.pending_solution_versions = groups + 1;
    let emu = emulator::start(config).await?;

    let mut settings = Settings::load_with_env(None, Vec::new())?;
    settings.personalize.import_role_arn = "arn:aws:iam::000000000000:role/import".into();
    settings.reconcile.calls_per_second = ceiling;
    for k in settings.reconcile.kinds.values_mut() {
        k.poll_min_secs *= scale;
        k.poll_max_secs *= scale;
        k.expected_secs *= scale;
    }
    let reconcilers: Vec<Arc<Reconciler>> = (0..replicas)
        .map(|_| {
            let client = aws_sdk_personalize::Client::from_conf(
                aws_sdk_personalize::Config::builder()
                    .behavior_version(BehaviorVersion::latest())
                    .endpoint_url(emu.url())
                    .region(Region::new("us-east-1"))
                    .credentials_provider(Credentials::new("AKIDBENCH", "secret", None, None, "bench"))
                    .retry_config(RetryConfig::disabled())
                    .build(),
            );
            Arc::new(Reconciler::new(
                client,
                Arc::new(DirStore::new(dir.path(), "local")),
                &settings.reconcile,
                &settings.personalize,
                Arc::new(RateLimiter::new(settings.reconcile.calls_per_second)),
            ))
        })
        .collect();

    let started = Instant::now();
    let run_start = Utc::now().trunc_subsecs(0);
    let mut tasks = tokio::task::JoinSet::new();
    for (i, spec) in specs.into_iter().enumerate() {
        let reconciler = reconcilers[i % replicas].clone();
        tasks.spawn(async move {
            let url = ObjectUrl::new("local", format!("train/{}/config.json", spec.dataset_group.name));
            let mut events = Vec::new();
            let outcome = reconciler
                .apply(&spec, &url, run_start, &mut events, &CancellationToken::new())
                .await;
            (started.elapsed().as_secs_f64(), outcome)
        });
    }
    let mut times = Vec::new();
    let mut failed = 0usize;
    while let Some(done) = tasks.join_next().await {
        let (took, outcome) = done?;
        match outcome {
            Ok(PassOutcome::Converged { .. }) => times.push(took),
            Ok(other) => {
                failed += 1;
                eprintln!("not converged: {other:?}");
            }
            Err(e) => {
                failed += 1;
                eprintln!("error: {e}");
            }
        }
    }
    let total = started.elapsed().as_secs_f64();
    times.sort_by(f64::total_cmp);
    let counts = emu.calls();
    let calls: u64 = counts.calls.values().sum();
    let throttled: u64 = counts.throttled.values().sum();
    let median = percentile(&times, 0.5);
    let p99 = percentile(&times, 0.99);
    let floor = calls as f64 / tps;
    println!(
        "{groups} groups, {replicas} replica(s), quota {tps} calls/s account-wide, ceiling {ceiling} per replica, time scale {scale}"
    );
    println!("converged groups:        {} ({failed} failed)", times.len());
    println!("total time:              {total:.1} s");
    println!(
        "calls / quota:           {floor:.1} s ({calls} calls), ratio {:.2}",
        total / floor
    );
    println!(
        "throttled calls:         {throttled} ({:.1} % of calls)",
        100.0 * throttled as f64 / calls.max(1) as f64
    );
    println!(
        "group converge time:     median {median:.1} s, p99 {p99:.1} s (p99/median {:.2})",
        p99 / median.max(1e-9)
    );
    println!(
        "Personalize calls:       {:.1} per group",
        calls as f64 / groups.max(1) as f64
    );
    emu.shutdown().await?;
    Ok(())
}
