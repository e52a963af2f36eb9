//! The deployment: the stack's dashboard against the code, the botocore checks of the stack and the
//! task definition, `setup` on moto and SQLite, `healthcheck`, and the stack deployed on moto's
//! CloudFormation with the daemon converging an upload on the resources it created.

mod support;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};
use aws_sdk_s3::types::{Event, NotificationConfiguration, QueueConfiguration};
use personalize_ops::store::{DynamoStore, StateStore};
use serde_json::Value;
use support::cloud::{notify_train_json, receive_batch, upload};
use support::moto::{Moto, unique_name};
use support::process::{Process, fast_settings};

/// Upper bound of every wait on moto and the daemon; generous for a loaded 2-core machine.
const PATIENCE: Duration = Duration::from_secs(120);

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_personalize-ops"))
}

/// deploy/stack.yaml as JSON (the template uses only the long form of the intrinsic functions, so
/// a plain YAML reader reads it).
fn stack_template() -> Value {
    let out = Command::new("python3")
        .args([
            "-c",
            "import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))",
        ])
        .arg(repo().join("deploy/stack.yaml"))
        .output()
        .expect("python3 with PyYAML (pip install \"moto[server]\" brings it)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("the template as JSON")
}

#[test]
fn the_stack_dashboard_is_the_code_dashboard() {
    let template = stack_template();
    let body = template["Resources"]["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
        .as_str()
        .expect("DashboardBody is one Fn::Sub string");
    // The namespace, region and bucket as CloudFormation substitutes them.
    let expected = personalize_ops::metrics::dashboard(
        "personalize_ops_${AWS::StackName}",
        "${AWS::Region}",
        "${DataBucket}",
    );
    let found: Option<Value> = serde_json::from_str(body).ok();
    assert!(
        found.as_ref() == Some(&expected),
        "deploy/stack.yaml's dashboard differs from src/metrics/dashboard.rs; set DashboardBody's Fn::Sub to this line:\n{expected}"
    );
    // The namespace the task definition gives the daemon is the dashboard's.
    let env =
        &template["Resources"]["TaskDefinition"]["Properties"]["ContainerDefinitions"][0]["Environment"];
    let namespace = env
        .as_array()
        .expect("environment")
        .iter()
        .find(|e| e["Name"] == "PERSONALIZE_OPS__METRICS__NAMESPACE")
        .expect("the namespace variable");
    assert_eq!(namespace["Value"]["Fn::Sub"], "personalize_ops_${AWS::StackName}");
}

#[test]
fn the_stack_and_the_task_definition_pass_the_botocore_checks() {
    let out = Command::new("python3")
        .arg(repo().join("tests/py/deploy_checks.py"))
        .arg(repo())
        .output()
        .expect("python3 with boto3 and PyYAML");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(" 0 failed"), "{stdout}");
    // The derivation found the calls of every client the daemon uses.
    for call in [
        "personalize:CreateSolutionVersion",
        "dynamodb:TransactWriteItems",
        "sqs:ReceiveMessage",
        "s3:GetObject",
        "sns:Publish",
        "events:PutEvents",
    ] {
        assert!(stdout.contains(call), "{call} not derived from src/:\n{stdout}");
    }
}

/// The environment that points the binary at moto.
fn moto_env(moto: &Moto) -> Vec<(String, String)> {
    [
        ("AWS_ENDPOINT_URL", moto.endpoint()),
        ("AWS_ACCESS_KEY_ID", "test".into()),
        ("AWS_SECRET_ACCESS_KEY", "test".into()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ("PERSONALIZE_OPS__AWS__S3_FORCE_PATH_STYLE", "true".into()),
        ("PERSONALIZE_OPS__AWS__MAX_ATTEMPTS", "2".into()),
        ("PERSONALIZE_OPS__LOG__FORMAT", "json".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

fn run_binary(args: &[&str], env: &[(String, String)]) -> Output {
    Command::new(binary())
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("PERSONALIZE_OPS_SETTINGS")
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .output()
        .expect("run the binary")
}

/// `setup --format json …`: (exit code, {resource: (state, details)}).
fn setup(args: &[&str], env: &[(String, String)]) -> (i32, HashMap<String, (String, String)>) {
    let mut all = vec!["setup", "--format", "json"];
    all.extend_from_slice(args);
    let out = run_binary(&all, env);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "setup {args:?} printed no report ({e}):\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let items = report["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| {
            let details: Vec<&str> = i["details"]
                .as_array()
                .expect("details")
                .iter()
                .filter_map(Value::as_str)
                .collect();
            (
                i["resource"].as_str().expect("resource").to_string(),
                (
                    i["state"].as_str().expect("state").to_string(),
                    details.join("; "),
                ),
            )
        })
        .collect();
    assert_eq!(
        report["ok"].as_bool(),
        Some(out.status.code() == Some(0)),
        "ok and the exit code disagree: {stdout}"
    );
    (out.status.code().unwrap_or(-1), items)
}

fn states(items: &HashMap<String, (String, String)>) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = items.iter().map(|(k, (s, _))| (k.clone(), s.clone())).collect();
    out.sort();
    out
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = list.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
    out.sort();
    out
}

/// A table with the given key schema and no index.
async fn bare_table(ddb: &aws_sdk_dynamodb::Client, name: &str, keys: &[(&str, KeyType)]) {
    let mut request = ddb
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest);
    for (attr, kind) in keys {
        request = request
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(*attr)
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .expect("attribute"),
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name(*attr)
                    .key_type(kind.clone())
                    .build()
                    .expect("key"),
            );
    }
    request.send().await.expect("create the table");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_creates_then_changes_nothing_and_reports_what_differs_on_moto() {
    let moto = Moto::start();
    let config = moto.sdk_config().await;
    let s3 = moto.s3_client().await;
    let ddb = aws_sdk_dynamodb::Client::new(&config);
    let sqs = aws_sdk_sqs::Client::new(&config);
    let env = moto_env(&moto);
    let bucket = moto.bucket(&s3, "data").await;
    let table = unique_name("state");
    let queue = unique_name("intake");

    // Nothing exists: --check reports it and changes nothing.
    let (code, items) = setup(
        &[
            "--table", &table, "--queue", &queue, "--bucket", &bucket, "--check",
        ],
        &env,
    );
    assert_eq!(code, 1);
    assert_eq!(
        states(&items),
        pairs(&[
            ("table", "missing"),
            ("dead-letter queue", "missing"),
            ("queue", "missing")
        ])
    );
    assert!(
        !DynamoStore::check_table(&ddb, &table)
            .await
            .expect("check")
            .exists
    );

    // The bucket already sends other events elsewhere: setup must keep that notification.
    let (other_url, other_arn) = support::cloud::queue(&sqs, "other").await;
    s3.put_bucket_notification_configuration()
        .bucket(&bucket)
        .notification_configuration(
            NotificationConfiguration::builder()
                .queue_configurations(
                    QueueConfiguration::builder()
                        .id("theirs")
                        .queue_arn(&other_arn)
                        .events(Event::S3ObjectRemovedDelete)
                        .build()
                        .expect("queue configuration"),
                )
                .build(),
        )
        .send()
        .await
        .expect("their notification");

    // Create everything.
    let (code, items) = setup(&["--table", &table, "--queue", &queue, "--bucket", &bucket], &env);
    assert_eq!(code, 0, "{items:?}");
    assert_eq!(
        states(&items),
        pairs(&[
            ("table", "created"),
            ("dead-letter queue", "created"),
            ("queue", "created"),
            ("bucket notification", "created"),
        ])
    );
    let check = DynamoStore::check_table(&ddb, &table).await.expect("check");
    assert!(check.usable() && check.warnings.is_empty(), "{check:?}");
    let queue_url = sqs
        .get_queue_url()
        .queue_name(&queue)
        .send()
        .await
        .expect("queue url")
        .queue_url
        .expect("url");
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
        .send()
        .await
        .expect("attributes")
        .attributes
        .unwrap_or_default();
    let redrive = &attributes[&aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy];
    assert!(redrive.contains(&format!("{queue}-dlq")), "{redrive}");
    let policy = &attributes[&aws_sdk_sqs::types::QueueAttributeName::Policy];
    assert!(policy.contains(&format!("arn:aws:s3:::{bucket}")), "{policy}");

    // The notification works: an upload under train/ reaches the queue, one elsewhere does not.
    upload(&s3, &bucket, "elsewhere/config.json", b"{}".to_vec()).await;
    upload(&s3, &bucket, "train/g/config.json", b"{}".to_vec()).await;
    // (S3 also sends one s3:TestEvent when a notification is set.)
    let bodies: Vec<String> = receive_batch(&sqs, &queue_url, 1)
        .await
        .into_iter()
        .filter(|b| !b.contains("s3:TestEvent"))
        .collect();
    assert_eq!(bodies.len(), 1, "{bodies:?}");
    assert!(bodies[0].contains("train%2Fg%2Fconfig.json"), "{bodies:?}");

    let kept = s3
        .get_bucket_notification_configuration()
        .bucket(&bucket)
        .send()
        .await
        .expect("notifications");
    let ids: Vec<&str> = kept
        .queue_configurations()
        .iter()
        .filter_map(|c| c.id())
        .collect();
    assert!(ids.contains(&"theirs") && ids.len() == 2, "{ids:?}");
    s3.delete_object()
        .bucket(&bucket)
        .key("elsewhere/config.json")
        .send()
        .await
        .expect("delete");
    let theirs = receive_batch(&sqs, &other_url, 1).await;
    assert!(
        theirs.iter().any(|b| b.contains("ObjectRemoved:Delete")),
        "{theirs:?}"
    );

    // A second run and a check change nothing.
    for extra in [None, Some("--check")] {
        let mut args = vec![
            "--table",
            table.as_str(),
            "--queue",
            queue.as_str(),
            "--bucket",
            bucket.as_str(),
        ];
        args.extend(extra);
        let (code, items) = setup(&args, &env);
        assert_eq!(code, 0, "{items:?}");
        assert_eq!(
            states(&items),
            pairs(&[
                ("table", "exists"),
                ("dead-letter queue", "exists"),
                ("queue", "exists"),
                ("bucket notification", "exists"),
            ])
        );
    }

    // A daemon configured for another redrive count is told so; the queue is left alone.
    let mut three = env.clone();
    three.push(("PERSONALIZE_OPS__DAEMON__MAX_RECEIVE_COUNT".into(), "3".into()));
    let (code, items) = setup(&["--table", &table, "--queue", &queue], &three);
    assert_eq!(code, 1);
    assert_eq!(items["queue"].0, "differs");
    assert!(
        items["queue"].1.contains("daemon.max_receive_count is 3"),
        "{items:?}"
    );

    // A table without the due index or with other keys is reported, never replaced; `run` refuses
    // it with exit 2 naming what is missing.
    let wrong = unique_name("wrong");
    bare_table(&ddb, &wrong, &[("id", KeyType::Hash)]).await;
    let (code, items) = setup(&["--table", &wrong], &env);
    assert_eq!(code, 1);
    let (state, details) = &items["table"];
    assert_eq!(state, "differs");
    assert!(details.contains("key schema is id (S, HASH)"), "{details}");
    assert!(
        details.contains("no global secondary index due-index"),
        "{details}"
    );
    let mut run_env = env.clone();
    run_env.extend([
        ("PERSONALIZE_OPS__DAEMON__BUCKET".to_string(), bucket.clone()),
        (
            "PERSONALIZE_OPS__DAEMON__QUEUE_URL".to_string(),
            queue_url.clone(),
        ),
        ("PERSONALIZE_OPS__DAEMON__TABLE_NAME".to_string(), wrong.clone()),
        (
            "PERSONALIZE_OPS__DAEMON__HEALTH_PORT".to_string(),
            "0".to_string(),
        ),
    ]);
    let out = run_binary(&["run"], &run_env);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&wrong) && stderr.contains("due-index"),
        "{stderr}"
    );
    run_env.retain(|(k, _)| k != "PERSONALIZE_OPS__DAEMON__TABLE_NAME");
    run_env.push((
        "PERSONALIZE_OPS__DAEMON__TABLE_NAME".into(),
        unique_name("absent"),
    ));
    let out = run_binary(&["run"], &run_env);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("does not exist"), "{stderr}");

    // A table with the right keys and index but TTL off: --check reports it, setup turns TTL on.
    let no_ttl = unique_name("nottl");
    DynamoStore::create_table(&ddb, &no_ttl).await.expect("table");
    ddb.update_time_to_live()
        .table_name(&no_ttl)
        .time_to_live_specification(
            aws_sdk_dynamodb::types::TimeToLiveSpecification::builder()
                .enabled(false)
                .attribute_name("ttl")
                .build()
                .expect("spec"),
        )
        .send()
        .await
        .expect("TTL off");
    let (code, items) = setup(&["--table", &no_ttl, "--check"], &env);
    assert_eq!(code, 1);
    assert_eq!(items["table"].0, "differs");
    assert!(items["table"].1.contains("TTL is not enabled"), "{items:?}");
    let (code, items) = setup(&["--table", &no_ttl], &env);
    assert_eq!((code, items["table"].0.as_str()), (0, "updated"), "{items:?}");
    let (code, items) = setup(&["--table", &no_ttl], &env);
    assert_eq!((code, items["table"].0.as_str()), (0, "exists"), "{items:?}");

    // A bucket that does not exist is not created.
    let (code, items) = setup(
        &["--table", &table, "--queue", &queue, "--bucket", "no-such-bucket"],
        &env,
    );
    assert_eq!(code, 1);
    assert_eq!(items["bucket notification"].0, "missing");
}

#[test]
fn setup_creates_and_checks_the_sqlite_state_of_local_mode() {
    let dir = tempfile::tempdir().expect("tempdir");
    let local = dir.path().join("local");
    let local = local.to_str().expect("UTF-8");
    let env: Vec<(String, String)> = Vec::new();
    let (code, items) = setup(&["--local", local, "--check"], &env);
    assert_eq!((code, items["sqlite"].0.as_str()), (1, "missing"));
    assert!(!dir.path().join("local/state.sqlite").exists());
    let (code, items) = setup(&["--local", local], &env);
    assert_eq!((code, items["sqlite"].0.as_str()), (0, "created"));
    let (code, items) = setup(&["--local", local], &env);
    assert_eq!((code, items["sqlite"].0.as_str()), (0, "exists"));
    let (code, items) = setup(&["--local", local, "--check"], &env);
    assert_eq!((code, items["sqlite"].0.as_str()), (0, "exists"));

    // A file that is no SQLite database, and a database whose tables are not the service's.
    let junk = dir.path().join("junk");
    std::fs::create_dir_all(&junk).expect("dir");
    std::fs::write(
        junk.join("state.sqlite"),
        b"not a database, but long enough to have a header....",
    )
    .expect("write");
    let (code, items) = setup(&["--local", junk.to_str().expect("UTF-8")], &env);
    assert_eq!((code, items["sqlite"].0.as_str()), (1, "differs"), "{items:?}");
    let other = dir.path().join("other");
    std::fs::create_dir_all(&other).expect("dir");
    let conn = rusqlite_free_schema(&other.join("state.sqlite"));
    assert!(conn, "could not prepare the foreign database");
    let (code, items) = setup(&["--local", other.to_str().expect("UTF-8")], &env);
    assert_eq!((code, items["sqlite"].0.as_str()), (1, "differs"), "{items:?}");
}

/// Writes an SQLite database whose `groups` table has other columns, with python3's sqlite3.
fn rusqlite_free_schema(path: &Path) -> bool {
    Command::new("python3")
        .args([
            "-c",
            "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute('CREATE TABLE groups (id INTEGER)'); c.commit()",
        ])
        .arg(path)
        .status()
        .is_ok_and(|s| s.success())
}

/// A one-shot HTTP server on a free port answering `response` to the first request (or nothing).
fn one_answer(response: Option<&'static str>) -> (u16, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    let handle = std::thread::spawn(move || {
        if let Ok((mut stream, _)) = listener.accept() {
            let mut buf = [0u8; 1024];
            let _ = stream.read(&mut buf);
            match response {
                Some(r) => {
                    let _ = stream.write_all(r.as_bytes());
                }
                // Hold the connection open without answering, past the healthcheck's deadline.
                None => std::thread::sleep(Duration::from_secs(4)),
            }
        }
    });
    (port, handle)
}

#[test]
fn healthcheck_exits_0_only_for_a_200_answer() {
    let env: Vec<(String, String)> = Vec::new();
    let cases = [
        (Some("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"), 0),
        (
            Some("HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n"),
            1,
        ),
        (Some("garbage\r\n\r\n"), 1),
        (None, 1),
    ];
    for (response, expected) in cases {
        let (port, server) = one_answer(response);
        let url = format!("http://127.0.0.1:{port}/healthz");
        let out = run_binary(&["healthcheck", "--url", &url], &env);
        assert_eq!(
            out.status.code(),
            Some(expected),
            "{response:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        server.join().expect("server thread");
    }
    // Nobody listening, and a URL it cannot use.
    let free = TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    for url in [
        format!("http://127.0.0.1:{free}/healthz"),
        "https://127.0.0.1/healthz".into(),
    ] {
        let out = run_binary(&["healthcheck", "--url", &url], &env);
        assert_eq!(out.status.code(), Some(1), "{url}");
        assert!(!out.stderr.is_empty());
    }
}

/// What moto 5.2 does not apply from the template, each added by hand below or not needed on moto:
/// it skips these resource types entirely…
const MOTO_SKIPS: [&str; 5] = [
    // AWS::S3::BucketPolicy and AWS::SQS::QueuePolicy: moto enforces no policy anyway.
    "DataBucketPolicy",
    "IntakeQueuePolicy",
    // AWS::CloudWatch::Alarm: the daemon does not read alarms.
    "DeadLetterAlarm",
    "UpdateFailedAlarm",
    "NoHealthyTaskAlarm",
];
// …and creates the bucket without its NotificationConfiguration and the table without its
// TimeToLiveSpecification: the test adds the notification and `setup` turns TTL on.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stack_deploys_on_moto_and_the_daemon_converges_an_upload_on_its_resources() {
    let moto = Moto::start();
    let stack_name = unique_name("ops");
    let out = Command::new("python3")
        .arg(repo().join("tests/py/deploy_stack.py"))
        .arg(moto.endpoint())
        .arg(repo().join("deploy/stack.yaml"))
        .arg(&stack_name)
        .output()
        .expect("python3 with boto3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let deployed: Value = serde_json::from_str(&stdout).expect("deploy_stack.py output");
    assert_eq!(deployed["status"], "CREATE_COMPLETE", "{deployed}");

    // Every resource of the template is in the stack, except the types moto skips and the
    // conditional e-mail subscription and KMS role (no Email, no PersonalizeKmsKeyArn given).
    let template = stack_template();
    let mut missing: Vec<&str> = template["Resources"]
        .as_object()
        .expect("resources")
        .keys()
        .filter(|k| deployed["resources"].get(k.as_str()).is_none())
        .map(String::as_str)
        .collect();
    missing.sort_unstable();
    let mut expected: Vec<&str> = MOTO_SKIPS
        .iter()
        .copied()
        .chain(["EmailSubscription", "PersonalizeKmsRole"])
        .collect();
    expected.sort_unstable();
    assert_eq!(
        missing, expected,
        "moto's coverage of the template changed: update MOTO_SKIPS and the README"
    );

    let output = |key: &str| {
        deployed["outputs"][key]
            .as_str()
            .unwrap_or_else(|| panic!("output {key} in {deployed}"))
            .to_string()
    };
    let (bucket, queue_url, table, topic) = (
        output("BucketName"),
        output("QueueUrl"),
        output("TableName"),
        output("TopicArn"),
    );
    let config = moto.sdk_config().await;
    let s3 = moto.s3_client().await;
    let sqs = aws_sdk_sqs::Client::new(&config);
    let sns = aws_sdk_sns::Client::new(&config);
    let ddb = aws_sdk_dynamodb::Client::new(&config);

    // The table has the service's keys and due index from the template; its TTL is the gap.
    let env = moto_env(&moto);
    let check = DynamoStore::check_table(&ddb, &table).await.expect("check");
    assert!(check.usable(), "{check:?}");
    let (code, items) = setup(&["--table", &table], &env);
    assert_eq!(code, 0, "{items:?}");
    assert!(
        ["updated", "exists"].contains(&items["table"].0.as_str()),
        "{items:?}"
    );

    // The bucket notification, by hand (moto leaves it out).
    let queue_arn = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("queue attributes")
        .attributes
        .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn).cloned())
        .expect("queue arn");
    notify_train_json(&s3, &bucket, &queue_arn).await;
    // A queue subscribed to the stack's topic, to read the notifications.
    let (notes_url, notes_arn) = support::cloud::queue(&sqs, "notes").await;
    sns.subscribe()
        .topic_arn(&topic)
        .protocol("sqs")
        .endpoint(&notes_arn)
        .send()
        .await
        .expect("subscribe");

    // The daemon with the environment of the stack's task definition, pointed at moto and at the
    // built-in Personalize (reading the import data from the stack's bucket).
    let objects = Arc::new(personalize_ops::objects::S3Store::new(s3.clone()));
    let emu = personalize_ops::emulator::start(personalize_ops::emulator::EmulatorConfig::new(objects))
        .await
        .expect("emulator");
    let work = tempfile::tempdir().expect("tempdir");
    let settings = fast_settings(work.path());
    let mut daemon_env = env.clone();
    for (name, value) in deployed["environment"].as_object().expect("environment") {
        daemon_env.push((name.clone(), value.as_str().expect("string").to_string()));
    }
    assert!(
        daemon_env
            .iter()
            .any(|(k, v)| k == "PERSONALIZE_OPS__DAEMON__TABLE_NAME" && *v == table),
        "{daemon_env:?}"
    );
    daemon_env.extend([
        ("AWS_ENDPOINT_URL_PERSONALIZE".to_string(), emu.url()),
        (
            "PERSONALIZE_OPS_SETTINGS".to_string(),
            settings.to_str().expect("UTF-8").to_string(),
        ),
        (
            "PERSONALIZE_OPS__DAEMON__HEALTH_PORT".to_string(),
            "0".to_string(),
        ),
        (
            "PERSONALIZE_OPS__DAEMON__RECEIVE_WAIT_SECS".to_string(),
            "1".to_string(),
        ),
        (
            "PERSONALIZE_OPS__METRICS__FLUSH_INTERVAL_SECS".to_string(),
            "1".to_string(),
        ),
    ]);
    let mut daemon = Process::start(&["run"], &daemon_env);

    for csv in ["interactions.csv", "users.csv"] {
        let body = std::fs::read(repo().join(format!("tests/fixtures/data/{csv}"))).expect("fixture data");
        upload(&s3, &bucket, &format!("train/shop/{csv}"), body).await;
    }
    let file = std::fs::read(repo().join("tests/fixtures/daemon/shop.json")).expect("fixture config");
    upload(&s3, &bucket, "train/shop/config.json", file).await;

    let started = Instant::now();
    let mut announced: Vec<Value> = Vec::new();
    while announced.is_empty() {
        assert!(started.elapsed() < PATIENCE, "no notification:\n{}", daemon.log());
        announced = receive_batch(&sqs, &notes_url, 1)
            .await
            .iter()
            .map(|body| {
                let envelope: Value = serde_json::from_str(body).expect("SNS envelope");
                serde_json::from_str(envelope["Message"].as_str().expect("message")).expect("sqs body")
            })
            .collect();
    }
    assert_eq!(
        announced[0]["status"],
        "UPDATE COMPLETE",
        "{announced:?}\n{}",
        daemon.log()
    );
    assert_eq!(announced[0]["datasetGroup"], "shop");
    let store = DynamoStore::new(ddb.clone(), table.clone());
    let observed = store
        .group("shop")
        .await
        .expect("read")
        .and_then(|g| g.observed)
        .expect("observed");
    assert!(observed.converged, "{observed:?}");

    // The container's health check command, against the running daemon.
    let port = daemon
        .health_port()
        .expect("the health endpoint's port in the log");
    let out = run_binary(
        &[
            "healthcheck",
            "--url",
            &format!("http://127.0.0.1:{port}/healthz"),
        ],
        &[],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    daemon.signal("TERM");
    let code = daemon.wait(Duration::from_secs(30)).and_then(|s| s.code());
    assert_eq!(code, Some(0), "{}", daemon.log());
    // The counters went to the namespace the stack's dashboard and alarm read.
    let cloudwatch = aws_sdk_cloudwatch::Client::new(&config);
    let namespace = output("MetricsNamespace");
    let listed = cloudwatch
        .list_metrics()
        .namespace(&namespace)
        .send()
        .await
        .expect("list metrics");
    let names: Vec<&str> = listed.metrics().iter().filter_map(|m| m.metric_name()).collect();
    assert!(names.contains(&"JobSuccess"), "{names:?}");
    emu.shutdown().await.expect("emulator stops");
}
