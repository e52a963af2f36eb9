//! CreateFilter, DescribeFilter, ListFilters (result key `Filters`), DeleteFilter.

use serde_json::{Value, json};

use super::{Cx, compact, delete_resource, ensure_new, list_page, quota, times};
use crate::emulator::arn::Kind;
use crate::emulator::error::ApiError;
use crate::emulator::input::Input;
use crate::emulator::lifecycle::Status;
use crate::emulator::state::{DatasetGroup, Filter};

pub fn create(cx: &mut Cx, input: &Input) -> Result<Value, ApiError> {
    let name = input.name("name")?;
    let group_arn = input.arn("datasetGroupArn")?;
    let expression = input.text("filterExpression", 1, 2500)?;
    let tags = input.tags("tags")?;
    check_expression(expression)?;
    let now = cx.now;
    let group = cx.state.find::<DatasetGroup>(group_arn, now)?;
    // CreateFilter models no ResourceInUse, so an unusable group is an input error here.
    let status = group.meta.status(now);
    if status != Status::Active {
        return Err(ApiError::invalid(format!(
            "The dataset group {group_arn} is not ACTIVE (status {})",
            status.as_str()
        )));
    }
    let arn = cx.scope.arn(Kind::Filter, name);
    ensure_new::<Filter>(cx.state, &arn, now)?;
    let count = cx.state.live::<Filter>(now, |f| f.group_arn == group_arn).count();
    quota(
        count,
        cx.quotas.filters_per_group,
        "in ACTIVE state for this dataset group",
    )?;
    let timeline = cx.plain_timeline(Kind::Filter, &[name]);
    let meta = cx.meta(arn.clone(), name, timeline, tags);
    cx.state.filters.insert(
        arn.clone(),
        Filter {
            meta,
            group_arn: group_arn.to_string(),
            expression: expression.to_string(),
        },
    );
    Ok(json!({ "filterArn": arn }))
}

/// Rejects an expression Personalize would not parse.
fn check_expression(expression: &str) -> Result<(), ApiError> {
    crate::spec::filter::parse(expression)
        .map(|_| ())
        .map_err(|e| ApiError::invalid(format!("Invalid filter expression: {e}")))
}

fn summary(f: &Filter, now: f64) -> Value {
    let (created, updated) = times(&f.meta, now);
    compact(json!({
        "name": f.meta.name,
        "filterArn": f.meta.arn,
        "creationDateTime": created,
        "lastUpdatedDateTime": updated,
        "datasetGroupArn": f.group_arn,
        "failureReason": f.meta.failure(now),
        "status": f.meta.status(now).as_str(),
    }))
}

pub fn describe(cx: &mut Cx, input: &Input) -> Result<Value, ApiError> {
    let arn = input.arn("filterArn")?;
    let f = cx.state.find::<Filter>(arn, cx.now)?;
    let mut out = summary(f, cx.now);
    if let Some(obj) = out.as_object_mut() {
        obj.insert("filterExpression".into(), json!(f.expression));
    }
    Ok(json!({ "filter": out }))
}

pub fn list(cx: &mut Cx, input: &Input) -> Result<Value, ApiError> {
    let group = input.opt_arn("datasetGroupArn")?;
    let now = cx.now;
    let region = &cx.scope.region;
    let items = cx
        .state
        .filters
        .values()
        .filter(|f| &f.meta.region == region && !f.meta.is_gone(now))
        .filter(|f| group.is_none_or(|g| f.group_arn == g))
        .map(|f| (f.meta.seq, f))
        .collect();
    let query = format!("{region}|{}", group.unwrap_or_default());
    // The model spells this result key with a capital F (docs/personalize.md#serialization).
    list_page(input, "ListFilters", &query, "Filters", items, |f| {
        summary(f, now)
    })
}

pub fn delete(cx: &mut Cx, input: &Input) -> Result<Value, ApiError> {
    let arn = input.arn("filterArn")?;
    delete_resource::<Filter>(cx, arn, true)
}
