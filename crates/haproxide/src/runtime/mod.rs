//! What every daemon of the binary shares at run time: log output
//! ([`logging`]), the signals that stop it ([`shutdown`]), directory
//! watches ([`watch`]), single-instance locks ([`lock`]), systemd
//! notifications ([`notify`]) and a responder for their own HTTP endpoints
//! ([`http`]).

pub mod http;
pub mod lock;
pub mod logging;
pub mod notify;
pub mod shutdown;
pub mod watch;

use std::future::Future;
use std::sync::LockResult;

use crate::config::{Config, LOGLEVEL, Section};

/// Starts logging at `[section] loglevel` and runs `work` to completion on a
/// single-threaded runtime: the daemons' work is I/O, and CPU-heavy parts
/// (aggregation) run on threads of their own.
pub fn run_daemon<T>(
    config: &Config,
    section: &Section,
    work: impl Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    logging::init(config.get(section, &LOGLEVEL)?);
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(work)
}

/// The guard of a lock, even one a panicking thread poisoned: that is a bug,
/// logged as one naming `what` the lock guards, and the state is used as the
/// panicking code left it rather than skipping the update silently.
pub fn unpoisoned<Guard>(locked: LockResult<Guard>, what: &str) -> Guard {
    locked.unwrap_or_else(|poisoned| {
        tracing::error!("bug: a task panicked while updating {what}; going on with its state");
        poisoned.into_inner()
    })
}

/// Whether the tests asked for the failpoint `name` (`HAPROXIDE_FAILPOINT`):
/// a debug build then wedges where a bug could, for the watchdog tests.
/// Always `false` in release builds.
pub fn failpoint(name: &str) -> bool {
    cfg!(debug_assertions) && std::env::var("HAPROXIDE_FAILPOINT").is_ok_and(|set| set == name)
}

/// How a problem that is logged only when it changes has moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemChange {
    /// There is a problem now, and it is not the one there was (if any).
    Began,
    /// The problem there was is gone.
    Ended,
    /// As it was.
    Unchanged,
}

/// Puts `now` (`None`: fine) in `last` and says how it moved from what was
/// there: what pull's sockets and spool and the agent's sources log on.
pub fn note_problem(last: &mut Option<String>, now: Option<String>) -> ProblemChange {
    let change = match (&*last, &now) {
        (previous, Some(problem)) if previous.as_ref() != Some(problem) => ProblemChange::Began,
        (Some(_), None) => ProblemChange::Ended,
        _ => ProblemChange::Unchanged,
    };
    *last = now;
    change
}

/// Asserts that the systemd unit `unit` (its text) lets its daemon write
/// each of `paths`: each lies in a directory its `RuntimeDirectory=` (under
/// `/run`), `StateDirectory=` (under `/var/lib`) or `ReadWritePaths=` names,
/// as `ProtectSystem=strict` leaves nothing else writable. For the tests that
/// hold each daemon's default paths against its unit in `dist/systemd`.
#[cfg(test)]
pub fn assert_unit_writes(unit: &str, paths: impl IntoIterator<Item = std::path::PathBuf>) {
    let mut writable = Vec::new();
    for line in unit.lines() {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let root = match key {
            "RuntimeDirectory" => "/run",
            "StateDirectory" => "/var/lib",
            "ReadWritePaths" => "/",
            _ => continue,
        };
        writable.extend(value.split_whitespace().map(|dir| std::path::Path::new(root).join(dir)));
    }
    for path in paths {
        assert!(
            writable.iter().any(|dir| path.starts_with(dir)),
            "{} is outside {writable:?}",
            path.display()
        );
    }
}
