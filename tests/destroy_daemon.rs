//! The daemon's removal path on moto: the `run` binary with the built-in Personalize. Removing a
//! group's parameter file keeps its resources by default (an SNS note says so) and, with
//! `daemon.delete_removed_groups`, tears the group down (nothing left in Personalize or the table);
//! a file uploaded again before the grace period ends cancels the teardown.

mod support;

use std::sync::Arc;
use std::time::Instant;

use aws_sdk_s3::types::Event;
use personalize_ops::emulator::Emulator;
use personalize_ops::store::StateStore;
use serde_json::Value;
use support::cloud::{Deployment, notify_train_json_events, receive_batch};
use support::moto::Moto;
use support::process::{Process, fast_settings};
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
    _work: tempfile::TempDir,
}

async fn service(removal: &[(&str, &str)]) -> Service {
    let moto = Moto::start();
    let cloud = Deployment::new(&moto, 3).await;
    notify_creations_and_removals(&cloud).await;
    let objects = Arc::new(personalize_ops::objects::S3Store::new(cloud.s3.clone()));
    let emu = personalize_ops::emulator::start(personalize_ops::emulator::EmulatorConfig::new(objects))
        .await
        .expect("emulator");
    let work = tempfile::tempdir().expect("tempdir");
    let settings = fast_settings(work.path());
    let mut env: Vec<(String, String)> = [
        ("AWS_ENDPOINT_URL", moto.endpoint()),
        ("AWS_ACCESS_KEY_ID", "test".into()),
        ("AWS_SECRET_ACCESS_KEY", "test".into()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ("AWS_ENDPOINT_URL_PERSONALIZE", emu.url()),
        ("PERSONALIZE_OPS_SETTINGS", settings.display().to_string()),
        ("PERSONALIZE_OPS__DAEMON__BUCKET", cloud.bucket.clone()),
        ("PERSONALIZE_OPS__DAEMON__QUEUE_URL", cloud.queue_url.clone()),
        ("PERSONALIZE_OPS__DAEMON__TABLE_NAME", cloud.table.clone()),
        ("PERSONALIZE_OPS__DAEMON__HEALTH_PORT", "0".into()),
        ("PERSONALIZE_OPS__DAEMON__RECEIVE_WAIT_SECS", "1".into()),
        ("PERSONALIZE_OPS__NOTIFY__SNS_TOPIC_ARN", cloud.topic.clone()),
        ("PERSONALIZE_OPS__AWS__S3_FORCE_PATH_STYLE", "true".into()),
        ("PERSONALIZE_OPS__LOG__FORMAT", "json".into()),
        ("PERSONALIZE_OPS__LOG__LEVEL", "info".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    env.extend(removal.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let daemon = Process::start(&["run"], &env);
    Service {
        moto,
        cloud,
        emu,
        daemon,
        _work: work,
    }
}

impl Service {
    async fn upload_shop(&self) {
        for csv in ["interactions.csv", "users.csv"] {
            let body = std::fs::read(format!("tests/fixtures/data/{csv}")).expect("fixture data");
            self.cloud.upload(&format!("train/shop/{csv}"), body).await;
        }
        let config = std::fs::read("tests/fixtures/daemon/shop.json").expect("fixture config");
        self.cloud.upload("train/shop/config.json", config).await;
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

    /// The next notification on the topic (its `sqs` body).
    async fn next_note(&self) -> Value {
        let started = Instant::now();
        loop {
            assert!(
                started.elapsed() < PATIENCE,
                "no notification:\n{}",
                self.daemon.log()
            );
            if let Some(body) = receive_batch(&self.cloud.sqs, &self.cloud.notes_url, 1)
                .await
                .into_iter()
                .next()
            {
                let envelope: Value = serde_json::from_str(&body).expect("SNS envelope");
                return serde_json::from_str(envelope["Message"].as_str().expect("message"))
                    .expect("sqs body");
            }
        }
    }

    async fn groups_in_personalize(&self) -> Vec<String> {
        let c = support::emulator::clients(&self.emu).control;
        let groups = c.list_dataset_groups().send().await.expect("list groups");
        let mut out: Vec<String> = groups
            .dataset_groups()
            .iter()
            .filter_map(|g| g.name().map(str::to_string))
            .collect();
        let schemas = c.list_schemas().send().await.expect("list schemas");
        out.extend(
            schemas
                .schemas()
                .iter()
                .filter_map(|s| s.name().map(|n| format!("schema {n}"))),
        );
        out
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
