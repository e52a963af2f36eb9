//! The daemon's removal path on moto: the `run` binary with the built-in Personalize. Removing a
//! group's parameter file keeps its resources by default (an SNS note says so) and, with
//! `daemon.delete_removed_groups`, tears the group down (nothing left in Personalize or the table);
//! a file uploaded again before the grace period ends cancels the teardown. `destroy --config` of a
//! group the table never recorded leaves a tombstone the resync respects.

mod support;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use aws_sdk_s3::types::Event;
use personalize_ops::emulator::Emulator;
use personalize_ops::intake::{Intake, Rescanner, spec_validator};
use personalize_ops::metrics::MemorySink;
use personalize_ops::notify::Notifications;
use personalize_ops::objects::S3Store;
use personalize_ops::store::StateStore;
use serde_json::Value;
use support::cloud::{Deployment, notes, notify_train_json_events};
use support::moto::Moto;
use support::process::{Process, fast_settings, output};
use support::wait::PATIENCE;

/// The bucket's `train/*.json` creations and removals go to the intake queue, as the stack sets it.
async fn notify_creations_and_removals(c: &Deployment) {
    let arn = c
        .sqs
        .get_queue_attributes()
        .queue_url(&c.queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("queue attributes")
        .attributes()
        .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn).cloned())
        .expect("queue ARN");
    notify_train_json_events(
        &c.s3,
        &c.bucket,
        &arn,
        &[Event::S3ObjectCreated, Event::S3ObjectRemoved],
    )
    .await;
}

/// A daemon on moto with the built-in Personalize, the removal settings given as environment.
struct Service {
    moto: Moto,
    cloud: Deployment,
    emu: Emulator,
    daemon: Process,
    /// Notifications received but not yet returned: one receive may bring several.
    unread: Mutex<VecDeque<Value>>,
    _work: tempfile::TempDir,
}

async fn service(removal: &[(&str, &str)]) -> Service {
    let moto = Moto::start();
    let cloud = Deployment::new(&moto, 3).await;
    notify_creations_and_removals(&cloud).await;
    let emu = cloud.emulator().await;
    let work = tempfile::tempdir().expect("tempdir");
    let mut env = cloud.service_env(&moto.endpoint(), &emu, &fast_settings(work.path()));
    env.extend(removal.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let daemon = Process::start(&["run"], &env);
    Service {
        moto,
        cloud,
        emu,
        daemon,
        unread: Mutex::new(VecDeque::new()),
        _work: work,
    }
}

/// The shop group's data and parameter file, uploaded to the deployment's bucket.
async fn upload_shop(cloud: &Deployment) {
    for csv in ["interactions.csv", "users.csv"] {
        let body = std::fs::read(format!("tests/fixtures/data/{csv}")).expect("fixture data");
        cloud.upload(&format!("train/shop/{csv}"), body).await;
    }
    let config = std::fs::read("tests/fixtures/daemon/shop.json").expect("fixture config");
    cloud.upload("train/shop/config.json", config).await;
}

/// The dataset groups and schemas (`schema NAME`) the built-in Personalize at `emu` lists.
async fn groups_in_personalize(emu: &Emulator) -> Vec<String> {
    let c = support::emulator::clients(emu).control;
    let mut out = support::emulator::group_names(&c).await;
    let schemas = support::emulator::schema_names(&c).await;
    out.extend(schemas.into_iter().map(|n| format!("schema {n}")));
    out
}

impl Service {
    async fn upload_shop(&self) {
        upload_shop(&self.cloud).await;
    }

    async fn remove_config(&self) {
        self.cloud
            .s3
            .delete_object()
            .bucket(&self.cloud.bucket)
            .key("train/shop/config.json")
            .send()
            .await
            .expect("delete the parameter file");
    }

    /// The next notification on the topic (its `sqs` body), in the order received. A receive deletes
    /// every message it brings, so the ones not returned yet wait in `unread`, not lost.
    async fn next_note(&self) -> Value {
        let started = Instant::now();
        loop {
            if let Some(note) = self.unread.lock().expect("unread notes").pop_front() {
                return note;
            }
            assert!(
                started.elapsed() < PATIENCE,
                "no notification:\n{}",
                self.daemon.log()
            );
            let batch = notes(&self.cloud.sqs, &self.cloud.notes_url, 1).await;
            self.unread.lock().expect("unread notes").extend(batch);
        }
    }

    async fn groups_in_personalize(&self) -> Vec<String> {
        groups_in_personalize(&self.emu).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_opt_in_a_removed_file_tears_its_group_down_and_an_upload_in_the_grace_period_cancels() {
    // First a long grace period: the file comes back before it ends.
    let s = service(&[
        ("PERSONALIZE_OPS__DAEMON__DELETE_REMOVED_GROUPS", "true"),
        ("PERSONALIZE_OPS__DAEMON__DELETE_GRACE_SECS", "3600"),
    ])
    .await;
    s.upload_shop().await;
    let note = s.next_note().await;
    assert_eq!(note["status"], "UPDATE COMPLETE", "{note}");
    s.remove_config().await;
    let note = s.next_note().await;
    assert_eq!(note["status"], "CONFIG REMOVED", "{note}");
    assert!(
        note["summary"]
            .as_str()
            .unwrap_or("")
            .contains("will be deleted at"),
        "{note}"
    );
    let config = std::fs::read("tests/fixtures/daemon/shop.json").expect("fixture config");
    s.cloud.upload("train/shop/config.json", config).await;
    let note = s.next_note().await;
    assert_eq!(note["status"], "UPDATE COMPLETE", "the file came back: {note}");
    let state = s.cloud.store.group("shop").await.expect("read").expect("group");
    assert!(state.observed.is_some_and(|o| o.converged));
    assert!(s.groups_in_personalize().await.contains(&"shop".to_string()));
    drop(s);

    // Then no grace: the removal tears the group down, and the table forgets it.
    let s = service(&[
        ("PERSONALIZE_OPS__DAEMON__DELETE_REMOVED_GROUPS", "true"),
        ("PERSONALIZE_OPS__DAEMON__DELETE_GRACE_SECS", "0"),
    ])
    .await;
    s.upload_shop().await;
    let note = s.next_note().await;
    assert_eq!(note["status"], "UPDATE COMPLETE", "{note}");
    assert!(!s.groups_in_personalize().await.is_empty());
    s.remove_config().await;
    let note = s.next_note().await;
    assert_eq!(note["status"], "DELETE COMPLETE", "{note}\n{}", s.daemon.log());
    assert_eq!(s.groups_in_personalize().await, Vec::<String>::new());
    assert_eq!(s.cloud.store.group("shop").await.expect("read"), None);
    assert!(
        s.cloud
            .store
            .schedules(Some("shop"))
            .await
            .expect("schedules")
            .is_empty()
    );
    let _ = &s.moto;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn by_default_a_removed_file_keeps_the_resources_and_says_so() {
    let s = service(&[]).await;
    s.upload_shop().await;
    let note = s.next_note().await;
    assert_eq!(note["status"], "UPDATE COMPLETE", "{note}");
    let before = s.groups_in_personalize().await;
    s.remove_config().await;
    let note = s.next_note().await;
    assert_eq!(note["status"], "CONFIG REMOVED", "{note}");
    assert!(
        note["summary"]
            .as_str()
            .unwrap_or("")
            .contains("config removed; resources kept"),
        "{note}"
    );
    assert_eq!(s.groups_in_personalize().await, before);
    let state = s.cloud.store.group("shop").await.expect("read").expect("group");
    assert!(state.desired.is_some_and(|d| d.is_removal()));
    assert!(
        state
            .observed
            .and_then(|o| o.last_error)
            .is_some_and(|e| e.contains("resources kept")),
    );
    assert!(
        s.daemon.log().contains("config removed; resources kept"),
        "the log says it"
    );
}

/// A group built with `apply` never went through the state table. `destroy --config` of its file
/// records that version of the file with a tombstone, so the resync (which compares the bucket with
/// the table) does not build the group again from it; a new version of the file is built.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destroying_a_group_the_table_never_recorded_keeps_the_resync_from_building_it_again() {
    let moto = Moto::start();
    let cloud = Deployment::new(&moto, 3).await;
    let emu = cloud.emulator().await;
    let work = tempfile::tempdir().expect("tempdir");
    let env = cloud.service_env(&moto.endpoint(), &emu, &fast_settings(work.path()));
    upload_shop(&cloud).await;
    let config = format!("s3://{}/train/shop/config.json", cloud.bucket);
    let text = |out: &std::process::Output| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    };

    let applied = output(&["apply", "--config", &config], &env).await;
    assert!(applied.status.success(), "{}", text(&applied));
    assert!(groups_in_personalize(&emu).await.contains(&"shop".to_string()));
    assert_eq!(
        cloud.store.group("shop").await.expect("read"),
        None,
        "apply records nothing"
    );

    let destroyed = output(&["destroy", "--config", &config, "--yes"], &env).await;
    let said = text(&destroyed);
    assert_eq!(destroyed.status.code(), Some(0), "{said}");
    assert_eq!(groups_in_personalize(&emu).await, Vec::<String>::new());

    // The daemon's resync, the bucket compared with the table; a fresh one (a restarted replica)
    // reads every file it has no note of.
    let rescanner = || {
        let intake = Intake::new(
            cloud.bucket.clone(),
            Arc::new(S3Store::new(cloud.s3.clone())),
            cloud.store.clone(),
            Notifications::default(),
            Arc::new(MemorySink::new()),
            spec_validator(),
            256 * 1024,
        );
        let objects = Arc::new(S3Store::new(cloud.s3.clone()));
        Rescanner::new(
            Arc::new(intake),
            objects,
            cloud.store.clone(),
            Arc::new(MemorySink::new()),
        )
    };
    let report = rescanner().rescan().await.expect("rescan");
    assert_eq!(report.recorded, 0, "the file was built again: {report:?}");
    let summary = cloud.store.list_groups().await.expect("list");
    let shop = summary
        .iter()
        .find(|g| g.name == "shop")
        .expect("destroy recorded the group");
    assert!(
        shop.destroyed(),
        "the resync marks a group due unless destroyed: {shop:?}"
    );
    assert_eq!(shop.desired_generation, Some(1));

    // A new version of the file is a new generation, which the tombstone does not cover.
    let mut file = std::fs::read_to_string("tests/fixtures/daemon/shop.json").expect("fixture config");
    file.push('\n');
    cloud.upload("train/shop/config.json", file).await;
    assert_eq!(rescanner().rescan().await.expect("rescan").recorded, 1);
    let state = cloud.store.group("shop").await.expect("read").expect("group");
    assert_eq!(state.desired.map(|d| d.generation), Some(2));
    let summary = cloud.store.list_groups().await.expect("list");
    assert!(summary.iter().any(|g| g.name == "shop" && !g.destroyed()));

    // A second destroy of the new version has resources to delete no more, and records it alike.
    let again = output(&["destroy", "--config", &config, "--yes"], &env).await;
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    let summary = cloud.store.list_groups().await.expect("list");
    assert!(
        summary
            .iter()
            .any(|g| g.name == "shop" && g.destroyed() && g.desired_generation == Some(2))
    );
    // What the first destroy said it would do, and did.
    assert!(
        said.contains("- record the parameter file s3://")
            && said.contains("marked destroyed in the state store"),
        "{said}"
    );
}
