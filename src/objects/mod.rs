//! The object-store port: S3 through the AWS SDK, or a local directory.
//!
//! Everything that reads parameter files, CSV data or batch files goes through [`ObjectStore`], so the
//! reconciler, the daemon and the built-in Personalize run unchanged on S3 (moto in tests) and on a
//! directory (`local` mode).

use std::fmt;

use bytes::Bytes;
use chrono::{DateTime, Utc};

mod dir;
mod memory;
mod s3;

pub use dir::DirStore;
pub use memory::MemoryStore;
pub use s3::S3Store;

pub use crate::object_url::ObjectUrl;

// Parsing reports the port's error ([`ObjectError::BadUrl`]), so it lives here with the port; the
// type itself is a leaf the pure core can name.
impl ObjectUrl {
    /// Parses `s3://bucket/key` (the key may be empty or end in `/`).
    pub fn parse(url: &str) -> Result<Self, ObjectError> {
        let rest = url.strip_prefix("s3://").ok_or_else(|| ObjectError::BadUrl {
            url: url.to_string(),
            reason: "must start with s3://",
        })?;
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(ObjectError::BadUrl {
                url: url.to_string(),
                reason: "the bucket name is empty",
            });
        }
        Ok(Self::new(bucket, key))
    }
}

/// What a listing or a HEAD says about an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    /// Where the object is.
    pub url: ObjectUrl,
    /// Its length in bytes.
    pub size: u64,
    /// When it was last written (S3's `LastModified`, a file's mtime).
    pub last_modified: DateTime<Utc>,
    /// S3's ETag without its quotes (as S3 event notifications spell it); changes with the content
    /// even within the second `LastModified` resolves. `None` where the store has none (a directory).
    pub etag: Option<String>,
}

/// An ETag as S3 event notifications spell it: the quotes that `ListObjectsV2` and `HeadObject` put
/// around it removed, so both spellings compare equal.
pub fn bare_etag(etag: &str) -> String {
    etag.trim_matches('"').to_string()
}

/// Why an object operation failed. Every variant names the object.
#[derive(Debug, thiserror::Error)]
pub enum ObjectError {
    /// The address is not an `s3://bucket/key` this store can serve.
    #[error("{url}: {reason}")]
    BadUrl {
        /// The address as given.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Nothing is stored at `url`.
    #[error("{url} does not exist")]
    NotFound {
        /// The missing object.
        url: ObjectUrl,
    },
    /// The object is larger than the caller is willing to read.
    #[error("{url} is {size} bytes, more than the limit of {limit}")]
    TooLarge {
        /// The object.
        url: ObjectUrl,
        /// Its size in bytes.
        size: u64,
        /// The caller's limit in bytes.
        limit: u64,
    },
    /// The backend (S3, the file system) failed.
    #[error("{op} {url} failed: {source}")]
    Backend {
        /// The operation (`get`, `put`, `list`, `head`).
        op: &'static str,
        /// The object or prefix it was about.
        url: ObjectUrl,
        /// The backend's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// An object store. Implementations must be cheap to share (`Arc<dyn ObjectStore>`).
#[async_trait::async_trait]
pub trait ObjectStore: Send + Sync + fmt::Debug {
    /// Objects under `prefix` (its key taken literally as a key prefix), sorted by key. With
    /// `recursive == false` only direct children are listed (keys with no further `/` after the
    /// prefix), as S3's `Delimiter="/"` does.
    async fn list(&self, prefix: &ObjectUrl, recursive: bool) -> Result<Vec<ObjectMeta>, ObjectError>;

    /// The object's metadata, `None` when it does not exist.
    async fn head(&self, url: &ObjectUrl) -> Result<Option<ObjectMeta>, ObjectError>;

    /// The whole object; `NotFound` when it does not exist, `TooLarge` when it exceeds `limit` bytes.
    async fn get(&self, url: &ObjectUrl, limit: u64) -> Result<Bytes, ObjectError>;

    /// Writes (replaces) the object.
    async fn put(&self, url: &ObjectUrl, body: Bytes) -> Result<(), ObjectError>;
}

/// Whether `key` appears in a listing of `prefix`: S3's rule, a literal key prefix, and with
/// `recursive == false` no further `/` after it (what `Delimiter="/"` leaves as objects).
pub(crate) fn is_listed(prefix: &str, key: &str, recursive: bool) -> bool {
    key.strip_prefix(prefix)
        .is_some_and(|rest| recursive || !rest.contains('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_joins_urls() {
        let u = ObjectUrl::parse("s3://data/train/g1/config.json").expect("valid");
        assert_eq!(u.bucket, "data");
        assert_eq!(u.key, "train/g1/config.json");
        assert_eq!(ObjectUrl::parse("s3://data").expect("bucket only").key, "");
        assert_eq!(
            ObjectUrl::new("b", "train/g1").join("users.csv").to_string(),
            "s3://b/train/g1/users.csv"
        );
        assert_eq!(ObjectUrl::new("b", "train/g1/").join("x").key, "train/g1/x");
        assert_eq!(ObjectUrl::new("b", "").join("x").key, "x");
    }

    #[test]
    fn listing_rule_is_a_literal_prefix() {
        assert!(is_listed("train/", "train/a.csv", false));
        assert!(!is_listed("train/", "train/g1/a.csv", false));
        assert!(is_listed("train/", "train/g1/a.csv", true));
        assert!(is_listed("train/g", "train/g1.csv", false));
        assert!(!is_listed("train/g", "train/g1/x.csv", false));
        assert!(!is_listed("train/", "trainer/a.csv", true));
        assert!(is_listed("", "a", false));
        assert!(!is_listed("", "a/b", false));
    }

    #[test]
    fn rejects_bad_urls() {
        assert!(ObjectUrl::parse("http://x/y").is_err());
        assert!(ObjectUrl::parse("s3:///key").is_err());
        assert!(ObjectUrl::parse("").is_err());
    }
}
