//! Reading what exists for one dataset group: describes by name-derived ARN, lists under parents,
//! each read only when what it reads can have changed (its poll time, or a call of ours).

use std::collections::HashMap;
use std::future::Future;

use chrono::{DateTime, Utc};
use tokio::time::Instant;

use crate::plan::observed::*;
use crate::plan::{Kind, Phase, Ref};
use crate::spec::kinds::DatasetType;
use crate::spec::model::Spec;

use super::api::{Api, ApiError, ErrorClass};
use super::convert::{self, time};
use super::polls::PollPolicy;

/// One read of the observation: a describe (kind, resource name) or a listing under a parent
/// (import jobs by dataset name, versions by solution name, batch jobs by version ARN, trackers
/// by the empty name).
pub type Unit = (Kind, String);

/// When a read is due again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// Something in it is pending: at its poll time.
    At(Instant),
    /// Nothing in it can change by itself (ACTIVE, failed, absent, or no child pending): only
    /// after a call of ours on it.
    OnChange,
}

impl Due {
    fn fresh(self, now: Instant) -> bool {
        match self {
            Self::At(t) => t > now,
            Self::OnChange => true,
        }
    }
}

/// The last observation of a group in this run and when each of its reads is due again. Nothing
/// here is needed after a restart: an empty cache reads everything.
#[derive(Debug, Clone, Default)]
pub struct Cache {
    last: Observation,
    due: HashMap<Unit, Due>,
}

impl Cache {
    /// A cache of `observation`, whose reads are due as `due` says.
    pub fn new(last: Observation, due: HashMap<Unit, Due>) -> Self {
        Self { last, due }
    }

    /// A call of ours changed `target`: the read that shows it is due now. Listings are keyed by
    /// their parent, which a target's name does not always give: every listing of that kind.
    pub fn invalidate(&mut self, target: &Ref) {
        let exact = (target.kind, target.name.clone());
        if self.due.remove(&exact).is_none() {
            self.due.retain(|(kind, _), _| *kind != target.kind);
        }
    }

    /// The run has converged or failed: what comes next is a resync or a retry looking for drift.
    /// Keep only describes of what cannot change by itself once ACTIVE (group, schemas, datasets,
    /// filters, solutions); listings, campaigns and recommenders are read again.
    pub fn keep_settled(&mut self) {
        self.due.retain(|(kind, _), due| {
            *due == Due::OnChange
                && matches!(
                    kind,
                    Kind::DatasetGroup | Kind::Schema | Kind::Dataset | Kind::Filter | Kind::Solution
                )
        });
    }

    /// The soonest poll time of a pending resource.
    pub fn next_due(&self) -> Option<Instant> {
        self.due
            .values()
            .filter_map(|d| match d {
                Due::At(t) => Some(*t),
                Due::OnChange => None,
            })
            .min()
    }
}

/// `Ok(None)` for a resource that does not exist.
fn found<T>(r: Result<T, ApiError>) -> Result<Option<T>, ApiError> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.class == ErrorClass::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

fn meta(
    arn: Option<&str>,
    status: Option<&str>,
    failure: Option<&str>,
    created: Option<&aws_smithy_types::DateTime>,
    updated: Option<&aws_smithy_types::DateTime>,
) -> Meta {
    Meta {
        arn: arn.unwrap_or_default().to_string(),
        status: status.unwrap_or_default().to_string(),
        failure_reason: failure.map(str::to_string),
        created: time(created),
        updated: time(updated),
    }
}

/// When a pending resource started its current work (`None` when it is not pending).
fn pending_since(m: &Meta) -> Option<Option<DateTime<Utc>>> {
    (m.phase() == Phase::Pending).then(|| {
        if m.status.to_ascii_uppercase().starts_with("UPDATE") {
            m.updated.or(m.created)
        } else {
            m.created
        }
    })
}

/// Personalize is creating it: nothing can exist under it yet (children need an ACTIVE parent).
fn creating(m: &Meta) -> bool {
    m.phase() == Phase::Pending && m.status.trim().to_ascii_uppercase().starts_with("CREATE")
}

/// A resource with an in-place update under way is pending too, though its own status stays ACTIVE.
fn updating_since(m: &Meta, update: Option<&UpdateObs>) -> Vec<Option<DateTime<Utc>>> {
    let update = update
        .filter(|u| Phase::of(&u.status) == Phase::Pending)
        .map(|_| m.updated.or(m.created));
    pending_since(m).into_iter().chain(update).collect()
}

/// What a describe returns for resources Personalize can update in place: the resource and its
/// latest update.
type WithUpdate<T> = Option<(T, Option<UpdateObs>)>;

/// The cached form of a [`WithUpdate`] read: the resource from the last observation and its update.
fn cached_with_update<T: Clone>(c: &Observation, x: Option<&T>, arn: impl Fn(&T) -> &str) -> WithUpdate<T> {
    x.map(|x| (x.clone(), c.updates.get(arn(x)).cloned()))
}

fn metas_pending<'a>(metas: impl IntoIterator<Item = &'a Meta>) -> Vec<Option<DateTime<Utc>>> {
    metas.into_iter().filter_map(pending_since).collect()
}

/// `arn:…:dataset-group/g` → `arn:…:` (the prefix of every name-derived ARN in that account).
pub fn arn_prefix(group_arn: &str) -> Option<&str> {
    group_arn.find("dataset-group/").map(|i| &group_arn[..i])
}

/// `arn:<partition>:personalize:<region>:<account>:…` → `arn:<partition>:personalize:<region>:<account>:`
/// (`None` for anything else).
pub fn account_prefix(arn: &str) -> Option<&str> {
    let mut colons = arn.match_indices(':').map(|(i, _)| i);
    let end = colons.nth(4)?;
    let prefix = &arn[..=end];
    prefix
        .split(':')
        .take(5)
        .enumerate()
        .all(|(i, part)| match i {
            0 => part == "arn",
            2 => part == "personalize",
            1 | 3 | 4 => !part.is_empty(),
            _ => true,
        })
        .then_some(prefix)
}

/// A dataset group's ARN from its name-derived ARN under `prefix` (see [`account_prefix`]).
pub async fn describe_group(api: &Api, prefix: &str, name: &str) -> Result<Option<String>, ApiError> {
    let arn = format!("{prefix}dataset-group/{name}");
    Ok(fetch_group(api, &arn)
        .await?
        .map(|g| if g.meta.arn.is_empty() { arn } else { g.meta.arn }))
}

/// Finds a dataset group's ARN by listing (used once per group; the ARN is then remembered).
pub async fn find_group(api: &Api, name: &str) -> Result<Option<String>, ApiError> {
    let mut token: Option<String> = None;
    loop {
        let page = api
            .call("ListDatasetGroups", name, || {
                api.client
                    .list_dataset_groups()
                    .set_next_token(token.clone())
                    .max_results(100)
                    .send()
            })
            .await?;
        if let Some(g) = page
            .dataset_groups()
            .iter()
            .find(|g| g.name.as_deref() == Some(name))
        {
            return Ok(g.dataset_group_arn.clone());
        }
        match page.next_token {
            Some(t) if !t.is_empty() => token = Some(t),
            _ => return Ok(None),
        }
    }
}

/// How long finished work of each kind took, from Personalize's own timestamps (created → last
/// updated of ACTIVE resources), the most recently created of each kind.
pub fn durations(o: &Observation) -> HashMap<Kind, std::time::Duration> {
    let mut metas: Vec<(Kind, &Meta)> = Vec::new();
    metas.extend(o.group.iter().map(|g| (Kind::DatasetGroup, &g.meta)));
    metas.extend(o.datasets.values().map(|d| (Kind::Dataset, &d.meta)));
    metas.extend(
        o.import_jobs
            .values()
            .flatten()
            .map(|j| (Kind::DatasetImportJob, &j.meta)),
    );
    metas.extend(o.event_trackers.iter().map(|t| (Kind::EventTracker, &t.meta)));
    metas.extend(o.filters.values().map(|f| (Kind::Filter, &f.meta)));
    metas.extend(o.solutions.values().map(|s| (Kind::Solution, &s.meta)));
    metas.extend(
        o.versions
            .values()
            .flatten()
            .map(|v| (Kind::SolutionVersion, &v.meta)),
    );
    metas.extend(o.campaigns.values().map(|c| (Kind::Campaign, &c.meta)));
    metas.extend(o.recommenders.values().map(|r| (Kind::Recommender, &r.meta)));
    metas.extend(
        o.batch_inference_jobs
            .values()
            .flatten()
            .map(|j| (Kind::BatchInferenceJob, &j.meta)),
    );
    metas.extend(
        o.batch_segment_jobs
            .values()
            .flatten()
            .map(|j| (Kind::BatchSegmentJob, &j.meta)),
    );
    let mut newest: HashMap<Kind, (DateTime<Utc>, std::time::Duration)> = HashMap::new();
    for (kind, m) in metas {
        let (Phase::Active, Some(created), Some(updated)) = (m.phase(), m.created, m.updated) else {
            continue;
        };
        let Ok(took) = (updated - created).to_std() else {
            continue;
        };
        if newest.get(&kind).is_none_or(|(c, _)| created > *c) {
            newest.insert(kind, (created, took));
        }
    }
    newest.into_iter().map(|(k, (_, d))| (k, d)).collect()
}

/// Reads one group, skipping what the cache says cannot have changed.
pub struct Observer<'a> {
    api: &'a Api,
    /// `None`: read everything (`plan`, the first pass of a run).
    cache: Option<&'a Cache>,
    policy: &'a (dyn Fn(Kind) -> PollPolicy + Sync),
    now: Instant,
    now_utc: DateTime<Utc>,
    due: HashMap<Unit, Due>,
}

impl<'a> Observer<'a> {
    /// An observer calling through `api`; `policy` gives each kind's poll bounds and expectation.
    pub fn new(
        api: &'a Api,
        cache: Option<&'a Cache>,
        policy: &'a (dyn Fn(Kind) -> PollPolicy + Sync),
    ) -> Self {
        Self {
            api,
            cache,
            policy,
            now: Instant::now(),
            now_utc: Utc::now(),
            due: HashMap::new(),
        }
    }

    /// When each read of the last [`Observer::observe`] is due again.
    pub fn into_due(self) -> HashMap<Unit, Due> {
        self.due
    }

    fn due_of(&self, kind: Kind, pending: &[Option<DateTime<Utc>>]) -> Due {
        let policy = (self.policy)(kind);
        pending
            .iter()
            .map(|since| {
                let elapsed = since
                    .and_then(|s| (self.now_utc - s).to_std().ok())
                    .unwrap_or_default();
                self.now + policy.next_wait(elapsed)
            })
            .min()
            .map_or(Due::OnChange, Due::At)
    }

    /// `unit` lies under a parent Personalize is still creating, so it is empty: nothing to read
    /// until a call of ours creates something in it.
    fn known_empty(&mut self, unit: Unit) {
        self.due.insert(unit, Due::OnChange);
    }

    /// Reads `unit` through `fetch` unless the cache holds it and it is not due; `cached` takes it
    /// from the last observation, `pending` says what in it is still being worked on.
    async fn read<T, Fut>(
        &mut self,
        unit: Unit,
        cached: impl FnOnce(&Observation) -> T,
        fetch: impl FnOnce() -> Fut,
        pending: impl FnOnce(&T) -> Vec<Option<DateTime<Utc>>>,
    ) -> Result<T, ApiError>
    where
        Fut: Future<Output = Result<T, ApiError>>,
    {
        if let Some(cache) = self.cache
            && let Some(due) = cache.due.get(&unit)
            && due.fresh(self.now)
        {
            self.due.insert(unit, *due);
            return Ok(cached(&cache.last));
        }
        let value = fetch().await?;
        let due = self.due_of(unit.0, &pending(&value));
        self.due.insert(unit, due);
        Ok(value)
    }

    /// Everything the planner needs, given the group's ARN when known. With `list_unmanaged`, the
    /// group's solutions, filters, datasets and campaigns are listed too, for `plan`'s report.
    pub async fn observe(
        &mut self,
        spec: &Spec,
        group_arn: Option<&str>,
        list_unmanaged: bool,
    ) -> Result<Observation, ApiError> {
        let mut o = Observation::default();
        let Some(group_arn) = group_arn else {
            return Ok(o);
        };
        let api = self.api;
        let group_name = &spec.dataset_group.name;
        o.group = self
            .read(
                (Kind::DatasetGroup, group_name.clone()),
                |c| c.group.clone().filter(|g| g.meta.arn == group_arn),
                || fetch_group(api, group_arn),
                |g| metas_pending(g.iter().map(|g| &g.meta)),
            )
            .await?;
        let Some(group_creating) = o.group.as_ref().map(|g| creating(&g.meta)) else {
            return Ok(o);
        };
        let Some(prefix) = arn_prefix(group_arn).map(str::to_string) else {
            return Ok(o);
        };
        self.datasets(&mut o, spec, &prefix, group_creating).await?;
        if list_unmanaged {
            list_group(api, &mut o, group_arn).await?;
        }
        if group_creating {
            self.nothing_under_the_group_yet(spec);
            return Ok(o);
        }
        self.under_the_group(&mut o, spec, &prefix, group_arn, list_unmanaged)
            .await?;
        Ok(o)
    }

    /// The group is being created: trackers, filters, solutions (with their versions and
    /// campaigns) and recommenders all need an ACTIVE group, so none exists yet.
    fn nothing_under_the_group_yet(&mut self, spec: &Spec) {
        self.known_empty((Kind::EventTracker, String::new()));
        for (kind, name) in spec
            .filters
            .iter()
            .map(|f| (Kind::Filter, &f.name))
            .chain(spec.solutions.iter().map(|s| (Kind::Solution, &s.name)))
            .chain(spec.recommenders.iter().map(|r| (Kind::Recommender, &r.name)))
        {
            self.known_empty((kind, name.clone()));
        }
    }

    /// The schemas and datasets the file declares (with the datasets' import jobs).
    async fn datasets(
        &mut self,
        o: &mut Observation,
        spec: &Spec,
        prefix: &str,
        group_creating: bool,
    ) -> Result<(), ApiError> {
        let group_name = &spec.dataset_group.name;
        if let Some(ds) = &spec.datasets {
            for d in ds.all() {
                if let Some(schema) = &d.schema
                    && !o.schemas.contains_key(&schema.name)
                {
                    self.schema(o, prefix, &schema.name).await?;
                    // A changed document becomes a schema of its own: is it there yet?
                    if o.schemas
                        .get(&schema.name)
                        .is_some_and(|s| s.document != schema.document)
                    {
                        let revised =
                            crate::spec::names::schema_revision(&schema.name, &schema.document_text());
                        if !o.schemas.contains_key(&revised) {
                            self.schema(o, prefix, &revised).await?;
                        }
                    }
                }
                if group_creating {
                    self.known_empty((Kind::Dataset, d.name.clone()));
                    self.known_empty((Kind::DatasetImportJob, d.name.clone()));
                    continue;
                }
                let arn = format!("{prefix}dataset/{group_name}/{}", d.dataset_type.arn_suffix());
                self.dataset(o, &arn, &d.name, d.dataset_type).await?;
                // The schema the dataset uses, when an update moved it to another one.
                if let Some(used) = o.datasets.get(&d.dataset_type).map(|x| x.schema_arn.clone())
                    && let Some((_, name)) = used.rsplit_once("schema/")
                    && !name.is_empty()
                    && !o.schemas.contains_key(name)
                {
                    self.schema(o, prefix, name).await?;
                }
            }
        }
        Ok(())
    }

    /// What lives directly under an ACTIVE group: the event tracker, filters, solutions and
    /// recommenders.
    async fn under_the_group(
        &mut self,
        o: &mut Observation,
        spec: &Spec,
        prefix: &str,
        group_arn: &str,
        list_unmanaged: bool,
    ) -> Result<(), ApiError> {
        let api = self.api;
        if spec.event_tracker.is_some() {
            let trackers = self
                .read(
                    (Kind::EventTracker, String::new()),
                    |c| c.event_trackers.clone(),
                    || list_trackers(api, group_arn),
                    |ts| metas_pending(ts.iter().map(|t| &t.meta)),
                )
                .await?;
            o.listed.extend(trackers.iter().map(|t| Listed {
                kind: Kind::EventTracker,
                name: t.name.clone(),
                arn: t.meta.arn.clone(),
            }));
            o.event_trackers = trackers;
        }
        for f in &spec.filters {
            let arn = format!("{prefix}filter/{}", f.name);
            let found = self
                .read(
                    (Kind::Filter, f.name.clone()),
                    |c| c.filters.get(&f.name).cloned(),
                    || fetch_filter(api, &arn),
                    |x| metas_pending(x.iter().map(|x| &x.meta)),
                )
                .await?;
            if let Some(x) = found {
                o.filters.insert(f.name.clone(), x);
            }
        }
        for s in &spec.solutions {
            self.solution(o, prefix, s, list_unmanaged).await?;
        }
        for r in &spec.recommenders {
            let arn = format!("{prefix}recommender/{}", r.name);
            let found = self
                .read(
                    (Kind::Recommender, r.name.clone()),
                    |c| cached_with_update(c, c.recommenders.get(&r.name), |x| &x.meta.arn),
                    || fetch_recommender(api, &arn),
                    |x| {
                        x.iter()
                            .flat_map(|(r, u)| updating_since(&r.meta, u.as_ref()))
                            .collect()
                    },
                )
                .await?;
            if let Some((x, update)) = found {
                if let Some(u) = update {
                    o.updates.insert(x.meta.arn.clone(), u);
                }
                o.recommenders.insert(r.name.clone(), x);
            }
        }
        Ok(())
    }

    /// The schema `name`, into `o.schemas` when it exists.
    async fn schema(&mut self, o: &mut Observation, prefix: &str, name: &str) -> Result<(), ApiError> {
        let api = self.api;
        let arn = format!("{prefix}schema/{name}");
        let found = self
            .read(
                (Kind::Schema, name.to_string()),
                |c| c.schemas.get(name).cloned(),
                || fetch_schema(api, &arn),
                |_| Vec::new(),
            )
            .await?;
        if let Some(s) = found {
            o.schemas.insert(name.to_string(), s);
        }
        Ok(())
    }

    /// A dataset and, once it exists, its import jobs.
    async fn dataset(
        &mut self,
        o: &mut Observation,
        arn: &str,
        name: &str,
        ty: DatasetType,
    ) -> Result<(), ApiError> {
        let api = self.api;
        let found = self
            .read(
                (Kind::Dataset, name.to_string()),
                |c| cached_with_update(c, c.datasets.get(&ty), |d| &d.meta.arn),
                || fetch_dataset(api, arn),
                |x| {
                    x.iter()
                        .flat_map(|(d, u)| updating_since(&d.meta, u.as_ref()))
                        .collect()
                },
            )
            .await?;
        let Some((dataset, update)) = found else {
            return Ok(());
        };
        if let Some(u) = update {
            o.updates.insert(dataset.meta.arn.clone(), u);
        }
        let unit = (Kind::DatasetImportJob, name.to_string());
        if creating(&dataset.meta) {
            o.datasets.insert(ty, dataset);
            o.import_jobs.insert(ty, Vec::new());
            self.known_empty(unit);
            return Ok(());
        }
        o.datasets.insert(ty, dataset);
        let jobs = self
            .read(
                unit,
                |c| c.import_jobs.get(&ty).cloned().unwrap_or_default(),
                || list_import_jobs(api, arn),
                |jobs| metas_pending(jobs.iter().map(|j| &j.meta)),
            )
            .await?;
        o.import_jobs.insert(ty, jobs);
        Ok(())
    }

    /// A solution, its versions, the batch jobs of the version in use and its campaigns.
    async fn solution(
        &mut self,
        o: &mut Observation,
        prefix: &str,
        s: &crate::spec::model::Solution,
        list_unmanaged: bool,
    ) -> Result<(), ApiError> {
        let api = self.api;
        let arn = format!("{prefix}solution/{}", s.name);
        let found = self
            .read(
                (Kind::Solution, s.name.clone()),
                |c| cached_with_update(c, c.solutions.get(&s.name), |x| &x.meta.arn),
                || fetch_solution(api, &arn),
                |x| {
                    x.iter()
                        .flat_map(|(s, u)| updating_since(&s.meta, u.as_ref()))
                        .collect()
                },
            )
            .await?;
        let Some((solution, update)) = found else {
            return Ok(());
        };
        if let Some(u) = update {
            o.updates.insert(solution.meta.arn.clone(), u);
        }
        let solution_arn = solution.meta.arn.clone();
        if creating(&solution.meta) {
            o.solutions.insert(s.name.clone(), solution);
            o.versions.insert(s.name.clone(), Vec::new());
            self.known_empty((Kind::SolutionVersion, s.name.clone()));
            for c in &s.campaigns {
                self.known_empty((Kind::Campaign, c.name.clone()));
            }
            return Ok(());
        }
        o.solutions.insert(s.name.clone(), solution);
        let versions = self
            .read(
                (Kind::SolutionVersion, s.name.clone()),
                |c| c.versions.get(&s.name).cloned().unwrap_or_default(),
                || list_versions(api, &solution_arn),
                |vs| metas_pending(vs.iter().map(|v| &v.meta)),
            )
            .await?;
        self.batch_jobs(o, s, &versions).await?;
        o.versions.insert(s.name.clone(), versions);
        if list_unmanaged {
            list_campaigns(api, o, &solution_arn).await?;
        }
        self.campaigns(o, prefix, s).await
    }

    /// The batch jobs under the version campaigns and jobs use: the newest ACTIVE one (only
    /// for the kinds of job the solution declares).
    async fn batch_jobs(
        &mut self,
        o: &mut Observation,
        s: &crate::spec::model::Solution,
        versions: &[VersionObs],
    ) -> Result<(), ApiError> {
        let api = self.api;
        // Batch jobs matter only under the version campaigns and jobs use: the newest ACTIVE one.
        let newest_active = versions
            .iter()
            .filter(|v| v.meta.phase() == Phase::Active)
            .max_by_key(|v| (v.meta.created, v.meta.arn.clone()))
            .map(|v| v.meta.arn.clone());
        if let Some(v) = newest_active {
            for (segment, wanted) in [
                (false, !s.batch_inference_jobs.is_empty()),
                (true, !s.batch_segment_jobs.is_empty()),
            ] {
                if !wanted {
                    continue;
                }
                let kind = if segment {
                    Kind::BatchSegmentJob
                } else {
                    Kind::BatchInferenceJob
                };
                let jobs = self
                    .read(
                        (kind, v.clone()),
                        |c| {
                            let all = if segment {
                                &c.batch_segment_jobs
                            } else {
                                &c.batch_inference_jobs
                            };
                            all.get(&v).cloned().unwrap_or_default()
                        },
                        || list_batch_jobs(api, &v, segment),
                        |jobs| metas_pending(jobs.iter().map(|j| &j.meta)),
                    )
                    .await?;
                if segment {
                    o.batch_segment_jobs.insert(v.clone(), jobs);
                } else {
                    o.batch_inference_jobs.insert(v.clone(), jobs);
                }
            }
        }
        Ok(())
    }

    /// The solution's campaigns, each by its name-derived ARN.
    async fn campaigns(
        &mut self,
        o: &mut Observation,
        prefix: &str,
        s: &crate::spec::model::Solution,
    ) -> Result<(), ApiError> {
        let api = self.api;
        for c in &s.campaigns {
            let arn = format!("{prefix}campaign/{}", c.name);
            let found = self
                .read(
                    (Kind::Campaign, c.name.clone()),
                    |cache| cache.campaigns.get(&c.name).cloned(),
                    || fetch_campaign(api, &arn),
                    |x| {
                        x.iter()
                            .flat_map(|c| {
                                let update = c.latest_update.as_ref().and_then(|u| {
                                    (Phase::of(&u.status) == Phase::Pending)
                                        .then_some(c.meta.updated.or(c.meta.created))
                                });
                                pending_since(&c.meta).into_iter().chain(update)
                            })
                            .collect()
                    },
                )
                .await?;
            if let Some(x) = found {
                o.campaigns.insert(c.name.clone(), x);
            }
        }
        Ok(())
    }
}

async fn fetch_group(api: &Api, arn: &str) -> Result<Option<DatasetGroupObs>, ApiError> {
    let r = found(
        api.call("DescribeDatasetGroup", arn, || {
            api.client.describe_dataset_group().dataset_group_arn(arn).send()
        })
        .await,
    )?;
    Ok(r.and_then(|r| r.dataset_group).map(|g| DatasetGroupObs {
        meta: meta(
            g.dataset_group_arn.as_deref(),
            g.status.as_deref(),
            g.failure_reason.as_deref(),
            g.creation_date_time.as_ref(),
            g.last_updated_date_time.as_ref(),
        ),
        domain: g.domain.as_ref().map(|d| d.as_str().to_string()),
        kms_key_arn: g.kms_key_arn.clone(),
    }))
}

async fn fetch_schema(api: &Api, arn: &str) -> Result<Option<SchemaObs>, ApiError> {
    let r = found(
        api.call("DescribeSchema", arn, || {
            api.client.describe_schema().schema_arn(arn).send()
        })
        .await,
    )?;
    Ok(r.and_then(|r| r.schema).map(|s| SchemaObs {
        document: s
            .schema
            .as_deref()
            .and_then(|t| serde_json::from_str(t).ok())
            .unwrap_or(serde_json::Value::Null),
        arn: s.schema_arn.unwrap_or_else(|| arn.to_string()),
        domain: s.domain.map(|d| d.as_str().to_string()),
    }))
}

async fn fetch_dataset(api: &Api, arn: &str) -> Result<WithUpdate<DatasetObs>, ApiError> {
    let r = found(
        api.call("DescribeDataset", arn, || {
            api.client.describe_dataset().dataset_arn(arn).send()
        })
        .await,
    )?;
    Ok(r.and_then(|r| r.dataset).map(|x| {
        let d = DatasetObs {
            meta: meta(
                x.dataset_arn.as_deref(),
                x.status.as_deref(),
                None,
                x.creation_date_time.as_ref(),
                x.last_updated_date_time.as_ref(),
            ),
            name: x.name.clone().unwrap_or_default(),
            schema_arn: x.schema_arn.clone().unwrap_or_default(),
            group_arn: x.dataset_group_arn.clone().unwrap_or_default(),
        };
        (
            d,
            x.latest_dataset_update.as_ref().map(convert::dataset_update_obs),
        )
    }))
}

async fn list_import_jobs(api: &Api, dataset_arn: &str) -> Result<Vec<ImportJobObs>, ApiError> {
    let mut jobs = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = api
            .call("ListDatasetImportJobs", dataset_arn, || {
                api.client
                    .list_dataset_import_jobs()
                    .dataset_arn(dataset_arn)
                    .set_next_token(token.clone())
                    .max_results(100)
                    .send()
            })
            .await?;
        for j in page.dataset_import_jobs() {
            jobs.push(ImportJobObs {
                meta: meta(
                    j.dataset_import_job_arn.as_deref(),
                    j.status.as_deref(),
                    j.failure_reason.as_deref(),
                    j.creation_date_time.as_ref(),
                    j.last_updated_date_time.as_ref(),
                ),
                job_name: j.job_name.clone().unwrap_or_default(),
            });
        }
        match page.next_token {
            Some(t) if !t.is_empty() => token = Some(t),
            _ => return Ok(jobs),
        }
    }
}

async fn list_trackers(api: &Api, group_arn: &str) -> Result<Vec<EventTrackerObs>, ApiError> {
    let page = api
        .call("ListEventTrackers", group_arn, || {
            api.client
                .list_event_trackers()
                .dataset_group_arn(group_arn)
                .max_results(100)
                .send()
        })
        .await?;
    Ok(page
        .event_trackers()
        .iter()
        .map(|t| EventTrackerObs {
            meta: meta(
                t.event_tracker_arn.as_deref(),
                t.status.as_deref(),
                None,
                t.creation_date_time.as_ref(),
                t.last_updated_date_time.as_ref(),
            ),
            name: t.name.clone().unwrap_or_default(),
        })
        .collect())
}

async fn fetch_filter(api: &Api, arn: &str) -> Result<Option<FilterObs>, ApiError> {
    let r = found(
        api.call("DescribeFilter", arn, || {
            api.client.describe_filter().filter_arn(arn).send()
        })
        .await,
    )?;
    Ok(r.and_then(|r| r.filter).map(|x| FilterObs {
        meta: meta(
            x.filter_arn.as_deref(),
            x.status.as_deref(),
            x.failure_reason.as_deref(),
            x.creation_date_time.as_ref(),
            x.last_updated_date_time.as_ref(),
        ),
        group_arn: x.dataset_group_arn.unwrap_or_default(),
        expression: x.filter_expression.unwrap_or_default(),
    }))
}

async fn fetch_solution(api: &Api, arn: &str) -> Result<WithUpdate<SolutionObs>, ApiError> {
    let r = found(
        api.call("DescribeSolution", arn, || {
            api.client.describe_solution().solution_arn(arn).send()
        })
        .await,
    )?;
    Ok(r.and_then(|r| r.solution).map(|x| {
        let s = SolutionObs {
            meta: meta(
                Some(x.solution_arn.as_deref().unwrap_or(arn)),
                x.status.as_deref(),
                None,
                x.creation_date_time.as_ref(),
                x.last_updated_date_time.as_ref(),
            ),
            group_arn: x.dataset_group_arn.clone().unwrap_or_default(),
            recipe_arn: x.recipe_arn.clone(),
            perform_hpo: x.perform_hpo,
            perform_auto_training: x.perform_auto_training,
            event_type: x.event_type.clone(),
            config: convert::solution_config_json(x.solution_config.as_ref()),
        };
        (
            s,
            x.latest_solution_update
                .as_ref()
                .map(convert::solution_update_obs),
        )
    }))
}

async fn fetch_campaign(api: &Api, arn: &str) -> Result<Option<CampaignObs>, ApiError> {
    let r = found(
        api.call("DescribeCampaign", arn, || {
            api.client.describe_campaign().campaign_arn(arn).send()
        })
        .await,
    )?;
    Ok(r.and_then(|r| r.campaign).map(|x| {
        let latest_update = x.latest_campaign_update.as_ref().map(|u| CampaignUpdateObs {
            status: u.status.clone().unwrap_or_default(),
            failure_reason: u.failure_reason.clone(),
            solution_version_arn: u.solution_version_arn.clone(),
            min_provisioned_tps: u.min_provisioned_tps,
            config: convert::campaign_config_json(u.campaign_config.as_ref()),
        });
        CampaignObs {
            meta: meta(
                x.campaign_arn.as_deref(),
                x.status.as_deref(),
                x.failure_reason.as_deref(),
                x.creation_date_time.as_ref(),
                x.last_updated_date_time.as_ref(),
            ),
            solution_version_arn: x.solution_version_arn.clone().unwrap_or_default(),
            min_provisioned_tps: x.min_provisioned_tps.unwrap_or(1),
            config: convert::campaign_config_json(x.campaign_config.as_ref()),
            latest_update,
        }
    }))
}

async fn fetch_recommender(api: &Api, arn: &str) -> Result<WithUpdate<RecommenderObs>, ApiError> {
    let r = found(
        api.call("DescribeRecommender", arn, || {
            api.client.describe_recommender().recommender_arn(arn).send()
        })
        .await,
    )?;
    Ok(r.and_then(|r| r.recommender).map(|x| {
        let rec = RecommenderObs {
            meta: meta(
                x.recommender_arn.as_deref(),
                x.status.as_deref(),
                x.failure_reason.as_deref(),
                x.creation_date_time.as_ref(),
                x.last_updated_date_time.as_ref(),
            ),
            group_arn: x.dataset_group_arn.clone().unwrap_or_default(),
            recipe_arn: x.recipe_arn.clone().unwrap_or_default(),
            config: convert::recommender_config_json(x.recommender_config.as_ref()),
        };
        (
            rec,
            x.latest_recommender_update
                .as_ref()
                .map(convert::recommender_update_obs),
        )
    }))
}

/// The campaigns of a solution, for the unmanaged report of `plan`.
async fn list_campaigns(api: &Api, o: &mut Observation, solution_arn: &str) -> Result<(), ApiError> {
    let page = api
        .call("ListCampaigns", solution_arn, || {
            api.client
                .list_campaigns()
                .solution_arn(solution_arn)
                .max_results(100)
                .send()
        })
        .await?;
    for c in page.campaigns() {
        o.listed.push(Listed {
            kind: Kind::Campaign,
            name: c.name.clone().unwrap_or_default(),
            arn: c.campaign_arn.clone().unwrap_or_default(),
        });
    }
    Ok(())
}

async fn list_versions(api: &Api, solution_arn: &str) -> Result<Vec<VersionObs>, ApiError> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = api
            .call("ListSolutionVersions", solution_arn, || {
                api.client
                    .list_solution_versions()
                    .solution_arn(solution_arn)
                    .set_next_token(token.clone())
                    .max_results(100)
                    .send()
            })
            .await?;
        for v in page.solution_versions() {
            out.push(VersionObs {
                meta: meta(
                    v.solution_version_arn.as_deref(),
                    v.status.as_deref(),
                    v.failure_reason.as_deref(),
                    v.creation_date_time.as_ref(),
                    v.last_updated_date_time.as_ref(),
                ),
                name: None,
                training_mode: v.training_mode.as_ref().map(|m| m.as_str().to_string()),
            });
        }
        match page.next_token {
            Some(t) if !t.is_empty() => token = Some(t),
            _ => return Ok(out),
        }
    }
}

pub(super) async fn list_batch_jobs(
    api: &Api,
    version_arn: &str,
    segment: bool,
) -> Result<Vec<BatchJobObs>, ApiError> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    // Inference and segment listings differ only in names: one shape, spelt once.
    macro_rules! page {
        ($op:literal, $call:ident, $items:ident, $arn:ident) => {{
            let page = api
                .call($op, version_arn, || {
                    api.client
                        .$call()
                        .solution_version_arn(version_arn)
                        .set_next_token(token.clone())
                        .max_results(100)
                        .send()
                })
                .await?;
            for j in page.$items() {
                out.push(BatchJobObs {
                    meta: meta(
                        j.$arn.as_deref(),
                        j.status.as_deref(),
                        j.failure_reason.as_deref(),
                        j.creation_date_time.as_ref(),
                        j.last_updated_date_time.as_ref(),
                    ),
                    job_name: j.job_name.clone().unwrap_or_default(),
                    solution_version_arn: j.solution_version_arn.clone().unwrap_or_default(),
                });
            }
            page.next_token
        }};
    }
    loop {
        let next = if segment {
            page!(
                "ListBatchSegmentJobs",
                list_batch_segment_jobs,
                batch_segment_jobs,
                batch_segment_job_arn
            )
        } else {
            page!(
                "ListBatchInferenceJobs",
                list_batch_inference_jobs,
                batch_inference_jobs,
                batch_inference_job_arn
            )
        };
        match next {
            Some(t) if !t.is_empty() => token = Some(t),
            _ => return Ok(out),
        }
    }
}

/// Lists what lives under the group, for the unmanaged report of `plan`.
async fn list_group(api: &Api, o: &mut Observation, group_arn: &str) -> Result<(), ApiError> {
    // The four listings differ only in names: one shape, spelt once.
    macro_rules! list {
        ($op:literal, $call:ident, $items:ident, $kind:expr, $arn:ident) => {{
            let page = api
                .call($op, group_arn, || {
                    api.client
                        .$call()
                        .dataset_group_arn(group_arn)
                        .max_results(100)
                        .send()
                })
                .await?;
            for x in page.$items() {
                o.listed.push(Listed {
                    kind: $kind,
                    name: x.name.clone().unwrap_or_default(),
                    arn: x.$arn.clone().unwrap_or_default(),
                });
            }
        }};
    }
    list!(
        "ListDatasets",
        list_datasets,
        datasets,
        Kind::Dataset,
        dataset_arn
    );
    list!("ListFilters", list_filters, filters, Kind::Filter, filter_arn);
    list!(
        "ListSolutions",
        list_solutions,
        solutions,
        Kind::Solution,
        solution_arn
    );
    list!(
        "ListRecommenders",
        list_recommenders,
        recommenders,
        Kind::Recommender,
        recommender_arn
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(secs: i64) -> Option<DateTime<Utc>> {
        Utc.timestamp_opt(1_700_000_000 + secs, 0).single()
    }

    fn version(status: &str, created: i64, updated: i64) -> VersionObs {
        VersionObs {
            meta: Meta {
                arn: format!("arn:v{created}"),
                status: status.into(),
                failure_reason: None,
                created: at(created),
                updated: at(updated),
            },
            name: None,
            training_mode: None,
        }
    }

    #[test]
    fn a_call_of_ours_makes_the_read_that_shows_it_due() {
        let now = Instant::now();
        let later = now + std::time::Duration::from_secs(60);
        let due: HashMap<Unit, Due> = [
            ((Kind::Solution, "a".to_string()), Due::OnChange),
            ((Kind::Solution, "b".to_string()), Due::OnChange),
            ((Kind::SolutionVersion, "a".to_string()), Due::At(later)),
            ((Kind::DatasetImportJob, "users".to_string()), Due::OnChange),
            ((Kind::DatasetImportJob, "items".to_string()), Due::OnChange),
        ]
        .into_iter()
        .collect();
        let mut cache = Cache::new(Observation::default(), due);
        assert_eq!(cache.next_due(), Some(later));
        // A solution is read by its own name: only that read.
        cache.invalidate(&Ref::new(Kind::Solution, "a"));
        assert!(!cache.due.contains_key(&(Kind::Solution, "a".to_string())));
        assert!(cache.due.contains_key(&(Kind::Solution, "b".to_string())));
        // An import job's name does not say its dataset: every import listing.
        cache.invalidate(&Ref::new(Kind::DatasetImportJob, "g-users-20250101"));
        assert!(!cache.due.keys().any(|(k, _)| *k == Kind::DatasetImportJob));
        assert!(cache.due.contains_key(&(Kind::SolutionVersion, "a".to_string())));
        cache.invalidate(&Ref::new(Kind::SolutionVersion, "a"));
        assert_eq!(cache.next_due(), None);
        // Once converged, only what cannot drift by itself stays read.
        cache.due.insert((Kind::Campaign, "c".into()), Due::OnChange);
        cache
            .due
            .insert((Kind::SolutionVersion, "b".into()), Due::OnChange);
        cache.keep_settled();
        let kept: Vec<&Unit> = cache.due.keys().collect();
        assert_eq!(kept, vec![&(Kind::Solution, "b".to_string())]);
    }

    #[test]
    fn durations_come_from_the_newest_finished_resource_of_each_kind() {
        let mut o = Observation::default();
        o.versions.insert(
            "a".into(),
            vec![
                version("ACTIVE", 0, 7200),
                version("ACTIVE", 10_000, 10_000 + 5400),
                // Still training: says nothing about how long training takes.
                version("CREATE IN_PROGRESS", 20_000, 20_100),
            ],
        );
        o.versions
            .insert("b".into(), vec![version("CREATE FAILED", 30_000, 30_010)]);
        let took = durations(&o);
        assert_eq!(
            took.get(&Kind::SolutionVersion),
            Some(&std::time::Duration::from_secs(5400))
        );
        assert_eq!(took.len(), 1);
    }

    #[test]
    fn the_account_prefix_is_everything_before_the_resource() {
        assert_eq!(
            account_prefix("arn:aws:personalize:us-east-1:123456789012:dataset-group/g"),
            Some("arn:aws:personalize:us-east-1:123456789012:")
        );
        assert_eq!(
            account_prefix("arn:aws-cn:personalize:cn-north-1:1:solution/s/abc"),
            Some("arn:aws-cn:personalize:cn-north-1:1:")
        );
        for bad in [
            "",
            "dataset-group/g",
            "arn:aws:s3:::bucket/key",
            "arn:aws:personalize::123:dataset-group/g",
            "arn:aws:personalize:us-east-1",
        ] {
            assert_eq!(account_prefix(bad), None, "{bad}");
        }
    }

    #[test]
    fn only_resources_being_created_have_nothing_under_them() {
        let m = |status: &str| Meta {
            arn: String::new(),
            status: status.into(),
            failure_reason: None,
            created: None,
            updated: None,
        };
        assert!(creating(&m("CREATE PENDING")));
        assert!(creating(&m("CREATE IN_PROGRESS")));
        // An update runs on an existing resource, which may well have children.
        assert!(!creating(&m("UPDATE IN_PROGRESS")));
        assert!(!creating(&m("ACTIVE")));
        assert_eq!(pending_since(&m("ACTIVE")), None);
    }
}
