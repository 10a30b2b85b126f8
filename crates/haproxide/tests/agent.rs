//! `haproxide agent` against a real HAProxy (agent checks every 200 ms), with
//! a real loopback HTTP server playing the service's health endpoint; and
//! the agent's own replies, read as HAProxy reads them.

// Test helpers fail the test by panicking, like the tests themselves.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Output};
use std::time::{Duration, Instant};

use haproxy::ShowStat;
use testkit::{
    HttpServer, Lab, NotifySocket, Signal, TestCommand, Workspace, free_port, free_port_v6, stop_with, terminate,
    wait_for,
};

/// A health endpoint body, as Datawave's `HealthBean` writes it.
fn health(status: &str, usage: u32, load: f64) -> String {
    format!(r#"{{"ConnectionUsagePercent": {usage}, "Status": "{status}", "SystemLoad": {load}, "SwapBytesUsed": 0}}"#)
}

/// An agent's config file and log in a temp dir.
struct AgentSetup {
    space: Workspace,
    port: u16,
    /// Run as `datawave-haproxy-agent -c config.yml`, not `haproxide agent -f agent.conf`.
    datawave: bool,
}

impl AgentSetup {
    /// `[agent]` on 127.0.0.1 and a free port, polls giving up after 0.5 s,
    /// with `extra` lines.
    fn new(extra: &str) -> AgentSetup {
        AgentSetup::bound(
            "127.0.0.1",
            free_port(),
            &format!("timeout = 0.5\nretries = 0\n{extra}"),
        )
    }

    /// `[agent]` on `bind` and `port`, with `extra` lines.
    fn bound(bind: &str, port: u16, extra: &str) -> AgentSetup {
        let space = Workspace::new("agent.conf", |_| {
            format!("[agent]\nbind = {bind}\nport = {port}\n{extra}")
        });
        AgentSetup {
            space,
            port,
            datawave: false,
        }
    }

    /// Datawave's `config.yml` holding `yaml`, for an agent that will listen
    /// on `port` (the file's own or one given by `-p`).
    fn datawave(port: u16, yaml: &str) -> AgentSetup {
        let space = Workspace::new("config.yml", |_| yaml.to_owned());
        std::os::unix::fs::symlink(
            env!("CARGO_BIN_EXE_haproxide"),
            space.path().join("datawave-haproxy-agent"),
        )
        .unwrap();
        AgentSetup {
            space,
            port,
            datawave: true,
        }
    }

    /// `haproxide agent ARGS -f CONFIG`, or `datawave-haproxy-agent -c
    /// CONFIG ARGS` (through a symlink).
    fn command(&self, args: &[&str]) -> TestCommand {
        if !self.datawave {
            return self
                .space
                .command(env!("CARGO_BIN_EXE_haproxide"), &[&["agent"], args].concat());
        }
        let config = self.space.config().to_str().unwrap();
        TestCommand::new(self.space.path().join("datawave-haproxy-agent"))
            .args(&[&["-c", config], args].concat())
            .listing(self.space.path())
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output()
    }

    /// Starts the agent; returns once it listens.
    fn start(&self) -> Child {
        self.start_with(&[])
    }

    /// Starts the agent with `args`; returns once it says it listens.
    fn start_with(&self, args: &[&str]) -> Child {
        let child = self.command(args).spawn(&self.space.path().join("agent.log"));
        wait_for("the agent listening", Duration::from_secs(10), || {
            self.space.read("agent.log").contains("agent listening")
        });
        child
    }

    /// Connects as HAProxy does, sends `sent` (if any), returns the reply line.
    fn ask(&self, sent: &str) -> String {
        self.ask_at("127.0.0.1", sent)
    }

    /// As [`AgentSetup::ask`], at address `host`.
    fn ask_at(&self, host: &str, sent: &str) -> String {
        let mut stream = TcpStream::connect((host, self.port)).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        stream.write_all(sent.as_bytes()).unwrap();
        let mut reply = String::new();
        stream.read_to_string(&mut reply).unwrap();
        reply
    }
}

/// `(status, weight)` of server `be_app/s1` in `show stat`.
fn server_state(lab: &Lab) -> (String, String) {
    let stat = ShowStat::parse(lab.instance(0).raw_command("show stat")).unwrap();
    let row = stat
        .rows()
        .find(|row| row.pxname() == "be_app" && row.svname() == "s1")
        .unwrap();
    (
        row.get("status").unwrap_or_default().into_owned(),
        row.get("weight").unwrap_or_default().into_owned(),
    )
}

fn wait_for_state(lab: &Lab, status: &str, weight: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (now, now_weight) = server_state(lab);
        if now == status && now_weight == weight {
            eprintln!("be_app/s1: {now} weight {now_weight}");
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "be_app/s1 is {now} with weight {now_weight}, not {status} with weight {weight}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Datawave's shipped `example_config.yml` (spec §2), with the health URL
/// and the port made this test's.
fn datawave_example(port: u16, url: &str) -> String {
    format!(
        "bind: 127.0.0.1\nport: {port}\ndw_health_poller:\n  check_url: {url}\n  check_timeout: 10.0\n  interval: 1.0\n  \
         down_response: down\n  unavailable_response: \"0% drain\"\n  connection_usage_reduction: 0.7\n  \
         os_load_reduction: 0.4\n  swap_usage_reduction: 0.3\n  staleness_interval: 0\n  staleness_response: ''\n  \
         stop_timeout: 0\n"
    )
}

#[test]
fn datawave_haproxy_agent_with_the_example_file_answers_haproxy_as_the_ini_agent_does() {
    let mut endpoint = HttpServer::start("health");
    endpoint.respond_json(200, &health("ready", 80, 0.5));
    let url = format!("http://127.0.0.1:{}/DataWave/Common/Health/health", endpoint.port());
    let port = free_port();
    let datawave = AgentSetup::datawave(port, &datawave_example(port, &url));
    // The same settings in haproxide's INI.
    let ini = AgentSetup::bound(
        "127.0.0.1",
        free_port(),
        &format!(
            "health-url = {url}\ntimeout = 10.0\ninterval = 1.0\ndown-response = down\nunavailable-response = 0% drain\n\
             connection-usage-reduction = 0.7\nos-load-reduction = 0.4\nswap-usage-reduction = 0.3\nstaleness-interval = 0\n"
        ),
    );
    let agents = [datawave.start(), ini.start()];
    // One HAProxy following each agent.
    let labs = [&datawave, &ini].map(|setup| {
        Lab::builder()
            .backend("be_app", &["s1"])
            .health_checks()
            .server_options(&format!(
                "weight 100 agent-check agent-port {} agent-inter 200ms",
                setup.port
            ))
            .start()
    });
    // Both HAProxy reach the state, and both agents give the same bytes.
    let both = |status: &str, weight: &str, reply: &str| {
        for lab in &labs {
            wait_for_state(lab, status, weight);
        }
        assert_eq!([datawave.ask(""), ini.ask("")], [reply, reply]);
    };
    both("UP", "24", "24% ready up\n");
    endpoint.respond_json(503, r#"{"Status": "drain", "Details": "connection limit"}"#);
    both("DRAIN (agent)", "0", "0% drain\n");
    endpoint.stop();
    both("DOWN (agent)", "0", "down\n");
    endpoint.restart();
    endpoint.respond_json(200, &health("ready", 30, 0.1));
    both("UP", "75", "75% ready up\n");

    for agent in agents {
        let (status, took) = terminate(agent);
        assert!(status.success());
        assert!(took < Duration::from_secs(2), "took {took:?}");
    }
    let log = datawave.space.read("agent.log");
    assert!(
        log.contains(
            "dw_health_poller.stop_timeout: haproxide does not wait for a poll under way when it stops, ignored"
        ),
        "{log}"
    );
}

#[test]
fn datawave_flags_fill_in_what_the_file_leaves_out_and_the_file_wins() {
    let dead = format!("http://127.0.0.1:{}/health", free_port());
    let poller = format!("dw_health_poller:\n  check_url: {dead}\n  interval: 0.1\n");
    // The file's bind and port win over -b and -p.
    let port = free_port();
    let setup = AgentSetup::datawave(port, &format!("bind: 127.0.0.1\nport: {port}\n{poller}"));
    let other = free_port().to_string();
    let agent = setup.start_with(&["-b", "::1", "-p", &other]);
    wait_for("a poll", Duration::from_secs(5), || setup.ask("") == "down\n");
    terminate(agent);
    let log = setup.space.read("agent.log");
    assert!(
        log.contains(&format!("agent listening on 127.0.0.1:{port}, health from {dead}")),
        "{log}"
    );

    // Where the file is silent, the long flags.
    let port = free_port();
    let setup = AgentSetup::datawave(port, &poller);
    let agent = setup.start_with(&["--bind", "::1", "--port", &port.to_string()]);
    wait_for("a poll", Duration::from_secs(5), || setup.ask_at("::1", "") == "down\n");
    terminate(agent);
    let log = setup.space.read("agent.log");
    assert!(log.contains(&format!("agent listening on [::1]:{port}")), "{log}");

    // -s: the file is not read at all (here it does not exist).
    let port = free_port();
    let setup = AgentSetup::datawave(port, &poller);
    std::fs::remove_file(setup.space.config()).unwrap();
    let agent = setup.start_with(&["-s", "-b", "127.0.0.1", "-p", &port.to_string()]);
    terminate(agent);
    let log = setup.space.read("agent.log");
    assert!(
        log.contains(&format!(
            "agent listening on 127.0.0.1:{port}, health from http://localhost:8080/DataWave/Common/Health/health"
        )),
        "{log}"
    );

    // -l: debug logs each check; critical not even the start.
    let port = free_port();
    let setup = AgentSetup::datawave(port, &format!("bind: 127.0.0.1\nport: {port}\n{poller}"));
    let agent = setup.start_with(&["-l", "debug"]);
    setup.ask("");
    wait_for("a debug line", Duration::from_secs(5), || {
        setup.space.read("agent.log").contains("agent check from 127.0.0.1:")
    });
    terminate(agent);
    let agent = setup
        .command(&["--loglevel", "critical"])
        .spawn(&setup.space.path().join("agent.log"));
    wait_for("a poll", Duration::from_secs(10), || {
        TcpStream::connect(("127.0.0.1", port)).is_ok() && setup.ask("") == "down\n"
    });
    terminate(agent);
    assert_eq!(setup.space.read("agent.log"), "");
}

#[test]
fn datawave_config_errors_name_the_file_and_line_and_check_config_reads_the_file() {
    let setup = AgentSetup::datawave(free_port(), "");
    let config = setup.space.config().display().to_string();
    let stderr = |output: Output| String::from_utf8(output.stderr).unwrap();
    let error = stderr(setup.command(&[]).expect_exit(1));
    assert_eq!(
        error,
        format!("datawave-haproxy-agent: {config}:1: the file is empty: expected a YAML mapping of keys\n")
    );
    std::fs::write(
        setup.space.config(),
        "port: 5555\ndw_health_poller:\n  os_load_reduction: 2\n",
    )
    .unwrap();
    let error = stderr(setup.command(&[]).expect_exit(1));
    assert!(
        error.starts_with(&format!(
            "error: {config}:3: dw_health_poller.os_load_reduction: [agent] os-load-reduction = \"2\": must be from 0 to 1\n"
        )),
        "{error}"
    );
    let missing = setup.space.path().join("absent.yml");
    let error = stderr(
        TestCommand::new(setup.space.path().join("datawave-haproxy-agent"))
            .args(&["-c", missing.to_str().unwrap()])
            .expect_exit(1),
    );
    assert!(error.contains(&missing.display().to_string()), "{error}");
    // -p takes a port number, as Datawave's argparse does.
    let error = stderr(setup.command(&["-p", "http"]).expect_exit(2));
    assert!(error.contains("invalid value 'http' for '--port <N>'"), "{error}");

    // check-config knows the file as Datawave's.
    std::fs::write(
        setup.space.config(),
        datawave_example(5555, "http://127.0.0.1:8080/health"),
    )
    .unwrap();
    let check = TestCommand::new(env!("CARGO_BIN_EXE_haproxide"))
        .args(&["check-config"])
        .config(setup.space.config())
        .expect_success();
    assert_eq!(
        stderr(check.clone()),
        format!(
            "warning: {config}:14: dw_health_poller.stop_timeout: haproxide does not wait for a poll under way when it stops, ignored\n"
        )
    );
    assert_eq!(
        String::from_utf8(check.stdout).unwrap(),
        format!("configuration is valid ({config})\n")
    );
    // So does `haproxide agent` (nothing listens at the URL: `down`).
    let dead = format!("http://127.0.0.1:{}/health", free_port());
    std::fs::write(setup.space.config(), datawave_example(5555, &dead)).unwrap();
    let reply = TestCommand::new(env!("CARGO_BIN_EXE_haproxide"))
        .args(&["agent", "--check"])
        .config(setup.space.config())
        .expect_success();
    assert_eq!(String::from_utf8(reply.stdout).unwrap(), "down\n");
}

#[test]
fn haproxy_follows_the_agent_through_weight_drain_down_and_recovery() {
    let mut endpoint = HttpServer::start("health");
    endpoint.respond_json(200, &health("ready", 80, 0.5));
    let setup = AgentSetup::new(&format!(
        "health-url = http://127.0.0.1:{}/DataWave/Common/Health/health\ninterval = 0.1\n",
        endpoint.port()
    ));
    let agent = setup.start();
    let lab = Lab::builder()
        .backend("be_app", &["s1"])
        .health_checks()
        .server_options(&format!(
            "weight 100 agent-check agent-port {} agent-inter 200ms",
            setup.port
        ))
        .start();

    // 1 - 0.56 - 0.2 = 0.24000000000000005: 24% of weight 100.
    wait_for_state(&lab, "UP", "24");
    endpoint.respond_json(503, r#"{"Status": "drain", "Details": "connection limit"}"#);
    // "0% drain", Datawave's reply to a 503.
    wait_for_state(&lab, "DRAIN (agent)", "0");
    endpoint.stop();
    // Connection refused: "down".
    wait_for_state(&lab, "DOWN (agent)", "0");
    endpoint.restart();
    endpoint.respond_json(200, &health("ready", 30, 0.1));
    // "75% ready up": ready clears the drain, up the down.
    wait_for_state(&lab, "UP", "75");

    let (status, took) = terminate(agent);
    assert!(status.success());
    assert!(took < Duration::from_secs(2), "took {took:?}");
}

#[test]
fn check_prints_the_reply_for_each_health_source() {
    let busy = HttpServer::start("busy");
    busy.respond_json(200, &health("ready", 80, 0.5));
    let draining = HttpServer::start("draining");
    draining.respond_json(200, &health("drain", 10, 0.0));
    let unavailable = HttpServer::start("unavailable");
    unavailable.respond_json(503, "{}");
    let setup = AgentSetup::new(&format!(
        "health-url = http://127.0.0.1:{}/health\nunavailable-up = true\n\
         [agent-urls]\nbe_drain = http://127.0.0.1:{}/health\nbe_503 = http://127.0.0.1:{}/health\n",
        busy.port(),
        draining.port(),
        unavailable.port()
    ));
    let output = setup.command(&["--check"]).expect_success();
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "(default): 24% ready up\nbe_drain: 0% drain up\nbe_503: 0% drain up\n"
    );
}

#[test]
fn agent_send_picks_the_health_url_and_interval_0_polls_on_each_connection() {
    let first = HttpServer::start("first");
    first.respond_json(200, &health("ready", 0, 0.0));
    let second = HttpServer::start("second");
    second.respond_json(200, &health("ready", 30, 0.1));
    let setup = AgentSetup::new(&format!(
        "health-url = http://127.0.0.1:{}/health\ninterval = 0\nmaxconn = 40\n\
         [agent-urls]\nbe_second = http://127.0.0.1:{}/health\n",
        first.port(),
        second.port()
    ));
    let agent = setup.start();
    assert_eq!(setup.ask("be_second\n"), "75% ready up maxconn:40\n");
    assert_eq!(setup.ask("BE_SECOND\r\n"), "75% ready up maxconn:40\n");
    assert_eq!(setup.ask("be_unknown\n"), "100% ready up maxconn:40\n");
    assert_eq!(setup.ask(""), "100% ready up maxconn:40\n", "nothing sent: the default");
    // interval = 0: each connection polls, so a change shows at once.
    second.respond_json(200, &health("maint", 0, 0.0));
    assert_eq!(setup.ask("be_second\n"), "100% maint maxconn:40\n");
    assert_eq!(second.requests(), 3);
    assert_eq!(first.requests(), 2);
    let (status, _) = terminate(agent);
    assert!(status.success());
}

#[test]
fn timeouts_and_odd_statuses_keep_the_last_reply_unless_told_and_staleness_ends_it() {
    let endpoint = HttpServer::start("health");
    endpoint.respond_json(200, &health("ready", 0, 0.0));
    let setup = AgentSetup::new(&format!(
        "health-url = http://127.0.0.1:{}/health\ninterval = 0.05\nstaleness-interval = 0.5\n\
         staleness-response = 50% #stale\n",
        endpoint.port()
    ));
    let agent = setup.start();
    wait_for("the first poll", Duration::from_secs(5), || {
        setup.ask("") == "100% ready up\n"
    });
    // A 500 is neither health nor 503: the last reply stands, until stale.
    endpoint.respond_json(500, "oops");
    assert_eq!(setup.ask(""), "100% ready up\n");
    wait_for("the staleness-response", Duration::from_secs(5), || {
        setup.ask("") == "50% #stale\n"
    });
    endpoint.respond_json(200, &health("ready", 80, 0.5));
    wait_for("a fresh reply", Duration::from_secs(5), || {
        setup.ask("") == "24% ready up\n"
    });
    let (status, _) = terminate(agent);
    assert!(status.success());

    let told = AgentSetup::new(&format!(
        "health-url = http://127.0.0.1:{}/health\nerror-response = 10% ready up\n",
        endpoint.port()
    ));
    endpoint.respond_json(500, "oops");
    let output = told.run(&["--check"]);
    assert_eq!(String::from_utf8_lossy(&output.stdout), "10% ready up\n");
}

#[test]
fn bad_agent_settings_name_file_line_and_key() {
    let setup = AgentSetup::new(
        "os-load-reduction = 2\ndown-response = 0.5%\nsource = disk\n[agent-urls]\nbe_x = ftp://host/health\n",
    );
    let output = setup.run(&["--check"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let path = setup.space.config().display();
    for expected in [
        format!("{path}:6: [agent] os-load-reduction = \"2\": must be from 0 to 1"),
        format!("{path}:7: [agent] down-response = \"0.5%\": \"0.5%\": a weight is whole digits then %"),
        format!("{path}:8: [agent] source = \"disk\": must be one of: http, local"),
        format!("{path}:10: [agent-urls] be_x = \"ftp://host/health\": must be an http:// URL"),
    ] {
        assert!(stderr.contains(&expected), "{expected}\nin:\n{stderr}");
    }
    let named = AgentSetup::bound("localhost", 5555, "retries = -1\n");
    let output = named.run(&["--check"]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        format!(
            "error: {}:2: [agent] bind = \"localhost\": not an IPv4 or IPv6 address\n\
             haproxide: invalid configuration: 1 error(s)\n",
            named.space.config().display()
        )
    );
}

#[test]
fn a_health_endpoint_that_never_answers_does_not_hold_replies_back() {
    // Accepts connections (the kernel does) and never answers them.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let setup = AgentSetup::bound(
        "::1",
        free_port_v6(),
        &format!(
            "health-url = http://127.0.0.1:{}/health\ninterval = 0.2\ntimeout = 30\nretries = 0\n",
            silent.local_addr().unwrap().port()
        ),
    );
    let agent = setup.start();
    // interval > 0: the reply comes from what the agent knows (nothing yet:
    // an empty line), not from a poll that takes up to 30 s.
    let started = std::time::Instant::now();
    assert_eq!(setup.ask_at("::1", ""), "\n");
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "took {took:?}");
    let (status, took) = terminate(agent);
    assert!(status.success());
    assert!(
        took < Duration::from_secs(2),
        "a poll under way does not hold shutdown: {took:?}"
    );
}

#[test]
fn a_url_that_never_answered_validly_gets_the_unavailable_response_not_an_empty_line() {
    let not_found = HttpServer::start("not-found");
    not_found.respond_json(404, "nope");
    let not_json = HttpServer::start("not-json");
    not_json.respond_json(200, "<html>");
    let string_number = HttpServer::start("string-number");
    string_number.respond_json(
        200,
        r#"{"Status": "ready", "ConnectionUsagePercent": "5", "SystemLoad": 0, "SwapBytesUsed": 0}"#,
    );
    let setup = AgentSetup::new(&format!(
        "health-url = http://127.0.0.1:{}/health\n[agent-urls]\nbe_html = http://127.0.0.1:{}/health\n\
         be_string = http://127.0.0.1:{}/health\n",
        not_found.port(),
        not_json.port(),
        string_number.port()
    ));
    let output = setup.command(&["--check"]).expect_success();
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "(default): 0% drain\nbe_html: 0% drain\nbe_string: 0% drain\n"
    );
    // Once a valid answer came, an error keeps it (Datawave's behaviour).
    let agent = setup.start();
    wait_for("the first poll", Duration::from_secs(5), || {
        setup.ask("") == "0% drain\n"
    });
    not_found.respond_json(200, &health("Ready", 0, 0.0));
    wait_for("a valid answer", Duration::from_secs(5), || {
        setup.ask("") == "100% ready up\n"
    });
    not_found.respond_json(404, "nope");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(setup.ask(""), "100% ready up\n");
    let (status, _) = terminate(agent);
    assert!(status.success());
}

#[test]
fn systemd_hears_ready_once_every_source_was_polled_and_pings_while_they_are() {
    let endpoint = HttpServer::start("health");
    endpoint.respond_json(200, &health("Ready", 0, 0.0));
    // Accepts connections and never answers: its first poll gives up after 1 s.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let setup = AgentSetup::bound(
        "127.0.0.1",
        free_port(),
        &format!(
            "health-url = http://127.0.0.1:{}/health\ninterval = 0.1\ntimeout = 1\nretries = 0\n\
             [agent-urls]\nbe_slow = http://127.0.0.1:{}/health\n",
            endpoint.port(),
            silent.local_addr().unwrap().port()
        ),
    );
    let notify = NotifySocket::bind(setup.space.path());
    let started = Instant::now();
    let agent = setup
        .command(&[])
        .env("NOTIFY_SOCKET", notify.path())
        .env("WATCHDOG_USEC", "400000")
        .spawn(&setup.space.path().join("agent.log"));
    assert_eq!(notify.wait_for("READY=1", Duration::from_secs(10)), ["READY=1"]);
    let ready_after = started.elapsed();
    assert!(
        ready_after >= Duration::from_secs(1),
        "ready after {ready_after:?}, before be_slow's poll ended"
    );
    // Ready means replies from the sources, not the empty line of an agent
    // that knows nothing yet.
    assert_eq!(setup.ask(""), "100% ready up\n");
    notify.expect_pings(Duration::from_secs(2), 8);
    let (status, _) = terminate(agent);
    assert!(status.success());
    notify.expect_stopping();
}

#[test]
fn ctrl_c_stops_the_agent_cleanly() {
    let setup = AgentSetup::new("source = local\n");
    let agent = setup.start();
    assert!(setup.ask("").ends_with("% ready up\n"));
    let (status, took) = stop_with(agent, Signal::SIGINT);
    assert_eq!(status.code(), Some(0));
    assert!(took < Duration::from_secs(2), "took {took:?}");
    assert!(setup.space.read("agent.log").contains("SIGINT: stopping"));
}

#[test]
fn a_failing_url_and_a_stale_reply_are_logged_when_their_state_changes_not_at_every_poll() {
    let endpoint = HttpServer::start("health");
    endpoint.respond_json(200, &health("ready", 0, 0.0));
    let setup = AgentSetup::new(&format!(
        "health-url = http://127.0.0.1:{}/health\ninterval = 0.02\nstaleness-interval = 0.3\n",
        endpoint.port()
    ));
    let agent = setup.start();
    wait_for("the first poll", Duration::from_secs(5), || {
        setup.ask("") == "100% ready up\n"
    });
    endpoint.respond_json(500, "oops");
    wait_for("a stale reply", Duration::from_secs(5), || setup.ask("") == "\n");
    for _ in 0..20 {
        assert_eq!(setup.ask(""), "\n");
    }
    endpoint.respond_json(200, &health("ready", 0, 0.0));
    wait_for("a fresh reply", Duration::from_secs(5), || {
        setup.ask("") == "100% ready up\n"
    });
    let (status, _) = terminate(agent);
    assert!(status.success());
    let log = setup.space.read("agent.log");
    let count = |text: &str| log.lines().filter(|line| line.contains(text)).count();
    assert_eq!(count("unexpected HTTP status 500"), 1, "{log}");
    assert_eq!(count("no fresh answer"), 1, "{log}");
    assert_eq!(count("answering again"), 1, "{log}");
}
