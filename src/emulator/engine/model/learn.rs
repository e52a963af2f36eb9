//! What a model learns from its interactions: counts, trends, user histories and item neighbours,
//! and the user and segment scores computed from them.

use std::cmp::Ordering;
use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::super::recipes::{Recipe, RecipeType};
use super::super::table::{Cell, Table};
use super::events::Event;

/// Nearest items kept per item.
pub(super) const NEIGHBORS: usize = 50;
/// Co-occurrence counts each user's newest distinct items only: it bounds training time by
/// users × this² however long a history is, and old tastes matter less.
const COOCCURRENCE_HISTORY: usize = 200;
/// A user's newest distinct items that vote in user scores.
pub(super) const QUERY_HISTORY: usize = 100;
/// A history item's vote halves every this many newer items.
const HALF_LIFE: f64 = 10.0;
/// Damps the cosine of pairs seen in few histories (a pair seen once is weak evidence).
const SHRINK: f64 = 5.0;
/// Share of attribute similarity in a metadata-aware neighbour score.
const METADATA_WEIGHT: f64 = 0.3;
/// A history item's vote for itself, against at most 1 for its nearest neighbour: people come back to
/// what they liked, and in the service excluding seen items is a filter's job.
const SELF_WEIGHT: f64 = 0.5;
/// Weight of popularity in a user score: it orders items the history says little about.
const POPULARITY_PRIOR: f64 = 0.1;
/// The trending window is this share of the data's time span, within [1 hour, 7 days].
const TREND_WINDOW_SHARE: i64 = 8;

/// How a recipe learns and answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Family {
    /// Interaction counts.
    Popularity,
    /// The rise in interactions over the recent window.
    Trending,
    /// Item neighbours, served for an item.
    Related { metadata: bool },
    /// Item neighbours, served through a user's history (user-personalization, ranking, segments).
    Personal { metadata: bool },
}

impl Family {
    pub fn of(recipe: &Recipe) -> Self {
        // The service's co-occurrence recipes ignore item metadata; the others use it when present.
        let metadata = !matches!(
            recipe.name,
            "aws-sims"
                | "aws-hrnn"
                | "aws-ecomm-frequently-bought-together"
                | "aws-ecomm-customers-who-viewed-x-also-viewed"
                | "aws-vod-because-you-watched-x"
        );
        match recipe.recipe_type {
            RecipeType::PopularItems if recipe.name.contains("trending") => Self::Trending,
            RecipeType::PopularItems | RecipeType::PersonalizedActions => Self::Popularity,
            RecipeType::RelatedItems => Self::Related { metadata },
            RecipeType::UserPersonalization
            | RecipeType::PersonalizedRanking
            | RecipeType::UserSegmentation => Self::Personal { metadata },
        }
    }

    pub fn uses_item_metadata(self) -> bool {
        matches!(
            self,
            Self::Related { metadata: true } | Self::Personal { metadata: true }
        )
    }

    fn has_neighbors(self) -> bool {
        matches!(self, Self::Related { .. } | Self::Personal { .. })
    }
}

/// What is persisted: everything else is derived from it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub(super) struct Parts {
    /// Interactions per item.
    pub item_counts: Vec<u64>,
    /// Each user's distinct items in the order of their last interaction (newest last).
    pub user_items: Vec<Vec<u32>>,
    /// Per item, its nearest items with a similarity in (0, 1], nearest first; empty when the
    /// family has none.
    #[serde(default)]
    pub neighbors: Vec<Vec<(u32, f32)>>,
    /// Trending: per item, interactions in the recent window minus those in the window before.
    #[serde(default)]
    pub trend: Option<Vec<f64>>,
}

/// A model's learned state with its derived lookups.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Learned {
    parts: Parts,
    /// Items by the family's popularity (counts, or trend then counts), best first; ties by ID.
    popular: Vec<u32>,
    /// Per item, the score it has in `popular`.
    popular_score: Vec<f64>,
    max_count: u64,
}

/// Orders candidates: higher score, then more interactions, then lower index (sorted ID).
fn by_score(counts: &[u64]) -> impl Fn(&(u32, f64), &(u32, f64)) -> Ordering + '_ {
    |a, b| {
        b.1.total_cmp(&a.1)
            .then(counts[b.0 as usize].cmp(&counts[a.0 as usize]))
            .then(a.0.cmp(&b.0))
    }
}

/// The best `k` candidates in order.
fn top_k(mut candidates: Vec<(u32, f64)>, k: usize, counts: &[u64]) -> Vec<(u32, f64)> {
    let order = by_score(counts);
    if candidates.len() > k && k > 0 {
        candidates.select_nth_unstable_by(k - 1, &order);
        candidates.truncate(k);
    }
    candidates.sort_unstable_by(&order);
    candidates.truncate(k);
    candidates
}

/// Vote weight of the item `age` places from the newest in a history.
fn recency_weight(age: usize) -> f64 {
    0.5f64.powf(age as f64 / HALF_LIFE)
}

impl Learned {
    /// Learns what `family` needs from `events` (chronological, indexes below `users`/`items`).
    pub fn train(
        family: Family,
        users: usize,
        items: usize,
        events: &[Event],
        metadata: Option<&ItemMetadata>,
    ) -> Self {
        let mut item_counts = vec![0u64; items];
        let mut per_user: Vec<Vec<u32>> = vec![Vec::new(); users];
        for e in events {
            item_counts[e.item as usize] += 1;
            per_user[e.user as usize].push(e.item);
        }
        // Keep each item's last occurrence: walk backwards, marking items with the user's number.
        let mut mark = vec![u32::MAX; items];
        let user_items: Vec<Vec<u32>> = per_user
            .into_iter()
            .enumerate()
            .map(|(user, sequence)| {
                let mut distinct: Vec<u32> = Vec::new();
                for &item in sequence.iter().rev() {
                    if mark[item as usize] != user as u32 {
                        mark[item as usize] = user as u32;
                        distinct.push(item);
                    }
                }
                distinct.reverse();
                distinct
            })
            .collect();
        let neighbors = if family.has_neighbors() {
            item_neighbors(items, &user_items, &item_counts, metadata)
        } else {
            Vec::new()
        };
        let trend = (family == Family::Trending).then(|| trend(items, events));
        Self::derive(Parts {
            item_counts,
            user_items,
            neighbors,
            trend,
        })
    }

    /// Checks persisted parts against the model's ID lists and derives the lookups.
    pub fn from_parts(parts: Parts, users: usize, items: usize) -> Result<Self, String> {
        if parts.item_counts.len() != items || parts.user_items.len() != users {
            return Err("model lists have inconsistent lengths".into());
        }
        if !parts.neighbors.is_empty() && parts.neighbors.len() != items {
            return Err("model neighbour lists have an inconsistent length".into());
        }
        if parts.trend.as_ref().is_some_and(|t| t.len() != items) {
            return Err("model trend list has an inconsistent length".into());
        }
        let in_range = |i: u32| (i as usize) < items;
        if !parts.user_items.iter().flatten().all(|&i| in_range(i))
            || !parts
                .neighbors
                .iter()
                .flatten()
                .all(|&(i, s)| in_range(i) && s.is_finite())
        {
            return Err("model refers to an item it does not list".into());
        }
        Ok(Self::derive(parts))
    }

    fn derive(parts: Parts) -> Self {
        let counts = &parts.item_counts;
        let total: u64 = counts.iter().sum();
        let popular_score: Vec<f64> = match &parts.trend {
            Some(trend) => {
                let rises: f64 = trend.iter().filter(|r| **r > 0.0).sum();
                trend
                    .iter()
                    .map(|&r| if r > 0.0 { r / rises } else { 0.0 })
                    .collect()
            }
            None => counts
                .iter()
                .map(|&c| if total == 0 { 0.0 } else { c as f64 / total as f64 })
                .collect(),
        };
        let mut popular: Vec<u32> = (0..counts.len() as u32)
            .filter(|&i| counts[i as usize] > 0)
            .collect();
        let key = |i: u32| parts.trend.as_ref().map_or(0.0, |t| t[i as usize]);
        popular.sort_by(|&a, &b| {
            key(b)
                .total_cmp(&key(a))
                .then(counts[b as usize].cmp(&counts[a as usize]))
                .then(a.cmp(&b))
        });
        Self {
            max_count: counts.iter().copied().max().unwrap_or(0),
            popular,
            popular_score,
            parts,
        }
    }

    pub fn parts(&self) -> &Parts {
        &self.parts
    }

    pub fn history(&self, user: u32) -> &[u32] {
        &self.parts.user_items[user as usize]
    }

    pub fn users(&self) -> usize {
        self.parts.user_items.len()
    }

    pub fn counts(&self) -> &[u64] {
        &self.parts.item_counts
    }

    /// Items by the family's popularity with their scores, best first.
    pub fn popular(&self) -> impl Iterator<Item = (u32, f64)> + '_ {
        self.popular.iter().map(|&i| (i, self.popular_score[i as usize]))
    }

    /// The nearest items of `item`.
    pub fn neighbors(&self, item: u32) -> impl Iterator<Item = (u32, f64)> + '_ {
        self.parts
            .neighbors
            .get(item as usize)
            .into_iter()
            .flatten()
            .map(|&(j, s)| (j, f64::from(s)))
    }

    fn prior(&self, item: u32) -> f64 {
        if self.max_count == 0 {
            0.0
        } else {
            POPULARITY_PRIOR * self.parts.item_counts[item as usize] as f64 / self.max_count as f64
        }
    }

    /// The score of an item no history item voted for, on the scale of [`Self::personal_scores`].
    pub fn prior_score(&self, item: u32) -> f64 {
        self.prior(item) / (1.0 + POPULARITY_PRIOR)
    }

    /// Scores in [0, 1] of the items the newest [`QUERY_HISTORY`] items of `history` vote for
    /// (themselves and their neighbours, newer votes weighing more), best first.
    pub fn personal_scores(&self, history: &[u32]) -> Vec<(u32, f64)> {
        let recent = &history[history.len().saturating_sub(QUERY_HISTORY)..];
        let mut votes: HashMap<u32, f64> = HashMap::with_capacity(recent.len() * (NEIGHBORS + 1));
        let mut total = 0.0;
        for (age, &item) in recent.iter().rev().enumerate() {
            let w = recency_weight(age);
            total += w;
            *votes.entry(item).or_default() += w * SELF_WEIGHT;
            for (j, s) in self.neighbors(item) {
                *votes.entry(j).or_default() += w * s;
            }
        }
        if total == 0.0 {
            return Vec::new();
        }
        let scored: Vec<(u32, f64)> = votes
            .into_iter()
            .map(|(j, v)| (j, (v / total + self.prior(j)) / (1.0 + POPULARITY_PRIOR)))
            .collect();
        top_k(scored, usize::MAX, self.counts())
    }

    /// Per user, the affinity in [0, 1] to the items: how strongly the user's recent history
    /// votes for them (see [`Self::personal_scores`]).
    pub fn segment_scores(&self, items: &[u32]) -> Vec<f64> {
        let mut weight = vec![0f64; self.parts.item_counts.len()];
        if items.is_empty() {
            return vec![0.0; self.users()];
        }
        let share = 1.0 / items.len() as f64;
        for &item in items {
            // An item's own users have the strongest affinity to it.
            weight[item as usize] += share;
            // Neighbour lists are nearly symmetric: an item near `item` votes for it.
            for (j, s) in self.neighbors(item) {
                weight[j as usize] += share * s;
            }
        }
        self.parts
            .user_items
            .iter()
            .map(|history| {
                let recent = &history[history.len().saturating_sub(QUERY_HISTORY)..];
                let (mut sum, mut total) = (0.0, 0.0);
                for (age, &item) in recent.iter().rev().enumerate() {
                    let w = recency_weight(age);
                    total += w;
                    sum += w * weight[item as usize];
                }
                if total == 0.0 { 0.0 } else { (sum / total).min(1.0) }
            })
            .collect()
    }
}

/// Per item, its rise: interactions in the recent window minus those in the window before.
fn trend(items: usize, events: &[Event]) -> Vec<f64> {
    let mut rise = vec![0f64; items];
    let (Some(first), Some(last)) = (events.first(), events.last()) else {
        return rise;
    };
    let window = ((last.time - first.time) / TREND_WINDOW_SHARE).clamp(3_600, 7 * 86_400);
    for e in events {
        let age = last.time - e.time;
        if age < window {
            rise[e.item as usize] += 1.0;
        } else if age < 2 * window {
            rise[e.item as usize] -= 1.0;
        }
    }
    rise
}

/// The categorical attributes of items, as sorted token ids per item (a token is a column and one
/// of its `|`-separated values).
#[derive(Debug, Clone, Default)]
pub(super) struct ItemMetadata {
    tokens: Vec<Vec<u32>>,
    token_count: usize,
}

impl ItemMetadata {
    /// Reads the string columns of the Items dataset (not ITEM_ID, not timestamps; numbers are not
    /// categories) for the model's items; rows of unknown items are ignored.
    pub fn new(table: &Table, items: &[String]) -> Self {
        let mut tokens: Vec<Vec<u32>> = vec![Vec::new(); items.len()];
        let Some(id_col) = table.column("ITEM_ID") else {
            return Self::default();
        };
        let index: HashMap<&str, u32> = items
            .iter()
            .enumerate()
            .map(|(i, id)| (id.as_str(), i as u32))
            .collect();
        let columns: Vec<usize> = table
            .columns
            .iter()
            .enumerate()
            .filter(|(c, name)| *c != id_col && !name.to_ascii_uppercase().contains("TIMESTAMP"))
            .map(|(c, _)| c)
            .collect();
        let mut interned: HashMap<(usize, &str), u32> = HashMap::new();
        for row in &table.rows {
            let Some(&item) = row
                .get(id_col)
                .and_then(Cell::as_str)
                .and_then(|id| index.get(id))
            else {
                continue;
            };
            for &c in &columns {
                let Some(Cell::Str(text)) = row.get(c) else {
                    continue;
                };
                for value in text.split('|').map(str::trim).filter(|v| !v.is_empty()) {
                    let next = interned.len() as u32;
                    let token = *interned.entry((c, value)).or_insert(next);
                    tokens[item as usize].push(token);
                }
            }
        }
        for t in &mut tokens {
            t.sort_unstable();
            t.dedup();
        }
        Self {
            token_count: interned.len(),
            tokens,
        }
    }

    /// Jaccard similarity of two items' tokens.
    fn similarity(&self, a: u32, b: u32) -> f64 {
        let (x, y) = (&self.tokens[a as usize], &self.tokens[b as usize]);
        if x.is_empty() || y.is_empty() {
            return 0.0;
        }
        let (mut i, mut j, mut common) = (0, 0, 0usize);
        while i < x.len() && j < y.len() {
            match x[i].cmp(&y[j]) {
                Ordering::Less => i += 1,
                Ordering::Greater => j += 1,
                Ordering::Equal => {
                    common += 1;
                    i += 1;
                    j += 1;
                }
            }
        }
        common as f64 / (x.len() + y.len() - common) as f64
    }

    /// Per token, its [`NEIGHBORS`] most interacted items.
    fn top_items(&self, counts: &[u64]) -> Vec<Vec<u32>> {
        let mut by_token: Vec<Vec<u32>> = vec![Vec::new(); self.token_count];
        for (item, tokens) in self.tokens.iter().enumerate() {
            for &t in tokens {
                by_token[t as usize].push(item as u32);
            }
        }
        for list in &mut by_token {
            list.sort_by(|&a, &b| counts[b as usize].cmp(&counts[a as usize]).then(a.cmp(&b)));
            list.truncate(NEIGHBORS);
        }
        by_token
    }
}

/// Per item, its [`NEIGHBORS`] nearest items: cosine similarity of the sets of users (over each
/// user's newest [`COOCCURRENCE_HISTORY`] items), blended with attribute similarity when metadata
/// is given (candidates then include the most interacted items sharing an attribute value).
fn item_neighbors(
    items: usize,
    user_items: &[Vec<u32>],
    counts: &[u64],
    metadata: Option<&ItemMetadata>,
) -> Vec<Vec<(u32, f32)>> {
    let recent: Vec<&[u32]> = user_items
        .iter()
        .map(|h| &h[h.len().saturating_sub(COOCCURRENCE_HISTORY)..])
        .collect();
    let mut item_users: Vec<Vec<u32>> = vec![Vec::new(); items];
    for (user, history) in recent.iter().enumerate() {
        for &item in *history {
            item_users[item as usize].push(user as u32);
        }
    }
    let norm: Vec<f64> = item_users.iter().map(|u| (u.len() as f64).sqrt()).collect();
    let top_by_token = metadata.map(|m| m.top_items(counts));
    let mut common = vec![0u32; items];
    let mut touched: Vec<u32> = Vec::new();
    let mut seen = vec![u32::MAX; items];
    (0..items as u32)
        .map(|item| {
            for &user in &item_users[item as usize] {
                for &other in recent[user as usize] {
                    if other != item {
                        if common[other as usize] == 0 {
                            touched.push(other);
                        }
                        common[other as usize] += 1;
                    }
                }
            }
            let mut candidates: Vec<(u32, f64)> = touched
                .drain(..)
                .map(|other| {
                    let c = f64::from(std::mem::take(&mut common[other as usize]));
                    let cosine = c / (norm[item as usize] * norm[other as usize] + SHRINK);
                    (other, cosine)
                })
                .collect();
            if let (Some(meta), Some(top)) = (metadata, &top_by_token) {
                let best = candidates.iter().map(|c| c.1).fold(0.0, f64::max);
                for c in &mut candidates {
                    seen[c.0 as usize] = item;
                    let cosine = if best > 0.0 { c.1 / best } else { 0.0 };
                    c.1 = (1.0 - METADATA_WEIGHT) * cosine + METADATA_WEIGHT * meta.similarity(item, c.0);
                }
                for &token in &meta.tokens[item as usize] {
                    for &other in &top[token as usize] {
                        if other != item && seen[other as usize] != item {
                            seen[other as usize] = item;
                            candidates.push((other, METADATA_WEIGHT * meta.similarity(item, other)));
                        }
                    }
                }
            }
            candidates.retain(|c| c.1 > 0.0);
            top_k(candidates, NEIGHBORS, counts)
                .into_iter()
                .map(|(j, s)| (j, s.min(1.0) as f32))
                .collect()
        })
        .collect()
}
