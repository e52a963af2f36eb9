//! The command line: global options, one module per subcommand, and dispatch.
//!
//! Exit codes are a contract: 0 success, 1 failure (invalid input, failed resources), 2 bad usage
//! (clap's own code for argument errors, also used for unusable settings).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use personalize_ops::settings::{LogFormat, Settings};

mod apply;
mod destroy;
mod emulate;
mod healthcheck;
mod local;
mod personalize;
mod plan;
mod progress;
mod recommend;
mod run;
mod schedules;
mod schema;
mod setup;
mod state;
mod status;
mod validate;

/// Exit code for a failed run.
pub const EXIT_FAILURE: u8 = 1;
/// Exit code for bad usage or settings.
pub const EXIT_USAGE: u8 = 2;

/// Runs the whole life of Amazon Personalize resources from parameter files.
#[derive(Debug, Parser)]
#[command(name = "personalize-ops", version, about, propagate_version = true)]
pub struct Cli {
    /// Settings file (TOML) layered over the built-in defaults; environment variables
    /// PERSONALIZE_OPS__SECTION__KEY override both.
    #[arg(long, global = true, env = "PERSONALIZE_OPS_SETTINGS", value_name = "FILE")]
    pub settings: Option<PathBuf>,

    /// Log format on stderr: auto (human on a terminal, JSON otherwise), human or json.
    #[arg(long, global = true, value_enum, value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,

    /// Log level filter (tracing EnvFilter syntax); RUST_LOG wins when set.
    #[arg(long, global = true, value_name = "FILTER")]
    pub log_level: Option<String>,

    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Lint parameter files offline: every error at once, each with its JSON path.
    Validate(validate::Args),
    /// Run the built-in Personalize alone: control plane, runtime and events on one port.
    Emulate(emulate::Args),
    /// Print the JSON Schema (draft 2020-12) of the parameter file, for editors.
    Schema(schema::Args),
    /// The daemon: SQS intake, reconciler pool under DynamoDB leases, SNS, CloudWatch, health endpoint.
    Run(run::Args),
    /// The daemon on one machine: DIR/train/ watched, SQLite state, built-in Personalize.
    Local(local::Args),
    /// What the service knows: generations, resources and their states, last errors.
    Status(status::Args),
    /// Ask a campaign for recommendations (on AWS, or on a running `local DIR`).
    Recommend(recommend::Args),
    /// Show what apply would create, update or leave alone in Personalize, and why; changes nothing.
    Plan(plan::Args),
    /// Bring a dataset group to its parameter file: create, update and wait until converged or failed.
    Apply(apply::Args),
    /// Delete a dataset group and everything in it (dependants first), its schedules and state;
    /// without --yes only prints what it would delete.
    Destroy(destroy::Args),
    /// The stored schedules (list, describe, activate, deactivate), fire instants of an expression,
    /// and a parameter file written from a dataset group that exists in Personalize.
    Schedules(schedules::Args),
    /// Create or check the state table (and with flags the queue, its dead-letter queue and the
    /// bucket notification) for running without CloudFormation.
    Setup(setup::Args),
    /// Ask the daemon's health endpoint; exit 0 when healthy (container health checks).
    Healthcheck(healthcheck::Args),
}

/// Output format of the commands that report (`status`, `recommend`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Lines for people.
    Text,
    /// One JSON document, for scripts.
    Json,
}

/// What every command gets: the loaded settings.
#[derive(Debug)]
pub struct Context {
    pub settings: Settings,
}

/// Loads settings, initialises logging, runs the command on a tokio runtime.
pub fn main(args: Cli) -> ExitCode {
    let settings = match Settings::load(args.settings.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("personalize-ops: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let format = args.log_format.unwrap_or(settings.log.format);
    // `local` prints its progress on stdout; its logs keep to warnings unless asked otherwise.
    let quiet = matches!(args.command, Command::Local(_))
        && !settings.is_explicit("log.level")
        && std::env::var_os("RUST_LOG").is_none();
    // The SDK's credential and region chain logs each source it could not use as a warning carrying
    // whole HTTP responses; the one-shot commands say what is missing in one message instead.
    let defaulted = !settings.is_explicit("log.level") && std::env::var_os("RUST_LOG").is_none();
    let one_shot = !matches!(args.command, Command::Run(_));
    let level = args.log_level.clone().unwrap_or_else(|| {
        let level = if quiet {
            "warn".to_string()
        } else {
            settings.log.level.clone()
        };
        if defaulted && one_shot {
            format!("{level},aws_config=error")
        } else {
            level
        }
    });
    if let Err(e) = personalize_ops::logging::init(format, &level, settings.log.sdk_wire) {
        eprintln!("personalize-ops: {e}");
        return ExitCode::from(EXIT_USAGE);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("personalize-ops: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    let ctx = Context { settings };
    let result = runtime.block_on(dispatch(args.command, ctx));
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("personalize-ops: {e:#}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

async fn dispatch(command: Command, ctx: Context) -> anyhow::Result<ExitCode> {
    match command {
        Command::Validate(args) => validate::run(args, &ctx),
        Command::Emulate(args) => emulate::run(args, &ctx).await,
        Command::Schema(args) => schema::run(args, &ctx),
        Command::Run(args) => run::run(args, &ctx).await,
        Command::Local(args) => local::run(args, &ctx).await,
        Command::Status(args) => status::run(args, &ctx).await,
        Command::Recommend(args) => recommend::run(args, &ctx).await,
        Command::Plan(args) => plan::run(args, &ctx).await,
        Command::Apply(args) => apply::run(args, &ctx).await,
        Command::Destroy(args) => destroy::run(args, &ctx).await,
        Command::Schedules(args) => schedules::run(args, &ctx).await,
        Command::Setup(args) => setup::run(args, &ctx).await,
        Command::Healthcheck(args) => healthcheck::run(args, &ctx).await,
    }
}
