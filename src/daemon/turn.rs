//! One worker turn on one dataset group: take the lease, run passes until the group converges, fails
//! or waits, record what was observed (fenced by the lease), notify, release.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use super::reconciler::{PassInput, PassReport, PassSink, PassStatus};
use super::{Daemon, DaemonStats};
use crate::metrics::Counter;
use crate::notify::message::{Location, RunOutcome, run_message};
use crate::store::{Lease, LeaseGrant, Observed, ResourceKind, StoreError};

/// How a turn ended, for the dispatcher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TurnEnd {
    /// Done for now; the group's next due time is recorded.
    Done,
    /// Another replica holds the lease until then; do not ask again before.
    HeldElsewhere { until: DateTime<Utc> },
    /// The lease was lost (expired or taken) mid-turn; the new owner carries on.
    LeaseLost,
    /// The state store failed; the group stays due and is retried on the next dispatch.
    StoreFailed,
    /// Shutdown stopped the turn before a pass or abandoned one past the grace period.
    Stopped,
}

/// Why the pass loop stopped early.
enum Stop {
    Lost,
    Store(StoreError),
}

impl From<StoreError> for Stop {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Fenced { .. } => Stop::Lost,
            other => Stop::Store(other),
        }
    }
}

fn after(now: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(d)
        .ok()
        .and_then(|d| now.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// The failure summary stored as `last_error`; equal summaries for one generation mean the user was
/// already told.
pub(crate) fn failure_summary(report: &PassReport) -> String {
    if report.failures.is_empty() {
        return "the reconciler reported a failure without naming a resource".into();
    }
    report
        .failures
        .iter()
        .map(|f| format!("{} {} failed: {}", f.kind, f.name, f.reason))
        .collect::<Vec<_>>()
        .join("; ")
}

/// `arn:<partition>:personalize:<region>:<account>:dataset-group/<name>` → where the group lives.
pub(crate) fn location_of(report: &PassReport, fallback: &Location) -> Location {
    report
        .resources
        .iter()
        .filter(|r| r.kind == ResourceKind::DatasetGroup)
        .filter_map(|r| r.arn.as_deref())
        .find_map(|arn| {
            let parts: Vec<&str> = arn.splitn(6, ':').collect();
            (parts.len() == 6 && parts[0] == "arn" && !parts[3].is_empty() && !parts[4].is_empty()).then(
                || Location {
                    partition: parts[1].to_string(),
                    region: parts[3].to_string(),
                    account: parts[4].to_string(),
                },
            )
        })
        .unwrap_or_else(|| fallback.clone())
}

impl Daemon {
    /// Runs one turn on `group`. `shutdown` stops the turn at the next safe point (between passes);
    /// `hard_stop` abandons a pass in flight.
    pub(crate) async fn turn(
        &self,
        group: &str,
        shutdown: &CancellationToken,
        hard_stop: &CancellationToken,
    ) -> TurnEnd {
        let lease = match self
            .store
            .acquire_lease(group, &self.config.owner, self.config.lease_duration)
            .await
        {
            Ok(LeaseGrant::Acquired(lease)) => lease,
            Ok(LeaseGrant::Held { owner, expires_at }) => {
                tracing::debug!(holder = %owner, until = %expires_at, "the group is owned by another replica");
                return TurnEnd::HeldElsewhere { until: expires_at };
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot take the lease");
                return TurnEnd::StoreFailed;
            }
        };
        tracing::debug!(epoch = lease.epoch, "lease taken");
        let held = Arc::new(Mutex::new(lease));
        let end = tokio::select! {
            end = self.passes(group, &held, shutdown) => end,
            () = self.keep_lease(&held) => {
                tracing::warn!("lease lost while working; stopping");
                return TurnEnd::LeaseLost;
            }
            () = hard_stop.cancelled() => {
                tracing::warn!("shutdown grace period over; abandoning the pass (it resumes after restart)");
                TurnEnd::Stopped
            }
        };
        if end != TurnEnd::LeaseLost {
            let lease = held.lock().unwrap_or_else(PoisonError::into_inner).clone();
            match self.store.release_lease(&lease).await {
                Ok(()) => tracing::debug!(epoch = lease.epoch, "lease released"),
                Err(e) => tracing::warn!(error = %e, "lease not released; it will expire"),
            }
        }
        end
    }

    /// Renews the lease every third of its duration; returns only when it is lost (fenced, or not
    /// renewed before it expired).
    async fn keep_lease(&self, held: &Mutex<Lease>) {
        let period = (self.config.lease_duration / 3).max(Duration::from_millis(50));
        loop {
            tokio::time::sleep(period).await;
            let current = held.lock().unwrap_or_else(PoisonError::into_inner).clone();
            match self.store.renew_lease(&current, self.config.lease_duration).await {
                Ok(renewed) => *held.lock().unwrap_or_else(PoisonError::into_inner) = renewed,
                Err(StoreError::Fenced { .. }) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "lease not renewed; retrying");
                    if !current.is_valid() {
                        return;
                    }
                }
            }
        }
    }

    /// Whether the held lease is still valid: judged on the monotonic clock with the store's clock-skew
    /// margin ([`Lease::is_valid`]), so a replica whose clock runs ahead cannot have taken it over.
    fn lease_valid(held: &Mutex<Lease>) -> bool {
        held.lock().unwrap_or_else(PoisonError::into_inner).is_valid()
    }

    async fn passes(&self, group: &str, held: &Mutex<Lease>, shutdown: &CancellationToken) -> TurnEnd {
        match self.pass_loop(group, held, shutdown).await {
            Ok(end) => end,
            Err(Stop::Lost) => TurnEnd::LeaseLost,
            Err(Stop::Store(e)) => {
                tracing::warn!(error = %e, "state store failed during the turn");
                TurnEnd::StoreFailed
            }
        }
    }

    async fn pass_loop(
        &self,
        group: &str,
        held: &Mutex<Lease>,
        shutdown: &CancellationToken,
    ) -> Result<TurnEnd, Stop> {
        let mut passes = 0u32;
        loop {
            if shutdown.is_cancelled() {
                return Ok(TurnEnd::Stopped);
            }
            if !Self::lease_valid(held) {
                return Err(Stop::Lost);
            }
            let lease = held.lock().unwrap_or_else(PoisonError::into_inner).clone();
            let Some(state) = self.store.group(group).await? else {
                return Ok(TurnEnd::Done);
            };
            let Some(desired) = state.desired else {
                // Marked due (resync, operator) but no parameter file was ever recorded: clear the mark.
                let observed = Observed {
                    generation: 0,
                    converged: false,
                    resources: Vec::new(),
                    last_error: Some("no parameter file has been recorded for this dataset group".into()),
                    updated_at: self.clock.now(),
                };
                self.store.put_observed(&lease, &observed, None).await?;
                return Ok(TurnEnd::Done);
            };
            if passes == 0 {
                self.sync_schedules(&lease, &desired).await?;
            }
            let scheduled = self.pending_action(group).await?;
            let previous = state.observed;
            let Some(changes) = self.change_sender() else {
                return Ok(TurnEnd::Stopped);
            };
            let sink = PassSink::new(group, changes, self.metrics.clone());
            passes += 1;
            DaemonStats::bump(&self.stats.passes);
            let started = std::time::Instant::now();
            let result = self
                .reconciler
                .pass(
                    PassInput {
                        group,
                        desired: &desired,
                        previous: previous.as_ref(),
                        scheduled: scheduled.as_ref(),
                    },
                    &sink,
                )
                .await;
            tracing::debug!(
                generation = desired.generation,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "pass done"
            );
            let now = self.clock.now();
            let lease = held.lock().unwrap_or_else(PoisonError::into_inner).clone();
            let report = match result {
                Ok(report) => report,
                Err(e) => {
                    tracing::warn!(generation = desired.generation, error = %e, "pass did not complete; retrying later");
                    let observed = Observed {
                        generation: desired.generation,
                        converged: false,
                        resources: previous.map(|p| p.resources).unwrap_or_default(),
                        last_error: Some(e.message),
                        updated_at: now,
                    };
                    self.store
                        .put_observed(&lease, &observed, Some(after(now, self.config.error_retry)))
                        .await?;
                    return Ok(TurnEnd::Done);
                }
            };
            if let Some(run) = &scheduled {
                match &report.status {
                    PassStatus::Converged | PassStatus::Failed => {
                        let failed = report.status == PassStatus::Failed;
                        self.finish_scheduled(group, run, &report, failed).await?;
                        if passes < self.config.max_passes_per_turn {
                            continue;
                        }
                        // Out of passes: come back at once for the rest (another action, the file).
                        let observed = previous.unwrap_or_else(|| Observed {
                            generation: 0,
                            converged: false,
                            resources: Vec::new(),
                            last_error: None,
                            updated_at: now,
                        });
                        self.store.put_observed(&lease, &observed, Some(now)).await?;
                        return Ok(TurnEnd::Done);
                    }
                    PassStatus::Pending { retry_after } => {
                        // The action is under way: keep what the file's last pass observed (its
                        // notifications depend on it) and come back when the reconciler asks.
                        let again_now = retry_after.is_zero() && passes < self.config.max_passes_per_turn;
                        let next = if again_now { now } else { after(now, *retry_after) };
                        let observed = previous.unwrap_or_else(|| Observed {
                            generation: 0,
                            converged: false,
                            resources: report.resources.clone(),
                            last_error: None,
                            updated_at: now,
                        });
                        self.store.put_observed(&lease, &observed, Some(next)).await?;
                        if !again_now {
                            return Ok(TurnEnd::Done);
                        }
                        continue;
                    }
                }
            }
            let same_generation = previous.as_ref().filter(|p| p.generation == desired.generation);
            match &report.status {
                PassStatus::Converged => {
                    let observed = Observed {
                        generation: desired.generation,
                        converged: true,
                        resources: report.resources.clone(),
                        last_error: None,
                        updated_at: now,
                    };
                    if same_generation.is_some_and(|p| p.converged) {
                        self.store.put_observed(&lease, &observed, None).await?;
                    } else {
                        // The announcement is stored with the state in one fenced write: a replica
                        // that lost the group announces nothing, a crash after it loses nothing.
                        let location = location_of(&report, &self.config.location);
                        let message = run_message(group, &location, &RunOutcome::Complete);
                        self.record_and_announce(&lease, &observed, None, message).await?;
                        tracing::info!(generation = desired.generation, "converged");
                        self.metrics.count(Counter::JobSuccess);
                        DaemonStats::bump(&self.stats.completed);
                    }
                    return Ok(TurnEnd::Done);
                }
                PassStatus::Failed => {
                    let summary = failure_summary(&report);
                    let observed = Observed {
                        generation: desired.generation,
                        converged: false,
                        resources: report.resources.clone(),
                        last_error: Some(summary.clone()),
                        updated_at: now,
                    };
                    let told = same_generation
                        .is_some_and(|p| !p.converged && p.last_error.as_deref() == Some(summary.as_str()));
                    if told {
                        self.store.put_observed(&lease, &observed, None).await?;
                    } else {
                        let location = location_of(&report, &self.config.location);
                        let outcome = RunOutcome::Failed(report.failures.clone());
                        let message = run_message(group, &location, &outcome);
                        self.record_and_announce(&lease, &observed, None, message).await?;
                        tracing::warn!(generation = desired.generation, failures = %summary, "failed");
                        self.metrics.count(Counter::JobFailure);
                        DaemonStats::bump(&self.stats.failed);
                    }
                    return Ok(TurnEnd::Done);
                }
                PassStatus::Pending { retry_after } => {
                    let observed = Observed {
                        generation: desired.generation,
                        converged: false,
                        resources: report.resources.clone(),
                        last_error: None,
                        updated_at: now,
                    };
                    let again_now = retry_after.is_zero() && passes < self.config.max_passes_per_turn;
                    // Pending with a wait: record the next poll time and free the worker for other groups.
                    let next = if again_now { now } else { after(now, *retry_after) };
                    self.store.put_observed(&lease, &observed, Some(next)).await?;
                    if !again_now {
                        return Ok(TurnEnd::Done);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::ResourceState;

    fn report(arn: Option<&str>) -> PassReport {
        PassReport {
            status: PassStatus::Converged,
            resources: vec![ResourceState {
                kind: ResourceKind::DatasetGroup,
                name: "g".into(),
                status: "ACTIVE".into(),
                arn: arn.map(str::to_string),
                reason: None,
            }],
            failures: vec![],
        }
    }

    #[test]
    fn location_comes_from_the_dataset_group_arn() {
        let fallback = Location {
            partition: "aws".into(),
            region: "eu-west-1".into(),
            account: "unknown".into(),
        };
        let l = location_of(
            &report(Some(
                "arn:aws-cn:personalize:cn-north-1:123456789012:dataset-group/g",
            )),
            &fallback,
        );
        assert_eq!(
            (l.partition.as_str(), l.region.as_str(), l.account.as_str()),
            ("aws-cn", "cn-north-1", "123456789012")
        );
        assert_eq!(location_of(&report(None), &fallback), fallback);
        assert_eq!(location_of(&report(Some("not an arn")), &fallback), fallback);
        assert_eq!(
            location_of(&report(Some("arn:aws:personalize:::x")), &fallback),
            fallback
        );
    }
}
