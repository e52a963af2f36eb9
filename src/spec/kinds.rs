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
