//! CreateSolutionVersion, DescribeSolutionVersion, ListSolutionVersions, StopSolutionVersionCreation,
//! GetSolutionMetrics.

use serde_json::{Value, json};

use super::{Cx, active, compact, list_page, quota, times};
use crate::emulator::arn::{Kind, Scope};
use crate::emulator::error::ApiError;
use crate::emulator::input::Input;
use crate::emulator::job::JobKind;
use crate::emulator::lifecycle::Status;
use crate::emulator::recipes;
use crate::emulator::state::{Meta, Solution, SolutionVersion};

fn in_flight(status: Status) -> bool {
    status.is_creating() || status == Status::CreateStopping
}

pub fn create(cx: &mut Cx, input: &Input) -> Result<Value, ApiError> {
    let solution_arn = input.arn("solutionArn")?;
    let name = input.opt_name("name")?;
    let mode = input
        .opt_enum("trainingMode", &["FULL", "UPDATE", "AUTOTRAIN"])?
        .unwrap_or("FULL");
    let tags = input.tags("tags")?;
    let now = cx.now;
    let solution = active::<Solution>(cx.state, solution_arn, now)?;
    if let Some(v) = cx
        .state
        .live::<SolutionVersion>(now, |v| {
            v.solution_arn == solution_arn && in_flight(v.meta.status(now))
        })
        .next()
    {
        return Err(ApiError::in_use(format!(
            "The solution {solution_arn} already has the version {} in progress",
            v.meta.arn
        )));
    }
    if mode == "UPDATE" {
        update_allowed(cx, solution, solution_arn)?;
    }
    let region = cx.scope.region.clone();
    let pending = cx
        .state
        .live::<SolutionVersion>(now, |v| v.meta.region == region && in_flight(v.meta.status(now)))
        .count();
    quota(
        pending,
        cx.quotas.pending_solution_versions,
        "with PENDING or IN_PROGRESS status",
    )?;
    let solution = solution.clone();
    let arn = loop {
        let arn = Scope::solution_version_arn(solution_arn);
        if !cx.state.solution_versions.contains_key(&arn) {
            break arn;
        }
    };
    // A version has an optional name; fault rules match it, or the solution's name without one.
    let names: Vec<&str> = name.into_iter().chain([solution.meta.name.as_str()]).collect();
    let timeline = cx.work_timeline(Kind::SolutionVersion, &names);
    let meta = cx.meta(arn.clone(), name.unwrap_or_default(), timeline, tags);
    cx.queue(JobKind::Train, &meta);
    cx.state
        .solution_versions
        .insert(arn.clone(), trained_from(&solution, solution_arn, meta, mode));
    Ok(json!({ "solutionVersionArn": arn }))
}

/// UPDATE trains on top of a FULL version, and only some recipes can do it.
fn update_allowed(cx: &Cx, solution: &Solution, solution_arn: &str) -> Result<(), ApiError> {
    let now = cx.now;
    let recipe = recipes::by_arn(&solution.recipe_arn);
    if !recipe.is_some_and(|r| r.supports_update) {
        return Err(ApiError::invalid(format!(
            "trainingMode UPDATE is only supported by aws-user-personalization and aws-hrnn-coldstart, not {}",
            recipe.map_or("", |r| r.name)
        )));
    }
    let has_full = cx
        .state
        .live::<SolutionVersion>(now, |v| {
            v.solution_arn == solution_arn && v.training_mode == "FULL" && v.meta.is_active(now)
        })
        .next()
        .is_some();
    if !has_full {
        return Err(ApiError::invalid(format!(
            "trainingMode UPDATE needs an ACTIVE version of {solution_arn} trained with trainingMode FULL"
        )));
    }
    Ok(())
}

/// A new version carries its solution's training settings as they are at creation.
fn trained_from(solution: &Solution, solution_arn: &str, meta: Meta, mode: &str) -> SolutionVersion {
    SolutionVersion {
        meta,
        solution_arn: solution_arn.to_string(),
        group_arn: solution.group_arn.clone(),
        recipe_arn: solution.recipe_arn.clone(),
        training_mode: mode.to_string(),
        training_type: if mode == "AUTOTRAIN" {
            "AUTOMATIC"
        } else {
            "MANUAL"
        }
        .to_string(),
        perform_hpo: solution.perform_hpo,
        perform_automl: solution.perform_automl,
        perform_incremental_update: solution.perform_incremental_update,
        event_type: solution.event_type.clone(),
        config: solution.config.clone(),
        metrics: None,
    }
}

/// `SolutionVersionSummary` (also `Solution.latestSolutionVersion`).
pub fn version_summary(v: &SolutionVersion, now: f64) -> Value {
    let (created, updated) = times(&v.meta, now);
    compact(json!({
        "solutionVersionArn": v.meta.arn,
        "status": v.meta.status(now).as_str(),
        "trainingMode": v.training_mode,
        "trainingType": v.training_type,
        "creationDateTime": created,
        "lastUpdatedDateTime": updated,
        "failureReason": v.meta.failure(now),
    }))
}

pub fn describe(cx: &mut Cx, input: &Input) -> Result<Value, ApiError> {
    let arn = input.arn("solutionVersionArn")?;
    let now = cx.now;
    let v = cx.state.find::<SolutionVersion>(arn, now)?;
    let training_hours = v
        .meta
        .timeline
        .active_since(now)
        .map(|at| ((at - v.meta.created).max(0.0) / 3600.0 * 1000.0).round() / 1000.0);
    let mut out = version_summary(v, now);
    if let Some(obj) = out.as_object_mut() {
        let name = (!v.meta.name.is_empty()).then_some(&v.meta.name);
        obj.insert("name".into(), json!(name));
        obj.insert("solutionArn".into(), json!(v.solution_arn));
        obj.insert("performHPO".into(), json!(v.perform_hpo));
        obj.insert("performAutoML".into(), json!(v.perform_automl));
        obj.insert(
            "performIncrementalUpdate".into(),
            json!(v.perform_incremental_update),
        );
        obj.insert("recipeArn".into(), json!(v.recipe_arn));
        obj.insert("eventType".into(), json!(v.event_type));
        obj.insert("datasetGroupArn".into(), json!(v.group_arn));
        obj.insert("solutionConfig".into(), json!(v.config));
        obj.insert("trainingHours".into(), json!(training_hours));
    }
    Ok(json!({ "solutionVersion": compact(out) }))
}

pub fn list(cx: &mut Cx, input: &Input) -> Result<Value, ApiError> {
    let solution = input.opt_arn("solutionArn")?;
    let now = cx.now;
    // Unlike the other Lists, an unknown parent is an error here
    // (docs/personalize.md#error-matrix-essentials).
    if let Some(s) = solution {
        cx.state.find::<Solution>(s, now)?;
    }
    let region = &cx.scope.region;
    let items = cx
        .state
        .solution_versions
        .values()
        .filter(|v| &v.meta.region == region && solution.is_none_or(|s| v.solution_arn == s))
        .map(|v| (v.meta.seq, v))
        .collect();
    let query = format!("{region}|{}", solution.unwrap_or_default());
    list_page(
        input,
        "ListSolutionVersions",
        &query,
        "solutionVersions",
        items,
        |v| version_summary(v, now),
    )
}

pub fn stop(cx: &mut Cx, input: &Input) -> Result<Value, ApiError> {
    let arn = input.arn("solutionVersionArn")?;
    let (now, phases) = (cx.now, cx.durations.stop());
    let v = cx.state.find_mut::<SolutionVersion>(arn, now)?;
    match v.meta.status(now) {
        // Stopping a pending version is immediate; one in training first shows CREATE STOPPING.
        Status::CreatePending => v.meta.timeline.transition(
            now,
            Status::CreateStopped,
            None,
            Status::CreateStopped,
            crate::emulator::lifecycle::Phases {
                pending: 0.0,
                in_progress: 0.0,
            },
        ),
        Status::CreateInProgress => {
            v.meta
                .timeline
                .transition(now, Status::CreateStopping, None, Status::CreateStopped, phases)
        }
        other => {
            return Err(ApiError::in_use(format!(
                "The solution version {arn} cannot be stopped in status {}",
                other.as_str()
            )));
        }
    }
    cx.changed = true;
    Ok(json!({}))
}

pub fn metrics(cx: &mut Cx, input: &Input) -> Result<Value, ApiError> {
    let arn = input.arn("solutionVersionArn")?;
    let now = cx.now;
    let v = active::<SolutionVersion>(cx.state, arn, now)?;
    let metrics = v.metrics.clone().unwrap_or_default();
    Ok(json!({ "solutionVersionArn": arn, "metrics": metrics }))
}
