//! One place for librdkafka (vendored: Debian's 2.0.2 cannot talk to
//! current brokers): a client's properties from the configuration, every
//! entry of a section (`[logs-rdkafka]`) or those with a prefix
//! (`[kafka] rdkafka.acks`), passed as they are over a few defaults of the
//! caller's, and librdkafka's own verdict on them for `check-config`.

use rdkafka::ClientConfig;

use crate::config::schema::section_location;
use crate::config::{Config, ConfigError};

/// A librdkafka property name: letters, digits, `.`, `_` and `-`.
pub fn check_property_name(key: &str) -> Result<(), String> {
    if key.is_empty()
        || !key
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b"._-".contains(&byte))
    {
        return Err("a librdkafka property name is letters, digits, `.`, `_` and `-`".into());
    }
    Ok(())
}

/// `defaults`, then every entry of `section` whose key starts with
/// `prefix`, the prefix taken off (interpolated as any value is).
pub fn client_config(
    config: &Config,
    section: &str,
    prefix: &str,
    defaults: &[(&str, &str)],
) -> Result<ClientConfig, ConfigError> {
    let mut client = ClientConfig::new();
    for (key, value) in defaults {
        client.set(*key, *value);
    }
    if let Some(own) = config.ini().section(section) {
        for entry in &own.entries {
            if let Some(property) = entry.key.strip_prefix(prefix) {
                let value = config.string(section, &entry.key)?.unwrap_or_default();
                client.set(property.to_owned(), value);
            }
        }
    }
    Ok(client)
}

/// librdkafka's refusal of `client` (an unknown property, a bad value),
/// said of `section`.
pub fn refusal(config: &Config, section: &str, client: &ClientConfig) -> Option<ConfigError> {
    client.create_native_config().err().map(|error| ConfigError::Section {
        location: section_location(config, section),
        section: section.to_owned(),
        message: format!("librdkafka refuses it: {error}"),
    })
}
