//! Reading what exists for one dataset group: describes by name-derived ARN, lists under parents.

use crate::plan::observed::*;
use crate::plan::{Kind, Phase};
use crate::spec::kinds::DatasetType;
use crate::spec::model::Spec;

use super::api::{Api, ApiError, ErrorClass};
use super::convert::{self, time};

/// `Ok(None)` for a resource that does not exist.
fn found<T>(r: Result<T, ApiError>) -> Result<Option<T>, ApiError> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.class == ErrorClass::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

fn meta(
    arn: Option<&str>,
    status: Option<&str>,
    failure: Option<&str>,
    created: Option<&aws_smithy_types::DateTime>,
    updated: Option<&aws_smithy_types::DateTime>,
) -> Meta {
    Meta {
        arn: arn.unwrap_or_default().to_string(),
        status: status.unwrap_or_default().to_string(),
        failure_reason: failure.map(str::to_string),
        created: time(created),
        updated: time(updated),
    }
}

/// `arn:…:dataset-group/g` → `arn:…:` (the prefix of every name-derived ARN in that account).
pub fn arn_prefix(group_arn: &str) -> Option<&str> {
    group_arn.find("dataset-group/").map(|i| &group_arn[..i])
}

/// Finds a dataset group's ARN by listing (used once per group; the ARN is then remembered).
pub async fn find_group(api: &Api, name: &str) -> Result<Option<String>, ApiError> {
    let mut token: Option<String> = None;
    loop {
        let page = api
            .call("ListDatasetGroups", name, || {
                api.client
                    .list_dataset_groups()
                    .set_next_token(token.clone())
                    .max_results(100)
                    .send()
            })
            .await?;
        if let Some(g) = page
            .dataset_groups()
            .iter()
            .find(|g| g.name.as_deref() == Some(name))
        {
            return Ok(g.dataset_group_arn.clone());
        }
        match page.next_token {
            Some(t) if !t.is_empty() => token = Some(t),
            _ => return Ok(None),
        }
    }
}

/// Resources seen ACTIVE earlier in this run whose described configuration cannot change by
/// itself (dataset group, schemas, datasets, filters, solutions): not described again until the
/// next run, which saves most of the calls of a long wait.
#[derive(Debug, Clone, Default)]
pub struct Settled {
    group: Option<DatasetGroupObs>,
    schemas: std::collections::BTreeMap<String, SchemaObs>,
    datasets: std::collections::BTreeMap<DatasetType, DatasetObs>,
    filters: std::collections::BTreeMap<String, FilterObs>,
    solutions: std::collections::BTreeMap<String, SolutionObs>,
}

impl Settled {
    /// Forgets `target`, so the next pass describes it again (after a call changed it).
    pub fn forget(&mut self, target: &crate::plan::Ref) {
        match target.kind {
            Kind::DatasetGroup => self.group = None,
            Kind::Schema => {
                self.schemas.remove(&target.name);
            }
            Kind::Dataset => self.datasets.retain(|_, d| d.name != target.name),
            Kind::Filter => {
                self.filters.remove(&target.name);
            }
            Kind::Solution => {
                self.solutions.remove(&target.name);
            }
            _ => {}
        }
    }

    /// Keeps what is ACTIVE in `o` and not being updated (schemas have no status: kept once seen).
    pub fn learn(&mut self, o: &Observation) {
        let updating = |arn: &str| {
            o.updates
                .get(arn)
                .is_some_and(|u| Phase::of(&u.status) == Phase::Pending)
        };
        if let Some(g) = o.group.as_ref().filter(|g| g.meta.phase() == Phase::Active) {
            self.group = Some(g.clone());
        }
        self.schemas
            .extend(o.schemas.iter().map(|(k, v)| (k.clone(), v.clone())));
        for (k, v) in &o.datasets {
            if v.meta.phase() == Phase::Active && !updating(&v.meta.arn) {
                self.datasets.insert(*k, v.clone());
            }
        }
        for (k, v) in &o.filters {
            if v.meta.phase() == Phase::Active {
                self.filters.insert(k.clone(), v.clone());
            }
        }
        for (k, v) in &o.solutions {
            if v.meta.phase() == Phase::Active && !updating(&v.meta.arn) {
                self.solutions.insert(k.clone(), v.clone());
            }
        }
    }
}

/// Everything the planner needs, given the group's ARN when known. With `list_unmanaged`, the
/// group's solutions, filters, datasets and campaigns are listed too, for `plan`'s report.
/// `settled` resources are taken as they are, not described again.
pub async fn observe(
    api: &Api,
    spec: &Spec,
    group_arn: Option<&str>,
    list_unmanaged: bool,
    settled: &Settled,
) -> Result<Observation, ApiError> {
    let mut o = Observation::default();
    let Some(group_arn) = group_arn else {
        return Ok(o);
    };
    if let Some(g) = settled.group.as_ref().filter(|g| g.meta.arn == group_arn) {
        o.group = Some(g.clone());
    } else {
        let Some(g) = found(
            api.call("DescribeDatasetGroup", group_arn, || {
                api.client
                    .describe_dataset_group()
                    .dataset_group_arn(group_arn)
                    .send()
            })
            .await,
        )?
        .and_then(|r| r.dataset_group) else {
            return Ok(o);
        };
        o.group = Some(DatasetGroupObs {
            meta: meta(
                g.dataset_group_arn.as_deref(),
                g.status.as_deref(),
                g.failure_reason.as_deref(),
                g.creation_date_time.as_ref(),
                g.last_updated_date_time.as_ref(),
            ),
            domain: g.domain.as_ref().map(|d| d.as_str().to_string()),
            kms_key_arn: g.kms_key_arn.clone(),
        });
    }
    let Some(prefix) = arn_prefix(group_arn).map(str::to_string) else {
        return Ok(o);
    };
    let group_name = &spec.dataset_group.name;

    if let Some(ds) = &spec.datasets {
        for d in ds.all() {
            if let Some(schema) = &d.schema
                && let Some(known) = settled.schemas.get(&schema.name)
            {
                o.schemas.insert(schema.name.clone(), known.clone());
            } else if let Some(schema) = &d.schema
                && !o.schemas.contains_key(&schema.name)
            {
                let arn = format!("{prefix}schema/{}", schema.name);
                if let Some(s) = found(
                    api.call("DescribeSchema", &arn, || {
                        api.client.describe_schema().schema_arn(&arn).send()
                    })
                    .await,
                )?
                .and_then(|r| r.schema)
                {
                    let document = s
                        .schema
                        .as_deref()
                        .and_then(|t| serde_json::from_str(t).ok())
                        .unwrap_or(serde_json::Value::Null);
                    o.schemas.insert(
                        schema.name.clone(),
                        SchemaObs {
                            arn: s.schema_arn.unwrap_or(arn),
                            document,
                            domain: s.domain.map(|d| d.as_str().to_string()),
                        },
                    );
                }
            }
            observe_dataset(api, &mut o, &prefix, group_name, d.dataset_type, settled).await?;
        }
    }
    if list_unmanaged {
        list_group(api, &mut o, group_arn).await?;
    }

    if spec.event_tracker.is_some() {
        let page = api
            .call("ListEventTrackers", group_arn, || {
                api.client
                    .list_event_trackers()
                    .dataset_group_arn(group_arn)
                    .max_results(100)
                    .send()
            })
            .await?;
        for t in page.event_trackers() {
            let name = t.name.clone().unwrap_or_default();
            o.listed.push(Listed {
                kind: Kind::EventTracker,
                name: name.clone(),
                arn: t.event_tracker_arn.clone().unwrap_or_default(),
            });
            o.event_trackers.push(EventTrackerObs {
                meta: meta(
                    t.event_tracker_arn.as_deref(),
                    t.status.as_deref(),
                    None,
                    t.creation_date_time.as_ref(),
                    t.last_updated_date_time.as_ref(),
                ),
                name,
            });
        }
    }

    for f in &spec.filters {
        if let Some(known) = settled.filters.get(&f.name) {
            o.filters.insert(f.name.clone(), known.clone());
            continue;
        }
        let arn = format!("{prefix}filter/{}", f.name);
        if let Some(x) = found(
            api.call("DescribeFilter", &arn, || {
                api.client.describe_filter().filter_arn(&arn).send()
            })
            .await,
        )?
        .and_then(|r| r.filter)
        {
            o.filters.insert(
                f.name.clone(),
                FilterObs {
                    meta: meta(
                        x.filter_arn.as_deref(),
                        x.status.as_deref(),
                        x.failure_reason.as_deref(),
                        x.creation_date_time.as_ref(),
                        x.last_updated_date_time.as_ref(),
                    ),
                    group_arn: x.dataset_group_arn.unwrap_or_default(),
                    expression: x.filter_expression.unwrap_or_default(),
                },
            );
        }
    }

    for s in &spec.solutions {
        let arn = format!("{prefix}solution/{}", s.name);
        let solution_arn = if let Some(known) = settled.solutions.get(&s.name) {
            o.solutions.insert(s.name.clone(), known.clone());
            known.meta.arn.clone()
        } else {
            let Some(x) = found(
                api.call("DescribeSolution", &arn, || {
                    api.client.describe_solution().solution_arn(&arn).send()
                })
                .await,
            )?
            .and_then(|r| r.solution) else {
                continue;
            };
            let solution_arn = x.solution_arn.clone().unwrap_or_else(|| arn.clone());
            o.solutions.insert(
                s.name.clone(),
                SolutionObs {
                    meta: meta(
                        Some(&solution_arn),
                        x.status.as_deref(),
                        None,
                        x.creation_date_time.as_ref(),
                        x.last_updated_date_time.as_ref(),
                    ),
                    group_arn: x.dataset_group_arn.clone().unwrap_or_default(),
                    recipe_arn: x.recipe_arn.clone(),
                    perform_hpo: x.perform_hpo,
                    perform_auto_training: x.perform_auto_training,
                    event_type: x.event_type.clone(),
                    config: convert::solution_config_json(x.solution_config.as_ref()),
                },
            );
            if let Some(u) = &x.latest_solution_update {
                o.updates
                    .insert(solution_arn.clone(), convert::solution_update_obs(u));
            }
            solution_arn
        };
        let versions = list_versions(api, &solution_arn).await?;
        // Batch jobs matter only under the version campaigns and jobs use: the newest ACTIVE one.
        let newest_active = versions
            .iter()
            .filter(|v| v.meta.phase() == Phase::Active)
            .max_by_key(|v| (v.meta.created, v.meta.arn.clone()))
            .map(|v| v.meta.arn.clone());
        o.versions.insert(s.name.clone(), versions);
        if let Some(v) = newest_active {
            if !s.batch_inference_jobs.is_empty() {
                let jobs = list_batch_jobs(api, &v, false).await?;
                o.batch_inference_jobs.insert(v.clone(), jobs);
            }
            if !s.batch_segment_jobs.is_empty() {
                let jobs = list_batch_jobs(api, &v, true).await?;
                o.batch_segment_jobs.insert(v.clone(), jobs);
            }
        }
        if list_unmanaged {
            let page = api
                .call("ListCampaigns", &solution_arn, || {
                    api.client
                        .list_campaigns()
                        .solution_arn(&solution_arn)
                        .max_results(100)
                        .send()
                })
                .await?;
            for c in page.campaigns() {
                o.listed.push(Listed {
                    kind: Kind::Campaign,
                    name: c.name.clone().unwrap_or_default(),
                    arn: c.campaign_arn.clone().unwrap_or_default(),
                });
            }
        }
        for c in &s.campaigns {
            let arn = format!("{prefix}campaign/{}", c.name);
            let Some(x) = found(
                api.call("DescribeCampaign", &arn, || {
                    api.client.describe_campaign().campaign_arn(&arn).send()
                })
                .await,
            )?
            .and_then(|r| r.campaign) else {
                continue;
            };
            let latest_update = x.latest_campaign_update.as_ref().map(|u| CampaignUpdateObs {
                status: u.status.clone().unwrap_or_default(),
                failure_reason: u.failure_reason.clone(),
                solution_version_arn: u.solution_version_arn.clone(),
                min_provisioned_tps: u.min_provisioned_tps,
                config: convert::campaign_config_json(u.campaign_config.as_ref()),
            });
            o.campaigns.insert(
                c.name.clone(),
                CampaignObs {
                    meta: meta(
                        x.campaign_arn.as_deref(),
                        x.status.as_deref(),
                        x.failure_reason.as_deref(),
                        x.creation_date_time.as_ref(),
                        x.last_updated_date_time.as_ref(),
                    ),
                    solution_version_arn: x.solution_version_arn.clone().unwrap_or_default(),
                    min_provisioned_tps: x.min_provisioned_tps.unwrap_or(1),
                    config: convert::campaign_config_json(x.campaign_config.as_ref()),
                    latest_update,
                },
            );
        }
    }

    for r in &spec.recommenders {
        let arn = format!("{prefix}recommender/{}", r.name);
        if let Some(x) = found(
            api.call("DescribeRecommender", &arn, || {
                api.client.describe_recommender().recommender_arn(&arn).send()
            })
            .await,
        )?
        .and_then(|r| r.recommender)
        {
            o.recommenders.insert(
                r.name.clone(),
                RecommenderObs {
                    meta: meta(
                        x.recommender_arn.as_deref(),
                        x.status.as_deref(),
                        x.failure_reason.as_deref(),
                        x.creation_date_time.as_ref(),
                        x.last_updated_date_time.as_ref(),
                    ),
                    group_arn: x.dataset_group_arn.clone().unwrap_or_default(),
                    recipe_arn: x.recipe_arn.clone().unwrap_or_default(),
                    config: convert::recommender_config_json(x.recommender_config.as_ref()),
                },
            );
            if let (Some(u), Some(arn)) = (&x.latest_recommender_update, &x.recommender_arn) {
                o.updates.insert(arn.clone(), convert::recommender_update_obs(u));
            }
        }
    }
    Ok(o)
}

async fn observe_dataset(
    api: &Api,
    o: &mut Observation,
    prefix: &str,
    group_name: &str,
    ty: DatasetType,
    settled: &Settled,
) -> Result<(), ApiError> {
    let arn = format!("{prefix}dataset/{group_name}/{}", ty.arn_suffix());
    if let Some(known) = settled.datasets.get(&ty) {
        o.datasets.insert(ty, known.clone());
    } else {
        let Some(x) = found(
            api.call("DescribeDataset", &arn, || {
                api.client.describe_dataset().dataset_arn(&arn).send()
            })
            .await,
        )?
        .and_then(|r| r.dataset) else {
            return Ok(());
        };
        o.datasets.insert(
            ty,
            DatasetObs {
                meta: meta(
                    x.dataset_arn.as_deref(),
                    x.status.as_deref(),
                    None,
                    x.creation_date_time.as_ref(),
                    x.last_updated_date_time.as_ref(),
                ),
                name: x.name.clone().unwrap_or_default(),
                schema_arn: x.schema_arn.clone().unwrap_or_default(),
                group_arn: x.dataset_group_arn.clone().unwrap_or_default(),
            },
        );
        if let (Some(u), Some(arn)) = (&x.latest_dataset_update, &x.dataset_arn) {
            o.updates.insert(arn.clone(), convert::dataset_update_obs(u));
        }
    }
    let mut jobs = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = api
            .call("ListDatasetImportJobs", &arn, || {
                api.client
                    .list_dataset_import_jobs()
                    .dataset_arn(&arn)
                    .set_next_token(token.clone())
                    .max_results(100)
                    .send()
            })
            .await?;
        for j in page.dataset_import_jobs() {
            jobs.push(ImportJobObs {
                meta: meta(
                    j.dataset_import_job_arn.as_deref(),
                    j.status.as_deref(),
                    j.failure_reason.as_deref(),
                    j.creation_date_time.as_ref(),
                    j.last_updated_date_time.as_ref(),
                ),
                job_name: j.job_name.clone().unwrap_or_default(),
            });
        }
        match page.next_token {
            Some(t) if !t.is_empty() => token = Some(t),
            _ => break,
        }
    }
    o.import_jobs.insert(ty, jobs);
    Ok(())
}

async fn list_versions(api: &Api, solution_arn: &str) -> Result<Vec<VersionObs>, ApiError> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = api
            .call("ListSolutionVersions", solution_arn, || {
                api.client
                    .list_solution_versions()
                    .solution_arn(solution_arn)
                    .set_next_token(token.clone())
                    .max_results(100)
                    .send()
            })
            .await?;
        for v in page.solution_versions() {
            out.push(VersionObs {
                meta: meta(
                    v.solution_version_arn.as_deref(),
                    v.status.as_deref(),
                    v.failure_reason.as_deref(),
                    v.creation_date_time.as_ref(),
                    v.last_updated_date_time.as_ref(),
                ),
                name: None,
                training_mode: v.training_mode.as_ref().map(|m| m.as_str().to_string()),
            });
        }
        match page.next_token {
            Some(t) if !t.is_empty() => token = Some(t),
            _ => return Ok(out),
        }
    }
}

pub(super) async fn list_batch_jobs(
    api: &Api,
    version_arn: &str,
    segment: bool,
) -> Result<Vec<BatchJobObs>, ApiError> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    // Inference and segment listings differ only in names: one shape, spelt once.
    macro_rules! page {
        ($op:literal, $call:ident, $items:ident, $arn:ident) => {{
            let page = api
                .call($op, version_arn, || {
                    api.client
                        .$call()
                        .solution_version_arn(version_arn)
                        .set_next_token(token.clone())
                        .max_results(100)
                        .send()
                })
                .await?;
            for j in page.$items() {
                out.push(BatchJobObs {
                    meta: meta(
                        j.$arn.as_deref(),
                        j.status.as_deref(),
                        j.failure_reason.as_deref(),
                        j.creation_date_time.as_ref(),
                        j.last_updated_date_time.as_ref(),
                    ),
                    job_name: j.job_name.clone().unwrap_or_default(),
                    solution_version_arn: j.solution_version_arn.clone().unwrap_or_default(),
                });
            }
            page.next_token
        }};
    }
    loop {
        let next = if segment {
            page!(
                "ListBatchSegmentJobs",
                list_batch_segment_jobs,
                batch_segment_jobs,
                batch_segment_job_arn
            )
        } else {
            page!(
                "ListBatchInferenceJobs",
                list_batch_inference_jobs,
                batch_inference_jobs,
                batch_inference_job_arn
            )
        };
        match next {
            Some(t) if !t.is_empty() => token = Some(t),
            _ => return Ok(out),
        }
    }
}

/// Lists what lives under the group, for the unmanaged report of `plan`.
async fn list_group(api: &Api, o: &mut Observation, group_arn: &str) -> Result<(), ApiError> {
    // The four listings differ only in names: one shape, spelt once.
    macro_rules! list {
        ($op:literal, $call:ident, $items:ident, $kind:expr, $arn:ident) => {{
            let page = api
                .call($op, group_arn, || {
                    api.client
                        .$call()
                        .dataset_group_arn(group_arn)
                        .max_results(100)
                        .send()
                })
                .await?;
            for x in page.$items() {
                o.listed.push(Listed {
                    kind: $kind,
                    name: x.name.clone().unwrap_or_default(),
                    arn: x.$arn.clone().unwrap_or_default(),
                });
            }
        }};
    }
    list!(
        "ListDatasets",
        list_datasets,
        datasets,
        Kind::Dataset,
        dataset_arn
    );
    list!("ListFilters", list_filters, filters, Kind::Filter, filter_arn);
    list!(
        "ListSolutions",
        list_solutions,
        solutions,
        Kind::Solution,
        solution_arn
    );
    list!(
        "ListRecommenders",
        list_recommenders,
        recommenders,
        Kind::Recommender,
        recommender_arn
    );
    Ok(())
}
