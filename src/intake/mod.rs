//! Change events: S3 event notifications from SQS (daemon) or a watched directory (local mode).

pub mod event;
