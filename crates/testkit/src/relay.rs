//! A real carbon-c-relay (Debian's `carbon-c-relay`) on a loopback port,
//! listening for Graphite's plaintext protocol on TCP and UDP (and on TCP at
//! `::1` too where the machine has IPv6 loopback) and writing every line it
//! receives to a file, for tests of the Graphite sink.

use std::fs;
use std::io::Write;
use std::net::{TcpListener, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::wait_for;

/// A running relay; stopped when dropped. It can be stopped and started
/// again on the same port, keeping what it wrote.
pub struct CarbonRelay {
    dir: tempfile::TempDir,
    port: u16,
    ipv6: bool,
    child: Option<Child>,
}

impl CarbonRelay {
    /// Starts a relay on a free port; a start that loses the port to another
    /// process is retried on a new one.
    pub fn start() -> CarbonRelay {
        let mut relay = CarbonRelay {
            dir: tempfile::tempdir().expect("relay directory"),
            port: stable_port(),
            ipv6: std::net::TcpListener::bind("[::1]:0").is_ok(),
            child: None,
        };
        for _ in 0..5 {
            if relay.launch() {
                return relay;
            }
            relay.port = stable_port();
        }
        panic!("carbon-c-relay did not start:\n{}", relay.log());
    }

    /// Its port, on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether it also listens on `[::1]:port` (TCP): only where the machine
    /// has IPv6 loopback.
    pub fn listens_on_ipv6(&self) -> bool {
        self.ipv6
    }

    /// Where it writes what it received.
    pub fn output(&self) -> PathBuf {
        self.dir.path().join("relay-out.txt")
    }

    /// Every line received so far, in order.
    pub fn lines(&self) -> Vec<String> {
        fs::read_to_string(self.output())
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Waits until it wrote at least `count` lines (at most `limit`); returns them.
    pub fn wait_for_lines(&self, count: usize, limit: Duration) -> Vec<String> {
        wait_for(&format!("{count} lines at the relay"), limit, || {
            self.lines().len() >= count
        });
        self.lines()
    }

    /// Freezes it (SIGSTOP): its port still accepts connections (the kernel
    /// does that), but nothing reads them, so their buffers fill up. This is
    /// a relay that hangs.
    pub fn freeze(&self) {
        self.signal(Signal::SIGSTOP);
    }

    /// Lets a frozen relay run again (SIGCONT): it reads what waited.
    pub fn thaw(&self) {
        self.signal(Signal::SIGCONT);
    }

    /// Stops it (SIGTERM); its port is then closed.
    pub fn stop(&mut self) {
        if let Some(child) = self.child.take() {
            send(&child, Signal::SIGCONT);
            crate::terminate(child);
        }
    }

    fn signal(&self, signal: Signal) {
        send(self.child.as_ref().expect("the relay is running"), signal);
    }

    /// Starts it again on the same port, appending to the same output.
    /// carbon-c-relay 3.7.3 now and then dies of SIGSEGV when a client
    /// connects while it starts (as the sink under test, reconnecting, does):
    /// like a supervisor, this starts it again then.
    pub fn restart(&mut self) {
        for _ in 0..5 {
            if self.launch() {
                return;
            }
            eprintln!("carbon-c-relay exited while starting; starting it again");
        }
        panic!("carbon-c-relay did not start again:\n{}", self.log());
    }

    /// Starts the relay on `port`; true once it listens there, false when it
    /// exited (the port was taken).
    fn launch(&mut self) -> bool {
        self.stop();
        let config = self.dir.path().join("relay.conf");
        fs::write(
            &config,
            format!(
                "listen\n  type linemode\n    127.0.0.1:{port} proto tcp\n    127.0.0.1:{port} proto udp\n{ipv6}  ;\n\
                 cluster out\n  file {out}\n  ;\nmatch *\n  send to out\n  stop\n  ;\n",
                port = self.port,
                ipv6 = if self.ipv6 {
                    format!("    [::1]:{} proto tcp\n", self.port)
                } else {
                    String::new()
                },
                out = self.output().display()
            ),
        )
        .expect("relay config");
        let log = fs::File::create(self.dir.path().join("relay.log")).expect("relay log");
        let child = Command::new("carbon-c-relay")
            // A queue for 250,000 lines: the default (25,000) drops lines of
            // a burst the file output has not written yet. (Much larger
            // queues make its start slower, and so its crashes, described
            // at `restart`, more frequent.)
            .args([
                "-f",
                &config.display().to_string(),
                "-H",
                "testrelay",
                "-s",
                "-q",
                "4000000",
            ])
            .stdout(log.try_clone().expect("relay log"))
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .expect("start carbon-c-relay (Debian package carbon-c-relay)");
        self.child = Some(child);
        let mut exited = None;
        // A connect could reach another process on a lost port: the relay's
        // own log says when its listeners are bound.
        wait_for("carbon-c-relay listening", Duration::from_secs(10), || {
            exited = self
                .child
                .as_mut()
                .and_then(|child| child.try_wait().expect("wait for carbon-c-relay"));
            exited.is_some() || self.log().contains("startup sequence complete")
        });
        if let Some(status) = exited {
            self.child = None;
            self.note(&format!("(the relay exited: {status})"));
        }
        exited.is_none()
    }

    /// Adds `text` to the relay's log, for failure messages.
    fn note(&self, text: &str) {
        let mut log = fs::OpenOptions::new()
            .append(true)
            .open(self.dir.path().join("relay.log"))
            .expect("relay log");
        writeln!(log, "{text}").expect("write the relay log");
    }

    /// The relay's own log.
    fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("relay.log")).unwrap_or_default()
    }
}

/// A port for a relay, which must get it back after a stop: taken below the
/// kernel's ephemeral range, so that no outgoing connection gets it while the
/// relay is down (not even a client's connection to itself, which a client
/// retrying a closed ephemeral port on loopback can make), and never handed
/// out twice by one test process.
fn stable_port() -> u16 {
    static TAKEN: AtomicU32 = AtomicU32::new(0);
    const LOWEST: u32 = 10_000;
    let ephemeral = fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(32_768);
    let span = ephemeral.saturating_sub(LOWEST).max(1);
    let start = std::process::id().wrapping_mul(7919) % span;
    loop {
        let taken = TAKEN.fetch_add(1, Ordering::SeqCst);
        assert!(taken < span, "no free port for a relay below {ephemeral}");
        let port = u16::try_from(LOWEST + (start + taken) % span).expect("below 65536");
        if TcpListener::bind(("127.0.0.1", port)).is_ok() && UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

fn send(child: &Child, signal: Signal) {
    let pid = i32::try_from(child.id()).expect("pid fits in i32");
    kill(Pid::from_raw(pid), signal).expect("signal carbon-c-relay");
}

impl Drop for CarbonRelay {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
