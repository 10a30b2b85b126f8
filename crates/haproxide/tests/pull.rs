//! `haproxide pull` against real HAProxy instances: rounds, stale sockets,
//! instances that stop and come back, back-pressure, signals, same-second rounds.

// Test helpers fail the test by panicking, like the tests themselves.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

use haproxy::{ShowInfo, ShowStat};
use serde_json::Value;
use testkit::{Lab, NotifySocket, Signal, TestCommand, Workspace, dir_entries, stop_with, terminate, wait_for};

/// A spool and a config for `lab`'s socket directory.
struct Setup {
    space: Workspace,
}

impl Setup {
    /// `[pull]` for `lab`, with `extra` lines replacing base keys of the same name.
    fn new(lab: &Lab, extra: &str) -> Setup {
        let space = Workspace::new("haproxystats.conf", |dir| {
            let base = [
                ("socket-dir", lab.socket_dir().display().to_string()),
                ("dst-dir", format!("{}/incoming", dir.display())),
                ("tmp-dst-dir", format!("{}/incoming.tmp", dir.display())),
                ("timeout", "0.5".into()),
                ("pull-timeout", "5".into()),
                ("min-free-space", "1M".into()),
            ];
            let overridden = |key: &str| {
                extra
                    .lines()
                    .any(|line| line.split('=').next().map(str::trim) == Some(key))
            };
            let mut text = String::from("[DEFAULT]\nloglevel = info\n[pull]\n");
            for (key, value) in base.iter().filter(|(key, _)| !overridden(key)) {
                text.push_str(&format!("{key} = {value}\n"));
            }
            text.push_str(extra);
            text
        });
        Setup { space }
    }

    fn dst(&self) -> PathBuf {
        self.space.path().join("incoming")
    }

    fn tmp(&self) -> PathBuf {
        self.space.path().join("incoming.tmp")
    }

    fn command(&self, args: &[&str]) -> TestCommand {
        self.space.command(env!("CARGO_BIN_EXE_haproxide"), args)
    }

    /// `pull --once`: exit status and stderr.
    fn once(&self) -> (ExitStatus, String) {
        let output = self.command(&["pull", "--once"]).output();
        (output.status, String::from_utf8_lossy(&output.stderr).into_owned())
    }

    /// The daemon, logging into `pull.log`.
    fn daemon(&self) -> Child {
        self.command(&["pull"]).spawn(&self.space.path().join("pull.log"))
    }

    fn read_log(&self) -> String {
        self.space.read("pull.log")
    }

    /// Delivered rounds, oldest first.
    fn rounds(&self) -> Vec<PathBuf> {
        let Ok(entries) = fs::read_dir(self.dst()) else {
            return Vec::new(); // the daemon has not created it yet
        };
        let mut rounds: Vec<PathBuf> = entries.map(|entry| entry.unwrap().path()).collect();
        rounds.sort_by_key(|round| round_key(round));
        rounds
    }
}

/// `<epoch>[.<n>]` as a sortable pair.
fn round_key(path: &Path) -> (u64, u32) {
    let name = path.file_name().unwrap().to_str().unwrap();
    let (epoch, sequence) = name.split_once('.').unwrap_or((name, "0"));
    (epoch.parse().unwrap(), sequence.parse().unwrap())
}

fn manifest(round: &Path) -> Value {
    serde_json::from_str(&fs::read_to_string(round.join("manifest.json")).unwrap()).unwrap()
}

fn failed(round: &Path) -> Vec<String> {
    manifest(round)["failed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|name| name.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn one_round_of_four_instances_matches_direct_queries() {
    let lab = Lab::builder().instances(4).start();
    for instance in lab.instances() {
        let count = instance.index() + 1;
        assert_eq!(instance.http_get("fe_main", "/", count), vec![200; count]);
    }
    let setup = Setup::new(&lab, "");
    let (status, stderr) = setup.once();
    assert!(status.success(), "{stderr}");
    let rounds = setup.rounds();
    assert_eq!(rounds.len(), 1);
    let round = &rounds[0];
    let mut expected: Vec<String> = (0..4)
        .flat_map(|i| [format!("hap{i}.sock_info"), format!("hap{i}.sock_stat")])
        .collect();
    expected.push("manifest.json".into());
    expected.sort();
    assert_eq!(dir_entries(round), expected);
    assert_eq!(failed(round), Vec::<String>::new());
    let system = nix::unistd::gethostname().unwrap().into_string().unwrap();
    assert_eq!(
        manifest(round)["host"],
        system.as_str(),
        "the system's host name by default"
    );
    for instance in lab.instances() {
        let name = format!("hap{}.sock", instance.index());
        let stat = ShowStat::parse(fs::read_to_string(round.join(format!("{name}_stat"))).unwrap()).unwrap();
        let direct = ShowStat::parse(instance.raw_command("show stat")).unwrap();
        assert_eq!(stat.len(), direct.len(), "{name}: row count of a direct show stat");
        let frontend = stat.rows().next().unwrap();
        assert_eq!(frontend.int("stot"), Ok(Some(instance.index() as i64 + 1)), "{name}");
        let info = ShowInfo::parse(&fs::read_to_string(round.join(format!("{name}_info"))).unwrap()).unwrap();
        assert_eq!(info.int("Pid"), Some(i64::from(instance.pid().unwrap())));
    }
    assert!(
        fs::read_dir(setup.tmp()).unwrap().next().is_none(),
        "nothing left in tmp-dst-dir"
    );
    let summary = stderr.lines().find(|line| line.contains("round ")).unwrap();
    assert!(summary.contains(": 4 targets, 4 ok, 0 failed, "), "{summary}");
}

#[test]
fn a_stale_socket_does_not_blank_the_round() {
    let lab = Lab::builder().instances(3).start();
    drop(UnixListener::bind(lab.socket_dir().join("hap9-stale.sock")).unwrap());
    let setup = Setup::new(&lab, "");
    let (status, stderr) = setup.once();
    assert_eq!(status.code(), Some(1), "{stderr}");
    let rounds = setup.rounds();
    assert_eq!(rounds.len(), 1);
    let round = &rounds[0];
    assert_eq!(
        dir_entries(round),
        [
            "hap0.sock_info",
            "hap0.sock_stat",
            "hap1.sock_info",
            "hap1.sock_stat",
            "hap2.sock_info",
            "hap2.sock_stat",
            "manifest.json"
        ]
    );
    assert_eq!(failed(round), ["hap9-stale.sock"]);
    let entry = manifest(round)["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "hap9-stale.sock")
        .cloned();
    let error = entry.unwrap()["error"].as_str().unwrap().to_owned();
    assert!(error.starts_with("show info: connection refused"), "{error}");
    assert!(
        stderr.contains("hap9-stale.sock: show info: connection refused"),
        "{stderr}"
    );
}

#[test]
fn an_instance_that_stops_and_returns_is_followed_without_restart() {
    let mut lab = Lab::builder().instances(2).start();
    let setup = Setup::new(&lab, "pull-interval = 0.3\n");
    let daemon = setup.daemon();
    let all_ok = |setup: &Setup, after: usize| setup.rounds().iter().skip(after).any(|round| failed(round).is_empty());
    wait_for("a round with both instances", Duration::from_secs(10), || {
        all_ok(&setup, 0)
    });

    lab.stop_instance(1);
    let stopped_at = setup.rounds().len();
    wait_for("three rounds without instance 1", Duration::from_secs(10), || {
        setup
            .rounds()
            .iter()
            .skip(stopped_at)
            .filter(|round| failed(round) == ["hap1.sock"])
            .count()
            >= 3
    });
    lab.restart_instance(1);
    let restarted_at = setup.rounds().len();
    wait_for("a round with instance 1 back", Duration::from_secs(10), || {
        all_ok(&setup, restarted_at)
    });

    let (status, _) = terminate(daemon);
    assert!(status.success());
    let log = setup.read_log();
    let failures = log
        .lines()
        .filter(|line| line.contains("hap1.sock: show info: connection refused"))
        .count();
    assert_eq!(
        failures, 1,
        "a failure is logged once per state change, not every round:\n{log}"
    );
    assert_eq!(
        log.lines()
            .filter(|line| line.contains("hap1.sock: answering again"))
            .count(),
        1,
        "{log}"
    );
}

#[test]
fn a_full_queue_suspends_rounds_until_drained() {
    let lab = Lab::builder().start();
    let setup = Setup::new(&lab, "pull-interval = 0.2\nqueue-size = 2\n");
    let daemon = setup.daemon();
    wait_for("two queued rounds", Duration::from_secs(10), || {
        setup.rounds().len() >= 2
    });
    wait_for("the suspension log line", Duration::from_secs(10), || {
        setup.read_log().contains("queue reached max size")
    });
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(setup.rounds().len(), 2, "no round beyond queue-size");

    let oldest = setup.rounds()[0].clone();
    fs::remove_dir_all(&oldest).unwrap();
    wait_for("a new round after draining", Duration::from_secs(10), || {
        let rounds = setup.rounds();
        rounds.len() == 2 && !rounds.contains(&oldest)
    });
    let (status, _) = terminate(daemon);
    assert!(status.success());
}

#[test]
fn sigterm_exits_0_within_a_second_even_mid_round() {
    let lab = Lab::builder().start();
    let setup = Setup::new(&lab, "pull-interval = 30\n");
    let daemon = setup.daemon();
    wait_for("the first round", Duration::from_secs(10), || setup.rounds().len() == 1);
    let (status, took) = terminate(daemon);
    assert!(status.success());
    assert!(took < Duration::from_secs(1), "idle pull took {took:?} to exit");

    // A socket that accepts and never answers keeps a round in flight.
    let _silent = UnixListener::bind(lab.socket_dir().join("silent.sock")).unwrap();
    let setup = Setup::new(&lab, "pull-interval = 30\npull-timeout = 60\nread-timeout = 60\n");
    let daemon = setup.daemon();
    std::thread::sleep(Duration::from_millis(500));
    let (status, took) = terminate(daemon);
    assert!(status.success());
    assert!(took < Duration::from_secs(1), "pull took {took:?} to exit mid-round");
    assert!(setup.rounds().is_empty(), "the cancelled round was not delivered");
    assert!(
        fs::read_dir(setup.tmp()).unwrap().next().is_none(),
        "the cancelled round left nothing in tmp-dst-dir"
    );
    assert!(setup.read_log().contains("round cancelled by SIGTERM"));
}

#[test]
fn once_and_sigint_stop_like_sigterm_mid_round_leaving_nothing_behind() {
    let lab = Lab::builder().start();
    // A socket that accepts and never answers keeps a round in flight.
    let _silent = UnixListener::bind(lab.socket_dir().join("silent.sock")).unwrap();
    let setup = Setup::new(&lab, "pull-interval = 30\npull-timeout = 60\nread-timeout = 60\n");
    for (args, signal) in [
        (&["pull", "--once"][..], Signal::SIGTERM),
        (&["pull", "--once"][..], Signal::SIGHUP),
        (&["pull", "--once"][..], Signal::SIGINT),
        (&["pull"][..], Signal::SIGINT),
    ] {
        let child = setup.command(args).spawn(&setup.space.path().join("pull.log"));
        wait_for("a round in flight", Duration::from_secs(10), || {
            fs::read_dir(setup.tmp()).is_ok_and(|mut entries| entries.next().is_some())
        });
        let (status, took) = stop_with(child, signal);
        assert_eq!(status.code(), Some(0), "{args:?} stopped by {signal}");
        assert!(
            took < Duration::from_secs(1),
            "{args:?} took {took:?} to stop on {signal}"
        );
        assert!(
            setup.rounds().is_empty(),
            "{args:?}: the cancelled round was not delivered"
        );
        assert!(
            fs::read_dir(setup.tmp()).unwrap().next().is_none(),
            "{args:?}: the cancelled round left nothing in tmp-dst-dir"
        );
        assert!(
            setup.read_log().contains(&format!("round cancelled by {signal}")),
            "{}",
            setup.read_log()
        );
    }
}

#[test]
fn the_daemon_outlives_a_spool_it_cannot_use_and_names_the_path_once() {
    let lab = Lab::builder().start();
    let setup = Setup::new(&lab, "pull-interval = 0.2\n");
    let mut daemon = setup.daemon();
    wait_for("the first round", Duration::from_secs(10), || {
        !setup.rounds().is_empty()
    });
    // dst-dir replaced by a file: nothing can be delivered until it is back.
    fs::remove_dir_all(setup.dst()).unwrap();
    fs::write(setup.dst(), "").unwrap();
    let failure = format!("cannot count the rounds in {}", setup.dst().display());
    wait_for("the failure logged", Duration::from_secs(10), || {
        setup.read_log().contains(&failure)
    });
    std::thread::sleep(Duration::from_millis(1000));
    assert!(
        daemon.try_wait().unwrap().is_none(),
        "pull is still running: {}",
        setup.read_log()
    );
    fs::remove_file(setup.dst()).unwrap();
    fs::create_dir(setup.dst()).unwrap();
    wait_for("a round delivered again", Duration::from_secs(10), || {
        !setup.rounds().is_empty()
    });
    let (status, _) = terminate(daemon);
    assert!(status.success());
    let log = setup.read_log();
    assert_eq!(log.lines().filter(|line| line.contains(&failure)).count(), 1, "{log}");
    assert!(log.contains("the spool takes rounds again"), "{log}");
}

#[test]
fn rounds_in_the_same_second_do_not_collide() {
    let lab = Lab::builder().start();
    let setup = Setup::new(&lab, "");
    for _ in 0..3 {
        let (status, stderr) = setup.once();
        assert!(status.success(), "{stderr}");
    }
    let rounds = setup.rounds();
    assert_eq!(rounds.len(), 3);
    for round in &rounds {
        assert_eq!(
            dir_entries(round),
            ["hap0.sock_info", "hap0.sock_stat", "manifest.json"]
        );
    }
    let (first_epoch, _) = round_key(&rounds[0]);
    let same_second: Vec<_> = rounds
        .iter()
        .filter(|round| round_key(round).0 == first_epoch)
        .collect();
    let names: Vec<String> = same_second
        .iter()
        .map(|round| round.file_name().unwrap().to_str().unwrap().to_owned())
        .collect();
    let expected: Vec<String> = (0..names.len())
        .map(|n| {
            if n == 0 {
                first_epoch.to_string()
            } else {
                format!("{first_epoch}.{n}")
            }
        })
        .collect();
    assert_eq!(names, expected);
}

#[test]
fn start_up_refuses_two_filesystems_and_a_config_without_targets() {
    let lab = Lab::builder().start();
    let shm = tempfile::tempdir_in("/dev/shm").unwrap();
    let setup = Setup::new(&lab, &format!("tmp-dst-dir = {}/tmp\n", shm.path().display()));
    let (status, stderr) = setup.once();
    assert_eq!(status.code(), Some(1));
    assert!(stderr.contains("are on different filesystems"), "{stderr}");

    let bare = Workspace::new("c.conf", |dir| {
        format!("[pull]\ndst-dir = {0}/in\ntmp-dst-dir = {0}/tmp\n", dir.display())
    });
    let output = bare
        .command(env!("CARGO_BIN_EXE_haproxide"), &["pull", "--once"])
        .output();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("[pull] names no target: set socket-dir, servers, or both")
    );
}

#[test]
fn a_dangling_symlink_is_skipped_and_reported_once() {
    let lab = Lab::builder().start();
    std::os::unix::fs::symlink(lab.dir().join("gone.sock"), lab.socket_dir().join("moved.sock")).unwrap();
    let setup = Setup::new(&lab, "pull-interval = 0.2\n");
    let daemon = setup.daemon();
    wait_for("four rounds", Duration::from_secs(10), || setup.rounds().len() >= 4);
    let (status, _) = terminate(daemon);
    assert!(status.success());
    for round in setup.rounds() {
        assert_eq!(failed(&round), Vec::<String>::new(), "the link is not a target");
        assert_eq!(
            dir_entries(&round),
            ["hap0.sock_info", "hap0.sock_stat", "manifest.json"]
        );
    }
    let log = setup.read_log();
    let warnings = log
        .lines()
        .filter(|line| line.contains("moved.sock (skipped): dangling symlink"))
        .count();
    assert_eq!(warnings, 1, "{log}");
}

#[test]
fn the_manifest_records_the_host_name_pull_is_given() {
    let lab = Lab::builder().start();
    let setup = Setup::new(&lab, "hostname = lb1\n");
    let (status, stderr) = setup.once();
    assert!(status.success(), "{stderr}");
    let rounds = setup.rounds();
    assert_eq!(manifest(&rounds[0])["host"], "lb1");
}

/// `pull` under a stand-in for systemd (`WatchdogSec=0.4`), logging into
/// `pull.log`; with `failpoint`, rounds stop after the first.
fn supervised(setup: &Setup, notify: &NotifySocket, failpoint: &str) -> Child {
    setup
        .command(&["pull"])
        .env("NOTIFY_SOCKET", notify.path())
        .env("WATCHDOG_USEC", "400000")
        .env("HAPROXIDE_FAILPOINT", failpoint)
        .spawn(&setup.space.path().join("pull.log"))
}

#[test]
fn systemd_hears_ready_after_the_first_round_and_pings_while_rounds_end() {
    let lab = Lab::builder().start();
    // A socket that accepts and never answers holds every round until pull-timeout.
    let _silent = UnixListener::bind(lab.socket_dir().join("silent.sock")).unwrap();
    let setup = Setup::new(&lab, "pull-interval = 0.5\npull-timeout = 1\nread-timeout = 60\n");
    let notify = NotifySocket::bind(setup.space.path());
    let started = Instant::now();
    let daemon = supervised(&setup, &notify, "");
    assert_eq!(notify.wait_for("READY=1", Duration::from_secs(10)), ["READY=1"]);
    let ready_after = started.elapsed();
    assert!(
        ready_after >= Duration::from_secs(1),
        "ready {ready_after:?} after the start, before the first round ended"
    );
    assert!(!setup.rounds().is_empty(), "ready without a round");
    // Pings every 200 ms while rounds end (each a second long here).
    notify.expect_pings(Duration::from_secs(3), 12);
    let (status, _) = terminate(daemon);
    assert!(status.success());
    notify.expect_stopping();
}

#[test]
fn the_watchdog_is_no_longer_pinged_once_rounds_stop_ending() {
    let lab = Lab::builder().start();
    // Wedged once no round ended for two intervals past the deadline: 0.9 s.
    let setup = Setup::new(&lab, "pull-interval = 0.2\npull-timeout = 0.5\n");
    let notify = NotifySocket::bind(setup.space.path());
    let daemon = supervised(&setup, &notify, "pull-round-hang");
    notify.wait_for("READY=1", Duration::from_secs(10));
    let during = notify.receive_for(Duration::from_secs(2));
    let after = notify.receive_for(Duration::from_secs(1));
    assert!(during.iter().any(|state| state == "WATCHDOG=1"), "{during:?}");
    assert!(after.is_empty(), "pinged while wedged: {after:?}");
    let (status, _) = terminate(daemon);
    assert!(status.success());
    let log = setup.read_log();
    assert!(
        log.contains("stalled: pull rounds; not telling the watchdog that all is well"),
        "{log}"
    );
}
