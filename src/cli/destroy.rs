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
use personalize_ops::intake::{ConfigRead, ConfigReader as _, ObjectConfigReader, check_config_key};
use personalize_ops::objects::{DirStore, ObjectStore, ObjectUrl, S3Store};
use personalize_ops::plan::teardown::{TeardownAction, TeardownStep};
use personalize_ops::reconcile::{Failure, TeardownOutcome};
use personalize_ops::store::{
    Acquire, Arrival, DesiredSource, Lease, LeaseGrant, NewDesired, Observed, ObservedWrite, PutDesired,
    StateStore, classify,
};
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
    /// The `--config` file when the store does not hold that version of it yet: recorded before the
    /// tombstone is written, so the tombstone covers it and a resync finds it already recorded.
    record: Option<NewDesired>,
    source: Option<ObjectUrl>,
    schema_names: Vec<String>,
}

impl Recorded {
    /// Something in the store changes: the group is known, has schedules, or its file is recorded.
    fn has_work(&self) -> bool {
        self.known || !self.schedules.is_empty() || self.record.is_some()
    }
}

async fn recorded(
    store: Arc<dyn StateStore>,
    group: &str,
    file: Option<&NewDesired>,
) -> anyhow::Result<Recorded> {
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
    // Only a version the store would take as new needs recording; a duplicate is the recorded one.
    let record = file
        .filter(|f| desired.is_none_or(|d| classify(d, f) == Arrival::Newer))
        .cloned();
    Ok(Recorded {
        store,
        schedules,
        known: state.is_some() && !destroyed,
        tombstone_generation: desired.filter(|d| !d.is_removal()).map(|d| d.generation),
        record,
        source: desired.map(|d| d.source.url.clone()),
        schema_names,
    })
}

/// What `forget` left in the state store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Left {
    /// A tombstone naming this generation of the parameter file.
    Tombstone(u64),
    /// Nothing: the group is forgotten.
    Forgotten,
    /// A newer version of the file arrived while the group was torn down; the service builds it.
    Newer,
}

/// What the tombstone will name: the `--config` file's generation once recorded, else the store's.
async fn tombstone_generation(r: &Recorded, group: &str) -> anyhow::Result<Left> {
    let recorded = || r.tombstone_generation.map_or(Left::Forgotten, Left::Tombstone);
    let Some(file) = &r.record else {
        return Ok(recorded());
    };
    let put = r.store.put_desired(file).await.with_context(|| {
        format!(
            "recording the parameter file {} of {group} in the state store",
            file.source.url
        )
    })?;
    Ok(match put {
        PutDesired::Recorded(d) | PutDesired::Duplicate(d) => Left::Tombstone(d.generation),
        PutDesired::Superseded { .. } if r.tombstone_generation.is_none() => Left::Newer,
        PutDesired::Superseded { .. } => recorded(),
    })
}

/// Records the teardown in the state store: a tombstone when it holds a parameter file (a resync or a
/// redelivered event of that same file version must not build the group again; a new upload does),
/// else the group is forgotten.
async fn forget(r: &Recorded, lease: &Lease, group: &str, format: Format) -> anyhow::Result<Left> {
    let left = match tombstone_generation(r, group).await? {
        Left::Tombstone(generation) => {
            let tombstone = Observed::tombstone(generation, chrono::Utc::now());
            r.store
                .put_observed(lease, &tombstone, None, ObservedWrite::KEEP_LEASE)
                .await
                .with_context(|| format!("marking dataset group {group} destroyed in the state store"))?;
            let _ = r.store.release_lease(lease).await;
            Left::Tombstone(generation)
        }
        Left::Newer => {
            let _ = r.store.release_lease(lease).await;
            Left::Newer
        }
        Left::Forgotten => {
            r.store
                .delete_group(lease)
                .await
                .with_context(|| format!("forgetting dataset group {group} in the state store"))?;
            Left::Forgotten
        }
    };
    if format == Format::Text {
        out(&match left {
            Left::Tombstone(generation) => format!(
                "dataset group {group} marked destroyed in the state store: its parameter file (generation {generation}) is not built again; a new upload is"
            ),
            Left::Forgotten => format!("dataset group {group} forgotten in the state store"),
            Left::Newer => format!(
                "a newer version of the parameter file of {group} arrived meanwhile: the service builds it"
            ),
        });
    }
    Ok(left)
}

/// The `--config` file as the service's intake would record it, when the service reads it: a key
/// under `train/` in the service's bucket (`daemon.bucket`, any bucket when unset), or the file
/// under `local DIR`. A path elsewhere is no file of the service's, so it is not recorded.
async fn service_file(
    args: &Args,
    ctx: &Context,
    group: &str,
    objects: &Arc<dyn ObjectStore>,
    url: &ObjectUrl,
) -> anyhow::Result<Option<NewDesired>> {
    let bucket = ctx.settings.daemon.bucket.trim();
    let served = match &args.local {
        Some(_) => url.bucket == LOCAL_BUCKET,
        None => {
            args.config.as_deref().is_some_and(|c| c.starts_with("s3://"))
                && (bucket.is_empty() || bucket == url.bucket)
        }
    };
    if !served || check_config_key(&url.key).is_err() {
        return Ok(None);
    }
    let read = ObjectConfigReader(Arc::clone(objects))
        .read(url, personalize_ops::store::MAX_DESIRED_TEXT_BYTES as u64)
        .await
        .with_context(|| format!("cannot read the parameter file {url}"))?;
    let ConfigRead::Found {
        body,
        last_modified,
        etag,
    } = read
    else {
        return Ok(None);
    };
    let text = String::from_utf8(body.to_vec()).with_context(|| format!("{url} is not UTF-8"))?;
    Ok(Some(NewDesired {
        group: group.to_string(),
        text,
        source: DesiredSource {
            url: url.clone(),
            etag,
            version_id: None,
            sequencer: None,
            last_modified: Some(last_modified),
        },
    }))
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
            .acquire_lease(group, &owner(), duration, Acquire::Lease)
            .await
            .with_context(|| format!("taking the lease of dataset group {group}"))?
            .0
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

/// The group a destroy names, the schemas its file names, and where that file lives.
struct Named {
    group: String,
    schemas: Vec<String>,
    objects: Arc<dyn ObjectStore>,
    /// The `--config` file.
    config: Option<ObjectUrl>,
    /// That file as the service would record it (see [`service_file`]).
    file: Option<NewDesired>,
}

async fn named(args: &Args, ctx: &Context, target: &Target) -> anyhow::Result<Named> {
    match (&args.config, &args.dataset_group) {
        (Some(config), _) => {
            let source = Source {
                config: config.clone(),
                data_bucket: args.data_bucket.clone(),
                format: args.format,
                local: args.local.clone(),
            };
            let loaded = load(&source, target).await?;
            let group = loaded.spec.dataset_group.name.clone();
            let file = service_file(args, ctx, &group, &loaded.objects, &loaded.config).await?;
            Ok(Named {
                group,
                schemas: loaded.spec.schema_names(),
                objects: loaded.objects,
                config: Some(loaded.config),
                file,
            })
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
            Ok(Named {
                group: name.clone(),
                schemas: Vec::new(),
                objects,
                config: None,
                file: None,
            })
        }
        (None, None) => anyhow::bail!("give --config FILE_OR_S3_URI or --dataset-group NAME"),
    }
}

/// The schemas the file names and those of the file the store recorded.
fn all_schemas(mut schemas: Vec<String>, recorded: Option<&Recorded>) -> Vec<String> {
    if let Some(r) = recorded {
        schemas.extend(r.schema_names.iter().cloned());
    }
    schemas.sort();
    schemas.dedup();
    schemas
}

/// The state store's part of the plan, one line each.
fn store_lines(group: &str, r: &Recorded) -> Vec<String> {
    let mut lines: Vec<String> = r
        .schedules
        .iter()
        .map(|n| format!("- delete schedule {n}"))
        .collect();
    if let Some(file) = &r.record {
        lines.push(format!(
            "- record the parameter file {} in the state store and mark dataset group {group} destroyed (this version of it is not built again)",
            file.source.url
        ));
    } else if r.known {
        lines.push(match r.tombstone_generation {
            Some(g) => format!(
                "- mark dataset group {group} destroyed in the state store (generation {g} of its parameter file is not built again)"
            ),
            None => format!("- forget dataset group {group} in the state store"),
        });
    }
    lines
}

fn print_plan(format: Format, group: &str, steps: &[TeardownStep], recorded: Option<&Recorded>) {
    match format {
        Format::Json => out(&json!({
            "datasetGroup": group,
            "steps": steps,
            "stateStore": {
                "known": recorded.is_some_and(|r| r.known),
                "schedules": recorded.map(|r| r.schedules.clone()),
                "recordsFile": recorded.and_then(|r| r.record.as_ref()).map(|f| f.source.url.to_string()),
            },
        })
        .to_string()),
        Format::Text => {
            out(&format!("destroy dataset group {group}"));
            for s in steps {
                out(&step_line(s));
            }
            match recorded {
                Some(r) => store_lines(group, r).iter().for_each(|l| out(l)),
                None => out(
                    "  (no state store: set daemon.table_name, or use --local DIR, to remove schedules and state too)",
                ),
            }
        }
    }
}

/// The group's lease, renewed in the background while the teardown runs.
struct Held<'r> {
    recorded: &'r Recorded,
    renewer: tokio::task::JoinHandle<Lease>,
    stop: CancellationToken,
}

/// Takes the group's lease and deletes its schedules first, so nothing fires meanwhile; a lost
/// lease cancels `lost`.
async fn hold<'r>(
    r: &'r Recorded,
    group: &str,
    duration: Duration,
    lost: &CancellationToken,
) -> anyhow::Result<Held<'r>> {
    let lease = take_lease(r.store.as_ref(), group, duration).await?;
    for name in &r.schedules {
        r.store
            .delete_schedule(&lease, name)
            .await
            .with_context(|| format!("deleting schedule {name}"))?;
        out(&format!("schedule {name} DELETED"));
    }
    let stop = CancellationToken::new();
    let renewer = keep_lease(Arc::clone(&r.store), lease, duration, stop.clone(), lost.clone());
    Ok(Held {
        recorded: r,
        renewer,
        stop,
    })
}

impl<'r> Held<'r> {
    /// Stops the renewal; the last lease held.
    async fn stop(self) -> anyhow::Result<(&'r Recorded, Lease)> {
        self.stop.cancel();
        let lease = self.renewer.await.context("the lease renewal task")?;
        Ok((self.recorded, lease))
    }
}

/// A token cancelled by Ctrl-C.
fn cancel_on_ctrl_c() -> CancellationToken {
    let cancel = CancellationToken::new();
    let stop = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            stop.cancel();
        }
    });
    cancel
}

/// Everything is gone: records it in the store and says whether the parameter file is still there.
async fn finished(
    args: &Args,
    named: &Named,
    recorded: Option<&Recorded>,
    lease: Option<(&Recorded, &Lease)>,
    kept: &[TeardownStep],
) -> anyhow::Result<ExitCode> {
    let group = &named.group;
    let left = match lease {
        Some((r, lease)) => Some(forget(r, lease, group, args.format).await?),
        None => None,
    };
    if args.format != Format::Text {
        return Ok(ExitCode::SUCCESS);
    }
    let kept = if kept.is_empty() {
        String::new()
    } else {
        format!(" ({} kept)", kept.len())
    };
    out(&format!("destroyed: dataset group {group} is gone{kept}"));
    let file = named.config.as_ref().or(recorded.and_then(|r| r.source.as_ref()));
    let left_file = match file {
        // `local DIR` records its files in the bucket `local`; anything else is not in DIR.
        Some(url) if args.config.is_some() || args.local.is_none() || url.bucket == LOCAL_BUCKET => {
            named.objects.head(url).await.ok().flatten().map(|_| url.clone())
        }
        _ => None,
    };
    match (left_file, left) {
        (Some(url), Some(Left::Tombstone(_))) => out(&format!(
            "note: the parameter file {url} is still there; the service does not build the group again from this version of it, only from a new upload"
        )),
        (Some(url), _) => out(&format!(
            "note: the parameter file {url} is still there; remove it, or the service creates the group again on its next upload or resync"
        )),
        (None, _) => {}
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints what was planned; deletes it with `--yes`.
pub async fn run(args: Args, ctx: &Context) -> anyhow::Result<ExitCode> {
    let target: Target = match connect("destroy", args.local.as_deref(), ctx).await? {
        Ok(target) => target,
        Err(code) => return Ok(code),
    };
    let store = open_store(&args, ctx).await?;
    let named = named(&args, ctx, &target).await?;
    let group = named.group.as_str();
    let recorded = match store {
        Some(store) => Some(recorded(store, group, named.file.as_ref()).await?),
        None => None,
    };
    let schemas = all_schemas(named.schemas.clone(), recorded.as_ref());
    let reconciler = reconciler_with(&target.settings, &target.sdk, named.objects.clone());
    let steps = reconciler.teardown_plan(group, &schemas).await?;
    print_plan(args.format, group, &steps, recorded.as_ref());
    let to_delete = steps
        .iter()
        .filter(|s| !matches!(s.action, TeardownAction::Keep { .. }))
        .count();
    if to_delete == 0 && !recorded.as_ref().is_some_and(Recorded::has_work) {
        out(&format!(
            "nothing to delete: dataset group {group} does not exist"
        ));
        return Ok(ExitCode::SUCCESS);
    }
    if !args.yes {
        let schedules = recorded.as_ref().map_or(0, |r| r.schedules.len());
        out(&format!(
            "nothing deleted: {to_delete} resources and {schedules} schedules would be; run again with --yes to delete them"
        ));
        return Ok(ExitCode::from(EXIT_FAILURE));
    }
    let cancel = cancel_on_ctrl_c();
    let duration = ctx.settings.daemon.lease_duration();
    let held = match &recorded {
        Some(r) => Some(hold(r, group, duration, &cancel).await?),
        None => None,
    };
    let mut printer = Printer { format: args.format };
    let outcome = reconciler.destroy(group, &schemas, &mut printer, &cancel).await;
    let lease = match held {
        Some(held) => Some(held.stop().await?),
        None => None,
    };
    let release = || async {
        if let Some((r, lease)) = &lease {
            let _ = r.store.release_lease(lease).await;
        }
    };
    let outcome = match outcome {
        Ok(o) => o,
        Err(e) => {
            release().await;
            return Err(e.into());
        }
    };
    if args.format == Format::Json {
        out(&serde_json::to_string(&outcome)?);
    }
    match outcome {
        TeardownOutcome::Finished { kept } => {
            let lease = lease.as_ref().map(|(r, l)| (*r, l));
            finished(&args, &named, recorded.as_ref(), lease, &kept).await
        }
        TeardownOutcome::Failed { failures, .. } => {
            release().await;
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
