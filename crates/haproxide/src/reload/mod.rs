//! `reload`: a hitless HAProxy reload that is validated first and says
//! whether the new configuration really serves.
//!
//! The steps, each reported as it ends ([`report`]):
//! 1. **lock** — one reload of a HAProxy at a time ([`lock`]); with
//!    `min-interval`, a burst of requests is coalesced into one reload.
//! 2. **validate** — `haproxy -c -f …`; on failure HAProxy's own lines are
//!    printed and nothing is changed.
//! 3. **state** — `show servers state` saved to the state file, so runtime
//!    changes survive ([`state`]).
//! 4. **reload** — by the configured [`Method`].
//! 5. **verify** — a new process serves and answers with its PID, or HAProxy
//!    kept the previous configuration ([`observe`]); old workers beyond
//!    `max-old-workers` are stopped.
//!
//! Exit status: 0 reloaded (or coalesced, or valid with `--check`), 1
//! nothing was changed (invalid configuration, HAProxy unreachable, …), 2
//! the reload failed and the previous configuration still serves.
//!
//! [`reload`] is the library entry point the `backends` feature calls.

pub mod lock;
pub mod method;
mod observe;
pub mod report;
mod state;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use haproxy::{ErrorKind, ReloadAnswer};

use crate::config::declare::{self, Parser};
use crate::config::{Config, ConfigError, DefaultValue, Key, Section};
use crate::runtime::shutdown::Shutdown;
use lock::{LastReload, ReloadLock, now_ms};
pub use method::Method;
use observe::{Observer, Snapshot, Verdict};
pub use report::{Format, Report, Step};
pub use state::save as save_servers_state;

/// `[reload] method`.
pub const METHOD: Key<Method> = Key::new(
    "method",
    Parser {
        kind: "master, systemd, binary or signal",
        parse: Method::from_name,
    },
    DefaultValue::Builtin("master"),
    "how to reload: `reload` on the master CLI, `systemctl reload`, a new standalone process (`-D -p -x -sf`), or SIGUSR2 to the master",
);
/// `[reload] master-socket`.
pub const MASTER_SOCKET: Key<PathBuf> = Key::new(
    "master-socket",
    declare::PATH,
    DefaultValue::Builtin("/run/haproxy-master.sock"),
    "the master CLI socket (`-S`): where `master` reloads, and where the workers are seen for `master`, `signal` and `systemd`",
);
/// `[reload] unit`.
pub const UNIT: Key<String> = Key::new(
    "unit",
    declare::TEXT,
    DefaultValue::Builtin("haproxy.service"),
    "the systemd unit `method = systemd` reloads",
);
/// `[reload] haproxy`.
pub const HAPROXY: Key<PathBuf> = Key::new(
    "haproxy",
    declare::PATH,
    DefaultValue::Builtin("/usr/sbin/haproxy"),
    "the HAProxy binary that validates the configuration (and runs it, for `binary`)",
);
/// `[reload] config`.
pub const CONFIG: Key<Vec<PathBuf>> = Key::new(
    "config",
    declare::PATH_LIST,
    DefaultValue::Builtin("/etc/haproxy/haproxy.cfg"),
    "HAProxy's configuration, as its `-f` arguments: files, and directories of `*.cfg` files",
);
/// `[reload] pid-file`.
pub const PID_FILE: Key<PathBuf> = Key::new(
    "pid-file",
    declare::PATH,
    DefaultValue::Builtin("/run/haproxy.pid"),
    "HAProxy's pid file (`-p`): the processes `binary` replaces, the master `signal` signals; the lock file sits beside it except for `master`",
);
/// `[reload] stats-socket`.
pub const STATS_SOCKET: Key<PathBuf> = Key::new(
    "stats-socket",
    declare::PATH,
    DefaultValue::Unset("the master CLI is asked instead; `binary` runs without `-x`"),
    "a stats socket with `expose-fd listeners`: `binary` takes the listeners over through it (`-x`), and the new process must answer on it",
);
/// `[reload] timeout`.
pub const TIMEOUT: Key<Duration> = Key::new(
    "timeout",
    declare::POSITIVE_SECONDS,
    DefaultValue::Builtin("10"),
    "seconds each step may take: validation, the reload itself, and the wait for the new worker",
);
/// `[reload] state-file`.
pub const STATE_FILE: Key<PathBuf> = Key::new(
    "state-file",
    declare::PATH,
    DefaultValue::Unset("HAProxy's global `server-state-file`, when its configuration has one; else no state is saved"),
    "where `show servers state` is written just before the reload, for `load-server-state-from-file`",
);
/// `[reload] min-interval`.
pub const MIN_INTERVAL: Key<Duration> = Key::new(
    "min-interval",
    declare::SECONDS,
    DefaultValue::Builtin("0"),
    "seconds between reloads: a reload asked for sooner waits, and one reload serves everyone who asked meanwhile (0: no coalescing)",
);
/// `[reload] max-old-workers`.
pub const MAX_OLD_WORKERS: Key<u32> = Key::new(
    "max-old-workers",
    declare::COUNT_FROM_0,
    DefaultValue::Unset("no limit: old workers leave when their connections end (or at HAProxy's `hard-stop-after`)"),
    "old workers still finishing connections that may remain after a reload; the oldest beyond it are stopped (SIGTERM)",
);

/// `[reload]`.
pub const SECTION: Section = Section::of(
    "reload",
    "how `reload` validates, reloads and verifies HAProxy; every key is also a flag",
    &[
        &METHOD,
        &MASTER_SOCKET,
        &UNIT,
        &HAPROXY,
        &CONFIG,
        &PID_FILE,
        &STATS_SOCKET,
        &TIMEOUT,
        &STATE_FILE,
        &MIN_INTERVAL,
        &MAX_OLD_WORKERS,
    ],
);

/// The `[reload]` section as flags of the `reload` command line.
#[derive(Debug, Clone, Copy)]
pub struct Flags;

impl crate::config::flags::FlagSection for Flags {
    const SECTION: &'static Section = &SECTION;
}

/// `[reload]`, typed.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// How to reload.
    pub method: Method,
    /// The master CLI socket.
    pub master_socket: PathBuf,
    /// The systemd unit.
    pub unit: String,
    /// The HAProxy binary.
    pub haproxy: PathBuf,
    /// HAProxy's `-f` arguments.
    pub config: Vec<PathBuf>,
    /// HAProxy's pid file.
    pub pid_file: PathBuf,
    /// A stats socket with `expose-fd listeners`.
    pub stats_socket: Option<PathBuf>,
    /// The bound on each step.
    pub timeout: Duration,
    /// Where the servers' state is saved (else HAProxy's own setting).
    pub state_file: Option<PathBuf>,
    /// Coalescing window.
    pub min_interval: Duration,
    /// Old workers allowed to remain.
    pub max_old_workers: Option<u32>,
}

impl Settings {
    /// Reads `[reload]`.
    pub fn from_config(config: &Config) -> Result<Settings, ConfigError> {
        Ok(Settings {
            method: config.get(&SECTION, &METHOD)?,
            master_socket: config.get(&SECTION, &MASTER_SOCKET)?,
            unit: config.get(&SECTION, &UNIT)?,
            haproxy: config.get(&SECTION, &HAPROXY)?,
            config: config.get(&SECTION, &CONFIG)?,
            pid_file: config.get(&SECTION, &PID_FILE)?,
            stats_socket: config.get_opt(&SECTION, &STATS_SOCKET)?,
            timeout: config.get(&SECTION, &TIMEOUT)?,
            state_file: config.get_opt(&SECTION, &STATE_FILE)?,
            min_interval: config.get(&SECTION, &MIN_INTERVAL)?,
            max_old_workers: config.get_opt(&SECTION, &MAX_OLD_WORKERS)?,
        })
    }

    /// The lock file: beside the master socket for `master`, else beside the pid file.
    pub fn lock_path(&self) -> PathBuf {
        let beside = match self.method {
            Method::Master => &self.master_socket,
            Method::Systemd | Method::Binary | Method::Signal => &self.pid_file,
        };
        let mut name = beside.file_name().unwrap_or_default().to_owned();
        name.push(".lock");
        beside.with_file_name(name)
    }

    fn stats_client(&self) -> Option<haproxy::RuntimeClient> {
        self.stats_socket
            .as_deref()
            .map(|path| observe::client(path, self.timeout))
    }

    /// Where the processes are watched, for this method.
    fn observer(&self) -> Result<Observer, String> {
        let master = || Observer::Master(observe::client(&self.master_socket, self.timeout));
        match self.method {
            Method::Master => Ok(master()),
            Method::Binary => Ok(Observer::PidFile {
                path: self.pid_file.clone(),
                stats: self.stats_client(),
            }),
            Method::Signal | Method::Systemd if self.master_socket.exists() => Ok(master()),
            Method::Signal | Method::Systemd => self.stats_client().map(Observer::Stats).ok_or_else(|| {
                format!(
                    "method {} needs a master-socket ({} does not exist) or a stats-socket to see the new worker",
                    self.method.name(),
                    self.master_socket.display()
                )
            }),
        }
    }
}

/// How a reload ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// `--check`: the configuration is valid.
    Valid,
    /// New processes serve the new configuration.
    Reloaded {
        /// The new processes.
        new: Vec<u32>,
        /// Processes of earlier configurations still finishing.
        leaving: Vec<u32>,
    },
    /// A reload that began after this one was asked for covered it.
    Coalesced {
        /// The `haproxide` process that did that reload.
        by: u32,
    },
    /// HAProxy rejects the configuration; nothing was changed.
    Invalid,
    /// The reload failed; the previous configuration still serves.
    Kept(String),
    /// Nothing was done, for this reason.
    Failed(String),
    /// A stop signal arrived first.
    Interrupted(&'static str),
}

impl Outcome {
    /// The exit status it means.
    pub fn exit_code(&self) -> u8 {
        match self {
            Outcome::Valid | Outcome::Reloaded { .. } | Outcome::Coalesced { .. } => 0,
            Outcome::Invalid | Outcome::Failed(_) | Outcome::Interrupted(_) => 1,
            Outcome::Kept(_) => 2,
        }
    }

    /// One sentence saying how it ended.
    pub fn summary(&self) -> String {
        match self {
            Outcome::Valid => "the configuration is valid".into(),
            Outcome::Reloaded { new, leaving } => format!(
                "reloaded: {} {} serves the new configuration; {} old {} still finishing connections",
                plural(new.len(), "worker", "workers"),
                pids(new),
                leaving.len(),
                plural(leaving.len(), "worker", "workers"),
            ),
            Outcome::Coalesced { by } => format!("the reload by haproxide pid {by} covered this request"),
            Outcome::Invalid => "the configuration is invalid; nothing was changed".into(),
            Outcome::Kept(why) => format!("reload failed, the previous configuration is still serving: {why}"),
            Outcome::Failed(why) => format!("nothing was reloaded: {why}"),
            Outcome::Interrupted(signal) => {
                format!("stopped by {signal}; a reload already sent to HAProxy is not undone, and was not verified")
            }
        }
    }
}

fn plural(count: usize, one: &'static str, many: &'static str) -> &'static str {
    if count == 1 { one } else { many }
}

fn pids(pids: &[u32]) -> String {
    let listed: Vec<String> = pids.iter().map(u32::to_string).collect();
    if listed.is_empty() {
        "none".into()
    } else {
        listed.join(", ")
    }
}

/// `haproxide reload`: runs [`reload`] on `config`'s `[reload]`, stops on
/// SIGTERM, SIGHUP or SIGINT, and ends with a `result` line.
pub fn main(config: &Config, check_only: bool, format: Format) -> anyhow::Result<ExitCode> {
    let settings = Settings::from_config(config)?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let mut shutdown = Shutdown::listen()?;
        let mut report = Report::stdout(format);
        let outcome = tokio::select! {
            outcome = reload(&settings, check_only, &mut report) => outcome,
            signal = shutdown.requested() => Outcome::Interrupted(signal),
        };
        let code = outcome.exit_code();
        let mut result = Step::new("result", Instant::now(), code == 0, outcome.summary()).field("exit", code);
        if let Outcome::Reloaded { new, leaving } = &outcome {
            result = result.field("pids", new.clone()).field("old_pids", leaving.clone());
        }
        report.step(result);
        Ok(ExitCode::from(code))
    })
}

/// Validates, and unless `check_only`, reloads and verifies, reporting each
/// step to `report`.
pub async fn reload(settings: &Settings, check_only: bool, report: &mut Report) -> Outcome {
    if check_only {
        return validate(settings, report).await.err().unwrap_or(Outcome::Valid);
    }
    let asked_ms = now_ms();
    let started = Instant::now();
    let lock_path = settings.lock_path();
    let (lock, acquired) = match ReloadLock::acquire(&lock_path).await {
        Ok(taken) => taken,
        Err(error) => {
            report.step(Step::new("lock", started, false, error.clone()));
            return Outcome::Failed(error);
        }
    };
    let mut message = lock_path.display().to_string();
    if acquired.contended {
        let holder = acquired.waited_for.map_or_else(
            || "another reload".to_owned(),
            |pid| format!("the reload by haproxide pid {pid}"),
        );
        message.push_str(&format!(" (waited {} ms for {holder})", acquired.waited.as_millis()));
    }
    report.step(
        Step::new("lock", started, true, message)
            .field("waited", acquired.contended)
            .field(
                "waited_ms",
                u64::try_from(acquired.waited.as_millis()).unwrap_or(u64::MAX),
            )
            .field("waited_for", acquired.waited_for),
    );
    if let Some(outcome) = coalesce(settings, lock.last(), asked_ms, report).await {
        return outcome;
    }
    let began_ms = now_ms();
    let outcome = reload_locked(settings, report).await;
    let last = LastReload {
        pid: std::process::id(),
        started_ms: began_ms,
        finished_ms: now_ms(),
        ok: matches!(outcome, Outcome::Reloaded { .. }),
    };
    if let Err(error) = lock.finish(last) {
        report.step(Step::new("lock", Instant::now(), false, error));
    }
    outcome
}

/// With `min-interval`: ends the request when a reload that began after it
/// was asked for served it, else waits out the interval since the last one.
async fn coalesce(
    settings: &Settings,
    last: Option<&LastReload>,
    asked_ms: u64,
    report: &mut Report,
) -> Option<Outcome> {
    let interval_ms = u64::try_from(settings.min_interval.as_millis()).unwrap_or(u64::MAX);
    let last = last.filter(|_| interval_ms > 0)?;
    let started = Instant::now();
    if last.ok && last.started_ms >= asked_ms {
        report.step(Step::new(
            "coalesce",
            started,
            true,
            format!(
                "the reload by haproxide pid {} began after this one was asked for, and serves it",
                last.pid
            ),
        ));
        return Some(Outcome::Coalesced { by: last.pid });
    }
    let due_ms = last.finished_ms.saturating_add(interval_ms);
    let wait_ms = due_ms.saturating_sub(now_ms());
    if wait_ms > 0 {
        tokio::time::sleep(Duration::from_millis(wait_ms)).await;
        report.step(Step::new(
            "coalesce",
            started,
            true,
            format!(
                "waited {wait_ms} ms: min-interval is {} s since the last reload",
                settings.min_interval.as_secs_f64()
            ),
        ));
    }
    None
}

async fn reload_locked(settings: &Settings, report: &mut Report) -> Outcome {
    if let Err(outcome) = validate(settings, report).await {
        return outcome;
    }
    let observer = match settings.observer() {
        Ok(observer) => observer,
        Err(error) => return failed(report, "reload", Instant::now(), error),
    };
    let started = Instant::now();
    let before = match observer.snapshot().await {
        Ok(before) if !before.serving.is_empty() => before,
        Ok(_) => {
            return failed(
                report,
                "reload",
                started,
                "no HAProxy process is running: nothing to reload".into(),
            );
        }
        Err(error) => {
            return failed(
                report,
                "reload",
                started,
                format!("cannot see the running HAProxy: {error}"),
            );
        }
    };
    if let Err(outcome) = save_state(settings, &observer, report).await {
        return outcome;
    }
    if let Err(outcome) = trigger(settings, &before, report).await {
        return outcome;
    }
    verify(settings, &observer, &before, report).await
}

fn failed(report: &mut Report, step: &'static str, started: Instant, error: String) -> Outcome {
    report.step(Step::new(step, started, false, error.clone()));
    Outcome::Failed(error)
}

async fn validate(settings: &Settings, report: &mut Report) -> Result<(), Outcome> {
    let started = Instant::now();
    let argv = method::validate_argv(&settings.haproxy, &settings.config);
    let files = settings
        .config
        .iter()
        .map(|path| path.display().to_string())
        .collect::<Vec<_>>()
        .join(" ");
    match method::run_program(&argv, settings.timeout).await {
        Ok(done) if done.succeeded() => {
            let warnings: Vec<String> = done
                .lines
                .into_iter()
                .filter(|line| line.contains("[WARNING]"))
                .collect();
            let message = format!(
                "{files} is valid ({} {})",
                warnings.len(),
                plural(warnings.len(), "warning", "warnings")
            );
            report.step(Step::new("validate", started, true, message).lines(warnings));
            Ok(())
        }
        Ok(done) => {
            let code = done.code.map_or_else(|| "a signal".to_owned(), |code| code.to_string());
            let message = format!("HAProxy rejects {files} (haproxy -c exited {code}); nothing was changed");
            report.step(
                Step::new("validate", started, false, message)
                    .lines(done.lines)
                    .field("exit_code", done.code),
            );
            Err(Outcome::Invalid)
        }
        Err(error) => Err(failed(report, "validate", started, error)),
    }
}

async fn save_state(settings: &Settings, observer: &Observer, report: &mut Report) -> Result<(), Outcome> {
    let started = Instant::now();
    let path = match &settings.state_file {
        Some(path) => Some(path.clone()),
        None => haproxy::cfg::config_files(&settings.config)
            .and_then(|files| haproxy::cfg::server_state_file(&files))
            .map_err(|error| {
                failed(
                    report,
                    "state",
                    started,
                    format!("cannot read HAProxy's configuration: {error}"),
                )
            })?,
    };
    let Some(path) = path else {
        report.step(Step::new(
            "state",
            started,
            true,
            "not saved: neither state-file nor HAProxy's server-state-file is set",
        ));
        return Ok(());
    };
    if path.is_relative() {
        return Err(failed(
            report,
            "state",
            started,
            format!(
                "HAProxy's server-state-file {} is relative to where HAProxy runs; set state-file to its full path",
                path.display()
            ),
        ));
    }
    let stats = settings.stats_client();
    let Some((client, prefix)) = observer.state_source(stats.as_ref()) else {
        return Err(failed(
            report,
            "state",
            started,
            "no socket to ask for `show servers state`: set stats-socket".into(),
        ));
    };
    match state::save(client, prefix, &path).await {
        Ok(servers) => {
            report.step(
                Step::new(
                    "state",
                    started,
                    true,
                    format!(
                        "saved the state of {servers} {} to {}",
                        plural(servers, "server", "servers"),
                        path.display()
                    ),
                )
                .field("servers", servers),
            );
            Ok(())
        }
        Err(error) => Err(failed(
            report,
            "state",
            started,
            format!("cannot save the servers' state, so HAProxy is not reloaded: {error}"),
        )),
    }
}

async fn trigger(settings: &Settings, before: &Snapshot, report: &mut Report) -> Result<(), Outcome> {
    let started = Instant::now();
    let was = format!("serving before: {}", pids(&before.serving));
    let step =
        |ok, message: String| Step::new("reload", started, ok, message).field("old_pids", before.serving.clone());
    match settings.method {
        Method::Master => {
            let master = observe::client(&settings.master_socket, settings.timeout);
            let answer = match master.send("reload").await {
                Ok(reply) => ReloadAnswer::parse(&reply.text()),
                // HAProxy 1.9–2.6 close the connection without a word.
                Err(error) if matches!(error.kind, ErrorKind::EmptyReply) => Ok(ReloadAnswer {
                    success: None,
                    startup_log: Vec::new(),
                }),
                Err(error) => return Err(failed(report, "reload", started, error.to_string())),
            };
            match answer {
                Ok(ReloadAnswer {
                    success: Some(false),
                    startup_log,
                }) => {
                    let why = "the master answered Success=0".to_owned();
                    report.step(step(false, why.clone()).lines(startup_log));
                    Err(Outcome::Kept(why))
                }
                Ok(answer) => {
                    let said = match answer.success {
                        Some(_) => "the master answered Success=1",
                        None => "sent to the master (HAProxy before 2.7 does not answer)",
                    };
                    let notable = answer
                        .startup_log
                        .into_iter()
                        .filter(|line| line.contains("[WARNING]") || line.contains("[ALERT]"))
                        .collect();
                    report.step(step(true, format!("{said}; {was}")).lines(notable));
                    Ok(())
                }
                Err(refused) => Err(failed(report, "reload", started, refused.to_string())),
            }
        }
        Method::Systemd => {
            let argv = method::systemctl_argv(&settings.unit);
            run_reloader(
                &argv,
                settings.timeout,
                &format!("systemctl reload {}", settings.unit),
                &was,
                report,
                step,
            )
            .await
        }
        Method::Binary => {
            let argv = method::binary_argv(
                &settings.haproxy,
                &settings.config,
                &settings.pid_file,
                settings.stats_socket.as_deref(),
                &before.serving,
            );
            run_reloader(&argv, settings.timeout, "the new HAProxy process", &was, report, step).await
        }
        Method::Signal => {
            let master = observe::read_pid_file(&settings.pid_file)
                .map_err(|error| failed(report, "reload", started, error))?
                .first()
                .copied()
                .ok_or_else(|| {
                    let error = format!("{} holds no PID", settings.pid_file.display());
                    failed(report, "reload", started, error)
                })?;
            let target = i32::try_from(master).map(nix::unistd::Pid::from_raw);
            match target.map(|pid| nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGUSR2)) {
                Ok(Ok(())) => {
                    report.step(step(true, format!("SIGUSR2 sent to the master, PID {master}; {was}")));
                    Ok(())
                }
                Ok(Err(errno)) => Err(failed(
                    report,
                    "reload",
                    started,
                    format!("cannot signal PID {master}: {}", errno.desc()),
                )),
                Err(_) => Err(failed(
                    report,
                    "reload",
                    started,
                    format!("PID {master} is out of range"),
                )),
            }
        }
    }
}

/// Runs a program that reloads; its failure means HAProxy kept what ran.
async fn run_reloader(
    argv: &[std::ffi::OsString],
    timeout: Duration,
    what: &str,
    was: &str,
    report: &mut Report,
    step: impl Fn(bool, String) -> Step,
) -> Result<(), Outcome> {
    let done = method::run_program(argv, timeout)
        .await
        .map_err(|error| failed(report, "reload", Instant::now(), error))?;
    if done.succeeded() {
        report.step(step(true, format!("{what} exited 0; {was}")));
        return Ok(());
    }
    let code = done.code.map_or_else(|| "a signal".to_owned(), |code| code.to_string());
    let why = format!("{what} exited {code}");
    report.step(step(false, why.clone()).lines(done.lines));
    Err(Outcome::Kept(why))
}

/// How often the processes are looked at while waiting for the new one.
const POLL: Duration = Duration::from_millis(25);

async fn verify(settings: &Settings, observer: &Observer, before: &Snapshot, report: &mut Report) -> Outcome {
    let started = Instant::now();
    loop {
        match observer.verdict(before).await {
            Verdict::Serving { new, leaving } => {
                let message = format!(
                    "new {} {} {} (before: {}); {} old {} still finishing connections",
                    plural(new.len(), "worker", "workers"),
                    pids(&new),
                    plural(new.len(), "serves and answers", "serve and answer"),
                    pids(&before.serving),
                    leaving.len(),
                    plural(leaving.len(), "worker", "workers"),
                );
                report.step(
                    Step::new("verify", started, true, message)
                        .field("pids", new.clone())
                        .field("old_pids", leaving.clone()),
                );
                let leaving = stop_old_workers(settings.max_old_workers, leaving, report);
                return Outcome::Reloaded { new, leaving };
            }
            Verdict::Kept(why) => {
                report.step(Step::new("verify", started, false, why.clone()));
                return Outcome::Kept(why);
            }
            Verdict::Pending(why) if started.elapsed() >= settings.timeout => {
                let still = before.serving.iter().any(|pid| observe::is_running(*pid));
                let why = format!("no new worker within {} s: {why}", settings.timeout.as_secs_f64());
                report.step(Step::new("verify", started, false, why.clone()));
                return if still {
                    Outcome::Kept(why)
                } else {
                    Outcome::Failed(why)
                };
            }
            Verdict::Pending(_) => tokio::time::sleep(POLL).await,
        }
    }
}

/// Stops the oldest of `leaving` beyond `max`; returns those that remain.
fn stop_old_workers(max: Option<u32>, mut leaving: Vec<u32>, report: &mut Report) -> Vec<u32> {
    let Some(max) = max.and_then(|max| usize::try_from(max).ok()) else {
        return leaving;
    };
    if leaving.len() <= max {
        return leaving;
    }
    let started = Instant::now();
    let excess: Vec<u32> = leaving.drain(..leaving.len() - max).collect();
    let mut stopped = Vec::new();
    let mut problems = Vec::new();
    for pid in &excess {
        let signalled = i32::try_from(*pid)
            .map_err(|_| nix::errno::Errno::EINVAL)
            .and_then(|raw| nix::sys::signal::kill(nix::unistd::Pid::from_raw(raw), nix::sys::signal::Signal::SIGTERM));
        match signalled {
            // A worker that left meanwhile is as good as stopped.
            Ok(()) | Err(nix::errno::Errno::ESRCH) => stopped.push(*pid),
            Err(errno) => problems.push(format!("PID {pid}: {}", errno.desc())),
        }
    }
    let message = format!("stopped {} (SIGTERM): max-old-workers is {max}", pids(&stopped));
    report.step(
        Step::new("old-workers", started, problems.is_empty(), message)
            .lines(problems)
            .field("stopped", stopped),
    );
    leaving
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(method: &str) -> Settings {
        use crate::config::flags;
        let command = flags::augment(clap::Command::new("reload"), &SECTION);
        let matches = command.get_matches_from(["reload", "--method", method]);
        let mut config = Config::builtin();
        config.apply_flags(&SECTION, &flags::given(&matches, &SECTION));
        Settings::from_config(&config).unwrap()
    }

    #[test]
    fn the_lock_sits_beside_the_master_socket_or_the_pid_file() {
        assert_eq!(
            settings("master").lock_path(),
            PathBuf::from("/run/haproxy-master.sock.lock")
        );
        for method in ["binary", "signal", "systemd"] {
            assert_eq!(settings(method).lock_path(), PathBuf::from("/run/haproxy.pid.lock"));
        }
    }

    #[test]
    fn exit_codes_say_what_happened() {
        assert_eq!(Outcome::Valid.exit_code(), 0);
        assert_eq!(Outcome::Coalesced { by: 1 }.exit_code(), 0);
        assert_eq!(Outcome::Invalid.exit_code(), 1);
        assert_eq!(Outcome::Interrupted("SIGTERM").exit_code(), 1);
        let kept = Outcome::Kept("the master answered Success=0".into());
        assert_eq!(kept.exit_code(), 2);
        assert_eq!(
            kept.summary(),
            "reload failed, the previous configuration is still serving: the master answered Success=0"
        );
        let reloaded = Outcome::Reloaded {
            new: vec![12],
            leaving: vec![10, 11],
        };
        assert_eq!(
            reloaded.summary(),
            "reloaded: worker 12 serves the new configuration; 2 old workers still finishing connections"
        );
    }
}
