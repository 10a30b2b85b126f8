//! `haproxide pull`: the haproxystats-pull successor.
//!
//! Every `pull-interval` (phase-aligned, no drift) it asks every target, meaning
//! the sockets of `socket-dir` (re-scanned each round) and the `servers` list,
//! for `show info` and `show stat`, all at once. It streams each reply into the
//! round's staging directory and delivers the round atomically into the spool
//! (see [`crate::stats::spool`]).
//!
//! Unlike haproxystats, one dead socket does not blank a round. The sockets that
//! answered are delivered, and `manifest.json` names the ones that failed, so
//! `process` never aggregates a partial round without knowing. A target counts
//! only when both its replies arrived whole (ending with HAProxy's empty line)
//! and look like what was asked. Failures are logged when a socket's state
//! changes, not every round. Before each round, back-pressure is checked: a
//! full queue or too little free space skips the round with one log line.
//! Under systemd it is ready after its first round, and pings the watchdog
//! while rounds keep ending. SIGTERM, SIGHUP or SIGINT cancels a round in flight (its staging directory is
//! removed) and exits 0.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use haproxy::{ClientOptions, Endpoint, Retries, RuntimeClient, Transfer};
use tokio::io::AsyncWriteExt;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::config::Config;
use crate::config::declare::{self, DefaultValue, Key, Section};
use crate::runtime::notify::{Heartbeat, Supervisor};
use crate::runtime::shutdown::Shutdown;
use crate::runtime::{ProblemChange, note_problem};
use crate::sockets;
use crate::stats::spool::manifest::{Manifest, TargetOutcome};
use crate::stats::spool::{self, Spool, StagedRound};

/// `[pull] retries`.
const RETRIES: Key<Retries> = Key::new(
    "retries",
    declare::RETRIES,
    DefaultValue::Builtin("1"),
    "connect attempts after the first to a socket that does not accept (-1: no limit)",
);
/// `[pull] timeout`.
const TIMEOUT: Key<Duration> = Key::new(
    "timeout",
    declare::POSITIVE_SECONDS,
    DefaultValue::Builtin("0.1"),
    "seconds a socket has to accept a connection",
);
/// `[pull] interval`.
const INTERVAL: Key<Duration> = Key::new(
    "interval",
    declare::SECONDS,
    DefaultValue::Builtin("0.5"),
    "seconds between connect attempts",
);
/// `[pull] pull-timeout`.
const PULL_TIMEOUT: Key<Duration> = Key::new(
    "pull-timeout",
    declare::SECONDS,
    DefaultValue::Builtin("2"),
    "seconds a whole round may take; sockets that did not answer by then count as failed (0: no limit)",
);
/// `[pull] pull-interval`.
const PULL_INTERVAL: Key<Duration> = Key::new(
    "pull-interval",
    declare::POSITIVE_SECONDS,
    DefaultValue::Builtin("10"),
    "seconds from the start of a round to the start of the next",
);
/// `[pull] buffer-limit`.
const BUFFER_LIMIT: Key<usize> = Key::new(
    "buffer-limit",
    declare::COUNT,
    DefaultValue::Builtin("6291456"),
    "haproxystats' read buffer per socket, in bytes",
)
.ignored("replies are streamed to their files, not buffered");
/// `[pull] dst-dir`.
const DST_DIR: Key<PathBuf> = Key::new(
    "dst-dir",
    declare::PATH,
    DefaultValue::Builtin("/var/lib/haproxystats/incoming"),
    "where finished rounds are delivered, for `process`",
);
/// `[pull] tmp-dst-dir`.
const TMP_DST_DIR: Key<PathBuf> = Key::new(
    "tmp-dst-dir",
    declare::PATH,
    DefaultValue::Builtin("/var/lib/haproxystats/incoming.tmp"),
    "where a round is written before it is renamed into `dst-dir` (on the same filesystem)",
);
/// `[pull] workers`.
const WORKERS: Key<usize> = Key::new(
    "workers",
    declare::COUNT,
    DefaultValue::Builtin("8"),
    "how many replies are fetched at the same time",
);
/// `[pull] queue-size`.
const QUEUE_SIZE: Key<usize> = Key::new(
    "queue-size",
    declare::COUNT,
    DefaultValue::Builtin("360"),
    "rounds waiting in `dst-dir` from which rounds are skipped until `process` catches up",
);
/// `[pull] socket-dir`.
const SOCKET_DIR: Key<PathBuf> = Key::new(
    "socket-dir",
    declare::PATH,
    DefaultValue::Unset("none"),
    "a directory whose UNIX sockets are all asked, scanned anew each round",
);
/// `[pull] servers`.
const SERVERS: Key<Vec<Endpoint>> = Key::new(
    "servers",
    declare::SOCKETS,
    DefaultValue::Unset("none"),
    "more sockets to ask: `unix:///path` and `tcp://host:port`, comma-separated",
);
/// What a round without `pull-timeout` is allowed before pulling is called
/// wedged (each socket's own timeouts bound it).
const UNBOUNDED_ROUND: Duration = Duration::from_secs(60);

/// `[pull] read-timeout`.
const READ_TIMEOUT: Key<Duration> = Key::new(
    "read-timeout",
    declare::POSITIVE_SECONDS,
    DefaultValue::Fallback("5"),
    "seconds to wait for more reply data from a socket before giving it up",
);
/// `[pull] min-free-space`.
const MIN_FREE_SPACE: Key<u64> = Key::new(
    "min-free-space",
    declare::SIZE,
    DefaultValue::Fallback("64M"),
    "rounds are skipped while the filesystem of `dst-dir` has less free space (`K`, `M`, `G`, `T` suffixes; `0`: no floor)",
);

/// `[pull] hostname`.
const HOSTNAME: Key<String> = Key::new(
    "hostname",
    declare::TEXT,
    DefaultValue::Unset("the system's host name"),
    "the load balancer's name each round's manifest records, which `process` names the round's metrics after (with prefix-hostname): for hosts whose name is not the one dashboards use",
);

/// `[pull]`, haproxystats-pull's section.
pub const SECTION: Section = Section::of(
    "pull",
    "what `pull` asks, how often, and where it delivers rounds",
    &[
        &SOCKET_DIR,
        &SERVERS,
        &PULL_INTERVAL,
        &PULL_TIMEOUT,
        &TIMEOUT,
        &READ_TIMEOUT,
        &RETRIES,
        &INTERVAL,
        &WORKERS,
        &DST_DIR,
        &TMP_DST_DIR,
        &QUEUE_SIZE,
        &MIN_FREE_SPACE,
        &BUFFER_LIMIT,
        &HOSTNAME,
    ],
);

/// `[pull] dst-dir` of a configuration (for the pull check).
pub fn configured_dst_dir(config: &Config) -> Result<PathBuf, crate::config::ConfigError> {
    config.get(&SECTION, &DST_DIR)
}

/// The `[pull]` settings, read and checked once at start.
#[derive(Debug, Clone)]
pub struct Settings {
    socket_dir: Option<PathBuf>,
    servers: Vec<Endpoint>,
    client: ClientOptions,
    pull_timeout: Option<Duration>,
    pull_interval: Duration,
    dst_dir: PathBuf,
    tmp_dst_dir: PathBuf,
    queue_size: usize,
    min_free_space: u64,
    workers: usize,
    hostname: String,
}

impl Settings {
    /// Reads `[pull]` (with `[DEFAULT]`).
    pub fn from_config(config: &Config) -> anyhow::Result<Settings> {
        let pull_timeout = config.get(&SECTION, &PULL_TIMEOUT)?;
        let settings = Settings {
            socket_dir: config.get_opt(&SECTION, &SOCKET_DIR)?,
            servers: config.get_opt(&SECTION, &SERVERS)?.unwrap_or_default(),
            client: ClientOptions {
                connect_timeout: config.get(&SECTION, &TIMEOUT)?,
                read_timeout: config.get(&SECTION, &READ_TIMEOUT)?,
                retries: config.get(&SECTION, &RETRIES)?,
                retry_interval: config.get(&SECTION, &INTERVAL)?,
            },
            pull_timeout: (!pull_timeout.is_zero()).then_some(pull_timeout),
            pull_interval: config.get(&SECTION, &PULL_INTERVAL)?,
            dst_dir: config.get(&SECTION, &DST_DIR)?,
            tmp_dst_dir: config.get(&SECTION, &TMP_DST_DIR)?,
            queue_size: config.get(&SECTION, &QUEUE_SIZE)?,
            min_free_space: config.get(&SECTION, &MIN_FREE_SPACE)?,
            workers: config.get(&SECTION, &WORKERS)?,
            hostname: match config.get_opt(&SECTION, &HOSTNAME)? {
                Some(name) => name.trim().to_owned(),
                None => nix::unistd::gethostname()?.to_string_lossy().into_owned(),
            },
        };
        if settings.socket_dir.is_none() && settings.servers.is_empty() {
            bail!("[pull] names no target: set socket-dir, servers, or both");
        }
        Ok(settings)
    }
}

/// `haproxide pull`: one round with `once` (exit 0 when every target
/// answered), else a round every `pull-interval` until a stop signal.
pub fn main(config: &Config, once: bool) -> anyhow::Result<ExitCode> {
    let settings = Settings::from_config(config)?;
    crate::runtime::run_daemon(config, &SECTION, async {
        let mut puller = Puller::new(settings)?;
        if once {
            puller.run_once().await
        } else {
            puller.run().await
        }
    })
}

/// One thing to ask: an endpoint and the file name its replies get.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Target {
    endpoint: Endpoint,
    name: String,
}

/// Spool file names: the socket's file name (`admin1.sock`) or `host:port`, as
/// haproxystats names them; sockets whose file names clash get their whole
/// path, with `/` as `_`, so no two targets write the same file.
fn name_targets(endpoints: Vec<Endpoint>) -> Vec<Target> {
    let names = sockets::distinct_names(
        endpoints.iter().map(Endpoint::short_name).collect(),
        |index| match &endpoints[index] {
            Endpoint::Unix(path) => path.to_string_lossy().trim_start_matches('/').replace('/', "_"),
            tcp => tcp.short_name(),
        },
    );
    endpoints
        .into_iter()
        .zip(names)
        .map(|(endpoint, name)| Target { endpoint, name })
        .collect()
}

/// The state of each socket and directory entry last round, to log changes only.
#[derive(Debug, Default)]
struct StateLog {
    last: HashMap<String, Option<String>>,
    recorded: HashSet<String>,
}

impl StateLog {
    /// Records `subject`'s state (`None` = fine); logs only when it changed.
    fn record(&mut self, subject: &str, problem: Option<String>) {
        self.recorded.insert(subject.to_owned());
        let last = self.last.entry(subject.to_owned()).or_default();
        match note_problem(last, problem) {
            ProblemChange::Began => tracing::warn!("{subject}: {}", last.as_deref().unwrap_or_default()),
            ProblemChange::Ended => tracing::info!("{subject}: answering again"),
            ProblemChange::Unchanged => {}
        }
    }

    /// Ends a round: forgets the subjects it did not record (a socket that
    /// left `socket-dir`), so they are logged afresh if they come back.
    fn end_round(&mut self) {
        let recorded = std::mem::take(&mut self.recorded);
        self.last.retain(|subject, _| recorded.contains(subject));
    }
}

/// What one round did.
#[derive(Debug)]
struct RoundReport {
    targets: usize,
    failed: Vec<String>,
}

/// The collector.
pub struct Puller {
    settings: Settings,
    spool: Spool,
    states: StateLog,
    /// Why the last round could not use the spool, if it could not.
    spool_problem: Option<String>,
}

impl Puller {
    /// Opens the spool (creating and checking its directories).
    pub fn new(settings: Settings) -> anyhow::Result<Puller> {
        let spool = Spool::open(&settings.dst_dir, &settings.tmp_dst_dir)?;
        Ok(Puller {
            settings,
            spool,
            states: StateLog::default(),
            spool_problem: None,
        })
    }

    /// `--once`: one round; exit 0 when every target answered.
    /// A stop signal cancels the round as in the daemon (nothing is left in
    /// `tmp-dst-dir`) and exits 0.
    pub async fn run_once(&mut self) -> anyhow::Result<ExitCode> {
        let mut shutdown = Shutdown::listen()?;
        let checked = tokio::select! {
            checked = self.checked_round() => checked?,
            signal = shutdown.requested() => {
                tracing::info!("round cancelled by {signal}");
                return Ok(ExitCode::SUCCESS);
            }
        };
        let Some(report) = checked else {
            return Ok(ExitCode::FAILURE);
        };
        Ok(if report.failed.is_empty() && report.targets > 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        })
    }

    /// The daemon: a round every `pull-interval` until a stop signal.
    pub async fn run(&mut self) -> anyhow::Result<ExitCode> {
        let mut shutdown = Shutdown::listen()?;
        let mut ticks = tokio::time::interval(self.settings.pull_interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        // Ready after the first round; a round should end within its deadline
        // and the next one start an interval later: pulling is wedged when
        // none has ended for two intervals past that.
        let deadline = self.settings.pull_timeout.unwrap_or(UNBOUNDED_ROUND);
        let rounds = Arc::new(Heartbeat::new(
            "pull rounds",
            Some(self.settings.pull_interval * 2 + deadline),
        ));
        let supervisor = Supervisor::heartbeats(vec![Arc::clone(&rounds)]);
        tracing::info!(
            interval = ?self.settings.pull_interval,
            dst_dir = %self.settings.dst_dir.display(),
            "pull started"
        );
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                _ = shutdown.requested() => break,
            }
            // The watchdog test's failpoint: rounds stop after the first.
            let hung = crate::runtime::failpoint("pull-round-hang") && rounds.has_beaten();
            tokio::select! {
                outcome = self.checked_round(), if !hung => self.record_spool_state(outcome.err()),
                signal = shutdown.requested() => { tracing::info!("round cancelled by {signal}"); break; }
            }
            rounds.beat();
        }
        supervisor.stopping();
        tracing::info!("pull stopped");
        Ok(ExitCode::SUCCESS)
    }

    /// Logs a round's failure to use the spool when it starts or changes, and
    /// its end: the daemon goes on with the next round either way, since
    /// most such failures (a full or remounted disk) pass.
    fn record_spool_state(&mut self, failure: Option<anyhow::Error>) {
        let now = failure.map(|error| format!("{error:#}"));
        match note_problem(&mut self.spool_problem, now) {
            ProblemChange::Began => tracing::error!(
                "{}; the next round tries again",
                self.spool_problem.as_deref().unwrap_or_default()
            ),
            ProblemChange::Ended => tracing::info!("the spool takes rounds again"),
            ProblemChange::Unchanged => {}
        }
    }

    /// A round unless back-pressure says to skip it (`None`).
    async fn checked_round(&mut self) -> anyhow::Result<Option<RoundReport>> {
        let queued = self
            .spool
            .queued_rounds()
            .with_context(|| format!("cannot count the rounds in {}", self.spool.dst_dir().display()))?;
        if queued >= self.settings.queue_size {
            tracing::warn!(
                "queue reached max size: {queued} rounds wait in {} (queue-size {}); round skipped until process catches up",
                self.spool.dst_dir().display(),
                self.settings.queue_size
            );
            return Ok(None);
        }
        let free = self
            .spool
            .free_bytes()
            .with_context(|| format!("cannot read the free space of {}", self.spool.dst_dir().display()))?;
        if free < self.settings.min_free_space {
            tracing::warn!(
                "only {free} bytes free on the filesystem of {} (min-free-space {}); round skipped",
                self.spool.dst_dir().display(),
                self.settings.min_free_space
            );
            return Ok(None);
        }
        self.round().await.map(Some)
    }

    async fn round(&mut self) -> anyhow::Result<RoundReport> {
        let started = Instant::now();
        let epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_secs());
        let targets = self.targets();
        let staged = self.spool.begin_round(epoch)?;
        let outcomes = self.collect(&targets, &staged).await;

        let mut failed = Vec::new();
        let mut bytes = 0;
        let mut entries = Vec::with_capacity(targets.len());
        for (target, outcome) in targets.iter().zip(&outcomes) {
            let subject = target.endpoint.to_string();
            match outcome {
                Ok(size) => {
                    bytes += size;
                    self.states.record(&subject, None);
                }
                Err(problem) => {
                    failed.push(target.name.clone());
                    self.states.record(&subject, Some(problem.clone()));
                }
            }
            entries.push(TargetOutcome {
                name: target.name.clone(),
                endpoint: subject,
                ok: outcome.is_ok(),
                error: outcome.as_ref().err().cloned(),
            });
        }
        self.states.end_round();

        let answered = targets.len() - failed.len();
        let wall = started.elapsed();
        let mut summary = format!(
            "round {}: {} targets, {answered} ok, {} failed",
            staged.name(),
            targets.len(),
            failed.len()
        );
        if !failed.is_empty() {
            let _ = write!(summary, " ({})", failed.join(", "));
        }
        let _ = write!(summary, ", {bytes} bytes, {:.3} s", wall.as_secs_f64());
        if answered == 0 {
            tracing::error!("{summary}; nothing to deliver");
        } else {
            let manifest = Manifest {
                round: staged.name().to_owned(),
                host: self.settings.hostname.clone(),
                epoch,
                targets: entries,
                failed: failed.clone(),
                wall_clock_seconds: wall.as_secs_f64(),
                ..Manifest::default()
            };
            write_durably(&staged.path().join(spool::MANIFEST_FILE), manifest.to_text().as_bytes()).await?;
            let delivered = self.spool.deliver(staged)?;
            tracing::info!("{summary} -> {}", delivered.display());
        }
        Ok(RoundReport {
            targets: targets.len(),
            failed,
        })
    }

    /// This round's targets: `socket-dir` scanned now, then `servers`.
    fn targets(&mut self) -> Vec<Target> {
        let mut endpoints = Vec::new();
        if let Some(dir) = self.settings.socket_dir.clone() {
            let subject = format!("socket-dir {}", dir.display());
            match sockets::discover(&dir) {
                Ok(found) => {
                    let problem = found.sockets.is_empty().then(|| "holds no UNIX socket".to_owned());
                    self.states.record(&subject, problem);
                    for (path, reason) in found.skipped {
                        self.states
                            .record(&format!("{} (skipped)", path.display()), Some(reason));
                    }
                    endpoints.extend(found.sockets.into_iter().map(Endpoint::Unix));
                }
                Err(error) => self.states.record(&subject, Some(format!("cannot be listed: {error}"))),
            }
        }
        endpoints.extend(self.settings.servers.iter().cloned());
        name_targets(endpoints)
    }

    /// Asks every target at once, within `pull-timeout`; the stored byte count
    /// or the problem, per target.
    async fn collect(&self, targets: &[Target], staged: &StagedRound) -> Vec<Result<u64, String>> {
        let permits = std::sync::Arc::new(Semaphore::new(self.settings.workers));
        let mut tasks = JoinSet::new();
        for (index, target) in targets.iter().enumerate() {
            let client = RuntimeClient::new(target.endpoint.clone(), self.settings.client);
            let directory = staged.path().to_owned();
            let name = target.name.clone();
            let permits = std::sync::Arc::clone(&permits);
            tasks.spawn(async move { (index, fetch_target(&client, &directory, &name, &permits).await) });
        }
        let mut outcomes: Vec<Result<u64, String>> =
            vec![Err("round deadline (pull-timeout) reached before it answered".to_owned()); targets.len()];
        let gather = async {
            while let Some(joined) = tasks.join_next().await {
                match joined {
                    Ok((index, outcome)) => outcomes[index] = outcome,
                    Err(error) => tracing::error!("a collection task failed: {error}"),
                }
            }
        };
        match self.settings.pull_timeout {
            Some(deadline) => {
                let _ = tokio::time::timeout(deadline, gather).await;
            }
            None => gather.await,
        }
        tasks.abort_all();
        for (target, outcome) in targets.iter().zip(&outcomes) {
            if outcome.is_err() {
                remove_target_files(staged.path(), &target.name);
            }
        }
        outcomes
    }
}

/// How a spool file is named after its target.
type FileName = fn(&str) -> String;

/// The command, the spool file it goes to, and what its reply starts with.
const COMMANDS: [(&str, FileName, &str); 2] = [
    ("show info", spool::info_file, "Name: "),
    ("show stat", spool::stat_file, "# pxname,"),
];

/// Fetches both replies of one target into `<name>_info` and `<name>_stat`.
async fn fetch_target(
    client: &RuntimeClient,
    directory: &Path,
    name: &str,
    permits: &Semaphore,
) -> Result<u64, String> {
    let fetches = COMMANDS.map(|(command, file, expected_start)| async move {
        let _permit = permits.acquire().await.map_err(|error| error.to_string())?;
        let path = directory.join(file(name));
        fetch_one(client, command, &path, expected_start)
            .await
            .map_err(|problem| format!("{command}: {problem}"))
    });
    let [info, stat] = fetches;
    let (info, stat) = tokio::join!(info, stat);
    Ok(info? + stat?)
}

async fn fetch_one(client: &RuntimeClient, command: &str, path: &Path, expected_start: &str) -> Result<u64, String> {
    let mut file = create_in_round(path).map_err(|error| format!("cannot create {}: {error}", path.display()))?;
    let transfer: Transfer = client
        .send_to(command, &mut file)
        .await
        .map_err(|error| error.kind.to_string())?;
    if !transfer.first_line.starts_with(expected_start) {
        return Err(format!("unexpected reply: {:?}", transfer.first_line));
    }
    if !transfer.complete {
        return Err(format!(
            "reply cut short after {} bytes (no final empty line)",
            transfer.bytes
        ));
    }
    file.sync_all()
        .await
        .map_err(|error| format!("cannot fsync {}: {error}", path.display()))?;
    Ok(transfer.bytes)
}

fn remove_target_files(directory: &Path, name: &str) {
    for (_, file, _) in COMMANDS {
        let _ = std::fs::remove_file(directory.join(file(name)));
    }
}

/// Creates a file in the staged round on the runtime's own thread, not in
/// the blocking pool as `tokio::fs::File::create` would: a cancelled round
/// removes its directory when it is dropped, and a create still pending in
/// the pool could land after that removal and leave the directory behind in
/// `tmp-dst-dir`. Later writes go to the open file and add no entry.
fn create_in_round(path: &Path) -> std::io::Result<tokio::fs::File> {
    std::fs::File::create(path).map(tokio::fs::File::from_std)
}

async fn write_durably(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut file = create_in_round(path).with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(bytes).await?;
    file.sync_all().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The unit under dist/ lets pull write where its defaults are.
    #[test]
    fn the_systemd_unit_allows_the_default_spool() {
        let unit = include_str!("../../../../dist/systemd/haproxide-pull.service");
        let config = Config::builtin();
        let dst_dir = config.get(&SECTION, &DST_DIR).unwrap();
        let tmp_dst_dir = config.get(&SECTION, &TMP_DST_DIR).unwrap();
        crate::runtime::assert_unit_writes(unit, [tmp_dst_dir, spool::last_round_file(&dst_dir), dst_dir]);
    }

    #[test]
    fn states_persist_across_rounds_while_recorded() {
        let mut states = StateLog::default();
        states.record("socket-dir /run", Some("holds no UNIX socket".into()));
        states.record("/run/a.sock", None);
        states.end_round();
        states.record("socket-dir /run", Some("holds no UNIX socket".into()));
        states.end_round();
        assert_eq!(
            states.last.get("socket-dir /run"),
            Some(&Some("holds no UNIX socket".to_owned()))
        );
        assert!(
            !states.last.contains_key("/run/a.sock"),
            "a socket gone from the directory is forgotten"
        );
    }

    #[test]
    fn spool_names_follow_haproxystats_and_never_clash() {
        let endpoints = vec![
            Endpoint::Unix("/run/a/admin.sock".into()),
            Endpoint::Unix("/run/b/admin.sock".into()),
            Endpoint::Unix("/run/haproxy/admin1.sock".into()),
            "tcp://127.0.0.1:5555".parse().unwrap(),
            "tcp://[fe80::1]:4444".parse().unwrap(),
        ];
        let names: Vec<String> = name_targets(endpoints).into_iter().map(|target| target.name).collect();
        assert_eq!(
            names,
            [
                "run_a_admin.sock",
                "run_b_admin.sock",
                "admin1.sock",
                "127.0.0.1:5555",
                "fe80::1:4444"
            ]
        );
    }
}
