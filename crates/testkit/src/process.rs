//! Waiting for conditions and stopping child processes, for tests that run
//! haproxide's daemons: every wait is bounded and fails the test when it ends.

use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// Polls `condition` every 20 ms until it holds; panics after `limit`,
/// naming `what` was awaited.
pub fn wait_for(what: &str, limit: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if condition() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("timed out after {limit:?} waiting for {what}");
}

/// Sends SIGTERM and waits (at most 10 s, then SIGKILL and a panic); returns
/// the exit status and how long exiting took.
pub fn terminate(child: Child) -> (ExitStatus, Duration) {
    stop_with(child, Signal::SIGTERM)
}

/// Sends `signal` and waits (at most 10 s, then SIGKILL and a panic); returns
/// the exit status and how long exiting took.
pub fn stop_with(mut child: Child, signal: Signal) -> (ExitStatus, Duration) {
    let started = Instant::now();
    let pid = i32::try_from(child.id()).expect("pid fits in i32");
    kill(Pid::from_raw(pid), signal).expect("send the signal");
    loop {
        if let Some(status) = child.try_wait().expect("wait for the child") {
            return (status, started.elapsed());
        }
        if started.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            panic!("the process did not exit within 10 s of {signal}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Waits up to `grace` for `child` to exit (after it was asked to), then
/// kills it: how the harness stops what it started, without a panic.
pub(crate) fn wait_or_kill(mut child: Child, grace: Duration) {
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Sends SIGTERM to `child` and waits up to two seconds, then kills it.
pub(crate) fn stop_and_wait(child: Child) {
    if let Ok(pid) = i32::try_from(child.id()) {
        let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
    }
    wait_or_kill(child, Duration::from_secs(2));
}
