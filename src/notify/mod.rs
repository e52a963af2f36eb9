//! Notifications: SNS (per-protocol messages), optional EventBridge events, or log lines locally.

pub mod message;
