//! `haproxide logs` (and `haproxykafka`) between a real HAProxy 2.6, logging
//! with Wikimedia's production `log` line and `log-format-sd`, and a real
//! Kafka-protocol broker (tansu): what arrives in the topics is read back
//! and compared with the requests that made it.

// Tests fail by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use testkit::{NotifySocket, Record, Signal, Tansu, TestCommand, free_port, stop_with, terminate, wait_for};

const TOPIC: &str = "webrequest_text";
const DLQ: &str = "webrequest_errors";
const HOSTNAME: &str = "cp-test.example";
const FLUSH_TIMEOUT: Duration = Duration::from_secs(2);

fn haproxide() -> TestCommand {
    TestCommand::new(env!("CARGO_BIN_EXE_haproxide"))
}

/// A broker with both topics, and a directory for the daemon.
struct Setup {
    tansu: Tansu,
    dir: tempfile::TempDir,
    metrics_port: u16,
}

impl Setup {
    fn new() -> Setup {
        let tansu = Tansu::start();
        tansu.create_topic(TOPIC);
        tansu.create_topic(DLQ);
        let dir = tempfile::Builder::new().prefix("haproxide-logs-").tempdir().unwrap();
        Setup {
            tansu,
            dir,
            metrics_port: free_port(),
        }
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("log.sock")
    }

    fn buffer_dir(&self) -> PathBuf {
        self.dir.path().join("buffer")
    }

    /// The daemon's INI configuration.
    fn ini(&self) -> PathBuf {
        let path = self.dir.path().join("logs.conf");
        let text = format!(
            "[logs]\nhostname = {HOSTNAME}\nworkers = 2\n\n\
             [logs-socket]\npath = {}\nbatch-deadline = 20ms\n\n\
             [logs-kafka]\ntopic = {TOPIC}\ndlq-topic = {DLQ}\nflush-timeout = {}s\n\n\
             [logs-rdkafka]\nbootstrap.servers = {}\nacks = all\nqueue.buffering.max.ms = 10\ncompression.codec = zstd\n\n\
             [logs-monitoring]\nserver-bind = 127.0.0.1:{}\n\n\
             [logs-buffer]\ndir = {}\nsegment-size = 1M\n",
            self.socket().display(),
            FLUSH_TIMEOUT.as_secs(),
            self.tansu.address(),
            self.metrics_port,
            self.buffer_dir().display()
        );
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Starts the daemon with `command` and waits until it serves.
    fn start(&self, command: &TestCommand) -> Child {
        let child = command.spawn(&self.dir.path().join("logs.log"));
        let deadline = Instant::now() + Duration::from_secs(20);
        while !(self.socket().exists() && http_get(self.metrics_port, "/healthz").0 == 200) {
            assert!(
                Instant::now() < deadline,
                "the daemon did not serve within 20 s:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        child
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("logs.log")).unwrap_or_default()
    }

    fn metrics(&self) -> String {
        http_get(self.metrics_port, "/metrics").1
    }

    /// Waits (at most 10 s) until the sample `name` is `value`: a delivery
    /// report can come after a consumer has read the record.
    fn wait_metric(&self, name: &str, value: f64) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.metric(name) != value && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(self.metric(name), value, "{name}");
    }

    /// The value of the sample `name` (with its labels) in `/metrics`.
    fn metric(&self, name: &str) -> f64 {
        let text = self.metrics();
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("{name} not in\n{text}"))
    }
}

/// `GET path` on 127.0.0.1:`port`: status and body (0 when nothing answers).
fn http_get(port: u16, path: &str) -> (u16, String) {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return (0, String::new());
    };
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = write!(stream, "GET {path} HTTP/1.1\r\nHost: test\r\n\r\n");
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// A HAProxy 2.6 running the fixture configuration (Wikimedia's `log`
/// line and `log-format-sd`), logging to `socket`, on one port of both
/// 127.0.0.1 and ::1.
struct Haproxy {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Haproxy {
    fn start(socket: &Path) -> Haproxy {
        let fixture = include_str!("../../../fixtures/haproxy-2.6.12-debian/haproxy-logs.cfg");
        let dir = tempfile::Builder::new()
            .prefix("haproxide-logs-haproxy-")
            .tempdir()
            .unwrap();
        for _attempt in 0..5 {
            let port = free_port();
            if TcpListener::bind(("::1", port)).is_err() {
                continue;
            }
            // dontlognull: the probes that see HAProxy listen are not requests.
            let config = fixture
                .replace("/tmp/haproxide-logs/log.sock", &socket.display().to_string())
                .replace("    option httplog\n", "    option httplog\n    option dontlognull\n")
                .replace("18080", &port.to_string());
            let path = dir.path().join("haproxy.cfg");
            std::fs::write(&path, config).unwrap();
            let mut child = Command::new(testkit::haproxy_binary())
                .args(["-db", "-f"])
                .arg(&path)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("haproxy");
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                if TcpStream::connect(("127.0.0.1", port)).is_ok() && TcpStream::connect(("::1", port)).is_ok() {
                    return Haproxy { child, port, _dir: dir };
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("HAProxy did not start on a free port in 5 attempts");
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One request through HAProxy, and what its message must say.
struct Request {
    from_ipv6: bool,
    path: &'static str,
    query: String,
    headers: Vec<(&'static str, Vec<u8>)>,
    status: u16,
}

impl Request {
    /// Sends it on a connection of its own and checks the response's status.
    fn send(&self, port: u16) {
        let mut stream = match self.from_ipv6 {
            true => TcpStream::connect(("::1", port)),
            false => TcpStream::connect(("127.0.0.1", port)),
        }
        .unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut request = format!("GET {}{} HTTP/1.1\r\n", self.path, self.query).into_bytes();
        for (name, value) in &self.headers {
            request.extend_from_slice(name.as_bytes());
            request.extend_from_slice(b": ");
            request.extend_from_slice(value);
            request.extend_from_slice(b"\r\n");
        }
        request.extend_from_slice(b"Connection: close\r\n\r\n");
        stream.write_all(&request).unwrap();
        let mut response = Vec::new();
        stream.read_to_end(&mut response).unwrap();
        let status = format!(" {} ", self.status);
        assert!(
            response.starts_with(b"HTTP/1.1") && String::from_utf8_lossy(&response[..13]).contains(&status),
            "{}",
            String::from_utf8_lossy(&response)
        );
    }

    fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(header, _)| header.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_slice())
    }
}

/// Requests with every header the format captures, a 404, a byte that is
/// not UTF-8, `"`, `\` and `]` in values, and clients on ::1.
fn requests(count: usize) -> Vec<Request> {
    (0..count)
        .map(|index| {
            let mut headers: Vec<(&'static str, Vec<u8>)> =
                vec![("Host", format!("host{index}.example.org").into_bytes())];
            if index % 2 == 0 {
                headers.push((
                    "Referer",
                    format!("https://ref.example/{index}?a=\"b\"\\c]d").into_bytes(),
                ));
            }
            let agent: Vec<u8> = match index % 3 {
                0 => b"Mozilla/5.0 (X11; Linux x86_64)".to_vec(),
                1 => b"caf\xe9-agent/1.0".to_vec(),
                _ => b"say \"hi\" \\ [x]".to_vec(),
            };
            headers.push(("User-Agent", agent));
            if index % 4 != 3 {
                headers.push(("Accept-Language", b"fr-FR,fr;q=0.9".to_vec()));
                headers.push(("Range", format!("bytes=0-{}", index % 10).into_bytes()));
                headers.push(("Accept", b"text/html".to_vec()));
            }
            Request {
                from_ipv6: index % 5 == 4,
                path: if index % 6 == 5 {
                    "/missing/page"
                } else {
                    "/wiki/Main_Page"
                },
                query: format!("?req={index}&x=1"),
                headers,
                status: if index % 6 == 5 { 404 } else { 200 },
            }
        })
        .collect()
}

/// What HAProxy logs for a header it did not get: `-`.
fn logged(value: Option<&[u8]>) -> Vec<u8> {
    value.map_or_else(|| b"-".to_vec(), <[u8]>::to_vec)
}

/// The JSON string of `bytes` as the daemon writes it: `\u00XX` for each
/// byte that is not UTF-8 (serde's own escaping for the rest).
fn json_text(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) => serde_json::to_string(text).unwrap(),
        Err(_) => {
            let mut text = String::new();
            for chunk in bytes.utf8_chunks() {
                text.push_str(chunk.valid());
                text.extend(chunk.invalid().iter().map(|byte| char::from(*byte)));
            }
            serde_json::to_string(&text).unwrap().replace('\u{e9}', "\\u00e9")
        }
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// `2026-12-03T10:00:00Z` as seconds since the epoch.
fn parse_dt(text: &str) -> u64 {
    let time: jiff::Timestamp = text.parse().unwrap_or_else(|error| panic!("dt {text:?}: {error}"));
    u64::try_from(time.as_second()).unwrap()
}

#[test]
fn requests_through_haproxy_arrive_in_kafka_field_by_field() {
    const COUNT: usize = 30;
    let setup = Setup::new();
    let daemon = setup.start(&haproxide().args(&["logs", "-f"]).args(&[setup.ini()]));
    let haproxy = Haproxy::start(&setup.socket());
    let requests = requests(COUNT);
    let started = unix_now();
    // Paced: the kernel queues at most net.unix.max_dgram_qlen (10 here)
    // datagrams for a busy reader, and HAProxy drops what finds it full.
    for request in &requests {
        request.send(haproxy.port);
        std::thread::sleep(Duration::from_millis(25));
    }
    let finished = unix_now();
    let records = setup
        .tansu
        .consume(TOPIC, COUNT, Duration::from_secs(1), Duration::from_secs(30));
    assert_eq!(records.len(), COUNT, "{}", setup.log());
    let mut sequences = Vec::new();
    let mut seen = [false; COUNT];
    for record in &records {
        let raw = String::from_utf8(record.value.clone()).expect("JSON is UTF-8");
        let message: serde_json::Value = serde_json::from_str(&raw).unwrap();
        let query = message["uri_query"].as_str().unwrap();
        let index: usize = query
            .strip_prefix("?req=")
            .and_then(|rest| rest.split('&').next())
            .and_then(|number| number.parse().ok())
            .unwrap_or_else(|| panic!("no request number in {raw}"));
        assert!(!seen[index], "request {index} arrived twice");
        seen[index] = true;
        let request = &requests[index];
        let text = |key: &str| {
            message[key]
                .as_str()
                .unwrap_or_else(|| panic!("{key} in {raw}"))
                .to_owned()
        };
        assert_eq!(text("hostname"), HOSTNAME);
        assert_eq!(text("server_pid"), haproxy.pid().to_string());
        assert_eq!(text("ip"), if request.from_ipv6 { "::1" } else { "127.0.0.1" });
        assert_eq!(text("http_method"), "GET");
        assert_eq!(text("uri_path"), request.path);
        assert_eq!(text("uri_query"), request.query);
        assert_eq!(text("http_status"), request.status.to_string());
        // %B counts HAProxy's internal (HTX) form of the response, not the
        // wire's: 108 and 81 bytes on 2.6.12, as in the fixture datagrams.
        let counted = if request.status == 404 { 81 } else { 108 };
        assert_eq!(message["response_size"], counted, "{raw}");
        assert_eq!(message["time_firstbyte"], -0.001, "no server answered: Tr is -1 ms");
        for (key, header) in [
            ("uri_host", "Host"),
            ("referer", "Referer"),
            ("user_agent", "User-Agent"),
            ("accept_language", "Accept-Language"),
            ("range", "Range"),
            ("accept", "Accept"),
        ] {
            let expected = logged(request.header(header));
            assert!(
                raw.contains(&format!("\"{key}\":{}", json_text(&expected))),
                "{key}: {} not in {raw}",
                json_text(&expected)
            );
        }
        assert_eq!(
            text("tls"),
            "vers=TLSv1.3;keyx=UNKNOWN;auth=ECDSA;ciph=AES-256-GCM-SHA384;prot=h2;sess=new"
        );
        for key in ["cache_status", "content_type", "x_analytics", "x_cache", "backend"] {
            assert_eq!(
                text(key),
                "-",
                "{key}: the response rules do not run for `http-request return`"
            );
        }
        for key in ["ch_ua", "ch_ua_mobile", "ch_ua_model"] {
            assert_eq!(text(key), "", "{key}: not in this log-format-sd");
        }
        let dt = parse_dt(&text("dt"));
        assert!(
            (started.saturating_sub(1)..=finished + 1).contains(&dt),
            "{dt} outside {started}..{finished}"
        );
        sequences.push(message["sequence"].as_u64().unwrap());
    }
    sequences.sort_unstable();
    assert_eq!(
        sequences,
        (0..COUNT as u64).collect::<Vec<_>>(),
        "%rt counts this process's requests"
    );
    setup.wait_metric("haproxykafka_valid_messages_total", COUNT as f64);
    assert_eq!(setup.metric("haproxykafka_received_datagrams_total"), COUNT as f64);
    assert_eq!(setup.metric("haproxykafka_rejected_messages_total"), 0.0);
    let (clean, said) = testkit::promtool_check_metrics(&setup.metrics());
    assert!(clean && said.is_empty(), "promtool check metrics: {said}");
    let (status, elapsed) = terminate(daemon);
    assert!(status.success(), "{status}\n{}", setup.log());
    assert!(elapsed < FLUSH_TIMEOUT + Duration::from_secs(1), "{elapsed:?}");
    assert!(!setup.socket().exists(), "the socket is removed on the way out");
}

#[test]
fn what_the_mapping_refuses_lands_in_the_dead_letter_topic_as_it_came() {
    let setup = Setup::new();
    let daemon = setup.start(&haproxide().args(&["logs", "-f"]).args(&[setup.ini()]));
    let no_pid: &[u8] = b"<134>1 2026-12-02T14:16:34.054988+00:00 - haproxy 15176 - [haproxykafka@0 ip=\"127.0.0.1\" sequence=\"0\"] 0 -1 -1 -1 200\n";
    let other_id: &[u8] =
        b"<134>1 2026-12-02T14:16:34.054988+00:00 - haproxy 15176 - [benthoslog haproxy_pid=\"15176\"] 0 -1\n";
    let random: &[u8] = b"\x8f\x00\xffrandom \xe9 bytes]\n";
    let valid = include_bytes!("../../../fixtures/haproxy-2.6.12-debian/log_rfc5424_sd_unixdgram.txt")
        .split(|byte| *byte == b'\n')
        .next()
        .unwrap();
    let sender = UnixDatagram::unbound().unwrap();
    for datagram in [no_pid, valid, other_id, random] {
        sender.send_to(datagram, setup.socket()).unwrap();
    }
    let dead = setup
        .tansu
        .consume(DLQ, 3, Duration::from_secs(1), Duration::from_secs(30));
    let expected = [
        (no_pid, "the required parameter server_pid is missing"),
        (
            other_id,
            "no structured-data element haproxykafka@0 (it has benthoslog)",
        ),
    ];
    assert_eq!(dead.len(), 3, "{dead:?}\n{}", setup.log());
    for (record, (datagram, reason)) in dead.iter().zip(expected) {
        assert_eq!(record.value, datagram);
        assert_eq!(record.header("error").as_deref(), Some(reason));
        assert_eq!(record.header("hostname").as_deref(), Some(HOSTNAME));
    }
    let Record { value, .. } = &dead[2];
    assert_eq!(value, random);
    assert!(
        dead[2]
            .header("error")
            .unwrap()
            .starts_with("not a syslog line: at byte 0: "),
        "{:?}",
        dead[2].header("error")
    );
    let valid_records = setup
        .tansu
        .consume(TOPIC, 1, Duration::from_millis(500), Duration::from_secs(30));
    assert_eq!(valid_records.len(), 1);
    assert_eq!(setup.metric("haproxykafka_rejected_messages_total"), 3.0);
    setup.wait_metric("haproxykafka_dlq_messages_total", 3.0);
    setup.wait_metric("haproxykafka_valid_messages_total", 1.0);
    let (status, _) = terminate(daemon);
    assert!(status.success(), "{status}\n{}", setup.log());
}

#[test]
fn haproxykafka_reads_its_yaml_file() {
    let setup = Setup::new();
    let yaml = setup.dir.path().join("config.yaml");
    std::fs::write(
        &yaml,
        format!(
            "workers: 1\nmessage_buffer: 1024.0\nsdid: haproxykafka@0\nhostname: {HOSTNAME}\n\
             socket:\n  path: {}\n  mode: '0622'\n  batch_size: 1024\n  batch_deadline: 20ms\n\
             logparser:\n  batch_size: 1024\n  batch_deadline: 100ms\n\
             kafka:\n  topic: {TOPIC}\n  dlq_topic: {DLQ}\n  flush_timeout: 1000\n  batch_size: 1024\n  batch_deadline: 100ms\n\
             \x20 rdkafka:\n    bootstrap.servers: {}\n    acks: all\n    compression.codec: zstd\n\
             monitoring:\n  enable_pprof: true\n  enable_prometheus: true\n  server_bind: 127.0.0.1:{}\n  prometheus_prefix: haproxykafka_\n\
             \x20 prometheus_parsing_buckets: [1.0e-05, 0.0001]\n  prometheus_processing_buckets: [1.0e-05, 0.0001]\n\
             transform_rules:\n  haproxy_format: 02/Jan/2006:15:04:05.000\n  date_format: 2006-01-02T15:04:05Z\n  date_tz: UTC\n\
             buffer:\n  dir: {}\n",
            setup.socket().display(),
            setup.tansu.address(),
            setup.metrics_port,
            setup.buffer_dir().display()
        ),
    )
    .unwrap();
    let checked = haproxide()
        .args(&["check-config", "-f"])
        .args(&[&yaml])
        .expect_success();
    assert!(String::from_utf8_lossy(&checked.stdout).starts_with("configuration is valid"));
    let link = setup.dir.path().join("haproxykafka");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_haproxide"), &link).unwrap();
    let daemon = setup.start(&TestCommand::new(&link).args(&["-c"]).args(&[&yaml]));
    let mode = std::fs::metadata(setup.socket()).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o7777,
        0o622
    );
    let fixture = include_bytes!("../../../fixtures/haproxy-2.6.12-debian/log_rfc5424_sd_unixdgram.txt");
    let sender = UnixDatagram::unbound().unwrap();
    let datagrams: Vec<&[u8]> = fixture
        .split(|byte| *byte == b'\n')
        .filter(|line| !line.is_empty())
        .collect();
    for datagram in &datagrams {
        sender.send_to(datagram, setup.socket()).unwrap();
    }
    let records = setup.tansu.consume(
        TOPIC,
        datagrams.len(),
        Duration::from_millis(500),
        Duration::from_secs(30),
    );
    assert_eq!(records.len(), datagrams.len(), "{}", setup.log());
    let first: serde_json::Value = serde_json::from_slice(&records[0].value).unwrap();
    assert_eq!(first["dt"], "2026-12-02T14:16:34Z");
    assert_eq!(first["referer"], "https://example.org/a\"b\\c]d");
    assert_eq!(first["uri_host"], "en.wikipedia.org");
    assert_eq!(
        setup.metric("haproxykafka_parsing_duration_seconds_count"),
        datagrams.len() as f64
    );
    let (status, _) = terminate(daemon);
    assert!(status.success(), "{status}\n{}", setup.log());

    let bad = setup.dir.path().join("bad.yaml");
    std::fs::write(&bad, "workers: 0\nsocket:\n  mode: rw\nkafka:\n  topic: t\n").unwrap();
    let output = haproxide().args(&["check-config", "-f"]).args(&[&bad]).expect_exit(1);
    let errors = String::from_utf8_lossy(&output.stderr);
    let file = bad.display();
    for line in [
        format!("error: {file}:1: workers: [logs] workers = \"0\": must be 1 or more"),
        format!("error: {file}:3: socket.mode: [logs-socket] mode = \"rw\": expected an octal file mode like 0622"),
        "error: [logs-rdkafka]: bootstrap.servers is not set: the brokers to produce to".to_owned(),
        format!("error: {file}:5: [logs-kafka]: dlq-topic is not set"),
    ] {
        assert!(errors.lines().any(|got| got == line), "{line}\nnot in\n{errors}");
    }
}

#[test]
fn the_watchdog_is_pinged_only_while_every_stage_moves() {
    let setup = Setup::new();
    let notify = NotifySocket::bind(setup.dir.path());
    let daemon = setup.start(
        &haproxide()
            .args(&["logs", "-f"])
            .args(&[setup.ini()])
            .env("NOTIFY_SOCKET", notify.path())
            .env("WATCHDOG_USEC", "400000")
            .env("HAPROXIDE_FAILPOINT", "logs-parser-hang"),
    );
    let before = notify.receive_for(Duration::from_secs(1));
    assert_eq!(before.first().map(String::as_str), Some("READY=1"), "{before:?}");
    let pings = before.iter().filter(|state| *state == "WATCHDOG=1").count();
    assert!(pings >= 3, "a ping every 200 ms: {before:?}");
    // One datagram: the parsers take it and hang (the failpoint).
    let sender = UnixDatagram::unbound().unwrap();
    sender.send_to(b"<134>1 - - haproxy 1 - - x\n", setup.socket()).unwrap();
    // The stall shows after 5 s without a heartbeat; then no more pings.
    let during = notify.receive_for(Duration::from_secs(6));
    let after = notify.receive_for(Duration::from_secs(2));
    assert!(
        after.iter().all(|state| state != "WATCHDOG=1"),
        "pinged while stalled: {after:?}"
    );
    assert!(during.iter().any(|state| state == "WATCHDOG=1"), "{during:?}");
    assert_eq!(
        http_get(setup.metrics_port, "/healthz"),
        (503, "stalled: parser\n".to_owned())
    );
    assert_eq!(setup.metric("haproxykafka_healthy"), 0.0);
    let (status, elapsed) = terminate(daemon);
    assert!(status.success(), "{status}\n{}", setup.log());
    assert!(elapsed < FLUSH_TIMEOUT + Duration::from_secs(1), "{elapsed:?}");
    notify.expect_stopping();
    assert!(
        setup
            .log()
            .contains("stalled: parser; not telling the watchdog that all is well"),
        "{}",
        setup.log()
    );
}

#[test]
fn check_logs_says_ok_while_every_stage_moves_critical_when_one_stalls_unknown_when_gone() {
    let setup = Setup::new();
    let daemon = setup.start(
        &haproxide()
            .args(&["logs", "-f"])
            .args(&[setup.ini()])
            .env("HAPROXIDE_FAILPOINT", "logs-parser-hang"),
    );
    let check = || check_logs(&setup.ini());
    let address = format!("127.0.0.1:{}", setup.metrics_port);
    assert_eq!(
        check(),
        (format!("LOGS OK - {address}/healthz: ok | buffer=0B;0;;0"), 0)
    );
    // One datagram: the parsers take it and hang (the failpoint); 5 s on, the stall shows.
    let sender = UnixDatagram::unbound().unwrap();
    sender.send_to(b"<134>1 - - haproxy 1 - - x\n", setup.socket()).unwrap();
    let critical = (format!("LOGS CRITICAL - {address}/healthz: stalled: parser"), 2);
    wait_for("the stall seen by the check", Duration::from_secs(10), || {
        check() == critical
    });
    let (status, _) = terminate(daemon);
    assert!(status.success(), "{status}\n{}", setup.log());
    let (line, code) = check();
    assert_eq!(code, 3, "{line}");
    assert!(
        line.starts_with(&format!("LOGS UNKNOWN - no answer from {address}: ")),
        "{line}"
    );
}

/// `haproxide check logs -f CONFIG`: its status line and exit code.
fn check_logs(config: &Path) -> (String, i32) {
    let output = haproxide().args(&["check", "logs", "-f"]).args(&[config]).output();
    (
        String::from_utf8_lossy(&output.stdout).trim_end().to_owned(),
        output.status.code().unwrap(),
    )
}

/// The first fixture datagram with `sequence` set to `number`: lines that
/// can be told apart in the topic.
fn numbered_datagram(number: u64) -> Vec<u8> {
    let fixture = include_bytes!("../../../fixtures/haproxy-2.6.12-debian/log_rfc5424_sd_unixdgram.txt");
    let first = fixture.split(|byte| *byte == b'\n').next().unwrap();
    std::str::from_utf8(first)
        .unwrap()
        .replacen("sequence=\"0\"", &format!("sequence=\"{number}\""), 1)
        .into_bytes()
}

/// Sends numbered datagrams from `first` at `rate` per second for `span`
/// (bounded: it stops by itself); returns the next unused number. A send
/// that fails (the socket gone at a stop) ends it.
fn send_at_rate(socket: &Path, rate: u64, span: Duration, first: u64) -> u64 {
    let sender = UnixDatagram::unbound().unwrap();
    let started = Instant::now();
    let mut next = first;
    while started.elapsed() < span {
        let due = first + (started.elapsed().as_secs_f64() * rate as f64) as u64;
        while next < due {
            if sender.send_to(&numbered_datagram(next), socket).is_err() {
                return next;
            }
            next += 1;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    next
}

/// How many times each sequence number of `0..count` is in `records`.
fn tally(records: &[Record], count: u64) -> (u64, u64, u64) {
    let mut seen = vec![0u32; usize::try_from(count).unwrap()];
    for record in records {
        let message: serde_json::Value = serde_json::from_slice(&record.value).unwrap();
        let number = message["sequence"].as_u64().unwrap();
        seen[usize::try_from(number).unwrap()] += 1;
    }
    let missing = seen.iter().filter(|times| **times == 0).count() as u64;
    let twice = seen.iter().map(|times| u64::from(times.saturating_sub(1))).sum();
    (count - missing, missing, twice)
}

/// The settings the outage tests add: a small librdkafka queue, so that
/// the disk buffer is reached within seconds, and `buffer` for the
/// `[logs-buffer]` lines after `dir`.
fn small_queue(setup: &Setup, buffer: &str) -> PathBuf {
    let path = setup.ini();
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace(
            "[logs-rdkafka]\n",
            "[logs-rdkafka]\nqueue.buffering.max.messages = 20000\nmessage.timeout.ms = 5000\nreconnect.backoff.max.ms = 500\n",
        )
        .replace("segment-size = 1M\n", buffer);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn a_kafka_outage_of_30_seconds_at_10000_lines_a_second_loses_nothing() {
    const RATE: u64 = 10_000;
    let mut setup = Setup::new();
    let config = small_queue(&setup, "segment-size = 1M\n");
    let daemon = setup.start(&haproxide().args(&["logs", "-f"]).args(&[&config]));
    let socket = setup.socket();
    let before = send_at_rate(&socket, RATE, Duration::from_secs(5), 0);
    setup.tansu.stop();
    let during = send_at_rate(&socket, RATE, Duration::from_secs(30), before);
    assert!(setup.metric("haproxykafka_buffer_bytes") > 0.0, "{}", setup.log());
    // The check warns while Kafka takes nothing.
    let (line, code) = check_logs(&config);
    assert_eq!(code, 1, "{line}");
    assert!(
        line.contains(": ok, but Kafka is not taking messages (its latest delivery failed)"),
        "{line}"
    );
    setup.tansu.restart();
    let sent = send_at_rate(&socket, RATE, Duration::from_secs(5), during);
    let records = setup.tansu.consume(
        TOPIC,
        usize::try_from(sent).unwrap(),
        Duration::from_secs(2),
        Duration::from_secs(180),
    );
    let (arrived, missing, twice) = tally(&records, sent);
    let buffered = setup.metric("haproxykafka_buffered_messages_total");
    let replayed = setup.metric("haproxykafka_replayed_messages_total");
    eprintln!(
        "outage: {sent} lines sent ({} while the broker was down), {arrived} arrived, {missing} missing, \
         {twice} twice; {buffered} went through the disk buffer, {replayed} replayed",
        during - before
    );
    assert_eq!(missing, 0, "{}", setup.log());
    assert_eq!(setup.metric("haproxykafka_received_datagrams_total"), sent as f64);
    assert!(buffered > 0.0 && replayed >= buffered, "{buffered} {replayed}");
    assert_eq!(setup.metric("haproxykafka_buffer_bytes"), 0.0);
    assert_eq!(check_logs(&config).0.split(" - ").next(), Some("LOGS OK"));
    assert_eq!(
        setup.metric("haproxykafka_saturation_errors{channel=\"disk-buffer\"}"),
        0.0
    );
    let log = setup.log();
    assert!(log.contains("keeping them in the disk buffer"), "{log}");
    assert!(log.contains("replayed "), "{log}");
    // SIGINT (a Ctrl-C) stops it as SIGTERM does.
    let (status, elapsed) = stop_with(daemon, Signal::SIGINT);
    assert!(status.success(), "{status}\n{}", setup.log());
    assert!(elapsed < FLUSH_TIMEOUT + Duration::from_secs(1), "{elapsed:?}");
    assert!(setup.log().contains("SIGINT: no more reading"), "{}", setup.log());
}

#[test]
fn with_kafka_down_and_the_disk_buffer_full_drops_are_counted_and_the_daemon_stays_up() {
    let mut setup = Setup::new();
    setup.tansu.stop();
    let config = small_queue(&setup, "max-size = 256K\nsegment-size = 64K\n");
    let daemon = setup.start(&haproxide().args(&["logs", "-f"]).args(&[&config]));
    let sent = send_at_rate(&setup.socket(), 20_000, Duration::from_secs(2), 0);
    wait_for("every line counted", Duration::from_secs(20), || {
        setup.metric("haproxykafka_buffered_messages_total")
            + setup.metric("haproxykafka_saturation_errors{channel=\"disk-buffer\"}")
            + setup.metric("haproxykafka_kafka_queued_messages")
            == sent as f64
    });
    let dropped = setup.metric("haproxykafka_saturation_errors{channel=\"disk-buffer\"}");
    assert!(dropped > 0.0);
    assert!(setup.metric("haproxykafka_buffer_bytes") <= 256.0 * 1024.0);
    assert_eq!(http_get(setup.metrics_port, "/healthz"), (200, "ok\n".to_owned()));
    // SIGHUP stops it too (a closed terminal), with Kafka still down: what
    // librdkafka held goes to a buffer with no room, and is counted.
    let (status, elapsed) = stop_with(daemon, Signal::SIGHUP);
    assert!(status.success(), "{status}\n{}", setup.log());
    assert!(elapsed < FLUSH_TIMEOUT + Duration::from_secs(1), "{elapsed:?}");
    assert!(setup.log().contains("SIGHUP: no more reading"), "{}", setup.log());
}

#[test]
fn sigterm_under_load_exits_in_time_and_the_next_start_delivers_the_rest() {
    let mut setup = Setup::new();
    let config = small_queue(&setup, "segment-size = 1M\n");
    let daemon = setup.start(&haproxide().args(&["logs", "-f"]).args(&[&config]));
    // Kafka slow to answer: the broker paused, so that a stop finds lines
    // queued in librdkafka and on disk.
    let before = send_at_rate(&setup.socket(), 10_000, Duration::from_secs(2), 0);
    setup.tansu.stop();
    let sent = send_at_rate(&setup.socket(), 10_000, Duration::from_secs(3), before);
    let (status, elapsed) = terminate(daemon);
    assert!(status.success(), "{status}\n{}", setup.log());
    assert!(elapsed < FLUSH_TIMEOUT + Duration::from_secs(1), "{elapsed:?}");
    let stopped_log = setup.log();
    assert!(stopped_log.contains("bytes in the disk buffer"), "{stopped_log}");
    setup.tansu.restart();
    let daemon = setup.start(&haproxide().args(&["logs", "-f"]).args(&[&config]));
    let records = setup.tansu.consume(
        TOPIC,
        usize::try_from(sent).unwrap(),
        Duration::from_secs(2),
        Duration::from_secs(120),
    );
    let (arrived, missing, twice) = tally(&records, sent);
    eprintln!("stop under load: {sent} sent, {arrived} arrived, {missing} missing, {twice} twice");
    assert_eq!(
        missing,
        0,
        "before the stop:\n{stopped_log}\nafter it:\n{}",
        setup.log()
    );
    assert!(setup.log().contains("replaying them first"), "{}", setup.log());
    let (status, _) = terminate(daemon);
    assert!(status.success(), "{status}\n{}", setup.log());
}
