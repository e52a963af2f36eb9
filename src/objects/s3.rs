//! Amazon S3 through the AWS SDK (moto in tests).

use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use bytes::{Bytes, BytesMut};
use chrono::{DateTime, Utc};

use super::{ObjectError, ObjectMeta, ObjectStore, ObjectUrl};

/// An S3 client behind the [`ObjectStore`] port.
///
/// # Errors
/// Every failure names the object and carries the SDK error, rendered with
/// [`DisplayErrorContext`] so the service's code and message are in the text.
#[derive(Debug, Clone)]
pub struct S3Store {
    client: aws_sdk_s3::Client,
    /// `MaxKeys` of each ListObjectsV2 page; `None` leaves S3's default (1000).
    page_size: Option<i32>,
}

/// The SDK error, as its full context (the plain `Display` of an SDK error is only "service error").
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct SdkFailure(String);

fn backend<E, R>(op: &'static str, url: &ObjectUrl, e: SdkError<E, R>) -> ObjectError
where
    E: std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    ObjectError::Backend {
        op,
        url: url.clone(),
        source: Box::new(SdkFailure(DisplayErrorContext(&e).to_string())),
    }
}

fn status_of<E, R>(e: &SdkError<E, R>) -> Option<u16>
where
    R: HasStatus,
{
    e.raw_response().map(HasStatus::status)
}

/// The HTTP status of a raw response (a seam so [`status_of`] stays generic over the SDK types).
trait HasStatus {
    fn status(&self) -> u16;
}

impl HasStatus for aws_smithy_runtime_api::client::orchestrator::HttpResponse {
    fn status(&self) -> u16 {
        self.status().as_u16()
    }
}

fn to_chrono(t: Option<&aws_sdk_s3::primitives::DateTime>) -> DateTime<Utc> {
    t.and_then(|t| DateTime::from_timestamp(t.secs(), t.subsec_nanos()))
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
}

impl S3Store {
    /// A store that reads and writes through `client`.
    pub fn new(client: aws_sdk_s3::Client) -> Self {
        Self {
            client,
            page_size: None,
        }
    }

    /// Lists in pages of `size` keys (1..=1000); small pages let tests exercise continuation tokens.
    pub fn with_page_size(mut self, size: i32) -> Self {
        self.page_size = Some(size);
        self
    }

    async fn read_body(url: &ObjectUrl, mut body: ByteStream, limit: u64) -> Result<Bytes, ObjectError> {
        let mut out = BytesMut::new();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| ObjectError::Backend {
                op: "get",
                url: url.clone(),
                source: Box::new(e),
            })?;
            // Content-Length can be absent or wrong: the bytes actually read are what count.
            let size = out.len() as u64 + chunk.len() as u64;
            if size > limit {
                return Err(ObjectError::TooLarge {
                    url: url.clone(),
                    size,
                    limit,
                });
            }
            out.extend_from_slice(&chunk);
        }
        Ok(out.freeze())
    }
}

#[async_trait::async_trait]
impl ObjectStore for S3Store {
    async fn list(&self, prefix: &ObjectUrl, recursive: bool) -> Result<Vec<ObjectMeta>, ObjectError> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut request = self
                .client
                .list_objects_v2()
                .bucket(&prefix.bucket)
                .prefix(&prefix.key)
                .set_continuation_token(token.take())
                .set_max_keys(self.page_size);
            if !recursive {
                request = request.delimiter("/");
            }
            let page = request.send().await.map_err(|e| backend("list", prefix, e))?;
            for object in page.contents() {
                let Some(key) = object.key() else { continue };
                out.push(ObjectMeta {
                    url: ObjectUrl::new(prefix.bucket.clone(), key),
                    size: u64::try_from(object.size().unwrap_or(0)).unwrap_or(0),
                    last_modified: to_chrono(object.last_modified()),
                });
            }
            match page.next_continuation_token() {
                Some(next) if page.is_truncated() == Some(true) => token = Some(next.to_string()),
                _ => break,
            }
        }
        // S3 already sorts by key; sorting again keeps the contract if a backend does not.
        out.sort_by(|a, b| a.url.key.cmp(&b.url.key));
        Ok(out)
    }

    async fn head(&self, url: &ObjectUrl) -> Result<Option<ObjectMeta>, ObjectError> {
        match self
            .client
            .head_object()
            .bucket(&url.bucket)
            .key(&url.key)
            .send()
            .await
        {
            Ok(head) => Ok(Some(ObjectMeta {
                url: url.clone(),
                size: u64::try_from(head.content_length().unwrap_or(0)).unwrap_or(0),
                last_modified: to_chrono(head.last_modified()),
            })),
            Err(e)
                if e.as_service_error().is_some_and(|s| s.is_not_found()) || status_of(&e) == Some(404) =>
            {
                Ok(None)
            }
            Err(e) => Err(backend("head", url, e)),
        }
    }

    async fn get(&self, url: &ObjectUrl, limit: u64) -> Result<Bytes, ObjectError> {
        let object = match self
            .client
            .get_object()
            .bucket(&url.bucket)
            .key(&url.key)
            .send()
            .await
        {
            Ok(object) => object,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => {
                return Err(ObjectError::NotFound { url: url.clone() });
            }
            Err(e) if e.as_service_error().and_then(|s| s.code()) == Some("NoSuchBucket") => {
                return Err(backend("get", url, e));
            }
            Err(e) if status_of(&e) == Some(404) => return Err(ObjectError::NotFound { url: url.clone() }),
            Err(e) => return Err(backend("get", url, e)),
        };
        if let Some(size) = object.content_length().and_then(|n| u64::try_from(n).ok())
            && size > limit
        {
            return Err(ObjectError::TooLarge {
                url: url.clone(),
                size,
                limit,
            });
        }
        Self::read_body(url, object.body, limit).await
    }

    async fn put(&self, url: &ObjectUrl, body: Bytes) -> Result<(), ObjectError> {
        self.client
            .put_object()
            .bucket(&url.bucket)
            .key(&url.key)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| backend("put", url, e))?;
        Ok(())
    }
}
