//! One place for librdkafka (vendored: Debian's 2.0.2 cannot talk to
//! current brokers): a client's properties from the configuration, every
//! entry of a section (`[logs-rdkafka]`) or those with a prefix
//! (`[kafka] rdkafka.acks`), passed as they are over a few defaults of the
//! caller's, and librdkafka's own verdict on them for `check-config`; and
//! the producer of the stats sinks, which confirms a round only when every
//! message of it was delivered.

use std::collections::VecDeque;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{anyhow, bail};
use rdkafka::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};

use crate::config::declare::{Key, Section};
use crate::config::schema::section_location;
use crate::config::{Config, ConfigError};

/// A librdkafka property name: letters, digits, `.`, `_` and `-`.
pub fn check_property_name(key: &str) -> Result<(), String> {
    if key.is_empty()
        || !key
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b"._-".contains(&byte))
    {
        return Err("a librdkafka property name is letters, digits, `.`, `_` and `-`".into());
    }
    Ok(())
}

/// `defaults`, then every entry of `section` whose key starts with
/// `prefix`, the prefix taken off (interpolated as any value is).
pub fn client_config(
    config: &Config,
    section: &str,
    prefix: &str,
    defaults: &[(&str, &str)],
) -> Result<ClientConfig, ConfigError> {
    let mut client = ClientConfig::new();
    for (key, value) in defaults {
        client.set(*key, *value);
    }
    if let Some(own) = config.ini().section(section) {
        for entry in &own.entries {
            if let Some(property) = entry.key.strip_prefix(prefix) {
                let value = config.string(section, &entry.key)?.unwrap_or_default();
                client.set(property.to_owned(), value);
            }
        }
    }
    Ok(client)
}

/// The client of a section with a `brokers` key and `rdkafka.PROPERTY`
/// entries (`[kafka]`, `[kafka-rounds]`): `defaults`, the entries, and
/// `bootstrap.servers` from `brokers`.
pub fn section_client(
    config: &Config,
    section: &Section,
    brokers: &Key<String>,
    defaults: &[(&str, &str)],
) -> Result<ClientConfig, ConfigError> {
    let mut client = client_config(config, section.name, "rdkafka.", defaults)?;
    if let Some(brokers) = config.get_opt(section, brokers)? {
        client.set("bootstrap.servers", brokers);
    }
    Ok(client)
}

/// What keeps such a section's client from being made: `brokers` missing,
/// or properties librdkafka refuses.
pub fn section_problems(config: &Config, section: &Section, brokers: &Key<String>) -> Vec<ConfigError> {
    let mut problems = Vec::new();
    if let Err(problem) = config.get(section, brokers) {
        problems.push(problem);
    }
    match section_client(config, section, brokers, &[]) {
        Ok(client) => problems.extend(refusal(config, section.name, &client)),
        Err(problem) => problems.push(problem),
    }
    problems
}

/// librdkafka's refusal of `client` (an unknown property, a bad value),
/// said of `section`.
pub fn refusal(config: &Config, section: &str, client: &ClientConfig) -> Option<ConfigError> {
    client.create_native_config().err().map(|error| ConfigError::Section {
        location: section_location(config, section),
        section: section.to_owned(),
        message: format!("librdkafka refuses it: {error}"),
    })
}

/// How long one message may wait for room in librdkafka's queue.
const QUEUE_WAIT: Duration = Duration::from_secs(30);

/// A producer for messages that stand or fall together (a round's):
/// [`ConfirmingProducer::produce_all`] returns `Ok` only once every message
/// has a successful delivery report. It is created at the first use, not
/// when built, and counts the messages sent and failed.
pub struct ConfirmingProducer {
    client: ClientConfig,
    producer: OnceLock<Result<FutureProducer, String>>,
    sent: AtomicU64,
    failed: AtomicU64,
}

impl ConfirmingProducer {
    /// A producer with librdkafka's properties `client`; nothing connects yet.
    pub fn new(client: ClientConfig) -> ConfirmingProducer {
        ConfirmingProducer {
            client,
            producer: OnceLock::new(),
            sent: AtomicU64::new(0),
            failed: AtomicU64::new(0),
        }
    }

    /// The producer, created at the first call.
    pub fn producer(&self) -> anyhow::Result<&FutureProducer> {
        self.producer
            .get_or_init(|| {
                self.client
                    .create()
                    .map_err(|error| format!("cannot create the Kafka producer: {error}"))
            })
            .as_ref()
            .map_err(|error| anyhow!("{error}"))
    }

    /// Messages delivered and messages failed so far.
    pub fn counts(&self) -> (u64, u64) {
        (self.sent.load(Ordering::Relaxed), self.failed.load(Ordering::Relaxed))
    }

    /// Produces `records` and waits for every delivery report; `Err` names
    /// the first failure. Records are queued as fast as librdkafka takes
    /// them; when its queue is full, the oldest delivery is awaited first.
    pub async fn produce_all<'a>(
        &self,
        records: impl IntoIterator<Item = FutureRecord<'a, [u8], [u8]>>,
    ) -> anyhow::Result<()> {
        let producer = self.producer()?;
        let mut pending: VecDeque<DeliveryFuture> = VecDeque::new();
        let mut outcome = Ok(());
        let mut record_outcome = |result: Result<(), String>| match result {
            Ok(()) => {
                self.sent.fetch_add(1, Ordering::Relaxed);
            }
            Err(error) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                if outcome.is_ok() {
                    outcome = Err(anyhow!("a message was not delivered: {error}"));
                }
            }
        };
        let settle = |future: DeliveryFuture| async move {
            match future.await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err((error, _))) => Err(error.to_string()),
                Err(_) => Err("the producer was dropped".to_owned()),
            }
        };
        let started = tokio::time::Instant::now();
        for mut record in records {
            loop {
                match producer.send_result(record) {
                    Ok(delivery) => {
                        pending.push_back(delivery);
                        break;
                    }
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned)) => {
                        record = returned;
                        // Room comes as the oldest messages are delivered.
                        match pending.pop_front() {
                            Some(oldest) => record_outcome(settle(oldest).await),
                            None => tokio::time::sleep(Duration::from_millis(10)).await,
                        }
                        if started.elapsed() > QUEUE_WAIT {
                            bail!("librdkafka's queue stayed full for {} s", QUEUE_WAIT.as_secs());
                        }
                    }
                    Err((error, _)) => {
                        record_outcome(Err(error.to_string()));
                        break;
                    }
                }
            }
        }
        while let Some(delivery) = pending.pop_front() {
            record_outcome(settle(delivery).await);
        }
        outcome
    }
}
