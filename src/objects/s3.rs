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
    /// Sent as `ExpectedBucketOwner` with every call: S3 refuses (403) a bucket owned by another
    /// account, e.g. one re-created under the same name after ours was deleted.
    expected_owner: Option<String>,
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
            expected_owner: None,
        }
    }

    /// Sends `owner` (an account id) as `ExpectedBucketOwner` with every call; `None` sends nothing.
    pub fn with_expected_bucket_owner(mut self, owner: Option<String>) -> Self {
        self.expected_owner = owner;
        self
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
                .set_max_keys(self.page_size)
                .set_expected_bucket_owner(self.expected_owner.clone());
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
                    etag: object.e_tag().map(super::bare_etag),
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
            .set_expected_bucket_owner(self.expected_owner.clone())
            .send()
            .await
        {
            Ok(head) => Ok(Some(ObjectMeta {
                url: url.clone(),
                size: u64::try_from(head.content_length().unwrap_or(0)).unwrap_or(0),
                last_modified: to_chrono(head.last_modified()),
                etag: head.e_tag().map(super::bare_etag),
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
            .set_expected_bucket_owner(self.expected_owner.clone())
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
            .set_expected_bucket_owner(self.expected_owner.clone())
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| backend("put", url, e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// A server that records each request's head and answers 403 AccessDenied, as S3 does when the
    /// bucket's owner is not the expected one.
    async fn recording_server() -> (String, Arc<Mutex<Vec<String>>>, tokio::task::JoinHandle<()>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        let heads = Arc::new(Mutex::new(Vec::new()));
        let seen = heads.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let seen = seen.clone();
                tokio::spawn(async move {
                    let mut buffer = Vec::new();
                    let mut chunk = [0u8; 4096];
                    loop {
                        let Ok(n) = stream.read(&mut chunk).await else {
                            return;
                        };
                        if n == 0 {
                            return;
                        }
                        buffer.extend_from_slice(&chunk[..n]);
                        let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") else {
                            continue;
                        };
                        let head = String::from_utf8_lossy(&buffer[..end]).to_lowercase();
                        seen.lock().expect("lock").push(head);
                        buffer.clear();
                        let body = "<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>";
                        let answer = format!(
                            "HTTP/1.1 403 Forbidden\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        );
                        let _ = stream.write_all(answer.as_bytes()).await;
                        return;
                    }
                });
            }
        });
        (format!("http://{address}"), heads, task)
    }

    async fn client(endpoint: &str) -> aws_sdk_s3::Client {
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(endpoint)
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_credential_types::Credentials::new(
                "a", "b", None, None, "test",
            ))
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .load()
            .await;
        aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&config)
                .force_path_style(true)
                .build(),
        )
    }

    async fn every_call(store: &S3Store) {
        let url = ObjectUrl::new("data", "train/g/config.json");
        assert!(store.list(&ObjectUrl::new("data", "train/"), true).await.is_err());
        assert!(store.head(&url).await.is_err());
        assert!(store.get(&url, 10).await.is_err());
        assert!(store.put(&url, Bytes::from_static(b"{}")).await.is_err());
    }

    #[tokio::test]
    async fn every_call_names_the_expected_bucket_owner_when_one_is_set() {
        let (endpoint, heads, server) = recording_server().await;
        let owned =
            S3Store::new(client(&endpoint).await).with_expected_bucket_owner(Some("111122223333".into()));
        every_call(&owned).await;
        let sent = std::mem::take(&mut *heads.lock().expect("lock"));
        assert_eq!(sent.len(), 4, "{sent:?}");
        for head in &sent {
            assert!(
                head.contains("\r\nx-amz-expected-bucket-owner: 111122223333"),
                "{head}"
            );
        }
        // The owner refused: the error names the object and S3's code, and is not "not found".
        let url = ObjectUrl::new("data", "train/g/config.json");
        let err = owned.get(&url, 10).await.expect_err("refused");
        assert!(matches!(err, ObjectError::Backend { .. }), "{err}");
        assert!(err.to_string().contains("AccessDenied"), "{err}");
        heads.lock().expect("lock").clear();

        let unowned = S3Store::new(client(&endpoint).await);
        every_call(&unowned).await;
        let sent = std::mem::take(&mut *heads.lock().expect("lock"));
        assert_eq!(sent.len(), 4, "{sent:?}");
        assert!(
            sent.iter().all(|h| !h.contains("x-amz-expected-bucket-owner")),
            "{sent:?}"
        );
        server.abort();
    }
}
