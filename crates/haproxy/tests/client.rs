//! The runtime-API client against a real HAProxy (UNIX, TCP over IPv4 and IPv6,
//! master CLI), and against real sockets that fail the ways HAProxy's can: gone,
//! stale, silent, closing at once.

// Test helpers fail the test by panicking, like the tests themselves.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixListener;
use std::time::Duration;

use haproxy::{ClientOptions, Endpoint, ErrorKind, ObjectType, Retries, RuntimeClient, ShowInfo, ShowStat};
use testkit::Lab;

fn client(endpoint: Endpoint) -> RuntimeClient {
    RuntimeClient::new(endpoint, ClientOptions::default())
}

#[tokio::test]
async fn show_info_and_show_stat_over_unix_tcp_v4_and_v6() {
    let lab = Lab::builder().tcp_stats().start();
    let instance = lab.instance(0);
    assert_eq!(instance.http_get("fe_main", "/", 10), vec![200; 10]);
    let (v4, v6) = instance.tcp_stats_ports().unwrap();
    for endpoint in [
        Endpoint::Unix(instance.stats_socket().to_owned()),
        format!("tcp://127.0.0.1:{v4}").parse().unwrap(),
        format!("tcp://[::1]:{v6}").parse().unwrap(),
    ] {
        let info = client(endpoint.clone()).send("show info").await.unwrap();
        let info = ShowInfo::parse(&info.text()).unwrap();
        assert_eq!(info.int("Pid"), Some(i64::from(instance.pid().unwrap())), "{endpoint}");

        let reply = client(endpoint.clone()).send("show stat").await.unwrap();
        assert!(reply.as_bytes().ends_with(b"\n\n"));
        let stat = ShowStat::from_bytes(reply.into_bytes()).unwrap();
        let rows: Vec<_> = stat.rows().collect();
        let names: Vec<_> = rows
            .iter()
            .map(|row| format!("{}/{}", row.pxname(), row.svname()))
            .collect();
        assert_eq!(
            names,
            ["fe_main/FRONTEND", "be_app/s1", "be_app/s2", "be_app/BACKEND"],
            "{endpoint}"
        );
        assert_eq!(rows[0].int("stot"), Ok(Some(10)));
        assert_eq!(rows[1].int("stot"), Ok(Some(5)), "round robin gives s1 half");
        assert_eq!(rows[2].int("stot"), Ok(Some(5)));
        assert_eq!(rows[3].int("stot"), Ok(Some(10)));
        assert_eq!(rows[3].object_type(), ObjectType::Backend);
    }
    let served: u64 = lab.http_servers().iter().map(|server| server.requests()).sum();
    assert_eq!(served, 10);
}

#[tokio::test]
async fn master_cli_routes_to_workers_and_reports_unknown_targets() {
    let lab = Lab::builder().master_cli().start();
    let instance = lab.instance(0);
    let master = client(Endpoint::Unix(instance.master_socket().unwrap().to_owned()));
    let master_pid = i64::from(instance.pid().unwrap());

    let routed = ShowInfo::parse(&master.send("@1 show info").await.unwrap().text()).unwrap();
    let worker_pid = routed.int("Pid").unwrap();
    assert_ne!(worker_pid, master_pid, "@1 is the worker, not the master");
    let direct = ShowInfo::parse(&instance.raw_command("show info")).unwrap();
    assert_eq!(direct.int("Pid"), Some(worker_pid));

    let by_pid = master.send(&format!("@!{worker_pid} show info")).await.unwrap();
    assert_eq!(ShowInfo::parse(&by_pid.text()).unwrap().int("Pid"), Some(worker_pid));

    let procs = master.send("@ show proc").await.unwrap().text().into_owned();
    assert!(
        procs
            .lines()
            .any(|line| line.starts_with(&format!("{master_pid} ")) && line.contains("master")),
        "{procs}"
    );
    assert!(
        procs
            .lines()
            .any(|line| line.starts_with(&format!("{worker_pid} ")) && line.contains("worker")),
        "{procs}"
    );

    let unknown = master.send("@9 show info").await.unwrap();
    assert_eq!(
        unknown.cli_error().as_deref(),
        Some("Can't find the target PID matching the prefix '@9'")
    );
}

#[tokio::test]
async fn missing_and_stale_sockets_are_told_apart() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.sock");
    let error = client(Endpoint::Unix(missing.clone()))
        .send("show info")
        .await
        .unwrap_err();
    assert!(matches!(error.kind, ErrorKind::NotFound), "{error}");
    assert!(error.to_string().starts_with(&missing.display().to_string()));

    let stale = dir.path().join("stale.sock");
    drop(UnixListener::bind(&stale).unwrap());
    let error = client(Endpoint::Unix(stale)).send("show info").await.unwrap_err();
    assert!(matches!(error.kind, ErrorKind::Refused), "{error}");

    let closed_port = testkit::free_port();
    let error = client(format!("tcp://127.0.0.1:{closed_port}").parse().unwrap())
        .send("show info")
        .await
        .unwrap_err();
    assert!(matches!(error.kind, ErrorKind::Refused), "{error}");
}

#[tokio::test]
async fn a_silent_peer_hits_the_read_timeout_and_a_closing_one_is_an_empty_reply() {
    let dir = tempfile::tempdir().unwrap();
    // The kernel completes the connection even though nobody accepts or answers.
    let silent_path = dir.path().join("silent.sock");
    let _silent = UnixListener::bind(&silent_path).unwrap();
    let options = ClientOptions {
        read_timeout: Duration::from_millis(200),
        ..ClientOptions::default()
    };
    let error = RuntimeClient::new(Endpoint::Unix(silent_path), options)
        .send("show info")
        .await
        .unwrap_err();
    assert!(
        matches!(error.kind, ErrorKind::ReadTimeout { received: 0, .. }),
        "{error}"
    );

    let closing_path = dir.path().join("closing.sock");
    let closing = UnixListener::bind(&closing_path).unwrap();
    let closer = std::thread::spawn(move || drop(closing.accept().unwrap()));
    let error = client(Endpoint::Unix(closing_path))
        .send("show info")
        .await
        .unwrap_err();
    closer.join().unwrap();
    assert!(matches!(error.kind, ErrorKind::EmptyReply), "{error}");
}

#[tokio::test]
async fn a_full_connection_queue_is_reported_as_busy() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("busy.sock");
    // Nobody accepts: pending connections pile up until the kernel's queue is full.
    let _listener = UnixListener::bind(&path).unwrap();
    let mut pending = Vec::new();
    let error = loop {
        assert!(pending.len() < 10_000, "the connection queue never filled");
        match tokio::net::UnixStream::connect(&path).await {
            Ok(stream) => pending.push(stream),
            Err(error) => break error,
        }
    };
    assert_eq!(error.kind(), std::io::ErrorKind::WouldBlock);
    let error = client(Endpoint::Unix(path)).send("show info").await.unwrap_err();
    assert!(matches!(error.kind, ErrorKind::Busy), "{error}");
    assert!(
        error
            .to_string()
            .ends_with("queue of pending connections is full (HAProxy busy or hung?)")
    );
}

#[tokio::test]
async fn connect_retries_wait_for_a_socket_that_appears() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("late.sock");
    let late_path = path.clone();
    let server = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(150));
        let listener = UnixListener::bind(&late_path).unwrap();
        let (stream, _) = listener.accept().unwrap();
        let mut line = String::new();
        BufReader::new(&stream).read_line(&mut line).unwrap();
        (&stream).write_all(format!("got {line}\n").as_bytes()).unwrap();
    });
    let options = ClientOptions {
        retries: Retries::Limited(50),
        retry_interval: Duration::from_millis(20),
        ..ClientOptions::default()
    };
    let reply = RuntimeClient::new(Endpoint::Unix(path.clone()), options)
        .send("show info")
        .await
        .unwrap();
    server.join().unwrap();
    assert_eq!(reply.text(), "got show info\n\n");

    let no_retry = client(Endpoint::Unix(dir.path().join("never.sock")))
        .send("show info")
        .await
        .unwrap_err();
    assert!(matches!(no_retry.kind, ErrorKind::NotFound));
}

#[tokio::test]
async fn send_to_streams_and_tells_complete_replies_from_cut_ones() {
    let lab = Lab::builder().start();
    let stats = client(Endpoint::Unix(lab.instance(0).stats_socket().to_owned()));
    let mut streamed = Vec::new();
    let transfer = stats.send_to("show stat", &mut streamed).await.unwrap();
    assert!(transfer.complete);
    assert_eq!(transfer.bytes, streamed.len() as u64);
    assert!(
        transfer.first_line.starts_with("# pxname,svname,qcur,"),
        "{}",
        transfer.first_line
    );
    assert!(transfer.first_line.len() <= 120);

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cut.sock");
    let listener = UnixListener::bind(&path).unwrap();
    // A reply that stops mid-way, as when HAProxy dies while answering.
    let server = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut command = String::new();
        BufReader::new(&stream).read_line(&mut command).unwrap();
        stream.write_all(b"Name: HAProxy\nVersion: 2.6").unwrap();
    });
    let mut cut = Vec::new();
    let transfer = client(Endpoint::Unix(path))
        .send_to("show info", &mut cut)
        .await
        .unwrap();
    server.join().unwrap();
    assert_eq!(
        transfer,
        haproxy::Transfer {
            bytes: 26,
            complete: false,
            first_line: "Name: HAProxy".into()
        }
    );
}
