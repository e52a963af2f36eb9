//! Measures the intake: S3 event notifications per second from SQS to recorded generations, on moto.
//!
//! Starts `moto_server` (S3, SQS, DynamoDB), uploads `--groups` parameter files, and sends `--events`
//! S3 notifications for them (one per group is the first sight of its file, the rest are the
//! duplicates S3 may deliver and redeliveries of the same object) while `--replicas` SQS consumers
//! (the daemon's intake with the default settings, each its own queue poller) handle them. The
//! sender keeps at most `--backlog` events waiting, as a steady stream of uploads would: moto's
//! ReceiveMessage slows with the queue's length (about 14 s per receive with 5,000 messages
//! waiting), which SQS does not, so a pre-filled queue would measure moto. Prints events per second
//! end to end and generations recorded.
//!
//! `cargo run --release --example intake_bench -- [--groups 500] [--events 10000] [--replicas 1]
//! [--backlog 20]` (needs `moto_server`: `pip install "moto[server]"`). moto is one Python process
//! and its round trip is printed first: the figure compares runs on one machine, it is not SQS's.

#[path = "../tests/support/moto.rs"]
#[allow(dead_code)]
mod moto;

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_sqs::types::{QueueAttributeName, SendMessageBatchRequestEntry};
use moto::Moto;
use personalize_ops::intake::sqs::{SqsIntake, SqsOptions};
use personalize_ops::intake::{ConfigSource, Intake, spec_validator};
use personalize_ops::metrics::MemorySink;
use personalize_ops::notify::Notifications;
use personalize_ops::objects::S3Store;
use personalize_ops::settings::Settings;
use personalize_ops::store::{DynamoStore, StateStore};
use tokio_util::sync::CancellationToken;

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// An S3 notification as S3 sends it: one record, the key form-encoded, a sequencer per upload.
fn s3_event(bucket: &str, group: &str, etag: &str, sequencer: usize) -> String {
    serde_json::json!({"Records": [{"eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
        "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": bucket}, "object": {
            "key": format!("train%2F{group}%2Fconfig.json"), "size": 64, "eTag": etag,
            "sequencer": format!("{sequencer:016X}")}}}]})
    .to_string()
}

async fn waiting(sqs: &aws_sdk_sqs::Client, url: &str) -> anyhow::Result<usize> {
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await?
        .attributes
        .unwrap_or_default();
    Ok(attributes.values().filter_map(|v| v.parse::<usize>().ok()).sum())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // RUST_LOG=personalize_ops=debug shows each message's steps.
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let groups = arg("--groups", 500).max(1);
    let events = arg("--events", 10_000).max(groups);
    let replicas = arg("--replicas", 1).max(1);
    let backlog = arg("--backlog", 20).max(10);
    let moto = Moto::start();
    let config = moto.sdk_config().await;
    let s3 = moto.s3_client().await;
    let sqs = aws_sdk_sqs::Client::new(&config);
    let ddb = aws_sdk_dynamodb::Client::new(&config);
    let bucket = "intake-bench";
    s3.create_bucket().bucket(bucket).send().await?;
    let queue_url = sqs
        .create_queue()
        .queue_name("intake-bench")
        .send()
        .await?
        .queue_url
        .unwrap_or_default();
    DynamoStore::create_table(&ddb, "intake-bench").await?;
    let store: Arc<dyn StateStore> = Arc::new(DynamoStore::new(ddb, "intake-bench"));

    let started = Instant::now();
    let mut etags = Vec::with_capacity(groups);
    for g in 0..groups {
        let body = serde_json::json!({"datasetGroup": {"serviceConfig": {"name": format!("g{g}")}}});
        let etag = s3
            .put_object()
            .bucket(bucket)
            .key(format!("train/g{g}/config.json"))
            .body(ByteStream::from(body.to_string().into_bytes()))
            .send()
            .await?
            .e_tag
            .unwrap_or_default();
        etags.push(etag);
    }
    println!(
        "set up {groups} files in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // moto's own pace sets a floor: one S3 read and one DynamoDB read, one after the other.
    let probe = Instant::now();
    for g in 0..50 {
        s3.get_object()
            .bucket(bucket)
            .key(format!("train/g{}/config.json", g % groups))
            .send()
            .await?;
        store.group(&format!("g{}", g % groups)).await?;
    }
    let round_trip_ms = probe.elapsed().as_secs_f64() * 1000.0 / 100.0;
    println!(
        "moto round trip: {round_trip_ms:.1} ms per call (S3 GetObject and DynamoDB GetItem, sequential)"
    );

    let settings = Settings::load_with_env(None, Vec::new())?;
    let mut options = SqsOptions::from_settings(&settings.daemon);
    // The stream ends with an empty queue: a short long-poll keeps the tail from idling 20 s.
    options.wait = Duration::from_secs(1);
    let metrics = Arc::new(MemorySink::new());
    let handled = || metrics.total("ConfigurationsProcessed") + metrics.total("EventsIgnored");
    let shutdown = CancellationToken::new();
    let mut running = Vec::new();
    let started = Instant::now();
    for _ in 0..replicas {
        let intake = Intake::new(
            bucket,
            Arc::new(S3Store::new(s3.clone())),
            store.clone(),
            Notifications::default(),
            metrics.clone(),
            spec_validator(),
            settings.daemon.max_config_bytes,
        );
        let consumer = Arc::new(SqsIntake::new(
            sqs.clone(),
            queue_url.clone(),
            Arc::new(intake),
            options.clone(),
        ));
        let token = shutdown.clone();
        running.push(tokio::spawn(async move { consumer.run(token).await }));
    }
    // Group g's events are spread over the stream, so duplicates arrive interleaved with others.
    let mut sent = 0;
    while sent < events {
        if sent as f64 - handled() >= backlog as f64 {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        }
        let entries = (sent..(sent + 10).min(events))
            .map(|i| {
                SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(s3_event(
                        bucket,
                        &format!("g{}", i % groups),
                        &etags[i % groups],
                        i % groups,
                    ))
                    .build()
            })
            .collect::<Result<Vec<_>, _>>()?;
        sent += entries.len();
        sqs.send_message_batch()
            .queue_url(&queue_url)
            .set_entries(Some(entries))
            .send()
            .await?;
    }
    while waiting(&sqs, &queue_url).await? > 0 || handled() < events as f64 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let took = started.elapsed().as_secs_f64();
    shutdown.cancel();
    for task in running {
        task.await?;
    }
    let recorded = store
        .list_groups()
        .await?
        .iter()
        .filter(|g| g.desired_generation == Some(1))
        .count();
    println!(
        "{events} events over {groups} groups, {replicas} replica(s), intake_concurrency {}, backlog {backlog}: {took:.1} s, {:.0} events/s",
        options.concurrency,
        events as f64 / took
    );
    println!(
        "generations recorded: {recorded} of {groups}; configurations processed {}, events ignored {}",
        metrics.total("ConfigurationsProcessed"),
        metrics.total("EventsIgnored")
    );
    if recorded != groups {
        anyhow::bail!("{} groups have no generation 1", groups - recorded);
    }
    Ok(())
}
