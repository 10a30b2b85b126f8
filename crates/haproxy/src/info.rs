//! `show info`: `Name: value` lines, in reply order, integers kept as integers.
//!
//! Keys may contain spaces and dashes (`Unstoppable Jobs`, `Ulimit-n`, `Build info`)
//! and values may contain `: `, so a line is split at its first `": "`. A key
//! with nothing after the colon (`description:`) has an empty text value.

use std::fmt;

/// One value of `show info`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InfoValue {
    /// A value that is an integer (`CurrConns: 3`).
    Int(i64),
    /// Anything else (`Version: 2.6.12-1+deb12u4`, `Uptime: 0d 0h03m29s`).
    Text(String),
}

impl InfoValue {
    /// The integer, for integer values.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            InfoValue::Int(value) => Some(*value),
            InfoValue::Text(_) => None,
        }
    }
}

impl fmt::Display for InfoValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InfoValue::Int(value) => write!(f, "{value}"),
            InfoValue::Text(text) => f.write_str(text),
        }
    }
}

/// Why a reply is not `show info` output.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InfoError {
    /// Nothing but blank lines.
    #[error("empty input: no `Name: value` lines")]
    Empty,
    /// A non-blank line without a colon.
    #[error("line {line}: expected `Name: value`, found {text:?}")]
    NotKeyValue {
        /// 1-based line number.
        line: usize,
        /// The line, cut to 80 characters.
        text: String,
    },
}

/// A parsed `show info` reply.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ShowInfo {
    entries: Vec<(String, InfoValue)>,
}

impl ShowInfo {
    /// Parses a reply.
    pub fn parse(text: &str) -> Result<Self, InfoError> {
        let mut entries = Vec::new();
        for (index, raw_line) in text.lines().enumerate() {
            let line = raw_line.trim_end_matches('\r');
            if line.trim().is_empty() {
                continue;
            }
            let (key, value) = match line.split_once(": ") {
                Some(pair) => pair,
                None => match line.strip_suffix(':') {
                    Some(key) => (key, ""),
                    None => {
                        return Err(InfoError::NotKeyValue {
                            line: index + 1,
                            text: crate::excerpt(line),
                        });
                    }
                },
            };
            let value = match value.trim().parse::<i64>() {
                Ok(number) => InfoValue::Int(number),
                Err(_) => InfoValue::Text(value.to_owned()),
            };
            entries.push((key.trim().to_owned(), value));
        }
        if entries.is_empty() {
            return Err(InfoError::Empty);
        }
        Ok(ShowInfo { entries })
    }

    /// All entries in reply order.
    pub fn entries(&self) -> &[(String, InfoValue)] {
        &self.entries
    }

    /// The value of `key` (exact, case-sensitive, as HAProxy spells it).
    pub fn get(&self, key: &str) -> Option<&InfoValue> {
        self.entries
            .iter()
            .find(|(name, _)| name == key)
            .map(|(_, value)| value)
    }

    /// The integer value of `key`.
    pub fn int(&self, key: &str) -> Option<i64> {
        self.get(key).and_then(InfoValue::as_int)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_quote_a_short_excerpt_of_the_input_only() {
        let line = format!("root:x:0:0:root:/root:/bin/bash{}", "y".repeat(100));
        let error = ShowInfo::parse(&format!("{}\n", line.replace(':', ";")))
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            "line 1: expected `Name: value`, found \"root;x;0;0;root;/root;/bin/bashyyyyyyyyy…\""
        );
    }

    #[test]
    fn keeps_order_integers_and_text() {
        let info = ShowInfo::parse(
            "Name: HAProxy\nUptime: 0d 0h03m29s\nUptime_sec: 209\nUlimit-n: 20000\ndescription:\nBuild info: 2.6: x\n\n",
        )
        .unwrap();
        assert_eq!(info.entries().len(), 6);
        assert_eq!(info.get("Name"), Some(&InfoValue::Text("HAProxy".into())));
        assert_eq!(info.int("Uptime_sec"), Some(209));
        assert_eq!(info.int("Ulimit-n"), Some(20000));
        assert_eq!(info.get("description"), Some(&InfoValue::Text(String::new())));
        assert_eq!(info.get("Build info"), Some(&InfoValue::Text("2.6: x".into())));
        assert_eq!(info.int("Name"), None);
    }

    #[test]
    fn refuses_lines_that_are_not_key_value() {
        assert_eq!(ShowInfo::parse("\n\n"), Err(InfoError::Empty));
        assert_eq!(
            ShowInfo::parse("Name: HAProxy\nUnknown command\n"),
            Err(InfoError::NotKeyValue {
                line: 2,
                text: "Unknown command".into()
            })
        );
    }
}
