//! Test harness: real HAProxy instances on loopback, with real HTTP backends and
//! real traffic, in a temporary directory that disappears with the [`Lab`].
//!
//! Each instance runs Debian's `/usr/sbin/haproxy` (or `$HAPROXY_BIN`) in the
//! foreground with a generated configuration: its own admin-level stats socket in
//! [`Lab::socket_dir`], optionally a master CLI socket (`-W -S`) in a separate
//! directory, frontends on loopback ports chosen at run time, and backends whose
//! servers are [`HttpServer`]s of this harness. Nothing assumes a fixed port is
//! free: ports are taken from the kernel, and a start that loses a port race is
//! retried with new ports. Dropping the lab stops every process it started
//! (SIGTERM, then SIGKILL after two seconds).
//!
//! [`ReloadLab`] is a HAProxy set up for hitless reloads (state file,
//! `expose-fd listeners`, master-worker or standalone), and [`HttpLoad`] the
//! bounded loopback traffic that shows whether a reload lost a request.
//! [`Consul`], [`Moto`] (AWS's APIs) and [`Tansu`] (a Kafka-protocol broker)
//! are the other peers; [`NotifySocket`] receives a daemon's systemd
//! notifications, and [`Tmux`] is a terminal for `top`.

// A harness reports broken set-ups by panicking: that is how a test fails.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod command;
mod consul;
mod files;
mod http;
mod load;
mod moto;
mod notify;
mod process;
mod prometheus;
mod promtool;
mod relay;
mod reloadable;
mod tansu;
mod tmux;

use std::fmt::Write as _;
use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub use command::{TestCommand, Workspace, running_as_root};
pub use consul::{Check, Consul, consul_binary};
pub use files::{copy_dir, dir_entries};
pub use http::HttpServer;
pub use http::loopback_request;
pub use load::{HttpLoad, LoadReport};
pub use moto::{GroupMember, Moto, moto_binary};
pub use nix::sys::signal::Signal;
pub use notify::NotifySocket;
pub use process::{stop_with, terminate, wait_for};
pub use prometheus::{Prometheus, Sample, prometheus_binary};
pub use promtool::{promtool_binary, promtool_check_metrics};
pub use relay::CarbonRelay;
pub use reloadable::{Launch, ReloadLab};
pub use tansu::{Record, Tansu, tansu_binary};
pub use tmux::Tmux;

/// The HAProxy binary tests run: `$HAPROXY_BIN`, else Debian's `/usr/sbin/haproxy`.
pub fn haproxy_binary() -> PathBuf {
    std::env::var_os("HAPROXY_BIN").map_or_else(|| PathBuf::from("/usr/sbin/haproxy"), PathBuf::from)
}

/// A frontend routed to one backend, or (with none) HAProxy's own
/// Prometheus exporter.
#[derive(Debug, Clone)]
struct FrontendSpec {
    name: String,
    backend: String,
}

/// The frontend [`LabBuilder::promex`] adds.
pub const PROMEX_FRONTEND: &str = "fe_promex";

/// A backend and the names of its servers.
#[derive(Debug, Clone)]
struct BackendSpec {
    name: String,
    servers: Vec<String>,
}

/// What a [`Lab`] starts; build with [`Lab::builder`].
#[derive(Debug, Clone)]
pub struct LabBuilder {
    instances: usize,
    master_cli: bool,
    health_checks: bool,
    tcp_stats: bool,
    promex: bool,
    server_options: String,
    frontends: Vec<FrontendSpec>,
    backends: Vec<BackendSpec>,
}

impl LabBuilder {
    /// Number of independent HAProxy instances (default 1).
    pub fn instances(mut self, count: usize) -> Self {
        self.instances = count;
        self
    }

    /// Start instances in master-worker mode with a master CLI socket.
    pub fn master_cli(mut self) -> Self {
        self.master_cli = true;
        self
    }

    /// Also give every instance admin stats sockets on TCP, `127.0.0.1` and `[::1]`.
    pub fn tcp_stats(mut self) -> Self {
        self.tcp_stats = true;
        self
    }

    /// Also give every instance HAProxy's own Prometheus exporter (PROMEX),
    /// at `/metrics` of frontend [`PROMEX_FRONTEND`].
    pub fn promex(mut self) -> Self {
        self.promex = true;
        self
    }

    /// Give every server a TCP health check (`check inter 200ms`).
    pub fn health_checks(mut self) -> Self {
        self.health_checks = true;
        self
    }

    /// Append `options` to every `server` line (e.g. `weight 100 agent-check …`).
    pub fn server_options(mut self, options: &str) -> Self {
        self.server_options = format!(" {options}");
        self
    }

    /// Add a frontend that sends its traffic to `backend`.
    pub fn frontend(mut self, name: &str, backend: &str) -> Self {
        self.frontends.push(FrontendSpec {
            name: name.into(),
            backend: backend.into(),
        });
        self
    }

    /// Add a backend with these servers (each backed by its own [`HttpServer`]).
    pub fn backend(mut self, name: &str, servers: &[&str]) -> Self {
        self.backends.push(BackendSpec {
            name: name.into(),
            servers: servers.iter().map(|server| (*server).to_owned()).collect(),
        });
        self
    }

    /// Starts everything; panics with HAProxy's own output when it cannot start.
    pub fn start(mut self) -> Lab {
        if self.backends.is_empty() {
            self = self.backend("be_app", &["s1", "s2"]);
        }
        if self.frontends.is_empty() {
            let backend = self.backends[0].name.clone();
            self = self.frontend("fe_main", &backend);
        }
        if self.promex {
            self = self.frontend(PROMEX_FRONTEND, "");
        }
        let dir = tempfile::Builder::new()
            .prefix("haproxide-lab-")
            .tempdir()
            .expect("temp dir");
        let socket_dir = dir.path().join("run");
        let master_dir = dir.path().join("master");
        fs::create_dir_all(&socket_dir).expect("run dir");
        fs::create_dir_all(&master_dir).expect("master dir");
        let mut http_servers = Vec::new();
        let mut server_ports = Vec::new();
        for backend in &self.backends {
            let ports = backend
                .servers
                .iter()
                .map(|server| {
                    let http = HttpServer::start(&format!("{}/{}", backend.name, server));
                    let port = http.port();
                    http_servers.push(http);
                    port
                })
                .collect::<Vec<_>>();
            server_ports.push(ports);
        }
        let mut lab = Lab {
            dir,
            socket_dir,
            master_dir,
            instances: Vec::new(),
            http_servers,
        };
        for index in 0..self.instances {
            let instance = self.start_instance(&lab, index, &server_ports);
            lab.instances.push(instance);
        }
        lab
    }

    fn start_instance(&self, lab: &Lab, index: usize, server_ports: &[Vec<u16>]) -> Instance {
        let mut last_log = String::new();
        for _attempt in 0..5 {
            let frontend_ports: Vec<(String, u16)> = self
                .frontends
                .iter()
                .map(|frontend| (frontend.name.clone(), free_port()))
                .collect();
            let stats_socket = lab.socket_dir.join(format!("hap{index}.sock"));
            let tcp_stats = self.tcp_stats.then(|| (free_port(), free_port_v6()));
            let master_socket = self
                .master_cli
                .then(|| lab.master_dir.join(format!("hap{index}.master.sock")));
            let config_path = lab.dir.path().join(format!("hap{index}.cfg"));
            let log_path = lab.dir.path().join(format!("hap{index}.log"));
            let config = self.config_text(&stats_socket, tcp_stats, &frontend_ports, server_ports);
            fs::write(&config_path, config).expect("write haproxy config");
            let mut instance = Instance {
                index,
                stats_socket,
                master_socket,
                config_path,
                log_path,
                frontend_ports,
                tcp_stats,
                child: None,
            };
            match instance.spawn_and_wait() {
                Ok(()) => return instance,
                Err(log) => last_log = log,
            }
        }
        panic!("HAProxy instance {index} did not start after 5 attempts; its last output:\n{last_log}");
    }

    fn config_text(
        &self,
        stats_socket: &Path,
        tcp_stats: Option<(u16, u16)>,
        frontend_ports: &[(String, u16)],
        server_ports: &[Vec<u16>],
    ) -> String {
        let mut config = String::new();
        let check = if self.health_checks { " check inter 200ms" } else { "" };
        let _ = write!(
            config,
            "global\n    stats socket {} mode 600 level admin\n    stats timeout 10s\n\n\
             defaults\n    mode http\n    timeout connect 2s\n    timeout client 10s\n    timeout server 10s\n\n",
            stats_socket.display()
        );
        if let Some((v4, v6)) = tcp_stats {
            let _ = write!(
                config,
                "global\n    stats socket ipv4@127.0.0.1:{v4} level admin\n    stats socket ipv6@[::1]:{v6} level admin\n\n"
            );
        }
        for (frontend, (_, port)) in self.frontends.iter().zip(frontend_ports) {
            let route = if frontend.backend.is_empty() {
                "http-request use-service prometheus-exporter if { path /metrics }".to_owned()
            } else {
                format!("default_backend {}", frontend.backend)
            };
            let _ = write!(
                config,
                "frontend {}\n    bind 127.0.0.1:{port}\n    {route}\n\n",
                frontend.name
            );
        }
        for (backend, ports) in self.backends.iter().zip(server_ports) {
            let _ = writeln!(config, "backend {}\n    balance roundrobin", backend.name);
            for (server, port) in backend.servers.iter().zip(ports) {
                let _ = writeln!(
                    config,
                    "    server {server} 127.0.0.1:{port}{check}{}",
                    self.server_options
                );
            }
            config.push('\n');
        }
        config
    }
}

/// A running set of HAProxy instances and their backends.
pub struct Lab {
    dir: tempfile::TempDir,
    socket_dir: PathBuf,
    master_dir: PathBuf,
    instances: Vec<Instance>,
    http_servers: Vec<HttpServer>,
}

impl Lab {
    /// A lab of one instance with `fe_main` → `be_app` (servers `s1`, `s2`) unless
    /// other frontends and backends are added.
    pub fn builder() -> LabBuilder {
        LabBuilder {
            instances: 1,
            master_cli: false,
            health_checks: false,
            tcp_stats: false,
            promex: false,
            server_options: String::new(),
            frontends: Vec::new(),
            backends: Vec::new(),
        }
    }

    /// The temporary directory holding configs, sockets and logs.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The directory holding every instance's stats socket and nothing else.
    pub fn socket_dir(&self) -> &Path {
        &self.socket_dir
    }

    /// The directory holding the master sockets (when started with [`LabBuilder::master_cli`]).
    pub fn master_dir(&self) -> &Path {
        &self.master_dir
    }

    /// The running instances.
    pub fn instances(&self) -> &[Instance] {
        &self.instances
    }

    /// Instance `index`.
    pub fn instance(&self, index: usize) -> &Instance {
        &self.instances[index]
    }

    /// Stops instance `index` (its socket file stays behind, as after a crash).
    pub fn stop_instance(&mut self, index: usize) {
        self.instances[index].stop();
    }

    /// Starts instance `index` again with the same configuration.
    pub fn restart_instance(&mut self, index: usize) {
        if let Err(log) = self.instances[index].spawn_and_wait() {
            panic!("HAProxy instance {index} did not restart; its output:\n{log}");
        }
    }

    /// The HTTP servers playing the backends' servers.
    pub fn http_servers(&self) -> &[HttpServer] {
        &self.http_servers
    }
}

/// One HAProxy process (or master + worker).
pub struct Instance {
    index: usize,
    stats_socket: PathBuf,
    master_socket: Option<PathBuf>,
    config_path: PathBuf,
    log_path: PathBuf,
    frontend_ports: Vec<(String, u16)>,
    tcp_stats: Option<(u16, u16)>,
    child: Option<Child>,
}

impl Instance {
    /// Position of this instance in the lab.
    pub fn index(&self) -> usize {
        self.index
    }

    /// The admin-level stats socket.
    pub fn stats_socket(&self) -> &Path {
        &self.stats_socket
    }

    /// The master CLI socket, when the lab was built with one.
    pub fn master_socket(&self) -> Option<&Path> {
        self.master_socket.as_deref()
    }

    /// The generated configuration file.
    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    /// Ports of the TCP stats sockets on `127.0.0.1` and `[::1]` (with [`LabBuilder::tcp_stats`]).
    pub fn tcp_stats_ports(&self) -> Option<(u16, u16)> {
        self.tcp_stats
    }

    /// Process id of HAProxy (the master in master-worker mode).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The loopback port of frontend `name`.
    pub fn frontend_port(&self, name: &str) -> u16 {
        self.frontend_ports
            .iter()
            .find(|(frontend, _)| frontend == name)
            .map(|(_, port)| *port)
            .unwrap_or_else(|| panic!("no frontend {name}"))
    }

    /// Sends `count` HTTP GET requests for `path` through frontend `frontend`,
    /// one connection each, and returns the status codes received.
    pub fn http_get(&self, frontend: &str, path: &str, count: usize) -> Vec<u16> {
        let port = self.frontend_port(frontend);
        (0..count).map(|_| http::get_status(port, path)).collect()
    }

    /// Sends one command to the stats socket with a plain blocking client, as
    /// `socat` would, for cross-checking haproxide against HAProxy itself.
    pub fn raw_command(&self, command: &str) -> String {
        raw_command(&self.stats_socket, command)
    }

    fn spawn_and_wait(&mut self) -> Result<(), String> {
        self.stop();
        let log = fs::File::create(&self.log_path).map_err(|error| error.to_string())?;
        let log_err = log.try_clone().map_err(|error| error.to_string())?;
        let mut command = Command::new(haproxy_binary());
        if let Some(master) = &self.master_socket {
            command
                .arg("-W")
                .arg("-S")
                .arg(format!("{},mode,600", master.display()));
        }
        command
            .arg("-db")
            .arg("-f")
            .arg(&self.config_path)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err);
        let child = command.spawn().unwrap_or_else(|error| {
            panic!(
                "cannot run {}: {error} (apt-get install haproxy)",
                haproxy_binary().display()
            )
        });
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                let output = fs::read_to_string(&self.log_path).unwrap_or_default();
                return Err(format!("exited with {status}:\n{output}"));
            }
            let answers =
                try_raw_command(&self.stats_socket, "show info").is_ok_and(|reply| reply.starts_with("Name:"));
            let master_answers = self
                .master_socket
                .as_deref()
                .is_none_or(|master| try_raw_command(master, "show proc").is_ok());
            if answers && master_answers {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.stop();
        Err(format!("no answer on {} within 10 s", self.stats_socket.display()))
    }

    fn stop(&mut self) {
        if let Some(child) = self.child.take() {
            process::stop_and_wait(child);
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Sends `command` to a UNIX runtime-API socket and reads the reply to EOF.
pub fn raw_command(socket: &Path, command: &str) -> String {
    try_raw_command(socket, command).unwrap_or_else(|error| panic!("{}: {error}", socket.display()))
}

fn try_raw_command(socket: &Path, command: &str) -> std::io::Result<String> {
    let mut stream = UnixStream::connect(socket)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.write_all(format!("{command}\n").as_bytes())?;
    // HAProxy's master CLI answers and closes only once the client half-closes.
    stream.shutdown(std::net::Shutdown::Write)?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply)?;
    Ok(reply)
}

/// A loopback TCP port that was free a moment ago.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local addr").port()
}

/// A peer's binary: the path in `$variable`, else `relative` under the
/// cache directory the set-up scripts fill
/// (`${XDG_CACHE_HOME:-$HOME/.cache}/haproxide/`).
pub fn cached_binary(variable: &str, relative: &str) -> PathBuf {
    if let Some(path) = std::env::var_os(variable) {
        return PathBuf::from(path);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache"));
    cache.join("haproxide").join(relative)
}

/// Starts a peer's `command` with its output appended to `log`; a binary
/// that cannot run is a panic saying which `script` provides it.
pub(crate) fn spawn_peer(command: &mut Command, log: &Path, script: &str) -> Child {
    let log = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("peer log");
    command
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .unwrap_or_else(|error| {
            panic!(
                "cannot run {}: {error} (bash {script} provides it)",
                command.get_program().to_string_lossy()
            )
        })
}

/// A loopback port, free for TCP and UDP a moment ago, below the kernel's
/// ephemeral range: neither [`free_port`] nor the local end of a connection
/// ever takes it, so a peer that stops can start again on it later (a
/// [`free_port`] may meanwhile be the source port of some test's traffic).
pub fn port_outside_ephemeral_range() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    // Where this process starts looking: apart from other test binaries.
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let low = fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let first = 10_000u16;
    assert!(
        low > first + 1000,
        "the ephemeral range starts at {low}: no room below it"
    );
    let span = low - first;
    let _ = NEXT.compare_exchange(
        0,
        (std::process::id() % u32::from(span)) as u16,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    for _ in 0..span {
        let port = first + NEXT.fetch_add(1, Ordering::SeqCst) % span;
        let tcp = TcpListener::bind(("127.0.0.1", port));
        let udp = std::net::UdpSocket::bind(("127.0.0.1", port));
        if tcp.is_ok() && udp.is_ok() {
            return port;
        }
    }
    panic!("no free port between {first} and {low}");
}

/// A `[::1]` TCP port that was free a moment ago.
pub fn free_port_v6() -> u16 {
    let listener = TcpListener::bind("[::1]:0").expect("bind [::1]:0 (is IPv6 loopback enabled?)");
    listener.local_addr().expect("local addr").port()
}

/// Connects to 127.0.0.1:`port` (used by traffic helpers).
fn connect(port: u16) -> std::io::Result<TcpStream> {
    let stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    Ok(stream)
}
