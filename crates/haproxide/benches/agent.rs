//! Benchmark: agent-check replies per second and their latency over loopback.
//!
//!     cargo bench -p haproxide --bench agent [-- SECONDS]
//!
//!     DATAWAVE_AGENT=/path/to/datawave-haproxy-agent cargo bench -p haproxide --bench agent
//!
//! Starts the release `haproxide agent` (`interval = 1`, so every reply comes
//! from the cached answer) on a free loopback port, and with `DATAWAVE_AGENT`
//! Datawave's agent 1.0.0 after it, the same way. Then it plays HAProxy from
//! 1,000 concurrent clients, each connecting, reading the reply line to the
//! end and starting again:
//!
//! - closed loop: each client starts its next check as soon as the last one
//!   ended; this is the most replies per second the agent gives.
//! - paced: each client checks every 20 ms (1,000 servers at `agent-inter
//!   20ms`, 50,000 checks a second), then every 100 ms (10,000 a second);
//!   latency here is what one check waits.
//!
//! The load generator runs on the same machine and takes most of the CPU;
//! the agent's CPU time per phase is printed, so its own cost can be told
//! apart from the generator's.
//!
//! Latency runs from the start of `connect` to the end of the reply, as
//! HAProxy sees it. Each agent's peak RSS (VmHWM) is read at the end.

// A benchmark fails by panicking, like a test.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

const CLIENTS: usize = 1000;

fn main() {
    let seconds: u64 = std::env::args().skip(1).find_map(|arg| arg.parse().ok()).unwrap_or(5);
    let dir = tempfile::tempdir().unwrap();
    // Both agents poll a health URL where nothing listens and answer "down"
    // from what they cached: the same reply, the same work per connection.
    let health = format!("http://127.0.0.1:{}/health", testkit::free_port());
    let mut agents = vec![("haproxide agent".to_owned(), ours(dir.path(), &health))];
    if let Ok(reference) = std::env::var("DATAWAVE_AGENT") {
        agents.push((
            "datawave-haproxy-agent 1.0.0".to_owned(),
            datawave(dir.path(), &health, &reference),
        ));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let duration = Duration::from_secs(seconds);
    for (name, (agent, port)) in agents {
        let pid = agent.id();
        testkit::wait_for("the agent listening", Duration::from_secs(10), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        std::thread::sleep(Duration::from_millis(500)); // its first poll
        let reply = runtime.block_on(check(port)).unwrap();
        println!("{name}: reply {:?}", reply.trim_end());
        let phases = [
            ("closed loop", None),
            ("paced, every 20 ms", Some(Duration::from_millis(20))),
            ("paced, every 100 ms", Some(Duration::from_millis(100))),
        ];
        for (phase, pace) in phases {
            let cpu_before = cpu_seconds(pid);
            let (latencies, failures, elapsed) = runtime.block_on(load(port, duration, pace));
            report(phase, &latencies, failures, elapsed);
            let cpu = cpu_seconds(pid) - cpu_before;
            println!(
                "  the agent used {cpu:.2} CPU s of {:.2} s: {:.0} replies per CPU second",
                elapsed.as_secs_f64(),
                latencies.len() as f64 / cpu
            );
        }
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let peak = status
            .lines()
            .find(|line| line.starts_with("VmHWM:"))
            .and_then(|line| line.split_whitespace().nth(1))
            .unwrap_or("?")
            .to_owned();
        println!("  peak RSS: {peak} kB");
        testkit::terminate(agent);
    }
}

/// Starts haproxide's agent; the child and its port.
fn ours(dir: &Path, health: &str) -> (Child, u16) {
    let port = testkit::free_port();
    let config = dir.join("agent.conf");
    std::fs::write(
        &config,
        format!(
            "[agent]\nloglevel = warning\nbind = 127.0.0.1\nport = {port}\nhealth-url = {health}\ninterval = 1\nretries = 0\n"
        ),
    )
    .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_haproxide"))
        .args(["agent", "-f"])
        .arg(&config)
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    (child, port)
}

/// Starts Datawave's agent (`datawave-haproxy-agent` at `program`); the child and its port.
fn datawave(dir: &Path, health: &str, program: &str) -> (Child, u16) {
    let port = testkit::free_port();
    let config = dir.join("datawave.yml");
    std::fs::write(
        &config,
        format!("bind: 127.0.0.1\nport: {port}\ndw_health_poller:\n  check_url: \"{health}\"\n  interval: 1.0\n"),
    )
    .unwrap();
    let child = Command::new(program)
        .args(["-l", "critical", "-c"])
        .arg(&config)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    (child, port)
}

/// User and system CPU time process `pid` used so far.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name in parentheses: utime and stime are 14 and 15.
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after.split(' ').collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    // In USER_HZ, which Linux fixes at 100 for /proc.
    ticks / 100.0
}

/// One agent check: connect, read the reply to the end, within 5 s.
async fn check(port: u16) -> std::io::Result<String> {
    let mut reply = String::new();
    let exchange = async {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await?;
        stream.read_to_string(&mut reply).await
    };
    tokio::time::timeout(Duration::from_secs(5), exchange)
        .await
        .map_err(|_| std::io::Error::other("no reply within 5 s"))??;
    if reply.ends_with('\n') {
        Ok(reply)
    } else {
        Err(std::io::Error::other(format!("incomplete reply {reply:?}")))
    }
}

/// Runs `CLIENTS` clients for `duration`; the latencies (µs), failures and time taken.
async fn load(port: u16, duration: Duration, pace: Option<Duration>) -> (Vec<u32>, usize, Duration) {
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut clients = Vec::new();
    for client in 0..CLIENTS {
        let stop = Arc::clone(&stop);
        clients.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut failures = 0;
            let mut ticks = pace.map(|pace| {
                // Clients start spread over one period, as HAProxy spreads checks.
                let offset = pace.mul_f64(client as f64 / CLIENTS as f64);
                let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + offset, pace);
                ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                ticks
            });
            while !stop.load(Ordering::Relaxed) {
                if let Some(ticks) = ticks.as_mut() {
                    ticks.tick().await;
                }
                let began = Instant::now();
                match check(port).await {
                    Ok(_) => latencies.push(u32::try_from(began.elapsed().as_micros()).unwrap_or(u32::MAX)),
                    Err(_) => failures += 1,
                }
            }
            (latencies, failures)
        }));
    }
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    let mut failures = 0;
    for client in clients {
        let (mut own, failed) = client.await.unwrap();
        latencies.append(&mut own);
        failures += failed;
    }
    (latencies, failures, started.elapsed())
}

fn report(name: &str, latencies: &[u32], failures: usize, elapsed: Duration) {
    let mut sorted = latencies.to_vec();
    sorted.sort_unstable();
    let at = |quantile: f64| -> f64 {
        let index = ((sorted.len() as f64 * quantile) as usize).min(sorted.len().saturating_sub(1));
        f64::from(sorted.get(index).copied().unwrap_or(0)) / 1000.0
    };
    println!(
        "{name}: {CLIENTS} clients, {} replies in {:.2} s = {:.0} replies/s, {failures} failed; \
         latency ms p50 {:.3} p99 {:.3} p99.9 {:.3} max {:.3}",
        sorted.len(),
        elapsed.as_secs_f64(),
        sorted.len() as f64 / elapsed.as_secs_f64(),
        at(0.5),
        at(0.99),
        at(0.999),
        at(1.0)
    );
}
