//! The control plane (awsJson1_1, `X-Amz-Target: AmazonPersonalize.<Op>`): one module per resource.
//!
//! Every operation runs synchronously on the locked, settled [`State`] through a [`Cx`]. Operations
//! that need data work (imports, training, batch jobs) only record it in [`Cx::jobs`]; the server
//! starts the work after the lock is released.

use serde_json::{Value, json};

use super::arn::{Kind, Scope};
use super::clock::Durations;
use super::error::{ApiError, ErrorCode};
use super::faults::FailureRules;
use super::input::{Input, Tag};
use super::job::{Job, JobKind};
use super::lifecycle::{Status, Timeline};
use super::page::paginate;
use super::quotas::Quotas;
use super::state::{Meta, Resource, State, Store};

mod batch;
mod campaigns;
mod dataset_groups;
mod datasets;
mod event_trackers;
mod filters;
mod import_jobs;
mod recipes;
mod recommenders;
mod schemas;
mod solution_versions;
mod solutions;
mod tags;

/// Everything an operation may use: the state at one instant and the emulator's settings.
pub struct Cx<'a> {
    pub state: &'a mut State,
    /// The instant the request is served at (emulator clock).
    pub now: f64,
    /// The region (from the request's credential scope) and account.
    pub scope: Scope,
    pub durations: &'a Durations,
    pub quotas: &'a Quotas,
    pub failures: &'a FailureRules,
    /// Data work to start once the state is unlocked.
    pub jobs: Vec<Job>,
    /// Whether the operation changed the state (and it must be saved).
    pub changed: bool,
}

impl Cx<'_> {
    /// The metadata of a new resource; hands out its sequence number.
    fn meta(&mut self, arn: String, name: &str, timeline: Timeline, tags: Vec<Tag>) -> Meta {
        self.changed = true;
        Meta {
            arn,
            name: name.to_string(),
            region: self.scope.region.clone(),
            seq: self.state.next_seq(),
            created: self.now,
            timeline,
            tags,
        }
    }

    /// The lifecycle of a new resource without data work, failing when a fault rule says so.
    fn plain_timeline(&self, kind: Kind, names: &[&str]) -> Timeline {
        let failure = self.failures.failure_for(kind, names);
        Timeline::created(self.now, self.durations.create(kind), failure)
    }

    /// The lifecycle of a new resource whose terminal status waits for data work. An injected failure
    /// ends it at once, and [`Cx::queue`] then starts nothing.
    fn work_timeline(&self, kind: Kind, names: &[&str]) -> Timeline {
        let mut timeline = Timeline::awaiting(self.now, self.durations.create(kind));
        if let Some(reason) = self.failures.failure_for(kind, names) {
            timeline.finish(self.now, Some(reason));
        }
        timeline
    }

    /// Queues the data work of a new resource, if its timeline still awaits it.
    fn queue(&mut self, kind: JobKind, meta: &Meta) {
        if meta.timeline.is_awaiting_work() {
            self.jobs.push(Job {
                kind,
                arn: meta.arn.clone(),
                seq: meta.seq,
            });
        }
    }
}

/// Starts the deletion of a resource: `DELETE PENDING` (then `DELETE IN_PROGRESS` when
/// `in_progress_phase`), then gone. A resource already being deleted is in use.
fn delete_resource<T: Resource>(cx: &mut Cx, arn: &str, in_progress_phase: bool) -> Result<Value, ApiError>
where
    State: Store<T>,
{
    let (now, phases) = (cx.now, cx.durations.delete());
    let meta = cx.state.find_mut::<T>(arn, now)?.meta_mut();
    let status = meta.status(now);
    if status.is_deleting() {
        return Err(ApiError::in_use(format!(
            "The {} {arn} is already being deleted (status {})",
            T::KIND.label(),
            status.as_str()
        )));
    }
    let second = in_progress_phase.then_some(Status::DeleteInProgress);
    meta.timeline
        .transition(now, Status::DeletePending, second, Status::Gone, phases);
    cx.changed = true;
    Ok(json!({}))
}

/// Finds a resource that must be ACTIVE to be used as a parent: NF when missing, IU otherwise.
fn active<'s, T: Resource>(state: &'s State, arn: &str, now: f64) -> Result<&'s T, ApiError>
where
    State: Store<T>,
{
    let r = state.find::<T>(arn, now)?;
    let status = r.meta().status(now);
    if status != Status::Active {
        return Err(ApiError::in_use(format!(
            "The {} {arn} is not ACTIVE (status {})",
            T::KIND.label(),
            status.as_str()
        )));
    }
    Ok(r)
}

/// Fails with AE when the ARN is taken (including by a resource still being deleted).
fn ensure_new<T: Resource>(state: &State, arn: &str, now: f64) -> Result<(), ApiError>
where
    State: Store<T>,
{
    if state.exists::<T>(arn, now) {
        return Err(ApiError::already_exists(T::KIND.label(), arn));
    }
    Ok(())
}

/// LimitExceeded when `count` already reached `max`, with Personalize's wording.
fn quota(count: usize, max: usize, what: &str) -> Result<(), ApiError> {
    if count >= max {
        return Err(ApiError::limit(format!("More than {max} resources {what}.")));
    }
    Ok(())
}

/// The timestamps every Describe and summary carries.
fn times(meta: &Meta, now: f64) -> (Value, Value) {
    (json!(meta.created), json!(meta.last_updated(now)))
}

/// Drops `null` members recursively: absent optional members are omitted, never sent as null.
pub fn compact(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, compact(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(compact).collect()),
        other => other,
    }
}

/// One page of a List call as `{resultKey: [...], nextToken}`.
fn list_page<T>(
    input: &Input,
    op: &str,
    query: &str,
    result_key: &str,
    items: Vec<(u64, T)>,
    render: impl Fn(T) -> Value,
) -> Result<Value, ApiError> {
    let page = paginate(input, op, query, items)?;
    let rendered: Vec<Value> = page.items.into_iter().map(render).collect();
    let mut out = serde_json::Map::new();
    out.insert(result_key.to_string(), Value::Array(rendered));
    if let Some(token) = page.next_token {
        out.insert("nextToken".into(), Value::String(token));
    }
    Ok(Value::Object(out))
}

/// The control-plane operations, by name.
pub const OPERATIONS: &[&str] = &[
    "CreateDatasetGroup",
    "DescribeDatasetGroup",
    "ListDatasetGroups",
    "DeleteDatasetGroup",
    "CreateSchema",
    "DescribeSchema",
    "ListSchemas",
    "DeleteSchema",
    "CreateDataset",
    "DescribeDataset",
    "ListDatasets",
    "UpdateDataset",
    "DeleteDataset",
    "CreateDatasetImportJob",
    "DescribeDatasetImportJob",
    "ListDatasetImportJobs",
    "CreateEventTracker",
    "DescribeEventTracker",
    "ListEventTrackers",
    "DeleteEventTracker",
    "CreateFilter",
    "DescribeFilter",
    "ListFilters",
    "DeleteFilter",
    "CreateSolution",
    "DescribeSolution",
    "ListSolutions",
    "UpdateSolution",
    "DeleteSolution",
    "CreateSolutionVersion",
    "DescribeSolutionVersion",
    "ListSolutionVersions",
    "StopSolutionVersionCreation",
    "GetSolutionMetrics",
    "CreateCampaign",
    "DescribeCampaign",
    "ListCampaigns",
    "UpdateCampaign",
    "DeleteCampaign",
    "CreateRecommender",
    "DescribeRecommender",
    "ListRecommenders",
    "UpdateRecommender",
    "StartRecommender",
    "StopRecommender",
    "DeleteRecommender",
    "CreateBatchInferenceJob",
    "DescribeBatchInferenceJob",
    "ListBatchInferenceJobs",
    "CreateBatchSegmentJob",
    "DescribeBatchSegmentJob",
    "ListBatchSegmentJobs",
    "ListRecipes",
    "DescribeRecipe",
    "TagResource",
    "UntagResource",
    "ListTagsForResource",
];

/// Runs one control-plane operation.
pub fn call(cx: &mut Cx, op: &str, input: &Input) -> Result<Value, ApiError> {
    match op {
        "CreateDatasetGroup" => dataset_groups::create(cx, input),
        "DescribeDatasetGroup" => dataset_groups::describe(cx, input),
        "ListDatasetGroups" => dataset_groups::list(cx, input),
        "DeleteDatasetGroup" => dataset_groups::delete(cx, input),
        "CreateSchema" => schemas::create(cx, input),
        "DescribeSchema" => schemas::describe(cx, input),
        "ListSchemas" => schemas::list(cx, input),
        "DeleteSchema" => schemas::delete(cx, input),
        "CreateDataset" => datasets::create(cx, input),
        "DescribeDataset" => datasets::describe(cx, input),
        "ListDatasets" => datasets::list(cx, input),
        "UpdateDataset" => datasets::update(cx, input),
        "DeleteDataset" => datasets::delete(cx, input),
        "CreateDatasetImportJob" => import_jobs::create(cx, input),
        "DescribeDatasetImportJob" => import_jobs::describe(cx, input),
        "ListDatasetImportJobs" => import_jobs::list(cx, input),
        "CreateEventTracker" => event_trackers::create(cx, input),
        "DescribeEventTracker" => event_trackers::describe(cx, input),
        "ListEventTrackers" => event_trackers::list(cx, input),
        "DeleteEventTracker" => event_trackers::delete(cx, input),
        "CreateFilter" => filters::create(cx, input),
        "DescribeFilter" => filters::describe(cx, input),
        "ListFilters" => filters::list(cx, input),
        "DeleteFilter" => filters::delete(cx, input),
        "CreateSolution" => solutions::create(cx, input),
        "DescribeSolution" => solutions::describe(cx, input),
        "ListSolutions" => solutions::list(cx, input),
        "UpdateSolution" => solutions::update(cx, input),
        "DeleteSolution" => solutions::delete(cx, input),
        "CreateSolutionVersion" => solution_versions::create(cx, input),
        "DescribeSolutionVersion" => solution_versions::describe(cx, input),
        "ListSolutionVersions" => solution_versions::list(cx, input),
        "StopSolutionVersionCreation" => solution_versions::stop(cx, input),
        "GetSolutionMetrics" => solution_versions::metrics(cx, input),
        "CreateCampaign" => campaigns::create(cx, input),
        "DescribeCampaign" => campaigns::describe(cx, input),
        "ListCampaigns" => campaigns::list(cx, input),
        "UpdateCampaign" => campaigns::update(cx, input),
        "DeleteCampaign" => campaigns::delete(cx, input),
        "CreateRecommender" => recommenders::create(cx, input),
        "DescribeRecommender" => recommenders::describe(cx, input),
        "ListRecommenders" => recommenders::list(cx, input),
        "UpdateRecommender" => recommenders::update(cx, input),
        "StartRecommender" => recommenders::start(cx, input),
        "StopRecommender" => recommenders::stop(cx, input),
        "DeleteRecommender" => recommenders::delete(cx, input),
        "CreateBatchInferenceJob" => batch::create_inference(cx, input),
        "DescribeBatchInferenceJob" => batch::describe_inference(cx, input),
        "ListBatchInferenceJobs" => batch::list_inference(cx, input),
        "CreateBatchSegmentJob" => batch::create_segment(cx, input),
        "DescribeBatchSegmentJob" => batch::describe_segment(cx, input),
        "ListBatchSegmentJobs" => batch::list_segment(cx, input),
        "ListRecipes" => recipes::list(cx, input),
        "DescribeRecipe" => recipes::describe(cx, input),
        "TagResource" => tags::tag(cx, input),
        "UntagResource" => tags::untag(cx, input),
        "ListTagsForResource" => tags::list(cx, input),
        other => Err(ApiError::new(
            ErrorCode::UnknownOperation,
            format!("Operation {other} is not supported by the built-in Personalize"),
        )),
    }
}
