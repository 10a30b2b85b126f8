//! `ep2 -f ep2.conf`: ElasticPyProxy's INI (`[haproxy]` and the section its
//! `orchestrator` names), with EP2's defaults, read into one backend of the
//! controller. An empty value counts as unset, as in EP2.
//!
//! EP2's runtime mode (`update_by_runtime`) is the controller's slot mode on
//! EP2's `server-template node …` slots, with the fixed `backend_port`. The
//! differences, all on purpose, are listed in the README: Consul's health
//! endpoint with `passing` and blocking queries instead of the catalog
//! polled every `sleep_before_next_run`, replies checked and failed changes
//! retried, servers drained before they go to maintenance, an empty answer
//! that never empties the backend, a real lock in `lock_dir`.

use std::path::PathBuf;
use std::time::Duration;

use super::haproxy::Sockets;
use super::plan::Mode;
use super::sources::consul::ConsulQuery;
use super::{BackendSettings, Settings, SourceSettings};
use crate::config::declare::{self, Parser};
use crate::config::{Config, ConfigError, DefaultValue, Key, Section};

/// The file `ep2` reads without `-f`.
pub const DEFAULT_CONFIG_FILE: &str = "/etc/ep2/ep2.conf";

const NOT_YET: &str = "EP2's start-up render and update_by_config are not done yet: HAProxy's configuration must hold the `server-template node …` slots";

/// `[haproxy] backend_name`.
pub const BACKEND_NAME: Key<String> = Key::new(
    "backend_name",
    super::HAPROXY_NAME,
    DefaultValue::Fallback("haproxynode"),
    "the backend whose slots follow the orchestrator",
);
/// `[haproxy] backend_port`.
pub const BACKEND_PORT: Key<u16> = Key::new(
    "backend_port",
    declare::PORT,
    DefaultValue::Fallback("6003"),
    "the port of every server",
);
/// `[haproxy] haproxy_socket_file`.
pub const SOCKET_FILE: Key<String> = Key::new(
    "haproxy_socket_file",
    declare::TEXT,
    DefaultValue::Fallback("/var/run/haproxy/haproxy.sock"),
    "comma-separated admin stats sockets; every one is changed",
);
/// `[haproxy] update_type`.
pub const UPDATE_TYPE: Key<usize> = Key::new(
    "update_type",
    Parser {
        kind: "update_by_runtime or update_by_config",
        parse: |text| declare::choice(text, &["update_by_runtime", "update_by_config"]),
    },
    DefaultValue::Fallback("update_by_runtime"),
    "`update_by_runtime`: the slots are re-addressed at run time (`update_by_config` is not supported yet)",
);
/// `[haproxy] orchestrator`.
pub const ORCHESTRATOR: Key<usize> = Key::new(
    "orchestrator",
    Parser {
        kind: "consul or aws",
        parse: |text| declare::choice(&text.to_ascii_lowercase(), &["consul", "aws"]),
    },
    DefaultValue::Fallback("aws"),
    "where the servers come from, and the section that says how (`aws` is not supported yet)",
);
/// `[haproxy] lock_dir`.
pub const LOCK_DIR: Key<PathBuf> = Key::new(
    "lock_dir",
    declare::PATH,
    DefaultValue::Fallback("/run"),
    "where the lock file `ep2.lock` is (EP2 never locked)",
);

/// `[haproxy]`, EP2's.
pub const HAPROXY: Section = Section::of(
    "haproxy",
    "ElasticPyProxy's `[haproxy]` (for `ep2 -f`)",
    &[
        &BACKEND_NAME,
        &BACKEND_PORT,
        &SOCKET_FILE,
        &UPDATE_TYPE,
        &ORCHESTRATOR,
        &LOCK_DIR,
        &Key::new(
            "sleep_before_next_run",
            declare::COUNT_FROM_0,
            DefaultValue::Fallback("5"),
            "seconds between EP2's polls",
        )
        .ignored("Consul's blocking queries bring each change at once"),
        &Key::new(
            "haproxy_config_file",
            declare::PATH,
            DefaultValue::Fallback("/etc/haproxy/haproxy.cfg"),
            "HAProxy's configuration",
        )
        .ignored(NOT_YET),
        &Key::new(
            "template_file",
            declare::PATH,
            DefaultValue::Fallback("/etc/ep2/ep2.template"),
            "the Jinja template of HAProxy's configuration",
        )
        .ignored(NOT_YET),
        &Key::new(
            "node_slots",
            declare::COUNT,
            DefaultValue::Fallback("50"),
            "how many slots to render",
        )
        .ignored(NOT_YET),
        &Key::new(
            "haproxy_binary",
            declare::PATH,
            DefaultValue::Fallback("/usr/sbin/haproxy"),
            "HAProxy, for reloads",
        )
        .ignored(NOT_YET),
        &Key::new(
            "start_by",
            declare::TEXT,
            DefaultValue::Fallback("binary"),
            "how to start and reload HAProxy",
        )
        .ignored(NOT_YET),
        &Key::new(
            "pid_file",
            declare::PATH,
            DefaultValue::Fallback("/run/haproxy.pid"),
            "HAProxy's pid file",
        )
        .ignored(NOT_YET),
        &Key::new(
            "service_name",
            declare::TEXT,
            DefaultValue::Fallback("haproxy"),
            "the systemd unit",
        )
        .ignored(NOT_YET),
        &Key::new(
            "backend_maxconn",
            declare::TEXT,
            DefaultValue::Unset("none"),
            "`maxconn` of rendered servers",
        )
        .ignored(NOT_YET),
        &Key::new(
            "check_interval",
            declare::TEXT,
            DefaultValue::Unset("none"),
            "`inter` of rendered servers",
        )
        .ignored(NOT_YET),
        &Key::new(
            "sleep_before_next_lock_attempt",
            declare::TEXT,
            DefaultValue::Fallback("5"),
            "EP2 read it and never used it",
        )
        .ignored("the lock is taken without waiting"),
        &Key::new(
            "log_file",
            declare::PATH,
            DefaultValue::Fallback("/var/log/ep2/ep2.log"),
            "EP2's log file",
        )
        .ignored("haproxide logs to standard error (the journal, under systemd)"),
    ],
);

/// `[consul] service_name`.
pub const SERVICE_NAME: Key<String> = Key::new(
    "service_name",
    declare::TEXT,
    DefaultValue::Unset("required"),
    "the Consul service",
);
/// `[consul] consul_ip`.
pub const CONSUL_IP: Key<String> = Key::new(
    "consul_ip",
    declare::TEXT,
    DefaultValue::Fallback("127.0.0.1"),
    "the Consul agent's address",
);
/// `[consul] consul_port`.
pub const CONSUL_PORT: Key<u16> = Key::new(
    "consul_port",
    declare::PORT,
    DefaultValue::Fallback("8500"),
    "the Consul agent's HTTP port",
);
/// `[consul] only_passing`.
pub const ONLY_PASSING: Key<bool> = Key::new(
    "only_passing",
    declare::BOOL,
    DefaultValue::Fallback("true"),
    "only instances whose checks pass (`False` means false, unlike in EP2)",
);
/// `[consul] tags`.
pub const TAGS: Key<String> = Key::new(
    "tags",
    declare::TEXT,
    DefaultValue::Unset("no tag filter"),
    "comma-separated tags every instance must have",
);

/// `[consul]`, EP2's.
pub const CONSUL: Section = Section::of(
    "consul",
    "ElasticPyProxy's `[consul]` (for `ep2 -f`)",
    &[&SERVICE_NAME, &CONSUL_IP, &CONSUL_PORT, &ONLY_PASSING, &TAGS],
);

/// The controller's settings from an EP2 configuration.
pub fn settings(config: &Config) -> Result<Settings, ConfigError> {
    let section = |message: &str| ConfigError::Section {
        location: crate::config::schema::section_location(config, HAPROXY.name),
        section: HAPROXY.name.to_owned(),
        message: message.to_owned(),
    };
    if config.get(&HAPROXY, &ORCHESTRATOR)? == 1 {
        return Err(section("orchestrator = aws is not supported yet; use consul"));
    }
    if config.get(&HAPROXY, &UPDATE_TYPE)? == 1 {
        return Err(section(
            "update_type = update_by_config is not supported yet; use update_by_runtime",
        ));
    }
    let sockets: Vec<haproxy::Endpoint> = config
        .get(&HAPROXY, &SOCKET_FILE)?
        .split(',')
        .map(str::trim)
        .filter(|path| !path.is_empty())
        .map(|path| haproxy::Endpoint::Unix(PathBuf::from(path)))
        .collect();
    let query = ConsulQuery {
        address: format!(
            "{}:{}",
            config.get(&CONSUL, &CONSUL_IP)?,
            config.get(&CONSUL, &CONSUL_PORT)?
        ),
        service: config.get(&CONSUL, &SERVICE_NAME)?,
        passing: config.get(&CONSUL, &ONLY_PASSING)?,
        tags: config
            .get_opt(&CONSUL, &TAGS)?
            .map(|tags| {
                tags.split(',')
                    .map(str::trim)
                    .filter(|tag| !tag.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default(),
        datacenter: None,
        token: std::env::var("CONSUL_HTTP_TOKEN").ok(),
        wait: Duration::from_secs(30),
        poll_interval: Duration::from_secs(5),
        timeout: Duration::from_secs(10),
    };
    let backend = BackendSettings {
        section: "haproxy".into(),
        backend: config.get(&HAPROXY, &BACKEND_NAME)?,
        sockets: Sockets::List(sockets),
        mode: Some(Mode::Slots),
        server_prefix: "srv_".into(),
        slot_prefix: "node".into(),
        server_options: String::new(),
        port: Some(config.get(&HAPROXY, &BACKEND_PORT)?),
        min_servers: 1,
        max_leave: 1.0,
        drain_timeout: Duration::from_secs(30),
        state_file: None,
        source: SourceSettings::Consul(query),
    };
    Ok(Settings {
        lock_file: config.get(&HAPROXY, &LOCK_DIR)?.join("ep2.lock"),
        haproxy_poll: Duration::from_millis(250),
        timeout: Duration::from_secs(10),
        backends: vec![backend],
    })
}
