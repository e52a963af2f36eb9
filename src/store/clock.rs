//! Where the state store gets "now": the wall clock, or a manual clock that tests move by hand.
//!
//! Lease expiry and fire-claim TTLs compare against the caller's clock (DynamoDB conditions receive
//! `:now` from the client), so a manual clock makes expiry tests deterministic on every adapter.

use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use crate::locks::LockRecovering;
use chrono::{DateTime, Utc};

/// A source of the current time.
pub trait Clock: Send + Sync + fmt::Debug {
    fn now(&self) -> DateTime<Utc>;
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that only moves when told to.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<DateTime<Utc>>,
}

impl ManualClock {
    pub fn new(start: DateTime<Utc>) -> Self {
        Self {
            now: Mutex::new(start),
        }
    }

    pub fn set(&self, now: DateTime<Utc>) {
        *self.now.lock_recovering() = now;
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock_recovering();
        *now += chrono::Duration::from_std(by).unwrap_or(chrono::Duration::MAX);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock_recovering()
    }
}

/// Milliseconds since the Unix epoch, the stored form of every instant.
pub(crate) fn to_millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// The inverse of [`to_millis`]; out-of-range values clamp to the epoch rather than failing a read.
pub(crate) fn from_millis(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
}

/// `at + d`, saturating instead of overflowing.
pub(crate) fn plus(at: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(d)
        .ok()
        .and_then(|d| at.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let start = DateTime::from_timestamp(1_800_000_000, 0).expect("valid");
        let clock = ManualClock::new(start);
        assert_eq!(clock.now(), start);
        clock.advance(Duration::from_millis(1500));
        assert_eq!(to_millis(clock.now()) - to_millis(start), 1500);
        clock.set(start);
        assert_eq!(clock.now(), start);
    }

    #[test]
    fn millis_round_trip_and_saturate() {
        let t = DateTime::from_timestamp_millis(1_800_000_000_123).expect("valid");
        assert_eq!(from_millis(to_millis(t)), t);
        assert_eq!(from_millis(i64::MAX), DateTime::<Utc>::UNIX_EPOCH);
        assert_eq!(
            plus(DateTime::<Utc>::MAX_UTC, Duration::from_secs(1)),
            DateTime::<Utc>::MAX_UTC
        );
    }
}
