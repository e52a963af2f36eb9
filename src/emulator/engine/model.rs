//! Training and inference: a popularity model per recipe family, with metrics measured honestly on a
//! held-out split.
//!
//! Every recipe trains the same statistics (interaction counts per item, the distinct items of each
//! user, the users of each item) and answers by its family:
//! * USER_PERSONALIZATION: the most popular items the user has not interacted with;
//! * RELATED_ITEMS: items that users of the given item also interacted with, then popular ones;
//! * PERSONALIZED_RANKING: the input list ordered by popularity, unknown items last;
//! * POPULAR_ITEMS: the most popular items;
//! * USER_SEGMENTATION: users ranked by how many of the given items they interacted with.
//!
//! # Guarantees
//! Training is deterministic: the same data and options give the same model, metrics and answers
//! (ties break by ID; the held-out users are chosen by a fixed hash of their ID), so the emulator
//! can retrain after a restart and tests can assert values.

use std::collections::{BTreeMap, HashMap, HashSet};

use regex::Regex;
use serde::{Deserialize, Serialize};

use super::filter_eval::FilterContext;
use super::recipes::{self, RecipeType};
use super::table::{Cell, Table};

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

/// Interaction statistics over one set of events, with items and users as indexes into the
/// model's sorted ID lists.
#[derive(Debug, Clone, Default, PartialEq)]
struct Stats {
    /// Interactions per item.
    item_counts: Vec<u64>,
    /// Items with interactions, most first; ties by ID.
    popular: Vec<u32>,
    total: u64,
    /// Each user's distinct items in the order of their first interaction.
    user_items: Vec<Vec<u32>>,
    /// Each item's distinct users, ascending.
    item_users: Vec<Vec<u32>>,
}

#[derive(Debug, Clone, Copy)]
struct Event {
    user: u32,
    item: u32,
    time: i64,
}

impl Stats {
    fn build<'e>(users: usize, items: usize, events: impl IntoIterator<Item = &'e Event>) -> Self {
        let mut item_counts = vec![0u64; items];
        let mut user_items: Vec<Vec<u32>> = vec![Vec::new(); users];
        let mut seen: HashSet<(u32, u32)> = HashSet::new();
        for event in events {
            item_counts[event.item as usize] += 1;
            if seen.insert((event.user, event.item)) {
                user_items[event.user as usize].push(event.item);
            }
        }
        Self::from_parts(item_counts, user_items)
    }

    fn from_parts(item_counts: Vec<u64>, user_items: Vec<Vec<u32>>) -> Self {
        let mut popular: Vec<u32> = (0..item_counts.len() as u32)
            .filter(|&i| item_counts[i as usize] > 0)
            .collect();
        popular.sort_by_key(|&i| std::cmp::Reverse(item_counts[i as usize]));
        let mut item_users: Vec<Vec<u32>> = vec![Vec::new(); item_counts.len()];
        for (user, items) in user_items.iter().enumerate() {
            for &item in items {
                item_users[item as usize].push(user as u32);
            }
        }
        Self {
            total: item_counts.iter().sum(),
            item_counts,
            popular,
            user_items,
            item_users,
        }
    }

    fn popularity_score(&self, item: u32) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.item_counts[item as usize] as f64 / self.total as f64
        }
    }

    /// Items sharing users with `item`: (item, users in common), most first, then by popularity and ID.
    fn related(&self, item: u32) -> Vec<(u32, u64)> {
        let mut common: HashMap<u32, u64> = HashMap::new();
        for &user in &self.item_users[item as usize] {
            for &other in &self.user_items[user as usize] {
                if other != item {
                    *common.entry(other).or_default() += 1;
                }
            }
        }
        let mut related: Vec<(u32, u64)> = common.into_iter().collect();
        related.sort_by(|a, b| {
            b.1.cmp(&a.1)
                .then(self.item_counts[b.0 as usize].cmp(&self.item_counts[a.0 as usize]))
                .then(a.0.cmp(&b.0))
        });
        related
    }

    /// The candidate list of a recipe family for a user history (chronological distinct items),
    /// in order, with scores. `admits` filters; at most `n` are returned.
    fn candidates(
        &self,
        recipe_type: RecipeType,
        history: &[u32],
        query_item: Option<u32>,
        n: usize,
        admits: impl Fn(u32) -> bool,
    ) -> Vec<(u32, f64)> {
        let mut out = Vec::with_capacity(n.min(self.item_counts.len()));
        let mut taken: HashSet<u32> = query_item.into_iter().collect();
        let mut offer = |item: u32, score: f64, out: &mut Vec<(u32, f64)>| {
            if out.len() < n && taken.insert(item) && admits(item) {
                out.push((item, score));
            }
        };
        let skip: HashSet<u32> = match recipe_type {
            RecipeType::UserPersonalization | RecipeType::PersonalizedRanking => {
                history.iter().copied().collect()
            }
            _ => HashSet::new(),
        };
        if recipe_type == RecipeType::RelatedItems
            && let Some(item) = query_item
        {
            let users = self.item_users[item as usize].len().max(1) as f64;
            for (other, common) in self.related(item) {
                offer(other, common as f64 / users, &mut out);
            }
        }
        for &item in &self.popular {
            if out.len() >= n {
                break;
            }
            if !skip.contains(&item) {
                offer(item, self.popularity_score(item), &mut out);
            }
        }
        out
    }
}

/// A trained model. Serialises compactly (IDs once, indexes elsewhere) and rebuilds its lookups
/// when deserialised.
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    recipe: String,
    recipe_type: RecipeType,
    items: Vec<String>,
    users: Vec<String>,
    stats: Stats,
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
    item_counts: &'a [u64],
    user_items: &'a [Vec<u32>],
    metrics: &'a BTreeMap<String, f64>,
    item_attributes: &'a Option<Table>,
}

#[derive(Deserialize)]
struct ModelData {
    recipe: String,
    recipe_type: RecipeType,
    items: Vec<String>,
    users: Vec<String>,
    item_counts: Vec<u64>,
    user_items: Vec<Vec<u32>>,
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
            item_counts: &self.stats.item_counts,
            user_items: &self.stats.user_items,
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
        if data.item_counts.len() != data.items.len() || data.user_items.len() != data.users.len() {
            return Err(serde::de::Error::custom("model lists have inconsistent lengths"));
        }
        if data
            .user_items
            .iter()
            .flatten()
            .any(|&i| i as usize >= data.items.len())
        {
            return Err(serde::de::Error::custom(
                "model refers to an item it does not list",
            ));
        }
        Ok(Model::assemble(
            data.recipe,
            data.recipe_type,
            data.items,
            data.users,
            Stats::from_parts(data.item_counts, data.user_items),
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
        stats: Stats,
        metrics: BTreeMap<String, f64>,
        item_attributes: Option<Table>,
    ) -> Self {
        let item_index = items
            .iter()
            .enumerate()
            .map(|(i, id)| (id.clone(), i as u32))
            .collect();
        let user_index = users
            .iter()
            .enumerate()
            .map(|(i, id)| (id.clone(), i as u32))
            .collect();
        Self {
            recipe,
            recipe_type,
            items,
            users,
            stats,
            metrics,
            item_attributes,
            item_index,
            user_index,
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
            .map_or(&[], |&u| self.stats.user_items[u as usize].as_slice())
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
    let metrics = match previous {
        // An UPDATE adds new data to the model without a new evaluation, so it reports the
        // metrics of the version it updates.
        Some(previous) => previous.metrics.clone(),
        None if recipe.recipe_type == RecipeType::UserSegmentation => {
            segmentation_metrics(users.len(), items.len(), &events)
        }
        None => ranking_metrics(recipe.recipe_type, &users, items.len(), &events),
    };
    let stats = Stats::build(users.len(), items.len(), &events);
    let item_attributes = (recipe.name == "aws-item-attribute-affinity")
        .then(|| data.items.cloned())
        .flatten();
    Ok(Model::assemble(
        recipe.name.to_string(),
        recipe.recipe_type,
        items,
        users,
        stats,
        metrics,
        item_attributes,
    ))
}

struct Extracted {
    /// Sorted distinct item IDs.
    items: Vec<String>,
    /// Sorted distinct user IDs.
    users: Vec<String>,
    /// In chronological order (row order breaks ties).
    events: Vec<Event>,
}

fn extract_events(
    table: &Table,
    event_type: Option<&str>,
    threshold: Option<f64>,
) -> Result<Extracted, TrainError> {
    let user_col = table
        .column("USER_ID")
        .ok_or(TrainError::MissingColumn("USER_ID"))?;
    let item_col = table
        .column("ITEM_ID")
        .ok_or(TrainError::MissingColumn("ITEM_ID"))?;
    let time_col = table.column("TIMESTAMP");
    let type_col = table.column("EVENT_TYPE");
    let value_col = table.column("EVENT_VALUE");
    let mut raw: Vec<(&str, &str, i64)> = Vec::new();
    for row in &table.rows {
        let (Some(Cell::Str(user)), Some(Cell::Str(item))) = (row.get(user_col), row.get(item_col)) else {
            continue;
        };
        if let Some(wanted) = event_type {
            let actual = type_col.and_then(|c| row.get(c)).and_then(Cell::as_str);
            if !actual.is_some_and(|a| a.eq_ignore_ascii_case(wanted)) {
                continue;
            }
        }
        if let Some(threshold) = threshold {
            let value = value_col.and_then(|c| row.get(c)).and_then(Cell::as_f64);
            if !value.is_some_and(|v| v >= threshold) {
                continue;
            }
        }
        let time = time_col
            .and_then(|c| row.get(c))
            .and_then(Cell::as_f64)
            .map_or(0, |t| t as i64);
        raw.push((user, item, time));
    }
    let users = sorted_distinct(raw.iter().map(|r| r.0));
    let items = sorted_distinct(raw.iter().map(|r| r.1));
    let user_index: HashMap<&str, u32> = users
        .iter()
        .enumerate()
        .map(|(i, u)| (u.as_str(), i as u32))
        .collect();
    let item_index: HashMap<&str, u32> = items
        .iter()
        .enumerate()
        .map(|(i, u)| (u.as_str(), i as u32))
        .collect();
    let mut events: Vec<Event> = raw
        .iter()
        .map(|&(user, item, time)| Event {
            user: user_index[user],
            item: item_index[item],
            time,
        })
        .collect();
    // Stable: rows with the same timestamp keep their order.
    events.sort_by_key(|e| e.time);
    Ok(Extracted { items, users, events })
}

fn sorted_distinct<'a>(ids: impl Iterator<Item = &'a str>) -> Vec<String> {
    let set: HashSet<&str> = ids.collect();
    let mut out: Vec<String> = set.into_iter().map(str::to_string).collect();
    out.sort();
    out
}

fn check_minimums(
    data: &Extracted,
    event_type: Option<&str>,
    threshold: Option<f64>,
) -> Result<(), TrainError> {
    if data.events.len() < MIN_INTERACTIONS {
        let mut selection = String::new();
        if let Some(t) = event_type {
            selection.push_str(&format!(" of event type {t}"));
        }
        if let Some(v) = threshold {
            selection.push_str(&format!(" with EVENT_VALUE >= {v}"));
        }
        return Err(TrainError::TooFewInteractions {
            found: data.events.len(),
            selection,
        });
    }
    let mut per_user = vec![0usize; data.users.len()];
    for e in &data.events {
        per_user[e.user as usize] += 1;
    }
    let active = per_user.iter().filter(|&&n| n >= 2).count();
    if active < MIN_ACTIVE_USERS {
        return Err(TrainError::TooFewUsers { found: active });
    }
    if active * 100 < data.users.len() {
        return Err(TrainError::TooFewActiveUsers {
            active,
            total: data.users.len(),
        });
    }
    Ok(())
}

/// FNV-1a: a fixed hash, so the held-out users never change between runs or builds.
fn stable_hash(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The held-out users: those whose hash falls in one bucket of ten, at least one, never all.
fn held_out_users(users: &[String]) -> HashSet<u32> {
    let mut held: HashSet<u32> = (0..users.len() as u32)
        .filter(|&u| stable_hash(&users[u as usize]).is_multiple_of(10))
        .collect();
    let by_hash = || (0..users.len() as u32).map(|u| (stable_hash(&users[u as usize]), u));
    if held.is_empty()
        && let Some((_, u)) = by_hash().min()
    {
        held.insert(u);
    }
    if held.len() == users.len()
        && let Some((_, u)) = by_hash().max()
    {
        held.remove(&u);
    }
    held
}

const RANKING_DEPTHS: [usize; 3] = [5, 10, 25];

/// The 8 standard metrics: 90 % of users train; of each held-out user, the oldest 90 % of events
/// are the input and the newest 10 % the ground truth.
fn ranking_metrics(
    recipe_type: RecipeType,
    users: &[String],
    items: usize,
    events: &[Event],
) -> BTreeMap<String, f64> {
    let held = held_out_users(users);
    let train = Stats::build(
        users.len(),
        items,
        events.iter().filter(|e| !held.contains(&e.user)),
    );
    let mut by_user: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    for e in events.iter().filter(|e| held.contains(&e.user)) {
        by_user.entry(e.user).or_default().push(e.item);
    }
    let mut sums = [0.0f64; 7]; // precision@5,10,25, ndcg@5,10,25, reciprocal rank
    let mut recommended: HashSet<u32> = HashSet::new();
    let lists = |history: &[u32]| {
        let query = history.last().copied();
        train.candidates(recipe_type, history, query, METRICS_DEPTH, |_| true)
    };
    for sequence in by_user.values() {
        let truth_len = sequence.len().div_ceil(10).max(1);
        let (input, truth) = sequence.split_at(sequence.len() - truth_len);
        let truth: HashSet<u32> = truth.iter().copied().collect();
        let mut history: Vec<u32> = Vec::new();
        for &item in input {
            if !history.contains(&item) {
                history.push(item);
            }
        }
        let ranked: Vec<u32> = lists(&history).into_iter().map(|(item, _)| item).collect();
        recommended.extend(&ranked);
        let relevant: Vec<bool> = ranked.iter().map(|i| truth.contains(i)).collect();
        for (k, depth) in RANKING_DEPTHS.iter().enumerate() {
            let hits = relevant.iter().take(*depth).filter(|&&r| r).count();
            sums[k] += hits as f64 / *depth as f64;
            sums[3 + k] += ndcg(&relevant, truth.len(), *depth);
        }
        if let Some(first) = relevant.iter().position(|&r| r) {
            sums[6] += 1.0 / (first + 1) as f64;
        }
    }
    for (user, history) in train.user_items.iter().enumerate() {
        if !held.contains(&(user as u32)) {
            recommended.extend(lists(history).into_iter().map(|(item, _)| item));
        }
    }
    let tested = by_user.len().max(1) as f64;
    let mut metrics = BTreeMap::new();
    metrics.insert(
        "coverage".to_string(),
        recommended.len() as f64 / items.max(1) as f64,
    );
    metrics.insert("mean_reciprocal_rank_at_25".to_string(), sums[6] / tested);
    for (k, depth) in RANKING_DEPTHS.iter().enumerate() {
        metrics.insert(format!("precision_at_{depth}"), sums[k] / tested);
        metrics.insert(
            format!("normalized_discounted_cumulative_gain_at_{depth}"),
            sums[3 + k] / tested,
        );
    }
    metrics
}

/// NDCG@depth with the weight 1/log2(1 + position).
fn ndcg(relevant: &[bool], truth: usize, depth: usize) -> f64 {
    let gain = |position: usize| 1.0 / ((position + 1) as f64).log2();
    let dcg: f64 = relevant
        .iter()
        .take(depth)
        .enumerate()
        .filter(|(_, r)| **r)
        .map(|(i, _)| gain(i + 1))
        .sum();
    let ideal: f64 = (1..=truth.min(depth)).map(gain).sum();
    if ideal == 0.0 { 0.0 } else { dcg / ideal }
}

/// USER_SEGMENTATION: the newest 20 % of each user's events are held out. For each item with
/// held-out users, the top 1 % of users by affinity are predicted; `hit` is the average number of
/// them that did interact, `recall` the average share of the interacting users found.
fn segmentation_metrics(users: usize, items: usize, events: &[Event]) -> BTreeMap<String, f64> {
    let mut per_user: Vec<Vec<&Event>> = vec![Vec::new(); users];
    for e in events {
        per_user[e.user as usize].push(e);
    }
    let mut train_events: Vec<Event> = Vec::new();
    let mut actual: BTreeMap<u32, HashSet<u32>> = BTreeMap::new();
    for sequence in &per_user {
        let test = sequence.len() / 5;
        let (train, held) = sequence.split_at(sequence.len() - test);
        train_events.extend(train.iter().map(|e| **e));
        for e in held {
            actual.entry(e.item).or_default().insert(e.user);
        }
    }
    let stats = Stats::build(users, items, &train_events);
    let k = users.div_ceil(100).max(1);
    let (mut hit, mut recall) = (0.0, 0.0);
    for (item, interacted) in &actual {
        let predicted = rank_users(&stats, &[*item], k, |_| true);
        let hits = predicted.iter().filter(|(u, _)| interacted.contains(u)).count();
        hit += hits as f64;
        recall += hits as f64 / interacted.len() as f64;
    }
    let evaluated = actual.len().max(1) as f64;
    BTreeMap::from([
        ("hit".to_string(), hit / evaluated),
        ("recall".to_string(), recall / evaluated),
    ])
}

/// Users by affinity to `items`: how many of them they interacted with, then overall activity,
/// then ID. Users with no affinity follow, by activity, so a segment is always full.
fn rank_users(stats: &Stats, items: &[u32], n: usize, admits: impl Fn(u32) -> bool) -> Vec<(u32, f64)> {
    let mut affinity: HashMap<u32, u64> = HashMap::new();
    for &item in items {
        for &user in &stats.item_users[item as usize] {
            *affinity.entry(user).or_default() += 1;
        }
    }
    let total: u64 = affinity.values().sum();
    let mut ranked: Vec<u32> = (0..stats.user_items.len() as u32)
        .filter(|&u| admits(u))
        .collect();
    ranked.sort_by(|&a, &b| {
        let (fa, fb) = (
            affinity.get(&a).copied().unwrap_or(0),
            affinity.get(&b).copied().unwrap_or(0),
        );
        fb.cmp(&fa)
            .then(
                stats.user_items[b as usize]
                    .len()
                    .cmp(&stats.user_items[a as usize].len()),
            )
            .then(a.cmp(&b))
    });
    ranked
        .into_iter()
        .take(n)
        .map(|u| {
            let score = if total == 0 {
                0.0
            } else {
                affinity.get(&u).copied().unwrap_or(0) as f64 / total as f64
            };
            (u, score)
        })
        .collect()
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
    let ranked = model
        .stats
        .candidates(recipe_type, history, known_item, q.num_results, |item| {
            // The requested item itself is never recommended, even when the model does not know it.
            let id = &model.items[item as usize];
            Some(id.as_str()) != query_item && filter.as_ref().is_none_or(|f| f.admits(id))
        });
    Ok(model.scored(ranked))
}

/// GetPersonalizedRanking: the input items (duplicates dropped, filtered) ordered by popularity;
/// items the model does not know come last, in input order, with score 0.
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
    let count = |id: &str| {
        model
            .item_index
            .get(id)
            .map(|&i| model.stats.item_counts[i as usize])
    };
    let (mut known, unknown): (Vec<&String>, Vec<&String>) =
        admitted.into_iter().partition(|id| count(id).is_some());
    known.sort_by_key(|id| std::cmp::Reverse(count(id)));
    let total: u64 = known.iter().filter_map(|id| count(id)).sum();
    Ok(known
        .into_iter()
        .map(|id| Scored {
            id: id.clone(),
            score: count(id).map_or(0.0, |c| if total == 0 { 0.0 } else { c as f64 / total as f64 }),
        })
        .chain(unknown.into_iter().map(|id| Scored {
            id: id.clone(),
            score: 0.0,
        }))
        .collect())
}

/// A user segment for items: up to `num_results` users, those who interacted with more of the
/// items first (see [`rank_users`]), that a user-segment filter admits. Unknown items are ignored.
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
    rank_users(&model.stats, &items, num_results, |user| {
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
        // A fixed, valid pattern: compiling it cannot fail.
        let term = Regex::new(r#"(?i)^\s*ITEMS\.([A-Za-z0-9_]+)\s*(=|IN)\s*(.+?)\s*$"#)
            .map_err(|e| bad(e.to_string()))?;
        let value = Regex::new(r#""([^"]*)""#).map_err(|e| bad(e.to_string()))?;
        let mut any_of = Vec::new();
        for group in split_keyword(expression, "OR") {
            let mut all = Vec::new();
            for part in split_keyword(&group, "AND") {
                let captures = term.captures(&part).ok_or_else(|| {
                    bad(format!(
                        "{:?} is not ITEMS.FIELD = \"value\" or ITEMS.FIELD IN (\"a\", \"b\")",
                        part.trim()
                    ))
                })?;
                let field = &captures[1];
                let column = table
                    .column(field)
                    .ok_or_else(|| bad(format!("the Items dataset has no field {field}")))?;
                let values: Vec<String> = value
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
fn split_keyword(text: &str, keyword: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut in_quotes = false;
    let words = text.split(' ');
    for word in words {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emulator::engine::filter_eval::FilterData;
    use crate::emulator::engine::testdata::{fixture_interactions, interactions, synthetic};
    use crate::spec::filter;

    fn options(recipe: &str) -> TrainOptions {
        TrainOptions {
            recipe: recipe.to_string(),
            training_mode: TrainingMode::Full,
            event_type: None,
            event_value_threshold: None,
            previous: None,
        }
    }

    fn train_on(table: &Table, opts: &TrainOptions) -> Result<Model, TrainError> {
        train(
            &TrainingData {
                interactions: table,
                items: None,
                users: None,
            },
            opts,
        )
    }

    const STANDARD_METRICS: [&str; 8] = [
        "coverage",
        "mean_reciprocal_rank_at_25",
        "normalized_discounted_cumulative_gain_at_10",
        "normalized_discounted_cumulative_gain_at_25",
        "normalized_discounted_cumulative_gain_at_5",
        "precision_at_10",
        "precision_at_25",
        "precision_at_5",
    ];

    #[tokio::test]
    async fn the_reference_fixture_trains_with_eight_finite_metrics() {
        let table = fixture_interactions().await;
        for recipe in [
            "aws-user-personalization",
            "aws-sims",
            "aws-personalized-ranking",
            "aws-popularity-count",
        ] {
            let model = train_on(&table, &options(recipe)).expect(recipe);
            let metrics = model.metrics();
            assert_eq!(
                metrics.keys().map(String::as_str).collect::<Vec<_>>(),
                STANDARD_METRICS,
                "{recipe}"
            );
            for (key, value) in &metrics {
                assert!(
                    value.is_finite() && (0.0..=1.0).contains(value),
                    "{recipe} {key} = {value}"
                );
            }
            assert!(metrics["coverage"] > 0.0, "{recipe}: {metrics:?}");
            assert_eq!(model.user_count(), 25);
        }
        // Pinned: the split and the model are deterministic, so these never drift between runs.
        let model = train_on(&table, &options("aws-user-personalization")).expect("train");
        let metrics = model.metrics();
        assert_eq!(metrics["coverage"], 0.53);
        assert_eq!(metrics["precision_at_25"], 0.04);
        assert_eq!(metrics["mean_reciprocal_rank_at_25"], 0.0625);
    }

    #[tokio::test]
    async fn training_is_deterministic_and_survives_serialisation() {
        let table = fixture_interactions().await;
        let first = train_on(&table, &options("aws-user-personalization")).expect("train");
        let second = train_on(&table, &options("aws-user-personalization")).expect("train again");
        assert_eq!(first, second);
        let json = serde_json::to_string(&first).expect("serialise");
        let back: Model = serde_json::from_str(&json).expect("deserialise");
        assert_eq!(back, first);
        let q = Query {
            user_id: Some("3"),
            item_id: None,
            num_results: 10,
            filter: None,
        };
        assert_eq!(recommend(&back, &q), recommend(&first, &q));
    }

    #[test]
    fn damaged_models_are_rejected_when_loaded() {
        let table = synthetic(30, 40);
        let model = train_on(&table, &options("aws-sims")).expect("train");
        let mut value = serde_json::to_value(&model).expect("serialise");
        value["user_items"][0][0] = serde_json::json!(9999);
        let err = serde_json::from_value::<Model>(value).expect_err("index out of range");
        assert!(err.to_string().contains("does not list"), "{err}");
        let mut value = serde_json::to_value(&model).expect("serialise");
        value["item_counts"] = serde_json::json!([1]);
        assert!(serde_json::from_value::<Model>(value).is_err());
    }

    #[tokio::test]
    async fn user_personalization_skips_what_the_user_already_did() {
        let table = fixture_interactions().await;
        let model = train_on(&table, &options("aws-user-personalization")).expect("train");
        let (user_col, item_col) = (
            table.column("USER_ID").expect("col"),
            table.column("ITEM_ID").expect("col"),
        );
        for user in ["0", "15", "24"] {
            let seen: HashSet<String> = table
                .rows
                .iter()
                .filter(|r| r[user_col].to_string() == user)
                .map(|r| r[item_col].to_string())
                .collect();
            assert!(!seen.is_empty());
            let recs = recommend(
                &model,
                &Query {
                    user_id: Some(user),
                    item_id: None,
                    num_results: 25,
                    filter: None,
                },
            )
            .expect("recommend");
            assert_eq!(recs.len(), 25, "the fixture has more than 25 unseen items");
            assert!(
                recs.iter().all(|r| !seen.contains(&r.id)),
                "user {user}: {recs:?}"
            );
            assert!(recs.windows(2).all(|w| w[0].score >= w[1].score), "{recs:?}");
        }
        // An unknown user gets the most popular items, the first one being the most interacted.
        let cold = recommend(
            &model,
            &Query {
                user_id: Some("nobody"),
                item_id: None,
                num_results: 3,
                filter: None,
            },
        )
        .expect("cold start");
        let mut counts: HashMap<String, u64> = HashMap::new();
        for r in &table.rows {
            *counts.entry(r[item_col].to_string()).or_default() += 1;
        }
        let max = counts.values().max().copied().expect("items");
        assert_eq!(counts[&cold[0].id], max);
        assert_eq!(cold.len(), 3);
    }

    #[test]
    fn related_items_follow_co_occurrence_then_popularity() {
        // Every user who has "a" also has "b"; "c" is the most popular item overall but never
        // shares a user with "a".
        let mut rows = Vec::new();
        for u in 0..30 {
            let user = format!("u{u}");
            if u < 5 {
                rows.push((user.clone(), "a".to_string(), 100, "click"));
                rows.push((user.clone(), "b".to_string(), 101, "click"));
                for j in 0..38 {
                    rows.push((user.clone(), format!("e{u}"), j, "click"));
                }
            } else {
                for j in 0..40 {
                    rows.push((user.clone(), "c".to_string(), j, "click"));
                }
            }
        }
        let model = train_on(&interactions(rows), &options("aws-sims")).expect("train");
        let related = |item: &str| {
            recommend(
                &model,
                &Query {
                    user_id: None,
                    item_id: Some(item),
                    num_results: 7,
                    filter: None,
                },
            )
            .expect("related")
        };
        let for_a: Vec<String> = related("a").into_iter().map(|s| s.id).collect();
        assert_eq!(for_a, ["b", "e0", "e1", "e2", "e3", "e4", "c"]);
        assert_eq!(related("a")[0].score, 1.0);
        assert_eq!(related("a")[1].score, 0.2);
        let unknown: Vec<String> = related("zzz").into_iter().map(|s| s.id).collect();
        assert_eq!(unknown[0], "c");
        assert!(!related("c").iter().any(|s| s.id == "c"));
        let err = recommend(
            &model,
            &Query {
                user_id: Some("u1"),
                item_id: None,
                num_results: 5,
                filter: None,
            },
        )
        .expect_err("no item");
        assert_eq!(err.to_string(), "itemId is required by a RELATED_ITEMS campaign");
    }

    #[test]
    fn filters_admit_and_exclude_recommendations() {
        let table = synthetic(30, 40);
        let model = train_on(&table, &options("aws-popularity-count")).expect("train");
        let expr =
            filter::parse(r#"EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("CLICK")"#).expect("filter");
        let values = HashMap::new();
        let context = FilterContext::new(
            &expr,
            &values,
            FilterData {
                interactions: Some(&table),
                ..FilterData::default()
            },
        );
        let mut query = Query {
            user_id: Some("u1"),
            item_id: None,
            num_results: 50,
            filter: None,
        };
        let all = recommend(&model, &query).expect("unfiltered");
        query.filter = Some(&context);
        let filtered = recommend(&model, &query).expect("filtered");
        let clicked: HashSet<String> = table
            .rows
            .iter()
            .filter(|r| r[0].to_string() == "u1")
            .map(|r| r[1].to_string())
            .collect();
        assert!(all.iter().any(|s| clicked.contains(&s.id)));
        assert!(!filtered.is_empty());
        assert!(filtered.iter().all(|s| !clicked.contains(&s.id)));
        assert_eq!(filtered.len(), all.len() - clicked.len());
    }

    #[test]
    fn ranking_orders_by_popularity_with_unknown_items_last() {
        let table = interactions((0..30).flat_map(|u| {
            (0..40).map(move |j| {
                let item = ["p", "q", "q", "r", "r", "r"][j % 6];
                (format!("u{u}"), item.to_string(), j as i64, "click")
            })
        }));
        let model = train_on(&table, &options("aws-personalized-ranking")).expect("train");
        let input: Vec<String> = ["new", "p", "r", "q", "p", "other"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let ranked = rank(&model, "u1", &input, None).expect("rank");
        let ids: Vec<&str> = ranked.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["r", "q", "p", "new", "other"]);
        assert!((ranked.iter().map(|s| s.score).sum::<f64>() - 1.0).abs() < 1e-9);
        assert_eq!(ranked[3].score, 0.0);
        let expr = filter::parse(r#"EXCLUDE ItemID WHERE Items.GENRE IN ("x")"#).expect("filter");
        let values = HashMap::new();
        let items = Table::new(
            vec!["ITEM_ID".into(), "GENRE".into()],
            vec![vec![Cell::Str("q".into()), Cell::Str("x".into())]],
        );
        let context = FilterContext::new(
            &expr,
            &values,
            FilterData {
                items: Some(&items),
                ..FilterData::default()
            },
        );
        let ids: Vec<String> = rank(&model, "u1", &input, Some(&context))
            .expect("rank")
            .into_iter()
            .map(|s| s.id)
            .collect();
        assert_eq!(ids, ["r", "p", "new", "other"]);
        let err = recommend(
            &model,
            &Query {
                user_id: Some("u1"),
                item_id: None,
                num_results: 5,
                filter: None,
            },
        )
        .expect_err("ranking");
        assert_eq!(
            err.to_string(),
            "GetRecommendations is not available for a PERSONALIZED_RANKING solution version"
        );
        let up = train_on(&table, &options("aws-user-personalization")).expect("train");
        assert!(matches!(
            rank(&up, "u1", &input, None),
            Err(QueryError::WrongOperation { .. })
        ));
        let err = recommend(
            &up,
            &Query {
                user_id: None,
                item_id: Some("p"),
                num_results: 5,
                filter: None,
            },
        )
        .expect_err("user needed");
        assert_eq!(err, QueryError::MissingUserId(RecipeType::UserPersonalization));
    }

    #[test]
    fn minimums_fail_with_personalizes_reasons() {
        let err = train_on(&synthetic(30, 33), &options("aws-sims")).expect_err("990 interactions");
        assert_eq!(
            err.to_string(),
            "Create failed. Dataset has fewer than 1000 interactions (found 990)."
        );
        let mut opts = options("aws-sims");
        opts.event_type = Some("purchase".into());
        let err = train_on(&synthetic(30, 40), &opts).expect_err("no purchases");
        assert_eq!(
            err.to_string(),
            "Create failed. Dataset has fewer than 1000 interactions of event type purchase (found 0)."
        );
        opts.event_type = Some("CLICK".into());
        assert!(
            train_on(&synthetic(30, 40), &opts).is_ok(),
            "event types match case-insensitively"
        );
        let err = train_on(&synthetic(24, 50), &options("aws-sims")).expect_err("24 users");
        assert_eq!(
            err.to_string(),
            "Create failed. Dataset has fewer than 25 users with at least 2 interactions each."
        );
        let mut rows = synthetic(25, 40);
        rows.upsert(synthetic(0, 0), None);
        for u in 0..3000 {
            rows.rows.push(vec![
                Cell::Str(format!("single{u}")),
                Cell::Str("i1".into()),
                Cell::Int(5),
                Cell::Str("click".into()),
            ]);
        }
        let err = train_on(&rows, &options("aws-sims")).expect_err("1% rule");
        assert_eq!(
            err.to_string(),
            "Create failed. Fewer than 1% of the dataset's users have at least 2 interactions (25 of 3025)."
        );
        let no_users = Table::new(vec!["ITEM_ID".into()], vec![]);
        assert_eq!(
            train_on(&no_users, &options("aws-sims")),
            Err(TrainError::MissingColumn("USER_ID"))
        );
    }

    #[test]
    fn the_event_value_threshold_drops_weaker_interactions() {
        let mut table = synthetic(30, 40);
        table.columns.push("EVENT_VALUE".into());
        for (i, row) in table.rows.iter_mut().enumerate() {
            row.push(Cell::Float(if i % 2 == 0 { 1.0 } else { 5.0 }));
        }
        let mut opts = options("aws-sims");
        opts.event_value_threshold = Some(5.0);
        let err = train_on(&table, &opts).expect_err("half the interactions");
        assert_eq!(
            err.to_string(),
            "Create failed. Dataset has fewer than 1000 interactions with EVENT_VALUE >= 5 (found 600)."
        );
        opts.event_value_threshold = Some(1.0);
        assert!(train_on(&table, &opts).is_ok());
    }

    #[test]
    fn recipes_and_training_modes() {
        let table = synthetic(30, 40);
        assert_eq!(
            train_on(&table, &options("aws-magic")),
            Err(TrainError::UnknownRecipe("aws-magic".into()))
        );
        assert!(matches!(
            train_on(&table, &options("aws-next-best-action")),
            Err(TrainError::Unsupported(_))
        ));
        let full = train_on(
            &table,
            &options("arn:aws:personalize:::recipe/aws-user-personalization"),
        )
        .expect("arn");
        assert_eq!(full.recipe(), "aws-user-personalization");
        let mut update = options("aws-user-personalization");
        update.training_mode = TrainingMode::Update;
        assert_eq!(train_on(&table, &update), Err(TrainError::UpdateWithoutPrevious));
        update.previous = Some(full.clone());
        // The update sees new data but keeps the metrics of the version it updates.
        let mut more = table.clone();
        more.upsert(synthetic(31, 40), None);
        let updated = train_on(&more, &update).expect("update");
        assert_eq!(updated.metrics(), full.metrics());
        assert_eq!(updated.user_count(), 31);
        let mut sims_update = options("aws-sims");
        sims_update.training_mode = TrainingMode::Update;
        assert!(matches!(
            train_on(&table, &sims_update),
            Err(TrainError::UpdateNotSupported(_))
        ));
        let mut mismatch = options("aws-hrnn-coldstart");
        mismatch.training_mode = TrainingMode::Update;
        mismatch.previous = Some(train_on(&table, &options("aws-sims")).expect("sims"));
        let err = train_on(&table, &mismatch).expect_err("mismatch");
        assert!(
            err.to_string()
                .contains("previous model is a RELATED_ITEMS model"),
            "{err}"
        );
    }

    #[test]
    fn use_cases_train_on_their_event_type() {
        let mut rows: Vec<(String, String, i64, &'static str)> = Vec::new();
        for u in 0..40 {
            for j in 0..40 {
                let event = if j % 4 == 0 { "View" } else { "Purchase" };
                rows.push((format!("u{u}"), format!("i{}", (u + j) % 20), j as i64, event));
            }
        }
        let table = interactions(rows);
        let err = train_on(&table, &options("aws-ecomm-popular-items-by-views")).expect_err("300 views");
        assert!(
            err.to_string().contains("of event type View (found 400)"),
            "{err}"
        );
        assert!(train_on(&table, &options("aws-ecomm-popular-items-by-purchases")).is_ok());
    }

    #[tokio::test]
    async fn segments_rank_users_by_affinity() {
        let mut rows = Vec::new();
        for u in 0..30 {
            for j in 0..40 {
                rows.push((format!("u{u:02}"), format!("i{}", j % 10), j as i64, "click"));
            }
        }
        // Only u05 and u07 touched "rare"; u07 twice as many other items.
        rows.push(("u05".to_string(), "rare".to_string(), 100, "click"));
        rows.push(("u07".to_string(), "rare".to_string(), 100, "click"));
        rows.push(("u07".to_string(), "extra".to_string(), 101, "click"));
        let table = interactions(rows);
        let items = Table::new(
            vec!["ITEM_ID".into(), "GENRES".into()],
            vec![
                vec![Cell::Str("rare".into()), Cell::Str("Comedy|Drama".into())],
                vec![Cell::Str("i1".into()), Cell::Str("Action".into())],
            ],
        );
        let model = train(
            &TrainingData {
                interactions: &table,
                items: Some(&items),
                users: None,
            },
            &options("aws-item-attribute-affinity"),
        )
        .expect("train");
        assert_eq!(model.metrics().keys().collect::<Vec<_>>(), ["hit", "recall"]);
        assert!(model.metrics().values().all(|v| v.is_finite()));
        let ids = |scored: Vec<Scored>| scored.into_iter().map(|s| s.id).collect::<Vec<_>>();
        let segment_rare = segment(&model, &["rare".to_string(), "unknown".to_string()], 3, None);
        assert_eq!(segment_rare[0].score, 0.5);
        assert_eq!(ids(segment_rare), ["u07", "u05", "u00"]);
        let by_attribute = segment_by_attributes(
            &model,
            r#"ITEMS.GENRES = "Drama" OR ITEMS.GENRES IN ("Horror")"#,
            2,
            None,
        )
        .expect("attributes");
        assert_eq!(ids(by_attribute), ["u07", "u05"]);
        let users = Table::new(
            vec!["USER_ID".into(), "TIER".into()],
            vec![vec![Cell::Str("u05".into()), Cell::Str("gold".into())]],
        );
        let expr = filter::parse(r#"INCLUDE UserID WHERE Users.TIER IN ("gold")"#).expect("filter");
        let values = HashMap::new();
        let context = FilterContext::new(
            &expr,
            &values,
            FilterData {
                users: Some(&users),
                ..FilterData::default()
            },
        );
        assert_eq!(
            ids(segment(&model, &["rare".to_string()], 3, Some(&context))),
            ["u05"]
        );
        for (expression, expected) in [
            ("GENRES = \"Drama\"", "is not ITEMS.FIELD"),
            ("ITEMS.COLOUR = \"red\"", "has no field COLOUR"),
            ("ITEMS.GENRES = Drama", "has no quoted value"),
        ] {
            let err = segment_by_attributes(&model, expression, 2, None).expect_err(expression);
            assert!(err.to_string().contains(expected), "{expression}: {err}");
        }
        let plain = train_on(&table, &options("aws-item-affinity")).expect("train");
        assert_eq!(
            segment_by_attributes(&plain, "ITEMS.GENRES = \"Drama\"", 2, None),
            Err(QueryError::NoItemMetadata)
        );
        let err = recommend(
            &plain,
            &Query {
                user_id: Some("u01"),
                item_id: None,
                num_results: 1,
                filter: None,
            },
        )
        .expect_err("segmentation");
        assert!(matches!(err, QueryError::WrongOperation { .. }));
    }

    #[test]
    fn ndcg_matches_the_definition() {
        assert_eq!(ndcg(&[true, false], 1, 5), 1.0);
        let expected = (1.0 / 3f64.log2()) / 1.0;
        assert!((ndcg(&[false, true], 1, 5) - expected).abs() < 1e-12);
        assert_eq!(ndcg(&[false, false], 2, 5), 0.0);
        assert_eq!(ndcg(&[false, true], 1, 1), 0.0);
    }

    #[test]
    fn held_out_users_are_a_stable_tenth() {
        let users: Vec<String> = (0..1000).map(|u| format!("user{u}")).collect();
        let held = held_out_users(&users);
        assert!((60..=140).contains(&held.len()), "{}", held.len());
        assert_eq!(held, held_out_users(&users));
        assert_eq!(held_out_users(&["only".to_string()]).len(), 0);
        assert_eq!(held_out_users(&["a".to_string(), "b".to_string()]).len(), 1);
    }

    #[test]
    fn keyword_split_respects_quotes() {
        assert_eq!(
            split_keyword(r#"a = "x OR y" OR b = "z""#, "OR"),
            [r#"a = "x OR y""#, r#"b = "z""#]
        );
        assert_eq!(split_keyword("a and b", "AND"), ["a", "b"]);
    }
}
