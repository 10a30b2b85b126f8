//! systemd's notification protocol (`sd_notify`): `READY=1` once a daemon
//! really serves, `WATCHDOG=1` pings while it makes progress, `STOPPING=1`
//! when it stops. Without `NOTIFY_SOCKET` (not run by systemd) nothing is
//! sent. Daemons show progress with [`Heartbeat`]s, which a [`Supervisor`]
//! turns into those notifications.

use std::os::unix::net::UnixDatagram;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::runtime::{ProblemChange, note_problem};

/// Sends `state` (`READY=1`, `WATCHDOG=1`, …) to systemd, if it listens.
pub fn notify(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let sent = UnixDatagram::unbound().and_then(|socket| {
        let bytes = path.as_encoded_bytes();
        match bytes.strip_prefix(b"@") {
            Some(name) => {
                use std::os::linux::net::SocketAddrExt;
                let address = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
                socket.send_to_addr(state.as_bytes(), &address)
            }
            None => socket.send_to(state.as_bytes(), &path),
        }
    });
    if let Err(error) = sent {
        tracing::warn!("cannot notify systemd ({state}) on {}: {error}", path.to_string_lossy());
    }
}

/// How often systemd wants `WATCHDOG=1` (half its `WatchdogSec`), when it
/// watches this process.
pub fn watchdog_interval() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    if let Some(pid) = std::env::var("WATCHDOG_PID")
        .ok()
        .and_then(|pid| pid.parse::<u32>().ok())
        && pid != std::process::id()
    {
        return None;
    }
    (usec > 0).then(|| Duration::from_micros(usec / 2))
}

/// A loop's proof of progress: it beats each time it comes round, and is
/// stalled once silent for longer than its allowance. Until its first beat
/// it is not ready (and not stalled: starting is not wedging).
#[derive(Debug)]
pub struct Heartbeat {
    name: String,
    /// `None`: the loop waits on events that may never come, so silence is
    /// no stall; it still says when it is ready.
    allowance: Option<Duration>,
    origin: Instant,
    /// Milliseconds since `origin` of the last beat, plus one (0: none yet).
    last: AtomicU64,
}

impl Heartbeat {
    /// A heartbeat called `name` in the log, stalled after `allowance`.
    pub fn new(name: impl Into<String>, allowance: Option<Duration>) -> Heartbeat {
        Heartbeat {
            name: name.into(),
            allowance,
            origin: Instant::now(),
            last: AtomicU64::new(0),
        }
    }

    /// The loop came round.
    pub fn beat(&self) {
        let now = u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX - 1);
        self.last.store(now + 1, Ordering::Relaxed);
    }

    /// Whether it has beaten at least once.
    pub fn has_beaten(&self) -> bool {
        self.last.load(Ordering::Relaxed) > 0
    }

    /// Whether it beat once, then fell silent for longer than its allowance.
    pub fn is_stalled(&self) -> bool {
        let last = self.last.load(Ordering::Relaxed);
        let Some(allowance) = self.allowance else {
            return false;
        };
        last > 0 && self.origin.elapsed().saturating_sub(Duration::from_millis(last - 1)) > allowance
    }

    /// What the log calls it.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// How often the supervisor looks before the daemon is ready.
const READY_POLL: Duration = Duration::from_millis(50);
/// How often it looks for stalls when no watchdog asks for pings.
const UNWATCHED_POLL: Duration = Duration::from_secs(1);

/// A daemon's dealings with systemd: `READY=1` once every heartbeat has
/// beaten (the daemon serves), then `WATCHDOG=1` every half `WatchdogSec`
/// while none is stalled. Stalls are logged when they begin and end,
/// watched or not. The task runs on the daemon's own runtime, so a wedged
/// runtime thread stops the pings too.
pub struct Supervisor {
    task: tokio::task::JoinHandle<()>,
}

impl Supervisor {
    /// Supervises `heartbeats` (call within the runtime).
    pub fn heartbeats(heartbeats: Vec<Arc<Heartbeat>>) -> Supervisor {
        let ready_beats = heartbeats.clone();
        Supervisor::start(
            move || ready_beats.iter().all(|beat| beat.has_beaten()),
            move || {
                heartbeats
                    .iter()
                    .filter(|beat| beat.is_stalled())
                    .map(|beat| beat.name().to_owned())
                    .collect()
            },
        )
    }

    /// Supervises a daemon whose readiness and stalls `is_ready` and
    /// `stalled` tell (call within the runtime).
    pub fn start(
        is_ready: impl Fn() -> bool + Send + 'static,
        stalled: impl Fn() -> Vec<String> + Send + 'static,
    ) -> Supervisor {
        let task = tokio::spawn(async move {
            while !is_ready() {
                tokio::time::sleep(READY_POLL).await;
            }
            notify("READY=1");
            let watchdog = watchdog_interval();
            let mut ping = tokio::time::interval(watchdog.unwrap_or(UNWATCHED_POLL));
            let mut problem = None;
            loop {
                ping.tick().await;
                let stalled = stalled();
                let now = (!stalled.is_empty()).then(|| stalled.join(", "));
                match note_problem(&mut problem, now) {
                    ProblemChange::Began => tracing::error!(
                        "stalled: {}; not telling the watchdog that all is well",
                        problem.as_deref().unwrap_or_default()
                    ),
                    ProblemChange::Ended => tracing::info!("every part makes progress again"),
                    ProblemChange::Unchanged => {}
                }
                if problem.is_none() && watchdog.is_some() {
                    notify("WATCHDOG=1");
                }
            }
        });
        Supervisor { task }
    }

    /// The daemon stops: `STOPPING=1`, and no more pings.
    pub fn stopping(self) {
        notify("STOPPING=1");
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_heartbeat_is_ready_after_its_first_beat_and_stalled_after_its_allowance() {
        let beat = Heartbeat::new("rounds", Some(Duration::from_millis(30)));
        assert!(!beat.has_beaten());
        std::thread::sleep(Duration::from_millis(40));
        assert!(!beat.is_stalled(), "not beaten yet: starting, not stalled");
        beat.beat();
        assert!(beat.has_beaten());
        assert!(!beat.is_stalled());
        std::thread::sleep(Duration::from_millis(40));
        assert!(beat.is_stalled());
        beat.beat();
        assert!(!beat.is_stalled());

        let events = Heartbeat::new("template", None);
        events.beat();
        std::thread::sleep(Duration::from_millis(40));
        assert!(!events.is_stalled(), "no allowance: silence is no stall");
    }
}
