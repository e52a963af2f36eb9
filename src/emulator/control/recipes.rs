//! ListRecipes and DescribeRecipe over the built-in catalogue.

use serde_json::{Value, json};

use super::{Cx, compact, list_page};
use crate::emulator::error::ApiError;
use crate::emulator::input::{Input, check_arn};
use crate::emulator::recipes::{self, RECIPES, RECIPES_CREATED, Recipe};
use crate::spec::kinds::Domain;

fn summary(r: &Recipe) -> Value {
    compact(json!({
        "name": r.name,
        "recipeArn": r.arn(),
        "status": "ACTIVE",
        "creationDateTime": RECIPES_CREATED,
        "lastUpdatedDateTime": RECIPES_CREATED,
        "domain": r.domain.map(Domain::as_str),
    }))
}

pub fn list(_cx: &mut Cx, input: &Input) -> Result<Value, ApiError> {
    input.opt_enum("recipeProvider", &["SERVICE"])?;
    let domain = input
        .opt_enum("domain", &["ECOMMERCE", "VIDEO_ON_DEMAND"])?
        .map(|d| d.parse::<Domain>().map_err(ApiError::invalid))
        .transpose()?;
    // The catalogue is fixed; number it so the newest-first pager keeps catalogue order.
    let count = RECIPES.len() as u64;
    let items = RECIPES
        .iter()
        .enumerate()
        .filter(|(_, r)| domain.is_none_or(|d| r.domain == Some(d)))
        .map(|(i, r)| (count - i as u64, r))
        .collect();
    let query = domain.map_or("", Domain::as_str);
    list_page(input, "ListRecipes", query, "recipes", items, summary)
}

pub fn describe(_cx: &mut Cx, input: &Input) -> Result<Value, ApiError> {
    let arn = input.str("recipeArn")?;
    check_arn("recipeArn", arn)?;
    let r = recipes::by_arn(arn).ok_or_else(|| ApiError::not_found("recipe", arn))?;
    let algorithm = format!("arn:aws:personalize:::algorithm/{}", r.name);
    let mut out = summary(r);
    if let Some(obj) = out.as_object_mut() {
        obj.insert("algorithmArn".into(), json!(algorithm));
        obj.insert("description".into(), json!(recipes::description(r)));
        obj.insert("recipeType".into(), json!(r.recipe_type.as_str()));
    }
    Ok(json!({ "recipe": out }))
}
