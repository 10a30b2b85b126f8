//! `haproxide reload` against a real HAProxy (`$HAPROXY_BIN`, else Debian's
//! 2.6) in master-worker and standalone mode, with loopback traffic running
//! through it: no request may fail while it reloads, a broken file changes
//! nothing, runtime changes survive through the state file, and two reloads
//! never overlap.

// Tests fail by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use haproxy::{ServersState, ShowProc};
use serde_json::Value;
use testkit::{HttpLoad, Launch, ReloadLab, TestCommand, haproxy_binary};

/// Requests per second the load sends (the issue asks for at least 1,000).
const LOAD_RATE: u32 = 1_500;

fn haproxide() -> TestCommand {
    TestCommand::new(env!("CARGO_BIN_EXE_haproxide"))
}

/// A `[reload]` configuration for `lab` in its directory.
fn reload_config(lab: &ReloadLab, method: &str, extra: &str) -> PathBuf {
    let path = lab.dir().join("haproxide.conf");
    let text = format!(
        "[reload]\nmethod = {method}\nhaproxy = {}\nconfig = {}\nmaster-socket = {}\npid-file = {}\n\
         stats-socket = {}\n{extra}",
        haproxy_binary().display(),
        lab.config_path().display(),
        lab.master_socket().display(),
        lab.pid_file().display(),
        lab.stats_socket().display(),
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn reload(config: &Path, args: &[&str]) -> TestCommand {
    let mut all = vec!["reload", "-f", config.to_str().unwrap()];
    all.extend_from_slice(args);
    haproxide().args(&all).listing(config.parent().unwrap())
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The JSON lines of a `--format json` run.
fn steps(output: &Output) -> Vec<Value> {
    stdout(output)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|error| panic!("{line:?}: {error}")))
        .collect()
}

/// The new worker's PID a `--format json` run reports.
fn new_pid(output: &Output) -> u32 {
    let result = steps(output).pop().unwrap();
    assert_eq!(result["step"], "result", "{result}");
    let pid = result["pids"][0]
        .as_u64()
        .unwrap_or_else(|| panic!("no new PID in {result}"));
    u32::try_from(pid).unwrap()
}

fn show_proc(lab: &ReloadLab) -> ShowProc {
    ShowProc::parse(&lab.master_command("show proc")).unwrap()
}

/// Whether the HAProxy under test answers `reload` on the master CLI (2.7+).
fn answers_reload() -> bool {
    let version = std::process::Command::new(haproxy_binary()).arg("-v").output().unwrap();
    let text = String::from_utf8_lossy(&version.stdout).into_owned();
    let number = text.split_whitespace().nth(2).unwrap_or_default().to_owned();
    let mut parts = number.split(['.', '-']).map(|part| part.parse::<u32>().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0)) >= (2, 7)
}

/// Runs `work` with the load running through `lab`, and checks that no request failed.
fn under_load<T>(lab: &ReloadLab, work: impl FnOnce() -> T) -> T {
    let load = HttpLoad::start(lab.port(), LOAD_RATE, 3);
    std::thread::sleep(Duration::from_millis(300));
    let outcome = work();
    std::thread::sleep(Duration::from_millis(300));
    // The issue asks for at least 1,000 requests/s.
    load.stop().assert_no_failure(1_000.0);
    outcome
}

#[test]
fn twenty_master_reloads_under_load_lose_no_request() {
    let lab = ReloadLab::start(Launch::MasterWorker);
    let config = reload_config(&lab, "master", "max-old-workers = 1\n");
    let first = show_proc(&lab).workers().next().unwrap().pid;
    let pids = under_load(&lab, || {
        let mut pids = vec![first];
        for _ in 0..20 {
            let output = reload(&config, &["--format", "json"]).expect_success();
            let reload_step = steps(&output)
                .into_iter()
                .find(|step| step["step"] == "reload")
                .unwrap();
            let said = if answers_reload() {
                "the master answered Success=1"
            } else {
                "sent to the master (HAProxy before 2.7 does not answer)"
            };
            assert!(
                reload_step["message"].as_str().unwrap().starts_with(said),
                "{reload_step}"
            );
            let pid = new_pid(&output);
            assert_eq!(lab.serving_pid(), pid, "the stats socket answers from the new worker");
            assert!(!pids.contains(&pid), "{pid} is new");
            eprintln!("reload {}: exit 0, new worker {pid}", pids.len());
            pids.push(pid);
        }
        pids
    });
    let proc = show_proc(&lab);
    assert_eq!(proc.master().reloads, 20);
    assert_eq!(proc.master().failed_reloads, Some(0));
    assert_eq!(proc.workers().map(|row| row.pid).collect::<Vec<_>>(), [pids[20]]);
    let old = proc.old_workers().count();
    eprintln!(
        "after 20 reloads: master reloads {}, failed {:?}, {old} old workers",
        proc.master().reloads,
        proc.master().failed_reloads
    );
    assert!(old <= 1, "{old} old workers remain, max-old-workers is 1");
}

#[test]
fn old_workers_beyond_max_old_workers_are_stopped_oldest_first() {
    use std::io::Write;
    let lab = ReloadLab::start(Launch::MasterWorker);
    let config = reload_config(&lab, "master", "max-old-workers = 1\n");
    let mut held = Vec::new();
    let mut workers = Vec::new();
    let mut stopped = Vec::new();
    for _ in 0..3 {
        // A request left half-sent keeps its worker busy after the reload.
        workers.push(lab.serving_pid());
        let mut connection = std::net::TcpStream::connect(("127.0.0.1", lab.port())).unwrap();
        connection.write_all(b"GET / HTTP/1.1\r\n").unwrap();
        held.push(connection);
        std::thread::sleep(Duration::from_millis(200));
        let output = reload(&config, &["--format", "json"]).expect_success();
        let step = steps(&output).into_iter().find(|step| step["step"] == "old-workers");
        stopped.push(step.map(|step| step["stopped"].clone()));
    }
    assert_eq!(stopped[0], None, "one old worker is within the limit");
    assert_eq!(
        stopped[1],
        Some(serde_json::json!([workers[0]])),
        "the oldest goes first"
    );
    assert_eq!(stopped[2], Some(serde_json::json!([workers[1]])));
    testkit::wait_for("the stopped workers to leave", Duration::from_secs(5), || {
        show_proc(&lab).old_workers().map(|row| row.pid).collect::<Vec<_>>() == [workers[2]]
    });
}

#[test]
fn runtime_changes_survive_a_reload_through_the_state_file() {
    let lab = ReloadLab::start(Launch::MasterWorker);
    let config = reload_config(&lab, "master", "");
    let slot_port = lab.slot_port() + 1;
    let change = || {
        for command in [
            "set server be_app/s1 weight 7".to_owned(),
            "set server be_app/s2 state drain".to_owned(),
            format!("set server be_slots/slot1 addr 127.0.0.2 port {slot_port}"),
            "set server be_slots/slot1 state ready".to_owned(),
        ] {
            let answer = lab.command(&command);
            assert!(!answer.contains("No such"), "{command}: {answer}");
        }
    };
    let servers = || ServersState::parse(&lab.command("show servers state")).unwrap();
    let field = |state: &ServersState, server: &str, name: &str| {
        let row = state
            .rows()
            .iter()
            .find(|row| state.get(row, "srv_name") == Some(server))
            .unwrap();
        state.get(row, name).unwrap().to_owned()
    };

    // HAProxy itself forgets runtime changes on a reload without a state file.
    change();
    let serving = lab.serving_pid();
    lab.master_command("reload");
    lab.wait_for_new_worker(serving);
    let forgotten = servers();
    assert_eq!(field(&forgotten, "s1", "srv_uweight"), "1");
    assert_eq!(field(&forgotten, "slot1", "srv_addr"), "0.0.0.0");

    change();
    reload(&config, &[]).expect_success();
    let kept = servers();
    assert_eq!(field(&kept, "s1", "srv_uweight"), "7");
    let s2_admin: u32 = field(&kept, "s2", "srv_admin_state").parse().unwrap();
    assert_eq!(
        s2_admin & 0x08,
        0x08,
        "s2 is still in forced drain (admin state {s2_admin})"
    );
    assert_eq!(field(&kept, "slot1", "srv_addr"), "127.0.0.2");
    assert_eq!(field(&kept, "slot1", "srv_port"), slot_port.to_string());
    let slot_admin: u32 = field(&kept, "slot1", "srv_admin_state").parse().unwrap();
    assert_eq!(
        slot_admin & 0x01,
        0,
        "slot1 is out of forced maintenance (admin state {slot_admin})"
    );
    assert_eq!(field(&kept, "slot2", "srv_addr"), "0.0.0.0");
    let saved = std::fs::read_to_string(lab.state_file()).unwrap();
    assert!(saved.contains(" slot1 127.0.0.2 "), "{saved}");
}

#[test]
fn a_broken_configuration_changes_nothing_and_traffic_goes_on() {
    let lab = ReloadLab::start(Launch::MasterWorker);
    let config = reload_config(&lab, "master", "");
    let serving = lab.serving_pid();
    lab.write_config("    bogus-keyword here\n");
    let output = under_load(&lab, || reload(&config, &[]).expect_exit(1));
    let text = stdout(&output);
    assert!(text.contains("validate: FAILED"), "{text}");
    assert!(
        text.contains("unknown keyword 'bogus-keyword' in 'backend' section"),
        "{text}"
    );
    assert!(
        text.contains("result: FAILED (0 ms): the configuration is invalid; nothing was changed"),
        "{text}"
    );
    assert!(!text.contains("\nstate:"), "no step after validation: {text}");
    assert_eq!(lab.serving_pid(), serving);
    assert_eq!(show_proc(&lab).master().reloads, 0);
    assert!(!lab.state_file().exists(), "the state file is not touched");

    let check = reload(&config, &["--check"]).expect_exit(1);
    assert!(stdout(&check).contains("unknown keyword 'bogus-keyword'"));
    lab.write_config("");
    let check = reload(&config, &["--check"]).expect_success();
    assert!(
        stdout(&check).contains("result: ok (0 ms): the configuration is valid"),
        "{}",
        stdout(&check)
    );
    assert_eq!(show_proc(&lab).master().reloads, 0, "--check does not reload");
}

#[test]
fn a_reload_haproxy_refuses_at_run_time_keeps_the_previous_configuration() {
    let lab = ReloadLab::start(Launch::MasterWorker);
    let config = reload_config(&lab, "master", "timeout = 15\n");
    let serving = lab.serving_pid();
    // A port taken without SO_REUSEPORT: `haproxy -c` passes, the bind fails.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    lab.write_config(&format!("\nfrontend fe_taken\n    bind 127.0.0.1:{port}\n"));
    // Not under load: while the new process retries its binds, HAProxy
    // pauses the old listeners, and connections are refused for that time.
    let output = reload(&config, &[]).expect_exit(2);
    let text = stdout(&output);
    assert!(text.contains("validate: ok"), "{text}");
    assert!(
        text.contains("reload failed, the previous configuration is still serving"),
        "{text}"
    );
    if answers_reload() {
        assert!(
            text.contains("reload: FAILED") && text.contains("the master answered Success=0"),
            "{text}"
        );
        assert!(
            text.contains("cannot bind socket"),
            "HAProxy's start-up log is shown: {text}"
        );
    } else {
        assert!(
            text.contains("the master counts a failed reload (1 failed, 0 before)"),
            "{text}"
        );
    }
    assert_eq!(lab.serving_pid(), serving);
    assert_eq!(show_proc(&lab).master().failed_reloads, Some(1));
    drop(taken);
    lab.write_config("");
    let output = reload(&config, &["--format", "json"]).expect_success();
    assert_ne!(new_pid(&output), serving);
}

#[test]
fn binary_method_replaces_a_standalone_haproxy_under_load() {
    let lab = ReloadLab::start(Launch::Standalone);
    let config = reload_config(&lab, "binary", "");
    under_load(&lab, || {
        let mut previous = lab.serving_pid();
        for _ in 0..5 {
            let output = reload(&config, &["--format", "json"]).expect_success();
            let pid = new_pid(&output);
            assert_ne!(pid, previous);
            assert_eq!(std::fs::read_to_string(lab.pid_file()).unwrap().trim(), pid.to_string());
            assert_eq!(lab.serving_pid(), pid);
            previous = pid;
        }
        lab.write_config("    bogus-keyword here\n");
        let broken = reload(&config, &[]).expect_exit(1);
        assert!(stdout(&broken).contains("unknown keyword 'bogus-keyword'"));
        assert_eq!(lab.serving_pid(), previous);
        lab.write_config("");
    });

    // Not under load: the new process pauses the old one's listeners while
    // it retries its binds (see the master-worker test of the same).
    let serving = lab.serving_pid();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    lab.write_config(&format!("\nfrontend fe_taken\n    bind 127.0.0.1:{port}\n"));
    let refused = reload(&config, &[]).expect_exit(2);
    let text = stdout(&refused);
    assert!(text.contains("the new HAProxy process exited 1"), "{text}");
    assert!(text.contains("cannot bind socket"), "{text}");
    assert_eq!(lab.serving_pid(), serving);
    assert_eq!(
        std::fs::read_to_string(lab.pid_file()).unwrap().trim(),
        serving.to_string()
    );
}

#[test]
fn signal_method_reloads_the_master_with_sigusr2_under_load() {
    let lab = ReloadLab::start(Launch::MasterWorker);
    let config = reload_config(&lab, "signal", "");
    under_load(&lab, || {
        for round in 0..5 {
            // Every other round sees the workers on the stats socket only.
            let args: &[&str] = if round % 2 == 0 {
                &["--format", "json"]
            } else {
                &["--format", "json", "--master-socket", "/nonexistent/master.sock"]
            };
            let output = reload(&config, args).expect_success();
            let reload_step = steps(&output)
                .into_iter()
                .find(|step| step["step"] == "reload")
                .unwrap();
            let master = std::fs::read_to_string(lab.pid_file()).unwrap();
            assert!(
                reload_step["message"]
                    .as_str()
                    .unwrap()
                    .starts_with(&format!("SIGUSR2 sent to the master, PID {}", master.trim())),
                "{reload_step}"
            );
            assert_eq!(lab.serving_pid(), new_pid(&output));
        }
        let serving = lab.serving_pid();
        lab.write_config("    bogus-keyword here\n");
        let broken = reload(&config, &[]).expect_exit(1);
        assert!(stdout(&broken).contains("unknown keyword 'bogus-keyword'"));
        assert_eq!(lab.serving_pid(), serving);
        lab.write_config("");
    });
    assert_eq!(show_proc(&lab).master().reloads, 5, "the broken file was not signalled");
}

#[test]
fn two_reloads_at_once_take_turns() {
    let lab = ReloadLab::start(Launch::MasterWorker);
    let config = reload_config(&lab, "master", "");
    let both: Vec<_> = (0..2)
        .map(|_| reload(&config, &["--format", "json"]).spawn_piped())
        .collect();
    let pids: Vec<u32> = both.iter().map(std::process::Child::id).collect();
    let outputs: Vec<Output> = both
        .into_iter()
        .map(|child| child.wait_with_output().unwrap())
        .collect();
    for output in &outputs {
        assert_eq!(output.status.code(), Some(0), "{}", stdout(output));
    }
    let locks: Vec<Value> = outputs
        .iter()
        .map(|output| steps(output).into_iter().find(|step| step["step"] == "lock").unwrap())
        .collect();
    let waited: Vec<&Value> = locks.iter().filter(|lock| lock["waited"] == true).collect();
    assert_eq!(waited.len(), 1, "exactly one waited: {locks:?}");
    let waiter = locks.iter().position(|lock| lock["waited"] == true).unwrap();
    let message = waited[0]["message"].as_str().unwrap();
    assert!(message.contains(" (waited "), "the wait is in the log: {message}");
    // The holder's PID is named unless the waiter looked before it was written.
    if !waited[0]["waited_for"].is_null() {
        assert_eq!(waited[0]["waited_for"], pids[1 - waiter], "it waited for the other one");
        assert!(
            message.ends_with(&format!(" for the reload by haproxide pid {})", pids[1 - waiter])),
            "{message}"
        );
    }
    let new: Vec<u32> = outputs.iter().map(new_pid).collect();
    assert_ne!(new[0], new[1]);
    assert_eq!(show_proc(&lab).master().reloads, 2);
}

#[test]
fn min_interval_turns_a_burst_into_one_reload() {
    let lab = ReloadLab::start(Launch::MasterWorker);
    let config = reload_config(&lab, "master", "min-interval = 2\n");
    reload(&config, &[]).expect_success();
    let started = Instant::now();
    let burst: Vec<_> = (0..3).map(|_| reload(&config, &[]).spawn_piped()).collect();
    let outputs: Vec<Output> = burst
        .into_iter()
        .map(|child| child.wait_with_output().unwrap())
        .collect();
    for output in &outputs {
        assert_eq!(output.status.code(), Some(0), "{}", stdout(output));
    }
    let texts: Vec<String> = outputs.iter().map(stdout).collect();
    let waited = texts
        .iter()
        .filter(|text| text.contains("min-interval is 2 s since the last reload"))
        .count();
    let covered = texts
        .iter()
        .filter(|text| text.contains("began after this one was asked for, and serves it"))
        .count();
    assert_eq!((waited, covered), (1, 2), "{texts:#?}");
    assert_eq!(
        show_proc(&lab).master().reloads,
        2,
        "one reload, then one for the burst of three"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "the burst waited out min-interval"
    );
}

#[test]
fn a_stop_signal_ends_a_reload_waiting_for_the_lock() {
    let lab = ReloadLab::start(Launch::MasterWorker);
    let config = reload_config(&lab, "master", "");
    let lock_file = std::fs::File::create(lab.dir().join("master.sock.lock")).unwrap();
    let held = nix::fcntl::Flock::lock(lock_file, nix::fcntl::FlockArg::LockExclusive).unwrap();
    for signal in [
        testkit::Signal::SIGTERM,
        testkit::Signal::SIGINT,
        testkit::Signal::SIGHUP,
    ] {
        let child = reload(&config, &[]).spawn_piped();
        std::thread::sleep(Duration::from_millis(300));
        let stopped = Instant::now();
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap()), signal).unwrap();
        let output = child.wait_with_output().unwrap();
        assert!(stopped.elapsed() < Duration::from_secs(2));
        assert_eq!(output.status.code(), Some(1), "{}", stdout(&output));
        assert!(
            stdout(&output).contains(&format!("stopped by {signal:?}")),
            "{}",
            stdout(&output)
        );
    }
    drop(held);
    assert_eq!(show_proc(&lab).master().reloads, 0);
}

#[test]
fn a_bad_flag_value_is_named() {
    let output = haproxide()
        .args(&["reload", "-f", "/dev/null", "--method", "kill", "--check"])
        .expect_exit(1);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(
            "error: command line --method: [reload] method = \"kill\": must be one of: master, systemd, binary, signal"
        ),
        "{stderr}"
    );
}
