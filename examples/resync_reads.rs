//! What the resync reads from the DynamoDB state table, before and after the brief listing and the
//! one-replica-per-window claim: bytes, read units and time, on moto.
//!
//! Starts `moto_server`, records `--groups` small parameter files (group, schema, dataset, import,
//! solution, version, campaign) and a converged observation of each (its 7 resources with their
//! ARNs), as the daemon leaves them, then reads the table as each version of the resync does:
//!
//! - **before**: on every replica, every interval: the bucket comparison's `list_groups` (a
//!   strongly consistent `Scan` projecting everything but the parameter file) and a `GetItem` of each
//!   group's whole item (its desired source), then the plan's `list_groups` again;
//! - **after**: on the one replica that claimed the window: one `list_briefs` (an eventually
//!   consistent `Scan` projecting the few attributes of [`BRIEF_ATTRIBUTES`]) for both the bucket
//!   comparison and the plan, plus one claim per replica.
//!
//! Bytes are DynamoDB's item sizes (attribute names and values) of what comes back. Read units are
//! computed as DynamoDB bills them, since moto returns a constant: a `Scan` by the size of every
//! item it reads, whatever the projection, in 4 KB units, halved when eventually consistent; a
//! `GetItem` by its item's size rounded up to 4 KB. Times are moto's (one Python process): compare
//! them with each other, not with DynamoDB.
//!
//! `cargo run --release --example resync_reads -- [--groups 1000] [--replicas 3]`
//! (needs `moto_server`: `pip install "moto[server]"`).

#[path = "support/fleet.rs"]
#[allow(dead_code)]
mod fleet;
#[path = "../tests/support/moto.rs"]
#[allow(dead_code)]
mod moto;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::Utc;
use futures::StreamExt;
use moto::Moto;
use personalize_ops::objects::ObjectUrl;
use personalize_ops::store::{
    Acquire, BRIEF_ATTRIBUTES, DesiredSource, DynamoStore, LeaseGrant, NewDesired, Observed, ObservedWrite,
    ResourceKind, ResourceState, SUMMARY_ATTRIBUTES, StateStore,
};

type Item = HashMap<String, AttributeValue>;

/// DynamoDB's size of a value: strings and binaries by their bytes, numbers by about one byte per
/// two significant digits plus one, containers by their contents plus 3 bytes.
fn value_size(v: &AttributeValue) -> usize {
    match v {
        AttributeValue::S(s) => s.len(),
        AttributeValue::N(n) => n.trim_start_matches('-').len().div_ceil(2) + 1,
        AttributeValue::B(b) => b.as_ref().len(),
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        AttributeValue::L(l) => 3 + l.iter().map(|v| 1 + value_size(v)).sum::<usize>(),
        AttributeValue::M(m) => 3 + m.iter().map(|(k, v)| 1 + k.len() + value_size(v)).sum::<usize>(),
        AttributeValue::Ss(ss) => ss.iter().map(String::len).sum(),
        AttributeValue::Ns(ns) => ns.iter().map(|n| n.len().div_ceil(2) + 1).sum(),
        _ => 0,
    }
}

fn item_size(item: &Item) -> usize {
    item.iter().map(|(k, v)| k.len() + value_size(v)).sum()
}

fn read_units(bytes: usize) -> f64 {
    bytes.div_ceil(4096) as f64
}

/// Every group item, with the projection (all attributes when `None`).
async fn scan(client: &aws_sdk_dynamodb::Client, table: &str, projection: Option<&[&str]>) -> Vec<Item> {
    let (expression, names) = match projection {
        Some(attrs) => (
            Some(
                attrs
                    .iter()
                    .map(|a| format!("#{a}"))
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
            Some(
                attrs
                    .iter()
                    .map(|a| (format!("#{a}"), (*a).to_string()))
                    .chain([("#sk".to_string(), "sk".to_string())])
                    .collect::<HashMap<_, _>>(),
            ),
        ),
        None => (None, Some(HashMap::from([("#sk".to_string(), "sk".to_string())]))),
    };
    let mut out = Vec::new();
    let mut start = None;
    loop {
        let page = client
            .scan()
            .table_name(table)
            .filter_expression("#sk = :sk")
            .expression_attribute_values(":sk", AttributeValue::S("group".into()))
            .set_projection_expression(expression.clone())
            .set_expression_attribute_names(names.clone())
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .expect("scan");
        out.extend(page.items.unwrap_or_default());
        match page.last_evaluated_key {
            Some(k) if !k.is_empty() => start = Some(k),
            _ => return out,
        }
    }
}

/// A converged small group's observation, as the daemon writes it.
fn converged(group: &str) -> Observed {
    let arn = |kind: &str, name: &str| format!("arn:aws:personalize:us-east-1:123456789012:{kind}/{name}");
    let resources = [
        (
            ResourceKind::DatasetGroup,
            group.to_string(),
            arn("dataset-group", group),
        ),
        (
            ResourceKind::Schema,
            format!("{group}-interactions-schema"),
            arn("schema", &format!("{group}-interactions-schema")),
        ),
        (
            ResourceKind::Dataset,
            format!("{group}-interactions"),
            arn("dataset", &format!("{group}/INTERACTIONS")),
        ),
        (
            ResourceKind::DatasetImportJob,
            format!("{group}-interactions-2026_12_06_00_00_00"),
            arn(
                "dataset-import-job",
                &format!("{group}-interactions-2026_12_06_00_00_00"),
            ),
        ),
        (
            ResourceKind::Solution,
            format!("{group}-popular"),
            arn("solution", &format!("{group}-popular")),
        ),
        (
            ResourceKind::SolutionVersion,
            format!("{group}-popular"),
            arn("solution", &format!("{group}-popular/3f2a9c1e")),
        ),
        (
            ResourceKind::Campaign,
            format!("{group}-campaign"),
            arn("campaign", &format!("{group}-campaign")),
        ),
    ];
    Observed {
        generation: 1,
        converged: true,
        resources: resources
            .into_iter()
            .map(|(kind, name, arn)| ResourceState {
                kind,
                name,
                status: "ACTIVE".into(),
                arn: Some(arn),
                reason: None,
            })
            .collect(),
        last_error: None,
        updated_at: Utc::now(),
        destroyed_at: None,
        announced: vec![format!("{group}-1-UPDATE-COMPLETE-0123456789abcdef")],
    }
}

async fn record(store: &DynamoStore, i: usize) {
    let group = format!("customer-{i:05}");
    let new = NewDesired {
        group: group.clone(),
        text: fleet::config(&group),
        source: DesiredSource {
            url: ObjectUrl::new("personalize-ops-data", format!("train/{group}/config.json")),
            etag: Some(format!("\"{:032x}\"", i)),
            version_id: Some(format!(
                "3sL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY+MTRCxf3vjVBH40Nr8X8gdRQBpUMLU{i:05}"
            )),
            sequencer: Some(format!("0055AED6DCD9028{i:05}")),
            last_modified: Some(Utc::now()),
        },
    };
    store.put_desired(&new).await.expect("desire");
    let (LeaseGrant::Acquired(lease), _) = store
        .acquire_lease(&group, "bench", Duration::from_secs(60), Acquire::Lease)
        .await
        .expect("lease")
    else {
        panic!("{group}: the lease is free")
    };
    store
        .put_observed(&lease, &converged(&group), None, ObservedWrite::RELEASE)
        .await
        .expect("observe");
}

/// The median of `runs` timings of `f`, in milliseconds.
async fn median_ms<F, Fut>(runs: usize, mut f: F) -> f64
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        f().await;
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    fleet::percentile(&times, 0.5)
}

#[tokio::main]
async fn main() {
    let groups = (fleet::arg("--groups", 1000.0) as usize).max(1);
    let replicas = (fleet::arg("--replicas", 3.0) as usize).max(1);
    let moto = Moto::start();
    let client = aws_sdk_dynamodb::Client::new(&moto.sdk_config().await);
    let table = moto::unique_name("state");
    DynamoStore::create_table(&client, &table).await.expect("table");
    let store = Arc::new(DynamoStore::new(client.clone(), table.clone()));
    let t = Instant::now();
    futures::stream::iter(0..groups)
        .for_each_concurrent(16, |i| {
            let store = store.clone();
            async move { record(&store, i).await }
        })
        .await;
    eprintln!("{groups} groups recorded in {:.1} s", t.elapsed().as_secs_f64());

    let full = scan(&client, &table, None).await;
    let summary = scan(&client, &table, Some(&SUMMARY_ATTRIBUTES)).await;
    let brief = scan(&client, &table, Some(&BRIEF_ATTRIBUTES)).await;
    assert_eq!((full.len(), summary.len(), brief.len()), (groups, groups, groups));
    let bytes = |items: &[Item]| items.iter().map(item_size).sum::<usize>();
    let (full_bytes, summary_bytes, brief_bytes) = (bytes(&full), bytes(&summary), bytes(&brief));
    // A Scan bills every item it reads, projected or not.
    let scan_strong = read_units(full_bytes);
    let scan_eventual = scan_strong / 2.0;
    let get_items: f64 = full.iter().map(|i| read_units(item_size(i))).sum();

    let before_bytes = 2 * summary_bytes + full_bytes;
    let before_units = 2.0 * scan_strong + get_items;
    let after_bytes = brief_bytes;
    let after_units = scan_eventual;

    let names: Vec<String> = (0..groups).map(|i| format!("customer-{i:05}")).collect();
    let before_ms = median_ms(3, || async {
        store.list_groups().await.expect("list");
        for name in &names {
            store.group(name).await.expect("read");
        }
        store.list_groups().await.expect("list");
    })
    .await;
    let after_ms = median_ms(3, || async {
        store.list_briefs().await.expect("briefs");
    })
    .await;

    println!(
        "{groups} groups on moto; a group item is {:.0} bytes ({:.0} with the old listing's projection, {:.0} with the brief one)",
        full_bytes as f64 / groups as f64,
        summary_bytes as f64 / groups as f64,
        brief_bytes as f64 / groups as f64,
    );
    println!(
        "| resync | bytes read per resync | read units per resync | time per resync on moto | read units per interval, {replicas} replicas |"
    );
    println!("|---|---|---|---|---|");
    println!(
        "| before: 2 listings (strongly consistent) + a GetItem per group, on every replica | {:.0} KB | {before_units:.0} | {before_ms:.0} ms | {:.0} |",
        before_bytes as f64 / 1000.0,
        before_units * replicas as f64,
    );
    println!(
        "| after: one brief listing (eventually consistent), on the replica that claimed the window | {:.0} KB | {after_units:.1} | {after_ms:.0} ms | {after_units:.1} (+ {replicas} claims) |",
        after_bytes as f64 / 1000.0,
    );
    println!(
        "ratio before ÷ after: bytes {:.1}, read units per resync {:.1}, per interval {:.1}, time {:.1}",
        before_bytes as f64 / after_bytes as f64,
        before_units / after_units,
        before_units * replicas as f64 / after_units,
        before_ms / after_ms,
    );
}
