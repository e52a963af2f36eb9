//! The reconciler against the built-in Personalize: every fixture converges, a second run changes
//! nothing, faults fail only what they hit, conflicts are reported.

mod support;

#[path = "../examples/support/fleet.rs"]
#[allow(dead_code)]
mod fleet;

use std::time::Duration;

use chrono::Utc;
use personalize_ops::emulator::faults::FaultSpec;
use personalize_ops::plan::{Kind, Ref};
use personalize_ops::reconcile::{Event, PassOutcome};
use support::reconcile::*;

/// A generous bound: the emulator runs at time scale 0, so convergence takes seconds; this only
/// catches a reconciler that never ends.
const PATIENCE: Duration = Duration::from_secs(60);

async fn apply(
    r: &personalize_ops::reconcile::Reconciler,
    spec: &personalize_ops::spec::model::Spec,
    config: &personalize_ops::objects::ObjectUrl,
    events: &mut Vec<Event>,
) -> PassOutcome {
    apply_within(r, spec, config, run_start(), events).await
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
            assert!(f.reason.starts_with("not attempted: it needs "), "{f:?}");
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
        emu.shutdown()
            .await
            .expect("the emulator saves its state on shutdown");
    }
    assert!(report.is_empty(), "{}", report.join("\n\n"));
}

/// A Domain group's recommenders wait for the imports and converge.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_domain_group_gets_its_recommenders_after_the_import() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (config, spec) = lay_out_text(dir.path(), DOMAIN_EXAMPLE);
    let emu = start_emulator(dir.path(), |_| {}).await;
    let r = reconciler(&emu, dir.path(), &settings());
    let mut events = Vec::new();
    let outcome = apply(&r, &spec, &config, &mut events).await;
    let PassOutcome::Converged { resources } = &outcome else {
        panic!("{outcome:#?}\n{events:#?}");
    };
    let active: Vec<&str> = resources
        .iter()
        .filter(|r| r.target.kind == Kind::Recommender && r.status == "ACTIVE")
        .map(|r| r.target.name.as_str())
        .collect();
    assert_eq!(active, ["vod-top-picks", "vod-more-like-x"]);
    assert_eq!(calls_of(&emu, "CreateRecommender"), 2);
    // The recommenders were requested only after the import was ACTIVE.
    let import_active = events
        .iter()
        .position(|e| e.kind == Kind::DatasetImportJob && e.status == "ACTIVE")
        .expect("import active");
    let first_recommender = events
        .iter()
        .position(|e| e.kind == Kind::Recommender && e.status == "CREATE REQUESTED")
        .expect("recommender requested");
    assert!(import_active < first_recommender, "{events:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_percent_throttling_converges_without_duplicates() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (config, spec) = lay_out(dir.path(), "sample_config.json");
    let emu = start_emulator(dir.path(), |c| {
        c.faults = FaultSpec {
            seed: Some(7),
            throttle_rate: 0.3,
            ..FaultSpec::default()
        };
    })
    .await;
    let r = reconciler(&emu, dir.path(), &settings());
    let mut events = Vec::new();
    let outcome = apply(&r, &spec, &config, &mut events).await;
    assert!(matches!(outcome, PassOutcome::Converged { .. }), "{outcome:#?}");
    let counts = emu.calls();
    let throttled: u64 = counts.throttled.values().sum();
    assert!(throttled > 10, "the fault was injected: {counts:?}");
    // Throttled creates were retried, never doubled: one solution version per solution.
    emu.set_faults(FaultSpec::default()).expect("faults off");
    let c = client(&emu);
    for s in &spec.solutions {
        let arn = format!("arn:aws:personalize:us-east-1:000000000000:solution/{}", s.name);
        let versions = c
            .list_solution_versions()
            .solution_arn(&arn)
            .send()
            .await
            .expect("list");
        assert_eq!(versions.solution_versions().len(), 1, "{}", s.name);
    }
}

/// Applies the reference sample to a built-in Personalize started with `faults`.
async fn apply_sample_with_faults(
    faults: &str,
) -> (
    tempfile::TempDir,
    personalize_ops::emulator::Emulator,
    personalize_ops::spec::model::Spec,
    PassOutcome,
    Vec<Event>,
) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (config, spec) = lay_out(dir.path(), "sample_config.json");
    let emu = start_emulator(dir.path(), |c| {
        c.faults = FaultSpec::parse(faults).expect("fault spec");
    })
    .await;
    let r = reconciler(&emu, dir.path(), &settings());
    let mut events = Vec::new();
    let outcome = apply(&r, &spec, &config, &mut events).await;
    (dir, emu, spec, outcome, events)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_version_fails_with_its_reason_while_other_solutions_converge() {
    let (_dir, emu, spec, outcome, events) =
        apply_sample_with_faults("fail.solution-version=^unit_test_sims_new$").await;
    let PassOutcome::Failed { failures, resources } = &outcome else {
        panic!("{outcome:#?}");
    };
    assert_eq!(failures.len(), 1, "{failures:#?}");
    assert_eq!(
        failures[0].target,
        Ref::new(Kind::SolutionVersion, "unit_test_sims_new")
    );
    assert!(
        failures[0].reason.starts_with("CREATE FAILED"),
        "{}",
        failures[0].reason
    );
    assert!(
        failures[0].reason.len() > "CREATE FAILED: ".len(),
        "Personalize's reason is kept"
    );
    for other in [
        "unit_test_popularity_count_new",
        "unit_test_personalized_ranking_new",
    ] {
        let v = resources
            .iter()
            .find(|r| r.target == Ref::new(Kind::SolutionVersion, other))
            .expect("planned");
        assert_eq!(v.status, "ACTIVE", "{other}");
    }
    assert!(resources.iter().any(|r| r.target
        == Ref::new(Kind::Campaign, "unit_test_personalized_ranking_new_campaign")
        && r.status == "ACTIVE"));
    // The failure was reported once as an event with the reason, and not retrained in a loop.
    assert!(
        events
            .iter()
            .any(|e| e.kind == Kind::SolutionVersion && e.status == "FAILED" && e.reason.is_some())
    );
    assert_eq!(
        calls_of(&emu, "CreateSolutionVersion"),
        spec.solutions.len() as u64
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_import_leaves_versions_filters_and_campaigns_not_attempted() {
    let (_dir, emu, spec, outcome, _) =
        apply_sample_with_faults("fail.dataset-import-job=^dataset_import_interactions").await;
    let PassOutcome::Failed { failures, resources } = &outcome else {
        panic!("{outcome:#?}");
    };
    let import = failures
        .iter()
        .find(|f| f.target.kind == Kind::DatasetImportJob)
        .unwrap_or_else(|| panic!("the import failed: {failures:#?}"));
    assert!(import.reason.starts_with("CREATE FAILED"), "{import:?}");
    let status = |kind: Kind, name: &str| {
        resources
            .iter()
            .find(|r| r.target == Ref::new(kind, name))
            .map(|r| r.status.clone())
            .unwrap_or_else(|| panic!("{kind} {name} planned"))
    };
    for s in &spec.solutions {
        assert_eq!(
            status(Kind::SolutionVersion, &s.name),
            "DEPENDENCY FAILED",
            "{}",
            s.name
        );
        // The solutions themselves do not need the data: they are created.
        assert_eq!(status(Kind::Solution, &s.name), "ACTIVE", "{}", s.name);
    }
    for f in &spec.filters {
        assert_eq!(status(Kind::Filter, &f.name), "DEPENDENCY FAILED", "{}", f.name);
    }
    let version = failures
        .iter()
        .find(|f| f.target.kind == Kind::SolutionVersion)
        .expect("versions reported");
    assert_eq!(
        version.reason,
        format!("not attempted: it needs {}, which failed", import.target)
    );
    assert_eq!(root_failures(&outcome), vec![import.target.to_string()]);
    // Not attempted means no call: nothing trained, no filter, no campaign.
    for op in [
        "CreateSolutionVersion",
        "CreateFilter",
        "CreateCampaign",
        "CreateBatchInferenceJob",
    ] {
        assert_eq!(calls_of(&emu, op), 0, "{op}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_schema_is_a_conflict_in_plan_and_apply() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (config, spec) = lay_out(dir.path(), "dataset-group-name-1.json");
    let emu = start_emulator(dir.path(), |_| {}).await;
    let r = reconciler(&emu, dir.path(), &settings());
    let outcome = apply(&r, &spec, &config, &mut Vec::new()).await;
    assert!(matches!(outcome, PassOutcome::Converged { .. }), "{outcome:#?}");

    // The users schema gains a field in the file.
    let text = std::fs::read_to_string(fixtures().join("dataset-group-name-1.json")).expect("fixture");
    let mut value: serde_json::Value = serde_json::from_str(&text).expect("json");
    value["datasets"]["users"]["schema"]["serviceConfig"]["schema"]["fields"]
        .as_array_mut()
        .expect("fields")
        .push(serde_json::json!({"name": "COUNTRY", "type": "string", "categorical": true}));
    let changed = personalize_ops::spec::load(&value.to_string())
        .spec
        .expect("valid");
    let before = changes(&emu);

    let plan = r.plan(&changed, &config, Utc::now()).await.expect("plan");
    let step = plan
        .step(&Ref::new(Kind::Schema, "users-schema"))
        .expect("schema step");
    match &step.action {
        personalize_ops::plan::Action::Conflict { differences } => {
            assert!(
                differences.iter().any(|d| d.contains("schema.fields")),
                "{differences:?}"
            )
        }
        other => panic!("{other:?}"),
    }
    let mut events = Vec::new();
    let outcome = apply(&r, &changed, &config, &mut events).await;
    let PassOutcome::Failed { failures, .. } = &outcome else {
        panic!("{outcome:#?}");
    };
    assert_eq!(failures.len(), 1, "{failures:#?}");
    assert_eq!(failures[0].target, Ref::new(Kind::Schema, "users-schema"));
    assert!(failures[0].reason.contains("COUNTRY"), "{}", failures[0].reason);
    assert_eq!(changes(&emu), before, "a conflict is never silently replaced");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_groups_starting_in_the_same_second_each_import_their_own_data() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (config1, spec1) = lay_out(dir.path(), "dataset-group-name-1.json");
    let text = std::fs::read_to_string(fixtures().join("dataset-group-name-1.json"))
        .expect("fixture")
        .replace("dataset-group-name-1", "dataset-group-twin")
        .replace("\"users-schema\"", "\"twin-users-schema\"")
        .replace("\"interactions-schema\"", "\"twin-interactions-schema\"")
        .replace("-solution\"", "-twin-solution\"")
        .replace("_campaign\"", "_twin_campaign\"")
        .replace("-campaign\"", "-twin-campaign\"");
    let (config2, spec2) = lay_out_text(dir.path(), &text);
    let emu = start_emulator(dir.path(), |_| {}).await;
    let settings = settings();
    let r = std::sync::Arc::new(reconciler(&emu, dir.path(), &settings));
    let (a, b) = tokio::join!(
        async {
            let mut ev = Vec::new();
            apply(&r, &spec1, &config1, &mut ev).await
        },
        async {
            let mut ev = Vec::new();
            apply(&r, &spec2, &config2, &mut ev).await
        }
    );
    // The tracker and the filters keep their names in the twin, and those names are unique per
    // account: for each shared name, whichever group asked second fails on it (never adopting the
    // other's). The two groups race name by name, so one group may win the tracker and the other
    // the filters: each shared name fails in exactly one group, nothing else fails.
    let failures: Vec<_> = [&a, &b]
        .iter()
        .flat_map(|o| match o {
            PassOutcome::Failed { failures, .. } => failures.clone(),
            _ => Vec::new(),
        })
        .collect();
    assert!(!failures.is_empty(), "{a:#?}\n{b:#?}");
    for f in &failures {
        match f.target.kind {
            Kind::EventTracker => assert!(f.reason.contains("already exists in the account"), "{}", f.reason),
            Kind::Filter => assert!(f.reason.contains("belongs to"), "{}", f.reason),
            other => panic!("only the shared names fail, not {other}: {f:?}"),
        }
    }
    let mut failed: Vec<_> = failures.iter().map(|f| f.target.clone()).collect();
    let all = failed.len();
    failed.sort_by_key(|t| format!("{t:?}"));
    failed.dedup();
    assert_eq!(
        failed.len(),
        all,
        "a shared name fails in one group only: {failures:#?}"
    );
    assert_eq!(
        failures
            .iter()
            .filter(|f| f.target.kind == Kind::EventTracker)
            .count(),
        1,
        "{failures:#?}"
    );
    assert_eq!(
        failures.iter().filter(|f| f.target.kind == Kind::Filter).count(),
        spec1.filters.len(),
        "every shared filter name fails in one group: {failures:#?}"
    );
    // Each dataset has exactly its own import jobs: the second group used a collision-free name.
    let c = client(&emu);
    let mut names = Vec::new();
    for group in ["dataset-group-name-1", "dataset-group-twin"] {
        for ty in ["INTERACTIONS", "USERS"] {
            let arn = format!("arn:aws:personalize:us-east-1:000000000000:dataset/{group}/{ty}");
            let jobs = c
                .list_dataset_import_jobs()
                .dataset_arn(&arn)
                .send()
                .await
                .expect("list");
            assert_eq!(jobs.dataset_import_jobs().len(), 1, "{group} {ty}");
            names.push(jobs.dataset_import_jobs()[0].job_name.clone().expect("name"));
        }
    }
    let distinct: std::collections::BTreeSet<_> = names.iter().collect();
    assert_eq!(distinct.len(), names.len(), "{names:?}");
}

// ----- the binary: plan and apply -----

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_applies_then_plans_no_change_and_reports_failures_with_exit_1() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_, spec) = lay_out(dir.path(), "dataset-group-name-1.json");
    let config = dir.path().join("train/dataset-group-name-1/config.json");
    let config = config.to_str().expect("utf-8 path");
    let emu = start_emulator(dir.path(), |c| {
        c.faults = FaultSpec::parse("fail.solution-version=^sims-solution$").expect("spec");
    })
    .await;
    let cli = Cli::new(&emu);

    let plan = cli.output(&["plan", "--config", config]).await;
    let plan_text = text(&plan.stdout);
    assert!(plan.status.success(), "{plan_text}\n{}", text(&plan.stderr));
    assert!(
        plan_text.contains("+ create dataset-group dataset-group-name-1"),
        "{plan_text}"
    );
    assert_eq!(changes(&emu), 0, "plan changes nothing");

    let apply = cli.output(&["apply", "--config", config]).await;
    let out = text(&apply.stdout);
    assert_eq!(apply.status.code(), Some(1), "{out}\n{}", text(&apply.stderr));
    assert!(
        out.contains("solution-version sims-solution CREATE REQUESTED"),
        "{out}"
    );
    let failed_line = out
        .lines()
        .find(|l| l.starts_with("FAILED"))
        .expect("a FAILED line");
    assert!(
        failed_line.starts_with("FAILED solution-version sims-solution: CREATE FAILED"),
        "{out}"
    );
    assert_eq!(
        out.lines().filter(|l| l.starts_with("FAILED")).count(),
        1,
        "{out}"
    );

    // Without the fault, a new run trains the failed solution again and converges. Runs are told
    // apart by their start second, so the next one starts in a later second.
    emu.set_faults(FaultSpec::default()).expect("faults off");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let apply = cli
        .output(&["apply", "--config", config, "--format", "json"])
        .await;
    let out = text(&apply.stdout);
    assert!(apply.status.success(), "{out}\n{}", text(&apply.stderr));
    let last: serde_json::Value = serde_json::from_str(out.lines().last().expect("lines")).expect("json");
    assert_eq!(last["outcome"], "converged", "{out}");
    for l in out.lines() {
        serde_json::from_str::<serde_json::Value>(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}"));
    }

    let before = changes(&emu);
    let plan = cli.output(&["plan", "--config", config]).await;
    let plan_text = text(&plan.stdout);
    assert!(plan.status.success());
    assert!(
        !plan_text.contains("+ create") && !plan_text.contains("~ update"),
        "{plan_text}"
    );
    assert!(
        plan_text.contains("= solution sims-solution (exists)"),
        "{plan_text}"
    );
    assert!(
        plan_text
            .lines()
            .last()
            .expect("summary")
            .starts_with("0 to create, 0 to update, 0 waiting"),
        "{plan_text}"
    );
    let json = cli
        .output(&["plan", "--config", config, "--format", "json"])
        .await;
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).expect("plan json");
    assert_eq!(
        v["steps"].as_array().expect("steps").len(),
        plan_text.lines().filter(|l| l.starts_with('=')).count()
    );
    assert_eq!(changes(&emu), before);
    let _ = spec;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_apply_at_any_point_and_rerunning_converges_without_duplicates() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_, spec) = lay_out(dir.path(), "sample_config.json");
    let config = dir.path().join("train/unit_test_new_datasetgroup/config.json");
    let config = config.to_str().expect("utf-8 path").to_string();
    // Realistic durations shrunk so one run takes a few seconds: a 2 h training takes 3.6 s.
    let emu = start_emulator(dir.path(), |c| c.time_scale = 0.0005).await;
    let cli = Cli::new(&emu);
    let run_start = "2026-01-02T03:04:05Z";
    for kill_after_ms in [150u64, 400, 900, 1600, 2500, 4000] {
        let mut child = cli
            .command(&["apply", "--config", &config, "--run-start", run_start])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("apply starts");
        std::thread::sleep(Duration::from_millis(kill_after_ms));
        // SIGKILL: no chance to clean up.
        child.kill().expect("killed");
        child.wait().expect("reaped");
    }
    let done = cli
        .output(&["apply", "--config", &config, "--run-start", run_start])
        .await;
    let out = text(&done.stdout);
    assert!(done.status.success(), "{out}\n{}", text(&done.stderr));
    assert!(
        out.lines().last().is_some_and(|l| l.starts_with("converged")),
        "{out}"
    );

    // No duplicates: one import per dataset with data, one version per solution, one batch job per
    // entry, one of every named resource.
    let c = client(&emu);
    let p = "arn:aws:personalize:us-east-1:000000000000:";
    for ty in ["INTERACTIONS", "USERS"] {
        let jobs = c
            .list_dataset_import_jobs()
            .dataset_arn(format!("{p}dataset/unit_test_new_datasetgroup/{ty}"))
            .send()
            .await
            .expect("list");
        assert_eq!(
            jobs.dataset_import_jobs().len(),
            1,
            "{ty}: {:?}",
            jobs.dataset_import_jobs()
        );
    }
    for s in &spec.solutions {
        let versions = c
            .list_solution_versions()
            .solution_arn(format!("{p}solution/{}", s.name))
            .send()
            .await
            .expect("list");
        assert_eq!(versions.solution_versions().len(), 1, "{}", s.name);
        let v = versions.solution_versions()[0]
            .solution_version_arn
            .clone()
            .expect("arn");
        let inference = c
            .list_batch_inference_jobs()
            .solution_version_arn(&v)
            .send()
            .await
            .expect("list");
        assert_eq!(
            inference.batch_inference_jobs().len(),
            s.batch_inference_jobs.len(),
            "{}",
            s.name
        );
        let segment = c
            .list_batch_segment_jobs()
            .solution_version_arn(&v)
            .send()
            .await
            .expect("list");
        assert_eq!(
            segment.batch_segment_jobs().len(),
            s.batch_segment_jobs.len(),
            "{}",
            s.name
        );
    }
    let groups = c.list_dataset_groups().send().await.expect("list");
    assert_eq!(groups.dataset_groups().len(), 1);
    let trackers = c
        .list_event_trackers()
        .dataset_group_arn(format!("{p}dataset-group/unit_test_new_datasetgroup"))
        .send()
        .await
        .expect("list");
    assert_eq!(trackers.event_trackers().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_seam_converges_a_generation_and_reports_changes_counters_and_metrics() {
    use personalize_ops::daemon::PersonalizeReconciler;
    use personalize_ops::daemon::{GroupReconciler, PassInput, PassSink, PassStatus};
    use personalize_ops::store::{Desired, DesiredSource};

    let dir = tempfile::tempdir().expect("tempdir");
    let (config, spec) = lay_out(dir.path(), "dataset-group-name-1.json");
    let emu = start_emulator(dir.path(), |_| {}).await;
    let seam = PersonalizeReconciler::new(std::sync::Arc::new(reconciler(&emu, dir.path(), &settings())));
    let desired = Desired {
        generation: 1,
        text: std::fs::read_to_string(fixtures().join("dataset-group-name-1.json")).expect("fixture"),
        source: DesiredSource {
            url: config.clone(),
            etag: None,
            version_id: None,
            sequencer: None,
            last_modified: None,
        },
        received_at: run_start(),
        run_timestamp: personalize_ops::spec::names::timestamp(run_start()),
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel(10_000);
    let metrics = std::sync::Arc::new(personalize_ops::metrics::MemorySink::new());
    let sink = PassSink::new(spec.dataset_group.name.clone(), tx, metrics.clone());
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let report = loop {
        let unguarded: std::sync::Arc<dyn personalize_ops::reconcile::LeaseGuard> =
            std::sync::Arc::new(personalize_ops::reconcile::Unguarded);
        let input = PassInput {
            group: &spec.dataset_group.name,
            desired: &desired,
            previous: None,
            scheduled: None,
            lease: &unguarded,
        };
        let report = seam.pass(input, &sink).await.expect("pass");
        match report.status {
            PassStatus::Pending { retry_after } => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "never converged: {report:#?}"
                );
                tokio::time::sleep(retry_after).await;
            }
            _ => break report,
        }
    };
    assert_eq!(report.status, PassStatus::Converged, "{report:#?}");
    assert!(
        report.resources.iter().all(|r| r.status == "ACTIVE"),
        "{report:#?}"
    );
    // This generation's jobs are named from its run timestamp.
    assert!(
        report
            .resources
            .iter()
            .any(|r| r.name == format!("dataset_import_interactions_{}", desired.run_timestamp)),
        "{report:#?}"
    );
    let mut changes = Vec::new();
    while let Ok(c) = rx.try_recv() {
        changes.push(c);
    }
    assert!(changes.iter().any(|c| c.status == "ACTIVE"));
    assert!(
        changes
            .iter()
            .all(|c| c.dataset_group.as_deref() == Some("dataset-group-name-1"))
    );
    assert_eq!(metrics.total("SolutionCreated"), spec.solutions.len() as f64);
    assert!(
        metrics
            .data()
            .iter()
            .any(|d| d.dimensions.iter().any(|(k, _)| k == "SolutionVersion")),
        "solution metrics recorded"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_and_apply_reject_missing_and_invalid_files_without_calling_personalize() {
    let dir = tempfile::tempdir().expect("tempdir");
    let emu = start_emulator(dir.path(), |_| {}).await;
    let cli = Cli::new(&emu);
    let missing = dir.path().join("train/nothing/config.json");
    let missing = missing.to_str().expect("utf-8");
    for cmd in ["plan", "apply"] {
        let out = cli.output(&[cmd, "--config", missing]).await;
        assert_eq!(out.status.code(), Some(1), "{cmd}");
        assert!(
            text(&out.stderr).contains("cannot read"),
            "{cmd}: {}",
            text(&out.stderr)
        );
    }
    let bad = dir.path().join("bad.json");
    std::fs::write(
        &bad,
        r#"{"datasetGroup": {"serviceConfig": {"name": "g"}}, "solutions": [{"serviceConfig": {}}]}"#,
    )
    .expect("write");
    for cmd in ["plan", "apply"] {
        let out = cli.output(&[cmd, "--config", bad.to_str().expect("utf-8")]).await;
        assert_eq!(out.status.code(), Some(1), "{cmd}");
        let err = text(&out.stderr);
        assert!(
            err.contains("is not a valid parameter file") && err.contains("solutions[0]"),
            "{cmd}: {err}"
        );
    }
    let out = cli
        .output(&["apply", "--config", "s3://", "--run-start", "yesterday"])
        .await;
    assert_eq!(out.status.code(), Some(2), "bad usage: {}", text(&out.stderr));
    assert_eq!(
        emu.calls().calls.values().sum::<u64>(),
        0,
        "nothing reached Personalize"
    );
}

/// Issue 14: calls that grew with the fleet. Several groups through one reconciler, all started in
/// the same second: only the first is looked up by listing the account's groups (the others are
/// described by the ARN their name gives); the tags of what this run created are known without
/// ListTagsForResource; and the import job name the groups share costs one create each, not a
/// refused create and a describe.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_started_together_cost_no_listing_tag_read_or_refused_create_per_group() {
    let dir = tempfile::tempdir().expect("tempdir");
    let emu = start_emulator(dir.path(), |_| {}).await;
    let r = reconciler(&emu, dir.path(), &settings());
    let groups = ["fleet-a", "fleet-b", "fleet-c"];
    let mut specs = Vec::new();
    for g in groups {
        specs.push(lay_out_text(dir.path(), &fleet::config(g)));
    }
    for (config, spec) in &specs {
        let mut events = Vec::new();
        let outcome = apply(&r, spec, config, &mut events).await;
        assert!(matches!(outcome, PassOutcome::Converged { .. }), "{outcome:#?}");
    }
    assert_eq!(calls_of(&emu, "ListDatasetGroups"), 1, "{:?}", emu.calls());
    assert_eq!(calls_of(&emu, "ListTagsForResource"), 0, "{:?}", emu.calls());
    assert_eq!(calls_of(&emu, "CreateDatasetImportJob"), 3, "{:?}", emu.calls());
    assert_eq!(calls_of(&emu, "DescribeDatasetImportJob"), 0, "{:?}", emu.calls());
    // The tags are on every resource all the same, and a new process (which lists and reads
    // them) finds nothing to change.
    let c = client(&emu);
    let tags = c
        .list_tags_for_resource()
        .resource_arn("arn:aws:personalize:us-east-1:000000000000:campaign/fleet-b-campaign")
        .send()
        .await
        .expect("tags");
    assert_eq!(tags.tags().len(), 1, "{tags:?}");
    let again = reconciler(&emu, dir.path(), &settings());
    let before = changes(&emu);
    for (config, spec) in &specs {
        let mut events = Vec::new();
        let outcome = apply(&again, spec, config, &mut events).await;
        assert!(matches!(outcome, PassOutcome::Converged { .. }), "{outcome:#?}");
    }
    assert_eq!(changes(&emu), before, "a second apply changed something");
    assert!(
        calls_of(&emu, "ListTagsForResource") > 0,
        "the new process read the tags"
    );
}

/// The reconciler's object store, counting its data listings and lookups.
#[derive(Debug)]
struct CountingObjects {
    inner: personalize_ops::objects::DirStore,
    reads: std::sync::atomic::AtomicU64,
}

impl CountingObjects {
    fn reads(&self) -> u64 {
        self.reads.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn count(&self) {
        self.reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

#[async_trait::async_trait]
impl personalize_ops::objects::ObjectStore for CountingObjects {
    async fn list(
        &self,
        prefix: &personalize_ops::objects::ObjectUrl,
        recursive: bool,
    ) -> Result<Vec<personalize_ops::objects::ObjectMeta>, personalize_ops::objects::ObjectError> {
        self.count();
        self.inner.list(prefix, recursive).await
    }

    async fn head(
        &self,
        url: &personalize_ops::objects::ObjectUrl,
    ) -> Result<Option<personalize_ops::objects::ObjectMeta>, personalize_ops::objects::ObjectError> {
        self.count();
        self.inner.head(url).await
    }

    async fn get(
        &self,
        url: &personalize_ops::objects::ObjectUrl,
        limit: u64,
    ) -> Result<bytes::Bytes, personalize_ops::objects::ObjectError> {
        self.count();
        self.inner.get(url, limit).await
    }

    async fn put(
        &self,
        url: &personalize_ops::objects::ObjectUrl,
        body: bytes::Bytes,
    ) -> Result<(), personalize_ops::objects::ObjectError> {
        self.inner.put(url, body).await
    }
}

/// Passes of one run (as the daemon makes them) until it converges or fails; with how many passes.
async fn passes_until_settled(
    r: &personalize_ops::reconcile::Reconciler,
    spec: &personalize_ops::spec::model::Spec,
    config: &personalize_ops::objects::ObjectUrl,
    start: chrono::DateTime<Utc>,
) -> (PassOutcome, u32) {
    let run = async {
        let mut events = Vec::new();
        for n in 1.. {
            match r.pass(spec, config, start, &mut events).await.expect("pass") {
                PassOutcome::Pending { next_poll_after, .. } => tokio::time::sleep(next_poll_after).await,
                done => return (done, n),
            }
        }
        unreachable!("passes never run out")
    };
    tokio::time::timeout(PATIENCE, run)
        .await
        .expect("the run settles")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_run_reads_its_data_once_and_a_settled_group_looks_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let emu = start_emulator(dir.path(), |_| {}).await;
    let s = settings();
    let objects = std::sync::Arc::new(CountingObjects {
        inner: personalize_ops::objects::DirStore::new(dir.path(), BUCKET),
        reads: 0.into(),
    });
    let r = personalize_ops::reconcile::Reconciler::new(
        client(&emu),
        objects.clone(),
        &s.reconcile,
        &s.personalize,
        std::sync::Arc::new(personalize_ops::reconcile::RateLimiter::new(
            s.reconcile.calls_per_second,
        )),
    );
    let (config, spec) = lay_out_text(dir.path(), &fleet::config("cached"));
    let data = dir.path().join("train/cached/interactions.csv");
    let csv = std::fs::read(&data).expect("data laid out");

    // No data at first: every pass looks again, so the upload made during the run is imported by it.
    std::fs::remove_file(&data).expect("remove data");
    let mut events = Vec::new();
    let first = r
        .pass(&spec, &config, run_start(), &mut events)
        .await
        .expect("pass");
    assert!(matches!(first, PassOutcome::Pending { .. }), "{first:#?}");
    let missing = objects.reads();
    assert_eq!(
        missing, 2,
        "the interactions/ folder listed, interactions.csv looked up"
    );
    let second = r
        .pass(&spec, &config, run_start(), &mut events)
        .await
        .expect("pass");
    assert!(matches!(second, PassOutcome::Pending { .. }), "{second:#?}");
    assert_eq!(
        objects.reads(),
        2 * missing,
        "looked again while the data is missing"
    );
    std::fs::write(&data, &csv).expect("upload data");
    let before = objects.reads();
    let (outcome, passes) = passes_until_settled(&r, &spec, &config, run_start()).await;
    assert!(matches!(outcome, PassOutcome::Converged { .. }), "{outcome:#?}");
    assert!(passes > 2, "a run of several passes: {passes}");
    assert_eq!(calls_of(&emu, "CreateDatasetImportJob"), 1, "{:?}", emu.calls());
    assert_eq!(
        objects.reads() - before,
        missing,
        "{passes} passes of the pending run found the data once"
    );

    // Settled: a resync's pass of the same run looks again, and finds nothing new.
    let before = objects.reads();
    let (outcome, _) = passes_until_settled(&r, &spec, &config, run_start()).await;
    assert!(matches!(outcome, PassOutcome::Converged { .. }), "{outcome:#?}");
    assert_eq!(objects.reads() - before, missing);
    assert_eq!(calls_of(&emu, "CreateDatasetImportJob"), 1);

    // Data uploaded after convergence is found by the next run (a new generation, a scheduled
    // import) and imported; the run's own import is named after its start, so a run imports once.
    std::thread::sleep(Duration::from_millis(20));
    std::fs::write(&data, &csv).expect("new upload");
    let next_run = run_start() + chrono::Duration::hours(1);
    let (outcome, _) = passes_until_settled(&r, &spec, &config, next_run).await;
    assert!(matches!(outcome, PassOutcome::Converged { .. }), "{outcome:#?}");
    assert_eq!(calls_of(&emu, "CreateDatasetImportJob"), 2, "{:?}", emu.calls());
}
