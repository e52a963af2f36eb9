//! Local notification targets: JSON lines in a file, log lines, and an in-memory target for tests.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde_json::{Value, json};

use super::{Message, Notifier, NotifyError, ResourceChange};
use crate::locks::LockRecovering;

fn message_line(message: &Message) -> Value {
    // The body is itself JSON; embed it as a value so the line is easy to query.
    let body: Value = serde_json::from_str(&message.body).unwrap_or_else(|_| json!(message.body));
    let mut line = json!({
        "type": "message",
        "subject": message.subject,
        "status": message.status,
        "datasetGroup": message.dataset_group,
        "message": body,
    });
    if let Some(id) = &message.id {
        line["notificationId"] = json!(id);
    }
    line
}

fn change_line(change: &ResourceChange) -> Value {
    json!({
        "type": "resource",
        "detail-type": change.detail_type(),
        "datasetGroup": change.dataset_group,
        "detail": change.detail(),
    })
}

/// Appends one JSON object per notification to a file (`local` mode).
#[derive(Debug)]
pub struct JsonLinesNotifier {
    path: PathBuf,
    file: Mutex<File>,
}

impl JsonLinesNotifier {
    /// Opens `path` for appending, creating it if needed.
    ///
    /// # Errors
    /// `Io` when the file cannot be opened.
    pub fn open(path: &Path) -> Result<Self, NotifyError> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|source| NotifyError::Io {
                path: path.display().to_string(),
                source,
            })?;
        Ok(Self {
            path: path.to_path_buf(),
            file: Mutex::new(file),
        })
    }

    fn write(&self, line: &Value) -> Result<(), NotifyError> {
        let mut text = line.to_string();
        text.push('\n');
        self.file
            .lock_recovering()
            .write_all(text.as_bytes())
            .map_err(|source| NotifyError::Io {
                path: self.path.display().to_string(),
                source,
            })
    }
}

#[async_trait::async_trait]
impl Notifier for JsonLinesNotifier {
    async fn publish(&self, message: &Message) -> Result<(), NotifyError> {
        self.write(&message_line(message))
    }

    async fn resource_changed(&self, change: &ResourceChange) -> Result<(), NotifyError> {
        self.write(&change_line(change))
    }
}

/// Writes notifications as log events (target `notify`).
#[derive(Debug, Clone, Copy, Default)]
pub struct LogNotifier;

#[async_trait::async_trait]
impl Notifier for LogNotifier {
    async fn publish(&self, message: &Message) -> Result<(), NotifyError> {
        tracing::info!(
            target: "notify",
            dataset_group = %message.dataset_group,
            status = message.status,
            notification = %message_line(message),
            "notification"
        );
        Ok(())
    }

    async fn resource_changed(&self, change: &ResourceChange) -> Result<(), NotifyError> {
        tracing::info!(
            target: "notify",
            dataset_group = change.dataset_group.as_deref().unwrap_or(""),
            arn = %change.arn,
            status = %change.status,
            event = %change_line(change),
            "resource state change"
        );
        Ok(())
    }
}

/// Keeps every notification in memory (tests).
#[derive(Debug, Default)]
pub struct MemoryNotifier {
    messages: Mutex<Vec<Message>>,
    changes: Mutex<Vec<ResourceChange>>,
}

impl MemoryNotifier {
    pub fn messages(&self) -> Vec<Message> {
        self.messages.lock_recovering().clone()
    }

    pub fn changes(&self) -> Vec<ResourceChange> {
        self.changes.lock_recovering().clone()
    }
}

#[async_trait::async_trait]
impl Notifier for MemoryNotifier {
    async fn publish(&self, message: &Message) -> Result<(), NotifyError> {
        self.messages.lock_recovering().push(message.clone());
        Ok(())
    }

    async fn resource_changed(&self, change: &ResourceChange) -> Result<(), NotifyError> {
        self.changes.lock_recovering().push(change.clone());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::message::config_error_message;
    use crate::store::ResourceKind;

    #[tokio::test]
    async fn json_lines_hold_messages_and_events() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("notifications.jsonl");
        let target = JsonLinesNotifier::open(&path).expect("open");
        let m = config_error_message(Some("dsg"), "train/dsg/config.json", &["a: bad".into()]);
        target.publish(&m).await.expect("publish");
        target
            .resource_changed(&ResourceChange {
                kind: ResourceKind::Campaign,
                arn: "arn:c".into(),
                status: "ACTIVE".into(),
                duration_secs: Some(3),
                reason: None,
                dataset_group: Some("dsg".into()),
            })
            .await
            .expect("event");
        LogNotifier.publish(&m).await.expect("log");
        let lines: Vec<Value> = std::fs::read_to_string(&path)
            .expect("read")
            .lines()
            .map(|l| serde_json::from_str(l).expect("JSON line"))
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["status"], "UPDATE FAILED");
        assert_eq!(lines[0]["datasetGroup"], "dsg");
        assert!(lines[0]["message"]["default"].is_string());
        assert_eq!(lines[1]["detail-type"], "Personalize Campaign State Change");
        assert_eq!(lines[1]["detail"]["Duration"], 3);
    }

    #[test]
    fn unopenable_file_is_an_io_error_naming_the_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = JsonLinesNotifier::open(&dir.path().join("no/such/dir.jsonl")).expect_err("missing dir");
        assert!(err.to_string().contains("no/such/dir.jsonl"), "{err}");
    }
}
