//! What the API layer adds to the engine's recipe table (docs/personalize.md#recipes): ARN lookups, the
//! inputs each recipe's runtime calls need, and the texts DescribeRecipe shows.

pub use super::engine::recipes::{RECIPE_ARN_PREFIX, RECIPES, Recipe, RecipeType};

/// When the service's recipes were created (a fixed instant: 2018-11-28, the service launch).
pub const RECIPES_CREATED: f64 = 1_543_363_200.0;

/// The recipe with this ARN (the API takes ARNs, not bare names).
pub use crate::spec::recipes::find_arn as by_arn;

/// Whether GetRecommendations needs a `userId` (docs/personalize.md#runtime-validation).
pub fn needs_user(r: &Recipe) -> bool {
    match r.recipe_type {
        RecipeType::UserPersonalization
        | RecipeType::PersonalizedRanking
        | RecipeType::PersonalizedActions => true,
        // Use cases take a user for personalisation, except these two (docs/personalize.md#recipes).
        RecipeType::PopularItems | RecipeType::RelatedItems => {
            r.domain.is_some()
                && !matches!(
                    r.name,
                    "aws-vod-trending-now" | "aws-ecomm-frequently-bought-together"
                )
        }
        RecipeType::UserSegmentation => false,
    }
}

/// Whether GetRecommendations needs an `itemId`: RELATED_ITEMS recipes and use cases.
pub fn needs_item(r: &Recipe) -> bool {
    r.recipe_type == RecipeType::RelatedItems
}

/// Whether GetRecommendations accepts `promotions`: every use case, and the custom recipes the
/// Developer Guide lists (User-Personalization and v2, Similar-Items, SIMS, Trending-Now,
/// Popularity-Count).
pub fn supports_promotions(r: &Recipe) -> bool {
    r.domain.is_some()
        || matches!(
            r.name,
            "aws-user-personalization"
                | "aws-user-personalization-v2"
                | "aws-similar-items"
                | "aws-sims"
                | "aws-trending-now"
                | "aws-popularity-count"
        )
}

/// DescribeRecipe's `description`.
pub fn description(r: &Recipe) -> String {
    match r.domain {
        Some(domain) => format!("The {} use case of the {domain} domain", r.name),
        None => format!("The {} recipe ({})", r.name, r.recipe_type),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(name: &str) -> &'static Recipe {
        by_arn(&format!("{RECIPE_ARN_PREFIX}{name}")).unwrap_or_else(|| panic!("{name} is listed"))
    }

    #[test]
    fn looks_up_by_arn_only() {
        assert_eq!(named("aws-sims").recipe_type, RecipeType::RelatedItems);
        assert!(by_arn("aws-sims").is_none(), "a bare name is not an ARN");
        assert!(by_arn("arn:aws:personalize:::recipe/aws-nope").is_none());
    }

    #[test]
    fn runtime_inputs_follow_the_recipe() {
        let sims = named("aws-sims");
        assert!(needs_item(sims) && !needs_user(sims));
        assert!(needs_user(named("aws-user-personalization")));
        assert!(!needs_user(named("aws-popularity-count")));
        assert!(needs_user(named("aws-ecomm-popular-items-by-views")));
        assert!(!needs_user(named("aws-vod-trending-now")));
        let also_viewed = named("aws-ecomm-customers-who-viewed-x-also-viewed");
        assert!(needs_user(also_viewed) && needs_item(also_viewed));
        assert!(!named("aws-item-affinity").allows_batch_inference());
        assert!(!named("aws-trending-now").allows_batch_inference());
        assert!(named("aws-user-personalization").allows_batch_inference());
        assert!(supports_promotions(named("aws-sims")));
        assert!(supports_promotions(named("aws-vod-top-picks")));
        assert!(!supports_promotions(named("aws-semantic-similarity")));
        assert!(!supports_promotions(named("aws-hrnn")));
    }
}
