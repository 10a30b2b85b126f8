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
