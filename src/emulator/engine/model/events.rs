//! The interactions a model trains on: extraction by event type and value, Personalize's training
//! minimums, and the stable choice of held-out users for metrics.

use std::collections::{HashMap, HashSet};

use super::super::table::{Cell, Table};
use super::{MIN_ACTIVE_USERS, MIN_INTERACTIONS, TrainError};

/// One interaction, with user and item as indexes into the model's sorted ID lists.
#[derive(Debug, Clone, Copy)]
pub(super) struct Event {
    pub user: u32,
    pub item: u32,
    pub time: i64,
}

pub(super) struct Extracted {
    /// Sorted distinct item IDs.
    pub items: Vec<String>,
    /// Sorted distinct user IDs.
    pub users: Vec<String>,
    /// In chronological order (row order breaks ties).
    pub events: Vec<Event>,
}

pub(super) fn extract_events(
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

pub(super) fn check_minimums(
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
pub(super) fn stable_hash(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The held-out users: those whose hash falls in one bucket of ten, at least one, never all.
pub(super) fn held_out_users(users: &[String]) -> HashSet<u32> {
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
