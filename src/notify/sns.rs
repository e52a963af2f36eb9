//! SNS: one `Publish` per message, `MessageStructure=json` so each protocol gets its own body.

use aws_sdk_sns::Client;
use aws_sdk_sns::types::MessageAttributeValue;

use super::{Message, Notifier, NotifyError, ResourceChange};
use crate::aws::AwsFailure;

/// The SNS message attribute carrying a notification's stable id.
pub const NOTIFICATION_ID_ATTRIBUTE: &str = "notification_id";

/// Publishes messages to one topic, with message attributes `status` and `datasetGroup` so that
/// subscriptions can filter on them, and `notification_id` (the outbox id, the same on every retry)
/// so that subscribers can drop duplicates.
#[derive(Debug, Clone)]
pub struct SnsNotifier {
    client: Client,
    topic_arn: String,
}

impl SnsNotifier {
    pub fn new(client: Client, topic_arn: impl Into<String>) -> Self {
        Self {
            client,
            topic_arn: topic_arn.into(),
        }
    }

    fn failure(&self, reason: String) -> NotifyError {
        NotifyError::Sns {
            topic: self.topic_arn.clone(),
            source: AwsFailure(reason),
        }
    }
}

fn string_attribute(value: &str) -> Result<MessageAttributeValue, String> {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .map_err(|e| e.to_string())
}

#[async_trait::async_trait]
impl Notifier for SnsNotifier {
    async fn publish(&self, message: &Message) -> Result<(), NotifyError> {
        let status = string_attribute(message.status).map_err(|e| self.failure(e))?;
        // SNS refuses empty attribute values.
        let group = if message.dataset_group.is_empty() {
            "UNKNOWN"
        } else {
            message.dataset_group.as_str()
        };
        let group = string_attribute(group).map_err(|e| self.failure(e))?;
        let mut publish = self
            .client
            .publish()
            .topic_arn(&self.topic_arn)
            .message_structure("json")
            .subject(message.subject)
            .message(&message.body)
            .message_attributes("status", status)
            .message_attributes("datasetGroup", group);
        if let Some(id) = &message.id {
            publish = publish.message_attributes(
                NOTIFICATION_ID_ATTRIBUTE,
                string_attribute(id).map_err(|e| self.failure(e))?,
            );
        }
        publish
            .send()
            .await
            .map_err(|e| self.failure(AwsFailure::from_sdk(&e).0))?;
        tracing::info!(
            dataset_group = %message.dataset_group,
            status = message.status,
            notification_id = message.id.as_deref().unwrap_or(""),
            topic = %self.topic_arn,
            "notification published"
        );
        Ok(())
    }

    async fn resource_changed(&self, _change: &ResourceChange) -> Result<(), NotifyError> {
        Ok(())
    }
}
