//! From one datagram to one JSON object: which structured-data parameter
//! becomes which JSON key, of which type, required or not, transformed how
//! ([`Mapping`]), with Wikimedia's mapping (the `webrequest_frontend`
//! table's keys) as the default. A datagram the mapping cannot take is a
//! [`Rejection`] saying why, for the dead-letter topic.
//!
//! Values are bytes to the end: what is not UTF-8 in a header is written
//! to JSON as `\u00XX`, one escape per such byte (its Latin-1 reading), so
//! the line is never lost and the JSON stays valid.

use std::collections::HashMap;

use haproxy::LogLine;

use super::time::DateConversion;

/// A JSON value's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    /// The value's bytes as a JSON string.
    String,
    /// A whole number (HAProxy's `-` is 0).
    Int,
    /// A number (HAProxy's `-` is 0), multiplied by the field's scale.
    Float,
    /// A date converted by `[logs-transform]` (HAProxy's `-` is `""`).
    Date,
}

/// One JSON key of the message.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    /// The key in the JSON object.
    pub json: String,
    /// The structured-data parameter it comes from.
    pub param: String,
    /// Its type.
    pub kind: FieldType,
    /// Whether a datagram without the parameter goes to the dead-letter topic.
    pub required: bool,
    /// What a number is multiplied by (`time_firstbyte`: Tr in ms → s).
    pub scale: Option<f64>,
    /// What an empty value becomes (`uri_path`: `/`).
    pub if_empty: Option<String>,
}

impl Field {
    /// Reads `PARAM TYPE [required] [scale=NUMBER] [if-empty=TEXT]`, the
    /// value of a `[logs-fields]` entry whose key is the JSON key `json`.
    pub fn parse(json: &str, spec: &str) -> Result<Field, String> {
        let mut words = spec.split_whitespace();
        let param = words
            .next()
            .ok_or("expected `PARAM TYPE [required] [scale=N] [if-empty=TEXT]`")?;
        let kind = match words.next() {
            Some("string") => FieldType::String,
            Some("int") => FieldType::Int,
            Some("float") => FieldType::Float,
            Some("date") => FieldType::Date,
            Some(other) => return Err(format!("unknown type {other:?}: expected string, int, float or date")),
            None => return Err(format!("{param}: a type is missing: string, int, float or date")),
        };
        let mut field = Field {
            json: json.to_owned(),
            param: param.to_owned(),
            kind,
            required: false,
            scale: None,
            if_empty: None,
        };
        for word in words {
            match word.split_once('=') {
                None if word == "required" => field.required = true,
                Some(("scale", number)) if kind == FieldType::Float => {
                    let scale: f64 = number.parse().map_err(|_| format!("scale={number}: not a number"))?;
                    if !scale.is_finite() {
                        return Err(format!("scale={number}: not a finite number"));
                    }
                    field.scale = Some(scale);
                }
                Some(("scale", _)) => return Err("scale= is for float fields".into()),
                Some(("if-empty", text)) => field.if_empty = Some(text.to_owned()),
                _ => {
                    return Err(format!(
                        "unknown option {word:?}: expected required, scale=N or if-empty=TEXT"
                    ));
                }
            }
        }
        Ok(field)
    }
}

/// Wikimedia's fields: the `webrequest_frontend` table's keys from the
/// production `log-format-sd`, as `[logs-fields]` would write them.
pub const WIKIMEDIA_FIELDS: &[(&str, &str)] = &[
    ("sequence", "sequence int"),
    ("dt", "dt date"),
    ("time_firstbyte", "time_backend_response float scale=0.001"),
    ("ip", "ip string"),
    ("http_method", "http_method string"),
    ("uri_host", "uri_host string"),
    ("uri_path", "uri_path string if-empty=/"),
    ("uri_query", "uri_query string"),
    ("http_status", "http_status string"),
    ("response_size", "response_size int"),
    ("referer", "referer string"),
    ("user_agent", "user_agent string"),
    ("accept_language", "accept_language string"),
    ("accept", "accept string"),
    ("range", "range string"),
    ("tls", "tls string"),
    ("cache_status", "cache_status string"),
    ("content_type", "content_type string"),
    ("x_analytics", "x_analytics string"),
    ("x_cache", "x_cache string"),
    ("backend", "backend string"),
    ("server_pid", "server_pid string required"),
    ("ch_ua", "ch_ua string"),
    ("ch_ua_mobile", "ch_ua_mobile string"),
    ("ch_ua_platform", "ch_ua_platform string"),
    ("ch_ua_arch", "ch_ua_arch string"),
    ("ch_ua_bitness", "ch_ua_bitness string"),
    ("ch_ua_full_version_list", "ch_ua_full_version_list string"),
    ("ch_ua_model", "ch_ua_model string"),
    ("ch_ua_platform_version", "ch_ua_platform_version string"),
];

/// [`WIKIMEDIA_FIELDS`], read.
pub fn wikimedia_fields() -> Vec<Field> {
    WIKIMEDIA_FIELDS
        .iter()
        .filter_map(|(json, spec)| Field::parse(json, spec).ok())
        .collect()
}

/// Why a datagram goes to the dead-letter topic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Rejection(pub String);

/// How datagrams become JSON objects.
#[derive(Debug, Clone)]
pub struct Mapping {
    /// The SD-ID whose parameters are read (`haproxykafka@0`).
    pub sdid: String,
    /// The `hostname` key every message starts with.
    pub hostname: String,
    fields: Vec<Field>,
    /// Parameter name → index into `fields`.
    index: HashMap<Vec<u8>, usize, BuildNameHasher>,
    dates: DateConversion,
}

impl Mapping {
    /// A mapping of `fields` (JSON key order); an SD parameter maps to one field.
    pub fn new(sdid: String, hostname: String, fields: Vec<Field>, dates: DateConversion) -> Result<Mapping, String> {
        let mut index = HashMap::with_hasher(BuildNameHasher);
        for (position, field) in fields.iter().enumerate() {
            if field.json == "hostname" {
                return Err(
                    "the JSON key hostname is the configured host name; map the parameter to another key".into(),
                );
            }
            if let Some(first) = index.insert(field.param.as_bytes().to_vec(), position) {
                return Err(format!(
                    "the parameter {} is mapped twice ({} and {})",
                    field.param, fields[first].json, field.json
                ));
            }
        }
        Ok(Mapping {
            sdid,
            hostname,
            fields,
            index,
            dates,
        })
    }

    /// The fields, in JSON key order.
    pub fn fields(&self) -> &[Field] {
        &self.fields
    }

    /// Appends the JSON object of `datagram` to `out`; on a rejection, `out`
    /// is as it was.
    pub fn encode(&self, datagram: &[u8], out: &mut Vec<u8>) -> Result<(), Rejection> {
        let line = LogLine::parse(datagram).map_err(|error| Rejection(format!("not a syslog line: {error}")))?;
        let element = match line.element(self.sdid.as_bytes()) {
            Some(element) => element,
            None => {
                let ids: Vec<String> = line
                    .structured_data
                    .iter()
                    .map(|element| String::from_utf8_lossy(element.id).into_owned())
                    .collect();
                return Err(Rejection(if ids.is_empty() {
                    format!("no structured-data element {}", self.sdid)
                } else {
                    format!("no structured-data element {} (it has {})", self.sdid, ids.join(", "))
                }));
            }
        };
        let mut values: Vec<Option<&[u8]>> = vec![None; self.fields.len()];
        for param in &element.params {
            if let Some(&position) = self.index.get(param.name) {
                values[position].get_or_insert(&param.value);
            }
        }
        if let Some(missing) = self
            .fields
            .iter()
            .zip(&values)
            .find(|(field, value)| field.required && value.is_none())
        {
            return Err(Rejection(format!(
                "the required parameter {} is missing",
                missing.0.param
            )));
        }
        let start = out.len();
        out.extend_from_slice(b"{\"hostname\":");
        write_json_string(out, self.hostname.as_bytes());
        let mut date = String::new();
        for (field, value) in self.fields.iter().zip(values) {
            out.push(b',');
            write_json_string(out, field.json.as_bytes());
            out.push(b':');
            let value = value.unwrap_or_default();
            let value = match (&field.if_empty, value.is_empty()) {
                (Some(text), true) => text.as_bytes(),
                _ => value,
            };
            let missing = value.is_empty() || value == b"-";
            let written = match field.kind {
                FieldType::String => {
                    write_json_string(out, value);
                    Ok(())
                }
                FieldType::Int if missing => {
                    out.push(b'0');
                    Ok(())
                }
                FieldType::Int => std::str::from_utf8(value)
                    .ok()
                    .and_then(|text| text.parse::<i64>().ok())
                    .map(|number| out.extend_from_slice(itoa::Buffer::new().format(number).as_bytes()))
                    .ok_or("is not an integer"),
                FieldType::Float if missing => {
                    out.push(b'0');
                    Ok(())
                }
                FieldType::Float => std::str::from_utf8(value)
                    .ok()
                    .and_then(|text| text.parse::<f64>().ok())
                    .map(|number| number * field.scale.unwrap_or(1.0))
                    .filter(|number| number.is_finite())
                    .map(|number| {
                        use std::io::Write as _;
                        // Display of f64 is the shortest text that reads back.
                        let _ = write!(out, "{number}");
                    })
                    .ok_or("is not a number"),
                FieldType::Date if missing => {
                    out.extend_from_slice(b"\"\"");
                    Ok(())
                }
                FieldType::Date => {
                    date.clear();
                    self.dates
                        .convert(value, line.timestamp, &mut date)
                        .map(|()| write_json_string(out, date.as_bytes()))
                        .ok_or("does not follow transform_rules' haproxy_format")
                }
            };
            if let Err(problem) = written {
                out.truncate(start);
                return Err(Rejection(format!(
                    "the parameter {} = {:?} {problem}",
                    field.param,
                    String::from_utf8_lossy(value)
                )));
            }
        }
        out.push(b'}');
        Ok(())
    }
}

/// FNV-1a over a parameter's name: names are short and come from the
/// configuration, so the keyed default hasher (a fifth of a line's cost at
/// 23 lookups a line) buys nothing here.
#[derive(Debug, Clone, Copy, Default)]
struct BuildNameHasher;

/// See [`BuildNameHasher`].
struct NameHasher(u64);

impl std::hash::BuildHasher for BuildNameHasher {
    type Hasher = NameHasher;

    fn build_hasher(&self) -> NameHasher {
        NameHasher(0xcbf2_9ce4_8422_2325)
    }
}

impl std::hash::Hasher for NameHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = (self.0 ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// Writes `bytes` as a JSON string: UTF-8 as it is (`"`, `\` and control
/// characters escaped), every byte that is not UTF-8 as `\u00XX`.
pub fn write_json_string(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'"');
    let mut rest = bytes;
    loop {
        match std::str::from_utf8(rest) {
            Ok(text) => {
                write_escaped(out, text);
                break;
            }
            Err(error) => {
                let (valid, after) = rest.split_at(error.valid_up_to());
                // `valid` is the part from_utf8 accepted.
                write_escaped(out, std::str::from_utf8(valid).unwrap_or_default());
                let bad = error.error_len().unwrap_or(after.len());
                for byte in &after[..bad] {
                    write_unicode_escape(out, *byte);
                }
                rest = &after[bad..];
            }
        }
    }
    out.push(b'"');
}

fn write_escaped(out: &mut Vec<u8>, text: &str) {
    let bytes = text.as_bytes();
    let mut from = 0;
    for (position, byte) in bytes.iter().enumerate() {
        let escape: &[u8] = match byte {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f | 0x7f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[from..position]);
        if escape.is_empty() {
            write_unicode_escape(out, *byte);
        } else {
            out.extend_from_slice(escape);
        }
        from = position + 1;
    }
    out.extend_from_slice(&bytes[from..]);
}

fn write_unicode_escape(out: &mut Vec<u8>, byte: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.extend_from_slice(b"\\u00");
    out.push(HEX[usize::from(byte >> 4)]);
    out.push(HEX[usize::from(byte & 0xf)]);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::logs::time::GoLayout;

    #[test]
    fn every_wikimedia_field_is_read() {
        assert_eq!(wikimedia_fields().len(), WIKIMEDIA_FIELDS.len());
    }

    fn wikimedia() -> Mapping {
        let fields = wikimedia_fields();
        let dates = DateConversion {
            input: GoLayout::new("02/Jan/2006:15:04:05.000").unwrap(),
            output: GoLayout::new("2006-01-02T15:04:05Z").unwrap(),
            zone: jiff::tz::TimeZone::UTC,
            local: jiff::tz::TimeZone::UTC,
        };
        Mapping::new("haproxykafka@0".into(), "cp1.example".into(), fields, dates).unwrap()
    }

    fn encode(mapping: &Mapping, datagram: &[u8]) -> Result<serde_json::Value, Rejection> {
        let mut out = Vec::new();
        mapping.encode(datagram, &mut out)?;
        Ok(serde_json::from_slice(&out).unwrap())
    }

    const LINE: &[u8] = b"<134>1 2026-11-20T23:06:42.286880+01:00 - haproxy 12792 - [haproxykafka@0 \
        server_pid=\"12792\" ip=\"::1\" sequence=\"7\" dt=\"21/Nov/2026:00:06:42.286\" time_backend_response=\"12\" \
        http_status=\"404\" response_size=\"-\" termination_state=\"--\" uri_host=\"a \\\"b\\\"\" \
        user_agent=\"caf\xe9\" uri_path=\"\" http_method=\"GET\" extra=\"x\"] 1 2 3\n";

    #[test]
    fn a_line_becomes_the_wikimedia_object() {
        let value = encode(&wikimedia(), LINE).unwrap();
        let object = value.as_object().unwrap();
        let keys: Vec<&str> = object.keys().map(String::as_str).collect();
        let mut expected = vec!["hostname"];
        expected.extend(WIKIMEDIA_FIELDS.iter().map(|(json, _)| *json));
        assert_eq!(keys, expected);
        assert_eq!(value["hostname"], "cp1.example");
        assert_eq!(value["server_pid"], "12792");
        assert_eq!(value["ip"], "::1");
        assert_eq!(value["sequence"], 7);
        assert_eq!(value["dt"], "2026-11-20T23:06:42Z");
        assert_eq!(value["time_firstbyte"], 0.012);
        assert_eq!(value["http_status"], "404");
        assert_eq!(value["response_size"], 0);
        assert_eq!(value["uri_host"], "a \"b\"");
        assert_eq!(value["user_agent"], "caf\u{e9}");
        assert_eq!(value["uri_path"], "/");
        assert_eq!(value["referer"], "");
        assert_eq!(value["ch_ua"], "");
    }

    #[test]
    fn bytes_that_are_not_utf8_are_escaped_one_by_one() {
        let mut out = Vec::new();
        write_json_string(&mut out, b"a\xe9\xff\"\\\n\x01z\xc3\xa9");
        assert_eq!(out, b"\"a\\u00e9\\u00ff\\\"\\\\\\n\\u0001z\xc3\xa9\"");
    }

    #[test]
    fn what_goes_to_the_dead_letter_topic_and_why() {
        let mapping = wikimedia();
        let cases: &[(&[u8], &str)] = &[
            (
                b"<134>1 2026-11-20T23:06:42Z - haproxy 1 - [haproxykafka@0 ip=\"::1\"] m\n",
                "the required parameter server_pid is missing",
            ),
            (
                b"<134>1 2026-11-20T23:06:42Z - haproxy 1 - [other@1 server_pid=\"1\"] m\n",
                "no structured-data element haproxykafka@0 (it has other@1)",
            ),
            (
                b"<134>Nov 20 23:06:42 haproxy[1]: Server be/s1 is DOWN\n",
                "no structured-data element haproxykafka@0",
            ),
            (
                b"<134>1 2026-11-20T23:06:42Z - haproxy 1 - [haproxykafka@0 server_pid=\"1\" sequence=\"x1\"] m\n",
                "the parameter sequence = \"x1\" is not an integer",
            ),
            (
                b"<134>1 2026-11-20T23:06:42Z - haproxy 1 - [haproxykafka@0 server_pid=\"1\" dt=\"yesterday\"] m\n",
                "the parameter dt = \"yesterday\" does not follow transform_rules' haproxy_format",
            ),
        ];
        for (datagram, reason) in cases {
            let mut out = b"kept".to_vec();
            assert_eq!(mapping.encode(datagram, &mut out), Err(Rejection((*reason).into())));
            assert_eq!(out, b"kept");
        }
        let error = mapping.encode(b"\x00\x01 random", &mut Vec::new()).unwrap_err();
        assert!(error.0.starts_with("not a syslog line: at byte 0: "), "{error}");
    }

    #[test]
    fn field_specs_are_checked() {
        assert_eq!(
            Field::parse("t", "p float scale=0.001 required if-empty=0").unwrap(),
            Field {
                json: "t".into(),
                param: "p".into(),
                kind: FieldType::Float,
                required: true,
                scale: Some(0.001),
                if_empty: Some("0".into()),
            }
        );
        for (spec, message) in [
            ("", "expected `PARAM TYPE [required] [scale=N] [if-empty=TEXT]`"),
            ("p", "p: a type is missing: string, int, float or date"),
            ("p bool", "unknown type \"bool\": expected string, int, float or date"),
            ("p int scale=2", "scale= is for float fields"),
            ("p float scale=x", "scale=x: not a number"),
            (
                "p string optional",
                "unknown option \"optional\": expected required, scale=N or if-empty=TEXT",
            ),
        ] {
            assert_eq!(Field::parse("t", spec).unwrap_err(), message, "{spec}");
        }
        let fields = vec![
            Field::parse("a", "p string").unwrap(),
            Field::parse("b", "p string").unwrap(),
        ];
        let dates = wikimedia().dates;
        assert_eq!(
            Mapping::new("x".into(), "h".into(), fields, dates).unwrap_err(),
            "the parameter p is mapped twice (a and b)"
        );
    }
}
