//! Three replicas of the daemon, each with its scheduler, on one DynamoDB table (a serial moto, so
//! conditional writes are atomic as on DynamoDB) and one SNS topic, with injected time: every fire of
//! every schedule kind is acted on and announced exactly once, also when a replica dies in the middle
//! of an action (another one takes the action over by name and ends it).

mod support;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use personalize_ops::daemon::{
    Daemon, DaemonConfig, GroupReconciler, PassError, PassInput, PassReport, PassSink, PassStatus,
};
use personalize_ops::metrics::MemorySink;
use personalize_ops::notify::{Notifications, SnsNotifier};
use personalize_ops::objects::ObjectUrl;
use personalize_ops::schedule::Target;
use personalize_ops::settings::SchedulerSettings;
use personalize_ops::spec::names;
use personalize_ops::store::{
    Clock, DesiredSource, DynamoStore, ManualClock, NewDesired, ResourceKind, StateStore,
};
use serde_json::Value;
use support::aws::{SerialMoto, SerialState};
use support::cloud::subscribed_queue;
use support::daemon::{active, replica_config};
use support::wait::eventually;
use tokio_util::sync::CancellationToken;

/// One of each schedule kind a dataset group can have, all every minute.
const FILE: &str = r#"{
  "datasetGroup": {"serviceConfig": {"name": "shop"},
                   "workflowConfig": {"schedules": {"import": "rate(1 minute)"}}},
  "datasets": {"interactions": {
    "dataset": {"serviceConfig": {"name": "shop-interactions"}},
    "schema": {"serviceConfig": {"name": "shop-interactions-schema", "schema": {
      "type": "record", "name": "Interactions", "namespace": "com.amazonaws.personalize.schema",
      "fields": [{"name": "USER_ID", "type": "string"}, {"name": "ITEM_ID", "type": "string"},
                 {"name": "TIMESTAMP", "type": "long"}], "version": "1.0"}}}}},
  "solutions": [{
    "serviceConfig": {"name": "shop-up", "recipeArn": "arn:aws:personalize:::recipe/aws-user-personalization"},
    "workflowConfig": {"schedules": {"full": "rate(1 minute)", "update": "rate(1 minute)"}},
    "batchInferenceJobs": [{"workflowConfig": {"schedule": "rate(1 minute)"}}]
  }]
}"#;

const ARN: &str = "arn:aws:personalize:us-east-1:123456789012";

/// The replicas that made passes of each scheduled action (schedule, fire), in order.
type Actions = BTreeMap<(String, DateTime<Utc>), Vec<String>>;

/// What the replicas' reconcilers did, shared between them.
#[derive(Default)]
struct Ledger {
    /// Passes per scheduled action (schedule, fire), with the replicas that made them.
    actions: Mutex<Actions>,
    /// The replica in a scheduled pass right now, if any.
    in_action: Mutex<Option<String>>,
    /// How long a scheduled pass takes, in milliseconds.
    delay_ms: AtomicU64,
}

/// A replica's reconciler: converges the file at once; a scheduled action takes `delay_ms` and
/// reports what Personalize would show for the fire (its one-shot jobs are named from the fire).
struct Scripted {
    replica: String,
    ledger: Arc<Ledger>,
}

#[async_trait::async_trait]
impl GroupReconciler for Scripted {
    async fn pass(&self, input: PassInput<'_>, _sink: &PassSink) -> Result<PassReport, PassError> {
        let mut resources = vec![active(
            ResourceKind::DatasetGroup,
            input.group,
            format!("{ARN}:dataset-group/{}", input.group),
        )];
        if let Some(run) = input.scheduled {
            self.ledger
                .actions
                .lock()
                .expect("lock")
                .entry((run.schedule.clone(), run.fire))
                .or_default()
                .push(self.replica.clone());
            *self.ledger.in_action.lock().expect("lock") = Some(self.replica.clone());
            tokio::time::sleep(Duration::from_millis(self.ledger.delay_ms.load(Ordering::SeqCst))).await;
            *self.ledger.in_action.lock().expect("lock") = None;
            let ts = names::timestamp(run.fire);
            resources.push(match &run.target {
                Target::Import => active(
                    ResourceKind::DatasetImportJob,
                    format!("dataset_import_interactions_{ts}"),
                    format!("{ARN}:dataset-import-job/dataset_import_interactions_{ts}"),
                ),
                Target::Full { solution } | Target::Update { solution } => active(
                    ResourceKind::SolutionVersion,
                    solution.clone(),
                    format!("{ARN}:solution/{solution}/{ts}"),
                ),
                Target::BatchInference { solution, .. } => active(
                    ResourceKind::BatchInferenceJob,
                    format!("batch_{solution}_{ts}"),
                    format!("{ARN}:batch-inference-job/batch_{solution}_{ts}"),
                ),
                Target::BatchSegment { solution, .. } => active(
                    ResourceKind::BatchSegmentJob,
                    format!("segment_{solution}_{ts}"),
                    format!("{ARN}:batch-segment-job/segment_{solution}_{ts}"),
                ),
            });
        }
        Ok(PassReport {
            status: PassStatus::Converged,
            resources,
            failures: vec![],
        })
    }
}

/// A replica: its daemon and its scheduler, stopped together (gracefully or by killing both).
struct Replica {
    stop: CancellationToken,
    daemon: tokio::task::JoinHandle<Result<(), personalize_ops::daemon::DaemonError>>,
    scheduler: tokio::task::JoinHandle<()>,
}

impl Replica {
    fn start(
        name: &str,
        store: Arc<DynamoStore>,
        clock: Arc<ManualClock>,
        ledger: Arc<Ledger>,
        sns: &aws_sdk_sns::Client,
        topic: &str,
    ) -> Self {
        let config = DaemonConfig {
            concurrency: 2,
            lease_duration: Duration::from_secs(10),
            ..replica_config(name)
        };
        let daemon = Arc::new(Daemon::new(
            store,
            Arc::new(Scripted {
                replica: name.into(),
                ledger,
            }),
            Notifications::new(vec![Arc::new(SnsNotifier::new(sns.clone(), topic))]),
            Arc::new(MemorySink::new()),
            clock as Arc<dyn Clock>,
            config,
        ));
        let stop = CancellationToken::new();
        let settings = SchedulerSettings {
            enabled: true,
            catch_up_secs: 3600,
            claim_ttl_secs: 5,
            reload_ms: 200,
        };
        let scheduler = daemon.spawn_scheduler(&settings, stop.clone()).expect("enabled");
        let daemon = tokio::spawn(daemon.run(None, stop.clone()));
        Self {
            stop,
            daemon,
            scheduler,
        }
    }

    /// Dies at once: no pass finishes, no lease or claim is released.
    fn kill(self) {
        self.daemon.abort();
        self.scheduler.abort();
    }

    async fn stop(self) {
        self.stop.cancel();
        tokio::time::timeout(Duration::from_secs(60), self.daemon)
            .await
            .expect("stops")
            .expect("no panic")
            .expect("no intake failure");
        let _ = self.scheduler.await;
    }
}

/// The machine part of every SNS message that reached `url` so far.
async fn notes(sqs: &aws_sdk_sqs::Client, url: &str) -> Vec<Value> {
    let mut all = Vec::new();
    loop {
        let batch = support::cloud::notes(sqs, url, 0).await;
        if batch.is_empty() {
            return all;
        }
        all.extend(batch);
    }
}

/// Collects scheduled-run notes until `count` have come (or panics after the wait's patience).
async fn scheduled_notes(sqs: &aws_sdk_sqs::Client, url: &str, seen: &mut Vec<Value>, count: usize) {
    let shared = Arc::new(Mutex::new(std::mem::take(seen)));
    eventually(&format!("{count} scheduled-run notifications"), || {
        let shared = shared.clone();
        async move {
            let new = notes(sqs, url).await;
            let mut all = shared.lock().expect("lock");
            all.extend(new.into_iter().filter(|n| n.get("schedule").is_some()));
            all.len() >= count
        }
    })
    .await;
    *seen = std::mem::take(&mut *shared.lock().expect("lock"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_act_on_each_fire_once_and_a_killed_replicas_action_is_finished_once() {
    let moto = SerialMoto::start();
    let SerialState { ddb, sns, sqs, table } = moto.state().await;
    let t0: DateTime<Utc> = "2026-03-01T00:00:00Z".parse().expect("instant");
    let clock = Arc::new(ManualClock::new(t0));
    let store = Arc::new(
        DynamoStore::new(ddb, table)
            .with_clock(clock.clone() as Arc<dyn Clock>)
            .with_max_clock_skew(Duration::from_secs(1)),
    );
    let (topic, notes_url) = subscribed_queue(&sns, &sqs, "notes", "notes").await;
    let ledger = Arc::new(Ledger::default());
    let mut replicas: HashMap<String, Replica> = ["a", "b", "c"]
        .into_iter()
        .map(|n| {
            let r = Replica::start(n, store.clone(), clock.clone(), ledger.clone(), &sns, &topic);
            (n.to_string(), r)
        })
        .collect();

    store
        .put_desired(&NewDesired {
            group: "shop".into(),
            text: FILE.into(),
            source: DesiredSource {
                url: ObjectUrl::new("data", "train/shop/config.json"),
                etag: None,
                version_id: None,
                sequencer: None,
                last_modified: Some(t0),
            },
        })
        .await
        .expect("desired");
    eventually("the file converged and its schedules were recorded", || async {
        let converged = store
            .group("shop")
            .await
            .expect("read")
            .and_then(|g| g.observed)
            .is_some_and(|o| o.converged);
        converged && store.schedules(Some("shop")).await.expect("schedules").len() == 4
    })
    .await;
    let schedules: BTreeSet<String> = store
        .schedules(Some("shop"))
        .await
        .expect("schedules")
        .into_iter()
        .map(|s| s.name)
        .collect();
    let mut seen = Vec::new();

    // Fire 1: every replica's timer sees the four fires; each is acted on once.
    clock.advance(Duration::from_secs(60));
    scheduled_notes(&sqs, &notes_url, &mut seen, 4).await;

    // Fire 2: the replica in the middle of an action dies there, holding the group's lease. Once its
    // lease is over (10 s of the store's clock, still before the next fire), another replica
    // resumes the pending action by its fire instant and ends it.
    ledger.delay_ms.store(500, Ordering::SeqCst);
    clock.advance(Duration::from_secs(60));
    let victim = Arc::new(Mutex::new(None::<String>));
    eventually("a replica is in a scheduled action", || {
        let victim = victim.clone();
        let ledger = ledger.clone();
        async move {
            let busy = ledger.in_action.lock().expect("lock").clone();
            *victim.lock().expect("lock") = busy.clone();
            busy.is_some()
        }
    })
    .await;
    let victim = victim.lock().expect("lock").clone().expect("a replica");
    replicas.remove(&victim).expect("running").kill();
    ledger.delay_ms.store(0, Ordering::SeqCst);
    clock.advance(Duration::from_secs(11));
    scheduled_notes(&sqs, &notes_url, &mut seen, 8).await;

    // Fire 3, with two replicas left.
    clock.set(t0 + chrono::Duration::seconds(180));
    scheduled_notes(&sqs, &notes_url, &mut seen, 12).await;
    for (_, r) in replicas.drain() {
        r.stop().await;
    }
    seen.extend(
        notes(&sqs, &notes_url)
            .await
            .into_iter()
            .filter(|n| n.get("schedule").is_some()),
    );

    // Exactly one notification per (schedule, fire), every one a success.
    let fires: Vec<String> = [60, 120, 180]
        .iter()
        .map(|s| (t0 + chrono::Duration::seconds(*s)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .collect();
    let mut announced: Vec<(String, String)> = seen
        .iter()
        .map(|n| {
            assert_eq!(n["status"], "SCHEDULED RUN COMPLETE", "{n}");
            (
                n["schedule"].as_str().expect("schedule").to_string(),
                n["fireTime"].as_str().expect("fire").to_string(),
            )
        })
        .collect();
    announced.sort();
    let mut expected: Vec<(String, String)> = schedules
        .iter()
        .flat_map(|s| fires.iter().map(move |f| (s.clone(), f.clone())))
        .collect();
    expected.sort();
    assert_eq!(announced, expected, "each fire of each schedule announced once");

    // Every fire was acted on, and only those; the action the victim was in was finished by
    // another replica, the only action with passes by two replicas.
    let actions = ledger.actions.lock().expect("lock").clone();
    let acted: Vec<(String, String)> = actions
        .keys()
        .map(|(s, f)| (s.clone(), f.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)))
        .collect();
    assert_eq!(acted, expected);
    let resumed: Vec<_> = actions
        .iter()
        .filter(|(_, by)| by.iter().collect::<BTreeSet<_>>().len() > 1)
        .collect();
    assert_eq!(resumed.len(), 1, "{actions:?}");
    assert_eq!(resumed[0].1.first(), Some(&victim), "{actions:?}");
    assert!(
        actions.values().all(|by| by.len() <= 2),
        "no action was repeated beyond its takeover: {actions:?}"
    );
}
