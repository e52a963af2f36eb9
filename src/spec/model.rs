//! The typed parameter file: what the reconciler works from, after defaults and tag inheritance.
//!
//! # Overview
//!
//! A [`Spec`] is built by [`crate::spec::load`] only from a file with no errors, so every value here is
//! already known to be acceptable to Personalize as far as an offline check can tell (names, enums,
//! ranges, tags, recipes, schedules, filter expressions, Avro schemas).
//!
//! The tree follows the parameter file section by section, without its `serviceConfig` /
//! `workflowConfig` nesting:
//!
//! ```text
//! Spec
//! ├── tags                      root tags, as written (already inherited below)
//! ├── dataset_group             name, domain, KMS, tags, import schedule, import maxAge
//! ├── datasets: Option          import settings (mode, tags) + interactions, users?, items?
//! │                             each with its schema (name, domain, Avro document)
//! ├── event_tracker: Option
//! ├── filters[]
//! ├── solutions[]               CreateSolution members, solution version settings, schedules,
//! │   ├── campaigns[]           retrainOnNewData, and the solution's children
//! │   ├── batch_inference_jobs[]
//! │   └── batch_segment_jobs[]
//! └── recommenders[]
//! ```
//!
//! # Guarantees
//!
//! * Defaults are filled in as the reference fills them (docs/reference.md#trigger-and-defaults and
//!   #tags-and-root-tag-inheritance): import mode `FULL`, `publishAttributionMetricsToS3` false, import `maxAge` 365 days, training mode `FULL`,
//!   `minProvisionedTPS` 1 (the reference required it at run time; we default it).
//! * Every `tags` list is the *effective* list: the resource's own `tags` when the file has the key
//!   (even `[]`), else the root `tags`. Schemas have no tags. Empty lists mean "send no tags".
//! * Members that mirror Personalize request shapes (`SolutionConfig`, `CampaignConfig`,
//!   `RecommenderConfig`, `BatchInferenceJobConfig`, …) use the API's member names in camelCase when
//!   serialised, so they can be compared with `Describe*` results member by member.
//! * Names of generated things (import and batch job names, batch input and output paths, data
//!   locations, schedule names) are not stored: [`crate::spec::names`] computes them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::spec::avro::AvroSchema;
use crate::spec::kinds::{DatasetType, Domain};
use crate::spec::schedule::Schedule;

/// A validated parameter file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Spec {
    /// The root `tags`, as written. Already copied into every resource that has no `tags` of its own.
    pub tags: Vec<Tag>,
    pub dataset_group: DatasetGroup,
    /// `None` when the file has no `datasets` (or `"datasets": {}`): the group's datasets are not managed.
    pub datasets: Option<Datasets>,
    /// `None` when the file declares no tracker, or one without a name (the reference skips those).
    pub event_tracker: Option<EventTracker>,
    pub filters: Vec<Filter>,
    pub solutions: Vec<Solution>,
    /// Only meaningful in a Domain dataset group.
    pub recommenders: Vec<Recommender>,
}

impl Spec {
    /// The names of the schemas the file's datasets declare (the schemas it owns), each with the name
    /// its document takes when it changed by new optional fields ([`super::names::schema_revision`]),
    /// so a teardown finds that schema even once no dataset uses it any more.
    pub fn schema_names(&self) -> Vec<String> {
        self.datasets
            .iter()
            .flat_map(|d| d.all())
            .filter_map(|d| d.schema.as_ref())
            .flat_map(|s| {
                [
                    s.name.clone(),
                    super::names::schema_revision(&s.name, &s.document_text()),
                ]
            })
            .collect()
    }
}

/// A resource tag (`{"tagKey": …, "tagValue": …}` in the file and in the API).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Tag {
    #[serde(rename = "tagKey")]
    pub key: String,
    #[serde(rename = "tagValue")]
    pub value: String,
}

/// How long an existing resource counts as fresh, from a `maxAge` text such as `"365 days"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MaxAge {
    /// The text as written (or the default), for messages.
    pub text: String,
    /// The age limit in whole seconds, as the reference computes it (always > 0).
    pub seconds: u64,
    /// Months or years were used, so the length depends on the calendar (the reference warns too).
    pub approximate: bool,
}

impl MaxAge {
    /// The limit as a [`std::time::Duration`].
    pub fn duration(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.seconds)
    }
}

/// `datasetGroup`: CreateDatasetGroup members plus the group's workflow settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DatasetGroup {
    pub name: String,
    /// Set for a Domain dataset group; `None` is a Custom group.
    pub domain: Option<Domain>,
    /// The role Personalize assumes to use `kms_key_arn` (only valid with it).
    pub role_arn: Option<String>,
    pub kms_key_arn: Option<String>,
    pub tags: Vec<Tag>,
    /// `workflowConfig.schedules.import`: when to re-import all datasets. `Delete` removes the schedule.
    pub import_schedule: Option<Schedule>,
    /// `workflowConfig.maxAge`: an import job younger than this counts as current and is not repeated.
    /// Defaults to 365 days; `None` when the file's text could not be read (the reference drops it, so
    /// an existing import never expires by age).
    pub max_age: Option<MaxAge>,
    /// `workflowConfig.replaceFilters` (our extension, default false): a filter whose expression
    /// changed is deleted and created again; otherwise the change is a conflict.
    #[serde(default)]
    pub replace_filters: bool,
}

/// `datasets`: the import settings and the (up to three) datasets of the group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Datasets {
    /// `datasets.serviceConfig`: settings shared by every dataset import job.
    pub import: DatasetImport,
    /// Required whenever `datasets` declares anything.
    pub interactions: Dataset,
    pub users: Option<Dataset>,
    pub items: Option<Dataset>,
}

impl Datasets {
    /// The declared datasets in the reference's order of work: interactions, users, items.
    pub fn all(&self) -> impl Iterator<Item = &Dataset> {
        std::iter::once(&self.interactions)
            .chain(self.users.as_ref())
            .chain(self.items.as_ref())
    }
}

/// `datasets.serviceConfig`: CreateDatasetImportJob members shared by the imports of all datasets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DatasetImport {
    /// `FULL` (default) replaces the bulk data; `INCREMENTAL` adds to it. The first import of a
    /// dataset is always `FULL` whatever this says (Personalize requires it).
    pub import_mode: ImportMode,
    pub publish_attribution_metrics_to_s3: bool,
    /// Tags of every import job.
    pub tags: Vec<Tag>,
}

/// How an import job treats the data already in the dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ImportMode {
    Full,
    Incremental,
}

impl ImportMode {
    /// The API's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Full => "FULL",
            Self::Incremental => "INCREMENTAL",
        }
    }
}

/// One of `datasets.{interactions,users,items}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Dataset {
    /// Which key of `datasets` this came from.
    pub dataset_type: DatasetType,
    /// `dataset.serviceConfig.name`.
    pub name: String,
    pub tags: Vec<Tag>,
    /// `schema.serviceConfig`. `None` when the file has no schema block: the reference accepts that,
    /// but CreateDataset needs a schema, so only a dataset that already exists can be used (warned).
    pub schema: Option<Schema>,
}

/// A dataset's schema: CreateSchema members.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Schema {
    pub name: String,
    pub domain: Option<Domain>,
    /// The Avro document exactly as written in the file (key order kept).
    pub document: serde_json::Value,
    /// The same document, parsed.
    pub avro: AvroSchema,
}

impl Schema {
    /// The `schema` string for CreateSchema: the document as compact JSON.
    pub fn document_text(&self) -> String {
        self.document.to_string()
    }
}

/// `eventTracker.serviceConfig`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EventTracker {
    pub name: String,
    pub tags: Vec<Tag>,
}

/// `filters[].serviceConfig`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Filter {
    pub name: String,
    /// As written; known to parse with [`crate::spec::filter::parse`].
    pub filter_expression: String,
    pub tags: Vec<Tag>,
}

/// `solutions[]`: CreateSolution members, the solution version settings, schedules and children.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Solution {
    pub name: String,
    /// `None` only when the file omits it (warned: Personalize requires a recipe without AutoML).
    pub recipe_arn: Option<String>,
    /// `performHPO`; Personalize's default is false.
    pub perform_hpo: bool,
    /// `performAutoTraining` as written. `None` leaves the choice to the reconciler (Personalize's own
    /// default is true: a paid retraining every 7 days).
    pub perform_auto_training: Option<bool>,
    /// `performIncrementalUpdate` (semantic-similarity recipe only).
    pub perform_incremental_update: Option<bool>,
    pub event_type: Option<String>,
    pub solution_config: Option<SolutionConfig>,
    pub tags: Vec<Tag>,
    /// `serviceConfig.solutionVersion`: how versions of this solution are trained.
    pub solution_version: SolutionVersion,
    /// `workflowConfig.schedules`.
    pub schedules: SolutionSchedules,
    /// `workflowConfig.retrainOnNewData` (our extension, default false): train a new version after
    /// every import that brought new data, not only on schedule.
    pub retrain_on_new_data: bool,
    /// `workflowConfig.promotion` (our extension): without it every new version serves at once.
    #[serde(default)]
    pub promotion: Option<Promotion>,
    pub campaigns: Vec<Campaign>,
    pub batch_inference_jobs: Vec<BatchInferenceJob>,
    pub batch_segment_jobs: Vec<BatchSegmentJob>,
}

/// `solutions[].workflowConfig.promotion`: a new version moves the solution's campaigns and batch
/// jobs only when its `metric` is at least the serving version's plus `min_delta`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Promotion {
    /// A `GetSolutionMetrics` name (one of `spec::shape::SOLUTION_METRICS`).
    pub metric: String,
    /// Default 0.
    pub min_delta: f64,
}

/// `solutions[].serviceConfig.solutionVersion`: CreateSolutionVersion members.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SolutionVersion {
    /// The name of every version; without it, each run names its version `<solution>_<run start>`
    /// (`names::solution_version_name`). The reference rejected the key; its README used it.
    pub name: Option<String>,
    /// Default `FULL`. The reference uses it for the scheduled `full` retraining.
    pub training_mode: TrainingMode,
    pub tags: Vec<Tag>,
}

/// How a solution version is trained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TrainingMode {
    /// Train on all data.
    Full,
    /// Update the latest FULL version with new items and interactions (aws-user-personalization and
    /// aws-hrnn-coldstart only).
    Update,
}

impl TrainingMode {
    /// The API's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Full => "FULL",
            Self::Update => "UPDATE",
        }
    }
}

/// `solutions[].workflowConfig.schedules`. `Delete` removes an existing schedule.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SolutionSchedules {
    /// Retrain with the configured training mode, then update the campaigns.
    pub full: Option<Schedule>,
    /// Retrain in `UPDATE` mode, then update the campaigns.
    pub update: Option<Schedule>,
}

/// `solutions[].campaigns[].serviceConfig`: CreateCampaign members.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Campaign {
    pub name: String,
    /// At least 1; default 1. Billed per provisioned TPS.
    #[serde(rename = "minProvisionedTPS")]
    pub min_provisioned_tps: i32,
    pub campaign_config: Option<CampaignConfig>,
    pub tags: Vec<Tag>,
}

/// `solutions[].batchInferenceJobs[]`: CreateBatchInferenceJob members the file may set, plus schedule.
///
/// The job name, input and output paths and role are not written in the file: see
/// [`crate::spec::names`] and the daemon settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BatchInferenceJob {
    /// Recommendations per input line (1..=500).
    pub num_results: Option<i32>,
    /// A filter's full ARN (the reference's convention).
    pub filter_arn: Option<String>,
    pub batch_inference_job_config: Option<BatchInferenceJobConfig>,
    pub batch_inference_job_mode: Option<BatchInferenceJobMode>,
    pub theme_generation_config: Option<ThemeGenerationConfig>,
    pub tags: Vec<Tag>,
    /// `workflowConfig.schedule`: when to run the job again. `Delete` removes the schedule.
    pub schedule: Option<Schedule>,
    /// `workflowConfig.maxAge`.
    pub max_age: Option<MaxAge>,
}

/// `solutions[].batchSegmentJobs[]`: CreateBatchSegmentJob members the file may set, plus schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BatchSegmentJob {
    /// Users per segment (1..=5,000,000).
    pub num_results: Option<i32>,
    pub filter_arn: Option<String>,
    pub tags: Vec<Tag>,
    /// `workflowConfig.schedule`. `Delete` removes the schedule.
    pub schedule: Option<Schedule>,
    /// `workflowConfig.maxAge`.
    pub max_age: Option<MaxAge>,
}

/// `recommenders[].serviceConfig`: CreateRecommender members.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Recommender {
    pub name: String,
    /// A domain use case of the group's domain (`arn:aws:personalize:::recipe/aws-ecomm-…`).
    pub recipe_arn: String,
    pub recommender_config: Option<RecommenderConfig>,
    pub tags: Vec<Tag>,
}

// ---------------------------------------------------------------------------------------------------
// Personalize request shapes (the botocore model of each Create operation), member for member.
// ---------------------------------------------------------------------------------------------------

/// Personalize `SolutionConfig`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SolutionConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_value_threshold: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hpo_config: Option<HpoConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub algorithm_hyper_parameters: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub feature_transformation_parameters: Option<BTreeMap<String, String>>,
    #[serde(rename = "autoMLConfig", skip_serializing_if = "Option::is_none")]
    pub auto_ml_config: Option<AutoMlConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events_config: Option<EventsConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub optimization_objective: Option<OptimizationObjective>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub training_data_config: Option<TrainingDataConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auto_training_config: Option<AutoTrainingConfig>,
}

/// Personalize `HPOConfig`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HpoConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hpo_objective: Option<HpoObjective>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hpo_resource_config: Option<HpoResourceConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub algorithm_hyper_parameter_ranges: Option<HyperParameterRanges>,
}

/// Personalize `HPOObjective` (the service ignores it, but the API accepts it).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HpoObjective {
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub objective_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metric_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metric_regex: Option<String>,
}

/// Personalize `HPOResourceConfig` (numbers written as strings, as the API has them).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HpoResourceConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_number_of_training_jobs: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_parallel_training_jobs: Option<String>,
}

/// Personalize `HyperParameterRanges`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HyperParameterRanges {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub integer_hyper_parameter_ranges: Option<Vec<IntegerHyperParameterRange>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub continuous_hyper_parameter_ranges: Option<Vec<ContinuousHyperParameterRange>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub categorical_hyper_parameter_ranges: Option<Vec<CategoricalHyperParameterRange>>,
}

/// Personalize `IntegerHyperParameterRange`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IntegerHyperParameterRange {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_value: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_value: Option<i32>,
}

/// Personalize `ContinuousHyperParameterRange`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContinuousHyperParameterRange {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_value: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_value: Option<f64>,
}

/// Personalize `CategoricalHyperParameterRange`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CategoricalHyperParameterRange {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<String>>,
}

/// Personalize `AutoMLConfig`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AutoMlConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metric_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recipe_list: Option<Vec<String>>,
}

/// Personalize `EventsConfig`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EventsConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_parameters_list: Option<Vec<EventParameters>>,
}

/// Personalize `EventParameters`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EventParameters {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_value_threshold: Option<f64>,
    /// 0..=1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight: Option<f64>,
}

/// Personalize `OptimizationObjective`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OptimizationObjective {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item_attribute: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub objective_sensitivity: Option<ObjectiveSensitivity>,
}

/// Personalize `ObjectiveSensitivity`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ObjectiveSensitivity {
    Low,
    Medium,
    High,
    Off,
}

/// Personalize `TrainingDataConfig`: dataset type (as written, e.g. `Items`) → column names.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TrainingDataConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub excluded_dataset_columns: Option<BTreeMap<String, Vec<String>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub included_dataset_columns: Option<BTreeMap<String, Vec<String>>>,
}

/// Personalize `AutoTrainingConfig`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AutoTrainingConfig {
    /// `rate(N day)` / `rate(N days)`, N in 1..=30.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheduling_expression: Option<String>,
}

/// Personalize `CampaignConfig`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CampaignConfig {
    /// `explorationWeight`, `explorationItemAgeCutOff` (User-Personalization).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item_exploration_config: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enable_metadata_with_recommendations: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sync_with_latest_solution_version: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ranking_influence: Option<BTreeMap<RankingInfluenceType, f64>>,
}

/// Personalize `RankingInfluenceType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RankingInfluenceType {
    Popularity,
    Freshness,
}

/// Personalize `RecommenderConfig`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RecommenderConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item_exploration_config: Option<BTreeMap<String, String>>,
    /// At least 1 (Personalize's default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_recommendation_requests_per_second: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub training_data_config: Option<TrainingDataConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enable_metadata_with_recommendations: Option<bool>,
}

/// Personalize `BatchInferenceJobConfig`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BatchInferenceJobConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item_exploration_config: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ranking_influence: Option<BTreeMap<RankingInfluenceType, f64>>,
}

/// Personalize `BatchInferenceJobMode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BatchInferenceJobMode {
    BatchInference,
    ThemeGeneration,
}

/// Personalize `ThemeGenerationConfig`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ThemeGenerationConfig {
    pub fields_for_theme_generation: FieldsForThemeGeneration,
}

/// Personalize `FieldsForThemeGeneration`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FieldsForThemeGeneration {
    /// The Items column that holds item names.
    pub item_name: String,
}
