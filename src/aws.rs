//! AWS SDK set-up shared by the daemon's adapters: one `SdkConfig` with retries and timeouts, and error text.
//!
//! Credentials and region come from the SDK's default chain; endpoints from `AWS_ENDPOINT_URL` and
//! `AWS_ENDPOINT_URL_<SERVICE>`, which aws-config reads itself, so tests point the daemon at moto or the
//! built-in Personalize with environment variables only.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_runtime_api::client::result::SdkError;

use crate::settings::AwsSettings;

/// Loads the SDK configuration from the default chain, with the retry and timeout settings applied.
///
/// No operation timeout is set on purpose: SQS long polls last up to 20 s, and callers that need a
/// deadline (readiness probes, shutdown) wrap their call in `tokio::time::timeout`.
pub async fn sdk_config(settings: &AwsSettings) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .retry_config(retry_config(settings))
        .timeout_config(timeout_config(settings))
        .load()
        .await
}

/// Standard retry mode (exponential backoff with jitter, throttling-aware) with `max_attempts`.
pub fn retry_config(settings: &AwsSettings) -> RetryConfig {
    if settings.max_attempts <= 1 {
        RetryConfig::disabled()
    } else {
        RetryConfig::standard().with_max_attempts(settings.max_attempts)
    }
}

/// The connect timeout; reads are bounded by the callers (see [`sdk_config`]).
pub fn timeout_config(settings: &AwsSettings) -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(settings.connect_timeout_secs.max(1)))
        .build()
}

/// An S3 client; path-style addressing when the settings ask for it (moto, other emulators).
pub fn s3_client(config: &SdkConfig, settings: &AwsSettings) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(config)
            .force_path_style(settings.s3_force_path_style)
            .build(),
    )
}

/// The full text of an SDK error: code, message and the chain of causes (the plain `Display` of an SDK
/// error is only "service error").
pub fn error_text<E, R>(error: &SdkError<E, R>) -> String
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    aws_smithy_types::error::display::DisplayErrorContext(error).to_string()
}

/// An SDK error reduced to its text, to be carried as a `#[source]` by the adapters' error enums.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct AwsFailure(pub String);

impl AwsFailure {
    pub fn from_sdk<E, R>(error: &SdkError<E, R>) -> Self
    where
        E: std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        Self(error_text(error))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(max_attempts: u32) -> AwsSettings {
        AwsSettings {
            max_attempts,
            connect_timeout_secs: 2,
            s3_force_path_style: true,
        }
    }

    #[test]
    fn retries_follow_the_setting() {
        assert_eq!(retry_config(&settings(5)).max_attempts(), 5);
        assert_eq!(retry_config(&settings(1)).max_attempts(), 1);
        assert_eq!(
            timeout_config(&settings(3)).connect_timeout(),
            Some(Duration::from_secs(2))
        );
    }

    #[tokio::test]
    async fn config_loads_with_an_explicit_region_and_path_style_s3() {
        let config = aws_config::defaults(BehaviorVersion::latest())
            .region(aws_config::Region::new("eu-west-1"))
            .retry_config(retry_config(&settings(4)))
            .load()
            .await;
        assert_eq!(config.retry_config().map(RetryConfig::max_attempts), Some(4));
        let s3 = s3_client(&config, &settings(4));
        assert_eq!(s3.config().region().map(|r| r.as_ref()), Some("eu-west-1"));
    }
}
