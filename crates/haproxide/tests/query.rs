//! `haproxide query` against real HAProxy instances, and on saved replies.

// Test helpers fail the test by panicking, like the tests themselves.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::net::UnixListener;
use std::path::Path;
use std::process::Output;

use haproxy::ShowStat;
use serde_json::Value;
use testkit::{Lab, TestCommand};

fn query(args: &[&str]) -> Output {
    TestCommand::new(env!("CARGO_BIN_EXE_haproxide"))
        .args(&["query"])
        .args(args)
        .output()
}

fn json(output: &Output) -> Vec<Value> {
    serde_json::from_slice::<Value>(&output.stdout)
        .unwrap_or_else(|error| panic!("{error}: {}", String::from_utf8_lossy(&output.stdout)))
        .as_array()
        .cloned()
        .unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Three instances; instance `i` has served `2 * (i + 1)` requests.
fn three_instances() -> Lab {
    let lab = Lab::builder().instances(3).start();
    for instance in lab.instances() {
        let count = 2 * (instance.index() + 1);
        assert_eq!(instance.http_get("fe_main", "/", count), vec![200; count]);
    }
    lab
}

fn socket_dir(lab: &Lab) -> &str {
    lab.socket_dir().to_str().unwrap()
}

#[test]
fn show_stat_json_returns_every_row_of_every_instance_tagged_by_socket() {
    let lab = three_instances();
    let output = query(&["--socket-dir", socket_dir(&lab), "--format", "json", "show stat"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stderr(&output), "");
    let rows = json(&output);
    assert_eq!(rows.len(), 12);
    for instance in lab.instances() {
        let label = format!("hap{}.sock", instance.index());
        let mine: Vec<&Value> = rows.iter().filter(|row| row["socket"] == label.as_str()).collect();
        let direct = ShowStat::parse(instance.raw_command("show stat")).unwrap();
        assert_eq!(mine.len(), direct.len(), "{label}: same rows as a direct query");
        let names: Vec<String> = mine
            .iter()
            .map(|row| format!("{}/{}", row["pxname"], row["svname"]))
            .collect();
        assert_eq!(
            names,
            [
                "\"fe_main\"/\"FRONTEND\"",
                "\"be_app\"/\"s1\"",
                "\"be_app\"/\"s2\"",
                "\"be_app\"/\"BACKEND\""
            ]
        );
        let served = 2 * (instance.index() as u64 + 1);
        assert_eq!(mine[0]["stot"], served, "{label}");
        assert_eq!(mine[3]["stot"], served, "{label}");
        assert_eq!(
            mine[1]["stot"].as_u64().unwrap() + mine[2]["stot"].as_u64().unwrap(),
            served
        );
        assert_eq!(mine[0]["status"], "OPEN");
        assert_eq!(mine[1]["status"], "no check");
        assert_eq!(mine[0]["qcur"], Value::Null, "empty cells are null");
        assert_eq!(mine[0]["type"], 0);
    }
}

#[test]
fn show_info_errors_and_sess_answer_from_every_instance() {
    let lab = three_instances();
    let dir = socket_dir(&lab);
    let info = query(&["--socket-dir", dir, "--format", "json", "show info"]);
    assert!(info.status.success(), "{}", stderr(&info));
    let objects = json(&info);
    assert_eq!(objects.len(), 3);
    for (object, instance) in objects.iter().zip(lab.instances()) {
        assert_eq!(object["socket"], format!("hap{}.sock", instance.index()).as_str());
        assert_eq!(object["Name"], "HAProxy");
        assert_eq!(object["Pid"], u64::from(instance.pid().unwrap()));
        let after = haproxy::ShowInfo::parse(&instance.raw_command("show info")).unwrap();
        let seen = object["CumReq"].as_i64().unwrap();
        assert_eq!(
            after.int("CumReq"),
            Some(seen + 1),
            "a direct query right after counts one more request"
        );
    }

    let errors = query(&["--socket-dir", dir, "show", "errors"]);
    assert!(errors.status.success(), "{}", stderr(&errors));
    let text = stdout(&errors);
    for index in 0..3 {
        let prefix = format!("hap{index}.sock: Total events captured on ");
        assert_eq!(
            text.lines().filter(|line| line.starts_with(&prefix)).count(),
            1,
            "{text}"
        );
    }
    assert!(text.lines().all(|line| line.starts_with("hap")), "{text}");

    let sessions = query(&["--socket-dir", dir, "show sess"]);
    assert!(sessions.status.success(), "{}", stderr(&sessions));
    let text = stdout(&sessions);
    for index in 0..3 {
        let own_session = format!("hap{index}.sock: 0x");
        assert!(
            text.lines()
                .any(|line| line.starts_with(&own_session) && line.contains("proto=unix_stream")),
            "{text}"
        );
    }

    let table = query(&[
        "-s",
        lab.instance(0).stats_socket().to_str().unwrap(),
        "--format",
        "table",
        "show info",
    ]);
    let text = stdout(&table);
    let mut lines = text.lines();
    // The first column is as wide as the longest field name of this version, plus two.
    let raw = lab.instance(0).raw_command("show info");
    let width = 2 + raw
        .lines()
        .filter_map(|line| line.split_once(':'))
        .map(|(name, _)| name.len())
        .max()
        .unwrap();
    assert_eq!(lines.next(), Some(format!("{:<width$}value", "field").as_str()));
    assert_eq!(lines.next(), Some(format!("{:<width$}HAProxy", "Name").as_str()));
}

#[test]
fn a_stale_socket_fails_alone_while_the_others_answer() {
    let lab = three_instances();
    drop(UnixListener::bind(lab.socket_dir().join("hap9-stale.sock")).unwrap());
    let output = query(&["--socket-dir", socket_dir(&lab), "--format", "json", "show stat"]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(json(&output).len(), 12);
    assert_eq!(
        stderr(&output),
        "haproxide query: hap9-stale.sock: connection refused: nothing is listening (stale socket file or stopped HAProxy?)\n"
    );
}

#[test]
fn master_cli_prefixes_reach_the_worker() {
    let lab = Lab::builder().master_cli().start();
    let instance = lab.instance(0);
    let master = instance.master_socket().unwrap().to_str().unwrap();
    let output = query(&["-s", master, "--format", "json", "@1 show info"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let objects = json(&output);
    let worker_pid = objects[0]["Pid"].as_u64().unwrap();
    assert_ne!(
        worker_pid,
        u64::from(instance.pid().unwrap()),
        "answered by the worker, not the master"
    );

    let stat = query(&["-s", master, "--format", "csv", "@1", "show", "stat"]);
    assert!(stat.status.success(), "{}", stderr(&stat));
    assert!(stdout(&stat).starts_with("socket,pxname,svname,qcur,qmax,scur,"));
    assert_eq!(stdout(&stat).lines().count(), 5);

    let unprefixed = query(&["-s", master, "show stat"]);
    assert_eq!(unprefixed.status.code(), Some(1));
    let refusal = stderr(&unprefixed);
    assert!(
        refusal.contains("HAProxy refused the command:\n  Unknown command"),
        "{refusal}"
    );
    assert!(
        refusal.contains("\n    show proc "),
        "the master's whole list of commands: {refusal}"
    );
    assert!(
        refusal.ends_with("(this is a master socket: `@1 show stat` sends it to worker 1)\n"),
        "{refusal}"
    );

    let unknown = query(&["-s", master, "@7 show info"]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(
        stderr(&unknown).contains("HAProxy refused the command: Can't find the target PID matching the prefix '@7'")
    );
}

#[test]
fn unknown_commands_and_missing_sockets_exit_1_with_one_message_each() {
    let lab = Lab::builder().start();
    let socket = lab.instance(0).stats_socket().to_str().unwrap().to_owned();
    let output = query(&["-s", &socket, "show nonsense"]);
    assert_eq!(output.status.code(), Some(1));
    // HAProxy's whole refusal, word for word (its wording differs between
    // versions): its first line alone says little.
    let refusal = stderr(&output);
    let raw = lab.instance(0).raw_command("show nonsense");
    assert!(raw.starts_with("Unknown command"), "{raw}");
    let mut expected = "haproxide query: hap0.sock: HAProxy refused the command:\n".to_owned();
    for line in raw.lines().filter(|line| !line.trim().is_empty()) {
        expected.push_str("  ");
        expected.push_str(line);
        expected.push('\n');
    }
    assert_eq!(refusal, expected);
    assert!(!refusal.contains("master socket"), "{refusal}");
    let missing = lab.dir().join("nope.sock");
    let output = query(&["-s", &socket, "-s", missing.to_str().unwrap(), "show info"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stdout(&output).starts_with("hap0.sock: Name: HAProxy\n"));
    assert_eq!(stderr(&output).lines().count(), 1);
    assert!(stderr(&output).starts_with("haproxide query: nope.sock: no such socket file"));
}

#[test]
fn a_socket_directory_entry_passed_over_is_a_warning_and_a_socket_given_twice_is_asked_once() {
    let lab = Lab::builder().start();
    std::os::unix::fs::symlink(lab.dir().join("gone.sock"), lab.socket_dir().join("moved.sock")).unwrap();
    let output = query(&["--socket-dir", socket_dir(&lab), "show info"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(stdout(&output).starts_with("Name: HAProxy\n"));
    assert_eq!(
        stderr(&output),
        format!(
            "haproxide query: warning: {}: skipped: dangling symlink: its target does not exist\n",
            lab.socket_dir().join("moved.sock").display()
        )
    );
    let socket = lab.instance(0).stats_socket().to_str().unwrap().to_owned();
    let twice = query(&["-s", &socket, "-s", &socket, "--format", "json", "show info"]);
    assert!(twice.status.success(), "{}", stderr(&twice));
    assert_eq!(json(&twice).len(), 1, "one answer for one socket");
}

#[test]
fn columns_are_an_error_where_they_cannot_apply() {
    let info = fixture("haproxy-2.6.12-debian/show_info.out");
    let stat = fixture("haproxy-2.6.12-debian/show_stat.out");
    for (args, message) in [
        (
            vec!["--input", &stat, "--columns", "pxname", "show stat"],
            "--columns chooses `show stat` columns for --format table, json or csv; raw output is the reply as sent",
        ),
        (
            vec!["--input", &info, "--format", "table", "--columns", "Name", "show info"],
            "--columns chooses `show stat` columns; the reply to `show info` has none",
        ),
    ] {
        let output = query(&args);
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        assert_eq!(stderr(&output), format!("haproxide: {message}\n"), "{args:?}");
    }
    let chosen = query(&[
        "--input",
        &stat,
        "--format",
        "csv",
        "--columns",
        "pxname,svname",
        "show stat",
    ]);
    assert!(
        stdout(&chosen).starts_with("socket,pxname,svname\n"),
        "{}",
        stdout(&chosen)
    );
}

fn fixture(path: &str) -> String {
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures").join(path);
    full.to_str().unwrap().to_owned()
}

#[test]
fn saved_show_stat_files_render_as_json_table_and_csv() {
    for (path, rows) in [
        ("haproxy-2.6.12-debian/show_stat.out", 17),
        ("haproxy-2.6.12-debian/show_stat_desc.out", 17),
        ("haproxy-2.6.12-debian/show_stat_1_4_1.out", 11),
        ("haproxy-2.6.12-debian/http_stats_csv.out", 17),
        ("haproxystats/haproxy-2.6-raw/admin1.sock_stat", 9),
        ("haproxystats/haproxy-2.6-raw/admin2.sock_stat", 9),
        ("haproxystats/synthetic-1700000000/admin1.sock_stat", 9),
        ("haproxystats/synthetic-1700000000/admin2.sock_stat", 9),
        ("peers/haproxy-rs/2_5_5_show_stat.csv", 12),
        ("peers/telegraf/sample_output.csv", 13),
        ("peers/datadog-integrations-core/mock_data", 17),
        ("peers/datadog-integrations-core/mock_data_evil", 13),
        ("peers/datadog-integrations-core/statuses_mock", 9),
        ("peers/haproxy_exporter/haproxy.csv", 2735),
    ] {
        let file = fixture(path);
        let output = query(&["--input", &file, "--format", "json", "show stat"]);
        assert!(output.status.success(), "{path}: {}", stderr(&output));
        let objects = json(&output);
        assert_eq!(objects.len(), rows, "{path}");
        let label = Path::new(path).file_name().unwrap().to_str().unwrap();
        assert!(
            objects
                .iter()
                .all(|row| row["socket"] == label && row["pxname"].is_string()),
            "{path}"
        );

        let table = query(&["--input", &file, "--format", "table", "show stat"]);
        assert!(table.status.success(), "{path}");
        assert_eq!(
            stdout(&table).lines().count(),
            rows + 1,
            "{path}: header plus one line per row"
        );
        let csv = query(&["--input", &file, "--format", "csv", "show stat"]);
        assert!(csv.status.success(), "{path}");
        assert!(stdout(&csv).starts_with("socket,pxname,svname,"), "{path}");
    }
    let evil = query(&[
        "--input",
        &fixture("peers/datadog-integrations-core/mock_data_evil"),
        "--format",
        "json",
        "show stat",
    ]);
    assert_eq!(json(&evil)[8]["hrsp_2xx"], "Now, this is just plain\nEVIL");
}

#[test]
fn saved_show_info_and_servers_state_files() {
    let info = query(&[
        "--input",
        &fixture("haproxystats/synthetic-1700000000/admin2.sock_info"),
        "--format",
        "json",
        "show info",
    ]);
    assert!(info.status.success(), "{}", stderr(&info));
    let objects = json(&info);
    assert_eq!(objects[0]["Process_num"], 2);
    assert_eq!(objects[0]["Version"], "2.6.12-1+deb12u4");

    let state = query(&[
        "--input",
        &fixture("haproxy-2.6.12-debian/show_servers_state.out"),
        "--format",
        "json",
        "show servers state",
    ]);
    assert!(state.status.success(), "{}", stderr(&state));
    let rows = json(&state);
    assert_eq!(rows.len(), 11);
    assert_eq!(rows[0]["srv_name"], "s1");
    assert_eq!(rows[0]["srv_uweight"], 100);
    assert_eq!(rows[0]["srv_fqdn"], Value::Null);

    let not_stat = query(&[
        "--input",
        &fixture("haproxy-2.6.12-debian/show_info.out"),
        "--format",
        "json",
        "show stat",
    ]);
    assert_eq!(not_stat.status.code(), Some(1));
    assert_eq!(
        stderr(&not_stat),
        "haproxide query: show_info.out: reply is not `show stat` output: line 1: not `show stat` CSV (first line is \"Name: HAProxy\")\n"
    );
}
