//! The CloudWatch dashboard body: the reference's layout (docs/reference.md#cloudwatch) plus what it lacked.
//!
//! Added: `DatasetImportJobCreated` and `SchemaCreated` in the resources widget, the intake's
//! `EventsIgnored`, a time series of every solution version's offline metrics, the scheduled runs,
//! and what the reference could not see: rejected messages, uploads found by the resync instead of
//! an event, and notifications given up. Every counter the service emits is on it (tested).

use serde_json::{Value, json};

use super::Counter;
use crate::store::ResourceKind;

fn metric(namespace: &str, counter: Counter, label: &str, color: Option<&str>) -> Value {
    let mut options = json!({ "label": label });
    if let Some(color) = color {
        options["color"] = json!(color);
    }
    json!([namespace, counter.name(), "service", counter.service(), options])
}

fn single_value(title: &str, x: u32, y: u32, w: u32, h: u32, region: &str, metrics: Vec<Value>) -> Value {
    json!({
        "type": "metric",
        "x": x, "y": y, "width": w, "height": h,
        "properties": {
            "view": "singleValue",
            "title": title,
            "region": region,
            "stat": "Sum",
            "period": 300,
            "setPeriodToTimeRange": true,
            "metrics": metrics,
        }
    })
}

/// The dashboard body (`PutDashboard`'s `DashboardBody`, as JSON) for `namespace` in `region`;
/// `bucket` is linked from the quick links.
pub fn dashboard(namespace: &str, region: &str, bucket: &str) -> Value {
    let processed = single_value(
        "Personalization Configurations Processed",
        0,
        0,
        12,
        3,
        region,
        vec![
            metric(
                namespace,
                Counter::ConfigurationsProcessed,
                "Processed",
                Some("#4682b4"),
            ),
            metric(
                namespace,
                Counter::ConfigurationsProcessedSuccesses,
                "Succeeded",
                Some("#32cd32"),
            ),
            metric(
                namespace,
                Counter::ConfigurationsProcessedFailures,
                "Failures",
                Some("#ff4500"),
            ),
            metric(namespace, Counter::EventsIgnored, "Events Ignored", None),
        ],
    );
    let status = single_value(
        "Personalization Workflow Status",
        0,
        3,
        12,
        3,
        region,
        vec![
            metric(namespace, Counter::JobSuccess, "Workflow Jobs Succeeded", None),
            metric(namespace, Counter::JobFailure, "Workflow Jobs Failed", None),
            metric(namespace, Counter::JobsCreated, "Scheduler Jobs Created", None),
            metric(namespace, Counter::JobsDeleted, "Scheduler Jobs Deleted", None),
        ],
    );
    let created = single_value(
        "Amazon Personalize Resources Created",
        0,
        6,
        12,
        9,
        region,
        ResourceKind::ALL
            .iter()
            .map(|&kind| metric(namespace, Counter::Created(kind), &kind.title(), None))
            .collect(),
    );
    let scheduled = single_value(
        "Scheduled Runs",
        18,
        0,
        6,
        6,
        region,
        vec![
            metric(namespace, Counter::ScheduledRuns, "Runs", None),
            metric(namespace, Counter::ScheduledRunsFailed, "Failed", Some("#ff4500")),
            metric(namespace, Counter::ScheduledRunsSkipped, "Skipped", None),
            metric(namespace, Counter::ScheduledRunsCoalesced, "Coalesced", None),
        ],
    );
    // Non-zero values here mean something arrived the normal path did not handle.
    let intake = single_value(
        "Intake and Delivery",
        12,
        6,
        12,
        3,
        region,
        vec![
            metric(namespace, Counter::MessagesRejected, "Messages Rejected", None),
            metric(namespace, Counter::ResyncRecorded, "Found by Resync", None),
            metric(
                namespace,
                Counter::NotificationsDropped,
                "Notifications Dropped",
                Some("#ff4500"),
            ),
        ],
    );
    let solution_metrics = json!({
        "type": "metric",
        "x": 0, "y": 15, "width": 24, "height": 6,
        "properties": {
            "view": "timeSeries",
            "title": "Solution Version Offline Metrics",
            "region": region,
            "stat": "Average",
            "period": 86400,
            "metrics": [[{
                "expression": format!(
                    "SEARCH('{{{namespace},DatasetGroup,Solution,SolutionVersion}}', 'Average', 86400)"
                ),
                "id": "solutionMetrics",
                "label": "",
            }]],
        }
    });
    let links = json!({
        "type": "text",
        "x": 12, "y": 0, "width": 6, "height": 6,
        "properties": {
            "markdown": format!(
                "## Quick Links\n\n\
                 [button:Amazon Personalize](https://console.aws.amazon.com/personalize/home?region={region}#datasetGroups)\n\
                 [button:Data bucket](https://s3.console.aws.amazon.com/s3/buckets/{bucket}?region={region})\n\
                 [button:Logs](https://console.aws.amazon.com/cloudwatch/home?region={region}#logsV2:log-groups)"
            ),
        }
    });
    json!({
        "start": "-PT1D",
        "periodOverride": "auto",
        "widgets": [processed, status, created, links, solution_metrics, scheduled, intake],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn widget<'a>(d: &'a Value, title: &str) -> &'a Value {
        d["widgets"]
            .as_array()
            .expect("widgets")
            .iter()
            .find(|w| w["properties"]["title"] == title)
            .unwrap_or_else(|| panic!("no widget {title}"))
    }

    #[test]
    fn has_the_reference_widgets_and_the_missing_ones() {
        let d = dashboard("personalize_ops", "eu-west-1", "data");
        assert_eq!(d["start"], "-PT1D");
        let processed = widget(&d, "Personalization Configurations Processed");
        assert_eq!(processed["properties"]["stat"], "Sum");
        assert_eq!(
            processed["properties"]["metrics"][0],
            json!(["personalize_ops", "ConfigurationsProcessed", "service", "Workflow",
                   {"label": "Processed", "color": "#4682b4"}])
        );
        let status = widget(&d, "Personalization Workflow Status");
        assert_eq!(status["properties"]["metrics"][2][3], "Scheduler");
        let created = widget(&d, "Amazon Personalize Resources Created");
        let names: Vec<&str> = created["properties"]["metrics"]
            .as_array()
            .expect("metrics")
            .iter()
            .map(|m| m[1].as_str().expect("name"))
            .collect();
        assert!(names.contains(&"DatasetImportJobCreated"));
        assert!(names.contains(&"SchemaCreated"));
        assert_eq!(names.len(), 12);
        let solution = widget(&d, "Solution Version Offline Metrics");
        let expression = solution["properties"]["metrics"][0][0]["expression"]
            .as_str()
            .expect("expression");
        assert_eq!(
            expression,
            "SEARCH('{personalize_ops,DatasetGroup,Solution,SolutionVersion}', 'Average', 86400)"
        );
        let text = d["widgets"][3]["properties"]["markdown"].as_str().expect("links");
        assert!(text.contains("s3/buckets/data?region=eu-west-1"), "{text}");
    }

    /// Exhaustive on purpose: a new counter does not compile until it is placed on the dashboard.
    fn every_counter() -> Vec<Counter> {
        let plain = |c: Counter| match c {
            Counter::ConfigurationsProcessed
            | Counter::ConfigurationsProcessedSuccesses
            | Counter::ConfigurationsProcessedFailures
            | Counter::JobSuccess
            | Counter::JobFailure
            | Counter::Created(_)
            | Counter::JobsCreated
            | Counter::JobsDeleted
            | Counter::EventsIgnored
            | Counter::MessagesRejected
            | Counter::ResyncRecorded
            | Counter::ScheduledRuns
            | Counter::ScheduledRunsFailed
            | Counter::ScheduledRunsSkipped
            | Counter::ScheduledRunsCoalesced
            | Counter::NotificationsDropped => c,
        };
        let mut all: Vec<Counter> = [
            Counter::ConfigurationsProcessed,
            Counter::ConfigurationsProcessedSuccesses,
            Counter::ConfigurationsProcessedFailures,
            Counter::JobSuccess,
            Counter::JobFailure,
            Counter::JobsCreated,
            Counter::JobsDeleted,
            Counter::EventsIgnored,
            Counter::MessagesRejected,
            Counter::ResyncRecorded,
            Counter::ScheduledRuns,
            Counter::ScheduledRunsFailed,
            Counter::ScheduledRunsSkipped,
            Counter::ScheduledRunsCoalesced,
            Counter::NotificationsDropped,
        ]
        .into_iter()
        .map(plain)
        .collect();
        all.extend(ResourceKind::ALL.iter().map(|&k| Counter::Created(k)));
        all
    }

    #[test]
    fn every_counter_is_on_the_dashboard_with_its_service() {
        let d = dashboard("ns", "eu-west-1", "data");
        let shown: Vec<(String, String)> = d["widgets"]
            .as_array()
            .expect("widgets")
            .iter()
            .filter_map(|w| w["properties"]["metrics"].as_array())
            .flatten()
            .filter(|m| m[0] == "ns")
            .map(|m| {
                (
                    m[1].as_str().unwrap_or("").to_string(),
                    m[3].as_str().unwrap_or("").to_string(),
                )
            })
            .collect();
        for counter in every_counter() {
            let expected = (counter.name(), counter.service().to_string());
            assert!(shown.contains(&expected), "{expected:?} is not on the dashboard");
        }
    }

    #[test]
    fn widgets_do_not_overlap() {
        let d = dashboard("ns", "eu-west-1", "data");
        let cells: Vec<(u64, u64, u64, u64)> = d["widgets"]
            .as_array()
            .expect("widgets")
            .iter()
            .map(|w| {
                let n = |k: &str| w[k].as_u64().expect("a position");
                (n("x"), n("y"), n("width"), n("height"))
            })
            .collect();
        for (i, a) in cells.iter().enumerate() {
            assert!(a.0 + a.2 <= 24, "widget {i} is wider than the grid");
            for (j, b) in cells.iter().enumerate().skip(i + 1) {
                let apart = a.0 + a.2 <= b.0 || b.0 + b.2 <= a.0 || a.1 + a.3 <= b.1 || b.1 + b.3 <= a.1;
                assert!(apart, "widgets {i} and {j} overlap: {a:?} {b:?}");
            }
        }
    }
}
