//! Fire instants and what to do about them: the latest fire due, catch-up within a window, skip
//! beyond it. Pure: every function takes "now".
//!
//! Instants come from [`crate::spec::schedule`] (EventBridge semantics), so every replica computes the
//! same ones; a `rate(...)` is anchored at the schedule's recorded `created_at`.

use chrono::{DateTime, Duration, Utc};

use crate::spec::schedule::Schedule as Expression;

/// What the runtime does about one schedule at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Nothing is due; the next fire is at `next` (`None`: the schedule never fires again).
    Wait { next: Option<DateTime<Utc>> },
    /// `fire` is due and within the catch-up window: claim it and run it. Earlier unhandled fires, if
    /// any, are not run (only the latest missed fire is caught up).
    Run {
        fire: DateTime<Utc>,
        next: Option<DateTime<Utc>>,
    },
    /// `fire`, the latest unhandled fire, is older than the catch-up window: record it as skipped.
    Skip {
        fire: DateTime<Utc>,
        next: Option<DateTime<Utc>>,
    },
}

/// The latest fire `f` of `expression` with `floor < f <= until` (`anchor` anchors a rate).
///
/// Searches backwards from `until` in doubling steps, so a schedule unhandled for a year costs a few
/// dozen next-fire computations, not one per missed fire.
pub fn latest_fire_in(
    expression: &Expression,
    anchor: DateTime<Utc>,
    floor: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    if until <= floor {
        return None;
    }
    let mut step = Duration::minutes(1);
    loop {
        let start = until.checked_sub_signed(step).map_or(floor, |s| s.max(floor));
        if let Some(mut fire) = expression.next_fire(start, anchor).filter(|f| *f <= until) {
            while let Some(next) = expression.next_fire(fire, anchor).filter(|f| *f <= until) {
                fire = next;
            }
            return Some(fire);
        }
        if start == floor {
            return None;
        }
        step = step.checked_mul(2).unwrap_or(Duration::MAX);
    }
}

/// The decision for a schedule whose fires up to `handled` (its `last_fire`, or its `created_at`
/// when it never fired) are dealt with, at `now`, with a catch-up window of `catch_up`.
pub fn decide(
    expression: &Expression,
    created_at: DateTime<Utc>,
    handled: DateTime<Utc>,
    now: DateTime<Utc>,
    catch_up: Duration,
) -> Decision {
    let next = expression.next_fire(now.max(handled), created_at);
    match latest_fire_in(expression, created_at, handled, now) {
        None => Decision::Wait { next },
        Some(fire) if now - fire <= catch_up => Decision::Run { fire, next },
        Some(fire) => Decision::Skip { fire, next },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::schedule::tests::at;

    fn expr(s: &str) -> Expression {
        Expression::parse(s).expect("valid expression")
    }

    const HOUR: Duration = Duration::hours(1);

    /// Drives `expression` with an injected clock that visits every minute from `from` to `to`,
    /// treating each `Run` as handled, and returns the fires run.
    fn fires_between(expression: &str, created: &str, from: &str, to: &str) -> Vec<String> {
        let e = expr(expression);
        let created = at(created);
        let (mut now, end) = (at(from), at(to));
        let mut handled = created;
        let mut out = Vec::new();
        while now <= end {
            match decide(&e, created, handled, now, HOUR) {
                Decision::Run { fire, next } => {
                    assert!(next.is_some_and(|n| n > now), "next {next:?} after {now}");
                    out.push(fire.to_rfc3339());
                    handled = fire;
                }
                Decision::Skip { fire, .. } => panic!("nothing is late when visited each minute: {fire}"),
                Decision::Wait { .. } => {}
            }
            now += Duration::minutes(1);
        }
        out
    }

    #[test]
    fn cron_fires_over_a_month_end_and_a_leap_day() {
        // The last day of the month, at 23:30: Feb 29 in a leap year, then Mar 31.
        assert_eq!(
            fires_between(
                "cron(30 23 L * ? *)",
                "2028-02-27T00:00:00Z",
                "2028-02-28T00:00:00Z",
                "2028-03-01T00:30:00Z"
            ),
            vec!["2028-02-29T23:30:00+00:00"]
        );
        // Every day at 00:00 across Feb 28 → 29 → Mar 1 2028.
        assert_eq!(
            fires_between(
                "cron(0 0 * * ? *)",
                "2028-02-27T12:00:00Z",
                "2028-02-27T12:00:00Z",
                "2028-03-01T00:00:00Z"
            ),
            vec![
                "2028-02-28T00:00:00+00:00",
                "2028-02-29T00:00:00+00:00",
                "2028-03-01T00:00:00+00:00"
            ]
        );
        // The 29th of every month: no fire in February 2027.
        assert_eq!(
            fires_between(
                "cron(0 6 29 * ? *)",
                "2027-01-01T00:00:00Z",
                "2027-01-28T00:00:00Z",
                "2027-03-30T00:00:00Z"
            ),
            vec!["2027-01-29T06:00:00+00:00", "2027-03-29T06:00:00+00:00"]
        );
    }

    #[test]
    fn rate_fires_are_anchored_at_creation_not_at_start() {
        // Created at 10:17:05; the process starts at 11:00: fires at 12:17:05, 14:17:05.
        assert_eq!(
            fires_between(
                "rate(2 hours)",
                "2028-02-28T10:17:05Z",
                "2028-02-28T11:00:00Z",
                "2028-02-28T15:00:00Z"
            ),
            vec!["2028-02-28T12:17:05+00:00", "2028-02-28T14:17:05+00:00"]
        );
        // rate(1 day) across the leap day keeps its time of day.
        assert_eq!(
            fires_between(
                "rate(1 day)",
                "2028-02-27T08:00:00Z",
                "2028-02-28T00:00:00Z",
                "2028-03-01T09:00:00Z"
            ),
            vec![
                "2028-02-28T08:00:00+00:00",
                "2028-02-29T08:00:00+00:00",
                "2028-03-01T08:00:00+00:00"
            ]
        );
    }

    #[test]
    fn a_fire_at_creation_does_not_count() {
        let e = expr("cron(0 10 * * ? *)");
        let created = at("2026-05-01T10:00:00Z");
        assert_eq!(
            decide(&e, created, created, created + Duration::minutes(5), HOUR),
            Decision::Wait {
                next: Some(at("2026-05-02T10:00:00Z"))
            }
        );
    }

    #[test]
    fn catch_up_runs_only_the_latest_missed_fire_within_the_window() {
        let e = expr("cron(0 * * * ? *)");
        let created = at("2026-05-01T00:00:00Z");
        let handled = at("2026-05-01T03:00:00Z");
        // Down from 03:10 to 07:20: fires 04:00 … 07:00 were missed; 07:00 is 20 minutes old.
        let now = at("2026-05-01T07:20:00Z");
        assert_eq!(
            decide(&e, created, handled, now, HOUR),
            Decision::Run {
                fire: at("2026-05-01T07:00:00Z"),
                next: Some(at("2026-05-01T08:00:00Z"))
            }
        );
        // Once run (handled = 07:00) nothing else is due.
        assert!(matches!(
            decide(&e, created, at("2026-05-01T07:00:00Z"), now, HOUR),
            Decision::Wait { .. }
        ));
        // A daily fire missed by 5 hours, with a 1-hour window: skipped, once.
        let daily = expr("cron(0 2 * * ? *)");
        let now = at("2026-05-02T07:00:00Z");
        let d = decide(&daily, created, at("2026-05-01T02:00:00Z"), now, HOUR);
        assert_eq!(
            d,
            Decision::Skip {
                fire: at("2026-05-02T02:00:00Z"),
                next: Some(at("2026-05-03T02:00:00Z"))
            }
        );
        assert!(matches!(
            decide(&daily, created, at("2026-05-02T02:00:00Z"), now, HOUR),
            Decision::Wait { .. }
        ));
        // Exactly at the window's edge still runs.
        assert!(matches!(
            decide(
                &daily,
                created,
                at("2026-05-01T02:00:00Z"),
                at("2026-05-02T03:00:00Z"),
                HOUR
            ),
            Decision::Run { .. }
        ));
    }

    #[test]
    fn a_year_of_missed_minutes_is_found_quickly() {
        let e = expr("rate(1 minute)");
        let created = at("2025-01-01T00:00:30Z");
        let now = at("2026-01-01T00:00:00Z");
        assert_eq!(
            latest_fire_in(&e, created, created, now),
            Some(at("2025-12-31T23:59:30Z"))
        );
        // A cron whose years are over never fires again.
        let past = expr("cron(0 12 1 1 ? 2025)");
        assert_eq!(
            decide(&past, created, at("2025-01-01T12:00:00Z"), now, HOUR),
            Decision::Wait { next: None }
        );
    }
}
