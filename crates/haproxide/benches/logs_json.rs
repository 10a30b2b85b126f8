//! Benchmark: the logs pipeline's per-line work, parse + JSON, on one
//! thread: `Mapping::encode` (RFC 5424 header, structured data with its
//! escapes, Wikimedia's 30 fields, the `dt` conversion) over the five
//! datagrams HAProxy 2.6 wrote in the fixture `log_rfc5424_sd_unixdgram.txt`,
//! repeated to 200,000. It reports the median of 10 runs (or as many as
//! the first number argument says) in lines per
//! CPU-second (the thread's own CPU time) and MiB of datagrams per
//! CPU-second.
//!
//!     cargo bench -p haproxide --bench logs_json

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use haproxide::logs::fields::{Mapping, wikimedia_fields};
use haproxide::logs::time::{DateConversion, GoLayout};
use nix::time::{ClockId, clock_gettime};

const DATAGRAMS: usize = 200_000;
/// Runs when no number is given (`cargo bench … -- 1` for one run, as
/// under valgrind).
const RUNS: usize = 10;

fn thread_cpu() -> Duration {
    let time = clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID).expect("thread CPU clock");
    Duration::new(time.tv_sec() as u64, time.tv_nsec() as u32)
}

fn main() {
    let capture: &[u8] = include_bytes!("../../../fixtures/haproxy-2.6.12-debian/log_rfc5424_sd_unixdgram.txt");
    let samples: Vec<&[u8]> = capture.split_inclusive(|&byte| byte == b'\n').collect();
    let datagrams: Vec<&[u8]> = samples.iter().copied().cycle().take(DATAGRAMS).collect();
    let bytes: usize = datagrams.iter().map(|datagram| datagram.len()).sum();
    let dates = DateConversion::new(
        GoLayout::new("02/Jan/2006:15:04:05.000").unwrap(),
        GoLayout::new("2006-01-02T15:04:05Z").unwrap(),
        jiff::tz::TimeZone::UTC,
        jiff::tz::TimeZone::UTC,
    );
    let mapping = Mapping::new("haproxykafka@0".into(), "cp1.example".into(), wikimedia_fields(), dates).unwrap();
    let mut out = Vec::with_capacity(1 << 20);
    let runs = std::env::args().find_map(|arg| arg.parse().ok()).unwrap_or(RUNS);
    let mut times = Vec::with_capacity(runs);
    let mut json_bytes = 0;
    let mut rejected = 0;
    for _ in 0..runs {
        json_bytes = 0;
        rejected = 0;
        let start = thread_cpu();
        for datagram in &datagrams {
            out.clear();
            match mapping.encode(datagram, &mut out) {
                Ok(()) => json_bytes += out.len(),
                Err(_) => rejected += 1,
            }
        }
        times.push(thread_cpu() - start);
    }
    times.sort();
    let (best, median) = (times[0], times[runs / 2]);
    println!(
        "{DATAGRAMS} datagrams, {:.1} MiB in, {:.1} MiB of JSON out, {rejected} rejected, one thread",
        bytes as f64 / 1048576.0,
        json_bytes as f64 / 1048576.0
    );
    println!(
        "  parse + JSON  best {:>7.2} ms  median {:>7.2} ms CPU  {:>10.0} lines per CPU-second  {:>6.0} MiB/s",
        best.as_secs_f64() * 1e3,
        median.as_secs_f64() * 1e3,
        DATAGRAMS as f64 / median.as_secs_f64(),
        bytes as f64 / 1048576.0 / median.as_secs_f64()
    );
}
