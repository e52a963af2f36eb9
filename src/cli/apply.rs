//! `personalize-ops apply --config FILE_OR_S3_URI`: one-shot reconcile until converged or failed.
//!
//! Progress is one line per state change (`elapsed kind name status [reason]`), or one JSON object
//! per line with `--format json`. Exit 0 when converged; 1 when a resource failed, each named with
//! Personalize's reason.
//!
//! The run's start time names its one-shot jobs (`dataset_import_<type>_<ts>`, `batch_<sol>_<ts>`).
//! It is `--run-start` when given, else now; the first line prints it, so a run that was killed is
//! resumed — finding its own jobs instead of starting new ones — by passing the same `--run-start`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context as _, bail};
use chrono::{DateTime, SubsecRound, Utc};
use personalize_ops::objects::{DirStore, ObjectStore, ObjectUrl, S3Store};
use personalize_ops::reconcile::{Event, EventSink, PassOutcome, RateLimiter, Reconciler};
use personalize_ops::settings::Settings;
use personalize_ops::spec::model::Spec;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::personalize::{Target, connect};
use super::{Context, EXIT_FAILURE};

/// How progress and results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Lines for people.
    Text,
    /// One JSON object per line.
    Json,
}

/// Where the parameter file comes from, shared by `plan` and `apply`.
#[derive(Debug, clap::Args)]
pub struct Source {
    /// The parameter file: a path (data is read beside it from the directory) or an
    /// s3://bucket/train/<group>/config.json URI (data is read from S3).
    #[arg(long, value_name = "FILE_OR_S3_URI")]
    pub config: String,

    /// The bucket name a path config stands for (the emulator's --data-bucket); batch input and
    /// output addresses use it.
    #[arg(long, value_name = "NAME", default_value = "local")]
    pub data_bucket: String,

    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,

    /// Ask the built-in Personalize of a running `personalize-ops local DIR` instead of AWS. The
    /// parameter file must be a path under DIR (the built-in Personalize reads its data from DIR);
    /// roles and polls are those of `local`.
    #[arg(long, value_name = "DIR", conflicts_with = "data_bucket")]
    pub local: Option<PathBuf>,
}

/// Arguments of `apply`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub source: Source,

    /// This run's start (RFC 3339, e.g. 2024-01-31T23:05:09Z). Give the one a killed run printed to
    /// resume it; default now.
    #[arg(long, value_name = "TIME")]
    pub run_start: Option<DateTime<Utc>>,
}

/// A loaded parameter file and where its data lives.
pub struct Loaded {
    pub spec: Spec,
    pub config: ObjectUrl,
    pub objects: Arc<dyn ObjectStore>,
}

/// For `…/train/<group>/config.json` the bucket root is the folder holding `train/` (as in local
/// mode); for any other path it is the file's own folder.
fn path_layout(path: &Path) -> anyhow::Result<(PathBuf, String)> {
    let path = std::fs::canonicalize(path).with_context(|| format!("cannot read {}", path.display()))?;
    let file = path
        .file_name()
        .and_then(|n| n.to_str())
        .context("the config path has no file name")?
        .to_string();
    let parent = path.parent().context("the config path has no folder")?;
    if let Some(group_dir) = parent.parent()
        && group_dir.file_name().and_then(|n| n.to_str()) == Some("train")
        && let (Some(root), Some(group)) = (group_dir.parent(), parent.file_name().and_then(|n| n.to_str()))
    {
        return Ok((root.to_path_buf(), format!("train/{group}/{file}")));
    }
    Ok((parent.to_path_buf(), file))
}

/// Reads and validates the parameter file; invalid files are an error listing every problem.
pub async fn load(source: &Source, target: &Target) -> anyhow::Result<Loaded> {
    let (objects, config): (Arc<dyn ObjectStore>, ObjectUrl) = if source.config.starts_with("s3://") {
        if let Some(dir) = &target.local {
            bail!(
                "with --local {} the parameter file is a path under {0}, not {}",
                dir.display(),
                source.config
            );
        }
        let url = ObjectUrl::parse(&source.config)?;
        let s3 = personalize_ops::aws::s3_client(&target.sdk, &target.settings.aws);
        (Arc::new(S3Store::new(s3)), url)
    } else {
        let (root, key) = path_layout(Path::new(&source.config))?;
        if let Some(dir) = &target.local {
            let dir_root =
                std::fs::canonicalize(dir).with_context(|| format!("cannot read {}", dir.display()))?;
            if root != dir_root {
                bail!(
                    "with --local {} the parameter file must be {}/train/<group>/config.json: the built-in \
                     Personalize of `local` reads data from {0} only",
                    dir.display(),
                    dir.display()
                );
            }
        }
        (
            Arc::new(DirStore::new(root, source.data_bucket.clone())),
            ObjectUrl::new(source.data_bucket.clone(), key),
        )
    };
    let bytes = objects
        .get(&config, personalize_ops::spec::MAX_FILE_BYTES as u64)
        .await
        .with_context(|| format!("cannot read the parameter file {config}"))?;
    let text = String::from_utf8(bytes.to_vec()).with_context(|| format!("{config} is not UTF-8"))?;
    let report = personalize_ops::spec::load(&text);
    for w in &report.warnings {
        tracing::warn!(path = %w.path, "{}", w.message);
    }
    let Some(spec) = report.spec else {
        let problems: Vec<String> = report
            .errors
            .iter()
            .map(|e| format!("{}: {}", e.path, e.message))
            .collect();
        bail!("{config} is not a valid parameter file:\n{}", problems.join("\n"));
    };
    Ok(Loaded {
        spec,
        config,
        objects,
    })
}

/// A reconciler over the SDK default chain's Personalize client with the settings of `ctx`
/// (AWS_ENDPOINT_URL_PERSONALIZE points it at a built-in Personalize).
pub fn reconciler(ctx: &Context, sdk: &aws_config::SdkConfig, objects: Arc<dyn ObjectStore>) -> Reconciler {
    reconciler_with(&ctx.settings, sdk, objects)
}

/// A reconciler over `sdk`'s Personalize client with `s`'s roles, polls and call rate.
pub fn reconciler_with(
    s: &Settings,
    sdk: &aws_config::SdkConfig,
    objects: Arc<dyn ObjectStore>,
) -> Reconciler {
    Reconciler::new(
        aws_sdk_personalize::Client::new(sdk),
        objects,
        &s.reconcile,
        &s.personalize,
        Arc::new(RateLimiter::new(s.reconcile.calls_per_second)),
    )
}

/// Writes a line to stdout; a closed stdout (`| head`) is ignored.
pub fn out(line: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{line}");
    let _ = stdout.flush();
}

/// Prints each event as it comes (`apply`, `destroy`).
pub struct Printer {
    pub format: Format,
}

impl EventSink for Printer {
    fn emit(&mut self, e: Event) {
        match self.format {
            Format::Json => out(&serde_json::to_string(&e).unwrap_or_default()),
            Format::Text => {
                let elapsed = e.elapsed_secs.map_or(String::new(), |s| format!("{s:>8.1}s "));
                let mut line = format!("{elapsed}{} {} {}", e.kind, e.name, e.status);
                if let Some(r) = &e.reason {
                    line.push_str(&format!(": {r}"));
                }
                if let Some(m) = &e.metrics {
                    let text: Vec<String> = m.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    line.push_str(&format!(" {}", text.join(" ")));
                }
                out(&line);
            }
        }
    }
}

pub async fn run(args: Args, ctx: &Context) -> anyhow::Result<ExitCode> {
    let target = match connect("apply", args.source.local.as_deref(), ctx).await? {
        Ok(target) => target,
        Err(code) => return Ok(code),
    };
    let loaded = load(&args.source, &target).await?;
    let run_start = args.run_start.unwrap_or_else(|| Utc::now().trunc_subsecs(0));
    let format = args.source.format;
    match format {
        Format::Json => out(&json!({"runStart": run_start, "config": loaded.config.to_string()}).to_string()),
        Format::Text => out(&format!(
            "apply {} (run start {}; resume with --run-start {})",
            loaded.config,
            run_start.to_rfc3339(),
            run_start.to_rfc3339()
        )),
    }
    let reconciler = reconciler_with(&target.settings, &target.sdk, Arc::clone(&loaded.objects));
    let cancel = CancellationToken::new();
    let stop = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            stop.cancel();
        }
    });
    let mut printer = Printer { format };
    let outcome = reconciler
        .apply(&loaded.spec, &loaded.config, run_start, &mut printer, &cancel)
        .await?;
    match format {
        Format::Json => out(&serde_json::to_string(&outcome)?),
        Format::Text => match &outcome {
            PassOutcome::Converged { resources } => {
                out(&format!("converged: {} resources", resources.len()));
            }
            PassOutcome::Failed { failures, .. } => {
                for f in failures {
                    out(&format!("FAILED {}: {}", f.target, f.reason));
                }
                out(&format!("failed: {} resources", failures.len()));
            }
            PassOutcome::Pending { .. } => out("interrupted"),
        },
    }
    Ok(match outcome {
        PassOutcome::Converged { .. } => ExitCode::SUCCESS,
        _ => ExitCode::from(EXIT_FAILURE),
    })
}
