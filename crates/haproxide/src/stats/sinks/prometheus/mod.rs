//! The `prometheus` sink and its section: the latest aggregated round (of
//! each load balancer, when `process` runs centrally) served on
//! `bind`/`path` for Prometheus to scrape, named as HAProxy's own exporter
//! names it ([`families`]), so dashboards made for PROMEX work unchanged,
//! but over every HAProxy process at once.
//!
//! A round is rendered once, when it arrives ([`exposition::render`]);
//! a scrape only puts the rendered lines together, in Prometheus' text
//! format or, when `Accept` asks for it, OpenMetrics. Delivering a round
//! means keeping it in memory: Prometheus pulls, so a round it has not
//! scraped is replaced by the next, and the spool never waits for it. If
//! `bind` cannot be listened on, that is logged and tried again every 5 s.
//!
//! `haproxide_prometheus_*` series say what the sink itself did: scrapes,
//! rounds taken, the time of each host's round and how long rendering took.

pub mod exposition;
pub mod families;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::Context;

use super::{Delivery, Sink, Snapshot};
use crate::config::declare::{self, DefaultValue, Key, Parser, Section};
use crate::config::{Config, ConfigError};
use crate::runtime::http::{Request, Response, serve};
use exposition::{Format, Pieces, Rendered};
use families::{Family, Kind};

/// `[prometheus] enabled`.
const ENABLED: Key<bool> = Key::new(
    "enabled",
    declare::BOOL,
    DefaultValue::Fallback("false"),
    "`true`: serve the latest round for Prometheus to scrape",
);
/// `[prometheus] bind`.
const BIND: Key<SocketAddr> = Key::new(
    "bind",
    declare::LISTEN_ADDRESS,
    DefaultValue::Fallback("127.0.0.1:9101"),
    "where `path` is served (`:9101` is every address)",
);
/// `[prometheus] path`.
const PATH: Key<String> = Key::new(
    "path",
    Parser {
        kind: "URL path",
        parse: |text| {
            if !text.starts_with('/') || text.contains(char::is_whitespace) {
                return Err("must start with / and have no spaces".into());
            }
            Ok(text.to_owned())
        },
    },
    DefaultValue::Fallback("/metrics"),
    "the path of the exposition",
);
/// `[prometheus] host-label`.
const HOST_LABEL: Key<bool> = Key::new(
    "host-label",
    declare::BOOL,
    DefaultValue::Unset("true with `[process] source = kafka` or a `[cluster:NAME]`, else false"),
    "give every series a `host` label, the load balancer (or cluster) whose round it is, and keep the latest round of each; `false`: only the latest round",
);

/// `[prometheus]`: the Prometheus sink.
pub const SECTION: Section = Section::of(
    "prometheus",
    "the latest round served for Prometheus, named as HAProxy's own exporter names it",
    &[&ENABLED, &BIND, &PATH, &HOST_LABEL],
);

/// `[prometheus]`, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrometheusSettings {
    bind: SocketAddr,
    path: String,
    host_label: bool,
}

impl PrometheusSettings {
    /// `None` unless `enabled = true`; `host_label_default` when `host-label` is not set.
    pub fn from_config(config: &Config, host_label_default: bool) -> Result<Option<PrometheusSettings>, ConfigError> {
        if !config.get(&SECTION, &ENABLED)? {
            return Ok(None);
        }
        Ok(Some(PrometheusSettings {
            bind: config.get(&SECTION, &BIND)?,
            path: config.get(&SECTION, &PATH)?,
            host_label: config.get_opt(&SECTION, &HOST_LABEL)?.unwrap_or(host_label_default),
        }))
    }
}

/// The latest rounds and the sink's own counters, shared with the server.
#[derive(Default)]
struct Latest {
    /// Host (empty without `host-label`) → its latest round.
    rounds: Mutex<BTreeMap<String, Held>>,
    scrapes: AtomicU64,
    rounds_taken: AtomicU64,
}

/// A host's latest round.
struct Held {
    timestamp: u64,
    rendered: Rendered,
    render_seconds: f64,
}

impl Latest {
    fn rounds(&self) -> MutexGuard<'_, BTreeMap<String, Held>> {
        crate::runtime::unpoisoned(self.rounds.lock(), "the Prometheus sink's rounds")
    }

    /// The whole exposition in `format`, in pieces.
    fn exposition(&self, format: Format, host_label: bool) -> Vec<Arc<Vec<u8>>> {
        let scrapes = self.scrapes.fetch_add(1, Ordering::Relaxed) + 1;
        let rounds = self.rounds();
        let mut pieces = Pieces::default();
        exposition::assemble(&mut pieces, rounds.values().map(|held| &held.rendered), format);
        let out = pieces.text();
        let own = |out: &mut Vec<u8>, family: &Family, samples: &mut dyn Iterator<Item = (Option<&str>, f64)>| {
            exposition::write_header(out, family, format);
            for (host, value) in samples {
                out.extend_from_slice(family.name.as_bytes());
                if let Some(host) = host.filter(|_| host_label) {
                    out.extend_from_slice(b"{host=\"");
                    exposition::escape_into(out, host);
                    out.extend_from_slice(b"\"}");
                }
                out.push(b' ');
                exposition::write_value(out, value);
                out.push(b'\n');
            }
        };
        own(out, &SCRAPES, &mut std::iter::once((None, scrapes as f64)));
        own(
            out,
            &ROUNDS,
            &mut std::iter::once((None, self.rounds_taken.load(Ordering::Relaxed) as f64)),
        );
        if !rounds.is_empty() {
            own(
                out,
                &ROUND_TIMESTAMP,
                &mut rounds
                    .iter()
                    .map(|(host, held)| (Some(host.as_str()), held.timestamp as f64)),
            );
            own(
                out,
                &RENDER_SECONDS,
                &mut rounds
                    .iter()
                    .map(|(host, held)| (Some(host.as_str()), held.render_seconds)),
            );
        }
        if format == Format::OpenMetrics {
            out.extend_from_slice(b"# EOF\n");
        }
        pieces.finish()
    }
}

const SCRAPES: Family = Family {
    name: "haproxide_prometheus_scrapes_total",
    kind: Kind::Counter,
    help: "Scrapes served, this one included",
};
const ROUNDS: Family = Family {
    name: "haproxide_prometheus_rounds_total",
    kind: Kind::Counter,
    help: "Rounds taken since process started",
};
const ROUND_TIMESTAMP: Family = Family {
    name: "haproxide_prometheus_round_timestamp_seconds",
    kind: Kind::Gauge,
    help: "When the round served was pulled (epoch seconds), by host",
};
const RENDER_SECONDS: Family = Family {
    name: "haproxide_prometheus_render_seconds",
    kind: Kind::Gauge,
    help: "How long the round served took to render, by host",
};

/// Serves the latest rounds to Prometheus.
pub struct Prometheus {
    settings: PrometheusSettings,
    latest: Arc<Latest>,
}

impl Prometheus {
    /// A sink serving on `settings.bind` once started.
    pub fn new(settings: PrometheusSettings) -> Prometheus {
        Prometheus {
            settings,
            latest: Arc::new(Latest::default()),
        }
    }
}

impl Sink for Prometheus {
    fn name(&self) -> &'static str {
        "prometheus"
    }

    fn start(&self) {
        let (bind, path, host_label) = (self.settings.bind, self.settings.path.clone(), self.settings.host_label);
        let latest = Arc::clone(&self.latest);
        tokio::spawn(async move {
            let listener = loop {
                match tokio::net::TcpListener::bind(bind).await {
                    Ok(listener) => break listener,
                    Err(error) => {
                        tracing::error!("prometheus: cannot listen on {bind}: {error}; trying again in 5 s");
                        tokio::time::sleep(Duration::from_secs(5)).await;
                    }
                }
            };
            let serving = listener.local_addr().map_or(bind, |address| address);
            tracing::info!("prometheus: serving {path} on {serving}");
            serve(listener, move |request: &Request<'_>| {
                if request.path != path {
                    return Response::text(404, format!("try {path}\n"));
                }
                let format = Format::accepted(request.accept);
                Response {
                    status: 200,
                    content_type: format.content_type(),
                    body: latest.exposition(format, host_label),
                }
            })
            .await;
        });
    }

    fn takes_extended_metrics(&self) -> bool {
        true
    }

    fn pulled(&self) -> bool {
        true
    }

    fn deliver(&self, snapshot: Arc<Snapshot>) -> Delivery<'_> {
        let latest = Arc::clone(&self.latest);
        let host_label = self.settings.host_label;
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                let started = Instant::now();
                let host = snapshot.batch.host().unwrap_or_default().to_owned();
                let rendered = exposition::render(&snapshot.batch, host_label.then_some(host.as_str()));
                let held = Held {
                    timestamp: snapshot.batch.timestamp(),
                    rendered,
                    render_seconds: started.elapsed().as_secs_f64(),
                };
                let key = if host_label { host } else { String::new() };
                let mut rounds = latest.rounds();
                // A round older than the one held (a backlog replayed out of order) does not replace it.
                if rounds
                    .get(&key)
                    .is_none_or(|current| current.timestamp <= held.timestamp)
                {
                    rounds.insert(key, held);
                }
                latest.rounds_taken.fetch_add(1, Ordering::Relaxed);
            })
            .await
            .context("the Prometheus renderer stopped")
        })
    }
}
