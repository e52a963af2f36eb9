//! The daemon's AWS adapters against moto: SNS → SQS, EventBridge → SQS, CloudWatch, and the intake
//! end to end (bucket notification → queue → desired generation, errors on SNS, dead-lettering).

mod support;

use std::net::TcpListener as StdListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_sqs::types::QueueAttributeName;
use personalize_ops::intake::ConfigSource;
use personalize_ops::intake::sqs::{SqsIntake, SqsOptions};
use personalize_ops::intake::{ConfigRead, ConfigReader, Intake, MessageOutcome, Rescanner, spec_validator};
use personalize_ops::metrics::{CloudWatchSink, Counter, MemorySink, MetricsSink, solution_metrics};
use personalize_ops::notify::message::config_error_message;
use personalize_ops::notify::{
    EVENT_SOURCE, EventBridgeNotifier, Notifications, Notifier, ResourceChange, SnsNotifier,
};
use personalize_ops::objects::{ObjectError, ObjectMeta, ObjectStore, ObjectUrl, S3Store};
use personalize_ops::store::{DynamoStore, ResourceKind, StateStore, StoreError};
use serde_json::Value;
use support::cloud::{Deployment, queue, receive_batch, subscribed_queue, visible_and_in_flight};
use support::html_errors::HtmlErrors;
use support::moto::{Moto, unique_name};
use support::wait::eventually;
use tokio_util::sync::CancellationToken;

/// Upper bound of every wait on moto; generous for a loaded 2-core machine.
const PATIENCE: Duration = Duration::from_secs(60);

/// Receives (and deletes) messages until `count` arrived or patience runs out.
async fn receive(sqs: &aws_sdk_sqs::Client, url: &str, count: usize) -> Vec<String> {
    let started = Instant::now();
    let mut bodies = Vec::new();
    while bodies.len() < count && started.elapsed() < PATIENCE {
        bodies.extend(receive_batch(sqs, url, 1).await);
    }
    bodies
}

/// Short waits and a 1 s visibility timeout, so redeliveries happen within a test.
fn fast_options() -> SqsOptions {
    SqsOptions {
        wait: Duration::from_secs(1),
        batch_size: 10,
        visibility_timeout: Duration::from_secs(1),
        backoff_max: Duration::from_secs(1),
        max_receive_count: 10,
        concurrency: 10,
        message_deadline: Duration::from_secs(60),
    }
}

/// Sends a raw message body to a queue, as S3 (or anyone with access to the queue) could.
async fn send_to(sqs: &aws_sdk_sqs::Client, queue_url: &str, body: &str) {
    sqs.send_message()
        .queue_url(queue_url)
        .message_body(body)
        .send()
        .await
        .expect("send");
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).expect("JSON")
}

#[tokio::test]
async fn sns_messages_reach_a_subscribed_queue_with_the_sqs_body_and_attributes() {
    let moto = Moto::start();
    let config = moto.sdk_config().await;
    let (sns, sqs) = (
        aws_sdk_sns::Client::new(&config),
        aws_sdk_sqs::Client::new(&config),
    );
    let (topic, url) = subscribed_queue(&sns, &sqs, "topic", "notes").await;

    let message = config_error_message(
        Some("dsg1"),
        "s3://data/train/dsg1/config.json",
        &["solutions[0].serviceConfig.name: required".into()],
    );
    SnsNotifier::new(sns.clone(), &topic)
        .publish(&message)
        .await
        .expect("publish");

    let bodies = receive(&sqs, &url, 1).await;
    assert_eq!(bodies.len(), 1);
    let envelope = json(&bodies[0]);
    assert_eq!(envelope["Subject"], message.subject);
    assert_eq!(envelope["MessageAttributes"]["status"]["Value"], "UPDATE FAILED");
    assert_eq!(envelope["MessageAttributes"]["datasetGroup"]["Value"], "dsg1");
    let per_protocol = json(&message.body);
    assert_eq!(
        envelope["Message"], per_protocol["sqs"],
        "the queue gets the sqs body"
    );
    let sqs_body = json(envelope["Message"].as_str().expect("string"));
    assert_eq!(sqs_body["status"], "UPDATE FAILED");
    assert_eq!(
        sqs_body["description"][0],
        "solutions[0].serviceConfig.name: required"
    );

    // A file with thousands of errors still publishes (moto enforces SNS's 256 KiB limit too): the
    // list is cut to what fits and says how many more there were.
    let errors: Vec<String> = (0..20_000)
        .map(|i| format!("solutions[{i}].serviceConfig.recipeArn: \"x\" is not a recipe ARN"))
        .collect();
    let huge = config_error_message(Some("dsg1"), "s3://data/train/dsg1/config.json", &errors);
    SnsNotifier::new(sns.clone(), &topic)
        .publish(&huge)
        .await
        .expect("a capped message is never too big to publish");
    let bodies = receive(&sqs, &url, 1).await;
    let sqs_body = json(json(&bodies[0])["Message"].as_str().expect("string"));
    let listed = sqs_body["description"].as_array().expect("errors");
    let last = listed.last().and_then(Value::as_str).expect("last line");
    assert!(last.starts_with("… and ") && last.ends_with(" more"), "{last}");
    assert!(listed.len() > 100, "{} errors listed", listed.len());

    // A missing topic is an error for the caller, and only a log line through the fan-out.
    let missing = SnsNotifier::new(sns, "arn:aws:sns:us-east-1:123456789012:missing");
    let err = missing.publish(&message).await.expect_err("no topic");
    assert!(err.to_string().contains("missing"), "{err}");
    Notifications::new(vec![Arc::new(missing)])
        .publish(&message)
        .await;
}

#[tokio::test]
async fn eventbridge_events_reach_a_queue_target() {
    let moto = Moto::start();
    let config = moto.sdk_config().await;
    let (events, sqs) = (
        aws_sdk_eventbridge::Client::new(&config),
        aws_sdk_sqs::Client::new(&config),
    );
    let bus = unique_name("bus");
    events.create_event_bus().name(&bus).send().await.expect("bus");
    let rule = unique_name("rule");
    events
        .put_rule()
        .name(&rule)
        .event_bus_name(&bus)
        .event_pattern(serde_json::json!({"source": [EVENT_SOURCE]}).to_string())
        .send()
        .await
        .expect("rule");
    let (url, arn) = queue(&sqs, "events").await;
    events
        .put_targets()
        .rule(&rule)
        .event_bus_name(&bus)
        .targets(
            aws_sdk_eventbridge::types::Target::builder()
                .id("queue")
                .arn(&arn)
                .build()
                .expect("target"),
        )
        .send()
        .await
        .expect("targets");

    let notifier = EventBridgeNotifier::new(events.clone(), &bus);
    let failed = ResourceChange {
        kind: ResourceKind::SolutionVersion,
        arn: "arn:aws:personalize:us-east-1:123456789012:solution/s/1a2b".into(),
        status: "CREATE FAILED".into(),
        duration_secs: Some(600),
        reason: Some("Not enough interactions".into()),
        dataset_group: Some("dsg1".into()),
    };
    notifier.resource_changed(&failed).await.expect("put events");

    let bodies = receive(&sqs, &url, 1).await;
    assert_eq!(bodies.len(), 1);
    let event = json(&bodies[0]);
    assert_eq!(event["source"], EVENT_SOURCE);
    assert_eq!(event["detail-type"], "Personalize Solution Version State Change");
    assert_eq!(event["resources"][0], failed.arn);
    assert_eq!(
        event["detail"],
        serde_json::json!({"Arn": failed.arn, "Status": "CREATE FAILED", "Duration": 600, "Reason": "Not enough interactions"})
    );

    let missing = EventBridgeNotifier::new(events, "no-such-bus");
    let err = missing.resource_changed(&failed).await.expect_err("no bus");
    assert!(err.to_string().contains("no-such-bus"), "{err}");
}

#[tokio::test]
async fn cloudwatch_receives_batched_counters_and_solution_metrics() {
    let moto = Moto::start();
    let client = aws_sdk_cloudwatch::Client::new(&moto.sdk_config().await);
    let namespace = unique_name("personalize_ops");
    // Flushed only by the shutdown: the interval is far away.
    let (sink, flusher) = CloudWatchSink::spawn(client.clone(), &namespace, 1000, Duration::from_secs(3600));
    for _ in 0..3 {
        sink.count(Counter::ConfigurationsProcessed);
    }
    sink.count(Counter::ConfigurationsProcessedFailures);
    for kind in ResourceKind::ALL {
        sink.count(Counter::Created(kind));
    }
    // 25 distinct metrics: more than one PutMetricData call.
    let metrics: Vec<(String, f64)> = (0..25).map(|i| (format!("precision_at_{i}"), 0.5)).collect();
    let version = "arn:aws:personalize:us-east-1:123456789012:solution/sol-a/v1";
    for datum in solution_metrics("dsg1", "sol-a", version, &metrics) {
        sink.record(datum);
    }
    flusher.shutdown(Duration::from_secs(30)).await;
    assert_eq!(sink.dropped(), 0);

    let mut names = Vec::new();
    let mut token = None;
    loop {
        let page = client
            .list_metrics()
            .namespace(&namespace)
            .set_next_token(token)
            .send()
            .await
            .expect("list metrics");
        names.extend(
            page.metrics()
                .iter()
                .filter_map(|m| m.metric_name().map(str::to_string)),
        );
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    for expected in [
        "ConfigurationsProcessed",
        "ConfigurationsProcessedFailures",
        "DatasetImportJobCreated",
        "SchemaCreated",
        "precision_at_0",
        "precision_at_24",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} missing from {names:?}"
        );
    }

    let now = aws_sdk_cloudwatch::primitives::DateTime::from_secs(chrono::Utc::now().timestamp());
    let hour_ago = aws_sdk_cloudwatch::primitives::DateTime::from_secs(chrono::Utc::now().timestamp() - 3600);
    let stats = client
        .get_metric_statistics()
        .namespace(&namespace)
        .metric_name("ConfigurationsProcessed")
        .dimensions(
            aws_sdk_cloudwatch::types::Dimension::builder()
                .name("service")
                .value("Workflow")
                .build(),
        )
        .start_time(hour_ago)
        .end_time(aws_sdk_cloudwatch::primitives::DateTime::from_secs(
            now.secs() + 60,
        ))
        .period(3600)
        .statistics(aws_sdk_cloudwatch::types::Statistic::Sum)
        .send()
        .await
        .expect("statistics");
    let sum: f64 = stats.datapoints().iter().filter_map(|d| d.sum()).sum();
    assert_eq!(sum, 3.0);

    let dims = client
        .list_metrics()
        .namespace(&namespace)
        .metric_name("precision_at_3")
        .send()
        .await
        .expect("list");
    let dimension_names: Vec<&str> = dims.metrics()[0]
        .dimensions()
        .iter()
        .filter_map(|d| d.name())
        .collect();
    assert_eq!(dimension_names, ["DatasetGroup", "Solution", "SolutionVersion"]);
}

#[tokio::test]
async fn a_hanging_cloudwatch_never_blocks_recording() {
    // Accepts connections and never answers.
    let listener = StdListener::bind("127.0.0.1:0").expect("bind");
    let endpoint = format!("http://{}", listener.local_addr().expect("address"));
    let config = aws_sdk_cloudwatch::Config::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_credential_types::Credentials::new(
            "t", "t", None, None, "test",
        ))
        .build();
    let client = aws_sdk_cloudwatch::Client::from_conf(config);
    let (sink, flusher) = CloudWatchSink::spawn(client, "ns", 10, Duration::from_millis(10));
    // record() is synchronous: it cannot wait for the network. With a buffer of 10 and a hung endpoint,
    // nearly everything is dropped and counted.
    for _ in 0..1000 {
        sink.count(Counter::JobSuccess);
    }
    assert!(sink.dropped() >= 1000 - 2 * 10 - 1, "dropped {}", sink.dropped());
    // Shutdown gives up at its deadline instead of waiting for CloudWatch.
    flusher.shutdown(Duration::from_millis(200)).await;
    drop(listener);
}

// ---------------------------------------------------------------------------------------------------
// The intake end to end.

/// The deployment and an intake on it.
struct World {
    cloud: Deployment,
    metrics: Arc<MemorySink>,
    intake: SqsIntake,
}

impl std::ops::Deref for World {
    type Target = Deployment;

    fn deref(&self) -> &Deployment {
        &self.cloud
    }
}

async fn world(moto: &Moto) -> World {
    let cloud = Deployment::new(moto, 2).await;
    let metrics = Arc::new(MemorySink::new());
    let intake = Intake::new(
        cloud.bucket.clone(),
        Arc::new(S3Store::new(cloud.s3.clone())),
        cloud.store.clone(),
        Notifications::new(vec![Arc::new(SnsNotifier::new(
            cloud.sns.clone(),
            cloud.topic.clone(),
        ))]),
        metrics.clone(),
        spec_validator(),
        256 * 1024,
    );
    let intake = SqsIntake::new(
        cloud.sqs.clone(),
        &cloud.queue_url,
        Arc::new(intake),
        fast_options(),
    );
    World {
        cloud,
        metrics,
        intake,
    }
}

impl World {
    /// The dataset groups the state table knows, sorted.
    async fn group_names(&self) -> Vec<String> {
        let groups = self.store.list_groups().await.expect("list groups");
        groups.into_iter().map(|g| g.name).collect()
    }

    async fn send(&self, body: &str) {
        send_to(&self.sqs, &self.queue_url, body).await;
    }

    /// Runs the intake until `done` holds (checked after every round) or patience runs out.
    async fn run_until<F, Fut>(&self, what: &str, mut done: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let shutdown = CancellationToken::new();
        let started = Instant::now();
        loop {
            // Only `done` decides; the round's own report is not what this waits for.
            let _round = self.intake.poll_once(&shutdown).await.expect("receive");
            if done().await {
                return;
            }
            assert!(started.elapsed() < PATIENCE, "gave up waiting for: {what}");
        }
    }
}

fn config_file(group: &str) -> String {
    serde_json::json!({"datasetGroup": {"serviceConfig": {"name": group}}}).to_string()
}

/// An S3 notification as moto sends it (form-encoded key).
fn s3_event(bucket: &str, encoded_key: &str, etag: &str) -> String {
    serde_json::json!({"Records": [{"eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
        "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": bucket}, "object": {"key": encoded_key, "size": 10, "eTag": etag}}}]})
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn intake_end_to_end_on_moto() {
    let moto = Moto::start();
    let w = world(&moto).await;
    w.intake.ping().await.expect("queue answers");

    // A valid file becomes generation 1 of its group.
    let etag = w
        .upload("train/dsg-e2e/config.json", config_file("dsg-e2e"))
        .await;
    w.run_until("generation 1", || async {
        w.generation("dsg-e2e").await == Some(1)
    })
    .await;
    let state = w.store.group("dsg-e2e").await.expect("read").expect("exists");
    assert_eq!(state.desired.expect("desired").text, config_file("dsg-e2e"));
    assert!(state.due_at.is_some(), "a new generation is due");

    // The same event five more times: still one generation, every message deleted.
    for _ in 0..5 {
        w.send(&s3_event(&w.bucket, "train%2Fdsg-e2e%2Fconfig.json", &etag))
            .await;
    }
    w.run_until("the duplicates handled", || async {
        w.visible_and_in_flight(&w.queue_url).await == 0
    })
    .await;
    assert_eq!(w.generation("dsg-e2e").await, Some(1));
    // Duplicates are ignored events, not processed configurations.
    assert_eq!(w.metrics.total("ConfigurationsProcessedSuccesses"), 1.0);
    assert_eq!(w.metrics.total("ConfigurationsProcessed"), 1.0);
    assert_eq!(w.metrics.total("EventsIgnored"), 5.0);

    // Invalid, non-JSON and oversized files: reported on SNS, no generation, no crash.
    w.upload("train/unnamed/config.json", r#"{"solutions": []}"#)
        .await;
    w.upload("train/garbage/config.json", "this is not JSON").await;
    w.upload("train/huge/config.json", vec![b' '; 10 * 1024 * 1024])
        .await;
    // Hostile and unusual keys: `..` is refused; unicode and '+' are ordinary names.
    w.send(&s3_event(&w.bucket, "train%2F..%2Fx.json", "e")).await;
    w.upload("train/ünï cødé+x/config.json", config_file("dsg-unicode"))
        .await;
    w.run_until("the unicode group", || async {
        w.generation("dsg-unicode").await == Some(1) && w.visible_and_in_flight(&w.queue_url).await == 0
    })
    .await;
    let errors: Vec<Value> = receive(&w.sqs, &w.notes_url, 3)
        .await
        .iter()
        .map(|b| json(json(b)["Message"].as_str().expect("sqs body")))
        .collect();
    assert_eq!(errors.len(), 3, "{errors:?}");
    let text = serde_json::to_string(&errors).expect("serialise");
    assert!(text.contains("A datasetGroup must be provided"), "{text}");
    assert!(text.contains("Could not validate JSON"), "{text}");
    assert!(text.contains("10485760 bytes"), "{text}");
    assert!(errors.iter().all(|e| e["status"] == "UPDATE FAILED"));
    assert_eq!(w.metrics.total("ConfigurationsProcessedFailures"), 3.0);
    assert_eq!(w.metrics.total("EventsIgnored"), 6.0);
    assert_eq!(w.generation("unnamed").await, None);
    let groups = w.group_names().await;
    assert_eq!(groups, ["dsg-e2e", "dsg-unicode"]);

    // A body that is not an S3 event can never be handled: it is counted and deleted at once instead
    // of being received again until the redrive policy dead-letters it (issue 13 item 6). Messages
    // that fail for a reason that may pass are still retried and dead-lettered (see
    // a_message_received_too_often_is_left_for_the_redrive_policy_unhandled).
    w.send("this is not an S3 event").await;
    w.send(r#"{"Records": [{"eventName": "ObjectCreated:Put"}]}"#)
        .await;
    w.run_until("the garbage deleted", || async {
        w.visible_and_in_flight(&w.queue_url).await == 0
    })
    .await;
    assert_eq!(w.metrics.total("MessagesRejected"), 2.0);
    assert_eq!(w.visible_and_in_flight(&w.dlq_url).await, 0);
}

/// Issue 13 item 1: anyone who can send to the queue must not be able to point the service at another
/// bucket, even one its role can read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_naming_another_readable_bucket_is_rejected_deleted_and_counted() {
    let moto = Moto::start();
    let w = world(&moto).await;
    let foreign = moto.bucket(&w.s3, "foreign").await;
    support::cloud::upload(
        &w.s3,
        &foreign,
        "train/evil/config.json",
        config_file("evil").into_bytes(),
    )
    .await;
    w.send(&s3_event(&foreign, "train%2Fevil%2Fconfig.json", "e"))
        .await;
    // Our own bucket's event, sent after it, is still acted on.
    w.upload("train/ours/config.json", config_file("ours")).await;
    w.run_until("both messages handled", || async {
        w.generation("ours").await == Some(1) && w.visible_and_in_flight(&w.queue_url).await == 0
    })
    .await;
    assert_eq!(w.generation("evil").await, None);
    let groups = w.group_names().await;
    assert_eq!(groups, ["ours"]);
    assert_eq!(w.metrics.total("MessagesRejected"), 1.0);
    assert_eq!(w.metrics.total("ConfigurationsProcessed"), 1.0);
    // Deleted, not left to be retried into the dead-letter queue.
    assert_eq!(w.visible_and_in_flight(&w.dlq_url).await, 0);
}

/// Issue 13 item 2: the bucket, not the queue, is the source of truth. An upload whose event never
/// reached the queue is recorded by the resync; a file the table already has is left alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_resync_records_uploads_whose_events_were_lost() {
    let moto = Moto::start();
    let w = world(&moto).await;
    // A bucket without notifications: its uploads' events are lost by construction.
    let bucket = moto.bucket(&w.s3, "lost").await;
    let metrics = Arc::new(MemorySink::new());
    let intake = Arc::new(Intake::new(
        bucket.clone(),
        Arc::new(S3Store::new(w.s3.clone())),
        w.store.clone(),
        Notifications::default(),
        metrics.clone(),
        spec_validator(),
        256 * 1024,
    ));
    // Pages of one key: the listing has to follow continuation tokens.
    let listing = Arc::new(S3Store::new(w.s3.clone()).with_page_size(1));
    let rescanner = Rescanner::new(intake.clone(), listing, w.store.clone(), metrics.clone());
    let upload = |key: &'static str, body: String| {
        let (s3, bucket) = (w.s3.clone(), bucket.clone());
        async move { support::cloud::upload(&s3, &bucket, key, body.into_bytes()).await }
    };
    let etag = upload("train/known/config.json", config_file("known")).await;
    // This one's event did arrive.
    let outcome = intake
        .handle_message(&s3_event(&bucket, "train%2Fknown%2Fconfig.json", &etag))
        .await
        .expect("handled");
    assert!(matches!(outcome, MessageOutcome::Records { .. }), "{outcome:?}");
    upload("train/lost/config.json", config_file("lost")).await;
    upload("train/lost/users.csv", "USER_ID\n1\n".into()).await;

    let report = rescanner.rescan().await.expect("rescan");
    assert_eq!(
        (report.listed, report.not_config, report.recorded),
        (3, 1, 1),
        "{report:?}"
    );
    assert_eq!(report.up_to_date + report.unchanged, 1, "{report:?}");
    assert_eq!(w.generation("lost").await, Some(1));
    assert_eq!(w.generation("known").await, Some(1), "not re-recorded");
    assert_eq!(metrics.total("ResyncRecorded"), 1.0);

    // Rewritten, its event lost again: the next resync records generation 2; the other is untouched.
    upload("train/known/config.json", config_file("known").replace('}', " }")).await;
    let report = rescanner.rescan().await.expect("rescan");
    assert_eq!((report.recorded, report.up_to_date), (1, 1), "{report:?}");
    assert_eq!(w.generation("known").await, Some(2));
    assert_eq!(w.generation("lost").await, Some(1));

    // A bucket that cannot be listed is an error naming it, not a silent "nothing new".
    let gone = Intake::new(
        "no-such-bucket",
        Arc::new(S3Store::new(w.s3.clone())),
        w.store.clone(),
        Notifications::default(),
        metrics.clone(),
        spec_validator(),
        1024,
    );
    let err = Rescanner::new(
        Arc::new(gone),
        Arc::new(S3Store::new(w.s3.clone())),
        w.store.clone(),
        metrics,
    )
    .rescan()
    .await
    .expect_err("no bucket");
    assert!(err.to_string().contains("s3://no-such-bucket/train/"), "{err}");
}

/// An object store whose reads take `delay`: handling outlasts the visibility timeout.
#[derive(Debug)]
struct SlowObjects {
    inner: S3Store,
    delay: Duration,
}

#[async_trait::async_trait]
impl ObjectStore for SlowObjects {
    async fn list(&self, prefix: &ObjectUrl, recursive: bool) -> Result<Vec<ObjectMeta>, ObjectError> {
        self.inner.list(prefix, recursive).await
    }
    async fn head(&self, url: &ObjectUrl) -> Result<Option<ObjectMeta>, ObjectError> {
        self.inner.head(url).await
    }
    async fn get(&self, url: &ObjectUrl, limit: u64) -> Result<bytes::Bytes, ObjectError> {
        tokio::time::sleep(self.delay).await;
        self.inner.get(url, limit).await
    }
    async fn put(&self, url: &ObjectUrl, body: bytes::Bytes) -> Result<(), ObjectError> {
        self.inner.put(url, body).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_visibility_heartbeat_keeps_a_slow_message_from_a_second_consumer() {
    let moto = Moto::start();
    let config = moto.sdk_config().await;
    let s3 = moto.s3_client().await;
    let sqs = aws_sdk_sqs::Client::new(&config);
    let ddb = aws_sdk_dynamodb::Client::new(&config);
    let bucket = moto.bucket(&s3, "slow").await;
    let (queue_url, _) = queue(&sqs, "slow").await;
    let table = unique_name("state");
    DynamoStore::create_table(&ddb, &table).await.expect("table");
    let store = Arc::new(DynamoStore::new(ddb, table));
    s3.put_object()
        .bucket(&bucket)
        .key("train/slow/config.json")
        .body(ByteStream::from(config_file("slow").into_bytes()))
        .send()
        .await
        .expect("upload");

    // Two replicas on one queue; reading the file takes three visibility timeouts. A 3 s timeout
    // (heartbeat every 1 s) leaves 2 s for a ChangeMessageVisibility on a loaded moto; at 1 s the
    // message could reappear to the other consumer after a 0.7 s stall, with the heartbeat working.
    let options = SqsOptions {
        visibility_timeout: Duration::from_secs(3),
        ..fast_options()
    };
    let sinks = [Arc::new(MemorySink::new()), Arc::new(MemorySink::new())];
    let consumers: Vec<SqsIntake> = sinks
        .iter()
        .map(|sink| {
            let intake = Intake::new(
                bucket.clone(),
                Arc::new(SlowObjects {
                    inner: S3Store::new(s3.clone()),
                    delay: options.visibility_timeout * 3,
                }),
                store.clone(),
                Notifications::default(),
                sink.clone(),
                spec_validator(),
                256 * 1024,
            );
            SqsIntake::new(sqs.clone(), &queue_url, Arc::new(intake), options.clone())
        })
        .collect();
    let shutdown = CancellationToken::new();
    let running: Vec<_> = consumers
        .iter()
        .cloned()
        .map(|c| {
            let token = shutdown.clone();
            tokio::spawn(async move { c.run(token).await })
        })
        .collect();

    send_to(
        &sqs,
        &queue_url,
        &s3_event(&bucket, "train%2Fslow%2Fconfig.json", "e"),
    )
    .await;
    // moto applies an update in steps (unlike DynamoDB), so wait for the desired state itself.
    eventually("the message handled", || async {
        store
            .group("slow")
            .await
            .ok()
            .flatten()
            .and_then(|g| g.desired)
            .is_some()
    })
    .await;
    // Once the message is deleted nothing can receive it again; a second handling already under
    // way would finish before the consumers stop (shutdown lets in-flight handling complete).
    eventually("the message deleted", || async {
        visible_and_in_flight(&sqs, &queue_url).await == 0
    })
    .await;
    shutdown.cancel();
    for task in running {
        task.await.expect("consumer task");
    }
    let handled: f64 = sinks.iter().map(|s| s.total("ConfigurationsProcessed")).sum();
    assert_eq!(handled, 1.0, "exactly one replica handled the message");
    let left = sqs
        .receive_message()
        .queue_url(&queue_url)
        .wait_time_seconds(1)
        .send()
        .await
        .expect("receive");
    assert!(left.messages().is_empty(), "the handled message was deleted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_polls_outlast_the_attempt_timeout_of_other_calls() {
    let moto = Moto::start();
    let mut aws = personalize_ops::settings::Settings::load_with_env(None, Vec::new())
        .expect("defaults")
        .aws;
    // The slack a long poll gets beyond its wait is the base timeout itself: 2 s absorbs a slow
    // moto on a loaded machine (1 s made the test flaky under load).
    aws.attempt_timeout_secs = 2;
    aws.operation_timeout_secs = 3;
    let config = personalize_ops::aws::config_loader(&aws)
        .endpoint_url(moto.endpoint())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_credential_types::Credentials::new(
            "test", "test", None, None, "t",
        ))
        .load()
        .await;
    let sqs = aws_sdk_sqs::Client::new(&config);
    let (queue_url, _) = queue(&sqs, "long").await;
    let options = SqsOptions {
        wait: Duration::from_secs(5),
        ..SqsOptions::from_settings(
            &personalize_ops::settings::Settings::load_with_env(None, Vec::new())
                .expect("defaults")
                .daemon,
        )
    };
    let store = Arc::new(personalize_ops::store::SqliteStore::in_memory().expect("sqlite"));
    let intake = Intake::new(
        "data",
        Arc::new(personalize_ops::objects::MemoryStore::new()),
        store,
        Notifications::default(),
        Arc::new(MemorySink::new()),
        spec_validator(),
        1024,
    );
    let intake = SqsIntake::new(sqs, &queue_url, Arc::new(intake), options);
    let started = Instant::now();
    // An empty queue: the receive waits the whole 5 s, longer than the 3 s operation timeout.
    let report = intake
        .poll_once(&CancellationToken::new())
        .await
        .expect("a long poll is not a timeout");
    assert_eq!(report.received, 0);
    assert!(started.elapsed() >= Duration::from_secs(3), "the poll waited");
}

/// A reader the tests control: it counts calls and in-flight reads, waits `delay` (forever when
/// `None`), then serves a valid parameter file naming the group in the key, or fails.
#[derive(Debug)]
struct ScriptedReader {
    delay: Option<Duration>,
    fail: bool,
    calls: std::sync::atomic::AtomicUsize,
    in_flight: std::sync::atomic::AtomicUsize,
    max_in_flight: std::sync::atomic::AtomicUsize,
}

impl ScriptedReader {
    fn new(delay: Option<Duration>, fail: bool) -> Arc<Self> {
        Arc::new(Self {
            delay,
            fail,
            calls: Default::default(),
            in_flight: Default::default(),
            max_in_flight: Default::default(),
        })
    }

    fn calls(&self) -> usize {
        self.calls.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[async_trait::async_trait]
impl ConfigReader for ScriptedReader {
    async fn read(&self, url: &ObjectUrl, _limit: u64) -> Result<ConfigRead, ObjectError> {
        use std::sync::atomic::Ordering::SeqCst;
        self.calls.fetch_add(1, SeqCst);
        let now = self.in_flight.fetch_add(1, SeqCst) + 1;
        self.max_in_flight.fetch_max(now, SeqCst);
        match self.delay {
            Some(delay) => tokio::time::sleep(delay).await,
            None => std::future::pending::<()>().await,
        }
        self.in_flight.fetch_sub(1, SeqCst);
        if self.fail {
            return Err(ObjectError::Backend {
                op: "get",
                url: url.clone(),
                source: "injected failure".into(),
            });
        }
        let group = url.key.split('/').nth(1).unwrap_or("none");
        Ok(ConfigRead::Found {
            body: bytes::Bytes::from(config_file(group)),
            last_modified: chrono::Utc::now(),
            etag: None,
        })
    }
}

/// An SQS intake on a fresh moto queue whose files come from `reader`, recording into SQLite.
async fn scripted_intake(
    moto: &Moto,
    reader: Arc<ScriptedReader>,
    options: SqsOptions,
) -> (
    SqsIntake,
    aws_sdk_sqs::Client,
    String,
    Arc<personalize_ops::store::SqliteStore>,
) {
    let sqs = aws_sdk_sqs::Client::new(&moto.sdk_config().await);
    let (queue_url, _) = queue(&sqs, "scripted").await;
    let store = Arc::new(personalize_ops::store::SqliteStore::in_memory().expect("sqlite"));
    let intake = Intake::from_reader(
        "data",
        reader,
        store.clone(),
        Notifications::default(),
        Arc::new(MemorySink::new()),
        spec_validator(),
        256 * 1024,
    );
    let intake = SqsIntake::new(sqs.clone(), &queue_url, Arc::new(intake), options);
    (intake, sqs, queue_url, store)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_received_too_often_is_left_for_the_redrive_policy_unhandled() {
    let moto = Moto::start();
    let reader = ScriptedReader::new(Some(Duration::ZERO), true);
    let options = SqsOptions {
        max_receive_count: 2,
        ..fast_options()
    };
    let (intake, sqs, queue_url, _) = scripted_intake(&moto, reader.clone(), options).await;
    send_to(
        &sqs,
        &queue_url,
        &s3_event("data", "train%2Fpoison%2Fconfig.json", "e"),
    )
    .await;
    let shutdown = CancellationToken::new();
    let started = Instant::now();
    let mut skipped = 0;
    while skipped < 2 {
        let report = intake.poll_once(&shutdown).await.expect("receive");
        assert_eq!(report.deleted, 0, "a failing message is never deleted");
        skipped += report.over_receive_limit;
        assert!(
            started.elapsed() < PATIENCE,
            "the receive limit was never reached"
        );
    }
    // Handled (and failed) on receives 1 and 2 only; later receives leave it alone.
    assert_eq!(reader.calls(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_is_handled_concurrently_up_to_intake_concurrency() {
    let moto = Moto::start();
    let reader = ScriptedReader::new(Some(Duration::from_millis(1500)), false);
    let options = SqsOptions {
        concurrency: 2,
        visibility_timeout: Duration::from_secs(30),
        ..fast_options()
    };
    let (intake, sqs, queue_url, store) = scripted_intake(&moto, reader.clone(), options).await;
    for i in 0..6 {
        send_to(
            &sqs,
            &queue_url,
            &s3_event("data", &format!("train%2Fc{i}%2Fconfig.json"), "e"),
        )
        .await;
    }
    let shutdown = CancellationToken::new();
    let started = Instant::now();
    let mut deleted = 0;
    while deleted < 6 {
        deleted += intake.poll_once(&shutdown).await.expect("receive").deleted;
        assert!(started.elapsed() < PATIENCE, "only {deleted} of 6 handled");
    }
    assert_eq!(store.list_groups().await.expect("list").len(), 6);
    let max = reader.max_in_flight.load(std::sync::atomic::Ordering::SeqCst);
    assert!(max <= 2, "at most intake_concurrency messages at once, saw {max}");
    assert_eq!(reader.calls(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_running_intake_ticks_its_liveness_for_healthz() {
    let moto = Moto::start();
    let reader = ScriptedReader::new(Some(Duration::ZERO), false);
    let (intake, _, _, _) = scripted_intake(&moto, reader, fast_options()).await;
    let readiness =
        personalize_ops::health::Readiness::new(Vec::new(), Duration::ZERO, Duration::from_secs(1));
    let period = Duration::from_millis(300);
    let liveness = readiness.watch("intake", personalize_ops::health::Liveness::new(), period);
    tokio::time::sleep(period * 4).await;
    assert!(!readiness.liveness().alive, "not running yet: stalled");
    let intake = intake.with_liveness(liveness.clone());
    let shutdown = CancellationToken::new();
    let running = {
        let token = shutdown.clone();
        tokio::spawn(async move { intake.run(token).await })
    };
    eventually("the intake loop ticked", || async {
        liveness.since_last_tick() < period
    })
    .await;
    shutdown.cancel();
    running.await.expect("intake task");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_read_is_abandoned_at_the_message_deadline() {
    let moto = Moto::start();
    let reader = ScriptedReader::new(None, false);
    let options = SqsOptions {
        message_deadline: Duration::from_secs(1),
        visibility_timeout: Duration::from_secs(30),
        ..fast_options()
    };
    let (intake, sqs, queue_url, store) = scripted_intake(&moto, reader.clone(), options).await;
    send_to(
        &sqs,
        &queue_url,
        &s3_event("data", "train%2Fhung%2Fconfig.json", "e"),
    )
    .await;
    let shutdown = CancellationToken::new();
    let started = Instant::now();
    let mut timed_out = 0;
    while timed_out == 0 {
        let report = tokio::time::timeout(PATIENCE, intake.poll_once(&shutdown))
            .await
            .expect("a hung read must not hang the intake")
            .expect("receive");
        assert_eq!(report.deleted, 0);
        timed_out += report.timed_out;
        assert!(started.elapsed() < PATIENCE, "the message never arrived");
    }
    assert_eq!(reader.calls(), 1);
    assert!(store.group("hung").await.expect("read").is_none());
    // Still on the queue (in flight until its visibility timeout), for a retry.
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .expect("attributes")
        .attributes
        .unwrap_or_default();
    assert_eq!(
        attributes
            .get(&QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .map(String::as_str),
        Some("1")
    );
}

#[tokio::test]
async fn s3_config_reader_reads_capped_files_and_reports_missing_and_oversized_ones() {
    let moto = Moto::start();
    let s3 = moto.s3_client().await;
    let bucket = moto.bucket(&s3, "reader").await;
    let reader = personalize_ops::intake::S3ConfigReader::new(s3.clone());
    let put = |key: &'static str, body: Vec<u8>| {
        s3.put_object()
            .bucket(&bucket)
            .key(key)
            .body(ByteStream::from(body))
            .send()
    };
    put("train/ok/config.json", config_file("ok").into_bytes())
        .await
        .expect("put");
    put("train/big/config.json", vec![b' '; 2 * 1024 * 1024])
        .await
        .expect("put");
    let url = |key: &str| ObjectUrl::new(bucket.clone(), key);
    match reader
        .read(&url("train/ok/config.json"), 1024)
        .await
        .expect("read")
    {
        ConfigRead::Found {
            body,
            last_modified,
            etag,
        } => {
            assert_eq!(body, config_file("ok").as_bytes());
            assert!(etag.is_some_and(|e| !e.contains('"')), "unquoted ETag");
            assert!(last_modified > chrono::DateTime::<chrono::Utc>::UNIX_EPOCH);
        }
        other => panic!("expected the file: {other:?}"),
    }
    assert_eq!(
        reader
            .read(&url("train/big/config.json"), 256 * 1024)
            .await
            .expect("read"),
        ConfigRead::TooLarge {
            size: 2 * 1024 * 1024
        }
    );
    assert_eq!(
        reader
            .read(&url("train/none/config.json"), 1024)
            .await
            .expect("read"),
        ConfigRead::Missing
    );
    // A missing bucket is not a missing file: it is an error to retry, naming the object.
    let err = reader
        .read(&ObjectUrl::new("no-such-bucket", "train/x/config.json"), 1024)
        .await
        .expect_err("no bucket");
    assert!(
        err.to_string()
            .contains("s3://no-such-bucket/train/x/config.json"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------------------
// moto's HTML error pages

/// The daemon's SDK configuration (its retry and timeout settings) pointed at `endpoint`.
async fn daemon_sdk_config(endpoint: &str) -> aws_config::SdkConfig {
    let aws = personalize_ops::settings::Settings::load_with_env(None, Vec::new())
        .expect("defaults")
        .aws;
    personalize_ops::aws::config_loader(&aws)
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_credential_types::Credentials::new(
            "test", "test", None, None, "t",
        ))
        .load()
        .await
}

/// An HTML 500 page where DynamoDB's JSON was expected (moto under 1,000 groups) is a failure to
/// try again, not a corrupt item: the SDK retries it, and when every attempt gets one the store
/// reports a backend failure, which ends the turn with the group still due.
#[tokio::test]
async fn an_html_error_page_from_dynamodb_is_retried_as_a_transient_failure() {
    const EMPTY: &str = r#"{"Items":[],"Count":0,"ScannedCount":0}"#;
    let html = HtmlErrors::start(2, "application/x-amz-json-1.0", EMPTY).await;
    let client = aws_sdk_dynamodb::Client::new(&daemon_sdk_config(&html.endpoint()).await);
    let store = DynamoStore::new(client, "state");
    assert!(
        store
            .group("g")
            .await
            .expect("answered on the third attempt")
            .is_none()
    );
    assert_eq!(html.requests(), 3, "two pages, then the answer");

    let html = HtmlErrors::start(usize::MAX, "application/x-amz-json-1.0", EMPTY).await;
    let client = aws_sdk_dynamodb::Client::new(&daemon_sdk_config(&html.endpoint()).await);
    let store = DynamoStore::new(client, "state");
    let err = store.group("g").await.expect_err("every attempt failed");
    assert!(matches!(err, StoreError::Backend { .. }), "{err:?}");
    assert!(err.to_string().contains("group g"), "{err}");
    assert_eq!(html.requests(), 3, "the daemon's max_attempts");
}

/// The same page from Personalize: a read is retried through the rate limiter and succeeds; when
/// it never stops, the call ends `Transient` (the pass ends "later"), never `Rejected` (which would
/// fail the resource). A CreateSolutionVersion answered by one is not resent: the server may have
/// started the training before it broke, and the next pass lists the versions first.
#[tokio::test]
async fn an_html_error_page_from_personalize_is_transient() {
    use aws_sdk_personalize::config::retry::RetryConfig;
    use personalize_ops::reconcile::{Api, Backoff, ErrorClass, RateLimiter};
    async fn through_api(endpoint: &str) -> (Api, aws_sdk_personalize::Client) {
        let config = daemon_sdk_config(endpoint).await;
        let client = aws_sdk_personalize::Client::from_conf(
            aws_sdk_personalize::config::Builder::from(&config)
                // As `Api` sets its own client: its retries are the only ones.
                .retry_config(RetryConfig::disabled())
                .build(),
        );
        let backoff = Backoff {
            min: Duration::from_millis(1),
            max: Duration::from_millis(2),
            retries: 3,
        };
        let api = Api::new(client.clone(), Arc::new(RateLimiter::new(1000.0)), backoff);
        (api, client)
    }
    const ARN: &str = "arn:aws:personalize:us-east-1:123456789012:solution/s";

    let html = HtmlErrors::start(2, "application/x-amz-json-1.1", "{}").await;
    let (api, client) = through_api(&html.endpoint()).await;
    api.call("DescribeSolution", ARN, || {
        client.describe_solution().solution_arn(ARN).send()
    })
    .await
    .expect("answered on the third attempt");
    assert_eq!(html.requests(), 3);

    let html = HtmlErrors::start(usize::MAX, "application/x-amz-json-1.1", "{}").await;
    let (api, client) = through_api(&html.endpoint()).await;
    let err = api
        .call("DescribeSolution", ARN, || {
            client.describe_solution().solution_arn(ARN).send()
        })
        .await
        .expect_err("every attempt failed");
    assert_eq!(err.class, ErrorClass::Transient, "{err}");
    assert_eq!(err.code, "HTTP 500", "named by the status, not a network failure");
    assert_eq!(html.requests(), 4, "the first attempt and three retries");
    let err = api
        .call("CreateSolutionVersion", ARN, || {
            client.create_solution_version().solution_arn(ARN).send()
        })
        .await
        .expect_err("failed");
    assert_eq!(err.class, ErrorClass::Transient, "{err}");
    assert_eq!(html.requests(), 5, "sent once");
}

/// The same page from SQS: the receive is retried by the SDK and the intake carries on.
#[tokio::test]
async fn an_html_error_page_from_sqs_is_retried() {
    let html = HtmlErrors::start(2, "application/x-amz-json-1.0", "{}").await;
    let sqs = aws_sdk_sqs::Client::new(&daemon_sdk_config(&html.endpoint()).await);
    let intake = Intake::new(
        "data",
        Arc::new(personalize_ops::objects::MemoryStore::new()),
        Arc::new(personalize_ops::store::SqliteStore::in_memory().expect("sqlite")),
        Notifications::default(),
        Arc::new(MemorySink::new()),
        spec_validator(),
        1024,
    );
    let intake = SqsIntake::new(sqs, "http://queue/q", Arc::new(intake), fast_options());
    let report = intake
        .poll_once(&CancellationToken::new())
        .await
        .expect("received on the third attempt");
    assert_eq!(report.received, 0);
    assert_eq!(html.requests(), 3);
}
