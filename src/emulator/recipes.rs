//! The built-in recipe catalogue (personalize-api.md §4): custom recipes and domain use cases.

use crate::spec::kinds::Domain;

/// What kind of answers a recipe gives, which decides the runtime API and its required inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    UserPersonalization,
    PopularItems,
    PersonalizedRanking,
    RelatedItems,
    UserSegmentation,
    PersonalizedActions,
}

impl Family {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::UserPersonalization => "USER_PERSONALIZATION",
            Self::PopularItems => "POPULAR_ITEMS",
            Self::PersonalizedRanking => "PERSONALIZED_RANKING",
            Self::RelatedItems => "RELATED_ITEMS",
            Self::UserSegmentation => "USER_SEGMENTATION",
            Self::PersonalizedActions => "PERSONALIZED_ACTIONS",
        }
    }
}

/// One recipe of the catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recipe {
    pub name: &'static str,
    pub family: Family,
    /// `recipeType` as DescribeRecipe reports it (the popularity-count page says USER_PERSONALIZATION).
    pub reported_type: &'static str,
    /// Set for domain use cases (recommenders), absent for custom recipes (solutions).
    pub domain: Option<Domain>,
    pub description: &'static str,
    /// The custom recipe a domain use case trains as, and the event type it trains on.
    pub trains_as: &'static str,
    pub event_type: Option<&'static str>,
    /// Whether GetRecommendations needs a `userId` / an `itemId`.
    pub needs_user: bool,
    pub needs_item: bool,
    /// Whether CreateBatchInferenceJob accepts versions of this recipe.
    pub batch_inference: bool,
}

/// The ARN prefix of every recipe (recipes have no region or account).
pub const RECIPE_ARN_PREFIX: &str = "arn:aws:personalize:::recipe/";

/// When the service's recipes were created (a fixed instant: 2018-11-28, the service launch).
pub const RECIPES_CREATED: f64 = 1_543_363_200.0;

const fn custom(
    name: &'static str,
    family: Family,
    reported_type: &'static str,
    description: &'static str,
) -> Recipe {
    let (needs_user, needs_item) = match family {
        Family::UserPersonalization | Family::PersonalizedRanking | Family::PersonalizedActions => {
            (true, false)
        }
        Family::RelatedItems => (false, true),
        Family::PopularItems | Family::UserSegmentation => (false, false),
    };
    Recipe {
        name,
        family,
        reported_type,
        domain: None,
        description,
        trains_as: name,
        event_type: None,
        needs_user,
        needs_item,
        batch_inference: !matches!(family, Family::UserSegmentation | Family::PersonalizedActions),
    }
}

#[allow(clippy::too_many_arguments)]
const fn use_case(
    name: &'static str,
    domain: Domain,
    family: Family,
    trains_as: &'static str,
    event_type: Option<&'static str>,
    needs_user: bool,
    needs_item: bool,
    description: &'static str,
) -> Recipe {
    Recipe {
        name,
        family,
        reported_type: family.as_str(),
        domain: Some(domain),
        description,
        trains_as,
        event_type,
        needs_user,
        needs_item,
        batch_inference: false,
    }
}

use Domain::{Ecommerce, VideoOnDemand};
use Family::*;

/// Every recipe, custom first, in a fixed order.
#[rustfmt::skip]
pub const CATALOGUE: &[Recipe] = &[
    custom("aws-user-personalization-v2", UserPersonalization, "USER_PERSONALIZATION", "Personalized recommendations for up to 5 million items."),
    custom("aws-user-personalization", UserPersonalization, "USER_PERSONALIZATION", "Personalized recommendations with item exploration and real-time updates."),
    Recipe { batch_inference: false, ..custom("aws-trending-now", PopularItems, "POPULAR_ITEMS", "Items gaining popularity the fastest.") },
    custom("aws-popularity-count", PopularItems, "USER_PERSONALIZATION", "The most popular items by interaction count."),
    custom("aws-personalized-ranking-v2", PersonalizedRanking, "PERSONALIZED_RANKING", "Ranks a list of items for a user (up to 5 million items)."),
    custom("aws-personalized-ranking", PersonalizedRanking, "PERSONALIZED_RANKING", "Ranks a list of items for a user."),
    custom("aws-semantic-similarity", RelatedItems, "RELATED_ITEMS", "Items semantically similar to a given item."),
    custom("aws-similar-items", RelatedItems, "RELATED_ITEMS", "Items similar to a given item, using item metadata."),
    custom("aws-sims", RelatedItems, "RELATED_ITEMS", "Items that co-occur with a given item in user histories."),
    custom("aws-next-best-action", PersonalizedActions, "PERSONALIZED_ACTIONS", "The next best actions for a user."),
    custom("aws-item-affinity", UserSegmentation, "USER_SEGMENTATION", "Users most likely to interact with given items."),
    custom("aws-item-attribute-affinity", UserSegmentation, "USER_SEGMENTATION", "Users most likely to interact with items of given attributes."),
    custom("aws-hrnn", UserPersonalization, "USER_PERSONALIZATION", "Legacy hierarchical recurrent neural network."),
    custom("aws-hrnn-metadata", UserPersonalization, "USER_PERSONALIZATION", "Legacy HRNN with metadata."),
    custom("aws-hrnn-coldstart", UserPersonalization, "USER_PERSONALIZATION", "Legacy HRNN with cold-start items."),
    use_case("aws-ecomm-popular-items-by-views", Ecommerce, PopularItems, "aws-popularity-count", Some("View"), true, false, "Most viewed items."),
    use_case("aws-ecomm-popular-items-by-purchases", Ecommerce, PopularItems, "aws-popularity-count", Some("Purchase"), true, false, "Best sellers."),
    use_case("aws-ecomm-frequently-bought-together", Ecommerce, RelatedItems, "aws-sims", Some("Purchase"), false, true, "Items frequently bought together."),
    use_case("aws-ecomm-customers-who-viewed-x-also-viewed", Ecommerce, RelatedItems, "aws-sims", Some("View"), true, true, "Customers who viewed X also viewed."),
    use_case("aws-ecomm-recommended-for-you", Ecommerce, UserPersonalization, "aws-user-personalization", None, true, false, "Recommended for you."),
    use_case("aws-vod-because-you-watched-x", VideoOnDemand, RelatedItems, "aws-sims", Some("Watch"), true, true, "Because you watched X."),
    use_case("aws-vod-more-like-x", VideoOnDemand, RelatedItems, "aws-similar-items", None, true, true, "More like X."),
    use_case("aws-vod-most-popular", VideoOnDemand, PopularItems, "aws-popularity-count", Some("Watch"), true, false, "Most popular videos."),
    use_case("aws-vod-trending-now", VideoOnDemand, PopularItems, "aws-trending-now", None, false, false, "Trending now."),
    use_case("aws-vod-top-picks", VideoOnDemand, UserPersonalization, "aws-user-personalization", None, true, false, "Top picks for you."),
];

impl Recipe {
    pub fn arn(&self) -> String {
        format!("{RECIPE_ARN_PREFIX}{}", self.name)
    }

    /// Whether `trainingMode=UPDATE` is allowed (personalize-api.md §4.1).
    pub fn supports_update(&self) -> bool {
        matches!(self.name, "aws-user-personalization" | "aws-hrnn-coldstart")
    }
}

/// The recipe with this ARN, if it is in the catalogue.
pub fn by_arn(arn: &str) -> Option<&'static Recipe> {
    let name = arn.strip_prefix(RECIPE_ARN_PREFIX)?;
    by_name(name)
}

pub fn by_name(name: &str) -> Option<&'static Recipe> {
    CATALOGUE.iter().find(|r| r.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalogue_has_unique_names_and_known_arns() {
        for (i, r) in CATALOGUE.iter().enumerate() {
            assert!(
                CATALOGUE[i + 1..].iter().all(|o| o.name != r.name),
                "{} twice",
                r.name
            );
            assert_eq!(by_arn(&r.arn()), Some(r));
            assert!(
                by_name(r.trains_as).is_some_and(|t| t.domain.is_none()),
                "{} trains as a custom recipe",
                r.name
            );
        }
        assert!(by_arn("arn:aws:personalize:::recipe/aws-nope").is_none());
        assert!(by_arn("aws-sims").is_none());
    }

    #[test]
    fn families_decide_inputs() {
        let sims = by_name("aws-sims").expect("listed");
        assert!(sims.needs_item && !sims.needs_user);
        assert!(
            by_name("aws-user-personalization")
                .expect("listed")
                .supports_update()
        );
        assert!(
            !by_name("aws-user-personalization-v2")
                .expect("listed")
                .supports_update()
        );
        assert!(!by_name("aws-trending-now").expect("listed").batch_inference);
        assert_eq!(
            by_name("aws-vod-top-picks").expect("listed").domain,
            Some(Domain::VideoOnDemand)
        );
    }
}
