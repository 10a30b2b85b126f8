//! HAProxyKafka's `config.yaml`, read into `logs`' sections: each of its
//! keys (spec §2) has its place here, so `haproxykafka -c config.yaml` and
//! `check-config -f config.yaml` check and use it as `[logs…]` sections.

use std::path::Path;

use crate::config::yaml::YamlValue;
use crate::config::{Config, ConfigError, Placed};

use super::config::{BUFFER, FIELDS, KAFKA, MONITORING, PARSER, RDKAFKA, SECTION, SOCKET, TRANSFORM};

/// The file HAProxyKafka reads when `-c` is not given.
pub const DEFAULT_CONFIG_FILE: &str = "/etc/haproxykafka/config.yaml";

/// HAProxyKafka's keys (and the few of haproxide's it lacks, such as
/// `socket.receive_buffer` and `buffer.*`): (YAML key, section, key there,
/// how the value is written).
const PLACES: &[(&str, &str, &str, Unit)] = &[
    ("workers", SECTION.name, "workers", Unit::AsIs),
    ("message_buffer", SECTION.name, "message-buffer", Unit::AsIs),
    ("sdid", SECTION.name, "sdid", Unit::AsIs),
    ("hostname", SECTION.name, "hostname", Unit::AsIs),
    ("socket.path", SOCKET.name, "path", Unit::AsIs),
    ("socket.mode", SOCKET.name, "mode", Unit::AsIs),
    ("socket.user", SOCKET.name, "user", Unit::AsIs),
    ("socket.group", SOCKET.name, "group", Unit::AsIs),
    ("socket.batch_size", SOCKET.name, "batch-size", Unit::AsIs),
    ("socket.batch_deadline", SOCKET.name, "batch-deadline", Unit::AsIs),
    ("socket.receive_buffer", SOCKET.name, "receive-buffer", Unit::AsIs),
    ("socket.max_datagram", SOCKET.name, "max-datagram", Unit::AsIs),
    ("logparser.batch_size", PARSER.name, "batch-size", Unit::AsIs),
    ("logparser.batch_deadline", PARSER.name, "batch-deadline", Unit::AsIs),
    ("kafka.topic", KAFKA.name, "topic", Unit::AsIs),
    ("kafka.dlq_topic", KAFKA.name, "dlq-topic", Unit::AsIs),
    ("kafka.flush_timeout", KAFKA.name, "flush-timeout", Unit::Milliseconds),
    ("kafka.batch_size", KAFKA.name, "batch-size", Unit::AsIs),
    ("kafka.batch_deadline", KAFKA.name, "batch-deadline", Unit::AsIs),
    ("monitoring.enable_pprof", MONITORING.name, "enable-pprof", Unit::AsIs),
    (
        "monitoring.enable_prometheus",
        MONITORING.name,
        "enable-prometheus",
        Unit::AsIs,
    ),
    ("monitoring.server_bind", MONITORING.name, "server-bind", Unit::AsIs),
    (
        "monitoring.prometheus_prefix",
        MONITORING.name,
        "prometheus-prefix",
        Unit::AsIs,
    ),
    (
        "monitoring.prometheus_parsing_buckets",
        MONITORING.name,
        "prometheus-parsing-buckets",
        Unit::AsIs,
    ),
    (
        "monitoring.prometheus_processing_buckets",
        MONITORING.name,
        "prometheus-processing-buckets",
        Unit::AsIs,
    ),
    (
        "transform_rules.haproxy_format",
        TRANSFORM.name,
        "haproxy-format",
        Unit::AsIs,
    ),
    ("transform_rules.date_format", TRANSFORM.name, "date-format", Unit::AsIs),
    ("transform_rules.date_tz", TRANSFORM.name, "date-tz", Unit::AsIs),
    // haproxide's own, which HAProxyKafka lacks.
    ("buffer.dir", BUFFER.name, "dir", Unit::AsIs),
    ("buffer.max_size", BUFFER.name, "max-size", Unit::AsIs),
    ("buffer.segment_size", BUFFER.name, "segment-size", Unit::AsIs),
];

/// How a YAML value is written in the section.
#[derive(Debug, Clone, Copy)]
enum Unit {
    /// As it is.
    AsIs,
    /// A bare number is milliseconds (`flush_timeout: 1000`).
    Milliseconds,
}

/// Where a value of the YAML file goes: its place in [`PLACES`], a
/// librdkafka property (`kafka.rdkafka.*`), or a field (`fields.*`, for
/// mappings other than Wikimedia's); `None` for a key HAProxyKafka lacks.
fn place(value: &YamlValue) -> Option<Placed> {
    let at = |section: &str, key: &str, text: String| Placed::Value {
        section: section.to_owned(),
        key: key.to_owned(),
        text,
    };
    if let Some(property) = value.key.strip_prefix("kafka.rdkafka.") {
        return Some(at(RDKAFKA.name, property, value.value.clone()));
    }
    if let Some(json) = value.key.strip_prefix("fields.") {
        return Some(at(FIELDS.name, json, value.value.clone()));
    }
    let (_, section, key, unit) = PLACES.iter().find(|(yaml, ..)| *yaml == value.key)?;
    let text = match unit {
        Unit::Milliseconds if !value.value.is_empty() && value.value.bytes().all(|byte| byte.is_ascii_digit()) => {
            format!("{}ms", value.value)
        }
        Unit::AsIs | Unit::Milliseconds => value.value.clone(),
    };
    Some(at(section, key, text))
}

/// Loads HAProxyKafka's YAML file into `logs`' sections.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    Config::load_yaml(path, place)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::config::schema;
    use crate::logs::config::Settings;

    /// The puppet rspec's file (spec §2, "spec" column), with a broker.
    const RSPEC: &str = "\
workers: 1
message_buffer: 1024.0
sdid: haproxykafka@0
hostname: test
socket:
  path: /var/run/haproxykafka.sock
  mode: '0622'
  user: haproxykafka
  group: haproxykafka
  batch_size: 1024
  batch_deadline: 100ms
logparser:
  batch_size: 1024
  batch_deadline: 100ms
kafka:
  topic: test-topic
  dlq_topic: test-dlq
  flush_timeout: 100
  batch_size: 1024
  batch_deadline: 100ms
  rdkafka:
    acks: all
    bootstrap.servers: 127.0.0.1:9092
    compression.codec: snappy
    queue.buffering.max.messages: 720000
monitoring:
  enable_pprof: true
  enable_prometheus: true
  server_bind: ':1234'
  prometheus_prefix: haproxykafka_
  prometheus_parsing_buckets:
  - 1.0e-05
  - 0.0001
  prometheus_processing_buckets:
  - 1.0e-05
  - 0.0001
transform_rules:
  haproxy_format: 02/Jan/2006:15:04:05.000
  date_format: 2006-01-02T15:04:05Z
  date_tz: UTC
";

    fn load_text(text: &str) -> Result<Config, String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.yaml");
        std::fs::write(&path, text).unwrap();
        load(&path).map_err(|error| error.to_string().replace(&path.display().to_string(), "config.yaml"))
    }

    /// What `logs`' checks say of the YAML `text`.
    fn errors_of(text: &str) -> Vec<String> {
        let config = load_text(text).unwrap();
        let report = schema::check(&config, schema::Scope::Of(crate::config::Program::Logs));
        report.errors.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn the_puppet_rspec_file_is_read_into_typed_settings() {
        let config = load_text(RSPEC).unwrap();
        let report = schema::check(&config, schema::Scope::Of(crate::config::Program::Logs));
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        let settings = Settings::from_config(&config).unwrap();
        assert_eq!(settings.workers, 1);
        assert_eq!(settings.socket.path, Path::new("/var/run/haproxykafka.sock"));
        assert_eq!(settings.socket.mode, 0o622);
        assert_eq!(settings.socket.user.as_deref(), Some("haproxykafka"));
        assert_eq!(settings.socket.batch_size, 1024);
        assert_eq!(settings.socket.batch_deadline, std::time::Duration::from_millis(100));
        assert_eq!(settings.kafka.topic, "test-topic");
        assert_eq!(settings.kafka.dlq_topic, "test-dlq");
        assert_eq!(settings.kafka.flush_timeout, std::time::Duration::from_millis(100));
        assert_eq!(settings.kafka.client.get("acks"), Some("all"));
        assert_eq!(
            settings.kafka.client.get("queue.buffering.max.messages"),
            Some("720000")
        );
        assert_eq!(settings.monitoring.bind, "0.0.0.0:1234".parse().unwrap());
        assert_eq!(settings.monitoring.parsing_buckets, vec![1e-5, 1e-4]);
        assert_eq!(settings.mapping.hostname, "test");
        assert_eq!(settings.mapping.fields().len(), 30);
    }

    #[test]
    fn bad_values_and_unknown_keys_name_the_line() {
        let bad = RSPEC.replace("  mode: '0622'", "  mode: rw-r--r--");
        let errors = errors_of(&bad);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].ends_with(
                ":7: socket.mode: [logs-socket] mode = \"rw-r--r--\": expected an octal file mode like 0622"
            ),
            "{errors:?}"
        );
        let unknown = RSPEC.replace(
            "  batch_deadline: 100ms\nlogparser",
            "  batch_deadlin: 100ms\nlogparser",
        );
        assert_eq!(
            load_text(&unknown).unwrap_err(),
            "config.yaml:11: unknown key socket.batch_deadlin"
        );
        let no_brokers = RSPEC.replace("    bootstrap.servers: 127.0.0.1:9092\n", "    bootstrap.servers:\n");
        let errors = errors_of(&no_brokers);
        assert!(
            errors
                .iter()
                .any(|error| error.ends_with("bootstrap.servers is not set: the brokers to produce to")),
            "{errors:?}"
        );
        let refused = RSPEC.replace("compression.codec: snappy", "compression.codec: brotli");
        let errors = errors_of(&refused);
        assert!(
            errors
                .iter()
                .any(|error| error.contains("librdkafka refuses it") && error.contains("brotli")),
            "{errors:?}"
        );
    }
}
