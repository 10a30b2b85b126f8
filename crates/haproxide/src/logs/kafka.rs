//! The hand-over to Kafka: librdkafka (vendored, so it speaks to current
//! brokers) configured from `[logs-rdkafka]` as it is, JSON messages to the
//! topic and refused datagrams, as they came, to the dead-letter topic with
//! the reason in an `error` header. Every delivery report is counted.
//!
//! What librdkafka does not take (its queue stayed full, a delivery failed
//! after its retries, what it still holds at a stop) goes to the
//! [`DiskBuffer`], which is replayed oldest first when Kafka takes messages
//! again; only what finds the buffer full is dropped, and counted.

use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Headers, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, PurgeConfig, ThreadedProducer};
use rdkafka::{ClientContext, Message};

use super::buffer::{Buffered, DiskBuffer, Kind, Segment};
use super::config::KafkaSettings;
use super::metrics::{Metrics, Stage};

/// What a parser hands on: JSON messages and refused datagrams of one batch.
#[derive(Debug, Default)]
pub struct Encoded {
    /// The JSON messages, back to back.
    pub json: Vec<u8>,
    /// Where each message ends in `json`.
    pub ends: Vec<usize>,
    /// Refused datagrams as they came, each with the reason.
    pub rejected: Vec<(Vec<u8>, String)>,
    /// When the batch was read from the socket.
    pub received: Option<Instant>,
}

impl Encoded {
    /// Each JSON message.
    pub fn messages(&self) -> impl Iterator<Item = &[u8]> {
        let mut start = 0;
        self.ends.iter().map(move |&end| {
            let message = &self.json[start..end];
            start = end;
            message
        })
    }
}

/// The disk buffer, shared by the producer and the delivery reports.
struct Spill {
    buffer: Mutex<DiskBuffer>,
    /// Messages whose delivery failed, kept by the reports (which must not
    /// wait on the disk) until the producer writes them, one sync a batch.
    failed: Mutex<Vec<Buffered>>,
    metrics: Arc<Metrics>,
    /// Whether messages are being buffered (for one log line per outage).
    spilling: AtomicBool,
    /// When the buffer's state was last logged.
    last_report: Mutex<Option<Instant>>,
}

/// How often the disk buffer's state is logged at most.
const REPORT_EVERY: Duration = Duration::from_secs(5);

impl Spill {
    /// Buffers `messages`; what does not fit is dropped and counted.
    fn store(&self, messages: &[(Kind, &str, &[u8])]) {
        let count = messages.len();
        if count == 0 {
            return;
        }
        let mut buffer = crate::runtime::unpoisoned(self.buffer.lock(), "the disk buffer");
        let stored = match buffer.append(messages.iter().copied()) {
            Ok(stored) => stored,
            Err(error) => {
                tracing::error!("cannot write to the disk buffer: {error}");
                0
            }
        };
        self.metrics.buffered.fetch_add(stored as u64, Ordering::Relaxed);
        self.metrics.buffer_bytes.store(buffer.bytes(), Ordering::Relaxed);
        if stored < count {
            self.metrics.saturated(Stage::DiskBuffer, (count - stored) as u64);
        }
        if !self.spilling.swap(true, Ordering::Relaxed) {
            self.report(format_args!(
                "Kafka is not taking messages: keeping them in the disk buffer ({} bytes now)",
                buffer.bytes()
            ));
        }
    }

    /// Logs how the buffer fares, at most once every [`REPORT_EVERY`], so a
    /// flapping broker does not flood the log.
    fn report(&self, line: std::fmt::Arguments<'_>) {
        let mut last = crate::runtime::unpoisoned(self.last_report.lock(), "the buffer's last report");
        if last.is_none_or(|at| at.elapsed() >= REPORT_EVERY) {
            tracing::info!("{line}");
            *last = Some(Instant::now());
        }
    }

    /// Writes the messages whose delivery failed to the disk buffer.
    fn store_failed(&self) {
        let failed = std::mem::take(&mut *crate::runtime::unpoisoned(
            self.failed.lock(),
            "failed deliveries",
        ));
        let records: Vec<(Kind, &str, &[u8])> = failed
            .iter()
            .map(|message| (message.kind, message.reason.as_str(), message.payload.as_slice()))
            .collect();
        self.store(&records);
    }
}

/// Counts delivery reports, and buffers what Kafka did not take.
pub struct Reports {
    spill: Arc<Spill>,
    dlq_topic: String,
}

impl ClientContext for Reports {}

impl ProducerContext for Reports {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        let metrics = &self.spill.metrics;
        match result {
            Ok(message) => {
                let counter = match message.topic() == self.dlq_topic {
                    true => &metrics.dlq_delivered,
                    false => &metrics.delivered,
                };
                counter.fetch_add(1, Ordering::Relaxed);
                metrics.delivery_failing.store(false, Ordering::Relaxed);
            }
            Err((error, message)) => {
                metrics.delivery_errors.fetch_add(1, Ordering::Relaxed);
                metrics.delivery_failing.store(true, Ordering::Relaxed);
                tracing::debug!("Kafka did not take a message for {}: {error}", message.topic());
                let kind = match message.topic() == self.dlq_topic {
                    true => Kind::DeadLetter,
                    false => Kind::Valid,
                };
                let reason = message
                    .headers()
                    .and_then(|headers| headers.iter().find(|header| header.key == "error"))
                    .and_then(|header| header.value)
                    .map(String::from_utf8_lossy)
                    .unwrap_or_default();
                let failed = Buffered {
                    kind,
                    reason: reason.into_owned(),
                    payload: message.payload().unwrap_or_default().to_vec(),
                };
                crate::runtime::unpoisoned(self.spill.failed.lock(), "failed deliveries").push(failed);
            }
        }
    }
}

/// The producer, started.
pub struct Kafka {
    producer: ThreadedProducer<Reports>,
    settings: KafkaSettings,
    spill: Arc<Spill>,
    hostname: String,
}

impl Kafka {
    /// Opens the disk buffer and creates the producer (librdkafka connects
    /// in the background).
    pub fn start(settings: &KafkaSettings, hostname: &str, metrics: &Arc<Metrics>) -> anyhow::Result<Kafka> {
        let buffer = DiskBuffer::open(
            &settings.buffer.dir,
            settings.buffer.max_bytes,
            settings.buffer.segment_bytes,
        )
        .map_err(|error| anyhow::anyhow!("[logs-buffer] dir: {}: {error}", settings.buffer.dir.display()))?;
        if !buffer.is_empty() {
            tracing::info!(
                "the disk buffer holds {} bytes from before: replaying them first",
                buffer.bytes()
            );
        }
        metrics.buffer_bytes.store(buffer.bytes(), Ordering::Relaxed);
        let spill = Arc::new(Spill {
            buffer: Mutex::new(buffer),
            failed: Mutex::new(Vec::new()),
            metrics: Arc::clone(metrics),
            spilling: AtomicBool::new(false),
            last_report: Mutex::new(None),
        });
        let context = Reports {
            spill: Arc::clone(&spill),
            dlq_topic: settings.dlq_topic.clone(),
        };
        let producer = settings
            .client
            .create_with_context(context)
            .map_err(|error| anyhow::anyhow!("[logs-rdkafka]: librdkafka refuses the producer: {error}"))?;
        Ok(Kafka {
            producer,
            settings: settings.clone(),
            spill,
            hostname: hostname.to_owned(),
        })
    }

    /// Messages librdkafka holds, not yet confirmed.
    pub fn queued(&self) -> u64 {
        u64::try_from(self.producer.in_flight_count()).unwrap_or_default()
    }

    fn buffer(&self) -> std::sync::MutexGuard<'_, DiskBuffer> {
        crate::runtime::unpoisoned(self.spill.buffer.lock(), "the disk buffer")
    }

    /// Produces every batch `encoded` brings until the parsers are gone,
    /// replaying the disk buffer whenever it holds something.
    pub fn run(&self, encoded: &Receiver<Encoded>) {
        let mut replay: Option<Segment> = None;
        loop {
            self.spill.metrics.beat(Stage::Producer);
            self.spill.store_failed();
            let buffered = replay.is_some() || !self.buffer().is_empty();
            if buffered && !self.spill.metrics.stopping.load(Ordering::Relaxed) {
                replay = self.replay(replay);
            }
            let wait = if buffered {
                Duration::from_millis(10)
            } else {
                Duration::from_millis(100)
            };
            match encoded.recv_timeout(wait) {
                // Behind buffered messages, new ones wait their turn on disk:
                // every batch waiting goes in one append, so one sync serves
                // them all and the producer keeps up with the parsers.
                Ok(batch) if buffered => {
                    let batches: Vec<Encoded> = std::iter::once(batch).chain(encoded.try_iter()).collect();
                    let records: Vec<_> = batches
                        .iter()
                        .flat_map(|batch| self.records(batch))
                        .map(|(kind, reason, payload, _)| (kind, reason, payload))
                        .collect();
                    self.spill.store(&records);
                }
                Ok(batch) => self.produce(&batch),
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
            }
        }
    }

    /// Hands buffered messages to librdkafka until its queue is full;
    /// returns where it stopped.
    fn replay(&self, replay: Option<Segment>) -> Option<Segment> {
        let mut replay = match replay {
            Some(replay) => replay,
            None => match self.buffer().oldest() {
                Ok(Some(segment)) => segment,
                Ok(None) => return None,
                Err(error) => {
                    tracing::error!("cannot read the disk buffer: {error}");
                    return None;
                }
            },
        };
        let mut handed = None;
        for (record, end) in replay.rest() {
            let (topic, headers) = match record.kind {
                Kind::Valid => (&self.settings.topic, None),
                Kind::DeadLetter => (&self.settings.dlq_topic, Some(self.dead_letter_headers(record.reason))),
            };
            let mut message = BaseRecord::<(), [u8]>::to(topic).payload(record.payload);
            if let Some(headers) = headers {
                message = message.headers(headers);
            }
            if self.producer.send(message).is_err() {
                break;
            }
            handed = Some(end);
            self.spill.metrics.replayed.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(end) = handed {
            replay.handed_to(end);
        }
        if !replay.done() {
            return Some(replay);
        }
        let mut buffer = self.buffer();
        if let Err(error) = buffer.remove(replay.number) {
            tracing::error!("cannot remove a replayed segment of the disk buffer: {error}");
        }
        self.spill.metrics.buffer_bytes.store(buffer.bytes(), Ordering::Relaxed);
        let replayed = self.spill.metrics.replayed.load(Ordering::Relaxed);
        if buffer.is_empty() {
            self.spill.spilling.store(false, Ordering::Relaxed);
            self.spill.report(format_args!(
                "the disk buffer is empty again ({replayed} messages replayed since the start)"
            ));
        } else {
            self.spill.report(format_args!(
                "replaying the disk buffer: {} bytes left ({replayed} messages replayed since the start)",
                buffer.bytes()
            ));
        }
        None
    }

    fn dead_letter_headers(&self, reason: &[u8]) -> OwnedHeaders {
        OwnedHeaders::new()
            .insert(Header {
                key: "error",
                value: Some(reason),
            })
            .insert(Header {
                key: "hostname",
                value: Some(self.hostname.as_bytes()),
            })
    }

    /// A batch's messages: kind, reason, payload, and the topic they go to.
    fn records<'a>(&'a self, batch: &'a Encoded) -> impl Iterator<Item = (Kind, &'a str, &'a [u8], &'a str)> {
        let valid = batch
            .messages()
            .map(|message| (Kind::Valid, "", message, self.settings.topic.as_str()));
        let dead = batch.rejected.iter().map(|(datagram, reason)| {
            (
                Kind::DeadLetter,
                reason.as_str(),
                datagram.as_slice(),
                self.settings.dlq_topic.as_str(),
            )
        });
        valid.chain(dead)
    }

    fn produce(&self, batch: &Encoded) {
        let mut records = self.records(batch);
        for (kind, reason, payload, topic) in records.by_ref() {
            let mut record = BaseRecord::<(), [u8]>::to(topic).payload(payload);
            if kind == Kind::DeadLetter {
                record = record.headers(self.dead_letter_headers(reason.as_bytes()));
            }
            if self.send(record).is_err() {
                // This one and the rest of the batch wait on disk.
                let rest: Vec<_> = std::iter::once((kind, reason, payload))
                    .chain(
                        records
                            .by_ref()
                            .map(|(kind, reason, payload, _)| (kind, reason, payload)),
                    )
                    .collect();
                self.spill.metrics.saturated(Stage::KafkaQueue, rest.len() as u64);
                self.spill.store(&rest);
                break;
            }
        }
        if let Some(received) = batch.received {
            let elapsed = received.elapsed();
            for _ in 0..batch.ends.len() + batch.rejected.len() {
                self.spill.metrics.processing.observe(elapsed);
            }
        }
    }

    /// Hands one record to librdkafka; a full queue is given a moment to
    /// drain (librdkafka's own thread sends meanwhile) before the record is
    /// given up.
    fn send<'a>(&self, mut record: BaseRecord<'a, (), [u8]>) -> Result<(), KafkaError> {
        for _ in 0..3 {
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err((error, _)) => {
                    tracing::warn!("cannot produce to Kafka: {error}");
                    return Err(error);
                }
            }
        }
        Err(KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull))
    }

    /// Waits up to `timeout` for librdkafka to deliver what it holds, then
    /// takes back what it still holds into the disk buffer (a message in
    /// flight may reach Kafka as well: at least once). Returns how many
    /// messages were taken back.
    pub fn flush_within(&self, timeout: Duration) -> u64 {
        if let Err(error) = self.producer.flush(timeout) {
            tracing::warn!("Kafka flush: {error}");
        }
        let left = self.queued();
        if left > 0 {
            self.producer.purge(PurgeConfig::default().queue().inflight());
            // The purge reports each message as failed, to the reports.
            let deadline = Instant::now() + Duration::from_millis(500);
            while self.queued() > 0 && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        self.spill.store_failed();
        left
    }

    /// Bytes in the disk buffer.
    pub fn buffer_bytes(&self) -> u64 {
        self.buffer().bytes()
    }
}
