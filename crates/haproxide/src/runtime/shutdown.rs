//! How daemons stop: SIGTERM, SIGHUP and SIGINT all mean "stop cleanly".
//!
//! A daemon creates one [`Shutdown`] when it starts (so a signal that arrives
//! while it works is not lost), awaits [`Shutdown::requested`] beside its
//! work, and then gives what is under way a bounded grace period with
//! [`within_grace`].

use std::future::Future;
use std::time::Duration;

use tokio::signal::unix::{Signal, SignalKind, signal};

/// The stop signals, listened to from creation on.
pub struct Shutdown {
    terminate: Signal,
    hangup: Signal,
    interrupt: Signal,
}

impl Shutdown {
    /// Starts listening for SIGTERM, SIGHUP and SIGINT (call within the runtime).
    pub fn listen() -> std::io::Result<Shutdown> {
        Ok(Shutdown {
            terminate: signal(SignalKind::terminate())?,
            hangup: signal(SignalKind::hangup())?,
            interrupt: signal(SignalKind::interrupt())?,
        })
    }

    /// Resolves when one of the stop signals arrives; returns its name.
    pub async fn requested(&mut self) -> &'static str {
        tokio::select! {
            _ = self.terminate.recv() => "SIGTERM",
            _ = self.hangup.recv() => "SIGHUP",
            _ = self.interrupt.recv() => "SIGINT",
        }
    }
}

/// Runs `work` for at most `grace`; `false` when the grace period ran out first.
pub async fn within_grace(grace: Duration, work: impl Future<Output = ()>) -> bool {
    tokio::time::timeout(grace, work).await.is_ok()
}
