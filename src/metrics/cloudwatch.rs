//! CloudWatch `PutMetricData` behind a bounded buffer that a background task flushes.
//!
//! `record()` only tries to put the datum in a bounded channel; when the channel is full the datum is
//! dropped and counted. The flusher drains the channel into a bounded batch, aggregates counters, and
//! sends at most [`MAX_DATUMS_PER_CALL`] data points per call on every tick and once more on shutdown.
//! A slow CloudWatch only fills the buffer; callers never wait for it.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aws_sdk_cloudwatch::Client;
use aws_sdk_cloudwatch::primitives::DateTime as AwsDateTime;
use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{Datum, MetricsSink, Unit};
use crate::aws::error_text;

/// Data points per `PutMetricData` call: the API allows 1000 since 2023, 20 is safe everywhere (moto,
/// older regions, partitions).
pub const MAX_DATUMS_PER_CALL: usize = 20;

/// A single call may not take longer than this; a hung CloudWatch costs one batch, not the flusher.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// The recording side: cheap to clone, never blocks.
#[derive(Debug, Clone)]
pub struct CloudWatchSink {
    tx: mpsc::Sender<Datum>,
    /// Data points lost: buffer full, or their `PutMetricData` call failed.
    dropped: Arc<AtomicU64>,
}

/// The background task that sends the buffer; stop it with [`CloudWatchFlusher::shutdown`].
#[derive(Debug)]
pub struct CloudWatchFlusher {
    stop: CancellationToken,
    handle: JoinHandle<()>,
}

impl CloudWatchSink {
    /// Starts the flusher on the current tokio runtime. `capacity` bounds both the channel and the
    /// batch being assembled, so at most about `2 × capacity` data points are held in memory.
    pub fn spawn(
        client: Client,
        namespace: impl Into<String>,
        capacity: usize,
        flush_interval: Duration,
    ) -> (Self, CloudWatchFlusher) {
        let capacity = capacity.max(1);
        let (tx, rx) = mpsc::channel(capacity);
        let dropped = Arc::new(AtomicU64::new(0));
        let stop = CancellationToken::new();
        let flusher = Flusher {
            client,
            namespace: namespace.into(),
            capacity,
            dropped: Arc::clone(&dropped),
            reported_dropped: 0,
        };
        let handle = tokio::spawn(flusher.run(rx, flush_interval, stop.clone()));
        (Self { tx, dropped }, CloudWatchFlusher { stop, handle })
    }

    /// Data points lost so far (buffer full or failed calls).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

impl MetricsSink for CloudWatchSink {
    fn record(&self, datum: Datum) {
        if self.tx.try_send(datum).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl CloudWatchFlusher {
    /// Flushes what is buffered and stops, waiting at most `deadline` (the rest of the shutdown budget);
    /// past it the task is abandoned and its data points are lost.
    pub async fn shutdown(self, deadline: Duration) {
        self.stop.cancel();
        let abort = self.handle.abort_handle();
        if tokio::time::timeout(deadline, self.handle).await.is_err() {
            abort.abort();
            tracing::warn!(?deadline, "metrics flush did not finish before the deadline");
        }
    }
}

struct Flusher {
    client: Client,
    namespace: String,
    capacity: usize,
    dropped: Arc<AtomicU64>,
    /// The drop count last logged, so each log line reports the new drops.
    reported_dropped: u64,
}

impl Flusher {
    async fn run(mut self, mut rx: mpsc::Receiver<Datum>, every: Duration, stop: CancellationToken) {
        let mut pending: Vec<Datum> = Vec::new();
        let mut ticker = tokio::time::interval(every);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await;
        loop {
            tokio::select! {
                biased;
                () = stop.cancelled() => break,
                _ = ticker.tick() => self.flush(&mut pending).await,
                datum = rx.recv(), if pending.len() < self.capacity => match datum {
                    Some(d) => pending.push(d),
                    None => break,
                },
            }
        }
        rx.close();
        while let Ok(d) = rx.try_recv() {
            if pending.len() < self.capacity {
                pending.push(d);
            } else {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.flush(&mut pending).await;
    }

    async fn flush(&mut self, pending: &mut Vec<Datum>) {
        let data = aggregate(std::mem::take(pending));
        for chunk in data.chunks(MAX_DATUMS_PER_CALL) {
            let request = self
                .client
                .put_metric_data()
                .namespace(&self.namespace)
                .set_metric_data(Some(chunk.iter().map(to_cloudwatch).collect()));
            let lost = match tokio::time::timeout(CALL_TIMEOUT, request.send()).await {
                Ok(Ok(_)) => None,
                Ok(Err(e)) => Some(error_text(&e)),
                Err(_) => Some(format!("no answer within {CALL_TIMEOUT:?}")),
            };
            if let Some(cause) = lost {
                self.dropped.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                tracing::warn!(namespace = %self.namespace, data_points = chunk.len(), %cause, "PutMetricData failed");
            }
        }
        let dropped = self.dropped.load(Ordering::Relaxed);
        if dropped > self.reported_dropped {
            tracing::warn!(
                namespace = %self.namespace,
                dropped_since_last_report = dropped - self.reported_dropped,
                dropped_total = dropped,
                "metrics dropped (buffer full or CloudWatch failing)"
            );
            self.reported_dropped = dropped;
        }
    }
}

/// Sums counters with the same name and dimensions (one datum per counter per flush, so a flush of
/// thousands of events is one call); other data points are kept as they are.
fn aggregate(data: Vec<Datum>) -> Vec<Datum> {
    let mut out: Vec<Datum> = Vec::with_capacity(data.len());
    let mut index: HashMap<(String, Vec<(String, String)>), usize> = HashMap::new();
    for d in data {
        if d.unit != Unit::Count {
            out.push(d);
            continue;
        }
        let key = (d.name.clone(), d.dimensions.clone());
        match index.get(&key) {
            Some(&i) => out[i].value += d.value,
            None => {
                index.insert(key, out.len());
                out.push(d);
            }
        }
    }
    out
}

fn to_cloudwatch(d: &Datum) -> MetricDatum {
    MetricDatum::builder()
        .metric_name(&d.name)
        .value(d.value)
        .unit(match d.unit {
            Unit::Count => StandardUnit::Count,
            Unit::None => StandardUnit::None,
        })
        .timestamp(AwsDateTime::from_millis(d.timestamp.timestamp_millis()))
        .set_dimensions(Some(
            d.dimensions
                .iter()
                .map(|(name, value)| Dimension::builder().name(name).value(value).build())
                .collect(),
        ))
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Counter;

    #[test]
    fn counters_are_summed_and_gauges_kept() {
        let mut gauge = Counter::JobSuccess.datum();
        gauge.unit = Unit::None;
        gauge.name = "coverage".into();
        let data = vec![
            Counter::ConfigurationsProcessed.datum(),
            gauge.clone(),
            Counter::ConfigurationsProcessed.datum(),
            Counter::JobFailure.datum(),
            gauge,
        ];
        let out = aggregate(data);
        let summary: Vec<(&str, f64)> = out.iter().map(|d| (d.name.as_str(), d.value)).collect();
        assert_eq!(
            summary,
            [
                ("ConfigurationsProcessed", 2.0),
                ("coverage", 1.0),
                ("JobFailure", 1.0),
                ("coverage", 1.0)
            ]
        );
    }

    #[test]
    fn datum_converts_with_unit_dimensions_and_time() {
        let d = Counter::JobsCreated.datum();
        let m = to_cloudwatch(&d);
        assert_eq!(m.metric_name(), Some("JobsCreated"));
        assert_eq!(m.unit(), Some(&StandardUnit::Count));
        assert_eq!(m.dimensions()[0].value(), Some("Scheduler"));
        assert_eq!(
            m.timestamp().map(|t| t.to_millis().expect("in range")),
            Some(d.timestamp.timestamp_millis())
        );
    }
}
