//! A worker's part of the scheduler: recording the schedule set of each generation (fenced by the
//! group's lease), picking up a pending scheduled action, and ending it with one outcome, one
//! notification and its metrics.

use chrono::{DateTime, Utc};

use super::Daemon;
use super::outbox::notification_id;
use super::reconciler::{PassReport, ScheduledRun};
use super::turn::{failure_summary, location_of};
use crate::metrics::Counter;
use crate::notify::message::scheduled_message;
use crate::schedule::{Target, desired_set, diff};
use crate::spec::names;
use crate::store::{Desired, FireOutcome, FireStatus, Lease, ResourceKind, Schedule, StoreError};

impl Daemon {
    /// Makes the group's schedule items match `desired`'s parameter file: new and changed schedules
    /// written, removed ones deleted, unchanged ones untouched (history kept). Every write is fenced by
    /// `lease`. A file that no longer validates leaves the schedules as they are. Returns the group's
    /// schedules as recorded now (read once; read again only after a change).
    pub(crate) async fn sync_schedules(
        &self,
        lease: &Lease,
        desired: &Desired,
    ) -> Result<Vec<Schedule>, StoreError> {
        let recorded = self.store.schedules(Some(&lease.group)).await?;
        let report = crate::spec::load(&desired.text);
        let Some(spec) = report.spec.filter(|_| report.errors.is_empty()) else {
            return Ok(recorded);
        };
        let changes = diff(&lease.group, &recorded, &desired_set(&spec), self.clock.now());
        if changes.is_empty() {
            return Ok(recorded);
        }
        for schedule in &changes.put {
            self.store.put_schedule(lease, schedule).await?;
            if !recorded.iter().any(|r| r.name == schedule.name) {
                self.metrics.count(Counter::JobsCreated);
            }
            tracing::info!(schedule = %schedule.name, expression = %schedule.expression, generation = desired.generation, "schedule recorded");
        }
        for name in &changes.remove {
            self.store.delete_schedule(lease, name).await?;
            self.metrics.count(Counter::JobsDeleted);
            tracing::info!(schedule = %name, generation = desired.generation, "schedule removed: the parameter file no longer declares it");
        }
        self.schedules_changed.notify_waiters();
        self.store.schedules(Some(&lease.group)).await
    }

    /// The group's oldest pending scheduled action, from its `schedules` as just read. A pending fire
    /// whose target cannot be read is ended as failed (it would never run) and the next one is
    /// looked at.
    pub(crate) async fn pending_action_of(
        &self,
        group: &str,
        schedules: Vec<Schedule>,
    ) -> Result<Option<ScheduledRun>, StoreError> {
        let mut pending: Vec<_> = schedules
            .into_iter()
            .filter_map(|s| s.pending_fire.map(|fire| (fire, s)))
            .collect();
        pending.sort_by_key(|(fire, _)| *fire);
        for (fire, s) in pending {
            match Target::decode(&s.name, &s.target) {
                Ok(target) => {
                    return Ok(Some(ScheduledRun {
                        schedule: s.name,
                        fire,
                        target,
                    }));
                }
                Err(e) => {
                    let run = ScheduledRun {
                        schedule: s.name.clone(),
                        fire,
                        target: Target::Import,
                    };
                    self.end_scheduled(group, &run, FireStatus::Failed, e.to_string(), None)
                        .await?;
                }
            }
        }
        Ok(None)
    }

    /// Ends a scheduled action whose pass converged or failed: outcome recorded, one notification,
    /// metrics. Returns the outcome's status.
    pub(crate) async fn finish_scheduled(
        &self,
        group: &str,
        run: &ScheduledRun,
        report: &PassReport,
        failed: bool,
    ) -> Result<FireStatus, StoreError> {
        let (status, detail) = if failed {
            (FireStatus::Failed, failure_summary(report))
        } else {
            let campaigns = self.campaigns_of(group, &run.target).await?;
            describe_success(run, report, campaigns.as_deref())
        };
        self.end_scheduled(group, run, status, detail, Some(report))
            .await?;
        Ok(status)
    }

    /// The campaigns the recorded parameter file gives a training target's solution (`None` for
    /// other targets, or when the file cannot be read): the report lists every campaign of the group.
    async fn campaigns_of(&self, group: &str, target: &Target) -> Result<Option<Vec<String>>, StoreError> {
        let (Target::Full { solution } | Target::Update { solution }) = target else {
            return Ok(None);
        };
        let Some(desired) = self.store.group(group).await?.and_then(|g| g.desired) else {
            return Ok(None);
        };
        Ok(crate::spec::load(&desired.text).spec.and_then(|spec| {
            spec.solutions
                .iter()
                .find(|s| &s.name == solution)
                .map(|s| s.campaigns.iter().map(|c| c.name.clone()).collect())
        }))
    }

    async fn end_scheduled(
        &self,
        group: &str,
        run: &ScheduledRun,
        status: FireStatus,
        detail: String,
        report: Option<&PassReport>,
    ) -> Result<(), StoreError> {
        let outcome = FireOutcome {
            fire: run.fire,
            status,
            detail,
            at: self.clock.now(),
        };
        // Only the worker that ends the pending fire reports it: a replica that lost the race (its
        // lease expired mid-action and another finished it) stays silent.
        if !self.store.finish_fire(group, &run.schedule, &outcome).await? {
            tracing::debug!(schedule = %run.schedule, fire = %run.fire, "scheduled action already ended elsewhere");
            return Ok(());
        }
        self.metrics.count(Counter::ScheduledRuns);
        match status {
            FireStatus::Failed => self.metrics.count(Counter::ScheduledRunsFailed),
            FireStatus::Skipped => self.metrics.count(Counter::ScheduledRunsSkipped),
            FireStatus::Succeeded => {}
        }
        tracing::info!(schedule = %run.schedule, fire = %run.fire, outcome = %outcome, "scheduled action ended");
        let location = report.map_or_else(
            || self.config.location.clone(),
            |r| location_of(r, &self.config.location),
        );
        // The fire's end is recorded above; its message goes through the outbox so an outage of the
        // targets does not lose it.
        let id = notification_id(
            group,
            &format!("schedule {} fire {}", run.schedule, run.fire.timestamp_millis()),
            outcome.status.as_str(),
        );
        self.announce(scheduled_message(group, &location, &run.schedule, &outcome), &id)
            .await;
        Ok(())
    }
}

/// Whether `name` is a one-shot job of the fire at `fire` (`<prefix>_<ts>`, possibly with a
/// collision-free suffix after the timestamp).
fn named_for(name: &str, fire: DateTime<Utc>) -> bool {
    names::is_stamped_at(name, fire)
}

/// The outcome of a converged scheduled pass: what the fire produced, or why it produced nothing.
/// `campaigns` are the trained solution's, when known (the report holds the whole group's).
fn describe_success(
    run: &ScheduledRun,
    report: &PassReport,
    campaigns: Option<&[String]>,
) -> (FireStatus, String) {
    let of_kind = |kind: ResourceKind| report.resources.iter().filter(move |r| r.kind == kind);
    match &run.target {
        Target::Import => {
            let mine: Vec<&str> = of_kind(ResourceKind::DatasetImportJob)
                .filter(|r| named_for(&r.name, run.fire))
                .map(|r| r.name.as_str())
                .collect();
            if mine.is_empty() {
                let last: Vec<&str> = of_kind(ResourceKind::DatasetImportJob)
                    .map(|r| r.name.as_str())
                    .collect();
                let since = if last.is_empty() {
                    "no data found beside the parameter file".to_string()
                } else {
                    format!("no new data since the last imports ({})", last.join(", "))
                };
                (FireStatus::Skipped, since)
            } else {
                (FireStatus::Succeeded, format!("imported: {}", mine.join(", ")))
            }
        }
        Target::Full { solution } | Target::Update { solution } => {
            let version = of_kind(ResourceKind::SolutionVersion)
                .find(|r| &r.name == solution)
                .and_then(|r| r.arn.clone())
                .unwrap_or_else(|| "(unknown)".into());
            let campaigns: Vec<&str> = of_kind(ResourceKind::Campaign)
                .filter(|r| campaigns.is_none_or(|mine| mine.contains(&r.name)))
                .map(|r| r.name.as_str())
                .collect();
            // Batch job names start with their solution's and carry the fire instant.
            let prefix = format!("batch_{solution}_");
            let batch: Vec<&str> = of_kind(ResourceKind::BatchInferenceJob)
                .chain(of_kind(ResourceKind::BatchSegmentJob))
                .filter(|r| named_for(&r.name, run.fire) && r.name.starts_with(&prefix))
                .map(|r| r.name.as_str())
                .collect();
            let mut detail = format!("new solution version {version} ACTIVE");
            if !campaigns.is_empty() {
                detail.push_str(&format!("; campaigns on it: {}", campaigns.join(", ")));
            }
            if !batch.is_empty() {
                detail.push_str(&format!("; batch jobs: {}", batch.join(", ")));
            }
            (FireStatus::Succeeded, detail)
        }
        Target::BatchInference { .. } | Target::BatchSegment { .. } => {
            let kind = match run.target {
                Target::BatchSegment { .. } => ResourceKind::BatchSegmentJob,
                _ => ResourceKind::BatchInferenceJob,
            };
            match of_kind(kind).find(|r| named_for(&r.name, run.fire)) {
                Some(job) => (FireStatus::Succeeded, format!("batch job {} {}", job.name, job.status)),
                None => (
                    FireStatus::Skipped,
                    "no batch job was started: the batch input file is missing or the solution has no ACTIVE version"
                        .into(),
                ),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::PassStatus;
    use crate::store::{ResourceState, StateStore};

    use crate::schedule::tests::at;

    fn res(kind: ResourceKind, name: &str, arn: Option<&str>) -> ResourceState {
        ResourceState {
            kind,
            name: name.into(),
            status: "ACTIVE".into(),
            arn: arn.map(str::to_string),
            reason: None,
        }
    }

    fn run(target: Target) -> ScheduledRun {
        ScheduledRun {
            schedule: "s".into(),
            fire: at("2026-12-05T10:00:00Z"),
            target,
        }
    }

    fn report(resources: Vec<ResourceState>) -> PassReport {
        PassReport {
            status: PassStatus::Converged,
            resources,
            failures: Vec::new(),
        }
    }

    #[test]
    fn an_import_fire_without_new_data_is_skipped_naming_the_last_import() {
        let old = res(
            ResourceKind::DatasetImportJob,
            "dataset_import_interactions_2026_12_01_08_00_00",
            None,
        );
        let (status, detail) = describe_success(&run(Target::Import), &report(vec![old]), None);
        assert_eq!(status, FireStatus::Skipped);
        assert!(
            detail.contains("no new data since") && detail.contains("2026_12_01_08_00_00"),
            "{detail}"
        );
        let mine = res(
            ResourceKind::DatasetImportJob,
            "dataset_import_interactions_2026_12_05_10_00_00",
            None,
        );
        let (status, detail) = describe_success(&run(Target::Import), &report(vec![mine]), None);
        assert_eq!(status, FireStatus::Succeeded);
        assert!(detail.contains("2026_12_05_10_00_00"), "{detail}");
    }

    #[test]
    fn a_training_fire_names_the_version_campaigns_and_batch_jobs() {
        let r = report(vec![
            res(ResourceKind::SolutionVersion, "sol", Some("arn:v2")),
            res(ResourceKind::Campaign, "camp", Some("arn:c")),
            res(ResourceKind::Campaign, "other-camp", Some("arn:c2")),
            res(
                ResourceKind::BatchInferenceJob,
                "batch_sol_2026_12_05_10_00_00",
                None,
            ),
            // Another solution's job started by a fire at the same instant.
            res(
                ResourceKind::BatchInferenceJob,
                "batch_other_2026_12_05_10_00_00",
                None,
            ),
            res(
                ResourceKind::BatchInferenceJob,
                "batch_sol_2026_11_05_10_00_00",
                None,
            ),
        ]);
        let campaigns = ["camp".to_string()];
        let (status, detail) = describe_success(
            &run(Target::Update {
                solution: "sol".into(),
            }),
            &r,
            Some(&campaigns),
        );
        assert_eq!(status, FireStatus::Succeeded);
        assert_eq!(
            detail,
            "new solution version arn:v2 ACTIVE; campaigns on it: camp; batch jobs: batch_sol_2026_12_05_10_00_00"
        );
        let (status, _) = describe_success(
            &run(Target::BatchSegment {
                solution: "sol".into(),
                index: 0,
            }),
            &r,
            None,
        );
        assert_eq!(status, FireStatus::Skipped);
    }

    /// Answers file passes with Converged; a scheduled pass first with Pending (the action is under
    /// way when its replica stops), then with a new version. Records the fire of each scheduled pass.
    struct Resumable {
        fires: std::sync::Mutex<Vec<DateTime<Utc>>>,
    }

    #[async_trait::async_trait]
    impl crate::daemon::GroupReconciler for Resumable {
        async fn pass(
            &self,
            input: crate::daemon::PassInput<'_>,
            _sink: &crate::daemon::PassSink,
        ) -> Result<PassReport, crate::daemon::PassError> {
            let Some(run) = input.scheduled else {
                return Ok(report(vec![]));
            };
            let mut fires = self
                .fires
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            fires.push(run.fire);
            if fires.len() == 1 {
                return Ok(PassReport {
                    status: PassStatus::Pending {
                        retry_after: std::time::Duration::from_secs(3600),
                    },
                    resources: vec![],
                    failures: vec![],
                });
            }
            Ok(report(vec![res(
                ResourceKind::SolutionVersion,
                "shop-up",
                Some("arn:v2"),
            )]))
        }
    }

    const FILE: &str = r#"{
      "datasetGroup": {"serviceConfig": {"name": "shop"}},
      "datasets": {"interactions": {"dataset": {"serviceConfig": {"name": "shop-int"}},
        "schema": {"serviceConfig": {"name": "shop-int-schema", "schema": {"type": "record", "name": "Interactions",
          "namespace": "com.amazonaws.personalize.schema", "fields": [{"name": "USER_ID", "type": "string"},
          {"name": "ITEM_ID", "type": "string"}, {"name": "TIMESTAMP", "type": "long"}], "version": "1.0"}}}}},
      "solutions": [{"serviceConfig": {"name": "shop-up", "recipeArn": "arn:aws:personalize:::recipe/aws-user-personalization"},
                     "workflowConfig": {"schedules": {"update": "rate(1 hour)"}}}]
    }"#;

    fn daemon(
        store: &std::sync::Arc<crate::store::SqliteStore>,
        reconciler: std::sync::Arc<dyn crate::daemon::GroupReconciler>,
        notes: &std::sync::Arc<crate::notify::MemoryNotifier>,
        metrics: &std::sync::Arc<crate::metrics::MemorySink>,
        owner: &str,
    ) -> Daemon {
        let config = crate::daemon::DaemonConfig {
            owner: owner.into(),
            concurrency: 1,
            lease_duration: std::time::Duration::from_secs(30),
            resync_interval: std::time::Duration::from_secs(3600),
            dispatch_interval: std::time::Duration::from_millis(20),
            error_retry: std::time::Duration::from_secs(1),
            max_passes_per_turn: 20,
            shutdown_grace: std::time::Duration::from_secs(1),
            location: crate::notify::message::Location {
                partition: "aws".into(),
                region: "us-east-1".into(),
                account: "unknown".into(),
            },
        };
        Daemon::new(
            store.clone(),
            reconciler,
            crate::notify::Notifications::new(vec![notes.clone()]),
            metrics.clone(),
            std::sync::Arc::new(crate::store::SystemClock),
            config,
        )
    }

    fn shop_file() -> crate::store::NewDesired {
        crate::store::NewDesired {
            group: "shop".into(),
            text: FILE.into(),
            source: crate::store::DesiredSource {
                url: crate::objects::ObjectUrl::new("data", "train/shop/config.json"),
                etag: None,
                version_id: None,
                sequencer: None,
                last_modified: None,
            },
        }
    }

    #[tokio::test]
    async fn a_pending_action_is_resumed_with_its_fire_by_the_next_worker_and_ends_once() {
        use std::sync::Arc;
        let store = Arc::new(crate::store::SqliteStore::in_memory().expect("store"));
        let new = shop_file();
        store.put_desired(&new).await.expect("desired");
        let reconciler = Arc::new(Resumable {
            fires: std::sync::Mutex::default(),
        });
        let notes = Arc::new(crate::notify::MemoryNotifier::default());
        let metrics = Arc::new(crate::metrics::MemorySink::new());
        let token = tokio_util::sync::CancellationToken::new();

        // The first turn records the file's schedule set.
        let first = daemon(&store, reconciler.clone(), &notes, &metrics, "replica-a");
        first.turn("shop", &token, &token).await;
        let schedules = store.schedules(Some("shop")).await.expect("schedules");
        let names: Vec<&str> = schedules.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, vec!["solution-maintenance-update-shop-up"]);
        assert_eq!(metrics.total("JobsCreated"), 1.0);

        // A fire is recorded; replica-a starts the action and stops while it is under way.
        let fire = at("2026-12-05T10:00:00Z");
        let name = "solution-maintenance-update-shop-up";
        assert_eq!(
            store.begin_fire("shop", name, fire, None).await.expect("begin"),
            crate::store::BeginFire::Started
        );
        first.turn("shop", &token, &token).await;
        drop(first);
        let s = &store.schedules(Some("shop")).await.expect("schedules")[0];
        assert_eq!(s.pending_fire, Some(fire), "still pending");

        // Another replica's worker resumes it with the same fire instant (so the same one-shot
        // names) and ends it once: one outcome, one notification, one ScheduledRuns.
        let second = daemon(&store, reconciler.clone(), &notes, &metrics, "replica-b");
        second.turn("shop", &token, &token).await;
        second.turn("shop", &token, &token).await;
        assert_eq!(*reconciler.fires.lock().expect("fires"), vec![fire, fire]);
        let s = &store.schedules(Some("shop")).await.expect("schedules")[0];
        assert_eq!(s.pending_fire, None);
        let outcome = s.last_outcome.clone().expect("outcome");
        assert_eq!(outcome.status, FireStatus::Succeeded);
        assert!(outcome.detail.contains("arn:v2"), "{}", outcome.detail);
        let scheduled: Vec<_> = notes
            .messages()
            .into_iter()
            .filter(|m| m.status.starts_with("SCHEDULED RUN"))
            .collect();
        assert_eq!(scheduled.len(), 1);
        assert_eq!(scheduled[0].status, "SCHEDULED RUN COMPLETE");
        assert!(scheduled[0].body.contains(name) && scheduled[0].body.contains("2026-12-05T10:00:00Z"));
        assert_eq!(metrics.total("ScheduledRuns"), 1.0);

        // A file without the schedule removes it.
        let mut newer = new.clone();
        newer.text = FILE.replace(
            r#""workflowConfig": {"schedules": {"update": "rate(1 hour)"}}"#,
            r#""workflowConfig": {}"#,
        );
        newer.source.etag = Some("2".into());
        store.put_desired(&newer).await.expect("desired");
        second.turn("shop", &token, &token).await;
        assert!(store.schedules(Some("shop")).await.expect("schedules").is_empty());
        assert_eq!(metrics.total("JobsDeleted"), 1.0);
    }

    /// File passes end with `file` (pending an hour unless changed); when `fire_during` is set, the
    /// next file pass begins that fire and marks the group due, as the scheduler of another replica
    /// would while the turn holds the group. Scheduled passes converge; their fires are recorded.
    struct Scheduler {
        store: std::sync::Arc<crate::store::SqliteStore>,
        file: std::sync::Mutex<PassStatus>,
        fire_during: std::sync::Mutex<Option<DateTime<Utc>>>,
        fires: std::sync::Mutex<Vec<DateTime<Utc>>>,
    }

    const SCHEDULE: &str = "solution-maintenance-update-shop-up";

    impl Scheduler {
        fn new(store: &std::sync::Arc<crate::store::SqliteStore>) -> std::sync::Arc<Self> {
            std::sync::Arc::new(Self {
                store: store.clone(),
                file: std::sync::Mutex::new(PassStatus::Pending {
                    retry_after: std::time::Duration::from_secs(3600),
                }),
                fire_during: std::sync::Mutex::default(),
                fires: std::sync::Mutex::default(),
            })
        }

        fn set<T>(cell: &std::sync::Mutex<T>, value: T) {
            *cell.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = value;
        }
    }

    #[async_trait::async_trait]
    impl crate::daemon::GroupReconciler for Scheduler {
        async fn pass(
            &self,
            input: crate::daemon::PassInput<'_>,
            _sink: &crate::daemon::PassSink,
        ) -> Result<PassReport, crate::daemon::PassError> {
            if let Some(run) = input.scheduled {
                let mut fires = self
                    .fires
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                fires.push(run.fire);
                return Ok(report(vec![res(
                    ResourceKind::SolutionVersion,
                    "shop-up",
                    Some("arn:v2"),
                )]));
            }
            let fire = self
                .fire_during
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take();
            if let Some(fire) = fire {
                let begun = self.store.begin_fire("shop", SCHEDULE, fire, None).await;
                assert_eq!(begun.expect("begin"), crate::store::BeginFire::Started);
                self.store.mark_due("shop", Utc::now()).await.expect("mark due");
            }
            let status = self
                .file
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone();
            Ok(PassReport {
                status,
                resources: vec![],
                failures: vec![],
            })
        }
    }

    fn fires(s: &Scheduler) -> Vec<DateTime<Utc>> {
        s.fires
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The shop's file recorded, a worker of replica-a on it with a [`Scheduler`] reconciler.
    async fn shop_with_scheduler() -> (
        std::sync::Arc<crate::store::SqliteStore>,
        std::sync::Arc<Scheduler>,
        std::sync::Arc<crate::notify::MemoryNotifier>,
        Daemon,
    ) {
        use std::sync::Arc;
        let store = Arc::new(crate::store::SqliteStore::in_memory().expect("store"));
        store.put_desired(&shop_file()).await.expect("desired");
        let reconciler = Scheduler::new(&store);
        let notes = Arc::new(crate::notify::MemoryNotifier::default());
        let metrics = Arc::new(crate::metrics::MemorySink::new());
        let worker = daemon(&store, reconciler.clone(), &notes, &metrics, "replica-a");
        (store, reconciler, notes, worker)
    }

    #[tokio::test]
    async fn the_schedules_are_read_only_for_a_new_file_or_when_an_action_may_be_pending() {
        let (store, reconciler, _notes, worker) = shop_with_scheduler().await;
        let token = tokio_util::sync::CancellationToken::new();
        let marks = || async { store.group("shop").await.expect("read").expect("group").schedules };

        // The file's first turn syncs its schedules: read, written, read back.
        let before = store.calls();
        worker.turn("shop", &token, &token).await;
        assert_eq!(
            store.calls() - before,
            5,
            "lease with group, schedules, the new schedule, schedules again, result with release"
        );
        assert!(marks().await.synced(1), "{:?}", marks().await);
        // Nothing scheduled: the group item says so, and no query is made.
        for _ in 0..2 {
            let before = store.calls();
            worker.turn("shop", &token, &token).await;
            assert_eq!(store.calls() - before, 2, "lease with group, result with release");
        }

        // A fire: the next turn queries, runs the action, and records that it saw it.
        let fire = at("2026-12-05T10:00:00Z");
        assert_eq!(
            store
                .begin_fire("shop", SCHEDULE, fire, None)
                .await
                .expect("begin"),
            crate::store::BeginFire::Started
        );
        assert!(marks().await.fire_may_be_pending());
        worker.turn("shop", &token, &token).await;
        assert_eq!(fires(&reconciler), vec![fire]);
        let s = &store.schedules(Some("shop")).await.expect("schedules")[0];
        assert_eq!(s.pending_fire, None, "ended");
        assert!(!marks().await.fire_may_be_pending(), "{:?}", marks().await);
        let before = store.calls();
        worker.turn("shop", &token, &token).await;
        assert_eq!(store.calls() - before, 2, "no query once the action ended");
        assert_eq!(fires(&reconciler), vec![fire], "run once");

        // A new parameter file's schedules are synced again.
        let mut newer = shop_file();
        newer.source.etag = Some("2".into());
        store.put_desired(&newer).await.expect("desired");
        let before = store.calls();
        worker.turn("shop", &token, &token).await;
        assert_eq!(store.calls() - before, 3, "lease with group, schedules, result");
        assert!(marks().await.synced(2));
    }

    #[tokio::test]
    async fn a_fire_begun_while_a_turn_holds_the_group_keeps_it_due_and_runs_next() {
        let (store, reconciler, notes, worker) = shop_with_scheduler().await;
        let token = tokio_util::sync::CancellationToken::new();
        worker.turn("shop", &token, &token).await;

        // The fire lands during a pass that converges and announces: the turn had read the group
        // before it, and its write would have made the group due only on the next resync.
        let first = at("2026-12-05T10:00:00Z");
        Scheduler::set(&reconciler.fire_during, Some(first));
        Scheduler::set(&reconciler.file, PassStatus::Converged);
        worker.turn("shop", &token, &token).await;
        assert_eq!(notes.messages().len(), 1, "announced");
        let state = store.group("shop").await.expect("read").expect("group");
        assert!(
            state.due_at.is_some_and(|d| d <= Utc::now()),
            "{:?}",
            state.due_at
        );
        assert!(state.schedules.fire_may_be_pending(), "{:?}", state.schedules);
        assert!(fires(&reconciler).is_empty());
        worker.turn("shop", &token, &token).await;
        assert_eq!(fires(&reconciler), vec![first], "run by the next turn");

        // The same during a pass that waits an hour: the group does not wait with it.
        let second = at("2026-12-05T11:00:00Z");
        Scheduler::set(&reconciler.fire_during, Some(second));
        Scheduler::set(
            &reconciler.file,
            PassStatus::Pending {
                retry_after: std::time::Duration::from_secs(3600),
            },
        );
        // Converged and not due, the group gets a pass only when due (a resync's mark here).
        store.mark_due("shop", Utc::now()).await.expect("mark");
        worker.turn("shop", &token, &token).await;
        let state = store.group("shop").await.expect("read").expect("group");
        assert!(
            state.due_at.is_some_and(|d| d <= Utc::now()),
            "{:?}",
            state.due_at
        );
        worker.turn("shop", &token, &token).await;
        assert_eq!(fires(&reconciler), vec![first, second]);
        let s = &store.schedules(Some("shop")).await.expect("schedules")[0];
        assert_eq!(s.pending_fire, None);
        assert!(
            !store
                .group("shop")
                .await
                .expect("read")
                .expect("group")
                .schedules
                .fire_may_be_pending()
        );
    }
}
