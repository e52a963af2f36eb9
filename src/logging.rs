//! Tracing set-up: human lines on a terminal, JSON lines otherwise, always on stderr; the AWS SDK's
//! wire-level debug and trace events (which carry signed headers and credential details) kept out
//! unless asked for.

use std::io::IsTerminal;

use tracing::{Level, Subscriber};
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::{EnvFilter, fmt, prelude::*};

use crate::settings::LogFormat;

/// Why logging could not be initialised.
#[derive(Debug, thiserror::Error)]
pub enum LoggingError {
    /// The level filter (`RUST_LOG` or the settings' level) does not parse.
    #[error("invalid log level filter {filter:?}: {source}")]
    Filter {
        /// The filter as given.
        filter: String,
        /// What the parser said.
        #[source]
        source: tracing_subscriber::filter::ParseError,
    },
    /// Something (another init, a test harness) installed a subscriber first.
    #[error("a global tracing subscriber is already installed")]
    AlreadySet,
}

/// Crates whose debug and trace events describe requests on the wire: the signer's canonical request
/// and string to sign, the orchestrator's request with its `Authorization` header (the access key
/// id), the credential providers' answers, the HTTP client's connections.
const SDK_WIRE_CRATES: [&str; 11] = [
    "aws_sigv4",
    "aws_smithy_runtime",
    "aws_smithy_runtime_api",
    "aws_smithy_http",
    "aws_smithy_http_client",
    "aws_config",
    "aws_credential_types",
    "aws_runtime",
    "hyper",
    "hyper_util",
    "h2",
];

/// Whether an event of `target` at `level` is SDK wire detail: debug or trace from an SDK or HTTP
/// crate (every `aws_sdk_*` service crate included). Info and above always pass.
pub fn is_sdk_wire(target: &str, level: &Level) -> bool {
    let krate = target.split("::").next().unwrap_or(target);
    matches!(*level, Level::DEBUG | Level::TRACE)
        && (SDK_WIRE_CRATES.contains(&krate) || krate.starts_with("aws_sdk_"))
}

/// The subscriber `init` installs, writing to `writer` (a seam for tests).
fn subscriber<W>(
    env_filter: EnvFilter,
    json: bool,
    sdk_wire: bool,
    writer: W,
) -> Box<dyn Subscriber + Send + Sync>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let wire = filter_fn(move |meta| sdk_wire || !is_sdk_wire(meta.target(), meta.level()));
    let registry = tracing_subscriber::registry().with(env_filter);
    if json {
        Box::new(
            registry.with(
                fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_writer(writer)
                    .with_filter(wire),
            ),
        )
    } else {
        Box::new(registry.with(fmt::layer().with_writer(writer).with_filter(wire)))
    }
}

/// Installs the global subscriber. `RUST_LOG` wins over `default_level`. Output goes to stderr so that
/// command output on stdout stays machine-readable. Without `sdk_wire` (`log.sdk_wire`), the SDK's
/// debug and trace events are dropped whatever the level filter says ([`is_sdk_wire`]).
pub fn init(format: LogFormat, default_level: &str, sdk_wire: bool) -> Result<(), LoggingError> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(v) if !v.trim().is_empty() => v,
        _ => default_level.to_string(),
    };
    let env_filter = EnvFilter::try_new(&filter).map_err(|source| LoggingError::Filter { filter, source })?;
    let json = match format {
        LogFormat::Json => true,
        LogFormat::Human => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    subscriber(env_filter, json, sdk_wire, std::io::stderr)
        .try_init()
        .map_err(|_| LoggingError::AlreadySet)
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'w> MakeWriter<'w> for Buffer {
        type Writer = Self;
        fn make_writer(&'w self) -> Self {
            self.clone()
        }
    }

    fn logged(json: bool, sdk_wire: bool) -> String {
        let buffer = Buffer::default();
        let filter = EnvFilter::try_new("trace").expect("filter");
        let subscriber = subscriber(filter, json, sdk_wire, buffer.clone());
        tracing::subscriber::with_default(subscriber, || {
            tracing::debug!(target: "aws_sigv4::http_request::sign", "canonical request: Credential=AKIAEXAMPLEKEY/20261205");
            tracing::trace!(target: "aws_smithy_runtime::client::orchestrator", "request: authorization: AWS4-HMAC-SHA256 Credential=AKIAEXAMPLEKEY");
            tracing::debug!(target: "aws_sdk_sqs::config", "loaded AKIAEXAMPLEKEY");
            tracing::info!(target: "aws_config::profile", "the SDK's own info line");
            tracing::debug!(target: "personalize_ops::intake", "our own debug line");
        });
        let bytes = buffer.0.lock().expect("lock").clone();
        String::from_utf8(bytes).expect("utf-8")
    }

    #[test]
    fn sdk_wire_events_are_dropped_at_every_level_filter_unless_asked_for() {
        for json in [false, true] {
            let quiet = logged(json, false);
            assert!(!quiet.contains("AKIAEXAMPLEKEY"), "{quiet}");
            assert!(quiet.contains("our own debug line"), "{quiet}");
            assert!(quiet.contains("the SDK's own info line"), "{quiet}");
            let wire = logged(json, true);
            assert_eq!(wire.matches("AKIAEXAMPLEKEY").count(), 3, "{wire}");
        }
    }

    #[test]
    fn only_debug_and_trace_of_sdk_and_http_crates_are_wire_detail() {
        assert!(is_sdk_wire("aws_sigv4::http_request", &Level::DEBUG));
        assert!(is_sdk_wire("aws_sdk_dynamodb::operation", &Level::TRACE));
        assert!(is_sdk_wire("hyper_util::client", &Level::DEBUG));
        assert!(!is_sdk_wire("aws_config::imds", &Level::WARN));
        assert!(!is_sdk_wire("personalize_ops::aws", &Level::DEBUG));
        assert!(!is_sdk_wire("aws_sigv4_lookalike", &Level::DEBUG));
        assert!(!is_sdk_wire("hyperion", &Level::TRACE));
    }
}
