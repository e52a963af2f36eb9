//! When each group's periodic resync falls: every group due at a slot every replica computes alike, within a share of the Personalize call rate, never earlier than it needs.
//!
//! Pure: [`plan`] takes the store's brief group listing, the instant and the budget, and says which
//! group to mark due when. The problems of marking every group due at once are solved here:
//!
//! - **Thundering herd.** A settled group's resync falls at a fixed offset inside the interval,
//!   from a stable hash of its name, so the fleet's resyncs are spread evenly over the window.
//! - **Replicas.** The slot is a function of (name, interval) on the Unix epoch, not of the instant
//!   a replica marks: replicas marking at different instants write the same due time, and the
//!   store's `mark_due` (which keeps the earlier of two due times) makes the second mark a no-op.
//!   Each settled group is resynced once per interval however many replicas run.
//! - **Quota.** Resyncs may use `share` of `calls_per_second`. When the settled groups ×
//!   [`CALLS_PER_RESYNC`] ÷ interval exceed it, the interval stretches (in steps of a tenth of the
//!   configured interval, so replicas whose listings differ by a few groups still agree).
//!
//! The rules, by where the group's last observation left it ([`ObservedState`]):
//!
//! | group | due |
//! |---|---|
//! | new desired generation (never observed, or observed at an older generation) | now: never delayed, whatever the budget |
//! | converged | its slot |
//! | failed (resources failed, or the last pass could not complete) | its slot: retried once per interval in force, however many replicas resync |
//! | pending | its own poll time, recorded by the turn; the slot only if that is later (no group goes unvisited longer than an interval) |
//! | destroyed (at the desired generation), or no parameter file | not marked |
//!
//! Converged and failed groups count against the budget; pending ones are polled on their own times
//! and new work is never counted. A mark never moves a due time later, and a mark that would not
//! move it earlier is not written.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::metrics::{Datum, SERVICE_WORKFLOW, Unit};
use crate::store::{GroupBrief, ObservedState};

/// Personalize calls a resync of a converged group makes: the reconciler reads its listings and
/// campaigns again (about 3 calls for a small group: group, schema, dataset, import, solution,
/// version, campaign).
pub const CALLS_PER_RESYNC: f64 = 3.0;

/// The stretched interval moves in steps of the configured one divided by this.
const STEPS_PER_INTERVAL: u32 = 10;

/// The longest interval the budget stretches to (about 31 years): only absurd settings reach it,
/// and it keeps every instant computed here representable.
const MAX_INTERVAL_MS: f64 = 1e12;

/// How much of the Personalize call rate the resync may use.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ResyncBudget {
    /// The process's ceiling of Personalize calls per second (`reconcile.calls_per_second`).
    pub calls_per_second: f64,
    /// The share of it resyncs may use (`daemon.resync_call_share`, in (0, 1]).
    pub share: f64,
}

impl Default for ResyncBudget {
    /// The defaults of `config/default.toml`.
    fn default() -> Self {
        Self {
            calls_per_second: 5.0,
            share: 0.25,
        }
    }
}

impl ResyncBudget {
    /// From the loaded settings.
    pub fn from_settings(settings: &crate::settings::Settings) -> Self {
        Self {
            calls_per_second: settings.reconcile.calls_per_second,
            share: settings.daemon.resync_call_share,
        }
    }

    /// Calls per second resyncs may use.
    pub fn resync_rate(&self) -> f64 {
        self.calls_per_second * self.share
    }

    /// The interval over which `spread` converged groups are resynced: `base`, or longer when their
    /// resyncs at `base` would need more than [`ResyncBudget::resync_rate`].
    pub fn window(&self, base: Duration, spread: usize) -> Window {
        let base_ms = (base.as_millis() as f64).max(1.0);
        let rate = self.resync_rate();
        // Settings validation keeps the rate positive; a zero or NaN rate here stretches nothing
        // rather than dividing by it.
        let needed_ms = if rate.is_finite() && rate > 0.0 {
            spread as f64 * CALLS_PER_RESYNC / rate * 1000.0
        } else {
            0.0
        };
        let interval_ms = if needed_ms <= base_ms {
            base_ms
        } else {
            let step = (base_ms / f64::from(STEPS_PER_INTERVAL)).max(1000.0);
            ((needed_ms / step).ceil() * step).min(MAX_INTERVAL_MS)
        };
        Window {
            base,
            interval: Duration::from_millis(interval_ms as u64),
            spread,
            calls_per_second: spread as f64 * CALLS_PER_RESYNC / (interval_ms / 1000.0),
        }
    }
}

/// The resync window in force.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    /// The configured interval (`daemon.resync_interval_secs`).
    pub base: Duration,
    /// The interval in force: `base`, or longer when the budget stretched it.
    pub interval: Duration,
    /// Converged groups spread over it.
    pub spread: usize,
    /// The Personalize calls per second their resyncs take on average.
    pub calls_per_second: f64,
}

/// The gauge of the interval in force, in seconds (dimension `service=Workflow`), one datum per
/// resync: above `daemon.resync_interval_secs` when the budget stretched it.
pub const WINDOW_METRIC: &str = "ResyncIntervalSeconds";

impl Window {
    /// Whether the budget made the interval longer than configured.
    pub fn stretched(&self) -> bool {
        self.interval > self.base
    }

    /// The [`WINDOW_METRIC`] datum of this window at `now`.
    pub fn datum(&self, now: DateTime<Utc>) -> Datum {
        Datum {
            name: WINDOW_METRIC.into(),
            value: self.interval.as_secs_f64(),
            unit: Unit::None,
            dimensions: vec![("service".into(), SERVICE_WORKFLOW.into())],
            timestamp: now,
        }
    }
}

/// FNV-1a over the name, then MurmurHash3's 64-bit finaliser: stable across processes, builds and
/// platforms (the standard library's hasher promises none of that). The finaliser mixes the high
/// bits into the low ones, which FNV alone leaves weak and a modulo reads.
fn stable_hash(name: &str) -> u64 {
    let mut h = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

fn interval_ms(interval: Duration) -> i64 {
    i64::try_from(interval.as_millis()).unwrap_or(i64::MAX).max(1)
}

/// Where in every window of `interval` (counted from the Unix epoch) `group`'s resync falls.
pub fn slot_offset(group: &str, interval: Duration) -> Duration {
    let ms = interval_ms(interval) as u64;
    Duration::from_millis(stable_hash(group) % ms)
}

/// The first instant at or after `now` at `group`'s slot: the same for every replica that asks at
/// any instant between two of the group's slots.
pub fn next_slot(group: &str, now: DateTime<Utc>, interval: Duration) -> DateTime<Utc> {
    let every = interval_ms(interval);
    let offset = slot_offset(group, interval).as_millis() as i64;
    let now_ms = now.timestamp_millis();
    let into = now_ms.saturating_sub(offset).rem_euclid(every);
    let at = if into == 0 {
        now_ms
    } else {
        now_ms.saturating_add(every - into)
    };
    DateTime::from_timestamp_millis(at).unwrap_or(now)
}

/// The fire claim a replica takes for a window of resync ([`window_start`]): the first to claim it
/// resyncs for all. Not a dataset group name (Personalize names have no `*`), so no group's claims
/// or listing meet it.
pub const CLAIM_GROUP: &str = "*resync";

/// The schedule name of the resync's claims.
pub const CLAIM_NAME: &str = "window";

/// The start of the window of `interval` on the Unix epoch that holds `now`: the same instant for
/// every replica, whenever in the window it asks.
pub fn window_start(now: DateTime<Utc>, interval: Duration) -> DateTime<Utc> {
    let every = interval_ms(interval);
    let now_ms = now.timestamp_millis();
    DateTime::from_timestamp_millis(now_ms - now_ms.rem_euclid(every)).unwrap_or(now)
}

/// How long from `now` until the next window of `interval` starts: in (0, interval].
pub fn until_next_window(now: DateTime<Utc>, interval: Duration) -> Duration {
    let every = interval_ms(interval);
    let into = now.timestamp_millis().rem_euclid(every);
    Duration::from_millis((every - into) as u64)
}

/// How the resync treats a live group (one with a parameter file, not destroyed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A desired generation no pass has observed yet.
    New,
    /// Converged or failed at its desired generation: due at its slot, counted in the budget.
    Settled,
    /// Pending at its desired generation: due at its own poll time, or its slot if that is earlier.
    Pending,
}

/// `None` for a group the resync leaves alone: no parameter file, or destroyed at it.
fn kind(g: &GroupBrief) -> Option<Kind> {
    let desired = g.desired_generation?;
    if g.destroyed() {
        return None;
    }
    Some(match g.observed {
        Some((generation, state)) if generation == desired => match state {
            ObservedState::Converged | ObservedState::Failed => Kind::Settled,
            ObservedState::Pending => Kind::Pending,
            // `destroyed()` covers it; a tombstone of the desired generation is never rebuilt.
            ObservedState::Destroyed => return None,
        },
        _ => Kind::New,
    })
}

/// Which group to mark due when.
#[derive(Debug, Clone, PartialEq)]
pub struct ResyncPlan {
    /// Groups whose due time must be written, with it.
    pub marks: Vec<(String, DateTime<Utc>)>,
    /// Groups already due at or before the time this resync would give them: no write.
    pub already_due: usize,
    /// Converged and failed groups given their slot (written or already due).
    pub spread: usize,
    /// Pending groups: their own poll time kept, or their slot when it comes first.
    pub pending: usize,
    /// Groups with a new desired generation, due now.
    pub immediate: usize,
    /// The window the slots were computed in.
    pub window: Window,
}

impl ResyncPlan {
    /// Groups the resync covers: those marked and those already due early enough.
    pub fn covered(&self) -> usize {
        self.marks.len() + self.already_due
    }
}

/// What a resync at `now` marks: every group with a parameter file that is not destroyed, by the
/// rules of the module documentation (slots in the budget's window over `base`).
pub fn plan(groups: &[GroupBrief], now: DateTime<Utc>, base: Duration, budget: ResyncBudget) -> ResyncPlan {
    let live: Vec<(&GroupBrief, Kind)> = groups.iter().filter_map(|g| Some((g, kind(g)?))).collect();
    let count = |k: Kind| live.iter().filter(|(_, kind)| *kind == k).count();
    let spread = count(Kind::Settled);
    let window = budget.window(base, spread);
    let mut out = ResyncPlan {
        marks: Vec::new(),
        already_due: 0,
        spread,
        pending: count(Kind::Pending),
        immediate: count(Kind::New),
        window,
    };
    for (g, kind) in live {
        let at = match kind {
            Kind::New => now,
            // A pending group's poll time is at most its slot: kept by the test below when earlier.
            Kind::Settled | Kind::Pending => next_slot(&g.name, now, window.interval),
        };
        // The store keeps the earlier due time anyway; not writing saves a write per group and
        // replica on the due-index's single partition.
        if g.due_at.is_some_and(|due| due <= at) {
            out.already_due += 1;
        } else {
            out.marks.push((g.name.clone(), at));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(ms: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(1_700_000_000_000 + ms).unwrap_or_default()
    }

    fn group(
        name: &str,
        desired: Option<u64>,
        observed: Option<(u64, ObservedState)>,
        due_at: Option<DateTime<Utc>>,
    ) -> GroupBrief {
        GroupBrief {
            name: name.into(),
            desired_generation: desired,
            desired_source: None,
            observed,
            due_at,
        }
    }

    fn converged(name: &str) -> GroupBrief {
        group(name, Some(1), Some((1, ObservedState::Converged)), None)
    }

    const TEN_MIN: Duration = Duration::from_secs(600);

    #[test]
    fn the_slot_is_stable_and_inside_the_window() {
        for i in 0..500 {
            let name = format!("group-{i}");
            let offset = slot_offset(&name, TEN_MIN);
            assert!(offset < TEN_MIN, "{name}: {offset:?}");
            assert_eq!(offset, slot_offset(&name, TEN_MIN), "{name}");
            for now in [t(0), t(1), t(123_456), t(599_999), t(7_000_000)] {
                let at = next_slot(&name, now, TEN_MIN);
                assert!(
                    at >= now && at - now < chrono::Duration::seconds(600),
                    "{name} at {now}: {at}"
                );
                let from_epoch = at.timestamp_millis() as u128 % TEN_MIN.as_millis();
                assert_eq!(
                    from_epoch,
                    offset.as_millis(),
                    "{name}: the slot is at the offset"
                );
            }
        }
        // A known value: the hash is part of the contract between replicas of different builds.
        assert_eq!(stable_hash(""), 0xefd0_1f60_ba99_2926);
        assert_eq!(stable_hash("a"), 0x82a2_a958_a9be_ce5b);
    }

    #[test]
    fn replicas_asking_anywhere_in_a_window_name_the_same_one() {
        let start = window_start(t(123_456), TEN_MIN);
        assert_eq!(start.timestamp_millis() % 600_000, 0);
        assert!(start <= t(123_456) && t(123_456) - start < chrono::Duration::seconds(600));
        let next = start + chrono::Duration::seconds(600);
        for ms in [0, 1, 299_999, 599_999] {
            let now = start + chrono::Duration::milliseconds(ms);
            assert_eq!(window_start(now, TEN_MIN), start, "{ms}");
            assert_eq!(
                now + chrono::Duration::from_std(until_next_window(now, TEN_MIN)).unwrap_or_default(),
                next
            );
        }
        assert_eq!(window_start(next, TEN_MIN), next);
        assert_eq!(
            until_next_window(next, TEN_MIN),
            TEN_MIN,
            "never zero: no busy loop"
        );
        assert_eq!(until_next_window(t(7), Duration::ZERO), Duration::from_millis(1));
    }

    #[test]
    fn slots_spread_the_fleet_over_the_window() {
        // 10,000 groups over ten buckets of a minute: none far from 1,000.
        let mut buckets = [0u32; 10];
        for i in 0..10_000 {
            let offset = slot_offset(&format!("customer-{i}"), TEN_MIN);
            buckets[(offset.as_secs() / 60) as usize] += 1;
        }
        assert!(buckets.iter().all(|&n| (850..=1150).contains(&n)), "{buckets:?}");
    }

    #[test]
    fn a_slot_reached_exactly_is_now_and_the_next_comes_an_interval_later() {
        let offset = slot_offset("g", TEN_MIN).as_millis() as i64;
        // A window's start: a multiple of the interval since the epoch.
        let base: i64 = 600_000 * 2_833_334;
        let slot = DateTime::from_timestamp_millis(base + offset).unwrap_or_default();
        assert_eq!(next_slot("g", slot, TEN_MIN), slot);
        let after = slot + chrono::Duration::milliseconds(1);
        assert_eq!(
            next_slot("g", after, TEN_MIN),
            slot + chrono::Duration::seconds(600)
        );
    }

    #[test]
    fn two_replicas_marking_the_same_window_write_the_same_due_times() {
        let groups: Vec<GroupBrief> = (0..200).map(|i| converged(&format!("g{i}"))).collect();
        let budget = ResyncBudget::default();
        // Replica A marks at its own instant; replica B later, before any slot was consumed: the
        // groups whose slot neither instant passed get the same time from both.
        let a = plan(&groups, t(10_000), TEN_MIN, budget);
        let b = plan(&groups, t(10_000 + 1_234), TEN_MIN, budget);
        let same = a
            .marks
            .iter()
            .zip(&b.marks)
            .filter(|((_, x), (_, y))| x == y)
            .count();
        let passed_between = a.marks.iter().filter(|(_, at)| *at < t(10_000 + 1_234)).count();
        assert_eq!(same, 200 - passed_between);
        // B marks after A's marks were written (the listing shows them): A's are kept, B writes
        // nothing.
        let marked: Vec<GroupBrief> = groups
            .iter()
            .zip(&a.marks)
            .map(|(g, (_, at))| GroupBrief {
                due_at: Some(*at),
                ..g.clone()
            })
            .collect();
        let b = plan(&marked, t(10_000 + 1_234), TEN_MIN, budget);
        assert!(b.marks.is_empty(), "{:?}", b.marks);
        assert_eq!(b.already_due, 200);
        assert_eq!(b.covered(), 200);
    }

    #[test]
    fn the_budget_stretches_the_interval_exactly_when_the_numbers_say() {
        // 5 calls/s × 0.25 = 1.25 resync calls/s; 600 s of it is 750 calls = 250 groups of 3.
        let budget = ResyncBudget::default();
        assert_eq!(budget.resync_rate(), 1.25);
        let at_limit = budget.window(TEN_MIN, 250);
        assert!(!at_limit.stretched());
        assert_eq!(at_limit.interval, TEN_MIN);
        assert_eq!(at_limit.calls_per_second, 1.25);
        let over = budget.window(TEN_MIN, 251);
        assert!(over.stretched());
        // 251 × 3 ÷ 1.25 = 602.4 s, rounded up to the next minute (a tenth of 600 s).
        assert_eq!(over.interval, Duration::from_secs(660));
        assert!(over.calls_per_second <= budget.resync_rate());
        // 100,000 groups at 20 calls/s × 0.25: 100,000 × 3 ÷ 5 = 60,000 s (16 h 40 min).
        let fleet = ResyncBudget {
            calls_per_second: 20.0,
            share: 0.25,
        };
        let w = fleet.window(TEN_MIN, 100_000);
        assert_eq!(w.interval, Duration::from_secs(60_000));
        assert_eq!(w.calls_per_second, 5.0);
        // Below the limit nothing changes: 4,000 groups at 20 calls/s take 20 × 600 ÷ 3 ÷ 4,000 = 1/2
        // of the full rate, more than the share: stretched; 1,000 groups are not.
        assert!(fleet.window(TEN_MIN, 4_000).stretched());
        assert!(!fleet.window(TEN_MIN, 1_000).stretched());
        assert_eq!(fleet.window(TEN_MIN, 0).interval, TEN_MIN);
    }

    #[test]
    fn absurd_budgets_neither_panic_nor_overflow() {
        let tiny = ResyncBudget {
            calls_per_second: 1e-10,
            share: 1e-10,
        };
        let w = tiny.window(TEN_MIN, usize::MAX);
        assert!(w.stretched());
        assert_eq!(w.interval, Duration::from_millis(MAX_INTERVAL_MS as u64));
        assert!(next_slot("g", t(0), w.interval) >= t(0));
        let broken = ResyncBudget {
            calls_per_second: f64::NAN,
            share: 0.25,
        };
        assert_eq!(broken.window(TEN_MIN, 10).interval, TEN_MIN);
        assert_eq!(
            next_slot("g", t(5), Duration::ZERO),
            t(5),
            "a zero interval is every instant"
        );
    }

    /// A name whose slot in `interval` falls at least `after` past `now`.
    fn name_with_slot_after(now: DateTime<Utc>, after: chrono::Duration, interval: Duration) -> String {
        (0..)
            .map(|i| format!("pending-{i}"))
            .find(|n| next_slot(n, now, interval) - now >= after)
            .unwrap_or_default()
    }

    #[test]
    fn each_kind_of_group_is_due_by_its_rule() {
        use ObservedState::{Converged, Destroyed, Failed, Pending};
        let now = t(42_000);
        let late = name_with_slot_after(now, chrono::Duration::seconds(120), TEN_MIN);
        let groups = vec![
            // A newer generation than the one converged, already marked now by its event.
            group("newer", Some(2), Some((1, Converged)), Some(now)),
            // A newer generation whose group still carried a later poll time: pulled to now.
            group("newer-polling", Some(3), Some((2, Pending)), Some(t(900_000))),
            // Never worked on.
            group("new", Some(1), None, None),
            // Pending with its poll time before its slot: kept, nothing written.
            group(
                &late,
                Some(1),
                Some((1, Pending)),
                Some(now + chrono::Duration::seconds(60)),
            ),
            // Pending with a poll time past its slot (a long back-off): the slot.
            group("slow-poll", Some(1), Some((1, Pending)), Some(t(5_000_000))),
            // Failed, nothing recorded: its slot, like a converged group.
            group("failed", Some(1), Some((1, Failed)), None),
            // Converged, and due earlier than its slot for another reason (a scheduled run).
            group("scheduled", Some(1), Some((1, Converged)), Some(t(1_000))),
            // No parameter file, or destroyed: not resynced; a newer file after a destroy is new.
            group("ghost", None, None, None),
            group("destroyed", Some(1), Some((1, Destroyed)), None),
            group("rebuilt", Some(2), Some((1, Destroyed)), None),
            converged("calm"),
        ];
        let p = plan(&groups, now, TEN_MIN, ResyncBudget::default());
        let at = |name: &str| p.marks.iter().find(|(g, _)| g == name).map(|(_, at)| *at);
        let slot = |name: &str| Some(next_slot(name, now, TEN_MIN));
        assert_eq!(at("newer"), None, "already due now: no write");
        assert_eq!(
            at("newer-polling"),
            Some(now),
            "a new generation is never delayed"
        );
        assert_eq!(at("new"), Some(now));
        assert_eq!(at("rebuilt"), Some(now));
        assert_eq!(at(&late), None, "a pending group keeps its own poll time");
        assert_eq!(at("slow-poll"), slot("slow-poll"));
        assert_eq!(
            at("failed"),
            slot("failed"),
            "a failed group is retried at its slot"
        );
        assert_eq!(at("scheduled"), None, "already due before its slot: kept");
        assert_eq!(at("ghost"), None);
        assert_eq!(at("destroyed"), None);
        assert_eq!(at("calm"), slot("calm"));
        assert_eq!((p.spread, p.pending, p.immediate), (3, 2, 4));
        assert_eq!((p.marks.len(), p.already_due), (6, 3));
        assert!(p.marks.iter().all(|(_, at)| *at >= now));
    }

    /// A store of one group as the resync and the dispatcher see it: `mark_due` keeps the earlier
    /// time; a turn at the due time runs the group and leaves it as `after_turn` says.
    struct OneGroup {
        brief: GroupBrief,
        turns: Vec<DateTime<Utc>>,
    }

    impl OneGroup {
        fn mark(&mut self, p: &ResyncPlan) {
            for (_, at) in &p.marks {
                self.brief.due_at = Some(self.brief.due_at.map_or(*at, |due| due.min(*at)));
            }
        }

        fn dispatch(
            &mut self,
            now: DateTime<Utc>,
            after_turn: impl Fn(DateTime<Utc>) -> Option<DateTime<Utc>>,
        ) {
            if self.brief.due_at.is_some_and(|due| due <= now) {
                self.turns.push(now);
                self.brief.due_at = after_turn(now);
            }
        }
    }

    /// `replicas` replicas resyncing every `TEN_MIN` at phases spread over it, and a dispatcher
    /// running the group whenever due, for `windows` windows second by second.
    fn simulate(
        brief: GroupBrief,
        replicas: i64,
        windows: i64,
        after_turn: impl Fn(DateTime<Utc>) -> Option<DateTime<Utc>>,
    ) -> Vec<DateTime<Utc>> {
        let mut store = OneGroup {
            brief,
            turns: Vec::new(),
        };
        let every = TEN_MIN.as_secs() as i64;
        for second in 0..windows * every {
            let now = t(second * 1000);
            for r in 0..replicas {
                if (second - r * every / replicas).rem_euclid(every) == 0 {
                    let p = plan(
                        std::slice::from_ref(&store.brief),
                        now,
                        TEN_MIN,
                        ResyncBudget::default(),
                    );
                    store.mark(&p);
                }
            }
            store.dispatch(now, &after_turn);
        }
        store.turns
    }

    #[test]
    fn a_failed_group_is_retried_once_per_interval_whatever_the_replicas() {
        let failed = group("broken", Some(1), Some((1, ObservedState::Failed)), None);
        for replicas in [1, 2, 3, 5] {
            // A failed turn records no next due time: only the resync brings the group back.
            let turns = simulate(failed.clone(), replicas, 12, |_| None);
            assert!((11..=12).contains(&turns.len()), "{replicas} replicas: {turns:?}");
            for pair in turns.windows(2) {
                assert_eq!(
                    pair[1] - pair[0],
                    chrono::Duration::seconds(600),
                    "{replicas}: {turns:?}"
                );
            }
        }
    }

    #[test]
    fn a_pending_group_is_polled_at_its_own_times_not_at_each_resync() {
        // A turn polls and asks to come back in 90 s: 6.67 polls per 600 s, whatever the replicas.
        let pending = group("busy", Some(1), Some((1, ObservedState::Pending)), Some(t(0)));
        let back_in_90 = |now: DateTime<Utc>| Some(now + chrono::Duration::seconds(90));
        let one = simulate(pending.clone(), 1, 6, back_in_90);
        for replicas in [2, 3, 5] {
            assert_eq!(
                simulate(pending.clone(), replicas, 6, back_in_90),
                one,
                "{replicas} replicas"
            );
        }
        for pair in one.windows(2) {
            assert_eq!(pair[1] - pair[0], chrono::Duration::seconds(90), "{one:?}");
        }
        // A back-off longer than the interval is cut to the slot: never unvisited past an interval.
        let back_in_an_hour = |now: DateTime<Utc>| Some(now + chrono::Duration::seconds(3600));
        let turns = simulate(pending, 3, 6, back_in_an_hour);
        for pair in turns.windows(2) {
            assert!(pair[1] - pair[0] <= chrono::Duration::seconds(600), "{turns:?}");
        }
    }

    #[test]
    fn only_settled_groups_count_against_the_budget() {
        let budget = ResyncBudget::default();
        let mut groups: Vec<GroupBrief> = (0..300)
            .map(|i| {
                group(
                    &format!("p{i}"),
                    Some(1),
                    Some((1, ObservedState::Pending)),
                    Some(t(0)),
                )
            })
            .chain((0..300).map(|i| {
                group(
                    &format!("n{i}"),
                    Some(2),
                    Some((1, ObservedState::Converged)),
                    None,
                )
            }))
            .collect();
        let p = plan(&groups, t(0), TEN_MIN, budget);
        assert!(
            !p.window.stretched(),
            "pending groups and new work are not resyncs"
        );
        assert_eq!((p.pending, p.immediate, p.already_due), (300, 300, 300));
        assert!(p.marks.iter().all(|(_, at)| *at == t(0)));
        groups.extend((0..200).map(|i| converged(&format!("c{i}"))));
        groups.extend(
            (0..51).map(|i| group(&format!("f{i}"), Some(1), Some((1, ObservedState::Failed)), None)),
        );
        let p = plan(&groups, t(0), TEN_MIN, budget);
        assert_eq!(p.spread, 251);
        assert_eq!(p.window.interval, Duration::from_secs(660));
        for (g, at) in p.marks.iter().filter(|(g, _)| g.starts_with(['c', 'f'])) {
            assert_eq!(*at, next_slot(g, t(0), Duration::from_secs(660)));
        }
    }
}
