//! Control-plane throughput of the built-in Personalize with a state directory: how many calls per
//! second it answers when every acknowledged change must be on disk first.
//!
//! `cargo run --example emulator_throughput -- [--calls 2000] [--clients 1,8] [--rows 10000,100000]`
//! (debug builds work; release is faster; `--clients ''` skips the control-plane rounds).
//!
//! Each round starts a fresh emulator on a temporary state directory, then `clients` SDK clients
//! call in parallel until `calls` calls are answered: every other call is a change
//! (CreateSchema, then TagResource on it), the others are reads (DescribeSchema, ListSchemas), so
//! the state grows to `calls / 4` schemas as a long-lived account's would. It prints calls/s
//! overall and for the changes alone.
//!
//! `--rows 10000,100000` then measures data calls against an Interactions table of each size
//! (loaded by a FULL import): `--events 300` PutEvents calls of one event from one client, and
//! `--imports 10` INCREMENTAL imports of 100 rows, each followed by one TagResource (whose commit
//! carries the import's rows if the background save has not yet), so the save is timed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_personalize::config::retry::RetryConfig;
use aws_sdk_personalize::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_personalize::types::{DataSource, ImportMode, Tag};
use personalize_ops::emulator::{self, Emulator, EmulatorConfig, Quotas};
use personalize_ops::objects::{MemoryStore, ObjectUrl};

const EVENTS_SCHEMA: &str = r#"{"type":"record","name":"Interactions","namespace":"com.amazonaws.personalize.schema","fields":[{"name":"USER_ID","type":"string"},{"name":"ITEM_ID","type":"string"},{"name":"TIMESTAMP","type":"long"},{"name":"EVENT_TYPE","type":"string"}],"version":"1.0"}"#;
const ROLE: &str = "arn:aws:iam::000000000000:role/bench";

const SCHEMA: &str = r#"{"type":"record","name":"Interactions","namespace":"com.amazonaws.personalize.schema","fields":[{"name":"USER_ID","type":"string"},{"name":"ITEM_ID","type":"string"},{"name":"TIMESTAMP","type":"long"}],"version":"1.0"}"#;

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

/// One client's share: `rounds` × (CreateSchema, DescribeSchema, TagResource, ListSchemas).
async fn client(control: aws_sdk_personalize::Client, id: usize, rounds: usize) -> anyhow::Result<()> {
    for round in 0..rounds {
        let created = control
            .create_schema()
            .name(format!("bench-{id}-{round}"))
            .schema(SCHEMA)
            .send()
            .await?;
        let arn = created.schema_arn().unwrap_or_default().to_string();
        control.describe_schema().schema_arn(&arn).send().await?;
        control
            .tag_resource()
            .resource_arn(&arn)
            .tags(
                Tag::builder()
                    .tag_key("round")
                    .tag_value(round.to_string())
                    .build()?,
            )
            .send()
            .await?;
        control.list_schemas().max_results(10).send().await?;
    }
    Ok(())
}

/// A fresh emulator on a new state directory (none with `--in-memory`), with room for `schemas`.
async fn fresh(
    dir: &tempfile::TempDir,
    objects: Arc<MemoryStore>,
    schemas: usize,
) -> anyhow::Result<Emulator> {
    let mut config = EmulatorConfig::new(objects);
    if std::env::args().all(|a| a != "--in-memory") {
        config.state_dir = Some(dir.path().to_path_buf());
    }
    config.quotas = Quotas {
        schemas,
        ..Quotas::default()
    };
    Ok(emulator::start(config).await?)
}

fn credentials() -> Credentials {
    Credentials::new("AKIDBENCH", "secret", None, None, "bench")
}

fn control_client(emu: &Emulator) -> aws_sdk_personalize::Client {
    let conf = aws_sdk_personalize::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(emu.url())
        .region(Region::new("us-east-1"))
        .credentials_provider(credentials())
        .retry_config(RetryConfig::disabled())
        .build();
    aws_sdk_personalize::Client::from_conf(conf)
}

async fn round(calls: usize, clients: usize) -> anyhow::Result<(Duration, usize)> {
    let dir = tempfile::tempdir()?;
    let emu = fresh(&dir, Arc::new(MemoryStore::new()), calls).await?;
    let control = control_client(&emu);
    let rounds = calls / 4 / clients;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for id in 0..clients {
        tasks.push(tokio::spawn(client(control.clone(), id, rounds)));
    }
    for task in tasks {
        task.await??;
    }
    let took = started.elapsed();
    emu.shutdown().await?;
    Ok((took, rounds * clients * 4))
}

/// `rows` interaction rows as CSV, numbered from `from`.
fn interactions_csv(from: usize, rows: usize) -> String {
    let mut csv = String::from("USER_ID,ITEM_ID,TIMESTAMP,EVENT_TYPE\n");
    for i in from..from + rows {
        csv.push_str(&format!(
            "u{},i{},{},click\n",
            i % 1000,
            i % 5000,
            1_700_000_000 + i
        ));
    }
    csv
}

/// Polls until the import job is ACTIVE.
async fn import_and_wait(
    control: &aws_sdk_personalize::Client,
    name: &str,
    dataset: &str,
    location: &str,
    mode: ImportMode,
) -> anyhow::Result<()> {
    let job = control
        .create_dataset_import_job()
        .job_name(name)
        .dataset_arn(dataset)
        .data_source(DataSource::builder().data_location(location).build())
        .role_arn(ROLE)
        .import_mode(mode)
        .send()
        .await?
        .dataset_import_job_arn
        .unwrap_or_default();
    loop {
        let described = control
            .describe_dataset_import_job()
            .dataset_import_job_arn(&job)
            .send()
            .await?;
        let status = described
            .dataset_import_job()
            .and_then(|j| j.status())
            .unwrap_or_default()
            .to_string();
        match status.as_str() {
            "ACTIVE" => return Ok(()),
            s if s.contains("FAILED") => anyhow::bail!("import {name} is {s}"),
            _ => tokio::time::sleep(Duration::from_millis(2)).await,
        }
    }
}

/// Data calls against an Interactions table of `rows` rows: PutEvents calls/s, and milliseconds
/// per INCREMENTAL import of 100 rows (saved).
async fn data_round(rows: usize, events: usize, imports: usize) -> anyhow::Result<(f64, f64)> {
    let dir = tempfile::tempdir()?;
    let store = Arc::new(MemoryStore::new());
    let url = |key: &str| ObjectUrl::new("bench", key);
    store.put_at(&url("full.csv"), interactions_csv(0, rows), chrono::Utc::now());
    for i in 0..imports {
        let csv = interactions_csv(rows + i * 100, 100);
        store.put_at(&url(&format!("more-{i}.csv")), csv, chrono::Utc::now());
    }
    let emu = fresh(&dir, Arc::clone(&store), 10).await?;
    let control = control_client(&emu);
    let group = control
        .create_dataset_group()
        .name("bench")
        .send()
        .await?
        .dataset_group_arn
        .unwrap_or_default();
    let schema = control
        .create_schema()
        .name("bench-interactions")
        .schema(EVENTS_SCHEMA)
        .send()
        .await?
        .schema_arn
        .unwrap_or_default();
    let dataset = control
        .create_dataset()
        .name("bench-interactions")
        .dataset_group_arn(&group)
        .schema_arn(&schema)
        .dataset_type("Interactions")
        .send()
        .await?
        .dataset_arn
        .unwrap_or_default();
    import_and_wait(
        &control,
        "full",
        &dataset,
        "s3://bench/full.csv",
        ImportMode::Full,
    )
    .await?;
    let tracker = control
        .create_event_tracker()
        .name("bench")
        .dataset_group_arn(&group)
        .send()
        .await?
        .tracking_id
        .unwrap_or_default();
    let conf = aws_sdk_personalizeevents::Config::builder()
        .behavior_version(aws_sdk_personalizeevents::config::BehaviorVersion::latest())
        .endpoint_url(emu.url())
        .region(aws_sdk_personalizeevents::config::Region::new("us-east-1"))
        .credentials_provider(credentials())
        .retry_config(aws_sdk_personalizeevents::config::retry::RetryConfig::disabled())
        .build();
    let events_client = aws_sdk_personalizeevents::Client::from_conf(conf);
    let started = Instant::now();
    for i in 0..events {
        let event = aws_sdk_personalizeevents::types::Event::builder()
            .event_type("click")
            .item_id(format!("i{}", i % 5000))
            .sent_at(aws_smithy_types::DateTime::from_secs(1_800_000_000 + i as i64))
            .build()?;
        events_client
            .put_events()
            .tracking_id(&tracker)
            .user_id(format!("u{}", i % 1000))
            .session_id("bench")
            .event_list(event)
            .send()
            .await?;
    }
    let events_per_sec = events as f64 / started.elapsed().as_secs_f64();
    let started = Instant::now();
    for i in 0..imports {
        let location = format!("s3://bench/more-{i}.csv");
        import_and_wait(
            &control,
            &format!("more-{i}"),
            &dataset,
            &location,
            ImportMode::Incremental,
        )
        .await?;
        control
            .tag_resource()
            .resource_arn(&group)
            .tags(
                Tag::builder()
                    .tag_key("import")
                    .tag_value(i.to_string())
                    .build()?,
            )
            .send()
            .await?;
    }
    let ms_per_import = started.elapsed().as_secs_f64() * 1000.0 / imports.max(1) as f64;
    emu.shutdown().await?;
    Ok((events_per_sec, ms_per_import))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let calls: usize = arg("--calls").map_or(Ok(2000), |s| s.parse())?;
    let clients: Vec<usize> = arg("--clients")
        .unwrap_or_else(|| "1,8".into())
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    for n in clients {
        let (took, done) = round(calls, n).await?;
        let per_sec = done as f64 / took.as_secs_f64();
        println!(
            "{n:>2} client(s): {done} calls ({} changes) in {:.2} s = {per_sec:.0} calls/s, {:.0} changes/s",
            done / 2,
            took.as_secs_f64(),
            per_sec / 2.0
        );
    }
    let events: usize = arg("--events").map_or(Ok(300), |s| s.parse())?;
    let imports: usize = arg("--imports").map_or(Ok(10), |s| s.parse())?;
    for rows in arg("--rows")
        .unwrap_or_default()
        .split(',')
        .filter(|s| !s.is_empty())
    {
        let rows: usize = rows.parse()?;
        let (per_sec, ms) = data_round(rows, events, imports).await?;
        println!(
            "table of {rows} rows: {events} PutEvents = {per_sec:.0} calls/s; {imports} INCREMENTAL imports of 100 rows = {ms:.1} ms each"
        );
    }
    Ok(())
}
