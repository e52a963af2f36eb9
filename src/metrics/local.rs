//! Local metric sinks: JSON lines to a file or to the log, and an in-memory sink for tests.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

use super::{Datum, MetricsSink};
use crate::locks::LockRecovering;

/// Appends one JSON object per data point to a file (`local` mode).
#[derive(Debug)]
pub struct JsonLinesSink {
    file: Mutex<File>,
}

impl JsonLinesSink {
    /// Opens `path` for appending, creating it if needed.
    ///
    /// # Errors
    /// The I/O error of opening the file.
    pub fn open(path: &Path) -> std::io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Self {
            file: Mutex::new(file),
        })
    }
}

impl MetricsSink for JsonLinesSink {
    fn record(&self, datum: Datum) {
        let Ok(mut line) = serde_json::to_string(&datum) else {
            return;
        };
        line.push('\n');
        let mut file = self.file.lock_recovering();
        // One write per line keeps lines whole even with several writers in append mode.
        if let Err(e) = file.write_all(line.as_bytes()) {
            tracing::warn!(metric = %datum.name, error = %e, "cannot write a metric line");
        }
    }
}

/// Writes each data point as a log event (target `metrics`, field `metric` holding the JSON).
#[derive(Debug, Clone, Copy, Default)]
pub struct LogSink;

impl MetricsSink for LogSink {
    fn record(&self, datum: Datum) {
        if let Ok(json) = serde_json::to_string(&datum) {
            tracing::info!(target: "metrics", metric = %json, "metric");
        }
    }
}

/// Keeps every data point in memory (tests).
#[derive(Debug, Default)]
pub struct MemorySink {
    data: Mutex<Vec<Datum>>,
}

impl MemorySink {
    pub fn new() -> Self {
        Self::default()
    }

    /// Everything recorded so far.
    pub fn data(&self) -> Vec<Datum> {
        self.data.lock_recovering().clone()
    }

    /// The sum of the values recorded under `name`.
    pub fn total(&self, name: &str) -> f64 {
        self.data
            .lock_recovering()
            .iter()
            .filter(|d| d.name == name)
            .map(|d| d.value)
            .sum()
    }
}

impl MetricsSink for MemorySink {
    fn record(&self, datum: Datum) {
        self.data.lock_recovering().push(datum);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Counter;

    #[test]
    fn json_lines_append_one_object_per_datum() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("metrics.jsonl");
        let sink = JsonLinesSink::open(&path).expect("open");
        sink.count(Counter::ConfigurationsProcessed);
        sink.count(Counter::JobFailure);
        drop(sink);
        let again = JsonLinesSink::open(&path).expect("reopen appends");
        again.count(Counter::JobSuccess);
        let text = std::fs::read_to_string(&path).expect("read");
        let names: Vec<String> = text
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).expect("each line is JSON");
                v["name"].as_str().expect("name").to_string()
            })
            .collect();
        assert_eq!(names, ["ConfigurationsProcessed", "JobFailure", "JobSuccess"]);
        assert!(
            text.contains(r#""dimensions":[["service","Workflow"]]"#),
            "{text}"
        );
    }

    #[test]
    fn json_lines_report_unopenable_paths() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(JsonLinesSink::open(&dir.path().join("missing/metrics.jsonl")).is_err());
    }

    #[test]
    fn memory_sink_sums_by_name() {
        let sink = MemorySink::new();
        sink.count(Counter::EventsIgnored);
        sink.count(Counter::EventsIgnored);
        LogSink.count(Counter::EventsIgnored);
        assert_eq!(sink.total("EventsIgnored"), 2.0);
        assert_eq!(sink.total("JobSuccess"), 0.0);
    }
}
