//! What the state store holds, and the one rule both adapters share: how a new S3 event orders
//! against the desired state already recorded.

use std::cmp::Ordering;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::objects::ObjectUrl;

pub use crate::spec::kinds::ResourceKind;

/// Which S3 object (and which write of it) a desired state came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredSource {
    pub url: ObjectUrl,
    pub etag: Option<String>,
    pub version_id: Option<String>,
    /// S3's per-key ordering token from the event.
    pub sequencer: Option<String>,
    /// `LastModified` of the object as read (second precision on S3).
    pub last_modified: Option<DateTime<Utc>>,
}

/// A parameter file to record as a group's desired state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDesired {
    /// The dataset group named by the file (`datasetGroup.serviceConfig.name`).
    pub group: String,
    /// The file's text, at most [`MAX_DESIRED_TEXT_BYTES`].
    pub text: String,
    pub source: DesiredSource,
}

/// The desired state of a dataset group: one generation of its parameter file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desired {
    /// 1 for the first file, +1 for each newer one.
    pub generation: u64,
    pub text: String,
    pub source: DesiredSource,
    /// When the store recorded this generation.
    pub received_at: DateTime<Utc>,
    /// `YYYY_MM_DD_HH_MM_SS` of `received_at` (the reference's `currentDate`), fixed per generation so
    /// that names derived from it are the same on every pass and every replica.
    pub run_timestamp: String,
}

impl Desired {
    /// Whether this generation records that the parameter file was removed from the bucket (its text is
    /// empty: an empty file is never valid, so no upload records one).
    pub fn is_removal(&self) -> bool {
        self.text.is_empty()
    }
}

/// What `put_desired` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutDesired {
    /// A new generation was recorded and the group marked due.
    Recorded(Desired),
    /// The same event (or the same object write) was already recorded: nothing changed.
    Duplicate(Desired),
    /// The event is older than the recorded desired state, which is kept.
    Superseded { current: Desired },
}

impl PutDesired {
    /// The group's current desired state after the call.
    pub fn current(&self) -> &Desired {
        match self {
            Self::Recorded(d) | Self::Duplicate(d) | Self::Superseded { current: d } => d,
        }
    }
}

/// How an incoming file relates to the recorded desired state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// Newer: becomes the next generation.
    Newer,
    /// The same write of the same object.
    Duplicate,
    /// An older write arriving late.
    Older,
}

/// Orders `incoming` against `current`.
///
/// # Guarantees
/// - Same key and both sequencers known: S3's sequencer order decides (equal = duplicate).
/// - Otherwise, a known `LastModified` older than the recorded one is `Older`.
/// - Same version id of the same key, or the same text with the same `LastModified`, is a `Duplicate`: a redelivered event, or an old event whose read returned the
///   object already recorded.
/// - Anything else is `Newer`: without ordering information the latest arrival wins.
pub fn classify(current: &Desired, incoming: &NewDesired) -> Arrival {
    let (old, new) = (&current.source, &incoming.source);
    if let Some(arrival) = arrival_by_event(old, new) {
        return arrival;
    }
    let same_key = old.url == new.url;
    // Instants are stored with millisecond precision; compare at that precision.
    let millis = |t: Option<DateTime<Utc>>| t.map(|t| t.timestamp_millis());
    if let (Some(a), Some(b)) = (millis(old.last_modified), millis(new.last_modified)) {
        if b < a {
            return Arrival::Older;
        }
        // The ETag is not compared: an old event read after a newer write carries the old ETag but
        // returns the newer object, which is what was recorded.
        if b == a && same_key && current.text == incoming.text {
            return Arrival::Duplicate;
        }
        return Arrival::Newer;
    }
    if same_key && current.text == incoming.text && old.etag.is_some() && old.etag == new.etag {
        return Arrival::Duplicate;
    }
    Arrival::Newer
}

/// What the write events' own ordering fields decide, before anything is read: on one key, S3's
/// sequencers order the writes, and one version id is one write. `None` when only the file's time and
/// content can tell (no sequencers, different keys, different or missing version ids). The first
/// rules of [`classify`]; the intake settles a duplicate or late event with it without reading the
/// file.
pub fn arrival_by_event(current: &DesiredSource, incoming: &DesiredSource) -> Option<Arrival> {
    if current.url != incoming.url {
        return None;
    }
    if let (Some(a), Some(b)) = (&current.sequencer, &incoming.sequencer) {
        return Some(match compare_sequencers(b, a) {
            Ordering::Less => Arrival::Older,
            Ordering::Equal => Arrival::Duplicate,
            Ordering::Greater => Arrival::Newer,
        });
    }
    match (&current.version_id, &incoming.version_id) {
        (Some(a), Some(b)) if a == b => Some(Arrival::Duplicate),
        _ => None,
    }
}

/// `YYYY_MM_DD_HH_MM_SS`, as the reference's `currentDate`.
pub fn run_timestamp(at: DateTime<Utc>) -> String {
    at.format("%Y_%m_%d_%H_%M_%S").to_string()
}

/// Largest parameter file stored inline: DynamoDB items are capped at 400 KB and the group item also
/// carries the observed state.
pub const MAX_DESIRED_TEXT_BYTES: usize = 256 * 1024;

/// Largest observed state (as JSON) stored with a group, for the same reason.
pub const MAX_OBSERVED_BYTES: usize = 96 * 1024;

/// Longest bucket, key, ETag, version id or sequencer stored with a desired state. S3 keys are at most
/// 1024 bytes and the others far shorter; a forged event with longer values is refused.
pub const MAX_SOURCE_FIELD_BYTES: usize = 1024;

/// Longest dataset group name or lease owner stored (Personalize names are at most 63 characters).
pub const MAX_NAME_BYTES: usize = 256;

/// DynamoDB's item limit, "400 KB", taken in decimal kilobytes to stay clear of it.
pub const DYNAMO_ITEM_LIMIT_BYTES: usize = 400_000;

/// Upper bound of a group item in the DynamoDB table: the parameter file, the observed JSON, five
/// source fields, the name (in `pk` and `group`) and the lease owner, and at most 24 other attributes
/// of at most 64 bytes each (name and number). It fits one item, so the group item needs no split.
pub const MAX_GROUP_ITEM_BYTES: usize =
    MAX_DESIRED_TEXT_BYTES + MAX_OBSERVED_BYTES + 5 * MAX_SOURCE_FIELD_BYTES + 3 * MAX_NAME_BYTES + 24 * 64;

const _: () = assert!(MAX_GROUP_ITEM_BYTES <= DYNAMO_ITEM_LIMIT_BYTES);

/// One resource as the reconciler last saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceState {
    pub kind: ResourceKind,
    pub name: String,
    /// Personalize's status (`ACTIVE`, `CREATE PENDING`, …) or `ABSENT` when not created yet.
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    /// Personalize's `failureReason`, or why the resource is blocked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// What the reconciler observed at the end of its last pass over a group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observed {
    /// The desired generation this pass worked towards.
    pub generation: u64,
    /// Everything the generation asks for is in place.
    pub converged: bool,
    pub resources: Vec<ResourceState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    pub updated_at: DateTime<Utc>,
    /// A tombstone: `destroy` removed every resource of `generation` at this instant. That file
    /// version is not built again (by a resync or a redelivered event); a new upload is a newer
    /// generation, which the tombstone does not cover.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destroyed_at: Option<DateTime<Utc>>,
    /// The ids of the notifications already written for `generation`, oldest first (at most
    /// [`MAX_ANNOUNCED`]). A later pass of the same generation reaching an outcome already announced
    /// stays silent, whatever was recorded in between: a pass that did not complete, a drift
    /// repaired, another replica's turn. `converged` alone cannot say it: it is the state now, not
    /// what the user was told.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub announced: Vec<String>,
}

/// Most notification ids an observation keeps in [`Observed::announced`]: a generation announces a
/// handful of outcomes at most (complete, failed for a reason, …).
pub const MAX_ANNOUNCED: usize = 16;

impl Observed {
    /// What `previous` announced, when it observed `generation`: carried into the next observation
    /// of the same generation; a new generation starts with nothing announced.
    pub fn announced_for(previous: Option<&Observed>, generation: u64) -> Vec<String> {
        previous
            .filter(|p| p.generation == generation)
            .map(|p| p.announced.clone())
            .unwrap_or_default()
    }

    /// Whether the notification `id` was written for this observation's generation.
    pub fn has_announced(&self, id: &str) -> bool {
        self.announced.iter().any(|a| a == id)
    }

    /// Records that the notification `id` is written with this observation (the oldest is
    /// forgotten past [`MAX_ANNOUNCED`]).
    pub fn remember_announced(&mut self, id: &str) {
        if self.has_announced(id) {
            return;
        }
        self.announced.push(id.to_string());
        let excess = self.announced.len().saturating_sub(MAX_ANNOUNCED);
        self.announced.drain(..excess);
    }

    /// The tombstone `destroy` leaves: `generation`'s resources are gone and stay gone.
    pub fn tombstone(generation: u64, at: DateTime<Utc>) -> Self {
        Self {
            generation,
            converged: false,
            resources: Vec::new(),
            last_error: None,
            updated_at: at,
            destroyed_at: Some(at),
            announced: Vec::new(),
        }
    }

    /// Whether `destroy` removed the resources of desired generation `generation` (and no newer
    /// file has been recorded since).
    pub fn destroyed(&self, generation: Option<u64>) -> bool {
        self.destroyed_at.is_some() && Some(self.generation) == generation
    }
}

/// A held lease on a dataset group. Every fenced write presents it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub group: String,
    pub owner: String,
    /// Bumped by every acquisition: a write with an older epoch is refused.
    pub epoch: u64,
    /// The stored expiry, on the wall clock of the replica that wrote it (other replicas compare it
    /// with theirs to take the group over).
    pub expires_at: DateTime<Utc>,
    /// When the holder must stop working, on this process's monotonic clock: the lease duration,
    /// counted from just before the acquire or renew request was sent, minus the store's maximum
    /// clock skew between replicas. See [`Lease::is_valid`].
    pub valid_until: tokio::time::Instant,
}

impl Lease {
    /// Whether the holder may still act on the group (call Personalize, write state). Judged on the
    /// monotonic clock, so a wall-clock step on this host neither extends nor shortens it, and with the
    /// skew margin, so another replica whose clock runs ahead cannot take the group over while this
    /// one still believes it holds it. The daemon checks it before each pass.
    pub fn is_valid(&self) -> bool {
        tokio::time::Instant::now() < self.valid_until
    }

    /// How long the lease stays valid from now (zero once it is not).
    pub fn remaining(&self) -> std::time::Duration {
        self.valid_until
            .saturating_duration_since(tokio::time::Instant::now())
    }
}

/// The end of a lease's validity: `duration` from `sent` (taken before the request, so the holder's
/// view never outlasts the stored expiry) less `max_clock_skew`.
pub(crate) fn valid_until(
    sent: tokio::time::Instant,
    duration: std::time::Duration,
    max_clock_skew: std::time::Duration,
) -> tokio::time::Instant {
    sent + duration.saturating_sub(max_clock_skew)
}

/// The clock skew between replicas assumed when a store is not told otherwise; the default of
/// `daemon.max_clock_skew_secs`.
pub const DEFAULT_MAX_CLOCK_SKEW: std::time::Duration = std::time::Duration::from_secs(5);

/// The outcome of asking for a lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseGrant {
    Acquired(Lease),
    /// Someone (possibly the caller itself) holds an unexpired lease.
    Held {
        owner: String,
        expires_at: DateTime<Utc>,
    },
}

/// What [`super::StateStore::acquire_lease`] returns besides the grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acquire {
    /// The grant only.
    Lease,
    /// The grant and, when acquired, the group's state as the grant left it (one round trip).
    LeaseAndGroup,
}

/// What a [`super::StateStore::put_observed`] write does besides recording the observed state and
/// the next due time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ObservedWrite {
    /// Gives the lease up in the same conditional write (as `release_lease`).
    pub release: bool,
    /// The group's schedule marks as the writer leaves them: `fires_seen` and `synced_generation`
    /// (when `Some`) are recorded, and if a fire was begun after the writer read `fires_begun`, the
    /// group stays due now (as for a newer generation) so the action is not left waiting.
    pub schedules: Option<ScheduleMarks>,
}

impl ObservedWrite {
    /// The lease stays held (another write of the turn follows).
    pub const KEEP_LEASE: Self = Self {
        release: false,
        schedules: None,
    };
    /// The turn's last write: the lease is given up with it.
    pub const RELEASE: Self = Self {
        release: true,
        schedules: None,
    };
}

/// The lease fields of a group as stored (the holder may have lost it to expiry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseInfo {
    /// `None` after a release.
    pub owner: Option<String>,
    pub epoch: u64,
    pub expires_at: Option<DateTime<Utc>>,
}

/// A group of a due listing ([`super::StateStore::due_groups`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueGroup {
    /// The dataset group.
    pub name: String,
    /// Its desired generation is newer than the one it last observed (a new parameter file, or a
    /// removal, not worked on yet): its turn makes creates, so the dispatcher starts it before
    /// groups due only for a poll or a resync. Listed first.
    pub new_file: bool,
}

impl DueGroup {
    /// The names of a listing, in its order.
    pub fn names(due: &[DueGroup]) -> Vec<String> {
        due.iter().map(|d| d.name.clone()).collect()
    }
}

/// Everything known about one dataset group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupState {
    pub name: String,
    pub desired: Option<Desired>,
    pub observed: Option<Observed>,
    pub lease: LeaseInfo,
    /// When the group must next be reconciled; `None` = only on the next resync or event.
    pub due_at: Option<DateTime<Utc>>,
    /// Whether the group's schedules need reading (see [`ScheduleMarks`]).
    pub schedules: ScheduleMarks,
}

/// What a group item records about its schedules, so that a turn reads them only when it must: to
/// sync a parameter file's schedules it has not synced yet, or when an action may be pending.
///
/// `begin_fire` raises `fires_begun` in the same atomic write that records the action as pending, so
/// no action can be pending unseen: a worker that found no pending action in a schedules query records
/// as `fires_seen` the `fires_begun` it read *before* that query; a fire begun after the read raises
/// `fires_begun` past it. The marks err on the side of querying: an action already ended still counts
/// until a query finds nothing pending.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScheduleMarks {
    /// How many scheduled actions `begin_fire` has ever started for the group.
    pub fires_begun: u64,
    /// `fires_begun` as read before the last schedules query that found no pending action.
    pub fires_seen: u64,
    /// The desired generation whose schedule set was last synced in full. A schedule written or
    /// deleted otherwise clears it.
    pub synced_generation: Option<u64>,
}

impl ScheduleMarks {
    /// Whether a scheduled action may be pending: one was begun after the last query found none.
    pub fn fire_may_be_pending(&self) -> bool {
        self.fires_begun > self.fires_seen
    }

    /// Whether the schedule set of `generation`'s parameter file is recorded as synced.
    pub fn synced(&self, generation: u64) -> bool {
        self.synced_generation == Some(generation)
    }
}

/// A group in a listing: everything but the parameter-file text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSummary {
    pub name: String,
    pub desired_generation: Option<u64>,
    pub desired_source: Option<ObjectUrl>,
    pub observed: Option<Observed>,
    pub lease: LeaseInfo,
    pub due_at: Option<DateTime<Utc>>,
}

impl GroupSummary {
    /// Whether the group was destroyed and no newer parameter file recorded since (see
    /// [`Observed::destroyed_at`]).
    pub fn destroyed(&self) -> bool {
        self.observed
            .as_ref()
            .is_some_and(|o| o.destroyed(self.desired_generation))
    }
}

impl From<GroupState> for GroupSummary {
    fn from(g: GroupState) -> Self {
        Self {
            name: g.name,
            desired_generation: g.desired.as_ref().map(|d| d.generation),
            desired_source: g.desired.map(|d| d.source.url),
            observed: g.observed,
            lease: g.lease,
            due_at: g.due_at,
        }
    }
}

/// Where a group's last observation left it, in one word: what the resync plans with, stored beside
/// the observed JSON (DynamoDB's `observed_state`) so a listing need not read the JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObservedState {
    /// Everything the generation asks for is in place.
    Converged,
    /// The last pass ended with an error (resources failed, or the pass could not complete).
    Failed,
    /// Resources still being created or changed: the turn recorded its next poll time.
    Pending,
    /// `destroy` removed the generation's resources (the tombstone).
    Destroyed,
}

impl ObservedState {
    /// The state of `observed`.
    pub fn of(observed: &Observed) -> Self {
        Self::from_flags(
            observed.destroyed_at.is_some(),
            observed.converged,
            observed.last_error.is_some(),
        )
    }

    /// The state of an observation with a tombstone (`destroyed`), `converged`, and an error.
    pub fn from_flags(destroyed: bool, converged: bool, error: bool) -> Self {
        if destroyed {
            Self::Destroyed
        } else if converged {
            Self::Converged
        } else if error {
            Self::Failed
        } else {
            Self::Pending
        }
    }

    /// The stored word.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Converged => "converged",
            Self::Failed => "failed",
            Self::Pending => "pending",
            Self::Destroyed => "destroyed",
        }
    }

    /// The state a stored word names; `None` for anything else.
    pub fn parse(word: &str) -> Option<Self> {
        [Self::Converged, Self::Failed, Self::Pending, Self::Destroyed]
            .into_iter()
            .find(|s| s.as_str() == word)
    }
}

/// A group as the resync sees it: a couple of hundred bytes, where a [`GroupSummary`] carries the
/// whole observation (every resource with its ARN and reason) and a [`GroupState`] the parameter file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupBrief {
    pub name: String,
    pub desired_generation: Option<u64>,
    /// Which write of which S3 object the desired generation came from (the bucket comparison's
    /// record of it).
    pub desired_source: Option<DesiredSource>,
    /// The generation last observed and where it was left.
    pub observed: Option<(u64, ObservedState)>,
    pub due_at: Option<DateTime<Utc>>,
}

impl GroupBrief {
    /// Whether the group was destroyed and no newer parameter file recorded since (as
    /// [`Observed::destroyed`]).
    pub fn destroyed(&self) -> bool {
        self.observed.is_some_and(|(generation, state)| {
            state == ObservedState::Destroyed && Some(generation) == self.desired_generation
        })
    }
}

impl From<GroupState> for GroupBrief {
    fn from(g: GroupState) -> Self {
        Self {
            observed: g.observed.as_ref().map(|o| (o.generation, ObservedState::of(o))),
            desired_generation: g.desired.as_ref().map(|d| d.generation),
            desired_source: g.desired.map(|d| d.source),
            name: g.name,
            due_at: g.due_at,
        }
    }
}

/// A recurring job of a dataset group (retraining, scheduled imports, batch jobs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    pub group: String,
    pub name: String,
    /// `cron(...)` or `rate(...)`.
    pub expression: String,
    /// What a fire does, as the scheduler encodes it.
    pub target: String,
    /// When the schedule was created or its expression last changed: the anchor of `rate(...)` (as
    /// EventBridge anchors a rate at the rule's creation), and the instant before which no fire counts.
    pub created_at: DateTime<Utc>,
    /// The latest fire instant handled (run, coalesced or skipped). Only written by `record_fire`,
    /// `begin_fire` and `skip_fire`; `put_schedule` leaves it unchanged.
    pub last_fire: Option<DateTime<Utc>>,
    pub next_fire: Option<DateTime<Utc>>,
    pub active: bool,
    /// The fire whose action was recorded by `begin_fire` and has not finished (`finish_fire`).
    /// `put_schedule` leaves it unchanged.
    pub pending_fire: Option<DateTime<Utc>>,
    /// How the last finished (or skipped) fire ended. `put_schedule` leaves it unchanged.
    pub last_outcome: Option<FireOutcome>,
}

/// How one fire of a schedule ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FireOutcome {
    /// The fire instant (from the schedule expression, not when the action ran).
    pub fire: DateTime<Utc>,
    pub status: FireStatus,
    /// One line for people: what was done, what was skipped and why, or Personalize's failure reason.
    pub detail: String,
    /// When the outcome was recorded.
    pub at: DateTime<Utc>,
}

/// The result class of a fire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FireStatus {
    /// The action ran and everything it started is in place.
    Succeeded,
    /// The action failed; `detail` carries the reason.
    Failed,
    /// Nothing was done: no new data, no ACTIVE version, or the fire was missed beyond the catch-up window.
    Skipped,
}

impl FireStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Skipped => "skipped",
        }
    }
}

impl std::fmt::Display for FireOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} (fire {}): {}",
            self.status.as_str(),
            self.fire.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            self.detail
        )
    }
}

/// What `begin_fire` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BeginFire {
    /// The fire is recorded as the schedule's pending action.
    Started,
    /// The schedule's previous action (fire `running`) has not finished: this fire is recorded as
    /// handled and coalesced into it, not queued.
    Coalesced { running: DateTime<Utc> },
    /// This fire (or a later one) was already recorded, or the schedule no longer exists.
    AlreadyHandled,
}

/// The outcome of claiming a schedule fire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FireClaim {
    /// This caller runs the fire.
    Won,
    /// Someone else claimed it first, or the fire was already recorded (`record_fire`) and must not
    /// run again. `owner` is the claimant, empty when the claim itself is gone (expired and deleted).
    Lost { owner: String },
}

/// A stored, unexpired fire claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimInfo {
    pub owner: String,
    pub claimed_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// Orders two sequencers of the same key as S3 documents: right-pad the shorter with zeros, then compare
/// as text (they are upper-case hex).
pub fn compare_sequencers(a: &str, b: &str) -> Ordering {
    let width = a.len().max(b.len());
    let pad = |s: &str| format!("{s:0<width$}").to_ascii_uppercase();
    pad(a).cmp(&pad(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn announcements_are_carried_within_a_generation_and_bounded() {
        let mut o = Observed::tombstone(3, Utc::now());
        o.destroyed_at = None;
        o.remember_announced("a");
        o.remember_announced("a");
        assert_eq!(o.announced, ["a"]);
        assert!(o.has_announced("a") && !o.has_announced("b"));
        assert_eq!(Observed::announced_for(Some(&o), 3), ["a"]);
        assert!(
            Observed::announced_for(Some(&o), 4).is_empty(),
            "a new generation starts afresh"
        );
        assert!(Observed::announced_for(None, 3).is_empty());
        for i in 0..40 {
            o.remember_announced(&format!("id{i}"));
        }
        assert_eq!(o.announced.len(), MAX_ANNOUNCED);
        assert!(
            o.has_announced("id39") && !o.has_announced("a"),
            "the oldest go first"
        );
        // Stored observations written before the field existed read as having announced nothing.
        let legacy =
            r#"{"generation":1,"converged":true,"resources":[],"updated_at":"2026-12-05T18:00:00Z"}"#;
        let parsed: Observed = serde_json::from_str(legacy).expect("legacy JSON");
        assert!(parsed.announced.is_empty());
    }

    #[test]
    fn sequencers_compare_after_right_padding() {
        assert_eq!(
            compare_sequencers("0055AED6DCD90281E5", "0055AED6DCD90281E6"),
            Ordering::Less
        );
        assert_eq!(
            compare_sequencers("0055AED6DCD9028", "0055AED6DCD90281E5"),
            Ordering::Less
        );
        assert_eq!(
            compare_sequencers("0055AED6DCD90290", "0055AED6DCD90281E5"),
            Ordering::Greater
        );
        assert_eq!(compare_sequencers("00ab", "00AB"), Ordering::Equal);
    }

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + secs, 0).expect("valid")
    }

    fn source(key: &str) -> DesiredSource {
        DesiredSource {
            url: ObjectUrl::new("data", key),
            etag: None,
            version_id: None,
            sequencer: None,
            last_modified: None,
        }
    }

    fn current(source: DesiredSource, text: &str) -> Desired {
        Desired {
            generation: 3,
            text: text.into(),
            source,
            received_at: at(0),
            run_timestamp: run_timestamp(at(0)),
        }
    }

    fn incoming(source: DesiredSource, text: &str) -> NewDesired {
        NewDesired {
            group: "g".into(),
            text: text.into(),
            source,
        }
    }

    #[test]
    fn sequencers_decide_on_the_same_key() {
        let seq = |s: &str| DesiredSource {
            sequencer: Some(s.into()),
            // A LastModified pointing the other way must not matter when sequencers exist.
            last_modified: Some(at(if s == "0055A" { 10 } else { 0 })),
            ..source("train/g/config.json")
        };
        let cur = current(seq("0055B"), "{}");
        assert_eq!(classify(&cur, &incoming(seq("0055B"), "{}")), Arrival::Duplicate);
        assert_eq!(classify(&cur, &incoming(seq("0055A"), "{}")), Arrival::Older);
        assert_eq!(classify(&cur, &incoming(seq("0055C"), "{}")), Arrival::Newer);
        // Shorter sequencers are right-padded before comparing.
        assert_eq!(classify(&cur, &incoming(seq("0055B0"), "{}")), Arrival::Duplicate);
    }

    #[test]
    fn sequencers_of_different_keys_are_not_compared() {
        let mut other = source("train/h/config.json");
        other.sequencer = Some("0001".into());
        other.last_modified = Some(at(5));
        let mut mine = source("train/g/config.json");
        mine.sequencer = Some("FFFF".into());
        mine.last_modified = Some(at(1));
        assert_eq!(
            classify(&current(mine, "{}"), &incoming(other, "{}")),
            Arrival::Newer
        );
    }

    #[test]
    fn without_sequencers_last_modified_and_content_decide() {
        let lm = |secs, etag: &str| DesiredSource {
            last_modified: Some(at(secs)),
            etag: Some(etag.into()),
            ..source("train/g/config.json")
        };
        let cur = current(lm(10, "\"e1\""), "one");
        assert_eq!(classify(&cur, &incoming(lm(10, "e1"), "one")), Arrival::Duplicate);
        assert_eq!(classify(&cur, &incoming(lm(9, "e0"), "zero")), Arrival::Older);
        assert_eq!(classify(&cur, &incoming(lm(11, "e2"), "two")), Arrival::Newer);
        // Re-uploading the same text later is a new write, as S3 would give it a new sequencer.
        assert_eq!(classify(&cur, &incoming(lm(12, "e1"), "one")), Arrival::Newer);
        // Same second, different content: newer (the later arrival wins).
        assert_eq!(classify(&cur, &incoming(lm(10, "e3"), "three")), Arrival::Newer);
        // A late old event whose read returned the recorded object: the event's ETag is stale but the
        // object read is the same write.
        assert_eq!(classify(&cur, &incoming(lm(10, "e0"), "one")), Arrival::Duplicate);
    }

    #[test]
    fn last_modified_is_compared_at_stored_precision() {
        let stored = DesiredSource {
            last_modified: Some(at(10)),
            ..source("train/g/config.json")
        };
        let read_again = DesiredSource {
            last_modified: Some(at(10) + chrono::Duration::nanoseconds(400_000)),
            ..source("train/g/config.json")
        };
        let cur = current(stored, "one");
        assert_eq!(classify(&cur, &incoming(read_again, "one")), Arrival::Duplicate);
    }

    #[test]
    fn version_ids_identify_duplicates() {
        let v = |id: &str| DesiredSource {
            version_id: Some(id.into()),
            ..source("train/g/config.json")
        };
        let cur = current(v("v1"), "one");
        assert_eq!(classify(&cur, &incoming(v("v1"), "one")), Arrival::Duplicate);
        assert_eq!(classify(&cur, &incoming(v("v2"), "two")), Arrival::Newer);
    }

    #[test]
    fn only_etag_and_text_known() {
        let e = |etag: &str| DesiredSource {
            etag: Some(etag.into()),
            ..source("train/g/config.json")
        };
        let cur = current(e("e1"), "one");
        assert_eq!(classify(&cur, &incoming(e("e1"), "one")), Arrival::Duplicate);
        assert_eq!(classify(&cur, &incoming(e("e2"), "two")), Arrival::Newer);
        assert_eq!(
            classify(&cur, &incoming(source("train/g/config.json"), "one")),
            Arrival::Newer
        );
    }

    #[test]
    fn kinds_have_reference_names() {
        assert_eq!(ResourceKind::DatasetImportJob.camel(), "DatasetImportJob");
        assert_eq!(ResourceKind::DatasetImportJob.title(), "Dataset Import Job");
        assert_eq!(ResourceKind::SolutionVersion.words(), "solution version");
        assert_eq!(ResourceKind::Schema.title(), "Schema");
        assert_eq!(
            serde_json::to_string(&ResourceKind::BatchSegmentJob).expect("serialise"),
            "\"BatchSegmentJob\""
        );
    }

    #[test]
    fn run_timestamp_is_the_reference_format() {
        let t = DateTime::parse_from_rfc3339("2026-11-28T13:04:08.999Z")
            .expect("valid")
            .with_timezone(&Utc);
        assert_eq!(run_timestamp(t), "2026_11_28_13_04_08");
    }
}
