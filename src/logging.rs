//! Tracing set-up: human lines on a terminal, JSON lines otherwise, always on stderr.

use std::io::IsTerminal;

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

/// Installs the global subscriber. `RUST_LOG` wins over `default_level`. Output goes to stderr so that
/// command output on stdout stays machine-readable.
pub fn init(format: LogFormat, default_level: &str) -> Result<(), LoggingError> {
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
    let registry = tracing_subscriber::registry().with(env_filter);
    let result = if json {
        registry
            .with(
                fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_writer(std::io::stderr),
            )
            .try_init()
    } else {
        registry
            .with(fmt::layer().with_writer(std::io::stderr))
            .try_init()
    };
    result.map_err(|_| LoggingError::AlreadySet)
}
