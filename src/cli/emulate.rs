//! `personalize-ops emulate`: the built-in Personalize alone, on one port, until Ctrl-C or SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use aws_config::BehaviorVersion;
use personalize_ops::emulator::clock::Durations;
use personalize_ops::emulator::faults::FaultSpec;
use personalize_ops::emulator::{self, DEFAULT_ACCOUNT_ID, EmulatorConfig, Quotas};
use personalize_ops::objects::{DirStore, ObjectStore, S3Store};

use super::{Context, EXIT_USAGE};

/// Whether serving on `listen` is allowed: loopback always; any other address only with
/// `--allow-remote`, since nothing the emulator serves is authenticated.
fn check_exposure(listen: SocketAddr, allow_remote: bool) -> Result<(), String> {
    if listen.ip().is_loopback() || allow_remote {
        return Ok(());
    }
    Err(format!(
        "refusing to serve on {listen}: the built-in Personalize and its admin endpoints (/_emulator/reset, faults, clock) have no authentication, so anyone who can reach this address could reset or fault it; listen on 127.0.0.1, or pass --allow-remote to expose it anyway"
    ))
}

/// Arguments of `emulate`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = FAULTS_HELP)]
pub struct Args {
    /// Address to serve on (host:port). Port 0 picks a free port; the URL is printed on stdout.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8787")]
    pub listen: SocketAddr,

    /// Serve on an address other than loopback. Nothing is authenticated: whoever reaches the port
    /// can call the API and the admin endpoints (reset the state, inject faults, move the clock).
    #[arg(long)]
    pub allow_remote: bool,

    /// Directory where the state (resources, dataset tables, models) is saved after every change
    /// and restored at start. Without it, everything lives in memory and is lost at exit.
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,

    /// Multiplies realistic durations (a training takes 2 h at 1). 0 makes every transition
    /// near-instant; 0.001 turns a 2 h training into 7.2 s.
    #[arg(long, value_name = "F", default_value_t = 0.0)]
    pub time_scale: f64,

    /// Realistic creation times to use instead of the built-in ones, as KIND=SECONDS,… with KIND a
    /// resource kind (dataset-group, dataset-import-job, solution-version, campaign, …) or delete,
    /// update, stop. Example: solution-version=3600,campaign=300.
    #[arg(long, value_name = "KIND=SECS,…")]
    pub durations: Option<String>,

    /// Service quotas to use instead of the real defaults, as NAME=N,… with NAME one of
    /// dataset-groups (5), schemas (500), pending-import-jobs (5), pending-solution-versions (20),
    /// solutions-per-group (10), campaigns-per-group (5), filters-per-group (30),
    /// recommenders-per-group (5), pending-batch-inference-jobs (5), pending-batch-segment-jobs (5).
    #[arg(long, value_name = "NAME=N,…")]
    pub quotas: Option<String>,

    /// Faults to inject from the start, e.g. "seed=1;throttle=0.1;fail.solution-version=^bad".
    /// See below for every entry; change them at runtime with PUT /_emulator/faults.
    #[arg(long, value_name = "SPEC")]
    pub faults: Option<String>,

    /// Serve the object store (import CSVs, batch input and output) from this directory: the bucket
    /// given by --data-bucket maps to it (s3://BUCKET/KEY is DIR/KEY). Without it, S3 is reached
    /// through the AWS SDK's default chain (AWS_ENDPOINT_URL and AWS_ENDPOINT_URL_S3 honoured).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// The bucket name --data-dir serves.
    #[arg(long, value_name = "NAME", default_value = "local", requires = "data_dir")]
    pub data_bucket: String,

    /// The account id in every ARN.
    #[arg(long, value_name = "ID", default_value = DEFAULT_ACCOUNT_ID)]
    pub account_id: String,

    /// The region of requests that carry no SigV4 credential scope (SDK requests always do).
    #[arg(long, value_name = "REGION", default_value = "us-east-1")]
    pub region: String,
}

const FAULTS_HELP: &str = "\
Fault spec (--faults, or the text form of PUT /_emulator/faults): entries separated by ';'
  seed=N                 seed of the generator behind throttle= (reproducible runs)
  throttle=P             each API call is throttled with probability P (0..1)
  throttle-next=N        the next N API calls are throttled (ThrottlingException), deterministically
  throttle-ops=Op1,Op2   limits throttle= and throttle-next= to these operations
  tps=N                  control-plane calls beyond N per second are throttled
  limit=Op1,Op2          these operations always fail with LimitExceededException
  fail.KIND=REGEX        new resources of KIND whose name matches REGEX end in CREATE FAILED
                         (KIND: dataset-group, dataset, dataset-import-job, event-tracker, filter,
                         solution, solution-version, campaign, recommender, batch-inference-job,
                         batch-segment-job; a solution version without a name matches its solution's)
  latency=MS             every API call is delayed by MS milliseconds

Admin API (not part of Personalize; neither counted nor faulted):
  GET  /_emulator/health   GET|PUT /_emulator/faults   GET /_emulator/calls
  POST /_emulator/reset    GET|POST /_emulator/clock ({\"advanceSeconds\": N})";

/// Starts the emulator and serves until interrupted.
pub async fn run(args: Args, _ctx: &Context) -> anyhow::Result<ExitCode> {
    if let Err(refusal) = check_exposure(args.listen, args.allow_remote) {
        eprintln!("personalize-ops emulate: {refusal}");
        return Ok(ExitCode::from(EXIT_USAGE));
    }
    if !args.listen.ip().is_loopback() {
        tracing::warn!(listen = %args.listen, "serving the built-in Personalize beyond loopback (--allow-remote): its API and admin endpoints are not authenticated");
    }
    let faults = match &args.faults {
        Some(text) => FaultSpec::parse(text).context("--faults")?,
        None => FaultSpec::default(),
    };
    let mut durations = Durations::default();
    if let Some(spec) = &args.durations {
        durations
            .apply_overrides(spec)
            .map_err(anyhow::Error::msg)
            .context("--durations")?;
    }
    let mut quotas = Quotas::default();
    if let Some(spec) = &args.quotas {
        quotas
            .apply_overrides(spec)
            .map_err(anyhow::Error::msg)
            .context("--quotas")?;
    }
    let objects: Arc<dyn ObjectStore> = match &args.data_dir {
        Some(dir) => Arc::new(DirStore::new(dir.clone(), args.data_bucket.clone())),
        None => {
            let conf = aws_config::defaults(BehaviorVersion::latest()).load().await;
            // Local S3 stand-ins (moto, MinIO) need path-style addressing; real S3 does not.
            let path_style = conf.endpoint_url().is_some();
            let s3 = aws_sdk_s3::config::Builder::from(&conf)
                .force_path_style(path_style)
                .build();
            Arc::new(S3Store::new(aws_sdk_s3::Client::from_conf(s3)))
        }
    };
    let config = EmulatorConfig {
        listen: args.listen,
        state_dir: args.state_dir,
        time_scale: args.time_scale,
        faults,
        account_id: args.account_id,
        region: args.region,
        objects,
        durations,
        quotas,
    };
    // Listen before the URL is printed: whoever reads it may signal at once, and a signal that
    // arrives before its handler is registered kills the process instead of stopping it.
    let signals = StopSignals::install().context("cannot listen for SIGTERM and Ctrl-C")?;
    let emu = emulator::start(config).await?;
    println!("{}", emu.url());
    signals.wait().await;
    tracing::info!("stopping the built-in Personalize");
    emu.shutdown()
        .await
        .context("the emulator stopped but its last save of the state failed")?;
    Ok(ExitCode::SUCCESS)
}

/// Ctrl-C and (on Unix) SIGTERM, what ECS and process managers send, registered when installed.
pub(super) struct StopSignals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
}

impl StopSignals {
    pub(super) fn install() -> std::io::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Self {
                term: signal(SignalKind::terminate())?,
                interrupt: signal(SignalKind::interrupt())?,
            })
        }
        #[cfg(not(unix))]
        Ok(Self {})
    }

    /// Resolves on the first of the signals.
    pub(super) async fn wait(mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.interrupt.recv() => {}
        }
        #[cfg(not(unix))]
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_is_served_without_allow_remote() {
        let addr = |s: &str| s.parse::<SocketAddr>().expect("address");
        assert_eq!(check_exposure(addr("127.0.0.1:0"), false), Ok(()));
        assert_eq!(check_exposure(addr("[::1]:8787"), false), Ok(()));
        for exposed in ["0.0.0.0:8787", "[::]:0", "10.1.2.3:80"] {
            let refusal = check_exposure(addr(exposed), false).expect_err(exposed);
            assert!(refusal.contains("--allow-remote"), "{refusal}");
            assert!(refusal.contains(exposed), "{refusal}");
            assert_eq!(check_exposure(addr(exposed), true), Ok(()));
        }
    }
}
