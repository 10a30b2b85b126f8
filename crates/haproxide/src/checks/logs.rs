//! `haproxide check logs`: asks `logs`' `/healthz`, which answers 200 `ok`
//! while its receiver, parsers and producer all move, and 503 naming the
//! stalled stages otherwise (the same progress its systemd watchdog
//! follows). 200 is OK, unless its `/metrics` says that Kafka is not
//! taking messages (its latest delivery failed) or that messages wait in
//! the disk buffer: WARNING. 503 is CRITICAL, anything else or no answer
//! UNKNOWN.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use super::{Outcome, State};
use crate::logs::metrics::{BUFFER_BYTES, DELIVERY_FAILING};

/// The check's name in its status line.
pub const NAME: &str = "LOGS";

/// The longest `/healthz` answer read.
const MAX_ANSWER: u64 = 64 * 1024;
/// The longest `/metrics` answer read.
const MAX_METRICS: u64 = 1024 * 1024;

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
    let summary = format!("{address}/healthz: {body}");
    match status {
        Some(200) => buffered(address, timeout, summary),
        Some(503) => Outcome {
            name: NAME,
            state: State::Critical,
            summary,
            perfdata: Vec::new(),
        },
        _ => Outcome::unknown(
            NAME,
            format!("{address}/healthz answered {status:?}, not 200 or 503: {body}"),
        ),
    }
}

/// A healthy daemon's verdict, from its `/metrics`: WARNING while Kafka
/// is not taking messages or any wait in the disk buffer. When `/metrics`
/// cannot be read, the health alone stands (OK), and the summary says so.
fn buffered(address: SocketAddr, timeout: Duration, healthy: String) -> Outcome {
    let request = format!("GET /metrics HTTP/1.0\r\nHost: {address}\r\n\r\n");
    let gauges = super::ask(NAME, address, timeout, request.as_bytes(), MAX_METRICS)
        .map_err(|unknown| unknown.summary)
        .and_then(|answer| Ok((gauge(&answer, BUFFER_BYTES)?, gauge(&answer, DELIVERY_FAILING)?)));
    let (bytes, failing) = match gauges {
        Ok(gauges) => gauges,
        Err(why) => {
            return Outcome {
                name: NAME,
                state: State::Ok,
                summary: format!("{healthy} ({why})"),
                perfdata: Vec::new(),
            };
        }
    };
    let mut troubles = Vec::new();
    if failing > 0.0 {
        troubles.push("Kafka is not taking messages (its latest delivery failed)".to_owned());
    }
    if bytes > 0.0 {
        troubles.push(format!("{bytes} bytes wait in the disk buffer"));
    }
    Outcome {
        name: NAME,
        state: if troubles.is_empty() { State::Ok } else { State::Warning },
        summary: if troubles.is_empty() {
            healthy
        } else {
            format!("{healthy}, but {}", troubles.join("; "))
        },
        perfdata: vec![super::Perfdata {
            label: "buffer",
            value: bytes,
            unit: "B",
            warning: Some(0.0),
            critical: None,
        }],
    }
}

/// The value of the unlabelled series `name` in a text exposition.
fn gauge(exposition: &str, name: &str) -> Result<f64, String> {
    exposition
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
        .ok_or_else(|| format!("no {name} in its /metrics"))
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
