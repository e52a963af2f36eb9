//! Which due groups the dispatcher starts next: new files first, then groups already under way,
//! then the rest, with the poll times this replica recorded kept in memory so a waiting group needs
//! no store query.
//!
//! Pure: the dispatcher feeds it the store's due listings and the ends of turns, and asks it which
//! groups to start. Order ([`Rank`]): groups with a new parameter file (the listing's
//! [`DueGroup::new_file`], listed first by the store however many others are due earlier), in the
//! listing's order; then groups this replica has started and not yet seen converge or fail, oldest
//! start first; then the rest of the listing in its order (earliest due first: resync slots,
//! retries, polls of groups started elsewhere).
//!
//! A new file's first turn makes its creates, so creates are never starved by polls and resyncs
//! however large their backlog (issue 14: creates before describes). Polls are not starved either:
//! a group is new only until its first pass is recorded (one turn per uploaded file), and files are
//! uploaded by people, so a poll waits at most for the new files that arrive before a worker frees
//! up; each group under way has finite work left, and no group that is neither new nor under way is
//! admitted meanwhile, so the quota goes to finishing groups rather than advancing all of them one
//! step at a time.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use crate::store::DueGroup;

/// Where a due group stands in the dispatcher's order: lower first. Within a rank, new files and
/// listed groups keep the listing's order, groups under way their order of first start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rank {
    /// A parameter file newer than what the group last observed: its turn makes creates.
    NewFile,
    /// A group this replica started and has not seen converge or fail: a poll at its poll time.
    UnderWay,
    /// Anything else due: a resync slot, a failed group's retry, an operator's mark, a poll of a
    /// group another replica started.
    Listed,
}

impl Rank {
    /// The rank of a due group: `new_file` as the store lists it, `under_way` on this replica.
    pub fn of(new_file: bool, under_way: bool) -> Self {
        if new_file {
            Self::NewFile
        } else if under_way {
            Self::UnderWay
        } else {
            Self::Listed
        }
    }
}

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
    listed: Vec<DueGroup>,
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

    /// The store's due groups, new files first, earliest due first: replaces the previous listing,
    /// less the groups whose turn ended here after the listing started (see [`Queue::listing_started`]).
    pub(crate) fn listed(&mut self, mut due: Vec<DueGroup>) {
        if let Some(ended) = self.ended_while_listing.take() {
            due.retain(|g| !ended.contains(&g.name));
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
        let mut candidates: Vec<(Rank, u64, &String)> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let due_here = self
            .waiting
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(g, _)| (g, false));
        let listed = self.listed.iter().map(|d| (&d.name, d.new_file));
        for (i, (g, new_file)) in (0u64..).zip(listed.chain(due_here)) {
            if busy(g) || !seen.insert(g.as_str()) {
                continue;
            }
            let seq = self.started.get(g).copied();
            let rank = Rank::of(new_file, seq.is_some());
            let order = if rank == Rank::UnderWay {
                seq.unwrap_or(i)
            } else {
                i
            };
            candidates.push((rank, order, g));
        }
        candidates.sort_by_key(|(rank, order, _)| (*rank, *order));
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
        self.listed.retain(|g| !picked.contains(&g.name));
        picked
    }

    /// A turn on `group` ended as `left` says.
    pub(crate) fn ended(&mut self, group: &str, left: Left) {
        if let Some(ended) = &mut self.ended_while_listing {
            ended.insert(group.to_string());
        }
        // The listing in hand may have been read while this turn was under way, before its write:
        // the next listing says whether the group is due (a new file for it, a mark).
        self.listed.retain(|g| g.name != group);
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

    /// A listing of groups due for a poll or a resync (no new file).
    fn listing(v: &[&str]) -> Vec<DueGroup> {
        v.iter()
            .map(|s| DueGroup {
                name: (*s).to_string(),
                new_file: false,
            })
            .collect()
    }

    /// A listing as the store gives it: the groups with a new file first.
    fn with_new_files(new: &[&str], rest: &[&str]) -> Vec<DueGroup> {
        let mut due = listing(new);
        for d in &mut due {
            d.new_file = true;
        }
        due.extend(listing(rest));
        due
    }

    #[test]
    fn the_rank_puts_new_files_before_groups_under_way_before_the_rest() {
        assert_eq!(Rank::of(true, true), Rank::NewFile);
        assert_eq!(Rank::of(true, false), Rank::NewFile);
        assert_eq!(Rank::of(false, true), Rank::UnderWay);
        assert_eq!(Rank::of(false, false), Rank::Listed);
        assert!(Rank::NewFile < Rank::UnderWay && Rank::UnderWay < Rank::Listed);
    }

    #[test]
    fn new_files_are_started_before_polls_under_way_and_resyncs() {
        let mut q = Queue::default();
        q.listed(listing(&["p1", "p2", "p3"]));
        assert_eq!(q.pick(t(0), 3, |_| false), names(&["p1", "p2", "p3"]));
        for g in ["p1", "p2", "p3"] {
            q.ended(g, Left::Waiting(t(5)));
        }
        // Polls due here since t(5), resyncs listed, and two new files: the files go first, in the
        // listing's order, even with room for one only.
        q.listed(with_new_files(&["n1", "n2"], &["r1", "p2", "r2"]));
        assert_eq!(q.pick(t(10), 1, |_| false), names(&["n1"]));
        assert_eq!(q.pick(t(10), 2, |_| false), names(&["n2", "p1"]));
        // Then the polls under way (oldest start first), then the listing.
        assert_eq!(q.pick(t(10), 2, |_| false), names(&["p2", "p3"]));
        assert_eq!(q.pick(t(10), 5, |_| false), names(&["r1", "r2"]));
        // A new file of a group under way is a new file: before the other polls.
        q.ended("p1", Left::Waiting(t(20)));
        q.ended("p2", Left::Waiting(t(20)));
        q.listed(with_new_files(&["p2"], &[]));
        assert_eq!(q.pick(t(20), 1, |_| false), names(&["p2"]));
        // A busy new file waits without holding up the others.
        q.ended("p2", Left::Waiting(t(30)));
        q.listed(with_new_files(&["n3"], &[]));
        assert_eq!(q.pick(t(30), 1, |g| g == "n3"), names(&["p1"]));
    }

    #[test]
    fn polls_under_way_are_started_once_the_new_files_are() {
        // One worker; a backlog of polls under way, new files arriving one per round for a while:
        // every new file is started in the round it is listed, and every poll once they stop.
        let mut q = Queue::default();
        let polls: Vec<String> = (0..5).map(|i| format!("p{i}")).collect();
        q.listed(listing(&polls.iter().map(String::as_str).collect::<Vec<_>>()));
        assert_eq!(q.pick(t(0), 5, |_| false), polls);
        for g in &polls {
            q.ended(g, Left::Waiting(t(1)));
        }
        let mut polled = Vec::new();
        for round in 1..20 {
            let new = format!("n{round}");
            let files: Vec<&str> = if round < 10 { vec![new.as_str()] } else { vec![] };
            q.listed(with_new_files(&files, &[]));
            let picked = q.pick(t(round), 1, |_| false);
            if round < 10 {
                assert_eq!(picked, vec![new.clone()], "round {round}");
                q.ended(&new, Left::Finished);
            } else if let Some(g) = picked.first() {
                polled.push(g.clone());
                q.ended(g, Left::Finished);
            }
        }
        assert_eq!(
            polled, polls,
            "every poll, oldest start first, once no file is new"
        );
    }

    #[test]
    fn groups_under_way_go_before_new_ones_oldest_start_first() {
        let mut q = Queue::default();
        q.listed(listing(&["a", "b", "c"]));
        assert_eq!(q.pick(t(0), 2, |_| false), names(&["a", "b"]));
        q.ended("b", Left::Waiting(t(5)));
        q.ended("a", Left::Waiting(t(5)));
        // New groups listed earlier than a's and b's next poll time: still after them once due.
        q.listed(listing(&["c", "d", "b", "a"]));
        assert_eq!(q.pick(t(5), 3, |_| false), names(&["a", "b", "c"]));
        // Nothing under way is due: new groups take the room (the quota is not left idle).
        q.ended("a", Left::Waiting(t(60)));
        q.ended("b", Left::Finished);
        assert_eq!(q.pick(t(6), 3, |_| false), names(&["d"]));
    }

    #[test]
    fn a_waiting_group_is_started_at_its_poll_time_without_a_store_listing() {
        let mut q = Queue::default();
        q.listed(listing(&["g"]));
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
        q.listed(listing(&["a", "b"]));
        assert_eq!(q.pick(t(0), 2, |_| false), names(&["a", "b"]));
        // The store is being listed while a's turn records its next poll time and b converges.
        q.listing_started();
        q.ended("a", Left::Waiting(t(30)));
        q.ended("b", Left::Finished);
        // Read before those writes: both still due, with a new group.
        q.listed(listing(&["a", "b", "c"]));
        assert_eq!(
            q.pick(t(1), 5, |_| false),
            names(&["c"]),
            "a waits for its poll time, b is done"
        );
        assert_eq!(q.pick(t(30), 5, |_| false), names(&["a"]));
        // A later listing that still has b (a new file for it) is believed.
        q.listing_started();
        q.listed(listing(&["b"]));
        assert_eq!(q.pick(t(31), 5, |_| false), names(&["b"]));
        // A new listing drops the one in hand, failed or not: nothing is started from a stale one.
        q.listed(listing(&["d", "e", "f"]));
        q.listing_started();
        q.ended("d", Left::Finished);
        q.listing_failed();
        assert!(q.pick(t(32), 5, |_| false).is_empty());
        q.listing_started();
        q.listed(listing(&["d", "e"]));
        assert_eq!(
            q.pick(t(33), 5, |_| false),
            names(&["d", "e"]),
            "the next is believed"
        );
    }

    #[test]
    fn a_listing_read_while_a_turn_was_under_way_does_not_start_the_group_again() {
        let mut q = Queue::default();
        q.listed(listing(&["c", "a"]));
        assert_eq!(q.pick(t(0), 1, |_| false), names(&["c"]));
        // Listed while c's turn runs (c busy, so still listed), read before c recorded its result.
        q.listing_started();
        q.listed(listing(&["c", "a"]));
        assert_eq!(q.pick(t(0), 1, |g| g == "c"), names(&["a"]));
        q.ended("a", Left::Finished);
        q.ended("c", Left::Finished);
        assert!(q.pick(t(1), 1, |_| false).is_empty(), "neither is started again");
    }

    #[test]
    fn busy_groups_and_duplicates_are_skipped_and_room_is_respected() {
        let mut q = Queue::default();
        q.listed(listing(&["a", "b", "a", "c"]));
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
        q.listed(listing(&["u1", "u2", "u3"]));
        let mut turns_left: HashMap<String, u32> = HashMap::new();
        let mut started = Vec::new();
        for round in 0..100 {
            let now = t(round);
            let names: Vec<String> = (0..5).map(|i| format!("new{}", (round + i) % 7)).collect();
            q.listed(listing(&names.iter().map(String::as_str).collect::<Vec<_>>()));
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
