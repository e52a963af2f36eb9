//! Batch inference and batch segment jobs: Create, Describe and List of each.

use serde_json::{Value, json};

use super::{Cx, active, compact, ensure_new, list_page, quota, times};
use crate::emulator::error::ApiError;
use crate::emulator::input::{Input, check_s3_location};
use crate::emulator::job::JobKind;
use crate::emulator::recipes::{self, RecipeType};
use crate::emulator::state::{
    BatchInferenceJob, BatchJob, BatchSegmentJob, Filter, Resource, SolutionVersion, State, Store,
};

/// `jobInput{s3DataSource{path, kmsKeyArn}}` / `jobOutput{s3DataDestination{...}}`: the path.
fn s3_path(input: &Input, outer: &str, inner: &str) -> Result<String, ApiError> {
    let location = input.object(outer)?.object(inner)?;
    let path = location.text("path", 0, 256)?;
    check_s3_location(&format!("{outer}.{inner}.path"), path)?;
    location.opt_kms_arn("kmsKeyArn")?;
    Ok(path.to_string())
}

/// What both kinds of job check and record; `kind_check` vets the version's recipe.
fn new_job<T: Resource>(
    cx: &mut Cx,
    input: &Input,
    kind_check: impl Fn(&recipes::Recipe) -> Result<(), String>,
    job: JobKind,
    max_pending: usize,
) -> Result<BatchJob, ApiError>
where
    State: Store<T>,
{
    let name = input.name("jobName")?;
    let version_arn = input.arn("solutionVersionArn")?;
    let input_path = s3_path(input, "jobInput", "s3DataSource")?;
    let output_path = s3_path(input, "jobOutput", "s3DataDestination")?;
    let role_arn = input.role_arn("roleArn")?;
    let filter_arn = input.opt_arn("filterArn")?;
    let num_results = input.opt_int("numResults", 1, 5_000_000)?;
    let tags = input.tags("tags")?;
    let now = cx.now;
    let arn = cx.scope.arn(T::KIND, name);
    ensure_new::<T>(cx.state, &arn, now)?;
    let version = active::<SolutionVersion>(cx.state, version_arn, now)?;
    let recipe = recipes::by_arn(&version.recipe_arn)
        .ok_or_else(|| ApiError::invalid(format!("{version_arn} has no known recipe")))?;
    kind_check(recipe).map_err(ApiError::invalid)?;
    if let Some(filter_arn) = filter_arn {
        let filter = active::<Filter>(cx.state, filter_arn, now)?;
        if filter.group_arn != version.group_arn {
            return Err(ApiError::invalid(format!(
                "The filter {filter_arn} belongs to another dataset group than {version_arn}"
            )));
        }
    }
    let region = cx.scope.region.clone();
    let pending = cx
        .state
        .live::<T>(now, |j| {
            j.meta().region == region && j.meta().status(now).is_creating()
        })
        .count();
    quota(pending, max_pending, "with PENDING or IN_PROGRESS status")?;
    let timeline = cx.work_timeline(T::KIND, &[name]);
    let meta = cx.meta(arn, name, timeline, tags);
    cx.queue(job, &meta);
    Ok(BatchJob {
        meta,
        solution_version_arn: version_arn.to_string(),
        input_path,
        output_path,
        job_input: input.opt_value("jobInput").unwrap_or(Value::Null),
        job_output: input.opt_value("jobOutput").unwrap_or(Value::Null),
        role_arn: role_arn.to_string(),
        filter_arn: filter_arn.map(str::to_string),
        num_results,
        config: None,
        mode: None,
        theme_config: None,
    })
}

pub fn create_inference(cx: &mut Cx, input: &Input) -> Result<Value, ApiError> {
    let mode = input.opt_enum("batchInferenceJobMode", &["BATCH_INFERENCE", "THEME_GENERATION"])?;
    let theme = input.opt_object("themeGenerationConfig")?;
    if mode == Some("THEME_GENERATION") {
        let Some(theme) = &theme else {
            return Err(ApiError::invalid(
                "THEME_GENERATION needs a themeGenerationConfig",
            ));
        };
        theme
            .object("fieldsForThemeGeneration")?
            .text("itemName", 1, 150)?;
    }
    input.opt_object("batchInferenceJobConfig")?;
    let max_pending = cx.quotas.pending_batch_inference_jobs;
    let mut job = new_job::<BatchInferenceJob>(
        cx,
        input,
        |r| {
            if r.allows_batch_inference() {
                Ok(())
            } else {
                Err(format!(
                    "The recipe {} does not support batch inference jobs",
                    r.name
                ))
            }
        },
        JobKind::BatchInference,
        max_pending,
    )?;
    job.config = input.opt_value("batchInferenceJobConfig");
    job.mode = mode.map(str::to_string);
    job.theme_config = input.opt_value("themeGenerationConfig");
    let arn = job.meta.arn.clone();
    cx.state
        .batch_inference_jobs
        .insert(arn.clone(), BatchInferenceJob(job));
    Ok(json!({ "batchInferenceJobArn": arn }))
}

pub fn create_segment(cx: &mut Cx, input: &Input) -> Result<Value, ApiError> {
    let max_pending = cx.quotas.pending_batch_segment_jobs;
    let job = new_job::<BatchSegmentJob>(
        cx,
        input,
        |r| {
            if r.recipe_type == RecipeType::UserSegmentation {
                Ok(())
            } else {
                Err(format!(
                    "Batch segment jobs need a USER_SEGMENTATION recipe; {} is {}",
                    r.name, r.recipe_type
                ))
            }
        },
        JobKind::BatchSegment,
        max_pending,
    )?;
    let arn = job.meta.arn.clone();
    cx.state
        .batch_segment_jobs
        .insert(arn.clone(), BatchSegmentJob(job));
    Ok(json!({ "batchSegmentJobArn": arn }))
}

/// The summary members; `arn_key` names the job's ARN member.
fn summary(j: &BatchJob, arn_key: &str, now: f64) -> Value {
    let (created, updated) = times(&j.meta, now);
    compact(json!({
        arn_key: j.meta.arn,
        "jobName": j.meta.name,
        "status": j.meta.status(now).as_str(),
        "creationDateTime": created,
        "lastUpdatedDateTime": updated,
        "failureReason": j.meta.failure(now),
        "solutionVersionArn": j.solution_version_arn,
        "batchInferenceJobMode": j.mode,
    }))
}

fn detail(j: &BatchJob, arn_key: &str, now: f64) -> Value {
    let mut out = summary(j, arn_key, now);
    if let Some(obj) = out.as_object_mut() {
        obj.insert("filterArn".into(), json!(j.filter_arn));
        obj.insert("numResults".into(), json!(j.num_results));
        obj.insert("jobInput".into(), j.job_input.clone());
        obj.insert("jobOutput".into(), j.job_output.clone());
        obj.insert("roleArn".into(), json!(j.role_arn));
        obj.insert("batchInferenceJobConfig".into(), json!(j.config));
        obj.insert("themeGenerationConfig".into(), json!(j.theme_config));
    }
    compact(out)
}

pub fn describe_inference(cx: &mut Cx, input: &Input) -> Result<Value, ApiError> {
    let arn = input.arn("batchInferenceJobArn")?;
    let j = cx.state.find::<BatchInferenceJob>(arn, cx.now)?;
    Ok(json!({ "batchInferenceJob": detail(&j.0, "batchInferenceJobArn", cx.now) }))
}

pub fn describe_segment(cx: &mut Cx, input: &Input) -> Result<Value, ApiError> {
    let arn = input.arn("batchSegmentJobArn")?;
    let j = cx.state.find::<BatchSegmentJob>(arn, cx.now)?;
    Ok(json!({ "batchSegmentJob": detail(&j.0, "batchSegmentJobArn", cx.now) }))
}

fn list_jobs<'a>(
    cx: &Cx,
    input: &Input,
    jobs: impl Iterator<Item = &'a BatchJob>,
    op: &str,
    result_key: &str,
    arn_key: &str,
) -> Result<Value, ApiError> {
    let version = input.opt_arn("solutionVersionArn")?;
    let (now, region) = (cx.now, &cx.scope.region);
    let items = jobs
        .filter(|j| &j.meta.region == region && version.is_none_or(|v| j.solution_version_arn == v))
        .map(|j| (j.meta.seq, j))
        .collect();
    let query = format!("{region}|{}", version.unwrap_or_default());
    list_page(input, op, &query, result_key, items, |j| summary(j, arn_key, now))
}

pub fn list_inference(cx: &mut Cx, input: &Input) -> Result<Value, ApiError> {
    let jobs = cx.state.batch_inference_jobs.values().map(|j| &j.0);
    list_jobs(
        cx,
        input,
        jobs,
        "ListBatchInferenceJobs",
        "batchInferenceJobs",
        "batchInferenceJobArn",
    )
}

pub fn list_segment(cx: &mut Cx, input: &Input) -> Result<Value, ApiError> {
    let jobs = cx.state.batch_segment_jobs.values().map(|j| &j.0);
    list_jobs(
        cx,
        input,
        jobs,
        "ListBatchSegmentJobs",
        "batchSegmentJobs",
        "batchSegmentJobArn",
    )
}
