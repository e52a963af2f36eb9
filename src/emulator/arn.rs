//! Resource kinds and their ARNs (docs/personalize.md#arns): building them and telling them apart.

use std::fmt;
use std::str::FromStr;

use rand::Rng;
use serde::{Deserialize, Serialize};

/// A kind of Personalize resource the emulator keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
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

impl Kind {
    pub const ALL: [Kind; 12] = [
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

    /// The resource segment of the ARN (`dataset-group`), also the kind's name in fault specs.
    pub fn segment(self) -> &'static str {
        match self {
            Self::DatasetGroup => "dataset-group",
            Self::Schema => "schema",
            Self::Dataset => "dataset",
            Self::DatasetImportJob => "dataset-import-job",
            Self::EventTracker => "event-tracker",
            Self::Filter => "filter",
            // Versions live under their solution's ARN; the kind name differs from the segment.
            Self::Solution => "solution",
            Self::SolutionVersion => "solution-version",
            Self::Campaign => "campaign",
            Self::Recommender => "recommender",
            Self::BatchInferenceJob => "batch-inference-job",
            Self::BatchSegmentJob => "batch-segment-job",
        }
    }

    /// How messages name the kind ("dataset group").
    pub fn label(self) -> &'static str {
        match self {
            Self::DatasetGroup => "dataset group",
            Self::Schema => "schema",
            Self::Dataset => "dataset",
            Self::DatasetImportJob => "dataset import job",
            Self::EventTracker => "event tracker",
            Self::Filter => "filter",
            Self::Solution => "solution",
            Self::SolutionVersion => "solution version",
            Self::Campaign => "campaign",
            Self::Recommender => "recommender",
            Self::BatchInferenceJob => "batch inference job",
            Self::BatchSegmentJob => "batch segment job",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.segment())
    }
}

impl FromStr for Kind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|k| k.segment() == s).ok_or_else(|| {
            let names: Vec<&str> = Self::ALL.iter().map(|k| k.segment()).collect();
            format!(
                "unknown resource kind {s:?}; expected one of {}",
                names.join(", ")
            )
        })
    }
}

/// The account and region a resource lives in: the prefix of its ARN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub region: String,
    pub account: String,
}

impl Scope {
    /// `arn:aws:personalize:{region}:{account}:{segment}/{rest}`.
    pub fn arn(&self, kind: Kind, rest: &str) -> String {
        let segment = match kind {
            Kind::SolutionVersion => "solution",
            k => k.segment(),
        };
        format!(
            "arn:aws:personalize:{}:{}:{segment}/{rest}",
            self.region, self.account
        )
    }

    /// A solution version's ARN: the solution's ARN, `/`, 8 random hex digits.
    pub fn solution_version_arn(solution_arn: &str) -> String {
        format!("{solution_arn}/{}", random_hex8())
    }
}

/// 8 random lowercase hex digits (event tracker and solution version ids).
pub fn random_hex8() -> String {
    format!("{:08x}", rand::rng().random::<u32>())
}

/// The pieces of a Personalize ARN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedArn<'a> {
    pub region: &'a str,
    pub account: &'a str,
    /// The part after the account: `solution/name/3ba6a5be`.
    pub resource: &'a str,
}

impl<'a> ParsedArn<'a> {
    /// Splits an ARN already checked against the model pattern; `None` when it is not a Personalize
    /// ARN with a resource part.
    pub fn parse(arn: &'a str) -> Option<Self> {
        let mut parts = arn.splitn(6, ':');
        let (_arn, _partition, service) = (parts.next()?, parts.next()?, parts.next()?);
        if service != "personalize" {
            return None;
        }
        let region = parts.next()?;
        let account = parts.next()?;
        let resource = parts.next()?;
        Some(Self {
            region,
            account,
            resource,
        })
    }
}

/// The solution ARN of a version ARN (everything before the last `/`), if it is one.
pub fn solution_of_version(version_arn: &str) -> Option<&str> {
    let parsed = ParsedArn::parse(version_arn)?;
    let mut segs = parsed.resource.split('/');
    match (segs.next(), segs.next(), segs.next(), segs.next()) {
        (Some("solution"), Some(_), Some(_), None) => version_arn.rsplit_once('/').map(|(s, _)| s),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope() -> Scope {
        Scope {
            region: "us-east-1".into(),
            account: "000000000000".into(),
        }
    }

    #[test]
    fn arns_follow_the_documented_formats() {
        assert_eq!(
            scope().arn(Kind::DatasetGroup, "shop"),
            "arn:aws:personalize:us-east-1:000000000000:dataset-group/shop"
        );
        assert_eq!(
            scope().arn(Kind::Dataset, "shop/INTERACTIONS"),
            "arn:aws:personalize:us-east-1:000000000000:dataset/shop/INTERACTIONS"
        );
        let solution = scope().arn(Kind::Solution, "s1");
        let version = Scope::solution_version_arn(&solution);
        let id = version.rsplit('/').next().expect("has an id");
        assert_eq!(id.len(), 8);
        assert!(
            id.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert_eq!(solution_of_version(&version), Some(solution.as_str()));
        assert_eq!(solution_of_version(&solution), None);
    }

    #[test]
    fn parses_arns() {
        let p =
            ParsedArn::parse("arn:aws:personalize:eu-west-1:123456789012:solution/s/ab12cd34").expect("ok");
        assert_eq!(p.region, "eu-west-1");
        assert_eq!(p.resource, "solution/s/ab12cd34");
        assert!(ParsedArn::parse("arn:aws:s3:::bucket").is_none());
        assert!(ParsedArn::parse("nonsense").is_none());
    }

    #[test]
    fn kinds_round_trip_through_their_names() {
        for k in Kind::ALL {
            assert_eq!(k.segment().parse::<Kind>(), Ok(k));
        }
        assert!("campaigns".parse::<Kind>().is_err());
    }
}
