//! The sections `logs` reads, declared once, and the typed [`Settings`]
//! they give. HAProxyKafka's YAML file lands in the same sections
//! ([`super::haproxykafka`]), so both are checked and read the same way.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::config::declare::{self, Entries, Parser};
use crate::config::{Config, ConfigError, DefaultValue, Key, LOGLEVEL, Section, schema};

use super::fields::{Field, Mapping, wikimedia_fields};
use super::time::{DateConversion, GoLayout};

/// A file mode in octal (`0622`).
const FILE_MODE: Parser<u32> = Parser {
    kind: "octal mode",
    parse: |text| {
        u32::from_str_radix(text.trim(), 8)
            .ok()
            .filter(|mode| *mode <= 0o7777)
            .ok_or_else(|| "expected an octal file mode like 0622".into())
    },
};

/// Histogram bucket bounds in seconds, rising.
const BUCKETS: Parser<Vec<f64>> = Parser {
    kind: "seconds, rising",
    parse: |text| {
        let bounds = text
            .split([' ', ','])
            .filter(|word| !word.is_empty())
            .map(|word| {
                word.parse::<f64>()
                    .ok()
                    .filter(|bound| bound.is_finite() && *bound > 0.0)
                    .ok_or_else(|| format!("{word:?} is not a number of seconds more than 0"))
            })
            .collect::<Result<Vec<f64>, String>>()?;
        if bounds.is_empty() || bounds.windows(2).any(|pair| pair[0] >= pair[1]) {
            return Err("expected one or more bucket bounds, each more than the one before".into());
        }
        Ok(bounds)
    },
};

const GO_LAYOUT: Parser<GoLayout> = Parser {
    kind: "Go time layout",
    parse: GoLayout::new,
};

const TIME_ZONE: Parser<jiff::tz::TimeZone> = Parser {
    kind: "time zone",
    parse: |text| {
        jiff::tz::TimeZone::get(text.trim())
            .map_err(|_| format!("unknown time zone {:?} (UTC, Europe/Paris, …)", text.trim()))
    },
};

pub(super) const WORKERS: Key<usize> = Key::new(
    "workers",
    declare::COUNT,
    DefaultValue::Builtin("2"),
    "threads that parse datagrams into JSON",
);
pub(super) const QUEUE_BATCHES: Key<usize> = Key::new(
    "queue-batches",
    declare::COUNT,
    DefaultValue::Builtin("64"),
    "batches each stage's queue holds; a batch that finds its queue full is dropped and counted",
);
pub(super) const MESSAGE_BUFFER: Key<f64> = Key::new(
    "message-buffer",
    declare::POSITIVE_NUMBER,
    DefaultValue::Unset("none"),
    "HAProxyKafka's error-channel size",
)
.ignored("haproxide has no error channel: each stage's queue is queue-batches long");
pub(super) const SDID: Key<String> = Key::new(
    "sdid",
    declare::TEXT,
    DefaultValue::Builtin("haproxykafka@0"),
    "the SD-ID of HAProxy's log-format-sd whose parameters are read",
);
pub(super) const HOSTNAME: Key<String> = Key::new(
    "hostname",
    declare::TEXT,
    DefaultValue::Unset("the system's host name"),
    "the `hostname` every message carries",
);

/// `[logs]`.
pub const SECTION: Section = Section::of(
    "logs",
    "HAProxy's request logs to Kafka (`haproxide logs`, `haproxykafka`)",
    &[&LOGLEVEL, &WORKERS, &QUEUE_BATCHES, &MESSAGE_BUFFER, &SDID, &HOSTNAME],
);

pub(super) const SOCKET_PATH: Key<PathBuf> = Key::new(
    "path",
    declare::PATH,
    DefaultValue::Builtin("/run/haproxykafka/haproxykafka.sock"),
    "the unix datagram socket HAProxy logs to (`log PATH len 8192 format rfc5424 …`); a stale one is replaced",
);
pub(super) const SOCKET_MODE: Key<u32> = Key::new(
    "mode",
    FILE_MODE,
    DefaultValue::Builtin("0622"),
    "the socket's permissions (HAProxy's user needs write)",
);
pub(super) const SOCKET_USER: Key<String> = Key::new(
    "user",
    declare::TEXT,
    DefaultValue::Unset("the daemon's own"),
    "the socket's owner (needs CAP_CHOWN)",
);
pub(super) const SOCKET_GROUP: Key<String> = Key::new(
    "group",
    declare::TEXT,
    DefaultValue::Unset("the daemon's own"),
    "the socket's group (needs CAP_CHOWN)",
);
pub(super) const RECEIVE_BUFFER: Key<u64> = Key::new(
    "receive-buffer",
    declare::SIZE,
    DefaultValue::Builtin("32M"),
    "SO_RCVBUF: datagrams the kernel holds while the reader is busy (beyond net.core.rmem_max it needs CAP_NET_ADMIN)",
);
pub(super) const MAX_DATAGRAM: Key<u64> = Key::new(
    "max-datagram",
    declare::SIZE,
    DefaultValue::Builtin("8192"),
    "the longest datagram read whole (HAProxy's `len`); a longer one is cut, counted and sent to the DLQ",
);
pub(super) const SOCKET_BATCH_SIZE: Key<usize> = Key::new(
    "batch-size",
    declare::COUNT,
    DefaultValue::Builtin("1024"),
    "datagrams handed to the parsers at once",
);
pub(super) const SOCKET_BATCH_DEADLINE: Key<Duration> = Key::new(
    "batch-deadline",
    declare::DURATION,
    DefaultValue::Builtin("100ms"),
    "how long a batch that is not full waits for more datagrams",
);

/// `[logs-socket]`.
pub const SOCKET: Section = Section::of(
    "logs-socket",
    "the socket HAProxy logs to, and how it is read",
    &[
        &SOCKET_PATH,
        &SOCKET_MODE,
        &SOCKET_USER,
        &SOCKET_GROUP,
        &RECEIVE_BUFFER,
        &MAX_DATAGRAM,
        &SOCKET_BATCH_SIZE,
        &SOCKET_BATCH_DEADLINE,
    ],
);

const IGNORED_BATCH_SIZE: Key<usize> = Key::new(
    "batch-size",
    declare::COUNT,
    DefaultValue::Unset("none"),
    "HAProxyKafka's batch size of this stage",
)
.ignored("each stage hands on the batches it receives; [logs-socket] batch-size sets their size");
const IGNORED_BATCH_DEADLINE: Key<Duration> = Key::new(
    "batch-deadline",
    declare::DURATION,
    DefaultValue::Unset("none"),
    "HAProxyKafka's batch deadline of this stage",
)
.ignored("each stage hands on the batches it receives; [logs-socket] batch-deadline bounds their wait");

/// `[logs-parser]`: HAProxyKafka's `logparser` keys, accepted.
pub const PARSER: Section = Section::of(
    "logs-parser",
    "HAProxyKafka's logparser batching (accepted, without effect)",
    &[&IGNORED_BATCH_SIZE, &IGNORED_BATCH_DEADLINE],
);

pub(super) const TOPIC: Key<String> = Key::new(
    "topic",
    declare::TEXT,
    DefaultValue::Unset("none: it must be set"),
    "the topic of the JSON messages",
);
pub(super) const DLQ_TOPIC: Key<String> = Key::new(
    "dlq-topic",
    declare::TEXT,
    DefaultValue::Unset("none: it must be set"),
    "the dead-letter topic: each datagram the mapping refuses, as it came, with the reason in its `error` header",
);
pub(super) const FLUSH_TIMEOUT: Key<Duration> = Key::new(
    "flush-timeout",
    declare::DURATION,
    DefaultValue::Builtin("1s"),
    "how long a stop waits for Kafka to take what is queued",
);

/// `[logs-kafka]`.
pub const KAFKA: Section = Section::of(
    "logs-kafka",
    "where messages go; librdkafka's own properties are in [logs-rdkafka]",
    &[
        &TOPIC,
        &DLQ_TOPIC,
        &FLUSH_TIMEOUT,
        &IGNORED_BATCH_SIZE,
        &IGNORED_BATCH_DEADLINE,
    ],
)
.with_rules(|config| match has_logs_sections(config) {
    true => kafka_problems(config),
    false => Vec::new(),
});

/// Whether the configuration's files have `logs` sections: only such a
/// configuration is held to them by `check-config` (a `pull` host's file
/// has none); `logs` itself checks the others when it starts.
fn has_logs_sections(config: &Config) -> bool {
    config.ini().section_names().any(|name| {
        name.starts_with("logs")
            && config
                .ini()
                .section(name)
                .is_some_and(|section| section.origin.is_some())
    })
}

/// What `[logs-kafka]` and `[logs-rdkafka]` must have: brokers, both topics,
/// and properties librdkafka takes.
fn kafka_problems(config: &Config) -> Vec<ConfigError> {
    let has_brokers = config
        .ini()
        .section(RDKAFKA.name)
        .and_then(|section| section.entry("bootstrap.servers"))
        .is_some_and(|entry| !entry.value.trim().is_empty());
    let mut problems = Vec::new();
    if !has_brokers {
        problems.push(ConfigError::Section {
            location: schema::section_location(config, RDKAFKA.name),
            section: RDKAFKA.name.to_owned(),
            message: "bootstrap.servers is not set: the brokers to produce to".into(),
        });
    }
    for key in [&TOPIC, &DLQ_TOPIC] {
        if let Err(problem) = config.get(&KAFKA, key) {
            problems.push(problem);
        }
    }
    match rdkafka_config(config) {
        Ok(client) => problems.extend(crate::kafka::refusal(config, RDKAFKA.name, &client)),
        Err(problem) => problems.push(problem),
    }
    problems
}

pub(super) const BUFFER_DIR: Key<PathBuf> = Key::new(
    "dir",
    declare::PATH,
    DefaultValue::Builtin("/var/lib/haproxykafka/buffer"),
    "where messages Kafka does not take wait, in segment files, to be replayed oldest first",
);
pub(super) const BUFFER_MAX_SIZE: Key<u64> = Key::new(
    "max-size",
    declare::SIZE,
    DefaultValue::Builtin("1G"),
    "the disk buffer's limit: what finds it full is dropped and counted (`channel=\"disk-buffer\"`)",
);
pub(super) const BUFFER_SEGMENT_SIZE: Key<u64> = Key::new(
    "segment-size",
    declare::SIZE,
    DefaultValue::Builtin("4M"),
    "the size at which a segment file is closed and the next begun; a replayed segment is removed whole, and is in memory while it is replayed",
);

/// `[logs-buffer]`.
pub const BUFFER: Section = Section::of(
    "logs-buffer",
    "the disk buffer for what Kafka does not take (an outage, a full librdkafka queue, a stop)",
    &[&BUFFER_DIR, &BUFFER_MAX_SIZE, &BUFFER_SEGMENT_SIZE],
);

/// `[logs-rdkafka]`: librdkafka's properties, passed as they are.
pub const RDKAFKA: Section = Section::of_entries(
    "logs-rdkafka",
    "librdkafka's producer properties, passed as they are (HAProxyKafka's kafka.rdkafka)",
    Entries {
        doc: "a librdkafka property (`bootstrap.servers`, `acks`, `compression.codec`, …) = its value; \
              unless given, `queue.buffering.max.messages = 20000` and `queue.buffering.max.kbytes = 8192` \
              (librdkafka's own 100,000 and 1 GB cost memory; beyond them messages wait in the disk buffer; \
              a broker slow to acknowledge needs more)",
        check_key: crate::kafka::check_property_name,
        check: |_| Ok(()),
    },
);

pub(super) const ENABLE_PROMETHEUS: Key<bool> = Key::new(
    "enable-prometheus",
    declare::BOOL,
    DefaultValue::Builtin("true"),
    "serve /metrics (Prometheus text) and /healthz on server-bind",
);
pub(super) const SERVER_BIND: Key<SocketAddr> = Key::new(
    "server-bind",
    declare::LISTEN_ADDRESS,
    DefaultValue::Builtin("127.0.0.1:9341"),
    "where /metrics and /healthz are served (`:9341` is every address, as in HAProxyKafka)",
);
pub(super) const PARSING_BUCKETS: Key<Vec<f64>> = Key::new(
    "prometheus-parsing-buckets",
    BUCKETS,
    DefaultValue::Builtin("5e-6 1e-5 5e-5 1e-4 5e-4 1e-3 5e-3"),
    "bucket bounds of the per-line parse-time histogram, in seconds",
);
pub(super) const PROCESSING_BUCKETS: Key<Vec<f64>> = Key::new(
    "prometheus-processing-buckets",
    BUCKETS,
    DefaultValue::Builtin("1e-6 5e-6 1e-5 2e-5 3e-5 5e-5 1e-4 5e-4 1e-3"),
    "bucket bounds of the per-line processing-time histogram (receipt to hand-over to Kafka), in seconds",
);
const ENABLE_PPROF: Key<bool> = Key::new(
    "enable-pprof",
    declare::BOOL,
    DefaultValue::Unset("none"),
    "HAProxyKafka's Go profiler",
)
.ignored("there is no Go profiler; /healthz says whether every stage makes progress");
const PROMETHEUS_PREFIX: Key<String> = Key::new(
    "prometheus-prefix",
    declare::TEXT,
    DefaultValue::Unset("none"),
    "HAProxyKafka's metric prefix (unused there too)",
)
.ignored("the metric names are haproxykafka_…, as the Wikimedia alerts query them");

/// `[logs-monitoring]`.
pub const MONITORING: Section = Section::of(
    "logs-monitoring",
    "the metrics and health endpoint",
    &[
        &ENABLE_PROMETHEUS,
        &SERVER_BIND,
        &PARSING_BUCKETS,
        &PROCESSING_BUCKETS,
        &ENABLE_PPROF,
        &PROMETHEUS_PREFIX,
    ],
);

pub(super) const HAPROXY_FORMAT: Key<GoLayout> = Key::new(
    "haproxy-format",
    GO_LAYOUT,
    DefaultValue::Builtin("02/Jan/2006:15:04:05.000"),
    "how HAProxy writes a date field (`%tr`), in Go's layout notation",
);
pub(super) const DATE_FORMAT: Key<GoLayout> = Key::new(
    "date-format",
    GO_LAYOUT,
    DefaultValue::Builtin("2006-01-02T15:04:05Z"),
    "how a message writes it, in Go's layout notation",
);
pub(super) const DATE_TZ: Key<jiff::tz::TimeZone> = Key::new(
    "date-tz",
    TIME_ZONE,
    DefaultValue::Builtin("UTC"),
    "the time zone a message's date is written in",
);

/// `[logs-transform]`: HAProxyKafka's `transform_rules`.
pub const TRANSFORM: Section = Section::of(
    "logs-transform",
    "date fields: HAProxy's wall time (placed with the datagram's own UTC offset) to the message's layout and zone",
    &[&HAPROXY_FORMAT, &DATE_FORMAT, &DATE_TZ],
);

/// `[logs-fields]`: the mapping, when not Wikimedia's.
pub const FIELDS: Section = Section::of_entries(
    "logs-fields",
    "the JSON keys of a message, in order, when not Wikimedia's webrequest keys (the README lists those)",
    Entries {
        doc: "the JSON key = `PARAM TYPE [required] [scale=N] [if-empty=TEXT]`: the SD parameter, string, int, float or date",
        check_key: |key| {
            if key == "hostname" {
                return Err("hostname is the configured host name; map the parameter to another key".into());
            }
            Ok(())
        },
        check: |spec| Field::parse("key", spec).map(drop),
    },
);

/// The socket and how it is read.
#[derive(Debug, Clone)]
pub struct SocketSettings {
    /// Its path.
    pub path: PathBuf,
    /// Its permissions.
    pub mode: u32,
    /// Its owner, by name.
    pub user: Option<String>,
    /// Its group, by name.
    pub group: Option<String>,
    /// SO_RCVBUF, bytes.
    pub receive_buffer: usize,
    /// The longest datagram read whole.
    pub max_datagram: usize,
    /// Datagrams per batch.
    pub batch_size: usize,
    /// How long a partial batch waits.
    pub batch_deadline: Duration,
}

/// The disk buffer.
#[derive(Debug, Clone)]
pub struct BufferSettings {
    /// Its directory.
    pub dir: PathBuf,
    /// Its limit, bytes.
    pub max_bytes: u64,
    /// Where a segment ends, bytes.
    pub segment_bytes: u64,
}

/// Where messages go.
#[derive(Debug, Clone)]
pub struct KafkaSettings {
    /// The JSON messages' topic.
    pub topic: String,
    /// The dead-letter topic.
    pub dlq_topic: String,
    /// How long a stop waits for Kafka.
    pub flush_timeout: Duration,
    /// librdkafka's properties.
    pub client: rdkafka::ClientConfig,
    /// What Kafka does not take waits here.
    pub buffer: BufferSettings,
}

/// The metrics endpoint.
#[derive(Debug, Clone)]
pub struct MonitoringSettings {
    /// Whether it is served.
    pub enabled: bool,
    /// Where.
    pub bind: SocketAddr,
    /// Parse-time histogram bounds, seconds.
    pub parsing_buckets: Vec<f64>,
    /// Processing-time histogram bounds, seconds.
    pub processing_buckets: Vec<f64>,
}

/// Everything `logs` runs with.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Parser threads.
    pub workers: usize,
    /// Batches per stage queue.
    pub queue_batches: usize,
    /// The socket.
    pub socket: SocketSettings,
    /// Datagram → JSON.
    pub mapping: Mapping,
    /// Kafka.
    pub kafka: KafkaSettings,
    /// Metrics.
    pub monitoring: MonitoringSettings,
}

/// librdkafka properties set unless `[logs-rdkafka]` sets them: librdkafka's
/// own queue (100,000 messages or 1 GB) lets a slow broker cost hundreds of
/// MB, while past this one messages wait in the disk buffer, which costs no
/// memory (8 MB of queue cost some 25 MB of RSS at 50,000 lines/s in
/// `bench/logs.sh`, 16 MB some 45 MB). A broker slow to acknowledge needs a
/// larger one to keep up without the buffer.
pub const RDKAFKA_DEFAULTS: &[(&str, &str)] = &[
    ("queue.buffering.max.messages", "20000"),
    ("queue.buffering.max.kbytes", "8192"),
];

fn rdkafka_config(config: &Config) -> Result<rdkafka::ClientConfig, ConfigError> {
    crate::kafka::client_config(config, RDKAFKA.name, "", RDKAFKA_DEFAULTS)
}

fn system_hostname() -> String {
    nix::unistd::gethostname()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "localhost".to_owned())
}

impl Settings {
    /// Reads the sections of `logs`.
    pub fn from_config(config: &Config) -> anyhow::Result<Settings> {
        // A file with `logs` sections had these checked with the rest.
        if !has_logs_sections(config)
            && let Some(problem) = kafka_problems(config).into_iter().next()
        {
            return Err(problem.into());
        }
        let size = |section: &Section, key: &Key<u64>| -> anyhow::Result<usize> {
            Ok(usize::try_from(config.get(section, key)?)?)
        };
        let socket = SocketSettings {
            path: config.get(&SOCKET, &SOCKET_PATH)?,
            mode: config.get(&SOCKET, &SOCKET_MODE)?,
            user: config.get_opt(&SOCKET, &SOCKET_USER)?,
            group: config.get_opt(&SOCKET, &SOCKET_GROUP)?,
            receive_buffer: size(&SOCKET, &RECEIVE_BUFFER)?,
            max_datagram: size(&SOCKET, &MAX_DATAGRAM)?.max(64),
            batch_size: config.get(&SOCKET, &SOCKET_BATCH_SIZE)?,
            batch_deadline: config.get(&SOCKET, &SOCKET_BATCH_DEADLINE)?,
        };
        let fields = match config.ini().section(FIELDS.name) {
            Some(section) if !section.entries.is_empty() => section
                .entries
                .iter()
                .map(|entry| {
                    let spec = config.string(FIELDS.name, &entry.key)?.unwrap_or_default();
                    Field::parse(&entry.key, &spec).map_err(|message| {
                        anyhow::anyhow!("{}: [{}] {}: {message}", entry.origin, FIELDS.name, entry.key)
                    })
                })
                .collect::<anyhow::Result<Vec<Field>>>()?,
            _ => wikimedia_fields(),
        };
        let dates = DateConversion::new(
            config.get(&TRANSFORM, &HAPROXY_FORMAT)?,
            config.get(&TRANSFORM, &DATE_FORMAT)?,
            config.get(&TRANSFORM, &DATE_TZ)?,
            jiff::tz::TimeZone::system(),
        );
        let hostname = config.get_opt(&SECTION, &HOSTNAME)?.unwrap_or_else(system_hostname);
        let mapping = Mapping::new(config.get(&SECTION, &SDID)?, hostname, fields, dates)
            .map_err(|message| anyhow::anyhow!("[{}]: {message}", FIELDS.name))?;
        let kafka = KafkaSettings {
            topic: config.get(&KAFKA, &TOPIC)?,
            dlq_topic: config.get(&KAFKA, &DLQ_TOPIC)?,
            flush_timeout: config.get(&KAFKA, &FLUSH_TIMEOUT)?,
            client: rdkafka_config(config)?,
            buffer: BufferSettings {
                dir: config.get(&BUFFER, &BUFFER_DIR)?,
                max_bytes: config.get(&BUFFER, &BUFFER_MAX_SIZE)?,
                segment_bytes: config.get(&BUFFER, &BUFFER_SEGMENT_SIZE)?,
            },
        };
        let monitoring = MonitoringSettings {
            enabled: config.get(&MONITORING, &ENABLE_PROMETHEUS)?,
            bind: config.get(&MONITORING, &SERVER_BIND)?,
            parsing_buckets: config.get(&MONITORING, &PARSING_BUCKETS)?,
            processing_buckets: config.get(&MONITORING, &PROCESSING_BUCKETS)?,
        };
        Ok(Settings {
            workers: config.get(&SECTION, &WORKERS)?,
            queue_batches: config.get(&SECTION, &QUEUE_BATCHES)?,
            socket,
            mapping,
            kafka,
            monitoring,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn librdkafkas_queue_is_bounded_unless_the_file_says_otherwise() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("logs.conf");
        std::fs::write(
            &file,
            "[logs-rdkafka]\nqueue.buffering.max.messages = 500\nacks = all\n",
        )
        .unwrap();
        let client = rdkafka_config(&Config::load(Some(&file), None).unwrap()).unwrap();
        assert_eq!(client.get("queue.buffering.max.messages"), Some("500"));
        assert_eq!(client.get("queue.buffering.max.kbytes"), Some("8192"));
        assert_eq!(client.get("acks"), Some("all"));
        let client = rdkafka_config(&Config::builtin()).unwrap();
        for (key, value) in RDKAFKA_DEFAULTS {
            assert_eq!(client.get(key), Some(*value), "{key}");
        }
    }

    /// The unit under dist/ lets the daemon write where its defaults are.
    #[test]
    fn the_systemd_unit_allows_the_default_socket_and_buffer_directories() {
        let unit = include_str!("../../../../dist/systemd/haproxide-logs.service");
        let builtin = |key: &Key<PathBuf>| match key.default {
            DefaultValue::Builtin(path) => PathBuf::from(path),
            _ => PathBuf::new(),
        };
        crate::runtime::assert_unit_writes(unit, [builtin(&SOCKET_PATH), builtin(&BUFFER_DIR)]);
        for line in ["Type=notify", "WatchdogSec=30", "CapabilityBoundingSet=CAP_CHOWN"] {
            assert!(unit.lines().any(|got| got == line), "{line}");
        }
    }
}
