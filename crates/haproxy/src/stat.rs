//! `show stat` CSV, parsed by header name for every HAProxy from 1.5 to 3.x.
//!
//! Two ways in, one scanner:
//! - [`ShowStat`] keeps a reply as one buffer; each row is a run of field spans
//!   into it, so parsing a 30 MB reply allocates the buffer, one span array and
//!   one row array, and reading a field borrows from the buffer (a quoted field
//!   with doubled quotes is the only one copied, on read).
//! - [`StatReader`] reads a reply from a file or socket in 256 KiB parts cut at
//!   record boundaries and hands each row out once: a pass over a reply of any
//!   size in the memory of one part. A pass that reads a few columns has only
//!   those cells split out ([`StatReader::only_cells`]).
//!
//! What is tolerated, because real HAProxy output and real saved files contain it:
//! a leading blank line (telegraf's sample), the trailing comma of every line,
//! the literal `-` column of 2.3+ followed by stats-module columns, rows shorter
//! or longer than the header, empty cells, CRLF line ends, and RFC 4180 quoting
//! with commas, doubled quotes and newlines inside quoted cells (DataDog's
//! `mock_data_evil`). A reply with no `# pxname,...` header is read with the
//! positional layout that every version shares (HAProxy 1.4/1.5 `;csv` without
//! `;norefresh` headers); it must then have at least the 33 fields up to `type`.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

use std::io::Read;

use memchr::{memchr, memchr_iter, memchr2, memrchr};

/// The object a `show stat` row describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ObjectType {
    /// `svname` FRONTEND, `type` 0.
    Frontend,
    /// `svname` BACKEND, `type` 1.
    Backend,
    /// A server of a backend, `type` 2.
    Server,
    /// A listening socket (`option socket-stats`), `type` 3.
    Listener,
}

impl ObjectType {
    /// The lowercase word for this type.
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectType::Frontend => "frontend",
            ObjectType::Backend => "backend",
            ObjectType::Server => "server",
            ObjectType::Listener => "listener",
        }
    }
}

/// Why a reply could not be read as `show stat` CSV.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StatError {
    /// Nothing but blank lines.
    #[error("empty input: no header and no rows")]
    Empty,
    /// The first line is neither a `# pxname,...` header nor a CSV row.
    #[error("line {line}: not `show stat` CSV (first line is {first_line:?})")]
    NotStatCsv {
        /// 1-based line number.
        line: usize,
        /// The offending line, cut to 80 characters.
        first_line: String,
    },
    /// The header names no `pxname`/`svname` columns.
    #[error("line {line}: the header has no `pxname` and `svname` columns")]
    MissingNameColumns {
        /// 1-based line number of the header.
        line: usize,
    },
    /// A quoted cell is never closed.
    #[error("line {line}: quoted field never closed before the end of input")]
    UnterminatedQuote {
        /// Line where the quoted field starts.
        line: usize,
    },
    /// Something other than a comma or a line end follows a closing quote.
    #[error("line {line}: unexpected character after a closing quote")]
    TextAfterQuote {
        /// Line of the offending character.
        line: usize,
    },
    /// The input exceeds the 2 GiB the compact spans can address.
    #[error("input of {0} bytes is larger than the 2 GiB this parser addresses")]
    TooLarge(usize),
}

/// A cell whose text is not the integer its column should hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: column `{column}` holds {value:?}, not an integer")]
pub struct ValueError {
    /// 1-based line number of the row.
    pub line: usize,
    /// Column name.
    pub column: String,
    /// The cell's text.
    pub value: String,
}

/// Position of a field in the buffer; the top bit of `end` marks a quoted field
/// holding doubled quotes that must be unescaped when read.
#[derive(Debug, Clone, Copy)]
struct Span {
    start: u32,
    end: u32,
}

const ESCAPED: u32 = 1 << 31;

impl Span {
    /// A cell not split out (see [`StatReader::only_cells`]): no span of a
    /// text under 2 GiB starts here.
    const ABSENT: Span = Span {
        start: u32::MAX,
        end: u32::MAX,
    };

    /// The plain (unquoted) cell `text[start..end]` of a text under 2 GiB.
    fn plain(start: usize, end: usize) -> Span {
        Span {
            start: start as u32,
            end: end as u32,
        }
    }

    fn is_absent(self) -> bool {
        self.start == u32::MAX
    }

    fn range(self) -> std::ops::Range<usize> {
        self.start as usize..(self.end & !ESCAPED) as usize
    }
    fn escaped(self) -> bool {
        self.end & ESCAPED != 0
    }
}

#[derive(Debug, Clone, Copy)]
struct RowMeta {
    first_span: u32,
    span_count: u32,
    line: u32,
}

/// The columns of a reply: names in reply order and an index by name.
#[derive(Debug, Clone)]
pub struct Header {
    columns: Vec<String>,
    by_name: HashMap<String, usize>,
    has_header: bool,
    pxname: usize,
    svname: usize,
    kind: Option<usize>,
}

impl Header {
    /// Reads the header line (or, without one, takes the positional layout);
    /// leaves `scanner` at the first row.
    fn read(scanner: &mut Scanner<'_>, text: &str) -> Result<Header, StatError> {
        scanner.skip_blank_lines();
        if scanner.at_end() {
            return Err(StatError::Empty);
        }
        let header_line = scanner.line;
        let (columns, has_header) = if scanner.peek() == Some(b'#') {
            let mut spans = Vec::new();
            scanner.pos += 1;
            scanner.scan_record(&mut spans)?;
            let names = spans
                .iter()
                .map(|span| field_text(text, *span).trim().to_owned())
                .collect::<Vec<_>>();
            (trim_trailing_empty(names), true)
        } else {
            let first_line = scanner.current_line_text().to_owned();
            let mut probe = Vec::new();
            scanner.clone().scan_record(&mut probe)?;
            if probe.len() < MIN_HEADERLESS_FIELDS {
                return Err(StatError::NotStatCsv {
                    line: header_line,
                    first_line: crate::excerpt(&first_line),
                });
            }
            (STATIC_FIELDS.iter().map(|name| (*name).to_owned()).collect(), false)
        };
        let mut by_name = HashMap::with_capacity(columns.len());
        for (index, name) in columns.iter().enumerate() {
            if !name.is_empty() && name != "-" {
                by_name.entry(name.clone()).or_insert(index);
            }
        }
        let (Some(&pxname), Some(&svname)) = (by_name.get("pxname"), by_name.get("svname")) else {
            return Err(StatError::MissingNameColumns { line: header_line });
        };
        let kind = by_name.get("type").copied();
        Ok(Header {
            columns,
            by_name,
            has_header,
            pxname,
            svname,
            kind,
        })
    }

    /// Column names in reply order, including the `-` delimiter of 2.3+.
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// Index of the column called `name`.
    pub fn column(&self, name: &str) -> Option<usize> {
        self.by_name.get(name).copied()
    }

    /// False when the reply had no header and positional names were used.
    pub fn has_header(&self) -> bool {
        self.has_header
    }
}

/// Bytes a [`StatReader`] reads at a time: big enough to hold hundreds of
/// rows, small enough to stay in the CPU cache between reading and parsing.
const READ_CHUNK: usize = 256 * 1024;

/// A reply read from any [`Read`] a part at a time, rows handed out one by
/// one and not kept: one pass over a reply of any size in the memory of one
/// read chunk (grown only for a single record larger than it).
///
/// Parts are cut at record boundaries (a line end outside quotes), so quoted
/// cells holding newlines are never split. Invalid UTF-8 is replaced, part by
/// part, never rejected.
pub struct StatReader<R> {
    source: Parts<R>,
    header: Header,
    /// Line number of the first unparsed byte.
    line: usize,
    /// The cells of the current row: all of them, or those of `chosen`.
    spans: Vec<Span>,
    chosen: Option<Chosen>,
}

/// The cells a [`StatReader`] splits out of each row when not all of them
/// ([`StatReader::only_cells`]).
struct Chosen {
    /// Their indexes, ascending, without repeats, never empty.
    indexes: Vec<usize>,
    /// A span per cell up to the last chosen one: the chosen cells' of the
    /// current row, [`Span::ABSENT`] for the others and for chosen cells the
    /// row lacks.
    spans: Vec<Span>,
}

/// The read buffer of a [`StatReader`]: unparsed bytes are `buffer[start..filled]`.
struct Parts<R> {
    reader: R,
    buffer: Vec<u8>,
    start: usize,
    filled: usize,
    at_eof: bool,
    /// The last byte read so far.
    last_byte: Option<u8>,
}

/// Why a [`StatReader`] stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The source failed.
    #[error("cannot read: {0}")]
    Io(#[from] std::io::Error),
    /// The reply is not `show stat` CSV.
    #[error(transparent)]
    Stat(#[from] StatError),
}

impl<R: Read> StatReader<R> {
    /// Reads from `reader` until the header is known.
    pub fn new(reader: R) -> Result<StatReader<R>, ReadError> {
        Self::with_buffer(reader, Vec::new())
    }

    /// [`StatReader::new`] reusing `buffer` (see [`StatReader::into_buffer`]).
    pub fn with_buffer(reader: R, mut buffer: Vec<u8>) -> Result<StatReader<R>, ReadError> {
        // Reused as it is: only `..filled` is ever read, so old bytes need no zeroing.
        if buffer.len() < READ_CHUNK {
            buffer.resize(READ_CHUNK, 0);
        }
        let mut source = Parts {
            reader,
            buffer,
            start: 0,
            filled: 0,
            at_eof: false,
            last_byte: None,
        };
        // Leading blank lines are skipped here, so that the part the header is
        // read from holds the header.
        let mut first_line = 1;
        let end = loop {
            let end = source.next_part()?;
            let part = &source.buffer[source.start..end];
            let blank = part.iter().take_while(|byte| byte.is_ascii_whitespace()).count();
            let blank_lines = memrchr(b'\n', &part[..blank]).map_or(0, |last| last + 1);
            if blank_lines < part.len() || part.is_empty() {
                first_line += memchr_iter(b'\n', &part[..blank_lines]).count();
                source.start += blank_lines;
                break end;
            }
            first_line += memchr_iter(b'\n', part).count();
            source.start = end;
        };
        let bytes = &source.buffer[source.start..end];
        let text = utf8_lossy(bytes);
        let mut scanner = Scanner::new(&text, first_line)?;
        let header = Header::read(&mut scanner, &text)?;
        // Counted in lines, which a repair of invalid UTF-8 leaves alone.
        source.start += nth_line_end(bytes, scanner.line - first_line);
        let spans = Vec::with_capacity(header.columns.len() + 1);
        Ok(StatReader {
            line: scanner.line,
            source,
            header,
            spans,
            chosen: None,
        })
    }

    /// The reply's columns.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Splits out only the cells at `indexes` of each row from now on, and
    /// those of `pxname`, `svname` and `type`, which [`StatRow`] reads
    /// itself; the other cells read as absent. For a pass that reads a few
    /// columns: a plain row is then searched for commas eight bytes at a
    /// time, and the rest of a line past the last chosen cell is not looked
    /// at.
    pub fn only_cells(&mut self, indexes: impl IntoIterator<Item = usize>) {
        let header = &self.header;
        let mut indexes: Vec<usize> = indexes
            .into_iter()
            .chain([header.pxname, header.svname])
            .chain(header.kind)
            .collect();
        indexes.sort_unstable();
        indexes.dedup();
        let count = indexes.last().map_or(0, |last| last + 1);
        self.chosen = Some(Chosen {
            indexes,
            spans: vec![Span::ABSENT; count],
        });
    }

    /// Hands every remaining row to `each`, in order; stops at the first error,
    /// from the reply or from `each`.
    pub fn for_each_row<E>(&mut self, mut each: impl FnMut(&StatRow<'_>) -> Result<(), E>) -> Result<(), E>
    where
        E: From<ReadError>,
    {
        loop {
            let source = &mut self.source;
            let end = source.next_part().map_err(|error| E::from(error.into()))?;
            if end == source.start {
                return Ok(());
            }
            let text = utf8_lossy(&source.buffer[source.start..end]);
            let mut scanner = Scanner::new(&text, self.line).map_err(|error| E::from(error.into()))?;
            loop {
                let next = match &mut self.chosen {
                    Some(chosen) => scanner.next_chosen_record(chosen, &mut self.spans),
                    None => scanner.next_record(&mut self.spans),
                };
                let Some(line) = next else { break };
                let line = line.map_err(|error| E::from(error.into()))?;
                let row = StatRow {
                    text: &text,
                    header: &self.header,
                    spans: self.chosen.as_ref().map_or(&self.spans, |chosen| &chosen.spans),
                    line,
                };
                each(&row)?;
                self.spans.clear();
            }
            self.line = scanner.line;
            source.start = end;
        }
    }

    /// Whether the reply ended with a line end, as every whole HAProxy reply
    /// does (meaningful once the rows are read).
    pub fn ended_with_line_end(&self) -> bool {
        self.source.last_byte == Some(b'\n')
    }

    /// The read buffer, for the next reader.
    pub fn into_buffer(self) -> Vec<u8> {
        self.source.buffer
    }
}

impl<R: Read> Parts<R> {
    /// Reads more when no whole record is buffered; returns the end of the
    /// whole records in `buffer[start..]`: everything left at the end of
    /// input, `start` when nothing is.
    fn next_part(&mut self) -> Result<usize, std::io::Error> {
        loop {
            let whole = record_boundary(&self.buffer[self.start..self.filled]);
            if whole > 0 {
                return Ok(self.start + whole);
            }
            if self.at_eof {
                return Ok(self.filled);
            }
            if self.start > 0 {
                self.buffer.copy_within(self.start..self.filled, 0);
                self.filled -= self.start;
                self.start = 0;
            }
            if self.filled == self.buffer.len() {
                // One record larger than the buffer: make room for it.
                self.buffer.resize(self.buffer.len() * 2, 0);
            }
            match self.reader.read(&mut self.buffer[self.filled..]) {
                Ok(0) => self.at_eof = true,
                Ok(read) => {
                    self.filled += read;
                    self.last_byte = Some(self.buffer[self.filled - 1]);
                }
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
                Err(error) => return Err(error),
            }
        }
    }
}

/// Length of the longest prefix of `bytes` made of whole records: up to the
/// last line end outside quotes (an even number of quotes before it), or 0.
fn record_boundary(bytes: &[u8]) -> usize {
    let Some(mut end) = memrchr(b'\n', bytes) else {
        return 0;
    };
    let mut quotes = memchr_iter(b'"', &bytes[..end]).count();
    while quotes % 2 == 1 {
        let Some(previous) = memrchr(b'\n', &bytes[..end]) else {
            return 0;
        };
        quotes -= memchr_iter(b'"', &bytes[previous..end]).count();
        end = previous;
    }
    end + 1
}

/// `bytes` as text, invalid sequences replaced; valid text (the rule) is
/// checked on the fast path and borrowed.
fn utf8_lossy(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

/// Offset just past the `count`-th line end of `bytes` (all of it when fewer).
fn nth_line_end(bytes: &[u8], count: usize) -> usize {
    if count == 0 {
        return 0;
    }
    memchr_iter(b'\n', bytes)
        .nth(count - 1)
        .map_or(bytes.len(), |end| end + 1)
}

/// A parsed `show stat` reply, kept whole for random access.
#[derive(Clone)]
pub struct ShowStat {
    text: String,
    header: Header,
    rows: Vec<RowMeta>,
    spans: Vec<Span>,
    truncated_line: Option<usize>,
}

impl fmt::Debug for ShowStat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShowStat")
            .field("columns", &self.header.columns.len())
            .field("rows", &self.rows.len())
            .field("has_header", &self.header.has_header)
            .finish()
    }
}

/// Column names of the static fields in HAProxy's fixed order (positions 0–99),
/// used to name the cells of a reply that has no header line.
pub const STATIC_FIELDS: &[&str] = &[
    "pxname",
    "svname",
    "qcur",
    "qmax",
    "scur",
    "smax",
    "slim",
    "stot",
    "bin",
    "bout",
    "dreq",
    "dresp",
    "ereq",
    "econ",
    "eresp",
    "wretr",
    "wredis",
    "status",
    "weight",
    "act",
    "bck",
    "chkfail",
    "chkdown",
    "lastchg",
    "downtime",
    "qlimit",
    "pid",
    "iid",
    "sid",
    "throttle",
    "lbtot",
    "tracked",
    "type",
    "rate",
    "rate_lim",
    "rate_max",
    "check_status",
    "check_code",
    "check_duration",
    "hrsp_1xx",
    "hrsp_2xx",
    "hrsp_3xx",
    "hrsp_4xx",
    "hrsp_5xx",
    "hrsp_other",
    "hanafail",
    "req_rate",
    "req_rate_max",
    "req_tot",
    "cli_abrt",
    "srv_abrt",
    "comp_in",
    "comp_out",
    "comp_byp",
    "comp_rsp",
    "lastsess",
    "last_chk",
    "last_agt",
    "qtime",
    "ctime",
    "rtime",
    "ttime",
    "agent_status",
    "agent_code",
    "agent_duration",
    "check_desc",
    "agent_desc",
    "check_rise",
    "check_fall",
    "check_health",
    "agent_rise",
    "agent_fall",
    "agent_health",
    "addr",
    "cookie",
    "mode",
    "algo",
    "conn_rate",
    "conn_rate_max",
    "conn_tot",
    "intercepted",
    "dcon",
    "dses",
    "wrew",
    "connect",
    "reuse",
    "cache_lookups",
    "cache_hits",
    "srv_icur",
    "src_ilim",
    "qtime_max",
    "ctime_max",
    "rtime_max",
    "ttime_max",
    "eint",
    "idle_conn_cur",
    "safe_conn_cur",
    "used_conn_cur",
    "need_conn_est",
    "uweight",
];

/// Fields a headerless reply must reach (`pxname` … `type`).
const MIN_HEADERLESS_FIELDS: usize = 33;

/// Columns that hold text even when a value looks like a number (a proxy may
/// be called `443`); every other column holds numbers.
const TEXT_COLUMNS: &[&str] = &[
    "pxname",
    "svname",
    "status",
    "tracked",
    "check_status",
    "last_chk",
    "last_agt",
    "agent_status",
    "check_desc",
    "agent_desc",
    "addr",
    "cookie",
    "mode",
    "algo",
    "proto",
];

/// Whether `column` holds text rather than numbers.
pub fn is_text_column(column: &str) -> bool {
    TEXT_COLUMNS.contains(&column)
}

impl ShowStat {
    /// Parses a reply given as bytes; invalid UTF-8 is replaced, never rejected.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, StatError> {
        let text = match String::from_utf8(bytes) {
            Ok(text) => text,
            Err(error) => String::from_utf8_lossy(error.as_bytes()).into_owned(),
        };
        Self::parse(text)
    }

    /// Parses a reply.
    pub fn parse(text: String) -> Result<Self, StatError> {
        let (header, rows, spans) = {
            let mut scanner = Scanner::new(&text, 1)?;
            let header = Header::read(&mut scanner, &text)?;
            // One row per line in practice: size both arrays once instead of growing them.
            let lines_left = memchr_iter(b'\n', &text.as_bytes()[scanner.pos..]).count() + 1;
            let mut rows = Vec::with_capacity(lines_left);
            let mut spans = Vec::with_capacity(lines_left.saturating_mul(header.columns.len() + 1));
            while let Some(line) = scanner.next_record(&mut spans) {
                let first_span = rows
                    .last()
                    .map_or(0, |last: &RowMeta| last.first_span + last.span_count);
                rows.push(RowMeta {
                    first_span,
                    span_count: spans.len() as u32 - first_span,
                    line: line? as u32,
                });
            }
            (header, rows, spans)
        };
        let truncated_line = match rows.last() {
            Some(last) if !text.ends_with('\n') && (last.span_count as usize) < header.columns.len() => {
                Some(last.line as usize)
            }
            _ => None,
        };
        Ok(ShowStat {
            text,
            header,
            rows,
            spans,
            truncated_line,
        })
    }

    /// The reply's columns.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Column names in reply order, including the `-` delimiter of 2.3+.
    pub fn columns(&self) -> &[String] {
        &self.header.columns
    }

    /// Index of the column called `name`.
    pub fn column(&self, name: &str) -> Option<usize> {
        self.header.column(name)
    }

    /// False when the reply had no header and positional names were used.
    pub fn has_header(&self) -> bool {
        self.header.has_header
    }

    /// Line of the last row when the input ends mid-row (no final newline and
    /// fewer cells than columns): the reply was probably cut short.
    pub fn truncated_line(&self) -> Option<usize> {
        self.truncated_line
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// True when the reply holds a header but no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The rows in reply order.
    pub fn rows(&self) -> impl ExactSizeIterator<Item = StatRow<'_>> + '_ {
        self.rows.iter().map(move |meta| StatRow {
            text: &self.text,
            header: &self.header,
            spans: &self.spans[meta.first_span as usize..(meta.first_span + meta.span_count) as usize],
            line: meta.line as usize,
        })
    }
}

/// One row of a [`ShowStat`] or of a [`StatReader`].
#[derive(Clone, Copy)]
pub struct StatRow<'a> {
    text: &'a str,
    header: &'a Header,
    spans: &'a [Span],
    line: usize,
}

impl fmt::Debug for StatRow<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StatRow")
            .field("line", &self.line())
            .field("pxname", &self.pxname())
            .field("svname", &self.svname())
            .finish()
    }
}

impl<'a> StatRow<'a> {
    /// 1-based line number where the row starts.
    pub fn line(&self) -> usize {
        self.line
    }

    /// Number of cells the row has (it may differ from the column count);
    /// from a reader that splits out [chosen cells](StatReader::only_cells),
    /// one past the last chosen.
    pub fn cell_count(&self) -> usize {
        self.spans.len()
    }

    #[inline]
    fn span(&self, index: usize) -> Option<Span> {
        self.spans.get(index).copied().filter(|span| !span.is_absent())
    }

    /// The text of cell `index`, `None` when the row is shorter (or the
    /// cell was not [chosen](StatReader::only_cells)).
    #[inline]
    pub fn cell(&self, index: usize) -> Option<Cow<'a, str>> {
        let span = self.span(index)?;
        let raw = field_text(self.text, span);
        Some(if span.escaped() {
            Cow::Owned(raw.replace("\"\"", "\""))
        } else {
            Cow::Borrowed(raw)
        })
    }

    /// The text of the column called `name`, `None` when the reply lacks it.
    pub fn get(&self, name: &str) -> Option<Cow<'a, str>> {
        self.cell(self.header.column(name)?)
    }

    /// The integer in cell `index`: `None` when absent or empty.
    #[inline]
    pub fn int_at(&self, index: usize) -> Result<Option<i64>, ValueError> {
        let Some(span) = self.span(index) else {
            return Ok(None);
        };
        // Spans lie within the text: the bytes need no character boundary check.
        if !span.escaped()
            && let Some(number) = self.text.as_bytes().get(span.range()).and_then(parse_plain_int)
        {
            return Ok(number);
        }
        self.careful_int_at(index)
    }

    /// [`StatRow::int_at`] for a cell that is not plain digits: quoted,
    /// padded, too long, or not a number (the error).
    #[cold]
    fn careful_int_at(&self, index: usize) -> Result<Option<i64>, ValueError> {
        let text = self.cell(index).unwrap_or_default();
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Ok(None);
        }
        trimmed.parse::<i64>().map(Some).map_err(|_| ValueError {
            line: self.line(),
            column: self.header.columns.get(index).cloned().unwrap_or_default(),
            value: crate::excerpt(&text),
        })
    }

    /// The integer in the column called `name`: `None` when absent or empty.
    pub fn int(&self, name: &str) -> Result<Option<i64>, ValueError> {
        match self.header.column(name) {
            Some(index) => self.int_at(index),
            None => Ok(None),
        }
    }

    /// The proxy name.
    #[inline]
    pub fn pxname(&self) -> Cow<'a, str> {
        self.cell(self.header.pxname).unwrap_or(Cow::Borrowed(""))
    }

    /// The server name, or `FRONTEND` / `BACKEND`.
    #[inline]
    pub fn svname(&self) -> Cow<'a, str> {
        self.cell(self.header.svname).unwrap_or(Cow::Borrowed(""))
    }

    /// What the row describes. The reserved `svname`s `FRONTEND` and `BACKEND`
    /// decide first (as haproxystats classifies rows, and robust to files whose
    /// `type` disagrees); otherwise the `type` column, and a server when absent.
    pub fn object_type(&self) -> ObjectType {
        match self.svname().as_ref() {
            "FRONTEND" => return ObjectType::Frontend,
            "BACKEND" => return ObjectType::Backend,
            _ => {}
        }
        match self
            .header
            .kind
            .and_then(|index| self.cell(index))
            .as_deref()
            .map(str::trim)
        {
            Some("0") => ObjectType::Frontend,
            Some("1") => ObjectType::Backend,
            Some("3") => ObjectType::Listener,
            _ => ObjectType::Server,
        }
    }
}

/// The fast path of [`StatRow::int_at`]: `Some(None)` for an empty cell,
/// `Some(Some(n))` for plain decimal digits with an optional `-`, `None` for
/// anything else (left to the careful path, which also reports errors).
#[inline]
fn parse_plain_int(bytes: &[u8]) -> Option<Option<i64>> {
    if bytes.is_empty() {
        return Some(None);
    }
    let (negative, digits) = match bytes.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, bytes),
    };
    if digits.is_empty() || digits.len() > 18 {
        return None;
    }
    let mut value: i64 = 0;
    for byte in digits {
        if !byte.is_ascii_digit() {
            return None;
        }
        value = value * 10 + i64::from(byte - b'0');
    }
    Some(Some(if negative { -value } else { value }))
}

#[inline]
fn field_text(text: &str, span: Span) -> &str {
    // Spans always start and end on ASCII delimiters, hence on char boundaries.
    text.get(span.range()).unwrap_or("")
}

fn trim_trailing_empty(mut names: Vec<String>) -> Vec<String> {
    while names.last().is_some_and(|name| name.is_empty()) {
        names.pop();
    }
    names
}

/// Walks the buffer record by record.
#[derive(Clone)]
struct Scanner<'a> {
    bytes: &'a [u8],
    pos: usize,
    line: usize,
}

impl<'a> Scanner<'a> {
    /// A scanner at the start of `text`, which begins on line `line`; refused
    /// when the text is too large for the compact spans to address.
    fn new(text: &'a str, line: usize) -> Result<Scanner<'a>, StatError> {
        if text.len() >= ESCAPED as usize {
            return Err(StatError::TooLarge(text.len()));
        }
        Ok(Scanner {
            bytes: text.as_bytes(),
            pos: 0,
            line,
        })
    }

    fn at_end(&self) -> bool {
        self.pos >= self.bytes.len()
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn line_end(&self) -> usize {
        memchr(b'\n', &self.bytes[self.pos..]).map_or(self.bytes.len(), |offset| self.pos + offset)
    }

    fn current_line_text(&self) -> &str {
        let line = &self.bytes[self.pos..self.line_end()];
        std::str::from_utf8(line).unwrap_or("").trim_end_matches('\r')
    }

    fn skip_blank_lines(&mut self) {
        while let Some(first) = self.peek() {
            if !first.is_ascii_whitespace() {
                return;
            }
            let end = self.line_end();
            if self.bytes[self.pos..end].iter().any(|byte| !byte.is_ascii_whitespace()) {
                return;
            }
            self.pos = (end + 1).min(self.bytes.len());
            self.line += 1;
        }
    }

    /// Skips blank lines; the line number of the next record, or `None` at
    /// the end of input.
    fn record_start(&mut self) -> Option<usize> {
        self.skip_blank_lines();
        (!self.at_end()).then_some(self.line)
    }

    /// Skips blank lines, then appends the spans of the next record; its line
    /// number, or `None` at the end of input.
    fn next_record(&mut self, spans: &mut Vec<Span>) -> Option<Result<usize, StatError>> {
        let line = self.record_start()?;
        Some(self.scan_record(spans).map(|()| line))
    }

    /// [`Scanner::next_record`] that splits out the cells of `chosen` only;
    /// `scratch` holds the cells of a quoted record on the way.
    fn next_chosen_record(&mut self, chosen: &mut Chosen, scratch: &mut Vec<Span>) -> Option<Result<usize, StatError>> {
        let line = self.record_start()?;
        let Some(end) = self.plain_line_end() else {
            return Some(self.scan_quoted_record(scratch).map(|()| {
                chosen.take(scratch);
                line
            }));
        };
        chosen.split(self.unterminated(end), self.pos);
        self.pass_line_end(end);
        Some(Ok(line))
    }

    /// The end of the current line when it holds no quote; one search finds
    /// the line's end or, first, a quote in it.
    fn plain_line_end(&self) -> Option<usize> {
        match memchr2(b'\n', b'"', &self.bytes[self.pos..]) {
            Some(offset) if self.bytes[self.pos + offset] == b'"' => None,
            Some(offset) => Some(self.pos + offset),
            None => Some(self.bytes.len()),
        }
    }

    /// The current line up to `end`, without a carriage return before it.
    fn unterminated(&self, end: usize) -> &'a [u8] {
        let line = &self.bytes[self.pos..end];
        line.strip_suffix(b"\r").unwrap_or(line)
    }

    /// Moves past the line end at `end`, or to the end of a reply whose last
    /// line has none.
    fn pass_line_end(&mut self, end: usize) {
        self.pos = (end + 1).min(self.bytes.len());
        self.line += 1;
    }

    /// Appends the spans of one record and moves past its line end.
    fn scan_record(&mut self, spans: &mut Vec<Span>) -> Result<(), StatError> {
        let Some(end) = self.plain_line_end() else {
            return self.scan_quoted_record(spans);
        };
        let base = self.pos;
        let mut start = 0;
        // A branch per byte, which the CPU learns (rows repeat their shape):
        // `top` read a reply of 11,200 rows of HAProxy 2.6 in 4.0 ms with this
        // loop, 4.4 ms with a search eight bytes at a time, and 4.8 ms with a
        // branch-free search in blocks. (Where each cell is kept, the work per
        // cell outweighs the search; [`Chosen::split`] keeps few.)
        let line = self.unterminated(end);
        for (index, byte) in line.iter().enumerate() {
            if *byte == b',' {
                spans.push(Span::plain(base + start, base + index));
                start = index + 1;
            }
        }
        spans.push(Span::plain(base + start, base + line.len()));
        self.pass_line_end(end);
        Ok(())
    }

    /// The slow path for a record holding a quote: cells may span lines.
    fn scan_quoted_record(&mut self, spans: &mut Vec<Span>) -> Result<(), StatError> {
        let bytes = self.bytes;
        loop {
            if bytes.get(self.pos) == Some(&b'"') {
                let open_line = self.line;
                let start = self.pos + 1;
                let mut cursor = start;
                let mut escaped = false;
                let end = loop {
                    let Some(offset) = memchr(b'"', &bytes[cursor..]) else {
                        return Err(StatError::UnterminatedQuote { line: open_line });
                    };
                    self.line += memchr_iter(b'\n', &bytes[cursor..cursor + offset]).count();
                    let quote = cursor + offset;
                    if bytes.get(quote + 1) == Some(&b'"') {
                        escaped = true;
                        cursor = quote + 2;
                    } else {
                        break quote;
                    }
                };
                let flag = if escaped { ESCAPED } else { 0 };
                spans.push(Span {
                    start: start as u32,
                    end: end as u32 | flag,
                });
                self.pos = end + 1;
            } else {
                let rest = &bytes[self.pos..];
                let stop = rest
                    .iter()
                    .position(|byte| matches!(byte, b',' | b'\n'))
                    .unwrap_or(rest.len());
                let mut field_end = self.pos + stop;
                if bytes.get(field_end) != Some(&b',') && field_end > self.pos && bytes[field_end - 1] == b'\r' {
                    field_end -= 1;
                }
                spans.push(Span {
                    start: self.pos as u32,
                    end: field_end as u32,
                });
                self.pos += stop;
            }
            match bytes.get(self.pos) {
                Some(b',') => self.pos += 1,
                Some(b'\r') if bytes.get(self.pos + 1) == Some(&b'\n') => {
                    self.pos += 2;
                    self.line += 1;
                    return Ok(());
                }
                Some(b'\n') => {
                    self.pos += 1;
                    self.line += 1;
                    return Ok(());
                }
                // The reply's last line, without a line end: still a line,
                // as `scan_record` counts it.
                None => {
                    self.line += 1;
                    return Ok(());
                }
                Some(_) => return Err(StatError::TextAfterQuote { line: self.line }),
            }
        }
    }
}

impl Chosen {
    /// Splits the chosen cells out of `line`, a record without quotes that
    /// starts at `base` in the text. Eight bytes at a time: the commas of a
    /// word are counted, and only those that start or end a chosen cell are
    /// looked for in it.
    fn split(&mut self, line: &[u8], base: usize) {
        let mut walk = CommaWalk::new(self, base);
        let mut words = line.chunks_exact(8);
        let mut offset = base;
        for word in &mut words {
            let word = u64::from_le_bytes(word.try_into().unwrap_or([0; 8]));
            if walk.take_word(word, offset).is_break() {
                return;
            }
            offset += 8;
        }
        let mut last = [0; 8];
        last[..words.remainder().len()].copy_from_slice(words.remainder());
        if walk.take_word(u64::from_le_bytes(last), offset).is_break() {
            return;
        }
        // The line's last cell ends with it; chosen cells past it are absent.
        let CommaWalk {
            chosen,
            next,
            target,
            start,
            ..
        } = walk;
        let mut missing = &chosen.indexes[next..];
        if let Some((&cell, rest)) = missing.split_first()
            && target == cell + 1
        {
            chosen.spans[cell] = Span::plain(start, base + line.len());
            missing = rest;
        }
        for &cell in missing {
            chosen.spans[cell] = Span::ABSENT;
        }
    }

    /// Takes the chosen cells out of all the cells of a quoted record.
    fn take(&mut self, cells: &[Span]) {
        for &index in &self.indexes {
            self.spans[index] = cells.get(index).copied().unwrap_or(Span::ABSENT);
        }
    }
}

/// Where [`Chosen::split`] is in a line. Commas are numbered from 1: comma
/// `c` ends cell `c - 1` and starts cell `c`.
struct CommaWalk<'a> {
    chosen: &'a mut Chosen,
    /// The position in `chosen.indexes` of the chosen cell looked for.
    next: usize,
    /// The number of the comma looked for: the one that starts that cell,
    /// or, once its start is known, the one that ends it.
    target: usize,
    /// Where that cell starts in the text, once known.
    start: usize,
    /// Commas passed so far.
    seen: usize,
}

impl<'a> CommaWalk<'a> {
    /// At the start of a line at `base` in the text.
    fn new(chosen: &'a mut Chosen, base: usize) -> CommaWalk<'a> {
        // Never empty: `pxname` and `svname` are always chosen.
        let first = chosen.indexes.first().copied().unwrap_or(0);
        CommaWalk {
            chosen,
            next: 0,
            // Cell 0 starts with the line: its end is looked for.
            target: if first == 0 { 1 } else { first },
            start: base,
            seen: 0,
        }
    }

    /// Takes the commas of `word`, the eight bytes at `offset` in the text
    /// read little-endian; breaks once every chosen cell is split out.
    #[inline]
    fn take_word(&mut self, word: u64, offset: usize) -> std::ops::ControlFlow<()> {
        let mut commas = crate::scan::every_equal(word, b',');
        // One bit per comma, the high one of its byte: summed into the top byte.
        let count = ((commas >> 7).wrapping_mul(0x0101_0101_0101_0101) >> 56) as usize;
        let passed = self.seen + count;
        while self.target <= passed {
            for _ in self.seen + 1..self.target {
                commas &= commas - 1;
            }
            let at = offset + commas.trailing_zeros() as usize / 8;
            commas &= commas - 1;
            self.seen = self.target;
            self.found(at)?;
        }
        self.seen = passed;
        std::ops::ControlFlow::Continue(())
    }

    /// The comma looked for is at `at`: a chosen cell starts after it, or
    /// ends there and the next one is looked for.
    #[inline]
    fn found(&mut self, at: usize) -> std::ops::ControlFlow<()> {
        let cell = self.chosen.indexes[self.next];
        if self.target == cell {
            self.start = at + 1;
            self.target = cell + 1;
            return std::ops::ControlFlow::Continue(());
        }
        self.chosen.spans[cell] = Span::plain(self.start, at);
        self.next += 1;
        let Some(&following) = self.chosen.indexes.get(self.next) else {
            return std::ops::ControlFlow::Break(());
        };
        if following == cell + 1 {
            self.start = at + 1;
            self.target = following + 1;
        } else {
            self.target = following;
        }
        std::ops::ControlFlow::Continue(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "# pxname,svname,scur,status,type,\n";

    #[test]
    fn a_last_line_without_a_line_end_and_with_a_quote_is_read_once_by_both_readers() {
        // Found by the stat_reader fuzz target: the reader read this header
        // again as a row.
        let reply = "# pxname,svname,scur\"x\",type";
        let whole = ShowStat::parse(reply.to_owned()).unwrap();
        assert_eq!(whole.len(), 0);
        let mut reader = StatReader::new(reply.as_bytes()).unwrap();
        let mut rows = 0;
        reader
            .for_each_row(|_| -> Result<(), ReadError> {
                rows += 1;
                Ok(())
            })
            .unwrap();
        assert_eq!(rows, 0);
        assert_eq!(reader.header().columns(), whole.columns());
    }

    #[test]
    fn reads_cells_by_header_name_despite_trailing_commas() {
        let stat = ShowStat::parse(format!("{HEADER}fe,FRONTEND,3,OPEN,0,\nbe,s1,,UP,2,\n\n")).unwrap();
        assert_eq!(stat.columns(), ["pxname", "svname", "scur", "status", "type"]);
        let rows: Vec<_> = stat.rows().collect();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].int("scur"), Ok(Some(3)));
        assert_eq!(rows[1].int("scur"), Ok(None));
        assert_eq!(rows[1].get("status").as_deref(), Some("UP"));
        assert_eq!(rows[0].object_type(), ObjectType::Frontend);
        assert_eq!(rows[1].object_type(), ObjectType::Server);
        assert_eq!(rows[1].line(), 3);
        assert_eq!(stat.truncated_line(), None);
    }

    #[test]
    fn quoted_cells_keep_commas_quotes_and_newlines() {
        let text = format!("{HEADER}\"a,b\",\"x\"\"y\nz\",1,\"UP\",2,\nnext,s,2,UP,2,\n");
        let stat = ShowStat::parse(text).unwrap();
        let rows: Vec<_> = stat.rows().collect();
        assert_eq!(rows[0].pxname(), "a,b");
        assert_eq!(rows[0].svname(), "x\"y\nz");
        assert_eq!(rows[0].get("status").as_deref(), Some("UP"));
        assert_eq!(rows[1].line(), 4);
        assert_eq!(rows[1].pxname(), "next");
    }

    #[test]
    fn malformed_quoting_names_the_line() {
        let open = ShowStat::parse(format!("{HEADER}be,\"never closed,1\n")).unwrap_err();
        assert_eq!(open, StatError::UnterminatedQuote { line: 2 });
        let after = ShowStat::parse(format!("{HEADER}ok,s,1,UP,2,\nbe,\"s\"x,1\n")).unwrap_err();
        assert_eq!(after, StatError::TextAfterQuote { line: 3 });
    }

    #[test]
    fn bad_integer_names_line_column_and_value() {
        let stat = ShowStat::parse(format!("{HEADER}be,s1,lots,UP,2,\n")).unwrap();
        let row = stat.rows().next().unwrap();
        let error = row.int("scur").unwrap_err();
        assert_eq!(
            error.to_string(),
            "line 2: column `scur` holds \"lots\", not an integer"
        );
    }

    #[test]
    fn short_rows_and_truncated_replies() {
        let stat = ShowStat::parse(format!("{HEADER}be,s1,4,UP,2,\nbe,s2,5")).unwrap();
        let rows: Vec<_> = stat.rows().collect();
        assert_eq!(rows[1].int("scur"), Ok(Some(5)));
        assert_eq!(rows[1].get("status"), None);
        assert_eq!(stat.truncated_line(), Some(3));
    }

    #[test]
    fn refuses_text_that_is_not_stat_csv() {
        assert_eq!(ShowStat::parse("\n \n".into()).unwrap_err(), StatError::Empty);
        let error = ShowStat::parse("Unknown command, but maybe\n".into()).unwrap_err();
        assert_eq!(
            error,
            StatError::NotStatCsv {
                line: 1,
                first_line: "Unknown command, but maybe".into()
            }
        );
        let no_names = ShowStat::parse("# a,b,c\n1,2,3\n".into()).unwrap_err();
        assert_eq!(no_names, StatError::MissingNameColumns { line: 1 });
    }

    #[test]
    fn headerless_replies_use_the_positional_layout() {
        let row = "be,s1,0,0,7,0,,0,0,0,,0,,0,0,0,0,UP,1,1,0,0,0,5007,0,,1,8,1,,0,,2,0,,0,L4OK,,0,\n";
        let stat = ShowStat::parse(row.into()).unwrap();
        assert!(!stat.has_header());
        let parsed = stat.rows().next().unwrap();
        assert_eq!(parsed.int("scur"), Ok(Some(7)));
        assert_eq!(parsed.get("check_status").as_deref(), Some("L4OK"));
        assert_eq!(parsed.object_type(), ObjectType::Server);
    }

    /// A source that hands out one byte per read, so every record boundary
    /// (and every byte inside a quoted cell) falls at the end of a read.
    struct Trickle<'a>(&'a [u8]);

    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            let Some((first, rest)) = self.0.split_first() else {
                return Ok(0);
            };
            out[0] = *first;
            self.0 = rest;
            Ok(1)
        }
    }

    /// (line, pxname, svname, scur) of a row.
    type Seen = (usize, String, String, Option<i64>);

    /// What every row a reader hands out holds.
    fn streamed(reader: impl Read) -> Result<Vec<Seen>, String> {
        let mut stream = StatReader::new(reader).map_err(|error| error.to_string())?;
        let mut rows = Vec::new();
        stream.for_each_row(|row| -> Result<(), String> {
            let scur = row.int("scur").map_err(|error| error.to_string())?;
            rows.push((row.line(), row.pxname().into_owned(), row.svname().into_owned(), scur));
            Ok(())
        })?;
        Ok(rows)
    }

    impl From<ReadError> for String {
        fn from(error: ReadError) -> String {
            error.to_string()
        }
    }

    #[test]
    fn streamed_rows_match_the_parsed_reply_however_the_reads_fall() {
        let text = format!("\n{HEADER}fe,FRONTEND,3,OPEN,0,\n\n\"b,e\",\"x\"\"y\nz\",,UP,2,\nbe,s2,7,UP,2,\n");
        let expected = vec![
            (3, "fe".to_owned(), "FRONTEND".to_owned(), Some(3)),
            (5, "b,e".to_owned(), "x\"y\nz".to_owned(), None),
            (7, "be".to_owned(), "s2".to_owned(), Some(7)),
        ];
        assert_eq!(streamed(text.as_bytes()), Ok(expected.clone()));
        assert_eq!(streamed(Trickle(text.as_bytes())), Ok(expected));
        let whole = ShowStat::parse(text).unwrap();
        assert_eq!(whole.rows().map(|row| row.line()).collect::<Vec<_>>(), [3, 5, 7]);
    }

    #[test]
    fn streamed_errors_name_the_line() {
        let bad_cell = format!("{HEADER}be,s1,4,UP,2,\nbe,s2,x,UP,2,\n");
        assert_eq!(
            streamed(Trickle(bad_cell.as_bytes())),
            Err("line 3: column `scur` holds \"x\", not an integer".to_owned())
        );
        let open_quote = format!("{HEADER}be,s1,4,UP,2,\nbe,\"s2,1\nbe,s3,1,UP,2,\n");
        assert_eq!(
            streamed(Trickle(open_quote.as_bytes())),
            Err("line 3: quoted field never closed before the end of input".to_owned())
        );
        assert_eq!(
            streamed(&b"\n\n"[..]),
            Err("empty input: no header and no rows".to_owned())
        );
    }

    #[test]
    fn a_record_larger_than_the_read_buffer_is_read_whole() {
        let long_name = "s".repeat(READ_CHUNK * 2 + 17);
        let text = format!("{HEADER}be,{long_name},5,UP,2,\nbe,s2,6,UP,2,\n");
        let rows = streamed(text.as_bytes()).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!((rows[0].2.len(), rows[0].3), (READ_CHUNK * 2 + 17, Some(5)));
        assert_eq!((rows[1].0, rows[1].3), (3, Some(6)));
    }

    #[test]
    fn invalid_utf8_is_replaced_and_the_end_of_the_reply_is_reported() {
        let mut bytes = HEADER.as_bytes().to_vec();
        bytes.extend_from_slice(b"be,s\xff1,4,UP,2,\nbe,s2,5,UP,2,");
        let mut stream = StatReader::new(Trickle(&bytes)).unwrap();
        let mut names = Vec::new();
        stream
            .for_each_row(|row| -> Result<(), String> {
                names.push(row.svname().into_owned());
                Ok(())
            })
            .unwrap();
        assert_eq!(names, ["s\u{fffd}1", "s2"]);
        assert!(!stream.ended_with_line_end(), "the last row has no line end");
    }

    #[test]
    fn a_reader_of_chosen_cells_splits_out_those_and_the_names_and_type() {
        let text = format!("{HEADER}fe,FRONTEND,3,OPEN,0,\nbe,s1,4,UP,2,\nbe,\"s,2\",5,DOWN,2\nbe,s3\n");
        let mut stream = StatReader::new(text.as_bytes()).unwrap();
        stream.only_cells([2]);
        let mut seen = Vec::new();
        stream
            .for_each_row(|row| -> Result<(), String> {
                seen.push((
                    row.line(),
                    row.cell_count(),
                    row.svname().into_owned(),
                    row.int("scur"),
                    row.get("status").is_some(),
                    row.object_type(),
                ));
                Ok(())
            })
            .unwrap();
        assert_eq!(
            seen,
            [
                (2, 5, "FRONTEND".to_owned(), Ok(Some(3)), false, ObjectType::Frontend),
                (3, 5, "s1".to_owned(), Ok(Some(4)), false, ObjectType::Server),
                (4, 5, "s,2".to_owned(), Ok(Some(5)), false, ObjectType::Server),
                (5, 5, "s3".to_owned(), Ok(None), false, ObjectType::Server),
            ],
            "status is not chosen; a quoted row and a short one read as the others"
        );
        assert!(stream.ended_with_line_end());
    }

    #[test]
    fn plain_integers_take_the_fast_path_and_others_the_careful_one() {
        assert_eq!(parse_plain_int(b""), Some(None));
        assert_eq!(parse_plain_int(b"-12"), Some(Some(-12)));
        assert_eq!(
            parse_plain_int(b"9223372036854775807"),
            None,
            "19 digits go the careful way"
        );
        assert_eq!(parse_plain_int(b" 7"), None);
        let stat = ShowStat::parse(format!("{HEADER}be,s1, 7 ,UP,2,\nbe,s2,9223372036854775807,UP,2,\n")).unwrap();
        let values: Vec<_> = stat.rows().map(|row| row.int("scur")).collect();
        assert_eq!(values, [Ok(Some(7)), Ok(Some(i64::MAX))]);
    }

    #[test]
    fn crlf_line_ends_are_not_part_of_cells() {
        let stat = ShowStat::parse("# pxname,svname,status\r\nbe,s1,UP\r\nbe,\"s2\",DOWN\r\n".into()).unwrap();
        let rows: Vec<_> = stat.rows().collect();
        assert_eq!(stat.columns(), ["pxname", "svname", "status"]);
        assert_eq!(rows[0].get("status").as_deref(), Some("UP"));
        assert_eq!(rows[1].get("status").as_deref(), Some("DOWN"));
    }

    #[test]
    fn chosen_cells_match_a_plain_split() {
        // (A blank line is no record: skipped.)
        let lines = [
            ",",
            "a",
            "be,s1,,,,,UP,12,,,345,6789012,,",
            "fe,FRONTEND,0,0,0,1,2000,81,6802,27497,0,0,0,,,,,OPEN,,,,,,,,,1,2,0,,,,0,0,0,1",
            "\u{e9}t\u{e9},\u{2603},,x,\u{1f600},,",
        ];
        for line in lines {
            let plain: Vec<&str> = line.split(',').collect();
            // Every cell alone and every pair, one past the end included;
            // each line twice, after a row that had every chosen cell.
            let width = plain.len() + 1;
            let choices = (0..width).flat_map(|first| (first..width).map(move |second| vec![first, second]));
            for indexes in choices {
                let mut indexes = indexes;
                indexes.dedup();
                let last = indexes[indexes.len() - 1];
                let long = vec!["x"; last + 1].join(",");
                let text = format!("{long}\n{line}\r\n{line}");
                let mut chosen = Chosen {
                    spans: vec![Span::ABSENT; last + 1],
                    indexes,
                };
                let mut scanner = Scanner::new(&text, 1).unwrap();
                let mut scratch = Vec::new();
                for expected_line in 1..=3 {
                    let read = scanner.next_chosen_record(&mut chosen, &mut scratch);
                    assert_eq!(read.unwrap().unwrap(), expected_line);
                    let cells: Vec<Option<&str>> = chosen
                        .spans
                        .iter()
                        .map(|span| (!span.is_absent()).then(|| field_text(&text, *span)))
                        .collect();
                    let expected: Vec<Option<&str>> = (0..=last)
                        .map(|index| match expected_line {
                            1 if chosen.indexes.contains(&index) => Some("x"),
                            2 | 3 if chosen.indexes.contains(&index) => plain.get(index).copied(),
                            _ => None,
                        })
                        .collect();
                    assert_eq!(cells, expected, "{line:?}, line {expected_line}, {:?}", chosen.indexes);
                }
                assert!(scanner.next_chosen_record(&mut chosen, &mut scratch).is_none());
            }
        }
    }
}
