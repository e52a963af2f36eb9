//! Making one create or update call, and turning its answer into what the pass does next.

use aws_sdk_personalize::types as t;

use crate::plan::Request;
use crate::spec::names;

use super::api::{Api, ApiError, ErrorClass};
use super::convert;
use super::job_names::{Holder, JobNames};

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

/// Makes the call of `request`. `prefix` is the account's ARN prefix (`arn:…:`), known once the
/// group exists; it lets a job-name collision be told apart from a resumed run's own job. `names`
/// are the job names taken here and by the other replicas (see [`JobNames`]).
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
            let owner = move || job_owner(api, prefix, job.kind, job.name, job.segment);
            let create = |name: String| async move { create_import(api, request, &name).await };
            create_job(names, job, create, owner).await
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
            let owner = move || job_owner(api, prefix, job.kind, job.name, job.segment);
            let create = |name: String| async move { create_batch(api, request, &name).await };
            create_job(names, job, create, owner).await
        }
        other => outcome(create_other(api, other).await),
    }
}

/// A job to create: its ARN kind, its name, and the dataset (or solution version) it is for.
#[derive(Clone, Copy)]
struct Job<'a> {
    kind: &'static str,
    name: &'a str,
    parent: &'a str,
    segment: bool,
}

/// Creates `job` with `create`. Job names are account-wide: a name that already exists may belong
/// to another parent's job that started in the same second. Never adopt that one; create again
/// under this parent's collision-free name. A name another parent holds ([`JobNames::take`]: its
/// create was sent here, or another replica claimed it) goes straight to that name, without the
/// refused create and the describe (`owner`) that tell the two apart otherwise. A name that is this
/// parent's keeps its plain form, so a retried or resumed run finds (and adopts) its own job.
async fn create_job<'a, F, Fut, O, OFut>(names: &JobNames, job: Job<'a>, create: F, owner: O) -> Executed
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Result<Option<String>, ApiError>>,
    O: FnOnce() -> OFut,
    OFut: std::future::Future<Output = Result<Option<String>, ApiError>>,
{
    let renamed = || names::collision_free(job.name, job.parent);
    if let Holder::Another(_) = names.take(job.name, job.parent).await {
        return outcome(create(renamed()).await);
    }
    match create(job.name.to_string()).await {
        Err(e) if e.class == ErrorClass::AlreadyExists => {}
        // Throttled past the retries or unreachable: the job may exist (a lost response), so the
        // name stays this parent's and the retry sends it again.
        Err(e) if e.class == ErrorClass::Transient => return outcome(Err(e)),
        Err(e) => {
            names.release(job.name, job.parent);
            return outcome(Err(e));
        }
        Ok(arn) => return Executed::Started { arn },
    }
    match owner().await {
        Ok(Some(owner)) if owner == job.parent => Executed::Adopted,
        Ok(Some(owner)) => {
            names.found_owner(job.name, &owner, job.parent).await;
            outcome(create(renamed()).await)
        }
        Ok(None) => {
            names.release(job.name, job.parent);
            Executed::Later {
                why: format!("{} exists but cannot be described yet", job.name),
            }
        }
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
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::reconcile::job_names::{JobClaims, StoreClaims};
    use crate::store::{SqliteStore, StateStore, StoreError};

    const NAME: &str = "dataset_import_interactions_2026_01_01_00_00_00";

    fn api_error(class: ErrorClass, code: &str) -> ApiError {
        ApiError {
            op: "CreateDatasetImportJob",
            target: NAME.into(),
            code: code.into(),
            message: "fake".into(),
            class,
        }
    }

    /// A fake Personalize account: job names are account-wide and a create of a name that exists
    /// is refused. A create is in flight for a few scheduler turns, so creates overlap when run
    /// together; `lose_answers` makes creates happen but answer as if the network failed.
    #[derive(Default)]
    struct Account {
        jobs: Mutex<HashMap<String, String>>,
        sent: Mutex<Vec<String>>,
        refused: AtomicUsize,
        described: AtomicUsize,
        lose_answers: std::sync::atomic::AtomicBool,
    }

    impl Account {
        async fn create(&self, name: String, parent: &str) -> Result<Option<String>, ApiError> {
            self.sent.lock().unwrap().push(name.clone());
            let existed = {
                let mut jobs = self.jobs.lock().unwrap();
                let existed = jobs.contains_key(&name);
                if !existed {
                    jobs.insert(name.clone(), parent.to_string());
                }
                existed
            };
            for _ in 0..4 {
                tokio::task::yield_now().await;
            }
            if existed {
                self.refused.fetch_add(1, Ordering::SeqCst);
                return Err(api_error(
                    ErrorClass::AlreadyExists,
                    "ResourceAlreadyExistsException",
                ));
            }
            if self.lose_answers.load(Ordering::SeqCst) {
                return Err(api_error(ErrorClass::Transient, "dispatch failure"));
            }
            Ok(Some(format!("arn:job/{name}")))
        }

        async fn owner(&self, name: &str) -> Result<Option<String>, ApiError> {
            self.described.fetch_add(1, Ordering::SeqCst);
            Ok(self.jobs.lock().unwrap().get(name).cloned())
        }

        fn sent(&self) -> Vec<String> {
            self.sent.lock().unwrap().clone()
        }

        fn refused(&self) -> usize {
            self.refused.load(Ordering::SeqCst)
        }

        fn described(&self) -> usize {
            self.described.load(Ordering::SeqCst)
        }

        fn jobs_of(&self, parent: &str) -> Vec<String> {
            let jobs = self.jobs.lock().unwrap();
            let mut of: Vec<String> = jobs
                .iter()
                .filter(|(_, p)| p.as_str() == parent)
                .map(|(n, _)| n.clone())
                .collect();
            of.sort();
            of
        }
    }

    /// Creates `NAME` for `parent` in `account`, as `execute` does.
    async fn create_for(account: &Account, names: &JobNames, parent: &str) -> Executed {
        let job = Job {
            kind: "dataset-import-job",
            name: NAME,
            parent,
            segment: false,
        };
        create_job(
            names,
            job,
            |name: String| account.create(name, parent),
            || account.owner(NAME),
        )
        .await
    }

    fn started(e: &Executed) -> bool {
        matches!(e, Executed::Started { .. })
    }

    fn shared_store() -> Arc<dyn JobClaims> {
        Arc::new(StoreClaims(
            Arc::new(SqliteStore::in_memory().unwrap()) as Arc<dyn StateStore>
        ))
    }

    /// A claim store that is down.
    #[derive(Debug)]
    struct Down;

    #[async_trait::async_trait]
    impl JobClaims for Down {
        async fn claim(&self, name: &str, _: &str, _: Option<&str>) -> Result<String, StoreError> {
            Err(StoreError::Corrupt {
                what: format!("job name claim {name}"),
                reason: "the table is unreachable".into(),
            })
        }
    }

    #[tokio::test]
    async fn two_groups_creating_one_name_at_once_cost_no_refused_create() {
        let account = Account::default();
        let names = JobNames::new();
        let (a, b) = tokio::join!(
            create_for(&account, &names, "arn:dataset/a"),
            create_for(&account, &names, "arn:dataset/b")
        );
        assert!(started(&a) && started(&b), "{a:?} {b:?}");
        let renamed = names::collision_free(NAME, "arn:dataset/b");
        assert_eq!(account.sent(), vec![NAME.to_string(), renamed.clone()]);
        assert_eq!((account.refused(), account.described()), (0, 0));
        // A resumed run of the first group keeps its own name: refused, described, adopted.
        let again = create_for(&account, &names, "arn:dataset/a").await;
        assert_eq!(again, Executed::Adopted);
        assert_eq!(account.jobs_of("arn:dataset/a"), vec![NAME.to_string()]);
        assert_eq!(account.jobs_of("arn:dataset/b"), vec![renamed]);
    }

    #[tokio::test]
    async fn a_name_another_replica_claimed_goes_straight_to_its_collision_free_form() {
        let account = Account::default();
        let claims = shared_store();
        let (one, two) = (JobNames::shared(claims.clone()), JobNames::shared(claims.clone()));
        let (a, b) = tokio::join!(
            create_for(&account, &one, "arn:dataset/a"),
            create_for(&account, &two, "arn:dataset/b")
        );
        assert!(started(&a) && started(&b), "{a:?} {b:?}");
        assert_eq!(
            (account.refused(), account.described()),
            (0, 0),
            "{:?}",
            account.sent()
        );
        assert_eq!(account.sent().len(), 2);
        // Either may have claimed first; each has one job, the other under its collision-free name.
        let a_jobs = account.jobs_of("arn:dataset/a");
        let b_jobs = account.jobs_of("arn:dataset/b");
        assert_eq!(a_jobs.len() + b_jobs.len(), 2);
        assert!(
            a_jobs == [NAME] && b_jobs == [names::collision_free(NAME, "arn:dataset/b")]
                || b_jobs == [NAME] && a_jobs == [names::collision_free(NAME, "arn:dataset/a")],
            "{a_jobs:?} {b_jobs:?}"
        );
        // The same two replicas without the shared claims: a refused create and a describe.
        let unshared = Account::default();
        let (one, two) = (JobNames::new(), JobNames::new());
        create_for(&unshared, &one, "arn:dataset/a").await;
        create_for(&unshared, &two, "arn:dataset/b").await;
        assert_eq!((unshared.refused(), unshared.described()), (1, 1));
    }

    #[tokio::test]
    async fn a_retry_after_a_lost_answer_adopts_its_own_job_on_any_replica() {
        let account = Account::default();
        let claims = shared_store();
        let one = JobNames::shared(claims.clone());
        account.lose_answers.store(true, Ordering::SeqCst);
        let lost = create_for(&account, &one, "arn:dataset/a").await;
        assert!(matches!(lost, Executed::Later { .. }), "{lost:?}");
        account.lose_answers.store(false, Ordering::SeqCst);
        // The name stays the first group's here: another group in this process renames at once.
        let b = create_for(&account, &one, "arn:dataset/b").await;
        assert!(started(&b), "{b:?}");
        // The retry, here or on another replica, sends the plain name again and adopts its job.
        assert_eq!(
            create_for(&account, &one, "arn:dataset/a").await,
            Executed::Adopted
        );
        let two = JobNames::shared(claims);
        assert_eq!(
            create_for(&account, &two, "arn:dataset/a").await,
            Executed::Adopted
        );
        assert_eq!(account.jobs_of("arn:dataset/a"), vec![NAME.to_string()]);
        let renamed_a = names::collision_free(NAME, "arn:dataset/a");
        assert!(!account.sent().contains(&renamed_a), "{:?}", account.sent());
        assert_eq!(account.refused(), 2, "only the two retries are refused");
    }

    #[tokio::test]
    async fn a_describe_moves_the_claim_to_the_job_s_owner() {
        // The first group created its job while the claim store was down, so the second claimed
        // the name: the second's refused create and describe give the claim to the first, whose
        // retry on a third replica then keeps its name instead of creating a second job.
        let account = Account::default();
        let claims = shared_store();
        let down = JobNames::shared(Arc::new(Down));
        account.lose_answers.store(true, Ordering::SeqCst);
        create_for(&account, &down, "arn:dataset/a").await;
        account.lose_answers.store(false, Ordering::SeqCst);
        let two = JobNames::shared(claims.clone());
        let b = create_for(&account, &two, "arn:dataset/b").await;
        assert!(started(&b), "{b:?}");
        assert_eq!((account.refused(), account.described()), (1, 1));
        let three = JobNames::shared(claims);
        assert_eq!(
            create_for(&account, &three, "arn:dataset/a").await,
            Executed::Adopted
        );
        assert_eq!(account.jobs_of("arn:dataset/a"), vec![NAME.to_string()]);
    }

    #[tokio::test]
    async fn a_failing_claim_store_falls_back_to_the_refusal_and_the_describe() {
        let account = Account::default();
        let (one, two) = (JobNames::shared(Arc::new(Down)), JobNames::shared(Arc::new(Down)));
        let a = create_for(&account, &one, "arn:dataset/a").await;
        let b = create_for(&account, &two, "arn:dataset/b").await;
        assert!(started(&a) && started(&b), "{a:?} {b:?}");
        let renamed = names::collision_free(NAME, "arn:dataset/b");
        assert_eq!(account.sent(), vec![NAME.to_string(), NAME.to_string(), renamed]);
        assert_eq!((account.refused(), account.described()), (1, 1));
        assert_eq!(
            create_for(&account, &two, "arn:dataset/a").await,
            Executed::Adopted
        );
    }

    #[tokio::test]
    async fn a_create_personalize_refused_gives_the_name_back() {
        let names = JobNames::new();
        let refused = |_: String| async { Err(api_error(ErrorClass::Rejected, "InvalidInputException")) };
        let job = Job {
            kind: "dataset-import-job",
            name: NAME,
            parent: "arn:dataset/a",
            segment: false,
        };
        let nobody = || async { Ok(None) };
        let r = create_job(&names, job, refused, nobody).await;
        assert!(matches!(r, Executed::Rejected { .. }), "{r:?}");
        assert_eq!(names.holder(NAME), None);
        // Throttled past the retries: the job may exist, so the name is kept.
        let throttled = |_: String| async { Err(api_error(ErrorClass::Transient, "ThrottlingException")) };
        let r = create_job(&names, job, throttled, nobody).await;
        assert!(matches!(r, Executed::Later { .. }), "{r:?}");
        assert_eq!(names.holder(NAME).as_deref(), Some("arn:dataset/a"));
    }
}
