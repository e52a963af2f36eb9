//! Measures what the adapter hardening added on hot paths: building an SNS configuration-error message
//! capped to SNS's size limit, and listing due groups when many are leased by another replica.
//!
//! `cargo run --release --example adapters_bench` (debug builds work too, slower).

use std::sync::Arc;
use std::time::{Duration, Instant};

use personalize_ops::notify::message::{MAX_BODY_BYTES, config_error_message};
use personalize_ops::objects::ObjectUrl;
use personalize_ops::store::{Acquire, DesiredSource, LeaseGrant, NewDesired, SqliteStore, StateStore};

fn sns_messages() {
    for count in [100, 10_000, 100_000] {
        let errors: Vec<String> = (0..count)
            .map(|i| format!("solutions[{i}].serviceConfig.recipeArn: \"é\" is not a recipe ARN"))
            .collect();
        let started = Instant::now();
        let message = config_error_message(Some("dsg"), "train/dsg/config.json", &errors);
        let took = started.elapsed();
        assert!(message.body.len() <= MAX_BODY_BYTES);
        println!(
            "config_error_message: {count:>6} errors -> {:>6} bytes in {took:?}",
            message.body.len()
        );
    }
}

async fn due_groups(groups: usize) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("state.db");
    let a = Arc::new(SqliteStore::open(&path)?);
    let b = SqliteStore::open(&path)?;
    let started = Instant::now();
    for i in 0..groups {
        let group = format!("g{i:05}");
        a.put_desired(&NewDesired {
            group: group.clone(),
            text: "{}".into(),
            source: DesiredSource {
                url: ObjectUrl::new("data", format!("train/{group}/config.json")),
                etag: None,
                version_id: None,
                sequencer: None,
                last_modified: None,
            },
        })
        .await?;
        // Replica a holds every other group.
        if i % 2 == 0
            && let LeaseGrant::Held { owner, .. } = a
                .acquire_lease(&group, "replica-a", Duration::from_secs(600), Acquire::Lease)
                .await?
                .0
        {
            anyhow::bail!("{group} unexpectedly held by {owner}");
        }
    }
    println!("set-up: {groups} groups, half leased, in {:?}", started.elapsed());
    let rounds = 50;
    let started = Instant::now();
    let mut listed = 0;
    for _ in 0..rounds {
        listed = b.due_groups_for("replica-b", 100).await?.len();
    }
    println!(
        "due_groups_for (limit 100) with {groups} groups, half leased elsewhere: {listed} listed, {:?} per call",
        started.elapsed() / rounds
    );
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    sns_messages();
    due_groups(2_000).await
}
