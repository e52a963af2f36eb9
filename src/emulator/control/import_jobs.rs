//! CreateDatasetImportJob, DescribeDatasetImportJob, ListDatasetImportJobs.

use serde_json::{Value, json};

use super::{Cx, active, compact, ensure_new, list_page, quota, times};
use crate::emulator::arn::Kind;
use crate::emulator::error::ApiError;
use crate::emulator::input::{Input, check_s3_location};
use crate::emulator::job::JobKind;
use crate::emulator::state::{Dataset, ImportJob};

pub fn create(cx: &mut Cx, input: &Input) -> Result<Value, ApiError> {
    let name = input.name("jobName")?;
    let dataset_arn = input.arn("datasetArn")?;
    let source = input.object("dataSource")?;
    let location = source.text("dataLocation", 0, 256)?;
    check_s3_location("dataSource.dataLocation", location)?;
    let role_arn = input.opt_role_arn("roleArn")?;
    let mode = input
        .opt_enum("importMode", &["FULL", "INCREMENTAL"])?
        .unwrap_or("FULL");
    let publish = input.opt_bool("publishAttributionMetricsToS3")?;
    let tags = input.tags("tags")?;
    let now = cx.now;
    let arn = cx.scope.arn(Kind::DatasetImportJob, name);
    ensure_new::<ImportJob>(cx.state, &arn, now)?;
    let dataset = active::<Dataset>(cx.state, dataset_arn, now)?;
    if mode == "INCREMENTAL" && !dataset.bulk_imported {
        return Err(ApiError::invalid(format!(
            "The dataset {dataset_arn} has no bulk data yet: the first import must use importMode FULL"
        )));
    }
    let region = cx.scope.region.clone();
    let pending = cx
        .state
        .live::<ImportJob>(now, |j| {
            j.meta.region == region && j.meta.status(now).is_creating()
        })
        .count();
    quota(
        pending,
        cx.quotas.pending_import_jobs,
        "with PENDING or IN_PROGRESS status",
    )?;
    let timeline = cx.work_timeline(Kind::DatasetImportJob, &[name]);
    let meta = cx.meta(arn.clone(), name, timeline, tags);
    cx.queue(JobKind::Import, &meta);
    cx.state.import_jobs.insert(
        arn.clone(),
        ImportJob {
            meta,
            dataset_arn: dataset_arn.to_string(),
            data_location: location.to_string(),
            role_arn: role_arn.map(str::to_string),
            import_mode: mode.to_string(),
            publish_attribution_metrics: publish,
        },
    );
    Ok(json!({ "datasetImportJobArn": arn }))
}

fn summary(j: &ImportJob, now: f64) -> Value {
    let (created, updated) = times(&j.meta, now);
    compact(json!({
        "datasetImportJobArn": j.meta.arn,
        "jobName": j.meta.name,
        "status": j.meta.status(now).as_str(),
        "creationDateTime": created,
        "lastUpdatedDateTime": updated,
        "failureReason": j.meta.failure(now),
        "importMode": j.import_mode,
    }))
}

pub fn describe(cx: &mut Cx, input: &Input) -> Result<Value, ApiError> {
    let arn = input.arn("datasetImportJobArn")?;
    let j = cx.state.find::<ImportJob>(arn, cx.now)?;
    let mut out = summary(j, cx.now);
    if let Some(obj) = out.as_object_mut() {
        obj.insert("datasetArn".into(), json!(j.dataset_arn));
        obj.insert("dataSource".into(), json!({ "dataLocation": j.data_location }));
        if let Some(r) = &j.role_arn {
            obj.insert("roleArn".into(), json!(r));
        }
        if let Some(p) = j.publish_attribution_metrics {
            obj.insert("publishAttributionMetricsToS3".into(), json!(p));
        }
    }
    Ok(json!({ "datasetImportJob": out }))
}

pub fn list(cx: &mut Cx, input: &Input) -> Result<Value, ApiError> {
    let dataset = input.opt_arn("datasetArn")?;
    let now = cx.now;
    let region = &cx.scope.region;
    let items = cx
        .state
        .import_jobs
        .values()
        .filter(|j| &j.meta.region == region && dataset.is_none_or(|d| j.dataset_arn == d))
        .map(|j| (j.meta.seq, j))
        .collect();
    let query = format!("{region}|{}", dataset.unwrap_or_default());
    list_page(
        input,
        "ListDatasetImportJobs",
        &query,
        "datasetImportJobs",
        items,
        |j| summary(j, now),
    )
}
