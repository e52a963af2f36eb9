//! The daemon process: intake, a bounded pool of group workers under leases, periodic resync, and
//! graceful shutdown.
//!
//! Level-triggered: intake only records desired generations (which marks groups due); the dispatcher
//! picks due groups, a worker takes the group's lease and runs passes of a [`GroupReconciler`] until
//! the group converges, fails or waits, and records when it is next due. A periodic resync compares the
//! bucket with the table (recording every file whose event was lost) and marks every group due, so
//! drift is caught: groups with work to do at once, converged ones at their own slot in the interval,
//! within a share of the Personalize call rate ([`resync`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::health::Liveness;
use crate::intake::{ConfigSource, Rescanner};
use crate::locks::LockRecovering;
use crate::metrics::MetricsSink;
use crate::notify::message::Location;
use crate::notify::{Notifications, ResourceChange};
use crate::settings::DaemonSettings;
use crate::store::{Clock, FireClaim, StateStore};

mod held;
mod outbox;
mod personalize;
pub mod queue;
mod reconciler;
mod removal;
pub mod resync;
mod scheduled;
mod turn;

pub use outbox::{Delivery, OutboxConfig};
pub use personalize::PersonalizeReconciler;
pub use reconciler::{GroupReconciler, PassError, PassInput, PassReport, PassSink, PassStatus, ScheduledRun};
pub use removal::RemovalPolicy;
pub use resync::ResyncBudget;

/// What the dispatcher's listing task returns.
type DueListing = Result<Vec<crate::store::DueGroup>, crate::store::StoreError>;

/// Resource events queued for the notifier at most; beyond, they are dropped and logged.
const CHANGE_QUEUE: usize = 1024;

/// Why the daemon stopped on its own.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The intake (SQS or the directory watcher) ended or panicked; the daemon stopped gracefully
    /// after it, so that the process exits with an error and is restarted.
    #[error("the daemon stopped because its intake stopped: {reason}")]
    IntakeStopped { reason: String },
}

/// How the daemon works.
#[derive(Debug, Clone)]
pub struct DaemonConfig {
    /// This replica's name in leases (unique per process).
    pub owner: String,
    /// Groups worked on at once.
    pub concurrency: usize,
    /// Lease duration; renewed every third of it.
    pub lease_duration: Duration,
    /// Every group is marked due this often (and once at start): converged groups at their slot in
    /// a window of this length, or longer when the [`ResyncBudget`] stretches it.
    pub resync_interval: Duration,
    /// How often the store is asked for due groups when nothing else wakes the dispatcher.
    pub dispatch_interval: Duration,
    /// When a pass cannot complete (Personalize unreachable), the group is retried after this.
    pub error_retry: Duration,
    /// Passes run back to back in one turn while the reconciler asks to be called again at once.
    pub max_passes_per_turn: u32,
    /// After shutdown starts, passes in flight get this long to finish before they are abandoned.
    pub shutdown_grace: Duration,
    /// Console-link fallback for notifications when no dataset group ARN is known yet.
    pub location: Location,
}

impl DaemonConfig {
    /// From the `[daemon]` settings; `owner` names this replica.
    pub fn from_settings(settings: &DaemonSettings, owner: impl Into<String>, location: Location) -> Self {
        Self {
            owner: owner.into(),
            concurrency: settings.concurrency.max(1),
            lease_duration: settings.lease_duration(),
            resync_interval: settings.resync_interval(),
            dispatch_interval: Duration::from_secs(1),
            error_retry: Duration::from_secs(settings.error_retry_secs),
            max_passes_per_turn: 20,
            // Fargate kills 30 s after SIGTERM; leave room to release leases and flush metrics.
            shutdown_grace: Duration::from_secs(15),
            location,
        }
    }
}

/// A replica name: host name (or `replica`), process id and a random suffix.
pub fn replica_name() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "replica".into());
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("{host}-{}-{}", std::process::id(), &id[..8])
}

/// Counters of what the daemon did, for tests, benches and the exit log line.
#[derive(Debug, Default)]
pub struct DaemonStats {
    pub passes: AtomicU64,
    /// Turns started (one per group a worker took).
    pub turns: AtomicU64,
    /// Turns over: their pass results recorded and announced, their worker gone.
    pub turns_ended: AtomicU64,
    /// Dispatcher rounds that asked the store for due groups and started what was due.
    pub rounds: AtomicU64,
    pub completed: AtomicU64,
    pub failed: AtomicU64,
    pub resyncs: AtomicU64,
    /// Resync ticks left to another replica that had claimed the window.
    pub resyncs_skipped: AtomicU64,
    /// The resync interval in force, in milliseconds (0 before the first resync): longer than
    /// `resync_interval` when the budget stretched it.
    pub resync_window_ms: AtomicU64,
}

impl DaemonStats {
    fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// The daemon: one per process.
pub struct Daemon {
    store: Arc<dyn StateStore>,
    reconciler: Arc<dyn GroupReconciler>,
    notifications: Notifications,
    metrics: Arc<dyn MetricsSink>,
    /// Must be the store's clock: lease expiry is compared against it.
    clock: Arc<dyn Clock>,
    config: DaemonConfig,
    /// Resource events of passes, drained by the notifier task.
    changes: Mutex<Option<mpsc::Sender<ResourceChange>>>,
    changes_rx: Mutex<Option<mpsc::Receiver<ResourceChange>>>,
    stats: Arc<DaemonStats>,
    /// Ticked by every round of the dispatcher, so `/healthz` fails when it is wedged.
    liveness: Liveness,
    /// Woken when this replica changed schedule items, so its scheduler reloads at once.
    schedules_changed: Arc<tokio::sync::Notify>,
    /// How the notification outbox is drained ([`Daemon::with_outbox`]).
    outbox: OutboxConfig,
    /// What a removed parameter file leads to.
    removal: RemovalPolicy,
    /// Compares the bucket with the table on every resync; `None` where the intake already scans
    /// everything (local mode's directory watcher).
    rescan: Option<Arc<Rescanner>>,
    /// How much of the Personalize call rate resyncs of converged groups may use.
    resync_budget: ResyncBudget,
    /// Whether the resync at start makes every group due at once instead of at its slot
    /// ([`Daemon::checking_every_group_at_start`]).
    all_due_at_start: bool,
}

impl std::fmt::Debug for Daemon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Daemon")
            .field("store", &self.store)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Daemon {
    pub fn new(
        store: Arc<dyn StateStore>,
        reconciler: Arc<dyn GroupReconciler>,
        notifications: Notifications,
        metrics: Arc<dyn MetricsSink>,
        clock: Arc<dyn Clock>,
        config: DaemonConfig,
    ) -> Self {
        let (changes, rx) = mpsc::channel(CHANGE_QUEUE);
        Self {
            store,
            reconciler,
            notifications,
            metrics,
            clock,
            config,
            changes: Mutex::new(Some(changes)),
            changes_rx: Mutex::new(Some(rx)),
            stats: Arc::new(DaemonStats::default()),
            liveness: Liveness::new(),
            schedules_changed: Arc::new(tokio::sync::Notify::new()),
            outbox: OutboxConfig::default(),
            removal: RemovalPolicy::default(),
            rescan: None,
            resync_budget: ResyncBudget::default(),
            all_due_at_start: false,
        }
    }

    /// Makes the resync at start mark every group due at once, settled ones too, instead of at
    /// their slots: for the only replica of local mode, whose user waits on a restart to see each
    /// group confirmed (and `--exit-when-converged` to end), and whose groups are few. A fleet's
    /// replicas keep the slots: one restarting must not resync every group in one burst.
    #[must_use]
    pub fn checking_every_group_at_start(mut self) -> Self {
        self.all_due_at_start = true;
        self
    }

    /// The share of the Personalize call rate resyncs of converged groups may use (default: the
    /// defaults of `daemon.resync_call_share` and `reconcile.calls_per_second`).
    #[must_use]
    pub fn with_resync_budget(mut self, budget: ResyncBudget) -> Self {
        self.resync_budget = budget;
        self
    }

    /// What this daemon does when a group's parameter file is removed (default: keep its resources).
    #[must_use]
    pub fn with_removal_policy(mut self, policy: RemovalPolicy) -> Self {
        self.removal = policy;
        self
    }

    /// Every resync (at start and every `resync_interval`) first records, through `rescan`, each
    /// parameter file of the bucket that the table lacks or has an older write of.
    #[must_use]
    pub fn with_rescan(mut self, rescan: Arc<Rescanner>) -> Self {
        self.rescan = Some(rescan);
        self
    }

    /// Starts this replica's scheduler ([`crate::schedule::Runtime`]) when `settings.enabled`: its
    /// fire claims carry the daemon's replica name, it uses the daemon's store and clock, and it
    /// reloads whenever the daemon's workers change schedule items.
    pub fn spawn_scheduler(
        &self,
        settings: &crate::settings::SchedulerSettings,
        shutdown: CancellationToken,
    ) -> Option<tokio::task::JoinHandle<()>> {
        if !settings.enabled {
            tracing::info!("scheduler disabled (scheduler.enabled = false)");
            return None;
        }
        let runtime = Arc::new(crate::schedule::Runtime::new(
            self.store.clone(),
            self.clock.clone(),
            self.metrics.clone(),
            crate::schedule::RuntimeConfig::from_settings(settings, self.config.owner.clone()),
        ));
        Some(tokio::spawn(
            runtime.run_until(self.schedules_changed.clone(), shutdown),
        ))
    }

    /// Notified whenever this replica records or removes schedules (see [`crate::schedule::Runtime`]).
    pub fn schedules_changed(&self) -> Arc<tokio::sync::Notify> {
        self.schedules_changed.clone()
    }

    /// The dispatcher's heartbeat (for [`crate::health::Readiness::watch`]); it ticks at least every
    /// [`DaemonConfig::dispatch_interval`] while the store answers.
    pub fn liveness(&self) -> Liveness {
        self.liveness.clone()
    }

    pub fn stats(&self) -> Arc<DaemonStats> {
        self.stats.clone()
    }

    pub fn config(&self) -> &DaemonConfig {
        &self.config
    }

    /// Runs until `shutdown` is cancelled, then stops gracefully: intake stops receiving, workers
    /// finish the pass in flight (abandoned after [`DaemonConfig::shutdown_grace`]) and release their
    /// leases, queued resource events are sent.
    ///
    /// # Guarantees
    /// - At most `concurrency` groups are worked on at once, never one group twice in this process,
    ///   and never one group by two live replicas (leases; every state write is fenced).
    /// - A group is revisited when due, on every resync, and on every new desired generation.
    pub async fn run(
        self: Arc<Self>,
        intake: Option<Arc<dyn ConfigSource>>,
        shutdown: CancellationToken,
    ) -> Result<(), DaemonError> {
        tracing::info!(owner = %self.config.owner, concurrency = self.config.concurrency, "daemon started");
        // Stopped by the caller, or by the daemon itself when its intake dies.
        let stop = shutdown.child_token();
        let intake_failure: Arc<Mutex<Option<String>>> = Arc::default();
        let intake_task = intake.map(|source| {
            let (stop, failure) = (stop.clone(), intake_failure.clone());
            tokio::spawn(async move {
                let inner = tokio::spawn({
                    let stop = stop.clone();
                    async move { source.run(stop).await }
                });
                let reason = match inner.await {
                    Ok(()) if stop.is_cancelled() => return,
                    Ok(()) => "the intake ended on its own".to_string(),
                    Err(e) => format!("the intake task failed: {e}"),
                };
                // Without intake no new file is ever seen: stop, so that the orchestrator restarts us.
                tracing::error!(%reason, "intake stopped; stopping the daemon");
                *failure.lock_recovering() = Some(reason);
                stop.cancel();
            })
        });
        let shutdown = stop;
        let notifier = self.spawn_notifier();
        let resync = {
            let me = self.clone();
            let token = shutdown.clone();
            tokio::spawn(async move { me.resync_loop(token).await })
        };

        let outbox = {
            let me = self.clone();
            let token = shutdown.clone();
            tokio::spawn(async move { me.outbox_loop(token).await })
        };

        let hard_stop = CancellationToken::new();
        self.dispatch(&shutdown, &hard_stop).await;

        let _ = resync.await;
        let _ = outbox.await;
        if let Some(task) = intake_task
            && let Err(e) = task.await
        {
            tracing::error!(error = %e, "intake supervisor failed");
        }
        // Workers are gone, so the daemon holds the last sender: dropping it lets the notifier drain
        // the queue and end.
        self.changes.lock_recovering().take();
        if let Some(notifier) = notifier
            && tokio::time::timeout(Duration::from_secs(5), notifier)
                .await
                .is_err()
        {
            tracing::warn!("resource events still queued at exit were dropped");
        }
        tracing::info!(
            passes = DaemonStats::get(&self.stats.passes),
            completed = DaemonStats::get(&self.stats.completed),
            failed = DaemonStats::get(&self.stats.failed),
            "daemon stopped"
        );
        match intake_failure.lock_recovering().take() {
            Some(reason) => Err(DaemonError::IntakeStopped { reason }),
            None => Ok(()),
        }
    }

    /// The dispatcher: starts due groups while there is room, one turn per group: new files first,
    /// then groups already under way, then the rest ([`queue::Rank`]).
    ///
    /// The store is asked for due groups at most once per `dispatch_interval` (a due listing reads
    /// every due group, so asking after every turn would cost a listing per pass); in between, the
    /// listing's remainder and the poll times this replica's turns recorded keep the workers busy.
    /// The listing is read in its own task: while a slow store answers it, finished turns are still
    /// reaped and the groups waiting here started at their poll times.
    async fn dispatch(self: &Arc<Self>, shutdown: &CancellationToken, hard_stop: &CancellationToken) {
        let mut workers: JoinSet<(String, turn::TurnEnd)> = JoinSet::new();
        // Groups being worked on here, with their worker's task id (to name a worker that panicked).
        let mut in_flight: HashMap<String, tokio::task::Id> = HashMap::new();
        // Groups owned by another replica, not asked for again before its lease expires.
        let mut held_elsewhere: HashMap<String, DateTime<Utc>> = HashMap::new();
        let mut queue = queue::Queue::default();
        let mut store_backoff = Duration::ZERO;
        let mut listed_at: Option<tokio::time::Instant> = None;
        let mut listing: Option<tokio::task::JoinHandle<DueListing>> = None;
        while !shutdown.is_cancelled() {
            self.liveness.tick();
            while let Some(done) = workers.try_join_next_with_id() {
                self.finished(done, &mut in_flight, &mut held_elsewhere, &mut queue);
            }
            if listing.as_ref().is_some_and(tokio::task::JoinHandle::is_finished)
                && let Some(task) = listing.take()
            {
                self.listing_read(task.await, &mut queue, &mut store_backoff);
                listed_at = Some(tokio::time::Instant::now());
            }
            let now = self.clock.now();
            held_elsewhere.retain(|_, until| *until >= now);
            self.start_picked(
                &mut queue,
                &mut workers,
                &mut in_flight,
                &held_elsewhere,
                shutdown,
                hard_stop,
            );
            let room = self.config.concurrency.saturating_sub(workers.len());
            let stale =
                listed_at.is_none_or(|t| t.elapsed() >= self.config.dispatch_interval.max(store_backoff));
            if room > 0 && stale && listing.is_none() {
                listed_at = Some(tokio::time::Instant::now());
                listing = Some(self.start_listing(&mut queue, in_flight.len() + held_elsewhere.len()));
            }
            // Wake for the next listing, or sooner for a poll time recorded here.
            let mut wait = self.config.dispatch_interval.max(store_backoff);
            if let Some(at) = queue.next_due() {
                let until = (at - self.clock.now()).to_std().unwrap_or(Duration::ZERO);
                wait = wait.min(until.max(Duration::from_millis(10)));
            }
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(wait) => {}
                Some(done) = workers.join_next_with_id(), if !workers.is_empty() => {
                    self.finished(done, &mut in_flight, &mut held_elsewhere, &mut queue);
                }
                read = listing_read(&mut listing), if listing.is_some() => {
                    listing = None;
                    self.listing_read(read, &mut queue, &mut store_backoff);
                    listed_at = Some(tokio::time::Instant::now());
                }
            }
        }
        if let Some(task) = listing {
            task.abort();
        }
        // Graceful: workers see `shutdown` between passes; past the grace period, passes are dropped.
        let grace = tokio::time::sleep(self.config.shutdown_grace);
        tokio::pin!(grace);
        let mut hard = false;
        while !workers.is_empty() {
            tokio::select! {
                Some(done) = workers.join_next_with_id() => {
                    self.finished(done, &mut in_flight, &mut held_elsewhere, &mut queue);
                }
                () = &mut grace, if !hard => {
                    tracing::warn!(in_flight = workers.len(), "grace period over; abandoning passes in flight");
                    hard_stop.cancel();
                    hard = true;
                }
            }
        }
    }

    /// Starts the groups the queue picks for the room left. The dispatcher calls it before it
    /// starts the next listing (which drops the listing in hand), so a listing is always picked from
    /// once however long it took to read, and the next one starts an interval after this one
    /// arrived. Measured from its start instead, a listing slower than the interval was dropped
    /// unused in the same round: new groups never started (1,000 groups on a slow moto, README
    /// "Measured").
    fn start_picked(
        self: &Arc<Self>,
        queue: &mut queue::Queue,
        workers: &mut JoinSet<(String, turn::TurnEnd)>,
        in_flight: &mut HashMap<String, tokio::task::Id>,
        held_elsewhere: &HashMap<String, DateTime<Utc>>,
        shutdown: &CancellationToken,
        hard_stop: &CancellationToken,
    ) {
        let room = self.config.concurrency.saturating_sub(workers.len());
        let busy = |g: &str| in_flight.contains_key(g) || held_elsewhere.contains_key(g);
        for group in queue.pick(self.clock.now(), room, busy) {
            let id = self.spawn_turn(workers, group.clone(), shutdown, hard_stop);
            in_flight.insert(group, id);
        }
    }

    /// Starts reading the due listing in its own task, sized for every group already known to be
    /// busy (`busy`: in flight here or held elsewhere) or waiting here, and then some.
    fn start_listing(&self, queue: &mut queue::Queue, busy: usize) -> tokio::task::JoinHandle<DueListing> {
        let limit = 4 * self.config.concurrency + busy + queue.waiting_len();
        queue.listing_started();
        let store = self.store.clone();
        tokio::spawn(async move { store.due_groups(limit).await })
    }

    /// Applies a due listing read by the dispatcher's listing task.
    fn listing_read(
        &self,
        read: Result<DueListing, tokio::task::JoinError>,
        queue: &mut queue::Queue,
        store_backoff: &mut Duration,
    ) {
        // A failed listing task (it panicked) is a failed listing: the next one is tried later.
        let read = read
            .map_err(|e| format!("the listing task failed: {e}"))
            .and_then(|r| r.map_err(|e| e.to_string()));
        match read {
            Ok(due) => {
                *store_backoff = Duration::ZERO;
                queue.listed(due);
                DaemonStats::bump(&self.stats.rounds);
            }
            Err(error) => {
                queue.listing_failed();
                *store_backoff = (*store_backoff * 2).clamp(Duration::from_secs(1), Duration::from_secs(30));
                tracing::warn!(%error, retry_in = ?*store_backoff, "cannot list due groups");
            }
        }
    }

    fn spawn_turn(
        self: &Arc<Self>,
        workers: &mut JoinSet<(String, turn::TurnEnd)>,
        group: String,
        shutdown: &CancellationToken,
        hard_stop: &CancellationToken,
    ) -> tokio::task::Id {
        let me = self.clone();
        let (shutdown, hard_stop) = (shutdown.clone(), hard_stop.clone());
        let span = tracing::info_span!("group", dataset_group = %group, owner = %self.config.owner);
        DaemonStats::bump(&self.stats.turns);
        workers
            .spawn(
                async move {
                    let end = me.turn(&group, &shutdown, &hard_stop).await;
                    (group, end)
                }
                .instrument(span),
            )
            .id()
    }

    fn finished(
        &self,
        done: Result<(tokio::task::Id, (String, turn::TurnEnd)), tokio::task::JoinError>,
        in_flight: &mut HashMap<String, tokio::task::Id>,
        held_elsewhere: &mut HashMap<String, DateTime<Utc>>,
        queue: &mut queue::Queue,
    ) {
        DaemonStats::bump(&self.stats.turns_ended);
        match done {
            Ok((_, (group, end))) => {
                in_flight.remove(&group);
                let left = match end {
                    turn::TurnEnd::Waiting { until } => queue::Left::Waiting(until),
                    turn::TurnEnd::StoreFailed | turn::TurnEnd::Stopped => queue::Left::Unchanged,
                    turn::TurnEnd::Done | turn::TurnEnd::LeaseLost | turn::TurnEnd::Forgotten => {
                        queue::Left::Finished
                    }
                    turn::TurnEnd::HeldElsewhere { until } => {
                        held_elsewhere.insert(group.clone(), until);
                        queue::Left::Finished
                    }
                };
                queue.ended(&group, left);
            }
            Err(e) => {
                let group = in_flight
                    .iter()
                    .find(|(_, id)| **id == e.id())
                    .map(|(g, _)| g.clone());
                if let Some(g) = &group {
                    in_flight.remove(g);
                    queue.ended(g, queue::Left::Finished);
                }
                // Its lease (if taken) is not released: the group is retried once it expires.
                tracing::error!(
                    dataset_group = group.as_deref().unwrap_or("?"),
                    error = %e,
                    "a group worker panicked"
                );
            }
        }
    }

    /// Resyncs at start, then at the start of every window of `resync_interval` on the Unix epoch,
    /// where the first replica to claim the window resyncs for all ([`Daemon::resync_turn`]): the
    /// marks are idempotent, so a second replica's resync of the same window would only read the
    /// whole table again. With the budget stretching the window, a tick marks nothing new for a
    /// settled group whose slot is still ahead.
    async fn resync_loop(&self, shutdown: CancellationToken) {
        // At start unconditionally: a replica (re)starting does not wait for the window to turn.
        let mut first = true;
        loop {
            // Claimed at start too, so that the other replicas skip the window.
            if self.resync_turn().await || first {
                self.resync_with(first && self.all_due_at_start).await;
            }
            first = false;
            let wait = resync::until_next_window(self.clock.now(), self.config.resync_interval);
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Whether this replica resyncs the current window: it claims the window (a fire claim of
    /// [`resync::CLAIM_GROUP`]); lost to another replica, that one resyncs. A claim this replica
    /// already holds (its clock has not left the window) or a store that cannot say counts as won:
    /// resyncing twice costs reads, missing a window costs a file's delay.
    async fn resync_turn(&self) -> bool {
        let interval = self.config.resync_interval;
        let window = resync::window_start(self.clock.now(), interval);
        match self
            .store
            .claim_fire(
                resync::CLAIM_GROUP,
                resync::CLAIM_NAME,
                window,
                &self.config.owner,
                interval.saturating_mul(2),
            )
            .await
        {
            Ok(FireClaim::Won) => true,
            Ok(FireClaim::Lost { owner }) if owner == self.config.owner => true,
            Ok(FireClaim::Lost { owner }) => {
                tracing::debug!(%owner, %window, "resync: another replica resyncs this window");
                DaemonStats::bump(&self.stats.resyncs_skipped);
                false
            }
            Err(e) => {
                tracing::warn!(error = %e, "resync: cannot claim the window; resyncing anyway");
                true
            }
        }
    }

    /// Records what the bucket has and the table lacks (with a rescanner), then marks every known group
    /// due by the rules of [`resync::plan`]: new work now, settled groups at their slot, pending ones
    /// at their own poll time. Returns how many groups are due by this resync (marked, or already due
    /// at least as early).
    pub async fn resync_once(&self) -> usize {
        self.resync_with(false).await
    }

    /// [`Daemon::resync_once`], with every live group due now when `all_now` ([`resync::plan_all_now`]).
    async fn resync_with(&self, all_now: bool) -> usize {
        // One listing for both: the bucket comparison and the plan.
        let groups = match self.store.list_briefs().await {
            Ok(groups) => groups,
            Err(e) => {
                tracing::warn!(error = %e, "resync: cannot list groups");
                return 0;
            }
        };
        if let Some(rescan) = &self.rescan {
            match rescan.rescan_against(&groups).await {
                Ok(report) if report.recorded > 0 => {
                    tracing::warn!(
                        recorded = report.recorded,
                        listed = report.listed,
                        "resync: the bucket had parameter files the state table lacked; recorded them"
                    );
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "resync: the bucket was not compared with the state table")
                }
            }
        }
        // A file the comparison just recorded was marked due now by its recording; the plan, on
        // the listing from before, can only add a later mark, which the store ignores.
        // A destroyed group stays down until a new file is uploaded (the plan leaves it out).
        let plan_of = if all_now {
            resync::plan_all_now
        } else {
            resync::plan
        };
        let plan = plan_of(
            &groups,
            self.clock.now(),
            self.config.resync_interval,
            self.resync_budget,
        );
        self.note_window(&plan.window);
        let mut covered = plan.already_due;
        for (group, at) in &plan.marks {
            match self.store.mark_due(group, *at).await {
                Ok(()) => covered += 1,
                Err(e) => {
                    tracing::warn!(dataset_group = %group, error = %e, "resync: cannot mark the group due")
                }
            }
        }
        DaemonStats::bump(&self.stats.resyncs);
        tracing::debug!(
            groups = covered,
            written = plan.marks.len(),
            spread = plan.spread,
            immediate = plan.immediate,
            pending = plan.pending,
            window_secs = plan.window.interval.as_secs_f64(),
            "resync"
        );
        covered
    }

    /// Records the window in force (the gauge [`resync::WINDOW_METRIC`] at every resync) and logs
    /// when it changes: at warn, with the numbers, when the budget stretched it (once per new length,
    /// not at every tick).
    fn note_window(&self, window: &resync::Window) {
        self.metrics.record(window.datum(self.clock.now()));
        let ms = u64::try_from(window.interval.as_millis()).unwrap_or(u64::MAX);
        let before = self.stats.resync_window_ms.swap(ms, Ordering::Relaxed);
        if before == ms {
            return;
        }
        if window.stretched() {
            tracing::warn!(
                converged_groups = window.spread,
                calls_per_resync = resync::CALLS_PER_RESYNC,
                budget_calls_per_second = self.resync_budget.resync_rate(),
                configured_interval_secs = window.base.as_secs_f64(),
                interval_secs = window.interval.as_secs_f64(),
                "resync: converged groups × calls per resync ÷ resync_interval_secs exceed \
                 daemon.resync_call_share of reconcile.calls_per_second; each converged group is \
                 resynced less often"
            );
        } else if before > ms {
            tracing::info!(
                converged_groups = window.spread,
                interval_secs = window.interval.as_secs_f64(),
                "resync: back to the configured interval"
            );
        }
    }

    fn spawn_notifier(&self) -> Option<tokio::task::JoinHandle<()>> {
        let mut rx = self.changes_rx.lock_recovering().take()?;
        let notifications = self.notifications.clone();
        Some(tokio::spawn(async move {
            while let Some(change) = rx.recv().await {
                notifications.resource_changed(&change).await;
            }
        }))
    }

    /// A sender for a pass's events; `None` once the daemon has stopped.
    fn change_sender(&self) -> Option<mpsc::Sender<ResourceChange>> {
        self.changes.lock_recovering().clone()
    }
}

/// The dispatcher's due listing once its task ends (never, when there is none: the select's guard
/// keeps this branch off then).
async fn listing_read(
    listing: &mut Option<tokio::task::JoinHandle<DueListing>>,
) -> Result<DueListing, tokio::task::JoinError> {
    match listing.as_mut() {
        Some(task) => task.await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests;
