//! Set-ups of the tests that run the daemon in process: its configuration, a desired file version,
//! the report of a converged group, and the start instant the stores' tests use.

use std::time::Duration;

use chrono::{DateTime, Utc};
use personalize_ops::daemon::{DaemonConfig, PassReport, PassStatus};
use personalize_ops::notify::message::Location;
use personalize_ops::objects::ObjectUrl;
use personalize_ops::store::{DesiredSource, NewDesired, ResourceKind, ResourceState};

/// The account the fake ARNs name.
pub const ACCOUNT: &str = "123456789012";

/// The instant the store tests start at.
pub fn start_time() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-28T12:00:00Z")
        .expect("valid")
        .with_timezone(&Utc)
}

/// A replica named `owner` with short leases and fast dispatch, three workers, no resync to speak
/// of; change fields with `DaemonConfig { .., ..replica_config(owner) }`.
pub fn replica_config(owner: &str) -> DaemonConfig {
    DaemonConfig {
        owner: owner.into(),
        concurrency: 3,
        lease_duration: Duration::from_secs(4),
        resync_interval: Duration::from_secs(3600),
        dispatch_interval: Duration::from_millis(100),
        error_retry: Duration::from_secs(1),
        max_passes_per_turn: 20,
        shutdown_grace: Duration::from_secs(10),
        location: location("unknown"),
    }
}

/// us-east-1 of `account`.
pub fn location(account: &str) -> Location {
    Location {
        partition: "aws".into(),
        region: "us-east-1".into(),
        account: account.into(),
    }
}

/// `text` as the parameter file of `group` at `train/<group>/config.json` of the bucket `data`,
/// its ETag derived from the text.
pub fn desired(group: &str, text: &str, sequencer: Option<&str>) -> NewDesired {
    NewDesired {
        group: group.into(),
        text: text.into(),
        source: DesiredSource {
            url: ObjectUrl::new("data", format!("train/{group}/config.json")),
            etag: Some(format!("etag-{text}")),
            version_id: None,
            sequencer: sequencer.map(str::to_string),
            last_modified: None,
        },
    }
}

/// A resource Personalize shows ACTIVE.
pub fn active(kind: ResourceKind, name: impl Into<String>, arn: impl Into<String>) -> ResourceState {
    ResourceState {
        kind,
        name: name.into(),
        status: "ACTIVE".into(),
        arn: Some(arn.into()),
        reason: None,
    }
}

/// The report of a pass that converged `group`: its dataset group ACTIVE.
pub fn converged(group: &str) -> PassReport {
    PassReport {
        status: PassStatus::Converged,
        resources: vec![active(
            ResourceKind::DatasetGroup,
            group,
            format!("arn:aws:personalize:us-east-1:{ACCOUNT}:dataset-group/{group}"),
        )],
        failures: vec![],
    }
}
