//! `haproxide top`: a live terminal view of every HAProxy stats socket at
//! once, hatop's successor. Every `--interval` it reads `show stat` from
//! each socket ([`fetch`]) into that socket's rows, each row updated in
//! place with its rates, and turns them into sums or per-socket lines,
//! sorted and filtered ([`model`]); the keys ([`app`]) change the view and send server actions
//! (drain, maint, ready, weight) to every socket after a confirmation; the
//! screen is drawn with ratatui ([`view`]). A socket that stops answering is
//! named in the status line while the others stay live; `--socket-dir` is
//! listed anew at every refresh, so sockets that come back are followed.

pub mod app;
pub mod fetch;
pub mod model;
pub mod view;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use haproxy::Endpoint;
use ratatui::backend::Backend;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};

use self::app::{Action, App, Effect, Key};
use self::model::{Model, RowKey, Sample};

/// The flags of `haproxide top`.
#[derive(Debug, clap::Args)]
pub struct TopArgs {
    /// A stats socket: a path, unix:///path or tcp://host:port (repeatable)
    /// [default, when neither --socket nor --socket-dir is given: /run/haproxy/admin.sock].
    #[arg(short = 's', long = "socket", value_name = "SOCKET")]
    sockets: Vec<String>,
    /// Follow every socket in this directory (listed anew at each refresh).
    #[arg(long, value_name = "DIR")]
    socket_dir: Option<PathBuf>,
    /// Seconds between refreshes.
    #[arg(long, default_value_t = 2.0, value_name = "SECS")]
    interval: f64,
}

/// The socket Debian's HAProxy package configures, used when none is given.
const DEBIAN_SOCKET: &str = "/run/haproxy/admin.sock";

/// Where the sockets are: named ones, and a directory listed at each refresh.
#[derive(Debug, Clone)]
pub struct Sockets {
    given: Vec<Endpoint>,
    dir: Option<PathBuf>,
}

impl Sockets {
    /// `given` sockets and those of `dir`; the Debian socket when neither.
    pub fn new(given: Vec<Endpoint>, dir: Option<PathBuf>) -> Sockets {
        let given = if given.is_empty() && dir.is_none() {
            vec![Endpoint::Unix(PathBuf::from(DEBIAN_SOCKET))]
        } else {
            given
        };
        Sockets { given, dir }
    }

    /// The sockets now, each with a label no other shares; or why the
    /// directory cannot be listed.
    fn list(&self) -> Result<Vec<(String, Endpoint)>, String> {
        let mut endpoints = self.given.clone();
        if let Some(dir) = &self.dir {
            let found = crate::sockets::discover(dir).map_err(|error| format!("{}: {error}", dir.display()))?;
            endpoints.extend(found.sockets.into_iter().map(Endpoint::Unix));
        }
        Ok(crate::sockets::labelled(
            endpoints,
            Endpoint::to_string,
            Endpoint::short_name,
        ))
    }
}

/// `top` without its terminal: the sockets, what they said, what the
/// operator chose. The benchmark drives it as the terminal loop does.
pub struct Top {
    sockets: Sockets,
    endpoints: Vec<(String, Endpoint)>,
    /// Per socket label: its read buffer.
    buffers: std::collections::HashMap<String, Vec<u8>>,
    /// What the sockets said.
    pub model: Model,
    /// What the operator chose.
    pub app: App,
    /// The table's lines for the model and the options, made again only
    /// when either changes (not at every draw).
    lines: Vec<model::Line>,
    /// Their sorted order, the next sort's starting point.
    order: Vec<usize>,
}

impl Top {
    /// Follows `sockets`.
    pub fn new(sockets: Sockets) -> Top {
        Top {
            sockets,
            endpoints: Vec::new(),
            buffers: std::collections::HashMap::new(),
            model: Model::default(),
            app: App::default(),
            lines: Vec::new(),
            order: Vec::new(),
        }
    }

    /// Asks every socket for `show stat`, all at once.
    pub fn refresh(&mut self) {
        match self.sockets.list() {
            Ok(endpoints) => self.endpoints = endpoints,
            // The sockets listed last time are asked again.
            Err(problem) => self.app.messages = vec![format!("cannot list the socket directory: {problem}")],
        }
        let labels: Vec<String> = self.endpoints.iter().map(|(label, _)| label.clone()).collect();
        self.model.follow(&labels);
        self.buffers.retain(|label, _| labels.contains(label));
        let mut readers: Vec<(Option<Sample>, Vec<u8>)> = labels
            .iter()
            .enumerate()
            .map(|(index, label)| {
                let buffer = self.buffers.remove(label).unwrap_or_default();
                (self.model.take_latest(index), buffer)
            })
            .collect();
        let jobs = self.endpoints.iter().zip(readers.iter_mut());
        let replies = in_parallel(
            jobs,
            |((_, endpoint), (previous, buffer))| {
                let (reply, returned) = fetch::sample(endpoint, previous.take(), std::mem::take(buffer));
                *buffer = returned;
                reply
            },
            || Err("bug: the reading thread panicked".to_owned()),
        );
        for (index, reply) in replies.into_iter().enumerate() {
            self.model.record(index, reply);
        }
        for (label, (_, buffer)) in labels.into_iter().zip(readers) {
            self.buffers.insert(label, buffer);
        }
        self.relayout();
    }

    /// Makes the table's lines again, after the model or the options changed.
    fn relayout(&mut self) {
        self.lines = self.model.lines(&self.app.options, &mut self.order);
    }

    /// Handles `key`.
    fn key(&mut self, key: Key) -> Effect {
        let effect = self.app.key(key, &self.lines);
        self.relayout();
        effect
    }

    /// Sends `action` for `server` to every socket; the replies become the
    /// status line's messages.
    fn act(&mut self, action: &Action, server: &RowKey) {
        let command = action.command(&server.1, &server.2);
        let replies = in_parallel(
            &self.endpoints,
            |(label, endpoint)| match fetch::command(endpoint, &command) {
                Ok(reply) if reply.is_empty() => format!("{label}: done"),
                Ok(reply) => format!("{label}: {reply}"),
                Err(error) => format!("{label}: {error}"),
            },
            || "bug: the sending thread panicked".to_owned(),
        );
        self.app.messages = std::iter::once(format!("{command}:")).chain(replies).collect();
    }

    /// Draws the screen on `terminal`.
    pub fn draw<B: Backend>(&mut self, terminal: &mut ratatui::Terminal<B>) -> anyhow::Result<()> {
        terminal
            .draw(|frame| view::draw(frame, &self.model, &mut self.app, &self.lines))
            .map_err(|error| anyhow::anyhow!("cannot draw: {error}"))?;
        Ok(())
    }
}

/// Runs `work` on every one of `items` at once, a thread each; the results
/// in `items`' order, `panicked()` for one whose thread panicked (a bug).
fn in_parallel<I: Send, T: Send>(
    items: impl IntoIterator<Item = I>,
    work: impl Fn(I) -> T + Sync,
    panicked: impl Fn() -> T,
) -> Vec<T> {
    std::thread::scope(|scope| {
        let work = &work;
        let tasks: Vec<_> = items.into_iter().map(|item| scope.spawn(move || work(item))).collect();
        tasks
            .into_iter()
            .map(|task| task.join().unwrap_or_else(|_| panicked()))
            .collect()
    })
}

/// Runs `haproxide top` until `q`, Ctrl-C or a stop signal.
pub fn run(args: TopArgs) -> anyhow::Result<ExitCode> {
    let interval = Duration::try_from_secs_f64(args.interval)
        .ok()
        .filter(|interval| *interval >= Duration::from_millis(100))
        .with_context(|| format!("--interval must be 0.1 seconds or more, not {}", args.interval))?;
    let given = args
        .sockets
        .iter()
        .map(|socket| socket.parse::<Endpoint>())
        .collect::<Result<Vec<_>, _>>()?;
    let mut top = Top::new(Sockets::new(given, args.socket_dir));
    let stop = stop_on_signals()?;
    let mut terminal = ratatui::try_init().context("cannot use the terminal (top needs one)")?;
    let outcome = watch(&mut top, &mut terminal, interval, &stop);
    ratatui::restore();
    outcome.map(|()| ExitCode::SUCCESS)
}

/// How long a key is waited for at most, so that a stop signal is seen.
const KEY_WAIT: Duration = Duration::from_millis(100);

/// The loop: refresh every `interval`, draw, take keys.
fn watch<B: Backend>(
    top: &mut Top,
    terminal: &mut ratatui::Terminal<B>,
    interval: Duration,
    stop: &AtomicBool,
) -> anyhow::Result<()> {
    let mut next_refresh = Instant::now();
    let mut changed = true;
    while !stop.load(Ordering::Relaxed) {
        if Instant::now() >= next_refresh {
            top.refresh();
            next_refresh = Instant::now() + interval;
            changed = true;
        }
        if changed {
            top.draw(terminal)?;
            changed = false;
        }
        let wait = next_refresh.saturating_duration_since(Instant::now()).min(KEY_WAIT);
        if !event::poll(wait)? {
            continue;
        }
        changed = true;
        let Event::Key(pressed) = event::read()? else {
            continue; // a resize: drawn again at once
        };
        if pressed.kind != KeyEventKind::Press {
            continue;
        }
        if pressed.modifiers.contains(KeyModifiers::CONTROL) && pressed.code == KeyCode::Char('c') {
            break;
        }
        let key = match pressed.code {
            KeyCode::Char(typed) => Key::Char(typed),
            KeyCode::Enter => Key::Enter,
            KeyCode::Esc => Key::Escape,
            KeyCode::Backspace => Key::Backspace,
            KeyCode::Up => Key::Up,
            KeyCode::Down => Key::Down,
            KeyCode::PageUp => Key::PageUp,
            KeyCode::PageDown => Key::PageDown,
            KeyCode::Home => Key::Home,
            KeyCode::End => Key::End,
            _ => continue,
        };
        match top.key(key) {
            Effect::Redraw => {}
            Effect::Quit => break,
            Effect::Run(action, server) => {
                top.act(&action, &server);
                next_refresh = Instant::now();
            }
        }
    }
    Ok(())
}

/// How long the loop has to end after a stop signal before the process
/// ends without it: a SIGHUP usually means the terminal is gone, and
/// crossterm may then be stuck reading a closed input, out of the loop's
/// reach.
const STOP_GRACE: Duration = Duration::from_secs(1);

/// A flag set by SIGTERM, SIGHUP or SIGINT, from a thread that waits for
/// them; the process exits (0) if the loop has not ended [`STOP_GRACE`] later.
fn stop_on_signals() -> anyhow::Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let mut shutdown = runtime.block_on(async { crate::runtime::shutdown::Shutdown::listen() })?;
    let flag = Arc::clone(&stop);
    std::thread::Builder::new()
        .name("top-signals".to_owned())
        .spawn(move || {
            runtime.block_on(shutdown.requested());
            flag.store(true, Ordering::Relaxed);
            std::thread::sleep(STOP_GRACE);
            ratatui::restore();
            std::process::exit(0);
        })
        .context("cannot start the signal thread")?;
    Ok(stop)
}
