//! The `graphite` sink: Graphite's plaintext protocol to `server:port`.
//!
//! One connection, owned by the sink. A round is encoded as [`Plaintext`]
//! lines (shared with `local-store`) and written as it is encoded, a block
//! of a few hundred rows a write (never a syscall per line, never the whole
//! round's text in memory), and every write must make progress within
//! `write-timeout`. A snapshot is confirmed only once
//! all of it went into a live connection: before writing, the sink checks that
//! the relay has not closed the connection.
//!
//! On any failure the connection is dropped and the sink reconnects on its
//! own, in the background, whether or not snapshots arrive: `retries + 1`
//! attempts (`-1`: no limit), each bounded by `connect-timeout`, the first at
//! once, the second `interval` seconds later and each next pause `backoff`
//! times the one before; after a failed cycle it waits `delay` seconds before
//! the next. While it is down, deliveries fail at once: `process` keeps the
//! snapshots in the spool, the durable queue, and replays them oldest first
//! when [`Sink::recovered`] says the connection is back. `queue-size` bounds
//! the lines `process` holds in memory for this sink (see [`Sink::queue_size`]).
//!
//! `protocol = udp`: datagrams of whole lines, up to 1,400 bytes each. UDP has
//! no delivery guarantee: a datagram the network or the relay loses is lost.
//! Datagrams that cannot even be sent are counted as dropped lines.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use memchr::memchr_iter;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::{Mutex, watch};

use super::plaintext::{self, Plaintext};
use super::{Delivery, Sink, Snapshot, Waiting};
use crate::config::Config;
use crate::config::declare::{self, DefaultValue, Key, Parser, Section};
use haproxy::Retries;

/// Largest UDP datagram sent: fits a 1,500-byte Ethernet MTU with headers.
const DATAGRAM: usize = 1400;

/// Transport to the relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// TCP: confirmed once written to a live connection.
    Tcp,
    /// UDP: sent, never confirmed by anyone.
    Udp,
}

impl Protocol {
    /// Its name in the configuration.
    fn name(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

/// `[graphite]`, as the sink uses it.
#[derive(Debug, Clone)]
pub struct GraphiteSettings {
    /// `server`: an IPv4 or IPv6 address or a host name.
    pub server: String,
    /// `port`.
    pub port: u16,
    /// `protocol`.
    pub protocol: Protocol,
    /// `retries`: connect attempts after the first in one cycle.
    pub retries: Retries,
    /// `interval`: the pause before the second attempt of a cycle.
    pub interval: Duration,
    /// `backoff`: what each next pause is multiplied by.
    pub backoff: f64,
    /// `connect-timeout`.
    pub connect_timeout: Duration,
    /// `write-timeout`: how long one write may make no progress.
    pub write_timeout: Duration,
    /// `delay`: the pause between failed cycles.
    pub delay: Duration,
    /// `queue-size`: lines held in memory for the sink.
    pub queue_size: usize,
}

/// `[graphite] protocol`.
const PROTOCOL: Key<Protocol> = Key::new(
    "protocol",
    Parser {
        kind: "`tcp` or `udp`",
        parse: |text| Ok([Protocol::Tcp, Protocol::Udp][declare::choice(text, &["tcp", "udp"])?]),
    },
    DefaultValue::Fallback("tcp"),
    "`udp` sends datagrams of whole lines (at most 1,400 bytes), with no delivery guarantee",
);
/// `[graphite] enabled`.
const ENABLED: Key<bool> = Key::new(
    "enabled",
    declare::BOOL,
    DefaultValue::Fallback("true"),
    "`false`: no Graphite sink (then `[local-store]` must exist)",
);
/// `[graphite] server`.
const SERVER: Key<String> = Key::new(
    "server",
    declare::TEXT,
    DefaultValue::Builtin("127.0.0.1"),
    "the relay: an IPv4 or IPv6 address or a host name",
);
/// `[graphite] port`.
const PORT: Key<u16> = Key::new("port", declare::PORT, DefaultValue::Builtin("3002"), "the relay's port");
/// `[graphite] retries`.
const RETRIES: Key<Retries> = Key::new(
    "retries",
    declare::RETRIES,
    DefaultValue::Builtin("3"),
    "connect attempts after the first in one cycle (-1: no limit)",
);
/// `[graphite] interval`.
const INTERVAL: Key<Duration> = Key::new(
    "interval",
    declare::SECONDS,
    DefaultValue::Builtin("1.8"),
    "seconds before the second connect attempt of a cycle",
);
/// `[graphite] backoff`.
const BACKOFF: Key<f64> = Key::new(
    "backoff",
    declare::POSITIVE_NUMBER,
    DefaultValue::Builtin("2"),
    "what each next pause between attempts is multiplied by",
);
/// `[graphite] connect-timeout`.
const CONNECT_TIMEOUT: Key<Duration> = Key::new(
    "connect-timeout",
    declare::POSITIVE_SECONDS,
    DefaultValue::Builtin("1.0"),
    "seconds one connect attempt may take",
);
/// `[graphite] write-timeout`.
const WRITE_TIMEOUT: Key<Duration> = Key::new(
    "write-timeout",
    declare::POSITIVE_SECONDS,
    DefaultValue::Builtin("1.0"),
    "seconds one write may make no progress before the connection is dropped",
);
/// `[graphite] delay`.
const DELAY: Key<Duration> = Key::new(
    "delay",
    declare::SECONDS,
    DefaultValue::Builtin("10"),
    "seconds between failed cycles of connect attempts",
);
/// `[graphite] queue-size`.
const QUEUE_SIZE: Key<usize> = Key::new(
    "queue-size",
    declare::COUNT,
    DefaultValue::Builtin("1000000"),
    "lines held in memory for the sink; rounds that do not fit wait in `src-dir`",
);

/// `[graphite]`: the Graphite sink, and the names its lines (and
/// local-store's) are written under ([`super::plaintext`]).
pub const SECTION: Section = Section::of(
    "graphite",
    "the Graphite sink and the metric names of Graphite lines",
    &[
        &ENABLED,
        &SERVER,
        &PORT,
        &PROTOCOL,
        &RETRIES,
        &INTERVAL,
        &BACKOFF,
        &CONNECT_TIMEOUT,
        &WRITE_TIMEOUT,
        &DELAY,
        &QUEUE_SIZE,
        &plaintext::NAMESPACE,
        &plaintext::PREFIX_HOSTNAME,
        &plaintext::FQDN,
        &plaintext::GROUP_NAMESPACE,
        &plaintext::GROUP_NAMESPACE_DOUBLE_WRITES,
    ],
);

impl GraphiteSettings {
    /// `[graphite]` of `config`; `None` when `enabled = false`.
    pub fn from_config(config: &Config) -> anyhow::Result<Option<GraphiteSettings>> {
        if !config.get(&SECTION, &ENABLED)? {
            return Ok(None);
        }
        Ok(Some(GraphiteSettings {
            server: config.get(&SECTION, &SERVER)?,
            port: config.get(&SECTION, &PORT)?,
            protocol: config.get(&SECTION, &PROTOCOL)?,
            retries: config.get(&SECTION, &RETRIES)?,
            interval: config.get(&SECTION, &INTERVAL)?,
            backoff: config.get(&SECTION, &BACKOFF)?,
            connect_timeout: config.get(&SECTION, &CONNECT_TIMEOUT)?,
            write_timeout: config.get(&SECTION, &WRITE_TIMEOUT)?,
            delay: config.get(&SECTION, &DELAY)?,
            queue_size: config.get(&SECTION, &QUEUE_SIZE)?,
        }))
    }

    /// `server:port`, with brackets around an IPv6 address.
    fn address(&self) -> String {
        if self.server.contains(':') {
            format!("[{}]:{}", self.server, self.port)
        } else {
            format!("{}:{}", self.server, self.port)
        }
    }
}

enum Connection {
    Tcp(TcpStream),
    Udp(UdpSocket),
}

/// Totals since start, reported as self-metrics.
#[derive(Default)]
struct Counters {
    lines: AtomicU64,
    bytes: AtomicU64,
    reconnects: AtomicU64,
    dropped: AtomicU64,
}

/// Where the connection stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    /// The first attempt is under way: deliveries wait for it (bounded by
    /// `connect-timeout`), so that `--once` does not fail on a race.
    Starting,
    Up,
    /// The reconnecting task is at work.
    Down,
}

struct State {
    settings: GraphiteSettings,
    encoding: Arc<Plaintext>,
    connection: Mutex<Option<Connection>>,
    /// The reconnecting task waits for [`Status::Down`].
    status: watch::Sender<Status>,
    counters: Counters,
}

/// Sends snapshots to Graphite (or any relay of its plaintext protocol).
pub struct Graphite {
    state: Arc<State>,
}

impl Graphite {
    /// A sink for `settings`, writing lines as `encoding` makes them; it
    /// connects once started ([`Sink::start`]).
    pub fn new(settings: GraphiteSettings, encoding: Arc<Plaintext>) -> Graphite {
        let state = Arc::new(State {
            settings,
            encoding,
            connection: Mutex::new(None),
            status: watch::Sender::new(Status::Starting),
            counters: Counters::default(),
        });
        Graphite { state }
    }
}

impl Sink for Graphite {
    fn name(&self) -> &'static str {
        "graphite"
    }

    /// Starts connecting, in the background, and keeps connected from then on.
    fn start(&self) {
        tokio::spawn(keep_connected(Arc::clone(&self.state)));
    }

    fn deliver(&self, snapshot: Arc<Snapshot>) -> Delivery<'_> {
        Box::pin(async move {
            let state = &self.state;
            let encoding = Arc::clone(&state.encoding);
            let _ = state
                .status
                .subscribe()
                .wait_for(|status| *status != Status::Starting)
                .await;
            let mut connection = state.connection.lock().await;
            let outcome = match connection.as_mut() {
                None => Err(anyhow!(
                    "not connected to {} (reconnecting in the background)",
                    state.settings.address()
                )),
                Some(Connection::Tcp(stream)) => {
                    stream_tcp(stream, snapshot, encoding, state.settings.write_timeout).await
                }
                Some(Connection::Udp(socket)) => send_udp(socket, snapshot, encoding, &state.counters).await,
            };
            match outcome {
                Ok((count, bytes)) => {
                    state.counters.lines.fetch_add(count, Ordering::Relaxed);
                    state.counters.bytes.fetch_add(bytes, Ordering::Relaxed);
                    Ok(())
                }
                Err(error) => {
                    if connection.take().is_some() {
                        tracing::warn!("graphite {}: connection lost: {error:#}", state.settings.address());
                    }
                    state.status.send_replace(Status::Down);
                    Err(error)
                }
            }
        })
    }

    fn recovered(&self) -> Waiting<'_> {
        let mut status = self.state.status.subscribe();
        Box::pin(async move {
            let _ = status.wait_for(|status| *status == Status::Up).await;
        })
    }

    fn queue_size(&self) -> usize {
        self.state.settings.queue_size
    }

    fn self_metrics(&self) -> Vec<(&'static str, f64)> {
        let counters = &self.state.counters;
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed) as f64;
        vec![
            ("LinesSent", read(&counters.lines)),
            ("BytesSent", read(&counters.bytes)),
            ("Reconnects", read(&counters.reconnects)),
            ("LinesDropped", read(&counters.dropped)),
        ]
    }
}

/// Connects whenever the connection is down, on its own schedule.
async fn keep_connected(state: Arc<State>) {
    let settings = &state.settings;
    let address = settings.address();
    let mut status = state.status.subscribe();
    let mut first = true;
    loop {
        if status.wait_for(|status| *status != Status::Up).await.is_err() {
            return;
        }
        let mut attempt: u32 = 0;
        let mut pause = settings.interval;
        let connection = loop {
            match connect(settings).await {
                Ok(connection) => break connection,
                Err(error) => {
                    state.status.send_if_modified(|status| {
                        let starting = *status == Status::Starting;
                        if starting {
                            *status = Status::Down;
                        }
                        starting
                    });
                    if matches!(settings.retries, Retries::Limited(retries) if attempt >= retries) {
                        tracing::error!(
                            "graphite {address}: {error:#}; {} attempt(s) failed, next try in {:.1} s",
                            attempt + 1,
                            settings.delay.as_secs_f64()
                        );
                        tokio::time::sleep(settings.delay).await;
                        attempt = 0;
                        pause = settings.interval;
                    } else {
                        tracing::debug!("graphite {address}: {error:#}; next attempt in {pause:?}");
                        tokio::time::sleep(pause).await;
                        attempt += 1;
                        pause = pause.mul_f64(settings.backoff);
                    }
                }
            }
        };
        *state.connection.lock().await = Some(connection);
        if first {
            tracing::info!("graphite {address}: connected ({})", settings.protocol.name());
        } else {
            state.counters.reconnects.fetch_add(1, Ordering::Relaxed);
            tracing::info!("graphite {address}: connected again");
        }
        first = false;
        state.status.send_replace(Status::Up);
    }
}

async fn connect(settings: &GraphiteSettings) -> anyhow::Result<Connection> {
    let address = settings.address();
    let connecting = async {
        match settings.protocol {
            Protocol::Tcp => Ok(Connection::Tcp(TcpStream::connect(&address).await?)),
            Protocol::Udp => {
                let target = tokio::net::lookup_host(&address)
                    .await?
                    .next()
                    .ok_or_else(|| std::io::Error::other("the name resolves to no address"))?;
                let local = if target.is_ipv6() { "[::]:0" } else { "0.0.0.0:0" };
                let socket = UdpSocket::bind(local).await?;
                socket.connect(target).await?;
                Ok::<_, std::io::Error>(Connection::Udp(socket))
            }
        }
    };
    tokio::time::timeout(settings.connect_timeout, connecting)
        .await
        .map_err(|_| anyhow!("connect timed out after {:?}", settings.connect_timeout))?
        .context("cannot connect")
}

/// Writes the lines of `snapshot` as they are encoded: the encoding runs on
/// a blocking thread ([`Plaintext::write_to`]) and hands its blocks over
/// (at most two waiting), which are written here one by one. When a write
/// fails, or this future is dropped, the encoding stops at its next block.
/// The lines and the bytes written.
async fn stream_tcp(
    stream: &mut TcpStream,
    snapshot: Arc<Snapshot>,
    encoding: Arc<Plaintext>,
    write_timeout: Duration,
) -> anyhow::Result<(u64, u64)> {
    // A relay that stopped has closed the connection; lines written now would
    // go nowhere, yet the writes would succeed.
    let mut probe = [0u8; 512];
    loop {
        match stream.try_read(&mut probe) {
            Ok(0) => bail!("the relay closed the connection"),
            Ok(_) => continue, // a relay has nothing to say; ignore it
            Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(error) => return Err(error).context("connection broken"),
        }
    }
    let (blocks, mut encoded) = tokio::sync::mpsc::channel(2);
    let (spare, spares) = std::sync::mpsc::channel();
    let encoder =
        tokio::task::spawn_blocking(move || encoding.write_to(&snapshot.batch, &mut Handover { blocks, spares }));
    let mut bytes = 0;
    while let Some(block) = encoded.recv().await {
        write_all(stream, &block, write_timeout).await?;
        bytes += block.len() as u64;
        let _ = spare.send(block);
    }
    let lines = encoder
        .await
        .context("the encoding task failed")?
        .context("cannot encode the round")?;
    Ok((lines as u64, bytes))
}

/// What [`Plaintext::write_to`] writes to, on its blocking thread: each
/// write is a block handed to [`stream_tcp`], in a buffer it gave back
/// when there is one.
struct Handover {
    blocks: tokio::sync::mpsc::Sender<Vec<u8>>,
    spares: std::sync::mpsc::Receiver<Vec<u8>>,
}

impl std::io::Write for Handover {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let mut block = self.spares.try_recv().unwrap_or_default();
        block.clear();
        block.extend_from_slice(bytes);
        self.blocks
            .blocking_send(block)
            .map_err(|_| std::io::Error::other("the connection's writer stopped"))?;
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Writes all of `lines`, in as few writes as the connection takes.
async fn write_all(stream: &mut TcpStream, lines: &[u8], write_timeout: Duration) -> anyhow::Result<()> {
    let mut rest = lines;
    while !rest.is_empty() {
        let written = tokio::time::timeout(write_timeout, stream.write(rest))
            .await
            .map_err(|_| anyhow!("the relay took nothing for {write_timeout:?} (write-timeout)"))?
            .context("cannot write")?;
        if written == 0 {
            bail!("the connection accepts no more data");
        }
        rest = &rest[written..];
    }
    Ok(())
}

/// Sends the lines of `snapshot` as datagrams of whole lines; the lines
/// encoded and the bytes sent.
async fn send_udp(
    socket: &UdpSocket,
    snapshot: Arc<Snapshot>,
    encoding: Arc<Plaintext>,
    counters: &Counters,
) -> anyhow::Result<(u64, u64)> {
    let (lines, count) = tokio::task::spawn_blocking(move || {
        let mut lines = Vec::new();
        encoding
            .write_to(&snapshot.batch, &mut lines)
            .map(|count| (lines, count as u64))
    })
    .await
    .context("the encoding task failed")?
    .context("cannot encode the round")?;
    let mut bytes = 0;
    for datagram in datagrams(&lines) {
        match socket.send(datagram).await {
            Ok(sent) => bytes += sent as u64,
            Err(error) => {
                let lines = memchr_iter(b'\n', datagram).count() as u64;
                counters.dropped.fetch_add(lines, Ordering::Relaxed);
                tracing::warn!("graphite (udp): {lines} line(s) not sent: {error}");
            }
        }
    }
    Ok((count, bytes))
}

/// `text` cut into pieces of whole lines of at most [`DATAGRAM`] bytes (a
/// longer line goes alone).
fn datagrams(text: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut end = 0;
        for line_end in memchr_iter(b'\n', rest) {
            if line_end + 1 > DATAGRAM && end > 0 {
                break;
            }
            end = line_end + 1;
            if end >= DATAGRAM {
                break;
            }
        }
        if end == 0 {
            end = rest.len();
        }
        let (datagram, tail) = rest.split_at(end);
        rest = tail;
        Some(datagram)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datagrams_hold_whole_lines_and_stay_under_the_limit() {
        let line = format!("{} 1 1700000000\n", "a".repeat(80));
        let text = line.repeat(40);
        let pieces: Vec<&[u8]> = datagrams(text.as_bytes()).collect();
        assert_eq!(pieces.concat(), text.as_bytes());
        assert!(
            pieces
                .iter()
                .all(|piece| piece.len() <= DATAGRAM && piece.ends_with(b"\n"))
        );
        assert_eq!(pieces[0].len(), (DATAGRAM / line.len()) * line.len());
        let long = format!("{} 1 1\nb 2 1\n", "x".repeat(2000));
        let pieces: Vec<&[u8]> = datagrams(long.as_bytes()).collect();
        assert_eq!(pieces.len(), 2, "a line longer than a datagram goes alone");
        assert_eq!(pieces[1], b"b 2 1\n");
    }
}
