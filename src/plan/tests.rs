//! The planner's decisions, one behaviour per test.

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::json;

use super::observed::*;
use super::*;
use crate::spec::kinds::DatasetType;
use crate::spec::model::Spec;
use crate::spec::names;

const P: &str = "arn:aws:personalize:us-east-1:000000000000:";

fn t(h: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 1, h, 0, 0).single().expect("valid")
}

fn file() -> serde_json::Value {
    let interactions = json!({"type": "record", "name": "Interactions", "namespace": "com.amazonaws.personalize.schema",
        "fields": [{"name": "USER_ID", "type": "string"}, {"name": "ITEM_ID", "type": "string"},
                   {"name": "TIMESTAMP", "type": "long"}, {"name": "EVENT_TYPE", "type": "string"}], "version": "1.0"});
    let users = json!({"type": "record", "name": "Users", "namespace": "com.amazonaws.personalize.schema",
        "fields": [{"name": "USER_ID", "type": "string"}, {"name": "AGE", "type": "int"}], "version": "1.0"});
    json!({
        "tags": [{"tagKey": "team", "tagValue": "recs"}],
        "datasetGroup": {"serviceConfig": {"name": "g1"}},
        "datasets": {
            "interactions": {"dataset": {"serviceConfig": {"name": "g1-interactions"}},
                             "schema": {"serviceConfig": {"name": "g1-interactions-schema", "schema": interactions}}},
            "users": {"dataset": {"serviceConfig": {"name": "g1-users"}},
                      "schema": {"serviceConfig": {"name": "g1-users-schema", "schema": users}}}
        },
        "eventTracker": {"serviceConfig": {"name": "g1-tracker"}},
        "filters": [{"serviceConfig": {"name": "g1-clicked", "filterExpression": "INCLUDE ItemID WHERE Interactions.EVENT_TYPE IN (\"click\")"}}],
        "solutions": [
            {"serviceConfig": {"name": "sol-a", "recipeArn": "arn:aws:personalize:::recipe/aws-user-personalization"},
             "campaigns": [{"serviceConfig": {"name": "camp-a", "minProvisionedTPS": 1}}],
             "batchInferenceJobs": [{"serviceConfig": {}}]},
            {"serviceConfig": {"name": "sol-b", "recipeArn": "arn:aws:personalize:::recipe/aws-sims"},
             "workflowConfig": {"schedules": {"full": "cron(0 0 ? * 1 *)"}}}
        ]
    })
}

fn spec_of(value: &serde_json::Value) -> Spec {
    let report = crate::spec::load_value(value);
    report
        .spec
        .unwrap_or_else(|| panic!("valid file: {:?}", report.errors))
}

fn spec() -> Spec {
    spec_of(&file())
}

fn run() -> RunContext {
    RunContext {
        run_start: t(12),
        now: t(13),
        roles: Roles {
            import: Some("arn:aws:iam::000000000000:role/import".into()),
            batch_inference: Some("arn:aws:iam::000000000000:role/batch".into()),
            batch_segment: Some("arn:aws:iam::000000000000:role/segment".into()),
            kms: None,
        },
        bucket: "data".into(),
        scheduled: None,
    }
}

fn data() -> DataFound {
    let mut d = DataFound::default();
    d.datasets.insert(
        DatasetType::Interactions,
        DataLocation {
            url: "s3://data/train/g1/interactions.csv".into(),
            newest: t(1),
        },
    );
    d.batch_inputs.insert("sol-a".into());
    d
}

/// [`data`] with the interactions file written at 11:00, after the converged import (02:30).
fn newer_interactions() -> DataFound {
    let mut d = data();
    d.datasets
        .get_mut(&DatasetType::Interactions)
        .expect("data() has interactions")
        .newest = t(11);
    d
}

fn meta(arn: &str, status: &str, created: DateTime<Utc>) -> Meta {
    Meta {
        arn: format!("{P}{arn}"),
        status: status.into(),
        failure_reason: None,
        created: Some(created),
        updated: Some(created + Duration::minutes(30)),
    }
}

const SV_A: &str = "solution/sol-a/v1";
const SV_B: &str = "solution/sol-b/v1";

/// Everything of `spec()` exists, ACTIVE and matching, imported at 02:00 (after the data).
fn converged(spec: &Spec) -> Observation {
    let mut o = Observation {
        group: Some(DatasetGroupObs {
            meta: meta("dataset-group/g1", "ACTIVE", t(0)),
            domain: None,
            kms_key_arn: None,
        }),
        ..Observation::default()
    };
    let ds = spec.datasets.as_ref().expect("datasets");
    for d in ds.all() {
        let schema = d.schema.as_ref().expect("schema");
        o.schemas.insert(
            schema.name.clone(),
            SchemaObs {
                arn: format!("{P}schema/{}", schema.name),
                document: schema.document.clone(),
                domain: None,
            },
        );
        o.datasets.insert(
            d.dataset_type,
            DatasetObs {
                meta: meta(
                    &format!("dataset/g1/{}", d.dataset_type.arn_suffix()),
                    "ACTIVE",
                    t(0),
                ),
                name: d.name.clone(),
                schema_arn: format!("{P}schema/{}", schema.name),
                group_arn: format!("{P}dataset-group/g1"),
            },
        );
    }
    o.import_jobs.insert(
        DatasetType::Interactions,
        vec![ImportJobObs {
            meta: meta(
                "dataset-import-job/dataset_import_interactions_old",
                "ACTIVE",
                t(2),
            ),
            job_name: "dataset_import_interactions_old".into(),
        }],
    );
    o.event_trackers.push(EventTrackerObs {
        meta: meta("event-tracker/abc", "ACTIVE", t(0)),
        name: "g1-tracker".into(),
    });
    o.filters.insert(
        "g1-clicked".into(),
        FilterObs {
            meta: meta("filter/g1-clicked", "ACTIVE", t(0)),
            group_arn: format!("{P}dataset-group/g1"),
            expression: spec.filters[0].filter_expression.clone(),
        },
    );
    for s in &spec.solutions {
        o.solutions.insert(
            s.name.clone(),
            SolutionObs {
                meta: meta(&format!("solution/{}", s.name), "ACTIVE", t(0)),
                group_arn: format!("{P}dataset-group/g1"),
                recipe_arn: s.recipe_arn.clone(),
                perform_hpo: false,
                perform_auto_training: Some(true),
                event_type: None,
                config: None,
            },
        );
        o.versions.insert(
            s.name.clone(),
            vec![VersionObs {
                meta: meta(&format!("solution/{}/v1", s.name), "ACTIVE", t(3)),
                name: None,
                training_mode: Some("FULL".into()),
            }],
        );
    }
    o.campaigns.insert(
        "camp-a".into(),
        CampaignObs {
            meta: meta("campaign/camp-a", "ACTIVE", t(4)),
            solution_version_arn: format!("{P}{SV_A}"),
            min_provisioned_tps: 1,
            config: Some(json!({"itemExplorationConfig": {"explorationWeight": "0.3"}})),
            latest_update: None,
        },
    );
    o.batch_inference_jobs.insert(
        format!("{P}{SV_A}"),
        vec![BatchJobObs {
            meta: meta(
                "batch-inference-job/batch_sol-a_2024_05_01_04_00_00",
                "ACTIVE",
                t(4),
            ),
            job_name: "batch_sol-a_2024_05_01_04_00_00".into(),
            solution_version_arn: format!("{P}{SV_A}"),
        }],
    );
    o
}

fn step<'p>(plan: &'p Plan, kind: Kind, name: &str) -> &'p Step {
    plan.step(&Ref::new(kind, name))
        .unwrap_or_else(|| panic!("no step for {kind} {name}: {:#?}", plan.steps))
}

fn step_of_kind(plan: &Plan, kind: Kind) -> &Step {
    plan.steps
        .iter()
        .find(|s| s.target.kind == kind)
        .unwrap_or_else(|| panic!("no {kind} step"))
}

fn position(plan: &Plan, kind: Kind, name: &str) -> usize {
    plan.steps
        .iter()
        .position(|s| s.target == Ref::new(kind, name))
        .expect("planned")
}

#[test]
fn a_new_group_creates_the_group_and_schemas_first_and_the_rest_after_them() {
    let plan = plan(&spec(), &Observation::default(), &data(), &run());
    let group = step(&plan, Kind::DatasetGroup, "g1");
    assert!(group.action.is_ready(), "{group:?}");
    assert!(step(&plan, Kind::Schema, "g1-users-schema").action.is_ready());
    match &step(&plan, Kind::Dataset, "g1-interactions").action {
        Action::Create {
            request: None, after, ..
        } => {
            assert!(after.contains(&Ref::new(Kind::DatasetGroup, "g1")), "{after:?}");
            assert!(
                after.contains(&Ref::new(Kind::Schema, "g1-interactions-schema")),
                "{after:?}"
            );
        }
        other => panic!("{other:?}"),
    }
    let import = names::import_job_name(DatasetType::Interactions, t(12));
    assert!(matches!(
        &step(&plan, Kind::DatasetImportJob, &import).action,
        Action::Create { request: None, .. }
    ));
    // No users data: the users import is skipped, not failed.
    let users_import = names::import_job_name(DatasetType::Users, t(12));
    assert!(matches!(
        &step(&plan, Kind::DatasetImportJob, &users_import).action,
        Action::Skip { warning: false, .. }
    ));
    assert!(position(&plan, Kind::DatasetGroup, "g1") < position(&plan, Kind::Dataset, "g1-users"));
    assert!(position(&plan, Kind::Solution, "sol-a") < position(&plan, Kind::Campaign, "camp-a"));
    assert!(!plan.is_settled());
    assert!(plan.has_changes());
}

#[test]
fn requests_carry_parent_arns_and_inherited_tags_once_parents_are_active() {
    let spec = spec();
    let mut o = converged(&spec);
    o.datasets.clear();
    o.import_jobs.clear();
    let plan = plan(&spec, &o, &data(), &run());
    match &step(&plan, Kind::Dataset, "g1-interactions").action {
        Action::Create {
            request:
                Some(Request::CreateDataset {
                    dataset_group_arn,
                    schema_arn,
                    tags,
                    dataset_type,
                    ..
                }),
            ..
        } => {
            assert_eq!(dataset_group_arn, &format!("{P}dataset-group/g1"));
            assert_eq!(schema_arn, &format!("{P}schema/g1-interactions-schema"));
            assert_eq!(dataset_type, &DatasetType::Interactions);
            assert_eq!(tags[0].key, "team");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn everything_present_and_matching_is_converged_and_unmanaged_resources_are_listed() {
    let spec = spec();
    let mut o = converged(&spec);
    o.listed.push(Listed {
        kind: Kind::Solution,
        name: "hand-made".into(),
        arn: format!("{P}solution/hand-made"),
    });
    o.listed.push(Listed {
        kind: Kind::Solution,
        name: "sol-a".into(),
        arn: format!("{P}solution/sol-a"),
    });
    let plan = plan(&spec, &o, &data(), &run());
    let open: Vec<_> = plan.steps.iter().filter(|s| !s.action.is_done()).collect();
    assert!(open.is_empty(), "{open:#?}");
    assert!(plan.is_converged() && !plan.has_changes());
    assert_eq!(plan.unmanaged.len(), 1);
    assert_eq!(plan.unmanaged[0].name, "hand-made");
}

#[test]
fn a_changed_schema_is_a_conflict_that_says_what_differs_and_fails_its_dependants() {
    let spec = spec();
    let mut o = converged(&spec);
    let schema = o.schemas.get_mut("g1-users-schema").expect("schema");
    schema.document["fields"][1]["type"] = json!("long");
    o.datasets.remove(&DatasetType::Users);
    let plan = plan(&spec, &o, &data(), &run());
    match &step(&plan, Kind::Schema, "g1-users-schema").action {
        Action::Conflict { differences } => {
            assert!(
                differences.iter().any(|d| d.contains("schema.fields")),
                "{differences:?}"
            )
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        &step(&plan, Kind::Dataset, "g1-users").action,
        Action::DependencyFailed { on } if on.name == "g1-users-schema"
    ));
    // Everything not depending on the users dataset is untouched by the conflict.
    assert_eq!(step(&plan, Kind::Campaign, "camp-a").action, Action::Adopt);
}

#[test]
fn immutable_differences_of_existing_resources_are_conflicts() {
    let spec = spec();
    let mut o = converged(&spec);
    o.solutions.get_mut("sol-b").expect("sol-b").recipe_arn =
        Some("arn:aws:personalize:::recipe/aws-popularity-count".into());
    o.filters.get_mut("g1-clicked").expect("filter").group_arn = format!("{P}dataset-group/other");
    let plan = plan(&spec, &o, &data(), &run());
    match &step(&plan, Kind::Solution, "sol-b").action {
        Action::Conflict { differences } => assert!(differences[0].contains("recipeArn"), "{differences:?}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        &step(&plan, Kind::SolutionVersion, "sol-b").action,
        Action::DependencyFailed { .. }
    ));
    match &step(&plan, Kind::Filter, "g1-clicked").action {
        Action::Conflict { differences } => {
            assert!(differences[0].contains("dataset-group/other"), "{differences:?}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn imports_follow_the_data_freshness() {
    let spec = spec();
    let o = converged(&spec);
    let planned = names::import_job_name(DatasetType::Interactions, t(12));
    // Data older than the last import: nothing to do.
    let plan1 = plan(&spec, &o, &data(), &run());
    assert_eq!(
        step(&plan1, Kind::DatasetImportJob, "dataset_import_interactions_old").action,
        Action::Adopt
    );
    // Newer data: a new import, in the file's mode, named from the run start.
    let newer = newer_interactions();
    let plan2 = plan(&spec, &o, &newer, &run());
    match &step(&plan2, Kind::DatasetImportJob, &planned).action {
        Action::Create {
            request:
                Some(Request::CreateDatasetImportJob {
                    import_mode,
                    data_location,
                    role_arn,
                    ..
                }),
            ..
        } => {
            assert_eq!(import_mode, "FULL");
            assert_eq!(data_location, "s3://data/train/g1/interactions.csv");
            assert!(role_arn.ends_with("role/import"));
        }
        other => panic!("{other:?}"),
    }
    // The version waits for this run's import only when it has to train; here it is adopted.
    assert_eq!(step(&plan2, Kind::SolutionVersion, "sol-a").action, Action::Adopt);
    // A filter waits for the import (filters need the data present).
    assert!(matches!(
        &step(&plan2, Kind::Filter, "g1-clicked").action,
        Action::Adopt
    ));
}

#[test]
fn an_explicit_max_age_keeps_the_reference_meaning() {
    let mut f = file();
    f["datasetGroup"]["workflowConfig"] = json!({"maxAge": "1 day"});
    let spec = spec_of(&f);
    let o = converged(&spec);
    let newer = newer_interactions();
    // Last import finished at 02:30, now is 13:00: younger than a day, so it is current.
    let plan1 = plan(&spec, &o, &newer, &run());
    assert_eq!(
        step(&plan1, Kind::DatasetImportJob, "dataset_import_interactions_old").action,
        Action::Adopt
    );
    // Two days later it is past maxAge and the data is newer: import.
    let mut later = run();
    later.now = t(13) + Duration::days(2);
    let plan2 = plan(&spec, &o, &newer, &later);
    assert!(
        plan2
            .steps
            .iter()
            .any(|s| s.target.kind == Kind::DatasetImportJob && s.action.is_ready())
    );
}

#[test]
fn incremental_mode_is_used_after_the_first_import_only() {
    let mut f = file();
    f["datasets"]["serviceConfig"] = json!({"importMode": "INCREMENTAL"});
    let spec = spec_of(&f);
    let newer = newer_interactions();
    let mode = |o: &Observation| match &step_of_kind(&plan(&spec, o, &newer, &run()), Kind::DatasetImportJob)
        .action
    {
        Action::Create {
            request: Some(Request::CreateDatasetImportJob { import_mode, .. }),
            ..
        } => import_mode.clone(),
        other => panic!("{other:?}"),
    };
    let o = converged(&spec);
    assert_eq!(mode(&o), "INCREMENTAL");
    let mut first = converged(&spec);
    first.import_jobs.clear();
    assert_eq!(mode(&first), "FULL");
}

#[test]
fn this_runs_import_is_found_by_name_even_under_its_collision_name_and_failures_are_reported() {
    let spec = spec();
    let mut o = converged(&spec);
    let planned = names::import_job_name(DatasetType::Interactions, t(12));
    let dataset_arn = format!("{P}dataset/g1/INTERACTIONS");
    let renamed = names::collision_free(&planned, &dataset_arn);
    o.import_jobs
        .get_mut(&DatasetType::Interactions)
        .expect("jobs")
        .push(ImportJobObs {
            meta: meta(
                &format!("dataset-import-job/{renamed}"),
                "CREATE IN_PROGRESS",
                t(12),
            ),
            job_name: renamed.clone(),
        });
    let newer = newer_interactions();
    let p = plan(&spec, &o, &newer, &run());
    assert!(matches!(
        &step(&p, Kind::DatasetImportJob, &renamed).action,
        Action::Wait { .. }
    ));
    assert!(
        !p.steps.iter().any(|s| s.action.is_ready()),
        "nothing new while this run's import runs"
    );

    let job = o
        .import_jobs
        .get_mut(&DatasetType::Interactions)
        .expect("jobs")
        .last_mut()
        .expect("job");
    job.meta.status = "CREATE FAILED".into();
    job.meta.failure_reason = Some("Access denied to s3://data".into());
    let p = plan(&spec, &o, &newer, &run());
    match &step(&p, Kind::DatasetImportJob, &renamed).action {
        Action::Failed { reason } => assert!(reason.contains("Access denied"), "{reason}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_import_started_earlier_and_still_running_is_adopted() {
    let spec = spec();
    let mut o = converged(&spec);
    o.import_jobs
        .get_mut(&DatasetType::Interactions)
        .expect("jobs")
        .push(ImportJobObs {
            meta: meta("dataset-import-job/scheduled", "CREATE PENDING", t(10)),
            job_name: "scheduled".into(),
        });
    let newer = newer_interactions();
    let p = plan(&spec, &o, &newer, &run());
    assert!(matches!(
        &step(&p, Kind::DatasetImportJob, "scheduled").action,
        Action::Wait { .. }
    ));
}

#[test]
fn a_missing_import_role_fails_naming_the_setting() {
    let spec = spec();
    let mut o = converged(&spec);
    o.import_jobs.clear();
    let mut r = run();
    r.roles.import = None;
    let p = plan(&spec, &o, &data(), &r);
    match &step_of_kind(&p, Kind::DatasetImportJob).action {
        Action::Failed { reason } => {
            assert!(reason.contains("personalize.import_role_arn"), "{reason}");
            assert!(
                reason.contains("PERSONALIZE_OPS__PERSONALIZE__IMPORT_ROLE_ARN"),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }
}

/// [`converged`] without versions, campaigns, batch jobs and filters, with this run's interactions
/// import in `status` (the state after a first import while nothing was trained yet).
fn untrained_with_import(spec: &Spec, status: &str) -> (Observation, String) {
    let mut o = converged(spec);
    o.versions.clear();
    o.campaigns.clear();
    o.batch_inference_jobs.clear();
    o.filters.clear();
    let planned = names::import_job_name(DatasetType::Interactions, t(12));
    let mut job = ImportJobObs {
        meta: meta(&format!("dataset-import-job/{planned}"), status, t(12)),
        job_name: planned.clone(),
    };
    job.meta.failure_reason = Some("Input CSV is missing the column ITEM_ID".into());
    o.import_jobs.insert(DatasetType::Interactions, vec![job]);
    (o, planned)
}

#[test]
fn versions_filters_and_their_dependants_wait_for_this_runs_imports() {
    let spec = spec();
    let (o, planned) = untrained_with_import(&spec, "CREATE IN_PROGRESS");
    let import = Ref::new(Kind::DatasetImportJob, &planned);
    let p = plan(&spec, &o, &newer_interactions(), &run());
    for (kind, name) in [
        (Kind::SolutionVersion, "sol-a"),
        (Kind::SolutionVersion, "sol-b"),
        (Kind::Filter, "g1-clicked"),
    ] {
        match &step(&p, kind, name).action {
            Action::Create {
                request: None, after, ..
            } => assert!(after.contains(&import), "{kind} {name}: {after:?}"),
            other => panic!("{kind} {name}: {other:?}"),
        }
    }
    assert!(!p.steps.iter().any(|s| s.action.is_broken()), "{:#?}", p.steps);
}

#[test]
fn a_failed_import_of_this_run_fails_the_new_versions_and_filters_as_not_attempted() {
    let spec = spec();
    let (o, planned) = untrained_with_import(&spec, "CREATE FAILED");
    let import = Ref::new(Kind::DatasetImportJob, &planned);
    let p = plan(&spec, &o, &newer_interactions(), &run());
    match &step(&p, Kind::DatasetImportJob, &planned).action {
        Action::Failed { reason } => assert!(reason.contains("ITEM_ID"), "{reason}"),
        other => panic!("{other:?}"),
    }
    for (kind, name) in [
        (Kind::SolutionVersion, "sol-a"),
        (Kind::SolutionVersion, "sol-b"),
        (Kind::Filter, "g1-clicked"),
    ] {
        assert_eq!(
            step(&p, kind, name).action,
            Action::DependencyFailed { on: import.clone() },
            "{kind} {name}"
        );
    }
    // What needs the versions fails with them, naming the version.
    assert!(matches!(
        &step(&p, Kind::Campaign, "camp-a").action,
        Action::DependencyFailed { on } if on.kind == Kind::SolutionVersion
    ));
    assert!(matches!(
        &step_of_kind(&p, Kind::BatchInferenceJob).action,
        Action::DependencyFailed { on } if on.kind == Kind::SolutionVersion
    ));
    assert!(
        !p.steps.iter().any(|s| s.action.is_ready()),
        "nothing is attempted: {:#?}",
        p.steps
    );
    // The independent branches stand.
    assert_eq!(step(&p, Kind::Solution, "sol-a").action, Action::Adopt);
    assert_eq!(step(&p, Kind::EventTracker, "g1-tracker").action, Action::Adopt);
}

#[test]
fn a_missing_import_role_fails_new_versions_as_not_attempted_and_keeps_trained_ones() {
    let spec = spec();
    let (mut o, _) = untrained_with_import(&spec, "ACTIVE");
    o.import_jobs.clear();
    let mut r = run();
    r.roles.import = None;
    let p = plan(&spec, &o, &data(), &r);
    let import = step_of_kind(&p, Kind::DatasetImportJob).target.clone();
    assert!(matches!(
        step(&p, Kind::DatasetImportJob, &import.name).action,
        Action::Failed { .. }
    ));
    assert_eq!(
        step(&p, Kind::SolutionVersion, "sol-a").action,
        Action::DependencyFailed { on: import.clone() }
    );

    // A solution created in this run does not train either.
    let mut new = o.clone();
    new.solutions.clear();
    let p = plan(&spec, &new, &data(), &r);
    assert_eq!(
        step(&p, Kind::SolutionVersion, "sol-a").action,
        Action::DependencyFailed { on: import.clone() }
    );

    // A version trained earlier keeps serving: the failed import is reported, the campaign stays.
    let mut f = file();
    f["solutions"][0]["workflowConfig"] = json!({"retrainOnNewData": true});
    let spec = spec_of(&f);
    let mut o = converged(&spec);
    o.import_jobs.clear();
    let p = plan(&spec, &o, &data(), &r);
    assert_eq!(step(&p, Kind::SolutionVersion, "sol-a").action, Action::Adopt);
    assert_eq!(step(&p, Kind::Campaign, "camp-a").action, Action::Adopt);
}

#[test]
fn retrain_on_new_data_trains_after_this_runs_interactions_import() {
    let mut f = file();
    f["solutions"][0]["workflowConfig"] = json!({"retrainOnNewData": true});
    let spec = spec_of(&f);
    let mut o = converged(&spec);
    let planned = names::import_job_name(DatasetType::Interactions, t(12));
    o.import_jobs
        .get_mut(&DatasetType::Interactions)
        .expect("jobs")
        .push(ImportJobObs {
            meta: meta(&format!("dataset-import-job/{planned}"), "ACTIVE", t(12)),
            job_name: planned.clone(),
        });
    let p = plan(&spec, &o, &data(), &run());
    match &step(&p, Kind::SolutionVersion, "sol-a").action {
        Action::Create {
            request:
                Some(Request::CreateSolutionVersion {
                    training_mode, name, ..
                }),
            why,
            ..
        } => {
            assert_eq!(training_mode, "FULL");
            assert!(why.contains("retrainOnNewData"), "{why}");
            // Unnamed in the file: named from the run's start, the same on every pass and replica.
            assert_eq!(
                name.as_deref(),
                Some(&*names::solution_version_name("sol-a", run().run_start))
            );
        }
        other => panic!("{other:?}"),
    }
    // sol-b did not opt in: its version is kept.
    assert_eq!(step(&p, Kind::SolutionVersion, "sol-b").action, Action::Adopt);
    // Once the new version is trained, nothing more.
    o.versions.get_mut("sol-a").expect("versions").push(VersionObs {
        meta: meta("solution/sol-a/v2", "ACTIVE", t(13)),
        name: None,
        training_mode: Some("FULL".into()),
    });
    let p = plan(&spec, &o, &data(), &run());
    assert_eq!(step(&p, Kind::SolutionVersion, "sol-a").action, Action::Adopt);
    assert_eq!(
        step(&p, Kind::SolutionVersion, "sol-a").arn.as_deref(),
        Some(&*format!("{P}solution/sol-a/v2"))
    );
    // ... and the campaign moves to it, without tags.
    match &step(&p, Kind::Campaign, "camp-a").action {
        Action::Update {
            request: Request::UpdateCampaign {
                solution_version_arn, ..
            },
            changes,
        } => {
            assert!(solution_version_arn.ends_with("sol-a/v2"));
            assert!(changes[0].contains("solutionVersion"), "{changes:?}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn versions_are_created_once_adopted_while_training_and_failures_of_this_run_are_final() {
    let spec = spec();
    let mut o = converged(&spec);
    o.versions.remove("sol-a");
    let p = plan(&spec, &o, &data(), &run());
    assert!(step(&p, Kind::SolutionVersion, "sol-a").action.is_ready());
    assert!(matches!(
        &step(&p, Kind::Campaign, "camp-a").action,
        Action::Wait { .. }
    ));

    o.versions.insert(
        "sol-a".into(),
        vec![VersionObs {
            meta: meta(SV_A, "CREATE IN_PROGRESS", t(12)),
            name: None,
            training_mode: Some("FULL".into()),
        }],
    );
    let p = plan(&spec, &o, &data(), &run());
    let training = step(&p, Kind::SolutionVersion, "sol-a");
    assert!(matches!(&training.action, Action::Wait { .. }));
    assert_eq!(
        training.note, None,
        "this run's own version is training, not adopted"
    );
    // The same version seen by a later run was started by someone else: it is adopted, and says so.
    let mut later = run();
    later.run_start = t(13);
    let p = plan(&spec, &o, &data(), &later);
    let adopted = step(&p, Kind::SolutionVersion, "sol-a");
    assert!(matches!(&adopted.action, Action::Wait { .. }));
    assert!(
        adopted.note.as_deref().is_some_and(|n| n.contains("adopted")),
        "{adopted:?}"
    );

    let v = &mut o.versions.get_mut("sol-a").expect("versions")[0];
    v.meta.status = "CREATE FAILED".into();
    v.meta.failure_reason = Some("Not enough interactions".into());
    let p = plan(&spec, &o, &data(), &run());
    match &step(&p, Kind::SolutionVersion, "sol-a").action {
        Action::Failed { reason } => assert!(reason.contains("Not enough interactions"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert!(
        matches!(&step(&p, Kind::Campaign, "camp-a").action, Action::DependencyFailed { on } if on.kind == Kind::SolutionVersion)
    );
    assert_eq!(
        step(&p, Kind::SolutionVersion, "sol-b").action,
        Action::Adopt,
        "independent branch continues"
    );

    // A failure of an earlier run is not this run's: a new version is trained.
    let mut next = run();
    next.run_start = t(14);
    next.now = t(15);
    let p = plan(&spec, &o, &data(), &next);
    assert!(step(&p, Kind::SolutionVersion, "sol-a").action.is_ready());
}

#[test]
fn auto_training_is_sent_explicitly_and_off_when_a_schedule_retrains() {
    let spec = spec();
    let mut o = converged(&spec);
    o.solutions.clear();
    let p = plan(&spec, &o, &data(), &run());
    let auto = |name: &str| match &step(&p, Kind::Solution, name).action {
        Action::Create {
            request:
                Some(Request::CreateSolution {
                    perform_auto_training,
                    ..
                }),
            ..
        } => *perform_auto_training,
        other => panic!("{other:?}"),
    };
    assert!(auto("sol-a"));
    assert!(!auto("sol-b"));
    assert!(
        step(&p, Kind::Solution, "sol-b")
            .note
            .as_deref()
            .is_some_and(|n| n.contains("full schedule"))
    );
    let mut f = file();
    f["solutions"][1]["serviceConfig"]["performAutoTraining"] = json!(true);
    let explicit = spec_of(&f);
    let p = plan(&explicit, &o, &data(), &run());
    assert!(matches!(
        &step(&p, Kind::Solution, "sol-b").action,
        Action::Create {
            request: Some(Request::CreateSolution {
                perform_auto_training: true,
                ..
            }),
            ..
        }
    ));
}

#[test]
fn campaign_rules_update_wait_and_conflict() {
    let spec = spec();
    let mut o = converged(&spec);
    o.campaigns
        .get_mut("camp-a")
        .expect("campaign")
        .min_provisioned_tps = 3;
    let p = plan(&spec, &o, &data(), &run());
    match &step(&p, Kind::Campaign, "camp-a").action {
        Action::Update {
            request: Request::UpdateCampaign {
                min_provisioned_tps, ..
            },
            changes,
        } => {
            assert_eq!(*min_provisioned_tps, 1);
            assert!(changes[0].contains("minProvisionedTPS 3 → 1"), "{changes:?}");
        }
        other => panic!("{other:?}"),
    }
    o.campaigns.get_mut("camp-a").expect("campaign").latest_update = Some(CampaignUpdateObs {
        status: "CREATE IN_PROGRESS".into(),
        failure_reason: None,
        solution_version_arn: Some(format!("{P}{SV_A}")),
        min_provisioned_tps: Some(1),
        config: None,
    });
    let p = plan(&spec, &o, &data(), &run());
    assert!(matches!(
        &step(&p, Kind::Campaign, "camp-a").action,
        Action::Wait { .. }
    ));
    let c = o.campaigns.get_mut("camp-a").expect("campaign");
    c.latest_update = None;
    c.min_provisioned_tps = 1;
    c.solution_version_arn = format!("{P}{SV_B}");
    let p = plan(&spec, &o, &data(), &run());
    match &step(&p, Kind::Campaign, "camp-a").action {
        Action::Conflict { differences } => assert!(
            differences[0].contains("not a version of the solution"),
            "{differences:?}"
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn batch_jobs_are_reused_per_version_and_entry() {
    let spec = spec();
    let o = converged(&spec);
    let p = plan(&spec, &o, &data(), &run());
    let s = step(&p, Kind::BatchInferenceJob, "batch_sol-a_2024_05_01_04_00_00");
    assert_eq!(s.action, Action::Adopt);
    // A new version: a new job, named from the run start, with the reference's paths.
    let mut o2 = o.clone();
    o2.versions.get_mut("sol-a").expect("versions").push(VersionObs {
        meta: meta("solution/sol-a/v2", "ACTIVE", t(5)),
        name: None,
        training_mode: Some("FULL".into()),
    });
    let p = plan(&spec, &o2, &data(), &run());
    let planned = names::batch_job_name("sol-a", names::BatchEntry { index: 0, count: 1 }, t(12));
    match &step(&p, Kind::BatchInferenceJob, &planned).action {
        Action::Create {
            request: Some(Request::CreateBatchInferenceJob { target, .. }),
            ..
        } => {
            assert_eq!(target.job_name, planned);
            assert_eq!(target.input, "s3://data/batch/g1/sol-a/job_config.json");
            assert_eq!(target.output, format!("s3://data/batch/g1/sol-a/{planned}/"));
            assert!(target.solution_version_arn.ends_with("sol-a/v2"));
            assert!(target.role_arn.ends_with("role/batch"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_missing_batch_input_skips_with_a_warning_and_a_missing_role_fails_naming_the_setting() {
    let spec = spec();
    let mut o = converged(&spec);
    o.batch_inference_jobs.clear();
    let mut no_input = data();
    no_input.batch_inputs.clear();
    let p = plan(&spec, &o, &no_input, &run());
    match &step_of_kind(&p, Kind::BatchInferenceJob).action {
        Action::Skip {
            reason,
            warning: true,
        } => assert!(reason.contains("batch/g1/sol-a/job_config.json"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert!(p.is_converged(), "a skipped job does not keep the run open");
    let mut r = run();
    r.roles.batch_inference = None;
    let p = plan(&spec, &o, &data(), &r);
    match &step_of_kind(&p, Kind::BatchInferenceJob).action {
        Action::Failed { reason } => assert!(
            reason.contains("personalize.batch_inference_role_arn"),
            "{reason}"
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_event_tracker_of_another_name_is_a_conflict() {
    let spec = spec();
    let mut o = converged(&spec);
    o.event_trackers[0].name = "someone-elses".into();
    let p = plan(&spec, &o, &data(), &run());
    match &step(&p, Kind::EventTracker, "g1-tracker").action {
        Action::Conflict { differences } => assert!(differences[0].contains("someone-elses")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn plans_serialise_to_json() {
    let p = plan(&spec(), &Observation::default(), &data(), &run());
    let v = serde_json::to_value(&p).expect("serialises");
    assert_eq!(v["steps"][0]["target"]["kind"], "dataset-group");
    assert_eq!(v["steps"][0]["action"]["action"], "create");
}

/// The shared batch members serialize at the top of the request, as they did before they were
/// grouped in [`BatchTarget`], so a printed plan reads the same.
#[test]
fn a_batch_request_prints_its_target_members_flat() {
    let request = Request::CreateBatchSegmentJob {
        target: BatchTarget {
            job_name: "job-1".into(),
            solution_version_arn: format!("{P}{SV_A}"),
            input: "s3://data/in.json".into(),
            output: "s3://data/out/".into(),
            role_arn: "arn:aws:iam::000000000000:role/segment".into(),
        },
        job: Box::new(crate::spec::model::BatchSegmentJob {
            num_results: Some(10),
            filter_arn: None,
            tags: Vec::new(),
            schedule: None,
            max_age: None,
        }),
    };
    let v = serde_json::to_value(&request).expect("json");
    assert_eq!(v["job_name"], "job-1");
    assert_eq!(v["solution_version_arn"], format!("{P}{SV_A}"));
    assert_eq!(v["input"], "s3://data/in.json");
    assert_eq!(v["output"], "s3://data/out/");
    assert_eq!(v["role_arn"], "arn:aws:iam::000000000000:role/segment");
    assert_eq!(v["job"]["numResults"], 10);
    assert!(v.get("target").is_none(), "{v}");
}

mod in_place;
mod promotion;
mod schema_change;
