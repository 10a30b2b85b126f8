//! A receiver of systemd's notifications (`sd_notify(3)`): the unix datagram
//! socket a daemon finds in `NOTIFY_SOCKET`, each datagram one or more
//! newline-separated `KEY=VALUE` assignments. systemd is not PID 1 where the
//! tests run, so this socket stands in for it, following that protocol.

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A bound notification socket and what it received.
pub struct NotifySocket {
    socket: UnixDatagram,
    path: PathBuf,
}

impl NotifySocket {
    /// Binds `notify.sock` in `dir`.
    pub fn bind(dir: &Path) -> NotifySocket {
        let path = dir.join("notify.sock");
        let socket = UnixDatagram::bind(&path).unwrap();
        socket.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        NotifySocket { socket, path }
    }

    /// What to put in `NOTIFY_SOCKET`.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn receive_until(&self, until: Instant, stop_at: Option<&str>) -> Vec<String> {
        let mut states = Vec::new();
        let mut buffer = [0u8; 4096];
        while Instant::now() < until {
            if let Ok(length) = self.socket.recv(&mut buffer) {
                let text = String::from_utf8_lossy(&buffer[..length]).into_owned();
                for state in text.lines() {
                    states.push(state.to_owned());
                    if Some(state) == stop_at {
                        return states;
                    }
                }
            }
        }
        states
    }

    /// Every assignment received within `span`, in order.
    pub fn receive_for(&self, span: Duration) -> Vec<String> {
        self.receive_until(Instant::now() + span, None)
    }

    /// The assignments received until `state` (included), which must come
    /// within `limit`.
    pub fn wait_for(&self, state: &str, limit: Duration) -> Vec<String> {
        let states = self.receive_until(Instant::now() + limit, Some(state));
        assert_eq!(
            states.last().map(String::as_str),
            Some(state),
            "no {state} within {limit:?}: {states:?}"
        );
        states
    }

    /// Receives for `span`: nothing but `WATCHDOG=1` may come, and it must
    /// come at least `at_least` times (a healthy daemon's pings).
    pub fn expect_pings(&self, span: Duration, at_least: usize) {
        let states = self.receive_for(span);
        assert!(
            states.len() >= at_least && states.iter().all(|state| state == "WATCHDOG=1"),
            "not {at_least} or more pings alone within {span:?}: {states:?}"
        );
    }

    /// After a stop signal: `STOPPING=1`, and nothing else, must come.
    pub fn expect_stopping(&self) {
        assert_eq!(self.receive_for(Duration::from_millis(200)), ["STOPPING=1"]);
    }
}
