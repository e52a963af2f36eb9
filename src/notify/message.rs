//! The SNS messages: one body per protocol (`MessageStructure=json`), in the reference's shapes.
//!
//! Differences from the reference, on purpose: `default` and `sms` are never null (the reference sent
//! null for configuration errors, which SNS rejects), and a failed run lists every failed resource with
//! Personalize's own `failureReason` instead of an empty or generic message.

use serde::Serialize;
use serde_json::json;

/// The subject of every notification.
pub const SUBJECT: &str = "personalize-ops Notifications";

/// Largest `Message` body built: SNS refuses publishes above 256 KiB (body, subject and attributes
/// together), so the body keeps a margin for the rest.
pub const MAX_BODY_BYTES: usize = 240 * 1024;

/// Largest `sms` text: SNS delivers at most 1600 bytes of an SMS.
pub const MAX_SMS_BYTES: usize = 1600;

/// Largest `default` text: a one-line summary for HTTP, Lambda and chat subscribers.
pub const MAX_DEFAULT_BYTES: usize = 4 * 1024;

/// Longest single error or failure reason quoted; one huge reason must not crowd out the others.
pub const MAX_ITEM_BYTES: usize = 2 * 1024;

/// Where a dataset group lives, for console links.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub partition: String,
    pub region: String,
    pub account: String,
}

/// One resource that failed, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    /// Resource kind in words, e.g. `solution version`.
    pub kind: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    /// Personalize's `failureReason`, or what went wrong before Personalize was reached.
    pub reason: String,
}

/// How a run (a new generation, or a scheduled run) ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunOutcome {
    Complete,
    Failed(Vec<Failure>),
}

/// A notification ready to publish.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub subject: &'static str,
    /// The `Message` parameter: a JSON object with `default`, `sms`, `email`, `email-json`, `sqs`.
    pub body: String,
    /// The status for logs and message attributes, one of [`STATUSES`].
    pub status: &'static str,
    /// The dataset group, for logs and the `datasetGroup` message attribute (`UNKNOWN` when a bad file
    /// did not name one).
    pub dataset_group: String,
    /// The outbox id, the same on every delivery attempt (SNS attribute `notification_id`,
    /// `notificationId` in the machine-readable bodies and in the EventBridge detail); `None` for
    /// messages sent once, outside the outbox (configuration errors).
    pub id: Option<String>,
}

/// Statuses a message can carry.
pub const STATUSES: [&str; 8] = [
    "UPDATE COMPLETE",
    "UPDATE FAILED",
    "SCHEDULED RUN COMPLETE",
    "SCHEDULED RUN FAILED",
    "SCHEDULED RUN SKIPPED",
    "CONFIG REMOVED",
    "DELETE COMPLETE",
    "DELETE FAILED",
];

impl Message {
    /// The message with its outbox id: stamped into the `email-json` and `sqs` bodies as
    /// `notificationId`, so that subscribers without message attributes can dedupe too.
    pub fn with_id(mut self, id: &str) -> Self {
        if let Ok(serde_json::Value::Object(mut body)) = serde_json::from_str::<serde_json::Value>(&self.body)
        {
            for protocol in ["email-json", "sqs"] {
                let stamped = body
                    .get(protocol)
                    .and_then(serde_json::Value::as_str)
                    .and_then(|text| serde_json::from_str::<serde_json::Value>(text).ok())
                    .and_then(|machine| match machine {
                        serde_json::Value::Object(mut m) => {
                            m.insert("notificationId".into(), json!(id));
                            Some(serde_json::Value::Object(m).to_string())
                        }
                        _ => None,
                    });
                if let Some(stamped) = stamped {
                    body.insert(protocol.into(), json!(stamped));
                }
            }
            self.body = serde_json::Value::Object(body).to_string();
        }
        self.id = Some(id.to_string());
        self
    }

    /// The `default` text: the one-line summary.
    pub fn summary(&self) -> String {
        serde_json::from_str::<serde_json::Value>(&self.body)
            .ok()
            .and_then(|b| {
                b.get("default")
                    .and_then(serde_json::Value::as_str)
                    .map(str::to_string)
            })
            .unwrap_or_default()
    }

    /// A message as the outbox stored it; `None` when the status is not one of [`STATUSES`].
    pub fn stored(id: &str, dataset_group: &str, status: &str, body: &str) -> Option<Self> {
        let status = STATUSES.into_iter().find(|s| *s == status)?;
        Some(Self {
            subject: SUBJECT,
            body: body.to_string(),
            status,
            dataset_group: dataset_group.to_string(),
            id: Some(id.to_string()),
        })
    }

    /// The machine-readable body (`sqs`) as JSON, with `notificationId` when the message has an id.
    pub fn machine(&self) -> serde_json::Value {
        let mut machine = serde_json::from_str::<serde_json::Value>(&self.body)
            .ok()
            .and_then(|b| {
                b.get("sqs")
                    .and_then(serde_json::Value::as_str)
                    .map(str::to_string)
            })
            .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
            .filter(serde_json::Value::is_object)
            .unwrap_or_else(|| json!({"datasetGroup": self.dataset_group, "status": self.status}));
        if let Some(id) = &self.id {
            machine["notificationId"] = json!(id);
        }
        machine
    }
}

/// `text` cut to at most `max` bytes on a character boundary, with `…` when cut.
pub fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let ellipsis = "…";
    let mut end = max.saturating_sub(ellipsis.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{ellipsis}", &text[..end])
}

/// `… and N more`: what stands for the items a message had no room for.
pub fn omitted_line(count: usize) -> String {
    format!("… and {count} more")
}

/// The message built from as many leading items as fit in [`MAX_BODY_BYTES`]; `build` gets the items
/// kept and how many were left out. Bodies grow with the items kept, so a binary search finds the most.
/// `size` is a lower bound of the bytes an item adds (its text appears at least once).
fn fit<T>(items: &[T], size: impl Fn(&T) -> usize, build: impl Fn(&[T], usize) -> Message) -> Message {
    // More items than this cannot fit whatever the encoding; it keeps every trial build small.
    let mut total = 0;
    let bound = items
        .iter()
        .position(|item| {
            total += size(item);
            total > MAX_BODY_BYTES
        })
        .unwrap_or(items.len());
    if bound == items.len() {
        let whole = build(items, 0);
        if whole.body.len() <= MAX_BODY_BYTES {
            return whole;
        }
    }
    // Invariant: `lo` items fit (0 always does: every item is capped), `hi` items do not.
    let (mut lo, mut hi) = (0, bound);
    if bound < items.len() && build(&items[..bound], items.len() - bound).body.len() <= MAX_BODY_BYTES {
        return build(&items[..bound], items.len() - bound);
    }
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if build(&items[..mid], items.len() - mid).body.len() <= MAX_BODY_BYTES {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    build(&items[..lo], items.len() - lo)
}

fn envelope(
    dataset_group: &str,
    default: &str,
    email: &str,
    machine: serde_json::Value,
    status: &'static str,
) -> Message {
    let machine = machine.to_string();
    let body = json!({
        "default": truncate(default, MAX_DEFAULT_BYTES),
        "sms": truncate(default, MAX_SMS_BYTES),
        "email": email,
        "email-json": machine,
        "sqs": machine,
    });
    Message {
        subject: SUBJECT,
        body: body.to_string(),
        status,
        dataset_group: dataset_group.to_string(),
        id: None,
    }
}

/// The message at the end of a schedule's action: which schedule, which fire instant, the outcome and
/// (on failure) Personalize's reason, which `outcome.detail` carries.
pub fn scheduled_message(
    dataset_group: &str,
    location: &Location,
    schedule: &str,
    outcome: &crate::store::FireOutcome,
) -> Message {
    use crate::store::FireStatus;
    let status = match outcome.status {
        FireStatus::Succeeded => STATUSES[2],
        FireStatus::Failed => STATUSES[3],
        FireStatus::Skipped => STATUSES[4],
    };
    let fire = outcome.fire.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let detail = truncate(&outcome.detail, MAX_ITEM_BYTES * 4);
    let summary = format!(
        "Schedule {schedule} of {dataset_group} (fire {fire}) {}: {detail}",
        outcome.status.as_str()
    );
    let email = format!(
        "The scheduled run {schedule} of dataset group {dataset_group} for the fire at {fire} {}.\n\n{detail}\n\nLink: {}",
        outcome.status.as_str(),
        console_link(dataset_group, location)
    );
    let machine = json!({
        "datasetGroup": dataset_group,
        "status": status,
        "schedule": schedule,
        "fireTime": fire,
        "outcome": outcome.status.as_str(),
        "detail": detail,
        "summary": summary,
    });
    envelope(dataset_group, &summary, &email, machine, status)
}

/// What became of a dataset group whose parameter file was removed from the bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removal {
    /// `daemon.delete_removed_groups` is off: nothing is deleted.
    Kept,
    /// The group will be torn down at this instant unless the file comes back.
    Scheduled(chrono::DateTime<chrono::Utc>),
    /// The group and everything in it are gone.
    Deleted,
    /// Personalize refused deletions: these resources remain.
    Failed(Vec<Failure>),
}

/// The message about a removed parameter file: `CONFIG REMOVED` (resources kept, or the teardown
/// scheduled), `DELETE COMPLETE` or `DELETE FAILED`.
pub fn removal_message(dataset_group: &str, location: &Location, removal: &Removal) -> Message {
    let (status, summary) = match removal {
        Removal::Kept => (
            "CONFIG REMOVED",
            format!(
                "The parameter file of {dataset_group} was removed: config removed; resources kept \
                 (daemon.delete_removed_groups is off; `personalize-ops destroy --dataset-group {dataset_group}` deletes them)"
            ),
        ),
        Removal::Scheduled(at) => (
            "CONFIG REMOVED",
            format!(
                "The parameter file of {dataset_group} was removed: the dataset group and everything in it \
                 will be deleted at {} unless the file is uploaded again before then",
                at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ),
        ),
        Removal::Deleted => (
            "DELETE COMPLETE",
            format!("The dataset group {dataset_group} and everything in it were deleted"),
        ),
        Removal::Failed(failures) => {
            let lines: Vec<String> = failures.iter().take(20).map(failure_line).collect();
            (
                "DELETE FAILED",
                format!(
                    "The dataset group {dataset_group} could not be deleted whole:\n{}",
                    truncate(&lines.join("\n"), MAX_ITEM_BYTES * 4)
                ),
            )
        }
    };
    let email = format!("{summary}\n\nLink: {}", console_link(dataset_group, location));
    let machine = json!({
        "datasetGroup": dataset_group,
        "status": status,
        "summary": summary,
    });
    envelope(dataset_group, &summary, &email, machine, status)
}

/// The message at the end of a run for `dataset_group`.
pub fn run_message(dataset_group: &str, location: &Location, outcome: &RunOutcome) -> Message {
    match outcome {
        RunOutcome::Complete => {
            let summary = format!("The personalization workflow for {dataset_group} completed successfully");
            let email = format!(
                "The Personalization job for dataset group {dataset_group} is complete\n\nLink: {}",
                console_link(dataset_group, location)
            );
            let machine = json!({
                "datasetGroup": dataset_group,
                "status": "UPDATE COMPLETE",
                "summary": summary,
                "description": email,
            });
            envelope(dataset_group, &summary, &email, machine, "UPDATE COMPLETE")
        }
        RunOutcome::Failed(failures) => {
            let capped: Vec<Failure> = failures
                .iter()
                .map(|f| Failure {
                    reason: truncate(&f.reason, MAX_ITEM_BYTES),
                    name: truncate(&f.name, MAX_ITEM_BYTES),
                    ..f.clone()
                })
                .collect();
            let size = |f: &Failure| f.kind.len() + f.name.len() + f.reason.len();
            fit(&capped, size, |kept, omitted| {
                failed_run_message(dataset_group, kept, omitted)
            })
        }
    }
}

fn failed_run_message(dataset_group: &str, failures: &[Failure], omitted: usize) -> Message {
    let summary = format!("The personalization workflow for {dataset_group} completed with errors");
    let mut lines: Vec<String> = failures.iter().map(failure_line).collect();
    if omitted > 0 {
        lines.push(omitted_line(omitted));
    }
    let details = if lines.is_empty() {
        "UNKNOWN".to_string()
    } else {
        lines.join("\n")
    };
    let email = format!(
        "There was an error running the personalization job for dataset group {dataset_group}\n\nMessage: {details}\n\n"
    );
    let mut machine = json!({
        "datasetGroup": dataset_group,
        "status": "UPDATE FAILED",
        "summary": summary,
        "description": email,
        "failures": failures,
    });
    if omitted > 0 {
        machine["omittedFailures"] = json!(omitted);
    }
    let sms = format!(
        "{summary}: {}",
        failures.first().map(failure_line).unwrap_or_default()
    );
    envelope(
        dataset_group,
        sms.trim_end_matches(": "),
        &email,
        machine,
        "UPDATE FAILED",
    )
}

/// The message for a parameter file that could not be used. `dataset_group` is `None` when the file
/// did not name one (the machine-readable body then says `UNKNOWN`, as the reference does).
pub fn config_error_message(dataset_group: Option<&str>, file: &str, errors: &[String]) -> Message {
    let capped: Vec<String> = errors.iter().map(|e| truncate(e, MAX_ITEM_BYTES)).collect();
    let file = truncate(file, MAX_ITEM_BYTES);
    // An invalid file may name any group at all, of any length.
    let group = dataset_group.map(|g| truncate(g, MAX_ITEM_BYTES));
    fit(&capped, String::len, |kept, omitted| {
        config_error_body(group.as_deref(), &file, kept, omitted, errors.len())
    })
}

fn config_error_body(
    dataset_group: Option<&str>,
    file: &str,
    errors: &[String],
    omitted: usize,
    total: usize,
) -> Message {
    let summary = "There were errors detected when reading a personalization job configuration file";
    let mut listed: Vec<String> = errors.to_vec();
    if omitted > 0 {
        listed.push(omitted_line(omitted));
    }
    let list: String = listed.iter().map(|e| format!("   - {e}\n")).collect();
    let email =
        format!("{summary}:\n\n{list}\nPlease correct these errors and upload the configuration again.");
    let default = format!(
        "{summary} ({file}): {total} error(s); first: {}",
        errors.first().map(String::as_str).unwrap_or("unknown")
    );
    let machine = json!({
        "datasetGroup": dataset_group.unwrap_or("UNKNOWN"),
        "status": "UPDATE FAILED",
        "summary": summary,
        "description": listed,
        "file": file,
    });
    envelope(
        dataset_group.unwrap_or("UNKNOWN"),
        &default,
        &email,
        machine,
        "UPDATE FAILED",
    )
}

fn failure_line(f: &Failure) -> String {
    format!("{} {} failed: {}", f.kind, f.name, f.reason)
}

fn console_link(dataset_group: &str, l: &Location) -> String {
    format!(
        "https://console.aws.amazon.com/personalize/home?region={r}#arn:{p}:personalize:{r}:{a}:dataset-group${dataset_group}/setup",
        r = l.region,
        p = l.partition,
        a = l.account
    )
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    fn loc() -> Location {
        Location {
            partition: "aws".into(),
            region: "us-east-1".into(),
            account: "123456789012".into(),
        }
    }

    fn parts(m: &Message) -> Value {
        serde_json::from_str(&m.body).expect("body is JSON")
    }

    #[test]
    fn success_has_every_protocol() {
        let m = run_message("dsg1", &loc(), &RunOutcome::Complete);
        let v = parts(&m);
        assert_eq!(
            v["default"],
            "The personalization workflow for dsg1 completed successfully"
        );
        assert_eq!(v["sms"], v["default"]);
        assert!(v["email"].as_str().expect("email").contains(
            "https://console.aws.amazon.com/personalize/home?region=us-east-1#arn:aws:personalize:us-east-1:123456789012:dataset-group$dsg1/setup"
        ));
        let sqs: Value =
            serde_json::from_str(v["sqs"].as_str().expect("sqs is a JSON string")).expect("json");
        assert_eq!(sqs["status"], "UPDATE COMPLETE");
        assert_eq!(sqs["datasetGroup"], "dsg1");
        assert_eq!(v["email-json"], v["sqs"]);
        assert_eq!(m.status, "UPDATE COMPLETE");
        assert_eq!(m.dataset_group, "dsg1");
    }

    #[test]
    fn the_id_is_stamped_into_the_machine_bodies_and_survives_storage() {
        let m = run_message("dsg1", &loc(), &RunOutcome::Complete).with_id("n-1");
        assert_eq!(m.id.as_deref(), Some("n-1"));
        let v = parts(&m);
        for protocol in ["sqs", "email-json"] {
            let machine: Value =
                serde_json::from_str(v[protocol].as_str().expect("a JSON string")).expect("json");
            assert_eq!(machine["notificationId"], "n-1", "{protocol}");
            assert_eq!(machine["status"], "UPDATE COMPLETE");
        }
        assert_eq!(
            m.summary(),
            "The personalization workflow for dsg1 completed successfully"
        );
        let back = Message::stored("n-1", "dsg1", "UPDATE COMPLETE", &m.body).expect("known status");
        assert_eq!(back, m);
        assert_eq!(back.machine()["notificationId"], "n-1");
        assert_eq!(back.machine()["datasetGroup"], "dsg1");
        assert!(Message::stored("n-1", "dsg1", "SOMETHING ELSE", &m.body).is_none());
        for status in STATUSES {
            assert_eq!(
                Message::stored("n", "g", status, "{}").map(|m| m.status),
                Some(status)
            );
        }
        // A body that is not the usual JSON still yields a machine detail with the id.
        let odd = Message::stored("n-2", "g", "UPDATE FAILED", "not json").expect("status");
        assert_eq!(
            odd.machine(),
            json!({"datasetGroup": "g", "status": "UPDATE FAILED", "notificationId": "n-2"})
        );
        assert_eq!(odd.summary(), "");
        // Configuration errors carry no id.
        let config = config_error_message(None, "train/x.json", &["bad".into()]);
        assert_eq!(config.id, None);
        assert!(config.machine().get("notificationId").is_none());
    }

    #[test]
    fn failure_lists_each_resource_with_its_reason() {
        let failures = vec![
            Failure {
                kind: "solution version".into(),
                name: "sol-a".into(),
                arn: Some("arn:aws:personalize:us-east-1:123456789012:solution/sol-a/1a2b3c4d".into()),
                reason: "Dataset has fewer than 25 users with at least 2 interactions each.".into(),
            },
            Failure {
                kind: "campaign".into(),
                name: "c1".into(),
                arn: None,
                reason: "depends on sol-a".into(),
            },
        ];
        let m = run_message("dsg1", &loc(), &RunOutcome::Failed(failures));
        let v = parts(&m);
        assert!(
            v["default"]
                .as_str()
                .expect("default")
                .contains("completed with errors")
        );
        assert!(
            v["default"]
                .as_str()
                .expect("default")
                .contains("fewer than 25 users")
        );
        let email = v["email"].as_str().expect("email");
        assert!(
            email.contains("Message: solution version sol-a failed: Dataset has fewer than 25 users"),
            "{email}"
        );
        assert!(email.contains("campaign c1 failed: depends on sol-a"));
        let sqs: Value = serde_json::from_str(v["sqs"].as_str().expect("sqs")).expect("json");
        assert_eq!(sqs["status"], "UPDATE FAILED");
        assert_eq!(sqs["failures"][0]["name"], "sol-a");
        assert_eq!(sqs["failures"][1].get("arn"), None);
    }

    #[test]
    fn config_errors_never_have_a_null_default() {
        let m = config_error_message(None, "train/x/config.json", &["a: bad".into(), "b: worse".into()]);
        let v = parts(&m);
        assert!(v["default"].is_string());
        assert!(v["sms"].is_string());
        assert!(
            v["default"]
                .as_str()
                .expect("default")
                .contains("2 error(s); first: a: bad")
        );
        let email = v["email"].as_str().expect("email");
        assert!(email.contains("   - a: bad\n   - b: worse\n"), "{email}");
        assert!(email.ends_with("Please correct these errors and upload the configuration again."));
        let sqs: Value = serde_json::from_str(v["sqs"].as_str().expect("sqs")).expect("json");
        assert_eq!(sqs["datasetGroup"], "UNKNOWN");
        assert_eq!(m.dataset_group, "UNKNOWN");
        assert_eq!(sqs["description"][1], "b: worse");
    }

    fn sizes(m: &Message) -> (usize, Value) {
        (m.body.len(), parts(m))
    }

    #[test]
    fn thousands_of_errors_fit_in_one_sns_message() {
        // Quotes and non-ASCII text grow when escaped, twice in the `sqs` body (JSON in JSON).
        let errors: Vec<String> = (0..20_000)
            .map(|i| format!("solutions[{i}].serviceConfig.recipeArn: \"é\" is not a recipe ARN; see <docs>"))
            .collect();
        let m = config_error_message(Some("dsg"), "train/dsg/config.json", &errors);
        let (len, v) = sizes(&m);
        assert!(len <= MAX_BODY_BYTES, "{len} bytes");
        assert!(v["default"].as_str().expect("default").contains("20000 error(s)"));
        let sqs: Value = serde_json::from_str(v["sqs"].as_str().expect("sqs")).expect("json");
        let listed = sqs["description"].as_array().expect("list");
        let last = listed.last().and_then(Value::as_str).expect("last");
        let omitted: usize = last
            .strip_prefix("… and ")
            .and_then(|r| r.strip_suffix(" more"))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("not an omission line: {last}"));
        assert_eq!(listed.len() - 1 + omitted, 20_000);
        assert!(listed.len() > 100, "as many as fit are kept: {}", listed.len());
        assert_eq!(listed[0], errors[0].as_str());
        assert!(
            v["email"]
                .as_str()
                .expect("email")
                .contains(&format!("   - {}\n", omitted_line(omitted)))
        );
        assert!(v["sms"].as_str().expect("sms").len() <= MAX_SMS_BYTES);
    }

    #[test]
    fn huge_single_values_are_cut() {
        let huge = "x".repeat(1024 * 1024);
        let m = config_error_message(Some(&huge), &huge, std::slice::from_ref(&huge));
        let (len, v) = sizes(&m);
        assert!(len <= MAX_BODY_BYTES, "{len} bytes");
        assert!(v["default"].as_str().expect("default").len() <= MAX_DEFAULT_BYTES);
        assert!(v["sms"].as_str().expect("sms").len() <= MAX_SMS_BYTES);
        assert!(m.dataset_group.len() <= MAX_ITEM_BYTES);
        let sqs: Value = serde_json::from_str(v["sqs"].as_str().expect("sqs")).expect("json");
        let first = sqs["description"][0].as_str().expect("first error");
        assert!(
            first.len() <= MAX_ITEM_BYTES && first.ends_with('…'),
            "{}",
            first.len()
        );
    }

    #[test]
    fn truncation_respects_character_boundaries() {
        assert_eq!(truncate("héllo", 100), "héllo");
        let cut = truncate(&"é".repeat(100), 10);
        assert!(cut.len() <= 10 && cut.ends_with('…'), "{cut}");
        assert_eq!(truncate("abcdef", 4), "a…");
    }

    #[test]
    fn failed_runs_with_thousands_of_failures_fit() {
        let failures: Vec<Failure> = (0..10_000)
            .map(|i| Failure {
                kind: "batch inference job".into(),
                name: format!("job-{i}"),
                arn: Some(format!(
                    "arn:aws:personalize:us-east-1:123456789012:batch-inference-job/job-{i}"
                )),
                reason: "r".repeat(5000),
            })
            .collect();
        let m = run_message("dsg1", &loc(), &RunOutcome::Failed(failures));
        let (len, v) = sizes(&m);
        assert!(len <= MAX_BODY_BYTES, "{len} bytes");
        let sqs: Value = serde_json::from_str(v["sqs"].as_str().expect("sqs")).expect("json");
        let kept = sqs["failures"].as_array().expect("failures").len();
        assert!(kept > 0);
        assert_eq!(
            kept + sqs["omittedFailures"].as_u64().expect("omitted") as usize,
            10_000
        );
        assert!(v["email"].as_str().expect("email").contains("… and "));
        // Small failure lists are not touched.
        let one = run_message("dsg1", &loc(), &RunOutcome::Failed(vec![]));
        assert_eq!(
            parts(&one)["sqs"].as_str().map(|s| s.contains("omitted")),
            Some(false)
        );
    }

    #[test]
    fn removal_messages_go_through_the_outbox_with_their_status() {
        let at = chrono::DateTime::from_timestamp(1_800_000_000, 0).expect("valid");
        for (removal, status, says) in [
            (Removal::Kept, "CONFIG REMOVED", "resources kept"),
            (
                Removal::Scheduled(at),
                "CONFIG REMOVED",
                "will be deleted at 2027-01-15T08:00:00Z",
            ),
            (Removal::Deleted, "DELETE COMPLETE", "were deleted"),
            (
                Removal::Failed(Vec::new()),
                "DELETE FAILED",
                "could not be deleted whole",
            ),
        ] {
            let m = removal_message("g", &loc(), &removal);
            assert_eq!(m.status, status);
            assert!(m.summary().contains(says), "{}", m.summary());
            // The outbox stores the status as text and must know it to send the message later.
            let back = Message::stored("n", "g", status, &m.body).expect("a known status");
            assert_eq!(back.status, status);
        }
    }
}
