//! How a component declares its configuration: once, as a [`Section`] of
//! [`Key`]s, each with its name, value type ([`Parser`]), default and a
//! one-line doc. That one declaration is what `check-config` checks, what
//! `-p` prints (built-in defaults), what the component reads as a typed value
//! ([`super::Config::get`]) and what the README's option tables show
//! ([`super::docs`]).

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use haproxy::{Endpoint, Retries};

use super::{parse_bool, parse_float, parse_int, parse_ip, parse_retries, parse_seconds, parse_servers, parse_size};

/// A value type: how text becomes a `T`, and what to call it in docs.
#[derive(Debug)]
pub struct Parser<T: 'static> {
    /// What the value is, for the docs (`seconds`, `integer ≥ 1`).
    pub kind: &'static str,
    /// Parses a value; the error says what is wrong with it.
    pub parse: fn(&str) -> Result<T, String>,
}

impl<T> Clone for Parser<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Parser<T> {}

/// What a key holds when the files do not set it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultValue {
    /// A built-in value of the section, as haproxystats has them: `-p` prints
    /// it, and a `[DEFAULT]` value does not override it.
    Builtin(&'static str),
    /// Used when neither the section nor `[DEFAULT]` sets the key
    /// (`${…}` interpolated).
    Fallback(&'static str),
    /// No value: the text says what that means.
    Unset(&'static str),
}

/// Whether a key does anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// It is read and used.
    Active,
    /// It is accepted and checked, for haproxystats' files, but has no
    /// effect; the text says why.
    Ignored(&'static str),
}

/// One key of a section.
#[derive(Debug)]
pub struct Key<T: 'static> {
    /// Its name in the file (`pull-interval`).
    pub name: &'static str,
    /// Its value type.
    pub parser: Parser<T>,
    /// Its value when unset.
    pub default: DefaultValue,
    /// One line saying what it does.
    pub doc: &'static str,
    /// Whether it does anything.
    pub effect: Effect,
}

impl<T> Key<T> {
    /// A key that is read and used.
    pub const fn new(name: &'static str, parser: Parser<T>, default: DefaultValue, doc: &'static str) -> Key<T> {
        Key {
            name,
            parser,
            default,
            doc,
            effect: Effect::Active,
        }
    }

    /// The same key, accepted and checked but without effect, because `why`.
    pub const fn ignored(self, why: &'static str) -> Key<T> {
        Key {
            effect: Effect::Ignored(why),
            ..self
        }
    }
}

/// A key of any value type, as sections list them.
pub trait Declared: Sync {
    /// Its name in the file.
    fn name(&self) -> &'static str;
    /// What its value is, for the docs.
    fn kind(&self) -> &'static str;
    /// Its value when unset.
    fn default(&self) -> DefaultValue;
    /// What it does.
    fn doc(&self) -> &'static str;
    /// Whether it does anything.
    fn effect(&self) -> Effect;
    /// Whether `value` is one it takes.
    fn check(&self, value: &str) -> Result<(), String>;
}

impl<T> Declared for Key<T> {
    fn name(&self) -> &'static str {
        self.name
    }

    fn kind(&self) -> &'static str {
        self.parser.kind
    }

    fn default(&self) -> DefaultValue {
        self.default
    }

    fn doc(&self) -> &'static str {
        self.doc
    }

    fn effect(&self) -> Effect {
        self.effect
    }

    fn check(&self, value: &str) -> Result<(), String> {
        (self.parser.parse)(value).map(drop)
    }
}

/// Keys a section takes whose names the user chooses (a group name, an
/// `agent-send` string), with the values they take.
#[derive(Debug, Clone, Copy)]
pub struct Entries {
    /// What the keys and values are.
    pub doc: &'static str,
    /// Checks a key (the name the user chose).
    pub check_key: fn(&str) -> Result<(), String>,
    /// Checks a value.
    pub check: fn(&str) -> Result<(), String>,
}

/// A section of the configuration, declared by the component that reads it.
pub struct Section {
    /// Its name (`pull`, `DEFAULT`).
    pub name: &'static str,
    /// One line saying what it configures.
    pub doc: &'static str,
    /// Its keys, in the order the docs list them.
    pub keys: &'static [&'static dyn Declared],
    /// Free-form keys, for sections made of them.
    pub entries: Option<Entries>,
    /// Checks that involve several keys or sections; each problem with where it is.
    pub rules: Option<fn(&super::Config) -> Vec<super::ConfigError>>,
}

impl Section {
    /// A section of `keys`, with no free-form entries and no rules.
    pub const fn of(name: &'static str, doc: &'static str, keys: &'static [&'static dyn Declared]) -> Section {
        Section {
            name,
            doc,
            keys,
            entries: None,
            rules: None,
        }
    }

    /// A section of free-form `entries` only.
    pub const fn of_entries(name: &'static str, doc: &'static str, entries: Entries) -> Section {
        Section {
            entries: Some(entries),
            ..Section::of(name, doc, &[])
        }
    }

    /// The same section, with `rules` checked too.
    pub const fn with_rules(self, rules: fn(&super::Config) -> Vec<super::ConfigError>) -> Section {
        Section {
            rules: Some(rules),
            ..self
        }
    }

    /// Whether this is a family of sections: a name ending with `:`
    /// (`backend:`) stands for every section named `backend:SOMETHING`.
    pub fn is_family(&self) -> bool {
        self.name.ends_with(':')
    }

    /// Whether the section called `name` is this one (or one of this family).
    pub fn matches(&self, name: &str) -> bool {
        if self.is_family() {
            name.len() > self.name.len() && name.starts_with(self.name)
        } else {
            name == self.name
        }
    }

    /// The declared key called `name`.
    pub fn key(&self, name: &str) -> Option<&'static dyn Declared> {
        self.keys.iter().copied().find(|key| key.name() == name)
    }
}

impl std::fmt::Debug for Section {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.name)
    }
}

// ------------------------------------------------------------- value types

fn at_least(text: &str, min: i64) -> Result<i64, String> {
    let number = parse_int(text)?;
    if number < min {
        return Err(format!("must be {min} or more"));
    }
    Ok(number)
}

/// A number for which `accepted` holds; else `message`.
fn number_where(text: &str, accepted: fn(f64) -> bool, message: &str) -> Result<f64, String> {
    let number = parse_float(text)?;
    if !accepted(number) {
        return Err(message.to_owned());
    }
    Ok(number)
}

/// `true`/`false`, `yes`/`no`, `on`/`off`, `1`/`0`.
pub const BOOL: Parser<bool> = Parser {
    kind: "boolean",
    parse: parse_bool,
};

/// Non-empty text.
pub const TEXT: Parser<String> = Parser {
    kind: "text",
    parse: |text| {
        if text.trim().is_empty() {
            return Err("must not be empty".into());
        }
        Ok(text.to_owned())
    },
};

/// A path (non-empty).
pub const PATH: Parser<PathBuf> = Parser {
    kind: "path",
    parse: |text| (TEXT.parse)(text).map(PathBuf::from),
};

/// One or more paths, separated by spaces or lines; a path with spaces is
/// written in double quotes (`\"` and `\\` inside them for `"` and `\`).
pub const PATH_LIST: Parser<Vec<PathBuf>> = Parser {
    kind: "paths",
    parse: |text| {
        let mut paths = Vec::new();
        let mut chars = text.chars();
        let mut word: Option<String> = None;
        while let Some(char) = chars.next() {
            match char {
                '"' => {
                    let quoted = word.get_or_insert_with(String::new);
                    loop {
                        match chars.next() {
                            Some('"') => break,
                            Some('\\') => quoted.extend(chars.next()),
                            Some(other) => quoted.push(other),
                            None => return Err("a double quote is not closed".into()),
                        }
                    }
                }
                c if c.is_whitespace() => paths.extend(word.take().map(PathBuf::from)),
                c => word.get_or_insert_with(String::new).push(c),
            }
        }
        paths.extend(word.map(PathBuf::from));
        if paths.is_empty() || paths.iter().any(|path| path.as_os_str().is_empty()) {
            return Err("must name at least one path, none empty".into());
        }
        Ok(paths)
    },
};

/// `paths` written as [`PATH_LIST`] reads them back.
pub fn quote_paths<'a>(paths: impl IntoIterator<Item = &'a str>) -> String {
    let quoted: Vec<String> = paths
        .into_iter()
        .map(|path| format!("\"{}\"", path.replace('\\', "\\\\").replace('"', "\\\"")))
        .collect();
    quoted.join(" ")
}

/// Seconds, fractions allowed, 0 or more.
pub const SECONDS: Parser<Duration> = Parser {
    kind: "seconds",
    parse: |text| number_where(text, |number| number >= 0.0, "must be 0 or more").and_then(|_| parse_seconds(text)),
};

/// Seconds, fractions allowed, more than 0.
pub const POSITIVE_SECONDS: Parser<Duration> = Parser {
    kind: "seconds > 0",
    parse: |text| number_where(text, |number| number > 0.0, "must be more than 0").and_then(|_| parse_seconds(text)),
};

/// A duration: seconds (fractions allowed), or Go's notation as
/// HAProxyKafka's files write it (`100ms`, `1.5s`, `2m`, `1h30m`, `250us`).
pub const DURATION: Parser<Duration> = Parser {
    kind: "duration",
    parse: |text| {
        let text = text.trim();
        if text.bytes().all(|byte| byte.is_ascii_digit() || byte == b'.') {
            return (SECONDS.parse)(text);
        }
        let mut total = 0.0;
        let mut rest = text;
        while !rest.is_empty() {
            let number_length = rest
                .bytes()
                .take_while(|byte| byte.is_ascii_digit() || *byte == b'.')
                .count();
            let number: f64 = rest[..number_length]
                .parse()
                .map_err(|_| "expected seconds or a duration like 100ms, 1.5s, 2m")?;
            rest = &rest[number_length..];
            let unit_length = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
            let scale = match &rest[..unit_length] {
                "ns" => 1e-9,
                "us" => 1e-6,
                "ms" => 1e-3,
                "s" => 1.0,
                "m" => 60.0,
                "h" => 3600.0,
                unit => return Err(format!("unknown unit {unit:?}: use ns, us, ms, s, m or h")),
            };
            rest = &rest[unit_length..];
            total += number * scale;
        }
        Duration::try_from_secs_f64(total).map_err(|_| "too large".to_owned())
    },
};

/// A number more than 0.
pub const POSITIVE_NUMBER: Parser<f64> = Parser {
    kind: "number > 0",
    parse: |text| number_where(text, |number| number > 0.0, "must be more than 0"),
};

/// A number from 0 to 1.
pub const FRACTION: Parser<f64> = Parser {
    kind: "0 to 1",
    parse: |text| number_where(text, |number| (0.0..=1.0).contains(&number), "must be from 0 to 1"),
};

/// A whole number, 1 or more.
pub const COUNT: Parser<usize> = Parser {
    kind: "integer ≥ 1",
    parse: |text| usize::try_from(at_least(text, 1)?).map_err(|_| "too large".into()),
};

/// A whole number from 0 to 4294967295.
pub const COUNT_FROM_0: Parser<u32> = Parser {
    kind: "integer ≥ 0",
    parse: |text| u32::try_from(at_least(text, 0)?).map_err(|_| "must be from 0 to 4294967295".into()),
};

/// A whole number from 1 to 4294967295.
pub const COUNT_FROM_1: Parser<u32> = Parser {
    kind: "integer ≥ 1",
    parse: |text| u32::try_from(at_least(text, 1)?).map_err(|_| "must be from 1 to 4294967295".into()),
};

/// `-1` for no limit, else how many attempts follow the first.
pub const RETRIES: Parser<Retries> = Parser {
    kind: "integer ≥ -1",
    parse: parse_retries,
};

/// A TCP port.
pub const PORT: Parser<u16> = Parser {
    kind: "port",
    parse: |text| {
        let port = parse_int(text)?;
        u16::try_from(port)
            .ok()
            .filter(|port| *port > 0)
            .ok_or_else(|| "must be a port from 1 to 65535".into())
    },
};

/// Bytes, with an optional `K`, `M`, `G` or `T` suffix.
pub const SIZE: Parser<u64> = Parser {
    kind: "size",
    parse: parse_size,
};

/// An IPv4 or IPv6 address.
pub const IP_ADDRESS: Parser<IpAddr> = Parser {
    kind: "IP address",
    parse: parse_ip,
};

/// `ADDRESS:PORT`, `[IPv6]:PORT`, or `:PORT` (every address, as Go writes it).
pub const LISTEN_ADDRESS: Parser<std::net::SocketAddr> = Parser {
    kind: "address:port",
    parse: |text| {
        let text = text.trim();
        let full = match text.strip_prefix(':') {
            Some(port) => format!("0.0.0.0:{port}"),
            None => text.to_owned(),
        };
        full.parse()
            .map_err(|_| "expected ADDRESS:PORT, [IPv6]:PORT or :PORT".into())
    },
};

/// An `http://` URL.
pub const HTTP_URL: Parser<String> = Parser {
    kind: "URL",
    parse: |text| {
        if !text.starts_with("http://") {
            return Err("must be an http:// URL".into());
        }
        Ok(text.to_owned())
    },
};

/// An agent-check reply HAProxy takes as meant (may be empty): a word it
/// does not know would be reported as an agent error.
pub const AGENT_REPLY: Parser<haproxy::AgentReply> = Parser {
    kind: "agent reply",
    parse: |text| {
        let reply: haproxy::AgentReply = text.parse().map_err(|error: haproxy::ReplyError| error.to_string())?;
        match reply.other.first() {
            Some(word) => Err(format!(
                "{word:?} is no word of an agent reply (a weight like 50%, ready, drain, maint, up, down, fail, stopped, maxconn:N, #text): HAProxy would report it as an agent error"
            )),
            None => Ok(reply),
        }
    },
};

/// A Python logging level name.
pub const LOG_LEVEL: Parser<tracing::Level> = Parser {
    kind: "log level",
    parse: |text| {
        const LEVELS: &[&str] = &[
            "debug", "info", "warning", "warn", "error", "critical", "fatal", "notset",
        ];
        let name = text.trim().to_ascii_lowercase();
        if !LEVELS.contains(&name.as_str()) {
            return Err(format!("unknown log level; use one of {}", LEVELS.join(", ")));
        }
        Ok(crate::runtime::logging::level(&name))
    },
};

/// Comma-separated `unix:///path` / `tcp://host:port` sockets.
pub const SOCKETS: Parser<Vec<Endpoint>> = Parser {
    kind: "socket list",
    parse: parse_servers,
};

/// Whether `part` can be one level of a Graphite metric path.
fn path_part(part: &str) -> bool {
    !part.is_empty()
        && part
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b':' | b'-'))
}

/// What Graphite paths and their parts may hold, for error messages.
const PATH_RULE: &str = "letters, digits, `_`, `:` and `-`";

/// One level of a Graphite metric path (a group name).
pub fn graphite_path_part(text: &str) -> Result<(), String> {
    if path_part(text) {
        return Ok(());
    }
    Err(format!(
        "must be one level of a metric name: {PATH_RULE}, no dots or spaces"
    ))
}

/// The start of Graphite metric paths: levels separated by single dots.
pub const GRAPHITE_PATH: Parser<String> = Parser {
    kind: "metric path",
    parse: |text| {
        if text.split('.').all(path_part) {
            return Ok(text.to_owned());
        }
        Err(format!(
            "must be a metric path: levels of {PATH_RULE}, separated by single dots"
        ))
    },
};

/// Space-separated names, each from one of `lists`.
pub fn names(text: &str, lists: &[&[&str]]) -> Result<Vec<String>, String> {
    let names: Vec<String> = text.split_whitespace().map(str::to_owned).collect();
    if names.is_empty() {
        return Err("must name at least one metric".into());
    }
    let unknown: Vec<&str> = names
        .iter()
        .map(String::as_str)
        .filter(|name| !lists.iter().any(|list| list.contains(name)))
        .collect();
    if !unknown.is_empty() {
        return Err(format!("unknown metric name(s): {}", unknown.join(", ")));
    }
    Ok(names)
}

/// One of `words`, as the index of the word.
pub fn choice(text: &str, words: &[&str]) -> Result<usize, String> {
    words
        .iter()
        .position(|word| *word == text)
        .ok_or_else(|| format!("must be one of: {}", words.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_types_say_what_is_wrong() {
        assert_eq!((SECONDS.parse)("1.8"), Ok(Duration::from_millis(1800)));
        assert_eq!((SECONDS.parse)("-1"), Err("must be 0 or more".to_owned()));
        assert_eq!((POSITIVE_SECONDS.parse)("0"), Err("must be more than 0".to_owned()));
        assert_eq!((COUNT.parse)("0"), Err("must be 1 or more".to_owned()));
        assert_eq!((COUNT.parse)("x"), Err("expected an integer".to_owned()));
        assert_eq!((PORT.parse)("70000"), Err("must be a port from 1 to 65535".to_owned()));
        assert_eq!((PORT.parse)("0"), Err("must be a port from 1 to 65535".to_owned()));
        assert_eq!((FRACTION.parse)("2"), Err("must be from 0 to 1".to_owned()));
        assert_eq!((TEXT.parse)(" "), Err("must not be empty".to_owned()));
        assert_eq!((HTTP_URL.parse)("ftp://h"), Err("must be an http:// URL".to_owned()));
        assert_eq!((LOG_LEVEL.parse)("WARNING"), Ok(tracing::Level::WARN));
        assert_eq!((DURATION.parse)("1000ms"), Ok(Duration::from_secs(1)));
        assert_eq!((DURATION.parse)("1h1m1.5s"), Ok(Duration::from_millis(3_661_500)));
        assert_eq!((DURATION.parse)("250us"), Ok(Duration::from_micros(250)));
        assert_eq!((DURATION.parse)("2.5"), Ok(Duration::from_millis(2500)));
        assert_eq!(
            (DURATION.parse)("3 days"),
            Err("unknown unit \"\": use ns, us, ms, s, m or h".to_owned())
        );
        assert_eq!(
            (DURATION.parse)("5d"),
            Err("unknown unit \"d\": use ns, us, ms, s, m or h".to_owned())
        );
        assert_eq!(
            names("scur bogus", &[&["scur"]]),
            Err("unknown metric name(s): bogus".to_owned())
        );
        assert_eq!(choice("udp", &["tcp", "udp"]), Ok(1));
        assert_eq!(choice("x", &["tcp", "udp"]), Err("must be one of: tcp, udp".to_owned()));
    }

    #[test]
    fn path_lists_quote_what_has_spaces() {
        let paths = |list: &[&str]| list.iter().map(PathBuf::from).collect::<Vec<_>>();
        assert_eq!(
            (PATH_LIST.parse)("/etc/haproxy/haproxy.cfg\n   /etc/haproxy/conf.d"),
            Ok(paths(&["/etc/haproxy/haproxy.cfg", "/etc/haproxy/conf.d"]))
        );
        assert_eq!(
            (PATH_LIST.parse)(r#""/a b/c.cfg" /d"#),
            Ok(paths(&["/a b/c.cfg", "/d"]))
        );
        assert_eq!(
            (PATH_LIST.parse)(r#""/a"#),
            Err("a double quote is not closed".to_owned())
        );
        assert_eq!(
            (PATH_LIST.parse)(r#""""#),
            Err("must name at least one path, none empty".to_owned())
        );
        let odd = ["/x y/\"q\".cfg", r"/back\slash"];
        assert_eq!((PATH_LIST.parse)(&quote_paths(odd)), Ok(paths(&odd)));
    }
}
