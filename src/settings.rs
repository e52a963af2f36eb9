//! Service settings: `config/default.toml` < an optional file < `PERSONALIZE_OPS__*` environment variables.
//!
//! The defaults are compiled in (the same text as `config/default.toml`), so the binary works from any
//! directory. Every struct denies unknown keys: a misspelt setting is an error at start-up, never a
//! silently ignored value.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// The defaults, identical to the shipped `config/default.toml`.
pub const DEFAULTS_TOML: &str = include_str!("../config/default.toml");

/// Prefix of the environment variables that override settings.
pub const ENV_PREFIX: &str = "PERSONALIZE_OPS";

/// Role ARNs `local` gives the built-in Personalize when the role settings are empty (it assumes
/// no role; the ARN only has to be well formed): `…:role/personalize-ops-local-import-role`.
pub const LOCAL_ROLE_PREFIX: &str = "arn:aws:iam::000000000000:role/personalize-ops-local-";
/// Shortest poll interval of `local` against a scaled built-in Personalize.
pub const LOCAL_MIN_POLL_SECS: f64 = 0.05;
/// Largest call budget `local` gives itself against a scaled built-in Personalize.
pub const LOCAL_MAX_CALLS_PER_SECOND: f64 = 1000.0;

/// Dotted keys of every leaf in `value` (`reconcile.kinds.dataset.poll_min_secs`), lower case as the
/// environment source gives them.
fn flatten_keys(prefix: &str, value: config::Value, out: &mut std::collections::BTreeSet<String>) {
    match value.kind {
        config::ValueKind::Table(table) => {
            for (k, v) in table {
                let key = if prefix.is_empty() {
                    k.to_lowercase()
                } else {
                    format!("{prefix}.{}", k.to_lowercase())
                };
                flatten_keys(&key, v, out);
            }
        }
        _ if !prefix.is_empty() => {
            out.insert(prefix.to_string());
        }
        _ => {}
    }
}

/// Why settings could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("settings file {path} does not exist")]
    MissingFile { path: PathBuf },
    #[error("invalid settings: {0}")]
    Invalid(#[from] config::ConfigError),
    #[error("invalid setting {key}: {message}")]
    Value { key: &'static str, message: String },
}

/// All settings of the service.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Logging: level filter and output format.
    pub log: LogSettings,
    /// What the service passes to Personalize on the user's behalf (roles, KMS).
    pub personalize: PersonalizeSettings,
    /// The reconciler: rate limit, polling and timeouts per resource kind.
    pub reconcile: ReconcileSettings,
    /// The daemon: where events, files and state live, and how hard it works.
    pub daemon: DaemonSettings,
    /// Where notifications go.
    pub notify: NotifySettings,
    /// Where metrics go.
    pub metrics: MetricsSettings,
    /// How AWS calls behave (retries, timeouts, S3 addressing).
    pub aws: AwsSettings,
    /// The schedules' timers (`run` and `local`).
    pub scheduler: SchedulerSettings,
    /// The keys the settings file or the environment set (`reconcile.kinds.dataset.poll_min_secs`):
    /// what a mode's own defaults (`local` scales the polls) must not override.
    #[serde(skip)]
    pub explicit: std::collections::BTreeSet<String>,
}

/// The scheduler. Each key is documented in `config/default.toml`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SchedulerSettings {
    /// Run the timers in this process.
    pub enabled: bool,
    /// A fire missed while no replica ran is run once on start if younger than this, else skipped.
    pub catch_up_secs: u64,
    /// How long a fire claim holds before another replica may take the fire over.
    pub claim_ttl_secs: u64,
    /// All schedules are read from the state store this often.
    pub reload_ms: u64,
}

/// Largest parameter file the state table can hold inline (its items are capped at 400 KB).
pub const MAX_CONFIG_BYTES_LIMIT: u64 = 256 * 1024;

/// Settings of the daemon (`run`). Each key is documented in `config/default.toml`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DaemonSettings {
    /// Bucket of parameter files and data.
    pub bucket: String,
    /// Account id expected to own the buckets (`ExpectedBucketOwner` of every S3 call); empty = not sent.
    pub bucket_owner: String,
    /// SQS queue fed by the bucket's notifications.
    pub queue_url: String,
    /// DynamoDB state table.
    pub table_name: String,
    /// Dataset groups reconciled at once.
    pub concurrency: usize,
    /// SQS long-poll wait (0..=20).
    pub receive_wait_secs: u64,
    /// Messages per receive (1..=10).
    pub receive_batch_size: u32,
    /// Visibility timeout of received messages; extended by a heartbeat while working.
    pub visibility_timeout_secs: u64,
    /// Cap of the backoff after failed receives.
    pub receive_backoff_max_secs: u64,
    /// Messages received more often than this are left for the redrive policy without being handled.
    pub max_receive_count: u32,
    /// Messages of one batch handled at once.
    pub intake_concurrency: usize,
    /// Longest the handling of one message may take before it is abandoned and retried.
    pub message_deadline_secs: u64,
    /// Largest parameter file read, in bytes (at most [`MAX_CONFIG_BYTES_LIMIT`]).
    pub max_config_bytes: u64,
    /// Wait before a group whose pass failed (Personalize or the store unreachable) is tried again.
    /// How often pending resources are polled, and the call rate, are `[reconcile]` settings.
    pub error_retry_secs: u64,
    /// Lease duration of a dataset group.
    pub lease_duration_secs: u64,
    /// Largest clock difference between replicas; a lease stops being valid that much early.
    pub max_clock_skew_secs: u64,
    /// Period of the full resync.
    pub resync_interval_secs: u64,
    /// Share of `reconcile.calls_per_second` the resyncs of converged groups may use; beyond it their
    /// interval stretches.
    pub resync_call_share: f64,
    /// Port of `/healthz` and `/readyz`.
    pub health_port: u16,
    /// How long a readiness answer is reused.
    pub readiness_cache_secs: u64,
    /// Timeout of each readiness probe.
    pub readiness_timeout_secs: u64,
    /// Periods a background loop may go without progress before `/healthz` reports it stalled.
    pub health_stalled_periods: u32,
    /// Tear a dataset group down when its parameter file is removed from the bucket; off, its
    /// resources are kept and the user is told.
    pub delete_removed_groups: bool,
    /// With `delete_removed_groups`: the wait between the removal and the teardown; the file coming
    /// back meanwhile cancels it.
    pub delete_grace_secs: u64,
}

impl DaemonSettings {
    /// The keys `run` needs that are empty, as `daemon.<key>` (empty when all are set).
    pub fn missing_for_run(&self) -> Vec<&'static str> {
        [
            ("daemon.bucket", &self.bucket),
            ("daemon.queue_url", &self.queue_url),
            ("daemon.table_name", &self.table_name),
        ]
        .into_iter()
        .filter(|(_, v)| v.trim().is_empty())
        .map(|(k, _)| k)
        .collect()
    }

    /// `bucket_owner`, `None` when not set: the `ExpectedBucketOwner` of every S3 call.
    pub fn expected_bucket_owner(&self) -> Option<String> {
        PersonalizeSettings::non_empty(&self.bucket_owner).map(str::to_string)
    }

    pub fn lease_duration(&self) -> Duration {
        Duration::from_secs(self.lease_duration_secs)
    }

    pub fn max_clock_skew(&self) -> Duration {
        Duration::from_secs(self.max_clock_skew_secs)
    }

    pub fn resync_interval(&self) -> Duration {
        Duration::from_secs(self.resync_interval_secs)
    }

    pub fn visibility_timeout(&self) -> Duration {
        Duration::from_secs(self.visibility_timeout_secs)
    }
}

/// How the reconciler paces itself. Each key is documented in `config/default.toml`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ReconcileSettings {
    /// Personalize calls per second, process-wide.
    pub calls_per_second: f64,
    /// First backoff after a throttled call.
    pub throttle_backoff_min_ms: u64,
    /// Largest backoff after throttled calls.
    pub throttle_backoff_max_ms: u64,
    /// Retries of one throttled call before the pass gives up (and is retried later).
    pub throttle_retries: u32,
    /// Polling and timeout per resource kind (`dataset_import_job`, `solution_version`, …).
    pub kinds: std::collections::BTreeMap<String, KindSettings>,
}

/// Polling and timeout of one resource kind.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct KindSettings {
    /// First wait between polls of a pending resource.
    pub poll_min_secs: f64,
    /// Largest wait between polls (the wait doubles up to it).
    pub poll_max_secs: f64,
    /// A resource pending longer than this fails.
    pub timeout_secs: u64,
    /// How long the work usually takes (0: unknown), used until a resource of the kind has finished
    /// in the group: polls are sparse before it and dense around it.
    pub expected_secs: f64,
}

impl KindSettings {
    pub fn poll_min(&self) -> Duration {
        Duration::from_secs_f64(self.poll_min_secs)
    }

    pub fn poll_max(&self) -> Duration {
        Duration::from_secs_f64(self.poll_max_secs)
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_secs)
    }

    /// The expected duration, when one is set.
    pub fn expected(&self) -> Option<Duration> {
        (self.expected_secs > 0.0).then(|| Duration::from_secs_f64(self.expected_secs))
    }
}

/// The resource kinds `[reconcile.kinds.*]` must name, in the order of work.
pub const RECONCILE_KINDS: [&str; 12] = [
    "dataset_group",
    "schema",
    "dataset",
    "dataset_import_job",
    "event_tracker",
    "filter",
    "solution",
    "solution_version",
    "campaign",
    "recommender",
    "batch_inference_job",
    "batch_segment_job",
];

impl ReconcileSettings {
    /// The settings of `kind` (a key of [`RECONCILE_KINDS`]); checked at load, so always present.
    pub fn kind(&self, kind: &str) -> KindSettings {
        self.kinds.get(kind).copied().unwrap_or(KindSettings {
            poll_min_secs: 5.0,
            poll_max_secs: 300.0,
            timeout_secs: 172_800,
            expected_secs: 0.0,
        })
    }

    fn check(&self) -> Result<(), SettingsError> {
        let bad = |key: &'static str, message: String| Err(SettingsError::Value { key, message });
        if !(self.calls_per_second.is_finite() && self.calls_per_second > 0.0) {
            return bad("reconcile.calls_per_second", "must be a positive number".into());
        }
        if self.throttle_backoff_min_ms == 0 || self.throttle_backoff_min_ms > self.throttle_backoff_max_ms {
            return bad(
                "reconcile.throttle_backoff_min_ms",
                "must be at least 1 and at most throttle_backoff_max_ms".into(),
            );
        }
        if let Some(unknown) = self.kinds.keys().find(|k| !RECONCILE_KINDS.contains(&k.as_str())) {
            return bad(
                "reconcile.kinds",
                format!(
                    "unknown kind {unknown:?}; expected one of {}",
                    RECONCILE_KINDS.join(", ")
                ),
            );
        }
        if let Some(missing) = RECONCILE_KINDS.iter().find(|k| !self.kinds.contains_key(**k)) {
            return bad("reconcile.kinds", format!("kind {missing} is missing"));
        }
        for (kind, k) in &self.kinds {
            let ok = k.poll_min_secs.is_finite()
                && k.poll_max_secs.is_finite()
                && k.poll_min_secs > 0.0
                && k.poll_min_secs <= k.poll_max_secs
                && k.timeout_secs >= 1
                && k.expected_secs.is_finite()
                && k.expected_secs >= 0.0;
            if !ok {
                return bad(
                    "reconcile.kinds",
                    format!(
                        "{kind}: poll_min_secs must be > 0 and at most poll_max_secs, timeout_secs at least 1, expected_secs at least 0"
                    ),
                );
            }
        }
        Ok(())
    }
}

/// Notification targets. Empty strings mean "not configured".
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NotifySettings {
    /// SNS topic ARN.
    pub sns_topic_arn: String,
    /// EventBridge bus name or ARN.
    pub event_bus: String,
    /// JSON-lines file that receives a copy of every notification.
    pub jsonl_path: String,
    /// A run result not delivered this long after it was recorded is dropped (logged, counted).
    pub max_age_secs: u64,
    /// Wait after the first failed delivery of a run result; doubled after each further failure.
    pub retry_min_secs: u64,
    /// Longest wait between delivery attempts.
    pub retry_max_secs: u64,
    /// How long a replica attempting a delivery keeps the others off the item: what a replica killed
    /// mid-attempt delays the result by at most. An attempt is abandoned after half of it.
    pub claim_secs: u64,
}

/// Metrics target and buffering.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MetricsSettings {
    /// CloudWatch namespace; empty writes JSON lines to the log.
    pub namespace: String,
    /// Flush period of the buffer.
    pub flush_interval_secs: u64,
    /// Data points buffered at most before new ones are dropped.
    pub buffer_capacity: usize,
}

/// Behaviour of AWS SDK clients. Credentials, region and endpoints come from the SDK's default chain
/// (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_<SERVICE>`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AwsSettings {
    /// Attempts per call, standard retry mode.
    pub max_attempts: u32,
    /// TCP connect timeout.
    pub connect_timeout_secs: u64,
    /// Longest a single attempt of a call may take (connect, send, wait for the answer).
    pub attempt_timeout_secs: u64,
    /// Longest a call may take with all its retries.
    pub operation_timeout_secs: u64,
    /// Path-style S3 addressing.
    pub s3_force_path_style: bool,
}

/// Logging settings.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    /// Default `EnvFilter` directive when `RUST_LOG` is not set.
    pub level: String,
    /// `auto`, `human` or `json`.
    pub format: LogFormat,
    /// Let the AWS SDK's debug and trace events through (they carry signed headers and the access
    /// key id); off, they are dropped whatever the level filter says.
    pub sdk_wire: bool,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable on a terminal, JSON lines otherwise.
    Auto,
    /// Human-readable lines.
    Human,
    /// One JSON object per line.
    Json,
}

/// Settings passed to Personalize. Role ARNs come from here, never from a parameter file, so an uploaded
/// file cannot make Personalize assume an arbitrary role.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PersonalizeSettings {
    /// Role Personalize assumes to read import data (`CreateDatasetImportJob.roleArn`).
    pub import_role_arn: String,
    /// Role for batch inference jobs.
    pub batch_inference_role_arn: String,
    /// Role for batch segment jobs.
    pub batch_segment_role_arn: String,
    /// Role Personalize assumes to use the KMS key of new dataset groups.
    pub kms_role_arn: String,
    /// KMS key for new dataset groups.
    pub kms_key_arn: String,
}

impl AwsSettings {
    pub fn attempt_timeout(&self) -> Duration {
        Duration::from_secs(self.attempt_timeout_secs)
    }

    pub fn operation_timeout(&self) -> Duration {
        Duration::from_secs(self.operation_timeout_secs)
    }
}

impl PersonalizeSettings {
    /// The value of a role setting, `None` when it is empty.
    pub fn non_empty(value: &str) -> Option<&str> {
        let v = value.trim();
        (!v.is_empty()).then_some(v)
    }
}

/// A cross-field rule: whether it holds, the key it names, and what the key must be.
type Rule = (bool, &'static str, String);

/// `notify.claim_secs` may be at most this fraction (1/n) of `notify.max_age_secs`.
const CLAIM_SHARE_OF_MAX_AGE: u64 = 10;

impl Settings {
    /// Loads the defaults, then `file` if given, then the environment (`PERSONALIZE_OPS__SECTION__KEY`).
    pub fn load(file: Option<&Path>) -> Result<Self, SettingsError> {
        Self::load_with_env(file, std::env::vars())
    }

    /// As [`Settings::load`], with the environment given explicitly (tests must not mutate the process
    /// environment, which is shared by parallel tests).
    pub fn load_with_env(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, SettingsError> {
        let mut builder = config::Config::builder()
            .add_source(config::File::from_str(DEFAULTS_TOML, config::FileFormat::Toml));
        if let Some(path) = file {
            if !path.exists() {
                return Err(SettingsError::MissingFile {
                    path: path.to_path_buf(),
                });
            }
            builder = builder.add_source(config::File::from(path).format(config::FileFormat::Toml));
        }
        let prefix = format!("{ENV_PREFIX}__");
        let env_map: std::collections::HashMap<String, String> =
            env.into_iter().filter(|(k, _)| k.starts_with(&prefix)).collect();
        builder = builder.add_source(
            config::Environment::with_prefix(ENV_PREFIX)
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true)
                .source(Some(env_map.clone())),
        );
        let mut settings: Settings = builder.build()?.try_deserialize()?;
        let mut user = config::Config::builder();
        if let Some(path) = file {
            user = user.add_source(config::File::from(path).format(config::FileFormat::Toml));
        }
        let user = user
            .add_source(
                config::Environment::with_prefix(ENV_PREFIX)
                    .prefix_separator("__")
                    .separator("__")
                    .try_parsing(true)
                    .source(Some(env_map)),
            )
            .build()?;
        flatten_keys("", user.cache, &mut settings.explicit);
        settings.check()?;
        Ok(settings)
    }

    /// Whether the settings file or the environment set `key` (dotted, lower case).
    pub fn is_explicit(&self, key: &str) -> bool {
        self.explicit.contains(key)
    }

    /// The settings `local` runs with against the built-in Personalize at `time_scale` (its
    /// realistic durations multiplied by it):
    ///
    /// * empty role settings get a placeholder role (the built-in Personalize assumes no role);
    /// * below scale 1, poll intervals, the error retry wait and the call budget follow the scale —
    ///   polls shrink by it (at least 50 ms), calls per second grow by it (at most 1,000) — so a run
    ///   at scale 0 converges in seconds instead of waiting intervals sized for AWS.
    ///
    /// Keys the settings file or the environment set are kept as they are.
    pub fn for_builtin_personalize(&self, time_scale: f64) -> Settings {
        let mut s = self.clone();
        for (key, role) in [
            ("import_role_arn", &mut s.personalize.import_role_arn),
            (
                "batch_inference_role_arn",
                &mut s.personalize.batch_inference_role_arn,
            ),
            (
                "batch_segment_role_arn",
                &mut s.personalize.batch_segment_role_arn,
            ),
        ] {
            if PersonalizeSettings::non_empty(role).is_none() {
                *role = format!(
                    "{LOCAL_ROLE_PREFIX}{}",
                    key.trim_end_matches("_arn").replace('_', "-")
                );
            }
        }
        let scale = if time_scale.is_finite() {
            time_scale.max(0.0)
        } else {
            1.0
        };
        if scale >= 1.0 {
            return s;
        }
        if !self.is_explicit("reconcile.calls_per_second") {
            s.reconcile.calls_per_second = if scale > 0.0 {
                (s.reconcile.calls_per_second / scale).min(LOCAL_MAX_CALLS_PER_SECOND)
            } else {
                LOCAL_MAX_CALLS_PER_SECOND
            }
            .max(s.reconcile.calls_per_second);
        }
        for (kind, k) in &mut s.reconcile.kinds {
            let key = |member: &str| format!("reconcile.kinds.{kind}.{member}");
            if !self.is_explicit(&key("poll_min_secs")) {
                k.poll_min_secs = (k.poll_min_secs * scale).max(LOCAL_MIN_POLL_SECS);
            }
            if !self.is_explicit(&key("poll_max_secs")) {
                k.poll_max_secs = (k.poll_max_secs * scale).max(LOCAL_MIN_POLL_SECS);
            }
            if !self.is_explicit(&key("expected_secs")) {
                k.expected_secs *= scale;
            }
            // An explicit minimum above the scaled cap wins: the cap follows it.
            k.poll_max_secs = k.poll_max_secs.max(k.poll_min_secs);
        }
        // A throttled or failed call waits its backoff in the middle of a pass: sized for AWS (up
        // to 20 s a retry), it would hold a group for minutes against a Personalize that answers at
        // once.
        if !self.is_explicit("reconcile.throttle_backoff_max_ms") {
            s.reconcile.throttle_backoff_max_ms = ((s.reconcile.throttle_backoff_max_ms as f64 * scale)
                as u64)
                .max(s.reconcile.throttle_backoff_min_ms);
        }
        if !self.is_explicit("daemon.error_retry_secs") {
            s.daemon.error_retry_secs = ((s.daemon.error_retry_secs as f64 * scale).ceil() as u64).max(1);
        }
        s
    }

    /// Cross-field rules that serde cannot express.
    fn check(&self) -> Result<(), SettingsError> {
        self.check_daemon()?;
        self.reconcile.check()?;
        let role = PersonalizeSettings::non_empty(&self.personalize.kms_role_arn);
        let key = PersonalizeSettings::non_empty(&self.personalize.kms_key_arn);
        if role.is_some() != key.is_some() {
            return Err(SettingsError::Value {
                key: "personalize.kms_key_arn",
                message: "kms_role_arn and kms_key_arn must be set together".into(),
            });
        }
        Ok(())
    }

    fn check_daemon(&self) -> Result<(), SettingsError> {
        let mut rules = self
            .intake_rules()
            .into_iter()
            .chain(self.worker_rules())
            .chain(self.output_rules())
            .chain(self.notify_rules());
        match rules.find(|(ok, _, _)| !ok) {
            Some((_, key, message)) => Err(SettingsError::Value { key, message }),
            None => Ok(()),
        }
    }

    /// The intake's limits: SQS's, and what a parameter file may be.
    fn intake_rules(&self) -> [Rule; 6] {
        let d = &self.daemon;
        [
            (
                d.receive_wait_secs <= 20,
                "daemon.receive_wait_secs",
                "SQS allows 0..=20".into(),
            ),
            (
                (1..=10).contains(&d.receive_batch_size),
                "daemon.receive_batch_size",
                "SQS allows 1..=10".into(),
            ),
            (
                (1..=43_200).contains(&d.visibility_timeout_secs),
                "daemon.visibility_timeout_secs",
                "SQS allows 1..=43200".into(),
            ),
            (
                (1..=MAX_CONFIG_BYTES_LIMIT).contains(&d.max_config_bytes),
                "daemon.max_config_bytes",
                format!("must be 1..={MAX_CONFIG_BYTES_LIMIT} (files are stored inline in the state table)"),
            ),
            (
                d.max_receive_count >= 1 && d.intake_concurrency >= 1 && d.message_deadline_secs >= 1,
                "daemon.max_receive_count",
                "max_receive_count, intake_concurrency and message_deadline_secs must be at least 1".into(),
            ),
            (
                d.bucket_owner.trim().is_empty()
                    || (d.bucket_owner.trim().len() == 12
                        && d.bucket_owner.trim().bytes().all(|b| b.is_ascii_digit())),
                "daemon.bucket_owner",
                "must be empty or a 12-digit AWS account id".into(),
            ),
        ]
    }

    /// The workers' counts and times: leases, retries, health, resync.
    fn worker_rules(&self) -> [Rule; 7] {
        let d = &self.daemon;
        [
            (
                d.concurrency >= 1,
                "daemon.concurrency",
                "must be at least 1".into(),
            ),
            (
                d.error_retry_secs >= 1,
                "daemon.error_retry_secs",
                "must be at least 1".into(),
            ),
            (
                d.lease_duration_secs >= 1,
                "daemon.lease_duration_secs",
                "must be at least 1".into(),
            ),
            (
                d.max_clock_skew_secs.saturating_mul(2) < d.lease_duration_secs,
                "daemon.max_clock_skew_secs",
                "must be less than half of lease_duration_secs (a lease is valid for its duration minus the skew)".into(),
            ),
            (
                d.health_stalled_periods >= 1,
                "daemon.health_stalled_periods",
                "must be at least 1".into(),
            ),
            (
                d.resync_interval_secs >= 1,
                "daemon.resync_interval_secs",
                "must be at least 1".into(),
            ),
            (
                d.resync_call_share.is_finite() && d.resync_call_share > 0.0 && d.resync_call_share <= 1.0,
                "daemon.resync_call_share",
                "must be more than 0 and at most 1 (a share of reconcile.calls_per_second)".into(),
            ),
        ]
    }

    /// The notification outbox's claim: positive, and a small part of the age limit, so a claim left
    /// by a killed replica never eats the time an undelivered result has to be retried.
    fn notify_rules(&self) -> [Rule; 1] {
        let n = &self.notify;
        [(
            n.claim_secs >= 1 && n.claim_secs.saturating_mul(CLAIM_SHARE_OF_MAX_AGE) <= n.max_age_secs,
            "notify.claim_secs",
            format!("must be at least 1 and at most a {CLAIM_SHARE_OF_MAX_AGE}th of max_age_secs"),
        )]
    }

    /// The metrics buffer and the AWS SDK's retries.
    fn output_rules(&self) -> [Rule; 3] {
        let a = &self.aws;
        [
            (
                self.metrics.buffer_capacity >= 1 && self.metrics.flush_interval_secs >= 1,
                "metrics.buffer_capacity",
                "buffer_capacity and flush_interval_secs must be at least 1".into(),
            ),
            (
                a.max_attempts >= 1,
                "aws.max_attempts",
                "must be at least 1".into(),
            ),
            (
                a.attempt_timeout_secs >= 1 && a.attempt_timeout_secs <= a.operation_timeout_secs,
                "aws.attempt_timeout_secs",
                "must be at least 1 and at most operation_timeout_secs".into(),
            ),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_load() {
        let s = Settings::load_with_env(None, env(&[])).expect("defaults are valid");
        assert_eq!(s.log.format, LogFormat::Auto);
        assert_eq!(s.personalize.import_role_arn, "");
    }

    #[test]
    fn environment_overrides_defaults() {
        let s = Settings::load_with_env(
            None,
            env(&[
                (
                    "PERSONALIZE_OPS__PERSONALIZE__IMPORT_ROLE_ARN",
                    "arn:aws:iam::123456789012:role/r",
                ),
                ("PERSONALIZE_OPS__LOG__FORMAT", "json"),
                ("UNRELATED", "x"),
            ]),
        )
        .expect("valid");
        assert_eq!(s.personalize.import_role_arn, "arn:aws:iam::123456789012:role/r");
        assert_eq!(s.log.format, LogFormat::Json);
    }

    #[test]
    fn file_overrides_defaults_and_env_overrides_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.toml");
        std::fs::write(&path, "[log]\nlevel = \"debug\"\nformat = \"human\"\n").expect("write");
        let s = Settings::load_with_env(Some(&path), env(&[("PERSONALIZE_OPS__LOG__LEVEL", "warn")]))
            .expect("valid");
        assert_eq!(s.log.format, LogFormat::Human);
        assert_eq!(s.log.level, "warn");
    }

    #[test]
    fn unknown_keys_are_rejected_from_file_and_env() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.toml");
        std::fs::write(&path, "[log]\nlevle = \"debug\"\n").expect("write");
        let err = Settings::load_with_env(Some(&path), env(&[])).expect_err("unknown key");
        assert!(err.to_string().contains("levle"), "{err}");

        let err = Settings::load_with_env(None, env(&[("PERSONALIZE_OPS__PERSONALIZE__ROLE", "x")]))
            .expect_err("unknown env key");
        assert!(err.to_string().contains("role"), "{err}");
    }

    #[test]
    fn missing_file_is_an_error() {
        let err =
            Settings::load_with_env(Some(Path::new("/nonexistent/s.toml")), env(&[])).expect_err("missing");
        assert!(matches!(err, SettingsError::MissingFile { .. }));
    }

    #[test]
    fn kms_settings_go_together() {
        let err = Settings::load_with_env(
            None,
            env(&[(
                "PERSONALIZE_OPS__PERSONALIZE__KMS_KEY_ARN",
                "arn:aws:kms:us-east-1:123456789012:key/k",
            )]),
        )
        .expect_err("half of kms");
        assert!(err.to_string().contains("kms_role_arn"), "{err}");
    }

    #[test]
    fn daemon_defaults_are_documented_values() {
        let s = Settings::load_with_env(None, env(&[])).expect("defaults are valid");
        assert_eq!(s.daemon.resync_interval_secs, 600);
        assert_eq!(s.daemon.resync_call_share, 0.25);
        assert_eq!(
            s.daemon.max_clock_skew(),
            crate::store::DEFAULT_MAX_CLOCK_SKEW,
            "the stores' default is the setting's"
        );
        assert_eq!(
            s.daemon.health_stalled_periods,
            crate::health::DEFAULT_STALLED_PERIODS
        );
        assert_eq!(s.daemon.max_config_bytes, MAX_CONFIG_BYTES_LIMIT);
        assert_eq!(s.daemon.receive_batch_size, 10);
        assert_eq!(s.notify.event_bus, "");
        assert_eq!(s.metrics.buffer_capacity, 10_000);
        assert_eq!(s.aws.max_attempts, 3);
        assert_eq!(
            s.daemon.missing_for_run(),
            vec!["daemon.bucket", "daemon.queue_url", "daemon.table_name"]
        );
    }

    #[test]
    fn daemon_settings_from_env() {
        let s = Settings::load_with_env(
            None,
            env(&[
                ("PERSONALIZE_OPS__DAEMON__BUCKET", "data"),
                ("PERSONALIZE_OPS__DAEMON__QUEUE_URL", "http://q"),
                ("PERSONALIZE_OPS__DAEMON__TABLE_NAME", "state"),
                ("PERSONALIZE_OPS__DAEMON__LEASE_DURATION_SECS", "30"),
                ("PERSONALIZE_OPS__AWS__S3_FORCE_PATH_STYLE", "true"),
            ]),
        )
        .expect("valid");
        assert!(s.daemon.missing_for_run().is_empty());
        assert_eq!(s.daemon.lease_duration(), Duration::from_secs(30));
        assert!(s.aws.s3_force_path_style);
    }

    #[test]
    fn daemon_limits_are_enforced() {
        for (key, value, named) in [
            (
                "PERSONALIZE_OPS__DAEMON__MAX_CONFIG_BYTES",
                "1048576",
                "max_config_bytes",
            ),
            (
                "PERSONALIZE_OPS__DAEMON__RECEIVE_WAIT_SECS",
                "21",
                "receive_wait_secs",
            ),
            (
                "PERSONALIZE_OPS__DAEMON__RECEIVE_BATCH_SIZE",
                "11",
                "receive_batch_size",
            ),
            ("PERSONALIZE_OPS__DAEMON__CONCURRENCY", "0", "concurrency"),
            (
                "PERSONALIZE_OPS__DAEMON__RESYNC_CALL_SHARE",
                "0",
                "resync_call_share",
            ),
            (
                "PERSONALIZE_OPS__DAEMON__RESYNC_CALL_SHARE",
                "1.5",
                "resync_call_share",
            ),
            (
                "PERSONALIZE_OPS__DAEMON__RESYNC_CALL_SHARE",
                "NaN",
                "resync_call_share",
            ),
            (
                "PERSONALIZE_OPS__DAEMON__INTAKE_CONCURRENCY",
                "0",
                "intake_concurrency",
            ),
            (
                "PERSONALIZE_OPS__DAEMON__MESSAGE_DEADLINE_SECS",
                "0",
                "message_deadline_secs",
            ),
            (
                "PERSONALIZE_OPS__DAEMON__MAX_RECEIVE_COUNT",
                "0",
                "max_receive_count",
            ),
            (
                "PERSONALIZE_OPS__DAEMON__ERROR_RETRY_SECS",
                "0",
                "error_retry_secs",
            ),
            (
                "PERSONALIZE_OPS__AWS__ATTEMPT_TIMEOUT_SECS",
                "91",
                "attempt_timeout_secs",
            ),
            (
                "PERSONALIZE_OPS__AWS__ATTEMPT_TIMEOUT_SECS",
                "0",
                "attempt_timeout_secs",
            ),
            (
                "PERSONALIZE_OPS__DAEMON__MAX_CLOCK_SKEW_SECS",
                "30",
                "max_clock_skew_secs",
            ),
            ("PERSONALIZE_OPS__NOTIFY__CLAIM_SECS", "0", "claim_secs"),
            // A tenth of the default max_age_secs (86400) is the most.
            ("PERSONALIZE_OPS__NOTIFY__CLAIM_SECS", "8641", "claim_secs"),
        ] {
            let err = Settings::load_with_env(None, env(&[(key, value)])).expect_err(key);
            assert!(err.to_string().contains(named), "{key}: {err}");
        }
        let err = Settings::load_with_env(None, env(&[("PERSONALIZE_OPS__DAEMON__QUEUE", "x")]))
            .expect_err("unknown daemon key");
        assert!(err.to_string().contains("queue"), "{err}");
    }

    #[test]
    fn reconcile_defaults_and_overrides() {
        let s = Settings::load_with_env(None, env(&[])).expect("defaults are valid");
        assert_eq!(
            s.reconcile.kind("solution_version").timeout(),
            Duration::from_secs(48 * 3600)
        );
        assert_eq!(s.reconcile.kinds.len(), RECONCILE_KINDS.len());
        let s = Settings::load_with_env(
            None,
            env(&[
                ("PERSONALIZE_OPS__RECONCILE__CALLS_PER_SECOND", "50"),
                (
                    "PERSONALIZE_OPS__RECONCILE__KINDS__CAMPAIGN__POLL_MIN_SECS",
                    "0.05",
                ),
            ]),
        )
        .expect("valid");
        assert_eq!(s.reconcile.calls_per_second, 50.0);
        assert_eq!(s.reconcile.kind("campaign").poll_min(), Duration::from_millis(50));
    }

    #[test]
    fn reconcile_limits_are_enforced() {
        for (key, value, named) in [
            (
                "PERSONALIZE_OPS__RECONCILE__CALLS_PER_SECOND",
                "0",
                "calls_per_second",
            ),
            (
                "PERSONALIZE_OPS__RECONCILE__THROTTLE_BACKOFF_MIN_MS",
                "0",
                "throttle_backoff_min_ms",
            ),
            (
                "PERSONALIZE_OPS__RECONCILE__KINDS__FILTER__POLL_MIN_SECS",
                "1000",
                "filter",
            ),
        ] {
            let err = Settings::load_with_env(None, env(&[(key, value)])).expect_err(key);
            assert!(err.to_string().contains(named), "{key}: {err}");
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.toml");
        std::fs::write(
            &path,
            "[reconcile.kinds.widget]\npoll_min_secs = 1.0\npoll_max_secs = 2.0\ntimeout_secs = 3\n",
        )
        .expect("write");
        let err = Settings::load_with_env(Some(&path), env(&[])).expect_err("unknown kind");
        assert!(err.to_string().contains("widget"), "{err}");
    }

    #[test]
    fn bad_enum_value_is_rejected() {
        let err = Settings::load_with_env(None, env(&[("PERSONALIZE_OPS__LOG__FORMAT", "xml")]))
            .expect_err("bad format");
        assert!(
            err.to_string().contains("xml") || err.to_string().contains("format"),
            "{err}"
        );
    }

    #[test]
    fn local_mode_scales_polls_and_fills_roles_but_keeps_what_the_user_set() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("s.toml");
        std::fs::write(
            &file,
            "[personalize]\nimport_role_arn = \"arn:aws:iam::123456789012:role/mine\"\n\
             [reconcile.kinds.solution_version]\npoll_min_secs = 2.0\npoll_max_secs = 600.0\ntimeout_secs = 60\n",
        )
        .expect("write");
        let s = Settings::load_with_env(
            Some(&file),
            env(&[("PERSONALIZE_OPS__RECONCILE__CALLS_PER_SECOND", "3")]),
        )
        .expect("loads");
        assert!(s.is_explicit("reconcile.kinds.solution_version.poll_min_secs"));
        assert!(s.is_explicit("reconcile.calls_per_second"), "{:?}", s.explicit);
        assert!(!s.is_explicit("reconcile.kinds.dataset.poll_min_secs"));

        let local = s.for_builtin_personalize(0.0);
        assert_eq!(
            local.personalize.import_role_arn,
            "arn:aws:iam::123456789012:role/mine"
        );
        assert_eq!(
            local.personalize.batch_inference_role_arn,
            "arn:aws:iam::000000000000:role/personalize-ops-local-batch-inference-role"
        );
        assert!(
            local
                .personalize
                .batch_segment_role_arn
                .starts_with(LOCAL_ROLE_PREFIX)
        );
        // Unset polls shrink to the floor at scale 0; what the file set stays.
        let dataset = local.reconcile.kind("dataset_import_job");
        assert_eq!(
            (dataset.poll_min_secs, dataset.poll_max_secs),
            (LOCAL_MIN_POLL_SECS, LOCAL_MIN_POLL_SECS)
        );
        let version = local.reconcile.kind("solution_version");
        assert_eq!((version.poll_min_secs, version.poll_max_secs), (2.0, 600.0));
        assert_eq!(local.reconcile.calls_per_second, 3.0, "set in the environment");
        assert_eq!(local.daemon.error_retry_secs, 1);
        assert_eq!(
            local.reconcile.throttle_backoff_max_ms, local.reconcile.throttle_backoff_min_ms,
            "at scale 0 a retry waits the minimum"
        );

        // A scale in between shrinks by the factor; the call budget grows by it, capped.
        let defaults = Settings::load_with_env(None, Vec::new()).expect("defaults");
        let scaled = defaults.for_builtin_personalize(0.01);
        let import = scaled.reconcile.kind("dataset_import_job");
        assert!((import.poll_min_secs - 0.3).abs() < 1e-9, "{import:?}");
        assert!((import.poll_max_secs - 3.0).abs() < 1e-9, "{import:?}");
        assert_eq!(scaled.reconcile.calls_per_second, 500.0);
        assert_eq!(
            defaults
                .for_builtin_personalize(0.0001)
                .reconcile
                .calls_per_second,
            LOCAL_MAX_CALLS_PER_SECOND
        );
        // At realistic speed only the roles change.
        let real = defaults.for_builtin_personalize(1.0);
        assert_eq!(real.reconcile, defaults.reconcile);
        assert_eq!(real.daemon, defaults.daemon);
        assert!(real.personalize.import_role_arn.starts_with(LOCAL_ROLE_PREFIX));
    }
}
