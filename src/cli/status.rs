//! `personalize-ops status [GROUP]`: what the service knows about each dataset group — desired
//! generation, whether it converged, resources with their status, last error, each schedule with its
//! next fire, and its notifications still waiting in the outbox or dropped — read from the state
//! store.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};
use personalize_ops::store::{GroupSummary, StoredNotification};
use serde_json::{Value, json};

use super::schedules::View;
use super::state::open_store;
use super::{Context, EXIT_FAILURE, Format};

/// Arguments of `status`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only this dataset group (exit 1 when the service has never heard of it).
    #[arg(value_name = "GROUP")]
    pub group: Option<String>,

    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,

    /// Read the state of `personalize-ops local DIR` instead of the DynamoDB table of the settings.
    #[arg(long, value_name = "DIR")]
    pub local: Option<PathBuf>,
}

/// One word for where a group stands.
fn state_word(g: &GroupSummary) -> &'static str {
    let Some(desired) = g.desired_generation else {
        return "no parameter file";
    };
    match &g.observed {
        Some(_) if g.destroyed() => "destroyed",
        None => "pending",
        Some(o) if o.generation < desired => "pending",
        Some(o) if o.converged => "converged",
        Some(o) if o.last_error.is_some() => "error",
        Some(_) => "in progress",
    }
}

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn notification_json(n: &StoredNotification) -> Value {
    json!({
        "id": n.id,
        "state": if n.is_dropped() { "dropped" } else { "pending" },
        "status": n.status,
        "summary": n.summary,
        "createdAt": time(n.created_at),
        "attempts": n.attempts,
        "nextAttemptAt": (!n.is_dropped()).then(|| time(n.next_attempt_at)),
        "droppedAt": n.dropped_at.map(time),
        "lastError": n.last_error,
    })
}

/// One line per notification of a group not delivered yet or given up.
fn notification_line(n: &StoredNotification) -> String {
    let mut line = match n.dropped_at {
        Some(at) => format!(
            "{} {} dropped at {} after {} attempt(s)",
            n.id,
            n.status,
            time(at),
            n.attempts
        ),
        None => format!(
            "{} {} pending since {}, {} attempt(s), next at {}",
            n.id,
            n.status,
            time(n.created_at),
            n.attempts,
            time(n.next_attempt_at)
        ),
    };
    if let Some(e) = &n.last_error {
        line.push_str(&format!(": {e}"));
    }
    line
}

fn to_json(g: &GroupSummary, schedules: &[View], notes: &[StoredNotification]) -> Value {
    let observed = g.observed.as_ref();
    json!({
        "datasetGroup": g.name,
        "state": state_word(g),
        "desiredGeneration": g.desired_generation,
        "source": g.desired_source.as_ref().map(ToString::to_string),
        "observedGeneration": observed.map(|o| o.generation),
        "converged": observed.is_some_and(|o| o.converged && Some(o.generation) == g.desired_generation),
        "updatedAt": observed.map(|o| time(o.updated_at)),
        "lastError": observed.and_then(|o| o.last_error.clone()),
        "destroyedAt": observed.filter(|_| g.destroyed()).and_then(|o| o.destroyed_at).map(time),
        "resources": observed.map(|o| o.resources.clone()).unwrap_or_default(),
        "owner": g.lease.owner,
        "dueAt": g.due_at.map(time),
        "schedules": schedules.iter().filter(|v| v.schedule.group == g.name).map(View::to_json).collect::<Vec<_>>(),
        "notifications": notes.iter().filter(|n| n.group == g.name).map(notification_json).collect::<Vec<_>>(),
    })
}

fn to_text(g: &GroupSummary, schedules: &[View], notes: &[StoredNotification], out: &mut String) {
    use std::fmt::Write as _;
    let generation = g.desired_generation.map_or("-".to_string(), |n| n.to_string());
    let _ = writeln!(out, "{}  generation {generation}  {}", g.name, state_word(g));
    if let Some(source) = &g.desired_source {
        let _ = writeln!(out, "  file: {source}");
    }
    if let Some(o) = &g.observed {
        let _ = writeln!(
            out,
            "  observed: generation {} at {}",
            o.generation,
            time(o.updated_at)
        );
        // Columns as wide as this group's longest kind and name: generated names (import jobs, batch
        // jobs) run past any fixed width.
        let kind_width = o
            .resources
            .iter()
            .map(|r| r.kind.camel().len())
            .max()
            .unwrap_or(0);
        let name_width = o
            .resources
            .iter()
            .map(|r| r.name.chars().count())
            .max()
            .unwrap_or(0);
        for r in &o.resources {
            let _ = write!(
                out,
                "  {:<kind_width$}  {:<name_width$}  {}",
                r.kind.camel(),
                r.name,
                r.status
            );
            if let Some(reason) = &r.reason {
                let _ = write!(out, "  ({reason})");
            }
            out.push('\n');
        }
        if let Some(e) = &o.last_error {
            let _ = writeln!(out, "  last error: {e}");
        }
        if let Some(at) = o.destroyed_at.filter(|_| g.destroyed()) {
            let _ = writeln!(
                out,
                "  destroyed at {}: this parameter file is not built again; upload a new version to rebuild the group",
                time(at)
            );
        }
    }
    if let Some(owner) = &g.lease.owner {
        let _ = writeln!(out, "  worked on by: {owner}");
    }
    let own: Vec<View> = schedules
        .iter()
        .filter(|v| v.schedule.group == g.name)
        .cloned()
        .collect();
    if !own.is_empty() {
        let _ = writeln!(out, "  schedules:");
        for row in super::schedules::table(&own) {
            let _ = writeln!(out, "    {row}");
        }
    }
    let mut own = notes.iter().filter(|n| n.group == g.name).peekable();
    if own.peek().is_some() {
        let _ = writeln!(out, "  notifications not delivered:");
        for n in own {
            let _ = writeln!(out, "    {}", notification_line(n));
        }
    }
}

/// Prints the status; exit 1 when GROUP is unknown.
pub async fn run(args: Args, ctx: &Context) -> anyhow::Result<ExitCode> {
    let store = match open_store("status", args.local.as_deref(), ctx).await? {
        Ok(store) => store,
        Err(code) => return Ok(code),
    };
    let groups: Vec<GroupSummary> = match &args.group {
        Some(name) => match store.group(name).await? {
            Some(g) => vec![g.into()],
            None => {
                eprintln!("personalize-ops status: no dataset group named {name:?} is known");
                return Ok(ExitCode::from(EXIT_FAILURE));
            }
        },
        None => store.list_groups().await?,
    };
    let now = Utc::now().trunc_subsecs(0);
    let schedules: Vec<View> = store
        .schedules(args.group.as_deref())
        .await?
        .into_iter()
        .map(|s| View::new(s, now, 1))
        .collect();
    let notes = store.notifications(args.group.as_deref()).await?;
    let text = match args.format {
        Format::Json => {
            let value = match (&args.group, groups.first()) {
                (Some(_), Some(g)) => to_json(g, &schedules, &notes),
                _ => Value::Array(groups.iter().map(|g| to_json(g, &schedules, &notes)).collect()),
            };
            format!("{value:#}\n")
        }
        Format::Text if groups.is_empty() => "no dataset groups known yet\n".to_string(),
        Format::Text => {
            let mut out = String::new();
            for g in &groups {
                to_text(g, &schedules, &notes, &mut out);
            }
            out
        }
    };
    let mut stdout = std::io::stdout().lock();
    // A closed pipe (| head) ends the output quietly.
    let _ = stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush());
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use personalize_ops::store::{LeaseInfo, Observed, ResourceKind, ResourceState};

    use super::*;

    fn summary(desired: Option<u64>, observed: Option<(u64, bool, Option<&str>)>) -> GroupSummary {
        GroupSummary {
            name: "g".into(),
            desired_generation: desired,
            desired_source: None,
            observed: observed.map(|(generation, converged, error)| Observed {
                generation,
                converged,
                resources: vec![ResourceState {
                    kind: ResourceKind::Campaign,
                    name: "c".into(),
                    status: "CREATE FAILED".into(),
                    arn: None,
                    reason: Some("quota".into()),
                }],
                last_error: error.map(str::to_string),
                updated_at: DateTime::from_timestamp(1_800_000_000, 0).expect("valid"),
                destroyed_at: None,
                announced: Vec::new(),
            }),
            lease: LeaseInfo {
                owner: None,
                epoch: 0,
                expires_at: None,
            },
            due_at: None,
        }
    }

    #[test]
    fn states_distinguish_new_generations_from_convergence() {
        assert_eq!(state_word(&summary(None, None)), "no parameter file");
        assert_eq!(state_word(&summary(Some(1), None)), "pending");
        assert_eq!(state_word(&summary(Some(2), Some((1, true, None)))), "pending");
        assert_eq!(state_word(&summary(Some(2), Some((2, true, None)))), "converged");
        assert_eq!(
            state_word(&summary(Some(2), Some((2, false, Some("x"))))),
            "error"
        );
        assert_eq!(
            state_word(&summary(Some(2), Some((2, false, None)))),
            "in progress"
        );
        let v = to_json(&summary(Some(2), Some((1, true, None))), &[], &[]);
        assert_eq!(
            v["converged"], false,
            "an older generation's convergence does not count"
        );
        let mut text = String::new();
        to_text(
            &summary(Some(2), Some((2, false, Some("campaign c failed: quota")))),
            &[],
            &[],
            &mut text,
        );
        assert!(text.contains("Campaign"), "{text}");
        assert!(text.contains("(quota)"), "{text}");
        assert!(text.contains("last error: campaign c failed: quota"), "{text}");
    }

    #[test]
    fn resource_columns_fit_the_longest_generated_name() {
        let mut g = summary(Some(1), Some((1, true, None)));
        let long = "dataset_import_interactions_2026_12_05_19_45_22";
        if let Some(o) = g.observed.as_mut() {
            o.resources.push(ResourceState {
                kind: ResourceKind::DatasetImportJob,
                name: long.into(),
                status: "ACTIVE".into(),
                arn: None,
                reason: None,
            });
        }
        let mut text = String::new();
        to_text(&g, &[], &[], &mut text);
        let rows: Vec<&str> = text
            .lines()
            .filter(|l| l.contains("ACTIVE") || l.contains("FAILED"))
            .collect();
        assert_eq!(rows.len(), 2, "{text}");
        assert!(
            rows[1].contains(&format!("{long}  ACTIVE")),
            "two spaces after the longest name: {text}"
        );
        let status_at = |row: &str| row.find("CREATE FAILED").or_else(|| row.find("ACTIVE"));
        assert_eq!(status_at(rows[0]), status_at(rows[1]), "statuses line up: {text}");
    }

    #[test]
    fn pending_and_dropped_notifications_are_listed_under_their_group() {
        let at = DateTime::from_timestamp(1_800_000_000, 0).expect("valid");
        let mut pending = StoredNotification::new("n1", "g", "UPDATE COMPLETE", "done", "{}", at);
        pending.attempts = 2;
        pending.last_error = Some("Topic does not exist".into());
        let mut dropped = StoredNotification::new("n0", "g", "UPDATE FAILED", "failed", "", at);
        dropped.dropped_at = Some(at + chrono::Duration::hours(24));
        let other = StoredNotification::new("x", "h", "UPDATE COMPLETE", "done", "{}", at);
        let notes = vec![dropped, pending, other];
        let v = to_json(&summary(Some(1), Some((1, true, None))), &[], &notes);
        let listed = v["notifications"].as_array().expect("array");
        assert_eq!(listed.len(), 2, "{v:#}");
        assert_eq!(
            (listed[0]["id"].as_str(), listed[0]["state"].as_str()),
            (Some("n0"), Some("dropped"))
        );
        assert_eq!(listed[0]["nextAttemptAt"], Value::Null);
        assert_eq!(listed[1]["state"], "pending");
        assert_eq!(listed[1]["attempts"], 2);
        let mut text = String::new();
        to_text(&summary(Some(1), Some((1, true, None))), &[], &notes, &mut text);
        assert!(text.contains("notifications not delivered:"), "{text}");
        assert!(
            text.contains("n0 UPDATE FAILED dropped at 2027-01-16T08:00:00Z"),
            "{text}"
        );
        assert!(text.contains("n1 UPDATE COMPLETE pending since"), "{text}");
        assert!(text.contains(": Topic does not exist"), "{text}");
        assert!(!text.contains(" x "), "another group's notification: {text}");
    }
}
