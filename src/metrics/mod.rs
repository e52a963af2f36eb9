//! Metrics: the reference's counters and the offline metrics of solution versions, behind one sink.
//!
//! [`MetricsSink::record`] never blocks and never awaits the network: the CloudWatch adapter buffers
//! (bounded) and flushes in the background, the local adapters write a line. Names and the `service`
//! dimension follow the reference (docs/reference.md#cloudwatch), so its dashboards and alarms keep working.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::settings::MetricsSettings;
use crate::store::ResourceKind;

mod cloudwatch;
mod dashboard;
mod local;

pub use cloudwatch::{CloudWatchFlusher, CloudWatchSink, MAX_DATUMS_PER_CALL};
pub use dashboard::dashboard;
pub use local::{JsonLinesSink, LogSink, MemorySink};

/// The unit of a datum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Unit {
    Count,
    /// Unitless values (the reference emits solution metrics with unit `None`).
    None,
}

/// One data point.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Datum {
    pub name: String,
    pub value: f64,
    pub unit: Unit,
    /// (name, value) pairs, in order.
    pub dimensions: Vec<(String, String)>,
    pub timestamp: DateTime<Utc>,
}

/// The reference's counters, plus `EventsIgnored` (S3 events dropped by the intake: bad keys, other
/// event kinds) and `MessagesRejected` (queue messages refused whole and deleted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Counter {
    ConfigurationsProcessed,
    ConfigurationsProcessedSuccesses,
    ConfigurationsProcessedFailures,
    JobSuccess,
    JobFailure,
    /// `<Kind>Created`, once per successful create call.
    Created(ResourceKind),
    /// A schedule created (scheduler).
    JobsCreated,
    /// A schedule deleted (scheduler).
    JobsDeleted,
    EventsIgnored,
    /// A queue message refused and deleted without acting on it: an event naming a bucket other than
    /// `daemon.bucket`, or a body that is not an S3 event notification.
    MessagesRejected,
    /// A parameter file the resync found in the bucket and recorded as a new desired generation: its
    /// event was lost (or had not arrived yet).
    ResyncRecorded,
    /// A scheduled action finished (whatever its outcome).
    ScheduledRuns,
    /// A scheduled action failed.
    ScheduledRunsFailed,
    /// A fire did nothing: no new data, or missed beyond the catch-up window.
    ScheduledRunsSkipped,
    /// A fire came while the schedule's previous action still ran and was folded into it.
    ScheduledRunsCoalesced,
    /// A run result stayed undeliverable for `notify.max_age_secs` and was given up.
    NotificationsDropped,
}

/// Value of the `service` dimension of workflow counters (the reference's `POWERTOOLS_SERVICE_NAME`).
pub const SERVICE_WORKFLOW: &str = "Workflow";
/// Value of the `service` dimension of scheduler counters.
pub const SERVICE_SCHEDULER: &str = "Scheduler";

impl Counter {
    pub fn name(self) -> String {
        match self {
            Self::ConfigurationsProcessed => "ConfigurationsProcessed".into(),
            Self::ConfigurationsProcessedSuccesses => "ConfigurationsProcessedSuccesses".into(),
            Self::ConfigurationsProcessedFailures => "ConfigurationsProcessedFailures".into(),
            Self::JobSuccess => "JobSuccess".into(),
            Self::JobFailure => "JobFailure".into(),
            Self::Created(kind) => format!("{}Created", kind.camel()),
            Self::JobsCreated => "JobsCreated".into(),
            Self::JobsDeleted => "JobsDeleted".into(),
            Self::EventsIgnored => "EventsIgnored".into(),
            Self::MessagesRejected => "MessagesRejected".into(),
            Self::ResyncRecorded => "ResyncRecorded".into(),
            Self::ScheduledRuns => "ScheduledRuns".into(),
            Self::ScheduledRunsFailed => "ScheduledRunsFailed".into(),
            Self::ScheduledRunsSkipped => "ScheduledRunsSkipped".into(),
            Self::ScheduledRunsCoalesced => "ScheduledRunsCoalesced".into(),
            Self::NotificationsDropped => "NotificationsDropped".into(),
        }
    }

    /// The `service` dimension, as the reference sets it.
    pub fn service(self) -> &'static str {
        match self {
            Self::JobsCreated
            | Self::JobsDeleted
            | Self::ScheduledRuns
            | Self::ScheduledRunsFailed
            | Self::ScheduledRunsSkipped
            | Self::ScheduledRunsCoalesced => SERVICE_SCHEDULER,
            _ => SERVICE_WORKFLOW,
        }
    }

    /// One occurrence now.
    pub fn datum(self) -> Datum {
        Datum {
            name: self.name(),
            value: 1.0,
            unit: Unit::Count,
            dimensions: vec![("service".into(), self.service().into())],
            timestamp: Utc::now(),
        }
    }
}

/// The offline metrics of an ACTIVE solution version (`GetSolutionMetrics`), one datum per metric,
/// with dimensions `DatasetGroup`, `Solution`, `SolutionVersion` (the version's ARN). Emit them once,
/// when the version becomes ACTIVE (the reference re-emitted them on every describe).
pub fn solution_metrics(
    dataset_group: &str,
    solution: &str,
    solution_version_arn: &str,
    metrics: &[(String, f64)],
) -> Vec<Datum> {
    let now = Utc::now();
    metrics
        .iter()
        .filter(|(_, value)| value.is_finite())
        .map(|(name, value)| Datum {
            name: name.clone(),
            value: *value,
            unit: Unit::None,
            dimensions: vec![
                ("DatasetGroup".into(), dataset_group.into()),
                ("Solution".into(), solution.into()),
                ("SolutionVersion".into(), solution_version_arn.into()),
            ],
            timestamp: now,
        })
        .collect()
}

/// The sink the settings name, and the flusher to shut down when it is CloudWatch.
#[derive(Debug)]
pub struct MetricsSetup {
    pub sink: Arc<dyn MetricsSink>,
    /// Present for CloudWatch: call [`CloudWatchFlusher::shutdown`] before exiting.
    pub flusher: Option<CloudWatchFlusher>,
}

impl MetricsSetup {
    /// CloudWatch when a namespace is set, else JSON lines in the log. Must run inside a tokio runtime
    /// (the CloudWatch flusher is spawned on it).
    pub fn from_settings(config: &aws_config::SdkConfig, settings: &MetricsSettings) -> Self {
        let namespace = settings.namespace.trim();
        if namespace.is_empty() {
            return Self {
                sink: Arc::new(LogSink),
                flusher: None,
            };
        }
        let (sink, flusher) = CloudWatchSink::spawn(
            aws_sdk_cloudwatch::Client::new(config),
            namespace,
            settings.buffer_capacity,
            Duration::from_secs(settings.flush_interval_secs.max(1)),
        );
        Self {
            sink: Arc::new(sink),
            flusher: Some(flusher),
        }
    }
}

/// Where metrics go. Implementations must be cheap to share and must never block the caller.
pub trait MetricsSink: Send + Sync + fmt::Debug {
    /// Takes one datum. Never blocks, never fails: a sink that cannot keep up drops and counts.
    fn record(&self, datum: Datum);

    /// Records one occurrence of `counter`.
    fn count(&self, counter: Counter) {
        self.record(counter.datum());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_have_reference_names_and_services() {
        assert_eq!(
            Counter::ConfigurationsProcessedFailures.name(),
            "ConfigurationsProcessedFailures"
        );
        assert_eq!(
            Counter::Created(ResourceKind::DatasetImportJob).name(),
            "DatasetImportJobCreated"
        );
        assert_eq!(Counter::JobsCreated.service(), "Scheduler");
        let d = Counter::JobSuccess.datum();
        assert_eq!((d.value, d.unit), (1.0, Unit::Count));
        assert_eq!(
            d.dimensions,
            vec![("service".to_string(), "Workflow".to_string())]
        );
    }

    #[tokio::test]
    async fn settings_choose_the_sink() {
        let config = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .build();
        let mut settings = MetricsSettings {
            namespace: String::new(),
            flush_interval_secs: 60,
            buffer_capacity: 10,
        };
        assert!(MetricsSetup::from_settings(&config, &settings).flusher.is_none());
        settings.namespace = "personalize_ops".into();
        let setup = MetricsSetup::from_settings(&config, &settings);
        let flusher = setup.flusher.expect("CloudWatch");
        flusher.shutdown(Duration::from_secs(5)).await;
    }

    #[test]
    fn solution_metrics_carry_three_dimensions_and_skip_non_finite_values() {
        let arn = "arn:aws:personalize:us-east-1:123456789012:solution/s/abcd";
        let data = solution_metrics(
            "dsg",
            "s",
            arn,
            &[("coverage".into(), 0.5), ("precision_at_5".into(), f64::NAN)],
        );
        assert_eq!(data.len(), 1);
        assert_eq!(data[0].name, "coverage");
        assert_eq!(data[0].unit, Unit::None);
        let dims: Vec<&str> = data[0].dimensions.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(dims, ["DatasetGroup", "Solution", "SolutionVersion"]);
        assert_eq!(data[0].dimensions[2].1, arn);
    }
}
