//! CreateRecommender, DescribeRecommender, ListRecommenders, UpdateRecommender, StartRecommender,
//! StopRecommender, DeleteRecommender.

use serde_json::{Map, Value, json};

use super::{Cx, active, compact, delete_resource, ensure_new, list_page, quota, times};
use crate::emulator::arn::Kind;
use crate::emulator::error::ApiError;
use crate::emulator::input::{Input, check_arn};
use crate::emulator::job::{Job, JobKind};
use crate::emulator::lifecycle::{Status, Timeline};
use crate::emulator::recipes;
use crate::emulator::state::{DatasetGroup, PendingUpdate, Recommender};

/// Checks `recommenderConfig` and fills the default `minRecommendationRequestsPerSecond` of 1.
fn recommender_config(input: &Input) -> Result<Value, ApiError> {
    let config = input.opt_object("recommenderConfig")?.unwrap_or_default();
    if let Some(exploration) = config.opt_object("itemExplorationConfig")?
        && let Some(Value::Object(entries)) = config.opt_value("itemExplorationConfig")
    {
        for key in entries.keys() {
            exploration.text(key, 0, 1000)?;
        }
    }
    let min_rps = config
        .opt_int("minRecommendationRequestsPerSecond", 1, i64::from(i32::MAX))?
        .unwrap_or(1);
    config.opt_object("trainingDataConfig")?;
    config.opt_bool("enableMetadataWithRecommendations")?;
    let mut out = match input.opt_value("recommenderConfig") {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    };
    out.insert("minRecommendationRequestsPerSecond".into(), json!(min_rps));
    Ok(Value::Object(out))
}

pub fn create(cx: &mut Cx, input: &Input) -> Result<Value, ApiError> {
    let name = input.name("name")?;
    let group_arn = input.arn("datasetGroupArn")?;
    let recipe_arn = input.str("recipeArn")?;
    check_arn("recipeArn", recipe_arn)?;
    let config = recommender_config(input)?;
    let tags = input.tags("tags")?;
    let now = cx.now;
    let arn = cx.scope.arn(Kind::Recommender, name);
    ensure_new::<Recommender>(cx.state, &arn, now)?;
    let group = active::<DatasetGroup>(cx.state, group_arn, now)?;
    let recipe = recipes::by_arn(recipe_arn).ok_or_else(|| ApiError::not_found("recipe", recipe_arn))?;
    let Some(domain) = group.domain else {
        return Err(ApiError::invalid(format!(
            "The dataset group {group_arn} has no domain: recommenders need a Domain dataset group"
        )));
    };
    if recipe.domain != Some(domain) {
        return Err(ApiError::invalid(format!(
            "{recipe_arn} is not a use case of the {domain} domain of {group_arn}"
        )));
    }
    let count = cx
        .state
        .live::<Recommender>(now, |r| r.group_arn == group_arn)
        .count();
    quota(
        count,
        cx.quotas.recommenders_per_group,
        "in ACTIVE state for this dataset group",
    )?;
    let timeline = cx.work_timeline(Kind::Recommender, &[name]);
    let meta = cx.meta(arn.clone(), name, timeline, tags);
    cx.queue(JobKind::TrainRecommender, &meta);
    cx.state.recommenders.insert(
        arn.clone(),
        Recommender {
            meta,
            group_arn: group_arn.to_string(),
            recipe_arn: recipe_arn.to_string(),
            config,
            update: None,
            metrics: None,
        },
    );
    Ok(json!({ "recommenderArn": arn }))
}

fn summary(r: &Recommender, now: f64) -> Value {
    let (created, updated) = times(&r.meta, now);
    compact(json!({
        "name": r.meta.name,
        "recommenderArn": r.meta.arn,
        "datasetGroupArn": r.group_arn,
        "recipeArn": r.recipe_arn,
        "recommenderConfig": r.config,
        "status": r.meta.status(now).as_str(),
        "creationDateTime": created,
        "lastUpdatedDateTime": updated,
    }))
}

pub fn describe(cx: &mut Cx, input: &Input) -> Result<Value, ApiError> {
    let arn = input.arn("recommenderArn")?;
    let now = cx.now;
    let r = cx.state.find::<Recommender>(arn, now)?;
    let status = r.meta.status(now);
    let latest = r.update.as_ref().map(|u| {
        json!({
            "recommenderConfig": u.config,
            "creationDateTime": u.created,
            "lastUpdatedDateTime": u.timeline.last_updated(now),
            "status": u.timeline.status(now).as_str(),
            "failureReason": u.timeline.failure(now),
        })
    });
    // modelMetrics is null while the recommender is being created or deleted
    // (docs/personalize.md#operation-notes-the-code-depends-on).
    let metrics = (!status.is_creating() && !status.is_deleting())
        .then_some(r.metrics.as_ref())
        .flatten();
    let mut out = summary(r, now);
    if let Some(obj) = out.as_object_mut() {
        obj.insert("failureReason".into(), json!(r.meta.failure(now)));
        obj.insert("latestRecommenderUpdate".into(), json!(latest));
        obj.insert("modelMetrics".into(), json!(metrics));
    }
    Ok(json!({ "recommender": compact(out) }))
}

pub fn list(cx: &mut Cx, input: &Input) -> Result<Value, ApiError> {
    let group = input.opt_arn("datasetGroupArn")?;
    let now = cx.now;
    let region = &cx.scope.region;
    let items = cx
        .state
        .recommenders
        .values()
        .filter(|r| &r.meta.region == region && !r.meta.is_gone(now))
        .filter(|r| group.is_none_or(|g| r.group_arn == g))
        .map(|r| (r.meta.seq, r))
        .collect();
    let query = format!("{region}|{}", group.unwrap_or_default());
    list_page(input, "ListRecommenders", &query, "recommenders", items, |r| {
        summary(r, now)
    })
}

pub fn update(cx: &mut Cx, input: &Input) -> Result<Value, ApiError> {
    let arn = input.arn("recommenderArn")?;
    input.object("recommenderConfig")?;
    let config = recommender_config(input)?;
    let now = cx.now;
    let r = active::<Recommender>(cx.state, arn, now)?;
    if let Some(u) = &r.update
        && !u.is_settled(now)
    {
        return Err(ApiError::in_use(format!(
            "The recommender {arn} has an update in progress (status {})",
            u.timeline.status(now).as_str()
        )));
    }
    // Changing the training columns starts a full retraining
    // (docs/personalize.md#operation-notes-the-code-depends-on); the update then ends when the new
    // model is trained.
    let retrain = config.get("trainingDataConfig") != r.config.get("trainingDataConfig");
    let failure = cx.failures.failure_for(Kind::Recommender, &[&r.meta.name]);
    let timeline = if retrain {
        let mut timeline = Timeline::awaiting(now, cx.durations.update());
        if let Some(reason) = failure {
            timeline.finish(now, Some(reason));
        }
        timeline
    } else {
        Timeline::created(now, cx.durations.update(), failure)
    };
    if timeline.is_awaiting_work() {
        cx.jobs.push(Job {
            kind: JobKind::RetrainRecommender,
            arn: arn.to_string(),
            seq: r.meta.seq,
        });
    }
    let r = cx.state.find_mut::<Recommender>(arn, now)?;
    r.update = Some(PendingUpdate {
        config,
        created: now,
        timeline,
        applied: false,
    });
    cx.changed = true;
    Ok(json!({ "recommenderArn": arn }))
}

/// Moves a recommender from `from` through two phases to `to` (stop and start).
fn switch(
    cx: &mut Cx,
    input: &Input,
    from: Status,
    phases: [Status; 2],
    to: Status,
) -> Result<Value, ApiError> {
    let arn = input.arn("recommenderArn")?;
    let (now, durations) = (cx.now, cx.durations.stop());
    let r = cx.state.find_mut::<Recommender>(arn, now)?;
    let status = r.meta.status(now);
    if status != from {
        return Err(ApiError::in_use(format!(
            "The recommender {arn} is {} but must be {}",
            status.as_str(),
            from.as_str()
        )));
    }
    r.meta
        .timeline
        .transition(now, phases[0], Some(phases[1]), to, durations);
    cx.changed = true;
    Ok(json!({ "recommenderArn": arn }))
}

pub fn stop(cx: &mut Cx, input: &Input) -> Result<Value, ApiError> {
    switch(
        cx,
        input,
        Status::Active,
        [Status::StopPending, Status::StopInProgress],
        Status::Inactive,
    )
}

pub fn start(cx: &mut Cx, input: &Input) -> Result<Value, ApiError> {
    switch(
        cx,
        input,
        Status::Inactive,
        [Status::StartPending, Status::StartInProgress],
        Status::Active,
    )
}

pub fn delete(cx: &mut Cx, input: &Input) -> Result<Value, ApiError> {
    let arn = input.arn("recommenderArn")?;
    delete_resource::<Recommender>(cx, arn, true)
}
