//! Aggregation of one snapshot across HAProxy processes, the way haproxystats
//! (git HEAD) aggregates, with its defects fixed.
//!
//! Input: the parsed `show info` and `show stat` replies of one round, one per
//! process (socket). Output: metric paths (below the Graphite prefix) with
//! values, in haproxystats' emission order. The rules:
//! - Daemon (`show info`): 37 counters summed, `Idle_pct`/`Uptime_sec`
//!   averaged, CPU-usage percentiles and sample standard deviation,
//!   `calculate-percentages`, and `per-process-metrics`.
//! - Frontends: summed.
//! - Backends and servers: summed lists; `act bck weight` / `throttle weight`
//!   averaged over all processes; `rtime ctime qtime ttime` averaged over the
//!   processes whose row has `lbtot > 0`.
//! - `TotalServers`, cross-backend servers (`aggr-server-metrics`),
//!   exclusions and groups.
//!
//! Fixes: a metric some process does not report is not emitted (never a
//! crash, never a partial sum); a mean with no process to average over is not
//! emitted (never NaN); a custom list never yields `_x`/`_y` names (a listed
//! averaged metric is emitted once, averaged); names are sanitised to
//! `[A-Za-z0-9_:-]`; per-process metrics are keyed by socket name when
//! processes report the same `Process_num`. The `Metrics*` self-metrics keep
//! haproxystats' formula: 1 + the cells computed, whether or not a NaN cell was
//! sent.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Instant;

use haproxy::{ObjectType, ShowInfo, ShowStat};
use regex::Regex;

use crate::metric_names::{BACKEND, BACKEND_AVG, BACKEND_AVG_TIME, FRONTEND, SERVER, SERVER_AVG, SERVER_AVG_TIME};

/// `show info` counters summed across processes, in emission order.
pub const DAEMON_SUMMED: &[&str] = &[
    "CompressBpsIn",
    "CompressBpsOut",
    "CompressBpsRateLim",
    "ConnRate",
    "ConnRateLimit",
    "CumConns",
    "CumReq",
    "CumSslConns",
    "CurrConns",
    "CurrSslConns",
    "Hard_maxconn",
    "MaxConnRate",
    "MaxSessRate",
    "MaxSslConns",
    "MaxSslRate",
    "MaxZlibMemUsage",
    "Maxconn",
    "Maxpipes",
    "Maxsock",
    "Memmax_MB",
    "PipesFree",
    "PipesUsed",
    "Run_queue",
    "SessRate",
    "SessRateLimit",
    "SslBackendKeyRate",
    "SslBackendMaxKeyRate",
    "SslCacheLookups",
    "SslCacheMisses",
    "SslFrontendKeyRate",
    "SslFrontendMaxKeyRate",
    "SslFrontendSessionReuse_pct",
    "SslRate",
    "SslRateLimit",
    "Tasks",
    "Ulimit-n",
    "ZlibMemUsage",
];

/// `show info` values averaged across processes.
const DAEMON_AVERAGED: &[&str] = &["Idle_pct", "Uptime_sec"];

/// `calculate-percentages`: (value, limit, metric name).
const PERCENTAGES: &[(&str, &str, &str)] = &[
    ("CurrConns", "Maxconn", "ConnPercentage"),
    ("ConnRate", "ConnRateLimit", "ConnRatePercentage"),
    ("CurrSslConns", "MaxSslConns", "SslConnPercentage"),
    ("SslRate", "SslRateLimit", "SslRatePercentage"),
];

const PERCENTILES: &[u32] = &[25, 50, 75, 95, 99];

/// Group patterns: `[frontend|backend|server-groups]` with `group-namespace`.
#[derive(Debug, Clone, Default)]
pub struct Groups {
    /// `group-namespace`; no grouping when `None`.
    pub namespace: Option<String>,
    /// Also write every grouped datapoint under the ungrouped path.
    pub double_writes: bool,
    /// `[frontend-groups]` in file order.
    pub frontend: Vec<(String, Regex)>,
    /// `[backend-groups]` in file order.
    pub backend: Vec<(String, Regex)>,
    /// `[server-groups]` in file order.
    pub server: Vec<(String, Regex)>,
}

/// What to compute.
#[derive(Debug, Clone)]
pub struct Options {
    /// `per-process-metrics`.
    pub per_process_metrics: bool,
    /// `calculate-percentages`.
    pub calculate_percentages: bool,
    /// `aggr-server-metrics`.
    pub aggr_server_metrics: bool,
    /// `frontend-metrics`, else the default list.
    pub frontend_metrics: Vec<String>,
    /// Summed part of `backend-metrics`, else the default list.
    pub backend_metrics: Vec<String>,
    /// Summed part of `server-metrics`, else the default list.
    pub server_metrics: Vec<String>,
    /// Sanitised frontend names not to report.
    pub exclude_frontends: HashSet<String>,
    /// Sanitised backend names not to report (their servers neither, except in `aggr-server-metrics`).
    pub exclude_backends: HashSet<String>,
    /// Grouping.
    pub groups: Groups,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            per_process_metrics: false,
            calculate_percentages: false,
            aggr_server_metrics: false,
            frontend_metrics: owned(FRONTEND),
            backend_metrics: owned(BACKEND),
            server_metrics: owned(SERVER),
            exclude_frontends: HashSet::new(),
            exclude_backends: HashSet::new(),
            groups: Groups::default(),
        }
    }
}

/// The summed part of a custom list: averaged names are always emitted
/// averaged, so listing them does not sum them too (no `_x`/`_y`).
pub fn summed_part(list: &[String], averaged: &[&[&str]]) -> Vec<String> {
    list.iter()
        .filter(|name| !averaged.iter().any(|group| group.contains(&name.as_str())))
        .cloned()
        .collect()
}

fn owned(names: &[&str]) -> Vec<String> {
    names.iter().map(|name| (*name).to_owned()).collect()
}

/// One metric below the Graphite prefix.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    /// Dot-separated path, e.g. `backend.be_app.stot`.
    pub path: String,
    /// The value (never NaN or infinite).
    pub value: f64,
}

/// The metrics of one snapshot, and the problems met while computing them.
#[derive(Debug, Default)]
pub struct Aggregation {
    /// In emission order.
    pub metrics: Vec<Metric>,
    /// What was skipped and why (one line each).
    pub problems: Vec<String>,
}

/// Replaces every byte outside `[A-Za-z0-9_:-]` with `_`, so a name can neither
/// add a path level (`.`) nor break the line protocol (spaces, newlines).
pub fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | ':' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Aggregates one snapshot. `infos` and `stats` are (socket name, reply) in
/// socket-name order.
pub fn aggregate(infos: &[(String, ShowInfo)], stats: &[(String, ShowStat)], options: &Options) -> Aggregation {
    let started = Instant::now();
    let mut out = Aggregation::default();
    let daemon_cells = daemon(infos, options, &mut out);
    self_metric(&mut out, "MetricsHAProxy", 1.0 + daemon_cells as f64);
    self_metric(&mut out, "WallClockTimeHAProxy", seconds(started));

    let sites = Sites::collect(stats, options, &mut out.problems);
    let phase = Instant::now();
    let frontend_cells = sites.emit_frontends(options, &mut out.metrics);
    self_metric(&mut out, "MetricsFrontend", 1.0 + frontend_cells as f64);
    self_metric(&mut out, "WallClockTimeFrontends", seconds(phase));

    let phase = Instant::now();
    let backend_cells = sites.emit_backends(options, &mut out.metrics);
    self_metric(&mut out, "MetricsBackend", 1.0 + backend_cells as f64);
    self_metric(&mut out, "WallClockTimeBackends", seconds(phase));

    let phase = Instant::now();
    let server_cells = sites.emit_servers(options, &mut out.metrics);
    self_metric(&mut out, "MetricsServer", 1.0 + server_cells as f64);
    self_metric(&mut out, "WallClockTimeServers", seconds(phase));
    self_metric(&mut out, "WallClockTimeAllStats", seconds(started));
    out
}

fn seconds(since: Instant) -> f64 {
    (since.elapsed().as_secs_f64() * 1000.0).round() / 1000.0
}

fn self_metric(out: &mut Aggregation, name: &str, value: f64) {
    out.metrics.push(Metric {
        path: format!("haproxystats.{name}"),
        value,
    });
}

/// Pushes `value` at `path` unless it is NaN or infinite.
fn push(metrics: &mut Vec<Metric>, path: String, value: f64) {
    if value.is_finite() {
        metrics.push(Metric { path, value });
    }
}

// ------------------------------------------------------------------ daemon

/// Emits the daemon metrics; returns the number of cells computed.
fn daemon(infos: &[(String, ShowInfo)], options: &Options, out: &mut Aggregation) -> usize {
    if infos.is_empty() {
        return 0;
    }
    let all = |name: &str| -> Option<Vec<f64>> {
        infos
            .iter()
            .map(|(_, info)| info.int(name).map(|value| value as f64))
            .collect()
    };
    let mut cells = 0;
    let summed: Vec<(&str, Vec<f64>)> = DAEMON_SUMMED
        .iter()
        .filter_map(|name| Some((*name, all(name)?)))
        .collect();
    let missing: Vec<&str> = DAEMON_SUMMED
        .iter()
        .copied()
        .filter(|name| all(name).is_none())
        .collect();
    if !missing.is_empty() {
        out.problems.push(format!(
            "show info: not reported by every process, not emitted: {}",
            missing.join(", ")
        ));
    }
    for (name, values) in &summed {
        push(&mut out.metrics, format!("daemon.{name}"), values.iter().sum());
        cells += 1;
    }
    for name in DAEMON_AVERAGED {
        if let Some(values) = all(name) {
            push(&mut out.metrics, format!("daemon.{name}"), mean(&values));
            cells += 1;
        }
    }
    let cpu: Option<Vec<f64>> = all("Idle_pct").map(|idle| idle.iter().map(|value| 100.0 - value).collect());
    if let Some(cpu) = cpu.as_ref().filter(|_| infos.len() > 1) {
        let mut sorted = cpu.clone();
        sorted.sort_by(f64::total_cmp);
        for percentile in PERCENTILES {
            push(
                &mut out.metrics,
                format!("daemon.{percentile}PercentileCpuUsagePct"),
                nearest(&sorted, *percentile),
            );
            cells += 1;
        }
        push(&mut out.metrics, "daemon.StdCpuUsagePct".into(), sample_std(cpu));
        cells += 1;
    }
    if options.calculate_percentages {
        for (value, limit, name) in PERCENTAGES {
            cells += 1;
            match (all(value), all(limit)) {
                (Some(values), Some(limits)) => {
                    push(
                        &mut out.metrics,
                        format!("daemon.{name}"),
                        percentage(values.iter().sum(), limits.iter().sum()),
                    );
                }
                _ => out
                    .problems
                    .push(format!("{name}: {value} or {limit} not reported by every process")),
            }
        }
    }
    if options.per_process_metrics {
        let keys = process_keys(infos);
        for (index, key) in keys.iter().enumerate() {
            for (name, values) in &summed {
                push(&mut out.metrics, format!("daemon.process.{key}.{name}"), values[index]);
                cells += 1;
            }
            if let Some(cpu) = &cpu {
                push(
                    &mut out.metrics,
                    format!("daemon.process.{key}.CpuUsagePct"),
                    cpu[index],
                );
                cells += 1;
            }
            for name in DAEMON_AVERAGED {
                if let Some(values) = all(name) {
                    push(&mut out.metrics, format!("daemon.process.{key}.{name}"), values[index]);
                    cells += 1;
                }
            }
        }
        if options.calculate_percentages {
            for (value, limit, name) in PERCENTAGES {
                let (Some(values), Some(limits)) = (all(value), all(limit)) else {
                    continue;
                };
                for (index, key) in keys.iter().enumerate() {
                    push(
                        &mut out.metrics,
                        format!("daemon.process.{key}.{name}"),
                        percentage(values[index], limits[index]),
                    );
                    cells += 1;
                }
            }
        }
    }
    cells
}

/// `Process_num` of each process, or the socket names when those are missing
/// or not distinct (separate instances all report 1).
fn process_keys(infos: &[(String, ShowInfo)]) -> Vec<String> {
    let numbers: Option<Vec<i64>> = infos.iter().map(|(_, info)| info.int("Process_num")).collect();
    if let Some(numbers) = numbers {
        let distinct: HashSet<i64> = numbers.iter().copied().collect();
        if distinct.len() == numbers.len() {
            return numbers.iter().map(ToString::to_string).collect();
        }
    }
    infos.iter().map(|(name, _)| sanitize(name)).collect()
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

/// numpy's `percentile(..., interpolation="nearest")`: the sorted value at the
/// fractional index rounded half to even.
fn nearest(sorted: &[f64], percentile: u32) -> f64 {
    let position = f64::from(percentile) / 100.0 * (sorted.len() - 1) as f64;
    let index = position.round_ties_even() as usize;
    sorted[index.min(sorted.len() - 1)]
}

/// Sample standard deviation (ddof = 1).
fn sample_std(values: &[f64]) -> f64 {
    let average = mean(values);
    let squares: f64 = values.iter().map(|value| (value - average).powi(2)).sum();
    (squares / (values.len() - 1) as f64).sqrt()
}

/// `int(100 * value / limit)`, 0 when the limit is 0.
fn percentage(value: f64, limit: f64) -> f64 {
    if limit == 0.0 {
        0.0
    } else {
        (100.0 * value / limit).trunc()
    }
}

// ------------------------------------------------------------------ sites

/// Sums, and the parts of means, of one frontend, backend or server.
#[derive(Debug, Clone, Default)]
struct Tally {
    summed: Vec<f64>,
    averaged: Vec<f64>,
    rows: f64,
    timed: Vec<f64>,
    timed_rows: f64,
}

impl Tally {
    fn merge(&mut self, other: &Tally) {
        add(&mut self.summed, &other.summed);
        add(&mut self.averaged, &other.averaged);
        add(&mut self.timed, &other.timed);
        self.rows += other.rows;
        self.timed_rows += other.timed_rows;
    }
}

fn add(into: &mut [f64], from: &[f64]) {
    for (total, value) in into.iter_mut().zip(from) {
        *total += value;
    }
}

/// The columns tallied for one kind of row: summed, averaged over all rows,
/// averaged over rows with `lbtot > 0`.
struct Columns {
    summed: Vec<String>,
    averaged: &'static [&'static str],
    timed: &'static [&'static str],
}

impl Columns {
    fn names(&self) -> impl Iterator<Item = &str> {
        self.summed
            .iter()
            .map(String::as_str)
            .chain(self.averaged.iter().copied())
            .chain(self.timed.iter().copied())
    }

    /// Indexes into `summed` of `names`, in the order of `names`.
    fn select(&self, names: &[String]) -> Vec<usize> {
        names
            .iter()
            .filter_map(|name| self.summed.iter().position(|summed| summed == name))
            .collect()
    }
}

/// What is tallied for frontends, backends and servers. Servers tally the
/// configured summed list plus the default names it lacks, so the same tallies
/// serve both per-backend servers (configured list) and `aggr-server-metrics`
/// (always the full default list).
struct Layout {
    kinds: [Columns; 3],
    server_configured: Vec<usize>,
    server_default: Vec<usize>,
}

const FE: usize = 0;
const BE: usize = 1;
const SV: usize = 2;
const KIND_NAMES: [&str; 3] = ["frontend", "backend", "server"];

impl Layout {
    fn new(options: &Options) -> Layout {
        let mut server = options.server_metrics.clone();
        server.extend(
            SERVER
                .iter()
                .filter(|name| !options.server_metrics.iter().any(|own| own == *name))
                .map(|name| (*name).to_owned()),
        );
        let kinds = [
            Columns {
                summed: options.frontend_metrics.clone(),
                averaged: &[],
                timed: &[],
            },
            Columns {
                summed: options.backend_metrics.clone(),
                averaged: BACKEND_AVG,
                timed: BACKEND_AVG_TIME,
            },
            Columns {
                summed: server,
                averaged: SERVER_AVG,
                timed: SERVER_AVG_TIME,
            },
        ];
        let server_configured = kinds[SV].select(&options.server_metrics);
        let server_default = kinds[SV].select(&owned(SERVER));
        Layout {
            kinds,
            server_configured,
            server_default,
        }
    }
}

/// Every frontend, backend and server of a snapshot, merged across processes.
struct Sites {
    layout: Layout,
    frontends: BTreeMap<String, Tally>,
    backends: BTreeMap<String, Tally>,
    servers: BTreeMap<(String, String), Tally>,
    servers_by_name: BTreeMap<String, Tally>,
    /// Per kind, per column of [`Columns::names`]: whether every reply has it.
    present: [Vec<bool>; 3],
}

impl Sites {
    fn collect(stats: &[(String, ShowStat)], options: &Options, problems: &mut Vec<String>) -> Sites {
        let layout = Layout::new(options);
        let mut used = Vec::with_capacity(stats.len());
        let mut files = Vec::with_capacity(stats.len());
        for (name, stat) in stats {
            match FileTallies::read(stat, &layout) {
                Ok(file) => {
                    used.push(stat);
                    files.push(file);
                }
                Err(error) => problems.push(format!("{name}_stat: {error}; the file is left out of this snapshot")),
            }
        }
        // A column counts only when every reply used has it: no partial sums.
        let present = [FE, BE, SV].map(|kind| {
            layout.kinds[kind]
                .names()
                .map(|name| !used.is_empty() && used.iter().all(|stat| stat.column(name).is_some()))
                .collect::<Vec<bool>>()
        });
        if !used.is_empty() {
            for kind in [FE, BE, SV] {
                let missing: Vec<&str> = layout.kinds[kind]
                    .names()
                    .zip(&present[kind])
                    .filter(|(_, here)| !**here)
                    .map(|(name, _)| name)
                    .collect();
                if !missing.is_empty() {
                    problems.push(format!(
                        "show stat: {} columns not reported by every process, not emitted: {}",
                        KIND_NAMES[kind],
                        missing.join(", ")
                    ));
                }
            }
        }
        let mut sites = Sites {
            layout,
            frontends: BTreeMap::new(),
            backends: BTreeMap::new(),
            servers: BTreeMap::new(),
            servers_by_name: BTreeMap::new(),
            present,
        };
        for file in files {
            sites.merge(file);
        }
        sites
    }

    fn merge(&mut self, file: FileTallies) {
        for (key, tally) in file.frontends {
            merge_into(&mut self.frontends, key, &tally);
        }
        for (key, tally) in file.backends {
            merge_into(&mut self.backends, key, &tally);
        }
        for (key, tally) in file.servers {
            merge_into(&mut self.servers_by_name, key.1.clone(), &tally);
            merge_into(&mut self.servers, key, &tally);
        }
    }

    fn emit_frontends(&self, options: &Options, metrics: &mut Vec<Metric>) -> usize {
        let all: Vec<usize> = (0..self.layout.kinds[FE].summed.len()).collect();
        let mut cells = 0;
        for (name, tally) in self
            .frontends
            .iter()
            .filter(|(name, _)| !options.exclude_frontends.contains(*name))
        {
            let prefixes = prefixes(&options.groups, &options.groups.frontend, name);
            cells += self.emit(metrics, &prefixes, &format!("frontend.{name}"), tally, FE, &all);
        }
        cells
    }

    fn emit_backends(&self, options: &Options, metrics: &mut Vec<Metric>) -> usize {
        let all: Vec<usize> = (0..self.layout.kinds[BE].summed.len()).collect();
        let mut cells = 0;
        for (name, tally) in self
            .backends
            .iter()
            .filter(|(name, _)| !options.exclude_backends.contains(*name))
        {
            let prefixes = prefixes(&options.groups, &options.groups.backend, name);
            cells += self.emit(metrics, &prefixes, &format!("backend.{name}"), tally, BE, &all);
        }
        cells
    }

    fn emit_servers(&self, options: &Options, metrics: &mut Vec<Metric>) -> usize {
        let mut cells = 0;
        let included = |(backend, _): &&(String, String)| !options.exclude_backends.contains(backend);
        let mut totals: BTreeMap<&str, usize> = BTreeMap::new();
        for (backend, _) in self.servers.keys().filter(included) {
            *totals.entry(backend.as_str()).or_default() += 1;
        }
        for (backend, total) in &totals {
            for prefix in prefixes(&options.groups, &options.groups.backend, backend) {
                metrics.push(Metric {
                    path: format!("{prefix}backend.{backend}.TotalServers"),
                    value: *total as f64,
                });
            }
            cells += 1;
        }
        for ((backend, server), tally) in self.servers.iter().filter(|(key, _)| included(key)) {
            let prefixes = prefixes(&options.groups, &options.groups.backend, backend);
            let base = format!("backend.{backend}.server.{server}");
            cells += self.emit(metrics, &prefixes, &base, tally, SV, &self.layout.server_configured);
        }
        if options.aggr_server_metrics {
            for (server, tally) in &self.servers_by_name {
                let prefixes = prefixes(&options.groups, &options.groups.server, server);
                cells += self.emit(
                    metrics,
                    &prefixes,
                    &format!("server.{server}"),
                    tally,
                    SV,
                    &self.layout.server_default,
                );
            }
        }
        cells
    }

    /// Emits the `selected` summed columns, then the averaged and timed ones,
    /// of one entity; returns the cells computed (one per column every reply has).
    fn emit(
        &self,
        metrics: &mut Vec<Metric>,
        prefixes: &[String],
        base: &str,
        tally: &Tally,
        kind: usize,
        selected: &[usize],
    ) -> usize {
        let columns = &self.layout.kinds[kind];
        let present = &self.present[kind];
        let summed_count = columns.summed.len();
        let mut cells = 0;
        let mut write = |name: &str, value: f64| {
            for prefix in prefixes {
                push(metrics, format!("{prefix}{base}.{name}"), value);
            }
            cells += 1;
        };
        for &index in selected {
            if present[index] {
                write(&columns.summed[index], tally.summed[index]);
            }
        }
        for (offset, name) in columns.averaged.iter().enumerate() {
            if present[summed_count + offset] {
                write(name, tally.averaged[offset] / tally.rows);
            }
        }
        for (offset, name) in columns.timed.iter().enumerate() {
            if present[summed_count + columns.averaged.len() + offset] {
                write(name, tally.timed[offset] / tally.timed_rows);
            }
        }
        cells
    }
}

fn merge_into<K: Ord>(map: &mut BTreeMap<K, Tally>, key: K, tally: &Tally) {
    match map.get_mut(&key) {
        Some(existing) => existing.merge(tally),
        None => {
            map.insert(key, tally.clone());
        }
    }
}

/// Path prefixes for an entity: `""` ungrouped, `"<namespace>.<group>."` when
/// a pattern matches (first match wins), both with double writes.
fn prefixes(groups: &Groups, patterns: &[(String, Regex)], name: &str) -> Vec<String> {
    let Some(namespace) = &groups.namespace else {
        return vec![String::new()];
    };
    match patterns.iter().find(|(_, pattern)| pattern.is_match(name)) {
        None => vec![String::new()],
        Some((group, _)) if groups.double_writes => vec![format!("{namespace}.{group}."), String::new()],
        Some((group, _)) => vec![format!("{namespace}.{group}.")],
    }
}

/// The tallies of one `show stat` reply, kept apart until the whole file read
/// cleanly so that a bad cell leaves the file out rather than half of it.
struct FileTallies {
    frontends: HashMap<String, Tally>,
    backends: HashMap<String, Tally>,
    servers: HashMap<(String, String), Tally>,
}

impl FileTallies {
    fn read(stat: &ShowStat, layout: &Layout) -> Result<FileTallies, haproxy::ValueError> {
        let indexes = [FE, BE, SV].map(|kind| {
            let columns = &layout.kinds[kind];
            (
                columns.summed.iter().map(|name| stat.column(name)).collect::<Vec<_>>(),
                columns
                    .averaged
                    .iter()
                    .map(|name| stat.column(name))
                    .collect::<Vec<_>>(),
                columns.timed.iter().map(|name| stat.column(name)).collect::<Vec<_>>(),
            )
        });
        let lbtot = stat.column("lbtot");
        let mut file = FileTallies {
            frontends: HashMap::new(),
            backends: HashMap::new(),
            servers: HashMap::new(),
        };
        for row in stat.rows() {
            let kind = match row.object_type() {
                ObjectType::Frontend => FE,
                ObjectType::Backend => BE,
                ObjectType::Server => SV,
                ObjectType::Listener => continue,
            };
            let (summed, averaged, timed) = &indexes[kind];
            let value = |index: &Option<usize>| -> Result<f64, haproxy::ValueError> {
                Ok(match index {
                    Some(index) => row.int_at(*index)?.unwrap_or(0) as f64,
                    None => 0.0,
                })
            };
            let read_all = |indexes: &[Option<usize>]| indexes.iter().map(value).collect::<Result<Vec<f64>, _>>();
            let balanced = kind != FE && value(&lbtot)? > 0.0;
            let tally = Tally {
                summed: read_all(summed)?,
                averaged: read_all(averaged)?,
                rows: 1.0,
                timed: if balanced {
                    read_all(timed)?
                } else {
                    vec![0.0; timed.len()]
                },
                timed_rows: if balanced { 1.0 } else { 0.0 },
            };
            let proxy = sanitize(&row.pxname());
            match kind {
                FE => merge_hash(&mut file.frontends, proxy, tally),
                BE => merge_hash(&mut file.backends, proxy, tally),
                _ => merge_hash(&mut file.servers, (proxy, sanitize(&row.svname())), tally),
            }
        }
        Ok(file)
    }
}

fn merge_hash<K: std::hash::Hash + Eq>(map: &mut HashMap<K, Tally>, key: K, tally: Tally) {
    match map.get_mut(&key) {
        Some(existing) => existing.merge(&tally),
        None => {
            map.insert(key, tally);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitising_keeps_only_path_safe_bytes() {
        assert_eq!(sanitize("fe.dotted.name"), "fe_dotted_name");
        assert_eq!(sanitize("be app\nx 1700000000\nevil"), "be_app_x_1700000000_evil");
        assert_eq!(sanitize("Ulimit-n:ok_9"), "Ulimit-n:ok_9");
        assert_eq!(sanitize("é/ü"), "___");
    }

    #[test]
    fn percentiles_round_half_to_even_like_numpy_nearest() {
        assert_eq!(nearest(&[10.0, 25.0], 50), 10.0);
        assert_eq!(nearest(&[10.0, 25.0], 75), 25.0);
        assert_eq!(nearest(&[1.0, 2.0, 3.0], 25), 1.0);
        assert_eq!(nearest(&[1.0, 2.0, 3.0], 75), 3.0);
        assert!((sample_std(&[10.0, 25.0]) - 10.606601717798213).abs() < 1e-12);
    }

    #[test]
    fn custom_lists_drop_averaged_names_from_the_summed_part() {
        let list = owned(&["bin", "act", "rtime"]);
        assert_eq!(summed_part(&list, &[BACKEND_AVG, BACKEND_AVG_TIME]), ["bin"]);
    }
}
