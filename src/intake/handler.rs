//! What happens to one S3 event: key check, size-capped read, validation, then a desired generation or
//! a configuration-error notification.
//!
//! Transport-free: the SQS intake and `local` mode's directory watcher both call [`Intake`]. An error
//! return means "try again later" (the SQS message stays on the queue); every permanent problem is an
//! `Ok` outcome, reported to the user and counted.

use std::sync::Arc;

use super::event::{self, EventError, ObjectCreated, Parsed};
use super::keys::check_config_key;
use super::reader::{ConfigRead, ConfigReader, ObjectConfigReader};
use crate::metrics::{Counter, MetricsSink};
use crate::notify::Notifications;
use crate::notify::message::config_error_message;
use crate::objects::{ObjectError, ObjectStore, ObjectUrl};
use crate::store::{
    Arrival, DesiredSource, NewDesired, PutDesired, StateStore, StoreError, arrival_by_event,
};

/// What a validator says about a parameter file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[must_use]
pub struct ValidationOutcome {
    /// `datasetGroup.serviceConfig.name`, when the file names one.
    pub dataset_group: Option<String>,
    /// Every problem, each with its JSON path; empty when the file is valid.
    pub errors: Vec<String>,
}

/// Validates a parameter file's text. The seam for `spec::load`.
pub type Validator = Arc<dyn Fn(&str) -> ValidationOutcome + Send + Sync>;

/// The parameter-file validator (`spec::load`): every error with its JSON path, and the dataset group
/// named by the file even when it is invalid.
pub fn spec_validator() -> Validator {
    Arc::new(|text: &str| {
        let report = crate::spec::load(text);
        ValidationOutcome {
            dataset_group: report.dataset_group_name,
            errors: report.errors.iter().map(ToString::to_string).collect(),
        }
    })
}

/// What became of one object-created record.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum ObjectOutcome {
    /// A new desired generation.
    Recorded { group: String, generation: u64 },
    /// The same write was already recorded.
    Duplicate { group: String, generation: u64 },
    /// A newer write is already recorded; this older one was ignored.
    Superseded { group: String, generation: u64 },
    /// The file cannot be used; the user was notified with every error.
    Invalid {
        group: Option<String>,
        errors: Vec<String>,
    },
    /// Not a parameter-file key (`train/**/*.json`, no `..`, no empty segments, no control characters).
    KeyRejected { key: String, reason: String },
    /// The parameter file was removed: each group it was the file of got a removal generation (see
    /// [`crate::store::record_removal`]); empty when it was no group's file.
    Removed { removals: Vec<crate::store::Removal> },
    /// The object no longer exists (deleted after the event).
    Vanished { url: ObjectUrl },
    /// The record names a bucket other than the service's: nothing was read.
    ForeignBucket { url: ObjectUrl },
}

/// Why a whole message was refused without acting on any of its records. Retrying cannot change the
/// answer, so the message is deleted (and counted as `MessagesRejected`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// A record names another bucket. S3 sends one bucket's events only, so such a message was forged
    /// or misrouted; acting on it would let anyone who can send to the queue point the service at any
    /// bucket its role can read.
    #[error("record {index} is about s3://{bucket}/{key}, not the service's bucket {expected}")]
    ForeignBucket {
        /// Position of the first offending record.
        index: usize,
        /// The bucket the record names.
        bucket: String,
        /// The (decoded) key it names.
        key: String,
        /// `daemon.bucket`.
        expected: String,
    },
    /// Not an S3 event notification (not JSON, no `Records`, a malformed record). Retrying cannot make
    /// it one; keeping it would only cost receives until the redrive policy dead-letters it.
    #[error("the message is not a usable S3 event notification: {0}")]
    Unparseable(EventError),
}

/// What became of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum MessageOutcome {
    /// `s3:TestEvent`, sent when the bucket notification is configured.
    TestEvent,
    /// One outcome per object-created record; `ignored` counts records of other event kinds.
    Records {
        outcomes: Vec<ObjectOutcome>,
        ignored: usize,
    },
    /// Refused whole; nothing in it was acted on.
    Rejected(Rejection),
}

/// A failure worth retrying (the message must not be deleted).
#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    #[error("cannot read {url}: {source}")]
    Read {
        url: ObjectUrl,
        #[source]
        source: ObjectError,
    },
    #[error("cannot record the desired state of dataset group {group} from {url}: {source}")]
    Store {
        group: String,
        url: ObjectUrl,
        #[source]
        source: StoreError,
    },
}

/// Turns S3 events into desired generations.
#[derive(Clone)]
pub struct Intake {
    /// The only bucket whose events are acted on (`daemon.bucket`).
    bucket: String,
    reader: Arc<dyn ConfigReader>,
    store: Arc<dyn StateStore>,
    notifications: Notifications,
    metrics: Arc<dyn MetricsSink>,
    validator: Validator,
    /// Files larger than this are reported, never read whole.
    max_config_bytes: u64,
}

impl std::fmt::Debug for Intake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Intake")
            .field("bucket", &self.bucket)
            .field("reader", &self.reader)
            .field("store", &self.store)
            .field("max_config_bytes", &self.max_config_bytes)
            .finish_non_exhaustive()
    }
}

impl Intake {
    /// An intake for the events of `bucket` that reads parameter files from `objects` (HEAD, then a
    /// capped GET). Events naming any other bucket are refused.
    pub fn new(
        bucket: impl Into<String>,
        objects: Arc<dyn ObjectStore>,
        store: Arc<dyn StateStore>,
        notifications: Notifications,
        metrics: Arc<dyn MetricsSink>,
        validator: Validator,
        max_config_bytes: u64,
    ) -> Self {
        Self::from_reader(
            bucket,
            Arc::new(ObjectConfigReader(objects)),
            store,
            notifications,
            metrics,
            validator,
            max_config_bytes,
        )
    }

    /// An intake for the events of `bucket` that reads parameter files through `reader` (the daemon's
    /// [`super::S3ConfigReader`]).
    pub fn from_reader(
        bucket: impl Into<String>,
        reader: Arc<dyn ConfigReader>,
        store: Arc<dyn StateStore>,
        notifications: Notifications,
        metrics: Arc<dyn MetricsSink>,
        validator: Validator,
        max_config_bytes: u64,
    ) -> Self {
        Self {
            bucket: bucket.into(),
            reader,
            store,
            notifications,
            metrics,
            validator,
            max_config_bytes,
        }
    }

    /// The only bucket whose events this intake acts on.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Handles one SQS message body (an S3 notification, possibly in an SNS envelope).
    ///
    /// # Errors
    /// `Read`/`Store` when S3 or the state store failed (a body that is not an S3 notification is a
    /// [`MessageOutcome::Rejected`], not an error: retrying cannot change it). Records before a failing one may have been recorded already; handling them again is a
    /// no-op (duplicates).
    pub async fn handle_message(&self, body: &str) -> Result<MessageOutcome, IntakeError> {
        let (created, ignored) = match event::parse(body) {
            Ok(Parsed::TestEvent) => return Ok(MessageOutcome::TestEvent),
            Ok(Parsed::Records { created, ignored }) => (created, ignored),
            Err(e) => {
                self.metrics.count(Counter::MessagesRejected);
                return Ok(MessageOutcome::Rejected(Rejection::Unparseable(e)));
            }
        };
        // Checked before anything is read or recorded: a forged message must not get half acted on.
        if let Some((index, record)) = created.iter().enumerate().find(|(_, r)| r.bucket != self.bucket) {
            self.metrics.count(Counter::MessagesRejected);
            return Ok(MessageOutcome::Rejected(Rejection::ForeignBucket {
                index,
                bucket: record.bucket.clone(),
                key: record.key.clone(),
                expected: self.bucket.clone(),
            }));
        }
        for kind in &ignored {
            tracing::info!(event = %kind, "ignoring an S3 event that is not ObjectCreated");
            self.metrics.count(Counter::EventsIgnored);
        }
        let mut outcomes = Vec::with_capacity(created.len());
        for record in &created {
            outcomes.push(self.handle_object(record).await?);
        }
        Ok(MessageOutcome::Records {
            outcomes,
            ignored: ignored.len(),
        })
    }

    /// Records the removal of a parameter file (what the daemon then does is its `daemon.*` settings').
    async fn record_removal(
        &self,
        record: &ObjectCreated,
        url: &ObjectUrl,
    ) -> Result<ObjectOutcome, IntakeError> {
        let removals = crate::store::record_removal(
            self.store.as_ref(),
            url,
            record.version_id.clone(),
            record.sequencer.clone(),
        )
        .await
        .map_err(|source| IntakeError::Store {
            group: "(the groups of a removed file)".into(),
            url: url.clone(),
            source,
        })?;
        tracing::info!(url = %url, ?removals, "parameter file removed");
        Ok(ObjectOutcome::Removed { removals })
    }

    /// Handles one object-created record.
    ///
    /// # Errors
    /// `Read` and `Store` are transient: call again later.
    pub async fn handle_object(&self, record: &ObjectCreated) -> Result<ObjectOutcome, IntakeError> {
        if record.bucket != self.bucket {
            tracing::warn!(bucket = %record.bucket, key = ?record.key, expected = %self.bucket, "refusing an object of a bucket other than the service's");
            self.metrics.count(Counter::MessagesRejected);
            return Ok(ObjectOutcome::ForeignBucket {
                url: ObjectUrl::new(record.bucket.clone(), record.key.clone()),
            });
        }
        if let Err(reason) = check_config_key(&record.key) {
            tracing::warn!(bucket = %record.bucket, key = ?record.key, %reason, "ignoring an S3 key that is not a parameter file");
            self.metrics.count(Counter::EventsIgnored);
            return Ok(ObjectOutcome::KeyRejected {
                key: record.key.clone(),
                reason: reason.to_string(),
            });
        }
        let url = ObjectUrl::new(record.bucket.clone(), record.key.clone());
        if event::is_removal(&record.event_name) {
            return self.record_removal(record, &url).await;
        }
        let outcome = match self.settled_by_table(record, &url).await {
            Some(outcome) => outcome,
            None => self.read_and_record(record, &url).await?,
        };
        match &outcome {
            ObjectOutcome::Recorded { .. } => {
                self.metrics.count(Counter::ConfigurationsProcessed);
                self.metrics.count(Counter::ConfigurationsProcessedSuccesses);
            }
            // A redelivered or late event changes nothing: it is not a configuration processed.
            ObjectOutcome::Duplicate { .. } | ObjectOutcome::Superseded { .. } => {
                self.metrics.count(Counter::EventsIgnored);
            }
            ObjectOutcome::Invalid { .. } => {
                self.metrics.count(Counter::ConfigurationsProcessed);
                self.metrics.count(Counter::ConfigurationsProcessedFailures);
            }
            ObjectOutcome::KeyRejected { .. }
            | ObjectOutcome::Vanished { .. }
            | ObjectOutcome::ForeignBucket { .. }
            | ObjectOutcome::Removed { .. } => {}
        }
        Ok(outcome)
    }

    /// The outcome of an event that the table settles without reading the file: the group its key's
    /// folder names (`train/<group>/config.json`) holds this object as its desired file, recorded
    /// from the event's own write (same sequencer or version id: a duplicate) or from a later one (an
    /// older write arriving late). Reading, validating and writing again could not change that
    /// group's generation, and whatever the file holds now was written later, so its own event (or
    /// the resync) brings it. `None`, read the file, for anything else: a new write, an event without
    /// sequencer or version id (a rewrite with the same ETag is a new upload), a file whose folder
    /// is not its group's name, and a table that cannot be read (the write after the read says why).
    async fn settled_by_table(&self, record: &ObjectCreated, url: &ObjectUrl) -> Option<ObjectOutcome> {
        if record.sequencer.is_none() && record.version_id.is_none() {
            return None;
        }
        let group = folder_group(&record.key)?;
        let current = match self.store.group(group).await {
            Ok(state) => state?.desired?,
            Err(error) => {
                tracing::debug!(dataset_group = %group, %url, %error, "cannot read the group before the file; reading the file");
                return None;
            }
        };
        let incoming = DesiredSource {
            url: url.clone(),
            etag: record.etag.clone(),
            version_id: record.version_id.clone(),
            sequencer: record.sequencer.clone(),
            last_modified: None,
        };
        let put = match arrival_by_event(&current.source, &incoming)? {
            Arrival::Duplicate => PutDesired::Duplicate(current),
            Arrival::Older => PutDesired::Superseded { current },
            Arrival::Newer => return None,
        };
        Some(outcome_of(put, group.to_string(), url))
    }

    async fn read_and_record(
        &self,
        record: &ObjectCreated,
        url: &ObjectUrl,
    ) -> Result<ObjectOutcome, IntakeError> {
        let (body, last_modified, read_etag) = match self.reader.read(url, self.max_config_bytes).await {
            Ok(ConfigRead::Found {
                body,
                last_modified,
                etag,
            }) => (body, last_modified, etag),
            Ok(ConfigRead::Missing) => {
                tracing::info!(%url, "the parameter file no longer exists; ignoring its event");
                return Ok(ObjectOutcome::Vanished { url: url.clone() });
            }
            Ok(ConfigRead::TooLarge { size }) => return Ok(self.too_large(url, size).await),
            Err(source) => {
                return Err(IntakeError::Read {
                    url: url.clone(),
                    source,
                });
            }
        };
        let Ok(text) = std::str::from_utf8(&body) else {
            return Ok(self
                .invalid(url, None, vec!["the file is not UTF-8 text".to_string()])
                .await);
        };
        let verdict = (self.validator)(text);
        let group = match (verdict.dataset_group, verdict.errors.is_empty()) {
            (Some(group), true) => group,
            (group, _) => {
                let mut errors = verdict.errors;
                if errors.is_empty() {
                    errors.push("datasetGroup.serviceConfig.name: a dataset group name is required".into());
                }
                return Ok(self.invalid(url, group, errors).await);
            }
        };
        let new = NewDesired {
            group: group.clone(),
            text: text.to_string(),
            source: DesiredSource {
                url: url.clone(),
                // What was read, which the resync compares with the bucket's listing.
                etag: read_etag.or_else(|| record.etag.clone()),
                version_id: record.version_id.clone(),
                sequencer: record.sequencer.clone(),
                last_modified: Some(last_modified),
            },
        };
        let put = self
            .store
            .put_desired(&new)
            .await
            .map_err(|source| IntakeError::Store {
                group: group.clone(),
                url: url.clone(),
                source,
            })?;
        Ok(outcome_of(put, group, url))
    }

    async fn too_large(&self, url: &ObjectUrl, size: u64) -> ObjectOutcome {
        let error = format!(
            "the file is {size} bytes; parameter files may be at most {} bytes",
            self.max_config_bytes
        );
        self.invalid(url, None, vec![error]).await
    }

    async fn invalid(&self, url: &ObjectUrl, group: Option<String>, errors: Vec<String>) -> ObjectOutcome {
        tracing::warn!(%url, dataset_group = group.as_deref().unwrap_or("UNKNOWN"), errors = ?errors, "invalid parameter file");
        let message = config_error_message(group.as_deref(), &url.to_string(), &errors);
        self.notifications.publish(&message).await;
        ObjectOutcome::Invalid { group, errors }
    }
}

/// The folder holding a parameter file (`g` of `train/g/config.json`, `b` of `train/a/b/x.json`): by
/// convention its dataset group's name. `None` for a file directly under `train/`.
fn folder_group(key: &str) -> Option<&str> {
    let (folders, _file) = key.strip_prefix("train/")?.rsplit_once('/')?;
    folders.rsplit('/').next().filter(|f| !f.is_empty())
}

/// What a write of a desired generation means for the event that caused it.
fn outcome_of(put: PutDesired, group: String, url: &ObjectUrl) -> ObjectOutcome {
    match put {
        PutDesired::Recorded(d) => {
            tracing::info!(dataset_group = %group, generation = d.generation, %url, "new desired generation");
            ObjectOutcome::Recorded {
                group,
                generation: d.generation,
            }
        }
        PutDesired::Duplicate(d) => {
            tracing::info!(dataset_group = %group, generation = d.generation, %url, "duplicate event; nothing to do");
            ObjectOutcome::Duplicate {
                group,
                generation: d.generation,
            }
        }
        PutDesired::Superseded { current } => {
            tracing::info!(dataset_group = %group, generation = current.generation, %url, "older event; a newer file is already recorded");
            ObjectOutcome::Superseded {
                group,
                generation: current.generation,
            }
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::metrics::MemorySink;
    use crate::notify::{MemoryNotifier, Notifier};
    use crate::objects::{MemoryStore, ObjectMeta};
    use crate::store::SqliteStore;

    const VALID: &str = r#"{"datasetGroup": {"serviceConfig": {"name": "dsg1"}}}"#;

    /// An intake of bucket `data` over `objects`, with an in-memory table, notifier and metrics.
    pub(in crate::intake) struct Fixture<O> {
        pub objects: Arc<O>,
        pub store: Arc<SqliteStore>,
        pub notifier: Arc<MemoryNotifier>,
        pub metrics: Arc<MemorySink>,
        pub intake: Intake,
    }

    pub(in crate::intake) fn fixture_over<O: ObjectStore + 'static>(
        objects: Arc<O>,
        max_config_bytes: u64,
    ) -> Fixture<O> {
        let store = Arc::new(SqliteStore::in_memory().expect("sqlite"));
        let notifier = Arc::new(MemoryNotifier::default());
        let metrics = Arc::new(MemorySink::new());
        let intake = Intake::new(
            "data",
            objects.clone(),
            store.clone(),
            Notifications::new(vec![notifier.clone() as Arc<dyn Notifier>]),
            metrics.clone(),
            spec_validator(),
            max_config_bytes,
        );
        Fixture {
            objects,
            store,
            notifier,
            metrics,
            intake,
        }
    }

    fn fixture() -> Fixture<MemoryStore> {
        fixture_over(Arc::new(MemoryStore::new()), 1024)
    }

    fn event(key_encoded: &str, etag: &str) -> String {
        serde_json::json!({"Records": [{"eventVersion": "2.1", "eventSource": "aws:s3",
            "eventName": "ObjectCreated:Put",
            "s3": {"bucket": {"name": "data"}, "object": {"key": key_encoded, "size": 1, "eTag": etag}}}]})
        .to_string()
    }

    async fn put(f: &Fixture<MemoryStore>, key: &str, body: &str) {
        f.objects
            .put(&ObjectUrl::new("data", key), Bytes::from(body.to_string()))
            .await
            .expect("put");
    }

    fn outcomes(m: MessageOutcome) -> Vec<ObjectOutcome> {
        match m {
            MessageOutcome::Records { outcomes, .. } => outcomes,
            other => panic!("not records: {other:?}"),
        }
    }

    #[tokio::test]
    async fn valid_file_becomes_one_generation_however_often_it_is_announced() {
        let f = fixture();
        put(&f, "train/dsg1/config.json", VALID).await;
        for round in 0..5 {
            let outcome = f
                .intake
                .handle_message(&event("train/dsg1/config.json", "e1"))
                .await
                .expect("handled");
            let MessageOutcome::Records { outcomes, .. } = outcome else {
                panic!("a record, not {outcome:?}");
            };
            let group = "dsg1".to_string();
            let expected = if round == 0 {
                ObjectOutcome::Recorded { group, generation: 1 }
            } else {
                ObjectOutcome::Duplicate { group, generation: 1 }
            };
            assert_eq!(outcomes, [expected], "announcement {round}");
        }
        let state = f.store.group("dsg1").await.expect("read").expect("recorded");
        let desired = state.desired.expect("desired");
        assert_eq!(desired.generation, 1);
        assert_eq!(desired.text, VALID);
        assert_eq!(
            desired.source.url,
            ObjectUrl::new("data", "train/dsg1/config.json")
        );
        assert_eq!(f.metrics.total("ConfigurationsProcessed"), 1.0);
        assert_eq!(f.metrics.total("ConfigurationsProcessedSuccesses"), 1.0);
        assert_eq!(
            f.metrics.total("EventsIgnored"),
            4.0,
            "duplicates are ignored events"
        );
        assert!(f.notifier.messages().is_empty());

        // A changed file is a new generation.
        put(&f, "train/dsg1/config.json", &VALID.replace(' ', "  ")).await;
        let out = f
            .intake
            .handle_message(&event("train/dsg1/config.json", "e2"))
            .await
            .expect("handled");
        assert_eq!(
            outcomes(out),
            vec![ObjectOutcome::Recorded {
                group: "dsg1".into(),
                generation: 2
            }]
        );
    }

    fn event_with_sequencer(key_encoded: &str, sequencer: &str) -> String {
        let mut v: serde_json::Value = serde_json::from_str(&event(key_encoded, "e")).expect("json");
        v["Records"][0]["s3"]["object"]["sequencer"] = serde_json::json!(sequencer);
        v.to_string()
    }

    #[tokio::test]
    async fn a_late_older_event_is_ignored_and_never_replaces_the_newer_generation() {
        let f = fixture();
        put(&f, "train/dsg1/config.json", VALID).await;
        let announce = |sequencer: &'static str| {
            let body = event_with_sequencer("train/dsg1/config.json", sequencer);
            let intake = f.intake.clone();
            async move { outcomes(intake.handle_message(&body).await.expect("handled")) }
        };
        let newer = announce("0055B0").await;
        assert!(matches!(newer[0], ObjectOutcome::Recorded { generation: 1, .. }));
        put(&f, "train/dsg1/config.json", &VALID.replace(' ', "\t")).await;
        let late = announce("0055A0").await;
        let superseded = ObjectOutcome::Superseded {
            group: "dsg1".into(),
            generation: 1,
        };
        assert_eq!(late, vec![superseded]);
        let desired = f.store.group("dsg1").await.expect("read").expect("group").desired;
        assert_eq!(
            desired.map(|d| (d.generation, d.text)),
            Some((1, VALID.to_string()))
        );
        assert_eq!(f.metrics.total("ConfigurationsProcessed"), 1.0);
        assert_eq!(f.metrics.total("EventsIgnored"), 1.0);
    }

    /// Counts the reads of parameter files (the daemon's S3 `GetObject`).
    #[derive(Debug)]
    struct CountingReader {
        inner: ObjectConfigReader,
        reads: std::sync::atomic::AtomicUsize,
    }

    #[async_trait::async_trait]
    impl ConfigReader for CountingReader {
        async fn read(&self, url: &ObjectUrl, limit: u64) -> Result<ConfigRead, ObjectError> {
            self.reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            self.inner.read(url, limit).await
        }
    }

    fn event_with_version(key_encoded: &str, version: &str) -> String {
        let mut v: serde_json::Value = serde_json::from_str(&event(key_encoded, "e")).expect("json");
        v["Records"][0]["s3"]["object"]["versionId"] = serde_json::json!(version);
        v.to_string()
    }

    #[tokio::test]
    async fn a_duplicate_or_late_event_is_settled_by_the_table_without_reading_the_file() {
        let f = fixture();
        let reader = Arc::new(CountingReader {
            inner: ObjectConfigReader(f.objects.clone()),
            reads: std::sync::atomic::AtomicUsize::new(0),
        });
        let intake = Intake::from_reader(
            "data",
            reader.clone(),
            f.store.clone(),
            Notifications::new(vec![f.notifier.clone() as Arc<dyn Notifier>]),
            f.metrics.clone(),
            spec_validator(),
            1024,
        );
        let reads = || reader.reads.load(std::sync::atomic::Ordering::SeqCst);
        let handle = |body: String| {
            let intake = intake.clone();
            async move { outcomes(intake.handle_message(&body).await.expect("handled")) }
        };
        let (key, group) = ("train%2Fdsg1%2Fconfig.json", "dsg1".to_string());
        let recorded = |group: &str, generation| {
            vec![ObjectOutcome::Recorded {
                group: group.into(),
                generation,
            }]
        };
        let duplicate = |group: &str, generation| {
            vec![ObjectOutcome::Duplicate {
                group: group.into(),
                generation,
            }]
        };

        put(&f, "train/dsg1/config.json", VALID).await;
        assert_eq!(
            handle(event_with_sequencer(key, "0055B0")).await,
            recorded("dsg1", 1)
        );
        assert_eq!(reads(), 1);
        for _ in 0..5 {
            assert_eq!(
                handle(event_with_sequencer(key, "0055B0")).await,
                duplicate("dsg1", 1)
            );
        }
        assert_eq!(reads(), 1, "redeliveries read nothing");

        // A late older write: superseded, as the read and the conditional write would decide, without
        // them; the file, broken since, is not reported by the old event.
        put(&f, "train/dsg1/config.json", "{ not json").await;
        let late = handle(event_with_sequencer(key, "0055A0")).await;
        assert_eq!(late, vec![ObjectOutcome::Superseded { group, generation: 1 }]);
        assert_eq!(reads(), 1);
        assert!(f.notifier.messages().is_empty());

        // A new write is read, validated and recorded.
        put(&f, "train/dsg1/config.json", &VALID.replace(' ', "\t")).await;
        assert_eq!(
            handle(event_with_sequencer(key, "0055C0")).await,
            recorded("dsg1", 2)
        );
        assert_eq!(reads(), 2);

        // One version id is one write.
        put(&f, "train/v/config.json", &VALID.replace("dsg1", "v")).await;
        let versioned = || event_with_version("train%2Fv%2Fconfig.json", "3HL4kqtJlcpXroDTDmJ");
        assert_eq!(handle(versioned()).await, recorded("v", 1));
        assert_eq!(handle(versioned()).await, duplicate("v", 1));
        assert_eq!(reads(), 3);

        // A file whose folder is not its group's name is read each time, as before: still one generation.
        put(&f, "train/elsewhere/config.json", &VALID.replace("dsg1", "other")).await;
        let elsewhere = || event_with_sequencer("train%2Felsewhere%2Fconfig.json", "01");
        assert_eq!(handle(elsewhere()).await, recorded("other", 1));
        assert_eq!(handle(elsewhere()).await, duplicate("other", 1));
        assert_eq!(reads(), 5);

        // Without a sequencer or version id only the file can tell (a rewrite with the same ETag is a
        // new upload): read.
        assert_eq!(handle(event(key, "e")).await, duplicate("dsg1", 2));
        assert_eq!(reads(), 6);
        assert_eq!(f.metrics.total("ConfigurationsProcessed"), 4.0);
        assert_eq!(
            f.metrics.total("EventsIgnored"),
            9.0,
            "5 + 1 + 1 + 1 + 1 duplicates and late events"
        );
    }

    #[test]
    fn the_folder_of_a_parameter_file_is_its_group_s_name_by_convention() {
        assert_eq!(folder_group("train/g/config.json"), Some("g"));
        assert_eq!(folder_group("train/a/b/x.json"), Some("b"));
        assert_eq!(folder_group("train/config.json"), None);
        assert_eq!(folder_group("other/g/config.json"), None);
    }

    #[tokio::test]
    async fn invalid_files_are_reported_with_every_error() {
        let f = fixture();
        put(&f, "train/bad/config.json", "{ not json").await;
        put(&f, "train/anon/config.json", r#"{"solutions": []}"#).await;
        put(&f, "train/big/config.json", &"x".repeat(2000)).await;
        put(&f, "train/bin/config.json", "\u{0}").await;
        f.objects.put_at(
            &ObjectUrl::new("data", "train/latin1/config.json"),
            Bytes::from_static(b"{\"a\": \"\xe9\"}"),
            chrono::Utc::now(),
        );
        for key in [
            "train/bad/config.json",
            "train/anon/config.json",
            "train/big/config.json",
            "train/latin1/config.json",
        ] {
            let out = outcomes(f.intake.handle_message(&event(key, "e")).await.expect("handled"));
            assert!(matches!(out[0], ObjectOutcome::Invalid { .. }), "{key}: {out:?}");
        }
        let messages = f.notifier.messages();
        assert_eq!(messages.len(), 4);
        assert!(messages.iter().all(|m| m.status == "UPDATE FAILED"));
        let bodies: Vec<String> = messages.iter().map(|m| m.body.clone()).collect();
        assert!(bodies[0].contains("Could not validate JSON"), "{}", bodies[0]);
        assert!(
            bodies[1].contains("A datasetGroup must be provided"),
            "{}",
            bodies[1]
        );
        assert!(bodies[2].contains("2000 bytes"), "{}", bodies[2]);
        assert!(bodies[3].contains("not UTF-8"), "{}", bodies[3]);
        assert_eq!(f.metrics.total("ConfigurationsProcessedFailures"), 4.0);
        assert_eq!(f.metrics.total("ConfigurationsProcessedSuccesses"), 0.0);
        assert!(f.store.list_groups().await.expect("list").is_empty());
    }

    #[tokio::test]
    async fn hostile_keys_are_ignored_and_counted() {
        let f = fixture();
        put(&f, "train/../x.json", VALID).await;
        for encoded in [
            "train%2F..%2Fx.json",
            "train%2F%2Fx.json",
            "train%2Fa%0Ab.json",
            "other%2Fx.json",
        ] {
            let out = outcomes(
                f.intake
                    .handle_message(&event(encoded, "e"))
                    .await
                    .expect("handled"),
            );
            assert!(
                matches!(out[0], ObjectOutcome::KeyRejected { .. }),
                "{encoded}: {out:?}"
            );
        }
        assert_eq!(f.metrics.total("EventsIgnored"), 4.0);
        assert_eq!(f.metrics.total("ConfigurationsProcessed"), 0.0);
        assert!(f.notifier.messages().is_empty());

        // Unicode and '+' (a space once decoded) are fine.
        put(&f, "train/ü g+/config.json", VALID).await;
        let out = outcomes(
            f.intake
                .handle_message(&event("train%2F%C3%BC+g%2B%2Fconfig.json", "e"))
                .await
                .expect("handled"),
        );
        assert!(matches!(out[0], ObjectOutcome::Recorded { .. }), "{out:?}");
    }

    #[tokio::test]
    async fn vanished_objects_test_events_and_garbage() {
        let f = fixture();
        let out = outcomes(
            f.intake
                .handle_message(&event("train%2Fgone%2Fconfig.json", "e"))
                .await
                .expect("handled"),
        );
        assert!(matches!(out[0], ObjectOutcome::Vanished { .. }), "{out:?}");
        let test = r#"{"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "data"}"#;
        assert_eq!(
            f.intake.handle_message(test).await.expect("test event"),
            MessageOutcome::TestEvent
        );
        for garbage in ["hello", "{}", r#"{"Records": [{"eventName": 5}]}"#] {
            let out = f
                .intake
                .handle_message(garbage)
                .await
                .expect("garbage is an outcome");
            assert!(
                matches!(out, MessageOutcome::Rejected(Rejection::Unparseable(_))),
                "{garbage}: {out:?}"
            );
        }
        assert_eq!(f.metrics.total("MessagesRejected"), 3.0);
        // The removal of a file no group was recorded from changes nothing.
        let removed = event("train%2Fx.json", "e").replace("ObjectCreated:Put", "ObjectRemoved:Delete");
        let out = f.intake.handle_message(&removed).await.expect("handled");
        assert_eq!(
            out,
            MessageOutcome::Records {
                outcomes: vec![ObjectOutcome::Removed { removals: vec![] }],
                ignored: 0
            }
        );
    }

    #[tokio::test]
    async fn events_of_another_bucket_are_rejected_whole_even_when_it_is_readable() {
        let f = fixture();
        put(&f, "train/dsg1/config.json", VALID).await;
        // A bucket the role can read, holding a perfectly valid file.
        f.objects
            .put(
                &ObjectUrl::new("foreign", "train/evil/config.json"),
                Bytes::from(VALID.replace("dsg1", "evil")),
            )
            .await
            .expect("put");
        let foreign =
            event("train%2Fevil%2Fconfig.json", "e").replace(r#""name":"data""#, r#""name":"foreign""#);
        assert!(foreign.contains("foreign"), "{foreign}");
        let out = f.intake.handle_message(&foreign).await.expect("handled");
        assert_eq!(
            out,
            MessageOutcome::Rejected(Rejection::ForeignBucket {
                index: 0,
                bucket: "foreign".into(),
                key: "train/evil/config.json".into(),
                expected: "data".into(),
            })
        );
        // A message mixing our bucket's record with a foreign one: nothing of it is acted on.
        let mut mixed: serde_json::Value =
            serde_json::from_str(&event("train%2Fdsg1%2Fconfig.json", "e")).expect("json");
        let foreign_record: serde_json::Value = serde_json::from_str(&foreign).expect("json");
        mixed["Records"]
            .as_array_mut()
            .expect("records")
            .push(foreign_record["Records"][0].clone());
        let out = f
            .intake
            .handle_message(&mixed.to_string())
            .await
            .expect("handled");
        assert!(
            matches!(
                out,
                MessageOutcome::Rejected(Rejection::ForeignBucket { index: 1, .. })
            ),
            "{out:?}"
        );
        // Direct callers (the directory watcher, the resync) are refused too.
        let record = ObjectCreated::bare("foreign", "train/evil/config.json", "ObjectCreated:Put");
        assert_eq!(
            f.intake.handle_object(&record).await.expect("handled"),
            ObjectOutcome::ForeignBucket {
                url: ObjectUrl::new("foreign", "train/evil/config.json")
            }
        );
        assert!(f.store.list_groups().await.expect("list").is_empty());
        assert!(f.notifier.messages().is_empty());
        assert_eq!(f.metrics.total("MessagesRejected"), 3.0);
        assert_eq!(f.metrics.total("ConfigurationsProcessed"), 0.0);
    }

    #[derive(Debug)]
    struct BrokenObjects;

    #[async_trait::async_trait]
    impl ObjectStore for BrokenObjects {
        async fn list(&self, prefix: &ObjectUrl, _: bool) -> Result<Vec<ObjectMeta>, ObjectError> {
            Err(broken(prefix))
        }
        async fn head(&self, url: &ObjectUrl) -> Result<Option<ObjectMeta>, ObjectError> {
            Err(broken(url))
        }
        async fn get(&self, url: &ObjectUrl, _: u64) -> Result<Bytes, ObjectError> {
            Err(broken(url))
        }
        async fn put(&self, url: &ObjectUrl, _: Bytes) -> Result<(), ObjectError> {
            Err(broken(url))
        }
    }

    fn broken(url: &ObjectUrl) -> ObjectError {
        ObjectError::Backend {
            op: "head",
            url: url.clone(),
            source: "connection refused".into(),
        }
    }

    #[tokio::test]
    async fn read_failures_are_retryable_errors_and_count_nothing() {
        let f = fixture();
        let intake = Intake::new(
            "data",
            Arc::new(BrokenObjects),
            f.store.clone(),
            Notifications::default(),
            f.metrics.clone(),
            spec_validator(),
            1024,
        );
        let err = intake
            .handle_message(&event("train%2Fdsg1%2Fconfig.json", "e"))
            .await
            .expect_err("S3 down");
        assert!(matches!(err, IntakeError::Read { .. }), "{err}");
        assert!(
            err.to_string().contains("s3://data/train/dsg1/config.json"),
            "{err}"
        );
        assert_eq!(f.metrics.total("ConfigurationsProcessed"), 0.0);
    }

    #[test]
    fn spec_validator_names_the_group_even_in_invalid_files() {
        let v = spec_validator();
        assert_eq!(
            v(VALID),
            ValidationOutcome {
                dataset_group: Some("dsg1".into()),
                errors: vec![]
            }
        );
        let invalid = v(r#"{"datasetGroup": {"serviceConfig": {"name": "dsg1", "nope": 1}}}"#);
        assert_eq!(invalid.dataset_group.as_deref(), Some("dsg1"));
        assert!(!invalid.errors.is_empty());
        assert!(v("[]").dataset_group.is_none());
    }
}
