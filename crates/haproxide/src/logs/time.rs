//! Dates in Go's layout notation, as HAProxyKafka's `transform_rules` write
//! them (`02/Jan/2006:15:04:05.000` in, `2006-01-02T15:04:05Z` out), and the
//! `dt` conversion: HAProxy's `%tr` (local wall time, no offset) read with
//! one layout, placed in time with the offset of the datagram's own RFC 5424
//! timestamp (the same host's clock, so the same offset) or the system's
//! zone, and written with the other layout in the configured zone.

use jiff::civil::DateTime;
use jiff::tz::{Offset, TimeZone};

/// One element of a layout.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// Text that must appear as it is.
    Literal(Vec<u8>),
    /// `2006`.
    Year,
    /// `06`.
    Year2,
    /// `01`.
    Month,
    /// `Jan`.
    MonthName,
    /// `January`.
    MonthLongName,
    /// `02`.
    Day,
    /// `Mon`: written, skipped when read.
    Weekday,
    /// `15`.
    Hour,
    /// `04`.
    Minute,
    /// `05`.
    Second,
    /// `.000` … `.000000000`: that many digits of the second's fraction.
    Fraction(usize),
    /// `Z07:00` (`Z` for UTC) or `-07:00`.
    Offset {
        /// Whether UTC is written `Z`.
        zulu: bool,
        /// Whether hours and minutes are separated by `:`.
        colon: bool,
    },
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const WEEKDAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

/// A Go time layout, read once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoLayout {
    tokens: Vec<Token>,
}

impl GoLayout {
    /// Reads `layout`. Go's elements in it: `2006`, `06`, `01`, `Jan`,
    /// `January`, `02`, `Mon`, `15`, `04`, `05`, `.000`… (up to nine), `Z07:00`,
    /// `-07:00`, `Z0700`, `-0700`; everything else is literal. The elements
    /// Go has besides (`1`, `2`, `_2`, `3`, `PM`, `MST`, …) are refused, since
    /// a date written with them cannot be read back exactly.
    pub fn new(layout: &str) -> Result<GoLayout, String> {
        const ELEMENTS: &[(&str, Token)] = &[
            ("January", Token::MonthLongName),
            (
                "Z07:00",
                Token::Offset {
                    zulu: true,
                    colon: true,
                },
            ),
            (
                "-07:00",
                Token::Offset {
                    zulu: false,
                    colon: true,
                },
            ),
            (
                "Z0700",
                Token::Offset {
                    zulu: true,
                    colon: false,
                },
            ),
            (
                "-0700",
                Token::Offset {
                    zulu: false,
                    colon: false,
                },
            ),
            ("2006", Token::Year),
            ("Jan", Token::MonthName),
            ("Mon", Token::Weekday),
            ("01", Token::Month),
            ("02", Token::Day),
            ("06", Token::Year2),
            ("15", Token::Hour),
            ("04", Token::Minute),
            ("05", Token::Second),
        ];
        const REFUSED: &[&str] = &["Monday", "MST", "PM", "pm", "_2", "002", "03"];
        let mut tokens = Vec::new();
        let mut rest = layout;
        let mut literal = Vec::new();
        while !rest.is_empty() {
            if let Some(refused) = REFUSED.iter().find(|refused| rest.starts_with(**refused)) {
                return Err(format!("the layout element {refused:?} is not supported"));
            }
            let fraction = rest
                .strip_prefix(['.', ','])
                .map(|digits| digits.bytes().take_while(|byte| *byte == b'0').count())
                .filter(|digits| (1..=9).contains(digits));
            let element = ELEMENTS.iter().find(|(text, _)| rest.starts_with(text));
            let (token, length) = match (fraction, element) {
                (Some(digits), _) => (Token::Fraction(digits), digits + 1),
                (None, Some((text, token))) => (token.clone(), text.len()),
                (None, None) => {
                    let char = rest.chars().next().unwrap_or_default();
                    let mut buffer = [0; 4];
                    literal.extend_from_slice(char.encode_utf8(&mut buffer).as_bytes());
                    rest = &rest[char.len_utf8()..];
                    continue;
                }
            };
            if !literal.is_empty() {
                tokens.push(Token::Literal(std::mem::take(&mut literal)));
            }
            tokens.push(token);
            rest = &rest[length..];
        }
        if !literal.is_empty() {
            tokens.push(Token::Literal(literal));
        }
        if !tokens.iter().any(|token| matches!(token, Token::Year | Token::Year2)) {
            return Err("the layout has no year (2006 or 06)".into());
        }
        Ok(GoLayout { tokens })
    }

    /// Reads `text` written with this layout: the wall time and, when the
    /// layout has one, the offset.
    pub fn parse(&self, text: &[u8]) -> Option<(DateTime, Option<Offset>)> {
        let mut rest = text;
        let (mut year, mut month, mut day) = (0i16, 1i8, 1i8);
        let (mut hour, mut minute, mut second, mut nanos) = (0i8, 0i8, 0i8, 0i32);
        let mut offset = None;
        for token in &self.tokens {
            match token {
                // Mostly one byte (`/`, `:`): compared as one, no `memcmp`.
                Token::Literal(bytes) => match (bytes.as_slice(), rest.split_first()) {
                    ([one], Some((first, tail))) if one == first => rest = tail,
                    ([_], _) => return None,
                    (many, _) => rest = rest.strip_prefix(many)?,
                },
                Token::Year => year = i16::try_from(digits(&mut rest, 4)?).ok()?,
                Token::Year2 => year = 2000 + i16::try_from(digits(&mut rest, 2)?).ok()?,
                Token::Month => month = small(digits(&mut rest, 2)?)?,
                Token::MonthName | Token::MonthLongName => {
                    // By the first three letters, compared whole: a
                    // name at a time cost a line a tenth of its time.
                    let three = rest.get(..3)?;
                    let index = MONTHS.iter().position(|name| name.as_bytes()[..3] == *three)?;
                    let length = if *token == Token::MonthName {
                        3
                    } else {
                        let name = MONTHS[index].as_bytes();
                        rest.starts_with(name).then_some(name.len())?
                    };
                    rest = &rest[length..];
                    month = small(index as u32 + 1)?;
                }
                Token::Weekday => rest = rest.get(3..)?,
                Token::Day => day = small(digits(&mut rest, 2)?)?,
                Token::Hour => hour = small(digits(&mut rest, 2)?)?,
                Token::Minute => minute = small(digits(&mut rest, 2)?)?,
                Token::Second => second = small(digits(&mut rest, 2)?)?,
                Token::Fraction(count) => {
                    rest = rest.get(1..)?;
                    let value = digits(&mut rest, *count)?;
                    nanos = i32::try_from(value * 10u32.pow(9 - *count as u32)).ok()?;
                }
                Token::Offset { zulu, colon } => {
                    if *zulu && rest.first() == Some(&b'Z') {
                        rest = &rest[1..];
                        offset = Some(Offset::UTC);
                        continue;
                    }
                    let sign = match rest.first()? {
                        b'+' => 1,
                        b'-' => -1,
                        _ => return None,
                    };
                    rest = &rest[1..];
                    let hours = digits(&mut rest, 2)?;
                    if *colon {
                        rest = rest.strip_prefix(b":")?;
                    }
                    let minutes = digits(&mut rest, 2)?;
                    let seconds = i32::try_from(hours * 3600 + minutes * 60).ok()?;
                    offset = Some(Offset::from_seconds(sign * seconds).ok()?);
                }
            }
        }
        if !rest.is_empty() {
            return None;
        }
        let wall = DateTime::new(year, month, day, hour, minute, second, nanos).ok()?;
        Some((wall, offset))
    }

    /// Writes `time` (as seen in `zone`) with this layout.
    pub fn format(&self, time: &jiff::Zoned, out: &mut String) {
        use std::fmt::Write as _;
        for token in &self.tokens {
            // Writing to a String cannot fail.
            let _ = match token {
                Token::Literal(bytes) => {
                    out.push_str(&String::from_utf8_lossy(bytes));
                    Ok(())
                }
                Token::Year => write!(out, "{:04}", time.year()),
                Token::Year2 => write!(out, "{:02}", time.year().rem_euclid(100)),
                Token::Month => write!(out, "{:02}", time.month()),
                Token::MonthName => write!(out, "{}", &MONTHS[month_index(time)][..3]),
                Token::MonthLongName => write!(out, "{}", MONTHS[month_index(time)]),
                Token::Weekday => {
                    let index = time.weekday().to_monday_zero_offset() as usize;
                    write!(out, "{}", &WEEKDAYS[index][..3])
                }
                Token::Day => write!(out, "{:02}", time.day()),
                Token::Hour => write!(out, "{:02}", time.hour()),
                Token::Minute => write!(out, "{:02}", time.minute()),
                Token::Second => write!(out, "{:02}", time.second()),
                Token::Fraction(count) => {
                    let nanos = time.subsec_nanosecond();
                    let value = nanos / 10i32.pow(9 - *count as u32);
                    write!(out, ".{value:0width$}", width = *count)
                }
                Token::Offset { zulu, colon } => {
                    let seconds = time.offset().seconds();
                    if *zulu && seconds == 0 {
                        out.push('Z');
                        Ok(())
                    } else {
                        let sign = if seconds < 0 { '-' } else { '+' };
                        let (hours, minutes) = (seconds.abs() / 3600, seconds.abs() % 3600 / 60);
                        let separator = if *colon { ":" } else { "" };
                        write!(out, "{sign}{hours:02}{separator}{minutes:02}")
                    }
                }
            };
        }
    }
}

fn month_index(time: &jiff::Zoned) -> usize {
    usize::try_from(time.month() - 1).unwrap_or_default()
}

fn small(value: u32) -> Option<i8> {
    i8::try_from(value).ok()
}

/// Exactly `count` ASCII digits from the front of `rest`.
fn digits(rest: &mut &[u8], count: usize) -> Option<u32> {
    let (number, tail) = (rest.get(..count)?, &rest[count..]);
    let mut value = 0u32;
    for byte in number {
        if !byte.is_ascii_digit() {
            return None;
        }
        value = value * 10 + u32::from(byte - b'0');
    }
    *rest = tail;
    Some(value)
}

/// What the last date converted on this thread became: the conversion's
/// [`DateConversion::id`], (wall second, offset) → text.
type LastSecond = Option<(u64, (DateTime, Option<Offset>), String)>;

thread_local! {
    static LAST_SECOND: std::cell::RefCell<LastSecond> = const { std::cell::RefCell::new(None) };
}

/// Numbers conversions for [`LAST_SECOND`]: two conversions never share one.
static CONVERSIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// The `dt` conversion of HAProxyKafka's `transform_rules`.
#[derive(Debug, Clone)]
pub struct DateConversion {
    /// How HAProxy writes the date (`haproxy_format`).
    input: GoLayout,
    /// How the message carries it (`date_format`).
    output: GoLayout,
    /// The zone the message's date is written in (`date_tz`).
    zone: TimeZone,
    /// The zone of HAProxy's wall time when the datagram does not say.
    local: TimeZone,
    /// Whether the output has no fraction of a second, so that one text
    /// serves a whole second's lines.
    whole_seconds: bool,
    /// This conversion's number, shared by its clones (same settings).
    id: u64,
}

/// RFC 5424's timestamp (`2026-11-20T23:06:42.286880+00:00`).
fn header_offset(timestamp: &[u8]) -> Option<Offset> {
    let zone = timestamp.get(19..)?;
    let zone = match zone.first() {
        Some(b'.') => &zone[1 + zone[1..].iter().take_while(|byte| byte.is_ascii_digit()).count()..],
        _ => zone,
    };
    let mut rest = match zone {
        b"Z" => return Some(Offset::UTC),
        [b'+' | b'-', ..] => &zone[1..],
        _ => return None,
    };
    let hours = digits(&mut rest, 2)?;
    rest = rest.strip_prefix(b":")?;
    let minutes = digits(&mut rest, 2)?;
    let sign = if zone[0] == b'-' { -1 } else { 1 };
    Offset::from_seconds(sign * i32::try_from(hours * 3600 + minutes * 60).ok()?).ok()
}

impl DateConversion {
    /// Reads dates written as `input` (HAProxy's wall time; `local` is its
    /// zone when neither the date nor the datagram says) and writes them as
    /// `output` in `zone`.
    pub fn new(input: GoLayout, output: GoLayout, zone: TimeZone, local: TimeZone) -> DateConversion {
        let whole_seconds = !output.tokens.iter().any(|token| matches!(token, Token::Fraction(_)));
        DateConversion {
            input,
            output,
            zone,
            local,
            whole_seconds,
            id: CONVERSIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        }
    }

    /// Converts `value` and gives the text to `write`; `header` is the
    /// datagram's RFC 5424 timestamp, if any. `None` when `value` does not
    /// follow the input layout.
    pub fn convert(&self, value: &[u8], header: Option<&[u8]>, write: impl FnOnce(&str)) -> Option<()> {
        let (wall, offset) = self.input.parse(value)?;
        let offset = offset.or_else(|| header.and_then(header_offset));
        // Lines come many a second: when the output has no fraction, the
        // last second's text serves every line of that second.
        let key = (wall.with().subsec_nanosecond(0).build().ok()?, offset);
        let write = match self.whole_seconds {
            true => LAST_SECOND.with_borrow(|last| match last {
                Some((id, known, text)) if *id == self.id && *known == key => {
                    write(text);
                    None
                }
                _ => Some(write),
            }),
            false => Some(write),
        };
        let Some(write) = write else {
            return Some(());
        };
        let instant = match offset {
            Some(offset) => offset.to_timestamp(wall).ok()?,
            None => self.local.to_ambiguous_timestamp(wall).compatible().ok()?,
        };
        let mut text = String::new();
        self.output.format(&instant.to_zoned(self.zone.clone()), &mut text);
        write(&text);
        if self.whole_seconds {
            LAST_SECOND.set(Some((self.id, key, text)));
        }
        Some(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn conversion(zone: &str) -> DateConversion {
        DateConversion::new(
            GoLayout::new("02/Jan/2006:15:04:05.000").unwrap(),
            GoLayout::new("2006-01-02T15:04:05Z").unwrap(),
            TimeZone::get(zone).unwrap(),
            TimeZone::UTC,
        )
    }

    fn convert(conversion: &DateConversion, value: &str, header: Option<&str>) -> Option<String> {
        let mut out = String::new();
        conversion.convert(value.as_bytes(), header.map(str::as_bytes), |text| out.push_str(text))?;
        Some(out)
    }

    #[test]
    fn the_spec_example_drops_the_milliseconds() {
        let utc = conversion("UTC");
        assert_eq!(
            convert(&utc, "23/May/2024:15:23:41.858", None).as_deref(),
            Some("2024-05-23T15:23:41Z")
        );
    }

    #[test]
    fn the_header_offset_places_the_wall_time() {
        let utc = conversion("UTC");
        let header = Some("2024-05-23T17:23:41.858123+02:00");
        assert_eq!(
            convert(&utc, "23/May/2024:17:23:41.858", header).as_deref(),
            Some("2024-05-23T15:23:41Z")
        );
        let header = Some("2024-05-23T10:23:41Z");
        assert_eq!(
            convert(&utc, "23/May/2024:10:23:41.858", header).as_deref(),
            Some("2024-05-23T10:23:41Z")
        );
    }

    #[test]
    fn another_zone_and_layout_with_fraction_and_offset() {
        let mut paris = conversion("Europe/Paris");
        paris.output = GoLayout::new("2006-01-02T15:04:05.000000Z07:00 Mon January").unwrap();
        assert_eq!(
            convert(&paris, "01/Dec/2026:23:30:00.250", None).as_deref(),
            Some("2026-12-02T00:30:00.250000+01:00 Wed December")
        );
    }

    #[test]
    fn what_does_not_follow_the_layout_is_refused() {
        let utc = conversion("UTC");
        for bad in [
            "23/Foo/2024:15:23:41.858",
            "23/May/2024:15:23:41",
            "23/May/2024:15:23:41.858x",
            "-",
            "",
        ] {
            assert_eq!(convert(&utc, bad, None), None, "{bad}");
        }
        assert_eq!(convert(&utc, "31/Feb/2024:15:23:41.858", None), None);
    }

    #[test]
    fn layouts_that_cannot_be_read_back_are_refused() {
        assert_eq!(
            GoLayout::new("Jan _2 15:04:05 2006").unwrap_err(),
            "the layout element \"_2\" is not supported"
        );
        assert_eq!(
            GoLayout::new("15:04").unwrap_err(),
            "the layout has no year (2006 or 06)"
        );
        let layout = GoLayout::new("2006-01-02 15:04:05-0700").unwrap();
        let (wall, offset) = layout.parse(b"2026-12-03 10:00:00+0530").unwrap();
        assert_eq!(wall, jiff::civil::date(2026, 12, 3).at(10, 0, 0, 0));
        assert_eq!(offset, Some(Offset::from_seconds(5 * 3600 + 1800).unwrap()));
    }
}
