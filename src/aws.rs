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
/// Every client built from it inherits the timeouts, so a hung endpoint fails a call instead of
/// hanging a worker. SQS long polls extend them with [`long_poll_timeout_config`].
pub async fn sdk_config(settings: &AwsSettings) -> SdkConfig {
    config_loader(settings).load().await
}

/// The loader behind [`sdk_config`], for callers that add to it (an explicit endpoint or region).
pub fn config_loader(settings: &AwsSettings) -> aws_config::ConfigLoader {
    aws_config::defaults(BehaviorVersion::latest())
        .retry_config(retry_config(settings))
        .timeout_config(timeout_config(settings))
}

/// Why AWS cannot be called from this machine as configured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccessProblem {
    /// The provider chain found no credentials (or not within the wait).
    #[error("no AWS credentials were found ({detail})")]
    NoCredentials {
        /// What the provider chain said.
        detail: String,
    },
    /// Neither the settings nor the environment name a region.
    #[error("no AWS region is set")]
    NoRegion,
}

/// What stops `config` from calling AWS: no region, or no credentials from its provider chain
/// within `wait`. Empty when both are there.
///
/// The default chain ends with the EC2 instance metadata service, which on a machine that has none
/// retries for half a minute before giving up; an instance that has one answers in milliseconds, so
/// a short `wait` tells the two apart without the wait.
pub async fn access_problems(config: &SdkConfig, wait: Duration) -> Vec<AccessProblem> {
    use aws_credential_types::provider::ProvideCredentials as _;
    let mut problems = Vec::new();
    match config.credentials_provider() {
        None => problems.push(AccessProblem::NoCredentials {
            detail: "no credentials provider is configured".into(),
        }),
        Some(provider) => match tokio::time::timeout(wait, provider.provide_credentials()).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => problems.push(AccessProblem::NoCredentials {
                detail: format!(
                    "looked in the environment, ~/.aws and instance or container metadata: {}",
                    first_line(&e.to_string())
                ),
            }),
            Err(_) => problems.push(AccessProblem::NoCredentials {
                detail: format!(
                    "none in the environment or ~/.aws, and no instance or container metadata answered within {} s",
                    wait.as_secs_f64()
                ),
            }),
        },
    }
    if config.region().is_none() {
        problems.push(AccessProblem::NoRegion);
    }
    problems
}

/// The first line of `text`, at most 200 characters: SDK errors can carry whole HTTP responses.
fn first_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or_default();
    match line.char_indices().nth(200) {
        Some((i, _)) => format!("{}…", &line[..i]),
        None => line.to_string(),
    }
}

/// Standard retry mode (exponential backoff with jitter, throttling-aware) with `max_attempts`.
pub fn retry_config(settings: &AwsSettings) -> RetryConfig {
    if settings.max_attempts <= 1 {
        RetryConfig::disabled()
    } else {
        RetryConfig::standard().with_max_attempts(settings.max_attempts)
    }
}

/// Connect, per-attempt and whole-operation timeouts.
pub fn timeout_config(settings: &AwsSettings) -> TimeoutConfig {
    let attempt = settings.attempt_timeout().max(Duration::from_secs(1));
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(settings.connect_timeout_secs.max(1)))
        .operation_attempt_timeout(attempt)
        .operation_timeout(settings.operation_timeout().max(attempt))
        .build()
}

/// `base` with `wait` added to the attempt and operation timeouts: a long poll that waits `wait` for
/// messages is not a hung endpoint. Timeouts `base` leaves unset stay unset.
pub fn long_poll_timeout_config(base: &TimeoutConfig, wait: Duration) -> TimeoutConfig {
    let mut builder = TimeoutConfig::builder();
    if let Some(attempt) = base.operation_attempt_timeout() {
        builder = builder.operation_attempt_timeout(attempt + wait);
    }
    if let Some(operation) = base.operation_timeout() {
        builder = builder.operation_timeout(operation + wait);
    }
    if let Some(connect) = base.connect_timeout() {
        builder = builder.connect_timeout(connect);
    }
    builder.build()
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
    /// The error's full text ([`error_text`]): code, message and the chain of causes.
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
            attempt_timeout_secs: 1,
            operation_timeout_secs: 3,
            s3_force_path_style: true,
        }
    }

    #[test]
    fn retries_and_timeouts_follow_the_settings() {
        assert_eq!(retry_config(&settings(5)).max_attempts(), 5);
        assert_eq!(retry_config(&settings(1)).max_attempts(), 1);
        let t = timeout_config(&settings(3));
        assert_eq!(t.connect_timeout(), Some(Duration::from_secs(2)));
        assert_eq!(t.operation_attempt_timeout(), Some(Duration::from_secs(1)));
        assert_eq!(t.operation_timeout(), Some(Duration::from_secs(3)));
        let long = long_poll_timeout_config(&t, Duration::from_secs(20));
        assert_eq!(long.operation_attempt_timeout(), Some(Duration::from_secs(21)));
        assert_eq!(long.operation_timeout(), Some(Duration::from_secs(23)));
        assert_eq!(long.connect_timeout(), Some(Duration::from_secs(2)));
    }

    /// A server that accepts connections and never answers: what a hung endpoint looks like.
    async fn silent_server() -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                held.push(stream);
            }
        });
        (address, task)
    }

    #[tokio::test]
    async fn a_hung_endpoint_fails_the_call_instead_of_hanging() {
        let (address, server) = silent_server().await;
        let config = config_loader(&settings(2))
            .endpoint_url(format!("http://{address}"))
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_credential_types::Credentials::new(
                "a", "b", None, None, "test",
            ))
            .load()
            .await;
        let dynamo = aws_sdk_dynamodb::Client::new(&config);
        let s3 = s3_client(&config, &settings(2));
        let sqs = aws_sdk_sqs::Client::new(&config);
        // Generous outer bound: only a missing timeout takes this long (3 s operation timeout inside).
        let bound = Duration::from_secs(60);
        let started = std::time::Instant::now();
        let calls = async {
            let d = dynamo.describe_table().table_name("t").send().await;
            let o = s3.head_object().bucket("b").key("k").send().await;
            let q = sqs.get_queue_attributes().queue_url("http://q").send().await;
            (
                matches!(d, Err(SdkError::TimeoutError(_))),
                matches!(o, Err(SdkError::TimeoutError(_))),
                matches!(q, Err(SdkError::TimeoutError(_))),
            )
        };
        let outcome = tokio::time::timeout(bound, calls).await;
        server.abort();
        assert_eq!(outcome, Ok((true, true, true)), "every call must time out");
        assert!(started.elapsed() < bound);
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

    #[tokio::test]
    async fn missing_credentials_and_region_are_reported_without_waiting_for_the_chain() {
        let bare = aws_config::SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .build();
        assert_eq!(
            access_problems(&bare, Duration::from_secs(1)).await,
            vec![
                AccessProblem::NoCredentials {
                    detail: "no credentials provider is configured".into()
                },
                AccessProblem::NoRegion
            ]
        );
        // A provider that never answers (the metadata service of a machine that has none).
        #[derive(Debug)]
        struct Silent;
        impl aws_credential_types::provider::ProvideCredentials for Silent {
            fn provide_credentials<'a>(
                &'a self,
            ) -> aws_credential_types::provider::future::ProvideCredentials<'a>
            where
                Self: 'a,
            {
                aws_credential_types::provider::future::ProvideCredentials::new(std::future::pending())
            }
        }
        let silent = aws_config::SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(aws_config::Region::new("eu-west-1"))
            .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(
                Silent,
            ))
            .build();
        let problems = access_problems(&silent, Duration::from_millis(50)).await;
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0]
                .to_string()
                .starts_with("no AWS credentials were found (none in the environment"),
            "{}",
            problems[0]
        );
        // A failing provider: its reason, one line.
        #[derive(Debug)]
        struct Refuses;
        impl aws_credential_types::provider::ProvideCredentials for Refuses {
            fn provide_credentials<'a>(
                &'a self,
            ) -> aws_credential_types::provider::future::ProvideCredentials<'a>
            where
                Self: 'a,
            {
                aws_credential_types::provider::future::ProvideCredentials::ready(Err(
                    aws_credential_types::provider::error::CredentialsError::not_loaded(format!(
                        "nothing here\n{}",
                        "x".repeat(3000)
                    )),
                ))
            }
        }
        let refuses = aws_config::SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(aws_config::Region::new("eu-west-1"))
            .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(
                Refuses,
            ))
            .build();
        let problems = access_problems(&refuses, Duration::from_secs(5)).await;
        let text = problems[0].to_string();
        assert!(text.len() < 300 && !text.contains('\n'), "{text}");
        // Static credentials and a region: nothing to say.
        let fine = aws_config::SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(aws_config::Region::new("eu-west-1"))
            .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(
                aws_credential_types::Credentials::new("a", "b", None, None, "test"),
            ))
            .build();
        assert_eq!(
            access_problems(&fine, Duration::from_millis(50)).await,
            Vec::new()
        );
    }
}
