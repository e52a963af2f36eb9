//! Seeded synthetic Personalize data with planted structure, for quickstarts, tests and benchmarks.
//!
//! The same [`Params`] (seed included) always give byte-identical CSVs: the generator uses its own
//! SplitMix64 stream, not a library RNG whose algorithm may change between versions.
//!
//! # Planted structure
//! * **Item categories**: items are dealt round-robin over a seeded permutation into `categories`
//!   categories (`books`, `music`, … then `category-12`, …), so categories differ in size by at most one.
//! * **Taste clusters**: each user belongs to one cluster; cluster `c` prefers category `c` (primary,
//!   3 in 4 in-cluster picks) and category `c + 1` (secondary). The rest of a user's interactions pick a
//!   category uniformly.
//! * **Recency**: a user's in-cluster share grows over the interaction window (55 % at its start,
//!   90 % at its end), so a user's newest interactions are the best evidence of their taste.
//! * **Popularity skew**: within a category, items follow a Zipf law (exponent 0.9) over a seeded rank;
//!   users' activity follows a Zipf law (exponent 0.5); every user has at least two interactions when
//!   there are at least twice as many interactions as users.
//! * **New items**: four in five items (and each category's most popular one) exist before the window;
//!   the rest are created during it and are only interacted with after their creation. One pick in eight goes to an item of the category
//!   created in the 14 days before the event, so new items rise (what trending-now looks for).
//! * **User attribute**: `SEGMENT` names the user's primary category in 7 of 10 users, another
//!   category otherwise (a useful but noisy attribute).
//!
//! # CSV schema (column order as written; timestamps are Unix epoch seconds)
//! ```text
//! interactions.csv  USER_ID (string), ITEM_ID (string), TIMESTAMP (long), EVENT_TYPE (string: click | purchase)
//! items.csv         ITEM_ID (string), CATEGORY (string, categorical), CREATION_TIMESTAMP (long)
//! users.csv         USER_ID (string), SEGMENT (string, categorical)
//! ```
//! The Avro schemas for these files are [`INTERACTIONS_SCHEMA`], [`ITEMS_SCHEMA`] and
//! [`USERS_SCHEMA`]. User ids are `u<n>`, item ids `i<n>`. Interactions are written grouped by user,
//! each user's in time order. About one event in seven is a `purchase`.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use super::table::{Cell, Table};

/// The interactions schema (Avro JSON) of `interactions.csv`.
pub const INTERACTIONS_SCHEMA: &str = r#"{"type": "record", "name": "Interactions", "namespace": "com.amazonaws.personalize.schema", "fields": [{"name": "USER_ID", "type": "string"}, {"name": "ITEM_ID", "type": "string"}, {"name": "TIMESTAMP", "type": "long"}, {"name": "EVENT_TYPE", "type": "string"}], "version": "1.0"}"#;
/// The items schema (Avro JSON) of `items.csv`.
pub const ITEMS_SCHEMA: &str = r#"{"type": "record", "name": "Items", "namespace": "com.amazonaws.personalize.schema", "fields": [{"name": "ITEM_ID", "type": "string"}, {"name": "CATEGORY", "type": "string", "categorical": true}, {"name": "CREATION_TIMESTAMP", "type": "long"}], "version": "1.0"}"#;
/// The users schema (Avro JSON) of `users.csv`.
pub const USERS_SCHEMA: &str = r#"{"type": "record", "name": "Users", "namespace": "com.amazonaws.personalize.schema", "fields": [{"name": "USER_ID", "type": "string"}, {"name": "SEGMENT", "type": "string", "categorical": true}], "version": "1.0"}"#;

/// Category names, in cluster order; more categories than names get `category-<k>`.
const CATEGORY_NAMES: [&str; 12] = [
    "books", "music", "movies", "games", "garden", "kitchen", "sports", "toys", "beauty", "tools", "travel",
    "pets",
];

const DAY: i64 = 86_400;
/// Share of in-cluster picks that go to the primary category (the rest to the secondary).
const PRIMARY_SHARE: f64 = 0.75;
/// In-cluster share at the start and at the end of the window.
const IN_CLUSTER_START: f64 = 0.55;
const IN_CLUSTER_END: f64 = 0.90;
const ITEM_ZIPF: f64 = 0.9;
const USER_ZIPF: f64 = 0.5;
/// Share of picks that go to an item created in the [`FRESH_DAYS`] before the event.
const FRESH_SHARE: f64 = 0.125;
const FRESH_DAYS: i64 = 14;
const NEW_ITEM_SHARE: f64 = 0.2;
const SEGMENT_TRUTH: f64 = 0.7;
const PURCHASE_SHARE: f64 = 1.0 / 7.0;

/// Why data cannot be generated or written.
#[derive(Debug, thiserror::Error)]
pub enum SyntheticError {
    #[error("invalid synthetic data parameters: {0}")]
    InvalidParams(String),
    #[error("cannot write {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    pub seed: u64,
    pub users: usize,
    pub items: usize,
    pub interactions: usize,
    /// Item categories, also the number of taste clusters (at least 2).
    pub categories: usize,
    /// Start of the interaction window (Unix seconds).
    pub start: i64,
    /// Length of the interaction window (seconds).
    pub span_seconds: i64,
}

impl Params {
    /// Eight categories over a 90-day window starting 2023-11-14.
    pub fn new(users: usize, items: usize, interactions: usize, seed: u64) -> Self {
        Self {
            seed,
            users,
            items,
            interactions,
            categories: 8,
            start: 1_700_000_000,
            span_seconds: 90 * DAY,
        }
    }

    fn check(&self) -> Result<(), SyntheticError> {
        let bad = |m: String| Err(SyntheticError::InvalidParams(m));
        if self.categories < 2 {
            return bad(format!("categories must be at least 2, got {}", self.categories));
        }
        if self.items < self.categories {
            return bad(format!(
                "items ({}) must be at least the number of categories ({})",
                self.items, self.categories
            ));
        }
        if self.users == 0 {
            return bad("users must be at least 1".into());
        }
        if self.users > u32::MAX as usize || self.items > u32::MAX as usize {
            return bad("users and items must fit in 32 bits".into());
        }
        if self.categories > u16::MAX as usize {
            return bad("categories must fit in 16 bits".into());
        }
        if self.span_seconds <= 0 {
            return bad(format!(
                "span_seconds must be positive, got {}",
                self.span_seconds
            ));
        }
        Ok(())
    }
}

/// One generated event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interaction {
    pub user: u32,
    pub item: u32,
    pub timestamp: i64,
    pub purchase: bool,
}

/// Generated data with its ground truth.
#[derive(Debug, Clone)]
pub struct SyntheticData {
    pub params: Params,
    /// Taste cluster of each user (= index of its primary category).
    pub user_cluster: Vec<u16>,
    /// Category index written as each user's `SEGMENT`.
    pub user_segment: Vec<u16>,
    pub item_category: Vec<u16>,
    pub item_created: Vec<i64>,
    /// Grouped by user, each user's in time order.
    pub interactions: Vec<Interaction>,
}

/// SplitMix64: tiny, fast, and stable forever (the CSVs must not change with a dependency bump).
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [0, n); `n > 0`.
    fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() as u128 * n as u128) >> 64) as usize
    }

    fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            v.swap(i, self.below(i + 1));
        }
    }
}

/// Draws an index with probability proportional to its weight (cumulative sums, binary search).
struct Weighted(Vec<f64>);

impl Weighted {
    fn new(weights: impl IntoIterator<Item = f64>) -> Self {
        let mut total = 0.0;
        Self(
            weights
                .into_iter()
                .map(|w| {
                    total += w;
                    total
                })
                .collect(),
        )
    }

    fn draw(&self, rng: &mut Rng) -> usize {
        let total = self.0.last().copied().unwrap_or(0.0);
        let x = rng.unit() * total;
        self.0.partition_point(|&c| c <= x).min(self.0.len() - 1)
    }
}

/// The name of category `k`.
pub fn category_name(k: usize) -> String {
    CATEGORY_NAMES
        .get(k)
        .map(|s| (*s).to_string())
        .unwrap_or_else(|| format!("category-{k}"))
}

/// Generates the data described in the module documentation.
pub fn generate(params: &Params) -> Result<SyntheticData, SyntheticError> {
    params.check()?;
    let mut rng = Rng(params.seed);
    // The draws happen in this order (items, users, interactions): a seed's data depends on it.
    let catalog = catalog(params, &mut rng);
    let users = users(params, &mut rng);
    let interactions = interactions(params, &mut rng, &catalog, &users);
    Ok(SyntheticData {
        params: params.clone(),
        user_cluster: users.cluster,
        user_segment: users.segment,
        item_category: catalog.category,
        item_created: catalog.created,
        interactions,
    })
}

/// The items: category, creation time, and per category the members by popularity and by age.
struct Catalog {
    category: Vec<u16>,
    created: Vec<i64>,
    members: Vec<Vec<u32>>,
    popularity: Vec<Weighted>,
    by_created: Vec<Vec<u32>>,
}

fn catalog(params: &Params, rng: &mut Rng) -> Catalog {
    let k = params.categories;
    // Items: categories round-robin over a permutation, Zipf rank within the category.
    let mut order: Vec<usize> = (0..params.items).collect();
    rng.shuffle(&mut order);
    let mut item_category = vec![0u16; params.items];
    let mut members: Vec<Vec<u32>> = vec![Vec::new(); k];
    for (position, &item) in order.iter().enumerate() {
        item_category[item] = (position % k) as u16;
        members[position % k].push(item as u32);
    }
    // The most popular item of each category (rank 0) predates the window, so every category has an
    // item to pick at any time in it.
    let item_created: Vec<i64> = (0..params.items)
        .map(|item| {
            let rank0 = members[item_category[item] as usize][0] as usize == item;
            if !rank0 && rng.unit() < NEW_ITEM_SHARE {
                params.start + (rng.unit() * params.span_seconds as f64) as i64
            } else {
                params.start - 1 - (rng.unit() * (365 * DAY) as f64) as i64
            }
        })
        .collect();
    // members[c] is in permutation order, so its index is a seeded popularity rank.
    let popularity: Vec<Weighted> = members
        .iter()
        .map(|m| Weighted::new((0..m.len()).map(|r| 1.0 / ((r + 1) as f64).powf(ITEM_ZIPF))))
        .collect();
    // Per category, items by creation time, for the fresh-item picks.
    let by_created: Vec<Vec<u32>> = members
        .iter()
        .map(|m| {
            let mut v = m.clone();
            v.sort_by_key(|&i| (item_created[i as usize], i));
            v
        })
        .collect();

    Catalog {
        category: item_category,
        created: item_created,
        members,
        popularity,
        by_created,
    }
}

/// The users: taste cluster, the segment attribute (the cluster, with noise), interaction counts.
struct Users {
    cluster: Vec<u16>,
    segment: Vec<u16>,
    counts: Vec<usize>,
}

fn users(params: &Params, rng: &mut Rng) -> Users {
    let k = params.categories;
    let user_cluster: Vec<u16> = (0..params.users).map(|_| rng.below(k) as u16).collect();
    let user_segment: Vec<u16> = user_cluster
        .iter()
        .map(|&c| {
            if rng.unit() < SEGMENT_TRUTH {
                c
            } else {
                rng.below(k) as u16
            }
        })
        .collect();
    let mut counts = vec![0usize; params.users];
    let base = if params.interactions >= 2 * params.users {
        2
    } else if params.interactions >= params.users {
        1
    } else {
        0
    };
    counts.iter_mut().for_each(|c| *c = base);
    let mut activity_rank: Vec<usize> = (0..params.users).collect();
    rng.shuffle(&mut activity_rank);
    let activity = Weighted::new(
        activity_rank
            .iter()
            .map(|&r| 1.0 / ((r + 1) as f64).powf(USER_ZIPF)),
    );
    for _ in 0..params.interactions - base * params.users {
        counts[activity.draw(rng)] += 1;
    }

    Users {
        cluster: user_cluster,
        segment: user_segment,
        counts,
    }
}

/// Each user's interactions at random times in the window, drifting toward the user's cluster.
fn interactions(params: &Params, rng: &mut Rng, catalog: &Catalog, users: &Users) -> Vec<Interaction> {
    let k = params.categories;
    let mut interactions = Vec::with_capacity(params.interactions);
    let mut times = Vec::new();
    for (user, &count) in users.counts.iter().enumerate() {
        times.clear();
        times.extend((0..count).map(|_| params.start + rng.below(params.span_seconds as usize) as i64));
        times.sort_unstable();
        let cluster = users.cluster[user] as usize;
        for &t in &times {
            let progress = (t - params.start) as f64 / params.span_seconds as f64;
            let in_cluster = IN_CLUSTER_START + (IN_CLUSTER_END - IN_CLUSTER_START) * progress;
            let category = if rng.unit() < in_cluster {
                if rng.unit() < PRIMARY_SHARE {
                    cluster
                } else {
                    (cluster + 1) % k
                }
            } else {
                rng.below(k)
            };
            let item = pick_item(
                rng,
                &catalog.members[category],
                &catalog.popularity[category],
                &catalog.by_created[category],
                &catalog.created,
                t,
            );
            interactions.push(Interaction {
                user: user as u32,
                item,
                timestamp: t,
                purchase: rng.unit() < PURCHASE_SHARE,
            });
        }
    }
    interactions
}

/// An item of the category that exists at `t`: a fresh one (created in the last [`FRESH_DAYS`])
/// with probability [`FRESH_SHARE`] when there is one, else by popularity among existing items.
fn pick_item(
    rng: &mut Rng,
    members: &[u32],
    popularity: &Weighted,
    by_created: &[u32],
    created: &[i64],
    t: i64,
) -> u32 {
    let existing = by_created.partition_point(|&i| created[i as usize] <= t);
    if rng.unit() < FRESH_SHARE {
        let fresh_from = by_created.partition_point(|&i| created[i as usize] < t - FRESH_DAYS * DAY);
        if fresh_from < existing {
            return by_created[fresh_from + rng.below(existing - fresh_from)];
        }
    }
    // Rejection keeps the Zipf law over the items that exist; most items exist before the window.
    for _ in 0..32 {
        let item = members[popularity.draw(rng)];
        if created[item as usize] <= t {
            return item;
        }
    }
    // `existing > 0`: the category's most popular item predates the window.
    by_created[rng.below(existing.max(1))]
}

impl SyntheticData {
    /// `interactions.csv` rows (see the module documentation for the columns).
    pub fn write_interactions(&self, out: &mut impl Write) -> io::Result<()> {
        writeln!(out, "USER_ID,ITEM_ID,TIMESTAMP,EVENT_TYPE")?;
        for e in &self.interactions {
            let kind = if e.purchase { "purchase" } else { "click" };
            writeln!(out, "u{},i{},{},{kind}", e.user, e.item, e.timestamp)?;
        }
        Ok(())
    }

    /// `items.csv` rows.
    pub fn write_items(&self, out: &mut impl Write) -> io::Result<()> {
        writeln!(out, "ITEM_ID,CATEGORY,CREATION_TIMESTAMP")?;
        for (i, (&c, &t)) in self.item_category.iter().zip(&self.item_created).enumerate() {
            writeln!(out, "i{i},{},{t}", category_name(c as usize))?;
        }
        Ok(())
    }

    /// `users.csv` rows.
    pub fn write_users(&self, out: &mut impl Write) -> io::Result<()> {
        writeln!(out, "USER_ID,SEGMENT")?;
        for (u, &s) in self.user_segment.iter().enumerate() {
            writeln!(out, "u{u},{}", category_name(s as usize))?;
        }
        Ok(())
    }

    /// Writes `interactions.csv`, `items.csv` and `users.csv` into `dir` (created if missing).
    pub fn write_dir(&self, dir: &Path) -> Result<(), SyntheticError> {
        let io_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| SyntheticError::Io { path, source }
        };
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        type Writer = fn(&SyntheticData, &mut BufWriter<File>) -> io::Result<()>;
        let files: [(&str, Writer); 3] = [
            ("interactions.csv", |d, w| d.write_interactions(w)),
            ("items.csv", |d, w| d.write_items(w)),
            ("users.csv", |d, w| d.write_users(w)),
        ];
        for (name, write) in files {
            let path = dir.join(name);
            let file = File::create(&path).map_err(io_err(&path))?;
            let mut out = BufWriter::new(file);
            write(self, &mut out)
                .and_then(|()| out.flush())
                .map_err(io_err(&path))?;
        }
        Ok(())
    }

    /// The interactions as an engine table (the columns of `interactions.csv`).
    pub fn interactions_table(&self) -> Table {
        Table::new(
            ["USER_ID", "ITEM_ID", "TIMESTAMP", "EVENT_TYPE"]
                .map(String::from)
                .to_vec(),
            self.interactions
                .iter()
                .map(|e| {
                    vec![
                        Cell::Str(format!("u{}", e.user)),
                        Cell::Str(format!("i{}", e.item)),
                        Cell::Int(e.timestamp),
                        Cell::Str(if e.purchase { "purchase" } else { "click" }.into()),
                    ]
                })
                .collect(),
        )
    }

    /// The items as an engine table (the columns of `items.csv`).
    pub fn items_table(&self) -> Table {
        Table::new(
            ["ITEM_ID", "CATEGORY", "CREATION_TIMESTAMP"]
                .map(String::from)
                .to_vec(),
            self.item_category
                .iter()
                .zip(&self.item_created)
                .enumerate()
                .map(|(i, (&c, &t))| {
                    vec![
                        Cell::Str(format!("i{i}")),
                        Cell::Str(category_name(c as usize)),
                        Cell::Int(t),
                    ]
                })
                .collect(),
        )
    }

    /// The users as an engine table (the columns of `users.csv`).
    pub fn users_table(&self) -> Table {
        Table::new(
            ["USER_ID", "SEGMENT"].map(String::from).to_vec(),
            self.user_segment
                .iter()
                .enumerate()
                .map(|(u, &s)| vec![Cell::Str(format!("u{u}")), Cell::Str(category_name(s as usize))])
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> SyntheticData {
        generate(&Params::new(200, 120, 6000, 7)).expect("valid params")
    }

    fn csv_bytes(data: &SyntheticData) -> Vec<u8> {
        let mut out = Vec::new();
        data.write_interactions(&mut out).expect("in memory");
        data.write_items(&mut out).expect("in memory");
        data.write_users(&mut out).expect("in memory");
        out
    }

    #[test]
    fn same_seed_same_bytes_other_seed_other_bytes() {
        let a = csv_bytes(&small());
        assert_eq!(a, csv_bytes(&small()));
        let other = generate(&Params::new(200, 120, 6000, 8)).expect("valid params");
        assert_ne!(a, csv_bytes(&other));
    }

    #[test]
    fn sizes_and_minimum_history() {
        let d = small();
        assert_eq!(d.interactions.len(), 6000);
        assert_eq!(d.item_category.len(), 120);
        assert_eq!(d.user_cluster.len(), 200);
        let mut per_user = vec![0; 200];
        for e in &d.interactions {
            per_user[e.user as usize] += 1;
            assert!((e.item as usize) < 120);
        }
        assert!(
            per_user.iter().all(|&n| n >= 2),
            "every user has two interactions"
        );
        // Categories are balanced by construction.
        let mut per_category = vec![0; 8];
        d.item_category
            .iter()
            .for_each(|&c| per_category[c as usize] += 1);
        assert!(per_category.iter().all(|&n| n == 15), "{per_category:?}");
    }

    #[test]
    fn events_are_in_the_window_in_user_time_order_and_after_item_creation() {
        let d = small();
        let end = d.params.start + d.params.span_seconds;
        for pair in d.interactions.windows(2) {
            if pair[0].user == pair[1].user {
                assert!(pair[0].timestamp <= pair[1].timestamp);
            } else {
                assert!(pair[0].user < pair[1].user);
            }
        }
        for e in &d.interactions {
            assert!((d.params.start..end).contains(&e.timestamp));
            assert!(d.item_created[e.item as usize] <= e.timestamp, "{e:?}");
        }
    }

    #[test]
    fn planted_structure_is_present() {
        let d = generate(&Params::new(400, 160, 20_000, 3)).expect("valid params");
        let start = d.params.start;
        let half = start + d.params.span_seconds / 2;
        let (mut early, mut early_in, mut late, mut late_in) = (0.0, 0.0, 0.0, 0.0);
        let mut item_counts = vec![0usize; 160];
        for e in &d.interactions {
            let cluster = d.user_cluster[e.user as usize];
            let cat = d.item_category[e.item as usize];
            let in_cluster = (cat == cluster || cat == (cluster + 1) % 8) as u8 as f64;
            if e.timestamp < half {
                early += 1.0;
                early_in += in_cluster;
            } else {
                late += 1.0;
                late_in += in_cluster;
            }
            item_counts[e.item as usize] += 1;
        }
        // Uniform picks would land in the user's two categories 25 % of the time.
        assert!(early_in / early > 0.55, "{}", early_in / early);
        assert!(
            late_in / late > early_in / early + 0.1,
            "recency: {} vs {}",
            late_in / late,
            early_in / early
        );
        item_counts.sort_unstable_by(|a, b| b.cmp(a));
        let top: usize = item_counts[..16].iter().sum();
        assert!(
            top as f64 > 0.25 * 20_000.0,
            "popularity skew: top 10 % of items get {top}"
        );
        let segment_matches = d
            .user_cluster
            .iter()
            .zip(&d.user_segment)
            .filter(|(c, s)| c == s)
            .count();
        assert!(
            segment_matches > 240 && segment_matches < 340,
            "{segment_matches}"
        );
    }

    #[test]
    fn new_items_gain_interactions_after_creation() {
        let d = generate(&Params::new(300, 200, 30_000, 11)).expect("valid params");
        let new_items: Vec<usize> = (0..200)
            .filter(|&i| d.item_created[i] >= d.params.start)
            .collect();
        assert!(!new_items.is_empty());
        // In its first 14 days an item gets more events per day than its later average.
        let (mut first, mut later, mut first_days, mut later_days) = (0.0, 0.0, 0.0, 0.0);
        let end = d.params.start + d.params.span_seconds;
        for &i in &new_items {
            let created = d.item_created[i];
            let fresh_end = (created + FRESH_DAYS * DAY).min(end);
            first_days += (fresh_end - created) as f64 / DAY as f64;
            later_days += (end - fresh_end) as f64 / DAY as f64;
            for e in d.interactions.iter().filter(|e| e.item as usize == i) {
                if e.timestamp < fresh_end {
                    first += 1.0;
                } else {
                    later += 1.0;
                }
            }
        }
        assert!(first / first_days > 1.5 * later / later_days.max(1.0));
    }

    #[test]
    fn csv_columns_follow_the_documented_schema() {
        let d = generate(&Params::new(3, 8, 6, 1)).expect("valid params");
        let mut out = Vec::new();
        d.write_interactions(&mut out).expect("in memory");
        let text = String::from_utf8(out).expect("utf-8");
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some("USER_ID,ITEM_ID,TIMESTAMP,EVENT_TYPE"));
        for line in lines {
            let cells: Vec<&str> = line.split(',').collect();
            assert_eq!(cells.len(), 4);
            assert!(cells[0].starts_with('u') && cells[1].starts_with('i'));
            assert!(cells[2].parse::<i64>().is_ok());
            assert!(cells[3] == "click" || cells[3] == "purchase");
        }
        let names: Vec<String> = serde_json::from_str::<serde_json::Value>(INTERACTIONS_SCHEMA)
            .expect("json")["fields"]
            .as_array()
            .expect("fields")
            .iter()
            .map(|f| f["name"].as_str().unwrap_or_default().to_string())
            .collect();
        assert_eq!(names, ["USER_ID", "ITEM_ID", "TIMESTAMP", "EVENT_TYPE"]);
        for schema in [INTERACTIONS_SCHEMA, ITEMS_SCHEMA, USERS_SCHEMA] {
            let json: serde_json::Value = serde_json::from_str(schema).expect("json");
            crate::spec::avro::parse(&json).expect("a valid Personalize schema");
        }
    }

    #[test]
    fn bad_parameters_are_refused() {
        for p in [
            Params {
                categories: 1,
                ..Params::new(10, 10, 10, 0)
            },
            Params::new(10, 3, 10, 0),
            Params::new(0, 10, 10, 0),
            Params {
                span_seconds: 0,
                ..Params::new(10, 10, 10, 0)
            },
        ] {
            assert!(
                matches!(generate(&p), Err(SyntheticError::InvalidParams(_))),
                "{p:?}"
            );
        }
        // Fewer interactions than users is allowed: some users have none.
        let d = generate(&Params::new(10, 10, 4, 0)).expect("valid");
        assert_eq!(d.interactions.len(), 4);
    }

    #[test]
    fn write_dir_reports_the_path_it_cannot_write() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let blocker = tmp.path().join("file");
        std::fs::write(&blocker, b"x").expect("write");
        let d = generate(&Params::new(3, 8, 6, 1)).expect("valid");
        match d.write_dir(&blocker.join("sub")) {
            Err(SyntheticError::Io { path, .. }) => assert!(path.ends_with("sub")),
            other => panic!("expected an I/O error, got {other:?}"),
        }
        d.write_dir(&tmp.path().join("out")).expect("writes");
        let users = std::fs::read_to_string(tmp.path().join("out/users.csv")).expect("read");
        assert_eq!(users.lines().count(), 4);
    }
}
