//! `haproxide query`: the socat one-liner done right.
//!
//! Sends one runtime-API command to every given socket at once (or reads saved
//! replies with `--input`), then prints the replies as raw text, an aligned
//! table, JSON or CSV. With several sources every line or row says which socket
//! it came from. A socket that fails is reported on stderr, one line each, the
//! others are still printed, and the exit status is 1.

mod render;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use haproxy::{ClientOptions, Endpoint, Reply, Retries, RuntimeClient};

use crate::sockets;

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// The reply as HAProxy sent it (lines prefixed with the socket when there are several).
    Raw,
    /// An aligned table.
    Table,
    /// JSON: `show stat` rows and `show info` as objects keyed by field name.
    Json,
    /// CSV with a `socket` column.
    Csv,
}

/// `haproxide query` arguments.
#[derive(Debug, clap::Args)]
pub struct QueryArgs {
    /// A stats or master socket: a path, unix:///path or tcp://host:port (repeatable)
    /// [default, when neither --socket nor --socket-dir is given: /run/haproxy/admin.sock].
    #[arg(short = 's', long = "socket", value_name = "SOCKET")]
    sockets: Vec<String>,
    /// Ask every socket in this directory.
    #[arg(long, value_name = "DIR")]
    socket_dir: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Raw)]
    format: Format,
    /// `show stat` columns to print, comma-separated (table, JSON and CSV).
    #[arg(long, value_name = "A,B,C", value_delimiter = ',')]
    columns: Vec<String>,
    /// Parse a saved reply instead of asking a socket (repeatable).
    #[arg(long = "input", value_name = "FILE", conflicts_with_all = ["sockets", "socket_dir"])]
    inputs: Vec<PathBuf>,
    /// Seconds to wait for a connection.
    #[arg(long, default_value_t = 2.0, value_name = "SECS")]
    connect_timeout: f64,
    /// Seconds to wait for more reply data once connected.
    #[arg(long, default_value_t = 10.0, value_name = "SECS")]
    read_timeout: f64,
    /// Connect attempts after the first one.
    #[arg(long, default_value_t = 0)]
    retries: u32,
    /// The command, e.g. `show stat` or `@1 show info` on a master socket.
    #[arg(required = true, num_args = 1.., value_name = "COMMAND")]
    command: Vec<String>,
}

/// The socket Debian's HAProxy package configures, used when none is given.
const DEBIAN_SOCKET: &str = "/run/haproxy/admin.sock";

/// What the command's reply is, for parsing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReplyKind {
    /// `show stat` CSV (any filter, `desc`, `up`, `no-maint`; not `typed`/`json`).
    Stat,
    /// Plain `show info`.
    Info,
    /// `show servers state`.
    ServersState,
    /// A `… json` variant (`show stat json`, `show info json`, `show schema json`).
    Json,
    /// Anything else: text only.
    Text,
}

impl ReplyKind {
    /// Classifies a command, looking past a master-CLI `@…` prefix.
    pub(crate) fn of(command: &str) -> ReplyKind {
        let mut words: Vec<&str> = command.split_whitespace().collect();
        if words.first().is_some_and(|word| word.starts_with('@')) {
            words.remove(0);
        }
        let structured = |rest: &[&str]| !rest.iter().any(|word| matches!(*word, "typed" | "json"));
        if words.contains(&"json") {
            return ReplyKind::Json;
        }
        match words.as_slice() {
            ["show", "stat", rest @ ..] if structured(rest) => ReplyKind::Stat,
            ["show", "info"] => ReplyKind::Info,
            ["show", "servers", "state", ..] => ReplyKind::ServersState,
            _ => ReplyKind::Text,
        }
    }
}

/// Where a reply comes from.
#[derive(Debug, Clone)]
enum ReplySource {
    Socket(Endpoint),
    File(PathBuf),
}

impl ReplySource {
    /// Its whole address or path.
    fn full_name(&self) -> String {
        match self {
            ReplySource::Socket(endpoint) => endpoint.to_string(),
            ReplySource::File(path) => path.display().to_string(),
        }
    }
}

/// A source with the label its rows carry.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    label: String,
    source: ReplySource,
}

/// A source's reply, or why there is none.
pub(crate) struct Answer {
    pub(crate) label: String,
    pub(crate) reply: Result<Reply, String>,
}

/// Runs `haproxide query`.
pub async fn run(args: QueryArgs) -> anyhow::Result<ExitCode> {
    let command = args.command.join(" ");
    if !args.columns.is_empty() {
        if args.format == Format::Raw {
            bail!(
                "--columns chooses `show stat` columns for --format table, json or csv; raw output is the reply as sent"
            );
        }
        if ReplyKind::of(&command) != ReplyKind::Stat {
            bail!("--columns chooses `show stat` columns; the reply to `{command}` has none");
        }
    }
    let (targets, warnings) = targets(&args)?;
    for warning in &warnings {
        eprintln!("haproxide query: warning: {warning}");
    }
    let mut failures = Vec::new();
    let options = ClientOptions {
        connect_timeout: seconds("--connect-timeout", args.connect_timeout)?,
        read_timeout: seconds("--read-timeout", args.read_timeout)?,
        retries: Retries::Limited(args.retries),
        retry_interval: Duration::from_millis(200),
    };
    let answers = fetch(targets, &command, options).await;
    let mut output = Vec::new();
    let render_failures = render::render(
        &mut output,
        ReplyKind::of(&command),
        args.format,
        &args.columns,
        answers,
    )?;
    failures.extend(render_failures);
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(&output).and_then(|()| stdout.flush()) {
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => {}
        other => other.context("writing to stdout")?,
    }
    for failure in &failures {
        eprintln!("haproxide query: {failure}");
    }
    Ok(if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn seconds(flag: &str, value: f64) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(value)
        .ok()
        .filter(|duration| !duration.is_zero())
        .with_context(|| format!("{flag} must be a positive number of seconds, not {value}"))
}

/// The sources to ask, labelled, plus what was passed over while listing them
/// (warnings: every socket found is still asked).
fn targets(args: &QueryArgs) -> anyhow::Result<(Vec<Target>, Vec<String>)> {
    let mut problems = Vec::new();
    let mut sources = Vec::new();
    for input in &args.inputs {
        sources.push(ReplySource::File(input.clone()));
    }
    for socket in &args.sockets {
        sources.push(ReplySource::Socket(socket.parse()?));
    }
    if let Some(dir) = &args.socket_dir {
        let found =
            sockets::discover(dir).with_context(|| format!("cannot list socket directory {}", dir.display()))?;
        for (path, reason) in found.skipped {
            problems.push(format!("{}: skipped: {reason}", path.display()));
        }
        if found.sockets.is_empty() {
            bail!("no UNIX sockets in {}", dir.display());
        }
        sources.extend(
            found
                .sockets
                .into_iter()
                .map(|path| ReplySource::Socket(Endpoint::Unix(path))),
        );
    }
    if sources.is_empty() {
        sources.push(ReplySource::Socket(Endpoint::Unix(PathBuf::from(DEBIAN_SOCKET))));
    }
    // A socket named twice (`-s X -s X`, or in --socket-dir too) is asked once.
    let short = |source: &ReplySource| match source {
        ReplySource::Socket(endpoint) => endpoint.short_name(),
        ReplySource::File(path) => path.file_name().map_or_else(
            || path.display().to_string(),
            |name| name.to_string_lossy().into_owned(),
        ),
    };
    let targets = sockets::labelled(sources, ReplySource::full_name, short)
        .into_iter()
        .map(|(label, source)| Target { label, source })
        .collect();
    Ok((targets, problems))
}

/// Asks every target at once; answers come back in target order.
async fn fetch(targets: Vec<Target>, command: &str, options: ClientOptions) -> Vec<Answer> {
    let mut tasks = Vec::with_capacity(targets.len());
    for Target { label, source } in targets {
        let command = command.to_owned();
        tasks.push((label, tokio::spawn(async move { ask(source, &command, options).await })));
    }
    let mut answers = Vec::with_capacity(tasks.len());
    for (label, task) in tasks {
        let reply = task
            .await
            .unwrap_or_else(|error| Err(format!("query task failed: {error}")));
        answers.push(Answer { label, reply });
    }
    answers
}

/// One source's reply; a runtime-API refusal counts as a failure.
async fn ask(source: ReplySource, command: &str, options: ClientOptions) -> Result<Reply, String> {
    match source {
        ReplySource::Socket(endpoint) => {
            let reply = RuntimeClient::new(endpoint, options)
                .send(command)
                .await
                .map_err(|error| error.kind.to_string())?;
            if reply.cli_error().is_none() {
                return Ok(reply);
            }
            // All of HAProxy's refusal: its first line alone ("Unknown command,
            // but maybe one of the following ones is a better match:") says little.
            let text = reply.text();
            let refusal = text.trim();
            let refusal = if refusal.contains('\n') {
                format!("\n  {}", refusal.replace('\n', "\n  "))
            } else {
                format!(" {refusal}")
            };
            // A master CLI lists commands of its own: `show proc`, `@<relative pid>`.
            let master = text.contains("show proc ") || text.contains("@<relative pid>");
            let hint = if master && !command.starts_with('@') {
                format!("\n  (this is a master socket: `@1 {command}` sends it to worker 1)")
            } else {
                String::new()
            };
            Err(format!("HAProxy refused the command:{refusal}{hint}"))
        }
        ReplySource::File(path) => tokio::fs::read(&path)
            .await
            .map(Reply::new)
            .map_err(|error| format!("cannot read {}: {error}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_commands_past_master_prefixes() {
        assert_eq!(ReplyKind::of("show stat"), ReplyKind::Stat);
        assert_eq!(ReplyKind::of("@1 show stat -1 4 -1"), ReplyKind::Stat);
        assert_eq!(ReplyKind::of("show stat desc"), ReplyKind::Stat);
        assert_eq!(ReplyKind::of("show stat json"), ReplyKind::Json);
        assert_eq!(ReplyKind::of("@1 show schema json"), ReplyKind::Json);
        assert_eq!(ReplyKind::of("@!1234 show info"), ReplyKind::Info);
        assert_eq!(ReplyKind::of("show info typed"), ReplyKind::Text);
        assert_eq!(ReplyKind::of("show servers state be_app"), ReplyKind::ServersState);
        assert_eq!(ReplyKind::of("show sess"), ReplyKind::Text);
    }
}
