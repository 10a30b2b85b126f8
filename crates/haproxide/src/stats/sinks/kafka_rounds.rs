//! The `kafka-rounds` sink and its section: a load balancer's rounds, as
//! `pull` wrote them, to a Kafka topic, for `process` instances elsewhere
//! to aggregate ([`crate::stats::central`]). Nothing is aggregated here: a
//! round's files are packed and compressed ([`archive`]) and cut into parts
//! of at most `part-bytes`, so a 28 MB round fits Kafka's default 1 MB
//! message limit. Every part is keyed by the round's host name (or `key`),
//! so one host's rounds stay in order on one partition, and carries headers that
//! let a consumer put the round together again: `host`, `round`, `send`
//! (one delivery attempt's id), `part` and `parts`.
//!
//! A round is confirmed only when every part has a successful delivery
//! report; until then it stays in the spool and is sent again whole (under
//! a new `send` id), oldest first.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::FutureRecord;

use super::{Delivery, Sink, Snapshot};
use crate::config::declare::{self, DefaultValue, Entries, Key, Section};
use crate::config::{Config, ConfigError};
use crate::kafka::ConfirmingProducer;
use crate::stats::spool::archive::pack_round;

/// `[kafka-rounds] enabled`.
const ENABLED: Key<bool> = Key::new(
    "enabled",
    declare::BOOL,
    DefaultValue::Fallback("false"),
    "`true`: every round's files go to Kafka as they are (on a load balancer), for `source = kafka` to process centrally",
);
/// `[kafka-rounds] brokers`.
pub const BROKERS: Key<String> = Key::new(
    "brokers",
    declare::TEXT,
    DefaultValue::Unset("needed when enabled or with `source = kafka`"),
    "the brokers, `host:port` comma-separated (librdkafka's bootstrap.servers)",
);
/// `[kafka-rounds] topic`.
pub const TOPIC: Key<String> = Key::new(
    "topic",
    declare::TEXT,
    DefaultValue::Fallback("haproxy-rounds"),
    "the topic",
);
/// `[kafka-rounds] key`.
const KEY: Key<String> = Key::new(
    "key",
    declare::TEXT,
    DefaultValue::Unset("the round's host name"),
    "the key of every part; the load balancers of one `[cluster:NAME]` set the same one, so that their rounds share a partition and so meet at one central instance",
);
/// `[kafka-rounds] part-bytes`.
const PART_BYTES: Key<u64> = Key::new(
    "part-bytes",
    declare::SIZE,
    DefaultValue::Fallback("900K"),
    "the largest part of a compressed round (Kafka's default message limit is 1 MB)",
);
/// `[kafka-rounds] group`.
pub const GROUP: Key<String> = Key::new(
    "group",
    declare::TEXT,
    DefaultValue::Fallback("haproxide-process"),
    "with `source = kafka`: the consumer group the central `process` instances share",
);
/// `[kafka-rounds] part-timeout`.
pub const PART_TIMEOUT: Key<Duration> = Key::new(
    "part-timeout",
    declare::POSITIVE_SECONDS,
    DefaultValue::Fallback("60"),
    "with `source = kafka`: seconds a round's first part waits for the others before the round is given up (counted, logged); its sender sends it again whole",
);
/// `[kafka-rounds] max-round-bytes`.
pub const MAX_ROUND_BYTES: Key<u64> = Key::new(
    "max-round-bytes",
    declare::SIZE,
    DefaultValue::Fallback("1G"),
    "with `source = kafka`: a round that decompresses to more is refused (counted, logged)",
);
/// `[kafka-rounds] rounds-waiting`.
pub const ROUNDS_WAITING: Key<usize> = Key::new(
    "rounds-waiting",
    declare::COUNT,
    DefaultValue::Fallback("8"),
    "with `source = kafka`: rounds put together and not yet confirmed by every sink (a round delivered whose cluster window is still open does not count); at this many, consuming pauses",
);

/// `rdkafka.PROPERTY` entries, as `[kafka]` has them.
const RDKAFKA_ENTRIES: Entries = Entries {
    doc: "`rdkafka.PROPERTY = value`: a librdkafka property, passed as it is to the producer (on a load balancer) or the consumer (`source = kafka`)",
    check_key: |key| match key.strip_prefix("rdkafka.") {
        Some(property) => crate::kafka::check_property_name(property),
        None => Err("is not a key of [kafka-rounds], nor an `rdkafka.` property".into()),
    },
    check: |_| Ok(()),
};

/// `[kafka-rounds]`: rounds to Kafka, and from it with `source = kafka`.
pub const SECTION: Section = Section {
    entries: Some(RDKAFKA_ENTRIES),
    ..Section::of(
        "kafka-rounds",
        "rounds as they are to Kafka (on a load balancer), and from it for central processing (`[process] source = kafka`)",
        &[
            &ENABLED,
            &BROKERS,
            &TOPIC,
            &KEY,
            &PART_BYTES,
            &GROUP,
            &PART_TIMEOUT,
            &MAX_ROUND_BYTES,
            &ROUNDS_WAITING,
        ],
    )
}
.with_rules(rules);

/// Whether the sink is on.
pub fn enabled(config: &Config) -> bool {
    config.get(&SECTION, &ENABLED).unwrap_or(false)
}

/// With the sink on: brokers, and properties librdkafka takes.
fn rules(config: &Config) -> Vec<ConfigError> {
    if enabled(config) {
        client_problems(config)
    } else {
        Vec::new()
    }
}

/// `brokers` missing, or properties librdkafka refuses: for the sink here
/// and for the consumer of [`crate::stats::central`].
pub fn client_problems(config: &Config) -> Vec<ConfigError> {
    crate::kafka::section_problems(config, &SECTION, &BROKERS)
}

/// `defaults`, the `rdkafka.*` entries, and `bootstrap.servers` from `brokers`.
pub fn client_config(config: &Config, defaults: &[(&str, &str)]) -> Result<rdkafka::ClientConfig, ConfigError> {
    crate::kafka::section_client(config, &SECTION, &BROKERS, defaults)
}

/// Message headers of a round's parts.
pub mod header {
    /// The load balancer's host name (also the message key, unless `key` is set).
    pub const HOST: &str = "host";
    /// The round's name in its spool (`1700000000`, `1700000000.1`).
    pub const ROUND: &str = "round";
    /// The id of one attempt to send the round, so that parts of two attempts never mix.
    pub const SEND: &str = "send";
    /// This part's index, from 0.
    pub const PART: &str = "part";
    /// How many parts the round has.
    pub const PARTS: &str = "parts";
}

/// Ships rounds whole to Kafka.
pub struct KafkaRounds {
    topic: String,
    part_bytes: usize,
    /// The host name of rounds whose manifest records none: this one.
    host: String,
    /// `key`: every part's key, instead of its round's host name.
    key: Option<String>,
    producer: ConfirmingProducer,
    sends: AtomicU64,
    bytes: AtomicU64,
}

impl KafkaRounds {
    /// The sink `[kafka-rounds]` describes; `None` unless `enabled = true`.
    pub fn from_config(config: &Config) -> anyhow::Result<Option<KafkaRounds>> {
        if !enabled(config) {
            return Ok(None);
        }
        if let Some(problem) = rules(config).into_iter().next() {
            return Err(problem.into());
        }
        Ok(Some(KafkaRounds {
            topic: config.get(&SECTION, &TOPIC)?,
            part_bytes: usize::try_from(config.get(&SECTION, &PART_BYTES)?)?.max(1),
            host: nix::unistd::gethostname()?.to_string_lossy().into_owned(),
            key: config.get_opt(&SECTION, &KEY)?,
            producer: ConfirmingProducer::new(client_config(config, &[])?),
            sends: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
        }))
    }

    /// A fresh id for one attempt at sending a round: this process and a count.
    fn send_id(&self) -> String {
        let count = self.sends.fetch_add(1, Ordering::Relaxed);
        let started = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        format!("{}-{started:x}-{count}", std::process::id())
    }
}

impl Sink for KafkaRounds {
    fn name(&self) -> &'static str {
        "kafka-rounds"
    }

    fn takes_metrics(&self) -> bool {
        false
    }

    fn start(&self) {
        if let Err(error) = self.producer.producer() {
            tracing::error!("kafka-rounds: {error:#}");
        }
    }

    fn deliver(&self, snapshot: Arc<Snapshot>) -> Delivery<'_> {
        let host = snapshot.batch.host().unwrap_or(&self.host).to_owned();
        let key = self.key.clone().unwrap_or_else(|| host.clone());
        let send = self.send_id();
        Box::pin(async move {
            let dir = snapshot.dir.clone();
            let packed = tokio::task::spawn_blocking(move || pack_round(&dir))
                .await
                .context("the round packer stopped")?
                .map_err(anyhow::Error::msg)?;
            let count = packed.parts(self.part_bytes).len().to_string();
            let records: Vec<FutureRecord<'_, [u8], [u8]>> = packed
                .parts(self.part_bytes)
                .enumerate()
                .map(|(index, part)| {
                    let index = index.to_string();
                    let headers = [
                        (header::HOST, host.as_str()),
                        (header::ROUND, snapshot.round.as_str()),
                        (header::SEND, send.as_str()),
                        (header::PART, index.as_str()),
                        (header::PARTS, count.as_str()),
                    ]
                    .into_iter()
                    .fold(OwnedHeaders::new(), |headers, (key, value)| {
                        headers.insert(Header {
                            key,
                            value: Some(value),
                        })
                    });
                    FutureRecord::to(&self.topic)
                        .key(key.as_bytes())
                        .payload(part)
                        .headers(headers)
                })
                .collect();
            self.producer.produce_all(records).await?;
            self.bytes.fetch_add(packed.bytes.len() as u64, Ordering::Relaxed);
            tracing::debug!(
                "round {}: {} files, {} bytes packed into {} ({count} parts)",
                snapshot.round,
                packed.files,
                packed.raw_bytes,
                packed.bytes.len()
            );
            Ok(())
        })
    }

    fn self_metrics(&self) -> Vec<(&'static str, f64)> {
        let (sent, failed) = self.producer.counts();
        vec![
            ("MessagesSent", sent as f64),
            ("MessagesFailed", failed as f64),
            ("BytesSent", self.bytes.load(Ordering::Relaxed) as f64),
        ]
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Program;
    use crate::config::schema::{Scope, errors_in};

    #[test]
    fn check_config_names_a_missing_broker_once_and_refuses_shipping_consumed_rounds_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.conf");
        let errors = |text: &str| errors_in(&path, text, Scope::Of(Program::Process));
        let file = path.display();
        let no_brokers = format!("{file}:3: [kafka-rounds]: brokers is not set");
        assert_eq!(
            errors("[process]\nsource = kafka\n[kafka-rounds]\ngroup = g\n"),
            std::slice::from_ref(&no_brokers)
        );
        // Said once: by the sink's rule, not again by the central one.
        assert_eq!(
            errors("[process]\nsource = kafka\n[kafka-rounds]\nenabled = true\n"),
            [
                format!(
                    "{file}:3: [kafka-rounds]: enabled = true with [process] source = kafka would send the rounds consumed back to Kafka"
                ),
                no_brokers
            ]
        );
        assert_eq!(
            errors("[process]\nsource = kafka\n[kafka-rounds]\nbrokers = 127.0.0.1:9092\n"),
            Vec::<String>::new()
        );
    }
}
