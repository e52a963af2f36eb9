//! Converge-time overhead and Personalize calls per resource, against the built-in Personalize.
//!
//! Runs `apply` on the reference sample (`tests/fixtures/sample_config.json` with the fixture data)
//! with realistic durations shrunk by `--time-scale` (default 0.001: a 2 h training takes 7.2 s).
//! Poll intervals are shrunk by the same factor and the call rate raised by it, so the run is the
//! real one played faster. Prints the converge time, the critical path of the emulated durations
//! along the dependency order, their ratio, and the calls made per converged resource.
//!
//! `cargo run --release --example converge_bench -- [--time-scale 0.001] [--calls-per-second 5]`

// Only the argument reader: the fleet configuration is the fleet benchmarks'.
#[allow(dead_code)]
#[path = "support/fleet.rs"]
mod fleet;

use fleet::arg;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use aws_sdk_personalize::config::retry::RetryConfig;
use aws_sdk_personalize::config::{BehaviorVersion, Credentials, Region};
use chrono::{SubsecRound, Utc};
use personalize_ops::emulator::clock::Durations;
use personalize_ops::emulator::{self, EmulatorConfig};
use personalize_ops::objects::{DirStore, ObjectUrl};
use personalize_ops::plan::Kind;
use personalize_ops::reconcile::{PassOutcome, RateLimiter, Reconciler};
use personalize_ops::settings::Settings;
use tokio_util::sync::CancellationToken;

/// What each kind waits for, as the planner orders the work (README "plan and apply").
fn dependencies(kind: Kind) -> &'static [Kind] {
    use Kind::*;
    match kind {
        DatasetGroup | Schema => &[],
        Dataset => &[DatasetGroup, Schema],
        DatasetImportJob => &[Dataset],
        EventTracker | Solution => &[DatasetGroup, Dataset],
        Filter | Recommender => &[DatasetGroup, Dataset, DatasetImportJob],
        SolutionVersion => &[Solution, DatasetImportJob],
        Campaign | BatchInferenceJob | BatchSegmentJob => &[SolutionVersion],
    }
}

/// The longest chain of emulated creation times over the kinds present (seconds, scaled).
fn critical_path(present: &[Kind], seconds: &BTreeMap<String, f64>, scale: f64) -> f64 {
    let mut finish: BTreeMap<Kind, f64> = BTreeMap::new();
    // Kind::ALL is in the order of work, so dependencies are computed first.
    for kind in Kind::ALL {
        if !present.contains(&kind) {
            continue;
        }
        let start = dependencies(kind)
            .iter()
            .filter_map(|d| finish.get(d))
            .fold(0.0_f64, |a, b| a.max(*b));
        let own = seconds.get(kind.as_str()).copied().unwrap_or(0.0) * scale;
        finish.insert(kind, start + own);
    }
    finish.values().fold(0.0, |a, b| a.max(*b))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let scale = arg("--time-scale", 0.001);
    let real_rate = arg("--calls-per-second", 5.0);
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let dir = tempfile::tempdir()?;
    let text = std::fs::read_to_string(fixtures.join("sample_config.json"))?;
    let spec = personalize_ops::spec::load(&text)
        .spec
        .ok_or_else(|| anyhow::anyhow!("invalid sample"))?;
    let group = spec.dataset_group.name.clone();
    let folder = dir.path().join("train").join(&group);
    std::fs::create_dir_all(&folder)?;
    std::fs::write(folder.join("config.json"), &text)?;
    for f in ["interactions.csv", "users.csv"] {
        std::fs::copy(fixtures.join("data").join(f), folder.join(f))?;
    }
    for s in &spec.solutions {
        if !s.batch_inference_jobs.is_empty() || !s.batch_segment_jobs.is_empty() {
            let b = dir.path().join("batch").join(&group).join(&s.name);
            std::fs::create_dir_all(&b)?;
            std::fs::write(
                b.join("job_config.json"),
                "{\"userId\": \"1\"}\n{\"itemId\": \"98\"}\n",
            )?;
        }
    }

    let mut config = EmulatorConfig::new(Arc::new(DirStore::new(dir.path(), "local")));
    config.time_scale = scale;
    let emu = emulator::start(config).await?;

    let mut settings = Settings::load_with_env(None, Vec::new())?;
    settings.personalize.import_role_arn = "arn:aws:iam::000000000000:role/import".into();
    settings.personalize.batch_inference_role_arn = "arn:aws:iam::000000000000:role/batch".into();
    settings.personalize.batch_segment_role_arn = "arn:aws:iam::000000000000:role/segment".into();
    // The real run, played faster: polls shrink and the call budget grows by the same factor.
    settings.reconcile.calls_per_second = real_rate / scale.max(1e-9);
    for k in settings.reconcile.kinds.values_mut() {
        k.poll_min_secs *= scale;
        k.poll_max_secs *= scale;
        k.expected_secs *= scale;
    }
    let client = aws_sdk_personalize::Client::from_conf(
        aws_sdk_personalize::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .endpoint_url(emu.url())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("AKIDBENCH", "secret", None, None, "bench"))
            .retry_config(RetryConfig::disabled())
            .build(),
    );
    let reconciler = Reconciler::new(
        client,
        Arc::new(DirStore::new(dir.path(), "local")),
        &settings.reconcile,
        &settings.personalize,
        Arc::new(RateLimiter::new(settings.reconcile.calls_per_second)),
    );
    let url = ObjectUrl::new("local", format!("train/{group}/config.json"));
    let started = Instant::now();
    let mut events = Vec::new();
    let outcome = reconciler
        .apply(
            &spec,
            &url,
            Utc::now().trunc_subsecs(0),
            &mut events,
            &CancellationToken::new(),
        )
        .await?;
    let took = started.elapsed().as_secs_f64();
    let PassOutcome::Converged { resources } = outcome else {
        anyhow::bail!("did not converge: {outcome:?}");
    };
    let present: Vec<Kind> = resources
        .iter()
        .filter(|r| r.status == "ACTIVE")
        .map(|r| r.target.kind)
        .collect();
    let durations = serde_json::to_value(Durations::default())?;
    let seconds: BTreeMap<String, f64> = serde_json::from_value(durations["create_secs"].clone())?;
    let path = critical_path(&present, &seconds, scale);
    let calls = reconciler.calls();
    let counts = emu.calls();
    let converged = present.len();
    println!("reference sample, time scale {scale}, {real_rate} calls/s at full scale");
    println!("converged resources:     {converged}");
    println!("converge time:           {took:.2} s");
    println!("critical path (emulated): {path:.2} s");
    println!("ratio:                   {:.2}", took / path);
    println!(
        "Personalize calls:       {calls} ({:.1} per resource)",
        calls as f64 / converged as f64
    );
    let creates: u64 = counts
        .calls
        .iter()
        .filter(|(op, _)| op.starts_with("Create") || op.starts_with("Update"))
        .map(|(_, n)| n)
        .sum();
    println!("create/update calls:     {creates}");
    let mut by_op: Vec<_> = counts.calls.iter().collect();
    by_op.sort_by(|a, b| b.1.cmp(a.1));
    let top: Vec<String> = by_op.iter().take(6).map(|(op, n)| format!("{op} {n}")).collect();
    println!("most called:             {}", top.join(", "));
    emu.shutdown().await?;
    Ok(())
}
