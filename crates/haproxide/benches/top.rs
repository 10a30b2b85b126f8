//! Benchmark: the CPU and memory of one `haproxide top` refresh.
//!
//!     TOP_SOCKET_DIR=DIR cargo bench -p haproxide --bench top [-- REFRESHES]
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

// A benchmark fails by panicking, like a test.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use haproxide::top::{Sockets, Top};
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

fn main() {
    let refreshes: u32 = std::env::args().skip(1).find_map(|arg| arg.parse().ok()).unwrap_or(20);
    let dir = PathBuf::from(std::env::var("TOP_SOCKET_DIR").expect("TOP_SOCKET_DIR: the directory of the sockets"));
    let mut top = Top::new(Sockets::new(Vec::new(), Some(dir)));
    let mut terminal = Terminal::new(TestBackend::new(200, 50)).unwrap();
    // The first refresh has nothing to take rates from, and warms up.
    top.refresh();
    top.draw(&mut terminal).unwrap();
    let problems = top.model.problems();
    assert!(problems.is_empty(), "{problems:?}");
    let mut cpu_times = Vec::new();
    let wall = Instant::now();
    for _ in 0..refreshes {
        let before = cpu();
        top.refresh();
        top.draw(&mut terminal).unwrap();
        cpu_times.push((cpu() - before).as_secs_f64() * 1000.0);
    }
    let wall_ms = wall.elapsed().as_secs_f64() * 1000.0 / f64::from(refreshes);
    let cpu_ms = cpu_times.iter().sum::<f64>() / f64::from(refreshes);
    cpu_times.sort_by(f64::total_cmp);
    let median_ms = cpu_times[cpu_times.len() / 2];
    println!(
        "top refresh: {} sockets, {} rows: {cpu_ms:.1} ms CPU (median {median_ms:.1}), {wall_ms:.1} ms wall per refresh (mean of {refreshes}); peak RSS {:.1} MB",
        top.model.sockets.len(),
        top.model.row_count(),
        status_kb("VmHWM:") as f64 / 1024.0
    );
}
