//! The timer runtime: every replica keeps all schedules in memory, wakes at the earliest fire instant
//! (or to reload), and for each fire found due claims it in the store before anything is done.
//!
//! Exactly once: `claim_fire` is a conditional write on (schedule, fire instant), so one replica wins;
//! the winner's `begin_fire` records the action as pending on the schedule item (or coalesces it into
//! a running one) and marks the group due; the group's worker performs it. A replica that loses the
//! claim does nothing; if the winner dies before `begin_fire`, the claim expires and the fire is still
//! unhandled in the store, so the next reload of any replica claims it again.
//!
//! Reloads read only what changed: the store lists the groups whose schedule set changed since an
//! instant ([`StateStore::schedule_changes`]), and only those groups' schedules are read again. The
//! whole table is read once, at start. (Reading all 10,000 schedules of the benchmark every 30 s held
//! SQLite's one connection for seconds, and fires falling meanwhile waited for it: p99 14.4 s.)

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::fire::{Decision, decide};
use crate::metrics::{Counter, MetricsSink};
use crate::settings::SchedulerSettings;
use crate::spec::schedule::Schedule as Expression;
use crate::store::{BeginFire, Clock, FireClaim, FireOutcome, FireStatus, Schedule, StateStore, StoreError};

/// How the runtime works.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// This replica's name in fire claims.
    pub owner: String,
    /// A missed fire younger than this runs once on start; an older one is skipped.
    pub catch_up: chrono::Duration,
    /// How long a claim holds before another replica may take the fire over.
    pub claim_ttl: Duration,
    /// All schedules are read again this often (another replica may have recorded a generation).
    pub reload: Duration,
}

impl RuntimeConfig {
    pub fn from_settings(settings: &SchedulerSettings, owner: impl Into<String>) -> Self {
        Self {
            owner: owner.into(),
            catch_up: chrono::Duration::seconds(
                i64::try_from(settings.catch_up_secs).unwrap_or(i64::MAX / 1000),
            ),
            claim_ttl: Duration::from_secs(settings.claim_ttl_secs.max(1)),
            reload: Duration::from_millis(settings.reload_ms.max(10)),
        }
    }
}

/// One schedule as loaded, with its parsed expression.
#[derive(Debug, Clone)]
struct Loaded {
    schedule: Schedule,
    expression: Expression,
    /// Fires up to here are dealt with (locally known): `last_fire`, else `created_at`.
    handled: DateTime<Utc>,
    /// The first fire after `handled`: a tick looks closer only at schedules whose `next` has come,
    /// so an idle tick over thousands of schedules is a comparison each.
    next: Option<DateTime<Utc>>,
}

/// What one tick did, for tests and the benchmark.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TickReport {
    /// Fires this replica claimed and recorded as pending actions: (group, schedule, fire).
    pub started: Vec<(String, String, DateTime<Utc>)>,
    /// Fires folded into their schedule's running action.
    pub coalesced: usize,
    /// Fires skipped, older than the catch-up window.
    pub skipped: usize,
    /// Fires another replica claimed or handled first.
    pub lost: usize,
    /// The earliest fire instant still ahead.
    pub next_wake: Option<DateTime<Utc>>,
}

/// A fire found due: the schedule, the fire instant, the one after it, and now.
#[derive(Clone, Copy)]
struct Due<'a> {
    schedule: &'a Schedule,
    fire: DateTime<Utc>,
    next: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
}

/// How far before the last reload's start the next one asks for changes: changes are stamped with
/// the writer's clock, which may run behind this replica's (`daemon.max_clock_skew_secs`, 5 s by
/// default), and a change may commit a moment after its stamp. Re-reading a group that changed a
/// minute ago costs one query.
const CHANGES_OVERLAP: chrono::Duration = chrono::Duration::seconds(60);

/// What a reload read: everything, or the schedules of the groups that changed.
enum Reloaded {
    All(Vec<Loaded>),
    Groups {
        groups: BTreeSet<String>,
        loaded: Vec<Loaded>,
    },
}

/// A reload under way beside the timer: what it read, and when it started reading.
type ReloadTask = tokio::task::JoinHandle<Result<(Reloaded, DateTime<Utc>), StoreError>>;

/// The scheduler of one replica.
pub struct Runtime {
    store: Arc<dyn StateStore>,
    clock: Arc<dyn Clock>,
    metrics: Arc<dyn MetricsSink>,
    config: RuntimeConfig,
    loaded: Mutex<Vec<Loaded>>,
    /// Changes at or after this instant are still to be read (`None`: read everything).
    changes_since: Mutex<Option<DateTime<Utc>>>,
    /// Groups with a fire this replica failed to record: read again at the next reload, which makes
    /// the fire due again (it is still unhandled in the store).
    failed_groups: Mutex<BTreeSet<String>>,
    /// Groups with a fire another replica claimed, and when that claim expires: read again at the
    /// first reload after it, so that a fire whose winner died before recording it is taken over.
    lost_claims: Mutex<Vec<(DateTime<Utc>, String)>>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Runtime {
    /// `clock` must be the store's clock (claims expire on it).
    pub fn new(
        store: Arc<dyn StateStore>,
        clock: Arc<dyn Clock>,
        metrics: Arc<dyn MetricsSink>,
        config: RuntimeConfig,
    ) -> Self {
        Self {
            store,
            clock,
            metrics,
            config,
            loaded: Mutex::new(Vec::new()),
            changes_since: Mutex::new(None),
            failed_groups: Mutex::new(BTreeSet::new()),
            lost_claims: Mutex::new(Vec::new()),
        }
    }

    /// Schedules loaded (all, active or not).
    pub fn loaded(&self) -> usize {
        self.loaded.lock().unwrap_or_else(PoisonError::into_inner).len()
    }

    /// Reads every schedule from the store. An expression that no longer parses (written by another
    /// release) is logged and left out.
    pub async fn reload(&self) -> Result<(), StoreError> {
        let started = self.clock.now();
        let loaded = load(self.store.as_ref()).await?;
        self.install(Reloaded::All(loaded), started);
        Ok(())
    }

    /// Reads what changed since the last reload (everything, the first time): the schedules of the
    /// groups whose schedule set changed, and of the groups where a fire failed to be recorded.
    pub async fn reload_changes(&self) -> Result<(), StoreError> {
        let started = self.clock.now();
        let reloaded = self.read_changes().await?;
        self.install(reloaded, started);
        Ok(())
    }

    async fn read_changes(&self) -> Result<Reloaded, StoreError> {
        let since = *self.changes_since.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(since) = since else {
            return Ok(Reloaded::All(load(self.store.as_ref()).await?));
        };
        let mut groups: BTreeSet<String> =
            std::mem::take(&mut *self.failed_groups.lock().unwrap_or_else(PoisonError::into_inner));
        let now = self.clock.now();
        self.lost_claims
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|(expires, group)| {
                let expired = *expires <= now;
                if expired {
                    groups.insert(group.clone());
                }
                !expired
            });
        let changed = self.store.schedule_changes(since).await;
        let changed = match changed {
            Ok(c) => c,
            Err(e) => {
                // Not read: try these groups again next time.
                self.failed_groups
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .extend(groups);
                return Err(e);
            }
        };
        groups.extend(changed);
        let mut loaded = Vec::new();
        for group in &groups {
            match self.store.schedules(Some(group)).await {
                Ok(schedules) => loaded.extend(parse(schedules)),
                Err(e) => {
                    self.failed_groups
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .extend(groups.iter().cloned());
                    return Err(e);
                }
            }
        }
        Ok(Reloaded::Groups { groups, loaded })
    }

    /// Puts what a reload read in place; the next reload asks for changes since `started` (less the
    /// overlap).
    fn install(&self, reloaded: Reloaded, started: DateTime<Utc>) {
        {
            let mut current = self.loaded.lock().unwrap_or_else(PoisonError::into_inner);
            match reloaded {
                Reloaded::All(all) => *current = all,
                Reloaded::Groups { groups, loaded } => {
                    current.retain(|l| !groups.contains(&l.schedule.group));
                    current.extend(loaded);
                }
            }
        }
        *self.changes_since.lock().unwrap_or_else(PoisonError::into_inner) = Some(started - CHANGES_OVERLAP);
    }

    /// Deals with every fire due at the clock's now: claims and starts it, coalesces it, or skips it.
    /// Errors of one schedule are logged and do not stop the others (the fire stays unhandled in the
    /// store and is retried after the next reload).
    pub async fn tick(&self) -> TickReport {
        let now = self.clock.now();
        let due: Vec<(usize, Decision)> = {
            let loaded = self.loaded.lock().unwrap_or_else(PoisonError::into_inner);
            loaded
                .iter()
                .enumerate()
                .map(|(i, l)| match l.next {
                    Some(next) if next <= now => (
                        i,
                        decide(
                            &l.expression,
                            l.schedule.created_at,
                            l.handled,
                            now,
                            self.config.catch_up,
                        ),
                    ),
                    next => (i, Decision::Wait { next }),
                })
                .collect()
        };
        let mut report = TickReport::default();
        for (index, decision) in due {
            let (fire, next) = match decision {
                Decision::Wait { next } => {
                    if let Some(l) = self
                        .loaded
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .get_mut(index)
                    {
                        l.next = next;
                    }
                    report.next_wake = earliest(report.next_wake, next);
                    continue;
                }
                Decision::Run { fire, next } | Decision::Skip { fire, next } => (fire, next),
            };
            report.next_wake = earliest(report.next_wake, next);
            let schedule = {
                let mut loaded = self.loaded.lock().unwrap_or_else(PoisonError::into_inner);
                let Some(l) = loaded.get_mut(index) else { continue };
                l.handled = fire;
                l.next = next;
                l.schedule.clone()
            };
            let result = if !schedule.active {
                // A deactivated schedule's fires pass unrun, so activating it later does not catch
                // them up (EventBridge does not replay fires of a disabled rule either).
                self.store
                    .record_fire(&schedule.group, &schedule.name, fire, next)
                    .await
                    .map(|_| ())
            } else {
                let due = Due {
                    schedule: &schedule,
                    fire,
                    next,
                    now,
                };
                if matches!(decision, Decision::Skip { .. }) {
                    self.skip(due, &mut report).await
                } else {
                    self.run(due, &mut report).await
                }
            };
            if let Err(e) = result {
                tracing::warn!(group = %schedule.group, schedule = %schedule.name, fire = %fire, error = %e, "fire not handled; retried after the next reload");
                self.failed_groups
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(schedule.group.clone());
            }
        }
        report
    }

    async fn skip(&self, due: Due<'_>, report: &mut TickReport) -> Result<(), StoreError> {
        let Due {
            schedule: s,
            fire,
            next,
            now,
        } = due;
        let late = (now - fire).num_seconds();
        let outcome = FireOutcome {
            fire,
            status: FireStatus::Skipped,
            detail: format!(
                "missed: no replica ran at the fire instant, and {late} s later is beyond the catch-up window of {} s (scheduler.catch_up_secs)",
                self.config.catch_up.num_seconds()
            ),
            at: now,
        };
        if self.store.skip_fire(&s.group, &s.name, &outcome, next).await? {
            report.skipped += 1;
            self.metrics.count(Counter::ScheduledRunsSkipped);
            tracing::warn!(group = %s.group, schedule = %s.name, fire = %fire, late_secs = late, "missed fire skipped: older than the catch-up window");
        }
        Ok(())
    }

    async fn run(&self, due: Due<'_>, report: &mut TickReport) -> Result<(), StoreError> {
        let Due {
            schedule: s,
            fire,
            next,
            now,
        } = due;
        match self
            .store
            .claim_fire(&s.group, &s.name, fire, &self.config.owner, self.config.claim_ttl)
            .await?
        {
            FireClaim::Lost { owner } => {
                report.lost += 1;
                let expires =
                    now + chrono::Duration::from_std(self.config.claim_ttl).unwrap_or(chrono::Duration::MAX);
                self.lost_claims
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push((expires, s.group.clone()));
                tracing::debug!(group = %s.group, schedule = %s.name, fire = %fire, winner = %owner, "fire claimed by another replica");
                return Ok(());
            }
            FireClaim::Won => {}
        }
        match self.store.begin_fire(&s.group, &s.name, fire, next).await? {
            BeginFire::Started => {
                self.store.mark_due(&s.group, now).await?;
                tracing::info!(group = %s.group, schedule = %s.name, fire = %fire, "schedule fired: action recorded");
                report.started.push((s.group.clone(), s.name.clone(), fire));
            }
            BeginFire::Coalesced { running } => {
                report.coalesced += 1;
                self.metrics.count(Counter::ScheduledRunsCoalesced);
                tracing::info!(group = %s.group, schedule = %s.name, fire = %fire, running = %running, "fire coalesced: the previous action still runs");
            }
            BeginFire::AlreadyHandled => report.lost += 1,
        }
        Ok(())
    }

    /// Runs until `shutdown`: reloads every [`RuntimeConfig::reload`] and when `changed` is notified,
    /// ticks at each earliest fire instant.
    pub async fn run_until(self: Arc<Self>, changed: Arc<Notify>, shutdown: CancellationToken) {
        self.run_observed(changed, shutdown, |_| {}).await;
    }

    /// As [`Runtime::run_until`], handing each tick's report to `observe` (benchmarks measure fire
    /// latency with it).
    pub async fn run_observed(
        self: Arc<Self>,
        changed: Arc<Notify>,
        shutdown: CancellationToken,
        mut observe: impl FnMut(&TickReport) + Send,
    ) {
        let mut next_reload = tokio::time::Instant::now();
        // A reload runs beside the timer (reading and parsing thousands of schedules takes a while),
        // so fires due meanwhile are not delayed; a fire handled meanwhile and read back as unhandled
        // is refused by its claim.
        let mut reloading: Option<ReloadTask> = None;
        loop {
            if reloading.is_none() && tokio::time::Instant::now() >= next_reload {
                let this = self.clone();
                reloading = Some(tokio::spawn(async move {
                    let started = this.clock.now();
                    Ok((this.read_changes().await?, started))
                }));
                next_reload = tokio::time::Instant::now() + self.config.reload;
            }
            let report = self.tick().await;
            observe(&report);
            let until_fire = report
                .next_wake
                .map(|at| (at - self.clock.now()).to_std().unwrap_or_default());
            let wake = match until_fire {
                Some(d) => (tokio::time::Instant::now() + d).min(next_reload),
                None => next_reload,
            };
            let reloaded = async {
                match reloading.as_mut() {
                    Some(task) => task.await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = tokio::time::sleep_until(wake) => {}
                result = reloaded => {
                    reloading = None;
                    match result {
                        Ok(Ok((reloaded, started))) => self.install(reloaded, started),
                        Ok(Err(e)) => tracing::warn!(error = %e, "schedules not reloaded; keeping the ones loaded"),
                        Err(e) => tracing::warn!(error = %e, "schedule reload failed; keeping the ones loaded"),
                    }
                }
                () = changed.notified() => next_reload = tokio::time::Instant::now(),
                () = shutdown.cancelled() => {
                    if let Some(task) = reloading {
                        task.abort();
                    }
                    return;
                }
            }
        }
    }
}

/// Every schedule of the store, parsed, with its next fire.
async fn load(store: &dyn StateStore) -> Result<Vec<Loaded>, StoreError> {
    Ok(parse(store.schedules(None).await?))
}

/// `schedules` with their expressions parsed and their next fire.
fn parse(schedules: Vec<Schedule>) -> Vec<Loaded> {
    schedules
        .into_iter()
        .filter_map(|schedule| match Expression::parse(&schedule.expression) {
            Ok(expression) => {
                let handled = schedule.last_fire.unwrap_or(schedule.created_at).max(schedule.created_at);
                Some(Loaded {
                    next: expression.next_fire(handled, schedule.created_at),
                    handled,
                    expression,
                    schedule,
                })
            }
            Err(e) => {
                tracing::warn!(group = %schedule.group, schedule = %schedule.name, error = %e, "schedule not loaded");
                None
            }
        })
        .collect()
}

fn earliest(a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::MemorySink;
    use crate::store::{Acquire, LeaseGrant, ManualClock, SqliteStore};

    use crate::schedule::tests::at;

    struct World {
        store: Arc<SqliteStore>,
        clock: Arc<ManualClock>,
        metrics: Arc<MemorySink>,
        replicas: Vec<Runtime>,
    }

    /// `n` replicas' runtimes on one store and one manual clock, with `schedules` recorded in group
    /// `g` at `created` (expression per schedule).
    async fn world(n: usize, created: &str, schedules: &[(&str, &str)]) -> World {
        let clock = Arc::new(ManualClock::new(at(created)));
        let store = Arc::new(
            SqliteStore::in_memory()
                .expect("store")
                .with_clock(clock.clone() as Arc<dyn Clock>),
        );
        let lease = match store
            .acquire_lease("g", "worker", Duration::from_secs(60), Acquire::Lease)
            .await
            .expect("lease")
            .0
        {
            LeaseGrant::Acquired(l) => l,
            LeaseGrant::Held { .. } => panic!("free"),
        };
        for (name, expression) in schedules {
            let s = Schedule {
                group: "g".into(),
                name: (*name).into(),
                expression: (*expression).into(),
                target: r#"{"action":"import"}"#.into(),
                created_at: at(created),
                last_fire: None,
                next_fire: None,
                active: true,
                pending_fire: None,
                last_outcome: None,
            };
            store.put_schedule(&lease, &s).await.expect("put");
        }
        store.release_lease(&lease).await.expect("release");
        let metrics = Arc::new(MemorySink::new());
        let replicas = (0..n)
            .map(|i| {
                Runtime::new(
                    store.clone(),
                    clock.clone(),
                    metrics.clone(),
                    RuntimeConfig {
                        owner: format!("replica-{i}"),
                        catch_up: chrono::Duration::hours(1),
                        claim_ttl: Duration::from_secs(300),
                        reload: Duration::from_secs(30),
                    },
                )
            })
            .collect();
        World {
            store,
            clock,
            metrics,
            replicas,
        }
    }

    impl World {
        /// Every replica reads what changed (everything, the first time).
        async fn reload(&self) {
            for r in &self.replicas {
                r.reload_changes().await.expect("reload");
            }
        }

        /// Every replica ticks at `now`; the started fires of all of them.
        async fn tick_all(&self, now: &str) -> Vec<(String, String, DateTime<Utc>)> {
            self.clock.set(at(now));
            let mut started = Vec::new();
            for r in &self.replicas {
                started.extend(r.tick().await.started);
            }
            started
        }

        async fn finish(&self, name: &str) {
            let s = self.schedule(name).await;
            let fire = s.pending_fire.expect("pending");
            let outcome = FireOutcome {
                fire,
                status: FireStatus::Succeeded,
                detail: "done".into(),
                at: fire,
            };
            assert!(self.store.finish_fire("g", name, &outcome).await.expect("finish"));
        }

        async fn schedule(&self, name: &str) -> Schedule {
            self.store
                .schedules(Some("g"))
                .await
                .expect("list")
                .into_iter()
                .find(|s| s.name == name)
                .expect("schedule")
        }
    }

    #[tokio::test]
    async fn three_replicas_start_each_fire_once_and_mark_the_group_due() {
        let w = world(3, "2026-12-05T09:59:30Z", &[("hourly", "cron(0 * * * ? *)")]).await;
        w.reload().await;
        assert!(w.tick_all("2026-12-05T09:59:59Z").await.is_empty());
        let started = w.tick_all("2026-12-05T10:00:01Z").await;
        assert_eq!(
            started,
            vec![("g".into(), "hourly".into(), at("2026-12-05T10:00:00Z"))]
        );
        let s = w.schedule("hourly").await;
        assert_eq!(s.pending_fire, Some(at("2026-12-05T10:00:00Z")));
        assert_eq!(s.next_fire, Some(at("2026-12-05T11:00:00Z")));
        let group = w.store.group("g").await.expect("read").expect("group");
        assert_eq!(group.due_at, Some(at("2026-12-05T10:00:01Z")));
        // Ticking again (any replica, after a reload) does not start it twice.
        w.reload().await;
        assert!(w.tick_all("2026-12-05T10:00:30Z").await.is_empty());
        w.finish("hourly").await;
        // The next fire, after the action ended: started once again.
        w.reload().await;
        let started = w.tick_all("2026-12-05T11:00:00Z").await;
        assert_eq!(started.len(), 1);
        assert_eq!(w.metrics.total("ScheduledRunsCoalesced"), 0.0);
    }

    #[tokio::test]
    async fn a_fire_during_a_running_action_is_coalesced_not_queued() {
        let w = world(2, "2026-12-05T09:00:00Z", &[("often", "rate(10 minutes)")]).await;
        w.reload().await;
        assert_eq!(w.tick_all("2026-12-05T09:10:00Z").await.len(), 1);
        // Two more fires while the first action runs: each coalesced once, none queued.
        assert!(w.tick_all("2026-12-05T09:20:00Z").await.is_empty());
        assert!(w.tick_all("2026-12-05T09:30:05Z").await.is_empty());
        assert_eq!(w.metrics.total("ScheduledRunsCoalesced"), 2.0);
        let s = w.schedule("often").await;
        assert_eq!(
            s.pending_fire,
            Some(at("2026-12-05T09:10:00Z")),
            "still the first action"
        );
        assert_eq!(s.last_fire, Some(at("2026-12-05T09:30:00Z")));
        w.finish("often").await;
        assert_eq!(w.tick_all("2026-12-05T09:40:00Z").await.len(), 1);
    }

    #[tokio::test]
    async fn on_start_the_latest_missed_fire_runs_once_and_an_older_one_is_skipped() {
        let w = world(
            2,
            "2026-12-01T00:00:00Z",
            &[("hourly", "cron(0 * * * ? *)"), ("daily", "cron(0 2 * * ? *)")],
        )
        .await;
        // The replicas start at 07:20 on Dec 1: hourly missed 01:00 … 07:00 (07:00 is 20 min old),
        // daily missed 02:00 (5 h 20 min old).
        w.clock.set(at("2026-12-01T07:20:00Z"));
        w.reload().await;
        let started = w.tick_all("2026-12-01T07:20:00Z").await;
        assert_eq!(
            started,
            vec![("g".into(), "hourly".into(), at("2026-12-01T07:00:00Z"))]
        );
        assert_eq!(
            w.metrics.total("ScheduledRunsSkipped"),
            1.0,
            "skipped once, by one replica"
        );
        let daily = w.schedule("daily").await;
        assert_eq!(daily.last_fire, Some(at("2026-12-01T02:00:00Z")));
        assert_eq!(daily.pending_fire, None);
        let outcome = daily.last_outcome.expect("outcome");
        assert_eq!(outcome.status, FireStatus::Skipped);
        assert!(outcome.detail.contains("catch-up window"), "{}", outcome.detail);
        // Nothing more happens until the next fires.
        w.reload().await;
        assert!(w.tick_all("2026-12-01T07:59:00Z").await.is_empty());
        assert_eq!(w.metrics.total("ScheduledRunsSkipped"), 1.0);
    }

    #[tokio::test]
    async fn deactivated_schedules_do_not_fire_and_do_not_catch_up_when_activated() {
        let w = world(1, "2026-12-05T09:00:00Z", &[("often", "rate(10 minutes)")]).await;
        assert!(
            w.store
                .set_schedule_active("g", "often", false)
                .await
                .expect("off")
        );
        w.reload().await;
        assert!(w.tick_all("2026-12-05T09:10:00Z").await.is_empty());
        assert!(w.tick_all("2026-12-05T09:20:00Z").await.is_empty());
        assert_eq!(
            w.schedule("often").await.last_fire,
            Some(at("2026-12-05T09:20:00Z"))
        );
        assert!(w.store.set_schedule_active("g", "often", true).await.expect("on"));
        w.reload().await;
        assert!(
            w.tick_all("2026-12-05T09:25:00Z").await.is_empty(),
            "09:20 is not caught up"
        );
        assert_eq!(w.tick_all("2026-12-05T09:30:00Z").await.len(), 1);
    }

    #[tokio::test]
    async fn a_removed_schedule_stops_firing_after_the_reload() {
        let w = world(1, "2026-12-05T09:00:00Z", &[("often", "rate(10 minutes)")]).await;
        w.reload().await;
        let lease = match w
            .store
            .acquire_lease("g", "worker", Duration::from_secs(60), Acquire::Lease)
            .await
            .expect("lease")
            .0
        {
            LeaseGrant::Acquired(l) => l,
            LeaseGrant::Held { .. } => panic!("free"),
        };
        w.store.delete_schedule(&lease, "often").await.expect("delete");
        w.reload().await;
        assert_eq!(w.replicas[0].loaded(), 0);
        assert!(w.tick_all("2026-12-05T09:10:00Z").await.is_empty());
    }

    #[tokio::test]
    async fn a_claim_whose_winner_died_is_taken_over_after_it_expires() {
        let w = world(2, "2026-12-05T09:00:00Z", &[("often", "rate(10 minutes)")]).await;
        // replica-0 claimed 09:10 and died before recording the action.
        let fire = at("2026-12-05T09:10:00Z");
        w.clock.set(fire);
        assert_eq!(
            w.store
                .claim_fire("g", "often", fire, "replica-0", Duration::from_secs(300))
                .await
                .expect("claim"),
            FireClaim::Won
        );
        w.reload().await;
        let survivor = &w.replicas[1];
        assert!(survivor.tick().await.started.is_empty(), "the claim still holds");
        // After the claim expired, the next reload finds the fire unhandled and takes it over.
        w.clock.set(at("2026-12-05T09:15:01Z"));
        survivor.reload_changes().await.expect("reload");
        let report = survivor.tick().await;
        assert_eq!(report.started, vec![("g".into(), "often".into(), fire)]);
    }
}
