//! Every saved `show stat`, `show info`, `show servers state` and `show proc` reply in
//! `fixtures/` parses, with exact values checked in each (the expected values
//! were read independently with Python's `csv` module and `grep`).

// Test helpers fail the test by panicking, like the tests themselves.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use haproxy::{ObjectType, ServersState, ShowInfo, ShowProc, ShowStat};

fn fixture(path: &str) -> Vec<u8> {
    let full = format!("{}/../../fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&full).unwrap_or_else(|error| panic!("{full}: {error}"))
}

fn stat(path: &str) -> ShowStat {
    ShowStat::from_bytes(fixture(path)).unwrap_or_else(|error| panic!("{path}: {error}"))
}

/// Checks column count, row count and `(row, column, text)` cells.
fn check_stat(path: &str, columns: usize, rows: usize, cells: &[(usize, &str, &str)]) -> ShowStat {
    let parsed = stat(path);
    let real_columns = parsed.columns().iter().filter(|name| *name != "-").count();
    assert_eq!(real_columns, columns, "{path}: columns");
    assert_eq!(parsed.len(), rows, "{path}: rows");
    let all: Vec<_> = parsed.rows().collect();
    for (row, column, expected) in cells {
        assert_eq!(
            all[*row].get(column).as_deref(),
            Some(*expected),
            "{path}: row {row} column {column}"
        );
    }
    assert_eq!(parsed.truncated_line(), None, "{path}");
    parsed
}

#[test]
fn haproxy_2_6_show_stat_with_module_columns() {
    // The HTTP `;csv` page hides server addresses unless `stats show-legends` is set.
    for (path, s1_addr) in [
        ("haproxy-2.6.12-debian/show_stat.out", "127.0.0.1:31081"),
        ("haproxy-2.6.12-debian/show_stat_desc.out", "127.0.0.1:31081"),
        ("haproxy-2.6.12-debian/http_stats_csv.out", ""),
    ] {
        let parsed = check_stat(
            path,
            127,
            17,
            &[
                (0, "pxname", "fe_main"),
                (0, "stot", "81"),
                (0, "status", "OPEN"),
                (16, "pxname", "be_chash"),
            ],
        );
        let rows: Vec<_> = parsed.rows().collect();
        assert_eq!(parsed.columns()[103], "-");
        assert_eq!(rows[0].int("h1_bytes_out"), Ok(Some(29654)), "{path}");
        let servers: Vec<_> = rows
            .iter()
            .filter(|row| row.object_type() == ObjectType::Server)
            .collect();
        assert_eq!(servers.len(), 11, "{path}");
        assert_eq!(servers[0].svname(), "s1");
        assert_eq!(servers[0].get("addr").as_deref(), Some(s1_addr), "{path}");
        assert_eq!(servers[0].int("weight"), Ok(Some(100)));
        assert_eq!(servers[1].get("status").as_deref(), Some("DRAIN"));
    }
    let servers_only = check_stat(
        "haproxy-2.6.12-debian/show_stat_1_4_1.out",
        127,
        11,
        &[(0, "svname", "s1"), (0, "stot", "67"), (10, "status", "no check")],
    );
    assert!(servers_only.rows().all(|row| row.object_type() == ObjectType::Server));
}

#[test]
fn haproxystats_spool_files() {
    for (path, stot) in [
        ("haproxystats/haproxy-2.6-raw/admin1.sock_stat", "26"),
        ("haproxystats/haproxy-2.6-raw/admin2.sock_stat", "14"),
        ("haproxystats/synthetic-1700000000/admin1.sock_stat", "26"),
        ("haproxystats/synthetic-1700000000/admin2.sock_stat", "14"),
    ] {
        check_stat(
            path,
            127,
            9,
            &[
                (0, "pxname", "fe_http"),
                (0, "stot", stot),
                (8, "pxname", "be_idle"),
                (8, "svname", "BACKEND"),
            ],
        );
    }
}

#[test]
fn haproxy_2_5_show_stat_from_haproxy_rs() {
    let parsed = check_stat(
        "peers/haproxy-rs/2_5_5_show_stat.csv",
        117,
        12,
        &[
            (0, "pxname", "http-frontend"),
            (0, "status", "OPEN"),
            (11, "pxname", "tcp-listen"),
        ],
    );
    let servers: Vec<_> = parsed
        .rows()
        .filter(|row| row.object_type() == ObjectType::Server)
        .collect();
    assert_eq!(servers.len(), 4);
    assert_eq!(servers[2].get("addr").as_deref(), Some("unix"));
    assert_eq!(servers[0].get("status").as_deref(), Some("no check"));
}

#[test]
fn haproxy_1_7_telegraf_sample_with_leading_blank_line_and_listeners() {
    let parsed = check_stat(
        "peers/telegraf/sample_output.csv",
        83,
        13,
        &[
            (0, "bin", "813557487"),
            (0, "conn_tot", "2649922"),
            (0, "mode", "http"),
            (12, "pxname", "demo"),
            (12, "stot", "24063"),
        ],
    );
    let rows: Vec<_> = parsed.rows().collect();
    assert_eq!(rows[0].line(), 3);
    assert_eq!(rows[1].svname(), "IPv4-direct");
    assert_eq!(rows[1].object_type(), ObjectType::Listener);
    assert_eq!(rows[1].int("bin"), Ok(Some(57445827)));
}

#[test]
fn datadog_rfc4180_evil_quoting() {
    let parsed = check_stat(
        "peers/datadog-integrations-core/mock_data_evil",
        51,
        13,
        &[
            (8, "hrsp_2xx", "Now, this is just plain\nEVIL"),
            (
                9,
                "hrsp_2xx",
                "And this is 'end of days' stuff,\nam I right? \"Pure EVIL\nDOIN'\"\n",
            ),
            (10, "status", "DOWN (agent)"),
            (11, "status", "NO CHECK"),
            (12, "stot", "421"),
        ],
    );
    let rows: Vec<_> = parsed.rows().collect();
    assert_eq!(rows[9].line(), 12);
    assert_eq!(rows[10].line(), 16);
    assert_eq!(rows[9].svname(), "i-1");
}

#[test]
fn datadog_status_variants() {
    check_stat(
        "peers/datadog-integrations-core/statuses_mock",
        51,
        9,
        &[
            (3, "status", "UP 1/2"),
            (6, "status", "DOWN"),
            (7, "status", "MAINT"),
            (8, "stot", "421"),
        ],
    );
    check_stat(
        "peers/datadog-integrations-core/mock_data",
        51,
        17,
        &[
            (0, "pxname", "a"),
            (0, "scur", "1"),
            (16, "pxname", "be_edge_http_sre-production_elk-elastic"),
            (16, "stot", "421"),
        ],
    );
}

#[test]
fn headerless_haproxy_1_5_layout_from_haproxy_exporter() {
    let parsed = stat("peers/haproxy_exporter/haproxy.csv");
    assert!(!parsed.has_header());
    assert_eq!(parsed.len(), 2735);
    let rows: Vec<_> = parsed.rows().collect();
    assert_eq!(rows[2].svname(), "service-0-instance-1");
    assert_eq!(rows[2].int("slim"), Ok(None));
    assert_eq!(rows[1000].pxname(), "service-31");
    assert_eq!(rows[1000].svname(), "service-31-instance-32");
    assert_eq!(rows[1000].get("status").as_deref(), Some("UP"));
    assert_eq!(rows[1000].object_type(), ObjectType::Server);
    assert_eq!(rows[2734].pxname(), "service-99");
    // This synthetic file says `type` 2 on its BACKEND rows; the reserved name wins.
    assert_eq!(rows[2734].get("type").as_deref(), Some("2"));
    assert_eq!(rows[2734].object_type(), ObjectType::Backend);
}

#[test]
fn show_info_files() {
    for (path, entries, version, pid, uptime, curr_conns, idle) in [
        (
            "haproxy-2.6.12-debian/show_info.out",
            69,
            "2.6.12-1+deb12u4",
            18989,
            209,
            0,
            100,
        ),
        (
            "peers/haproxy-rs/2_5_5_show_info.txt",
            69,
            "2.5.5-384c5c5",
            8,
            54,
            0,
            99,
        ),
        (
            "haproxystats/haproxy-2.6-raw/admin1.sock_info",
            69,
            "2.6.12-1+deb12u4",
            11013,
            21,
            0,
            100,
        ),
        (
            "haproxystats/haproxy-2.6-raw/admin2.sock_info",
            69,
            "2.6.12-1+deb12u4",
            11026,
            21,
            0,
            100,
        ),
        (
            "haproxystats/synthetic-1700000000/admin1.sock_info",
            71,
            "2.6.12-1+deb12u4",
            11013,
            100,
            50,
            90,
        ),
        (
            "haproxystats/synthetic-1700000000/admin2.sock_info",
            71,
            "2.6.12-1+deb12u4",
            11026,
            101,
            25,
            75,
        ),
    ] {
        let text = String::from_utf8(fixture(path)).unwrap();
        let info = ShowInfo::parse(&text).unwrap_or_else(|error| panic!("{path}: {error}"));
        assert_eq!(info.entries().len(), entries, "{path}");
        assert_eq!(
            info.get("Version").map(ToString::to_string).as_deref(),
            Some(version),
            "{path}"
        );
        assert_eq!(info.int("Pid"), Some(pid), "{path}");
        assert_eq!(info.int("Uptime_sec"), Some(uptime), "{path}");
        assert_eq!(info.int("CurrConns"), Some(curr_conns), "{path}");
        assert_eq!(info.int("Idle_pct"), Some(idle), "{path}");
    }
}

#[test]
fn show_servers_state_file() {
    let text = String::from_utf8(fixture("haproxy-2.6.12-debian/show_servers_state.out")).unwrap();
    let state = ServersState::parse(&text).unwrap();
    assert_eq!(state.columns().len(), 25);
    assert_eq!(state.rows().len(), 11);
    let s1 = &state.rows()[0];
    assert_eq!(state.get(s1, "srv_name"), Some("s1"));
    assert_eq!(state.get(s1, "srv_uweight"), Some("100"));
    assert_eq!(state.get(s1, "srv_agent_port"), Some("31090"));
    assert_eq!(state.get(s1, "srv_fqdn"), None);
    let slot1 = &state.rows()[5];
    assert_eq!(state.get(slot1, "srv_addr"), Some("127.0.0.2"));
    assert_eq!(state.get(slot1, "srv_fqdn"), Some("placeholder.invalid"));
    assert_eq!(state.get(&state.rows()[10], "be_name"), Some("be_chash"));
}

fn show_proc(path: &str) -> ShowProc {
    let text = String::from_utf8(fixture(path)).unwrap();
    ShowProc::parse(&text).unwrap_or_else(|error| panic!("{path}: {error}"))
}

#[test]
fn show_proc_of_2_6_and_3_0() {
    let settled = show_proc("haproxy-2.6.12-debian/master_show_proc.out");
    let master = settled.master();
    assert_eq!((master.pid, master.reloads, master.failed_reloads), (12782, 7, Some(0)));
    assert_eq!(master.uptime.as_secs(), 5 * 60 + 23);
    assert_eq!(master.version, "2.6.12-1+deb12u4");
    let workers: Vec<(u32, u32)> = settled.workers().map(|row| (row.pid, row.reloads)).collect();
    assert_eq!(workers, [(18989, 0)]);
    assert_eq!(settled.old_workers().count(), 0);

    for (path, master_pid, current, old, version) in [
        (
            "haproxy-2.6.12-debian/master_show_proc_old_workers.out",
            4273,
            4286,
            4276,
            "2.6.12-1+deb12u4",
        ),
        (
            "haproxy-3.0.11/master_show_proc_old_workers.out",
            4301,
            4313,
            4304,
            "3.0.11-9e587df",
        ),
    ] {
        let reloaded = show_proc(path);
        let master = reloaded.master();
        assert_eq!(
            (master.pid, master.reloads, master.failed_reloads),
            (master_pid, 1, Some(0)),
            "{path}"
        );
        let workers: Vec<(u32, u32)> = reloaded.workers().map(|row| (row.pid, row.reloads)).collect();
        assert_eq!(workers, [(current, 0)], "{path}");
        let leaving: Vec<(u32, u32)> = reloaded.old_workers().map(|row| (row.pid, row.reloads)).collect();
        assert_eq!(leaving, [(old, 1)], "{path}");
        assert!(reloaded.rows().iter().all(|row| row.version == version), "{path}");
    }
}
