//! Committing changes to the state directory: group commit, and putting the world back when a
//! commit fails.

use std::sync::Arc;

use super::persist::PersistError;
use super::shared::{Shared, World};
use super::work;

/// Saves everything changed so far (without a state directory, does nothing) and records
/// the outcome.
///
/// # Errors
/// The write that failed; the world is put back to what the state directory holds.
pub async fn save(shared: &Arc<Shared>) -> Result<(), PersistError> {
    commit(shared, None).await
}

/// Returns once the change numbered `change` ([`super::shared::World::changes`]) is saved, or with `None`
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
pub async fn commit(shared: &Arc<Shared>, change: Option<u64>) -> Result<(), PersistError> {
    let Some(persister) = &shared.persister else {
        return Ok(());
    };
    let mut guard = Arc::clone(persister).lock_owned().await;
    if let Some(outcome) = change.and_then(|n| guard.outcome(n)) {
        return outcome.map_err(|reason| PersistError::Writer { reason });
    }
    let (batch, through) = {
        let mut world = shared.world.lock().await;
        world.settle(shared.clock.now());
        let World { state, data, .. } = &mut *world;
        let batch = guard.prepare(state, data, shared.clock.offset());
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
                let mut world = shared.world.lock().await;
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
                work::spawn(shared, job);
            }
        }
    }
    drop(guard);
    shared.record_save(&result);
    result
}
