//! The Prometheus names of HAProxy's fields, as HAProxy's own exporter
//! (PROMEX, `addons/promex`) names them: which family each `show info`
//! field (`haproxy_process_*`) and each `show stat` field of a frontend,
//! backend or server (`haproxy_frontend_*`, `haproxy_backend_*`,
//! `haproxy_server_*`) goes to, its type, its help and its unit.
//!
//! Where PROMEX breaks the conventions haproxide is correct instead:
//! `FailedResolutions` is a counter named `haproxy_process_failed_resolutions_total`
//! (PROMEX 2.6 leaves out `_total`, which `promtool check metrics` flags).
//! Times HAProxy reports in milliseconds are given in seconds, as PROMEX
//! gives them. States are fields of their own in the batch (`status=UP`,
//! counted over the processes, see [`crate::stats::metric_names::States`])
//! and series with a `state` label here. Fields PROMEX leaves out that `process` reports get names in
//! its style: `rate` (`*_current_session_rate`), `req_rate`, `conn_rate`,
//! and a backend's `intercepted`.

use std::collections::HashMap;
use std::sync::LazyLock;

/// A family's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up (until the process restarts); its name ends with `_total`.
    Counter,
    /// Goes up and down.
    Gauge,
}

impl Kind {
    /// As `# TYPE` writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        }
    }
}

/// A metric family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Family {
    /// Its full name (`haproxy_frontend_bytes_in_total`).
    pub name: &'static str,
    /// Counter or gauge.
    pub kind: Kind,
    /// Its `# HELP` text.
    pub help: &'static str,
}

impl Family {
    const fn new(name: &'static str, kind: Kind, help: &'static str) -> Family {
        Family { name, kind, help }
    }

    /// Its name in OpenMetrics' `# TYPE` and `# HELP` lines: a counter's
    /// without the `_total` its samples carry.
    pub fn openmetrics_name(&self) -> &'static str {
        match self.kind {
            Kind::Counter => self.name.strip_suffix("_total").unwrap_or(self.name),
            Kind::Gauge => self.name,
        }
    }
}

/// Which kind of entity a row describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// The HAProxy processes (`show info`).
    Process,
    /// A frontend.
    Frontend,
    /// A backend.
    Backend,
    /// A server of a backend.
    Server,
}

/// Where one field of one scope goes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Field {
    scope: Scope,
    /// HAProxy's name of the field (`bin`, `CumConns`).
    name: &'static str,
    family: &'static str,
    /// What the value is multiplied by (milliseconds to seconds: 0.001).
    pub scale: f64,
    /// The label that tells this field from the others of its family: `code`
    /// of `http_responses_total`, `state` of `status`.
    pub label: Option<(&'static str, &'static str)>,
}

impl Field {
    const fn new(
        scope: Scope,
        name: &'static str,
        family: &'static str,
        scale: f64,
        label: Option<(&'static str, &'static str)>,
    ) -> Field {
        Field {
            scope,
            name,
            family,
            scale,
            label,
        }
    }
}

/// A field's family, as an index into [`FAMILIES`], and how to write it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Target {
    /// The family's index in [`FAMILIES`].
    pub family: usize,
    /// The field it comes from.
    pub field: &'static Field,
}

/// `(scope, field name)` → target.
static TARGETS: LazyLock<HashMap<(Scope, &'static str), Target>> = LazyLock::new(|| {
    let index: HashMap<&str, usize> = FAMILIES
        .iter()
        .enumerate()
        .map(|(position, family)| (family.name, position))
        .collect();
    FIELDS
        .iter()
        .filter_map(|field| {
            let family = *index.get(field.family)?;
            Some(((field.scope, field.name), Target { family, field }))
        })
        .collect()
});

/// Where the field `name` of a `scope` row goes, if PROMEX (or haproxide in
/// its style) has a family for it.
pub fn target(scope: Scope, name: &str) -> Option<Target> {
    TARGETS.get(&(scope, name)).copied()
}

/// Every family, in exposition order: process, frontend, backend, server.
#[rustfmt::skip]
pub const FAMILIES: &[Family] = &[
    Family::new("haproxy_process_nbthread", Kind::Gauge, "Number of started threads (global.nbthread)"),
    Family::new("haproxy_process_nbproc", Kind::Gauge, "Number of started worker processes (historical, always 1)"),
    Family::new("haproxy_process_relative_process_id", Kind::Gauge, "Relative worker process number (1)"),
    Family::new("haproxy_process_uptime_seconds", Kind::Gauge, "How long ago this worker process was started (seconds)"),
    Family::new("haproxy_process_start_time_seconds", Kind::Gauge, "Start time in seconds"),
    Family::new("haproxy_process_max_memory_bytes", Kind::Gauge, "Worker process's hard limit on memory usage in byes (-m on command line)"),
    Family::new("haproxy_process_pool_allocated_bytes", Kind::Gauge, "Amount of memory allocated in pools (in bytes)"),
    Family::new("haproxy_process_pool_used_bytes", Kind::Gauge, "Amount of pool memory currently used (in bytes)"),
    Family::new("haproxy_process_pool_failures_total", Kind::Counter, "Number of failed pool allocations since this worker was started"),
    Family::new("haproxy_process_max_fds", Kind::Gauge, "Hard limit on the number of per-process file descriptors"),
    Family::new("haproxy_process_max_sockets", Kind::Gauge, "Hard limit on the number of per-process sockets"),
    Family::new("haproxy_process_max_connections", Kind::Gauge, "Hard limit on the number of per-process connections (configured or imposed by Ulimit-n)"),
    Family::new("haproxy_process_hard_max_connections", Kind::Gauge, "Hard limit on the number of per-process connections (imposed by Memmax_MB or Ulimit-n)"),
    Family::new("haproxy_process_current_connections", Kind::Gauge, "Current number of connections on this worker process"),
    Family::new("haproxy_process_connections_total", Kind::Counter, "Total number of connections on this worker process since started"),
    Family::new("haproxy_process_requests_total", Kind::Counter, "Total number of requests on this worker process since started"),
    Family::new("haproxy_process_max_ssl_connections", Kind::Gauge, "Hard limit on the number of per-process SSL endpoints (front+back), 0=unlimited"),
    Family::new("haproxy_process_current_ssl_connections", Kind::Gauge, "Current number of SSL endpoints on this worker process (front+back)"),
    Family::new("haproxy_process_ssl_connections_total", Kind::Counter, "Total number of SSL endpoints on this worker process since started (front+back)"),
    Family::new("haproxy_process_max_pipes", Kind::Gauge, "Hard limit on the number of pipes for splicing, 0=unlimited"),
    Family::new("haproxy_process_pipes_used_total", Kind::Counter, "Current number of pipes in use in this worker process"),
    Family::new("haproxy_process_pipes_free_total", Kind::Counter, "Current number of allocated and available pipes in this worker process"),
    Family::new("haproxy_process_current_connection_rate", Kind::Gauge, "Number of front connections created on this worker process over the last second"),
    Family::new("haproxy_process_limit_connection_rate", Kind::Gauge, "Hard limit for ConnRate (global.maxconnrate)"),
    Family::new("haproxy_process_max_connection_rate", Kind::Gauge, "Highest ConnRate reached on this worker process since started (in connections per second)"),
    Family::new("haproxy_process_current_session_rate", Kind::Gauge, "Number of sessions created on this worker process over the last second"),
    Family::new("haproxy_process_limit_session_rate", Kind::Gauge, "Hard limit for SessRate (global.maxsessrate)"),
    Family::new("haproxy_process_max_session_rate", Kind::Gauge, "Highest SessRate reached on this worker process since started (in sessions per second)"),
    Family::new("haproxy_process_current_ssl_rate", Kind::Gauge, "Number of SSL connections created on this worker process over the last second"),
    Family::new("haproxy_process_limit_ssl_rate", Kind::Gauge, "Hard limit for SslRate (global.maxsslrate)"),
    Family::new("haproxy_process_max_ssl_rate", Kind::Gauge, "Highest SslRate reached on this worker process since started (in connections per second)"),
    Family::new("haproxy_process_current_frontend_ssl_key_rate", Kind::Gauge, "Number of SSL keys created on frontends in this worker process over the last second"),
    Family::new("haproxy_process_max_frontend_ssl_key_rate", Kind::Gauge, "Highest SslFrontendKeyRate reached on this worker process since started (in SSL keys per second)"),
    Family::new("haproxy_process_frontend_ssl_reuse", Kind::Gauge, "Percent of frontend SSL connections which did not require a new key"),
    Family::new("haproxy_process_current_backend_ssl_key_rate", Kind::Gauge, "Number of SSL keys created on backends in this worker process over the last second"),
    Family::new("haproxy_process_max_backend_ssl_key_rate", Kind::Gauge, "Highest SslBackendKeyRate reached on this worker process since started (in SSL keys per second)"),
    Family::new("haproxy_process_ssl_cache_lookups_total", Kind::Counter, "Total number of SSL session ID lookups in the SSL session cache on this worker since started"),
    Family::new("haproxy_process_ssl_cache_misses_total", Kind::Counter, "Total number of SSL session ID lookups that didn't find a session in the SSL session cache on this worker since started"),
    Family::new("haproxy_process_http_comp_bytes_in_total", Kind::Counter, "Number of bytes submitted to the HTTP compressor in this worker process over the last second"),
    Family::new("haproxy_process_http_comp_bytes_out_total", Kind::Counter, "Number of bytes emitted by the HTTP compressor in this worker process over the last second"),
    Family::new("haproxy_process_limit_http_comp", Kind::Gauge, "Limit of CompressBpsOut beyond which HTTP compression is automatically disabled"),
    Family::new("haproxy_process_current_zlib_memory", Kind::Gauge, "Amount of memory currently used by HTTP compression on the current worker process (in bytes)"),
    Family::new("haproxy_process_max_zlib_memory", Kind::Gauge, "Limit on the amount of memory used by HTTP compression above which it is automatically disabled (in bytes, see global.maxzlibmem)"),
    Family::new("haproxy_process_current_tasks", Kind::Gauge, "Total number of tasks in the current worker process (active + sleeping)"),
    Family::new("haproxy_process_current_run_queue", Kind::Gauge, "Total number of active tasks+tasklets in the current worker process"),
    Family::new("haproxy_process_idle_time_percent", Kind::Gauge, "Percentage of last second spent waiting in the current worker thread"),
    Family::new("haproxy_process_stopping", Kind::Gauge, "1 if the worker process is currently stopping, otherwise zero"),
    Family::new("haproxy_process_jobs", Kind::Gauge, "Current number of active jobs on the current worker process (frontend connections, master connections, listeners)"),
    Family::new("haproxy_process_unstoppable_jobs", Kind::Gauge, "Current number of unstoppable jobs on the current worker process (master connections)"),
    Family::new("haproxy_process_listeners", Kind::Gauge, "Current number of active listeners on the current worker process"),
    Family::new("haproxy_process_active_peers", Kind::Gauge, "Current number of verified active peers connections on the current worker process"),
    Family::new("haproxy_process_connected_peers", Kind::Gauge, "Current number of peers having passed the connection step on the current worker process"),
    Family::new("haproxy_process_dropped_logs_total", Kind::Counter, "Total number of dropped logs for current worker process since started"),
    Family::new("haproxy_process_busy_polling_enabled", Kind::Gauge, "1 if busy-polling is currently in use on the worker process, otherwise zero (config.busy-polling)"),
    Family::new("haproxy_process_failed_resolutions_total", Kind::Counter, "Total number of failed DNS resolutions in current worker process since started"),
    Family::new("haproxy_process_bytes_out_total", Kind::Counter, "Total number of bytes emitted by current worker process since started"),
    Family::new("haproxy_process_spliced_bytes_out_total", Kind::Counter, "Total number of bytes emitted by current worker process through a kernel pipe since started"),
    Family::new("haproxy_process_bytes_out_rate", Kind::Gauge, "Number of bytes emitted by current worker process over the last second"),
    Family::new("haproxy_process_recv_logs_total", Kind::Counter, "Total number of log messages received by log-forwarding listeners on this worker process since started"),
    Family::new("haproxy_frontend_current_sessions", Kind::Gauge, "Number of current sessions on the frontend, backend or server"),
    Family::new("haproxy_frontend_max_sessions", Kind::Gauge, "Highest value of current sessions encountered since process started"),
    Family::new("haproxy_frontend_limit_sessions", Kind::Gauge, "Frontend/listener/server's maxconn, backend's fullconn"),
    Family::new("haproxy_frontend_sessions_total", Kind::Counter, "Total number of sessions since process started"),
    Family::new("haproxy_frontend_bytes_in_total", Kind::Counter, "Total number of request bytes since process started"),
    Family::new("haproxy_frontend_bytes_out_total", Kind::Counter, "Total number of response bytes since process started"),
    Family::new("haproxy_frontend_requests_denied_total", Kind::Counter, "Total number of denied requests since process started"),
    Family::new("haproxy_frontend_responses_denied_total", Kind::Counter, "Total number of denied responses since process started"),
    Family::new("haproxy_frontend_request_errors_total", Kind::Counter, "Total number of invalid requests since process started"),
    Family::new("haproxy_frontend_status", Kind::Gauge, "Current status of the service, per state label value."),
    Family::new("haproxy_frontend_limit_session_rate", Kind::Gauge, "Limit on the number of sessions accepted in a second (frontend only, 'rate-limit sessions' setting)"),
    Family::new("haproxy_frontend_max_session_rate", Kind::Gauge, "Highest value of sessions per second observed since the worker process started"),
    Family::new("haproxy_frontend_http_responses_total", Kind::Counter, "Total number of HTTP responses with status 100-199 returned by this object since the worker process started"),
    Family::new("haproxy_frontend_http_requests_rate_max", Kind::Gauge, "Highest value of http requests observed since the worker process started"),
    Family::new("haproxy_frontend_http_requests_total", Kind::Counter, "Total number of HTTP requests processed by this object since the worker process started"),
    Family::new("haproxy_frontend_http_comp_bytes_in_total", Kind::Counter, "Total number of bytes submitted to the HTTP compressor for this object since the worker process started"),
    Family::new("haproxy_frontend_http_comp_bytes_out_total", Kind::Counter, "Total number of bytes emitted by the HTTP compressor for this object since the worker process started"),
    Family::new("haproxy_frontend_http_comp_bytes_bypassed_total", Kind::Counter, "Total number of bytes that bypassed HTTP compression for this object since the worker process started (CPU/memory/bandwidth limitation)"),
    Family::new("haproxy_frontend_http_comp_responses_total", Kind::Counter, "Total number of HTTP responses that were compressed for this object since the worker process started"),
    Family::new("haproxy_frontend_connections_rate_max", Kind::Gauge, "Highest value of connections per second observed since the worker process started"),
    Family::new("haproxy_frontend_connections_total", Kind::Counter, "Total number of new connections accepted on this frontend since the worker process started"),
    Family::new("haproxy_frontend_intercepted_requests_total", Kind::Counter, "Total number of HTTP requests intercepted on the frontend (redirects/stats/services) since the worker process started"),
    Family::new("haproxy_frontend_denied_connections_total", Kind::Counter, "Total number of incoming connections blocked on a listener/frontend by a tcp-request connection rule since the worker process started"),
    Family::new("haproxy_frontend_denied_sessions_total", Kind::Counter, "Total number of incoming sessions blocked on a listener/frontend by a tcp-request connection rule since the worker process started"),
    Family::new("haproxy_frontend_failed_header_rewriting_total", Kind::Counter, "Total number of failed HTTP header rewrites since the worker process started"),
    Family::new("haproxy_frontend_http_cache_lookups_total", Kind::Counter, "Total number of HTTP requests looked up in the cache on this frontend/backend since the worker process started"),
    Family::new("haproxy_frontend_http_cache_hits_total", Kind::Counter, "Total number of HTTP requests not found in the cache on this frontend/backend since the worker process started"),
    Family::new("haproxy_frontend_internal_errors_total", Kind::Counter, "Total number of internal errors since process started"),
    Family::new("haproxy_frontend_current_session_rate", Kind::Gauge, "Number of sessions per second over the last elapsed second"),
    Family::new("haproxy_frontend_http_requests_rate_current", Kind::Gauge, "HTTP requests per second over the last elapsed second"),
    Family::new("haproxy_frontend_connections_rate_current", Kind::Gauge, "Number of connections per second over the last elapsed second"),
    Family::new("haproxy_backend_current_queue", Kind::Gauge, "Number of current queued connections"),
    Family::new("haproxy_backend_max_queue", Kind::Gauge, "Highest value of queued connections encountered since process started"),
    Family::new("haproxy_backend_current_sessions", Kind::Gauge, "Number of current sessions on the frontend, backend or server"),
    Family::new("haproxy_backend_max_sessions", Kind::Gauge, "Highest value of current sessions encountered since process started"),
    Family::new("haproxy_backend_limit_sessions", Kind::Gauge, "Frontend/listener/server's maxconn, backend's fullconn"),
    Family::new("haproxy_backend_sessions_total", Kind::Counter, "Total number of sessions since process started"),
    Family::new("haproxy_backend_bytes_in_total", Kind::Counter, "Total number of request bytes since process started"),
    Family::new("haproxy_backend_bytes_out_total", Kind::Counter, "Total number of response bytes since process started"),
    Family::new("haproxy_backend_requests_denied_total", Kind::Counter, "Total number of denied requests since process started"),
    Family::new("haproxy_backend_responses_denied_total", Kind::Counter, "Total number of denied responses since process started"),
    Family::new("haproxy_backend_connection_errors_total", Kind::Counter, "Total number of failed connections to server since the worker process started"),
    Family::new("haproxy_backend_response_errors_total", Kind::Counter, "Total number of invalid responses since the worker process started"),
    Family::new("haproxy_backend_retry_warnings_total", Kind::Counter, "Total number of server connection retries since the worker process started"),
    Family::new("haproxy_backend_redispatch_warnings_total", Kind::Counter, "Total number of server redispatches due to connection failures since the worker process started"),
    Family::new("haproxy_backend_status", Kind::Gauge, "Current status of the service, per state label value."),
    Family::new("haproxy_backend_weight", Kind::Gauge, "Server's effective weight, or sum of active servers' effective weights for a backend"),
    Family::new("haproxy_backend_active_servers", Kind::Gauge, "Total number of active UP servers with a non-zero weight"),
    Family::new("haproxy_backend_backup_servers", Kind::Gauge, "Total number of backup UP servers with a non-zero weight"),
    Family::new("haproxy_backend_check_up_down_total", Kind::Counter, "Total number of failed checks causing UP to DOWN server transitions, per server/backend, since the worker process started"),
    Family::new("haproxy_backend_check_last_change_seconds", Kind::Gauge, "How long ago the last server state changed, in seconds"),
    Family::new("haproxy_backend_downtime_seconds_total", Kind::Counter, "Total time spent in DOWN state, for server or backend"),
    Family::new("haproxy_backend_loadbalanced_total", Kind::Counter, "Total number of requests routed by load balancing since the worker process started (ignores queue pop and stickiness)"),
    Family::new("haproxy_backend_max_session_rate", Kind::Gauge, "Highest value of sessions per second observed since the worker process started"),
    Family::new("haproxy_backend_http_responses_total", Kind::Counter, "Total number of HTTP responses with status 100-199 returned by this object since the worker process started"),
    Family::new("haproxy_backend_http_requests_total", Kind::Counter, "Total number of HTTP requests processed by this object since the worker process started"),
    Family::new("haproxy_backend_client_aborts_total", Kind::Counter, "Total number of requests or connections aborted by the client since the worker process started"),
    Family::new("haproxy_backend_server_aborts_total", Kind::Counter, "Total number of requests or connections aborted by the server since the worker process started"),
    Family::new("haproxy_backend_http_comp_bytes_in_total", Kind::Counter, "Total number of bytes submitted to the HTTP compressor for this object since the worker process started"),
    Family::new("haproxy_backend_http_comp_bytes_out_total", Kind::Counter, "Total number of bytes emitted by the HTTP compressor for this object since the worker process started"),
    Family::new("haproxy_backend_http_comp_bytes_bypassed_total", Kind::Counter, "Total number of bytes that bypassed HTTP compression for this object since the worker process started (CPU/memory/bandwidth limitation)"),
    Family::new("haproxy_backend_http_comp_responses_total", Kind::Counter, "Total number of HTTP responses that were compressed for this object since the worker process started"),
    Family::new("haproxy_backend_last_session_seconds", Kind::Gauge, "How long ago some traffic was seen on this object on this worker process, in seconds"),
    Family::new("haproxy_backend_queue_time_average_seconds", Kind::Gauge, "Avg. queue time for last 1024 successful connections."),
    Family::new("haproxy_backend_connect_time_average_seconds", Kind::Gauge, "Avg. connect time for last 1024 successful connections."),
    Family::new("haproxy_backend_response_time_average_seconds", Kind::Gauge, "Avg. response time for last 1024 successful connections."),
    Family::new("haproxy_backend_total_time_average_seconds", Kind::Gauge, "Avg. total time for last 1024 successful connections."),
    Family::new("haproxy_backend_failed_header_rewriting_total", Kind::Counter, "Total number of failed HTTP header rewrites since the worker process started"),
    Family::new("haproxy_backend_connection_attempts_total", Kind::Counter, "Total number of outgoing connection attempts on this backend/server since the worker process started"),
    Family::new("haproxy_backend_connection_reuses_total", Kind::Counter, "Total number of reused connection on this backend/server since the worker process started"),
    Family::new("haproxy_backend_http_cache_lookups_total", Kind::Counter, "Total number of HTTP requests looked up in the cache on this frontend/backend since the worker process started"),
    Family::new("haproxy_backend_http_cache_hits_total", Kind::Counter, "Total number of HTTP requests not found in the cache on this frontend/backend since the worker process started"),
    Family::new("haproxy_backend_max_queue_time_seconds", Kind::Gauge, "Maximum observed time spent in the queue"),
    Family::new("haproxy_backend_max_connect_time_seconds", Kind::Gauge, "Maximum observed time spent waiting for a connection to complete"),
    Family::new("haproxy_backend_max_response_time_seconds", Kind::Gauge, "Maximum observed time spent waiting for a server response"),
    Family::new("haproxy_backend_max_total_time_seconds", Kind::Gauge, "Maximum observed total request+response time (request+queue+connect+response+processing)"),
    Family::new("haproxy_backend_internal_errors_total", Kind::Counter, "Total number of internal errors since process started"),
    Family::new("haproxy_backend_uweight", Kind::Gauge, "Server's user weight, or sum of active servers' user weights for a backend"),
    Family::new("haproxy_backend_agg_server_status", Kind::Gauge, "Backend's aggregated gauge of servers' status"),
    Family::new("haproxy_backend_agg_server_check_status", Kind::Gauge, "Backend's aggregated gauge of servers' state check status"),
    Family::new("haproxy_backend_agg_check_status", Kind::Gauge, "Backend's aggregated gauge of servers' state check status"),
    Family::new("haproxy_backend_current_session_rate", Kind::Gauge, "Number of sessions per second over the last elapsed second"),
    Family::new("haproxy_backend_intercepted_requests_total", Kind::Counter, "Total number of HTTP requests intercepted on the backend (redirects/stats/services) since the worker process started"),
    Family::new("haproxy_server_current_queue", Kind::Gauge, "Number of current queued connections"),
    Family::new("haproxy_server_max_queue", Kind::Gauge, "Highest value of queued connections encountered since process started"),
    Family::new("haproxy_server_current_sessions", Kind::Gauge, "Number of current sessions on the frontend, backend or server"),
    Family::new("haproxy_server_max_sessions", Kind::Gauge, "Highest value of current sessions encountered since process started"),
    Family::new("haproxy_server_limit_sessions", Kind::Gauge, "Frontend/listener/server's maxconn, backend's fullconn"),
    Family::new("haproxy_server_sessions_total", Kind::Counter, "Total number of sessions since process started"),
    Family::new("haproxy_server_bytes_in_total", Kind::Counter, "Total number of request bytes since process started"),
    Family::new("haproxy_server_bytes_out_total", Kind::Counter, "Total number of response bytes since process started"),
    Family::new("haproxy_server_responses_denied_total", Kind::Counter, "Total number of denied responses since process started"),
    Family::new("haproxy_server_connection_errors_total", Kind::Counter, "Total number of failed connections to server since the worker process started"),
    Family::new("haproxy_server_response_errors_total", Kind::Counter, "Total number of invalid responses since the worker process started"),
    Family::new("haproxy_server_retry_warnings_total", Kind::Counter, "Total number of server connection retries since the worker process started"),
    Family::new("haproxy_server_redispatch_warnings_total", Kind::Counter, "Total number of server redispatches due to connection failures since the worker process started"),
    Family::new("haproxy_server_status", Kind::Gauge, "Current status of the service, per state label value."),
    Family::new("haproxy_server_weight", Kind::Gauge, "Server's effective weight, or sum of active servers' effective weights for a backend"),
    Family::new("haproxy_server_check_failures_total", Kind::Counter, "Total number of failed individual health checks per server/backend, since the worker process started"),
    Family::new("haproxy_server_check_up_down_total", Kind::Counter, "Total number of failed checks causing UP to DOWN server transitions, per server/backend, since the worker process started"),
    Family::new("haproxy_server_check_last_change_seconds", Kind::Gauge, "How long ago the last server state changed, in seconds"),
    Family::new("haproxy_server_downtime_seconds_total", Kind::Counter, "Total time spent in DOWN state, for server or backend"),
    Family::new("haproxy_server_queue_limit", Kind::Gauge, "Limit on the number of connections in queue, for servers only (maxqueue argument)"),
    Family::new("haproxy_server_current_throttle", Kind::Gauge, "Throttling ratio applied to a server's maxconn and weight during the slowstart period (0 to 100%)"),
    Family::new("haproxy_server_loadbalanced_total", Kind::Counter, "Total number of requests routed by load balancing since the worker process started (ignores queue pop and stickiness)"),
    Family::new("haproxy_server_max_session_rate", Kind::Gauge, "Highest value of sessions per second observed since the worker process started"),
    Family::new("haproxy_server_check_status", Kind::Gauge, "Status of last health check, per state label value."),
    Family::new("haproxy_server_check_code", Kind::Gauge, "layer5-7 code, if available of the last health check."),
    Family::new("haproxy_server_check_duration_seconds", Kind::Gauge, "Total duration of the latest server health check, in seconds."),
    Family::new("haproxy_server_http_responses_total", Kind::Counter, "Total number of HTTP responses with status 100-199 returned by this object since the worker process started"),
    Family::new("haproxy_server_client_aborts_total", Kind::Counter, "Total number of requests or connections aborted by the client since the worker process started"),
    Family::new("haproxy_server_server_aborts_total", Kind::Counter, "Total number of requests or connections aborted by the server since the worker process started"),
    Family::new("haproxy_server_last_session_seconds", Kind::Gauge, "How long ago some traffic was seen on this object on this worker process, in seconds"),
    Family::new("haproxy_server_queue_time_average_seconds", Kind::Gauge, "Avg. queue time for last 1024 successful connections."),
    Family::new("haproxy_server_connect_time_average_seconds", Kind::Gauge, "Avg. connect time for last 1024 successful connections."),
    Family::new("haproxy_server_response_time_average_seconds", Kind::Gauge, "Avg. response time for last 1024 successful connections."),
    Family::new("haproxy_server_total_time_average_seconds", Kind::Gauge, "Avg. total time for last 1024 successful connections."),
    Family::new("haproxy_server_failed_header_rewriting_total", Kind::Counter, "Total number of failed HTTP header rewrites since the worker process started"),
    Family::new("haproxy_server_connection_attempts_total", Kind::Counter, "Total number of outgoing connection attempts on this backend/server since the worker process started"),
    Family::new("haproxy_server_connection_reuses_total", Kind::Counter, "Total number of reused connection on this backend/server since the worker process started"),
    Family::new("haproxy_server_idle_connections_current", Kind::Gauge, "Current number of idle connections available for reuse on this server"),
    Family::new("haproxy_server_idle_connections_limit", Kind::Gauge, "Limit on the number of available idle connections on this server (server 'pool_max_conn' directive)"),
    Family::new("haproxy_server_max_queue_time_seconds", Kind::Gauge, "Maximum observed time spent in the queue"),
    Family::new("haproxy_server_max_connect_time_seconds", Kind::Gauge, "Maximum observed time spent waiting for a connection to complete"),
    Family::new("haproxy_server_max_response_time_seconds", Kind::Gauge, "Maximum observed time spent waiting for a server response"),
    Family::new("haproxy_server_max_total_time_seconds", Kind::Gauge, "Maximum observed total request+response time (request+queue+connect+response+processing)"),
    Family::new("haproxy_server_internal_errors_total", Kind::Counter, "Total number of internal errors since process started"),
    Family::new("haproxy_server_unsafe_idle_connections_current", Kind::Gauge, "Current number of unsafe idle connections"),
    Family::new("haproxy_server_safe_idle_connections_current", Kind::Gauge, "Current number of safe idle connections"),
    Family::new("haproxy_server_used_connections_current", Kind::Gauge, "Current number of connections in use"),
    Family::new("haproxy_server_need_connections_current", Kind::Gauge, "Estimated needed number of connections"),
    Family::new("haproxy_server_uweight", Kind::Gauge, "Server's user weight, or sum of active servers' user weights for a backend"),
    Family::new("haproxy_server_current_session_rate", Kind::Gauge, "Number of sessions per second over the last elapsed second"),
];

/// Where each field goes: scope, field, family, scale, `code` label.
/// (HAProxy 2.6 and 3.0 name the idle connections limit `src_ilim`.)
#[rustfmt::skip]
const FIELDS: &[Field] = &[
    Field::new(Scope::Process, "Nbthread", "haproxy_process_nbthread", 1.0, None),
    Field::new(Scope::Process, "Nbproc", "haproxy_process_nbproc", 1.0, None),
    Field::new(Scope::Process, "Process_num", "haproxy_process_relative_process_id", 1.0, None),
    Field::new(Scope::Process, "Uptime_sec", "haproxy_process_uptime_seconds", 1.0, None),
    Field::new(Scope::Process, "Start_time_sec", "haproxy_process_start_time_seconds", 1.0, None),
    Field::new(Scope::Process, "Memmax_bytes", "haproxy_process_max_memory_bytes", 1.0, None),
    Field::new(Scope::Process, "Memmax_MB", "haproxy_process_max_memory_bytes", 1048576.0, None),
    Field::new(Scope::Process, "PoolAlloc_bytes", "haproxy_process_pool_allocated_bytes", 1.0, None),
    Field::new(Scope::Process, "PoolUsed_bytes", "haproxy_process_pool_used_bytes", 1.0, None),
    Field::new(Scope::Process, "PoolFailed", "haproxy_process_pool_failures_total", 1.0, None),
    Field::new(Scope::Process, "Ulimit-n", "haproxy_process_max_fds", 1.0, None),
    Field::new(Scope::Process, "Maxsock", "haproxy_process_max_sockets", 1.0, None),
    Field::new(Scope::Process, "Maxconn", "haproxy_process_max_connections", 1.0, None),
    Field::new(Scope::Process, "Hard_maxconn", "haproxy_process_hard_max_connections", 1.0, None),
    Field::new(Scope::Process, "CurrConns", "haproxy_process_current_connections", 1.0, None),
    Field::new(Scope::Process, "CumConns", "haproxy_process_connections_total", 1.0, None),
    Field::new(Scope::Process, "CumReq", "haproxy_process_requests_total", 1.0, None),
    Field::new(Scope::Process, "MaxSslConns", "haproxy_process_max_ssl_connections", 1.0, None),
    Field::new(Scope::Process, "CurrSslConns", "haproxy_process_current_ssl_connections", 1.0, None),
    Field::new(Scope::Process, "CumSslConns", "haproxy_process_ssl_connections_total", 1.0, None),
    Field::new(Scope::Process, "Maxpipes", "haproxy_process_max_pipes", 1.0, None),
    Field::new(Scope::Process, "PipesUsed", "haproxy_process_pipes_used_total", 1.0, None),
    Field::new(Scope::Process, "PipesFree", "haproxy_process_pipes_free_total", 1.0, None),
    Field::new(Scope::Process, "ConnRate", "haproxy_process_current_connection_rate", 1.0, None),
    Field::new(Scope::Process, "ConnRateLimit", "haproxy_process_limit_connection_rate", 1.0, None),
    Field::new(Scope::Process, "MaxConnRate", "haproxy_process_max_connection_rate", 1.0, None),
    Field::new(Scope::Process, "SessRate", "haproxy_process_current_session_rate", 1.0, None),
    Field::new(Scope::Process, "SessRateLimit", "haproxy_process_limit_session_rate", 1.0, None),
    Field::new(Scope::Process, "MaxSessRate", "haproxy_process_max_session_rate", 1.0, None),
    Field::new(Scope::Process, "SslRate", "haproxy_process_current_ssl_rate", 1.0, None),
    Field::new(Scope::Process, "SslRateLimit", "haproxy_process_limit_ssl_rate", 1.0, None),
    Field::new(Scope::Process, "MaxSslRate", "haproxy_process_max_ssl_rate", 1.0, None),
    Field::new(Scope::Process, "SslFrontendKeyRate", "haproxy_process_current_frontend_ssl_key_rate", 1.0, None),
    Field::new(Scope::Process, "SslFrontendMaxKeyRate", "haproxy_process_max_frontend_ssl_key_rate", 1.0, None),
    Field::new(Scope::Process, "SslFrontendSessionReuse_pct", "haproxy_process_frontend_ssl_reuse", 1.0, None),
    Field::new(Scope::Process, "SslBackendKeyRate", "haproxy_process_current_backend_ssl_key_rate", 1.0, None),
    Field::new(Scope::Process, "SslBackendMaxKeyRate", "haproxy_process_max_backend_ssl_key_rate", 1.0, None),
    Field::new(Scope::Process, "SslCacheLookups", "haproxy_process_ssl_cache_lookups_total", 1.0, None),
    Field::new(Scope::Process, "SslCacheMisses", "haproxy_process_ssl_cache_misses_total", 1.0, None),
    Field::new(Scope::Process, "CompressBpsIn", "haproxy_process_http_comp_bytes_in_total", 1.0, None),
    Field::new(Scope::Process, "CompressBpsOut", "haproxy_process_http_comp_bytes_out_total", 1.0, None),
    Field::new(Scope::Process, "CompressBpsRateLim", "haproxy_process_limit_http_comp", 1.0, None),
    Field::new(Scope::Process, "ZlibMemUsage", "haproxy_process_current_zlib_memory", 1.0, None),
    Field::new(Scope::Process, "MaxZlibMemUsage", "haproxy_process_max_zlib_memory", 1.0, None),
    Field::new(Scope::Process, "Tasks", "haproxy_process_current_tasks", 1.0, None),
    Field::new(Scope::Process, "Run_queue", "haproxy_process_current_run_queue", 1.0, None),
    Field::new(Scope::Process, "Idle_pct", "haproxy_process_idle_time_percent", 1.0, None),
    Field::new(Scope::Process, "Stopping", "haproxy_process_stopping", 1.0, None),
    Field::new(Scope::Process, "Jobs", "haproxy_process_jobs", 1.0, None),
    Field::new(Scope::Process, "Unstoppable Jobs", "haproxy_process_unstoppable_jobs", 1.0, None),
    Field::new(Scope::Process, "Listeners", "haproxy_process_listeners", 1.0, None),
    Field::new(Scope::Process, "ActivePeers", "haproxy_process_active_peers", 1.0, None),
    Field::new(Scope::Process, "ConnectedPeers", "haproxy_process_connected_peers", 1.0, None),
    Field::new(Scope::Process, "DroppedLogs", "haproxy_process_dropped_logs_total", 1.0, None),
    Field::new(Scope::Process, "BusyPolling", "haproxy_process_busy_polling_enabled", 1.0, None),
    Field::new(Scope::Process, "FailedResolutions", "haproxy_process_failed_resolutions_total", 1.0, None),
    Field::new(Scope::Process, "TotalBytesOut", "haproxy_process_bytes_out_total", 1.0, None),
    Field::new(Scope::Process, "TotalSplicedBytesOut", "haproxy_process_spliced_bytes_out_total", 1.0, None),
    Field::new(Scope::Process, "BytesOutRate", "haproxy_process_bytes_out_rate", 1.0, None),
    Field::new(Scope::Process, "CumRecvLogs", "haproxy_process_recv_logs_total", 1.0, None),
    Field::new(Scope::Frontend, "scur", "haproxy_frontend_current_sessions", 1.0, None),
    Field::new(Scope::Frontend, "smax", "haproxy_frontend_max_sessions", 1.0, None),
    Field::new(Scope::Frontend, "slim", "haproxy_frontend_limit_sessions", 1.0, None),
    Field::new(Scope::Frontend, "stot", "haproxy_frontend_sessions_total", 1.0, None),
    Field::new(Scope::Frontend, "bin", "haproxy_frontend_bytes_in_total", 1.0, None),
    Field::new(Scope::Frontend, "bout", "haproxy_frontend_bytes_out_total", 1.0, None),
    Field::new(Scope::Frontend, "dreq", "haproxy_frontend_requests_denied_total", 1.0, None),
    Field::new(Scope::Frontend, "dresp", "haproxy_frontend_responses_denied_total", 1.0, None),
    Field::new(Scope::Frontend, "ereq", "haproxy_frontend_request_errors_total", 1.0, None),
    Field::new(Scope::Frontend, "status=DOWN", "haproxy_frontend_status", 1.0, Some(("state", "DOWN"))),
    Field::new(Scope::Frontend, "status=UP", "haproxy_frontend_status", 1.0, Some(("state", "UP"))),
    Field::new(Scope::Frontend, "rate_lim", "haproxy_frontend_limit_session_rate", 1.0, None),
    Field::new(Scope::Frontend, "rate_max", "haproxy_frontend_max_session_rate", 1.0, None),
    Field::new(Scope::Frontend, "hrsp_1xx", "haproxy_frontend_http_responses_total", 1.0, Some(("code", "1xx"))),
    Field::new(Scope::Frontend, "hrsp_2xx", "haproxy_frontend_http_responses_total", 1.0, Some(("code", "2xx"))),
    Field::new(Scope::Frontend, "hrsp_3xx", "haproxy_frontend_http_responses_total", 1.0, Some(("code", "3xx"))),
    Field::new(Scope::Frontend, "hrsp_4xx", "haproxy_frontend_http_responses_total", 1.0, Some(("code", "4xx"))),
    Field::new(Scope::Frontend, "hrsp_5xx", "haproxy_frontend_http_responses_total", 1.0, Some(("code", "5xx"))),
    Field::new(Scope::Frontend, "hrsp_other", "haproxy_frontend_http_responses_total", 1.0, Some(("code", "other"))),
    Field::new(Scope::Frontend, "req_rate_max", "haproxy_frontend_http_requests_rate_max", 1.0, None),
    Field::new(Scope::Frontend, "req_tot", "haproxy_frontend_http_requests_total", 1.0, None),
    Field::new(Scope::Frontend, "comp_in", "haproxy_frontend_http_comp_bytes_in_total", 1.0, None),
    Field::new(Scope::Frontend, "comp_out", "haproxy_frontend_http_comp_bytes_out_total", 1.0, None),
    Field::new(Scope::Frontend, "comp_byp", "haproxy_frontend_http_comp_bytes_bypassed_total", 1.0, None),
    Field::new(Scope::Frontend, "comp_rsp", "haproxy_frontend_http_comp_responses_total", 1.0, None),
    Field::new(Scope::Frontend, "conn_rate_max", "haproxy_frontend_connections_rate_max", 1.0, None),
    Field::new(Scope::Frontend, "conn_tot", "haproxy_frontend_connections_total", 1.0, None),
    Field::new(Scope::Frontend, "intercepted", "haproxy_frontend_intercepted_requests_total", 1.0, None),
    Field::new(Scope::Frontend, "dcon", "haproxy_frontend_denied_connections_total", 1.0, None),
    Field::new(Scope::Frontend, "dses", "haproxy_frontend_denied_sessions_total", 1.0, None),
    Field::new(Scope::Frontend, "wrew", "haproxy_frontend_failed_header_rewriting_total", 1.0, None),
    Field::new(Scope::Frontend, "cache_lookups", "haproxy_frontend_http_cache_lookups_total", 1.0, None),
    Field::new(Scope::Frontend, "cache_hits", "haproxy_frontend_http_cache_hits_total", 1.0, None),
    Field::new(Scope::Frontend, "eint", "haproxy_frontend_internal_errors_total", 1.0, None),
    Field::new(Scope::Frontend, "rate", "haproxy_frontend_current_session_rate", 1.0, None),
    Field::new(Scope::Frontend, "req_rate", "haproxy_frontend_http_requests_rate_current", 1.0, None),
    Field::new(Scope::Frontend, "conn_rate", "haproxy_frontend_connections_rate_current", 1.0, None),
    Field::new(Scope::Backend, "qcur", "haproxy_backend_current_queue", 1.0, None),
    Field::new(Scope::Backend, "qmax", "haproxy_backend_max_queue", 1.0, None),
    Field::new(Scope::Backend, "scur", "haproxy_backend_current_sessions", 1.0, None),
    Field::new(Scope::Backend, "smax", "haproxy_backend_max_sessions", 1.0, None),
    Field::new(Scope::Backend, "slim", "haproxy_backend_limit_sessions", 1.0, None),
    Field::new(Scope::Backend, "stot", "haproxy_backend_sessions_total", 1.0, None),
    Field::new(Scope::Backend, "bin", "haproxy_backend_bytes_in_total", 1.0, None),
    Field::new(Scope::Backend, "bout", "haproxy_backend_bytes_out_total", 1.0, None),
    Field::new(Scope::Backend, "dreq", "haproxy_backend_requests_denied_total", 1.0, None),
    Field::new(Scope::Backend, "dresp", "haproxy_backend_responses_denied_total", 1.0, None),
    Field::new(Scope::Backend, "econ", "haproxy_backend_connection_errors_total", 1.0, None),
    Field::new(Scope::Backend, "eresp", "haproxy_backend_response_errors_total", 1.0, None),
    Field::new(Scope::Backend, "wretr", "haproxy_backend_retry_warnings_total", 1.0, None),
    Field::new(Scope::Backend, "wredis", "haproxy_backend_redispatch_warnings_total", 1.0, None),
    Field::new(Scope::Backend, "status=DOWN", "haproxy_backend_status", 1.0, Some(("state", "DOWN"))),
    Field::new(Scope::Backend, "status=UP", "haproxy_backend_status", 1.0, Some(("state", "UP"))),
    Field::new(Scope::Backend, "weight", "haproxy_backend_weight", 1.0, None),
    Field::new(Scope::Backend, "act", "haproxy_backend_active_servers", 1.0, None),
    Field::new(Scope::Backend, "bck", "haproxy_backend_backup_servers", 1.0, None),
    Field::new(Scope::Backend, "chkdown", "haproxy_backend_check_up_down_total", 1.0, None),
    Field::new(Scope::Backend, "lastchg", "haproxy_backend_check_last_change_seconds", 1.0, None),
    Field::new(Scope::Backend, "downtime", "haproxy_backend_downtime_seconds_total", 1.0, None),
    Field::new(Scope::Backend, "lbtot", "haproxy_backend_loadbalanced_total", 1.0, None),
    Field::new(Scope::Backend, "rate_max", "haproxy_backend_max_session_rate", 1.0, None),
    Field::new(Scope::Backend, "hrsp_1xx", "haproxy_backend_http_responses_total", 1.0, Some(("code", "1xx"))),
    Field::new(Scope::Backend, "hrsp_2xx", "haproxy_backend_http_responses_total", 1.0, Some(("code", "2xx"))),
    Field::new(Scope::Backend, "hrsp_3xx", "haproxy_backend_http_responses_total", 1.0, Some(("code", "3xx"))),
    Field::new(Scope::Backend, "hrsp_4xx", "haproxy_backend_http_responses_total", 1.0, Some(("code", "4xx"))),
    Field::new(Scope::Backend, "hrsp_5xx", "haproxy_backend_http_responses_total", 1.0, Some(("code", "5xx"))),
    Field::new(Scope::Backend, "hrsp_other", "haproxy_backend_http_responses_total", 1.0, Some(("code", "other"))),
    Field::new(Scope::Backend, "req_tot", "haproxy_backend_http_requests_total", 1.0, None),
    Field::new(Scope::Backend, "cli_abrt", "haproxy_backend_client_aborts_total", 1.0, None),
    Field::new(Scope::Backend, "srv_abrt", "haproxy_backend_server_aborts_total", 1.0, None),
    Field::new(Scope::Backend, "comp_in", "haproxy_backend_http_comp_bytes_in_total", 1.0, None),
    Field::new(Scope::Backend, "comp_out", "haproxy_backend_http_comp_bytes_out_total", 1.0, None),
    Field::new(Scope::Backend, "comp_byp", "haproxy_backend_http_comp_bytes_bypassed_total", 1.0, None),
    Field::new(Scope::Backend, "comp_rsp", "haproxy_backend_http_comp_responses_total", 1.0, None),
    Field::new(Scope::Backend, "lastsess", "haproxy_backend_last_session_seconds", 1.0, None),
    Field::new(Scope::Backend, "qtime", "haproxy_backend_queue_time_average_seconds", 0.001, None),
    Field::new(Scope::Backend, "ctime", "haproxy_backend_connect_time_average_seconds", 0.001, None),
    Field::new(Scope::Backend, "rtime", "haproxy_backend_response_time_average_seconds", 0.001, None),
    Field::new(Scope::Backend, "ttime", "haproxy_backend_total_time_average_seconds", 0.001, None),
    Field::new(Scope::Backend, "wrew", "haproxy_backend_failed_header_rewriting_total", 1.0, None),
    Field::new(Scope::Backend, "connect", "haproxy_backend_connection_attempts_total", 1.0, None),
    Field::new(Scope::Backend, "reuse", "haproxy_backend_connection_reuses_total", 1.0, None),
    Field::new(Scope::Backend, "cache_lookups", "haproxy_backend_http_cache_lookups_total", 1.0, None),
    Field::new(Scope::Backend, "cache_hits", "haproxy_backend_http_cache_hits_total", 1.0, None),
    Field::new(Scope::Backend, "qtime_max", "haproxy_backend_max_queue_time_seconds", 0.001, None),
    Field::new(Scope::Backend, "ctime_max", "haproxy_backend_max_connect_time_seconds", 0.001, None),
    Field::new(Scope::Backend, "rtime_max", "haproxy_backend_max_response_time_seconds", 0.001, None),
    Field::new(Scope::Backend, "ttime_max", "haproxy_backend_max_total_time_seconds", 0.001, None),
    Field::new(Scope::Backend, "eint", "haproxy_backend_internal_errors_total", 1.0, None),
    Field::new(Scope::Backend, "uweight", "haproxy_backend_uweight", 1.0, None),
    Field::new(Scope::Backend, "agg_server_status=DOWN", "haproxy_backend_agg_server_status", 1.0, Some(("state", "DOWN"))),
    Field::new(Scope::Backend, "agg_server_status=UP", "haproxy_backend_agg_server_status", 1.0, Some(("state", "UP"))),
    Field::new(Scope::Backend, "agg_server_status=MAINT", "haproxy_backend_agg_server_status", 1.0, Some(("state", "MAINT"))),
    Field::new(Scope::Backend, "agg_server_status=DRAIN", "haproxy_backend_agg_server_status", 1.0, Some(("state", "DRAIN"))),
    Field::new(Scope::Backend, "agg_server_status=NOLB", "haproxy_backend_agg_server_status", 1.0, Some(("state", "NOLB"))),
    Field::new(Scope::Backend, "agg_server_check_status=DOWN", "haproxy_backend_agg_server_check_status", 1.0, Some(("state", "DOWN"))),
    Field::new(Scope::Backend, "agg_server_check_status=UP", "haproxy_backend_agg_server_check_status", 1.0, Some(("state", "UP"))),
    Field::new(Scope::Backend, "agg_server_check_status=MAINT", "haproxy_backend_agg_server_check_status", 1.0, Some(("state", "MAINT"))),
    Field::new(Scope::Backend, "agg_server_check_status=DRAIN", "haproxy_backend_agg_server_check_status", 1.0, Some(("state", "DRAIN"))),
    Field::new(Scope::Backend, "agg_server_check_status=NOLB", "haproxy_backend_agg_server_check_status", 1.0, Some(("state", "NOLB"))),
    Field::new(Scope::Backend, "agg_check_status=HANA", "haproxy_backend_agg_check_status", 1.0, Some(("state", "HANA"))),
    Field::new(Scope::Backend, "agg_check_status=SOCKERR", "haproxy_backend_agg_check_status", 1.0, Some(("state", "SOCKERR"))),
    Field::new(Scope::Backend, "agg_check_status=L4OK", "haproxy_backend_agg_check_status", 1.0, Some(("state", "L4OK"))),
    Field::new(Scope::Backend, "agg_check_status=L4TOUT", "haproxy_backend_agg_check_status", 1.0, Some(("state", "L4TOUT"))),
    Field::new(Scope::Backend, "agg_check_status=L4CON", "haproxy_backend_agg_check_status", 1.0, Some(("state", "L4CON"))),
    Field::new(Scope::Backend, "agg_check_status=L6OK", "haproxy_backend_agg_check_status", 1.0, Some(("state", "L6OK"))),
    Field::new(Scope::Backend, "agg_check_status=L6TOUT", "haproxy_backend_agg_check_status", 1.0, Some(("state", "L6TOUT"))),
    Field::new(Scope::Backend, "agg_check_status=L6RSP", "haproxy_backend_agg_check_status", 1.0, Some(("state", "L6RSP"))),
    Field::new(Scope::Backend, "agg_check_status=L7TOUT", "haproxy_backend_agg_check_status", 1.0, Some(("state", "L7TOUT"))),
    Field::new(Scope::Backend, "agg_check_status=L7RSP", "haproxy_backend_agg_check_status", 1.0, Some(("state", "L7RSP"))),
    Field::new(Scope::Backend, "agg_check_status=L7OK", "haproxy_backend_agg_check_status", 1.0, Some(("state", "L7OK"))),
    Field::new(Scope::Backend, "agg_check_status=L7OKC", "haproxy_backend_agg_check_status", 1.0, Some(("state", "L7OKC"))),
    Field::new(Scope::Backend, "agg_check_status=L7STS", "haproxy_backend_agg_check_status", 1.0, Some(("state", "L7STS"))),
    Field::new(Scope::Backend, "agg_check_status=PROCERR", "haproxy_backend_agg_check_status", 1.0, Some(("state", "PROCERR"))),
    Field::new(Scope::Backend, "agg_check_status=PROCTOUT", "haproxy_backend_agg_check_status", 1.0, Some(("state", "PROCTOUT"))),
    Field::new(Scope::Backend, "agg_check_status=PROCOK", "haproxy_backend_agg_check_status", 1.0, Some(("state", "PROCOK"))),
    Field::new(Scope::Backend, "rate", "haproxy_backend_current_session_rate", 1.0, None),
    Field::new(Scope::Backend, "intercepted", "haproxy_backend_intercepted_requests_total", 1.0, None),
    Field::new(Scope::Server, "qcur", "haproxy_server_current_queue", 1.0, None),
    Field::new(Scope::Server, "qmax", "haproxy_server_max_queue", 1.0, None),
    Field::new(Scope::Server, "scur", "haproxy_server_current_sessions", 1.0, None),
    Field::new(Scope::Server, "smax", "haproxy_server_max_sessions", 1.0, None),
    Field::new(Scope::Server, "slim", "haproxy_server_limit_sessions", 1.0, None),
    Field::new(Scope::Server, "stot", "haproxy_server_sessions_total", 1.0, None),
    Field::new(Scope::Server, "bin", "haproxy_server_bytes_in_total", 1.0, None),
    Field::new(Scope::Server, "bout", "haproxy_server_bytes_out_total", 1.0, None),
    Field::new(Scope::Server, "dresp", "haproxy_server_responses_denied_total", 1.0, None),
    Field::new(Scope::Server, "econ", "haproxy_server_connection_errors_total", 1.0, None),
    Field::new(Scope::Server, "eresp", "haproxy_server_response_errors_total", 1.0, None),
    Field::new(Scope::Server, "wretr", "haproxy_server_retry_warnings_total", 1.0, None),
    Field::new(Scope::Server, "wredis", "haproxy_server_redispatch_warnings_total", 1.0, None),
    Field::new(Scope::Server, "status=DOWN", "haproxy_server_status", 1.0, Some(("state", "DOWN"))),
    Field::new(Scope::Server, "status=UP", "haproxy_server_status", 1.0, Some(("state", "UP"))),
    Field::new(Scope::Server, "status=MAINT", "haproxy_server_status", 1.0, Some(("state", "MAINT"))),
    Field::new(Scope::Server, "status=DRAIN", "haproxy_server_status", 1.0, Some(("state", "DRAIN"))),
    Field::new(Scope::Server, "status=NOLB", "haproxy_server_status", 1.0, Some(("state", "NOLB"))),
    Field::new(Scope::Server, "weight", "haproxy_server_weight", 1.0, None),
    Field::new(Scope::Server, "chkfail", "haproxy_server_check_failures_total", 1.0, None),
    Field::new(Scope::Server, "chkdown", "haproxy_server_check_up_down_total", 1.0, None),
    Field::new(Scope::Server, "lastchg", "haproxy_server_check_last_change_seconds", 1.0, None),
    Field::new(Scope::Server, "downtime", "haproxy_server_downtime_seconds_total", 1.0, None),
    Field::new(Scope::Server, "qlimit", "haproxy_server_queue_limit", 1.0, None),
    Field::new(Scope::Server, "throttle", "haproxy_server_current_throttle", 1.0, None),
    Field::new(Scope::Server, "lbtot", "haproxy_server_loadbalanced_total", 1.0, None),
    Field::new(Scope::Server, "rate_max", "haproxy_server_max_session_rate", 1.0, None),
    Field::new(Scope::Server, "check_status=HANA", "haproxy_server_check_status", 1.0, Some(("state", "HANA"))),
    Field::new(Scope::Server, "check_status=SOCKERR", "haproxy_server_check_status", 1.0, Some(("state", "SOCKERR"))),
    Field::new(Scope::Server, "check_status=L4OK", "haproxy_server_check_status", 1.0, Some(("state", "L4OK"))),
    Field::new(Scope::Server, "check_status=L4TOUT", "haproxy_server_check_status", 1.0, Some(("state", "L4TOUT"))),
    Field::new(Scope::Server, "check_status=L4CON", "haproxy_server_check_status", 1.0, Some(("state", "L4CON"))),
    Field::new(Scope::Server, "check_status=L6OK", "haproxy_server_check_status", 1.0, Some(("state", "L6OK"))),
    Field::new(Scope::Server, "check_status=L6TOUT", "haproxy_server_check_status", 1.0, Some(("state", "L6TOUT"))),
    Field::new(Scope::Server, "check_status=L6RSP", "haproxy_server_check_status", 1.0, Some(("state", "L6RSP"))),
    Field::new(Scope::Server, "check_status=L7TOUT", "haproxy_server_check_status", 1.0, Some(("state", "L7TOUT"))),
    Field::new(Scope::Server, "check_status=L7RSP", "haproxy_server_check_status", 1.0, Some(("state", "L7RSP"))),
    Field::new(Scope::Server, "check_status=L7OK", "haproxy_server_check_status", 1.0, Some(("state", "L7OK"))),
    Field::new(Scope::Server, "check_status=L7OKC", "haproxy_server_check_status", 1.0, Some(("state", "L7OKC"))),
    Field::new(Scope::Server, "check_status=L7STS", "haproxy_server_check_status", 1.0, Some(("state", "L7STS"))),
    Field::new(Scope::Server, "check_status=PROCERR", "haproxy_server_check_status", 1.0, Some(("state", "PROCERR"))),
    Field::new(Scope::Server, "check_status=PROCTOUT", "haproxy_server_check_status", 1.0, Some(("state", "PROCTOUT"))),
    Field::new(Scope::Server, "check_status=PROCOK", "haproxy_server_check_status", 1.0, Some(("state", "PROCOK"))),
    Field::new(Scope::Server, "check_code", "haproxy_server_check_code", 1.0, None),
    Field::new(Scope::Server, "check_duration", "haproxy_server_check_duration_seconds", 0.001, None),
    Field::new(Scope::Server, "hrsp_1xx", "haproxy_server_http_responses_total", 1.0, Some(("code", "1xx"))),
    Field::new(Scope::Server, "hrsp_2xx", "haproxy_server_http_responses_total", 1.0, Some(("code", "2xx"))),
    Field::new(Scope::Server, "hrsp_3xx", "haproxy_server_http_responses_total", 1.0, Some(("code", "3xx"))),
    Field::new(Scope::Server, "hrsp_4xx", "haproxy_server_http_responses_total", 1.0, Some(("code", "4xx"))),
    Field::new(Scope::Server, "hrsp_5xx", "haproxy_server_http_responses_total", 1.0, Some(("code", "5xx"))),
    Field::new(Scope::Server, "hrsp_other", "haproxy_server_http_responses_total", 1.0, Some(("code", "other"))),
    Field::new(Scope::Server, "cli_abrt", "haproxy_server_client_aborts_total", 1.0, None),
    Field::new(Scope::Server, "srv_abrt", "haproxy_server_server_aborts_total", 1.0, None),
    Field::new(Scope::Server, "lastsess", "haproxy_server_last_session_seconds", 1.0, None),
    Field::new(Scope::Server, "qtime", "haproxy_server_queue_time_average_seconds", 0.001, None),
    Field::new(Scope::Server, "ctime", "haproxy_server_connect_time_average_seconds", 0.001, None),
    Field::new(Scope::Server, "rtime", "haproxy_server_response_time_average_seconds", 0.001, None),
    Field::new(Scope::Server, "ttime", "haproxy_server_total_time_average_seconds", 0.001, None),
    Field::new(Scope::Server, "wrew", "haproxy_server_failed_header_rewriting_total", 1.0, None),
    Field::new(Scope::Server, "connect", "haproxy_server_connection_attempts_total", 1.0, None),
    Field::new(Scope::Server, "reuse", "haproxy_server_connection_reuses_total", 1.0, None),
    Field::new(Scope::Server, "srv_icur", "haproxy_server_idle_connections_current", 1.0, None),
    Field::new(Scope::Server, "srv_ilim", "haproxy_server_idle_connections_limit", 1.0, None),
    Field::new(Scope::Server, "src_ilim", "haproxy_server_idle_connections_limit", 1.0, None),
    Field::new(Scope::Server, "qtime_max", "haproxy_server_max_queue_time_seconds", 0.001, None),
    Field::new(Scope::Server, "ctime_max", "haproxy_server_max_connect_time_seconds", 0.001, None),
    Field::new(Scope::Server, "rtime_max", "haproxy_server_max_response_time_seconds", 0.001, None),
    Field::new(Scope::Server, "ttime_max", "haproxy_server_max_total_time_seconds", 0.001, None),
    Field::new(Scope::Server, "eint", "haproxy_server_internal_errors_total", 1.0, None),
    Field::new(Scope::Server, "idle_conn_cur", "haproxy_server_unsafe_idle_connections_current", 1.0, None),
    Field::new(Scope::Server, "safe_conn_cur", "haproxy_server_safe_idle_connections_current", 1.0, None),
    Field::new(Scope::Server, "used_conn_cur", "haproxy_server_used_connections_current", 1.0, None),
    Field::new(Scope::Server, "need_conn_est", "haproxy_server_need_connections_current", 1.0, None),
    Field::new(Scope::Server, "uweight", "haproxy_server_uweight", 1.0, None),
    Field::new(Scope::Server, "rate", "haproxy_server_current_session_rate", 1.0, None),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_has_its_family_and_names_follow_the_conventions() {
        assert_eq!(TARGETS.len(), FIELDS.len(), "one target a field, each family found");
        for family in FAMILIES {
            let scope_prefix = [
                "haproxy_process_",
                "haproxy_frontend_",
                "haproxy_backend_",
                "haproxy_server_",
            ]
            .iter()
            .any(|prefix| family.name.starts_with(prefix));
            assert!(scope_prefix, "{}", family.name);
            assert_eq!(
                family.name.ends_with("_total"),
                family.kind == Kind::Counter,
                "{}: counters and only counters end with _total",
                family.name
            );
            assert!(
                family
                    .name
                    .bytes()
                    .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'_'),
                "{}",
                family.name
            );
            assert!(
                !family.help.contains('\n') && !family.help.contains('\\'),
                "{}",
                family.name
            );
        }
        let names: std::collections::HashSet<&str> = FAMILIES.iter().map(|family| family.name).collect();
        assert_eq!(names.len(), FAMILIES.len(), "no family twice");
    }

    #[test]
    fn fields_land_in_promex_families() {
        let name = |scope, field| target(scope, field).map(|target| FAMILIES[target.family].name);
        assert_eq!(name(Scope::Frontend, "bin"), Some("haproxy_frontend_bytes_in_total"));
        assert_eq!(name(Scope::Server, "bin"), Some("haproxy_server_bytes_in_total"));
        assert_eq!(
            name(Scope::Process, "CumConns"),
            Some("haproxy_process_connections_total")
        );
        assert_eq!(
            name(Scope::Process, "FailedResolutions"),
            Some("haproxy_process_failed_resolutions_total")
        );
        assert_eq!(name(Scope::Frontend, "qcur"), None, "a frontend has no queue");
        assert_eq!(name(Scope::Server, "pxname"), None);
        let rtime = target(Scope::Backend, "rtime").unwrap();
        assert_eq!(
            FAMILIES[rtime.family].name,
            "haproxy_backend_response_time_average_seconds"
        );
        assert_eq!(rtime.field.scale, 0.001);
        let code = target(Scope::Server, "hrsp_5xx").unwrap();
        assert_eq!(FAMILIES[code.family].name, "haproxy_server_http_responses_total");
        assert_eq!(code.field.label, Some(("code", "5xx")));
        let up = target(Scope::Server, "status=UP").unwrap();
        assert_eq!(FAMILIES[up.family].name, "haproxy_server_status");
        assert_eq!(up.field.label, Some(("state", "UP")));
        assert_eq!(
            FAMILIES[code.family].openmetrics_name(),
            "haproxy_server_http_responses"
        );
    }
}
