//! `personalize-ops run`: the daemon on AWS (SQS intake, DynamoDB state, SNS, CloudWatch, health
//! endpoint) until SIGTERM or Ctrl-C.

use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use personalize_ops::daemon::{
    Daemon, DaemonConfig, OutboxConfig, PersonalizeReconciler, RemovalPolicy, ResyncBudget, replica_name,
};
use personalize_ops::health::{Liveness, Probe, Readiness, StoreProbe};
use personalize_ops::intake::sqs::{SqsIntake, SqsOptions};
use personalize_ops::intake::{ConfigSource, Intake, Rescanner, spec_validator};
use personalize_ops::metrics::MetricsSetup;
use personalize_ops::notify::Notifications;
use personalize_ops::notify::message::Location;
use personalize_ops::objects::{ObjectStore, S3Store};
use personalize_ops::settings::Settings;
use personalize_ops::store::{Clock, DynamoStore, StateStore, SystemClock};
use tokio_util::sync::CancellationToken;

use super::{Context, EXIT_USAGE};

/// Arguments of `run` (everything else comes from the settings).
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Cancels `token` on Ctrl-C or SIGTERM (abort the task when the daemon stopped for another reason).
/// The handlers are installed before it returns, so a signal sent from then on stops gracefully.
pub(super) fn cancel_on_signal(token: CancellationToken) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let signals = super::emulate::StopSignals::install().context("cannot listen for SIGTERM and Ctrl-C")?;
    Ok(tokio::spawn(async move {
        signals.wait().await;
        tracing::info!("shutdown signal received; stopping");
        token.cancel();
    }))
}

/// The DynamoDB state store, once its table is checked: a missing or wrong table is a deployment
/// mistake, said now rather than on the first write. `Err(code)` after saying so.
async fn state_store(
    config: &aws_config::SdkConfig,
    s: &Settings,
) -> anyhow::Result<Result<Arc<dyn StateStore>, ExitCode>> {
    let ddb = aws_sdk_dynamodb::Client::new(config);
    let table = DynamoStore::check_table(&ddb, &s.daemon.table_name)
        .await
        .context("cannot check the state table")?;
    if !table.usable() {
        eprintln!(
            "personalize-ops run: the state table {} cannot be used: {} (create it with `personalize-ops setup --table {}` or the CloudFormation stack)",
            s.daemon.table_name,
            table.problems.join("; "),
            s.daemon.table_name
        );
        return Ok(Err(ExitCode::from(EXIT_USAGE)));
    }
    for warning in &table.warnings {
        tracing::warn!(table = %s.daemon.table_name, "{warning}");
    }
    Ok(Ok(Arc::new(
        DynamoStore::new(ddb, s.daemon.table_name.clone()).with_max_clock_skew(s.daemon.max_clock_skew()),
    )))
}

/// The daemon's inputs: the SQS intake (with its liveness and longest round) and the resync's
/// bucket rescanner, both recording through one [`Intake`].
struct Inputs {
    sqs: Arc<SqsIntake>,
    rescan: Arc<Rescanner>,
    liveness: Liveness,
    round: Duration,
}

fn inputs(
    config: &aws_config::SdkConfig,
    s: &Settings,
    objects: &Arc<dyn ObjectStore>,
    store: &Arc<dyn StateStore>,
    notifications: &Notifications,
    metrics: &MetricsSetup,
) -> Inputs {
    let intake = Arc::new(Intake::new(
        s.daemon.bucket.trim(),
        objects.clone(),
        store.clone(),
        notifications.clone(),
        metrics.sink.clone(),
        spec_validator(),
        s.daemon.max_config_bytes,
    ));
    let rescan = Arc::new(Rescanner::new(
        intake.clone(),
        objects.clone(),
        store.clone(),
        metrics.sink.clone(),
    ));
    let sqs_options = SqsOptions::from_settings(&s.daemon);
    let round = sqs_options.longest_round();
    let liveness = Liveness::new();
    let sqs = Arc::new(
        SqsIntake::new(
            aws_sdk_sqs::Client::new(config),
            s.daemon.queue_url.clone(),
            intake,
            sqs_options,
        )
        .with_liveness(liveness.clone()),
    );
    Inputs {
        sqs,
        rescan,
        liveness,
        round,
    }
}

/// Starts the health endpoint, ready when the intake queue and the state store answer.
async fn health(
    s: &Settings,
    probes: Vec<Arc<dyn Probe>>,
    shutdown: &CancellationToken,
) -> anyhow::Result<(Arc<Readiness>, tokio::task::JoinHandle<std::io::Result<()>>)> {
    let readiness = Arc::new(
        Readiness::new(
            probes,
            Duration::from_secs(s.daemon.readiness_cache_secs),
            Duration::from_secs(s.daemon.readiness_timeout_secs.max(1)),
        )
        .with_stalled_periods(s.daemon.health_stalled_periods),
    );
    let address = SocketAddr::from((Ipv4Addr::UNSPECIFIED, s.daemon.health_port));
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("health endpoint on {address}"))?;
    tracing::info!(address = %listener.local_addr().unwrap_or(address), "health endpoint listening");
    let health = tokio::spawn(personalize_ops::health::serve(
        listener,
        readiness.clone(),
        shutdown.clone(),
    ));
    Ok((readiness, health))
}

/// Where notifications say the resources are, until Personalize has answered with an ARN.
fn location(config: &aws_config::SdkConfig) -> Location {
    Location {
        partition: "aws".into(),
        region: config
            .region()
            .map(ToString::to_string)
            .unwrap_or_else(|| "us-east-1".into()),
        // Replaced by the account in the dataset group's ARN once Personalize has answered.
        account: "unknown".into(),
    }
}

/// Runs the daemon until a shutdown signal; exits 0 after a graceful stop.
pub async fn run(_args: Args, ctx: &Context) -> anyhow::Result<ExitCode> {
    let s = &ctx.settings;
    let missing = s.daemon.missing_for_run();
    if !missing.is_empty() {
        eprintln!(
            "personalize-ops run: missing settings: {} (set them in the settings file or as PERSONALIZE_OPS__DAEMON__<KEY>)",
            missing.join(", ")
        );
        return Ok(ExitCode::from(EXIT_USAGE));
    }
    let config = personalize_ops::aws::sdk_config(&s.aws).await;
    let store = match state_store(&config, s).await? {
        Ok(store) => store,
        Err(code) => return Ok(code),
    };
    let notifications = Notifications::from_settings(&config, &s.notify).context("notification targets")?;
    let metrics = MetricsSetup::from_settings(&config, &s.metrics);
    let objects: Arc<dyn ObjectStore> = Arc::new(
        S3Store::new(personalize_ops::aws::s3_client(&config, &s.aws))
            .with_expected_bucket_owner(s.daemon.expected_bucket_owner()),
    );
    let inputs = inputs(&config, s, &objects, &store, &notifications, &metrics);
    let shutdown = CancellationToken::new();
    let probes = vec![
        inputs.sqs.clone() as Arc<dyn Probe>,
        Arc::new(StoreProbe(store.clone())),
    ];
    let (readiness, health) = health(s, probes, &shutdown).await?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let reconciler = Arc::new(PersonalizeReconciler::from_settings(
        aws_sdk_personalize::Client::new(&config),
        objects,
        s,
        clock.clone(),
        Some(store.clone()),
    ));
    let daemon = Arc::new(
        Daemon::new(
            store,
            reconciler,
            notifications,
            metrics.sink.clone(),
            clock,
            DaemonConfig::from_settings(&s.daemon, replica_name(), location(&config)),
        )
        .with_outbox(OutboxConfig::from_settings(&s.notify))
        .with_removal_policy(RemovalPolicy::from_settings(&s.daemon))
        .with_resync_budget(ResyncBudget::from_settings(s))
        .with_rescan(inputs.rescan),
    );
    // A dispatcher round waits on the state store (retries included): judge it over 10 s periods.
    readiness.watch("dispatcher", daemon.liveness(), Duration::from_secs(10));
    readiness.watch("intake", inputs.liveness, inputs.round);
    let signal = cancel_on_signal(shutdown.clone())?;
    let scheduler = daemon.spawn_scheduler(&s.scheduler, shutdown.clone());
    let result = daemon
        .run(Some(inputs.sqs as Arc<dyn ConfigSource>), shutdown.clone())
        .await;
    if let Some(scheduler) = scheduler {
        scheduler.abort();
    }
    // Also when the daemon stopped on its own: the health endpoint follows.
    shutdown.cancel();
    signal.abort();
    if let Some(flusher) = metrics.flusher {
        flusher.shutdown(Duration::from_secs(5)).await;
    }
    match tokio::time::timeout(Duration::from_secs(2), health).await {
        Ok(Ok(Err(e))) => tracing::warn!(error = %e, "health endpoint failed"),
        Err(_) => tracing::warn!("health endpoint did not stop in time"),
        _ => {}
    }
    result?;
    Ok(ExitCode::SUCCESS)
}
