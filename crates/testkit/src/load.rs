//! A loopback HTTP load generator: threads sending `GET /` (HTTP/1.0, one
//! connection per request, as a reload's worst case: every request needs
//! a listener) at a set rate, counting every request that did not end with
//! a `200`. It stops when told, or by itself after [`MAX_RUN`].

use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The longest a load runs, if nobody stops it.
pub const MAX_RUN: Duration = Duration::from_secs(300);

/// Failures kept word for word in a [`LoadReport`].
const KEPT_FAILURES: usize = 10;

/// A running load.
pub struct HttpLoad {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<Tally>>,
    started: Instant,
}

#[derive(Default)]
struct Tally {
    requests: u64,
    failures: u64,
    first_failures: Vec<String>,
}

/// What a load saw.
#[derive(Debug, Clone)]
pub struct LoadReport {
    /// Requests sent.
    pub requests: u64,
    /// Requests without a `200` answer (connection errors included).
    pub failures: u64,
    /// The first few failures, described.
    pub first_failures: Vec<String>,
    /// How long it ran.
    pub elapsed: Duration,
}

impl LoadReport {
    /// Requests per second.
    pub fn rate(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Prints the report (`load: … failed`, the figure a closing note
    /// quotes) and panics when a request failed or the load ran at fewer
    /// than `at_least` requests/s.
    pub fn assert_no_failure(&self, at_least: f64) {
        eprintln!("load: {self}");
        assert_eq!(self.failures, 0, "failed requests: {:?}", self.first_failures);
        assert!(
            self.rate() >= at_least,
            "the load ran at {:.0} requests/s, under the {at_least:.0} asked for",
            self.rate()
        );
    }
}

impl std::fmt::Display for LoadReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} requests in {:?} ({:.0}/s), {} failed",
            self.requests,
            self.elapsed,
            self.rate(),
            self.failures
        )
    }
}

impl HttpLoad {
    /// Sends `rate` requests per second in all to 127.0.0.1:`port`, over `threads` threads.
    pub fn start(port: u16, rate: u32, threads: usize) -> HttpLoad {
        let stop = Arc::new(AtomicBool::new(false));
        let interval = Duration::from_secs_f64(threads as f64 / f64::from(rate.max(1)));
        let started = Instant::now();
        let threads = (0..threads)
            .map(|_| {
                let stop = Arc::clone(&stop);
                std::thread::spawn(move || run(port, interval, &stop, started))
            })
            .collect();
        HttpLoad { stop, threads, started }
    }

    /// Stops the load and says what it saw.
    pub fn stop(self) -> LoadReport {
        self.stop.store(true, Ordering::SeqCst);
        let mut report = LoadReport {
            requests: 0,
            failures: 0,
            first_failures: Vec::new(),
            elapsed: self.started.elapsed(),
        };
        for thread in self.threads {
            let tally = thread.join().expect("a load thread panicked");
            report.requests += tally.requests;
            report.failures += tally.failures;
            report.first_failures.extend(tally.first_failures);
        }
        report.first_failures.truncate(KEPT_FAILURES);
        report
    }
}

fn run(port: u16, interval: Duration, stop: &AtomicBool, started: Instant) -> Tally {
    let mut tally = Tally::default();
    let mut next = Instant::now();
    while !stop.load(Ordering::SeqCst) && started.elapsed() < MAX_RUN {
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        } else if now - next > Duration::from_secs(1) {
            // Far behind (a stalled machine): carry on at the rate, no burst.
            next = now;
        }
        next += interval;
        tally.requests += 1;
        if let Err(failure) = request(port) {
            tally.failures += 1;
            if tally.first_failures.len() < KEPT_FAILURES {
                tally
                    .first_failures
                    .push(format!("{:?} after start: {failure}", started.elapsed()));
            }
        }
    }
    tally
}

fn request(port: u16) -> Result<(), String> {
    let mut stream = super::connect(port).map_err(|error| format!("connect: {error}"))?;
    stream
        .write_all(b"GET / HTTP/1.0\r\nHost: load\r\n\r\n")
        .map_err(|error| format!("write: {error}"))?;
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .map_err(|error| format!("read: {error}"))?;
    let head = String::from_utf8_lossy(&response[..response.len().min(64)]).into_owned();
    match head.split_whitespace().nth(1) {
        Some("200") => Ok(()),
        _ => Err(format!("answer {head:?}")),
    }
}
