//! What a fleet run did over time: Personalize calls by kind, throttles, uploads, convergences and
//! passes in flight per step, and the run's phases, for the footprint benchmark's report.

use std::collections::HashMap;

/// Cumulative Personalize calls at `at` seconds since the uploads started.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sample {
    pub at: f64,
    /// Creates, updates, starts, stops, deletes, tags.
    pub writes: u64,
    /// Describes, listings, gets.
    pub reads: u64,
    pub throttled: u64,
}

/// One pass of one group, from the daemons' debug log: seconds since the uploads started.
#[derive(Debug, Clone)]
pub struct Pass {
    pub group: String,
    pub owner: String,
    pub start: f64,
    pub end: f64,
}

/// The cumulative sample at or just before `t` (the first one when none is).
fn at(samples: &[Sample], t: f64) -> Sample {
    samples
        .iter()
        .take_while(|s| s.at <= t)
        .last()
        .or(samples.first())
        .copied()
        .unwrap_or_default()
}

/// How many of `times` fall in `[from, to)`.
fn count_in(times: &[f64], from: f64, to: f64) -> usize {
    times.iter().filter(|t| **t >= from && **t < to).count()
}

/// Mean passes in flight over `[from, to)`: the passes' time inside it divided by its length.
fn in_flight(passes: &[Pass], from: f64, to: f64) -> f64 {
    let busy: f64 = passes
        .iter()
        .map(|p| (p.end.min(to) - p.start.max(from)).max(0.0))
        .sum();
    busy / (to - from).max(1e-9)
}

/// One line per `step` seconds up to `total`: calls by kind and per second, throttles, groups
/// uploaded and converged in the step (converged so far), passes in flight when known.
pub fn table(
    step: f64,
    total: f64,
    samples: &[Sample],
    uploaded: &[f64],
    converged: &[f64],
    passes: &[Pass],
) -> Vec<String> {
    let mut lines = vec![format!(
        "{:>11} {:>6} {:>6} {:>7} {:>5} {:>5} {:>5} {:>6}{}",
        "seconds",
        "writes",
        "reads",
        "calls/s",
        "thr",
        "up",
        "conv",
        "total",
        if passes.is_empty() { "" } else { "  passes" }
    )];
    let mut from = 0.0;
    while from < total {
        let to = (from + step).min(total);
        let (a, b) = (at(samples, from), at(samples, to));
        let calls = (b.writes + b.reads) - (a.writes + a.reads);
        let mut line = format!(
            "{:>5.0}-{:<5.0} {:>6} {:>6} {:>7.1} {:>5} {:>5} {:>5} {:>6}",
            from,
            to,
            b.writes - a.writes,
            b.reads - a.reads,
            calls as f64 / (to - from).max(1e-9),
            b.throttled - a.throttled,
            count_in(uploaded, from, to),
            count_in(converged, from, to),
            count_in(converged, 0.0, to)
        );
        if !passes.is_empty() {
            line.push_str(&format!("  {:>6.1}", in_flight(passes, from, to)));
        }
        lines.push(line);
        from = to;
    }
    lines
}

/// A stretch of the run and what the quota could have done in it.
#[derive(Debug, Clone)]
pub struct Phase {
    pub name: &'static str,
    pub from: f64,
    pub to: f64,
    pub calls: u64,
    pub throttled: u64,
}

impl Phase {
    /// Seconds beyond what its calls need at `tps` (the time the quota was not used).
    pub fn lost(&self, tps: f64) -> f64 {
        (self.to - self.from) - self.calls as f64 / tps
    }
}

/// The run split where the phases change: `ramp` until the last upload, `steady` while at least
/// `workers` groups are unconverged, `tail` after (fewer groups left than the replicas' workers:
/// their polls wait for Personalize, not for the quota).
pub fn phases(
    total: f64,
    samples: &[Sample],
    uploaded: &[f64],
    converged: &[f64],
    groups: usize,
    workers: usize,
) -> Vec<Phase> {
    let last_upload = uploaded.iter().copied().fold(0.0, f64::max).min(total);
    let mut sorted = converged.to_vec();
    sorted.sort_by(f64::total_cmp);
    // The instant fewer than `workers` groups are left unconverged.
    let tail_from = groups
        .checked_sub(workers)
        .and_then(|i| sorted.get(i).copied())
        .unwrap_or(total)
        .clamp(last_upload, total);
    let phase = |name, from: f64, to: f64| {
        let (a, b) = (at(samples, from), at(samples, to));
        Phase {
            name,
            from,
            to,
            calls: (b.writes + b.reads) - (a.writes + a.reads),
            throttled: b.throttled - a.throttled,
        }
    };
    vec![
        phase("ramp (uploads arriving)", 0.0, last_upload),
        phase("steady", last_upload, tail_from),
        phase("tail (< workers left)", tail_from, total),
    ]
}

/// Passes from the daemons' JSON log lines (`pass done` with `elapsed_ms`, the `group` span's
/// `dataset_group` and `owner`), in seconds since `origin`; lines that are not such are skipped.
pub fn passes_from_log(text: &str, origin: chrono::DateTime<chrono::Utc>) -> Vec<Pass> {
    text.lines()
        .filter(|l| l.contains("\"pass done\""))
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| {
            let ts = chrono::DateTime::parse_from_rfc3339(v.get("timestamp")?.as_str()?).ok()?;
            let end = (ts.with_timezone(&chrono::Utc) - origin).num_microseconds()? as f64 / 1e6;
            let elapsed = v.get("elapsed_ms")?.as_f64()? / 1000.0;
            let span = v.get("span")?;
            Some(Pass {
                group: span.get("dataset_group")?.as_str()?.to_string(),
                owner: span.get("owner")?.as_str()?.to_string(),
                start: end - elapsed,
                end,
            })
        })
        .collect()
}

/// The group of a JSON log line and its time in seconds since `origin`, when its message is
/// `message` (the group from the `group` span).
fn group_line(line: &str, message: &str, origin: chrono::DateTime<chrono::Utc>) -> Option<(String, f64)> {
    let v = serde_json::from_str::<serde_json::Value>(line).ok()?;
    if v.get("message")?.as_str()? != message {
        return None;
    }
    let ts = chrono::DateTime::parse_from_rfc3339(v.get("timestamp")?.as_str()?).ok()?;
    let at = (ts.with_timezone(&chrono::Utc) - origin).num_microseconds()? as f64 / 1e6;
    let group = v.get("span")?.get("dataset_group")?.as_str()?.to_string();
    Some((group, at))
}

/// The daemons' logs read as they grow: when each group converged, by the `converged` line its turn
/// logs once the convergence is recorded and announced (personalize_ops::daemon::turn at info),
/// without asking the state table.
pub struct LogTail {
    files: Vec<(std::path::PathBuf, u64, Vec<u8>)>,
}

impl LogTail {
    pub fn new(paths: &[std::path::PathBuf]) -> Self {
        Self {
            files: paths.iter().map(|p| (p.clone(), 0, Vec::new())).collect(),
        }
    }

    /// The `converged` lines written since the last call: (group, seconds since `origin`). A line
    /// still being written is kept for the next call.
    pub fn converged(&mut self, origin: chrono::DateTime<chrono::Utc>) -> Vec<(String, f64)> {
        use std::io::{Read, Seek, SeekFrom};
        let mut out = Vec::new();
        for (path, offset, partial) in &mut self.files {
            let Ok(mut file) = std::fs::File::open(&*path) else {
                continue;
            };
            if file.seek(SeekFrom::Start(*offset)).is_err() {
                continue;
            }
            let Ok(read) = file.read_to_end(partial) else {
                continue;
            };
            *offset += read as u64;
            let Some(end) = partial.iter().rposition(|b| *b == b'\n') else {
                continue;
            };
            let complete: Vec<u8> = partial.drain(..=end).collect();
            out.extend(
                String::from_utf8_lossy(&complete)
                    .lines()
                    .filter(|l| l.contains("\"converged\""))
                    .filter_map(|l| group_line(l, "converged", origin)),
            );
        }
        out
    }
}

/// Groups two owners worked on at overlapping times, with one such pair of passes each.
pub fn overlaps(passes: &[Pass]) -> Vec<(Pass, Pass)> {
    let mut by_group: HashMap<&str, Vec<&Pass>> = HashMap::new();
    for p in passes {
        by_group.entry(&p.group).or_default().push(p);
    }
    let mut found = Vec::new();
    for list in by_group.values_mut() {
        list.sort_by(|a, b| a.start.total_cmp(&b.start));
        // The pass reaching furthest so far: any later start before its end overlaps it.
        let mut reach: Option<&Pass> = None;
        for p in list.iter() {
            if let Some(r) = reach
                && p.start < r.end
                && p.owner != r.owner
            {
                found.push((r.clone(), (*p).clone()));
                break;
            }
            if reach.is_none_or(|r| p.end > r.end) {
                reach = Some(p);
            }
        }
    }
    found
}
