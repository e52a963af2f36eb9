//! Runs plans against Personalize: observe → plan → run the ready actions → wait → repeat.
//!
//! One [`Reconciler`] serves any number of dataset groups (it is `Send + Sync`; share it in an
//! `Arc`). Every Personalize call goes through one rate limiter. [`Reconciler::pass`] is one cheap,
//! idempotent step: it never blocks on Personalize's work, it only says when to come back
//! ([`PassOutcome::Pending`]). [`Reconciler::apply`] loops passes until converged or failed.
//!
//! Idempotency is by name: everything is found again from Personalize on every pass, one-shot jobs
//! are named from the run's start time, so a crashed or repeated run creates no duplicate.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::future::join_all;
use serde::Serialize;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::objects::{ObjectError, ObjectStore, ObjectUrl};
use crate::plan::{
    self, Action, DataFound, DataLocation, Kind, Plan, Ref, Request, Roles, RunContext, ScheduledWork,
};
use crate::settings::{PersonalizeSettings, ReconcileSettings};
use crate::spec::model::Spec;
use crate::spec::names;

pub mod api;
mod convert;
mod execute;
pub mod export;
pub mod guard;
pub mod job_names;
mod observe;
mod polls;
mod promotion;
mod tags;
pub mod teardown;

pub use api::{Api, ApiError, Backoff, ErrorClass, RateLimiter};
use execute::Executed;
pub use guard::{LeaseGuard, LeaseLost, Unguarded};
pub use job_names::{JobClaims, StoreClaims};
pub use teardown::TeardownOutcome;

/// One state change or outcome of a managed resource.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// The dataset group being reconciled.
    pub group: String,
    #[serde(serialize_with = "crate::spec::kinds::serialize_arn_spelling")]
    pub kind: Kind,
    pub name: String,
    pub arn: Option<String>,
    /// Personalize's status (`CREATE IN_PROGRESS`, `ACTIVE`, …) or the reconciler's word for what it
    /// did (`CREATE REQUESTED`, `UPDATE REQUESTED`, `RETRY LATER`, `SKIPPED`, `CONFLICT`, `FAILED`,
    /// `DEPENDENCY FAILED`, `METRICS`).
    pub status: String,
    /// Since this reconciler first saw the resource unfinished.
    pub elapsed_secs: Option<f64>,
    /// Why (Personalize's `failureReason`, what differs, what was decided).
    pub reason: Option<String>,
    /// `GetSolutionMetrics` of a solution version, read once after it became ACTIVE.
    pub metrics: Option<BTreeMap<String, f64>>,
}

/// Receives every [`Event`] (the CLI prints them; the daemon turns them into SNS, EventBridge and
/// CloudWatch).
pub trait EventSink: Send {
    fn emit(&mut self, event: Event);
}

impl EventSink for Vec<Event> {
    fn emit(&mut self, event: Event) {
        self.push(event);
    }
}

/// A resource that cannot be brought to the file in this run.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Failure {
    pub target: Ref,
    pub arn: Option<String>,
    pub reason: String,
}

/// Where a managed resource stands.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceState {
    pub target: Ref,
    pub arn: Option<String>,
    pub status: String,
    /// The plan's note on it (a promotion gate's decision with both versions and their metrics).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// What one pass found.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase", tag = "outcome")]
#[must_use]
pub enum PassOutcome {
    /// Everything is as the file says.
    Converged { resources: Vec<ResourceState> },
    /// Personalize is still working (or a call must be retried); call again after `next_poll_after`.
    /// `failures` are the resources already lost (their independent branches continue).
    Pending {
        #[serde(with = "secs")]
        next_poll_after: Duration,
        waiting: Vec<Ref>,
        failures: Vec<Failure>,
    },
    /// Nothing is left to wait for and some resources failed.
    Failed {
        failures: Vec<Failure>,
        resources: Vec<ResourceState>,
    },
}

mod secs {
    pub fn serialize<S: serde::Serializer>(d: &std::time::Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }
}

/// Why a pass could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("dataset group {group}: {source}")]
    Personalize {
        group: String,
        #[source]
        source: ApiError,
    },
    #[error("dataset group {group}: reading data: {source}")]
    Objects {
        group: String,
        #[source]
        source: ObjectError,
    },
    #[error("dataset group {group}: cancelled")]
    Cancelled { group: String },
    /// The pass stopped because this replica no longer holds the group's lease: not a failure of
    /// the group, the new owner carries on.
    #[error("dataset group {group}: {source}")]
    LeaseLost {
        group: String,
        #[source]
        source: LeaseLost,
    },
}

impl ReconcileError {
    /// Whether trying again later may succeed (throttling, quotas, network).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Personalize { source, .. } => {
                matches!(
                    source.class,
                    ErrorClass::Transient | ErrorClass::Limit | ErrorClass::InUse
                )
            }
            Self::Objects { source, .. } => matches!(source, ObjectError::Backend { .. }),
            Self::Cancelled { .. } | Self::LeaseLost { .. } => false,
        }
    }
}

/// What the reconciler remembers about a group between passes of one run (nothing here is needed
/// for correctness after a restart: Personalize is the source of truth).
#[derive(Debug, Default)]
struct GroupMemory {
    run_start: Option<DateTime<Utc>>,
    /// The lease epoch of the last pass ([`LeaseGuard::tenure`]).
    tenure: Option<u64>,
    group_arn: Option<String>,
    last_status: HashMap<Ref, String>,
    first_seen: HashMap<Ref, Instant>,
    /// Creates Personalize refused in this run: failures, not retried in a loop.
    rejected: HashMap<Ref, String>,
    /// Creates answered `ResourceAlreadyExists`: if the next observation still does not find the
    /// resource in this group, the name is taken elsewhere in the account.
    already_exists: HashSet<Ref>,
    metrics_read: HashSet<String>,
    /// Resources a teardown reported and has not yet seen disappear (their ARNs).
    teardown: HashMap<Ref, String>,
    /// The last observation in this run and when each of its reads is due again (`None`: read
    /// everything).
    cache: Option<observe::Cache>,
    /// How long the last finished resource of each kind took (kept across runs).
    took: HashMap<Kind, Duration>,
    /// The data a pass of this run found, every dataset's and batch input there, kept while the run
    /// is pending ([`Reconciler::data`]).
    data: Option<DataFound>,
}

/// Whether another replica may have held the group between a pass under tenure `last` and one under
/// `now` ([`LeaseGuard::tenure`]). Each acquisition bumps the epoch by one, so `last + 1` (or `last`
/// itself, a renewal) proves nobody else did; anything else, or a change between guarded and
/// unguarded passes, may hide another actor.
fn handed_over(last: Option<u64>, now: Option<u64>) -> bool {
    match (last, now) {
        (None, None) => false,
        (Some(last), Some(now)) => now != last && Some(now) != last.checked_add(1),
        (Some(_), None) | (None, Some(_)) => true,
    }
}

/// What one pass's calls did.
#[derive(Debug, Default)]
struct Acted {
    /// Kinds of the resources created, updated or adopted.
    kinds: Vec<Kind>,
    /// A call was refused for now (quota, in use, throttled).
    retry_later: bool,
    /// Creates Personalize refused.
    rejected: Vec<Failure>,
}

/// Brings dataset groups to their parameter files.
#[derive(Debug)]
pub struct Reconciler {
    api: Api,
    objects: Arc<dyn ObjectStore>,
    settings: ReconcileSettings,
    roles: Roles,
    memory: Mutex<HashMap<String, GroupMemory>>,
    /// Metrics of versions the promotion gate compared (they never change).
    metrics: promotion::MetricsCache,
    /// Tags read in each group's current run.
    tags: tags::TagCache,
    /// "Now" of the planner's age decisions (import `maxAge`, batch job ages): the daemon's clock,
    /// so tests with injected time see the same instants as the store and the scheduler.
    clock: Arc<dyn crate::store::Clock>,
    /// `arn:<partition>:personalize:<region>:<account>:`, once any ARN of the account was seen.
    account_prefix: Mutex<Option<String>>,
    /// Job names taken here or claimed by other replicas, so that a job-name collision costs no
    /// refused create.
    job_names: job_names::JobNames,
}

fn kind_key(kind: Kind) -> String {
    kind.as_str().replace('-', "_")
}

fn roles(p: &PersonalizeSettings) -> Roles {
    let get = |v: &str| PersonalizeSettings::non_empty(v).map(str::to_string);
    Roles {
        import: get(&p.import_role_arn),
        batch_inference: get(&p.batch_inference_role_arn),
        batch_segment: get(&p.batch_segment_role_arn),
        kms: get(&p.kms_role_arn).zip(get(&p.kms_key_arn)),
    }
}

/// Finds each dataset's data beside the parameter file (`<type>/*.csv` first, then `<type>.csv`) and
/// the batch input of every solution with batch jobs.
pub async fn find_data(
    objects: &dyn ObjectStore,
    spec: &Spec,
    config: &ObjectUrl,
) -> Result<DataFound, ObjectError> {
    let folder = names::config_folder(config);
    let mut found = DataFound::default();
    for d in spec.datasets.iter().flat_map(|d| d.all()) {
        let dir = names::data_folder(&folder, d.dataset_type);
        let parts: Vec<_> = objects
            .list(&dir, false)
            .await?
            .into_iter()
            .filter(|o| o.url.key.ends_with(".csv"))
            .collect();
        let location = if let Some(newest) = parts.iter().map(|o| o.last_modified).max() {
            Some(DataLocation {
                url: dir.to_string(),
                newest,
            })
        } else {
            let file = names::data_file(&folder, d.dataset_type);
            objects.head(&file).await?.map(|meta| DataLocation {
                url: file.to_string(),
                newest: meta.last_modified,
            })
        };
        if let Some(l) = location {
            found.datasets.insert(d.dataset_type, l);
        }
    }
    for s in &spec.solutions {
        if s.batch_inference_jobs.is_empty() && s.batch_segment_jobs.is_empty() {
            continue;
        }
        let input = ObjectUrl::new(
            config.bucket.clone(),
            names::batch_input_key(&spec.dataset_group.name, &s.name),
        );
        if objects.head(&input).await?.is_some() {
            found.batch_inputs.insert(s.name.clone());
        }
    }
    Ok(found)
}

/// Whether `found` holds data for every dataset of `spec` and the batch input of every solution with
/// batch jobs: nothing a later upload could still provide to this run.
fn all_data_found(spec: &Spec, found: &DataFound) -> bool {
    let datasets = spec
        .datasets
        .iter()
        .flat_map(|d| d.all())
        .all(|d| found.datasets.contains_key(&d.dataset_type));
    let inputs = spec
        .solutions
        .iter()
        .filter(|s| !s.batch_inference_jobs.is_empty() || !s.batch_segment_jobs.is_empty())
        .all(|s| found.batch_inputs.contains(&s.name));
    datasets && inputs
}

fn step_status(action: &Action) -> Option<(String, Option<String>)> {
    match action {
        Action::Adopt => Some(("ACTIVE".into(), None)),
        Action::Skip { reason, .. } => Some(("SKIPPED".into(), Some(reason.clone()))),
        Action::Wait { status } => Some((status.clone(), None)),
        Action::Conflict { differences } => Some(("CONFLICT".into(), Some(differences.join("; ")))),
        Action::Failed { reason } => Some(("FAILED".into(), Some(reason.clone()))),
        Action::DependencyFailed { on } => Some((
            "DEPENDENCY FAILED".into(),
            Some(format!("not attempted: it needs {on}, which failed")),
        )),
        Action::Create { .. } | Action::Update { .. } => None,
    }
}

/// Marks `failed` steps as failed and every step waiting on a failed one as `DependencyFailed`.
fn apply_failures(plan: &mut Plan, failed: &HashMap<Ref, String>) {
    let mut broken: HashSet<Ref> = HashSet::new();
    for step in &mut plan.steps {
        if let Some(reason) = failed.get(&step.target)
            && !step.action.is_done()
        {
            step.action = Action::Failed {
                reason: reason.clone(),
            };
        }
        if let Action::Create { after, .. } = &step.action
            && let Some(on) = after.iter().find(|a| broken.contains(*a))
        {
            step.action = Action::DependencyFailed { on: on.clone() };
        }
        if step.action.is_broken() {
            broken.insert(step.target.clone());
        }
    }
}

impl Reconciler {
    /// A reconciler calling Personalize through `client`, reading data from `objects`.
    /// `limiter` is the process-wide rate limit (share one between reconcilers).
    pub fn new(
        client: aws_sdk_personalize::Client,
        objects: Arc<dyn ObjectStore>,
        settings: &ReconcileSettings,
        personalize: &PersonalizeSettings,
        limiter: Arc<RateLimiter>,
    ) -> Self {
        let backoff = Backoff {
            min: Duration::from_millis(settings.throttle_backoff_min_ms),
            max: Duration::from_millis(settings.throttle_backoff_max_ms),
            retries: settings.throttle_retries,
        };
        Self {
            api: Api::new(client, limiter, backoff),
            objects,
            settings: settings.clone(),
            roles: roles(personalize),
            memory: Mutex::new(HashMap::new()),
            metrics: promotion::MetricsCache::default(),
            tags: tags::TagCache::default(),
            clock: Arc::new(crate::store::SystemClock),
            account_prefix: Mutex::new(None),
            job_names: job_names::JobNames::new(),
        }
    }

    /// The same reconciler reading "now" from `clock` (the system clock by default).
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn crate::store::Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The same reconciler claiming each job name through `claims` before creating the job, so that
    /// replicas sharing `claims` (the daemon's state store) never send a create for a name another
    /// replica's group took. Without it, names are known per process.
    #[must_use]
    pub fn with_job_claims(mut self, claims: Arc<dyn JobClaims>) -> Self {
        self.job_names = job_names::JobNames::shared(claims);
        self
    }

    /// Personalize calls made so far (including retries).
    pub fn calls(&self) -> u64 {
        self.api.calls()
    }

    fn remember<T>(&self, group: &str, f: impl FnOnce(&mut GroupMemory) -> T) -> T {
        let mut all = self
            .memory
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(all.entry(group.to_string()).or_default())
    }

    /// The group's ARN: remembered, else described by the ARN its name gives once any ARN of the
    /// account is known (one call), else found by listing every group (pages of 100: the first
    /// group only, since a listing per new group would grow with the account's groups).
    async fn group_arn(&self, spec: &Spec) -> Result<Option<String>, ApiError> {
        let name = &spec.dataset_group.name;
        if let Some(arn) = self.remember(name, |m| m.group_arn.clone()) {
            return Ok(Some(arn));
        }
        let prefix = self
            .account_prefix
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let arn = match prefix {
            Some(prefix) => observe::describe_group(&self.api, &prefix, name).await?,
            None => observe::find_group(&self.api, name).await?,
        };
        if let Some(a) = &arn {
            self.learn_prefix(a);
        }
        self.remember(name, |m| m.group_arn.clone_from(&arn));
        Ok(arn)
    }

    /// Keeps the `arn:<partition>:personalize:<region>:<account>:` of `arn`, shared by every
    /// name-derived ARN of the account.
    fn learn_prefix(&self, arn: &str) {
        let mut prefix = self
            .account_prefix
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if prefix.is_none()
            && let Some(p) = observe::account_prefix(arn)
        {
            *prefix = Some(p.to_string());
        }
    }

    fn personalize_error(spec: &Spec) -> impl FnOnce(ApiError) -> ReconcileError + '_ {
        move |source| ReconcileError::Personalize {
            group: spec.dataset_group.name.clone(),
            source,
        }
    }

    async fn observe_and_plan(
        &self,
        spec: &Spec,
        config: &ObjectUrl,
        run_start: DateTime<Utc>,
        list_unmanaged: bool,
        scheduled: Option<&ScheduledWork>,
    ) -> Result<Plan, ReconcileError> {
        let group = spec.dataset_group.name.clone();
        let data = self.data(spec, config, list_unmanaged).await?;
        let group_arn = self
            .group_arn(spec)
            .await
            .map_err(Self::personalize_error(spec))?;
        // `plan` always reads everything; passes of a run read what is due or what they changed.
        let (cache, took) = if list_unmanaged {
            (None, HashMap::new())
        } else {
            self.remember(&group, |m| (m.cache.clone(), m.took.clone()))
        };
        let policy = |kind: Kind| {
            let k = self.settings.kind(&kind_key(kind));
            polls::PollPolicy {
                min: k.poll_min(),
                max: k.poll_max(),
                expected: took.get(&kind).copied().or_else(|| k.expected()),
            }
        };
        let mut observer = observe::Observer::new(&self.api, cache.as_ref(), &policy);
        let mut observed = observer
            .observe(spec, group_arn.as_deref(), list_unmanaged)
            .await
            .map_err(Self::personalize_error(spec))?;
        let due = observer.into_due();
        self.remember(&group, |m| {
            m.took.extend(observe::durations(&observed));
            if observed.group.is_none() {
                // Deleted behind our back, or never created: look it up again next time.
                m.group_arn = None;
                m.cache = None;
            } else if !list_unmanaged {
                m.cache = Some(observe::Cache::new(observed.clone(), due));
            }
        });
        promotion::observe(&self.api, spec, &mut observed, &self.metrics)
            .await
            .map_err(Self::personalize_error(spec))?;
        tags::observe(&self.api, spec, &mut observed, &self.tags, run_start)
            .await
            .map_err(Self::personalize_error(spec))?;
        let run = RunContext {
            run_start,
            now: self.clock.now(),
            roles: self.roles.clone(),
            bucket: config.bucket.clone(),
            scheduled: scheduled.cloned(),
        };
        Ok(plan::plan(spec, &observed, &data, &run))
    }

    /// The data beside the parameter file. A pass of a pending run reuses what an earlier pass of the
    /// run found once every dataset's data and every batch input was there: what the run imports
    /// was decided when it found them, and each further pass would list the same folders again (one
    /// S3 round trip per dataset per pass). Data uploaded meanwhile is seen by the next run, or by the
    /// first pass after this one converges or fails (both forget the listing), as an upload after
    /// convergence is. While anything is missing, every pass looks again. `fresh` (`plan`) always
    /// lists and keeps nothing.
    async fn data(&self, spec: &Spec, config: &ObjectUrl, fresh: bool) -> Result<DataFound, ReconcileError> {
        let group = &spec.dataset_group.name;
        if !fresh && let Some(found) = self.remember(group, |m| m.data.clone()) {
            return Ok(found);
        }
        let found = find_data(self.objects.as_ref(), spec, config)
            .await
            .map_err(|source| ReconcileError::Objects {
                group: group.clone(),
                source,
            })?;
        if !fresh && all_data_found(spec, &found) {
            self.remember(group, |m| m.data = Some(found.clone()));
        }
        Ok(found)
    }

    /// What `apply` would do now, changing nothing (unmanaged resources listed).
    pub async fn plan(
        &self,
        spec: &Spec,
        config: &ObjectUrl,
        run_start: DateTime<Utc>,
    ) -> Result<Plan, ReconcileError> {
        self.observe_and_plan(spec, config, run_start, true, None).await
    }

    /// One pass: observe, plan, make the calls that are ready, report. Cheap and idempotent.
    ///
    /// `config` is where the parameter file lives (data is read beside it); `run_start` names this
    /// run's one-shot jobs and must stay the same for every pass of the run.
    pub async fn pass(
        &self,
        spec: &Spec,
        config: &ObjectUrl,
        run_start: DateTime<Utc>,
        sink: &mut dyn EventSink,
    ) -> Result<PassOutcome, ReconcileError> {
        self.scheduled_pass(spec, config, run_start, None, Arc::new(Unguarded), sink)
            .await
    }

    /// As [`Reconciler::pass`], for a schedule's fire: `run_start` is the fire instant (so the fire's
    /// one-shot jobs are named from it and a resumed action finds them) and `scheduled` says what the
    /// fire forces beyond converging the file. `lease` is checked before every call that changes
    /// something; once it fails, the pass stops with [`ReconcileError::LeaseLost`] and nothing it
    /// decided under the lost lease is sent.
    pub async fn scheduled_pass(
        &self,
        spec: &Spec,
        config: &ObjectUrl,
        run_start: DateTime<Utc>,
        scheduled: Option<&ScheduledWork>,
        lease: Arc<dyn LeaseGuard>,
        sink: &mut dyn EventSink,
    ) -> Result<PassOutcome, ReconcileError> {
        let group = spec.dataset_group.name.clone();
        self.start_run(&group, run_start, lease.tenure());
        let mut plan = self
            .observe_and_plan(spec, config, run_start, false, scheduled)
            .await?;
        let now = Instant::now();
        let failed = self.known_failures(&group, &plan, now);
        apply_failures(&mut plan, &failed);

        self.emit_changes(&group, &plan, now, sink);
        self.read_metrics(&group, &plan, now, sink).await;
        let acted = self.execute_ready(&group, &plan, now, &lease, sink).await?;
        Ok(self.outcome(&group, &plan, acted))
    }

    /// A new run forgets the last one (all but the group's ARN and the durations learnt). A pass
    /// under a lease another replica held since this one's last pass forgets what was observed: the
    /// cache trusts listings until a call of ours changes them, and the other replica's calls (a
    /// trained version, a campaign) are not ours.
    fn start_run(&self, group: &str, run_start: DateTime<Utc>, tenure: Option<u64>) {
        self.remember(group, |m| {
            if m.run_start != Some(run_start) {
                *m = GroupMemory {
                    run_start: Some(run_start),
                    group_arn: m.group_arn.take(),
                    took: std::mem::take(&mut m.took),
                    ..GroupMemory::default()
                };
            } else if handed_over(m.tenure, tenure) {
                m.cache = None;
                m.data = None;
                m.already_exists.clear();
            }
            m.tenure = tenure;
        });
    }

    /// Timeouts and refused creates: failures, propagated to dependants.
    fn known_failures(&self, group: &str, plan: &Plan, now: Instant) -> HashMap<Ref, String> {
        self.remember(group, |m| {
            let mut failed = m.rejected.clone();
            for step in &plan.steps {
                if let Action::Create { request: Some(_), .. } = &step.action
                    && m.already_exists.contains(&step.target)
                {
                    failed.insert(
                        step.target.clone(),
                        format!(
                            "a {} named {} already exists in the account but not in this dataset group (names are unique per account and region)",
                            step.target.kind, step.target.name
                        ),
                    );
                }
                if let Action::Wait { status } = &step.action {
                    let since = *m.first_seen.entry(step.target.clone()).or_insert(now);
                    let kind = self.settings.kind(&kind_key(step.target.kind));
                    if now.duration_since(since) > kind.timeout() {
                        failed.insert(
                            step.target.clone(),
                            format!(
                                "still {status} after {} s (setting reconcile.kinds.{}.timeout_secs)",
                                now.duration_since(since).as_secs(),
                                kind_key(step.target.kind)
                            ),
                        );
                    }
                }
            }
            failed
        })
    }

    /// Makes the creates and updates that are ready, reports each, and marks what they change as
    /// due for the next observation.
    ///
    /// # Errors
    /// [`ReconcileError::LeaseLost`] when `lease` failed during the calls: nothing is recorded about
    /// them (those refused for want of the lease are not the group's failures).
    async fn execute_ready(
        &self,
        group: &str,
        plan: &Plan,
        now: Instant,
        lease: &Arc<dyn LeaseGuard>,
        sink: &mut dyn EventSink,
    ) -> Result<Acted, ReconcileError> {
        let ready: Vec<_> = plan
            .steps
            .iter()
            .filter_map(|s| match &s.action {
                Action::Create { request: Some(r), .. } => Some((s, r)),
                Action::Update { request, .. } => Some((s, request)),
                _ => None,
            })
            .collect();
        let prefix = self
            .remember(group, |m| m.group_arn.clone())
            .and_then(|a| observe::arn_prefix(&a).map(str::to_string));
        self.mark_changing(group, &ready);
        let api = self.api.guarded(Arc::clone(lease));
        let results = join_all(
            ready
                .iter()
                .map(|(_, r)| execute::execute(&api, r, prefix.as_deref(), &self.job_names)),
        )
        .await;
        if let Err(source) = lease.check() {
            return Err(ReconcileError::LeaseLost {
                group: group.to_string(),
                source,
            });
        }

        let mut acted = Acted::default();
        for ((step, request), result) in ready.iter().zip(results) {
            let (status, reason, arn) = self.record(group, step, request, &result, &mut acted);
            self.emit(
                group,
                &step.target,
                arn.or_else(|| step.arn.clone()),
                status,
                reason,
                now,
                None,
                sink,
            );
        }
        Ok(acted)
    }

    /// Marks what the `ready` calls may change as due for the next observation, before any of them
    /// is sent. After would be too late: a pass stopped by a lost lease between sending and
    /// recording, a pass dropped mid-call, or a call answered with a network error after Personalize
    /// applied it records nothing, and the listing cached before it (a solution without versions)
    /// would have the replica's next pass send the create again: a second paid training, since
    /// Personalize refuses no CreateSolutionVersion as a duplicate.
    fn mark_changing(&self, group: &str, ready: &[(&plan::Step, &Request)]) {
        self.remember(group, |m| {
            let Some(c) = &mut m.cache else { return };
            for (step, request) in ready {
                c.invalidate(&step.target);
                // The schema an update creates, read again to see the dataset on it.
                if let Request::UpdateDataset {
                    create_schema: Some(s),
                    ..
                } = request
                {
                    c.invalidate(&Ref::new(Kind::Schema, &s.name));
                }
            }
        });
    }

    /// Remembers what one call of [`Self::execute_ready`] did (refused creates, names taken, the
    /// group's ARN) and says how to report it: status, reason, ARN.
    fn record(
        &self,
        group: &str,
        step: &plan::Step,
        request: &Request,
        result: &Executed,
        acted: &mut Acted,
    ) -> (String, Option<String>, Option<String>) {
        match result {
            Executed::Started { arn } => {
                acted.kinds.push(step.target.kind);
                if let (Request::CreateDatasetGroup { .. }, Some(a)) = (request, arn) {
                    self.remember(group, |m| m.group_arn = Some(a.clone()));
                }
                if let (Some(a), Some(sent)) = (arn, tags::sent(request)) {
                    self.learn_prefix(a);
                    if let Some(run_start) = self.remember(group, |m| m.run_start) {
                        self.tags.created(group, run_start, a, sent);
                    }
                }
                let word = format!("{} REQUESTED", request.verb());
                if matches!(step.action, Action::Update { .. })
                    && let Some(arn) = &step.arn
                {
                    // Changed by this call: its tags are read again on the next pass.
                    self.tags.forget(group, arn);
                }
                let why = match &step.action {
                    Action::Create { why, .. } => Some(why.clone()),
                    Action::Update { changes, .. } => Some(changes.join("; ")),
                    _ => None,
                };
                let why = match (&why, &step.note) {
                    (Some(w), Some(n)) => Some(format!("{w}; {n}")),
                    _ => why.or_else(|| step.note.clone()),
                };
                (word, why, arn.clone())
            }
            Executed::Adopted => {
                acted.kinds.push(step.target.kind);
                self.remember(group, |m| {
                    m.already_exists.insert(step.target.clone());
                });
                (
                    "EXISTS".to_string(),
                    Some("already exists: adopted".to_string()),
                    None,
                )
            }
            Executed::Later { why } => {
                acted.retry_later = true;
                ("RETRY LATER".to_string(), Some(why.clone()), None)
            }
            Executed::Rejected { reason } => {
                self.remember(group, |m| m.rejected.insert(step.target.clone(), reason.clone()));
                acted.rejected.push(Failure {
                    target: step.target.clone(),
                    arn: None,
                    reason: reason.clone(),
                });
                ("FAILED".to_string(), Some(reason.clone()), None)
            }
        }
    }

    /// What the pass found, from the plan and what was just done.
    fn outcome(&self, group: &str, plan: &Plan, acted: Acted) -> PassOutcome {
        let mut failures: Vec<Failure> = plan
            .steps
            .iter()
            .filter_map(|s| match step_status(&s.action) {
                Some((_, Some(reason))) if s.action.is_broken() => Some(Failure {
                    target: s.target.clone(),
                    arn: s.arn.clone(),
                    reason,
                }),
                _ => None,
            })
            .collect();
        let rejected_now: HashSet<Ref> = acted.rejected.iter().map(|f| f.target.clone()).collect();
        failures.extend(acted.rejected);
        let waiting: Vec<Ref> = plan
            .steps
            .iter()
            .filter(|s| !s.action.is_done() && !s.action.is_broken() && !rejected_now.contains(&s.target))
            .map(|s| s.target.clone())
            .collect();
        let resources = plan
            .steps
            .iter()
            .map(|s| ResourceState {
                target: s.target.clone(),
                arn: s.arn.clone(),
                status: step_status(&s.action).map_or_else(|| "PENDING".to_string(), |(st, _)| st),
                note: s.note.clone(),
            })
            .collect();
        if waiting.is_empty() && !acted.retry_later {
            self.remember(group, |m| {
                if let Some(c) = &mut m.cache {
                    c.keep_settled();
                }
                // Settled: the next pass (a resync) looks for new data.
                m.data = None;
            });
            return if failures.is_empty() {
                PassOutcome::Converged { resources }
            } else {
                PassOutcome::Failed { failures, resources }
            };
        }
        let next_poll_after = self.next_poll(group, &waiting, &acted.kinds, acted.retry_later);
        PassOutcome::Pending {
            next_poll_after,
            waiting,
            failures,
        }
    }

    /// The soonest of: the first poll of the kinds just acted on, the poll time of the pending
    /// resources, a retry of what was refused for now. A plan waiting on nothing the observation
    /// has pending (it should not happen) comes back after the shortest cap of what it waits on.
    fn next_poll(&self, group: &str, waiting: &[Ref], acted: &[Kind], retry_later: bool) -> Duration {
        let kind = |k: Kind| self.settings.kind(&kind_key(k));
        let now = Instant::now();
        let due = self.remember(group, |m| {
            m.cache
                .as_ref()
                .and_then(observe::Cache::next_due)
                .map(|t| t.saturating_duration_since(now))
        });
        let candidates = acted.iter().map(|k| kind(*k).poll_min()).chain(due).chain(
            retry_later.then(|| Duration::from_millis(self.settings.throttle_backoff_max_ms.min(5_000))),
        );
        candidates
            .min()
            .or_else(|| waiting.iter().map(|r| kind(r.kind).poll_max()).min())
            .unwrap_or(Duration::from_secs(1))
    }

    #[allow(clippy::too_many_arguments)]
    fn emit(
        &self,
        group: &str,
        target: &Ref,
        arn: Option<String>,
        status: String,
        reason: Option<String>,
        now: Instant,
        metrics: Option<BTreeMap<String, f64>>,
        sink: &mut dyn EventSink,
    ) {
        let elapsed = self.remember(group, |m| {
            m.last_status.insert(target.clone(), status.clone());
            let since = *m.first_seen.entry(target.clone()).or_insert(now);
            now.duration_since(since).as_secs_f64()
        });
        sink.emit(Event {
            group: group.to_string(),
            kind: target.kind,
            name: target.name.clone(),
            arn,
            status,
            elapsed_secs: Some(elapsed),
            reason,
            metrics,
        });
    }

    fn emit_changes(&self, group: &str, plan: &Plan, now: Instant, sink: &mut dyn EventSink) {
        for s in &plan.steps {
            let Some((status, reason)) = step_status(&s.action) else {
                continue;
            };
            let changed = self.remember(group, |m| m.last_status.get(&s.target) != Some(&status));
            if changed {
                let reason = reason.or_else(|| s.note.clone());
                self.emit(group, &s.target, s.arn.clone(), status, reason, now, None, sink);
            }
        }
    }

    /// `GetSolutionMetrics` once per ACTIVE version (per reconciler).
    async fn read_metrics(&self, group: &str, plan: &Plan, now: Instant, sink: &mut dyn EventSink) {
        for s in &plan.steps {
            let (Kind::SolutionVersion, Action::Adopt, Some(arn)) = (s.target.kind, &s.action, &s.arn) else {
                continue;
            };
            if !self.remember(group, |m| m.metrics_read.insert(arn.clone())) {
                continue;
            }
            let result = self
                .api
                .call("GetSolutionMetrics", arn, || {
                    self.api
                        .client
                        .get_solution_metrics()
                        .solution_version_arn(arn)
                        .send()
                })
                .await;
            match result {
                Ok(r) => {
                    let metrics: BTreeMap<String, f64> = r.metrics.unwrap_or_default().into_iter().collect();
                    self.emit(
                        group,
                        &s.target,
                        Some(arn.clone()),
                        "METRICS".into(),
                        None,
                        now,
                        Some(metrics),
                        sink,
                    );
                }
                Err(e) => {
                    // Metrics are a report, not part of convergence: try again on a later pass.
                    tracing::warn!(error = %e, "cannot read solution metrics");
                    self.remember(group, |m| m.metrics_read.remove(arn));
                }
            }
        }
    }

    /// How long to wait after the transient error `e` of a pass: `backoff`, which then doubles up to
    /// `throttle_backoff_max_ms`.
    fn wait_after_error(&self, e: &ReconcileError, backoff: &mut Duration) -> Duration {
        tracing::warn!(error = %e, "pass interrupted; trying again");
        let wait = *backoff;
        *backoff = (*backoff * 2).min(Duration::from_millis(self.settings.throttle_backoff_max_ms));
        wait
    }

    /// Passes until converged or failed, sleeping as each pass asks. Transient errors (throttling,
    /// quotas, network) are waited out; `cancel` stops between calls.
    pub async fn apply(
        &self,
        spec: &Spec,
        config: &ObjectUrl,
        run_start: DateTime<Utc>,
        sink: &mut dyn EventSink,
        cancel: &CancellationToken,
    ) -> Result<PassOutcome, ReconcileError> {
        let group = spec.dataset_group.name.clone();
        let mut error_backoff = Duration::from_millis(self.settings.throttle_backoff_min_ms);
        loop {
            let pass = tokio::select! {
                r = self.pass(spec, config, run_start, sink) => r,
                () = cancel.cancelled() => return Err(ReconcileError::Cancelled { group }),
            };
            let wait = match pass {
                Ok(PassOutcome::Pending { next_poll_after, .. }) => {
                    error_backoff = Duration::from_millis(self.settings.throttle_backoff_min_ms);
                    next_poll_after
                }
                Ok(done) => return Ok(done),
                Err(e) if e.is_transient() => self.wait_after_error(&e, &mut error_backoff),
                Err(e) => return Err(e),
            };
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = cancel.cancelled() => return Err(ReconcileError::Cancelled { group }),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_propagate_to_waiting_dependants_only() {
        let a = Ref::new(Kind::Solution, "a");
        let b = Ref::new(Kind::Solution, "b");
        let mut plan = Plan {
            steps: vec![
                plan::Step {
                    target: a.clone(),
                    arn: None,
                    action: Action::Wait {
                        status: "CREATE PENDING".into(),
                    },
                    note: None,
                },
                plan::Step {
                    target: b.clone(),
                    arn: None,
                    action: Action::Wait {
                        status: "CREATE PENDING".into(),
                    },
                    note: None,
                },
                plan::Step {
                    target: Ref::new(Kind::SolutionVersion, "a"),
                    arn: None,
                    action: Action::Create {
                        request: None,
                        after: vec![a.clone()],
                        why: "new".into(),
                    },
                    note: None,
                },
                plan::Step {
                    target: Ref::new(Kind::SolutionVersion, "b"),
                    arn: None,
                    action: Action::Create {
                        request: None,
                        after: vec![b.clone()],
                        why: "new".into(),
                    },
                    note: None,
                },
            ],
            unmanaged: Vec::new(),
        };
        let failed: HashMap<Ref, String> = [(a.clone(), "timed out".to_string())].into_iter().collect();
        apply_failures(&mut plan, &failed);
        assert_eq!(
            plan.steps[0].action,
            Action::Failed {
                reason: "timed out".into()
            }
        );
        assert_eq!(plan.steps[2].action, Action::DependencyFailed { on: a });
        assert!(matches!(plan.steps[3].action, Action::Create { .. }));
    }
}
