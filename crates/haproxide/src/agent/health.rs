//! Where the agent's health comes from: a service's HTTP health endpoint
//! (`source = http`), or this host's load and swap (`source = local`).

use std::time::Duration;

use super::formula::HealthReport;

/// What one poll found.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// A health report (HTTP 200 with a valid body, or the local host).
    Report(HealthReport),
    /// HTTP 503: the service asks for no new traffic.
    Unavailable,
    /// Nothing listens (connection refused, unknown host): the service is down.
    Down(String),
    /// No answer in time.
    Timeout(String),
    /// Any other HTTP status, a body that is not a health report, or another error.
    Failed(String),
}

/// A health source.
#[derive(Debug, Clone)]
pub enum HealthSource {
    /// `GET url`.
    Http(HttpHealth),
    /// `/proc/loadavg` (normalised by the CPU count) and `/proc/meminfo`.
    Local,
}

/// An HTTP health endpoint.
#[derive(Debug, Clone)]
pub struct HttpHealth {
    client: reqwest::Client,
    url: String,
    retries: u32,
    timeout: Duration,
}

impl HttpHealth {
    /// Polls `url`, each attempt bounded by `timeout`; connection failures
    /// and timeouts are tried again `retries` more times.
    pub fn new(url: &str, timeout: Duration, retries: u32) -> anyhow::Result<HttpHealth> {
        let client = reqwest::Client::builder().timeout(timeout).no_proxy().build()?;
        Ok(HttpHealth {
            client,
            url: url.to_owned(),
            retries,
            timeout,
        })
    }

    /// The endpoint.
    pub fn url(&self) -> &str {
        &self.url
    }

    async fn poll(&self) -> Outcome {
        let mut attempt = 0;
        loop {
            let outcome = self.attempt().await;
            let retry = matches!(outcome, Outcome::Down(_) | Outcome::Timeout(_));
            if !retry || attempt >= self.retries {
                return outcome;
            }
            attempt += 1;
        }
    }

    async fn attempt(&self) -> Outcome {
        let response = match self.client.get(&self.url).send().await {
            Ok(response) => response,
            Err(error) if error.is_timeout() => return Outcome::Timeout(format!("{error:#}")),
            Err(error) if error.is_connect() => return Outcome::Down(chain(&error)),
            Err(error) => return Outcome::Failed(chain(&error)),
        };
        match response.status().as_u16() {
            200 => match response.bytes().await {
                Ok(body) => match HealthReport::from_json(&body) {
                    Ok(report) => Outcome::Report(report),
                    Err(error) => Outcome::Failed(format!("HTTP 200 with a body that is no health report: {error}")),
                },
                Err(error) if error.is_timeout() => Outcome::Timeout(chain(&error)),
                Err(error) => Outcome::Failed(chain(&error)),
            },
            503 => Outcome::Unavailable,
            status => Outcome::Failed(format!("unexpected HTTP status {status}")),
        }
    }
}

/// An error with its causes, `a: b: c`.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

impl HealthSource {
    /// Polls once.
    pub async fn poll(&self) -> Outcome {
        match self {
            HealthSource::Http(http) => http.poll().await,
            HealthSource::Local => match local_report() {
                Ok(report) => Outcome::Report(report),
                Err(error) => Outcome::Failed(error),
            },
        }
    }

    /// The longest one poll may take: every attempt timing out.
    pub fn longest_poll(&self) -> Duration {
        match self {
            HealthSource::Http(http) => http.timeout * (http.retries + 1),
            HealthSource::Local => Duration::ZERO,
        }
    }

    /// What it polls, for logs.
    pub fn describe(&self) -> String {
        match self {
            HealthSource::Http(http) => http.url().to_owned(),
            HealthSource::Local => "this host's load and swap".into(),
        }
    }
}

/// This host as a health report: status `ready`, no connection usage, the
/// 1-minute load average per CPU as the load, and the swap in use.
fn local_report() -> Result<HealthReport, String> {
    let loadavg = std::fs::read_to_string("/proc/loadavg").map_err(|error| format!("/proc/loadavg: {error}"))?;
    let meminfo = std::fs::read_to_string("/proc/meminfo").map_err(|error| format!("/proc/meminfo: {error}"))?;
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    local_from(&loadavg, &meminfo, cpus)
}

fn local_from(loadavg: &str, meminfo: &str, cpus: usize) -> Result<HealthReport, String> {
    let load: f64 = loadavg
        .split_whitespace()
        .next()
        .and_then(|first| first.parse().ok())
        .ok_or_else(|| format!("/proc/loadavg: no load average in {loadavg:?}"))?;
    let kib = |key: &str| -> Result<f64, String> {
        meminfo
            .lines()
            .find_map(|line| line.strip_prefix(key)?.strip_prefix(':'))
            .and_then(|rest| rest.split_whitespace().next()?.parse::<f64>().ok())
            .ok_or_else(|| format!("/proc/meminfo: no {key}"))
    };
    Ok(HealthReport {
        status: "ready".into(),
        connection_usage_percent: 0.0,
        system_load: load / cpus as f64,
        swap_bytes_used: (kib("SwapTotal")? - kib("SwapFree")?) * 1024.0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_local_host_reads_load_per_cpu_and_swap_in_use() {
        let meminfo = "MemTotal:       24000000 kB\nSwapTotal:       2097148 kB\nSwapFree:        2097000 kB\n";
        let report = local_from("1.00 0.50 0.25 2/300 12345\n", meminfo, 2).unwrap();
        assert_eq!(report.system_load, 0.5);
        assert_eq!(report.swap_bytes_used, 148.0 * 1024.0);
        assert_eq!(report.status, "ready");
        let no_swap = "SwapTotal:       0 kB\nSwapFree:        0 kB\n";
        assert_eq!(local_from("0.00 0 0\n", no_swap, 4).unwrap().swap_bytes_used, 0.0);
        assert_eq!(
            local_from("x\n", no_swap, 1),
            Err("/proc/loadavg: no load average in \"x\\n\"".into())
        );
        assert_eq!(
            local_from("1\n", "MemTotal: 1 kB\n", 1),
            Err("/proc/meminfo: no SwapTotal".into())
        );
    }
}
