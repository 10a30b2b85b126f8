//! Benchmark: parsing `show stat` replies the size of a large HAProxy.
//!
//! Without arguments it builds one reply shaped like a busy 2.6 process
//! (200 frontends, 1,000 backends × 10 servers, 128 columns, about 7 MB) from
//! the 2.6.12 fixture's rows; with file arguments it parses those files (for
//! example a snapshot written by a benchmark generator). For each input it
//! reports the best and median of 20 runs of parse alone and of parse plus
//! reading every cell of every row as an integer (what aggregation does), the
//! throughput, and the allocations one parse makes, counted exactly.
//!
//!     cargo bench -p haproxy --bench show_stat [-- FILE...]

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use haproxy::ShowStat;

const RUNS: usize = 20;

fn main() {
    let files: Vec<String> = std::env::args().skip(1).filter(|arg| !arg.starts_with("--")).collect();
    let inputs: Vec<(String, String)> = if files.is_empty() {
        vec![(
            "synthetic 2.6 reply (200 fe, 1000 be x 10 srv)".to_owned(),
            synthetic_reply(),
        )]
    } else {
        files
            .into_iter()
            .map(|path| (path.clone(), std::fs::read_to_string(&path).expect("read input")))
            .collect()
    };
    for (name, text) in inputs {
        measure(&name, &text);
    }
}

fn measure(name: &str, text: &str) {
    let megabytes = text.len() as f64 / 1e6;
    let mut parse_times = Vec::with_capacity(RUNS);
    let mut walk_times = Vec::with_capacity(RUNS);
    let mut checksum = 0i64;
    let mut rows = 0;
    for _ in 0..RUNS {
        let owned = text.to_owned();
        let start = Instant::now();
        let stat = ShowStat::parse(owned).expect("parse");
        parse_times.push(start.elapsed());
        rows = stat.len();
        let start = Instant::now();
        let stat = ShowStat::parse(text.to_owned()).expect("parse");
        for row in stat.rows() {
            for column in 0..stat.columns().len() {
                checksum = checksum.wrapping_add(row.int_at(column).ok().flatten().unwrap_or(0));
            }
        }
        walk_times.push(start.elapsed());
    }
    let owned = text.to_owned();
    let (before_count, before_bytes) = support::allocated();
    let stat = ShowStat::parse(owned).expect("parse");
    let (after_count, after_bytes) = support::allocated();
    let (count, bytes) = (after_count - before_count, after_bytes - before_bytes);
    drop(stat);
    let report = |label: &str, times: &mut Vec<Duration>| {
        times.sort();
        let best = times[0];
        let median = times[times.len() / 2];
        println!(
            "  {label:<28} best {:>7.2} ms  median {:>7.2} ms  {:>6.0} MB/s",
            best.as_secs_f64() * 1e3,
            median.as_secs_f64() * 1e3,
            megabytes / median.as_secs_f64()
        );
    };
    println!("{name}: {megabytes:.1} MB, {rows} rows");
    report("parse", &mut parse_times);
    report("parse + every cell as int", &mut walk_times);
    println!(
        "  allocations in one parse: {count} ({:.1} MB besides the input's own buffer; checksum {checksum})",
        bytes as f64 / 1e6
    );
}

/// A reply shaped like a large 2.6 process, built from the 2.6.12 fixture's rows.
fn synthetic_reply() -> String {
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fixtures/haproxy-2.6.12-debian/show_stat.out"
    );
    let text = std::fs::read_to_string(fixture).expect("fixture");
    let mut lines = text.lines();
    let header = lines.next().expect("header");
    let rows: Vec<&str> = lines.filter(|line| !line.is_empty()).collect();
    let pick = |prefix: &str| *rows.iter().find(|row| row.starts_with(prefix)).expect(prefix);
    let (frontend, server, backend) = (pick("fe_main,FRONTEND,"), pick("be_app,s1,"), pick("be_app,BACKEND,"));
    let rest = |row: &str| row.splitn(3, ',').nth(2).expect("cells").to_owned();
    let (frontend, server, backend) = (rest(frontend), rest(server), rest(backend));
    let mut out = String::with_capacity(8 << 20);
    out.push_str(header);
    out.push('\n');
    for index in 0..200 {
        let _ = writeln!(out, "fe_{index:04},FRONTEND,{frontend}");
    }
    for index in 0..1000 {
        for server_index in 0..10 {
            let _ = writeln!(out, "be_{index:04},srv_{server_index:02},{server}");
        }
        let _ = writeln!(out, "be_{index:04},BACKEND,{backend}");
    }
    out.push('\n');
    out
}
