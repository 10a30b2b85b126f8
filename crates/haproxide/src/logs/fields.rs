//! From one datagram to one JSON object: which structured-data parameter
//! becomes which JSON key, of which type, required or not, transformed how
//! ([`Mapping`]), with Wikimedia's mapping (the `webrequest_frontend`
//! table's keys) as the default. A datagram the mapping cannot take is a
//! [`Rejection`] saying why, for the dead-letter topic.
//!
//! Values are bytes to the end: what is not UTF-8 in a header is written
//! to JSON as `\u00XX`, one escape per such byte (its Latin-1 reading), so
//! the line is never lost and the JSON stays valid.

use haproxy::{LogLine, scan};

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
    /// What each field's JSON needs, beside it in `fields`' order.
    written: Vec<Written>,
    /// The message's start (`{"hostname":"…"`): written once, copied per line.
    opening: Vec<u8>,
    /// Parameter name → index into `fields`.
    index: ParamIndex,
    dates: DateConversion,
}

/// How a field is written, worked out once: what its value follows in the
/// JSON (`,"key":`), copied per line, and its [`Scale`] (float fields only).
#[derive(Debug, Clone)]
struct Written {
    key: Vec<u8>,
    scale: Scale,
}

/// How many fields' values a line keeps on the stack (Wikimedia's mapping
/// has 30); a mapping of more keeps them on the heap.
const STACK_FIELDS: usize = 32;

impl Mapping {
    /// A mapping of `fields` (JSON key order); an SD parameter maps to one field.
    pub fn new(sdid: String, hostname: String, fields: Vec<Field>, dates: DateConversion) -> Result<Mapping, String> {
        let mut index = ParamIndex::with_room(fields.len());
        for (position, field) in fields.iter().enumerate() {
            if field.json == "hostname" {
                return Err(
                    "the JSON key hostname is the configured host name; map the parameter to another key".into(),
                );
            }
            match index.insert(field.param.as_bytes(), position) {
                Ok(()) => {}
                Err(Some(first)) => {
                    return Err(format!(
                        "the parameter {} is mapped twice ({} and {})",
                        field.param, fields[first].json, field.json
                    ));
                }
                Err(None) => {
                    return Err(format!(
                        "the parameter {} is longer than the {MAX_SD_NAME} bytes RFC 5424 allows a parameter name",
                        field.param
                    ));
                }
            }
        }
        let written = fields
            .iter()
            .map(|field| {
                let mut key = vec![b','];
                write_json_string(&mut key, field.json.as_bytes());
                key.push(b':');
                Written {
                    key,
                    scale: Scale::of(field),
                }
            })
            .collect();
        let mut opening = b"{\"hostname\":".to_vec();
        write_json_string(&mut opening, hostname.as_bytes());
        Ok(Mapping {
            sdid,
            hostname,
            fields,
            written,
            opening,
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
        let (mut stack, mut heap) = ([None; STACK_FIELDS], Vec::new());
        let values: &mut [Option<&[u8]>] = match stack.get_mut(..self.fields.len()) {
            Some(values) => values,
            None => {
                heap.resize(self.fields.len(), None);
                &mut heap
            }
        };
        for param in &element.params {
            if let Some(position) = self.index.get(param.name) {
                values[position].get_or_insert(&param.value);
            }
        }
        if let Some(missing) = self
            .fields
            .iter()
            .zip(values.iter())
            .find(|(field, value)| field.required && value.is_none())
        {
            return Err(Rejection(format!(
                "the required parameter {} is missing",
                missing.0.param
            )));
        }
        let start = out.len();
        out.extend_from_slice(&self.opening);
        for ((field, Written { key, scale }), value) in
            self.fields.iter().zip(&self.written).zip(values.iter().copied())
        {
            out.extend_from_slice(key);
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
                FieldType::Int | FieldType::Float if missing => {
                    out.push(b'0');
                    Ok(())
                }
                FieldType::Int => write_integer(out, value).ok_or("is not an integer"),
                FieldType::Float => write_float(out, value, *scale).ok_or("is not a number"),
                FieldType::Date if missing => {
                    out.extend_from_slice(b"\"\"");
                    Ok(())
                }
                FieldType::Date => self
                    .dates
                    .convert(value, line.timestamp, |date| write_json_string(out, date.as_bytes()))
                    .ok_or("does not follow transform_rules' haproxy_format"),
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

/// Whether `text` is a whole number as JSON writes it (no `+`, no leading
/// zero), of at most 15 digits: exact in an `i64` and in an `f64`.
fn is_json_integer(text: &[u8]) -> bool {
    let digits = text.strip_prefix(b"-").unwrap_or(text);
    (1..=15).contains(&digits.len())
        && digits.iter().all(u8::is_ascii_digit)
        && (digits[0] != b'0' || digits.len() == 1)
}

/// Writes the whole number `text` as JSON: as it is when it already is
/// JSON's form of an `i64` (HAProxy's always is), else read and rewritten
/// (`+7`, `007`).
fn write_integer(out: &mut Vec<u8>, text: &[u8]) -> Option<()> {
    if is_json_integer(text) {
        out.extend_from_slice(text);
    } else {
        let number: i64 = std::str::from_utf8(text).ok()?.parse().ok()?;
        out.extend_from_slice(itoa::Buffer::new().format(number).as_bytes());
    }
    Some(())
}

/// How a float field's number is scaled.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Scale {
    /// Divided by 10 to this power (`scale=0.001` is 3; no scale is 0).
    Tenths(u32),
    /// Multiplied by the factor.
    Times(f64),
}

impl Scale {
    fn of(field: &Field) -> Scale {
        let factor = field.scale.unwrap_or(1.0);
        // 10^k is exact in an f64 up to k = 22, and so is 1/10^k's rounding.
        (0..=15)
            .find(|&power| 1.0 / 10f64.powi(power as i32) == factor)
            .map_or(Scale::Times(factor), Scale::Tenths)
    }
}

/// Writes the number `text`, scaled, as JSON in the shortest form that reads
/// back as the same `f64`. An integer divided by a power of ten is written
/// by moving the decimal point (`-1` at `scale=0.001` is `-0.001`), which is
/// what the exact division gives, and in a fiftieth of the time.
fn write_float(out: &mut Vec<u8>, text: &[u8], scale: Scale) -> Option<()> {
    if let Scale::Tenths(power) = scale
        && is_json_integer(text)
    {
        let (sign, digits) = match text.strip_prefix(b"-") {
            Some(digits) => (&b"-"[..], digits),
            None => (&b""[..], text),
        };
        let power = power as usize;
        out.extend_from_slice(sign);
        match digits.len().checked_sub(power) {
            Some(whole) if whole > 0 => out.extend_from_slice(&digits[..whole]),
            _ => out.push(b'0'),
        }
        let fraction = &digits[digits.len().saturating_sub(power)..];
        let significant = fraction.len() - fraction.iter().rev().take_while(|&&digit| digit == b'0').count();
        if significant > 0 {
            out.push(b'.');
            out.resize(out.len() + power - fraction.len(), b'0');
            out.extend_from_slice(&fraction[..significant]);
        }
        return Some(());
    }
    let number: f64 = std::str::from_utf8(text).ok()?.parse().ok()?;
    let number = match scale {
        Scale::Tenths(power) => number / 10f64.powi(power as i32),
        Scale::Times(factor) => number * factor,
    };
    number
        .is_finite()
        .then(|| out.extend_from_slice(ryu::Buffer::new().format_finite(number).as_bytes()))
}

/// RFC 5424's longest SD-NAME, and so the longest parameter a line has.
const MAX_SD_NAME: usize = 32;

/// A parameter name of at most [`MAX_SD_NAME`] bytes as four zero-padded
/// words and its length: hashed and compared a word at a time, no byte loop
/// and no `memcmp` (23 lookups a line made those a tenth of its cost).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Name {
    words: [u64; 4],
    length: usize,
}

impl Name {
    fn new(bytes: &[u8]) -> Option<Name> {
        let length = bytes.len();
        if length > MAX_SD_NAME {
            return None;
        }
        // Whole words are loaded as they are; the last, partial one from
        // the name's last eight bytes shifted down; a name under eight
        // bytes by overlapping smaller loads (OR-ing a byte onto itself
        // changes nothing). No byte loop, no copy.
        let load = |at: usize| {
            let mut eight = [0; 8];
            eight.copy_from_slice(&bytes[at..at + 8]);
            u64::from_le_bytes(eight)
        };
        let short = || match length {
            0 => 0,
            1..=3 => {
                let byte = |at: usize| u64::from(bytes[at]) << (8 * at);
                byte(0) | byte(length / 2) | byte(length - 1)
            }
            _ => {
                let half = |at: usize| {
                    let mut four = [0; 4];
                    four.copy_from_slice(&bytes[at..at + 4]);
                    u64::from(u32::from_le_bytes(four)) << (8 * at)
                };
                half(0) | half(length - 4)
            }
        };
        let mut words = [0; 4];
        for (index, word) in words.iter_mut().enumerate() {
            let start = index * 8;
            *word = match length.checked_sub(start) {
                Some(8..) => load(start),
                Some(0) | None => 0,
                Some(_) if length >= 8 => load(length - 8) >> (8 * (start + 8 - length)),
                Some(_) => short(),
            };
        }
        Some(Name { words, length })
    }

    fn hash(&self) -> usize {
        let [a, b, c, d] = self.words;
        let mixed = (a ^ b.rotate_left(17) ^ c.rotate_left(31) ^ d.rotate_left(47) ^ self.length as u64)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15);
        (mixed >> 32) as usize
    }
}

/// Parameter name → field index: an open-addressed table at most half
/// full, of [`Name`]s.
#[derive(Debug, Clone)]
struct ParamIndex {
    slots: Vec<Option<(Name, usize)>>,
}

impl ParamIndex {
    fn with_room(count: usize) -> ParamIndex {
        ParamIndex {
            slots: vec![None; (count * 2).next_power_of_two().max(8)],
        }
    }

    /// The slot `name` is in, or the empty one where it would go.
    fn slot(&self, name: &Name) -> usize {
        let mask = self.slots.len() - 1;
        let mut slot = name.hash() & mask;
        while let Some((known, _)) = &self.slots[slot] {
            if known == name {
                break;
            }
            slot = (slot + 1) & mask;
        }
        slot
    }

    /// Adds `name`: `Err(Some(field))` when it is there already, `Err(None)`
    /// when it is too long to be a parameter name.
    fn insert(&mut self, name: &[u8], field: usize) -> Result<(), Option<usize>> {
        let name = Name::new(name).ok_or(None)?;
        let slot = self.slot(&name);
        match self.slots[slot] {
            Some((_, first)) => Err(Some(first)),
            None => {
                self.slots[slot] = Some((name, field));
                Ok(())
            }
        }
    }

    fn get(&self, name: &[u8]) -> Option<usize> {
        let name = Name::new(name)?;
        self.slots[self.slot(&name)].map(|(_, field)| field)
    }
}

/// Writes `bytes` as a JSON string: UTF-8 as it is (`"`, `\\` and control
/// characters escaped), every byte that is not UTF-8 as `\u00XX`.
///
/// Clean ASCII is found eight bytes at a time and copied in runs: a line
/// is mostly such text, and this is where most of its JSON time goes. A
/// value with nothing to escape (most of them) is copied in one go.
#[inline]
pub fn write_json_string(out: &mut Vec<u8>, bytes: &[u8]) {
    let special = next_special(bytes);
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    if special == bytes.len() {
        out.extend_from_slice(bytes);
    } else {
        write_escaped(out, bytes, special);
    }
    out.push(b'"');
}

/// The rest of [`write_json_string`] from the first byte to escape, `at`.
#[inline(never)]
fn write_escaped(out: &mut Vec<u8>, bytes: &[u8], mut at: usize) {
    let mut copied = 0;
    while at < bytes.len() {
        out.extend_from_slice(&bytes[copied..at]);
        let byte = bytes[at];
        let escape: &[u8] = match byte {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            _ => b"",
        };
        copied = at + 1;
        if !escape.is_empty() {
            out.extend_from_slice(escape);
        } else if byte >= 0x80
            && let Some(character) = utf8_character(&bytes[at..])
        {
            out.extend_from_slice(character);
            copied = at + character.len();
        } else {
            write_unicode_escape(out, byte);
        }
        at = copied + next_special(&bytes[copied..]);
    }
    out.extend_from_slice(&bytes[copied..]);
}

/// Where the first byte of `bytes` is one that a JSON string cannot take as
/// it is (`"`, `\\`, a control character, DEL or a byte above ASCII), or
/// `bytes.len()`.
#[inline(always)]
fn next_special(bytes: &[u8]) -> usize {
    scan::first(
        bytes,
        |word| {
            scan::below_or_high(word, 0x20)
                | scan::equal(word, b'"')
                | scan::equal(word, b'\\')
                | scan::equal(word, 0x7f)
        },
        |byte| !(0x20..0x7f).contains(&byte) || byte == b'"' || byte == b'\\',
    )
}

/// The UTF-8 character `bytes` starts with, when it starts with one.
fn utf8_character(bytes: &[u8]) -> Option<&[u8]> {
    let width = match bytes.first()? {
        0xc2..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf4 => 4,
        _ => return None,
    };
    let character = bytes.get(..width)?;
    std::str::from_utf8(character).ok().map(|_| character)
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
        let dates = DateConversion::new(
            GoLayout::new("02/Jan/2006:15:04:05.000").unwrap(),
            GoLayout::new("2006-01-02T15:04:05Z").unwrap(),
            jiff::tz::TimeZone::UTC,
            jiff::tz::TimeZone::UTC,
        );
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

    /// What `bytes` reads as once written: its UTF-8 as it is, every other
    /// byte as the character of the same number.
    fn latin1_where_not_utf8(mut bytes: &[u8]) -> String {
        let mut text = String::new();
        loop {
            match std::str::from_utf8(bytes) {
                Ok(valid) => return text + valid,
                Err(error) => {
                    let (valid, after) = bytes.split_at(error.valid_up_to());
                    text.push_str(std::str::from_utf8(valid).unwrap());
                    let bad = error.error_len().unwrap_or(after.len());
                    text.extend(after[..bad].iter().map(|&byte| char::from(byte)));
                    bytes = &after[bad..];
                }
            }
        }
    }

    #[test]
    fn any_bytes_are_valid_json_that_reads_back_as_them() {
        // Pieces that meet the eight-byte scan at every offset: plain ASCII,
        // what JSON escapes, whole UTF-8 characters, and broken ones (a lone
        // continuation, a cut sequence, a surrogate, an overlong form, a code
        // point above U+10FFFF).
        let pieces: [&[u8]; 17] = [
            b"a",
            b"Z",
            b" ",
            b"\"",
            b"\\",
            b"\n",
            b"\x01",
            b"\x7f",
            b"\xc3\xa9",
            b"\xe2\x82\xac",
            b"\xf0\x9f\x98\x80",
            b"\xe9",
            b"\xff",
            b"\xc3",
            b"\xed\xa0\x80",
            b"\xc0\xaf",
            b"\xf4\x90\x80\x80",
        ];
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        for length in 0..64 {
            for _ in 0..40 {
                let mut bytes = Vec::new();
                for _ in 0..length {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    // Mostly plain letters, as real lines are.
                    let piece = if state.is_multiple_of(3) {
                        (state >> 8) as usize % pieces.len()
                    } else {
                        0
                    };
                    bytes.extend_from_slice(pieces[piece]);
                }
                let mut out = Vec::new();
                write_json_string(&mut out, &bytes);
                let read: String = serde_json::from_slice(&out).unwrap_or_else(|error| panic!("{bytes:?}: {error}"));
                assert_eq!(read, latin1_where_not_utf8(&bytes), "{bytes:?}");
            }
        }
    }

    fn float(text: &str, scale: Scale) -> Option<String> {
        let mut out = Vec::new();
        write_float(&mut out, text.as_bytes(), scale)?;
        Some(String::from_utf8(out).unwrap())
    }

    #[test]
    fn numbers_are_written_as_json_writes_them() {
        let milli = Scale::of(&Field::parse("t", "p float scale=0.001").unwrap());
        assert_eq!(milli, Scale::Tenths(3));
        assert_eq!(Scale::of(&Field::parse("t", "p float").unwrap()), Scale::Tenths(0));
        assert_eq!(
            Scale::of(&Field::parse("t", "p float scale=2.5").unwrap()),
            Scale::Times(2.5)
        );
        for (text, scale, expected) in [
            ("-1", milli, "-0.001"),
            ("12", milli, "0.012"),
            ("1500", milli, "1.5"),
            ("2000", milli, "2"),
            ("0", milli, "0"),
            ("123456", milli, "123.456"),
            ("1.5", milli, "0.0015"),
            ("+7", milli, "0.007"),
            ("42", Scale::Tenths(0), "42"),
            ("3", Scale::Times(2.5), "7.5"),
        ] {
            assert_eq!(float(text, scale).as_deref(), Some(expected), "{text}");
        }
        for bad in ["x", "1e999", "nan", ""] {
            assert_eq!(float(bad, milli), None, "{bad}");
        }
        // Moving the point is what dividing exactly gives.
        for number in (-20_000..20_000).chain([i64::from(i32::MAX), 999_999_999_999_999]) {
            let written: f64 = float(&number.to_string(), milli).unwrap().parse().unwrap();
            assert_eq!(written, number as f64 / 1000.0, "{number}");
        }
        let mut out = Vec::new();
        for text in ["0", "-12", "007", "+5", "9223372036854775807"] {
            write_integer(&mut out, text.as_bytes()).unwrap();
            out.push(b' ');
        }
        assert_eq!(out, b"0 -12 7 5 9223372036854775807 ");
        assert_eq!(write_integer(&mut out, b"1.5"), None);
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
    fn the_parameter_index_finds_every_name_and_no_other() {
        // Names of every length up to 32, alike but for one byte at every
        // third place, so that a word compared wrongly shows.
        let names: Vec<Vec<u8>> = (1..=32)
            .flat_map(|length| {
                (0..length).step_by(3).map(move |changed| {
                    let mut name = vec![b'n'; length];
                    name[changed] = b'x';
                    name
                })
            })
            .collect();
        let mut index = ParamIndex::with_room(names.len());
        for (field, name) in names.iter().enumerate() {
            assert_eq!(index.insert(name, field), Ok(()), "{name:?}");
        }
        for (field, name) in names.iter().enumerate() {
            assert_eq!(index.get(name), Some(field), "{name:?}");
            assert_eq!(index.insert(name, 0), Err(Some(field)));
            let mut longer = name.clone();
            longer.push(b'n');
            if !names.contains(&longer) {
                assert_eq!(index.get(&longer), None, "{longer:?}");
            }
        }
        assert_eq!(index.get(b"y"), None);
        assert_eq!(index.get(b""), None);
        assert_eq!(index.get(&[b'n'; 33]), None);
        assert_eq!(index.insert(&[b'n'; 33], 0), Err(None));
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
        let long = "p".repeat(33);
        let fields = vec![Field::parse("a", &format!("{long} string")).unwrap()];
        assert_eq!(
            Mapping::new("x".into(), "h".into(), fields, wikimedia().dates).unwrap_err(),
            format!("the parameter {long} is longer than the 32 bytes RFC 5424 allows a parameter name")
        );
    }
}
