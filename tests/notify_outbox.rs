//! The notification outbox: run results survive target outages, restarts and replicas, carry one id
//! across every attempt, and are dropped (counted, shown by `status`) only after `notify.max_age_secs`.
//! The store half runs on SQLite and on DynamoDB (moto); the SNS outage runs on moto.

mod support;

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use personalize_ops::daemon::{
    Daemon, DaemonConfig, Delivery, GroupReconciler, OutboxConfig, PassError, PassInput, PassReport, PassSink,
};
use personalize_ops::metrics::MemorySink;
use personalize_ops::notify::{
    EVENT_SOURCE, EventBridgeNotifier, MemoryNotifier, Message, NOTIFICATION_ID_ATTRIBUTE, Notifications,
    Notifier, NotifyError, RESULT_DETAIL_TYPE, ResourceChange, SnsNotifier,
};
use personalize_ops::store::{
    Acquire, Clock, DynamoStore, GroupState, Lease, LeaseGrant, ManualClock, NotificationStore, Observed,
    ObservedWrite, SqliteStore, StateStore, StoreError, StoredNotification, SystemClock,
};
use serde_json::Value;
use support::aws::{SerialMoto, SerialState};
use support::daemon::{ACCOUNT, converged, desired, location, replica_config, start_time};
use support::moto::unique_name;
use support::wait::eventually;
use tokio_util::sync::CancellationToken;

const LEASE: Duration = Duration::from_secs(30);

fn observed(generation: u64, at: DateTime<Utc>) -> Observed {
    Observed {
        generation,
        converged: true,
        resources: Vec::new(),
        last_error: None,
        updated_at: at,
        destroyed_at: None,
        announced: Vec::new(),
    }
}

fn item(group: &str, id: &str, at: DateTime<Utc>) -> StoredNotification {
    let body = serde_json::json!({
        "default": format!("The personalization workflow for {group} completed successfully"),
        "sms": "s",
        "email": "e",
        "email-json": serde_json::json!({"datasetGroup": group, "status": "UPDATE COMPLETE"}).to_string(),
        "sqs": serde_json::json!({"datasetGroup": group, "status": "UPDATE COMPLETE"}).to_string(),
    });
    StoredNotification::new(
        id,
        group,
        "UPDATE COMPLETE",
        format!("{group} completed"),
        body.to_string(),
        at,
    )
}

/// The lease of an `acquire_lease` answer; it must be granted.
fn acquired((grant, _): (LeaseGrant, Option<GroupState>)) -> Lease {
    match grant {
        LeaseGrant::Acquired(lease) => lease,
        LeaseGrant::Held { owner, .. } => panic!("expected the lease, held by {owner}"),
    }
}

fn plus(at: DateTime<Utc>, secs: i64) -> DateTime<Utc> {
    at + chrono::Duration::seconds(secs)
}

// ---------------------------------------------------------------------------------------------------
// The store half, on both adapters: `a` and `b` are two replicas' stores on one backend and one clock.

async fn outbox_conformance(a: &dyn StateStore, b: &dyn StateStore, clock: &ManualClock) {
    let now = clock.now();
    a.put_desired(&desired("g", "one", None)).await.expect("desired");
    let lease = acquired(
        a.acquire_lease("g", "a", LEASE, Acquire::Lease)
            .await
            .expect("lease"),
    );

    // The observed state and its announcement are written together.
    a.put_observed_notifying(
        &lease,
        &observed(1, now),
        None,
        ObservedWrite::KEEP_LEASE,
        &item("g", "n1", now),
    )
    .await
    .expect("observed with notification");
    let g = b.group("g").await.expect("read").expect("group");
    assert!(g.observed.expect("observed").converged);
    let listed = b.notifications(Some("g")).await.expect("list");
    assert_eq!(listed.len(), 1, "{listed:?}");
    let n1 = &listed[0];
    assert_eq!(
        (n1.id.as_str(), n1.group.as_str(), n1.status.as_str()),
        ("n1", "g", "UPDATE COMPLETE")
    );
    assert_eq!((n1.attempts, n1.created_at, n1.next_attempt_at), (0, now, now));
    assert!(n1.body.contains("completed successfully"), "{}", n1.body);
    assert_eq!(b.due_notifications(now, 10).await.expect("due").len(), 1);

    // A replica that lost the lease writes neither the state nor the notification.
    clock.advance(LEASE + Duration::from_secs(1));
    let taken = acquired(
        b.acquire_lease("g", "b", LEASE, Acquire::Lease)
            .await
            .expect("takeover"),
    );
    let stale = a
        .put_observed_notifying(
            &lease,
            &observed(1, clock.now()),
            None,
            ObservedWrite::KEEP_LEASE,
            &item("g", "stale", clock.now()),
        )
        .await;
    assert!(matches!(stale, Err(StoreError::Fenced { .. })), "{stale:?}");
    let ids: Vec<String> = a
        .notifications(None)
        .await
        .expect("list")
        .into_iter()
        .map(|n| n.id)
        .collect();
    assert_eq!(ids, vec!["n1"], "the fenced write stored no notification");

    // A newer generation recorded meanwhile keeps the group due now, as put_observed does.
    a.put_desired(&desired("g", "two", None))
        .await
        .expect("desired 2");
    let now = clock.now();
    b.put_observed_notifying(
        &taken,
        &observed(1, now),
        None,
        ObservedWrite::KEEP_LEASE,
        &item("g", "n2", now),
    )
    .await
    .expect("observed of the older generation");
    assert_eq!(
        b.group("g").await.expect("read").expect("group").due_at,
        Some(now)
    );

    // One claim at a time.
    let until = plus(now, 60);
    assert!(
        a.claim_notification("g", "n1", "a", now, until)
            .await
            .expect("claim")
    );
    assert!(
        !b.claim_notification("g", "n1", "b", now, until)
            .await
            .expect("claim")
    );
    let due: Vec<String> = b
        .due_notifications(now, 10)
        .await
        .expect("due")
        .into_iter()
        .map(|n| n.id)
        .collect();
    assert_eq!(due, vec!["n2"], "a claimed item is not listed");
    // Only the holder may record the failure.
    assert!(
        !b.retry_notification("g", "n1", "b", plus(now, 5), "x")
            .await
            .expect("retry")
    );
    assert!(
        a.retry_notification("g", "n1", "a", plus(now, 5), "Topic does not exist")
            .await
            .expect("retry")
    );
    let due = b.due_notifications(now, 10).await.expect("due");
    assert!(
        due.iter().all(|n| n.id != "n1"),
        "not due before its next attempt"
    );
    let due = b.due_notifications(plus(now, 5), 10).await.expect("due");
    let n1 = due.iter().find(|n| n.id == "n1").expect("due again");
    assert_eq!(n1.attempts, 1);
    assert_eq!(n1.last_error.as_deref(), Some("Topic does not exist"));
    assert_eq!(n1.claimed_by, None);

    // A claim that expired is taken over (a replica died while sending).
    let later = plus(now, 6);
    assert!(
        b.claim_notification("g", "n1", "b", later, plus(later, 60))
            .await
            .expect("claim")
    );
    assert!(
        !a.claim_notification("g", "n1", "a", plus(later, 59), plus(later, 120))
            .await
            .expect("claim")
    );
    assert!(
        a.claim_notification("g", "n1", "a", plus(later, 61), plus(later, 120))
            .await
            .expect("claim")
    );
    // b's late failure report does not undo a's claim.
    assert!(
        !b.retry_notification("g", "n1", "b", later, "late")
            .await
            .expect("retry")
    );
    assert!(
        !b.drop_notification("g", "n1", "b", later, "late")
            .await
            .expect("drop")
    );

    // Dropped: kept without its body, never due again, not claimable.
    let dropped_at = plus(later, 62);
    assert!(
        a.drop_notification("g", "n1", "a", dropped_at, "too old")
            .await
            .expect("drop")
    );
    let all = b.notifications(Some("g")).await.expect("list");
    let n1 = all.iter().find(|n| n.id == "n1").expect("kept");
    assert_eq!(n1.dropped_at, Some(dropped_at));
    assert_eq!(n1.last_error.as_deref(), Some("too old"));
    assert!(n1.body.is_empty());
    assert_eq!(n1.attempts, 3);
    assert!(n1.is_dropped());
    let far = plus(dropped_at, 3600);
    assert!(
        b.due_notifications(far, 10)
            .await
            .expect("due")
            .iter()
            .all(|n| n.id != "n1")
    );
    assert!(
        !b.claim_notification("g", "n1", "b", far, plus(far, 60))
            .await
            .expect("claim")
    );

    // Delivered: deleted; deleting again is fine.
    assert!(
        b.claim_notification("g", "n2", "b", far, plus(far, 60))
            .await
            .expect("claim")
    );
    b.delete_notification("g", "n2").await.expect("delete");
    a.delete_notification("g", "n2").await.expect("delete again");
    assert!(
        a.notifications(Some("g"))
            .await
            .expect("list")
            .iter()
            .all(|n| n.id != "n2")
    );

    // Enqueueing is idempotent per (group, id); other groups are listed apart, also by prefix.
    let e = item("g-2", "e1", far);
    a.enqueue_notification(&e).await.expect("enqueue");
    b.enqueue_notification(&e).await.expect("enqueue again");
    assert_eq!(a.notifications(Some("g-2")).await.expect("list").len(), 1);
    assert_eq!(a.notifications(None).await.expect("list").len(), 2);
    let only_g: Vec<String> = a
        .notifications(Some("g"))
        .await
        .expect("list")
        .into_iter()
        .map(|n| n.group)
        .collect();
    assert_eq!(only_g, vec!["g"]);
    // Due items come oldest first, up to the limit.
    a.enqueue_notification(&item("g-3", "older", plus(far, -10)))
        .await
        .expect("enqueue");
    let due: Vec<String> = a
        .due_notifications(far, 1)
        .await
        .expect("due")
        .into_iter()
        .map(|n| n.id)
        .collect();
    assert_eq!(due, vec!["older"]);
}

fn manual_clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(start_time()))
}

#[tokio::test]
async fn sqlite_outbox_conformance() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = manual_clock();
    let open = || {
        SqliteStore::open(&dir.path().join("state.sqlite"))
            .expect("open")
            .with_clock(clock.clone() as Arc<dyn Clock>)
    };
    outbox_conformance(&open(), &open(), &clock).await;
}

#[tokio::test]
async fn dynamo_outbox_conformance() {
    let moto = SerialMoto::start();
    let config = moto.sdk_config().await;
    let client = aws_sdk_dynamodb::Client::new(&config);
    let table = unique_name("state");
    DynamoStore::create_table(&client, &table).await.expect("table");
    let clock = manual_clock();
    let store = |client| DynamoStore::new(client, table.clone()).with_clock(clock.clone() as Arc<dyn Clock>);
    let other = aws_sdk_dynamodb::Client::new(&config);
    let (a, b) = (store(client), store(other));
    outbox_conformance(&a, &b, &clock).await;
    // Outbox items are not groups and not schedules.
    let groups: Vec<String> = a
        .list_groups()
        .await
        .expect("groups")
        .into_iter()
        .map(|g| g.name)
        .collect();
    assert_eq!(groups, vec!["g"]);
    assert!(a.schedules(None).await.expect("schedules").is_empty());
}

// ---------------------------------------------------------------------------------------------------
// The daemon half.

/// Converges every group at once.
struct Converges;

#[async_trait::async_trait]
impl GroupReconciler for Converges {
    async fn pass(&self, input: PassInput<'_>, _sink: &PassSink) -> Result<PassReport, PassError> {
        Ok(converged(input.group))
    }
}

/// Fails the first `failures` publishes, then records every message it takes; remembers the id of
/// every attempt.
#[derive(Debug, Default)]
struct Flaky {
    failures: u32,
    attempts: AtomicU32,
    ids: Mutex<Vec<Option<String>>>,
    taken: MemoryNotifier,
}

impl Flaky {
    fn failing(failures: u32) -> Arc<Self> {
        Arc::new(Self {
            failures,
            ..Self::default()
        })
    }

    fn ids(&self) -> Vec<Option<String>> {
        self.ids.lock().expect("lock").clone()
    }
}

#[async_trait::async_trait]
impl Notifier for Flaky {
    async fn publish(&self, message: &Message) -> Result<(), NotifyError> {
        self.ids.lock().expect("lock").push(message.id.clone());
        if self.attempts.fetch_add(1, Ordering::SeqCst) < self.failures {
            return Err(NotifyError::Rejected {
                bus: "test".into(),
                failed: 1,
                reason: "target down".into(),
            });
        }
        self.taken.publish(message).await
    }

    async fn resource_changed(&self, _change: &ResourceChange) -> Result<(), NotifyError> {
        Ok(())
    }
}

fn config(owner: &str) -> DaemonConfig {
    DaemonConfig {
        concurrency: 2,
        lease_duration: Duration::from_secs(5),
        dispatch_interval: Duration::from_millis(20),
        error_retry: Duration::from_millis(200),
        location: location(ACCOUNT),
        ..replica_config(owner)
    }
}

fn fast_outbox() -> OutboxConfig {
    OutboxConfig {
        retry_min: Duration::from_millis(20),
        retry_max: Duration::from_millis(80),
        ..OutboxConfig::default()
    }
}

fn daemon(
    store: Arc<dyn StateStore>,
    notifier: Arc<dyn Notifier>,
    metrics: Arc<MemorySink>,
    clock: Arc<dyn Clock>,
    owner: &str,
    outbox: OutboxConfig,
) -> Arc<Daemon> {
    Arc::new(
        Daemon::new(
            store,
            Arc::new(Converges),
            Notifications::new(vec![notifier]),
            metrics,
            clock,
            config(owner),
        )
        .with_outbox(outbox),
    )
}

fn sqlite_at(path: &Path) -> Arc<SqliteStore> {
    Arc::new(
        SqliteStore::open(path)
            .expect("open")
            .with_max_clock_skew(Duration::from_millis(100)),
    )
}

async fn pending(store: &dyn StateStore, group: &str) -> Vec<StoredNotification> {
    store
        .notifications(Some(group))
        .await
        .expect("list")
        .into_iter()
        .filter(|n| !n.is_dropped())
        .collect()
}

/// A completed generation whose targets are down is stored; the process stops before it is delivered;
/// the next process delivers it, once, with the id it was stored under.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_not_delivered_before_a_restart_is_delivered_by_the_next_process() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("state.sqlite");
    let down = Flaky::failing(u32::MAX);
    {
        let store = sqlite_at(&path);
        store
            .put_desired(&desired("g", "one", None))
            .await
            .expect("desired");
        let first = daemon(
            store.clone(),
            down.clone(),
            Arc::new(MemorySink::new()),
            Arc::new(SystemClock),
            "first",
            // Stopped before its next attempt: what it left is the next process's (the backoff
            // recorded holds across the restart).
            OutboxConfig {
                retry_min: Duration::from_secs(2),
                retry_max: Duration::from_secs(2),
                ..OutboxConfig::default()
            },
        );
        let token = CancellationToken::new();
        let task = tokio::spawn(first.clone().run(None, token.clone()));
        eventually("the first attempt failed", || async {
            pending(store.as_ref(), "g")
                .await
                .first()
                .is_some_and(|n| n.attempts >= 1 && n.last_error.is_some())
        })
        .await;
        token.cancel();
        task.await.expect("join").expect("stopped");
    }
    let stored = pending(sqlite_at(&path).as_ref(), "g").await;
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert!(
        stored[0]
            .last_error
            .as_deref()
            .unwrap_or("")
            .contains("target down")
    );
    let id = stored[0].id.clone();
    assert!(down.taken.messages().is_empty());

    // A crash right after the fenced write leaves an item nobody tried: also delivered.
    let store = sqlite_at(&path);
    let lease = acquired(
        store
            .acquire_lease("h", "crashed", LEASE, Acquire::Lease)
            .await
            .expect("lease"),
    );
    let crashed = item("h", "written-then-killed", Utc::now());
    store
        .put_observed_notifying(
            &lease,
            &observed(1, Utc::now()),
            None,
            ObservedWrite::KEEP_LEASE,
            &crashed,
        )
        .await
        .expect("write");

    let up = Flaky::failing(0);
    let second = daemon(
        store.clone(),
        up.clone(),
        Arc::new(MemorySink::new()),
        Arc::new(SystemClock),
        "second",
        fast_outbox(),
    );
    let token = CancellationToken::new();
    let task = tokio::spawn(second.clone().run(None, token.clone()));
    eventually("both delivered", || async {
        store.notifications(None).await.expect("list").is_empty()
    })
    .await;
    token.cancel();
    task.await.expect("join").expect("stopped");
    let mut delivered: Vec<(String, Option<String>)> = up
        .taken
        .messages()
        .into_iter()
        .map(|m| (m.dataset_group, m.id))
        .collect();
    delivered.sort();
    assert_eq!(
        delivered,
        vec![
            ("g".to_string(), Some(id.clone())),
            ("h".to_string(), Some("written-then-killed".to_string())),
        ],
        "each delivered once under its stored id"
    );
    let of_g = up
        .taken
        .messages()
        .into_iter()
        .find(|m| m.dataset_group == "g")
        .expect("g's message");
    let body: Value = serde_json::from_str(&of_g.body).expect("body");
    let sqs: Value = serde_json::from_str(body["sqs"].as_str().expect("sqs")).expect("sqs json");
    assert_eq!(
        sqs["notificationId"],
        Value::String(id),
        "the id is in the body too"
    );
    assert_eq!(sqs["status"], "UPDATE COMPLETE");
}

/// Every attempt of one notification carries the same id; after the target recovers it is taken once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_id_is_the_same_on_every_attempt() {
    let store = Arc::new(
        SqliteStore::in_memory()
            .expect("sqlite")
            .with_max_clock_skew(Duration::from_millis(100)),
    );
    store
        .put_desired(&desired("g", "one", None))
        .await
        .expect("desired");
    let flaky = Flaky::failing(3);
    let d = daemon(
        store.clone(),
        flaky.clone(),
        Arc::new(MemorySink::new()),
        Arc::new(SystemClock),
        "a",
        fast_outbox(),
    );
    let token = CancellationToken::new();
    let task = tokio::spawn(d.clone().run(None, token.clone()));
    eventually("delivered after three failures", || async {
        !flaky.taken.messages().is_empty() && store.notifications(None).await.expect("list").is_empty()
    })
    .await;
    token.cancel();
    task.await.expect("join").expect("stopped");
    let ids = flaky.ids();
    assert_eq!(ids.len(), 4, "three failures and one success: {ids:?}");
    let first = ids[0].clone().expect("an id");
    assert!(
        ids.iter().all(|i| i.as_deref() == Some(first.as_str())),
        "{ids:?}"
    );
    assert_eq!(flaky.taken.messages().len(), 1);
    assert_eq!(flaky.taken.messages()[0].status, "UPDATE COMPLETE");
}

/// Two replicas draining one outbox send each item once (no crash, so no duplicate).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_draining_one_outbox_send_each_item_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("state.sqlite");
    let now = Utc::now();
    let seed = sqlite_at(&path);
    for i in 0..30 {
        seed.enqueue_notification(&item(&format!("g{i}"), &format!("n{i}"), now))
            .await
            .expect("enqueue");
    }
    let notifier = Flaky::failing(0);
    let replicas: Vec<Arc<Daemon>> = ["a", "b"]
        .into_iter()
        .map(|owner| {
            daemon(
                sqlite_at(&path),
                notifier.clone(),
                Arc::new(MemorySink::new()),
                Arc::new(SystemClock),
                owner,
                fast_outbox(),
            )
        })
        .collect();
    let (a, b) = tokio::join!(replicas[0].drain_outbox(), replicas[1].drain_outbox());
    let delivered = |d: &[Delivery]| d.iter().filter(|x| **x == Delivery::Delivered).count();
    assert_eq!(delivered(&a) + delivered(&b), 30, "{a:?} {b:?}");
    let mut ids: Vec<Option<String>> = notifier.taken.messages().into_iter().map(|m| m.id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 30);
    assert!(seed.notifications(None).await.expect("list").is_empty());
}

/// Never answers: a replica stopped in the middle of an attempt.
#[derive(Debug)]
struct Hangs;

#[async_trait::async_trait]
impl Notifier for Hangs {
    async fn publish(&self, _message: &Message) -> Result<(), NotifyError> {
        std::future::pending().await
    }

    async fn resource_changed(&self, _change: &ResourceChange) -> Result<(), NotifyError> {
        Ok(())
    }
}

/// The outbox as `[notify]` settings make it (`notify.claim_secs` among them).
fn outbox_from(pairs: &[(&str, &str)]) -> OutboxConfig {
    let env: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| (format!("PERSONALIZE_OPS__NOTIFY__{k}"), v.to_string()))
        .collect();
    let settings = personalize_ops::settings::Settings::load_with_env(None, env).expect("settings");
    OutboxConfig::from_settings(&settings.notify)
}

/// A failed attempt gives the claim back: another replica takes the item at its backoff time, long
/// before `notify.claim_secs` would have run out. A replica killed in the middle of an attempt keeps
/// the others off for the claim it took, and no longer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_attempt_releases_its_claim_and_a_killed_one_holds_it_for_claim_secs() {
    let clock = manual_clock();
    let store = Arc::new(
        SqliteStore::in_memory()
            .expect("sqlite")
            .with_clock(clock.clone() as Arc<dyn Clock>),
    );
    let outbox = outbox_from(&[
        ("CLAIM_SECS", "600"),
        ("RETRY_MIN_SECS", "5"),
        ("RETRY_MAX_SECS", "5"),
    ]);
    assert_eq!(outbox.claim, Duration::from_secs(600));
    let replica = |notifier: Arc<dyn Notifier>, owner: &str| {
        daemon(
            store.clone(),
            notifier,
            Arc::new(MemorySink::new()),
            clock.clone() as Arc<dyn Clock>,
            owner,
            outbox.clone(),
        )
    };
    let down = replica(Flaky::failing(u32::MAX), "down");
    let up_notes = Flaky::failing(0);
    let up = replica(up_notes.clone(), "up");

    store
        .enqueue_notification(&item("g", "n1", clock.now()))
        .await
        .expect("enqueue");
    assert_eq!(down.drain_outbox().await, vec![Delivery::Retrying]);
    let n1 = &pending(store.as_ref(), "g").await[0];
    assert_eq!(
        (n1.attempts, n1.claimed_by.as_deref()),
        (1, None),
        "released: {n1:?}"
    );
    clock.advance(Duration::from_secs(4));
    assert_eq!(up.drain_outbox().await, vec![], "not due before its backoff");
    clock.advance(Duration::from_secs(1));
    assert_eq!(
        up.drain_outbox().await,
        vec![Delivery::Delivered],
        "taken at its backoff (5 s), not after the claim (600 s)"
    );
    assert_eq!(up_notes.taken.messages().len(), 1);

    // Killed mid-attempt: the claim holds for claim_secs from the attempt's start.
    store
        .enqueue_notification(&item("g", "n2", clock.now()))
        .await
        .expect("enqueue");
    let claimed_at = clock.now();
    let hung = replica(Arc::new(Hangs), "hung");
    let attempt = tokio::spawn(async move { hung.drain_outbox().await });
    eventually("the hung replica claimed n2", || async {
        pending(store.as_ref(), "g")
            .await
            .iter()
            .any(|n| n.id == "n2" && n.claimed_by.as_deref() == Some("hung"))
    })
    .await;
    attempt.abort();
    assert!(attempt.await.expect_err("killed").is_cancelled());
    clock.set(claimed_at + chrono::Duration::seconds(599));
    assert_eq!(
        up.drain_outbox().await,
        vec![],
        "others kept off while the claim lasts"
    );
    let n2 = pending(store.as_ref(), "g").await.remove(0);
    assert_eq!(up.deliver_item(n2).await, Delivery::Skipped);
    clock.set(claimed_at + chrono::Duration::seconds(601));
    assert_eq!(
        up.drain_outbox().await,
        vec![Delivery::Delivered],
        "taken over once the claim ran out"
    );
    let ids: Vec<Option<String>> = up_notes.taken.messages().into_iter().map(|m| m.id).collect();
    assert_eq!(ids, vec![Some("n1".to_string()), Some("n2".to_string())]);
    assert!(store.notifications(None).await.expect("list").is_empty());
}

/// Undeliverable past the age limit: dropped, counted, logged, and shown by `status`.
#[tokio::test]
async fn an_undeliverable_result_is_dropped_after_the_age_limit_and_shown_by_status() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = manual_clock();
    let store = Arc::new(
        SqliteStore::open(&dir.path().join("state.sqlite"))
            .expect("open")
            .with_clock(clock.clone() as Arc<dyn Clock>),
    );
    store
        .put_desired(&desired("g", "one", None))
        .await
        .expect("desired");
    let lease = acquired(
        store
            .acquire_lease("g", "a", LEASE, Acquire::Lease)
            .await
            .expect("lease"),
    );
    store
        .put_observed_notifying(
            &lease,
            &observed(1, clock.now()),
            None,
            ObservedWrite::KEEP_LEASE,
            &item("g", "n1", clock.now()),
        )
        .await
        .expect("write");
    let metrics = Arc::new(MemorySink::new());
    let d = daemon(
        store.clone(),
        Flaky::failing(u32::MAX),
        metrics.clone(),
        clock.clone() as Arc<dyn Clock>,
        "a",
        OutboxConfig {
            retry_min: Duration::from_secs(60),
            retry_max: Duration::from_secs(600),
            max_age: Duration::from_secs(3600),
            ..OutboxConfig::default()
        },
    );
    assert_eq!(d.drain_outbox().await, vec![Delivery::Retrying]);
    assert_eq!(d.drain_outbox().await, vec![], "not due again before its backoff");
    // Retried with growing waits while young enough; the last wait stops at the age limit.
    let mut rounds = 0;
    loop {
        clock.advance(Duration::from_secs(600));
        let done = d.drain_outbox().await;
        rounds += 1;
        if done == vec![Delivery::Dropped] {
            break;
        }
        assert_eq!(done, vec![Delivery::Retrying], "round {rounds}");
        assert!(rounds < 10, "never dropped");
    }
    assert_eq!(metrics.total("NotificationsDropped"), 1.0);
    assert!(d.drain_outbox().await.is_empty());
    let all = store.notifications(Some("g")).await.expect("list");
    assert_eq!(all.len(), 1);
    assert!(all[0].is_dropped());
    assert!(all[0].last_error.as_deref().unwrap_or("").contains("target down"));

    // `status` shows it, in JSON and in text.
    let status = |format: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_personalize-ops"))
            .args(["status", "g", "--format", format, "--local"])
            .arg(dir.path())
            .output()
            .expect("status runs");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).expect("UTF-8")
    };
    let json: Value = serde_json::from_str(&status("json")).expect("JSON");
    let notes = json["notifications"].as_array().expect("notifications");
    assert_eq!(notes.len(), 1, "{json:#}");
    assert_eq!(notes[0]["id"], "n1");
    assert_eq!(notes[0]["state"], "dropped");
    assert_eq!(notes[0]["status"], "UPDATE COMPLETE");
    assert!(
        notes[0]["lastError"]
            .as_str()
            .unwrap_or("")
            .contains("target down")
    );
    let text = status("text");
    assert!(text.contains("dropped"), "{text}");
    assert!(text.contains("n1"), "{text}");
}

// ---------------------------------------------------------------------------------------------------
// SNS on moto.

/// The SNS topic does not exist when a generation completes: the daemon keeps running, retries, and
/// once the topic exists the notification arrives with its `notification_id` attribute.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_published_while_the_topic_is_missing_arrives_once_it_exists() {
    let moto = SerialMoto::start();
    let SerialState { ddb, sns, sqs, table } = moto.state().await;
    let store = Arc::new(DynamoStore::new(ddb, table).with_max_clock_skew(Duration::from_millis(500)));
    let topic_name = unique_name("late");
    let topic_arn = format!("arn:aws:sns:us-east-1:123456789012:{topic_name}");
    store
        .put_desired(&desired("g", "one", None))
        .await
        .expect("desired");

    let d = Arc::new(
        Daemon::new(
            store.clone(),
            Arc::new(Converges),
            Notifications::new(vec![Arc::new(SnsNotifier::new(sns.clone(), &topic_arn))]),
            Arc::new(MemorySink::new()),
            Arc::new(SystemClock),
            config_for_moto(),
        )
        .with_outbox(OutboxConfig {
            retry_min: Duration::from_millis(200),
            retry_max: Duration::from_millis(400),
            ..OutboxConfig::default()
        }),
    );
    let token = CancellationToken::new();
    let task = tokio::spawn(d.clone().run(None, token.clone()));
    eventually("two failed attempts on the missing topic", || async {
        pending(store.as_ref(), "g")
            .await
            .first()
            .is_some_and(|n| n.attempts >= 2 && n.last_error.is_some())
    })
    .await;
    let stored = pending(store.as_ref(), "g").await;
    let id = stored[0].id.clone();
    assert!(!task.is_finished(), "the daemon keeps running");

    let created = sns
        .create_topic()
        .name(&topic_name)
        .send()
        .await
        .expect("topic")
        .topic_arn
        .expect("arn");
    assert_eq!(created, topic_arn);
    let (_, url) = queue_on(&sns, &sqs, &topic_arn).await;
    let received = Mutex::new(Vec::<Value>::new());
    eventually("the notification arrives", || async {
        let got = envelopes(&sqs, &url).await;
        let mut all = received.lock().expect("lock");
        all.extend(got);
        !all.is_empty()
    })
    .await;
    eventually("the outbox is empty", || async {
        store.notifications(None).await.expect("list").is_empty()
    })
    .await;
    let mut received = received.into_inner().expect("lock");
    received.extend(envelopes(&sqs, &url).await);
    token.cancel();
    task.await.expect("join").expect("stopped");
    assert_eq!(received.len(), 1, "{received:?}");
    let envelope = &received[0];
    assert_eq!(
        envelope["MessageAttributes"][NOTIFICATION_ID_ATTRIBUTE]["Value"],
        Value::String(id.clone()),
        "{envelope:#}"
    );
    assert_eq!(
        envelope["MessageAttributes"]["status"]["Value"],
        "UPDATE COMPLETE"
    );
    let sqs_body: Value =
        serde_json::from_str(envelope["Message"].as_str().expect("message")).expect("sqs body");
    assert_eq!(sqs_body["notificationId"], Value::String(id));
    assert_eq!(sqs_body["datasetGroup"], "g");
}

fn config_for_moto() -> DaemonConfig {
    DaemonConfig {
        lease_duration: Duration::from_secs(4),
        dispatch_interval: Duration::from_millis(100),
        ..config("moto-replica")
    }
}

/// A queue subscribed to `topic`: (queue ARN, URL).
async fn queue_on(sns: &aws_sdk_sns::Client, sqs: &aws_sdk_sqs::Client, topic: &str) -> (String, String) {
    let (url, arn) = support::cloud::queue(sqs, "late-notes").await;
    sns.subscribe()
        .topic_arn(topic)
        .protocol("sqs")
        .endpoint(&arn)
        .send()
        .await
        .expect("subscribe");
    (arn, url)
}

/// The SNS envelopes that reached `url` so far (received and deleted).
async fn envelopes(sqs: &aws_sdk_sqs::Client, url: &str) -> Vec<Value> {
    support::cloud::receive_batch(sqs, url, 0)
        .await
        .iter()
        .map(|body| serde_json::from_str(body).expect("SNS envelope"))
        .collect()
}

/// With EventBridge configured, a result counts as delivered only once the bus took it too: a missing
/// bus keeps it in the outbox; once the bus exists, the event arrives with the id in its detail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_waits_for_the_event_bus_and_its_event_carries_the_id() {
    let moto = SerialMoto::start();
    let config = moto.sdk_config().await;
    let events = aws_sdk_eventbridge::Client::new(&config);
    let sqs = aws_sdk_sqs::Client::new(&config);
    let store = Arc::new(SqliteStore::in_memory().expect("sqlite"));
    let bus = unique_name("bus");
    let notes = Arc::new(MemoryNotifier::default());
    let d = Arc::new(
        Daemon::new(
            store.clone(),
            Arc::new(Converges),
            Notifications::new(vec![
                notes.clone(),
                Arc::new(EventBridgeNotifier::new(events.clone(), &bus)),
            ]),
            Arc::new(MemorySink::new()),
            Arc::new(SystemClock),
            config_for_moto(),
        )
        .with_outbox(OutboxConfig {
            retry_min: Duration::from_millis(1),
            retry_max: Duration::from_millis(1),
            ..OutboxConfig::default()
        }),
    );
    let now = Utc::now();
    store
        .enqueue_notification(&item("g", "n-bus", now))
        .await
        .expect("enqueue");
    assert_eq!(d.drain_outbox().await, vec![Delivery::Retrying], "no bus yet");
    let pending = pending(store.as_ref(), "g").await;
    assert_eq!(pending.len(), 1);
    assert!(
        pending[0].last_error.as_deref().unwrap_or("").contains(&bus),
        "{pending:?}"
    );

    events.create_event_bus().name(&bus).send().await.expect("bus");
    let (url, arn) = support::cloud::queue(&sqs, "bus-notes").await;
    events
        .put_rule()
        .name("results")
        .event_bus_name(&bus)
        .event_pattern(
            serde_json::json!({"source": [EVENT_SOURCE], "detail-type": [RESULT_DETAIL_TYPE]}).to_string(),
        )
        .send()
        .await
        .expect("rule");
    events
        .put_targets()
        .rule("results")
        .event_bus_name(&bus)
        .targets(
            aws_sdk_eventbridge::types::Target::builder()
                .id("queue")
                .arn(&arn)
                .build()
                .expect("target"),
        )
        .send()
        .await
        .expect("target");
    assert_eq!(d.drain_outbox().await, vec![Delivery::Delivered]);
    assert!(store.notifications(None).await.expect("list").is_empty());
    let received = support::cloud::receive_batch(&sqs, &url, 5).await;
    assert_eq!(received.len(), 1, "{received:?}");
    let event: Value = serde_json::from_str(&received[0]).expect("event");
    assert_eq!(event["detail-type"], RESULT_DETAIL_TYPE);
    assert_eq!(event["detail"]["notificationId"], "n-bus");
    assert_eq!(event["detail"]["datasetGroup"], "g");
    assert_eq!(event["detail"]["status"], "UPDATE COMPLETE");
    // Both targets were sent the message on each attempt, with the same id.
    let ids: Vec<Option<String>> = notes.messages().into_iter().map(|m| m.id).collect();
    assert_eq!(ids, vec![Some("n-bus".to_string()); 2]);
}
