//! The built-in recipes (personalize-api.md §4): names, recipe types, and what the engine needs of each.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::spec::kinds::Domain;

/// The ARN prefix of the built-in recipes.
pub const RECIPE_ARN_PREFIX: &str = "arn:aws:personalize:::recipe/";

/// What a recipe's models do, and so which runtime calls they answer. Personalize returns these as
/// free strings (`recipeType`).
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

/// One built-in recipe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recipe {
    /// The name, the last part of the ARN (`aws-user-personalization`).
    pub name: &'static str,
    pub recipe_type: RecipeType,
    /// Set for the use cases of Domain dataset groups (`CreateRecommender`).
    pub domain: Option<Domain>,
    /// The event type a use case trains on (`aws-ecomm-popular-items-by-views` → `View`).
    pub event_type: Option<&'static str>,
    /// `trainingMode=UPDATE` is allowed.
    pub supports_update: bool,
    /// Batch inference (or segment) jobs are allowed.
    pub supports_batch: bool,
    /// The engine can train it (it has no model for action recommendations).
    pub trainable: bool,
}

impl Recipe {
    /// `arn:aws:personalize:::recipe/<name>`.
    pub fn arn(&self) -> String {
        format!("{RECIPE_ARN_PREFIX}{}", self.name)
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
        trainable: true,
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
        trainable: true,
    }
}

use Domain::{Ecommerce, VideoOnDemand};
use RecipeType::*;

/// Every recipe the built-in Personalize knows: custom recipes first, then the domain use cases.
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
        trainable: false,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipes_are_found_by_name_or_arn() {
        let sims = find("aws-sims").expect("sims");
        assert_eq!(sims.recipe_type, RelatedItems);
        assert_eq!(find(&sims.arn()), Some(sims));
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
    fn names_are_unique_and_use_cases_have_a_domain() {
        for (i, r) in RECIPES.iter().enumerate() {
            assert!(RECIPES[..i].iter().all(|o| o.name != r.name), "{} twice", r.name);
            assert_eq!(
                r.domain.is_some(),
                r.name.starts_with("aws-ecomm-") || r.name.starts_with("aws-vod-")
            );
        }
        assert_eq!(RecipeType::PopularItems.to_string(), "POPULAR_ITEMS");
        assert_eq!(
            serde_json::to_string(&RecipeType::UserSegmentation).expect("json"),
            "\"USER_SEGMENTATION\""
        );
    }
}
