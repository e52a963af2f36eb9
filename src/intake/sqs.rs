//! The SQS intake: long-poll the queue, handle each batch concurrently, delete only what was recorded.
//!
//! SQS is only the doorbell: a message is deleted once its desired state is durably written, not when
//! the (hours long) reconcile finishes. While a message is being handled, a heartbeat extends its
//! visibility so no other replica takes it. A message that keeps failing is left alone and reaches the
//! dead-letter queue through the queue's redrive policy.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sqs::Client;
use aws_sdk_sqs::config::timeout::TimeoutConfig;
use aws_sdk_sqs::types::{Message, MessageSystemAttributeName, QueueAttributeName};
use tokio_util::sync::CancellationToken;

use super::{ConfigSource, Intake, MessageOutcome};
use crate::aws::{AwsFailure, long_poll_timeout_config};
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
}

impl SqsOptions {
    pub fn from_settings(s: &DaemonSettings) -> Self {
        Self {
            wait: Duration::from_secs(s.receive_wait_secs.min(20)),
            batch_size: i32::try_from(s.receive_batch_size.clamp(1, 10)).unwrap_or(10),
            visibility_timeout: s.visibility_timeout(),
            backoff_max: Duration::from_secs(s.receive_backoff_max_secs.max(1)),
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
pub struct BatchReport {
    pub received: usize,
    /// Handled and deleted.
    pub deleted: usize,
    /// Left on the queue to be retried (and eventually dead-lettered).
    pub kept: usize,
}

/// Feeds an [`Intake`] from one SQS queue.
#[derive(Debug, Clone)]
pub struct SqsIntake {
    client: Client,
    queue_url: String,
    intake: Arc<Intake>,
    options: SqsOptions,
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
        }
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
        let results = futures::future::join_all(messages.iter().map(|m| self.process(m))).await;
        let deleted = results.iter().filter(|deleted| **deleted).count();
        Ok(BatchReport {
            received: messages.len(),
            deleted,
            kept: messages.len() - deleted,
        })
    }

    /// Handles one message under a visibility heartbeat; deletes it when handled. Returns whether it
    /// was deleted.
    async fn process(&self, message: &Message) -> bool {
        let id = message.message_id().unwrap_or("?");
        let receives = message
            .attributes()
            .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
            .map(String::as_str)
            .unwrap_or("?");
        let Some(receipt) = message.receipt_handle() else {
            tracing::warn!(
                message_id = id,
                "message without a receipt handle; cannot delete it"
            );
            return false;
        };
        let body = message.body().unwrap_or("");
        let handled = tokio::select! {
            r = self.intake.handle_message(body) => r,
            never = self.heartbeat(receipt, id) => match never {},
        };
        match handled {
            Ok(outcome) => {
                if let MessageOutcome::Records { outcomes, ignored } = &outcome {
                    tracing::debug!(
                        message_id = id,
                        records = outcomes.len(),
                        ignored,
                        "message handled"
                    );
                }
                match self
                    .client
                    .delete_message()
                    .queue_url(&self.queue_url)
                    .receipt_handle(receipt)
                    .send()
                    .await
                {
                    Ok(_) => true,
                    Err(e) => {
                        // The state is written; a redelivery will be a duplicate and a no-op.
                        tracing::warn!(message_id = id, error = %self.error("DeleteMessage", &e), "handled message not deleted");
                        false
                    }
                }
            }
            Err(e) => {
                tracing::warn!(
                    message_id = id,
                    receive_count = receives,
                    error = %e,
                    "message not handled; left on the queue for a retry (the redrive policy dead-letters it eventually)"
                );
                false
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

#[async_trait::async_trait]
impl ConfigSource for SqsIntake {
    async fn run(&self, shutdown: CancellationToken) {
        let mut backoff = Duration::from_secs(1);
        while !shutdown.is_cancelled() {
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
        let o = SqsOptions::from_settings(&s);
        assert_eq!(o.wait, Duration::from_secs(20));
        assert_eq!(o.batch_size, 10);
        assert_eq!(o.visibility_timeout, Duration::from_secs(90));
        assert_eq!(o.backoff_max, Duration::from_secs(1));
    }
}
