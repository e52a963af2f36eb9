//! Answers from a trained model: recommendations, rankings and user segments, filtered.

use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

use regex::Regex;

use super::super::filter_eval::FilterContext;
use super::super::recipes::RecipeType;
use super::super::table::{Cell, Table};
use super::learn::Learned;
use super::{Model, Query, QueryError, Scored};

/// The candidate list of a recipe family for a history (distinct items, newest last) or a query
/// item, best first: the family's own candidates, then popular items. Scores never rise along the
/// list. `admits` filters; at most `n` are returned; the query item is never among them.
pub(super) fn ranked(
    learned: &Learned,
    recipe_type: RecipeType,
    history: &[u32],
    query_item: Option<u32>,
    n: usize,
    admits: impl Fn(u32) -> bool,
) -> Vec<(u32, f64)> {
    let mut out: Vec<(u32, f64)> = Vec::with_capacity(n.min(learned.counts().len()));
    let mut taken: HashSet<u32> = query_item.into_iter().collect();
    let mut floor = f64::INFINITY;
    let mut offer = |(item, score): (u32, f64), out: &mut Vec<(u32, f64)>| {
        if out.len() < n && taken.insert(item) && admits(item) {
            floor = floor.min(score);
            out.push((item, floor));
        }
    };
    match recipe_type {
        RecipeType::RelatedItems => {
            if let Some(item) = query_item {
                for candidate in learned.neighbors(item) {
                    offer(candidate, &mut out);
                }
            }
        }
        RecipeType::UserPersonalization | RecipeType::PersonalizedRanking | RecipeType::UserSegmentation => {
            for candidate in learned.personal_scores(history) {
                if out.len() >= n {
                    break;
                }
                offer(candidate, &mut out);
            }
        }
        RecipeType::PopularItems | RecipeType::PersonalizedActions => {}
    }
    // After a user's own candidates, popular items keep the user scores' scale.
    let personal = !history.is_empty()
        && matches!(
            recipe_type,
            RecipeType::UserPersonalization | RecipeType::PersonalizedRanking | RecipeType::UserSegmentation
        );
    for (item, score) in learned.popular() {
        if out.len() >= n {
            break;
        }
        let score = if personal {
            learned.prior_score(item)
        } else {
            score
        };
        offer((item, score), &mut out);
    }
    out
}

/// GetRecommendations: items for a user (USER_PERSONALIZATION, POPULAR_ITEMS) or related to an
/// item (RELATED_ITEMS), that the filter admits. Unknown users get popular items; unknown items
/// fall back to popular ones, as SIMS does.
///
/// # Errors
/// [`QueryError`]: a missing userId/itemId the recipe needs, or a recipe that does not answer
/// GetRecommendations (ranking, segmentation, actions).
pub fn recommend(model: &Model, q: &Query) -> Result<Vec<Scored>, QueryError> {
    let recipe_type = model.recipe_type;
    let (history, query_item) = match recipe_type {
        RecipeType::UserPersonalization => {
            let user = q.user_id.ok_or(QueryError::MissingUserId(recipe_type))?;
            (model.user_history(user), None)
        }
        RecipeType::RelatedItems => {
            let item = q.item_id.ok_or(QueryError::MissingItemId(recipe_type))?;
            (&[][..], Some(item))
        }
        RecipeType::PopularItems => (&[][..], None),
        RecipeType::PersonalizedRanking | RecipeType::UserSegmentation | RecipeType::PersonalizedActions => {
            return Err(QueryError::WrongOperation {
                operation: "GetRecommendations",
                recipe_type,
            });
        }
    };
    let filter = q.filter.map(|f| f.for_request(q.user_id, q.item_id));
    let known_item = query_item.and_then(|id| model.item_index.get(id).copied());
    let list = ranked(
        &model.learned,
        recipe_type,
        history,
        known_item,
        q.num_results,
        |item| {
            // The requested item itself is never recommended, even when the model does not know it.
            let id = &model.items[item as usize];
            Some(id.as_str()) != query_item && filter.as_ref().is_none_or(|f| f.admits(id))
        },
    );
    Ok(model.scored(list))
}

/// GetPersonalizedRanking: the input items (duplicates dropped, filtered) ordered by the user's
/// scores (popularity for an unknown user), scores summing to 1; items the model does not know come
/// last, in input order, with score 0.
///
/// # Errors
/// [`QueryError::WrongOperation`] unless the model is PERSONALIZED_RANKING.
pub fn rank(
    model: &Model,
    user_id: &str,
    input: &[String],
    filter: Option<&FilterContext>,
) -> Result<Vec<Scored>, QueryError> {
    if model.recipe_type != RecipeType::PersonalizedRanking {
        return Err(QueryError::WrongOperation {
            operation: "GetPersonalizedRanking",
            recipe_type: model.recipe_type,
        });
    }
    let filter = filter.map(|f| f.for_request(Some(user_id), None));
    let mut seen: HashSet<&str> = HashSet::new();
    let admitted: Vec<&String> = input
        .iter()
        .filter(|id| seen.insert(id.as_str()))
        .filter(|id| filter.as_ref().is_none_or(|f| f.admits(id)))
        .collect();
    let learned = &model.learned;
    let history = model.user_history(user_id);
    let votes: HashMap<u32, f64> = learned.personal_scores(history).into_iter().collect();
    let score = |item: u32| match votes.get(&item) {
        Some(&v) => v,
        None if history.is_empty() => learned.counts()[item as usize] as f64,
        None => learned.prior_score(item),
    };
    let mut known: Vec<(usize, u32, f64)> = Vec::new();
    let mut unknown: Vec<&String> = Vec::new();
    for (position, id) in admitted.into_iter().enumerate() {
        match model.item_index.get(id.as_str()) {
            Some(&item) => known.push((position, item, score(item))),
            None => unknown.push(id),
        }
    }
    let counts = learned.counts();
    known.sort_by(|a, b| {
        b.2.total_cmp(&a.2)
            .then(counts[b.1 as usize].cmp(&counts[a.1 as usize]))
            .then(a.0.cmp(&b.0))
    });
    let total: f64 = known.iter().map(|k| k.2).sum();
    Ok(known
        .into_iter()
        .map(|(_, item, s)| Scored {
            id: model.items[item as usize].clone(),
            score: if total > 0.0 { s / total } else { 0.0 },
        })
        .chain(unknown.into_iter().map(|id| Scored {
            id: id.clone(),
            score: 0.0,
        }))
        .collect())
}

/// Users by affinity to `items` ([`Learned::segment_scores`]), then by activity, then ID; at most
/// `n`, those `admits` accepts.
pub(super) fn rank_users(
    learned: &Learned,
    items: &[u32],
    n: usize,
    admits: impl Fn(u32) -> bool,
) -> Vec<(u32, f64)> {
    let scores = learned.segment_scores(items);
    let mut users: Vec<(u32, f64)> = (0..learned.users() as u32)
        .filter(|&u| admits(u))
        .map(|u| (u, scores[u as usize]))
        .collect();
    let order = |a: &(u32, f64), b: &(u32, f64)| {
        b.1.total_cmp(&a.1)
            .then(learned.history(b.0).len().cmp(&learned.history(a.0).len()))
            .then(a.0.cmp(&b.0))
    };
    if users.len() > n && n > 0 {
        users.select_nth_unstable_by(n - 1, order);
    }
    users.truncate(n);
    users.sort_unstable_by(order);
    users
}

/// A user segment for items: up to `num_results` users whose recent histories vote most for the
/// items (see [`rank_users`]), that a user-segment filter admits. Unknown items are ignored.
pub fn segment(
    model: &Model,
    item_ids: &[String],
    num_results: usize,
    filter: Option<&FilterContext>,
) -> Vec<Scored> {
    let items: Vec<u32> = item_ids
        .iter()
        .filter_map(|id| model.item_index.get(id).copied())
        .collect();
    let filter = filter.map(|f| f.for_request(None, None));
    rank_users(&model.learned, &items, num_results, |user| {
        filter
            .as_ref()
            .is_none_or(|f| f.admits(&model.users[user as usize]))
    })
    .into_iter()
    .map(|(user, score)| Scored {
        id: model.users[user as usize].clone(),
        score,
    })
    .collect()
}

/// A user segment for the items matching an `itemAttributes` expression, such as
/// `ITEMS.GENRES = "Comedy" OR ITEMS.GENRES IN ("Action", "Drama")` (AND binds tighter than OR;
/// multi-value fields match on any value). Needs a model trained with an Items dataset.
///
/// # Errors
/// [`QueryError::NoItemMetadata`] or [`QueryError::BadItemAttributes`].
pub fn segment_by_attributes(
    model: &Model,
    expression: &str,
    num_results: usize,
    filter: Option<&FilterContext>,
) -> Result<Vec<Scored>, QueryError> {
    let table = model.item_attributes.as_ref().ok_or(QueryError::NoItemMetadata)?;
    let condition = AttributeCondition::parse(expression, table)?;
    let id_col = table.column("ITEM_ID").ok_or(QueryError::NoItemMetadata)?;
    let items: Vec<String> = table
        .rows
        .iter()
        .filter(|row| condition.matches(row))
        .filter_map(|row| row.get(id_col).and_then(Cell::as_str).map(str::to_string))
        .collect();
    Ok(segment(model, &items, num_results, filter))
}

/// `ITEMS.FIELD = "v"` or `ITEMS.FIELD IN ("a", "b")`; compiled once (the patterns are fixed).
static TERM: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?i)^\s*ITEMS\.([A-Za-z0-9_]+)\s*(=|IN)\s*(.+?)\s*$"#)
        .unwrap_or_else(|e| unreachable!("{e}"))
});
static QUOTED: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r#""([^"]*)""#).unwrap_or_else(|e| unreachable!("{e}")));

/// A parsed `itemAttributes` expression: an OR of ANDs of (column, accepted values).
struct AttributeCondition {
    any_of: Vec<Vec<(usize, Vec<String>)>>,
}

impl AttributeCondition {
    fn parse(expression: &str, table: &Table) -> Result<Self, QueryError> {
        let bad = |reason: String| QueryError::BadItemAttributes {
            expression: expression.to_string(),
            reason,
        };
        let mut any_of = Vec::new();
        for group in split_keyword(expression, "OR") {
            let mut all = Vec::new();
            for part in split_keyword(&group, "AND") {
                let captures = TERM.captures(&part).ok_or_else(|| {
                    bad(format!(
                        "{:?} is not ITEMS.FIELD = \"value\" or ITEMS.FIELD IN (\"a\", \"b\")",
                        part.trim()
                    ))
                })?;
                let field = &captures[1];
                let column = table
                    .column(field)
                    .ok_or_else(|| bad(format!("the Items dataset has no field {field}")))?;
                let values: Vec<String> = QUOTED
                    .captures_iter(&captures[3])
                    .map(|c| c[1].to_string())
                    .collect();
                if values.is_empty() {
                    return Err(bad(format!("{:?} has no quoted value", part.trim())));
                }
                all.push((column, values));
            }
            any_of.push(all);
        }
        Ok(Self { any_of })
    }

    fn matches(&self, row: &[Cell]) -> bool {
        self.any_of.iter().any(|group| {
            group.iter().all(|(column, accepted)| {
                let text = row.get(*column).map(Cell::to_string).unwrap_or_default();
                text.split('|').any(|v| accepted.iter().any(|a| a == v))
            })
        })
    }
}

/// Splits on a keyword surrounded by whitespace, outside double quotes, case-insensitively.
pub(super) fn split_keyword(text: &str, keyword: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut in_quotes = false;
    for word in text.split(' ') {
        let quotes = word.matches('"').count();
        if !in_quotes && word.eq_ignore_ascii_case(keyword) {
            parts.push(std::mem::take(&mut current));
            continue;
        }
        if !current.is_empty() {
            current.push(' ');
        }
        current.push_str(word);
        if quotes % 2 == 1 {
            in_quotes = !in_quotes;
        }
    }
    parts.push(current);
    parts
}
