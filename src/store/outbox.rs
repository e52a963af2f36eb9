//! The notification outbox: notifications stored with the state they announce until a target took them.
//!
//! A run result is written in the same fenced write as the observed state it announces
//! ([`NotificationStore::put_observed_notifying`]), so a crash between the two cannot lose it. Any
//! replica delivers pending items: it claims one (a conditional write, so two replicas never send
//! the same item at the same time), publishes it and deletes it, or records the failure and the
//! next attempt. An item still undelivered after the configured age is kept as *dropped* (without
//! its body) so that `status` can show it.

use chrono::{DateTime, Utc};

use super::{Lease, Observed, ObservedWrite, StoreError};

/// A notification in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredNotification {
    /// Stable across every attempt: subscribers dedupe on it (SNS attribute `notification_id`).
    pub id: String,
    /// The dataset group it is about.
    pub group: String,
    /// `UPDATE COMPLETE`, `UPDATE FAILED`, `SCHEDULED RUN COMPLETE`, …
    pub status: String,
    /// The one-line summary (the message's `default` text, shortened), kept after a drop.
    pub summary: String,
    /// The SNS `Message` body (JSON, one entry per protocol); empty once dropped.
    pub body: String,
    /// When the announced state was recorded; the age limit counts from here.
    pub created_at: DateTime<Utc>,
    /// Delivery attempts started (claims taken).
    pub attempts: u32,
    /// Not tried again before this instant.
    pub next_attempt_at: DateTime<Utc>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// Set when the item was given up: it stays only to be reported.
    pub dropped_at: Option<DateTime<Utc>>,
    /// The replica delivering it right now, and until when its claim holds.
    pub claimed_by: Option<String>,
    /// End of `claimed_by`'s claim.
    pub claim_until: Option<DateTime<Utc>>,
}

impl StoredNotification {
    /// A new pending item, to be tried at once.
    pub fn new(
        id: impl Into<String>,
        group: impl Into<String>,
        status: impl Into<String>,
        summary: impl Into<String>,
        body: impl Into<String>,
        created_at: DateTime<Utc>,
    ) -> Self {
        Self {
            id: id.into(),
            group: group.into(),
            status: status.into(),
            summary: summary.into(),
            body: body.into(),
            created_at,
            attempts: 0,
            next_attempt_at: created_at,
            last_error: None,
            dropped_at: None,
            claimed_by: None,
            claim_until: None,
        }
    }

    /// Whether it was given up.
    pub fn is_dropped(&self) -> bool {
        self.dropped_at.is_some()
    }
}

/// Longest `summary` and `last_error` stored with an item; the body carries the whole text.
pub const MAX_OUTBOX_TEXT_BYTES: usize = 1024;

/// How long a dropped item is kept for `status` before the store may delete it.
pub const DROPPED_RETENTION: std::time::Duration = std::time::Duration::from_secs(30 * 24 * 3600);

/// `text` cut to [`MAX_OUTBOX_TEXT_BYTES`] on a character boundary.
pub(crate) fn capped(text: &str) -> String {
    if text.len() <= MAX_OUTBOX_TEXT_BYTES {
        return text.to_string();
    }
    let mut end = MAX_OUTBOX_TEXT_BYTES - 3;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// The outbox half of the state store. Every adapter of [`super::StateStore`] implements it.
///
/// # Guarantees (proved on every adapter by `tests/daemon_store.rs`)
/// - `put_observed_notifying` writes the observed state and the item together or not at all, and
///   only while the lease is current (`Fenced` otherwise).
/// - An item whose (group, id) is already stored is kept as it is by `put_observed_notifying` and
///   `enqueue_notification` (attempts, claim, next attempt, body, dropped or not): an id names one
///   notification, so a second write of it is a repeat, not a reset.
/// - Of concurrent `claim_notification` calls on one item, at most one wins until its claim expires.
/// - A pending item stays listed by `due_notifications` (once its next attempt is due and it is not
///   claimed) until `delete_notification` or `drop_notification`.
#[async_trait::async_trait]
pub trait NotificationStore: Send + Sync {
    /// As [`super::StateStore::put_observed`] (`write` as there), and in the same atomic write stores
    /// `notification` unless an item with its group and id exists (that one is kept as it is).
    ///
    /// # Errors
    /// `Fenced`, `TooLarge`, `Backend`.
    async fn put_observed_notifying(
        &self,
        lease: &Lease,
        observed: &Observed,
        next_due: Option<DateTime<Utc>>,
        write: ObservedWrite,
        notification: &StoredNotification,
    ) -> Result<(), StoreError>;

    /// Stores `notification` unless an item with its group and id exists (unfenced: for results
    /// decided by another conditional write, such as the end of a scheduled fire).
    async fn enqueue_notification(&self, notification: &StoredNotification) -> Result<(), StoreError>;

    /// Up to `limit` pending items whose next attempt is due at `now` and that no unexpired claim
    /// holds, oldest first.
    async fn due_notifications(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<StoredNotification>, StoreError>;

    /// Claims a pending item for `owner` until `until` and counts an attempt; `false` when it is gone,
    /// dropped, or claimed by someone else whose claim holds at `now`.
    async fn claim_notification(
        &self,
        group: &str,
        id: &str,
        owner: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// Removes a delivered item (deleting a missing one is not an error).
    async fn delete_notification(&self, group: &str, id: &str) -> Result<(), StoreError>;

    /// Ends `owner`'s claim after a failed attempt: tried again at `next_attempt_at`. `false` when
    /// `owner` no longer holds the claim (nothing changed).
    async fn retry_notification(
        &self,
        group: &str,
        id: &str,
        owner: &str,
        next_attempt_at: DateTime<Utc>,
        error: &str,
    ) -> Result<bool, StoreError>;

    /// Gives an item up at `now` (its body is removed, the rest kept for [`DROPPED_RETENTION`]).
    /// `false` when `owner` no longer holds the claim.
    async fn drop_notification(
        &self,
        group: &str,
        id: &str,
        owner: &str,
        now: DateTime<Utc>,
        error: &str,
    ) -> Result<bool, StoreError>;

    /// Pending and dropped items of one group or of all, sorted by (group, created, id).
    async fn notifications(&self, group: Option<&str>) -> Result<Vec<StoredNotification>, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capped_texts_keep_whole_characters() {
        assert_eq!(capped("short"), "short");
        let long = "é".repeat(MAX_OUTBOX_TEXT_BYTES);
        let cut = capped(&long);
        assert!(cut.len() <= MAX_OUTBOX_TEXT_BYTES, "{}", cut.len());
        assert!(cut.ends_with('…'));
    }
}
