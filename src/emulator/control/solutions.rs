//! CreateSolution, DescribeSolution, ListSolutions, UpdateSolution, DeleteSolution.

use std::sync::LazyLock;

use regex::Regex;
use serde_json::{Value, json};

use super::solution_versions::version_summary;
use super::{Cx, active, compact, delete_resource, ensure_new, list_page, quota, times};
use crate::emulator::arn::Kind;
use crate::emulator::error::{ApiError, ErrorCode, constraint};
use crate::emulator::input::{Input, check_arn};
use crate::emulator::lifecycle::Timeline;
use crate::emulator::recipes::{self, Recipe};
use crate::emulator::state::{
    Campaign, DatasetGroup, PendingUpdate, Solution, SolutionUpdateConfig, SolutionVersion,
};

/// The recipe AutoML settles on: it searches USER_PERSONALIZATION recipes only.
const AUTOML_RECIPE: &str = "aws-user-personalization";

static RATE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^rate\((\d+) days?\)$").unwrap_or_else(|e| panic!("built-in pattern is invalid: {e}"))
});

/// Looks a custom recipe up: malformed ARN → II, unknown → NF, a domain use case → II.
pub fn custom_recipe(arn: &str) -> Result<&'static Recipe, ApiError> {
    check_arn("recipeArn", arn)?;
    let recipe = recipes::by_arn(arn).ok_or_else(|| ApiError::not_found("recipe", arn))?;
    if recipe.domain.is_some() {
        return Err(ApiError::invalid(format!(
            "{arn} is a domain use case; use it with CreateRecommender, not in a solution"
        )));
    }
    if !crate::emulator::engine::recipes::trainable(recipe) {
        return Err(ApiError::invalid(format!(
            "{arn} needs Actions datasets, which the built-in Personalize does not support"
        )));
    }
    Ok(recipe)
}

/// `autoTrainingConfig.schedulingExpression`: `rate(N day|days)`, N from 1 to 30.
fn check_auto_training(config: &Input, path: &str) -> Result<(), ApiError> {
    let Some(auto) = config.opt_object("autoTrainingConfig")? else {
        return Ok(());
    };
    let member = format!("{path}.autoTrainingConfig.schedulingExpression");
    let Some(expr) = auto.opt_text("schedulingExpression", 1, 16)? else {
        return Ok(());
    };
    let days = RATE
        .captures(expr)
        .and_then(|c| c.get(1))
        .and_then(|d| d.as_str().parse::<u32>().ok());
    match days {
        Some(1..=30) => Ok(()),
        _ => Err(constraint(
            &member,
            expr,
            "Member must be rate(N day) or rate(N days) with N from 1 to 30",
        )),
    }
}

/// The members of `solutionConfig` the emulator checks; the rest is stored as given.
fn check_solution_config(config: &Input) -> Result<(), ApiError> {
    config.opt_str("eventValueThreshold")?;
    for member in [
        "hpoConfig",
        "autoMLConfig",
        "eventsConfig",
        "optimizationObjective",
        "trainingDataConfig",
    ] {
        config.opt_object(member)?;
    }
    for member in ["algorithmHyperParameters", "featureTransformationParameters"] {
        if let Some(map) = config.opt_object(member)? {
            let Some(Value::Object(entries)) = config.opt_value(member) else {
                continue;
            };
            if entries.len() > 100 {
                return Err(ApiError::invalid(format!(
                    "solutionConfig.{member} has {} entries; at most 100 are allowed",
                    entries.len()
                )));
            }
            for key in entries.keys() {
                map.text(key, 0, 1000)
                    .map_err(|e| ApiError::invalid(format!("solutionConfig.{member}: {}", e.message)))?;
            }
        }
    }
    if let Some(objective) = config.opt_object("optimizationObjective")? {
        objective.opt_enum("objectiveSensitivity", &["LOW", "MEDIUM", "HIGH", "OFF"])?;
    }
    check_auto_training(config, "solutionConfig")
}

pub fn create(cx: &mut Cx, input: &Input) -> Result<Value, ApiError> {
    let name = input.name("name")?;
    let group_arn = input.arn("datasetGroupArn")?;
    let perform_hpo = input.opt_bool("performHPO")?.unwrap_or(false);
    let perform_automl = input.opt_bool("performAutoML")?.unwrap_or(false);
    let perform_auto_training = input.opt_bool("performAutoTraining")?.unwrap_or(true);
    let perform_incremental_update = input.opt_bool("performIncrementalUpdate")?;
    let event_type = input.opt_text("eventType", 0, 256)?;
    let config = input.opt_object("solutionConfig")?;
    if let Some(c) = &config {
        check_solution_config(c)?;
    }
    let tags = input.tags("tags")?;
    let recipe_arn = match (input.opt_str("recipeArn")?, perform_automl) {
        (Some(arn), _) => arn.to_string(),
        (None, true) => format!("{}{AUTOML_RECIPE}", recipes::RECIPE_ARN_PREFIX),
        (None, false) => {
            return Err(ApiError::invalid(
                "A recipeArn is required unless performAutoML is true",
            ));
        }
    };
    let recipe = custom_recipe(&recipe_arn)?;
    if perform_incremental_update == Some(true) && recipe.name != "aws-semantic-similarity" {
        return Err(ApiError::invalid(format!(
            "performIncrementalUpdate is only supported by aws-semantic-similarity, not {}",
            recipe.name
        )));
    }
    let now = cx.now;
    let arn = cx.scope.arn(Kind::Solution, name);
    ensure_new::<Solution>(cx.state, &arn, now)?;
    active::<DatasetGroup>(cx.state, group_arn, now)?;
    let count = cx
        .state
        .live::<Solution>(now, |s| s.group_arn == group_arn)
        .count();
    quota(
        count,
        cx.quotas.solutions_per_group,
        "in ACTIVE state for this dataset group",
    )?;
    let timeline = cx.plain_timeline(Kind::Solution, &[name]);
    let meta = cx.meta(arn.clone(), name, timeline, tags);
    cx.state.solutions.insert(
        arn.clone(),
        Solution {
            meta,
            group_arn: group_arn.to_string(),
            recipe_arn,
            perform_hpo,
            perform_automl,
            perform_auto_training,
            perform_incremental_update,
            event_type: event_type.map(str::to_string),
            config: input.opt_value("solutionConfig"),
            update: None,
        },
    );
    Ok(json!({ "solutionArn": arn }))
}

fn summary(s: &Solution, now: f64) -> Value {
    let (created, updated) = times(&s.meta, now);
    json!({
        "name": s.meta.name,
        "solutionArn": s.meta.arn,
        "status": s.meta.status(now).as_str(),
        "creationDateTime": created,
        "lastUpdatedDateTime": updated,
        "recipeArn": s.recipe_arn,
    })
}

pub fn describe(cx: &mut Cx, input: &Input) -> Result<Value, ApiError> {
    let arn = input.arn("solutionArn")?;
    let now = cx.now;
    let s = cx.state.find::<Solution>(arn, now)?;
    let latest_version = cx
        .state
        .solution_versions
        .values()
        .filter(|v| v.solution_arn == arn)
        .max_by_key(|v| v.meta.seq)
        .map(|v| version_summary(v, now));
    let latest_update = s.update.as_ref().map(|u| {
        json!({
            "solutionUpdateConfig": u.config.solution_update_config,
            "status": u.timeline.status(now).as_str(),
            "performAutoTraining": u.config.perform_auto_training,
            "performIncrementalUpdate": u.config.perform_incremental_update,
            "creationDateTime": u.created,
            "lastUpdatedDateTime": u.timeline.last_updated(now),
            "failureReason": u.timeline.failure(now),
        })
    });
    let mut out = summary(s, now);
    if let Some(obj) = out.as_object_mut() {
        obj.insert("performHPO".into(), json!(s.perform_hpo));
        obj.insert("performAutoML".into(), json!(s.perform_automl));
        obj.insert("performAutoTraining".into(), json!(s.perform_auto_training));
        obj.insert(
            "performIncrementalUpdate".into(),
            json!(s.perform_incremental_update),
        );
        obj.insert("datasetGroupArn".into(), json!(s.group_arn));
        obj.insert("eventType".into(), json!(s.event_type));
        obj.insert("solutionConfig".into(), json!(s.config));
        if s.perform_automl {
            obj.insert("autoMLResult".into(), json!({ "bestRecipeArn": s.recipe_arn }));
        }
        obj.insert("latestSolutionVersion".into(), json!(latest_version));
        obj.insert("latestSolutionUpdate".into(), json!(latest_update));
    }
    Ok(json!({ "solution": compact(out) }))
}

pub fn list(cx: &mut Cx, input: &Input) -> Result<Value, ApiError> {
    let group = input.opt_arn("datasetGroupArn")?;
    let now = cx.now;
    let region = &cx.scope.region;
    let items = cx
        .state
        .solutions
        .values()
        .filter(|s| &s.meta.region == region && !s.meta.is_gone(now))
        .filter(|s| group.is_none_or(|g| s.group_arn == g))
        .map(|s| (s.meta.seq, s))
        .collect();
    let query = format!("{region}|{}", group.unwrap_or_default());
    list_page(input, "ListSolutions", &query, "solutions", items, |s| {
        summary(s, now)
    })
}

pub fn update(cx: &mut Cx, input: &Input) -> Result<Value, ApiError> {
    let arn = input.arn("solutionArn")?;
    let perform_auto_training = input.opt_bool("performAutoTraining")?;
    let perform_incremental_update = input.opt_bool("performIncrementalUpdate")?;
    let update_config = input.opt_object("solutionUpdateConfig")?;
    if let Some(c) = &update_config {
        check_auto_training(c, "solutionUpdateConfig")?;
        c.opt_object("eventsConfig")?;
    }
    let now = cx.now;
    let solution = active::<Solution>(cx.state, arn, now)?;
    if let Some(u) = &solution.update
        && !u.is_settled(now)
    {
        return Err(ApiError::in_use(format!(
            "The solution {arn} has an update in progress (status {})",
            u.timeline.status(now).as_str()
        )));
    }
    if perform_incremental_update == Some(true)
        && recipes::by_arn(&solution.recipe_arn).is_none_or(|r| r.name != "aws-semantic-similarity")
    {
        return Err(ApiError::new(
            ErrorCode::InvalidInput,
            "performIncrementalUpdate is only supported by aws-semantic-similarity",
        ));
    }
    let failure = cx.failures.failure_for(Kind::Solution, &[&solution.meta.name]);
    let timeline = Timeline::created(now, cx.durations.update(), failure);
    let solution = cx.state.find_mut::<Solution>(arn, now)?;
    solution.update = Some(PendingUpdate {
        config: SolutionUpdateConfig {
            perform_auto_training,
            perform_incremental_update,
            solution_update_config: input.opt_value("solutionUpdateConfig"),
        },
        created: now,
        timeline,
        applied: false,
    });
    cx.changed = true;
    Ok(json!({ "solutionArn": arn }))
}

pub fn delete(cx: &mut Cx, input: &Input) -> Result<Value, ApiError> {
    let arn = input.arn("solutionArn")?;
    let now = cx.now;
    cx.state.find::<Solution>(arn, now)?;
    let of_solution = |version_arn: &str| crate::emulator::arn::solution_of_version(version_arn) == Some(arn);
    if let Some(c) = cx
        .state
        .present::<Campaign>(now, |c| {
            of_solution(&c.current.solution_version_arn)
                || c.update
                    .as_ref()
                    .is_some_and(|u| of_solution(&u.config.solution_version_arn))
        })
        .next()
    {
        return Err(ApiError::in_use(format!(
            "The solution {arn} is used by the campaign {}",
            c.meta.arn
        )));
    }
    if let Some(v) = cx
        .state
        .live::<SolutionVersion>(now, |v| v.solution_arn == arn && v.meta.status(now).is_creating())
        .next()
    {
        return Err(ApiError::in_use(format!(
            "The solution {arn} has the version {} in progress",
            v.meta.arn
        )));
    }
    delete_resource::<Solution>(cx, arn, true)
}
