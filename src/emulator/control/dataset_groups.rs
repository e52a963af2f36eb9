//! CreateDatasetGroup, DescribeDatasetGroup, ListDatasetGroups, DeleteDatasetGroup.

use serde_json::{Value, json};

use super::{Cx, compact, delete_resource, ensure_new, list_page, quota, times};
use crate::emulator::arn::Kind;
use crate::emulator::error::ApiError;
use crate::emulator::input::Input;
use crate::emulator::state::{Dataset, DatasetGroup, EventTracker, Recommender, Solution};
use crate::spec::kinds::Domain;

pub fn create(cx: &mut Cx, input: &Input) -> Result<Value, ApiError> {
    let name = input.name("name")?;
    let role_arn = input.opt_role_arn("roleArn")?;
    let kms_key_arn = input.opt_kms_arn("kmsKeyArn")?;
    let domain = input
        .opt_enum("domain", &["ECOMMERCE", "VIDEO_ON_DEMAND"])?
        .map(|d| d.parse::<Domain>().map_err(ApiError::invalid))
        .transpose()?;
    let tags = input.tags("tags")?;
    match (role_arn, kms_key_arn) {
        (None, Some(_)) => {
            return Err(ApiError::invalid(
                "A roleArn is required when a kmsKeyArn is given: Personalize needs a role to use the key",
            ));
        }
        // The role exists only to use the key (docs/personalize.md#operation-notes-the-code-depends-on).
        (Some(_), None) => {
            return Err(ApiError::invalid(
                "A roleArn is only valid together with a kmsKeyArn: the role is what Personalize uses the key with",
            ));
        }
        _ => {}
    }
    let arn = cx.scope.arn(Kind::DatasetGroup, name);
    ensure_new::<DatasetGroup>(cx.state, &arn, cx.now)?;
    // A group being deleted no longer counts, so a test can free a slot by deleting one.
    let region = cx.scope.region.clone();
    let count = cx
        .state
        .live::<DatasetGroup>(cx.now, |g| g.meta.region == region)
        .count();
    quota(count, cx.quotas.dataset_groups, "in ACTIVE state")?;
    let timeline = cx.plain_timeline(Kind::DatasetGroup, &[name]);
    let meta = cx.meta(arn.clone(), name, timeline, tags);
    cx.state.dataset_groups.insert(
        arn.clone(),
        DatasetGroup {
            meta,
            domain,
            role_arn: role_arn.map(str::to_string),
            kms_key_arn: kms_key_arn.map(str::to_string),
        },
    );
    Ok(compact(
        json!({ "datasetGroupArn": arn, "domain": domain.map(Domain::as_str) }),
    ))
}

fn summary(g: &DatasetGroup, now: f64) -> Value {
    let (created, updated) = times(&g.meta, now);
    compact(json!({
        "name": g.meta.name,
        "datasetGroupArn": g.meta.arn,
        "status": g.meta.status(now).as_str(),
        "creationDateTime": created,
        "lastUpdatedDateTime": updated,
        "failureReason": g.meta.failure(now),
        "domain": g.domain.map(Domain::as_str),
    }))
}

pub fn describe(cx: &mut Cx, input: &Input) -> Result<Value, ApiError> {
    let arn = input.arn("datasetGroupArn")?;
    let g = cx.state.find::<DatasetGroup>(arn, cx.now)?;
    let mut out = summary(g, cx.now);
    if let Some(obj) = out.as_object_mut() {
        if let Some(r) = &g.role_arn {
            obj.insert("roleArn".into(), json!(r));
        }
        if let Some(k) = &g.kms_key_arn {
            obj.insert("kmsKeyArn".into(), json!(k));
        }
    }
    Ok(json!({ "datasetGroup": out }))
}

pub fn list(cx: &mut Cx, input: &Input) -> Result<Value, ApiError> {
    let now = cx.now;
    let region = &cx.scope.region;
    let items = cx
        .state
        .dataset_groups
        .values()
        .filter(|g| &g.meta.region == region && !g.meta.is_gone(now))
        .map(|g| (g.meta.seq, g))
        .collect();
    list_page(input, "ListDatasetGroups", region, "datasetGroups", items, |g| {
        summary(g, now)
    })
}

pub fn delete(cx: &mut Cx, input: &Input) -> Result<Value, ApiError> {
    let arn = input.arn("datasetGroupArn")?;
    let now = cx.now;
    cx.state.find::<DatasetGroup>(arn, now)?;
    let in_group = |group: &str| group == arn;
    let mut blockers = Vec::new();
    if cx
        .state
        .present::<Dataset>(now, |d| in_group(&d.group_arn))
        .next()
        .is_some()
    {
        blockers.push("datasets");
    }
    if cx
        .state
        .present::<Solution>(now, |s| in_group(&s.group_arn))
        .next()
        .is_some()
    {
        blockers.push("solutions");
    }
    if cx
        .state
        .present::<EventTracker>(now, |t| in_group(&t.group_arn))
        .next()
        .is_some()
    {
        blockers.push("event trackers");
    }
    if cx
        .state
        .present::<Recommender>(now, |r| in_group(&r.group_arn))
        .next()
        .is_some()
    {
        blockers.push("recommenders");
    }
    if !blockers.is_empty() {
        return Err(ApiError::in_use(format!(
            "The dataset group {arn} still has {}; delete them first",
            blockers.join(", ")
        )));
    }
    // A dataset group shows DELETE PENDING and then disappears (docs/personalize.md#statuses-and-lifecycles).
    delete_resource::<DatasetGroup>(cx, arn, false)
}
