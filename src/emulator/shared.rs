//! What every request handler and background task shares: the state, the clock, the faults, the
//! object store, and the machinery to save state and run work.

use std::sync::{Arc, Mutex as StdMutex, MutexGuard};

use tokio::sync::{Mutex, Notify};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::arn::Scope;
use super::clock::{Clock, Durations};
use super::control::Cx;
use super::data::Data;
use super::error::ApiError;
use super::faults::Faults;
use super::state::State;
use super::work::{self, Job};
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
}

impl Shared {
    pub fn faults(&self) -> MutexGuard<'_, Faults> {
        // A panic while holding this lock cannot leave the counters in a harmful state.
        self.faults.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn scope(&self, region: Option<String>) -> Scope {
        Scope {
            region: region.unwrap_or_else(|| self.default_region.clone()),
            account: self.account.clone(),
        }
    }

    /// Runs `op` on the settled world; starts the work it queued and schedules a save when it changed
    /// anything. The lock is released before any work starts.
    pub async fn with_cx<T>(
        self: &Arc<Self>,
        region: Option<String>,
        op: impl FnOnce(&mut Cx, &mut Data) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let failures = self.faults().failures().clone();
        let now = self.clock.now();
        let (result, jobs, changed) = {
            let mut world = self.world.lock().await;
            let World { state, data } = &mut *world;
            state.settle(now);
            data.retain_for(state);
            let mut cx = Cx {
                state,
                now,
                scope: self.scope(region),
                durations: &self.durations,
                failures: &failures,
                jobs: Vec::new(),
                changed: false,
            };
            let result = op(&mut cx, data);
            (result, cx.jobs, cx.changed)
        };
        for job in jobs {
            self.spawn(job);
        }
        if changed {
            self.dirty.notify_one();
        }
        result
    }

    /// Starts background work; it stops at shutdown.
    pub fn spawn(self: &Arc<Self>, job: Job) {
        let shared = Arc::clone(self);
        self.tasks.spawn(async move {
            let cancel = shared.cancel.clone();
            tokio::select! {
                () = cancel.cancelled() => {}
                () = work::run(&shared, job) => {}
            }
        });
    }
}
