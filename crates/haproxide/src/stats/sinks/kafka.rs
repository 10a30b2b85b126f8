//! The `kafka` sink: each round's metrics to a Kafka topic, keyed by the
//! host name, as Graphite plaintext lines packed into messages of at most
//! `message-bytes` (`format = graphite`, the lines local-store writes) or
//! as one JSON object per metric (`format = json`: host, kind, then
//! process, proxy, server and group where they apply, field, value,
//! timestamp; names as HAProxy gave them).
//!
//! A round is confirmed only when every one of its messages has a
//! successful delivery report, so a round Kafka did not take stays in the
//! spool and is delivered again later (at least once). librdkafka's
//! properties come from the section's `rdkafka.*` entries
//! ([`crate::kafka`]); the producer starts with the pipeline, not when the
//! sink is built.

use std::sync::Arc;

use anyhow::Context;
use rdkafka::producer::FutureRecord;

use super::plaintext::Plaintext;
use super::{Delivery, Sink, Snapshot};
use crate::config::declare::{self, DefaultValue, Entries, Key, Parser, Section};
use crate::config::{Config, ConfigError};
use crate::kafka::ConfirmingProducer;
use crate::stats::metrics::{Batch, Entity};

/// How metrics are written into messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Graphite plaintext lines, as many whole lines a message as fit.
    Graphite,
    /// One JSON object a metric.
    Json,
}

/// `[kafka] enabled`.
const ENABLED: Key<bool> = Key::new(
    "enabled",
    declare::BOOL,
    DefaultValue::Fallback("false"),
    "`true`: the metrics of every round also go to Kafka",
);
/// `[kafka] brokers`.
const BROKERS: Key<String> = Key::new(
    "brokers",
    declare::TEXT,
    DefaultValue::Unset("needed when enabled"),
    "the brokers, `host:port` comma-separated (librdkafka's bootstrap.servers)",
);
/// `[kafka] topic`.
const TOPIC: Key<String> = Key::new(
    "topic",
    declare::TEXT,
    DefaultValue::Fallback("haproxy-metrics"),
    "the topic; messages are keyed by the host name",
);
/// `[kafka] format`.
const FORMAT: Key<Format> = Key::new(
    "format",
    Parser {
        kind: "graphite or json",
        parse: |text| Ok([Format::Graphite, Format::Json][declare::choice(text, &["graphite", "json"])?]),
    },
    DefaultValue::Fallback("graphite"),
    "`graphite`: plaintext lines, as local-store writes them, packed into messages; `json`: one object a metric (host, kind, proxy, server, field, value, timestamp)",
);
/// `[kafka] message-bytes`.
const MESSAGE_BYTES: Key<u64> = Key::new(
    "message-bytes",
    declare::SIZE,
    DefaultValue::Fallback("900K"),
    "the largest graphite message: whole lines up to this (Kafka's default limit is 1 MB)",
);

/// `[kafka]`: the Kafka sink.
pub const SECTION: Section = Section {
    entries: Some(Entries {
        doc: "`rdkafka.PROPERTY = value`: a librdkafka producer property, passed as it is (`rdkafka.acks = all`, `rdkafka.compression.codec = zstd`)",
        check_key: |key| match key.strip_prefix("rdkafka.") {
            Some(property) => crate::kafka::check_property_name(property),
            None => Err("is not a key of [kafka], nor an `rdkafka.` property".into()),
        },
        check: |_| Ok(()),
    }),
    ..Section::of(
        "kafka",
        "the Kafka sink: each round's metrics to a topic",
        &[&ENABLED, &BROKERS, &TOPIC, &FORMAT, &MESSAGE_BYTES],
    )
}
.with_rules(rules);

/// With `enabled = true`: brokers, and properties librdkafka takes.
fn rules(config: &Config) -> Vec<ConfigError> {
    if !config.get(&SECTION, &ENABLED).unwrap_or(false) {
        return Vec::new();
    }
    crate::kafka::section_problems(config, &SECTION, &BROKERS)
}

/// `[kafka]`, as the sink uses it.
#[derive(Debug, Clone)]
pub struct KafkaSinkSettings {
    /// librdkafka's properties.
    pub client: rdkafka::ClientConfig,
    /// The topic.
    pub topic: String,
    /// The format.
    pub format: Format,
    /// The largest graphite message.
    pub message_bytes: usize,
    /// The message key and JSON `host`.
    pub host: String,
}

impl KafkaSinkSettings {
    /// `[kafka]` of `config`; `None` unless `enabled = true`.
    pub fn from_config(config: &Config) -> anyhow::Result<Option<KafkaSinkSettings>> {
        if !config.get(&SECTION, &ENABLED)? {
            return Ok(None);
        }
        if let Some(problem) = rules(config).into_iter().next() {
            return Err(problem.into());
        }
        Ok(Some(KafkaSinkSettings {
            client: crate::kafka::section_client(config, &SECTION, &BROKERS, &[])?,
            topic: config.get(&SECTION, &TOPIC)?,
            format: config.get(&SECTION, &FORMAT)?,
            message_bytes: usize::try_from(config.get(&SECTION, &MESSAGE_BYTES)?)?.max(1),
            host: nix::unistd::gethostname()?.to_string_lossy().into_owned(),
        }))
    }
}

/// Produces rounds to Kafka.
pub struct KafkaSink {
    settings: KafkaSinkSettings,
    encoding: Arc<Plaintext>,
    producer: ConfirmingProducer,
}

impl KafkaSink {
    /// A sink on `settings`, its graphite lines as `encoding` makes them; no
    /// producer yet.
    pub fn new(settings: KafkaSinkSettings, encoding: Arc<Plaintext>) -> KafkaSink {
        let producer = ConfirmingProducer::new(settings.client.clone());
        KafkaSink {
            settings,
            encoding,
            producer,
        }
    }
}

impl Sink for KafkaSink {
    fn name(&self) -> &'static str {
        "kafka"
    }

    fn start(&self) {
        if let Err(error) = self.producer.producer() {
            tracing::error!("kafka: {error:#}");
        }
    }

    fn deliver(&self, snapshot: Arc<Snapshot>) -> Delivery<'_> {
        let encoding = Arc::clone(&self.encoding);
        let (format, limit) = (self.settings.format, self.settings.message_bytes);
        // The round's load balancer, as its manifest names it, else this host.
        let host = snapshot.batch.host().unwrap_or(&self.settings.host).to_owned();
        let key = host.clone();
        Box::pin(async move {
            let messages = tokio::task::spawn_blocking(move || match format {
                Format::Graphite => graphite_messages(&encoding, &snapshot.batch, limit),
                Format::Json => Ok(json_messages(&host, &snapshot.batch)),
            })
            .await
            .context("the kafka encoder stopped")??;
            let topic = self.settings.topic.as_str();
            let records: Vec<FutureRecord<'_, [u8], [u8]>> = messages
                .iter()
                .map(|payload| FutureRecord::to(topic).key(key.as_bytes()).payload(payload.as_slice()))
                .collect();
            self.producer.produce_all(records).await
        })
    }

    fn self_metrics(&self) -> Vec<(&'static str, f64)> {
        let (sent, failed) = self.producer.counts();
        vec![("MessagesSent", sent as f64), ("MessagesFailed", failed as f64)]
    }
}

/// The round's plaintext lines, whole lines packed into messages of at
/// most `limit` bytes (a longer line is a message of its own).
pub fn graphite_messages(encoding: &Plaintext, batch: &Batch, limit: usize) -> anyhow::Result<Vec<Vec<u8>>> {
    let mut text = Vec::new();
    encoding.write_to(batch, &mut text)?;
    let mut messages = Vec::new();
    let mut message: Vec<u8> = Vec::with_capacity(limit.min(text.len()));
    for line in text.split_inclusive(|byte| *byte == b'\n') {
        if !message.is_empty() && message.len() + line.len() > limit {
            messages.push(std::mem::take(&mut message));
        }
        message.extend_from_slice(line);
    }
    if !message.is_empty() {
        messages.push(message);
    }
    Ok(messages)
}

/// One JSON object per metric of the round, `host` its load balancer.
pub fn json_messages(host: &str, batch: &Batch) -> Vec<Vec<u8>> {
    batch
        .metrics()
        .map(|(member, field, value)| {
            let (kind, name, proxy, server) = match &member.entity {
                Entity::Pipeline => ("pipeline", None, None, None),
                Entity::Daemon => ("daemon", None, None, None),
                Entity::Process(process) => ("process", Some(process.as_str()), None, None),
                Entity::Frontend(proxy) => ("frontend", None, Some(proxy.as_str()), None),
                Entity::Backend(proxy) => ("backend", None, Some(proxy.as_str()), None),
                Entity::Server { backend, server } => ("server", None, Some(backend.as_str()), Some(server.as_str())),
                Entity::ServerAcrossBackends(server) => ("server-across-backends", None, None, Some(server.as_str())),
            };
            let mut object = serde_json::Map::new();
            object.insert("host".into(), host.into());
            object.insert("kind".into(), kind.into());
            if let Some(process) = name {
                object.insert("process".into(), process.into());
            }
            if let Some(proxy) = proxy {
                object.insert("proxy".into(), proxy.into());
            }
            if let Some(server) = server {
                object.insert("server".into(), server.into());
            }
            if let Some(group) = &member.group {
                object.insert("group".into(), group.as_ref().into());
            }
            object.insert("field".into(), field.into());
            // Counters are whole numbers: written as such, not as `40.0`.
            let number = if value.fract() == 0.0 && value.abs() < 9e15 {
                serde_json::Value::from(value as i64)
            } else {
                serde_json::Value::from(value)
            };
            object.insert("value".into(), number);
            object.insert("timestamp".into(), batch.timestamp().into());
            serde_json::Value::Object(object).to_string().into_bytes()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::metrics::Member;

    fn batch() -> Batch {
        let mut batch = Batch::new(1_700_000_000);
        batch
            .section(vec!["scur".into(), "stot".into()])
            .push(Member::ungrouped(Entity::Frontend("fe web".into())), [3.0, 40.0]);
        batch.section(vec!["qcur".into()]).push(
            Member::ungrouped(Entity::Server {
                backend: "be".into(),
                server: "s\"1".into(),
            }),
            [f64::NAN],
        );
        batch
            .section(vec!["CurrConns".into()])
            .push(Member::ungrouped(Entity::Daemon), [7.5]);
        batch
    }

    fn encoding() -> Plaintext {
        Plaintext {
            prefix: "lb.haproxy".into(),
            group_namespace: None,
            double_writes: false,
            per_round_host: None,
        }
    }

    #[test]
    fn check_config_names_what_librdkafka_and_the_section_refuse() {
        use crate::config::Program;
        use crate::config::schema::{Scope, errors_in};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.conf");
        let errors = |text: &str| errors_in(&path, text, Scope::Of(Program::Process));
        let file = path.display();
        assert_eq!(
            errors("[kafka]\nenabled = true\nbrokers = 127.0.0.1:9092\nrdkafka.acks = all\nacks = 1\n"),
            [format!(
                "{file}:5: [kafka] acks = \"1\": the name \"acks\" is not a key of [kafka], nor an `rdkafka.` property"
            )]
        );
        let refused = errors("[kafka]\nenabled = true\nbrokers = 127.0.0.1:9092\nrdkafka.no.such.property = 1\n");
        assert_eq!(refused.len(), 1, "{refused:?}");
        assert!(
            refused[0].starts_with(&format!("{file}:1: [kafka]: librdkafka refuses it: ")),
            "{refused:?}"
        );
        let missing = errors("[kafka]\nenabled = true\n");
        assert!(missing.iter().any(|error| error.contains("brokers")), "{missing:?}");
        assert_eq!(
            errors("[kafka]\nenabled = false\nrdkafka.no.such.property = 1\n"),
            Vec::<String>::new()
        );
    }

    #[test]
    fn graphite_messages_are_whole_lines_up_to_the_limit() {
        let lines = "lb.haproxy.frontend.fe_web.scur 3 1700000000\nlb.haproxy.frontend.fe_web.stot 40 1700000000\nlb.haproxy.daemon.CurrConns 7.5 1700000000\n";
        let all = graphite_messages(&encoding(), &batch(), 1 << 20).unwrap();
        assert_eq!(all, [lines.as_bytes().to_vec()]);
        // 45 bytes a line at most: one line a message when the limit is below two.
        let small = graphite_messages(&encoding(), &batch(), 60).unwrap();
        let texts: Vec<String> = small
            .iter()
            .map(|message| String::from_utf8_lossy(message).into_owned())
            .collect();
        assert_eq!(texts.concat(), lines);
        assert_eq!(texts.len(), 3);
        assert!(
            texts
                .iter()
                .all(|text| text.ends_with('\n') && text.matches('\n').count() == 1)
        );
    }

    #[test]
    fn json_is_one_object_a_metric_with_names_as_haproxy_gave_them() {
        let messages: Vec<String> = json_messages("lb1", &batch())
            .iter()
            .map(|message| String::from_utf8_lossy(message).into_owned())
            .collect();
        assert_eq!(
            messages,
            [
                r#"{"host":"lb1","kind":"frontend","proxy":"fe web","field":"scur","value":3,"timestamp":1700000000}"#,
                r#"{"host":"lb1","kind":"frontend","proxy":"fe web","field":"stot","value":40,"timestamp":1700000000}"#,
                r#"{"host":"lb1","kind":"daemon","field":"CurrConns","value":7.5,"timestamp":1700000000}"#,
            ]
        );
    }
}
