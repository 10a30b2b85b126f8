//! The exposition: a round's [`Batch`] rendered into the sample lines of
//! each family ([`Rendered`]), once per round, and the lines of every host's
//! latest round put together under one `# HELP`/`# TYPE` header a family,
//! in Prometheus' text format or OpenMetrics, at each scrape.
//!
//! Label values are escaped as both formats want (`\` → `\\`, `"` → `\"`,
//! newline → `\n`), so no proxy or server name can break the exposition.

use std::io::Write;
use std::sync::Arc;

use super::families::{FAMILIES, Family, Scope, Target, target};
use crate::stats::metrics::{Batch, Entity};

/// The content type of Prometheus' text format.
pub const TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";
/// The content type of OpenMetrics.
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Which of the two formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Prometheus' text format 0.0.4.
    Text,
    /// OpenMetrics 1.0.0, which a scraper asks for in `Accept`.
    OpenMetrics,
}

impl Format {
    /// The format a request's `Accept` header asks for.
    pub fn accepted(accept: &str) -> Format {
        if accept.contains("application/openmetrics-text") {
            Format::OpenMetrics
        } else {
            Format::Text
        }
    }

    /// Its content type.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Text => TEXT,
            Format::OpenMetrics => OPENMETRICS,
        }
    }
}

/// One round's sample lines, family by family (indexes of [`FAMILIES`]),
/// each block shared by every scrape that sends it.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Rendered {
    /// The sample lines of each family, in [`FAMILIES`] order.
    pub families: Vec<Arc<Vec<u8>>>,
    /// How many samples.
    pub samples: usize,
}

/// An exposition being put together: headers written here, the rounds'
/// blocks of lines shared as they are, never copied.
#[derive(Debug, Default)]
pub struct Pieces {
    done: Vec<Arc<Vec<u8>>>,
    open: Vec<u8>,
}

impl Pieces {
    /// Where text is written next.
    pub fn text(&mut self) -> &mut Vec<u8> {
        &mut self.open
    }

    /// Appends a shared block after the text written so far.
    pub fn share(&mut self, block: &Arc<Vec<u8>>) {
        if !self.open.is_empty() {
            self.done.push(Arc::new(std::mem::take(&mut self.open)));
        }
        self.done.push(Arc::clone(block));
    }

    /// The pieces, in order.
    pub fn finish(mut self) -> Vec<Arc<Vec<u8>>> {
        if !self.open.is_empty() {
            self.done.push(Arc::new(self.open));
        }
        self.done
    }
}

/// Renders the frontends, backends, servers and processes of `batch`; with
/// `host`, every sample gets a `host` label.
pub fn render(batch: &Batch, host: Option<&str>) -> Rendered {
    let mut families = vec![Vec::new(); FAMILIES.len()];
    let mut samples = 0;
    let host_label = host.map(|host| {
        let mut label = Vec::from(&b"host=\""[..]);
        escape_into(&mut label, host);
        label.push(b'"');
        label
    });
    let mut labels = Vec::with_capacity(128);
    for section in batch.sections().iter().chain(batch.extended_sections()) {
        // Each field's target for each scope, looked up once per section.
        let targets: Vec<[Option<Target>; 4]> = section
            .fields()
            .iter()
            .map(|field| {
                [Scope::Process, Scope::Frontend, Scope::Backend, Scope::Server].map(|scope| target(scope, field))
            })
            .collect();
        for (member, values) in section.rows() {
            let scope = match &member.entity {
                Entity::Daemon => Scope::Process,
                Entity::Frontend(_) => Scope::Frontend,
                Entity::Backend(_) => Scope::Backend,
                Entity::Server { .. } => Scope::Server,
                Entity::Pipeline | Entity::Process(_) | Entity::ServerAcrossBackends(_) => continue,
            };
            labels.clear();
            match &member.entity {
                Entity::Frontend(proxy) | Entity::Backend(proxy) => label(&mut labels, "proxy", proxy),
                Entity::Server { backend, server } => {
                    label(&mut labels, "proxy", backend);
                    label(&mut labels, "server", server);
                }
                _ => {}
            }
            if let Some(host) = &host_label {
                if !labels.is_empty() {
                    labels.push(b',');
                }
                labels.extend_from_slice(host);
            }
            for (value, targets) in values.iter().zip(&targets) {
                let Some(target) = targets[scope as usize] else {
                    continue;
                };
                if value.is_nan() {
                    continue;
                }
                let out = &mut families[target.family];
                out.extend_from_slice(FAMILIES[target.family].name.as_bytes());
                match (target.field.label, labels.is_empty()) {
                    (None, true) => {}
                    (None, false) => {
                        out.push(b'{');
                        out.extend_from_slice(&labels);
                        out.push(b'}');
                    }
                    (Some((name, value)), _) => {
                        out.push(b'{');
                        out.extend_from_slice(&labels);
                        if !labels.is_empty() {
                            out.push(b',');
                        }
                        out.extend_from_slice(name.as_bytes());
                        out.extend_from_slice(b"=\"");
                        out.extend_from_slice(value.as_bytes());
                        out.extend_from_slice(b"\"}");
                    }
                }
                out.push(b' ');
                write_value(out, value * target.field.scale);
                out.push(b'\n');
                samples += 1;
            }
        }
    }
    Rendered {
        families: families.into_iter().map(Arc::new).collect(),
        samples,
    }
}

/// Appends `name="value"` (escaped), after a comma unless it is the first.
fn label(labels: &mut Vec<u8>, name: &str, value: &str) {
    if !labels.is_empty() {
        labels.push(b',');
    }
    labels.extend_from_slice(name.as_bytes());
    labels.extend_from_slice(b"=\"");
    escape_into(labels, value);
    labels.push(b'"');
}

/// A label value as both formats escape it.
pub fn escape_into(out: &mut Vec<u8>, value: &str) {
    for byte in value.bytes() {
        match byte {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'"' => out.extend_from_slice(b"\\\""),
            b'\n' => out.extend_from_slice(b"\\n"),
            _ => out.push(byte),
        }
    }
}

/// A sample value: whole numbers without a fraction, others in Rust's
/// shortest form that reads back exactly, infinities as `+Inf`/`-Inf`.
pub fn write_value(out: &mut Vec<u8>, value: f64) {
    if value.is_infinite() {
        out.extend_from_slice(if value > 0.0 { b"+Inf" } else { b"-Inf" });
    } else if value.fract() == 0.0 && value.abs() < 1e15 {
        let _ = write!(out, "{}", value as i64);
    } else {
        let _ = write!(out, "{value}");
    }
}

/// Writes a family's `# HELP` and `# TYPE` lines in `format`.
pub fn write_header(out: &mut Vec<u8>, family: &Family, format: Format) {
    let name = match format {
        Format::Text => family.name,
        Format::OpenMetrics => family.openmetrics_name(),
    };
    let _ = write!(
        out,
        "# HELP {name} {}\n# TYPE {name} {}\n",
        family.help,
        family.kind.as_str()
    );
}

/// Every family with samples in any of `rounds`, each under one header,
/// the rounds' lines in the order given.
pub fn assemble<'a>(out: &mut Pieces, rounds: impl Iterator<Item = &'a Rendered> + Clone, format: Format) {
    for (index, family) in FAMILIES.iter().enumerate() {
        let mut lines = rounds
            .clone()
            .filter_map(|round| round.families.get(index))
            .filter(|lines| !lines.is_empty())
            .peekable();
        if lines.peek().is_none() {
            continue;
        }
        write_header(out.text(), family, format);
        for block in lines {
            out.share(block);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::metrics::Member;

    fn batch() -> Batch {
        let mut batch = Batch::new(1_700_000_000);
        batch
            .section(vec!["CumConns".into(), "Idle_pct".into(), "Uptime_sec".into()])
            .push(Member::ungrouped(Entity::Daemon), [12.0, 99.5, f64::NAN]);
        batch
            .section(vec!["bin".into(), "hrsp_2xx".into(), "rate".into(), "qcur".into()])
            .push(
                Member::ungrouped(Entity::Frontend("fe \"main\"\\\n".into())),
                [1e16, 7.0, 2.0, 5.0],
            );
        let servers = batch.section(vec!["stot".into(), "rtime".into(), "hrsp_5xx".into()]);
        servers.push(
            Member::ungrouped(Entity::Server {
                backend: "bé".into(),
                server: "s1".into(),
            }),
            [3.0, 25.0, 1.0],
        );
        batch.pipeline("TotalWallClockTime", 0.5);
        batch
    }

    fn text(rendered: &[&Rendered], format: Format) -> String {
        let mut out = Pieces::default();
        assemble(&mut out, rendered.iter().copied(), format);
        String::from_utf8(out.finish().iter().flat_map(|piece| piece.iter().copied()).collect()).unwrap()
    }

    #[test]
    fn a_batch_renders_as_promex_names_with_escaped_labels() {
        let rendered = render(&batch(), None);
        assert_eq!(rendered.samples, 8);
        assert_eq!(
            text(&[&rendered], Format::Text),
            "# HELP haproxy_process_connections_total Total number of connections on this worker process since started\n\
             # TYPE haproxy_process_connections_total counter\n\
             haproxy_process_connections_total 12\n\
             # HELP haproxy_process_idle_time_percent Percentage of last second spent waiting in the current worker thread\n\
             # TYPE haproxy_process_idle_time_percent gauge\n\
             haproxy_process_idle_time_percent 99.5\n\
             # HELP haproxy_frontend_bytes_in_total Total number of request bytes since process started\n\
             # TYPE haproxy_frontend_bytes_in_total counter\n\
             haproxy_frontend_bytes_in_total{proxy=\"fe \\\"main\\\"\\\\\\n\"} 10000000000000000\n\
             # HELP haproxy_frontend_http_responses_total Total number of HTTP responses with status 100-199 returned by this object since the worker process started\n\
             # TYPE haproxy_frontend_http_responses_total counter\n\
             haproxy_frontend_http_responses_total{proxy=\"fe \\\"main\\\"\\\\\\n\",code=\"2xx\"} 7\n\
             # HELP haproxy_frontend_current_session_rate Number of sessions per second over the last elapsed second\n\
             # TYPE haproxy_frontend_current_session_rate gauge\n\
             haproxy_frontend_current_session_rate{proxy=\"fe \\\"main\\\"\\\\\\n\"} 2\n\
             # HELP haproxy_server_sessions_total Total number of sessions since process started\n\
             # TYPE haproxy_server_sessions_total counter\n\
             haproxy_server_sessions_total{proxy=\"bé\",server=\"s1\"} 3\n\
             # HELP haproxy_server_http_responses_total Total number of HTTP responses with status 100-199 returned by this object since the worker process started\n\
             # TYPE haproxy_server_http_responses_total counter\n\
             haproxy_server_http_responses_total{proxy=\"bé\",server=\"s1\",code=\"5xx\"} 1\n\
             # HELP haproxy_server_response_time_average_seconds Avg. response time for last 1024 successful connections.\n\
             # TYPE haproxy_server_response_time_average_seconds gauge\n\
             haproxy_server_response_time_average_seconds{proxy=\"bé\",server=\"s1\"} 0.025\n"
        );
    }

    #[test]
    fn hosts_share_one_header_a_family_and_openmetrics_names_counters_without_total() {
        let lb1 = render(&batch(), Some("lb1"));
        let lb2 = render(&batch(), Some("lb\"2"));
        let exposition = text(&[&lb1, &lb2], Format::OpenMetrics);
        assert_eq!(
            exposition
                .matches("# TYPE haproxy_process_connections counter\n")
                .count(),
            1
        );
        assert!(exposition.contains(
            "haproxy_process_connections_total{host=\"lb1\"} 12\nhaproxy_process_connections_total{host=\"lb\\\"2\"} 12\n"
        ));
        assert!(exposition.contains("haproxy_server_sessions_total{proxy=\"bé\",server=\"s1\",host=\"lb1\"} 3\n"));
        assert!(
            exposition.contains(
                "haproxy_server_http_responses_total{proxy=\"bé\",server=\"s1\",host=\"lb1\",code=\"5xx\"} 1\n"
            )
        );
        assert!(exposition.contains("# TYPE haproxy_process_idle_time_percent gauge\n"));
        assert_eq!(
            Format::accepted("application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"),
            Format::OpenMetrics
        );
        assert_eq!(Format::accepted("*/*"), Format::Text);
    }

    #[test]
    fn values_keep_their_precision() {
        let written = |value: f64| {
            let mut out = Vec::new();
            write_value(&mut out, value);
            String::from_utf8(out).unwrap()
        };
        assert_eq!(written(0.0), "0");
        assert_eq!(written(-3.0), "-3");
        assert_eq!(written(0.001), "0.001");
        assert_eq!(written(1e15), "1000000000000000");
        assert_eq!(written(12345678.25), "12345678.25");
        assert_eq!(written(f64::INFINITY), "+Inf");
        assert_eq!(written(f64::NEG_INFINITY), "-Inf");
    }
}
