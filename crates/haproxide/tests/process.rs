//! `haproxide process`: end to end with pull and real HAProxy, crash safety,
//! bad input, the inotify daemon and signals, and retries after a failing sink.

// Test helpers fail the test by panicking, like the tests themselves.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Output};
use std::time::Duration;

mod common;

use haproxy::ShowStat;
use testkit::{
    CarbonRelay, Lab, NotifySocket, Signal, Tansu, TestCommand, Workspace, copy_dir, dir_entries, stop_with, terminate,
    wait_for,
};

/// `[graphite]` keys for a sink that reconnects every 0.1 to 0.2 s.
const QUICK_RECONNECT: &str = "retries = 1\ninterval = 0.1\nbackoff = 1\ndelay = 0.2\n";

/// A spool, a local store and a config for them.
struct Setup {
    space: Workspace,
}

impl Setup {
    /// Local-store only, with more `[pull]` keys.
    fn new(pull: &str) -> Setup {
        Setup::with_graphite(pull, "", "enabled = false\n")
    }

    /// Local-store and the Graphite sink, sending to a relay on `port` and
    /// reconnecting quickly.
    fn sending_to(port: u16) -> Setup {
        Setup::sending_with(port, "", &format!("{QUICK_RECONNECT}write-timeout = 1\n"))
    }

    /// Local-store and the Graphite sink, sending to a relay on `port`, with
    /// more `[process]` and `[graphite]` keys.
    fn sending_with(port: u16, process: &str, graphite: &str) -> Setup {
        Setup::with_graphite(
            "",
            process,
            &format!("server = 127.0.0.1\nport = {port}\nconnect-timeout = 0.5\n{graphite}"),
        )
    }

    fn with_graphite(pull: &str, process: &str, graphite: &str) -> Setup {
        let space = Workspace::new("haproxystats.conf", |dir| {
            let root = dir.display();
            format!(
                "[paths]\nbase-dir = {root}\n[pull]\ndst-dir = {root}/incoming\ntmp-dst-dir = {root}/incoming.tmp\n\
                 min-free-space = 1M\ntimeout = 0.5\n{pull}\n[process]\nsrc-dir = {root}/incoming\nworkers = 4\n{process}\n\
                 [local-store]\n[graphite]\n{graphite}"
            )
        });
        fs::create_dir_all(space.path().join("incoming")).unwrap();
        Setup { space }
    }

    /// Local-store and the Kafka sink to `tansu`'s `topic` in `format`.
    fn kafka(tansu: &Tansu, topic: &str, format: &str) -> Setup {
        let setup = Setup::new("");
        setup.space.append_config(&format!(
            "\n[kafka]\nenabled = true\nbrokers = {}\ntopic = {topic}\nformat = {format}\nmessage-bytes = 4K\n\
             rdkafka.message.timeout.ms = 3000\nrdkafka.acks = all\n",
            tansu.address()
        ));
        setup
    }

    fn src(&self) -> PathBuf {
        self.space.path().join("incoming")
    }

    fn store(&self) -> PathBuf {
        self.space.path().join("local-store")
    }

    fn quarantine(&self) -> PathBuf {
        self.space.path().join("incoming.quarantine")
    }

    /// `haproxide ARGS -f CONFIG`.
    fn command(&self, args: &[&str]) -> TestCommand {
        self.space.command(env!("CARGO_BIN_EXE_haproxide"), args)
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output()
    }

    fn daemon(&self, log: &str) -> Child {
        self.command(&["process"]).spawn(&self.space.path().join(log))
    }

    fn log(&self, log: &str) -> String {
        self.space.read(log)
    }

    /// Copies the synthetic round in as `name`, renamed in from beside the spool.
    fn add_round(&self, name: &str) {
        self.add_edited_round(name, |_| {});
    }

    /// As [`Setup::add_round`], with `servers` more servers in `be_app` of
    /// its first stats file: a round whose output is megabytes.
    fn add_large_round(&self, name: &str, servers: usize) {
        self.add_edited_round(name, |round| {
            let stat = round.join("admin1.sock_stat");
            let mut text = fs::read_to_string(&stat).unwrap();
            let row = text
                .lines()
                .find(|line| line.starts_with("be_app,srv1,"))
                .unwrap()
                .to_owned();
            for n in 0..servers {
                text.push_str(&row.replacen("be_app,srv1,", &format!("be_app,bulk{n},"), 1));
                text.push('\n');
            }
            fs::write(&stat, text).unwrap();
        });
    }

    /// Copies the synthetic round beside the spool, lets `edit` change it,
    /// and renames it in as `name`.
    fn add_edited_round(&self, name: &str, edit: impl FnOnce(&Path)) {
        let staging = self.space.path().join(format!(".staging-{name}"));
        copy_dir(&fixture("synthetic-1700000000"), &staging);
        edit(&staging);
        fs::rename(&staging, self.src().join(name)).unwrap();
    }

    /// `path below the prefix -> value` of a stored round.
    fn stored(&self, round: &str) -> BTreeMap<String, f64> {
        let text = fs::read_to_string(self.store().join(round).join("stats")).unwrap();
        text.lines()
            .map(|line| {
                let fields: Vec<&str> = line.split(' ').collect();
                let (_, path) = fields[0].split_once(".haproxy.").unwrap();
                (path.to_owned(), fields[1].parse().unwrap())
            })
            .collect()
    }
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures")
        .join(name)
        .canonicalize()
        .unwrap_or_else(|_| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../fixtures/haproxystats")
                .join(name)
        })
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn pull_then_process_equals_direct_queries_of_two_instances() {
    let lab = Lab::builder().instances(2).start();
    assert_eq!(lab.instance(0).http_get("fe_main", "/", 7), vec![200; 7]);
    assert_eq!(lab.instance(1).http_get("fe_main", "/", 5), vec![200; 5]);
    let setup = Setup::new(&format!("socket-dir = {}", lab.socket_dir().display()));
    setup.command(&["pull", "--once"]).expect_success();
    let round = dir_entries(&setup.src()).pop().unwrap();
    // Counters that move only with traffic, read directly at the same moment.
    let direct: Vec<ShowStat> = lab
        .instances()
        .iter()
        .map(|i| ShowStat::parse(i.raw_command("show stat")).unwrap())
        .collect();

    setup.command(&["process", "--once"]).expect_success();
    assert_eq!(
        dir_entries(&setup.src()),
        Vec::<String>::new(),
        "the delivered round is removed"
    );
    let stored = setup.stored(&round);
    let sum = |pxname: &str, svname: &str, column: &str| common::stat_sum(&direct, pxname, svname, column);
    for column in ["stot", "bin", "bout", "hrsp_2xx", "req_tot", "conn_tot"] {
        assert_eq!(
            stored[&format!("frontend.fe_main.{column}")],
            sum("fe_main", "FRONTEND", column),
            "fe {column}"
        );
    }
    for column in ["stot", "bin", "bout", "hrsp_2xx", "lbtot"] {
        assert_eq!(
            stored[&format!("backend.be_app.{column}")],
            sum("be_app", "BACKEND", column),
            "be {column}"
        );
        for server in ["s1", "s2"] {
            assert_eq!(
                stored[&format!("backend.be_app.server.{server}.{column}")],
                sum("be_app", server, column)
            );
        }
    }
    assert_eq!(stored["frontend.fe_main.stot"], 12.0);
    assert_eq!(stored["backend.be_app.TotalServers"], 2.0);
    assert_eq!(stored["haproxystats.FailedSockets"], 0.0);
    assert!(
        !stored.contains_key("daemon.ZlibMemUsage"),
        "HAProxy 2.6 does not report it"
    );
    assert!(stored.contains_key("daemon.CumConns"));
}

#[test]
fn kill_9_in_a_backlog_of_200_rounds_loses_nothing() {
    let setup = Setup::new("");
    let names: Vec<String> = (0..200).map(|n| (1_700_000_000 + n).to_string()).collect();
    for name in &names {
        setup.add_round(name);
    }
    let mut first = setup.daemon("first.log");
    wait_for("some rounds delivered", Duration::from_secs(30), || {
        dir_entries(&setup.store()).len() >= 20
    });
    first.kill().unwrap();
    first.wait().unwrap();
    let left = dir_entries(&setup.src()).len();
    let stored_before = dir_entries(&setup.store()).len();
    assert!(left > 0, "the kill came before the backlog was done ({left} left)");
    eprintln!("killed with {left} of 200 rounds left in the spool, {stored_before} in local-store");

    let second = setup.daemon("second.log");
    wait_for("an empty spool", Duration::from_secs(60), || {
        dir_entries(&setup.src()).is_empty()
    });
    let (status, _) = terminate(second);
    assert!(status.success());
    let stored = dir_entries(&setup.store());
    assert_eq!(stored, names, "every round reached local-store");
    eprintln!("after the restart: {} rounds in local-store, spool empty", stored.len());
    for name in &names {
        let stats = fs::read_to_string(setup.store().join(name).join("stats")).unwrap();
        assert!(
            stats.ends_with(&format!(
                "haproxystats.TotalWallClockTime {} {name}\n",
                stats_total(&stats)
            )),
            "{name}"
        );
    }
}

/// The TotalWallClockTime value of a stored round (its last line).
fn stats_total(stats: &str) -> String {
    stats.lines().last().unwrap().split(' ').nth(1).unwrap().to_owned()
}

#[test]
fn bad_rounds_are_quarantined_or_partly_processed_with_reasons() {
    let setup = Setup::new("");
    let make = |name: &str, files: &[(&str, Vec<u8>)]| {
        let staging = setup.space.path().join(format!(".make-{name}"));
        fs::create_dir_all(&staging).unwrap();
        for (file, bytes) in files {
            fs::write(staging.join(file), bytes).unwrap();
        }
        fs::rename(&staging, setup.src().join(name)).unwrap();
    };
    let synthetic = fixture("synthetic-1700000000");
    let info = fs::read(synthetic.join("admin1.sock_info")).unwrap();
    let stat = fs::read(synthetic.join("admin1.sock_stat")).unwrap();
    let header_only: Vec<u8> = stat
        .split(|byte| *byte == b'\n')
        .next()
        .unwrap()
        .iter()
        .chain(b"\n\n")
        .copied()
        .collect();
    let old_layout = fs::read(fixture("peers/datadog-integrations-core/statuses_mock")).unwrap();
    let bad_cell = fs::read(fixture("peers/datadog-integrations-core/mock_data")).unwrap();
    make(
        "1700000001",
        &[
            ("a.sock_info", vec![0, 159, 146, 150, 255]),
            ("a.sock_stat", b"\x00\x01garbage".to_vec()),
        ],
    );
    make(
        "1700000002",
        &[
            ("a.sock_info", info.clone()),
            ("a.sock_stat", stat[..stat.len() / 2].to_vec()),
        ],
    );
    make(
        "1700000003",
        &[("a.sock_info", info.clone()), ("a.sock_stat", header_only)],
    );
    make(
        "1700000004",
        &[
            ("a.sock_info", info.clone()),
            ("a.sock_stat", stat.clone()),
            ("b.sock_stat", old_layout),
        ],
    );
    make("1700000005", &[]);
    make(
        "1700000006",
        &[
            ("a.sock_info", info.clone()),
            ("a.sock_stat", stat.clone()),
            ("b.sock_stat", bad_cell),
        ],
    );
    make("not-a-round", &[("a.sock_info", info), ("a.sock_stat", stat)]);

    let output = setup.run(&["process", "--once"]);
    let log = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "rounds were quarantined: {log}");
    assert_eq!(dir_entries(&setup.src()), Vec::<String>::new(), "{log}");
    assert_eq!(
        dir_entries(&setup.quarantine()),
        ["1700000001", "1700000005", "not-a-round"]
    );
    let reason = |name: &str| fs::read_to_string(setup.quarantine().join(name).join("quarantine-reason.txt")).unwrap();
    assert!(
        reason("1700000001").contains("a.sock_info: line 1: expected `Name: value`"),
        "{}",
        reason("1700000001")
    );
    assert!(reason("1700000001").contains("a.sock_stat: line 1: not `show stat` CSV"));
    assert_eq!(reason("1700000005"), "no *_info or *_stat file\n");
    assert!(reason("not-a-round").starts_with("the name is not a round"));
    assert!(log.contains("round 1700000001 quarantined in "), "{log}");

    assert_eq!(
        dir_entries(&setup.store()),
        ["1700000002", "1700000003", "1700000004", "1700000006"]
    );
    let cut = setup.stored("1700000002");
    assert_eq!(cut["daemon.CurrConns"], 50.0, "the readable show info is used");
    assert!(
        !cut.keys().any(|path| path.starts_with("frontend.")),
        "the cut show stat is left out"
    );
    assert!(log.contains("round 1700000002: a.sock_stat: line "), "{log}");
    assert!(
        log.contains("reply cut short; the file is left out of this snapshot"),
        "{log}"
    );
    let empty = setup.stored("1700000003");
    assert_eq!(empty["haproxystats.MetricsFrontend"], 1.0);
    assert_eq!(empty["daemon.CurrConns"], 50.0);
    // A 2.6 reply beside a 1.5-layout one: columns both report are summed,
    // the others (compression, conn_rate, ...) are not emitted rather than half-summed.
    let mixed = setup.stored("1700000004");
    assert_eq!(mixed["frontend.fe_http.stot"], 26.0);
    assert_eq!(mixed["frontend.a.stot"], 1.0);
    assert!(!mixed.contains_key("frontend.fe_http.comp_byp"));
    assert!(!mixed.contains_key("frontend.fe_http.conn_rate"));
    assert!(
        log.contains("round 1700000004: show stat: frontend columns not reported by every process, not emitted: comp_byp, comp_in"),
        "{log}"
    );
    // A reply with a non-numeric cell is left out whole, and does not hold back the others' columns.
    let with_bad_file = setup.stored("1700000006");
    assert_eq!(with_bad_file["frontend.fe_http.stot"], 26.0);
    assert_eq!(with_bad_file["frontend.fe_http.comp_byp"], 0.0);
    assert!(!with_bad_file.contains_key("frontend.a.stot"));
    assert!(
        log.contains("round 1700000006: b.sock_stat: line 10: column `hrsp_2xx` holds \"space, afterspace\", not an integer; the file is left out"),
        "{log}"
    );
}

#[test]
fn the_daemon_picks_up_renamed_rounds_and_stops_on_sigterm() {
    let setup = Setup::new("");
    // What a crash in the middle of removing a delivered round leaves.
    copy_dir(
        &fixture("synthetic-1700000000"),
        &setup.src().join(".removing-1699999999"),
    );
    let daemon = setup.daemon("daemon.log");
    wait_for("the watch", Duration::from_secs(10), || {
        setup.log("daemon.log").contains("process started")
    });
    setup.add_round("1700000100");
    wait_for("the round delivered", Duration::from_secs(10), || {
        dir_entries(&setup.store()) == ["1700000100"]
    });
    setup.add_round("1700000101");
    wait_for("the second round", Duration::from_secs(10), || {
        dir_entries(&setup.store()).len() == 2
    });
    let (status, took) = terminate(daemon);
    assert!(status.success());
    assert!(took < Duration::from_secs(1), "took {took:?}");
    assert_eq!(dir_entries(&setup.src()), Vec::<String>::new());
    assert_eq!(setup.stored("1700000100")["frontend.fe_http.stot"], 40.0);

    // Ctrl-C stops it the same way.
    let daemon = setup.daemon("again.log");
    wait_for("the watch", Duration::from_secs(10), || {
        setup.log("again.log").contains("process started")
    });
    let (status, took) = stop_with(daemon, Signal::SIGINT);
    assert_eq!(status.code(), Some(0));
    assert!(took < Duration::from_secs(1), "took {took:?}");
    assert!(setup.log("again.log").contains("SIGINT: stopping"));
}

#[test]
fn systemd_hears_ready_once_src_dir_is_watched_and_pings_while_workers_move() {
    let setup = Setup::new("");
    let notify = NotifySocket::bind(setup.space.path());
    let daemon = setup
        .command(&["process"])
        .env("NOTIFY_SOCKET", notify.path())
        .env("WATCHDOG_USEC", "400000")
        .spawn(&setup.space.path().join("daemon.log"));
    assert_eq!(notify.wait_for("READY=1", Duration::from_secs(10)), ["READY=1"]);
    // Logged once src-dir is watched and its backlog scanned.
    assert!(setup.log("daemon.log").contains("process started"));
    setup.add_round("1700000100");
    notify.expect_pings(Duration::from_secs(2), 8);
    assert_eq!(dir_entries(&setup.store()), ["1700000100"]);
    let (status, _) = terminate(daemon);
    assert!(status.success());
    notify.expect_stopping();
}

/// Adds round 1700000200 and runs `process --once`, whose `sink` fails:
/// exit 1, the sink named, the round still in `src-dir`.
fn fails_and_keeps_the_round(setup: &Setup, sink: &str) {
    setup.add_round("1700000200");
    let failed = setup.run(&["process", "--once"]);
    assert_eq!(failed.status.code(), Some(1), "{}", stderr(&failed));
    assert!(
        stderr(&failed).contains(&format!("round 1700000200: {sink} failed")),
        "{}",
        stderr(&failed)
    );
    assert_eq!(dir_entries(&setup.src()), ["1700000200"], "the round stays in src-dir");
}

#[test]
fn a_failing_sink_keeps_the_round_for_a_retry() {
    let setup = Setup::new("");
    // A file where local-store needs a directory: every delivery fails.
    fs::write(setup.store(), "in the way").unwrap();
    fails_and_keeps_the_round(&setup, "local-store");

    fs::remove_file(setup.store()).unwrap();
    setup.command(&["process", "--once"]).expect_success();
    assert_eq!(dir_entries(&setup.src()), Vec::<String>::new());
    assert_eq!(dir_entries(&setup.store()), ["1700000200"]);
}

/// Asserts that the relay received the metric lines of `expected`, in order.
/// Self-metric lines (`haproxystats.*`) are left out: they measure the run
/// that sent them, and a round sent after an outage was computed again.
fn assert_relayed(received: &[String], expected: &[String]) {
    let metrics = |lines: &[String]| -> Vec<String> {
        lines
            .iter()
            .filter(|line| !line.contains(".haproxystats."))
            .cloned()
            .collect()
    };
    let (received, expected) = (metrics(received), metrics(expected));
    if let Some(index) = (0..received.len().max(expected.len())).find(|&i| received.get(i) != expected.get(i)) {
        panic!(
            "line {index} of {} received (of {} expected): {:?}, expected {:?}",
            received.len(),
            expected.len(),
            received.get(index),
            expected.get(index)
        );
    }
}

/// Waits until `daemon` emptied the spool, checks that the relay received
/// every metric line of `rounds` in round order, and stops the daemon.
fn drain_to_relay(setup: &Setup, relay: &CarbonRelay, rounds: &[String], daemon: Child) {
    wait_for("an empty spool", Duration::from_secs(30), || {
        dir_entries(&setup.src()).is_empty()
    });
    let expected = stored_lines(setup, rounds);
    let received = relay.wait_for_lines(expected.len(), Duration::from_secs(10));
    eprintln!(
        "{} lines of {} rounds at the relay, in round order",
        received.len(),
        rounds.len()
    );
    assert_relayed(&received, &expected);
    let (status, _) = terminate(daemon);
    assert!(status.success());
}

/// The lines local-store holds for `rounds`, in round order.
fn stored_lines(setup: &Setup, rounds: &[String]) -> Vec<String> {
    rounds
        .iter()
        .flat_map(|round| {
            let text = fs::read_to_string(setup.store().join(round).join("stats")).unwrap();
            text.lines().map(str::to_owned).collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn a_graphite_outage_delays_rounds_in_the_spool_and_loses_none() {
    let mut relay = CarbonRelay::start();
    // One connect attempt every 2 s while the relay is down. The relay is
    // restarted right after a failed attempt, so that no attempt meets it
    // while it starts: carbon-c-relay 3.7.3 may crash then (see
    // `CarbonRelay::restart`), losing lines it had accepted.
    let setup = Setup::sending_with(relay.port(), "", "retries = 0\ndelay = 2\nwrite-timeout = 1\n");
    let failed_attempts = || {
        setup
            .log("daemon.log")
            .matches("attempt(s) failed, next try in")
            .count()
    };
    let names: Vec<String> = (0..21).map(|n| (1_700_000_000 + n).to_string()).collect();
    let daemon = setup.daemon("daemon.log");
    setup.add_round(&names[0]);
    wait_for("the first round delivered", Duration::from_secs(20), || {
        dir_entries(&setup.src()).is_empty()
    });
    relay.wait_for_lines(stored_lines(&setup, &names[..1]).len(), Duration::from_secs(10));

    relay.stop();
    for name in &names[1..] {
        setup.add_round(name);
        std::thread::sleep(Duration::from_millis(50));
    }
    wait_for("local-store keeps working", Duration::from_secs(30), || {
        dir_entries(&setup.store()).len() == 21
    });
    assert_eq!(
        dir_entries(&setup.src()),
        names[1..],
        "the spool holds what Graphite lacks"
    );

    let failed = failed_attempts();
    wait_for("a failed connect attempt", Duration::from_secs(10), || {
        failed_attempts() > failed
    });
    relay.restart();
    drain_to_relay(&setup, &relay, &names, daemon);
    let log = setup.log("daemon.log");
    assert!(log.contains("graphite recovered: "), "{log}");
}

#[test]
fn kill_9_while_graphite_is_down_loses_nothing() {
    let mut relay = CarbonRelay::start();
    relay.stop();
    let setup = Setup::sending_to(relay.port());
    let names: Vec<String> = (0..5).map(|n| (1_700_000_000 + n).to_string()).collect();
    for name in &names {
        setup.add_round(name);
    }
    let mut first = setup.daemon("first.log");
    wait_for("local-store has every round", Duration::from_secs(30), || {
        dir_entries(&setup.store()).len() == 5
    });
    first.kill().unwrap();
    first.wait().unwrap();
    assert_eq!(dir_entries(&setup.src()), names, "nothing left the spool");

    relay.restart();
    drain_to_relay(&setup, &relay, &names, setup.daemon("second.log"));
}

#[test]
fn once_stops_on_a_signal_like_the_daemon_and_no_round_reaches_graphite_twice() {
    let relay = CarbonRelay::start();
    let setup = Setup::sending_to(relay.port());
    let names: Vec<String> = (0..300).map(|n| (1_700_000_000 + n).to_string()).collect();
    for name in &names {
        setup.add_round(name);
    }
    let once = setup
        .command(&["process", "--once"])
        .spawn(&setup.space.path().join("once.log"));
    wait_for("20 rounds in local-store", Duration::from_secs(30), || {
        dir_entries(&setup.store()).len() >= 20
    });
    let (status, took) = terminate(once);
    assert_eq!(status.code(), Some(0), "{}", setup.log("once.log"));
    assert!(took < Duration::from_secs(3), "took {took:?} to stop");
    let left = dir_entries(&setup.src());
    eprintln!("stopped with {} of 300 rounds left in the spool", left.len());
    assert!(!left.is_empty(), "stopped before the end of the backlog");
    assert!(
        setup.log("once.log").contains("SIGTERM: stopping"),
        "{}",
        setup.log("once.log")
    );
    setup.command(&["process", "--once"]).expect_success();
    assert_eq!(dir_entries(&setup.src()), Vec::<String>::new());
    // Two connections, one after the other: the relay may interleave what
    // it had not yet written of the first, so lines are compared as a set.
    let expected = stored_lines(&setup, &names);
    let mut received = relay.wait_for_lines(expected.len(), Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(500));
    received.extend(relay.lines().into_iter().skip(received.len()));
    let metric_lines = |lines: &[String]| {
        let mut metrics: Vec<String> = lines
            .iter()
            .filter(|line| !line.contains(".haproxystats."))
            .cloned()
            .collect();
        metrics.sort();
        metrics
    };
    let (received, expected) = (metric_lines(&received), metric_lines(&expected));
    assert_eq!(
        received.len(),
        expected.len(),
        "each metric line once: none lost, none twice"
    );
    assert!(
        received == expected,
        "the relay received other lines than local-store holds"
    );
}

#[test]
fn rounds_that_can_be_neither_removed_nor_quarantined_fail_once_and_count_as_what_happened() {
    use std::os::unix::fs::{PermissionsExt, chown};
    let setup = Setup::new("");
    setup.add_round("1700000000");
    setup.add_round("1700000001");
    let mode = |path: &Path, mode: u32| fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    // Root may remove anything: as root, the run is made as `nobody`, who may
    // read the rounds and write local-store but not change src-dir.
    let nobody = testkit::running_as_root().then_some(65534);
    mode(setup.space.path(), 0o755);
    fs::create_dir_all(setup.store()).unwrap();
    if let Some(uid) = nobody {
        chown(setup.store(), Some(uid), Some(uid)).unwrap();
    }
    mode(&setup.src(), 0o555);
    mode(&setup.src().join("1700000001"), 0o000);
    // nobody may not reach the build directory (a clone in a 0700 directory):
    // it runs a copy of the binary from the workspace.
    let binary = setup.space.path().join("haproxide");
    fs::copy(env!("CARGO_BIN_EXE_haproxide"), &binary).unwrap();
    let output = setup
        .space
        .command(binary.to_str().unwrap(), &["process", "--once"])
        .user(nobody)
        .output();
    mode(&setup.src().join("1700000001"), 0o755);
    mode(&setup.src(), 0o755);
    let log = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{log}");
    assert!(log.contains("round 1700000000: delivered, but cannot rename"), "{log}");
    assert!(log.contains("it will be delivered again"), "{log}");
    assert!(log.contains("round 1700000001 cannot be read"), "{log}");
    assert!(log.contains("quarantined=0 stuck=2"), "{log}");
    assert_eq!(dir_entries(&setup.src()), ["1700000000", "1700000001"]);
    assert_eq!(dir_entries(&setup.store()), ["1700000000"]);
}

#[test]
fn what_is_not_a_round_is_quarantined_and_no_symlink_is_followed_out_of_a_round() {
    let setup = Setup::new("");
    fs::write(setup.src().join("notes.txt"), "dropped here by hand\n").unwrap();
    std::os::unix::fs::symlink("/etc", setup.src().join("1700000009")).unwrap();
    setup.add_edited_round("1700000000", |round| {
        std::os::unix::fs::symlink("/etc/passwd", round.join("evil.sock_stat")).unwrap();
        std::os::unix::fs::symlink("/etc/hostname", round.join("evil.sock_info")).unwrap();
    });
    let output = setup.run(&["process", "--once"]);
    let log = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "two entries quarantined: {log}");
    assert!(log.contains("round notes.txt quarantined in"), "{log}");
    assert!(log.contains("not a round directory but a file"), "{log}");
    assert!(
        log.contains("not a round directory but a symbolic link (not followed)"),
        "{log}"
    );
    assert!(
        log.contains("evil.sock_stat: a symbolic link, not followed; left out"),
        "{log}"
    );
    assert!(
        log.contains("evil.sock_info: a symbolic link, not followed; left out"),
        "{log}"
    );
    assert!(
        !log.contains("root:"),
        "nothing of /etc/passwd is read or logged: {log}"
    );
    assert_eq!(dir_entries(&setup.src()), Vec::<String>::new());
    assert_eq!(
        dir_entries(&setup.quarantine()),
        [
            "1700000009",
            "1700000009.quarantine-reason.txt",
            "notes.txt",
            "notes.txt.quarantine-reason.txt"
        ]
    );
    assert!(
        fs::symlink_metadata(setup.quarantine().join("1700000009"))
            .unwrap()
            .is_symlink()
    );
    let stored = setup.stored("1700000000");
    assert!(
        stored.contains_key("frontend.fe_http.stot"),
        "the round's own files were used"
    );

    // The daemon sees a file written into src-dir as it is closed.
    let daemon = setup.daemon("daemon.log");
    wait_for("the daemon started", Duration::from_secs(10), || {
        setup.log("daemon.log").contains("process started")
    });
    fs::write(setup.src().join("later.txt"), "also by hand\n").unwrap();
    wait_for("later.txt quarantined", Duration::from_secs(10), || {
        setup.quarantine().join("later.txt").exists()
    });
    let (status, _) = terminate(daemon);
    assert!(status.success());
}

/// The metric lines of `lines` (not `haproxystats.*`), each at its first
/// occurrence: what a relay holds once repeated deliveries are set aside.
fn first_occurrences(lines: &[String]) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    lines
        .iter()
        .filter(|line| !line.contains(".haproxystats.") && seen.insert(line.as_str()))
        .cloned()
        .collect()
}

#[test]
fn a_relay_that_stops_reading_holds_back_neither_local_store_nor_shutdown() {
    let relay = CarbonRelay::start();
    let setup = Setup::sending_with(
        relay.port(),
        "shutdown-timeout = 2\n",
        &format!("{QUICK_RECONNECT}write-timeout = 30\nqueue-size = 1000\n"),
    );
    let names: Vec<String> = (0..4).map(|n| (1_700_000_000 + n).to_string()).collect();
    let first = setup.daemon("first.log");
    wait_for("the connection to the relay", Duration::from_secs(10), || {
        setup.log("first.log").contains(": connected (tcp)")
    });
    relay.freeze();
    // Megabytes of lines: more than the socket buffers of both ends hold, so
    // a write blocks, for up to write-timeout (30 s).
    setup.add_large_round(&names[0], 2000);
    wait_for("the large round in local-store", Duration::from_secs(20), || {
        dir_entries(&setup.store()) == names[..1]
    });
    for name in &names[1..] {
        setup.add_round(name);
    }
    wait_for("local-store keeps working", Duration::from_secs(10), || {
        dir_entries(&setup.store()).len() == names.len()
    });
    assert_eq!(dir_entries(&setup.src()), names, "Graphite has none of them yet");

    let (status, took) = terminate(first);
    eprintln!("stopped {} ms after SIGTERM", took.as_millis());
    assert!(status.success());
    assert!(took < Duration::from_secs(3), "took {took:?}; shutdown-timeout is 2 s");
    let log = setup.log("first.log");
    assert!(log.contains("did not finish within shutdown-timeout"), "{log}");
    // The large round alone exceeds queue-size; the next waits in the spool
    // instead of in memory, and those after it wait behind it.
    assert!(
        log.contains(
            "round 1700000001: graphite has 56364 lines queued in memory (queue-size 1000); the round waits in src-dir"
        ),
        "{log}"
    );
    assert!(!log.contains("round 1700000002: graphite has"), "{log}");
    assert_eq!(
        dir_entries(&setup.src()),
        names,
        "what Graphite lacks stays in the spool"
    );

    relay.thaw();
    let second = setup.daemon("second.log");
    wait_for("an empty spool", Duration::from_secs(60), || {
        dir_entries(&setup.src()).is_empty()
    });
    let expected = stored_lines(&setup, &names);
    let expected_metrics = first_occurrences(&expected);
    // The frozen relay held the start of the large round from the first run;
    // the second run sent that round whole again.
    wait_for("every line at the relay", Duration::from_secs(30), || {
        first_occurrences(&relay.lines()).len() >= expected_metrics.len()
    });
    let received = relay.lines();
    eprintln!(
        "{} lines at the relay, {} of them distinct metric lines, {} expected",
        received.len(),
        first_occurrences(&received).len(),
        expected_metrics.len()
    );
    assert_relayed(&first_occurrences(&received), &expected_metrics);
    let (status, _) = terminate(second);
    assert!(status.success());
}

#[test]
fn protocol_udp_sends_every_line_to_the_relay_in_datagrams() {
    let relay = CarbonRelay::start();
    let setup = Setup::sending_with(relay.port(), "", "protocol = udp\n");
    let names: Vec<String> = (0..3).map(|n| (1_700_000_000 + n).to_string()).collect();
    for name in &names {
        setup.add_round(name);
    }
    let run = setup.command(&["process", "--once"]).expect_success();
    assert!(stderr(&run).contains(": connected (udp)"), "{}", stderr(&run));
    assert_eq!(dir_entries(&setup.src()), Vec::<String>::new());
    // UDP promises nothing, but loopback to a relay that reads loses nothing.
    let expected = stored_lines(&setup, &names);
    let received = relay.wait_for_lines(expected.len(), Duration::from_secs(10));
    assert_eq!(received, expected);
}

#[test]
fn the_sink_reaches_the_relay_by_host_name_and_by_ipv6_address() {
    let relay = CarbonRelay::start();
    let mut servers = vec!["localhost"];
    if relay.listens_on_ipv6() {
        servers.push("::1");
    } else {
        eprintln!("this machine has no IPv6 loopback: ::1 is not tried");
    }
    let mut received = 0;
    for (n, server) in servers.iter().enumerate() {
        let setup = Setup::with_graphite("", "", &format!("server = {server}\nport = {}\n", relay.port()));
        let name = (1_700_000_000 + n).to_string();
        setup.add_round(&name);
        setup.command(&["process", "--once"]).expect_success();
        let expected = stored_lines(&setup, &[name]);
        let lines = relay.wait_for_lines(received + expected.len(), Duration::from_secs(10));
        assert_eq!(lines[received..], expected, "{server}");
        eprintln!("{server}: {} lines at the relay", expected.len());
        received = lines.len();
    }
}

#[test]
fn the_kafka_sink_carries_local_store_s_lines_and_json_objects_of_every_round() {
    let tansu = Tansu::start();
    for (topic, format) in [("metrics-graphite", "graphite"), ("metrics-json", "json")] {
        tansu.create_topic(topic);
        let setup = Setup::kafka(&tansu, topic, format);
        setup.add_round("1700000200");
        setup.add_round("1700000210");
        setup.command(&["process", "--once"]).expect_success();
        assert_eq!(dir_entries(&setup.src()), Vec::<String>::new(), "both rounds confirmed");
        let stored: String = ["1700000200", "1700000210"]
            .iter()
            .map(|round| fs::read_to_string(setup.store().join(round).join("stats")).unwrap())
            .collect();
        let lines = stored.lines().count();
        match format {
            "graphite" => {
                // Whole lines in messages of at most 4 KiB, in round order.
                let records = tansu.consume(topic, 1, Duration::from_secs(1), Duration::from_secs(30));
                assert!(records.len() > 2, "{} messages", records.len());
                assert!(
                    records
                        .iter()
                        .all(|record| record.value.len() <= 4096 && record.value.ends_with(b"\n"))
                );
                let carried: Vec<u8> = records.iter().flat_map(|record| record.value.clone()).collect();
                assert_eq!(String::from_utf8(carried).unwrap(), stored);
                eprintln!(
                    "graphite: {} lines of 2 rounds in {} messages, equal to local-store's",
                    lines,
                    records.len()
                );
            }
            _ => {
                // One object a metric: each is the line local-store wrote for it.
                let records = tansu.consume(topic, lines, Duration::from_secs(1), Duration::from_secs(30));
                assert_eq!(records.len(), lines);
                let mut from_json = String::new();
                for record in &records {
                    let object: serde_json::Value = serde_json::from_slice(&record.value).unwrap();
                    let name = |key: &str| {
                        haproxide::stats::sinks::plaintext::sanitize(object[key].as_str().unwrap()).into_owned()
                    };
                    let path = match object["kind"].as_str().unwrap() {
                        "pipeline" => "haproxystats".to_owned(),
                        "daemon" => "daemon".to_owned(),
                        "process" => format!("daemon.process.{}", name("process")),
                        "frontend" => format!("frontend.{}", name("proxy")),
                        "backend" => format!("backend.{}", name("proxy")),
                        "server" => format!("backend.{}.server.{}", name("proxy"), name("server")),
                        "server-across-backends" => format!("server.{}", name("server")),
                        other => panic!("kind {other}"),
                    };
                    let prefix = stored.split(".haproxy.").next().unwrap();
                    from_json.push_str(&format!(
                        "{prefix}.haproxy.{path}.{} {} {}\n",
                        object["field"].as_str().unwrap(),
                        object["value"],
                        object["timestamp"]
                    ));
                }
                assert_eq!(from_json, stored);
                eprintln!(
                    "json: {} objects of 2 rounds, each equal to local-store's line",
                    records.len()
                );
            }
        }
    }
}

#[test]
fn a_round_kafka_does_not_take_stays_in_the_spool() {
    let mut tansu = Tansu::start();
    tansu.create_topic("metrics");
    let setup = Setup::kafka(&tansu, "metrics", "graphite");
    tansu.stop();
    fails_and_keeps_the_round(&setup, "kafka");
    tansu.restart();
    setup.command(&["process", "--once"]).expect_success();
    assert_eq!(dir_entries(&setup.src()), Vec::<String>::new());
    let stored = fs::read_to_string(setup.store().join("1700000200").join("stats")).unwrap();
    let records = tansu.consume("metrics", 1, Duration::from_secs(1), Duration::from_secs(30));
    let carried: Vec<u8> = records.iter().flat_map(|record| record.value.clone()).collect();
    assert_eq!(
        String::from_utf8(carried).unwrap(),
        stored,
        "delivered once Kafka is back"
    );
}

#[test]
fn a_round_is_named_after_the_host_its_manifest_records() {
    let setup = Setup::new("");
    setup.add_edited_round("1700000200", |round| {
        fs::write(
            round.join("manifest.json"),
            r#"{"round": "1700000200", "host": "lb7.example", "failed": []}"#,
        )
        .unwrap();
    });
    setup.add_round("1700000210");
    setup.command(&["process", "--once"]).expect_success();
    let first_path = |round: &str| -> String {
        let stats = fs::read_to_string(setup.store().join(round).join("stats")).unwrap();
        let line = stats.lines().next().unwrap().to_owned();
        line.split(".haproxy.").next().unwrap().to_owned()
    };
    // fqdn = true (the default): the host's dots become `_`.
    assert_eq!(first_path("1700000200"), "loadbalancers.lb7_example");
    let system = nix::unistd::gethostname().unwrap().into_string().unwrap();
    assert_eq!(
        first_path("1700000210"),
        format!(
            "loadbalancers.{}",
            haproxide::stats::sinks::plaintext::sanitize(&system.replace('.', "_"))
        ),
        "a round without a recorded host is this host's"
    );
}

/// Writes a manifest naming `host` into the round being staged at `round`.
fn record_host(round: &Path, name: &str, host: &str) {
    fs::write(
        round.join("manifest.json"),
        format!(r#"{{"round": "{name}", "host": "{host}", "failed": []}}"#),
    )
    .unwrap();
}

/// The lines of every stored round, `path below <namespace>.<host>.haproxy -> value`, by host.
fn stored_by_host(setup: &Setup) -> BTreeMap<String, Vec<BTreeMap<String, f64>>> {
    let mut hosts: BTreeMap<String, Vec<BTreeMap<String, f64>>> = BTreeMap::new();
    for round in dir_entries(&setup.store()) {
        let stored = fs::read_to_string(setup.store().join(&round).join("stats")).unwrap();
        let host = stored.split('.').nth(1).unwrap().to_owned();
        hosts.entry(host).or_default().push(setup.stored(&round));
    }
    hosts
}

#[test]
fn a_cluster_round_adds_its_hosts_up_and_goes_without_a_host_after_grace() {
    let setup = Setup::new("");
    setup
        .space
        .append_config("\n[cluster:web]\nhosts = lb1 lb2 lb3\nwindow = 10\ngrace = 0\n");
    // Three load balancers of one window, unlike each other: lb2 has one
    // process of the two, lb3 has 40 more servers.
    setup.add_edited_round("1700000200", |round| record_host(round, "1700000200", "lb1"));
    setup.add_edited_round("1700000201", |round| {
        fs::remove_file(round.join("admin2.sock_info")).unwrap();
        fs::remove_file(round.join("admin2.sock_stat")).unwrap();
        record_host(round, "1700000201", "lb2");
    });
    let staging = setup.space.path().join("lb3");
    setup.add_large_round("1700000205", 40);
    fs::rename(setup.src().join("1700000205"), &staging).unwrap();
    record_host(&staging, "1700000205", "lb3");
    // One host with all the cluster's processes, for reference.
    let all = setup.space.path().join("all");
    fs::create_dir(&all).unwrap();
    for (host, round) in [
        ("lb1", setup.src().join("1700000200")),
        ("lb2", setup.src().join("1700000201")),
        ("lb3", staging.clone()),
    ] {
        for file in dir_entries(&round)
            .iter()
            .filter(|file| file.ends_with("_stat") || file.ends_with("_info"))
        {
            fs::copy(round.join(file), all.join(format!("{host}~{file}"))).unwrap();
        }
    }
    record_host(&all, "1700000300", "all");
    fs::rename(&staging, setup.src().join("1700000205")).unwrap();
    fs::rename(&all, setup.src().join("1700000300")).unwrap();
    let output = setup.run(&["process", "--once"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stderr(&output)
            .contains("process stopped undelivered=0 quarantined=0 stuck=0 open_windows=0 cluster_holds=0\n"),
        "every window emitted, every round released: {}",
        stderr(&output)
    );

    let hosts = stored_by_host(&setup);
    assert_eq!(
        hosts.keys().collect::<Vec<_>>(),
        ["all", "lb1", "lb2", "lb3", "web"],
        "one round each, and the cluster's"
    );
    let cluster = &hosts["web"][0];
    let reference = &hosts["all"][0];
    let without_self = |round: &BTreeMap<String, f64>| -> BTreeMap<String, f64> {
        round
            .iter()
            .filter(|(path, _)| !path.starts_with("haproxystats."))
            .map(|(path, value)| (path.clone(), *value))
            .collect()
    };
    assert_eq!(
        without_self(cluster),
        without_self(reference),
        "the cluster round is the round of one host with every process of the three"
    );
    let mut sums = 0;
    for (path, value) in cluster.iter().filter(|(path, _)| common::summed(path)) {
        let total: f64 = ["lb1", "lb2", "lb3"]
            .iter()
            .filter_map(|host| hosts[*host][0].get(path))
            .sum();
        assert_eq!(*value, total, "{path}: the cluster's sum");
        sums += 1;
    }
    assert!(sums > 1000, "{sums} sums compared");
    assert!(
        cluster.contains_key("backend.be_app.server.bulk39.stot"),
        "lb3's own servers are in"
    );
    assert_eq!(cluster["haproxystats.ClusterHosts"], 3.0);
    assert_eq!(cluster["haproxystats.ClusterHostsMissing"], 0.0);
    assert_eq!(cluster["haproxystats.ClusterLateRounds"], 0.0);
    assert_eq!(dir_entries(&setup.src()), Vec::<String>::new(), "every round delivered");

    // A window lb3 misses is emitted without it once grace (0 s) passed;
    // lb3's round of it, coming later, is late: counted, not emitted.
    fs::remove_dir_all(setup.store()).unwrap();
    setup.add_edited_round("1700000210", |round| record_host(round, "1700000210", "lb1"));
    setup.add_edited_round("1700000211", |round| record_host(round, "1700000211", "lb2"));
    setup.command(&["process", "--once"]).expect_success();
    let hosts = stored_by_host(&setup);
    assert_eq!(hosts.keys().collect::<Vec<_>>(), ["lb1", "lb2", "web"]);
    let cluster = &hosts["web"][0];
    assert_eq!(cluster["haproxystats.ClusterHosts"], 2.0);
    assert_eq!(cluster["haproxystats.ClusterHostsMissing"], 1.0);
    assert_eq!(
        cluster["frontend.fe_http.stot"],
        hosts["lb1"][0]["frontend.fe_http.stot"] + hosts["lb2"][0]["frontend.fe_http.stot"]
    );
    fs::remove_dir_all(setup.store()).unwrap();
    setup.add_edited_round("1700000212", |round| record_host(round, "1700000212", "lb3"));
    let output = setup.run(&["process", "--once"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("cluster web: round 1700000212 of lb3 is late: window 1700000210 was emitted; counted (1 so far), not emitted again"),
        "{}",
        stderr(&output)
    );
    assert_eq!(stored_by_host(&setup).keys().collect::<Vec<_>>(), ["lb3"]);
}
