//! The promotion gate against the built-in Personalize: a scheduled retraining whose new version is
//! not good enough leaves the campaign and batch jobs on the serving version (the event says so with
//! both metrics); one that is good enough moves them.

mod support;

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use personalize_ops::emulator::Emulator;
use personalize_ops::objects::ObjectUrl;
use personalize_ops::plan::{Kind, ScheduledWork};
use personalize_ops::reconcile::{Event, PassOutcome, Reconciler};
use personalize_ops::spec::model::{Spec, TrainingMode};
use serde_json::json;
use support::reconcile::*;
use tokio_util::sync::CancellationToken;

const PATIENCE: Duration = Duration::from_secs(90);
const SOLUTION: &str = "user-personalization-solution";
const CAMPAIGN_ARN: &str =
    "arn:aws:personalize:us-east-1:000000000000:campaign/user-personalization-campaign";

/// A fire instant after everything the first apply created (the emulator stamps resources with
/// the real clock): the next whole second, once it has come.
async fn fire_instant() -> DateTime<Utc> {
    use chrono::SubsecRound;
    let fire = Utc::now().trunc_subsecs(0) + chrono::Duration::seconds(1);
    let wait = (fire - Utc::now()).to_std().unwrap_or_default();
    tokio::time::sleep(wait).await;
    fire
}

fn at(hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 2, hour, 0, 0)
        .single()
        .expect("valid")
}

/// The fixture with a promotion gate on the user-personalization solution.
fn gated(min_delta: f64) -> String {
    let text = std::fs::read_to_string(fixtures().join("dataset-group-name-1.json")).expect("fixture");
    let mut file: serde_json::Value = serde_json::from_str(&text).expect("json");
    let solution = &mut file["solutions"][2];
    assert_eq!(solution["serviceConfig"]["name"], SOLUTION);
    solution["workflowConfig"]["promotion"] =
        json!({"metric": "normalized_discounted_cumulative_gain_at_10", "minDelta": min_delta});
    file.to_string()
}

/// Passes of a scheduled FULL retraining of the solution until it settles.
async fn retrain(
    r: &Reconciler,
    spec: &Spec,
    config: &ObjectUrl,
    fire: DateTime<Utc>,
) -> (PassOutcome, Vec<Event>) {
    let work = ScheduledWork::Train {
        solution: SOLUTION.into(),
        mode: TrainingMode::Full,
    };
    let mut events = Vec::new();
    let run = async {
        loop {
            match r
                .scheduled_pass(
                    spec,
                    config,
                    fire,
                    Some(&work),
                    std::sync::Arc::new(personalize_ops::reconcile::Unguarded),
                    &mut events,
                )
                .await
            {
                Ok(PassOutcome::Pending { next_poll_after, .. }) => tokio::time::sleep(next_poll_after).await,
                Ok(done) => return done,
                Err(e) => panic!("pass: {e}"),
            }
        }
    };
    let outcome = tokio::time::timeout(PATIENCE, run)
        .await
        .expect("the retraining settles");
    (outcome, events)
}

async fn serving(emu: &Emulator) -> String {
    client(emu)
        .describe_campaign()
        .campaign_arn(CAMPAIGN_ARN)
        .send()
        .await
        .expect("describe")
        .campaign
        .and_then(|c| c.solution_version_arn)
        .expect("serving version")
}

async fn versions(emu: &Emulator) -> Vec<String> {
    let mut out: Vec<(Option<i64>, String)> = client(emu)
        .list_solution_versions()
        .solution_arn(format!(
            "arn:aws:personalize:us-east-1:000000000000:solution/{SOLUTION}"
        ))
        .send()
        .await
        .expect("list")
        .solution_versions
        .unwrap_or_default()
        .into_iter()
        .filter(|v| v.status.as_deref() == Some("ACTIVE"))
        .map(|v| {
            (
                v.creation_date_time.map(|t| t.as_nanos() as i64),
                v.solution_version_arn.unwrap_or_default(),
            )
        })
        .collect();
    out.sort();
    out.into_iter().map(|(_, arn)| arn).collect()
}

async fn set_up(dir: &std::path::Path, min_delta: f64) -> (Emulator, ObjectUrl, Spec, Reconciler) {
    let (config, spec) = lay_out_text(dir, &gated(min_delta));
    let emu = start_emulator(dir, |_| {}).await;
    let r = reconciler(&emu, dir, &settings());
    let mut events = Vec::new();
    let outcome = tokio::time::timeout(
        PATIENCE,
        r.apply(&spec, &config, at(3), &mut events, &CancellationToken::new()),
    )
    .await
    .expect("apply ends")
    .expect("apply runs");
    assert!(matches!(outcome, PassOutcome::Converged { .. }), "{outcome:#?}");
    (emu, config, spec, r)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_below_the_bar_stays_unused_and_the_event_gives_both_metrics() {
    let dir = tempfile::tempdir().expect("tempdir");
    // minDelta 0.5: a retraining on the same data cannot be 0.5 better in NDCG.
    let (emu, config, spec, r) = set_up(dir.path(), 0.5).await;
    let first = serving(&emu).await;
    let batch_jobs = calls_of(&emu, "CreateBatchInferenceJob");

    let (outcome, events) = retrain(&r, &spec, &config, fire_instant().await).await;
    assert!(
        matches!(outcome, PassOutcome::Converged { .. }),
        "{outcome:#?}\n{events:#?}"
    );
    let all = versions(&emu).await;
    assert_eq!(all.len(), 2, "the retraining trained a second version: {all:?}");
    assert_eq!(
        serving(&emu).await,
        first,
        "the campaign still serves the first version"
    );
    assert_eq!(calls_of(&emu, "UpdateCampaign"), 0);
    assert_eq!(
        calls_of(&emu, "CreateBatchInferenceJob"),
        batch_jobs,
        "no batch job for the unpromoted version"
    );
    let note = events
        .iter()
        .filter(|e| e.kind == Kind::SolutionVersion)
        .filter_map(|e| e.reason.as_deref())
        .find(|r| r.starts_with("not promoted"))
        .unwrap_or_else(|| panic!("{events:#?}"));
    assert!(note.contains(&all[1]) && note.contains(&first), "{note}");
    assert_eq!(
        note.matches("normalized_discounted_cumulative_gain_at_10")
            .count(),
        1,
        "{note}"
    );
    // Both figures, as GetSolutionMetrics reports them.
    let ndcg = |arn: String| {
        let emu = &emu;
        async move {
            client(emu)
                .get_solution_metrics()
                .solution_version_arn(arn)
                .send()
                .await
                .expect("metrics")
                .metrics
                .and_then(|m| m.get("normalized_discounted_cumulative_gain_at_10").copied())
                .expect("ndcg@10")
        }
    };
    let (new, old) = (ndcg(all[1].clone()).await, ndcg(first.clone()).await);
    assert!(
        note.contains(&format!(
            "has normalized_discounted_cumulative_gain_at_10 {new} <"
        )) && note.contains(&format!("{first} {old} + minDelta 0.5")),
        "{note}"
    );

    // What the daemon records for `status`: the version with the serving and the candidate and
    // their figures.
    let PassOutcome::Converged { resources } = &outcome else {
        unreachable!()
    };
    let version = resources
        .iter()
        .find(|r| {
            r.target.kind == Kind::SolutionVersion && first.contains(&format!("solution/{}/", r.target.name))
        })
        .expect("the version is listed");
    assert_eq!(version.arn.as_deref(), Some(first.as_str()), "{version:?}");
    assert_eq!(version.note.as_deref(), Some(note), "{version:?}");

    // Planning again keeps it that way: nothing to do.
    let plan = r.plan(&spec, &config, Utc::now()).await.expect("plan");
    assert!(!plan.has_changes(), "{:#?}", plan.steps);
    let step = plan
        .steps
        .iter()
        .find(|s| {
            s.target.kind == Kind::SolutionVersion && first.contains(&format!("solution/{}/", s.target.name))
        })
        .expect("version step");
    assert!(
        step.note
            .as_deref()
            .is_some_and(|n| n.contains(&all[1]) && n.contains(&first)),
        "plan shows the serving and the candidate version: {step:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_over_the_bar_moves_the_campaign() {
    let dir = tempfile::tempdir().expect("tempdir");
    // minDelta -1: any new version passes (NDCG is within 0..1).
    let (emu, config, spec, r) = set_up(dir.path(), -1.0).await;
    let first = serving(&emu).await;
    let (outcome, events) = retrain(&r, &spec, &config, fire_instant().await).await;
    assert!(
        matches!(outcome, PassOutcome::Converged { .. }),
        "{outcome:#?}\n{events:#?}"
    );
    let all = versions(&emu).await;
    assert_eq!(all.len(), 2, "{all:?}");
    assert_ne!(all[1], first);
    assert_eq!(serving(&emu).await, all[1], "{events:#?}");
    assert!(
        events
            .iter()
            .filter_map(|e| e.reason.as_deref())
            .any(|r| r.starts_with("promoted")),
        "{events:#?}"
    );
}
