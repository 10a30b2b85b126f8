//! haproxide's configuration: haproxystats' INI files, read the same way.
//!
//! Built-in defaults are loaded first as section values, then the main file
//! (`-f`, default `/etc/haproxystats.conf`; a missing *default* file means
//! built-in defaults only), then every `*.conf` of `-d DIR` in sorted order.
//! Values are interpolated when read, and every typed getter names the file,
//! line, section and key of a value it cannot use. [`schema`] says which keys
//! each section knows and checks them; `-p`/`-P` print in haproxystats' format.

pub mod declare;
pub mod docs;
pub mod flags;
mod ini;
pub mod schema;
pub mod yaml;

use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};

pub use declare::{DefaultValue, Key, Section};
pub use ini::{DEFAULT_SECTION, Ini, Origin};

/// The file haproxystats and haproxide read when `-f` is not given.
pub const DEFAULT_CONFIG_FILE: &str = "/etc/haproxystats.conf";

/// `[DEFAULT] loglevel`: how much the daemons log.
pub const LOGLEVEL: Key<tracing::Level> = Key::new(
    "loglevel",
    declare::LOG_LEVEL,
    DefaultValue::Builtin("info"),
    "how much a daemon logs: debug, info, warning or error (Python's level names)",
);

/// `[DEFAULT]`: what every section inherits unless it sets its own.
pub const DEFAULT: Section = Section::of(
    DEFAULT_SECTION,
    "values every section inherits unless it sets its own",
    &[
        &LOGLEVEL,
        &Key::new(
            "retries",
            declare::RETRIES,
            DefaultValue::Builtin("2"),
            "attempts after the first, for sections that retry (-1: no limit)",
        ),
        &Key::new(
            "timeout",
            declare::POSITIVE_SECONDS,
            DefaultValue::Builtin("1"),
            "seconds an attempt may take, for sections that time out",
        ),
        &Key::new(
            "interval",
            declare::SECONDS,
            DefaultValue::Builtin("2"),
            "seconds between attempts, for sections that retry",
        ),
    ],
);

/// `[paths] base-dir`.
pub const BASE_DIR: Key<PathBuf> = Key::new(
    "base-dir",
    declare::PATH,
    DefaultValue::Builtin("/var/lib/haproxystats"),
    "a directory for other values to refer to as `${paths:base-dir}`",
);

/// `[paths]`.
pub const PATHS: Section = Section::of("paths", "paths other sections refer to", &[&BASE_DIR]);

/// Every section haproxide knows, in the order the docs list them.
pub const SECTIONS: &[&Section] = &[
    &DEFAULT,
    &PATHS,
    &crate::stats::collect::SECTION,
    &crate::stats::pipeline::SECTION,
    &crate::stats::sinks::graphite::SECTION,
    &crate::stats::sinks::local_store::SECTION,
    &crate::stats::sinks::kafka::SECTION,
    &crate::stats::sinks::kafka_rounds::SECTION,
    &crate::stats::sinks::prometheus::SECTION,
    &crate::stats::pipeline::FRONTEND_GROUPS,
    &crate::stats::pipeline::BACKEND_GROUPS,
    &crate::stats::pipeline::SERVER_GROUPS,
    &crate::stats::cluster::SECTIONS,
    &crate::agent::SECTION,
    &crate::agent::URLS,
    &crate::reload::SECTION,
    &crate::backends::SECTION,
    &crate::backends::BACKEND_SECTIONS,
    &crate::backends::TEMPLATE_SECTION,
    &crate::backends::ep2::HAPROXY,
    &crate::backends::ep2::CONSUL,
    &crate::backends::ep2::AWS,
    &crate::logs::config::SECTION,
    &crate::logs::config::SOCKET,
    &crate::logs::config::PARSER,
    &crate::logs::config::KAFKA,
    &crate::logs::config::BUFFER,
    &crate::logs::config::RDKAFKA,
    &crate::logs::config::MONITORING,
    &crate::logs::config::TRANSFORM,
    &crate::logs::config::FIELDS,
];

/// The section called `name`, if haproxide knows it.
pub fn known_section(name: &str) -> Option<&'static Section> {
    SECTIONS.iter().copied().find(|section| section.matches(name))
}

/// Which program's view of the configuration `-p`/`-P` print and start-up checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Program {
    /// `pull` reads `[DEFAULT]` and `[pull]`.
    Pull,
    /// `process` reads `[DEFAULT]`, `[paths]`, `[process]`, its sinks' sections, the group sections and `[cluster:NAME]`.
    Process,
    /// `agent` reads `[DEFAULT]`, `[agent]` and `[agent-urls]`.
    Agent,
    /// `reload` reads `[DEFAULT]` and `[reload]`.
    Reload,
    /// `backends` reads `[DEFAULT]`, `[backends]` and every `[backend:NAME]`.
    Backends,
    /// `ep2` reads `[DEFAULT]` and EP2's `[haproxy]` and `[consul]`.
    Ep2,
    /// `logs` (and `haproxykafka`) reads `[DEFAULT]` and the `[logs…]` sections.
    Logs,
}

impl Program {
    /// The sections the program reads (and so `-p`/`-P` print): a positive
    /// list, so a section added for another program never shows up here.
    pub fn sections(self) -> &'static [&'static Section] {
        use crate::stats::{collect, pipeline, sinks};
        match self {
            Program::Pull => &[&DEFAULT, &collect::SECTION],
            Program::Process => &[
                &DEFAULT,
                &PATHS,
                &pipeline::SECTION,
                &sinks::graphite::SECTION,
                &sinks::local_store::SECTION,
                &sinks::kafka::SECTION,
                &sinks::kafka_rounds::SECTION,
                &sinks::prometheus::SECTION,
                &pipeline::FRONTEND_GROUPS,
                &pipeline::BACKEND_GROUPS,
                &pipeline::SERVER_GROUPS,
                &crate::stats::cluster::SECTIONS,
            ],
            Program::Agent => &[&DEFAULT, &crate::agent::SECTION, &crate::agent::URLS],
            Program::Reload => &[&DEFAULT, &crate::reload::SECTION],
            Program::Backends => &[
                &DEFAULT,
                &crate::backends::SECTION,
                &crate::backends::BACKEND_SECTIONS,
                &crate::backends::TEMPLATE_SECTION,
                &crate::reload::SECTION,
            ],
            Program::Ep2 => &[
                &DEFAULT,
                &crate::backends::ep2::HAPROXY,
                &crate::backends::ep2::CONSUL,
                &crate::backends::ep2::AWS,
            ],
            Program::Logs => {
                use crate::logs::config::{FIELDS, KAFKA, MONITORING, PARSER, RDKAFKA, SECTION, SOCKET, TRANSFORM};
                &[
                    &DEFAULT,
                    &SECTION,
                    &SOCKET,
                    &PARSER,
                    &KAFKA,
                    &RDKAFKA,
                    &MONITORING,
                    &TRANSFORM,
                    &FIELDS,
                ]
            }
        }
    }

    /// Whether the program reads `section`.
    pub fn reads(self, section: &str) -> bool {
        self.sections().iter().any(|known| known.matches(section))
    }
}

/// A configuration problem, naming where it is.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A file or directory that cannot be read.
    #[error("{}: {reason}", path.display())]
    Read {
        /// The file or directory.
        path: PathBuf,
        /// Why, in words (`No such file or directory`).
        reason: String,
    },
    /// A file that is not UTF-8 text.
    #[error("{}:{line}: not UTF-8 text", path.display())]
    NotText {
        /// The file.
        path: PathBuf,
        /// The line of the first byte that is not.
        line: usize,
    },
    /// A line that is not INI.
    #[error(transparent)]
    Syntax(#[from] ini::SyntaxError),
    /// A value that is not what its key needs.
    #[error(transparent)]
    Value(Box<BadValue>),
    /// A rule that involves a whole section.
    #[error("{location}[{section}]: {message}")]
    Section {
        /// `file:line: ` of the section header, or empty.
        location: String,
        /// The section.
        section: String,
        /// What is wrong.
        message: String,
    },
}

impl ConfigError {
    /// `path` cannot be read because of `error`, said once and in words.
    fn read(path: &Path, error: &io::Error) -> ConfigError {
        let text = error.to_string();
        let reason = text.split_once(" (os error").map_or(text.as_str(), |(words, _)| words);
        ConfigError::Read {
            path: path.to_owned(),
            reason: reason.to_owned(),
        }
    }
}

/// A value that is not what its key needs, with where it was set.
#[derive(Debug, thiserror::Error)]
#[error("{origin}: [{section}] {key} = {value:?}: {message}")]
pub struct BadValue {
    /// Where the value was set.
    pub origin: Origin,
    /// Section it was read from.
    pub section: String,
    /// The key.
    pub key: String,
    /// The value, interpolated when interpolation succeeded.
    pub value: String,
    /// What is wrong.
    pub message: String,
}

/// A loaded configuration.
#[derive(Debug, Clone)]
pub struct Config {
    ini: Ini,
    files: Vec<PathBuf>,
    /// Values a file gives that its reader ignores: `file:line: key: why`.
    ignored: Vec<String>,
}

/// Where [`Config::load_yaml`] puts one value of another program's YAML file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placed {
    /// A value of a section.
    Value {
        /// The section it goes in.
        section: String,
        /// Its key there.
        key: String,
        /// Its text, as the section takes it.
        text: String,
    },
    /// Nowhere: the program ignores the key too; why, for the warning.
    Ignored(&'static str),
    /// Nowhere: the value cannot be this key's; why, for the error.
    Refused(&'static str),
}

impl Config {
    /// Built-in defaults only: every declared [`DefaultValue::Builtin`].
    pub fn builtin() -> Config {
        let mut ini = Ini::default();
        for section in SECTIONS.iter().filter(|section| !section.is_family()) {
            for key in section.keys {
                if let DefaultValue::Builtin(value) = key.default() {
                    ini.set_builtin(section.name, key.name(), value);
                }
            }
        }
        Config {
            ini,
            files: Vec::new(),
            ignored: Vec::new(),
        }
    }

    /// `key` of `section` as its typed value: set in the section, inherited
    /// from `[DEFAULT]`, or its declared default; `None` when it has none.
    pub fn get_opt<T>(&self, section: &Section, key: &Key<T>) -> Result<Option<T>, ConfigError> {
        self.get_opt_in(section.name, key)
    }

    /// As [`Config::get_opt`], in the section called `name` (one of a family).
    pub fn get_opt_in<T>(&self, name: &str, key: &Key<T>) -> Result<Option<T>, ConfigError> {
        if let Some(value) = self.typed(name, key.name, key.parser.parse)? {
            return Ok(Some(value));
        }
        let (DefaultValue::Builtin(text) | DefaultValue::Fallback(text)) = key.default else {
            return Ok(None);
        };
        let value = self
            .ini
            .interpolate(name, text)
            .map_err(|error| self.bad_value(name, key.name, text.to_owned(), error.message))?;
        (key.parser.parse)(&value)
            .map(Some)
            .map_err(|message| self.bad_value(name, key.name, value, message))
    }

    /// As [`Config::get_opt`], for a key that has a default.
    pub fn get<T>(&self, section: &Section, key: &Key<T>) -> Result<T, ConfigError> {
        self.get_in(section.name, key)
    }

    /// As [`Config::get`], in the section called `name` (one of a family).
    pub fn get_in<T>(&self, name: &str, key: &Key<T>) -> Result<T, ConfigError> {
        self.get_opt_in(name, key)?.ok_or_else(|| ConfigError::Section {
            location: schema::section_location(self, name),
            section: name.to_owned(),
            message: format!("{} is not set", key.name),
        })
    }

    /// Loads built-in defaults, then `file` (`None`: [`DEFAULT_CONFIG_FILE`] if it
    /// exists), then the sorted `*.conf` files of `dir`.
    pub fn load(file: Option<&Path>, dir: Option<&Path>) -> Result<Config, ConfigError> {
        let mut config = Config::builtin();
        match file {
            Some(path) => config.read_file(path)?,
            None => {
                let default = Path::new(DEFAULT_CONFIG_FILE);
                if default.exists() {
                    config.read_file(default)?;
                }
            }
        }
        if let Some(dir) = dir {
            let read_error = |error| ConfigError::read(dir, &error);
            let mut extra: Vec<PathBuf> = std::fs::read_dir(dir)
                .map_err(read_error)?
                .filter_map(Result::ok)
                .map(|entry| entry.path())
                .filter(|path| {
                    let name = path.file_name().map(|name| name.to_string_lossy()).unwrap_or_default();
                    name.ends_with(".conf") && !name.starts_with('.')
                })
                .collect();
            extra.sort();
            for path in extra {
                config.read_file(&path)?;
            }
        }
        Ok(config)
    }

    fn read_file(&mut self, path: &Path) -> Result<(), ConfigError> {
        let text = read_text(path)?;
        self.ini.read(path, &text)?;
        self.files.push(path.to_owned());
        Ok(())
    }

    /// Loads built-in defaults, then the YAML file `path`, each of whose
    /// values `place` puts in a section and key, written as the section
    /// takes it, or ignores or refuses (`None` for a key the program does
    /// not know). What is refused or unknown is an error naming its line.
    pub fn load_yaml(path: &Path, place: impl Fn(&yaml::YamlValue) -> Option<Placed>) -> Result<Config, ConfigError> {
        let mut config = Config::builtin();
        let text = read_text(path)?;
        for value in yaml::flatten(path, &text)? {
            let refused = |message: String| {
                ConfigError::Syntax(ini::SyntaxError {
                    path: path.to_owned(),
                    line: value.line,
                    message,
                })
            };
            match place(&value) {
                Some(Placed::Value { section, key, text }) => {
                    config
                        .ini
                        .set_from_file(&section, &key, &text, (path, value.line), &value.key)
                }
                Some(Placed::Ignored(why)) => {
                    let origin = Origin::File {
                        path: path.to_owned(),
                        line: value.line,
                        written_as: Some(value.key.clone()),
                    };
                    config.ignored.push(format!("{origin}: {why}, ignored"));
                }
                Some(Placed::Refused(why)) => return Err(refused(format!("{}: {why}", value.key))),
                None => return Err(refused(format!("unknown key {}", value.key))),
            }
        }
        config.files.push(path.to_owned());
        Ok(config)
    }

    /// Values the files give that their reader ignores, one line each.
    pub fn ignored(&self) -> &[String] {
        &self.ignored
    }

    /// Forgets the empty values of `section`: they mean "unset" there.
    pub fn forget_empty_values(&mut self, section: &str) {
        self.ini.remove_empty(section);
    }

    /// The files read, in order.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// The underlying sections.
    pub fn ini(&self) -> &Ini {
        &self.ini
    }

    /// Whether `[section]` exists (built-in or from a file).
    pub fn has_section(&self, section: &str) -> bool {
        self.ini.section(section).is_some()
    }

    /// The interpolated value of `key` as seen from `section`, `None` when unset.
    pub fn string(&self, section: &str, key: &str) -> Result<Option<String>, ConfigError> {
        let Some(entry) = self.ini.lookup(section, key) else {
            return Ok(None);
        };
        self.ini
            .interpolate(section, &entry.value)
            .map(Some)
            .map_err(|error| self.bad_value(section, key, entry.value.clone(), error.message))
    }

    /// Reads `key` and converts it with `convert`, whose error message is wrapped
    /// with the value's origin, section and key.
    pub fn typed<T>(
        &self,
        section: &str,
        key: &str,
        convert: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<Option<T>, ConfigError> {
        let Some(value) = self.string(section, key)? else {
            return Ok(None);
        };
        match convert(&value) {
            Ok(converted) => Ok(Some(converted)),
            Err(message) => Err(self.bad_value(section, key, value, message)),
        }
    }

    pub(crate) fn bad_value(&self, section: &str, key: &str, value: String, message: String) -> ConfigError {
        let origin = self
            .ini
            .lookup(section, key)
            .map_or(Origin::BuiltIn, |entry| entry.origin.clone());
        ConfigError::Value(Box::new(BadValue {
            origin,
            section: section.to_owned(),
            key: key.to_owned(),
            value,
            message,
        }))
    }

    /// Prints the built-in defaults (`-p`) for `program`, in haproxystats' format.
    pub fn print_defaults(program: Program) -> String {
        // Built-in values never need interpolation and always interpolate cleanly.
        Config::builtin().print_sections(program, false).unwrap_or_default()
    }

    /// Prints the effective, interpolated configuration (`-P`) for `program`.
    pub fn print_effective(&self, program: Program) -> Result<String, ConfigError> {
        self.print_sections(program, true)
    }

    /// Sections sorted by name (`DEFAULT` first, as Python sorts), each as
    /// `[name]`, sorted `key = value` lines and an empty line. With `inherited`,
    /// a section also lists the `[DEFAULT]` keys it inherits, as configparser does.
    fn print_sections(&self, program: Program, inherited: bool) -> Result<String, ConfigError> {
        let mut names: Vec<&str> = std::iter::once(DEFAULT_SECTION)
            .chain(self.ini.section_names())
            .collect();
        names.sort_unstable();
        let mut out = String::new();
        for name in names.into_iter().filter(|name| program.reads(name)) {
            let keys: Vec<&str> = if inherited || name == DEFAULT_SECTION {
                self.ini.visible_keys(name)
            } else {
                let mut own: Vec<&str> = self
                    .ini
                    .section(name)
                    .map(|section| section.entries.iter().map(|entry| entry.key.as_str()).collect())
                    .unwrap_or_default();
                own.sort_unstable();
                own
            };
            let _ = writeln!(out, "[{name}]");
            for key in keys {
                let value = self.string(name, key)?.unwrap_or_default();
                let _ = writeln!(out, "{key} = {value}");
            }
            out.push('\n');
        }
        Ok(out)
    }
}

/// The text of a configuration file, which must be UTF-8.
fn read_text(path: &Path) -> Result<String, ConfigError> {
    let bytes = std::fs::read(path).map_err(|error| ConfigError::read(path, &error))?;
    String::from_utf8(bytes).map_err(|error| ConfigError::NotText {
        path: path.to_owned(),
        line: 1 + error.as_bytes()[..error.utf8_error().valid_up_to()]
            .iter()
            .filter(|byte| **byte == b'\n')
            .count(),
    })
}

/// Loads the configuration and checks the sections `program` reads; every
/// error goes to stderr, naming file, line, section and key.
pub fn load_checked(file: Option<&Path>, dir: Option<&Path>, program: Program) -> anyhow::Result<Config> {
    check_loaded(Config::load(file, dir)?, program)
}

/// Checks the sections `program` reads of a loaded configuration (to which
/// command-line flags may have been applied), as [`load_checked`] does.
pub fn check_loaded(config: Config, program: Program) -> anyhow::Result<Config> {
    let report = schema::check(&config, schema::Scope::Of(program));
    for warning in &report.warnings {
        eprintln!("warning: {warning}");
    }
    if !report.errors.is_empty() {
        for error in &report.errors {
            eprintln!("error: {error}");
        }
        anyhow::bail!("invalid configuration: {} error(s)", report.errors.len());
    }
    Ok(config)
}

/// Whether `path` is a YAML file (`.yaml`, `.yml`): HAProxyKafka's, read
/// into the `[logs…]` sections, or Datawave's agent's, read into `[agent]`.
pub fn is_yaml(path: &Path) -> bool {
    path.extension()
        .is_some_and(|extension| extension == "yaml" || extension == "yml")
}

/// `check-config`: every problem on stderr; exit 1 if any is an error.
pub fn check_config(file: Option<&Path>, dir: Option<&Path>) -> anyhow::Result<std::process::ExitCode> {
    let (config, scope) = match file {
        Some(path) if is_yaml(path) && crate::agent::datawave::is_datawave_file(path) => {
            (crate::agent::datawave::load(path)?, schema::Scope::Of(Program::Agent))
        }
        Some(path) if is_yaml(path) => (crate::logs::haproxykafka::load(path)?, schema::Scope::Of(Program::Logs)),
        _ => (Config::load(file, dir)?, schema::Scope::All),
    };
    let report = schema::check(&config, scope);
    for warning in &report.warnings {
        eprintln!("warning: {warning}");
    }
    for error in &report.errors {
        eprintln!("error: {error}");
    }
    let read: Vec<String> = config.files().iter().map(|path| path.display().to_string()).collect();
    let read = if read.is_empty() {
        "built-in defaults".to_owned()
    } else {
        read.join(", ")
    };
    if report.errors.is_empty() {
        println!("configuration is valid ({read})");
        Ok(std::process::ExitCode::SUCCESS)
    } else {
        eprintln!("configuration is invalid: {} error(s) ({read})", report.errors.len());
        Ok(std::process::ExitCode::FAILURE)
    }
}

/// Parses an integer as Python's `int()` would for config values.
pub fn parse_int(text: &str) -> Result<i64, String> {
    text.trim().parse::<i64>().map_err(|_| "expected an integer".to_owned())
}

/// Parses a finite number.
pub fn parse_float(text: &str) -> Result<f64, String> {
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|number| number.is_finite())
        .ok_or_else(|| "expected a number".to_owned())
}

/// Parses a duration in seconds, fractions allowed (`0.5`).
pub fn parse_seconds(text: &str) -> Result<std::time::Duration, String> {
    std::time::Duration::try_from_secs_f64(parse_float(text)?)
        .map_err(|_| "expected a number of seconds, 0 or more".to_owned())
}

/// Parses an IPv4 or IPv6 address, with or without brackets (`[::1]`).
pub fn parse_ip(text: &str) -> Result<std::net::IpAddr, String> {
    text.trim_matches(['[', ']'])
        .parse()
        .map_err(|_| "not an IPv4 or IPv6 address".to_owned())
}

/// Parses a retry count as haproxystats reads it: `-1` for no limit, else how
/// many attempts follow the first.
pub fn parse_retries(text: &str) -> Result<haproxy::Retries, String> {
    match parse_int(text)? {
        -1 => Ok(haproxy::Retries::Forever),
        count => u32::try_from(count)
            .map(haproxy::Retries::Limited)
            .map_err(|_| "must be -1 (no limit), or 0 or more".to_owned()),
    }
}

/// Parses a size in bytes: a whole number with an optional `K`, `M`, `G` or `T`
/// suffix (powers of 1024), e.g. `64M`.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let (digits, unit) = match text.char_indices().last() {
        Some((index, suffix)) if suffix.is_ascii_alphabetic() => (&text[..index], suffix.to_ascii_uppercase()),
        _ => (text, 'B'),
    };
    let shift = match unit {
        'B' => 0,
        'K' => 10,
        'M' => 20,
        'G' => 30,
        'T' => 40,
        _ => return Err("expected a size such as 64M (suffixes K, M, G, T)".into()),
    };
    digits
        .trim()
        .parse::<u64>()
        .ok()
        .and_then(|number| number.checked_mul(1 << shift))
        .ok_or_else(|| "expected a size such as 64M (suffixes K, M, G, T)".into())
}

/// Parses `servers`: comma-separated `unix:///path` / `tcp://host:port`
/// entries (outer commas and spaces around entries ignored).
pub fn parse_servers(text: &str) -> Result<Vec<haproxy::Endpoint>, String> {
    let entries: Vec<&str> = text.trim().trim_matches(',').split(',').map(str::trim).collect();
    if entries.iter().any(|entry| entry.is_empty()) {
        return Err("empty entry in the comma-separated list".into());
    }
    entries
        .into_iter()
        .map(|entry| entry.parse().map_err(|error: haproxy::EndpointError| error.to_string()))
        .collect()
}

/// Parses a configparser boolean.
pub fn parse_bool(text: &str) -> Result<bool, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "1" | "yes" | "true" | "on" => Ok(true),
        "0" | "no" | "false" | "off" => Ok(false),
        _ => Err("expected a boolean (true/false, yes/no, on/off, 1/0)".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> (tempfile::TempDir, Config) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.conf");
        std::fs::write(&path, text).unwrap();
        let config = Config::load(Some(&path), None).unwrap();
        (dir, config)
    }

    #[test]
    fn built_in_defaults_print_exactly_as_haproxystats() {
        // The outputs of `haproxystats-pull -p` / `haproxystats-process -p` 0.5.1.
        let pull = include_str!("../../tests/data/haproxystats-pull-p.txt");
        let process = include_str!("../../tests/data/haproxystats-process-p.txt");
        assert_eq!(Config::print_defaults(Program::Pull), pull);
        assert_eq!(Config::print_defaults(Program::Process), process);
    }

    #[test]
    fn effective_config_interpolates_and_lists_inherited_keys() {
        let (_dir, config) = load(
            "[paths]\nbase-dir = /srv/hs\n[pull]\ndst-dir = ${paths:base-dir}/incoming\n[local-store]\ndir = ${paths:base-dir}/ls\n",
        );
        let pull = config.print_effective(Program::Pull).unwrap();
        assert!(
            pull.contains(
                "[pull]\nbuffer-limit = 6291456\ndst-dir = /srv/hs/incoming\ninterval = 0.5\nloglevel = info\n"
            ),
            "{pull}"
        );
        let process = config.print_effective(Program::Process).unwrap();
        assert!(
            process.contains(
                "[local-store]\ndir = /srv/hs/ls\ninterval = 2\nloglevel = info\nretries = 2\ntimeout = 1\n\n"
            ),
            "{process}"
        );
        assert!(!process.contains("[pull]"));
    }

    #[test]
    fn typed_getters_name_file_line_section_and_key() {
        let (dir, config) = load("[process]\nworkers = x\n");
        let error = config.typed("process", "workers", parse_int).unwrap_err().to_string();
        let path = dir.path().join("h.conf");
        assert_eq!(
            error,
            format!("{}:2: [process] workers = \"x\": expected an integer", path.display())
        );
        assert_eq!(config.typed("pull", "workers", parse_int).unwrap(), Some(8));
        assert_eq!(config.typed("pull", "timeout", parse_float).unwrap(), Some(0.1));
        assert_eq!(config.typed("graphite", "fqdn", parse_bool).unwrap(), Some(true));
        assert_eq!(config.string("pull", "socket-dir").unwrap(), None);
    }

    #[test]
    fn sizes_take_binary_suffixes() {
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("64M"), Ok(64 << 20));
        assert_eq!(parse_size(" 2g "), Ok(2 << 30));
        assert!(parse_size("12Q").is_err());
        assert!(parse_size("M").is_err());
        assert!(parse_size("-1K").is_err());
    }

    #[test]
    fn seconds_and_retry_counts_read_as_haproxystats_writes_them() {
        assert_eq!(parse_seconds("1.8"), Ok(std::time::Duration::from_millis(1800)));
        assert_eq!(parse_seconds("0"), Ok(std::time::Duration::ZERO));
        assert_eq!(
            parse_seconds("-1"),
            Err("expected a number of seconds, 0 or more".to_owned())
        );
        assert_eq!(parse_retries("-1"), Ok(haproxy::Retries::Forever));
        assert_eq!(parse_retries("3"), Ok(haproxy::Retries::Limited(3)));
        assert_eq!(
            parse_retries("-2"),
            Err("must be -1 (no limit), or 0 or more".to_owned())
        );
    }

    #[test]
    fn user_default_section_does_not_shadow_builtin_section_values() {
        // configparser semantics: section values beat [DEFAULT], even built-in ones.
        let (_dir, config) = load("[DEFAULT]\nretries = 9\nloglevel = debug\n");
        assert_eq!(config.typed("pull", "retries", parse_int).unwrap(), Some(1));
        assert_eq!(config.string("pull", "loglevel").unwrap().as_deref(), Some("debug"));
    }

    #[test]
    fn explicit_missing_file_is_an_error_and_dir_files_load_sorted() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.conf");
        let error = Config::load(Some(&missing), None).unwrap_err();
        assert!(error.to_string().starts_with(&missing.display().to_string()));
        std::fs::write(dir.path().join("b.conf"), "[graphite]\nport = 2\n").unwrap();
        std::fs::write(dir.path().join("a.conf"), "[graphite]\nport = 1\n").unwrap();
        std::fs::write(dir.path().join("c.txt"), "[graphite]\nport = 3\n").unwrap();
        let main = dir.path().join("main");
        std::fs::write(&main, "").unwrap();
        let config = Config::load(Some(&main), Some(dir.path())).unwrap();
        assert_eq!(config.typed("graphite", "port", parse_int).unwrap(), Some(2));
        assert_eq!(config.files().len(), 3);
        assert!(Config::load(Some(&main), Some(&missing)).is_err());
    }
}
