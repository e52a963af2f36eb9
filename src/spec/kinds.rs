//! Small enums shared by the parameter file, the planner and the built-in Personalize.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A Personalize dataset type. The reference supports the first three; the emulator knows all five.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DatasetType {
    Interactions,
    Items,
    Users,
    Actions,
    #[serde(rename = "action_interactions")]
    ActionInteractions,
}

impl DatasetType {
    /// The three types a parameter file may declare, in the reference's order of work.
    pub const PARAMETER_FILE: [DatasetType; 3] = [Self::Interactions, Self::Users, Self::Items];

    /// The key in a parameter file and in data paths (`interactions`, `interactions.csv`).
    pub fn key(self) -> &'static str {
        match self {
            Self::Interactions => "interactions",
            Self::Items => "items",
            Self::Users => "users",
            Self::Actions => "actions",
            Self::ActionInteractions => "action_interactions",
        }
    }

    /// The form Personalize uses in ARNs (`dataset/<group>/INTERACTIONS`).
    pub fn arn_suffix(self) -> &'static str {
        match self {
            Self::Interactions => "INTERACTIONS",
            Self::Items => "ITEMS",
            Self::Users => "USERS",
            Self::Actions => "ACTIONS",
            Self::ActionInteractions => "ACTION_INTERACTIONS",
        }
    }

    /// The form CreateDataset documents (`Interactions`, `Action_Interactions`).
    pub fn api_name(self) -> &'static str {
        match self {
            Self::Interactions => "Interactions",
            Self::Items => "Items",
            Self::Users => "Users",
            Self::Actions => "Actions",
            Self::ActionInteractions => "Action_Interactions",
        }
    }
}

impl FromStr for DatasetType {
    type Err = String;

    /// Case-insensitive, as Personalize accepts `datasetType`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "interactions" => Ok(Self::Interactions),
            "items" => Ok(Self::Items),
            "users" => Ok(Self::Users),
            "actions" => Ok(Self::Actions),
            "action_interactions" => Ok(Self::ActionInteractions),
            _ => Err(format!(
                "unknown dataset type {s:?}; expected Interactions, Items, Users, Actions or Action_Interactions"
            )),
        }
    }
}

impl fmt::Display for DatasetType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// The domain of a Domain dataset group (and of its schemas and recommenders).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Domain {
    #[serde(rename = "ECOMMERCE")]
    Ecommerce,
    #[serde(rename = "VIDEO_ON_DEMAND")]
    VideoOnDemand,
}

impl Domain {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ecommerce => "ECOMMERCE",
            Self::VideoOnDemand => "VIDEO_ON_DEMAND",
        }
    }
}

impl FromStr for Domain {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "ECOMMERCE" => Ok(Self::Ecommerce),
            "VIDEO_ON_DEMAND" => Ok(Self::VideoOnDemand),
            _ => Err(format!(
                "unknown domain {s:?}; expected ECOMMERCE or VIDEO_ON_DEMAND"
            )),
        }
    }
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resource_kind_has_the_store_and_the_arn_spelling() {
        let kind = ResourceKind::BatchSegmentJob;
        assert_eq!(
            serde_json::to_string(&kind).expect("serialise"),
            "\"BatchSegmentJob\""
        );
        let mut out = Vec::new();
        serialize_arn_spelling(&kind, &mut serde_json::Serializer::new(&mut out)).expect("serialise");
        assert_eq!(out, b"\"batch-segment-job\"");
        assert_eq!(kind.to_string(), "batch-segment-job");
        assert_eq!(ResourceKind::ALL.len(), 12);
    }

    #[test]
    fn dataset_type_parses_case_insensitively() {
        assert_eq!(
            "INTERACTIONS".parse::<DatasetType>(),
            Ok(DatasetType::Interactions)
        );
        assert_eq!(
            "Action_Interactions".parse::<DatasetType>(),
            Ok(DatasetType::ActionInteractions)
        );
        assert!("events".parse::<DatasetType>().is_err());
        for t in DatasetType::PARAMETER_FILE {
            assert_eq!(t.key().parse::<DatasetType>(), Ok(t));
            assert_eq!(t.arn_suffix().parse::<DatasetType>(), Ok(t));
        }
    }

    #[test]
    fn domain_is_exact() {
        assert_eq!("ECOMMERCE".parse::<Domain>(), Ok(Domain::Ecommerce));
        assert!("ecommerce".parse::<Domain>().is_err());
    }
}

/// A Personalize resource kind: one type for the planner, the reconciler, the state store and the
/// notifications. Serde uses the variant names (`DatasetGroup`, the state table's spelling); the
/// planner's JSON output uses the ARN spelling through [`serialize_arn_spelling`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ResourceKind {
    DatasetGroup,
    Schema,
    Dataset,
    DatasetImportJob,
    EventTracker,
    Filter,
    Solution,
    SolutionVersion,
    Campaign,
    Recommender,
    BatchInferenceJob,
    BatchSegmentJob,
}

impl ResourceKind {
    /// Every kind, in dependency order (the order of work).
    pub const ALL: [ResourceKind; 12] = [
        Self::DatasetGroup,
        Self::Schema,
        Self::Dataset,
        Self::DatasetImportJob,
        Self::EventTracker,
        Self::Filter,
        Self::Solution,
        Self::SolutionVersion,
        Self::Campaign,
        Self::Recommender,
        Self::BatchInferenceJob,
        Self::BatchSegmentJob,
    ];

    /// The ARN spelling (`dataset-group`, `solution-version`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::DatasetGroup => "dataset-group",
            Self::Schema => "schema",
            Self::Dataset => "dataset",
            Self::DatasetImportJob => "dataset-import-job",
            Self::EventTracker => "event-tracker",
            Self::Filter => "filter",
            Self::Solution => "solution",
            Self::SolutionVersion => "solution-version",
            Self::Campaign => "campaign",
            Self::Recommender => "recommender",
            Self::BatchInferenceJob => "batch-inference-job",
            Self::BatchSegmentJob => "batch-segment-job",
        }
    }

    /// `DatasetImportJob`: the metric-name stem (`DatasetImportJobCreated`).
    pub fn camel(self) -> &'static str {
        match self {
            Self::DatasetGroup => "DatasetGroup",
            Self::Schema => "Schema",
            Self::Dataset => "Dataset",
            Self::DatasetImportJob => "DatasetImportJob",
            Self::EventTracker => "EventTracker",
            Self::Filter => "Filter",
            Self::Solution => "Solution",
            Self::SolutionVersion => "SolutionVersion",
            Self::Campaign => "Campaign",
            Self::Recommender => "Recommender",
            Self::BatchInferenceJob => "BatchInferenceJob",
            Self::BatchSegmentJob => "BatchSegmentJob",
        }
    }

    /// `Dataset Import Job`: the words of the EventBridge detail type.
    pub fn title(self) -> String {
        let camel = self.camel();
        let mut out = String::with_capacity(camel.len() + 4);
        for (i, c) in camel.char_indices() {
            if i > 0 && c.is_ascii_uppercase() {
                out.push(' ');
            }
            out.push(c);
        }
        out
    }

    /// `dataset import job`: for sentences.
    pub fn words(self) -> String {
        self.title().to_ascii_lowercase()
    }
}

impl fmt::Display for ResourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Serialises a kind in its ARN spelling (`dataset-group`), as `plan` and `apply` print it.
pub fn serialize_arn_spelling<S: serde::Serializer>(
    kind: &ResourceKind,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(kind.as_str())
}
