//! `personalize-ops setup`: creates or checks what the daemon needs outside CloudFormation — the
//! state table, and with flags the intake queue, its dead-letter queue and the bucket notification.
//!
//! Idempotent: what exists as needed is left alone and reported as `exists`; what is missing is
//! created; what exists but differs is reported (`differs`) and never replaced, except additions
//! that cannot hurt anything already there (TTL on a table, a redrive policy on a queue without
//! one, the notification added beside the bucket's other ones).

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use aws_sdk_s3::error::ProvideErrorMetadata as _;
use aws_sdk_s3::types::{
    Event, FilterRule, FilterRuleName, NotificationConfiguration, NotificationConfigurationFilter,
    QueueConfiguration, S3KeyFilter,
};
use aws_sdk_sqs::types::QueueAttributeName;
use personalize_ops::aws::AwsFailure;
use personalize_ops::store::{DynamoStore, SqliteStore, StateStore};
use serde::Serialize;
use serde_json::{Value, json};

use super::{Context, EXIT_FAILURE, EXIT_USAGE, Format};

/// The prefix and suffix of the objects whose creation the daemon hears about.
pub const TRAIN_PREFIX: &str = "train/";
pub const TRAIN_SUFFIX: &str = ".json";
/// Id of the bucket's queue configuration that `setup` adds.
const NOTIFICATION_ID: &str = "personalize-ops-train-json";
/// Sid of the queue-policy statement that lets the bucket send its notifications.
const POLICY_SID: &str = "personalize-ops-s3-notifications";
/// SQS's longest retention: a dead-lettered message waits two weeks for someone to look at it.
const DLQ_RETENTION_SECS: &str = "1209600";

/// Arguments of `setup`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The state table (default: `daemon.table_name` of the settings).
    #[arg(long, value_name = "NAME")]
    pub table: Option<String>,

    /// Also the intake queue of this name, with a dead-letter queue `NAME-dlq` and a redrive
    /// policy after `daemon.max_receive_count` receives.
    #[arg(long, value_name = "NAME")]
    pub queue: Option<String>,

    /// Also send the creation of `train/**.json` objects in this existing bucket to the queue
    /// (needs --queue): a statement in the queue's policy and a notification on the bucket.
    #[arg(long, value_name = "BUCKET", requires = "queue")]
    pub bucket: Option<String>,

    /// Change nothing: report what exists, what is missing and what differs (exit 1 unless all is
    /// as needed).
    #[arg(long)]
    pub check: bool,

    /// Set up the SQLite state of `personalize-ops local DIR` instead of AWS resources.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["table", "queue", "bucket"])]
    pub local: Option<PathBuf>,

    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
}

/// Where one resource stands after `setup`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// It was there, as the service needs it.
    Exists,
    /// It was missing and `setup` created it.
    Created,
    /// It was there and `setup` added what it lacked.
    Updated,
    /// It is missing (`--check`).
    Missing,
    /// It is there but not as the service needs it; `setup` leaves it alone.
    Differs,
}

impl State {
    fn word(self) -> &'static str {
        match self {
            Self::Exists => "exists",
            Self::Created => "created",
            Self::Updated => "updated",
            Self::Missing => "missing",
            Self::Differs => "differs",
        }
    }

    fn ok(self) -> bool {
        matches!(self, Self::Exists | Self::Created | Self::Updated)
    }
}

/// One line of the report.
#[derive(Debug, Clone, Serialize)]
pub struct Item {
    pub resource: &'static str,
    pub name: String,
    pub state: State,
    pub details: Vec<String>,
}

impl Item {
    fn new(resource: &'static str, name: &str, state: State, details: Vec<String>) -> Self {
        Self {
            resource,
            name: name.to_string(),
            state,
            details,
        }
    }
}

/// Creates or checks what the arguments name; prints the report; exits 0 when all is as needed.
pub async fn run(args: Args, ctx: &Context) -> anyhow::Result<ExitCode> {
    let items = if let Some(dir) = &args.local {
        vec![sqlite(dir, args.check).await]
    } else {
        let s = &ctx.settings;
        let table = args.table.clone().unwrap_or_else(|| s.daemon.table_name.clone());
        if table.is_empty() {
            eprintln!(
                "personalize-ops setup: no table: give --table NAME or set daemon.table_name (PERSONALIZE_OPS__DAEMON__TABLE_NAME)"
            );
            return Ok(ExitCode::from(EXIT_USAGE));
        }
        let config = personalize_ops::aws::sdk_config(&s.aws).await;
        let mut items = vec![state_table(&aws_sdk_dynamodb::Client::new(&config), &table, args.check).await?];
        if let Some(queue) = &args.queue {
            let sqs = aws_sdk_sqs::Client::new(&config);
            let s3 = personalize_ops::aws::s3_client(&config, &s.aws);
            let wanted = Queues {
                name: queue.clone(),
                max_receive_count: s.daemon.max_receive_count,
                visibility_timeout_secs: s.daemon.visibility_timeout_secs,
                bucket: args.bucket.clone(),
            };
            items.extend(queues(&sqs, &s3, &wanted, args.check).await?);
        }
        items
    };
    print(&items, args.format)?;
    Ok(if items.iter().all(|i| i.state.ok()) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FAILURE)
    })
}

fn print(items: &[Item], format: Format) -> anyhow::Result<()> {
    match format {
        Format::Json => {
            let ok = items.iter().all(|i| i.state.ok());
            println!("{}", json!({"ok": ok, "items": items}));
        }
        Format::Text => {
            for i in items {
                println!("{:<8} {} {}", i.state.word(), i.resource, i.name);
                for d in &i.details {
                    println!("         - {d}");
                }
            }
        }
    }
    Ok(())
}

/// The SQLite file of local mode: created with its schema, or opened and read once.
async fn sqlite(dir: &std::path::Path, check: bool) -> Item {
    let path = super::local::state_path(dir);
    let name = path.display().to_string();
    let existed = path.exists();
    if !existed && check {
        return Item::new("sqlite", &name, State::Missing, Vec::new());
    }
    if !existed && let Err(e) = std::fs::create_dir_all(dir) {
        return Item::new(
            "sqlite",
            &name,
            State::Differs,
            vec![format!("cannot create {}: {e}", dir.display())],
        );
    }
    // Opening creates the tables that are missing; listing proves the existing ones are usable.
    let opened = SqliteStore::open(&path);
    let usable = match opened {
        Ok(store) => store.list_groups().await.map(|_| ()),
        Err(e) => Err(e),
    };
    match (usable, existed) {
        (Ok(()), true) => Item::new("sqlite", &name, State::Exists, Vec::new()),
        (Ok(()), false) => Item::new("sqlite", &name, State::Created, Vec::new()),
        (Err(e), _) => Item::new("sqlite", &name, State::Differs, vec![e.to_string()]),
    }
}

/// The DynamoDB state table.
async fn state_table(ddb: &aws_sdk_dynamodb::Client, table: &str, check: bool) -> anyhow::Result<Item> {
    let found = DynamoStore::check_table(ddb, table).await?;
    if !found.exists {
        if check {
            return Ok(Item::new("table", table, State::Missing, found.problems));
        }
        DynamoStore::create_table(ddb, table).await?;
        return Ok(Item::new(
            "table",
            table,
            State::Created,
            vec!["keys pk + sk, index due-index, TTL on ttl, on-demand billing".into()],
        ));
    }
    if !found.problems.is_empty() {
        let mut details = found.problems;
        details.extend(found.warnings);
        return Ok(Item::new("table", table, State::Differs, details));
    }
    if found.warnings.is_empty() {
        return Ok(Item::new("table", table, State::Exists, Vec::new()));
    }
    if check {
        return Ok(Item::new("table", table, State::Differs, found.warnings));
    }
    DynamoStore::enable_ttl(ddb, table).await?;
    Ok(Item::new(
        "table",
        table,
        State::Updated,
        vec!["enabled TTL on the attribute ttl".into()],
    ))
}

/// What `--queue`/`--bucket` ask for.
struct Queues {
    name: String,
    max_receive_count: u32,
    visibility_timeout_secs: u64,
    bucket: Option<String>,
}

impl Queues {
    fn dlq_name(&self) -> String {
        format!("{}-dlq", self.name)
    }

    /// What the redrive policy does, in words.
    fn redrive_detail(&self) -> String {
        format!(
            "redrive to {} after {} receives",
            self.dlq_name(),
            self.max_receive_count
        )
    }
}

fn sqs_failure<E, R>(e: &aws_sdk_sqs::error::SdkError<E, R>) -> AwsFailure
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    AwsFailure::from_sdk(e)
}

/// The queue's URL, or `None` when it does not exist.
async fn queue_url(sqs: &aws_sdk_sqs::Client, name: &str) -> anyhow::Result<Option<String>> {
    match sqs.get_queue_url().queue_name(name).send().await {
        Ok(out) => Ok(out.queue_url),
        Err(e) => {
            let code = e.as_service_error().and_then(|s| s.code()).unwrap_or("");
            if code == "QueueDoesNotExist" || code.ends_with("NonExistentQueue") {
                Ok(None)
            } else {
                Err(sqs_failure(&e)).with_context(|| format!("look up the queue {name}"))
            }
        }
    }
}

async fn queue_attributes(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
) -> anyhow::Result<HashMap<QueueAttributeName, String>> {
    let out = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::All)
        .send()
        .await
        .map_err(|e| sqs_failure(&e))
        .with_context(|| format!("read the attributes of {url}"))?;
    Ok(out.attributes.unwrap_or_default())
}

async fn create_queue(
    sqs: &aws_sdk_sqs::Client,
    name: &str,
    attributes: HashMap<QueueAttributeName, String>,
) -> anyhow::Result<String> {
    let out = sqs
        .create_queue()
        .queue_name(name)
        .set_attributes(Some(attributes))
        .send()
        .await
        .map_err(|e| sqs_failure(&e))
        .with_context(|| format!("create the queue {name}"))?;
    out.queue_url
        .with_context(|| format!("SQS returned no URL for {name}"))
}

async fn set_attribute(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
    name: QueueAttributeName,
    value: String,
) -> anyhow::Result<()> {
    sqs.set_queue_attributes()
        .queue_url(url)
        .attributes(name.clone(), value)
        .send()
        .await
        .map_err(|e| sqs_failure(&e))
        .with_context(|| format!("set {} of {url}", name.as_str()))?;
    Ok(())
}

/// The redrive policy the daemon's `max_receive_count` goes with.
fn redrive_policy(dlq_arn: &str, max_receive_count: u32) -> String {
    json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive_count}).to_string()
}

/// The queue-policy statement that lets `bucket` (in the queue's account) send its notifications.
fn bucket_statement(queue_arn: &str, bucket: &str) -> Value {
    let account = queue_arn.split(':').nth(4).unwrap_or_default();
    json!({
        "Sid": POLICY_SID,
        "Effect": "Allow",
        "Principal": {"Service": "s3.amazonaws.com"},
        "Action": "sqs:SendMessage",
        "Resource": queue_arn,
        "Condition": {
            "ArnEquals": {"aws:SourceArn": format!("arn:aws:s3:::{bucket}")},
            "StringEquals": {"aws:SourceAccount": account},
        },
    })
}

/// What in an existing redrive policy differs from the wanted one.
fn redrive_differences(policy: &str, dlq_arn: &str, max_receive_count: u32) -> Vec<String> {
    let Ok(found) = serde_json::from_str::<Value>(policy) else {
        return vec![format!("the redrive policy is not JSON: {policy}")];
    };
    let mut out = Vec::new();
    if found["deadLetterTargetArn"].as_str() != Some(dlq_arn) {
        out.push(format!(
            "the redrive policy sends to {}, not to {dlq_arn}",
            found["deadLetterTargetArn"]
        ));
    }
    // SQS answers the count as a string or a number depending on how it was set.
    let count = match &found["maxReceiveCount"] {
        Value::String(s) => s.parse::<u64>().ok(),
        v => v.as_u64(),
    };
    if count != Some(u64::from(max_receive_count)) {
        out.push(format!(
            "the redrive policy's maxReceiveCount is {}, but daemon.max_receive_count is {max_receive_count}: set them equal",
            found["maxReceiveCount"]
        ));
    }
    out
}

/// The dead-letter queue, the intake queue and, with a bucket, its notification.
async fn queues(
    sqs: &aws_sdk_sqs::Client,
    s3: &aws_sdk_s3::Client,
    wanted: &Queues,
    check: bool,
) -> anyhow::Result<Vec<Item>> {
    let dlq_name = wanted.dlq_name();
    let (dlq_url, dlq) = dead_letter_queue(sqs, &dlq_name, check).await?;
    let mut items = vec![dlq];
    let Some(dlq_url) = dlq_url else {
        // `--check` without the dead-letter queue: the queue cannot be as needed either.
        let state = if queue_url(sqs, &wanted.name).await?.is_some() {
            State::Differs
        } else {
            State::Missing
        };
        let why = vec![format!("its dead-letter queue {dlq_name} is missing")];
        items.push(Item::new("queue", &wanted.name, state, why));
        return Ok(items);
    };
    let dlq_arn = queue_attributes(sqs, &dlq_url)
        .await?
        .remove(&QueueAttributeName::QueueArn)
        .context("SQS returned no ARN for the dead-letter queue")?;
    let (queue_arn, item) = match queue_url(sqs, &wanted.name).await? {
        None if check => {
            items.push(Item::new("queue", &wanted.name, State::Missing, Vec::new()));
            if let Some(bucket) = &wanted.bucket {
                items.push(Item::new(
                    "bucket notification",
                    bucket,
                    State::Missing,
                    Vec::new(),
                ));
            }
            return Ok(items);
        }
        None => create_intake_queue(sqs, wanted, &dlq_arn).await?,
        Some(url) => existing_intake_queue(sqs, wanted, &url, &dlq_arn, check).await?,
    };
    items.push(item);
    if let Some(bucket) = &wanted.bucket {
        items.push(bucket_notification(s3, bucket, &queue_arn, check).await?);
    }
    Ok(items)
}

/// The dead-letter queue's URL (`None` when it is missing and `check` forbids creating it), and
/// its item.
async fn dead_letter_queue(
    sqs: &aws_sdk_sqs::Client,
    dlq_name: &str,
    check: bool,
) -> anyhow::Result<(Option<String>, Item)> {
    let resource = "dead-letter queue";
    match queue_url(sqs, dlq_name).await? {
        Some(url) => Ok((
            Some(url),
            Item::new(resource, dlq_name, State::Exists, Vec::new()),
        )),
        None if check => Ok((None, Item::new(resource, dlq_name, State::Missing, Vec::new()))),
        None => {
            let attributes = HashMap::from([(
                QueueAttributeName::MessageRetentionPeriod,
                DLQ_RETENTION_SECS.to_string(),
            )]);
            let url = create_queue(sqs, dlq_name, attributes).await?;
            let details = vec!["retention 14 days".into()];
            Ok((Some(url), Item::new(resource, dlq_name, State::Created, details)))
        }
    }
}

/// Creates the intake queue with its redrive policy and, with a bucket, the policy statement that
/// lets the bucket send; its ARN and item.
async fn create_intake_queue(
    sqs: &aws_sdk_sqs::Client,
    wanted: &Queues,
    dlq_arn: &str,
) -> anyhow::Result<(String, Item)> {
    let attributes = HashMap::from([
        (
            QueueAttributeName::RedrivePolicy,
            redrive_policy(dlq_arn, wanted.max_receive_count),
        ),
        (
            QueueAttributeName::VisibilityTimeout,
            wanted.visibility_timeout_secs.to_string(),
        ),
    ]);
    let url = create_queue(sqs, &wanted.name, attributes).await?;
    let arn = queue_attributes(sqs, &url)
        .await?
        .remove(&QueueAttributeName::QueueArn)
        .context("SQS returned no ARN for the queue")?;
    let mut details = vec![wanted.redrive_detail()];
    if let Some(bucket) = &wanted.bucket {
        let policy = json!({"Version": "2012-10-17", "Statement": [bucket_statement(&arn, bucket)]});
        set_attribute(sqs, &url, QueueAttributeName::Policy, policy.to_string()).await?;
        details.push(format!("policy lets the bucket {bucket} send"));
    }
    Ok((arn, Item::new("queue", &wanted.name, State::Created, details)))
}

/// What an existing intake queue lacks (added unless `check`) or has otherwise (reported); its ARN
/// and item.
async fn existing_intake_queue(
    sqs: &aws_sdk_sqs::Client,
    wanted: &Queues,
    url: &str,
    dlq_arn: &str,
    check: bool,
) -> anyhow::Result<(String, Item)> {
    let mut attributes = queue_attributes(sqs, url).await?;
    let arn = attributes
        .remove(&QueueAttributeName::QueueArn)
        .context("SQS returned no ARN for the queue")?;
    let mut differs = Vec::new();
    let mut added = Vec::new();
    match attributes.get(&QueueAttributeName::RedrivePolicy) {
        Some(found) => differs.extend(redrive_differences(found, dlq_arn, wanted.max_receive_count)),
        None if check => differs.push("it has no redrive policy".into()),
        None => {
            let redrive = redrive_policy(dlq_arn, wanted.max_receive_count);
            set_attribute(sqs, url, QueueAttributeName::RedrivePolicy, redrive).await?;
            added.push(wanted.redrive_detail());
        }
    }
    if let Some(bucket) = &wanted.bucket {
        let statement = bucket_statement(&arn, bucket);
        match attributes.get(&QueueAttributeName::Policy) {
            Some(policy) => differs.extend(policy_difference(policy, &statement, bucket)),
            None if check => differs.push(format!("it has no policy letting the bucket {bucket} send")),
            None => {
                let policy = json!({"Version": "2012-10-17", "Statement": [statement]});
                set_attribute(sqs, url, QueueAttributeName::Policy, policy.to_string()).await?;
                added.push(format!("policy lets the bucket {bucket} send"));
            }
        }
    }
    let item = if !differs.is_empty() {
        Item::new("queue", &wanted.name, State::Differs, differs)
    } else if !added.is_empty() {
        Item::new("queue", &wanted.name, State::Updated, added)
    } else {
        Item::new("queue", &wanted.name, State::Exists, Vec::new())
    };
    Ok((arn, item))
}

/// Why an existing queue policy does not let the bucket send (`None` when it does).
fn policy_difference(policy: &str, statement: &Value, bucket: &str) -> Option<String> {
    let found: Value = serde_json::from_str(policy).unwrap_or(Value::Null);
    let has = found["Statement"]
        .as_array()
        .is_some_and(|s| s.iter().any(|st| st == statement));
    (!has).then(|| {
        format!(
            "its policy has no statement {POLICY_SID} letting the bucket {bucket} send (s3.amazonaws.com, sqs:SendMessage, aws:SourceArn and aws:SourceAccount)"
        )
    })
}

/// The `train/` + `.json` filter rules of a queue configuration, lower-cased names.
fn filter_rules(c: &QueueConfiguration) -> (Option<String>, Option<String>) {
    let rules = c
        .filter()
        .and_then(|f| f.key())
        .map(|k| k.filter_rules())
        .unwrap_or_default();
    let find = |name: &str| {
        rules
            .iter()
            .find(|r| r.name().is_some_and(|n| n.as_str().eq_ignore_ascii_case(name)))
            .and_then(|r| r.value().map(str::to_string))
    };
    (find("prefix"), find("suffix"))
}

/// Whether a queue configuration sends every `train/**.json` creation.
fn sends_train_json(c: &QueueConfiguration) -> Result<(), String> {
    let events: Vec<&str> = c.events().iter().map(Event::as_str).collect();
    if !events.contains(&"s3:ObjectCreated:*") {
        return Err(format!("it sends {events:?}, not s3:ObjectCreated:*"));
    }
    match filter_rules(c) {
        (Some(p), Some(s)) if p == TRAIN_PREFIX && s == TRAIN_SUFFIX => Ok(()),
        (p, s) => Err(format!(
            "its filter is prefix {p:?} suffix {s:?}, not prefix \"{TRAIN_PREFIX}\" suffix \"{TRAIN_SUFFIX}\""
        )),
    }
}

/// Whether a failed read is a 200 answer holding one empty element: moto answers a bucket without
/// notifications with `<GetBucketNotificationResponse/>`, which the SDK refuses to parse; an empty
/// answer means "no notifications" whatever its root is called.
fn empty_answer<E>(e: &aws_sdk_s3::error::SdkError<E, aws_smithy_runtime_api::http::Response>) -> bool {
    let Some(raw) = e.raw_response() else {
        return false;
    };
    let body = raw
        .body()
        .bytes()
        .map(String::from_utf8_lossy)
        .unwrap_or_default();
    let body = body.trim();
    let element = body
        .strip_prefix("<?xml")
        .and_then(|rest| rest.split_once("?>"))
        .map_or(body, |(_, rest)| rest.trim());
    raw.status().as_u16() == 200
        && element.starts_with('<')
        && element.ends_with("/>")
        && element.matches('<').count() == 1
}

type BucketNotifications =
    aws_sdk_s3::operation::get_bucket_notification_configuration::GetBucketNotificationConfigurationOutput;

/// The bucket's notifications; `Err(item)` when the bucket does not exist.
async fn read_notifications(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
) -> anyhow::Result<Result<BucketNotifications, Item>> {
    match s3
        .get_bucket_notification_configuration()
        .bucket(bucket)
        .send()
        .await
    {
        Ok(c) => Ok(Ok(c)),
        Err(e) if e.code() == Some("NoSuchBucket") => Ok(Err(Item::new(
            "bucket notification",
            bucket,
            State::Missing,
            vec!["the bucket does not exist; setup does not create data buckets".into()],
        ))),
        Err(e) if empty_answer(&e) => Ok(Ok(BucketNotifications::builder().build())),
        Err(e) => Err(AwsFailure::from_sdk(&e))
            .with_context(|| format!("read the notifications of the bucket {bucket}")),
    }
}

/// The bucket's notifications with ours added: the put replaces the whole configuration, so every
/// notification the bucket already has is kept.
fn with_ours(current: &BucketNotifications, queue_arn: &str) -> anyhow::Result<NotificationConfiguration> {
    let rule = |name, value: &str| FilterRule::builder().name(name).value(value).build();
    let filter = S3KeyFilter::builder()
        .filter_rules(rule(FilterRuleName::Prefix, TRAIN_PREFIX))
        .filter_rules(rule(FilterRuleName::Suffix, TRAIN_SUFFIX))
        .build();
    let ours = QueueConfiguration::builder()
        .id(NOTIFICATION_ID)
        .queue_arn(queue_arn)
        .events(Event::S3ObjectCreated)
        // For daemon.delete_removed_groups (otherwise a removal is only noted).
        .events(Event::S3ObjectRemoved)
        .filter(NotificationConfigurationFilter::builder().key(filter).build())
        .build()
        .context("build the queue configuration")?;
    let mut queue_configurations = current.queue_configurations().to_vec();
    queue_configurations.push(ours);
    Ok(NotificationConfiguration::builder()
        .set_queue_configurations(Some(queue_configurations))
        .set_topic_configurations(current.topic_configurations.clone())
        .set_lambda_function_configurations(current.lambda_function_configurations.clone())
        .set_event_bridge_configuration(current.event_bridge_configuration.clone())
        .build())
}

async fn bucket_notification(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    queue_arn: &str,
    check: bool,
) -> anyhow::Result<Item> {
    let resource = "bucket notification";
    let current = match read_notifications(s3, bucket).await? {
        Ok(current) => current,
        Err(missing) => return Ok(missing),
    };
    let ours: Vec<&QueueConfiguration> = current
        .queue_configurations()
        .iter()
        .filter(|c| c.queue_arn() == queue_arn)
        .collect();
    if ours.iter().any(|c| sends_train_json(c).is_ok()) {
        return Ok(Item::new(resource, bucket, State::Exists, Vec::new()));
    }
    if let Some(c) = ours.first() {
        let why = sends_train_json(c).err().unwrap_or_default();
        return Ok(Item::new(
            resource,
            bucket,
            State::Differs,
            vec![format!("the notification to {queue_arn}: {why}")],
        ));
    }
    if check {
        return Ok(Item::new(
            resource,
            bucket,
            State::Missing,
            vec![format!("no notification to {queue_arn}")],
        ));
    }
    s3.put_bucket_notification_configuration()
        .bucket(bucket)
        .notification_configuration(with_ours(&current, queue_arn)?)
        .send()
        .await
        .map_err(|e| AwsFailure::from_sdk(&e))
        .with_context(|| format!("add the notification to the bucket {bucket}"))?;
    Ok(Item::new(
        resource,
        bucket,
        State::Created,
        vec![format!(
            "s3:ObjectCreated:* and s3:ObjectRemoved:* on {TRAIN_PREFIX}*{TRAIN_SUFFIX} to {queue_arn}"
        )],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redrive_policies_are_compared_by_target_and_count() {
        let dlq = "arn:aws:sqs:us-east-1:1:q-dlq";
        assert!(redrive_differences(&redrive_policy(dlq, 5), dlq, 5).is_empty());
        assert!(
            redrive_differences(
                r#"{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:1:q-dlq","maxReceiveCount":"5"}"#,
                dlq,
                5
            )
            .is_empty()
        );
        let both = redrive_differences(
            r#"{"deadLetterTargetArn":"arn:other","maxReceiveCount":3}"#,
            dlq,
            5,
        );
        assert_eq!(both.len(), 2, "{both:?}");
        assert!(both[1].contains("daemon.max_receive_count is 5"), "{both:?}");
        assert_eq!(redrive_differences("nope", dlq, 5).len(), 1);
    }

    #[test]
    fn the_bucket_statement_is_limited_to_the_bucket_and_the_account() {
        let s = bucket_statement("arn:aws:sqs:eu-west-1:123456789012:intake", "data");
        assert_eq!(s["Condition"]["ArnEquals"]["aws:SourceArn"], "arn:aws:s3:::data");
        assert_eq!(
            s["Condition"]["StringEquals"]["aws:SourceAccount"],
            "123456789012"
        );
        assert_eq!(s["Action"], "sqs:SendMessage");
    }
}
