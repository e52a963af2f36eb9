//! The state store: desired and observed state per dataset group, leases, schedules and fire claims.
//!
//! One trait, [`StateStore`], with a DynamoDB adapter ([`DynamoStore`], the daemon's) and an SQLite
//! adapter ([`SqliteStore`], `local` mode and fast tests). Both pass one conformance suite
//! (`tests/daemon_store.rs`). The DynamoDB table layout is documented in the README ("State table").

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};

mod clock;
mod dynamo;
mod model;
mod outbox;
mod removal;
mod sqlite;

pub use clock::{Clock, ManualClock, SystemClock};
pub use dynamo::{BRIEF_ATTRIBUTES, DynamoStore, SUMMARY_ATTRIBUTES, TableCheck};
pub use model::{
    Acquire, Arrival, BeginFire, ClaimInfo, DEFAULT_MAX_CLOCK_SKEW, DYNAMO_ITEM_LIMIT_BYTES, Desired,
    DesiredSource, DueGroup, FireClaim, FireOutcome, FireStatus, GroupBrief, GroupState, GroupSummary, Lease,
    LeaseGrant, LeaseInfo, MAX_DESIRED_TEXT_BYTES, MAX_GROUP_ITEM_BYTES, MAX_NAME_BYTES, MAX_OBSERVED_BYTES,
    MAX_SOURCE_FIELD_BYTES, NewDesired, Observed, ObservedState, ObservedWrite, PutDesired, ResourceKind,
    ResourceState, Schedule, ScheduleMarks, arrival_by_event, classify, run_timestamp,
};
pub use outbox::{DROPPED_RETENTION, MAX_OUTBOX_TEXT_BYTES, NotificationStore, StoredNotification};
pub use removal::{Removal, record_removal};
pub use sqlite::SqliteStore;

/// Why a state-store call failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The caller's lease is no longer current: another replica acquired the group (or the lease was
    /// released). The caller must stop working on the group.
    #[error(
        "dataset group {group}: lease lost: {owner} (epoch {epoch}) no longer holds it (another replica took the group over or the lease was released); stop working on the group"
    )]
    Fenced {
        group: String,
        owner: String,
        epoch: u64,
    },
    /// A value too big to store inline.
    #[error("{what} is {size} bytes, more than the {limit} bytes the state store keeps")]
    TooLarge { what: String, size: usize, limit: usize },
    /// `put_desired` lost the conditional write to other writers this many times in a row.
    #[error("dataset group {group}: desired state kept changing under {attempts} attempts to write it")]
    Contention { group: String, attempts: u32 },
    /// A stored item that cannot be read back.
    #[error("{what}: stored item is corrupt: {reason}")]
    Corrupt { what: String, reason: String },
    /// The backend (SQLite, DynamoDB) failed.
    #[error("{op} {what} failed: {source}")]
    Backend {
        op: &'static str,
        what: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl StoreError {
    pub(crate) fn backend(
        op: &'static str,
        what: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self::Backend {
            op,
            what: what.into(),
            source: Box::new(source),
        }
    }

    pub(crate) fn fenced(lease: &Lease) -> Self {
        Self::Fenced {
            group: lease.group.clone(),
            owner: lease.owner.clone(),
            epoch: lease.epoch,
        }
    }
}

/// Attempts of `put_desired`'s read–decide–conditional-write loop before giving up with `Contention`.
pub(crate) const PUT_DESIRED_ATTEMPTS: u32 = 8;

/// The state of every dataset group, shared by all replicas.
///
/// # Guarantees (proved on every adapter by `tests/daemon_store.rs`)
/// - `put_desired` never lowers a group's desired state: a duplicate is a no-op, an older event is
///   ignored, and a newer file increments the generation exactly once, even with concurrent writers.
/// - A lease is granted only when free or expired, and each grant bumps the epoch. Every write the
///   lease holder makes (`put_observed`, `put_schedule`, `delete_schedule`,
///   `renew_lease`, `release_lease`) fails with [`StoreError::Fenced`] once its epoch is no longer current.
/// - Every change of a group's schedule set is listed by `schedule_changes` from its instant on.
/// - The first `claim_fire` of a (schedule, fire time) wins; expired claims are never reported. Once
///   `record_fire` has recorded a fire, `claim_fire` never grants that fire (or an earlier one) again,
///   even after its claim expired.
///
/// Time comes from the store's [`Clock`]. The notification outbox is its supertrait
/// [`NotificationStore`].
#[async_trait::async_trait]
pub trait StateStore: NotificationStore + Send + Sync + fmt::Debug {
    /// A cheap call that proves the backend answers (readiness).
    async fn ping(&self) -> Result<(), StoreError>;

    /// Records `new` as the group's desired state unless it is a duplicate or older (see
    /// [`classify`]). A new generation marks the group due now.
    ///
    /// # Errors
    /// `TooLarge` when the text exceeds [`MAX_DESIRED_TEXT_BYTES`]; `Contention` after
    /// [`PUT_DESIRED_ATTEMPTS`] lost races; `Backend`.
    async fn put_desired(&self, new: &NewDesired) -> Result<PutDesired, StoreError>;

    /// One group's full state, `None` when the store has never heard of it.
    async fn group(&self, name: &str) -> Result<Option<GroupState>, StoreError>;

    /// Every group, sorted by name (for resync and `status`).
    async fn list_groups(&self) -> Result<Vec<GroupSummary>, StoreError>;

    /// Every group as the resync plans with it ([`GroupBrief`]), in no particular order, read as
    /// cheaply as the backend allows: neither the parameter file nor the observed resources. A
    /// recent write may be missing from it (DynamoDB reads it eventually consistent): the resync's
    /// marks only ever move a due time earlier, the bucket comparison's records are conditional, and
    /// the next resync sees the write.
    async fn list_briefs(&self) -> Result<Vec<GroupBrief>, StoreError>;

    /// Up to `limit` groups whose due time has come, leaving out groups under an unexpired lease:
    /// someone is working on them, and listing them would starve the free ones. Groups with a new
    /// file ([`DueGroup::new_file`]: desired generation newer than the observed one) come first,
    /// however many others are due earlier, then the rest; each part earliest due first.
    async fn due_groups(&self, limit: usize) -> Result<Vec<DueGroup>, StoreError>;

    /// As [`StateStore::due_groups`], but groups leased by `owner` itself are listed: a replica finds
    /// its own due groups and the free ones, never the groups another replica holds.
    async fn due_groups_for(&self, owner: &str, limit: usize) -> Result<Vec<DueGroup>, StoreError>;

    /// Makes the group due at `at` unless it is already due earlier (unfenced: resync and operators
    /// use it). Creates the group's record when missing.
    async fn mark_due(&self, group: &str, at: DateTime<Utc>) -> Result<(), StoreError>;

    /// Takes the group's lease for `duration` when it is free or expired. With
    /// [`Acquire::LeaseAndGroup`] the group's state as the grant left it comes back too (`None` when
    /// the lease is held elsewhere), so a worker takes a group and reads it in one round trip:
    /// DynamoDB's conditional update returns the item, SQLite reads it in the lease's transaction.
    /// With [`Acquire::Lease`] the state is always `None`.
    async fn acquire_lease(
        &self,
        group: &str,
        owner: &str,
        duration: Duration,
        read: Acquire,
    ) -> Result<(LeaseGrant, Option<GroupState>), StoreError>;

    /// Extends a held lease to now + `duration` (and its [`Lease::valid_until`] likewise); `Fenced` if
    /// it was lost. A lease that expired without anyone taking it over can still be renewed: its epoch
    /// proves nobody else held the group meanwhile.
    async fn renew_lease(&self, lease: &Lease, duration: Duration) -> Result<Lease, StoreError>;

    /// Gives the lease up so another replica can take the group at once; `Fenced` if it was lost.
    async fn release_lease(&self, lease: &Lease) -> Result<(), StoreError>;

    /// Records what a pass observed and when the group is next due (`None`: only on resync or a new
    /// event). If a newer desired generation than `observed.generation` arrived meanwhile, the group
    /// stays due now instead, so no event is lost. With `write.release` the same conditional write
    /// gives the lease up (as [`StateStore::release_lease`]): a turn's last write costs one round trip.
    ///
    /// # Errors
    /// `Fenced` (nothing written, nothing released), `TooLarge` (observed JSON above
    /// [`MAX_OBSERVED_BYTES`]), `Backend`.
    async fn put_observed(
        &self,
        lease: &Lease,
        observed: &Observed,
        next_due: Option<DateTime<Utc>>,
        write: ObservedWrite,
    ) -> Result<(), StoreError>;

    /// Creates or replaces a schedule of the lease's group (fenced). `last_fire`, `pending_fire` and
    /// `last_outcome` are left as stored.
    async fn put_schedule(&self, lease: &Lease, schedule: &Schedule) -> Result<(), StoreError>;

    /// Deletes a schedule of the lease's group (fenced); deleting a missing one is not an error.
    async fn delete_schedule(&self, lease: &Lease, name: &str) -> Result<(), StoreError>;

    /// Forgets the lease's group: its schedules, its fire claims (SQLite; DynamoDB's expire by TTL)
    /// and last its group item, on condition that the lease is still current (`Fenced` otherwise).
    /// For a group whose resources are gone (`destroy`, the daemon's teardown of a removed file).
    async fn delete_group(&self, lease: &Lease) -> Result<(), StoreError>;

    /// The schedules of one group, or of all groups; sorted by (group, name).
    async fn schedules(&self, group: Option<&str>) -> Result<Vec<Schedule>, StoreError>;

    /// Turns a schedule on or off (the CLI's activate/deactivate); `false` when it does not exist.
    async fn set_schedule_active(&self, group: &str, name: &str, active: bool) -> Result<bool, StoreError>;

    /// The groups whose schedule set changed at or after `since` (by the writer's clock): a schedule
    /// written, deleted, activated or deactivated, or the group forgotten. Fires (`record_fire`,
    /// `begin_fire`, `finish_fire`, `skip_fire`) are not changes: the fire claims keep replicas with
    /// an older view of them from running a fire twice. Each change is recorded in the same write as
    /// the change itself, so a timer that reloads only these groups misses nothing, provided `since`
    /// allows for clock skew between writers and readers. Sorted, without duplicates.
    async fn schedule_changes(&self, since: DateTime<Utc>) -> Result<Vec<String>, StoreError>;

    /// Records a fire: `last_fire = fired_at`, `next_fire`. Applied only if `fired_at` is later than
    /// the stored `last_fire`; returns whether it was applied.
    async fn record_fire(
        &self,
        group: &str,
        name: &str,
        fired_at: DateTime<Utc>,
        next_fire: Option<DateTime<Utc>>,
    ) -> Result<bool, StoreError>;

    /// Records the fire of `name` at `fire` as handled (`last_fire`, `next_fire`) and, unless an earlier
    /// fire's action is still pending, as the schedule's pending action (`pending_fire`). One
    /// conditional write: whatever the number of callers, one fire is started or coalesced at most once.
    async fn begin_fire(
        &self,
        group: &str,
        name: &str,
        fire: DateTime<Utc>,
        next_fire: Option<DateTime<Utc>>,
    ) -> Result<BeginFire, StoreError>;

    /// Ends the pending action of `outcome.fire`: stores the outcome and clears `pending_fire`. Applied
    /// only while `pending_fire` is that fire; returns whether it was applied.
    async fn finish_fire(&self, group: &str, name: &str, outcome: &FireOutcome) -> Result<bool, StoreError>;

    /// Records a fire that is not run (missed beyond the catch-up window): as `record_fire`, and stores
    /// `outcome` as the last outcome. Returns whether it was applied (the fire was not handled yet).
    async fn skip_fire(
        &self,
        group: &str,
        name: &str,
        outcome: &FireOutcome,
        next_fire: Option<DateTime<Utc>>,
    ) -> Result<bool, StoreError>;

    /// Claims the fire of `schedule` at `fire_time` for `owner`, kept for `ttl`. `Lost` when another
    /// unexpired claim exists or when the schedule's recorded `last_fire` is at or after `fire_time`.
    async fn claim_fire(
        &self,
        group: &str,
        schedule: &str,
        fire_time: DateTime<Utc>,
        owner: &str,
        ttl: Duration,
    ) -> Result<FireClaim, StoreError>;

    /// The unexpired claim of a fire, if any.
    async fn fire_claim(
        &self,
        group: &str,
        schedule: &str,
        fire_time: DateTime<Utc>,
    ) -> Result<Option<ClaimInfo>, StoreError>;

    /// Claims the account-wide Personalize job name `name` for `owner` (the ARN of the dataset or
    /// solution version the job is for), kept for `ttl`, and returns who holds the claim after the
    /// call: `owner` when the name was unclaimed, its claim expired, it was `owner`'s already (then
    /// renewed) or held by `replacing` (a holder that found the job is `owner`'s); otherwise the
    /// holder, unchanged. One conditional write; expired claims are purged (DynamoDB: by TTL).
    async fn claim_job_name(
        &self,
        name: &str,
        owner: &str,
        replacing: Option<&str>,
        ttl: Duration,
    ) -> Result<String, StoreError>;
}

/// Checks the inline-size caps shared by both adapters.
pub(crate) fn check_desired_size(new: &NewDesired) -> Result<(), StoreError> {
    if new.text.len() > MAX_DESIRED_TEXT_BYTES {
        return Err(StoreError::TooLarge {
            what: format!(
                "the parameter file {} of dataset group {}",
                new.source.url, new.group
            ),
            size: new.text.len(),
            limit: MAX_DESIRED_TEXT_BYTES,
        });
    }
    check_name("the dataset group name", &new.group)?;
    let s = &new.source;
    let fields = [
        ("bucket", Some(&s.url.bucket)),
        ("key", Some(&s.url.key)),
        ("ETag", s.etag.as_ref()),
        ("version id", s.version_id.as_ref()),
        ("sequencer", s.sequencer.as_ref()),
    ];
    for (field, value) in fields {
        if let Some(value) = value.filter(|v| v.len() > MAX_SOURCE_FIELD_BYTES) {
            return Err(StoreError::TooLarge {
                what: format!(
                    "the {field} of the event for dataset group {}",
                    truncated(&new.group)
                ),
                size: value.len(),
                limit: MAX_SOURCE_FIELD_BYTES,
            });
        }
    }
    Ok(())
}

/// Refuses a group name or lease owner longer than [`MAX_NAME_BYTES`] (it is stored in keys and items).
pub(crate) fn check_name(what: &str, name: &str) -> Result<(), StoreError> {
    if name.len() > MAX_NAME_BYTES {
        return Err(StoreError::TooLarge {
            what: format!("{what} {}", truncated(name)),
            size: name.len(),
            limit: MAX_NAME_BYTES,
        });
    }
    Ok(())
}

/// The start of a name that may be too long to quote whole in an error.
fn truncated(name: &str) -> String {
    match name.char_indices().nth(64) {
        Some((end, _)) => format!("{}…", &name[..end]),
        None => name.to_string(),
    }
}

/// The observed state as stored: JSON, within [`MAX_OBSERVED_BYTES`].
pub(crate) fn observed_json(group: &str, observed: &Observed) -> Result<String, StoreError> {
    let json = serde_json::to_string(observed).map_err(|e| StoreError::Corrupt {
        what: format!("observed state of {group}"),
        reason: e.to_string(),
    })?;
    if json.len() > MAX_OBSERVED_BYTES {
        return Err(StoreError::TooLarge {
            what: format!("the observed state of dataset group {group}"),
            size: json.len(),
            limit: MAX_OBSERVED_BYTES,
        });
    }
    Ok(json)
}

/// A fire outcome as stored (JSON).
pub(crate) fn outcome_json(what: &str, outcome: &FireOutcome) -> Result<String, StoreError> {
    serde_json::to_string(outcome).map_err(|e| StoreError::Corrupt {
        what: format!("fire outcome of {what}"),
        reason: e.to_string(),
    })
}

pub(crate) fn parse_outcome(what: &str, json: &str) -> Result<FireOutcome, StoreError> {
    serde_json::from_str(json).map_err(|e| StoreError::Corrupt {
        what: format!("fire outcome of {what}"),
        reason: e.to_string(),
    })
}

pub(crate) fn parse_observed(group: &str, json: &str) -> Result<Observed, StoreError> {
    serde_json::from_str(json).map_err(|e| StoreError::Corrupt {
        what: format!("observed state of {group}"),
        reason: e.to_string(),
    })
}
