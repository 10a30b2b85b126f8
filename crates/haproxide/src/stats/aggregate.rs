//! Aggregation of one round across HAProxy processes, the way haproxystats
//! (git HEAD) aggregates, with its defects fixed.
//!
//! Input: the parsed `show info` replies and the `show stat` files of one
//! round, one per process (socket). Output: a typed [`Batch`] in
//! haproxystats' emission order, which each sink encodes its own way. The rules:
//! - Daemon (`show info`): 37 counters summed, `Idle_pct`/`Uptime_sec`
//!   averaged, CPU-usage percentiles and sample standard deviation,
//!   `calculate-percentages`, `per-process-metrics`.
//! - Frontends: summed.
//! - Backends and servers: summed lists; `act bck weight` / `throttle weight`
//!   averaged over all processes; `rtime ctime qtime ttime` averaged over the
//!   processes whose row has `lbtot > 0`.
//! - `TotalServers`, cross-backend servers (`aggr-server-metrics`),
//!   exclusions and group membership.
//!
//! Fixes: a metric some process does not report is not emitted (never a
//! crash, never a partial sum); a mean with no process to average over has
//! no value (never NaN on the wire); a custom list never yields `_x`/`_y`
//! names (a listed averaged metric is emitted once, averaged); per-process
//! metrics are keyed by socket name when processes report the same
//! `Process_num`. The `Metrics*` self-metrics keep haproxystats' formula: 1 +
//! the cells computed, whether or not a cell has a value.
//!
//! Frontends, backends and servers are identified by their name as Graphite
//! writes it ([`sanitize`]d), as haproxystats identified them: names equal
//! once sanitised are aggregated together, and exclusions and group patterns
//! match that name. The batch carries the name HAProxy reported (the first
//! one seen).
//!
//! Each `show stat` file is streamed ([`StatReader`]) into tallies of its own,
//! on as many threads as there are cores. A file with a bad cell is left out
//! whole. Only the tallies are kept, never the replies. Each thread numbers
//! the entities it meets, keeping each name once however many files name it,
//! and keeps one table of sums per kind, indexed by those numbers; the
//! threads' tables are merged once, by name, at the end.

use std::collections::{BTreeMap, HashSet};
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use haproxy::{ObjectType, ShowInfo, StatReader};
use regex::Regex;
use rustc_hash::FxHashMap;

use crate::stats::metric_names::{
    BACKEND, BACKEND_AVG, BACKEND_AVG_TIME, BACKEND_EXTENDED, BACKEND_STATES, CHECK_STATUS, DAEMON_EXTENDED, FRONTEND,
    FRONTEND_EXTENDED, FRONTEND_STATES, Reduce, SERVER, SERVER_AVG, SERVER_AVG_TIME, SERVER_EXTENDED, SERVER_STATES,
    SERVER_STATUS, States,
};
use crate::stats::metrics::{Batch, Entity, Member};
use crate::stats::sinks::plaintext::sanitize;

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

/// Group patterns of `[frontend-groups]`, `[backend-groups]` and
/// `[server-groups]`, in file order (empty unless `group-namespace` is set).
/// An entity belongs to the group of the first pattern its name matches.
#[derive(Debug, Clone, Default)]
pub struct Groups {
    /// `[frontend-groups]`: frontends by name.
    pub frontend: Vec<(Arc<str>, Regex)>,
    /// `[backend-groups]`: backends, their servers and `TotalServers`, by backend name.
    pub backend: Vec<(Arc<str>, Regex)>,
    /// `[server-groups]`: servers across backends (`aggr-server-metrics`), by server name.
    pub server: Vec<(Arc<str>, Regex)>,
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
    /// Also the fields HAProxy's exporter has beyond haproxystats' lists, and
    /// the states, into the batch's extended sections (for `prometheus`).
    pub extended: bool,
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
            extended: false,
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

/// Aggregates one round into `batch`. `infos` are (socket name, reply) in
/// socket-name order; `stats` are read from disk here, one at a time per core.
pub fn aggregate(infos: &[(String, ShowInfo)], stats: &[StatFile], options: &Options, batch: &mut Batch) -> Report {
    let started = Instant::now();
    let mut report = Report::default();
    let daemon_cells = daemon(infos, options, batch, &mut report.problems);
    batch.pipeline("MetricsHAProxy", 1.0 + daemon_cells as f64);
    batch.pipeline("WallClockTimeHAProxy", seconds(started));

    let sites = Sites::collect(stats, options, &mut report);
    let phase = Instant::now();
    let frontend_cells = sites.emit_proxies(Kind::Frontend, options, batch);
    batch.pipeline("MetricsFrontend", 1.0 + frontend_cells as f64);
    batch.pipeline("WallClockTimeFrontends", seconds(phase));

    let phase = Instant::now();
    let backend_cells = sites.emit_proxies(Kind::Backend, options, batch);
    batch.pipeline("MetricsBackend", 1.0 + backend_cells as f64);
    batch.pipeline("WallClockTimeBackends", seconds(phase));

    let phase = Instant::now();
    let server_cells = sites.emit_servers(options, batch);
    batch.pipeline("MetricsServer", 1.0 + server_cells as f64);
    batch.pipeline("WallClockTimeServers", seconds(phase));
    batch.pipeline("WallClockTimeAllStats", seconds(started));
    report
}

/// Seconds since `since`, to the millisecond.
pub fn seconds(since: Instant) -> f64 {
    (since.elapsed().as_secs_f64() * 1000.0).round() / 1000.0
}

// ------------------------------------------------------------------ daemon

/// Adds the daemon metrics; returns the number of cells computed.
fn daemon(infos: &[(String, ShowInfo)], options: &Options, batch: &mut Batch, problems: &mut Vec<String>) -> usize {
    if infos.is_empty() {
        return 0;
    }
    let all = |name: &str| -> Option<Vec<f64>> {
        infos
            .iter()
            .map(|(_, info)| info.int(name).map(|value| value as f64))
            .collect()
    };
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
    let averaged: Vec<(&str, Vec<f64>)> = DAEMON_AVERAGED
        .iter()
        .filter_map(|name| Some((*name, all(name)?)))
        .collect();
    let mut daemon: Vec<(String, f64)> = Vec::new();
    for (name, process_values) in &summed {
        daemon.push(((*name).to_owned(), process_values.iter().sum()));
    }
    for (name, process_values) in &averaged {
        daemon.push(((*name).to_owned(), mean(process_values)));
    }
    let cpu: Option<Vec<f64>> = all("Idle_pct").map(|idle| idle.iter().map(|value| 100.0 - value).collect());
    if let Some(cpu) = cpu.as_ref().filter(|_| infos.len() > 1) {
        let mut sorted = cpu.clone();
        sorted.sort_by(f64::total_cmp);
        for percentile in PERCENTILES {
            daemon.push((
                format!("{percentile}PercentileCpuUsagePct"),
                nearest(&sorted, *percentile),
            ));
        }
        daemon.push(("StdCpuUsagePct".to_owned(), sample_std(cpu)));
    }
    // A percentage counts as a cell even when it cannot be computed.
    let mut cells = daemon.len();
    if options.calculate_percentages {
        for (value, limit, name) in PERCENTAGES {
            cells += 1;
            match (all(value), all(limit)) {
                (Some(values), Some(limits)) => {
                    daemon.push(((*name).to_owned(), percentage(values.iter().sum(), limits.iter().sum())))
                }
                _ => problems.push(format!("{name}: {value} or {limit} not reported by every process")),
            }
        }
    }
    let (fields, values): (Vec<String>, Vec<f64>) = daemon.into_iter().unzip();
    batch.section(fields).push(Member::ungrouped(Entity::Daemon), values);
    if options.extended {
        let (fields, values): (Vec<String>, Vec<f64>) = DAEMON_EXTENDED
            .iter()
            .filter_map(|(name, reduce)| {
                let values = all(name)?;
                let first = *values.first()?;
                let reduced = values
                    .iter()
                    .skip(1)
                    .fold(first, |total, value| reduce.combine(total, *value));
                let value = if *reduce == Reduce::Mean {
                    reduced / values.len() as f64
                } else {
                    reduced
                };
                Some(((*name).to_owned(), value))
            })
            .unzip();
        batch
            .extended_section(fields)
            .push(Member::ungrouped(Entity::Daemon), values);
    }
    if options.per_process_metrics {
        let keys = process_keys(infos);
        let mut fields: Vec<String> = summed.iter().map(|(name, _)| (*name).to_owned()).collect();
        if cpu.is_some() {
            fields.push("CpuUsagePct".to_owned());
        }
        fields.extend(averaged.iter().map(|(name, _)| (*name).to_owned()));
        let width = fields.len();
        let processes = batch.section(fields);
        for (index, key) in keys.iter().enumerate() {
            let values = summed
                .iter()
                .map(|(_, values)| values[index])
                .chain(cpu.as_ref().map(|cpu| cpu[index]))
                .chain(averaged.iter().map(|(_, values)| values[index]));
            processes.push(Member::ungrouped(Entity::Process(key.clone())), values);
            cells += width;
        }
        if options.calculate_percentages {
            for (value, limit, name) in PERCENTAGES {
                let (Some(values), Some(limits)) = (all(value), all(limit)) else {
                    continue;
                };
                let percentages = batch.section(vec![(*name).to_owned()]);
                for (index, key) in keys.iter().enumerate() {
                    percentages.push(
                        Member::ungrouped(Entity::Process(key.clone())),
                        [percentage(values[index], limits[index])],
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
    infos.iter().map(|(name, _)| name.clone()).collect()
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

/// The kinds of `show stat` rows that are aggregated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Frontend,
    Backend,
    Server,
}

impl Kind {
    const ALL: [Kind; 3] = [Kind::Frontend, Kind::Backend, Kind::Server];

    fn name(self) -> &'static str {
        match self {
            Kind::Frontend => "frontend",
            Kind::Backend => "backend",
            Kind::Server => "server",
        }
    }
}

/// One value for each [`Kind`].
#[derive(Debug, Clone)]
struct PerKind<T>([T; 3]);

impl<T> PerKind<T> {
    fn new(mut make: impl FnMut(Kind) -> T) -> PerKind<T> {
        PerKind(Kind::ALL.map(&mut make))
    }

    fn iter(&self) -> impl Iterator<Item = &T> {
        self.0.iter()
    }
}

impl<T> std::ops::Index<Kind> for PerKind<T> {
    type Output = T;
    fn index(&self, kind: Kind) -> &T {
        &self.0[kind as usize]
    }
}

impl<T> std::ops::IndexMut<Kind> for PerKind<T> {
    fn index_mut(&mut self, kind: Kind) -> &mut T {
        &mut self.0[kind as usize]
    }
}

/// Sums, and the parts of means, of one frontend, backend or server: its
/// slots of a [`Table`].
#[derive(Debug, Clone, Copy)]
struct Tally<'a> {
    /// Laid out as [`Columns::names`] (summed, averaged, timed, extended),
    /// then the counts of each state.
    values: &'a [f64],
    /// Rows tallied.
    rows: f64,
    /// Rows tallied with `lbtot > 0`.
    timed_rows: f64,
}

/// The tallies of one kind of entity, one after another, entity by entity:
/// [`Columns::width`] values, then the rows tallied, then those with
/// `lbtot > 0`. Entities are numbered by whoever keeps their names; a table
/// grows to the highest number used, and an entity with no row tallied has
/// only zeros.
#[derive(Debug, Clone)]
struct Table {
    width: usize,
    slots: Vec<f64>,
}

impl Table {
    fn new(width: usize) -> Table {
        Table {
            width,
            slots: Vec::new(),
        }
    }

    fn stride(&self) -> usize {
        self.width + 2
    }

    /// Entities with slots (some may have no row tallied).
    fn len(&self) -> usize {
        self.slots.len() / self.stride()
    }

    fn tally(&self, entity: usize) -> Tally<'_> {
        let slots = &self.slots[entity * self.stride()..][..self.stride()];
        Tally {
            values: &slots[..self.width],
            rows: slots[self.width],
            timed_rows: slots[self.width + 1],
        }
    }

    /// Rows tallied for `entity` (0 when it has no slots yet).
    fn rows(&self, entity: usize) -> f64 {
        self.slots
            .get(entity * self.stride() + self.width)
            .copied()
            .unwrap_or(0.0)
    }

    /// The slots of `entity`, added (zeroed) if the table is shorter.
    fn slots_mut(&mut self, entity: usize) -> &mut [f64] {
        let stride = self.stride();
        let end = (entity + 1) * stride;
        if self.slots.len() < end {
            self.slots.resize(end, 0.0);
        }
        &mut self.slots[entity * stride..end]
    }

    /// Adds `from`'s tally of `entity` to this table's tally of `into`.
    /// Values are summed, except extended ones, which combine their own way
    /// (a tally with no row yet takes the other's values).
    fn fold(&mut self, into: usize, from: &Table, entity: usize, columns: &Columns) {
        let from = &from.slots[entity * from.stride()..][..from.stride()];
        let width = self.width;
        let slots = self.slots_mut(into);
        if slots[width] == 0.0 {
            slots.copy_from_slice(from);
            return;
        }
        let split = columns.extended_start();
        for (total, value) in slots[..split].iter_mut().zip(&from[..split]) {
            *total += value;
        }
        for (offset, (total, value)) in slots[split..].iter_mut().zip(&from[split..]).enumerate() {
            *total = columns.reduce(split + offset).combine(*total, *value);
        }
    }
}

/// The columns tallied for one kind of row: summed, averaged over all rows,
/// averaged over rows with `lbtot > 0`, then, with [`Options::extended`],
/// the extended ones (each combined its own way) and the counts of each
/// state of the [`States`] columns.
struct Columns {
    summed: Vec<String>,
    averaged: &'static [&'static str],
    timed: &'static [&'static str],
    extended: &'static [(&'static str, Reduce)],
    states: &'static [States],
}

impl Reduce {
    /// Two tallied values (of rows or of processes) combined.
    fn combine(self, total: f64, value: f64) -> f64 {
        match self {
            Reduce::Sum | Reduce::Mean => total + value,
            Reduce::Max => total.max(value),
            Reduce::Min => total.min(value),
        }
    }
}

impl Columns {
    /// The `show stat` columns read into one slot each.
    fn names(&self) -> impl Iterator<Item = &str> {
        self.summed
            .iter()
            .map(String::as_str)
            .chain(self.averaged.iter().copied())
            .chain(self.timed.iter().copied())
            .chain(self.extended.iter().map(|(name, _)| *name))
    }

    /// Slots of a [`Tally`]: one per column of [`Columns::names`], then one
    /// per state.
    fn width(&self) -> usize {
        self.extended_start()
            + self.extended.len()
            + self.states.iter().map(|states| states.labels.len()).sum::<usize>()
    }

    /// Where the timed columns start in a [`Tally`].
    fn timed_start(&self) -> usize {
        self.summed.len() + self.averaged.len()
    }

    /// Where the extended columns start in a [`Tally`].
    fn extended_start(&self) -> usize {
        self.timed_start() + self.timed.len()
    }

    /// Where the counts of each [`States`] start in a [`Tally`].
    fn state_starts(&self) -> impl Iterator<Item = (usize, &States)> {
        let mut start = self.extended_start() + self.extended.len();
        self.states.iter().map(move |states| {
            let here = start;
            start += states.labels.len();
            (here, states)
        })
    }

    /// How a slot's values combine.
    fn reduce(&self, slot: usize) -> Reduce {
        slot.checked_sub(self.extended_start())
            .and_then(|offset| self.extended.get(offset))
            .map_or(Reduce::Sum, |(_, reduce)| *reduce)
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
    kinds: PerKind<Columns>,
    server_configured: Vec<usize>,
    server_default: Vec<usize>,
}

impl Layout {
    fn new(options: &Options) -> Layout {
        let mut server = options.server_metrics.clone();
        server.extend(
            SERVER
                .iter()
                .filter(|name| !options.server_metrics.iter().any(|own| own == *name))
                .map(|name| (*name).to_owned()),
        );
        let mut server = Some(server);
        let extended = |fields, states| {
            if options.extended {
                (fields, states)
            } else {
                (&[][..], &[][..])
            }
        };
        let kinds = PerKind::new(|kind| match kind {
            Kind::Frontend => {
                let (extended, states) = extended(FRONTEND_EXTENDED, FRONTEND_STATES);
                Columns {
                    summed: options.frontend_metrics.clone(),
                    averaged: &[],
                    timed: &[],
                    extended,
                    states,
                }
            }
            Kind::Backend => {
                let (extended, states) = extended(BACKEND_EXTENDED, BACKEND_STATES);
                Columns {
                    summed: options.backend_metrics.clone(),
                    averaged: BACKEND_AVG,
                    timed: BACKEND_AVG_TIME,
                    extended,
                    states,
                }
            }
            Kind::Server => {
                let (extended, states) = extended(SERVER_EXTENDED, SERVER_STATES);
                Columns {
                    summed: server.take().unwrap_or_default(),
                    averaged: SERVER_AVG,
                    timed: SERVER_AVG_TIME,
                    extended,
                    states,
                }
            }
        });
        let server_configured = kinds[Kind::Server].select(&options.server_metrics);
        let server_default = kinds[Kind::Server].select(&owned(SERVER));
        Layout {
            kinds,
            server_configured,
            server_default,
        }
    }
}

/// How a field's value comes from a tally's column.
#[derive(Debug, Clone, Copy)]
enum Derived {
    Sum,
    /// Divided by the rows tallied.
    Mean,
    /// Divided by the rows with `lbtot > 0`.
    TimedMean,
}

/// The fields written for one kind of entity, and where each comes from.
struct Plan {
    fields: Vec<String>,
    sources: Vec<(usize, Derived)>,
}

impl Plan {
    fn values<'a>(&'a self, tally: Tally<'a>) -> impl Iterator<Item = f64> + 'a {
        self.sources.iter().map(move |&(index, derived)| {
            let value = tally.values[index];
            match derived {
                Derived::Sum => value,
                Derived::Mean => value / tally.rows,
                Derived::TimedMean => value / tally.timed_rows,
            }
        })
    }
}

/// Who an entity of a [`Table`] is: its names as HAProxy reported them, the
/// keys it is kept under (those names [`sanitize`]d), and where it was first
/// seen.
#[derive(Debug, Clone)]
struct Identity {
    /// The proxy's name as reported (the backend's, for a server).
    proxy: Arc<str>,
    /// The proxy's name sanitised.
    proxy_key: Arc<str>,
    /// The server's name as reported; empty for a frontend or a backend.
    server: Arc<str>,
    /// The server's name sanitised (the same allocation when it needs no change).
    server_key: Arc<str>,
    /// File and line of its first row in a file that was used: where names
    /// equal once sanitised differ, the batch carries the first one seen.
    first: (usize, usize),
    /// The line of its first row in the file being read.
    line_in_file: usize,
}

impl Identity {
    fn new(proxy: Arc<str>, proxy_key: Arc<str>, server: Arc<str>) -> Identity {
        Identity {
            proxy,
            proxy_key,
            server_key: sanitized(&server),
            server,
            first: (usize::MAX, 0),
            line_in_file: 0,
        }
    }
}

/// One kind's entities merged across the round, in key order: entity `i` of
/// `table` is `identities[i]`.
struct Merged {
    table: Table,
    identities: Vec<Identity>,
}

impl Merged {
    /// A merge with room for up to `entities`, so that the table grows once.
    fn empty(columns: &Columns, entities: usize) -> Merged {
        let mut table = Table::new(columns.width());
        table.slots.reserve_exact(entities * table.stride());
        Merged {
            table,
            identities: Vec::with_capacity(entities),
        }
    }

    /// The entities of `sources` with rows tallied, those with the same `key`
    /// merged into one, in `key` order; each keeps the names of its first row.
    fn new<'a, K: Ord>(
        sources: &[(&'a Table, &'a [Identity])],
        key: impl Fn(&'a Identity) -> K,
        columns: &Columns,
    ) -> Merged {
        let mut order = Vec::new();
        for (source, (_, identities)) in sources.iter().enumerate() {
            Merged::add_tallied(&mut order, sources, source, 0..identities.len(), &key);
        }
        let mut merged = Merged::empty(columns, order.len());
        merged.append(&mut order, sources, columns);
        merged
    }

    /// Adds to `order` (for [`Merged::append`]) those of `entities` of
    /// `sources[source]` that have rows tallied, under their `key`.
    fn add_tallied<'a, K>(
        order: &mut Vec<(K, (usize, usize), usize, usize)>,
        sources: &[(&'a Table, &'a [Identity])],
        source: usize,
        entities: impl Iterator<Item = usize>,
        key: impl Fn(&'a Identity) -> K,
    ) {
        let (table, identities) = sources[source];
        for entity in entities.filter(|&entity| table.rows(entity) > 0.0) {
            let identity = &identities[entity];
            order.push((key(identity), identity.first, source, entity));
        }
    }

    /// Appends the entities of `order` (key, first seen, source, entity) in
    /// key order, those with the same key merged into one that keeps the
    /// names of the first seen; leaves `order` empty.
    fn append<K: Ord>(
        &mut self,
        order: &mut Vec<(K, (usize, usize), usize, usize)>,
        sources: &[(&Table, &[Identity])],
        columns: &Columns,
    ) {
        order.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
        for (position, (key, _, source, entity)) in order.iter().enumerate() {
            let (table, identities) = sources[*source];
            if position == 0 || order[position - 1].0 != *key {
                self.identities.push(identities[*entity].clone());
            }
            self.table.fold(self.identities.len() - 1, table, *entity, columns);
        }
        order.clear();
    }

    fn iter(&self) -> impl Iterator<Item = (&Identity, Tally<'_>)> {
        self.identities
            .iter()
            .enumerate()
            .map(|(entity, identity)| (identity, self.table.tally(entity)))
    }
}

/// Every frontend, backend and server of a snapshot, merged across processes.
struct Sites {
    layout: Layout,
    /// Frontends and backends by name; servers by backend name, then name.
    kinds: PerKind<Merged>,
    /// With `aggr-server-metrics`: servers by name alone, across backends.
    servers_by_name: Option<Merged>,
    /// Per kind, per column of [`Columns::names`]: whether every reply used has it.
    present: PerKind<Vec<bool>>,
}

impl Sites {
    fn collect(stats: &[StatFile], options: &Options, report: &mut Report) -> Sites {
        let layout = Layout::new(options);
        let (readings, outcomes) = read_in_parallel(stats, &layout);
        let mut present = PerKind::new(|kind| vec![true; layout.kinds[kind].width()]);
        let mut somewhere = PerKind::new(|kind| vec![false; layout.kinds[kind].width()]);
        report.stat_files_used = 0;
        for (file, outcome) in stats.iter().zip(outcomes) {
            match outcome {
                Ok(found) => {
                    for kind in Kind::ALL {
                        for (index, found) in found[kind].iter().enumerate() {
                            present[kind][index] &= *found;
                            somewhere[kind][index] |= *found;
                        }
                    }
                    report.stat_files_used += 1;
                }
                Err(problem) => report.problems.push(format!(
                    "{}_stat: {problem}; the file is left out of this snapshot",
                    file.socket
                )),
            }
        }
        if report.stat_files_used == 0 {
            present = PerKind::new(|kind| vec![false; layout.kinds[kind].width()]);
        } else {
            for kind in Kind::ALL {
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
                        kind.name(),
                        missing.join(", ")
                    ));
                }
            }
        }
        let kinds = PerKind::new(|kind| {
            let sources: Vec<(&Table, &[Identity])> = readings
                .iter()
                .map(|reading| (&reading.sums[kind], &reading.identities[kind][..]))
                .collect();
            let columns = &layout.kinds[kind];
            match kind {
                Kind::Frontend | Kind::Backend => Merged::new(&sources, |identity| &*identity.proxy_key, columns),
                // Backends first, then the servers of each: fewer and
                // shorter comparisons than sorting every server by both names.
                Kind::Server => {
                    let mut proxies: Vec<(&str, usize, &ServerNames)> = readings
                        .iter()
                        .enumerate()
                        .flat_map(|(source, reading)| {
                            let proxies = reading.server_proxies.iter();
                            proxies.map(move |names| (&*names.proxy_key, source, names))
                        })
                        .collect();
                    proxies.sort_unstable_by(|a, b| a.0.cmp(b.0));
                    let most = sources.iter().map(|(_, identities)| identities.len()).sum();
                    let mut merged = Merged::empty(columns, most);
                    let mut order = Vec::new();
                    for backend in proxies.chunk_by(|one, other| one.0 == other.0) {
                        for &(_, source, names) in backend {
                            let servers = names.servers.values().copied();
                            Merged::add_tallied(&mut order, &sources, source, servers, |identity| {
                                &*identity.server_key
                            });
                        }
                        merged.append(&mut order, &sources, columns);
                    }
                    merged
                }
            }
        });
        let servers_by_name = options.aggr_server_metrics.then(|| {
            let servers = &kinds[Kind::Server];
            Merged::new(
                &[(&servers.table, &servers.identities[..])],
                |identity| &*identity.server_key,
                &layout.kinds[Kind::Server],
            )
        });
        Sites {
            layout,
            kinds,
            servers_by_name,
            present,
        }
    }

    /// The fields of `kind` for the `selected` summed columns, then the
    /// averaged and timed ones, each where every reply used has it.
    fn plan(&self, kind: Kind, selected: &[usize]) -> Plan {
        let columns = &self.layout.kinds[kind];
        let present = &self.present[kind];
        let mut plan = Plan {
            fields: Vec::new(),
            sources: Vec::new(),
        };
        let mut add = |index: usize, name: &str, derived: Derived| {
            if present[index] {
                plan.fields.push(name.to_owned());
                plan.sources.push((index, derived));
            }
        };
        for &index in selected {
            add(index, &columns.summed[index], Derived::Sum);
        }
        for (offset, name) in columns.averaged.iter().enumerate() {
            add(columns.summed.len() + offset, name, Derived::Mean);
        }
        for (offset, name) in columns.timed.iter().enumerate() {
            add(columns.timed_start() + offset, name, Derived::TimedMean);
        }
        plan
    }

    /// The servers of each backend: its key, and where its servers are in
    /// the servers' [`Merged`] (they are kept by backend first).
    fn servers_of_backends(&self) -> impl Iterator<Item = (&str, Range<usize>)> {
        let mut start = 0;
        self.kinds[Kind::Server]
            .identities
            .chunk_by(|one, other| one.proxy_key == other.proxy_key)
            .map(move |servers| {
                let range = start..start + servers.len();
                start = range.end;
                (&*servers[0].proxy_key, range)
            })
    }

    /// The name HAProxy reported for the backend kept under `key`: its
    /// backend row's, else its first server row's.
    fn backend_name(&self, key: &str, servers: &Range<usize>) -> String {
        let backends = &self.kinds[Kind::Backend].identities;
        let reported = match backends.binary_search_by(|backend| (*backend.proxy_key).cmp(key)) {
            Ok(found) => &backends[found].proxy,
            Err(_) => &self.kinds[Kind::Server].identities[servers.start].proxy,
        };
        reported.to_string()
    }

    /// Frontends or backends that are not excluded, in name order; returns
    /// the cells computed.
    fn emit_proxies(&self, kind: Kind, options: &Options, batch: &mut Batch) -> usize {
        let (excluded, patterns) = match kind {
            Kind::Frontend => (&options.exclude_frontends, &options.groups.frontend),
            Kind::Backend | Kind::Server => (&options.exclude_backends, &options.groups.backend),
        };
        let merged = &self.kinds[kind];
        let all: Vec<usize> = (0..self.layout.kinds[kind].summed.len()).collect();
        let plan = self.plan(kind, &all);
        let width = plan.fields.len();
        let section = batch.section(plan.fields.clone());
        section.reserve(merged.identities.len());
        let mut cells = 0;
        for (identity, tally) in merged
            .iter()
            .filter(|(identity, _)| !excluded.contains(&*identity.proxy_key))
        {
            let member = Member {
                entity: proxy_entity(kind, identity),
                group: group_of(patterns, &identity.proxy_key),
            };
            section.push(member, plan.values(tally));
            cells += width;
        }
        if options.extended {
            self.emit_extended_proxies(kind, excluded, batch);
        }
        cells
    }

    /// The extended columns of `kind` every reply used has: slot and reduction.
    fn extended_plan(&self, kind: Kind) -> (Vec<String>, Vec<(usize, Reduce)>) {
        let columns = &self.layout.kinds[kind];
        let start = columns.extended_start();
        let mut fields = Vec::new();
        let mut slots = Vec::new();
        for (offset, (name, reduce)) in columns.extended.iter().enumerate() {
            if self.present[kind][start + offset] {
                fields.push((*name).to_owned());
                slots.push((start + offset, *reduce));
            }
        }
        for (_, states) in columns.state_starts() {
            fields.extend(states.labels.iter().map(|label| format!("{}={label}", states.column)));
        }
        (fields, slots)
    }

    /// A tally's extended values as [`Sites::extended_plan`] lays them out:
    /// a state column no process reported for the entity has no value.
    fn extended_values(&self, kind: Kind, slots: &[(usize, Reduce)], tally: Tally<'_>, values: &mut Vec<f64>) {
        for &(slot, reduce) in slots {
            let value = tally.values[slot];
            values.push(if reduce == Reduce::Mean {
                value / tally.rows
            } else {
                value
            });
        }
        for (start, states) in self.layout.kinds[kind].state_starts() {
            let counts = &tally.values[start..start + states.labels.len()];
            let reported = counts.iter().any(|count| *count > 0.0);
            values.extend(counts.iter().map(|count| if reported { *count } else { f64::NAN }));
        }
    }

    /// The extended section of frontends or backends; a backend's has the
    /// states of its servers counted too (`agg_server_status=UP`, …).
    fn emit_extended_proxies(&self, kind: Kind, excluded: &HashSet<String>, batch: &mut Batch) {
        let (mut fields, slots) = self.extended_plan(kind);
        let backends = kind == Kind::Backend;
        if backends {
            for (prefix, labels) in [
                ("agg_server_status", SERVER_STATUS),
                ("agg_server_check_status", SERVER_STATUS),
                ("agg_check_status", CHECK_STATUS),
            ] {
                fields.extend(labels.iter().map(|label| format!("{prefix}={label}")));
            }
        }
        let server_states: Vec<(usize, usize)> = self.layout.kinds[Kind::Server]
            .state_starts()
            .map(|(start, states)| (start, states.labels.len()))
            .collect();
        let servers_of_backends: BTreeMap<&str, Range<usize>> = self.servers_of_backends().collect();
        let servers = &self.kinds[Kind::Server].table;
        let section = batch.extended_section(fields);
        let mut values = Vec::new();
        for (identity, tally) in self.kinds[kind]
            .iter()
            .filter(|(identity, _)| !excluded.contains(&*identity.proxy_key))
        {
            values.clear();
            self.extended_values(kind, &slots, tally, &mut values);
            if backends {
                let range = servers_of_backends.get(&*identity.proxy_key);
                // Status, the same again under its older name, then check results.
                for &(start, width) in [server_states.first(), server_states.first(), server_states.get(1)]
                    .into_iter()
                    .flatten()
                {
                    for offset in 0..width {
                        values.push(range.map_or(f64::NAN, |range| {
                            range
                                .clone()
                                .map(|server| servers.tally(server).values[start + offset])
                                .sum()
                        }));
                    }
                }
            }
            section.push(Member::ungrouped(proxy_entity(kind, identity)), values.iter().copied());
        }
    }

    /// `TotalServers` of each backend not excluded, its servers, and with
    /// `aggr-server-metrics` every server name across backends; returns the
    /// cells computed.
    fn emit_servers(&self, options: &Options, batch: &mut Batch) -> usize {
        let mut cells = 0;
        let servers = &self.kinds[Kind::Server];
        let included: Vec<(&str, Range<usize>, String)> = self
            .servers_of_backends()
            .filter(|(backend, _)| !options.exclude_backends.contains(*backend))
            .map(|(backend, range)| {
                let reported = self.backend_name(backend, &range);
                (backend, range, reported)
            })
            .collect();
        let totals = batch.section(vec!["TotalServers".to_owned()]);
        for (backend, range, reported) in &included {
            let member = Member {
                entity: Entity::Backend(reported.clone()),
                group: group_of(&options.groups.backend, backend),
            };
            totals.push(member, [range.len() as f64]);
            cells += 1;
        }
        let plan = self.plan(Kind::Server, &self.layout.server_configured);
        let width = plan.fields.len();
        let section = batch.section(plan.fields.clone());
        section.reserve(included.iter().map(|(_, range, _)| range.len()).sum());
        for (backend, range, reported) in &included {
            let group = group_of(&options.groups.backend, backend);
            for server in range.clone() {
                let member = Member {
                    entity: Entity::Server {
                        backend: reported.clone(),
                        server: servers.identities[server].server.to_string(),
                    },
                    group: group.clone(),
                };
                section.push(member, plan.values(servers.table.tally(server)));
                cells += width;
            }
        }
        if options.extended {
            let (fields, slots) = self.extended_plan(Kind::Server);
            let section = batch.extended_section(fields);
            let mut values = Vec::new();
            for (_, range, reported) in &included {
                for server in range.clone() {
                    values.clear();
                    self.extended_values(Kind::Server, &slots, servers.table.tally(server), &mut values);
                    let entity = Entity::Server {
                        backend: reported.clone(),
                        server: servers.identities[server].server.to_string(),
                    };
                    section.push(Member::ungrouped(entity), values.iter().copied());
                }
            }
        }
        if let Some(by_name) = &self.servers_by_name {
            let plan = self.plan(Kind::Server, &self.layout.server_default);
            let width = plan.fields.len();
            let section = batch.section(plan.fields.clone());
            for (identity, tally) in by_name.iter() {
                let member = Member {
                    entity: Entity::ServerAcrossBackends(identity.server.to_string()),
                    group: group_of(&options.groups.server, &identity.server_key),
                };
                section.push(member, plan.values(tally));
                cells += width;
            }
        }
        cells
    }
}

/// A frontend's or backend's entity, by the name HAProxy reported.
fn proxy_entity(kind: Kind, identity: &Identity) -> Entity {
    let name = identity.proxy.to_string();
    match kind {
        Kind::Frontend => Entity::Frontend(name),
        Kind::Backend | Kind::Server => Entity::Backend(name),
    }
}

/// The group of the first pattern that matches `name`, if any.
fn group_of(patterns: &[(Arc<str>, Regex)], name: &str) -> Option<Arc<str>> {
    patterns
        .iter()
        .find(|(_, pattern)| pattern.is_match(name))
        .map(|(group, _)| Arc::clone(group))
}

/// What became of one `show stat` file: the columns it has, per kind and
/// column of [`Columns::names`], or why it was left out.
type FileOutcome = Result<PerKind<Vec<bool>>, String>;

/// Reads the files on up to one thread per core. Returns what each thread
/// kept, and each file's outcome in file order: the columns it has, or why
/// it was left out.
fn read_in_parallel(stats: &[StatFile], layout: &Layout) -> (Vec<Reading>, Vec<FileOutcome>) {
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(stats.len())
        .max(1);
    let next = AtomicUsize::new(0);
    let mut readings = Vec::with_capacity(threads);
    let mut outcomes = Vec::with_capacity(stats.len());
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut reading = Reading::new(layout);
                    let mut done = Vec::new();
                    // One read buffer per thread, reused: fewer fresh pages to fault in.
                    let mut buffer = Vec::new();
                    loop {
                        let index = next.fetch_add(1, Ordering::SeqCst);
                        let Some(file) = stats.get(index) else {
                            return (reading, done);
                        };
                        done.push((index, reading.read_file(index, file, layout, &mut buffer)));
                    }
                })
            })
            .collect();
        for worker in workers {
            if let Ok((reading, done)) = worker.join() {
                readings.push(reading);
                outcomes.extend(done);
            }
        }
    });
    outcomes.sort_by_key(|(index, _)| *index);
    let outcomes = outcomes.into_iter().map(|(_, outcome)| outcome).collect();
    (readings, outcomes)
}

/// What one reading thread keeps: every entity of the files it read, numbered
/// by their names as reported (each name kept once, however many files), the
/// sums of the files it used, and the tallies of the file being read, kept
/// apart until the whole file read cleanly so that a bad cell leaves the file
/// out rather than half of it.
struct Reading {
    frontends: FxHashMap<Arc<str>, usize>,
    backends: FxHashMap<Arc<str>, usize>,
    /// The server name of a frontend or backend: empty, allocated once.
    no_server: Arc<str>,
    /// Proxies with servers: their number in `server_proxies`, by reported name.
    server_proxy_numbers: FxHashMap<Arc<str>, usize>,
    server_proxies: Vec<ServerNames>,
    /// The proxy of the last server row, which the next one most likely shares.
    last_server_proxy: Option<usize>,
    identities: PerKind<Vec<Identity>>,
    sums: PerKind<Table>,
    file: PerKind<Table>,
}

/// `name` [`sanitize`]d, sharing its allocation when it needs no change.
fn sanitized(name: &Arc<str>) -> Arc<str> {
    match sanitize(name) {
        std::borrow::Cow::Borrowed(_) => Arc::clone(name),
        std::borrow::Cow::Owned(clean) => clean.into(),
    }
}

/// One proxy's servers, numbered by their names as reported.
struct ServerNames {
    proxy: Arc<str>,
    proxy_key: Arc<str>,
    servers: FxHashMap<Arc<str>, usize>,
}

impl Reading {
    fn new(layout: &Layout) -> Reading {
        Reading {
            frontends: FxHashMap::default(),
            backends: FxHashMap::default(),
            no_server: Arc::from(""),
            server_proxy_numbers: FxHashMap::default(),
            server_proxies: Vec::new(),
            last_server_proxy: None,
            identities: PerKind::new(|_| Vec::new()),
            sums: PerKind::new(|kind| Table::new(layout.kinds[kind].width())),
            file: PerKind::new(|kind| Table::new(layout.kinds[kind].width())),
        }
    }

    /// Tallies one `show stat` file, and adds it to the sums if it read
    /// cleanly; returns the columns it has.
    fn read_file(&mut self, number: usize, file: &StatFile, layout: &Layout, buffer: &mut Vec<u8>) -> FileOutcome {
        for kind in Kind::ALL {
            self.file[kind].slots.fill(0.0);
        }
        let opened = std::fs::File::open(&file.path).map_err(|error| format!("cannot read: {error}"))?;
        let mut rows = StatReader::with_buffer(opened, std::mem::take(buffer)).map_err(|error| error.to_string())?;
        let header = rows.header();
        let indexes = PerKind::new(|kind| -> Vec<Option<usize>> {
            layout.kinds[kind].names().map(|name| header.column(name)).collect()
        });
        let present = PerKind::new(|kind| indexes[kind].iter().map(Option::is_some).collect());
        let state_indexes = PerKind::new(|kind| -> Vec<Option<usize>> {
            layout.kinds[kind]
                .states
                .iter()
                .map(|states| header.column(states.column))
                .collect()
        });
        let lbtot = header.column("lbtot");
        // Split out of each row only the cells read here.
        rows.only_cells(
            indexes
                .iter()
                .chain(state_indexes.iter())
                .flatten()
                .chain([&lbtot])
                .flatten()
                .copied(),
        );
        let mut last_line = 0;
        let outcome = rows.for_each_row(|row| -> anyhow::Result<()> {
            last_line = row.line();
            Ok(self.add(row, &indexes, &state_indexes, lbtot, layout)?)
        });
        // HAProxy ends every reply with a newline: without one, the last row may be cut.
        let complete = rows.ended_with_line_end();
        *buffer = rows.into_buffer();
        outcome.map_err(|error| error.to_string())?;
        if !complete {
            return Err(format!("line {}: reply cut short", last_line.max(1)));
        }
        for kind in Kind::ALL {
            let columns = &layout.kinds[kind];
            let (sums, tallied) = (&mut self.sums[kind], &self.file[kind]);
            for entity in 0..tallied.len() {
                if tallied.rows(entity) == 0.0 {
                    continue;
                }
                if sums.rows(entity) == 0.0 {
                    let identity = &mut self.identities[kind][entity];
                    identity.first = (number, identity.line_in_file);
                }
                sums.fold(entity, tallied, entity, columns);
            }
        }
        Ok(present)
    }

    /// The number of the entity a row of `kind` is about, given one on first
    /// sight. Each name is allocated once, shared by the map and the identity.
    fn entity(&mut self, kind: Kind, pxname: &str, svname: &str) -> usize {
        let identities = &mut self.identities[kind];
        let proxies = match kind {
            Kind::Frontend => &mut self.frontends,
            Kind::Backend => &mut self.backends,
            Kind::Server => {
                let last = self
                    .last_server_proxy
                    .filter(|&number| &*self.server_proxies[number].proxy == pxname);
                let number = match last.or_else(|| self.server_proxy_numbers.get(pxname).copied()) {
                    Some(number) => number,
                    None => {
                        let proxy: Arc<str> = pxname.into();
                        self.server_proxies.push(ServerNames {
                            proxy_key: sanitized(&proxy),
                            proxy: Arc::clone(&proxy),
                            servers: FxHashMap::default(),
                        });
                        self.server_proxy_numbers.insert(proxy, self.server_proxies.len() - 1);
                        self.server_proxies.len() - 1
                    }
                };
                self.last_server_proxy = Some(number);
                let names = &mut self.server_proxies[number];
                if let Some(&entity) = names.servers.get(svname) {
                    return entity;
                }
                let server: Arc<str> = svname.into();
                names.servers.insert(Arc::clone(&server), identities.len());
                identities.push(Identity::new(
                    Arc::clone(&names.proxy),
                    Arc::clone(&names.proxy_key),
                    server,
                ));
                return identities.len() - 1;
            }
        };
        if let Some(&entity) = proxies.get(pxname) {
            return entity;
        }
        let proxy: Arc<str> = pxname.into();
        proxies.insert(Arc::clone(&proxy), identities.len());
        identities.push(Identity::new(
            Arc::clone(&proxy),
            sanitized(&proxy),
            Arc::clone(&self.no_server),
        ));
        identities.len() - 1
    }

    fn add(
        &mut self,
        row: &haproxy::StatRow<'_>,
        indexes: &PerKind<Vec<Option<usize>>>,
        state_indexes: &PerKind<Vec<Option<usize>>>,
        lbtot: Option<usize>,
        layout: &Layout,
    ) -> Result<(), haproxy::ValueError> {
        let kind = match row.object_type() {
            ObjectType::Frontend => Kind::Frontend,
            ObjectType::Backend => Kind::Backend,
            ObjectType::Server => Kind::Server,
            ObjectType::Listener => return Ok(()),
        };
        let columns = &layout.kinds[kind];
        let value = |index: Option<usize>| -> Result<f64, haproxy::ValueError> {
            Ok(match index {
                Some(index) => row.int_at(index)?.unwrap_or(0) as f64,
                None => 0.0,
            })
        };
        let balanced = kind != Kind::Frontend && value(lbtot)? > 0.0;
        let entity = self.entity(kind, &row.pxname(), &row.svname());
        let width = columns.width();
        let slots = self.file[kind].slots_mut(entity);
        let first = slots[width] == 0.0;
        if first {
            self.identities[kind][entity].line_in_file = row.line();
        }
        let extended_start = columns.extended_start();
        // Summed and averaged columns, and the timed ones on balanced rows: sums.
        let summed_end = if balanced {
            extended_start
        } else {
            columns.timed_start()
        };
        let cells = &indexes[kind];
        for (total, index) in slots[..summed_end].iter_mut().zip(&cells[..summed_end]) {
            *total += value(*index)?;
        }
        // Extended columns, each combined its own way, from the first row's value.
        let extended = slots[extended_start..].iter_mut().zip(&cells[extended_start..]);
        for ((total, index), (_, reduce)) in extended.zip(columns.extended) {
            let value = value(*index)?;
            *total = if first { value } else { reduce.combine(*total, value) };
        }
        for ((start, states), index) in columns.state_starts().zip(&state_indexes[kind]) {
            let state = index
                .and_then(|index| row.cell(index))
                .and_then(|text| (states.state_of)(&text));
            if let Some(state) = state {
                slots[start + state] += 1.0;
            }
        }
        slots[width] += 1.0;
        if balanced {
            slots[width + 1] += 1.0;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_round_half_to_even_like_numpy_nearest() {
        assert_eq!(nearest(&[10.0, 25.0], 50), 10.0);
        assert_eq!(nearest(&[10.0, 25.0], 75), 25.0);
        assert_eq!(nearest(&[1.0, 2.0, 3.0], 25), 1.0);
        assert_eq!(nearest(&[1.0, 2.0, 3.0], 75), 3.0);
        assert!((sample_std(&[10.0, 25.0]) - 10.606601717798213).abs() < 1e-12);
    }

    #[test]
    fn extended_fields_combine_their_own_way_and_states_are_counted() {
        let dir = tempfile::tempdir().unwrap();
        let header = "# pxname,svname,status,lbtot,check_status,qtime_max,lastchg,uweight,type,\n";
        let files = stat_files(
            dir.path(),
            header,
            &[
                "fe,FRONTEND,OPEN,,,,,,0,\nbe,s1,UP,3,L7OK,40,100,10,2,\nbe,s2,MAINT (via be/s1),0,,0,5,0,2,\nbe,BACKEND,UP,3,,40,5,10,1,\n",
                "fe,FRONTEND,STOP,,,,,,0,\nbe,s1,DOWN 1/2,1,* L4CON,90,30,20,2,\nbe,s2,no check,0,,0,7,0,2,\nbe,BACKEND,UP,1,,90,7,20,1,\n",
            ],
        );
        let options = Options {
            extended: true,
            ..Options::default()
        };
        let mut batch = Batch::new(1);
        let report = aggregate(&[], &files, &options, &mut batch);
        assert_eq!(report.problems, Vec::<String>::new());
        let value = |entity: &Entity, field: &str| -> Option<f64> {
            batch.extended_sections().iter().find_map(|section| {
                let column = section.fields().iter().position(|name| name == field)?;
                section
                    .rows()
                    .find(|(member, _)| member.entity == *entity)
                    .map(|(_, values)| values[column])
            })
        };
        let s1 = Entity::Server {
            backend: "be".into(),
            server: "s1".into(),
        };
        let s2 = Entity::Server {
            backend: "be".into(),
            server: "s2".into(),
        };
        assert_eq!(value(&s1, "qtime_max"), Some(90.0), "the larger");
        assert_eq!(value(&s1, "lastchg"), Some(30.0), "the smaller");
        assert_eq!(value(&s1, "uweight"), Some(15.0), "the mean");
        assert_eq!(value(&s1, "status=UP"), Some(1.0));
        assert_eq!(value(&s1, "status=DOWN"), Some(1.0));
        assert_eq!(value(&s1, "check_status=L7OK"), Some(1.0));
        assert_eq!(
            value(&s1, "check_status=L4CON"),
            Some(1.0),
            "a check running counts as its last result"
        );
        assert_eq!(value(&s2, "status=MAINT"), Some(1.0));
        assert_eq!(value(&s2, "status=UP"), Some(1.0), "no check is up");
        assert!(value(&s2, "check_status=L7OK").unwrap().is_nan(), "no check, no result");
        let fe = Entity::Frontend("fe".into());
        assert_eq!(value(&fe, "status=UP"), Some(1.0));
        assert_eq!(value(&fe, "status=DOWN"), Some(1.0));
        let be = Entity::Backend("be".into());
        assert_eq!(value(&be, "status=UP"), Some(2.0));
        assert_eq!(value(&be, "agg_server_status=UP"), Some(2.0), "s1 once, s2 once");
        assert_eq!(value(&be, "agg_server_status=MAINT"), Some(1.0));
        assert_eq!(value(&be, "agg_server_check_status=DOWN"), Some(1.0));
        assert_eq!(value(&be, "agg_check_status=L4CON"), Some(1.0));
        assert_eq!(value(&be, "qtime_max"), Some(90.0));
        // Without `extended`, nothing of it.
        let mut plain = Batch::new(1);
        aggregate(&[], &files, &Options::default(), &mut plain);
        assert!(plain.extended_sections().is_empty());
        assert_eq!(
            plain
                .sections()
                .iter()
                .map(|section| section.fields().to_vec())
                .collect::<Vec<_>>(),
            batch
                .sections()
                .iter()
                .map(|section| section.fields().to_vec())
                .collect::<Vec<_>>(),
            "the other sinks' sections are the same either way"
        );
    }

    /// Writes one `show stat` file per entry of `replies`, under one header.
    fn stat_files(dir: &std::path::Path, header: &str, replies: &[&str]) -> Vec<StatFile> {
        replies
            .iter()
            .enumerate()
            .map(|(index, rows)| {
                let path = dir.join(format!("p{index}_stat"));
                std::fs::write(&path, format!("{header}{rows}\n")).unwrap();
                StatFile {
                    socket: format!("p{index}"),
                    path,
                }
            })
            .collect()
    }

    /// Every member of the batch's sections that has `field`, with its value.
    fn values_of(batch: &Batch, field: &str) -> Vec<(Entity, f64)> {
        batch
            .sections()
            .iter()
            .filter_map(|section| Some((section, section.fields().iter().position(|name| name == field)?)))
            .flat_map(|(section, column)| {
                section
                    .rows()
                    .map(move |(member, values)| (member.entity.clone(), values[column]))
            })
            .collect()
    }

    #[test]
    fn names_equal_once_sanitised_merge_under_the_first_seen_in_a_file_used() {
        let dir = tempfile::tempdir().unwrap();
        let files = stat_files(
            dir.path(),
            "# pxname,svname,scur,lbtot,type,\n",
            &[
                // Left out whole (a bad cell), so its names are not the first seen.
                "x y,FRONTEND,abc,,0,\nb e,s 1,100,0,2,\n",
                "x.y,FRONTEND,5,,0,\nb e,s 1,2,0,2,\nb e,BACKEND,2,0,1,\n",
                "x y,FRONTEND,7,,0,\nb.e,s.1,3,0,2,\nb.e,s_2,1,0,2,\nb.e,BACKEND,4,0,1,\n",
            ],
        );
        let options = Options {
            aggr_server_metrics: true,
            ..Options::default()
        };
        let mut batch = Batch::new(1);
        let report = aggregate(&[], &files, &options, &mut batch);
        assert_eq!(report.stat_files_used, 2);
        assert_eq!(
            report.problems,
            ["p0_stat: line 2: column `scur` holds \"abc\", not an integer; the file is left out of this snapshot"]
        );
        let server = |backend: &str, server: &str| Entity::Server {
            backend: backend.into(),
            server: server.into(),
        };
        assert_eq!(
            values_of(&batch, "scur"),
            [
                (Entity::Frontend("x.y".into()), 12.0),
                (Entity::Backend("b e".into()), 6.0),
                (server("b e", "s 1"), 5.0),
                (server("b e", "s_2"), 1.0),
                (Entity::ServerAcrossBackends("s 1".into()), 5.0),
                (Entity::ServerAcrossBackends("s_2".into()), 1.0),
            ]
        );
        assert_eq!(
            values_of(&batch, "TotalServers"),
            [(Entity::Backend("b e".into()), 2.0)]
        );
    }

    #[test]
    fn custom_lists_drop_averaged_names_from_the_summed_part() {
        let list = owned(&["bin", "act", "rtime"]);
        assert_eq!(summed_part(&list, &[BACKEND_AVG, BACKEND_AVG_TIME]), ["bin"]);
    }
}
