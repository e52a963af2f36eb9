//! The daemon end to end on moto: the `run` binary (S3 notifications → SQS → desired generations, bad
//! files reported on SNS, SIGTERM), and in-process replicas sharing one DynamoDB table under leases.

mod support;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use personalize_ops::daemon::{
    Daemon, DaemonConfig, GroupReconciler, PassError, PassInput, PassReport, PassSink, PassStatus,
};
use personalize_ops::metrics::MemorySink;
use personalize_ops::notify::{Notifications, SnsNotifier};
use personalize_ops::objects::ObjectUrl;
use personalize_ops::store::{DesiredSource, DynamoStore, NewDesired, ResourceKind, StateStore, SystemClock};
use serde_json::Value;
use support::aws::{SerialMoto, SerialState};
use support::cloud::{Deployment, notes, subscribed_queue, visible_and_in_flight};
use support::daemon::{converged, replica_config};
use support::moto::{Moto, unique_name};
use support::process::{Process, fast_settings, http_get};
use support::wait::{PATIENCE, eventually, wait_until};
use tokio_util::sync::CancellationToken;

fn config_file(group: &str) -> String {
    serde_json::json!({"datasetGroup": {"serviceConfig": {"name": group}}}).to_string()
}

type Cloud = Deployment;

async fn cloud(moto: &Moto) -> Cloud {
    Deployment::new(moto, 3).await
}

fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_personalize-ops"))
}

/// The environment that points the binary at moto.
fn daemon_env(moto: &Moto, c: &Cloud) -> Vec<(String, String)> {
    c.daemon_env(&moto.endpoint())
}

fn status_json(env: &[(String, String)], group: &str) -> Value {
    let out = Command::new(binary())
        .args(["status", group, "--format", "json"])
        .env_remove("RUST_LOG")
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()
        .expect("run status");
    assert!(
        out.status.success(),
        "status {group}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("status JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_run_binary_records_generations_reports_bad_files_and_stops_on_sigterm() {
    let moto = Moto::start();
    let c = cloud(&moto).await;
    let env = daemon_env(&moto, &c);
    let mut daemon = Process::start(&["run"], &env);

    // A valid file becomes generation 1; its event delivered five more times changes nothing.
    let etag = c.upload("train/dup/config.json", config_file("dup")).await;
    eventually("generation 1 of dup", || async {
        c.generation("dup").await == Some(1)
    })
    .await;
    let event = serde_json::json!({"Records": [{"eventVersion": "2.1", "eventSource": "aws:s3",
        "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": c.bucket}, "object": {"key": "train%2Fdup%2Fconfig.json", "size": 10, "eTag": etag}}}]})
    .to_string();
    for _ in 0..5 {
        c.sqs
            .send_message()
            .queue_url(&c.queue_url)
            .message_body(&event)
            .send()
            .await
            .expect("send");
    }
    // Bad files of every kind, and hostile keys: reported or ignored, never a crash.
    c.upload(
        "train/bad/config.json",
        r#"{"datasetGroup": {"serviceConfig": {"name": "bad", "nope": 1}}}"#,
    )
    .await;
    c.upload("train/garbage.json", "this is not JSON").await;
    c.upload("train/huge/config.json", vec![b' '; 10 * 1024 * 1024])
        .await;
    c.upload("train/../x.json", config_file("escape")).await;
    c.upload("train/ünï cødé+x/config.json", config_file("unicode"))
        .await;
    eventually("every message handled", || async {
        c.generation("unicode").await == Some(1) && visible_and_in_flight(&c.sqs, &c.queue_url).await == 0
    })
    .await;
    assert_eq!(c.generation("dup").await, Some(1), "duplicates are no-ops");
    assert_eq!(c.generation("escape").await, None, "a key with .. is refused");
    assert_eq!(c.generation("bad").await, None);
    assert!(
        daemon.child.try_wait().expect("poll").is_none(),
        "the daemon is alive:\n{}",
        daemon.log()
    );

    let mut failed = Vec::new();
    let started = Instant::now();
    while failed.len() < 3 && started.elapsed() < PATIENCE {
        failed.extend(notes(&c.sqs, &c.notes_url, 1).await);
    }
    assert_eq!(failed.len(), 3, "{failed:?}");
    assert!(failed.iter().all(|n| n["status"] == "UPDATE FAILED"));
    let text = serde_json::to_string(&failed).expect("serialise");
    assert!(text.contains("nope"), "the unknown key is named: {text}");
    assert!(text.contains("Could not validate JSON"), "{text}");
    assert!(text.contains("10485760 bytes"), "{text}");

    // The health endpoint: alive, and ready because the queue and the table answer.
    let port = daemon
        .log()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["message"] == "health endpoint listening")
        .and_then(|v| {
            v["address"]
                .as_str()
                .and_then(|a| a.rsplit(':').next())
                .map(str::to_string)
        })
        .expect("the health address is logged");
    let alive = http_get(&port, "/healthz");
    assert!(alive.starts_with("HTTP/1.1 200"), "{alive}");
    assert!(
        alive.contains(r#""name":"dispatcher""#),
        "the dispatcher is watched: {alive}"
    );
    let ready = http_get(&port, "/readyz");
    assert!(ready.starts_with("HTTP/1.1 200"), "{ready}");
    assert!(ready.contains(r#""ready":true"#), "{ready}");

    // `status` reads the same table.
    let status = status_json(&env, "unicode");
    assert_eq!(status["desiredGeneration"], 1);
    assert_eq!(
        status["source"],
        format!("s3://{}/train/ünï cødé+x/config.json", c.bucket)
    );

    // Log lines are JSON and carry the dataset group of the worker's span.
    eventually("a pass over dup logged", || async {
        daemon
            .log()
            .lines()
            .any(|l| serde_json::from_str::<Value>(l).is_ok_and(|v| v["span"]["dataset_group"] == "dup"))
    })
    .await;

    daemon.signal("TERM");
    let status = daemon.wait(Duration::from_secs(25));
    let log = daemon.log();
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "exit after SIGTERM:\n{log}"
    );
    assert!(log.contains("daemon stopped"), "{log}");
}

#[test]
fn run_without_its_settings_is_a_usage_error() {
    let out = Command::new(binary())
        .arg("run")
        .env_remove("RUST_LOG")
        .env_remove("PERSONALIZE_OPS__DAEMON__BUCKET")
        .env_remove("PERSONALIZE_OPS__DAEMON__QUEUE_URL")
        .env_remove("PERSONALIZE_OPS__DAEMON__TABLE_NAME")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("daemon.bucket") && err.contains("daemon.table_name"),
        "{err}"
    );
}

/// A reconciler that converges every group after `pending` pending passes, taking `delay` per pass, and records
/// whether any group was ever in two passes at once (across all replicas sharing it).
struct Scripted {
    delay: Duration,
    pending: u32,
    calls: Mutex<HashMap<String, u32>>,
    running: Mutex<HashMap<String, u32>>,
    overlapped: AtomicBool,
}

impl Scripted {
    fn new(delay: Duration, pending: u32) -> Arc<Self> {
        Arc::new(Self {
            delay,
            pending,
            calls: Mutex::new(HashMap::new()),
            running: Mutex::new(HashMap::new()),
            overlapped: AtomicBool::new(false),
        })
    }

    fn calls(&self, group: &str) -> u32 {
        self.calls.lock().expect("lock").get(group).copied().unwrap_or(0)
    }
}

#[async_trait::async_trait]
impl GroupReconciler for Scripted {
    async fn pass(&self, input: PassInput<'_>, _sink: &PassSink) -> Result<PassReport, PassError> {
        let call = {
            let mut calls = self.calls.lock().expect("lock");
            let n = calls.entry(input.group.to_string()).or_default();
            *n += 1;
            *n
        };
        {
            let mut running = self.running.lock().expect("lock");
            let n = running.entry(input.group.to_string()).or_default();
            *n += 1;
            if *n > 1 {
                self.overlapped.store(true, Ordering::SeqCst);
            }
        }
        tokio::time::sleep(self.delay).await;
        *self
            .running
            .lock()
            .expect("lock")
            .get_mut(input.group)
            .expect("entry") -= 1;
        let status = if call <= self.pending {
            PassStatus::Pending {
                retry_after: Duration::from_millis(100),
            }
        } else {
            PassStatus::Converged
        };
        Ok(PassReport {
            status,
            ..converged(input.group)
        })
    }
}

fn replica(
    store: Arc<DynamoStore>,
    reconciler: Arc<dyn GroupReconciler>,
    sns: &aws_sdk_sns::Client,
    topic: &str,
    config: DaemonConfig,
) -> (
    CancellationToken,
    tokio::task::JoinHandle<Result<(), personalize_ops::daemon::DaemonError>>,
) {
    let daemon = Arc::new(Daemon::new(
        store,
        reconciler,
        Notifications::new(vec![Arc::new(SnsNotifier::new(sns.clone(), topic))]),
        Arc::new(MemorySink::new()),
        Arc::new(SystemClock),
        config,
    ));
    let token = CancellationToken::new();
    let task = tokio::spawn(daemon.run(None, token.clone()));
    (token, task)
}

async fn desire(store: &DynamoStore, group: &str) {
    let new = NewDesired {
        group: group.into(),
        text: config_file(group),
        source: DesiredSource {
            url: ObjectUrl::new("data", format!("train/{group}/config.json")),
            etag: None,
            version_id: None,
            sequencer: None,
            last_modified: Some(chrono::Utc::now()),
        },
    };
    store.put_desired(&new).await.expect("put desired");
}

/// Two replicas on one table (a serial moto, so conditional writes are atomic as on DynamoDB): every
/// group is worked on by one replica at a time and announced once on SNS; a replica that dies mid-pass
/// loses its group to the other within the lease duration.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_one_table_one_owner_per_group_and_takeover() {
    let moto = SerialMoto::start();
    let SerialState { ddb, sns, sqs, table } = moto.state().await;
    let store = Arc::new(DynamoStore::new(ddb, table).with_max_clock_skew(Duration::from_secs(1)));
    let (topic, notes_url) = subscribed_queue(&sns, &sqs, "notes", "notes").await;
    let groups: Vec<String> = (0..6).map(|i| format!("g{i}")).collect();
    for g in &groups {
        desire(&store, g).await;
    }

    // Only c's lease may lapse here. A 4 s lease (3 s valid after the 1 s skew) lapses when a
    // background renewal waits about 2 s on the serial moto of a loaded 2-core machine; the turn
    // then stops and the group's pass is run again, failing "no pass repeated" with nothing wrong.
    let steady = |owner: &str| DaemonConfig {
        lease_duration: Duration::from_secs(60),
        ..replica_config(owner)
    };
    let shared = Scripted::new(Duration::from_millis(200), 2);
    let (stop_a, task_a) = replica(store.clone(), shared.clone(), &sns, &topic, steady("a"));
    let (stop_b, task_b) = replica(store.clone(), shared.clone(), &sns, &topic, steady("b"));
    let mut complete: Vec<String> = Vec::new();
    let started = Instant::now();
    while complete.len() < groups.len() && started.elapsed() < PATIENCE {
        for n in notes(&sqs, &notes_url, 0).await {
            assert_eq!(n["status"], "UPDATE COMPLETE", "{n}");
            complete.push(n["datasetGroup"].as_str().expect("group").to_string());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    complete.extend(
        notes(&sqs, &notes_url, 0)
            .await
            .iter()
            .map(|n| n["datasetGroup"].to_string()),
    );
    complete.sort();
    assert_eq!(complete, groups, "each group announced exactly once");
    assert!(
        !shared.overlapped.load(Ordering::SeqCst),
        "a group was in two passes at once"
    );
    for g in &groups {
        assert_eq!(shared.calls(g), 3, "{g}: no pass repeated by the other replica");
    }

    // Replica c hangs in its pass over `slow` and dies there without releasing; a new replica takes
    // over once c's lease lapses. a and b stop first so that c is the one that takes `slow`.
    stop_a.cancel();
    stop_b.cancel();
    for task in [task_a, task_b] {
        tokio::time::timeout(PATIENCE, task)
            .await
            .expect("stops")
            .expect("no panic")
            .expect("no intake failure");
    }
    // c takes `slow` (its start-up resync marks the converged groups due at their slots in the
    // interval, not now).
    // c keeps the short lease: its lapse is what the takeover waits for.
    let mut c_config = replica_config("c");
    c_config.concurrency = 16;
    let (_stop_c, task_c) = replica(store.clone(), Arc::new(Hang), &sns, &topic, c_config);
    desire(&store, "slow").await;
    eventually("c holds slow", || async {
        store
            .group("slow")
            .await
            .expect("read")
            .and_then(|g| g.lease.owner)
            .as_deref()
            == Some("c")
    })
    .await;
    task_c.abort();
    let died = Instant::now();
    // b2 resyncs at start: the converged groups wait for their slots; only `slow` is announced.
    let b2 = Scripted::new(Duration::ZERO, 0);
    let (stop_b2, task_b2) = replica(store.clone(), b2.clone(), &sns, &topic, steady("b2"));
    let mut announced = Vec::new();
    while announced.is_empty() {
        assert!(died.elapsed() < PATIENCE, "slow was never taken over");
        announced = notes(&sqs, &notes_url, 0).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let waited = died.elapsed();
    tokio::time::sleep(Duration::from_secs(1)).await;
    announced.extend(notes(&sqs, &notes_url, 0).await);
    let names: Vec<&Value> = announced.iter().map(|n| &n["datasetGroup"]).collect();
    assert_eq!(names, ["slow"], "only the taken-over group is announced");
    assert!(
        waited >= Duration::from_secs(1),
        "taken over after {waited:?}, before c's lease lapsed"
    );
    let state = store.group("slow").await.expect("read").expect("group");
    assert!(state.observed.expect("observed").converged);
    assert!(state.lease.epoch >= 2, "{:?}", state.lease);
    stop_b2.cancel();
    tokio::time::timeout(PATIENCE, task_b2)
        .await
        .expect("b2 stops")
        .expect("no panic")
        .expect("no intake failure");
}

/// A pass that never returns (a frozen replica).
struct Hang;

#[async_trait::async_trait]
impl GroupReconciler for Hang {
    async fn pass(&self, _input: PassInput<'_>, _sink: &PassSink) -> Result<PassReport, PassError> {
        std::future::pending().await
    }
}

fn run_binary(args: &[&str]) -> std::process::Output {
    Command::new(binary())
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("run the binary")
}

#[test]
fn local_mode_watches_the_directory_reports_errors_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let root_arg = root.to_str().expect("UTF-8 path");
    std::fs::create_dir_all(root.join("train/shop")).expect("mkdir");
    std::fs::write(root.join("train/shop/config.json"), config_file("shop")).expect("write");
    let mut daemon = Process::start(
        &[
            "--log-format",
            "json",
            "local",
            root_arg,
            "--scan-interval-ms",
            "100",
        ],
        &[],
    );
    let started = Instant::now();
    let status = loop {
        let out = run_binary(&["status", "shop", "--local", root_arg, "--format", "json"]);
        if out.status.success() {
            break serde_json::from_slice::<Value>(&out.stdout).expect("status JSON");
        }
        assert!(
            started.elapsed() < PATIENCE,
            "shop never recorded:\n{}",
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(status["desiredGeneration"], 1);
    assert_eq!(status["source"], "s3://local/train/shop/config.json");

    // A file written later, and a bad one: a new generation, and an error in notifications.jsonl.
    std::thread::sleep(Duration::from_millis(50));
    std::fs::write(
        root.join("train/shop/config.json"),
        config_file("shop").replace('{', "{ "),
    )
    .expect("rewrite");
    std::fs::write(root.join("train/broken.json"), "{ nope").expect("write");
    let notes = root.join("notifications.jsonl");
    let started = Instant::now();
    loop {
        let text = std::fs::read_to_string(&notes).unwrap_or_default();
        let generation = run_binary(&["status", "shop", "--local", root_arg, "--format", "json"]);
        let generation: Value = serde_json::from_slice(&generation.stdout).unwrap_or_default();
        if text.contains("broken.json") && generation["desiredGeneration"] == 2 {
            // Resource events of shop (its roles are placeholders in local mode) may follow it.
            let line: Value =
                serde_json::from_str(text.lines().find(|l| l.contains("broken.json")).expect("a line"))
                    .expect("JSON line");
            assert_eq!(line["status"], "UPDATE FAILED");
            assert!(
                line["message"]["default"]
                    .as_str()
                    .expect("default")
                    .contains("Could not validate JSON")
            );
            break;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "no error or generation 2:\n{}",
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // `recommend --local` reaches the running built-in Personalize.
    let recommend = || {
        run_binary(&[
            "recommend",
            "--local",
            root_arg,
            "--campaign",
            "none",
            "--user-id",
            "u1",
        ])
    };
    let out = recommend();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no campaign named \"none\""));

    daemon.signal("TERM");
    let status = daemon.wait(Duration::from_secs(25));
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "exit after SIGTERM:\n{}",
        daemon.log()
    );
    assert!(
        !root.join("emulator.url").exists(),
        "the URL file is removed at exit"
    );
    let out = recommend();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is `personalize-ops local"));
    let out = run_binary(&["status", "nothing", "--local", root_arg]);
    assert_eq!(out.status.code(), Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_killed_with_sigkill_loses_no_event_and_its_successor_takes_over() {
    let moto = Moto::start();
    let c = cloud(&moto).await;
    let mut env = daemon_env(&moto, &c);
    env.push((
        "PERSONALIZE_OPS__DAEMON__VISIBILITY_TIMEOUT_SECS".into(),
        "2".into(),
    ));
    env.push(("PERSONALIZE_OPS__DAEMON__LEASE_DURATION_SECS".into(), "3".into()));
    env.push(("PERSONALIZE_OPS__DAEMON__MAX_CLOCK_SKEW_SECS".into(), "1".into()));
    let mut first = Process::start(&["run"], &env);
    for i in 0..5 {
        c.upload(&format!("train/k{i}/config.json"), config_file(&format!("k{i}")))
            .await;
    }
    // Killed while the uploads' messages are arriving: some handled, some received and not deleted,
    // some not received yet.
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(first.child.try_wait().expect("poll").is_none(), "{}", first.log());
    first.signal("KILL");
    assert!(first.wait(Duration::from_secs(10)).is_some(), "SIGKILL ends it");
    let killed_at = chrono::Utc::now();

    let second = Process::start(&["run"], &env);
    eventually("every upload recorded once", || async {
        let mut all = true;
        for i in 0..5 {
            all &= c.generation(&format!("k{i}")).await == Some(1);
        }
        all && visible_and_in_flight(&c.sqs, &c.queue_url).await == 0
    })
    .await;
    // Every group was worked on by the successor after the kill (it resyncs at start; the first one's
    // leases, if any, lapsed).
    eventually("the successor worked on every group", || async {
        let mut all = true;
        for i in 0..5 {
            let observed = c
                .store
                .group(&format!("k{i}"))
                .await
                .expect("read")
                .and_then(|g| g.observed);
            all &= observed.is_some_and(|o| o.generation == 1 && o.updated_at > killed_at);
        }
        all
    })
    .await;
    assert!(second.log().contains("daemon started"));
}

fn lines_with(path: &std::path::Path, needle: &str) -> usize {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(needle))
        .count()
}

/// A `local` directory under `work` with the shop's data and `config` as its parameter file; returns
/// the directory.
fn local_shop(work: &std::path::Path, config: &str) -> PathBuf {
    let root = work.join("local");
    let shop = root.join("train/shop");
    std::fs::create_dir_all(&shop).expect("mkdir");
    for csv in ["interactions.csv", "users.csv"] {
        std::fs::copy(format!("tests/fixtures/data/{csv}"), shop.join(csv)).expect("copy data");
    }
    std::fs::write(shop.join("config.json"), config).expect("config");
    root
}

/// [`local_shop`] under `work` with the fast settings, and the arguments of a `local` run on it
/// (JSON logs, a 100 ms scan, durations scaled by `time_scale`).
fn local_shop_run(work: &std::path::Path, config: &str, time_scale: &str) -> (PathBuf, Vec<String>) {
    let settings = fast_settings(work);
    let root = local_shop(work, config);
    let args = [
        "--settings",
        settings.to_str().expect("UTF-8"),
        "--log-format",
        "json",
        "local",
        root.to_str().expect("UTF-8"),
        "--scan-interval-ms",
        "100",
        "--time-scale",
        time_scale,
    ];
    (root.clone(), args.iter().map(|a| a.to_string()).collect())
}

/// A Personalize client of the built-in Personalize a running `local` in `root` serves.
async fn local_personalize(root: &std::path::Path) -> aws_sdk_personalize::Client {
    let url = std::fs::read_to_string(root.join("emulator.url")).expect("emulator.url");
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(url.trim())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_credential_types::Credentials::new("t", "t", None, None, "t"))
        .load()
        .await;
    aws_sdk_personalize::Client::new(&config)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_mode_converges_survives_sigkill_mid_run_and_serves_recommendations() {
    let work = tempfile::tempdir().expect("tempdir");
    let shop = std::fs::read_to_string("tests/fixtures/daemon/shop.json").expect("fixture");
    // Durations scaled so that training lasts seconds: long enough to be killed in the middle of it.
    let (root, args) = local_shop_run(work.path(), &shop, "0.001");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let root_arg = root.to_str().expect("UTF-8");
    let metrics = root.join("metrics.jsonl");
    let notes = root.join("notifications.jsonl");

    let mut first = Process::start(&args, &[]);
    wait_until("training started", &|| first.log(), || {
        lines_with(&metrics, "SolutionVersionCreated") == 1
    });
    first.signal("KILL");
    assert!(first.wait(Duration::from_secs(10)).is_some());
    assert_eq!(
        lines_with(&notes, "UPDATE COMPLETE"),
        0,
        "killed before converging"
    );

    // The successor resumes from Personalize's state (here the built-in one, saved in DIR/emulator;
    // a create acknowledged just before the kill may not have been saved, and is then made again,
    // which is why Personalize's listings, not the Created counters, are the measure below).
    let mut second = Process::start(&args, &[]);
    wait_until("UPDATE COMPLETE", &|| second.log(), || {
        lines_with(&notes, "UPDATE COMPLETE") == 1
    });
    let personalize = local_personalize(&root).await;
    let solutions = personalize.list_solutions().send().await.expect("solutions");
    assert_eq!(solutions.solutions().len(), 1);
    let versions = personalize
        .list_solution_versions()
        .solution_arn(solutions.solutions()[0].solution_arn().expect("arn"))
        .send()
        .await
        .expect("versions");
    assert_eq!(
        versions.solution_versions().len(),
        1,
        "no second training after the restart"
    );
    assert_eq!(
        personalize
            .list_campaigns()
            .send()
            .await
            .expect("campaigns")
            .campaigns()
            .len(),
        1
    );

    let status = run_binary(&["status", "shop", "--local", root_arg, "--format", "json"]);
    let status: Value = serde_json::from_slice(&status.stdout).expect("status JSON");
    assert_eq!(status["state"], "converged", "{status}");
    assert!(
        status["resources"]
            .as_array()
            .expect("resources")
            .iter()
            .all(|r| r["status"] == "ACTIVE"),
        "{status}"
    );
    let out = run_binary(&[
        "recommend",
        "--local",
        root_arg,
        "--campaign",
        "shop-campaign",
        "--user-id",
        "1",
        "--num-results",
        "5",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 5);

    second.signal("TERM");
    let code = second.wait(Duration::from_secs(25)).and_then(|s| s.code());
    assert_eq!(code, Some(0), "{}", second.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_run_binary_converges_an_upload_and_announces_it_on_sns() {
    let moto = Moto::start();
    let c = cloud(&moto).await;
    // The built-in Personalize in this process, reading import data from the moto bucket.
    let objects = Arc::new(personalize_ops::objects::S3Store::new(c.s3.clone()));
    let emu = personalize_ops::emulator::start(personalize_ops::emulator::EmulatorConfig::new(objects))
        .await
        .expect("emulator");
    let work = tempfile::tempdir().expect("tempdir");
    let settings = fast_settings(work.path());
    let mut env = daemon_env(&moto, &c);
    env.push(("AWS_ENDPOINT_URL_PERSONALIZE".into(), emu.url()));
    env.push((
        "PERSONALIZE_OPS_SETTINGS".into(),
        settings.to_str().expect("UTF-8").into(),
    ));
    env.push((
        "PERSONALIZE_OPS__METRICS__NAMESPACE".into(),
        "personalize_ops_e2e".into(),
    ));
    env.push(("PERSONALIZE_OPS__METRICS__FLUSH_INTERVAL_SECS".into(), "1".into()));
    let mut daemon = Process::start(&["run"], &env);

    for csv in ["interactions.csv", "users.csv"] {
        let body = std::fs::read(format!("tests/fixtures/data/{csv}")).expect("fixture data");
        c.upload(&format!("train/shop/{csv}"), body).await;
    }
    let config = std::fs::read("tests/fixtures/daemon/shop.json").expect("fixture config");
    c.upload("train/shop/config.json", config).await;

    let mut announced = Vec::new();
    let started = Instant::now();
    while announced.is_empty() {
        assert!(started.elapsed() < PATIENCE, "no notification:\n{}", daemon.log());
        announced = notes(&c.sqs, &c.notes_url, 1).await;
    }
    assert_eq!(announced.len(), 1, "{announced:?}");
    assert_eq!(announced[0]["status"], "UPDATE COMPLETE", "{announced:?}");
    assert_eq!(announced[0]["datasetGroup"], "shop");
    let state = c.store.group("shop").await.expect("read").expect("group");
    let observed = state.observed.expect("observed");
    assert!(observed.converged);
    assert!(
        observed.resources.iter().all(|r| r.status == "ACTIVE"),
        "{observed:?}"
    );
    assert!(
        observed
            .resources
            .iter()
            .any(|r| r.kind == ResourceKind::Campaign)
    );

    // A second group whose training Personalize fails: UPDATE FAILED names the solution version and
    // carries Personalize's reason.
    emu.set_faults(
        personalize_ops::emulator::faults::FaultSpec::parse("fail.solution-version=^broken")
            .expect("fault spec"),
    )
    .expect("faults");
    let broken = String::from_utf8(std::fs::read("tests/fixtures/daemon/shop.json").expect("fixture"))
        .expect("UTF-8")
        .replace("\"shop", "\"broken");
    for csv in ["interactions.csv", "users.csv"] {
        let body = std::fs::read(format!("tests/fixtures/data/{csv}")).expect("fixture data");
        c.upload(&format!("train/broken/{csv}"), body).await;
    }
    c.upload("train/broken/config.json", broken).await;
    let mut failed = Vec::new();
    while failed.is_empty() {
        assert!(
            started.elapsed() < PATIENCE,
            "no failure notification:\n{}",
            daemon.log()
        );
        failed = notes(&c.sqs, &c.notes_url, 1).await;
    }
    assert_eq!(failed[0]["status"], "UPDATE FAILED", "{failed:?}");
    assert_eq!(failed[0]["datasetGroup"], "broken");
    let failures = failed[0]["failures"].as_array().expect("failures");
    assert!(
        failures.iter().any(|f| f["kind"] == "solution version"
            && f["name"] == "broken-up"
            && !f["reason"].as_str().unwrap_or("").is_empty()),
        "{failures:?}"
    );

    // CloudWatch (moto) got the counters, flushed at the latest on shutdown.
    daemon.signal("TERM");
    let code = daemon.wait(Duration::from_secs(25)).and_then(|s| s.code());
    assert_eq!(code, Some(0), "{}", daemon.log());
    let cloudwatch = aws_sdk_cloudwatch::Client::new(&moto.sdk_config().await);
    let listed = cloudwatch
        .list_metrics()
        .namespace("personalize_ops_e2e")
        .send()
        .await
        .expect("list metrics");
    let names: Vec<String> = listed
        .metrics()
        .iter()
        .filter_map(|m| m.metric_name().map(str::to_string))
        .collect();
    // The offline metrics of the new solution version, with its three dimensions.
    let solution_metric = listed
        .metrics()
        .iter()
        .find(|m| m.dimensions().iter().any(|d| d.name() == Some("SolutionVersion")));
    let dims: Vec<&str> = solution_metric
        .map(|m| m.dimensions().iter().filter_map(|d| d.name()).collect())
        .unwrap_or_default();
    assert_eq!(dims, ["DatasetGroup", "Solution", "SolutionVersion"], "{names:?}");
    for name in [
        "ConfigurationsProcessed",
        "JobSuccess",
        "CampaignCreated",
        "SolutionVersionCreated",
    ] {
        assert!(names.iter().any(|n| n == name), "{name} missing from {names:?}");
    }
    emu.shutdown().await.expect("emulator stops");
}

/// Two `run` processes on one table (DynamoDB on a serial moto, so conditional writes are atomic as
/// on AWS) and one queue, with the built-in Personalize: every group converges once with no duplicate
/// create, and when one replica is killed mid-training the other finishes its groups.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_run_processes_share_the_work_and_survive_the_loss_of_one() {
    let moto = Moto::start();
    let serial = SerialMoto::start();
    let mut c = cloud(&moto).await;
    let ddb = aws_sdk_dynamodb::Client::new(&serial.sdk_config().await);
    c.table = unique_name("state");
    DynamoStore::create_table(&ddb, &c.table).await.expect("table");
    c.store = Arc::new(DynamoStore::new(ddb, c.table.clone()));
    let objects = Arc::new(personalize_ops::objects::S3Store::new(c.s3.clone()));
    let mut emulator_config = personalize_ops::emulator::EmulatorConfig::new(objects);
    // Training lasts seconds, so that groups are in flight when a replica dies.
    emulator_config.time_scale = 0.001;
    let emu = personalize_ops::emulator::start(emulator_config)
        .await
        .expect("emulator");
    let work = tempfile::tempdir().expect("tempdir");
    let settings = fast_settings(work.path());
    let mut env = daemon_env(&moto, &c);
    env.push(("AWS_ENDPOINT_URL_PERSONALIZE".into(), emu.url()));
    env.push(("AWS_ENDPOINT_URL_DYNAMODB".into(), serial.endpoint()));
    env.push((
        "PERSONALIZE_OPS_SETTINGS".into(),
        settings.to_str().expect("UTF-8").into(),
    ));
    let a = Process::start(&["run"], &env);
    let b = Process::start(&["run"], &env);

    let groups = ["g1", "g2", "g3", "g4"];
    let template = std::fs::read_to_string("tests/fixtures/daemon/shop.json").expect("fixture");
    for g in groups {
        for csv in ["interactions.csv", "users.csv"] {
            let body = std::fs::read(format!("tests/fixtures/data/{csv}")).expect("fixture data");
            c.upload(&format!("train/{g}/{csv}"), body).await;
        }
        c.upload(
            &format!("train/{g}/config.json"),
            template.replace("\"shop", &format!("\"{g}")),
        )
        .await;
    }
    // Kill the first replica seen holding a group (either may take all four: there are fewer groups
    // than workers); the other one must finish its groups.
    let pids = [format!("-{}-", a.child.id()), format!("-{}-", b.child.id())];
    let started = Instant::now();
    let first = 'wait: loop {
        assert!(
            started.elapsed() < PATIENCE,
            "no replica took a group:\n{}\n{}",
            a.log(),
            b.log()
        );
        for g in groups {
            let owner = c.store.group(g).await.expect("read").and_then(|s| s.lease.owner);
            if let Some(i) = owner.and_then(|o| pids.iter().position(|p| o.contains(p))) {
                break 'wait i;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let (mut killed, survivor) = if first == 0 { (a, b) } else { (b, a) };
    killed.signal("KILL");
    assert!(killed.wait(Duration::from_secs(10)).is_some());

    let mut complete: Vec<String> = Vec::new();
    while complete.len() < groups.len() {
        assert!(
            started.elapsed() < PATIENCE * 2,
            "only {complete:?} converged:\n{}",
            survivor.log()
        );
        for n in notes(&c.sqs, &c.notes_url, 1).await {
            assert_eq!(n["status"], "UPDATE COMPLETE", "{n}");
            complete.push(n["datasetGroup"].as_str().expect("group").to_string());
        }
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    complete.extend(
        notes(&c.sqs, &c.notes_url, 0)
            .await
            .iter()
            .map(|n| n["datasetGroup"].to_string()),
    );
    complete.sort();
    assert_eq!(complete, groups, "each group announced exactly once");

    // No duplicate create: one solution with one version and one campaign per group.
    let personalize = aws_sdk_personalize::Client::new(
        &aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(emu.url())
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_credential_types::Credentials::new("t", "t", None, None, "t"))
            .load()
            .await,
    );
    let solutions = personalize
        .list_solutions()
        .max_results(100)
        .send()
        .await
        .expect("solutions");
    assert_eq!(solutions.solutions().len(), groups.len());
    for solution in solutions.solutions() {
        let versions = personalize
            .list_solution_versions()
            .solution_arn(solution.solution_arn().expect("arn"))
            .send()
            .await
            .expect("versions");
        assert_eq!(versions.solution_versions().len(), 1, "{solution:?}");
    }
    let campaigns = personalize
        .list_campaigns()
        .max_results(100)
        .send()
        .await
        .expect("campaigns");
    assert_eq!(campaigns.campaigns().len(), groups.len());
    drop(survivor);
    emu.shutdown().await.expect("emulator stops");
}

/// The schedules end to end: `local` with `rate(1 minute)` on an update schedule trains a new
/// (UPDATE) version a minute after the schedule was recorded and moves the campaign to it, with one
/// notification naming the schedule and the fire, and the Scheduled* metrics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_mode_update_schedule_trains_a_new_version_and_moves_the_campaign() {
    let work = tempfile::tempdir().expect("tempdir");
    let mut config: Value =
        serde_json::from_str(&std::fs::read_to_string("tests/fixtures/daemon/shop.json").expect("fixture"))
            .expect("JSON");
    config["solutions"][0]["workflowConfig"] = serde_json::json!({"schedules": {"update": "rate(1 minute)"}});
    let (root, args) = local_shop_run(work.path(), &config.to_string(), "0");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let notes = root.join("notifications.jsonl");
    let metrics = root.join("metrics.jsonl");
    let mut daemon = Process::start(&args, &[]);
    wait_until("UPDATE COMPLETE", &|| daemon.log(), || {
        lines_with(&notes, "UPDATE COMPLETE") == 1
    });
    // The first fire is one minute after the schedule was recorded.
    let started = Instant::now();
    while lines_with(&notes, "SCHEDULED RUN") == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(150),
            "no scheduled run\n{}",
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let text = std::fs::read_to_string(&notes).expect("notifications");
    let note = text
        .lines()
        .find(|l| l.contains("SCHEDULED RUN"))
        .expect("scheduled note");
    assert!(note.contains("SCHEDULED RUN COMPLETE"), "{note}");
    assert!(note.contains("solution-maintenance-update-shop-up"), "{note}");

    let personalize = local_personalize(&root).await;
    let solutions = personalize.list_solutions().send().await.expect("solutions");
    let solution_arn = solutions.solutions()[0].solution_arn().expect("arn").to_string();
    let versions = personalize
        .list_solution_versions()
        .solution_arn(&solution_arn)
        .send()
        .await
        .expect("versions");
    assert!(versions.solution_versions().len() >= 2, "{versions:?}");
    // The version the notification names is an UPDATE version, and the campaign serves it.
    let scheduled = versions
        .solution_versions()
        .iter()
        .filter_map(|v| v.solution_version_arn())
        .find(|arn| note.contains(arn))
        .expect("the notification names the new version")
        .to_string();
    let described = personalize
        .describe_solution_version()
        .solution_version_arn(&scheduled)
        .send()
        .await
        .expect("describe version");
    assert_eq!(
        described
            .solution_version()
            .and_then(|v| v.training_mode())
            .map(|m| m.as_str()),
        Some("UPDATE")
    );
    let campaigns = personalize.list_campaigns().send().await.expect("campaigns");
    let campaign = personalize
        .describe_campaign()
        .campaign_arn(campaigns.campaigns()[0].campaign_arn().expect("arn"))
        .send()
        .await
        .expect("describe campaign");
    assert_eq!(
        campaign.campaign().and_then(|c| c.solution_version_arn()),
        Some(scheduled.as_str())
    );
    assert!(
        lines_with(&metrics, "\"ScheduledRuns\"") >= 1,
        "ScheduledRuns counted"
    );

    daemon.signal("TERM");
    let code = daemon.wait(Duration::from_secs(25)).and_then(|s| s.code());
    assert_eq!(code, Some(0), "{}", daemon.log());
}
