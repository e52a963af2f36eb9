//! The daemon's seam: [`GroupReconciler`] over a [`Reconciler`], so `run` and `local` reconcile for real.
//!
//! A desired generation is one run: its `run_timestamp` is the run start, so every pass and every
//! replica names the same jobs. Events become `ResourceChange`s, creates become `<Kind>Created`
//! counters, and solution metrics become data points.

use std::sync::Arc;

use chrono::{NaiveDateTime, SubsecRound};

use super::{Event, PassOutcome, Reconciler};
use crate::daemon::{GroupReconciler, PassError, PassInput, PassReport, PassSink, PassStatus};
use crate::notify::ResourceChange;
use crate::notify::message::Failure as RunFailure;
use crate::plan::Kind;
use crate::spec::names::TIMESTAMP_FORMAT;
use crate::store::{ResourceKind, ResourceState};

/// The store's and notifier's name of a kind.
pub fn resource_kind(kind: Kind) -> ResourceKind {
    match kind {
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

/// [`Reconciler`] behind the daemon's [`GroupReconciler`] trait.
#[derive(Debug, Clone)]
pub struct DaemonReconciler {
    inner: Arc<Reconciler>,
}

impl DaemonReconciler {
    pub fn new(inner: Arc<Reconciler>) -> Self {
        Self { inner }
    }
}

fn forward(group: &str, event: Event, sink: &PassSink) {
    let kind = resource_kind(event.kind);
    if event.status == "CREATE REQUESTED" {
        sink.created(kind);
    }
    if let (Some(metrics), Some(arn)) = (&event.metrics, &event.arn) {
        let pairs: Vec<(String, f64)> = metrics.iter().map(|(k, v)| (k.clone(), *v)).collect();
        for datum in crate::metrics::solution_metrics(group, &event.name, arn, &pairs) {
            sink.metric(datum);
        }
        return;
    }
    sink.resource_changed(ResourceChange {
        kind,
        arn: event.arn.unwrap_or_else(|| event.name.clone()),
        status: event.status,
        duration_secs: event.elapsed_secs.map(|s| s as u64).filter(|s| *s > 0),
        reason: event.reason,
        dataset_group: Some(group.to_string()),
    });
}

fn states(outcome: &PassOutcome) -> Vec<ResourceState> {
    let (resources, failures) = match outcome {
        PassOutcome::Converged { resources } => (resources.clone(), Vec::new()),
        PassOutcome::Failed { resources, failures } => (resources.clone(), failures.clone()),
        PassOutcome::Pending {
            waiting, failures, ..
        } => (
            waiting
                .iter()
                .map(|r| super::ResourceState {
                    target: r.clone(),
                    arn: None,
                    status: "PENDING".into(),
                })
                .collect(),
            failures.clone(),
        ),
    };
    resources
        .into_iter()
        .map(|r| ResourceState {
            kind: resource_kind(r.target.kind),
            reason: failures
                .iter()
                .find(|f| f.target == r.target)
                .map(|f| f.reason.clone()),
            name: r.target.name,
            status: r.status,
            arn: r.arn,
        })
        .collect()
}

#[async_trait::async_trait]
impl GroupReconciler for DaemonReconciler {
    async fn pass(&self, input: PassInput<'_>, sink: &PassSink) -> Result<PassReport, PassError> {
        let group = input.group.to_string();
        let report = crate::spec::load(&input.desired.text);
        let Some(spec) = report.spec else {
            // Intake validates before recording, so this is a file from an older validator.
            let failures = report
                .errors
                .iter()
                .map(|e| RunFailure {
                    kind: "parameter file".into(),
                    name: input.desired.source.url.to_string(),
                    arn: None,
                    reason: format!("{}: {}", e.path, e.message),
                })
                .collect();
            return Ok(PassReport {
                status: PassStatus::Failed,
                resources: Vec::new(),
                failures,
            });
        };
        let run_start = NaiveDateTime::parse_from_str(&input.desired.run_timestamp, TIMESTAMP_FORMAT)
            .map(|t| t.and_utc())
            .unwrap_or_else(|_| input.desired.received_at.trunc_subsecs(0));
        let mut events: Vec<Event> = Vec::new();
        let outcome = self
            .inner
            .pass(&spec, &input.desired.source.url, run_start, &mut events)
            .await
            .map_err(|e| PassError {
                group: group.clone(),
                message: e.to_string(),
            })?;
        for e in events {
            forward(&group, e, sink);
        }
        let resources = states(&outcome);
        let (status, failures) = match &outcome {
            PassOutcome::Converged { .. } => (PassStatus::Converged, Vec::new()),
            PassOutcome::Pending { next_poll_after, .. } => (
                PassStatus::Pending {
                    retry_after: *next_poll_after,
                },
                Vec::new(),
            ),
            PassOutcome::Failed { failures, .. } => (
                PassStatus::Failed,
                failures
                    .iter()
                    .map(|f| RunFailure {
                        kind: resource_kind(f.target.kind).title().to_lowercase(),
                        name: f.target.name.clone(),
                        arn: f.arn.clone(),
                        reason: f.reason.clone(),
                    })
                    .collect(),
            ),
        };
        Ok(PassReport {
            status,
            resources,
            failures,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_its_store_name() {
        for k in Kind::ALL {
            assert_eq!(
                resource_kind(k).title().to_lowercase().replace(' ', "-"),
                k.as_str()
            );
        }
    }
}
