//! What Personalize reports about a dataset group: the planner's view of the live account.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::spec::kinds::DatasetType;

use super::Kind;

/// A resource status, as Personalize spells it, reduced to what the planner acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// `ACTIVE`: done.
    Active,
    /// `CREATE PENDING`, `CREATE IN_PROGRESS`, `UPDATE …`: Personalize is still working.
    Pending,
    /// `CREATE FAILED`: `failureReason` says why.
    Failed,
    /// Anything else (`DELETE …`, `INACTIVE`, `CREATE STOPPED`, …): unusable for this run.
    Unusable,
}

impl Phase {
    /// Reads a status string (`ACTIVE`, `CREATE IN_PROGRESS`, …).
    pub fn of(status: &str) -> Self {
        let s = status.trim().to_ascii_uppercase();
        if s == "ACTIVE" {
            Self::Active
        } else if s == "CREATE FAILED" || s == "UPDATE FAILED" {
            Self::Failed
        } else if (s.starts_with("CREATE") || s.starts_with("UPDATE"))
            && (s.ends_with("PENDING") || s.ends_with("IN_PROGRESS"))
        {
            Self::Pending
        } else {
            Self::Unusable
        }
    }
}

/// What every described resource has.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Meta {
    pub arn: String,
    /// As Personalize spells it.
    pub status: String,
    pub failure_reason: Option<String>,
    pub created: Option<DateTime<Utc>>,
    pub updated: Option<DateTime<Utc>>,
}

impl Meta {
    pub fn phase(&self) -> Phase {
        Phase::of(&self.status)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DatasetGroupObs {
    pub meta: Meta,
    pub domain: Option<String>,
    pub kms_key_arn: Option<String>,
}

/// Schemas have no status: they are usable as soon as they exist.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SchemaObs {
    pub arn: String,
    /// The Avro document, parsed (`Null` when Personalize returned text that is not JSON).
    pub document: serde_json::Value,
    pub domain: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DatasetObs {
    pub meta: Meta,
    pub name: String,
    pub schema_arn: String,
    pub group_arn: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportJobObs {
    pub meta: Meta,
    pub job_name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventTrackerObs {
    pub meta: Meta,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FilterObs {
    pub meta: Meta,
    pub group_arn: String,
    pub expression: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SolutionObs {
    pub meta: Meta,
    pub group_arn: String,
    pub recipe_arn: Option<String>,
    pub perform_hpo: bool,
    pub perform_auto_training: Option<bool>,
    pub event_type: Option<String>,
    /// `solutionConfig` in the API's member names (camelCase JSON).
    pub config: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionObs {
    pub meta: Meta,
    pub name: Option<String>,
    pub training_mode: Option<String>,
}

/// A campaign's latest update (`latestCampaignUpdate`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CampaignUpdateObs {
    pub status: String,
    pub failure_reason: Option<String>,
    pub solution_version_arn: Option<String>,
    pub min_provisioned_tps: Option<i32>,
    pub config: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CampaignObs {
    pub meta: Meta,
    pub solution_version_arn: String,
    pub min_provisioned_tps: i32,
    pub config: Option<serde_json::Value>,
    pub latest_update: Option<CampaignUpdateObs>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecommenderObs {
    pub meta: Meta,
    pub group_arn: String,
    pub recipe_arn: String,
    pub config: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchJobObs {
    pub meta: Meta,
    pub job_name: String,
    pub solution_version_arn: String,
}

/// The latest in-place update of a solution, dataset or recommender (`latestSolutionUpdate`,
/// `latestDatasetUpdate`, `latestRecommenderUpdate`). The resource keeps its old configuration, and
/// stays `ACTIVE`, until the update is.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateObs {
    /// As Personalize spells it.
    pub status: String,
    pub failure_reason: Option<String>,
    /// What the update asked for, in the API's member names: the solution's
    /// `{"performAutoTraining", "solutionUpdateConfig"}`, the recommender's `recommenderConfig`, the
    /// dataset's `schemaArn` (a string). Lets a failed update be told apart from a new request.
    pub requested: serde_json::Value,
}

/// A resource listed under the dataset group (used to report what the file does not manage).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Listed {
    #[serde(serialize_with = "crate::spec::kinds::serialize_arn_spelling")]
    pub kind: Kind,
    pub name: String,
    pub arn: String,
}

/// Everything observed for one dataset group. Absent keys mean "does not exist".
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Observation {
    pub group: Option<DatasetGroupObs>,
    /// By schema name.
    pub schemas: BTreeMap<String, SchemaObs>,
    pub datasets: BTreeMap<DatasetType, DatasetObs>,
    /// Import jobs of each dataset (any order).
    pub import_jobs: BTreeMap<DatasetType, Vec<ImportJobObs>>,
    /// Every tracker of the group (Personalize allows one).
    pub event_trackers: Vec<EventTrackerObs>,
    /// By filter name.
    pub filters: BTreeMap<String, FilterObs>,
    /// By solution name.
    pub solutions: BTreeMap<String, SolutionObs>,
    /// Versions of each solution, by solution name (any order).
    pub versions: BTreeMap<String, Vec<VersionObs>>,
    /// By campaign name.
    pub campaigns: BTreeMap<String, CampaignObs>,
    /// By recommender name.
    pub recommenders: BTreeMap<String, RecommenderObs>,
    /// Batch inference jobs by solution version ARN.
    pub batch_inference_jobs: BTreeMap<String, Vec<BatchJobObs>>,
    /// Batch segment jobs by solution version ARN.
    pub batch_segment_jobs: BTreeMap<String, Vec<BatchJobObs>>,
    /// What listing the group (and its solutions) showed, managed or not.
    pub listed: Vec<Listed>,
    /// The latest in-place update of each solution, dataset and recommender that had one, by the
    /// resource's ARN.
    pub updates: BTreeMap<String, UpdateObs>,
    /// `GetSolutionMetrics` by version ARN: read for the serving and the candidate version of each
    /// solution with a promotion gate.
    pub metrics: BTreeMap<String, BTreeMap<String, f64>>,
    /// `ListTagsForResource` by resource ARN, for the ACTIVE resources the file declares that take
    /// tags after creation; a resource absent here was not read and its tags are not compared.
    pub tags: BTreeMap<String, Vec<crate::spec::model::Tag>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_phases() {
        assert_eq!(Phase::of("ACTIVE"), Phase::Active);
        assert_eq!(Phase::of("CREATE PENDING"), Phase::Pending);
        assert_eq!(Phase::of("CREATE IN_PROGRESS"), Phase::Pending);
        assert_eq!(Phase::of("UPDATE IN_PROGRESS"), Phase::Pending);
        assert_eq!(Phase::of("CREATE FAILED"), Phase::Failed);
        assert_eq!(Phase::of("DELETE PENDING"), Phase::Unusable);
        assert_eq!(Phase::of("INACTIVE"), Phase::Unusable);
        assert_eq!(Phase::of("CREATE STOPPED"), Phase::Unusable);
        assert_eq!(Phase::of(""), Phase::Unusable);
    }
}
