//! Training time and peak memory per recipe family, and GetRecommendations latency, of the built-in
//! Personalize's models on the synthetic generator's data.
//!
//! `cargo run --release --example model_bench -- [--sizes 100000,1000000,5000000] [--queries 20000]`
//!
//! Each measurement runs in a child process (this binary with `--child …`) so that its peak RSS
//! (`VmHWM`) is its own. A training child generates the data (users = interactions / 20, items =
//! interactions / 100, seed 42), builds the engine's tables, then trains once (metrics included, as
//! CreateSolutionVersion does); it reports the training wall time, the RSS before training and the
//! peak. The serving child trains at the middle size and times `model::recommend` (the engine call
//! behind GetRecommendations, without HTTP) for seeded random users or items on one thread.
//! Prints a Markdown table for the README.

use std::process::Command;
use std::time::Instant;

use personalize_ops::emulator::engine::model::{
    self, Model, Query, TrainOptions, TrainingData, TrainingMode,
};
use personalize_ops::emulator::engine::synthetic::{self, Params, SyntheticData};

/// (recipe, whether it trains with the Items dataset).
const RECIPES: [(&str, bool); 6] = [
    ("aws-popularity-count", false),
    ("aws-trending-now", false),
    ("aws-sims", false),
    ("aws-similar-items", true),
    ("aws-user-personalization", true),
    ("aws-item-affinity", true),
];

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

/// `VmRSS` or `VmHWM` of this process in MiB.
fn memory_mib(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn data(interactions: usize) -> SyntheticData {
    let params = Params::new(
        (interactions / 20).max(30),
        (interactions / 100).max(20),
        interactions,
        42,
    );
    synthetic::generate(&params).unwrap_or_else(|e| panic!("generator: {e}"))
}

fn train(d: &SyntheticData, recipe: &str, with_items: bool) -> Model {
    let interactions = d.interactions_table();
    let items = with_items.then(|| d.items_table());
    model::train(
        &TrainingData {
            interactions: &interactions,
            items: items.as_ref(),
            users: None,
        },
        &TrainOptions {
            recipe: recipe.to_string(),
            training_mode: TrainingMode::Full,
            event_type: None,
            event_value_threshold: None,
            previous: None,
        },
    )
    .unwrap_or_else(|e| panic!("{recipe}: {e}"))
}

/// Child: train one recipe at one size; prints `seconds rss_before_mib peak_mib`.
fn child_train(size: usize, recipe: &str, with_items: bool) {
    let d = data(size);
    let interactions = d.interactions_table();
    let items = with_items.then(|| d.items_table());
    drop(d);
    let before = memory_mib("VmRSS");
    let start = Instant::now();
    let trained = model::train(
        &TrainingData {
            interactions: &interactions,
            items: items.as_ref(),
            users: None,
        },
        &TrainOptions {
            recipe: recipe.to_string(),
            training_mode: TrainingMode::Full,
            event_type: None,
            event_value_threshold: None,
            previous: None,
        },
    )
    .unwrap_or_else(|e| panic!("{recipe}: {e}"));
    let seconds = start.elapsed().as_secs_f64();
    let ndcg = trained
        .metrics()
        .get("normalized_discounted_cumulative_gain_at_10")
        .copied()
        .unwrap_or(f64::NAN);
    println!("{seconds} {before} {} {ndcg}", memory_mib("VmHWM"));
}

/// SplitMix64, for seeded query picks.
fn next(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Child: latency of `queries` recommend calls per served recipe; prints one line per recipe:
/// `recipe p50_ms p99_ms per_second`.
fn child_serve(size: usize, queries: usize) {
    let d = data(size);
    let users = d.user_cluster.len() as u64;
    let items = d.item_category.len() as u64;
    for (recipe, with_items) in [
        ("aws-user-personalization", true),
        ("aws-similar-items", true),
        ("aws-popularity-count", false),
    ] {
        let trained = train(&d, recipe, with_items);
        let mut state = 7u64;
        let ids: Vec<String> = (0..queries)
            .map(|_| {
                if recipe == "aws-similar-items" {
                    format!("i{}", next(&mut state) % items)
                } else {
                    format!("u{}", next(&mut state) % users)
                }
            })
            .collect();
        let mut latencies: Vec<f64> = Vec::with_capacity(queries);
        let all = Instant::now();
        for id in &ids {
            let (user_id, item_id) = if recipe == "aws-similar-items" {
                (None, Some(id.as_str()))
            } else {
                (Some(id.as_str()), None)
            };
            let start = Instant::now();
            let answer = model::recommend(
                &trained,
                &Query {
                    user_id,
                    item_id,
                    num_results: 25,
                    filter: None,
                },
            );
            latencies.push(start.elapsed().as_secs_f64() * 1000.0);
            assert!(answer.is_ok_and(|a| a.len() == 25), "{recipe} answers 25 items");
        }
        let per_second = queries as f64 / all.elapsed().as_secs_f64();
        latencies.sort_by(f64::total_cmp);
        let pick = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
        println!("{recipe} {} {} {per_second}", pick(0.5), pick(0.99));
    }
}

fn run_child(args: &[String]) -> String {
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("current exe: {e}"));
    let out = Command::new(exe)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("child: {e}"));
    assert!(
        out.status.success(),
        "child {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .next()
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0 / 1024.0);
    format!("{cpu}, {cores} cores, {memory:.0} GiB RAM")
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--child") {
        let size: usize = arg("--size").and_then(|s| s.parse().ok()).unwrap_or(100_000);
        match args.get(1).map(String::as_str) {
            Some("train") => {
                let recipe = arg("--recipe").unwrap_or_else(|| "aws-popularity-count".into());
                child_train(size, &recipe, arg("--items").as_deref() == Some("yes"));
            }
            Some("serve") => {
                let queries = arg("--queries").and_then(|s| s.parse().ok()).unwrap_or(20_000);
                child_serve(size, queries);
            }
            other => panic!("unknown child mode {other:?}"),
        }
        return;
    }
    let sizes: Vec<usize> = arg("--sizes")
        .unwrap_or_else(|| "100000,1000000,5000000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let queries = arg("--queries").unwrap_or_else(|| "20000".into());
    println!("Machine: {}", machine());
    println!();
    println!("| interactions | recipe | training s | RSS before MiB | peak RSS MiB | NDCG@10 |");
    println!("|---:|---|---:|---:|---:|---:|");
    for &size in &sizes {
        for (recipe, with_items) in RECIPES {
            let line = run_child(&[
                "--child".into(),
                "train".into(),
                "--size".into(),
                size.to_string(),
                "--recipe".into(),
                recipe.into(),
                "--items".into(),
                if with_items { "yes" } else { "no" }.into(),
            ]);
            let v: Vec<f64> = line.split_whitespace().filter_map(|x| x.parse().ok()).collect();
            let ndcg = if v[3].is_nan() {
                "—".to_string()
            } else {
                format!("{:.3}", v[3])
            };
            println!(
                "| {size} | {recipe}{} | {:.2} | {:.0} | {:.0} | {ndcg} |",
                if with_items { " (+items)" } else { "" },
                v[0],
                v[1],
                v[2]
            );
        }
    }
    let serve_size = sizes.get(sizes.len() / 2).copied().unwrap_or(1_000_000);
    println!();
    println!(
        "GetRecommendations (engine call, 25 results, {queries} queries, one thread, {serve_size} interactions):"
    );
    println!();
    println!("| recipe | p50 ms | p99 ms | queries/s |");
    println!("|---|---:|---:|---:|");
    let out = run_child(&[
        "--child".into(),
        "serve".into(),
        "--size".into(),
        serve_size.to_string(),
        "--queries".into(),
        queries,
    ]);
    for line in out.lines() {
        let parts: Vec<&str> = line.split_whitespace().collect();
        if let [recipe, p50, p99, qps] = parts[..] {
            let f = |s: &str| s.parse::<f64>().unwrap_or(f64::NAN);
            println!("| {recipe} | {:.3} | {:.3} | {:.0} |", f(p50), f(p99), f(qps));
        }
    }
}
