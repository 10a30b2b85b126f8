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
//! one agent answers for several backends. SIGTERM/SIGHUP/SIGINT: stop accepting,
//! finish the replies under way (for at most [`STOP_GRACE`]), exit 0.

pub mod formula;
pub mod health;

use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsFd;
use std::process::ExitCode;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use haproxy::{AgentReply, Health};
use std::io::{Read, Write};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::Semaphore;

use crate::config::{Config, parse_bool, parse_float, parse_int, parse_ip};
use crate::runtime::shutdown::{Shutdown, within_grace};
use formula::Formula;
use health::{HealthSource, HttpHealth, Outcome};

/// How long replies under way may take after SIGTERM.
pub const STOP_GRACE: Duration = Duration::from_secs(5);

/// Connections accepted per wake-up before signals get a look in.
const ACCEPT_BATCH: usize = 256;

/// Connections the kernel may hold for the agent to accept (capped by
/// `net.core.somaxconn`).
const BACKLOG: u32 = 4096;

/// How long writing a reply may take.
const WRITE_TIMEOUT: Duration = Duration::from_secs(2);

/// Datawave's health endpoint, the default `health-url`.
const DATAWAVE_HEALTH_URL: &str = "http://localhost:8080/DataWave/Common/Health/health";

/// `[agent]` and `[agent-urls]`.
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

impl Settings {
    /// Reads `[agent]` and `[agent-urls]` (checked with the agent's scope).
    pub fn from_config(config: &Config) -> anyhow::Result<Settings> {
        const SECTION: &str = "agent";
        let float = |key: &str, default: f64| -> anyhow::Result<f64> {
            Ok(config.typed(SECTION, key, parse_float)?.unwrap_or(default))
        };
        let flag = |key: &str| -> anyhow::Result<bool> { Ok(config.typed(SECTION, key, parse_bool)?.unwrap_or(false)) };
        let reply = |key: &str| -> anyhow::Result<Option<AgentReply>> {
            Ok(config.typed(SECTION, key, |text| text.parse().map_err(|error| format!("{error}")))?)
        };
        let count = |key: &str| -> anyhow::Result<Option<u32>> {
            Ok(config.typed(SECTION, key, |text| {
                u32::try_from(parse_int(text)?).map_err(|_| "must be from 0 to 4294967295".to_owned())
            })?)
        };

        let ip = config
            .typed(SECTION, "bind", parse_ip)?
            .unwrap_or(IpAddr::from([0, 0, 0, 0]));
        let port = u16::try_from(config.typed(SECTION, "port", parse_int)?.unwrap_or(5555)).context("[agent] port")?;
        let timeout = config.seconds(SECTION, "timeout", 10.0)?;
        let retries = count("retries")?.unwrap_or(3);
        let http = |url: &str| -> anyhow::Result<HealthSource> {
            if !url.starts_with("http://") {
                bail!("{url}: only http:// health URLs are supported");
            }
            Ok(HealthSource::Http(HttpHealth::new(url, timeout, retries)?))
        };
        let default_source = match config.string(SECTION, "source")?.as_deref() {
            None | Some("http") => http(
                &config
                    .string(SECTION, "health-url")?
                    .unwrap_or_else(|| DATAWAVE_HEALTH_URL.into()),
            )?,
            Some("local") => HealthSource::Local,
            Some(other) => bail!("[agent] source = {other:?}: must be http or local"),
        };
        let mut sources = vec![(None, default_source)];
        if let Some(section) = config.ini().section("agent-urls") {
            for entry in &section.entries {
                let url = config.string("agent-urls", &entry.key)?.unwrap_or_default();
                let source = http(&url).with_context(|| format!("[agent-urls] {}", entry.key))?;
                sources.push((Some(entry.key.to_ascii_lowercase()), source));
            }
        }

        let mut unavailable_reply = reply("unavailable-response")?.unwrap_or_else(|| AgentReply {
            weight: Some(haproxy::Weight::Percent(0)),
            admin: Some(haproxy::AdminState::Drain),
            ..AgentReply::default()
        });
        if flag("unavailable-up")? {
            unavailable_reply.health = Some(Health::Up);
        }
        let staleness = config.seconds(SECTION, "staleness-interval", 0.0)?;
        Ok(Settings {
            address: SocketAddr::new(ip, port),
            sources,
            interval: config.seconds(SECTION, "interval", 1.0)?,
            formula: Formula {
                connection_usage_reduction: float("connection-usage-reduction", 0.7)?,
                os_load_reduction: float("os-load-reduction", 0.4)?,
                swap_usage_reduction: float("swap-usage-reduction", 0.3)?,
                clamp_negative_load: flag("clamp-negative-load")?,
                maxconn: count("maxconn")?,
                absolute_weight: count("absolute-weight")?,
            },
            staleness: (!staleness.is_zero()).then_some(staleness),
            staleness_reply: reply("staleness-response")?.unwrap_or_default(),
            down_reply: reply("down-response")?.unwrap_or(AgentReply {
                health: Some(Health::Down),
                ..AgentReply::default()
            }),
            unavailable_reply,
            timeout_reply: reply("timeout-response")?,
            error_reply: reply("error-response")?,
            read_timeout: config.seconds(SECTION, "read-timeout", 0.1)?,
            max_connections: count("max-connections")?.map_or(10_000, |limit| limit.max(1) as usize),
        })
    }
}

/// The last answer of one health source.
struct Answer {
    /// The reply line, with its `\n`.
    line: Arc<str>,
    /// When a poll last set it.
    at: Instant,
}

/// One health source and its last answer.
struct Route {
    /// The `agent-send` string it answers (lower case); `None` for the default.
    key: Option<String>,
    source: HealthSource,
    answer: RwLock<Answer>,
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
                }),
            })
            .collect();
        Agent { settings, routes }
    }

    /// Records what a poll of route `index` found.
    fn apply(&self, index: usize, outcome: Outcome) {
        let route = &self.routes[index];
        let what = route.source.describe();
        let reply = match outcome {
            Outcome::Report(report) => Some(self.settings.formula.reply(&report)),
            Outcome::Unavailable => Some(self.settings.unavailable_reply.clone()),
            Outcome::Down(reason) => {
                tracing::debug!("{what}: down: {reason}");
                Some(self.settings.down_reply.clone())
            }
            Outcome::Timeout(reason) => {
                if self.settings.timeout_reply.is_none() {
                    tracing::warn!("{what}: {reason}; the last reply stands");
                }
                self.settings.timeout_reply.clone()
            }
            Outcome::Failed(reason) => {
                if self.settings.error_reply.is_none() {
                    tracing::warn!("{what}: {reason}; the last reply stands");
                }
                self.settings.error_reply.clone()
            }
        };
        let Some(reply) = reply else { return };
        let line: Arc<str> = Arc::from(format!("{reply}\n"));
        if let Ok(mut answer) = route.answer.write() {
            if answer.line != line {
                tracing::info!("{what}: replying {:?}", line.trim_end());
            }
            *answer = Answer {
                line,
                at: Instant::now(),
            };
        }
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
        let Ok(answer) = self.routes[index].answer.read() else {
            return Arc::from("\n");
        };
        match self.settings.staleness {
            Some(limit) if answer.at.elapsed() > limit => {
                tracing::warn!(
                    "{}: no fresh answer for {:.1} s; replying the staleness-response",
                    self.routes[index].source.describe(),
                    answer.at.elapsed().as_secs_f64()
                );
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
async fn poll_forever(agent: Arc<Agent>, index: usize) {
    loop {
        let outcome = agent.routes[index].source.poll().await;
        agent.apply(index, outcome);
        tokio::time::sleep(agent.settings.interval).await;
    }
}

/// `haproxide agent`: with `check`, prints the reply the agent would give
/// now (one line per health source) and exits; else serves until a stop signal.
pub fn main(config: &Config, check: bool) -> anyhow::Result<ExitCode> {
    let settings = Settings::from_config(config)?;
    // One thread: replies are short and come from a cache; cross-thread
    // wake-ups cost more than they would spread.
    crate::runtime::run_daemon(config, "agent", async {
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
    let pollers: Vec<_> = if agent.settings.interval.is_zero() {
        Vec::new()
    } else {
        (0..agent.routes.len())
            .map(|index| tokio::spawn(poll_forever(Arc::clone(&agent), index)))
            .collect()
    };
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
