//! Teardown on the built-in Personalize: the delete semantics it relies on, the reference sample and a
//! domain group removed whole (listings empty), a second destroy with nothing to do, a destroy killed
//! with SIGKILL and finished by the next one, the refusal without `--yes`, and a shared schema kept.

mod support;

use std::path::Path;
use std::process::Stdio;

use aws_sdk_personalize::Client;
use personalize_ops::emulator::Emulator;
use personalize_ops::plan::Kind;
use personalize_ops::plan::teardown::TeardownAction;
use personalize_ops::reconcile::{Event, PassOutcome, Reconciler, TeardownOutcome};
use support::emulator::code;
use support::process::lines_of;
use support::reconcile::*;
use support::wait::PATIENCE;
use tokio_util::sync::CancellationToken;

async fn converge(
    r: &Reconciler,
    config: &personalize_ops::objects::ObjectUrl,
    spec: &personalize_ops::spec::model::Spec,
) {
    let outcome = apply_within(r, spec, config, run_start(), &mut Vec::new()).await;
    assert!(matches!(outcome, PassOutcome::Converged { .. }), "{outcome:#?}");
}

async fn destroy(
    r: &Reconciler,
    group: &str,
    schemas: &[String],
    events: &mut Vec<Event>,
) -> TeardownOutcome {
    tokio::time::timeout(
        PATIENCE,
        r.destroy(group, schemas, events, &CancellationToken::new()),
    )
    .await
    .expect("destroy ends")
    .expect("destroy runs")
}

/// Pushes `kind name` of every item of one page of a listing.
macro_rules! listed {
    ($out:ident, $kind:literal, $request:expr, $items:ident) => {
        for x in $request.send().await.expect($kind).$items() {
            $out.push(format!("{} {}", $kind, x.name().unwrap_or_default()));
        }
    };
}

/// Everything the account lists: dataset groups, schemas, and under every group its datasets,
/// solutions (with campaigns and versions), filters, trackers and recommenders, as `kind name`.
async fn everything(c: &Client) -> Vec<String> {
    let mut out = Vec::new();
    let groups = c.list_dataset_groups().send().await.expect("groups");
    for g in groups.dataset_groups() {
        let arn = g.dataset_group_arn().expect("arn");
        out.push(format!("dataset-group {}", g.name().unwrap_or_default()));
        listed!(out, "dataset", c.list_datasets().dataset_group_arn(arn), datasets);
        let solutions = c.list_solutions().dataset_group_arn(arn).send().await;
        for s in solutions.expect("solutions").solutions() {
            out.push(format!("solution {}", s.name().unwrap_or_default()));
            let sarn = s.solution_arn().expect("arn");
            listed!(out, "campaign", c.list_campaigns().solution_arn(sarn), campaigns);
        }
        listed!(out, "filter", c.list_filters().dataset_group_arn(arn), filters);
        listed!(
            out,
            "event-tracker",
            c.list_event_trackers().dataset_group_arn(arn),
            event_trackers
        );
        listed!(
            out,
            "recommender",
            c.list_recommenders().dataset_group_arn(arn),
            recommenders
        );
    }
    listed!(out, "schema", c.list_schemas(), schemas);
    out.sort();
    out
}

fn deletes(emu: &Emulator) -> u64 {
    emu.calls()
        .calls
        .iter()
        .filter(|(op, _)| op.starts_with("Delete") || op.starts_with("Stop"))
        .map(|(_, n)| *n)
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletes_are_refused_while_dependants_exist_even_when_they_are_being_deleted() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Deletions take 10 emulated seconds; the test walks the clock.
    let emu = start_emulator(dir.path(), |c| {
        c.time_scale = 1.0;
        c.durations.create_secs.values_mut().for_each(|s| *s = 0.0);
        c.durations.delete_secs = 10.0;
    })
    .await;
    let c = client(&emu);
    let group = c.create_dataset_group().name("g").send().await.expect("group");
    let group_arn = group.dataset_group_arn().expect("arn").to_string();
    let schema = c
        .create_schema()
        .name("s")
        .schema(
            r#"{"type":"record","name":"Users","namespace":"com.amazonaws.personalize.schema","fields":[{"name":"USER_ID","type":"string"},{"name":"AGE","type":"int"}],"version":"1.0"}"#,
        )
        .send()
        .await
        .expect("schema");
    let schema_arn = schema.schema_arn().expect("arn").to_string();
    emu.advance_clock(1.0).await.expect("clock");
    let dataset = c
        .create_dataset()
        .name("users")
        .dataset_group_arn(&group_arn)
        .schema_arn(&schema_arn)
        .dataset_type("Users")
        .send()
        .await
        .expect("dataset");
    let dataset_arn = dataset.dataset_arn().expect("arn").to_string();
    emu.advance_clock(1.0).await.expect("clock");

    assert_eq!(
        code(
            c.delete_dataset_group()
                .dataset_group_arn(&group_arn)
                .send()
                .await
        ),
        "ResourceInUseException"
    );
    c.delete_dataset()
        .dataset_arn(&dataset_arn)
        .send()
        .await
        .expect("delete dataset");
    let d = c
        .describe_dataset()
        .dataset_arn(&dataset_arn)
        .send()
        .await
        .expect("describe");
    assert_eq!(d.dataset().and_then(|d| d.status()), Some("DELETE PENDING"));
    // A dataset being deleted still uses its schema and still sits in its group.
    assert_eq!(
        code(c.delete_schema().schema_arn(&schema_arn).send().await),
        "ResourceInUseException"
    );
    assert_eq!(
        code(
            c.delete_dataset_group()
                .dataset_group_arn(&group_arn)
                .send()
                .await
        ),
        "ResourceInUseException"
    );
    // Deleting it again while it is being deleted is refused too.
    assert_eq!(
        code(c.delete_dataset().dataset_arn(&dataset_arn).send().await),
        "ResourceInUseException"
    );
    emu.advance_clock(5.0).await.expect("clock");
    let d = c
        .describe_dataset()
        .dataset_arn(&dataset_arn)
        .send()
        .await
        .expect("describe");
    assert_eq!(d.dataset().and_then(|d| d.status()), Some("DELETE IN_PROGRESS"));
    emu.advance_clock(6.0).await.expect("clock");
    assert_eq!(
        code(c.describe_dataset().dataset_arn(&dataset_arn).send().await),
        "ResourceNotFoundException"
    );
    c.delete_schema()
        .schema_arn(&schema_arn)
        .send()
        .await
        .expect("delete schema");
    c.delete_dataset_group()
        .dataset_group_arn(&group_arn)
        .send()
        .await
        .expect("delete group");
    let g = c
        .describe_dataset_group()
        .dataset_group_arn(&group_arn)
        .send()
        .await
        .expect("describe");
    assert_eq!(g.dataset_group().and_then(|g| g.status()), Some("DELETE PENDING"));
    emu.advance_clock(11.0).await.expect("clock");
    assert_eq!(
        code(
            c.describe_dataset_group()
                .dataset_group_arn(&group_arn)
                .send()
                .await
        ),
        "ResourceNotFoundException"
    );
    assert_eq!(
        code(
            c.delete_dataset_group()
                .dataset_group_arn(&group_arn)
                .send()
                .await
        ),
        "ResourceNotFoundException"
    );
    assert!(everything(&c).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reference_sample_and_a_domain_group_are_removed_whole_and_a_second_destroy_does_nothing() {
    for (fixture, text) in [("sample_config.json", None), ("domain", Some(DOMAIN_EXAMPLE))] {
        let dir = tempfile::tempdir().expect("tempdir");
        let (config, spec) = match text {
            Some(t) => lay_out_text(dir.path(), t),
            None => lay_out(dir.path(), fixture),
        };
        let emu = start_emulator(dir.path(), |_| {}).await;
        let r = reconciler(&emu, dir.path(), &settings());
        converge(&r, &config, &spec).await;
        let c = client(&emu);
        let before = everything(&c).await;
        assert!(before.len() > 3, "{fixture}: {before:?}");

        let group = spec.dataset_group.name.clone();
        let schemas = spec.schema_names();
        let plan = r.teardown_plan(&group, &schemas).await.expect("plan");
        // Dependants first: what serves comes before everything else, the group before its schemas.
        let kinds: Vec<Kind> = plan.iter().map(|s| s.target.kind).collect();
        let serving = kinds
            .iter()
            .rposition(|k| matches!(k, Kind::Campaign | Kind::Recommender))
            .expect("something serves");
        assert!(
            kinds[serving + 1..]
                .iter()
                .all(|k| !matches!(k, Kind::Campaign | Kind::Recommender))
        );
        assert!(
            kinds.iter().position(|k| *k == Kind::DatasetGroup)
                < kinds.iter().position(|k| *k == Kind::Schema)
        );
        for s in &plan {
            if !matches!(s.target.kind, Kind::Campaign | Kind::Recommender) {
                assert!(
                    !matches!(s.action, TeardownAction::Delete),
                    "{fixture}: {} is deleted while something still serves",
                    s.target
                );
            }
        }

        let mut events = Vec::new();
        let outcome = destroy(&r, &group, &schemas, &mut events).await;
        assert!(
            matches!(&outcome, TeardownOutcome::Finished { kept } if kept.is_empty()),
            "{fixture}: {outcome:#?}\n{events:#?}"
        );
        assert_eq!(everything(&c).await, Vec::<String>::new(), "{fixture}");
        // No delete of a group's member was requested before every campaign/recommender was gone.
        let last_serving_gone = events
            .iter()
            .rposition(|e| matches!(e.kind, Kind::Campaign | Kind::Recommender) && e.status == "DELETED")
            .expect("serving resources deleted");
        let first_other = events
            .iter()
            .position(|e| {
                !matches!(e.kind, Kind::Campaign | Kind::Recommender | Kind::SolutionVersion)
                    && e.status == "DELETE REQUESTED"
            })
            .expect("other deletes");
        assert!(last_serving_gone < first_other, "{fixture}: {events:#?}");

        // A second destroy finds nothing and calls no delete.
        let before = deletes(&emu);
        let mut again = Vec::new();
        let outcome = destroy(&r, &group, &schemas, &mut again).await;
        assert!(
            matches!(outcome, TeardownOutcome::Finished { .. }),
            "{outcome:#?}"
        );
        assert_eq!(deletes(&emu), before, "{fixture}: {again:#?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_another_group_uses_is_kept_until_that_group_goes_too() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (config, spec) = lay_out_text(dir.path(), DOMAIN_EXAMPLE);
    // A second group whose dataset uses the first group's schema (same name, same document).
    let second = DOMAIN_EXAMPLE
        .replace("\"vod-group\"", "\"vod-group-2\"")
        .replace("vod-interactions\"}", "vod-interactions-2\"}")
        .replace("\"name\": \"vod-top-picks\"", "\"name\": \"vod-top-picks-2\"")
        .replace("\"name\": \"vod-more-like-x\"", "\"name\": \"vod-more-like-x-2\"");
    let (config2, spec2) = lay_out_text(dir.path(), &second);
    let emu = start_emulator(dir.path(), |_| {}).await;
    let r = reconciler(&emu, dir.path(), &settings());
    converge(&r, &config, &spec).await;
    converge(&r, &config2, &spec2).await;
    let c = client(&emu);

    let schemas = spec.schema_names();
    let mut events = Vec::new();
    let outcome = destroy(&r, "vod-group", &schemas, &mut events).await;
    let TeardownOutcome::Finished { kept } = &outcome else {
        panic!("{outcome:#?}");
    };
    assert_eq!(kept.len(), 1, "{kept:#?}");
    assert!(matches!(&kept[0].action, TeardownAction::Keep { reason } if reason.contains("vod-group-2")));
    let left = everything(&c).await;
    assert!(
        left.contains(&"schema vod-interactions-schema".to_string()),
        "{left:?}"
    );
    assert!(!left.contains(&"dataset-group vod-group".to_string()), "{left:?}");
    assert!(
        left.contains(&"dataset-group vod-group-2".to_string()),
        "{left:?}"
    );

    let outcome = destroy(&r, "vod-group-2", &spec2.schema_names(), &mut events).await;
    assert!(
        matches!(&outcome, TeardownOutcome::Finished { kept } if kept.is_empty()),
        "{outcome:#?}"
    );
    assert_eq!(everything(&c).await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_training_version_is_stopped_so_that_its_solution_can_go() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (config, spec) = lay_out(dir.path(), "sample_config.json");
    // Everything is instant but training, which takes an emulated hour: the versions stay in
    // training for the whole test.
    let emu = start_emulator(dir.path(), |c| {
        c.time_scale = 1.0;
        c.durations.create_secs.values_mut().for_each(|s| *s = 0.0);
        c.durations
            .apply_overrides("solution-version=3600")
            .expect("durations");
        c.durations.delete_secs = 0.0;
        c.durations.stop_secs = 0.0;
    })
    .await;
    let r = reconciler(&emu, dir.path(), &settings());
    let c = client(&emu);
    // Passes until a version trains.
    let started = std::time::Instant::now();
    let training = loop {
        assert!(started.elapsed() < PATIENCE, "no version started training");
        let mut events = Vec::new();
        let _ = r
            .pass(&spec, &config, run_start(), &mut events)
            .await
            .expect("pass");
        let steps = r
            .teardown_plan(&spec.dataset_group.name, &spec.schema_names())
            .await
            .expect("plan");
        let training: Vec<String> = steps
            .iter()
            .filter(|s| s.target.kind == Kind::SolutionVersion && s.status.starts_with("CREATE"))
            .map(|s| s.arn.clone())
            .collect();
        if !training.is_empty() {
            for s in steps.iter().filter(|s| training.contains(&s.arn)) {
                assert_eq!(s.action, TeardownAction::Stop, "{s:#?}");
            }
            break training;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let mut events = Vec::new();
    let outcome = destroy(&r, &spec.dataset_group.name, &spec.schema_names(), &mut events).await;
    assert!(
        matches!(outcome, TeardownOutcome::Finished { .. }),
        "{outcome:#?}"
    );
    for arn in &training {
        assert!(
            events
                .iter()
                .any(|e| e.arn.as_deref() == Some(arn.as_str()) && e.status == "STOP REQUESTED"),
            "{arn} was not stopped: {events:#?}"
        );
    }
    assert!(calls_of(&emu, "StopSolutionVersionCreation") >= training.len() as u64);
    assert_eq!(everything(&c).await, Vec::<String>::new());
}

/// The binary pointed at `emu`, on the sample laid out under `dir`.
fn sample_cli(dir: &Path, emu: &Emulator) -> (Cli, String) {
    let (_, spec) = lay_out(dir, "sample_config.json");
    let config = dir
        .join("train")
        .join(&spec.dataset_group.name)
        .join("config.json");
    (Cli::new(emu), config.display().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_refuses_without_yes_then_deletes_everything_and_a_second_run_has_nothing_to_do() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (config_url, spec) = lay_out(dir.path(), "sample_config.json");
    let emu = start_emulator(dir.path(), |_| {}).await;
    let r = reconciler(&emu, dir.path(), &settings());
    converge(&r, &config_url, &spec).await;
    let c = client(&emu);
    let before = everything(&c).await;
    let (cli, config) = sample_cli(dir.path(), &emu);

    let refused = cli.output(&["destroy", "--config", &config]).await;
    let stdout = String::from_utf8_lossy(&refused.stdout);
    assert_eq!(refused.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("nothing deleted"), "{stdout}");
    assert!(stdout.contains("- delete campaign"), "{stdout}");
    assert!(
        stdout.contains("- delete dataset-group unit_test_new_datasetgroup"),
        "{stdout}"
    );
    assert_eq!(everything(&c).await, before, "nothing was deleted");
    assert_eq!(deletes(&emu), 0);

    let done = cli.output(&["destroy", "--config", &config, "--yes"]).await;
    let stdout = String::from_utf8_lossy(&done.stdout);
    assert_eq!(
        done.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&done.stderr)
    );
    assert!(
        stdout.contains("destroyed: dataset group unit_test_new_datasetgroup is gone"),
        "{stdout}"
    );
    assert_eq!(everything(&c).await, Vec::<String>::new());

    let again = cli
        .output(&[
            "destroy",
            "--dataset-group",
            "unit_test_new_datasetgroup",
            "--yes",
        ])
        .await;
    let stdout = String::from_utf8_lossy(&again.stdout);
    assert_eq!(again.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("nothing to delete"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destroy_killed_midway_is_finished_by_the_next_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (config_url, spec) = lay_out(dir.path(), "sample_config.json");
    // Creation is instant; each deletion takes 1.5 s, so a destroy of the sample's layers takes
    // several seconds and can be killed in the middle.
    let emu = start_emulator(dir.path(), |c| {
        c.time_scale = 1.0;
        c.durations.create_secs.values_mut().for_each(|s| *s = 0.0);
        c.durations.delete_secs = 1.5;
        c.durations.stop_secs = 0.0;
        c.durations.update_secs = 0.0;
    })
    .await;
    let r = reconciler(&emu, dir.path(), &settings());
    converge(&r, &config_url, &spec).await;
    let c = client(&emu);
    let (cli, config) = sample_cli(dir.path(), &emu);

    let mut child = cli
        .command(&["destroy", "--config", &config, "--yes"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start destroy");
    let rx = lines_of(&mut child);
    // Kill it once the first layer is gone and the next deletions were requested.
    let mut seen = Vec::new();
    loop {
        let line = rx.recv_timeout(PATIENCE).expect("destroy makes progress");
        let next_layer = line.contains("solution ") && line.contains("DELETE REQUESTED");
        seen.push(line);
        if next_layer {
            break;
        }
    }
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    let middle = everything(&c).await;
    assert!(
        middle.iter().any(|x| x.starts_with("dataset-group ")),
        "killed before the group went: {middle:?}\n{seen:#?}"
    );
    assert!(!middle.iter().any(|x| x.starts_with("campaign ")), "{middle:?}");

    let done = cli.output(&["destroy", "--config", &config, "--yes"]).await;
    let stdout = String::from_utf8_lossy(&done.stdout);
    assert_eq!(
        done.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&done.stderr)
    );
    assert_eq!(everything(&c).await, Vec::<String>::new(), "{stdout}");
}

#[test]
fn destroy_local_removes_the_resources_the_schedules_and_the_state_of_a_running_local() {
    let root = tempfile::tempdir().expect("tempdir");
    let home = tempfile::tempdir().expect("home");
    let dir = root.path().join("work");
    let (_, spec) = lay_out(&dir, "sample_config.json");
    let group = spec.dataset_group.name.clone();
    let bin = env!("CARGO_BIN_EXE_personalize-ops");
    let command = || {
        let mut c = std::process::Command::new(bin);
        c.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", home.path())
            .stdin(Stdio::null());
        c
    };
    let mut child = command()
        .args(["local", dir.to_str().expect("utf-8")])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("local starts");
    let rx = lines_of(&mut child);
    let mut seen = Vec::new();
    loop {
        match rx.recv_timeout(PATIENCE) {
            Ok(line) => {
                let done = line.ends_with(&format!("{group}: converged"));
                seen.push(line);
                if done {
                    break;
                }
            }
            Err(e) => panic!("{e}; printed so far:\n{}", seen.join("\n")),
        }
    }
    let dir_arg = dir.to_str().expect("utf-8");
    let run = |args: &[&str]| {
        let out = command().args(args).output().expect("the binary runs");
        (
            out.status.code(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };
    let (code, text) = run(&["destroy", "--local", dir_arg, "--dataset-group", &group]);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("nothing deleted"), "{text}");
    assert!(
        text.contains(&format!("- delete schedule personalize-dataset-import-{group}")),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "- mark dataset group {group} destroyed in the state store (generation 1 of its parameter file is not built again)"
        )),
        "{text}"
    );
    // Schemas are found through the recorded file even when named only by the group.
    assert!(text.contains("schema unit_test_only_users_schema"), "{text}");

    let (code, text) = run(&["destroy", "--local", dir_arg, "--dataset-group", &group, "--yes"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains(&format!(
            "dataset group {group} marked destroyed in the state store"
        )),
        "{text}"
    );
    assert!(
        text.contains("is still there; the service does not build the group again from this version"),
        "{text}"
    );
    let (code, text) = run(&["status", "--local", dir_arg, &group]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("destroyed at"), "a tombstone: {text}");
    let (code, text) = run(&["schedules", "list", "--local", dir_arg]);
    assert!(!text.contains(&group), "{code:?} {text}");
    let (code, text) = run(&["destroy", "--local", dir_arg, "--dataset-group", &group, "--yes"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("nothing to delete"), "{text}");

    // A new version of the file (the running `local` sees it) builds the group again.
    let config = dir.join("train").join(&group).join("config.json");
    let mut text = std::fs::read_to_string(&config).expect("config");
    text.push('\n');
    std::fs::write(&config, text).expect("write config");
    loop {
        match rx.recv_timeout(PATIENCE) {
            Ok(line) if line.ends_with(&format!("{group}: converged")) => break,
            Ok(line) => seen.push(line),
            Err(e) => panic!("{e}; printed so far:\n{}", seen.join("\n")),
        }
    }
    let (code, text) = run(&["status", "--local", dir_arg, &group]);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("generation 2") && !text.contains("destroyed at"),
        "{text}"
    );
    let _ = child.kill();
    let _ = child.wait();
}

/// A replica whose lease ran out.
#[derive(Debug)]
struct Lost;

impl personalize_ops::reconcile::LeaseGuard for Lost {
    fn check(&self) -> Result<(), personalize_ops::reconcile::LeaseLost> {
        Err(personalize_ops::reconcile::LeaseLost {
            group: "g".into(),
            epoch: 7,
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_teardown_pass_without_the_lease_sends_no_deletion() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (config, spec) = lay_out(dir.path(), "sample_config.json");
    let emu = start_emulator(dir.path(), |_| {}).await;
    let r = reconciler(&emu, dir.path(), &settings());
    converge(&r, &config, &spec).await;
    let before = everything(&client(&emu)).await;
    let lost: std::sync::Arc<dyn personalize_ops::reconcile::LeaseGuard> = std::sync::Arc::new(Lost);
    let mut events = Vec::new();
    let result = r
        .teardown_pass(&spec.dataset_group.name, &spec.schema_names(), &lost, &mut events)
        .await;
    assert!(
        matches!(
            result,
            Err(personalize_ops::reconcile::ReconcileError::LeaseLost { .. })
        ),
        "{result:?}"
    );
    assert_eq!(deletes(&emu), 0, "a deletion went out without the lease");
    assert_eq!(everything(&client(&emu)).await, before);
}
