//! Scheduled actions against the built-in Personalize, pass by pass: every action creates its own
//! one-shot resources, named from its fire instant and its kind, so no two actions (nor an action
//! and the file's own run) ever ask for the same name, and a resumed action finds its jobs by name.

mod support;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SubsecRound, TimeZone, Utc};
use personalize_ops::objects::ObjectUrl;
use personalize_ops::plan::{Kind, ScheduledWork};
use personalize_ops::reconcile::{Event, PassOutcome, Reconciler, Unguarded};
use personalize_ops::spec::model::{Spec, TrainingMode};
use personalize_ops::spec::names::{self, BatchEntry};
use support::reconcile::*;

/// Only catches a run that never ends: the emulator runs at time scale 0.
const PATIENCE: Duration = Duration::from_secs(90);

/// User-personalization (the recipe that trains in UPDATE mode) with a campaign, a batch job and
/// both training schedules. The solution's name is the longest the validator allows, so that a batch
/// job's collision-free name is shortened and loses the seconds of its timestamp.
const FILE: &str = r#"{
  "datasetGroup": {"serviceConfig": {"name": "sched-names"}},
  "datasets": {"interactions": {"dataset": {"serviceConfig": {"name": "sched-names-int"}},
    "schema": {"serviceConfig": {"name": "sched-names-int-schema", "schema": {"type": "record",
      "name": "Interactions", "namespace": "com.amazonaws.personalize.schema",
      "fields": [{"name": "USER_ID", "type": "string"}, {"name": "ITEM_ID", "type": "string"},
                 {"name": "TIMESTAMP", "type": "long"}], "version": "1.0"}}}}},
  "solutions": [{
    "serviceConfig": {"name": "sched-names-user-personalization-1234", "recipeArn": "arn:aws:personalize:::recipe/aws-user-personalization"},
    "workflowConfig": {"schedules": {"full": "rate(1 hour)", "update": "rate(1 hour)"}},
    "campaigns": [{"serviceConfig": {"name": "sched-names-camp", "minProvisionedTPS": 1}}],
    "batchInferenceJobs": [{"serviceConfig": {"numResults": 5}, "workflowConfig": {"schedule": "rate(1 hour)"}}]
  }]
}"#;

const LONE: BatchEntry = BatchEntry { index: 0, count: 1 };

const SOLUTION: &str = "sched-names-user-personalization-1234";

/// The file's run start: long before any fire.
fn file_run() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).single().expect("valid")
}

/// A fire instant that has just passed (the emulator stamps resources with the real time, and an
/// action's own version is one created at or after its fire).
async fn fire_now() -> DateTime<Utc> {
    // Resources created by the previous run carry an earlier instant than this fire.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    Utc::now().trunc_subsecs(0)
}

/// Passes of one run (the file's with `work` None, else a fire's) until it is no longer pending.
async fn run(
    r: &Reconciler,
    spec: &Spec,
    config: &ObjectUrl,
    start: DateTime<Utc>,
    work: Option<&ScheduledWork>,
    events: &mut Vec<Event>,
) -> PassOutcome {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let outcome = r
            .scheduled_pass(spec, config, start, work, Arc::new(Unguarded), events)
            .await
            .expect("the pass runs");
        match outcome {
            PassOutcome::Pending { next_poll_after, .. } => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "the run did not end; the last events: {:#?}",
                    &events[events.len().saturating_sub(15)..]
                );
                tokio::time::sleep(next_poll_after.min(Duration::from_millis(200))).await;
            }
            done => return done,
        }
    }
}

fn converged(outcome: &PassOutcome, what: &str) {
    assert!(
        matches!(outcome, PassOutcome::Converged { .. }),
        "{what}: {outcome:#?}"
    );
}

fn train(mode: TrainingMode) -> ScheduledWork {
    ScheduledWork::Train {
        solution: SOLUTION.into(),
        mode,
    }
}

fn batch() -> ScheduledWork {
    ScheduledWork::Batch {
        kind: Kind::BatchInferenceJob,
        solution: SOLUTION.into(),
        index: 0,
    }
}

/// Every batch inference job of the account: (name, solution version ARN).
async fn batch_jobs(client: &aws_sdk_personalize::Client) -> Vec<(String, String)> {
    let out = client
        .list_batch_inference_jobs()
        .max_results(100)
        .send()
        .await
        .expect("list batch jobs");
    let mut jobs: Vec<(String, String)> = out
        .batch_inference_jobs()
        .iter()
        .map(|j| {
            (
                j.job_name().unwrap_or_default().to_string(),
                j.solution_version_arn().unwrap_or_default().to_string(),
            )
        })
        .collect();
    jobs.sort();
    jobs
}

/// Every version of the solution: (ARN, training mode), oldest first.
async fn versions(client: &aws_sdk_personalize::Client) -> Vec<(String, String)> {
    versions_named(client)
        .await
        .into_iter()
        .map(|(arn, mode, _)| (arn, mode))
        .collect()
}

/// Every version of the solution: (ARN, training mode, name), oldest first.
async fn versions_named(client: &aws_sdk_personalize::Client) -> Vec<(String, String, String)> {
    let solution = client
        .list_solutions()
        .send()
        .await
        .expect("list solutions")
        .solutions()
        .iter()
        .find(|s| s.name() == Some(SOLUTION))
        .and_then(|s| s.solution_arn().map(str::to_string))
        .expect("the solution exists");
    let list = client
        .list_solution_versions()
        .solution_arn(&solution)
        .send()
        .await
        .expect("list versions");
    let mut out = Vec::new();
    for v in list.solution_versions() {
        let arn = v.solution_version_arn().unwrap_or_default().to_string();
        let d = client
            .describe_solution_version()
            .solution_version_arn(&arn)
            .send()
            .await
            .expect("describe version");
        let d = d.solution_version().expect("version");
        let created = d.creation_date_time().map(|t| t.as_nanos()).unwrap_or_default();
        out.push((
            created,
            arn,
            d.training_mode()
                .map(|m| m.as_str().to_string())
                .unwrap_or_default(),
            d.name().unwrap_or_default().to_string(),
        ));
    }
    out.sort();
    out.into_iter()
        .map(|(_, arn, mode, name)| (arn, mode, name))
        .collect()
}

/// The campaign's solution version ARN.
async fn campaign_version(client: &aws_sdk_personalize::Client) -> String {
    let list = client.list_campaigns().send().await.expect("list campaigns");
    let arn = list
        .campaigns()
        .iter()
        .find(|c| c.name() == Some("sched-names-camp"))
        .and_then(|c| c.campaign_arn().map(str::to_string))
        .expect("the campaign exists");
    let d = client
        .describe_campaign()
        .campaign_arn(arn)
        .send()
        .await
        .expect("describe campaign");
    d.campaign()
        .and_then(|c| c.solution_version_arn().map(str::to_string))
        .expect("a version")
}

/// The file's group, converged by a first run of the file.
struct Group {
    root: tempfile::TempDir,
    config: ObjectUrl,
    spec: Spec,
    emu: personalize_ops::emulator::Emulator,
    client: aws_sdk_personalize::Client,
    r: Reconciler,
}

impl Group {
    async fn converged() -> Self {
        let root = tempfile::tempdir().expect("tempdir");
        let (config, spec) = lay_out_text(root.path(), FILE);
        let emu = start_emulator(root.path(), |_| {}).await;
        let client = client(&emu);
        let r = reconciler(&emu, root.path(), &settings());
        let mut events: Vec<Event> = Vec::new();
        converged(
            &run(&r, &spec, &config, file_run(), None, &mut events).await,
            "the file's first run",
        );
        Self {
            root,
            config,
            spec,
            emu,
            client,
            r,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_retrain_with_batch_jobs_leaves_the_files_next_pass_converged() {
    let g = Group::converged().await;
    let (config, spec, client, r) = (&g.config, &g.spec, &g.client, &g.r);
    let mut events: Vec<Event> = Vec::new();
    let fire = fire_now().await;
    let update = train(TrainingMode::Update);
    converged(
        &run(r, spec, config, fire, Some(&update), &mut events).await,
        "the update fire",
    );
    let v = versions(client).await;
    assert_eq!(v.len(), 2, "{v:?}");
    assert_eq!(v[1].1, "UPDATE");
    assert_eq!(campaign_version(client).await, v[1].0);

    // The file's next pass (the group is due again after the action) finds everything in place.
    let outcome = run(r, spec, config, file_run(), None, &mut events).await;
    converged(&outcome, "the file's pass after the update fire");
    let jobs = batch_jobs(client).await;
    assert_eq!(jobs.len(), 2, "one job per version: {jobs:?}");
    assert!(jobs.iter().any(|(_, on)| on == &v[0].0), "{jobs:?}");
    assert!(jobs.iter().any(|(_, on)| on == &v[1].0), "{jobs:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_full_and_update_fires_at_one_instant_each_do_their_own_work() {
    let g = Group::converged().await;
    let (root, config, spec, emu, client, r) = (&g.root, &g.config, &g.spec, &g.emu, &g.client, &g.r);
    let mut events: Vec<Event> = Vec::new();
    let fire = fire_now().await;
    // The daemon runs a group's pending actions one after another, oldest fire first; fires of one
    // instant in the order of their schedule names (batch-…, solution-maintenance-full-…, -update-…).
    // Each action stops right after it asked for its batch job (its replica dies) and another
    // replica, remembering nothing, finishes it: it must find the version and the job by name.
    for (what, work) in [
        ("the batch fire", batch()),
        ("the full fire", train(TrainingMode::Full)),
        ("the update fire", train(TrainingMode::Update)),
    ] {
        let first = reconciler(emu, root.path(), &settings());
        let seen = events.len();
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while !events[seen..]
            .iter()
            .any(|e| e.kind == Kind::BatchInferenceJob && e.status == "CREATE REQUESTED")
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{what} never asked for its job"
            );
            let outcome = first
                .scheduled_pass(spec, config, fire, Some(&work), Arc::new(Unguarded), &mut events)
                .await
                .expect("the pass runs");
            assert!(
                matches!(outcome, PassOutcome::Pending { .. }),
                "{what}: {outcome:#?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let takeover = reconciler(emu, root.path(), &settings());
        let outcome = run(&takeover, spec, config, fire, Some(&work), &mut events).await;
        converged(&outcome, what);
    }
    let v = versions(client).await;
    let modes: Vec<&str> = v.iter().map(|(_, m)| m.as_str()).collect();
    assert_eq!(modes, vec!["FULL", "FULL", "UPDATE"], "{v:?}");
    assert_eq!(campaign_version(client).await, v[2].0);
    // Each retraining names its version for its fire and its mode.
    let named: Vec<String> = versions_named(client)
        .await
        .into_iter()
        .map(|(_, _, name)| name)
        .collect();
    assert_eq!(
        named[1..],
        [
            names::solution_version_name(SOLUTION, fire),
            names::update_version_name(SOLUTION, fire)
        ],
        "{named:?}"
    );
    let jobs = batch_jobs(client).await;
    // Each action's job is on its own version under its own name: the batch fire's keeps the
    // reference's form on the version it found; the retrainings' are named for their versions.
    let plain = names::batch_job_name(SOLUTION, LONE, fire);
    let expected = [
        (plain.clone(), v[0].0.clone()),
        (
            names::retrain_batch_job_name(SOLUTION, LONE, fire, &v[1].0),
            v[1].0.clone(),
        ),
        (
            names::retrain_batch_job_name(SOLUTION, LONE, fire, &v[2].0),
            v[2].0.clone(),
        ),
    ];
    for job in &expected {
        assert!(jobs.contains(job), "{job:?} in {jobs:?}");
    }
    assert_eq!(jobs.len(), 4, "the file's job and one per action: {jobs:?}");

    // The file's next pass finds everything in place (it used to fail the newest version's batch
    // job as "already exists in the account").
    let before = changes(emu);
    converged(
        &run(r, spec, config, file_run(), None, &mut events).await,
        "the file's pass after the fires",
    );
    // A replica that takes over (nothing remembered) and runs the file again changes nothing.
    let fresh = reconciler(emu, root.path(), &settings());
    converged(
        &run(&fresh, spec, config, file_run(), None, &mut events).await,
        "the file's pass on another replica",
    );
    assert_eq!(changes(emu), before, "nothing created or updated again");
    assert_eq!(batch_jobs(client).await, jobs);
    assert_eq!(versions(client).await, v);
}
