//! Benchmark: reading HAProxy log datagrams with HAProxyKafka's
//! structured-data element (`LogLine::parse` alone, no JSON yet), the
//! parser half of the logs pipeline's per-line cost.
//!
//! The input is the five datagrams HAProxy 2.6 wrote in the fixture
//! `log_rfc5424_sd_unixdgram.txt` (23 SD parameters each, escapes and a
//! non-UTF-8 byte among them), repeated to 200,000 datagrams. It reports the
//! best and median of 10 runs on one thread, in datagrams and MiB per second,
//! and the allocations one datagram costs, counted exactly.
//!
//!     cargo bench -p haproxy --bench log_line

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use haproxy::LogLine;

const DATAGRAMS: usize = 200_000;
const RUNS: usize = 10;

fn main() {
    let capture: &[u8] = include_bytes!("../../../fixtures/haproxy-2.6.12-debian/log_rfc5424_sd_unixdgram.txt");
    let samples: Vec<&[u8]> = capture.split_inclusive(|&byte| byte == b'\n').collect();
    let datagrams: Vec<&[u8]> = samples.iter().copied().cycle().take(DATAGRAMS).collect();
    let bytes: usize = datagrams.iter().map(|datagram| datagram.len()).sum();
    let mut times: Vec<Duration> = Vec::with_capacity(RUNS);
    let mut params = 0usize;
    for _ in 0..RUNS {
        params = 0;
        let start = Instant::now();
        for datagram in &datagrams {
            let line = LogLine::parse(datagram).expect("a datagram HAProxy wrote");
            params += line
                .structured_data
                .iter()
                .map(|element| element.params.len())
                .sum::<usize>();
        }
        times.push(start.elapsed());
    }
    let (before, _) = support::allocated();
    for datagram in &samples {
        drop(LogLine::parse(datagram).expect("a datagram HAProxy wrote"));
    }
    let allocations = support::allocated().0 - before;
    times.sort();
    let (best, median) = (times[0], times[RUNS / 2]);
    let per_second = |time: Duration| DATAGRAMS as f64 / time.as_secs_f64();
    println!(
        "{DATAGRAMS} datagrams, {:.1} MiB, {params} SD parameters, one thread",
        bytes as f64 / 1048576.0
    );
    println!(
        "  LogLine::parse  best {:>7.2} ms  median {:>7.2} ms  {:>10.0} datagrams/s  {:>6.0} MiB/s",
        best.as_secs_f64() * 1e3,
        median.as_secs_f64() * 1e3,
        per_second(median),
        bytes as f64 / 1048576.0 / median.as_secs_f64()
    );
    println!(
        "  allocations: {allocations} for the {} sample datagrams ({:.1} each)",
        samples.len(),
        allocations as f64 / samples.len() as f64
    );
}
