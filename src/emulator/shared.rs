//! What every request handler and background task shares: the state, the clock, the faults, the
//! object store, and the machinery to save state and run work.

use std::sync::{Arc, Mutex as StdMutex, MutexGuard};

use tokio::sync::{Mutex, Notify};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::arn::Scope;
use super::clock::{Clock, Durations};
use super::data::Data;
use super::faults::Faults;
use super::persist::{PersistError, Persister};
use super::quotas::Quotas;
use super::state::State;
use crate::locks::LockRecovering;
use crate::objects::ObjectStore;

/// The account's resources and their data, guarded together so a request sees one consistent view.
#[derive(Debug, Default)]
pub struct World {
    pub state: State,
    pub data: Data,
    /// Counts the changes made by requests; a commit settles every change up to the count it
    /// saw, so a handler knows when its own change is saved ([`Shared::commit`]).
    pub changes: u64,
}

#[derive(Debug)]
pub struct Shared {
    pub world: Mutex<World>,
    pub clock: Clock,
    pub durations: Durations,
    pub quotas: Quotas,
    /// A std mutex: fault decisions never await.
    pub faults: StdMutex<Faults>,
    pub objects: Arc<dyn ObjectStore>,
    pub account: String,
    /// The region used when a request carries no credential scope.
    pub default_region: String,
    /// Wakes the persister after a change (unused without a state directory).
    pub dirty: Notify,
    /// Background work and the persister; waited for at shutdown.
    pub tasks: TaskTracker,
    /// Cancelled at shutdown: background work stops, the persister writes a last time.
    pub cancel: CancellationToken,
    /// Writes the state directory; `None` without one. The lock orders commits, and callers
    /// waiting on it share the commit of whoever gets it first (group commit).
    pub persister: Option<Arc<Mutex<Persister>>>,
    /// Why the latest save failed; cleared by the next one that succeeds.
    pub save_error: StdMutex<Option<PersistError>>,
}

impl World {
    /// Brings state and data to `now`: lifecycles settle, retrained models of applied updates
    /// take over, and the data of resources that are gone is dropped.
    pub fn settle(&mut self, now: f64) {
        self.state.settle(now);
        for (arn, model) in self.data.promote_retrained(&self.state) {
            if let Some(r) = self.state.recommenders.get_mut(&arn) {
                r.metrics = Some(model.metrics());
            }
        }
        self.data.retain_for(&self.state);
    }
}

impl Shared {
    pub fn faults(&self) -> MutexGuard<'_, Faults> {
        // A panic while holding this lock cannot leave the counters in a harmful state.
        self.faults.lock_recovering()
    }

    pub fn scope(&self, region: Option<String>) -> Scope {
        Scope {
            region: region.unwrap_or_else(|| self.default_region.clone()),
            account: self.account.clone(),
        }
    }

    /// Records the outcome of a commit for health and shutdown ([`Shared::save_error_text`]).
    pub fn record_save(&self, result: &Result<(), PersistError>) {
        let mut slot = self.save_error.lock_recovering();
        *slot = result.as_ref().err().map(PersistError::duplicate);
    }

    /// Why the latest save failed, if it did (the health endpoint shows it).
    pub fn save_error_text(&self) -> Option<String> {
        let slot = self.save_error.lock_recovering();
        slot.as_ref().map(ToString::to_string)
    }

    /// Takes the failure of the latest save, if it failed.
    pub fn take_save_error(&self) -> Option<PersistError> {
        self.save_error.lock_recovering().take()
    }
}
