//! A real Consul agent in dev mode, on loopback ports of its own, for the
//! backends tests: Debian bullseye's 1.8.7 (`$CONSUL_BIN`, else where
//! `scripts/consul.sh` puts it in the cache). Services are registered with
//! the agent's HTTP API, with an HTTP check against a real [`HttpServer`]
//! or a TTL check the test sets. Dropping it stops the agent.
//!
//! [`HttpServer`]: crate::HttpServer

use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// The Consul binary: `$CONSUL_BIN`, else the cached one.
pub fn consul_binary() -> PathBuf {
    crate::cached_binary("CONSUL_BIN", "consul-1.8.7/usr/bin/consul")
}

/// How an instance's health is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Consul asks `http://127.0.0.1:PORT/` every 500 ms.
    Http,
    /// The test says pass or fail ([`Consul::set_check`]); passing at first.
    Ttl,
}

/// A running agent.
pub struct Consul {
    dir: tempfile::TempDir,
    ports: [u16; 6],
    child: Option<Child>,
}

impl Consul {
    /// Starts an agent and waits for its leader.
    pub fn start() -> Consul {
        let dir = tempfile::Builder::new()
            .prefix("haproxide-consul-")
            .tempdir()
            .expect("temp dir");
        let mut consul = Consul {
            dir,
            ports: [0; 6],
            child: None,
        };
        // Ports that stay free while it is stopped (see `restart`).
        consul.ports = std::array::from_fn(|_| crate::port_outside_ephemeral_range());
        consul.spawn();
        consul
    }

    /// `127.0.0.1:PORT` of its HTTP API.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.ports[0])
    }

    fn spawn(&mut self) {
        let [http, dns, serf_lan, serf_wan, server, grpc] = self.ports;
        let child = crate::spawn_peer(
            Command::new(consul_binary())
                .args([
                    "agent",
                    "-dev",
                    "-node=testnode",
                    "-bind=127.0.0.1",
                    "-client=127.0.0.1",
                    "-log-level=warn",
                ])
                .arg(format!("-http-port={http}"))
                .arg(format!("-dns-port={dns}"))
                .arg(format!("-serf-lan-port={serf_lan}"))
                .arg(format!("-serf-wan-port={serf_wan}"))
                .arg(format!("-server-port={server}"))
                .arg(format!("-grpc-port={grpc}"))
                .arg(format!("-data-dir={}", self.dir.path().join("data").display())),
            &self.dir.path().join("consul.log"),
            "scripts/consul.sh",
        );
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok((200, body)) = self.try_request("GET", "/v1/status/leader", "")
                && body.trim() != "\"\""
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let log = std::fs::read_to_string(self.dir.path().join("consul.log")).unwrap_or_default();
        panic!("Consul elected no leader within 20 s:\n{log}");
    }

    /// Stops the agent (its ports then refuse connections).
    pub fn stop(&mut self) {
        if let Some(child) = self.child.take() {
            crate::process::stop_and_wait(child);
        }
    }

    /// Starts it again on the same ports and data directory: the agent
    /// restores the services registered with it.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// Registers instance `id` of `service` on 127.0.0.1:`port`.
    pub fn register(&self, id: &str, service: &str, port: u16, check: Check) {
        let check = match check {
            Check::Http => {
                format!(r#"{{"HTTP": "http://127.0.0.1:{port}/", "Interval": "500ms", "Status": "passing"}}"#)
            }
            Check::Ttl => r#"{"TTL": "1h", "Status": "passing"}"#.to_owned(),
        };
        let body = format!(
            r#"{{"ID": "{id}", "Name": "{service}", "Address": "127.0.0.1", "Port": {port}, "Check": {check}}}"#
        );
        self.expect_ok("PUT", "/v1/agent/service/register", &body);
    }

    /// Removes instance `id`.
    pub fn deregister(&self, id: &str) {
        self.expect_ok("PUT", &format!("/v1/agent/service/deregister/{id}"), "");
    }

    /// Sets instance `id`'s TTL check passing or failing.
    pub fn set_check(&self, id: &str, passing: bool) {
        let verdict = if passing { "pass" } else { "fail" };
        self.expect_ok("PUT", &format!("/v1/agent/check/{verdict}/service:{id}"), "");
    }

    /// The passing instances' ports of `service`, as Consul answers now.
    pub fn passing_ports(&self, service: &str) -> Vec<u16> {
        let (_, body) = self.expect_ok("GET", &format!("/v1/health/service/{service}?passing=1"), "");
        let mut ports: Vec<u16> = body
            .split("\"Port\":")
            .skip(1)
            .filter_map(|rest| {
                rest.trim_start()
                    .split(|c: char| !c.is_ascii_digit())
                    .next()?
                    .parse()
                    .ok()
            })
            .filter(|port| *port != 0)
            .collect();
        ports.sort_unstable();
        ports
    }

    fn expect_ok(&self, method: &str, path: &str, body: &str) -> (u16, String) {
        match self.try_request(method, path, body) {
            Ok((200, answer)) => (200, answer),
            other => panic!("Consul {method} {path}: {other:?}"),
        }
    }

    fn try_request(&self, method: &str, path: &str, body: &str) -> std::io::Result<(u16, String)> {
        crate::http::loopback_request(self.ports[0], method, path, "", body)
    }
}

impl Drop for Consul {
    fn drop(&mut self) {
        self.stop();
    }
}
