//! An object address (`s3://bucket/key`), a plain value: the pure core (`spec`) names data locations
//! with it, and the object-store port (`objects`) reads and writes at it.

use std::fmt;

/// An object address: `s3://bucket/key`. A "prefix" is an address whose key names a folder.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectUrl {
    /// The bucket name.
    pub bucket: String,
    /// The key inside the bucket; empty for the bucket root.
    pub key: String,
}

impl ObjectUrl {
    /// The address of `key` in `bucket`.
    pub fn new(bucket: impl Into<String>, key: impl Into<String>) -> Self {
        Self {
            bucket: bucket.into(),
            key: key.into(),
        }
    }

    /// The address of `name` inside this folder (a `/` is inserted when missing).
    pub fn join(&self, name: &str) -> Self {
        let key = if self.key.is_empty() || self.key.ends_with('/') {
            format!("{}{name}", self.key)
        } else {
            format!("{}/{name}", self.key)
        };
        Self::new(self.bucket.clone(), key)
    }
}

impl fmt::Display for ObjectUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.key)
    }
}
