//! The built-in Personalize's data path through the official SDK clients and boto3: imports read CSV
//! from the object store, versions train, campaigns and recommenders answer, events append, batch jobs
//! write their files, and all of it survives a restart.

mod support;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_personalize::types::{CampaignConfig, DataSource, Domain, TrainingMode};
use personalize_ops::emulator::Emulator;
use personalize_ops::objects::{MemoryStore, ObjectStore, ObjectUrl};
use support::emulator::*;

const INTERACTIONS_CSV: &str = include_str!("fixtures/data/interactions.csv");
const USERS_CSV: &str = include_str!("fixtures/data/users.csv");
const ROLE: &str = "arn:aws:iam::000000000000:role/personalize";

/// A memory store holding the fixture CSVs under `s3://data/train/`.
fn fixture_store() -> Arc<MemoryStore> {
    let store = MemoryStore::new();
    store.put_at(
        &url("train/interactions.csv"),
        INTERACTIONS_CSV,
        chrono::Utc::now(),
    );
    store.put_at(&url("train/users.csv"), USERS_CSV, chrono::Utc::now());
    Arc::new(store)
}

fn url(key: &str) -> ObjectUrl {
    ObjectUrl::new("data", key)
}

async fn read(store: &MemoryStore, key: &str) -> String {
    let bytes = store.get(&url(key), 10_000_000).await.expect("the object exists");
    String::from_utf8(bytes.to_vec()).expect("UTF-8")
}

/// Polls until `status` returns one of `want` (data work runs in the background even at scale 0).
async fn wait_for<F, Fut>(what: &str, want: &[&str], mut status: F) -> String
where
    F: FnMut() -> Fut,
    Fut: Future<Output = (String, Option<String>)>,
{
    for _ in 0..3000 {
        let (s, reason) = status().await;
        if want.contains(&s.as_str()) {
            return s;
        }
        if s.contains("FAILED") || s == "CREATE STOPPED" {
            panic!("{what} is {s} ({reason:?}), expected {want:?}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{what} never reached {want:?}");
}

async fn import_status(c: &Clients, arn: &str) -> (String, Option<String>) {
    let j = c
        .control
        .describe_dataset_import_job()
        .dataset_import_job_arn(arn)
        .send()
        .await
        .expect("described")
        .dataset_import_job
        .expect("job");
    (j.status.unwrap_or_default(), j.failure_reason)
}

async fn version_status(c: &Clients, arn: &str) -> (String, Option<String>) {
    let v = c
        .control
        .describe_solution_version()
        .solution_version_arn(arn)
        .send()
        .await
        .expect("described")
        .solution_version
        .expect("version");
    (v.status.unwrap_or_default(), v.failure_reason)
}

async fn wait_import(c: &Clients, arn: &str, want: &str) -> Option<String> {
    wait_for(arn, &[want, "CREATE FAILED"], || import_status(c, arn)).await;
    let (status, reason) = import_status(c, arn).await;
    assert_eq!(status, want, "{arn}: {reason:?}");
    reason
}

async fn wait_version(c: &Clients, arn: &str, want: &str) -> Option<String> {
    wait_for(arn, &[want, "CREATE FAILED"], || version_status(c, arn)).await;
    let (status, reason) = version_status(c, arn).await;
    assert_eq!(status, want, "{arn}: {reason:?}");
    reason
}

/// The resources of a dataset group loaded with the fixture data.
struct Loaded {
    group: String,
    interactions: String,
    users: String,
}

async fn create_schema(c: &Clients, name: &str, text: &str) -> String {
    c.control
        .create_schema()
        .name(name)
        .schema(text)
        .send()
        .await
        .expect("schema")
        .schema_arn
        .expect("arn")
}

async fn import(c: &Clients, name: &str, dataset: &str, location: &str) -> String {
    c.control
        .create_dataset_import_job()
        .job_name(name)
        .dataset_arn(dataset)
        .data_source(DataSource::builder().data_location(location).build())
        .role_arn(ROLE)
        .send()
        .await
        .expect("import job created")
        .dataset_import_job_arn
        .expect("arn")
}

/// A group `name` with interactions and users imported from the fixtures.
async fn load(c: &Clients, name: &str) -> Loaded {
    let group = c
        .control
        .create_dataset_group()
        .name(name)
        .send()
        .await
        .expect("group")
        .dataset_group_arn
        .expect("arn");
    let interactions_schema = create_schema(c, &format!("{name}-i"), INTERACTIONS_SCHEMA).await;
    let users_schema = create_schema(c, &format!("{name}-u"), USERS_SCHEMA).await;
    let mut datasets = Vec::new();
    for (ty, schema) in [("Interactions", &interactions_schema), ("Users", &users_schema)] {
        datasets.push(
            c.control
                .create_dataset()
                .name(format!("{name}-{ty}"))
                .dataset_group_arn(&group)
                .schema_arn(schema)
                .dataset_type(ty)
                .send()
                .await
                .expect("dataset")
                .dataset_arn
                .expect("arn"),
        );
    }
    let (interactions, users) = (datasets[0].clone(), datasets[1].clone());
    let i = import(
        c,
        &format!("{name}-import-i"),
        &interactions,
        "s3://data/train/interactions.csv",
    )
    .await;
    let u = import(
        c,
        &format!("{name}-import-u"),
        &users,
        "s3://data/train/users.csv",
    )
    .await;
    wait_import(c, &i, "ACTIVE").await;
    wait_import(c, &u, "ACTIVE").await;
    Loaded {
        group,
        interactions,
        users,
    }
}

async fn solution(c: &Clients, group: &str, name: &str, recipe: &str) -> String {
    c.control
        .create_solution()
        .name(name)
        .dataset_group_arn(group)
        .recipe_arn(format!("arn:aws:personalize:::recipe/{recipe}"))
        .perform_auto_training(false)
        .send()
        .await
        .expect("solution")
        .solution_arn
        .expect("arn")
}

async fn train(c: &Clients, solution: &str) -> String {
    let v = c
        .control
        .create_solution_version()
        .solution_arn(solution)
        .send()
        .await
        .expect("version")
        .solution_version_arn
        .expect("arn");
    wait_version(c, &v, "ACTIVE").await;
    v
}

async fn campaign(c: &Clients, name: &str, version: &str) -> String {
    c.control
        .create_campaign()
        .name(name)
        .solution_version_arn(version)
        .send()
        .await
        .expect("campaign")
        .campaign_arn
        .expect("arn")
}

fn item_ids(items: &[aws_sdk_personalizeruntime::types::PredictedItem]) -> Vec<String> {
    items
        .iter()
        .filter_map(|i| i.item_id().map(str::to_string))
        .collect()
}

/// The items user `user` interacted with in the fixture data.
fn fixture_items_of(user: &str) -> Vec<String> {
    INTERACTIONS_CSV
        .lines()
        .skip(1)
        .filter_map(|l| {
            let cols: Vec<&str> = l.split(',').collect();
            (cols.get(1) == Some(&user)).then(|| cols[0].to_string())
        })
        .collect()
}

async fn start(store: Arc<MemoryStore>) -> Emulator {
    start_with(store, |_| {}).await
}

#[tokio::test]
async fn imports_train_and_recommend() {
    let store = fixture_store();
    let emu = start(store.clone()).await;
    let c = clients(&emu);
    let data = load(&c, "shop").await;
    let solution = solution(&c, &data.group, "up", "aws-user-personalization").await;
    let version = train(&c, &solution).await;
    let described = c
        .control
        .describe_solution_version()
        .solution_version_arn(&version)
        .send()
        .await
        .expect("described")
        .solution_version
        .expect("version");
    assert!(
        described.training_hours().is_some(),
        "trainingHours after success"
    );
    assert_eq!(described.training_mode().map(|m| m.as_str()), Some("FULL"));
    let metrics = c
        .control
        .get_solution_metrics()
        .solution_version_arn(&version)
        .send()
        .await
        .expect("metrics")
        .metrics
        .expect("a map");
    for key in [
        "coverage",
        "mean_reciprocal_rank_at_25",
        "normalized_discounted_cumulative_gain_at_5",
        "normalized_discounted_cumulative_gain_at_10",
        "normalized_discounted_cumulative_gain_at_25",
        "precision_at_5",
        "precision_at_10",
        "precision_at_25",
    ] {
        let v = metrics.get(key).unwrap_or_else(|| panic!("{key} in {metrics:?}"));
        assert!(v.is_finite() && *v >= 0.0, "{key} = {v}");
    }
    let campaign = campaign(&c, "home", &version).await;
    let recs = c
        .runtime
        .get_recommendations()
        .campaign_arn(&campaign)
        .user_id("3")
        .num_results(10)
        .send()
        .await
        .expect("recommendations");
    let items = item_ids(recs.item_list());
    assert!(!items.is_empty() && items.len() <= 10, "{items:?}");
    // As in the service, what the user saw stays a candidate (interaction filters exclude it): the
    // model leads with the user's own history.
    let seen = fixture_items_of("3");
    assert!(
        seen.contains(&items[0]),
        "user-personalization leads with what user 3 interacted with: {items:?}"
    );
    let rid = recs.recommendation_id().expect("an id");
    assert!(rid.starts_with("RID-") && rid.len() == 40, "{rid}");

    // Filters: the filter must exist, be ACTIVE, and have its INCLUDE values.
    let include = c
        .control
        .create_filter()
        .name("by-gender")
        .dataset_group_arn(&data.group)
        .filter_expression("INCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ($TYPES)")
        .send()
        .await
        .expect("filter")
        .filter_arn
        .expect("arn");
    let missing = c
        .runtime
        .get_recommendations()
        .campaign_arn(&campaign)
        .user_id("3")
        .filter_arn(&include)
        .send()
        .await;
    assert_eq!(
        code(missing),
        "InvalidInputException",
        "INCLUDE placeholders are mandatory"
    );
    let exclude_rated = c
        .control
        .create_filter()
        .name("not-rated")
        .dataset_group_arn(&data.group)
        .filter_expression("EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN (\"RATING\")")
        .send()
        .await
        .expect("filter")
        .filter_arn
        .expect("arn");
    let popular = c
        .runtime
        .get_recommendations()
        .campaign_arn(&campaign)
        .user_id("3")
        .num_results(3)
        .send()
        .await
        .expect("recommendations");
    let top = item_ids(popular.item_list());

    // PutEvents appends to the interactions: once user 3 rated the top item, the filter drops it.
    let tracker = c
        .control
        .create_event_tracker()
        .name("web")
        .dataset_group_arn(&data.group)
        .send()
        .await
        .expect("tracker");
    c.events
        .put_events()
        .tracking_id(tracker.tracking_id().expect("tracking id"))
        .user_id("3")
        .session_id("s-1")
        .event_list(
            aws_sdk_personalizeevents::types::Event::builder()
                .event_type("RATING")
                .item_id(&top[0])
                .sent_at(aws_smithy_types::DateTime::from_secs(1_700_000_000))
                .event_value(4.0)
                .build()
                .expect("event"),
        )
        .send()
        .await
        .expect("events accepted");
    let filtered = c
        .runtime
        .get_recommendations()
        .campaign_arn(&campaign)
        .user_id("3")
        .num_results(25)
        .filter_arn(&exclude_rated)
        .send()
        .await
        .expect("filtered recommendations");
    assert!(
        !item_ids(filtered.item_list()).contains(&top[0]),
        "the new event is visible to filters"
    );

    // Runtime errors: unknown campaign is 404 NF; missing user for user-personalization is II.
    let unknown = c
        .runtime
        .get_recommendations()
        .campaign_arn("arn:aws:personalize:us-east-1:000000000000:campaign/ghost")
        .user_id("3")
        .send()
        .await;
    assert_eq!(code(unknown), "ResourceNotFoundException");
    let no_user = c
        .runtime
        .get_recommendations()
        .campaign_arn(&campaign)
        .send()
        .await;
    assert_eq!(code(no_user), "InvalidInputException");
    let ranking_on_wrong_recipe = c
        .runtime
        .get_personalized_ranking()
        .campaign_arn(&campaign)
        .user_id("3")
        .input_list("1")
        .send()
        .await;
    assert_eq!(code(ranking_on_wrong_recipe), "InvalidInputException");
    let bad_tracker = c
        .events
        .put_events()
        .tracking_id("not-a-tracker")
        .session_id("s")
        .event_list(
            aws_sdk_personalizeevents::types::Event::builder()
                .event_type("RATING")
                .sent_at(aws_smithy_types::DateTime::from_secs(1))
                .build()
                .expect("event"),
        )
        .send()
        .await;
    assert_eq!(code(bad_tracker), "InvalidInputException");

    // PutUsers upserts into the users dataset; a wrong dataset type or unknown dataset is refused.
    c.events
        .put_users()
        .dataset_arn(&data.users)
        .users(
            aws_sdk_personalizeevents::types::User::builder()
                .user_id("new-user")
                .properties(r#"{"age": 30, "gender": "F"}"#)
                .build()
                .expect("user"),
        )
        .send()
        .await
        .expect("user stored");
    let bad_props = c
        .events
        .put_users()
        .dataset_arn(&data.users)
        .users(
            aws_sdk_personalizeevents::types::User::builder()
                .user_id("u")
                .properties(r#"{"shoeSize": 44}"#)
                .build()
                .expect("user"),
        )
        .send()
        .await;
    assert_eq!(code(bad_props), "InvalidInputException");
    let items_into_users = c
        .events
        .put_items()
        .dataset_arn(&data.users)
        .items(
            aws_sdk_personalizeevents::types::Item::builder()
                .item_id("i")
                .build()
                .expect("item"),
        )
        .send()
        .await;
    assert_eq!(code(items_into_users), "InvalidInputException");
    let unknown_dataset = c
        .events
        .put_items()
        .dataset_arn("arn:aws:personalize:us-east-1:000000000000:dataset/shop/ITEMS")
        .items(
            aws_sdk_personalizeevents::types::Item::builder()
                .item_id("i")
                .build()
                .expect("item"),
        )
        .send()
        .await;
    assert_eq!(code(unknown_dataset), "ResourceNotFoundException");
    let _ = data.interactions;
    emu.shutdown().await.expect("stopped and saved");
}

#[tokio::test]
async fn imports_fail_with_precise_reasons() {
    let store = fixture_store();
    store.put_at(
        &url("bad/unknown-column.csv"),
        "USER_ID,AGE,GENDER,SHOE_SIZE\n1,30,F,44\n",
        chrono::Utc::now(),
    );
    store.put_at(
        &url("bad/bad-value.csv"),
        "USER_ID,AGE,GENDER\n1,thirty,F\n",
        chrono::Utc::now(),
    );
    store.put_at(
        &url("bad/reordered.csv"),
        "USER_ID,GENDER,AGE\n1,F,30\n",
        chrono::Utc::now(),
    );
    let emu = start(store).await;
    let c = clients(&emu);
    let group = c
        .control
        .create_dataset_group()
        .name("bad")
        .send()
        .await
        .expect("group")
        .dataset_group_arn
        .expect("arn");
    let schema = create_schema(&c, "bad-users", USERS_SCHEMA).await;
    let users = c
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
    let column = import(&c, "unknown-column", &users, "s3://data/bad/unknown-column.csv").await;
    let reason = wait_import(&c, &column, "CREATE FAILED").await.expect("a reason");
    assert!(reason.contains("SHOE_SIZE"), "{reason}");
    let value = import(&c, "bad-value", &users, "s3://data/bad/bad-value.csv").await;
    let reason = wait_import(&c, &value, "CREATE FAILED").await.expect("a reason");
    assert!(reason.contains("AGE") && reason.contains("thirty"), "{reason}");
    // Personalize reads columns in the schema's order: a reordered header is refused.
    let reordered = import(&c, "reordered", &users, "s3://data/bad/reordered.csv").await;
    let reason = wait_import(&c, &reordered, "CREATE FAILED")
        .await
        .expect("a reason");
    assert!(reason.contains("column GENDER comes before AGE"), "{reason}");
    let missing = import(&c, "missing", &users, "s3://data/nowhere/").await;
    let reason = wait_import(&c, &missing, "CREATE FAILED")
        .await
        .expect("a reason");
    assert!(reason.contains("s3://data/nowhere/"), "{reason}");
    // INCREMENTAL needs an earlier bulk import.
    let incremental = c
        .control
        .create_dataset_import_job()
        .job_name("incremental-first")
        .dataset_arn(&users)
        .data_source(
            DataSource::builder()
                .data_location("s3://data/train/users.csv")
                .build(),
        )
        .import_mode(aws_sdk_personalize::types::ImportMode::Incremental)
        .send()
        .await;
    assert_eq!(code(incremental), "InvalidInputException");
    let full = import(&c, "full", &users, "s3://data/train/users.csv").await;
    wait_import(&c, &full, "ACTIVE").await;
    let incremental = c
        .control
        .create_dataset_import_job()
        .job_name("incremental-second")
        .dataset_arn(&users)
        .data_source(
            DataSource::builder()
                .data_location("s3://data/train/users.csv")
                .build(),
        )
        .import_mode(aws_sdk_personalize::types::ImportMode::Incremental)
        .send()
        .await
        .expect("allowed after a FULL import")
        .dataset_import_job_arn
        .expect("arn");
    wait_import(&c, &incremental, "ACTIVE").await;
    emu.shutdown().await.expect("stopped and saved");
}

#[tokio::test]
async fn training_needs_enough_data_and_update_needs_a_full_version() {
    let store = fixture_store();
    let few: String = INTERACTIONS_CSV.lines().take(51).collect::<Vec<_>>().join("\n");
    store.put_at(&url("few/interactions.csv"), few, chrono::Utc::now());
    let emu = start(store).await;
    let c = clients(&emu);
    let data = load(&c, "train").await;
    let up = solution(&c, &data.group, "up", "aws-user-personalization").await;
    let early_update = c
        .control
        .create_solution_version()
        .solution_arn(&up)
        .training_mode(TrainingMode::Update)
        .send()
        .await;
    assert_eq!(
        code(early_update),
        "InvalidInputException",
        "UPDATE needs an ACTIVE FULL version"
    );
    let full = train(&c, &up).await;
    let update = c
        .control
        .create_solution_version()
        .solution_arn(&up)
        .training_mode(TrainingMode::Update)
        .send()
        .await
        .expect("UPDATE after FULL")
        .solution_version_arn
        .expect("arn");
    wait_version(&c, &update, "ACTIVE").await;
    assert_ne!(full, update);
    let sims = solution(&c, &data.group, "sims", "aws-sims").await;
    let sims_update = c
        .control
        .create_solution_version()
        .solution_arn(&sims)
        .training_mode(TrainingMode::Update)
        .send()
        .await;
    assert_eq!(
        code(sims_update),
        "InvalidInputException",
        "UPDATE is for user-personalization only"
    );

    // A group whose interactions are too few: training fails, the call itself succeeds.
    let small = c
        .control
        .create_dataset_group()
        .name("small")
        .send()
        .await
        .expect("group")
        .dataset_group_arn
        .expect("arn");
    let schema = create_schema(&c, "small-i", INTERACTIONS_SCHEMA).await;
    let ds = c
        .control
        .create_dataset()
        .name("i")
        .dataset_group_arn(&small)
        .schema_arn(&schema)
        .dataset_type("Interactions")
        .send()
        .await
        .expect("dataset")
        .dataset_arn
        .expect("arn");
    let job = import(&c, "few", &ds, "s3://data/few/interactions.csv").await;
    wait_import(&c, &job, "ACTIVE").await;
    let s = solution(&c, &small, "small-up", "aws-user-personalization").await;
    let v = c
        .control
        .create_solution_version()
        .solution_arn(&s)
        .send()
        .await
        .expect("accepted")
        .solution_version_arn
        .expect("arn");
    let reason = wait_version(&c, &v, "CREATE FAILED").await.expect("a reason");
    assert!(reason.to_lowercase().contains("fewer than"), "{reason}");
    let metrics = c
        .control
        .get_solution_metrics()
        .solution_version_arn(&v)
        .send()
        .await;
    assert_eq!(code(metrics), "ResourceInUseException");
    emu.shutdown().await.expect("stopped and saved");
}

#[tokio::test]
async fn campaigns_follow_latest_and_update_in_place() {
    let emu = start(fixture_store()).await;
    let c = clients(&emu);
    let data = load(&c, "latest").await;
    let s = solution(&c, &data.group, "up", "aws-user-personalization").await;
    let no_version = c
        .control
        .create_campaign()
        .name("early")
        .solution_version_arn(format!("{s}/$LATEST"))
        .campaign_config(
            CampaignConfig::builder()
                .sync_with_latest_solution_version(true)
                .build(),
        )
        .send()
        .await;
    assert_eq!(
        code(no_version),
        "ResourceInUseException",
        "no ACTIVE version yet"
    );
    let v1 = train(&c, &s).await;
    let without_sync = c
        .control
        .create_campaign()
        .name("nosync")
        .solution_version_arn(format!("{s}/$LATEST"))
        .send()
        .await;
    assert_eq!(code(without_sync), "InvalidInputException");
    let following = c
        .control
        .create_campaign()
        .name("follower")
        .solution_version_arn(format!("{s}/$LATEST"))
        .campaign_config(
            CampaignConfig::builder()
                .sync_with_latest_solution_version(true)
                .build(),
        )
        .send()
        .await
        .expect("campaign")
        .campaign_arn
        .expect("arn");
    let pinned = campaign(&c, "pinned", &v1).await;
    let describe = |arn: String| {
        let control = c.control.clone();
        async move {
            control
                .describe_campaign()
                .campaign_arn(arn)
                .send()
                .await
                .expect("described")
                .campaign
                .expect("campaign")
        }
    };
    assert_eq!(
        describe(following.clone()).await.solution_version_arn(),
        Some(v1.as_str())
    );
    assert!(describe(pinned.clone()).await.latest_campaign_update().is_none());
    let v2 = train(&c, &s).await;
    assert_eq!(
        describe(following.clone()).await.solution_version_arn(),
        Some(v2.as_str()),
        "$LATEST campaigns switch to the new ACTIVE version"
    );
    assert_eq!(
        describe(pinned.clone()).await.solution_version_arn(),
        Some(v1.as_str())
    );
    c.control
        .update_campaign()
        .campaign_arn(&pinned)
        .solution_version_arn(&v2)
        .min_provisioned_tps(3)
        .send()
        .await
        .expect("updated");
    let after = describe(pinned.clone()).await;
    let update = after.latest_campaign_update().expect("present after an update");
    assert_eq!(update.status(), Some("ACTIVE"));
    assert_eq!(after.solution_version_arn(), Some(v2.as_str()));
    assert_eq!(after.min_provisioned_tps(), Some(3));
    let in_use = c.control.delete_solution().solution_arn(&s).send().await;
    assert_eq!(
        code(in_use),
        "ResourceInUseException",
        "campaigns use the solution"
    );
    for arn in [&pinned, &following] {
        c.control
            .delete_campaign()
            .campaign_arn(arn)
            .send()
            .await
            .expect("deleted");
    }
    c.control
        .delete_solution()
        .solution_arn(&s)
        .send()
        .await
        .expect("deleted");
    let gone = c
        .control
        .describe_solution_version()
        .solution_version_arn(&v1)
        .send()
        .await;
    assert_eq!(
        code(gone),
        "ResourceNotFoundException",
        "versions go with their solution"
    );
    emu.shutdown().await.expect("stopped and saved");
}

#[tokio::test]
async fn lifecycles_with_time_scale_stop_and_quota() {
    // Scale 1: a version trains for 2 emulator hours; the clock is moved instead of waiting.
    let emu = start_with(fixture_store(), |c| c.time_scale = 1.0).await;
    let c = clients(&emu);
    emu.advance_clock(0.0).await.expect("clock advanced");
    let group = c
        .control
        .create_dataset_group()
        .name("timed")
        .send()
        .await
        .expect("group")
        .dataset_group_arn
        .expect("arn");
    emu.advance_clock(60.0).await.expect("clock advanced");
    let schema = create_schema(&c, "timed-i", INTERACTIONS_SCHEMA).await;
    let ds = c
        .control
        .create_dataset()
        .name("i")
        .dataset_group_arn(&group)
        .schema_arn(&schema)
        .dataset_type("Interactions")
        .send()
        .await
        .expect("dataset")
        .dataset_arn
        .expect("arn");
    emu.advance_clock(60.0).await.expect("clock advanced");
    // Five pending imports per region; the sixth is over the quota.
    let mut jobs = Vec::new();
    for i in 0..5 {
        jobs.push(import(&c, &format!("timed-{i}"), &ds, "s3://data/train/interactions.csv").await);
    }
    let (status, _) = import_status(&c, &jobs[0]).await;
    assert_eq!(status, "CREATE PENDING");
    let sixth = c
        .control
        .create_dataset_import_job()
        .job_name("timed-5")
        .dataset_arn(&ds)
        .data_source(
            DataSource::builder()
                .data_location("s3://data/train/interactions.csv")
                .build(),
        )
        .send()
        .await;
    assert_eq!(code(sixth), "LimitExceededException");
    let busy = c.control.delete_dataset().dataset_arn(&ds).send().await;
    assert_eq!(code(busy), "ResourceInUseException", "imports are running");
    emu.advance_clock(900.0).await.expect("clock advanced");
    for j in &jobs {
        wait_import(&c, j, "ACTIVE").await;
    }
    let s = solution(&c, &group, "timed-up", "aws-user-personalization").await;
    emu.advance_clock(60.0).await.expect("clock advanced");
    let v = c
        .control
        .create_solution_version()
        .solution_arn(&s)
        .send()
        .await
        .expect("version")
        .solution_version_arn
        .expect("arn");
    assert_eq!(version_status(&c, &v).await.0, "CREATE PENDING");
    let second = c.control.create_solution_version().solution_arn(&s).send().await;
    assert_eq!(
        code(second),
        "ResourceInUseException",
        "one version in progress per solution"
    );
    emu.advance_clock(720.0).await.expect("clock advanced");
    assert_eq!(version_status(&c, &v).await.0, "CREATE IN_PROGRESS");
    c.control
        .stop_solution_version_creation()
        .solution_version_arn(&v)
        .send()
        .await
        .expect("stopping");
    assert_eq!(version_status(&c, &v).await.0, "CREATE STOPPING");
    emu.advance_clock(300.0).await.expect("clock advanced");
    assert_eq!(version_status(&c, &v).await.0, "CREATE STOPPED");
    let again = c
        .control
        .stop_solution_version_creation()
        .solution_version_arn(&v)
        .send()
        .await;
    assert_eq!(
        code(again),
        "ResourceInUseException",
        "a stopped version cannot be stopped again"
    );
    let metrics = c
        .control
        .get_solution_metrics()
        .solution_version_arn(&v)
        .send()
        .await;
    assert_eq!(code(metrics), "ResourceInUseException");
    emu.shutdown().await.expect("stopped and saved");
}

#[tokio::test]
async fn ranking_related_items_and_batch_jobs() {
    let store = fixture_store();
    let lines: String = ["1", "2", "3"]
        .iter()
        .map(|u| format!("{{\"userId\": \"{u}\"}}\n"))
        .collect();
    store.put_at(&url("batch/users.json"), lines, chrono::Utc::now());
    store.put_at(
        &url("batch/items.json"),
        "{\"itemId\": \"12\"}\n{\"itemId\": \"40\"}\n",
        chrono::Utc::now(),
    );
    let emu = start(store.clone()).await;
    let c = clients(&emu);
    let data = load(&c, "batch").await;

    let ranking = solution(&c, &data.group, "rank", "aws-personalized-ranking").await;
    let ranking_version = train(&c, &ranking).await;
    let ranking_campaign = campaign(&c, "rank", &ranking_version).await;
    let ranked = c
        .runtime
        .get_personalized_ranking()
        .campaign_arn(&ranking_campaign)
        .user_id("1")
        .input_list("no-such-item")
        .input_list("12")
        .input_list("40")
        .send()
        .await
        .expect("ranked");
    let order = item_ids(ranked.personalized_ranking());
    assert_eq!(order.len(), 3);
    assert_eq!(
        order.last().map(String::as_str),
        Some("no-such-item"),
        "unknown items come last"
    );

    let sims = solution(&c, &data.group, "sims", "aws-sims").await;
    let sims_version = train(&c, &sims).await;
    let sims_campaign = campaign(&c, "sims", &sims_version).await;
    let related = c
        .runtime
        .get_recommendations()
        .campaign_arn(&sims_campaign)
        .item_id("12")
        .num_results(5)
        .send()
        .await
        .expect("related items");
    assert!(!related.item_list().is_empty());
    let no_item = c
        .runtime
        .get_recommendations()
        .campaign_arn(&sims_campaign)
        .user_id("1")
        .send()
        .await;
    assert_eq!(
        code(no_item),
        "InvalidInputException",
        "RELATED_ITEMS needs an itemId"
    );

    let up = solution(&c, &data.group, "up", "aws-user-personalization").await;
    let up_version = train(&c, &up).await;
    let job = c
        .control
        .create_batch_inference_job()
        .job_name("nightly")
        .solution_version_arn(&up_version)
        .job_input(
            aws_sdk_personalize::types::BatchInferenceJobInput::builder()
                .s3_data_source(
                    aws_sdk_personalize::types::S3DataConfig::builder()
                        .path("s3://data/batch/users.json")
                        .build()
                        .expect("config"),
                )
                .build(),
        )
        .job_output(
            aws_sdk_personalize::types::BatchInferenceJobOutput::builder()
                .s3_data_destination(
                    aws_sdk_personalize::types::S3DataConfig::builder()
                        .path("s3://data/batch/out/")
                        .build()
                        .expect("config"),
                )
                .build(),
        )
        .role_arn(ROLE)
        .num_results(4)
        .send()
        .await
        .expect("job")
        .batch_inference_job_arn
        .expect("arn");
    let status = || async {
        let j = c
            .control
            .describe_batch_inference_job()
            .batch_inference_job_arn(&job)
            .send()
            .await
            .expect("described")
            .batch_inference_job
            .expect("job");
        (j.status.unwrap_or_default(), j.failure_reason)
    };
    wait_for(&job, &["ACTIVE"], status).await;
    let out = read(&store, "batch/out/users.json.out").await;
    assert_eq!(out.lines().count(), 3, "{out}");
    for line in out.lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("JSON lines");
        assert!(
            v["output"]["recommendedItems"]
                .as_array()
                .is_some_and(|a| a.len() <= 4),
            "{v}"
        );
    }
    assert!(store.urls().contains(&url("batch/out/_CHECK")));
    let segment_on_wrong_recipe = c
        .control
        .create_batch_segment_job()
        .job_name("wrong")
        .solution_version_arn(&up_version)
        .job_input(
            aws_sdk_personalize::types::BatchSegmentJobInput::builder()
                .s3_data_source(
                    aws_sdk_personalize::types::S3DataConfig::builder()
                        .path("s3://data/batch/items.json")
                        .build()
                        .expect("config"),
                )
                .build(),
        )
        .job_output(
            aws_sdk_personalize::types::BatchSegmentJobOutput::builder()
                .s3_data_destination(
                    aws_sdk_personalize::types::S3DataConfig::builder()
                        .path("s3://data/segments/")
                        .build()
                        .expect("config"),
                )
                .build(),
        )
        .role_arn(ROLE)
        .send()
        .await;
    assert_eq!(code(segment_on_wrong_recipe), "InvalidInputException");

    let affinity = solution(&c, &data.group, "affinity", "aws-item-affinity").await;
    let affinity_version = train(&c, &affinity).await;
    let no_campaign = c
        .control
        .create_campaign()
        .name("seg")
        .solution_version_arn(&affinity_version)
        .send()
        .await;
    assert_eq!(
        code(no_campaign),
        "InvalidInputException",
        "segmentation versions serve batch jobs only"
    );
    let segment = c
        .control
        .create_batch_segment_job()
        .job_name("segments")
        .solution_version_arn(&affinity_version)
        .job_input(
            aws_sdk_personalize::types::BatchSegmentJobInput::builder()
                .s3_data_source(
                    aws_sdk_personalize::types::S3DataConfig::builder()
                        .path("s3://data/batch/items.json")
                        .build()
                        .expect("config"),
                )
                .build(),
        )
        .job_output(
            aws_sdk_personalize::types::BatchSegmentJobOutput::builder()
                .s3_data_destination(
                    aws_sdk_personalize::types::S3DataConfig::builder()
                        .path("s3://data/segments/")
                        .build()
                        .expect("config"),
                )
                .build(),
        )
        .role_arn(ROLE)
        .num_results(5)
        .send()
        .await
        .expect("job")
        .batch_segment_job_arn
        .expect("arn");
    let status = || async {
        let j = c
            .control
            .describe_batch_segment_job()
            .batch_segment_job_arn(&segment)
            .send()
            .await
            .expect("described")
            .batch_segment_job
            .expect("job");
        (j.status.unwrap_or_default(), j.failure_reason)
    };
    wait_for(&segment, &["ACTIVE"], status).await;
    let out = read(&store, "segments/items.json.out").await;
    assert_eq!(out.lines().count(), 2, "{out}");
    let listed = c
        .control
        .list_batch_segment_jobs()
        .solution_version_arn(&affinity_version)
        .send()
        .await
        .expect("listed");
    assert_eq!(listed.batch_segment_jobs().len(), 1);
    emu.shutdown().await.expect("stopped and saved");
}

/// A domain interactions CSV with `View` events: 30 users × 40 views over 60 items.
fn domain_interactions() -> String {
    let mut csv = String::from("USER_ID,ITEM_ID,TIMESTAMP,EVENT_TYPE\n");
    for u in 0..30 {
        for k in 0..40 {
            let item = (u * 7 + k * 3) % 60;
            csv.push_str(&format!("u{u},i{item},{},View\n", 1_700_000_000 + u * 100 + k));
        }
    }
    csv
}

const DOMAIN_INTERACTIONS_SCHEMA: &str = r#"{"type":"record","name":"Interactions","namespace":"com.amazonaws.personalize.schema","fields":[{"name":"USER_ID","type":"string"},{"name":"ITEM_ID","type":"string"},{"name":"TIMESTAMP","type":"long"},{"name":"EVENT_TYPE","type":"string"}],"version":"1.0"}"#;

/// An ECOMMERCE dataset group `name` with an empty Interactions dataset, both ACTIVE at time
/// scale 1; returns their ARNs.
async fn domain_interactions_dataset(c: &Clients, emu: &Emulator, name: &str) -> (String, String) {
    let group = c
        .control
        .create_dataset_group()
        .name(name)
        .domain(Domain::Ecommerce)
        .send()
        .await
        .expect("group")
        .dataset_group_arn
        .expect("arn");
    emu.advance_clock(60.0).await.expect("clock advanced");
    let schema = c
        .control
        .create_schema()
        .name(format!("{name}-i"))
        .schema(DOMAIN_INTERACTIONS_SCHEMA)
        .domain(Domain::Ecommerce)
        .send()
        .await
        .expect("schema")
        .schema_arn
        .expect("arn");
    let ds = c
        .control
        .create_dataset()
        .name("i")
        .dataset_group_arn(&group)
        .schema_arn(&schema)
        .dataset_type("Interactions")
        .send()
        .await
        .expect("dataset")
        .dataset_arn
        .expect("arn");
    emu.advance_clock(60.0).await.expect("clock advanced");
    (group, ds)
}

/// Creates the "Most viewed" recommender `most-viewed` in `group`; returns its ARN.
async fn most_viewed_recommender(c: &Clients, group: &str) -> String {
    c.control
        .create_recommender()
        .name("most-viewed")
        .dataset_group_arn(group)
        .recipe_arn("arn:aws:personalize:::recipe/aws-ecomm-popular-items-by-views")
        .send()
        .await
        .expect("recommender")
        .recommender_arn
        .expect("arn")
}

#[tokio::test]
async fn recommenders_train_stop_and_start() {
    let store = fixture_store();
    store.put_at(
        &url("domain/interactions.csv"),
        domain_interactions(),
        chrono::Utc::now(),
    );
    let emu = start_with(store, |c| c.time_scale = 1.0).await;
    let c = clients(&emu);
    let (group, ds) = domain_interactions_dataset(&c, &emu, "store").await;
    let job = import(&c, "store-import", &ds, "s3://data/domain/interactions.csv").await;
    emu.advance_clock(900.0).await.expect("clock advanced");
    wait_import(&c, &job, "ACTIVE").await;
    let custom_recipe = c
        .control
        .create_recommender()
        .name("wrong")
        .dataset_group_arn(&group)
        .recipe_arn("arn:aws:personalize:::recipe/aws-sims")
        .send()
        .await;
    assert_eq!(code(custom_recipe), "InvalidInputException");
    let rec = most_viewed_recommender(&c, &group).await;
    let describe = || async {
        c.control
            .describe_recommender()
            .recommender_arn(&rec)
            .send()
            .await
            .expect("described")
            .recommender
            .expect("recommender")
    };
    let creating = describe().await;
    assert_eq!(creating.status(), Some("CREATE PENDING"));
    assert!(creating.model_metrics().is_none(), "no metrics while creating");
    let not_yet = c.control.stop_recommender().recommender_arn(&rec).send().await;
    assert_eq!(code(not_yet), "ResourceInUseException");
    emu.advance_clock(3600.0).await.expect("clock advanced");
    wait_for(&rec, &["ACTIVE"], || async {
        let r = describe().await;
        (r.status.unwrap_or_default(), r.failure_reason)
    })
    .await;
    assert!(
        describe()
            .await
            .model_metrics()
            .is_some_and(|m| m.contains_key("coverage"))
    );
    let recs = c
        .runtime
        .get_recommendations()
        .recommender_arn(&rec)
        .user_id("u1")
        .num_results(5)
        .send()
        .await
        .expect("recommendations");
    assert_eq!(recs.item_list().len(), 5);
    c.control
        .stop_recommender()
        .recommender_arn(&rec)
        .send()
        .await
        .expect("stopping");
    assert_eq!(describe().await.status(), Some("STOP PENDING"));
    emu.advance_clock(300.0).await.expect("clock advanced");
    assert_eq!(describe().await.status(), Some("INACTIVE"));
    let inactive = c
        .runtime
        .get_recommendations()
        .recommender_arn(&rec)
        .user_id("u1")
        .send()
        .await;
    assert_eq!(
        code(inactive),
        "ResourceNotFoundException",
        "an INACTIVE recommender does not answer"
    );
    c.control
        .start_recommender()
        .recommender_arn(&rec)
        .send()
        .await
        .expect("starting");
    assert_eq!(describe().await.status(), Some("START PENDING"));
    emu.advance_clock(300.0).await.expect("clock advanced");
    assert_eq!(describe().await.status(), Some("ACTIVE"));
    emu.shutdown().await.expect("stopped and saved");
}

/// The domain interactions plus 150 views of `hot`, which makes it the most viewed item.
fn domain_interactions_with(hot: &str) -> String {
    let mut csv = domain_interactions();
    for u in 0..30 {
        for k in 0..5 {
            csv.push_str(&format!("u{u},{hot},{},View\n", 1_700_100_000 + u * 10 + k));
        }
    }
    csv
}

/// Imports `domain/{hot}.csv` into `dataset` (FULL) and waits for it at time scale 1.
async fn load_domain(c: &Clients, emu: &Emulator, name: &str, dataset: &str, hot: &str) {
    let job = import(c, name, dataset, &format!("s3://data/domain/{hot}.csv")).await;
    emu.advance_clock(900.0).await.expect("clock advanced");
    wait_import(c, &job, "ACTIVE").await;
}

/// The status of a recommender's latest update, or of the recommender before its first one.
async fn recommender_update_status(c: &Clients, rec: &str) -> (String, Option<String>) {
    let r = c
        .control
        .describe_recommender()
        .recommender_arn(rec)
        .send()
        .await
        .expect("described")
        .recommender
        .expect("recommender");
    match r.latest_recommender_update() {
        Some(u) => (
            u.status().unwrap_or_default().to_string(),
            u.failure_reason().map(str::to_string),
        ),
        None => (
            r.status().unwrap_or_default().to_string(),
            r.failure_reason().map(str::to_string),
        ),
    }
}

/// The recommender's top item for user u1.
async fn top_item(c: &Clients, rec: &str) -> Vec<String> {
    let recs = c
        .runtime
        .get_recommendations()
        .recommender_arn(rec)
        .user_id("u1")
        .num_results(1)
        .send()
        .await
        .expect("recommendations");
    item_ids(recs.item_list())
}

#[tokio::test]
async fn updating_a_recommenders_training_columns_retrains_it() {
    let store = fixture_store();
    for hot in ["hot-a", "hot-b", "hot-c"] {
        store.put_at(
            &url(&format!("domain/{hot}.csv")),
            domain_interactions_with(hot),
            chrono::Utc::now(),
        );
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let emu = start_with(Arc::clone(&store) as Arc<dyn ObjectStore>, |c| {
        c.time_scale = 1.0;
        c.state_dir = Some(dir.path().to_path_buf());
    })
    .await;
    let c = clients(&emu);
    let (group, ds) = domain_interactions_dataset(&c, &emu, "shop").await;
    load_domain(&c, &emu, "load-a", &ds, "hot-a").await;
    let rec = most_viewed_recommender(&c, &group).await;
    emu.advance_clock(3600.0).await.expect("clock advanced");
    let update_status = || recommender_update_status(&c, &rec);
    wait_for("the recommender", &["ACTIVE"], update_status).await;
    let top = || top_item(&c, &rec);
    assert_eq!(top().await, ["hot-a"]);

    // New data, then an update that changes the training columns: a full retraining on it.
    load_domain(&c, &emu, "load-b", &ds, "hot-b").await;
    let columns = aws_sdk_personalize::types::TrainingDataConfig::builder()
        .excluded_dataset_columns("INTERACTIONS", vec!["EVENT_TYPE".to_string()])
        .build();
    c.control
        .update_recommender()
        .recommender_arn(&rec)
        .recommender_config(
            aws_sdk_personalize::types::RecommenderConfig::builder()
                .training_data_config(columns.clone())
                .build(),
        )
        .send()
        .await
        .expect("update accepted");
    let (status, _) = update_status().await;
    assert_eq!(status, "CREATE PENDING");
    assert_eq!(
        top().await,
        ["hot-a"],
        "the old model serves while the update runs"
    );
    // The retraining (or its model, if it already finished) survives a restart.
    emu.shutdown().await.expect("stopped and saved");
    let emu = start_with(store.clone(), |c| {
        c.time_scale = 1.0;
        c.state_dir = Some(dir.path().to_path_buf());
    })
    .await;
    let c = clients(&emu);
    let update_status = || recommender_update_status(&c, &rec);
    let top = || top_item(&c, &rec);
    assert_eq!(top().await, ["hot-a"], "still the old model after the restart");
    emu.advance_clock(600.0).await.expect("clock advanced");
    wait_for("the retraining update", &["ACTIVE"], update_status).await;
    assert_eq!(
        top().await,
        ["hot-b"],
        "the retrained model serves once the update is ACTIVE"
    );

    // An update that leaves the columns alone does not retrain: newer data stays unused.
    load_domain(&c, &emu, "load-c", &ds, "hot-c").await;
    c.control
        .update_recommender()
        .recommender_arn(&rec)
        .recommender_config(
            aws_sdk_personalize::types::RecommenderConfig::builder()
                .training_data_config(columns)
                .min_recommendation_requests_per_second(3)
                .build(),
        )
        .send()
        .await
        .expect("update accepted");
    emu.advance_clock(600.0).await.expect("clock advanced");
    wait_for("the plain update", &["ACTIVE"], update_status).await;
    assert_eq!(top().await, ["hot-b"]);
    emu.shutdown().await.expect("stopped and saved");
}

/// An object store whose reads wait until released, so work is still in flight at shutdown.
#[derive(Debug)]
struct GatedStore {
    inner: Arc<MemoryStore>,
    open: tokio::sync::watch::Receiver<bool>,
}

#[async_trait::async_trait]
impl ObjectStore for GatedStore {
    async fn list(
        &self,
        prefix: &ObjectUrl,
        recursive: bool,
    ) -> Result<Vec<personalize_ops::objects::ObjectMeta>, personalize_ops::objects::ObjectError> {
        let mut open = self.open.clone();
        let _ = open.wait_for(|o| *o).await;
        self.inner.list(prefix, recursive).await
    }
    async fn head(
        &self,
        url: &ObjectUrl,
    ) -> Result<Option<personalize_ops::objects::ObjectMeta>, personalize_ops::objects::ObjectError> {
        let mut open = self.open.clone();
        let _ = open.wait_for(|o| *o).await;
        self.inner.head(url).await
    }
    async fn get(
        &self,
        url: &ObjectUrl,
        limit: u64,
    ) -> Result<bytes::Bytes, personalize_ops::objects::ObjectError> {
        let mut open = self.open.clone();
        let _ = open.wait_for(|o| *o).await;
        self.inner.get(url, limit).await
    }
    async fn put(
        &self,
        url: &ObjectUrl,
        body: bytes::Bytes,
    ) -> Result<(), personalize_ops::objects::ObjectError> {
        self.inner.put(url, body).await
    }
}

#[tokio::test]
async fn data_and_in_flight_work_survive_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = fixture_store();
    let emu = start_with(store.clone(), |c| c.state_dir = Some(dir.path().to_path_buf())).await;
    let c = clients(&emu);
    let data = load(&c, "durable").await;
    let s = solution(&c, &data.group, "up", "aws-user-personalization").await;
    let v = train(&c, &s).await;
    let campaign = campaign(&c, "durable", &v).await;
    let before = c
        .runtime
        .get_recommendations()
        .campaign_arn(&campaign)
        .user_id("5")
        .send()
        .await
        .expect("recommendations");
    emu.shutdown().await.expect("stopped and saved");

    // Restart on a store whose reads hang: an import started now is in flight at shutdown.
    let (open, gate) = tokio::sync::watch::channel(false);
    let gated = Arc::new(GatedStore {
        inner: store.clone(),
        open: gate,
    });
    let emu = start_with(gated, |c| c.state_dir = Some(dir.path().to_path_buf())).await;
    let c = clients(&emu);
    let after = c
        .runtime
        .get_recommendations()
        .campaign_arn(&campaign)
        .user_id("5")
        .send()
        .await
        .expect("the model survived");
    assert_eq!(item_ids(before.item_list()), item_ids(after.item_list()));
    let pending = import(&c, "in-flight", &data.users, "s3://data/train/users.csv").await;
    assert_eq!(import_status(&c, &pending).await.0, "CREATE IN_PROGRESS");
    emu.shutdown().await.expect("stopped and saved");
    drop(open);

    // The next start resumes the interrupted import instead of leaving it stuck.
    let emu = start_with(store, |c| c.state_dir = Some(dir.path().to_path_buf())).await;
    let c = clients(&emu);
    wait_import(&c, &pending, "ACTIVE").await;
    emu.shutdown().await.expect("stopped and saved");
}

#[tokio::test]
async fn boto3_walks_the_same_lifecycle() {
    let dir = tempfile::tempdir().expect("temp dir");
    let train = dir.path().join("train");
    std::fs::create_dir_all(train.join("batch")).expect("folders");
    std::fs::write(train.join("interactions.csv"), INTERACTIONS_CSV).expect("write");
    std::fs::write(train.join("users.csv"), USERS_CSV).expect("write");
    std::fs::write(
        train.join("batch/input.json"),
        "{\"userId\": \"1\"}\n{\"userId\": \"2\"}\n",
    )
    .expect("write");
    let store = Arc::new(personalize_ops::objects::DirStore::new(dir.path(), "local"));
    let emu = start_with(store, |_| {}).await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/py/emulator_lifecycle.py");
    let output = tokio::process::Command::new("python3")
        .arg(script)
        .arg(emu.url())
        .arg("s3://local/train/")
        .arg(&train)
        .output()
        .await
        .unwrap_or_else(|e| panic!("python3 must be installed to run {script}: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the boto3 lifecycle failed (needs python3 with boto3: pip install boto3):\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("lifecycle OK"), "{stdout}");
    emu.shutdown().await.expect("stopped and saved");
}

const ITEMS_SCHEMA: &str = r#"{"type":"record","name":"Items","namespace":"com.amazonaws.personalize.schema","fields":[{"name":"ITEM_ID","type":"string"},{"name":"GENRES","type":["null","string"],"categorical":true}],"version":"1.0"}"#;

#[tokio::test]
async fn item_metadata_from_put_items_drives_filters_and_metadata() {
    let emu = start(fixture_store()).await;
    let c = clients(&emu);
    let data = load(&c, "meta").await;
    let items_schema = create_schema(&c, "meta-items", ITEMS_SCHEMA).await;
    let items = c
        .control
        .create_dataset()
        .name("items")
        .dataset_group_arn(&data.group)
        .schema_arn(&items_schema)
        .dataset_type("Items")
        .send()
        .await
        .expect("dataset")
        .dataset_arn
        .expect("arn");
    let mut put = c.events.put_items().dataset_arn(&items);
    for (id, genre) in [("12", "Drama"), ("40", "Comedy"), ("45", "Drama")] {
        put = put.items(
            aws_sdk_personalizeevents::types::Item::builder()
                .item_id(id)
                .properties(format!(r#"{{"genres": "{genre}"}}"#))
                .build()
                .expect("item"),
        );
    }
    put.send().await.expect("items stored");
    let s = solution(&c, &data.group, "up", "aws-user-personalization").await;
    let v = train(&c, &s).await;
    let with_metadata = c
        .control
        .create_campaign()
        .name("meta")
        .solution_version_arn(&v)
        .campaign_config(
            CampaignConfig::builder()
                .enable_metadata_with_recommendations(true)
                .build(),
        )
        .send()
        .await
        .expect("campaign")
        .campaign_arn
        .expect("arn");
    let plain = campaign(&c, "plain", &v).await;
    let drama = c
        .control
        .create_filter()
        .name("genre")
        .dataset_group_arn(&data.group)
        .filter_expression("INCLUDE ItemID WHERE Items.GENRES IN ($GENRE)")
        .send()
        .await
        .expect("filter")
        .filter_arn
        .expect("arn");
    let recs = c
        .runtime
        .get_recommendations()
        .campaign_arn(&with_metadata)
        .user_id("7")
        .num_results(50)
        .filter_arn(&drama)
        .filter_values("GENRE", "\"Drama\"")
        .metadata_columns("ITEMS", vec!["GENRES".to_string()])
        .send()
        .await
        .expect("recommendations");
    // Seen items are not removed without an interactions filter, so both Drama items come back.
    let expected: Vec<String> = ["12", "45"].iter().map(|s| s.to_string()).collect();
    let drama_order = item_ids(recs.item_list());
    let mut got = drama_order.clone();
    got.sort();
    assert_eq!(got, expected, "only Drama items");
    for item in recs.item_list() {
        let genre = item.metadata().and_then(|m| m.get("GENRES")).map(String::as_str);
        assert_eq!(genre, Some("Drama"), "metadata comes back");
    }
    // A promotion: its share of the results (20 % of 10, as far as the Drama filter admits) comes
    // through its own filter, keeps that filter's order and carries the promotion's name; the rest
    // is the plain recommendation without them.
    let promotion = |percent: i32| {
        aws_sdk_personalizeruntime::types::Promotion::builder()
            .name("drama-push")
            .percent_promoted_items(percent)
            .filter_arn(&drama)
            .filter_values("GENRE", "\"Drama\"")
            .build()
    };
    let promoted = c
        .runtime
        .get_recommendations()
        .campaign_arn(&plain)
        .user_id("7")
        .num_results(10)
        .promotions(promotion(20))
        .send()
        .await
        .expect("recommendations");
    assert_eq!(promoted.item_list().len(), 10);
    let (marked, unmarked): (Vec<_>, Vec<_>) = promoted
        .item_list()
        .iter()
        .partition(|i| i.promotion_name() == Some("drama-push"));
    let marked = item_ids(&marked.into_iter().cloned().collect::<Vec<_>>());
    assert_eq!(
        marked,
        drama_order[..drama_order.len().min(2)],
        "promoted in filter order"
    );
    let unmarked = item_ids(&unmarked.into_iter().cloned().collect::<Vec<_>>());
    let plain_recs = c
        .runtime
        .get_recommendations()
        .campaign_arn(&plain)
        .user_id("7")
        .num_results(12)
        .send()
        .await
        .expect("recommendations");
    let expected_rest: Vec<String> = item_ids(plain_recs.item_list())
        .into_iter()
        .filter(|i| !marked.contains(i))
        .take(10 - marked.len())
        .collect();
    assert_eq!(unmarked, expected_rest, "the others in model order");
    let over = c
        .runtime
        .get_recommendations()
        .campaign_arn(&plain)
        .user_id("7")
        .promotions(promotion(101))
        .send()
        .await;
    assert_eq!(code(over), "InvalidInputException");
    let refused = c
        .runtime
        .get_recommendations()
        .campaign_arn(&plain)
        .user_id("7")
        .metadata_columns("ITEMS", vec!["GENRES".to_string()])
        .send()
        .await;
    assert_eq!(
        code(refused),
        "InvalidInputException",
        "metadata needs the campaign setting"
    );
    let bad_props = c
        .events
        .put_items()
        .dataset_arn(&items)
        .items(
            aws_sdk_personalizeevents::types::Item::builder()
                .item_id("x")
                .properties("not json")
                .build()
                .expect("item"),
        )
        .send()
        .await;
    assert_eq!(code(bad_props), "InvalidInputException");
    emu.shutdown().await.expect("stopped and saved");
}

#[tokio::test]
async fn quotas_and_injected_failures_on_data_resources() {
    let emu = start_with(fixture_store(), |c| {
        c.time_scale = 1.0;
        c.faults = personalize_ops::emulator::faults::FaultSpec::parse("fail.solution-version=^doomed")
            .expect("valid");
    })
    .await;
    let c = clients(&emu);
    let mut groups = Vec::new();
    for g in 0..3 {
        groups.push(
            c.control
                .create_dataset_group()
                .name(format!("q{g}"))
                .send()
                .await
                .expect("group")
                .dataset_group_arn
                .expect("arn"),
        );
    }
    emu.advance_clock(60.0).await.expect("clock advanced");
    let mut solutions = Vec::new();
    for (g, group) in groups.iter().enumerate() {
        for s in 0..if g == 2 { 1 } else { 10 } {
            solutions.push(solution(&c, group, &format!("q{g}-s{s}"), "aws-user-personalization").await);
        }
    }
    let doomed = solution(&c, &groups[2], "doomed", "aws-sims").await;
    emu.advance_clock(60.0).await.expect("clock advanced");
    // Twenty versions in flight per region; the twenty-first is over the quota.
    for s in &solutions[..20] {
        c.control
            .create_solution_version()
            .solution_arn(s)
            .send()
            .await
            .expect("within the quota");
    }
    let over = c
        .control
        .create_solution_version()
        .solution_arn(&solutions[20])
        .send()
        .await;
    assert_eq!(code(over), "LimitExceededException");
    emu.advance_clock(7200.0).await.expect("clock advanced");
    let failed = c
        .control
        .create_solution_version()
        .solution_arn(&doomed)
        .send()
        .await
        .expect("the call succeeds")
        .solution_version_arn
        .expect("arn");
    assert_eq!(
        version_status(&c, &failed).await.0,
        "CREATE PENDING",
        "the lifecycle still runs"
    );
    emu.advance_clock(7200.0).await.expect("clock advanced");
    let (status, reason) = version_status(&c, &failed).await;
    assert_eq!(status, "CREATE FAILED");
    assert!(
        reason.is_some_and(|r| r.contains("doomed")),
        "the injected reason names the match"
    );
    emu.shutdown().await.expect("stopped and saved");
}

#[tokio::test]
async fn campaign_and_recommender_quotas() {
    let store = fixture_store();
    store.put_at(
        &url("domain/interactions.csv"),
        domain_interactions(),
        chrono::Utc::now(),
    );
    let emu = start(store).await;
    let c = clients(&emu);
    let data = load(&c, "cq").await;
    let s = solution(&c, &data.group, "up", "aws-user-personalization").await;
    let v = train(&c, &s).await;
    for i in 0..5 {
        campaign(&c, &format!("c{i}"), &v).await;
    }
    let over = c
        .control
        .create_campaign()
        .name("c5")
        .solution_version_arn(&v)
        .send()
        .await;
    assert_eq!(code(over), "LimitExceededException");

    let group = c
        .control
        .create_dataset_group()
        .name("rq")
        .domain(Domain::VideoOnDemand)
        .send()
        .await
        .expect("group")
        .dataset_group_arn
        .expect("arn");
    for i in 0..5 {
        c.control
            .create_recommender()
            .name(format!("r{i}"))
            .dataset_group_arn(&group)
            .recipe_arn("arn:aws:personalize:::recipe/aws-vod-most-popular")
            .send()
            .await
            .expect("within the quota");
    }
    let over = c
        .control
        .create_recommender()
        .name("r5")
        .dataset_group_arn(&group)
        .recipe_arn("arn:aws:personalize:::recipe/aws-vod-most-popular")
        .send()
        .await;
    assert_eq!(code(over), "LimitExceededException");
    let other_domain = c
        .control
        .create_recommender()
        .name("ecomm")
        .dataset_group_arn(&group)
        .recipe_arn("arn:aws:personalize:::recipe/aws-ecomm-recommended-for-you")
        .send()
        .await;
    assert_eq!(code(other_domain), "InvalidInputException");
    // Without data, the recommenders' training fails with Personalize's reason.
    let r0 = c
        .control
        .list_recommenders()
        .dataset_group_arn(&group)
        .send()
        .await
        .expect("listed")
        .recommenders()
        .iter()
        .filter_map(|r| r.recommender_arn().map(str::to_string))
        .next()
        .expect("one");
    let status = || async {
        let r = c
            .control
            .describe_recommender()
            .recommender_arn(&r0)
            .send()
            .await
            .expect("described")
            .recommender
            .expect("recommender");
        (r.status.unwrap_or_default(), r.failure_reason)
    };
    for _ in 0..3000 {
        if status().await.0 == "CREATE FAILED" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (s, reason) = status().await;
    assert_eq!(s, "CREATE FAILED");
    assert!(
        reason.is_some_and(|r| r.contains("interactions")),
        "names the missing data"
    );
    emu.shutdown().await.expect("stopped and saved");
}
