//! Aggregation of one snapshot across HAProxy processes, the way haproxystats
//! (git HEAD) aggregates, with its defects fixed.
//!
//! Input: the parsed `show info` replies and the `show stat` files of one
//! round, one per process (socket). Output: Graphite lines, written straight
//! into [`Lines`] in haproxystats' emission order. The rules:
//! - Daemon (`show info`): 37 counters summed, `Idle_pct`/`Uptime_sec`
//!   averaged, CPU-usage percentiles and sample standard deviation,
//!   `calculate-percentages`, `per-process-metrics`.
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
//!
//! Each `show stat` file is streamed ([`StatReader`]) into tallies of its own,
//! on as many threads as there are cores. A file with a bad cell is left out
//! whole. Only the tallies are kept, never the replies.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use haproxy::{Header, ObjectType, ShowInfo, StatReader};
use regex::Regex;

use crate::stats::metric_names::{
    BACKEND, BACKEND_AVG, BACKEND_AVG_TIME, FRONTEND, SERVER, SERVER_AVG, SERVER_AVG_TIME,
};

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

/// Graphite plaintext lines of one snapshot: `<prefix>.<path> <value> <timestamp>`.
#[derive(Debug, Clone, Default)]
pub struct Lines {
    /// `<prefix>.`
    head: String,
    /// ` <timestamp>\n`
    tail: String,
    /// Finished chunks, in order, before `text`.
    chunks: Vec<String>,
    text: String,
    count: usize,
}

impl Lines {
    /// Lines under `prefix` (e.g. `loadbalancers.lb1.haproxy`) stamped `timestamp`.
    pub fn new(prefix: &str, timestamp: u64) -> Lines {
        Lines {
            head: format!("{prefix}."),
            tail: format!(" {timestamp}\n"),
            chunks: Vec::new(),
            text: String::new(),
            count: 0,
        }
    }

    /// Appends `<prefix>.<group><path> <value> <timestamp>`; NaN and infinite
    /// values are not written.
    pub fn push(&mut self, group: &str, path: std::fmt::Arguments<'_>, value: f64) {
        if value.is_finite() {
            self.text.push_str(&self.head);
            self.text.push_str(group);
            let _ = self.text.write_fmt(path);
            self.finish(value);
        }
    }

    /// [`Lines::push`] for a path given in pieces, without formatting machinery.
    fn push_joined(&mut self, base: &str, name: &str, value: f64) {
        if value.is_finite() {
            self.text.push_str(&self.head);
            self.text.push_str(base);
            self.text.push_str(name);
            self.finish(value);
        }
    }

    /// ` <value> <timestamp>\n`: integral values as integers (`40`), others in
    /// their shortest exact form (`10.606601717798213`).
    fn finish(&mut self, value: f64) {
        self.text.push(' ');
        if value.fract() == 0.0 && value.abs() < 1e15 {
            self.text.push_str(itoa::Buffer::new().format(value as i64));
        } else {
            let _ = write!(self.text, "{value}");
        }
        self.text.push_str(&self.tail);
        self.count += 1;
    }

    /// Empty lines with the same prefix and timestamp, to be appended later.
    fn sibling(&self) -> Lines {
        Lines {
            head: self.head.clone(),
            tail: self.tail.clone(),
            chunks: Vec::new(),
            text: String::new(),
            count: 0,
        }
    }

    /// Appends the lines of `other` as chunks of their own (nothing is copied).
    fn append(&mut self, other: Lines) {
        self.chunks.push(std::mem::take(&mut self.text));
        self.chunks.extend(other.chunks);
        self.chunks.push(other.text);
        self.count += other.count;
    }

    /// Makes room for about `lines` more lines.
    fn reserve(&mut self, lines: usize) {
        self.text
            .reserve(lines.saturating_mul(self.head.len() + self.tail.len() + 56));
    }

    /// The lines, as chunks to be written in order, and their number.
    pub fn into_parts(mut self) -> (Vec<String>, usize) {
        self.chunks.push(self.text);
        self.chunks.retain(|chunk| !chunk.is_empty());
        (self.chunks, self.count)
    }
}

/// A `show stat` file of the round: the socket it came from and where it is.
#[derive(Debug, Clone)]
pub struct StatFile {
    /// Socket name (`admin1.sock`).
    pub socket: String,
    /// The `<socket>_stat` file.
    pub path: PathBuf,
}

/// What an aggregation left out, and how many `show stat` files it used.
#[derive(Debug, Default)]
pub struct Report {
    /// What was skipped and why (one line each).
    pub problems: Vec<String>,
    /// `show stat` files that were read whole.
    pub stat_files_used: usize,
}

/// Replaces every byte outside `[A-Za-z0-9_:-]` with `_`, so a name can neither
/// add a path level (`.`) nor break the line protocol (spaces, newlines).
pub fn sanitize(name: &str) -> Cow<'_, str> {
    let clean = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | ':' | '-');
    if name.chars().all(clean) {
        return Cow::Borrowed(name);
    }
    Cow::Owned(name.chars().map(|c| if clean(c) { c } else { '_' }).collect())
}

/// Aggregates one snapshot into `lines`. `infos` are (socket name, reply) in
/// socket-name order; `stats` are read from disk here, one at a time per core.
pub fn aggregate(infos: &[(String, ShowInfo)], stats: &[StatFile], options: &Options, lines: &mut Lines) -> Report {
    let started = Instant::now();
    let mut report = Report::default();
    let daemon_cells = daemon(infos, options, lines, &mut report.problems);
    self_metric(lines, "MetricsHAProxy", 1.0 + daemon_cells as f64);
    self_metric(lines, "WallClockTimeHAProxy", seconds(started));

    let sites = Sites::collect(stats, options, &mut report);
    lines.reserve(sites.expected_lines(options));
    let phase = Instant::now();
    let frontend_cells = sites.emit_proxies(FE, options, lines);
    self_metric(lines, "MetricsFrontend", 1.0 + frontend_cells as f64);
    self_metric(lines, "WallClockTimeFrontends", seconds(phase));

    let phase = Instant::now();
    let backend_cells = sites.emit_proxies(BE, options, lines);
    self_metric(lines, "MetricsBackend", 1.0 + backend_cells as f64);
    self_metric(lines, "WallClockTimeBackends", seconds(phase));

    let phase = Instant::now();
    let server_cells = sites.emit_servers(options, lines);
    self_metric(lines, "MetricsServer", 1.0 + server_cells as f64);
    self_metric(lines, "WallClockTimeServers", seconds(phase));
    self_metric(lines, "WallClockTimeAllStats", seconds(started));
    report
}

/// Seconds since `since`, to the millisecond.
pub fn seconds(since: Instant) -> f64 {
    (since.elapsed().as_secs_f64() * 1000.0).round() / 1000.0
}

/// Writes `haproxystats.<name>` (never grouped).
pub fn self_metric(lines: &mut Lines, name: &str, value: f64) {
    lines.push("", format_args!("haproxystats.{name}"), value);
}

// ------------------------------------------------------------------ daemon

/// Emits the daemon metrics; returns the number of cells computed.
fn daemon(infos: &[(String, ShowInfo)], options: &Options, lines: &mut Lines, problems: &mut Vec<String>) -> usize {
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
    // A field no process reports is simply absent in this HAProxy version; one
    // that only some report means mixed versions, and is worth saying.
    let partly: Vec<&str> = DAEMON_SUMMED
        .iter()
        .copied()
        .filter(|name| {
            !summed.iter().any(|(known, _)| known == name) && infos.iter().any(|(_, info)| info.int(name).is_some())
        })
        .collect();
    if !partly.is_empty() {
        problems.push(format!(
            "show info: not reported by every process, not emitted: {}",
            partly.join(", ")
        ));
    }
    for (name, values) in &summed {
        lines.push("", format_args!("daemon.{name}"), values.iter().sum());
        cells += 1;
    }
    let averaged: Vec<(&str, Vec<f64>)> = DAEMON_AVERAGED
        .iter()
        .filter_map(|name| Some((*name, all(name)?)))
        .collect();
    for (name, values) in &averaged {
        lines.push("", format_args!("daemon.{name}"), mean(values));
        cells += 1;
    }
    let cpu: Option<Vec<f64>> = all("Idle_pct").map(|idle| idle.iter().map(|value| 100.0 - value).collect());
    if let Some(cpu) = cpu.as_ref().filter(|_| infos.len() > 1) {
        let mut sorted = cpu.clone();
        sorted.sort_by(f64::total_cmp);
        for percentile in PERCENTILES {
            lines.push(
                "",
                format_args!("daemon.{percentile}PercentileCpuUsagePct"),
                nearest(&sorted, *percentile),
            );
            cells += 1;
        }
        lines.push("", format_args!("daemon.StdCpuUsagePct"), sample_std(cpu));
        cells += 1;
    }
    if options.calculate_percentages {
        for (value, limit, name) in PERCENTAGES {
            cells += 1;
            match (all(value), all(limit)) {
                (Some(values), Some(limits)) => {
                    lines.push(
                        "",
                        format_args!("daemon.{name}"),
                        percentage(values.iter().sum(), limits.iter().sum()),
                    );
                }
                _ => problems.push(format!("{name}: {value} or {limit} not reported by every process")),
            }
        }
    }
    if options.per_process_metrics {
        let keys = process_keys(infos);
        for (index, key) in keys.iter().enumerate() {
            for (name, values) in &summed {
                lines.push("", format_args!("daemon.process.{key}.{name}"), values[index]);
                cells += 1;
            }
            if let Some(cpu) = &cpu {
                lines.push("", format_args!("daemon.process.{key}.CpuUsagePct"), cpu[index]);
                cells += 1;
            }
            for (name, values) in &averaged {
                lines.push("", format_args!("daemon.process.{key}.{name}"), values[index]);
                cells += 1;
            }
        }
        if options.calculate_percentages {
            for (value, limit, name) in PERCENTAGES {
                let (Some(values), Some(limits)) = (all(value), all(limit)) else {
                    continue;
                };
                for (index, key) in keys.iter().enumerate() {
                    lines.push(
                        "",
                        format_args!("daemon.process.{key}.{name}"),
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
    infos.iter().map(|(name, _)| sanitize(name).into_owned()).collect()
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

/// Sums, and the parts of means, of one frontend, backend or server; laid out
/// as [`Columns::names`]: summed, then averaged, then timed columns.
#[derive(Debug, Clone)]
struct Tally {
    values: Vec<f64>,
    rows: f64,
    timed_rows: f64,
}

impl Tally {
    fn new(width: usize) -> Tally {
        Tally {
            values: vec![0.0; width],
            rows: 0.0,
            timed_rows: 0.0,
        }
    }

    fn merge(&mut self, other: &Tally) {
        for (total, value) in self.values.iter_mut().zip(&other.values) {
            *total += value;
        }
        self.rows += other.rows;
        self.timed_rows += other.timed_rows;
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

    fn width(&self) -> usize {
        self.summed.len() + self.averaged.len() + self.timed.len()
    }

    /// Where the timed columns start in a [`Tally`].
    fn timed_start(&self) -> usize {
        self.summed.len() + self.averaged.len()
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
    /// Backend name → server name → tally.
    servers: BTreeMap<String, BTreeMap<String, Tally>>,
    servers_by_name: BTreeMap<String, Tally>,
    /// Per kind, per column of [`Columns::names`]: whether every reply used has it.
    present: [Vec<bool>; 3],
}

impl Sites {
    fn collect(stats: &[StatFile], options: &Options, report: &mut Report) -> Sites {
        let layout = Layout::new(options);
        let outcomes = read_in_parallel(stats, &layout);
        let mut present = [FE, BE, SV].map(|kind| vec![true; layout.kinds[kind].width()]);
        let mut somewhere = [FE, BE, SV].map(|kind| vec![false; layout.kinds[kind].width()]);
        let mut files = Vec::with_capacity(outcomes.len());
        for (file, outcome) in stats.iter().zip(outcomes) {
            match outcome {
                Ok(tallies) => {
                    for kind in [FE, BE, SV] {
                        for (index, found) in tallies.present[kind].iter().enumerate() {
                            present[kind][index] &= *found;
                            somewhere[kind][index] |= *found;
                        }
                    }
                    files.push(tallies);
                }
                Err(problem) => report.problems.push(format!(
                    "{}_stat: {problem}; the file is left out of this snapshot",
                    file.socket
                )),
            }
        }
        report.stat_files_used = files.len();
        if files.is_empty() {
            present = [FE, BE, SV].map(|kind| vec![false; layout.kinds[kind].width()]);
        } else {
            for kind in [FE, BE, SV] {
                // A column counts only when every reply used has it: no partial sums.
                // Columns no reply has are absent in this version, not a problem.
                let missing: Vec<&str> = layout.kinds[kind]
                    .names()
                    .enumerate()
                    .filter(|(index, _)| somewhere[kind][*index] && !present[kind][*index])
                    .map(|(_, name)| name)
                    .collect();
                if !missing.is_empty() {
                    report.problems.push(format!(
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
        let by_name = options.aggr_server_metrics;
        for file in files {
            merge_into(&mut sites.frontends, file.frontends);
            merge_into(&mut sites.backends, file.backends);
            for (backend, servers) in file.servers {
                // Keys are moved, not cloned: tens of thousands of servers per round.
                let merged = sites.servers.entry(backend).or_default();
                for (server, tally) in servers {
                    if by_name {
                        merge_one(&mut sites.servers_by_name, server.clone(), &tally);
                    }
                    match merged.entry(server) {
                        std::collections::btree_map::Entry::Occupied(mut existing) => existing.get_mut().merge(&tally),
                        std::collections::btree_map::Entry::Vacant(slot) => {
                            slot.insert(tally);
                        }
                    }
                }
            }
        }
        sites
    }

    /// About how many lines emission writes, to size the output once.
    fn expected_lines(&self, options: &Options) -> usize {
        let width = |kind: usize| self.layout.kinds[kind].width();
        let by_name = if options.aggr_server_metrics {
            self.servers_by_name.len() * width(SV)
        } else {
            0
        };
        let lines = self.frontends.len() * width(FE)
            + self.backends.len() * (width(BE) + 1)
            + self.servers.values().map(BTreeMap::len).sum::<usize>() * width(SV)
            + by_name;
        if options.groups.double_writes { lines * 2 } else { lines }
    }

    /// Frontends (`kind` FE) or backends (`kind` BE) that are not excluded,
    /// in name order; returns the cells computed.
    fn emit_proxies(&self, kind: usize, options: &Options, lines: &mut Lines) -> usize {
        let (tallies, excluded, patterns, label) = match kind {
            FE => (
                &self.frontends,
                &options.exclude_frontends,
                &options.groups.frontend,
                "frontend",
            ),
            _ => (
                &self.backends,
                &options.exclude_backends,
                &options.groups.backend,
                "backend",
            ),
        };
        let all: Vec<usize> = (0..self.layout.kinds[kind].summed.len()).collect();
        let mut cells = 0;
        for (name, tally) in tallies.iter().filter(|(name, _)| !excluded.contains(*name)) {
            let groups = prefixes(&options.groups, patterns, name);
            cells += self.emit(lines, &groups, &format!("{label}.{name}"), tally, kind, &all);
        }
        cells
    }

    fn emit_servers(&self, options: &Options, lines: &mut Lines) -> usize {
        let mut cells = 0;
        let included: Vec<(&String, &BTreeMap<String, Tally>)> = self
            .servers
            .iter()
            .filter(|(backend, _)| !options.exclude_backends.contains(*backend))
            .collect();
        for (backend, servers) in &included {
            let total = servers.len();
            for group in prefixes(&options.groups, &options.groups.backend, backend) {
                lines.push(&group, format_args!("backend.{backend}.TotalServers"), total as f64);
            }
            cells += 1;
        }
        // Most lines are server lines: the second half is written on another core
        // while this thread writes the first half straight into `lines`.
        let servers: Vec<(&String, &String, &Tally)> = included
            .iter()
            .flat_map(|(backend, servers)| servers.iter().map(move |(server, tally)| (*backend, server, tally)))
            .collect();
        let (first, second) = servers.split_at(servers.len() / 2);
        let write = |out: &mut Lines, part: &[(&String, &String, &Tally)]| -> usize {
            let selected = &self.layout.server_configured;
            let mut cells = 0;
            for (backend, server, tally) in part {
                let groups = prefixes(&options.groups, &options.groups.backend, backend);
                let base = format!("backend.{backend}.server.{server}");
                cells += self.emit(out, &groups, &base, tally, SV, selected);
            }
            cells
        };
        let mut second_out = lines.sibling();
        second_out.reserve(second.len() * (self.layout.server_configured.len() + 6));
        let (second_lines, second_cells) = std::thread::scope(|scope| {
            let helper = scope.spawn(|| {
                let mut out = std::mem::take(&mut second_out);
                let cells = write(&mut out, second);
                (out, cells)
            });
            cells += write(lines, first);
            helper.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        });
        lines.append(second_lines);
        cells += second_cells;
        if options.aggr_server_metrics {
            for (server, tally) in &self.servers_by_name {
                let groups = prefixes(&options.groups, &options.groups.server, server);
                cells += self.emit(
                    lines,
                    &groups,
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
        lines: &mut Lines,
        groups: &[String],
        base: &str,
        tally: &Tally,
        kind: usize,
        selected: &[usize],
    ) -> usize {
        let columns = &self.layout.kinds[kind];
        let present = &self.present[kind];
        let mut cells = 0;
        let bases: Vec<String> = groups.iter().map(|group| format!("{group}{base}.")).collect();
        let mut write = |name: &str, value: f64| {
            for base in &bases {
                lines.push_joined(base, name, value);
            }
            cells += 1;
        };
        for &index in selected {
            if present[index] {
                write(&columns.summed[index], tally.values[index]);
            }
        }
        for (offset, name) in columns.averaged.iter().enumerate() {
            let index = columns.summed.len() + offset;
            if present[index] {
                write(name, tally.values[index] / tally.rows);
            }
        }
        for (offset, name) in columns.timed.iter().enumerate() {
            let index = columns.timed_start() + offset;
            if present[index] {
                write(name, tally.values[index] / tally.timed_rows);
            }
        }
        cells
    }
}

fn merge_into(into: &mut BTreeMap<String, Tally>, from: HashMap<String, Tally>) {
    for (key, tally) in from {
        match into.get_mut(&key) {
            Some(existing) => existing.merge(&tally),
            None => {
                into.insert(key, tally);
            }
        }
    }
}

fn merge_one<K: Ord>(into: &mut BTreeMap<K, Tally>, key: K, tally: &Tally) {
    match into.get_mut(&key) {
        Some(existing) => existing.merge(tally),
        None => {
            into.insert(key, tally.clone());
        }
    }
}

/// Group prefixes of an entity: `""` ungrouped, `"<namespace>.<group>."` when
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

/// Reads the files on up to one thread per core; outcomes in file order.
fn read_in_parallel(stats: &[StatFile], layout: &Layout) -> Vec<Result<FileTallies, String>> {
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(stats.len())
        .max(1);
    let next = AtomicUsize::new(0);
    let mut outcomes: Vec<(usize, Result<FileTallies, String>)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    // One read buffer per thread, reused: fewer fresh pages to fault in.
                    let mut buffer = Vec::new();
                    loop {
                        let index = next.fetch_add(1, Ordering::SeqCst);
                        let Some(file) = stats.get(index) else { return done };
                        done.push((index, FileTallies::load(file, layout, &mut buffer)));
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|worker| worker.join().unwrap_or_default())
            .collect()
    });
    outcomes.sort_by_key(|(index, _)| *index);
    outcomes.into_iter().map(|(_, outcome)| outcome).collect()
}

/// The tallies of one `show stat` file, kept apart until the whole file read
/// cleanly so that a bad cell leaves the file out rather than half of it.
struct FileTallies {
    frontends: HashMap<String, Tally>,
    backends: HashMap<String, Tally>,
    servers: HashMap<String, HashMap<String, Tally>>,
    /// Per kind, per column: whether this reply has it.
    present: [Vec<bool>; 3],
}

impl FileTallies {
    fn load(file: &StatFile, layout: &Layout, buffer: &mut Vec<u8>) -> Result<FileTallies, String> {
        let opened = std::fs::File::open(&file.path).map_err(|error| format!("cannot read: {error}"))?;
        let mut rows = StatReader::with_buffer(opened, std::mem::take(buffer)).map_err(|error| error.to_string())?;
        let mut tallies = FileTallies::new(rows.header(), layout);
        let indexes = [FE, BE, SV].map(|kind| -> Vec<Option<usize>> {
            layout.kinds[kind]
                .names()
                .map(|name| rows.header().column(name))
                .collect()
        });
        let lbtot = rows.header().column("lbtot");
        // Split each row only as far as the last column read here.
        let identity = ["pxname", "svname", "type"].map(|name| rows.header().column(name));
        let last = indexes
            .iter()
            .flatten()
            .chain(&identity)
            .chain([&lbtot])
            .flatten()
            .max()
            .copied()
            .unwrap_or(0);
        rows.only_first_cells(last + 1);
        let mut last_line = 0;
        let outcome = rows.for_each_row(|row| -> anyhow::Result<()> {
            last_line = row.line();
            Ok(tallies.add(row, &indexes, lbtot, layout)?)
        });
        // HAProxy ends every reply with a newline: without one, the last row may be cut.
        let complete = rows.ended_with_line_end();
        *buffer = rows.into_buffer();
        outcome.map_err(|error| error.to_string())?;
        if !complete {
            return Err(format!("line {}: reply cut short", last_line.max(1)));
        }
        Ok(tallies)
    }

    fn new(header: &Header, layout: &Layout) -> FileTallies {
        let present = [FE, BE, SV].map(|kind| {
            layout.kinds[kind]
                .names()
                .map(|name| header.column(name).is_some())
                .collect()
        });
        FileTallies {
            frontends: HashMap::new(),
            backends: HashMap::new(),
            servers: HashMap::new(),
            present,
        }
    }

    fn add(
        &mut self,
        row: &haproxy::StatRow<'_>,
        indexes: &[Vec<Option<usize>>; 3],
        lbtot: Option<usize>,
        layout: &Layout,
    ) -> Result<(), haproxy::ValueError> {
        let kind = match row.object_type() {
            ObjectType::Frontend => FE,
            ObjectType::Backend => BE,
            ObjectType::Server => SV,
            ObjectType::Listener => return Ok(()),
        };
        let columns = &layout.kinds[kind];
        let value = |index: Option<usize>| -> Result<f64, haproxy::ValueError> {
            Ok(match index {
                Some(index) => row.int_at(index)?.unwrap_or(0) as f64,
                None => 0.0,
            })
        };
        let balanced = kind != FE && value(lbtot)? > 0.0;
        let pxname = row.pxname();
        let proxy = sanitize(&pxname);
        let svname = row.svname();
        let tally = match kind {
            FE => entry(&mut self.frontends, &proxy, columns.width()),
            BE => entry(&mut self.backends, &proxy, columns.width()),
            _ => {
                let servers = match self.servers.get_mut(proxy.as_ref()) {
                    Some(servers) => servers,
                    None => self.servers.entry(proxy.clone().into_owned()).or_default(),
                };
                entry(servers, &sanitize(&svname), columns.width())
            }
        };
        let timed_start = columns.timed_start();
        for (slot, (total, index)) in tally.values.iter_mut().zip(&indexes[kind]).enumerate() {
            if slot < timed_start || balanced {
                *total += value(*index)?;
            }
        }
        tally.rows += 1.0;
        if balanced {
            tally.timed_rows += 1.0;
        }
        Ok(())
    }
}

/// The tally for `name`, created on first sight (the only allocation per entity).
fn entry<'m>(map: &'m mut HashMap<String, Tally>, name: &str, width: usize) -> &'m mut Tally {
    if !map.contains_key(name) {
        map.insert(name.to_owned(), Tally::new(width));
    }
    map.get_mut(name).unwrap_or_else(|| unreachable!("inserted just above"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitising_keeps_only_path_safe_bytes() {
        assert_eq!(sanitize("fe.dotted.name"), "fe_dotted_name");
        assert_eq!(sanitize("be app\nx 1700000000\nevil"), "be_app_x_1700000000_evil");
        assert!(matches!(sanitize("Ulimit-n:ok_9"), Cow::Borrowed("Ulimit-n:ok_9")));
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

    #[test]
    fn lines_skip_non_finite_values_and_print_integers_plainly() {
        let mut lines = Lines::new("lb.haproxy", 1_700_000_000);
        lines.push("", format_args!("backend.be.stot"), 40.0);
        lines.push("g.web.", format_args!("daemon.Std"), 10.606601717798213);
        lines.push("", format_args!("backend.be.rtime"), f64::NAN);
        lines.push("", format_args!("daemon.x"), -3.0);
        let (chunks, count) = lines.into_parts();
        assert_eq!(
            chunks.concat(),
            "lb.haproxy.backend.be.stot 40 1700000000\nlb.haproxy.g.web.daemon.Std 10.606601717798213 1700000000\n\
             lb.haproxy.daemon.x -3 1700000000\n"
        );
        assert_eq!(count, 3);
    }
}
