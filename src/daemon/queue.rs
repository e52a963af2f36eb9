//! Which due groups the dispatcher starts next: groups already under way before new ones, and the
//! poll times this replica recorded kept in memory so a waiting group needs no store query.
//!
//! Pure: the dispatcher feeds it the store's due listings and the ends of turns, and asks it which
//! groups to start. Order: groups this replica has started and not yet seen converge or fail, oldest
//! start first, then the store's listing in its order (earliest due first). A new group therefore
//! waits only while groups under way keep every worker busy; each of those has finite work left and
//! no new group is admitted meanwhile, so the wait is bounded, and the quota goes to finishing groups
//! rather than advancing all of them one step at a time.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

/// How a turn left its group, as far as the order is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Left {
    /// Still under way: due again at this instant (recorded in the store too).
    Waiting(DateTime<Utc>),
    /// Converged, failed, forgotten, or now another replica's: no longer under way here.
    Finished,
    /// The store failed or shutdown stopped the turn: the store still says when it is due.
    Unchanged,
}

/// The dispatcher's memory of due and waiting groups.
#[derive(Debug, Default)]
pub(crate) struct Queue {
    /// Groups under way here, with the order in which they were first started.
    started: HashMap<String, u64>,
    next_seq: u64,
    /// When each group under way is due again, as its last turn recorded it.
    waiting: HashMap<String, DateTime<Utc>>,
    /// The store's last due listing, less what has been started since.
    listed: Vec<String>,
    /// While a listing is being read: the groups whose turn ended since it started. The listing may
    /// predate their turn's write (a group due then but waiting or converged now), so it is not
    /// believed about them; the next listing is.
    ended_while_listing: Option<std::collections::HashSet<String>>,
}

impl Queue {
    /// A due listing is being read from the store from now on ([`Queue::listed`] ends it). The
    /// listing in hand is dropped: it is a dispatch interval old, and another replica may have
    /// worked on its groups since (a converged group started from it would run a pass for nothing);
    /// until the new one comes, the groups waiting here are started from memory.
    pub(crate) fn listing_started(&mut self) {
        self.listed.clear();
        self.ended_while_listing = Some(Default::default());
    }

    /// The store's due groups, earliest due first: replaces the previous listing, less the groups
    /// whose turn ended here after the listing started (see [`Queue::listing_started`]).
    pub(crate) fn listed(&mut self, mut due: Vec<String>) {
        if let Some(ended) = self.ended_while_listing.take() {
            due.retain(|g| !ended.contains(g));
        }
        self.listed = due;
    }

    /// The listing under way failed: nothing replaces the previous one.
    pub(crate) fn listing_failed(&mut self) {
        self.ended_while_listing = None;
    }

    /// Groups waiting here, to size the store's listing so that new groups still fit in it.
    pub(crate) fn waiting_len(&self) -> usize {
        self.waiting.len()
    }

    /// Up to `room` groups to start now, skipping those `busy` says are taken (in flight here, or
    /// held by another replica). Each returned group counts as under way from now.
    pub(crate) fn pick(
        &mut self,
        now: DateTime<Utc>,
        room: usize,
        busy: impl Fn(&str) -> bool,
    ) -> Vec<String> {
        if room == 0 {
            return Vec::new();
        }
        let mut candidates: Vec<(Option<u64>, usize, &String)> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let due_here = self.waiting.iter().filter(|(_, at)| **at <= now).map(|(g, _)| g);
        for (i, g) in self
            .listed
            .iter()
            .enumerate()
            .chain(due_here.map(|g| (usize::MAX, g)))
        {
            if busy(g) || !seen.insert(g.as_str()) {
                continue;
            }
            candidates.push((self.started.get(g).copied(), i, g));
        }
        // Under way first (oldest start first), then the listing's order.
        candidates.sort_by_key(|(seq, i, _)| (seq.is_none(), seq.unwrap_or(0), *i));
        let picked: Vec<String> = candidates
            .into_iter()
            .take(room)
            .map(|(_, _, g)| g.clone())
            .collect();
        for g in &picked {
            self.waiting.remove(g);
            if !self.started.contains_key(g) {
                self.started.insert(g.clone(), self.next_seq);
                self.next_seq += 1;
            }
        }
        self.listed.retain(|g| !picked.contains(g));
        picked
    }

    /// A turn on `group` ended as `left` says.
    pub(crate) fn ended(&mut self, group: &str, left: Left) {
        if let Some(ended) = &mut self.ended_while_listing {
            ended.insert(group.to_string());
        }
        // The listing in hand may have been read while this turn was under way, before its write:
        // the next listing says whether the group is due (a new file for it, a mark).
        self.listed.retain(|g| g != group);
        match left {
            Left::Waiting(at) => {
                self.waiting.insert(group.to_string(), at);
            }
            Left::Finished => {
                self.started.remove(group);
                self.waiting.remove(group);
            }
            Left::Unchanged => {}
        }
    }

    /// The soonest instant a group waiting here is due again.
    pub(crate) fn next_due(&self) -> Option<DateTime<Utc>> {
        self.waiting.values().min().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: i64) -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp(1_700_000_000 + secs, 0).unwrap_or_default()
    }

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_string()).collect()
    }

    #[test]
    fn groups_under_way_go_before_new_ones_oldest_start_first() {
        let mut q = Queue::default();
        q.listed(names(&["a", "b", "c"]));
        assert_eq!(q.pick(t(0), 2, |_| false), names(&["a", "b"]));
        q.ended("b", Left::Waiting(t(5)));
        q.ended("a", Left::Waiting(t(5)));
        // New groups listed earlier than a's and b's next poll time: still after them once due.
        q.listed(names(&["c", "d", "b", "a"]));
        assert_eq!(q.pick(t(5), 3, |_| false), names(&["a", "b", "c"]));
        // Nothing under way is due: new groups take the room (the quota is not left idle).
        q.ended("a", Left::Waiting(t(60)));
        q.ended("b", Left::Finished);
        assert_eq!(q.pick(t(6), 3, |_| false), names(&["d"]));
    }

    #[test]
    fn a_waiting_group_is_started_at_its_poll_time_without_a_store_listing() {
        let mut q = Queue::default();
        q.listed(names(&["g"]));
        assert_eq!(q.pick(t(0), 1, |_| false), names(&["g"]));
        q.ended("g", Left::Waiting(t(10)));
        q.listed(Vec::new());
        assert_eq!(q.next_due(), Some(t(10)));
        assert!(q.pick(t(9), 4, |_| false).is_empty(), "not before its poll time");
        assert_eq!(q.pick(t(10), 4, |_| false), names(&["g"]));
        assert_eq!(q.next_due(), None, "taken: no longer waiting");
        // Converged: forgotten, so a later file starts it as a new group.
        q.ended("g", Left::Finished);
        assert_eq!(q.waiting_len(), 0);
        assert!(q.pick(t(100), 4, |_| false).is_empty());
    }

    #[test]
    fn a_listing_read_before_a_turn_ended_is_not_believed_about_that_group() {
        let mut q = Queue::default();
        q.listed(names(&["a", "b"]));
        assert_eq!(q.pick(t(0), 2, |_| false), names(&["a", "b"]));
        // The store is being listed while a's turn records its next poll time and b converges.
        q.listing_started();
        q.ended("a", Left::Waiting(t(30)));
        q.ended("b", Left::Finished);
        // Read before those writes: both still due, with a new group.
        q.listed(names(&["a", "b", "c"]));
        assert_eq!(
            q.pick(t(1), 5, |_| false),
            names(&["c"]),
            "a waits for its poll time, b is done"
        );
        assert_eq!(q.pick(t(30), 5, |_| false), names(&["a"]));
        // A later listing that still has b (a new file for it) is believed.
        q.listing_started();
        q.listed(names(&["b"]));
        assert_eq!(q.pick(t(31), 5, |_| false), names(&["b"]));
        // A new listing drops the one in hand, failed or not: nothing is started from a stale one.
        q.listed(names(&["d", "e", "f"]));
        q.listing_started();
        q.ended("d", Left::Finished);
        q.listing_failed();
        assert!(q.pick(t(32), 5, |_| false).is_empty());
        q.listing_started();
        q.listed(names(&["d", "e"]));
        assert_eq!(
            q.pick(t(33), 5, |_| false),
            names(&["d", "e"]),
            "the next is believed"
        );
    }

    #[test]
    fn a_listing_read_while_a_turn_was_under_way_does_not_start_the_group_again() {
        let mut q = Queue::default();
        q.listed(names(&["c", "a"]));
        assert_eq!(q.pick(t(0), 1, |_| false), names(&["c"]));
        // Listed while c's turn runs (c busy, so still listed), read before c recorded its result.
        q.listing_started();
        q.listed(names(&["c", "a"]));
        assert_eq!(q.pick(t(0), 1, |g| g == "c"), names(&["a"]));
        q.ended("a", Left::Finished);
        q.ended("c", Left::Finished);
        assert!(q.pick(t(1), 1, |_| false).is_empty(), "neither is started again");
    }

    #[test]
    fn busy_groups_and_duplicates_are_skipped_and_room_is_respected() {
        let mut q = Queue::default();
        q.listed(names(&["a", "b", "a", "c"]));
        assert_eq!(q.pick(t(0), 0, |_| false), Vec::<String>::new());
        assert_eq!(q.pick(t(0), 5, |g| g == "b"), names(&["a", "c"]));
        // The busy group stays listed for a later round.
        assert_eq!(q.pick(t(0), 5, |_| false), names(&["b"]));
        // A turn the store stopped leaves the group as the store has it (listed again when due).
        q.ended("b", Left::Unchanged);
        assert_eq!(q.next_due(), None);
    }

    #[test]
    fn no_new_group_waits_forever_behind_groups_under_way() {
        // Two workers; three groups under way, each finishing after a few turns; new groups listed
        // all along. Every new group is eventually started.
        let mut q = Queue::default();
        q.listed(names(&["u1", "u2", "u3"]));
        let mut turns_left: HashMap<String, u32> = HashMap::new();
        let mut started = Vec::new();
        for round in 0..100 {
            let now = t(round);
            q.listed((0..5).map(|i| format!("new{}", (round + i) % 7)).collect());
            for g in q.pick(now, 2, |_| false) {
                started.push(g.clone());
                let left = turns_left.entry(g.clone()).or_insert(3);
                *left -= 1;
                if *left == 0 {
                    turns_left.remove(&g);
                    q.ended(&g, Left::Finished);
                } else {
                    q.ended(&g, Left::Waiting(now));
                }
            }
        }
        for i in 0..7 {
            assert!(
                started.contains(&format!("new{i}")),
                "new{i} never started: {started:?}"
            );
        }
    }
}
