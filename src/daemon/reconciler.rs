//! The seam between the daemon and the reconciler: one pass over one group's desired generation.
//!
//! The daemon owns leases, scheduling, observed-state writes and notifications; a [`GroupReconciler`]
//! only observes Personalize, acts, and says how far the group got. Tests drive the daemon with fakes.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::metrics::{Counter, Datum, MetricsSink};
use crate::notify::ResourceChange;
use crate::notify::message::Failure;
use crate::reconcile::LeaseGuard;
use crate::store::{Desired, Observed, ResourceKind, ResourceState};

/// What a pass works on.
#[derive(Debug, Clone, Copy)]
pub struct PassInput<'a> {
    pub group: &'a str,
    pub desired: &'a Desired,
    /// What the previous pass recorded (possibly for an older generation).
    pub previous: Option<&'a Observed>,
    /// The schedule fire this pass performs, if any (else the pass converges the file).
    pub scheduled: Option<&'a ScheduledRun>,
    /// The turn's lease, checked before every Personalize call that changes something.
    pub lease: &'a Arc<dyn LeaseGuard>,
}

/// A schedule's fire whose action a worker performs (`begin_fire` recorded it as pending).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduledRun {
    pub schedule: String,
    /// The fire instant: the action's one-shot names are made from it.
    pub fire: chrono::DateTime<chrono::Utc>,
    pub target: crate::schedule::Target,
}

/// How far the group got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PassStatus {
    /// Everything the generation asks for is in place.
    Converged,
    /// Work is under way; call again after `retry_after` (zero: at once, progress is possible now).
    Pending { retry_after: Duration },
    /// Resources failed; the generation cannot converge without a new file (or a resync retry).
    Failed,
}

/// The result of one pass.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct PassReport {
    pub status: PassStatus,
    /// Every resource the generation declares, as observed at the end of the pass.
    pub resources: Vec<ResourceState>,
    /// For [`PassStatus::Failed`]: each failed resource with Personalize's reason.
    pub failures: Vec<Failure>,
}

/// A pass that could not complete (Personalize or S3 unreachable, throttled beyond retries, …). The
/// daemon records the message and tries again later; nothing is reported to the user as failed.
#[derive(Debug, Clone)]
pub struct PassError {
    pub group: String,
    /// What went wrong, as recorded for the group (`last_error`).
    pub message: String,
    /// The error behind `message`, when the pass had one: its chain (SDK error, I/O error, …) stays
    /// available to whoever logs or inspects the failure.
    pub cause: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

impl std::fmt::Display for PassError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "pass over dataset group {} did not complete: {}",
            self.group, self.message
        )
    }
}

impl std::error::Error for PassError {
    // By hand rather than `thiserror`: the source is the cause itself, not the `Arc` around it, so
    // callers can downcast it.
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.cause
            .as_deref()
            .map(|cause| cause as &(dyn std::error::Error + 'static))
    }
}

impl PassError {
    /// A pass over `group` stopped by `cause`.
    pub fn new(group: impl Into<String>, cause: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self {
            group: group.into(),
            message: cause.to_string(),
            cause: Some(Arc::new(cause)),
        }
    }
}

/// One pass over a group: observe, act on what is ready, report.
///
/// # Assumptions
/// A pass may be dropped at any `.await` (lease lost, hard shutdown) and may run again on another
/// replica, so every action must be idempotent (deterministic names, adopt on "already exists").
#[async_trait::async_trait]
pub trait GroupReconciler: Send + Sync {
    async fn pass(&self, input: PassInput<'_>, sink: &PassSink) -> Result<PassReport, PassError>;

    /// One teardown pass over `group` (its parameter file was removed): deletes what is ready,
    /// dependants first. `Converged` means everything is gone; `resources` are what remains (the
    /// schemas among them keep their names for the next pass). `schema_names` are the schemas the
    /// group's file declared; `lease` is checked before every deletion, as in [`Self::pass`]. A
    /// reconciler that cannot tear down refuses every call.
    async fn teardown(
        &self,
        group: &str,
        schema_names: &[String],
        lease: &Arc<dyn LeaseGuard>,
        sink: &PassSink,
    ) -> Result<PassReport, PassError> {
        let _ = (schema_names, lease, sink);
        Err(PassError::new(
            group,
            std::io::Error::other("this reconciler cannot tear dataset groups down"),
        ))
    }
}

/// Where a pass reports what happened while it ran: resource state changes, creates and solution
/// metrics. Never blocks: events are queued for a background notifier and dropped (and logged) if the
/// queue is full, because a slow SNS must not stall reconciliation.
#[derive(Debug, Clone)]
pub struct PassSink {
    group: String,
    changes: mpsc::Sender<ResourceChange>,
    metrics: Arc<dyn MetricsSink>,
}

impl PassSink {
    pub fn new(
        group: impl Into<String>,
        changes: mpsc::Sender<ResourceChange>,
        metrics: Arc<dyn MetricsSink>,
    ) -> Self {
        Self {
            group: group.into(),
            changes,
            metrics,
        }
    }

    /// The group the pass works on.
    pub fn group(&self) -> &str {
        &self.group
    }

    /// A resource reached a new status.
    pub fn resource_changed(&self, mut change: ResourceChange) {
        if change.dataset_group.is_none() {
            change.dataset_group = Some(self.group.clone());
        }
        if let Err(e) = self.changes.try_send(change) {
            tracing::warn!(dataset_group = %self.group, error = %e, "resource event dropped: the notifier is behind");
        }
    }

    /// A create call succeeded (`<Kind>Created`).
    pub fn created(&self, kind: ResourceKind) {
        self.metrics.count(Counter::Created(kind));
    }

    /// A data point, e.g. the offline metrics of a new ACTIVE solution version.
    pub fn metric(&self, datum: Datum) {
        self.metrics.record(datum);
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    #[test]
    fn a_pass_error_keeps_its_cause() {
        let cause = std::io::Error::new(std::io::ErrorKind::TimedOut, "Personalize did not answer");
        let e = PassError::new("g1", cause);
        assert_eq!(e.message, "Personalize did not answer");
        let source = e.source().expect("the cause is kept");
        let io = source
            .downcast_ref::<std::io::Error>()
            .expect("the original error, not its text");
        assert_eq!(io.kind(), std::io::ErrorKind::TimedOut);
        assert!(e.to_string().contains("g1"), "{e}");
    }
}
