//! What the periodic resync costs a fleet of converged groups, before and after the spread and the
//! budget: a simulation in virtual time driving the daemon's own resync planner.
//!
//! Model: `--groups` converged dataset groups, `--replicas` replicas each resyncing every
//! `--interval` seconds at its own phase, one account quota of `--tps` Personalize calls per second.
//! A resync of a group costs `CALLS_PER_RESYNC` calls; a new group's create arrives every 10 s and
//! costs one call. Each simulated second, the due groups are started earliest due first (the
//! dispatcher's order) while the second's calls last. "Before" marks every group due at each tick
//! (what `resync_once` did); "after" marks what `daemon::resync::plan` says. The store's rule is
//! kept: a mark never moves a due time later.
//!
//! Prints, per mode: resync calls per second (mean, and the peak over 10 s as a share of the
//! quota), resyncs per group per configured interval, the interval in force, and how long the
//! creates waited (median, p99, max; a create still queued at the end counts with its wait so far).
//!
//! `--busy F` adds other work taking the share F of the quota: polls of pending groups, one call
//! each, falling due evenly. A third mode orders the three kinds by the daemon's own rule,
//! `daemon::queue::Rank` (a create is a new file, a poll a group under way, a resync the rest of
//! the listing; within a rank, earliest due first), where the second starts whatever fell due
//! first (the order before new files went first).
//!
//! `cargo run --release --example resync_spread -- [--groups 10000] [--replicas 3] [--tps 20]
//! [--share 0.25] [--interval 600] [--hours 3] [--busy 0]`

#[path = "support/fleet.rs"]
#[allow(dead_code)]
mod fleet;

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use fleet::{arg, percentile};
use personalize_ops::daemon::queue::Rank;
use personalize_ops::daemon::resync::{self, CALLS_PER_RESYNC, ResyncBudget};
use personalize_ops::store::{GroupBrief, ObservedState};

/// The simulation's numbers.
#[derive(Clone, Copy)]
struct Run {
    groups: usize,
    replicas: usize,
    tps: f64,
    share: f64,
    interval_secs: i64,
    seconds: i64,
    /// Share of the quota other work takes: polls of pending groups, one call each, falling due
    /// evenly (each due at its poll time).
    busy: f64,
}

/// How the resync marks and the dispatcher orders.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// Every group marked due at each tick (what `resync_once` did before the slots).
    Before,
    /// `daemon::resync::plan`'s marks; due groups started earliest due first.
    Slots,
    /// The same marks; started in the dispatcher's order ([`Rank`]): new files, then groups under
    /// way, then the rest.
    SlotsRanked,
}

/// What one mode did.
struct Outcome {
    resync_calls: f64,
    peak_10s: f64,
    resyncs: u64,
    window_secs: f64,
    create_waits: Vec<f64>,
    /// Creates never started before the end.
    unserved: usize,
    /// Polls of pending groups still waiting at the end.
    polls_waiting: usize,
    /// Groups due for a resync at the end and not started.
    resyncs_waiting: usize,
}

const CREATE_EVERY_SECS: i64 = 10;
const START_MS: i64 = 1_800_000_000_000;

fn at(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

fn converged_brief(name: &str, due_at: Option<i64>) -> GroupBrief {
    GroupBrief {
        name: name.to_string(),
        desired_generation: Some(1),
        desired_source: None,
        observed: Some((1, ObservedState::Converged)),
        due_at: due_at.map(at),
    }
}

/// Due groups by due time; entries whose group's due time moved since are skipped when popped.
struct Due {
    at: Vec<Option<i64>>,
    heap: BinaryHeap<Reverse<(i64, usize)>>,
}

impl Due {
    /// The store's `mark_due`: keeps the earlier of the two.
    fn mark(&mut self, group: usize, ms: i64) {
        if self.at[group].is_none_or(|d| ms < d) {
            self.at[group] = Some(ms);
            self.heap.push(Reverse((ms, group)));
        }
    }

    /// The earliest due group at or before `until`, taken off the index.
    fn next_before(&mut self, until: i64) -> Option<(i64, usize)> {
        while let Some(Reverse((ms, g))) = self.heap.peek().copied() {
            if ms > until {
                return None;
            }
            self.heap.pop();
            if self.at[g] == Some(ms) {
                self.at[g] = None;
                return Some((ms, g));
            }
        }
        None
    }
}

fn simulate(run: Run, mode: Mode) -> Outcome {
    let names: Vec<String> = (0..run.groups).map(|i| format!("customer-{i:06}")).collect();
    let mut due = Due {
        at: vec![None; run.groups],
        heap: BinaryHeap::new(),
    };
    let budget = ResyncBudget {
        calls_per_second: run.tps,
        share: run.share,
    };
    let base = Duration::from_secs(run.interval_secs as u64);
    let phase = |r: usize| 7_000 + (r as i64) * run.interval_secs * 1000 / run.replicas as i64;
    let mut creates: std::collections::VecDeque<i64> = Default::default();
    let (mut resync_calls, mut resyncs, mut window_secs) = (0.0, 0u64, run.interval_secs as f64);
    let mut per_second: Vec<f64> = Vec::with_capacity(run.seconds as usize);
    let mut create_waits = Vec::new();
    let mut credit = 0.0;
    let mut polls: std::collections::VecDeque<i64> = Default::default();
    let mut poll_credit = 0.0;
    for s in 0..run.seconds {
        let now = START_MS + s * 1000;
        for r in 0..run.replicas {
            let p = phase(r);
            if s * 1000 >= p && (s * 1000 - p) % (run.interval_secs * 1000) < 1000 {
                if mode != Mode::Before {
                    let summaries: Vec<GroupBrief> = names
                        .iter()
                        .zip(&due.at)
                        .map(|(n, d)| converged_brief(n, *d))
                        .collect();
                    let plan = resync::plan(&summaries, at(now), base, budget);
                    window_secs = plan.window.interval.as_secs_f64();
                    for (name, when) in plan.marks {
                        let i = names.binary_search(&name).unwrap_or_default();
                        due.mark(i, when.timestamp_millis());
                    }
                } else {
                    for g in 0..run.groups {
                        due.mark(g, now);
                    }
                }
            }
        }
        if s % CREATE_EVERY_SECS == 5 {
            creates.push_back(now);
        }
        poll_credit += run.busy * run.tps;
        while poll_credit >= 1.0 {
            poll_credit -= 1.0;
            polls.push_back(now);
        }
        // This second's calls, earliest due first: a create is due at its arrival.
        credit = (credit + run.tps).min(run.tps);
        let mut spent_on_resync = 0.0;
        let end = now + 999;
        loop {
            let resync_next = due
                .heap
                .peek()
                .map(|Reverse((ms, _))| *ms)
                .filter(|ms| *ms <= end);
            let create_next = creates.front().copied();
            let poll_next = polls.front().copied();
            // The earliest due of the three kinds (a create wins ties), or with `SlotsRanked` the
            // daemon's rank first: a create is a new file, a poll a group under way here.
            let next = [(create_next, 0), (poll_next, 1), (resync_next, 2)]
                .into_iter()
                .filter_map(|(due, kind)| due.map(|d| (d, kind)))
                .min_by_key(|&(due, kind)| {
                    let rank = match mode {
                        Mode::SlotsRanked => Rank::of(kind == 0, kind == 1),
                        Mode::Before | Mode::Slots => Rank::Listed,
                    };
                    (rank, due, kind)
                });
            match next.map(|(_, kind)| kind) {
                None => break,
                Some(0) => {
                    if credit < 1.0 {
                        break;
                    }
                    credit -= 1.0;
                    let arrived = creates.pop_front().unwrap_or(now);
                    create_waits.push((now - arrived) as f64 / 1000.0);
                }
                Some(1) => {
                    if credit < 1.0 {
                        break;
                    }
                    credit -= 1.0;
                    polls.pop_front();
                }
                Some(_) => {
                    if credit < CALLS_PER_RESYNC {
                        break;
                    }
                    let Some(_) = due.next_before(end) else { break };
                    credit -= CALLS_PER_RESYNC;
                    spent_on_resync += CALLS_PER_RESYNC;
                    resyncs += 1;
                }
            }
        }
        resync_calls += spent_on_resync;
        per_second.push(spent_on_resync);
    }
    // Creates still queued at the end count with what they waited so far (a lower bound).
    let end = START_MS + run.seconds * 1000;
    let unserved = creates.len();
    let resyncs_waiting = due.at.iter().flatten().filter(|ms| **ms < end).count();
    create_waits.extend(creates.iter().map(|arrived| (end - arrived) as f64 / 1000.0));
    let peak_10s = per_second
        .windows(10)
        .map(|w| w.iter().sum::<f64>() / 10.0)
        .fold(0.0, f64::max);
    create_waits.sort_by(f64::total_cmp);
    Outcome {
        resync_calls: resync_calls / run.seconds as f64,
        peak_10s,
        resyncs,
        window_secs,
        create_waits,
        unserved,
        polls_waiting: polls.len(),
        resyncs_waiting,
    }
}

fn main() {
    let run = Run {
        groups: arg("--groups", 10_000.0) as usize,
        replicas: (arg("--replicas", 3.0) as usize).max(1),
        tps: arg("--tps", 20.0),
        share: arg("--share", 0.25),
        interval_secs: (arg("--interval", 600.0) as i64).max(1),
        seconds: (arg("--hours", 3.0) * 3600.0) as i64,
        busy: arg("--busy", 0.0).clamp(0.0, 1.0),
    };
    println!(
        "{} converged groups, {} replicas, {} calls/s, share {}, interval {} s, {} s simulated, polls take {:.0} % of the quota",
        run.groups,
        run.replicas,
        run.tps,
        run.share,
        run.interval_secs,
        run.seconds,
        100.0 * run.busy
    );
    println!(
        "| mode | resync calls/s (mean) | peak 10 s (share of quota) | resyncs per group per {} s | interval in force (s) | create wait p50 / p99 / max (s) | creates never started | polls waiting at the end | resyncs waiting at the end |",
        run.interval_secs
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for (name, mode) in [
        ("before: all due at every tick", Mode::Before),
        ("after: slots + budget", Mode::Slots),
        ("after, the dispatcher's rank", Mode::SlotsRanked),
    ] {
        let o = simulate(run, mode);
        let intervals = run.seconds as f64 / run.interval_secs as f64;
        println!(
            "| {name} | {:.2} | {:.0} % | {:.2} | {:.0} | {:.0} / {:.0} / {:.0} | {} of {} | {} | {} |",
            o.resync_calls,
            100.0 * o.peak_10s / run.tps,
            o.resyncs as f64 / run.groups as f64 / intervals,
            o.window_secs,
            percentile(&o.create_waits, 0.5),
            percentile(&o.create_waits, 0.99),
            o.create_waits.last().copied().unwrap_or(0.0),
            o.unserved,
            o.create_waits.len(),
            o.polls_waiting,
            o.resyncs_waiting,
        );
    }
}
