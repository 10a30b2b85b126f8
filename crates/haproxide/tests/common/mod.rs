//! What several test programs share: which metric paths a cluster round sums.

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
