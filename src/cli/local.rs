//! `personalize-ops local [DIR]`: the daemon on one machine — SQLite state, the directory as the bucket,
//! JSON-lines notifications and metrics, and the built-in Personalize in-process.
//!
//! Layout of DIR: `train/**.json` and data (the bucket `local`), `state.sqlite`, `notifications.jsonl`,
//! `metrics.jsonl`, `emulator/` (the built-in Personalize's saved state), `emulator.url` and
//! `emulator.time_scale` (its address and time scale while running, for `plan`/`apply`/`recommend
//! --local`), and batch job output under `batch/<group>/<solution>/<job>/`.
//!
//! Nothing needs configuring: empty role settings get placeholder roles, and below time scale 1 the
//! poll intervals and call budget follow the built-in Personalize's scale (keys set in a settings
//! file or the environment win; see
//! `Settings::for_builtin_personalize`). Progress is printed as
//! lines for people on stdout ([`super::progress`]); logs stay on stderr.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use personalize_ops::daemon::{
    Daemon, DaemonConfig, OutboxConfig, PersonalizeReconciler, ResyncBudget, replica_name,
};
use personalize_ops::emulator::{self, DEFAULT_ACCOUNT_ID, EmulatorConfig};
use personalize_ops::intake::watch::DirWatcher;
use personalize_ops::intake::{ConfigSource, Intake, spec_validator};
use personalize_ops::metrics::{JsonLinesSink, MetricsSink};
use personalize_ops::notify::message::Location;
use personalize_ops::notify::{JsonLinesNotifier, Notifications, Notifier};
use personalize_ops::objects::DirStore;
use personalize_ops::settings::LOCAL_MIN_POLL_SECS;
use personalize_ops::store::{Clock, SqliteStore, StateStore, SystemClock};
use tokio_util::sync::CancellationToken;

use super::apply::out;
use super::personalize::{LOCAL_REGION, local_sdk_config, scale_path, url_path};
use super::progress::Progress;
use super::{Context, EXIT_FAILURE};

/// The bucket name the directory stands for (the emulator's default `--data-bucket`).
pub const LOCAL_BUCKET: &str = "local";
/// The state store file of a local directory.
pub fn state_path(dir: &Path) -> PathBuf {
    dir.join("state.sqlite")
}

/// Arguments of `local`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The working directory: parameter files under DIR/train/, data anywhere under DIR.
    #[arg(value_name = "DIR", default_value = ".")]
    pub dir: PathBuf,

    /// Multiplies the built-in Personalize's realistic durations (0: near-instant, 0.001: a 2 h
    /// training takes 7.2 s).
    #[arg(long, value_name = "F", default_value_t = 0.0)]
    pub time_scale: f64,

    /// How often DIR/train/ is scanned for new or changed files, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 1000)]
    pub scan_interval_ms: u64,

    /// Stop once every dataset group under DIR/train/ has converged or failed (exit 0 when all
    /// converged, 1 otherwise), instead of running until Ctrl-C. The state stays in DIR.
    #[arg(long)]
    pub exit_when_converged: bool,
}

/// Whether `dir/train/` holds a `.json` file anywhere below it.
fn has_parameter_files(dir: &Path) -> bool {
    let mut stack = vec![(dir.join("train"), 0usize)];
    while let Some((folder, depth)) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&folder) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() && depth < 16 {
                stack.push((path, depth + 1));
            } else if path.extension().is_some_and(|x| x == "json") {
                return true;
            }
        }
    }
    false
}

/// The directory watcher, telling when its first scan is done (every file present at start handed
/// to the intake).
struct FirstScan {
    watcher: DirWatcher,
    interval: Duration,
    done: tokio::sync::watch::Sender<bool>,
}

impl FirstScan {
    /// The source, and the flag its first finished scan sets.
    fn new(watcher: DirWatcher, interval: Duration) -> (Arc<Self>, tokio::sync::watch::Receiver<bool>) {
        let (done, scanned) = tokio::sync::watch::channel(false);
        (
            Arc::new(Self {
                watcher,
                interval,
                done,
            }),
            scanned,
        )
    }
}

#[async_trait::async_trait]
impl ConfigSource for FirstScan {
    async fn run(&self, shutdown: CancellationToken) {
        let mut seen = std::collections::HashMap::new();
        while !shutdown.is_cancelled() {
            self.watcher.scan(&mut seen).await;
            self.done.send_replace(true);
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(self.interval) => {}
            }
        }
    }
}

/// Runs the local daemon until Ctrl-C or SIGTERM (or, with `--exit-when-converged`, until every
/// group settled).
pub async fn run(args: Args, ctx: &Context) -> anyhow::Result<ExitCode> {
    let s = &ctx.settings.for_builtin_personalize(args.time_scale);
    let dir = args.dir;
    std::fs::create_dir_all(dir.join("train")).with_context(|| format!("creating {}", dir.display()))?;
    if !has_parameter_files(&dir) {
        out(&format!(
            "No parameter file yet: put one at {}/train/<group>/config.json with its data beside it \
             (examples/quickstart has one to copy).",
            dir.display()
        ));
        if args.exit_when_converged {
            return Ok(ExitCode::from(EXIT_FAILURE));
        }
    }
    let store: Arc<dyn StateStore> = Arc::new(
        SqliteStore::open(&state_path(&dir))
            .context("the local state store")?
            .with_max_clock_skew(s.daemon.max_clock_skew()),
    );
    let objects = Arc::new(DirStore::new(dir.clone(), LOCAL_BUCKET));
    let progress = Arc::new(Progress::new(&dir, store.clone()));
    let (notifications, metrics) = outputs(&dir, progress.clone())?;

    let emu = start_builtin(&dir, args.time_scale, objects.clone()).await?;
    let sdk = local_sdk_config(&emu.url(), &s.aws).await;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let reconciler = Arc::new(PersonalizeReconciler::from_settings(
        aws_sdk_personalize::Client::new(&sdk),
        objects.clone(),
        s,
        clock.clone(),
        Some(store.clone()),
    ));

    let interval = Duration::from_millis(args.scan_interval_ms.max(10));
    let intake = Intake::new(
        LOCAL_BUCKET,
        objects,
        store.clone(),
        notifications.clone(),
        metrics.clone(),
        spec_validator(),
        s.daemon.max_config_bytes,
    );
    let (watcher, scanned) = FirstScan::new(
        DirWatcher::new(dir.clone(), LOCAL_BUCKET, Arc::new(intake), interval),
        interval,
    );
    let config = daemon_config(s, args.time_scale);
    let daemon = Arc::new(
        Daemon::new(store.clone(), reconciler, notifications, metrics, clock, config)
            .with_outbox(OutboxConfig::from_settings(&s.notify))
            .with_resync_budget(ResyncBudget::from_settings(s))
            .checking_every_group_at_start(),
    );
    let shutdown = CancellationToken::new();
    let signal = super::run::cancel_on_signal(shutdown.clone())?;
    let scheduler = daemon.spawn_scheduler(&s.scheduler, shutdown.clone());
    let watch = tokio::spawn(
        progress
            .clone()
            .watch(scanned, shutdown.clone(), args.exit_when_converged),
    );
    let result = daemon.run(Some(watcher as Arc<dyn ConfigSource>), shutdown).await;
    if let Some(scheduler) = scheduler {
        scheduler.abort();
    }
    signal.abort();
    watch.abort();
    let _ = std::fs::remove_file(url_path(&dir));
    let _ = std::fs::remove_file(scale_path(&dir));
    let saved = emu.shutdown().await;
    result?;
    saved.context("the built-in Personalize stopped but its last save of the state failed")?;
    if args.exit_when_converged {
        return Ok(summary(&progress, &dir));
    }
    Ok(ExitCode::SUCCESS)
}

/// Starts the built-in Personalize on `dir/emulator/` and leaves its address and time scale in
/// `dir` for `plan`/`apply`/`status --local` to find.
async fn start_builtin(
    dir: &Path,
    time_scale: f64,
    objects: Arc<DirStore>,
) -> anyhow::Result<emulator::Emulator> {
    let mut emulator_config = EmulatorConfig::new(objects);
    emulator_config.state_dir = Some(dir.join("emulator"));
    emulator_config.time_scale = time_scale;
    emulator_config.region = LOCAL_REGION.into();
    let emu = emulator::start(emulator_config)
        .await
        .context("starting the built-in Personalize")?;
    tracing::info!(url = %emu.url(), dir = %dir.display(), "built-in Personalize started");
    std::fs::write(url_path(dir), emu.url()).context("writing emulator.url")?;
    std::fs::write(scale_path(dir), format!("{}\n", time_scale)).context("writing emulator.time_scale")?;
    out(&format!(
        "personalize-ops local: watching {}/train/, built-in Personalize at {} (time scale {})",
        dir.display(),
        emu.url(),
        time_scale
    ));
    Ok(emu)
}

/// The daemon's settings for local mode: dispatch rounds as often as the scaled polls may ask (1 s
/// at realistic speed).
fn daemon_config(s: &personalize_ops::settings::Settings, time_scale: f64) -> DaemonConfig {
    let location = Location {
        partition: "aws".into(),
        region: LOCAL_REGION.into(),
        account: DEFAULT_ACCOUNT_ID.into(),
    };
    let mut config = DaemonConfig::from_settings(&s.daemon, replica_name(), location);
    let scale = if time_scale.is_finite() { time_scale } else { 1.0 };
    config.dispatch_interval = Duration::from_secs_f64(scale.clamp(LOCAL_MIN_POLL_SECS, 1.0));
    config
}

/// `--exit-when-converged`'s last line and exit code: failure when any group or file failed.
fn summary(progress: &Progress, dir: &Path) -> ExitCode {
    let (converged, failed) = progress.counts();
    let failed = failed + progress.config_errors();
    out(&format!(
        "{converged} converged, {failed} failed; the state is kept in {}",
        dir.display()
    ));
    if failed > 0 {
        ExitCode::from(EXIT_FAILURE)
    } else {
        ExitCode::SUCCESS
    }
}

/// Where local mode reports: the terminal (through `progress`), `notifications.jsonl` and
/// `metrics.jsonl` in `dir`.
fn outputs(dir: &Path, progress: Arc<Progress>) -> anyhow::Result<(Notifications, Arc<dyn MetricsSink>)> {
    let notifications = Notifications::new(vec![
        progress as Arc<dyn Notifier>,
        Arc::new(JsonLinesNotifier::open(&dir.join("notifications.jsonl"))?),
    ]);
    let metrics: Arc<dyn MetricsSink> =
        Arc::new(JsonLinesSink::open(&dir.join("metrics.jsonl")).context("metrics.jsonl")?);
    Ok((notifications, metrics))
}
