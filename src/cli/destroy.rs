//! `personalize-ops destroy --config FILE_OR_S3_URI | --dataset-group NAME [--yes]`: removes a
//! dataset group and everything in it from Personalize, then its schedules and state.
//!
//! Without `--yes` it prints what it would delete, deletes nothing and exits 1 ("nothing deleted"), so
//! a script that forgot `--yes` does not go on as if the group were gone. With `--yes` it deletes in
//! dependants-first order, waiting for each deletion, and exits 0 only when everything is gone. A
//! group that does not exist is "nothing to delete" (exit 0): a second destroy succeeds. A destroy
//! killed at any point is finished by running it again.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use personalize_ops::objects::{DirStore, ObjectStore, ObjectUrl, S3Store};
use personalize_ops::plan::teardown::{TeardownAction, TeardownStep};
use personalize_ops::reconcile::{Failure, TeardownOutcome};
use personalize_ops::store::{Lease, LeaseGrant, Observed, StateStore};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::apply::{Format, Printer, Source, load, out, reconciler_with};
use super::local::LOCAL_BUCKET;
use super::personalize::{Target, connect};
use super::{Context, EXIT_FAILURE};

/// Arguments of `destroy`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("which").required(true).args(["config", "dataset_group"])))]
pub struct Args {
    /// The group's parameter file (a path or an s3:// URI): the group it names is destroyed, and its
    /// schemas are found by name even after its datasets are gone.
    #[arg(long, value_name = "FILE_OR_S3_URI")]
    pub config: Option<String>,

    /// The dataset group to destroy, by name.
    #[arg(long, value_name = "NAME")]
    pub dataset_group: Option<String>,

    /// Delete. Without it, the command prints what it would delete and deletes nothing (exit 1).
    #[arg(long)]
    pub yes: bool,

    /// Ask the built-in Personalize and the state of a running `personalize-ops local DIR`.
    #[arg(long, value_name = "DIR")]
    pub local: Option<std::path::PathBuf>,

    /// The bucket name a path config stands for.
    #[arg(long, value_name = "NAME", default_value = "local", conflicts_with = "local")]
    pub data_bucket: String,

    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

fn step_line(step: &TeardownStep) -> String {
    let t = &step.target;
    let status = if step.status.is_empty() {
        String::new()
    } else {
        format!(" ({})", step.status)
    };
    match &step.action {
        TeardownAction::Delete => format!("- delete {t}{status}"),
        TeardownAction::Stop => format!("- stop {t}{status}, then it goes with its solution"),
        TeardownAction::Wait { on } => format!("- delete {t}{status}, after {}", on.join(", ")),
        TeardownAction::Deleting { status } => format!("… {t} is being deleted ({status})"),
        TeardownAction::GoesWith { parent } => format!("- {t}{status} goes with {parent}"),
        TeardownAction::Keep { reason } => format!("= keep {t}: {reason}"),
    }
}

/// What the state store holds of the group: its schedules' names and the parameter file it recorded.
struct Recorded {
    store: Arc<dyn StateStore>,
    schedules: Vec<String>,
    /// The store holds the group, and not only as a tombstone of an earlier destroy.
    known: bool,
    /// The recorded parameter file's generation, which the tombstone will name (`None` when there
    /// is no file, or its removal was recorded).
    tombstone_generation: Option<u64>,
    source: Option<ObjectUrl>,
    schema_names: Vec<String>,
}

async fn recorded(store: Arc<dyn StateStore>, group: &str) -> anyhow::Result<Recorded> {
    let state = store
        .group(group)
        .await
        .with_context(|| format!("reading dataset group {group} in the state store"))?;
    let schedules = store
        .schedules(Some(group))
        .await
        .with_context(|| format!("reading the schedules of {group}"))?
        .into_iter()
        .map(|s| s.name)
        .collect();
    let desired = state.as_ref().and_then(|g| g.desired.as_ref());
    let schema_names = desired
        .and_then(|d| personalize_ops::spec::load(&d.text).spec)
        .map(|spec| spec.schema_names())
        .unwrap_or_default();
    let destroyed = state.as_ref().is_some_and(|g| {
        g.observed
            .as_ref()
            .is_some_and(|o| o.destroyed(g.desired.as_ref().map(|d| d.generation)))
    });
    Ok(Recorded {
        store,
        schedules,
        known: state.is_some() && !destroyed,
        tombstone_generation: desired.filter(|d| !d.is_removal()).map(|d| d.generation),
        source: desired.map(|d| d.source.url.clone()),
        schema_names,
    })
}

/// Records the teardown in the state store: a tombstone when it holds a parameter file (a resync or a
/// redelivered event of that same file version must not build the group again; a new upload does),
/// else the group is forgotten.
async fn forget(r: &Recorded, lease: &Lease, group: &str, format: Format) -> anyhow::Result<()> {
    let Some(generation) = r.tombstone_generation else {
        r.store
            .delete_group(lease)
            .await
            .with_context(|| format!("forgetting dataset group {group} in the state store"))?;
        if format == Format::Text {
            out(&format!("dataset group {group} forgotten in the state store"));
        }
        return Ok(());
    };
    let tombstone = Observed::tombstone(generation, chrono::Utc::now());
    r.store
        .put_observed(lease, &tombstone, None)
        .await
        .with_context(|| format!("marking dataset group {group} destroyed in the state store"))?;
    let _ = r.store.release_lease(lease).await;
    if format == Format::Text {
        out(&format!(
            "dataset group {group} marked destroyed in the state store: its parameter file (generation {generation}) is not built again; a new upload is"
        ));
    }
    Ok(())
}

/// The state store of `local DIR` (when it has one) or the settings' table (when one is set).
async fn open_store(args: &Args, ctx: &Context) -> anyhow::Result<Option<Arc<dyn StateStore>>> {
    if let Some(dir) = &args.local {
        let path = super::local::state_path(dir);
        if !path.exists() {
            return Ok(None);
        }
        let store = personalize_ops::store::SqliteStore::open(&path).context("the local state store")?;
        return Ok(Some(Arc::new(store)));
    }
    if ctx.settings.daemon.table_name.trim().is_empty() {
        return Ok(None);
    }
    match super::state::open_store("destroy", None, ctx).await? {
        Ok(store) => Ok(Some(store)),
        Err(_) => Ok(None),
    }
}

/// The lease owner of this command.
fn owner() -> String {
    format!("destroy@{}", personalize_ops::daemon::replica_name())
}

/// Takes the group's lease so that no worker of a running service reconciles the group while it is
/// torn down; waits (saying so) while another holder's lease runs.
async fn take_lease(store: &dyn StateStore, group: &str, duration: Duration) -> anyhow::Result<Lease> {
    let mut said = false;
    loop {
        match store
            .acquire_lease(group, &owner(), duration)
            .await
            .with_context(|| format!("taking the lease of dataset group {group}"))?
        {
            LeaseGrant::Acquired(lease) => return Ok(lease),
            LeaseGrant::Held { owner, expires_at } => {
                if !said {
                    out(&format!(
                        "waiting for {owner} to release dataset group {group} (its lease runs until {})",
                        expires_at.to_rfc3339()
                    ));
                    said = true;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

/// Renews `lease` every third of `duration` until `stop`; the last lease held is returned.
fn keep_lease(
    store: Arc<dyn StateStore>,
    lease: Lease,
    duration: Duration,
    stop: CancellationToken,
    lost: CancellationToken,
) -> tokio::task::JoinHandle<Lease> {
    tokio::spawn(async move {
        let mut lease = lease;
        loop {
            tokio::select! {
                () = tokio::time::sleep(duration / 3) => {}
                () = stop.cancelled() => return lease,
            }
            match store.renew_lease(&lease, duration).await {
                Ok(renewed) => lease = renewed,
                Err(e) => {
                    eprintln!("personalize-ops destroy: {e}");
                    lost.cancel();
                    return lease;
                }
            }
        }
    })
}

fn print_failures(failures: &[Failure]) {
    for f in failures {
        out(&format!("FAILED {}: {}", f.target, f.reason));
    }
}

pub async fn run(args: Args, ctx: &Context) -> anyhow::Result<ExitCode> {
    let target: Target = match connect("destroy", args.local.as_deref(), ctx).await? {
        Ok(target) => target,
        Err(code) => return Ok(code),
    };
    let store = open_store(&args, ctx).await?;
    // The group, the schemas its file names, and where that file lives.
    let (group, mut schemas, objects, config): (
        String,
        Vec<String>,
        Arc<dyn ObjectStore>,
        Option<ObjectUrl>,
    ) = match (&args.config, &args.dataset_group) {
        (Some(config), _) => {
            let source = Source {
                config: config.clone(),
                data_bucket: args.data_bucket.clone(),
                format: args.format,
                local: args.local.clone(),
            };
            let loaded = load(&source, &target).await?;
            (
                loaded.spec.dataset_group.name.clone(),
                loaded.spec.schema_names(),
                loaded.objects,
                Some(loaded.config),
            )
        }
        (None, Some(name)) => {
            // Only to look whether the recorded parameter file is still there.
            let objects: Arc<dyn ObjectStore> = match &args.local {
                Some(dir) => Arc::new(DirStore::new(dir.clone(), LOCAL_BUCKET)),
                None => Arc::new(S3Store::new(personalize_ops::aws::s3_client(
                    &target.sdk,
                    &target.settings.aws,
                ))),
            };
            (name.clone(), Vec::new(), objects, None)
        }
        (None, None) => anyhow::bail!("give --config FILE_OR_S3_URI or --dataset-group NAME"),
    };
    let recorded = match store {
        Some(store) => Some(recorded(store, &group).await?),
        None => None,
    };
    if let Some(r) = &recorded {
        schemas.extend(r.schema_names.iter().cloned());
        schemas.sort();
        schemas.dedup();
    }
    let reconciler = reconciler_with(&target.settings, &target.sdk, objects.clone());
    let steps = reconciler.teardown_plan(&group, &schemas).await?;
    let known = recorded.as_ref().is_some_and(|r| r.known);
    let schedules = recorded.as_ref().map_or(0, |r| r.schedules.len());
    let to_delete = steps
        .iter()
        .filter(|s| !matches!(s.action, TeardownAction::Keep { .. }))
        .count();
    match args.format {
        Format::Json => out(&json!({
            "datasetGroup": group,
            "steps": steps,
            "stateStore": {"known": known, "schedules": recorded.as_ref().map(|r| r.schedules.clone())},
        })
        .to_string()),
        Format::Text => {
            out(&format!("destroy dataset group {group}"));
            for s in &steps {
                out(&step_line(s));
            }
            if let Some(r) = &recorded {
                for name in &r.schedules {
                    out(&format!("- delete schedule {name}"));
                }
                if r.known {
                    out(&match r.tombstone_generation {
                        Some(g) => format!(
                            "- mark dataset group {group} destroyed in the state store (generation {g} of its parameter file is not built again)"
                        ),
                        None => format!("- forget dataset group {group} in the state store"),
                    });
                }
            } else {
                out(
                    "  (no state store: set daemon.table_name, or use --local DIR, to remove schedules and state too)",
                );
            }
        }
    }
    if to_delete == 0 && !known && schedules == 0 {
        out(&format!(
            "nothing to delete: dataset group {group} does not exist"
        ));
        return Ok(ExitCode::SUCCESS);
    }
    if !args.yes {
        out(&format!(
            "nothing deleted: {to_delete} resources and {schedules} schedules would be; run again with --yes to delete them"
        ));
        return Ok(ExitCode::from(EXIT_FAILURE));
    }

    let cancel = CancellationToken::new();
    let stop = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            stop.cancel();
        }
    });
    // Hold the group while tearing it down, and stop its schedules first so nothing fires meanwhile.
    let duration = ctx.settings.daemon.lease_duration();
    let held = match &recorded {
        Some(r) => {
            let lease = take_lease(r.store.as_ref(), &group, duration).await?;
            for name in &r.schedules {
                r.store
                    .delete_schedule(&lease, name)
                    .await
                    .with_context(|| format!("deleting schedule {name}"))?;
                out(&format!("schedule {name} DELETED"));
            }
            let renewer_stop = CancellationToken::new();
            let renewer = keep_lease(
                Arc::clone(&r.store),
                lease,
                duration,
                renewer_stop.clone(),
                cancel.clone(),
            );
            Some((r, renewer, renewer_stop))
        }
        None => None,
    };
    let mut printer = Printer { format: args.format };
    let outcome = reconciler.destroy(&group, &schemas, &mut printer, &cancel).await;
    let lease = match held {
        Some((r, renewer, renewer_stop)) => {
            renewer_stop.cancel();
            let lease = renewer.await.context("the lease renewal task")?;
            Some((r, lease))
        }
        None => None,
    };
    let outcome = match outcome {
        Ok(o) => o,
        Err(e) => {
            if let Some((r, lease)) = &lease {
                let _ = r.store.release_lease(lease).await;
            }
            return Err(e.into());
        }
    };
    if args.format == Format::Json {
        out(&serde_json::to_string(&outcome)?);
    }
    match outcome {
        TeardownOutcome::Finished { kept } => {
            if let Some((r, lease)) = &lease {
                forget(r, lease, &group, args.format).await?;
            }
            let file = config
                .as_ref()
                .or(recorded.as_ref().and_then(|r| r.source.as_ref()));
            let left_file = match file {
                // `local DIR` records its files in the bucket `local`; anything else is not in DIR.
                Some(url) if args.config.is_some() || args.local.is_none() || url.bucket == LOCAL_BUCKET => {
                    objects.head(url).await.ok().flatten().map(|_| url.clone())
                }
                _ => None,
            };
            if args.format == Format::Text {
                out(&format!(
                    "destroyed: dataset group {group} is gone{}",
                    if kept.is_empty() {
                        String::new()
                    } else {
                        format!(" ({} kept)", kept.len())
                    }
                ));
                let tombstoned = lease.is_some()
                    && recorded
                        .as_ref()
                        .is_some_and(|r| r.tombstone_generation.is_some());
                match left_file {
                    Some(url) if tombstoned => out(&format!(
                        "note: the parameter file {url} is still there; the service does not build the group again from this version of it, only from a new upload"
                    )),
                    Some(url) => out(&format!(
                        "note: the parameter file {url} is still there; remove it, or the service creates the group again on its next upload or resync"
                    )),
                    None => {}
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        TeardownOutcome::Failed { failures, .. } => {
            if let Some((r, lease)) = &lease {
                let _ = r.store.release_lease(lease).await;
            }
            if args.format == Format::Text {
                print_failures(&failures);
                out(&format!(
                    "failed: {} resources could not be deleted; the rest is gone or going",
                    failures.len()
                ));
            }
            Ok(ExitCode::from(EXIT_FAILURE))
        }
        TeardownOutcome::Pending { .. } => Ok(ExitCode::from(EXIT_FAILURE)),
    }
}
