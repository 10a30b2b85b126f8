//! What `top` shows, as plain data: each socket's latest `show stat` rows
//! and the one before, the per-second rates between them (a counter that
//! went down, or a new PID, is a reset: no rate, not a negative one), the
//! rows aggregated across sockets (summed, as `process` sums processes) or
//! split per socket, sorted and filtered. The view only draws this.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

/// Which proxies a view lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Level {
    /// `FRONTEND` rows.
    Frontends,
    /// `BACKEND` rows.
    Backends,
    /// Server rows (with their backend's row above them in the tree).
    Servers,
}

/// A counter `top` turns into a rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    /// `stot`: sessions.
    Sessions,
    /// `req_tot`: HTTP requests.
    Requests,
    /// `bin`: bytes in.
    BytesIn,
    /// `bout`: bytes out.
    BytesOut,
    /// `hrsp_5xx`: 5xx responses.
    Http5xx,
    /// `ereq` + `econ` + `eresp`: errors.
    Errors,
}

impl Counter {
    /// Every counter, in column order.
    pub const ALL: [Counter; 6] = [
        Counter::Sessions,
        Counter::Requests,
        Counter::BytesIn,
        Counter::BytesOut,
        Counter::Http5xx,
        Counter::Errors,
    ];
}

/// One row of one socket's `show stat`: what `top` keeps of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Its level.
    pub level: Level,
    /// `pxname`.
    pub proxy: Arc<str>,
    /// `svname` (`FRONTEND`, `BACKEND` or the server's name).
    pub name: Arc<str>,
    /// `status` (`UP`, `DOWN`, `DRAIN`, `MAINT`, `OPEN`, `no check`…).
    pub status: Arc<str>,
    /// `weight`.
    pub weight: Option<i64>,
    /// `scur`: current sessions.
    pub current: i64,
    /// The counters, in [`Counter::ALL`]'s order.
    pub counters: [u64; 6],
    /// `check_status`.
    pub check: Arc<str>,
    /// `last_chk`: the last check's output.
    pub last_check: Arc<str>,
    /// `lastchg`: seconds since the last status change.
    pub last_change: Option<i64>,
    /// `agent_status`.
    pub agent: Arc<str>,
    /// `pid`: the process that answered, to see a reload.
    pub pid: Option<i64>,
}

/// What identifies a row across refreshes and sockets.
pub type RowKey = (Level, Arc<str>, Arc<str>);

impl Row {
    /// Its key.
    pub fn key(&self) -> RowKey {
        (self.level, Arc::clone(&self.proxy), Arc::clone(&self.name))
    }
}

/// One socket's reply at one moment.
#[derive(Debug, Clone)]
pub struct Sample {
    /// When it was read.
    pub at: Instant,
    /// Its rows, in HAProxy's order.
    pub rows: Vec<Row>,
}

/// A socket as `top` follows it.
#[derive(Debug)]
pub struct Socket {
    /// Its name in the view.
    pub label: String,
    /// The latest reply and the one before it.
    latest: Option<Sample>,
    previous: Option<Sample>,
    /// Why the latest refresh got no reply.
    pub error: Option<String>,
}

impl Socket {
    fn new(label: String) -> Socket {
        Socket {
            label,
            latest: None,
            previous: None,
            error: None,
        }
    }
}

/// A column the table can be sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    /// The proxy and server names.
    Name,
    /// The status.
    Status,
    /// The weight.
    Weight,
    /// Current sessions.
    Current,
    /// A counter's rate.
    Rate(Counter),
    /// A counter's total.
    Total(Counter),
}

impl Column {
    /// The columns, in the table's order.
    pub const ALL: [Column; 11] = [
        Column::Name,
        Column::Status,
        Column::Weight,
        Column::Current,
        Column::Rate(Counter::Sessions),
        Column::Rate(Counter::Requests),
        Column::Rate(Counter::BytesIn),
        Column::Rate(Counter::BytesOut),
        Column::Rate(Counter::Http5xx),
        Column::Rate(Counter::Errors),
        Column::Total(Counter::Sessions),
    ];

    /// Its heading.
    pub fn heading(self) -> &'static str {
        match self {
            Column::Name => "NAME",
            Column::Status => "STATUS",
            Column::Weight => "WT",
            Column::Current => "CUR",
            Column::Rate(Counter::Sessions) => "SESS/s",
            Column::Rate(Counter::Requests) => "REQ/s",
            Column::Rate(Counter::BytesIn) => "IN/s",
            Column::Rate(Counter::BytesOut) => "OUT/s",
            Column::Rate(Counter::Http5xx) => "5XX/s",
            Column::Rate(Counter::Errors) => "ERR/s",
            Column::Total(Counter::Sessions) => "SESSIONS",
            Column::Total(_) => "TOTAL",
        }
    }
}

/// One line of the table: a row of one socket, or of every socket added up.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    /// The row's key.
    pub key: RowKey,
    /// The socket it comes from (split view), or `None` (every socket).
    pub socket: Option<usize>,
    /// The status: one, or the different ones joined by `/`.
    pub status: String,
    /// The weight (summed across sockets).
    pub weight: Option<i64>,
    /// Current sessions (summed).
    pub current: i64,
    /// Per-second rates, `None` where a counter was reset or not seen twice.
    pub rates: [Option<f64>; 6],
    /// Totals (summed).
    pub totals: [u64; 6],
    /// Whether it is a backend line shown above its servers (tree view).
    pub heading: bool,
}

impl Line {
    fn value(&self, column: Column) -> f64 {
        match column {
            Column::Name | Column::Status => 0.0,
            Column::Weight => self.weight.unwrap_or(-1) as f64,
            Column::Current => self.current as f64,
            Column::Rate(counter) => self.rates[counter as usize].unwrap_or(-1.0),
            Column::Total(counter) => self.totals[counter as usize] as f64,
        }
    }
}

/// What the operator chose to see.
#[derive(Debug, Clone, PartialEq)]
pub struct ViewOptions {
    /// Which proxies.
    pub level: Level,
    /// Servers under their backend (with the server level).
    pub tree: bool,
    /// A line per socket rather than one for all of them.
    pub split: bool,
    /// The sort column, and whether descending.
    pub sort: Column,
    /// Descending order.
    pub descending: bool,
    /// Only names containing this (case-insensitive).
    pub filter: String,
}

impl Default for ViewOptions {
    fn default() -> ViewOptions {
        ViewOptions {
            level: Level::Servers,
            tree: true,
            split: false,
            sort: Column::Name,
            descending: false,
            filter: String::new(),
        }
    }
}

/// Every socket `top` follows.
#[derive(Debug, Default)]
pub struct Model {
    /// The sockets, in the order they were named.
    pub sockets: Vec<Socket>,
}

impl Model {
    /// Follows the sockets called `labels` from now on: those already
    /// followed keep their samples, new ones start empty, the others go.
    pub fn follow(&mut self, labels: &[String]) {
        let mut kept: HashMap<String, Socket> = self
            .sockets
            .drain(..)
            .map(|socket| (socket.label.clone(), socket))
            .collect();
        self.sockets = labels
            .iter()
            .map(|label| kept.remove(label).unwrap_or_else(|| Socket::new(label.clone())))
            .collect();
    }

    /// Records socket `index`'s reply (or why there is none).
    pub fn record(&mut self, index: usize, reply: Result<Sample, String>) {
        let Some(socket) = self.sockets.get_mut(index) else {
            return;
        };
        match reply {
            Ok(sample) => {
                socket.previous = socket.latest.replace(sample);
                socket.error = None;
            }
            Err(error) => {
                // What it said before is no longer true: out of the sums.
                socket.latest = None;
                socket.previous = None;
                socket.error = Some(error);
            }
        }
    }

    /// The sockets whose latest refresh failed, with why.
    pub fn problems(&self) -> Vec<(&str, &str)> {
        self.sockets
            .iter()
            .filter_map(|socket| Some((socket.label.as_str(), socket.error.as_deref()?)))
            .collect()
    }

    /// The latest row of `key` on each socket that has it.
    pub fn rows_of<'a>(&'a self, key: &'a RowKey) -> impl Iterator<Item = (&'a str, &'a Row)> + 'a {
        self.sockets.iter().filter_map(move |socket| {
            let row = socket.latest.as_ref()?.rows.iter().find(|row| row.key() == *key)?;
            Some((socket.label.as_str(), row))
        })
    }

    /// The table's lines for `options`.
    pub fn lines(&self, options: &ViewOptions) -> Vec<Line> {
        let filter = options.filter.to_lowercase();
        let wanted = |row: &Row| match options.level {
            Level::Servers => row.level == Level::Servers || (options.tree && row.level == Level::Backends),
            level => row.level == level,
        };
        // Lines by key (and socket, when split), in first-seen order.
        let mut index: HashMap<(RowKey, Option<usize>), usize> = HashMap::new();
        let mut lines: Vec<Line> = Vec::new();
        for (socket_index, socket) in self.sockets.iter().enumerate() {
            let Some(latest) = &socket.latest else { continue };
            let previous: HashMap<RowKey, &Row> = socket
                .previous
                .iter()
                .flat_map(|sample| sample.rows.iter().map(|row| (row.key(), row)))
                .collect();
            let seconds = socket
                .previous
                .as_ref()
                .map(|previous| latest.at.duration_since(previous.at).as_secs_f64());
            for row in latest.rows.iter().filter(|row| wanted(row)) {
                let key = row.key();
                let rates = rates(row, previous.get(&key).copied(), seconds);
                let slot = (key.clone(), options.split.then_some(socket_index));
                match index.get(&slot) {
                    Some(&at) => lines[at].add(row, rates),
                    None => {
                        index.insert(slot, lines.len());
                        lines.push(Line::first(key, options.split.then_some(socket_index), row, rates));
                    }
                }
            }
        }
        if !filter.is_empty() {
            lines.retain(|line| {
                line.key.2.to_lowercase().contains(&filter) || line.key.1.to_lowercase().contains(&filter)
            });
        }
        sort(&mut lines, options);
        lines
    }
}

/// The rates of `row` since `previous`, `seconds` earlier.
fn rates(row: &Row, previous: Option<&Row>, seconds: Option<f64>) -> [Option<f64>; 6] {
    let mut rates = [None; 6];
    let (Some(previous), Some(seconds)) = (previous, seconds) else {
        return rates;
    };
    if seconds <= 0.0 || previous.pid != row.pid {
        return rates; // a new process: its counters started again
    }
    for (slot, (now, before)) in rates.iter_mut().zip(row.counters.iter().zip(previous.counters)) {
        // A counter that went down was cleared or restarted: no rate.
        *slot = (*now >= before).then(|| (*now - before) as f64 / seconds);
    }
    rates
}

impl Line {
    fn first(key: RowKey, socket: Option<usize>, row: &Row, rates: [Option<f64>; 6]) -> Line {
        Line {
            heading: key.0 == Level::Backends,
            key,
            socket,
            status: row.status.to_string(),
            weight: row.weight,
            current: row.current,
            rates,
            totals: row.counters,
        }
    }

    /// Adds another socket's `row` of the same key.
    fn add(&mut self, row: &Row, rates: [Option<f64>; 6]) {
        if !self.status.split('/').any(|status| status == &*row.status) {
            self.status.push('/');
            self.status.push_str(&row.status);
        }
        self.weight = match (self.weight, row.weight) {
            (Some(mine), Some(theirs)) => Some(mine + theirs),
            (mine, theirs) => mine.or(theirs),
        };
        self.current += row.current;
        for (mine, theirs) in self.rates.iter_mut().zip(rates) {
            *mine = match (*mine, theirs) {
                (Some(mine), Some(theirs)) => Some(mine + theirs),
                _ => None,
            };
        }
        for (mine, theirs) in self.totals.iter_mut().zip(row.counters) {
            *mine += theirs;
        }
    }
}

/// Sorts `lines` by the chosen column; in the tree, servers stay under
/// their backend (backends sorted by name, servers within each).
fn sort(lines: &mut [Line], options: &ViewOptions) {
    let compare = |a: &Line, b: &Line| {
        let order = match options.sort {
            Column::Name => (&a.key.1, &a.key.2).cmp(&(&b.key.1, &b.key.2)),
            Column::Status => a.status.cmp(&b.status),
            column => a.value(column).total_cmp(&b.value(column)),
        };
        let order = if options.descending { order.reverse() } else { order };
        order.then_with(|| (&a.key.1, &a.key.2, a.socket).cmp(&(&b.key.1, &b.key.2, b.socket)))
    };
    if options.level == Level::Servers && options.tree {
        lines.sort_by(|a, b| {
            a.key
                .1
                .cmp(&b.key.1)
                .then_with(|| b.heading.cmp(&a.heading))
                .then_with(|| compare(a, b))
        });
    } else {
        lines.sort_by(compare);
    }
}
