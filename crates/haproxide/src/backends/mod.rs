//! `backends`: HAProxy's servers follow service discovery, live, through the
//! runtime API (the ElasticPyProxy successor).
//!
//! One controller serves many backends, each from a `[backend:NAME]`
//! section: a [`sources::Source`] task publishes the targets it discovers;
//! the backend's controller, on every change and every `haproxy-poll`, reads
//! each HAProxy process's servers ([`haproxy`]), plans what must change
//! ([`plan`]) and applies it with every reply checked. Nothing is cached
//! between passes but the servers this controller drained: the plan is made
//! from what HAProxy says, so a change HAProxy refused is tried again on the
//! next pass, and after a reload (dynamic servers gone, slots as the
//! configuration wrote them) the backend converges again at once.
//!
//! Under systemd it is ready once every backend has been brought in line
//! with its first discovery (and the template, if any, first rendered), and
//! pings the watchdog while every controller keeps passing.

pub mod ep2;
pub mod haproxy;
pub mod plan;
pub mod sources;
pub mod template;

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::sync::watch;

use self::haproxy::{Expect, Instance, Sockets};
use self::plan::{Change, Mode, Plan, Rules, Target};
use self::sources::{Found, Source};
use crate::config::declare::{self, Parser};
use crate::config::schema::section_location;
use crate::config::{Config, ConfigError, DefaultValue, Key, Section};
use crate::runtime::notify::{Heartbeat, Supervisor};
use crate::runtime::shutdown::Shutdown;
use crate::runtime::{ProblemChange, note_problem};

// ------------------------------------------------------------ [backends]

/// `[backends] lock-file`.
pub const LOCK_FILE: Key<PathBuf> = Key::new(
    "lock-file",
    declare::PATH,
    DefaultValue::Builtin("/run/haproxide/backends.lock"),
    "the flock that keeps a second controller from running",
);
/// `[backends] haproxy-poll`.
pub const HAPROXY_POLL: Key<Duration> = Key::new(
    "haproxy-poll",
    declare::POSITIVE_SECONDS,
    DefaultValue::Builtin("0.25"),
    "seconds between looks at HAProxy's servers besides discovery changes: how soon a reload, a restart or a hand-made change is put right",
);
/// `[backends] timeout`.
pub const TIMEOUT: Key<Duration> = Key::new(
    "timeout",
    declare::POSITIVE_SECONDS,
    DefaultValue::Builtin("5"),
    "seconds a runtime-API command, or a non-blocking discovery request, may take",
);

/// `[backends]`: the controller.
pub const SECTION: Section = Section::of(
    "backends",
    "the backends controller as a whole",
    &[&LOCK_FILE, &HAPROXY_POLL, &TIMEOUT],
);

// ------------------------------------------------------------ [template]

/// `[template] template`.
pub const TEMPLATE: Key<PathBuf> = Key::new(
    "template",
    declare::PATH,
    DefaultValue::Unset("needed when a backend has mode = template"),
    "the Jinja template of HAProxy's configuration; it sees `nodes` (EP2's server lines), `servers` and `backends`",
);
/// `[template] target`.
pub const TARGET: Key<PathBuf> = Key::new(
    "target",
    declare::PATH,
    DefaultValue::Unset("needed when a backend has mode = template"),
    "the configuration file written from the template: one of [reload] config",
);
/// `[template] settle`.
pub const SETTLE: Key<Duration> = Key::new(
    "settle",
    declare::SECONDS,
    DefaultValue::Builtin("0.5"),
    "seconds the sources must be quiet before a render: a burst of changes gives one render and one reload (at most four times this in all)",
);
/// `[template] retry`.
pub const RETRY: Key<Duration> = Key::new(
    "retry",
    declare::POSITIVE_SECONDS,
    DefaultValue::Builtin("10"),
    "seconds before a failed render or reload is tried again without a change",
);
/// `[template] runtime-first`.
pub const RUNTIME_FIRST: Key<bool> = Key::new(
    "runtime-first",
    declare::BOOL,
    DefaultValue::Builtin("false"),
    "change the template backends at run time first (dynamic servers, the same names) and write the file without a reload, for the next one",
);

/// `[template]`: the configuration file the template backends are written to.
pub const TEMPLATE_SECTION: Section = Section::of(
    "template",
    "the template path: backends with mode = template are rendered into HAProxy's configuration and HAProxy is reloaded by [reload]",
    &[&TEMPLATE, &TARGET, &SETTLE, &RETRY, &RUNTIME_FIRST],
);

// ------------------------------------------------------- [backend:NAME]

/// `source`.
pub const SOURCE: Key<usize> = Key::new(
    "source",
    Parser {
        kind: "consul, file or aws",
        parse: |text| declare::choice(text, SOURCES),
    },
    DefaultValue::Builtin("consul"),
    "where the servers come from: a Consul service, a targets file or AWS Auto Scaling groups",
);
const SOURCES: &[&str] = &["consul", "file", "aws"];
/// `backend`.
pub const BACKEND: Key<String> = Key::new(
    "backend",
    HAPROXY_NAME,
    DefaultValue::Unset("NAME, from the section's name"),
    "the HAProxy backend whose servers follow the source",
);
/// `sockets`.
pub const SOCKETS: Key<Vec<::haproxy::Endpoint>> = Key::new(
    "sockets",
    declare::SOCKETS,
    DefaultValue::Unset("see socket-dir and master-socket; one of the three is needed"),
    "admin stats sockets of every HAProxy process to change (comma-separated); a mode = template backend without runtime-first needs none",
);
/// `socket-dir`.
pub const SOCKET_DIR: Key<PathBuf> = Key::new(
    "socket-dir",
    declare::PATH,
    DefaultValue::Unset("see sockets"),
    "a directory whose every socket is an admin stats socket to change (looked at each pass)",
);
/// `master-socket`.
pub const MASTER_SOCKET: Key<PathBuf> = Key::new(
    "master-socket",
    declare::PATH,
    DefaultValue::Unset("see sockets"),
    "a master CLI: its current workers are changed, each reached with `@!PID`",
);
/// `mode`.
pub const MODE: Key<usize> = Key::new(
    "mode",
    Parser {
        kind: "auto, dynamic, slots or template",
        parse: |text| declare::choice(text, MODES),
    },
    DefaultValue::Builtin("auto"),
    "`dynamic`: add server / del server (HAProxy 2.6+, a dynamic balance algorithm); `slots`: re-address server-template slots; `auto`: slots when the backend has servers named slot-prefix, else dynamic; `template`: rendered into the configuration from [template] and reloaded",
);
const MODES: &[&str] = &["auto", "dynamic", "slots", "template"];
/// `server-prefix`.
pub const SERVER_PREFIX: Key<String> = Key::new(
    "server-prefix",
    HAPROXY_NAME,
    DefaultValue::Builtin("srv_"),
    "dynamic servers are named this, then address and port (`srv_10.0.0.1_8080`); other servers are left alone",
);
/// `slot-prefix`.
pub const SLOT_PREFIX: Key<String> = Key::new(
    "slot-prefix",
    HAPROXY_NAME,
    DefaultValue::Builtin("slot"),
    "the name prefix of the server-template slots (`server-template slot 1-20 …`)",
);
/// `server-options`.
pub const SERVER_OPTIONS: Key<String> = Key::new(
    "server-options",
    SERVER_KEYWORDS,
    DefaultValue::Builtin(""),
    "keywords for servers added in dynamic mode (`check inter 2s maxconn 100`); `check`/`agent-check` are enabled after the add",
);
/// `port`.
pub const PORT: Key<u16> = Key::new(
    "port",
    declare::PORT,
    DefaultValue::Unset("the port the source gives"),
    "the port of every server, whatever the source says",
);
/// `min-servers`.
pub const MIN_SERVERS: Key<u32> = Key::new(
    "min-servers",
    declare::COUNT_FROM_0,
    DefaultValue::Builtin("1"),
    "when discovery names fewer servers than this, none is removed (so an empty answer never empties a backend); 0 allows it",
);
/// `max-leave`.
pub const MAX_LEAVE: Key<f64> = Key::new(
    "max-leave",
    declare::FRACTION,
    DefaultValue::Builtin("1"),
    "the share of serving servers that may be leaving at once (at least one); the rest leave in later passes",
);
/// `drain-timeout`.
pub const DRAIN_TIMEOUT: Key<Duration> = Key::new(
    "drain-timeout",
    declare::SECONDS,
    DefaultValue::Builtin("30"),
    "seconds a server that left may keep its sessions (drain) before it is removed anyway",
);
/// `state-file`.
pub const STATE_FILE: Key<PathBuf> = Key::new(
    "state-file",
    declare::PATH,
    DefaultValue::Unset("not written"),
    "after each change, `show servers state` is written here (atomically): make it HAProxy's server-state-file, and slots survive any reload",
);
/// `consul-address`.
pub const CONSUL_ADDRESS: Key<String> = Key::new(
    "consul-address",
    declare::TEXT,
    DefaultValue::Builtin("127.0.0.1:8500"),
    "`host:port` of the Consul agent's HTTP API",
);
/// `consul-service`.
pub const CONSUL_SERVICE: Key<String> = Key::new(
    "consul-service",
    declare::TEXT,
    DefaultValue::Unset("NAME, from the section's name"),
    "the Consul service",
);
/// `consul-tags`.
pub const CONSUL_TAGS: Key<String> = Key::new(
    "consul-tags",
    declare::TEXT,
    DefaultValue::Unset("no tag filter"),
    "comma-separated tags every instance must have",
);
/// `consul-dc`.
pub const CONSUL_DC: Key<String> = Key::new(
    "consul-dc",
    declare::TEXT,
    DefaultValue::Unset("the agent's datacenter"),
    "the Consul datacenter",
);
/// `consul-token`.
pub const CONSUL_TOKEN: Key<String> = Key::new(
    "consul-token",
    declare::TEXT,
    DefaultValue::Unset("$CONSUL_HTTP_TOKEN, else none"),
    "the ACL token, sent as X-Consul-Token",
);
/// `consul-passing`.
pub const CONSUL_PASSING: Key<bool> = Key::new(
    "consul-passing",
    declare::BOOL,
    DefaultValue::Builtin("true"),
    "only instances whose checks all pass",
);
/// `consul-wait`.
pub const CONSUL_WAIT: Key<Duration> = Key::new(
    "consul-wait",
    declare::SECONDS,
    DefaultValue::Builtin("30"),
    "blocking-query wait: Consul answers as soon as the service changes, or after this; 0 polls every poll-interval instead",
);
/// `poll-interval`.
pub const POLL_INTERVAL: Key<Duration> = Key::new(
    "poll-interval",
    declare::POSITIVE_SECONDS,
    DefaultValue::Builtin("5"),
    "seconds between queries of AWS, and of Consul when consul-wait is 0",
);
/// `file`.
pub const FILE: Key<PathBuf> = Key::new(
    "file",
    declare::PATH,
    DefaultValue::Unset("needed with source = file"),
    "the targets file: `address:port [weight]` lines or a JSON list, watched with inotify",
);

/// `aws-groups`.
pub const AWS_GROUPS: Key<Vec<String>> = Key::new(
    "aws-groups",
    Parser {
        kind: "group names",
        parse: |text| {
            let groups: Vec<String> = text
                .split(',')
                .map(str::trim)
                .filter(|group| !group.is_empty())
                .map(str::to_owned)
                .collect();
            if groups.is_empty() {
                return Err("must name at least one Auto Scaling group".into());
            }
            Ok(groups)
        },
    },
    DefaultValue::Unset("NAME, from the section's name"),
    "comma-separated Auto Scaling groups whose InService, Healthy instances are the servers",
);
/// `aws-region`.
pub const AWS_REGION: Key<String> = Key::new(
    "aws-region",
    declare::TEXT,
    DefaultValue::Unset("$AWS_REGION, else $AWS_DEFAULT_REGION"),
    "the groups' region",
);
/// `aws-ip-type`.
pub const AWS_IP_TYPE: Key<usize> = Key::new(
    "aws-ip-type",
    Parser {
        kind: "private or public",
        parse: |text| declare::choice(text, &["private", "public"]),
    },
    DefaultValue::Builtin("private"),
    "which address of an instance HAProxy gets",
);
/// `aws-endpoint`.
pub const AWS_ENDPOINT: Key<String> = Key::new(
    "aws-endpoint",
    Parser {
        kind: "URL",
        parse: |text| {
            if !(text.starts_with("https://") || text.starts_with("http://")) {
                return Err("must be an https:// (or http://) URL".into());
            }
            Ok(text.to_owned())
        },
    },
    DefaultValue::Builtin("https://{service}.{region}.amazonaws.com"),
    "where the Auto Scaling and EC2 APIs are; `{service}` (autoscaling, ec2) and `{region}` are replaced (a VPC endpoint, a test server)",
);
/// `aws-access-key-id`.
pub const AWS_ACCESS_KEY_ID: Key<String> = Key::new(
    "aws-access-key-id",
    declare::TEXT,
    DefaultValue::Unset("$AWS_ACCESS_KEY_ID, the shared files' profile, else the instance role"),
    "the access key, with aws-secret-access-key",
);
/// `aws-secret-access-key`.
pub const AWS_SECRET_ACCESS_KEY: Key<String> = Key::new(
    "aws-secret-access-key",
    declare::TEXT,
    DefaultValue::Unset("see aws-access-key-id"),
    "the secret key, with aws-access-key-id",
);
/// `aws-profile`.
pub const AWS_PROFILE: Key<String> = Key::new(
    "aws-profile",
    declare::TEXT,
    DefaultValue::Unset("$AWS_PROFILE, else default"),
    "the profile of ~/.aws/credentials and ~/.aws/config ($AWS_SHARED_CREDENTIALS_FILE, $AWS_CONFIG_FILE)",
);
/// `aws-imds-endpoint`.
pub const AWS_IMDS_ENDPOINT: Key<String> = Key::new(
    "aws-imds-endpoint",
    declare::HTTP_URL,
    DefaultValue::Unset("$AWS_EC2_METADATA_SERVICE_ENDPOINT, else http://169.254.169.254"),
    "the instance metadata service, asked (IMDSv2) for the instance role's keys when no others are found",
);

/// A HAProxy proxy or server name: letters, digits, `-`, `_`, `.`, `:`.
pub const HAPROXY_NAME: Parser<String> = Parser {
    kind: "HAProxy name",
    parse: |text| {
        let fine = !text.is_empty()
            && text
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b':'));
        if fine {
            Ok(text.to_owned())
        } else {
            Err("must be a HAProxy name: letters, digits, `-`, `_`, `.` and `:`".into())
        }
    },
};

/// Server keywords on one line, without the characters that would end or
/// escape a runtime-API command.
pub const SERVER_KEYWORDS: Parser<String> = Parser {
    kind: "server keywords",
    parse: |text| {
        if text.contains([';', '\\', '\n', '\r', '#']) {
            return Err("must not hold `;`, `\\`, `#` or line breaks (they would end the runtime-API command)".into());
        }
        Ok(text.trim().to_owned())
    },
};

/// `[backend:NAME]`: one backend and its source.
pub const BACKEND_SECTIONS: Section = Section::of(
    "backend:",
    "one HAProxy backend whose servers follow a source; NAME is the backend's unless `backend` says otherwise",
    &[
        &SOURCE,
        &BACKEND,
        &SOCKETS,
        &SOCKET_DIR,
        &MASTER_SOCKET,
        &MODE,
        &SERVER_PREFIX,
        &SLOT_PREFIX,
        &SERVER_OPTIONS,
        &PORT,
        &MIN_SERVERS,
        &MAX_LEAVE,
        &DRAIN_TIMEOUT,
        &STATE_FILE,
        &CONSUL_ADDRESS,
        &CONSUL_SERVICE,
        &CONSUL_TAGS,
        &CONSUL_DC,
        &CONSUL_TOKEN,
        &CONSUL_PASSING,
        &CONSUL_WAIT,
        &POLL_INTERVAL,
        &FILE,
        &AWS_GROUPS,
        &AWS_REGION,
        &AWS_IP_TYPE,
        &AWS_ENDPOINT,
        &AWS_ACCESS_KEY_ID,
        &AWS_SECRET_ACCESS_KEY,
        &AWS_PROFILE,
        &AWS_IMDS_ENDPOINT,
    ],
)
.with_rules(backend_rules);

/// Each `[backend:NAME]` names exactly one way to the sockets, and a file for `source = file`.
fn backend_rules(config: &Config) -> Vec<ConfigError> {
    let mut errors = Vec::new();
    let mut rendered = false;
    let names: Vec<String> = config
        .ini()
        .section_names()
        .filter(|name| BACKEND_SECTIONS.matches(name))
        .map(str::to_owned)
        .collect();
    for name in names {
        let set = |key: &str| config.ini().section(&name).is_some_and(|own| own.entry(key).is_some());
        let ways = [SOCKETS.name, SOCKET_DIR.name, MASTER_SOCKET.name]
            .iter()
            .filter(|key| set(key))
            .count();
        let problem = |message: String| ConfigError::Section {
            location: section_location(config, &name),
            section: name.clone(),
            message,
        };
        // A template backend changed only by reloads needs no socket.
        let rendered_only = config.get_in(&name, &MODE).ok() == Some(3)
            && !config.get(&TEMPLATE_SECTION, &RUNTIME_FIRST).unwrap_or(false);
        if ways > 1 || (ways == 0 && !rendered_only) {
            errors.push(problem(format!(
                "set exactly one of sockets, socket-dir and master-socket ({ways} are set)"
            )));
        }
        let source = config.get_in(&name, &SOURCE).ok();
        if source == Some(1) && !set(FILE.name) {
            errors.push(problem("source = file needs `file`".into()));
        }
        if source == Some(2) {
            if !set(PORT.name) {
                errors.push(problem(
                    "source = aws needs `port`: instances have no port of their own".into(),
                ));
            }
            if set(AWS_ACCESS_KEY_ID.name) != set(AWS_SECRET_ACCESS_KEY.name) {
                errors.push(problem(
                    "set both aws-access-key-id and aws-secret-access-key, or neither".into(),
                ));
            }
            if !set(AWS_REGION.name) && region_from_environment().is_none() {
                errors.push(problem(NO_REGION.into()));
            }
        }
        if config.get_in(&name, &MODE).ok() == Some(3) {
            rendered = true;
        }
    }
    // What the template path needs ([template] template and target, the
    // target among [reload] config), checked with the rest.
    if rendered && let Err(error) = template_settings(config) {
        errors.push(error);
    }
    errors
}

/// What a `source = aws` backend without a region is told.
const NO_REGION: &str = "source = aws needs `aws-region` (or AWS_REGION in the environment)";

/// `AWS_REGION`, else `AWS_DEFAULT_REGION`, as the AWS SDKs read them.
fn region_from_environment() -> Option<String> {
    ["AWS_REGION", "AWS_DEFAULT_REGION"]
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|value| !value.is_empty()))
}

// ------------------------------------------------------------- settings

/// One backend, typed.
#[derive(Debug, Clone)]
pub struct BackendSettings {
    /// The section (`backend:web`), for the log.
    pub section: String,
    /// The HAProxy backend.
    pub backend: String,
    /// Where its processes are.
    pub sockets: Sockets,
    /// `None`: auto.
    pub mode: Option<Mode>,
    /// Rendered into the configuration (`mode = template`).
    pub template: bool,
    /// Dynamic servers' prefix.
    pub server_prefix: String,
    /// Slots' prefix.
    pub slot_prefix: String,
    /// Keywords of added servers.
    pub server_options: String,
    /// A fixed port.
    pub port: Option<u16>,
    /// See [`MIN_SERVERS`].
    pub min_servers: usize,
    /// See [`MAX_LEAVE`].
    pub max_leave: f64,
    /// See [`DRAIN_TIMEOUT`].
    pub drain_timeout: Duration,
    /// See [`STATE_FILE`].
    pub state_file: Option<PathBuf>,
    /// The source, as configured.
    pub source: SourceSettings,
    /// What follows the address in EP2's `nodes` lines (`check inter X
    /// maxconn Y`), for `ep2 -f`; else the server options.
    pub ep2_nodes_options: Option<String>,
}

/// A source, typed.
#[derive(Debug, Clone)]
pub enum SourceSettings {
    /// Consul.
    Consul(sources::consul::ConsulQuery),
    /// A file.
    File(PathBuf),
    /// AWS Auto Scaling groups.
    Aws(sources::aws::AwsQuery),
}

impl SourceSettings {
    fn build(&self) -> anyhow::Result<Box<dyn Source>> {
        Ok(match self {
            SourceSettings::Consul(query) => Box::new(sources::consul::ConsulSource::new(query.clone())?),
            SourceSettings::File(path) => Box::new(sources::file::FileSource::new(path.clone())),
            SourceSettings::Aws(query) => Box::new(sources::aws::AwsSource::new(query.clone())?),
        })
    }
}

/// The controller's settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The single-instance lock.
    pub lock_file: PathBuf,
    /// See [`HAPROXY_POLL`].
    pub haproxy_poll: Duration,
    /// See [`TIMEOUT`].
    pub timeout: Duration,
    /// The backends.
    pub backends: Vec<BackendSettings>,
    /// The template path, when a backend takes it.
    pub template: Option<template::TemplateSettings>,
}

impl Settings {
    /// Reads `[backends]` and every `[backend:NAME]`.
    pub fn from_config(config: &Config) -> Result<Settings, ConfigError> {
        let timeout = config.get(&SECTION, &TIMEOUT)?;
        let mut backends = Vec::new();
        let names: Vec<String> = config
            .ini()
            .section_names()
            .filter(|name| BACKEND_SECTIONS.matches(name))
            .map(str::to_owned)
            .collect();
        for name in names {
            let own = name["backend:".len()..].to_owned();
            let get_text = |key: &Key<String>| config.get_opt_in(&name, key);
            let sockets = if let Some(list) = config.get_opt_in(&name, &SOCKETS)? {
                Sockets::List(list)
            } else if let Some(dir) = config.get_opt_in(&name, &SOCKET_DIR)? {
                Sockets::Dir(dir)
            } else if let Some(master) = config.get_opt_in(&name, &MASTER_SOCKET)? {
                Sockets::Master(master)
            } else {
                // mode = template without runtime-first: HAProxy is only reloaded.
                Sockets::List(Vec::new())
            };
            let source = match config.get_in(&name, &SOURCE)? {
                1 => SourceSettings::File(config.get_in(&name, &FILE)?),
                2 => SourceSettings::Aws(aws_query(config, &name, &own, timeout)?),
                _ => SourceSettings::Consul(sources::consul::ConsulQuery {
                    address: config.get_in(&name, &CONSUL_ADDRESS)?,
                    service: get_text(&CONSUL_SERVICE)?.unwrap_or_else(|| own.clone()),
                    passing: config.get_in(&name, &CONSUL_PASSING)?,
                    tags: get_text(&CONSUL_TAGS)?
                        .map(|tags| {
                            tags.split(',')
                                .map(str::trim)
                                .filter(|tag| !tag.is_empty())
                                .map(str::to_owned)
                                .collect()
                        })
                        .unwrap_or_default(),
                    datacenter: get_text(&CONSUL_DC)?,
                    token: get_text(&CONSUL_TOKEN)?.or_else(|| std::env::var("CONSUL_HTTP_TOKEN").ok()),
                    wait: config.get_in(&name, &CONSUL_WAIT)?,
                    poll_interval: config.get_in(&name, &POLL_INTERVAL)?,
                    timeout,
                }),
            };
            backends.push(BackendSettings {
                backend: get_text(&BACKEND)?.unwrap_or_else(|| own.clone()),
                sockets,
                mode: match config.get_in(&name, &MODE)? {
                    1 | 3 => Some(Mode::Dynamic),
                    2 => Some(Mode::Slots),
                    _ => None,
                },
                template: config.get_in(&name, &MODE)? == 3,
                server_prefix: config.get_in(&name, &SERVER_PREFIX)?,
                slot_prefix: config.get_in(&name, &SLOT_PREFIX)?,
                server_options: config.get_in(&name, &SERVER_OPTIONS)?,
                port: config.get_opt_in(&name, &PORT)?,
                min_servers: usize::try_from(config.get_in(&name, &MIN_SERVERS)?).unwrap_or(usize::MAX),
                max_leave: config.get_in(&name, &MAX_LEAVE)?,
                drain_timeout: config.get_in(&name, &DRAIN_TIMEOUT)?,
                state_file: config.get_opt_in(&name, &STATE_FILE)?,
                source,
                ep2_nodes_options: None,
                section: name,
            });
        }
        let template = if backends.iter().any(|backend| backend.template) {
            Some(template_settings(config)?)
        } else {
            None
        };
        Ok(Settings {
            lock_file: config.get(&SECTION, &LOCK_FILE)?,
            haproxy_poll: config.get(&SECTION, &HAPROXY_POLL)?,
            timeout,
            backends,
            template,
        })
    }
}

/// `[template]` and `[reload]`; the target must be one of the files the
/// reload validates, so that the rendered file is what is validated.
fn template_settings(config: &Config) -> Result<template::TemplateSettings, ConfigError> {
    let reload = crate::reload::Settings::from_config(config)?;
    let target = config.get(&TEMPLATE_SECTION, &TARGET)?;
    if !reload.config.contains(&target) {
        return Err(ConfigError::Section {
            location: section_location(config, TEMPLATE_SECTION.name),
            section: TEMPLATE_SECTION.name.to_owned(),
            message: format!(
                "target {} is not one of [reload] config ({}): the reload would not validate what is rendered",
                target.display(),
                declare::quote_paths(reload.config.iter().map(|path| path.to_str().unwrap_or_default()))
            ),
        });
    }
    Ok(template::TemplateSettings {
        template: config.get(&TEMPLATE_SECTION, &TEMPLATE)?,
        target,
        settle: config.get(&TEMPLATE_SECTION, &SETTLE)?,
        retry: config.get(&TEMPLATE_SECTION, &RETRY)?,
        runtime_first: config.get(&TEMPLATE_SECTION, &RUNTIME_FIRST)?,
        reload,
    })
}

/// The AWS source of section `name` (`own`: its NAME).
fn aws_query(config: &Config, name: &str, own: &str, timeout: Duration) -> Result<sources::aws::AwsQuery, ConfigError> {
    let region = match config.get_opt_in(name, &AWS_REGION)? {
        Some(region) => region,
        None => region_from_environment().ok_or_else(|| ConfigError::Section {
            location: section_location(config, name),
            section: name.to_owned(),
            message: NO_REGION.into(),
        })?,
    };
    let configured = match (
        config.get_opt_in(name, &AWS_ACCESS_KEY_ID)?,
        config.get_opt_in(name, &AWS_SECRET_ACCESS_KEY)?,
    ) {
        (Some(id), Some(secret)) => Some((id, secret)),
        _ => None,
    };
    Ok(sources::aws::AwsQuery {
        groups: config
            .get_opt_in(name, &AWS_GROUPS)?
            .unwrap_or_else(|| vec![own.to_owned()]),
        region,
        endpoint: config.get_in(name, &AWS_ENDPOINT)?,
        ip_type: match config.get_in(name, &AWS_IP_TYPE)? {
            1 => sources::aws::IpType::Public,
            _ => sources::aws::IpType::Private,
        },
        credentials: sources::aws::credentials::CredentialSettings {
            configured,
            profile: config.get_opt_in(name, &AWS_PROFILE)?,
            imds_endpoint: config.get_opt_in(name, &AWS_IMDS_ENDPOINT)?,
        },
        poll_interval: config.get_in(name, &POLL_INTERVAL)?,
        timeout,
    })
}

// ------------------------------------------------------------- running

/// How `backends` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Run {
    /// Until a stop signal.
    Daemon,
    /// Until every backend has converged (drains included), then exit.
    Once,
    /// Print the first pass's commands, change nothing.
    DryRun,
}

/// `haproxide backends`: starts logging, takes the lock, runs.
pub fn main(config: &Config, run: Run) -> anyhow::Result<ExitCode> {
    let settings = Settings::from_config(config)?;
    crate::runtime::run_daemon(config, &SECTION, serve(settings, run))
}

/// `ep2 -f ep2.conf`: the same on an ElasticPyProxy configuration.
pub fn ep2_main(config: &Config, run: Run) -> anyhow::Result<ExitCode> {
    let settings = ep2::settings(config)?;
    crate::runtime::run_daemon(config, &ep2::HAPROXY, serve(settings, run))
}

/// Runs the controller on `settings`.
pub async fn serve(settings: Settings, run: Run) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        !settings.backends.is_empty(),
        "no [backend:NAME] section: nothing to keep in line"
    );
    let _lock = crate::runtime::lock::exclusive(&settings.lock_file)
        .with_context(|| "another `haproxide backends` is running, or the lock file cannot be taken")?;
    let mut shutdown = Shutdown::listen()?;
    let mut controllers = tokio::task::JoinSet::new();
    let mut heartbeats = Vec::new();
    let mut rendered = Vec::new();
    for backend in settings.backends.iter().cloned() {
        let source = backend.source.build()?;
        let (publish, found) = watch::channel(None);
        tracing::info!(
            "{}: backend {} follows {}",
            backend.section,
            backend.backend,
            source.describe()
        );
        tokio::spawn(source.run(publish));
        let runtime_first = settings
            .template
            .as_ref()
            .is_some_and(|template| template.runtime_first);
        if backend.template {
            rendered.push((template_backend(&backend), found.clone()));
        }
        if !backend.template || runtime_first {
            // A pass starts every `haproxy-poll` and waits on each runtime-API
            // exchange at most `timeout`.
            let allowance = settings.haproxy_poll * 2 + settings.timeout * EXCHANGES_PER_PASS;
            let heartbeat = Arc::new(Heartbeat::new(format!("{} passes", backend.section), Some(allowance)));
            heartbeats.push(Arc::clone(&heartbeat));
            let controller = Controller::new(backend, &settings);
            controllers.spawn(controller.run(found, run, heartbeat));
        }
    }
    if let Some(template) = settings.template.clone() {
        // Rendered on changes only: silence is no stall.
        let heartbeat = Arc::new(Heartbeat::new("template", None));
        heartbeats.push(Arc::clone(&heartbeat));
        controllers.spawn(template::run(template, rendered, run, heartbeat));
    }
    let supervisor = (run == Run::Daemon).then(|| Supervisor::heartbeats(heartbeats));
    let outcome = tokio::select! {
        signal = shutdown.requested() => {
            tracing::info!("{signal}: stopping");
            if let Some(supervisor) = supervisor {
                supervisor.stopping();
            }
            Ok(ExitCode::SUCCESS)
        }
        outcome = async {
            let mut clean = true;
            while let Some(done) = controllers.join_next().await {
                clean &= done.unwrap_or(false);
            }
            Ok(if clean { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        } => outcome,
    };
    controllers.abort_all();
    outcome
}

/// How many runtime-API exchanges (each within `timeout`) a pass is allowed
/// past two `haproxy-poll`s before its controller is called wedged.
const EXCHANGES_PER_PASS: u32 = 20;

/// What the template writer needs of a `mode = template` backend.
fn template_backend(backend: &BackendSettings) -> template::TemplateBackend {
    template::TemplateBackend {
        section: backend.section.clone(),
        backend: backend.backend.clone(),
        prefix: backend.server_prefix.clone(),
        port: backend.port,
        min_servers: backend.min_servers,
        options: backend.server_options.clone(),
        nodes_options: backend
            .ep2_nodes_options
            .clone()
            .unwrap_or_else(|| backend.server_options.clone()),
    }
}

/// What the controller remembers of one HAProxy process.
#[derive(Debug, Default)]
struct Memory {
    /// The servers it drained, and since when.
    drained: HashMap<String, Instant>,
    /// The PID that last answered.
    pid: Option<u32>,
    /// The problems of the last pass, logged when they change.
    problem: Option<String>,
}

/// One backend's controller.
struct Controller {
    settings: BackendSettings,
    poll: Duration,
    timeout: Duration,
    memory: HashMap<String, Memory>,
    problem: Option<String>,
}

impl Controller {
    fn new(settings: BackendSettings, all: &Settings) -> Controller {
        Controller {
            settings,
            poll: all.haproxy_poll,
            timeout: all.timeout,
            memory: HashMap::new(),
            problem: None,
        }
    }

    /// Passes until stopped (daemon), converged (once) or printed (dry run);
    /// `true` when it ended without a problem.
    async fn run(
        mut self,
        mut found: watch::Receiver<Option<Vec<Found>>>,
        run: Run,
        heartbeat: Arc<Heartbeat>,
    ) -> bool {
        let started = Instant::now();
        loop {
            let latest = found.borrow_and_update().clone();
            if let Some(found) = latest {
                let pending = self.pass(&found, run).await;
                heartbeat.beat();
                match run {
                    Run::DryRun => return self.problem.is_none(),
                    Run::Once if pending == 0 => return self.problem.is_none(),
                    Run::Once if started.elapsed() > self.settings.drain_timeout + self.poll * 20 => return false,
                    _ => {}
                }
            }
            tokio::select! {
                changed = found.changed() => if changed.is_err() { return false },
                () = tokio::time::sleep(self.poll) => {}
            }
        }
    }

    /// One pass over every process; returns how many changes are still to
    /// come (drains waiting for their sessions to end, refused changes).
    async fn pass(&mut self, found: &[Found], run: Run) -> usize {
        let mut problems = Vec::new();
        let targets = plan::settle_ports(found, self.settings.port, &self.settings.section, &mut problems);
        let instances = match haproxy::instances(&self.settings.sockets, self.timeout).await {
            Ok(instances) => instances,
            Err(error) => {
                problems.push(format!("cannot list the HAProxy processes: {error}"));
                Vec::new()
            }
        };
        let mut pending = 0;
        for instance in instances {
            pending += self.converge(&instance, &targets, run).await;
        }
        let summary = (!problems.is_empty()).then(|| problems.join("; "));
        if note_problem(&mut self.problem, summary.clone()) == ProblemChange::Began
            && let Some(summary) = summary
        {
            tracing::error!("{}: {summary}", self.settings.section);
        }
        pending + problems.len()
    }

    async fn converge(&mut self, instance: &Instance, targets: &BTreeSet<Target>, run: Run) -> usize {
        let settings = &self.settings;
        let memory = self.memory.entry(instance.key.clone()).or_default();
        let mut problems = Vec::new();
        let mut pending = 0;
        match instance.pid().await {
            Ok(pid) => {
                if memory.pid.is_some_and(|last| last != pid) {
                    tracing::info!(
                        "{}: {} now answers from PID {pid} (was {}): reloaded or restarted; converging",
                        settings.section,
                        instance.label,
                        memory.pid.unwrap_or(0)
                    );
                    memory.drained.clear();
                }
                memory.pid = Some(pid);
            }
            Err(error) => problems.push(error),
        }
        let servers = match instance.servers(&settings.backend).await {
            Ok(servers) => Some(servers),
            Err(error) => {
                problems.push(error);
                None
            }
        };
        if let Some(servers) = servers {
            let mode = settings.mode.unwrap_or_else(|| {
                if servers
                    .iter()
                    .any(|server| server.name.starts_with(&settings.slot_prefix))
                {
                    Mode::Slots
                } else {
                    Mode::Dynamic
                }
            });
            let rules = Rules {
                mode,
                prefix: match mode {
                    Mode::Dynamic => &settings.server_prefix,
                    Mode::Slots => &settings.slot_prefix,
                },
                min_servers: settings.min_servers,
                max_leave: settings.max_leave,
                drain_timeout: settings.drain_timeout,
            };
            let Plan { steps, problems: held } = plan::plan(&rules, targets, &servers, &memory.drained, Instant::now());
            problems.extend(held);
            pending += steps.len();
            let mut changed = false;
            for step in &steps {
                let commands = commands(
                    &settings.backend,
                    &step.server,
                    &step.change,
                    mode,
                    &settings.server_options,
                );
                if run == Run::DryRun {
                    for (command, _) in &commands {
                        println!("{}: {command}", instance.label);
                    }
                    continue;
                }
                tracing::info!(
                    "{}: {} {} ({}) on {}",
                    settings.section,
                    verb(&step.change),
                    step.server,
                    step.reason,
                    instance.label
                );
                let mut done = true;
                for (command, expect) in commands {
                    match instance.change(&command, expect).await {
                        Ok(_) => changed = true,
                        // A server with sessions left cannot go yet: the next pass tries again.
                        Err(refused) if refused.reply.starts_with("Server still has connections attached") => {
                            done = false;
                            break;
                        }
                        Err(refused) => {
                            problems.push(format!(
                                "backend {}, server {}: `{}` answered {:?}; tried again on the next pass",
                                settings.backend, step.server, refused.command, refused.reply
                            ));
                            done = false;
                            break;
                        }
                    }
                }
                if done {
                    pending -= 1;
                    match step.change {
                        Change::Drain => {
                            memory.drained.insert(step.server.clone(), Instant::now());
                            pending += 1; // its removal is still to come
                        }
                        Change::Remove | Change::Ready => {
                            memory.drained.remove(&step.server);
                        }
                        Change::Add(_) | Change::Assign(_) | Change::Weight(_) => {}
                    }
                }
            }
            if changed && let Some(path) = &settings.state_file {
                match crate::reload::save_servers_state(instance.client(), instance.prefix(), path).await {
                    Ok(_) => {}
                    Err(error) => problems.push(format!("cannot write the state file: {error}")),
                }
            }
        }
        let summary = (!problems.is_empty()).then(|| problems.join("; "));
        match note_problem(&mut memory.problem, summary.clone()) {
            ProblemChange::Began => {
                if let Some(summary) = &summary {
                    tracing::error!("{}: {}: {summary}", settings.section, instance.label);
                }
            }
            ProblemChange::Ended => tracing::info!("{}: {}: problems solved", settings.section, instance.label),
            ProblemChange::Unchanged => {}
        }
        if run == Run::DryRun
            && let Some(summary) = summary
        {
            eprintln!("{}: {}: {summary}", settings.section, instance.label);
        }
        pending + problems.len()
    }
}

fn verb(change: &Change) -> &'static str {
    match change {
        Change::Add(_) => "adding",
        Change::Assign(_) => "assigning",
        Change::Ready => "making ready",
        Change::Weight(_) => "weighting",
        Change::Drain => "draining",
        Change::Remove => "removing",
    }
}

/// The runtime-API commands of one change, each with the reply it must get.
pub fn commands(backend: &str, server: &str, change: &Change, mode: Mode, options: &str) -> Vec<(String, Expect)> {
    let at = format!("{backend}/{server}");
    let state = |state: &str| (format!("set server {at} state {state}"), Expect::Nothing);
    match change {
        Change::Add(target) => {
            let address = match target.address {
                std::net::IpAddr::V4(v4) => format!("{v4}:{}", target.port),
                std::net::IpAddr::V6(v6) => format!("ipv6@{v6}:{}", target.port),
            };
            let mut line = format!("add server {at} {address}");
            if let Some(weight) = target.weight {
                line.push_str(&format!(" weight {weight}"));
            }
            if !options.is_empty() {
                line.push(' ');
                line.push_str(options);
            }
            let mut commands = vec![(line, Expect::OneOf(&["New server registered."]))];
            let words: Vec<&str> = options.split_whitespace().collect();
            if words.contains(&"check") {
                commands.push((format!("enable health {at}"), Expect::Nothing));
            }
            if words.contains(&"agent-check") {
                commands.push((format!("enable agent {at}"), Expect::Nothing));
            }
            commands.push(state("ready"));
            commands
        }
        Change::Assign(target) => {
            let mut commands = vec![(
                format!("set server {at} addr {} port {}", target.address, target.port),
                // For a new port on the same address 2.6 says "no need to change the
                // addr, port changed from …" and 3.0 "port changed from …"; for the
                // address and port a slot already has (a target back in its old
                // slot) 2.6 says "no need to change the addr, no need to change the
                // port" and 3.0 "nothing changed".
                Expect::OneOf(&[
                    "IP changed from",
                    "port changed from",
                    "no need to change the addr",
                    "nothing changed",
                ]),
            )];
            if let Some(weight) = target.weight {
                commands.push((format!("set server {at} weight {weight}"), Expect::Nothing));
            }
            commands.push(state("ready"));
            commands
        }
        Change::Ready => vec![state("ready")],
        Change::Weight(weight) => vec![(format!("set server {at} weight {weight}"), Expect::Nothing)],
        Change::Drain => vec![state("drain")],
        Change::Remove => match mode {
            Mode::Dynamic => vec![
                state("maint"),
                (format!("del server {at}"), Expect::OneOf(&["Server deleted."])),
            ],
            Mode::Slots => vec![state("maint")],
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The unit under dist/ lets the controller take its default lock.
    #[test]
    fn the_systemd_unit_allows_the_default_lock_file() {
        let unit = include_str!("../../../../dist/systemd/haproxide-backends.service");
        let lock_file = Config::builtin().get(&SECTION, &LOCK_FILE).unwrap();
        crate::runtime::assert_unit_writes(unit, [lock_file]);
    }

    fn load(text: &str) -> (tempfile::TempDir, Config) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("backends.conf");
        std::fs::write(&path, text).unwrap();
        let config = Config::load(Some(&path), None).unwrap();
        (dir, config)
    }

    #[test]
    fn template_backends_are_checked_for_sockets_and_for_what_the_template_path_needs() {
        let text = "[backend:be]\nsource = file\nfile = /t\nmode = template\n\n[template]\ntemplate = /t.j2\n\
                    target = /etc/haproxy/haproxy.cfg\n\n[reload]\nconfig = /etc/haproxy/haproxy.cfg\n";
        let (_dir, config) = load(text);
        assert!(backend_rules(&config).is_empty());
        let settings = Settings::from_config(&config).unwrap();
        assert!(matches!(&settings.backends[0].sockets, Sockets::List(list) if list.is_empty()));
        let (_dir, config) = load(&text.replace("[template]\n", "[template]\nruntime-first = true\n"));
        let errors: Vec<String> = backend_rules(&config).iter().map(ToString::to_string).collect();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].ends_with("[backend:be]: set exactly one of sockets, socket-dir and master-socket (0 are set)"),
            "{errors:?}"
        );
        // check-config says what the template path lacks.
        let (dir, config) = load(&text.replace("target = /etc/haproxy/haproxy.cfg", "target = /etc/haproxy/other.cfg"));
        let errors: Vec<String> = backend_rules(&config).iter().map(ToString::to_string).collect();
        assert_eq!(
            errors,
            [format!(
                "{}:6: [template]: target /etc/haproxy/other.cfg is not one of [reload] config (\"/etc/haproxy/haproxy.cfg\"): the reload would not validate what is rendered",
                dir.path().join("backends.conf").display()
            )]
        );
        let (_dir, config) = load(&text.replace("[reload]", "[unused]").replace("target = ", "targets = "));
        let errors: Vec<String> = backend_rules(&config).iter().map(ToString::to_string).collect();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].contains("target"), "{errors:?}");
        let (_dir, config) = load(&text.replace("[template]\n", "[template]\nruntime-first = true\n"));
        let errors: Vec<String> = backend_rules(&config).iter().map(ToString::to_string).collect();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].ends_with("[backend:be]: set exactly one of sockets, socket-dir and master-socket (0 are set)"),
            "{errors:?}"
        );
    }

    #[test]
    fn each_change_is_its_commands() {
        let target = Target {
            address: "10.0.0.1".parse().unwrap(),
            port: 8080,
            weight: Some(5),
        };
        let texts = |change: &Change, mode: Mode| -> Vec<String> {
            commands(
                "be_app",
                "srv_10.0.0.1_8080",
                change,
                mode,
                "check inter 2s agent-check",
            )
            .into_iter()
            .map(|(text, _)| text)
            .collect()
        };
        assert_eq!(
            texts(&Change::Add(target), Mode::Dynamic),
            [
                "add server be_app/srv_10.0.0.1_8080 10.0.0.1:8080 weight 5 check inter 2s agent-check",
                "enable health be_app/srv_10.0.0.1_8080",
                "enable agent be_app/srv_10.0.0.1_8080",
                "set server be_app/srv_10.0.0.1_8080 state ready",
            ]
        );
        assert_eq!(
            texts(&Change::Assign(target), Mode::Slots),
            [
                "set server be_app/srv_10.0.0.1_8080 addr 10.0.0.1 port 8080",
                "set server be_app/srv_10.0.0.1_8080 weight 5",
                "set server be_app/srv_10.0.0.1_8080 state ready",
            ]
        );
        assert_eq!(
            texts(&Change::Remove, Mode::Dynamic),
            [
                "set server be_app/srv_10.0.0.1_8080 state maint",
                "del server be_app/srv_10.0.0.1_8080"
            ]
        );
        assert_eq!(
            texts(&Change::Remove, Mode::Slots),
            ["set server be_app/srv_10.0.0.1_8080 state maint"]
        );
        let v6 = Target {
            address: "::1".parse().unwrap(),
            port: 80,
            weight: None,
        };
        assert_eq!(
            commands("be", "s", &Change::Add(v6), Mode::Dynamic, "")[0].0,
            "add server be/s ipv6@::1:80"
        );
    }

    #[test]
    fn server_keywords_cannot_end_a_command() {
        assert_eq!(
            (SERVER_KEYWORDS.parse)(" check inter 2s "),
            Ok("check inter 2s".to_owned())
        );
        assert!((SERVER_KEYWORDS.parse)("check; del server be/x").is_err());
        assert!((HAPROXY_NAME.parse)("be app").is_err());
        assert_eq!((HAPROXY_NAME.parse)("be_app-1.v2"), Ok("be_app-1.v2".to_owned()));
    }
}
