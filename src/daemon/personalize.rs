//! The daemon's [`GroupReconciler`] backed by the reconciler (`reconcile::Reconciler`): parses the
//! generation's parameter file, runs one pass, and turns its events and outcome into the daemon's.

use std::sync::Arc;

use super::reconciler::{GroupReconciler, PassError, PassInput, PassReport, PassSink, PassStatus};
use crate::metrics::solution_metrics;
use crate::notify::ResourceChange;
use crate::notify::message::Failure;
use crate::plan::{Ref, ScheduledWork};
use crate::reconcile::{self, Event, EventSink, PassOutcome, Reconciler};
use crate::schedule::Target;
use crate::spec::model::TrainingMode;
use crate::store::{ResourceKind, ResourceState};

/// Statuses that are the reconciler's own words, not Personalize's: not resource state changes.
const OWN_WORDS: [&str; 12] = [
    "CREATE REQUESTED",
    "DELETE REQUESTED",
    "STOP REQUESTED",
    "WAITING",
    "KEPT",
    "UPDATE REQUESTED",
    "RETRY LATER",
    "SKIPPED",
    "CONFLICT",
    "FAILED",
    "DEPENDENCY FAILED",
    "METRICS",
];

/// Forwards the reconciler's events to the daemon's sink.
struct Forward<'a> {
    sink: &'a PassSink,
}

impl EventSink for Forward<'_> {
    fn emit(&mut self, event: Event) {
        let k = event.kind;
        if event.status == "CREATE REQUESTED" {
            self.sink.created(k);
        }
        if let (Some(metrics), Some(arn)) = (&event.metrics, &event.arn) {
            let pairs: Vec<(String, f64)> = metrics.iter().map(|(n, v)| (n.clone(), *v)).collect();
            // The solution's name is the version's parent: `…:solution/<name>/<id>`.
            let solution = arn.rsplit('/').nth(1).unwrap_or(&event.name);
            for datum in solution_metrics(&event.group, solution, arn, &pairs) {
                self.sink.metric(datum);
            }
        }
        if OWN_WORDS.contains(&event.status.as_str()) {
            return;
        }
        let Some(arn) = event.arn else { return };
        self.sink.resource_changed(ResourceChange {
            kind: k,
            arn,
            status: event.status,
            duration_secs: event.elapsed_secs.map(|s| s.max(0.0).round() as u64),
            reason: event.reason,
            dataset_group: Some(event.group),
        });
    }
}

fn state(r: reconcile::ResourceState) -> ResourceState {
    ResourceState {
        kind: r.target.kind,
        name: r.target.name,
        status: r.status,
        arn: r.arn,
        // `status` shows it: the serving and the candidate version of a promotion gate, with metrics.
        reason: r.note,
    }
}

fn failure(f: reconcile::Failure) -> Failure {
    Failure {
        kind: f.target.kind.words(),
        name: f.target.name,
        arn: f.arn,
        reason: f.reason,
    }
}

/// Failed resources as states, so `status` shows them with their reason.
fn failed_states(failures: &[reconcile::Failure]) -> Vec<ResourceState> {
    failures
        .iter()
        .map(|f| ResourceState {
            kind: f.target.kind,
            name: f.target.name.clone(),
            status: "FAILED".into(),
            arn: f.arn.clone(),
            reason: Some(f.reason.clone()),
        })
        .collect()
}

/// Merges failure reasons into the listed resources (a failed resource may be listed too).
fn with_failures(mut resources: Vec<ResourceState>, failures: &[reconcile::Failure]) -> Vec<ResourceState> {
    for f in failed_states(failures) {
        match resources
            .iter_mut()
            .find(|r| r.kind == f.kind && r.name == f.name)
        {
            Some(r) => r.reason = f.reason,
            None => resources.push(f),
        }
    }
    resources
}

/// What a schedule's target asks of the planner.
fn scheduled_work(target: &Target) -> ScheduledWork {
    match target {
        Target::Import => ScheduledWork::Import,
        Target::Full { solution } => ScheduledWork::Train {
            solution: solution.clone(),
            mode: TrainingMode::Full,
        },
        Target::Update { solution } => ScheduledWork::Train {
            solution: solution.clone(),
            mode: TrainingMode::Update,
        },
        Target::BatchInference { solution, index } => ScheduledWork::Batch {
            kind: ResourceKind::BatchInferenceJob,
            solution: solution.clone(),
            index: *index,
        },
        Target::BatchSegment { solution, index } => ScheduledWork::Batch {
            kind: ResourceKind::BatchSegmentJob,
            solution: solution.clone(),
            index: *index,
        },
    }
}

/// One pass of the reconciler per call.
#[derive(Debug)]
pub struct PersonalizeReconciler {
    inner: Arc<Reconciler>,
}

impl PersonalizeReconciler {
    pub fn new(inner: Arc<Reconciler>) -> Self {
        Self { inner }
    }

    /// The reconciler for `client` (AWS or the built-in Personalize), reading data from `objects`,
    /// with the roles and pacing of `settings`, "now" from `clock` (the daemon's), and job names
    /// claimed in `store` before their creates (shared by the replicas), when given.
    pub fn from_settings(
        client: aws_sdk_personalize::Client,
        objects: Arc<dyn crate::objects::ObjectStore>,
        settings: &crate::settings::Settings,
        clock: Arc<dyn crate::store::Clock>,
        store: Option<Arc<dyn crate::store::StateStore>>,
    ) -> Self {
        let limiter = Arc::new(reconcile::RateLimiter::new(settings.reconcile.calls_per_second));
        let mut inner = Reconciler::new(
            client,
            objects,
            &settings.reconcile,
            &settings.personalize,
            limiter,
        )
        .with_clock(clock);
        if let Some(store) = store {
            inner = inner.with_job_claims(Arc::new(reconcile::StoreClaims(store)));
        }
        Self::new(Arc::new(inner))
    }
}

/// A teardown's remaining resources as states: schemas keep their names for the next pass.
fn remaining(steps: Vec<crate::plan::teardown::TeardownStep>) -> Vec<ResourceState> {
    steps
        .into_iter()
        .map(|s| ResourceState {
            kind: s.target.kind,
            name: s.target.name,
            status: if s.status.is_empty() {
                "PRESENT".to_string()
            } else {
                s.status
            },
            arn: Some(s.arn),
            reason: match s.action {
                crate::plan::teardown::TeardownAction::Keep { reason } => Some(reason),
                _ => None,
            },
        })
        .collect()
}

#[async_trait::async_trait]
impl GroupReconciler for PersonalizeReconciler {
    async fn teardown(
        &self,
        group: &str,
        schema_names: &[String],
        lease: &Arc<dyn crate::reconcile::LeaseGuard>,
        sink: &PassSink,
    ) -> Result<PassReport, PassError> {
        let mut forward = Forward { sink };
        let outcome = self
            .inner
            .teardown_pass(group, schema_names, lease, &mut forward)
            .await
            .map_err(|e| PassError::new(group, e))?;
        Ok(match outcome {
            reconcile::TeardownOutcome::Finished { kept } => PassReport {
                status: PassStatus::Converged,
                resources: remaining(kept),
                failures: Vec::new(),
            },
            reconcile::TeardownOutcome::Pending {
                next_poll_after,
                remaining: left,
                ..
            } => PassReport {
                status: PassStatus::Pending {
                    retry_after: next_poll_after,
                },
                resources: remaining(left),
                failures: Vec::new(),
            },
            reconcile::TeardownOutcome::Failed {
                failures,
                remaining: left,
            } => PassReport {
                status: PassStatus::Failed,
                resources: with_failures(remaining(left), &failures),
                failures: failures.into_iter().map(failure).collect(),
            },
        })
    }

    async fn pass(&self, input: PassInput<'_>, sink: &PassSink) -> Result<PassReport, PassError> {
        let report = crate::spec::load(&input.desired.text);
        let Some(spec) = report.spec.filter(|_| report.errors.is_empty()) else {
            // Valid at intake, invalid now (a stricter validator after an upgrade): nothing to apply.
            let reasons: Vec<String> = report.errors.iter().map(ToString::to_string).collect();
            return Ok(PassReport {
                status: PassStatus::Failed,
                resources: Vec::new(),
                failures: vec![Failure {
                    kind: "parameter file".into(),
                    name: input.desired.source.url.to_string(),
                    arn: None,
                    reason: reasons.join("; "),
                }],
            });
        };
        let mut forward = Forward { sink };
        let (run_start, work) = match input.scheduled {
            Some(run) => (run.fire, Some(scheduled_work(&run.target))),
            None => (input.desired.received_at, None),
        };
        let outcome = self
            .inner
            .scheduled_pass(
                &spec,
                &input.desired.source.url,
                run_start,
                work.as_ref(),
                Arc::clone(input.lease),
                &mut forward,
            )
            .await
            .map_err(|e| PassError::new(input.group, e))?;
        Ok(match outcome {
            PassOutcome::Converged { resources } => PassReport {
                status: PassStatus::Converged,
                resources: resources.into_iter().map(state).collect(),
                failures: Vec::new(),
            },
            PassOutcome::Pending {
                next_poll_after,
                waiting,
                failures,
            } => PassReport {
                status: PassStatus::Pending {
                    retry_after: next_poll_after,
                },
                resources: with_failures(
                    waiting
                        .into_iter()
                        .map(|Ref { kind: k, name }| ResourceState {
                            kind: k,
                            name,
                            status: "PENDING".into(),
                            arn: None,
                            reason: None,
                        })
                        .collect(),
                    &failures,
                ),
                failures: Vec::new(),
            },
            PassOutcome::Failed { failures, resources } => PassReport {
                status: PassStatus::Failed,
                resources: with_failures(resources.into_iter().map(state).collect(), &failures),
                failures: failures.into_iter().map(failure).collect(),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use tokio::sync::mpsc;

    use super::*;
    use crate::metrics::MemorySink;
    use crate::plan::Kind;
    use crate::store::ResourceKind;

    fn event(kind: Kind, status: &str, arn: Option<&str>) -> Event {
        Event {
            group: "shop".into(),
            kind,
            name: "n".into(),
            arn: arn.map(str::to_string),
            status: status.into(),
            elapsed_secs: Some(41.6),
            reason: None,
            metrics: None,
        }
    }

    #[test]
    fn events_become_changes_counters_and_solution_metrics() {
        let (tx, mut rx) = mpsc::channel(16);
        let metrics = Arc::new(MemorySink::new());
        let sink = PassSink::new("shop", tx, metrics.clone());
        let mut forward = Forward { sink: &sink };
        let version = "arn:aws:personalize:us-east-1:000000000000:solution/shop-up/abcd1234";
        forward.emit(event(Kind::SolutionVersion, "CREATE REQUESTED", Some(version)));
        forward.emit(event(Kind::SolutionVersion, "ACTIVE", Some(version)));
        forward.emit(event(Kind::Campaign, "ACTIVE", None));
        forward.emit(event(Kind::Filter, "RETRY LATER", Some("arn:f")));
        let mut with_metrics = event(Kind::SolutionVersion, "METRICS", Some(version));
        with_metrics.metrics = Some(BTreeMap::from([("coverage".to_string(), 0.25)]));
        forward.emit(with_metrics);

        assert_eq!(metrics.total("SolutionVersionCreated"), 1.0);
        let coverage: Vec<_> = metrics
            .data()
            .into_iter()
            .filter(|d| d.name == "coverage")
            .collect();
        assert_eq!(coverage.len(), 1);
        assert_eq!(
            coverage[0].dimensions,
            vec![
                ("DatasetGroup".to_string(), "shop".to_string()),
                ("Solution".to_string(), "shop-up".to_string()),
                ("SolutionVersion".to_string(), version.to_string()),
            ]
        );
        // Only Personalize statuses of resources with an ARN are state changes.
        let change = rx.try_recv().expect("one change");
        assert_eq!(change.kind, ResourceKind::SolutionVersion);
        assert_eq!(change.status, "ACTIVE");
        assert_eq!(change.duration_secs, Some(42));
        assert_eq!(change.dataset_group.as_deref(), Some("shop"));
        assert!(rx.try_recv().is_err());
    }

    #[test]
    fn failures_carry_their_reason_into_the_resources() {
        let failure = reconcile::Failure {
            target: Ref::new(Kind::SolutionVersion, "shop-up"),
            arn: None,
            reason: "too few interactions".into(),
        };
        let listed = vec![ResourceState {
            kind: ResourceKind::SolutionVersion,
            name: "shop-up".into(),
            status: "CREATE FAILED".into(),
            arn: Some("arn:v".into()),
            reason: None,
        }];
        let merged = with_failures(listed, std::slice::from_ref(&failure));
        assert_eq!(merged.len(), 1);
        assert_eq!(merged[0].status, "CREATE FAILED");
        assert_eq!(merged[0].reason.as_deref(), Some("too few interactions"));
        let added = with_failures(Vec::new(), std::slice::from_ref(&failure));
        assert_eq!(added[0].status, "FAILED");
        let f = super::failure(failure);
        assert_eq!(
            (f.kind.as_str(), f.name.as_str()),
            ("solution version", "shop-up")
        );
    }

    #[tokio::test]
    async fn a_file_that_no_longer_validates_fails_without_calling_personalize() {
        let config = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .endpoint_url("http://127.0.0.1:9")
            .build();
        let settings = crate::settings::Settings::load_with_env(None, Vec::new()).expect("defaults");
        let reconciler = PersonalizeReconciler::from_settings(
            aws_sdk_personalize::Client::new(&config),
            Arc::new(crate::objects::MemoryStore::new()),
            &settings,
            Arc::new(crate::store::SystemClock),
            None,
        );
        let desired = crate::store::Desired {
            generation: 1,
            text: r#"{"datasetGroup": {"serviceConfig": {"name": "shop", "bogus": 1}}}"#.into(),
            source: crate::store::DesiredSource {
                url: crate::objects::ObjectUrl::new("data", "train/shop/config.json"),
                etag: None,
                version_id: None,
                sequencer: None,
                last_modified: None,
            },
            received_at: chrono::Utc::now(),
            run_timestamp: "2026_01_01_00_00_00".into(),
        };
        let (tx, _rx) = mpsc::channel(1);
        let sink = PassSink::new("shop", tx, Arc::new(MemorySink::new()));
        let unguarded: Arc<dyn crate::reconcile::LeaseGuard> = Arc::new(crate::reconcile::Unguarded);
        let input = PassInput {
            group: "shop",
            desired: &desired,
            previous: None,
            scheduled: None,
            lease: &unguarded,
        };
        let report = reconciler.pass(input, &sink).await.expect("a report");
        assert_eq!(report.status, PassStatus::Failed);
        assert_eq!(report.failures[0].kind, "parameter file");
        assert!(
            report.failures[0].reason.contains("bogus"),
            "{:?}",
            report.failures
        );
        assert_eq!(reconciler.inner.calls(), 0);
    }
}
