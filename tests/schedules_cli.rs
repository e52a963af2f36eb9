//! The `schedules` command and the schedules in `status`, black-box with the binary: on a local
//! SQLite state seeded through the store API, and on a moto DynamoDB table.

mod support;

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use chrono::{DateTime, Utc};
use personalize_ops::store::{
    Acquire, BeginFire, DynamoStore, FireOutcome, FireStatus, Lease, LeaseGrant, Schedule, SqliteStore,
    StateStore,
};
use serde_json::Value;

const LEASE: Duration = Duration::from_secs(60);

fn binary() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_personalize-ops"));
    c.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RUST_LOG", "error")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/nonexistent")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
        .stdin(std::process::Stdio::null());
    c
}

fn run(args: &[&str]) -> Output {
    binary().args(args).output().expect("the binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

fn at(text: &str) -> DateTime<Utc> {
    text.parse().expect("RFC 3339")
}

/// `schedules next EXPR --after AFTER --count N`: the printed lines, asserting exit 0.
fn next(expression: &str, after: &str, count: u32) -> Vec<String> {
    let o = run(&[
        "schedules",
        "next",
        expression,
        "--after",
        after,
        "--count",
        &count.to_string(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{expression}: {}", stderr(&o));
    stdout(&o).lines().map(str::to_string).collect()
}

fn schedule(group: &str, name: &str, expression: &str) -> Schedule {
    Schedule {
        group: group.into(),
        name: name.into(),
        expression: expression.into(),
        target: format!("target of {name}"),
        created_at: at("2026-11-01T00:10:00Z"),
        last_fire: None,
        next_fire: None,
        active: true,
        pending_fire: None,
        last_outcome: None,
    }
}

async fn lease(store: &dyn StateStore, group: &str) -> Lease {
    match store
        .acquire_lease(group, "seed", LEASE, Acquire::Lease)
        .await
        .expect("lease")
        .0
    {
        LeaseGrant::Acquired(l) => l,
        LeaseGrant::Held { owner, .. } => panic!("{group} is held by {owner}"),
    }
}

/// Two groups: `shop` with an import (running), a full (failed once) and a rate schedule, and a batch
/// schedule of the same name as one in `news`, which also has an update schedule.
async fn seed(store: &dyn StateStore) {
    let shop = lease(store, "shop").await;
    for s in [
        schedule("shop", "personalize-dataset-import-shop", "cron(0 */6 * * ? *)"),
        schedule("shop", "solution-maintenance-full-recs", "cron(0 2 ? * MON *)"),
        schedule("shop", "solution-maintenance-update-recs", "rate(2 hours)"),
        schedule("shop", "batch-inference-shared", "cron(0 3 * * ? *)"),
    ] {
        store.put_schedule(&shop, &s).await.expect("put");
    }
    let news = lease(store, "news").await;
    for s in [
        schedule("news", "batch-inference-shared", "cron(30 4 * * ? *)"),
        schedule("news", "solution-maintenance-update-articles", "rate(1 day)"),
    ] {
        store.put_schedule(&news, &s).await.expect("put");
    }
    let fire = at("2026-11-30T02:00:00Z");
    let full = "solution-maintenance-full-recs";
    let begun = store
        .begin_fire("shop", full, fire, Some(at("2026-12-07T02:00:00Z")))
        .await
        .expect("begin");
    assert_eq!(begun, BeginFire::Started);
    let failed = FireOutcome {
        fire,
        status: FireStatus::Failed,
        detail: "solution version of recs: CREATE FAILED: quota".into(),
        at: at("2026-11-30T03:00:00Z"),
    };
    assert!(store.finish_fire("shop", full, &failed).await.expect("finish"));
    let import = "personalize-dataset-import-shop";
    let begun = store
        .begin_fire("shop", import, at("2026-12-01T06:00:00Z"), None)
        .await
        .expect("begin");
    assert_eq!(begun, BeginFire::Started);
    store.release_lease(&shop).await.expect("release");
    store.release_lease(&news).await.expect("release");
}

/// A `local DIR` with a seeded state file.
async fn local_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(&dir.path().join("state.sqlite")).expect("state file");
    seed(&store).await;
    dir
}

fn local(dir: &Path) -> String {
    dir.to_str().expect("utf-8 path").to_string()
}

// ----- next -----

#[test]
fn next_walks_month_ends_leap_days_and_the_special_fields() {
    // The last day of each month, February of a leap year included.
    assert_eq!(
        next("cron(0 12 L * ? *)", "2028-01-31T12:00:00Z", 3),
        [
            "2028-02-29T12:00:00Z",
            "2028-03-31T12:00:00Z",
            "2028-04-30T12:00:00Z"
        ]
    );
    // Feb 29 fires only in leap years; 2100 is not one.
    assert_eq!(
        next("cron(0 0 29 2 ? *)", "2096-03-01T00:00:00Z", 2),
        ["2104-02-29T00:00:00Z", "2108-02-29T00:00:00Z"]
    );
    // 15W: the weekday nearest the 15th (2029-09-15 is a Saturday → Friday 14th; 2029-07-15 a Sunday →
    // Monday 16th).
    assert_eq!(
        next("cron(0 9 15W * ? *)", "2029-06-30T00:00:00Z", 3),
        [
            "2029-07-16T09:00:00Z",
            "2029-08-15T09:00:00Z",
            "2029-09-14T09:00:00Z"
        ]
    );
    // 1W never leaves the month: 2029-09-01 is a Saturday → Monday the 3rd, not Friday August 31st.
    assert_eq!(
        next("cron(0 9 1W * ? *)", "2029-08-02T00:00:00Z", 1),
        ["2029-09-03T09:00:00Z"]
    );
    // LW: the last weekday (2029-09-30 is a Sunday → Friday 28th).
    assert_eq!(
        next("cron(0 9 LW * ? *)", "2029-09-01T00:00:00Z", 1),
        ["2029-09-28T09:00:00Z"]
    );
    // 6#3: the third Friday (day-of-week counts 1 = SUN).
    assert_eq!(
        next("cron(0 10 ? * 6#3 *)", "2029-01-01T00:00:00Z", 2),
        ["2029-01-19T10:00:00Z", "2029-02-16T10:00:00Z"]
    );
    // 2L: the last Monday.
    assert_eq!(
        next("cron(0 10 ? * 2L *)", "2029-05-01T00:00:00Z", 1),
        ["2029-05-28T10:00:00Z"]
    );
    // Names, ranges and steps; fires are strictly after --after.
    assert_eq!(
        next("cron(*/30 8-9 ? * MON-FRI *)", "2029-06-01T08:30:00Z", 3),
        [
            "2029-06-01T09:00:00Z",
            "2029-06-01T09:30:00Z",
            "2029-06-04T08:00:00Z"
        ]
    );
    // rate counts from --after, across a month end and into a leap day.
    assert_eq!(
        next("rate(12 hours)", "2028-02-28T18:00:00Z", 3),
        [
            "2028-02-29T06:00:00Z",
            "2028-02-29T18:00:00Z",
            "2028-03-01T06:00:00Z"
        ]
    );
    assert_eq!(
        next("rate(1 minute)", "2028-12-31T23:59:30Z", 2),
        ["2029-01-01T00:00:30Z", "2029-01-01T00:01:30Z"]
    );
}

#[test]
fn next_prints_json_and_stops_where_the_years_end() {
    let o = run(&[
        "schedules",
        "next",
        "cron(0 0 1 1 ? 2198-2199)",
        "--after",
        "2100-06-01T00:00:00Z",
        "--count",
        "5",
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(
        v["fires"],
        serde_json::json!(["2198-01-01T00:00:00Z", "2199-01-01T00:00:00Z"])
    );
    assert_eq!(v["after"], "2100-06-01T00:00:00Z");
    assert!(stderr(&o).contains("fires only 2 more time(s)"), "{}", stderr(&o));
}

#[test]
fn next_rejects_bad_expressions_with_the_validators_message() {
    let cases = [
        (
            "cron(0 12 * * * *)",
            "Do not specify day-of-month and day-of week",
        ),
        ("cron(0 12 ? * 0 *)", "day-of-week"),
        ("cron(0 12 W * ? *)", "day-of-month"),
        ("cron(0 12 * * ?)", "cron"),
        ("cron(61 0 * * ? *)", "minutes"),
        ("rate(0 minutes)", "not 0"),
        ("rate(1 minutes)", "rate"),
        ("every day", "use cron("),
        ("delete", "never fires"),
    ];
    for (expression, message) in cases {
        let o = run(&["schedules", "next", expression]);
        assert_eq!(o.status.code(), Some(1), "{expression}: {}", stdout(&o));
        assert!(stdout(&o).is_empty(), "{expression}: {}", stdout(&o));
        assert!(
            stderr(&o).contains(message),
            "{expression}: expected {message:?} in {}",
            stderr(&o)
        );
    }
    // Usage errors are clap's exit 2.
    for args in [
        &["schedules", "next", "rate(1 day)", "--count", "0"][..],
        &["schedules", "next", "rate(1 day)", "--after", "yesterday"],
        &["schedules", "next"],
        &["schedules", "frobnicate"],
    ] {
        assert_eq!(run(args).status.code(), Some(2), "{args:?}");
    }
}

// ----- list, describe, activate, deactivate, status on SQLite -----

#[tokio::test]
async fn list_and_describe_show_expressions_fires_and_state() {
    let dir = local_dir().await;
    let d = local(dir.path());

    let o = run(&["schedules", "list", "--local", &d]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = stdout(&o);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 8, "two group headers and six schedules: {text}");
    assert_eq!(lines[0], "news");
    assert!(
        lines.iter().any(|l| l.contains("solution-maintenance-full-recs")
            && l.contains("last 2026-11-30T02:00:00Z failed")),
        "{text}"
    );
    assert!(
        text.lines()
            .filter(|l| l.starts_with("  "))
            .all(|l| l.contains("next 2")),
        "{text}"
    );

    let o = run(&["schedules", "list", "shop", "--local", &d, "--format", "json"]);
    let v: Value = serde_json::from_slice(&o.stdout).expect("json");
    let names: Vec<&str> = v
        .as_array()
        .expect("array")
        .iter()
        .map(|s| s["name"].as_str().expect("name"))
        .collect();
    assert_eq!(
        names,
        [
            "batch-inference-shared",
            "personalize-dataset-import-shop",
            "solution-maintenance-full-recs",
            "solution-maintenance-update-recs"
        ]
    );
    // A group the store knows without schedules is an answer; an unknown group is exit 1.
    let store = SqliteStore::open(&dir.path().join("state.sqlite")).expect("state");
    let quiet = lease(&store, "quiet").await;
    store.release_lease(&quiet).await.expect("release");
    let o = run(&["schedules", "list", "quiet", "--local", &d]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "dataset group quiet has no schedules\n");
    let o = run(&["schedules", "list", "quiet", "--local", &d, "--format", "json"]);
    assert_eq!(stdout(&o).trim(), "[]");
    let o = run(&["schedules", "list", "nothing-here", "--local", &d]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).is_empty());
    assert!(
        stderr(&o).contains("no dataset group named \"nothing-here\""),
        "{}",
        stderr(&o)
    );

    // describe: three next fires (Mondays at 02:00), the last fire, active.
    let o = run(&[
        "schedules",
        "describe",
        "solution-maintenance-full-recs",
        "--local",
        &d,
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v["datasetGroup"], "shop");
    assert_eq!(v["expression"], "cron(0 2 ? * MON *)");
    assert_eq!(v["active"], true);
    assert_eq!(v["lastFire"], "2026-11-30T02:00:00Z");
    assert_eq!(v["lastOutcome"]["status"], "failed");
    assert_eq!(
        v["lastOutcome"]["detail"],
        "solution version of recs: CREATE FAILED: quota"
    );
    assert_eq!(v["runningFire"], Value::Null);
    let fires: Vec<DateTime<Utc>> = v["nextFires"]
        .as_array()
        .expect("fires")
        .iter()
        .map(|f| at(f.as_str().expect("text")))
        .collect();
    assert_eq!(fires.len(), 3, "{v}");
    let now = Utc::now();
    assert!(fires[0] > now, "{fires:?}");
    for pair in fires.windows(2) {
        assert_eq!(pair[1] - pair[0], chrono::Duration::days(7), "{fires:?}");
    }
    for f in &fires {
        assert_eq!(f.format("%a %H:%M:%S").to_string(), "Mon 02:00:00");
    }
    assert_eq!(v["nextFire"], v["nextFires"][0]);

    // A rate keeps the phase the scheduler recorded (the last fire).
    let o = run(&[
        "schedules",
        "describe",
        "solution-maintenance-update-recs",
        "--local",
        &d,
    ]);
    let text = stdout(&o);
    assert!(text.contains("expression: rate(2 hours)"), "{text}");
    assert!(text.contains("active: yes"), "{text}");
    assert!(text.contains("last fire: never"), "{text}");
    assert_eq!(
        text.lines().filter(|l| l.starts_with("    20")).count(),
        3,
        "{text}"
    );

    // A name two groups share needs --group.
    let o = run(&["schedules", "describe", "batch-inference-shared", "--local", &d]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("news, shop") && stderr(&o).contains("--group"),
        "{}",
        stderr(&o)
    );
    let o = run(&[
        "schedules",
        "describe",
        "batch-inference-shared",
        "--group",
        "news",
        "--local",
        &d,
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("cron(30 4 * * ? *)"), "{}", stdout(&o));

    // The reference's spelling, -t/--task, names a schedule too; both or neither is a usage error.
    let o = run(&[
        "schedules",
        "describe",
        "-t",
        "solution-maintenance-full-recs",
        "--local",
        &d,
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).starts_with("solution-maintenance-full-recs\n"),
        "{}",
        stdout(&o)
    );
    for args in [
        &["schedules", "describe", "a", "--task", "b", "--local", &d][..],
        &["schedules", "activate", "--local", &d],
    ] {
        assert_eq!(run(args).status.code(), Some(2), "{args:?}");
    }

    // Unknown names and groups are exit 1, with nothing on stdout.
    for args in [
        &["schedules", "describe", "no-such-schedule", "--local", &d][..],
        &[
            "schedules",
            "describe",
            "batch-inference-shared",
            "--group",
            "other",
            "--local",
            &d,
        ],
        &["schedules", "activate", "no-such-schedule", "--local", &d],
        &[
            "schedules",
            "deactivate",
            "no-such-schedule",
            "--local",
            &d,
            "--format",
            "json",
        ],
    ] {
        let o = run(args);
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        assert!(stdout(&o).is_empty(), "{args:?}: {}", stdout(&o));
        assert!(
            stderr(&o).contains("no schedule named"),
            "{args:?}: {}",
            stderr(&o)
        );
    }
}

#[tokio::test]
async fn deactivate_then_activate_round_trips_through_the_store() {
    let dir = local_dir().await;
    let d = local(dir.path());
    let name = "personalize-dataset-import-shop";

    let o = run(&["schedules", "deactivate", name, "--local", &d]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(
        text.starts_with(&format!("deactivated {name} (dataset group shop)")),
        "{text}"
    );
    assert!(text.contains("stays off until"), "{text}");
    assert!(text.contains("changes its expression"), "{text}");

    let store = SqliteStore::open(&dir.path().join("state.sqlite")).expect("state");
    let stored = store.schedules(Some("shop")).await.expect("list");
    let off: Vec<&str> = stored
        .iter()
        .filter(|s| !s.active)
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(off, [name], "only that schedule is off");

    // Shown everywhere as off, with no next fire.
    let o = run(&["schedules", "list", "shop", "--local", &d]);
    assert!(
        stdout(&o)
            .lines()
            .any(|l| l.contains(name) && l.contains("deactivated")),
        "{}",
        stdout(&o)
    );
    let o = run(&["schedules", "describe", name, "--local", &d, "--format", "json"]);
    let v: Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v["active"], false);
    assert_eq!(v["nextFire"], Value::Null);
    let o = run(&["schedules", "describe", name, "--local", &d]);
    assert!(
        stdout(&o).contains("next fires once activated:"),
        "{}",
        stdout(&o)
    );

    // Twice is not an error, and says so.
    let o = run(&["schedules", "deactivate", name, "--local", &d, "--format", "json"]);
    assert_eq!(o.status.code(), Some(0));
    let v: Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v["changed"], false);
    assert!(
        v["message"]
            .as_str()
            .expect("message")
            .contains("already deactivated"),
        "{v}"
    );

    let o = run(&["schedules", "activate", name, "--local", &d]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.starts_with(&format!("activated {name}")), "{text}");
    assert!(text.contains("; next fire 20"), "{text}");
    let stored = store.schedules(Some("shop")).await.expect("list");
    assert!(stored.iter().all(|s| s.active), "{stored:?}");
}

#[tokio::test]
async fn status_shows_each_schedule_with_its_next_fire() {
    let dir = local_dir().await;
    let d = local(dir.path());
    let o = run(&[
        "schedules",
        "deactivate",
        "solution-maintenance-update-recs",
        "--local",
        &d,
    ]);
    assert_eq!(o.status.code(), Some(0));

    let o = run(&["status", "shop", "--local", &d]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("  schedules:"), "{text}");
    let line = |name: &str| {
        text.lines()
            .find(|l| l.contains(name))
            .unwrap_or_else(|| panic!("{name} in {text}"))
            .to_string()
    };
    assert!(
        line("personalize-dataset-import-shop").contains("next 20"),
        "{text}"
    );
    assert!(
        line("solution-maintenance-full-recs").contains("last 2026-11-30T02:00:00Z"),
        "{text}"
    );
    assert!(
        line("solution-maintenance-update-recs").contains("deactivated"),
        "{text}"
    );
    assert!(!text.contains("articles"), "another group's schedule: {text}");

    let o = run(&["status", "shop", "--local", &d, "--format", "json"]);
    let v: Value = serde_json::from_slice(&o.stdout).expect("json");
    let schedules = v["schedules"].as_array().expect("schedules");
    assert_eq!(schedules.len(), 4, "{v}");
    assert!(schedules.iter().all(|s| s["datasetGroup"] == "shop"));

    // All groups: each with its own schedules.
    let o = run(&["status", "--local", &d, "--format", "json"]);
    let v: Value = serde_json::from_slice(&o.stdout).expect("json");
    let counts: Vec<(String, usize)> = v
        .as_array()
        .expect("groups")
        .iter()
        .map(|g| {
            (
                g["datasetGroup"].as_str().expect("name").to_string(),
                g["schedules"].as_array().expect("schedules").len(),
            )
        })
        .collect();
    assert_eq!(counts, [("news".to_string(), 2), ("shop".to_string(), 4)]);
}

#[test]
fn a_missing_state_is_exit_1_and_no_table_is_exit_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let o = run(&["schedules", "list", "--local", &local(dir.path())]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("has no local state"), "{}", stderr(&o));
    let o = run(&["schedules", "describe", "x"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("daemon.table_name"), "{}", stderr(&o));
}

// ----- DynamoDB (moto) -----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_table_of_the_settings_is_listed_and_changed() {
    let moto = support::moto::Moto::start();
    let client = aws_sdk_dynamodb::Client::new(&moto.sdk_config().await);
    let table = support::moto::unique_name("state");
    DynamoStore::create_table(&client, &table)
        .await
        .expect("create table");
    let store = DynamoStore::new(client, table.clone());
    seed(&store).await;

    let dynamo = |args: &[&str]| {
        binary()
            .args(args)
            .env("AWS_ENDPOINT_URL", moto.endpoint())
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_REGION", "us-east-1")
            .env("PERSONALIZE_OPS__DAEMON__TABLE_NAME", &table)
            .output()
            .expect("the binary runs")
    };
    let o = dynamo(&["schedules", "list", "--format", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v.as_array().expect("array").len(), 6, "{v}");

    let name = "solution-maintenance-full-recs";
    let o = dynamo(&["schedules", "deactivate", name]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let stored = store.schedules(Some("shop")).await.expect("list");
    let s = stored.iter().find(|s| s.name == name).expect("stored");
    assert!(!s.active);
    assert_eq!(s.last_fire, Some(at("2026-11-30T02:00:00Z")), "the history stays");

    let o = dynamo(&["schedules", "describe", name]);
    assert!(stdout(&o).contains("active: no"), "{}", stdout(&o));
    let o = dynamo(&["schedules", "activate", name]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        store
            .schedules(Some("shop"))
            .await
            .expect("list")
            .iter()
            .all(|s| s.active)
    );
    let o = dynamo(&["schedules", "activate", "missing"]);
    assert_eq!(o.status.code(), Some(1));
}
