//! The embedded state store: one SQLite file (or memory), for `local` mode and fast tests.
//!
//! Every call runs on tokio's blocking pool. Decisions that DynamoDB makes with condition expressions
//! are made here inside `BEGIN IMMEDIATE` transactions, so several stores on one file (several
//! processes) stay correct; SQLite's busy timeout serialises them.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};

use super::DueGroup;
use super::clock::{from_millis, plus, to_millis};
use super::model::{Arrival, classify, valid_until};
use super::outbox::{DROPPED_RETENTION, capped};
use super::{
    Acquire, BeginFire, ClaimInfo, Clock, DEFAULT_MAX_CLOCK_SKEW, Desired, DesiredSource, FireClaim,
    FireOutcome, GroupState, GroupSummary, Lease, LeaseGrant, LeaseInfo, NewDesired, NotificationStore,
    Observed, ObservedWrite, PutDesired, Schedule, ScheduleMarks, StateStore, StoreError, StoredNotification,
    SystemClock, check_desired_size, check_name, observed_json, outcome_json, parse_observed, parse_outcome,
    run_timestamp,
};
use super::{GroupBrief, ObservedState};
use crate::locks::LockRecovering;
use crate::objects::ObjectUrl;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS groups (
    name TEXT PRIMARY KEY,
    desired_generation INTEGER,
    desired_text TEXT,
    desired_bucket TEXT,
    desired_key TEXT,
    desired_etag TEXT,
    desired_version_id TEXT,
    desired_sequencer TEXT,
    desired_last_modified_ms INTEGER,
    desired_received_ms INTEGER,
    desired_run_timestamp TEXT,
    observed TEXT,
    lease_owner TEXT,
    lease_epoch INTEGER NOT NULL DEFAULT 0,
    lease_expires_ms INTEGER,
    due_ms INTEGER,
    fires_begun INTEGER NOT NULL DEFAULT 0,
    fires_seen INTEGER NOT NULL DEFAULT 0,
    schedules_synced INTEGER
);
CREATE INDEX IF NOT EXISTS groups_due ON groups (due_ms) WHERE due_ms IS NOT NULL;
CREATE TABLE IF NOT EXISTS schedules (
    group_name TEXT NOT NULL,
    name TEXT NOT NULL,
    expression TEXT NOT NULL,
    target TEXT NOT NULL,
    last_fire_ms INTEGER,
    next_fire_ms INTEGER,
    active INTEGER NOT NULL,
    created_ms INTEGER NOT NULL DEFAULT 0,
    pending_fire_ms INTEGER,
    last_outcome TEXT,
    PRIMARY KEY (group_name, name)
);
CREATE TABLE IF NOT EXISTS schedule_changes (
    group_name TEXT PRIMARY KEY,
    changed_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS schedule_changes_at ON schedule_changes (changed_ms);
CREATE TABLE IF NOT EXISTS fire_claims (
    group_name TEXT NOT NULL,
    schedule TEXT NOT NULL,
    fire_ms INTEGER NOT NULL,
    owner TEXT NOT NULL,
    claimed_ms INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL,
    PRIMARY KEY (group_name, schedule, fire_ms)
);
";

/// The notification outbox ([`NotificationStore`]): one row per pending or dropped notification.
const OUTBOX_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS outbox (
    group_name TEXT NOT NULL,
    id TEXT NOT NULL,
    status TEXT NOT NULL,
    summary TEXT NOT NULL,
    body TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms INTEGER NOT NULL,
    last_error TEXT,
    dropped_ms INTEGER,
    claimed_by TEXT,
    claim_until_ms INTEGER,
    PRIMARY KEY (group_name, id)
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (next_attempt_ms) WHERE dropped_ms IS NULL;
";

/// How long an expired fire claim is kept before a claim purges it: a day.
const FIRE_CLAIMS_KEPT_EXPIRED_MS: i64 = 24 * 3600 * 1000;

/// Claims on account-wide Personalize job names ([`StateStore::claim_job_name`]), and the index
/// that lets the claims of both kinds be purged once expired (DynamoDB's TTL deletes them there).
const CLAIMS_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS job_name_claims (
    name TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    claimed_ms INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS job_name_claims_expiry ON job_name_claims (expires_ms);
CREATE INDEX IF NOT EXISTS fire_claims_expiry ON fire_claims (expires_ms);
";

const OUTBOX_COLUMNS: &str = "id, group_name, status, summary, body, created_ms, attempts, next_attempt_ms, \
     last_error, dropped_ms, claimed_by, claim_until_ms";

/// Columns added to `schedules` after its first release: added to older files on open.
const SCHEDULE_MIGRATIONS: [(&str, &str); 3] = [
    ("created_ms", "INTEGER NOT NULL DEFAULT 0"),
    ("pending_fire_ms", "INTEGER"),
    ("last_outcome", "TEXT"),
];

/// Columns added to `groups` after its first release (the [`super::ScheduleMarks`]).
const GROUP_MIGRATIONS: [(&str, &str); 3] = [
    ("fires_begun", "INTEGER NOT NULL DEFAULT 0"),
    ("fires_seen", "INTEGER NOT NULL DEFAULT 0"),
    ("schedules_synced", "INTEGER"),
];

const SCHEDULE_COLUMNS: &str = "group_name, name, expression, target, last_fire_ms, next_fire_ms, active, \
     created_ms, pending_fire_ms, last_outcome";

const GROUP_COLUMNS: &str = "name, desired_generation, desired_text, desired_bucket, desired_key, desired_etag, \
     desired_version_id, desired_sequencer, desired_last_modified_ms, desired_received_ms, \
     desired_run_timestamp, observed, lease_owner, lease_epoch, lease_expires_ms, due_ms, fires_begun, \
     fires_seen, schedules_synced";

/// The columns of [`StateStore::list_briefs`]: the observation's state is read inside its JSON, so
/// neither the parameter file nor the observed resources leave SQLite.
const BRIEF_COLUMNS: &str = "name, desired_generation, desired_bucket, desired_key, desired_etag, \
     desired_version_id, desired_sequencer, desired_last_modified_ms, \
     json_extract(observed, '$.generation'), json_extract(observed, '$.destroyed_at') IS NOT NULL, \
     COALESCE(json_extract(observed, '$.converged'), 0) = 1, json_extract(observed, '$.last_error') IS NOT NULL, due_ms";

fn read_brief(row: &Row<'_>) -> rusqlite::Result<GroupBrief> {
    let desired_generation: Option<i64> = row.get(1)?;
    let desired_source = match desired_generation {
        None => None,
        Some(_) => Some(DesiredSource {
            url: ObjectUrl::new(
                row.get::<_, Option<String>>(2)?.unwrap_or_default(),
                row.get::<_, Option<String>>(3)?.unwrap_or_default(),
            ),
            etag: row.get(4)?,
            version_id: row.get(5)?,
            sequencer: row.get(6)?,
            last_modified: row.get::<_, Option<i64>>(7)?.map(from_millis),
        }),
    };
    let observed_generation: Option<i64> = row.get(8)?;
    let state = ObservedState::from_flags(row.get(9)?, row.get(10)?, row.get(11)?);
    Ok(GroupBrief {
        name: row.get(0)?,
        desired_generation: desired_generation.map(to_u64),
        desired_source,
        observed: observed_generation.map(|g| (to_u64(g), state)),
        due_at: row.get::<_, Option<i64>>(12)?.map(from_millis),
    })
}

/// The state store in an SQLite database.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    /// One connection per store; calls are serialised on it and run on the blocking pool.
    conn: Arc<Mutex<Connection>>,
    /// Shown in errors: the file path or `:memory:`.
    location: String,
    clock: Arc<dyn Clock>,
    /// Margin taken off every lease's local validity ([`Lease::valid_until`]).
    max_clock_skew: Duration,
    /// Calls made through this store and its clones ([`SqliteStore::calls`]).
    calls: Arc<AtomicU64>,
}

fn sql_error(op: &'static str, what: impl Into<String>) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |e| StoreError::backend(op, what, e)
}

/// Stored integers are `i64`; generations and epochs are `u64` that never come near `i64::MAX`.
fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`, with the wall clock.
    ///
    /// # Errors
    /// `Backend` when the file cannot be opened or the schema cannot be created.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let location = path.display().to_string();
        let conn = Connection::open(path).map_err(sql_error("open", location.clone()))?;
        Self::init(conn, location)
    }

    /// A private in-memory database (lost when the store is dropped).
    pub fn in_memory() -> Result<Self, StoreError> {
        let conn = Connection::open_in_memory().map_err(sql_error("open", ":memory:"))?;
        Self::init(conn, ":memory:".into())
    }

    /// Uses `clock` for "now" (leases, claims, received times).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The largest clock difference between replicas (`daemon.max_clock_skew_secs`); leases stop
    /// being valid that much before their duration is up ([`Lease::is_valid`]).
    pub fn with_max_clock_skew(mut self, max_clock_skew: Duration) -> Self {
        self.max_clock_skew = max_clock_skew;
        self
    }

    fn init(conn: Connection, location: String) -> Result<Self, StoreError> {
        conn.busy_timeout(Duration::from_secs(10))
            .map_err(sql_error("configure", location.clone()))?;
        // WAL lets readers proceed while a writer holds the lock; it is refused for :memory:, harmlessly.
        let _ = conn.pragma_update(None, "journal_mode", "WAL");
        conn.execute_batch(SCHEMA)
            .map_err(sql_error("create schema in", location.clone()))?;
        migrate(&conn, &location, "schedules", &SCHEDULE_MIGRATIONS)?;
        migrate(&conn, &location, "groups", &GROUP_MIGRATIONS)?;
        conn.execute_batch(OUTBOX_SCHEMA)
            .map_err(sql_error("create outbox in", location.clone()))?;
        conn.execute_batch(CLAIMS_SCHEMA)
            .map_err(sql_error("create claims in", location.clone()))?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
            location,
            clock: Arc::new(SystemClock),
            max_clock_skew: DEFAULT_MAX_CLOCK_SKEW,
            calls: Arc::default(),
        })
    }

    /// Calls made so far through this store and its clones, each one transaction on the database:
    /// what a turn costs in round trips, as DynamoDB would count them.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// Takes the lease when free or expired, in one transaction; with [`Acquire::LeaseAndGroup`],
    /// the group as the grant left it (read in the same transaction).
    async fn acquire(
        &self,
        group: &str,
        owner: &str,
        duration: Duration,
        read: Acquire,
    ) -> Result<(LeaseGrant, Option<GroupState>), StoreError> {
        check_name("the dataset group name", group)?;
        check_name("the lease owner", owner)?;
        let (group, owner) = (group.to_string(), owner.to_string());
        let now = self.clock.now();
        let valid_until = valid_until(tokio::time::Instant::now(), duration, self.max_clock_skew);
        self.with_conn("acquire lease", move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(sql_error("begin lease of", group.clone()))?;
            tx.execute(
                "INSERT INTO groups (name) VALUES (?1) ON CONFLICT (name) DO NOTHING",
                params![group],
            )
            .map_err(sql_error("create group", group.clone()))?;
            let (holder, epoch, expires): (Option<String>, i64, Option<i64>) = tx
                .query_row(
                    "SELECT lease_owner, lease_epoch, lease_expires_ms FROM groups WHERE name = ?1",
                    params![group],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .map_err(sql_error("read lease of", group.clone()))?;
            if let (Some(holder), Some(expires)) = (holder, expires)
                && expires >= to_millis(now)
            {
                let held = LeaseGrant::Held {
                    owner: holder,
                    expires_at: from_millis(expires),
                };
                return Ok((held, None));
            }
            let lease = Lease {
                group: group.clone(),
                owner,
                epoch: to_u64(epoch) + 1,
                expires_at: plus(now, duration),
                valid_until,
            };
            tx.execute(
                "UPDATE groups SET lease_owner = ?2, lease_epoch = ?3, lease_expires_ms = ?4 WHERE name = ?1",
                params![
                    group,
                    lease.owner,
                    to_i64(lease.epoch),
                    to_millis(lease.expires_at)
                ],
            )
            .map_err(sql_error("write lease of", group.clone()))?;
            let state = match read {
                Acquire::Lease => None,
                Acquire::LeaseAndGroup => load_group(&tx, &group)?,
            };
            tx.commit().map_err(sql_error("commit lease of", group))?;
            Ok((LeaseGrant::Acquired(lease), state))
        })
        .await
    }

    /// `put_observed`, in one transaction.
    async fn observe(
        &self,
        lease: &Lease,
        observed: &Observed,
        next_due: Option<DateTime<Utc>>,
        write: ObservedWrite,
    ) -> Result<(), StoreError> {
        let json = observed_json(&lease.group, observed)?;
        let lease = lease.clone();
        let generation = to_i64(observed.generation);
        let now = to_millis(self.clock.now());
        self.with_conn("write observed state", move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(sql_error("begin observed state of", lease.group.clone()))?;
            write_observed(&tx, &lease, &json, generation, now, next_due, write)?;
            tx.commit()
                .map_err(sql_error("commit observed state of", lease.group.clone()))
        })
        .await
    }

    /// Due groups that are free, expired, or leased by `owner` (the rule of `acquire_lease`: a lease
    /// is held while `lease_expires_ms >= now`), those with a new file first.
    async fn due(&self, owner: Option<String>, limit: usize) -> Result<Vec<DueGroup>, StoreError> {
        let now = to_millis(self.clock.now());
        let location = self.location.clone();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.with_conn("list due groups", move |conn| {
            let mut stmt = conn
                .prepare(
                    "SELECT name, COALESCE(desired_generation, 0)
                             > COALESCE(json_extract(observed, '$.generation'), 0) AS new_file
                         FROM groups WHERE due_ms IS NOT NULL AND due_ms <= ?1
                         AND (lease_owner IS NULL OR lease_expires_ms IS NULL OR lease_expires_ms < ?1
                              OR lease_owner = ?3)
                     ORDER BY new_file DESC, due_ms, name LIMIT ?2",
                )
                .map_err(sql_error("list due groups in", location.clone()))?;
            let names: Vec<DueGroup> = stmt
                .query_map(params![now, limit, owner], |r| {
                    Ok(DueGroup {
                        name: r.get(0)?,
                        new_file: r.get(1)?,
                    })
                })
                .map_err(sql_error("list due groups in", location.clone()))?
                .collect::<Result<_, _>>()
                .map_err(sql_error("list due groups in", location))?;
            Ok(names)
        })
        .await
    }

    /// Runs `f` on the connection in the blocking pool.
    async fn with_conn<T, F>(&self, op: &'static str, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let conn = Arc::clone(&self.conn);
        let location = self.location.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = conn.lock_recovering();
            f(&mut guard)
        })
        .await
        .map_err(|e| StoreError::backend(op, location, e))?
    }
}

fn read_group(row: &Row<'_>) -> rusqlite::Result<RawGroup> {
    Ok(RawGroup {
        name: row.get(0)?,
        desired_generation: row.get(1)?,
        desired_text: row.get(2)?,
        desired_bucket: row.get(3)?,
        desired_key: row.get(4)?,
        desired_etag: row.get(5)?,
        desired_version_id: row.get(6)?,
        desired_sequencer: row.get(7)?,
        desired_last_modified_ms: row.get(8)?,
        desired_received_ms: row.get(9)?,
        desired_run_timestamp: row.get(10)?,
        observed: row.get(11)?,
        lease_owner: row.get(12)?,
        lease_epoch: row.get(13)?,
        lease_expires_ms: row.get(14)?,
        due_ms: row.get(15)?,
        fires_begun: row.get(16)?,
        fires_seen: row.get(17)?,
        schedules_synced: row.get(18)?,
    })
}

/// A `groups` row as stored.
struct RawGroup {
    name: String,
    desired_generation: Option<i64>,
    desired_text: Option<String>,
    desired_bucket: Option<String>,
    desired_key: Option<String>,
    desired_etag: Option<String>,
    desired_version_id: Option<String>,
    desired_sequencer: Option<String>,
    desired_last_modified_ms: Option<i64>,
    desired_received_ms: Option<i64>,
    desired_run_timestamp: Option<String>,
    observed: Option<String>,
    lease_owner: Option<String>,
    lease_epoch: i64,
    lease_expires_ms: Option<i64>,
    due_ms: Option<i64>,
    fires_begun: i64,
    fires_seen: i64,
    schedules_synced: Option<i64>,
}

impl RawGroup {
    fn into_state(self) -> Result<GroupState, StoreError> {
        let desired = match self.desired_generation {
            None => None,
            Some(generation) => Some(Desired {
                generation: to_u64(generation),
                text: self.desired_text.unwrap_or_default(),
                source: DesiredSource {
                    url: ObjectUrl::new(
                        self.desired_bucket.unwrap_or_default(),
                        self.desired_key.unwrap_or_default(),
                    ),
                    etag: self.desired_etag,
                    version_id: self.desired_version_id,
                    sequencer: self.desired_sequencer,
                    last_modified: self.desired_last_modified_ms.map(from_millis),
                },
                received_at: from_millis(self.desired_received_ms.unwrap_or(0)),
                run_timestamp: self.desired_run_timestamp.unwrap_or_default(),
            }),
        };
        let observed = self
            .observed
            .as_deref()
            .map(|json| parse_observed(&self.name, json))
            .transpose()?;
        Ok(GroupState {
            name: self.name,
            desired,
            observed,
            lease: LeaseInfo {
                owner: self.lease_owner,
                epoch: to_u64(self.lease_epoch),
                expires_at: self.lease_expires_ms.map(from_millis),
            },
            due_at: self.due_ms.map(from_millis),
            schedules: ScheduleMarks {
                fires_begun: to_u64(self.fires_begun),
                fires_seen: to_u64(self.fires_seen),
                synced_generation: self.schedules_synced.map(to_u64),
            },
        })
    }
}

fn load_group(conn: &Connection, name: &str) -> Result<Option<GroupState>, StoreError> {
    conn.query_row(
        &format!("SELECT {GROUP_COLUMNS} FROM groups WHERE name = ?1"),
        params![name],
        read_group,
    )
    .optional()
    .map_err(sql_error("read group", name.to_string()))?
    .map(RawGroup::into_state)
    .transpose()
}

/// The fenced write of `put_observed`: the observed JSON, the schedule marks `write` carries, and the
/// next due time unless a newer desired generation than `generation` arrived or a fire began after
/// the writer read the marks (then due `now`); the lease released with it when `write.release`.
fn write_observed(
    conn: &Connection,
    lease: &Lease,
    json: &str,
    generation: i64,
    now: i64,
    next_due: Option<DateTime<Utc>>,
    write: ObservedWrite,
) -> Result<(), StoreError> {
    let marks = write.schedules;
    let changed = conn
        .execute(
            "UPDATE groups SET observed = ?4,
                 due_ms = CASE WHEN COALESCE(desired_generation, 0) > ?5 OR fires_begun > ?8
                     THEN ?6 ELSE ?7 END,
                 fires_seen = COALESCE(?9, fires_seen),
                 schedules_synced = COALESCE(?10, schedules_synced),
                 lease_owner = CASE WHEN ?11 THEN NULL ELSE lease_owner END,
                 lease_expires_ms = CASE WHEN ?11 THEN NULL ELSE lease_expires_ms END
             WHERE name = ?1 AND lease_owner = ?2 AND lease_epoch = ?3",
            params![
                lease.group,
                lease.owner,
                to_i64(lease.epoch),
                json,
                generation,
                now,
                next_due.map(to_millis),
                marks.map_or(i64::MAX, |m| to_i64(m.fires_begun)),
                marks.map(|m| to_i64(m.fires_seen)),
                marks.and_then(|m| m.synced_generation).map(to_i64),
                write.release,
            ],
        )
        .map_err(sql_error("write observed state of", lease.group.clone()))?;
    if changed == 0 {
        return Err(StoreError::fenced(lease));
    }
    Ok(())
}

/// Clears the group's [`ScheduleMarks::synced_generation`]: its schedule set changed otherwise than
/// by the sync a turn records with its write.
fn unsynced(conn: &Connection, group: &str) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE groups SET schedules_synced = NULL WHERE name = ?1",
        params![group],
    )
    .map(|_| ())
    .map_err(sql_error("clear the schedule sync of", group.to_string()))
}

/// Whether the lease row still carries `lease`'s owner and epoch.
/// Notes that `group`'s schedule set changed now, for [`StateStore::schedule_changes`]; called inside
/// the transaction of the change (one row per group: the latest change is all a reader needs).
fn note_schedule_change(conn: &Connection, group: &str, now_ms: i64) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO schedule_changes (group_name, changed_ms) VALUES (?1, ?2)
         ON CONFLICT (group_name) DO UPDATE SET changed_ms = MAX(changed_ms, ?2)",
        params![group, now_ms],
    )
    .map(|_| ())
    .map_err(sql_error("note the schedule change of", group.to_string()))
}

fn lease_is_current(conn: &Connection, lease: &Lease) -> Result<bool, StoreError> {
    let found: Option<i64> = conn
        .query_row(
            "SELECT 1 FROM groups WHERE name = ?1 AND lease_owner = ?2 AND lease_epoch = ?3",
            params![lease.group, lease.owner, to_i64(lease.epoch)],
            |r| r.get(0),
        )
        .optional()
        .map_err(sql_error("check lease of", lease.group.clone()))?;
    Ok(found.is_some())
}

/// Adds the `columns` of `table` a file created by an older release lacks.
fn migrate(
    conn: &Connection,
    location: &str,
    table: &str,
    columns: &[(&str, &str)],
) -> Result<(), StoreError> {
    let mut stmt = conn
        .prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))
        .map_err(sql_error("read schema of", location.to_string()))?;
    let present: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .and_then(|rows| rows.collect())
        .map_err(sql_error("read schema of", location.to_string()))?;
    for (column, kind) in columns {
        if !present.iter().any(|p| p == column) {
            conn.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} {kind}"))
                .map_err(sql_error("migrate schema of", location.to_string()))?;
        }
    }
    Ok(())
}

/// A `schedules` row as stored (the outcome still JSON).
struct RawSchedule {
    schedule: Schedule,
    outcome: Option<String>,
}

fn read_schedule(row: &Row<'_>) -> rusqlite::Result<RawSchedule> {
    Ok(RawSchedule {
        schedule: Schedule {
            group: row.get(0)?,
            name: row.get(1)?,
            expression: row.get(2)?,
            target: row.get(3)?,
            last_fire: row.get::<_, Option<i64>>(4)?.map(from_millis),
            next_fire: row.get::<_, Option<i64>>(5)?.map(from_millis),
            active: row.get::<_, i64>(6)? != 0,
            created_at: from_millis(row.get(7)?),
            pending_fire: row.get::<_, Option<i64>>(8)?.map(from_millis),
            last_outcome: None,
        },
        outcome: row.get(9)?,
    })
}

impl RawSchedule {
    fn into_schedule(self) -> Result<Schedule, StoreError> {
        let mut s = self.schedule;
        s.last_outcome = self
            .outcome
            .as_deref()
            .map(|json| parse_outcome(&format!("schedule {}/{}", s.group, s.name), json))
            .transpose()?;
        Ok(s)
    }
}

#[async_trait::async_trait]
impl StateStore for SqliteStore {
    async fn ping(&self) -> Result<(), StoreError> {
        let location = self.location.clone();
        self.with_conn("ping", move |conn| {
            conn.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))
                .map(|_| ())
                .map_err(sql_error("ping", location))
        })
        .await
    }

    async fn put_desired(&self, new: &NewDesired) -> Result<PutDesired, StoreError> {
        check_desired_size(new)?;
        let new = new.clone();
        let now = self.clock.now();
        self.with_conn("put desired state", move |conn| {
            let group = new.group.clone();
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(sql_error("begin put desired for", group.clone()))?;
            let current = load_group(&tx, &group)?.and_then(|g| g.desired);
            if let Some(current) = current.clone() {
                match classify(&current, &new) {
                    Arrival::Duplicate => return Ok(PutDesired::Duplicate(current)),
                    Arrival::Older => return Ok(PutDesired::Superseded { current }),
                    Arrival::Newer => {}
                }
            }
            let desired = Desired {
                generation: current.map_or(1, |c| c.generation + 1),
                text: new.text,
                source: new.source,
                received_at: now,
                run_timestamp: run_timestamp(now),
            };
            let s = &desired.source;
            tx.execute(
                "INSERT INTO groups (name) VALUES (?1) ON CONFLICT (name) DO NOTHING",
                params![group],
            )
            .map_err(sql_error("create group", group.clone()))?;
            tx.execute(
                "UPDATE groups SET desired_generation = ?2, desired_text = ?3, desired_bucket = ?4,
                     desired_key = ?5, desired_etag = ?6, desired_version_id = ?7, desired_sequencer = ?8,
                     desired_last_modified_ms = ?9, desired_received_ms = ?10, desired_run_timestamp = ?11,
                     due_ms = MIN(COALESCE(due_ms, ?10), ?10)
                 WHERE name = ?1",
                params![
                    group,
                    to_i64(desired.generation),
                    desired.text,
                    s.url.bucket,
                    s.url.key,
                    s.etag,
                    s.version_id,
                    s.sequencer,
                    s.last_modified.map(to_millis),
                    to_millis(now),
                    desired.run_timestamp,
                ],
            )
            .map_err(sql_error("write desired state of", group.clone()))?;
            tx.commit().map_err(sql_error("commit desired state of", group))?;
            Ok(PutDesired::Recorded(desired))
        })
        .await
    }

    async fn group(&self, name: &str) -> Result<Option<GroupState>, StoreError> {
        let name = name.to_string();
        self.with_conn("read group", move |conn| load_group(conn, &name))
            .await
    }

    async fn list_groups(&self) -> Result<Vec<GroupSummary>, StoreError> {
        let location = self.location.clone();
        self.with_conn("list groups", move |conn| {
            let mut stmt = conn
                .prepare(&format!("SELECT {GROUP_COLUMNS} FROM groups ORDER BY name"))
                .map_err(sql_error("list groups in", location.clone()))?;
            let rows = stmt
                .query_map([], read_group)
                .map_err(sql_error("list groups in", location.clone()))?;
            let mut out = Vec::new();
            for row in rows {
                let raw = row.map_err(sql_error("list groups in", location.clone()))?;
                out.push(GroupSummary::from(raw.into_state()?));
            }
            Ok(out)
        })
        .await
    }

    async fn list_briefs(&self) -> Result<Vec<GroupBrief>, StoreError> {
        let location = self.location.clone();
        self.with_conn("list groups", move |conn| {
            let mut stmt = conn
                .prepare(&format!("SELECT {BRIEF_COLUMNS} FROM groups"))
                .map_err(sql_error("list groups in", location.clone()))?;
            let rows = stmt
                .query_map([], read_brief)
                .map_err(sql_error("list groups in", location.clone()))?;
            rows.collect::<Result<Vec<_>, _>>()
                .map_err(sql_error("list groups in", location.clone()))
        })
        .await
    }

    async fn due_groups(&self, limit: usize) -> Result<Vec<DueGroup>, StoreError> {
        self.due(None, limit).await
    }

    async fn due_groups_for(&self, owner: &str, limit: usize) -> Result<Vec<DueGroup>, StoreError> {
        self.due(Some(owner.to_string()), limit).await
    }

    async fn mark_due(&self, group: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        check_name("the dataset group name", group)?;
        let group = group.to_string();
        self.with_conn("mark due", move |conn| {
            conn.execute(
                "INSERT INTO groups (name, due_ms) VALUES (?1, ?2)
                 ON CONFLICT (name) DO UPDATE SET due_ms = MIN(COALESCE(due_ms, ?2), ?2)",
                params![group, to_millis(at)],
            )
            .map_err(sql_error("mark due", group))?;
            Ok(())
        })
        .await
    }

    async fn acquire_lease(
        &self,
        group: &str,
        owner: &str,
        duration: Duration,
        read: Acquire,
    ) -> Result<(LeaseGrant, Option<GroupState>), StoreError> {
        self.acquire(group, owner, duration, read).await
    }

    async fn renew_lease(&self, lease: &Lease, duration: Duration) -> Result<Lease, StoreError> {
        let renewed = Lease {
            expires_at: plus(self.clock.now(), duration),
            valid_until: valid_until(tokio::time::Instant::now(), duration, self.max_clock_skew),
            ..lease.clone()
        };
        self.with_conn("renew lease", move |conn| {
            let changed = conn
                .execute(
                    "UPDATE groups SET lease_expires_ms = ?4
                     WHERE name = ?1 AND lease_owner = ?2 AND lease_epoch = ?3",
                    params![
                        renewed.group,
                        renewed.owner,
                        to_i64(renewed.epoch),
                        to_millis(renewed.expires_at)
                    ],
                )
                .map_err(sql_error("renew lease of", renewed.group.clone()))?;
            if changed == 0 {
                return Err(StoreError::fenced(&renewed));
            }
            Ok(renewed)
        })
        .await
    }

    async fn release_lease(&self, lease: &Lease) -> Result<(), StoreError> {
        let lease = lease.clone();
        self.with_conn("release lease", move |conn| {
            let changed = conn
                .execute(
                    "UPDATE groups SET lease_owner = NULL, lease_expires_ms = NULL
                     WHERE name = ?1 AND lease_owner = ?2 AND lease_epoch = ?3",
                    params![lease.group, lease.owner, to_i64(lease.epoch)],
                )
                .map_err(sql_error("release lease of", lease.group.clone()))?;
            if changed == 0 {
                return Err(StoreError::fenced(&lease));
            }
            Ok(())
        })
        .await
    }

    async fn put_observed(
        &self,
        lease: &Lease,
        observed: &Observed,
        next_due: Option<DateTime<Utc>>,
        write: ObservedWrite,
    ) -> Result<(), StoreError> {
        self.observe(lease, observed, next_due, write).await
    }

    async fn put_schedule(&self, lease: &Lease, schedule: &Schedule) -> Result<(), StoreError> {
        let lease = lease.clone();
        let s = schedule.clone();
        let now = to_millis(self.clock.now());
        self.with_conn("write schedule", move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(sql_error("begin schedule of", lease.group.clone()))?;
            if !lease_is_current(&tx, &lease)? {
                return Err(StoreError::fenced(&lease));
            }
            tx.execute(
                "INSERT INTO schedules (group_name, name, expression, target, next_fire_ms, active, created_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (group_name, name) DO UPDATE SET expression = ?3, target = ?4,
                     next_fire_ms = ?5, active = ?6, created_ms = ?7",
                params![
                    lease.group,
                    s.name,
                    s.expression,
                    s.target,
                    s.next_fire.map(to_millis),
                    i64::from(s.active),
                    to_millis(s.created_at)
                ],
            )
            .map_err(sql_error("write schedule", format!("{}/{}", lease.group, s.name)))?;
            note_schedule_change(&tx, &lease.group, now)?;
            unsynced(&tx, &lease.group)?;
            tx.commit().map_err(sql_error(
                "commit schedule",
                format!("{}/{}", lease.group, s.name),
            ))
        })
        .await
    }

    async fn delete_schedule(&self, lease: &Lease, name: &str) -> Result<(), StoreError> {
        let lease = lease.clone();
        let name = name.to_string();
        let now = to_millis(self.clock.now());
        self.with_conn("delete schedule", move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(sql_error("begin schedule of", lease.group.clone()))?;
            if !lease_is_current(&tx, &lease)? {
                return Err(StoreError::fenced(&lease));
            }
            tx.execute(
                "DELETE FROM schedules WHERE group_name = ?1 AND name = ?2",
                params![lease.group, name],
            )
            .map_err(sql_error("delete schedule", format!("{}/{name}", lease.group)))?;
            note_schedule_change(&tx, &lease.group, now)?;
            unsynced(&tx, &lease.group)?;
            tx.commit()
                .map_err(sql_error("commit schedule", format!("{}/{name}", lease.group)))
        })
        .await
    }

    async fn delete_group(&self, lease: &Lease) -> Result<(), StoreError> {
        let lease = lease.clone();
        let now = to_millis(self.clock.now());
        self.with_conn("delete group", move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(sql_error("begin delete of", lease.group.clone()))?;
            if !lease_is_current(&tx, &lease)? {
                return Err(StoreError::fenced(&lease));
            }
            for sql in [
                "DELETE FROM schedules WHERE group_name = ?1",
                "DELETE FROM fire_claims WHERE group_name = ?1",
                "DELETE FROM groups WHERE name = ?1",
            ] {
                tx.execute(sql, params![lease.group])
                    .map_err(sql_error("delete group", lease.group.clone()))?;
            }
            note_schedule_change(&tx, &lease.group, now)?;
            tx.commit()
                .map_err(sql_error("commit delete of", lease.group.clone()))
        })
        .await
    }

    async fn schedules(&self, group: Option<&str>) -> Result<Vec<Schedule>, StoreError> {
        let group = group.map(str::to_string);
        let location = self.location.clone();
        self.with_conn("list schedules", move |conn| {
            let mut stmt = conn
                .prepare(&format!(
                    "SELECT {SCHEDULE_COLUMNS} FROM schedules
                     WHERE ?1 IS NULL OR group_name = ?1 ORDER BY group_name, name"
                ))
                .map_err(sql_error("list schedules in", location.clone()))?;
            let rows: Vec<RawSchedule> = stmt
                .query_map(params![group], read_schedule)
                .map_err(sql_error("list schedules in", location.clone()))?
                .collect::<Result<_, _>>()
                .map_err(sql_error("list schedules in", location))?;
            rows.into_iter().map(RawSchedule::into_schedule).collect()
        })
        .await
    }

    async fn set_schedule_active(&self, group: &str, name: &str, active: bool) -> Result<bool, StoreError> {
        let (group, name) = (group.to_string(), name.to_string());
        let now = to_millis(self.clock.now());
        self.with_conn("set schedule state", move |conn| {
            let what = format!("{group}/{name}");
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(sql_error("begin schedule state of", what.clone()))?;
            let changed = tx
                .execute(
                    "UPDATE schedules SET active = ?3 WHERE group_name = ?1 AND name = ?2",
                    params![group, name, i64::from(active)],
                )
                .map_err(sql_error("set schedule state", what.clone()))?;
            if changed > 0 {
                note_schedule_change(&tx, &group, now)?;
            }
            tx.commit().map_err(sql_error("commit schedule state", what))?;
            Ok(changed > 0)
        })
        .await
    }

    async fn schedule_changes(&self, since: DateTime<Utc>) -> Result<Vec<String>, StoreError> {
        let location = self.location.clone();
        self.with_conn("list schedule changes", move |conn| {
            let mut stmt = conn
                .prepare("SELECT group_name FROM schedule_changes WHERE changed_ms >= ?1 ORDER BY group_name")
                .map_err(sql_error("list schedule changes in", location.clone()))?;
            stmt.query_map(params![to_millis(since)], |row| row.get::<_, String>(0))
                .map_err(sql_error("list schedule changes in", location.clone()))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(sql_error("list schedule changes in", location))
        })
        .await
    }

    async fn record_fire(
        &self,
        group: &str,
        name: &str,
        fired_at: DateTime<Utc>,
        next_fire: Option<DateTime<Utc>>,
    ) -> Result<bool, StoreError> {
        let (group, name) = (group.to_string(), name.to_string());
        self.with_conn("record fire", move |conn| {
            let changed = conn
                .execute(
                    "UPDATE schedules SET last_fire_ms = ?3, next_fire_ms = ?4
                     WHERE group_name = ?1 AND name = ?2 AND (last_fire_ms IS NULL OR last_fire_ms < ?3)",
                    params![group, name, to_millis(fired_at), next_fire.map(to_millis)],
                )
                .map_err(sql_error("record fire of", format!("{group}/{name}")))?;
            Ok(changed > 0)
        })
        .await
    }

    async fn begin_fire(
        &self,
        group: &str,
        name: &str,
        fire: DateTime<Utc>,
        next_fire: Option<DateTime<Utc>>,
    ) -> Result<BeginFire, StoreError> {
        let (group, name) = (group.to_string(), name.to_string());
        self.with_conn("begin fire", move |conn| {
            let what = format!("{group}/{name}@{fire}");
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(sql_error("begin fire of", what.clone()))?;
            let row: Option<(Option<i64>, Option<i64>)> = tx
                .query_row(
                    "SELECT last_fire_ms, pending_fire_ms FROM schedules WHERE group_name = ?1 AND name = ?2",
                    params![group, name],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
                .map_err(sql_error("read schedule of fire", what.clone()))?;
            let fire_ms = to_millis(fire);
            let outcome = match row {
                None => BeginFire::AlreadyHandled,
                Some((Some(last), _)) if last >= fire_ms => BeginFire::AlreadyHandled,
                Some((_, pending)) => {
                    tx.execute(
                        "UPDATE schedules SET last_fire_ms = ?3, next_fire_ms = ?4,
                             pending_fire_ms = COALESCE(pending_fire_ms, ?3)
                         WHERE group_name = ?1 AND name = ?2",
                        params![group, name, fire_ms, next_fire.map(to_millis)],
                    )
                    .map_err(sql_error("record fire of", what.clone()))?;
                    match pending {
                        Some(running) => BeginFire::Coalesced {
                            running: from_millis(running),
                        },
                        None => {
                            // In the fire's transaction: the group's marks never miss a pending action.
                            tx.execute(
                                "INSERT INTO groups (name, fires_begun) VALUES (?1, 1)
                                 ON CONFLICT (name) DO UPDATE SET fires_begun = fires_begun + 1",
                                params![group],
                            )
                            .map_err(sql_error("count the fire of", what.clone()))?;
                            BeginFire::Started
                        }
                    }
                }
            };
            tx.commit().map_err(sql_error("commit fire of", what))?;
            Ok(outcome)
        })
        .await
    }

    async fn finish_fire(&self, group: &str, name: &str, outcome: &FireOutcome) -> Result<bool, StoreError> {
        let (group, name) = (group.to_string(), name.to_string());
        let json = outcome_json(&format!("schedule {group}/{name}"), outcome)?;
        let fire_ms = to_millis(outcome.fire);
        self.with_conn("finish fire", move |conn| {
            let changed = conn
                .execute(
                    "UPDATE schedules SET last_outcome = ?4, pending_fire_ms = NULL
                     WHERE group_name = ?1 AND name = ?2 AND pending_fire_ms = ?3",
                    params![group, name, fire_ms, json],
                )
                .map_err(sql_error("finish fire of", format!("{group}/{name}")))?;
            Ok(changed > 0)
        })
        .await
    }

    async fn skip_fire(
        &self,
        group: &str,
        name: &str,
        outcome: &FireOutcome,
        next_fire: Option<DateTime<Utc>>,
    ) -> Result<bool, StoreError> {
        let (group, name) = (group.to_string(), name.to_string());
        let json = outcome_json(&format!("schedule {group}/{name}"), outcome)?;
        let fire_ms = to_millis(outcome.fire);
        self.with_conn("skip fire", move |conn| {
            let changed = conn
                .execute(
                    "UPDATE schedules SET last_fire_ms = ?3, next_fire_ms = ?4, last_outcome = ?5
                     WHERE group_name = ?1 AND name = ?2 AND (last_fire_ms IS NULL OR last_fire_ms < ?3)",
                    params![group, name, fire_ms, next_fire.map(to_millis), json],
                )
                .map_err(sql_error("skip fire of", format!("{group}/{name}")))?;
            Ok(changed > 0)
        })
        .await
    }

    async fn claim_fire(
        &self,
        group: &str,
        schedule: &str,
        fire_time: DateTime<Utc>,
        owner: &str,
        ttl: Duration,
    ) -> Result<FireClaim, StoreError> {
        let (group, schedule, owner) = (group.to_string(), schedule.to_string(), owner.to_string());
        let now = self.clock.now();
        self.with_conn("claim fire", move |conn| {
            let what = format!("{group}/{schedule}@{fire_time}");
            let fire_ms = to_millis(fire_time);
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(sql_error("begin claim of", what.clone()))?;
            // Without the purge every fire and every resync window (claimed under `*resync`, about
            // 144 a day) would leave a row for good. An expired claim counts as absent, but the
            // owner of a recorded fire's claim is still reported for a while, as DynamoDB's TTL,
            // which deletes lazily, does.
            tx.execute(
                "DELETE FROM fire_claims WHERE expires_ms <= ?1",
                params![to_millis(now) - FIRE_CLAIMS_KEPT_EXPIRED_MS],
            )
            .map_err(sql_error("purge expired fire claims before", what.clone()))?;
            // A fire already recorded on the schedule is done for good, whatever became of its claim.
            let recorded: Option<i64> = tx
                .query_row(
                    "SELECT 1 FROM schedules WHERE group_name = ?1 AND name = ?2 AND last_fire_ms >= ?3",
                    params![group, schedule, fire_ms],
                    |r| r.get(0),
                )
                .optional()
                .map_err(sql_error("read schedule of fire", what.clone()))?;
            // An expired claim counts as absent, as it would once DynamoDB's TTL deleted it.
            let changed = if recorded.is_some() {
                0
            } else {
                tx.execute(
                    "INSERT INTO fire_claims (group_name, schedule, fire_ms, owner, claimed_ms, expires_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT (group_name, schedule, fire_ms) DO UPDATE SET
                         owner = ?4, claimed_ms = ?5, expires_ms = ?6
                     WHERE fire_claims.expires_ms <= ?5",
                    params![
                        group,
                        schedule,
                        fire_ms,
                        owner,
                        to_millis(now),
                        to_millis(plus(now, ttl))
                    ],
                )
                .map_err(sql_error("claim fire", what.clone()))?
            };
            let outcome = if changed > 0 {
                FireClaim::Won
            } else {
                let winner: Option<String> = tx
                    .query_row(
                        "SELECT owner FROM fire_claims WHERE group_name = ?1 AND schedule = ?2 AND fire_ms = ?3",
                        params![group, schedule, fire_ms],
                        |r| r.get(0),
                    )
                    .optional()
                    .map_err(sql_error("read fire claim", what.clone()))?;
                FireClaim::Lost {
                    owner: winner.unwrap_or_default(),
                }
            };
            tx.commit().map_err(sql_error("commit claim of", what))?;
            Ok(outcome)
        })
        .await
    }

    async fn fire_claim(
        &self,
        group: &str,
        schedule: &str,
        fire_time: DateTime<Utc>,
    ) -> Result<Option<ClaimInfo>, StoreError> {
        let (group, schedule) = (group.to_string(), schedule.to_string());
        let now = to_millis(self.clock.now());
        self.with_conn("read fire claim", move |conn| {
            conn.query_row(
                "SELECT owner, claimed_ms, expires_ms FROM fire_claims
                 WHERE group_name = ?1 AND schedule = ?2 AND fire_ms = ?3 AND expires_ms > ?4",
                params![group, schedule, to_millis(fire_time), now],
                |r| {
                    Ok(ClaimInfo {
                        owner: r.get(0)?,
                        claimed_at: from_millis(r.get(1)?),
                        expires_at: from_millis(r.get(2)?),
                    })
                },
            )
            .optional()
            .map_err(sql_error(
                "read fire claim",
                format!("{group}/{schedule}@{fire_time}"),
            ))
        })
        .await
    }

    async fn claim_job_name(
        &self,
        name: &str,
        owner: &str,
        replacing: Option<&str>,
        ttl: Duration,
    ) -> Result<String, StoreError> {
        let (name, owner, replacing) = (name.to_string(), owner.to_string(), replacing.map(str::to_string));
        let now = self.clock.now();
        self.with_conn("claim job name", move |conn| {
            let what = format!("job name {name}");
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(sql_error("begin claim of", what.clone()))?;
            tx.execute(
                "DELETE FROM job_name_claims WHERE expires_ms <= ?1",
                params![to_millis(now)],
            )
            .map_err(sql_error("purge expired job name claims before", what.clone()))?;
            tx.execute(
                "INSERT INTO job_name_claims (name, owner, claimed_ms, expires_ms) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (name) DO UPDATE SET owner = ?2, claimed_ms = ?3, expires_ms = ?4
                 WHERE job_name_claims.owner = ?2 OR job_name_claims.owner = ?5",
                params![name, owner, to_millis(now), to_millis(plus(now, ttl)), replacing],
            )
            .map_err(sql_error("claim", what.clone()))?;
            let holder: String = tx
                .query_row(
                    "SELECT owner FROM job_name_claims WHERE name = ?1",
                    params![name],
                    |r| r.get(0),
                )
                .map_err(sql_error("read claim of", what.clone()))?;
            tx.commit().map_err(sql_error("commit claim of", what))?;
            Ok(holder)
        })
        .await
    }
}

fn read_notification(row: &Row<'_>) -> rusqlite::Result<StoredNotification> {
    Ok(StoredNotification {
        id: row.get(0)?,
        group: row.get(1)?,
        status: row.get(2)?,
        summary: row.get(3)?,
        body: row.get(4)?,
        created_at: from_millis(row.get(5)?),
        attempts: u32::try_from(row.get::<_, i64>(6)?).unwrap_or(u32::MAX),
        next_attempt_at: from_millis(row.get(7)?),
        last_error: row.get(8)?,
        dropped_at: row.get::<_, Option<i64>>(9)?.map(from_millis),
        claimed_by: row.get(10)?,
        claim_until: row.get::<_, Option<i64>>(11)?.map(from_millis),
    })
}

/// Inserts `n` unless its (group, id) exists; `what` names it in errors.
fn insert_notification(conn: &Connection, n: &StoredNotification) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO outbox (group_name, id, status, summary, body, created_ms, attempts, next_attempt_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0, ?7)
         ON CONFLICT (group_name, id) DO NOTHING",
        params![
            n.group,
            n.id,
            n.status,
            capped(&n.summary),
            n.body,
            to_millis(n.created_at),
            to_millis(n.next_attempt_at)
        ],
    )
    .map_err(sql_error("write notification", format!("{}/{}", n.group, n.id)))?;
    Ok(())
}

#[async_trait::async_trait]
impl NotificationStore for SqliteStore {
    async fn put_observed_notifying(
        &self,
        lease: &Lease,
        observed: &Observed,
        next_due: Option<DateTime<Utc>>,
        write: ObservedWrite,
        notification: &StoredNotification,
    ) -> Result<(), StoreError> {
        let json = observed_json(&lease.group, observed)?;
        let lease = lease.clone();
        let generation = to_i64(observed.generation);
        let now = to_millis(self.clock.now());
        let n = notification.clone();
        self.with_conn("write observed state and notification", move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(sql_error("begin observed state of", lease.group.clone()))?;
            write_observed(&tx, &lease, &json, generation, now, next_due, write)?;
            insert_notification(&tx, &n)?;
            tx.commit()
                .map_err(sql_error("commit observed state of", lease.group.clone()))
        })
        .await
    }

    async fn enqueue_notification(&self, notification: &StoredNotification) -> Result<(), StoreError> {
        let n = notification.clone();
        self.with_conn("write notification", move |conn| insert_notification(conn, &n))
            .await
    }

    async fn due_notifications(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<StoredNotification>, StoreError> {
        let location = self.location.clone();
        let now = to_millis(now);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.with_conn("list due notifications", move |conn| {
            let mut stmt = conn
                .prepare(&format!(
                    "SELECT {OUTBOX_COLUMNS} FROM outbox
                     WHERE dropped_ms IS NULL AND next_attempt_ms <= ?1
                       AND (claim_until_ms IS NULL OR claim_until_ms < ?1)
                     ORDER BY created_ms, group_name, id LIMIT ?2"
                ))
                .map_err(sql_error("list due notifications in", location.clone()))?;
            stmt.query_map(params![now, limit], read_notification)
                .and_then(|rows| rows.collect())
                .map_err(sql_error("list due notifications in", location))
        })
        .await
    }

    async fn claim_notification(
        &self,
        group: &str,
        id: &str,
        owner: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let (group, id, owner) = (group.to_string(), id.to_string(), owner.to_string());
        self.with_conn("claim notification", move |conn| {
            let changed = conn
                .execute(
                    "UPDATE outbox SET claimed_by = ?3, claim_until_ms = ?5, attempts = attempts + 1
                     WHERE group_name = ?1 AND id = ?2 AND dropped_ms IS NULL
                       AND (claim_until_ms IS NULL OR claim_until_ms < ?4)",
                    params![group, id, owner, to_millis(now), to_millis(until)],
                )
                .map_err(sql_error("claim notification", format!("{group}/{id}")))?;
            Ok(changed == 1)
        })
        .await
    }

    async fn delete_notification(&self, group: &str, id: &str) -> Result<(), StoreError> {
        let (group, id) = (group.to_string(), id.to_string());
        self.with_conn("delete notification", move |conn| {
            conn.execute(
                "DELETE FROM outbox WHERE group_name = ?1 AND id = ?2",
                params![group, id],
            )
            .map_err(sql_error("delete notification", format!("{group}/{id}")))?;
            Ok(())
        })
        .await
    }

    async fn retry_notification(
        &self,
        group: &str,
        id: &str,
        owner: &str,
        next_attempt_at: DateTime<Utc>,
        error: &str,
    ) -> Result<bool, StoreError> {
        let (group, id, owner, error) = (
            group.to_string(),
            id.to_string(),
            owner.to_string(),
            capped(error),
        );
        self.with_conn("release notification", move |conn| {
            let changed = conn
                .execute(
                    "UPDATE outbox SET next_attempt_ms = ?4, last_error = ?5, claimed_by = NULL,
                         claim_until_ms = NULL
                     WHERE group_name = ?1 AND id = ?2 AND claimed_by = ?3 AND dropped_ms IS NULL",
                    params![group, id, owner, to_millis(next_attempt_at), error],
                )
                .map_err(sql_error("release notification", format!("{group}/{id}")))?;
            Ok(changed == 1)
        })
        .await
    }

    async fn drop_notification(
        &self,
        group: &str,
        id: &str,
        owner: &str,
        now: DateTime<Utc>,
        error: &str,
    ) -> Result<bool, StoreError> {
        let (group, id, owner, error) = (
            group.to_string(),
            id.to_string(),
            owner.to_string(),
            capped(error),
        );
        let forget_before = to_millis(now) - i64::try_from(DROPPED_RETENTION.as_millis()).unwrap_or(i64::MAX);
        self.with_conn("drop notification", move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(sql_error("begin drop of notification", format!("{group}/{id}")))?;
            let changed = tx
                .execute(
                    "UPDATE outbox SET dropped_ms = ?4, last_error = ?5, body = '', claimed_by = NULL,
                         claim_until_ms = NULL
                     WHERE group_name = ?1 AND id = ?2 AND claimed_by = ?3 AND dropped_ms IS NULL",
                    params![group, id, owner, to_millis(now), error],
                )
                .map_err(sql_error("drop notification", format!("{group}/{id}")))?;
            // What DynamoDB's TTL does to dropped items there.
            tx.execute(
                "DELETE FROM outbox WHERE dropped_ms IS NOT NULL AND dropped_ms < ?1",
                params![forget_before],
            )
            .map_err(sql_error(
                "forget old dropped notifications",
                format!("{group}/{id}"),
            ))?;
            tx.commit()
                .map_err(sql_error("commit drop of notification", format!("{group}/{id}")))?;
            Ok(changed == 1)
        })
        .await
    }

    async fn notifications(&self, group: Option<&str>) -> Result<Vec<StoredNotification>, StoreError> {
        let location = self.location.clone();
        let group = group.map(str::to_string);
        self.with_conn("list notifications", move |conn| {
            let mut stmt = conn
                .prepare(&format!(
                    "SELECT {OUTBOX_COLUMNS} FROM outbox WHERE ?1 IS NULL OR group_name = ?1
                     ORDER BY group_name, created_ms, id"
                ))
                .map_err(sql_error("list notifications in", location.clone()))?;
            stmt.query_map(params![group], read_notification)
                .and_then(|rows| rows.collect())
                .map_err(sql_error("list notifications in", location))
        })
        .await
    }
}
