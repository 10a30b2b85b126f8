//! What each section of the configuration may hold, and the checks that
//! `check-config` (and every daemon at start) run on it.
//!
//! One table per section lists its keys with their kind; the same table says
//! which keys are known, so a typo such as `prefix_hostname` is reported with
//! the key it probably meant instead of being silently ignored. Checks collect
//! every problem rather than stopping at the first.

use super::{
    Config, ConfigError, DEFAULT_SECTION, Origin, Program, parse_bool, parse_float, parse_int, parse_ip, parse_servers,
    parse_size,
};
use crate::stats::metric_names;

/// What a key must hold.
#[derive(Debug, Clone, Copy)]
enum Kind {
    /// An integer no smaller than the bound.
    Int(i64),
    /// A number no smaller than the bound (strictly greater when `true`).
    Float(f64, bool),
    /// A boolean.
    Bool,
    /// A number from 0 to 1.
    Fraction,
    /// An agent-check reply HAProxy accepts (may be empty).
    Reply,
    /// An `http://` URL.
    Url,
    /// An IPv4 or IPv6 address (brackets allowed).
    IpAddress,
    /// Non-empty text.
    Text,
    /// A port, 1–65535.
    Port,
    /// A size in bytes (`64M`).
    Size,
    /// A Python logging level name.
    LogLevel,
    /// Comma-separated `unix:///path` / `tcp://host:port` entries.
    Servers,
    /// Space-separated names, each from one of the lists.
    Names(&'static [&'static [&'static str]]),
    /// One of these words.
    Choice(&'static [&'static str]),
}

/// Keys known in every section (they live in `[DEFAULT]` and are inherited).
const DEFAULT_KEYS: &[(&str, Kind)] = &[
    ("loglevel", Kind::LogLevel),
    ("retries", Kind::Int(-1)),
    ("timeout", Kind::Float(0.0, true)),
    ("interval", Kind::Float(0.0, false)),
];

const PULL: &[(&str, Kind)] = &[
    ("pull-timeout", Kind::Float(0.0, false)),
    ("pull-interval", Kind::Float(0.0, true)),
    ("buffer-limit", Kind::Int(1)),
    ("dst-dir", Kind::Text),
    ("tmp-dst-dir", Kind::Text),
    ("workers", Kind::Int(1)),
    ("queue-size", Kind::Int(1)),
    ("socket-dir", Kind::Text),
    ("servers", Kind::Servers),
    ("read-timeout", Kind::Float(0.0, true)),
    ("min-free-space", Kind::Size),
];

const PROCESS: &[(&str, Kind)] = &[
    ("workers", Kind::Int(1)),
    ("src-dir", Kind::Text),
    ("aggr-server-metrics", Kind::Bool),
    ("per-process-metrics", Kind::Bool),
    ("calculate-percentages", Kind::Bool),
    ("liveness-check-interval", Kind::Float(0.0, true)),
    ("frontend-metrics", Kind::Names(&[metric_names::FRONTEND])),
    (
        "backend-metrics",
        Kind::Names(&[
            metric_names::BACKEND,
            metric_names::BACKEND_AVG,
            metric_names::BACKEND_AVG_TIME,
        ]),
    ),
    (
        "server-metrics",
        Kind::Names(&[
            metric_names::SERVER,
            metric_names::SERVER_AVG,
            metric_names::SERVER_AVG_TIME,
        ]),
    ),
    ("exclude-frontends", Kind::Text),
    ("exclude-backends", Kind::Text),
    ("quarantine-dir", Kind::Text),
    ("shutdown-timeout", Kind::Float(0.0, false)),
];

const GRAPHITE: &[(&str, Kind)] = &[
    ("enabled", Kind::Bool),
    ("protocol", Kind::Choice(&["tcp", "udp"])),
    ("server", Kind::Text),
    ("port", Kind::Port),
    ("backoff", Kind::Float(0.0, true)),
    ("connect-timeout", Kind::Float(0.0, true)),
    ("write-timeout", Kind::Float(0.0, true)),
    ("delay", Kind::Float(0.0, false)),
    ("namespace", Kind::Text),
    ("prefix-hostname", Kind::Bool),
    ("fqdn", Kind::Bool),
    ("queue-size", Kind::Int(1)),
    ("group-namespace", Kind::Text),
    ("group-namespace-double-writes", Kind::Bool),
];

const AGENT: &[(&str, Kind)] = &[
    ("bind", Kind::IpAddress),
    ("port", Kind::Port),
    ("source", Kind::Choice(&["http", "local"])),
    ("health-url", Kind::Url),
    ("connection-usage-reduction", Kind::Fraction),
    ("os-load-reduction", Kind::Fraction),
    ("swap-usage-reduction", Kind::Fraction),
    ("clamp-negative-load", Kind::Bool),
    ("maxconn", Kind::Int(0)),
    ("absolute-weight", Kind::Int(1)),
    ("staleness-interval", Kind::Float(0.0, false)),
    ("staleness-response", Kind::Reply),
    ("down-response", Kind::Reply),
    ("unavailable-response", Kind::Reply),
    ("unavailable-up", Kind::Bool),
    ("timeout-response", Kind::Reply),
    ("error-response", Kind::Reply),
    ("read-timeout", Kind::Float(0.0, true)),
    ("max-connections", Kind::Int(1)),
];

const PATHS: &[(&str, Kind)] = &[("base-dir", Kind::Text)];

const LOCAL_STORE: &[(&str, Kind)] = &[("dir", Kind::Text)];

/// Sections whose keys are group names mapped to regular expressions.
const GROUP_SECTIONS: &[&str] = &["frontend-groups", "backend-groups", "server-groups"];

/// The sections haproxide knows with their tables.
const SECTIONS: &[(&str, &[(&str, Kind)])] = &[
    (DEFAULT_SECTION, &[]),
    ("paths", PATHS),
    ("pull", PULL),
    ("process", PROCESS),
    ("graphite", GRAPHITE),
    ("local-store", LOCAL_STORE),
    ("agent", AGENT),
];

/// The outcome of checking a configuration.
#[derive(Debug, Default)]
pub struct Report {
    /// Problems that stop a daemon from starting.
    pub errors: Vec<ConfigError>,
    /// Things that are probably mistakes but change nothing (unknown keys).
    pub warnings: Vec<String>,
}

/// Which sections a check covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Everything haproxide knows (`check-config`).
    All,
    /// The sections one program reads.
    Of(Program),
}

impl Scope {
    fn covers(self, section: &str) -> bool {
        match self {
            Scope::All => true,
            Scope::Of(program) => program.reads(section),
        }
    }
}

/// Checks the sections of `scope`.
pub fn check(config: &Config, scope: Scope) -> Report {
    let mut report = Report::default();
    for (section, table) in SECTIONS {
        if scope.covers(section) && config.has_section(section) {
            check_keys(config, section, table, &mut report);
        }
    }
    if scope.covers("frontend-groups") {
        check_groups(config, &mut report);
    }
    if scope.covers("agent-urls") {
        check_agent_urls(config, &mut report);
    }
    if scope == Scope::All {
        warn_unknown(config, &mut report);
    }
    // Report in the order a reader meets the lines: by file and line.
    report.errors.sort_by_key(|error| match error {
        ConfigError::Value(bad) => match &bad.origin {
            Origin::File { path, line } => (0, Some(path.clone()), *line),
            Origin::BuiltIn => (1, None, 0),
        },
        _ => (1, None, 0),
    });
    report
}

fn check_keys(config: &Config, section: &str, table: &[(&str, Kind)], report: &mut Report) {
    // Inherited `[DEFAULT]` keys are checked once, in `[DEFAULT]`; a section's
    // own `loglevel`/`retries`/... are checked where they are set.
    let own =
        |key: &str| section == DEFAULT_SECTION || config.ini().section(section).is_some_and(|s| s.entry(key).is_some());
    let inherited = DEFAULT_KEYS.iter().filter(|(key, _)| own(key));
    for (key, kind) in inherited.chain(table) {
        if let Err(error) = config.typed(section, key, |value| check_value(*kind, value)) {
            report.errors.push(error);
        }
    }
}

fn check_value(kind: Kind, value: &str) -> Result<(), String> {
    match kind {
        Kind::Int(min) => {
            let number = parse_int(value)?;
            if number < min {
                return Err(format!("must be {min} or more"));
            }
        }
        Kind::Float(min, strict) => {
            let number = parse_float(value)?;
            if (strict && number <= min) || number < min {
                return Err(if strict {
                    format!("must be more than {min}")
                } else {
                    format!("must be {min} or more")
                });
            }
        }
        Kind::Bool => {
            parse_bool(value)?;
        }
        Kind::Fraction => {
            if !(0.0..=1.0).contains(&parse_float(value)?) {
                return Err("must be from 0 to 1".into());
            }
        }
        Kind::Reply => {
            value
                .parse::<haproxy::AgentReply>()
                .map_err(|error| error.to_string())?;
        }
        Kind::Url => {
            if !value.starts_with("http://") {
                return Err("must be an http:// URL".into());
            }
        }
        Kind::IpAddress => {
            parse_ip(value)?;
        }
        Kind::Size => {
            parse_size(value)?;
        }
        Kind::Text => {
            if value.trim().is_empty() {
                return Err("must not be empty".into());
            }
        }
        Kind::Port => {
            let port = parse_int(value)?;
            if !(1..=65535).contains(&port) {
                return Err("must be a port from 1 to 65535".into());
            }
        }
        Kind::LogLevel => {
            const LEVELS: &[&str] = &[
                "debug", "info", "warning", "warn", "error", "critical", "fatal", "notset",
            ];
            if !LEVELS.contains(&value.trim().to_ascii_lowercase().as_str()) {
                return Err(format!("unknown log level; use one of {}", LEVELS.join(", ")));
            }
        }
        Kind::Servers => {
            parse_servers(value)?;
        }
        Kind::Names(lists) => {
            let names: Vec<&str> = value.split_whitespace().collect();
            if names.is_empty() {
                return Err("must name at least one metric".into());
            }
            let unknown: Vec<&str> = names
                .into_iter()
                .filter(|name| !lists.iter().any(|list| list.contains(name)))
                .collect();
            if !unknown.is_empty() {
                return Err(format!("unknown metric name(s): {}", unknown.join(", ")));
            }
        }
        Kind::Choice(words) => {
            if !words.contains(&value) {
                return Err(format!("must be one of: {}", words.join(", ")));
            }
        }
    }
    Ok(())
}

/// Every `[agent-urls]` value is an `http://` URL.
fn check_agent_urls(config: &Config, report: &mut Report) {
    let Some(section) = config.ini().section("agent-urls") else {
        return;
    };
    for entry in &section.entries {
        if let Err(error) = config.typed("agent-urls", &entry.key, |value| check_value(Kind::Url, value)) {
            report.errors.push(error);
        }
    }
}

/// `group-namespace` needs `group-namespace-double-writes` and a `*-groups`
/// section; `*-groups` sections need `group-namespace`; every pattern must compile.
fn check_groups(config: &Config, report: &mut Report) {
    let group_sections: Vec<&str> = GROUP_SECTIONS
        .iter()
        .copied()
        .filter(|name| config.has_section(name))
        .collect();
    let namespace = config.string("graphite", "group-namespace").ok().flatten();
    let section_error = |section: &str, message: String| ConfigError::Section {
        location: section_location(config, section),
        section: section.to_owned(),
        message,
    };
    if namespace.is_some() {
        if config
            .ini()
            .lookup("graphite", "group-namespace-double-writes")
            .is_none()
        {
            report.errors.push(section_error(
                "graphite",
                "group-namespace is set, so group-namespace-double-writes (true/false) is required".into(),
            ));
        }
        if group_sections.is_empty() {
            report.errors.push(section_error(
                "graphite",
                "group-namespace is set but there is no [frontend-groups], [backend-groups] or [server-groups] section"
                    .into(),
            ));
        }
    } else {
        for section in &group_sections {
            report.errors.push(section_error(
                section,
                "group sections need [graphite] group-namespace".into(),
            ));
        }
    }
    for section in group_sections {
        let Some(entries) = config.ini().section(section).map(|section| &section.entries) else {
            continue;
        };
        for entry in entries {
            let checked = config.typed(section, &entry.key, |pattern| {
                regex::Regex::new(pattern)
                    .map(drop)
                    .map_err(|error| format!("invalid regular expression: {error}"))
            });
            if let Err(error) = checked {
                report.errors.push(error);
            }
        }
    }
}

fn section_location(config: &Config, section: &str) -> String {
    match config.ini().section(section).and_then(|section| section.origin.clone()) {
        Some(origin @ Origin::File { .. }) => format!("{origin}: "),
        _ => String::new(),
    }
}

/// Keys set in a known section that no table knows, and unknown sections.
fn warn_unknown(config: &Config, report: &mut Report) {
    for name in config.ini().section_names() {
        let Some(section) = config.ini().section(name) else {
            continue;
        };
        if GROUP_SECTIONS.contains(&name) || name == "agent-urls" {
            continue;
        }
        let Some((_, table)) = SECTIONS.iter().find(|(known, _)| *known == name) else {
            report.warnings.push(format!(
                "{}[{name}]: unknown section, ignored",
                section_location(config, name)
            ));
            continue;
        };
        let known = |key: &str| DEFAULT_KEYS.iter().chain(table.iter()).any(|(known, _)| *known == key);
        for entry in section.entries.iter().filter(|entry| !known(&entry.key)) {
            let dashed = entry.key.replace('_', "-");
            let hint = if known(&dashed) {
                format!(" (did you mean `{dashed}`?)")
            } else {
                String::new()
            };
            report.warnings.push(format!(
                "{}: [{name}] {}: unknown key, ignored{hint}",
                entry.origin, entry.key
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_text(text: &str) -> (Vec<String>, Vec<String>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.conf");
        std::fs::write(&path, text).unwrap();
        let config = Config::load(Some(&path), None).unwrap();
        let report = check(&config, Scope::All);
        let strip = |line: String| line.replace(&format!("{}", path.display()), "c.conf");
        (
            report
                .errors
                .into_iter()
                .map(|error| strip(error.to_string()))
                .collect(),
            report.warnings.into_iter().map(strip).collect(),
        )
    }

    #[test]
    fn built_in_defaults_are_valid() {
        let report = check(&Config::builtin(), Scope::All);
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    }

    #[test]
    fn bad_values_name_file_line_section_and_key() {
        let (errors, _) = check_text(
            "[process]\nworkers = x\nfrontend-metrics = scur bogus\n[pull]\nservers = unix:///a, tcp://h\n[graphite]\nport = 70000\nfqdn = maybe\n",
        );
        assert_eq!(
            errors,
            [
                "c.conf:2: [process] workers = \"x\": expected an integer",
                "c.conf:3: [process] frontend-metrics = \"scur bogus\": unknown metric name(s): bogus",
                "c.conf:5: [pull] servers = \"unix:///a, tcp://h\": invalid socket address \"tcp://h\": tcp:// needs host:port, e.g. tcp://127.0.0.1:9999 or tcp://[::1]:9999",
                "c.conf:7: [graphite] port = \"70000\": must be a port from 1 to 65535",
                "c.conf:8: [graphite] fqdn = \"maybe\": expected a boolean (true/false, yes/no, on/off, 1/0)",
            ]
        );
    }

    #[test]
    fn inherited_bad_log_level_is_reported_once() {
        let (errors, _) = check_text("[DEFAULT]\nloglevel = loud\n");
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].starts_with("c.conf:2: [DEFAULT] loglevel = \"loud\": unknown log level"));
    }

    #[test]
    fn pull_scope_ignores_other_sections() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.conf");
        std::fs::write(&path, "[graphite]\nport = x\n[pull]\nmin-free-space = lots\n").unwrap();
        let config = Config::load(Some(&path), None).unwrap();
        let errors: Vec<String> = check(&config, Scope::Of(Program::Pull))
            .errors
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].ends_with("[pull] min-free-space = \"lots\": expected a size such as 64M (suffixes K, M, G, T)")
        );
        assert_eq!(check(&config, Scope::All).errors.len(), 2);
    }

    #[test]
    fn group_rules_and_patterns() {
        let (errors, _) = check_text("[graphite]\ngroup-namespace = grp\n[backend-groups]\nweb = ^web(\n");
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[0].starts_with("c.conf:4: [backend-groups] web = \"^web(\": invalid regular expression"));
        assert_eq!(
            errors[1],
            "c.conf:1: [graphite]: group-namespace is set, so group-namespace-double-writes (true/false) is required"
        );
        let (orphans, _) = check_text("[frontend-groups]\na = ^a\n");
        assert_eq!(
            orphans,
            ["c.conf:1: [frontend-groups]: group sections need [graphite] group-namespace"]
        );
    }

    #[test]
    fn unknown_keys_and_sections_are_warnings_with_hints() {
        let (errors, warnings) = check_text("[graphite]\nprefix_hostname = false\n[mystery]\nx = 1\n");
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(
            warnings,
            [
                "c.conf:2: [graphite] prefix_hostname: unknown key, ignored (did you mean `prefix-hostname`?)",
                "c.conf:3: [mystery]: unknown section, ignored",
            ]
        );
    }
}
