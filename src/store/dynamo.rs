//! The daemon's state store: one DynamoDB table, every decision a conditional write.
//!
//! Layout (also in the README, "State table"): partition key `pk`, sort key `sk`, both strings.
//! - `group#<name>` / `group`: desired state, observed state, lease and due time of one group.
//! - `group#<name>` / `schedule#<schedule>`: a schedule of the group.
//! - `claim#<group>#<schedule>` / `fire#<epoch ms>`: a fire claim, deleted by the `ttl` attribute.
//! - `jobname#<job name>` / `claim`: the claim on an account-wide Personalize job name, with the ARN
//!   it is for (`owner`), deleted by the `ttl` attribute.
//! - `schedule-changes` / `<epoch ms, 15 digits>#<group>`: a change of the group's schedule set,
//!   written in the change's transaction, read by the timers' reloads, deleted by the `ttl` attribute
//!   a day later.
//! - `outbox` / `<group>#<notification id>`: a notification not delivered yet, or dropped (then deleted
//!   by the `ttl` attribute). One partition: pending items are few and every replica drains them all.
//!
//! A sparse global secondary index `due-index` (`due_shard`, `due_at`, projecting the lease owner and
//! expiry) finds due, unleased groups without a scan. Its partition says what kind of work is due:
//! `new` for a group whose desired generation is newer than its observed one (written by
//! `put_desired`, left by an observation of an older generation), `due` for everything else (set
//! back by the observation of the desired generation). The due listing reads `new` first, so a new
//! file is started before any backlog of polls and resyncs, with its true due time.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, CancellationReason, ConditionCheck,
    GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType, Put, ReturnValue,
    ReturnValuesOnConditionCheckFailure, ScalarAttributeType, TableStatus, TimeToLiveSpecification,
    TimeToLiveStatus, TransactWriteItem, Update,
};
use chrono::{DateTime, Utc};

use super::clock::{from_millis, plus, to_millis};
use super::model::{Arrival, classify, valid_until};
use super::outbox::{DROPPED_RETENTION, capped};
use super::{
    Acquire, BeginFire, ClaimInfo, Clock, DEFAULT_MAX_CLOCK_SKEW, Desired, DesiredSource, FireClaim,
    FireOutcome, GroupState, GroupSummary, Lease, LeaseGrant, LeaseInfo, NewDesired, NotificationStore,
    Observed, ObservedWrite, PUT_DESIRED_ATTEMPTS, PutDesired, Schedule, ScheduleMarks, StateStore,
    StoreError, StoredNotification, SystemClock, check_desired_size, check_name, observed_json, outcome_json,
    parse_observed, parse_outcome, run_timestamp,
};
use super::{DueGroup, GroupBrief, ObservedState};
use crate::aws::AwsFailure;
use crate::objects::ObjectUrl;

/// Name of the sparse index of due groups.
pub const DUE_INDEX: &str = "due-index";
/// The partition of the due index for polls, resyncs, retries and marks: due groups are few and
/// read together.
const DUE_SHARD: &str = "due";
/// The partition of the due index for groups with a new file (desired generation newer than the
/// observed one), read before [`DUE_SHARD`].
const NEW_SHARD: &str = "new";
/// The sort key of a group item.
const GROUP_SK: &str = "group";

/// The attribute DynamoDB's TTL reads (epoch seconds; set on fire and job name claims, change items
/// and dropped notifications).
const TTL_ATTRIBUTE: &str = "ttl";

/// The partition of schedule-change items: one, so that a reload reads the changes since an instant
/// with one query on the sort key. Written only when a schedule set changes (not on fires).
const CHANGES_PK: &str = "schedule-changes";

/// How long a schedule-change item is kept: far beyond any reload interval.
const CHANGES_KEPT: Duration = Duration::from_secs(24 * 3600);

/// How a table compares with what the service needs ([`DynamoStore::check_table`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableCheck {
    /// Whether the table exists at all.
    pub exists: bool,
    /// What makes the table unusable by the service (wrong keys, no due index, …); empty when usable.
    pub problems: Vec<String>,
    /// What the service can live with but should not (TTL off).
    pub warnings: Vec<String>,
}

impl TableCheck {
    fn missing() -> Self {
        Self {
            exists: false,
            problems: vec!["the table does not exist".into()],
            warnings: Vec::new(),
        }
    }

    /// Whether the daemon can run on the table.
    pub fn usable(&self) -> bool {
        self.exists && self.problems.is_empty()
    }
}

/// The key schema as `name (TYPE, HASH|RANGE)` pairs, for comparison and messages.
fn keys_text(keys: &[KeySchemaElement], attributes: &[AttributeDefinition]) -> String {
    keys.iter()
        .map(|k| {
            let name = k.attribute_name();
            let kind = attributes
                .iter()
                .find(|a| a.attribute_name() == name)
                .map_or("?", |a| a.attribute_type().as_str());
            format!("{name} ({kind}, {})", k.key_type().as_str())
        })
        .collect::<Vec<_>>()
        .join(" + ")
}

/// What in a described table differs from [`DynamoStore::create_table`]'s layout in a way the
/// service cannot work with.
fn table_problems(t: &aws_sdk_dynamodb::types::TableDescription) -> Vec<String> {
    const TABLE_KEYS: &str = "pk (S, HASH) + sk (S, RANGE)";
    const INDEX_KEYS: &str = "due_shard (S, HASH) + due_at (N, RANGE)";
    let mut problems = Vec::new();
    let attributes = t.attribute_definitions();
    let keys = keys_text(t.key_schema(), attributes);
    if keys != TABLE_KEYS {
        problems.push(format!(
            "the key schema is {keys}; the service needs {TABLE_KEYS}"
        ));
    }
    match t.table_status() {
        Some(TableStatus::Active | TableStatus::Updating) | None => {}
        Some(other) => problems.push(format!("the table is {}, not ACTIVE", other.as_str())),
    }
    let index = t
        .global_secondary_indexes()
        .iter()
        .find(|i| i.index_name() == Some(DUE_INDEX));
    let Some(index) = index else {
        problems.push(format!(
            "there is no global secondary index {DUE_INDEX} ({INDEX_KEYS}, projecting lease_owner and lease_expires_at)"
        ));
        return problems;
    };
    let index_keys = keys_text(index.key_schema(), attributes);
    if index_keys != INDEX_KEYS {
        problems.push(format!(
            "the index {DUE_INDEX} has the keys {index_keys}; the service needs {INDEX_KEYS}"
        ));
    }
    let projection = index.projection();
    let projected = |attr: &str| match projection.and_then(|p| p.projection_type()) {
        Some(ProjectionType::All) => true,
        Some(ProjectionType::Include) => {
            projection.is_some_and(|p| p.non_key_attributes().iter().any(|a| a == attr))
        }
        _ => false,
    };
    let missing: Vec<&str> = ["lease_owner", "lease_expires_at"]
        .into_iter()
        .filter(|a| !projected(a))
        .collect();
    if !missing.is_empty() {
        problems.push(format!(
            "the index {DUE_INDEX} does not project {}",
            missing.join(", ")
        ));
    }
    problems
}

type Item = HashMap<String, AttributeValue>;

/// The attributes of a group listing (the filter needs `sk`).
pub const SUMMARY_ATTRIBUTES: [&str; 11] = [
    "pk",
    "sk",
    "group",
    "desired_generation",
    "desired_bucket",
    "desired_key",
    "observed",
    "lease_owner",
    "lease_epoch",
    "lease_expires_at",
    "due_at",
];

/// The attributes of the resync's listing ([`StateStore::list_briefs`]): the observation's
/// generation and state, written beside its JSON by every write of it, and the desired source's
/// fields; neither the parameter file nor the observation.
pub const BRIEF_ATTRIBUTES: [&str; 13] = [
    "pk",
    "sk",
    "group",
    "desired_generation",
    "desired_bucket",
    "desired_key",
    "desired_etag",
    "desired_version_id",
    "desired_sequencer",
    "desired_last_modified",
    "observed_generation",
    "observed_state",
    "due_at",
];

/// The state store in a DynamoDB table (see the module documentation for the layout).
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
    clock: Arc<dyn Clock>,
    /// Margin taken off every lease's local validity ([`Lease::valid_until`]).
    max_clock_skew: Duration,
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn group_pk(group: &str) -> String {
    format!("group#{group}")
}

fn claim_key(group: &str, schedule: &str, fire_time: DateTime<Utc>) -> (String, String) {
    (
        format!("claim#{group}#{schedule}"),
        format!("fire#{}", to_millis(fire_time)),
    )
}

fn key(pk: impl Into<String>, sk: impl Into<String>) -> Item {
    HashMap::from([("pk".to_string(), s(pk)), ("sk".to_string(), s(sk))])
}

fn get_s(item: &Item, name: &str) -> Option<String> {
    item.get(name).and_then(|v| v.as_s().ok()).cloned()
}

fn get_i64(item: &Item, name: &str) -> Option<i64> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse::<i64>().ok())
}

fn get_u64(item: &Item, name: &str) -> Option<u64> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse::<u64>().ok())
}

/// Whether an SDK error is a failed condition (plain or inside a cancelled transaction).
fn is_condition_failure<E, R>(e: &SdkError<E, R>) -> bool
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    e.as_service_error().and_then(|s| s.code()) == Some("ConditionalCheckFailedException")
}

/// Why each item of a cancelled transaction failed (empty for other errors).
fn cancellation_reasons<R>(e: &SdkError<TransactWriteItemsError, R>) -> Vec<CancellationReason> {
    match e.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(t)) => t.cancellation_reasons().to_vec(),
        _ => Vec::new(),
    }
}

/// Whether the transaction's item `index` failed its condition.
fn condition_failed(reasons: &[CancellationReason], index: usize) -> bool {
    reasons.get(index).and_then(|r| r.code()) == Some("ConditionalCheckFailed")
}

/// An update expression built from optional values: `Some` is `SET`, `None` is `REMOVE`.
#[derive(Default)]
struct UpdateBuilder {
    sets: Vec<String>,
    removes: Vec<String>,
    adds: Vec<String>,
    names: HashMap<String, String>,
    values: Item,
}

impl UpdateBuilder {
    /// `SET #attr = :attr`; attribute names are aliased so reserved words (`group`) are safe.
    fn set(mut self, attr: &str, value: AttributeValue) -> Self {
        self.sets.push(format!("#{attr} = :{attr}"));
        self.value(&format!(":{attr}"), value).name(attr)
    }

    fn set_opt(self, attr: &str, value: Option<AttributeValue>) -> Self {
        match value {
            Some(v) => self.set(attr, v),
            None => self.remove(attr),
        }
    }

    /// `SET #attr = if_not_exists(#attr, :attr)`: written only where the item has no such attribute.
    fn set_if_absent(mut self, attr: &str, value: AttributeValue) -> Self {
        self.sets
            .push(format!("#{attr} = if_not_exists(#{attr}, :{attr})"));
        self.value(&format!(":{attr}"), value).name(attr)
    }

    /// `SET` the observed JSON and, beside it, what a listing needs of it without reading it
    /// (`observed_generation`, `observed_state`: see [`BRIEF_ATTRIBUTES`]).
    fn observed(self, json: String, observed: &Observed) -> Self {
        self.set("observed", s(json))
            .set("observed_generation", n(observed.generation))
            .set("observed_state", s(ObservedState::of(observed).as_str()))
    }

    fn remove(mut self, attr: &str) -> Self {
        self.removes.push(format!("#{attr}"));
        self.name(attr)
    }

    fn add(mut self, attr: &str, value: AttributeValue) -> Self {
        self.adds.push(format!("#{attr} :{attr}"));
        self.value(&format!(":{attr}"), value).name(attr)
    }

    /// An attribute named by the condition (or by the other methods), aliased as `#attr`.
    fn name(mut self, attr: &str) -> Self {
        self.names.insert(format!("#{attr}"), attr.to_string());
        self
    }

    /// A value only used by the condition.
    fn value(mut self, placeholder: &str, value: AttributeValue) -> Self {
        self.values.insert(placeholder.to_string(), value);
        self
    }

    fn expression(&self) -> String {
        let mut parts = Vec::new();
        if !self.sets.is_empty() {
            parts.push(format!("SET {}", self.sets.join(", ")));
        }
        if !self.removes.is_empty() {
            parts.push(format!("REMOVE {}", self.removes.join(", ")));
        }
        if !self.adds.is_empty() {
            parts.push(format!("ADD {}", self.adds.join(", ")));
        }
        parts.join(" ")
    }
}

/// Condition placeholders used with [`UpdateBuilder`]: `#lease_owner`/`#lease_epoch` are aliased by
/// [`with_lease_names`].
const LEASE_IS_MINE: &str = "#lease_owner = :me AND #lease_epoch = :epoch";

/// Observed state of the desired generation (or a newer one): its next due time may be written.
const NOT_OLDER_THAN_DESIRED: &str =
    "(attribute_not_exists(#desired_generation) OR #desired_generation <= :generation)";
/// Observed state of an older generation than the desired one: the group stays due now.
const OLDER_THAN_DESIRED: &str = "#desired_generation > :generation";
/// No scheduled action was begun since the writer read the group's `fires_begun` (`:fires_begun`).
const NO_FIRE_SINCE: &str = "(attribute_not_exists(#fires_begun) OR #fires_begun <= :fires_begun)";
/// One was: the group stays due now, so the action does not wait for the next poll.
const FIRE_SINCE: &str = "#fires_begun > :fires_begun";

fn with_lease_names(b: UpdateBuilder, lease: &Lease) -> UpdateBuilder {
    b.name("lease_owner")
        .name("lease_epoch")
        .value(":me", s(lease.owner.clone()))
        .value(":epoch", n(lease.epoch))
}

impl DynamoStore {
    /// A store on an existing table (see [`DynamoStore::create_table`]), with the wall clock.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            clock: Arc::new(SystemClock),
            max_clock_skew: DEFAULT_MAX_CLOCK_SKEW,
        }
    }

    /// Uses `clock` for "now": lease expiry is decided by the `:now` the client sends.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The largest clock difference between replicas (`daemon.max_clock_skew_secs`); leases stop
    /// being valid that much before their duration is up ([`Lease::is_valid`]).
    pub fn with_max_clock_skew(mut self, max_clock_skew: Duration) -> Self {
        self.max_clock_skew = max_clock_skew;
        self
    }

    /// Creates the table as documented (on-demand billing, the due index, TTL on `ttl`) and waits until
    /// it is active.
    ///
    /// # Errors
    /// `Backend` when a call fails or the table is not active within a minute.
    pub async fn create_table(client: &Client, table: &str) -> Result<(), StoreError> {
        let attr = |name: &str, kind: ScalarAttributeType| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(kind)
                .build()
        };
        let key_elem = |name: &str, kind: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kind)
                .build()
        };
        let built = |e: aws_sdk_dynamodb::error::BuildError| StoreError::backend("create table", table, e);
        let index = GlobalSecondaryIndex::builder()
            .index_name(DUE_INDEX)
            .key_schema(key_elem("due_shard", KeyType::Hash).map_err(built)?)
            .key_schema(key_elem("due_at", KeyType::Range).map_err(built)?)
            // The lease attributes ride along so that due_groups can leave out leased groups.
            .projection(
                Projection::builder()
                    .projection_type(ProjectionType::Include)
                    .non_key_attributes("lease_owner")
                    .non_key_attributes("lease_expires_at")
                    .build(),
            )
            .build()
            .map_err(built)?;
        client
            .create_table()
            .table_name(table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attr("pk", ScalarAttributeType::S).map_err(built)?)
            .attribute_definitions(attr("sk", ScalarAttributeType::S).map_err(built)?)
            .attribute_definitions(attr("due_shard", ScalarAttributeType::S).map_err(built)?)
            .attribute_definitions(attr("due_at", ScalarAttributeType::N).map_err(built)?)
            .key_schema(key_elem("pk", KeyType::Hash).map_err(built)?)
            .key_schema(key_elem("sk", KeyType::Range).map_err(built)?)
            .global_secondary_indexes(index)
            .send()
            .await
            .map_err(|e| StoreError::backend("create table", table, AwsFailure::from_sdk(&e)))?;
        for _ in 0..120 {
            let described = client
                .describe_table()
                .table_name(table)
                .send()
                .await
                .map_err(|e| StoreError::backend("describe table", table, AwsFailure::from_sdk(&e)))?;
            if described.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
                return Self::enable_ttl(client, table).await;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        Err(StoreError::backend(
            "create table",
            table,
            AwsFailure("the table did not become ACTIVE within a minute".into()),
        ))
    }

    /// Turns on TTL on the `ttl` attribute, which deletes expired fire claims.
    ///
    /// # Errors
    /// `Backend` when the call fails.
    pub async fn enable_ttl(client: &Client, table: &str) -> Result<(), StoreError> {
        let spec = TimeToLiveSpecification::builder()
            .enabled(true)
            .attribute_name(TTL_ATTRIBUTE)
            .build()
            .map_err(|e| StoreError::backend("enable TTL on", table, e))?;
        client
            .update_time_to_live()
            .table_name(table)
            .time_to_live_specification(spec)
            .send()
            .await
            .map_err(|e| StoreError::backend("enable TTL on", table, AwsFailure::from_sdk(&e)))?;
        Ok(())
    }

    /// Compares the table with what the service needs ([`DynamoStore::create_table`]'s layout).
    /// Read-only: `DescribeTable` and `DescribeTimeToLive`.
    ///
    /// # Errors
    /// `Backend` when a call fails for another reason than a missing table.
    pub async fn check_table(client: &Client, table: &str) -> Result<TableCheck, StoreError> {
        let described = match client.describe_table().table_name(table).send().await {
            Ok(out) => out,
            Err(e)
                if e.as_service_error().is_some_and(
                    aws_sdk_dynamodb::operation::describe_table::DescribeTableError::is_resource_not_found_exception,
                ) =>
            {
                return Ok(TableCheck::missing());
            }
            Err(e) => return Err(StoreError::backend("describe table", table, AwsFailure::from_sdk(&e))),
        };
        let Some(description) = described.table() else {
            return Ok(TableCheck::missing());
        };
        let mut check = TableCheck {
            exists: true,
            problems: table_problems(description),
            warnings: Vec::new(),
        };
        let ttl = client
            .describe_time_to_live()
            .table_name(table)
            .send()
            .await
            .map_err(|e| StoreError::backend("describe TTL of", table, AwsFailure::from_sdk(&e)))?;
        let ttl = ttl.time_to_live_description();
        let on = ttl
            .and_then(|d| d.time_to_live_status())
            .is_some_and(|s| matches!(s, TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling));
        if !on || ttl.and_then(|d| d.attribute_name()) != Some(TTL_ATTRIBUTE) {
            check.warnings.push(format!(
                "TTL is not enabled on the attribute {TTL_ATTRIBUTE}: expired fire claims are never deleted"
            ));
        }
        Ok(check)
    }

    fn fail<E, R>(&self, op: &'static str, what: impl Into<String>, e: &SdkError<E, R>) -> StoreError
    where
        E: std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        StoreError::backend(
            op,
            format!("{} in table {}", what.into(), self.table),
            AwsFailure::from_sdk(e),
        )
    }

    async fn get_item(&self, pk: String, sk: &str, what: &str) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.fail("read", what, &e))?;
        Ok(out.item)
    }

    /// An update of one item; `Ok(false)` when the condition failed.
    async fn update(
        &self,
        op: &'static str,
        what: &str,
        item_key: Item,
        b: UpdateBuilder,
        condition: Option<&str>,
    ) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(item_key))
            .update_expression(b.expression())
            .set_condition_expression(condition.map(str::to_string))
            .set_expression_attribute_names(Some(b.names))
            .set_expression_attribute_values((!b.values.is_empty()).then_some(b.values))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failure(&e) => Ok(false),
            Err(e) => Err(self.fail(op, what, &e)),
        }
    }

    /// The common update of a group item: the `group` and `due_shard` attributes are always present so
    /// the item can be listed and indexed. The shard is only set where missing: which one a group is
    /// in is `put_desired`'s and `put_observed`'s to say.
    fn group_update(group: &str) -> UpdateBuilder {
        UpdateBuilder::default()
            .set("group", s(group))
            .set_if_absent("due_shard", s(DUE_SHARD))
    }

    /// Pages through a scan or query, collecting items.
    /// `projection` lists the attributes to return (all when `None`); names are aliased as `#name`.
    async fn scan_all(
        &self,
        filter: &str,
        values: Item,
        projection: Option<&[&str]>,
        what: &str,
    ) -> Result<Vec<Item>, StoreError> {
        self.scan_pages(filter, values, projection, what, true).await
    }

    /// As [`DynamoStore::scan_all`]; `consistent: false` reads eventually consistent, at half the
    /// read units.
    async fn scan_pages(
        &self,
        filter: &str,
        values: Item,
        projection: Option<&[&str]>,
        what: &str,
        consistent: bool,
    ) -> Result<Vec<Item>, StoreError> {
        let (expression, names) = match projection {
            Some(attrs) => (
                Some(
                    attrs
                        .iter()
                        .map(|a| format!("#{a}"))
                        .collect::<Vec<_>>()
                        .join(", "),
                ),
                Some(
                    attrs
                        .iter()
                        .map(|a| (format!("#{a}"), (*a).to_string()))
                        .collect::<HashMap<_, _>>(),
                ),
            ),
            None => (None, None),
        };
        let mut out = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let page = self
                .client
                .scan()
                .table_name(&self.table)
                .filter_expression(filter)
                .set_projection_expression(expression.clone())
                .set_expression_attribute_names(names.clone())
                .set_expression_attribute_values(Some(values.clone()))
                .set_exclusive_start_key(start.take())
                .consistent_read(consistent)
                .send()
                .await
                .map_err(|e| self.fail("scan", what, &e))?;
            out.extend(page.items.unwrap_or_default());
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(out),
            }
        }
    }

    /// Every group item, with `projection`.
    async fn scan_groups(&self, projection: &[&str], consistent: bool) -> Result<Vec<Item>, StoreError> {
        let values = HashMap::from([(":sk".into(), s(GROUP_SK))]);
        self.scan_pages("#sk = :sk", values, Some(projection), "groups", consistent)
            .await
    }

    /// Every item of a consistent `Query` on the table's keys, all pages.
    async fn query_all(&self, condition: &str, values: Item, what: &str) -> Result<Vec<Item>, StoreError> {
        let mut out = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression(condition)
                .set_expression_attribute_values(Some(values.clone()))
                .set_exclusive_start_key(start.take())
                .consistent_read(true)
                .send()
                .await
                .map_err(|e| self.fail("query", what, &e))?;
            out.extend(page.items.unwrap_or_default());
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(out),
            }
        }
    }

    /// Due groups that are free, expired, or leased by `owner`: the [`NEW_SHARD`] partition of the
    /// index first, then [`DUE_SHARD`] for the rest of `limit`. The index projects the lease
    /// attributes, so the filter runs on the index (the rule of `acquire_lease`).
    async fn due(&self, owner: Option<&str>, limit: usize) -> Result<Vec<DueGroup>, StoreError> {
        let mut out = Vec::new();
        for shard in [NEW_SHARD, DUE_SHARD] {
            if out.len() >= limit {
                break;
            }
            let names = self.due_in(shard, owner, limit - out.len()).await?;
            out.extend(names.into_iter().map(|name| DueGroup {
                name,
                new_file: shard == NEW_SHARD,
            }));
        }
        Ok(out)
    }

    /// Up to `limit` due groups of one partition of the due index, earliest due first.
    async fn due_in(
        &self,
        shard: &str,
        owner: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        let now = to_millis(self.clock.now());
        let mut filter =
            "attribute_not_exists(lease_owner) OR attribute_not_exists(lease_expires_at) OR lease_expires_at < :now"
                .to_string();
        if owner.is_some() {
            filter.push_str(" OR lease_owner = :me");
        }
        let mut out = Vec::new();
        let mut start: Option<Item> = None;
        while out.len() < limit {
            let mut query = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(DUE_INDEX)
                .key_condition_expression("due_shard = :shard AND due_at <= :now")
                .filter_expression(&filter)
                .expression_attribute_values(":shard", s(shard))
                .expression_attribute_values(":now", n(now))
                .set_exclusive_start_key(start.take());
            if let Some(me) = owner {
                query = query.expression_attribute_values(":me", s(me));
            }
            let page = query
                .send()
                .await
                .map_err(|e| self.fail("query", "due groups", &e))?;
            for item in page.items() {
                if let Some(name) =
                    get_s(item, "pk").and_then(|pk| pk.strip_prefix("group#").map(str::to_string))
                    && out.len() < limit
                {
                    out.push(name);
                }
            }
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
        Ok(out)
    }

    /// Takes the lease when free or expired (one conditional update); with the grant, the item as the
    /// update left it (`None` when the lease is held).
    async fn acquire(
        &self,
        group: &str,
        owner: &str,
        duration: Duration,
    ) -> Result<(LeaseGrant, Option<Item>), StoreError> {
        check_name("the dataset group name", group)?;
        check_name("the lease owner", owner)?;
        let now = self.clock.now();
        let expires_at = plus(now, duration);
        let valid_until = valid_until(tokio::time::Instant::now(), duration, self.max_clock_skew);
        let b = Self::group_update(group)
            .set("lease_owner", s(owner))
            .set("lease_expires_at", n(to_millis(expires_at)))
            .add("lease_epoch", n(1))
            .value(":now", n(to_millis(now)));
        let what = format!("lease of {group}");
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(group_pk(group), GROUP_SK)))
            .update_expression(b.expression())
            .condition_expression("attribute_not_exists(#lease_owner) OR #lease_expires_at < :now")
            .set_expression_attribute_names(Some(b.names))
            .set_expression_attribute_values(Some(b.values))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(out) => {
                let epoch = out
                    .attributes()
                    .and_then(|a| get_u64(a, "lease_epoch"))
                    .ok_or_else(|| StoreError::Corrupt {
                        what: what.clone(),
                        reason: "the update returned no lease_epoch".into(),
                    })?;
                let lease = Lease {
                    group: group.to_string(),
                    owner: owner.to_string(),
                    epoch,
                    expires_at,
                    valid_until,
                };
                Ok((LeaseGrant::Acquired(lease), out.attributes))
            }
            Err(e) if is_condition_failure(&e) => {
                let old = match e.as_service_error() {
                    Some(UpdateItemError::ConditionalCheckFailedException(c)) => c.item().cloned(),
                    _ => None,
                };
                let old = match old {
                    Some(item) => item,
                    None => self
                        .get_item(group_pk(group), GROUP_SK, &what)
                        .await?
                        .unwrap_or_default(),
                };
                let held = LeaseGrant::Held {
                    owner: get_s(&old, "lease_owner").unwrap_or_default(),
                    expires_at: from_millis(get_i64(&old, "lease_expires_at").unwrap_or(0)),
                };
                Ok((held, None))
            }
            Err(e) => Err(self.fail("acquire", what, &e)),
        }
    }

    /// `put_observed`: one conditional update, or two when a newer generation arrived or a fire began
    /// meanwhile (see [`DynamoStore::observed_writes`]).
    async fn write_observed(
        &self,
        lease: &Lease,
        observed: &Observed,
        next_due: Option<DateTime<Utc>>,
        write: ObservedWrite,
    ) -> Result<(), StoreError> {
        let json = observed_json(&lease.group, observed)?;
        let what = format!("observed state of {}", lease.group);
        let item_key = key(group_pk(&lease.group), GROUP_SK);
        for (b, condition) in self.observed_writes(lease, observed, &json, next_due, write) {
            if self
                .update("write", &what, item_key.clone(), b, Some(&condition))
                .await?
            {
                return Ok(());
            }
        }
        Err(StoreError::fenced(lease))
    }

    /// The updates of the group item that record an observation, tried in order with their
    /// conditions. DynamoDB has no MIN, so the first assumes that no newer desired generation arrived
    /// and no fire began since the writer read the group, writes `next_due` and moves the group to
    /// the due index's [`DUE_SHARD`] (its file is no longer new); the others keep the group due now,
    /// on condition that one of them happened: a newer generation leaves it in [`NEW_SHARD`], a fire
    /// alone moves it to [`DUE_SHARD`]. Generations and `fires_begun` only grow, and every update is
    /// fenced by the lease: when none applies, the lease was lost.
    fn observed_writes(
        &self,
        lease: &Lease,
        observed: &Observed,
        json: &str,
        next_due: Option<DateTime<Utc>>,
        write: ObservedWrite,
    ) -> Vec<(UpdateBuilder, String)> {
        let update = |due: Option<AttributeValue>, shard: Option<&str>, condition: String| {
            let mut b = UpdateBuilder::default()
                .observed(json.to_string(), observed)
                .set_opt("due_at", due)
                .name("desired_generation")
                .value(":generation", n(observed.generation));
            if write.release {
                b = b.remove("lease_owner").remove("lease_expires_at");
            }
            if let Some(marks) = write.schedules {
                b = b.set("fires_seen", n(marks.fires_seen));
                if let Some(generation) = marks.synced_generation {
                    b = b.set("schedules_synced", n(generation));
                }
                // DynamoDB refuses names and values the expressions do not use.
                if condition.contains("#fires_begun") {
                    b = b.name("fires_begun").value(":fires_begun", n(marks.fires_begun));
                }
            }
            if let Some(shard) = shard {
                b = b.set("due_shard", s(shard));
            }
            (with_lease_names(b, lease), condition)
        };
        let now = || Some(n(to_millis(self.clock.now())));
        let next = || next_due.map(|t| n(to_millis(t)));
        let newer = format!("{LEASE_IS_MINE} AND {OLDER_THAN_DESIRED}");
        if write.schedules.is_none() {
            return vec![
                update(
                    next(),
                    Some(DUE_SHARD),
                    format!("{LEASE_IS_MINE} AND {NOT_OLDER_THAN_DESIRED}"),
                ),
                update(now(), None, newer),
            ];
        }
        vec![
            update(
                next(),
                Some(DUE_SHARD),
                format!("{LEASE_IS_MINE} AND {NOT_OLDER_THAN_DESIRED} AND {NO_FIRE_SINCE}"),
            ),
            update(now(), None, newer),
            update(
                now(),
                Some(DUE_SHARD),
                format!("{LEASE_IS_MINE} AND {NOT_OLDER_THAN_DESIRED} AND {FIRE_SINCE}"),
            ),
        ]
    }

    /// `b` on the item at `item_key` under `condition`, as one item of a transaction.
    fn update_of(
        &self,
        item_key: Item,
        b: UpdateBuilder,
        condition: Option<String>,
    ) -> Result<Update, aws_sdk_dynamodb::error::BuildError> {
        Update::builder()
            .table_name(&self.table)
            .set_key(Some(item_key))
            .update_expression(b.expression())
            .set_condition_expression(condition)
            .set_expression_attribute_names(Some(b.names))
            .set_expression_attribute_values((!b.values.is_empty()).then_some(b.values))
            .build()
    }

    /// Records a fire's action as pending (`start` on the schedule item under `condition`) and counts
    /// it on the group item (`fires_begun`, see [`super::ScheduleMarks`]) in one transaction, so a
    /// worker never misses a pending action; `Ok(false)` when the condition failed.
    async fn start_fire(
        &self,
        group: &str,
        what: &str,
        schedule_key: Item,
        start: UpdateBuilder,
        condition: String,
    ) -> Result<bool, StoreError> {
        let built = |e: aws_sdk_dynamodb::error::BuildError| StoreError::backend("begin fire of", what, e);
        let schedule = self
            .update_of(schedule_key, start, Some(condition))
            .map_err(built)?;
        let count = Self::group_update(group).add("fires_begun", n(1));
        let counted = self
            .update_of(key(group_pk(group), GROUP_SK), count, None)
            .map_err(built)?;
        let result = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().update(schedule).build())
            .transact_items(TransactWriteItem::builder().update(counted).build())
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if condition_failed(&cancellation_reasons(&e), 0) => Ok(false),
            Err(e) => Err(self.fail("begin fire of", what, &e)),
        }
    }

    /// The item recording that `group`'s schedule set changed now (see [`CHANGES_PK`]).
    fn schedule_change(&self, group: &str) -> Result<TransactWriteItem, aws_sdk_dynamodb::error::BuildError> {
        let now = self.clock.now();
        let mut item = key(CHANGES_PK, format!("{:015}#{group}", to_millis(now)));
        item.insert("group".into(), s(group));
        // DynamoDB's TTL wants epoch seconds.
        item.insert(
            TTL_ATTRIBUTE.into(),
            n(to_millis(plus(now, CHANGES_KEPT)).div_euclid(1000) + 1),
        );
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .build()?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// A fenced change of the group's schedule set: a transaction of an update of the group item on
    /// condition of its lease (clearing `schedules_synced`: the set no longer is what a sync left, see
    /// [`super::ScheduleMarks`]), `write`, and the schedule-change item.
    async fn fenced_transaction(
        &self,
        op: &'static str,
        what: &str,
        lease: &Lease,
        write: TransactWriteItem,
    ) -> Result<(), StoreError> {
        let built = |e: aws_sdk_dynamodb::error::BuildError| StoreError::backend(op, what, e);
        let change = self.schedule_change(&lease.group).map_err(built)?;
        let unsynced = with_lease_names(UpdateBuilder::default().remove("schedules_synced"), lease);
        let check = self
            .update_of(
                key(group_pk(&lease.group), GROUP_SK),
                unsynced,
                Some(LEASE_IS_MINE.to_string()),
            )
            .map_err(built)?;
        let result = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().update(check).build())
            .transact_items(write)
            .transact_items(change)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) => {
                if condition_failed(&cancellation_reasons(&e), 0) {
                    Err(StoreError::fenced(lease))
                } else {
                    Err(self.fail(op, what, &e))
                }
            }
        }
    }
}

fn parse_source(item: &Item) -> DesiredSource {
    DesiredSource {
        url: ObjectUrl::new(
            get_s(item, "desired_bucket").unwrap_or_default(),
            get_s(item, "desired_key").unwrap_or_default(),
        ),
        etag: get_s(item, "desired_etag"),
        version_id: get_s(item, "desired_version_id"),
        sequencer: get_s(item, "desired_sequencer"),
        last_modified: get_i64(item, "desired_last_modified").map(from_millis),
    }
}

fn group_name(item: &Item) -> Result<String, StoreError> {
    // The key carries the name too; an item written only by a failed or partial update lacks `group`.
    get_s(item, "group")
        .or_else(|| get_s(item, "pk").and_then(|pk| pk.strip_prefix("group#").map(str::to_string)))
        .ok_or_else(|| StoreError::Corrupt {
            what: format!("group item {:?}", get_s(item, "pk")),
            reason: "neither a group attribute nor a group key".into(),
        })
}

/// A group item read with [`BRIEF_ATTRIBUTES`]; `Ok(None)` when it has a desired state but no
/// `observed_state`: written before that attribute existed (or never observed), the caller reads
/// the item whole.
fn parse_brief(item: &Item) -> Result<Option<GroupBrief>, StoreError> {
    let name = group_name(item)?;
    let desired_generation = get_u64(item, "desired_generation");
    let observed = match get_s(item, "observed_state") {
        Some(word) => {
            let state = ObservedState::parse(&word).ok_or_else(|| StoreError::Corrupt {
                what: format!("group {name}"),
                reason: format!("observed_state {word:?}"),
            })?;
            Some((get_u64(item, "observed_generation").unwrap_or(0), state))
        }
        None if desired_generation.is_some() => return Ok(None),
        None => None,
    };
    Ok(Some(GroupBrief {
        desired_source: desired_generation.map(|_| parse_source(item)),
        desired_generation,
        observed,
        due_at: get_i64(item, "due_at").map(from_millis),
        name,
    }))
}

fn parse_group(item: &Item) -> Result<GroupState, StoreError> {
    let name = group_name(item)?;
    let desired = get_u64(item, "desired_generation").map(|generation| Desired {
        generation,
        text: get_s(item, "desired_text").unwrap_or_default(),
        source: parse_source(item),
        received_at: from_millis(get_i64(item, "desired_received_at").unwrap_or(0)),
        run_timestamp: get_s(item, "desired_run_timestamp").unwrap_or_default(),
    });
    let observed = get_s(item, "observed")
        .map(|json| parse_observed(&name, &json))
        .transpose()?;
    Ok(GroupState {
        desired,
        observed,
        lease: LeaseInfo {
            owner: get_s(item, "lease_owner"),
            epoch: get_u64(item, "lease_epoch").unwrap_or(0),
            expires_at: get_i64(item, "lease_expires_at").map(from_millis),
        },
        due_at: get_i64(item, "due_at").map(from_millis),
        schedules: ScheduleMarks {
            fires_begun: get_u64(item, "fires_begun").unwrap_or(0),
            fires_seen: get_u64(item, "fires_seen").unwrap_or(0),
            synced_generation: get_u64(item, "schedules_synced"),
        },
        name,
    })
}

fn parse_schedule(item: &Item) -> Result<Schedule, StoreError> {
    let corrupt = |reason: &str| StoreError::Corrupt {
        what: format!("schedule item {:?}", get_s(item, "pk")),
        reason: reason.into(),
    };
    Ok(Schedule {
        group: get_s(item, "group").ok_or_else(|| corrupt("no group"))?,
        name: get_s(item, "schedule_name").ok_or_else(|| corrupt("no schedule_name"))?,
        expression: get_s(item, "expression").unwrap_or_default(),
        target: get_s(item, "target").unwrap_or_default(),
        last_fire: get_i64(item, "last_fire").map(from_millis),
        next_fire: get_i64(item, "next_fire").map(from_millis),
        active: item
            .get("active")
            .and_then(|v| v.as_bool().ok())
            .copied()
            .unwrap_or(false),
        created_at: from_millis(get_i64(item, "created_at").unwrap_or(0)),
        pending_fire: get_i64(item, "pending_fire").map(from_millis),
        last_outcome: get_s(item, "last_outcome")
            .map(|json| parse_outcome(&format!("schedule item {:?}", get_s(item, "pk")), &json))
            .transpose()?,
    })
}

/// The condition of a fire not handled yet; `:last_fire` is the fire.
const FIRE_NOT_HANDLED: &str =
    "attribute_exists(#pk) AND (attribute_not_exists(#last_fire) OR #last_fire < :last_fire)";

#[async_trait::async_trait]
impl StateStore for DynamoStore {
    async fn ping(&self) -> Result<(), StoreError> {
        self.client
            .describe_table()
            .table_name(&self.table)
            .send()
            .await
            .map_err(|e| self.fail("describe", "the table", &e))?;
        Ok(())
    }

    async fn put_desired(&self, new: &NewDesired) -> Result<PutDesired, StoreError> {
        check_desired_size(new)?;
        let what = format!("desired state of {}", new.group);
        for _ in 0..PUT_DESIRED_ATTEMPTS {
            let current = self.group(&new.group).await?.and_then(|g| g.desired);
            if let Some(current) = &current {
                match classify(current, new) {
                    Arrival::Duplicate => return Ok(PutDesired::Duplicate(current.clone())),
                    Arrival::Older => {
                        return Ok(PutDesired::Superseded {
                            current: current.clone(),
                        });
                    }
                    Arrival::Newer => {}
                }
            }
            let now = self.clock.now();
            let desired = Desired {
                generation: current.as_ref().map_or(1, |c| c.generation + 1),
                text: new.text.clone(),
                source: new.source.clone(),
                received_at: now,
                run_timestamp: run_timestamp(now),
            };
            let src = &desired.source;
            // A new generation is new work until an observation of it is recorded.
            let mut b = UpdateBuilder::default()
                .set("group", s(new.group.clone()))
                .set("due_shard", s(NEW_SHARD))
                .set("desired_generation", n(desired.generation))
                .set("desired_text", s(desired.text.clone()))
                .set("desired_bucket", s(src.url.bucket.clone()))
                .set("desired_key", s(src.url.key.clone()))
                .set_opt("desired_etag", src.etag.clone().map(s))
                .set_opt("desired_version_id", src.version_id.clone().map(s))
                .set_opt("desired_sequencer", src.sequencer.clone().map(s))
                .set_opt(
                    "desired_last_modified",
                    src.last_modified.map(|t| n(to_millis(t))),
                )
                .set("desired_received_at", n(to_millis(now)))
                .set("desired_run_timestamp", s(desired.run_timestamp.clone()))
                .set("due_at", n(to_millis(now)));
            let condition = match &current {
                Some(c) => {
                    b = b.value(":previous", n(c.generation));
                    "#desired_generation = :previous"
                }
                None => "attribute_not_exists(#desired_generation)",
            };
            if self
                .update(
                    "write",
                    &what,
                    key(group_pk(&new.group), GROUP_SK),
                    b,
                    Some(condition),
                )
                .await?
            {
                return Ok(PutDesired::Recorded(desired));
            }
            // Another writer changed the desired state since the read: decide again on the new value.
        }
        Err(StoreError::Contention {
            group: new.group.clone(),
            attempts: PUT_DESIRED_ATTEMPTS,
        })
    }

    async fn group(&self, name: &str) -> Result<Option<GroupState>, StoreError> {
        self.get_item(group_pk(name), GROUP_SK, &format!("group {name}"))
            .await?
            .map(|item| parse_group(&item))
            .transpose()
    }

    async fn list_groups(&self) -> Result<Vec<GroupSummary>, StoreError> {
        // Everything but the parameter files, which may be 256 KiB each.
        let items = self.scan_groups(&SUMMARY_ATTRIBUTES, true).await?;
        let mut out = items
            .iter()
            .map(|item| parse_group(item).map(GroupSummary::from))
            .collect::<Result<Vec<_>, _>>()?;
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    async fn list_briefs(&self) -> Result<Vec<GroupBrief>, StoreError> {
        let items = self.scan_groups(&BRIEF_ATTRIBUTES, false).await?;
        let mut out = Vec::with_capacity(items.len());
        for item in &items {
            match parse_brief(item)? {
                Some(brief) => out.push(brief),
                // Not observed since the summary attributes exist: rare once every group has had a
                // turn (each resync gives settled groups one per interval).
                None => {
                    let name = group_name(item)?;
                    if let Some(state) = self.group(&name).await? {
                        out.push(GroupBrief::from(state));
                    }
                }
            }
        }
        Ok(out)
    }

    async fn due_groups(&self, limit: usize) -> Result<Vec<DueGroup>, StoreError> {
        self.due(None, limit).await
    }

    async fn due_groups_for(&self, owner: &str, limit: usize) -> Result<Vec<DueGroup>, StoreError> {
        self.due(Some(owner), limit).await
    }

    async fn mark_due(&self, group: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        check_name("the dataset group name", group)?;
        let b = Self::group_update(group).set("due_at", n(to_millis(at)));
        // Only ever moves the due time earlier; a failed condition means it is already due sooner.
        self.update(
            "mark due",
            &format!("group {group}"),
            key(group_pk(group), GROUP_SK),
            b,
            Some("attribute_not_exists(#due_at) OR #due_at > :due_at"),
        )
        .await
        .map(|_| ())
    }

    async fn acquire_lease(
        &self,
        group: &str,
        owner: &str,
        duration: Duration,
        read: Acquire,
    ) -> Result<(LeaseGrant, Option<GroupState>), StoreError> {
        let (grant, item) = self.acquire(group, owner, duration).await?;
        let state = match read {
            Acquire::Lease => None,
            Acquire::LeaseAndGroup => item.as_ref().map(parse_group).transpose()?,
        };
        Ok((grant, state))
    }

    async fn renew_lease(&self, lease: &Lease, duration: Duration) -> Result<Lease, StoreError> {
        let renewed = Lease {
            expires_at: plus(self.clock.now(), duration),
            valid_until: valid_until(tokio::time::Instant::now(), duration, self.max_clock_skew),
            ..lease.clone()
        };
        let b = with_lease_names(
            UpdateBuilder::default().set("lease_expires_at", n(to_millis(renewed.expires_at))),
            lease,
        );
        let applied = self
            .update(
                "renew",
                &format!("lease of {}", lease.group),
                key(group_pk(&lease.group), GROUP_SK),
                b,
                Some(LEASE_IS_MINE),
            )
            .await?;
        if applied {
            Ok(renewed)
        } else {
            Err(StoreError::fenced(lease))
        }
    }

    async fn release_lease(&self, lease: &Lease) -> Result<(), StoreError> {
        let b = with_lease_names(
            UpdateBuilder::default()
                .remove("lease_owner")
                .remove("lease_expires_at"),
            lease,
        );
        let applied = self
            .update(
                "release",
                &format!("lease of {}", lease.group),
                key(group_pk(&lease.group), GROUP_SK),
                b,
                Some(LEASE_IS_MINE),
            )
            .await?;
        if applied {
            Ok(())
        } else {
            Err(StoreError::fenced(lease))
        }
    }

    async fn put_observed(
        &self,
        lease: &Lease,
        observed: &Observed,
        next_due: Option<DateTime<Utc>>,
        write: ObservedWrite,
    ) -> Result<(), StoreError> {
        self.write_observed(lease, observed, next_due, write).await
    }

    async fn put_schedule(&self, lease: &Lease, schedule: &Schedule) -> Result<(), StoreError> {
        let what = format!("schedule {}/{}", lease.group, schedule.name);
        let b = UpdateBuilder::default()
            .set("group", s(lease.group.clone()))
            .set("schedule_name", s(schedule.name.clone()))
            .set("expression", s(schedule.expression.clone()))
            .set("target", s(schedule.target.clone()))
            .set_opt("next_fire", schedule.next_fire.map(|t| n(to_millis(t))))
            .set("active", AttributeValue::Bool(schedule.active))
            .set("created_at", n(to_millis(schedule.created_at)));
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(
                group_pk(&lease.group),
                format!("schedule#{}", schedule.name),
            )))
            .update_expression(b.expression())
            .set_expression_attribute_names(Some(b.names))
            .set_expression_attribute_values(Some(b.values))
            .build()
            .map_err(|e| StoreError::backend("write", what.clone(), e))?;
        self.fenced_transaction(
            "write",
            &what,
            lease,
            TransactWriteItem::builder().update(update).build(),
        )
        .await
    }

    async fn delete_schedule(&self, lease: &Lease, name: &str) -> Result<(), StoreError> {
        let what = format!("schedule {}/{name}", lease.group);
        let delete = aws_sdk_dynamodb::types::Delete::builder()
            .table_name(&self.table)
            .set_key(Some(key(group_pk(&lease.group), format!("schedule#{name}"))))
            .build()
            .map_err(|e| StoreError::backend("delete", what.clone(), e))?;
        self.fenced_transaction(
            "delete",
            &what,
            lease,
            TransactWriteItem::builder().delete(delete).build(),
        )
        .await
    }

    async fn delete_group(&self, lease: &Lease) -> Result<(), StoreError> {
        // Schedules first, each fenced; the group item last, so a delete cut short is finished by the
        // next one (the lease, and with it the item, is still there).
        for schedule in self.schedules(Some(&lease.group)).await? {
            self.delete_schedule(lease, &schedule.name).await?;
        }
        let what = format!("group {}", lease.group);
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(group_pk(&lease.group), GROUP_SK)))
            .condition_expression(LEASE_IS_MINE)
            .expression_attribute_names("#lease_owner", "lease_owner")
            .expression_attribute_names("#lease_epoch", "lease_epoch")
            .expression_attribute_values(":me", s(lease.owner.clone()))
            .expression_attribute_values(":epoch", n(lease.epoch))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failure(&e) => Err(StoreError::fenced(lease)),
            Err(e) => Err(self.fail("delete", what, &e)),
        }
    }

    async fn schedules(&self, group: Option<&str>) -> Result<Vec<Schedule>, StoreError> {
        let items = match group {
            Some(group) => {
                self.query_all(
                    "pk = :pk AND begins_with(sk, :prefix)",
                    HashMap::from([
                        (":pk".into(), s(group_pk(group))),
                        (":prefix".into(), s("schedule#")),
                    ]),
                    &format!("schedules of {group}"),
                )
                .await?
            }
            None => {
                self.scan_all(
                    "begins_with(sk, :prefix)",
                    HashMap::from([(":prefix".into(), s("schedule#"))]),
                    None,
                    "schedules",
                )
                .await?
            }
        };
        let mut out = items.iter().map(parse_schedule).collect::<Result<Vec<_>, _>>()?;
        out.sort_by(|a, b| (&a.group, &a.name).cmp(&(&b.group, &b.name)));
        Ok(out)
    }

    async fn set_schedule_active(&self, group: &str, name: &str, active: bool) -> Result<bool, StoreError> {
        let what = format!("schedule {group}/{name}");
        let built =
            |e: aws_sdk_dynamodb::error::BuildError| StoreError::backend("set state of", what.clone(), e);
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(group_pk(group), format!("schedule#{name}"))))
            .update_expression("SET #active = :active")
            .expression_attribute_names("#active", "active")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":active", AttributeValue::Bool(active))
            .build()
            .map_err(built)?;
        let change = self.schedule_change(group).map_err(built)?;
        let result = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().update(update).build())
            .transact_items(change)
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if condition_failed(&cancellation_reasons(&e), 0) => Ok(false),
            Err(e) => Err(self.fail("set state of", what, &e)),
        }
    }

    async fn schedule_changes(&self, since: DateTime<Utc>) -> Result<Vec<String>, StoreError> {
        let from = format!("{:015}#", to_millis(since).max(0));
        let items = self
            .query_all(
                "pk = :pk AND sk >= :from",
                HashMap::from([(":pk".into(), s(CHANGES_PK)), (":from".into(), s(from))]),
                &format!("schedule changes since {since}"),
            )
            .await?;
        let groups: std::collections::BTreeSet<String> =
            items.iter().filter_map(|item| get_s(item, "group")).collect();
        Ok(groups.into_iter().collect())
    }

    async fn record_fire(
        &self,
        group: &str,
        name: &str,
        fired_at: DateTime<Utc>,
        next_fire: Option<DateTime<Utc>>,
    ) -> Result<bool, StoreError> {
        let b = UpdateBuilder::default()
            .set("last_fire", n(to_millis(fired_at)))
            .set_opt("next_fire", next_fire.map(|t| n(to_millis(t))))
            .name("pk");
        self.update(
            "record fire of",
            &format!("schedule {group}/{name}"),
            key(group_pk(group), format!("schedule#{name}")),
            b,
            Some("attribute_exists(#pk) AND (attribute_not_exists(#last_fire) OR #last_fire < :last_fire)"),
        )
        .await
    }

    async fn begin_fire(
        &self,
        group: &str,
        name: &str,
        fire: DateTime<Utc>,
        next_fire: Option<DateTime<Utc>>,
    ) -> Result<BeginFire, StoreError> {
        let what = format!("schedule {group}/{name}");
        let item_key = || key(group_pk(group), format!("schedule#{name}"));
        let handled = || {
            UpdateBuilder::default()
                .set("last_fire", n(to_millis(fire)))
                .set_opt("next_fire", next_fire.map(|t| n(to_millis(t))))
                .name("pk")
                .name("pending_fire")
        };
        // Either write can lose to a concurrent finish_fire between them; each retry re-decides.
        for _ in 0..PUT_DESIRED_ATTEMPTS {
            let start = handled().set("pending_fire", n(to_millis(fire)));
            let condition = format!("{FIRE_NOT_HANDLED} AND attribute_not_exists(#pending_fire)");
            if self
                .start_fire(group, &what, item_key(), start, condition)
                .await?
            {
                return Ok(BeginFire::Started);
            }
            let condition = format!("{FIRE_NOT_HANDLED} AND attribute_exists(#pending_fire)");
            if self
                .update("coalesce fire of", &what, item_key(), handled(), Some(&condition))
                .await?
            {
                let running = self
                    .get_item(group_pk(group), &format!("schedule#{name}"), &what)
                    .await?
                    .and_then(|item| get_i64(&item, "pending_fire"))
                    .map_or(fire, from_millis);
                return Ok(BeginFire::Coalesced { running });
            }
            let Some(item) = self
                .get_item(group_pk(group), &format!("schedule#{name}"), &what)
                .await?
            else {
                return Ok(BeginFire::AlreadyHandled);
            };
            if get_i64(&item, "last_fire").is_some_and(|last| last >= to_millis(fire)) {
                return Ok(BeginFire::AlreadyHandled);
            }
        }
        Err(StoreError::Contention {
            group: group.to_string(),
            attempts: PUT_DESIRED_ATTEMPTS,
        })
    }

    async fn finish_fire(&self, group: &str, name: &str, outcome: &FireOutcome) -> Result<bool, StoreError> {
        let what = format!("schedule {group}/{name}");
        let b = UpdateBuilder::default()
            .set("last_outcome", s(outcome_json(&what, outcome)?))
            .remove("pending_fire")
            .value(":fire", n(to_millis(outcome.fire)));
        self.update(
            "finish fire of",
            &what,
            key(group_pk(group), format!("schedule#{name}")),
            b,
            Some("#pending_fire = :fire"),
        )
        .await
    }

    async fn skip_fire(
        &self,
        group: &str,
        name: &str,
        outcome: &FireOutcome,
        next_fire: Option<DateTime<Utc>>,
    ) -> Result<bool, StoreError> {
        let what = format!("schedule {group}/{name}");
        let b = UpdateBuilder::default()
            .set("last_fire", n(to_millis(outcome.fire)))
            .set_opt("next_fire", next_fire.map(|t| n(to_millis(t))))
            .set("last_outcome", s(outcome_json(&what, outcome)?))
            .name("pk");
        self.update(
            "skip fire of",
            &what,
            key(group_pk(group), format!("schedule#{name}")),
            b,
            Some(FIRE_NOT_HANDLED),
        )
        .await
    }

    async fn claim_fire(
        &self,
        group: &str,
        schedule: &str,
        fire_time: DateTime<Utc>,
        owner: &str,
        ttl: Duration,
    ) -> Result<FireClaim, StoreError> {
        let now = self.clock.now();
        let expires_at = plus(now, ttl);
        let (pk, sk) = claim_key(group, schedule, fire_time);
        let what = format!("fire claim {group}/{schedule}@{fire_time}");
        let built = |e: aws_sdk_dynamodb::error::BuildError| StoreError::backend("claim", what.clone(), e);
        let mut item = key(pk.clone(), sk.clone());
        item.insert("owner".into(), s(owner));
        item.insert("claimed_at".into(), n(to_millis(now)));
        item.insert("expires_at".into(), n(to_millis(expires_at)));
        // DynamoDB's TTL wants epoch seconds; rounded up so the item outlives `expires_at`.
        item.insert("ttl".into(), n(to_millis(expires_at).div_euclid(1000) + 1));
        // A fire already recorded on the schedule is done for good, whatever became of its claim (TTL
        // deletes it): the claim is written only while the schedule's last_fire is older.
        let not_fired = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(key(group_pk(group), format!("schedule#{schedule}"))))
            .condition_expression("attribute_not_exists(last_fire) OR last_fire < :fire")
            .expression_attribute_values(":fire", n(to_millis(fire_time)))
            .build()
            .map_err(built)?;
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            // An expired claim that TTL has not deleted yet (moto never does) counts as absent.
            .condition_expression("attribute_not_exists(pk) OR expires_at <= :now")
            .expression_attribute_values(":now", n(to_millis(now)))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(built)?;
        let result = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().condition_check(not_fired).build())
            .transact_items(TransactWriteItem::builder().put(put).build())
            .send()
            .await;
        let error = match result {
            Ok(_) => return Ok(FireClaim::Won),
            Err(e) => e,
        };
        let reasons = cancellation_reasons(&error);
        if !condition_failed(&reasons, 0) && !condition_failed(&reasons, 1) {
            return Err(self.fail("claim", what, &error));
        }
        // Lost to an earlier claimant, or the fire was recorded: either way someone ran it.
        let old = match reasons.get(1).and_then(|r| r.item()) {
            Some(item) if !item.is_empty() => Some(item.clone()),
            _ => self.get_item(pk, &sk, &what).await?,
        };
        Ok(FireClaim::Lost {
            owner: old.and_then(|o| get_s(&o, "owner")).unwrap_or_default(),
        })
    }

    async fn fire_claim(
        &self,
        group: &str,
        schedule: &str,
        fire_time: DateTime<Utc>,
    ) -> Result<Option<ClaimInfo>, StoreError> {
        let (pk, sk) = claim_key(group, schedule, fire_time);
        let what = format!("fire claim {group}/{schedule}@{fire_time}");
        let now = to_millis(self.clock.now());
        let Some(item) = self.get_item(pk, &sk, &what).await? else {
            return Ok(None);
        };
        let expires = get_i64(&item, "expires_at").unwrap_or(0);
        if expires <= now {
            return Ok(None);
        }
        Ok(Some(ClaimInfo {
            owner: get_s(&item, "owner").unwrap_or_default(),
            claimed_at: from_millis(get_i64(&item, "claimed_at").unwrap_or(0)),
            expires_at: from_millis(expires),
        }))
    }

    async fn claim_job_name(
        &self,
        name: &str,
        owner: &str,
        replacing: Option<&str>,
        ttl: Duration,
    ) -> Result<String, StoreError> {
        let now = self.clock.now();
        let expires_at = to_millis(plus(now, ttl));
        let what = format!("job name claim {name}");
        let item_key = key(format!("jobname#{name}"), "claim");
        let mut condition = "attribute_not_exists(pk) OR expires_at <= :now OR #owner = :owner".to_string();
        let mut values = HashMap::from([
            (":owner".to_string(), s(owner)),
            (":now".to_string(), n(to_millis(now))),
            (":expires".to_string(), n(expires_at)),
            // DynamoDB's TTL wants epoch seconds; rounded up so the item outlives `expires_at`.
            (":ttl".to_string(), n(expires_at.div_euclid(1000) + 1)),
        ]);
        if let Some(previous) = replacing {
            condition.push_str(" OR #owner = :replacing");
            values.insert(":replacing".into(), s(previous));
        }
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(item_key.clone()))
            .update_expression("SET #owner = :owner, claimed_at = :now, expires_at = :expires, #ttl = :ttl")
            .condition_expression(condition)
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .set_expression_attribute_values(Some(values))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let error = match result {
            Ok(_) => return Ok(owner.to_string()),
            Err(e) if is_condition_failure(&e) => e,
            Err(e) => return Err(self.fail("claim", what, &e)),
        };
        let old = match error.as_service_error() {
            Some(UpdateItemError::ConditionalCheckFailedException(c)) => c.item().cloned(),
            _ => None,
        };
        let old = match old {
            Some(item) if !item.is_empty() => Some(item),
            _ => self.get_item(format!("jobname#{name}"), "claim", &what).await?,
        };
        old.and_then(|o| get_s(&o, "owner"))
            .ok_or_else(|| StoreError::Corrupt {
                what,
                reason: "the claim was refused but holds no owner".into(),
            })
    }
}

/// The partition of every outbox item.
const OUTBOX_PK: &str = "outbox";

fn outbox_key(group: &str, id: &str) -> Item {
    key(OUTBOX_PK, format!("{group}#{id}"))
}

/// The condition of an item claimed by `:owner` and not dropped.
const CLAIMED_BY_ME: &str = "#claimed_by = :owner AND attribute_not_exists(#dropped_at)";

/// Writes `note` as a new item, or leaves the item already stored under its id as it is: an id is a
/// pure function of what is announced, so a second write is the same notification and must not reset
/// its attempts, its claim or its age. An update rather than a conditional put so that it can join
/// `put_observed_notifying`'s transaction, where a failed condition would cancel the observed state.
fn notification_update(note: &StoredNotification) -> UpdateBuilder {
    UpdateBuilder::default()
        .set_if_absent("group", s(note.group.clone()))
        .set_if_absent("notification_id", s(note.id.clone()))
        .set_if_absent("status", s(note.status.clone()))
        .set_if_absent("summary", s(capped(&note.summary)))
        .set_if_absent("body", s(note.body.clone()))
        .set_if_absent("created_at", n(to_millis(note.created_at)))
        .set_if_absent("attempts", n(0))
        .set_if_absent("next_attempt_at", n(to_millis(note.next_attempt_at)))
}

fn parse_notification(item: &Item) -> Result<StoredNotification, StoreError> {
    let corrupt = |reason: &str| StoreError::Corrupt {
        what: format!("outbox item {:?}", get_s(item, "sk")),
        reason: reason.into(),
    };
    Ok(StoredNotification {
        id: get_s(item, "notification_id").ok_or_else(|| corrupt("no notification_id"))?,
        group: get_s(item, "group").ok_or_else(|| corrupt("no group"))?,
        status: get_s(item, "status").unwrap_or_default(),
        summary: get_s(item, "summary").unwrap_or_default(),
        body: get_s(item, "body").unwrap_or_default(),
        created_at: from_millis(get_i64(item, "created_at").ok_or_else(|| corrupt("no created_at"))?),
        attempts: get_u64(item, "attempts").map_or(0, |a| u32::try_from(a).unwrap_or(u32::MAX)),
        next_attempt_at: from_millis(get_i64(item, "next_attempt_at").unwrap_or(0)),
        last_error: get_s(item, "last_error"),
        dropped_at: get_i64(item, "dropped_at").map(from_millis),
        claimed_by: get_s(item, "claimed_by"),
        claim_until: get_i64(item, "claim_until").map(from_millis),
    })
}

impl DynamoStore {
    /// Every outbox item (of `group` when given) that passes `filter`, sorted by (group, created, id).
    async fn outbox_items(
        &self,
        group: Option<&str>,
        filter: Option<&str>,
        mut values: Item,
    ) -> Result<Vec<StoredNotification>, StoreError> {
        let condition = match group {
            Some(g) => {
                values.insert(":prefix".into(), s(format!("{g}#")));
                "pk = :pk AND begins_with(sk, :prefix)"
            }
            None => "pk = :pk",
        };
        values.insert(":pk".into(), s(OUTBOX_PK));
        let mut out = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression(condition)
                .set_filter_expression(filter.map(str::to_string))
                .set_expression_attribute_values(Some(values.clone()))
                .set_exclusive_start_key(start.take())
                .consistent_read(true)
                .send()
                .await
                .map_err(|e| self.fail("query", "the notification outbox", &e))?;
            for item in page.items() {
                let n = parse_notification(item)?;
                // `begins_with` also matches groups whose names extend this one.
                if group.is_none_or(|g| g == n.group) {
                    out.push(n);
                }
            }
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
        out.sort_by(|a, b| (&a.group, a.created_at, &a.id).cmp(&(&b.group, b.created_at, &b.id)));
        Ok(out)
    }
}

#[async_trait::async_trait]
impl NotificationStore for DynamoStore {
    async fn put_observed_notifying(
        &self,
        lease: &Lease,
        observed: &Observed,
        next_due: Option<DateTime<Utc>>,
        write: ObservedWrite,
        notification: &StoredNotification,
    ) -> Result<(), StoreError> {
        let json = observed_json(&lease.group, observed)?;
        let what = format!(
            "observed state and notification {} of {}",
            notification.id, lease.group
        );
        let built = |e: aws_sdk_dynamodb::error::BuildError| StoreError::backend("write", what.clone(), e);
        let put = self
            .update_of(
                outbox_key(&notification.group, &notification.id),
                notification_update(notification),
                None,
            )
            .map_err(built)?;
        // As `put_observed`: the update that assumes nothing arrived meanwhile, then the other.
        for (b, condition) in self.observed_writes(lease, observed, &json, next_due, write) {
            let observed_update = self
                .update_of(key(group_pk(&lease.group), GROUP_SK), b, Some(condition))
                .map_err(built)?;
            let result = self
                .client
                .transact_write_items()
                .transact_items(TransactWriteItem::builder().update(observed_update).build())
                .transact_items(TransactWriteItem::builder().update(put.clone()).build())
                .send()
                .await;
            match result {
                Ok(_) => return Ok(()),
                Err(e) if condition_failed(&cancellation_reasons(&e), 0) => {}
                Err(e) => return Err(self.fail("write", what.as_str(), &e)),
            }
        }
        Err(StoreError::fenced(lease))
    }

    async fn enqueue_notification(&self, notification: &StoredNotification) -> Result<(), StoreError> {
        self.update(
            "write",
            &format!("notification {} of {}", notification.id, notification.group),
            outbox_key(&notification.group, &notification.id),
            notification_update(notification),
            None,
        )
        .await
        .map(|_| ())
    }

    async fn due_notifications(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<StoredNotification>, StoreError> {
        let mut due = self
            .outbox_items(
                None,
                Some(
                    "attribute_not_exists(dropped_at) AND next_attempt_at <= :now \
                     AND (attribute_not_exists(claim_until) OR claim_until < :now)",
                ),
                HashMap::from([(":now".into(), n(to_millis(now)))]),
            )
            .await?;
        due.sort_by(|a, b| (a.created_at, &a.group, &a.id).cmp(&(b.created_at, &b.group, &b.id)));
        due.truncate(limit);
        Ok(due)
    }

    async fn claim_notification(
        &self,
        group: &str,
        id: &str,
        owner: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let b = UpdateBuilder::default()
            .set("claimed_by", s(owner))
            .set("claim_until", n(to_millis(until)))
            .add("attempts", n(1))
            .name("pk")
            .name("dropped_at")
            .value(":now", n(to_millis(now)));
        self.update(
            "claim",
            &format!("notification {id} of {group}"),
            outbox_key(group, id),
            b,
            Some(
                "attribute_exists(#pk) AND attribute_not_exists(#dropped_at) \
                 AND (attribute_not_exists(#claim_until) OR #claim_until < :now)",
            ),
        )
        .await
    }

    async fn delete_notification(&self, group: &str, id: &str) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(outbox_key(group, id)))
            .send()
            .await
            .map_err(|e| self.fail("delete", format!("notification {id} of {group}"), &e))?;
        Ok(())
    }

    async fn retry_notification(
        &self,
        group: &str,
        id: &str,
        owner: &str,
        next_attempt_at: DateTime<Utc>,
        error: &str,
    ) -> Result<bool, StoreError> {
        let b = UpdateBuilder::default()
            .set("next_attempt_at", n(to_millis(next_attempt_at)))
            .set("last_error", s(capped(error)))
            .remove("claimed_by")
            .remove("claim_until")
            .name("dropped_at")
            .value(":owner", s(owner));
        self.update(
            "release",
            &format!("notification {id} of {group}"),
            outbox_key(group, id),
            b,
            Some(CLAIMED_BY_ME),
        )
        .await
    }

    async fn drop_notification(
        &self,
        group: &str,
        id: &str,
        owner: &str,
        now: DateTime<Utc>,
        error: &str,
    ) -> Result<bool, StoreError> {
        let forget_at = plus(now, DROPPED_RETENTION).timestamp();
        let b = UpdateBuilder::default()
            .set("dropped_at", n(to_millis(now)))
            .set("last_error", s(capped(error)))
            .set(TTL_ATTRIBUTE, n(forget_at))
            // Emptied rather than removed: a later write of the same id keeps what is there.
            .set("body", s(String::new()))
            .remove("claimed_by")
            .remove("claim_until")
            .value(":owner", s(owner));
        self.update(
            "drop",
            &format!("notification {id} of {group}"),
            outbox_key(group, id),
            b,
            Some(CLAIMED_BY_ME),
        )
        .await
    }

    async fn notifications(&self, group: Option<&str>) -> Result<Vec<StoredNotification>, StoreError> {
        self.outbox_items(group, None, HashMap::new()).await
    }
}
