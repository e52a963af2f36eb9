//! `schedules import-dataset-group` with the binary against the built-in Personalize: a group
//! applied from a fixture is exported, the file validates, and `plan` on it shows no change.

mod support;

use std::path::Path;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use personalize_ops::emulator::faults::FaultSpec;
use personalize_ops::reconcile::PassOutcome;
use serde_json::Value;
use support::reconcile::*;
use tokio_util::sync::CancellationToken;

const PATIENCE: Duration = Duration::from_secs(60);

/// Exports sample_config.json's group with an import schedule, two full schedules and an update
/// schedule on a solution that also has a full one.
const EXPORT: &[&str] = &[
    "schedules",
    "import-dataset-group",
    "--dataset-group",
    "unit_test_new_datasetgroup",
    "-i",
    "cron(0 */6 * * ? *)",
    "-f",
    "unit_test_sims_new@cron(0 0 ? * 1 *)",
    "-f",
    "unit_test_personalized_ranking_new@cron(0 2 ? * 1 *)",
    "-u",
    "unit_test_personalized_ranking_new@rate(4 hours)",
];

/// A Domain group with recommenders (the reference never exported recommenders).
const DOMAIN_GROUP: &str = r#"{
  "datasetGroup": {"serviceConfig": {"name": "vod-export", "domain": "VIDEO_ON_DEMAND",
    "tags": [{"tagKey": "team", "tagValue": "video"}]}},
  "datasets": {
    "interactions": {
      "dataset": {"serviceConfig": {"name": "vod-export-interactions"}},
      "schema": {"serviceConfig": {"name": "vod-export-interactions-schema", "domain": "VIDEO_ON_DEMAND", "schema": {
        "type": "record", "name": "Interactions", "namespace": "com.amazonaws.personalize.schema",
        "fields": [{"name": "USER_ID", "type": "string"}, {"name": "ITEM_ID", "type": "string"},
                   {"name": "EVENT_TYPE", "type": "string"}, {"name": "TIMESTAMP", "type": "long"}],
        "version": "1.0"}}}
    }
  },
  "recommenders": [
    {"serviceConfig": {"name": "vod-export-top-picks", "recipeArn": "arn:aws:personalize:::recipe/aws-vod-top-picks",
      "tags": [{"tagKey": "tier", "tagValue": "gold"}]}}
  ]
}"#;

/// Applies `text` laid out under `root` until it converges.
async fn apply_text(emu: &personalize_ops::emulator::Emulator, root: &Path, text: &str) {
    let (config, spec) = lay_out_text(root, text);
    let r = reconciler(emu, root, &settings());
    let mut events = Vec::new();
    let start = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).single().expect("valid");
    let outcome = tokio::time::timeout(
        PATIENCE,
        r.apply(&spec, &config, start, &mut events, &CancellationToken::new()),
    )
    .await
    .expect("apply ends")
    .expect("apply runs");
    assert!(matches!(outcome, PassOutcome::Converged { .. }), "{outcome:#?}");
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).to_string()
}

/// `validate` passes and `plan` shows nothing to create, update, wait for, no conflict or failure.
async fn validates_and_plans_no_change(cli: &Cli, file: &Path) {
    let file = file.to_str().expect("utf-8 path");
    let o = cli.output(&["validate", file]).await;
    assert_eq!(o.status.code(), Some(0), "{}{}", text(&o.stdout), text(&o.stderr));
    let o = cli.output(&["plan", "--config", file]).await;
    let plan = text(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{plan}{}", text(&o.stderr));
    let summary = plan.lines().last().expect("summary");
    assert!(
        summary.starts_with("0 to create, 0 to update, 0 waiting, ")
            && summary.ends_with(" unchanged, 0 conflicts, 0 failed, 0 unmanaged"),
        "{plan}"
    );
}

/// The JSON object stored at `key`.
async fn uploaded(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Value {
    let object = s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{key} was uploaded: {e}"));
    let body = object.body.collect().await.expect("body").into_bytes();
    serde_json::from_slice(&body).expect("json")
}

fn names(list: &Value) -> Vec<String> {
    list.as_array()
        .map(|a| {
            a.iter()
                .map(|x| x["serviceConfig"]["name"].as_str().expect("name").to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn solution<'v>(doc: &'v Value, name: &str) -> &'v Value {
    doc["solutions"]
        .as_array()
        .expect("solutions")
        .iter()
        .find(|s| s["serviceConfig"]["name"] == name)
        .unwrap_or_else(|| panic!("solution {name} in {doc:#}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_applied_fixture_exports_validates_and_plans_no_change() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fixture = std::fs::read_to_string(fixtures().join("sample_config.json")).expect("fixture");
    let original: Value = serde_json::from_str(&fixture).expect("json");
    let emu = start_emulator(dir.path(), |_| {}).await;
    apply_text(&emu, dir.path(), &fixture).await;
    let cli = Cli::new(&emu);
    let group = "unit_test_new_datasetgroup";
    // Beside the original, so the data it imported is found the same way.
    let file = dir.path().join(format!("train/{group}/exported.json"));
    let before = changes(&emu);

    let mut args = EXPORT.to_vec();
    // The same schedule twice is not a conflict.
    args.extend(["-u", "unit_test_personalized_ranking_new@rate(4 hours)"]);
    args.extend(["--output", file.to_str().expect("utf-8")]);
    let o = cli.output(&args).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(changes(&emu), before, "exporting changes nothing");
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&file).expect("written")).expect("json");

    // Every resource kind of the group is there, as the fixture declared it.
    assert_eq!(doc["datasetGroup"]["serviceConfig"]["name"], group);
    assert_eq!(
        doc["datasetGroup"]["workflowConfig"]["schedules"]["import"],
        "cron(0 */6 * * ? *)"
    );
    for ty in ["interactions", "users", "items"] {
        assert_eq!(
            doc["datasets"][ty]["dataset"]["serviceConfig"]["name"],
            original["datasets"][ty]["dataset"]["serviceConfig"]["name"],
            "{ty}"
        );
        assert_eq!(
            doc["datasets"][ty]["schema"]["serviceConfig"]["schema"],
            original["datasets"][ty]["schema"]["serviceConfig"]["schema"],
            "{ty}: the schema document round-trips"
        );
    }
    assert_eq!(
        doc["eventTracker"]["serviceConfig"]["name"],
        "unit_test_new_event_tracker"
    );
    let mut filters = doc["filters"].as_array().expect("filters").clone();
    filters.sort_by_key(|f| f["serviceConfig"]["name"].as_str().map(str::to_string));
    let mut want = original["filters"].as_array().expect("filters").clone();
    want.sort_by_key(|f| f["serviceConfig"]["name"].as_str().map(str::to_string));
    assert_eq!(filters, want);
    let mut got = names(&doc["solutions"]);
    let mut expected = names(&original["solutions"]);
    got.sort();
    expected.sort();
    assert_eq!(got, expected);
    for s in original["solutions"].as_array().expect("solutions") {
        let name = s["serviceConfig"]["name"].as_str().expect("name");
        let e = solution(&doc, name);
        assert_eq!(
            e["serviceConfig"]["recipeArn"], s["serviceConfig"]["recipeArn"],
            "{name}"
        );
        assert_eq!(names(&e["campaigns"]), names(&s["campaigns"]), "{name}");
        for kind in ["batchInferenceJobs", "batchSegmentJobs"] {
            let count = |v: &Value| v[kind].as_array().map_or(0, Vec::len);
            assert_eq!(
                count(e),
                count(s),
                "{name} {kind}: found under the solution versions"
            );
        }
    }
    // A solution with both -f and -u keeps both (the reference kept only the full one).
    assert_eq!(
        solution(&doc, "unit_test_personalized_ranking_new")["workflowConfig"]["schedules"],
        serde_json::json!({"full": "cron(0 2 ? * 1 *)", "update": "rate(4 hours)"})
    );
    assert_eq!(
        solution(&doc, "unit_test_sims_new")["workflowConfig"]["schedules"],
        serde_json::json!({"full": "cron(0 0 ? * 1 *)"})
    );
    assert!(solution(&doc, "unit_test_popularity_count_new")["workflowConfig"].is_null());

    validates_and_plans_no_change(&cli, &file).await;

    // Without --output the file goes to stdout, the same document.
    let o = cli.output(EXPORT).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let printed: Value = serde_json::from_slice(&o.stdout).expect("json on stdout");
    assert_eq!(printed, doc);
    assert_eq!(changes(&emu), before);

    // Unknown group or solution: exit 1, nothing written.
    let o = cli
        .output(&["schedules", "import-dataset-group", "-d", "no-such-group"])
        .await;
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("dataset group no-such-group does not exist"),
        "{}",
        text(&o.stderr)
    );
    assert!(o.stdout.is_empty());
    let o = cli
        .output(&[
            "schedules",
            "import-dataset-group",
            "-d",
            group,
            "-u",
            "nope@rate(1 day)",
        ])
        .await;
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(
        err.contains("no solution named nope (given with -u)") && err.contains("unit_test_sims_new"),
        "{err}"
    );
    assert!(o.stdout.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_domain_group_exports_its_recommenders_and_tags() {
    let dir = tempfile::tempdir().expect("tempdir");
    let emu = start_emulator(dir.path(), |_| {}).await;
    apply_text(&emu, dir.path(), DOMAIN_GROUP).await;
    let cli = Cli::new(&emu);
    let file = dir.path().join("train/vod-export/exported.json");
    let o = cli
        .output(&[
            "schedules",
            "import-dataset-group",
            "-d",
            "vod-export",
            "--output",
            file.to_str().expect("utf-8"),
        ])
        .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&file).expect("written")).expect("json");
    assert_eq!(doc["datasetGroup"]["serviceConfig"]["domain"], "VIDEO_ON_DEMAND");
    assert_eq!(
        doc["datasetGroup"]["serviceConfig"]["tags"],
        serde_json::json!([{"tagKey": "team", "tagValue": "video"}])
    );
    assert_eq!(
        doc["datasets"]["interactions"]["schema"]["serviceConfig"]["domain"],
        "VIDEO_ON_DEMAND"
    );
    let recommenders = doc["recommenders"].as_array().expect("recommenders");
    assert_eq!(recommenders.len(), 1, "{doc:#}");
    assert_eq!(recommenders[0]["serviceConfig"]["name"], "vod-export-top-picks");
    assert_eq!(
        recommenders[0]["serviceConfig"]["recipeArn"],
        "arn:aws:personalize:::recipe/aws-vod-top-picks"
    );
    assert_eq!(
        recommenders[0]["serviceConfig"]["tags"],
        serde_json::json!([{"tagKey": "tier", "tagValue": "gold"}])
    );
    assert!(doc.get("solutions").is_none(), "{doc:#}");
    validates_and_plans_no_change(&cli, &file).await;

    // --upload puts the same file where the service reads parameter files.
    let moto = support::moto::Moto::start();
    let s3 = moto.s3_client().await;
    let bucket = moto.bucket(&s3, "export").await;
    let url = format!("s3://{bucket}/train/vod-export/config.json");
    let o = cli
        .command(&[
            "schedules",
            "import-dataset-group",
            "-d",
            "vod-export",
            "--upload",
            &url,
        ])
        .env("AWS_ENDPOINT_URL", moto.endpoint())
        .env("PERSONALIZE_OPS__AWS__S3_FORCE_PATH_STYLE", "true")
        .output()
        .expect("the binary runs");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains(&format!("uploaded {url}")),
        "{}",
        text(&o.stderr)
    );
    assert_eq!(uploaded(&s3, &bucket, "train/vod-export/config.json").await, doc);
    // -p/--path, as the reference took it: a key of the service's bucket.
    let with_bucket = |args: &[&str]| {
        cli.command(args)
            .env("AWS_ENDPOINT_URL", moto.endpoint())
            .env("PERSONALIZE_OPS__AWS__S3_FORCE_PATH_STYLE", "true")
            .env("PERSONALIZE_OPS__DAEMON__BUCKET", &bucket)
            .output()
            .expect("the binary runs")
    };
    let o = with_bucket(&[
        "schedules",
        "import-dataset-group",
        "-d",
        "vod-export",
        "-p",
        "train/vod-export/via-path.json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(
        uploaded(&s3, &bucket, "train/vod-export/via-path.json").await,
        doc
    );
    let o = with_bucket(&[
        "schedules",
        "import-dataset-group",
        "-d",
        "vod-export",
        "-p",
        "vod-export.json",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("must start with train/"),
        "{}",
        text(&o.stderr)
    );

    // Throttling is retried and changes nothing in the result.
    emu.set_faults(FaultSpec::parse("throttle-next=4").expect("spec"))
        .expect("faults");
    let o = cli
        .output(&["schedules", "import-dataset-group", "-d", "vod-export"])
        .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(serde_json::from_slice::<Value>(&o.stdout).expect("json"), doc);
    // A refused call fails the export with Personalize's words, and nothing is printed.
    emu.set_faults(FaultSpec::parse("limit=ListRecommenders").expect("spec"))
        .expect("faults");
    let o = cli
        .output(&["schedules", "import-dataset-group", "-d", "vod-export"])
        .await;
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(
        err.contains("reading dataset group vod-export from Personalize")
            && err.contains("ListRecommenders")
            && err.contains("LimitExceededException"),
        "{err}"
    );
    assert!(o.stdout.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_schedule_arguments_are_usage_errors_before_any_call() {
    let dir = tempfile::tempdir().expect("tempdir");
    let emu = start_emulator(dir.path(), |_| {}).await;
    let cli = Cli::new(&emu);
    let cases: [(&[&str], &str); 9] = [
        (&["-p", "train/g/config.json"], "daemon.bucket"),
        (
            &["-p", "train/g/c.json", "--output", "c.json"],
            "cannot be used with",
        ),
        (&["-f", "recs"], "SOLUTION@EXPRESSION"),
        (&["-u", "@cron(0 1 * * ? *)"], "SOLUTION@EXPRESSION"),
        (&["-f", "recs@"], "SOLUTION@EXPRESSION"),
        (
            &["-f", "recs@cron(0 1 * * * *)"],
            "Do not specify day-of-month and day-of week",
        ),
        (&["-i", "rate(0 days)"], "not 0"),
        (
            &["-f", "recs@rate(1 day)", "-f", "recs@rate(2 days)"],
            "two schedules",
        ),
        (&["--upload", "s3://bucket/config.json"], "train/"),
    ];
    for (extra, message) in cases {
        let mut args = vec!["schedules", "import-dataset-group", "-d", "g"];
        args.extend_from_slice(extra);
        let o = cli.output(&args).await;
        assert_eq!(o.status.code(), Some(2), "{extra:?}: {}", text(&o.stderr));
        assert!(
            text(&o.stderr).contains(message),
            "{extra:?}: {}",
            text(&o.stderr)
        );
    }
    let o = cli
        .output(&[
            "schedules",
            "import-dataset-group",
            "-d",
            "g",
            "--output",
            "x.json",
            "--upload",
            "s3://b/train/g/c.json",
        ])
        .await;
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        emu.calls().calls.values().sum::<u64>(),
        0,
        "nothing was asked of Personalize"
    );
}
