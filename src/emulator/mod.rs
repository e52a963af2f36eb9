//! The built-in Personalize: a local, wire-compatible Amazon Personalize (control plane, runtime, events).
//!
//! [`start`] serves the three Personalize APIs (docs/personalize.md) on one port, plus an admin API under
//! `/_emulator/` for fault injection ([`faults`]), call counts, reset and the clock. Resources follow
//! time-derived lifecycles whose durations ([`clock::Durations`]) scale with
//! [`EmulatorConfig::time_scale`]; data work runs in background tasks on the data [`engine`]. With a
//! state directory, everything survives a restart.

// The public surface is what callers configure and observe: the clock's durations, the fault spec
// and call counts, persistence errors, and the data engine. The rest is the server's own business.
mod admin;
mod arn;
pub mod clock;
mod commit;
mod control;
mod data;
pub mod engine;
mod error;
pub mod faults;
mod input;
mod job;
mod lifecycle;
mod page;
mod persist;
pub mod quotas;
mod recipes;
mod runtime;
mod server;
mod shared;
mod state;
mod work;

#[cfg(test)]
mod robustness_tests;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use tokio::sync::{Mutex, Notify};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use self::clock::{Clock, Durations};
use self::faults::{CallCounts, FaultSpec, FaultSpecError, Faults};
use self::job::{Job, JobKind};
pub use self::persist::PersistError;
use self::persist::Persister;
pub use self::quotas::Quotas;
use self::shared::{Shared, World};
use self::state::{Resource, State};
use crate::objects::ObjectStore;

/// The account every resource belongs to unless configured otherwise.
pub const DEFAULT_ACCOUNT_ID: &str = "000000000000";

/// How the emulator runs.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// Where to listen; port 0 picks a free port ([`Emulator::addr`] tells which).
    pub listen: SocketAddr,
    /// Where state is saved; `None` keeps everything in memory.
    pub state_dir: Option<PathBuf>,
    /// Multiplies the realistic durations of [`EmulatorConfig::durations`]; 0 makes lifecycles
    /// near-instant, 0.001 turns a 2 h training into 7.2 s.
    pub time_scale: f64,
    /// Faults injected from the start (changeable at runtime through `/_emulator/faults`).
    pub faults: FaultSpec,
    pub account_id: String,
    /// The region of requests that carry no SigV4 credential scope.
    pub region: String,
    /// Where import jobs read CSV data and batch jobs read input and write output.
    pub objects: Arc<dyn ObjectStore>,
    /// Realistic durations per kind at time scale 1 (their `time_scale` is replaced by the one above).
    pub durations: Durations,
    /// The service quotas enforced (the real defaults; raise them for tests that need more).
    pub quotas: Quotas,
}

impl EmulatorConfig {
    /// In memory, on a free loopback port, near-instant, no faults, account `000000000000`,
    /// region `us-east-1`.
    pub fn new(objects: Arc<dyn ObjectStore>) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            state_dir: None,
            time_scale: 0.0,
            faults: FaultSpec::default(),
            account_id: DEFAULT_ACCOUNT_ID.to_string(),
            region: "us-east-1".to_string(),
            objects,
            durations: Durations::default(),
            quotas: Quotas::default(),
        }
    }
}

/// Why the emulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid fault spec: {0}")]
    Faults(#[from] FaultSpecError),
    #[error("invalid setting {name}: {reason}")]
    Config { name: &'static str, reason: String },
    #[error("cannot restore the saved state: {0}")]
    State(#[from] PersistError),
}

/// A running emulator. Stop it with [`Emulator::shutdown`]; dropping it stops it without waiting.
#[derive(Debug)]
pub struct Emulator {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop_server: CancellationToken,
    server: Option<JoinHandle<()>>,
}

/// Starts the emulator: restores the saved state (resuming work that was in flight), binds the
/// port, and serves until [`Emulator::shutdown`].
///
/// # Errors
/// An unusable setting, a saved state that cannot be read, or a port that cannot be bound.
pub async fn start(config: EmulatorConfig) -> Result<Emulator, EmulatorError> {
    if !(config.time_scale.is_finite() && config.time_scale >= 0.0) {
        return Err(EmulatorError::Config {
            name: "time_scale",
            reason: format!("{} is not a number ≥ 0", config.time_scale),
        });
    }
    let faults = Faults::new(config.faults.clone())?;
    let clock = Clock::default();
    let (state, data, persister) = match &config.state_dir {
        Some(dir) => restore(dir, &clock).await?,
        None => (State::default(), data::Data::default(), None),
    };
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| EmulatorError::Bind {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| EmulatorError::Bind {
        addr: config.listen,
        source,
    })?;
    let durations = Durations {
        time_scale: config.time_scale,
        ..config.durations
    };
    let resumed = awaiting_work(&state);
    let saving = persister.is_some();
    let shared = Arc::new(Shared {
        world: Mutex::new(World {
            state,
            data,
            changes: 0,
        }),
        clock,
        durations,
        quotas: config.quotas,
        faults: StdMutex::new(faults),
        objects: config.objects,
        account: config.account_id,
        default_region: config.region,
        dirty: Notify::new(),
        tasks: TaskTracker::new(),
        cancel: CancellationToken::new(),
        persister,
        save_error: StdMutex::new(None),
    });
    if saving {
        let loop_shared = Arc::clone(&shared);
        shared.tasks.spawn(async move { persist_loop(loop_shared).await });
    }
    for job in resumed {
        tracing::info!(arn = %job.arn, kind = ?job.kind, "resuming work interrupted by a restart");
        work::spawn(&shared, job);
    }
    let stop_server = CancellationToken::new();
    let stop = stop_server.clone();
    let app = server::router(Arc::clone(&shared));
    let server = tokio::spawn(async move {
        let serve = axum::serve(listener, app).with_graceful_shutdown(async move { stop.cancelled().await });
        if let Err(e) = serve.await {
            tracing::error!(error = %e, "the emulator's server stopped");
        }
    });
    tracing::info!(%addr, "built-in Personalize listening");
    Ok(Emulator {
        addr,
        shared,
        stop_server,
        server: Some(server),
    })
}

/// What the state directory holds, and its persister (which may compact it first).
async fn restore(
    dir: &std::path::Path,
    clock: &Clock,
) -> Result<(State, data::Data, Option<Arc<Mutex<Persister>>>), PersistError> {
    let mut state = State::default();
    let mut data = data::Data::default();
    let loaded = persist::load(dir)?;
    if let Some(loaded) = &loaded {
        clock.set_offset(loaded.clock_offset);
        loaded.restore_into(&mut data);
        state = loaded.state.clone();
    }
    let dir = dir.to_path_buf();
    let (data, persister) = tokio::task::spawn_blocking(move || {
        let persister = Persister::start(dir, loaded, &data);
        (data, persister)
    })
    .await
    .map_err(|e| PersistError::Writer {
        reason: e.to_string(),
    })?;
    Ok((state, data, Some(Arc::new(Mutex::new(persister?)))))
}

/// The work of every resource whose creation still waits for it (after a restart).
fn awaiting_work(state: &State) -> Vec<Job> {
    fn collect<'a, T: Resource + 'a>(
        jobs: &mut Vec<Job>,
        kind: JobKind,
        resources: impl Iterator<Item = &'a T>,
    ) {
        for r in resources {
            let meta = r.meta();
            if meta.timeline.is_awaiting_work() {
                jobs.push(Job {
                    kind,
                    arn: meta.arn.clone(),
                    seq: meta.seq,
                });
            }
        }
    }
    let mut jobs = Vec::new();
    collect(&mut jobs, JobKind::Import, state.import_jobs.values());
    collect(&mut jobs, JobKind::Train, state.solution_versions.values());
    collect(&mut jobs, JobKind::TrainRecommender, state.recommenders.values());
    for r in state.recommenders.values() {
        if r.update.as_ref().is_some_and(|u| u.timeline.is_awaiting_work()) {
            jobs.push(Job {
                kind: JobKind::RetrainRecommender,
                arn: r.meta.arn.clone(),
                seq: r.meta.seq,
            });
        }
    }
    collect(
        &mut jobs,
        JobKind::BatchInference,
        state.batch_inference_jobs.values(),
    );
    collect(
        &mut jobs,
        JobKind::BatchSegment,
        state.batch_segment_jobs.values(),
    );
    jobs
}

/// Saves what background work, the admin API and settling lifecycles changed (coalescing bursts;
/// changes answered to clients are saved before their answer), and once more at shutdown. Each
/// outcome is recorded ([`Shared::save`]), so a failure is reported by the health endpoint and by
/// [`Emulator::shutdown`] instead of only being logged.
async fn persist_loop(shared: Arc<Shared>) {
    loop {
        tokio::select! {
            () = shared.dirty.notified() => {}
            () = shared.cancel.cancelled() => break,
        }
        // Let a burst of changes settle into one write.
        tokio::time::sleep(Duration::from_millis(20)).await;
        if let Err(e) = commit::save(&shared).await {
            tracing::error!(error = %e, "cannot save the emulator state");
        }
    }
    if let Err(e) = commit::save(&shared).await {
        tracing::error!(error = %e, "cannot save the emulator state at shutdown");
    }
}

impl Emulator {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR`: the endpoint URL for the SDK clients.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Replaces the fault spec (as `PUT /_emulator/faults` does).
    ///
    /// # Errors
    /// The spec's checks.
    pub fn set_faults(&self, spec: FaultSpec) -> Result<(), FaultSpecError> {
        self.shared.faults().replace(spec)
    }

    /// Calls per operation so far (as `GET /_emulator/calls`).
    pub fn calls(&self) -> CallCounts {
        self.shared.faults().counts.clone()
    }

    /// Moves the emulator clock forward (as `POST /_emulator/clock`) and, with a state directory,
    /// saves the state at once: the offset is part of it.
    ///
    /// # Errors
    /// The state could not be saved (the clock has moved all the same).
    pub async fn advance_clock(&self, secs: f64) -> Result<(), PersistError> {
        self.shared.clock.advance(secs);
        commit::save(&self.shared).await
    }

    /// Forgets every resource and the call counts (as `POST /_emulator/reset`).
    pub async fn reset(&self) {
        admin::reset(&self.shared).await;
    }

    /// Stops serving, stops background work, saves the state a last time, and waits for all of it.
    ///
    /// # Guarantees
    /// When it returns, no request is served and no background task runs; with a state directory
    /// and `Ok`, the saved state includes every change acknowledged to a client. Work that was
    /// interrupted is saved as in progress and run again by the next [`start`] on the same directory.
    ///
    /// # Errors
    /// The last save failed: the state directory does not hold the final state.
    pub async fn shutdown(mut self) -> Result<(), PersistError> {
        self.stop_server.cancel();
        if let Some(server) = self.server.take()
            && let Err(e) = server.await
        {
            tracing::error!(error = %e, "the emulator's server task failed");
        }
        self.shared.cancel.cancel();
        self.shared.tasks.close();
        self.shared.tasks.wait().await;
        // The persister's last save ran after every other task had stopped; its outcome stands.
        self.shared.take_save_error().map_or(Ok(()), Err)
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        // Without shutdown(): stop everything, but nothing can be awaited here.
        self.stop_server.cancel();
        self.shared.cancel.cancel();
    }
}
