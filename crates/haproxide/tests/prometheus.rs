//! The `prometheus` sink end to end: real HAProxy instances, `pull`,
//! `process` serving the aggregated round, a real Prometheus 2.42 scraping
//! it and answering PromQL, and `promtool check metrics` on what is served.

// Test helpers fail the test by panicking, like the tests themselves.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;
use std::process::Child;
use std::time::Duration;

use haproxy::ShowStat;
use testkit::{
    Lab, Prometheus, Workspace, copy_dir, free_port, loopback_request, promtool_check_metrics, terminate, wait_for,
};

/// A spool and `process` serving it on a port of its own.
struct Served {
    space: Workspace,
    port: u16,
}

impl Served {
    /// With more `[pull]` keys `pull`.
    fn new(pull: &str) -> Served {
        let port = free_port();
        let space = Workspace::new("haproxide.conf", |dir| {
            let root = dir.display();
            format!(
                "[paths]\nbase-dir = {root}\n[pull]\ndst-dir = {root}/incoming\ntmp-dst-dir = {root}/incoming.tmp\n\
                 min-free-space = 1M\ntimeout = 0.5\n{pull}\n[process]\nsrc-dir = {root}/incoming\n\
                 [graphite]\nenabled = false\n[prometheus]\nenabled = true\nbind = 127.0.0.1:{port}\n"
            )
        });
        fs::create_dir_all(space.path().join("incoming")).unwrap();
        Served { space, port }
    }

    fn command(&self, args: &[&str]) -> testkit::TestCommand {
        self.space.command(env!("CARGO_BIN_EXE_haproxide"), args)
    }

    fn process(&self) -> Child {
        self.command(&["process"]).spawn(&self.space.path().join("process.log"))
    }

    /// `GET /metrics` with more request headers `headers`.
    fn scrape(&self, headers: &str) -> String {
        let (status, body) = loopback_request(self.port, "GET", "/metrics", headers, "").unwrap();
        assert_eq!(status, 200, "{body}");
        body
    }

    /// Waits until the served exposition has `needle`.
    fn wait_for_series(&self, needle: &str) -> String {
        wait_for(&format!("{needle} served"), Duration::from_secs(20), || {
            loopback_request(self.port, "GET", "/metrics", "", "").is_ok_and(|(_, body)| body.contains(needle))
        });
        self.scrape("")
    }
}

/// The value of the one sample `expr` gives, once Prometheus has it.
fn queried(prometheus: &Prometheus, expr: &str) -> f64 {
    wait_for(&format!("{expr} in Prometheus"), Duration::from_secs(30), || {
        prometheus.query(expr).len() == 1
    });
    let samples = prometheus.query(expr);
    assert_eq!(samples.len(), 1, "{expr}: {samples:?}");
    samples[0].value
}

#[test]
fn prometheus_scrapes_the_sums_of_two_instances_as_promex_names_them() {
    let lab = Lab::builder().instances(2).start();
    assert_eq!(lab.instance(0).http_get("fe_main", "/", 7), vec![200; 7]);
    assert_eq!(lab.instance(1).http_get("fe_main", "/", 5), vec![200; 5]);
    let served = Served::new(&format!("socket-dir = {}", lab.socket_dir().display()));
    served.command(&["pull", "--once"]).expect_success();
    // Counters that move only with traffic, read directly at the same moment.
    let direct: Vec<ShowStat> = lab
        .instances()
        .iter()
        .map(|instance| ShowStat::parse(instance.raw_command("show stat")).unwrap())
        .collect();
    let sum = |pxname: &str, svname: &str, column: &str| common::stat_sum(&direct, pxname, svname, column);
    let process = served.process();
    let text = served.wait_for_series("haproxy_frontend_http_requests_total{proxy=\"fe_main\"}");
    let (clean, said) = promtool_check_metrics(&text);
    assert!(clean, "promtool check metrics: {said}");
    assert!(
        text.contains("# TYPE haproxy_frontend_http_requests_total counter\n"),
        "{text}"
    );
    assert!(!text.contains("host=\""), "no host label on a load balancer of its own");
    let openmetrics = served.scrape("Accept: application/openmetrics-text; version=1.0.0\r\n");
    assert!(openmetrics.ends_with("# EOF\n"));
    assert!(openmetrics.contains("# TYPE haproxy_frontend_http_requests counter\n"));
    assert!(openmetrics.contains("\nhaproxy_frontend_http_requests_total{proxy=\"fe_main\"} "));

    let prometheus = Prometheus::start(&[format!("127.0.0.1:{}", served.port)], "/metrics");
    wait_for("the target up", Duration::from_secs(30), || prometheus.targets_up());
    for (expr, expected) in [
        (
            "haproxy_frontend_http_requests_total{proxy=\"fe_main\"}",
            sum("fe_main", "FRONTEND", "req_tot"),
        ),
        (
            "haproxy_frontend_sessions_total{proxy=\"fe_main\"}",
            sum("fe_main", "FRONTEND", "stot"),
        ),
        (
            "haproxy_backend_bytes_out_total{proxy=\"be_app\"}",
            sum("be_app", "BACKEND", "bout"),
        ),
        (
            "haproxy_server_sessions_total{proxy=\"be_app\",server=\"s1\"}",
            sum("be_app", "s1", "stot"),
        ),
        (
            "haproxy_server_http_responses_total{proxy=\"be_app\",server=\"s2\",code=\"2xx\"}",
            sum("be_app", "s2", "hrsp_2xx"),
        ),
    ] {
        assert_eq!(queried(&prometheus, expr), expected, "{expr}");
        eprintln!("{expr} = {expected}: the sum of both instances' show stat");
    }
    assert_eq!(sum("fe_main", "FRONTEND", "req_tot"), 12.0);
    assert_eq!(
        queried(&prometheus, "haproxide_prometheus_rounds_total"),
        1.0,
        "the one round pulled"
    );
    let (status, _) = terminate(process);
    assert!(status.success());
}

#[test]
fn names_with_quotes_backslashes_and_utf8_stay_valid_exposition() {
    let served = Served::new("");
    let round = served.space.path().join("staging");
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/haproxystats/synthetic-1700000000"),
        &round,
    );
    // HAProxy refuses such names in its configuration, but a round is
    // input like any other: a proxy and a server named with every
    // character the exposition has to escape.
    for file in ["admin1.sock_stat", "admin2.sock_stat"] {
        let path = round.join(file);
        let text = fs::read_to_string(&path)
            .unwrap()
            .replace("fe_http,", "fe \"quoted\" \\ é,")
            .replace(",srv1,", ",srv\\1\",");
        fs::write(&path, text).unwrap();
    }
    fs::rename(&round, served.space.path().join("incoming").join("1700000000")).unwrap();
    let process = served.process();
    let text = served.wait_for_series("haproxy_frontend_bytes_in_total{proxy=\"fe \\\"quoted\\\" \\\\ é\"}");
    assert!(
        text.contains("haproxy_server_sessions_total{proxy=\"be_app\",server=\"srv\\\\1\\\"\"} "),
        "{text}"
    );
    let (clean, said) = promtool_check_metrics(&text);
    assert!(clean, "promtool check metrics: {said}");
    let prometheus = Prometheus::start(&[format!("127.0.0.1:{}", served.port)], "/metrics");
    wait_for("the target up", Duration::from_secs(30), || prometheus.targets_up());
    let stored = queried(
        &prometheus,
        "haproxy_frontend_sessions_total{proxy=\"fe \\\"quoted\\\" \\\\ é\"}",
    );
    assert_eq!(
        stored, 40.0,
        "the synthetic round's fe_http stot, summed over its two processes"
    );
    let server = prometheus.query("haproxy_server_sessions_total{server=\"srv\\\\1\\\"\"}");
    assert_eq!(server.len(), 2, "srv1 of be_app and of be.dotted: {server:?}");
    assert!(server.iter().all(|sample| sample.labels["server"] == "srv\\1\""));
    let (status, _) = terminate(process);
    assert!(status.success());
}

/// Family → (type, label names) of a text exposition.
fn families(text: &str) -> BTreeMap<String, (String, BTreeSet<String>)> {
    let mut families: BTreeMap<String, (String, BTreeSet<String>)> = BTreeMap::new();
    for line in text.lines() {
        if let Some(typed) = line.strip_prefix("# TYPE ") {
            let (name, kind) = typed.split_once(' ').unwrap();
            families.entry(name.to_owned()).or_default().0 = kind.to_owned();
        } else if !line.starts_with('#') && !line.is_empty() {
            let name_end = line.find(['{', ' ']).unwrap();
            let family = families.entry(line[..name_end].to_owned()).or_default();
            family.1.extend(label_names(&line[name_end..]));
        }
    }
    families
}

/// The label names of a sample's `{a="…",b="…"} value` part.
fn label_names(rest: &str) -> Vec<String> {
    let Some(mut labels) = rest.strip_prefix('{') else {
        return Vec::new();
    };
    let mut names = Vec::new();
    while let Some((name, after)) = labels.split_once("=\"") {
        names.push(name.trim_start_matches(',').to_owned());
        // Skip the value: up to the first quote not escaped.
        let mut escaped = false;
        let end = after
            .char_indices()
            .find(|(_, char)| {
                let closing = *char == '"' && !escaped;
                escaped = *char == '\\' && !escaped;
                closing
            })
            .map(|(index, _)| index)
            .unwrap();
        labels = &after[end + 1..];
        if labels.starts_with('}') {
            break;
        }
    }
    names
}

#[test]
fn every_promex_family_of_frontends_backends_and_servers_is_served_the_same() {
    let lab = Lab::builder().promex().health_checks().start();
    assert_eq!(lab.instance(0).http_get("fe_main", "/", 5), vec![200; 5]);
    wait_for("both servers checked", Duration::from_secs(10), || {
        lab.instance(0).raw_command("show stat").matches("L4OK").count() >= 2
    });
    let served = Served::new(&format!("socket-dir = {}", lab.socket_dir().display()));
    served.command(&["pull", "--once"]).expect_success();
    let process = served.process();
    let ours = families(&served.wait_for_series("haproxy_server_check_status{"));
    let port = lab.instance(0).frontend_port(testkit::PROMEX_FRONTEND);
    let (status, promex) = loopback_request(port, "GET", "/metrics", "", "").unwrap();
    assert_eq!(status, 200);
    let promex = families(&promex);
    let mut compared = 0;
    let mut differences = Vec::new();
    for (name, (kind, labels)) in &promex {
        let scope = ["haproxy_frontend_", "haproxy_backend_", "haproxy_server_"]
            .iter()
            .any(|prefix| name.starts_with(prefix));
        if !scope {
            continue;
        }
        compared += 1;
        match ours.get(name) {
            Some((our_kind, our_labels)) if our_kind == kind && our_labels == labels => {}
            Some(other) => differences.push(format!("{name}: PROMEX {kind} {labels:?}, haproxide {other:?}")),
            None => differences.push(format!("{name}: not served")),
        }
    }
    eprintln!(
        "{compared} frontend, backend and server families of PROMEX compared; {} differ: {differences:#?}",
        differences.len()
    );
    assert_eq!(differences, Vec::<String>::new());
    let process_missing: Vec<&String> = promex
        .keys()
        .filter(|name| name.starts_with("haproxy_process_") && !ours.contains_key(*name))
        .collect();
    eprintln!("haproxy_process_ families not served: {process_missing:?}");
    // What README's differences table says: no value in `show info` (zlib,
    // spliced bytes, the version as a label), meaningless over several
    // processes (relative_process_id), or named correctly (failed_resolutions).
    assert_eq!(
        process_missing,
        [
            "haproxy_process_build_info",
            "haproxy_process_current_zlib_memory",
            "haproxy_process_failed_resolutions",
            "haproxy_process_max_zlib_memory",
            "haproxy_process_relative_process_id",
            "haproxy_process_spliced_bytes_out_total",
        ]
    );
    assert_eq!(ours["haproxy_process_failed_resolutions_total"].0, "counter");
    let (status, _) = terminate(process);
    assert!(status.success());
}

#[test]
fn with_host_labels_each_load_balancer_s_latest_round_is_served_apart() {
    let served = Served::new("");
    served.space.append_config("host-label = true\n");
    // Two load balancers, the second with two rounds: its later one is served.
    for (name, host) in [("1700000000", "lb1"), ("1700000010", "lb2"), ("1700000020", "lb2")] {
        let round = served.space.path().join("staging");
        copy_dir(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/haproxystats/synthetic-1700000000"),
            &round,
        );
        fs::write(
            round.join("manifest.json"),
            format!(r#"{{"round": "{name}", "host": "{host}", "failed": []}}"#),
        )
        .unwrap();
        fs::rename(&round, served.space.path().join("incoming").join(name)).unwrap();
    }
    let process = served.process();
    let text = served.wait_for_series("haproxide_prometheus_rounds_total 3\n");
    let (clean, said) = promtool_check_metrics(&text);
    assert!(clean, "promtool check metrics: {said}");
    assert!(text.contains("haproxy_frontend_sessions_total{proxy=\"fe_http\",host=\"lb1\"} 40\n"));
    assert!(text.contains("haproxy_frontend_sessions_total{proxy=\"fe_http\",host=\"lb2\"} 40\n"));
    assert!(text.contains("haproxide_prometheus_round_timestamp_seconds{host=\"lb1\"} 1700000000\n"));
    assert!(text.contains("haproxide_prometheus_round_timestamp_seconds{host=\"lb2\"} 1700000020\n"));
    assert_eq!(
        text.matches("# TYPE haproxy_frontend_sessions_total counter\n").count(),
        1,
        "one header a family, every host's lines under it"
    );
    let (status, _) = terminate(process);
    assert!(status.success());
}
