//! The parameter file of a dataset group that exists in Personalize, read back from it (the
//! `schedules import-dataset-group` command).
//!
//! Everything is found by listing under the group (datasets with their schemas, event tracker,
//! filters, solutions with their campaigns and the batch jobs of their versions, recommenders) and
//! described, tags included, so that `plan` on the written file finds every resource as it is. The
//! reference's exporter missed recommenders and looked for batch jobs under solutions instead of
//! solution versions, so it never exported any; both are covered here.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use aws_sdk_personalize::types as t;

use crate::plan::Phase;
use crate::spec::names::{self, BatchEntry};
use crate::spec::schedule::Schedule;

use super::api::{Api, ApiError};
use super::observe::find_group;
use super::{Reconciler, convert};

/// The schedules to write into the exported file (Personalize knows nothing of them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportSchedules {
    /// `datasetGroup.workflowConfig.schedules.import`.
    pub import: Option<Schedule>,
    /// `full` schedule by solution name.
    pub full: BTreeMap<String, Schedule>,
    /// `update` schedule by solution name (a solution may have both).
    pub update: BTreeMap<String, Schedule>,
}

/// A parameter file read from Personalize.
#[derive(Debug, Clone, PartialEq)]
pub struct Exported {
    /// The parameter file, keys in the order of the README.
    pub document: Value,
    /// What was left out or guessed, one sentence each.
    pub warnings: Vec<String>,
}

/// Why a dataset group could not be exported.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("dataset group {group} does not exist in Personalize")]
    GroupNotFound { group: String },
    #[error(
        "dataset group {group} has no solution named {solution} (given with -{flag}); its solutions: {known}"
    )]
    UnknownSolution {
        group: String,
        solution: String,
        flag: char,
        known: String,
    },
    #[error("reading dataset group {group} from Personalize: {source}")]
    Api {
        group: String,
        #[source]
        source: ApiError,
    },
}

/// Every page of a Personalize listing: `$request` builds the call from `$token`, `$items` names
/// the page's list.
macro_rules! list_all {
    ($api:expr, $op:literal, $target:expr, $items:ident, |$token:ident| $request:expr) => {{
        let mut out = Vec::new();
        let mut $token: Option<String> = None;
        loop {
            let page = $api.call($op, $target, || $request).await?;
            out.extend(page.$items().iter().cloned());
            match page.next_token {
                Some(t) if !t.is_empty() => $token = Some(t),
                _ => break,
            }
        }
        out
    }};
}

/// Sets `key` when there is a value.
fn put(map: &mut Map<String, Value>, key: &str, value: Option<Value>) {
    if let Some(v) = value {
        map.insert(key.to_string(), v);
    }
}

/// A config object, unless Personalize reported it empty.
fn config(value: Option<Value>) -> Option<Value> {
    value.filter(|v| v.as_object().is_none_or(|o| !o.is_empty()))
}

fn time(dt: Option<&aws_smithy_types::DateTime>) -> DateTime<Utc> {
    convert::time(dt).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// A listed batch job, reduced to what choosing a job per entry needs.
#[derive(Debug, Clone, PartialEq)]
struct JobSeen {
    name: String,
    arn: String,
    created: DateTime<Utc>,
}

/// The job whose configuration stands for each batch entry of a solution, in entry order.
///
/// Jobs named by personalize-ops (`batch_<sol>_<ts>` for a lone entry, `batch_<sol>_<n>_<ts>` for
/// entry n) give one entry each, the newest job of the entry standing for it; an entry number
/// without a job gives `None`. Without such jobs, the newest job of another naming stands for a
/// single entry.
fn batch_entries<'j>(
    solution: &str,
    jobs: &'j [JobSeen],
    warnings: &mut Vec<String>,
    kind: &str,
) -> Vec<Option<&'j JobSeen>> {
    let newest = |it: &mut dyn Iterator<Item = &'j JobSeen>| it.max_by_key(|j| (j.created, j.arn.clone()));
    let number = |job: &JobSeen| {
        (1..=MAX_BATCH_ENTRIES).find(|n| {
            names::is_batch_job_of(
                &job.name,
                solution,
                BatchEntry {
                    index: n - 1,
                    count: MAX_BATCH_ENTRIES,
                },
            )
        })
    };
    let numbered: Vec<(usize, &JobSeen)> = jobs.iter().filter_map(|j| number(j).map(|n| (n, j))).collect();
    if let Some(count) = numbered.iter().map(|(n, _)| *n).max() {
        return (1..=count)
            .map(|n| {
                let found = newest(&mut numbered.iter().filter(|(m, _)| *m == n).map(|(_, j)| *j));
                if found.is_none() {
                    warnings.push(format!(
                        "solution {solution}: {kind} entry {n} has no job left; it is exported as {{}}"
                    ));
                }
                found
            })
            .collect();
    }
    let lone = BatchEntry { index: 0, count: 1 };
    if let Some(j) = newest(
        &mut jobs
            .iter()
            .filter(|j| names::is_batch_job_of(&j.name, solution, lone)),
    ) {
        return vec![Some(j)];
    }
    match newest(&mut jobs.iter()) {
        Some(j) => {
            warnings.push(format!(
                "solution {solution}: {} {kind}(s) not named by personalize-ops; the newest ({}) gives the one entry exported, and the next apply runs it under the name batch_{solution}_<time>",
                jobs.len(),
                j.name
            ));
            vec![Some(j)]
        }
        None => Vec::new(),
    }
}

/// The most batch entries of one kind recognised in one solution's job names.
const MAX_BATCH_ENTRIES: usize = 100;

struct Exporter<'a> {
    api: &'a Api,
    warnings: Vec<String>,
}

impl Exporter<'_> {
    /// The resource's tags as the file writes them; `None` without tags. Keys under `aws:` are
    /// AWS's own and cannot be set, so they are left out.
    async fn tags(&self, arn: &str) -> Result<Option<Value>, ApiError> {
        let r = self
            .api
            .call("ListTagsForResource", arn, || {
                self.api.client.list_tags_for_resource().resource_arn(arn).send()
            })
            .await?;
        let tags: Vec<Value> = r
            .tags()
            .iter()
            .filter(|t| !t.tag_key.starts_with("aws:"))
            .map(|t| json!({"tagKey": t.tag_key, "tagValue": t.tag_value}))
            .collect();
        Ok((!tags.is_empty()).then_some(Value::Array(tags)))
    }

    /// Whether a listed resource goes into the file: failed and deleting ones are left out (warned).
    fn usable(&mut self, kind: &str, name: &str, status: Option<&str>) -> bool {
        let status = status.unwrap_or_default();
        match Phase::of(status) {
            Phase::Active | Phase::Pending => true,
            Phase::Failed | Phase::Unusable => {
                self.warnings.push(format!("{kind} {name} is {status}: left out"));
                false
            }
        }
    }

    async fn dataset_group(&mut self, arn: &str, schedules: &ExportSchedules) -> Result<Value, ApiError> {
        let g = self
            .api
            .call("DescribeDatasetGroup", arn, || {
                self.api
                    .client
                    .describe_dataset_group()
                    .dataset_group_arn(arn)
                    .send()
            })
            .await?
            .dataset_group
            .unwrap_or_else(|| t::DatasetGroup::builder().build());
        let mut service = Map::new();
        put(&mut service, "name", g.name.map(Value::String));
        put(&mut service, "domain", g.domain.map(|d| json!(d.as_str())));
        put(&mut service, "roleArn", g.role_arn.map(Value::String));
        put(&mut service, "kmsKeyArn", g.kms_key_arn.map(Value::String));
        put(&mut service, "tags", self.tags(arn).await?);
        let mut group = json!({"serviceConfig": service});
        if let Some(import) = &schedules.import {
            group["workflowConfig"] = json!({"schedules": {"import": import.to_string()}});
        }
        Ok(group)
    }

    async fn datasets(&mut self, group_arn: &str) -> Result<Option<Value>, ApiError> {
        let api = self.api;
        let listed = list_all!(api, "ListDatasets", group_arn, datasets, |token| api
            .client
            .list_datasets()
            .dataset_group_arn(group_arn)
            .set_next_token(token.clone())
            .max_results(100)
            .send());
        let mut out = Map::new();
        let mut newest_import: Option<(DateTime<Utc>, String, Option<String>)> = None;
        for d in listed {
            let name = d.name.clone().unwrap_or_default();
            let ty = d.dataset_type.clone().unwrap_or_default();
            let key = match ty.to_ascii_lowercase().as_str() {
                key @ ("interactions" | "users" | "items") => key.to_string(),
                _ => {
                    self.warnings.push(format!(
                        "dataset {name} has type {ty}, which parameter files do not declare: left out"
                    ));
                    continue;
                }
            };
            if !self.usable("dataset", &name, d.status.as_deref()) {
                continue;
            }
            let arn = d.dataset_arn.clone().unwrap_or_default();
            out.insert(key, self.dataset(&name, &arn).await?);
            if let Some(newest) = self.newest_active_import(&arn).await?
                && newest_import.as_ref().is_none_or(|(t, _, _)| newest.0 > *t)
            {
                newest_import = Some(newest);
            }
        }
        if out.is_empty() {
            return Ok(None);
        }
        // The import settings are shared by every import: the newest import job's stand for them.
        let mut import = Map::new();
        if let Some((_, arn, mode)) = newest_import {
            put(
                &mut import,
                "importMode",
                mode.filter(|m| m != "FULL").map(Value::String),
            );
            put(&mut import, "tags", self.tags(&arn).await?);
        }
        let mut datasets = Map::new();
        if !import.is_empty() {
            datasets.insert("serviceConfig".into(), Value::Object(import));
        }
        for key in ["interactions", "users", "items"] {
            put(&mut datasets, key, out.remove(key));
        }
        Ok(Some(Value::Object(datasets)))
    }

    /// One dataset and its schema as the file's `{"dataset": …, "schema": …}`.
    async fn dataset(&mut self, name: &str, arn: &str) -> Result<Value, ApiError> {
        let api = self.api;
        let described = api
            .call("DescribeDataset", arn, || {
                api.client.describe_dataset().dataset_arn(arn).send()
            })
            .await?
            .dataset
            .unwrap_or_else(|| t::Dataset::builder().build());
        let schema_arn = described.schema_arn.unwrap_or_default();
        let schema = api
            .call("DescribeSchema", &schema_arn, || {
                api.client.describe_schema().schema_arn(&schema_arn).send()
            })
            .await?
            .schema
            .unwrap_or_else(|| t::DatasetSchema::builder().build());
        let document: Value = match schema.schema.as_deref().map(serde_json::from_str) {
            Some(Ok(v)) => v,
            _ => {
                self.warnings.push(format!(
                    "schema {schema_arn} of dataset {name} is not a JSON document: written as null"
                ));
                Value::Null
            }
        };
        let mut schema_service = Map::new();
        put(&mut schema_service, "name", schema.name.map(Value::String));
        put(
            &mut schema_service,
            "domain",
            schema.domain.map(|d| json!(d.as_str())),
        );
        schema_service.insert("schema".into(), document);
        let mut dataset_service = Map::new();
        dataset_service.insert("name".into(), json!(name));
        put(&mut dataset_service, "tags", self.tags(arn).await?);
        Ok(
            json!({"dataset": {"serviceConfig": dataset_service}, "schema": {"serviceConfig": schema_service}}),
        )
    }

    /// The newest ACTIVE import job of a dataset: when, its ARN and its import mode.
    async fn newest_active_import(
        &self,
        arn: &str,
    ) -> Result<Option<(DateTime<Utc>, String, Option<String>)>, ApiError> {
        let api = self.api;
        let jobs = list_all!(api, "ListDatasetImportJobs", arn, dataset_import_jobs, |token| {
            api.client
                .list_dataset_import_jobs()
                .dataset_arn(arn)
                .set_next_token(token.clone())
                .max_results(100)
                .send()
        });
        Ok(jobs
            .iter()
            .filter(|j| Phase::of(j.status.as_deref().unwrap_or_default()) == Phase::Active)
            .map(|j| {
                (
                    time(j.creation_date_time.as_ref()),
                    j.dataset_import_job_arn.clone().unwrap_or_default(),
                    j.import_mode.as_ref().map(|m| m.as_str().to_string()),
                )
            })
            .max_by_key(|(created, _, _)| *created))
    }

    async fn event_tracker(&mut self, group_arn: &str) -> Result<Option<Value>, ApiError> {
        let api = self.api;
        let trackers = list_all!(api, "ListEventTrackers", group_arn, event_trackers, |token| api
            .client
            .list_event_trackers()
            .dataset_group_arn(group_arn)
            .set_next_token(token.clone())
            .max_results(100)
            .send());
        let mut usable = Vec::new();
        for t in trackers {
            let name = t.name.clone().unwrap_or_default();
            if self.usable("event tracker", &name, t.status.as_deref()) {
                usable.push((name, t.event_tracker_arn.clone().unwrap_or_default()));
            }
        }
        let Some((name, arn)) = usable.first() else {
            return Ok(None);
        };
        if usable.len() > 1 {
            self.warnings.push(format!(
                "{} event trackers: only {name} is exported (a parameter file declares one)",
                usable.len()
            ));
        }
        let mut service = Map::new();
        service.insert("name".into(), json!(name));
        put(&mut service, "tags", self.tags(arn).await?);
        Ok(Some(json!({"serviceConfig": service})))
    }

    async fn filters(&mut self, group_arn: &str) -> Result<Vec<Value>, ApiError> {
        let api = self.api;
        let listed = list_all!(api, "ListFilters", group_arn, filters, |token| api
            .client
            .list_filters()
            .dataset_group_arn(group_arn)
            .set_next_token(token.clone())
            .max_results(100)
            .send());
        let mut out = Vec::new();
        for f in listed {
            let name = f.name.clone().unwrap_or_default();
            if !self.usable("filter", &name, f.status.as_deref()) {
                continue;
            }
            let arn = f.filter_arn.clone().unwrap_or_default();
            let described = api
                .call("DescribeFilter", &arn, || {
                    api.client.describe_filter().filter_arn(&arn).send()
                })
                .await?
                .filter
                .unwrap_or_else(|| t::Filter::builder().build());
            let mut service = Map::new();
            service.insert("name".into(), json!(name));
            put(
                &mut service,
                "filterExpression",
                described.filter_expression.map(Value::String),
            );
            put(&mut service, "tags", self.tags(&arn).await?);
            out.push(json!({"serviceConfig": service}));
        }
        Ok(out)
    }

    async fn solutions(
        &mut self,
        group_arn: &str,
        schedules: &ExportSchedules,
    ) -> Result<Vec<Value>, ApiError> {
        let api = self.api;
        let listed = list_all!(api, "ListSolutions", group_arn, solutions, |token| api
            .client
            .list_solutions()
            .dataset_group_arn(group_arn)
            .set_next_token(token.clone())
            .max_results(100)
            .send());
        let mut out = Vec::new();
        for s in listed {
            let name = s.name.clone().unwrap_or_default();
            if !self.usable("solution", &name, s.status.as_deref()) {
                continue;
            }
            let arn = s.solution_arn.clone().unwrap_or_default();
            out.push(self.solution(&name, &arn, schedules).await?);
        }
        Ok(out)
    }

    async fn solution(
        &mut self,
        name: &str,
        arn: &str,
        schedules: &ExportSchedules,
    ) -> Result<Value, ApiError> {
        let mut solution = json!({"serviceConfig": self.solution_service(name, arn).await?});
        let mut planned = Map::new();
        put(
            &mut planned,
            "full",
            schedules.full.get(name).map(|s| json!(s.to_string())),
        );
        put(
            &mut planned,
            "update",
            schedules.update.get(name).map(|s| json!(s.to_string())),
        );
        if !planned.is_empty() {
            solution["workflowConfig"] = json!({"schedules": planned});
        }

        let campaigns = self.campaigns(arn).await?;
        if !campaigns.is_empty() {
            solution["campaigns"] = Value::Array(campaigns);
        }
        let (inference, segment) = self.batch_jobs_seen(arn).await?;
        let mut entries = Vec::new();
        for job in batch_entries(name, &inference, &mut self.warnings, "batch inference job") {
            entries.push(match job {
                Some(j) => self.batch_inference_job(&j.arn).await?,
                None => json!({}),
            });
        }
        if !entries.is_empty() {
            solution["batchInferenceJobs"] = Value::Array(entries);
        }
        let mut entries = Vec::new();
        for job in batch_entries(name, &segment, &mut self.warnings, "batch segment job") {
            entries.push(match job {
                Some(j) => self.batch_segment_job(&j.arn).await?,
                None => json!({}),
            });
        }
        if !entries.is_empty() {
            solution["batchSegmentJobs"] = Value::Array(entries);
        }
        Ok(solution)
    }

    /// The solution's CreateSolution members as a `serviceConfig`.
    async fn solution_service(&self, name: &str, arn: &str) -> Result<Map<String, Value>, ApiError> {
        let api = self.api;
        let x = api
            .call("DescribeSolution", arn, || {
                api.client.describe_solution().solution_arn(arn).send()
            })
            .await?
            .solution
            .unwrap_or_else(|| t::Solution::builder().build());
        let mut service = Map::new();
        service.insert("name".into(), json!(name));
        put(&mut service, "recipeArn", x.recipe_arn.clone().map(Value::String));
        put(
            &mut service,
            "performHPO",
            x.perform_hpo.then_some(Value::Bool(true)),
        );
        put(
            &mut service,
            "performAutoTraining",
            x.perform_auto_training.map(Value::Bool),
        );
        put(
            &mut service,
            "performIncrementalUpdate",
            x.perform_incremental_update.filter(|v| *v).map(Value::Bool),
        );
        put(&mut service, "eventType", x.event_type.clone().map(Value::String));
        put(
            &mut service,
            "solutionConfig",
            config(convert::solution_config_json(x.solution_config.as_ref())),
        );
        put(&mut service, "tags", self.tags(arn).await?);

        Ok(service)
    }

    /// The solution's usable campaigns, each as a `serviceConfig`.
    async fn campaigns(&mut self, arn: &str) -> Result<Vec<Value>, ApiError> {
        let api = self.api;
        let campaigns = list_all!(api, "ListCampaigns", arn, campaigns, |token| api
            .client
            .list_campaigns()
            .solution_arn(arn)
            .set_next_token(token.clone())
            .max_results(100)
            .send());
        let mut exported = Vec::new();
        for c in campaigns {
            let campaign = c.name.clone().unwrap_or_default();
            if !self.usable("campaign", &campaign, c.status.as_deref()) {
                continue;
            }
            let carn = c.campaign_arn.clone().unwrap_or_default();
            let d = api
                .call("DescribeCampaign", &carn, || {
                    api.client.describe_campaign().campaign_arn(&carn).send()
                })
                .await?
                .campaign
                .unwrap_or_else(|| t::Campaign::builder().build());
            let mut service = Map::new();
            service.insert("name".into(), json!(campaign));
            put(
                &mut service,
                "minProvisionedTPS",
                d.min_provisioned_tps.map(|v| json!(v)),
            );
            put(
                &mut service,
                "campaignConfig",
                config(convert::campaign_config_json(d.campaign_config.as_ref())),
            );
            put(&mut service, "tags", self.tags(&carn).await?);
            exported.push(json!({"serviceConfig": service}));
        }
        Ok(exported)
    }

    /// Every batch inference and segment job of every version of the solution.
    async fn batch_jobs_seen(&self, arn: &str) -> Result<(Vec<JobSeen>, Vec<JobSeen>), ApiError> {
        let api = self.api;
        let versions = list_all!(api, "ListSolutionVersions", arn, solution_versions, |token| api
            .client
            .list_solution_versions()
            .solution_arn(arn)
            .set_next_token(token.clone())
            .max_results(100)
            .send());
        let mut inference = Vec::new();
        let mut segment = Vec::new();
        for v in versions {
            let varn = v.solution_version_arn.clone().unwrap_or_default();
            let jobs = list_all!(
                api,
                "ListBatchInferenceJobs",
                &varn,
                batch_inference_jobs,
                |token| api
                    .client
                    .list_batch_inference_jobs()
                    .solution_version_arn(&varn)
                    .set_next_token(token.clone())
                    .max_results(100)
                    .send()
            );
            inference.extend(jobs.iter().map(|j| JobSeen {
                name: j.job_name.clone().unwrap_or_default(),
                arn: j.batch_inference_job_arn.clone().unwrap_or_default(),
                created: time(j.creation_date_time.as_ref()),
            }));
            let jobs = list_all!(api, "ListBatchSegmentJobs", &varn, batch_segment_jobs, |token| {
                api.client
                    .list_batch_segment_jobs()
                    .solution_version_arn(&varn)
                    .set_next_token(token.clone())
                    .max_results(100)
                    .send()
            });
            segment.extend(jobs.iter().map(|j| JobSeen {
                name: j.job_name.clone().unwrap_or_default(),
                arn: j.batch_segment_job_arn.clone().unwrap_or_default(),
                created: time(j.creation_date_time.as_ref()),
            }));
        }
        Ok((inference, segment))
    }

    async fn batch_inference_job(&self, arn: &str) -> Result<Value, ApiError> {
        let api = self.api;
        let j = api
            .call("DescribeBatchInferenceJob", arn, || {
                api.client
                    .describe_batch_inference_job()
                    .batch_inference_job_arn(arn)
                    .send()
            })
            .await?
            .batch_inference_job
            .unwrap_or_else(|| t::BatchInferenceJob::builder().build());
        let mut service = Map::new();
        put(&mut service, "numResults", j.num_results.map(|v| json!(v)));
        put(&mut service, "filterArn", j.filter_arn.map(Value::String));
        put(
            &mut service,
            "batchInferenceJobConfig",
            config(convert::batch_inference_config_json(
                j.batch_inference_job_config.as_ref(),
            )),
        );
        put(
            &mut service,
            "batchInferenceJobMode",
            j.batch_inference_job_mode
                .filter(|m| m.as_str() != "BATCH_INFERENCE")
                .map(|m| json!(m.as_str())),
        );
        put(
            &mut service,
            "themeGenerationConfig",
            j.theme_generation_config
                .and_then(|c| c.fields_for_theme_generation)
                .map(|f| json!({"fieldsForThemeGeneration": {"itemName": f.item_name}})),
        );
        put(&mut service, "tags", self.tags(arn).await?);
        Ok(json!({"serviceConfig": service}))
    }

    async fn batch_segment_job(&self, arn: &str) -> Result<Value, ApiError> {
        let api = self.api;
        let j = api
            .call("DescribeBatchSegmentJob", arn, || {
                api.client
                    .describe_batch_segment_job()
                    .batch_segment_job_arn(arn)
                    .send()
            })
            .await?
            .batch_segment_job
            .unwrap_or_else(|| t::BatchSegmentJob::builder().build());
        let mut service = Map::new();
        put(&mut service, "numResults", j.num_results.map(|v| json!(v)));
        put(&mut service, "filterArn", j.filter_arn.map(Value::String));
        put(&mut service, "tags", self.tags(arn).await?);
        Ok(json!({"serviceConfig": service}))
    }

    async fn recommenders(&mut self, group_arn: &str) -> Result<Vec<Value>, ApiError> {
        let api = self.api;
        let listed = list_all!(api, "ListRecommenders", group_arn, recommenders, |token| api
            .client
            .list_recommenders()
            .dataset_group_arn(group_arn)
            .set_next_token(token.clone())
            .max_results(100)
            .send());
        let mut out = Vec::new();
        for r in listed {
            let name = r.name.clone().unwrap_or_default();
            if !self.usable("recommender", &name, r.status.as_deref()) {
                continue;
            }
            let arn = r.recommender_arn.clone().unwrap_or_default();
            let d = api
                .call("DescribeRecommender", &arn, || {
                    api.client.describe_recommender().recommender_arn(&arn).send()
                })
                .await?
                .recommender
                .unwrap_or_else(|| t::Recommender::builder().build());
            let mut service = Map::new();
            service.insert("name".into(), json!(name));
            put(&mut service, "recipeArn", d.recipe_arn.map(Value::String));
            put(
                &mut service,
                "recommenderConfig",
                config(convert::recommender_config_json(d.recommender_config.as_ref())),
            );
            put(&mut service, "tags", self.tags(&arn).await?);
            out.push(json!({"serviceConfig": service}));
        }
        Ok(out)
    }
}

impl Reconciler {
    /// Reads dataset group `group` from Personalize and returns its parameter file, with
    /// `schedules` written in.
    ///
    /// # Errors
    /// `GroupNotFound`; `UnknownSolution` when a schedule names a solution the group does not have;
    /// `Api` when Personalize refuses a call.
    pub async fn export(&self, group: &str, schedules: &ExportSchedules) -> Result<Exported, ExportError> {
        let api_error = |source| ExportError::Api {
            group: group.to_string(),
            source,
        };
        let Some(arn) = find_group(&self.api, group).await.map_err(api_error)? else {
            return Err(ExportError::GroupNotFound {
                group: group.to_string(),
            });
        };
        let mut x = Exporter {
            api: &self.api,
            warnings: Vec::new(),
        };
        let dataset_group = x.dataset_group(&arn, schedules).await.map_err(api_error)?;
        let datasets = x.datasets(&arn).await.map_err(api_error)?;
        let tracker = x.event_tracker(&arn).await.map_err(api_error)?;
        let filters = x.filters(&arn).await.map_err(api_error)?;
        let solutions = x.solutions(&arn, schedules).await.map_err(api_error)?;
        let recommenders = x.recommenders(&arn).await.map_err(api_error)?;

        let known: Vec<&str> = solutions
            .iter()
            .filter_map(|s| s["serviceConfig"]["name"].as_str())
            .collect();
        for (flag, map) in [('f', &schedules.full), ('u', &schedules.update)] {
            if let Some(missing) = map.keys().find(|s| !known.contains(&s.as_str())) {
                return Err(ExportError::UnknownSolution {
                    group: group.to_string(),
                    solution: missing.clone(),
                    flag,
                    known: if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    },
                });
            }
        }

        let mut document = Map::new();
        document.insert("datasetGroup".into(), dataset_group);
        put(&mut document, "datasets", datasets);
        put(&mut document, "eventTracker", tracker);
        for (key, list) in [
            ("filters", filters),
            ("solutions", solutions),
            ("recommenders", recommenders),
        ] {
            if !list.is_empty() {
                document.insert(key.into(), Value::Array(list));
            }
        }
        Ok(Exported {
            document: Value::Object(document),
            warnings: x.warnings,
        })
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn job(name: &str, secs: i64) -> JobSeen {
        JobSeen {
            name: name.into(),
            arn: format!("arn:{name}"),
            created: Utc
                .timestamp_opt(1_800_000_000 + secs, 0)
                .single()
                .expect("valid"),
        }
    }

    fn chosen(entries: &[Option<&JobSeen>]) -> Vec<Option<String>> {
        entries.iter().map(|j| j.map(|j| j.name.clone())).collect()
    }

    #[test]
    fn each_numbered_entry_is_stood_for_by_its_newest_job() {
        let jobs = [
            job("batch_sol_1_2027_01_01_00_00_00", 0),
            job("batch_sol_1_2027_02_01_00_00_00", 10),
            job("batch_sol_3_2027_01_01_00_00_00", 5),
            job("batch_solx_2_2027_01_01_00_00_00", 50),
        ];
        let mut warnings = Vec::new();
        let entries = batch_entries("sol", &jobs, &mut warnings, "batch inference job");
        assert_eq!(
            chosen(&entries),
            [
                Some("batch_sol_1_2027_02_01_00_00_00".to_string()),
                None,
                Some("batch_sol_3_2027_01_01_00_00_00".to_string())
            ]
        );
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("entry 2"), "{warnings:?}");
    }

    #[test]
    fn a_lone_entry_and_foreign_names() {
        let mut warnings = Vec::new();
        let jobs = [job("batch_sol_2027_01_01_00_00_00", 0), job("nightly", 99)];
        assert_eq!(
            chosen(&batch_entries("sol", &jobs, &mut warnings, "k")),
            [Some("batch_sol_2027_01_01_00_00_00".to_string())]
        );
        assert!(warnings.is_empty());
        let jobs = [job("nightly", 1), job("weekly", 2)];
        assert_eq!(
            chosen(&batch_entries("sol", &jobs, &mut warnings, "k")),
            [Some("weekly".to_string())]
        );
        assert!(
            warnings[0].contains("2 k(s) not named by personalize-ops"),
            "{warnings:?}"
        );
        assert!(batch_entries("sol", &[], &mut warnings, "k").is_empty());
    }

    #[test]
    fn empty_configs_are_left_out() {
        assert_eq!(config(Some(json!({}))), None);
        assert_eq!(config(Some(json!({"a": 1}))), Some(json!({"a": 1})));
        assert_eq!(config(None), None);
    }
}
