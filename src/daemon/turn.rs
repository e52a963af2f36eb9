//! One worker turn on one dataset group: take the lease, run passes until the group converges, fails
//! or waits, record what was observed (fenced by the lease), notify, release.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use super::held::HeldLease;
use super::outbox::{generation_subject, notification_id};
use super::reconciler::{PassError, PassInput, PassReport, PassSink, PassStatus, ScheduledRun};
use super::{Daemon, DaemonStats};
use crate::metrics::Counter;
use crate::notify::message::{Location, RunOutcome, run_message};
use crate::reconcile::LeaseGuard;
use crate::store::{
    Acquire, Desired, GroupState, Lease, LeaseGrant, Observed, ObservedWrite, ResourceKind, ScheduleMarks,
    StoreError,
};

/// How a turn ended, for the dispatcher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TurnEnd {
    /// Done: converged, failed or nothing to do; the group's next due time (if any) is recorded.
    Done,
    /// Still under way: due again at `until` (recorded in the store too).
    Waiting { until: DateTime<Utc> },
    /// Another replica holds the lease until then; do not ask again before.
    HeldElsewhere { until: DateTime<Utc> },
    /// The lease was lost (expired or taken) mid-turn; the new owner carries on.
    LeaseLost,
    /// The state store failed; the group stays due and is retried on the next dispatch.
    StoreFailed,
    /// Shutdown stopped the turn before a pass or abandoned one past the grace period.
    Stopped,
    /// The group was torn down and removed from the store, its lease with it.
    Forgotten,
}

/// Why the pass loop stopped early.
enum Stop {
    Lost,
    Store(StoreError),
}

/// The outcome of [`Daemon::file_to_build`].
enum Build {
    /// A parameter file to build, with the group's last observation.
    File {
        desired: Box<Desired>,
        previous: Option<Observed>,
    },
    /// No pass: the turn ends so.
    Ended(TurnEnd),
}

impl From<StoreError> for Stop {
    fn from(e: StoreError) -> Self {
        match error_policy(TurnError::Store(&e), Duration::ZERO) {
            OnError::LeaseLost => Stop::Lost,
            OnError::Fail | OnError::RetryAfter(_) => Stop::Store(e),
        }
    }
}

/// What the pass loop knows about the rest of the turn, for the write that records a pass.
struct Rest<'a> {
    /// Another pass may run in this turn.
    more: bool,
    /// Set before a write that gives the lease up with the turn's result (see [`Daemon::record`]):
    /// the renewal task stops renewing, and the turn does not release the lease again.
    released: &'a AtomicBool,
    /// The group's schedule marks as this pass leaves them, recorded with its write.
    marks: ScheduleMarks,
}

/// Whether the turn passes again at once, waits until a poll time, or is done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    Again,
    Wait(DateTime<Utc>),
    Done,
}

/// An error met during a turn.
#[derive(Debug, Clone, Copy)]
pub(crate) enum TurnError<'a> {
    /// The pass could not complete (Personalize or S3 unreachable, throttled beyond retries, …).
    Pass,
    /// The state store refused or failed a read or a write.
    Store(&'a StoreError),
}

/// What a turn does about an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnError {
    /// Record the error on the group (nothing is reported to the user as failed) and come back
    /// after this long; other groups are not held up meanwhile.
    RetryAfter(Duration),
    /// End the turn: the group stays due and the next dispatch tries it again.
    Fail,
    /// Stop at once without another write: the group belongs to another replica now.
    LeaseLost,
}

/// The daemon's error policy, in one place: a pass that did not complete is retried after
/// `error_retry`; a fenced write means the lease was lost; any other store failure ends the turn.
pub(crate) fn error_policy(error: TurnError<'_>, error_retry: Duration) -> OnError {
    match error {
        TurnError::Pass => OnError::RetryAfter(error_retry),
        TurnError::Store(StoreError::Fenced { .. }) => OnError::LeaseLost,
        TurnError::Store(_) => OnError::Fail,
    }
}

/// What a pass leaves recorded for the group (nothing announced yet: see [`Observed::announced_for`]).
fn observed(
    generation: u64,
    converged: bool,
    resources: Vec<crate::store::ResourceState>,
    last_error: Option<String>,
    updated_at: DateTime<Utc>,
) -> Observed {
    Observed {
        generation,
        converged,
        resources,
        last_error,
        updated_at,
        destroyed_at: None,
        announced: Vec::new(),
    }
}

/// Whether the group, as the lease's grant read it, needs no pass now: its file is converged, it is
/// not due (no due time, or a later one: a resync slot), no scheduled action may be pending, and
/// the file's schedules are synced. A turn finds it so when its due listing was read before another
/// replica converged the group.
fn settled_and_not_due(state: &GroupState, now: DateTime<Utc>) -> bool {
    let (Some(desired), Some(observed)) = (&state.desired, &state.observed) else {
        return false;
    };
    observed.converged
        && observed.destroyed_at.is_none()
        && observed.generation >= desired.generation
        && state.due_at.is_none_or(|due| due > now)
        && !state.schedules.fire_may_be_pending()
        && state.schedules.synced(desired.generation)
}

pub(crate) fn after(now: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
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
        // The lease and the group's state in one round trip: the state read under the new lease.
        let (lease, state) = match self
            .store
            .acquire_lease(
                group,
                &self.config.owner,
                self.config.lease_duration,
                Acquire::LeaseAndGroup,
            )
            .await
        {
            Ok((LeaseGrant::Acquired(lease), state)) => (lease, state),
            Ok((LeaseGrant::Held { owner, expires_at }, _)) => {
                tracing::debug!(holder = %owner, until = %expires_at, "the group is owned by another replica");
                return TurnEnd::HeldElsewhere { until: expires_at };
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot take the lease");
                return TurnEnd::StoreFailed;
            }
        };
        let now = self.clock.now();
        let late_ms = state
            .as_ref()
            .and_then(|s| s.due_at)
            .map(|due| (now - due).num_milliseconds());
        tracing::debug!(epoch = lease.epoch, ?late_ms, "lease taken");
        if state.as_ref().is_some_and(|s| settled_and_not_due(s, now)) {
            // The listing that started this turn predates another replica's turn, which converged
            // the group: a pass would only read Personalize again.
            tracing::debug!("converged and not due (worked on elsewhere since it was listed); no pass");
            self.release(&lease).await;
            return TurnEnd::Done;
        }
        let held = Arc::new(Mutex::new(lease));
        let released = AtomicBool::new(false);
        let end = tokio::select! {
            end = self.passes(group, &held, state, shutdown, &released) => end,
            () = self.keep_lease(&held, &released) => {
                tracing::warn!("lease lost while working; stopping");
                return TurnEnd::LeaseLost;
            }
            () = hard_stop.cancelled() => {
                tracing::warn!("shutdown grace period over; abandoning the pass (it resumes after restart)");
                TurnEnd::Stopped
            }
        };
        // The last write gave the lease up already, unless the turn ended otherwise (a write that
        // failed may or may not have applied: releasing again is harmless, `Fenced` at worst).
        let given_up =
            released.load(Ordering::SeqCst) && matches!(end, TurnEnd::Waiting { .. } | TurnEnd::Done);
        if end != TurnEnd::LeaseLost && end != TurnEnd::Forgotten && !given_up {
            let lease = held.lock().unwrap_or_else(PoisonError::into_inner).clone();
            self.release(&lease).await;
        }
        end
    }

    /// Gives the lease up; a failure only delays the group's next turn until the lease expires.
    async fn release(&self, lease: &Lease) {
        match self.store.release_lease(lease).await {
            Ok(()) => tracing::debug!(epoch = lease.epoch, "lease released"),
            Err(e) => tracing::warn!(error = %e, "lease not released; it will expire"),
        }
    }

    /// Renews the lease every third of its duration; returns only when it is lost (fenced, or not
    /// renewed before it expired). Once the turn's last write gives the lease up (`released`), it
    /// renews no more, and a renewal that crossed that write is not a loss.
    async fn keep_lease(&self, held: &Mutex<Lease>, released: &AtomicBool) {
        let period = (self.config.lease_duration / 3).max(Duration::from_millis(50));
        loop {
            tokio::time::sleep(period).await;
            if released.load(Ordering::SeqCst) {
                continue;
            }
            let current = held.lock().unwrap_or_else(PoisonError::into_inner).clone();
            match self.store.renew_lease(&current, self.config.lease_duration).await {
                Ok(renewed) => *held.lock().unwrap_or_else(PoisonError::into_inner) = renewed,
                Err(StoreError::Fenced { .. }) if released.load(Ordering::SeqCst) => {}
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

    async fn passes(
        &self,
        group: &str,
        held: &Arc<Mutex<Lease>>,
        state: Option<GroupState>,
        shutdown: &CancellationToken,
        released: &AtomicBool,
    ) -> TurnEnd {
        match self.pass_loop(group, held, state, shutdown, released).await {
            Ok(end) => end,
            Err(Stop::Lost) => {
                tracing::warn!("lease lost; stopping without acting (the new owner carries on)");
                TurnEnd::LeaseLost
            }
            Err(Stop::Store(e)) => {
                tracing::warn!(error = %e, "state store failed during the turn");
                TurnEnd::StoreFailed
            }
        }
    }

    fn current(held: &Mutex<Lease>) -> Lease {
        held.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Passes while the group asks to be looked at again at once (up to the turn's budget). The first
    /// pass works from `state`, read with the lease; later ones read the group again (a new
    /// generation may have arrived).
    async fn pass_loop(
        &self,
        group: &str,
        held: &Arc<Mutex<Lease>>,
        state: Option<GroupState>,
        shutdown: &CancellationToken,
        released: &AtomicBool,
    ) -> Result<TurnEnd, Stop> {
        let mut passes = 0u32;
        let mut read_with_lease = Some(state);
        // The schedule set the first pass synced: a later pass's read may predate its record.
        let mut synced = None;
        let guard: Arc<dyn LeaseGuard> = Arc::new(HeldLease(Arc::clone(held)));
        loop {
            if shutdown.is_cancelled() {
                return Ok(TurnEnd::Stopped);
            }
            if !Self::lease_valid(held) {
                return Err(Stop::Lost);
            }
            let lease = Self::current(held);
            let state = match read_with_lease.take() {
                Some(state) => state,
                None => self.store.group(group).await?,
            };
            let mut rest = self.rest_of(passes, released, state.as_ref(), synced);
            let (desired, previous) = match self.file_to_build(state, &lease, &guard, &rest).await? {
                Build::File { desired, previous } => (*desired, previous),
                Build::Ended(end) => return Ok(end),
            };
            let scheduled = self
                .scheduled_for(&lease, &desired, passes == 0, &mut rest.marks)
                .await?;
            synced = rest.marks.synced_generation;
            let Some(changes) = self.change_sender() else {
                return Ok(TurnEnd::Stopped);
            };
            passes += 1;
            let result = self
                .run_pass(
                    group,
                    &desired,
                    previous.as_ref(),
                    scheduled.as_ref(),
                    &guard,
                    changes,
                )
                .await;
            // A pass stopped by the lease, or one that outlasted it, records nothing: the new owner
            // observes again.
            if !Self::lease_valid(held) {
                return Err(Stop::Lost);
            }
            let now = self.clock.now();
            let lease = Self::current(held);
            let next = match result {
                Err(e) => {
                    self.pass_not_completed(&lease, &desired, previous, &e, now, &rest)
                        .await?
                }
                Ok(report) => match &scheduled {
                    Some(run) => {
                        self.after_scheduled_pass(&lease, run, &report, previous, now, &rest)
                            .await?
                    }
                    None => {
                        self.after_file_pass(&lease, &desired, &report, previous, now, &rest)
                            .await?
                    }
                },
            };
            match next {
                Next::Again => {}
                Next::Wait(until) => return Ok(TurnEnd::Waiting { until }),
                Next::Done => return Ok(TurnEnd::Done),
            }
        }
    }

    /// What a pass after `passes` others knows about the rest of the turn, with the schedule marks
    /// read with `state` (a sync an earlier pass of the turn made counts: its record may come later).
    fn rest_of<'a>(
        &self,
        passes: u32,
        released: &'a AtomicBool,
        state: Option<&GroupState>,
        synced: Option<u64>,
    ) -> Rest<'a> {
        let mut marks = state.map(|s| s.schedules).unwrap_or_default();
        marks.synced_generation = synced.or(marks.synced_generation);
        Rest {
            more: passes + 1 < self.config.max_passes_per_turn,
            released,
            marks,
        }
    }

    /// The scheduled action this pass runs, if any. The schedules are read only when the group's
    /// `marks` say they must be: on the turn's `first` pass when the file's schedule set is not
    /// recorded as synced (the sync reads them), or when an action may be pending. `marks` is updated
    /// for the pass's write: the sync made, and every fire begun so far seen when none is pending.
    async fn scheduled_for(
        &self,
        lease: &Lease,
        desired: &Desired,
        first: bool,
        marks: &mut ScheduleMarks,
    ) -> Result<Option<ScheduledRun>, StoreError> {
        let schedules = if first && !marks.synced(desired.generation) {
            let schedules = self.sync_schedules(lease, desired).await?;
            marks.synced_generation = Some(desired.generation);
            schedules
        } else if marks.fire_may_be_pending() {
            self.store.schedules(Some(&lease.group)).await?
        } else {
            return Ok(None);
        };
        let run = self.pending_action_of(&lease.group, schedules).await?;
        if run.is_none() {
            // The schedules were read after `fires_begun`: every action begun by then has ended. One
            // begun since has raised `fires_begun` past this.
            marks.fires_seen = marks.fires_begun;
        }
        Ok(run)
    }

    /// What this pass builds: the group's recorded file and its last observation, or how the turn ends
    /// without a pass (no file recorded, destroyed at this file version, the file removed).
    async fn file_to_build(
        &self,
        state: Option<GroupState>,
        lease: &Lease,
        guard: &Arc<dyn LeaseGuard>,
        rest: &Rest<'_>,
    ) -> Result<Build, StoreError> {
        let group = lease.group.as_str();
        let Some(state) = state else {
            return Ok(Build::Ended(TurnEnd::Done));
        };
        let Some(desired) = state.desired else {
            // Marked due (resync, operator) but no parameter file was ever recorded: clear the mark.
            let reason = "no parameter file has been recorded for this dataset group";
            let observed = observed(0, false, Vec::new(), Some(reason.into()), self.clock.now());
            self.record(lease, &observed, None, rest, true).await?;
            return Ok(Build::Ended(TurnEnd::Done));
        };
        if let Some(tombstone) = state
            .observed
            .as_ref()
            .filter(|o| o.destroyed(Some(desired.generation)))
        {
            // Destroyed, and this file version with it: only a new upload builds the group again.
            tracing::info!(
                generation = desired.generation,
                "destroyed; not rebuilt from the same parameter file"
            );
            self.record(lease, tombstone, None, rest, true).await?;
            return Ok(Build::Ended(TurnEnd::Done));
        }
        if desired.is_removal() {
            let end = self
                .removed_file(group, lease, guard, &desired, state.observed)
                .await?;
            return Ok(Build::Ended(end));
        }
        Ok(Build::File {
            desired: Box::new(desired),
            previous: state.observed,
        })
    }

    async fn run_pass(
        &self,
        group: &str,
        desired: &Desired,
        previous: Option<&Observed>,
        scheduled: Option<&ScheduledRun>,
        lease: &Arc<dyn LeaseGuard>,
        changes: tokio::sync::mpsc::Sender<crate::notify::ResourceChange>,
    ) -> Result<PassReport, PassError> {
        let sink = PassSink::new(group, changes, self.metrics.clone());
        DaemonStats::bump(&self.stats.passes);
        let started = std::time::Instant::now();
        let result = self
            .reconciler
            .pass(
                PassInput {
                    group,
                    desired,
                    previous,
                    scheduled,
                    lease,
                },
                &sink,
            )
            .await;
        tracing::debug!(
            generation = desired.generation,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "pass done"
        );
        result
    }

    /// The pass could not complete: as the error policy says, keep what was observed with the
    /// error and come back later.
    async fn pass_not_completed(
        &self,
        lease: &Lease,
        desired: &Desired,
        previous: Option<Observed>,
        e: &PassError,
        now: DateTime<Utc>,
        rest: &Rest<'_>,
    ) -> Result<Next, Stop> {
        tracing::warn!(generation = desired.generation, error = %e, "pass did not complete; retrying later");
        let retry = match error_policy(TurnError::Pass, self.config.error_retry) {
            OnError::RetryAfter(d) => d,
            OnError::Fail | OnError::LeaseLost => self.config.error_retry,
        };
        let announced = Observed::announced_for(previous.as_ref(), desired.generation);
        let resources = previous.map(|p| p.resources).unwrap_or_default();
        let observed = Observed {
            announced,
            ..observed(desired.generation, false, resources, Some(e.message.clone()), now)
        };
        let until = after(now, retry);
        self.record(lease, &observed, Some(until), rest, true).await?;
        Ok(Next::Wait(until))
    }

    /// After a pass of a schedule's action: the file's last observation is kept (its notifications
    /// depend on it); the action is finished once it converged or failed.
    async fn after_scheduled_pass(
        &self,
        lease: &Lease,
        run: &ScheduledRun,
        report: &PassReport,
        previous: Option<Observed>,
        now: DateTime<Utc>,
        rest: &Rest<'_>,
    ) -> Result<Next, Stop> {
        match &report.status {
            PassStatus::Converged | PassStatus::Failed => {
                let failed = report.status == PassStatus::Failed;
                self.finish_scheduled(&lease.group, run, report, failed).await?;
                if rest.more {
                    return Ok(Next::Again);
                }
                // Out of passes: come back at once for the rest (another action, the file).
                let observed = previous.unwrap_or_else(|| observed(0, false, Vec::new(), None, now));
                self.record(lease, &observed, Some(now), rest, true).await?;
                Ok(Next::Wait(now))
            }
            PassStatus::Pending { retry_after } => {
                let again_now = retry_after.is_zero() && rest.more;
                let next = if again_now { now } else { after(now, *retry_after) };
                let observed =
                    previous.unwrap_or_else(|| observed(0, false, report.resources.clone(), None, now));
                self.record(lease, &observed, Some(next), rest, !again_now)
                    .await?;
                Ok(if again_now { Next::Again } else { Next::Wait(next) })
            }
        }
    }

    /// After a pass towards the parameter file: record it, announce each outcome of a generation
    /// once, and say when the group is due again.
    async fn after_file_pass(
        &self,
        lease: &Lease,
        desired: &Desired,
        report: &PassReport,
        previous: Option<Observed>,
        now: DateTime<Utc>,
        rest: &Rest<'_>,
    ) -> Result<Next, Stop> {
        let group = lease.group.as_str();
        let same_generation = previous.as_ref().filter(|p| p.generation == desired.generation);
        let record = |converged, last_error| Observed {
            announced: Observed::announced_for(previous.as_ref(), desired.generation),
            ..observed(
                desired.generation,
                converged,
                report.resources.clone(),
                last_error,
                now,
            )
        };
        match &report.status {
            PassStatus::Converged => {
                let id = notification_id(group, &generation_subject(desired), "UPDATE COMPLETE");
                let observed = record(true, None);
                // Observations written before `announced` existed say it by `converged`.
                let told = observed.has_announced(&id) || same_generation.is_some_and(|p| p.converged);
                if told {
                    self.record(lease, &observed, None, rest, true).await?;
                } else {
                    let location = location_of(report, &self.config.location);
                    let message = run_message(group, &location, &RunOutcome::Complete);
                    self.announce_with(lease, observed, message, &id, rest).await?;
                    tracing::info!(generation = desired.generation, notification_id = %id, "converged");
                    self.metrics.count(Counter::JobSuccess);
                    DaemonStats::bump(&self.stats.completed);
                }
                Ok(Next::Done)
            }
            PassStatus::Failed => {
                let summary = failure_summary(report);
                let id = notification_id(
                    group,
                    &generation_subject(desired),
                    &format!("UPDATE FAILED: {summary}"),
                );
                let observed = record(false, Some(summary.clone()));
                let told = observed.has_announced(&id)
                    || same_generation
                        .is_some_and(|p| !p.converged && p.last_error.as_deref() == Some(summary.as_str()));
                if told {
                    self.record(lease, &observed, None, rest, true).await?;
                } else {
                    let location = location_of(report, &self.config.location);
                    let outcome = RunOutcome::Failed(report.failures.clone());
                    let message = run_message(group, &location, &outcome);
                    self.announce_with(lease, observed, message, &id, rest).await?;
                    tracing::warn!(generation = desired.generation, notification_id = %id, failures = %summary, "failed");
                    self.metrics.count(Counter::JobFailure);
                    DaemonStats::bump(&self.stats.failed);
                }
                Ok(Next::Done)
            }
            PassStatus::Pending { retry_after } => {
                let observed = record(false, None);
                let again_now = retry_after.is_zero() && rest.more;
                // Pending with a wait: record the next poll time and free the worker for other groups.
                let next = if again_now { now } else { after(now, *retry_after) };
                self.record(lease, &observed, Some(next), rest, !again_now)
                    .await?;
                Ok(if again_now { Next::Again } else { Next::Wait(next) })
            }
        }
    }

    /// Records a pass's `observed` state, next due time and schedule marks. As the turn's `last`
    /// write, the same write gives the lease up: one round trip instead of two, and the group is free
    /// for any replica as soon as its result is recorded.
    async fn record(
        &self,
        lease: &Lease,
        observed: &Observed,
        next_due: Option<DateTime<Utc>>,
        rest: &Rest<'_>,
        last: bool,
    ) -> Result<(), StoreError> {
        self.store
            .put_observed(lease, observed, next_due, Self::write_of(rest, last))
            .await
    }

    /// The options of a pass's write; as the turn's `last`, it gives the lease up (so the renewal
    /// task stops and the turn does not release it again).
    fn write_of(rest: &Rest<'_>, last: bool) -> ObservedWrite {
        if last {
            rest.released.store(true, Ordering::SeqCst);
        }
        ObservedWrite {
            release: last,
            schedules: Some(rest.marks),
        }
    }

    /// Records `observed` with the notification `id` announcing it, in one fenced write that also
    /// ends the turn (a replica that lost the group announces nothing, a crash after it loses
    /// nothing), and remembers `id` in it so no later pass of the generation announces that outcome
    /// again.
    async fn announce_with(
        &self,
        lease: &Lease,
        mut observed: Observed,
        message: crate::notify::Message,
        id: &str,
        rest: &Rest<'_>,
    ) -> Result<(), StoreError> {
        observed.remember_announced(id);
        self.record_and_announce(lease, &observed, None, Self::write_of(rest, true), message, id)
            .await
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
    fn the_error_policy_retries_passes_stops_on_a_lost_lease_and_ends_on_store_failures() {
        let retry = Duration::from_secs(30);
        assert_eq!(error_policy(TurnError::Pass, retry), OnError::RetryAfter(retry));
        let fenced = StoreError::Fenced {
            group: "g".into(),
            owner: "a".into(),
            epoch: 3,
        };
        assert_eq!(error_policy(TurnError::Store(&fenced), retry), OnError::LeaseLost);
        assert!(matches!(Stop::from(fenced), Stop::Lost));
        let down = StoreError::Corrupt {
            what: "group g".into(),
            reason: "not JSON".into(),
        };
        assert_eq!(error_policy(TurnError::Store(&down), retry), OnError::Fail);
        assert!(matches!(Stop::from(down), Stop::Store(_)));
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
