//! Asking the sockets: `show stat` from each (all at once, a thread each),
//! read as it arrives into `top`'s rows with the names interned, and the
//! server actions sent to every socket. Blocking I/O with timeouts: `top`
//! waits for one refresh at a time anyway.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use haproxy::{Endpoint, ObjectType, StatReader, StatRow};

use super::model::{Level, Reading, Sample};

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

/// The reply of `endpoint` to `command`, to be read in [`Gulps`]: how
/// `top` reads a socket (and its benchmark, the bytes alone).
pub fn reply(endpoint: &Endpoint, command: &str) -> std::io::Result<impl Read + use<>> {
    Ok(Gulps {
        reply: ask(endpoint, command)?,
        wait: false,
    })
}

/// A reply read in large gulps. HAProxy writes a reply in pieces of its
/// buffer's size (16 kB), and a reader woken for each piece spends more
/// CPU on the wake-ups than on the bytes; so after a read that found fewer
/// than [`GULP`] bytes waiting, the next one first gives HAProxy
/// [`GULP_WAIT`] to fill the socket's buffer (about 200 kB by default).
struct Gulps<R> {
    reply: R,
    wait: bool,
}

/// A read of fewer bytes than this waits before the next.
const GULP: usize = 64 * 1024;

/// How long. A HAProxy sharing two cores with three others writes about
/// 12 kB a millisecond (measured: reads of 12 to 37 kB after this wait);
/// alone, it fills the socket's buffer in about this time.
const GULP_WAIT: Duration = Duration::from_millis(2);

impl<R: Read> Read for Gulps<R> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        if self.wait {
            std::thread::sleep(GULP_WAIT);
        }
        let read = self.reply.read(buffer)?;
        self.wait = read > 0 && read < GULP.min(buffer.len());
        Ok(read)
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

    /// The indexes of every column read.
    fn indexes(&self) -> impl Iterator<Item = usize> {
        let single = [
            self.status,
            self.weight,
            self.current,
            self.check,
            self.last_check,
            self.last_change,
            self.agent,
            self.pid,
        ];
        single.into_iter().chain(self.counters).chain(self.errors).flatten()
    }
}

/// What one row states, `None` for a listener's.
fn reading<'a>(cells: &StatRow<'a>, columns: &Columns) -> Option<Reading<'a>> {
    let level = match cells.object_type() {
        ObjectType::Frontend => Level::Frontends,
        ObjectType::Backend => Level::Backends,
        ObjectType::Server => Level::Servers,
        ObjectType::Listener => return None,
    };
    let int = |index: Option<usize>| index.and_then(|index| cells.int_at(index).ok().flatten());
    let small = |index: Option<usize>| int(index).and_then(|value| u32::try_from(value).ok());
    let count = |index: Option<usize>| u64::try_from(int(index).unwrap_or(0)).unwrap_or(0);
    let cell = |index: Option<usize>| index.and_then(|index| cells.cell(index)).unwrap_or_default();
    // Element by element: `[T; N]::map` costs a tenth of the whole read.
    let [sessions, requests, bytes_in, bytes_out, server_errors, request_errors] = columns.counters;
    let [connection_errors, response_errors] = columns.errors;
    Some(Reading {
        level,
        proxy: cells.pxname(),
        name: cells.svname(),
        status: cell(columns.status),
        weight: small(columns.weight),
        current: small(columns.current).unwrap_or(0),
        counters: [
            count(sessions),
            count(requests),
            count(bytes_in),
            count(bytes_out),
            count(server_errors),
            count(request_errors) + count(connection_errors) + count(response_errors),
        ],
        health: [cell(columns.check), cell(columns.last_check), cell(columns.agent)],
        last_change: small(columns.last_change),
        pid: small(columns.pid),
    })
}

/// `show stat` of `endpoint`, read as it arrives into `previous` (its
/// rows the last time, if any); `buffer` is the read buffer to use,
/// handed back for the next refresh.
pub fn sample(endpoint: &Endpoint, previous: Option<Sample>, buffer: Vec<u8>) -> (Result<Sample, String>, Vec<u8>) {
    let at = Instant::now();
    let mut sample = previous.unwrap_or_else(|| Sample::new(at));
    match reply(endpoint, "show stat") {
        Ok(stream) => {
            let (read, buffer) = read_rows(stream, &mut sample, at, buffer);
            (read.map(|()| sample), buffer)
        }
        Err(error) => (Err(error.to_string()), buffer),
    }
}

/// Reads the rows of a `show stat` reply, asked for at `at`, from `reply`
/// into `sample`; the read buffer back. After an error, `sample` holds
/// part of the reply: it is to be dropped.
pub fn read_rows(reply: impl Read, sample: &mut Sample, at: Instant, buffer: Vec<u8>) -> (Result<(), String>, Vec<u8>) {
    let mut reader = match StatReader::with_buffer(reply, buffer) {
        Ok(reader) => reader,
        Err(error) => return (Err(format!("show stat: {error}")), Vec::new()),
    };
    let columns = Columns::of(reader.header());
    reader.only_cells(columns.indexes());
    let mut update = sample.update(at);
    let read = reader.for_each_row(|cells| {
        if let Some(reading) = reading(cells, &columns) {
            update.push(&reading);
        }
        Ok::<(), haproxy::ReadError>(())
    });
    update.finish();
    let whole = reader.ended_with_line_end();
    let buffer = reader.into_buffer();
    let read = match read {
        Ok(()) if whole => Ok(()),
        Ok(()) => Err("show stat: the reply ended early".to_owned()),
        Err(error) => Err(format!("show stat: {error}")),
    };
    (read, buffer)
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
    use std::sync::Arc;

    use super::*;

    const REPLY: &[u8] = include_bytes!("../../../../fixtures/haproxy-2.6.12-debian/show_stat.out");

    /// `reply` read into `previous` (or into no rows), asked for now.
    fn read(reply: &[u8], previous: Option<Sample>) -> Result<Sample, String> {
        let at = Instant::now();
        let mut sample = previous.unwrap_or_else(|| Sample::new(at));
        read_rows(reply, &mut sample, at, Vec::new()).0.map(|()| sample)
    }

    #[test]
    fn a_reply_of_haproxy_2_6_gives_its_rows_listeners_left_out() {
        let rows = read(REPLY, None).unwrap().rows;
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
        let first = read(REPLY, None).unwrap();
        let before: Vec<_> = first
            .rows
            .iter()
            .map(|row| (Arc::clone(&row.proxy), Arc::clone(&row.name)))
            .collect();
        let text = String::from_utf8_lossy(REPLY).replace("be_app,s1,", "be_app,s1x,");
        // s1x stands where s1 stood: it and the rows after it are made anew.
        let second = read(text.as_bytes(), Some(first)).unwrap();
        for ((proxy, name), now) in before.iter().zip(&second.rows) {
            assert!(Arc::ptr_eq(proxy, &now.proxy), "{}", now.name);
            assert_eq!(Arc::ptr_eq(name, &now.name), &*now.name != "s1x", "{}", now.name);
        }
    }

    #[test]
    fn a_cut_reply_is_an_error_not_fewer_rows() {
        let cut = &REPLY[..REPLY.len() - 10];
        assert_eq!(read(cut, None).unwrap_err(), "show stat: the reply ended early");
    }
}
