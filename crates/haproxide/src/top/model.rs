//! What `top` shows, as plain data: each socket's latest `show stat` rows,
//! each updated in place by the next reply with the per-second rates of the
//! change (a counter that went down, or a new PID, is a reset: no rate, not
//! a negative one), the rows aggregated across sockets (summed, as
//! `process` sums processes) or split per socket, sorted and filtered. The
//! view only draws this.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use rustc_hash::{FxHashMap, FxHashSet};

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
    pub weight: Option<u32>,
    /// `scur`: current sessions.
    pub current: u32,
    /// The counters, in [`Counter::ALL`]'s order.
    pub counters: [u64; 6],
    /// What its checks say, shared with the previous reply's row while unchanged.
    pub health: Arc<Health>,
    /// `lastchg`: seconds since the last status change.
    pub last_change: Option<u32>,
    /// `pid`: the process that answered, to see a reload.
    pub pid: Option<u32>,
    /// The counters' rates since the socket's previous reply (set when
    /// the reply is recorded; single precision, as a row is kept for every
    /// row of every socket).
    pub rates: [Option<f32>; 6],
}

/// What a server's checks say: shown in the detail pane only, so kept
/// behind one pointer that the next reply's row shares while it holds.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Health {
    /// `check_status`.
    pub check: Arc<str>,
    /// `last_chk`: the last check's output.
    pub last_check: Arc<str>,
    /// `agent_status`.
    pub agent: Arc<str>,
}

/// One row as a reply states it, its texts borrowed from the reply.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading<'a> {
    /// Its level.
    pub level: Level,
    /// `pxname`.
    pub proxy: Cow<'a, str>,
    /// `svname`.
    pub name: Cow<'a, str>,
    /// `status`.
    pub status: Cow<'a, str>,
    /// `weight`.
    pub weight: Option<u32>,
    /// `scur`.
    pub current: u32,
    /// The counters, in [`Counter::ALL`]'s order.
    pub counters: [u64; 6],
    /// `check_status`, `last_chk` and `agent_status`.
    pub health: [Cow<'a, str>; 3],
    /// `lastchg`.
    pub last_change: Option<u32>,
    /// `pid`.
    pub pid: Option<u32>,
}

impl Health {
    /// What `reading` says of its checks.
    fn of(reading: &Reading<'_>, names: &mut Names) -> Arc<Health> {
        let [check, last_check, agent] = &reading.health;
        Arc::new(Health {
            check: names.get(check),
            last_check: names.get(last_check),
            agent: names.get(agent),
        })
    }

    /// Whether `reading` says the same.
    fn says(&self, reading: &Reading<'_>) -> bool {
        let [check, last_check, agent] = &reading.health;
        *self.check == **check && *self.last_check == **last_check && *self.agent == **agent
    }
}

/// What identifies a row across refreshes and sockets.
pub type RowKey = (Level, Arc<str>, Arc<str>);

impl Row {
    /// Its key.
    pub fn key(&self) -> RowKey {
        (self.level, Arc::clone(&self.proxy), Arc::clone(&self.name))
    }

    /// Its key, borrowed.
    fn key_ref(&self) -> (Level, &str, &str) {
        (self.level, &self.proxy, &self.name)
    }

    /// The row `reading` states, without rates.
    fn new(reading: &Reading<'_>, names: &mut Names) -> Row {
        Row {
            level: reading.level,
            proxy: names.get(&reading.proxy),
            name: names.get(&reading.name),
            status: names.get(&reading.status),
            weight: reading.weight,
            current: reading.current,
            counters: reading.counters,
            health: Health::of(reading, names),
            last_change: reading.last_change,
            pid: reading.pid,
            rates: [None; 6],
        }
    }

    /// Becomes what `reading` (of the same key, `seconds` later) states,
    /// its rates taken from the change; unchanged texts are kept, not
    /// looked up.
    fn update(&mut self, reading: &Reading<'_>, seconds: f64, names: &mut Names) {
        self.rates = rates(&reading.counters, reading.pid, self, seconds);
        self.counters = reading.counters;
        names.set(&mut self.status, &reading.status);
        if !self.health.says(reading) {
            self.health = Health::of(reading, names);
        }
        self.weight = reading.weight;
        self.current = reading.current;
        self.last_change = reading.last_change;
        self.pid = reading.pid;
    }
}

/// Finds rows by key: where the rows of the same key were in another list
/// (HAProxy answers in its configuration's order, so the same position
/// nearly always holds it), else through a map of that list made on the
/// first miss.
struct Matcher<'a, T> {
    items: &'a [T],
    key: fn(&T) -> (Level, &str, &str),
    map: Option<FxHashMap<(Level, &'a str, &'a str), usize>>,
}

impl<'a, T> Matcher<'a, T> {
    fn new(items: &'a [T], key: fn(&T) -> (Level, &str, &str)) -> Matcher<'a, T> {
        Matcher { items, key, map: None }
    }

    /// The index of the item of `wanted`'s key, trying `position` first.
    fn find(&mut self, position: usize, wanted: (Level, &str, &str)) -> Option<usize> {
        if self.items.get(position).is_some_and(|item| (self.key)(item) == wanted) {
            return Some(position);
        }
        let (items, key) = (self.items, self.key);
        let map = self.map.get_or_insert_with(|| {
            items
                .iter()
                .enumerate()
                .map(|(index, item)| (key(item), index))
                .collect()
        });
        map.get(&wanted).copied()
    }
}

/// The texts of one socket's rows (names, statuses, check results), each
/// stored once across its rows and replies.
#[derive(Debug, Default)]
pub struct Names(FxHashSet<Arc<str>>);

/// How many text cells a row has: proxy, name, status, check, last check, agent.
const TEXTS: usize = 6;

impl Names {
    /// Forgets every text once far more are stored than `rows` rows use:
    /// texts that come and go (check outputs) must not pile up in a `top`
    /// left running for days.
    fn forget_beyond(&mut self, rows: usize) {
        if self.0.len() > 2 * rows * TEXTS + 1024 {
            self.0.clear();
        }
    }

    /// The stored `text`.
    fn get(&mut self, text: &str) -> Arc<str> {
        if let Some(known) = self.0.get(text) {
            return Arc::clone(known);
        }
        let stored: Arc<str> = Arc::from(text);
        self.0.insert(Arc::clone(&stored));
        stored
    }

    /// Makes `slot` hold `text`, looked up only when it changed.
    fn set(&mut self, slot: &mut Arc<str>, text: &str) {
        if **slot != *text {
            *slot = self.get(text);
        }
    }
}

/// One socket's reply at one moment.
#[derive(Debug)]
pub struct Sample {
    /// When it was asked for.
    pub at: Instant,
    /// Its rows, in HAProxy's order.
    pub rows: Vec<Row>,
    /// The rows' texts.
    names: Names,
}

impl Sample {
    /// No rows yet.
    pub fn new(at: Instant) -> Sample {
        Sample {
            at,
            rows: Vec::new(),
            names: Names::default(),
        }
    }

    /// Starts reading the socket's next reply, asked for at `at`, into
    /// these rows.
    pub fn update(&mut self, at: Instant) -> Update<'_> {
        let seconds = at.saturating_duration_since(self.at).as_secs_f64();
        self.at = at;
        self.names.forget_beyond(self.rows.len());
        Update {
            sample: self,
            seconds,
            read: 0,
            moved: None,
        }
    }
}

/// A reply being read into a [`Sample`], row by row. HAProxy answers in
/// its configuration's order, so each row nearly always stands where it
/// stood in the previous reply: that row is updated in place, its rates
/// taken from the change, and nothing is copied or allocated. From the
/// first row that stands elsewhere (a server added, a reload), the rows
/// are made anew and matched to the previous ones by key at the end.
pub struct Update<'a> {
    sample: &'a mut Sample,
    /// Seconds since the previous reply was asked for.
    seconds: f64,
    /// Rows read so far.
    read: usize,
    /// From the first row out of place: where it was, and the rows since.
    moved: Option<(usize, Vec<Row>)>,
}

impl Update<'_> {
    /// Takes the reply's next row.
    pub fn push(&mut self, reading: &Reading<'_>) {
        let position = self.read;
        self.read += 1;
        let names = &mut self.sample.names;
        if self.moved.is_none() {
            match self.sample.rows.get_mut(position) {
                Some(row) if row.key_ref() == (reading.level, &*reading.proxy, &*reading.name) => {
                    row.update(reading, self.seconds, names);
                    return;
                }
                _ => self.moved = Some((position, Vec::new())),
            }
        }
        if let Some((_, rows)) = &mut self.moved {
            rows.push(Row::new(reading, names));
        }
    }

    /// Ends the reply: the rows past its end go; the rows made anew take
    /// their rates from the previous rows of their key.
    pub fn finish(self) {
        let rows = &mut self.sample.rows;
        let Some((at, mut moved)) = self.moved else {
            rows.truncate(self.read);
            return;
        };
        let before = rows.split_off(at);
        let mut matcher = Matcher::new(&before, Row::key_ref);
        for (offset, row) in moved.iter_mut().enumerate() {
            if let Some(found) = matcher.find(offset, row.key_ref()) {
                row.rates = rates(&row.counters, row.pid, &before[found], self.seconds);
            }
        }
        rows.append(&mut moved);
    }
}

/// A socket as `top` follows it.
#[derive(Debug)]
pub struct Socket {
    /// Its name in the view.
    pub label: String,
    /// The latest reply, its rows' rates taken from the one before.
    latest: Option<Sample>,
    /// Why the latest refresh got no reply.
    pub error: Option<String>,
}

impl Socket {
    fn new(label: String) -> Socket {
        Socket {
            label,
            latest: None,
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
    /// The status: one, or the different ones joined by `/` (shared
    /// with the rows while it is one).
    pub status: Arc<str>,
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

    /// Takes socket `index`'s latest reply out, to read the next one into.
    pub fn take_latest(&mut self, index: usize) -> Option<Sample> {
        self.sockets.get_mut(index)?.latest.take()
    }

    /// Records socket `index`'s reply (or why there is none).
    pub fn record(&mut self, index: usize, reply: Result<Sample, String>) {
        let Some(socket) = self.sockets.get_mut(index) else {
            return;
        };
        match reply {
            Ok(sample) => {
                socket.latest = Some(sample);
                socket.error = None;
            }
            Err(error) => {
                // What it said before is no longer true: out of the sums.
                socket.latest = None;
                socket.error = Some(error);
            }
        }
    }

    /// How many rows the sockets' latest replies hold.
    pub fn row_count(&self) -> usize {
        self.sockets
            .iter()
            .filter_map(|socket| socket.latest.as_ref())
            .map(|sample| sample.rows.len())
            .sum()
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
            let row = socket
                .latest
                .as_ref()?
                .rows
                .iter()
                .find(|row| row.key_ref() == (key.0, &*key.1, &*key.2))?;
            Some((socket.label.as_str(), row))
        })
    }

    /// The table's lines for `options`. `order` is where the lines made
    /// last time went when sorted, updated: each refresh makes the lines in
    /// the same order, so starting the sort from the last one's result
    /// leaves it a check of the order, with nothing moved, while nothing
    /// changed place.
    pub fn lines(&self, options: &ViewOptions, order: &mut Vec<usize>) -> Vec<Line> {
        let filter = options.filter.to_lowercase();
        let wanted = |row: &&Row| match options.level {
            Level::Servers => row.level == Level::Servers || (options.tree && row.level == Level::Backends),
            level => row.level == level,
        };
        let mut lines: Vec<Line> = Vec::new();
        for (socket_index, socket) in self.sockets.iter().enumerate() {
            let Some(latest) = &socket.latest else { continue };
            let rows = latest.rows.iter().filter(wanted);
            if options.split || lines.is_empty() {
                let socket = options.split.then_some(socket_index);
                lines.extend(rows.map(|row| Line::first(row.key(), socket, row)));
                continue;
            }
            // Summed: each row goes to its line, made when no socket had it.
            let known = lines.len();
            let mut matcher = Matcher::new(&lines[..known], |line: &Line| (line.key.0, &line.key.1, &line.key.2));
            let mut found = Vec::with_capacity(known);
            let mut new = Vec::new();
            for (position, row) in rows.enumerate() {
                match matcher.find(position, row.key_ref()) {
                    Some(at) => found.push((at, row)),
                    None => new.push(row),
                }
            }
            for (at, row) in found {
                lines[at].add(row);
            }
            lines.extend(new.into_iter().map(|row| Line::first(row.key(), None, row)));
        }
        if !filter.is_empty() {
            lines.retain(|line| {
                line.key.2.to_lowercase().contains(&filter) || line.key.1.to_lowercase().contains(&filter)
            });
        }
        sort(&mut lines, options, order);
        lines
    }
}

/// The rates of `counters` (from process `pid`) since `previous`,
/// `seconds` earlier.
fn rates(counters: &[u64; 6], pid: Option<u32>, previous: &Row, seconds: f64) -> [Option<f32>; 6] {
    let mut rates = [None; 6];
    if seconds <= 0.0 || previous.pid != pid {
        return rates; // a new process: its counters started again
    }
    for (slot, (now, before)) in rates.iter_mut().zip(counters.iter().zip(previous.counters)) {
        // A counter that went down was cleared or restarted: no rate.
        *slot = (*now >= before).then(|| ((*now - before) as f64 / seconds) as f32);
    }
    rates
}

impl Line {
    fn first(key: RowKey, socket: Option<usize>, row: &Row) -> Line {
        Line {
            heading: key.0 == Level::Backends,
            key,
            socket,
            status: Arc::clone(&row.status),
            weight: row.weight.map(i64::from),
            current: i64::from(row.current),
            rates: row.rates.map(|rate| rate.map(f64::from)),
            totals: row.counters,
        }
    }

    /// Adds another socket's `row` of the same key.
    fn add(&mut self, row: &Row) {
        if *self.status != *row.status && !self.status.split('/').any(|status| status == &*row.status) {
            self.status = Arc::from(format!("{}/{}", self.status, row.status));
        }
        self.weight = match (self.weight, row.weight.map(i64::from)) {
            (Some(mine), Some(theirs)) => Some(mine + theirs),
            (mine, theirs) => mine.or(theirs),
        };
        self.current += i64::from(row.current);
        for (mine, theirs) in self.rates.iter_mut().zip(row.rates.map(|rate| rate.map(f64::from))) {
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

#[cfg(test)]
impl Row {
    /// What a reply stating this row reads as.
    pub fn reading(&self) -> Reading<'_> {
        Reading {
            level: self.level,
            proxy: Cow::Borrowed(&self.proxy),
            name: Cow::Borrowed(&self.name),
            status: Cow::Borrowed(&self.status),
            weight: self.weight,
            current: self.current,
            counters: self.counters,
            health: [&self.health.check, &self.health.last_check, &self.health.agent]
                .map(|text| Cow::Borrowed(&**text)),
            last_change: self.last_change,
            pid: self.pid,
        }
    }
}

#[cfg(test)]
impl Sample {
    /// `previous` (or nothing) updated by a reply of `rows` asked for at `at`.
    pub fn of(previous: Option<Sample>, at: Instant, rows: &[Row]) -> Sample {
        let mut sample = previous.unwrap_or_else(|| Sample::new(at));
        let mut update = sample.update(at);
        for row in rows {
            update.push(&row.reading());
        }
        update.finish();
        sample
    }
}

/// Sorts `lines` by the chosen column, starting from `order` (see
/// [`Model::lines`]); in the tree, servers stay under their backend
/// (backends sorted by name, servers within each).
fn sort(lines: &mut [Line], options: &ViewOptions, order: &mut Vec<usize>) {
    let compare = |a: &Line, b: &Line| {
        let order = match options.sort {
            Column::Name => (&a.key.1, &a.key.2).cmp(&(&b.key.1, &b.key.2)),
            Column::Status => a.status.cmp(&b.status),
            column => a.value(column).total_cmp(&b.value(column)),
        };
        let order = if options.descending { order.reverse() } else { order };
        order.then_with(|| (&a.key.1, &a.key.2, a.socket).cmp(&(&b.key.1, &b.key.2, b.socket)))
    };
    if order.len() != lines.len() {
        *order = (0..lines.len()).collect();
    }
    if options.level == Level::Servers && options.tree {
        order.sort_by(|&a, &b| {
            let (a, b) = (&lines[a], &lines[b]);
            a.key
                .1
                .cmp(&b.key.1)
                .then_with(|| b.heading.cmp(&a.heading))
                .then_with(|| compare(a, b))
        });
    } else {
        order.sort_by(|&a, &b| compare(&lines[a], &lines[b]));
    }
    permute(lines, order);
}

/// Puts `items[order[k]]` at `k`, for `order` a permutation of the
/// indices: one swap per item out of place, following each cycle.
fn permute<T>(items: &mut [T], order: &[usize]) {
    let mut placed = vec![false; items.len()];
    for start in 0..items.len() {
        let mut at = start;
        while !placed[at] {
            placed[at] = true;
            let from = order[at];
            if from == start {
                break;
            }
            items.swap(at, from);
            at = from;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// A row of `level` in `proxy` with `counters` (sessions, requests, in,
    /// out, 5xx, errors) from process `pid`.
    fn row(level: Level, proxy: &str, name: &str, status: &str, counters: [u64; 6], pid: u32) -> Row {
        Row {
            level,
            proxy: proxy.into(),
            name: name.into(),
            status: status.into(),
            weight: Some(1),
            current: 2,
            counters,
            health: Arc::new(Health {
                check: "L7OK".into(),
                last_check: "HTTP status check returned code <3C>200<3E>".into(),
                agent: "".into(),
            }),
            last_change: Some(60),
            pid: Some(pid),
            rates: [None; 6],
        }
    }

    fn server(name: &str, status: &str, sessions: u64, pid: u32) -> Row {
        row(
            Level::Servers,
            "be_app",
            name,
            status,
            [sessions, sessions, 100 * sessions, 0, 0, 0],
            pid,
        )
    }

    /// A model of two sockets; `first` and `second` are each socket's two
    /// replies, two seconds apart.
    fn model(first: [Vec<Row>; 2], second: [Vec<Row>; 2]) -> Model {
        let start = Instant::now();
        let mut model = Model::default();
        model.follow(&["a.sock".to_owned(), "b.sock".to_owned()]);
        for (index, [before, after]) in [first, second].into_iter().enumerate() {
            let before = Sample::of(None, start, &before);
            let after = Sample::of(Some(before), start + Duration::from_secs(2), &after);
            model.record(index, Ok(after));
        }
        model
    }

    fn flat() -> ViewOptions {
        ViewOptions {
            tree: false,
            ..ViewOptions::default()
        }
    }

    #[test]
    fn rates_come_from_the_last_two_replies_and_a_reset_gives_none_not_a_negative_rate() {
        let model = model(
            [
                vec![server("s1", "UP", 10, 7), server("s2", "UP", 10, 7)],
                vec![server("s1", "UP", 30, 7), server("s2", "UP", 4, 7)],
            ],
            [vec![server("s1", "UP", 50, 8)], vec![server("s1", "UP", 70, 9)]],
        );
        let options = ViewOptions { split: true, ..flat() };
        let lines = model.lines(&options, &mut Vec::new());
        // Name, socket, sessions/s, bytes in/s.
        type Rates<'a> = (&'a str, Option<usize>, Option<f64>, Option<f64>);
        let rates: Vec<Rates<'_>> = lines
            .iter()
            .map(|line| (&*line.key.2, line.socket, line.rates[0], line.rates[2]))
            .collect();
        assert_eq!(
            rates,
            [
                // 20 sessions and 2,000 bytes in 2 s.
                ("s1", Some(0), Some(10.0), Some(1000.0)),
                // A new process answered: its counters started again.
                ("s1", Some(1), None, None),
                // Fewer sessions than before: cleared counters.
                ("s2", Some(0), None, None),
            ]
        );
    }

    #[test]
    fn summed_lines_add_sockets_up_and_name_every_status() {
        let model = model(
            [vec![server("s1", "UP", 0, 7)], vec![server("s1", "UP", 20, 7)]],
            [vec![server("s1", "UP", 0, 8)], vec![server("s1", "DRAIN", 40, 8)]],
        );
        let lines = model.lines(&flat(), &mut Vec::new());
        assert_eq!(lines.len(), 1);
        let line = &lines[0];
        assert_eq!(line.socket, None);
        assert_eq!(&*line.status, "UP/DRAIN");
        assert_eq!((line.weight, line.current), (Some(2), 4));
        assert_eq!(line.rates[0], Some(30.0));
        assert_eq!(line.totals[0], 60);
    }

    #[test]
    fn a_socket_without_an_answer_leaves_the_sums_and_is_named() {
        let mut model = model(
            [vec![server("s1", "UP", 0, 7)], vec![server("s1", "UP", 20, 7)]],
            [vec![server("s1", "UP", 0, 8)], vec![server("s1", "UP", 40, 8)]],
        );
        model.record(1, Err("Connection refused (os error 111)".to_owned()));
        assert_eq!(model.problems(), [("b.sock", "Connection refused (os error 111)")]);
        let lines = model.lines(&flat(), &mut Vec::new());
        assert_eq!((lines[0].totals[0], lines[0].weight), (20, Some(1)));
        // Following the same sockets again keeps what they said.
        model.follow(&["a.sock".to_owned(), "b.sock".to_owned()]);
        assert_eq!(model.lines(&flat(), &mut Vec::new())[0].totals[0], 20);
    }

    #[test]
    fn sorting_and_filtering_pick_and_order_the_lines_and_the_tree_keeps_servers_under_their_backend() {
        let rows = |factor: u64| {
            vec![
                row(
                    Level::Backends,
                    "be_app",
                    "BACKEND",
                    "UP",
                    [30 * factor, 0, 0, 0, 0, 0],
                    7,
                ),
                server("s1", "UP", 10 * factor, 7),
                server("s2", "UP", 20 * factor, 7),
                row(Level::Backends, "be_web", "BACKEND", "UP", [0; 6], 7),
                row(Level::Servers, "be_web", "w1", "UP", [0; 6], 7),
                row(Level::Frontends, "fe_main", "FRONTEND", "OPEN", [0; 6], 7),
            ]
        };
        let model = model([rows(1), rows(2)], [rows(1), rows(2)]);
        let names = |options: &ViewOptions| -> Vec<String> {
            model
                .lines(options, &mut Vec::new())
                .iter()
                .map(|line| format!("{}/{}", line.key.1, line.key.2))
                .collect()
        };
        let by_rate = ViewOptions {
            sort: Column::Rate(Counter::Sessions),
            descending: true,
            ..flat()
        };
        assert_eq!(names(&by_rate), ["be_app/s2", "be_app/s1", "be_web/w1"]);
        assert_eq!(
            names(&ViewOptions {
                tree: true,
                ..by_rate.clone()
            }),
            [
                "be_app/BACKEND",
                "be_app/s2",
                "be_app/s1",
                "be_web/BACKEND",
                "be_web/w1"
            ]
        );
        let filtered = ViewOptions {
            filter: "S1".to_owned(),
            ..by_rate.clone()
        };
        assert_eq!(names(&filtered), ["be_app/s1"]);
        let frontends = ViewOptions {
            level: Level::Frontends,
            ..flat()
        };
        assert_eq!(names(&frontends), ["fe_main/FRONTEND"]);
    }

    #[test]
    fn a_reply_like_the_last_updates_every_row_in_place() {
        let start = Instant::now();
        let rows = [server("s1", "UP", 10, 7), server("s2", "UP", 10, 7)];
        let first = Sample::of(None, start, &rows);
        let texts: Vec<_> = first
            .rows
            .iter()
            .map(|row| (Arc::clone(&row.name), Arc::clone(&row.health)))
            .collect();
        let later = [server("s1", "UP", 30, 7), server("s2", "UP", 16, 7)];
        let second = Sample::of(Some(first), start + Duration::from_secs(2), &later);
        for (row, (name, health)) in second.rows.iter().zip(&texts) {
            assert!(
                Arc::ptr_eq(&row.name, name) && Arc::ptr_eq(&row.health, health),
                "{}",
                row.name
            );
        }
        let sessions: Vec<_> = second.rows.iter().map(|row| (row.counters[0], row.rates[0])).collect();
        assert_eq!(sessions, [(30, Some(10.0)), (16, Some(3.0))]);
    }

    #[test]
    fn rows_out_of_place_are_made_anew_with_rates_from_the_rows_of_their_key_and_rows_gone_are_dropped() {
        let start = Instant::now();
        let first = Sample::of(
            None,
            start,
            &[
                server("s1", "UP", 10, 7),
                server("s2", "UP", 10, 7),
                server("s3", "UP", 10, 7),
            ],
        );
        // s0 added before s2, s3 gone: s2 now stands where s3 stood.
        let later = [
            server("s1", "UP", 12, 7),
            server("s0", "UP", 5, 7),
            server("s2", "DOWN", 14, 7),
        ];
        let second = Sample::of(Some(first), start + Duration::from_secs(2), &later);
        let rows: Vec<_> = second
            .rows
            .iter()
            .map(|row| (&*row.name, &*row.status, row.rates[0]))
            .collect();
        assert_eq!(
            rows,
            [("s1", "UP", Some(1.0)), ("s0", "UP", None), ("s2", "DOWN", Some(2.0))]
        );
        let fewer = Sample::of(Some(second), start + Duration::from_secs(4), &later[..1]);
        assert_eq!(fewer.rows.len(), 1);
        assert_eq!(fewer.rows[0].rates[0], Some(0.0));
    }

    #[test]
    fn a_reply_in_another_order_keeps_every_rows_rates() {
        let start = Instant::now();
        let before: Vec<Row> = (1..=5).map(|n| server(&format!("s{n}"), "UP", 10 * n, 7)).collect();
        let first = Sample::of(None, start, &before);
        // Every server 4 s later with 8 × n more sessions, listed backwards.
        let later: Vec<Row> = (1..=5)
            .rev()
            .map(|n| server(&format!("s{n}"), "UP", 18 * n, 7))
            .collect();
        let second = Sample::of(Some(first), start + Duration::from_secs(4), &later);
        let rows: Vec<_> = second.rows.iter().map(|row| (&*row.name, row.rates[0])).collect();
        assert_eq!(
            rows,
            [
                ("s5", Some(10.0)),
                ("s4", Some(8.0)),
                ("s3", Some(6.0)),
                ("s2", Some(4.0)),
                ("s1", Some(2.0))
            ]
        );
    }

    #[test]
    fn permute_puts_each_item_where_the_order_says() {
        let orders: [&[usize]; 4] = [&[0, 1, 2, 3, 4], &[4, 3, 2, 1, 0], &[1, 2, 3, 4, 0], &[2, 0, 1, 4, 3]];
        for order in orders {
            let mut items = ['a', 'b', 'c', 'd', 'e'];
            permute(&mut items, order);
            let expected: Vec<char> = order.iter().map(|&index| (b'a' + index as u8) as char).collect();
            assert_eq!(items.to_vec(), expected, "{order:?}");
        }
    }

    #[test]
    fn a_sort_started_from_the_last_order_gives_the_same_lines_as_one_from_scratch() {
        let rows = |factor: u64| -> Vec<Row> {
            (0..6)
                .map(|n| server(&format!("s{n}"), "UP", (n * 7 % 5) * factor, 7))
                .collect()
        };
        let model = model([rows(1), rows(2)], [rows(1), rows(3)]);
        let by_rate = ViewOptions {
            sort: Column::Rate(Counter::Sessions),
            descending: true,
            ..flat()
        };
        let mut order = Vec::new();
        let by_name = model.lines(&flat(), &mut order);
        assert_eq!(order, [0, 1, 2, 3, 4, 5]);
        let first = model.lines(&by_rate, &mut order);
        assert_eq!(first, model.lines(&by_rate, &mut Vec::new()));
        // Started from the rate order, the name sort is still by name.
        assert_eq!(model.lines(&flat(), &mut order), by_name);
        assert_eq!(model.lines(&by_rate, &mut order), first);
    }
}
