//! Tearing a dataset group down in Personalize: list everything under it, delete what is ready, wait.
//!
//! Like the reconciler's passes, a teardown pass is cheap and idempotent: it finds everything again
//! from Personalize, asks the pure [`crate::plan::teardown::teardown`] what is ready, makes those calls
//! and says when to come back. A teardown killed at any point is finished by running it again; a
//! resource already gone is not an error (`ResourceNotFoundException` on a delete means done).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use serde::Serialize;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::api::{ApiError, ErrorClass};
use super::{EventSink, Failure, ReconcileError, Reconciler, kind_key};
use crate::plan::teardown::{Found, TeardownAction, TeardownStep, is_finished, teardown};
use crate::plan::{Kind, Ref};

/// Where a teardown stands after a pass.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase", tag = "outcome")]
#[must_use]
pub enum TeardownOutcome {
    /// Everything is gone but what is kept on purpose (schemas another group uses).
    Finished { kept: Vec<TeardownStep> },
    /// Deletions are under way; call again after `next_poll_after`.
    Pending {
        #[serde(with = "super::secs")]
        next_poll_after: Duration,
        remaining: Vec<TeardownStep>,
        failures: Vec<Failure>,
    },
    /// Personalize refused a deletion (or one never finished), so the group cannot be removed whole.
    Failed {
        failures: Vec<Failure>,
        remaining: Vec<TeardownStep>,
    },
}

/// What one call did.
enum Called {
    Started,
    Gone,
    Later(String),
    Rejected(String),
}

fn called(result: Result<(), ApiError>) -> Called {
    match result {
        Ok(()) => Called::Started,
        Err(e) if e.class == ErrorClass::NotFound => Called::Gone,
        Err(e)
            if matches!(
                e.class,
                ErrorClass::InUse | ErrorClass::Limit | ErrorClass::Transient
            ) =>
        {
            Called::Later(format!("{}: {}", e.code, e.message))
        }
        Err(e) => Called::Rejected(format!("{}: {}", e.code, e.message)),
    }
}

/// Pages through a listing: `$call` builds the request (given the token), `$items` names the page's
/// list, and `$each` is run on every item.
macro_rules! every_page {
    ($api:expr, $op:literal, $target:expr, |$token:ident| $call:expr, $items:ident, |$item:ident| $each:block) => {{
        let mut $token: Option<String> = None;
        loop {
            let page = $api.call($op, $target, || $call).await?;
            for $item in page.$items() $each
            match page.next_token {
                Some(t) if !t.is_empty() => $token = Some(t),
                _ => break,
            }
        }
    }};
}

fn text(s: Option<&str>) -> String {
    s.unwrap_or_default().to_string()
}

/// The last part of an ARN (`…/solution/sol/abc` → `abc`).
fn arn_tail(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

/// Whether something of the teardown moves without a call: a deletion under way, a version
/// stopping, an import a dataset waits for.
fn moves_by_itself(steps: &[TeardownStep]) -> bool {
    steps.iter().any(|s| match (&s.action, s.target.kind) {
        (TeardownAction::Deleting { .. }, _) => true,
        (TeardownAction::Wait { .. }, Kind::SolutionVersion) => true,
        (TeardownAction::Wait { on }, Kind::Dataset) => {
            on.iter().any(|o| o.starts_with(Kind::DatasetImportJob.as_str()))
        }
        _ => false,
    })
}

impl Reconciler {
    fn teardown_error(group: &str) -> impl FnOnce(ApiError) -> ReconcileError + '_ {
        move |source| ReconcileError::Personalize {
            group: group.to_string(),
            source,
        }
    }

    /// Everything under dataset group `group`, and the schemas its datasets use or that are named in
    /// `schema_names` (the parameter file's, so that a teardown stopped after the datasets went still
    /// finds them), each schema marked when another group's dataset uses it.
    pub async fn inventory(
        &self,
        group: &str,
        schema_names: &[String],
    ) -> Result<Vec<Found>, ReconcileError> {
        self.inventory_inner(group, schema_names)
            .await
            .map_err(Self::teardown_error(group))
    }

    async fn inventory_inner(&self, group: &str, schema_names: &[String]) -> Result<Vec<Found>, ApiError> {
        let api = &self.api;
        let mut out: Vec<Found> = Vec::new();
        let mut group_arn: Option<String> = None;
        let mut other_groups: Vec<String> = Vec::new();
        every_page!(
            api,
            "ListDatasetGroups",
            group,
            |token| api
                .client
                .list_dataset_groups()
                .set_next_token(token.clone())
                .max_results(100)
                .send(),
            dataset_groups,
            |g| {
                let arn = text(g.dataset_group_arn.as_deref());
                if g.name.as_deref() == Some(group) {
                    out.push(Found::new(
                        Kind::DatasetGroup,
                        group,
                        arn.clone(),
                        text(g.status.as_deref()),
                    ));
                    group_arn = Some(arn);
                } else {
                    other_groups.push(arn);
                }
            }
        );
        let mut schemas_in_use: BTreeSet<String> = BTreeSet::new();
        if let Some(g) = group_arn.as_deref() {
            self.list_serving(g, &mut out).await?;
            self.list_solutions(g, &mut out).await?;
            self.list_group_members(g, &mut out).await?;
            for (arn, _) in self.list_datasets(g, Some(&mut out)).await? {
                schemas_in_use.insert(arn);
            }
        }
        // Schemas: those the datasets use, and those the file names (found by listing: their ARNs are
        // name-derived, but the account prefix is unknown once the group is gone).
        let mut schemas: Vec<Found> = Vec::new();
        if !schemas_in_use.is_empty() || !schema_names.is_empty() {
            every_page!(
                api,
                "ListSchemas",
                group,
                |token| api
                    .client
                    .list_schemas()
                    .set_next_token(token.clone())
                    .max_results(100)
                    .send(),
                schemas,
                |s| {
                    let arn = text(s.schema_arn.as_deref());
                    let name = text(s.name.as_deref());
                    if schemas_in_use.contains(&arn) || schema_names.contains(&name) {
                        schemas.push(Found::new(Kind::Schema, name, arn, ""));
                    }
                }
            );
        }
        if !schemas.is_empty() {
            for other in &other_groups {
                for (schema_arn, dataset_arn) in self.list_datasets(other, None).await? {
                    for s in schemas.iter_mut().filter(|s| s.arn == schema_arn) {
                        s.used_elsewhere.get_or_insert_with(|| dataset_arn.clone());
                    }
                }
            }
        }
        out.extend(schemas);
        Ok(out)
    }

    /// Campaigns (under the group's solutions) and recommenders.
    async fn list_serving(&self, group_arn: &str, out: &mut Vec<Found>) -> Result<(), ApiError> {
        let api = &self.api;
        every_page!(
            api,
            "ListRecommenders",
            group_arn,
            |token| api
                .client
                .list_recommenders()
                .dataset_group_arn(group_arn)
                .set_next_token(token.clone())
                .max_results(100)
                .send(),
            recommenders,
            |r| {
                out.push(Found::new(
                    Kind::Recommender,
                    text(r.name.as_deref()),
                    text(r.recommender_arn.as_deref()),
                    text(r.status.as_deref()),
                ));
            }
        );
        Ok(())
    }

    /// Solutions with their campaigns, versions and the versions' batch jobs.
    async fn list_solutions(&self, group_arn: &str, out: &mut Vec<Found>) -> Result<(), ApiError> {
        let api = &self.api;
        let mut solutions: Vec<Found> = Vec::new();
        every_page!(
            api,
            "ListSolutions",
            group_arn,
            |token| api
                .client
                .list_solutions()
                .dataset_group_arn(group_arn)
                .set_next_token(token.clone())
                .max_results(100)
                .send(),
            solutions,
            |s| {
                solutions.push(Found::new(
                    Kind::Solution,
                    text(s.name.as_deref()),
                    text(s.solution_arn.as_deref()),
                    text(s.status.as_deref()),
                ));
            }
        );
        for s in &solutions {
            self.list_campaigns(&s.arn, out).await?;
            // A solution deleted since it was listed has no versions to list.
            let versions = match self.list_versions(s).await {
                Err(e) if e.class == ErrorClass::NotFound => continue,
                other => other?,
            };
            for v in &versions {
                self.list_batch_jobs(v, out).await?;
            }
            out.extend(versions);
        }
        out.extend(solutions);
        Ok(())
    }

    async fn list_campaigns(&self, solution_arn: &str, out: &mut Vec<Found>) -> Result<(), ApiError> {
        let api = &self.api;
        every_page!(
            api,
            "ListCampaigns",
            solution_arn,
            |token| api
                .client
                .list_campaigns()
                .solution_arn(solution_arn)
                .set_next_token(token.clone())
                .max_results(100)
                .send(),
            campaigns,
            |c| {
                let mut f = Found::new(
                    Kind::Campaign,
                    text(c.name.as_deref()),
                    text(c.campaign_arn.as_deref()),
                    text(c.status.as_deref()),
                );
                f.uses = Some(solution_arn.to_string());
                out.push(f);
            }
        );
        Ok(())
    }

    /// The versions of `solution`, each named `solution/<ARN tail>`.
    async fn list_versions(&self, solution: &Found) -> Result<Vec<Found>, ApiError> {
        let api = &self.api;
        let solution_arn = solution.arn.as_str();
        let mut versions: Vec<Found> = Vec::new();
        every_page!(
            api,
            "ListSolutionVersions",
            solution_arn,
            |token| api
                .client
                .list_solution_versions()
                .solution_arn(solution_arn)
                .set_next_token(token.clone())
                .max_results(100)
                .send(),
            solution_versions,
            |v| {
                let arn = text(v.solution_version_arn.as_deref());
                let mut f = Found::new(
                    Kind::SolutionVersion,
                    format!("{}/{}", solution.name, arn_tail(&arn)),
                    arn,
                    text(v.status.as_deref()),
                );
                f.parent = Some(solution_arn.to_string());
                versions.push(f);
            }
        );
        Ok(versions)
    }

    async fn list_batch_jobs(&self, version: &Found, out: &mut Vec<Found>) -> Result<(), ApiError> {
        let api = &self.api;
        let version_arn = version.arn.as_str();
        let job = |kind: Kind, name: Option<&str>, arn: Option<&str>, status: Option<&str>| {
            let mut f = Found::new(kind, text(name), text(arn), text(status));
            f.parent = Some(version_arn.to_string());
            f
        };
        every_page!(
            api,
            "ListBatchInferenceJobs",
            version_arn,
            |token| api
                .client
                .list_batch_inference_jobs()
                .solution_version_arn(version_arn)
                .set_next_token(token.clone())
                .max_results(100)
                .send(),
            batch_inference_jobs,
            |j| {
                out.push(job(
                    Kind::BatchInferenceJob,
                    j.job_name.as_deref(),
                    j.batch_inference_job_arn.as_deref(),
                    j.status.as_deref(),
                ));
            }
        );
        every_page!(
            api,
            "ListBatchSegmentJobs",
            version_arn,
            |token| api
                .client
                .list_batch_segment_jobs()
                .solution_version_arn(version_arn)
                .set_next_token(token.clone())
                .max_results(100)
                .send(),
            batch_segment_jobs,
            |j| {
                out.push(job(
                    Kind::BatchSegmentJob,
                    j.job_name.as_deref(),
                    j.batch_segment_job_arn.as_deref(),
                    j.status.as_deref(),
                ));
            }
        );
        Ok(())
    }

    /// Filters and event trackers.
    async fn list_group_members(&self, group_arn: &str, out: &mut Vec<Found>) -> Result<(), ApiError> {
        let api = &self.api;
        every_page!(
            api,
            "ListFilters",
            group_arn,
            |token| api
                .client
                .list_filters()
                .dataset_group_arn(group_arn)
                .set_next_token(token.clone())
                .max_results(100)
                .send(),
            filters,
            |f| {
                out.push(Found::new(
                    Kind::Filter,
                    text(f.name.as_deref()),
                    text(f.filter_arn.as_deref()),
                    text(f.status.as_deref()),
                ));
            }
        );
        every_page!(
            api,
            "ListEventTrackers",
            group_arn,
            |token| api
                .client
                .list_event_trackers()
                .dataset_group_arn(group_arn)
                .set_next_token(token.clone())
                .max_results(100)
                .send(),
            event_trackers,
            |t| {
                out.push(Found::new(
                    Kind::EventTracker,
                    text(t.name.as_deref()),
                    text(t.event_tracker_arn.as_deref()),
                    text(t.status.as_deref()),
                ));
            }
        );
        Ok(())
    }

    /// The datasets of a group as (schema ARN, dataset ARN); with `out`, the datasets and their import
    /// jobs are added to it.
    async fn list_datasets(
        &self,
        group_arn: &str,
        out: Option<&mut Vec<Found>>,
    ) -> Result<Vec<(String, String)>, ApiError> {
        let api = &self.api;
        let mut datasets: Vec<Found> = Vec::new();
        every_page!(
            api,
            "ListDatasets",
            group_arn,
            |token| api
                .client
                .list_datasets()
                .dataset_group_arn(group_arn)
                .set_next_token(token.clone())
                .max_results(100)
                .send(),
            datasets,
            |d| {
                datasets.push(Found::new(
                    Kind::Dataset,
                    text(d.name.as_deref()),
                    text(d.dataset_arn.as_deref()),
                    text(d.status.as_deref()),
                ));
            }
        );
        let mut uses = Vec::new();
        for d in &mut datasets {
            let arn = d.arn.clone();
            let described = api
                .call("DescribeDataset", &arn, || {
                    api.client.describe_dataset().dataset_arn(&arn).send()
                })
                .await;
            let schema = match described {
                Ok(r) => r.dataset.and_then(|x| x.schema_arn),
                // Deleted since it was listed.
                Err(e) if e.class == ErrorClass::NotFound => None,
                Err(e) => return Err(e),
            };
            if let Some(schema) = schema {
                uses.push((schema.clone(), arn.clone()));
                d.uses = Some(schema);
            }
        }
        if let Some(out) = out {
            for d in &datasets {
                let dataset_arn = d.arn.as_str();
                every_page!(
                    api,
                    "ListDatasetImportJobs",
                    dataset_arn,
                    |token| api
                        .client
                        .list_dataset_import_jobs()
                        .dataset_arn(dataset_arn)
                        .set_next_token(token.clone())
                        .max_results(100)
                        .send(),
                    dataset_import_jobs,
                    |j| {
                        let mut f = Found::new(
                            Kind::DatasetImportJob,
                            text(j.job_name.as_deref()),
                            text(j.dataset_import_job_arn.as_deref()),
                            text(j.status.as_deref()),
                        );
                        f.parent = Some(dataset_arn.to_string());
                        out.push(f);
                    }
                );
            }
            out.extend(datasets);
        }
        Ok(uses)
    }

    /// What a teardown of `group` would do now, changing nothing.
    pub async fn teardown_plan(
        &self,
        group: &str,
        schema_names: &[String],
    ) -> Result<Vec<TeardownStep>, ReconcileError> {
        Ok(teardown(&self.inventory(group, schema_names).await?))
    }

    async fn delete_one(&self, api: &super::Api, step: &TeardownStep) -> Called {
        let arn = step.arn.as_str();
        // Every delete is one call naming the resource's ARN: spelt once.
        macro_rules! call {
            ($op:literal, $call:ident, $member:ident) => {
                api.call($op, arn, || api.client.$call().$member(arn).send())
                    .await
                    .map(drop)
            };
        }
        let result: Result<(), ApiError> = match (step.target.kind, &step.action) {
            (Kind::SolutionVersion, TeardownAction::Stop) => call!(
                "StopSolutionVersionCreation",
                stop_solution_version_creation,
                solution_version_arn
            ),
            (Kind::Campaign, _) => call!("DeleteCampaign", delete_campaign, campaign_arn),
            (Kind::Recommender, _) => call!("DeleteRecommender", delete_recommender, recommender_arn),
            (Kind::Filter, _) => call!("DeleteFilter", delete_filter, filter_arn),
            (Kind::EventTracker, _) => call!("DeleteEventTracker", delete_event_tracker, event_tracker_arn),
            (Kind::Solution, _) => call!("DeleteSolution", delete_solution, solution_arn),
            (Kind::Dataset, _) => call!("DeleteDataset", delete_dataset, dataset_arn),
            (Kind::DatasetGroup, _) => call!("DeleteDatasetGroup", delete_dataset_group, dataset_group_arn),
            (Kind::Schema, _) => call!("DeleteSchema", delete_schema, schema_arn),
            // Jobs and versions have no delete call; the planner never asks for one.
            (kind, _) => {
                return Called::Rejected(format!("a {kind} cannot be deleted on its own"));
            }
        };
        called(result)
    }

    /// One teardown pass over `group`: list, make the deletions that are ready, report. Cheap and
    /// idempotent; `sink` gets one event per change (`DELETE REQUESTED`, `STOP REQUESTED`, a status
    /// Personalize reports, `DELETED` once a resource is gone, `KEPT`, `FAILED`). `lease` is checked
    /// before every deletion; once it fails the pass stops with [`ReconcileError::LeaseLost`].
    pub async fn teardown_pass(
        &self,
        group: &str,
        schema_names: &[String],
        lease: &Arc<dyn super::LeaseGuard>,
        sink: &mut dyn EventSink,
    ) -> Result<TeardownOutcome, ReconcileError> {
        let steps = self.teardown_plan(group, schema_names).await?;
        let now = Instant::now();
        self.report_vanished(group, &steps, now, sink);
        self.report_statuses(group, &steps, now, sink);
        if is_finished(&steps) {
            self.remember(group, |m| m.teardown.clear());
            return Ok(TeardownOutcome::Finished { kept: steps });
        }
        let ready: Vec<&TeardownStep> = steps
            .iter()
            .filter(|s| matches!(s.action, TeardownAction::Delete | TeardownAction::Stop))
            .collect();
        let api = self.api.guarded(Arc::clone(lease));
        let results = join_all(ready.iter().map(|s| self.delete_one(&api, s))).await;
        if let Err(source) = lease.check() {
            return Err(ReconcileError::LeaseLost {
                group: group.to_string(),
                source,
            });
        }
        let (failures, called_moved) = self.report_calls(group, &ready, results, now, sink);
        let moving = called_moved || moves_by_itself(&steps);
        if !failures.is_empty() && !moving {
            return Ok(TeardownOutcome::Failed {
                failures,
                remaining: steps,
            });
        }
        let next_poll_after = self.teardown_poll(&steps);
        Ok(TeardownOutcome::Pending {
            next_poll_after,
            remaining: steps,
            failures,
        })
    }

    /// What an earlier pass reported and is no longer found is gone: `DELETED`.
    fn report_vanished(&self, group: &str, steps: &[TeardownStep], now: Instant, sink: &mut dyn EventSink) {
        let present: BTreeSet<&Ref> = steps.iter().map(|s| &s.target).collect();
        let vanished: Vec<(Ref, String)> = self.remember(group, |m| {
            let gone: Vec<(Ref, String)> = m
                .teardown
                .iter()
                .filter(|(r, _)| !present.contains(r))
                .map(|(r, arn)| (r.clone(), arn.clone()))
                .collect();
            for (r, _) in &gone {
                m.teardown.remove(r);
            }
            gone
        });
        for (r, arn) in vanished {
            self.emit(group, &r, Some(arn), "DELETED".into(), None, now, None, sink);
        }
    }

    /// The status of each resource on its way out, waiting or kept, when it changed since the last
    /// pass.
    fn report_statuses(&self, group: &str, steps: &[TeardownStep], now: Instant, sink: &mut dyn EventSink) {
        for s in steps {
            let (status, reason) = match &s.action {
                TeardownAction::Deleting { status } => (status.clone(), None),
                TeardownAction::Wait { on } => (
                    "WAITING".to_string(),
                    Some(format!("waits for {}", on.join(", "))),
                ),
                TeardownAction::Keep { reason } => ("KEPT".to_string(), Some(reason.clone())),
                // Reported when requested, or not at all (they go with their parent).
                TeardownAction::Delete | TeardownAction::Stop | TeardownAction::GoesWith { .. } => continue,
            };
            let changed = self.remember(group, |m| {
                m.teardown.insert(s.target.clone(), s.arn.clone());
                m.last_status.get(&s.target) != Some(&status)
            });
            if changed {
                self.emit(
                    group,
                    &s.target,
                    Some(s.arn.clone()),
                    status,
                    reason,
                    now,
                    None,
                    sink,
                );
            }
        }
    }

    /// Reports what each call of this pass did; the refused ones, and whether any call moved
    /// something (a deletion started, found done, or to be retried).
    fn report_calls(
        &self,
        group: &str,
        ready: &[&TeardownStep],
        results: Vec<Called>,
        now: Instant,
        sink: &mut dyn EventSink,
    ) -> (Vec<Failure>, bool) {
        let mut failures = Vec::new();
        let mut moving = false;
        for (step, result) in ready.iter().zip(results) {
            moving |= !matches!(result, Called::Rejected(_));
            let word = if step.action == TeardownAction::Stop {
                "STOP REQUESTED"
            } else {
                "DELETE REQUESTED"
            };
            let (status, reason) = match result {
                Called::Started => (word.to_string(), None),
                Called::Gone => ("DELETED".to_string(), None),
                Called::Later(why) => ("RETRY LATER".to_string(), Some(why)),
                Called::Rejected(why) => {
                    failures.push(Failure {
                        target: step.target.clone(),
                        arn: Some(step.arn.clone()),
                        reason: why.clone(),
                    });
                    ("FAILED".to_string(), Some(why))
                }
            };
            self.remember(group, |m| {
                m.teardown.insert(step.target.clone(), step.arn.clone())
            });
            self.emit(
                group,
                &step.target,
                Some(step.arn.clone()),
                status,
                reason,
                now,
                None,
                sink,
            );
        }
        (failures, moving)
    }

    /// The first poll of the soonest kind still on its way out.
    fn teardown_poll(&self, steps: &[TeardownStep]) -> Duration {
        steps
            .iter()
            .filter(|s| {
                !matches!(
                    s.action,
                    TeardownAction::Keep { .. } | TeardownAction::GoesWith { .. }
                )
            })
            .map(|s| self.settings.kind(&kind_key(s.target.kind)).poll_min())
            .min()
            .unwrap_or(Duration::from_secs(1))
    }

    /// Teardown passes until everything is gone or a deletion failed, sleeping as each pass asks
    /// (doubling, up to the kind's `poll_max_secs`, while nothing changes). Transient errors are
    /// waited out; a resource still on its way out after its kind's `timeout_secs` fails.
    pub async fn destroy(
        &self,
        group: &str,
        schema_names: &[String],
        sink: &mut dyn EventSink,
        cancel: &CancellationToken,
    ) -> Result<TeardownOutcome, ReconcileError> {
        let cancelled = || ReconcileError::Cancelled {
            group: group.to_string(),
        };
        // The operator's command: it holds the group's lease in the store, but renews it apart.
        let unguarded: Arc<dyn super::LeaseGuard> = Arc::new(super::Unguarded);
        let mut error_backoff = Duration::from_millis(self.settings.throttle_backoff_min_ms);
        let mut first_seen: HashMap<String, Instant> = HashMap::new();
        let mut idle: u32 = 0;
        let mut last: Option<Vec<TeardownStep>> = None;
        loop {
            let pass = tokio::select! {
                r = self.teardown_pass(group, schema_names, &unguarded, sink) => r,
                () = cancel.cancelled() => return Err(cancelled()),
            };
            let wait = match pass {
                Ok(TeardownOutcome::Pending {
                    next_poll_after,
                    remaining,
                    failures,
                }) => {
                    error_backoff = Duration::from_millis(self.settings.throttle_backoff_min_ms);
                    let mut late = self.late(&remaining, &mut first_seen, Instant::now());
                    if !late.is_empty() {
                        late.extend(failures);
                        return Ok(TeardownOutcome::Failed {
                            failures: late,
                            remaining,
                        });
                    }
                    idle = if last.as_ref() == Some(&remaining) {
                        idle + 1
                    } else {
                        0
                    };
                    let wait = self.idle_wait(&remaining, next_poll_after, idle);
                    last = Some(remaining);
                    wait
                }
                Ok(done) => return Ok(done),
                Err(e) if e.is_transient() => self.wait_after_error(&e, &mut error_backoff),
                Err(e) => return Err(e),
            };
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = cancel.cancelled() => return Err(cancelled()),
            }
        }
    }

    /// The resources still on their way out after their kind's `timeout_secs`, counted from the
    /// pass that first saw them (`first_seen`, by ARN).
    fn late(
        &self,
        remaining: &[TeardownStep],
        first_seen: &mut HashMap<String, Instant>,
        now: Instant,
    ) -> Vec<Failure> {
        let mut late = Vec::new();
        for s in remaining {
            if matches!(
                s.action,
                TeardownAction::Keep { .. } | TeardownAction::GoesWith { .. }
            ) {
                continue;
            }
            let since = *first_seen.entry(s.arn.clone()).or_insert(now);
            let kind = self.settings.kind(&kind_key(s.target.kind));
            if now.duration_since(since) > kind.timeout() {
                late.push(Failure {
                    target: s.target.clone(),
                    arn: Some(s.arn.clone()),
                    reason: format!(
                        "still {} after {} s (setting reconcile.kinds.{}.timeout_secs)",
                        if s.status.is_empty() { "present" } else { &s.status },
                        now.duration_since(since).as_secs(),
                        kind_key(s.target.kind)
                    ),
                });
            }
        }
        late
    }

    /// The pass's poll, doubled for each of `idle` passes that changed nothing, up to the smallest
    /// `poll_max_secs` of the kinds remaining.
    fn idle_wait(&self, remaining: &[TeardownStep], next_poll_after: Duration, idle: u32) -> Duration {
        let cap = remaining
            .iter()
            .map(|s| self.settings.kind(&kind_key(s.target.kind)).poll_max())
            .min()
            .unwrap_or(next_poll_after);
        (next_poll_after * 2u32.saturating_pow(idle.min(16))).min(cap.max(next_poll_after))
    }
}
