//! Offline metrics as the service documents them (GetSolutionMetrics): a model trained without the
//! held-out data answers for it, and its answers are scored against what really happened.

use std::collections::{BTreeMap, HashSet};

use super::super::recipes::RecipeType;
use super::METRICS_DEPTH;
use super::events::{Event, held_out_users, stable_hash};
use super::learn::{Family, ItemMetadata, Learned};
use super::query::{rank_users, ranked};

const RANKING_DEPTHS: [usize; 3] = [5, 10, 25];
/// Coverage counts the lists of every test user and of this many training users (a stable sample:
/// answering for every user of a large data set would cost more than training).
const COVERAGE_SAMPLE: usize = 1000;
/// Segmentation metrics evaluate at most this many items (a stable sample), for the same reason.
const SEGMENT_SAMPLE: usize = 200;

/// The 8 standard metrics: 90 % of users train; of each held-out user, the oldest 90 % of events
/// are the input (the history, and for RELATED_ITEMS its newest item the query) and the newest 10 %
/// the ground truth.
pub(super) fn ranking(
    family: Family,
    recipe_type: RecipeType,
    users: &[String],
    items: usize,
    events: &[Event],
    metadata: Option<&ItemMetadata>,
) -> BTreeMap<String, f64> {
    let held = held_out_users(users);
    let train_events: Vec<Event> = events
        .iter()
        .filter(|e| !held.contains(&e.user))
        .copied()
        .collect();
    let model = Learned::train(family, users.len(), items, &train_events, metadata);
    let mut by_user: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    for e in events.iter().filter(|e| held.contains(&e.user)) {
        by_user.entry(e.user).or_default().push(e.item);
    }
    let lists = |history: &[u32]| {
        let query = history.last().copied();
        ranked(&model, recipe_type, history, query, METRICS_DEPTH, |_| true)
    };
    let mut sums = [0.0f64; 7]; // precision@5,10,25, ndcg@5,10,25, reciprocal rank
    let mut recommended: HashSet<u32> = HashSet::new();
    for sequence in by_user.values() {
        let truth_len = sequence.len().div_ceil(10).max(1);
        let (input, truth) = sequence.split_at(sequence.len() - truth_len);
        let truth: HashSet<u32> = truth.iter().copied().collect();
        let ranked: Vec<u32> = lists(&distinct_newest_last(input))
            .into_iter()
            .map(|(item, _)| item)
            .collect();
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
    let mut sample: Vec<(u64, u32)> = (0..users.len() as u32)
        .filter(|u| !held.contains(u))
        .map(|u| (stable_hash(&users[u as usize]), u))
        .collect();
    sample.sort_unstable();
    for &(_, user) in sample.iter().take(COVERAGE_SAMPLE) {
        recommended.extend(lists(model.history(user)).into_iter().map(|(item, _)| item));
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

/// The distinct items of a sequence, each at its last occurrence.
fn distinct_newest_last(sequence: &[u32]) -> Vec<u32> {
    let mut seen: HashSet<u32> = HashSet::new();
    let mut out: Vec<u32> = sequence
        .iter()
        .rev()
        .filter(|i| seen.insert(**i))
        .copied()
        .collect();
    out.reverse();
    out
}

/// NDCG@depth with the weight 1/log2(1 + position).
pub(super) fn ndcg(relevant: &[bool], truth: usize, depth: usize) -> f64 {
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
/// held-out users (at most [`SEGMENT_SAMPLE`], a stable sample), the top 1 % of users by affinity
/// are predicted; `hit` is the average number of them that did interact, `recall` the average share
/// of the interacting users found.
pub(super) fn segmentation(
    family: Family,
    users: usize,
    items: usize,
    events: &[Event],
    metadata: Option<&ItemMetadata>,
) -> BTreeMap<String, f64> {
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
    // Training events must stay chronological for the model.
    train_events.sort_by_key(|e| e.time);
    let model = Learned::train(family, users, items, &train_events, metadata);
    let k = users.div_ceil(100).max(1);
    let mut evaluated: Vec<(u64, u32)> = actual
        .keys()
        .map(|&item| (stable_hash(&item.to_string()), item))
        .collect();
    evaluated.sort_unstable();
    evaluated.truncate(SEGMENT_SAMPLE);
    let (mut hit, mut recall) = (0.0, 0.0);
    for &(_, item) in &evaluated {
        let interacted = &actual[&item];
        let predicted = rank_users(&model, &[item], k, |_| true);
        let hits = predicted.iter().filter(|(u, _)| interacted.contains(u)).count();
        hit += hits as f64;
        recall += hits as f64 / interacted.len() as f64;
    }
    let count = evaluated.len().max(1) as f64;
    BTreeMap::from([
        ("hit".to_string(), hit / count),
        ("recall".to_string(), recall / count),
    ])
}
