//! GetRecommendations and GetPersonalizedRanking, answered from the campaign's (or recommender's)
//! trained model, through the request's filter.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::request::{FilterRequest, PromotionRequest, RankRequest, RecommendRequest, Source};
use crate::emulator::control::Cx;
use crate::emulator::data::{Data, GroupTables};
use crate::emulator::engine::filter_eval::{FilterContext, check_filter_values};
use crate::emulator::engine::model::{self, Model, Query, Scored};
use crate::emulator::engine::table::Table;
use crate::emulator::error::{ApiError, ErrorCode};
use crate::emulator::input::Input;
use crate::emulator::lifecycle::Status;
use crate::emulator::recipes::{self, Recipe, RecipeType};
use crate::emulator::state::{Campaign, Filter, Recommender, State};
use crate::spec::filter::FilterExpression;

/// What answers a request: the model, its recipe, its group, whether metadata may be returned.
struct Server {
    model: Arc<Model>,
    recipe: &'static Recipe,
    group_arn: String,
    metadata_enabled: bool,
}

/// A campaign or recommender that is not ACTIVE answers as if it did not exist
/// (docs/personalize.md#runtime-validation).
fn not_active(label: &str, arn: &str, status: Status) -> ApiError {
    ApiError::new(
        ErrorCode::ResourceNotFound,
        format!("The {label} {arn} is not ACTIVE (status {})", status.as_str()),
    )
}

fn metadata_flag(config: Option<&Value>) -> bool {
    config
        .and_then(|c| c.get("enableMetadataWithRecommendations"))
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

fn campaign_server(state: &State, data: &Data, arn: &str, now: f64) -> Result<Server, ApiError> {
    let campaign = state.find::<Campaign>(arn, now)?;
    let status = campaign.meta.status(now);
    if status != Status::Active {
        return Err(not_active("campaign", arn, status));
    }
    // During an update the campaign serves its previous configuration.
    let version_arn = &campaign.current.solution_version_arn;
    let version = state
        .solution_versions
        .get(version_arn)
        .ok_or_else(|| ApiError::not_found("solution version", version_arn))?;
    Ok(Server {
        model: data
            .model(version_arn)
            .cloned()
            .ok_or_else(|| ApiError::not_found("model of the solution version", version_arn))?,
        recipe: recipes::by_arn(&version.recipe_arn)
            .ok_or_else(|| ApiError::not_found("recipe", &version.recipe_arn))?,
        group_arn: version.group_arn.clone(),
        metadata_enabled: metadata_flag(campaign.current.campaign_config.as_ref()),
    })
}

fn recommender_server(state: &State, data: &Data, arn: &str, now: f64) -> Result<Server, ApiError> {
    let r = state.find::<Recommender>(arn, now)?;
    let status = r.meta.status(now);
    if status != Status::Active {
        return Err(not_active("recommender", arn, status));
    }
    Ok(Server {
        model: data
            .model(arn)
            .cloned()
            .ok_or_else(|| ApiError::not_found("model of the recommender", arn))?,
        recipe: recipes::by_arn(&r.recipe_arn).ok_or_else(|| ApiError::not_found("recipe", &r.recipe_arn))?,
        group_arn: r.group_arn.clone(),
        metadata_enabled: metadata_flag(Some(&r.config)),
    })
}

/// The request's filter, parsed and with its values checked: it must exist, be ACTIVE and belong to
/// the same dataset group.
fn filter_expression(
    state: &State,
    request: &FilterRequest,
    group_arn: &str,
    now: f64,
) -> Result<Option<FilterExpression>, ApiError> {
    let Some(arn) = &request.arn else {
        if !request.values.is_empty() {
            return Err(ApiError::invalid("filterValues needs a filterArn"));
        }
        return Ok(None);
    };
    let filter = state.find::<Filter>(arn, now)?;
    let status = filter.meta.status(now);
    if status != Status::Active {
        return Err(ApiError::invalid(format!(
            "The filter {arn} is not ACTIVE (status {})",
            status.as_str()
        )));
    }
    if filter.group_arn != group_arn {
        return Err(ApiError::invalid(format!(
            "The filter {arn} belongs to another dataset group than {group_arn}"
        )));
    }
    let expression = crate::spec::filter::parse(&filter.expression)
        .map_err(|e| ApiError::invalid(format!("The filter {arn} is invalid: {e}")))?;
    check_filter_values(&expression, &request.values).map_err(ApiError::invalid)?;
    Ok(Some(expression))
}

/// Checks `metadataColumns` against the campaign's setting and the Items schema.
fn check_metadata(
    server: &Server,
    columns: Option<&Vec<String>>,
    items: Option<&Table>,
) -> Result<(), ApiError> {
    let Some(columns) = columns else { return Ok(()) };
    if !server.metadata_enabled {
        return Err(ApiError::invalid(
            "metadataColumns needs enableMetadataWithRecommendations in the campaign or recommender config",
        ));
    }
    let Some(items) = items else {
        return Err(ApiError::invalid("metadataColumns needs an Items dataset"));
    };
    if let Some(unknown) = columns.iter().find(|c| items.column(c).is_none()) {
        return Err(ApiError::invalid(format!(
            "metadataColumns: the Items dataset has no column {unknown}"
        )));
    }
    Ok(())
}

/// The predicted items, with metadata columns when asked for; promoted ones carry the promotion's
/// name.
fn predicted(
    scored: Vec<(Scored, Option<&str>)>,
    columns: Option<&Vec<String>>,
    items: Option<&Table>,
) -> Vec<Value> {
    let rows: HashMap<String, &Vec<_>> = match (columns, items) {
        (Some(_), Some(table)) => match table.column("ITEM_ID") {
            Some(id) => table
                .rows
                .iter()
                .filter_map(|r| r.get(id).map(|c| (c.to_string(), r)))
                .collect(),
            None => HashMap::new(),
        },
        _ => HashMap::new(),
    };
    scored
        .into_iter()
        .map(|(s, promotion)| {
            let mut item = Map::new();
            let metadata = columns.zip(items).map(|(columns, table)| {
                let row = rows.get(&s.id);
                columns
                    .iter()
                    .filter_map(|c| {
                        let cell = table.column(c).and_then(|i| row.and_then(|r| r.get(i)))?;
                        (!cell.is_null()).then(|| (c.clone(), Value::String(cell.to_string())))
                    })
                    .collect::<Map<String, Value>>()
            });
            item.insert("itemId".into(), json!(s.id));
            item.insert("score".into(), json!(s.score));
            if let Some(name) = promotion {
                item.insert("promotionName".into(), json!(name));
            }
            if let Some(metadata) = metadata {
                item.insert("metadata".into(), Value::Object(metadata));
            }
            Value::Object(item)
        })
        .collect()
}

/// A promotion's share of the results comes through its filter (and only through it), the rest
/// through the request's; the promoted items keep their relative order but land at random places
/// among the others, as Personalize places them.
fn promote<'p>(
    model: &Model,
    query: &Query,
    promotion: &'p PromotionRequest,
    filter: Option<&FilterContext>,
) -> Result<Vec<(Scored, Option<&'p str>)>, ApiError> {
    let invalid = |e: model::QueryError| ApiError::invalid(e.to_string());
    let promoted = model::recommend(
        model,
        &Query {
            num_results: promotion.count(query.num_results),
            filter,
            ..*query
        },
    )
    .map_err(invalid)?;
    let ids: std::collections::HashSet<&str> = promoted.iter().map(|s| s.id.as_str()).collect();
    // Ask for more, so what the promotion took does not shorten the list.
    let rest: Vec<Scored> = model::recommend(
        model,
        &Query {
            num_results: query.num_results + promoted.len(),
            ..*query
        },
    )
    .map_err(invalid)?
    .into_iter()
    .filter(|s| !ids.contains(s.id.as_str()))
    .take(query.num_results - promoted.len())
    .collect();
    let total = promoted.len() + rest.len();
    let mut slots = rand::seq::index::sample(&mut rand::rng(), total, promoted.len()).into_vec();
    slots.sort_unstable();
    let name = promotion.name.as_deref();
    let (mut promoted, mut rest) = (promoted.into_iter(), rest.into_iter());
    let mut slots = slots.into_iter().peekable();
    let mut out = Vec::with_capacity(total);
    for position in 0..total {
        let next = if slots.next_if_eq(&position).is_some() {
            promoted.next().map(|s| (s, name))
        } else {
            rest.next().map(|s| (s, None))
        };
        out.extend(next);
    }
    Ok(out)
}

/// `RID-` and a UUID: 40 characters, the length `Event.recommendationId` accepts.
fn recommendation_id() -> String {
    format!("RID-{}", uuid::Uuid::new_v4())
}

pub fn get_recommendations(cx: &mut Cx, data: &mut Data, input: &Input) -> Result<Value, ApiError> {
    let request = RecommendRequest::parse(input)?;
    let now = cx.now;
    let server = match &request.source {
        Source::Campaign(arn) => campaign_server(cx.state, data, arn, now)?,
        Source::Recommender(arn) => recommender_server(cx.state, data, arn, now)?,
    };
    match server.recipe.recipe_type {
        RecipeType::PersonalizedRanking => {
            return Err(ApiError::invalid(
                "This campaign uses a PERSONALIZED_RANKING recipe: call GetPersonalizedRanking",
            ));
        }
        RecipeType::UserSegmentation | RecipeType::PersonalizedActions => {
            return Err(ApiError::invalid(format!(
                "GetRecommendations is not available for {} recipes",
                server.recipe.recipe_type
            )));
        }
        _ => {}
    }
    if recipes::needs_item(server.recipe) && request.item_id.is_none() {
        return Err(ApiError::invalid(format!(
            "itemId is required for {} ({})",
            server.recipe.name, server.recipe.recipe_type
        )));
    }
    if recipes::needs_user(server.recipe) && request.user_id.is_none() {
        return Err(ApiError::invalid(format!(
            "userId is required for {}",
            server.recipe.name
        )));
    }
    let tables = GroupTables::of(cx.state, data, &server.group_arn);
    check_metadata(
        &server,
        request.metadata_columns.as_ref(),
        tables.items.as_deref(),
    )?;
    let expression = filter_expression(cx.state, &request.filter, &server.group_arn, now)?;
    let context = expression
        .as_ref()
        .map(|e| FilterContext::new(e, &request.filter.values, tables.filter_data()));
    let query = Query {
        user_id: request.user_id.as_deref(),
        item_id: request.item_id.as_deref(),
        num_results: request.num_results,
        filter: context.as_ref(),
    };
    let scored = match &request.promotion {
        None => model::recommend(&server.model, &query)
            .map_err(|e| ApiError::invalid(e.to_string()))?
            .into_iter()
            .map(|s| (s, None))
            .collect(),
        Some(promotion) => {
            if !recipes::supports_promotions(server.recipe) {
                return Err(ApiError::invalid(format!(
                    "{} does not support promotions",
                    server.recipe.name
                )));
            }
            let expression = filter_expression(cx.state, &promotion.filter, &server.group_arn, now)?;
            let promotion_context = expression
                .as_ref()
                .map(|e| FilterContext::new(e, &promotion.filter.values, tables.filter_data()));
            promote(&server.model, &query, promotion, promotion_context.as_ref())?
        }
    };
    Ok(json!({
        "itemList": predicted(scored, request.metadata_columns.as_ref(), tables.items.as_deref()),
        "recommendationId": recommendation_id(),
    }))
}

pub fn get_personalized_ranking(cx: &mut Cx, data: &mut Data, input: &Input) -> Result<Value, ApiError> {
    let request = RankRequest::parse(input)?;
    let now = cx.now;
    let server = campaign_server(cx.state, data, &request.campaign_arn, now)?;
    if server.recipe.recipe_type != RecipeType::PersonalizedRanking {
        return Err(ApiError::invalid(format!(
            "GetPersonalizedRanking needs a PERSONALIZED_RANKING campaign; {} uses {}",
            request.campaign_arn, server.recipe.recipe_type
        )));
    }
    let tables = GroupTables::of(cx.state, data, &server.group_arn);
    check_metadata(
        &server,
        request.metadata_columns.as_ref(),
        tables.items.as_deref(),
    )?;
    let expression = filter_expression(cx.state, &request.filter, &server.group_arn, now)?;
    let context = expression
        .as_ref()
        .map(|e| FilterContext::new(e, &request.filter.values, tables.filter_data()));
    let scored = model::rank(
        &server.model,
        &request.user_id,
        &request.input_list,
        context.as_ref(),
    )
    .map_err(|e| ApiError::invalid(e.to_string()))?;
    Ok(json!({
        "personalizedRanking": predicted(
            scored.into_iter().map(|s| (s, None)).collect(),
            request.metadata_columns.as_ref(),
            tables.items.as_deref()
        ),
        "recommendationId": recommendation_id(),
    }))
}
