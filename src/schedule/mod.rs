//! The scheduler: each dataset group's schedules derived from its parameter file, the fire decisions
//! (catch-up, skip, coalesce) and the timer runtime that claims fires exactly once across replicas.
//!
//! - [`set`]: the schedule set a [`Spec`](crate::spec::model::Spec) asks for, and its diff against the
//!   recorded schedule items (pure).
//! - [`fire`]: when a schedule fires next and what to do about a fire found due (pure, injected time).
//! - [`runtime`]: the timers of one replica, claiming each due fire in the state store.

pub mod fire;
pub mod runtime;
pub mod set;

pub use fire::{Decision, decide, latest_fire_in};
pub use runtime::{Runtime, RuntimeConfig, TickReport};
pub use set::{DesiredSchedule, ScheduleDiff, Target, TargetError, desired_set, diff};

#[cfg(test)]
pub(crate) mod tests {
    use chrono::{DateTime, Utc};

    /// An RFC 3339 instant, for tests with injected time.
    pub(crate) fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("valid")
            .with_timezone(&Utc)
    }
}
