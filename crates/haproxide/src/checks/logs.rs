//! `haproxide check logs`: asks `logs`' `/healthz`, which answers 200 `ok`
//! while its receiver, parsers and producer all move, and 503 naming the
//! stalled stages otherwise (the same progress its systemd watchdog
//! follows). 200 is OK, 503 CRITICAL, anything else or no answer UNKNOWN.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use super::{Outcome, State};

/// The check's name in its status line.
pub const NAME: &str = "LOGS";

/// The longest answer read.
const MAX_ANSWER: u64 = 64 * 1024;

/// Asks `GET /healthz` of `address`, waiting at most `timeout` to connect
/// and as long again for the answer.
pub fn check(address: SocketAddr, timeout: Duration) -> Outcome {
    let request = format!("GET /healthz HTTP/1.0\r\nHost: {address}\r\n\r\n");
    let answer = match super::ask(NAME, address, timeout, request.as_bytes(), MAX_ANSWER) {
        Ok(answer) => answer,
        Err(unknown) => return unknown,
    };
    let status: Option<u16> = answer.split_whitespace().nth(1).and_then(|code| code.parse().ok());
    let body = answer
        .split_once("\r\n\r\n")
        .map_or("", |(_, body)| body)
        .trim()
        .replace('\n', " ");
    let state = match status {
        Some(200) => State::Ok,
        Some(503) => State::Critical,
        _ => {
            return Outcome::unknown(
                NAME,
                format!("{address}/healthz answered {status:?}, not 200 or 503: {body}"),
            );
        }
    };
    Outcome {
        name: NAME,
        state,
        summary: format!("{address}/healthz: {body}"),
        perfdata: Vec::new(),
    }
}

/// Where `logs` serves `/healthz`: `given`, else `[logs-monitoring]
/// server-bind` of its configuration (INI, or HAProxyKafka's config.yaml),
/// loopback when it binds every address.
pub fn address(given: Option<SocketAddr>, file: Option<&Path>, dir: Option<&Path>) -> anyhow::Result<SocketAddr> {
    if let Some(given) = given {
        return Ok(given);
    }
    let config = match file {
        Some(path) if crate::config::is_yaml(path) => crate::logs::haproxykafka::load(path)?,
        _ => crate::config::Config::load(file, dir)?,
    };
    let config = crate::config::check_loaded(config, crate::config::Program::Logs)?;
    let monitoring = crate::logs::config::Settings::from_config(&config)?.monitoring;
    if !monitoring.enabled {
        anyhow::bail!("[logs-monitoring] serves no /healthz (enable-prometheus = false)");
    }
    Ok(super::reachable(monitoring.bind))
}
