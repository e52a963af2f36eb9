//! An in-memory object store with S3's semantics and a settable clock, for tests.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use bytes::Bytes;
use chrono::{DateTime, Utc};

use super::{ObjectError, ObjectMeta, ObjectStore, ObjectUrl, is_listed};
use crate::locks::LockRecovering;

/// Objects kept in memory. Every bucket exists and starts empty; keys are taken literally, as S3
/// does (`..` is just two characters here).
///
/// `last_modified` is the store's clock at the time of the write: the wall clock, or the instant set
/// with [`MemoryStore::set_now`], so freshness logic can be tested without sleeping.
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Keyed by URL so a listing is a sorted range scan, as S3 sorts by key.
    objects: BTreeMap<ObjectUrl, Stored>,
    /// `None`: the wall clock.
    now: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone)]
struct Stored {
    body: Bytes,
    last_modified: DateTime<Utc>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Freezes the clock that stamps later writes (`None` goes back to the wall clock).
    pub fn set_now(&self, now: Option<DateTime<Utc>>) {
        self.lock().now = now;
    }

    /// Writes an object with an explicit modification time.
    pub fn put_at(&self, url: &ObjectUrl, body: impl Into<Bytes>, last_modified: DateTime<Utc>) {
        self.lock().objects.insert(
            url.clone(),
            Stored {
                body: body.into(),
                last_modified,
            },
        );
    }

    /// Every stored URL, sorted (a test helper to assert what a job wrote).
    pub fn urls(&self) -> Vec<ObjectUrl> {
        self.lock().objects.keys().cloned().collect()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // No code path panics while holding the lock, and the map stays consistent even if one did.
        self.state.lock_recovering()
    }
}

fn meta(url: &ObjectUrl, stored: &Stored) -> ObjectMeta {
    // Not S3's MD5, but like it a function of the content alone, which is what callers rely on.
    let mut hasher = std::hash::DefaultHasher::new();
    std::hash::Hash::hash(&stored.body[..], &mut hasher);
    ObjectMeta {
        url: url.clone(),
        size: stored.body.len() as u64,
        last_modified: stored.last_modified,
        etag: Some(format!("{:016x}", std::hash::Hasher::finish(&hasher))),
    }
}

#[async_trait::async_trait]
impl ObjectStore for MemoryStore {
    async fn list(&self, prefix: &ObjectUrl, recursive: bool) -> Result<Vec<ObjectMeta>, ObjectError> {
        let state = self.lock();
        let start = ObjectUrl::new(prefix.bucket.clone(), prefix.key.clone());
        Ok(state
            .objects
            .range(start..)
            .take_while(|(url, _)| url.bucket == prefix.bucket && url.key.starts_with(&prefix.key))
            .filter(|(url, _)| is_listed(&prefix.key, &url.key, recursive))
            .map(|(url, stored)| meta(url, stored))
            .collect())
    }

    async fn head(&self, url: &ObjectUrl) -> Result<Option<ObjectMeta>, ObjectError> {
        Ok(self.lock().objects.get(url).map(|stored| meta(url, stored)))
    }

    async fn get(&self, url: &ObjectUrl, limit: u64) -> Result<Bytes, ObjectError> {
        let state = self.lock();
        let stored = state
            .objects
            .get(url)
            .ok_or_else(|| ObjectError::NotFound { url: url.clone() })?;
        let size = stored.body.len() as u64;
        if size > limit {
            return Err(ObjectError::TooLarge {
                url: url.clone(),
                size,
                limit,
            });
        }
        Ok(stored.body.clone())
    }

    async fn put(&self, url: &ObjectUrl, body: Bytes) -> Result<(), ObjectError> {
        let mut state = self.lock();
        let last_modified = state.now.unwrap_or_else(Utc::now);
        state.objects.insert(url.clone(), Stored { body, last_modified });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[tokio::test]
    async fn the_settable_clock_stamps_writes() {
        let store = MemoryStore::new();
        let t = Utc
            .with_ymd_and_hms(2024, 5, 1, 12, 0, 0)
            .single()
            .expect("valid date");
        store.set_now(Some(t));
        let url = ObjectUrl::new("b", "k");
        store.put(&url, Bytes::from_static(b"x")).await.expect("put");
        let head = store.head(&url).await.expect("head").expect("exists");
        assert_eq!(head.last_modified, t);
        let older = t - chrono::Duration::days(3);
        store.put_at(&url, "y", older);
        assert_eq!(
            store
                .head(&url)
                .await
                .expect("head")
                .expect("exists")
                .last_modified,
            older
        );
        assert_eq!(store.urls(), vec![url]);
    }

    #[tokio::test]
    async fn buckets_are_separate() {
        let store = MemoryStore::new();
        store.put_at(&ObjectUrl::new("a", "x"), "1", Utc::now());
        store.put_at(&ObjectUrl::new("b", "x"), "2", Utc::now());
        let listed = store.list(&ObjectUrl::new("a", ""), true).await.expect("list");
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].url.bucket, "a");
    }
}
