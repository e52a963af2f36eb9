//! What a worker does with a removal generation (the group's parameter file was removed from the
//! bucket): by default nothing but telling the user; with `daemon.delete_removed_groups`, the teardown
//! of the group once `daemon.delete_grace_secs` have passed, unless the file came back meanwhile.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::Daemon;
use super::outbox::{generation_subject, notification_id};
use super::reconciler::{PassSink, PassStatus};
use super::turn::{TurnEnd, after, failure_summary, location_of};
use crate::notify::message::{Removal, removal_message};
use crate::reconcile::LeaseGuard;
use crate::store::{Desired, Lease, Observed, ObservedWrite, ResourceKind, StoreError};

/// What the daemon does when a group's parameter file is removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RemovalPolicy {
    /// Nothing is deleted: a log line and a note to the user ("config removed; resources kept").
    #[default]
    Keep,
    /// The group is torn down this long after the removal, unless the file comes back first.
    TearDownAfter(Duration),
}

impl RemovalPolicy {
    /// From `daemon.delete_removed_groups` and `daemon.delete_grace_secs`.
    pub fn from_settings(s: &crate::settings::DaemonSettings) -> Self {
        if s.delete_removed_groups {
            Self::TearDownAfter(Duration::from_secs(s.delete_grace_secs))
        } else {
            Self::Keep
        }
    }
}

impl Daemon {
    /// One turn's work on a removal generation. `previous` is what the last turn recorded: for this
    /// generation it says the user was already told (so resyncs tell nothing twice), and its schemas
    /// name what a teardown removes last.
    pub(crate) async fn removed_file(
        &self,
        group: &str,
        lease: &Lease,
        guard: &Arc<dyn LeaseGuard>,
        desired: &Desired,
        previous: Option<Observed>,
    ) -> Result<TurnEnd, StoreError> {
        let now = self.clock.now();
        let told = previous
            .as_ref()
            .is_some_and(|p| p.generation == desired.generation);
        let resources = previous.as_ref().map(|p| p.resources.clone()).unwrap_or_default();
        let location = self.config.location.clone();
        let subject = generation_subject(desired);
        let announced = Observed::announced_for(previous.as_ref(), desired.generation);
        let record = |last_error: String, resources| Observed {
            announced: announced.clone(),
            ..removal_observed(desired, resources, last_error, now)
        };
        let at = match self.removal {
            RemovalPolicy::Keep => {
                let mut observed = record(
                    "config removed; resources kept (daemon.delete_removed_groups is off)".into(),
                    resources,
                );
                if told {
                    self.record_teardown(lease, &observed, None).await?;
                } else {
                    tracing::info!(generation = desired.generation, file = %desired.source.url, "config removed; resources kept (daemon.delete_removed_groups is off)");
                    let note = removal_message(group, &location, &Removal::Kept);
                    let id = notification_id(group, &subject, "CONFIG REMOVED: kept");
                    observed.remember_announced(&id);
                    self.record_and_announce(lease, &observed, None, ObservedWrite::KEEP_LEASE, note, &id)
                        .await?;
                }
                return Ok(TurnEnd::Done);
            }
            RemovalPolicy::TearDownAfter(grace) => after(desired.received_at, grace),
        };
        if now < at {
            let mut observed = record(
                format!(
                    "config removed; the group is deleted at {} unless the file comes back",
                    at.to_rfc3339()
                ),
                resources,
            );
            if told {
                self.record_teardown(lease, &observed, Some(at)).await?;
            } else {
                tracing::info!(generation = desired.generation, teardown_at = %at, "config removed; teardown scheduled");
                let note = removal_message(group, &location, &Removal::Scheduled(at));
                let id = notification_id(
                    group,
                    &subject,
                    &format!("CONFIG REMOVED: deleted at {}", at.timestamp_millis()),
                );
                observed.remember_announced(&id);
                self.record_and_announce(lease, &observed, Some(at), ObservedWrite::KEEP_LEASE, note, &id)
                    .await?;
            }
            return Ok(TurnEnd::Done);
        }
        let carried = record(String::new(), resources);
        self.tear_down(group, lease, guard, desired, carried, at).await
    }

    /// One teardown pass over the group whose file was removed at `since`, its schedules deleted
    /// first. `carried` is the last observation of this removal generation: its resources name the
    /// schemas to remove last, its [`Observed::announced`] what the user was told.
    async fn tear_down(
        &self,
        group: &str,
        lease: &Lease,
        guard: &Arc<dyn LeaseGuard>,
        desired: &Desired,
        carried: Observed,
        since: DateTime<Utc>,
    ) -> Result<TurnEnd, StoreError> {
        let Observed {
            resources, announced, ..
        } = carried;
        // Nothing fires on a group on its way out.
        for s in self.store.schedules(Some(group)).await? {
            self.store.delete_schedule(lease, &s.name).await?;
            self.schedules_changed.notify_waiters();
        }
        let schemas: Vec<String> = resources
            .iter()
            .filter(|r| r.kind == ResourceKind::Schema)
            .map(|r| r.name.clone())
            .collect();
        let Some(changes) = self.change_sender() else {
            return Ok(TurnEnd::Stopped);
        };
        let sink = PassSink::new(group, changes, self.metrics.clone());
        let now = self.clock.now();
        let result = self.reconciler.teardown(group, &schemas, guard, &sink).await;
        if guard.check().is_err() {
            // Deletions decided under a lost lease were not sent; the new owner carries on.
            return Ok(TurnEnd::LeaseLost);
        }
        let observed = |resources, last_error: String| Observed {
            announced: announced.clone(),
            ..removal_observed(desired, resources, last_error, now)
        };
        let report = match result {
            Ok(report) => report,
            Err(e) => {
                tracing::warn!(error = %e, "teardown pass did not complete; retrying later");
                let retry = Some(after(now, self.config.error_retry));
                self.record_teardown(lease, &observed(resources, e.message), retry)
                    .await?;
                return Ok(TurnEnd::Done);
            }
        };
        let location = location_of(&report, &self.config.location);
        match report.status {
            PassStatus::Converged => {
                self.store.delete_group(lease).await?;
                tracing::info!(since = %since, "dataset group deleted: its parameter file was removed");
                let id = notification_id(group, &generation_subject(desired), "CONFIG REMOVED: deleted");
                self.announce(removal_message(group, &location, &Removal::Deleted), &id)
                    .await;
                Ok(TurnEnd::Forgotten)
            }
            PassStatus::Pending { retry_after } => {
                let left = with_schemas(report.resources, resources);
                let pending = observed(left, "config removed; the group is being deleted".into());
                self.record_teardown(lease, &pending, Some(after(now, retry_after)))
                    .await?;
                Ok(TurnEnd::Done)
            }
            PassStatus::Failed => {
                let summary = failure_summary(&report);
                let failed = observed(report.resources.clone(), summary.clone());
                let note = removal_message(group, &location, &Removal::Failed(report.failures.clone()));
                let id = notification_id(
                    group,
                    &generation_subject(desired),
                    &format!("CONFIG REMOVED: teardown failed: {summary}"),
                );
                self.teardown_failed(group, lease, failed, &summary, note, &id)
                    .await?;
                Ok(TurnEnd::Done)
            }
        }
    }

    /// Records a teardown pass's observation and next due time; the lease stays held (the turn
    /// releases it).
    async fn record_teardown(
        &self,
        lease: &Lease,
        observed: &Observed,
        next_due: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        self.store
            .put_observed(lease, observed, next_due, ObservedWrite::KEEP_LEASE)
            .await
    }

    /// Records a teardown that failed; the user is told once per distinct failure (`id`, see
    /// [`notification_id`]).
    async fn teardown_failed(
        &self,
        group: &str,
        lease: &Lease,
        mut failed: Observed,
        summary: &str,
        note: crate::notify::message::Message,
        id: &str,
    ) -> Result<(), StoreError> {
        let previous_error = self
            .store
            .group(group)
            .await?
            .and_then(|g| g.observed)
            .and_then(|o| o.last_error);
        if failed.has_announced(id) || previous_error.as_deref() == Some(summary) {
            return self.record_teardown(lease, &failed, None).await;
        }
        tracing::warn!(failures = %summary, "dataset group not deleted whole");
        failed.remember_announced(id);
        self.record_and_announce(lease, &failed, None, ObservedWrite::KEEP_LEASE, note, id)
            .await
    }
}

/// What a teardown pass left, with the schemas the group had: a schema still listed keeps its name
/// for the next pass, which deletes it last.
fn with_schemas(
    mut left: Vec<crate::store::ResourceState>,
    had: Vec<crate::store::ResourceState>,
) -> Vec<crate::store::ResourceState> {
    for r in had.into_iter().filter(|r| r.kind == ResourceKind::Schema) {
        if !left.iter().any(|l| l.kind == r.kind && l.name == r.name) {
            left.push(r);
        }
    }
    left
}

/// What a worker records of a removal generation: not converged, and why.
fn removal_observed(
    desired: &Desired,
    resources: Vec<crate::store::ResourceState>,
    last_error: String,
    now: DateTime<Utc>,
) -> Observed {
    Observed {
        generation: desired.generation,
        converged: false,
        resources,
        last_error: Some(last_error),
        updated_at: now,
        destroyed_at: None,
        announced: Vec::new(),
    }
}
