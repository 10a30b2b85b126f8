//! Asking the sockets: `show stat` from each (all at once, a thread each),
//! read as it arrives into `top`'s rows with the names interned, and the
//! server actions sent to every socket. Blocking I/O with timeouts: `top`
//! waits for one refresh at a time anyway.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use haproxy::{Endpoint, ObjectType, StatReader, StatRow};
use rustc_hash::FxHashSet;

use super::model::{Health, Level, Row, Sample};

/// How long a socket has to accept, and then between two reads.
pub const TIMEOUT: Duration = Duration::from_secs(2);

/// A connection to `endpoint` with [`TIMEOUT`]s, `command` sent.
fn ask(endpoint: &Endpoint, command: &str) -> std::io::Result<Box<dyn ReadWrite>> {
    let mut stream: Box<dyn ReadWrite> = match endpoint {
        Endpoint::Unix(path) => {
            let stream = UnixStream::connect(path)?;
            stream.set_read_timeout(Some(TIMEOUT))?;
            stream.set_write_timeout(Some(TIMEOUT))?;
            Box::new(stream)
        }
        Endpoint::Tcp { host, port } => {
            let address = std::net::ToSocketAddrs::to_socket_addrs(&(host.as_str(), *port))?
                .next()
                .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no address"))?;
            let stream = TcpStream::connect_timeout(&address, TIMEOUT)?;
            stream.set_read_timeout(Some(TIMEOUT))?;
            stream.set_write_timeout(Some(TIMEOUT))?;
            Box::new(stream)
        }
    };
    stream.write_all(format!("{command}\n").as_bytes())?;
    Ok(stream)
}

/// A connected stream of either kind.
trait ReadWrite: Read + Write + Send {}

impl<S: Read + Write + Send> ReadWrite for S {}

/// The texts of one socket's rows (names, statuses, check results), each
/// stored once across rows and refreshes. HAProxy answers in the same order
/// every time, so the same cell of the row at the same position in the
/// previous reply is tried first: most cells cost a comparison, not a hash.
#[derive(Debug, Default)]
pub struct Names(FxHashSet<Arc<str>>);

/// How many text cells a row has: proxy, name, status, check, last check, agent.
const TEXTS: usize = 6;

impl Names {
    /// Forgets every text once far more are stored than `rows` rows use:
    /// texts that come and go (check outputs) must not pile up in a `top`
    /// left running for days.
    fn forget_beyond(&mut self, rows: usize) {
        if self.0.len() > 2 * rows * TEXTS + 1024 {
            self.0.clear();
        }
    }

    /// The stored `text`; `before` is the same cell's the previous time.
    fn get(&mut self, text: &str, before: Option<&Arc<str>>) -> Arc<str> {
        if let Some(before) = before.filter(|before| ***before == *text) {
            return Arc::clone(before);
        }
        if let Some(known) = self.0.get(text) {
            return Arc::clone(known);
        }
        let stored: Arc<str> = Arc::from(text);
        self.0.insert(Arc::clone(&stored));
        stored
    }
}

/// The columns `top` reads, by index in the reply's header.
struct Columns {
    status: Option<usize>,
    weight: Option<usize>,
    current: Option<usize>,
    counters: [Option<usize>; 6],
    errors: [Option<usize>; 2],
    check: Option<usize>,
    last_check: Option<usize>,
    last_change: Option<usize>,
    agent: Option<usize>,
    pid: Option<usize>,
}

impl Columns {
    fn of(header: &haproxy::Header) -> Columns {
        let at = |name: &str| header.column(name);
        Columns {
            status: at("status"),
            weight: at("weight"),
            current: at("scur"),
            counters: [
                at("stot"),
                at("req_tot"),
                at("bin"),
                at("bout"),
                at("hrsp_5xx"),
                at("ereq"),
            ],
            errors: [at("econ"), at("eresp")],
            check: at("check_status"),
            last_check: at("last_chk"),
            last_change: at("lastchg"),
            agent: at("agent_status"),
            pid: at("pid"),
        }
    }

    /// One past the last column read.
    fn end(&self) -> usize {
        let all = [
            self.status,
            self.weight,
            self.current,
            self.check,
            self.last_check,
            self.last_change,
            self.agent,
            self.pid,
        ];
        all.into_iter()
            .chain(self.counters)
            .chain(self.errors)
            .flatten()
            .max()
            .map_or(1, |last| last + 1)
    }
}

/// Reads one row; `before` is the row at its position in the previous reply.
fn row(cells: &StatRow<'_>, columns: &Columns, names: &mut Names, before: Option<&Row>) -> Option<Row> {
    let level = match cells.object_type() {
        ObjectType::Frontend => Level::Frontends,
        ObjectType::Backend => Level::Backends,
        ObjectType::Server => Level::Servers,
        ObjectType::Listener => return None,
    };
    let int = |index: Option<usize>| index.and_then(|index| cells.int_at(index).ok().flatten());
    let small = |index: Option<usize>| int(index).and_then(|value| u32::try_from(value).ok());
    let count = |index: Option<usize>| u64::try_from(int(index).unwrap_or(0)).unwrap_or(0);
    let proxy = names.get(&cells.pxname(), before.map(|row| &row.proxy));
    let name = names.get(&cells.svname(), before.map(|row| &row.name));
    let cell = |index: Option<usize>| index.and_then(|index| cells.cell(index)).unwrap_or_default();
    let status = names.get(&cell(columns.status), before.map(|row| &row.status));
    let texts = [columns.check, columns.last_check, columns.agent].map(cell);
    let health = match before.map(|row| &row.health) {
        Some(same) if *same.check == *texts[0] && *same.last_check == *texts[1] && *same.agent == *texts[2] => {
            Arc::clone(same)
        }
        before => Arc::new(Health {
            check: names.get(&texts[0], before.map(|health| &health.check)),
            last_check: names.get(&texts[1], before.map(|health| &health.last_check)),
            agent: names.get(&texts[2], before.map(|health| &health.agent)),
        }),
    };
    let mut counters = columns.counters.map(count);
    counters[5] += columns.errors.map(count).iter().sum::<u64>();
    Some(Row {
        level,
        proxy,
        name,
        status,
        weight: small(columns.weight),
        current: small(columns.current).unwrap_or(0),
        counters,
        health,
        last_change: small(columns.last_change),
        pid: small(columns.pid),
        rates: [None; 6],
    })
}

/// `show stat` of `endpoint`, read as it arrives; `previous` are its rows
/// the last time, `buffer` the read buffer to use, handed back for the next
/// refresh.
pub fn sample(
    endpoint: &Endpoint,
    names: &mut Names,
    previous: &[Row],
    buffer: Vec<u8>,
) -> (Result<Sample, String>, Vec<u8>) {
    match ask(endpoint, "show stat") {
        Ok(stream) => {
            let (rows, buffer) = read_rows(stream, names, previous, buffer);
            (
                rows.map(|rows| Sample {
                    at: Instant::now(),
                    rows,
                }),
                buffer,
            )
        }
        Err(error) => (Err(error.to_string()), buffer),
    }
}

/// The rows of a `show stat` reply read from `reply` (`previous`: the
/// rows of the source's previous reply); the read buffer back.
pub fn read_rows(
    reply: impl Read,
    names: &mut Names,
    previous: &[Row],
    buffer: Vec<u8>,
) -> (Result<Vec<Row>, String>, Vec<u8>) {
    let mut reader = match StatReader::with_buffer(reply, buffer) {
        Ok(reader) => reader,
        Err(error) => return (Err(format!("show stat: {error}")), Vec::new()),
    };
    let columns = Columns::of(reader.header());
    reader.only_first_cells(columns.end());
    names.forget_beyond(previous.len());
    let mut rows = Vec::with_capacity(previous.len());
    let read = reader.for_each_row(|cells| {
        rows.extend(row(cells, &columns, names, previous.get(rows.len())));
        Ok::<(), haproxy::ReadError>(())
    });
    let whole = reader.ended_with_line_end();
    let buffer = reader.into_buffer();
    let rows = match read {
        Ok(()) if whole => Ok(rows),
        Ok(()) => Err("show stat: the reply ended early".to_owned()),
        Err(error) => Err(format!("show stat: {error}")),
    };
    (rows, buffer)
}

/// Sends `command` to `endpoint`; its reply, trimmed (HAProxy answers a
/// successful `set server` with an empty line).
pub fn command(endpoint: &Endpoint, command: &str) -> Result<String, String> {
    let mut stream = ask(endpoint, command).map_err(|error| error.to_string())?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply).map_err(|error| error.to_string())?;
    Ok(reply.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_of_haproxy_2_6_gives_its_rows_listeners_left_out() {
        let reply = include_bytes!("../../../../fixtures/haproxy-2.6.12-debian/show_stat.out");
        let mut names = Names::default();
        let (rows, _) = read_rows(&reply[..], &mut names, &[], Vec::new());
        let rows = rows.unwrap();
        assert_eq!(rows.len(), 17);
        let s2 = rows.iter().find(|row| &*row.name == "s2").unwrap();
        assert_eq!(
            (s2.level, &*s2.proxy, &*s2.status, s2.weight),
            (Level::Servers, "be_app", "DRAIN", Some(1))
        );
        let fe_main = &rows[0];
        assert_eq!(
            (fe_main.level, fe_main.current, fe_main.pid),
            (Level::Frontends, 0, Some(1))
        );
        // stot, req_tot, bin, bout, hrsp_5xx, ereq + econ + eresp.
        assert_eq!(fe_main.counters, [81, 81, 6802, 27497, 1, 0]);
        // Every name is stored once, whichever rows share it.
        let be_app: Vec<_> = rows.iter().filter(|row| &*row.proxy == "be_app").collect();
        assert!(
            be_app
                .windows(2)
                .all(|pair| Arc::ptr_eq(&pair[0].proxy, &pair[1].proxy))
        );
    }

    #[test]
    fn the_next_reply_shares_every_unchanged_text_with_the_previous_one() {
        let reply = include_bytes!("../../../../fixtures/haproxy-2.6.12-debian/show_stat.out");
        let mut names = Names::default();
        let (first, _) = read_rows(&reply[..], &mut names, &[], Vec::new());
        let first = first.unwrap();
        let text = String::from_utf8_lossy(reply).replace("be_app,s1,", "be_app,s1x,");
        let (second, _) = read_rows(text.as_bytes(), &mut Names::default(), &first, Vec::new());
        let second = second.unwrap();
        for (before, now) in first.iter().zip(&second) {
            assert!(Arc::ptr_eq(&before.health, &now.health), "{}", now.name);
            assert!(Arc::ptr_eq(&before.proxy, &now.proxy), "{}", now.name);
            assert_eq!(
                Arc::ptr_eq(&before.name, &now.name),
                &*now.name != "s1x",
                "{}",
                now.name
            );
        }
    }

    #[test]
    fn a_cut_reply_is_an_error_not_fewer_rows() {
        let reply = include_bytes!("../../../../fixtures/haproxy-2.6.12-debian/show_stat.out");
        let cut = &reply[..reply.len() - 10];
        let (rows, _) = read_rows(cut, &mut Names::default(), &[], Vec::new());
        assert_eq!(rows.unwrap_err(), "show stat: the reply ended early");
    }
}
