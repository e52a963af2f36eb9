//! `personalize-ops local [DIR]`: the daemon on one machine — SQLite state, the directory as the bucket,
//! JSON-lines notifications and metrics, and the built-in Personalize in-process.
//!
//! Layout of DIR: `train/**.json` and data (the bucket `local`), `state.sqlite`, `notifications.jsonl`,
//! `metrics.jsonl`, `emulator/` (the built-in Personalize's saved state), `emulator.url` (its address
//! while running).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use aws_config::{BehaviorVersion, Region};
use aws_credential_types::Credentials;
use personalize_ops::daemon::{Daemon, DaemonConfig, PersonalizeReconciler, replica_name};
use personalize_ops::emulator::{self, DEFAULT_ACCOUNT_ID, EmulatorConfig};
use personalize_ops::intake::watch::DirWatcher;
use personalize_ops::intake::{ConfigSource, Intake, spec_validator};
use personalize_ops::metrics::{JsonLinesSink, MetricsSink};
use personalize_ops::notify::message::Location;
use personalize_ops::notify::{JsonLinesNotifier, LogNotifier, Notifications, Notifier};
use personalize_ops::objects::DirStore;
use personalize_ops::store::{SqliteStore, StateStore, SystemClock};
use tokio_util::sync::CancellationToken;

use super::Context;

/// The bucket name the directory stands for (the emulator's default `--data-bucket`).
pub const LOCAL_BUCKET: &str = "local";
/// Region of the built-in Personalize.
pub const LOCAL_REGION: &str = "us-east-1";

/// The state store file of a local directory.
pub fn state_path(dir: &Path) -> PathBuf {
    dir.join("state.sqlite")
}

/// The file holding the built-in Personalize's URL while `local` runs (read by `recommend --local`).
pub fn url_path(dir: &Path) -> PathBuf {
    dir.join("emulator.url")
}

/// SDK configuration for the built-in Personalize at `url` (static credentials, the local region).
pub async fn sdk_config(url: &str) -> aws_config::SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(url)
        .region(Region::new(LOCAL_REGION))
        .credentials_provider(Credentials::new(
            "local",
            "local",
            None,
            None,
            "personalize-ops-local",
        ))
        .load()
        .await
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
}

/// Runs the local daemon until Ctrl-C or SIGTERM.
pub async fn run(args: Args, ctx: &Context) -> anyhow::Result<ExitCode> {
    let s = &ctx.settings;
    let dir = args.dir;
    std::fs::create_dir_all(dir.join("train")).with_context(|| format!("creating {}", dir.display()))?;
    let store: Arc<dyn StateStore> = Arc::new(
        SqliteStore::open(&state_path(&dir))
            .context("the local state store")?
            .with_max_clock_skew(s.daemon.max_clock_skew()),
    );
    let objects = Arc::new(DirStore::new(dir.clone(), LOCAL_BUCKET));
    let notifications = Notifications::new(vec![
        Arc::new(LogNotifier) as Arc<dyn Notifier>,
        Arc::new(JsonLinesNotifier::open(&dir.join("notifications.jsonl"))?),
    ]);
    let metrics: Arc<dyn MetricsSink> =
        Arc::new(JsonLinesSink::open(&dir.join("metrics.jsonl")).context("metrics.jsonl")?);

    let mut emulator_config = EmulatorConfig::new(objects.clone());
    emulator_config.state_dir = Some(dir.join("emulator"));
    emulator_config.time_scale = args.time_scale;
    emulator_config.region = LOCAL_REGION.into();
    let emu = emulator::start(emulator_config)
        .await
        .context("starting the built-in Personalize")?;
    tracing::info!(url = %emu.url(), dir = %dir.display(), "built-in Personalize started");
    std::fs::write(url_path(&dir), emu.url()).context("writing emulator.url")?;
    let sdk = sdk_config(&emu.url()).await;
    let reconciler = Arc::new(PersonalizeReconciler::from_settings(
        aws_sdk_personalize::Client::new(&sdk),
        objects.clone(),
        s,
    ));

    let intake = Arc::new(Intake::new(
        objects,
        store.clone(),
        notifications.clone(),
        metrics.clone(),
        spec_validator(),
        s.daemon.max_config_bytes,
    ));
    let watcher = Arc::new(DirWatcher::new(
        dir.clone(),
        LOCAL_BUCKET,
        intake,
        Duration::from_millis(args.scan_interval_ms.max(10)),
    ));
    let location = Location {
        partition: "aws".into(),
        region: LOCAL_REGION.into(),
        account: DEFAULT_ACCOUNT_ID.into(),
    };
    let daemon = Arc::new(Daemon::new(
        store,
        reconciler,
        notifications,
        metrics,
        Arc::new(SystemClock),
        DaemonConfig::from_settings(&s.daemon, replica_name(), location),
    ));
    let shutdown = CancellationToken::new();
    let signal = super::run::cancel_on_signal(shutdown.clone())?;
    let scheduler = daemon.spawn_scheduler(&s.scheduler, shutdown.clone());
    let result = daemon.run(Some(watcher as Arc<dyn ConfigSource>), shutdown).await;
    if let Some(scheduler) = scheduler {
        scheduler.abort();
    }
    signal.abort();
    let _ = std::fs::remove_file(url_path(&dir));
    let saved = emu.shutdown().await;
    result?;
    saved.context("the built-in Personalize stopped but its last save of the state failed")?;
    Ok(ExitCode::SUCCESS)
}
