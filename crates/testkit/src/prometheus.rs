//! A real Prometheus server (Debian 12's 2.42, extracted into the cache by
//! `scripts/promtool.sh`, or `$PROMETHEUS_BIN`) scraping loopback targets
//! every second, and its query API. Dropping it stops it.

use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// The Prometheus binary: `$PROMETHEUS_BIN`, else the cached one.
pub fn prometheus_binary() -> PathBuf {
    crate::cached_binary("PROMETHEUS_BIN", "prometheus-2.42/usr/bin/prometheus")
}

/// A running server.
pub struct Prometheus {
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
}

/// One sample of a query's answer: its labels and value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Every label, `__name__` included.
    pub labels: serde_json::Map<String, serde_json::Value>,
    /// The value.
    pub value: f64,
}

impl Prometheus {
    /// Starts a server scraping `targets` (`127.0.0.1:PORT`) at `path`
    /// every second, as job `haproxide`, and waits until it is ready.
    pub fn start(targets: &[String], path: &str) -> Prometheus {
        let dir = tempfile::Builder::new()
            .prefix("haproxide-prometheus-")
            .tempdir()
            .expect("temp dir");
        let quoted: Vec<String> = targets.iter().map(|target| format!("'{target}'")).collect();
        std::fs::write(
            dir.path().join("prometheus.yml"),
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: haproxide\n    metrics_path: '{path}'\n    static_configs:\n      - targets: [{}]\n",
                quoted.join(", ")
            ),
        )
        .expect("prometheus.yml");
        let port = crate::free_port();
        let child = crate::spawn_peer(
            Command::new(prometheus_binary())
                .arg(format!("--config.file={}", dir.path().join("prometheus.yml").display()))
                .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
                .arg(format!("--web.listen-address=127.0.0.1:{port}")),
            &dir.path().join("prometheus.log"),
            "scripts/promtool.sh",
        );
        let prometheus = Prometheus {
            dir,
            port,
            child: Some(child),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while crate::http::loopback_request(port, "GET", "/-/ready", "", "")
            .map(|(status, _)| status)
            .ok()
            != Some(200)
        {
            assert!(
                Instant::now() < deadline,
                "Prometheus not ready after 30 s: {}",
                prometheus.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        prometheus
    }

    /// Its log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// The instant vector `expr` evaluates to now.
    pub fn query(&self, expr: &str) -> Vec<Sample> {
        let path = format!("/api/v1/query?query={}", percent_encode(expr));
        let (status, body) = crate::http::loopback_request(self.port, "GET", &path, "", "").expect("query");
        assert_eq!(status, 200, "{expr}: {body}");
        let answer: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        answer["data"]["result"]
            .as_array()
            .expect("a vector")
            .iter()
            .map(|sample| Sample {
                labels: sample["metric"].as_object().cloned().unwrap_or_default(),
                value: sample["value"][1]
                    .as_str()
                    .and_then(|value| value.parse().ok())
                    .expect("a value"),
            })
            .collect()
    }

    /// Whether every target's last scrape succeeded (`up == 1`).
    pub fn targets_up(&self) -> bool {
        let up = self.query("up");
        !up.is_empty() && up.iter().all(|sample| sample.value == 1.0)
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `text` as a URL query value.
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|byte| {
            if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
                char::from(byte).to_string()
            } else {
                format!("%{byte:02X}")
            }
        })
        .collect()
}
