//! The resync's look at the bucket, the source of truth: every `train/**.json` the state table has no
//! record of, or only an older write of, is handed to the intake exactly as its event would have been.
//!
//! Events can be lost: a message dead-lettered while the state table was down, a notification S3
//! dropped, a queue purged by hand. Listing the bucket (keys, ETags and `LastModified`, a few paged
//! `ListObjectsV2` calls) and comparing it with the table's recorded sources finds every such upload;
//! only the files that differ are read.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::event::ObjectCreated;
use super::handler::{Intake, IntakeError, ObjectOutcome};
use super::keys::check_config_key;
use crate::locks::LockRecovering;
use crate::metrics::{Counter, MetricsSink};
use crate::objects::{ObjectError, ObjectMeta, ObjectStore, ObjectUrl, bare_etag};
use crate::store::{DesiredSource, GroupBrief, StateStore, StoreError};

/// Where parameter files live in the bucket.
const TRAIN_PREFIX: &str = "train/";

/// The `eventName` of the records a rescan hands to the intake, so its log lines tell them from events.
pub const RESCAN_EVENT_NAME: &str = "ObjectCreated:Resync";

/// Why a rescan stopped. Files handled before the failure stay handled.
#[derive(Debug, thiserror::Error)]
pub enum RescanError {
    /// The bucket could not be listed.
    #[error("resync: cannot list {prefix}: {source}")]
    List {
        /// `s3://<bucket>/train/`.
        prefix: ObjectUrl,
        /// What the object store said.
        #[source]
        source: ObjectError,
    },
    /// The state table could not be read, so nothing could be compared.
    #[error("resync: cannot read the recorded parameter files of the state table: {0}")]
    Table(#[source] StoreError),
    /// Recording a file failed because the state table failed; the other files would fail alike.
    #[error("resync: {0}")]
    Record(#[source] IntakeError),
}

/// What one rescan did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[must_use]
pub struct RescanReport {
    /// Objects listed under `train/`.
    pub listed: usize,
    /// Of those, keys that are not parameter files (other extensions, hostile keys): not read.
    pub not_config: usize,
    /// Parameter files whose write the table (or this process) already knows: not read.
    pub up_to_date: usize,
    /// Files read that became a new desired generation: their event was lost (or is still on its way).
    pub recorded: usize,
    /// Files read that changed nothing (the table had the same or a newer write of the group).
    pub unchanged: usize,
    /// Files read that are invalid (reported to the user, as their event would have been).
    pub invalid: usize,
    /// Files that could not be read; the next rescan tries again.
    pub failed: usize,
}

/// One write of an object as a listing shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Write {
    last_modified_ms: i64,
    etag: Option<String>,
}

impl Write {
    fn of(object: &ObjectMeta) -> Self {
        Self {
            last_modified_ms: object.last_modified.timestamp_millis(),
            etag: object.etag.as_deref().map(bare_etag),
        }
    }
}

/// Whether the listed object is a later write than the one the table recorded from the same key.
fn newer_than_recorded(listed: &Write, recorded: &DesiredSource) -> bool {
    // Without a recorded time nothing can be compared: read it and let the store's ordering decide.
    let Some(at) = recorded.last_modified else {
        return true;
    };
    let recorded_ms = at.timestamp_millis();
    if listed.last_modified_ms != recorded_ms {
        return listed.last_modified_ms > recorded_ms;
    }
    // S3 stamps LastModified to the second: two writes within one second differ only by their ETag.
    match (&listed.etag, &recorded.etag) {
        (Some(listed), Some(recorded)) => *listed != bare_etag(recorded),
        _ => false,
    }
}

/// Compares the bucket with the state table and records what the table lacks.
pub struct Rescanner {
    intake: Arc<Intake>,
    objects: Arc<dyn ObjectStore>,
    store: Arc<dyn StateStore>,
    metrics: Arc<dyn MetricsSink>,
    /// Writes this process has already handed over (or found recorded), by key: an invalid file, or
    /// one superseded by another file naming the same group, is never in the table, and would
    /// otherwise be read (and reported) again on every rescan.
    handled: Mutex<HashMap<String, Write>>,
}

impl std::fmt::Debug for Rescanner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rescanner")
            .field("intake", &self.intake)
            .field("objects", &self.objects)
            .finish_non_exhaustive()
    }
}

impl Rescanner {
    /// Lists the intake's bucket through `objects` and compares it with `store`.
    pub fn new(
        intake: Arc<Intake>,
        objects: Arc<dyn ObjectStore>,
        store: Arc<dyn StateStore>,
        metrics: Arc<dyn MetricsSink>,
    ) -> Self {
        Self {
            intake,
            objects,
            store,
            metrics,
            handled: Mutex::default(),
        }
    }

    /// One comparison of the bucket with the table: every parameter file newer than the table's record
    /// of its key, or unknown to it, goes through [`Intake::handle_object`] as its event would.
    ///
    /// # Errors
    /// The listing or the table failed; files handled before stay handled, and the next rescan
    /// starts over. A file that cannot be read is counted in [`RescanReport::failed`] instead.
    pub async fn rescan(&self) -> Result<RescanReport, RescanError> {
        let groups = self.store.list_briefs().await.map_err(RescanError::Table)?;
        self.rescan_against(&groups).await
    }

    /// As [`Rescanner::rescan`], against a listing of the table the caller has already read (the
    /// resync lists it once for this and for its plan): a group recorded after the listing is
    /// taken for unknown, its file read again and found a duplicate, which changes nothing.
    ///
    /// # Errors
    /// As [`Rescanner::rescan`].
    pub async fn rescan_against(&self, groups: &[GroupBrief]) -> Result<RescanReport, RescanError> {
        let bucket = self.intake.bucket().to_string();
        let prefix = ObjectUrl::new(bucket.clone(), TRAIN_PREFIX);
        let listed = self
            .objects
            .list(&prefix, true)
            .await
            .map_err(|source| RescanError::List {
                prefix: prefix.clone(),
                source,
            })?;
        let recorded = recorded_sources(groups, &bucket);
        let mut report = RescanReport {
            listed: listed.len(),
            ..RescanReport::default()
        };
        // Deleted files are forgotten, so the memory follows the bucket.
        {
            let present: std::collections::HashSet<&str> =
                listed.iter().map(|o| o.url.key.as_str()).collect();
            self.handled
                .lock_recovering()
                .retain(|key, _| present.contains(key.as_str()));
        }
        for object in listed {
            let key = object.url.key.clone();
            if check_config_key(&key).is_err() {
                report.not_config += 1;
                continue;
            }
            let write = Write::of(&object);
            if self.handled.lock_recovering().get(&key) == Some(&write) {
                report.up_to_date += 1;
                continue;
            }
            if recorded
                .get(&key)
                .is_some_and(|source| !newer_than_recorded(&write, source))
            {
                self.handled.lock_recovering().insert(key, write);
                report.up_to_date += 1;
                continue;
            }
            let record = ObjectCreated {
                size: Some(object.size),
                etag: write.etag.clone(),
                ..ObjectCreated::bare(bucket.clone(), key.clone(), RESCAN_EVENT_NAME)
            };
            match self.intake.handle_object(&record).await {
                Ok(outcome) => {
                    match outcome {
                        ObjectOutcome::Recorded { group, generation } => {
                            tracing::info!(dataset_group = %group, generation, url = %object.url, "resync: a parameter file the state table did not have (its event was lost or is late) is recorded");
                            self.metrics.count(Counter::ResyncRecorded);
                            report.recorded += 1;
                        }
                        ObjectOutcome::Invalid { .. } => report.invalid += 1,
                        _ => report.unchanged += 1,
                    }
                    self.handled.lock_recovering().insert(key, write);
                }
                Err(e @ IntakeError::Store { .. }) => return Err(RescanError::Record(e)),
                Err(e) => {
                    tracing::warn!(url = %object.url, error = %e, "resync: cannot read a parameter file; trying again on the next resync");
                    report.failed += 1;
                }
            }
        }
        tracing::debug!(?report, "resync of the bucket");
        Ok(report)
    }
}

/// The source of every recorded desired state in `bucket`, by key: the latest write when several
/// groups were recorded from one key (a file that renamed its group).
fn recorded_sources(groups: &[GroupBrief], bucket: &str) -> HashMap<String, DesiredSource> {
    let mut sources: HashMap<String, DesiredSource> = HashMap::new();
    for source in groups.iter().filter_map(|g| g.desired_source.as_ref()) {
        if source.url.bucket != bucket {
            continue;
        }
        match sources.get(&source.url.key) {
            Some(known) if known.last_modified >= source.last_modified => {}
            _ => {
                sources.insert(source.url.key.clone(), source.clone());
            }
        }
    }
    sources
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use bytes::Bytes;
    use chrono::{DateTime, TimeZone, Utc};

    use super::*;
    use crate::intake::handler::tests::fixture_over;
    use crate::metrics::MemorySink;
    use crate::notify::MemoryNotifier;
    use crate::objects::MemoryStore;
    use crate::store::SqliteStore;

    /// An object store that counts reads and can be made to fail its listing.
    #[derive(Debug, Default)]
    struct Counting {
        inner: MemoryStore,
        reads: AtomicUsize,
        list_fails: std::sync::atomic::AtomicBool,
    }

    #[async_trait::async_trait]
    impl ObjectStore for Counting {
        async fn list(&self, prefix: &ObjectUrl, recursive: bool) -> Result<Vec<ObjectMeta>, ObjectError> {
            if self.list_fails.load(Ordering::SeqCst) {
                return Err(ObjectError::Backend {
                    op: "list",
                    url: prefix.clone(),
                    source: "connection refused".into(),
                });
            }
            self.inner.list(prefix, recursive).await
        }
        async fn head(&self, url: &ObjectUrl) -> Result<Option<ObjectMeta>, ObjectError> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            self.inner.head(url).await
        }
        async fn get(&self, url: &ObjectUrl, limit: u64) -> Result<Bytes, ObjectError> {
            self.inner.get(url, limit).await
        }
        async fn put(&self, url: &ObjectUrl, body: Bytes) -> Result<(), ObjectError> {
            self.inner.put(url, body).await
        }
    }

    struct Fixture {
        objects: Arc<Counting>,
        store: Arc<SqliteStore>,
        notifier: Arc<MemoryNotifier>,
        metrics: Arc<MemorySink>,
        intake: Arc<Intake>,
        rescanner: Rescanner,
    }

    fn fixture() -> Fixture {
        let parts = fixture_over(Arc::new(Counting::default()), 4096);
        let intake = Arc::new(parts.intake);
        let rescanner = Rescanner::new(
            intake.clone(),
            parts.objects.clone(),
            parts.store.clone(),
            parts.metrics.clone(),
        );
        Fixture {
            objects: parts.objects,
            store: parts.store,
            notifier: parts.notifier,
            metrics: parts.metrics,
            intake,
            rescanner,
        }
    }

    fn file(group: &str, extra: &str) -> String {
        format!(r#"{{"datasetGroup": {{"serviceConfig": {{"name": "{group}"}}}}{extra}}}"#)
    }

    fn at(second: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 5, 12, 0, second)
            .single()
            .expect("valid instant")
    }

    impl Fixture {
        fn upload(&self, key: &str, body: String, when: DateTime<Utc>) {
            self.objects
                .inner
                .put_at(&ObjectUrl::new("data", key), body, when);
        }

        async fn generation(&self, group: &str) -> Option<u64> {
            let state = self.store.group(group).await.expect("read");
            state.and_then(|g| g.desired).map(|d| d.generation)
        }

        fn reads(&self) -> usize {
            self.objects.reads.load(Ordering::SeqCst)
        }

        /// What the event of `key` would do, as S3 would have sent it.
        async fn event(&self, key: &str) -> ObjectOutcome {
            let record = ObjectCreated::bare("data", key, "ObjectCreated:Put");
            self.intake.handle_object(&record).await.expect("handled")
        }
    }

    #[tokio::test]
    async fn an_upload_whose_event_was_lost_is_recorded_once() {
        let f = fixture();
        f.upload("train/lost/config.json", file("lost", ""), at(1));
        let report = f.rescanner.rescan().await.expect("rescan");
        assert_eq!(
            report,
            RescanReport {
                listed: 1,
                recorded: 1,
                ..RescanReport::default()
            }
        );
        assert_eq!(f.generation("lost").await, Some(1));
        let state = f.store.group("lost").await.expect("read").expect("group");
        assert!(state.due_at.is_some(), "recorded like an event: the group is due");
        assert_eq!(f.metrics.total("ResyncRecorded"), 1.0);
        assert_eq!(f.metrics.total("ConfigurationsProcessedSuccesses"), 1.0);

        // Nothing changed: nothing is read again, in this process or another one.
        let reads = f.reads();
        let again = f.rescanner.rescan().await.expect("rescan");
        assert_eq!((again.up_to_date, again.recorded), (1, 0));
        let fresh = Rescanner::new(
            f.intake.clone(),
            f.objects.clone(),
            f.store.clone(),
            f.metrics.clone(),
        );
        assert_eq!(fresh.rescan().await.expect("rescan").up_to_date, 1);
        assert_eq!(f.reads(), reads, "an up-to-date file is never read");
        assert_eq!(f.generation("lost").await, Some(1));
        // The late event of the same write is a duplicate.
        assert!(matches!(
            f.event("train/lost/config.json").await,
            ObjectOutcome::Duplicate { generation: 1, .. }
        ));
    }

    #[tokio::test]
    async fn a_file_no_newer_than_the_tables_record_is_not_read_and_a_newer_one_is_recorded() {
        let f = fixture();
        f.upload("train/g/config.json", file("g", ""), at(5));
        assert!(matches!(
            f.event("train/g/config.json").await,
            ObjectOutcome::Recorded { generation: 1, .. }
        ));
        let reads = f.reads();
        let report = f.rescanner.rescan().await.expect("rescan");
        assert_eq!((report.up_to_date, report.recorded), (1, 0));
        assert_eq!(f.reads(), reads);

        // Rewritten (its event lost) within the same second: only the ETag tells.
        f.upload("train/g/config.json", file("g", r#", "solutions": []"#), at(5));
        let report = f.rescanner.rescan().await.expect("rescan");
        assert_eq!(report.recorded, 1, "{report:?}");
        assert_eq!(f.generation("g").await, Some(2));

        // Rewritten later: recorded again.
        f.upload("train/g/config.json", file("g", r#", "solutions": [] "#), at(9));
        assert_eq!(f.rescanner.rescan().await.expect("rescan").recorded, 1);
        assert_eq!(f.generation("g").await, Some(3));

        // A listing older than the record (a stale replica of the bucket, a clock step) is skipped.
        f.upload("train/g/config.json", file("g", r#", "eventTracker": {}"#), at(2));
        let report = f.rescanner.rescan().await.expect("rescan");
        assert_eq!((report.up_to_date, report.recorded), (1, 0));
        assert_eq!(f.generation("g").await, Some(3));
        assert_eq!(f.metrics.total("ResyncRecorded"), 2.0);
    }

    #[tokio::test]
    async fn invalid_files_are_reported_once_and_other_keys_never_read() {
        let f = fixture();
        f.upload("train/bad/config.json", "{ not json".into(), at(1));
        f.upload("train/g/users.csv", "USER_ID\n1\n".into(), at(1));
        f.upload("train/../escape.json", file("escape", ""), at(1));
        f.upload("other/x.json", file("other", ""), at(1));
        f.objects.inner.put_at(
            &ObjectUrl::new("foreign", "train/f/config.json"),
            file("f", ""),
            at(1),
        );
        let report = f.rescanner.rescan().await.expect("rescan");
        assert_eq!(
            report,
            RescanReport {
                listed: 3,
                not_config: 2,
                invalid: 1,
                ..RescanReport::default()
            }
        );
        assert_eq!(f.reads(), 1);
        assert_eq!(f.notifier.messages().len(), 1);
        assert!(f.notifier.messages()[0].body.contains("Could not validate JSON"));
        // Reported once per write, not on every resync.
        let report = f.rescanner.rescan().await.expect("rescan");
        assert_eq!((report.up_to_date, report.invalid), (1, 0));
        assert_eq!(f.notifier.messages().len(), 1);
        // Fixed: recorded.
        f.upload("train/bad/config.json", file("bad", ""), at(3));
        assert_eq!(f.rescanner.rescan().await.expect("rescan").recorded, 1);
        assert!(
            f.store
                .list_groups()
                .await
                .expect("list")
                .iter()
                .all(|g| g.name == "bad")
        );
    }

    #[tokio::test]
    async fn a_listing_failure_is_an_error_and_records_nothing() {
        let f = fixture();
        f.upload("train/g/config.json", file("g", ""), at(1));
        f.objects.list_fails.store(true, Ordering::SeqCst);
        let err = f.rescanner.rescan().await.expect_err("listing fails");
        assert!(matches!(err, RescanError::List { .. }), "{err}");
        assert!(err.to_string().contains("s3://data/train/"), "{err}");
        assert_eq!(f.generation("g").await, None);
        // Once the bucket answers again, the next resync catches up.
        f.objects.list_fails.store(false, Ordering::SeqCst);
        assert_eq!(f.rescanner.rescan().await.expect("rescan").recorded, 1);
    }

    #[test]
    fn newer_compares_time_then_etag() {
        let source = |ms: Option<i64>, etag: Option<&str>| DesiredSource {
            url: ObjectUrl::new("data", "train/g/config.json"),
            etag: etag.map(str::to_string),
            version_id: None,
            sequencer: None,
            last_modified: ms.and_then(DateTime::from_timestamp_millis),
        };
        let listed = |ms: i64, etag: Option<&str>| Write {
            last_modified_ms: ms,
            etag: etag.map(str::to_string),
        };
        assert!(newer_than_recorded(
            &listed(2000, None),
            &source(Some(1000), None)
        ));
        assert!(!newer_than_recorded(
            &listed(1000, None),
            &source(Some(2000), None)
        ));
        assert!(!newer_than_recorded(
            &listed(1000, Some("a")),
            &source(Some(1000), Some("\"a\""))
        ));
        assert!(newer_than_recorded(
            &listed(1000, Some("b")),
            &source(Some(1000), Some("a"))
        ));
        assert!(!newer_than_recorded(
            &listed(1000, Some("b")),
            &source(Some(1000), None)
        ));
        assert!(newer_than_recorded(&listed(1000, None), &source(None, None)));
    }
}
