//! One conformance suite for the state store, run against SQLite and against DynamoDB on moto.

mod support;

use std::sync::Arc;
use std::time::Duration;

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use chrono::{DateTime, Utc};
use personalize_ops::objects::ObjectUrl;
use personalize_ops::store::DueGroup;
use personalize_ops::store::{
    Acquire, BeginFire, Clock, DEFAULT_MAX_CLOCK_SKEW, DesiredSource, DynamoStore, FireClaim, FireOutcome,
    FireStatus, Lease, LeaseGrant, MAX_DESIRED_TEXT_BYTES, MAX_NAME_BYTES, MAX_OBSERVED_BYTES,
    MAX_SOURCE_FIELD_BYTES, ManualClock, NewDesired, Observed, ObservedWrite, PutDesired, ResourceKind,
    ResourceState, Schedule, ScheduleMarks, SqliteStore, StateStore, StoreError, StoredNotification,
};
use support::aws::SerialMoto;
use support::daemon::{desired, start_time};
use support::moto::{Moto, unique_name};

const LEASE: Duration = Duration::from_secs(30);

fn observed(generation: u64, converged: bool) -> Observed {
    Observed {
        generation,
        converged,
        resources: vec![ResourceState {
            kind: ResourceKind::SolutionVersion,
            name: "sol-a".into(),
            status: "CREATE FAILED".into(),
            arn: Some("arn:aws:personalize:us-east-1:123456789012:solution/sol-a/1".into()),
            reason: Some("Not enough interactions".into()),
        }],
        last_error: Some("solution version sol-a failed".into()),
        updated_at: start_time(),
        destroyed_at: None,
        announced: Vec::new(),
    }
}

fn acquired(grant: LeaseGrant) -> Lease {
    match grant {
        LeaseGrant::Acquired(lease) => lease,
        LeaseGrant::Held { owner, .. } => panic!("expected the lease, held by {owner}"),
    }
}

/// Takes `group`'s lease for `owner`; it must be free.
async fn take(store: &dyn StateStore, group: &str, owner: &str) -> Lease {
    acquired(
        store
            .acquire_lease(group, owner, LEASE, Acquire::Lease)
            .await
            .expect("lease")
            .0,
    )
}

fn is_fenced<T: std::fmt::Debug>(result: Result<T, StoreError>) -> bool {
    matches!(result, Err(StoreError::Fenced { .. }))
}

// ---------------------------------------------------------------------------------------------------
// The suite: each function takes fresh, empty stores sharing one backend and one manual clock.

async fn desired_generations(store: &dyn StateStore) {
    let first = store
        .put_desired(&desired("g1", "one", Some("0055A0")))
        .await
        .expect("first");
    let PutDesired::Recorded(d1) = first else {
        panic!("first file must be recorded: {first:?}")
    };
    assert_eq!(d1.generation, 1);
    assert_eq!(d1.run_timestamp, "2026_11_28_12_00_00");

    // The same event again (and again): no new generation.
    for _ in 0..3 {
        let again = store
            .put_desired(&desired("g1", "one", Some("0055A0")))
            .await
            .expect("duplicate");
        assert!(
            matches!(again, PutDesired::Duplicate(ref d) if d.generation == 1),
            "{again:?}"
        );
    }

    let newer = store
        .put_desired(&desired("g1", "two", Some("0055B0")))
        .await
        .expect("newer");
    assert!(
        matches!(newer, PutDesired::Recorded(ref d) if d.generation == 2),
        "{newer:?}"
    );

    // A late event older than what is recorded never replaces it.
    let late = store
        .put_desired(&desired("g1", "one-and-a-half", Some("0055A8")))
        .await
        .expect("late");
    assert!(
        matches!(late, PutDesired::Superseded { ref current } if current.generation == 2 && current.text == "two"),
        "{late:?}"
    );

    let state = store.group("g1").await.expect("read").expect("exists");
    let d = state.desired.expect("desired");
    assert_eq!((d.generation, d.text.as_str()), (2, "two"));
    assert_eq!(d.source.url, ObjectUrl::new("data", "train/g1/config.json"));
    assert_eq!(d.source.sequencer.as_deref(), Some("0055B0"));
    assert_eq!(d.source.etag.as_deref(), Some("etag-two"));
    assert_eq!(d.received_at, start_time());
    assert!(state.observed.is_none());

    assert!(store.group("nobody").await.expect("read").is_none());

    // Too big to store inline: refused with a clear error, nothing written.
    let big = desired("g2", &"x".repeat(256 * 1024 + 1), None);
    let err = store.put_desired(&big).await.expect_err("too large");
    assert!(matches!(err, StoreError::TooLarge { .. }), "{err}");
    assert!(
        err.to_string().contains("s3://data/train/g2/config.json"),
        "{err}"
    );
    assert!(store.group("g2").await.expect("read").is_none());
}

/// `writers` stores on one backend race: the same event from everyone gives one generation; distinct
/// unordered events give one generation each, with no generation handed out twice.
async fn desired_races(writers: Vec<Arc<dyn StateStore>>) {
    let same = writers.iter().map(|store| {
        let store = Arc::clone(store);
        tokio::spawn(async move { store.put_desired(&desired("race", "same", None)).await })
    });
    let results = futures::future::join_all(same).await;
    let recorded = results
        .into_iter()
        .map(|r| r.expect("task").expect("put"))
        .filter(|r| matches!(r, PutDesired::Recorded(_)))
        .count();
    assert_eq!(recorded, 1, "exactly one writer records the event");

    let distinct = writers.iter().enumerate().map(|(i, store)| {
        let store = Arc::clone(store);
        tokio::spawn(async move {
            store
                .put_desired(&desired("race2", &format!("text-{i}"), None))
                .await
        })
    });
    let mut generations: Vec<u64> = futures::future::join_all(distinct)
        .await
        .into_iter()
        .map(|r| match r.expect("task").expect("put") {
            PutDesired::Recorded(d) => d.generation,
            other => panic!("each distinct file is newer: {other:?}"),
        })
        .collect();
    generations.sort_unstable();
    let expected: Vec<u64> = (1..=writers.len() as u64).collect();
    assert_eq!(generations, expected);
    let last = writers[0].group("race2").await.expect("read").expect("exists");
    assert_eq!(last.desired.expect("desired").generation, writers.len() as u64);
}

async fn leases_and_fencing(store: &dyn StateStore, clock: &ManualClock) {
    store
        .put_desired(&desired("lg", "one", None))
        .await
        .expect("desired");
    let a = acquired(
        store
            .acquire_lease("lg", "replica-a", LEASE, Acquire::Lease)
            .await
            .expect("acquire")
            .0,
    );
    assert_eq!(a.epoch, 1);
    assert_eq!(a.expires_at, start_time() + chrono::Duration::seconds(30));

    // Held: by someone else, and also by the holder itself.
    let held = store
        .acquire_lease("lg", "replica-b", LEASE, Acquire::Lease)
        .await
        .expect("ask")
        .0;
    assert_eq!(
        held,
        LeaseGrant::Held {
            owner: "replica-a".into(),
            expires_at: a.expires_at
        }
    );
    assert!(matches!(
        store
            .acquire_lease("lg", "replica-a", LEASE, Acquire::Lease)
            .await
            .expect("ask")
            .0,
        LeaseGrant::Held { .. }
    ));

    // Renewal by the owner extends; a forged lease (wrong owner or epoch) is fenced.
    clock.advance(Duration::from_secs(20));
    let a = store.renew_lease(&a, LEASE).await.expect("renew");
    assert_eq!(a.expires_at, start_time() + chrono::Duration::seconds(50));
    let forged = Lease {
        owner: "replica-b".into(),
        ..a.clone()
    };
    assert!(is_fenced(store.renew_lease(&forged, LEASE).await));
    let stale_epoch = Lease {
        epoch: 0,
        ..a.clone()
    };
    assert!(is_fenced(
        store
            .put_observed(&stale_epoch, &observed(1, false), None, ObservedWrite::KEEP_LEASE)
            .await
    ));

    store
        .put_observed(&a, &observed(1, false), None, ObservedWrite::KEEP_LEASE)
        .await
        .expect("owner writes");

    // Still held just before expiry; free after it.
    clock.advance(Duration::from_secs(30));
    assert!(matches!(
        store
            .acquire_lease("lg", "replica-b", LEASE, Acquire::Lease)
            .await
            .expect("ask")
            .0,
        LeaseGrant::Held { .. }
    ));
    clock.advance(Duration::from_secs(1));
    let b = acquired(
        store
            .acquire_lease("lg", "replica-b", LEASE, Acquire::Lease)
            .await
            .expect("take over")
            .0,
    );
    assert_eq!(b.epoch, 2);

    // The old holder is fenced everywhere.
    assert!(is_fenced(store.renew_lease(&a, LEASE).await));
    assert!(is_fenced(
        store
            .put_observed(&a, &observed(1, true), None, ObservedWrite::KEEP_LEASE)
            .await
    ));
    assert!(is_fenced(store.release_lease(&a).await));
    let schedule = sample_schedule("lg", "retrain");
    assert!(is_fenced(store.put_schedule(&a, &schedule).await));
    assert!(is_fenced(store.delete_schedule(&a, "retrain").await));

    store
        .put_observed(&b, &observed(1, true), None, ObservedWrite::KEEP_LEASE)
        .await
        .expect("new holder writes");
    let state = store.group("lg").await.expect("read").expect("exists");
    assert_eq!(state.observed.expect("observed"), observed(1, true));
    assert_eq!(state.lease.owner.as_deref(), Some("replica-b"));
    assert_eq!(state.lease.epoch, 2);

    // Release frees the group at once; the next acquisition bumps the epoch again.
    store.release_lease(&b).await.expect("release");
    let released = store.group("lg").await.expect("read").expect("exists");
    assert_eq!(released.lease.owner, None);
    let a2 = acquired(
        store
            .acquire_lease("lg", "replica-a", LEASE, Acquire::Lease)
            .await
            .expect("acquire")
            .0,
    );
    assert_eq!(a2.epoch, 3);
    assert!(is_fenced(
        store
            .put_observed(&b, &observed(1, true), None, ObservedWrite::KEEP_LEASE)
            .await
    ));

    // A lease can be taken on a group the store has not heard of (resync of a known name).
    let fresh = acquired(
        store
            .acquire_lease("new-group", "replica-a", LEASE, Acquire::Lease)
            .await
            .expect("acquire")
            .0,
    );
    assert_eq!(fresh.epoch, 1);
}

async fn due_times(store: &dyn StateStore, clock: &ManualClock) {
    assert!(DueGroup::names(&store.due_groups(10).await.expect("due")).is_empty());
    store
        .put_desired(&desired("d1", "one", None))
        .await
        .expect("desired");
    clock.advance(Duration::from_secs(1));
    store
        .put_desired(&desired("d2", "one", None))
        .await
        .expect("desired");
    assert_eq!(
        DueGroup::names(&store.due_groups(10).await.expect("due")),
        vec!["d1", "d2"]
    );
    assert_eq!(
        DueGroup::names(&store.due_groups(1).await.expect("due")),
        vec!["d1"]
    );

    // A pass that asks to be called again in a minute.
    let lease = take(store, "d1", "r").await;
    let next = clock_now(clock) + chrono::Duration::seconds(60);
    store
        .put_observed(&lease, &observed(1, false), Some(next), ObservedWrite::KEEP_LEASE)
        .await
        .expect("observed");
    assert_eq!(
        DueGroup::names(&store.due_groups(10).await.expect("due")),
        vec!["d2"]
    );
    clock.advance(Duration::from_secs(61));
    assert_eq!(
        DueGroup::names(&store.due_groups(10).await.expect("due")),
        vec!["d2", "d1"]
    );

    // Converged: due only on resync or a new event.
    let lease = store.renew_lease(&lease, LEASE).await.expect("renew");
    store
        .put_observed(&lease, &observed(1, true), None, ObservedWrite::KEEP_LEASE)
        .await
        .expect("observed");
    assert_eq!(
        DueGroup::names(&store.due_groups(10).await.expect("due")),
        vec!["d2"]
    );

    // A new generation arriving while a pass works on the old one keeps the group due.
    store
        .put_desired(&desired("d1", "two", None))
        .await
        .expect("newer");
    let far = clock_now(clock) + chrono::Duration::hours(5);
    store
        .put_observed(&lease, &observed(1, true), Some(far), ObservedWrite::KEEP_LEASE)
        .await
        .expect("observed");
    assert!(
        DueGroup::names(&store.due_groups_for("r", 10).await.expect("due")).contains(&"d1".to_string()),
        "a newer generation must not be lost"
    );
    assert!(
        !DueGroup::names(&store.due_groups(10).await.expect("due")).contains(&"d1".to_string()),
        "while leased, the group is only listed to its holder"
    );
    let state = store.group("d1").await.expect("read").expect("exists");
    assert_eq!(state.observed.expect("observed").generation, 1);
    assert_eq!(state.due_at, Some(clock_now(clock)));

    // mark_due only moves the due time earlier, and creates unknown groups.
    store
        .put_observed(&lease, &observed(2, true), None, ObservedWrite::KEEP_LEASE)
        .await
        .expect("observed");
    let soon = clock_now(clock) + chrono::Duration::seconds(10);
    store.mark_due("d1", soon).await.expect("mark");
    store
        .mark_due("d1", soon + chrono::Duration::seconds(100))
        .await
        .expect("mark later");
    assert_eq!(
        store.group("d1").await.expect("read").expect("exists").due_at,
        Some(soon)
    );
    store.mark_due("d0", clock_now(clock)).await.expect("mark new");
    assert_eq!(
        DueGroup::names(&store.due_groups(10).await.expect("due")),
        vec!["d2", "d0"]
    );

    let names: Vec<String> = store
        .list_groups()
        .await
        .expect("list")
        .into_iter()
        .map(|g| g.name)
        .collect();
    assert_eq!(names, vec!["d0", "d1", "d2"]);
    let d1 = store
        .list_groups()
        .await
        .expect("list")
        .into_iter()
        .find(|g| g.name == "d1")
        .expect("d1 listed");
    assert_eq!(d1.desired_generation, Some(2));
    assert_eq!(d1.observed.map(|o| o.converged), Some(true));
    assert_eq!(
        d1.desired_source,
        Some(ObjectUrl::new("data", "train/d1/config.json"))
    );
}

/// Two replicas' handles on one backend: a due group one of them leases is not listed to the other.
/// A group with a new file (desired generation newer than observed) is listed first, however many
/// groups were due before it and however small the limit, and keeps its own due time; it is listed
/// by due time again once an observation of that generation is recorded.
async fn new_files_are_listed_first(store: &dyn StateStore, clock: &ManualClock) {
    let listed = |due: Vec<DueGroup>| -> Vec<(String, bool)> {
        due.into_iter().map(|d| (d.name, d.new_file)).collect()
    };
    let is = |name: &str, new_file: bool| (name.to_string(), new_file);
    // A backlog of polls due before any file arrives, and a resync mark.
    for i in 0..5 {
        let g = format!("poll{i}");
        store
            .put_desired(&desired(&g, "one", None))
            .await
            .expect("desired");
        let lease = take(store, &g, "r").await;
        store
            .put_observed(
                &lease,
                &observed(1, false),
                Some(clock_now(clock)),
                ObservedWrite::RELEASE,
            )
            .await
            .expect("observed");
        clock.advance(Duration::from_secs(1));
    }
    store.mark_due("marked", clock_now(clock)).await.expect("mark");
    clock.advance(Duration::from_secs(1));
    let received = clock_now(clock);
    store
        .put_desired(&desired("fresh", "one", None))
        .await
        .expect("desired");
    clock.advance(Duration::from_secs(1));
    assert_eq!(
        listed(store.due_groups(2).await.expect("due")),
        [is("fresh", true), is("poll0", false)],
        "the new file first, then the earliest due"
    );
    assert_eq!(
        listed(store.due_groups(1).await.expect("due")),
        [is("fresh", true)]
    );
    assert_eq!(
        listed(store.due_groups_for("r", 1).await.expect("due")),
        [is("fresh", true)]
    );
    let state = store.group("fresh").await.expect("read").expect("recorded");
    assert_eq!(
        state.due_at,
        Some(received),
        "its due time is when the file was recorded"
    );

    // A newer file for a group whose pass on the older one is under way: new again, and the
    // pass's record of the older generation leaves it so (due now).
    let lease = take(store, "poll3", "r").await;
    store
        .put_desired(&desired("poll3", "two", None))
        .await
        .expect("newer");
    let marks = ScheduleMarks::default();
    let write = ObservedWrite {
        release: true,
        schedules: Some(marks),
    };
    let later = clock_now(clock) + chrono::Duration::hours(1);
    store
        .put_observed(&lease, &observed(1, false), Some(later), write)
        .await
        .expect("observed");
    assert_eq!(
        listed(store.due_groups(3).await.expect("due")),
        [is("fresh", true), is("poll3", true), is("poll0", false)]
    );

    // The observation of the new generation ends its precedence: by due time among the others.
    let lease = take(store, "fresh", "r").await;
    store
        .put_observed(&lease, &observed(1, false), Some(clock_now(clock)), write)
        .await
        .expect("observed");
    let all = listed(store.due_groups(10).await.expect("due"));
    assert_eq!(all[0], is("poll3", true));
    assert_eq!(
        all[1..],
        [
            is("poll0", false),
            is("poll1", false),
            is("poll2", false),
            is("poll4", false),
            is("marked", false),
            is("fresh", false),
        ]
    );

    // A fire begun during the turn that observes the new generation keeps the group due now, and
    // not as a new file.
    let lease = take(store, "poll3", "r").await;
    store
        .put_schedule(&lease, &sample_schedule("poll3", "retrain"))
        .await
        .expect("schedule");
    assert_eq!(
        store
            .begin_fire("poll3", "retrain", start_time(), None)
            .await
            .expect("fire"),
        BeginFire::Started
    );
    store
        .put_observed(&lease, &observed(2, true), Some(later), write)
        .await
        .expect("observed");
    let state = store.group("poll3").await.expect("read").expect("recorded");
    assert_eq!(
        state.due_at,
        Some(clock_now(clock)),
        "the fire's action does not wait"
    );
    assert!(
        listed(store.due_groups(10).await.expect("due")).contains(&is("poll3", false)),
        "observed at its desired generation: no longer a new file"
    );
}

async fn due_groups_skip_leased(a: &dyn StateStore, b: &dyn StateStore, clock: &ManualClock) {
    for (i, group) in ["l1", "l2", "l3"].into_iter().enumerate() {
        a.put_desired(&desired(group, "one", None))
            .await
            .expect("desired");
        if i < 2 {
            clock.advance(Duration::from_secs(1));
        }
    }
    let all = vec!["l1", "l2", "l3"];
    assert_eq!(DueGroup::names(&b.due_groups(10).await.expect("due")), all);
    let l1 = take(a, "l1", "replica-a").await;
    // Replica b no longer sees l1, whichever way it asks; with a limit it gets the free groups.
    assert_eq!(
        DueGroup::names(&b.due_groups(10).await.expect("due")),
        vec!["l2", "l3"]
    );
    assert_eq!(
        DueGroup::names(&b.due_groups_for("replica-b", 1).await.expect("due")),
        vec!["l2"]
    );
    // The holder sees its own group (and the free ones); a plain listing leaves it out for it too.
    assert_eq!(
        DueGroup::names(&a.due_groups_for("replica-a", 10).await.expect("due")),
        all
    );
    assert_eq!(
        DueGroup::names(&a.due_groups(10).await.expect("due")),
        vec!["l2", "l3"]
    );
    let l2 = take(b, "l2", "replica-b").await;
    assert_eq!(
        DueGroup::names(&a.due_groups_for("replica-a", 10).await.expect("due")),
        vec!["l1", "l3"]
    );
    assert_eq!(
        DueGroup::names(&b.due_groups_for("replica-b", 10).await.expect("due")),
        vec!["l2", "l3"]
    );

    // A released lease and an expired lease free their groups for everyone.
    b.release_lease(&l2).await.expect("release");
    assert_eq!(
        DueGroup::names(&a.due_groups_for("replica-a", 10).await.expect("due")),
        all
    );
    clock.advance(LEASE + Duration::from_secs(1));
    assert_eq!(DueGroup::names(&b.due_groups(10).await.expect("due")), all);
    let b1 = acquired(
        b.acquire_lease("l1", "replica-b", LEASE, Acquire::Lease)
            .await
            .expect("take over")
            .0,
    );
    assert_eq!(b1.epoch, l1.epoch + 1);
    assert_eq!(
        DueGroup::names(&a.due_groups(10).await.expect("due")),
        vec!["l2", "l3"]
    );
    assert!(is_fenced(a.renew_lease(&l1, LEASE).await));
}

/// Local validity of leases: the monotonic clock and the skew margin decide, not the wall clock.
/// `store` has the default skew; `skewed` (same backend) a 1 s skew.
async fn lease_validity(store: &dyn StateStore, skewed: &dyn StateStore, clock: &ManualClock) {
    let a = take(store, "v", "replica-a").await;
    assert!(a.is_valid());
    assert!(
        a.remaining() <= LEASE - DEFAULT_MAX_CLOCK_SKEW,
        "the skew margin is taken off: {:?}",
        a.remaining()
    );
    // A wall-clock step on this host neither ends nor extends the holder's view.
    clock.advance(Duration::from_secs(3600));
    assert!(a.is_valid(), "validity is judged on the monotonic clock");

    // Short lease, 1 s margin: valid for 2 s from the request, then not, although nobody took it.
    let short = acquired(
        skewed
            .acquire_lease("w", "replica-a", Duration::from_secs(3), Acquire::Lease)
            .await
            .expect("lease")
            .0,
    );
    assert!(short.remaining() <= Duration::from_secs(2));
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert!(!short.is_valid());
    assert_eq!(short.remaining(), Duration::ZERO);
    // Nobody took it over (same epoch), so the holder may renew it and is valid again.
    let renewed = skewed.renew_lease(&short, LEASE).await.expect("renew");
    assert!(renewed.is_valid());
    assert_eq!(renewed.epoch, short.epoch);

    // Lost for real: another replica took "v" after its stored expiry; renewing says so clearly.
    let b = acquired(
        store
            .acquire_lease("v", "replica-b", LEASE, Acquire::Lease)
            .await
            .expect("take over")
            .0,
    );
    assert_eq!(b.epoch, a.epoch + 1);
    let err = store.renew_lease(&a, LEASE).await.expect_err("lost");
    assert!(matches!(err, StoreError::Fenced { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("dataset group v") && text.contains("lease lost") && text.contains("replica-a"),
        "{text}"
    );
}

/// The largest group the store accepts (parameter file, observed JSON, source fields, names) is stored
/// and read back whole; anything longer is refused with `TooLarge` before it reaches the backend.
async fn largest_group_fits(store: &dyn StateStore) {
    let name = "g".repeat(MAX_NAME_BYTES);
    let field = |c: char| c.to_string().repeat(MAX_SOURCE_FIELD_BYTES);
    // Two-byte characters: the limits are in bytes, as DynamoDB counts them.
    let text = "é".repeat(MAX_DESIRED_TEXT_BYTES / 2);
    let new = NewDesired {
        group: name.clone(),
        text: text.clone(),
        source: DesiredSource {
            url: ObjectUrl::new(field('b'), field('k')),
            etag: Some(field('e')),
            version_id: Some(field('v')),
            sequencer: Some(field('0')),
            last_modified: Some(start_time()),
        },
    };
    assert!(matches!(
        store.put_desired(&new).await.expect("largest desired"),
        PutDesired::Recorded(_)
    ));
    let owner = "o".repeat(MAX_NAME_BYTES);
    let lease = take(store, &name, &owner).await;
    let mut big = observed(1, false);
    big.last_error = Some(String::new());
    let base = serde_json::to_string(&big).expect("json").len();
    big.last_error = Some("x".repeat(MAX_OBSERVED_BYTES - base));
    assert_eq!(
        serde_json::to_string(&big).expect("json").len(),
        MAX_OBSERVED_BYTES
    );
    store
        .put_observed(&lease, &big, Some(start_time()), ObservedWrite::KEEP_LEASE)
        .await
        .expect("largest observed next to the largest desired");
    let state = store.group(&name).await.expect("read").expect("stored");
    assert_eq!(state.desired.map(|d| d.text), Some(text));
    assert_eq!(state.observed, Some(big));
    assert_eq!(state.lease.owner, Some(owner.clone()));

    // One byte more anywhere is refused, naming what is too long.
    let mut forged = new.clone();
    forged.source.sequencer = Some(format!("{}0", field('0')));
    let err = store.put_desired(&forged).await.expect_err("long sequencer");
    assert!(
        matches!(err, StoreError::TooLarge { .. }) && err.to_string().contains("sequencer"),
        "{err}"
    );
    let err = store
        .acquire_lease(&format!("{name}g"), "r", LEASE, Acquire::Lease)
        .await
        .expect_err("long name");
    assert!(matches!(err, StoreError::TooLarge { .. }), "{err}");
    let err = store
        .acquire_lease("short", &format!("{owner}o"), LEASE, Acquire::Lease)
        .await
        .expect_err("long owner");
    assert!(err.to_string().contains("lease owner"), "{err}");
}

/// `acquire_lease` with `Acquire::LeaseAndGroup` and `put_observed` with `ObservedWrite::RELEASE`:
/// each one round trip (`round_trips` counts the backend's requests), with the guarantees of the two
/// calls each replaces.
async fn lease_with_state_and_release_with_result(
    store: &dyn StateStore,
    clock: &ManualClock,
    round_trips: &dyn Fn() -> u64,
) {
    store
        .put_desired(&desired("rw", "one", None))
        .await
        .expect("desired");
    let before = round_trips();
    let (grant, state) = store
        .acquire_lease("rw", "replica-a", LEASE, Acquire::LeaseAndGroup)
        .await
        .expect("acquire");
    assert_eq!(
        round_trips() - before,
        1,
        "the lease and the group in one round trip"
    );
    let a = acquired(grant);
    assert_eq!(a.epoch, 1);
    let state = state.expect("the group's state comes with the lease");
    assert_eq!(
        Some(&state),
        store.group("rw").await.expect("read").as_ref(),
        "the state as the grant left it"
    );
    assert_eq!(state.desired.as_ref().map(|d| d.text.as_str()), Some("one"));
    assert_eq!(state.lease.owner.as_deref(), Some("replica-a"));
    assert_eq!(state.lease.epoch, 1);

    // Held elsewhere: no state, no change.
    let (held, none) = store
        .acquire_lease("rw", "replica-b", LEASE, Acquire::LeaseAndGroup)
        .await
        .expect("ask");
    assert!(
        matches!(held, LeaseGrant::Held { ref owner, .. } if owner == "replica-a"),
        "{held:?}"
    );
    assert!(none.is_none());

    // The result and the release in one write: the group is free at once, due when asked.
    let next = clock_now(clock) + chrono::Duration::seconds(90);
    let before = round_trips();
    store
        .put_observed(&a, &observed(1, false), Some(next), ObservedWrite::RELEASE)
        .await
        .expect("record and release");
    assert_eq!(
        round_trips() - before,
        1,
        "the result and the release in one round trip"
    );
    let state = store.group("rw").await.expect("read").expect("exists");
    assert_eq!(state.observed, Some(observed(1, false)));
    assert_eq!(state.due_at, Some(next));
    assert_eq!(state.lease.owner, None);
    assert!(is_fenced(store.release_lease(&a).await), "released already");
    assert!(is_fenced(
        store
            .put_observed(&a, &observed(1, true), None, ObservedWrite::RELEASE)
            .await
    ));

    // The next holder, at once and without waiting for an expiry; the old lease stays fenced.
    let (grant, state) = store
        .acquire_lease("rw", "replica-b", LEASE, Acquire::LeaseAndGroup)
        .await
        .expect("take");
    let b = acquired(grant);
    assert_eq!(b.epoch, 2);
    assert_eq!(state.and_then(|s| s.observed), Some(observed(1, false)));
    assert!(is_fenced(
        store
            .put_observed(&a, &observed(1, true), None, ObservedWrite::RELEASE)
            .await
    ));
    let state = store.group("rw").await.expect("read").expect("exists");
    assert_eq!(
        state.observed,
        Some(observed(1, false)),
        "the fenced write wrote nothing"
    );
    assert_eq!(
        state.lease.owner.as_deref(),
        Some("replica-b"),
        "and released nothing"
    );

    // A newer generation arrived during b's pass: the group stays due now, and is free.
    store
        .put_desired(&desired("rw", "two", None))
        .await
        .expect("newer");
    store
        .put_observed(&b, &observed(1, false), Some(next), ObservedWrite::RELEASE)
        .await
        .expect("record and release");
    let state = store.group("rw").await.expect("read").expect("exists");
    assert_eq!(state.due_at, Some(clock_now(clock)), "due now for generation 2");
    assert_eq!(state.lease.owner, None);
    assert_eq!(
        DueGroup::names(&store.due_groups(10).await.expect("due")),
        vec!["rw".to_string()],
        "listed for any replica"
    );

    // A group the store has not heard of: the lease, and a state without a parameter file.
    let (grant, state) = store
        .acquire_lease("unheard-of", "replica-a", LEASE, Acquire::LeaseAndGroup)
        .await
        .expect("acquire");
    assert_eq!(acquired(grant).epoch, 1);
    let state = state.expect("created by the grant");
    assert!(state.desired.is_none() && state.observed.is_none(), "{state:?}");

    // The grant alone when the group is not asked for.
    let (grant, state) = store
        .acquire_lease("lease-only", "replica-a", LEASE, Acquire::Lease)
        .await
        .expect("acquire");
    assert_eq!(acquired(grant).epoch, 1);
    assert!(state.is_none(), "{state:?}");
}

/// The group's schedule marks (`ScheduleMarks`): `begin_fire` raises `fires_begun` in its own write
/// (one round trip), a write of the observed state records what the turn saw, keeps the group due
/// now when a fire began after the turn's read, and costs one round trip when none did.
async fn schedule_marks(store: &dyn StateStore, clock: &ManualClock, round_trips: &dyn Fn() -> u64) {
    store
        .put_desired(&desired("m", "one", None))
        .await
        .expect("desired");
    let marks = |begun, seen, synced| ScheduleMarks {
        fires_begun: begun,
        fires_seen: seen,
        synced_generation: synced,
    };
    let write = |marks| ObservedWrite {
        release: true,
        schedules: Some(marks),
    };
    let read = || async { store.group("m").await.expect("read").expect("exists").schedules };
    assert_eq!(read().await, ScheduleMarks::default());

    // A turn syncs generation 1's schedules and records the sync with its result.
    let lease = take(store, "m", "a").await;
    store
        .put_schedule(&lease, &sample_schedule("m", "retrain"))
        .await
        .expect("put");
    let next = clock_now(clock) + chrono::Duration::seconds(90);
    let before = round_trips();
    store
        .put_observed(
            &lease,
            &observed(1, false),
            Some(next),
            write(marks(0, 0, Some(1))),
        )
        .await
        .expect("record");
    assert_eq!(round_trips() - before, 1, "marks ride on the turn's one write");
    let state = store.group("m").await.expect("read").expect("exists");
    assert_eq!(state.schedules, marks(0, 0, Some(1)));
    assert!(!state.schedules.fire_may_be_pending() && state.schedules.synced(1));
    assert_eq!(state.due_at, Some(next));

    // A fire starts an action: counted in the same write.
    let t1 = start_time() + chrono::Duration::hours(1);
    let before = round_trips();
    assert_eq!(
        store.begin_fire("m", "retrain", t1, None).await.expect("begin"),
        BeginFire::Started
    );
    assert_eq!(round_trips() - before, 1, "the action and its count in one write");
    assert_eq!(read().await, marks(1, 0, Some(1)));
    assert!(read().await.fire_may_be_pending());
    // Coalesced into the running action, or already handled: nothing more is pending.
    let t2 = t1 + chrono::Duration::hours(1);
    assert!(matches!(
        store.begin_fire("m", "retrain", t2, None).await.expect("begin"),
        BeginFire::Coalesced { .. }
    ));
    assert_eq!(
        store.begin_fire("m", "retrain", t2, None).await.expect("begin"),
        BeginFire::AlreadyHandled
    );
    assert_eq!(read().await.fires_begun, 1);

    // The next turn reads the marks with its lease, runs the action, and records that it saw it.
    let (grant, state) = store
        .acquire_lease("m", "b", LEASE, Acquire::LeaseAndGroup)
        .await
        .expect("acquire");
    let b = acquired(grant);
    let seen = state.expect("state").schedules;
    assert_eq!(seen, marks(1, 0, Some(1)));
    let outcome = FireOutcome {
        fire: t1,
        status: FireStatus::Succeeded,
        detail: "done".into(),
        at: clock_now(clock),
    };
    assert!(store.finish_fire("m", "retrain", &outcome).await.expect("finish"));
    store
        .put_observed(&b, &observed(1, false), Some(next), write(marks(1, 1, Some(1))))
        .await
        .expect("record");
    let state = store.group("m").await.expect("read").expect("exists");
    assert_eq!(state.schedules, marks(1, 1, Some(1)));
    assert_eq!(state.due_at, Some(next));

    // A fire begun while a turn holds the group, after the turn read the marks: the turn's write
    // leaves the group due now (the action is not left until the next poll) and the fire unseen.
    let c = take(store, "m", "c").await;
    let t3 = t2 + chrono::Duration::hours(1);
    assert_eq!(
        store.begin_fire("m", "retrain", t3, None).await.expect("begin"),
        BeginFire::Started
    );
    store
        .put_observed(&c, &observed(1, false), Some(next), write(marks(1, 1, Some(1))))
        .await
        .expect("record");
    let state = store.group("m").await.expect("read").expect("exists");
    assert_eq!(state.due_at, Some(clock_now(clock)), "due now for the new fire");
    assert_eq!(state.schedules, marks(2, 1, Some(1)));
    assert!(state.schedules.fire_may_be_pending());
    assert_eq!(state.lease.owner, None, "released all the same");
    // The same when the write announces an outcome.
    let d = take(store, "m", "d").await;
    let note = StoredNotification::new(
        "marks-n1",
        "m",
        "UPDATE COMPLETE",
        "m completed",
        "{}",
        clock_now(clock),
    );
    store
        .put_observed_notifying(&d, &observed(1, true), None, write(marks(1, 1, Some(1))), &note)
        .await
        .expect("record with notification");
    let state = store.group("m").await.expect("read").expect("exists");
    assert_eq!(state.due_at, Some(clock_now(clock)), "due now for the new fire");
    assert_eq!(state.lease.owner, None);
    // A fenced write records no marks.
    assert!(is_fenced(
        store
            .put_observed(&d, &observed(1, false), None, write(marks(2, 2, Some(1))))
            .await
    ));
    assert_eq!(read().await, marks(2, 1, Some(1)));

    // A schedule written or deleted under a lease: the set is no longer what the sync left.
    let e = take(store, "m", "e").await;
    store.delete_schedule(&e, "retrain").await.expect("delete");
    assert_eq!(read().await.synced_generation, None);
    // Writes without marks leave them as they are.
    store
        .put_observed(&e, &observed(1, false), None, ObservedWrite::RELEASE)
        .await
        .expect("record");
    assert_eq!(read().await, marks(2, 1, None));
}

fn clock_now(clock: &ManualClock) -> DateTime<Utc> {
    use personalize_ops::store::Clock;
    clock.now()
}

fn sample_schedule(group: &str, name: &str) -> Schedule {
    Schedule {
        group: group.into(),
        name: name.into(),
        expression: "cron(0 3 * * ? *)".into(),
        target: r#"{"solution":"sol-a","action":"retrain"}"#.into(),
        created_at: start_time() - chrono::Duration::days(3),
        last_fire: None,
        next_fire: Some(start_time() + chrono::Duration::hours(15)),
        active: true,
        pending_fire: None,
        last_outcome: None,
    }
}

fn outcome(fire: DateTime<Utc>, status: FireStatus, detail: &str) -> FireOutcome {
    FireOutcome {
        fire,
        status,
        detail: detail.into(),
        at: fire + chrono::Duration::minutes(7),
    }
}

/// begin_fire / finish_fire / skip_fire: a fire starts once, a fire during a pending action is
/// coalesced, outcomes are kept across re-puts of the schedule.
async fn fires_and_outcomes(store: &dyn StateStore) {
    let lease = take(store, "f1", "r").await;
    store
        .put_schedule(&lease, &sample_schedule("f1", "update"))
        .await
        .expect("put");
    let hour = chrono::Duration::hours(1);
    let (f1, f2, f3) = (start_time(), start_time() + hour, start_time() + hour * 2);

    assert_eq!(
        store
            .begin_fire("f1", "update", f1, Some(f2))
            .await
            .expect("begin"),
        BeginFire::Started
    );
    assert_eq!(
        store
            .begin_fire("f1", "update", f1, Some(f2))
            .await
            .expect("again"),
        BeginFire::AlreadyHandled,
        "a fire starts once"
    );
    assert_eq!(
        store.begin_fire("f1", "gone", f1, None).await.expect("missing"),
        BeginFire::AlreadyHandled
    );
    let s = &store.schedules(Some("f1")).await.expect("list")[0];
    assert_eq!(
        (s.pending_fire, s.last_fire, s.next_fire),
        (Some(f1), Some(f1), Some(f2))
    );
    assert!(matches!(
        store
            .claim_fire("f1", "update", f1, "late", LEASE)
            .await
            .expect("claim"),
        FireClaim::Lost { .. }
    ));

    // The next fire while f1's action runs is coalesced into it, not queued.
    assert_eq!(
        store
            .begin_fire("f1", "update", f2, Some(f3))
            .await
            .expect("begin"),
        BeginFire::Coalesced { running: f1 }
    );
    let s = &store.schedules(Some("f1")).await.expect("list")[0];
    assert_eq!((s.pending_fire, s.last_fire), (Some(f1), Some(f2)));

    // Only the pending fire can be finished.
    let done = outcome(
        f1,
        FireStatus::Succeeded,
        "solution version v2 ACTIVE; campaign c moved",
    );
    assert!(
        !store
            .finish_fire("f1", "update", &outcome(f2, FireStatus::Failed, "x"))
            .await
            .expect("not pending")
    );
    assert!(store.finish_fire("f1", "update", &done).await.expect("finish"));
    assert!(!store.finish_fire("f1", "update", &done).await.expect("twice"));
    // A re-put (new generation, same expression) keeps the history.
    store
        .put_schedule(&lease, &sample_schedule("f1", "update"))
        .await
        .expect("re-put");
    let s = &store.schedules(Some("f1")).await.expect("list")[0];
    assert_eq!(s.pending_fire, None);
    assert_eq!(s.last_outcome.as_ref(), Some(&done));
    assert_eq!(s.last_fire, Some(f2));
    assert!(
        s.last_outcome
            .as_ref()
            .is_some_and(|o| o.to_string().starts_with("succeeded (fire 2026-11-28T12:00:00Z)")),
        "{:?}",
        s.last_outcome
    );

    // A missed fire is skipped once, never after it was handled.
    let skipped = outcome(
        f3,
        FireStatus::Skipped,
        "missed by 2h, beyond the catch-up window",
    );
    assert!(
        store
            .skip_fire("f1", "update", &skipped, None)
            .await
            .expect("skip")
    );
    assert!(
        !store
            .skip_fire("f1", "update", &skipped, None)
            .await
            .expect("again")
    );
    assert!(
        !store
            .skip_fire("f1", "update", &outcome(f2, FireStatus::Skipped, "old"), None)
            .await
            .expect("older")
    );
    assert_eq!(
        store.begin_fire("f1", "update", f3, None).await.expect("begin"),
        BeginFire::AlreadyHandled
    );
    let s = &store.schedules(Some("f1")).await.expect("list")[0];
    assert_eq!(s.last_outcome.as_ref(), Some(&skipped));
    assert_eq!((s.last_fire, s.next_fire, s.pending_fire), (Some(f3), None, None));
}

async fn schedules_and_claims(store: &dyn StateStore, clock: &ManualClock) {
    let lease = take(store, "s1", "r").await;
    let other = take(store, "s0", "r").await;
    store
        .put_schedule(&lease, &sample_schedule("s1", "retrain"))
        .await
        .expect("put");
    store
        .put_schedule(&lease, &sample_schedule("s1", "import"))
        .await
        .expect("put");
    store
        .put_schedule(&other, &sample_schedule("s0", "retrain"))
        .await
        .expect("put");

    let all = store.schedules(None).await.expect("list");
    let ids: Vec<(String, String)> = all.iter().map(|s| (s.group.clone(), s.name.clone())).collect();
    assert_eq!(
        ids,
        vec![
            ("s0".into(), "retrain".into()),
            ("s1".into(), "import".into()),
            ("s1".into(), "retrain".into())
        ]
    );
    assert_eq!(all[2], sample_schedule("s1", "retrain"));
    assert_eq!(store.schedules(Some("s1")).await.expect("list").len(), 2);

    // Fires are recorded monotonically; a re-put keeps last_fire.
    let fired = start_time() + chrono::Duration::hours(15);
    let next = fired + chrono::Duration::days(1);
    assert!(
        store
            .record_fire("s1", "retrain", fired, Some(next))
            .await
            .expect("record")
    );
    assert!(
        !store
            .record_fire("s1", "retrain", fired - chrono::Duration::hours(1), None)
            .await
            .expect("older fire")
    );
    assert!(
        !store
            .record_fire("s1", "missing", fired, None)
            .await
            .expect("missing")
    );
    let mut changed = sample_schedule("s1", "retrain");
    changed.expression = "rate(1 day)".into();
    changed.next_fire = Some(next);
    store.put_schedule(&lease, &changed).await.expect("update");
    let stored = store.schedules(Some("s1")).await.expect("list");
    let retrain = stored.iter().find(|s| s.name == "retrain").expect("retrain");
    assert_eq!(retrain.last_fire, Some(fired));
    assert_eq!(retrain.expression, "rate(1 day)");
    assert_eq!(retrain.next_fire, Some(next));

    assert!(
        store
            .set_schedule_active("s1", "retrain", false)
            .await
            .expect("deactivate")
    );
    assert!(
        !store
            .set_schedule_active("s1", "nope", false)
            .await
            .expect("missing")
    );
    let inactive = store.schedules(Some("s1")).await.expect("list");
    assert!(
        !inactive
            .iter()
            .find(|s| s.name == "retrain")
            .expect("retrain")
            .active
    );

    store.delete_schedule(&lease, "import").await.expect("delete");
    store
        .delete_schedule(&lease, "import")
        .await
        .expect("delete again");
    assert_eq!(store.schedules(Some("s1")).await.expect("list").len(), 1);

    // Fire claims: the first claimant wins, the others are told who did. (Fires after the one
    // recorded above: a recorded fire cannot be claimed.)
    let (fired, next) = (next, next + chrono::Duration::days(1));
    let ttl = Duration::from_secs(3600);
    assert_eq!(
        store
            .claim_fire("s1", "retrain", fired, "replica-a", ttl)
            .await
            .expect("claim"),
        FireClaim::Won
    );
    assert_eq!(
        store
            .claim_fire("s1", "retrain", fired, "replica-b", ttl)
            .await
            .expect("claim"),
        FireClaim::Lost {
            owner: "replica-a".into()
        }
    );
    assert_eq!(
        store
            .claim_fire("s1", "retrain", next, "replica-b", ttl)
            .await
            .expect("claim"),
        FireClaim::Won,
        "another fire time is another claim"
    );
    let claim = store
        .fire_claim("s1", "retrain", fired)
        .await
        .expect("read")
        .expect("claimed");
    assert_eq!(claim.owner, "replica-a");
    assert_eq!(claim.expires_at, clock_now(clock) + chrono::Duration::hours(1));
    assert!(
        store
            .fire_claim("s1", "retrain", fired + chrono::Duration::seconds(1))
            .await
            .expect("read")
            .is_none()
    );

    // The winner runs the fire and records it.
    assert!(
        store
            .record_fire("s1", "retrain", fired, Some(next))
            .await
            .expect("record")
    );

    // Expired claims are not reported (moto never deletes them) and can be claimed again, unless the
    // fire was recorded: `fired` was, `next` was not.
    clock.advance(Duration::from_secs(3601));
    assert!(
        store
            .fire_claim("s1", "retrain", fired)
            .await
            .expect("read")
            .is_none()
    );
    assert_eq!(
        store
            .claim_fire("s1", "retrain", fired, "replica-c", ttl)
            .await
            .expect("claim"),
        FireClaim::Lost {
            owner: "replica-a".into()
        },
        "a recorded fire is never granted again"
    );
    assert_eq!(
        store
            .claim_fire(
                "s1",
                "retrain",
                fired - chrono::Duration::hours(2),
                "replica-c",
                ttl
            )
            .await
            .expect("claim"),
        FireClaim::Lost { owner: String::new() },
        "nor is a fire before the recorded one, claimed or not"
    );
    assert_eq!(
        store
            .claim_fire("s1", "retrain", next, "replica-c", ttl)
            .await
            .expect("claim"),
        FireClaim::Won,
        "an expired claim of an unrecorded fire can be taken over"
    );

    // Recording a fire while its claim is still live also closes it for good.
    assert!(
        store
            .record_fire("s1", "retrain", next, None)
            .await
            .expect("record")
    );
    clock.advance(Duration::from_secs(3601));
    assert!(matches!(
        store
            .claim_fire("s1", "retrain", next, "replica-d", ttl)
            .await
            .expect("claim"),
        FireClaim::Lost { .. }
    ));
    // Other schedules are not affected by this one's record.
    assert_eq!(
        store
            .claim_fire("s0", "retrain", next, "replica-d", ttl)
            .await
            .expect("claim"),
        FireClaim::Won
    );
}

/// `delete_group` forgets the group and its schedules, leaves other groups alone, and is fenced.
/// Every change of a group's schedule set is listed from its instant on; fires are not changes.
async fn schedule_changes_are_listed(store: &dyn StateStore, clock: &ManualClock) {
    let t0 = clock.now();
    assert!(store.schedule_changes(t0).await.expect("changes").is_empty());
    let a = take(store, "ca", "r").await;
    let b = take(store, "cb", "r").await;
    store
        .put_schedule(&a, &sample_schedule("ca", "retrain"))
        .await
        .expect("put");
    clock.advance(Duration::from_secs(10));
    let t1 = clock.now();
    store
        .put_schedule(&b, &sample_schedule("cb", "retrain"))
        .await
        .expect("put");
    assert_eq!(
        store.schedule_changes(t0).await.expect("changes"),
        vec!["ca", "cb"]
    );
    assert_eq!(store.schedule_changes(t1).await.expect("changes"), vec!["cb"]);

    // Fires change no schedule set.
    clock.advance(Duration::from_secs(10));
    let t2 = clock.now();
    let fire = start_time() + chrono::Duration::hours(1);
    assert!(
        store
            .record_fire("ca", "retrain", fire, None)
            .await
            .expect("record")
    );
    assert_eq!(
        store
            .begin_fire("cb", "retrain", fire, None)
            .await
            .expect("begin"),
        BeginFire::Started
    );
    assert!(store.schedule_changes(t2).await.expect("changes").is_empty());

    // Deactivating, deleting and a fenced-out write.
    clock.advance(Duration::from_secs(10));
    let t3 = clock.now();
    assert!(
        store
            .set_schedule_active("ca", "retrain", false)
            .await
            .expect("off")
    );
    assert!(
        !store
            .set_schedule_active("ca", "missing", false)
            .await
            .expect("absent")
    );
    assert_eq!(store.schedule_changes(t3).await.expect("changes"), vec!["ca"]);
    clock.advance(Duration::from_secs(10));
    let t4 = clock.now();
    store.delete_schedule(&b, "retrain").await.expect("delete");
    assert_eq!(store.schedule_changes(t4).await.expect("changes"), vec!["cb"]);
    clock.advance(LEASE + Duration::from_secs(1));
    let t5 = clock.now();
    let _taken = take(store, "ca", "other").await;
    assert!(is_fenced(
        store.put_schedule(&a, &sample_schedule("ca", "import")).await
    ));
    assert!(
        store.schedule_changes(t5).await.expect("changes").is_empty(),
        "a refused write is no change"
    );
    assert_eq!(
        store.schedule_changes(t0).await.expect("changes"),
        vec!["ca", "cb"]
    );
}

async fn groups_are_deleted(store: &dyn StateStore, clock: &ManualClock) {
    store
        .put_desired(&desired("gone", "{}", Some("01")))
        .await
        .expect("desired");
    store
        .put_desired(&desired("kept", "{}", Some("01")))
        .await
        .expect("desired");
    let lease = take(store, "gone", "r").await;
    let other = take(store, "kept", "r").await;
    for name in ["retrain", "import"] {
        store
            .put_schedule(&lease, &sample_schedule("gone", name))
            .await
            .expect("put");
    }
    store
        .put_schedule(&other, &sample_schedule("kept", "retrain"))
        .await
        .expect("put");

    // A holder that lost the lease cannot delete the group.
    clock.advance(LEASE + Duration::from_secs(1));
    let thief = take(store, "gone", "thief").await;
    assert!(is_fenced(store.delete_group(&lease).await));
    assert!(store.group("gone").await.expect("read").is_some());
    assert_eq!(store.schedules(Some("gone")).await.expect("list").len(), 2);

    store.delete_group(&thief).await.expect("delete");
    assert_eq!(store.group("gone").await.expect("read"), None);
    assert!(store.schedules(Some("gone")).await.expect("list").is_empty());
    let names: Vec<String> = store
        .list_groups()
        .await
        .expect("list")
        .into_iter()
        .map(|g| g.name)
        .collect();
    assert_eq!(names, ["kept"]);
    assert_eq!(store.schedules(None).await.expect("list").len(), 1);
    // The lease went with the group: a renewal is fenced, a new acquisition starts afresh.
    assert!(is_fenced(store.renew_lease(&thief, LEASE).await));
}

async fn oversized_observed_is_refused(store: &dyn StateStore) {
    let lease = take(store, "big", "r").await;
    let mut huge = observed(1, false);
    huge.last_error = Some("e".repeat(100 * 1024));
    let err = store
        .put_observed(&lease, &huge, None, ObservedWrite::KEEP_LEASE)
        .await
        .expect_err("too large");
    assert!(matches!(err, StoreError::TooLarge { .. }), "{err}");
    assert!(
        store
            .group("big")
            .await
            .expect("read")
            .expect("exists")
            .observed
            .is_none()
    );
}

/// An outbox item as a pass writes it.
fn note(id: &str, at: DateTime<Utc>, body: &str) -> StoredNotification {
    StoredNotification::new(id, "g", "UPDATE COMPLETE", "g completed", body, at)
}

/// The stored item `id` of group `g`.
async fn stored_note(store: &dyn StateStore, id: &str) -> StoredNotification {
    let all = store.notifications(Some("g")).await.expect("list outbox");
    all.into_iter().find(|n| n.id == id).expect("stored")
}

/// An outbox id is a pure function of the group, the generation and the outcome: writing it again (a
/// pass repeated after a crash, another replica announcing the same outcome) is the same notification.
/// The stored item keeps its attempts, its claim, its next attempt, its first write and its body,
/// whether the second write comes with the observed state or alone, pending or dropped.
async fn outbox_rewrites_keep_the_item(a: &dyn StateStore, b: &dyn StateStore, clock: &ManualClock) {
    let first_at = clock_now(clock);
    a.put_desired(&desired("g", "one", None)).await.expect("desired");
    let lease = take(a, "g", "a").await;
    a.put_observed_notifying(
        &lease,
        &observed(1, true),
        None,
        ObservedWrite::KEEP_LEASE,
        &note("n1", first_at, "first"),
    )
    .await
    .expect("observed and notification");
    // One failed attempt, then another replica's attempt in progress.
    let secs = |s: i64| chrono::Duration::seconds(s);
    assert!(
        a.claim_notification("g", "n1", "a", first_at, first_at + secs(60))
            .await
            .expect("claim")
    );
    assert!(
        a.retry_notification("g", "n1", "a", first_at + secs(5), "target down")
            .await
            .expect("retry")
    );
    clock.advance(Duration::from_secs(10));
    let later = clock_now(clock);
    assert!(
        b.claim_notification("g", "n1", "b", later, later + secs(60))
            .await
            .expect("claim")
    );
    let before = stored_note(a, "n1").await;
    assert_eq!(
        (
            before.attempts,
            before.claimed_by.as_deref(),
            before.body.as_str()
        ),
        (2, Some("b"), "first")
    );

    let again = note("n1", later, "second");
    a.put_observed_notifying(
        &lease,
        &observed(1, true),
        None,
        ObservedWrite::KEEP_LEASE,
        &again,
    )
    .await
    .expect("observed and the same notification");
    b.enqueue_notification(&again).await.expect("enqueue the same");
    assert_eq!(stored_note(b, "n1").await, before, "the rewrite changed the item");
    assert!(
        !a.claim_notification("g", "n1", "a", later, later + secs(60))
            .await
            .expect("claim"),
        "b's claim still holds"
    );
    assert!(
        b.due_notifications(later, 10).await.expect("due").is_empty(),
        "still claimed, not due"
    );

    // Dropped stays dropped, without its body.
    assert!(
        b.drop_notification("g", "n1", "b", later, "too old")
            .await
            .expect("drop")
    );
    let dropped = stored_note(a, "n1").await;
    a.put_observed_notifying(
        &lease,
        &observed(1, true),
        None,
        ObservedWrite::KEEP_LEASE,
        &again,
    )
    .await
    .expect("observed and the same notification");
    a.enqueue_notification(&again).await.expect("enqueue the same");
    assert_eq!(stored_note(b, "n1").await, dropped);
    assert!(dropped.is_dropped() && dropped.body.is_empty(), "{dropped:?}");

    // A delivered (deleted) item written again is a new item: delivered ids are not remembered.
    b.enqueue_notification(&note("n2", later, "n2"))
        .await
        .expect("enqueue");
    b.delete_notification("g", "n2").await.expect("delivered");
    a.enqueue_notification(&note("n2", later, "n2 again"))
        .await
        .expect("enqueue again");
    let n2 = stored_note(b, "n2").await;
    assert_eq!((n2.attempts, n2.body.as_str()), (0, "n2 again"));
}

// ---------------------------------------------------------------------------------------------------
// SQLite

fn sqlite(clock: &Arc<ManualClock>) -> SqliteStore {
    SqliteStore::in_memory()
        .expect("in-memory database")
        .with_clock(Arc::clone(clock) as Arc<dyn personalize_ops::store::Clock>)
}

fn manual_clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(start_time()))
}

#[tokio::test]
async fn sqlite_desired_generations() {
    desired_generations(&sqlite(&manual_clock())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_races_between_processes() {
    // Separate connections on one file, as separate processes would have.
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("state.db");
    let writers: Vec<Arc<dyn StateStore>> = (0..6)
        .map(|_| Arc::new(SqliteStore::open(&path).expect("open")) as Arc<dyn StateStore>)
        .collect();
    desired_races(writers).await;
}

#[tokio::test]
async fn sqlite_leases_and_fencing() {
    let clock = manual_clock();
    leases_and_fencing(&sqlite(&clock), &clock).await;
}

#[tokio::test]
async fn sqlite_lease_with_state_and_release_with_result() {
    let clock = manual_clock();
    let store = sqlite(&clock);
    lease_with_state_and_release_with_result(&store, &clock, &|| store.calls()).await;
}

#[tokio::test]
async fn sqlite_schedule_marks() {
    let clock = manual_clock();
    let store = sqlite(&clock);
    schedule_marks(&store, &clock, &|| store.calls()).await;
}

#[tokio::test]
async fn sqlite_due_times() {
    let clock = manual_clock();
    due_times(&sqlite(&clock), &clock).await;
}

#[tokio::test]
async fn sqlite_new_files_are_listed_first() {
    let clock = manual_clock();
    new_files_are_listed_first(&sqlite(&clock), &clock).await;
}

/// Two handles on one SQLite file (two replicas, or two processes), on `clock`.
fn sqlite_pair(dir: &tempfile::TempDir, clock: &Arc<ManualClock>) -> (SqliteStore, SqliteStore) {
    let path = dir.path().join("state.db");
    let open = || {
        SqliteStore::open(&path)
            .expect("open")
            .with_clock(Arc::clone(clock) as Arc<dyn personalize_ops::store::Clock>)
    };
    (open(), open())
}

#[tokio::test]
async fn sqlite_due_groups_skip_groups_leased_by_another_replica() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = manual_clock();
    let (a, b) = sqlite_pair(&dir, &clock);
    due_groups_skip_leased(&a, &b, &clock).await;
}

#[tokio::test]
async fn sqlite_lease_validity() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = manual_clock();
    let (store, other) = sqlite_pair(&dir, &clock);
    let skewed = other.with_max_clock_skew(Duration::from_secs(1));
    lease_validity(&store, &skewed, &clock).await;
}

/// A skew as long as the lease leaves no time at all; a renewal counts from its own request.
#[tokio::test]
async fn sqlite_lease_validity_is_duration_minus_skew() {
    let clock = manual_clock();
    let none = sqlite(&clock).with_max_clock_skew(LEASE);
    let lease = take(&none, "q", "r").await;
    assert!(!lease.is_valid());
    let store = sqlite(&clock).with_max_clock_skew(Duration::from_secs(5));
    let lease = take(&store, "p", "r").await;
    assert!(lease.remaining() <= Duration::from_secs(25));
    let renewed = store.renew_lease(&lease, LEASE * 2).await.expect("renew");
    assert!(renewed.valid_until > lease.valid_until);
    assert!(renewed.remaining() <= Duration::from_secs(55));
}

#[tokio::test]
async fn sqlite_largest_group_fits() {
    largest_group_fits(&sqlite(&manual_clock())).await;
}

#[tokio::test]
async fn sqlite_schedules_and_claims() {
    let clock = manual_clock();
    schedules_and_claims(&sqlite(&clock), &clock).await;
}

#[tokio::test]
async fn sqlite_groups_are_deleted() {
    let clock = manual_clock();
    groups_are_deleted(&sqlite(&clock), &clock).await;
}

#[tokio::test]
async fn sqlite_schedule_changes_are_listed() {
    let clock = manual_clock();
    schedule_changes_are_listed(&sqlite(&clock), &clock).await;
}

#[tokio::test]
async fn sqlite_fires_and_outcomes() {
    fires_and_outcomes(&sqlite(&manual_clock())).await;
}

#[tokio::test]
async fn sqlite_adds_new_columns_to_an_old_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("old.db");
    {
        let conn = rusqlite::Connection::open(&path).expect("open");
        conn.execute_batch(
            "CREATE TABLE schedules (group_name TEXT NOT NULL, name TEXT NOT NULL, expression TEXT NOT NULL,
                 target TEXT NOT NULL, last_fire_ms INTEGER, next_fire_ms INTEGER, active INTEGER NOT NULL,
                 PRIMARY KEY (group_name, name));
             INSERT INTO schedules VALUES ('g', 'imp', 'rate(1 day)', 'import', 5000, NULL, 1);
             CREATE TABLE groups (name TEXT PRIMARY KEY, desired_generation INTEGER, desired_text TEXT,
                 desired_bucket TEXT, desired_key TEXT, desired_etag TEXT, desired_version_id TEXT,
                 desired_sequencer TEXT, desired_last_modified_ms INTEGER, desired_received_ms INTEGER,
                 desired_run_timestamp TEXT, observed TEXT, lease_owner TEXT,
                 lease_epoch INTEGER NOT NULL DEFAULT 0, lease_expires_ms INTEGER, due_ms INTEGER);
             INSERT INTO groups (name, due_ms) VALUES ('g', 7000);",
        )
        .expect("old schema");
    }
    let store = SqliteStore::open(&path).expect("migrated");
    let s = &store.schedules(Some("g")).await.expect("list")[0];
    assert_eq!(s.last_fire.map(|t| t.timestamp_millis()), Some(5000));
    assert_eq!((s.pending_fire, s.last_outcome.clone()), (None, None));
    assert_eq!(
        store
            .begin_fire("g", "imp", start_time(), None)
            .await
            .expect("begin"),
        BeginFire::Started
    );
    let marks = store.group("g").await.expect("read").expect("kept").schedules;
    assert_eq!(
        (marks.fires_begun, marks.fires_seen, marks.synced_generation),
        (1, 0, None)
    );
    drop(store);
    SqliteStore::open(&path).expect("reopened without migrating twice");
}

#[tokio::test]
async fn sqlite_outbox_rewrites_keep_the_item() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = manual_clock();
    let (a, b) = sqlite_pair(&dir, &clock);
    outbox_rewrites_keep_the_item(&a, &b, &clock).await;
}

#[tokio::test]
async fn sqlite_oversized_observed() {
    oversized_observed_is_refused(&sqlite(&manual_clock())).await;
}

#[tokio::test]
async fn sqlite_persists_across_reopen_and_reports_bad_paths() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("state.db");
    {
        let store = SqliteStore::open(&path).expect("open");
        store.put_desired(&desired("p", "one", None)).await.expect("put");
    }
    let store = SqliteStore::open(&path).expect("reopen");
    store.ping().await.expect("ping");
    assert_eq!(
        store
            .group("p")
            .await
            .expect("read")
            .expect("kept")
            .desired
            .map(|d| d.text),
        Some("one".into())
    );
    let err = SqliteStore::open(&dir.path().join("missing-dir/state.db")).expect_err("no directory");
    assert!(err.to_string().contains("missing-dir"), "{err}");
}

// ---------------------------------------------------------------------------------------------------
// DynamoDB on moto

async fn dynamo(moto: &Moto, clock: &Arc<ManualClock>) -> DynamoStore {
    dynamo_pair(moto, clock).await.0
}

/// Two replicas' stores on one new table, each with its own client, on `clock`.
async fn dynamo_pair(moto: &Moto, clock: &Arc<ManualClock>) -> (DynamoStore, DynamoStore) {
    let client = aws_sdk_dynamodb::Client::new(&moto.sdk_config().await);
    let table = unique_name("state");
    DynamoStore::create_table(&client, &table)
        .await
        .expect("create table");
    let replica = |client| {
        DynamoStore::new(client, table.clone())
            .with_clock(Arc::clone(clock) as Arc<dyn personalize_ops::store::Clock>)
    };
    let other = aws_sdk_dynamodb::Client::new(&moto.sdk_config().await);
    (replica(client), replica(other))
}

#[tokio::test]
async fn dynamo_desired_generations() {
    let moto = Moto::start();
    desired_generations(&dynamo(&moto, &manual_clock()).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamo_races_between_writers() {
    // moto_server applies conditional writes without a lock; the serial server is atomic per request,
    // as DynamoDB is, while the writers' read–decide–write loops still interleave.
    let moto = SerialMoto::start();
    let client = aws_sdk_dynamodb::Client::new(&moto.sdk_config().await);
    let table = unique_name("race");
    DynamoStore::create_table(&client, &table)
        .await
        .expect("create table");
    let store = DynamoStore::new(client, table);
    let writers: Vec<Arc<dyn StateStore>> = (0..6)
        .map(|_| Arc::new(store.clone()) as Arc<dyn StateStore>)
        .collect();
    desired_races(writers).await;
}

#[tokio::test]
async fn dynamo_leases_and_fencing() {
    let moto = Moto::start();
    let clock = manual_clock();
    leases_and_fencing(&dynamo(&moto, &clock).await, &clock).await;
}

/// Counts the requests a client sends (retries included): the store's round trips.
#[derive(Debug, Clone, Default)]
struct CountRequests(Arc<std::sync::atomic::AtomicU64>);

impl Intercept for CountRequests {
    fn name(&self) -> &'static str {
        "CountRequests"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }
}

/// A store on a new table whose client counts its requests.
async fn counted_dynamo(moto: &Moto, clock: &Arc<ManualClock>) -> (DynamoStore, CountRequests) {
    let sdk = moto.sdk_config().await;
    let table = unique_name("state");
    DynamoStore::create_table(&aws_sdk_dynamodb::Client::new(&sdk), &table)
        .await
        .expect("create table");
    let requests = CountRequests::default();
    let client = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&sdk)
            .interceptor(requests.clone())
            .build(),
    );
    let store = DynamoStore::new(client, table)
        .with_clock(Arc::clone(clock) as Arc<dyn personalize_ops::store::Clock>);
    (store, requests)
}

#[tokio::test]
async fn dynamo_lease_with_state_and_release_with_result() {
    let moto = Moto::start();
    let clock = manual_clock();
    let (store, requests) = counted_dynamo(&moto, &clock).await;
    let count = || requests.0.load(std::sync::atomic::Ordering::SeqCst);
    lease_with_state_and_release_with_result(&store, &clock, &count).await;
}

#[tokio::test]
async fn dynamo_schedule_marks() {
    let moto = Moto::start();
    let clock = manual_clock();
    let (store, requests) = counted_dynamo(&moto, &clock).await;
    let count = || requests.0.load(std::sync::atomic::Ordering::SeqCst);
    schedule_marks(&store, &clock, &count).await;
}

#[tokio::test]
async fn dynamo_due_times() {
    let moto = Moto::start();
    let clock = manual_clock();
    due_times(&dynamo(&moto, &clock).await, &clock).await;
}

#[tokio::test]
async fn dynamo_new_files_are_listed_first() {
    let moto = Moto::start();
    let clock = manual_clock();
    new_files_are_listed_first(&dynamo(&moto, &clock).await, &clock).await;
}

#[tokio::test]
async fn dynamo_due_groups_skip_groups_leased_by_another_replica() {
    let moto = Moto::start();
    let clock = manual_clock();
    let (a, b) = dynamo_pair(&moto, &clock).await;
    due_groups_skip_leased(&a, &b, &clock).await;
}

#[tokio::test]
async fn dynamo_lease_validity() {
    let moto = Moto::start();
    let clock = manual_clock();
    let (store, other) = dynamo_pair(&moto, &clock).await;
    let skewed = other.with_max_clock_skew(Duration::from_secs(1));
    lease_validity(&store, &skewed, &clock).await;
}

#[tokio::test]
async fn dynamo_largest_group_stays_within_the_item_limit() {
    let moto = Moto::start();
    largest_group_fits(&dynamo(&moto, &manual_clock()).await).await;
}

#[tokio::test]
async fn dynamo_schedules_and_claims() {
    let moto = Moto::start();
    let clock = manual_clock();
    schedules_and_claims(&dynamo(&moto, &clock).await, &clock).await;
}

#[tokio::test]
async fn dynamo_groups_are_deleted() {
    let moto = Moto::start();
    let clock = manual_clock();
    groups_are_deleted(&dynamo(&moto, &clock).await, &clock).await;
}

#[tokio::test]
async fn dynamo_schedule_changes_are_listed() {
    let moto = Moto::start();
    let clock = manual_clock();
    schedule_changes_are_listed(&dynamo(&moto, &clock).await, &clock).await;
}

#[tokio::test]
async fn dynamo_fires_and_outcomes() {
    let moto = Moto::start();
    fires_and_outcomes(&dynamo(&moto, &manual_clock()).await).await;
}

#[tokio::test]
async fn dynamo_outbox_rewrites_keep_the_item() {
    let moto = Moto::start();
    let clock = manual_clock();
    let (a, b) = dynamo_pair(&moto, &clock).await;
    outbox_rewrites_keep_the_item(&a, &b, &clock).await;
}

#[tokio::test]
async fn dynamo_oversized_observed_and_missing_table() {
    let moto = Moto::start();
    oversized_observed_is_refused(&dynamo(&moto, &manual_clock()).await).await;
    let client = aws_sdk_dynamodb::Client::new(&moto.sdk_config().await);
    let missing = DynamoStore::new(client, "no-such-table");
    let err = missing.ping().await.expect_err("missing table");
    assert!(err.to_string().contains("no-such-table"), "{err}");
    let err = missing
        .put_desired(&desired("x", "one", None))
        .await
        .expect_err("missing table");
    assert!(matches!(err, StoreError::Backend { .. }), "{err}");
}

// ---------------------------------------------------------------------------------------------------
// The scheduler's runtimes on one DynamoDB table

/// Three replicas' scheduler runtimes on one moto table (serial, so conditional writes are atomic as on
/// DynamoDB), one clock: for N fires of each kind of schedule, exactly N actions are started and each
/// ends once; a replica killed after claiming a fire (before recording it) loses nothing, because the
/// others take the fire over once its claim expires.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamo_three_replicas_start_each_fire_exactly_once() {
    use personalize_ops::metrics::MemorySink;
    use personalize_ops::schedule::{Runtime, RuntimeConfig};

    let moto = SerialMoto::start();
    let client = aws_sdk_dynamodb::Client::new(&moto.sdk_config().await);
    let table = unique_name("sched");
    DynamoStore::create_table(&client, &table)
        .await
        .expect("create table");
    let clock = manual_clock();
    let created = start_time();
    clock.set(created);
    let store = |client| {
        Arc::new(
            DynamoStore::new(client, table.clone())
                .with_clock(Arc::clone(&clock) as Arc<dyn personalize_ops::store::Clock>),
        )
    };
    let admin = store(client);
    let lease = take(admin.as_ref(), "g", "writer").await;
    let kinds = [
        ("personalize-dataset-import-g", r#"{"action":"import"}"#),
        (
            "solution-maintenance-full-s",
            r#"{"action":"full","solution":"s"}"#,
        ),
        (
            "solution-maintenance-update-s",
            r#"{"action":"update","solution":"s"}"#,
        ),
        (
            "batch-inference-s",
            r#"{"action":"batch_inference","solution":"s","index":0}"#,
        ),
    ];
    for (name, target) in kinds {
        let mut s = sample_schedule("g", name);
        s.expression = "rate(10 minutes)".into();
        s.target = target.into();
        s.created_at = created;
        admin.put_schedule(&lease, &s).await.expect("put");
    }
    admin.release_lease(&lease).await.expect("release");

    let metrics = Arc::new(MemorySink::new());
    let mut replicas = Vec::new();
    for i in 0..3 {
        let client = aws_sdk_dynamodb::Client::new(&moto.sdk_config().await);
        replicas.push(Runtime::new(
            store(client),
            clock.clone(),
            metrics.clone(),
            RuntimeConfig {
                owner: format!("replica-{i}"),
                catch_up: chrono::Duration::hours(1),
                claim_ttl: Duration::from_secs(120),
                reload: Duration::from_secs(30),
            },
        ));
    }
    let minutes = |m: i64| created + chrono::Duration::minutes(m);
    let mut actions: Vec<(String, DateTime<Utc>)> = Vec::new();
    const N: i64 = 3;
    for k in 1..=N {
        clock.set(minutes(10 * k) + chrono::Duration::seconds(1));
        let live = if k == 2 {
            // Replica 0 claims the import fire and dies before recording it.
            let fire = minutes(20);
            assert_eq!(
                admin
                    .claim_fire(
                        "g",
                        "personalize-dataset-import-g",
                        fire,
                        "replica-0",
                        Duration::from_secs(120)
                    )
                    .await
                    .expect("claim"),
                FireClaim::Won
            );
            &replicas[1..]
        } else {
            &replicas[..]
        };
        for r in live {
            r.reload().await.expect("reload");
        }
        let reports = futures::future::join_all(live.iter().map(|r| r.tick())).await;
        let mut started: Vec<_> = reports.into_iter().flat_map(|r| r.started).collect();
        if k == 2 {
            assert_eq!(
                started.len(),
                3,
                "the dead replica's claim holds for now: {started:?}"
            );
            // Its claim expires; the survivors' next reload takes the fire over (still within the
            // catch-up window).
            clock.set(minutes(20) + chrono::Duration::seconds(122));
            for r in live {
                r.reload().await.expect("reload");
            }
            let again = futures::future::join_all(live.iter().map(|r| r.tick())).await;
            started.extend(again.into_iter().flat_map(|r| r.started));
        }
        assert_eq!(started.len(), kinds.len(), "fire {k}: {started:?}");
        // The group's worker ends each action; ending it twice is refused.
        for (group, name, fire) in started {
            let outcome = FireOutcome {
                fire,
                status: FireStatus::Succeeded,
                detail: "done".into(),
                at: fire,
            };
            assert!(admin.finish_fire(&group, &name, &outcome).await.expect("finish"));
            assert!(!admin.finish_fire(&group, &name, &outcome).await.expect("again"));
            actions.push((name, fire));
        }
    }
    assert_eq!(actions.len(), kinds.len() * N as usize);
    for (name, _) in kinds {
        let fires: Vec<_> = actions
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, f)| *f)
            .collect();
        assert_eq!(fires, vec![minutes(10), minutes(20), minutes(30)], "{name}");
    }
    assert_eq!(metrics.total("ScheduledRunsCoalesced"), 0.0);
    assert_eq!(metrics.total("ScheduledRunsSkipped"), 0.0);
}

// ---------------------------------------------------------------------------------------------------
// The resync's brief listing

/// Groups in every state the resync tells apart; their names.
async fn groups_in_every_state(store: &dyn StateStore) -> Vec<&'static str> {
    let observe = |group: &'static str, observed: Observed, due: Option<DateTime<Utc>>| async move {
        let lease = acquired(
            store
                .acquire_lease(group, "w", LEASE, personalize_ops::store::Acquire::Lease)
                .await
                .expect("acquire")
                .0,
        );
        store
            .put_observed(
                &lease,
                &observed,
                due,
                personalize_ops::store::ObservedWrite::RELEASE,
            )
            .await
            .expect("observe");
    };
    for g in ["new", "converged", "failed", "pending", "destroyed", "newer"] {
        let mut d = desired(g, "one", None);
        d.source.version_id = Some(format!("v-{g}"));
        d.source.last_modified = Some(start_time());
        store.put_desired(&d).await.expect("desire");
    }
    let mut converged = observed(1, true);
    converged.last_error = None;
    observe("converged", converged, None).await;
    observe("failed", observed(1, false), None).await;
    let mut pending = observed(1, false);
    pending.last_error = None;
    let poll = start_time() + chrono::Duration::seconds(90);
    observe("pending", pending, Some(poll)).await;
    observe("destroyed", Observed::tombstone(1, start_time()), None).await;
    observe("newer", observed(1, true), None).await;
    store
        .put_desired(&desired("newer", "two", None))
        .await
        .expect("desire");
    // Marked due by an operator, never given a file.
    store.mark_due("ghost", start_time()).await.expect("mark");
    vec![
        "new",
        "converged",
        "failed",
        "pending",
        "destroyed",
        "newer",
        "ghost",
    ]
}

/// `list_briefs` says of each group what its full state says.
async fn briefs_match_the_groups(store: &dyn StateStore, names: &[&str]) {
    use personalize_ops::store::{GroupBrief, ObservedState};
    let mut briefs = store.list_briefs().await.expect("briefs");
    briefs.sort_by(|a, b| a.name.cmp(&b.name));
    let mut expected = Vec::new();
    for name in names {
        let state = store.group(name).await.expect("read").expect("exists");
        expected.push(GroupBrief::from(state));
    }
    expected.sort_by(|a, b| a.name.cmp(&b.name));
    assert_eq!(briefs, expected);
    let state = |name: &str| briefs.iter().find(|b| b.name == name).and_then(|b| b.observed);
    assert_eq!(state("new"), None);
    assert_eq!(state("converged"), Some((1, ObservedState::Converged)));
    assert_eq!(state("failed"), Some((1, ObservedState::Failed)));
    assert_eq!(state("pending"), Some((1, ObservedState::Pending)));
    assert_eq!(state("destroyed"), Some((1, ObservedState::Destroyed)));
    assert_eq!(state("newer"), Some((1, ObservedState::Converged)));
    let newer = briefs.iter().find(|b| b.name == "newer").expect("newer");
    assert_eq!(newer.desired_generation, Some(2));
    let source = newer.desired_source.as_ref().expect("source");
    assert_eq!(source.etag.as_deref(), Some("etag-two"));
    let pending = briefs.iter().find(|b| b.name == "pending").expect("pending");
    assert_eq!(
        pending
            .desired_source
            .as_ref()
            .and_then(|s| s.version_id.as_deref()),
        Some("v-pending")
    );
    assert!(pending.due_at.is_some());
    let ghost = briefs.iter().find(|b| b.name == "ghost").expect("ghost");
    assert_eq!((ghost.desired_generation, &ghost.desired_source), (None, &None));
}

#[tokio::test]
async fn sqlite_briefs_match_the_groups() {
    let store = sqlite(&manual_clock());
    let names = groups_in_every_state(&store).await;
    briefs_match_the_groups(&store, &names).await;
}

#[tokio::test]
async fn dynamo_briefs_match_the_groups_and_read_old_items_whole() {
    let moto = Moto::start();
    let client = aws_sdk_dynamodb::Client::new(&moto.sdk_config().await);
    let table = unique_name("state");
    DynamoStore::create_table(&client, &table)
        .await
        .expect("create table");
    let store = DynamoStore::new(client.clone(), table.clone())
        .with_clock(manual_clock() as Arc<dyn personalize_ops::store::Clock>);
    let names = groups_in_every_state(&store).await;
    briefs_match_the_groups(&store, &names).await;
    // Items written before `observed_state` existed: the listing reads them whole.
    for g in ["converged", "failed"] {
        client
            .update_item()
            .table_name(&table)
            .key(
                "pk",
                aws_sdk_dynamodb::types::AttributeValue::S(format!("group#{g}")),
            )
            .key("sk", aws_sdk_dynamodb::types::AttributeValue::S("group".into()))
            .update_expression("REMOVE observed_state, observed_generation")
            .send()
            .await
            .expect("strip");
    }
    briefs_match_the_groups(&store, &names).await;
    // A word no version wrote is a corrupt item, not a guess.
    client
        .update_item()
        .table_name(&table)
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S("group#pending".into()),
        )
        .key("sk", aws_sdk_dynamodb::types::AttributeValue::S("group".into()))
        .update_expression("SET observed_state = :w")
        .expression_attribute_values(":w", aws_sdk_dynamodb::types::AttributeValue::S("asleep".into()))
        .send()
        .await
        .expect("corrupt");
    let err = store.list_briefs().await.expect_err("corrupt");
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("pending"), "{err}");
}
