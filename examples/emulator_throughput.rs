//! Control-plane throughput of the built-in Personalize with a state directory: how many calls per
//! second it answers when every acknowledged change must be on disk first.
//!
//! `cargo run --example emulator_throughput -- [--calls 2000] [--clients 1,8]` (debug builds work;
//! release is faster).
//!
//! Each round starts a fresh emulator on a temporary state directory, then `clients` SDK clients
//! call in parallel until `calls` calls are answered: every other call is a change
//! (CreateSchema, then TagResource on it), the others are reads (DescribeSchema, ListSchemas), so
//! the state grows to `calls / 4` schemas as a long-lived account's would. It prints calls/s
//! overall and for the changes alone.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_personalize::config::retry::RetryConfig;
use aws_sdk_personalize::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_personalize::types::Tag;
use personalize_ops::emulator::{self, EmulatorConfig, Quotas};
use personalize_ops::objects::MemoryStore;

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

async fn round(calls: usize, clients: usize) -> anyhow::Result<(Duration, usize)> {
    let dir = tempfile::tempdir()?;
    let mut config = EmulatorConfig::new(Arc::new(MemoryStore::new()));
    if std::env::args().all(|a| a != "--in-memory") {
        config.state_dir = Some(dir.path().to_path_buf());
    }
    config.quotas = Quotas {
        schemas: calls,
        ..Quotas::default()
    };
    let emu = emulator::start(config).await?;
    let conf = aws_sdk_personalize::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(emu.url())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("AKIDBENCH", "secret", None, None, "bench"))
        .retry_config(RetryConfig::disabled())
        .build();
    let control = aws_sdk_personalize::Client::from_conf(conf);
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

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let calls: usize = arg("--calls").map_or(Ok(2000), |s| s.parse())?;
    let clients: Vec<usize> = arg("--clients")
        .unwrap_or_else(|| "1,8".into())
        .split(',')
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
    Ok(())
}
