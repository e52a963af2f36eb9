//! EventBridge: one `PutEvents` entry per resource state change (docs/reference.md#eventbridge-events).

use aws_sdk_eventbridge::Client;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;

use super::{Message, Notifier, NotifyError, ResourceChange};
use crate::aws::AwsFailure;

/// The `source` of every event, as the reference sends it (existing rules keep matching).
pub const EVENT_SOURCE: &str = "solutions.aws.personalize";

/// The detail type of a run result (a notification also published on SNS); its detail is the
/// message's `sqs` body with `notificationId`.
pub const RESULT_DETAIL_TYPE: &str = "Personalize Workflow Result";

/// Sends resource events and run results to one bus.
#[derive(Debug, Clone)]
pub struct EventBridgeNotifier {
    client: Client,
    /// Bus name or ARN.
    bus: String,
}

impl EventBridgeNotifier {
    pub fn new(client: Client, bus: impl Into<String>) -> Self {
        Self {
            client,
            bus: bus.into(),
        }
    }
}

#[async_trait::async_trait]
impl Notifier for EventBridgeNotifier {
    async fn publish(&self, message: &Message) -> Result<(), NotifyError> {
        let entry = PutEventsRequestEntry::builder()
            .source(EVENT_SOURCE)
            .detail_type(RESULT_DETAIL_TYPE)
            .detail(message.machine().to_string())
            .event_bus_name(&self.bus)
            .build();
        self.put(entry).await
    }

    async fn resource_changed(&self, change: &ResourceChange) -> Result<(), NotifyError> {
        let entry = PutEventsRequestEntry::builder()
            .source(EVENT_SOURCE)
            .detail_type(change.detail_type())
            .resources(&change.arn)
            .detail(change.detail().to_string())
            .event_bus_name(&self.bus)
            .build();
        self.put(entry).await
    }
}

impl EventBridgeNotifier {
    /// Sends one entry; a rejected entry is an error like a failed call.
    async fn put(&self, entry: PutEventsRequestEntry) -> Result<(), NotifyError> {
        let out = self
            .client
            .put_events()
            .entries(entry)
            .send()
            .await
            .map_err(|e| NotifyError::EventBridge {
                bus: self.bus.clone(),
                source: AwsFailure::from_sdk(&e),
            })?;
        let failed = out.failed_entry_count();
        if failed > 0 {
            let reason = out
                .entries()
                .iter()
                .filter_map(|e| {
                    e.error_code()
                        .map(|code| format!("{code}: {}", e.error_message().unwrap_or("")))
                })
                .collect::<Vec<_>>()
                .join("; ");
            return Err(NotifyError::Rejected {
                bus: self.bus.clone(),
                failed,
                reason,
            });
        }
        Ok(())
    }
}
