//! Delivery of the notification outbox: at least once, with a stable id, retried with backoff by any replica.
//!
//! A run result is stored with the observed state it announces (one fenced write, see
//! [`crate::store::NotificationStore`]); the worker that wrote it tries it at once, and every replica's
//! drain loop retries what is left: claim (a conditional write, so two replicas never send one item
//! at the same time), send to every target, delete. A failure records the error and the next attempt
//! (exponential backoff between `notify.retry_min_secs` and `notify.retry_max_secs`); an item still
//! undelivered `notify.max_age_secs` after it was written is dropped: logged, counted
//! (`NotificationsDropped`) and kept for `status`. A crash after a send and before the delete sends
//! the item again with the same id, which subscribers use to drop the copy.

use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use super::Daemon;
use crate::metrics::Counter;
use crate::notify::Message;
use crate::settings::NotifySettings;
use crate::store::{Desired, Lease, Observed, ObservedWrite, StoreError, StoredNotification};

/// How the outbox is drained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxConfig {
    /// Wait after the first failed attempt; doubled after each further failure.
    pub retry_min: Duration,
    /// Longest wait between attempts.
    pub retry_max: Duration,
    /// Undelivered this long after it was written, a notification is dropped.
    pub max_age: Duration,
    /// How long a claim keeps other replicas off an item while one attempts it; an attempt is
    /// abandoned after half of it, and a failed attempt gives the claim back at once.
    pub claim: Duration,
    /// Items handled per drain round at most.
    pub batch: usize,
}

impl Default for OutboxConfig {
    fn default() -> Self {
        Self {
            retry_min: Duration::from_secs(5),
            retry_max: Duration::from_secs(300),
            max_age: Duration::from_secs(24 * 3600),
            claim: Duration::from_secs(60),
            batch: 50,
        }
    }
}

impl OutboxConfig {
    /// From the `[notify]` settings.
    pub fn from_settings(settings: &NotifySettings) -> Self {
        let retry_min = Duration::from_secs(settings.retry_min_secs.max(1));
        Self {
            retry_min,
            retry_max: Duration::from_secs(settings.retry_max_secs).max(retry_min),
            max_age: Duration::from_secs(settings.max_age_secs.max(1)),
            claim: Duration::from_secs(settings.claim_secs.max(1)),
            ..Self::default()
        }
    }

    /// The wait after the `attempts`-th failed attempt: `retry_min · 2^(attempts-1)`, at most `retry_max`.
    pub fn backoff(&self, attempts: u32) -> Duration {
        let doublings = attempts.saturating_sub(1).min(30);
        self.retry_min
            .saturating_mul(1u32 << doublings)
            .min(self.retry_max)
            .max(self.retry_min.min(self.retry_max))
    }

    /// How often the drain loop looks for due items: the shortest retry wait, at most 5 s.
    fn poll(&self) -> Duration {
        self.retry_min
            .min(Duration::from_secs(5))
            .max(Duration::from_millis(50))
    }
}

/// What one attempt on an item did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Every target took it; the item is deleted.
    Delivered,
    /// A target failed; tried again later.
    Retrying,
    /// Too old: given up, kept for `status`.
    Dropped,
    /// Another replica holds it, it is gone, or the store failed: nothing done.
    Skipped,
}

fn plus(at: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    at + chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

/// The id of the notification announcing `outcome` of `subject` (a generation of the group's file, a
/// schedule's fire) of `group`: a pure function of the three, so every replica and every restart
/// that announces the same outcome of the same file version stamps the same id, and a subscriber
/// dropping repeats by id sees each outcome once. A UUID (version 8: the first 16 bytes of the SHA-256
/// of the three, each length-prefixed so no two triples share an input).
pub(crate) fn notification_id(group: &str, subject: &str, outcome: &str) -> String {
    use sha2::Digest as _;
    let mut hash = sha2::Sha256::new();
    for part in [group, subject, outcome] {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part.as_bytes());
    }
    let digest = hash.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes)
        .into_uuid()
        .hyphenated()
        .to_string()
}

/// What a generation of the group's parameter file is, for [`notification_id`]: its number and the
/// instant it was recorded (a group deleted and uploaded again starts over at generation 1; the
/// instant tells the two apart). Milliseconds: what every store keeps.
pub(crate) fn generation_subject(desired: &Desired) -> String {
    format!(
        "generation {} recorded {}",
        desired.generation,
        desired.received_at.timestamp_millis()
    )
}

/// A run result as an outbox item written at `now`, under `id` (see [`notification_id`]) stamped into
/// its body.
pub(crate) fn outbox_item(message: Message, id: &str, now: DateTime<Utc>) -> StoredNotification {
    let id = id.to_string();
    let message = message.with_id(&id);
    let summary = message.summary();
    StoredNotification::new(
        id,
        message.dataset_group,
        message.status,
        summary,
        message.body,
        now,
    )
}

impl Daemon {
    /// Replaces the outbox settings (the defaults otherwise).
    pub fn with_outbox(mut self, config: OutboxConfig) -> Self {
        self.outbox = config;
        self
    }

    /// Records what a pass observed together with the notification announcing it (one fenced write),
    /// then tries to deliver it at once; what fails is left to the drain loop.
    ///
    /// # Errors
    /// As [`crate::store::StateStore::put_observed`]: nothing is announced then.
    pub(crate) async fn record_and_announce(
        &self,
        lease: &Lease,
        observed: &Observed,
        next_due: Option<DateTime<Utc>>,
        write: ObservedWrite,
        message: Message,
        id: &str,
    ) -> Result<(), StoreError> {
        let item = outbox_item(message, id, self.clock.now());
        self.store
            .put_observed_notifying(lease, observed, next_due, write, &item)
            .await?;
        self.deliver_item(item).await;
        Ok(())
    }

    /// Puts a notification whose outcome another conditional write already decided into the outbox
    /// (under `id`, see [`notification_id`]; an item already there with that id is kept) and tries it
    /// at once. A store failure is logged: the outcome is recorded, its message lost.
    pub(crate) async fn announce(&self, message: Message, id: &str) {
        let item = outbox_item(message, id, self.clock.now());
        match self.store.enqueue_notification(&item).await {
            Ok(()) => {
                self.deliver_item(item).await;
            }
            Err(e) => tracing::error!(
                dataset_group = %item.group,
                notification_id = %item.id,
                status = %item.status,
                error = %e,
                "notification not stored; it is not sent"
            ),
        }
    }

    /// One attempt on `item`: claim it, drop it when too old, else send it and delete it (or record
    /// the failure and the next attempt).
    pub async fn deliver_item(&self, item: StoredNotification) -> Delivery {
        let now = self.clock.now();
        let owner = &self.config.owner;
        let (group, id) = (item.group.as_str(), item.id.as_str());
        match self
            .store
            .claim_notification(group, id, owner, now, plus(now, self.outbox.claim))
            .await
        {
            Ok(true) => {}
            Ok(false) => return Delivery::Skipped,
            Err(e) => {
                tracing::warn!(dataset_group = %group, notification_id = %id, error = %e, "cannot claim the notification");
                return Delivery::Skipped;
            }
        }
        let attempts = item.attempts.saturating_add(1);
        let expires = plus(item.created_at, self.outbox.max_age);
        if now >= expires {
            let reason = item
                .last_error
                .clone()
                .unwrap_or_else(|| "never attempted".to_string());
            return self.drop_item(&item, now, &reason).await;
        }
        let sent = match Message::stored(id, group, &item.status, &item.body) {
            Some(message) => {
                tokio::time::timeout(self.outbox.claim / 2, self.notifications.deliver(&message))
                    .await
                    .unwrap_or_else(|_| Err(format!("no answer within {:?}", self.outbox.claim / 2)))
            }
            None => {
                // Not sendable by this version: keep it visible rather than retry it forever.
                let reason = format!("unknown status {:?}", item.status);
                return self.drop_item(&item, now, &reason).await;
            }
        };
        match sent {
            Ok(()) => {
                if let Err(e) = self.store.delete_notification(group, id).await {
                    // Sent again after the claim expires: a duplicate with the same id, not a loss.
                    tracing::warn!(dataset_group = %group, notification_id = %id, error = %e, "notification sent but not removed from the outbox");
                }
                tracing::info!(dataset_group = %group, notification_id = %id, status = %item.status, attempts, "notification delivered");
                Delivery::Delivered
            }
            Err(error) => {
                let next = plus(self.clock.now(), self.outbox.backoff(attempts)).min(expires);
                tracing::warn!(
                    dataset_group = %group,
                    notification_id = %id,
                    status = %item.status,
                    attempts,
                    retry_at = %next,
                    error = %error,
                    "notification not delivered; retrying"
                );
                match self
                    .store
                    .retry_notification(group, id, owner, next, &error)
                    .await
                {
                    Ok(_) => Delivery::Retrying,
                    Err(e) => {
                        tracing::warn!(dataset_group = %group, notification_id = %id, error = %e, "cannot record the failed attempt; the claim will expire");
                        Delivery::Retrying
                    }
                }
            }
        }
    }

    async fn drop_item(&self, item: &StoredNotification, now: DateTime<Utc>, reason: &str) -> Delivery {
        match self
            .store
            .drop_notification(&item.group, &item.id, &self.config.owner, now, reason)
            .await
        {
            Ok(true) => {
                self.metrics.count(Counter::NotificationsDropped);
                tracing::error!(
                    dataset_group = %item.group,
                    notification_id = %item.id,
                    status = %item.status,
                    attempts = item.attempts.saturating_add(1),
                    written_at = %item.created_at,
                    last_error = %reason,
                    "notification dropped: undeliverable for notify.max_age_secs"
                );
                Delivery::Dropped
            }
            Ok(false) => Delivery::Skipped,
            Err(e) => {
                tracing::warn!(dataset_group = %item.group, notification_id = %item.id, error = %e, "cannot drop the notification");
                Delivery::Skipped
            }
        }
    }

    /// One round: every due item (up to the batch size) gets an attempt. Returns what each did.
    pub async fn drain_outbox(&self) -> Vec<Delivery> {
        let due = match self
            .store
            .due_notifications(self.clock.now(), self.outbox.batch)
            .await
        {
            Ok(due) => due,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the notification outbox");
                return Vec::new();
            }
        };
        let mut done = Vec::with_capacity(due.len());
        for item in due {
            done.push(self.deliver_item(item).await);
        }
        done
    }

    /// Drains the outbox every poll interval until `shutdown`.
    pub(crate) async fn outbox_loop(&self, shutdown: CancellationToken) {
        loop {
            self.drain_outbox().await;
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(self.outbox.poll()) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_minimum_up_to_the_maximum() {
        let c = OutboxConfig {
            retry_min: Duration::from_secs(5),
            retry_max: Duration::from_secs(60),
            ..OutboxConfig::default()
        };
        let waits: Vec<u64> = (1..=6).map(|a| c.backoff(a).as_secs()).collect();
        assert_eq!(waits, vec![5, 10, 20, 40, 60, 60]);
        assert_eq!(c.backoff(0).as_secs(), 5);
        assert_eq!(c.backoff(u32::MAX).as_secs(), 60);
    }

    #[test]
    fn notification_ids_are_a_pure_function_of_group_subject_and_outcome() {
        let id = notification_id("shop", "generation 3 recorded 1764959344000", "UPDATE COMPLETE");
        assert_eq!(
            id,
            notification_id("shop", "generation 3 recorded 1764959344000", "UPDATE COMPLETE")
        );
        let parsed = uuid::Uuid::parse_str(&id).expect("a UUID");
        assert_eq!(parsed.get_version_num(), 8);
        let others = [
            notification_id("shop2", "generation 3 recorded 1764959344000", "UPDATE COMPLETE"),
            notification_id("shop", "generation 4 recorded 1764959344000", "UPDATE COMPLETE"),
            notification_id("shop", "generation 3 recorded 1764959344001", "UPDATE COMPLETE"),
            notification_id("shop", "generation 3 recorded 1764959344000", "UPDATE FAILED: x"),
            // Length prefixes: moving a boundary between the parts changes the id.
            notification_id("sho", "pgeneration 3 recorded 1764959344000", "UPDATE COMPLETE"),
        ];
        for other in &others {
            assert_ne!(&id, other);
        }
    }

    #[test]
    fn a_generation_s_subject_is_its_number_and_recording_instant_in_milliseconds() {
        let at = chrono::DateTime::from_timestamp_millis(1_764_959_344_123).expect("instant");
        let desired = Desired {
            generation: 2,
            text: String::new(),
            source: crate::store::DesiredSource {
                url: crate::objects::ObjectUrl::new("b", "train/g/config.json"),
                etag: None,
                version_id: None,
                sequencer: None,
                last_modified: None,
            },
            received_at: at + chrono::Duration::microseconds(456),
            run_timestamp: String::new(),
        };
        assert_eq!(
            generation_subject(&desired),
            "generation 2 recorded 1764959344123"
        );
    }

    #[test]
    fn the_claim_setting_reaches_the_outbox() {
        let load = |pairs: &[(&str, &str)]| {
            let env = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string()));
            let s = crate::settings::Settings::load_with_env(None, env.collect::<Vec<_>>()).expect("valid");
            OutboxConfig::from_settings(&s.notify)
        };
        assert_eq!(load(&[]).claim, Duration::from_secs(60), "the default");
        let set = load(&[
            ("PERSONALIZE_OPS__NOTIFY__CLAIM_SECS", "8640"),
            ("PERSONALIZE_OPS__NOTIFY__RETRY_MIN_SECS", "7"),
        ]);
        assert_eq!(
            set.claim,
            Duration::from_secs(8640),
            "a tenth of max_age_secs is allowed"
        );
        assert_eq!(set.retry_min, Duration::from_secs(7));
    }

    #[test]
    fn settings_keep_the_maximum_at_or_above_the_minimum() {
        let s = NotifySettings {
            sns_topic_arn: String::new(),
            event_bus: String::new(),
            jsonl_path: String::new(),
            max_age_secs: 0,
            retry_min_secs: 30,
            retry_max_secs: 10,
            claim_secs: 0,
        };
        let c = OutboxConfig::from_settings(&s);
        assert_eq!(c.retry_max, Duration::from_secs(30));
        assert_eq!(c.max_age, Duration::from_secs(1));
        assert_eq!(c.claim, Duration::from_secs(1));
    }
}
