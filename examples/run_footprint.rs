//! The real daemon's footprint and throughput: `personalize-ops run` on moto, N groups uploaded at once.
//!
//! Starts `moto_server` (S3 with a bucket notification to SQS, DynamoDB, SNS) and the built-in
//! Personalize in this process (time scale `--time-scale`, the account's quotas raised to the run's
//! size, calls beyond `--tps` per second answered `ThrottlingException`), then the `run` binary as a
//! child process. It samples the daemon's RSS and CPU while idle, uploads `--groups` small
//! configurations (group, schema, dataset, import, solution, version, campaign) with their data,
//! and samples again until every group has converged: peak RSS and mean CPU in flight, the total
//! time against calls ÷ quota, and the throttled share.
//!
//! Every 30 s it prints progress (converged, calls, throttled so far); at the end the median and p99
//! group converge times (from the uploads' start) and the Personalize calls by operation.
//!
//! `cargo build && cargo run --example run_footprint -- [--groups 100] [--tps 20] [--time-scale 0.001]
//! [--concurrency N] [--bin target/release/personalize-ops] [--log-level debug --log-file PATH]`
//! (`--bin` or `PERSONALIZE_OPS_BIN` picks another binary; `--concurrency` sets
//! `daemon.concurrency`; the daemon's log is kept at `--log-file`; needs `moto_server`:
//! `pip install "moto[server]"`).

#[path = "../tests/support/moto.rs"]
#[allow(dead_code)]
mod moto;

#[path = "../tests/support/cloud.rs"]
#[allow(dead_code)]
mod cloud;

#[path = "support/proc_stats.rs"]
mod proc_stats;

#[path = "support/fleet.rs"]
mod fleet;

use fleet::{arg, config, percentile, text_arg};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use personalize_ops::emulator::faults::FaultSpec;
use personalize_ops::emulator::{self, EmulatorConfig};
use personalize_ops::objects::S3Store;
use personalize_ops::store::StateStore;
use proc_stats::{cpu_time, rss_anon_file_kib, rss_kib};

/// Polls scaled like the built-in Personalize's durations, a call ceiling at the quota.
fn settings_file(dir: &Path, tps: f64, scale: f64) -> anyhow::Result<PathBuf> {
    let defaults = personalize_ops::settings::Settings::load_with_env(None, Vec::new())?;
    let mut text = format!(
        "[personalize]\nimport_role_arn = \"arn:aws:iam::000000000000:role/personalize\"\n\
         [reconcile]\ncalls_per_second = {tps}\n\
         [daemon]\nreceive_wait_secs = 1\n"
    );
    for (kind, k) in &defaults.reconcile.kinds {
        text.push_str(&format!(
            "[reconcile.kinds.{kind}]\npoll_min_secs = {}\npoll_max_secs = {}\nexpected_secs = {}\n",
            (k.poll_min_secs * scale).max(0.05),
            (k.poll_max_secs * scale).max(0.1),
            k.expected_secs * scale
        ));
    }
    let path = dir.join("settings.toml");
    std::fs::write(&path, text)?;
    Ok(path)
}

/// RSS now and CPU share of one core over `period`, sampled every 500 ms; the peak RSS seen.
struct Sampler {
    pid: String,
    peak_kib: u64,
}

impl Sampler {
    fn sample(&mut self) -> u64 {
        let (rss, _) = rss_kib(&self.pid);
        self.peak_kib = self.peak_kib.max(rss);
        rss
    }
}

struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let groups = arg("--groups", 100.0) as usize;
    let tps = arg("--tps", 20.0);
    let scale = arg("--time-scale", 0.001);
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let bin = text_arg("--bin")
        .map(Into::into)
        .or_else(|| std::env::var_os("PERSONALIZE_OPS_BIN"))
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target/debug/personalize-ops"));
    anyhow::ensure!(bin.exists(), "no binary at {} (cargo build first)", bin.display());
    let interactions = std::fs::read(root.join("tests/fixtures/data/interactions.csv"))?;

    let moto = moto::Moto::start();
    let cloud = cloud::Deployment::new(&moto, 5).await;
    let mut emulator_config = EmulatorConfig::new(Arc::new(S3Store::new(cloud.s3.clone())));
    emulator_config.time_scale = scale;
    emulator_config.faults = FaultSpec::parse(&format!("tps={tps}"))?;
    // The account's quotas raised to the run's size: the API rate is what binds.
    let q = &mut emulator_config.quotas;
    q.dataset_groups = groups + 1;
    q.schemas = groups + 1;
    q.pending_import_jobs = groups + 1;
    q.pending_solution_versions = groups + 1;
    let emu = emulator::start(emulator_config).await?;

    let work = tempfile::tempdir()?;
    let settings = settings_file(work.path(), tps, scale)?;
    let log_path = text_arg("--log-file")
        .map(PathBuf::from)
        .unwrap_or_else(|| work.path().join("daemon.log"));
    let log = std::fs::File::create(&log_path)?;
    let log_level = text_arg("--log-level").unwrap_or_else(|| "warn".into());
    let mut extra: Vec<(&str, String)> = Vec::new();
    if let Some(n) = text_arg("--concurrency") {
        extra.push(("PERSONALIZE_OPS__DAEMON__CONCURRENCY", n));
    }
    let child = Command::new(&bin)
        .arg("run")
        .env_remove("RUST_LOG")
        .envs([
            ("AWS_ENDPOINT_URL", moto.endpoint()),
            ("AWS_ENDPOINT_URL_PERSONALIZE", emu.url()),
            ("AWS_ACCESS_KEY_ID", "test".into()),
            ("AWS_SECRET_ACCESS_KEY", "test".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
            ("PERSONALIZE_OPS_SETTINGS", settings.display().to_string()),
            ("PERSONALIZE_OPS__DAEMON__BUCKET", cloud.bucket.clone()),
            ("PERSONALIZE_OPS__DAEMON__QUEUE_URL", cloud.queue_url.clone()),
            ("PERSONALIZE_OPS__DAEMON__TABLE_NAME", cloud.table.clone()),
            ("PERSONALIZE_OPS__DAEMON__HEALTH_PORT", "0".into()),
            ("PERSONALIZE_OPS__NOTIFY__SNS_TOPIC_ARN", cloud.topic.clone()),
            ("PERSONALIZE_OPS__AWS__S3_FORCE_PATH_STYLE", "true".into()),
            ("PERSONALIZE_OPS__LOG__LEVEL", log_level),
            ("PERSONALIZE_OPS__LOG__FORMAT", "human".into()),
        ])
        .envs(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .spawn()?;
    let daemon = Daemon(child);
    let mut sampler = Sampler {
        pid: daemon.0.id().to_string(),
        peak_kib: 0,
    };

    // Idle: started, queue empty, nothing to do.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let idle_period = Duration::from_secs(10);
    let cpu_before = cpu_time(&sampler.pid);
    let mut idle_rss = 0;
    let idle_started = Instant::now();
    while idle_started.elapsed() < idle_period {
        idle_rss = idle_rss.max(sampler.sample());
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let idle_cpu = (cpu_time(&sampler.pid) - cpu_before).as_secs_f64() / idle_started.elapsed().as_secs_f64();
    let (idle_anon, idle_file) = rss_anon_file_kib(&sampler.pid);

    let calls_before = emu.calls();
    let calls_before: u64 = calls_before.calls.values().sum();
    let started = Instant::now();
    let cpu_before = cpu_time(&sampler.pid);
    for g in 0..groups {
        let name = format!("fleet-{g:04}");
        cloud::upload(
            &cloud.s3,
            &cloud.bucket,
            &format!("train/{name}/interactions.csv"),
            interactions.clone(),
        )
        .await;
        cloud::upload(
            &cloud.s3,
            &cloud.bucket,
            &format!("train/{name}/config.json"),
            config(&name).into_bytes(),
        )
        .await;
    }
    let uploaded = started.elapsed().as_secs_f64();
    let patience = Duration::from_secs_f64(arg("--patience", 600.0 + groups as f64 * 60.0 / tps));
    // When each group was first seen converged, since the uploads started.
    let mut converged_at: std::collections::HashMap<String, f64> = Default::default();
    let mut last_report = Instant::now();
    let mut last_list = None::<Instant>;
    let (converged, failed) = loop {
        sampler.sample();
        // Listing the whole table costs moto (one Python process) as much as the daemon's own
        // reads: every 2 s, not at every RSS sample.
        if last_list.is_some_and(|t: Instant| t.elapsed() < Duration::from_secs(2)) {
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        }
        last_list = Some(Instant::now());
        let listed = cloud.store.list_groups().await?;
        let now = started.elapsed().as_secs_f64();
        for g in listed
            .iter()
            .filter(|g| g.observed.as_ref().is_some_and(|o| o.converged))
        {
            converged_at.entry(g.name.clone()).or_insert(now);
        }
        let converged = converged_at.len();
        let failed = listed
            .iter()
            .filter(|g| {
                g.observed
                    .as_ref()
                    .is_some_and(|o| !o.converged && o.last_error.is_some() && g.due_at.is_none())
            })
            .count();
        if last_report.elapsed() >= Duration::from_secs(30) {
            last_report = Instant::now();
            let c = emu.calls();
            println!(
                "  {now:>6.0} s: {converged} converged, {} recorded, {} calls, {} throttled",
                listed.len(),
                c.calls.values().sum::<u64>() - calls_before,
                c.throttled.values().sum::<u64>()
            );
        }
        if converged + failed >= groups || started.elapsed() > patience {
            break (converged, failed);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let total = started.elapsed().as_secs_f64();
    let busy_cpu = (cpu_time(&sampler.pid) - cpu_before).as_secs_f64() / total;
    let counts = emu.calls();
    let calls = counts.calls.values().sum::<u64>() - calls_before;
    let throttled: u64 = counts.throttled.values().sum();
    let floor = calls as f64 / tps;
    println!(
        "`run` ({}) on moto, built-in Personalize in process at time scale {scale}, quota {tps} calls/s",
        bin.display()
    );
    println!(
        "idle:       RSS {:.1} MiB ({:.1} MiB anonymous, {:.1} MiB file-backed), CPU {:.1} % of one core over {} s",
        idle_rss as f64 / 1024.0,
        idle_anon as f64 / 1024.0,
        idle_file as f64 / 1024.0,
        idle_cpu * 100.0,
        idle_period.as_secs()
    );
    println!(
        "{groups} groups: {converged} converged, {failed} failed, total {total:.1} s (uploads took {uploaded:.1} s)"
    );
    println!(
        "in flight:  peak RSS {:.1} MiB, mean CPU {:.1} % of one core",
        sampler.peak_kib as f64 / 1024.0,
        busy_cpu * 100.0
    );
    println!(
        "calls:      {calls} ({:.1} per group), calls / quota {floor:.1} s, ratio {:.2}, throttled {throttled} ({:.1} %)",
        calls as f64 / groups.max(1) as f64,
        total / floor.max(1e-9),
        100.0 * throttled as f64 / calls.max(1) as f64
    );
    let mut times: Vec<f64> = converged_at.values().copied().collect();
    times.sort_by(f64::total_cmp);
    let (median, p99) = (percentile(&times, 0.5), percentile(&times, 0.99));
    println!(
        "converge:   median {median:.1} s, p99 {p99:.1} s, p99 / median {:.2}",
        p99 / median.max(1e-9)
    );
    let mut by_op: Vec<(&String, &u64)> = counts.calls.iter().collect();
    by_op.sort_by(|a, b| b.1.cmp(a.1));
    let by_op: Vec<String> = by_op
        .iter()
        .map(|(op, n)| format!("{op} {n} ({:.2}/group)", **n as f64 / groups.max(1) as f64))
        .collect();
    println!("by operation: {}", by_op.join(", "));
    drop(daemon);
    emu.shutdown().await?;
    if converged < groups {
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(20).collect();
        anyhow::bail!(
            "{} of {groups} groups did not converge; the daemon's last lines:\n{}",
            groups - converged,
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
    Ok(())
}
