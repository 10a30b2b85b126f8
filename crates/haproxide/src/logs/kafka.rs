//! The hand-over to Kafka: librdkafka (vendored, so it speaks to current
//! brokers) configured from `[logs-rdkafka]` as it is, JSON messages to the
//! topic and refused datagrams, as they came, to the dead-letter topic with
//! the reason in an `error` header. Every delivery report is counted.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientContext, Message};

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

/// Counts delivery reports.
pub struct Reports {
    metrics: Arc<Metrics>,
    dlq_topic: String,
}

impl ClientContext for Reports {}

impl ProducerContext for Reports {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(message) => {
                let counter = match message.topic() == self.dlq_topic {
                    true => &self.metrics.dlq_delivered,
                    false => &self.metrics.delivered,
                };
                counter.fetch_add(1, Ordering::Relaxed);
            }
            Err((error, message)) => {
                self.metrics.delivery_errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!("Kafka did not take a message for {}: {error}", message.topic());
            }
        }
    }
}

/// The producer, started.
pub struct Kafka {
    producer: ThreadedProducer<Reports>,
    settings: KafkaSettings,
    metrics: Arc<Metrics>,
    hostname: String,
}

impl Kafka {
    /// Creates the producer (librdkafka connects in the background).
    pub fn start(settings: &KafkaSettings, hostname: &str, metrics: &Arc<Metrics>) -> anyhow::Result<Kafka> {
        let context = Reports {
            metrics: Arc::clone(metrics),
            dlq_topic: settings.dlq_topic.clone(),
        };
        let producer = settings
            .client
            .create_with_context(context)
            .map_err(|error| anyhow::anyhow!("[logs-rdkafka]: librdkafka refuses the producer: {error}"))?;
        Ok(Kafka {
            producer,
            settings: settings.clone(),
            metrics: Arc::clone(metrics),
            hostname: hostname.to_owned(),
        })
    }

    /// Messages librdkafka holds, not yet confirmed.
    pub fn queued(&self) -> u64 {
        u64::try_from(self.producer.in_flight_count()).unwrap_or_default()
    }

    /// Produces every batch `encoded` brings until the parsers are gone.
    pub fn run(&self, encoded: &Receiver<Encoded>) {
        loop {
            self.metrics.beat(Stage::Producer);
            match encoded.recv_timeout(Duration::from_millis(100)) {
                Ok(batch) => self.produce(&batch),
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
            }
        }
    }

    fn produce(&self, batch: &Encoded) {
        let mut dropped = 0;
        for message in batch.messages() {
            let record = BaseRecord::<(), [u8]>::to(&self.settings.topic).payload(message);
            if self.send(record).is_err() {
                dropped += 1;
            }
        }
        for (datagram, reason) in &batch.rejected {
            let headers = OwnedHeaders::new()
                .insert(Header {
                    key: "error",
                    value: Some(reason.as_bytes()),
                })
                .insert(Header {
                    key: "hostname",
                    value: Some(self.hostname.as_bytes()),
                });
            let record = BaseRecord::<(), [u8]>::to(&self.settings.dlq_topic)
                .payload(datagram.as_slice())
                .headers(headers);
            if self.send(record).is_err() {
                dropped += 1;
            }
        }
        if dropped > 0 {
            self.metrics.dropped(Stage::KafkaQueue, dropped);
        }
        if let Some(received) = batch.received {
            let elapsed = received.elapsed();
            for _ in 0..batch.ends.len() + batch.rejected.len() {
                self.metrics.processing.observe(elapsed);
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

    /// Waits up to `timeout` for librdkafka to deliver what it holds;
    /// returns what is still undelivered.
    pub fn flush_within(&self, timeout: Duration) -> u64 {
        if let Err(error) = self.producer.flush(timeout) {
            tracing::warn!("Kafka flush: {error}");
        }
        self.queued()
    }
}
