//! CreateCampaign, DescribeCampaign, ListCampaigns, UpdateCampaign, DeleteCampaign.

use serde_json::{Value, json};

use super::{Cx, active, compact, delete_resource, ensure_new, list_page, quota, times};
use crate::emulator::arn::{Kind, solution_of_version};
use crate::emulator::error::ApiError;
use crate::emulator::input::{Input, check_arn};
use crate::emulator::lifecycle::{Status, Timeline};
use crate::emulator::recipes::{self, RecipeType};
use crate::emulator::state::{Campaign, CampaignConfig, PendingUpdate, Solution, SolutionVersion, State};

/// The alias a campaign that follows its solution names instead of a version.
const LATEST: &str = "/$LATEST";

/// Checks `campaignConfig`; returns `syncWithLatestSolutionVersion`.
fn check_campaign_config(config: &Input, family: RecipeType) -> Result<bool, ApiError> {
    if let Some(exploration) = config.opt_object("itemExplorationConfig")? {
        if family != RecipeType::UserPersonalization {
            return Err(ApiError::invalid(
                "campaignConfig.itemExplorationConfig is only supported by User-Personalization recipes",
            ));
        }
        if let Some(Value::Object(entries)) = config.opt_value("itemExplorationConfig") {
            for key in entries.keys() {
                exploration.text(key, 0, 1000)?;
            }
        }
    }
    config.opt_bool("enableMetadataWithRecommendations")?;
    if let Some(influence) = config.opt_object("rankingInfluence")?
        && let Some(Value::Object(entries)) = config.opt_value("rankingInfluence")
    {
        for key in entries.keys() {
            if key != "POPULARITY" && key != "FRESHNESS" {
                return Err(ApiError::invalid(format!(
                    "campaignConfig.rankingInfluence: {key:?} is not POPULARITY or FRESHNESS"
                )));
            }
            let weight = influence.opt_f64(key)?.unwrap_or(0.0);
            if !(0.0..=1.0).contains(&weight) {
                return Err(ApiError::invalid(format!(
                    "campaignConfig.rankingInfluence.{key} must be between 0 and 1"
                )));
            }
        }
    }
    Ok(config.opt_bool("syncWithLatestSolutionVersion")?.unwrap_or(false))
}

/// Resolves a version ARN (or the `$LATEST` alias when `sync` is on) to an ACTIVE version; returns
/// it and the solution the campaign follows, if any.
fn resolve_version<'s>(
    state: &'s State,
    version_arn: &str,
    sync: bool,
    now: f64,
) -> Result<(&'s SolutionVersion, Option<String>), ApiError> {
    check_arn("solutionVersionArn", version_arn)?;
    if let Some(solution_arn) = version_arn.strip_suffix(LATEST) {
        if !sync {
            return Err(ApiError::invalid(
                "The $LATEST alias needs campaignConfig.syncWithLatestSolutionVersion set to true",
            ));
        }
        state.find::<Solution>(solution_arn, now)?;
        let version = state.newest_active_version(solution_arn, now).ok_or_else(|| {
            ApiError::in_use(format!(
                "The solution {solution_arn} has no ACTIVE solution version"
            ))
        })?;
        return Ok((version, Some(solution_arn.to_string())));
    }
    let version = active::<SolutionVersion>(state, version_arn, now)?;
    Ok((version, sync.then(|| version.solution_arn.clone())))
}

fn family_of(version: &SolutionVersion) -> RecipeType {
    recipes::by_arn(&version.recipe_arn).map_or(RecipeType::UserPersonalization, |r| r.recipe_type)
}

pub fn create(cx: &mut Cx, input: &Input) -> Result<Value, ApiError> {
    let name = input.name("name")?;
    let version_arn = input.str("solutionVersionArn")?;
    let min_tps = input
        .opt_int("minProvisionedTPS", 1, i64::from(i32::MAX))?
        .unwrap_or(1);
    let config = input.opt_object("campaignConfig")?;
    let tags = input.tags("tags")?;
    let now = cx.now;
    let arn = cx.scope.arn(Kind::Campaign, name);
    ensure_new::<Campaign>(cx.state, &arn, now)?;
    let sync = config
        .as_ref()
        .map(|c| c.opt_bool("syncWithLatestSolutionVersion"))
        .transpose()?
        .flatten()
        .unwrap_or(false);
    let (version, follows) = resolve_version(cx.state, version_arn, sync, now)?;
    let family = family_of(version);
    if let Some(c) = &config {
        check_campaign_config(c, family)?;
    }
    if family == RecipeType::UserSegmentation {
        return Err(ApiError::invalid(format!(
            "{} uses a USER_SEGMENTATION recipe: use batch segment jobs, not a campaign",
            version.meta.arn
        )));
    }
    let group = version.group_arn.clone();
    let version_arn = version.meta.arn.clone();
    let state: &State = cx.state;
    let in_group = state
        .live::<Campaign>(now, |c| {
            state
                .solution_versions
                .get(&c.current.solution_version_arn)
                .is_some_and(|v| v.group_arn == group)
        })
        .count();
    quota(
        in_group,
        cx.quotas.campaigns_per_group,
        "in ACTIVE state for this dataset group",
    )?;
    let timeline = cx.plain_timeline(Kind::Campaign, &[name]);
    let meta = cx.meta(arn.clone(), name, timeline, tags);
    cx.state.campaigns.insert(
        arn.clone(),
        Campaign {
            meta,
            current: CampaignConfig {
                solution_version_arn: version_arn,
                min_provisioned_tps: min_tps,
                campaign_config: input.opt_value("campaignConfig"),
                follows_solution: follows,
            },
            update: None,
        },
    );
    Ok(json!({ "campaignArn": arn }))
}

fn summary(c: &Campaign, now: f64) -> Value {
    let (created, updated) = times(&c.meta, now);
    compact(json!({
        "name": c.meta.name,
        "campaignArn": c.meta.arn,
        "status": c.meta.status(now).as_str(),
        "creationDateTime": created,
        "lastUpdatedDateTime": updated,
        "failureReason": c.meta.failure(now),
    }))
}

pub fn describe(cx: &mut Cx, input: &Input) -> Result<Value, ApiError> {
    let arn = input.arn("campaignArn")?;
    let now = cx.now;
    let c = cx.state.find::<Campaign>(arn, now)?;
    let latest = c.update.as_ref().map(|u| {
        json!({
            "solutionVersionArn": u.config.solution_version_arn,
            "minProvisionedTPS": u.config.min_provisioned_tps,
            "campaignConfig": u.config.campaign_config,
            "status": u.timeline.status(now).as_str(),
            "failureReason": u.timeline.failure(now),
            "creationDateTime": u.created,
            "lastUpdatedDateTime": u.timeline.last_updated(now),
        })
    });
    let mut out = summary(c, now);
    if let Some(obj) = out.as_object_mut() {
        obj.insert("solutionVersionArn".into(), json!(c.current.solution_version_arn));
        obj.insert("minProvisionedTPS".into(), json!(c.current.min_provisioned_tps));
        obj.insert("campaignConfig".into(), json!(c.current.campaign_config));
        // Present only after an UpdateCampaign (docs/personalize.md#statuses-and-lifecycles).
        obj.insert("latestCampaignUpdate".into(), json!(latest));
    }
    Ok(json!({ "campaign": compact(out) }))
}

pub fn list(cx: &mut Cx, input: &Input) -> Result<Value, ApiError> {
    let solution = input.opt_arn("solutionArn")?;
    let now = cx.now;
    let region = &cx.scope.region;
    let items = cx
        .state
        .campaigns
        .values()
        .filter(|c| &c.meta.region == region && !c.meta.is_gone(now))
        .filter(|c| solution.is_none_or(|s| solution_of_version(&c.current.solution_version_arn) == Some(s)))
        .map(|c| (c.meta.seq, c))
        .collect();
    let query = format!("{region}|{}", solution.unwrap_or_default());
    list_page(input, "ListCampaigns", &query, "campaigns", items, |c| {
        summary(c, now)
    })
}

pub fn update(cx: &mut Cx, input: &Input) -> Result<Value, ApiError> {
    let arn = input.arn("campaignArn")?;
    let new_version = input.opt_str("solutionVersionArn")?;
    let min_tps = input.opt_int("minProvisionedTPS", 1, i64::from(i32::MAX))?;
    let config = input.opt_object("campaignConfig")?;
    let now = cx.now;
    let campaign = cx.state.find::<Campaign>(arn, now)?;
    let status = campaign.meta.status(now);
    if !matches!(status, Status::Active | Status::CreateFailed) {
        return Err(ApiError::in_use(format!(
            "The campaign {arn} cannot be updated in status {}",
            status.as_str()
        )));
    }
    if let Some(u) = &campaign.update
        && !u.is_settled(now)
    {
        return Err(ApiError::in_use(format!(
            "The campaign {arn} has an update in progress (status {})",
            u.timeline.status(now).as_str()
        )));
    }
    let campaign_config = input
        .opt_value("campaignConfig")
        .or_else(|| campaign.current.campaign_config.clone());
    let sync = match &config {
        Some(c) => c.opt_bool("syncWithLatestSolutionVersion")?.unwrap_or(false),
        None => campaign.current.follows_solution.is_some(),
    };
    let requested = new_version.unwrap_or(&campaign.current.solution_version_arn);
    let (version, follows) = resolve_version(cx.state, requested, sync, now)?;
    if let Some(c) = &config {
        check_campaign_config(c, family_of(version))?;
    }
    let pending = CampaignConfig {
        solution_version_arn: version.meta.arn.clone(),
        min_provisioned_tps: min_tps.unwrap_or(campaign.current.min_provisioned_tps),
        campaign_config,
        follows_solution: follows,
    };
    let failure = cx.failures.failure_for(Kind::Campaign, &[&campaign.meta.name]);
    let timeline = Timeline::created(now, cx.durations.update(), failure);
    let campaign = cx.state.find_mut::<Campaign>(arn, now)?;
    campaign.update = Some(PendingUpdate {
        config: pending,
        created: now,
        timeline,
        applied: false,
    });
    cx.changed = true;
    Ok(json!({ "campaignArn": arn }))
}

pub fn delete(cx: &mut Cx, input: &Input) -> Result<Value, ApiError> {
    let arn = input.arn("campaignArn")?;
    delete_resource::<Campaign>(cx, arn, true)
}
