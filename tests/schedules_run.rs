//! The `run` binary on moto (S3, SQS, DynamoDB, SNS) with the built-in Personalize: an import
//! schedule's fire imports the data uploaded since the last import, once, and says so on SNS.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::cloud::{Deployment, notes};
use support::moto::Moto;
use support::process::{Process, fast_settings};

/// The first fire of a `rate(1 minute)` schedule is a minute after it was recorded; this bounds the
/// wait for two of them on a loaded machine (a hang guard, not a verdict).
const FIRES_PATIENCE: Duration = Duration::from_secs(240);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_fire_of_the_run_binary_imports_the_new_data_once() {
    let moto = Moto::start();
    let c = Deployment::new(&moto, 3).await;
    let objects = Arc::new(personalize_ops::objects::S3Store::new(c.s3.clone()));
    let emu = personalize_ops::emulator::start(personalize_ops::emulator::EmulatorConfig::new(objects))
        .await
        .expect("emulator");
    let work = tempfile::tempdir().expect("tempdir");
    let settings = fast_settings(work.path());
    let env: Vec<(String, String)> = [
        ("AWS_ENDPOINT_URL", moto.endpoint()),
        ("AWS_ENDPOINT_URL_PERSONALIZE", emu.url()),
        ("AWS_ACCESS_KEY_ID", "test".into()),
        ("AWS_SECRET_ACCESS_KEY", "test".into()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
        (
            "PERSONALIZE_OPS_SETTINGS",
            settings.to_str().expect("UTF-8").into(),
        ),
        ("PERSONALIZE_OPS__DAEMON__BUCKET", c.bucket.clone()),
        ("PERSONALIZE_OPS__DAEMON__QUEUE_URL", c.queue_url.clone()),
        ("PERSONALIZE_OPS__DAEMON__TABLE_NAME", c.table.clone()),
        ("PERSONALIZE_OPS__DAEMON__HEALTH_PORT", "0".into()),
        ("PERSONALIZE_OPS__DAEMON__RECEIVE_WAIT_SECS", "1".into()),
        ("PERSONALIZE_OPS__NOTIFY__SNS_TOPIC_ARN", c.topic.clone()),
        ("PERSONALIZE_OPS__AWS__S3_FORCE_PATH_STYLE", "true".into()),
        ("PERSONALIZE_OPS__SCHEDULER__RELOAD_MS", "500".into()),
        ("PERSONALIZE_OPS__LOG__FORMAT", "json".into()),
        ("PERSONALIZE_OPS__LOG__LEVEL", "info".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let mut daemon = Process::start(&["run"], &env);

    let interactions = std::fs::read("tests/fixtures/data/interactions.csv").expect("fixture data");
    c.upload("train/shop/interactions.csv", interactions.clone())
        .await;
    c.upload(
        "train/shop/users.csv",
        std::fs::read("tests/fixtures/data/users.csv").expect("fixture data"),
    )
    .await;
    let mut config: Value = serde_json::from_str(
        &std::fs::read_to_string("tests/fixtures/daemon/shop.json").expect("fixture config"),
    )
    .expect("JSON");
    config["datasetGroup"]["workflowConfig"] = serde_json::json!({"schedules": {"import": "rate(1 minute)"}});
    c.upload("train/shop/config.json", config.to_string()).await;

    let started = Instant::now();
    let mut seen: Vec<Value> = Vec::new();
    while !seen.iter().any(|n| n["status"] == "UPDATE COMPLETE") {
        assert!(
            started.elapsed() < FIRES_PATIENCE,
            "not converged: {seen:?}\n{}",
            daemon.log()
        );
        seen.extend(notes(&c.sqs, &c.notes_url, 1).await);
    }
    // New interactions after the run's import (S3 keeps whole seconds: a second later is newer).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let mut more = interactions.clone();
    more.extend_from_slice(b"i-new,u-new,1700000000,purchase,1.0\n");
    c.upload("train/shop/interactions.csv", more).await;

    // The import schedule's fires: skipped while nothing is new (possibly the first one, on a slow
    // machine), then one that imports the new upload.
    let import = |n: &Value| n["schedule"] == "personalize-dataset-import-shop";
    while !seen
        .iter()
        .any(|n| import(n) && n["status"] == "SCHEDULED RUN COMPLETE")
    {
        assert!(
            started.elapsed() < FIRES_PATIENCE,
            "no import fire: {seen:?}\n{}",
            daemon.log()
        );
        seen.extend(notes(&c.sqs, &c.notes_url, 1).await);
    }
    let fired: Vec<&Value> = seen.iter().filter(|n| import(n)).collect();
    let done = fired.last().expect("the import fire");
    assert!(
        fired[..fired.len() - 1]
            .iter()
            .all(|n| n["status"] == "SCHEDULED RUN SKIPPED"),
        "{fired:?}"
    );
    let detail = done["detail"].as_str().expect("detail");
    assert!(
        detail.starts_with("imported: dataset_import_interactions_"),
        "{detail}"
    );
    // The users did not change: only the interactions were imported again.
    assert!(!detail.contains("dataset_import_users_"), "{detail}");

    // Personalize has the fire's import, named from the fire instant, and it succeeded.
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(emu.url())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_credential_types::Credentials::new("t", "t", None, None, "t"))
        .load()
        .await;
    let personalize = aws_sdk_personalize::Client::new(&config);
    let jobs = personalize
        .list_dataset_import_jobs()
        .send()
        .await
        .expect("imports");
    let names: Vec<&str> = jobs
        .dataset_import_jobs()
        .iter()
        .filter_map(|j| j.job_name())
        .collect();
    let fire_job = detail.trim_start_matches("imported: ");
    assert!(names.contains(&fire_job), "{names:?}");
    assert_eq!(
        names
            .iter()
            .filter(|n| n.starts_with("dataset_import_interactions_"))
            .count(),
        2,
        "the run's import and the fire's: {names:?}"
    );
    let job = jobs
        .dataset_import_jobs()
        .iter()
        .find(|j| j.job_name() == Some(fire_job))
        .expect("listed");
    assert_eq!(job.status(), Some("ACTIVE"), "{job:?}");

    daemon.signal("TERM");
    let code = daemon.wait(Duration::from_secs(25)).and_then(|s| s.code());
    assert_eq!(code, Some(0), "{}", daemon.log());
    emu.shutdown().await.expect("emulator stops");
}
