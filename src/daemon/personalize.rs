//! The daemon's [`GroupReconciler`] backed by the reconciler (`reconcile::Reconciler`): parses the
//! generation's parameter file, runs one pass, and turns its events and outcome into the daemon's.

use std::sync::Arc;

use super::reconciler::{GroupReconciler, PassError, PassInput, PassReport, PassSink, PassStatus};
use crate::metrics::solution_metrics;
use crate::notify::ResourceChange;
use crate::notify::message::Failure;
use crate::plan::{Kind, Ref};
use crate::reconcile::{self, Event, EventSink, PassOutcome, Reconciler};
use crate::store::{ResourceKind, ResourceState};

/// Statuses that are the reconciler's own words, not Personalize's: not resource state changes.
const OWN_WORDS: [&str; 8] = [
    "CREATE REQUESTED",
    "UPDATE REQUESTED",
    "RETRY LATER",
    "SKIPPED",
    "CONFLICT",
    "FAILED",
    "DEPENDENCY FAILED",
    "METRICS",
];

fn kind(k: Kind) -> ResourceKind {
    match k {
        Kind::DatasetGroup => ResourceKind::DatasetGroup,
        Kind::Schema => ResourceKind::Schema,
        Kind::Dataset => ResourceKind::Dataset,
        Kind::DatasetImportJob => ResourceKind::DatasetImportJob,
        Kind::EventTracker => ResourceKind::EventTracker,
        Kind::Filter => ResourceKind::Filter,
        Kind::Solution => ResourceKind::Solution,
        Kind::SolutionVersion => ResourceKind::SolutionVersion,
        Kind::Campaign => ResourceKind::Campaign,
        Kind::Recommender => ResourceKind::Recommender,
        Kind::BatchInferenceJob => ResourceKind::BatchInferenceJob,
        Kind::BatchSegmentJob => ResourceKind::BatchSegmentJob,
    }
}

/// Forwards the reconciler's events to the daemon's sink.
struct Forward<'a> {
    sink: &'a PassSink,
}

impl EventSink for Forward<'_> {
    fn emit(&mut self, event: Event) {
        let k = kind(event.kind);
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
        kind: kind(r.target.kind),
        name: r.target.name,
        status: r.status,
        arn: r.arn,
        reason: None,
    }
}

fn failure(f: reconcile::Failure) -> Failure {
    Failure {
        kind: kind(f.target.kind).words(),
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
            kind: kind(f.target.kind),
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
    /// with the roles and pacing of `settings`.
    pub fn from_settings(
        client: aws_sdk_personalize::Client,
        objects: Arc<dyn crate::objects::ObjectStore>,
        settings: &crate::settings::Settings,
    ) -> Self {
        let limiter = Arc::new(reconcile::RateLimiter::new(settings.reconcile.calls_per_second));
        Self::new(Arc::new(Reconciler::new(
            client,
            objects,
            &settings.reconcile,
            &settings.personalize,
            limiter,
        )))
    }
}

#[async_trait::async_trait]
impl GroupReconciler for PersonalizeReconciler {
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
        let outcome = self
            .inner
            .pass(
                &spec,
                &input.desired.source.url,
                input.desired.received_at,
                &mut forward,
            )
            .await
            .map_err(|e| PassError {
                group: input.group.to_string(),
                message: e.to_string(),
            })?;
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
                            kind: kind(k),
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
