//! The checks that `check-config` (and every program at start) run on the
//! configuration, from the sections' declarations ([`super::declare`]).
//!
//! Each declared key's value is parsed as the component will read it; keys
//! no section declares are reported with the key they probably meant
//! (`prefix_hostname`), instead of being silently ignored. Checks collect
//! every problem rather than stopping at the first.

use super::declare::Section;
use super::{Config, ConfigError, DEFAULT, DEFAULT_SECTION, Origin, Program, SECTIONS, known_section};

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
    fn sections(self) -> &'static [&'static Section] {
        match self {
            Scope::All => SECTIONS,
            Scope::Of(program) => program.sections(),
        }
    }
}

/// Checks the sections of `scope`.
pub fn check(config: &Config, scope: Scope) -> Report {
    let mut report = Report::default();
    for section in scope.sections() {
        let names: Vec<&str> = if section.is_family() {
            config
                .ini()
                .section_names()
                .filter(|name| section.matches(name))
                .collect()
        } else {
            vec![section.name]
        };
        for name in names.into_iter().filter(|name| config.has_section(name)) {
            check_section(config, section, name, &mut report);
        }
        if let Some(rules) = section.rules {
            report.errors.extend(rules(config));
        }
    }
    if scope == Scope::All {
        warn_unknown(config, &mut report);
    }
    report.warnings.extend(config.ignored().iter().cloned());
    // Report in the order a reader meets the lines: by file and line.
    report.errors.sort_by_key(|error| match error {
        ConfigError::Value(bad) => match &bad.origin {
            Origin::File { path, line, .. } => (0, Some(path.clone()), *line),
            Origin::Flag(_) | Origin::BuiltIn => (1, None, 0),
        },
        _ => (1, None, 0),
    });
    report
}

/// The section's declared keys; the `[DEFAULT]` keys it does not declare
/// where the section sets them itself (inherited values are checked once, in
/// `[DEFAULT]`); and its free-form entries.
fn check_section(config: &Config, section: &Section, name: &str, report: &mut Report) {
    let own = |key: &str| config.ini().section(name).is_some_and(|own| own.entry(key).is_some());
    let inherited = DEFAULT
        .keys
        .iter()
        .filter(|key| name != DEFAULT_SECTION && section.key(key.name()).is_none() && own(key.name()));
    for key in section.keys.iter().chain(inherited) {
        if let Err(error) = config.typed(name, key.name(), |value| key.check(value)) {
            report.errors.push(error);
        }
    }
    if let (Some(entries), Some(own)) = (section.entries, config.ini().section(name)) {
        // A section may have declared keys and free-form entries both.
        for entry in own.entries.iter().filter(|entry| section.key(&entry.key).is_none()) {
            let checked = (entries.check_key)(&entry.key)
                .map_err(|message| format!("the name {:?} {message}", entry.key))
                .map_err(|message| config.bad_value(name, &entry.key, entry.value.clone(), message));
            if let Err(error) = checked.and_then(|()| config.typed(name, &entry.key, entries.check).map(drop)) {
                report.errors.push(error);
            }
        }
    }
}

/// `file:line: ` of a section's header, or empty.
pub fn section_location(config: &Config, section: &str) -> String {
    match config.ini().section(section).and_then(|section| section.origin.clone()) {
        Some(origin @ Origin::File { .. }) => format!("{origin}: "),
        _ => String::new(),
    }
}

/// Keys set in a known section that it does not declare, and unknown sections.
fn warn_unknown(config: &Config, report: &mut Report) {
    for name in config.ini().section_names() {
        let Some(section) = config.ini().section(name) else {
            continue;
        };
        let Some(declared) = known_section(name) else {
            report.warnings.push(format!(
                "{}[{name}]: unknown section, ignored",
                section_location(config, name)
            ));
            continue;
        };
        if declared.entries.is_some() {
            continue;
        }
        let known = |key: &str| declared.key(key).is_some() || DEFAULT.key(key).is_some();
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

/// For tests: writes `text` to `path`, loads it, and gives the errors the
/// checks of `scope` find, as `check-config` prints them.
#[cfg(test)]
pub(crate) fn errors_in(path: &std::path::Path, text: &str, scope: Scope) -> Vec<String> {
    std::fs::write(path, text).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    let config = Config::load(Some(path), None).unwrap_or_else(|error| panic!("{error}"));
    check(&config, scope).errors.iter().map(ToString::to_string).collect()
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
    fn metric_path_parts_in_the_configuration_can_be_nothing_else() {
        let (errors, _) = check_text(
            "[graphite]\nnamespace = lb evil 1 2 #x\ngroup-namespace = a..b.\ngroup-namespace-double-writes = false\n\
             [backend-groups]\nweb.tier = ^web\nok = ^ok\n",
        );
        assert_eq!(
            errors,
            [
                "c.conf:2: [graphite] namespace = \"lb evil 1 2 #x\": must be a metric path: levels of letters, digits, `_`, `:` and `-`, separated by single dots",
                "c.conf:3: [graphite] group-namespace = \"a..b.\": must be a metric path: levels of letters, digits, `_`, `:` and `-`, separated by single dots",
                "c.conf:6: [backend-groups] web.tier = \"^web\": the name \"web.tier\" must be one level of a metric name: letters, digits, `_`, `:` and `-`, no dots or spaces",
            ]
        );
        let (errors, _) = check_text("[graphite]\nnamespace = loadbalancers.eu-1:a\n");
        assert!(errors.is_empty(), "{errors:?}");
    }

    #[test]
    fn configured_agent_replies_are_read_as_haproxy_reads_them() {
        let (errors, _) = check_text("[agent]\nerror-response = hello world\ntimeout-response = 10% ready up #slow\n");
        assert_eq!(
            errors,
            [
                "c.conf:2: [agent] error-response = \"hello world\": \"hello\" is no word of an agent reply (a weight like 50%, ready, drain, maint, up, down, fail, stopped, maxconn:N, #text): HAProxy would report it as an agent error"
            ]
        );
    }

    #[test]
    fn each_section_of_a_family_is_checked_under_its_own_name() {
        let (errors, warnings) = check_text(
            "[backend:web]\nsource = consul\nmax-leave = 2\n\n[backend:api]\nsource = file\ndrain_timeout = 5\n",
        );
        assert_eq!(
            errors,
            [
                "c.conf:3: [backend:web] max-leave = \"2\": must be from 0 to 1",
                "c.conf:1: [backend:web]: set exactly one of sockets, socket-dir and master-socket (0 are set)",
                "c.conf:5: [backend:api]: set exactly one of sockets, socket-dir and master-socket (0 are set)",
                "c.conf:5: [backend:api]: source = file needs `file`",
            ]
        );
        assert_eq!(
            warnings,
            ["c.conf:7: [backend:api] drain_timeout: unknown key, ignored (did you mean `drain-timeout`?)"]
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
