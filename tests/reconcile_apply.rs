//! The reconciler against the built-in Personalize: every fixture converges, a second run changes
//! nothing, faults fail only what they hit, conflicts are reported.

mod reconcile_common;

use std::time::Duration;

use chrono::{TimeZone, Utc};
use personalize_ops::emulator::faults::FaultSpec;
use personalize_ops::plan::{Kind, Ref};
use personalize_ops::reconcile::{Event, PassOutcome};
use reconcile_common::*;
use tokio_util::sync::CancellationToken;

/// A generous bound: the emulator runs at time scale 0, so convergence takes seconds; this only
/// catches a reconciler that never ends.
const PATIENCE: Duration = Duration::from_secs(120);

fn run_start() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).single().expect("valid")
}

async fn apply(
    r: &personalize_ops::reconcile::Reconciler,
    spec: &personalize_ops::spec::model::Spec,
    config: &personalize_ops::objects::ObjectUrl,
    events: &mut Vec<Event>,
) -> PassOutcome {
    tokio::time::timeout(
        PATIENCE,
        r.apply(spec, config, run_start(), events, &CancellationToken::new()),
    )
    .await
    .expect("apply ends")
    .expect("apply runs")
}

/// The resources an outcome reports failed, as `kind name`, sorted.
fn failed(outcome: &PassOutcome) -> Vec<String> {
    let mut out: Vec<String> = match outcome {
        PassOutcome::Failed { failures, .. } | PassOutcome::Pending { failures, .. } => {
            failures.iter().map(|f| f.target.to_string()).collect()
        }
        PassOutcome::Converged { .. } => Vec::new(),
    };
    out.sort();
    out
}

/// The failures that are not only "something this needs failed", after checking that every such
/// dependant names a failed resource.
fn root_failures(outcome: &PassOutcome) -> Vec<String> {
    let PassOutcome::Failed { failures, resources } = outcome else {
        return failed(outcome);
    };
    let mut roots: Vec<String> = Vec::new();
    for f in failures {
        let state = resources
            .iter()
            .find(|r| r.target == f.target)
            .map(|r| r.status.as_str());
        if state == Some("DEPENDENCY FAILED") {
            assert!(f.reason.ends_with("cannot be used"), "{f:?}");
        } else {
            roots.push(f.target.to_string());
        }
    }
    roots.sort();
    roots
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fixture_converges_and_a_second_apply_changes_nothing() {
    // What Personalize rejects in the fixtures, and only that, fails.
    let cases: [(&str, &[&str]); 6] = [
        ("sample_config.json", &[]),
        // Recommenders in a group without a domain (the validator warns; Personalize refuses).
        ("sample_config_wtags.json", &["recommender ddsg-most-viewed"]),
        // An interactions schema without TIMESTAMP: CreateDataset is refused; what needs it fails too.
        ("sample_config_root_tags.json", &["dataset interactions-dataset"]),
        ("dataset-group-name-1.json", &[]),
        ("dataset-group-name-2.json", &[]),
        ("dataset-group-name-3.json", &[]),
    ];
    let mut report = Vec::new();
    for (fixture, expected_failures) in cases {
        let dir = tempfile::tempdir().expect("tempdir");
        let (config, spec) = lay_out(dir.path(), fixture);
        let emu = start_emulator(dir.path(), |_| {}).await;
        let settings = settings();
        let r = reconciler(&emu, dir.path(), &settings);
        let mut events = Vec::new();
        let outcome = apply(&r, &spec, &config, &mut events).await;
        let failures = root_failures(&outcome);
        if failures != expected_failures {
            report.push(format!(
                "{fixture}: expected failures {expected_failures:?}, got {failures:?}"
            ));
            continue;
        }
        if expected_failures.is_empty() {
            assert!(
                matches!(outcome, PassOutcome::Converged { .. }),
                "{fixture}: {outcome:#?}"
            );
        }
        let created = changes(&emu);
        assert!(created > 0, "{fixture}");
        if !spec.solutions.is_empty() && expected_failures.is_empty() {
            // Solution versions report their metrics once.
            assert!(
                events
                    .iter()
                    .any(|e| e.status == "METRICS" && e.metrics.as_ref().is_some_and(|m| !m.is_empty())),
                "{fixture}: {events:#?}"
            );
        }

        // A second apply (a new reconciler, as a new process would be) makes no change.
        let again = reconciler(&emu, dir.path(), &settings);
        let mut events2 = Vec::new();
        let outcome = apply(&again, &spec, &config, &mut events2).await;
        assert_eq!(
            root_failures(&outcome),
            expected_failures,
            "{fixture}: {outcome:#?}"
        );
        let refused = expected_failures.len() as u64;
        assert_eq!(
            changes(&emu),
            created + refused,
            "{fixture}: the second apply created or updated something (beyond retrying what was refused): {events2:#?}"
        );
        // ... and plan shows no change but the refused ones.
        let plan = again.plan(&spec, &config, Utc::now()).await.expect("plan");
        let changing: Vec<String> = plan
            .steps
            .iter()
            .filter(|s| s.action.is_ready())
            .map(|s| s.target.to_string())
            .collect();
        assert_eq!(changing, expected_failures, "{fixture}: {:#?}", plan.steps);
        emu.shutdown().await;
    }
    assert!(report.is_empty(), "{}", report.join("\n\n"));
}
