//! What several test programs share: which metric paths a cluster round
//! sums, and a column's sum over instances' `show stat`.

// Each test program uses what it needs of this.
#![allow(dead_code)]

use haproxy::ShowStat;

/// `column` of the row `pxname`/`svname`, summed over `replies` (an empty
/// cell counts 0).
pub fn stat_sum(replies: &[ShowStat], pxname: &str, svname: &str, column: &str) -> f64 {
    replies
        .iter()
        .flat_map(|stat| {
            stat.rows()
                .filter(|row| row.pxname() == pxname && row.svname() == svname)
                .map(|row| row.int(column))
        })
        .map(|value| {
            value
                .unwrap_or_else(|error| panic!("{pxname}/{svname} {column}: {error}"))
                .unwrap_or(0) as f64
        })
        .sum()
}

/// Whether haproxystats' rules sum the metric at `path` (below
/// `<namespace>.<host>.haproxy.`) across processes, and so a cluster's
/// across hosts; else it is averaged, or a statistic of its own
/// (`TotalServers` counts the servers named in any process once).
pub fn summed(path: &str) -> bool {
    use haproxide::stats::{aggregate::DAEMON_SUMMED, metric_names};
    let metric = path.rsplit('.').next().unwrap_or_default();
    if path.starts_with("haproxystats.") || metric == "TotalServers" {
        false
    } else if path.starts_with("frontend.") {
        true
    } else if path.contains(".server.") {
        !metric_names::SERVER_AVG.contains(&metric) && !metric_names::SERVER_AVG_TIME.contains(&metric)
    } else if path.starts_with("backend.") {
        !metric_names::BACKEND_AVG.contains(&metric) && !metric_names::BACKEND_AVG_TIME.contains(&metric)
    } else {
        DAEMON_SUMMED.contains(&metric)
    }
}
