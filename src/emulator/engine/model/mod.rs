//! Training and inference: a learned model per recipe family, with metrics measured honestly on a
//! held-out split.
//!
//! What each family learns ([`learn`]) and answers ([`query`]):
//! * POPULAR_ITEMS: `aws-popularity-count` and the "most popular" use cases rank items by interaction
//!   count; `aws-trending-now` and `aws-vod-trending-now` by their rise in interactions over the recent
//!   window (the newest eighth of the data's time span, at most 7 days) against the window before;
//! * RELATED_ITEMS: item-to-item cosine similarity of co-occurrence within user histories;
//!   `aws-similar-items` (and the other metadata recipes) blend in the similarity of the items'
//!   categorical attributes when an Items dataset exists; unknown items get popular ones (as SIMS does);
//! * USER_PERSONALIZATION: item-kNN over the user's history: each of the user's newest 100 distinct
//!   items votes for itself and its 50 nearest items, newer items weighing more (half-life 10 items).
//!   Items the user already interacted with stay candidates (excluding them is what filters are for);
//!   unknown users get popular items;
//! * PERSONALIZED_RANKING: the input list in the order of the same user scores;
//! * USER_SEGMENTATION: the users whose user-personalization scores for the items (or the items
//!   matching an attribute expression) are highest.
//!
//! Training reads the interactions (bulk imports and PutEvents alike) and the Items dataset (bulk and
//! PutItems); training minimums and refusals are Personalize's ([`TrainError`]).
//!
//! # Guarantees
//! Training is deterministic: the same data and options give the same model, metrics and answers
//! (ties break by popularity then ID; the held-out users are chosen by a fixed hash of their ID), so
//! the emulator can retrain after a restart and tests can assert values.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use super::filter_eval::FilterContext;
use super::recipes::{self, RecipeType};
use super::table::Table;

mod events;
mod learn;
mod metrics;
mod query;
#[cfg(test)]
mod tests;

pub use query::{rank, recommend, segment, segment_by_attributes};

use events::{Extracted, check_minimums, extract_events};
use learn::{Family, Learned};

/// The fewest interactions (after event filtering) a solution version trains on.
pub const MIN_INTERACTIONS: usize = 1000;
/// The fewest users with at least two interactions.
pub const MIN_ACTIVE_USERS: usize = 25;
/// The list length the metrics evaluate (`…_at_25`).
pub const METRICS_DEPTH: usize = 25;

/// FULL trains from scratch; UPDATE refreshes a FULL model with new items and interactions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum TrainingMode {
    Full,
    Update,
}

/// The datasets of a dataset group, as the version sees them when training starts.
#[derive(Debug, Clone, Copy)]
pub struct TrainingData<'a> {
    pub interactions: &'a Table,
    pub items: Option<&'a Table>,
    pub users: Option<&'a Table>,
}

/// The solution's configuration that training uses.
#[derive(Debug, Clone)]
pub struct TrainOptions {
    /// Recipe name or ARN (`aws-user-personalization`).
    pub recipe: String,
    pub training_mode: TrainingMode,
    /// Only interactions of this event type count (the solution's `eventType`); a use case's own
    /// event type (`View` for "Most viewed") applies when this is `None`.
    pub event_type: Option<String>,
    /// Only interactions whose EVENT_VALUE is at least this count (`eventValueThreshold`).
    pub event_value_threshold: Option<f64>,
    /// The FULL model an UPDATE starts from.
    pub previous: Option<Model>,
}

/// Why training failed. The `Display` text is the version's `failureReason`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TrainError {
    #[error("Create failed. Unknown recipe {0}.")]
    UnknownRecipe(String),
    #[error("Create failed. The built-in Personalize cannot train recipe {0}.")]
    Unsupported(String),
    #[error(
        "Create failed. Training mode UPDATE is only supported by aws-user-personalization and aws-hrnn-coldstart, not {0}."
    )]
    UpdateNotSupported(String),
    #[error("Create failed. Training mode UPDATE needs an ACTIVE solution version trained with FULL.")]
    UpdateWithoutPrevious,
    #[error("Create failed. The previous model is a {previous} model; {recipe} trains {expected} models.")]
    PreviousMismatch {
        recipe: String,
        previous: RecipeType,
        expected: RecipeType,
    },
    #[error("Create failed. The Interactions dataset has no {0} column.")]
    MissingColumn(&'static str),
    #[error(
        "Create failed. Dataset has fewer than {MIN_INTERACTIONS} interactions{selection} (found {found})."
    )]
    TooFewInteractions {
        found: usize,
        /// Which interactions counted, e.g. ` of event type View`; empty when all did.
        selection: String,
    },
    #[error(
        "Create failed. Dataset has fewer than {MIN_ACTIVE_USERS} users with at least 2 interactions each."
    )]
    TooFewUsers { found: usize },
    #[error(
        "Create failed. Fewer than 1% of the dataset's users have at least 2 interactions ({active} of {total})."
    )]
    TooFewActiveUsers { active: usize, total: usize },
}

/// Why a runtime query cannot be answered (InvalidInputException for the server).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum QueryError {
    #[error("userId is required by a {0} campaign")]
    MissingUserId(RecipeType),
    #[error("itemId is required by a {0} campaign")]
    MissingItemId(RecipeType),
    #[error("{operation} is not available for a {recipe_type} solution version")]
    WrongOperation {
        operation: &'static str,
        recipe_type: RecipeType,
    },
    #[error("the itemAttributes expression {expression:?} is invalid: {reason}")]
    BadItemAttributes { expression: String, reason: String },
    #[error("itemAttributes queries need a model trained with an Items dataset")]
    NoItemMetadata,
}

/// A recommended item (or user, for segments) and its score.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scored {
    pub id: String,
    /// In [0, 1]. Personalize omits scores for SIMS and popularity recipes; the server decides.
    pub score: f64,
}

/// A GetRecommendations request. `'f` is the lifetime of the data the filter reads.
#[derive(Debug, Clone, Copy)]
pub struct Query<'a, 'f> {
    pub user_id: Option<&'a str>,
    pub item_id: Option<&'a str>,
    pub num_results: usize,
    /// The request's filter; the engine sets its user and current item from this query.
    pub filter: Option<&'a FilterContext<'f>>,
}

/// A trained model. Serialises what it learned (IDs once, indexes elsewhere) and rebuilds its
/// lookups when deserialised.
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    recipe: String,
    recipe_type: RecipeType,
    items: Vec<String>,
    users: Vec<String>,
    learned: Learned,
    metrics: BTreeMap<String, f64>,
    /// The Items dataset, kept for item-attribute segments.
    item_attributes: Option<Table>,
    item_index: HashMap<String, u32>,
    user_index: HashMap<String, u32>,
}

#[derive(Serialize)]
struct ModelRef<'a> {
    recipe: &'a str,
    recipe_type: RecipeType,
    items: &'a [String],
    users: &'a [String],
    #[serde(flatten)]
    learned: &'a learn::Parts,
    metrics: &'a BTreeMap<String, f64>,
    item_attributes: &'a Option<Table>,
}

#[derive(Deserialize)]
struct ModelData {
    recipe: String,
    recipe_type: RecipeType,
    items: Vec<String>,
    users: Vec<String>,
    #[serde(flatten)]
    learned: learn::Parts,
    metrics: BTreeMap<String, f64>,
    item_attributes: Option<Table>,
}

impl Serialize for Model {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        ModelRef {
            recipe: &self.recipe,
            recipe_type: self.recipe_type,
            items: &self.items,
            users: &self.users,
            learned: self.learned.parts(),
            metrics: &self.metrics,
            item_attributes: &self.item_attributes,
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Model {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let data = ModelData::deserialize(deserializer)?;
        // Persisted state may be damaged: check every index before trusting it.
        let learned = Learned::from_parts(data.learned, data.users.len(), data.items.len())
            .map_err(serde::de::Error::custom)?;
        Ok(Model::assemble(
            data.recipe,
            data.recipe_type,
            data.items,
            data.users,
            learned,
            data.metrics,
            data.item_attributes,
        ))
    }
}

impl Model {
    fn assemble(
        recipe: String,
        recipe_type: RecipeType,
        items: Vec<String>,
        users: Vec<String>,
        learned: Learned,
        metrics: BTreeMap<String, f64>,
        item_attributes: Option<Table>,
    ) -> Self {
        let index = |ids: &[String]| -> HashMap<String, u32> {
            ids.iter()
                .enumerate()
                .map(|(i, id)| (id.clone(), i as u32))
                .collect()
        };
        Self {
            item_index: index(&items),
            user_index: index(&users),
            recipe,
            recipe_type,
            items,
            users,
            learned,
            metrics,
            item_attributes,
        }
    }

    /// The solution version's metrics (the GetSolutionMetrics map).
    pub fn metrics(&self) -> BTreeMap<String, f64> {
        self.metrics.clone()
    }

    pub fn recipe_type(&self) -> RecipeType {
        self.recipe_type
    }

    /// The recipe name the model was trained with.
    pub fn recipe(&self) -> &str {
        &self.recipe
    }

    /// Distinct items in the training data.
    pub fn item_count(&self) -> usize {
        self.items.len()
    }

    /// Distinct users in the training data.
    pub fn user_count(&self) -> usize {
        self.users.len()
    }

    fn user_history(&self, user_id: &str) -> &[u32] {
        self.user_index
            .get(user_id)
            .map_or(&[], |&u| self.learned.history(u))
    }

    fn scored(&self, ranked: Vec<(u32, f64)>) -> Vec<Scored> {
        ranked
            .into_iter()
            .map(|(item, score)| Scored {
                id: self.items[item as usize].clone(),
                score,
            })
            .collect()
    }
}

/// Trains a model. See the module documentation for what each recipe family learns.
///
/// # Errors
/// [`TrainError`], whose text is the version's `failureReason`: an unknown or untrainable recipe,
/// UPDATE without a compatible FULL model, a missing USER_ID/ITEM_ID column, or fewer interactions
/// and active users than Personalize's minimums (counted after event-type and value filtering).
pub fn train(data: &TrainingData, opts: &TrainOptions) -> Result<Model, TrainError> {
    let recipe = recipes::find(&opts.recipe).ok_or_else(|| TrainError::UnknownRecipe(opts.recipe.clone()))?;
    if !recipes::trainable(recipe) {
        return Err(TrainError::Unsupported(recipe.name.to_string()));
    }
    let previous = match opts.training_mode {
        TrainingMode::Full => None,
        TrainingMode::Update => {
            if !recipe.supports_update {
                return Err(TrainError::UpdateNotSupported(recipe.name.to_string()));
            }
            let previous = opts.previous.as_ref().ok_or(TrainError::UpdateWithoutPrevious)?;
            if previous.recipe_type != recipe.recipe_type {
                return Err(TrainError::PreviousMismatch {
                    recipe: recipe.name.to_string(),
                    previous: previous.recipe_type,
                    expected: recipe.recipe_type,
                });
            }
            Some(previous)
        }
    };
    let event_type = opts.event_type.as_deref().or(recipe.event_type);
    let extracted = extract_events(data.interactions, event_type, opts.event_value_threshold)?;
    check_minimums(&extracted, event_type, opts.event_value_threshold)?;
    let Extracted { items, users, events } = extracted;
    let family = Family::of(recipe);
    let metadata = family
        .uses_item_metadata()
        .then(|| data.items.map(|t| learn::ItemMetadata::new(t, &items)))
        .flatten();
    let metrics = match previous {
        // An UPDATE adds new data to the model without a new evaluation, so it reports the
        // metrics of the version it updates.
        Some(previous) => previous.metrics.clone(),
        None if recipe.recipe_type == RecipeType::UserSegmentation => {
            metrics::segmentation(family, users.len(), items.len(), &events, metadata.as_ref())
        }
        None => metrics::ranking(
            family,
            recipe.recipe_type,
            &users,
            items.len(),
            &events,
            metadata.as_ref(),
        ),
    };
    let learned = Learned::train(family, users.len(), items.len(), &events, metadata.as_ref());
    let item_attributes = (recipe.name == "aws-item-attribute-affinity")
        .then(|| data.items.cloned())
        .flatten();
    Ok(Model::assemble(
        recipe.name.to_string(),
        recipe.recipe_type,
        items,
        users,
        learned,
        metrics,
        item_attributes,
    ))
}
