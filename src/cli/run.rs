//! `personalize-ops run`: the daemon on AWS (SQS intake, DynamoDB state, SNS, CloudWatch, health
//! endpoint) until SIGTERM or Ctrl-C.

use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use personalize_ops::daemon::{
    Daemon, DaemonConfig, OutboxConfig, PersonalizeReconciler, RemovalPolicy, replica_name,
};
use personalize_ops::health::{Liveness, Probe, Readiness, StoreProbe};
use personalize_ops::intake::sqs::{SqsIntake, SqsOptions};
use personalize_ops::intake::{ConfigSource, Intake, Rescanner, spec_validator};
use personalize_ops::metrics::MetricsSetup;
use personalize_ops::notify::Notifications;
use personalize_ops::notify::message::Location;
use personalize_ops::objects::{ObjectStore, S3Store};
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
    let ddb = aws_sdk_dynamodb::Client::new(&config);
    // A missing or wrong table is a deployment mistake: say so now rather than fail on the first write.
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
        return Ok(ExitCode::from(EXIT_USAGE));
    }
    for warning in &table.warnings {
        tracing::warn!(table = %s.daemon.table_name, "{warning}");
    }
    let store: Arc<dyn StateStore> = Arc::new(
        DynamoStore::new(ddb, s.daemon.table_name.clone()).with_max_clock_skew(s.daemon.max_clock_skew()),
    );
    let notifications = Notifications::from_settings(&config, &s.notify).context("notification targets")?;
    let metrics = MetricsSetup::from_settings(&config, &s.metrics);
    let objects: Arc<dyn ObjectStore> = Arc::new(
        S3Store::new(personalize_ops::aws::s3_client(&config, &s.aws))
            .with_expected_bucket_owner(s.daemon.expected_bucket_owner()),
    );
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
    let intake_round = sqs_options.longest_round();
    let intake_liveness = Liveness::new();
    let sqs = Arc::new(
        SqsIntake::new(
            aws_sdk_sqs::Client::new(&config),
            s.daemon.queue_url.clone(),
            intake,
            sqs_options,
        )
        .with_liveness(intake_liveness.clone()),
    );

    let shutdown = CancellationToken::new();
    let readiness = Arc::new(
        Readiness::new(
            vec![sqs.clone() as Arc<dyn Probe>, Arc::new(StoreProbe(store.clone()))],
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

    let location = Location {
        partition: "aws".into(),
        region: config
            .region()
            .map(ToString::to_string)
            .unwrap_or_else(|| "us-east-1".into()),
        // Replaced by the account in the dataset group's ARN once Personalize has answered.
        account: "unknown".into(),
    };
    let personalize = aws_sdk_personalize::Client::new(&config);
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let reconciler = Arc::new(PersonalizeReconciler::from_settings(
        personalize,
        objects,
        s,
        clock.clone(),
    ));
    let daemon = Arc::new(
        Daemon::new(
            store,
            reconciler,
            notifications,
            metrics.sink.clone(),
            clock,
            DaemonConfig::from_settings(&s.daemon, replica_name(), location),
        )
        .with_outbox(OutboxConfig::from_settings(&s.notify))
        .with_removal_policy(RemovalPolicy::from_settings(&s.daemon))
        .with_rescan(rescan),
    );
    // A dispatcher round waits on the state store (retries included): judge it over 10 s periods.
    readiness.watch("dispatcher", daemon.liveness(), Duration::from_secs(10));
    readiness.watch("intake", intake_liveness, intake_round);
    let signal = cancel_on_signal(shutdown.clone())?;
    let scheduler = daemon.spawn_scheduler(&s.scheduler, shutdown.clone());
    let result = daemon
        .run(Some(sqs as Arc<dyn ConfigSource>), shutdown.clone())
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
