//! The built-in Personalize's control plane through the official SDK client: lifecycles, the error
//! matrix, pagination, quotas, tags, faults, persistence, and the wire details raw HTTP shows.

mod support;

use std::sync::Arc;

use aws_sdk_personalize::types::Tag;
use personalize_ops::emulator::Emulator;
use personalize_ops::emulator::faults::FaultSpec;
use personalize_ops::objects::{ObjectError, ObjectMeta, ObjectStore, ObjectUrl};
use support::emulator::*;

/// The control plane needs no data: a store with nothing in it.
#[derive(Debug)]
struct NoObjects;

#[async_trait::async_trait]
impl ObjectStore for NoObjects {
    async fn list(&self, _prefix: &ObjectUrl, _recursive: bool) -> Result<Vec<ObjectMeta>, ObjectError> {
        Ok(Vec::new())
    }
    async fn head(&self, _url: &ObjectUrl) -> Result<Option<ObjectMeta>, ObjectError> {
        Ok(None)
    }
    async fn get(&self, url: &ObjectUrl, _limit: u64) -> Result<bytes::Bytes, ObjectError> {
        Err(ObjectError::NotFound { url: url.clone() })
    }
    async fn put(&self, url: &ObjectUrl, _body: bytes::Bytes) -> Result<(), ObjectError> {
        Err(ObjectError::NotFound { url: url.clone() })
    }
}

async fn start() -> Emulator {
    start_with(Arc::new(NoObjects), |_| {}).await
}

/// An emulator with no data and SDK clients for it.
async fn started() -> (Emulator, Clients) {
    let emu = start().await;
    let c = clients(&emu);
    (emu, c)
}

/// An emulator with the faults of `spec` (text form) from the start.
async fn start_faulted(spec: &str) -> Emulator {
    let faults = FaultSpec::parse(spec).expect("valid fault spec");
    start_with(Arc::new(NoObjects), |c| c.faults = faults).await
}

const ACCOUNT: &str = "000000000000";

fn arn(kind_and_name: &str) -> String {
    format!("arn:aws:personalize:us-east-1:{ACCOUNT}:{kind_and_name}")
}

/// The tags of the resource `arn`.
async fn tags_of(c: &Clients, arn: &str) -> Vec<Tag> {
    c.control
        .list_tags_for_resource()
        .resource_arn(arn)
        .send()
        .await
        .expect("listed")
        .tags()
        .to_vec()
}

fn tag(k: &str, v: &str) -> Tag {
    Tag::builder()
        .tag_key(k)
        .tag_value(v)
        .build()
        .expect("complete tag")
}

/// A dataset group with an interactions dataset, ready at time scale 0.
async fn group_with_interactions(c: &Clients, name: &str) -> (String, String, String) {
    let group = c
        .control
        .create_dataset_group()
        .name(name)
        .send()
        .await
        .expect("group created")
        .dataset_group_arn
        .expect("group arn");
    let schema = c
        .control
        .create_schema()
        .name(format!("{name}-schema"))
        .schema(INTERACTIONS_SCHEMA)
        .send()
        .await
        .expect("schema created")
        .schema_arn
        .expect("schema arn");
    let dataset = c
        .control
        .create_dataset()
        .name(format!("{name}-interactions"))
        .dataset_group_arn(&group)
        .schema_arn(&schema)
        .dataset_type("INTERACTIONS")
        .send()
        .await
        .expect("dataset created")
        .dataset_arn
        .expect("dataset arn");
    (group, schema, dataset)
}

#[tokio::test]
async fn a_dataset_group_walks_through_its_lifecycle() {
    // Scale 100: the group takes 6000 emulator seconds, 600 of them pending. The test moves the
    // clock instead of sleeping, so the statuses are exact.
    let emu = start_with(Arc::new(NoObjects), |c| c.time_scale = 100.0).await;
    let c = clients(&emu);
    let created = c
        .control
        .create_dataset_group()
        .name("shop")
        .domain(aws_sdk_personalize::types::Domain::Ecommerce)
        .tags(tag("env", "test"))
        .send()
        .await
        .expect("created");
    let group = created.dataset_group_arn().expect("arn").to_string();
    assert_eq!(group, arn("dataset-group/shop"));
    assert_eq!(created.domain().map(|d| d.as_str()), Some("ECOMMERCE"));
    let status = |emu_c: &Clients| {
        let control = emu_c.control.clone();
        let group = group.clone();
        async move {
            control
                .describe_dataset_group()
                .dataset_group_arn(group)
                .send()
                .await
                .expect("described")
                .dataset_group
                .expect("a group")
        }
    };
    let g = status(&c).await;
    assert_eq!(g.status(), Some("CREATE PENDING"));
    assert_eq!(g.name(), Some("shop"));
    assert!(g.failure_reason().is_none());
    let created_at = g.creation_date_time().expect("timestamp").as_secs_f64();
    emu.advance_clock(600.0).await.expect("clock advanced");
    assert_eq!(status(&c).await.status(), Some("CREATE IN_PROGRESS"));
    emu.advance_clock(5400.0).await.expect("clock advanced");
    let g = status(&c).await;
    assert_eq!(g.status(), Some("ACTIVE"));
    let updated_at = g.last_updated_date_time().expect("timestamp").as_secs_f64();
    assert!(
        (updated_at - created_at - 6000.0).abs() < 1.0,
        "last update is the ACTIVE transition"
    );

    c.control
        .delete_dataset_group()
        .dataset_group_arn(&group)
        .send()
        .await
        .expect("deleted");
    assert_eq!(status(&c).await.status(), Some("DELETE PENDING"));
    // The name stays taken while the deletion runs.
    let again = c.control.create_dataset_group().name("shop").send().await;
    assert_eq!(code(again), "ResourceAlreadyExistsException");
    let twice = c
        .control
        .delete_dataset_group()
        .dataset_group_arn(&group)
        .send()
        .await;
    assert_eq!(code(twice), "ResourceInUseException");
    emu.advance_clock(6000.0).await.expect("clock advanced");
    let gone = c
        .control
        .describe_dataset_group()
        .dataset_group_arn(&group)
        .send()
        .await;
    assert_eq!(code(gone), "ResourceNotFoundException");
    emu.shutdown().await.expect("stopped and saved");
}

#[tokio::test]
async fn datasets_enforce_schemas_types_and_parents() {
    let (emu, c) = started().await;
    let (group, schema, dataset) = group_with_interactions(&c, "retail").await;
    assert_eq!(dataset, arn("dataset/retail/INTERACTIONS"));
    let d = c
        .control
        .describe_dataset()
        .dataset_arn(&dataset)
        .send()
        .await
        .expect("described")
        .dataset
        .expect("a dataset");
    assert_eq!(d.status(), Some("ACTIVE"));
    assert_eq!(d.dataset_group_arn(), Some(group.as_str()));
    assert_eq!(d.schema_arn(), Some(schema.as_str()));
    assert_eq!(
        d.dataset_type().map(str::to_ascii_uppercase).as_deref(),
        Some("INTERACTIONS")
    );

    // A second dataset of the same type has the same ARN.
    let dup = c
        .control
        .create_dataset()
        .name("other")
        .dataset_group_arn(&group)
        .schema_arn(&schema)
        .dataset_type("Interactions")
        .send()
        .await;
    assert_eq!(code(dup), "ResourceAlreadyExistsException");
    // An interactions schema does not fit a users dataset.
    let misfit = c
        .control
        .create_dataset()
        .name("users")
        .dataset_group_arn(&group)
        .schema_arn(&schema)
        .dataset_type("Users")
        .send()
        .await;
    let text = message(misfit);
    assert!(text.contains("USER_ID") || text.contains("Users"), "{text}");
    // Unknown type, unknown group, unknown schema, malformed ARN.
    let bad_type = c
        .control
        .create_dataset()
        .name("x")
        .dataset_group_arn(&group)
        .schema_arn(&schema)
        .dataset_type("Clicks")
        .send()
        .await;
    assert_eq!(code(bad_type), "InvalidInputException");
    let no_group = c
        .control
        .create_dataset()
        .name("x")
        .dataset_group_arn(arn("dataset-group/nope"))
        .schema_arn(&schema)
        .dataset_type("Items")
        .send()
        .await;
    assert_eq!(code(no_group), "ResourceNotFoundException");
    let malformed = c
        .control
        .describe_dataset()
        .dataset_arn("dataset/retail")
        .send()
        .await;
    assert_eq!(code(malformed), "InvalidInputException");
    // The schema is in use, and so is the group.
    let schema_in_use = c.control.delete_schema().schema_arn(&schema).send().await;
    assert_eq!(code(schema_in_use), "ResourceInUseException");
    let group_in_use = c
        .control
        .delete_dataset_group()
        .dataset_group_arn(&group)
        .send()
        .await;
    assert_eq!(code(group_in_use), "ResourceInUseException");
    // Delete in order: dataset, then schema and group.
    c.control
        .delete_dataset()
        .dataset_arn(&dataset)
        .send()
        .await
        .expect("dataset deleted");
    let gone = c.control.describe_dataset().dataset_arn(&dataset).send().await;
    assert_eq!(code(gone), "ResourceNotFoundException");
    c.control
        .delete_schema()
        .schema_arn(&schema)
        .send()
        .await
        .expect("schema deleted");
    c.control
        .delete_dataset_group()
        .dataset_group_arn(&group)
        .send()
        .await
        .expect("group deleted");
    emu.shutdown().await.expect("stopped and saved");
}

#[tokio::test]
async fn a_child_cannot_be_created_under_a_parent_that_is_not_active() {
    let emu = start_with(Arc::new(NoObjects), |c| c.time_scale = 100.0).await;
    let c = clients(&emu);
    let group = c
        .control
        .create_dataset_group()
        .name("slow")
        .send()
        .await
        .expect("created")
        .dataset_group_arn
        .expect("arn");
    let schema = c
        .control
        .create_schema()
        .name("slow-schema")
        .schema(INTERACTIONS_SCHEMA)
        .send()
        .await
        .expect("schemas exist at once")
        .schema_arn
        .expect("arn");
    let early = c
        .control
        .create_dataset()
        .name("d")
        .dataset_group_arn(&group)
        .schema_arn(&schema)
        .dataset_type("Interactions")
        .send()
        .await;
    assert_eq!(code(early), "ResourceInUseException");
    let tracker = c
        .control
        .create_event_tracker()
        .name("t")
        .dataset_group_arn(&group)
        .send()
        .await;
    assert_eq!(code(tracker), "ResourceInUseException");
    emu.advance_clock(6000.0).await.expect("clock advanced");
    c.control
        .create_dataset()
        .name("d")
        .dataset_group_arn(&group)
        .schema_arn(&schema)
        .dataset_type("Interactions")
        .send()
        .await
        .expect("the group is ACTIVE now");
    emu.shutdown().await.expect("stopped and saved");
}

#[tokio::test]
async fn schemas_are_checked_at_creation() {
    let (emu, c) = started().await;
    for bad in [
        "not json",
        r#"{"type":"enum","name":"x","symbols":["a"]}"#,
        r#"{"type":"record","name":"x","fields":[{"name":"A","type":{"type":"array","items":"string"}}]}"#,
    ] {
        let r = c.control.create_schema().name("bad").schema(bad).send().await;
        assert_eq!(code(r), "InvalidInputException", "{bad}");
    }
    let missing = c.control.create_schema().name("no-schema").send().await;
    assert_eq!(code(missing), "InvalidInputException");
    let ok = c
        .control
        .create_schema()
        .name("good")
        .schema(USERS_SCHEMA)
        .domain(aws_sdk_personalize::types::Domain::VideoOnDemand)
        .send()
        .await
        .expect("valid schema");
    let schema_arn = ok.schema_arn().expect("arn");
    let s = c
        .control
        .describe_schema()
        .schema_arn(schema_arn)
        .send()
        .await
        .expect("described")
        .schema
        .expect("a schema");
    assert_eq!(s.schema(), Some(USERS_SCHEMA), "the text is echoed exactly");
    assert_eq!(s.domain().map(|d| d.as_str()), Some("VIDEO_ON_DEMAND"));
    let dup = c
        .control
        .create_schema()
        .name("good")
        .schema(USERS_SCHEMA)
        .send()
        .await;
    assert_eq!(code(dup), "ResourceAlreadyExistsException");
    emu.shutdown().await.expect("stopped and saved");
}

#[tokio::test]
async fn names_and_members_are_validated() {
    let (emu, c) = started().await;
    for bad in ["", "-x", "has space", "ünïcode", &"n".repeat(64)] {
        let r = c.control.create_dataset_group().name(bad).send().await;
        assert_eq!(code(r), "InvalidInputException", "name {bad:?}");
    }
    let missing = c.control.create_dataset_group().send().await;
    assert!(message(missing).contains("'name'"));
    let bad_role = c
        .control
        .create_dataset_group()
        .name("g")
        .role_arn("arn:aws:iam::1:role/x")
        .send()
        .await;
    assert_eq!(code(bad_role), "InvalidInputException");
    let kms_without_role = c
        .control
        .create_dataset_group()
        .name("g")
        .kms_key_arn("arn:aws:kms:us-east-1:123456789012:key/abc")
        .send()
        .await;
    assert_eq!(code(kms_without_role), "InvalidInputException");
    let role_without_kms = c
        .control
        .create_dataset_group()
        .name("g")
        .role_arn("arn:aws:iam::123456789012:role/personalize")
        .send()
        .await;
    assert!(
        message(role_without_kms).contains("only valid together with a kmsKeyArn"),
        "a role alone is refused"
    );
    c.control
        .create_dataset_group()
        .name("g")
        .role_arn("arn:aws:iam::123456789012:role/personalize")
        .kms_key_arn("arn:aws:kms:us-east-1:123456789012:key/abc")
        .send()
        .await
        .expect("a role with a key");
    let bad_max = c.control.list_dataset_groups().max_results(0).send().await;
    assert_eq!(code(bad_max), "InvalidInputException");
    let too_many = c.control.list_dataset_groups().max_results(101).send().await;
    assert_eq!(code(too_many), "InvalidInputException");
    emu.shutdown().await.expect("stopped and saved");
}

#[tokio::test]
async fn lists_page_newest_first_with_round_tripping_tokens() {
    let (emu, c) = started().await;
    for i in 0..7 {
        c.control
            .create_schema()
            .name(format!("s{i}"))
            .schema(USERS_SCHEMA)
            .send()
            .await
            .expect("created");
    }
    let mut names = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = c
            .control
            .list_schemas()
            .max_results(3)
            .set_next_token(token.clone())
            .send()
            .await
            .expect("a page");
        pages += 1;
        names.extend(page.schemas().iter().filter_map(|s| s.name().map(str::to_string)));
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(names, ["s6", "s5", "s4", "s3", "s2", "s1", "s0"]);
    // The SDK paginator sees the same.
    let all: Vec<_> = c
        .control
        .list_schemas()
        .max_results(2)
        .into_paginator()
        .items()
        .send()
        .collect::<Vec<_>>()
        .await;
    assert_eq!(all.len(), 7);
    let bad = c
        .control
        .list_schemas()
        .next_token("definitely-not-a-token")
        .send()
        .await;
    assert_eq!(code(bad), "InvalidNextTokenException");
    // A token of one list is not valid for another.
    let t = c
        .control
        .list_schemas()
        .max_results(1)
        .send()
        .await
        .expect("page")
        .next_token
        .expect("more");
    let foreign = c.control.list_dataset_groups().next_token(t).send().await;
    assert_eq!(code(foreign), "InvalidNextTokenException");
    emu.shutdown().await.expect("stopped and saved");
}

#[tokio::test]
async fn filters_and_trackers_respect_their_quotas() {
    let (emu, c) = started().await;
    let (group, _, _) = group_with_interactions(&c, "quota").await;
    for i in 0..30 {
        c.control
            .create_filter()
            .name(format!("f{i}"))
            .dataset_group_arn(&group)
            .filter_expression("EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN (\"click\")")
            .send()
            .await
            .expect("within the quota");
    }
    let over = c
        .control
        .create_filter()
        .name("f30")
        .dataset_group_arn(&group)
        .filter_expression("EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN (\"click\")")
        .send()
        .await;
    assert_eq!(code(over), "LimitExceededException");
    let listed = c
        .control
        .list_filters()
        .dataset_group_arn(&group)
        .max_results(100)
        .send()
        .await
        .expect("listed");
    assert_eq!(listed.filters().len(), 30, "the result key is Filters");
    let bad_expr = c
        .control
        .create_filter()
        .name("bad")
        .dataset_group_arn(&group)
        .filter_expression("SELECT * FROM items")
        .send()
        .await;
    assert_eq!(code(bad_expr), "InvalidInputException");
    let typo = c
        .control
        .create_filter()
        .name("typo")
        .dataset_group_arn(&group)
        .filter_expression("EXCLUDE ItemID WHER Interactions.EVENT_TYPE IN (\"click\")")
        .send()
        .await;
    let text = message(typo);
    assert!(
        text.contains("column 16") && text.contains("WHER"),
        "the parser points at the typo: {text}"
    );

    let tracker = c
        .control
        .create_event_tracker()
        .name("tracker")
        .dataset_group_arn(&group)
        .send()
        .await
        .expect("created");
    let tracker_arn = tracker.event_tracker_arn().expect("arn");
    let id = tracker_arn.rsplit('/').next().expect("id");
    assert!(tracker_arn.starts_with(&arn("event-tracker/")));
    assert_eq!(id.len(), 8);
    assert!(id.chars().all(|ch| ch.is_ascii_hexdigit()));
    let tracking_id = tracker.tracking_id().expect("tracking id");
    assert!(uuid::Uuid::parse_str(tracking_id).is_ok(), "{tracking_id}");
    let second = c
        .control
        .create_event_tracker()
        .name("tracker2")
        .dataset_group_arn(&group)
        .send()
        .await;
    assert_eq!(code(second), "LimitExceededException");
    let described = c
        .control
        .describe_event_tracker()
        .event_tracker_arn(tracker_arn)
        .send()
        .await
        .expect("described")
        .event_tracker
        .expect("tracker");
    assert_eq!(described.account_id(), Some(ACCOUNT));
    assert_eq!(described.tracking_id(), Some(tracking_id));
    emu.shutdown().await.expect("stopped and saved");
}

#[tokio::test]
async fn solutions_validate_recipes_and_configs() {
    let (emu, c) = started().await;
    let (group, _, _) = group_with_interactions(&c, "sol").await;
    let created = c
        .control
        .create_solution()
        .name("up")
        .dataset_group_arn(&group)
        .recipe_arn("arn:aws:personalize:::recipe/aws-user-personalization")
        .send()
        .await
        .expect("created");
    let s = c
        .control
        .describe_solution()
        .solution_arn(created.solution_arn().expect("arn"))
        .send()
        .await
        .expect("described")
        .solution
        .expect("solution");
    assert_eq!(
        s.perform_auto_training(),
        Some(true),
        "absent means the service default, true"
    );
    assert_eq!(s.status(), Some("ACTIVE"));
    let unknown = c
        .control
        .create_solution()
        .name("x")
        .dataset_group_arn(&group)
        .recipe_arn("arn:aws:personalize:::recipe/aws-nonexistent")
        .send()
        .await;
    assert_eq!(code(unknown), "ResourceNotFoundException");
    let domain_recipe = c
        .control
        .create_solution()
        .name("x")
        .dataset_group_arn(&group)
        .recipe_arn("arn:aws:personalize:::recipe/aws-vod-top-picks")
        .send()
        .await;
    assert_eq!(code(domain_recipe), "InvalidInputException");
    let no_recipe = c
        .control
        .create_solution()
        .name("x")
        .dataset_group_arn(&group)
        .send()
        .await;
    assert_eq!(code(no_recipe), "InvalidInputException");
    let bad_rate = c
        .control
        .create_solution()
        .name("x")
        .dataset_group_arn(&group)
        .recipe_arn("arn:aws:personalize:::recipe/aws-sims")
        .solution_config(
            aws_sdk_personalize::types::SolutionConfig::builder()
                .auto_training_config(
                    aws_sdk_personalize::types::AutoTrainingConfig::builder()
                        .scheduling_expression("rate(45 days)")
                        .build(),
                )
                .build(),
        )
        .send()
        .await;
    assert_eq!(code(bad_rate), "InvalidInputException");
    let off = c
        .control
        .create_solution()
        .name("no-auto")
        .dataset_group_arn(&group)
        .recipe_arn("arn:aws:personalize:::recipe/aws-sims")
        .perform_auto_training(false)
        .send()
        .await
        .expect("created");
    let s = c
        .control
        .describe_solution()
        .solution_arn(off.solution_arn().expect("arn"))
        .send()
        .await
        .expect("described")
        .solution
        .expect("solution");
    assert_eq!(s.perform_auto_training(), Some(false));
    for i in 2..10 {
        c.control
            .create_solution()
            .name(format!("s{i}"))
            .dataset_group_arn(&group)
            .recipe_arn("arn:aws:personalize:::recipe/aws-sims")
            .send()
            .await
            .expect("within the quota");
    }
    let over = c
        .control
        .create_solution()
        .name("s10")
        .dataset_group_arn(&group)
        .recipe_arn("arn:aws:personalize:::recipe/aws-sims")
        .send()
        .await;
    assert_eq!(code(over), "LimitExceededException");
    // ListSolutionVersions of an unknown solution is NF, unlike the other Lists.
    let versions = c
        .control
        .list_solution_versions()
        .solution_arn(arn("solution/ghost"))
        .send()
        .await;
    assert_eq!(code(versions), "ResourceNotFoundException");
    let empty = c
        .control
        .list_campaigns()
        .solution_arn(arn("solution/ghost"))
        .send()
        .await
        .expect("other lists just come back empty");
    assert!(empty.campaigns().is_empty());
    emu.shutdown().await.expect("stopped and saved");
}

#[tokio::test]
async fn update_solution_records_auto_training() {
    let (emu, c) = started().await;
    let (group, _, _) = group_with_interactions(&c, "upd").await;
    let solution = c
        .control
        .create_solution()
        .name("s")
        .dataset_group_arn(&group)
        .recipe_arn("arn:aws:personalize:::recipe/aws-user-personalization")
        .send()
        .await
        .expect("created")
        .solution_arn
        .expect("arn");
    c.control
        .update_solution()
        .solution_arn(&solution)
        .perform_auto_training(false)
        .send()
        .await
        .expect("updated");
    let s = c
        .control
        .describe_solution()
        .solution_arn(&solution)
        .send()
        .await
        .expect("described")
        .solution
        .expect("solution");
    assert_eq!(s.perform_auto_training(), Some(false));
    let update = s.latest_solution_update().expect("an update happened");
    assert_eq!(update.status(), Some("ACTIVE"));
    assert_eq!(update.perform_auto_training(), Some(false));
    emu.shutdown().await.expect("stopped and saved");
}

#[tokio::test]
async fn recipes_are_listed_and_described() {
    let (emu, c) = started().await;
    let all: Vec<_> = c
        .control
        .list_recipes()
        .into_paginator()
        .items()
        .send()
        .collect::<Vec<_>>()
        .await;
    assert!(all.len() >= 25);
    let ecommerce = c
        .control
        .list_recipes()
        .domain(aws_sdk_personalize::types::Domain::Ecommerce)
        .send()
        .await
        .expect("listed");
    assert_eq!(ecommerce.recipes().len(), 5);
    assert!(
        ecommerce
            .recipes()
            .iter()
            .all(|r| r.domain().map(|d| d.as_str()) == Some("ECOMMERCE"))
    );
    let sims = c
        .control
        .describe_recipe()
        .recipe_arn("arn:aws:personalize:::recipe/aws-sims")
        .send()
        .await
        .expect("described")
        .recipe
        .expect("recipe");
    assert_eq!(sims.recipe_type(), Some("RELATED_ITEMS"));
    assert_eq!(sims.status(), Some("ACTIVE"));
    let nope = c
        .control
        .describe_recipe()
        .recipe_arn("arn:aws:personalize:::recipe/aws-nope")
        .send()
        .await;
    assert_eq!(code(nope), "ResourceNotFoundException");
    emu.shutdown().await.expect("stopped and saved");
}

#[tokio::test]
async fn tags_are_added_listed_and_removed() {
    let (emu, c) = started().await;
    let group = c
        .control
        .create_dataset_group()
        .name("tagged")
        .tags(tag("a", "1"))
        .send()
        .await
        .expect("created")
        .dataset_group_arn
        .expect("arn");
    c.control
        .tag_resource()
        .resource_arn(&group)
        .tags(tag("b", "2"))
        .tags(tag("a", "3"))
        .send()
        .await
        .expect("tagged");
    let listed = tags_of(&c, &group).await;
    let mut pairs: Vec<(String, String)> = listed
        .iter()
        .map(|t| (t.tag_key().to_string(), t.tag_value().to_string()))
        .collect();
    pairs.sort();
    assert_eq!(
        pairs,
        [
            ("a".to_string(), "3".to_string()),
            ("b".to_string(), "2".to_string())
        ]
    );
    c.control
        .untag_resource()
        .resource_arn(&group)
        .tag_keys("a")
        .send()
        .await
        .expect("untagged");
    let listed = tags_of(&c, &group).await;
    assert_eq!(listed.len(), 1);

    let many: Vec<Tag> = (0..50).map(|i| tag(&format!("k{i}"), "v")).collect();
    let over = c
        .control
        .tag_resource()
        .resource_arn(&group)
        .set_tags(Some(many))
        .send()
        .await;
    assert_eq!(code(over), "TooManyTagsException", "1 + 50 tags is over 50");
    let too_many_at_create: Vec<Tag> = (0..51).map(|i| tag(&format!("k{i}"), "v")).collect();
    let r = c
        .control
        .create_dataset_group()
        .name("overtagged")
        .set_tags(Some(too_many_at_create))
        .send()
        .await;
    assert_eq!(code(r), "TooManyTagsException");
    let keys: Vec<String> = (0..51).map(|i| format!("k{i}")).collect();
    let tk = c
        .control
        .untag_resource()
        .resource_arn(&group)
        .set_tag_keys(Some(keys))
        .send()
        .await;
    assert_eq!(code(tk), "TooManyTagKeysException");
    let unknown = c
        .control
        .list_tags_for_resource()
        .resource_arn(arn("dataset-group/ghost"))
        .send()
        .await;
    assert_eq!(code(unknown), "ResourceNotFoundException");
    let bad_value = c
        .control
        .tag_resource()
        .resource_arn(&group)
        .tags(tag("x", "bad!"))
        .send()
        .await;
    assert_eq!(code(bad_value), "InvalidInputException");
    emu.shutdown().await.expect("stopped and saved");
}

#[tokio::test]
async fn regions_come_from_the_credential_scope() {
    let emu = start().await;
    let west = clients_in(&emu, "eu-west-1", false);
    let east = clients(&emu);
    let group = west
        .control
        .create_dataset_group()
        .name("same-name")
        .send()
        .await
        .expect("created")
        .dataset_group_arn
        .expect("arn");
    assert_eq!(
        group,
        format!("arn:aws:personalize:eu-west-1:{ACCOUNT}:dataset-group/same-name")
    );
    east.control
        .create_dataset_group()
        .name("same-name")
        .send()
        .await
        .expect("names are per region");
    let listed = east.control.list_dataset_groups().send().await.expect("listed");
    assert_eq!(listed.dataset_groups().len(), 1, "lists show one region");
    emu.shutdown().await.expect("stopped and saved");
}

#[tokio::test]
async fn the_sdk_retries_injected_throttling() {
    let emu = start().await;
    emu.set_faults(FaultSpec::parse("throttle-next=2;throttle-ops=CreateDatasetGroup").expect("valid"))
        .expect("accepted");
    let retrying = clients_in(&emu, "us-east-1", true);
    retrying
        .control
        .create_dataset_group()
        .name("retried")
        .send()
        .await
        .expect("the third attempt succeeds");
    // The admin API's call counts prove the SDK retried: three attempts, two throttled.
    let calls = raw(emu.addr(), "GET", "/_emulator/calls", &[], b"").await.json();
    assert_eq!(calls["calls"]["CreateDatasetGroup"], 3);
    assert_eq!(calls["throttled"]["CreateDatasetGroup"], 2);
    assert_eq!(
        emu.calls().calls["CreateDatasetGroup"],
        3,
        "the library view agrees"
    );

    // Without retries the first throttle is what the caller sees.
    emu.set_faults(FaultSpec::parse("throttle-next=1").expect("valid"))
        .expect("accepted");
    let plain = clients(&emu);
    let r = plain.control.list_dataset_groups().send().await;
    assert_eq!(code(r), "ThrottlingException");
    emu.shutdown().await.expect("stopped and saved");
}

#[tokio::test]
async fn the_sdk_retries_limit_exceeded_then_gives_up() {
    let emu = start_faulted("limit=CreateSchema").await;
    let retrying = clients_in(&emu, "us-east-1", true);
    let r = retrying
        .control
        .create_schema()
        .name("s")
        .schema(USERS_SCHEMA)
        .send()
        .await;
    assert_eq!(code(r), "LimitExceededException");
    let calls = raw(emu.addr(), "GET", "/_emulator/calls", &[], b"").await.json();
    assert_eq!(
        calls["calls"]["CreateSchema"], 3,
        "LimitExceededException is retried as throttling"
    );
    assert_eq!(calls["limited"]["CreateSchema"], 3);
    emu.shutdown().await.expect("stopped and saved");
}

#[tokio::test]
async fn the_control_plane_tps_quota_throttles_sdk_calls_but_not_the_runtime() {
    // One call per 5 s: a burst of ten is throttled however slowly this machine runs it.
    let emu = start_faulted("tps=0.2").await;
    let c = clients(&emu);
    let mut throttled = 0;
    for _ in 0..10 {
        if let Err(e) = c.control.list_schemas().send().await {
            assert_eq!(
                aws_sdk_personalize::error::ProvideErrorMetadata::code(&e),
                Some("ThrottlingException"),
                "{e:?}"
            );
            throttled += 1;
        }
    }
    assert!(throttled >= 5, "only {throttled} of 10 calls were throttled");
    assert_eq!(emu.calls().throttled["ListSchemas"], throttled);
    // The quota is the control plane's: runtime and events calls pass on to their own checks.
    for _ in 0..5 {
        let r = c
            .runtime
            .get_recommendations()
            .campaign_arn(arn("campaign/none"))
            .user_id("u1")
            .send()
            .await;
        assert_eq!(code(r), "ResourceNotFoundException");
    }
    assert!(!emu.calls().throttled.contains_key("GetRecommendations"));

    // The bucket refills at its rate: after a pause longer than one token's worth, a call passes.
    emu.set_faults(FaultSpec::parse("tps=1").expect("valid"))
        .expect("accepted");
    while c.control.list_schemas().send().await.is_ok() {}
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    c.control
        .list_schemas()
        .send()
        .await
        .expect("a token was refilled");
    emu.shutdown().await.expect("stopped and saved");
}

#[tokio::test]
async fn dataset_groups_are_limited_per_region_and_the_quota_is_adjustable() {
    let (emu, c) = started().await;
    for i in 0..5 {
        c.control
            .create_dataset_group()
            .name(format!("g{i}"))
            .send()
            .await
            .expect("within the quota");
    }
    let over = c.control.create_dataset_group().name("g5").send().await;
    let text = message(over);
    assert!(text.contains("More than 5"), "{text}");
    let over = c.control.create_dataset_group().name("g5").send().await;
    assert_eq!(code(over), "LimitExceededException");
    // Each region has its own quota.
    let west = clients_in(&emu, "eu-west-1", false);
    west.control
        .create_dataset_group()
        .name("g0")
        .send()
        .await
        .expect("another region");
    // A group being deleted frees its slot.
    c.control
        .delete_dataset_group()
        .dataset_group_arn(arn("dataset-group/g0"))
        .send()
        .await
        .expect("deleted");
    c.control
        .create_dataset_group()
        .name("g5")
        .send()
        .await
        .expect("a slot was freed");
    emu.shutdown().await.expect("stopped and saved");

    let emu = start_with(Arc::new(NoObjects), |c| c.quotas.dataset_groups = 2).await;
    let c = clients(&emu);
    for name in ["a", "b"] {
        c.control
            .create_dataset_group()
            .name(name)
            .send()
            .await
            .expect("within the adjusted quota");
    }
    let over = c.control.create_dataset_group().name("c").send().await;
    assert_eq!(code(over), "LimitExceededException");
    emu.shutdown().await.expect("stopped and saved");
}

#[tokio::test]
async fn injected_failures_end_in_create_failed_with_a_reason() {
    let emu = start_faulted("fail.dataset-group=^doomed").await;
    let c = clients(&emu);
    let group = c
        .control
        .create_dataset_group()
        .name("doomed-1")
        .send()
        .await
        .expect("the call itself succeeds")
        .dataset_group_arn
        .expect("arn");
    let g = c
        .control
        .describe_dataset_group()
        .dataset_group_arn(&group)
        .send()
        .await
        .expect("described")
        .dataset_group
        .expect("group");
    assert_eq!(g.status(), Some("CREATE FAILED"));
    assert!(g.failure_reason().is_some_and(|r| r.contains("doomed-1")));
    let fine = c
        .control
        .create_dataset_group()
        .name("fine")
        .send()
        .await
        .expect("created");
    let g = c
        .control
        .describe_dataset_group()
        .dataset_group_arn(fine.dataset_group_arn().expect("arn"))
        .send()
        .await
        .expect("described")
        .dataset_group
        .expect("group");
    assert_eq!(g.status(), Some("ACTIVE"));
    emu.shutdown().await.expect("stopped and saved");
}

#[tokio::test]
async fn state_survives_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let emu = start_with(Arc::new(NoObjects), |c| {
        c.state_dir = Some(dir.path().to_path_buf())
    })
    .await;
    let c = clients(&emu);
    let (group, schema, dataset) = group_with_interactions(&c, "durable").await;
    c.control
        .tag_resource()
        .resource_arn(&group)
        .tags(tag("keep", "me"))
        .send()
        .await
        .expect("tagged");
    emu.shutdown().await.expect("stopped and saved");

    let emu = start_with(Arc::new(NoObjects), |c| {
        c.state_dir = Some(dir.path().to_path_buf())
    })
    .await;
    let c = clients(&emu);
    let g = c
        .control
        .describe_dataset_group()
        .dataset_group_arn(&group)
        .send()
        .await
        .expect("still there")
        .dataset_group
        .expect("group");
    assert_eq!(g.status(), Some("ACTIVE"));
    c.control
        .describe_schema()
        .schema_arn(&schema)
        .send()
        .await
        .expect("schema kept");
    c.control
        .describe_dataset()
        .dataset_arn(&dataset)
        .send()
        .await
        .expect("dataset kept");
    let tags = c
        .control
        .list_tags_for_resource()
        .resource_arn(&group)
        .send()
        .await
        .expect("tags");
    assert_eq!(tags.tags().len(), 1);
    // New resources continue after the old ones in list order.
    c.control
        .create_dataset_group()
        .name("after")
        .send()
        .await
        .expect("created");
    let listed = c.control.list_dataset_groups().send().await.expect("listed");
    let names: Vec<_> = listed.dataset_groups().iter().filter_map(|g| g.name()).collect();
    assert_eq!(names, ["after", "durable"]);
    emu.shutdown().await.expect("stopped and saved");
}

#[tokio::test]
async fn failed_saves_are_reported_not_swallowed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let state_dir = dir.path().join("state");
    let emu = start_with(Arc::new(NoObjects), |c| c.state_dir = Some(state_dir.clone())).await;
    let c = clients(&emu);
    // Only synchronous saves before the swap below: a background save racing with it would
    // recreate the directory.
    emu.advance_clock(1.0).await.expect("saved");
    assert!(state_dir.join("wal-0.log").is_file(), "advancing the clock saved");
    let health = raw(emu.addr(), "GET", "/_emulator/health", &[], b"").await;
    assert_eq!(health.status, 200);

    // A file where the state directory was: every later write fails (permissions would not stop
    // root, this does).
    std::fs::remove_dir_all(&state_dir).expect("removed");
    std::fs::write(&state_dir, b"not a directory").expect("written");
    // A change that cannot be saved is not acknowledged: 503 ServiceUnavailable, which the SDKs
    // retry (tests/emulator_durability.rs checks that it leaves nothing behind).
    assert_eq!(
        code(c.control.create_dataset_group().name("lost").send().await),
        "ServiceUnavailable"
    );
    let e = emu.advance_clock(1.0).await.expect_err("cannot save");
    assert!(
        matches!(&e, personalize_ops::emulator::PersistError::Write { path, .. } if path.starts_with(&state_dir)),
        "{e:?}"
    );
    let admin = raw(
        emu.addr(),
        "POST",
        "/_emulator/clock",
        &[("Content-Type", "application/json")],
        br#"{"advanceSeconds": 1}"#,
    )
    .await;
    assert_eq!(admin.status, 500, "{}", admin.body);
    assert!(
        admin.body.contains(&state_dir.display().to_string()),
        "{}",
        admin.body
    );
    let health = raw(emu.addr(), "GET", "/_emulator/health", &[], b"").await;
    assert_eq!(health.status, 503);
    assert_eq!(health.json()["status"], "degraded");
    let e = emu.shutdown().await.expect_err("the last save fails too");
    assert!(e.to_string().contains(&state_dir.display().to_string()), "{e}");
}

#[tokio::test]
async fn a_save_that_recovers_clears_the_failure() {
    let dir = tempfile::tempdir().expect("temp dir");
    let state_dir = dir.path().join("state");
    let emu = start_with(Arc::new(NoObjects), |c| c.state_dir = Some(state_dir.clone())).await;
    std::fs::write(&state_dir, b"in the way").expect("written");
    assert!(emu.advance_clock(1.0).await.is_err());
    std::fs::remove_file(&state_dir).expect("removed");
    emu.advance_clock(1.0).await.expect("saves again");
    let health = raw(emu.addr(), "GET", "/_emulator/health", &[], b"").await;
    assert_eq!(health.status, 200);
    emu.shutdown().await.expect("the last save succeeded");
}

#[tokio::test]
async fn without_a_state_dir_nothing_survives() {
    let (emu, c) = started().await;
    let group = c
        .control
        .create_dataset_group()
        .name("ephemeral")
        .send()
        .await
        .expect("created")
        .dataset_group_arn
        .expect("arn");
    emu.shutdown().await.expect("stopped and saved");
    let (emu, c) = started().await;
    let r = c
        .control
        .describe_dataset_group()
        .dataset_group_arn(&group)
        .send()
        .await;
    assert_eq!(code(r), "ResourceNotFoundException");
    emu.shutdown().await.expect("stopped and saved");
}

#[tokio::test]
async fn the_wire_format_matches_awsjson11() {
    let emu = start().await;
    let addr = emu.addr();
    let created = raw_control(addr, "CreateDatasetGroup", r#"{"name":"wire"}"#).await;
    assert_eq!(created.status, 200);
    assert_eq!(created.header("content-type"), Some("application/x-amz-json-1.1"));
    assert!(created.header("x-amzn-requestid").is_some());
    let described = raw_control(
        addr,
        "DescribeDatasetGroup",
        &format!(r#"{{"datasetGroupArn":"{}"}}"#, arn("dataset-group/wire")),
    )
    .await;
    let g = &described.json()["datasetGroup"];
    assert!(
        g["creationDateTime"].is_number(),
        "timestamps are epoch seconds: {g}"
    );
    assert!(
        g.get("failureReason").is_none(),
        "absent members are omitted, not null"
    );

    let dup = raw_control(addr, "CreateDatasetGroup", r#"{"name":"wire"}"#).await;
    assert_eq!(dup.status, 400);
    assert_eq!(
        dup.header("x-amzn-errortype"),
        Some("ResourceAlreadyExistsException")
    );
    assert_eq!(dup.json()["__type"], "ResourceAlreadyExistsException");
    assert!(dup.json()["message"].is_string());

    for (body, what) in [
        ("{not json", "malformed JSON"),
        ("[1,2]", "not an object"),
        (r#"{"name": 42}"#, "wrong type"),
        (r#"{"name": null}"#, "null member"),
    ] {
        let r = raw_control(addr, "CreateDatasetGroup", body).await;
        assert_eq!(r.status, 400, "{what}");
        assert_eq!(
            r.header("x-amzn-errortype"),
            Some("InvalidInputException"),
            "{what}"
        );
    }
    let huge = format!(r#"{{"name":"{}"}}"#, "x".repeat(3 * 1024 * 1024));
    let r = raw_control(addr, "CreateDatasetGroup", &huge).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.header("x-amzn-errortype"), Some("InvalidInputException"));

    let unknown = raw_control(addr, "LaunchRocket", "{}").await;
    assert_eq!(unknown.status, 400);
    assert_eq!(
        unknown.header("x-amzn-errortype"),
        Some("UnknownOperationException")
    );
    let no_target = raw(addr, "POST", "/", &[], b"{}").await;
    assert_eq!(no_target.status, 400);
    assert!(
        no_target.json()["message"]
            .as_str()
            .is_some_and(|m| m.contains("X-Amz-Target"))
    );
    let empty_body = raw_control(addr, "ListDatasetGroups", "").await;
    assert_eq!(empty_body.status, 200, "an empty body is {{}}");
    emu.shutdown().await.expect("stopped and saved");
}

#[tokio::test]
async fn the_admin_api_reports_and_resets() {
    let emu = start().await;
    let addr = emu.addr();
    let c = clients(&emu);
    c.control
        .create_dataset_group()
        .name("counted")
        .send()
        .await
        .expect("created");
    c.control.list_dataset_groups().send().await.expect("listed");
    c.control.list_dataset_groups().send().await.expect("listed");
    let calls = raw(addr, "GET", "/_emulator/calls", &[], b"").await.json();
    assert_eq!(calls["calls"]["ListDatasetGroups"], 2);
    assert_eq!(calls["calls"]["CreateDatasetGroup"], 1);

    let set = raw(
        addr,
        "PUT",
        "/_emulator/faults",
        &[("Content-Type", "text/plain")],
        b"throttle-next=1;seed=3",
    )
    .await;
    assert_eq!(set.status, 200, "{}", set.body);
    assert_eq!(set.json()["throttleNext"], 1);
    let r = c.control.list_dataset_groups().send().await;
    assert_eq!(code(r), "ThrottlingException");
    let spec = raw(addr, "GET", "/_emulator/faults", &[], b"").await.json();
    assert_eq!(spec["throttleNext"], 0, "the countdown is visible");
    let json_set = raw(
        addr,
        "PUT",
        "/_emulator/faults",
        &[("Content-Type", "application/json")],
        br#"{"limitExceeded":["ListDatasetGroups"]}"#,
    )
    .await;
    assert_eq!(json_set.status, 200);
    assert_eq!(
        code(c.control.list_dataset_groups().send().await),
        "LimitExceededException"
    );
    let bad = raw(addr, "PUT", "/_emulator/faults", &[], br#"{"throttleRate": 7}"#).await;
    assert_eq!(bad.status, 400);
    let cleared = raw(addr, "PUT", "/_emulator/faults", &[], b"{}").await;
    assert_eq!(cleared.status, 200);

    let reset = raw(addr, "POST", "/_emulator/reset", &[], b"").await;
    assert_eq!(reset.status, 200);
    let listed = c.control.list_dataset_groups().send().await.expect("listed");
    assert!(listed.dataset_groups().is_empty());
    let calls = raw(addr, "GET", "/_emulator/calls", &[], b"").await.json();
    assert_eq!(
        calls["calls"]["ListDatasetGroups"], 1,
        "counts restart at the reset"
    );

    let before = raw(addr, "GET", "/_emulator/clock", &[], b"").await.json()["now"]
        .as_f64()
        .expect("now");
    let after = raw(
        addr,
        "POST",
        "/_emulator/clock",
        &[],
        br#"{"advanceSeconds": 3600}"#,
    )
    .await
    .json()["now"]
        .as_f64()
        .expect("now");
    assert!(after - before >= 3600.0);
    let missing = raw(addr, "GET", "/_emulator/nothing", &[], b"").await;
    assert_eq!(missing.status, 404);
    emu.shutdown().await.expect("stopped and saved");
}

#[tokio::test]
async fn the_emulate_command_documents_its_flags_and_stops_on_sigterm() {
    let bin = env!("CARGO_BIN_EXE_personalize-ops");
    let help = std::process::Command::new(bin)
        .args(["emulate", "--help"])
        .output()
        .expect("the binary runs");
    let text = String::from_utf8_lossy(&help.stdout);
    for flag in [
        "--listen",
        "--state-dir",
        "--time-scale",
        "--faults",
        "--data-dir",
        "--durations",
        "--quotas",
        "pending-import-jobs",
        "throttle-next=N",
        "fail.KIND=REGEX",
        "/_emulator/calls",
    ] {
        assert!(text.contains(flag), "--help documents {flag}:\n{text}");
    }

    let data = tempfile::tempdir().expect("temp dir");
    let (mut child, _stdout, url) = spawn_emulate(
        &[
            "--log-format",
            "json",
            "emulate",
            "--listen",
            "127.0.0.1:0",
            "--faults",
            "throttle-next=1",
        ],
        data.path(),
    )
    .await;
    let addr: std::net::SocketAddr = url.trim_start_matches("http://").parse().expect("an address");
    let health = raw(addr, "GET", "/_emulator/health", &[], b"").await;
    assert_eq!(health.status, 200);
    let throttled = raw_control(addr, "ListSchemas", "{}").await;
    assert_eq!(
        throttled.header("x-amzn-errortype"),
        Some("ThrottlingException"),
        "--faults applies"
    );
    let status = terminate(&mut child).await;
    assert!(status.success(), "a graceful stop exits 0: {status}");

    // SIGTERM right after the URL is printed (a supervisor that stops what it just started) is a
    // graceful stop too: the handler is in place before the URL appears.
    for _ in 0..3 {
        let (mut child, _stdout, _url) =
            spawn_emulate(&["emulate", "--listen", "127.0.0.1:0"], data.path()).await;
        let status = terminate(&mut child).await;
        assert!(status.success(), "SIGTERM at once still exits 0: {status}");
    }
}

type StdoutLines = tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>;

/// Starts the binary with `args` and `--data-dir data`, and reads the URL it prints first. The
/// stdout reader is returned to be kept open: the child may still write to it.
async fn spawn_emulate(
    args: &[&str],
    data: &std::path::Path,
) -> (tokio::process::Child, StdoutLines, String) {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_personalize-ops"))
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("emulate starts");
    let stdout = child.stdout.take().expect("piped");
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stdout));
    let url = lines
        .next_line()
        .await
        .expect("reads")
        .expect("the URL is printed first");
    (child, lines, url)
}

/// Sends SIGTERM to the child and waits for it to exit.
async fn terminate(child: &mut tokio::process::Child) -> std::process::ExitStatus {
    let pid = child.id().expect("running").to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    child.wait().await.expect("exits")
}

#[tokio::test]
async fn runtime_and_events_errors_use_rest_statuses() {
    let emu = start_with(Arc::new(NoObjects), |c| c.time_scale = 100.0).await;
    let addr = emu.addr();
    let json = [("Content-Type", "application/json")];
    let missing = raw(
        addr,
        "POST",
        "/recommendations",
        &json,
        format!(r#"{{"campaignArn":"{}","userId":"u"}}"#, arn("campaign/none")).as_bytes(),
    )
    .await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.header("content-type"), Some("application/json"));
    assert_eq!(
        missing.header("x-amzn-errortype"),
        Some("ResourceNotFoundException")
    );
    assert_eq!(missing.json()["__type"], "ResourceNotFoundException");
    let both = raw(
        addr,
        "POST",
        "/recommendations",
        &json,
        format!(
            r#"{{"campaignArn":"{0}","recommenderArn":"{0}"}}"#,
            arn("campaign/x")
        )
        .as_bytes(),
    )
    .await;
    assert_eq!(both.status, 400);
    assert_eq!(both.header("x-amzn-errortype"), Some("InvalidInputException"));

    // A dataset still being created refuses records with ResourceInUse, HTTP 409.
    let c = clients(&emu);
    let group = c
        .control
        .create_dataset_group()
        .name("rest")
        .send()
        .await
        .expect("group")
        .dataset_group_arn
        .expect("arn");
    emu.advance_clock(6000.0).await.expect("clock advanced");
    let schema = c
        .control
        .create_schema()
        .name("rest-users")
        .schema(USERS_SCHEMA)
        .send()
        .await
        .expect("schema")
        .schema_arn
        .expect("arn");
    let dataset = c
        .control
        .create_dataset()
        .name("users")
        .dataset_group_arn(&group)
        .schema_arn(&schema)
        .dataset_type("Users")
        .send()
        .await
        .expect("dataset")
        .dataset_arn
        .expect("arn");
    let body = format!(
        r#"{{"datasetArn":"{dataset}","users":[{{"userId":"u1","properties":"{{\"age\":3,\"gender\":\"F\"}}"}}]}}"#
    );
    let pending = raw(addr, "POST", "/users", &json, body.as_bytes()).await;
    assert_eq!(pending.status, 409, "{}", pending.body);
    assert_eq!(pending.header("x-amzn-errortype"), Some("ResourceInUseException"));
    let sdk = c
        .events
        .put_users()
        .dataset_arn(&dataset)
        .users(
            aws_sdk_personalizeevents::types::User::builder()
                .user_id("u1")
                .build()
                .expect("user"),
        )
        .send()
        .await;
    assert_eq!(code(sdk), "ResourceInUseException");
    emu.advance_clock(6000.0).await.expect("clock advanced");
    let stored = raw(addr, "POST", "/users", &json, body.as_bytes()).await;
    assert_eq!(stored.status, 200, "{}", stored.body);
    assert_eq!(stored.header("content-type"), Some("application/json"));
    let actions = raw(addr, "POST", "/actions", &json, b"{}").await;
    assert_eq!(actions.status, 400);
    assert_eq!(
        actions.header("x-amzn-errortype"),
        Some("UnknownOperationException")
    );
    emu.shutdown().await.expect("stopped and saved");
}
