//! The metric names haproxystats emits for frontends, backends and servers, in
//! its emission order. The `*-metrics` options must name a subset of these, and
//! `process` aggregates them.

/// Frontend metrics, all summed across processes.
pub const FRONTEND: &[&str] = &[
    "comp_byp",
    "comp_in",
    "comp_out",
    "comp_rsp",
    "conn_rate",
    "conn_rate_max",
    "conn_tot",
    "dcon",
    "dses",
    "dreq",
    "ereq",
    "intercepted",
    "rate_lim",
    "req_rate",
    "req_rate_max",
    "req_tot",
    "bin",
    "bout",
    "dresp",
    "hrsp_1xx",
    "hrsp_2xx",
    "hrsp_3xx",
    "hrsp_4xx",
    "hrsp_5xx",
    "hrsp_other",
    "rate",
    "rate_max",
    "scur",
    "slim",
    "smax",
    "stot",
];

/// Backend metrics summed across processes.
pub const BACKEND: &[&str] = &[
    "chkdown",
    "cli_abrt",
    "comp_byp",
    "comp_in",
    "comp_out",
    "comp_rsp",
    "downtime",
    "dreq",
    "econ",
    "eresp",
    "intercepted",
    "lbtot",
    "qcur",
    "qmax",
    "req_tot",
    "srv_abrt",
    "wredis",
    "wretr",
    "bin",
    "bout",
    "dresp",
    "hrsp_1xx",
    "hrsp_2xx",
    "hrsp_3xx",
    "hrsp_4xx",
    "hrsp_5xx",
    "hrsp_other",
    "rate",
    "rate_max",
    "scur",
    "slim",
    "smax",
    "stot",
];

/// Backend metrics averaged over all processes.
pub const BACKEND_AVG: &[&str] = &["act", "bck", "weight"];

/// Backend time metrics averaged over processes that balanced traffic (`lbtot > 0`).
pub const BACKEND_AVG_TIME: &[&str] = &["rtime", "ctime", "qtime", "ttime"];

/// Server metrics summed across processes.
pub const SERVER: &[&str] = &[
    "chkfail",
    "chkdown",
    "cli_abrt",
    "econ",
    "eresp",
    "lbtot",
    "qcur",
    "qmax",
    "srv_abrt",
    "wredis",
    "wretr",
    "bin",
    "bout",
    "dresp",
    "hrsp_1xx",
    "hrsp_2xx",
    "hrsp_3xx",
    "hrsp_4xx",
    "hrsp_5xx",
    "hrsp_other",
    "rate",
    "rate_max",
    "scur",
    "slim",
    "smax",
    "stot",
];

/// Server metrics averaged over all processes.
pub const SERVER_AVG: &[&str] = &["throttle", "weight"];

/// Server time metrics averaged over processes that balanced traffic (`lbtot > 0`).
pub const SERVER_AVG_TIME: &[&str] = &["ctime", "qtime", "rtime", "ttime"];

/// How the values of a field from several processes combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reduce {
    /// Added up (counters, current values, limits).
    Sum,
    /// Averaged over the processes (weights).
    Mean,
    /// The largest (maximum times, check results).
    Max,
    /// The smallest ("seconds since": the most recent of the processes).
    Min,
}

/// `show info` fields beyond haproxystats' that HAProxy's own Prometheus
/// exporter reports (`Process_num` and the version string aside, which
/// say nothing of several processes together): for the `prometheus` sink.
pub const DAEMON_EXTENDED: &[(&str, Reduce)] = &[
    ("Nbthread", Reduce::Sum),
    ("Nbproc", Reduce::Sum),
    ("Start_time_sec", Reduce::Min),
    ("PoolAlloc_bytes", Reduce::Sum),
    ("PoolUsed_bytes", Reduce::Sum),
    ("PoolFailed", Reduce::Sum),
    ("Stopping", Reduce::Max),
    ("Jobs", Reduce::Sum),
    ("Unstoppable Jobs", Reduce::Sum),
    ("Listeners", Reduce::Sum),
    ("ActivePeers", Reduce::Sum),
    ("ConnectedPeers", Reduce::Sum),
    ("DroppedLogs", Reduce::Sum),
    ("BusyPolling", Reduce::Max),
    ("FailedResolutions", Reduce::Sum),
    ("TotalBytesOut", Reduce::Sum),
    ("TotalSplicedBytesOut", Reduce::Sum),
    ("BytesOutRate", Reduce::Sum),
    ("CumRecvLogs", Reduce::Sum),
];

/// Frontend fields beyond haproxystats' list that HAProxy's own Prometheus
/// exporter reports: aggregated only for the `prometheus` sink.
pub const FRONTEND_EXTENDED: &[(&str, Reduce)] = &[
    ("wrew", Reduce::Sum),
    ("cache_lookups", Reduce::Sum),
    ("cache_hits", Reduce::Sum),
    ("eint", Reduce::Sum),
];

/// Backend fields beyond haproxystats' lists, as [`FRONTEND_EXTENDED`].
pub const BACKEND_EXTENDED: &[(&str, Reduce)] = &[
    ("lastchg", Reduce::Min),
    ("connect", Reduce::Sum),
    ("reuse", Reduce::Sum),
    ("wrew", Reduce::Sum),
    ("cache_lookups", Reduce::Sum),
    ("cache_hits", Reduce::Sum),
    ("lastsess", Reduce::Min),
    ("qtime_max", Reduce::Max),
    ("ctime_max", Reduce::Max),
    ("rtime_max", Reduce::Max),
    ("ttime_max", Reduce::Max),
    ("eint", Reduce::Sum),
    ("uweight", Reduce::Mean),
];

/// Server fields beyond haproxystats' lists, as [`FRONTEND_EXTENDED`].
pub const SERVER_EXTENDED: &[(&str, Reduce)] = &[
    ("lastchg", Reduce::Min),
    ("downtime", Reduce::Sum),
    ("qlimit", Reduce::Sum),
    ("check_code", Reduce::Max),
    ("check_duration", Reduce::Max),
    ("lastsess", Reduce::Min),
    ("wrew", Reduce::Sum),
    ("connect", Reduce::Sum),
    ("reuse", Reduce::Sum),
    ("srv_icur", Reduce::Sum),
    // HAProxy names this column `src_ilim` in its CSV (2.6, 3.0): both are read.
    ("src_ilim", Reduce::Sum),
    ("srv_ilim", Reduce::Sum),
    ("qtime_max", Reduce::Max),
    ("ctime_max", Reduce::Max),
    ("rtime_max", Reduce::Max),
    ("ttime_max", Reduce::Max),
    ("eint", Reduce::Sum),
    ("idle_conn_cur", Reduce::Sum),
    ("safe_conn_cur", Reduce::Sum),
    ("used_conn_cur", Reduce::Sum),
    ("need_conn_est", Reduce::Sum),
    ("uweight", Reduce::Mean),
];

/// A text column whose values are states, counted per state: the number of
/// processes that report an entity in each state (one, for one process).
#[derive(Debug)]
pub struct States {
    /// The `show stat` column (`status`, `check_status`).
    pub column: &'static str,
    /// The states, in HAProxy's exporter's order; a field `<column>=<state>` each.
    pub labels: &'static [&'static str],
    /// The state a cell's text is in, as an index into `labels`.
    pub state_of: fn(&str) -> Option<usize>,
}

/// A frontend is UP unless stopped, as HAProxy's exporter says.
pub const FRONTEND_STATES: &[States] = &[States {
    column: "status",
    labels: &["DOWN", "UP"],
    state_of: |text| match text {
        "" => None,
        "STOP" => Some(0),
        _ => Some(1),
    },
}];

/// A backend's `status`.
pub const BACKEND_STATES: &[States] = &[States {
    column: "status",
    labels: &["DOWN", "UP"],
    state_of: |text| match text {
        "DOWN" => Some(0),
        "UP" => Some(1),
        _ => None,
    },
}];

/// The states of a server's `status` (its first word: `UP 1/3` is UP,
/// `MAINT (via be/s1)` is MAINT, and a server without checks is UP).
pub const SERVER_STATUS: &[&str] = &["DOWN", "UP", "MAINT", "DRAIN", "NOLB"];

/// The health-check results HAProxy's exporter reports (those that can say
/// a server failed or passed), in its order.
pub const CHECK_STATUS: &[&str] = &[
    "HANA", "SOCKERR", "L4OK", "L4TOUT", "L4CON", "L6OK", "L6TOUT", "L6RSP", "L7TOUT", "L7RSP", "L7OK", "L7OKC",
    "L7STS", "PROCERR", "PROCTOUT", "PROCOK",
];

/// A server's `status` and `check_status` (`* L7OK` while a check runs).
pub const SERVER_STATES: &[States] = &[
    States {
        column: "status",
        labels: SERVER_STATUS,
        state_of: |text| match text.split(' ').next()? {
            "no" => Some(1),
            word => SERVER_STATUS.iter().position(|state| *state == word),
        },
    },
    States {
        column: "check_status",
        labels: CHECK_STATUS,
        state_of: |text| {
            let result = text.strip_prefix("* ").unwrap_or(text);
            CHECK_STATUS.iter().position(|state| *state == result)
        },
    },
];
