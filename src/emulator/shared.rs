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
use super::persist::{PersistError, Persister, SaveRequest};
use super::quotas::Quotas;
use super::state::State;
use crate::locks::LockRecovering;
use crate::objects::ObjectStore;

/// The account's resources and their data, guarded together so a request sees one consistent view.
#[derive(Debug, Default)]
pub struct World {
    pub state: State,
    pub data: Data,
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
    /// Writes the state directory; `None` without one. The lock orders saves: a snapshot taken
    /// later is never overwritten by an earlier one.
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

    /// Saves the state now (without a state directory, does nothing) and records the outcome.
    ///
    /// # Errors
    /// The write that failed; the previous `state.json` stays valid.
    pub async fn save(&self) -> Result<(), PersistError> {
        let Some(persister) = &self.persister else {
            return Ok(());
        };
        let mut guard = Arc::clone(persister).lock_owned().await;
        let request = {
            let mut world = self.world.lock().await;
            world.settle(self.clock.now());
            SaveRequest::new(world.state.clone(), self.clock.offset(), &world.data)
        };
        // File I/O on a blocking thread; the guard goes along so no other save interleaves.
        let written = tokio::task::spawn_blocking(move || guard.save(request)).await;
        let result = match written {
            Ok(result) => result,
            Err(e) => {
                // The writer panicked mid-save: forget what it believed written, so the next save
                // rewrites everything.
                persister.lock().await.forget();
                Err(PersistError::Writer {
                    reason: e.to_string(),
                })
            }
        };
        let mut slot = self.save_error.lock_recovering();
        match result {
            Ok(()) => {
                *slot = None;
                Ok(())
            }
            Err(e) => {
                // The caller gets the error; the slot keeps a copy for health and shutdown.
                *slot = Some(e.duplicate());
                Err(e)
            }
        }
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
