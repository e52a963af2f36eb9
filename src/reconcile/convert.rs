//! Conversions between the parameter-file model and the SDK's Personalize types, and from described
//! SDK values to camelCase JSON the planner compares against the file.

use std::collections::HashMap;

use aws_sdk_personalize::types as t;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use crate::plan::observed::UpdateObs;
use crate::spec::model as m;

pub fn time(dt: Option<&aws_smithy_types::DateTime>) -> Option<DateTime<Utc>> {
    dt.and_then(|d| DateTime::from_timestamp(d.secs(), d.subsec_nanos()))
}

pub fn tags(tags: &[m::Tag]) -> Option<Vec<t::Tag>> {
    if tags.is_empty() {
        return None;
    }
    Some(
        tags.iter()
            .filter_map(|tag| {
                t::Tag::builder()
                    .tag_key(&tag.key)
                    .tag_value(&tag.value)
                    .build()
                    .ok()
            })
            .collect(),
    )
}

fn hash<K: Clone + Eq + std::hash::Hash, V: Clone>(map: &std::collections::BTreeMap<K, V>) -> HashMap<K, V> {
    map.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

fn ranking(
    map: &std::collections::BTreeMap<m::RankingInfluenceType, f64>,
) -> HashMap<t::RankingInfluenceType, f64> {
    map.iter()
        .map(|(k, v)| {
            let key = match k {
                m::RankingInfluenceType::Popularity => t::RankingInfluenceType::Popularity,
                m::RankingInfluenceType::Freshness => t::RankingInfluenceType::Freshness,
            };
            (key, *v)
        })
        .collect()
}

fn training_data(c: &m::TrainingDataConfig) -> t::TrainingDataConfig {
    t::TrainingDataConfig::builder()
        .set_excluded_dataset_columns(c.excluded_dataset_columns.as_ref().map(hash))
        .set_included_dataset_columns(c.included_dataset_columns.as_ref().map(hash))
        .build()
}

pub fn campaign_config(c: &m::CampaignConfig) -> t::CampaignConfig {
    t::CampaignConfig::builder()
        .set_item_exploration_config(c.item_exploration_config.as_ref().map(hash))
        .set_enable_metadata_with_recommendations(c.enable_metadata_with_recommendations)
        .set_sync_with_latest_solution_version(c.sync_with_latest_solution_version)
        .set_ranking_influence(c.ranking_influence.as_ref().map(ranking))
        .build()
}

pub fn recommender_config(c: &m::RecommenderConfig) -> t::RecommenderConfig {
    t::RecommenderConfig::builder()
        .set_item_exploration_config(c.item_exploration_config.as_ref().map(hash))
        .set_min_recommendation_requests_per_second(c.min_recommendation_requests_per_second)
        .set_training_data_config(c.training_data_config.as_ref().map(training_data))
        .set_enable_metadata_with_recommendations(c.enable_metadata_with_recommendations)
        .build()
}

pub fn batch_inference_config(c: &m::BatchInferenceJobConfig) -> t::BatchInferenceJobConfig {
    t::BatchInferenceJobConfig::builder()
        .set_item_exploration_config(c.item_exploration_config.as_ref().map(hash))
        .set_ranking_influence(c.ranking_influence.as_ref().map(ranking))
        .build()
}

/// Converts each element of an optional list, keeping an absent list absent.
fn each<A, B>(list: &Option<Vec<A>>, f: impl FnMut(&A) -> B) -> Option<Vec<B>> {
    list.as_ref().map(|v| v.iter().map(f).collect())
}

fn hpo(c: &m::HpoConfig) -> t::HpoConfig {
    let objective = c.hpo_objective.as_ref().map(|o| {
        t::HpoObjective::builder()
            .set_type(o.objective_type.clone())
            .set_metric_name(o.metric_name.clone())
            .set_metric_regex(o.metric_regex.clone())
            .build()
    });
    let resources = c.hpo_resource_config.as_ref().map(|r| {
        t::HpoResourceConfig::builder()
            .set_max_number_of_training_jobs(r.max_number_of_training_jobs.clone())
            .set_max_parallel_training_jobs(r.max_parallel_training_jobs.clone())
            .build()
    });
    let ranges = c.algorithm_hyper_parameter_ranges.as_ref().map(|r| {
        t::HyperParameterRanges::builder()
            .set_integer_hyper_parameter_ranges(each(&r.integer_hyper_parameter_ranges, |x| {
                t::IntegerHyperParameterRange::builder()
                    .set_name(x.name.clone())
                    .set_min_value(x.min_value)
                    .set_max_value(x.max_value)
                    .build()
            }))
            .set_continuous_hyper_parameter_ranges(each(&r.continuous_hyper_parameter_ranges, |x| {
                t::ContinuousHyperParameterRange::builder()
                    .set_name(x.name.clone())
                    .set_min_value(x.min_value)
                    .set_max_value(x.max_value)
                    .build()
            }))
            .set_categorical_hyper_parameter_ranges(each(&r.categorical_hyper_parameter_ranges, |x| {
                t::CategoricalHyperParameterRange::builder()
                    .set_name(x.name.clone())
                    .set_values(x.values.clone())
                    .build()
            }))
            .build()
    });
    t::HpoConfig::builder()
        .set_hpo_objective(objective)
        .set_hpo_resource_config(resources)
        .set_algorithm_hyper_parameter_ranges(ranges)
        .build()
}

pub fn events_config(e: &m::EventsConfig) -> t::EventsConfig {
    t::EventsConfig::builder()
        .set_event_parameters_list(e.event_parameters_list.as_ref().map(|l| {
            l.iter()
                .map(|p| {
                    t::EventParameters::builder()
                        .set_event_type(p.event_type.clone())
                        .set_event_value_threshold(p.event_value_threshold)
                        .set_weight(p.weight)
                        .build()
                })
                .collect()
        }))
        .build()
}

pub fn auto_training_config(a: &m::AutoTrainingConfig) -> t::AutoTrainingConfig {
    t::AutoTrainingConfig::builder()
        .set_scheduling_expression(a.scheduling_expression.clone())
        .build()
}

pub fn solution_config(c: &m::SolutionConfig) -> t::SolutionConfig {
    t::SolutionConfig::builder()
        .set_event_value_threshold(c.event_value_threshold.clone())
        .set_hpo_config(c.hpo_config.as_ref().map(hpo))
        .set_algorithm_hyper_parameters(c.algorithm_hyper_parameters.as_ref().map(hash))
        .set_feature_transformation_parameters(c.feature_transformation_parameters.as_ref().map(hash))
        .set_auto_ml_config(c.auto_ml_config.as_ref().map(|a| {
            t::AutoMlConfig::builder()
                .set_metric_name(a.metric_name.clone())
                .set_recipe_list(a.recipe_list.clone())
                .build()
        }))
        .set_events_config(c.events_config.as_ref().map(events_config))
        .set_optimization_objective(c.optimization_objective.as_ref().map(|o| {
            t::OptimizationObjective::builder()
                .set_item_attribute(o.item_attribute.clone())
                .set_objective_sensitivity(o.objective_sensitivity.map(|s| match s {
                    m::ObjectiveSensitivity::Low => t::ObjectiveSensitivity::Low,
                    m::ObjectiveSensitivity::Medium => t::ObjectiveSensitivity::Medium,
                    m::ObjectiveSensitivity::High => t::ObjectiveSensitivity::High,
                    m::ObjectiveSensitivity::Off => t::ObjectiveSensitivity::Off,
                }))
                .build()
        }))
        .set_training_data_config(c.training_data_config.as_ref().map(training_data))
        .set_auto_training_config(c.auto_training_config.as_ref().map(auto_training_config))
        .build()
}

// ----- described SDK values → JSON in the API's member names -----

struct Obj(Map<String, Value>);

impl Obj {
    fn new() -> Self {
        Self(Map::new())
    }
    fn put(mut self, key: &str, value: Option<Value>) -> Self {
        if let Some(v) = value {
            self.0.insert(key.to_string(), v);
        }
        self
    }
    fn done(self) -> Value {
        Value::Object(self.0)
    }
}

fn map_json<V: serde::Serialize>(m: Option<&HashMap<String, V>>) -> Option<Value> {
    m.map(|m| json!(m))
}

fn ranking_json(m: Option<&HashMap<t::RankingInfluenceType, f64>>) -> Option<Value> {
    m.map(|m| {
        Value::Object(
            m.iter()
                .map(|(k, v)| (k.as_str().to_string(), json!(v)))
                .collect(),
        )
    })
}

fn training_data_json(c: Option<&t::TrainingDataConfig>) -> Option<Value> {
    c.map(|c| {
        Obj::new()
            .put(
                "excludedDatasetColumns",
                map_json(c.excluded_dataset_columns.as_ref()),
            )
            .put(
                "includedDatasetColumns",
                map_json(c.included_dataset_columns.as_ref()),
            )
            .done()
    })
}

pub fn campaign_config_json(c: Option<&t::CampaignConfig>) -> Option<Value> {
    c.map(|c| {
        Obj::new()
            .put(
                "itemExplorationConfig",
                map_json(c.item_exploration_config.as_ref()),
            )
            .put(
                "enableMetadataWithRecommendations",
                c.enable_metadata_with_recommendations.map(Value::Bool),
            )
            .put(
                "syncWithLatestSolutionVersion",
                c.sync_with_latest_solution_version.map(Value::Bool),
            )
            .put("rankingInfluence", ranking_json(c.ranking_influence.as_ref()))
            .done()
    })
}

pub fn batch_inference_config_json(c: Option<&t::BatchInferenceJobConfig>) -> Option<Value> {
    c.map(|c| {
        Obj::new()
            .put(
                "itemExplorationConfig",
                map_json(c.item_exploration_config.as_ref()),
            )
            .put("rankingInfluence", ranking_json(c.ranking_influence.as_ref()))
            .done()
    })
}

pub fn recommender_config_json(c: Option<&t::RecommenderConfig>) -> Option<Value> {
    c.map(|c| {
        Obj::new()
            .put(
                "itemExplorationConfig",
                map_json(c.item_exploration_config.as_ref()),
            )
            .put(
                "minRecommendationRequestsPerSecond",
                c.min_recommendation_requests_per_second.map(|v| json!(v)),
            )
            .put(
                "trainingDataConfig",
                training_data_json(c.training_data_config.as_ref()),
            )
            .put(
                "enableMetadataWithRecommendations",
                c.enable_metadata_with_recommendations.map(Value::Bool),
            )
            .done()
    })
}

/// An optional list as a JSON array, each element converted by `f`.
fn each_json<A>(list: &Option<Vec<A>>, f: impl FnMut(&A) -> Value) -> Option<Value> {
    each(list, f).map(Value::Array)
}

fn hpo_json(c: &t::HpoConfig) -> Value {
    let objective = c.hpo_objective.as_ref().map(|o| {
        Obj::new()
            .put("type", o.r#type.clone().map(Value::String))
            .put("metricName", o.metric_name.clone().map(Value::String))
            .put("metricRegex", o.metric_regex.clone().map(Value::String))
            .done()
    });
    let resources = c.hpo_resource_config.as_ref().map(|r| {
        Obj::new()
            .put(
                "maxNumberOfTrainingJobs",
                r.max_number_of_training_jobs.clone().map(Value::String),
            )
            .put(
                "maxParallelTrainingJobs",
                r.max_parallel_training_jobs.clone().map(Value::String),
            )
            .done()
    });
    let ranges = c.algorithm_hyper_parameter_ranges.as_ref().map(|r| {
        Obj::new()
            .put(
                "integerHyperParameterRanges",
                each_json(
                    &r.integer_hyper_parameter_ranges,
                    |x| json!({"name": x.name, "minValue": x.min_value, "maxValue": x.max_value}),
                ),
            )
            .put(
                "continuousHyperParameterRanges",
                each_json(
                    &r.continuous_hyper_parameter_ranges,
                    |x| json!({"name": x.name, "minValue": x.min_value, "maxValue": x.max_value}),
                ),
            )
            .put(
                "categoricalHyperParameterRanges",
                each_json(
                    &r.categorical_hyper_parameter_ranges,
                    |x| json!({"name": x.name, "values": x.values}),
                ),
            )
            .done()
    });
    Obj::new()
        .put("hpoObjective", objective)
        .put("hpoResourceConfig", resources)
        .put("algorithmHyperParameterRanges", ranges)
        .done()
}

fn auto_training_json(a: &t::AutoTrainingConfig) -> Value {
    Obj::new()
        .put(
            "schedulingExpression",
            a.scheduling_expression.clone().map(Value::String),
        )
        .done()
}

/// `latestSolutionUpdate`, with what it asked for as the planner compares it.
pub fn solution_update_obs(u: &t::SolutionUpdateSummary) -> UpdateObs {
    let config = u.solution_update_config.as_ref().map(|c| {
        Obj::new()
            .put(
                "autoTrainingConfig",
                c.auto_training_config.as_ref().map(auto_training_json),
            )
            .put("eventsConfig", c.events_config.as_ref().map(events_config_json))
            .done()
    });
    UpdateObs {
        status: u.status.clone().unwrap_or_default(),
        failure_reason: u.failure_reason.clone(),
        requested: Obj::new()
            .put("performAutoTraining", u.perform_auto_training.map(Value::Bool))
            .put("solutionUpdateConfig", config)
            .done(),
    }
}

/// `latestRecommenderUpdate`.
pub fn recommender_update_obs(u: &t::RecommenderUpdateSummary) -> UpdateObs {
    UpdateObs {
        status: u.status.clone().unwrap_or_default(),
        failure_reason: u.failure_reason.clone(),
        requested: recommender_config_json(u.recommender_config.as_ref()).unwrap_or(Value::Null),
    }
}

/// `latestDatasetUpdate` (what it asked for is the new schema's ARN).
pub fn dataset_update_obs(u: &t::DatasetUpdateSummary) -> UpdateObs {
    UpdateObs {
        status: u.status.clone().unwrap_or_default(),
        failure_reason: u.failure_reason.clone(),
        requested: u.schema_arn.clone().map_or(Value::Null, Value::String),
    }
}

pub fn solution_config_json(c: Option<&t::SolutionConfig>) -> Option<Value> {
    c.map(|c| {
        Obj::new()
            .put(
                "eventValueThreshold",
                c.event_value_threshold.clone().map(Value::String),
            )
            .put("hpoConfig", c.hpo_config.as_ref().map(hpo_json))
            .put(
                "algorithmHyperParameters",
                map_json(c.algorithm_hyper_parameters.as_ref()),
            )
            .put(
                "featureTransformationParameters",
                map_json(c.feature_transformation_parameters.as_ref()),
            )
            .put(
                "autoMLConfig",
                c.auto_ml_config.as_ref().map(|a| {
                    Obj::new()
                        .put("metricName", a.metric_name.clone().map(Value::String))
                        .put("recipeList", a.recipe_list.as_ref().map(|l| json!(l)))
                        .done()
                }),
            )
            .put("eventsConfig", c.events_config.as_ref().map(events_config_json))
            .put(
                "optimizationObjective",
                c.optimization_objective.as_ref().map(optimization_objective_json),
            )
            .put(
                "trainingDataConfig",
                training_data_json(c.training_data_config.as_ref()),
            )
            .put(
                "autoTrainingConfig",
                c.auto_training_config.as_ref().map(auto_training_json),
            )
            .done()
    })
}

fn events_config_json(e: &t::EventsConfig) -> Value {
    Obj::new()
        .put(
            "eventParametersList",
            e.event_parameters_list.as_ref().map(|l| {
                l.iter()
                    .map(|p| {
                        Obj::new()
                            .put("eventType", p.event_type.clone().map(Value::String))
                            .put("eventValueThreshold", p.event_value_threshold.map(|v| json!(v)))
                            .put("weight", p.weight.map(|v| json!(v)))
                            .done()
                    })
                    .collect()
            }),
        )
        .done()
}

fn optimization_objective_json(o: &t::OptimizationObjective) -> Value {
    Obj::new()
        .put("itemAttribute", o.item_attribute.clone().map(Value::String))
        .put(
            "objectiveSensitivity",
            o.objective_sensitivity
                .as_ref()
                .map(|s| Value::String(s.as_str().to_string())),
        )
        .done()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::json_differences;

    /// What the file sets survives the round trip model → SDK → JSON, so an unchanged resource
    /// never reads as changed.
    #[test]
    fn configs_round_trip_without_differences() {
        let file = json!({
            "eventValueThreshold": "0.5",
            "algorithmHyperParameters": {"hidden_dimension": "64"},
            "hpoConfig": {"hpoResourceConfig": {"maxNumberOfTrainingJobs": "4"},
                          "algorithmHyperParameterRanges": {"integerHyperParameterRanges": [{"name": "bptt", "minValue": 2, "maxValue": 8}],
                                                             "continuousHyperParameterRanges": [{"name": "lr", "minValue": 0.001, "maxValue": 0.1}],
                                                             "categoricalHyperParameterRanges": [{"name": "mode", "values": ["a", "b"]}]}},
            "optimizationObjective": {"itemAttribute": "PRICE", "objectiveSensitivity": "HIGH"},
            "eventsConfig": {"eventParametersList": [{"eventType": "click", "weight": 0.5}]},
            "trainingDataConfig": {"excludedDatasetColumns": {"Items": ["GENRES"]}},
            "autoTrainingConfig": {"schedulingExpression": "rate(7 days)"}
        });
        let model: m::SolutionConfig = serde_json::from_value(file.clone()).expect("model");
        let back = solution_config_json(Some(&solution_config(&model))).expect("json");
        assert!(
            json_differences("solutionConfig", &file, Some(&back)).is_empty(),
            "{back}"
        );

        let campaign = json!({"itemExplorationConfig": {"explorationWeight": "0.3"}, "enableMetadataWithRecommendations": true,
                              "rankingInfluence": {"POPULARITY": 0.5}});
        let model: m::CampaignConfig = serde_json::from_value(campaign.clone()).expect("model");
        let back = campaign_config_json(Some(&campaign_config(&model))).expect("json");
        assert!(
            json_differences("campaignConfig", &campaign, Some(&back)).is_empty(),
            "{back}"
        );

        let rec = json!({"minRecommendationRequestsPerSecond": 2, "trainingDataConfig": {"includedDatasetColumns": {"Items": ["A"]}}});
        let model: m::RecommenderConfig = serde_json::from_value(rec.clone()).expect("model");
        let back = recommender_config_json(Some(&recommender_config(&model))).expect("json");
        assert!(
            json_differences("recommenderConfig", &rec, Some(&back)).is_empty(),
            "{back}"
        );
    }

    #[test]
    fn empty_tag_lists_send_no_tags() {
        assert!(tags(&[]).is_none());
        let one = tags(&[m::Tag {
            key: "k".into(),
            value: "v".into(),
        }])
        .expect("tags");
        assert_eq!(one[0].tag_key, "k");
    }
}
