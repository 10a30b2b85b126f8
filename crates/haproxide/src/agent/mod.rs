//! `haproxide agent`: an HAProxy agent-check server, the successor of
//! Datawave's HAProxy agent.
//!
//! HAProxy connects (`server … agent-check agent-port P`), may send its
//! `agent-send` string, and reads one line: a weight and a state computed
//! from the health of the service behind the server ([`formula`]), from an
//! HTTP health endpoint or from this host ([`source`]). With `interval > 0`
//! a task per health source polls it and every connection is answered from
//! the last result at once; with `interval = 0` each connection polls first.
//! `[agent-urls]` maps `agent-send` strings to health URLs of their own, so
//! one agent answers for several backends. Under systemd it is ready once
//! every poller has polled, and pings the watchdog while they keep polling.
//! SIGTERM/SIGHUP/SIGINT: stop accepting, finish the replies under way (for
//! at most [`STOP_GRACE`]), exit 0.

pub mod datawave;
pub mod formula;
pub mod health;

use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsFd;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use anyhow::Context;
use haproxy::{AgentReply, Health, Retries};
use std::io::{Read, Write};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::Semaphore;

use crate::config::Config;
use crate::config::declare::{self, DefaultValue, Entries, Key, Parser, Section};
use crate::runtime::notify::{Heartbeat, Supervisor};
use crate::runtime::shutdown::{Shutdown, within_grace};
use crate::runtime::{ProblemChange, note_problem, unpoisoned};
use formula::Formula;
use health::{HealthSource, HttpHealth, Outcome};

/// How long replies under way may take after SIGTERM.
pub const STOP_GRACE: Duration = Duration::from_secs(5);

/// How much longer than two intervals and its longest poll a poller may be
/// silent before it is called wedged (and the watchdog no longer pinged).
const POLL_SLACK: Duration = Duration::from_secs(10);

/// Connections accepted per wake-up before signals get a look in.
const ACCEPT_BATCH: usize = 256;

/// Connections the kernel may hold for the agent to accept (capped by
/// `net.core.somaxconn`).
const BACKLOG: u32 = 4096;

/// How long writing a reply may take.
const WRITE_TIMEOUT: Duration = Duration::from_secs(2);

/// `[agent]` and `[agent-urls]`.
#[derive(Debug)]
pub struct Settings {
    address: SocketAddr,
    /// The default source first, then one per `[agent-urls]` key.
    sources: Vec<(Option<String>, HealthSource)>,
    interval: Duration,
    formula: Formula,
    staleness: Option<Duration>,
    staleness_reply: AgentReply,
    down_reply: AgentReply,
    unavailable_reply: AgentReply,
    timeout_reply: Option<AgentReply>,
    error_reply: Option<AgentReply>,
    read_timeout: Duration,
    max_connections: usize,
}

/// `[agent] bind`.
const BIND: Key<IpAddr> = Key::new(
    "bind",
    declare::IP_ADDRESS,
    DefaultValue::Fallback("0.0.0.0"),
    "the address to listen on (IPv4 or IPv6)",
);
/// `[agent] port`.
const PORT: Key<u16> = Key::new(
    "port",
    declare::PORT,
    DefaultValue::Fallback("5555"),
    "the port to listen on",
);
/// The address the agent `[agent]` configures listens on: `bind` and `port`.
pub fn configured_address(config: &Config) -> Result<std::net::SocketAddr, crate::config::ConfigError> {
    Ok(std::net::SocketAddr::new(
        config.get(&SECTION, &BIND)?,
        config.get(&SECTION, &PORT)?,
    ))
}

/// Where the health comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SourceKind {
    Http,
    Local,
}
/// `[agent] source`.
const SOURCE: Key<SourceKind> = Key::new(
    "source",
    Parser {
        kind: "`http` or `local`",
        parse: |text| Ok([SourceKind::Http, SourceKind::Local][declare::choice(text, &["http", "local"])?]),
    },
    DefaultValue::Fallback("http"),
    "`http`: poll `health-url`; `local`: this host (`/proc/loadavg` per CPU, swap from `/proc/meminfo`, status `ready`)",
);
/// `[agent] health-url`.
const HEALTH_URL: Key<String> = Key::new(
    "health-url",
    declare::HTTP_URL,
    DefaultValue::Fallback("http://localhost:8080/DataWave/Common/Health/health"),
    "JSON with `Status`, `ConnectionUsagePercent`, `SystemLoad`, `SwapBytesUsed`",
);
/// `[agent] interval`.
const INTERVAL: Key<Duration> = Key::new(
    "interval",
    declare::SECONDS,
    DefaultValue::Builtin("1"),
    "seconds between polls (after each poll); `0` polls on each connection",
);
/// `[agent] timeout`.
const TIMEOUT: Key<Duration> = Key::new(
    "timeout",
    declare::POSITIVE_SECONDS,
    DefaultValue::Builtin("10"),
    "seconds one HTTP attempt may take",
);
/// `[agent] retries`.
const RETRIES: Key<Retries> = Key::new(
    "retries",
    declare::RETRIES,
    DefaultValue::Builtin("3"),
    "HTTP attempts after the first, on refused connections and timeouts (-1: no limit)",
);
/// `[agent] connection-usage-reduction`.
const CONNECTION_USAGE_REDUCTION: Key<f64> = Key::new(
    "connection-usage-reduction",
    declare::FRACTION,
    DefaultValue::Fallback("0.7"),
    "the weight lost at 100% connection usage",
);
/// `[agent] os-load-reduction`.
const OS_LOAD_REDUCTION: Key<f64> = Key::new(
    "os-load-reduction",
    declare::FRACTION,
    DefaultValue::Fallback("0.4"),
    "the weight lost per unit of `SystemLoad`",
);
/// `[agent] swap-usage-reduction`.
const SWAP_USAGE_REDUCTION: Key<f64> = Key::new(
    "swap-usage-reduction",
    declare::FRACTION,
    DefaultValue::Fallback("0.3"),
    "the weight lost while any swap is in use",
);
/// `[agent] clamp-negative-load`.
const CLAMP_NEGATIVE_LOAD: Key<bool> = Key::new(
    "clamp-negative-load",
    declare::BOOL,
    DefaultValue::Fallback("false"),
    "a negative `SystemLoad` (unknown) counts as 0, not as a 40% bonus",
);
/// `[agent] maxconn`.
const MAXCONN: Key<u32> = Key::new(
    "maxconn",
    declare::COUNT_FROM_0,
    DefaultValue::Unset("none"),
    "add `maxconn:N` to computed replies",
);
/// `[agent] absolute-weight`.
const ABSOLUTE_WEIGHT: Key<u32> = Key::new(
    "absolute-weight",
    declare::COUNT_FROM_1,
    DefaultValue::Unset("a percentage"),
    "reply `weight:trunc(w × N)` (HAProxy ≥ 3.1) instead of a percentage",
);
/// `[agent] staleness-interval`.
const STALENESS_INTERVAL: Key<Duration> = Key::new(
    "staleness-interval",
    declare::SECONDS,
    DefaultValue::Fallback("0"),
    "reply `staleness-response` once no poll has set the reply for this long (`0`: never)",
);
/// `[agent] staleness-response`.
const STALENESS_RESPONSE: Key<AgentReply> = Key::new(
    "staleness-response",
    declare::AGENT_REPLY,
    DefaultValue::Unset("an empty line"),
    "the reply once the last poll is older than `staleness-interval`",
);
/// `[agent] down-response`.
const DOWN_RESPONSE: Key<AgentReply> = Key::new(
    "down-response",
    declare::AGENT_REPLY,
    DefaultValue::Fallback("down"),
    "the reply when nothing listens at the health URL",
);
/// `[agent] unavailable-response`.
const UNAVAILABLE_RESPONSE: Key<AgentReply> = Key::new(
    "unavailable-response",
    declare::AGENT_REPLY,
    DefaultValue::Fallback("0% drain"),
    "the reply to HTTP 503",
);
/// `[agent] unavailable-up`.
const UNAVAILABLE_UP: Key<bool> = Key::new(
    "unavailable-up",
    declare::BOOL,
    DefaultValue::Fallback("false"),
    "add `up` to `unavailable-response`",
);
/// `[agent] timeout-response`.
const TIMEOUT_RESPONSE: Key<AgentReply> = Key::new(
    "timeout-response",
    declare::AGENT_REPLY,
    DefaultValue::Unset("keep the last reply"),
    "the reply when a poll times out; unset, the last reply stands (`unavailable-response` before any)",
);
/// `[agent] error-response`.
const ERROR_RESPONSE: Key<AgentReply> = Key::new(
    "error-response",
    declare::AGENT_REPLY,
    DefaultValue::Unset("keep the last reply"),
    "the reply to other HTTP statuses and bodies that are not health JSON; unset, as `timeout-response`",
);
/// `[agent] read-timeout`.
const READ_TIMEOUT: Key<Duration> = Key::new(
    "read-timeout",
    declare::POSITIVE_SECONDS,
    DefaultValue::Fallback("0.1"),
    "seconds to wait for HAProxy's `agent-send` when `[agent-urls]` needs it",
);
/// `[agent] max-connections`.
const MAX_CONNECTIONS: Key<usize> = Key::new(
    "max-connections",
    declare::COUNT,
    DefaultValue::Fallback("10000"),
    "connections answered at once",
);

/// `[agent]`.
pub const SECTION: Section = Section::of(
    "agent",
    "the agent-check server",
    &[
        &BIND,
        &PORT,
        &SOURCE,
        &HEALTH_URL,
        &INTERVAL,
        &TIMEOUT,
        &RETRIES,
        &CONNECTION_USAGE_REDUCTION,
        &OS_LOAD_REDUCTION,
        &SWAP_USAGE_REDUCTION,
        &CLAMP_NEGATIVE_LOAD,
        &MAXCONN,
        &ABSOLUTE_WEIGHT,
        &DOWN_RESPONSE,
        &UNAVAILABLE_RESPONSE,
        &UNAVAILABLE_UP,
        &TIMEOUT_RESPONSE,
        &ERROR_RESPONSE,
        &STALENESS_INTERVAL,
        &STALENESS_RESPONSE,
        &READ_TIMEOUT,
        &MAX_CONNECTIONS,
    ],
);

/// `[agent-urls]`: health URLs by what HAProxy sends.
pub const URLS: Section = Section::of_entries(
    "agent-urls",
    "health URLs of their own for what HAProxy sends (`agent-send`)",
    Entries {
        doc: "what HAProxy sends (`agent-send \"be_api\\n\"`, matched without case) = the `http://` health URL for it",
        check_key: |_| Ok(()),
        check: |url| (declare::HTTP_URL.parse)(url).map(drop),
    },
);

impl Settings {
    /// Reads `[agent]` and `[agent-urls]` (checked with the agent's scope).
    pub fn from_config(config: &Config) -> anyhow::Result<Settings> {
        let get_reply = |key: &Key<AgentReply>| config.get_opt(&SECTION, key);
        let timeout = config.get(&SECTION, &TIMEOUT)?;
        let retries = match config.get(&SECTION, &RETRIES)? {
            Retries::Limited(count) => count,
            Retries::Forever => u32::MAX,
        };
        let http = |url: &str| -> anyhow::Result<HealthSource> {
            Ok(HealthSource::Http(HttpHealth::new(url, timeout, retries)?))
        };
        let default_source = match config.get(&SECTION, &SOURCE)? {
            SourceKind::Http => http(&config.get(&SECTION, &HEALTH_URL)?)?,
            SourceKind::Local => HealthSource::Local,
        };
        let mut sources = vec![(None, default_source)];
        if let Some(section) = config.ini().section(URLS.name) {
            for entry in &section.entries {
                let url = config
                    .typed(URLS.name, &entry.key, declare::HTTP_URL.parse)?
                    .unwrap_or_default();
                let source = http(&url).with_context(|| format!("[{}] {}", URLS.name, entry.key))?;
                sources.push((Some(entry.key.to_ascii_lowercase()), source));
            }
        }
        let mut unavailable_reply = config.get(&SECTION, &UNAVAILABLE_RESPONSE)?;
        if config.get(&SECTION, &UNAVAILABLE_UP)? {
            unavailable_reply.health = Some(Health::Up);
        }
        let staleness = config.get(&SECTION, &STALENESS_INTERVAL)?;
        Ok(Settings {
            address: SocketAddr::new(config.get(&SECTION, &BIND)?, config.get(&SECTION, &PORT)?),
            sources,
            interval: config.get(&SECTION, &INTERVAL)?,
            formula: Formula {
                connection_usage_reduction: config.get(&SECTION, &CONNECTION_USAGE_REDUCTION)?,
                os_load_reduction: config.get(&SECTION, &OS_LOAD_REDUCTION)?,
                swap_usage_reduction: config.get(&SECTION, &SWAP_USAGE_REDUCTION)?,
                clamp_negative_load: config.get(&SECTION, &CLAMP_NEGATIVE_LOAD)?,
                maxconn: config.get_opt(&SECTION, &MAXCONN)?,
                absolute_weight: config.get_opt(&SECTION, &ABSOLUTE_WEIGHT)?,
            },
            staleness: (!staleness.is_zero()).then_some(staleness),
            staleness_reply: get_reply(&STALENESS_RESPONSE)?.unwrap_or_default(),
            down_reply: config.get(&SECTION, &DOWN_RESPONSE)?,
            unavailable_reply,
            timeout_reply: get_reply(&TIMEOUT_RESPONSE)?,
            error_reply: get_reply(&ERROR_RESPONSE)?,
            read_timeout: config.get(&SECTION, &READ_TIMEOUT)?,
            max_connections: config.get(&SECTION, &MAX_CONNECTIONS)?,
        })
    }
}

/// The last answer of one health source.
struct Answer {
    /// The reply line, with its `\n`.
    line: Arc<str>,
    /// When a poll last set it.
    at: Instant,
    /// Whether a poll has set it yet.
    set: bool,
}

/// One health source and its last answer.
struct Route {
    /// The `agent-send` string it answers (lower case); `None` for the default.
    key: Option<String>,
    source: HealthSource,
    answer: RwLock<Answer>,
    /// What is wrong with the source now (`None`: fine), logged when it changes.
    problem: Mutex<Option<String>>,
    /// Whether the reply being stale was logged, since the last fresh answer.
    stale_logged: AtomicBool,
}

/// The agent: settings and the state of every health source.
pub struct Agent {
    settings: Settings,
    routes: Vec<Route>,
}

impl Agent {
    /// An agent with no answer yet (it replies an empty line until a poll).
    pub fn new(mut settings: Settings) -> Agent {
        let now = Instant::now();
        let routes = std::mem::take(&mut settings.sources)
            .into_iter()
            .map(|(key, source)| Route {
                key,
                source,
                answer: RwLock::new(Answer {
                    line: Arc::from("\n"),
                    at: now,
                    set: false,
                }),
                problem: Mutex::new(None),
                stale_logged: AtomicBool::new(false),
            })
            .collect();
        Agent { settings, routes }
    }

    /// Records what a poll of route `index` found. A problem is logged when
    /// it starts or changes, and its end once, not at every poll.
    fn apply(&self, index: usize, outcome: Outcome) {
        let route = &self.routes[index];
        let what = route.source.describe();
        // Without a reply of their own, time-outs and errors keep the last
        // reply; before any, they give `unavailable-response`.
        let keep_last = |configured: &Option<AgentReply>| -> Option<AgentReply> {
            match configured {
                Some(reply) => Some(reply.clone()),
                None if unpoisoned(route.answer.read(), "an agent reply").set => None,
                None => Some(self.settings.unavailable_reply.clone()),
            }
        };
        let (reply, problem) = match outcome {
            Outcome::Report(report) => (Some(self.settings.formula.reply(&report)), None),
            Outcome::Unavailable => (
                Some(self.settings.unavailable_reply.clone()),
                Some("HTTP 503".to_owned()),
            ),
            Outcome::Down(reason) => (Some(self.settings.down_reply.clone()), Some(format!("down: {reason}"))),
            Outcome::Timeout(reason) => (keep_last(&self.settings.timeout_reply), Some(reason)),
            Outcome::Failed(reason) => (keep_last(&self.settings.error_reply), Some(reason)),
        };
        {
            let mut last = unpoisoned(route.problem.lock(), "an agent source's state");
            match note_problem(&mut last, problem) {
                ProblemChange::Began => {
                    let kept = if reply.is_none() { "; the last reply stands" } else { "" };
                    tracing::warn!("{what}: {}{kept}", last.as_deref().unwrap_or_default());
                }
                ProblemChange::Ended => tracing::info!("{what}: answering again"),
                ProblemChange::Unchanged => {}
            }
        }
        let Some(reply) = reply else { return };
        let line: Arc<str> = Arc::from(format!("{reply}\n"));
        let mut answer = unpoisoned(route.answer.write(), "an agent reply");
        if answer.line != line {
            tracing::info!("{what}: replying {:?}", line.trim_end());
        }
        *answer = Answer {
            line,
            at: Instant::now(),
            set: true,
        };
        route.stale_logged.store(false, Ordering::Relaxed);
    }

    /// The reply for route `index` now.
    async fn reply(&self, index: usize) -> Arc<str> {
        if self.settings.interval.is_zero() {
            let outcome = self.routes[index].source.poll().await;
            self.apply(index, outcome);
        }
        self.cached(index)
    }

    /// Whether every connection gets the default route's cached reply: one
    /// health source, polled in the background.
    fn answers_from_cache(&self) -> bool {
        self.routes.len() == 1 && !self.settings.interval.is_zero()
    }

    /// The last reply of route `index`, or the staleness-response when it is too old.
    fn cached(&self, index: usize) -> Arc<str> {
        let answer = unpoisoned(self.routes[index].answer.read(), "an agent reply");
        match self.settings.staleness {
            Some(limit) if answer.at.elapsed() > limit => {
                if !self.routes[index].stale_logged.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        "{}: no fresh answer for {:.1} s; replying the staleness-response",
                        self.routes[index].source.describe(),
                        answer.at.elapsed().as_secs_f64()
                    );
                }
                Arc::from(format!("{}\n", self.settings.staleness_reply))
            }
            _ => Arc::clone(&answer.line),
        }
    }

    /// The route for what HAProxy sent: the `[agent-urls]` entry of that
    /// text, else the default.
    fn route_for(&self, sent: &str) -> usize {
        let key = sent.trim().to_ascii_lowercase();
        self.routes
            .iter()
            .position(|route| route.key.as_deref() == Some(key.as_str()))
            .unwrap_or(0)
    }

    /// Polls every source once and returns each reply (`--check`).
    pub async fn check(&self) -> Vec<(Option<String>, String)> {
        let mut replies = Vec::new();
        for (index, route) in self.routes.iter().enumerate() {
            let outcome = route.source.poll().await;
            self.apply(index, outcome);
            let line = self.cached(index);
            replies.push((route.key.clone(), line.trim_end().to_owned()));
        }
        replies
    }
}

/// Polls route `index` every `interval` (after each poll), forever.
async fn poll_forever(agent: Arc<Agent>, index: usize, heartbeat: Arc<Heartbeat>) {
    loop {
        let outcome = agent.routes[index].source.poll().await;
        agent.apply(index, outcome);
        heartbeat.beat();
        tokio::time::sleep(agent.settings.interval).await;
    }
}

/// `haproxide agent`: with `check`, prints the reply the agent would give
/// now (one line per health source) and exits; else serves until a stop signal.
pub fn main(config: &Config, check: bool) -> anyhow::Result<ExitCode> {
    let settings = Settings::from_config(config)?;
    // One thread: replies are short and come from a cache; cross-thread
    // wake-ups cost more than they would spread.
    crate::runtime::run_daemon(config, &SECTION, async {
        let agent = Arc::new(Agent::new(settings));
        if !check {
            return run(agent).await;
        }
        let replies = agent.check().await;
        let several = replies.len() > 1;
        for (key, reply) in replies {
            match key {
                Some(key) if several => println!("{key}: {reply}"),
                _ if several => println!("(default): {reply}"),
                _ => println!("{reply}"),
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// Serves agent checks until SIGTERM/SIGHUP.
pub async fn run(agent: Arc<Agent>) -> anyhow::Result<ExitCode> {
    let address = agent.settings.address;
    let listener = listen(address).with_context(|| format!("cannot listen on {address}"))?;
    let sources: Vec<String> = agent.routes.iter().map(|route| route.source.describe()).collect();
    tracing::info!(
        "agent listening on {}, health from {}{}",
        listener.local_addr()?,
        sources.join(", "),
        if agent.settings.interval.is_zero() {
            " on each connection".to_owned()
        } else {
            format!(" every {:?}", agent.settings.interval)
        }
    );
    // Each poller beats after each poll; one silent for two intervals past
    // its longest poll is wedged. Ready once each has polled: the replies
    // are then the sources' own.
    let mut heartbeats = Vec::new();
    let mut pollers = Vec::new();
    if !agent.settings.interval.is_zero() {
        for (index, route) in agent.routes.iter().enumerate() {
            let allowance = agent.settings.interval * 2 + route.source.longest_poll() + POLL_SLACK;
            let heartbeat = Arc::new(Heartbeat::new(
                format!("poll of {}", route.source.describe()),
                Some(allowance),
            ));
            heartbeats.push(Arc::clone(&heartbeat));
            pollers.push(tokio::spawn(poll_forever(Arc::clone(&agent), index, heartbeat)));
        }
    }
    let supervisor = Supervisor::heartbeats(heartbeats);
    let limit = Arc::new(Semaphore::new(agent.settings.max_connections));
    // The same listening socket, to accept what else is waiting without the
    // reactor: a socket answered on the spot is never registered with it.
    let waiting = std::net::TcpListener::from(listener.as_fd().try_clone_to_owned()?);
    let mut shutdown = Shutdown::listen()?;
    'serving: loop {
        tokio::select! {
            accepted = listener.accept() => {
                let mut first = Some(accepted.and_then(|(stream, peer)| Ok((stream.into_std()?, peer))));
                for _ in 0..ACCEPT_BATCH {
                    let (stream, peer) = match first.take().unwrap_or_else(|| waiting.accept()) {
                        Ok(accepted) => accepted,
                        Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => break,
                        Err(error) => {
                            // Out of file descriptors and the like: pause, do not spin.
                            tracing::warn!("accept failed: {error}");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            break;
                        }
                    };
                    tracing::debug!("agent check from {peer}");
                    if let Some(pending) = answer_at_once(&agent, stream) {
                        let Ok(permit) = Arc::clone(&limit).acquire_owned().await else { break 'serving };
                        let agent = Arc::clone(&agent);
                        tokio::spawn(async move {
                            if let Err(error) = serve(&agent, pending).await {
                                tracing::debug!("{peer}: {error}");
                            }
                            drop(permit);
                        });
                    }
                }
            }
            signal = shutdown.requested() => {
                tracing::info!("{signal}: stopping");
                break;
            }
        }
    }
    supervisor.stopping();
    // Both handles of the listening socket: the port closes.
    drop(listener);
    drop(waiting);
    for poller in pollers {
        poller.abort();
    }
    let all = u32::try_from(agent.settings.max_connections).unwrap_or(u32::MAX);
    let finished = async {
        let _ = limit.acquire_many(all).await;
    };
    if !within_grace(STOP_GRACE, finished).await {
        tracing::warn!("replies still under way after {STOP_GRACE:?}; stopping anyway");
    }
    tracing::info!("agent stopped");
    Ok(ExitCode::SUCCESS)
}

/// A listener on `address` whose accept queue holds [`BACKLOG`] connections,
/// for HAProxy's checks of many servers arriving at once.
fn listen(address: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if address.is_ipv6() {
        TcpSocket::new_v6()?
    } else {
        TcpSocket::new_v4()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    socket.listen(BACKLOG)
}

/// A connection [`answer_at_once`] could not finish.
struct Pending {
    stream: std::net::TcpStream,
    /// The reply it started writing, and how much of it went out.
    started: Option<(Arc<str>, usize)>,
}

/// Answers `socket` at once when the cached reply serves every connection
/// and the socket takes it whole; `None` when done (or the peer is gone).
fn answer_at_once(agent: &Agent, mut socket: std::net::TcpStream) -> Option<Pending> {
    socket.set_nonblocking(true).ok()?;
    if agent.routes.len() == 1 {
        // Nothing sent picks a route: what was sent already is read, so
        // that closing does not reset the connection (which can cost the
        // peer the reply).
        let mut sent = [0u8; 512];
        let _ = socket.read(&mut sent);
    }
    if !agent.answers_from_cache() {
        return Some(Pending {
            stream: socket,
            started: None,
        });
    }
    let line = agent.cached(0);
    let written = match socket.write(line.as_bytes()) {
        Ok(written) if written == line.len() => return None,
        Ok(written) => written,
        Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => 0,
        Err(_) => return None,
    };
    Some(Pending {
        stream: socket,
        started: Some((line, written)),
    })
}

/// Answers one connection: reads what HAProxy sent (`agent-send`) when
/// routes depend on it, writes the reply line (or the rest of the one
/// [`answer_at_once`] started), closes.
async fn serve(agent: &Agent, pending: Pending) -> std::io::Result<()> {
    let Pending { stream, started } = pending;
    let mut stream = TcpStream::from_std(stream)?;
    let (line, written) = match started {
        Some(started) => started,
        None => {
            let index = if agent.routes.len() > 1 {
                let sent = read_line(&mut stream, agent.settings.read_timeout).await;
                agent.route_for(&sent)
            } else {
                0
            };
            (agent.reply(index).await, 0)
        }
    };
    let rest = line.as_bytes().get(written..).unwrap_or_default();
    tokio::time::timeout(WRITE_TIMEOUT, stream.write_all(rest))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "the reply was not taken in time"))??;
    stream.shutdown().await
}

/// What the peer sends up to a newline (at most 512 bytes), waiting at most
/// `limit`; empty when it sends nothing.
async fn read_line(stream: &mut TcpStream, limit: Duration) -> String {
    let mut buffer = Vec::with_capacity(64);
    let reading = async {
        let mut chunk = [0u8; 512];
        while buffer.len() < 512 {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(count) => {
                    buffer.extend_from_slice(&chunk[..count]);
                    if chunk[..count].contains(&b'\n') {
                        break;
                    }
                }
            }
        }
    };
    let _ = tokio::time::timeout(limit, reading).await;
    let text = String::from_utf8_lossy(&buffer);
    text.split(['\r', '\n']).next().unwrap_or_default().to_owned()
}
