//! Destinations of `process`: one small trait, one file per destination.
//!
//! A sink receives one snapshot's metrics (already rendered as Graphite
//! plaintext lines, which every current destination stores or forwards) and
//! returns once they are safely handed over. `process` deletes a snapshot's
//! directory only after every enabled sink returned `Ok`, so a failing sink
//! keeps the directory in the spool for a retry.

pub mod local_store;

use std::fmt::Write as _;
use std::future::Future;
use std::pin::Pin;

use crate::process::aggregate::Metric;

/// A boxed future a sink returns.
pub type Delivery<'a> = Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send + 'a>>;

/// One snapshot's output.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// The round's directory name (`1700000000` or `1700000000.1`).
    pub round: String,
    /// Its timestamp.
    pub timestamp: u64,
    /// `<prefix>.<path> <value> <timestamp>\n` lines.
    pub lines: String,
    /// Number of lines.
    pub count: usize,
}

impl Snapshot {
    /// Renders `metrics` under `prefix` (e.g. `loadbalancers.lb1.haproxy`).
    pub fn render(round: &str, timestamp: u64, prefix: &str, metrics: &[Metric]) -> Snapshot {
        let mut lines = String::with_capacity(metrics.len() * 64);
        for metric in metrics {
            let _ = write!(lines, "{prefix}.{} ", metric.path);
            write_value(&mut lines, metric.value);
            let _ = writeln!(lines, " {timestamp}");
        }
        Snapshot {
            round: round.to_owned(),
            timestamp,
            lines,
            count: metrics.len(),
        }
    }
}

/// Integral values as integers (`40`, not `40.0`), others in their shortest
/// exact form (`10.606601717798213`).
fn write_value(out: &mut String, value: f64) {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        let _ = write!(out, "{}", value as i64);
    } else {
        let _ = write!(out, "{value}");
    }
}

/// A destination of snapshots.
pub trait Sink: Send + Sync {
    /// Its name in logs (`local-store`, `graphite`).
    fn name(&self) -> &'static str;

    /// Hands `snapshot` over; `Ok` only once it is safe.
    fn deliver<'a>(&'a self, snapshot: &'a Snapshot) -> Delivery<'a>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_use_integers_for_integral_values() {
        let metrics = vec![
            Metric {
                path: "backend.be.stot".into(),
                value: 40.0,
            },
            Metric {
                path: "daemon.StdCpuUsagePct".into(),
                value: 10.606601717798213,
            },
            Metric {
                path: "daemon.Idle_pct".into(),
                value: 82.5,
            },
            Metric {
                path: "daemon.x".into(),
                value: -3.0,
            },
        ];
        let snapshot = Snapshot::render("1700000000.1", 1_700_000_000, "lb.haproxy", &metrics);
        assert_eq!(
            snapshot.lines,
            "lb.haproxy.backend.be.stot 40 1700000000\nlb.haproxy.daemon.StdCpuUsagePct 10.606601717798213 1700000000\n\
             lb.haproxy.daemon.Idle_pct 82.5 1700000000\nlb.haproxy.daemon.x -3 1700000000\n"
        );
        assert_eq!(snapshot.count, 4);
    }
}
