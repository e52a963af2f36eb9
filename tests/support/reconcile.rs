//! Shared helpers of the reconciler tests: a data directory laid out like the bucket, the emulator
//! serving it, and a reconciler with fast polling.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use personalize_ops::emulator::{Emulator, EmulatorConfig};
use personalize_ops::objects::{DirStore, ObjectUrl};
use personalize_ops::reconcile::{RateLimiter, Reconciler};
use personalize_ops::settings::Settings;
use personalize_ops::spec::model::Spec;

pub const BUCKET: &str = "local";

/// A Domain (VIDEO_ON_DEMAND) group with two recommenders.
pub const DOMAIN_EXAMPLE: &str = r#"{
  "datasetGroup": {"serviceConfig": {"name": "vod-group", "domain": "VIDEO_ON_DEMAND"}},
  "datasets": {
    "interactions": {
      "dataset": {"serviceConfig": {"name": "vod-interactions"}},
      "schema": {"serviceConfig": {"name": "vod-interactions-schema", "domain": "VIDEO_ON_DEMAND", "schema": {
        "type": "record", "name": "Interactions", "namespace": "com.amazonaws.personalize.schema",
        "fields": [{"name": "USER_ID", "type": "string"}, {"name": "ITEM_ID", "type": "string"},
                   {"name": "EVENT_TYPE", "type": "string"}, {"name": "TIMESTAMP", "type": "long"}],
        "version": "1.0"}}}
    }
  },
  "recommenders": [
    {"serviceConfig": {"name": "vod-top-picks", "recipeArn": "arn:aws:personalize:::recipe/aws-vod-top-picks"}},
    {"serviceConfig": {"name": "vod-more-like-x", "recipeArn": "arn:aws:personalize:::recipe/aws-vod-more-like-x"}}
  ]
}"#;

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// A bucket directory holding `train/<group>/config.json` for `fixture`, the fixture data beside it,
/// and a batch input for every solution with batch jobs. Returns the config's URL and the spec.
pub fn lay_out(root: &Path, fixture: &str) -> (ObjectUrl, Spec) {
    let text = std::fs::read_to_string(fixtures().join(fixture)).expect("fixture");
    lay_out_text(root, &text)
}

pub fn lay_out_text(root: &Path, text: &str) -> (ObjectUrl, Spec) {
    let report = personalize_ops::spec::load(text);
    let spec = report
        .spec
        .unwrap_or_else(|| panic!("valid fixture: {:?}", report.errors));
    let group = spec.dataset_group.name.clone();
    let dir = root.join("train").join(&group);
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join("config.json"), text).expect("config");
    for d in spec.datasets.iter().flat_map(|d| d.all()) {
        if let Some(schema) = &d.schema {
            let csv = data_for(d.dataset_type, &schema.document);
            std::fs::write(dir.join(format!("{}.csv", d.dataset_type.key())), csv).expect("data");
        }
    }
    for s in &spec.solutions {
        if !s.batch_inference_jobs.is_empty() || !s.batch_segment_jobs.is_empty() {
            let b = root.join("batch").join(&group).join(&s.name);
            std::fs::create_dir_all(&b).expect("mkdir");
            std::fs::write(
                b.join("job_config.json"),
                "{\"userId\": \"1\"}\n{\"itemId\": \"98\"}\n",
            )
            .expect("input");
        }
    }
    (ObjectUrl::new(BUCKET, format!("train/{group}/config.json")), spec)
}

fn read_csv(name: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let mut r = csv::Reader::from_path(fixtures().join("data").join(name)).expect("fixture csv");
    let header = r.headers().expect("header").iter().map(str::to_string).collect();
    let rows = r
        .records()
        .map(|x| x.expect("row").iter().map(str::to_string).collect())
        .collect();
    (header, rows)
}

/// CSV data fitting `schema`: the fixture's interactions and users, column by column, with columns
/// the fixture lacks filled in by type (items are the fixture's item ids).
pub fn data_for(ty: personalize_ops::spec::kinds::DatasetType, schema: &serde_json::Value) -> String {
    use personalize_ops::spec::kinds::DatasetType;
    let fields: Vec<(String, String)> = schema["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .map(|f| {
            let ty = match &f["type"] {
                serde_json::Value::String(t) => t.clone(),
                serde_json::Value::Array(ts) => ts
                    .iter()
                    .filter_map(|t| t.as_str())
                    .find(|t| *t != "null")
                    .unwrap_or("string")
                    .to_string(),
                _ => "string".to_string(),
            };
            (f["name"].as_str().expect("field name").to_string(), ty)
        })
        .collect();
    let (header, rows) = match ty {
        DatasetType::Users => read_csv("users.csv"),
        _ => read_csv("interactions.csv"),
    };
    let mut rows = rows;
    if ty == DatasetType::Items {
        let item = header.iter().position(|h| h == "ITEM_ID").expect("ITEM_ID");
        let mut seen = std::collections::BTreeSet::new();
        rows.retain(|r| seen.insert(r[item].clone()));
    }
    let mut out = csv::Writer::from_writer(Vec::new());
    out.write_record(fields.iter().map(|(n, _)| n.as_str()))
        .expect("header");
    for (i, row) in rows.iter().enumerate() {
        let record: Vec<String> = fields
            .iter()
            .map(|(name, t)| match header.iter().position(|h| h == name) {
                Some(c) => row[c].clone(),
                None => match t.as_str() {
                    "int" | "long" => (1_600_000_000 + i).to_string(),
                    "float" | "double" => "1.0".to_string(),
                    "boolean" => "true".to_string(),
                    _ => format!("v{}", i % 5),
                },
            })
            .collect();
        out.write_record(&record).expect("row");
    }
    String::from_utf8(out.into_inner().expect("flush")).expect("utf-8")
}

pub async fn start_emulator(root: &Path, tweak: impl FnOnce(&mut EmulatorConfig)) -> Emulator {
    super::emulator::start_with(Arc::new(DirStore::new(root, BUCKET)), tweak).await
}

/// The control-plane client, retries off: the reconciler retries throttling itself; SDK retries would
/// hide what it does.
pub fn client(emu: &Emulator) -> aws_sdk_personalize::Client {
    super::emulator::clients(emu).control
}

/// Settings for tests: roles set, fast polls, a high call rate.
pub fn settings() -> Settings {
    let mut s = Settings::load_with_env(None, Vec::new()).expect("default settings");
    s.personalize.import_role_arn = "arn:aws:iam::000000000000:role/import".into();
    s.personalize.batch_inference_role_arn = "arn:aws:iam::000000000000:role/batch".into();
    s.personalize.batch_segment_role_arn = "arn:aws:iam::000000000000:role/segment".into();
    s.reconcile.calls_per_second = 2000.0;
    s.reconcile.throttle_backoff_min_ms = 5;
    s.reconcile.throttle_backoff_max_ms = 100;
    s.reconcile.throttle_retries = 20;
    for k in s.reconcile.kinds.values_mut() {
        k.poll_min_secs = 0.02;
        k.poll_max_secs = 0.2;
    }
    s
}

/// The settings as a TOML file, for the binary.
pub fn settings_toml(s: &Settings) -> String {
    let mut out = format!(
        "[personalize]\nimport_role_arn = \"{}\"\nbatch_inference_role_arn = \"{}\"\nbatch_segment_role_arn = \"{}\"\n\
         [reconcile]\ncalls_per_second = {:.1}\nthrottle_backoff_min_ms = {}\nthrottle_backoff_max_ms = {}\nthrottle_retries = {}\n",
        s.personalize.import_role_arn,
        s.personalize.batch_inference_role_arn,
        s.personalize.batch_segment_role_arn,
        s.reconcile.calls_per_second,
        s.reconcile.throttle_backoff_min_ms,
        s.reconcile.throttle_backoff_max_ms,
        s.reconcile.throttle_retries,
    );
    for (kind, k) in &s.reconcile.kinds {
        out.push_str(&format!(
            "[reconcile.kinds.{kind}]\npoll_min_secs = {}\npoll_max_secs = {}\ntimeout_secs = {}\n",
            k.poll_min_secs, k.poll_max_secs, k.timeout_secs
        ));
    }
    out
}

pub fn reconciler(emu: &Emulator, root: &Path, settings: &Settings) -> Reconciler {
    Reconciler::new(
        client(emu),
        Arc::new(DirStore::new(root, BUCKET)),
        &settings.reconcile,
        &settings.personalize,
        Arc::new(RateLimiter::new(settings.reconcile.calls_per_second)),
    )
}

/// The run start of the reconciler tests' applies.
pub fn run_start() -> chrono::DateTime<chrono::Utc> {
    use chrono::TimeZone as _;
    chrono::Utc
        .with_ymd_and_hms(2026, 1, 2, 3, 4, 5)
        .single()
        .expect("valid")
}

/// `r.apply` of `spec` started at `start`, its events into `events`; panics with the last events
/// when it does not end within [`super::wait::PATIENCE`] (a reconciler that never ends).
pub async fn apply_within(
    r: &Reconciler,
    spec: &Spec,
    config: &ObjectUrl,
    start: chrono::DateTime<chrono::Utc>,
    events: &mut Vec<personalize_ops::reconcile::Event>,
) -> personalize_ops::reconcile::PassOutcome {
    let cancel = tokio_util::sync::CancellationToken::new();
    let done = tokio::time::timeout(
        super::wait::PATIENCE,
        r.apply(spec, config, start, events, &cancel),
    )
    .await;
    match done {
        Ok(outcome) => outcome.expect("apply runs"),
        Err(_) => panic!(
            "apply did not end; the last events: {:#?}",
            &events[events.len().saturating_sub(15)..]
        ),
    }
}

/// Create and update calls the emulator received.
pub fn changes(emu: &Emulator) -> u64 {
    emu.calls()
        .calls
        .iter()
        .filter(|(op, _)| op.starts_with("Create") || op.starts_with("Update"))
        .map(|(_, n)| *n)
        .sum()
}

/// Calls of one operation.
pub fn calls_of(emu: &Emulator, op: &str) -> u64 {
    emu.calls().calls.get(op).copied().unwrap_or(0)
}

/// How long one run of the binary may take: only catches a command that never ends.
pub const BINARY_PATIENCE: std::time::Duration = std::time::Duration::from_secs(60);

/// The binary pointed at an emulator, with the test settings as its settings file.
pub struct Cli {
    settings_file: tempfile::NamedTempFile,
    endpoint: String,
}

impl Cli {
    pub fn new(emu: &personalize_ops::emulator::Emulator) -> Self {
        let settings_file = tempfile::NamedTempFile::new().expect("settings file");
        std::fs::write(settings_file.path(), settings_toml(&settings())).expect("write settings");
        Self {
            settings_file,
            endpoint: emu.url(),
        }
    }

    pub fn command(&self, args: &[&str]) -> std::process::Command {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_personalize-ops"));
        c.args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("AWS_ENDPOINT_URL_PERSONALIZE", &self.endpoint)
            .env("AWS_ACCESS_KEY_ID", "AKIDTEST")
            .env("AWS_SECRET_ACCESS_KEY", "secret")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", "/nonexistent")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
            .env("PERSONALIZE_OPS_SETTINGS", self.settings_file.path())
            .env("RUST_LOG", "error")
            .stdin(std::process::Stdio::null());
        c
    }

    pub async fn output(&self, args: &[&str]) -> std::process::Output {
        let mut c = tokio::process::Command::from(self.command(args));
        tokio::time::timeout(BINARY_PATIENCE, c.output())
            .await
            .expect("the command ends")
            .expect("the command runs")
    }
}
