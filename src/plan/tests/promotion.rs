//! The promotion gate: a new version moves the campaigns and batch jobs only when it is good enough.

use std::collections::BTreeMap;

use serde_json::json;

use super::*;

const NDCG: &str = "normalized_discounted_cumulative_gain_at_10";
const SV_A2: &str = "solution/sol-a/v2";

fn gated(min_delta: f64) -> Spec {
    let mut f = file();
    f["solutions"][0]["workflowConfig"] = json!({"promotion": {"metric": NDCG, "minDelta": min_delta}});
    spec_of(&f)
}

/// [`converged`] plus a second ACTIVE version of sol-a (trained at 05:00) with `candidate` as its
/// metric, v1 (serving camp-a) having `serving`.
fn with_candidate(spec: &Spec, candidate: Option<f64>, serving: f64) -> Observation {
    let mut o = converged(spec);
    o.versions.get_mut("sol-a").expect("versions").push(VersionObs {
        meta: meta(SV_A2, "ACTIVE", t(5)),
        name: None,
        training_mode: Some("FULL".into()),
    });
    let metrics = |v: f64| BTreeMap::from([(NDCG.to_string(), v), ("coverage".to_string(), 0.9)]);
    o.metrics.insert(format!("{P}{SV_A}"), metrics(serving));
    if let Some(c) = candidate {
        o.metrics.insert(format!("{P}{SV_A2}"), metrics(c));
    }
    o
}

#[test]
fn a_worse_version_does_not_reach_the_campaign_and_the_note_gives_both_figures() {
    let spec = gated(0.0);
    let plan = plan(&spec, &with_candidate(&spec, Some(0.21), 0.25), &data(), &run());
    let version = step(&plan, Kind::SolutionVersion, "sol-a");
    assert_eq!(version.action, Action::Adopt);
    assert_eq!(version.arn.as_deref(), Some(format!("{P}{SV_A}").as_str()));
    let note = version.note.as_deref().expect("note");
    assert!(note.starts_with("not promoted"), "{note}");
    assert!(
        note.contains("0.21") && note.contains("0.25") && note.contains(SV_A2),
        "{note}"
    );
    // The campaign keeps serving v1, and the batch job of v1 is reused.
    assert_eq!(step(&plan, Kind::Campaign, "camp-a").action, Action::Adopt);
    assert!(
        step_of_kind(&plan, Kind::BatchInferenceJob).action.is_done(),
        "{:#?}",
        plan.steps
    );
    assert!(!plan.has_changes(), "{:#?}", plan.steps);
}

#[test]
fn a_better_or_equal_version_moves_the_campaign() {
    let spec = gated(0.0);
    for candidate in [0.30, 0.25] {
        let plan = plan(
            &spec,
            &with_candidate(&spec, Some(candidate), 0.25),
            &data(),
            &run(),
        );
        let version = step(&plan, Kind::SolutionVersion, "sol-a");
        assert_eq!(version.arn.as_deref(), Some(format!("{P}{SV_A2}").as_str()));
        assert!(
            version.note.as_deref().is_some_and(|n| n.starts_with("promoted")),
            "{version:?}"
        );
        match &step(&plan, Kind::Campaign, "camp-a").action {
            Action::Update {
                request:
                    Request::UpdateCampaign {
                        solution_version_arn, ..
                    },
                ..
            } => assert_eq!(solution_version_arn, &format!("{P}{SV_A2}")),
            other => panic!("{candidate}: {other:?}"),
        }
    }
}

#[test]
fn min_delta_raises_the_bar_and_an_unknown_metric_keeps_the_serving_version() {
    let spec = gated(0.1);
    let plan1 = plan(&spec, &with_candidate(&spec, Some(0.30), 0.25), &data(), &run());
    let version = step(&plan1, Kind::SolutionVersion, "sol-a");
    assert_eq!(version.arn.as_deref(), Some(format!("{P}{SV_A}").as_str()));
    assert!(
        version
            .note
            .as_deref()
            .is_some_and(|n| n.contains("minDelta 0.1")),
        "{version:?}"
    );

    let spec = gated(0.0);
    let plan2 = plan(&spec, &with_candidate(&spec, None, 0.25), &data(), &run());
    let version = step(&plan2, Kind::SolutionVersion, "sol-a");
    assert_eq!(version.arn.as_deref(), Some(format!("{P}{SV_A}").as_str()));
    assert!(
        version
            .note
            .as_deref()
            .is_some_and(|n| n.contains("unknown for the candidate")),
        "{version:?}"
    );
}

#[test]
fn without_a_gate_or_a_serving_version_the_newest_version_is_used() {
    let spec = spec();
    let plan1 = plan(&spec, &with_candidate(&spec, Some(0.1), 0.25), &data(), &run());
    assert_eq!(
        step(&plan1, Kind::SolutionVersion, "sol-a").arn.as_deref(),
        Some(format!("{P}{SV_A2}").as_str())
    );
    // A gated solution whose campaign does not exist yet: nothing serves, the newest is used.
    let spec = gated(0.0);
    let mut o = with_candidate(&spec, Some(0.1), 0.25);
    o.campaigns.clear();
    let plan2 = plan(&spec, &o, &data(), &run());
    let version = step(&plan2, Kind::SolutionVersion, "sol-a");
    assert_eq!(version.arn.as_deref(), Some(format!("{P}{SV_A2}").as_str()));
    assert!(version.note.is_none());
}
