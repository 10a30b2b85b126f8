//! `haproxide backends` (and `ep2`) against a real Consul (Debian
//! bullseye's 1.8.7) and a real HAProxy, with real loopback HTTP servers
//! registered as the service's instances and traffic running through the
//! backend while it scales.

// Tests fail by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use haproxy::ShowStat;
use testkit::{Check, Consul, HttpLoad, HttpServer, Launch, Moto, NotifySocket, ReloadLab, TestCommand, terminate};

/// Requests per second of the load (the issue asks for at least 500).
const LOAD_RATE: u32 = 600;

fn haproxide() -> TestCommand {
    TestCommand::new(env!("CARGO_BIN_EXE_haproxide"))
}

/// The lab's extra sections: `fe_dyn` → `be_dyn` (no servers, roundrobin)
/// and `fe_src` → `be_src` (`balance source`, 12 FQDN slots).
fn lab_with_backends(launch: Launch) -> (ReloadLab, u16, u16) {
    let lab = ReloadLab::start_with(launch, 2, |ports| {
        let (dyn_port, src_port) = (ports[0], ports[1]);
        format!(
            "\nfrontend fe_dyn\n    bind 127.0.0.1:{dyn_port}\n    default_backend be_dyn\n\n\
             backend be_dyn\n    balance roundrobin\n\n\
             frontend fe_src\n    bind 127.0.0.1:{src_port}\n    default_backend be_src\n\n\
             backend be_src\n    balance source\n\
             \x20   server-template slot 1-12 placeholder.invalid:1 init-addr last,0.0.0.0 disabled check inter 500ms\n"
        )
    });
    let (dyn_port, src_port) = (lab.extra_ports()[0], lab.extra_ports()[1]);
    (lab, dyn_port, src_port)
}

/// A lab whose extra sections are `frontend FRONTEND` → `backend BACKEND`
/// (`balance roundrobin`, then `servers`, lines of its own), last in the
/// file; its frontend port.
fn lab_with_frontend(launch: Launch, frontend: &str, backend: &str, servers: &str) -> (ReloadLab, u16) {
    let lab = ReloadLab::start_with(launch, 1, |ports| {
        format!(
            "\nfrontend {frontend}\n    bind 127.0.0.1:{}\n    default_backend {backend}\n\n\
             backend {backend}\n    balance roundrobin\n{servers}",
            ports[0]
        )
    });
    let port = lab.extra_ports()[0];
    (lab, port)
}

/// A `[backends]` + `[backend:NAME]` configuration in the lab's directory.
fn controller_config(lab: &ReloadLab, backend_section: &str) -> PathBuf {
    let path = lab.dir().join("backends.conf");
    let text = format!(
        "[backends]\nlock-file = {}/backends.lock\nhaproxy-poll = 0.1\n\n{backend_section}",
        lab.dir().display()
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn consul_section(lab: &ReloadLab, consul: &Consul, backend: &str, extra: &str) -> String {
    format!(
        "[backend:{backend}]\nsource = consul\nconsul-address = {}\nconsul-service = web\nsockets = {}\n\
         server-options = check inter 500ms\ndrain-timeout = 5\n{extra}",
        consul.address(),
        lab.stats_socket().display()
    )
}

/// The controller's log, in the lab's directory beside its configuration.
const CONTROLLER_LOG: &str = "backends.log";

/// Runs the controller in the background, logging to [`CONTROLLER_LOG`].
fn start_controller(config: &Path) -> Child {
    haproxide()
        .args(&["backends", "-f", config.to_str().unwrap()])
        .spawn(&config.with_file_name(CONTROLLER_LOG))
}

fn stop_controller(child: Child, config: &Path) -> String {
    let (status, _) = terminate(child);
    let log = std::fs::read_to_string(config.with_file_name(CONTROLLER_LOG)).unwrap_or_default();
    assert_eq!(status.code(), Some(0), "{log}");
    log
}

/// `(server, status, address:port)` of `backend`'s servers that are not in maintenance.
fn serving(lab: &ReloadLab, backend: &str) -> Vec<(String, String, String)> {
    let stat = ShowStat::parse(lab.command("show stat")).unwrap();
    let mut rows: Vec<(String, String, String)> = stat
        .rows()
        .filter(|row| row.pxname() == backend && row.svname() != "BACKEND")
        .map(|row| {
            (
                row.svname().to_string(),
                row.get("status").unwrap_or_default().into_owned(),
                row.get("addr").unwrap_or_default().into_owned(),
            )
        })
        .filter(|(_, status, _)| !status.starts_with("MAINT"))
        .collect();
    rows.sort();
    rows
}

/// Waits until the servers of `backend` out of maintenance are exactly
/// `ports`, all UP; returns how long that took (panics after 15 s).
fn wait_for_ports(lab: &ReloadLab, backend: &str, ports: &[u16]) -> Duration {
    try_wait_for_ports(lab, backend, ports).unwrap_or_else(|error| panic!("{error}"))
}

fn try_wait_for_ports(lab: &ReloadLab, backend: &str, ports: &[u16]) -> Result<Duration, String> {
    let started = Instant::now();
    let mut wanted: Vec<u16> = ports.to_vec();
    wanted.sort_unstable();
    let mut last = Vec::new();
    while started.elapsed() < Duration::from_secs(15) {
        let rows = serving(lab, backend);
        let mut seen: Vec<u16> = rows
            .iter()
            .filter_map(|(_, _, addr)| addr.rsplit(':').next()?.parse().ok())
            .collect();
        seen.sort_unstable();
        let all_up = rows.iter().all(|(_, status, _)| status == "UP" || status == "no check");
        if seen == wanted && all_up {
            return Ok(started.elapsed());
        }
        last = rows;
        std::thread::sleep(Duration::from_millis(20));
    }
    // The controller's log, when there is one, says why.
    let log = std::fs::read_to_string(lab.dir().join(CONTROLLER_LOG)).unwrap_or_default();
    Err(format!(
        "{backend} did not come to ports {wanted:?} within 15 s; it has {last:?}\ncontroller log:\n{log}"
    ))
}

/// Ten real HTTP servers, the service's instances to be.
fn instances() -> Vec<HttpServer> {
    (0..10).map(|index| HttpServer::start(&format!("web{index}"))).collect()
}

fn register(consul: &Consul, servers: &[HttpServer], range: std::ops::Range<usize>) {
    for index in range {
        consul.register(&format!("web{index}"), "web", servers[index].port(), Check::Http);
    }
}

fn ports(servers: &[HttpServer], indexes: &[usize]) -> Vec<u16> {
    indexes.iter().map(|index| servers[*index].port()).collect()
}

/// What most tests start from: a real Consul, the lab, ten instances not
/// registered yet, and a controller keeping one backend in line with Consul.
struct ConsulLab {
    consul: Consul,
    lab: ReloadLab,
    /// `fe_dyn`'s port (→ `be_dyn`).
    dyn_port: u16,
    /// `fe_src`'s port (→ `be_src`).
    src_port: u16,
    config: PathBuf,
    controller: Child,
    servers: Vec<HttpServer>,
}

impl ConsulLab {
    /// `extra`: more lines for the backend's section, given the lab.
    fn start(backend: &str, extra: impl FnOnce(&ReloadLab) -> String) -> ConsulLab {
        let consul = Consul::start();
        let (lab, dyn_port, src_port) = lab_with_backends(Launch::MasterWorker);
        let extra = extra(&lab);
        let config = controller_config(&lab, &consul_section(&lab, &consul, backend, &extra));
        let controller = start_controller(&config);
        ConsulLab {
            consul,
            lab,
            dyn_port,
            src_port,
            config,
            controller,
            servers: instances(),
        }
    }

    /// Registers the instances of `indexes` with Consul.
    fn register(&self, indexes: std::ops::Range<usize>) {
        register(&self.consul, &self.servers, indexes);
    }

    /// Waits until `backend` serves exactly the instances of `indexes`.
    fn wait(&self, backend: &str, indexes: impl IntoIterator<Item = usize>) -> Duration {
        let indexes: Vec<usize> = indexes.into_iter().collect();
        wait_for_ports(&self.lab, backend, &ports(&self.servers, &indexes))
    }

    /// Stops the controller (it must exit 0) and returns its log.
    fn stop(self) -> String {
        stop_controller(self.controller, &self.config)
    }
}

#[test]
fn consul_instances_come_fail_leave_and_scale_to_ten() {
    let setup = ConsulLab::start("be_dyn", |_| String::new());
    let (consul, lab, servers) = (&setup.consul, &setup.lab, &setup.servers);
    setup.register(0..3);
    setup.wait("be_dyn", 0..3);
    let rows = serving(lab, "be_dyn");
    assert!(
        rows.iter().all(|(name, _, _)| name.starts_with("srv_127.0.0.1_")),
        "{rows:?}"
    );

    // A failing check (the server answers 503) takes it out.
    servers[1].respond_json(503, "{}");
    wait_for_ports(lab, "be_dyn", &ports(servers, &[0, 2]));
    // A deregistered instance leaves too.
    consul.deregister("web2");
    wait_for_ports(lab, "be_dyn", &ports(servers, &[0]));
    // Back to health, and seven more.
    servers[1].respond_json(200, "{}");
    setup.register(2..10);
    setup.wait("be_dyn", 0..10);
    assert_eq!(serving(lab, "be_dyn").len(), 10);
    let (added, drained) = (servers[9].port(), servers[2].port());
    let log = setup.stop();
    assert!(
        log.contains(&format!(
            "adding srv_127.0.0.1_{added} (127.0.0.1:{added} is discovered)"
        )),
        "{log}"
    );
    assert!(
        log.contains(&format!(
            "draining srv_127.0.0.1_{drained} (127.0.0.1:{drained} is no longer discovered)"
        )),
        "{log}"
    );
}

/// Scales 3 → 10 → 2 → 6 under load through `frontend_port`; no request may fail.
fn scale_under_load(setup: &ConsulLab, backend: &str, frontend_port: u16) {
    setup.register(0..3);
    setup.wait(backend, 0..3);
    let load = HttpLoad::start(frontend_port, LOAD_RATE, 3);
    setup.register(3..10);
    setup.wait(backend, 0..10);
    for index in 2..10 {
        setup.consul.deregister(&format!("web{index}"));
    }
    setup.wait(backend, 0..2);
    setup.register(2..6);
    setup.wait(backend, 0..6);
    std::thread::sleep(Duration::from_millis(300));
    load.stop().assert_no_failure(500.0);
}

#[test]
fn dynamic_servers_scale_under_load_without_a_failed_request() {
    let setup = ConsulLab::start("be_dyn", |_| String::new());
    scale_under_load(&setup, "be_dyn", setup.dyn_port);
    let log = setup.stop();
    assert!(log.contains("; drained) on"), "graceful removal: {log}");
}

#[test]
fn slots_of_a_balance_source_backend_scale_under_load_and_run_out_clearly() {
    let setup = ConsulLab::start("be_src", |_| String::new());
    let (consul, lab, servers) = (&setup.consul, &setup.lab, &setup.servers);
    scale_under_load(&setup, "be_src", setup.src_port);
    let rows = serving(lab, "be_src");
    assert!(rows.iter().all(|(name, _, _)| name.starts_with("slot")), "{rows:?}");
    // An instance that leaves and comes back finds its own slot free first
    // (the lowest one in maintenance), with its address and port still set:
    // HAProxy answers that nothing changed, and the slot serves again.
    let (slot, _, address) = rows
        .iter()
        .find(|(_, _, address)| address.ends_with(&format!(":{}", servers[5].port())))
        .unwrap()
        .clone();
    consul.deregister("web5");
    setup.wait("be_src", 0..5);
    setup.register(5..6);
    setup.wait("be_src", 0..6);
    assert!(
        serving(lab, "be_src").contains(&(slot.clone(), "UP".to_owned(), address.clone())),
        "{address} is back in {slot}"
    );
    // 12 slots; 14 instances: two find none, and say so.
    let more: Vec<HttpServer> = (10..18)
        .map(|index| HttpServer::start(&format!("web{index}")))
        .collect();
    for (offset, server) in more.iter().enumerate() {
        consul.register(&format!("web{}", 10 + offset), "web", server.port(), Check::Http);
    }
    testkit::wait_for("12 slots in use", Duration::from_secs(15), || {
        serving(lab, "be_src").len() == 12
    });
    std::thread::sleep(Duration::from_millis(500));
    let log = setup.stop();
    assert!(
        log.contains("all 12 slots named slot* are in use; add slots to the server-template"),
        "{log}"
    );
}

#[test]
fn consul_down_for_ten_seconds_changes_nothing_then_it_converges() {
    let mut setup = ConsulLab::start("be_dyn", |_| String::new());
    setup.register(0..3);
    setup.wait("be_dyn", 0..3);
    let before = serving(&setup.lab, "be_dyn");
    setup.consul.stop();
    std::thread::sleep(Duration::from_secs(10));
    assert_eq!(serving(&setup.lab, "be_dyn"), before, "servers stay as they were");
    setup.consul.restart();
    // The agent restores its registrations from its data directory, but a
    // restored check may stay critical for a while (seen once in CI: web1's
    // for over 10 s): registering the instances again gives fresh checks.
    setup.consul.deregister("web0");
    setup.register(1..5);
    let converged = try_wait_for_ports(&setup.lab, "be_dyn", &ports(&setup.servers, &[1, 2, 3, 4]));
    let log = setup.stop();
    assert!(converged.is_ok(), "{converged:?}\n{log}");
    assert!(log.contains("keeping the last list"), "{log}");
    assert!(log.contains("answers again"), "{log}");
}

#[test]
fn after_a_reload_slots_are_back_at_once_from_the_state_file_and_no_request_is_lost() {
    let setup = ConsulLab::start("be_src", |lab| format!("state-file = {}\n", lab.state_file().display()));
    setup.register(0..4);
    setup.wait("be_src", 0..4);
    let load = HttpLoad::start(setup.src_port, LOAD_RATE, 3);
    std::thread::sleep(Duration::from_millis(300));
    let old = setup.lab.serving_pid();
    setup.lab.master_command("reload");
    setup.lab.wait_for_new_worker(old);
    let back = setup.wait("be_src", 0..4);
    // How fast is measured by bench/backends.sh; here: they come back, and no request fails.
    eprintln!("slots serving again {back:?} after the new worker answered");
    std::thread::sleep(Duration::from_millis(500));
    load.stop().assert_no_failure(500.0);
    setup.stop();
}

#[test]
fn after_a_reload_dynamic_servers_are_added_again_within_a_second() {
    let setup = ConsulLab::start("be_dyn", |_| String::new());
    setup.register(0..3);
    setup.wait("be_dyn", 0..3);
    let old = setup.lab.serving_pid();
    setup.lab.master_command("reload");
    setup.lab.wait_for_new_worker(old);
    let back = setup.wait("be_dyn", 0..3);
    eprintln!("dynamic servers serving again {back:?} after the new worker answered");
    let log = setup.stop();
    assert!(log.contains("reloaded or restarted; converging"), "{log}");
}

/// The lab, ten instances, a targets file naming the first two, and a
/// controller configuration whose `be_dyn` follows that file, with `extra`
/// lines: the lab, the instances, the file and the configuration.
fn file_lab(extra: &str) -> (ReloadLab, Vec<HttpServer>, PathBuf, PathBuf) {
    let (lab, _, _) = lab_with_backends(Launch::MasterWorker);
    let servers = instances();
    let targets = lab.dir().join("web.targets");
    std::fs::write(
        &targets,
        format!("127.0.0.1:{}\n127.0.0.1:{}\n", servers[0].port(), servers[1].port()),
    )
    .unwrap();
    let section = format!(
        "[backend:be_dyn]\nsource = file\nfile = {}\nsockets = {}\n{extra}",
        targets.display(),
        lab.stats_socket().display()
    );
    let config = controller_config(&lab, &section);
    (lab, servers, targets, config)
}

#[test]
fn systemd_hears_ready_once_haproxy_follows_the_first_discovery_and_pings_while_passes_go_on() {
    let (lab, servers, _, config) = file_lab("");
    let notify = NotifySocket::bind(lab.dir());
    let controller = haproxide()
        .args(&["backends", "-f", config.to_str().unwrap()])
        .env("NOTIFY_SOCKET", notify.path())
        .env("WATCHDOG_USEC", "400000")
        .spawn(&config.with_file_name(CONTROLLER_LOG));
    assert_eq!(notify.wait_for("READY=1", Duration::from_secs(10)), ["READY=1"]);
    // Ready: the servers are in HAProxy already, not on their way.
    let addresses: Vec<String> = serving(&lab, "be_dyn")
        .into_iter()
        .map(|(_, _, address)| address)
        .collect();
    let mut expected: Vec<String> = ports(&servers, &[0, 1])
        .iter()
        .map(|port| format!("127.0.0.1:{port}"))
        .collect();
    expected.sort();
    assert_eq!(addresses, expected);
    notify.expect_pings(Duration::from_secs(2), 8);
    stop_controller(controller, &config);
    notify.expect_stopping();
}

#[test]
fn a_file_moves_haproxy_and_a_half_written_one_does_not() {
    use std::io::Write;
    let (lab, servers, targets, config) = file_lab("drain-timeout = 5\n");
    let controller = start_controller(&config);
    wait_for_ports(&lab, "be_dyn", &ports(&servers, &[0, 1]));

    // An editor's save: written elsewhere, renamed in.
    let edited = lab.dir().join(".web.targets.swp");
    std::fs::write(
        &edited,
        format!("127.0.0.1:{}\n127.0.0.1:{} 50\n", servers[1].port(), servers[2].port()),
    )
    .unwrap();
    std::fs::rename(&edited, &targets).unwrap();
    wait_for_ports(&lab, "be_dyn", &ports(&servers, &[1, 2]));

    // Written in place, half of it, and held open: nothing moves.
    let mut file = std::fs::File::create(&targets).unwrap();
    file.write_all(format!("127.0.0.1:{}\n", servers[3].port()).as_bytes())
        .unwrap();
    file.flush().unwrap();
    std::thread::sleep(Duration::from_secs(1));
    wait_for_ports(&lab, "be_dyn", &ports(&servers, &[1, 2]));
    // The rest, then closed: now it counts.
    file.write_all(format!("127.0.0.1:{}\n", servers[4].port()).as_bytes())
        .unwrap();
    drop(file);
    wait_for_ports(&lab, "be_dyn", &ports(&servers, &[3, 4]));

    // A file that does not parse changes nothing and is named with its line.
    std::fs::write(&targets, "127.0.0.1:1\nnot-an-address\n").unwrap();
    std::thread::sleep(Duration::from_secs(1));
    wait_for_ports(&lab, "be_dyn", &ports(&servers, &[3, 4]));
    let log = stop_controller(controller, &config);
    assert!(
        log.contains(&format!("{}:2: \"not-an-address\"", targets.display())),
        "{log}"
    );
}

#[test]
fn ep2_with_its_own_configuration_converges_the_same_way() {
    let consul = Consul::start();
    let (lab, _) = lab_with_frontend(
        Launch::MasterWorker,
        "fe_ep2",
        "haproxynode",
        "    server-template node 5 10.0.0.1:8080 check inter 500ms disabled\n",
    );
    let servers: Vec<HttpServer> = (0..3).map(|index| HttpServer::start(&format!("ep2-{index}"))).collect();
    // EP2 puts every server on one port: give the instances one each, and
    // let Consul carry them; backend_port is the one HAProxy uses.
    let port = servers[0].port();
    consul.register("web0", "web", port, Check::Ttl);
    let config = lab.dir().join("ep2.conf");
    std::fs::write(
        &config,
        format!(
            "[haproxy]\nbackend_name = haproxynode\nbackend_port = {port}\nhaproxy_socket_file = {}\n\
             update_type = update_by_runtime\norchestrator = consul\nlock_dir = {}\nlog_file =\n\
             sleep_before_next_run = 5\n\n[consul]\nservice_name = web\nconsul_ip = 127.0.0.1\nconsul_port = {}\nonly_passing = True\n",
            lab.stats_socket().display(),
            lab.dir().display(),
            consul.address().rsplit(':').next().unwrap()
        ),
    )
    .unwrap();
    let ep2 = lab.dir().join("ep2");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_haproxide"), &ep2).unwrap();
    let controller = TestCommand::new(&ep2)
        .args(&["-f", config.to_str().unwrap()])
        .spawn(&lab.dir().join(CONTROLLER_LOG));
    wait_for_ports(&lab, "haproxynode", &[port]);
    let rows = serving(&lab, "haproxynode");
    assert_eq!(rows[0].0, "node1");
    assert_eq!(rows[0].2, format!("127.0.0.1:{port}"));
    // As EP2 promises, an empty answer never empties the backend.
    consul.set_check("web0", false);
    let log_path = lab.dir().join(CONTROLLER_LOG);
    let started = Instant::now();
    let log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    while !log().contains("fewer than min-servers = 1") {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the controller did not hold back:\n{}",
            log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(serving(&lab, "haproxynode").len(), 1);
    let (status, _) = terminate(controller);
    assert_eq!(status.code(), Some(0));
}

#[test]
fn dry_run_prints_the_commands_and_changes_nothing() {
    let consul = Consul::start();
    let (lab, _, _) = lab_with_backends(Launch::MasterWorker);
    let servers = instances();
    register(&consul, &servers, 0..2);
    let config = controller_config(&lab, &consul_section(&lab, &consul, "be_dyn", ""));
    let output = haproxide()
        .args(&["backends", "-f", config.to_str().unwrap(), "--dry-run"])
        .expect_success();
    let socket = lab.stats_socket().display().to_string();
    let mut expected = String::new();
    let mut sorted = ports(&servers, &[0, 1]);
    sorted.sort_unstable();
    for port in sorted {
        let at = format!("be_dyn/srv_127.0.0.1_{port}");
        expected.push_str(&format!(
            "{socket}: add server {at} 127.0.0.1:{port} check inter 500ms\n"
        ));
        expected.push_str(&format!("{socket}: enable health {at}\n"));
        expected.push_str(&format!("{socket}: set server {at} state ready\n"));
    }
    assert_eq!(String::from_utf8_lossy(&output.stdout), expected);
    assert!(serving(&lab, "be_dyn").is_empty(), "nothing changed");
}

#[test]
fn a_second_controller_is_refused_by_the_lock() {
    let setup = ConsulLab::start("be_dyn", |_| String::new());
    std::thread::sleep(Duration::from_millis(500));
    let second = haproxide()
        .args(&["backends", "-f", setup.config.to_str().unwrap()])
        .expect_exit(1);
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        stderr.contains(&format!("backends.lock is held by PID {}", setup.controller.id())),
        "{stderr}"
    );
    setup.stop();
}

/// The addresses of `backend`'s servers as `show servers state` lists them, sorted.
fn state_addresses(lab: &ReloadLab, backend: &str) -> Vec<String> {
    let state = haproxy::ServersState::parse(&lab.command(&format!("show servers state {backend}"))).unwrap();
    let mut addresses: Vec<String> = state
        .rows()
        .iter()
        .filter_map(|row| state.get(row, "srv_addr").map(str::to_owned))
        .collect();
    addresses.sort();
    addresses
}

/// The private addresses of group `name`'s instances that are InService and Healthy.
fn serving_instances(moto: &Moto, name: &str) -> Vec<String> {
    let ids: Vec<String> = moto
        .members(name)
        .into_iter()
        .filter(|member| member.lifecycle == "InService" && member.health == "Healthy")
        .map(|member| member.id)
        .collect();
    moto.private_addresses(&ids)
}

/// Waits until `backend`'s servers are at `addresses`; how long it took.
fn wait_for_addresses(lab: &ReloadLab, backend: &str, addresses: &[String]) -> Duration {
    wait_for_list(lab, backend, || state_addresses(lab, backend), addresses)
}

/// Waits until `read` gives `expected` (sorted); how long it took. After
/// 15 s it panics with what `what` had and the controller's log.
fn wait_for_list(lab: &ReloadLab, what: &str, read: impl Fn() -> Vec<String>, expected: &[String]) -> Duration {
    let started = Instant::now();
    loop {
        let now = read();
        if now == expected {
            return started.elapsed();
        }
        if started.elapsed() > Duration::from_secs(15) {
            let log = std::fs::read_to_string(lab.dir().join(CONTROLLER_LOG)).unwrap_or_default();
            panic!("{what} has {now:?}, not {expected:?}, after 15 s\ncontroller log:\n{log}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn aws_section(lab: &ReloadLab, moto: &Moto, groups: &str, extra: &str) -> String {
    // The instances' addresses are moto's and unroutable: no checks.
    format!(
        "[backend:be_dyn]\nsource = aws\naws-groups = {groups}\naws-region = us-east-1\naws-endpoint = {}\n\
         aws-access-key-id = test\naws-secret-access-key = test\nport = 8080\npoll-interval = 0.2\n\
         sockets = {}\ndrain-timeout = 1\n{extra}",
        moto.endpoint(),
        lab.stats_socket().display()
    )
}

#[test]
fn aws_groups_scale_3_5_2_0_3_with_only_in_service_healthy_instances_as_servers() {
    let moto = Moto::start();
    let (lab, _, _) = lab_with_backends(Launch::MasterWorker);
    // More groups than one DescribeAutoScalingGroups page (100): the groups
    // with instances come last, on the second page.
    let mut groups: Vec<String> = (0..101).map(|index| format!("pad{index:03}")).collect();
    for group in &groups {
        moto.create_group(group, 0);
    }
    // `mixed`: one instance in Standby (the group launches a replacement)
    // and one Unhealthy, neither a server. moto never shows Pending or
    // Terminating; they fail the same InService + Healthy test.
    moto.create_group("mixed", 2);
    let members = moto.members("mixed");
    moto.enter_standby("mixed", &members[0].id);
    moto.set_unhealthy(&members[1].id);
    let members = moto.members("mixed");
    let states: Vec<(&str, &str)> = members
        .iter()
        .map(|member| (member.lifecycle.as_str(), member.health.as_str()))
        .collect();
    assert_eq!(
        states,
        [
            ("Standby", "Healthy"),
            ("InService", "Unhealthy"),
            ("InService", "Healthy")
        ]
    );
    let mixed = serving_instances(&moto, "mixed");
    assert_eq!(mixed.len(), 1);
    moto.create_group("web", 3);
    groups.extend(["mixed".to_owned(), "web".to_owned()]);
    let expected = |web: usize| {
        let mut addresses = serving_instances(&moto, "web");
        assert_eq!(addresses.len(), web);
        addresses.extend(mixed.iter().cloned());
        addresses.sort();
        addresses
    };
    let config = controller_config(&lab, &aws_section(&lab, &moto, &groups.join(","), ""));
    let controller = start_controller(&config);
    let took = wait_for_addresses(&lab, "be_dyn", &expected(3));
    eprintln!("3 + 1 instances in HAProxy {took:?} after the controller started");
    for web in [5, 2] {
        moto.set_desired_capacity("web", web as u32);
        let took = wait_for_addresses(&lab, "be_dyn", &expected(web));
        eprintln!("web scaled to {web}: HAProxy followed in {took:?}");
    }

    // Zero with min-servers = 1 (the default): the last servers stay.
    stop_controller(controller, &config);
    let before = state_addresses(&lab, "be_dyn");
    moto.set_desired_capacity("web", 0);
    let config = controller_config(&lab, &aws_section(&lab, &moto, "web", ""));
    let controller = start_controller(&config);
    let log_path = lab.dir().join(CONTROLLER_LOG);
    let held = Instant::now();
    while !std::fs::read_to_string(&log_path)
        .unwrap_or_default()
        .contains("discovery names 0 servers, fewer than min-servers = 1")
    {
        assert!(
            held.elapsed() < Duration::from_secs(15),
            "the controller did not hold back"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(state_addresses(&lab, "be_dyn"), before);
    stop_controller(controller, &config);

    // With min-servers = 0 the group's zero empties the backend.
    let config = controller_config(&lab, &aws_section(&lab, &moto, "web", "min-servers = 0\n"));
    let controller = start_controller(&config);
    wait_for_addresses(&lab, "be_dyn", &[]);
    eprintln!("web scaled to 0 with min-servers = 0: be_dyn is empty");
    moto.set_desired_capacity("web", 3);
    let three = serving_instances(&moto, "web");
    assert_eq!(three.len(), 3);
    let took = wait_for_addresses(&lab, "be_dyn", &three);
    eprintln!("web scaled to 3: HAProxy followed in {took:?}");
    let log = stop_controller(controller, &config);
    assert!(!log.contains("ERROR"), "{log}");
}

#[test]
fn aws_credentials_come_from_the_instance_role_by_imdsv2_when_none_are_given() {
    let moto = Moto::start();
    let (lab, _, _) = lab_with_backends(Launch::MasterWorker);
    moto.create_group("web", 2);
    let section =
        aws_section(&lab, &moto, "web", "").replace("aws-access-key-id = test\naws-secret-access-key = test\n", "");
    let config = controller_config(&lab, &section);
    let nowhere = lab.dir().join("no-such-aws-file");
    // moto_server answers the instance metadata service's paths too.
    let controller = haproxide()
        .args(&["backends", "-f", config.to_str().unwrap()])
        .env("AWS_ACCESS_KEY_ID", "")
        .env("AWS_SECRET_ACCESS_KEY", "")
        .env("AWS_PROFILE", "")
        .env("AWS_SHARED_CREDENTIALS_FILE", &nowhere)
        .env("AWS_CONFIG_FILE", &nowhere)
        .env("AWS_EC2_METADATA_SERVICE_ENDPOINT", moto.endpoint())
        .spawn(&config.with_file_name(CONTROLLER_LOG));
    wait_for_addresses(&lab, "be_dyn", &serving_instances(&moto, "web"));
    let log = stop_controller(controller, &config);
    assert!(
        log.contains("AWS credentials test-key from instance role default-role"),
        "{log}"
    );
}

/// The master's reload count.
fn reloads(lab: &ReloadLab) -> u32 {
    haproxy::ShowProc::parse(&lab.master_command("show proc"))
        .unwrap()
        .master()
        .reloads
}

/// `be_tpl`'s servers, by name, with their `address:port`.
fn tpl_servers(lab: &ReloadLab) -> Vec<(String, String)> {
    serving(lab, "be_tpl")
        .into_iter()
        .map(|(name, _, address)| (name, address))
        .collect()
}

/// A lab whose `be_tpl` (last in the file, behind `fe_tpl`) is written
/// from a template of the lab's own configuration, a targets file, and the
/// controller's configuration with `[template]` and `[reload]`.
struct TemplateLab {
    lab: ReloadLab,
    frontend: u16,
    template: PathBuf,
    targets: PathBuf,
    config: PathBuf,
}

/// The `server` lines of `be_tpl`, as a new template writes them.
const SERVER_LOOP: &str =
    "{% for s in servers %}    server {{ s.name }} {{ s.address }}:{{ s.port }} {{ s.options }}\n{% endfor %}";

impl TemplateLab {
    fn start() -> TemplateLab {
        let (lab, frontend) = lab_with_frontend(Launch::MasterWorker, "fe_tpl", "be_tpl", "");
        let template = lab.dir().join("haproxy.cfg.j2");
        let targets = lab.dir().join("targets");
        let config = controller_config(
            &lab,
            &format!(
                "[backend:be_tpl]\nsource = file\nfile = {}\nmode = template\nserver-options = check inter 500ms\n\
                 sockets = {}\n\n[template]\ntemplate = {}\ntarget = {}\nsettle = 0.3\nretry = 1\n\n\
                 [reload]\nmethod = master\nhaproxy = {}\nconfig = {}\nmaster-socket = {}\npid-file = {}\nstats-socket = {}\n",
                targets.display(),
                lab.stats_socket().display(),
                template.display(),
                lab.config_path().display(),
                testkit::haproxy_binary().display(),
                lab.config_path().display(),
                lab.master_socket().display(),
                lab.pid_file().display(),
                lab.stats_socket().display(),
            ),
        );
        let setup = TemplateLab {
            lab,
            frontend,
            template,
            targets,
            config,
        };
        setup.write_template(SERVER_LOOP);
        setup
    }

    /// The template: the lab's configuration, then `servers` in `be_tpl`.
    fn write_template(&self, servers: &str) {
        let base = std::fs::read_to_string(self.lab.config_path()).unwrap();
        let base = base.split("\nfrontend fe_tpl").next().unwrap();
        let text = format!(
            "{base}\nfrontend fe_tpl\n    bind 127.0.0.1:{}\n    default_backend be_tpl\n\nbackend be_tpl\n    balance roundrobin\n{servers}",
            self.frontend
        );
        let staged = self.template.with_extension("new");
        std::fs::write(&staged, text).unwrap();
        std::fs::rename(&staged, &self.template).unwrap();
    }

    /// The targets file names `servers`, written whole (renamed into place).
    fn write_targets(&self, servers: &[HttpServer]) {
        let text: String = servers
            .iter()
            .map(|server| format!("127.0.0.1:{}\n", server.port()))
            .collect();
        let staged = self.targets.with_extension("new");
        std::fs::write(&staged, text).unwrap();
        std::fs::rename(&staged, &self.targets).unwrap();
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.lab.dir().join(CONTROLLER_LOG)).unwrap_or_default()
    }

    /// Waits until the controller's log says `text` `count` times.
    fn wait_for_log(&self, text: &str, count: usize) {
        let started = Instant::now();
        while self.log().matches(text).count() < count {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "{text:?} not {count} times in the log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[test]
fn the_template_path_scales_3_10_2_under_load_with_one_reload_per_burst() {
    let setup = TemplateLab::start();
    let lab = &setup.lab;
    let servers: Vec<HttpServer> = (0..10).map(|index| HttpServer::start(&format!("tpl{index}"))).collect();
    let ports = |count: usize| -> Vec<u16> { servers[..count].iter().map(HttpServer::port).collect() };
    let reloads_at_start = reloads(lab);
    setup.write_targets(&servers[..3]);
    let controller = start_controller(&setup.config);
    wait_for_ports(lab, "be_tpl", &ports(3));
    let three = tpl_servers(lab);
    assert_eq!(reloads(lab), reloads_at_start + 1);

    let load = HttpLoad::start(setup.frontend, LOAD_RATE, 3);
    // A burst: 3 → 5 → 7 → 10 within 300 ms is one render and one reload.
    for count in [5, 7, 10] {
        setup.write_targets(&servers[..count]);
        std::thread::sleep(Duration::from_millis(100));
    }
    wait_for_ports(lab, "be_tpl", &ports(10));
    let ten = tpl_servers(lab);
    assert_eq!(reloads(lab), reloads_at_start + 2, "one reload for the burst");
    // 10 → 2 in one step.
    setup.write_targets(&servers[..2]);
    wait_for_ports(lab, "be_tpl", &ports(2));
    let two = tpl_servers(lab);
    std::thread::sleep(Duration::from_millis(300));
    let report = load.stop();
    eprintln!(
        "template path: {} reloads for 3 changes (3 → 10 in a burst of 3 writes, 10 → 2)",
        reloads(lab) - reloads_at_start
    );
    report.assert_no_failure(500.0);
    assert_eq!(reloads(lab), reloads_at_start + 3);

    // The servers that stayed kept their names.
    for server in &two {
        assert!(three.contains(server) && ten.contains(server), "{server:?} renamed");
    }
    assert!(three.iter().all(|server| ten.contains(server)));
    let mut names: Vec<String> = ports(2).iter().map(|port| format!("srv_127.0.0.1_{port}")).collect();
    names.sort();
    assert_eq!(two.iter().map(|(name, _)| name.clone()).collect::<Vec<_>>(), names);
    let log = stop_controller(controller, &setup.config);
    assert_eq!(log.matches("rendered into").count(), 3, "{log}");
}

#[test]
fn runtime_first_changes_haproxy_without_a_reload_and_the_file_keeps_the_servers_for_the_next() {
    let setup = TemplateLab::start();
    let lab = &setup.lab;
    std::fs::write(
        &setup.config,
        std::fs::read_to_string(&setup.config)
            .unwrap()
            .replace("retry = 1\n", "retry = 1\nruntime-first = true\n"),
    )
    .unwrap();
    let servers: Vec<HttpServer> = (0..3).map(|index| HttpServer::start(&format!("tpl{index}"))).collect();
    let ports: Vec<u16> = servers.iter().map(HttpServer::port).collect();
    let reloads_before = reloads(lab);
    setup.write_targets(&servers);
    let controller = start_controller(&setup.config);
    wait_for_ports(lab, "be_tpl", &ports);
    setup.wait_for_log("applied at run time; no reload", 1);
    assert_eq!(reloads(lab), reloads_before, "runtime first: no reload");
    let at_run_time = tpl_servers(lab);
    let file = std::fs::read_to_string(lab.config_path()).unwrap();
    for (name, address) in &at_run_time {
        assert!(
            file.contains(&format!("    server {name} {address} check inter 500ms\n")),
            "{file}"
        );
    }
    // The next reload, whoever makes it, starts with the same servers.
    let old = lab.serving_pid();
    lab.master_command("reload");
    lab.wait_for_new_worker(old);
    wait_for_ports(lab, "be_tpl", &ports);
    assert_eq!(tpl_servers(lab), at_run_time);
    let log = stop_controller(controller, &setup.config);
    assert!(!log.contains("ERROR"), "{log}");
}

#[test]
fn a_template_haproxy_refuses_or_a_failed_reload_leaves_the_old_file_serving() {
    let setup = TemplateLab::start();
    let lab = &setup.lab;
    let servers: Vec<HttpServer> = (0..4).map(|index| HttpServer::start(&format!("tpl{index}"))).collect();
    let ports = |range: std::ops::Range<usize>| -> Vec<u16> { servers[range].iter().map(HttpServer::port).collect() };
    setup.write_targets(&servers[..2]);
    let controller = start_controller(&setup.config);
    wait_for_ports(lab, "be_tpl", &ports(0..2));
    let good = std::fs::read_to_string(lab.config_path()).unwrap();
    let reloads_before = reloads(lab);

    // A misspelt keyword: HAProxy's `-c` refuses the rendered file.
    setup.write_template(&SERVER_LOOP.replace("    server ", "    sever "));
    setup.write_targets(&servers[..3]);
    setup.wait_for_log("renders a configuration HAProxy refuses", 1);
    let log = setup.log();
    let template = setup.template.display().to_string();
    let target = lab.config_path().display().to_string();
    assert!(
        log.contains(&format!(
            "template {template} renders a configuration HAProxy refuses; {target} is unchanged"
        )),
        "{log}"
    );
    assert!(
        log.contains(&format!("parsing [{target}:")),
        "HAProxy's line, said of the target: {log}"
    );
    assert!(
        log.contains("rendered line ") && log.contains(&format!("    sever srv_127.0.0.1_{} ", servers[0].port())),
        "{log}"
    );
    assert_eq!(std::fs::read_to_string(lab.config_path()).unwrap(), good);
    assert_eq!(reloads(lab), reloads_before);
    wait_for_ports(lab, "be_tpl", &ports(0..2));

    // Valid for `-c`, but the new worker cannot bind: the reload fails and
    // the previous file is put back.
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy_port = busy.local_addr().unwrap().port();
    setup.write_template(&format!(
        "{SERVER_LOOP}\nfrontend fe_busy\n    bind 127.0.0.1:{busy_port}\n"
    ));
    setup.write_targets(&servers[..4]);
    setup.wait_for_log("is back", 1);
    let log = setup.log();
    assert!(log.contains(&format!("the previous {target} is back")), "{log}");
    assert_eq!(std::fs::read_to_string(lab.config_path()).unwrap(), good);
    wait_for_ports(lab, "be_tpl", &ports(0..2));
    for line in log.lines().filter(|line| {
        ["refuses", "rendered line", "[ALERT]", "is back"]
            .iter()
            .any(|word| line.contains(word))
    }) {
        eprintln!("{line}");
    }

    // Fixed: the next try renders and reloads.
    setup.write_template(SERVER_LOOP);
    wait_for_ports(lab, "be_tpl", &ports(0..4));
    setup.wait_for_log("rendered again", 1);
    stop_controller(controller, &setup.config);
    drop(busy);
}

/// An EP2 configuration for `lab`'s stats socket: `[haproxy]` with
/// `haproxy` lines added, then the orchestrator's section.
fn ep2_config(lab: &ReloadLab, port: u16, haproxy: &str, orchestrator: &str) -> PathBuf {
    let config = lab.dir().join("ep2.conf");
    std::fs::write(
        &config,
        format!(
            "[haproxy]\nbackend_name = haproxynode\nbackend_port = {port}\nhaproxy_socket_file = {}\n\
             lock_dir = {}\nlog_file =\n{haproxy}\n{orchestrator}",
            lab.stats_socket().display(),
            lab.dir().display(),
        ),
    )
    .unwrap();
    config
}

/// Runs `ep2 -f config` (a symlink to the binary) in the background.
fn start_ep2(lab: &ReloadLab, config: &Path) -> Child {
    let ep2 = lab.dir().join("ep2");
    if !ep2.exists() {
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_haproxide"), &ep2).unwrap();
    }
    TestCommand::new(&ep2)
        .args(&["-f", config.to_str().unwrap()])
        .spawn(&lab.dir().join(CONTROLLER_LOG))
}

/// A standalone HAProxy (`start_by = binary` reloads it with `-sf`) whose
/// `haproxynode` backend, behind `fe_ep2`, is EP2's template's
/// `{{nodes}}`; the template, in the lab's directory, is the lab's
/// configuration with that backend.
fn ep2_template_lab() -> (ReloadLab, u16, PathBuf) {
    let (lab, frontend) = lab_with_frontend(Launch::Standalone, "fe_ep2", "haproxynode", "");
    let template = lab.dir().join("ep2.template");
    std::fs::write(
        &template,
        format!("{}{{{{nodes}}}}", std::fs::read_to_string(lab.config_path()).unwrap()),
    )
    .unwrap();
    (lab, frontend, template)
}

fn ep2_by_config(lab: &ReloadLab, template: &Path) -> String {
    format!(
        "update_type = update_by_config\nstart_by = binary\nhaproxy_binary = {}\nhaproxy_config_file = {}\n\
         template_file = {}\npid_file = {}\ncheck_interval = 500\nbackend_maxconn = 50\n",
        testkit::haproxy_binary().display(),
        lab.config_path().display(),
        template.display(),
        lab.pid_file().display(),
    )
}

#[test]
fn ep2_update_by_config_renders_ep2_s_template_from_consul_and_reloads() {
    let consul = Consul::start();
    let (lab, frontend, template) = ep2_template_lab();
    let servers: Vec<HttpServer> = (0..3).map(|index| HttpServer::start(&format!("ep2-{index}"))).collect();
    // EP2 puts every server on backend_port: the instance's port.
    let port = servers[0].port();
    let config = ep2_config(
        &lab,
        port,
        &format!("{}orchestrator = consul\n", ep2_by_config(&lab, &template)),
        &format!(
            "[consul]\nservice_name = web\nconsul_port = {}\n",
            consul.address().rsplit(':').next().unwrap()
        ),
    );
    consul.register("web0", "web", port, Check::Ttl);
    let old_pid = lab.serving_pid();
    let controller = start_ep2(&lab, &config);
    wait_for_ports(&lab, "haproxynode", &[port]);
    assert_ne!(lab.serving_pid(), old_pid, "reloaded by a new -sf process");
    let rendered = std::fs::read_to_string(lab.config_path()).unwrap();
    assert!(
        rendered.ends_with(&format!(
            "    server node_127.0.0.1_{port} 127.0.0.1:{port} check inter 500 maxconn 50\n"
        )),
        "{rendered}"
    );
    let load = HttpLoad::start(frontend, LOAD_RATE, 3);
    std::thread::sleep(Duration::from_millis(500));
    let (status, _) = terminate(controller);
    assert_eq!(status.code(), Some(0));
    load.stop().assert_no_failure(500.0);
}

#[test]
fn ep2_with_aws_follows_the_groups_in_both_update_types() {
    let moto = Moto::start();
    moto.create_group("web", 3);
    let aws = format!(
        "[aws]\nasg_name = web\nregion_name = us-east-1\nip_type = private\naws_access_key_id = test\n\
         aws_secret_access_key = test\nendpoint_url = {}\n",
        moto.endpoint()
    );

    // update_by_config: EP2's template, rendered and reloaded.
    let (lab, _, template) = ep2_template_lab();
    let config = ep2_config(
        &lab,
        8080,
        &format!(
            "{}orchestrator = aws\nsleep_before_next_run = 1\n",
            ep2_by_config(&lab, &template)
        ),
        &aws,
    );
    let controller = start_ep2(&lab, &config);
    wait_for_addresses(&lab, "haproxynode", &serving_instances(&moto, "web"));
    moto.set_desired_capacity("web", 5);
    wait_for_addresses(&lab, "haproxynode", &serving_instances(&moto, "web"));
    let (status, _) = terminate(controller);
    assert_eq!(status.code(), Some(0));
    drop(lab);

    // update_by_runtime: EP2's slots re-addressed.
    let (lab, _) = lab_with_frontend(
        Launch::MasterWorker,
        "fe_ep2",
        "haproxynode",
        "    server-template node 8 10.0.0.1:8080 disabled\n",
    );
    let config = ep2_config(
        &lab,
        8080,
        "update_type = update_by_runtime\norchestrator = aws\nsleep_before_next_run = 1\n",
        &aws,
    );
    let controller = start_ep2(&lab, &config);
    let serving_slots = |lab: &ReloadLab| -> Vec<String> {
        let mut addresses: Vec<String> = serving(lab, "haproxynode")
            .into_iter()
            .filter_map(|(_, _, address)| address.rsplit_once(':').map(|(host, _)| host.to_owned()))
            .collect();
        addresses.sort();
        addresses
    };
    let slots = "haproxynode's serving slots";
    wait_for_list(&lab, slots, || serving_slots(&lab), &serving_instances(&moto, "web"));
    moto.set_desired_capacity("web", 2);
    wait_for_list(&lab, slots, || serving_slots(&lab), &serving_instances(&moto, "web"));
    let (status, _) = terminate(controller);
    assert_eq!(status.code(), Some(0));
}
