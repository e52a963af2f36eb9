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
use super::work;
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

    /// Saves everything changed so far (without a state directory, does nothing) and records
    /// the outcome.
    ///
    /// # Errors
    /// The write that failed; the world is put back to what the state directory holds.
    pub async fn save(self: &Arc<Self>) -> Result<(), PersistError> {
        self.commit(None).await
    }

    /// Returns once the change numbered `change` ([`World::changes`]) is saved, or with `None`
    /// once everything changed so far is. Callers waiting together share one commit: the first
    /// to get the persister saves every change so far, the others find theirs settled.
    ///
    /// When a commit fails, the world is put back to the saved state, and every change not yet
    /// saved is refused (its caller answers an error): nothing a client was refused can appear
    /// later, and nothing it was told is saved can be lost. Work whose completion was undone is
    /// started again.
    ///
    /// # Errors
    /// The commit that carried the change failed.
    pub async fn commit(self: &Arc<Self>, change: Option<u64>) -> Result<(), PersistError> {
        let Some(persister) = &self.persister else {
            return Ok(());
        };
        let mut guard = Arc::clone(persister).lock_owned().await;
        if let Some(outcome) = change.and_then(|n| guard.outcome(n)) {
            return outcome.map_err(|reason| PersistError::Writer { reason });
        }
        let (batch, through) = {
            let mut world = self.world.lock().await;
            world.settle(self.clock.now());
            let batch = guard.prepare(&world.state, &world.data, self.clock.offset());
            (batch, world.changes)
        };
        let result = match batch {
            None => Ok(()),
            Some(batch) => {
                // File I/O on a blocking thread; the guard goes along so no other commit interleaves.
                let written = tokio::task::spawn_blocking(move || {
                    let result = guard.write(batch);
                    (guard, result)
                })
                .await;
                match written {
                    Ok((back, result)) => {
                        guard = back;
                        result
                    }
                    Err(e) => {
                        guard = Arc::clone(persister).lock_owned().await;
                        Err(PersistError::Writer {
                            reason: e.to_string(),
                        })
                    }
                }
            }
        };
        match &result {
            Ok(()) => guard.settled(through),
            Err(e) => {
                tracing::error!(error = %e, "cannot save a change of the built-in Personalize; putting the state back to the saved one");
                let restart = {
                    let mut world = self.world.lock().await;
                    let awaiting_before = super::awaiting_work(&world.state);
                    world.state = guard.saved_state().clone();
                    let (tables, models) = guard.saved_data();
                    world.data.put_back(tables, models);
                    guard.refused(world.changes, e);
                    let awaiting = super::awaiting_work(&world.state);
                    awaiting
                        .into_iter()
                        .filter(|job| !awaiting_before.contains(job))
                        .collect::<Vec<_>>()
                };
                for job in restart {
                    work::spawn(self, job);
                }
            }
        }
        drop(guard);
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
