//! The SQS intake: long-poll the queue, handle each batch concurrently, delete only what was recorded.
//!
//! SQS is only the doorbell: a message is deleted once its desired state is durably written, not when
//! the (hours long) reconcile finishes. While a message is being handled, a heartbeat extends its
//! visibility so no other replica takes it, and a deadline bounds the handling. A message that keeps
//! failing is left alone and reaches the dead-letter queue through the queue's redrive policy; once it
//! has been received more than `max_receive_count` times it is no longer even handled.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sqs::Client;
use aws_sdk_sqs::config::timeout::TimeoutConfig;
use aws_sdk_sqs::types::{Message, MessageSystemAttributeName, QueueAttributeName};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::{ConfigSource, Intake, MessageOutcome};
use crate::aws::{AwsFailure, long_poll_timeout_config};
use crate::health::{Liveness, Probe};
use crate::settings::DaemonSettings;

/// How the queue is polled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqsOptions {
    /// Long-poll wait (0..=20 s).
    pub wait: Duration,
    /// Messages per receive (1..=10).
    pub batch_size: i32,
    /// Visibility given at receive and renewed by the heartbeat every third of it.
    pub visibility_timeout: Duration,
    /// Cap of the backoff after failed receives.
    pub backoff_max: Duration,
    /// Messages received more often than this are logged and left for the redrive policy, unhandled.
    pub max_receive_count: u32,
    /// Messages of a batch handled at once.
    pub concurrency: usize,
    /// Longest the handling of one message may take; it is then abandoned and retried later.
    pub message_deadline: Duration,
}

impl SqsOptions {
    /// The longest a healthy round of the intake loop takes: the long poll, the slowest message and
    /// the longest backoff after a failed receive.
    pub fn longest_round(&self) -> Duration {
        self.wait + self.message_deadline + self.backoff_max
    }

    pub fn from_settings(s: &DaemonSettings) -> Self {
        Self {
            wait: Duration::from_secs(s.receive_wait_secs.min(20)),
            batch_size: i32::try_from(s.receive_batch_size.clamp(1, 10)).unwrap_or(10),
            visibility_timeout: s.visibility_timeout(),
            backoff_max: Duration::from_secs(s.receive_backoff_max_secs.max(1)),
            max_receive_count: s.max_receive_count.max(1),
            concurrency: s.intake_concurrency.max(1),
            message_deadline: Duration::from_secs(s.message_deadline_secs.max(1)),
        }
    }
}

/// Why a queue call failed.
#[derive(Debug, thiserror::Error)]
#[error("{op} on queue {queue_url} failed: {source}")]
pub struct SqsError {
    pub op: &'static str,
    pub queue_url: String,
    #[source]
    pub source: AwsFailure,
}

/// What one receive-and-handle round did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[must_use]
pub struct BatchReport {
    pub received: usize,
    /// Handled and deleted.
    pub deleted: usize,
    /// Left on the queue to be retried (and eventually dead-lettered).
    pub kept: usize,
    /// Of `kept`: received more than `max_receive_count` times, so not handled at all.
    pub over_receive_limit: usize,
    /// Of `kept`: abandoned at the message deadline.
    pub timed_out: usize,
}

/// What became of one received message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Deleted,
    Kept,
    OverReceiveLimit,
    TimedOut,
}

/// Feeds an [`Intake`] from one SQS queue.
#[derive(Debug, Clone)]
pub struct SqsIntake {
    client: Client,
    queue_url: String,
    intake: Arc<Intake>,
    options: SqsOptions,
    /// Ticked every round of [`ConfigSource::run`], for `/healthz`.
    liveness: Option<Liveness>,
}

fn secs_i32(d: Duration) -> i32 {
    i32::try_from(d.as_secs()).unwrap_or(i32::MAX)
}

impl SqsIntake {
    pub fn new(
        client: Client,
        queue_url: impl Into<String>,
        intake: Arc<Intake>,
        options: SqsOptions,
    ) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
            intake,
            options,
            liveness: None,
        }
    }

    /// Ticks `liveness` every receive round of [`ConfigSource::run`]; watch it with
    /// [`crate::health::Readiness::watch`] and a period of [`SqsOptions::longest_round`].
    pub fn with_liveness(mut self, liveness: Liveness) -> Self {
        self.liveness = Some(liveness);
        self
    }

    fn error<E, R>(&self, op: &'static str, e: &aws_sdk_sqs::error::SdkError<E, R>) -> SqsError
    where
        E: std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        SqsError {
            op,
            queue_url: self.queue_url.clone(),
            source: AwsFailure::from_sdk(e),
        }
    }

    /// The client's timeouts, lengthened by the long-poll wait: waiting for messages is not hanging.
    fn long_poll_override(&self) -> aws_sdk_sqs::config::Builder {
        let base = self
            .client
            .config()
            .timeout_config()
            .cloned()
            .unwrap_or_else(TimeoutConfig::disabled);
        aws_sdk_sqs::config::Builder::default()
            .timeout_config(long_poll_timeout_config(&base, self.options.wait))
    }

    /// A cheap call that proves the queue answers (readiness).
    pub async fn ping(&self) -> Result<(), SqsError> {
        self.client
            .get_queue_attributes()
            .queue_url(&self.queue_url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .send()
            .await
            .map_err(|e| self.error("GetQueueAttributes", &e))?;
        Ok(())
    }

    /// Receives one batch (long poll, abandoned if `shutdown` fires while waiting) and handles every
    /// message in it concurrently. Handling is never abandoned half way.
    ///
    /// # Errors
    /// The receive call failed; nothing was received.
    pub async fn poll_once(&self, shutdown: &CancellationToken) -> Result<BatchReport, SqsError> {
        let receive = self
            .client
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(self.options.batch_size)
            .wait_time_seconds(secs_i32(self.options.wait))
            .visibility_timeout(secs_i32(self.options.visibility_timeout))
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .customize()
            .config_override(self.long_poll_override())
            .send();
        let received = tokio::select! {
            () = shutdown.cancelled() => return Ok(BatchReport::default()),
            r = receive => r.map_err(|e| self.error("ReceiveMessage", &e))?,
        };
        let messages = received.messages.unwrap_or_default();
        let mut report = BatchReport {
            received: messages.len(),
            ..BatchReport::default()
        };
        for fate in self.process_all(messages).await {
            match fate {
                Fate::Deleted => report.deleted += 1,
                Fate::Kept => report.kept += 1,
                Fate::OverReceiveLimit => {
                    report.kept += 1;
                    report.over_receive_limit += 1;
                }
                Fate::TimedOut => {
                    report.kept += 1;
                    report.timed_out += 1;
                }
            }
        }
        Ok(report)
    }

    /// Handles `messages` on a `JoinSet`, at most `concurrency` at a time.
    async fn process_all(&self, messages: Vec<Message>) -> Vec<Fate> {
        let mut fates = Vec::with_capacity(messages.len());
        let mut waiting = messages.into_iter();
        let mut running = tokio::task::JoinSet::new();
        loop {
            while running.len() < self.options.concurrency {
                let Some(message) = waiting.next() else { break };
                let me = self.clone();
                running.spawn(async move { me.process(&message).await });
            }
            match running.join_next().await {
                Some(Ok(fate)) => fates.push(fate),
                Some(Err(e)) => {
                    // A panic in a handler: the message stays on the queue like any failure.
                    tracing::error!(queue_url = %self.queue_url, error = %e, "message handler failed");
                    fates.push(Fate::Kept);
                }
                None => return fates,
            }
        }
    }

    /// Handles one message under a visibility heartbeat and a deadline; deletes it when handled.
    async fn process(&self, message: &Message) -> Fate {
        let id = message.message_id().unwrap_or("?");
        let receives = message
            .attributes()
            .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
            .and_then(|n| n.parse::<u32>().ok());
        if let Some(count) = receives.filter(|n| *n > self.options.max_receive_count) {
            tracing::error!(
                message_id = id,
                receive_count = count,
                max_receive_count = self.options.max_receive_count,
                queue_url = %self.queue_url,
                "message received too often; not handling it again, leaving it for the redrive policy (dead-letter queue)"
            );
            return Fate::OverReceiveLimit;
        }
        let Some(receipt) = message.receipt_handle() else {
            tracing::warn!(
                message_id = id,
                "message without a receipt handle; cannot delete it"
            );
            return Fate::Kept;
        };
        let body = message.body().unwrap_or("");
        // Every line the handler logs names the message it came from.
        let handling = tokio::time::timeout(
            self.options.message_deadline,
            self.intake
                .handle_message(body)
                .instrument(tracing::info_span!("message", message_id = id)),
        );
        let handled = tokio::select! {
            r = handling => r,
            never = self.heartbeat(receipt, id) => match never {},
        };
        match handled {
            Ok(Ok(outcome)) => self.finish(&outcome, receipt, id).await,
            Ok(Err(e)) => {
                tracing::warn!(
                    message_id = id,
                    receive_count = receives,
                    error = %e,
                    "message not handled; left on the queue for a retry (the redrive policy dead-letters it eventually)"
                );
                Fate::Kept
            }
            Err(_) => {
                tracing::warn!(
                    message_id = id,
                    receive_count = receives,
                    deadline = ?self.options.message_deadline,
                    "message handling exceeded its deadline; abandoned and left on the queue for a retry"
                );
                Fate::TimedOut
            }
        }
    }

    /// Logs a handled message's outcome and deletes it: its state is written, so it is done.
    async fn finish(&self, outcome: &MessageOutcome, receipt: &str, id: &str) -> Fate {
        match outcome {
            MessageOutcome::Records { outcomes, ignored } => tracing::debug!(
                message_id = id,
                records = outcomes.len(),
                ignored,
                "message handled"
            ),
            MessageOutcome::Rejected(reason) => tracing::warn!(
                message_id = id,
                %reason,
                "message rejected; deleting it without acting on it"
            ),
            MessageOutcome::TestEvent => {}
        }
        match self
            .client
            .delete_message()
            .queue_url(&self.queue_url)
            .receipt_handle(receipt)
            .send()
            .await
        {
            Ok(_) => Fate::Deleted,
            Err(e) => {
                // The state is written; a redelivery will be a duplicate and a no-op.
                tracing::warn!(message_id = id, error = %self.error("DeleteMessage", &e), "handled message not deleted");
                Fate::Kept
            }
        }
    }

    /// Extends the message's visibility every third of the timeout, until the caller drops it.
    async fn heartbeat(&self, receipt: &str, id: &str) -> Infallible {
        // A third of the timeout leaves two chances to extend before the message would reappear.
        let period = (self.options.visibility_timeout / 3).max(Duration::from_millis(100));
        loop {
            tokio::time::sleep(period).await;
            if let Err(e) = self
                .client
                .change_message_visibility()
                .queue_url(&self.queue_url)
                .receipt_handle(receipt)
                .visibility_timeout(secs_i32(self.options.visibility_timeout))
                .send()
                .await
            {
                tracing::warn!(message_id = id, error = %self.error("ChangeMessageVisibility", &e), "visibility not extended");
            }
        }
    }
}

/// The readiness probe of the queue: one `GetQueueAttributes` call ([`SqsIntake::ping`]).
#[async_trait::async_trait]
impl Probe for SqsIntake {
    fn name(&self) -> &str {
        "queue"
    }

    async fn probe(&self) -> Result<(), String> {
        self.ping().await.map_err(|e| e.to_string())
    }
}

#[async_trait::async_trait]
impl ConfigSource for SqsIntake {
    async fn run(&self, shutdown: CancellationToken) {
        let mut backoff = Duration::from_secs(1);
        while !shutdown.is_cancelled() {
            if let Some(liveness) = &self.liveness {
                liveness.tick();
            }
            match self.poll_once(&shutdown).await {
                Ok(_) => backoff = Duration::from_secs(1),
                Err(e) => {
                    tracing::warn!(error = %e, retry_in = ?backoff, "cannot receive from the queue");
                    tokio::select! {
                        () = shutdown.cancelled() => break,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(self.options.backoff_max);
                }
            }
        }
        tracing::info!(queue_url = %self.queue_url, "intake stopped");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Settings;

    #[test]
    fn options_follow_settings_within_sqs_limits() {
        let mut s = Settings::load_with_env(None, Vec::new())
            .expect("defaults")
            .daemon;
        s.receive_wait_secs = 20;
        s.receive_batch_size = 10;
        s.visibility_timeout_secs = 90;
        s.receive_backoff_max_secs = 0;
        s.max_receive_count = 4;
        s.intake_concurrency = 3;
        s.message_deadline_secs = 45;
        let o = SqsOptions::from_settings(&s);
        assert_eq!(o.max_receive_count, 4);
        assert_eq!(o.concurrency, 3);
        assert_eq!(o.message_deadline, Duration::from_secs(45));
        assert_eq!(o.longest_round(), Duration::from_secs(20 + 45 + 1));
        assert_eq!(o.wait, Duration::from_secs(20));
        assert_eq!(o.batch_size, 10);
        assert_eq!(o.visibility_timeout, Duration::from_secs(90));
        assert_eq!(o.backoff_max, Duration::from_secs(1));
    }
}
