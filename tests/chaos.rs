//! The chaos suite: processes killed at random points, replicas paused across a takeover, storms of
//! duplicate and out-of-order events, outages of the state table. Each case checks what the README's
//! "Guarantees" promise. Loopback only; every random choice comes from a seed printed before the
//! case runs (`CHAOS_SEED=<n>` replays one), so a red run can be replayed exactly.

mod support;

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_personalize::config::retry::RetryConfig;
use aws_sdk_personalize::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_sqs::types::QueueAttributeName;
use personalize_ops::emulator::{self, Emulator, EmulatorConfig, Quotas};
use personalize_ops::objects::S3Store;
use personalize_ops::store::{DynamoStore, StateStore};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;

use support::aws::SerialMoto;
use support::cloud::{Deployment, receive_batch};
use support::moto::{Moto, unique_name};
use support::process::{Process, fast_settings};
use support::relay::Relay;
use support::wait::{PATIENCE, eventually, wait_until};

/// The seeds of a case: `CHAOS_SEED` alone when set (replaying a red run), else `count` seeds
/// derived from the case's name and the time, each printed before it is used.
fn seeds(case: &str, count: usize) -> Vec<u64> {
    if let Some(seed) = std::env::var("CHAOS_SEED").ok().and_then(|s| s.parse().ok()) {
        println!("{case}: replaying seed {seed}");
        return vec![seed];
    }
    let base = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let seeds: Vec<u64> = (0..count as u64).map(|i| base.wrapping_add(i * 7919)).collect();
    println!("{case}: seeds {seeds:?} (replay one with CHAOS_SEED=<seed>)");
    seeds
}

/// A control-plane client of the built-in Personalize at `url`, without SDK retries: every
/// answer the test sees is one the emulator gave.
fn personalize_at(url: &str) -> aws_sdk_personalize::Client {
    let conf = aws_sdk_personalize::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(url)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("AKIDCHAOS", "secret", None, None, "chaos"))
        .retry_config(RetryConfig::disabled())
        .build();
    aws_sdk_personalize::Client::from_conf(conf)
}

/// The intake queue's visibility timeout in these tests (the daemon's setting and the queue's).
const VISIBILITY_SECS: u32 = 5;

/// Receives before the queue moves a message to the dead-letter queue (and the daemon's setting).
const MAX_RECEIVES: u32 = 3;

/// The daemon's world on loopback: moto for S3, SQS and SNS, a single-threaded moto for DynamoDB
/// (conditional writes atomic, as on AWS), the built-in Personalize in this process, and the
/// settings every replica runs with.
struct Stage {
    moto: Moto,
    serial: SerialMoto,
    c: Deployment,
    emu: Emulator,
    _work: tempfile::TempDir,
    settings: std::path::PathBuf,
}

impl Stage {
    /// `calls_per_second` paces each replica's Personalize calls; `time_scale` the emulator's
    /// lifecycles.
    async fn new(calls_per_second: f64, time_scale: f64) -> Self {
        let moto = Moto::start();
        let serial = SerialMoto::start();
        let mut c = Deployment::new(&moto, MAX_RECEIVES).await;
        // As the probes ran: a message a killed replica held comes back after 5 s.
        c.sqs
            .set_queue_attributes()
            .queue_url(&c.queue_url)
            .attributes(QueueAttributeName::VisibilityTimeout, VISIBILITY_SECS.to_string())
            .send()
            .await
            .expect("visibility timeout");
        let ddb = aws_sdk_dynamodb::Client::new(&serial.sdk_config().await);
        c.table = unique_name("state");
        DynamoStore::create_table(&ddb, &c.table).await.expect("table");
        c.store = Arc::new(DynamoStore::new(ddb, c.table.clone()));
        let objects = Arc::new(S3Store::new(c.s3.clone()));
        let mut config = EmulatorConfig::new(objects);
        config.time_scale = time_scale;
        config.quotas = Quotas {
            dataset_groups: 100,
            ..Quotas::default()
        };
        let emu = emulator::start(config).await.expect("emulator");
        let work = tempfile::tempdir().expect("tempdir");
        let settings = fast_settings(work.path());
        let text = std::fs::read_to_string(&settings).expect("settings");
        let rate = format!("calls_per_second = {calls_per_second:.1}");
        let paced = text.replace("calls_per_second = 200.0", &rate);
        assert!(paced.contains(&rate), "fast_settings sets calls_per_second");
        std::fs::write(&settings, paced).expect("settings");
        Self {
            moto,
            serial,
            c,
            emu,
            _work: work,
            settings,
        }
    }

    /// The environment of a `run` replica whose Personalize is at `personalize`.
    fn env(&self, personalize: &str) -> Vec<(String, String)> {
        let mut env = self.c.daemon_env(&self.moto.endpoint());
        env.extend(
            [
                ("AWS_ENDPOINT_URL_DYNAMODB", self.serial.endpoint()),
                ("AWS_ENDPOINT_URL_PERSONALIZE", personalize.to_string()),
                ("PERSONALIZE_OPS_SETTINGS", self.settings.display().to_string()),
                ("PERSONALIZE_OPS__DAEMON__ERROR_RETRY_SECS", "2".into()),
                (
                    "PERSONALIZE_OPS__DAEMON__VISIBILITY_TIMEOUT_SECS",
                    VISIBILITY_SECS.to_string(),
                ),
                (
                    "PERSONALIZE_OPS__DAEMON__MAX_RECEIVE_COUNT",
                    MAX_RECEIVES.to_string(),
                ),
            ]
            .map(|(k, v)| (k.to_string(), v)),
        );
        env
    }

    /// A `run` replica talking to the built-in Personalize at `personalize`.
    fn replica(&self, personalize: &str) -> Process {
        Process::start(&["run"], &self.env(personalize))
    }

    /// Uploads the fixture group as `group`: its data, then its parameter file.
    async fn upload_group(&self, group: &str) {
        let template = std::fs::read_to_string("tests/fixtures/daemon/shop.json").expect("fixture");
        for csv in ["interactions.csv", "users.csv"] {
            let body = std::fs::read(format!("tests/fixtures/data/{csv}")).expect("fixture data");
            self.c.upload(&format!("train/{group}/{csv}"), body).await;
        }
        self.c
            .upload(
                &format!("train/{group}/config.json"),
                template.replace("\"shop", &format!("\"{group}")),
            )
            .await;
    }

    /// The (dataset group, status) of every notification that arrived since the last call.
    async fn announcements(&self, wait_secs: i32) -> Vec<(String, String)> {
        receive_batch(&self.c.sqs, &self.c.notes_url, wait_secs)
            .await
            .iter()
            .map(|body| {
                let envelope: Value = serde_json::from_str(body).expect("SNS envelope");
                let note: Value =
                    serde_json::from_str(envelope["Message"].as_str().expect("message")).expect("body");
                (
                    note["datasetGroup"].as_str().unwrap_or_default().to_string(),
                    note["status"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect()
    }

    /// Whether the table records `group`'s latest desired generation as converged.
    async fn converged(&self, group: &str) -> bool {
        let Ok(Some(state)) = self.c.store.group(group).await else {
            return false;
        };
        match (state.desired, state.observed) {
            (Some(d), Some(o)) => o.generation == d.generation && o.converged,
            _ => false,
        }
    }

    /// Every resource of the fixture group `group` exists exactly once in Personalize: one dataset
    /// group, one import per dataset, one solution with one version, one campaign.
    async fn assert_one_of_each(&self, group: &str, context: &str) {
        let p = personalize_at(&self.emu.url());
        let groups = p
            .list_dataset_groups()
            .max_results(100)
            .send()
            .await
            .expect("groups");
        let mine: Vec<_> = groups
            .dataset_groups()
            .iter()
            .filter(|g| g.name() == Some(group))
            .collect();
        assert_eq!(mine.len(), 1, "{context}: dataset group {group}");
        let group_arn = mine[0].dataset_group_arn().expect("arn");
        let datasets = p
            .list_datasets()
            .dataset_group_arn(group_arn)
            .send()
            .await
            .expect("datasets");
        assert_eq!(datasets.datasets().len(), 2, "{context}: datasets of {group}");
        for d in datasets.datasets() {
            let imports = p
                .list_dataset_import_jobs()
                .dataset_arn(d.dataset_arn().expect("arn"))
                .send()
                .await
                .expect("imports");
            assert_eq!(
                imports.dataset_import_jobs().len(),
                1,
                "{context}: imports of {:?}",
                d.name()
            );
        }
        let solutions = p
            .list_solutions()
            .dataset_group_arn(group_arn)
            .send()
            .await
            .expect("solutions");
        assert_eq!(solutions.solutions().len(), 1, "{context}: solutions of {group}");
        let solution_arn = solutions.solutions()[0].solution_arn().expect("arn");
        let versions = p
            .list_solution_versions()
            .solution_arn(solution_arn)
            .send()
            .await
            .expect("versions");
        assert_eq!(
            versions.solution_versions().len(),
            1,
            "{context}: solution versions of {group} (each one is a paid training)"
        );
        let campaigns = p
            .list_campaigns()
            .solution_arn(solution_arn)
            .send()
            .await
            .expect("campaigns");
        assert_eq!(campaigns.campaigns().len(), 1, "{context}: campaigns of {group}");
    }
}

/// A replica stopped (SIGSTOP) the instant Personalize answered its first create, while the rest of
/// that pass's creates wait in its rate limiter; a second replica takes the group over once the
/// lease ran out and converges it; then the first wakes. Before the fix it sent the waiting creates
/// at once (the lease was checked per pass, not per call). Now it sends nothing and stops.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_paused_across_a_takeover_makes_no_call_when_it_wakes() {
    // 4 calls/s: a pass's creates are sent 250 ms apart, so the pause falls between two of them.
    let stage = Stage::new(4.0, 0.0).await;
    let relay = Relay::start(stage.emu.addr()).await;
    let a = stage.replica(&relay.url());
    stage.upload_group("shop").await;
    eventually("replica a gets its first create answered", || async {
        relay.answered_mutating() >= 1
    })
    .await;
    a.signal("STOP");
    let paused_at = relay.ops().len();
    let sent_before = relay.mutating_since(0);
    let b = stage.replica(&stage.emu.url());
    let mut announced = Vec::new();
    let started = std::time::Instant::now();
    while announced.is_empty() {
        assert!(
            started.elapsed() < PATIENCE,
            "b did not converge the group:\n{}",
            b.log()
        );
        announced = stage.announcements(1).await;
    }
    assert_eq!(announced, [("shop".to_string(), "UPDATE COMPLETE".to_string())]);
    a.signal("CONT");
    wait_until("replica a notices it lost the lease", &|| a.log(), || {
        a.log().contains("lease lost")
    });
    let after = relay.mutating_since(paused_at);
    assert!(
        after.is_empty(),
        "replica a sent {after:?} after waking under a lost lease (before the pause: {sent_before:?})"
    );
    stage.assert_one_of_each("shop", "after the takeover").await;
    assert!(
        stage.announcements(1).await.is_empty(),
        "nothing more is announced"
    );
    drop((a, b));
}

/// Two replicas; for each seed a new group is uploaded and one replica, chosen by the seed, is
/// killed with SIGKILL at a random instant of the run (0–2.5 s after the upload) and restarted at
/// once. Seeds run in waves of five groups uploaded together (their kills interleave, so a kill
/// often hits several groups in flight). Every group converges and is announced exactly once, and
/// no resource exists twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_run_at_random_points_with_two_replicas() {
    let stage = Stage::new(200.0, 0.0).await;
    let url = stage.emu.url();
    let mut replicas = [stage.replica(&url), stage.replica(&url)];
    let seeds = seeds("kill -9 of run", 20);
    let mut groups = Vec::new();
    let mut announced: Vec<(String, String)> = Vec::new();
    for (wave, chunk) in seeds.chunks(5).enumerate() {
        // (delay after the upload, victim, group, seed), in the order the kills happen.
        let mut kills: Vec<(Duration, usize, String, u64)> = Vec::new();
        for (i, seed) in chunk.iter().enumerate() {
            let mut rng = StdRng::seed_from_u64(*seed);
            let delay = Duration::from_millis(rng.random_range(0..2500));
            kills.push((delay, rng.random_range(0..2usize), format!("g{wave}-{i}"), *seed));
        }
        for (_, _, group, _) in &kills {
            stage.upload_group(group).await;
        }
        let uploaded = std::time::Instant::now();
        kills.sort();
        for (delay, victim, _, _) in &kills {
            if let Some(rest) = delay.checked_sub(uploaded.elapsed()) {
                tokio::time::sleep(rest).await;
            }
            replicas[*victim].signal("KILL");
            assert!(replicas[*victim].wait(Duration::from_secs(10)).is_some());
            replicas[*victim] = stage.replica(&url);
        }
        for (_, _, group, seed) in kills {
            let started = std::time::Instant::now();
            while !stage.converged(&group).await {
                assert!(
                    started.elapsed() < PATIENCE,
                    "seed {seed}: {group} did not converge:\n{}\n{}",
                    replicas[0].log(),
                    replicas[1].log()
                );
                announced.extend(stage.announcements(1).await);
            }
            groups.push((group, seed));
        }
        println!("wave {wave}: converged {:?} after the upload", uploaded.elapsed());
    }
    // Every announcement sent so far has arrived within a few long polls.
    let mut quiet = 0;
    while quiet < 3 {
        let batch = stage.announcements(1).await;
        quiet = if batch.is_empty() { quiet + 1 } else { 0 };
        announced.extend(batch);
    }
    for (group, seed) in &groups {
        let mine: Vec<&(String, String)> = announced.iter().filter(|(g, _)| g == group).collect();
        assert_eq!(
            mine,
            [&(group.clone(), "UPDATE COMPLETE".to_string())],
            "seed {seed}: {group} is announced exactly once"
        );
        stage.assert_one_of_each(group, &format!("seed {seed}")).await;
    }
    drop(replicas);
}

/// An S3 `ObjectCreated:Put` notification of `key` in `bucket` with S3's ordering token `sequencer`.
fn s3_event(bucket: &str, key: &str, sequencer: u64) -> String {
    serde_json::json!({"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": bucket},
               "object": {"key": key, "size": 1, "eTag": "e", "sequencer": format!("{sequencer:016X}")}}
    }]})
    .to_string()
}

/// Sends `bodies` to the intake queue, ten per call.
async fn send_all(stage: &Stage, bodies: &[String]) {
    for (batch, chunk) in bodies.chunks(10).enumerate() {
        let mut request = stage.c.sqs.send_message_batch().queue_url(&stage.c.queue_url);
        for (i, body) in chunk.iter().enumerate() {
            request = request.entries(
                aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
                    .id(format!("m{batch}-{i}"))
                    .message_body(body)
                    .build()
                    .expect("entry"),
            );
        }
        let sent = request.send().await.expect("send batch");
        assert!(sent.failed().is_empty(), "{:?}", sent.failed());
    }
}

/// An event storm: the newest of 50 versions of one file is announced first, then its 49 older
/// versions arrive in a seeded random order, interleaved with 100 deliveries of one upload of
/// another file. Each file makes exactly one generation, the newest version is the one recorded,
/// no message is left or dead-lettered, and each group is announced exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_and_out_of_order_events_make_one_generation_each_and_the_newest_wins() {
    for seed in seeds("event storm", 1) {
        let mut rng = StdRng::seed_from_u64(seed);
        let stage = Stage::new(200.0, 0.0).await;
        // Only the test's own messages reach the queue.
        stage
            .c
            .s3
            .put_bucket_notification_configuration()
            .bucket(&stage.c.bucket)
            .notification_configuration(aws_sdk_s3::types::NotificationConfiguration::builder().build())
            .send()
            .await
            .expect("notifications off");
        stage.upload_group("dup").await;
        stage.upload_group("ooo").await;
        let bucket = stage.c.bucket.clone();
        let newest = 0x1000 + 50;
        send_all(&stage, &[s3_event(&bucket, "train/ooo/config.json", newest)]).await;
        let replica = stage.replica(&stage.emu.url());
        eventually("the newest version of ooo is recorded", || async {
            stage.c.generation("ooo").await.is_some()
        })
        .await;
        let mut storm: Vec<String> = (0..100)
            .map(|_| s3_event(&bucket, "train/dup/config.json", 0x100))
            .collect();
        storm.extend((1..50).map(|v| s3_event(&bucket, "train/ooo/config.json", 0x1000 + v)));
        rand::seq::SliceRandom::shuffle(storm.as_mut_slice(), &mut rng);
        send_all(&stage, &storm).await;
        let started = std::time::Instant::now();
        let mut announced = Vec::new();
        loop {
            let drained = stage.c.visible_and_in_flight(&stage.c.queue_url).await == 0;
            if drained && stage.converged("dup").await && stage.converged("ooo").await {
                break;
            }
            assert!(
                started.elapsed() < PATIENCE,
                "seed {seed}: the storm was not absorbed:\n{}",
                replica.log()
            );
            announced.extend(stage.announcements(1).await);
        }
        let mut quiet = 0;
        while quiet < 3 {
            let batch = stage.announcements(1).await;
            quiet = if batch.is_empty() { quiet + 1 } else { 0 };
            announced.extend(batch);
        }
        assert_eq!(
            stage.c.generation("dup").await,
            Some(1),
            "seed {seed}: 100 deliveries, one generation"
        );
        let ooo = stage
            .c
            .store
            .group("ooo")
            .await
            .expect("read")
            .and_then(|g| g.desired)
            .expect("ooo recorded");
        assert_eq!(
            (ooo.generation, ooo.source.sequencer.as_deref()),
            (1, Some(&*format!("{newest:016X}"))),
            "seed {seed}: older versions arriving late make no generation; the newest stays"
        );
        assert_eq!(
            stage.c.visible_and_in_flight(&stage.c.dlq_url).await,
            0,
            "seed {seed}: nothing dead-lettered"
        );
        announced.sort();
        assert_eq!(
            announced,
            [
                ("dup".to_string(), "UPDATE COMPLETE".to_string()),
                ("ooo".to_string(), "UPDATE COMPLETE".to_string())
            ],
            "seed {seed}: each group announced exactly once"
        );
        drop(replica);
    }
}
