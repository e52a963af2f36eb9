//! Notifications: SNS (per-protocol messages), optional EventBridge events, or log lines locally.
//!
//! Each target is a [`Notifier`]; [`Notifications`] fans out to all configured targets. Run results
//! go through the daemon's outbox, which retries [`Notifications::deliver`] until every target took
//! the message; configuration errors and resource events are sent once and their failures only
//! logged, because a lost notification must never stop a reconcile or an intake.

use std::fmt;
use std::sync::Arc;

use serde_json::{Value, json};

use crate::settings::NotifySettings;
use crate::store::ResourceKind;

mod eventbridge;
mod local;
pub mod message;
mod sns;

pub use eventbridge::{EVENT_SOURCE, EventBridgeNotifier, RESULT_DETAIL_TYPE};
pub use local::{JsonLinesNotifier, LogNotifier, MemoryNotifier};
pub use message::Message;
pub use sns::{NOTIFICATION_ID_ATTRIBUTE, SnsNotifier};

/// A resource reached a new status (docs/reference.md#eventbridge-events).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceChange {
    pub kind: ResourceKind,
    pub arn: String,
    /// `CREATING`, `UPDATING`, `ACTIVE`, `CREATE FAILED`, …
    pub status: String,
    /// Seconds from creation (or the latest update) to this status; omitted when unknown or 0, as the
    /// reference does.
    pub duration_secs: Option<u64>,
    /// Personalize's `failureReason` for failures (the reference published no failures).
    pub reason: Option<String>,
    /// For logs and local lines; not part of the EventBridge detail.
    pub dataset_group: Option<String>,
}

impl ResourceChange {
    /// `Personalize Dataset Import Job State Change`.
    pub fn detail_type(&self) -> String {
        format!("Personalize {} State Change", self.kind.title())
    }

    /// `{"Arn", "Status", "Duration"?, "Reason"?}`.
    pub fn detail(&self) -> Value {
        let mut detail = json!({ "Arn": self.arn, "Status": self.status });
        if let Some(duration) = self.duration_secs.filter(|d| *d > 0) {
            detail["Duration"] = json!(duration);
        }
        if let Some(reason) = &self.reason {
            detail["Reason"] = json!(reason);
        }
        detail
    }
}

/// Why a notification was not delivered.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("publishing to SNS topic {topic} failed: {source}")]
    Sns {
        topic: String,
        #[source]
        source: crate::aws::AwsFailure,
    },
    #[error("PutEvents to EventBridge bus {bus} failed: {source}")]
    EventBridge {
        bus: String,
        #[source]
        source: crate::aws::AwsFailure,
    },
    #[error("EventBridge bus {bus} rejected {failed} event(s): {reason}")]
    Rejected {
        bus: String,
        failed: i32,
        reason: String,
    },
    #[error("writing notification to {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// A notification target.
#[async_trait::async_trait]
pub trait Notifier: Send + Sync + fmt::Debug {
    /// Publishes a run result or configuration error (SNS message, EventBridge
    /// [`RESULT_DETAIL_TYPE`] event, log or file line).
    async fn publish(&self, message: &Message) -> Result<(), NotifyError>;

    /// Publishes a resource state change. Targets that only carry messages succeed without doing
    /// anything.
    async fn resource_changed(&self, change: &ResourceChange) -> Result<(), NotifyError>;
}

fn non_empty(value: &str) -> Option<&str> {
    let v = value.trim();
    (!v.is_empty()).then_some(v)
}

/// Every configured target; failures are logged, never returned.
#[derive(Debug, Clone, Default)]
pub struct Notifications {
    targets: Vec<Arc<dyn Notifier>>,
}

impl Notifications {
    pub fn new(targets: Vec<Arc<dyn Notifier>>) -> Self {
        Self { targets }
    }

    /// The targets the settings name: SNS when a topic is set (the log otherwise), EventBridge when a
    /// bus is set, and a JSON-lines file when a path is set.
    ///
    /// # Errors
    /// `Io` when the JSON-lines file cannot be opened.
    pub fn from_settings(
        config: &aws_config::SdkConfig,
        settings: &NotifySettings,
    ) -> Result<Self, NotifyError> {
        let mut targets: Vec<Arc<dyn Notifier>> = Vec::new();
        match non_empty(&settings.sns_topic_arn) {
            Some(topic) => targets.push(Arc::new(SnsNotifier::new(
                aws_sdk_sns::Client::new(config),
                topic,
            ))),
            None => targets.push(Arc::new(LogNotifier)),
        }
        if let Some(bus) = non_empty(&settings.event_bus) {
            targets.push(Arc::new(EventBridgeNotifier::new(
                aws_sdk_eventbridge::Client::new(config),
                bus,
            )));
        }
        if let Some(path) = non_empty(&settings.jsonl_path) {
            targets.push(Arc::new(JsonLinesNotifier::open(std::path::Path::new(path))?));
        }
        Ok(Self { targets })
    }

    /// Publishes to every target, concurrently; logs each failure.
    pub async fn publish(&self, message: &Message) {
        for e in self.send_all(message).await {
            tracing::warn!(
                dataset_group = %message.dataset_group,
                status = message.status,
                error = %e,
                "notification not delivered"
            );
        }
    }

    /// Publishes to every target, concurrently.
    ///
    /// # Errors
    /// Every target's failure, joined: the message counts as delivered only when all took it (a
    /// retry sends it to all targets again; the id lets subscribers drop the copies).
    pub async fn deliver(&self, message: &Message) -> Result<(), String> {
        let failures = self.send_all(message).await;
        if failures.is_empty() {
            return Ok(());
        }
        Err(failures
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; "))
    }

    async fn send_all(&self, message: &Message) -> Vec<NotifyError> {
        let sends = self.targets.iter().map(|t| t.publish(message));
        futures::future::join_all(sends)
            .await
            .into_iter()
            .filter_map(Result::err)
            .collect()
    }

    /// Sends a resource event to every target, concurrently; logs each failure.
    pub async fn resource_changed(&self, change: &ResourceChange) {
        let sends = self.targets.iter().map(|t| t.resource_changed(change));
        for result in futures::future::join_all(sends).await {
            if let Err(e) = result {
                tracing::warn!(
                    dataset_group = change.dataset_group.as_deref().unwrap_or(""),
                    arn = %change.arn,
                    status = %change.status,
                    error = %e,
                    "resource event not delivered"
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(status: &str, duration: Option<u64>, reason: Option<&str>) -> ResourceChange {
        ResourceChange {
            kind: ResourceKind::DatasetImportJob,
            arn: "arn:aws:personalize:us-east-1:123456789012:dataset-import-job/j".into(),
            status: status.into(),
            duration_secs: duration,
            reason: reason.map(str::to_string),
            dataset_group: Some("dsg".into()),
        }
    }

    #[test]
    fn detail_follows_the_reference_and_adds_reasons() {
        let c = change("ACTIVE", Some(42), None);
        assert_eq!(c.detail_type(), "Personalize Dataset Import Job State Change");
        assert_eq!(
            c.detail(),
            json!({"Arn": "arn:aws:personalize:us-east-1:123456789012:dataset-import-job/j", "Status": "ACTIVE", "Duration": 42})
        );
        assert_eq!(change("CREATING", Some(0), None).detail().get("Duration"), None);
        let failed = change("CREATE FAILED", None, Some("Access denied to s3://data/x.csv"));
        assert_eq!(failed.detail()["Reason"], "Access denied to s3://data/x.csv");
    }

    #[derive(Debug)]
    struct Broken;

    #[async_trait::async_trait]
    impl Notifier for Broken {
        async fn publish(&self, _: &Message) -> Result<(), NotifyError> {
            Err(NotifyError::Rejected {
                bus: "b".into(),
                failed: 1,
                reason: "test".into(),
            })
        }
        async fn resource_changed(&self, _: &ResourceChange) -> Result<(), NotifyError> {
            Err(NotifyError::Rejected {
                bus: "b".into(),
                failed: 1,
                reason: "test".into(),
            })
        }
    }

    #[tokio::test]
    async fn settings_choose_the_targets() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("n.jsonl");
        let config = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .build();
        let settings = NotifySettings {
            sns_topic_arn: String::new(),
            event_bus: String::new(),
            jsonl_path: path.display().to_string(),
            max_age_secs: 60,
            retry_min_secs: 1,
            retry_max_secs: 2,
            claim_secs: 6,
        };
        let all = Notifications::from_settings(&config, &settings).expect("targets");
        assert_eq!(all.targets.len(), 2, "the log and the file");
        let m = message::config_error_message(None, "train/x.json", &["bad".into()]);
        all.publish(&m).await;
        assert!(
            std::fs::read_to_string(&path)
                .expect("written")
                .contains("UPDATE FAILED")
        );

        let aws = NotifySettings {
            sns_topic_arn: "arn:aws:sns:us-east-1:123456789012:t".into(),
            event_bus: "bus".into(),
            jsonl_path: String::new(),
            max_age_secs: 60,
            retry_min_secs: 1,
            retry_max_secs: 2,
            claim_secs: 6,
        };
        assert_eq!(
            Notifications::from_settings(&config, &aws)
                .expect("targets")
                .targets
                .len(),
            2
        );
        let unwritable = NotifySettings {
            jsonl_path: dir.path().join("no/dir.jsonl").display().to_string(),
            ..aws
        };
        assert!(Notifications::from_settings(&config, &unwritable).is_err());
    }

    #[tokio::test]
    async fn one_failing_target_does_not_stop_the_others() {
        let memory = Arc::new(MemoryNotifier::default());
        let all = Notifications::new(vec![Arc::new(Broken), memory.clone()]);
        let m = message::config_error_message(Some("dsg"), "train/dsg/config.json", &["bad".into()]);
        all.publish(&m).await;
        all.resource_changed(&change("ACTIVE", None, None)).await;
        assert_eq!(memory.messages(), vec![m]);
        assert_eq!(memory.changes().len(), 1);
    }
}
