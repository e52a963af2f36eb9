//! Updates in place against the built-in Personalize, per kind: `plan` shows the update, `apply`
//! makes it, a second `apply` changes nothing; a changed filter is a conflict unless replacing it
//! was opted into; a schema that only gains optional fields moves its dataset to a new schema.

mod support;

use chrono::{TimeZone, Utc};
use personalize_ops::emulator::Emulator;
use personalize_ops::objects::ObjectUrl;
use personalize_ops::plan::{Action, Kind, Ref};
use personalize_ops::reconcile::{Event, PassOutcome, Reconciler};
use personalize_ops::spec::model::Spec;
use serde_json::{Value, json};
use support::reconcile::*;

async fn apply_at(r: &Reconciler, spec: &Spec, config: &ObjectUrl, hour: u32) -> (PassOutcome, Vec<Event>) {
    let start = Utc
        .with_ymd_and_hms(2026, 1, 2, hour, 0, 0)
        .single()
        .expect("valid");
    let mut events = Vec::new();
    let outcome = apply_within(r, spec, config, start, &mut events).await;
    (outcome, events)
}

/// The group of `fixture` converged on a fresh emulator; returns the file as JSON.
async fn converged(dir: &std::path::Path, text: &str) -> (Emulator, ObjectUrl, Value) {
    let (config, spec) = lay_out_text(dir, text);
    let emu = start_emulator(dir, |_| {}).await;
    let r = reconciler(&emu, dir, &settings());
    let (outcome, events) = apply_at(&r, &spec, &config, 3).await;
    assert!(
        matches!(outcome, PassOutcome::Converged { .. }),
        "{outcome:#?}\n{events:#?}"
    );
    (emu, config, serde_json::from_str(text).expect("json"))
}

fn load(file: &Value) -> Spec {
    let report = personalize_ops::spec::load(&file.to_string());
    report
        .spec
        .unwrap_or_else(|| panic!("valid: {:?}", report.errors))
}

fn fixture_text(name: &str) -> String {
    std::fs::read_to_string(fixtures().join(name)).expect("fixture")
}

/// `plan` shows `target` as an update whose changes mention each of `mentions`; `apply` makes it
/// with one `op` call and converges; a second `apply` and `plan` change nothing.
async fn update_round_trip(
    emu: &Emulator,
    dir: &std::path::Path,
    config: &ObjectUrl,
    spec: &Spec,
    target: Ref,
    op: &str,
    mentions: &[&str],
) {
    let r = reconciler(emu, dir, &settings());
    let plan = r.plan(spec, config, Utc::now()).await.expect("plan");
    match &plan.step(&target).expect("step").action {
        Action::Update { changes, .. } => {
            for m in mentions {
                assert!(
                    changes.iter().any(|c| c.contains(m) && c.contains('→')),
                    "{m}: {changes:?}"
                );
            }
        }
        other => panic!("{target}: {other:?}"),
    }
    let others: Vec<String> = plan
        .steps
        .iter()
        .filter(|s| s.action.is_ready() && s.target != target)
        .map(|s| s.target.to_string())
        .collect();
    assert!(others.is_empty(), "only {target} changes: {others:?}");

    let before = calls_of(emu, op);
    let (outcome, events) = apply_at(&r, spec, config, 4).await;
    assert!(
        matches!(outcome, PassOutcome::Converged { .. }),
        "{outcome:#?}\n{events:#?}"
    );
    assert_eq!(calls_of(emu, op), before + 1, "{events:#?}");
    assert!(
        events
            .iter()
            .any(|e| e.name == target.name && e.status == "UPDATE REQUESTED"),
        "{events:#?}"
    );

    let changes_before = changes(emu);
    let again = reconciler(emu, dir, &settings());
    let (outcome, events) = apply_at(&again, spec, config, 4).await;
    assert!(matches!(outcome, PassOutcome::Converged { .. }), "{outcome:#?}");
    assert_eq!(
        changes(emu),
        changes_before,
        "the second apply changed something: {events:#?}"
    );
    let plan = again.plan(spec, config, Utc::now()).await.expect("plan");
    assert!(!plan.has_changes(), "{:#?}", plan.steps);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_solution_s_auto_training_settings_are_updated_in_place() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (emu, config, mut file) = converged(dir.path(), &fixture_text("dataset-group-name-1.json")).await;
    let solution = &mut file["solutions"][2]["serviceConfig"];
    assert_eq!(solution["name"], "user-personalization-solution");
    solution["performAutoTraining"] = json!(true);
    solution["solutionConfig"] = json!({"autoTrainingConfig": {"schedulingExpression": "rate(3 days)"}});
    let spec = load(&file);
    let target = Ref::new(Kind::Solution, "user-personalization-solution");
    update_round_trip(
        &emu,
        dir.path(),
        &config,
        &spec,
        target,
        "UpdateSolution",
        &["performAutoTraining", "schedulingExpression"],
    )
    .await;

    let described = client(&emu)
        .describe_solution()
        .solution_arn("arn:aws:personalize:us-east-1:000000000000:solution/user-personalization-solution")
        .send()
        .await
        .expect("describe")
        .solution
        .expect("solution");
    assert_eq!(described.perform_auto_training, Some(true));
    let schedule = described
        .solution_config
        .and_then(|c| c.auto_training_config)
        .and_then(|a| a.scheduling_expression);
    assert_eq!(schedule.as_deref(), Some("rate(3 days)"));
    // Nothing was created again: the campaign still serves the version it served.
    assert_eq!(calls_of(&emu, "CreateSolution"), 3);
    assert_eq!(calls_of(&emu, "CreateCampaign"), 1);
}

/// A Domain (VIDEO_ON_DEMAND) group with one recommender.
const DOMAIN: &str = r#"{
  "datasetGroup": {"serviceConfig": {"name": "vod-update", "domain": "VIDEO_ON_DEMAND"}},
  "datasets": {
    "interactions": {
      "dataset": {"serviceConfig": {"name": "vod-update-interactions"}},
      "schema": {"serviceConfig": {"name": "vod-update-schema", "domain": "VIDEO_ON_DEMAND", "schema": {
        "type": "record", "name": "Interactions", "namespace": "com.amazonaws.personalize.schema",
        "fields": [{"name": "USER_ID", "type": "string"}, {"name": "ITEM_ID", "type": "string"},
                   {"name": "EVENT_TYPE", "type": "string"}, {"name": "TIMESTAMP", "type": "long"}],
        "version": "1.0"}}}
    }
  },
  "recommenders": [
    {"serviceConfig": {"name": "vod-update-top-picks", "recipeArn": "arn:aws:personalize:::recipe/aws-vod-top-picks",
      "recommenderConfig": {"minRecommendationRequestsPerSecond": 1}}}
  ]
}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recommender_s_config_is_updated_in_place() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (emu, config, mut file) = converged(dir.path(), DOMAIN).await;
    file["recommenders"][0]["serviceConfig"]["recommenderConfig"]["minRecommendationRequestsPerSecond"] =
        json!(3);
    let spec = load(&file);
    let target = Ref::new(Kind::Recommender, "vod-update-top-picks");
    update_round_trip(
        &emu,
        dir.path(),
        &config,
        &spec,
        target,
        "UpdateRecommender",
        &["minRecommendationRequestsPerSecond"],
    )
    .await;
    let described = client(&emu)
        .describe_recommender()
        .recommender_arn("arn:aws:personalize:us-east-1:000000000000:recommender/vod-update-top-picks")
        .send()
        .await
        .expect("describe")
        .recommender
        .expect("recommender");
    assert_eq!(
        described
            .recommender_config
            .and_then(|c| c.min_recommendation_requests_per_second),
        Some(3)
    );
    assert_eq!(calls_of(&emu, "CreateRecommender"), 1);
}

const NEW_EXPRESSION: &str = "EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN (\"click\")";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_filter_is_a_conflict_without_the_opt_in_and_replaced_with_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (emu, config, mut file) = converged(dir.path(), &fixture_text("dataset-group-name-1.json")).await;
    let name = file["filters"][0]["serviceConfig"]["name"]
        .as_str()
        .expect("name")
        .to_string();
    file["filters"][0]["serviceConfig"]["filterExpression"] = json!(NEW_EXPRESSION);
    let target = Ref::new(Kind::Filter, &name);

    // Without the opt-in: a conflict that says how to opt in, and nothing is touched.
    let spec = load(&file);
    let r = reconciler(&emu, dir.path(), &settings());
    let before = changes(&emu);
    let (outcome, _) = apply_at(&r, &spec, &config, 4).await;
    let PassOutcome::Failed { failures, .. } = &outcome else {
        panic!("{outcome:#?}");
    };
    assert_eq!(failures.len(), 1, "{failures:#?}");
    assert_eq!(failures[0].target, target);
    assert!(
        failures[0].reason.contains("replaceFilters"),
        "{}",
        failures[0].reason
    );
    assert_eq!(changes(&emu), before);
    assert_eq!(calls_of(&emu, "DeleteFilter"), 0);

    // With it: deleted, waited for, created again with the same name and the new expression.
    file["datasetGroup"]["workflowConfig"] = json!({"replaceFilters": true});
    let spec = load(&file);
    let creates = calls_of(&emu, "CreateFilter");
    let r = reconciler(&emu, dir.path(), &settings());
    let plan = r.plan(&spec, &config, Utc::now()).await.expect("plan");
    assert!(
        matches!(&plan.step(&target).expect("step").action, Action::Update { changes, .. } if changes[0].contains("replaced")),
        "{:#?}",
        plan.steps
    );
    let (outcome, events) = apply_at(&r, &spec, &config, 5).await;
    assert!(
        matches!(outcome, PassOutcome::Converged { .. }),
        "{outcome:#?}\n{events:#?}"
    );
    assert_eq!(calls_of(&emu, "DeleteFilter"), 1);
    assert_eq!(calls_of(&emu, "CreateFilter"), creates + 1);
    let described = client(&emu)
        .describe_filter()
        .filter_arn(format!(
            "arn:aws:personalize:us-east-1:000000000000:filter/{name}"
        ))
        .send()
        .await
        .expect("describe")
        .filter
        .expect("filter");
    assert_eq!(described.filter_expression.as_deref(), Some(NEW_EXPRESSION));

    // A second apply changes nothing.
    let before = changes(&emu);
    let again = reconciler(&emu, dir.path(), &settings());
    let (outcome, _) = apply_at(&again, &spec, &config, 5).await;
    assert!(matches!(outcome, PassOutcome::Converged { .. }), "{outcome:#?}");
    assert_eq!(changes(&emu), before);
    assert_eq!(calls_of(&emu, "DeleteFilter"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tags_are_brought_to_the_file_s_tags() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (emu, config, mut file) = converged(dir.path(), &fixture_text("dataset-group-name-1.json")).await;
    let campaign = &mut file["solutions"][2]["campaigns"][0]["serviceConfig"];
    let name = campaign["name"].as_str().expect("name").to_string();
    let arn = format!("arn:aws:personalize:us-east-1:000000000000:campaign/{name}");
    // Someone tagged the campaign by hand; the file now gives it a tag of its own.
    client(&emu)
        .tag_resource()
        .resource_arn(&arn)
        .tags(
            aws_sdk_personalize::types::Tag::builder()
                .tag_key("by-hand")
                .tag_value("x")
                .build()
                .expect("tag"),
        )
        .send()
        .await
        .expect("tag");
    let mut tags = campaign["tags"].as_array().cloned().unwrap_or_default();
    tags.push(json!({"tagKey": "tier", "tagValue": "gold"}));
    campaign["tags"] = Value::Array(tags);
    let spec = load(&file);

    let r = reconciler(&emu, dir.path(), &settings());
    let plan = r.plan(&spec, &config, Utc::now()).await.expect("plan");
    let target = Ref::new(Kind::Campaign, &name);
    match &plan.step(&target).expect("step").action {
        Action::Update { changes, .. } => {
            assert!(
                changes
                    .iter()
                    .any(|c| c.starts_with("tags.tier: none → \"gold\"")),
                "{changes:?}"
            );
            assert!(
                changes
                    .iter()
                    .any(|c| c.starts_with("tags.by-hand: \"x\" → none")),
                "{changes:?}"
            );
        }
        other => panic!("{other:?}"),
    }
    let ready: Vec<String> = plan
        .steps
        .iter()
        .filter(|s| s.action.is_ready())
        .map(|s| s.target.to_string())
        .collect();
    assert_eq!(ready, [target.to_string()]);

    let (outcome, events) = apply_at(&r, &spec, &config, 4).await;
    assert!(
        matches!(outcome, PassOutcome::Converged { .. }),
        "{outcome:#?}\n{events:#?}"
    );
    assert_eq!(
        calls_of(&emu, "TagResource"),
        2,
        "the hand-made tag and the file's"
    );
    assert_eq!(calls_of(&emu, "UntagResource"), 1);
    let now: Vec<(String, String)> = client(&emu)
        .list_tags_for_resource()
        .resource_arn(&arn)
        .send()
        .await
        .expect("tags")
        .tags
        .unwrap_or_default()
        .into_iter()
        .map(|t| (t.tag_key, t.tag_value))
        .collect();
    assert!(now.contains(&("tier".into(), "gold".into())), "{now:?}");
    assert!(!now.iter().any(|(k, _)| k == "by-hand"), "{now:?}");

    // A second apply and plan change nothing.
    let again = reconciler(&emu, dir.path(), &settings());
    let (outcome, _) = apply_at(&again, &spec, &config, 4).await;
    assert!(matches!(outcome, PassOutcome::Converged { .. }), "{outcome:#?}");
    assert_eq!(calls_of(&emu, "TagResource"), 2);
    assert_eq!(calls_of(&emu, "UntagResource"), 1);
    let plan = again.plan(&spec, &config, Utc::now()).await.expect("plan");
    assert!(!plan.has_changes(), "{:#?}", plan.steps);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_that_gains_an_optional_field_moves_its_dataset_and_other_changes_are_conflicts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (emu, config, mut file) = converged(dir.path(), &fixture_text("dataset-group-name-1.json")).await;
    let schema = &mut file["datasets"]["users"]["schema"]["serviceConfig"];
    assert_eq!(schema["name"], "users-schema");
    let original = schema["schema"].clone();

    // A field removed: Personalize would refuse the update, so it is a conflict saying why.
    let mut fields = original["fields"].as_array().cloned().expect("fields");
    fields.retain(|f| f["name"] != "AGE");
    schema["schema"]["fields"] = Value::Array(fields);
    let spec = load(&file);
    let r = reconciler(&emu, dir.path(), &settings());
    let before = changes(&emu);
    let (outcome, _) = apply_at(&r, &spec, &config, 4).await;
    let PassOutcome::Failed { failures, .. } = &outcome else {
        panic!("{outcome:#?}");
    };
    assert!(
        failures
            .iter()
            .any(|f| f.target == Ref::new(Kind::Schema, "users-schema")
                && f.reason.contains("field AGE is removed")),
        "{failures:#?}"
    );
    assert_eq!(changes(&emu), before);
    assert_eq!(calls_of(&emu, "UpdateDataset"), 0);

    // A new field that accepts null: a new schema, and the dataset moves to it.
    let schema = &mut file["datasets"]["users"]["schema"]["serviceConfig"];
    schema["schema"] = original;
    schema["schema"]["fields"]
        .as_array_mut()
        .expect("fields")
        .push(json!({"name": "MEMBERSHIP", "type": ["null", "string"], "categorical": true}));
    let spec = load(&file);
    let schemas = calls_of(&emu, "CreateSchema");
    update_round_trip(
        &emu,
        dir.path(),
        &config,
        &spec,
        Ref::new(Kind::Dataset, "users-data"),
        "UpdateDataset",
        &["schema: users-schema"],
    )
    .await;
    assert_eq!(calls_of(&emu, "CreateSchema"), schemas + 1);
    let dataset = client(&emu)
        .describe_dataset()
        .dataset_arn("arn:aws:personalize:us-east-1:000000000000:dataset/dataset-group-name-1/USERS")
        .send()
        .await
        .expect("describe")
        .dataset
        .expect("dataset");
    let used = dataset.schema_arn.expect("schema ARN");
    assert!(
        used.starts_with("arn:aws:personalize:us-east-1:000000000000:schema/users-schema-"),
        "{used}"
    );
    let described = client(&emu)
        .describe_schema()
        .schema_arn(&used)
        .send()
        .await
        .expect("describe schema")
        .schema
        .expect("schema");
    assert!(described.schema.unwrap_or_default().contains("MEMBERSHIP"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_built_in_personalize_refuses_schema_updates_personalize_refuses() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (emu, _, file) = converged(dir.path(), &fixture_text("dataset-group-name-1.json")).await;
    let c = client(&emu);
    let users = "arn:aws:personalize:us-east-1:000000000000:dataset/dataset-group-name-1/USERS";
    let interactions = "arn:aws:personalize:us-east-1:000000000000:dataset/dataset-group-name-1/INTERACTIONS";
    // A copy of the file's schema `from` with one more field `M` of type `ty`.
    let create = |name: &str, ty: Value, from: &str| {
        let mut doc = file["datasets"][from]["schema"]["serviceConfig"]["schema"].clone();
        doc["fields"]
            .as_array_mut()
            .expect("fields")
            .push(json!({"name": "M", "type": ty, "categorical": true}));
        let request = c.create_schema().name(name).schema(doc.to_string());
        async move {
            let created = request.send().await.expect("create");
            created.schema_arn.expect("arn")
        }
    };
    let required = create("users-required", json!("string"), "users").await;
    let optional = create("users-optional", json!(["null", "string"]), "users").await;
    let interactions_optional =
        create("interactions-optional", json!(["null", "string"]), "interactions").await;
    for (dataset, schema, says) in [
        (users, &required, "does not accept null"),
        (interactions, &interactions_optional, "cannot be replaced"),
    ] {
        let err = c
            .update_dataset()
            .dataset_arn(dataset)
            .schema_arn(schema)
            .send()
            .await
            .expect_err("refused");
        let text = format!("{:?}", err.into_service_error());
        assert!(text.contains("InvalidInput") && text.contains(says), "{text}");
    }
    c.update_dataset()
        .dataset_arn(users)
        .schema_arn(&optional)
        .send()
        .await
        .expect("an optional field is accepted");
}
