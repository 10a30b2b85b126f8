//! Datawave's agent `config.yml` and command line, read into `[agent]`: so
//! `datawave-haproxy-agent -c config.yml` (the binary called by Datawave's
//! name) and `check-config -f config.yml` check and use the file as the
//! `[agent]` section, with `file:line` errors.
//!
//! Datawave's precedence is kept: `bind` and `port` in the file win over
//! `-b` and `-p`, which only fill in what the file leaves out. Keys Datawave
//! ignores (unknown ones, and `stop_timeout`, which has no use here) are
//! ignored with a warning that names their line.

use std::path::Path;

use crate::config::yaml::{self, YamlValue};
use crate::config::{Config, ConfigError, DEFAULT_SECTION, Placed};

use super::SECTION;

/// The file Datawave's agent reads when `-c` is not given.
pub const DEFAULT_CONFIG_FILE: &str = "/etc/datawave_haproxy_agent/config.yml";

/// `-b`'s default: every IPv4 address.
pub const DEFAULT_BIND: &str = "0.0.0.0";

/// `-p`'s default.
pub const DEFAULT_PORT: u16 = 5555;

/// `-l`'s choices, Python's level names as Datawave takes them.
pub const LOG_LEVELS: [&str; 4] = ["info", "warn", "debug", "critical"];

/// The mapping of the poller's settings.
const POLLER: &str = "dw_health_poller";

/// Datawave's keys (spec §2) and their `[agent]` keys.
const PLACES: &[(&str, &str)] = &[
    ("bind", "bind"),
    ("port", "port"),
    ("dw_health_poller.check_url", "health-url"),
    ("dw_health_poller.check_timeout", "timeout"),
    ("dw_health_poller.interval", "interval"),
    ("dw_health_poller.down_response", "down-response"),
    ("dw_health_poller.unavailable_response", "unavailable-response"),
    (
        "dw_health_poller.connection_usage_reduction",
        "connection-usage-reduction",
    ),
    ("dw_health_poller.os_load_reduction", "os-load-reduction"),
    ("dw_health_poller.swap_usage_reduction", "swap-usage-reduction"),
    ("dw_health_poller.staleness_interval", "staleness-interval"),
    ("dw_health_poller.staleness_response", "staleness-response"),
];

/// Where a value of Datawave's file goes.
fn place(value: &YamlValue) -> Option<Placed> {
    if let Some((_, key)) = PLACES.iter().find(|(yaml, _)| *yaml == value.key) {
        return Some(Placed::Value {
            section: SECTION.name.to_owned(),
            key: (*key).to_owned(),
            text: value.value.clone(),
        });
    }
    Some(match value.key.as_str() {
        "dw_health_poller.stop_timeout" => {
            Placed::Ignored("haproxide does not wait for a poll under way when it stops")
        }
        // `dw_health_poller:` with nothing under it: no settings of its own.
        POLLER if value.value.is_empty() => Placed::Ignored("empty, every setting at its default"),
        POLLER => Placed::Refused("expected a mapping of the poller's settings, as Datawave's agent does"),
        _ => Placed::Ignored("not a key of Datawave's agent, which ignores it too"),
    })
}

/// Loads Datawave's YAML file into `[agent]`.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    Config::load_yaml(path, place)
}

/// Whether the YAML file `path` is Datawave's rather than HAProxyKafka's:
/// it has `bind`, `port` or `dw_health_poller` at the top, which
/// HAProxyKafka's has not. A file that cannot be read or parsed is not.
pub fn is_datawave_file(path: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(path) else {
        return false;
    };
    yaml::flatten(path, &text).is_ok_and(|values| {
        values.iter().any(|value| {
            let top = value.key.split('.').next().unwrap_or_default();
            matches!(top, "bind" | "port" | POLLER)
        })
    })
}

/// Datawave's command line, once parsed.
#[derive(Debug, Clone)]
pub struct Flags<'a> {
    /// `-c`, or `None` with `-s` (defaults and flags only).
    pub config: Option<&'a Path>,
    /// `-b`: used where the file sets no `bind`.
    pub bind: &'a str,
    /// `-p`: used where the file sets no `port`.
    pub port: u16,
    /// `-l`: one of [`LOG_LEVELS`].
    pub loglevel: &'a str,
}

/// The configuration Datawave's command line gives: the file (unless
/// skipped), then `-b`/`-p` where it is silent, and `-l`.
pub fn configure(flags: &Flags<'_>) -> Result<Config, ConfigError> {
    let mut config = match flags.config {
        Some(path) => load(path)?,
        None => Config::builtin(),
    };
    config.set_flag_unless_in_file(SECTION.name, "bind", flags.bind);
    config.set_flag_unless_in_file(SECTION.name, "port", &flags.port.to_string());
    config.set_flag(DEFAULT_SECTION, "loglevel", flags.loglevel);
    Ok(config)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::time::Duration;

    use super::*;
    use crate::agent::Settings;
    use crate::config::schema;

    /// The values of Datawave's shipped `example_config.yml` (spec §2).
    const EXAMPLE: &str = "\
bind: 0.0.0.0
port: 5555
dw_health_poller:
  check_url: http://localhost:8080/DataWave/Common/Health/health
  check_timeout: 10.0
  interval: 1.0
  down_response: down
  unavailable_response: \"0% drain\"
  connection_usage_reduction: 0.7
  os_load_reduction: 0.4
  swap_usage_reduction: 0.3
  staleness_interval: 0
  staleness_response: ''
  stop_timeout: 0
";

    /// The same settings in haproxide's INI.
    const EXAMPLE_INI: &str = "\
[agent]
bind = 0.0.0.0
port = 5555
health-url = http://localhost:8080/DataWave/Common/Health/health
timeout = 10.0
interval = 1.0
down-response = down
unavailable-response = 0% drain
connection-usage-reduction = 0.7
os-load-reduction = 0.4
swap-usage-reduction = 0.3
staleness-interval = 0
";

    /// Writes `text` as `config.yml` in `dir`.
    fn write(dir: &tempfile::TempDir, text: &str) -> std::path::PathBuf {
        let path = dir.path().join("config.yml");
        std::fs::write(&path, text).unwrap();
        path
    }

    /// The problems `check-config` reports of Datawave's `text`, the
    /// directory shown as `DIR`: (errors, warnings).
    fn problems(text: &str) -> (Vec<String>, Vec<String>) {
        let dir = tempfile::tempdir().unwrap();
        let path = write(&dir, text);
        let shown = |line: String| line.replace(&dir.path().display().to_string(), "DIR");
        match load(&path) {
            Err(error) => (vec![shown(error.to_string())], Vec::new()),
            Ok(config) => {
                let report = schema::check(&config, schema::Scope::Of(crate::config::Program::Agent));
                (
                    report.errors.iter().map(|error| shown(error.to_string())).collect(),
                    report.warnings.into_iter().map(shown).collect(),
                )
            }
        }
    }

    #[test]
    fn the_example_file_gives_the_settings_of_the_equivalent_ini() {
        let dir = tempfile::tempdir().unwrap();
        let yaml = load(&write(&dir, EXAMPLE)).unwrap();
        let ini_path = dir.path().join("agent.conf");
        std::fs::write(&ini_path, EXAMPLE_INI).unwrap();
        let ini = Config::load(Some(&ini_path), None).unwrap();
        let (from_yaml, from_ini) = (
            Settings::from_config(&yaml).unwrap(),
            Settings::from_config(&ini).unwrap(),
        );
        assert_eq!(format!("{from_yaml:?}"), format!("{from_ini:?}"));
        assert_eq!(from_yaml.interval, Duration::from_secs(1));
        assert_eq!(from_yaml.address.to_string(), "0.0.0.0:5555");
        assert_eq!(from_yaml.unavailable_reply.to_string(), "0% drain");
        assert_eq!(from_yaml.staleness_reply.to_string(), "");
        assert_eq!(
            problems(EXAMPLE),
            (
                vec![],
                vec!["DIR/config.yml:14: dw_health_poller.stop_timeout: haproxide does not wait for a poll under way when it stops, ignored".to_owned()]
            )
        );
    }

    #[test]
    fn an_integer_is_taken_where_datawave_asserts_a_float() {
        let dir = tempfile::tempdir().unwrap();
        let text = "dw_health_poller:\n  interval: 2\n  check_timeout: 3\n  os_load_reduction: 0\n";
        let settings = Settings::from_config(&load(&write(&dir, text)).unwrap()).unwrap();
        assert_eq!(settings.interval, Duration::from_secs(2));
        assert_eq!(settings.formula.os_load_reduction, 0.0);
    }

    #[test]
    fn where_datawave_crashes_the_error_names_file_line_and_key() {
        assert_eq!(
            problems("").0,
            ["DIR/config.yml:1: the file is empty: expected a YAML mapping of keys"]
        );
        assert_eq!(
            problems("port: 5555\ndw_health_poller:\n  interval: [1\n").0,
            ["DIR/config.yml:4: not YAML: while parsing a flow sequence, expected ',' or ']'"]
        );
        assert_eq!(
            problems("dw_health_poller:\n  connection_usage_reduction: 1.5\n").0,
            [
                "DIR/config.yml:2: dw_health_poller.connection_usage_reduction: [agent] connection-usage-reduction = \"1.5\": must be from 0 to 1"
            ]
        );
        assert_eq!(
            problems("port: 5555\ndw_health_poller: 5\n").0,
            [
                "DIR/config.yml:2: dw_health_poller: expected a mapping of the poller's settings, as Datawave's agent does"
            ]
        );
        assert_eq!(
            problems("port: http\n").0,
            ["DIR/config.yml:1: port: [agent] port = \"http\": expected an integer"]
        );
    }

    #[test]
    fn keys_datawave_ignores_are_ignored_with_a_warning_naming_their_line() {
        assert_eq!(
            problems("logging: verbose\ndw_health_poller:\n  check_urll: http://x/\n"),
            (
                vec![],
                vec![
                    "DIR/config.yml:1: logging: not a key of Datawave's agent, which ignores it too, ignored".to_owned(),
                    "DIR/config.yml:3: dw_health_poller.check_urll: not a key of Datawave's agent, which ignores it too, ignored".to_owned(),
                ]
            )
        );
    }

    #[test]
    fn an_empty_poller_mapping_leaves_every_setting_at_its_default() {
        assert_eq!(
            problems("port: 5555\ndw_health_poller:\n"),
            (
                vec![],
                vec!["DIR/config.yml:2: dw_health_poller: empty, every setting at its default, ignored".to_owned()]
            )
        );
    }

    #[test]
    fn the_file_wins_over_bind_and_port_flags_which_fill_in_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let flags = |config| Flags {
            config,
            bind: "127.0.0.1",
            port: 6000,
            loglevel: "debug",
        };
        let path = write(&dir, "port: 7000\n");
        let config = configure(&flags(Some(&path))).unwrap();
        let settings = Settings::from_config(&config).unwrap();
        assert_eq!(settings.address.to_string(), "127.0.0.1:7000");
        assert_eq!(
            config.get(&crate::config::DEFAULT, &crate::config::LOGLEVEL).unwrap(),
            tracing::Level::DEBUG
        );
        let skipped = Settings::from_config(&configure(&flags(None)).unwrap()).unwrap();
        assert_eq!(skipped.address.to_string(), "127.0.0.1:6000");
    }
}
