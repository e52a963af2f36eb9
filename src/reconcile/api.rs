//! Every Personalize call of the reconciler: one global rate limit, throttling retried with backoff,
//! errors classified by what the reconciler does about them.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aws_sdk_personalize::error::ProvideErrorMetadata;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use tokio::sync::Mutex;
use tokio::time::Instant;

/// Spaces calls evenly at `rate` per second, process-wide (share one `Arc` between reconcilers).
#[derive(Debug)]
pub struct RateLimiter {
    interval: Duration,
    next: Mutex<Option<Instant>>,
}

impl RateLimiter {
    /// `rate` calls per second (must be positive; the settings check it).
    pub fn new(rate: f64) -> Self {
        let rate = if rate.is_finite() && rate > 0.0 { rate } else { 1.0 };
        Self {
            interval: Duration::from_secs_f64(1.0 / rate),
            next: Mutex::new(None),
        }
    }

    /// Waits for the next free slot. Dropping the future gives the slot up unused, which only
    /// slows others down by one interval: cancellation is safe.
    pub async fn acquire(&self) {
        let slot = {
            let mut next = self.next.lock().await;
            let now = Instant::now();
            let slot = next.map_or(now, |n| n.max(now));
            *next = Some(slot + self.interval);
            slot
        };
        tokio::time::sleep_until(slot).await;
    }
}

/// What the reconciler does about a failed call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// `ResourceNotFoundException`: the resource does not exist.
    NotFound,
    /// `ResourceAlreadyExistsException`: describe and adopt.
    AlreadyExists,
    /// `ResourceInUseException`: a parent is not ready or work is in progress; try again later.
    InUse,
    /// `LimitExceededException`: a quota is full; wait and try again.
    Limit,
    /// Throttled beyond the retries, or the network failed; try again later.
    Transient,
    /// Personalize refused the request (`InvalidInputException`, …): the resource fails with it.
    Rejected,
}

/// A Personalize call that failed, with the operation, the resource and Personalize's own words.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{op} {target}: {code}: {message}")]
pub struct ApiError {
    pub op: &'static str,
    pub target: String,
    pub code: String,
    pub message: String,
    pub class: ErrorClass,
}

fn classify(code: &str) -> ErrorClass {
    match code {
        "ResourceNotFoundException" => ErrorClass::NotFound,
        "ResourceAlreadyExistsException" => ErrorClass::AlreadyExists,
        "ResourceInUseException" => ErrorClass::InUse,
        "LimitExceededException" => ErrorClass::Limit,
        "ThrottlingException" | "TooManyRequestsException" | "Throttling" | "RequestLimitExceeded" => {
            ErrorClass::Transient
        }
        c if c.starts_with("InternalServer") || c == "ServiceUnavailable" || c.is_empty() => {
            ErrorClass::Transient
        }
        _ => ErrorClass::Rejected,
    }
}

/// How throttled calls are retried.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub min: Duration,
    pub max: Duration,
    pub retries: u32,
}

/// The Personalize client behind the global rate limit, counting calls.
#[derive(Debug, Clone)]
pub struct Api {
    pub(crate) client: aws_sdk_personalize::Client,
    limiter: Arc<RateLimiter>,
    backoff: Backoff,
    calls: Arc<AtomicU64>,
}

impl Api {
    pub fn new(client: aws_sdk_personalize::Client, limiter: Arc<RateLimiter>, backoff: Backoff) -> Self {
        Self {
            client: without_sdk_retries(&client),
            limiter,
            backoff,
            calls: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Calls made so far (including retries).
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// Runs `call` through the rate limit; throttling and transport failures are retried with
    /// backoff, everything else is returned classified.
    pub async fn call<T, E, Fut>(
        &self,
        op: &'static str,
        target: &str,
        call: impl Fn() -> Fut,
    ) -> Result<T, ApiError>
    where
        Fut: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let mut delay = self.backoff.min;
        let mut attempt = 0;
        loop {
            self.limiter.acquire().await;
            self.calls.fetch_add(1, Ordering::Relaxed);
            let error = match call().await {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            let code = error.code().unwrap_or_default().to_string();
            let class = match &error {
                SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) | SdkError::ResponseError(_) => {
                    ErrorClass::Transient
                }
                _ => classify(&code),
            };
            let message = error
                .message()
                .map(str::to_string)
                .unwrap_or_else(|| crate::aws::error_text(&error));
            if class == ErrorClass::Transient && attempt < self.backoff.retries {
                attempt += 1;
                tracing::debug!(op, target, code, attempt, "throttled or unreachable; retrying");
                // Jitter keeps many groups that were throttled together from retrying together.
                let jitter = rand::random_range(0.5..1.0);
                tokio::time::sleep(delay.mul_f64(jitter)).await;
                delay = (delay * 2).min(self.backoff.max);
                continue;
            }
            return Err(ApiError {
                op,
                target: target.to_string(),
                code: if code.is_empty() {
                    "NetworkError".into()
                } else {
                    code
                },
                message,
                class,
            });
        }
    }
}

/// `client` with the SDK's own retries off. [`Api::call`] retries throttling and network failures
/// itself, each attempt through the rate limiter; SDK retries inside one call would bypass the limiter
/// and multiply the attempts (SDK attempts × reconciler retries) against a throttling Personalize.
fn without_sdk_retries(client: &aws_sdk_personalize::Client) -> aws_sdk_personalize::Client {
    aws_sdk_personalize::Client::from_conf(
        client
            .config()
            .to_builder()
            .retry_config(aws_sdk_personalize::config::retry::RetryConfig::disabled())
            .build(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sdk_does_not_retry_behind_the_rate_limiter() {
        use aws_sdk_personalize::config::{BehaviorVersion, Region, retry::RetryConfig};
        let conf = aws_sdk_personalize::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("eu-west-1"))
            .retry_config(RetryConfig::standard().with_max_attempts(5))
            .build();
        let api = Api::new(
            aws_sdk_personalize::Client::from_conf(conf),
            Arc::new(RateLimiter::new(10.0)),
            Backoff {
                min: Duration::from_millis(1),
                max: Duration::from_millis(2),
                retries: 3,
            },
        );
        let retry = api.client.config().retry_config().expect("a retry config");
        assert_eq!(retry.max_attempts(), 1);
        assert_eq!(
            api.client.config().region().map(ToString::to_string).as_deref(),
            Some("eu-west-1"),
            "the rest of the configuration is kept"
        );
    }

    #[test]
    fn error_codes_are_classified() {
        assert_eq!(classify("ResourceNotFoundException"), ErrorClass::NotFound);
        assert_eq!(
            classify("ResourceAlreadyExistsException"),
            ErrorClass::AlreadyExists
        );
        assert_eq!(classify("LimitExceededException"), ErrorClass::Limit);
        assert_eq!(classify("ThrottlingException"), ErrorClass::Transient);
        assert_eq!(classify("InvalidInputException"), ErrorClass::Rejected);
        assert_eq!(classify("ResourceInUseException"), ErrorClass::InUse);
    }

    #[tokio::test]
    async fn the_rate_limiter_spaces_calls() {
        let limiter = RateLimiter::new(50.0);
        let start = Instant::now();
        for _ in 0..6 {
            limiter.acquire().await;
        }
        // Five intervals of 20 ms after the first free slot, at least (a lower bound only: a loaded
        // machine may be slower, never faster).
        assert!(
            start.elapsed() >= Duration::from_millis(100),
            "{:?}",
            start.elapsed()
        );
    }
}
