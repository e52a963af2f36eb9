//! The turn's lease as the reconciler's [`LeaseGuard`]: valid while this replica may act on the group.

use std::sync::{Arc, Mutex, PoisonError};

use crate::reconcile::{LeaseGuard, LeaseLost};
use crate::store::Lease;

/// The lease a turn holds, renewed in the background ([`crate::store::Lease::is_valid`] judges it on
/// the monotonic clock, which keeps running while the process is paused).
#[derive(Debug)]
pub(crate) struct HeldLease(pub(crate) Arc<Mutex<Lease>>);

impl LeaseGuard for HeldLease {
    fn check(&self) -> Result<(), LeaseLost> {
        let lease = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if lease.is_valid() {
            Ok(())
        } else {
            Err(LeaseLost {
                group: lease.group.clone(),
                epoch: lease.epoch,
            })
        }
    }

    fn tenure(&self) -> Option<u64> {
        Some(self.0.lock().unwrap_or_else(PoisonError::into_inner).epoch)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::time::Instant;

    use super::*;

    fn lease(valid_until: Instant) -> Lease {
        Lease {
            group: "shop".into(),
            owner: "a".into(),
            epoch: 4,
            expires_at: chrono::Utc::now(),
            valid_until,
        }
    }

    #[test]
    fn the_guard_fails_once_the_lease_ran_out_and_passes_again_when_renewed() {
        let now = Instant::now();
        let held = Arc::new(Mutex::new(lease(now + Duration::from_secs(60))));
        let guard = HeldLease(Arc::clone(&held));
        assert_eq!(guard.check(), Ok(()));
        // As after a pause past the end of the lease: the monotonic clock ran on.
        *held.lock().expect("lock") = lease(now);
        assert_eq!(
            guard.check(),
            Err(LeaseLost {
                group: "shop".into(),
                epoch: 4
            })
        );
        *held.lock().expect("lock") = lease(Instant::now() + Duration::from_secs(60));
        assert_eq!(guard.check(), Ok(()), "a renewal that succeeded counts");
    }
}
