//! How the intake reads a parameter file: one small port, [`ConfigReader`], so tests can inject a slow
//! or failing reader; S3 (one size-capped `GetObject`) and any [`ObjectStore`] implement it.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_s3::error::ProvideErrorMetadata;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use tokio::io::AsyncReadExt;

use crate::aws::AwsFailure;
use crate::objects::{ObjectError, ObjectStore, ObjectUrl};

/// What reading a parameter file found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigRead {
    /// The whole file, at most the limit asked for.
    Found {
        body: Bytes,
        /// `LastModified` of the object read.
        last_modified: DateTime<Utc>,
        /// ETag of the object read (unquoted), when the store has one: it identifies the content
        /// recorded, which may be a later write than the one the event announced.
        etag: Option<String>,
    },
    /// The object does not exist (deleted after its event).
    Missing,
    /// The object is bigger than the limit; it was not read whole.
    TooLarge { size: u64 },
}

/// Reads parameter files for the intake.
#[async_trait]
pub trait ConfigReader: Send + Sync + fmt::Debug {
    /// Reads `url` if it is at most `limit` bytes.
    ///
    /// # Errors
    /// Only failures worth retrying (the store did not answer); a missing or oversized object is an
    /// `Ok` outcome.
    async fn read(&self, url: &ObjectUrl, limit: u64) -> Result<ConfigRead, ObjectError>;
}

/// A [`ConfigReader`] over any [`ObjectStore`] (a directory in `local` mode, memory in tests): a HEAD
/// for the size and time, then a capped GET.
#[derive(Debug, Clone)]
pub struct ObjectConfigReader(pub Arc<dyn ObjectStore>);

#[async_trait]
impl ConfigReader for ObjectConfigReader {
    async fn read(&self, url: &ObjectUrl, limit: u64) -> Result<ConfigRead, ObjectError> {
        let Some(meta) = self.0.head(url).await? else {
            return Ok(ConfigRead::Missing);
        };
        if meta.size > limit {
            return Ok(ConfigRead::TooLarge { size: meta.size });
        }
        match self.0.get(url, limit).await {
            Ok(body) => Ok(ConfigRead::Found {
                body,
                last_modified: meta.last_modified,
                etag: meta.etag,
            }),
            Err(ObjectError::NotFound { .. }) => Ok(ConfigRead::Missing),
            // Replaced by a bigger file between HEAD and GET.
            Err(ObjectError::TooLarge { size, .. }) => Ok(ConfigRead::TooLarge { size }),
            Err(e) => Err(e),
        }
    }
}

/// Reads parameter files from S3 with one `GetObject`: the size comes from `Content-Length` (an
/// oversized object is never downloaded) and at most `limit + 1` bytes are ever read.
#[derive(Debug, Clone)]
pub struct S3ConfigReader {
    client: aws_sdk_s3::Client,
    /// `ExpectedBucketOwner` of every read (`daemon.bucket_owner`).
    expected_owner: Option<String>,
}

impl S3ConfigReader {
    /// `client` carries the timeouts of [`crate::aws::sdk_config`].
    pub fn new(client: aws_sdk_s3::Client) -> Self {
        Self {
            client,
            expected_owner: None,
        }
    }

    /// Sends `owner` (an account id) as `ExpectedBucketOwner` with every read; `None` sends nothing.
    pub fn with_expected_bucket_owner(mut self, owner: Option<String>) -> Self {
        self.expected_owner = owner;
        self
    }
}

fn s3_failure(url: &ObjectUrl, source: impl std::error::Error + Send + Sync + 'static) -> ObjectError {
    ObjectError::Backend {
        op: "get",
        url: url.clone(),
        source: Box::new(source),
    }
}

#[async_trait]
impl ConfigReader for S3ConfigReader {
    async fn read(&self, url: &ObjectUrl, limit: u64) -> Result<ConfigRead, ObjectError> {
        let response = self
            .client
            .get_object()
            .bucket(&url.bucket)
            .key(&url.key)
            .set_expected_bucket_owner(self.expected_owner.clone())
            .send()
            .await;
        let object = match response {
            Ok(object) => object,
            Err(e) => {
                // Only a missing key is "missing": a missing bucket (also a 404) is a fault to retry
                // and, if it persists, to dead-letter.
                let code = e.as_service_error().and_then(|s| s.code());
                let missing = e.as_service_error().is_some_and(|s| s.is_no_such_key())
                    || code == Some("NoSuchKey")
                    || (code.is_none() && e.raw_response().map(|r| r.status().as_u16()) == Some(404));
                if missing {
                    return Ok(ConfigRead::Missing);
                }
                return Err(s3_failure(url, AwsFailure::from_sdk(&e)));
            }
        };
        let declared = object.content_length().and_then(|n| u64::try_from(n).ok());
        if let Some(size) = declared.filter(|size| *size > limit) {
            return Ok(ConfigRead::TooLarge { size });
        }
        let etag = object.e_tag().map(crate::objects::bare_etag);
        let last_modified = object
            .last_modified()
            .and_then(|t| DateTime::from_timestamp(t.secs(), t.subsec_nanos()))
            .unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
        // Content-Length may be absent or wrong: one byte past the limit proves the file too large.
        let mut capped = object.body.into_async_read().take(limit.saturating_add(1));
        let mut body = Vec::new();
        capped
            .read_to_end(&mut body)
            .await
            .map_err(|e| s3_failure(url, e))?;
        let size = body.len() as u64;
        if size > limit {
            return Ok(ConfigRead::TooLarge { size });
        }
        Ok(ConfigRead::Found {
            body: Bytes::from(body),
            last_modified,
            etag,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objects::MemoryStore;

    #[tokio::test]
    async fn object_reader_reports_missing_oversized_and_found_files() {
        let objects = Arc::new(MemoryStore::new());
        let url = ObjectUrl::new("data", "train/g/config.json");
        let reader = ObjectConfigReader(objects.clone());
        assert_eq!(reader.read(&url, 10).await.expect("read"), ConfigRead::Missing);
        objects
            .put(&url, Bytes::from_static(b"0123456789abc"))
            .await
            .expect("put");
        assert_eq!(
            reader.read(&url, 10).await.expect("read"),
            ConfigRead::TooLarge { size: 13 }
        );
        match reader.read(&url, 13).await.expect("read") {
            ConfigRead::Found { body, .. } => assert_eq!(&body[..], b"0123456789abc"),
            other => panic!("expected the file: {other:?}"),
        }
    }
}
