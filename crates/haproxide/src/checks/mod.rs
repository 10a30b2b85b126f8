//! Nagios/Icinga checks (`haproxide check …`), by the plugin conventions:
//! one status line, `NAME STATE - summary | perfdata`, and the exit code of
//! the state (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN). A check that cannot
//! tell (a file it cannot read, a bad configuration) says UNKNOWN and why,
//! never a state it did not measure.
//!
//! - [`spool`]: rounds waiting in `process`'s `src-dir`, and the oldest one's
//!   age (haproxystats' `check_haproxystats_queue_size.py`).
//! - [`agent`]: the agent's reply, asked for as HAProxy asks.
//! - [`logs`]: `logs`' `/healthz`.
//! - [`freshness`]: how long ago `pull` or `process` last finished a round.

pub mod agent;
pub mod freshness;
pub mod logs;
pub mod spool;

use std::fmt;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::process::ExitCode;
use std::time::Duration;

/// Where a check on this host reaches a daemon that listens on `bind`:
/// loopback when it listens on every address.
pub fn reachable(bind: SocketAddr) -> SocketAddr {
    let ip = match bind.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, bind.port())
}

/// Asks the daemon at `address` as its client would: connects (within
/// `timeout`), sends `request`, and reads the answer until the daemon
/// closes (`timeout` at most between reads, `limit` bytes at most). No
/// answer is check `name`'s UNKNOWN.
pub fn ask(
    name: &'static str,
    address: SocketAddr,
    timeout: Duration,
    request: &[u8],
    limit: u64,
) -> Result<String, Outcome> {
    let answer = (|| -> std::io::Result<String> {
        let mut stream = TcpStream::connect_timeout(&address, timeout)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.write_all(request)?;
        let mut answer = String::new();
        stream.take(limit).read_to_string(&mut answer)?;
        Ok(answer)
    })();
    answer.map_err(|error| Outcome::unknown(name, format!("no answer from {address}: {error}")))
}

/// A check's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum State {
    /// All is well.
    Ok,
    /// Past the warning threshold.
    Warning,
    /// Past the critical threshold.
    Critical,
    /// The check could not measure.
    Unknown,
}

impl State {
    /// The exit code the plugin conventions give it.
    pub fn exit_code(self) -> u8 {
        match self {
            State::Ok => 0,
            State::Warning => 1,
            State::Critical => 2,
            State::Unknown => 3,
        }
    }

    /// The state of `value` against `warning` and `critical` (each crossed
    /// when the value is above it; `None` never is).
    pub fn of(value: f64, warning: Option<f64>, critical: Option<f64>) -> State {
        if critical.is_some_and(|limit| value > limit) {
            State::Critical
        } else if warning.is_some_and(|limit| value > limit) {
            State::Warning
        } else {
            State::Ok
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            State::Ok => "OK",
            State::Warning => "WARNING",
            State::Critical => "CRITICAL",
            State::Unknown => "UNKNOWN",
        })
    }
}

/// One performance figure: `label=value[unit];warn;crit;min`.
#[derive(Debug, Clone, PartialEq)]
pub struct Perfdata {
    /// Its label.
    pub label: &'static str,
    /// Its value.
    pub value: f64,
    /// `s`, `B`, `%` or empty.
    pub unit: &'static str,
    /// The warning threshold, if any.
    pub warning: Option<f64>,
    /// The critical threshold, if any.
    pub critical: Option<f64>,
}

impl fmt::Display for Perfdata {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let threshold = |limit: Option<f64>| limit.map(|limit| limit.to_string()).unwrap_or_default();
        write!(
            formatter,
            "{}={}{};{};{};0",
            self.label,
            self.value,
            self.unit,
            threshold(self.warning),
            threshold(self.critical)
        )
    }
}

/// What a check found.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The check's name in the status line (`SPOOL`).
    pub name: &'static str,
    /// Its verdict.
    pub state: State,
    /// What it found, in words.
    pub summary: String,
    /// Its figures.
    pub perfdata: Vec<Perfdata>,
}

impl Outcome {
    /// UNKNOWN, for `reason`.
    pub fn unknown(name: &'static str, reason: impl fmt::Display) -> Outcome {
        Outcome {
            name,
            state: State::Unknown,
            summary: reason.to_string().replace('\n', " "),
            perfdata: Vec::new(),
        }
    }

    /// Prints the status line and gives the exit code.
    pub fn report(&self) -> ExitCode {
        println!("{self}");
        ExitCode::from(self.state.exit_code())
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{} {} - {}", self.name, self.state, self.summary)?;
        if !self.perfdata.is_empty() {
            formatter.write_str(" |")?;
            for figure in &self.perfdata {
                write!(formatter, " {figure}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_follow_the_thresholds_and_lines_the_plugin_format() {
        assert_eq!(State::of(60.0, Some(60.0), Some(120.0)), State::Ok);
        assert_eq!(State::of(61.0, Some(60.0), Some(120.0)), State::Warning);
        assert_eq!(State::of(121.0, Some(60.0), Some(120.0)), State::Critical);
        assert_eq!(State::of(1e9, None, None), State::Ok);
        let outcome = Outcome {
            name: "SPOOL",
            state: State::Warning,
            summary: "61 rounds waiting".into(),
            perfdata: vec![Perfdata {
                label: "rounds",
                value: 61.0,
                unit: "",
                warning: Some(60.0),
                critical: None,
            }],
        };
        assert_eq!(
            outcome.to_string(),
            "SPOOL WARNING - 61 rounds waiting | rounds=61;60;;0"
        );
        assert_eq!(
            Outcome::unknown("SPOOL", "cannot read /x:\nNo such file").to_string(),
            "SPOOL UNKNOWN - cannot read /x: No such file"
        );
        assert_eq!(State::Unknown.exit_code(), 3);
    }
}
