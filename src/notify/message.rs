//! The SNS messages: one body per protocol (`MessageStructure=json`), in the reference's shapes.
//!
//! Differences from the reference, on purpose: `default` and `sms` are never null (the reference sent
//! null for configuration errors, which SNS rejects), and a failed run lists every failed resource with
//! Personalize's own `failureReason` instead of an empty or generic message.

use serde::Serialize;
use serde_json::json;

/// The subject of every notification.
pub const SUBJECT: &str = "personalize-ops Notifications";

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
    /// The status for logs and message attributes: `UPDATE COMPLETE` or `UPDATE FAILED`.
    pub status: &'static str,
    /// The dataset group, for logs and the `datasetGroup` message attribute (`UNKNOWN` when a bad file
    /// did not name one).
    pub dataset_group: String,
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
        "default": default,
        "sms": default,
        "email": email,
        "email-json": machine,
        "sqs": machine,
    });
    Message {
        subject: SUBJECT,
        body: body.to_string(),
        status,
        dataset_group: dataset_group.to_string(),
    }
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
            let summary = format!("The personalization workflow for {dataset_group} completed with errors");
            let details = if failures.is_empty() {
                "UNKNOWN".to_string()
            } else {
                failures.iter().map(failure_line).collect::<Vec<_>>().join("\n")
            };
            let email = format!(
                "There was an error running the personalization job for dataset group {dataset_group}\n\nMessage: {details}\n\n"
            );
            let machine = json!({
                "datasetGroup": dataset_group,
                "status": "UPDATE FAILED",
                "summary": summary,
                "description": email,
                "failures": failures,
            });
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
    }
}

/// The message for a parameter file that could not be used. `dataset_group` is `None` when the file
/// did not name one (the machine-readable body then says `UNKNOWN`, as the reference does).
pub fn config_error_message(dataset_group: Option<&str>, file: &str, errors: &[String]) -> Message {
    let summary = "There were errors detected when reading a personalization job configuration file";
    let list: String = errors.iter().map(|e| format!("   - {e}\n")).collect();
    let email =
        format!("{summary}:\n\n{list}\nPlease correct these errors and upload the configuration again.");
    let default = format!(
        "{summary} ({file}): {} error(s); first: {}",
        errors.len(),
        errors.first().map(String::as_str).unwrap_or("unknown")
    );
    let machine = json!({
        "datasetGroup": dataset_group.unwrap_or("UNKNOWN"),
        "status": "UPDATE FAILED",
        "summary": summary,
        "description": errors,
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
}
