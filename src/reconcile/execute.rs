//! Making one create or update call, and turning its answer into what the pass does next.

use aws_sdk_personalize::types as t;

use crate::plan::Request;
use crate::spec::names;

use super::api::{Api, ApiError, ErrorClass};
use super::convert;

/// What came of a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Executed {
    /// Personalize accepted it; the resource (or update) is under way.
    Started { arn: Option<String> },
    /// It already existed (ours): the next observation adopts it.
    Adopted,
    /// Not now (quota full, parent busy, throttled): tried again on a later pass.
    Later { why: String },
    /// Personalize refused it; the resource fails with this reason.
    Rejected { reason: String },
}

fn outcome(result: Result<Option<String>, ApiError>) -> Executed {
    match result {
        Ok(arn) => Executed::Started { arn },
        Err(e) => match e.class {
            ErrorClass::AlreadyExists => Executed::Adopted,
            ErrorClass::InUse | ErrorClass::Limit | ErrorClass::Transient | ErrorClass::LeaseLost => {
                Executed::Later {
                    why: format!("{}: {}", e.code, e.message),
                }
            }
            ErrorClass::NotFound | ErrorClass::Rejected => Executed::Rejected {
                reason: format!("{} refused: {}: {}", e.op, e.code, e.message),
            },
        },
    }
}

/// Most job names [`JobNames`] remembers; past it, it starts over (it only saves calls).
const JOB_NAMES_KEPT: usize = 10_000;

/// The jobs this process created, by name, with the dataset (or solution version) each is for.
/// Job names are account-wide and made from the run's start second, so groups uploaded together
/// share them; a name already taken here by another parent goes straight to its collision-free
/// form instead of a refused create and a describe first.
#[derive(Debug, Default)]
pub struct JobNames(std::sync::Mutex<std::collections::HashMap<String, String>>);

impl JobNames {
    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, String>> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether `name` was created here for another parent than `parent`.
    fn taken_by_another(&self, name: &str, parent: &str) -> bool {
        self.lock().get(name).is_some_and(|p| p != parent)
    }

    fn created(&self, name: &str, parent: &str) {
        let mut names = self.lock();
        if names.len() >= JOB_NAMES_KEPT {
            names.clear();
        }
        names.insert(name.to_string(), parent.to_string());
    }
}

/// Makes the call of `request`. `prefix` is the account's ARN prefix (`arn:…:`), known once the
/// group exists; it lets a job-name collision be told apart from a resumed run's own job. `names`
/// are the jobs this process created (see [`JobNames`]).
pub async fn execute(api: &Api, request: &Request, prefix: Option<&str>, names: &JobNames) -> Executed {
    match request {
        Request::CreateDatasetImportJob {
            job_name,
            dataset_arn,
            ..
        } => {
            let job = Job {
                kind: "dataset-import-job",
                name: job_name,
                parent: dataset_arn,
                segment: false,
            };
            create_job(api, prefix, names, job, |name: String| async move {
                create_import(api, request, &name).await
            })
            .await
        }
        Request::CreateBatchInferenceJob { target, .. } | Request::CreateBatchSegmentJob { target, .. } => {
            let segment = matches!(request, Request::CreateBatchSegmentJob { .. });
            let job = Job {
                kind: if segment {
                    "batch-segment-job"
                } else {
                    "batch-inference-job"
                },
                name: &target.job_name,
                parent: &target.solution_version_arn,
                segment,
            };
            create_job(api, prefix, names, job, |name: String| async move {
                create_batch(api, request, &name).await
            })
            .await
        }
        other => outcome(create_other(api, other).await),
    }
}

/// A job to create: its ARN kind, its name, and the dataset (or solution version) it is for.
struct Job<'a> {
    kind: &'static str,
    name: &'a str,
    parent: &'a str,
    segment: bool,
}

/// Creates `job` with `create`. Job names are account-wide: a name that already exists may belong
/// to another parent's job that started in the same second. Never adopt that one; create again
/// under this parent's collision-free name.
async fn create_job<'a, F, Fut>(
    api: &Api,
    prefix: Option<&str>,
    names: &JobNames,
    job: Job<'a>,
    create: F,
) -> Executed
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Result<Option<String>, ApiError>>,
{
    let create_as = |name: String| {
        let call = create(name.clone());
        async move {
            let result = outcome(call.await);
            if matches!(result, Executed::Started { .. }) {
                names.created(&name, job.parent);
            }
            result
        }
    };
    if names.taken_by_another(job.name, job.parent) {
        return create_as(names::collision_free(job.name, job.parent)).await;
    }
    let first = create_as(job.name.to_string()).await;
    if first != Executed::Adopted {
        return first;
    }
    match job_owner(api, prefix, job.kind, job.name, job.segment).await {
        Ok(Some(owner)) if owner == job.parent => Executed::Adopted,
        Ok(Some(_)) => create_as(names::collision_free(job.name, job.parent)).await,
        Ok(None) => Executed::Later {
            why: format!("{} exists but cannot be described yet", job.name),
        },
        Err(e) => outcome(Err(e)),
    }
}

/// The dataset (or solution version) a job named `name` belongs to.
async fn job_owner(
    api: &Api,
    prefix: Option<&str>,
    kind: &str,
    name: &str,
    segment: bool,
) -> Result<Option<String>, ApiError> {
    let Some(prefix) = prefix else { return Ok(None) };
    let arn = format!("{prefix}{kind}/{name}");
    let owner = match kind {
        "dataset-import-job" => api
            .call("DescribeDatasetImportJob", &arn, || {
                api.client
                    .describe_dataset_import_job()
                    .dataset_import_job_arn(&arn)
                    .send()
            })
            .await
            .map(|r| r.dataset_import_job.and_then(|j| j.dataset_arn)),
        _ if segment => api
            .call("DescribeBatchSegmentJob", &arn, || {
                api.client
                    .describe_batch_segment_job()
                    .batch_segment_job_arn(&arn)
                    .send()
            })
            .await
            .map(|r| r.batch_segment_job.and_then(|j| j.solution_version_arn)),
        _ => api
            .call("DescribeBatchInferenceJob", &arn, || {
                api.client
                    .describe_batch_inference_job()
                    .batch_inference_job_arn(&arn)
                    .send()
            })
            .await
            .map(|r| r.batch_inference_job.and_then(|j| j.solution_version_arn)),
    };
    match owner {
        Err(e) if e.class == ErrorClass::NotFound => Ok(None),
        other => other,
    }
}

async fn create_import(api: &Api, request: &Request, job_name: &str) -> Result<Option<String>, ApiError> {
    let Request::CreateDatasetImportJob {
        dataset_arn,
        data_location,
        role_arn,
        import_mode,
        publish_attribution_metrics_to_s3,
        tags,
        ..
    } = request
    else {
        return Ok(None);
    };
    let source = t::DataSource::builder().data_location(data_location).build();
    api.call("CreateDatasetImportJob", job_name, || {
        api.client
            .create_dataset_import_job()
            .job_name(job_name)
            .dataset_arn(dataset_arn)
            .data_source(source.clone())
            .role_arn(role_arn)
            .import_mode(t::ImportMode::from(import_mode.as_str()))
            .publish_attribution_metrics_to_s3(*publish_attribution_metrics_to_s3)
            .set_tags(convert::tags(tags))
            .send()
    })
    .await
    .map(|r| r.dataset_import_job_arn)
}

async fn create_batch(api: &Api, request: &Request, job_name: &str) -> Result<Option<String>, ApiError> {
    match request {
        Request::CreateBatchInferenceJob { target, job } => {
            let job_input = t::BatchInferenceJobInput::builder()
                .s3_data_source(s3_config(job_name, &target.input)?)
                .build();
            let job_output = t::BatchInferenceJobOutput::builder()
                .s3_data_destination(s3_config(job_name, &target.output)?)
                .build();
            let theme = match &job.theme_generation_config {
                Some(c) => Some(
                    t::ThemeGenerationConfig::builder()
                        .fields_for_theme_generation(
                            t::FieldsForThemeGeneration::builder()
                                .item_name(&c.fields_for_theme_generation.item_name)
                                .build()
                                .map_err(|e| build_error(job_name, e))?,
                        )
                        .build(),
                ),
                None => None,
            };
            let mode = job.batch_inference_job_mode.map(|m| match m {
                crate::spec::model::BatchInferenceJobMode::BatchInference => {
                    t::BatchInferenceJobMode::BatchInference
                }
                crate::spec::model::BatchInferenceJobMode::ThemeGeneration => {
                    t::BatchInferenceJobMode::ThemeGeneration
                }
            });
            api.call("CreateBatchInferenceJob", job_name, || {
                api.client
                    .create_batch_inference_job()
                    .job_name(job_name)
                    .solution_version_arn(&target.solution_version_arn)
                    .job_input(job_input.clone())
                    .job_output(job_output.clone())
                    .role_arn(&target.role_arn)
                    .set_num_results(job.num_results)
                    .set_filter_arn(job.filter_arn.clone())
                    .set_batch_inference_job_config(
                        job.batch_inference_job_config
                            .as_ref()
                            .map(convert::batch_inference_config),
                    )
                    .set_batch_inference_job_mode(mode.clone())
                    .set_theme_generation_config(theme.clone())
                    .set_tags(convert::tags(&job.tags))
                    .send()
            })
            .await
            .map(|r| r.batch_inference_job_arn)
        }
        Request::CreateBatchSegmentJob { target, job } => {
            let job_input = t::BatchSegmentJobInput::builder()
                .s3_data_source(s3_config(job_name, &target.input)?)
                .build();
            let job_output = t::BatchSegmentJobOutput::builder()
                .s3_data_destination(s3_config(job_name, &target.output)?)
                .build();
            api.call("CreateBatchSegmentJob", job_name, || {
                api.client
                    .create_batch_segment_job()
                    .job_name(job_name)
                    .solution_version_arn(&target.solution_version_arn)
                    .job_input(job_input.clone())
                    .job_output(job_output.clone())
                    .role_arn(&target.role_arn)
                    .set_num_results(job.num_results)
                    .set_filter_arn(job.filter_arn.clone())
                    .set_tags(convert::tags(&job.tags))
                    .send()
            })
            .await
            .map(|r| r.batch_segment_job_arn)
        }
        _ => Ok(None),
    }
}

/// A batch job's S3 input or output location.
fn s3_config(job_name: &str, path: &str) -> Result<t::S3DataConfig, ApiError> {
    t::S3DataConfig::builder()
        .path(path)
        .build()
        .map_err(|e| build_error(job_name, e))
}

fn build_error(target: &str, e: impl std::fmt::Display) -> ApiError {
    ApiError {
        op: "BuildRequest",
        target: target.to_string(),
        code: "InvalidInput".into(),
        message: e.to_string(),
        class: ErrorClass::Rejected,
    }
}

/// The calls that are one request each, dispatched per resource kind.
async fn create_other(api: &Api, request: &Request) -> Result<Option<String>, ApiError> {
    match request {
        Request::CreateDatasetGroup { .. } => create_group(api, request).await,
        Request::CreateSchema { name, schema, domain } => api
            .call("CreateSchema", name, || {
                api.client
                    .create_schema()
                    .name(name)
                    .schema(schema)
                    .set_domain(domain.as_deref().map(t::Domain::from))
                    .send()
            })
            .await
            .map(|r| r.schema_arn),
        Request::CreateDataset { .. } => create_dataset(api, request).await,
        Request::UpdateDataset { .. } => update_dataset(api, request).await,
        Request::CreateEventTracker {
            name,
            dataset_group_arn,
            tags,
        } => api
            .call("CreateEventTracker", name, || {
                api.client
                    .create_event_tracker()
                    .name(name)
                    .dataset_group_arn(dataset_group_arn)
                    .set_tags(convert::tags(tags))
                    .send()
            })
            .await
            .map(|r| r.event_tracker_arn),
        Request::CreateFilter { .. } | Request::DeleteFilter { .. } => filter(api, request).await,
        Request::CreateSolution { .. } | Request::UpdateSolution { .. } => solution(api, request).await,
        Request::CreateSolutionVersion {
            solution_arn,
            name,
            training_mode,
            tags,
        } => api
            .call("CreateSolutionVersion", solution_arn, || {
                api.client
                    .create_solution_version()
                    .solution_arn(solution_arn)
                    .set_name(name.clone())
                    .training_mode(t::TrainingMode::from(training_mode.as_str()))
                    .set_tags(convert::tags(tags))
                    .send()
            })
            .await
            .map(|r| r.solution_version_arn),
        Request::CreateCampaign { .. } | Request::UpdateCampaign { .. } => campaign(api, request).await,
        Request::CreateRecommender { .. } | Request::UpdateRecommender { .. } => {
            recommender(api, request).await
        }
        Request::TagResource { .. } => retag(api, request).await,
        Request::CreateDatasetImportJob { .. }
        | Request::CreateBatchInferenceJob { .. }
        | Request::CreateBatchSegmentJob { .. } => Ok(None),
    }
}

async fn retag(api: &Api, request: &Request) -> Result<Option<String>, ApiError> {
    let Request::TagResource {
        resource_arn,
        tags,
        untag_keys,
    } = request
    else {
        return Ok(None);
    };
    if let Some(tags) = convert::tags(tags) {
        api.call("TagResource", resource_arn, || {
            api.client
                .tag_resource()
                .resource_arn(resource_arn)
                .set_tags(Some(tags.clone()))
                .send()
        })
        .await?;
    }
    if !untag_keys.is_empty() {
        api.call("UntagResource", resource_arn, || {
            api.client
                .untag_resource()
                .resource_arn(resource_arn)
                .set_tag_keys(Some(untag_keys.clone()))
                .send()
        })
        .await?;
    }
    Ok(None)
}

async fn create_group(api: &Api, request: &Request) -> Result<Option<String>, ApiError> {
    let Request::CreateDatasetGroup {
        name,
        domain,
        role_arn,
        kms_key_arn,
        tags,
    } = request
    else {
        return Ok(None);
    };
    api.call("CreateDatasetGroup", name, || {
        api.client
            .create_dataset_group()
            .name(name)
            .set_domain(domain.as_deref().map(t::Domain::from))
            .set_role_arn(role_arn.clone())
            .set_kms_key_arn(kms_key_arn.clone())
            .set_tags(convert::tags(tags))
            .send()
    })
    .await
    .map(|r| r.dataset_group_arn)
}

async fn create_dataset(api: &Api, request: &Request) -> Result<Option<String>, ApiError> {
    let Request::CreateDataset {
        name,
        dataset_group_arn,
        schema_arn,
        dataset_type,
        tags,
    } = request
    else {
        return Ok(None);
    };
    api.call("CreateDataset", name, || {
        api.client
            .create_dataset()
            .name(name)
            .dataset_group_arn(dataset_group_arn)
            .schema_arn(schema_arn)
            .dataset_type(dataset_type.api_name())
            .set_tags(convert::tags(tags))
            .send()
    })
    .await
    .map(|r| r.dataset_arn)
}

/// Creates the new schema when asked (an existing one with that name is the one an interrupted run
/// created: its name is a hash of the document), then moves the dataset to it.
async fn update_dataset(api: &Api, request: &Request) -> Result<Option<String>, ApiError> {
    let Request::UpdateDataset {
        dataset_arn,
        schema_arn,
        create_schema,
    } = request
    else {
        return Ok(None);
    };
    if let Some(s) = create_schema {
        let created = api
            .call("CreateSchema", &s.name, || {
                api.client
                    .create_schema()
                    .name(&s.name)
                    .schema(&s.schema)
                    .set_domain(s.domain.as_deref().map(t::Domain::from))
                    .send()
            })
            .await;
        match created {
            Ok(_) => {}
            Err(e) if e.class == ErrorClass::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
    api.call("UpdateDataset", dataset_arn, || {
        api.client
            .update_dataset()
            .dataset_arn(dataset_arn)
            .schema_arn(schema_arn)
            .send()
    })
    .await
    .map(|r| r.dataset_arn)
}

async fn filter(api: &Api, request: &Request) -> Result<Option<String>, ApiError> {
    match request {
        Request::CreateFilter {
            name,
            dataset_group_arn,
            filter_expression,
            tags,
        } => api
            .call("CreateFilter", name, || {
                api.client
                    .create_filter()
                    .name(name)
                    .dataset_group_arn(dataset_group_arn)
                    .filter_expression(filter_expression)
                    .set_tags(convert::tags(tags))
                    .send()
            })
            .await
            .map(|r| r.filter_arn),
        Request::DeleteFilter { filter_arn } => {
            let deleted = api
                .call("DeleteFilter", filter_arn, || {
                    api.client.delete_filter().filter_arn(filter_arn).send()
                })
                .await;
            match deleted {
                // Already gone (a repeated call after a crash): what the deletion wanted.
                Err(e) if e.class == ErrorClass::NotFound => Ok(None),
                other => other.map(|_| None),
            }
        }
        _ => Ok(None),
    }
}

async fn solution(api: &Api, request: &Request) -> Result<Option<String>, ApiError> {
    match request {
        Request::CreateSolution {
            dataset_group_arn,
            perform_auto_training,
            solution,
        } => api
            .call("CreateSolution", &solution.name, || {
                api.client
                    .create_solution()
                    .name(&solution.name)
                    .dataset_group_arn(dataset_group_arn)
                    .set_recipe_arn(solution.recipe_arn.clone())
                    .perform_hpo(solution.perform_hpo)
                    .perform_auto_training(*perform_auto_training)
                    .set_perform_incremental_update(solution.perform_incremental_update)
                    .set_event_type(solution.event_type.clone())
                    .set_solution_config(solution.solution_config.as_ref().map(convert::solution_config))
                    .set_tags(convert::tags(&solution.tags))
                    .send()
            })
            .await
            .map(|r| r.solution_arn),
        Request::UpdateSolution {
            solution_arn,
            perform_auto_training,
            auto_training_config,
            events_config,
        } => {
            let config = (auto_training_config.is_some() || events_config.is_some()).then(|| {
                t::SolutionUpdateConfig::builder()
                    .set_auto_training_config(
                        auto_training_config.as_ref().map(convert::auto_training_config),
                    )
                    .set_events_config(events_config.as_ref().map(convert::events_config))
                    .build()
            });
            api.call("UpdateSolution", solution_arn, || {
                api.client
                    .update_solution()
                    .solution_arn(solution_arn)
                    .set_perform_auto_training(*perform_auto_training)
                    .set_solution_update_config(config.clone())
                    .send()
            })
            .await
            .map(|r| r.solution_arn)
        }
        _ => Ok(None),
    }
}

async fn campaign(api: &Api, request: &Request) -> Result<Option<String>, ApiError> {
    match request {
        Request::CreateCampaign {
            name,
            solution_version_arn,
            min_provisioned_tps,
            campaign_config,
            tags,
        } => api
            .call("CreateCampaign", name, || {
                api.client
                    .create_campaign()
                    .name(name)
                    .solution_version_arn(solution_version_arn)
                    .min_provisioned_tps(*min_provisioned_tps)
                    .set_campaign_config(campaign_config.as_ref().map(convert::campaign_config))
                    .set_tags(convert::tags(tags))
                    .send()
            })
            .await
            .map(|r| r.campaign_arn),
        Request::UpdateCampaign {
            campaign_arn,
            solution_version_arn,
            min_provisioned_tps,
            campaign_config,
        } => api
            .call("UpdateCampaign", campaign_arn, || {
                api.client
                    .update_campaign()
                    .campaign_arn(campaign_arn)
                    .solution_version_arn(solution_version_arn)
                    .min_provisioned_tps(*min_provisioned_tps)
                    .set_campaign_config(campaign_config.as_ref().map(convert::campaign_config))
                    .send()
            })
            .await
            .map(|r| r.campaign_arn),
        _ => Ok(None),
    }
}

async fn recommender(api: &Api, request: &Request) -> Result<Option<String>, ApiError> {
    match request {
        Request::CreateRecommender {
            name,
            dataset_group_arn,
            recipe_arn,
            recommender_config,
            tags,
        } => api
            .call("CreateRecommender", name, || {
                api.client
                    .create_recommender()
                    .name(name)
                    .dataset_group_arn(dataset_group_arn)
                    .recipe_arn(recipe_arn)
                    .set_recommender_config(recommender_config.as_ref().map(convert::recommender_config))
                    .set_tags(convert::tags(tags))
                    .send()
            })
            .await
            .map(|r| r.recommender_arn),
        Request::UpdateRecommender {
            recommender_arn,
            recommender_config,
        } => api
            .call("UpdateRecommender", recommender_arn, || {
                api.client
                    .update_recommender()
                    .recommender_arn(recommender_arn)
                    .recommender_config(convert::recommender_config(recommender_config))
                    .send()
            })
            .await
            .map(|r| r.recommender_arn),
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use super::*;
    use crate::reconcile::RateLimiter;
    use crate::reconcile::api::Backoff;

    /// An API nobody answers: the creates below are fakes, so a call to it is a test failure.
    fn unreachable_api() -> Api {
        let config = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .endpoint_url("http://127.0.0.1:9")
            .build();
        let backoff = Backoff {
            min: Duration::from_millis(1),
            max: Duration::from_millis(1),
            retries: 0,
        };
        Api::new(
            aws_sdk_personalize::Client::new(&config),
            Arc::new(RateLimiter::new(1000.0)),
            backoff,
        )
    }

    #[tokio::test]
    async fn a_job_name_taken_here_by_another_parent_goes_straight_to_its_collision_free_form() {
        let api = unreachable_api();
        let names = JobNames::default();
        let sent: Mutex<Vec<String>> = Mutex::new(Vec::new());
        let name = "dataset_import_interactions_2026_01_01_00_00_00";
        let job = |parent: &'static str| Job {
            kind: "dataset-import-job",
            name,
            parent,
            segment: false,
        };
        let create = |n: String| {
            sent.lock().unwrap().push(n.clone());
            async move { Ok(Some(format!("arn:job/{n}"))) }
        };
        let first = create_job(&api, None, &names, job("arn:dataset/a"), create).await;
        assert!(matches!(first, Executed::Started { .. }), "{first:?}");
        let second = create_job(&api, None, &names, job("arn:dataset/b"), create).await;
        assert!(matches!(second, Executed::Started { .. }), "{second:?}");
        // A resumed run of the first parent keeps its own name.
        let again = create_job(&api, None, &names, job("arn:dataset/a"), create).await;
        assert!(matches!(again, Executed::Started { .. }), "{again:?}");
        let renamed = names::collision_free(name, "arn:dataset/b");
        assert_eq!(
            *sent.lock().unwrap(),
            vec![name.to_string(), renamed, name.to_string()]
        );
        assert_eq!(api.calls(), 0);
    }

    #[tokio::test]
    async fn a_refused_create_is_not_remembered_as_ours() {
        let api = unreachable_api();
        let names = JobNames::default();
        let name = "dataset_import_items_2026_01_01_00_00_00";
        let refused = |_: String| async {
            Err(ApiError {
                op: "CreateDatasetImportJob",
                target: "x".into(),
                code: "InvalidInputException".into(),
                message: "no".into(),
                class: ErrorClass::Rejected,
            })
        };
        let job = Job {
            kind: "dataset-import-job",
            name,
            parent: "arn:dataset/a",
            segment: false,
        };
        let r = create_job(&api, None, &names, job, refused).await;
        assert!(matches!(r, Executed::Rejected { .. }), "{r:?}");
        assert!(!names.taken_by_another(name, "arn:dataset/b"));
    }
}
