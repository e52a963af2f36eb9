//! Builds the typed [`Spec`] from a file that passed every check: defaults and root-tag inheritance
//! exactly as the reference applies them (docs/reference.md#trigger-and-defaults and
//! #tags-and-root-tag-inheritance).

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::spec::avro;
use crate::spec::duration;
use crate::spec::issues::{Issue, JsonPath};
use crate::spec::kinds::DatasetType;
use crate::spec::model::{
    BatchInferenceJob, BatchSegmentJob, Campaign, Dataset, DatasetGroup, DatasetImport, Datasets,
    EventTracker, Filter, ImportMode, MaxAge, Promotion, Recommender, Schema, Solution, SolutionSchedules,
    SolutionVersion, Spec, Tag, TrainingMode,
};
use crate::spec::rules::{at, list_at, str_at};
use crate::spec::schedule::Schedule;

/// The import `maxAge` when the file has none (the reference's `set_defaults`).
pub const DEFAULT_IMPORT_MAX_AGE: &str = "365 days";

/// The campaign `minProvisionedTPS` when the file has none.
pub const DEFAULT_MIN_PROVISIONED_TPS: i32 = 1;

/// Something the checks should have caught did not convert; reported as an error, never a panic.
type Built<T> = Result<T, Issue>;

fn broken(path: &JsonPath, what: &str) -> Issue {
    Issue {
        path: path.to_string(),
        message: format!("internal error: {what} passed validation but could not be read"),
    }
}

fn object(value: Option<&Value>) -> Option<&Map<String, Value>> {
    value.and_then(Value::as_object)
}

fn string(value: &Value, keys: &[&str], path: &JsonPath) -> Built<String> {
    str_at(value, keys)
        .map(str::to_string)
        .ok_or_else(|| broken(path, keys.last().copied().unwrap_or("value")))
}

fn optional_string(value: &Value, keys: &[&str]) -> Option<String> {
    str_at(value, keys).map(str::to_string)
}

fn bool_at(value: &Value, keys: &[&str]) -> Option<bool> {
    at(value, keys).and_then(Value::as_bool)
}

fn typed<T: DeserializeOwned>(value: &Value, keys: &[&str], path: &JsonPath) -> Built<Option<T>> {
    match at(value, keys) {
        None => Ok(None),
        Some(v) => serde_json::from_value(v.clone())
            .map(Some)
            .map_err(|e| broken(path, &format!("{} ({e})", keys.join(".")))),
    }
}

fn tag_list(value: &Value) -> Vec<Tag> {
    value
        .as_array()
        .map(|tags| {
            tags.iter()
                .filter_map(|t| {
                    Some(Tag {
                        key: t.get("tagKey")?.as_str()?.to_string(),
                        value: t.get("tagValue")?.as_str()?.to_string(),
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The effective tags of the resource whose `serviceConfig` is `config`: its own `tags` when the key
/// is there (even `[]`), else the root tags.
fn tags(config: Option<&Value>, root: &[Tag]) -> Vec<Tag> {
    match config.and_then(|c| c.get("tags")) {
        Some(own) => tag_list(own),
        None => root.to_vec(),
    }
}

fn schedule(value: &Value, keys: &[&str]) -> Option<Schedule> {
    str_at(value, keys).and_then(|s| Schedule::parse(s).ok())
}

/// A readable, non-zero maxAge; `None` otherwise (the reference drops such a value).
fn max_age(text: Option<&str>) -> Option<MaxAge> {
    let text = text?;
    let parsed = duration::parse_max_age(text).ok()?;
    let seconds = parsed.duration.as_secs();
    (seconds > 0).then(|| MaxAge {
        text: text.to_string(),
        seconds,
        approximate: parsed.approximate,
    })
}

/// Builds the model.
///
/// # Errors
/// An [`Issue`] when a value the checks accepted cannot be converted (a bug: the checks and this
/// function disagree). Never panics.
pub(crate) fn build(root: &Value) -> Built<Spec> {
    let root_tags = root.get("tags").map(tag_list).unwrap_or_default();
    let path = JsonPath::root();
    Ok(Spec {
        dataset_group: dataset_group(root, &root_tags)?,
        datasets: datasets(root, &root_tags)?,
        event_tracker: event_tracker(root, &root_tags),
        filters: filters(root, &root_tags)?,
        solutions: list_at(root, &["solutions"])
            .iter()
            .enumerate()
            .map(|(i, s)| solution(s, &path.key("solutions").index(i), &root_tags))
            .collect::<Built<_>>()?,
        recommenders: recommenders(root, &root_tags)?,
        tags: root_tags,
    })
}

fn dataset_group(root: &Value, root_tags: &[Tag]) -> Built<DatasetGroup> {
    let path = JsonPath::root().key("datasetGroup").key("serviceConfig");
    let group = root
        .get("datasetGroup")
        .ok_or_else(|| broken(&path, "datasetGroup"))?;
    let config = at(group, &["serviceConfig"]);
    let max_age_text = str_at(group, &["workflowConfig", "maxAge"]);
    let max_age = match at(group, &["workflowConfig", "maxAge"]) {
        None => max_age(Some(DEFAULT_IMPORT_MAX_AGE)),
        Some(_) => max_age(max_age_text),
    };
    Ok(DatasetGroup {
        name: string(group, &["serviceConfig", "name"], &path)?,
        domain: str_at(group, &["serviceConfig", "domain"]).and_then(|d| d.parse().ok()),
        role_arn: optional_string(group, &["serviceConfig", "roleArn"]),
        kms_key_arn: optional_string(group, &["serviceConfig", "kmsKeyArn"]),
        tags: tags(config, root_tags),
        import_schedule: schedule(group, &["workflowConfig", "schedules", "import"]),
        max_age,
        replace_filters: bool_at(group, &["workflowConfig", "replaceFilters"]).unwrap_or(false),
    })
}

fn datasets(root: &Value, root_tags: &[Tag]) -> Built<Option<Datasets>> {
    let Some(datasets) = root
        .get("datasets")
        .filter(|d| object(Some(d)).is_some_and(|m| !m.is_empty()))
    else {
        return Ok(None);
    };
    let path = JsonPath::root().key("datasets");
    let import_config = datasets.get("serviceConfig");
    let import = DatasetImport {
        import_mode: match import_config.and_then(|c| str_at(c, &["importMode"])) {
            Some("INCREMENTAL") => ImportMode::Incremental,
            _ => ImportMode::Full,
        },
        publish_attribution_metrics_to_s3: import_config
            .and_then(|c| bool_at(c, &["publishAttributionMetricsToS3"]))
            .unwrap_or(false),
        tags: tags(import_config, root_tags),
    };
    let one = |ty: DatasetType| -> Built<Option<Dataset>> {
        datasets
            .get(ty.key())
            .map(|d| dataset(d, ty, &path.key(ty.key()), root_tags))
            .transpose()
    };
    Ok(Some(Datasets {
        import,
        interactions: one(DatasetType::Interactions)?
            .ok_or_else(|| broken(&path, "datasets.interactions"))?,
        users: one(DatasetType::Users)?,
        items: one(DatasetType::Items)?,
    }))
}

fn dataset(value: &Value, ty: DatasetType, path: &JsonPath, root_tags: &[Tag]) -> Built<Dataset> {
    let schema = match at(value, &["schema", "serviceConfig"]) {
        None => None,
        Some(config) => {
            let schema_path = path.key("schema").key("serviceConfig");
            let document = config
                .get("schema")
                .cloned()
                .ok_or_else(|| broken(&schema_path, "schema"))?;
            let avro = avro::parse(&document).map_err(|_| broken(&schema_path, "schema"))?;
            Some(Schema {
                name: string(config, &["name"], &schema_path)?,
                domain: str_at(config, &["domain"]).and_then(|d| d.parse().ok()),
                document,
                avro,
            })
        }
    };
    Ok(Dataset {
        dataset_type: ty,
        name: string(value, &["dataset", "serviceConfig", "name"], path)?,
        tags: tags(at(value, &["dataset", "serviceConfig"]), root_tags),
        schema,
    })
}

fn event_tracker(root: &Value, root_tags: &[Tag]) -> Option<EventTracker> {
    let config = at(root, &["eventTracker", "serviceConfig"])?;
    Some(EventTracker {
        name: optional_string(config, &["name"])?,
        tags: tags(Some(config), root_tags),
    })
}

fn filters(root: &Value, root_tags: &[Tag]) -> Built<Vec<Filter>> {
    list_at(root, &["filters"])
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let path = JsonPath::root().key("filters").index(i).key("serviceConfig");
            Ok(Filter {
                name: string(f, &["serviceConfig", "name"], &path)?,
                filter_expression: string(f, &["serviceConfig", "filterExpression"], &path)?,
                tags: tags(f.get("serviceConfig"), root_tags),
            })
        })
        .collect()
}

fn solution(value: &Value, path: &JsonPath, root_tags: &[Tag]) -> Built<Solution> {
    let config_path = path.key("serviceConfig");
    let config = value
        .get("serviceConfig")
        .ok_or_else(|| broken(&config_path, "serviceConfig"))?;
    Ok(Solution {
        name: string(config, &["name"], &config_path)?,
        recipe_arn: optional_string(config, &["recipeArn"]),
        perform_hpo: bool_at(config, &["performHPO"]).unwrap_or(false),
        perform_auto_training: bool_at(config, &["performAutoTraining"]),
        perform_incremental_update: bool_at(config, &["performIncrementalUpdate"]),
        event_type: optional_string(config, &["eventType"]),
        solution_config: typed(config, &["solutionConfig"], &config_path)?,
        tags: tags(Some(config), root_tags),
        solution_version: solution_version(config.get("solutionVersion"), root_tags),
        schedules: SolutionSchedules {
            full: schedule(value, &["workflowConfig", "schedules", "full"]),
            update: schedule(value, &["workflowConfig", "schedules", "update"]),
        },
        retrain_on_new_data: bool_at(value, &["workflowConfig", "retrainOnNewData"]).unwrap_or(false),
        promotion: at(value, &["workflowConfig", "promotion"]).map(|p| Promotion {
            metric: str_at(p, &["metric"]).unwrap_or_default().to_string(),
            min_delta: at(p, &["minDelta"]).and_then(Value::as_f64).unwrap_or(0.0),
        }),
        campaigns: campaigns(value, path, root_tags)?,
        batch_inference_jobs: batch_inference_jobs(value, path, root_tags)?,
        batch_segment_jobs: batch_segment_jobs(value, root_tags),
    })
}

fn solution_version(version: Option<&Value>, root_tags: &[Tag]) -> SolutionVersion {
    SolutionVersion {
        name: version.and_then(|v| optional_string(v, &["name"])),
        training_mode: match version.and_then(|v| str_at(v, &["trainingMode"])) {
            Some("UPDATE") => TrainingMode::Update,
            _ => TrainingMode::Full,
        },
        // The solution version inherits the root tags, not the solution's
        // (docs/reference.md#tags-and-root-tag-inheritance).
        tags: tags(version, root_tags),
    }
}

fn campaigns(solution: &Value, path: &JsonPath, root_tags: &[Tag]) -> Built<Vec<Campaign>> {
    list_at(solution, &["campaigns"])
        .iter()
        .enumerate()
        .map(|(j, c)| {
            let campaign_path = path.key("campaigns").index(j).key("serviceConfig");
            Ok(Campaign {
                name: string(c, &["serviceConfig", "name"], &campaign_path)?,
                min_provisioned_tps: at(c, &["serviceConfig", "minProvisionedTPS"])
                    .and_then(Value::as_i64)
                    .and_then(|n| i32::try_from(n).ok())
                    .unwrap_or(DEFAULT_MIN_PROVISIONED_TPS),
                campaign_config: typed(c, &["serviceConfig", "campaignConfig"], &campaign_path)?,
                tags: tags(c.get("serviceConfig"), root_tags),
            })
        })
        .collect()
}

fn batch_inference_jobs(
    solution: &Value,
    path: &JsonPath,
    root_tags: &[Tag],
) -> Built<Vec<BatchInferenceJob>> {
    list_at(solution, &["batchInferenceJobs"])
        .iter()
        .enumerate()
        .map(|(j, job)| {
            let job_path = path.key("batchInferenceJobs").index(j).key("serviceConfig");
            Ok(BatchInferenceJob {
                num_results: int_at(job, &["serviceConfig", "numResults"]),
                filter_arn: optional_string(job, &["serviceConfig", "filterArn"]),
                batch_inference_job_config: typed(
                    job,
                    &["serviceConfig", "batchInferenceJobConfig"],
                    &job_path,
                )?,
                batch_inference_job_mode: typed(job, &["serviceConfig", "batchInferenceJobMode"], &job_path)?,
                theme_generation_config: typed(job, &["serviceConfig", "themeGenerationConfig"], &job_path)?,
                tags: tags(job.get("serviceConfig"), root_tags),
                schedule: schedule(job, &["workflowConfig", "schedule"]),
                max_age: max_age(str_at(job, &["workflowConfig", "maxAge"])),
            })
        })
        .collect()
}

fn batch_segment_jobs(solution: &Value, root_tags: &[Tag]) -> Vec<BatchSegmentJob> {
    list_at(solution, &["batchSegmentJobs"])
        .iter()
        .map(|job| BatchSegmentJob {
            num_results: int_at(job, &["serviceConfig", "numResults"]),
            filter_arn: optional_string(job, &["serviceConfig", "filterArn"]),
            tags: tags(job.get("serviceConfig"), root_tags),
            schedule: schedule(job, &["workflowConfig", "schedule"]),
            max_age: max_age(str_at(job, &["workflowConfig", "maxAge"])),
        })
        .collect()
}

fn int_at(value: &Value, keys: &[&str]) -> Option<i32> {
    at(value, keys)
        .and_then(Value::as_i64)
        .and_then(|n| i32::try_from(n).ok())
}

fn recommenders(root: &Value, root_tags: &[Tag]) -> Built<Vec<Recommender>> {
    list_at(root, &["recommenders"])
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let path = JsonPath::root().key("recommenders").index(i).key("serviceConfig");
            Ok(Recommender {
                name: string(r, &["serviceConfig", "name"], &path)?,
                recipe_arn: string(r, &["serviceConfig", "recipeArn"], &path)?,
                recommender_config: typed(r, &["serviceConfig", "recommenderConfig"], &path)?,
                tags: tags(r.get("serviceConfig"), root_tags),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::spec::load::{load, load_value};
    use crate::spec::model::Spec;

    fn spec_of(text: &str) -> Spec {
        let report = load(text);
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        report.spec.expect("a valid file builds")
    }

    /// Every tag list of the model with where it came from, in a fixed order.
    fn all_tags(spec: &Spec) -> Vec<(String, Vec<Tag>)> {
        let mut out = vec![("datasetGroup".to_string(), spec.dataset_group.tags.clone())];
        if let Some(d) = &spec.datasets {
            out.push(("datasetImport".into(), d.import.tags.clone()));
            for ds in d.all() {
                out.push((format!("dataset {}", ds.dataset_type), ds.tags.clone()));
            }
        }
        if let Some(t) = &spec.event_tracker {
            out.push(("eventTracker".into(), t.tags.clone()));
        }
        for f in &spec.filters {
            out.push((format!("filter {}", f.name), f.tags.clone()));
        }
        for s in &spec.solutions {
            out.push((format!("solution {}", s.name), s.tags.clone()));
            out.push((
                format!("solutionVersion {}", s.name),
                s.solution_version.tags.clone(),
            ));
            for c in &s.campaigns {
                out.push((format!("campaign {}", c.name), c.tags.clone()));
            }
            for (i, j) in s.batch_inference_jobs.iter().enumerate() {
                out.push((format!("batchJob {} {i}", s.name), j.tags.clone()));
            }
            for (i, j) in s.batch_segment_jobs.iter().enumerate() {
                out.push((format!("segmentJob {} {i}", s.name), j.tags.clone()));
            }
        }
        for r in &spec.recommenders {
            out.push((format!("recommender {}", r.name), r.tags.clone()));
        }
        out
    }

    fn tag(key: &str, value: &str) -> Tag {
        Tag {
            key: key.into(),
            value: value.into(),
        }
    }

    /// The reference's test_dataset_defaults: without root tags every resource gets `[]`, and the
    /// import, solution version and campaign defaults are filled in.
    #[test]
    fn test_dataset_defaults() {
        let spec = spec_of(include_str!("../../tests/fixtures/sample_config.json"));
        for (resource, tags) in all_tags(&spec) {
            assert!(tags.is_empty(), "{resource}: {tags:?}");
        }
        let datasets = spec.datasets.as_ref().expect("declared");
        assert_eq!(datasets.import.import_mode, ImportMode::Full);
        assert!(!datasets.import.publish_attribution_metrics_to_s3);
        assert_eq!(
            spec.dataset_group.max_age.as_ref().map(|m| m.seconds),
            Some(365 * 86_400)
        );
        assert_eq!(spec.solutions.len(), 6);
        for solution in &spec.solutions {
            assert_eq!(solution.solution_version.training_mode, TrainingMode::Full);
            assert_eq!(solution.solution_version.name, None);
            assert!(!solution.perform_hpo);
            assert!(!solution.retrain_on_new_data);
        }
        assert_eq!(spec.solutions[4].campaigns[0].min_provisioned_tps, 1);
        assert_eq!(
            spec.dataset_group
                .import_schedule
                .as_ref()
                .map(ToString::to_string),
            Some("cron(0 */6 * * ? *)".to_string())
        );
    }

    /// The reference's test_dataset_root_tags: every resource without its own `tags` gets the root
    /// list; schemas get none.
    #[test]
    fn test_dataset_root_tags() {
        let spec = spec_of(include_str!("../../tests/fixtures/sample_config_root_tags.json"));
        let root = vec![tag("hello", "world")];
        assert_eq!(spec.tags, root);
        let all = all_tags(&spec);
        assert!(all.len() >= 12, "{all:?}");
        for (resource, tags) in all {
            assert_eq!(tags, root, "{resource}");
        }
    }

    #[test]
    fn explicit_tags_win_over_root_tags_even_when_empty() {
        let spec = spec_of(include_str!("../../tests/fixtures/sample_config_wtags.json"));
        let root = vec![tag("tag12", "key12")];
        assert_eq!(spec.dataset_group.tags, vec![tag("tag0", "key0")]);
        let datasets = spec.datasets.as_ref().expect("declared");
        assert_eq!(datasets.import.tags, vec![tag("tag1", "key1")]);
        assert_eq!(
            datasets.items.as_ref().map(|d| d.tags.clone()),
            Some(root.clone())
        );
        let affinity = &spec.solutions[0];
        assert_eq!(affinity.tags, vec![tag("tag4", "key4")]);
        assert_eq!(affinity.solution_version.tags, vec![tag("tag5", "key5")]);
        assert_eq!(affinity.batch_segment_jobs[0].tags, vec![tag("tag6", "key6")]);
        // The solution version inherits the root tags, not its solution's
        // (docs/reference.md#tags-and-root-tag-inheritance).
        assert_eq!(spec.solutions[1].tags, vec![tag("tag7", "key7")]);
        assert_eq!(spec.solutions[1].solution_version.tags, root);
        assert_eq!(spec.recommenders[0].tags, vec![tag("hello13", "world13")]);

        let explicit_empty = load_value(&json!({
            "tags": [{"tagKey": "a", "tagValue": "b"}],
            "datasetGroup": {"serviceConfig": {"name": "g", "tags": []}}
        }));
        let spec = explicit_empty.spec.expect("valid");
        assert!(spec.dataset_group.tags.is_empty());
    }

    #[test]
    fn replace_filters_defaults_to_false_and_must_be_a_boolean() {
        let group = |workflow: serde_json::Value| {
            load_value(&json!({"datasetGroup": {"serviceConfig": {"name": "g"}, "workflowConfig": workflow}}))
        };
        let report = group(json!({}));
        assert!(!report.spec.expect("valid").dataset_group.replace_filters);
        let report = group(json!({"replaceFilters": "yes"}));
        assert!(report.spec.is_none());
        assert!(
            report.errors.iter().any(|e| e
                .to_string()
                .contains("datasetGroup.workflowConfig.replaceFilters")),
            "{:?}",
            report.errors
        );
    }

    #[test]
    fn a_promotion_gate_needs_a_known_metric_and_a_number_and_says_where() {
        let solution = |workflow: serde_json::Value| {
            load_value(&json!({
                "datasetGroup": {"serviceConfig": {"name": "g"}},
                "solutions": [{"serviceConfig": {"name": "s", "recipeArn": "arn:aws:personalize:::recipe/aws-user-personalization"},
                               "workflowConfig": workflow}]
            }))
        };
        let report = solution(json!({"promotion": {"metric": "precision_at_10"}}));
        let spec = report.spec.expect("valid");
        let promotion = spec.solutions[0].promotion.as_ref().expect("set");
        assert_eq!(
            (promotion.metric.as_str(), promotion.min_delta),
            ("precision_at_10", 0.0)
        );
        assert!(
            solution(json!({})).spec.expect("valid").solutions[0]
                .promotion
                .is_none()
        );

        for (bad, path) in [
            (
                json!({"promotion": {"metric": "accuracy"}}),
                "solutions[0].workflowConfig.promotion.metric",
            ),
            (
                json!({"promotion": {"metric": "precision_at_10", "minDelta": "0.1"}}),
                "solutions[0].workflowConfig.promotion.minDelta",
            ),
            (json!({"promotion": {"minDelta": 0.1}}), "metric"),
            (
                json!({"promotion": {"metric": "precision_at_10", "margin": 1}}),
                "solutions[0].workflowConfig.promotion.margin",
            ),
        ] {
            let report = solution(bad.clone());
            assert!(report.spec.is_none(), "{bad}");
            let errors: Vec<String> = report.errors.iter().map(ToString::to_string).collect();
            assert!(errors.iter().any(|e| e.contains(path)), "{bad}: {errors:?}");
        }
    }

    #[test]
    fn values_from_the_file_reach_the_model() {
        let report = load_value(&json!({
            "datasetGroup": {
                "serviceConfig": {"name": "g", "domain": "ECOMMERCE"},
                "workflowConfig": {"maxAge": "1 day 2 hours", "schedules": {"import": "rate(1 day)"}, "replaceFilters": true}
            },
            "datasets": {
                "serviceConfig": {"importMode": "INCREMENTAL", "publishAttributionMetricsToS3": true},
                "interactions": {"dataset": {"serviceConfig": {"name": "i"}}}
            },
            "solutions": [{
                "serviceConfig": {
                    "name": "s", "recipeArn": "arn:aws:personalize:::recipe/aws-user-personalization",
                    "performHPO": true, "performAutoTraining": false, "eventType": "click",
                    "solutionConfig": {"algorithmHyperParameters": {"hidden_dimension": "64"},
                                       "autoTrainingConfig": {"schedulingExpression": "rate(3 days)"}},
                    "solutionVersion": {"name": "v1", "trainingMode": "UPDATE"}
                },
                "workflowConfig": {"schedules": {"full": "cron(0 2 ? * 1 *)", "update": "delete"}, "retrainOnNewData": true,
                                   "promotion": {"metric": "normalized_discounted_cumulative_gain_at_10", "minDelta": 0.01}},
                "campaigns": [{"serviceConfig": {"name": "c", "minProvisionedTPS": 3,
                               "campaignConfig": {"itemExplorationConfig": {"explorationWeight": "0.3"},
                                                  "rankingInfluence": {"FRESHNESS": 0.5}}}}],
                "batchInferenceJobs": [{"serviceConfig": {"numResults": 50, "batchInferenceJobMode": "BATCH_INFERENCE"},
                                        "workflowConfig": {"schedule": "cron(0 3 * * ? *)", "maxAge": "banana"}}]
            }]
        }));
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        let spec = report.spec.expect("valid");
        let group = &spec.dataset_group;
        assert_eq!(group.max_age.as_ref().map(|m| m.seconds), Some(93_600));
        assert!(matches!(group.import_schedule, Some(Schedule::Rate(_))));
        assert!(group.replace_filters);
        let datasets = spec.datasets.expect("declared");
        assert_eq!(datasets.import.import_mode, ImportMode::Incremental);
        assert!(datasets.import.publish_attribution_metrics_to_s3);
        assert!(datasets.interactions.schema.is_none());
        let s = &spec.solutions[0];
        assert!(s.perform_hpo);
        assert_eq!(s.perform_auto_training, Some(false));
        assert_eq!(s.event_type.as_deref(), Some("click"));
        let config = s.solution_config.as_ref().expect("set");
        assert_eq!(
            config
                .algorithm_hyper_parameters
                .as_ref()
                .and_then(|m| m.get("hidden_dimension")),
            Some(&"64".to_string())
        );
        assert_eq!(s.solution_version.name.as_deref(), Some("v1"));
        assert_eq!(s.solution_version.training_mode, TrainingMode::Update);
        assert_eq!(s.schedules.update, Some(Schedule::Delete));
        assert!(s.retrain_on_new_data);
        let promotion = s.promotion.as_ref().expect("set");
        assert_eq!(promotion.metric, "normalized_discounted_cumulative_gain_at_10");
        assert_eq!(promotion.min_delta, 0.01);
        assert_eq!(s.campaigns[0].min_provisioned_tps, 3);
        let ranking = s.campaigns[0]
            .campaign_config
            .as_ref()
            .and_then(|c| c.ranking_influence.as_ref())
            .expect("set");
        assert_eq!(ranking.values().copied().collect::<Vec<_>>(), [0.5]);
        let job = &s.batch_inference_jobs[0];
        assert_eq!(job.num_results, Some(50));
        assert!(job.schedule.is_some());
        assert_eq!(
            job.max_age, None,
            "an unreadable maxAge is dropped, as the reference does"
        );
    }

    #[test]
    fn an_unreadable_import_max_age_means_no_age_limit() {
        let report = load_value(&json!({
            "datasetGroup": {"serviceConfig": {"name": "g"}, "workflowConfig": {"maxAge": "banana"}}
        }));
        assert_eq!(report.warnings.len(), 1);
        assert_eq!(report.spec.expect("valid").dataset_group.max_age, None);
    }

    #[test]
    fn the_model_round_trips_through_json() {
        for text in [
            include_str!("../../tests/fixtures/sample_config.json"),
            include_str!("../../tests/fixtures/sample_config_wtags.json"),
            include_str!("../../tests/fixtures/dataset-group-name-2.json"),
        ] {
            let spec = spec_of(text);
            let json = serde_json::to_value(&spec).expect("serialises");
            let back: Spec = serde_json::from_value(json).expect("deserialises");
            assert_eq!(back, spec);
        }
    }
}
