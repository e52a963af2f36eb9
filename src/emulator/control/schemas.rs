//! CreateSchema, DescribeSchema, ListSchemas, DeleteSchema. Schemas have no status: they exist at once.

use serde_json::{Value, json};

use super::{Cx, compact, ensure_new, list_page, quota, times};
use crate::emulator::arn::Kind;
use crate::emulator::error::ApiError;
use crate::emulator::input::Input;
use crate::emulator::lifecycle::Timeline;
use crate::emulator::state::{Dataset, Schema};
use crate::spec::avro::{self, MAX_SCHEMA_LEN};
use crate::spec::kinds::Domain;

pub fn create(cx: &mut Cx, input: &Input) -> Result<Value, ApiError> {
    let name = input.name("name")?;
    let text = input.text("schema", 1, MAX_SCHEMA_LEN)?;
    let domain = input
        .opt_enum("domain", &["ECOMMERCE", "VIDEO_ON_DEMAND"])?
        .map(|d| d.parse::<Domain>().map_err(ApiError::invalid))
        .transpose()?;
    let parsed = avro::parse_str(text).map_err(|issues| {
        let all: Vec<String> = issues.iter().map(ToString::to_string).collect();
        ApiError::invalid(format!("Invalid schema: {}", all.join("; ")))
    })?;
    let arn = cx.scope.arn(Kind::Schema, name);
    ensure_new::<Schema>(cx.state, &arn, cx.now)?;
    let region = cx.scope.region.clone();
    let count = cx
        .state
        .live::<Schema>(cx.now, |s| s.meta.region == region)
        .count();
    quota(count, cx.quotas.schemas, "in ACTIVE state")?;
    let meta = cx.meta(arn.clone(), name, Timeline::immediate(cx.now), Vec::new());
    cx.state.schemas.insert(
        arn.clone(),
        Schema {
            meta,
            text: text.to_string(),
            parsed,
            domain,
        },
    );
    Ok(json!({ "schemaArn": arn }))
}

fn summary(s: &Schema, now: f64) -> Value {
    let (created, updated) = times(&s.meta, now);
    compact(json!({
        "name": s.meta.name,
        "schemaArn": s.meta.arn,
        "creationDateTime": created,
        "lastUpdatedDateTime": updated,
        "domain": s.domain.map(Domain::as_str),
    }))
}

pub fn describe(cx: &mut Cx, input: &Input) -> Result<Value, ApiError> {
    let arn = input.arn("schemaArn")?;
    let s = cx.state.find::<Schema>(arn, cx.now)?;
    let mut out = summary(s, cx.now);
    if let Some(obj) = out.as_object_mut() {
        obj.insert("schema".into(), json!(s.text));
    }
    Ok(json!({ "schema": out }))
}

pub fn list(cx: &mut Cx, input: &Input) -> Result<Value, ApiError> {
    let now = cx.now;
    let region = &cx.scope.region;
    let items = cx
        .state
        .schemas
        .values()
        .filter(|s| &s.meta.region == region && !s.meta.is_gone(now))
        .map(|s| (s.meta.seq, s))
        .collect();
    list_page(input, "ListSchemas", region, "schemas", items, |s| {
        summary(s, now)
    })
}

pub fn delete(cx: &mut Cx, input: &Input) -> Result<Value, ApiError> {
    let arn = input.arn("schemaArn")?;
    cx.state.find::<Schema>(arn, cx.now)?;
    let user = cx
        .state
        .present::<Dataset>(cx.now, |d| {
            d.schema_arn == arn || d.update.as_ref().is_some_and(|u| !u.applied && u.config == arn)
        })
        .next();
    if let Some(d) = user {
        return Err(ApiError::in_use(format!(
            "The schema {arn} is used by the dataset {}",
            d.meta.arn
        )));
    }
    cx.state.schemas.remove(arn);
    cx.changed = true;
    Ok(json!({}))
}
