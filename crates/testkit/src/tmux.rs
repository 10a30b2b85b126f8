//! A terminal for tests of terminal programs: a detached session of
//! Debian's tmux on a server of its own (`tmux -L`), of a fixed size, that
//! takes keys (`send-keys`) and shows its screen (`capture-pane`). Dropping
//! it kills the server and what runs in it.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// A tmux server with one session running a command.
pub struct Tmux {
    server: String,
}

impl Tmux {
    /// Runs `command` (argv) in a `width`×`height` terminal, in `dir`.
    pub fn start(dir: &Path, width: u16, height: u16, command: &[&str]) -> Tmux {
        let server = format!(
            "haproxide-test-{}-{}",
            std::process::id(),
            dir.display().to_string().replace('/', "_")
        );
        let tmux = Tmux { server };
        let status = Command::new("tmux")
            .args(["-L", &tmux.server, "-f", "/dev/null", "new-session", "-d", "-x"])
            .arg(width.to_string())
            .arg("-y")
            .arg(height.to_string())
            .arg("-c")
            .arg(dir)
            .args(command)
            .status()
            .expect("tmux (Debian's tmux package)");
        assert!(status.success(), "tmux new-session failed");
        tmux
    }

    fn tmux(&self) -> Command {
        let mut command = Command::new("tmux");
        command.args(["-L", &self.server]);
        command
    }

    /// Types `keys`, each a tmux key name (`Enter`, `Down`, `q`) or text.
    pub fn send_keys(&self, keys: &[&str]) {
        let status = self
            .tmux()
            .arg("send-keys")
            .args(keys)
            .status()
            .expect("tmux send-keys");
        assert!(status.success(), "tmux send-keys {keys:?}");
    }

    /// The screen's text now, a line per row.
    pub fn screen(&self) -> String {
        let output = self
            .tmux()
            .args(["capture-pane", "-p"])
            .output()
            .expect("tmux capture-pane");
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Waits up to `limit` for a screen that `ready` accepts; returns it.
    pub fn wait_for_screen(&self, what: &str, limit: Duration, ready: impl Fn(&str) -> bool) -> String {
        let started = Instant::now();
        loop {
            let screen = self.screen();
            if ready(&screen) {
                return screen;
            }
            assert!(
                started.elapsed() < limit,
                "no screen with {what} within {limit:?}; the last:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Whether the session (the program in it) still runs.
    pub fn running(&self) -> bool {
        self.tmux()
            .args(["has-session"])
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self
            .tmux()
            .arg("kill-server")
            .stderr(std::process::Stdio::null())
            .status();
    }
}
