//! What `logs` counts, and how it says whether it is alive: counters and
//! histograms every stage updates without locks, rendered in Prometheus'
//! text format under the names the Wikimedia alerts query
//! (`haproxykafka_valid_messages_total`, `haproxykafka_saturation_errors`),
//! and a heartbeat per stage that `/healthz` and the systemd watchdog read.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use crate::runtime::notify::Heartbeat;

/// The stages of the pipeline, each with a queue in front of it (but the
/// receiver's, which is the kernel's socket buffer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Reads the socket.
    Receiver,
    /// Parses datagrams into JSON.
    Parser,
    /// Hands messages to librdkafka.
    Producer,
    /// librdkafka's own queue (`queue.buffering.max.messages`): what it
    /// does not take goes to the disk buffer.
    KafkaQueue,
    /// The disk buffer, full at `max-size`.
    DiskBuffer,
}

impl Stage {
    const ALL: [Stage; 5] = [
        Stage::Receiver,
        Stage::Parser,
        Stage::Producer,
        Stage::KafkaQueue,
        Stage::DiskBuffer,
    ];

    /// The `channel` label of what is dropped in front of it (`kafka-msg`:
    /// the name the Wikimedia alert uses for the producer hand-off). The
    /// receiver has none: what finds the socket's buffer full is dropped by
    /// the kernel at HAProxy's end, and HAProxy counts it (`DroppedLogs` in
    /// `show info`).
    fn channel(self) -> Option<&'static str> {
        match self {
            Stage::Receiver => None,
            Stage::Parser => Some("parser"),
            Stage::Producer => Some("producer"),
            Stage::KafkaQueue => Some("kafka-msg"),
            Stage::DiskBuffer => Some("disk-buffer"),
        }
    }

    /// What the log and `/healthz` call it when it stalls.
    fn beat_name(self) -> &'static str {
        match self {
            Stage::Receiver => "receiver",
            Stage::Parser => "parser",
            Stage::Producer => "producer",
            Stage::KafkaQueue => "kafka-queue",
            Stage::DiskBuffer => "disk-buffer",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// A histogram with fixed bucket bounds.
#[derive(Debug)]
pub struct Histogram {
    bounds: Vec<f64>,
    counts: Vec<AtomicU64>,
    sum_nanos: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    /// A histogram of `bounds` (seconds, rising).
    pub fn new(bounds: &[f64]) -> Histogram {
        Histogram {
            bounds: bounds.to_vec(),
            counts: bounds.iter().map(|_| AtomicU64::new(0)).collect(),
            sum_nanos: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    /// Counts one observation.
    pub fn observe(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        if let Some(bucket) = self.bounds.iter().position(|bound| seconds <= *bound) {
            self.counts[bucket].fetch_add(1, Ordering::Relaxed);
        }
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0;
        for (bound, count) in self.bounds.iter().zip(&self.counts) {
            cumulative += count.load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        let count = self.count.load(Ordering::Relaxed);
        let sum = self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        let _ = writeln!(
            out,
            "{name}_bucket{{le=\"+Inf\"}} {count}\n{name}_sum {sum}\n{name}_count {count}"
        );
    }
}

/// How long a stage may go without a heartbeat before the pipeline is
/// called wedged (every stage beats at least every 100 ms while it works or
/// waits).
pub const STALL: Duration = Duration::from_secs(5);

/// The gauge that says Kafka is not taking messages now (`check logs` reads it).
pub const DELIVERY_FAILING: &str = "haproxykafka_kafka_delivery_failing";
/// The gauge of the disk buffer's bytes (`check logs` reads it).
pub const BUFFER_BYTES: &str = "haproxykafka_buffer_bytes";

/// Everything `logs` counts.
#[derive(Debug)]
pub struct Metrics {
    /// Set when the daemon stops: stages finish what they hold.
    pub stopping: AtomicBool,
    /// Datagrams read from the socket.
    pub received: AtomicU64,
    /// Datagrams cut at `max-datagram`.
    pub truncated: AtomicU64,
    /// Datagrams that became JSON messages.
    pub parsed: AtomicU64,
    /// Datagrams the mapping refused (bound for the DLQ).
    pub rejected: AtomicU64,
    /// JSON messages Kafka confirmed.
    pub delivered: AtomicU64,
    /// Dead-letter messages Kafka confirmed.
    pub dlq_delivered: AtomicU64,
    /// Messages Kafka failed to take (after librdkafka's retries).
    pub delivery_errors: AtomicU64,
    /// Whether Kafka's latest delivery report was a failure: Kafka is not
    /// taking messages now.
    pub delivery_failing: AtomicBool,
    /// Messages written to the disk buffer.
    pub buffered: AtomicU64,
    /// Messages handed to librdkafka again from the disk buffer.
    pub replayed: AtomicU64,
    /// Bytes in the disk buffer.
    pub buffer_bytes: AtomicU64,
    saturated: [AtomicU64; 5],
    beats: [Heartbeat; 5],
    /// Per-line parse time.
    pub parsing: Histogram,
    /// Per-line time from the batch's receipt to the hand-over to librdkafka.
    pub processing: Histogram,
}

impl Metrics {
    /// Fresh counters; histograms with the configured bounds.
    pub fn new(parsing_buckets: &[f64], processing_buckets: &[f64]) -> Metrics {
        Metrics {
            stopping: AtomicBool::new(false),
            received: AtomicU64::new(0),
            truncated: AtomicU64::new(0),
            parsed: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            dlq_delivered: AtomicU64::new(0),
            delivery_errors: AtomicU64::new(0),
            delivery_failing: AtomicBool::new(false),
            buffered: AtomicU64::new(0),
            replayed: AtomicU64::new(0),
            buffer_bytes: AtomicU64::new(0),
            saturated: Default::default(),
            beats: Stage::ALL.map(|stage| Heartbeat::new(stage.beat_name(), Some(STALL))),
            parsing: Histogram::new(parsing_buckets),
            processing: Histogram::new(processing_buckets),
        }
    }

    /// `count` lines found the queue of `stage` full: dropped, but for
    /// librdkafka's queue, whose lines went to the disk buffer.
    pub fn saturated(&self, stage: Stage, count: u64) {
        self.saturated[stage.index()].fetch_add(count, Ordering::Relaxed);
    }

    /// Lines that found the queue of `stage` full so far.
    pub fn saturated_at(&self, stage: Stage) -> u64 {
        self.saturated[stage.index()].load(Ordering::Relaxed)
    }

    /// `stage` is alive (working, or waiting with nothing owed).
    pub fn beat(&self, stage: Stage) {
        self.beats[stage.index()].beat();
    }

    /// The stages that have not beaten within [`STALL`] (empty: healthy).
    pub fn stalled(&self) -> Vec<&str> {
        [Stage::Receiver, Stage::Parser, Stage::Producer]
            .into_iter()
            .map(|stage| &self.beats[stage.index()])
            .filter(|beat| beat.is_stalled())
            .map(Heartbeat::name)
            .collect()
    }

    /// The Prometheus text exposition; `queued` is what librdkafka holds now.
    pub fn render(&self, queued: u64) -> String {
        let mut out = String::with_capacity(4096);
        let counter = |out: &mut String, name: &str, help: &str, value: &AtomicU64| {
            let value = value.load(Ordering::Relaxed);
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}");
        };
        counter(
            &mut out,
            "haproxykafka_received_datagrams_total",
            "Datagrams read from the log socket.",
            &self.received,
        );
        counter(
            &mut out,
            "haproxykafka_truncated_datagrams_total",
            "Datagrams longer than max-datagram, cut and sent to the dead-letter topic.",
            &self.truncated,
        );
        counter(
            &mut out,
            "haproxykafka_parsed_messages_total",
            "Datagrams that became JSON messages.",
            &self.parsed,
        );
        counter(
            &mut out,
            "haproxykafka_rejected_messages_total",
            "Datagrams the mapping refused, bound for the dead-letter topic.",
            &self.rejected,
        );
        counter(
            &mut out,
            "haproxykafka_valid_messages_total",
            "JSON messages Kafka confirmed.",
            &self.delivered,
        );
        counter(
            &mut out,
            "haproxykafka_dlq_messages_total",
            "Dead-letter messages Kafka confirmed.",
            &self.dlq_delivered,
        );
        counter(
            &mut out,
            "haproxykafka_delivery_errors_total",
            "Messages Kafka did not take after librdkafka's retries (they go to the disk buffer).",
            &self.delivery_errors,
        );
        counter(
            &mut out,
            "haproxykafka_buffered_messages_total",
            "Messages written to the disk buffer while Kafka did not take them.",
            &self.buffered,
        );
        counter(
            &mut out,
            "haproxykafka_replayed_messages_total",
            "Messages handed to Kafka again from the disk buffer.",
            &self.replayed,
        );
        let bytes = self.buffer_bytes.load(Ordering::Relaxed);
        let failing = u8::from(self.delivery_failing.load(Ordering::Relaxed));
        let _ = writeln!(
            out,
            "# HELP {BUFFER_BYTES} Bytes in the disk buffer.\n\
             # TYPE {BUFFER_BYTES} gauge\n{BUFFER_BYTES} {bytes}\n\
             # HELP {DELIVERY_FAILING} 1 while Kafka's latest delivery report is a failure.\n\
             # TYPE {DELIVERY_FAILING} gauge\n{DELIVERY_FAILING} {failing}"
        );
        // The alerts query this name without `_total`, so it is exposed
        // untyped: a counter must end in `_total` to be a valid one.
        let name = "haproxykafka_saturation_errors";
        let _ = writeln!(
            out,
            "# HELP {name} Lines dropped because a stage's queue was full, by the queue; kafka-msg counts what went to the disk buffer instead (a counter).\n# TYPE {name} untyped"
        );
        for stage in Stage::ALL {
            if let Some(channel) = stage.channel() {
                let _ = writeln!(out, "{name}{{channel=\"{channel}\"}} {}", self.saturated_at(stage));
            }
        }
        let _ = writeln!(
            out,
            "# HELP haproxykafka_kafka_queued_messages Messages librdkafka holds, not yet confirmed.\n\
             # TYPE haproxykafka_kafka_queued_messages gauge\nhaproxykafka_kafka_queued_messages {queued}"
        );
        let healthy = u8::from(self.stalled().is_empty());
        let _ = writeln!(
            out,
            "# HELP haproxykafka_healthy 1 while every stage makes progress or waits with nothing owed.\n\
             # TYPE haproxykafka_healthy gauge\nhaproxykafka_healthy {healthy}"
        );
        self.parsing.render(
            &mut out,
            "haproxykafka_parsing_duration_seconds",
            "Time to parse one datagram into JSON.",
        );
        self.processing.render(
            &mut out,
            "haproxykafka_processing_duration_seconds",
            "Time from a datagram's batch being read to its hand-over to librdkafka.",
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_has_the_alerts_names_and_cumulative_buckets() {
        let metrics = Metrics::new(&[1e-5, 1e-4], &[1e-3]);
        metrics.delivered.fetch_add(3, Ordering::Relaxed);
        metrics.saturated(Stage::KafkaQueue, 2);
        metrics.parsing.observe(Duration::from_micros(5));
        metrics.parsing.observe(Duration::from_micros(50));
        metrics.parsing.observe(Duration::from_millis(5));
        let text = metrics.render(7);
        for line in [
            "haproxykafka_valid_messages_total 3",
            "haproxykafka_saturation_errors{channel=\"kafka-msg\"} 2",
            "haproxykafka_saturation_errors{channel=\"parser\"} 0",
            "haproxykafka_saturation_errors{channel=\"producer\"} 0",
            "haproxykafka_saturation_errors{channel=\"disk-buffer\"} 0",
            "haproxykafka_kafka_queued_messages 7",
            "haproxykafka_parsing_duration_seconds_bucket{le=\"0.00001\"} 1",
            "haproxykafka_parsing_duration_seconds_bucket{le=\"0.0001\"} 2",
            "haproxykafka_parsing_duration_seconds_bucket{le=\"+Inf\"} 3",
            "haproxykafka_parsing_duration_seconds_sum 0.005055",
            "haproxykafka_parsing_duration_seconds_count 3",
        ] {
            assert!(text.lines().any(|got| got == line), "{line} not in\n{text}");
        }
        let channels = text
            .lines()
            .filter(|line| line.starts_with("haproxykafka_saturation_errors{"));
        assert_eq!(channels.count(), 4, "{text}");
    }
}
