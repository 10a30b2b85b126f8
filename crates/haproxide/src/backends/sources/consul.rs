//! Consul as a discovery source: `GET /v1/health/service/<service>` (the
//! health endpoint, where `passing` filters out instances failing a check,
//! unlike the catalog endpoint EP2 used), with `tag` filters, `dc`, the ACL
//! token (`X-Consul-Token`, from the configuration or `CONSUL_HTTP_TOKEN`),
//! each instance's `Service.Address`/`Service.Port` and the node's `Address`
//! when the service has none.
//!
//! With `wait` > 0 it uses **blocking queries**: `index` is the last
//! `X-Consul-Index`, so Consul answers as soon as the list changes (or at
//! `wait`). As Consul's documentation advises, an index that goes backwards
//! is reset to 0, one that is not above 0 is taken as 1, and queries are
//! spaced at least [`MIN_SPACING`] apart. After an error the next query does
//! not block: a restarted Consul starts its index again from the beginning. With `wait = 0` it polls every
//! `poll-interval`. Errors back off from 1 s to 30 s ([`super::Health`]) and keep the last list.

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::time::Duration;

use serde::Deserialize;

use super::{Found, Health, Published, Source, describe_http_error, publish_if_changed};

/// The shortest time between two queries, so a flapping service cannot
/// turn the loop into a busy one.
pub const MIN_SPACING: Duration = Duration::from_millis(50);

/// What to ask Consul.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsulQuery {
    /// `host:port` of the agent's HTTP API.
    pub address: String,
    /// The service.
    pub service: String,
    /// Only instances whose checks all pass.
    pub passing: bool,
    /// Instances must have every one of these tags.
    pub tags: Vec<String>,
    /// The datacenter (else the agent's own).
    pub datacenter: Option<String>,
    /// The ACL token.
    pub token: Option<String>,
    /// Blocking-query wait (0: plain polling).
    pub wait: Duration,
    /// The pause between polls when `wait` is 0.
    pub poll_interval: Duration,
    /// Bound on a non-blocking request.
    pub timeout: Duration,
}

/// The source.
#[derive(Debug)]
pub struct ConsulSource {
    query: ConsulQuery,
    client: reqwest::Client,
}

impl ConsulSource {
    /// A source asking `query` (builds the HTTP client, sends nothing).
    pub fn new(query: ConsulQuery) -> anyhow::Result<ConsulSource> {
        let client = reqwest::Client::builder().no_proxy().build()?;
        Ok(ConsulSource { query, client })
    }

    /// The URL for a query at `index`.
    fn url(&self, index: u64) -> Result<reqwest::Url, String> {
        let query = &self.query;
        let mut url = reqwest::Url::parse(&format!("http://{}/v1/health/service/", query.address))
            .map_err(|error| format!("consul-address {:?}: {error}", query.address))?;
        url.path_segments_mut()
            .map_err(|()| format!("consul-address {:?} cannot be a base URL", query.address))?
            .pop_if_empty()
            .push(&query.service);
        {
            let mut pairs = url.query_pairs_mut();
            if query.passing {
                pairs.append_pair("passing", "1");
            }
            for tag in &query.tags {
                pairs.append_pair("tag", tag);
            }
            if let Some(datacenter) = &query.datacenter {
                pairs.append_pair("dc", datacenter);
            }
            if !query.wait.is_zero() && index > 0 {
                pairs.append_pair("index", &index.to_string());
                pairs.append_pair("wait", &format!("{}ms", query.wait.as_millis()));
            }
        }
        Ok(url)
    }

    /// One query: the instances and the new index.
    async fn fetch(&self, index: u64) -> Result<(Vec<Found>, u64), String> {
        let url = self.url(index)?;
        // Consul adds up to wait/16 of jitter to a blocking query.
        let limit = self.query.timeout + self.query.wait + self.query.wait / 16;
        let mut request = self.client.get(url).timeout(limit);
        if let Some(token) = &self.query.token {
            request = request.header("X-Consul-Token", token);
        }
        let response = request.send().await.map_err(|error| describe_http_error(&error))?;
        let status = response.status();
        let new_index = response
            .headers()
            .get("X-Consul-Index")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse::<u64>().ok());
        let body = response.bytes().await.map_err(|error| describe_http_error(&error))?;
        if !status.is_success() {
            let text = String::from_utf8_lossy(&body[..body.len().min(200)]).trim().to_owned();
            return Err(format!("HTTP {status}: {text}"));
        }
        let found = parse_health(&body)?;
        Ok((found, new_index.unwrap_or(0)))
    }
}

/// The next index, as Consul advises: backwards resets to 0, 0 becomes 1.
pub fn next_index(previous: u64, answered: u64) -> u64 {
    if answered < previous { 0 } else { answered.max(1) }
}

impl Source for ConsulSource {
    fn describe(&self) -> String {
        format!("consul {} service {}", self.query.address, self.query.service)
    }

    fn run(self: Box<Self>, publish: Published) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(async move {
            let mut index = 0;
            let mut health = Health::default();
            while !publish.is_closed() {
                let started = tokio::time::Instant::now();
                match self.fetch(index).await {
                    Ok((found, answered)) => {
                        health.answered(&self.describe());
                        index = next_index(index, answered);
                        if publish_if_changed(&publish, found) {
                            tracing::debug!("{}: new list at index {index}", self.describe());
                        }
                        let pause = if self.query.wait.is_zero() {
                            self.query.poll_interval
                        } else {
                            MIN_SPACING
                        };
                        tokio::time::sleep_until(started + pause).await;
                    }
                    Err(error) => {
                        // Consul may have restarted with its index back at the start: a
                        // blocking query at the old index would wait out `wait` for
                        // nothing, so the next query does not block.
                        index = 0;
                        tokio::time::sleep(health.failed(&self.describe(), error)).await;
                    }
                }
            }
        })
    }
}

#[derive(Deserialize)]
struct HealthEntry {
    #[serde(rename = "Node")]
    node: NodeEntry,
    #[serde(rename = "Service")]
    service: ServiceEntry,
}

#[derive(Deserialize)]
struct NodeEntry {
    #[serde(rename = "Address", default)]
    address: String,
}

#[derive(Deserialize)]
struct ServiceEntry {
    #[serde(rename = "ID", default)]
    id: String,
    #[serde(rename = "Address", default)]
    address: String,
    #[serde(rename = "Port", default)]
    port: u16,
}

/// Reads `/v1/health/service` JSON: every instance with an IP address
/// (the service's, else its node's). An instance whose address is a host
/// name or empty is an error naming it: HAProxy's runtime API takes
/// addresses only.
pub fn parse_health(body: &[u8]) -> Result<Vec<Found>, String> {
    let entries: Vec<HealthEntry> =
        serde_json::from_slice(body).map_err(|error| format!("not Consul health JSON: {error}"))?;
    let mut found = Vec::with_capacity(entries.len());
    for entry in entries {
        let address = if entry.service.address.is_empty() {
            &entry.node.address
        } else {
            &entry.service.address
        };
        let address: IpAddr = address.parse().map_err(|_| {
            format!(
                "instance {:?}: address {:?} is not an IP address",
                haproxy::excerpt(&entry.service.id),
                haproxy::excerpt(address)
            )
        })?;
        found.push(Found {
            address,
            port: (entry.service.port > 0).then_some(entry.service.port),
            weight: None,
        });
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_address_wins_over_the_node_address() {
        let body = br#"[
            {"Node": {"Node": "n1", "Address": "10.0.0.1"}, "Service": {"ID": "web1", "Address": "", "Port": 8080}, "Checks": []},
            {"Node": {"Node": "n2", "Address": "10.0.0.2"}, "Service": {"ID": "web2", "Address": "fd00::2", "Port": 8081}}
        ]"#;
        let found = parse_health(body).unwrap();
        assert_eq!(
            found,
            [
                Found {
                    address: "10.0.0.1".parse().unwrap(),
                    port: Some(8080),
                    weight: None
                },
                Found {
                    address: "fd00::2".parse().unwrap(),
                    port: Some(8081),
                    weight: None
                },
            ]
        );
        assert_eq!(parse_health(b"[]").unwrap(), []);
    }

    #[test]
    fn real_answers_of_consul_1_8_7() {
        let read = |name: &str| {
            let path = format!("{}/../../fixtures/consul-1.8.7/{name}", env!("CARGO_MANIFEST_DIR"));
            parse_health(&std::fs::read(&path).unwrap()).unwrap()
        };
        let local = "127.0.0.1".parse().unwrap();
        // web2 has no Service.Address: the node's is taken.
        assert_eq!(
            read("health_service_web.json"),
            [
                Found {
                    address: local,
                    port: Some(8081),
                    weight: None
                },
                Found {
                    address: local,
                    port: Some(8082),
                    weight: None
                },
            ]
        );
        assert_eq!(
            read("health_service_web_passing.json"),
            [Found {
                address: local,
                port: Some(8081),
                weight: None
            }]
        );
    }

    #[test]
    fn what_is_not_an_address_is_named() {
        let body = br#"[{"Node": {"Address": "10.0.0.1"}, "Service": {"ID": "web\n1", "Address": "web.example", "Port": 80}}]"#;
        assert_eq!(
            parse_health(body).unwrap_err(),
            "instance \"web\\n1\": address \"web.example\" is not an IP address"
        );
        assert!(
            parse_health(b"{\"error\": 1}")
                .unwrap_err()
                .starts_with("not Consul health JSON: ")
        );
    }

    #[test]
    fn indexes_follow_consuls_advice() {
        assert_eq!(next_index(0, 17), 17);
        assert_eq!(next_index(17, 17), 17);
        assert_eq!(next_index(17, 5), 0, "backwards: start again");
        assert_eq!(next_index(0, 0), 1, "never 0");
    }

    #[test]
    fn urls_are_encoded() {
        let source = ConsulSource::new(ConsulQuery {
            address: "127.0.0.1:8500".into(),
            service: "web api".into(),
            passing: true,
            tags: vec!["v1".into(), "a&b".into()],
            datacenter: Some("eu".into()),
            token: None,
            wait: Duration::from_secs(30),
            poll_interval: Duration::from_secs(5),
            timeout: Duration::from_secs(5),
        })
        .unwrap();
        assert_eq!(
            source.url(0).unwrap().as_str(),
            "http://127.0.0.1:8500/v1/health/service/web%20api?passing=1&tag=v1&tag=a%26b&dc=eu"
        );
        assert!(
            source
                .url(42)
                .unwrap()
                .as_str()
                .ends_with("&dc=eu&index=42&wait=30000ms")
        );
    }
}
