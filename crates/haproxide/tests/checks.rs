//! The Nagios/Icinga checks against real daemons: `check spool` while a
//! real `pull` fills the spool of a real HAProxy and `process` empties it;
//! `check agent` against a real `agent` following a health endpoint.

// Test helpers fail the test by panicking, like the tests themselves.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::process::Output;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use testkit::{HttpServer, Lab, Workspace, dir_entries, free_port, terminate, wait_for};

/// The status line, and the exit code.
fn checked(space: &Workspace, args: &[&str]) -> (String, i32) {
    let output: Output = space.command(env!("CARGO_BIN_EXE_haproxide"), args).output();
    assert!(
        output.stderr.is_empty() || output.status.code() == Some(3),
        "{output:?}"
    );
    (
        String::from_utf8(output.stdout).unwrap().trim_end().to_owned(),
        output.status.code().unwrap(),
    )
}

#[test]
fn check_spool_says_ok_warning_critical_and_unknown_as_rounds_wait_and_age() {
    let lab = Lab::builder().start();
    let space = Workspace::new("haproxide.conf", |dir| {
        let root = dir.display();
        format!(
            "[pull]\nsocket-dir = {}\ndst-dir = {root}/incoming\ntmp-dst-dir = {root}/incoming.tmp\n\
             min-free-space = 1M\ntimeout = 0.5\n[process]\nsrc-dir = {root}/incoming\n\
             [graphite]\nenabled = false\n[local-store]\ndir = {root}/local-store\n",
            lab.socket_dir().display()
        )
    });
    let spool = space.path().join("incoming");
    fs::create_dir_all(&spool).unwrap();
    let check = ["check", "spool", "--warning", "1", "--critical", "2"];
    let pull = || {
        space
            .command(env!("CARGO_BIN_EXE_haproxide"), &["pull", "--once"])
            .expect_success()
    };

    assert_eq!(
        checked(&space, &check),
        (
            format!(
                "SPOOL OK - 0 rounds waiting in {} | rounds=0;1;2;0 oldest_age=0s;300;900;0",
                spool.display()
            ),
            0
        )
    );
    pull();
    pull();
    let (line, code) = checked(&space, &check);
    assert_eq!(code, 1, "{line}");
    assert!(
        line.starts_with(&format!(
            "SPOOL WARNING - 2 rounds waiting in {}, the oldest ",
            spool.display()
        )),
        "{line}"
    );
    pull();
    let (line, code) = checked(&space, &check);
    assert_eq!(code, 2, "{line}");
    assert!(line.starts_with("SPOOL CRITICAL - 3 rounds waiting"), "{line}");

    // process empties the spool: OK again.
    space
        .command(env!("CARGO_BIN_EXE_haproxide"), &["process", "--once"])
        .expect_success();
    assert_eq!(checked(&space, &check).1, 0);

    // One round, but 1,000 s old: CRITICAL past --age-critical (900 by default).
    pull();
    let round = dir_entries(&spool).pop().unwrap();
    let old = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() - 1000;
    fs::rename(spool.join(&round), spool.join(old.to_string())).unwrap();
    let (line, code) = checked(&space, &check);
    assert_eq!(code, 2, "{line}");
    assert!(
        line.contains("1 round waiting") && line.contains(" s old | rounds=1;1;2;0 oldest_age=10"),
        "{line}"
    );
    let (line, code) = checked(&space, &[&check[..], &["--age-critical", "5000"]].concat());
    assert_eq!(code, 1, "past --age-warning only: {line}");

    // pull and process say how long ago they last finished a round, from
    // the record each keeps beside the spool.
    for (daemon, record) in [("pull", "incoming.last-round"), ("process", "incoming.last-delivered")] {
        let name = daemon.to_uppercase();
        let (line, code) = checked(&space, &["check", daemon]);
        assert_eq!(code, 0, "{line}");
        assert!(
            line.starts_with(&format!("{name} OK - {daemon} finished its last round, ")),
            "{line}"
        );
        assert!(line.ends_with(";60;300;0"), "{line}");
        // Backdated by 100 s: past --warning 60; then past a --critical of 50.
        let record = space.path().join(record);
        let past = std::fs::File::options().write(true).open(&record).unwrap();
        past.set_modified(SystemTime::now() - std::time::Duration::from_secs(100))
            .unwrap();
        let (line, code) = checked(&space, &["check", daemon]);
        assert_eq!(code, 1, "{line}");
        assert!(line.starts_with(&format!("{name} WARNING - ")), "{line}");
        let (line, code) = checked(&space, &["check", daemon, "--warning", "10", "--critical", "50"]);
        assert_eq!(code, 2, "{line}");
        assert!(line.starts_with(&format!("{name} CRITICAL - ")), "{line}");
        fs::remove_file(&record).unwrap();
        let (line, code) = checked(&space, &["check", daemon]);
        assert_eq!(code, 3, "{line}");
        assert!(line.contains(&format!("{daemon} has finished no round yet?")), "{line}");
    }

    // UNKNOWN: a spool that cannot be read, a bad threshold.
    fs::remove_dir_all(&spool).unwrap();
    fs::write(&spool, "not a directory").unwrap();
    let (line, code) = checked(&space, &check);
    assert_eq!(code, 3, "{line}");
    assert!(
        line.starts_with(&format!("SPOOL UNKNOWN - cannot read {}: ", spool.display())),
        "{line}"
    );
    assert_eq!(checked(&space, &["check", "spool", "--warning", "many"]).1, 3);
}

#[test]
fn check_agent_judges_the_reply_as_haproxy_acts_on_it() {
    let mut endpoint = HttpServer::start("health");
    endpoint.respond_json(
        200,
        r#"{"ConnectionUsagePercent": 80, "Status": "ready", "SystemLoad": 0.5, "SwapBytesUsed": 0}"#,
    );
    let port = free_port();
    let space = Workspace::new("agent.conf", |_| {
        format!(
            "[agent]\nbind = 127.0.0.1\nport = {port}\ntimeout = 0.5\nretries = 0\ninterval = 0.1\n\
             health-url = http://127.0.0.1:{}/health\n",
            endpoint.port()
        )
    });
    let agent = space
        .command(env!("CARGO_BIN_EXE_haproxide"), &["agent"])
        .spawn(&space.path().join("agent.log"));
    wait_for("the agent listening", Duration::from_secs(10), || {
        space.read("agent.log").contains("agent listening")
    });
    let check = ["check", "agent"];
    let expect = |line: &str, code: i32| {
        let expected = (line.replace("ADDRESS", &format!("127.0.0.1:{port}")), code);
        wait_for(line, Duration::from_secs(10), || checked(&space, &check) == expected);
    };
    // 1 - 0.56 - 0.2: 24% of the weight, Datawave's formula.
    expect("AGENT OK - ADDRESS answered 24% ready up | weight=24%;;;0", 0);
    endpoint.respond_json(503, r#"{"Status": "drain"}"#);
    expect("AGENT WARNING - ADDRESS answered 0% drain | weight=0%;;;0", 1);
    endpoint.stop();
    expect("AGENT CRITICAL - ADDRESS answered down", 2);
    let (status, _) = terminate(agent);
    assert!(status.success());
    let (line, code) = checked(&space, &check);
    assert_eq!(code, 3, "{line}");
    assert!(
        line.starts_with(&format!("AGENT UNKNOWN - no answer from 127.0.0.1:{port}: ")),
        "{line}"
    );
    // The port on the command line wins over the file's.
    let other = free_port();
    let (line, code) = checked(&space, &["check", "agent", "--port", &other.to_string()]);
    assert_eq!(code, 3);
    assert!(line.contains(&format!("127.0.0.1:{other}")), "{line}");
}
