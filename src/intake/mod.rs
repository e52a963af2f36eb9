//! Change events: S3 event notifications from SQS (daemon) or a watched directory (local mode).

pub mod event;
mod handler;
mod keys;
mod reader;
pub mod rescan;
pub mod sqs;
pub mod watch;

pub use handler::{
    Intake, IntakeError, MessageOutcome, ObjectOutcome, Rejection, ValidationOutcome, Validator,
    spec_validator,
};
pub use keys::{KeyRejection, check_config_key};
pub use reader::{ConfigRead, ConfigReader, ObjectConfigReader, S3ConfigReader};
pub use rescan::{RescanError, RescanReport, Rescanner};

/// A source of parameter-file changes that feeds an [`Intake`] until shut down: the SQS queue
/// ([`sqs::SqsIntake`]) or, in `local` mode, a watched directory.
#[async_trait::async_trait]
pub trait ConfigSource: Send + Sync {
    /// Runs until `shutdown` is cancelled; work already started finishes first.
    async fn run(&self, shutdown: tokio_util::sync::CancellationToken);
}
