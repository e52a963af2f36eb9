//! Desired vs observed → the actions that remain, in dependency order (pure: no I/O, no clock).
//!
//! [`plan`] reads a validated [`Spec`](crate::spec::model::Spec), what was found in the object store
//! ([`DataFound`]) and what Personalize reports ([`Observation`]), and returns one [`Step`] per
//! managed resource, in the order of work (dataset group → schemas and datasets → imports; event
//! tracker, filters and solutions; versions → campaigns and batch jobs; recommenders), plus the
//! unmanaged resources it saw.
//!
//! A step's [`Action`] says what the reconciler does next: create (when its dependencies are ACTIVE),
//! update a campaign, wait for Personalize, adopt what exists, skip, or report a conflict or failure.
//! Failures propagate: every dependant of a failed or conflicting resource is
//! [`Action::DependencyFailed`], while independent branches keep going.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::spec::kinds::DatasetType;
use crate::spec::model::{
    AutoTrainingConfig, BatchInferenceJob, BatchSegmentJob, CampaignConfig, EventsConfig, RecommenderConfig,
    Solution, Tag,
};

mod decide;
mod diff;
pub mod observed;
mod schema_change;
pub mod teardown;

#[cfg(test)]
mod tests;

pub use decide::{plan, serving_version};
pub use diff::{TagChanges, json_changes, json_differences, tag_changes};
pub use observed::{Observation, Phase};

/// A Personalize resource kind (one type shared with the store and the daemon).
pub use crate::spec::kinds::ResourceKind as Kind;

/// One managed resource: its kind and name. Import jobs are named by their job name; solution
/// versions by their solution's name (a solution has one current version).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Ref {
    #[serde(serialize_with = "crate::spec::kinds::serialize_arn_spelling")]
    pub kind: Kind,
    pub name: String,
}

impl Ref {
    pub fn new(kind: Kind, name: impl Into<String>) -> Self {
        Self {
            kind,
            name: name.into(),
        }
    }
}

impl fmt::Display for Ref {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind, self.name)
    }
}

/// Where a dataset's data was found, and how fresh it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DataLocation {
    /// The import's `dataLocation` (`s3://…/interactions/` or `s3://…/interactions.csv`).
    pub url: String,
    /// The newest `last_modified` of the objects imported from there.
    pub newest: DateTime<Utc>,
}

/// What the object store holds for this group.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DataFound {
    /// Data per dataset type; absent when there is neither a `<type>/` folder of CSVs nor `<type>.csv`.
    pub datasets: std::collections::BTreeMap<DatasetType, DataLocation>,
    /// Solutions whose batch input file (`batch/<group>/<solution>/job_config.json`) exists.
    pub batch_inputs: std::collections::BTreeSet<String>,
}

/// Role ARNs from the settings (`personalize.*_role_arn`); `None` when not set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Roles {
    pub import: Option<String>,
    pub batch_inference: Option<String>,
    pub batch_segment: Option<String>,
    /// KMS role and key for new dataset groups (both or neither).
    pub kms: Option<(String, String)>,
}

/// What is fixed for one run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunContext {
    /// The run's start: one-shot jobs of this run are named from it (`dataset_import_<type>_<ts>`),
    /// so a resumed run finds them.
    pub run_start: DateTime<Utc>,
    /// Now, for ages (`maxAge`).
    pub now: DateTime<Utc>,
    pub roles: Roles,
    /// The bucket batch inputs and outputs live in (`s3://<bucket>/batch/<group>/…`).
    pub bucket: String,
    /// A schedule's fire this run performs (`run_start` is then the fire instant); `None` for a run of
    /// a parameter file.
    pub scheduled: Option<ScheduledWork>,
}

/// What a schedule's fire asks of a run beyond converging the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScheduledWork {
    /// New data is imported, as on every run; nothing more is forced.
    Import,
    /// A new version of `solution` trained in `mode` (FULL while it has no ACTIVE FULL version), even
    /// though an ACTIVE one exists; campaigns and batch jobs then follow the new version.
    Train {
        solution: String,
        mode: crate::spec::model::TrainingMode,
    },
    /// A new batch job for entry `index` of `solution`'s list of `kind` jobs, even though a fresh one
    /// exists for the newest ACTIVE version.
    Batch {
        kind: Kind,
        solution: String,
        index: usize,
    },
}

/// The members every batch job's create call sends besides the job's own settings.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BatchTarget {
    pub job_name: String,
    pub solution_version_arn: String,
    /// The input file's S3 URL.
    pub input: String,
    /// The S3 prefix the job writes to.
    pub output: String,
    pub role_arn: String,
}

/// A create call, with every member the reconciler sends.
/// A schema to create before the call that uses it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewSchema {
    pub name: String,
    pub schema: String,
    pub domain: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase", tag = "op")]
pub enum Request {
    CreateDatasetGroup {
        name: String,
        domain: Option<String>,
        role_arn: Option<String>,
        kms_key_arn: Option<String>,
        tags: Vec<Tag>,
    },
    CreateSchema {
        name: String,
        schema: String,
        domain: Option<String>,
    },
    CreateDataset {
        name: String,
        dataset_group_arn: String,
        schema_arn: String,
        dataset_type: DatasetType,
        tags: Vec<Tag>,
    },
    CreateDatasetImportJob {
        job_name: String,
        dataset_arn: String,
        data_location: String,
        role_arn: String,
        import_mode: String,
        publish_attribution_metrics_to_s3: bool,
        tags: Vec<Tag>,
    },
    CreateEventTracker {
        name: String,
        dataset_group_arn: String,
        tags: Vec<Tag>,
    },
    CreateFilter {
        name: String,
        dataset_group_arn: String,
        filter_expression: String,
        tags: Vec<Tag>,
    },
    CreateSolution {
        dataset_group_arn: String,
        /// `performAutoTraining` as decided (see [`Step::note`]).
        perform_auto_training: bool,
        solution: Box<Solution>,
    },
    CreateSolutionVersion {
        solution_arn: String,
        name: Option<String>,
        training_mode: String,
        tags: Vec<Tag>,
    },
    CreateCampaign {
        name: String,
        solution_version_arn: String,
        min_provisioned_tps: i32,
        campaign_config: Option<CampaignConfig>,
        tags: Vec<Tag>,
    },
    /// Never carries tags (the reference sent them and broke, docs/reference.md#bugs-we-fix).
    UpdateCampaign {
        campaign_arn: String,
        solution_version_arn: String,
        min_provisioned_tps: i32,
        campaign_config: Option<CampaignConfig>,
    },
    /// Changes what Personalize lets change on an existing solution: `performAutoTraining` and the
    /// `solutionUpdateConfig` (auto-training schedule, events weighting). `None` members are left as
    /// they are.
    UpdateSolution {
        solution_arn: String,
        perform_auto_training: Option<bool>,
        auto_training_config: Option<AutoTrainingConfig>,
        events_config: Option<EventsConfig>,
    },
    /// Replaces a recommender's configuration (the recommender keeps serving meanwhile).
    UpdateRecommender {
        recommender_arn: String,
        recommender_config: RecommenderConfig,
    },
    /// The first half of replacing a filter whose expression changed (opted in with
    /// `datasetGroup.workflowConfig.replaceFilters`): once it is gone it is created again, same name.
    DeleteFilter { filter_arn: String },
    /// Moves a dataset to another schema; `create_schema` first creates that schema (a file's schema
    /// that only gained optional fields becomes a new schema, since schemas cannot change).
    UpdateDataset {
        dataset_arn: String,
        schema_arn: String,
        create_schema: Option<NewSchema>,
    },
    /// Brings a resource's tags to the file's: `tags` added or changed (TagResource), `untag_keys`
    /// removed (UntagResource). Keys starting with `aws:` belong to AWS and are never removed.
    TagResource {
        resource_arn: String,
        tags: Vec<Tag>,
        untag_keys: Vec<String>,
    },
    CreateRecommender {
        name: String,
        dataset_group_arn: String,
        recipe_arn: String,
        recommender_config: Option<RecommenderConfig>,
        tags: Vec<Tag>,
    },
    CreateBatchInferenceJob {
        #[serde(flatten)]
        target: BatchTarget,
        job: Box<BatchInferenceJob>,
    },
    CreateBatchSegmentJob {
        #[serde(flatten)]
        target: BatchTarget,
        job: Box<BatchSegmentJob>,
    },
}

impl Request {
    /// The word for what the call does to the resource: `CREATE`, `UPDATE` or `DELETE`.
    pub fn verb(&self) -> &'static str {
        match self {
            Self::UpdateCampaign { .. }
            | Self::UpdateSolution { .. }
            | Self::UpdateRecommender { .. }
            | Self::UpdateDataset { .. }
            | Self::TagResource { .. } => "UPDATE",
            Self::DeleteFilter { .. } => "DELETE",
            _ => "CREATE",
        }
    }
}

/// What remains to do for one resource.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase", tag = "action")]
pub enum Action {
    /// Create it. `request` is `Some` exactly when `after` is empty (every dependency is ACTIVE, so
    /// the parents' ARNs are known); otherwise it is created once `after` is done.
    Create {
        request: Option<Request>,
        after: Vec<Ref>,
        why: String,
    },
    /// Change it in place (or, for a filter whose expression changed, delete it to create it again);
    /// `changes` say what differs, as `field: old → new`.
    Update { request: Request, changes: Vec<String> },
    /// Personalize is working on it (creation, an update, or an adopted in-flight job).
    Wait { status: String },
    /// It exists, matches the file and is ACTIVE (or current, for jobs).
    Adopt,
    /// Nothing to do, and nothing depends on it.
    Skip { reason: String, warning: bool },
    /// It exists with a different immutable configuration; never replaced silently.
    Conflict { differences: Vec<String> },
    /// It cannot be brought to the file: `CREATE FAILED` (with Personalize's reason), an unusable
    /// status, or a missing setting.
    Failed { reason: String },
    /// Something it needs failed or conflicts.
    DependencyFailed { on: Ref },
}

impl Action {
    /// Whether the resource is usable by its dependants now.
    pub fn is_done(&self) -> bool {
        matches!(self, Self::Adopt | Self::Skip { .. })
    }

    /// Whether it will never get done in this run.
    pub fn is_broken(&self) -> bool {
        matches!(
            self,
            Self::Conflict { .. } | Self::Failed { .. } | Self::DependencyFailed { .. }
        )
    }

    /// Whether the reconciler can act on it now (a call to make).
    pub fn is_ready(&self) -> bool {
        match self {
            Self::Create { request, .. } => request.is_some(),
            Self::Update { .. } => true,
            _ => false,
        }
    }

    /// Whether it changes Personalize (create or update).
    pub fn is_change(&self) -> bool {
        matches!(self, Self::Create { .. } | Self::Update { .. })
    }
}

/// One resource and what remains to do for it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    pub target: Ref,
    /// The resource's ARN when it exists (for a version or job: the one adopted or waited for).
    pub arn: Option<String>,
    pub action: Action,
    /// A decision worth logging (e.g. the `performAutoTraining` sent and why).
    pub note: Option<String>,
}

/// The actions for one dataset group.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[must_use]
pub struct Plan {
    /// In the order of work; dependencies come before their dependants.
    pub steps: Vec<Step>,
    /// Resources under the group that the file does not declare: left alone, only listed.
    pub unmanaged: Vec<observed::Listed>,
}

impl Plan {
    /// The step of `target`, if any.
    pub fn step(&self, target: &Ref) -> Option<&Step> {
        self.steps.iter().find(|s| &s.target == target)
    }

    /// No create, update or wait remains (failures may).
    pub fn is_settled(&self) -> bool {
        self.steps
            .iter()
            .all(|s| s.action.is_done() || s.action.is_broken())
    }

    /// Every resource is done (adopted or skipped).
    pub fn is_converged(&self) -> bool {
        self.steps.iter().all(|s| s.action.is_done())
    }

    /// Whether anything would be created or updated.
    pub fn has_changes(&self) -> bool {
        self.steps.iter().any(|s| s.action.is_change())
    }
}
