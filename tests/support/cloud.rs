//! Moto set-up shared by the daemon tests: queues, dead-lettering, bucket notifications, topics.

use std::path::Path;
use std::sync::Arc;

use aws_config::SdkConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    Event, FilterRule, FilterRuleName, NotificationConfiguration, NotificationConfigurationFilter,
    QueueConfiguration, S3KeyFilter,
};
use aws_sdk_sqs::types::QueueAttributeName;
use personalize_ops::emulator::{Emulator, EmulatorConfig};
use personalize_ops::store::{DynamoStore, StateStore};

use super::moto::{Moto, unique_name};

/// A daemon's AWS side on moto: a bucket whose `train/*.json` notifications go to a queue with a
/// dead-letter queue, a state table, and a topic subscribed by a queue (`notes_url`).
pub struct Deployment {
    pub config: SdkConfig,
    pub s3: aws_sdk_s3::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub sns: aws_sdk_sns::Client,
    pub bucket: String,
    pub queue_url: String,
    pub dlq_url: String,
    pub topic: String,
    pub notes_url: String,
    pub table: String,
    pub store: Arc<DynamoStore>,
}

impl Deployment {
    /// Messages received more than `max_receive_count` times go to the dead-letter queue.
    pub async fn new(moto: &Moto, max_receive_count: u32) -> Self {
        let config = moto.sdk_config().await;
        let s3 = moto.s3_client().await;
        let sqs = aws_sdk_sqs::Client::new(&config);
        let sns = aws_sdk_sns::Client::new(&config);
        let ddb = aws_sdk_dynamodb::Client::new(&config);
        let bucket = moto.bucket(&s3, "data").await;
        let (dlq_url, dlq_arn) = queue(&sqs, "dlq").await;
        let (queue_url, queue_arn) = queue(&sqs, "intake").await;
        redrive(&sqs, &queue_url, &dlq_arn, max_receive_count).await;
        notify_train_json(&s3, &bucket, &queue_arn).await;
        let (topic, notes_url) = subscribed_queue(&sns, &sqs, "notes", "notes").await;
        let table = unique_name("state");
        DynamoStore::create_table(&ddb, &table).await.expect("table");
        Self {
            config,
            store: Arc::new(DynamoStore::new(ddb, table.clone())),
            s3,
            sqs,
            sns,
            bucket,
            queue_url,
            dlq_url,
            topic,
            notes_url,
            table,
        }
    }

    /// Puts `body` at `key` in the bucket; returns the object's ETag.
    pub async fn upload(&self, key: &str, body: impl Into<Vec<u8>>) -> String {
        upload(&self.s3, &self.bucket, key, body.into()).await
    }

    /// The desired generation the state table holds for `group`.
    pub async fn generation(&self, group: &str) -> Option<u64> {
        self.store
            .group(group)
            .await
            .expect("read state")
            .and_then(|g| g.desired)
            .map(|d| d.generation)
    }

    /// Messages in `url`, visible or in flight.
    pub async fn visible_and_in_flight(&self, url: &str) -> usize {
        visible_and_in_flight(&self.sqs, url).await
    }

    /// The environment that points a `run` child process at this deployment on the moto server at
    /// `endpoint` (JSON logs at info, a free health port, 1 s long polls).
    pub fn daemon_env(&self, endpoint: &str) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT_URL", endpoint.to_string()),
            ("AWS_ACCESS_KEY_ID", "test".into()),
            ("AWS_SECRET_ACCESS_KEY", "test".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
            ("PERSONALIZE_OPS__DAEMON__BUCKET", self.bucket.clone()),
            ("PERSONALIZE_OPS__DAEMON__QUEUE_URL", self.queue_url.clone()),
            ("PERSONALIZE_OPS__DAEMON__TABLE_NAME", self.table.clone()),
            ("PERSONALIZE_OPS__DAEMON__HEALTH_PORT", "0".into()),
            ("PERSONALIZE_OPS__DAEMON__RECEIVE_WAIT_SECS", "1".into()),
            ("PERSONALIZE_OPS__NOTIFY__SNS_TOPIC_ARN", self.topic.clone()),
            ("PERSONALIZE_OPS__AWS__S3_FORCE_PATH_STYLE", "true".into()),
            ("PERSONALIZE_OPS__LOG__FORMAT", "json".into()),
            ("PERSONALIZE_OPS__LOG__LEVEL", "info".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// [`Deployment::daemon_env`] with the built-in Personalize at `emu` and the settings file
    /// `settings` (see [`super::process::fast_settings`]).
    pub fn service_env(&self, endpoint: &str, emu: &Emulator, settings: &Path) -> Vec<(String, String)> {
        let mut env = self.daemon_env(endpoint);
        env.push(("AWS_ENDPOINT_URL_PERSONALIZE".into(), emu.url()));
        env.push((
            "PERSONALIZE_OPS_SETTINGS".into(),
            settings.to_str().expect("UTF-8").into(),
        ));
        env
    }

    /// The built-in Personalize in this process, reading import data from this deployment's bucket.
    pub async fn emulator(&self) -> Emulator {
        self.emulator_with(|_| {}).await
    }

    /// As [`Deployment::emulator`], its configuration changed by `tweak` first.
    pub async fn emulator_with(&self, tweak: impl FnOnce(&mut EmulatorConfig)) -> Emulator {
        let objects = Arc::new(personalize_ops::objects::S3Store::new(self.s3.clone()));
        let mut config = EmulatorConfig::new(objects);
        tweak(&mut config);
        personalize_ops::emulator::start(config).await.expect("emulator")
    }
}

/// A queue with a unique name: (URL, ARN).
pub async fn queue(sqs: &aws_sdk_sqs::Client, prefix: &str) -> (String, String) {
    let url = sqs
        .create_queue()
        .queue_name(unique_name(prefix))
        .send()
        .await
        .expect("create queue")
        .queue_url
        .expect("queue url");
    let arn = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("queue attributes")
        .attributes
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .expect("queue arn");
    (url, arn)
}

/// Moves messages of `queue_url` received more than `max_receive_count` times to `dlq_arn`.
pub async fn redrive(sqs: &aws_sdk_sqs::Client, queue_url: &str, dlq_arn: &str, max_receive_count: u32) {
    sqs.set_queue_attributes()
        .queue_url(queue_url)
        .attributes(
            QueueAttributeName::RedrivePolicy,
            serde_json::json!({
                "deadLetterTargetArn": dlq_arn,
                "maxReceiveCount": max_receive_count.to_string(),
            })
            .to_string(),
        )
        .send()
        .await
        .expect("redrive policy");
}

/// Sends the creation of every `train/*.json` object in `bucket` to the queue `queue_arn`.
pub async fn notify_train_json(s3: &aws_sdk_s3::Client, bucket: &str, queue_arn: &str) {
    notify_train_json_events(s3, bucket, queue_arn, &[Event::S3ObjectCreated]).await;
}

/// As [`notify_train_json`], for the given `events` (removals too, for the daemon's removal path).
pub async fn notify_train_json_events(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    queue_arn: &str,
    events: &[Event],
) {
    let rule = |name, value: &str| FilterRule::builder().name(name).value(value).build();
    let filter = S3KeyFilter::builder()
        .filter_rules(rule(FilterRuleName::Prefix, "train/"))
        .filter_rules(rule(FilterRuleName::Suffix, ".json"))
        .build();
    s3.put_bucket_notification_configuration()
        .bucket(bucket)
        .notification_configuration(
            NotificationConfiguration::builder()
                .queue_configurations(
                    QueueConfiguration::builder()
                        .id("train-json")
                        .queue_arn(queue_arn)
                        .set_events(Some(events.to_vec()))
                        .filter(NotificationConfigurationFilter::builder().key(filter).build())
                        .build()
                        .expect("queue configuration"),
                )
                .build(),
        )
        .send()
        .await
        .expect("bucket notification");
}

/// A topic with a queue subscribed to it: (topic ARN, queue URL).
pub async fn subscribed_queue(
    sns: &aws_sdk_sns::Client,
    sqs: &aws_sdk_sqs::Client,
    topic_prefix: &str,
    queue_prefix: &str,
) -> (String, String) {
    let topic = sns
        .create_topic()
        .name(unique_name(topic_prefix))
        .send()
        .await
        .expect("topic")
        .topic_arn
        .expect("arn");
    let (url, arn) = queue(sqs, queue_prefix).await;
    sns.subscribe()
        .topic_arn(&topic)
        .protocol("sqs")
        .endpoint(&arn)
        .send()
        .await
        .expect("subscribe");
    (topic, url)
}

/// Puts `body` at `key` in `bucket`; returns the object's ETag.
pub async fn upload(s3: &aws_sdk_s3::Client, bucket: &str, key: &str, body: Vec<u8>) -> String {
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(body))
        .send()
        .await
        .expect("upload")
        .e_tag
        .unwrap_or_default()
}

/// Messages in `url`, visible or in flight (moto's approximate counts are exact).
pub async fn visible_and_in_flight(sqs: &aws_sdk_sqs::Client, url: &str) -> usize {
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::All)
        .send()
        .await
        .expect("attributes")
        .attributes
        .unwrap_or_default();
    [
        QueueAttributeName::ApproximateNumberOfMessages,
        QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
    ]
    .iter()
    .filter_map(|k| attributes.get(k).and_then(|v| v.parse::<usize>().ok()))
    .sum()
}

/// The machine-readable part (the `sqs` member) of the SNS messages one receive of up to 10 got
/// from the subscribed queue `url` within `wait_secs`, deleted once read.
pub async fn notes(sqs: &aws_sdk_sqs::Client, url: &str, wait_secs: i32) -> Vec<serde_json::Value> {
    receive_batch(sqs, url, wait_secs)
        .await
        .iter()
        .map(|body| {
            let envelope: serde_json::Value = serde_json::from_str(body).expect("SNS envelope");
            serde_json::from_str(envelope["Message"].as_str().expect("message")).expect("sqs body")
        })
        .collect()
}

/// The bodies of one receive of up to 10 messages from `url`, deleted once read.
pub async fn receive_batch(sqs: &aws_sdk_sqs::Client, url: &str, wait_secs: i32) -> Vec<String> {
    let out = sqs
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(10)
        .wait_time_seconds(wait_secs)
        .send()
        .await
        .expect("receive");
    let mut bodies = Vec::new();
    for m in out.messages() {
        bodies.push(m.body().unwrap_or("").to_string());
        sqs.delete_message()
            .queue_url(url)
            .receipt_handle(m.receipt_handle().expect("receipt"))
            .send()
            .await
            .expect("delete");
    }
    bodies
}
