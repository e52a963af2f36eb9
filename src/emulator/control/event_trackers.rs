//! CreateEventTracker, DescribeEventTracker, ListEventTrackers, DeleteEventTracker.

use serde_json::{Value, json};

use super::{Cx, active, compact, delete_resource, list_page, quota, times};
use crate::emulator::arn::{Kind, random_hex8};
use crate::emulator::error::ApiError;
use crate::emulator::input::Input;
use crate::emulator::state::{DatasetGroup, EventTracker};

pub fn create(cx: &mut Cx, input: &Input) -> Result<Value, ApiError> {
    let name = input.name("name")?;
    let group_arn = input.arn("datasetGroupArn")?;
    let tags = input.tags("tags")?;
    let now = cx.now;
    let region = cx.scope.region.clone();
    if let Some(t) = cx
        .state
        .live::<EventTracker>(now, |t| t.meta.region == region && t.meta.name == name)
        .next()
    {
        return Err(ApiError::already_exists("event tracker", &t.meta.arn));
    }
    active::<DatasetGroup>(cx.state, group_arn, now)?;
    // One event tracker per dataset group: a quota, answered like the others.
    let trackers = cx
        .state
        .live::<EventTracker>(now, |t| t.group_arn == group_arn)
        .count();
    quota(trackers, 1, "in ACTIVE state for this dataset group")?;
    // The ARN carries an 8-hex id, not the name; retry the (unlikely) collision.
    let arn = loop {
        let arn = cx.scope.arn(Kind::EventTracker, &random_hex8());
        if !cx.state.event_trackers.contains_key(&arn) {
            break arn;
        }
    };
    let tracking_id = uuid::Uuid::new_v4().to_string();
    let timeline = cx.plain_timeline(Kind::EventTracker, &[name]);
    let meta = cx.meta(arn.clone(), name, timeline, tags);
    cx.state.event_trackers.insert(
        arn.clone(),
        EventTracker {
            meta,
            group_arn: group_arn.to_string(),
            tracking_id: tracking_id.clone(),
        },
    );
    Ok(json!({ "eventTrackerArn": arn, "trackingId": tracking_id }))
}

fn summary(t: &EventTracker, now: f64) -> Value {
    let (created, updated) = times(&t.meta, now);
    json!({
        "name": t.meta.name,
        "eventTrackerArn": t.meta.arn,
        "status": t.meta.status(now).as_str(),
        "creationDateTime": created,
        "lastUpdatedDateTime": updated,
    })
}

pub fn describe(cx: &mut Cx, input: &Input) -> Result<Value, ApiError> {
    let arn = input.arn("eventTrackerArn")?;
    let t = cx.state.find::<EventTracker>(arn, cx.now)?;
    let mut out = summary(t, cx.now);
    if let Some(obj) = out.as_object_mut() {
        obj.insert("accountId".into(), json!(cx.scope.account));
        obj.insert("trackingId".into(), json!(t.tracking_id));
        obj.insert("datasetGroupArn".into(), json!(t.group_arn));
    }
    Ok(json!({ "eventTracker": compact(out) }))
}

pub fn list(cx: &mut Cx, input: &Input) -> Result<Value, ApiError> {
    let group = input.opt_arn("datasetGroupArn")?;
    let now = cx.now;
    let region = &cx.scope.region;
    let items = cx
        .state
        .event_trackers
        .values()
        .filter(|t| &t.meta.region == region && !t.meta.is_gone(now))
        .filter(|t| group.is_none_or(|g| t.group_arn == g))
        .map(|t| (t.meta.seq, t))
        .collect();
    let query = format!("{region}|{}", group.unwrap_or_default());
    list_page(input, "ListEventTrackers", &query, "eventTrackers", items, |t| {
        summary(t, now)
    })
}

pub fn delete(cx: &mut Cx, input: &Input) -> Result<Value, ApiError> {
    let arn = input.arn("eventTrackerArn")?;
    delete_resource::<EventTracker>(cx, arn, true)
}
