//! `haproxide top` in a real terminal (tmux) against two real HAProxy
//! instances under traffic: what it shows, how the keys sort, filter and
//! act on a server, and how it carries on when an instance stops.

// Test helpers fail the test by panicking, like the tests themselves.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use testkit::{Lab, Tmux};

const WAIT: Duration = Duration::from_secs(15);

/// The rows of the table on `screen`, split into words (the title line,
/// the headings and the status line left out).
fn rows(screen: &str) -> Vec<Vec<&str>> {
    let lines: Vec<&str> = screen.lines().collect();
    lines
        .iter()
        .skip(2)
        .take(lines.len().saturating_sub(3))
        .map(|line| line.split_whitespace().collect::<Vec<_>>())
        .filter(|words| !words.is_empty())
        .collect()
}

/// The row of `name` on `screen`.
fn row<'a>(screen: &'a str, name: &str) -> Option<Vec<&'a str>> {
    rows(screen).into_iter().find(|words| words.first() == Some(&name))
}

/// The first words of the rows: their names.
fn names(screen: &str) -> Vec<&str> {
    rows(screen)
        .into_iter()
        .filter_map(|words| words.first().copied())
        .collect()
}

/// The last line: the status line.
fn status_line(screen: &str) -> &str {
    screen.trim_end().lines().last().unwrap_or_default()
}

/// Whether a `haproxide top` of `socket_dir` still runs.
fn top_running(socket_dir: &str) -> bool {
    std::fs::read_dir("/proc").unwrap().flatten().any(|entry| {
        std::fs::read(entry.path().join("cmdline")).is_ok_and(|cmdline| {
            let words: Vec<&[u8]> = cmdline.split(|byte| *byte == 0).collect();
            words.contains(&&b"top"[..]) && words.contains(&socket_dir.as_bytes())
        })
    })
}

/// `status` of `backend/server` in `show stat` of the lab's instance `index`.
fn haproxy_status(lab: &Lab, index: usize, backend: &str, server: &str) -> String {
    let stat = haproxy::ShowStat::parse(lab.instance(index).raw_command("show stat")).unwrap();
    let row = stat
        .rows()
        .find(|row| row.pxname() == backend && row.svname() == server)
        .unwrap();
    row.get("status").unwrap().into_owned()
}

/// HTTP requests through `fe_main` of every instance given, a few every
/// 50 ms, until `stop` is set or a minute has passed.
fn traffic(ports: Vec<u16>, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let started = Instant::now();
        while !stop.load(Ordering::Relaxed) && started.elapsed() < Duration::from_secs(60) {
            for port in &ports {
                // An instance that stopped refuses: that is expected here.
                let _ = testkit::loopback_request(*port, "GET", "/", "", "");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    })
}

#[test]
fn top_shows_sorts_filters_drains_and_outlives_a_stopped_instance() {
    let mut lab = Lab::builder()
        .instances(2)
        .health_checks()
        .backend("be_app", &["s1", "s2"])
        .backend("be_web", &["w1", "w2", "w3"])
        .frontend("fe_main", "be_app")
        .start();
    let stop = Arc::new(AtomicBool::new(false));
    let ports = (0..2)
        .map(|index| lab.instance(index).frontend_port("fe_main"))
        .collect();
    let load = traffic(ports, Arc::clone(&stop));
    let binary = env!("CARGO_BIN_EXE_haproxide");
    let socket_dir = lab.socket_dir().to_str().unwrap().to_owned();
    let tmux = Tmux::start(
        lab.dir(),
        120,
        40,
        &[binary, "top", "--socket-dir", &socket_dir, "--interval", "0.5"],
    );

    // Every server with its status, under its backend (the tree), and
    // sessions per second from the traffic.
    let screen = tmux.wait_for_screen("every server UP, s1 busy", WAIT, |screen| {
        ["s1", "s2", "w1", "w2", "w3"]
            .iter()
            .all(|server| row(screen, server).is_some_and(|words| words.get(1) == Some(&"UP")))
            && row(screen, "s1").is_some_and(|words| words[4] != "0" && words[4] != "-")
    });
    assert!(
        screen.starts_with("haproxide top: 2 sockets | servers (tree), summed | sort NAME asc"),
        "{screen}"
    );
    assert_eq!(
        names(&screen),
        ["be_app", "s1", "s2", "be_web", "w1", "w2", "w3"],
        "{screen}"
    );
    assert_eq!(
        row(&screen, "w1").unwrap()[2],
        "2",
        "weights summed over both sockets: {screen}"
    );

    // Flat, by total sessions, descending: be_app's busy servers first.
    tmux.send_keys(&["t", "S", "i"]);
    let screen = tmux.wait_for_screen("sorted by sessions", WAIT, |screen| {
        screen.contains("| servers, summed | sort SESSIONS desc")
    });
    let order = names(&screen);
    assert_eq!(order.len(), 5, "{screen}");
    assert!(order[..2].iter().all(|name| name.starts_with("be_app/")), "{screen}");
    // By name, still descending.
    tmux.send_keys(&["s"]);
    let screen = tmux.wait_for_screen("sorted by name", WAIT, |screen| screen.contains("| sort NAME desc"));
    assert_eq!(
        names(&screen),
        ["be_web/w3", "be_web/w2", "be_web/w1", "be_app/s2", "be_app/s1"],
        "{screen}"
    );

    // A filter keeps the matching rows.
    tmux.send_keys(&["/", "w2", "Enter"]);
    let screen = tmux.wait_for_screen("the w2 filter", WAIT, |screen| screen.contains("filter \"w2\""));
    assert_eq!(names(&screen), ["be_web/w2"], "{screen}");

    // Drain s1, confirmed, on both instances.
    tmux.send_keys(&["/", "BSpace", "BSpace", "s1", "Enter"]);
    tmux.wait_for_screen("the s1 filter", WAIT, |screen| names(screen) == ["be_app/s1"]);
    tmux.send_keys(&["D"]);
    tmux.wait_for_screen("the confirmation", WAIT, |screen| {
        status_line(screen) == "drain be_app/s1 on 2 socket(s)? y/n"
    });
    tmux.send_keys(&["y"]);
    let screen = tmux.wait_for_screen("both replies", WAIT, |screen| {
        status_line(screen).contains("hap0.sock: done") && status_line(screen).contains("hap1.sock: done")
    });
    assert!(
        status_line(&screen).starts_with("set server be_app/s1 state drain:"),
        "{screen}"
    );
    for index in 0..2 {
        assert_eq!(haproxy_status(&lab, index, "be_app", "s1"), "DRAIN");
    }
    tmux.wait_for_screen("s1 DRAIN", WAIT, |screen| {
        row(screen, "be_app/s1").is_some_and(|words| words[1] == "DRAIN")
    });

    // One instance stops: named in the status line; the other's rows stay live.
    tmux.send_keys(&["/", "Escape"]);
    lab.stop_instance(1);
    let screen = tmux.wait_for_screen("the stopped instance", WAIT, |screen| {
        status_line(screen).starts_with("no answer: hap1.sock: ")
    });
    let sessions = |screen: &str| -> u64 { row(screen, "be_app/s2").unwrap()[10].parse().unwrap() };
    let before = sessions(&screen);
    assert_eq!(
        row(&screen, "be_web/w1").unwrap()[2],
        "1",
        "one socket's weight: {screen}"
    );
    tmux.wait_for_screen("s2's sessions growing", WAIT, |screen| {
        row(screen, "be_app/s2").is_some_and(|words| words[10].parse::<u64>().unwrap_or(0) > before)
    });

    tmux.send_keys(&["q"]);
    let started = Instant::now();
    while tmux.running() && started.elapsed() < WAIT {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!tmux.running(), "top did not quit on q");

    // Closing its terminal (tmux's SIGHUP) ends top too, within a second or so.
    let closed = Tmux::start(lab.dir(), 80, 24, &[binary, "top", "--socket-dir", &socket_dir]);
    closed.wait_for_screen("top drawn", WAIT, |screen| screen.starts_with("haproxide top:"));
    drop(closed);
    testkit::wait_for("top gone with its terminal", Duration::from_secs(5), || {
        !top_running(&socket_dir)
    });
    stop.store(true, Ordering::Relaxed);
    load.join().unwrap();
}
