//! EventBridge: one `PutEvents` entry per resource state change (docs/reference.md#eventbridge-events).

use aws_sdk_eventbridge::Client;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;

use super::{Message, Notifier, NotifyError, ResourceChange};
use crate::aws::AwsFailure;

/// The `source` of every event, as the reference sends it (existing rules keep matching).
pub const EVENT_SOURCE: &str = "solutions.aws.personalize";

/// Sends resource events to one bus.
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
    async fn publish(&self, _message: &Message) -> Result<(), NotifyError> {
        Ok(())
    }

    async fn resource_changed(&self, change: &ResourceChange) -> Result<(), NotifyError> {
        let entry = PutEventsRequestEntry::builder()
            .source(EVENT_SOURCE)
            .detail_type(change.detail_type())
            .resources(&change.arn)
            .detail(change.detail().to_string())
            .event_bus_name(&self.bus)
            .build();
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
