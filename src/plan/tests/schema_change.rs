//! A changed dataset schema: new optional fields move the dataset to a new schema in place; any
//! other change is a conflict that says what stands in the way.

use serde_json::json;

use super::*;
use crate::spec::names::schema_revision;

/// The file with `field` added to the users schema.
fn with_users_field(field: serde_json::Value) -> Spec {
    let mut f = file();
    f["datasets"]["users"]["schema"]["serviceConfig"]["schema"]["fields"]
        .as_array_mut()
        .expect("fields")
        .push(field);
    spec_of(&f)
}

/// Personalize as [`converged`] for the original file (the schema without the new field).
fn before_the_change() -> Observation {
    converged(&spec())
}

fn users_revision(spec: &Spec) -> String {
    let schema = spec
        .datasets
        .as_ref()
        .and_then(|d| d.users.as_ref())
        .and_then(|d| d.schema.as_ref())
        .expect("users schema");
    schema_revision(&schema.name, &schema.document_text())
}

#[test]
fn a_new_optional_field_moves_the_dataset_to_a_new_schema_in_place() {
    let spec =
        with_users_field(json!({"name": "MEMBERSHIP", "type": ["null", "string"], "categorical": true}));
    let revision = users_revision(&spec);
    assert!(revision.starts_with("g1-users-schema-") && revision.len() == "g1-users-schema-".len() + 8);
    let o = before_the_change();
    let plan = crate::plan::plan(&spec, &o, &data(), &run());
    // The schema of that name stays as it is (schemas cannot change).
    assert_eq!(step(&plan, Kind::Schema, "g1-users-schema").action, Action::Adopt);
    match &step(&plan, Kind::Dataset, "g1-users").action {
        Action::Update { request, changes } => {
            assert_eq!(
                changes,
                &[format!(
                    "schema: g1-users-schema → {revision} (adds the optional fields MEMBERSHIP)"
                )]
            );
            match request {
                Request::UpdateDataset {
                    dataset_arn,
                    schema_arn,
                    create_schema,
                } => {
                    assert_eq!(dataset_arn, &format!("{P}dataset/g1/USERS"));
                    assert_eq!(schema_arn, &format!("{P}schema/{revision}"));
                    let new = create_schema.as_ref().expect("the new schema is created first");
                    assert_eq!(new.name, revision);
                    assert!(new.schema.contains("MEMBERSHIP"), "{}", new.schema);
                }
                other => panic!("{other:?}"),
            }
        }
        other => panic!("{other:?}"),
    }
    // The dataset keeps serving: nothing else waits or changes.
    let others: Vec<String> = plan
        .steps
        .iter()
        .filter(|s| s.action.is_ready() && s.target.kind != Kind::Dataset)
        .map(|s| s.target.to_string())
        .collect();
    assert!(others.is_empty(), "{others:?}");

    // In progress: waited for, not repeated.
    let mut o = before_the_change();
    let dataset_arn = format!("{P}dataset/g1/USERS");
    o.updates.insert(
        dataset_arn.clone(),
        UpdateObs {
            status: "UPDATE IN_PROGRESS".into(),
            failure_reason: None,
            requested: json!(format!("{P}schema/{revision}")),
        },
    );
    o.schemas.insert(
        revision.clone(),
        SchemaObs {
            arn: format!("{P}schema/{revision}"),
            document: spec
                .datasets
                .as_ref()
                .and_then(|d| d.users.as_ref())
                .and_then(|d| d.schema.as_ref())
                .expect("schema")
                .document
                .clone(),
            domain: None,
        },
    );
    let plan = crate::plan::plan(&spec, &o, &data(), &run());
    assert!(
        matches!(
            &step(&plan, Kind::Dataset, "g1-users").action,
            Action::Wait { .. }
        ),
        "{:?}",
        step(&plan, Kind::Dataset, "g1-users")
    );
    assert_eq!(step(&plan, Kind::Schema, &revision).action, Action::Adopt);

    // Done: the dataset uses the new schema and nothing is left to do.
    o.updates.get_mut(&dataset_arn).expect("update").status = "ACTIVE".into();
    o.datasets.get_mut(&DatasetType::Users).expect("users").schema_arn = format!("{P}schema/{revision}");
    let plan = crate::plan::plan(&spec, &o, &data(), &run());
    assert_eq!(step(&plan, Kind::Dataset, "g1-users").action, Action::Adopt);
    assert!(!plan.has_changes(), "{:#?}", plan.steps);
}

#[test]
fn a_failed_schema_update_is_reported_not_repeated() {
    let spec = with_users_field(json!({"name": "MEMBERSHIP", "type": ["null", "string"]}));
    let revision = users_revision(&spec);
    let mut o = before_the_change();
    o.updates.insert(
        format!("{P}dataset/g1/USERS"),
        UpdateObs {
            status: "UPDATE FAILED".into(),
            failure_reason: Some("boom".into()),
            requested: json!(format!("{P}schema/{revision}")),
        },
    );
    let plan = crate::plan::plan(&spec, &o, &data(), &run());
    assert!(
        matches!(&step(&plan, Kind::Dataset, "g1-users").action, Action::Failed { reason } if reason.contains("boom")),
        "{:?}",
        step(&plan, Kind::Dataset, "g1-users")
    );
}

#[test]
fn a_new_dataset_is_created_on_the_new_schema() {
    let spec = with_users_field(json!({"name": "MEMBERSHIP", "type": ["null", "string"]}));
    let revision = users_revision(&spec);
    let mut o = before_the_change();
    o.datasets.remove(&DatasetType::Users);
    let plan = crate::plan::plan(&spec, &o, &data(), &run());
    assert!(
        matches!(&step(&plan, Kind::Schema, &revision).action, Action::Create { request: Some(Request::CreateSchema { name, .. }), .. } if *name == revision)
    );
    match &step(&plan, Kind::Dataset, "g1-users").action {
        Action::Create { after, .. } => {
            assert!(after.contains(&Ref::new(Kind::Schema, &revision)), "{after:?}")
        }
        other => panic!("{other:?}"),
    }
}

/// A change to the file.
type Edit = Box<dyn Fn(&mut serde_json::Value)>;

#[test]
fn changes_personalize_refuses_stay_conflicts_that_say_what_stands_in_the_way() {
    let cases: [(&str, Edit, &str); 4] = [
        (
            "a required new field",
            Box::new(|f| {
                f["datasets"]["users"]["schema"]["serviceConfig"]["schema"]["fields"]
                    .as_array_mut()
                    .expect("fields")
                    .push(json!({"name": "MEMBERSHIP", "type": "string"}))
            }),
            "new field MEMBERSHIP does not accept null",
        ),
        (
            "a removed field",
            Box::new(|f| {
                f["datasets"]["users"]["schema"]["serviceConfig"]["schema"]["fields"]
                    .as_array_mut()
                    .expect("fields")
                    .retain(|x| x["name"] != "AGE")
            }),
            "field AGE is removed",
        ),
        (
            "a changed type",
            Box::new(|f| {
                f["datasets"]["users"]["schema"]["serviceConfig"]["schema"]["fields"][1]["type"] =
                    json!("long")
            }),
            "field AGE changes from int to long",
        ),
        (
            "an interactions schema",
            Box::new(|f| {
                f["datasets"]["interactions"]["schema"]["serviceConfig"]["schema"]["fields"]
                    .as_array_mut()
                    .expect("fields")
                    .push(json!({"name": "DEVICE", "type": ["null", "string"], "categorical": true}))
            }),
            "Interactions dataset cannot be replaced",
        ),
    ];
    for (what, edit, says) in cases {
        let mut f = file();
        edit(&mut f);
        let spec = spec_of(&f);
        let plan = crate::plan::plan(&spec, &before_the_change(), &data(), &run());
        let schema = if what == "an interactions schema" {
            "g1-interactions-schema"
        } else {
            "g1-users-schema"
        };
        match &step(&plan, Kind::Schema, schema).action {
            Action::Conflict { differences } => assert!(
                differences
                    .iter()
                    .any(|d| d.contains(says) && d.contains("UpdateDataset")),
                "{what}: {differences:?}"
            ),
            other => panic!("{what}: {other:?}"),
        }
        assert!(
            !plan.steps.iter().any(|s| matches!(
                &s.action,
                Action::Update {
                    request: Request::UpdateDataset { .. },
                    ..
                }
            )),
            "{what}"
        );
    }
}
