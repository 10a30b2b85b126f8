//! A real HAProxy set up the way hitless reloads need it, for the reload
//! tests: a stats socket with `expose-fd listeners`, a `server-state-file`
//! loaded by every backend, a frontend on loopback whose backend has two
//! [`HttpServer`]s, and a backend of FQDN-declared spare slots
//! (`server-template … init-addr last,0.0.0.0 disabled`) whose runtime
//! addresses only the state file carries over.
//!
//! It runs in master-worker mode (`-W -S master.sock -p pid`, in the
//! foreground, as systemd runs it) or standalone (`-D -p pid`, the way
//! `-sf` reloads work). Dropping it stops whatever processes the pid file
//! names, and the master.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::{HttpServer, free_port, haproxy_binary, try_raw_command};

/// How HAProxy is started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Launch {
    /// `haproxy -W -db -S master.sock -p haproxy.pid -f haproxy.cfg`.
    MasterWorker,
    /// `haproxy -D -p haproxy.pid -f haproxy.cfg`.
    Standalone,
}

/// A HAProxy to reload; see the module docs.
pub struct ReloadLab {
    dir: tempfile::TempDir,
    launch: Launch,
    port: u16,
    slot_port: u16,
    servers: Vec<HttpServer>,
    master: Option<Child>,
    extra: String,
    extra_ports: Vec<u16>,
}

impl ReloadLab {
    /// Starts HAProxy; panics with its output when it cannot.
    pub fn start(launch: Launch) -> ReloadLab {
        ReloadLab::start_with(launch, 0, |_| String::new())
    }

    /// Starts HAProxy with the sections `extra` writes after the standard
    /// ones (more frontends and backends) on `extra_ports` ports of its
    /// own. Every attempt draws fresh ports, so a port some other test's
    /// connection took meanwhile only costs an attempt.
    pub fn start_with(launch: Launch, extra_ports: usize, extra: impl Fn(&[u16]) -> String) -> ReloadLab {
        let dir = tempfile::Builder::new()
            .prefix("haproxide-reload-")
            .tempdir()
            .expect("temp dir");
        let servers = vec![HttpServer::start("be_app/s1"), HttpServer::start("be_app/s2")];
        let mut lab = ReloadLab {
            dir,
            launch,
            port: 0,
            slot_port: 0,
            servers,
            master: None,
            extra: String::new(),
            extra_ports: Vec::new(),
        };
        let mut last = String::new();
        for _attempt in 0..5 {
            lab.port = free_port();
            lab.slot_port = free_port();
            lab.extra_ports = (0..extra_ports).map(|_| free_port()).collect();
            lab.extra = extra(&lab.extra_ports);
            lab.write_config("");
            match lab.spawn() {
                Ok(()) => return lab,
                Err(output) => last = output,
            }
        }
        panic!("HAProxy did not start after 5 attempts; its last output:\n{last}");
    }

    /// The directory of the configuration, sockets, pid and state files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `haproxy.cfg`.
    pub fn config_path(&self) -> PathBuf {
        self.dir().join("haproxy.cfg")
    }

    /// The admin stats socket (with `expose-fd listeners`).
    pub fn stats_socket(&self) -> PathBuf {
        self.dir().join("stats.sock")
    }

    /// The master CLI socket (master-worker mode).
    pub fn master_socket(&self) -> PathBuf {
        self.dir().join("master.sock")
    }

    /// The pid file: the master's PID, or the standalone processes'.
    pub fn pid_file(&self) -> PathBuf {
        self.dir().join("haproxy.pid")
    }

    /// HAProxy's `server-state-file`.
    pub fn state_file(&self) -> PathBuf {
        self.dir().join("servers.state")
    }

    /// HAProxy's own output (master-worker mode).
    pub fn log_path(&self) -> PathBuf {
        self.dir().join("haproxy.log")
    }

    /// The frontend's loopback port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port the spare slots are declared with.
    pub fn slot_port(&self) -> u16 {
        self.slot_port
    }

    /// The ports the extra sections were written with, in the order
    /// [`ReloadLab::start_with`] gave them.
    pub fn extra_ports(&self) -> &[u16] {
        &self.extra_ports
    }

    /// The two servers of `be_app`.
    pub fn http_servers(&self) -> &[HttpServer] {
        &self.servers
    }

    /// The configuration HAProxy was started with, followed by `extra` lines.
    pub fn write_config(&self, extra: &str) {
        let extra = format!("{}{extra}", self.extra);
        let dir = self.dir().display().to_string();
        let (port, slot_port) = (self.port, self.slot_port);
        let (s1, s2) = (self.servers[0].port(), self.servers[1].port());
        let config = format!(
            "global\n\
             \x20   stats socket {dir}/stats.sock mode 600 level admin expose-fd listeners\n\
             \x20   stats timeout 10s\n\
             \x20   server-state-file {dir}/servers.state\n\n\
             defaults\n\
             \x20   mode http\n\
             \x20   timeout connect 2s\n\
             \x20   timeout client 10s\n\
             \x20   timeout server 10s\n\
             \x20   load-server-state-from-file global\n\n\
             frontend fe_main\n\
             \x20   bind 127.0.0.1:{port}\n\
             \x20   default_backend be_app\n\n\
             backend be_app\n\
             \x20   balance roundrobin\n\
             \x20   server s1 127.0.0.1:{s1}\n\
             \x20   server s2 127.0.0.1:{s2}\n\n\
             backend be_slots\n\
             \x20   server-template slot 1-2 placeholder.invalid:{slot_port} init-addr last,0.0.0.0 disabled\n\
             {extra}"
        );
        fs::write(self.config_path(), config).expect("write haproxy.cfg");
    }

    /// Sends `command` to the stats socket.
    pub fn command(&self, command: &str) -> String {
        crate::raw_command(&self.stats_socket(), command)
    }

    /// Sends `command` to the master CLI.
    pub fn master_command(&self, command: &str) -> String {
        crate::raw_command(&self.master_socket(), command)
    }

    /// The PID that answers `show info` on the stats socket.
    pub fn serving_pid(&self) -> u32 {
        let info = self.command("show info");
        info.lines()
            .find_map(|line| line.strip_prefix("Pid: "))
            .and_then(|pid| pid.trim().parse().ok())
            .unwrap_or_else(|| panic!("no Pid in show info:\n{info}"))
    }

    /// Waits until a process other than `old` answers on the stats socket.
    pub fn wait_for_new_worker(&self, old: u32) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            let pid = try_raw_command(&self.stats_socket(), "show info")
                .ok()
                .and_then(|info| {
                    info.lines()
                        .find_map(|line| line.strip_prefix("Pid: ")?.trim().parse::<u32>().ok())
                });
            if pid.is_some_and(|pid| pid != old) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("no worker but {old} answers after 10 s");
    }

    fn spawn(&mut self) -> Result<(), String> {
        let config = self.config_path();
        let pid_file = self.pid_file();
        match self.launch {
            Launch::MasterWorker => {
                let log = fs::File::create(self.log_path()).map_err(|error| error.to_string())?;
                let log_err = log.try_clone().map_err(|error| error.to_string())?;
                let child = Command::new(haproxy_binary())
                    .arg("-W")
                    .arg("-db")
                    .arg("-S")
                    .arg(format!("{},mode,600", self.master_socket().display()))
                    .arg("-p")
                    .arg(&pid_file)
                    .arg("-f")
                    .arg(&config)
                    .stdin(Stdio::null())
                    .stdout(log)
                    .stderr(log_err)
                    .spawn()
                    .map_err(|error| format!("cannot run {}: {error}", haproxy_binary().display()))?;
                self.master = Some(child);
            }
            Launch::Standalone => {
                let output = Command::new(haproxy_binary())
                    .arg("-D")
                    .arg("-p")
                    .arg(&pid_file)
                    .arg("-f")
                    .arg(&config)
                    .stdin(Stdio::null())
                    .output()
                    .map_err(|error| format!("cannot run {}: {error}", haproxy_binary().display()))?;
                if !output.status.success() {
                    return Err(format!(
                        "exited with {}:\n{}",
                        output.status,
                        String::from_utf8_lossy(&output.stderr)
                    ));
                }
            }
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(status) = self.master.as_mut().and_then(|child| child.try_wait().ok().flatten()) {
                self.master = None;
                let output = fs::read_to_string(self.log_path()).unwrap_or_default();
                return Err(format!("exited with {status}:\n{output}"));
            }
            let answers =
                try_raw_command(&self.stats_socket(), "show info").is_ok_and(|reply| reply.starts_with("Name:"));
            let master_answers = self.launch == Launch::Standalone
                || try_raw_command(&self.master_socket(), "show proc").is_ok_and(|reply| reply.contains("master"));
            if answers && master_answers {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.stop();
        Err("no answer on the stats socket within 10 s".into())
    }

    fn stop(&mut self) {
        let mut pids: Vec<i32> = fs::read_to_string(self.pid_file())
            .unwrap_or_default()
            .lines()
            .filter_map(|line| line.trim().parse().ok())
            .collect();
        if let Some(master) = &self.master {
            pids.extend(i32::try_from(master.id()).ok());
        }
        for pid in &pids {
            let _ = kill(Pid::from_raw(*pid), Signal::SIGTERM);
        }
        if let Some(master) = self.master.take() {
            crate::process::wait_or_kill(master, Duration::from_secs(3));
        }
    }
}

impl Drop for ReloadLab {
    fn drop(&mut self) {
        self.stop();
    }
}
