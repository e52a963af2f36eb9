//! CreateDataset, DescribeDataset, ListDatasets, UpdateDataset, DeleteDataset.

use serde_json::{Value, json};

use super::{Cx, active, compact, delete_resource, ensure_new, list_page, times};
use crate::emulator::arn::Kind;
use crate::emulator::error::{ApiError, constraint};
use crate::emulator::input::Input;
use crate::emulator::lifecycle::Timeline;
use crate::emulator::state::{
    Dataset, DatasetGroup, ImportJob, PendingUpdate, Schema, SolutionVersion, State,
};
use crate::spec::avro;
use crate::spec::kinds::{DatasetType, Domain};

/// Checks that `schema` suits a dataset of `ty` in `group` (domain and field rules).
fn check_schema_fits(schema: &Schema, ty: DatasetType, group: &DatasetGroup) -> Result<(), ApiError> {
    if schema.domain != group.domain {
        let show = |d: Option<Domain>| d.map_or("no domain (Custom)", Domain::as_str);
        return Err(ApiError::invalid(format!(
            "The schema {} has {} but the dataset group {} has {}",
            schema.meta.arn,
            show(schema.domain),
            group.meta.arn,
            show(group.domain)
        )));
    }
    let issues = avro::check_dataset(&schema.parsed, ty, group.domain);
    if !issues.is_empty() {
        let all: Vec<String> = issues.iter().map(ToString::to_string).collect();
        return Err(ApiError::invalid(format!(
            "The schema {} cannot be used for a dataset of type {}: {}",
            schema.meta.arn,
            ty.api_name(),
            all.join("; ")
        )));
    }
    Ok(())
}

pub fn create(cx: &mut Cx, input: &Input) -> Result<Value, ApiError> {
    let name = input.name("name")?;
    let schema_arn = input.arn("schemaArn")?;
    let group_arn = input.arn("datasetGroupArn")?;
    let type_text = input.text("datasetType", 0, 256)?;
    let dataset_type: DatasetType = type_text.parse().map_err(|_| {
        constraint(
            "datasetType",
            type_text,
            "Member must be one of Interactions, Items, Users, Actions, Action_Interactions",
        )
    })?;
    let tags = input.tags("tags")?;
    let now = cx.now;
    let group = active::<DatasetGroup>(cx.state, group_arn, now)?;
    let schema = cx.state.find::<Schema>(schema_arn, now)?;
    check_schema_fits(schema, dataset_type, group)?;
    let arn = cx.scope.arn(
        Kind::Dataset,
        &format!("{}/{}", group.meta.name, dataset_type.arn_suffix()),
    );
    // One dataset per type: the ARN is derived from the group and type, so a second is a duplicate.
    ensure_new::<Dataset>(cx.state, &arn, now)?;
    let timeline = cx.plain_timeline(Kind::Dataset, &[name]);
    let meta = cx.meta(arn.clone(), name, timeline, tags);
    cx.state.datasets.insert(
        arn.clone(),
        Dataset {
            meta,
            group_arn: group_arn.to_string(),
            dataset_type,
            schema_arn: schema_arn.to_string(),
            update: None,
            bulk_imported: false,
        },
    );
    Ok(json!({ "datasetArn": arn }))
}

pub fn describe(cx: &mut Cx, input: &Input) -> Result<Value, ApiError> {
    let arn = input.arn("datasetArn")?;
    let now = cx.now;
    let d = cx.state.find::<Dataset>(arn, now)?;
    let (created, updated) = times(&d.meta, now);
    let latest = d.update.as_ref().map(|u| {
        json!({
            "schemaArn": u.config,
            "status": u.timeline.status(now).as_str(),
            "failureReason": u.timeline.failure(now),
            "creationDateTime": u.created,
            "lastUpdatedDateTime": u.timeline.last_updated(now),
        })
    });
    Ok(json!({ "dataset": compact(json!({
        "name": d.meta.name,
        "datasetArn": d.meta.arn,
        "datasetGroupArn": d.group_arn,
        "datasetType": d.dataset_type.api_name(),
        "schemaArn": d.schema_arn,
        "status": d.meta.status(now).as_str(),
        "creationDateTime": created,
        "lastUpdatedDateTime": updated,
        "latestDatasetUpdate": latest,
    })) }))
}

pub fn list(cx: &mut Cx, input: &Input) -> Result<Value, ApiError> {
    let group = input.opt_arn("datasetGroupArn")?;
    let now = cx.now;
    let region = &cx.scope.region;
    let items = cx
        .state
        .datasets
        .values()
        .filter(|d| &d.meta.region == region && !d.meta.is_gone(now))
        .filter(|d| group.is_none_or(|g| d.group_arn == g))
        .map(|d| (d.meta.seq, d))
        .collect();
    let query = format!("{region}|{}", group.unwrap_or_default());
    list_page(input, "ListDatasets", &query, "datasets", items, |d| {
        let (created, updated) = times(&d.meta, now);
        json!({
            "name": d.meta.name,
            "datasetArn": d.meta.arn,
            "datasetType": d.dataset_type.api_name(),
            "status": d.meta.status(now).as_str(),
            "creationDateTime": created,
            "lastUpdatedDateTime": updated,
        })
    })
}

pub fn update(cx: &mut Cx, input: &Input) -> Result<Value, ApiError> {
    let arn = input.arn("datasetArn")?;
    let schema_arn = input.arn("schemaArn")?;
    let now = cx.now;
    let dataset = active::<Dataset>(cx.state, arn, now)?;
    if let Some(u) = &dataset.update
        && !u.is_settled(now)
    {
        return Err(ApiError::in_use(format!(
            "The dataset {arn} has an update in progress (status {})",
            u.timeline.status(now).as_str()
        )));
    }
    let group = cx.state.find::<DatasetGroup>(&dataset.group_arn, now)?;
    let schema = cx.state.find::<Schema>(schema_arn, now)?;
    check_schema_fits(schema, dataset.dataset_type, group)?;
    // As Personalize: Items and Users only, every field kept as it was, new fields nullable.
    let current = cx.state.find::<Schema>(&dataset.schema_arn, now)?;
    if let Err(problems) = avro::in_place_change(&current.parsed, &schema.parsed, dataset.dataset_type) {
        return Err(ApiError::invalid(format!(
            "The schema {schema_arn} cannot replace {} on the dataset {arn}: {}",
            current.meta.arn,
            problems.join("; ")
        )));
    }
    let failure = cx.failures.failure_for(Kind::Dataset, &[&dataset.meta.name]);
    let timeline = Timeline::created(now, cx.durations.update(), failure);
    let dataset = cx.state.find_mut::<Dataset>(arn, now)?;
    dataset.update = Some(PendingUpdate {
        config: schema_arn.to_string(),
        created: now,
        timeline,
        applied: false,
    });
    cx.changed = true;
    Ok(json!({ "datasetArn": arn }))
}

/// Whether data work on the dataset (or training in its group) is pending or in progress.
fn busy_with(state: &State, dataset: &Dataset, now: f64) -> Option<String> {
    if let Some(job) = state
        .live::<ImportJob>(now, |j| {
            j.dataset_arn == dataset.meta.arn && j.meta.status(now).is_creating()
        })
        .next()
    {
        return Some(format!("the import job {} is in progress", job.meta.arn));
    }
    state
        .live::<SolutionVersion>(now, |v| {
            v.group_arn == dataset.group_arn && v.meta.status(now).is_creating()
        })
        .next()
        .map(|v| format!("the solution version {} is training on it", v.meta.arn))
}

pub fn delete(cx: &mut Cx, input: &Input) -> Result<Value, ApiError> {
    let arn = input.arn("datasetArn")?;
    let dataset = cx.state.find::<Dataset>(arn, cx.now)?;
    if let Some(why) = busy_with(cx.state, dataset, cx.now) {
        return Err(ApiError::in_use(format!(
            "The dataset {arn} cannot be deleted: {why}"
        )));
    }
    delete_resource::<Dataset>(cx, arn, true)
}
