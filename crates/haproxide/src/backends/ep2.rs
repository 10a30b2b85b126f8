//! `ep2 -f ep2.conf`: ElasticPyProxy's INI (`[haproxy]` and the section its
//! `orchestrator` names), with EP2's defaults, read into one backend of the
//! controller. An empty value counts as unset, as in EP2.
//!
//! EP2's runtime mode (`update_by_runtime`) is the controller's slot mode on
//! EP2's `server-template node …` slots, with the fixed `backend_port`.
//! Its config mode (`update_by_config`) is the template path: EP2's template
//! rendered into `haproxy_config_file` with `nodes` as EP2 wrote it, then a
//! validated reload by `start_by` (`binary`: a new `-D -p -sf -x` process
//! from `haproxy_binary`, `systemd`: `systemctl reload service_name`).
//! `orchestrator = aws` reads `[aws]`. The differences, all on purpose, are
//! listed in the README: Consul's health endpoint with `passing` and
//! blocking queries instead of the catalog polled every
//! `sleep_before_next_run`, only InService and Healthy instances of the
//! groups, replies checked and failed changes retried, servers drained
//! before they go to maintenance, an empty answer that never empties the
//! backend, rendered files validated before they replace the old one,
//! server names that stay across renders (`node_ADDRESS_PORT`), a real lock
//! in `lock_dir`.

use std::path::PathBuf;
use std::time::Duration;

use super::haproxy::Sockets;
use super::plan::Mode;
use super::sources::aws::credentials::CredentialSettings;
use super::sources::aws::{AwsQuery, IpType};
use super::sources::consul::ConsulQuery;
use super::template::TemplateSettings;
use super::{BackendSettings, Settings, SourceSettings};
use crate::config::declare::{self, Parser};
use crate::config::{Config, ConfigError, DefaultValue, Key, Section};
use crate::reload::Method;

/// The file `ep2` reads without `-f`.
pub const DEFAULT_CONFIG_FILE: &str = "/etc/ep2/ep2.conf";

const RUNTIME_SLOTS: &str = "in update_by_runtime, HAProxy's configuration must hold the `server-template node …` slots: there is no start-up render";

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
    "`update_by_runtime`: the slots are re-addressed at run time; `update_by_config`: the template is rendered into the configuration and HAProxy reloaded",
);
/// `[haproxy] orchestrator`.
pub const ORCHESTRATOR: Key<usize> = Key::new(
    "orchestrator",
    Parser {
        kind: "consul or aws",
        parse: |text| declare::choice(&text.to_ascii_lowercase(), &["consul", "aws"]),
    },
    DefaultValue::Fallback("aws"),
    "where the servers come from, and the section that says how",
);
/// `[haproxy] lock_dir`.
pub const LOCK_DIR: Key<PathBuf> = Key::new(
    "lock_dir",
    declare::PATH,
    DefaultValue::Fallback("/run"),
    "where the lock file `ep2.lock` is (EP2 never locked)",
);

/// `[haproxy] sleep_before_next_run`.
pub const SLEEP_BEFORE_NEXT_RUN: Key<u32> = Key::new(
    "sleep_before_next_run",
    declare::COUNT_FROM_0,
    DefaultValue::Fallback("5"),
    "seconds between polls of AWS (Consul's blocking queries bring each change at once instead)",
);
/// `[haproxy] haproxy_config_file`.
pub const CONFIG_FILE: Key<PathBuf> = Key::new(
    "haproxy_config_file",
    declare::PATH,
    DefaultValue::Fallback("/etc/haproxy/haproxy.cfg"),
    "HAProxy's configuration, written from the template in update_by_config",
);
/// `[haproxy] template_file`.
pub const TEMPLATE_FILE: Key<PathBuf> = Key::new(
    "template_file",
    declare::PATH,
    DefaultValue::Fallback("/etc/ep2/ep2.template"),
    "the Jinja template of HAProxy's configuration (`{{nodes}}`)",
);
/// `[haproxy] haproxy_binary`.
pub const HAPROXY_BINARY: Key<PathBuf> = Key::new(
    "haproxy_binary",
    declare::PATH,
    DefaultValue::Fallback("/usr/sbin/haproxy"),
    "HAProxy, for validation and binary reloads",
);
/// `[haproxy] start_by`.
pub const START_BY: Key<usize> = Key::new(
    "start_by",
    Parser {
        kind: "binary or systemd",
        parse: |text| declare::choice(text, &["binary", "systemd"]),
    },
    DefaultValue::Fallback("binary"),
    "how HAProxy is reloaded in update_by_config: a new `-D -p -sf -x` process, or `systemctl reload`",
);
/// `[haproxy] pid_file`.
pub const PID_FILE: Key<PathBuf> = Key::new(
    "pid_file",
    declare::PATH,
    DefaultValue::Fallback("/run/haproxy.pid"),
    "HAProxy's pid file (start_by = binary)",
);
/// `[haproxy] service_name`.
pub const SERVICE_NAME_UNIT: Key<String> = Key::new(
    "service_name",
    declare::TEXT,
    DefaultValue::Fallback("haproxy"),
    "the systemd unit (start_by = systemd)",
);
/// `[haproxy] backend_maxconn`.
pub const BACKEND_MAXCONN: Key<String> = Key::new(
    "backend_maxconn",
    super::SERVER_KEYWORDS,
    DefaultValue::Unset("none"),
    "`maxconn` of rendered servers",
);
/// `[haproxy] check_interval`.
pub const CHECK_INTERVAL: Key<String> = Key::new(
    "check_interval",
    super::SERVER_KEYWORDS,
    DefaultValue::Unset("none"),
    "`inter` of rendered servers",
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
        &SLEEP_BEFORE_NEXT_RUN,
        &CONFIG_FILE,
        &TEMPLATE_FILE,
        &Key::new(
            "node_slots",
            declare::COUNT,
            DefaultValue::Fallback("50"),
            "how many slots to render",
        )
        .ignored(RUNTIME_SLOTS),
        &HAPROXY_BINARY,
        &START_BY,
        &PID_FILE,
        &SERVICE_NAME_UNIT,
        &BACKEND_MAXCONN,
        &CHECK_INTERVAL,
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

/// `[aws] asg_name`.
pub const ASG_NAME: Key<Vec<String>> = Key::new(
    "asg_name",
    super::AWS_GROUPS.parser,
    DefaultValue::Unset("required"),
    "comma-separated Auto Scaling groups",
);
/// `[aws] region_name`.
pub const REGION_NAME: Key<String> = Key::new(
    "region_name",
    declare::TEXT,
    DefaultValue::Unset("$AWS_REGION, else $AWS_DEFAULT_REGION"),
    "the groups' region",
);
/// `[aws] ip_type`.
pub const IP_TYPE: Key<String> = Key::new(
    "ip_type",
    declare::TEXT,
    DefaultValue::Unset("public"),
    "`private` for private addresses; anything else public ones, as in EP2",
);
/// `[aws] aws_access_key_id`.
pub const ACCESS_KEY_ID: Key<String> = Key::new(
    "aws_access_key_id",
    declare::TEXT,
    DefaultValue::Unset("the environment, the shared files, else the instance role"),
    "the access key",
);
/// `[aws] aws_secret_access_key`.
pub const SECRET_ACCESS_KEY: Key<String> = Key::new(
    "aws_secret_access_key",
    declare::TEXT,
    DefaultValue::Unset("see aws_access_key_id"),
    "the secret key",
);
/// `[aws] endpoint_url` (haproxide's, EP2 has none).
pub const ENDPOINT_URL: Key<String> = Key::new(
    "endpoint_url",
    super::AWS_ENDPOINT.parser,
    DefaultValue::Fallback("https://{service}.{region}.amazonaws.com"),
    "where the Auto Scaling and EC2 APIs are (haproxide's key: a VPC endpoint, a test server)",
);

/// `[aws]`, EP2's.
pub const AWS: Section = Section::of(
    "aws",
    "ElasticPyProxy's `[aws]` (for `ep2 -f`)",
    &[
        &ASG_NAME,
        &REGION_NAME,
        &IP_TYPE,
        &ACCESS_KEY_ID,
        &SECRET_ACCESS_KEY,
        &ENDPOINT_URL,
    ],
);

/// The controller's settings from an EP2 configuration.
pub fn settings(config: &Config) -> Result<Settings, ConfigError> {
    let sockets: Vec<haproxy::Endpoint> = config
        .get(&HAPROXY, &SOCKET_FILE)?
        .split(',')
        .map(str::trim)
        .filter(|path| !path.is_empty())
        .map(|path| haproxy::Endpoint::Unix(PathBuf::from(path)))
        .collect();
    let source = match config.get(&HAPROXY, &ORCHESTRATOR)? {
        1 => SourceSettings::Aws(aws_query(config)?),
        _ => SourceSettings::Consul(consul_query(config)?),
    };
    let by_config = config.get(&HAPROXY, &UPDATE_TYPE)? == 1;
    let template = if by_config {
        Some(template_settings(config, &sockets)?)
    } else {
        None
    };
    let option = |key: &Key<String>, keyword: &str| -> Result<String, ConfigError> {
        Ok(config
            .get_opt(&HAPROXY, key)?
            .map(|value| format!("{keyword} {value}"))
            .unwrap_or_default())
    };
    // EP2's line: `check ` + inter + ` ` + maxconn, trailing spaces kept.
    let nodes_options = format!(
        "check {} {}",
        option(&CHECK_INTERVAL, "inter")?,
        option(&BACKEND_MAXCONN, "maxconn")?
    );
    let backend = BackendSettings {
        section: "haproxy".into(),
        backend: config.get(&HAPROXY, &BACKEND_NAME)?,
        sockets: Sockets::List(sockets),
        mode: Some(if by_config { Mode::Dynamic } else { Mode::Slots }),
        template: by_config,
        server_prefix: "node_".into(),
        slot_prefix: "node".into(),
        server_options: String::new(),
        port: Some(config.get(&HAPROXY, &BACKEND_PORT)?),
        min_servers: 1,
        max_leave: 1.0,
        drain_timeout: Duration::from_secs(30),
        state_file: None,
        source,
        ep2_nodes_options: Some(nodes_options),
    };
    Ok(Settings {
        lock_file: config.get(&HAPROXY, &LOCK_DIR)?.join("ep2.lock"),
        haproxy_poll: Duration::from_millis(250),
        timeout: Duration::from_secs(10),
        backends: vec![backend],
        template,
    })
}

fn consul_query(config: &Config) -> Result<ConsulQuery, ConfigError> {
    Ok(ConsulQuery {
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
    })
}

fn aws_query(config: &Config) -> Result<AwsQuery, ConfigError> {
    let region = match config.get_opt(&AWS, &REGION_NAME)? {
        Some(region) => region,
        None => super::region_from_environment().ok_or_else(|| ConfigError::Section {
            location: crate::config::schema::section_location(config, AWS.name),
            section: AWS.name.to_owned(),
            message: "region_name is needed (or AWS_REGION in the environment)".into(),
        })?,
    };
    let configured = match (
        config.get_opt(&AWS, &ACCESS_KEY_ID)?,
        config.get_opt(&AWS, &SECRET_ACCESS_KEY)?,
    ) {
        (Some(id), Some(secret)) => Some((id, secret)),
        _ => None,
    };
    Ok(AwsQuery {
        groups: config.get(&AWS, &ASG_NAME)?,
        region,
        endpoint: config.get(&AWS, &ENDPOINT_URL)?,
        // EP2: `private`, else the public address.
        ip_type: if config.get_opt(&AWS, &IP_TYPE)?.as_deref() == Some("private") {
            IpType::Private
        } else {
            IpType::Public
        },
        credentials: CredentialSettings {
            configured,
            profile: None,
            imds_endpoint: None,
        },
        poll_interval: Duration::from_secs(u64::from(config.get(&HAPROXY, &SLEEP_BEFORE_NEXT_RUN)?).max(1)),
        timeout: Duration::from_secs(10),
    })
}

/// update_by_config: EP2's template into `haproxy_config_file`, reloaded by `start_by`.
fn template_settings(config: &Config, sockets: &[haproxy::Endpoint]) -> Result<TemplateSettings, ConfigError> {
    let target = config.get(&HAPROXY, &CONFIG_FILE)?;
    let method = match config.get(&HAPROXY, &START_BY)? {
        1 => Method::Systemd,
        _ => Method::Binary,
    };
    let stats_socket = sockets.first().and_then(|socket| match socket {
        haproxy::Endpoint::Unix(path) => Some(path.clone()),
        _ => None,
    });
    Ok(TemplateSettings {
        template: config.get(&HAPROXY, &TEMPLATE_FILE)?,
        target: target.clone(),
        settle: Duration::from_millis(500),
        retry: Duration::from_secs(10),
        runtime_first: false,
        reload: crate::reload::Settings {
            method,
            master_socket: PathBuf::from("/run/haproxy-master.sock"),
            unit: config.get(&HAPROXY, &SERVICE_NAME_UNIT)?,
            haproxy: config.get(&HAPROXY, &HAPROXY_BINARY)?,
            config: vec![target],
            pid_file: config.get(&HAPROXY, &PID_FILE)?,
            stats_socket,
            timeout: Duration::from_secs(10),
            state_file: None,
            min_interval: Duration::ZERO,
            max_old_workers: None,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings_of(text: &str) -> Settings {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ep2.conf");
        std::fs::write(&path, text).unwrap();
        let mut config = Config::load(Some(&path), None).unwrap();
        for section in [HAPROXY.name, CONSUL.name, AWS.name] {
            config.forget_empty_values(section);
        }
        settings(&config).unwrap()
    }

    #[test]
    fn update_by_config_with_systemd_reloads_the_unit_and_renders_ep2_s_lines() {
        // systemd cannot run here: the mapping onto `systemctl reload UNIT`
        // is what can be checked (reload/method.rs checks the vector).
        let settings = settings_of(
            "[haproxy]\nupdate_type = update_by_config\nstart_by = systemd\nservice_name = haproxy-edge\n\
             haproxy_config_file = /etc/haproxy/edge.cfg\ntemplate_file = /etc/ep2/haproxy.cfg.template\n\
             check_interval = 2s\nbackend_maxconn =\norchestrator = consul\n\n[consul]\nservice_name = web\n",
        );
        let template = settings.template.unwrap();
        assert_eq!(template.reload.method, Method::Systemd);
        assert_eq!(template.reload.unit, "haproxy-edge");
        assert_eq!(template.target, PathBuf::from("/etc/haproxy/edge.cfg"));
        assert_eq!(template.reload.config, [PathBuf::from("/etc/haproxy/edge.cfg")]);
        assert_eq!(template.template, PathBuf::from("/etc/ep2/haproxy.cfg.template"));
        let backend = &settings.backends[0];
        assert!(backend.template);
        assert_eq!(backend.ep2_nodes_options.as_deref(), Some("check inter 2s "));
        assert_eq!(backend.port, Some(6003));
    }

    #[test]
    fn aws_reads_ep2_s_section_and_its_ip_type_rule() {
        let settings = settings_of(
            "[haproxy]\norchestrator = aws\nhaproxy_socket_file = /run/a.sock, /run/b.sock\n\n\
             [aws]\nasg_name = web-a, web-b\nregion_name = eu-west-1\nip_type = private\n\
             aws_access_key_id =\naws_secret_access_key =\n",
        );
        let SourceSettings::Aws(query) = &settings.backends[0].source else {
            panic!("not the AWS source");
        };
        assert_eq!(query.groups, ["web-a", "web-b"]);
        assert_eq!(query.region, "eu-west-1");
        assert_eq!(query.ip_type, IpType::Private);
        assert_eq!(query.credentials.configured, None, "empty keys count as unset");
        assert_eq!(query.endpoint, "https://{service}.{region}.amazonaws.com");
        assert!(settings.template.is_none(), "update_by_runtime by default");
        let settings = settings_of(
            "[haproxy]\norchestrator = aws\n\n[aws]\nasg_name = web\nregion_name = eu-west-1\nip_type = Private\n",
        );
        let SourceSettings::Aws(query) = &settings.backends[0].source else {
            panic!("not the AWS source");
        };
        assert_eq!(query.ip_type, IpType::Public, "EP2: anything but `private` is public");
    }
}
