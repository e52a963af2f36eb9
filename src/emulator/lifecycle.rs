//! Resource statuses derived from time: a timeline of scheduled status changes per resource.
//!
//! Personalize is asynchronous: Create returns at once and Describe then walks through `CREATE PENDING`
//! → `CREATE IN_PROGRESS` → a terminal status. The emulator does not run timers for this; each resource
//! carries the instants at which its status changes, and every read evaluates them against the clock.
//! Work that depends on data (imports, training, batch jobs) leaves the terminal step open until the
//! work reports its outcome, so a resource never looks finished before its work is.

use serde::{Deserialize, Serialize};

/// A status string as Personalize spells it (with the space: `CREATE IN_PROGRESS`), plus `Gone`, the
/// end of a deletion, which is never shown: a gone resource answers ResourceNotFound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Status {
    CreatePending,
    CreateInProgress,
    Active,
    CreateFailed,
    CreateStopping,
    CreateStopped,
    DeletePending,
    DeleteInProgress,
    StopPending,
    StopInProgress,
    Inactive,
    StartPending,
    StartInProgress,
    Gone,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CreatePending => "CREATE PENDING",
            Self::CreateInProgress => "CREATE IN_PROGRESS",
            Self::Active => "ACTIVE",
            Self::CreateFailed => "CREATE FAILED",
            Self::CreateStopping => "CREATE STOPPING",
            Self::CreateStopped => "CREATE STOPPED",
            Self::DeletePending => "DELETE PENDING",
            Self::DeleteInProgress => "DELETE IN_PROGRESS",
            Self::StopPending => "STOP PENDING",
            Self::StopInProgress => "STOP IN_PROGRESS",
            Self::Inactive => "INACTIVE",
            Self::StartPending => "START PENDING",
            Self::StartInProgress => "START IN_PROGRESS",
            Self::Gone => "DELETED",
        }
    }

    /// `CREATE PENDING` or `CREATE IN_PROGRESS`: what the quotas on pending work count.
    pub fn is_creating(self) -> bool {
        matches!(self, Self::CreatePending | Self::CreateInProgress)
    }

    /// Being deleted (or already gone).
    pub fn is_deleting(self) -> bool {
        matches!(self, Self::DeletePending | Self::DeleteInProgress | Self::Gone)
    }
}

/// One scheduled status change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Step {
    /// Emulator-clock epoch seconds at which the status takes effect.
    at: f64,
    status: Status,
    /// The failure reason, on `CREATE FAILED` steps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

/// The scheduled status changes of one resource (or of one update of it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Timeline {
    /// Sorted by `at`; the status at time t is the last step with `at <= t`.
    steps: Vec<Step>,
    /// Set while the terminal create step waits for background work: the earliest instant the terminal
    /// status may appear (the end of the scheduled in-progress phase).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    awaiting_work_until: Option<f64>,
}

/// How long the two phases of a transition last, in emulator seconds (already scaled).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Phases {
    pub pending: f64,
    pub in_progress: f64,
}

impl Timeline {
    /// A creation that needs no background work: pending, in progress, then `ACTIVE` or, when
    /// `failure` is given, `CREATE FAILED` with that reason.
    pub fn created(now: f64, phases: Phases, failure: Option<String>) -> Self {
        let mut t = Self::awaiting(now, phases);
        t.finish(now, failure);
        t
    }

    /// A creation whose terminal status waits for background work ([`Timeline::finish`]).
    pub fn awaiting(now: f64, phases: Phases) -> Self {
        let progress_at = now + phases.pending;
        Self {
            steps: vec![
                Step {
                    at: now,
                    status: Status::CreatePending,
                    reason: None,
                },
                Step {
                    at: progress_at,
                    status: Status::CreateInProgress,
                    reason: None,
                },
            ],
            awaiting_work_until: Some(progress_at + phases.in_progress),
        }
    }

    /// A resource that is simply there (schemas have no status): `ACTIVE` from `now`.
    pub fn immediate(now: f64) -> Self {
        Self {
            steps: vec![Step {
                at: now,
                status: Status::Active,
                reason: None,
            }],
            awaiting_work_until: None,
        }
    }

    /// Records the outcome of the background work finished at `done_at`. The terminal step appears at
    /// the later of `done_at` and the scheduled end of the in-progress phase. Returns false (and changes
    /// nothing) when no work is awaited any more, e.g. the resource was stopped or deleted meanwhile.
    pub fn finish(&mut self, done_at: f64, failure: Option<String>) -> bool {
        let Some(earliest) = self.awaiting_work_until.take() else {
            return false;
        };
        let status = if failure.is_some() {
            Status::CreateFailed
        } else {
            Status::Active
        };
        self.push(earliest.max(done_at), status, failure);
        true
    }

    /// Whether background work is still awaited.
    pub fn is_awaiting_work(&self) -> bool {
        self.awaiting_work_until.is_some()
    }

    /// Replaces everything scheduled after `now` by a two-phase transition: `first` now, `second` after
    /// `phases.pending`, and `end` after both phases. Work still awaited is abandoned.
    pub fn transition(
        &mut self,
        now: f64,
        first: Status,
        second: Option<Status>,
        end: Status,
        phases: Phases,
    ) {
        self.steps.retain(|s| s.at <= now);
        self.awaiting_work_until = None;
        self.push(now, first, None);
        if let Some(second) = second {
            self.push(now + phases.pending, second, None);
        }
        self.push(now + phases.pending + phases.in_progress, end, None);
    }

    fn push(&mut self, at: f64, status: Status, reason: Option<String>) {
        // Keep the vector sorted even when a step lands before an already scheduled one.
        let at = self.steps.last().map_or(at, |last| at.max(last.at));
        self.steps.push(Step { at, status, reason });
    }

    fn current(&self, now: f64) -> Option<&Step> {
        self.steps.iter().rev().find(|s| s.at <= now)
    }

    /// The status at `now`.
    pub fn status(&self, now: f64) -> Status {
        self.current(now).map_or(Status::CreatePending, |s| s.status)
    }

    /// When the current status began (`lastUpdatedDateTime`).
    pub fn last_updated(&self, now: f64) -> f64 {
        self.current(now).or(self.steps.first()).map_or(0.0, |s| s.at)
    }

    /// The failure reason, shown only while the status is `CREATE FAILED`.
    pub fn failure(&self, now: f64) -> Option<&str> {
        self.current(now)
            .filter(|s| s.status == Status::CreateFailed)
            .and_then(|s| s.reason.as_deref())
    }

    /// The instant the creation ended in `ACTIVE`, if it did by `now` (for `trainingHours`, ordering).
    pub fn active_since(&self, now: f64) -> Option<f64> {
        self.steps
            .iter()
            .find(|s| s.status == Status::Active && s.at <= now)
            .map(|s| s.at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PHASES: Phases = Phases {
        pending: 10.0,
        in_progress: 20.0,
    };

    #[test]
    fn a_plain_creation_walks_through_its_phases() {
        let t = Timeline::created(100.0, PHASES, None);
        assert_eq!(t.status(100.0), Status::CreatePending);
        assert_eq!(t.status(109.9), Status::CreatePending);
        assert_eq!(t.status(110.0), Status::CreateInProgress);
        assert_eq!(t.status(130.0), Status::Active);
        assert_eq!(t.last_updated(200.0), 130.0);
        assert_eq!(t.failure(200.0), None);
    }

    #[test]
    fn a_failure_reason_shows_only_once_failed() {
        let t = Timeline::created(0.0, PHASES, Some("bad name".into()));
        assert_eq!(t.failure(5.0), None);
        assert_eq!(t.status(30.0), Status::CreateFailed);
        assert_eq!(t.failure(30.0), Some("bad name"));
    }

    #[test]
    fn terminal_status_waits_for_the_work() {
        let mut t = Timeline::awaiting(0.0, PHASES);
        assert_eq!(t.status(1000.0), Status::CreateInProgress);
        assert!(t.finish(1000.0, None));
        assert_eq!(t.status(1000.0), Status::Active);
        // Work finishing early still waits for the scheduled phase to end.
        let mut early = Timeline::awaiting(0.0, PHASES);
        assert!(early.finish(1.0, None));
        assert_eq!(early.status(29.0), Status::CreateInProgress);
        assert_eq!(early.status(30.0), Status::Active);
        assert!(!early.finish(40.0, Some("late".into())), "finish is one-shot");
    }

    #[test]
    fn zero_durations_are_immediate() {
        let zero = Phases {
            pending: 0.0,
            in_progress: 0.0,
        };
        let t = Timeline::created(5.0, zero, None);
        assert_eq!(t.status(5.0), Status::Active);
    }

    #[test]
    fn a_transition_replaces_the_future() {
        let mut t = Timeline::awaiting(0.0, PHASES);
        t.transition(15.0, Status::CreateStopping, None, Status::CreateStopped, PHASES);
        assert!(!t.is_awaiting_work());
        assert!(!t.finish(16.0, None));
        assert_eq!(t.status(16.0), Status::CreateStopping);
        assert_eq!(t.status(45.0), Status::CreateStopped);
        let mut d = Timeline::created(0.0, PHASES, None);
        d.transition(
            50.0,
            Status::DeletePending,
            Some(Status::DeleteInProgress),
            Status::Gone,
            PHASES,
        );
        assert_eq!(d.status(55.0), Status::DeletePending);
        assert_eq!(d.status(61.0), Status::DeleteInProgress);
        assert_eq!(d.status(80.0), Status::Gone);
        assert_eq!(d.active_since(100.0), Some(30.0));
    }
}
