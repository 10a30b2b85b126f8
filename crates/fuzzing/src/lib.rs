//! What each fuzz target does with its input: one function per parser of
//! untrusted input, which must never panic and must keep the properties
//! checked here (a reply rendered and read again is the same reply, the
//! streaming `show stat` reader agrees with the whole-reply parser, …).
//!
//! `fuzz/` runs these under libFuzzer (`scripts/fuzz.sh`); `tests/seeds.rs`
//! runs them on stable over every seed (the fixtures) and every input a
//! fuzzer ever crashed on (`fuzz/regressions/`), in the ordinary test suite.

use std::io::Read;
use std::path::Path;

use haproxide::agent::formula::{Formula, HealthReport};
use haproxide::config::Ini;
use haproxide::runtime::http::Request;
use haproxide::stats::spool::archive::{read_packed, unpack_round};
use haproxide::stats::spool::manifest::Manifest;
use haproxy::{AgentReply, LogFormat, LogLine, ReloadAnswer, ServersState, ShowInfo, ShowProc, ShowStat, StatReader};

/// A target's body.
pub type Target = fn(&[u8]);

/// Every target: its name (as cargo-fuzz knows it) and its body.
pub const TARGETS: &[(&str, Target)] = &[
    ("show_stat", show_stat),
    ("stat_reader", stat_reader),
    ("show_info", show_info),
    ("servers_state", servers_state),
    ("show_proc", show_proc),
    ("reload_answer", reload_answer),
    ("consul_health", consul_health),
    ("aws_xml", aws_xml),
    ("targets_file", targets_file),
    ("agent_reply", agent_reply),
    ("log_line", log_line),
    ("log_message", log_message),
    ("ini", ini),
    ("manifest", manifest),
    ("round_archive", round_archive),
    ("health_json", health_json),
    ("http_request", http_request),
];

/// Datagrams through Wikimedia's mapping: a message is one JSON object of
/// `hostname` and the mapping's keys, in order; a rejection leaves the
/// output as it was.
pub fn log_message(data: &[u8]) {
    use haproxide::logs::fields::{Mapping, wikimedia_fields};
    use haproxide::logs::time::{DateConversion, GoLayout};
    let (Ok(input), Ok(output)) = (
        GoLayout::new("02/Jan/2006:15:04:05.000"),
        GoLayout::new("2006-01-02T15:04:05Z"),
    ) else {
        panic!("the default layouts are valid");
    };
    let dates = DateConversion::new(input, output, jiff::tz::TimeZone::UTC, jiff::tz::TimeZone::UTC);
    let Ok(mapping) = Mapping::new("haproxykafka@0".into(), "host \"q\"".into(), wikimedia_fields(), dates) else {
        panic!("Wikimedia's mapping is valid");
    };
    let mut out = b"[".to_vec();
    for datagram in data.split_inclusive(|&byte| byte == b'\n') {
        let before = out.len();
        match mapping.encode(datagram, &mut out) {
            Ok(()) => {
                let value: serde_json::Value =
                    serde_json::from_slice(&out[before..]).unwrap_or_else(|error| panic!("a message is JSON: {error}"));
                let keys: Vec<&str> = value
                    .as_object()
                    .unwrap_or_else(|| panic!("a message is an object"))
                    .keys()
                    .map(String::as_str)
                    .collect();
                let expected: Vec<&str> = std::iter::once("hostname")
                    .chain(mapping.fields().iter().map(|field| field.json.as_str()))
                    .collect();
                assert_eq!(keys, expected);
            }
            Err(_) => assert_eq!(out.len(), before, "a rejection writes nothing"),
        }
    }
}

/// `show stat`, whole: every row, every cell, every cell as an integer.
pub fn show_stat(data: &[u8]) {
    let Ok(stat) = ShowStat::from_bytes(data.to_vec()) else {
        return;
    };
    for row in stat.rows() {
        for index in 0..row.cell_count() {
            let _ = row.cell(index);
            let _ = row.int_at(index);
        }
        let _ = (row.pxname(), row.svname(), row.object_type());
    }
}

/// A reader that hands out its bytes in the sizes the input's first bytes
/// choose, as a socket does.
struct Cuts<'a> {
    sizes: &'a [u8],
    next: usize,
    rest: &'a [u8],
}

impl Read for Cuts<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let size = self
            .sizes
            .get(self.next % self.sizes.len().max(1))
            .copied()
            .unwrap_or(255);
        self.next += 1;
        let count = usize::from(size).max(1).min(out.len()).min(self.rest.len());
        out[..count].copy_from_slice(&self.rest[..count]);
        self.rest = &self.rest[count..];
        Ok(count)
    }
}

/// `show stat`, streamed in random cuts: the rows and cells the reader
/// yields are the whole-reply parser's; and so are those of a reader that
/// splits out only some cells (bit `i` of the cut sizes chooses cell `i`),
/// every other cell absent.
pub fn stat_reader(data: &[u8]) {
    let (sizes, reply) = data.split_at(data.len().min(8));
    let mut choice = [0; 8];
    choice[..sizes.len()].copy_from_slice(sizes);
    let choice = u64::from_le_bytes(choice);
    let Some(streamed) = stream(sizes, reply, None) else {
        return;
    };
    let Ok(whole) = ShowStat::from_bytes(reply.to_vec()) else {
        panic!("the reader took a reply the parser refuses");
    };
    let parsed: Vec<Vec<Option<String>>> = whole
        .rows()
        .map(|row| (0..row.cell_count()).map(|index| owned_cell(&row, index)).collect())
        .collect();
    assert_eq!(streamed, parsed, "streamed rows differ from the whole reply's");

    let Some(chosen) = stream(sizes, reply, Some(choice)) else {
        panic!("a reader of chosen cells failed where one of all cells did not");
    };
    let header = whole.header();
    let names = ["pxname", "svname", "type"].map(|name| header.column(name));
    let is_chosen = |index: usize| (index < 64 && choice & (1 << index) != 0) || names.contains(&Some(index));
    let width = chosen.first().map_or(0, Vec::len);
    let expected: Vec<Vec<Option<String>>> = whole
        .rows()
        .map(|row| {
            (0..width)
                .map(|index| owned_cell(&row, index).filter(|_| is_chosen(index)))
                .collect()
        })
        .collect();
    assert_eq!(chosen, expected, "chosen cells differ from the whole reply's");
}

/// `reply` read by a [`StatReader`] in cuts of `sizes`, splitting out the
/// cells chosen by the bits of `choice` (all without); `None` when the
/// reader refused it.
fn stream(sizes: &[u8], reply: &[u8], choice: Option<u64>) -> Option<Vec<Vec<Option<String>>>> {
    thread_local! {
        // One read buffer for every run, as the aggregation reuses one per thread.
        static BUFFER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    let cuts = Cuts {
        sizes,
        next: 0,
        rest: reply,
    };
    let buffer = BUFFER.with(|buffer| std::mem::take(&mut *buffer.borrow_mut()));
    let mut reader = StatReader::with_buffer(cuts, buffer).ok()?;
    if let Some(choice) = choice {
        reader.only_cells((0..64).filter(|index| choice & (1 << index) != 0));
    }
    let mut rows = Vec::new();
    let read = reader.for_each_row(|row| -> Result<(), haproxy::ReadError> {
        rows.push((0..row.cell_count()).map(|index| owned_cell(row, index)).collect());
        Ok(())
    });
    BUFFER.with(|buffer| *buffer.borrow_mut() = reader.into_buffer());
    read.ok().map(|()| rows)
}

fn owned_cell(row: &haproxy::StatRow<'_>, index: usize) -> Option<String> {
    row.cell(index).map(|cell| cell.into_owned())
}

/// `show info`: every field, as text and as an integer.
pub fn show_info(data: &[u8]) {
    let Ok(info) = ShowInfo::parse(&String::from_utf8_lossy(data)) else {
        return;
    };
    for (name, value) in info.entries() {
        let _ = (info.int(name), value.as_int());
    }
}

/// `show servers state`: every row and cell.
pub fn servers_state(data: &[u8]) {
    let Ok(state) = ServersState::parse(&String::from_utf8_lossy(data)) else {
        return;
    };
    for row in state.rows() {
        for name in state.columns() {
            let _ = state.get(row, name);
        }
    }
}

/// The master CLI's `show proc`: exactly one master, and workers listed
/// under `# old workers` are the only leaving ones.
pub fn show_proc(data: &[u8]) {
    let Ok(proc) = ShowProc::parse(&String::from_utf8_lossy(data)) else {
        return;
    };
    assert_eq!(proc.master().kind, haproxy::ProcKind::Master);
    assert!(proc.workers().all(|row| !row.leaving));
    assert!(proc.old_workers().all(|row| row.leaving));
}

/// The master CLI's answer to `reload`: a success flag only when the
/// answer said one, and no `--` kept as a log line.
pub fn reload_answer(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let Ok(answer) = ReloadAnswer::parse(&text) else {
        return;
    };
    assert_eq!(answer.success.is_some(), text.contains("Success="));
    assert!(answer.startup_log.iter().all(|line| line != "--"));
}

/// AWS's Auto Scaling and EC2 XML answers: what is read of a page is what
/// the page holds (every instance with its ID, a group for every group
/// instance), and an error answer has a code.
pub fn aws_xml(data: &[u8]) {
    use haproxide::backends::sources::aws::xml;
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(page) = xml::groups_page(text) {
        assert!(
            page.instances
                .iter()
                .all(|instance| !instance.id.is_empty() && page.groups.contains(&instance.group))
        );
    }
    if let Ok(page) = xml::instances_page(text) {
        assert!(
            page.instances
                .iter()
                .all(|instance| !instance.id.is_empty() && !instance.state.is_empty())
        );
    }
    if let Some((code, _)) = xml::error(text) {
        assert!(!code.is_empty());
    }
}

/// Consul's `/v1/health/service` JSON: every instance read has an IP
/// address, and a port only when Consul gave one above 0.
pub fn consul_health(data: &[u8]) {
    let Ok(found) = haproxide::backends::sources::consul::parse_health(data) else {
        return;
    };
    assert!(found.iter().all(|item| item.port != Some(0) && item.weight.is_none()));
}

/// A backends targets file: what it names can be written back as a line
/// and read again as the same target.
pub fn targets_file(data: &[u8]) {
    use haproxide::backends::sources::file::parse;
    let path = Path::new("fuzz.targets");
    let Ok(found) = parse(path, &String::from_utf8_lossy(data)) else {
        return;
    };
    for item in found {
        let address = match item.address {
            std::net::IpAddr::V4(v4) => v4.to_string(),
            std::net::IpAddr::V6(v6) => format!("[{v6}]"),
        };
        let port = item.port.map(|port| format!(":{port}")).unwrap_or_default();
        let weight = item.weight.map(|weight| format!(" {weight}")).unwrap_or_default();
        let line = format!("{address}{port}{weight}\n");
        let again = parse(path, &line).unwrap_or_else(|error| panic!("{line:?}: {error}"));
        assert_eq!(again, [item], "{line:?}");
    }
}

/// Log datagrams, one per `\n`-ended piece (so a capture file is a seed
/// of many): what is read lies within the datagram as its format says.
pub fn log_line(data: &[u8]) {
    for datagram in data.split_inclusive(|&byte| byte == b'\n') {
        let Ok(line) = LogLine::parse(datagram) else {
            continue;
        };
        let body = datagram.strip_suffix(b"\n").unwrap_or(datagram);
        assert!(line.priority <= 191);
        assert!(body.ends_with(line.message), "the message is the datagram's end");
        let printable = |field: &[u8]| !field.is_empty() && field.iter().all(|byte| (33..=126).contains(byte));
        if line.format == LogFormat::Rfc5424 {
            for field in [line.timestamp, line.hostname, line.app_name, line.proc_id, line.msg_id]
                .into_iter()
                .flatten()
            {
                assert!(printable(field) && field != b"-", "{field:?}");
            }
        } else {
            assert!(line.structured_data.is_empty() && line.msg_id.is_none());
        }
        for element in &line.structured_data {
            for name in std::iter::once(element.id).chain(element.params.iter().map(|param| param.name)) {
                assert!(name.len() <= 32 && printable(name) && !name.iter().any(|byte| b"=]\"".contains(byte)));
            }
            for param in &element.params {
                match &param.value {
                    // A value without escapes is the datagram's own bytes…
                    std::borrow::Cow::Borrowed(value) => {
                        let range = body.as_ptr_range();
                        assert!(range.start <= value.as_ptr() && value.as_ptr_range().end <= range.end);
                    }
                    // …and undoing escapes only ever shortens one.
                    std::borrow::Cow::Owned(value) => assert!(value.len() < body.len()),
                }
            }
        }
    }
}

/// An agent-check reply: rendered and read again, it is the same reply.
pub fn agent_reply(data: &[u8]) {
    let Ok(reply) = String::from_utf8_lossy(data).parse::<AgentReply>() else {
        return;
    };
    let rendered = reply.to_string();
    let again: AgentReply = rendered
        .parse()
        .unwrap_or_else(|error| panic!("{rendered:?}, rendered from {reply:?}, does not parse: {error}"));
    assert_eq!(again, reply, "{rendered:?}");
}

/// The INI loader, with interpolation of every value every section sees.
pub fn ini(data: &[u8]) {
    let mut ini = Ini::default();
    if ini
        .read(Path::new("fuzz.conf"), &String::from_utf8_lossy(data))
        .is_err()
    {
        return;
    }
    let sections: Vec<String> = std::iter::once(haproxide::config::DEFAULT_SECTION.to_owned())
        .chain(ini.section_names().map(str::to_owned))
        .collect();
    for section in &sections {
        for key in ini.visible_keys(section) {
            if let Some(entry) = ini.lookup(section, key) {
                let _ = ini.interpolate(section, &entry.value);
            }
        }
    }
}

/// A round's manifest: written and read again, it is the same manifest.
pub fn manifest(data: &[u8]) {
    let Ok(manifest) = serde_json::from_slice::<Manifest>(data) else {
        return;
    };
    let again: Manifest = serde_json::from_str(&manifest.to_text()).unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(again, manifest);
}

/// A round shipped through Kafka: an accepted packed stream is exactly its
/// files (every byte accounted for), each a plain round file name, none
/// twice; the compressed reader never returns more than its limit.
pub fn round_archive(data: &[u8]) {
    const LIMIT: u64 = 1 << 20;
    if let Ok(files) = unpack_round(data, LIMIT) {
        let bytes: usize = files.iter().map(|(name, data)| name.len() + data.len()).sum();
        assert!(bytes as u64 <= LIMIT, "{bytes} bytes from a stream limited to {LIMIT}");
    }
    let Ok(files) = read_packed(data) else {
        return;
    };
    let framing: usize = files.iter().map(|(name, data)| 2 + name.len() + 8 + data.len()).sum();
    assert_eq!(4 + framing, data.len(), "every byte is a file's");
    let mut names: Vec<&str> = files.iter().map(|(name, _)| name.as_str()).collect();
    for name in &names {
        assert!(!name.contains('/') && !name.contains('\0') && *name != "..", "{name:?}");
        assert!(
            name.ends_with("_info") || name.ends_with("_stat") || *name == "manifest.json",
            "{name:?}"
        );
    }
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), files.len(), "a name twice");
}

/// A health endpoint's JSON: the reply the agent computes from it is one
/// HAProxy reads.
pub fn health_json(data: &[u8]) {
    let Ok(report) = HealthReport::from_json(data) else {
        return;
    };
    let reply = Formula::default().reply(&report).to_string();
    assert!(!reply.contains('\n'), "{reply:?}");
    let _: AgentReply = reply.parse().unwrap_or_else(|error| panic!("{reply:?}: {error}"));
}

/// A request head sent to a daemon's HTTP endpoint (`/metrics`): the
/// method and path are single words, the path has no query, `Accept` is
/// one line, trimmed.
pub fn http_request(data: &[u8]) {
    let head = String::from_utf8_lossy(data);
    let request = Request::parse(&head);
    for word in [request.method, request.path] {
        assert!(!word.contains(char::is_whitespace), "{word:?}");
    }
    assert!(!request.path.contains('?'), "{:?}", request.path);
    assert!(!request.accept.contains(['\r', '\n']), "{:?}", request.accept);
    assert_eq!(request.accept, request.accept.trim());
}
