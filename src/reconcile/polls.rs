//! When to look at a pending resource again: near its expected completion, within its kind's bounds.
//!
//! Pure: the reconciler gives the time since the resource was created and what it expects the work
//! to take (the last duration of the same kind in the same group, else the kind's
//! `expected_secs` setting); this says how long to wait before the next describe or listing.

use std::time::Duration;

/// The bounds and the expectation of one resource kind.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PollPolicy {
    /// Shortest wait between polls (the density around the expected completion).
    pub min: Duration,
    /// Longest wait between polls: a pending resource is never left unpolled longer than this.
    pub max: Duration,
    /// How long the work is expected to take, when known.
    pub expected: Option<Duration>,
}

impl PollPolicy {
    /// The wait before the next poll of a resource pending for `elapsed`.
    ///
    /// Before the expected completion: sleep until it (sparse polls, `max` apart at most). At and
    /// after it: poll `min` apart, backing off in proportion to the overrun (half of it), so an
    /// expectation that was far too short costs a geometric number of polls, not a linear one. With
    /// no expectation: the classic doubling from `min` (the wait equals the time already waited).
    pub fn next_wait(&self, elapsed: Duration) -> Duration {
        let raw = match self.expected {
            Some(e) if elapsed < e => e - elapsed,
            Some(e) => (elapsed - e) / 2,
            None => elapsed,
        };
        let max = self.max.max(self.min);
        raw.max(self.min).min(max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    fn policy(expected: Option<f64>) -> PollPolicy {
        PollPolicy {
            min: secs(60.0),
            max: secs(600.0),
            expected: expected.map(secs),
        }
    }

    /// Walks a resource that stays pending for `until` seconds: the gaps between its polls.
    fn gaps(p: &PollPolicy, until: f64) -> Vec<f64> {
        let mut t = 0.0;
        let mut out = Vec::new();
        while t < until {
            let w = p.next_wait(secs(t)).as_secs_f64();
            out.push(w);
            t += w;
        }
        out
    }

    #[test]
    fn a_pending_resource_is_never_left_unpolled_past_its_max_interval() {
        for expected in [None, Some(0.0), Some(30.0), Some(7200.0), Some(1e9)] {
            let p = policy(expected);
            for g in gaps(&p, 200_000.0) {
                assert!((60.0..=600.0).contains(&g), "{expected:?}: gap {g}");
            }
        }
        // Bounds given the wrong way round still never exceed the larger one.
        let odd = PollPolicy {
            min: secs(10.0),
            max: secs(5.0),
            expected: Some(secs(1e6)),
        };
        assert_eq!(odd.next_wait(Duration::ZERO), secs(10.0));
    }

    #[test]
    fn polls_are_sparse_before_the_expected_completion_and_dense_around_it() {
        let p = policy(Some(7200.0));
        // A 2 h training: the 600 s cap before, a poll landing exactly at 2 h.
        assert_eq!(p.next_wait(secs(0.0)), secs(600.0));
        assert_eq!(p.next_wait(secs(6900.0)), secs(300.0));
        assert_eq!(p.next_wait(secs(7100.0)), secs(100.0).max(secs(60.0)));
        // Just after: the minimum, then backing off with the overrun.
        assert_eq!(p.next_wait(secs(7200.0)), secs(60.0));
        assert_eq!(p.next_wait(secs(7400.0)), secs(100.0));
        assert_eq!(p.next_wait(secs(20_000.0)), secs(600.0));
        // Polls while training: 12 gaps of at most 600 s reach 2 h, not the 17 of doubling.
        let before: Vec<f64> = gaps(&p, 7200.0);
        assert_eq!(before.len(), 12, "{before:?}");
        assert!((before.iter().sum::<f64>() - 7200.0).abs() < 1e-6);
    }

    #[test]
    fn without_an_expectation_the_wait_doubles_from_the_minimum() {
        let p = policy(None);
        assert_eq!(gaps(&p, 1000.0), vec![60.0, 60.0, 120.0, 240.0, 480.0, 600.0]);
    }
}
