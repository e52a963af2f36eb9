//! The recipes the engine trains: the service's recipe table lives in [`crate::spec::recipes`]; this adds
//! what only the built-in Personalize needs to know of each.

pub use crate::spec::recipes::{RECIPE_ARN_PREFIX, RECIPES, Recipe, RecipeType, find};

/// Whether the engine has a model for this recipe. It has none for action recommendations
/// (Next-Best-Action), so such solutions are rejected at creation rather than failing later.
pub fn trainable(r: &Recipe) -> bool {
    r.recipe_type != RecipeType::PersonalizedActions
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_recipe_but_next_best_action_trains() {
        let untrainable: Vec<&str> = RECIPES.iter().filter(|r| !trainable(r)).map(|r| r.name).collect();
        assert_eq!(untrainable, ["aws-next-best-action"]);
        assert!(trainable(find("aws-sims").expect("sims")));
    }
}
