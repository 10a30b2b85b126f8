//! Benchmark: the CPU and memory of one `haproxide top` refresh.
//!
//!     TOP_SOCKET_DIR=DIR cargo bench -p haproxide --bench top [-- REFRESHES [--refresh-only]]
//!
//! `bash bench/top.sh` starts the HAProxy instances whose sockets are in
//! DIR and runs this. One refresh is what `top` does every `--interval`:
//! `show stat` of every socket of DIR, read as it arrives (a thread each),
//! the rows turned into the table's lines (rates, sums over sockets, the
//! servers tree sorted by name) and the screen drawn (200×50, on ratatui's
//! TestBackend: the cells `top` would send a terminal). Printed: CPU time
//! per refresh (user + system, every thread: the process's CPU clock), its
//! mean and median, wall time per refresh, the rows read, and the peak RSS
//! (VmHWM).
//!
//! Then, measured the same way, what the refresh is made of:
//! - the floor: the same `show stat` of every socket read at once as `top`
//!   reads it, and the bytes thrown away; what a refresh costs above it is
//!   `top`'s own work;
//! - that work alone: one socket's reply, saved, read into its rows in
//!   memory on one thread, with nothing else running.
//!
//! `--refresh-only` leaves these two out (for counting the instructions
//! of refreshes under callgrind).

// A benchmark fails by panicking, like a test.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::io::Read;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use haproxide::top::fetch::{read_rows, reply};
use haproxide::top::model::Sample;
use haproxide::top::{Sockets, Top};
use haproxy::Endpoint;
use ratatui::Terminal;
use ratatui::backend::TestBackend;

/// User + system CPU time of this process so far, every thread.
fn cpu() -> Duration {
    let time = nix::time::clock_gettime(nix::time::ClockId::CLOCK_PROCESS_CPUTIME_ID).unwrap();
    Duration::from(time)
}

/// A line of /proc/self/status, in kB.
fn status_kb(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|line| line.starts_with(field)).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Runs `work` once to warm up, then `times` times: the mean and the
/// median of the process's CPU time per run, in ms.
fn cpu_per_run(times: u32, mut work: impl FnMut()) -> (f64, f64) {
    work();
    let mut cpu_times: Vec<f64> = (0..times)
        .map(|_| {
            let before = cpu();
            work();
            (cpu() - before).as_secs_f64() * 1000.0
        })
        .collect();
    let mean = cpu_times.iter().sum::<f64>() / f64::from(times);
    cpu_times.sort_by(f64::total_cmp);
    (mean, cpu_times[cpu_times.len() / 2])
}

fn main() {
    let refreshes: u32 = std::env::args().skip(1).find_map(|arg| arg.parse().ok()).unwrap_or(20);
    let dir = PathBuf::from(std::env::var("TOP_SOCKET_DIR").expect("TOP_SOCKET_DIR: the directory of the sockets"));
    let mut top = Top::new(Sockets::new(Vec::new(), Some(dir.clone())));
    let mut terminal = Terminal::new(TestBackend::new(200, 50)).unwrap();
    let wall = Instant::now();
    // The first refresh has nothing to take rates from, and warms up.
    let (mean, median) = cpu_per_run(refreshes, || {
        top.refresh();
        top.draw(&mut terminal).unwrap();
    });
    let wall_ms = wall.elapsed().as_secs_f64() * 1000.0 / f64::from(refreshes + 1);
    let problems = top.model.problems();
    assert!(problems.is_empty(), "{problems:?}");
    println!(
        "top refresh: {} sockets, {} rows: {mean:.1} ms CPU (median {median:.1}), {wall_ms:.1} ms wall per refresh (mean of {refreshes}); peak RSS {:.1} MB",
        top.model.sockets.len(),
        top.model.row_count(),
        status_kb("VmHWM:") as f64 / 1024.0
    );
    if std::env::args().any(|arg| arg == "--refresh-only") {
        return;
    }

    let sockets: Vec<Endpoint> = haproxide::sockets::discover(&dir)
        .unwrap()
        .sockets
        .into_iter()
        .map(Endpoint::Unix)
        .collect();
    let mut bytes = 0;
    let (mean, median) = cpu_per_run(refreshes, || {
        bytes = std::thread::scope(|scope| {
            let readers: Vec<_> = sockets
                .iter()
                .map(|socket| scope.spawn(move || drain(socket)))
                .collect();
            readers.into_iter().map(|reader| reader.join().unwrap()).sum()
        });
    });
    println!(
        "floor, the replies read and thrown away: {} sockets, {:.1} MB: {mean:.1} ms CPU (median {median:.1}) per refresh",
        sockets.len(),
        bytes as f64 / 1e6,
    );

    let mut saved = Vec::new();
    reply(&sockets[0], "show stat")
        .unwrap()
        .read_to_end(&mut saved)
        .unwrap();
    let mut sample = Sample::new(Instant::now());
    let mut buffer = Vec::new();
    let (mean, median) = cpu_per_run(refreshes, || {
        let (read, back) = read_rows(&saved[..], &mut sample, Instant::now(), std::mem::take(&mut buffer));
        read.unwrap();
        buffer = back;
    });
    println!(
        "in memory, one saved reply ({:.1} MB) read into its rows on one thread: {mean:.1} ms CPU (median {median:.1}); times {}: {:.1} ms",
        saved.len() as f64 / 1e6,
        sockets.len(),
        mean * sockets.len() as f64,
    );
}

/// Reads `show stat` of `socket` as `top` does, into a buffer of `top`'s
/// size; the bytes read.
fn drain(socket: &Endpoint) -> usize {
    let mut reply = reply(socket, "show stat").unwrap();
    let mut buffer = vec![0; 256 * 1024];
    let mut bytes = 0;
    loop {
        match reply.read(&mut buffer).unwrap() {
            0 => return bytes,
            read => bytes += read,
        }
    }
}
