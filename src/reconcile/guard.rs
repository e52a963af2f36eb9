//! The lease check before every Personalize call that changes something.
//!
//! A daemon replica may act on a group only while it holds the group's lease. Checking once per pass
//! is not enough: a replica paused (GC, SIGSTOP, a stalled VM) between deciding and calling wakes up
//! after another replica took the group over and would send calls decided under the old lease.
//! [`super::Api::call`] asks the pass's [`LeaseGuard`] right before sending each mutating call
//! (after the rate limiter's wait, which can be long), so a call is sent only under a valid lease.

use std::fmt::Debug;

/// Whether the caller still holds the right to change a group. `apply` (one operator, no lease)
/// uses [`Unguarded`]; the daemon uses its held lease.
pub trait LeaseGuard: Send + Sync + Debug {
    /// `Ok` while the lease is valid.
    ///
    /// # Errors
    /// [`LeaseLost`] once it is not (expired on this replica's monotonic clock, or taken over).
    fn check(&self) -> Result<(), LeaseLost>;

    /// Which holding of the group's lease this is (its epoch), `None` without a lease (`apply`: the
    /// caller is the group's only actor). Epochs grow by one with every acquisition, so a pass whose
    /// tenure is neither its last pass's nor the one after knows another replica held the group in
    /// between and may have changed anything in it: the reconciler then forgets what it observed.
    fn tenure(&self) -> Option<u64> {
        None
    }
}

/// The lease on a group is no longer valid: the call was not sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the lease on dataset group {group} (epoch {epoch}) is no longer held by this replica")]
pub struct LeaseLost {
    pub group: String,
    pub epoch: u64,
}

/// The guard of a caller that needs no lease (`apply`, tests): every check passes.
#[derive(Debug, Clone, Copy, Default)]
pub struct Unguarded;

impl LeaseGuard for Unguarded {
    fn check(&self) -> Result<(), LeaseLost> {
        Ok(())
    }
}

/// Whether the Personalize operation `op` changes something (and so needs the lease). Reads
/// (`Describe*`, `List*`, `Get*`) never do.
pub fn is_mutating(op: &str) -> bool {
    const READS: [&str; 3] = ["Describe", "List", "Get"];
    !READS.iter().any(|prefix| op.starts_with(prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_reads_go_without_the_lease() {
        for op in [
            "CreateSolutionVersion",
            "CreateCampaign",
            "UpdateCampaign",
            "DeleteFilter",
            "StopSolutionVersionCreation",
            "StartRecommender",
            "TagResource",
            "UntagResource",
        ] {
            assert!(is_mutating(op), "{op}");
        }
        for op in ["DescribeSolution", "ListSolutionVersions", "GetSolutionMetrics"] {
            assert!(!is_mutating(op), "{op}");
        }
        assert_eq!(Unguarded.check(), Ok(()));
    }
}
