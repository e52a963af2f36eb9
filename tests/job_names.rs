//! Account-wide job names: the state store's claims on them (SQLite and DynamoDB on moto, expired
//! claims purged on SQLite), and reconcilers (one process or replicas sharing a store) creating the
//! import job name groups started in the same second share, against the built-in Personalize.

mod support;

#[path = "../examples/support/fleet.rs"]
#[allow(dead_code)]
mod fleet;

use std::sync::Arc;
use std::time::Duration;

use personalize_ops::reconcile::{PassOutcome, Reconciler, StoreClaims};
use personalize_ops::store::{Clock, DynamoStore, FireClaim, ManualClock, SqliteStore, StateStore};
use support::daemon::start_time;
use support::moto::{Moto, unique_name};
use support::reconcile::*;

const TTL: Duration = Duration::from_secs(3600);
const NAME: &str = "dataset_import_interactions_2026_01_02_03_04_05";
const A: &str = "arn:aws:personalize:us-east-1:000000000000:dataset/a/INTERACTIONS";
const B: &str = "arn:aws:personalize:us-east-1:000000000000:dataset/b/INTERACTIONS";

fn manual_clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(start_time()))
}

/// What every store does with job name claims.
async fn job_name_claims(store: &dyn StateStore, clock: &ManualClock) {
    let claim = |owner: &'static str, replacing: Option<&'static str>| {
        store.claim_job_name(NAME, owner, replacing, TTL)
    };
    assert_eq!(claim(A, None).await.unwrap(), A, "a free name");
    assert_eq!(claim(B, None).await.unwrap(), A, "held by another");
    assert_eq!(claim(A, None).await.unwrap(), A, "the holder's own claim again");
    assert_eq!(
        claim(B, Some(B)).await.unwrap(),
        A,
        "replacing someone who does not hold it"
    );
    assert_eq!(
        store
            .claim_job_name("batch_other_2026_01_02_03_04_05", B, None, TTL)
            .await
            .unwrap(),
        B,
        "another name is another claim"
    );
    assert_eq!(claim(B, Some(A)).await.unwrap(), B, "moved by its holder");
    assert_eq!(claim(A, None).await.unwrap(), B);
    // The holder's renewal above restarted its TTL: just short of it, still held.
    clock.advance(TTL - Duration::from_secs(1));
    assert_eq!(claim(A, None).await.unwrap(), B);
    clock.advance(Duration::from_secs(2));
    assert_eq!(claim(A, None).await.unwrap(), A, "an expired claim is free");
}

#[tokio::test]
async fn sqlite_job_name_claims() {
    let clock = manual_clock();
    let store = SqliteStore::in_memory()
        .unwrap()
        .with_clock(clock.clone() as Arc<dyn Clock>);
    job_name_claims(&store, &clock).await;
}

#[tokio::test]
async fn dynamo_job_name_claims() {
    let moto = Moto::start();
    let clock = manual_clock();
    let client = aws_sdk_dynamodb::Client::new(&moto.sdk_config().await);
    let table = unique_name("state");
    DynamoStore::create_table(&client, &table).await.unwrap();
    let store = DynamoStore::new(client, table).with_clock(clock.clone() as Arc<dyn Clock>);
    job_name_claims(&store, &clock).await;
}

fn rows(path: &std::path::Path, table: &str) -> i64 {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
        .unwrap()
}

/// DynamoDB's TTL deletes expired claims; SQLite keeps every row it is given, so its claims purge
/// the expired ones: job names at once, fires and the resync's windows (claimed under `*resync`)
/// a day after they expired.
#[tokio::test]
async fn sqlite_purges_expired_claims() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let clock = manual_clock();
    let store = SqliteStore::open(&path)
        .unwrap()
        .with_clock(clock.clone() as Arc<dyn Clock>);
    for i in 0..5 {
        let name = format!("{NAME}_{i}");
        assert_eq!(store.claim_job_name(&name, A, None, TTL).await.unwrap(), A);
        let window = start_time() + chrono::Duration::minutes(10 * i);
        let claimed = store
            .claim_fire("*resync", "resync", window, "replica-1", TTL)
            .await
            .unwrap();
        assert_eq!(claimed, FireClaim::Won);
    }
    assert_eq!(
        (rows(&path, "job_name_claims"), rows(&path, "fire_claims")),
        (5, 5)
    );
    // Not expired yet: nothing goes.
    clock.advance(TTL - Duration::from_secs(1));
    store.claim_job_name("fresh", A, None, TTL).await.unwrap();
    assert_eq!(rows(&path, "job_name_claims"), 6);
    clock.advance(Duration::from_secs(1));
    store.claim_job_name("fresher", A, None, TTL).await.unwrap();
    assert_eq!(
        rows(&path, "job_name_claims"),
        2,
        "the five expired claims are gone"
    );
    // Expired fire claims stay a day (their owner is reported, as DynamoDB's lazy TTL would),
    // then go.
    let next = start_time() + chrono::Duration::hours(2);
    store
        .claim_fire("*resync", "resync", next, "replica-1", TTL)
        .await
        .unwrap();
    assert_eq!(rows(&path, "fire_claims"), 6, "expired for less than a day");
    clock.advance(Duration::from_secs(24 * 3600));
    let later = start_time() + chrono::Duration::hours(30);
    store
        .claim_fire("*resync", "resync", later, "replica-1", TTL)
        .await
        .unwrap();
    assert_eq!(
        rows(&path, "fire_claims"),
        2,
        "the five first windows are gone; the one expired 23 h ago stays"
    );
    // A purged fire claim is as absent as an expired one was: the window can be claimed again.
    let first = start_time();
    assert_eq!(
        store
            .claim_fire("*resync", "resync", first, "replica-2", TTL)
            .await
            .unwrap(),
        FireClaim::Won
    );
}

/// Applies `group`'s fleet configuration with `r`, started at the shared run start.
async fn converge(r: &Reconciler, root: &std::path::Path, group: &str) {
    let (config, spec) = lay_out_text(root, &fleet::config(group));
    let mut events = Vec::new();
    let outcome = apply_within(r, &spec, &config, run_start(), &mut events).await;
    assert!(matches!(outcome, PassOutcome::Converged { .. }), "{outcome:#?}");
}

/// The import jobs the account holds, by dataset.
async fn import_jobs(emu: &personalize_ops::emulator::Emulator) -> Vec<(String, String)> {
    let c = client(emu);
    let jobs = c.list_dataset_import_jobs().send().await.unwrap();
    let mut out: Vec<(String, String)> = Vec::new();
    for j in jobs.dataset_import_jobs() {
        let arn = j.dataset_import_job_arn().unwrap_or_default();
        let job = c
            .describe_dataset_import_job()
            .dataset_import_job_arn(arn)
            .send()
            .await
            .unwrap();
        let job = job.dataset_import_job.unwrap();
        out.push((
            job.dataset_arn.unwrap_or_default(),
            job.job_name.unwrap_or_default(),
        ));
    }
    out.sort();
    out
}

/// Three replicas (a reconciler each) sharing one state store, each with a group started in the
/// same second: one `CreateDatasetImportJob` per group and no describe; the same replicas without
/// the shared claims pay a refused create and a describe for each group after the first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_sharing_a_store_send_no_create_for_a_name_another_took() {
    let groups = ["fleet-a", "fleet-b", "fleet-c"];
    let dir = tempfile::tempdir().unwrap();
    let emu = start_emulator(dir.path(), |_| {}).await;
    let store: Arc<dyn StateStore> = Arc::new(SqliteStore::in_memory().unwrap());
    for g in groups {
        let r =
            reconciler(&emu, dir.path(), &settings()).with_job_claims(Arc::new(StoreClaims(store.clone())));
        converge(&r, dir.path(), g).await;
    }
    assert_eq!(calls_of(&emu, "CreateDatasetImportJob"), 3, "{:?}", emu.calls());
    assert_eq!(calls_of(&emu, "DescribeDatasetImportJob"), 0, "{:?}", emu.calls());
    let jobs = import_jobs(&emu).await;
    assert_eq!(jobs.len(), 3, "one job per dataset: {jobs:?}");
    let plain = jobs.iter().filter(|(_, name)| name.len() == NAME.len()).count();
    assert_eq!(plain, 1, "one group keeps the plain name: {jobs:?}");

    let dir = tempfile::tempdir().unwrap();
    let emu = start_emulator(dir.path(), |_| {}).await;
    for g in groups {
        converge(&reconciler(&emu, dir.path(), &settings()), dir.path(), g).await;
    }
    assert_eq!(calls_of(&emu, "CreateDatasetImportJob"), 5, "{:?}", emu.calls());
    assert_eq!(calls_of(&emu, "DescribeDatasetImportJob"), 2, "{:?}", emu.calls());
}

/// One process, groups started in the same second converging at once: their creates of the shared
/// name overlap, and none is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_converging_at_once_in_one_process_send_no_refused_create() {
    let dir = tempfile::tempdir().unwrap();
    let emu = start_emulator(dir.path(), |_| {}).await;
    let r = reconciler(&emu, dir.path(), &settings());
    let groups = ["fleet-a", "fleet-b", "fleet-c", "fleet-d"];
    futures::future::join_all(groups.iter().map(|g| converge(&r, dir.path(), g))).await;
    assert_eq!(calls_of(&emu, "CreateDatasetImportJob"), 4, "{:?}", emu.calls());
    assert_eq!(calls_of(&emu, "DescribeDatasetImportJob"), 0, "{:?}", emu.calls());
    assert_eq!(import_jobs(&emu).await.len(), 4);
}
