//! `haproxide check agent`: asks the agent as HAProxy's `agent-check` does
//! (connect, read the one line it answers) and judges the reply as HAProxy
//! would act on it: `down`, `fail`, `stopped` or `maint` is CRITICAL,
//! `drain` or a weight of 0% WARNING, anything else OK; no answer, or one
//! HAProxy would refuse, UNKNOWN.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use haproxy::{AdminState, AgentReply, Health, Weight};

use super::{Outcome, Perfdata, State};

/// The check's name in its status line.
pub const NAME: &str = "AGENT";

/// The longest reply read.
const MAX_REPLY: u64 = 4096;

/// Asks the agent at `address`, waiting at most `timeout` to connect and
/// as long again for the reply.
pub fn check(address: SocketAddr, timeout: Duration) -> Outcome {
    let reply = match super::ask(NAME, address, timeout, b"", MAX_REPLY) {
        Ok(reply) => reply,
        Err(unknown) => return unknown,
    };
    let line = reply.lines().next().unwrap_or_default().trim();
    let parsed: AgentReply = match line.parse() {
        Ok(parsed) => parsed,
        Err(error) => {
            return Outcome::unknown(
                NAME,
                format!("{address} answered {line:?}, which HAProxy refuses: {error}"),
            );
        }
    };
    let state = match (&parsed.health, &parsed.admin, &parsed.weight) {
        (Some(Health::Down | Health::Fail | Health::Stopped), _, _) | (_, Some(AdminState::Maint), _) => {
            State::Critical
        }
        (_, Some(AdminState::Drain), _) | (_, _, Some(Weight::Percent(0) | Weight::Absolute(0))) => State::Warning,
        _ => State::Ok,
    };
    let summary = if line.is_empty() {
        format!("{address} answered an empty line, which changes nothing")
    } else {
        format!("{address} answered {line}")
    };
    let perfdata = match parsed.weight {
        Some(Weight::Percent(percent)) => vec![Perfdata {
            label: "weight",
            value: f64::from(percent),
            unit: "%",
            warning: None,
            critical: None,
        }],
        Some(Weight::Absolute(weight)) => vec![Perfdata {
            label: "weight",
            value: f64::from(weight),
            unit: "",
            warning: None,
            critical: None,
        }],
        None => Vec::new(),
    };
    Outcome {
        name: NAME,
        state,
        summary,
        perfdata,
    }
}

/// The agent's address: `port` (and `host`) given, else `[agent]`'s
/// (loopback when it listens on every address).
pub fn address(
    host: Option<std::net::IpAddr>,
    port: Option<u16>,
    file: Option<&Path>,
    dir: Option<&Path>,
) -> anyhow::Result<SocketAddr> {
    let configured = match (host, port) {
        (Some(host), Some(port)) => return Ok(SocketAddr::new(host, port)),
        _ => {
            let config = crate::config::load_checked(file, dir, crate::config::Program::Agent)?;
            super::reachable(crate::agent::configured_address(&config)?)
        }
    };
    Ok(SocketAddr::new(
        host.unwrap_or(configured.ip()),
        port.unwrap_or(configured.port()),
    ))
}
