//! HAProxy's log datagrams: the syslog header of each of its formats
//! (RFC 5424, RFC 3164 and `local`), and RFC 5424 structured data as
//! `log-format-sd` writes it, with its escapes (`\"`, `\\`, `\]`) undone.
//!
//! Everything is read as bytes and borrowed from the datagram: a header
//! value that is not UTF-8 is no reason to lose a line, and only a
//! structured-data value with an escape in it is copied. A datagram that
//! does not follow its format is a [`LogError`] saying where and why.
//!
//! ```
//! use haproxy::{LogFormat, LogLine};
//!
//! let datagram = b"<134>1 2026-11-20T23:06:42.286880+00:00 - haproxy 12792 - \
//!                  [haproxykafka@0 server_pid=\"12792\" uri_host=\"a \\\"b\\\"\"] GET /\n";
//! let line = LogLine::parse(datagram).unwrap();
//! assert_eq!(line.format, LogFormat::Rfc5424);
//! assert_eq!((line.facility(), line.severity()), (16, 6)); // local0.info
//! assert_eq!(line.app_name, Some(&b"haproxy"[..]));
//! let element = &line.structured_data[0];
//! assert_eq!(element.id, b"haproxykafka@0");
//! assert_eq!(element.param(b"uri_host"), Some(&b"a \"b\""[..]));
//! assert_eq!(line.message, b"GET /");
//! ```

use std::borrow::Cow;

use crate::scan;

/// Which syslog header a datagram has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// `<PRI>1 TIMESTAMP HOST APP PROCID MSGID SD MSG` (`format rfc5424`).
    Rfc5424,
    /// `<PRI>Mmm dd hh:mm:ss HOST TAG[PID]: MSG` (`format rfc3164`), or the
    /// same without HOST (`format local`, HAProxy's default).
    Rfc3164,
}

/// One datagram, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine<'a> {
    /// Its header's format.
    pub format: LogFormat,
    /// `facility × 8 + severity`, 0 to 191.
    pub priority: u8,
    /// The timestamp as written (RFC 5424: ISO 8601 with microseconds and
    /// offset; RFC 3164: `Mmm dd hh:mm:ss`); `None` for RFC 5424's `-`.
    pub timestamp: Option<&'a [u8]>,
    /// The host, when the header has one and it is not `-`.
    pub hostname: Option<&'a [u8]>,
    /// APP-NAME (RFC 5424) or TAG (RFC 3164): HAProxy's `log-tag`.
    pub app_name: Option<&'a [u8]>,
    /// PROCID (RFC 5424) or the `[PID]` after the tag (RFC 3164).
    pub proc_id: Option<&'a [u8]>,
    /// MSGID (RFC 5424; HAProxy always writes `-`).
    pub msg_id: Option<&'a [u8]>,
    /// The structured-data elements (RFC 5424; empty for `-` and RFC 3164).
    pub structured_data: Vec<SdElement<'a>>,
    /// The message, without the `\n` HAProxy appends.
    pub message: &'a [u8],
}

/// One structured-data element: `[ID name="value" …]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdElement<'a> {
    /// SD-ID (`haproxykafka@0`).
    pub id: &'a [u8],
    /// Its parameters, in the datagram's order.
    pub params: Vec<SdParam<'a>>,
}

/// One structured-data parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdParam<'a> {
    /// PARAM-NAME.
    pub name: &'a [u8],
    /// The value, its escapes undone; borrowed unless it had one.
    pub value: Cow<'a, [u8]>,
}

impl SdElement<'_> {
    /// The value of the first parameter called `name`.
    pub fn param(&self, name: &[u8]) -> Option<&[u8]> {
        self.params
            .iter()
            .find(|param| param.name == name)
            .map(|param| param.value.as_ref())
    }
}

/// Why a datagram could not be read, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("at byte {offset}: {reason}")]
pub struct LogError {
    /// Bytes from the start of the datagram.
    pub offset: usize,
    /// What was expected there.
    pub reason: &'static str,
}

/// RFC 5424's longest SD-NAME.
const MAX_SD_NAME: usize = 32;
/// The highest PRI: facility 23 (local7), severity 7 (debug).
const MAX_PRIORITY: u16 = 191;
/// The bytes an SD-NAME is made of: printable ASCII but `=`, `]` and `"`
/// (a table: a line has some 300 of them).
const SD_NAME_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut byte = 33;
    while byte <= 126 {
        table[byte] = !matches!(byte as u8, b'=' | b']' | b'"');
        byte += 1;
    }
    table
};
const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

impl<'a> LogLine<'a> {
    /// Reads a datagram of either format (one trailing `\n` is dropped).
    pub fn parse(datagram: &'a [u8]) -> Result<LogLine<'a>, LogError> {
        let mut cursor = Cursor::new(datagram.strip_suffix(b"\n").unwrap_or(datagram));
        let priority = cursor.priority()?;
        if cursor.rest().starts_with(b"1 ") {
            cursor.position += 2;
            rfc5424(priority, cursor)
        } else {
            rfc3164(priority, cursor)
        }
    }

    /// The facility (16 for local0).
    pub fn facility(&self) -> u8 {
        self.priority / 8
    }

    /// The severity (6 for info).
    pub fn severity(&self) -> u8 {
        self.priority % 8
    }

    /// The first structured-data element called `id`.
    pub fn element(&self, id: &[u8]) -> Option<&SdElement<'a>> {
        self.structured_data.iter().find(|element| element.id == id)
    }
}

fn rfc5424<'a>(priority: u8, mut cursor: Cursor<'a>) -> Result<LogLine<'a>, LogError> {
    let timestamp = cursor.header_field("a timestamp or `-`")?;
    let hostname = cursor.header_field("a host name or `-`")?;
    let app_name = cursor.header_field("an app name or `-`")?;
    let proc_id = cursor.header_field("a process id or `-`")?;
    let msg_id = cursor.header_field("a message id or `-`")?;
    let structured_data = cursor.structured_data()?;
    // The message follows one space, if there is one at all.
    let message = match cursor.rest() {
        [] => &[][..],
        [b' ', message @ ..] => message,
        _ => return Err(cursor.error("a space or the end after the structured data")),
    };
    Ok(LogLine {
        format: LogFormat::Rfc5424,
        priority,
        timestamp,
        hostname,
        app_name,
        proc_id,
        msg_id,
        structured_data,
        message,
    })
}

fn rfc3164<'a>(priority: u8, mut cursor: Cursor<'a>) -> Result<LogLine<'a>, LogError> {
    let timestamp = cursor.bsd_timestamp()?;
    // `local` has no host: the first word is already `TAG[PID]:` or `TAG:`.
    let mut tag_start = cursor.position;
    let first = cursor.word();
    let (hostname, tag_word) = if first.ends_with(b":") {
        (None, first)
    } else {
        cursor.expect_space("a space after the host name")?;
        tag_start = cursor.position;
        (Some(first), cursor.word())
    };
    let tag_error = |reason| LogError {
        offset: tag_start,
        reason,
    };
    let Some(tag) = tag_word.strip_suffix(b":") else {
        return Err(tag_error("`TAG[PID]:` or `TAG:`"));
    };
    let (app_name, proc_id) = match tag.iter().position(|&byte| byte == b'[') {
        Some(open) => match tag[open + 1..].strip_suffix(b"]") {
            Some(pid) if open > 0 && !pid.is_empty() => (&tag[..open], Some(pid)),
            _ => return Err(tag_error("`TAG[PID]:` with a tag and a PID")),
        },
        None if !tag.is_empty() => (tag, None),
        None => return Err(tag_error("a tag before `:`")),
    };
    let message = cursor.rest().strip_prefix(b" ").unwrap_or(cursor.rest());
    Ok(LogLine {
        format: LogFormat::Rfc3164,
        priority,
        timestamp: Some(timestamp),
        hostname,
        app_name: Some(app_name),
        proc_id,
        msg_id: None,
        structured_data: Vec::new(),
        message,
    })
}

/// A position in the datagram.
struct Cursor<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl<'a> Cursor<'a> {
    fn new(bytes: &'a [u8]) -> Cursor<'a> {
        Cursor { bytes, position: 0 }
    }

    fn rest(&self) -> &'a [u8] {
        &self.bytes[self.position..]
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.position).copied()
    }

    fn error(&self, reason: &'static str) -> LogError {
        LogError {
            offset: self.position,
            reason,
        }
    }

    fn expect(&mut self, byte: u8, reason: &'static str) -> Result<(), LogError> {
        if self.peek() == Some(byte) {
            self.position += 1;
            Ok(())
        } else {
            Err(self.error(reason))
        }
    }

    fn expect_space(&mut self, reason: &'static str) -> Result<(), LogError> {
        self.expect(b' ', reason)
    }

    /// The bytes up to the next space or the end.
    fn word(&mut self) -> &'a [u8] {
        let rest = self.rest();
        let length = scan::first(rest, |word| scan::equal(word, b' '), |byte| byte == b' ');
        self.position += length;
        &rest[..length]
    }

    /// `<PRI>`: one to three digits, at most 191, no leading zero.
    fn priority(&mut self) -> Result<u8, LogError> {
        self.expect(b'<', "`<` and the priority")?;
        let digits = self.rest().iter().take_while(|byte| byte.is_ascii_digit()).count();
        let text = &self.rest()[..digits];
        if !(1..=3).contains(&digits) || (digits > 1 && text[0] == b'0') {
            return Err(self.error("a priority of one to three digits"));
        }
        let value = text
            .iter()
            .fold(0u16, |value, digit| value * 10 + u16::from(digit - b'0'));
        if value > MAX_PRIORITY {
            return Err(self.error("a priority from 0 to 191"));
        }
        self.position += digits;
        self.expect(b'>', "`>` after the priority")?;
        Ok(value as u8)
    }

    /// One RFC 5424 header field and the space after it: printable ASCII,
    /// or `-` for none.
    fn header_field(&mut self, reason: &'static str) -> Result<Option<&'a [u8]>, LogError> {
        let start = self.position;
        let field = self.word();
        if field.is_empty() || !field.iter().all(|byte| (33..=126).contains(byte)) {
            self.position = start;
            return Err(self.error(reason));
        }
        self.expect_space(reason)?;
        Ok((field != b"-").then_some(field))
    }

    /// `Mmm dd hh:mm:ss` (day padded with a space) and the space after it.
    fn bsd_timestamp(&mut self) -> Result<&'a [u8], LogError> {
        const REASON: &str = "a timestamp `Mmm dd hh:mm:ss` and a space";
        let Some(stamp) = self.rest().get(..16) else {
            return Err(self.error(REASON));
        };
        let digit = |index: usize| stamp[index].is_ascii_digit();
        let shaped = MONTHS.iter().any(|month| &stamp[..3] == *month)
            && stamp[3] == b' '
            && (stamp[4] == b' ' || digit(4))
            && digit(5)
            && stamp[6] == b' '
            && [7, 8, 10, 11, 13, 14].into_iter().all(digit)
            && stamp[9] == b':'
            && stamp[12] == b':'
            && stamp[15] == b' ';
        if !shaped {
            return Err(self.error(REASON));
        }
        self.position += 16;
        Ok(&stamp[..15])
    }

    /// `-`, or one or more `[ID name="value" …]` elements.
    fn structured_data(&mut self) -> Result<Vec<SdElement<'a>>, LogError> {
        if self.peek() == Some(b'-') {
            self.position += 1;
            return Ok(Vec::new());
        }
        let mut elements = Vec::new();
        while self.peek() == Some(b'[') {
            self.position += 1;
            let id = self.sd_name("an SD-ID")?;
            // HAProxyKafka's element has 23: one allocation, not five,
            // and of at most 1,032 bytes, which glibc's thread cache serves.
            let mut params = Vec::with_capacity(24);
            loop {
                match self.peek() {
                    Some(b']') => {
                        self.position += 1;
                        break;
                    }
                    Some(b' ') => {
                        self.position += 1;
                        let name = self.sd_name("a parameter name")?;
                        self.expect(b'=', "`=` after the parameter name")?;
                        self.expect(b'"', "`\"` to open the value")?;
                        let value = self.sd_value()?;
                        params.push(SdParam { name, value });
                    }
                    _ => return Err(self.error("a space and a parameter, or `]`")),
                }
            }
            elements.push(SdElement { id, params });
        }
        if elements.is_empty() {
            return Err(self.error("`-` or `[` to open the structured data"));
        }
        Ok(elements)
    }

    /// SD-NAME: 1 to 32 printable ASCII characters but `=`, space, `]` and `"`.
    fn sd_name(&mut self, reason: &'static str) -> Result<&'a [u8], LogError> {
        let rest = self.rest();
        // A name ends at `=` (or at a space or `]` after an SD-ID), so the
        // byte after a name of the longest length is as far as to look.
        let window = &rest[..rest.len().min(MAX_SD_NAME + 1)];
        let length = scan::first(window, not_name_bytes, |byte| !SD_NAME_BYTES[usize::from(byte)]);
        if length == 0 || length > MAX_SD_NAME {
            return Err(self.error(reason));
        }
        self.position += length;
        Ok(&rest[..length])
    }

    /// A value after its opening `"`, up to and past the closing one.
    /// `\"`, `\\` and `\]` stand for the second character; any other
    /// backslash is itself (RFC 5424 §6.3.3).
    fn sd_value(&mut self) -> Result<Cow<'a, [u8]>, LogError> {
        let rest = self.rest();
        // Where the copy of an escaped value has come to, once there is one.
        let mut unescaped: Option<(Vec<u8>, usize)> = None;
        let mut index = 0;
        loop {
            let at = index
                + scan::first(&rest[index..], quotes_or_backslashes, |byte| {
                    byte == b'"' || byte == b'\\'
                });
            if at == rest.len() {
                break;
            }
            if rest[at] == b'"' {
                self.position += at + 1;
                return Ok(match unescaped {
                    Some((mut value, copied)) => {
                        value.extend_from_slice(&rest[copied..at]);
                        Cow::Owned(value)
                    }
                    None => Cow::Borrowed(&rest[..at]),
                });
            }
            match rest.get(at + 1) {
                Some(&escaped @ (b'"' | b'\\' | b']')) => {
                    let (value, copied) = unescaped.get_or_insert_with(|| (Vec::with_capacity(rest.len().min(256)), 0));
                    value.extend_from_slice(&rest[*copied..at]);
                    value.push(escaped);
                    *copied = at + 2;
                    index = at + 2;
                }
                // Any other backslash is itself, and stays in the copy's next stretch.
                _ => index = at + 1,
            }
        }
        Err(self.error("`\"` to close the value"))
    }
}

/// [`SD_NAME_BYTES`]' complement, a word at a time: below `!`, above `~`,
/// `=`, `]` and `"`.
#[inline(always)]
fn not_name_bytes(word: u64) -> u64 {
    scan::below_or_high(word, 0x21)
        | scan::equal(word, 0x7f)
        | scan::equal(word, b'=')
        | scan::equal(word, b']')
        | scan::equal(word, b'"')
}

/// What ends a stretch of a value: `"` and `\\`.
#[inline(always)]
fn quotes_or_backslashes(word: u64) -> u64 {
    scan::equal(word, b'"') | scan::equal(word, b'\\')
}

#[cfg(test)]
mod tests {
    use super::*;

    const RFC5424: &str = include_str!("../../../fixtures/haproxy-2.6.12-debian/log_rfc5424_unixdgram.txt");
    const RFC3164: &str = include_str!("../../../fixtures/haproxy-2.6.12-debian/log_rfc3164_unixdgram.txt");

    fn value<'a>(element: &'a SdElement<'_>, name: &str) -> &'a [u8] {
        element.param(name.as_bytes()).unwrap()
    }

    /// The word-at-a-time tests find what the byte-by-byte ones find.
    #[test]
    fn scans_a_word_at_a_time_agree_with_byte_by_byte() {
        scan::assert_agrees_with_a_byte_loop((not_name_bytes, |byte| !SD_NAME_BYTES[usize::from(byte)]));
        scan::assert_agrees_with_a_byte_loop((quotes_or_backslashes, |byte| byte == b'"' || byte == b'\\'));
    }

    /// Whether `name`'s value was borrowed from the datagram.
    fn borrowed(element: &SdElement<'_>, name: &str) -> bool {
        let param = element
            .params
            .iter()
            .find(|param| param.name == name.as_bytes())
            .unwrap();
        matches!(param.value, Cow::Borrowed(_))
    }

    #[test]
    fn every_captured_datagram_of_haproxy_2_6_reads() {
        for (text, format) in [(RFC5424, LogFormat::Rfc5424), (RFC3164, LogFormat::Rfc3164)] {
            let mut count = 0;
            for datagram in text.lines() {
                let line = LogLine::parse(datagram.as_bytes()).unwrap_or_else(|error| panic!("{datagram:?}: {error}"));
                assert_eq!(line.format, format);
                assert_eq!(line.app_name, Some(&b"haproxy"[..]), "{datagram:?}");
                let pid = line.proc_id.unwrap_or_default();
                assert!(!pid.is_empty() && pid.iter().all(u8::is_ascii_digit), "{datagram:?}");
                assert!(line.structured_data.is_empty());
                count += 1;
            }
            assert!(count > 50, "{count} datagrams");
        }
    }

    #[test]
    fn haproxykafka_structured_data_as_haproxy_2_6_writes_it() {
        let capture: &[u8] = include_bytes!("../../../fixtures/haproxy-2.6.12-debian/log_rfc5424_sd_unixdgram.txt");
        let lines: Vec<LogLine<'_>> = capture
            .split_inclusive(|&byte| byte == b'\n')
            .map(|datagram| LogLine::parse(datagram).unwrap())
            .collect();
        assert_eq!(lines.len(), 5);
        let element = |index: usize| lines[index].element(b"haproxykafka@0").unwrap();
        assert!(lines.iter().all(|line| line.structured_data.len() == 1));
        assert_eq!(element(0).params.len(), 23);
        let first = element(0);
        for (name, expected) in [
            ("server_pid", &b"15176"[..]),
            ("ip", b"127.0.0.1"),
            ("sequence", b"0"),
            ("dt", b"02/Dec/2026:14:16:34.053"),
            ("time_backend_response", b"-1"),
            ("http_status", b"200"),
            ("uri_host", b"en.wikipedia.org"),
            ("referer", b"https://example.org/a\"b\\c]d"),
            ("user_agent", b"Mozilla/5.0 (X11; Linux x86_64) \"quoted\""),
            ("accept_language", b"en-US,en;q=0.9"),
            ("range", b"bytes=0-99"),
            ("http_method", b"GET"),
            ("uri_path", b"/wiki/Main_Page"),
            ("uri_query", b"?action=view&x=1"),
        ] {
            assert_eq!(first.param(name.as_bytes()), Some(expected), "{name}");
        }
        assert_eq!(lines[0].message, b"0 -1 -1 -1 200 {en.wikipedia.org} {-} LR");
        assert_eq!(value(element(1), "http_status"), b"404");
        assert_eq!(value(element(2), "ip"), b"::1");
        // A raw byte that is not UTF-8 arrives as it was sent.
        assert_eq!(value(element(3), "user_agent"), b"caf\xe9-agent");
        assert_eq!(value(element(4), "uri_path"), b"<BADREQ>");
    }

    #[test]
    fn rfc5424_header_fields() {
        let first = RFC5424.lines().next().unwrap();
        let line = LogLine::parse(first.as_bytes()).unwrap();
        assert_eq!(line.priority, 142);
        assert_eq!((line.facility(), line.severity()), (17, 6)); // local1.info
        assert_eq!(line.timestamp, Some(&b"2026-11-20T23:06:42.286880+00:00"[..]));
        assert_eq!((line.hostname, line.msg_id), (None, None));
        assert_eq!(
            line.message,
            b"127.0.0.1:39820 [20/Nov/2026:23:06:42.284] fe_main be_app/s1 0/0/0/2/2 200 182 - - ---- 1/1/0/0/0 0/0 \"GET / HTTP/1.1\""
        );
    }

    #[test]
    fn rfc3164_and_local_headers() {
        let first = RFC3164.lines().next().unwrap();
        let line = LogLine::parse(first.as_bytes()).unwrap();
        assert_eq!(line.priority, 134);
        assert_eq!(line.timestamp, Some(&b"Nov 20 23:06:42"[..]));
        assert_eq!(line.hostname, None);
        assert!(
            line.message
                .starts_with(b"127.0.0.1:39820 [20/Nov/2026:23:06:42.284] fe_main")
        );
        // With a host (`format rfc3164`), a day padded with a space, no PID.
        let line = LogLine::parse(b"<134>Nov  2 01:02:03 lb1 haproxy: hello\n").unwrap();
        assert_eq!(line.timestamp, Some(&b"Nov  2 01:02:03"[..]));
        assert_eq!(line.hostname, Some(&b"lb1"[..]));
        assert_eq!((line.app_name, line.proc_id), (Some(&b"haproxy"[..]), None));
        assert_eq!(line.message, b"hello");
    }

    #[test]
    fn structured_data_escapes_and_bytes() {
        let datagram = b"<134>1 2026-12-02T10:00:00.000001+01:00 lb1 haproxy 42 - \
            [haproxykafka@0 server_pid=\"42\" referer=\"a\\\"b\\\\c\\]d\\xe\" user_agent=\"caf\xe9\" empty=\"\"]\
            [other@1 k=\"v\"] msg";
        let line = LogLine::parse(datagram).unwrap();
        assert_eq!(line.hostname, Some(&b"lb1"[..]));
        assert_eq!(line.structured_data.len(), 2);
        let element = line.element(b"haproxykafka@0").unwrap();
        assert_eq!(value(element, "server_pid"), b"42");
        assert!(borrowed(element, "server_pid"));
        // `\"`, `\\`, `\]` are undone; `\x` stays as written.
        assert_eq!(value(element, "referer"), b"a\"b\\c]d\\xe");
        assert!(!borrowed(element, "referer"));
        assert_eq!(value(element, "user_agent"), b"caf\xe9");
        assert_eq!(value(element, "empty"), b"");
        assert_eq!(value(line.element(b"other@1").unwrap(), "k"), b"v");
        assert_eq!(line.message, b"msg");
        // No message at all.
        let line = LogLine::parse(b"<134>1 - - - - - [a b=\"c\"]").unwrap();
        assert_eq!((line.timestamp, line.message), (None, &b""[..]));
    }

    #[test]
    fn errors_say_where_and_what() {
        let cases: [(&[u8], usize, &str); 16] = [
            (b"", 0, "`<` and the priority"),
            (b"<>1 x", 1, "a priority of one to three digits"),
            (b"<0134>1 x", 1, "a priority of one to three digits"),
            (b"<192>1 x", 1, "a priority from 0 to 191"),
            (b"<134 1", 4, "`>` after the priority"),
            (b"<134>1 - - - - - ", 17, "`-` or `[` to open the structured data"),
            (b"<134>1 - - - - -", 16, "a message id or `-`"),
            (b"<134>1 -  - - - - -", 9, "a host name or `-`"),
            (b"<134>1 - - - - - [a b=\"c]", 23, "`\"` to close the value"),
            (b"<134>1 - - - - - [a b=\"c\"", 25, "a space and a parameter, or `]`"),
            (b"<134>1 - - - - - [a b=c\"]", 22, "`\"` to open the value"),
            (
                b"<134>1 - - - - - [a]x",
                20,
                "a space or the end after the structured data",
            ),
            (b"<134>1 - - - - - [a b]", 21, "`=` after the parameter name"),
            (
                b"<134>Nov 20 23:06:42haproxy: x",
                5,
                "a timestamp `Mmm dd hh:mm:ss` and a space",
            ),
            (
                b"<134>Nov 20 23:06:42 haproxy[]: x",
                21,
                "`TAG[PID]:` with a tag and a PID",
            ),
            (b"<134>Nov 20 23:06:42 lb1 haproxy x", 25, "`TAG[PID]:` or `TAG:`"),
        ];
        for (datagram, offset, reason) in cases {
            assert_eq!(
                LogLine::parse(datagram),
                Err(LogError { offset, reason }),
                "{:?}",
                String::from_utf8_lossy(datagram)
            );
        }
        let long_name = format!("<134>1 - - - - - [{} a=\"b\"]", "n".repeat(33));
        assert_eq!(LogLine::parse(long_name.as_bytes()).unwrap_err().reason, "an SD-ID");
        assert_eq!(LogError { offset: 3, reason: "x" }.to_string(), "at byte 3: x");
    }
}
