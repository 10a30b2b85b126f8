//! What every daemon of the binary shares at run time: log output
//! ([`logging`]) and the signals that stop it ([`shutdown`]).

pub mod logging;
pub mod shutdown;

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
