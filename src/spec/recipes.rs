//! The Personalize recipes a parameter file may name (docs/personalize.md#recipes), and what each allows.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::spec::kinds::Domain;

/// The ARN prefix of the service's recipes.
pub const RECIPE_ARN_PREFIX: &str = "arn:aws:personalize:::recipe/";

/// What a recipe's models do, and so which runtime calls and jobs they serve. Personalize returns
/// these as free strings (`recipeType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RecipeType {
    UserPersonalization,
    RelatedItems,
    PersonalizedRanking,
    PopularItems,
    UserSegmentation,
    PersonalizedActions,
}

impl RecipeType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UserPersonalization => "USER_PERSONALIZATION",
            Self::RelatedItems => "RELATED_ITEMS",
            Self::PersonalizedRanking => "PERSONALIZED_RANKING",
            Self::PopularItems => "POPULAR_ITEMS",
            Self::UserSegmentation => "USER_SEGMENTATION",
            Self::PersonalizedActions => "PERSONALIZED_ACTIONS",
        }
    }
}

impl fmt::Display for RecipeType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One service recipe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recipe {
    /// The last part of the ARN (`aws-user-personalization`).
    pub name: &'static str,
    pub recipe_type: RecipeType,
    /// Set for the use cases of Domain dataset groups (CreateRecommender); `None` for custom recipes
    /// (CreateSolution).
    pub domain: Option<Domain>,
    /// The event type a use case trains on (`aws-ecomm-popular-items-by-views` → `View`).
    pub event_type: Option<&'static str>,
    /// `trainingMode=UPDATE` is allowed.
    pub supports_update: bool,
    /// Batch jobs are allowed: batch segment jobs for USER_SEGMENTATION, batch inference otherwise.
    pub supports_batch: bool,
}

impl Recipe {
    /// `arn:aws:personalize:::recipe/<name>`.
    pub fn arn(&self) -> String {
        format!("{RECIPE_ARN_PREFIX}{}", self.name)
    }

    /// Serves batch segment jobs only (no campaigns, no batch inference).
    pub fn is_segmentation(&self) -> bool {
        self.recipe_type == RecipeType::UserSegmentation
    }

    /// CreateBatchInferenceJob accepts a version of this recipe.
    pub fn allows_batch_inference(&self) -> bool {
        self.supports_batch && !self.is_segmentation()
    }

    /// CreateBatchSegmentJob accepts a version of this recipe.
    pub fn allows_batch_segment(&self) -> bool {
        self.supports_batch && self.is_segmentation()
    }

    /// CreateCampaign accepts a version of this recipe.
    pub fn allows_campaign(&self) -> bool {
        !self.is_segmentation()
    }
}

const fn custom(name: &'static str, recipe_type: RecipeType) -> Recipe {
    Recipe {
        name,
        recipe_type,
        domain: None,
        event_type: None,
        supports_update: false,
        supports_batch: true,
    }
}

const fn use_case(
    name: &'static str,
    domain: Domain,
    recipe_type: RecipeType,
    event_type: Option<&'static str>,
) -> Recipe {
    Recipe {
        name,
        recipe_type,
        domain: Some(domain),
        event_type,
        supports_update: false,
        supports_batch: false,
    }
}

use Domain::{Ecommerce, VideoOnDemand};
use RecipeType::*;

/// Every service recipe: custom recipes first, then the domain use cases.
pub const RECIPES: &[Recipe] = &[
    custom("aws-user-personalization-v2", UserPersonalization),
    Recipe {
        supports_update: true,
        ..custom("aws-user-personalization", UserPersonalization)
    },
    Recipe {
        supports_batch: false,
        ..custom("aws-trending-now", PopularItems)
    },
    custom("aws-popularity-count", PopularItems),
    custom("aws-personalized-ranking-v2", PersonalizedRanking),
    custom("aws-personalized-ranking", PersonalizedRanking),
    custom("aws-semantic-similarity", RelatedItems),
    custom("aws-similar-items", RelatedItems),
    custom("aws-sims", RelatedItems),
    Recipe {
        supports_batch: false,
        ..custom("aws-next-best-action", PersonalizedActions)
    },
    custom("aws-item-affinity", UserSegmentation),
    custom("aws-item-attribute-affinity", UserSegmentation),
    custom("aws-hrnn", UserPersonalization),
    custom("aws-hrnn-metadata", UserPersonalization),
    Recipe {
        supports_update: true,
        ..custom("aws-hrnn-coldstart", UserPersonalization)
    },
    use_case(
        "aws-ecomm-popular-items-by-views",
        Ecommerce,
        PopularItems,
        Some("View"),
    ),
    use_case(
        "aws-ecomm-popular-items-by-purchases",
        Ecommerce,
        PopularItems,
        Some("Purchase"),
    ),
    use_case(
        "aws-ecomm-frequently-bought-together",
        Ecommerce,
        RelatedItems,
        Some("Purchase"),
    ),
    use_case(
        "aws-ecomm-customers-who-viewed-x-also-viewed",
        Ecommerce,
        RelatedItems,
        Some("View"),
    ),
    use_case(
        "aws-ecomm-recommended-for-you",
        Ecommerce,
        UserPersonalization,
        None,
    ),
    use_case(
        "aws-vod-because-you-watched-x",
        VideoOnDemand,
        RelatedItems,
        Some("Watch"),
    ),
    use_case("aws-vod-more-like-x", VideoOnDemand, RelatedItems, None),
    use_case("aws-vod-most-popular", VideoOnDemand, PopularItems, Some("Watch")),
    use_case("aws-vod-trending-now", VideoOnDemand, PopularItems, None),
    use_case("aws-vod-top-picks", VideoOnDemand, UserPersonalization, None),
];

/// The recipe with this name or ARN (`aws-sims` or `arn:aws:personalize:::recipe/aws-sims`).
pub fn find(name_or_arn: &str) -> Option<&'static Recipe> {
    let name = name_or_arn.strip_prefix(RECIPE_ARN_PREFIX).unwrap_or(name_or_arn);
    RECIPES.iter().find(|r| r.name == name)
}

/// The recipe with exactly this ARN (a bare name is not an ARN).
pub fn find_arn(arn: &str) -> Option<&'static Recipe> {
    arn.strip_prefix(RECIPE_ARN_PREFIX).and_then(find)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipes_are_found_by_name_or_arn() {
        let sims = find("aws-sims").expect("sims is a recipe");
        assert_eq!(sims.recipe_type, RelatedItems);
        assert_eq!(find(&sims.arn()), Some(sims));
        assert_eq!(find_arn(&sims.arn()), Some(sims));
        assert!(find_arn("aws-sims").is_none());
        assert!(find("aws-unknown").is_none());
        assert!(find("arn:aws:personalize:::recipe/").is_none());
    }

    #[test]
    fn only_user_personalization_and_hrnn_coldstart_update() {
        let updatable: Vec<&str> = RECIPES
            .iter()
            .filter(|r| r.supports_update)
            .map(|r| r.name)
            .collect();
        assert_eq!(updatable, ["aws-user-personalization", "aws-hrnn-coldstart"]);
    }

    #[test]
    fn job_kinds_follow_the_recipe_type() {
        let affinity = find("aws-item-affinity").expect("recipe");
        assert!(affinity.allows_batch_segment());
        assert!(!affinity.allows_batch_inference());
        assert!(!affinity.allows_campaign());
        let up = find("aws-user-personalization").expect("recipe");
        assert!(up.allows_batch_inference() && up.allows_campaign());
        assert!(!up.allows_batch_segment());
        for no_batch in ["aws-trending-now", "aws-next-best-action"] {
            let recipe = find(no_batch).expect("recipe");
            assert!(!recipe.allows_batch_inference(), "{no_batch}");
        }
    }

    #[test]
    fn domain_use_cases_carry_their_domain() {
        let domains: Vec<_> = RECIPES.iter().filter_map(|r| r.domain).collect();
        assert_eq!(domains.len(), 10);
        assert_eq!(
            find("aws-vod-top-picks").and_then(|r| r.domain),
            Some(VideoOnDemand)
        );
    }
}
