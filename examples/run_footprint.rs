//! The real daemon's footprint and throughput: `personalize-ops run` on moto, N groups uploaded at once.
//!
//! Starts `moto_server` (S3 with a bucket notification to SQS, SNS), a second moto that serves the
//! state table one request at a time (moto's threaded server checks a DynamoDB condition and writes
//! without a lock, so two replicas could both take one lease there, which DynamoDB never allows; and
//! the intake's SQS receives no longer queue with the turns' table round trips, as on AWS where they
//! are separate services), and the built-in Personalize in this process (time scale `--time-scale`, the account's quotas raised to the run's
//! size, calls beyond `--tps` per second answered `ThrottlingException`), then `--replicas` `run`
//! processes sharing the table, the queue and the built-in Personalize. It samples the daemons' RSS
//! and CPU (summed over the replicas) while idle, uploads `--groups` small configurations (group,
//! schema, dataset, import, solution, version, campaign) with their data, `--upload-concurrency` at
//! a time (a fleet's uploads do not wait for each other), and samples again until every group has
//! converged: peak RSS and mean CPU in flight, the total time against calls ÷ quota, and the
//! throttled share.
//!
//! Every 30 s it prints progress; at the end the median and p99 group converge times (from the
//! uploads' start), the Personalize calls by operation, a timeline per `--timeline-secs` (calls by
//! kind, throttles, groups uploaded and converged) with the phases it shows (uploads arriving,
//! steady state, the tail when fewer groups are left than the replicas' workers), and the import jobs
//! the built-in Personalize holds against the `CreateDatasetImportJob` calls it answered. The daemons
//! log in JSON at debug for `personalize_ops::daemon::turn` (the default `--log-level`, [`LOG_LEVEL`];
//! `--log-file PATH` keeps the log): the timeline shows the passes in flight, and the log is checked
//! for a group worked on by two replicas at once; the run exits non-zero when it finds one.
//!
//! `cargo build && cargo run --example run_footprint -- [--groups 100] [--tps 20] [--time-scale 0.001]
//! [--replicas 1] [--concurrency N] [--upload-concurrency 8] [--timeline-secs 10] [--scan-secs 30]
//! [--table-moto serial|writes]
//! [--bin target/release/personalize-ops] [--log-level LEVEL --log-file PATH]`
//! (`--bin` or `PERSONALIZE_OPS_BIN` picks another binary; `--concurrency` sets
//! `daemon.concurrency` of each replica; `--table-moto writes` serves the table from a threaded moto
//! that applies only its writes one at a time, reads beside them; replica i's log is kept at `PATH.i`, or `PATH` with one
//! replica; needs `moto_server` and python3 with moto: `pip install "moto[server]"`).

#[path = "../tests/support/moto.rs"]
#[allow(dead_code)]
mod moto;

#[path = "../tests/support/cloud.rs"]
#[allow(dead_code)]
mod cloud;

#[path = "../tests/support/aws.rs"]
#[allow(dead_code)]
mod aws;

#[path = "support/proc_stats.rs"]
mod proc_stats;

#[path = "support/fleet.rs"]
mod fleet;

#[path = "support/timeline.rs"]
mod timeline;

use fleet::{arg, config, percentile, text_arg};
use futures::StreamExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use personalize_ops::emulator::faults::{CallCounts, FaultSpec};
use personalize_ops::emulator::{self, EmulatorConfig};
use personalize_ops::objects::S3Store;
use personalize_ops::reconcile::guard::is_mutating;
use personalize_ops::store::{DynamoStore, ObservedState};
use proc_stats::{cpu_time, rss_anon_file_kib, rss_kib};
use timeline::Sample;

/// The daemons' log level unless `--log-level` says otherwise: what the timeline's passes and the
/// double-lease check read (a few MB at 1,000 groups).
const LOG_LEVEL: &str = "warn,personalize_ops::daemon=info,personalize_ops::daemon::turn=debug";

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

/// The daemons' processes: RSS summed over them (and its peak), CPU time summed.
struct Sampler {
    pids: Vec<String>,
    peak_kib: u64,
}

impl Sampler {
    fn sample(&mut self) -> u64 {
        let rss = self.pids.iter().map(|p| rss_kib(p).0).sum();
        self.peak_kib = self.peak_kib.max(rss);
        rss
    }

    fn cpu(&self) -> Duration {
        self.pids.iter().map(|p| cpu_time(p)).sum()
    }

    fn anon_file(&self) -> (u64, u64) {
        self.pids
            .iter()
            .map(|p| rss_anon_file_kib(p))
            .fold((0, 0), |(a, f), (a2, f2)| (a + a2, f + f2))
    }
}

struct Daemons(Vec<Child>);

impl Drop for Daemons {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Writes and reads (by [`is_mutating`]) and throttles so far, less `base`.
fn sample(counts: &CallCounts, base: &Sample, at: f64) -> Sample {
    let (mut writes, mut reads) = (0, 0);
    for (op, n) in &counts.calls {
        if is_mutating(op) {
            writes += n;
        } else {
            reads += n;
        }
    }
    Sample {
        at,
        writes: writes - base.writes,
        reads: reads - base.reads,
        throttled: counts.throttled.values().sum::<u64>() - base.throttled,
    }
}

/// What the benchmark reads of every group item: its name, observed state and whether it is due.
/// Its own projection: `list_groups` carries each observation's JSON, a few KB per group, and the
/// serial moto serves nothing else while it scans.
async fn group_states(
    ddb: &aws_sdk_dynamodb::Client,
    table: &str,
) -> anyhow::Result<Vec<(String, Option<ObservedState>, bool)>> {
    use aws_sdk_dynamodb::types::AttributeValue;
    let mut out = Vec::new();
    let mut start = None;
    loop {
        let page = ddb
            .scan()
            .table_name(table)
            .filter_expression("#sk = :group")
            .projection_expression("#g, #state, #due")
            .expression_attribute_names("#sk", "sk")
            .expression_attribute_names("#g", "group")
            .expression_attribute_names("#state", "observed_state")
            .expression_attribute_names("#due", "due_at")
            .expression_attribute_values(":group", AttributeValue::S("group".into()))
            .set_exclusive_start_key(start)
            .send()
            .await?;
        for item in page.items() {
            let text = |k: &str| item.get(k).and_then(|v| v.as_s().ok()).cloned();
            let Some(name) = text("group") else { continue };
            let state = text("observed_state").and_then(|w| ObservedState::parse(&w));
            out.push((name, state, item.contains_key("due_at")));
        }
        start = page.last_evaluated_key().filter(|k| !k.is_empty()).cloned();
        if start.is_none() {
            return Ok(out);
        }
    }
}

/// How long the benchmark's own scans of the table took: their share of the serial moto's time.
#[derive(Default)]
struct Listings {
    count: u32,
    total: Duration,
    longest: Duration,
}

impl Listings {
    fn record(&mut self, took: Duration) {
        self.count += 1;
        self.total += took;
        self.longest = self.longest.max(took);
    }
}

/// Every import job the built-in Personalize holds, with the dataset it imports into: listed a page
/// at a time, then described 16 at a time (call after lifting the quota).
async fn import_jobs(client: &aws_sdk_personalize::Client) -> anyhow::Result<Vec<(String, String)>> {
    let mut arns = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = client
            .list_dataset_import_jobs()
            .set_next_token(token.clone())
            .max_results(100)
            .send()
            .await?;
        arns.extend(
            page.dataset_import_jobs()
                .iter()
                .filter_map(|j| j.dataset_import_job_arn().map(str::to_string)),
        );
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    futures::stream::iter(arns)
        .map(|arn| async move {
            let job = client
                .describe_dataset_import_job()
                .dataset_import_job_arn(&arn)
                .send()
                .await?;
            let dataset = job
                .dataset_import_job()
                .and_then(|j| j.dataset_arn())
                .unwrap_or_default()
                .to_string();
            anyhow::Ok((arn, dataset))
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let groups = arg("--groups", 100.0) as usize;
    let tps = arg("--tps", 20.0);
    let scale = arg("--time-scale", 0.001);
    let replicas = (arg("--replicas", 1.0) as usize).max(1);
    let upload_concurrency = (arg("--upload-concurrency", 8.0) as usize).max(1);
    let step = arg("--timeline-secs", 10.0).max(1.0);
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let bin = text_arg("--bin")
        .map(Into::into)
        .or_else(|| std::env::var_os("PERSONALIZE_OPS_BIN"))
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target/debug/personalize-ops"));
    anyhow::ensure!(bin.exists(), "no binary at {} (cargo build first)", bin.display());
    let interactions = std::fs::read(root.join("tests/fixtures/data/interactions.csv"))?;

    let moto = moto::Moto::start();
    // `--table-moto writes`: only the table's writes one at a time, reads beside them (at 1,000
    // groups the serial server spends 0.6-1 s on each due-index query, moto reading every item).
    let write_locked = text_arg("--table-moto").is_some_and(|m| m == "writes");
    let serial = if write_locked {
        aws::SerialMoto::start_write_locked()
    } else {
        aws::SerialMoto::start()
    };
    let mut cloud = cloud::Deployment::new(&moto, 5).await;
    let state = serial.state().await;
    cloud.store = Arc::new(DynamoStore::new(state.ddb.clone(), state.table.clone()));
    cloud.table = state.table;
    let mut emulator_config = EmulatorConfig::new(Arc::new(S3Store::new(cloud.s3.clone())));
    emulator_config.time_scale = scale;
    emulator_config.faults = FaultSpec::parse(&format!("tps={tps}"))?;
    // The account's quotas raised to the run's size: the API rate is what binds.
    let q = &mut emulator_config.quotas;
    q.dataset_groups = groups + 1;
    q.schemas = groups + 1;
    q.pending_import_jobs = groups + 1;
    q.pending_solution_versions = groups + 1;
    let emu = Arc::new(emulator::start(emulator_config).await?);

    let work = tempfile::tempdir()?;
    let settings = settings_file(work.path(), tps, scale)?;
    let log_base = text_arg("--log-file")
        .map(PathBuf::from)
        .unwrap_or_else(|| work.path().join("daemon.log"));
    let log_paths: Vec<PathBuf> = (0..replicas)
        .map(|i| {
            if replicas == 1 {
                log_base.clone()
            } else {
                PathBuf::from(format!("{}.{i}", log_base.display()))
            }
        })
        .collect();
    let log_level = text_arg("--log-level").unwrap_or_else(|| LOG_LEVEL.into());
    let concurrency = text_arg("--concurrency");
    let mut children = Vec::new();
    for path in &log_paths {
        let log = std::fs::File::create(path)?;
        let mut extra: Vec<(&str, String)> = Vec::new();
        if let Some(n) = &concurrency {
            extra.push(("PERSONALIZE_OPS__DAEMON__CONCURRENCY", n.clone()));
        }
        children.push(
            Command::new(&bin)
                .arg("run")
                .env_remove("RUST_LOG")
                .envs(cloud.service_env(&moto.endpoint(), &emu, &settings))
                .env("AWS_ENDPOINT_URL_DYNAMODB", serial.endpoint())
                // JSON (as `service_env` sets): the timeline reads the passes from it.
                .env("PERSONALIZE_OPS__LOG__LEVEL", &log_level)
                .envs(extra)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::from(log))
                .spawn()?,
        );
    }
    let daemons = Daemons(children);
    let mut sampler = Sampler {
        pids: daemons.0.iter().map(|c| c.id().to_string()).collect(),
        peak_kib: 0,
    };

    // Idle: started, queue empty, nothing to do.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let idle_period = Duration::from_secs(10);
    let cpu_before = sampler.cpu();
    let mut idle_rss = 0;
    let idle_started = Instant::now();
    while idle_started.elapsed() < idle_period {
        idle_rss = idle_rss.max(sampler.sample());
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let idle_cpu = (sampler.cpu() - cpu_before).as_secs_f64() / idle_started.elapsed().as_secs_f64();
    let (idle_anon, idle_file) = sampler.anon_file();
    sampler.peak_kib = 0;

    // The two motos' CPU time over the run: the serial one answers one request at a time, so its
    // share of the run is how close the table's round trips came to its capacity.
    let motos = [
        ("the table's moto", serial.pid().to_string()),
        ("S3/SQS/SNS moto", moto.pid().to_string()),
    ];
    let motos_cpu_before: Vec<Duration> = motos.iter().map(|(_, pid)| cpu_time(pid)).collect();
    let base = sample(&emu.calls(), &Sample::default(), 0.0);
    let base_counts = emu.calls();
    let started = Instant::now();
    let origin = chrono::Utc::now();
    let cpu_before = sampler.cpu();
    // The calls so far, every second, until stopped.
    let stop_sampling = tokio_util::sync::CancellationToken::new();
    let sampling = tokio::spawn({
        let (emu, stop) = (emu.clone(), stop_sampling.clone());
        async move {
            let mut samples = Vec::new();
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tokio::select! {
                    _ = tick.tick() => samples.push(sample(&emu.calls(), &base, started.elapsed().as_secs_f64())),
                    () = stop.cancelled() => return samples,
                }
            }
        }
    });
    // Uploads, `upload_concurrency` at a time, each group's data before its parameter file: when
    // each group's file was in, since the uploads started.
    let uploads = tokio::spawn({
        let (s3, bucket) = (cloud.s3.clone(), cloud.bucket.clone());
        let interactions = Arc::new(interactions);
        futures::stream::iter(0..groups)
            .map(move |g| {
                let (s3, bucket, interactions) = (s3.clone(), bucket.clone(), interactions.clone());
                async move {
                    let name = format!("fleet-{g:04}");
                    let data = format!("train/{name}/interactions.csv");
                    cloud::upload(&s3, &bucket, &data, interactions.to_vec()).await;
                    let file = format!("train/{name}/config.json");
                    cloud::upload(&s3, &bucket, &file, config(&name).into_bytes()).await;
                    started.elapsed().as_secs_f64()
                }
            })
            .buffer_unordered(upload_concurrency)
            .collect::<Vec<f64>>()
    });
    let mut uploads = Some(uploads);
    let mut uploaded_at: Vec<f64> = Vec::new();
    let patience = Duration::from_secs_f64(arg("--patience", 600.0 + groups as f64 * 60.0 / tps));
    // When each group was first seen converged, since the uploads started.
    let mut converged_at: std::collections::HashMap<String, f64> = Default::default();
    let scan_every = Duration::from_secs_f64(arg("--scan-secs", 30.0).max(1.0));
    let mut tail = timeline::LogTail::new(&log_paths);
    let mut failed = 0;
    let mut last_list = None::<Instant>;
    let mut listings = Listings::default();
    let (converged, failed) = loop {
        sampler.sample();
        if uploads.as_ref().is_some_and(|u| u.is_finished())
            && let Some(u) = uploads.take()
        {
            uploaded_at = u.await?;
        }
        for (name, at) in tail.converged(origin) {
            converged_at.entry(name).or_insert(at);
        }
        // Each scan of the table holds the serial moto, which the daemons wait on meanwhile (at
        // 300 groups one took a third of a second): every `--scan-secs`, and timed.
        if last_list.is_none_or(|t: Instant| t.elapsed() >= scan_every) {
            let listing = Instant::now();
            last_list = Some(listing);
            let listed = group_states(&state.ddb, &cloud.table).await?;
            listings.record(listing.elapsed());
            let now = started.elapsed().as_secs_f64();
            // Converged by the table and not (yet) by the log: when the log's level lacks the line.
            for (name, _, _) in listed
                .iter()
                .filter(|(_, s, _)| *s == Some(ObservedState::Converged))
            {
                converged_at.entry(name.clone()).or_insert(now);
            }
            failed = listed
                .iter()
                .filter(|(_, s, due)| *s == Some(ObservedState::Failed) && !due)
                .count();
            let c = sample(&emu.calls(), &base, now);
            println!(
                "  {now:>6.0} s: {} converged, {} recorded, {} calls, {} throttled",
                converged_at.len(),
                listed.len(),
                c.writes + c.reads,
                c.throttled
            );
        }
        let converged = converged_at.len();
        if (converged + failed >= groups && uploads.is_none()) || started.elapsed() > patience {
            break (converged, failed);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let total = started.elapsed().as_secs_f64();
    let busy_cpu = (sampler.cpu() - cpu_before).as_secs_f64() / total;
    let motos_busy: Vec<String> = motos
        .iter()
        .zip(&motos_cpu_before)
        .map(|((name, pid), before)| {
            format!(
                "{name} {:.1} % of one core (RSS {:.0} MiB at the end)",
                100.0 * (cpu_time(pid).saturating_sub(*before)).as_secs_f64() / total,
                rss_kib(pid).0 as f64 / 1024.0
            )
        })
        .collect();
    stop_sampling.cancel();
    let mut samples = sampling.await?;
    let last = sample(&emu.calls(), &base, total);
    samples.push(last);
    let counts = emu.calls();
    let calls = last.writes + last.reads;
    let throttled = last.throttled;
    let floor = calls as f64 / tps;
    let uploads_took = uploaded_at.iter().copied().fold(0.0, f64::max);
    println!(
        "`run` ({}) × {replicas} on moto (the table on {}), built-in Personalize in process at time scale {scale}, quota {tps} calls/s",
        bin.display(),
        if write_locked {
            "a moto whose writes run one at a time"
        } else {
            "a moto serving one request at a time"
        }
    );
    println!(
        "idle:       RSS {:.1} MiB ({:.1} MiB anonymous, {:.1} MiB file-backed), CPU {:.1} % of one core over {} s{}",
        idle_rss as f64 / 1024.0,
        idle_anon as f64 / 1024.0,
        idle_file as f64 / 1024.0,
        idle_cpu * 100.0,
        idle_period.as_secs(),
        if replicas > 1 {
            " (sums over the replicas)"
        } else {
            ""
        }
    );
    println!(
        "{groups} groups: {converged} converged, {failed} failed, total {total:.1} s (uploads took {uploads_took:.1} s, {upload_concurrency} at a time)"
    );
    println!(
        "in flight:  peak RSS {:.1} MiB, mean CPU {:.1} % of one core",
        sampler.peak_kib as f64 / 1024.0,
        busy_cpu * 100.0
    );
    println!(
        "calls:      {calls} ({:.1} per group; {} writes, {} reads), calls / quota {floor:.1} s, ratio {:.2}, throttled {throttled} ({:.1} %)",
        calls as f64 / groups.max(1) as f64,
        last.writes,
        last.reads,
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
    println!("moto CPU:   {}", motos_busy.join(", "));
    let mut by_op: Vec<(&String, u64)> = counts
        .calls
        .iter()
        .map(|(op, n)| (op, n - base_counts.calls.get(op).copied().unwrap_or(0)))
        .collect();
    by_op.sort_by_key(|b| std::cmp::Reverse(b.1));
    let by_op: Vec<String> = by_op
        .iter()
        .map(|(op, n)| format!("{op} {n} ({:.2}/group)", *n as f64 / groups.max(1) as f64))
        .collect();
    println!("by operation: {}", by_op.join(", "));

    // The passes, when the log has them.
    drop(daemons);
    // What one scan costs the serial moto by itself, at the table's final size: the round trips
    // above include their wait behind the daemons' requests.
    let alone = Instant::now();
    group_states(&state.ddb, &cloud.table).await?;
    let alone = alone.elapsed();
    println!(
        "listings:   {} scans of the table by this benchmark (every {} s), round trip {:.0} ms mean, {:.0} ms longest (waits behind the daemons' requests included); one scan alone after the run {:.0} ms: about {:.1} % of the run's serial moto",
        listings.count,
        scan_every.as_secs(),
        listings.total.as_secs_f64() * 1000.0 / f64::from(listings.count.max(1)),
        listings.longest.as_secs_f64() * 1000.0,
        alone.as_secs_f64() * 1000.0,
        100.0 * alone.as_secs_f64() * f64::from(listings.count) / total
    );
    let mut passes = Vec::new();
    for path in &log_paths {
        passes.extend(timeline::passes_from_log(
            &std::fs::read_to_string(path).unwrap_or_default(),
            origin,
        ));
    }
    println!(
        "timeline (per {step} s; writes = creates/updates/tags, thr = throttled, up = parameter files uploaded, conv = groups converged{}):",
        if passes.is_empty() {
            ""
        } else {
            ", passes = mean passes in flight"
        }
    );
    for line in timeline::table(step, total, &samples, &uploaded_at, &times, &passes) {
        println!("  {line}");
    }
    let workers = replicas
        * concurrency.as_deref().and_then(|c| c.parse().ok()).unwrap_or(
            personalize_ops::settings::Settings::load_with_env(None, Vec::new())?
                .daemon
                .concurrency,
        );
    println!("phases ({workers} workers in all):");
    for p in timeline::phases(total, &samples, &uploaded_at, &times, groups, workers) {
        println!(
            "  {:<24} {:>7.1}-{:<7.1} s: {:>6} calls, {:>5.1}/s, {:>4} throttled; {:>6.1} s beyond calls ÷ quota",
            p.name,
            p.from,
            p.to,
            p.calls,
            p.calls as f64 / (p.to - p.from).max(1e-9),
            p.throttled,
            p.lost(tps)
        );
    }
    let overlaps = timeline::overlaps(&passes);
    if passes.is_empty() {
        println!(
            "passes:     none in the log (its level lacks personalize_ops::daemon::turn=debug): two replicas at once NOT checked"
        );
    } else {
        println!(
            "passes:     {} in the log; groups worked on by two replicas at once: {}{}",
            passes.len(),
            overlaps.len(),
            if overlaps.is_empty() {
                ""
            } else {
                " (DOUBLE LEASE: the run fails)"
            }
        );
        for (a, b) in overlaps.iter().take(5) {
            println!(
                "  {}: {} {:.3}-{:.3} s and {} {:.3}-{:.3} s",
                a.group, a.owner, a.start, a.end, b.owner, b.start, b.end
            );
        }
    }

    // Import jobs held against the creates answered: a create refused as existing (the job name
    // is the run's, so a second create of one run names the same job) leaves one job.
    let personalize = aws_sdk_personalize::Client::from_conf(
        aws_sdk_personalize::config::Builder::from(&cloud.config)
            .endpoint_url(emu.url())
            .build(),
    );
    emu.set_faults(FaultSpec::default())?;
    let jobs = import_jobs(&personalize).await?;
    let creates = counts.calls.get("CreateDatasetImportJob").copied().unwrap_or(0)
        - base_counts
            .calls
            .get("CreateDatasetImportJob")
            .copied()
            .unwrap_or(0);
    let mut per_group: std::collections::BTreeMap<String, usize> = Default::default();
    for (_, dataset) in &jobs {
        // `arn:…:dataset/<group>/INTERACTIONS`
        let group = dataset.rsplit('/').nth(1).unwrap_or(dataset).to_string();
        *per_group.entry(group).or_default() += 1;
    }
    let twice: Vec<String> = per_group
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(g, n)| format!("{g} ({n})"))
        .collect();
    println!(
        "imports:    {} jobs held for {} groups, {creates} CreateDatasetImportJob answered ({} not making a job), groups with more than one job: {}",
        jobs.len(),
        per_group.len(),
        creates.saturating_sub(jobs.len() as u64),
        if twice.is_empty() {
            "none".to_string()
        } else {
            twice.join(", ")
        }
    );

    let Ok(emu) = Arc::try_unwrap(emu) else {
        anyhow::bail!("the emulator is still shared");
    };
    emu.shutdown().await?;
    if converged < groups {
        let log = std::fs::read_to_string(&log_paths[0]).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(20).collect();
        anyhow::bail!(
            "{} of {groups} groups did not converge; the daemon's last lines:\n{}",
            groups - converged,
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
    anyhow::ensure!(
        overlaps.is_empty(),
        "{} groups were worked on by two replicas at once (first: {})",
        overlaps.len(),
        overlaps
            .first()
            .map(|(a, _)| a.group.as_str())
            .unwrap_or_default()
    );
    Ok(())
}
