//! Cluster aggregation: `[cluster:NAME]` adds the rounds of several load
//! balancers up into one round of the cluster's own, so that dashboards see
//! `<namespace>.<NAME>.haproxy…` beside each host's metrics.
//!
//! Rounds fall into windows of `window` seconds by their epoch (a window
//! should be the load balancers' pull interval). When `process` has read a
//! round of a member host, the round's `*_info` and `*_stat` files are
//! hard-linked into the window's directory, `<src-dir>.clusters/<NAME>/<window>/`,
//! each named `<host>~<file>`. The window is emitted once every host it waits
//! for has sent, or `grace` seconds after its first round came: its
//! directory gets a manifest naming the cluster as its host, the members and
//! the hosts missing, and is moved into `src-dir` as a round like any other.
//! The ordinary aggregation then applies across the hosts what it applies
//! across one host's processes: counters and current values summed, times
//! averaged as haproxystats averages them ([`crate::stats::aggregate`]).
//!
//! A window waits for the hosts of `hosts`, and for those matching
//! `host-pattern` that have sent since `process` started, except a host
//! that missed the last window emitted: it is waited for again once it
//! sends. A round whose window was emitted already is late: counted
//! (`ClusterLateRounds` of the cluster's rounds) and logged, not emitted
//! again. Open windows and the newest window emitted survive a restart on
//! disk; central processing clears both at start instead, since Kafka hands
//! out again every round whose cluster window was not delivered: a member
//! round is released (its offsets committed) only once its own delivery and
//! every cluster round it went into are finished ([`Clusters::finished`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use regex::Regex;

use crate::config::declare::{self, DefaultValue, Key, Parser, Section};
use crate::config::schema::section_location;
use crate::config::{Config, ConfigError};
use crate::stats::spool::{self, SharedNamer, manifest::Manifest};

/// `[cluster:NAME] hosts`.
const HOSTS: Key<Vec<String>> = Key::new(
    "hosts",
    Parser {
        kind: "host names",
        parse: |text| {
            let hosts: Vec<String> = text.split_whitespace().map(str::to_owned).collect();
            if hosts.is_empty() {
                return Err("must name at least one host".into());
            }
            Ok(hosts)
        },
    },
    DefaultValue::Unset("none"),
    "the member load balancers, space-separated, by the host names their rounds record (`[pull] hostname`)",
);
/// `[cluster:NAME] host-pattern`.
const HOST_PATTERN: Key<String> = Key::new(
    "host-pattern",
    Parser {
        kind: "regular expression",
        parse: |text| {
            Regex::new(text)
                .map(|_| text.to_owned())
                .map_err(|error| format!("invalid regular expression: {error}"))
        },
    },
    DefaultValue::Unset("none"),
    "members by host name, besides `hosts`: a host matching it is waited for once it has sent a round",
);
/// `[cluster:NAME] window`.
const WINDOW: Key<u32> = Key::new(
    "window",
    declare::COUNT_FROM_1,
    DefaultValue::Fallback("10"),
    "seconds of a window, the load balancers' pull interval: a round joins the window its epoch falls in",
);
/// `[cluster:NAME] grace`.
const GRACE: Key<Duration> = Key::new(
    "grace",
    declare::SECONDS,
    DefaultValue::Fallback("30"),
    "seconds after a window's first round at which it is emitted with the hosts that came; later rounds of it are counted as late, not emitted",
);

/// `[cluster:NAME]`: one cluster of load balancers.
pub const SECTIONS: Section = Section::of(
    "cluster:",
    "a cluster of load balancers whose rounds `process` also adds up, as `<namespace>.<NAME>.haproxy`",
    &[&HOSTS, &HOST_PATTERN, &WINDOW, &GRACE],
)
.with_rules(rules);

/// Every `[cluster:NAME]` has members and a NAME that is one level of a
/// metric name, and is where rounds are aggregated: not on a load balancer
/// that ships its rounds to Kafka unaggregated.
fn rules(config: &Config) -> Vec<ConfigError> {
    let mut errors = Vec::new();
    let shipping = crate::stats::sinks::kafka_rounds::enabled(config);
    for name in section_names(config) {
        let problem = |message: String| ConfigError::Section {
            location: section_location(config, &name),
            section: name.clone(),
            message,
        };
        let cluster = &name[SECTIONS.name.len()..];
        if let Err(reason) = declare::graphite_path_part(cluster) {
            errors.push(problem(format!("the cluster's name {cluster:?} {reason}")));
        }
        let set = |key: &str| config.ini().section(&name).is_some_and(|own| own.entry(key).is_some());
        if !set(HOSTS.name) && !set(HOST_PATTERN.name) {
            errors.push(problem(
                "set `hosts`, `host-pattern` or both: the cluster has no member".into(),
            ));
        }
        if shipping {
            errors.push(problem(
                "[kafka-rounds] enabled = true ships rounds unaggregated: add clusters up where they are processed (`source = kafka`)".into(),
            ));
        }
    }
    errors
}

fn section_names(config: &Config) -> Vec<String> {
    config
        .ini()
        .section_names()
        .filter(|name| SECTIONS.matches(name))
        .map(str::to_owned)
        .collect()
}

/// One `[cluster:NAME]`, read.
#[derive(Debug, Clone)]
pub struct ClusterSettings {
    name: String,
    hosts: BTreeSet<String>,
    pattern: Option<Regex>,
    window: u64,
    grace: Duration,
}

impl ClusterSettings {
    /// Every `[cluster:NAME]` of the configuration (checked already).
    pub fn from_config(config: &Config) -> anyhow::Result<Vec<ClusterSettings>> {
        section_names(config)
            .into_iter()
            .map(|section| {
                let pattern = config
                    .get_opt_in(&section, &HOST_PATTERN)?
                    .map(|pattern| Regex::new(&pattern))
                    .transpose()
                    .with_context(|| format!("[{section}] host-pattern"))?;
                Ok(ClusterSettings {
                    name: section[SECTIONS.name.len()..].to_owned(),
                    hosts: config
                        .get_opt_in(&section, &HOSTS)?
                        .unwrap_or_default()
                        .into_iter()
                        .collect(),
                    pattern,
                    window: u64::from(config.get_in(&section, &WINDOW)?),
                    grace: config.get_in(&section, &GRACE)?,
                })
            })
            .collect()
    }

    fn has(&self, host: &str) -> bool {
        self.hosts.contains(host) || self.pattern.as_ref().is_some_and(|pattern| pattern.is_match(host))
    }

    fn window_of(&self, epoch: u64) -> u64 {
        epoch - epoch % self.window
    }
}

/// Where clusters keep their open windows: `<src-dir>.clusters`.
pub fn windows_dir(src_dir: &Path) -> PathBuf {
    spool::beside(src_dir, "clusters")
}

/// Removes every open window and what was emitted, for central processing
/// (see the module's doc).
pub fn clear(src_dir: &Path) -> anyhow::Result<()> {
    let root = windows_dir(src_dir);
    match std::fs::remove_dir_all(&root) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
            Err(error).with_context(|| format!("cannot remove {}", root.display()))
        }
        _ => Ok(()),
    }
}

/// A window's file recording when its first round came (epoch seconds).
const OPENED_FILE: &str = "opened";
/// A cluster's file recording the newest window emitted.
const EMITTED_FILE: &str = "last-window";
/// What separates a member's host from the name of its file in a window.
const HOST_SEPARATOR: char = '~';

/// What the pipeline is told of a round once its own delivery is over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finished {
    /// No cluster round still needs it: its source may forget it.
    Released(String),
    /// A cluster window still holds its files: not to be forgotten yet.
    Held(String),
}

/// What adding a round or expiring windows did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Cluster rounds now in `src-dir`, by name.
    pub emitted: Vec<String>,
    /// Member rounds no longer held by anything: finished with.
    pub released: Vec<String>,
}

/// A round that joined a window.
struct Joined {
    window: u64,
    /// The host's earlier round in the window, which it replaced.
    replaced: Option<String>,
    complete: bool,
}

/// The clusters of one `process`, their open windows and what they hold.
pub struct Clusters {
    root: PathBuf,
    src_dir: PathBuf,
    /// Names the cluster rounds, as every round `process` writes into `src-dir`.
    namer: SharedNamer,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    clusters: Vec<Cluster>,
    /// Member rounds (`src-dir` names) and how many things still hold them:
    /// their own delivery, and each cluster round they went into.
    holds: HashMap<String, usize>,
    /// Cluster rounds emitted and not finished, with the member rounds in them.
    emitted: HashMap<String, Vec<String>>,
}

struct Cluster {
    settings: ClusterSettings,
    open: BTreeMap<u64, Window>,
    /// The newest window emitted: a round of it or older that finds no open
    /// window is late.
    newest_emitted: Option<u64>,
    /// Hosts matching `host-pattern` (and not in `hosts`) that sent, with
    /// the first window they sent for: waited for in later windows.
    seen: BTreeMap<String, u64>,
    /// Hosts missing from the last window emitted: not waited for until they send.
    absent: BTreeSet<String>,
    late: u64,
}

struct Window {
    /// Host → the member round whose files are in the window (`None`:
    /// put there by an earlier run).
    hosts: BTreeMap<String, Option<String>>,
    opened: SystemTime,
}

impl Cluster {
    fn dir(&self, root: &Path) -> PathBuf {
        root.join(&self.settings.name)
    }

    /// The hosts window `window` waits for.
    fn expected(&self, window: u64) -> BTreeSet<&String> {
        let seen_before = self
            .seen
            .iter()
            .filter(|(_, first)| **first < window)
            .map(|(host, _)| host);
        self.settings
            .hosts
            .iter()
            .chain(seen_before)
            .filter(|host| !self.absent.contains(*host))
            .collect()
    }

    /// Whether every host window `window` waits for sent; a window that
    /// knows of none to wait for (the first of a `host-pattern` cluster)
    /// waits for its grace.
    fn complete(&self, window: u64, open: &Window) -> bool {
        let expected = self.expected(window);
        !expected.is_empty() && expected.iter().all(|host| open.hosts.contains_key(*host))
    }
}

/// A member's host as a file name part: every byte but `[A-Za-z0-9._-]`
/// as `%XX`, so that any host name gives one distinct, safe name.
fn host_part(host: &str) -> String {
    let mut part = String::with_capacity(host.len());
    for byte in host.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-') {
            part.push(char::from(byte));
        } else {
            part.push_str(&format!("%{byte:02X}"));
        }
    }
    if part.starts_with('.') {
        part.replace_range(..1, "%2E");
    }
    part
}

fn epoch_seconds(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |since| since.as_secs())
}

impl Clusters {
    /// The clusters of `settings`, with the windows an earlier run left
    /// open under `<src_dir>.clusters`, naming their rounds with `namer`;
    /// `None` without clusters.
    pub fn open(settings: &[ClusterSettings], src_dir: &Path, namer: SharedNamer) -> anyhow::Result<Option<Clusters>> {
        if settings.is_empty() {
            return Ok(None);
        }
        let root = windows_dir(src_dir);
        let mut clusters = Vec::new();
        for settings in settings {
            let mut cluster = Cluster {
                settings: settings.clone(),
                open: BTreeMap::new(),
                newest_emitted: None,
                seen: BTreeMap::new(),
                absent: BTreeSet::new(),
                late: 0,
            };
            let dir = cluster.dir(&root);
            std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
            cluster.newest_emitted = std::fs::read_to_string(dir.join(EMITTED_FILE))
                .ok()
                .and_then(|text| text.trim().parse().ok());
            for entry in std::fs::read_dir(&dir).with_context(|| format!("cannot list {}", dir.display()))? {
                let entry = entry?;
                let Some(window) = entry.file_name().to_str().and_then(|name| name.parse::<u64>().ok()) else {
                    continue;
                };
                let recovered = recover_window(&entry.path())?;
                for host in recovered.hosts.keys() {
                    if !settings.hosts.contains(host) {
                        let first = cluster.seen.entry(host.clone()).or_insert(window);
                        *first = (*first).min(window);
                    }
                }
                tracing::info!(
                    "cluster {}: window {window} left open by an earlier run, with {} host(s)",
                    settings.name,
                    recovered.hosts.len()
                );
                cluster.open.insert(window, recovered);
            }
            clusters.push(cluster);
        }
        Ok(Some(Clusters {
            root,
            src_dir: src_dir.to_owned(),
            namer,
            state: Mutex::new(State {
                clusters,
                ..State::default()
            }),
        }))
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        crate::runtime::unpoisoned(self.state.lock(), "the cluster windows")
    }

    /// A round of `host` was read from `src-dir/<round>`: its files join the
    /// window of each cluster it belongs to, once (a round read again for
    /// a sink that lacked it is in already). Problems are logged.
    pub fn add(&self, host: &str, round: &str, epoch: u64, dir: &Path) -> Outcome {
        let mut state = self.state();
        let state = &mut *state;
        let mut outcome = Outcome::default();
        if state.holds.contains_key(round) {
            return outcome;
        }
        for index in 0..state.clusters.len() {
            let Some(joined) = self.join(&mut state.clusters[index], host, round, epoch, dir) else {
                continue;
            };
            *state.holds.entry(round.to_owned()).or_insert(1) += 1;
            if let Some(earlier) = joined.replaced
                && release(&mut state.holds, &earlier)
            {
                outcome.released.push(earlier);
            }
            if joined.complete {
                self.emit(state, index, joined.window, &mut outcome);
            }
        }
        outcome
    }

    /// Puts the round into its window of `cluster`, if it is a member's and not late.
    fn join(&self, cluster: &mut Cluster, host: &str, round: &str, epoch: u64, dir: &Path) -> Option<Joined> {
        if !cluster.settings.has(host) {
            return None;
        }
        let window = cluster.settings.window_of(epoch);
        let name = &cluster.settings.name;
        if !cluster.open.contains_key(&window) && cluster.newest_emitted.is_some_and(|newest| window <= newest) {
            cluster.late += 1;
            tracing::warn!(
                "cluster {name}: round {round} of {host} is late: window {window} was emitted; counted ({} so far), not emitted again",
                cluster.late
            );
            return None;
        }
        let window_dir = cluster.dir(&self.root).join(window.to_string());
        if let Err(error) = link_member(&window_dir, host, dir) {
            tracing::error!(
                "cluster {name}: cannot put round {round} of {host} into window {window}: {error:#}; the window goes without it"
            );
            return None;
        }
        if !cluster.settings.hosts.contains(host) {
            let first = cluster.seen.entry(host.to_owned()).or_insert(window);
            *first = (*first).min(window);
        }
        cluster.absent.remove(host);
        let open = cluster.open.entry(window).or_insert_with(|| Window {
            hosts: BTreeMap::new(),
            opened: opened_at(&window_dir),
        });
        let replaced = open.hosts.insert(host.to_owned(), Some(round.to_owned())).flatten();
        if let Some(earlier) = &replaced {
            tracing::warn!("cluster {name}: round {round} of {host} replaces its round {earlier} in window {window}");
        }
        let complete = cluster
            .open
            .get(&window)
            .is_some_and(|open| cluster.complete(window, open));
        Some(Joined {
            window,
            replaced,
            complete,
        })
    }

    /// Emits the windows whose grace has passed at `now`, and those that
    /// became complete since a host that missed a window is no longer waited for.
    pub fn expire(&self, now: SystemTime) -> Outcome {
        let mut state = self.state();
        let state = &mut *state;
        let mut outcome = Outcome::default();
        for index in 0..state.clusters.len() {
            let cluster = &state.clusters[index];
            let grace = cluster.settings.grace;
            let due: Vec<u64> = cluster
                .open
                .iter()
                .filter(|(window, open)| open.opened + grace <= now || cluster.complete(**window, open))
                .map(|(window, _)| *window)
                .collect();
            for window in due {
                self.emit(state, index, window, &mut outcome);
            }
        }
        outcome
    }

    /// Windows still open, for the log.
    pub fn open_windows(&self) -> usize {
        self.state().clusters.iter().map(|cluster| cluster.open.len()).sum()
    }

    /// Rounds held: member rounds not released, and cluster rounds not finished.
    pub fn holding(&self) -> usize {
        let state = self.state();
        state.holds.len() + state.emitted.len()
    }

    /// The late rounds of the cluster whose rounds are called `host`.
    pub fn late(&self, host: &str) -> Option<u64> {
        self.state()
            .clusters
            .iter()
            .find(|cluster| cluster.settings.name == host)
            .map(|cluster| cluster.late)
    }

    /// Round `name` is finished with (every sink confirmed it, or it was
    /// quarantined): what that finishes. A cluster round releases its
    /// members whose own delivery is over; a member round still in a
    /// cluster round not finished is held.
    pub fn finished(&self, name: &str) -> Vec<Finished> {
        let mut state = self.state();
        let mut finished = Vec::new();
        if let Some(members) = state.emitted.remove(name) {
            for member in members {
                if release(&mut state.holds, &member) {
                    finished.push(Finished::Released(member));
                }
            }
            finished.push(Finished::Released(name.to_owned()));
        } else if state.holds.contains_key(name) {
            finished.push(if release(&mut state.holds, name) {
                Finished::Released(name.to_owned())
            } else {
                Finished::Held(name.to_owned())
            });
        } else {
            finished.push(Finished::Released(name.to_owned()));
        }
        finished
    }

    /// Moves window `window` of cluster `index` into `src-dir` as a round.
    /// On failure the window is dropped, with its reason logged, and its
    /// members released.
    fn emit(&self, state: &mut State, index: usize, window: u64, outcome: &mut Outcome) {
        let cluster = &mut state.clusters[index];
        let Some(open) = cluster.open.remove(&window) else {
            return;
        };
        let name = cluster.settings.name.clone();
        let expected: BTreeSet<String> = cluster.expected(window).into_iter().cloned().collect();
        let missing: Vec<String> = expected
            .iter()
            .filter(|host| !open.hosts.contains_key(*host))
            .cloned()
            .collect();
        // Hosts that missed it are not waited for until they send again.
        cluster.absent.extend(missing.iter().cloned());
        let newest = cluster.newest_emitted.map_or(window, |newest| newest.max(window));
        cluster.newest_emitted = Some(newest);
        let window_dir = cluster.dir(&self.root).join(window.to_string());
        let members: Vec<String> = open.hosts.values().flatten().cloned().collect();
        let moved = self.move_window(&name, window, &open, &missing, newest);
        match moved {
            Ok(round) => {
                let waited = SystemTime::now().duration_since(open.opened).unwrap_or_default();
                if missing.is_empty() {
                    tracing::info!(
                        "cluster {name}: window {window} of {} host(s) emitted as round {round} after {:.1} s",
                        open.hosts.len(),
                        waited.as_secs_f64()
                    );
                } else {
                    tracing::warn!(
                        "cluster {name}: window {window} emitted as round {round} after grace without {}",
                        missing.join(", ")
                    );
                }
                state.emitted.insert(round.clone(), members);
                outcome.emitted.push(round);
            }
            Err(error) => {
                tracing::error!("cluster {name}: window {window} cannot be emitted: {error:#}; dropped");
                let _ = std::fs::remove_dir_all(&window_dir);
                for member in members {
                    if release(&mut state.holds, &member) {
                        outcome.released.push(member);
                    }
                }
            }
        }
    }
}

/// One fewer thing holds `round`; whether nothing does any more.
fn release(holds: &mut HashMap<String, usize>, round: &str) -> bool {
    let Some(count) = holds.get_mut(round) else {
        return true;
    };
    *count = count.saturating_sub(1);
    if *count == 0 {
        holds.remove(round);
        return true;
    }
    false
}

/// When the window in `dir` opened: recorded in it, else now (recorded).
fn opened_at(dir: &Path) -> SystemTime {
    let recorded = std::fs::read_to_string(dir.join(OPENED_FILE))
        .ok()
        .and_then(|text| text.trim().parse::<u64>().ok());
    match recorded {
        Some(seconds) => UNIX_EPOCH + Duration::from_secs(seconds),
        None => {
            let now = SystemTime::now();
            if let Err(error) = std::fs::write(dir.join(OPENED_FILE), format!("{}\n", epoch_seconds(now))) {
                tracing::warn!("cannot record when {} opened: {error}", dir.display());
            }
            now
        }
    }
}

/// Hard-links (or copies, across filesystems) the round files and manifest
/// of the round in `round_dir` into `window_dir` as `<host>~<file>`, in
/// place of any earlier round of the host.
fn link_member(window_dir: &Path, host: &str, round_dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(window_dir).with_context(|| format!("cannot create {}", window_dir.display()))?;
    let prefix = format!("{}{HOST_SEPARATOR}", host_part(host));
    for entry in std::fs::read_dir(window_dir)? {
        let entry = entry?;
        if entry.file_name().to_string_lossy().starts_with(&prefix) {
            std::fs::remove_file(entry.path())?;
        }
    }
    let listing = spool::list_round(round_dir).with_context(|| format!("cannot list {}", round_dir.display()))?;
    let files = listing
        .infos
        .iter()
        .chain(&listing.stats)
        .map(|(_, path)| path)
        .chain(&listing.manifest);
    for path in files {
        let Some(file) = path.file_name() else { continue };
        let target = window_dir.join(format!("{prefix}{}", file.to_string_lossy()));
        if std::fs::hard_link(path, &target).is_err() {
            std::fs::copy(path, &target)
                .with_context(|| format!("cannot link or copy {} to {}", path.display(), target.display()))?;
        }
    }
    Ok(())
}

/// The hosts of a window an earlier run left, from its members' manifests.
fn recover_window(dir: &Path) -> anyhow::Result<Window> {
    let mut hosts = BTreeMap::new();
    let suffix = format!("{HOST_SEPARATOR}{}", spool::MANIFEST_FILE);
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let entry = entry?;
        if entry.file_name().to_string_lossy().ends_with(&suffix)
            && let Ok(manifest) = Manifest::read(&entry.path())
        {
            hosts.insert(manifest.host, None);
        }
    }
    Ok(Window {
        hosts,
        opened: opened_at(dir),
    })
}

impl Clusters {
    /// Gives window `window` of `cluster` its manifest and moves it into
    /// `src-dir` as a round of epoch `window`, recording it when it is the
    /// `newest` window emitted; the round's name.
    fn move_window(
        &self,
        cluster: &str,
        window: u64,
        open: &Window,
        missing: &[String],
        newest: u64,
    ) -> anyhow::Result<String> {
        let cluster_dir = self.root.join(cluster);
        let window_dir = cluster_dir.join(window.to_string());
        let window_dir = window_dir.as_path();
        let mut failed = Vec::new();
        let manifest_suffix = format!("{HOST_SEPARATOR}{}", spool::MANIFEST_FILE);
        for entry in std::fs::read_dir(window_dir).with_context(|| format!("cannot list {}", window_dir.display()))? {
            let entry = entry?;
            let file = entry.file_name().to_string_lossy().into_owned();
            if let Some(host) = file.strip_suffix(&manifest_suffix) {
                if let Ok(member) = Manifest::read(&entry.path()) {
                    failed.extend(
                        member
                            .failed
                            .iter()
                            .map(|socket| format!("{host}{HOST_SEPARATOR}{socket}")),
                    );
                }
                std::fs::remove_file(entry.path())?;
            } else if file == OPENED_FILE {
                std::fs::remove_file(entry.path())?;
            }
        }
        failed.sort();
        let manifest = Manifest {
            round: window.to_string(),
            host: cluster.to_owned(),
            epoch: window,
            failed,
            members: open.hosts.keys().cloned().collect(),
            missing: missing.to_vec(),
            ..Manifest::default()
        };
        std::fs::write(window_dir.join(spool::MANIFEST_FILE), manifest.to_text())
            .with_context(|| format!("cannot write the manifest of {}", window_dir.display()))?;
        let (_, target) = spool::move_in(window_dir, &self.src_dir, window, || spool::next_sequence(&self.namer))?;
        // The newest window emitted is recorded when this one is it.
        if newest == window {
            let emitted_file = cluster_dir.join(EMITTED_FILE);
            std::fs::write(&emitted_file, format!("{window}\n"))
                .with_context(|| format!("cannot write {}", emitted_file.display()))?;
        }
        Ok(target
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW_START: u64 = 1_700_000_000;

    fn settings(hosts: &[&str], pattern: Option<&str>) -> ClusterSettings {
        ClusterSettings {
            name: "web".into(),
            hosts: hosts.iter().map(|host| (*host).to_owned()).collect(),
            pattern: pattern.map(|pattern| Regex::new(pattern).unwrap()),
            window: 10,
            grace: Duration::from_secs(30),
        }
    }

    /// A `src-dir`, and the member rounds `process` read (kept apart, so
    /// that the cluster rounds' names are those of their windows).
    struct Spool {
        dir: tempfile::TempDir,
    }

    impl Spool {
        fn new() -> Spool {
            let dir = tempfile::tempdir().unwrap();
            std::fs::create_dir(dir.path().join("incoming")).unwrap();
            std::fs::create_dir(dir.path().join("members")).unwrap();
            Spool { dir }
        }

        fn src_dir(&self) -> PathBuf {
            self.dir.path().join("incoming")
        }

        /// The clusters of `settings` on this spool.
        fn clusters(&self, settings: &[ClusterSettings]) -> Clusters {
            Clusters::open(settings, &self.src_dir(), spool::Namer::open(&self.src_dir()))
                .unwrap()
                .unwrap()
        }

        /// A round `name` of `host` with one socket's files; its directory.
        fn round(&self, host: &str, name: &str) -> PathBuf {
            let dir = self.dir.path().join("members").join(name);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("a.sock_info"), format!("Name: HAProxy\nNode: {host}\n\n")).unwrap();
            std::fs::write(dir.join("a.sock_stat"), "# pxname,svname,scur,\nfe,FRONTEND,1,\n\n").unwrap();
            let manifest = Manifest {
                round: name.into(),
                host: host.into(),
                failed: if host == "lb2" {
                    vec!["b.sock".into()]
                } else {
                    Vec::new()
                },
                ..Manifest::default()
            };
            std::fs::write(dir.join(spool::MANIFEST_FILE), manifest.to_text()).unwrap();
            dir
        }

        fn add(&self, clusters: &Clusters, host: &str, name: &str) -> Outcome {
            let dir = self.round(host, name);
            clusters.add(host, name, spool::round_epoch(name).unwrap(), &dir)
        }

        fn manifest(&self, round: &str) -> Manifest {
            Manifest::read(&self.src_dir().join(round).join(spool::MANIFEST_FILE)).unwrap()
        }
    }

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|name| (*name).to_owned()).collect()
    }

    fn released(list: &[&str]) -> Vec<Finished> {
        list.iter().map(|name| Finished::Released((*name).to_owned())).collect()
    }

    #[test]
    fn a_window_is_emitted_once_every_host_sent_and_holds_its_members_until_delivered() {
        let spool = Spool::new();
        let clusters = spool.clusters(&[settings(&["lb1", "lb2", "lb3"], None)]);
        assert_eq!(spool.add(&clusters, "lb1", "1700000001"), Outcome::default());
        assert_eq!(spool.add(&clusters, "other", "1700000002"), Outcome::default());
        assert_eq!(spool.add(&clusters, "lb2", "1700000003"), Outcome::default());
        // Read again (for a sink that lacked it): in once only.
        assert_eq!(spool.add(&clusters, "lb2", "1700000003"), Outcome::default());
        let outcome = spool.add(&clusters, "lb3", "1700000009");
        assert_eq!(outcome.emitted, ["1700000000.1000000"]);
        let round = spool.src_dir().join("1700000000.1000000");
        assert_eq!(
            testkit::dir_entries(&round),
            [
                "lb1~a.sock_info",
                "lb1~a.sock_stat",
                "lb2~a.sock_info",
                "lb2~a.sock_stat",
                "lb3~a.sock_info",
                "lb3~a.sock_stat",
                "manifest.json"
            ]
        );
        let manifest = spool.manifest("1700000000.1000000");
        assert_eq!(manifest.host, "web");
        assert_eq!(manifest.epoch, WINDOW_START);
        assert_eq!(manifest.members, names(&["lb1", "lb2", "lb3"]));
        assert_eq!(manifest.missing, Vec::<String>::new());
        assert_eq!(manifest.failed, names(&["lb2~b.sock"]));
        // The window is no longer open; the members' own files are untouched.
        assert_eq!(
            testkit::dir_entries(&windows_dir(&spool.src_dir()).join("web")),
            ["last-window"]
        );
        assert_eq!(
            testkit::dir_entries(&spool.dir.path().join("members").join("1700000001")).len(),
            3
        );

        // A member finished before its cluster round is held, then released with it.
        assert_eq!(clusters.finished("1700000001"), [Finished::Held("1700000001".into())]);
        assert_eq!(clusters.finished("1700000002"), released(&["1700000002"]));
        assert_eq!(
            clusters.finished("1700000000.1000000"),
            released(&["1700000001", "1700000000.1000000"])
        );
        assert_eq!(clusters.finished("1700000003"), released(&["1700000003"]));
        assert_eq!(clusters.finished("1700000009"), released(&["1700000009"]));
    }

    #[test]
    fn after_grace_a_window_goes_without_the_missing_host_whose_round_is_then_late() {
        let spool = Spool::new();
        let clusters = spool.clusters(&[settings(&["lb1", "lb2", "lb3"], None)]);
        spool.add(&clusters, "lb1", "1700000000");
        spool.add(&clusters, "lb2", "1700000001");
        spool.add(&clusters, "lb1", "1700000010");
        let now = SystemTime::now();
        assert_eq!(clusters.expire(now), Outcome::default());
        assert_eq!(clusters.open_windows(), 2);
        let outcome = clusters.expire(now + Duration::from_secs(31));
        assert_eq!(outcome.emitted, ["1700000000.1000000", "1700000010.1000001"]);
        assert_eq!(spool.manifest("1700000000.1000000").missing, names(&["lb3"]));
        assert_eq!(spool.manifest("1700000000.1000000").members, names(&["lb1", "lb2"]));
        // lb3 missed the first window, so the second one did not wait for it.
        assert_eq!(spool.manifest("1700000010.1000001").missing, names(&["lb2"]));
        // Late: counted, not emitted, not held.
        assert_eq!(spool.add(&clusters, "lb3", "1700000005"), Outcome::default());
        assert_eq!(clusters.late("web"), Some(1));
        assert_eq!(clusters.late("lb3"), None);
        assert_eq!(clusters.finished("1700000005"), released(&["1700000005"]));
        // A window without lb2 and lb3 waits for lb1 alone; once they send
        // again they are waited for again.
        assert_eq!(
            spool.add(&clusters, "lb1", "1700000020").emitted,
            ["1700000020.1000002"]
        );
        spool.add(&clusters, "lb3", "1700000031");
        assert_eq!(
            spool.add(&clusters, "lb1", "1700000030").emitted,
            ["1700000030.1000003"]
        );
        spool.add(&clusters, "lb2", "1700000040");
        spool.add(&clusters, "lb1", "1700000041");
        assert_eq!(
            spool.add(&clusters, "lb3", "1700000042").emitted,
            ["1700000040.1000004"]
        );
    }

    #[test]
    fn a_pattern_cluster_learns_its_hosts_from_its_first_window() {
        let spool = Spool::new();
        let clusters = spool.clusters(&[settings(&[], Some("^lb[0-9]+$"))]);
        assert_eq!(spool.add(&clusters, "lb1", "1700000000"), Outcome::default());
        assert_eq!(spool.add(&clusters, "lb22", "1700000001"), Outcome::default());
        assert_eq!(spool.add(&clusters, "web9", "1700000002"), Outcome::default());
        let outcome = clusters.expire(SystemTime::now() + Duration::from_secs(31));
        assert_eq!(outcome.emitted, ["1700000000.1000000"]);
        assert_eq!(spool.manifest("1700000000.1000000").members, names(&["lb1", "lb22"]));
        assert_eq!(spool.add(&clusters, "lb22", "1700000010"), Outcome::default());
        assert_eq!(
            spool.add(&clusters, "lb1", "1700000011").emitted,
            ["1700000010.1000001"]
        );
    }

    #[test]
    fn a_second_round_of_a_host_in_a_window_replaces_its_first_which_is_released() {
        let spool = Spool::new();
        let clusters = spool.clusters(&[settings(&["lb1", "lb2"], None)]);
        spool.add(&clusters, "lb1", "1700000000");
        assert_eq!(clusters.finished("1700000000"), [Finished::Held("1700000000".into())]);
        let outcome = spool.add(&clusters, "lb1", "1700000005");
        assert_eq!(outcome.released, ["1700000000"]);
        // A round in src-dir has the name the namer gives: the cluster round takes the next.
        std::fs::create_dir(spool.src_dir().join("1700000000.1000000")).unwrap();
        assert_eq!(
            spool.add(&clusters, "lb2", "1700000006").emitted,
            ["1700000000.1000001"]
        );
        assert_eq!(
            clusters.finished("1700000000.1000001"),
            released(&["1700000000.1000001"]),
            "its members are still in their own delivery"
        );
        assert_eq!(clusters.finished("1700000005"), released(&["1700000005"]));
    }

    #[test]
    fn open_windows_and_the_newest_emitted_survive_a_restart() {
        let spool = Spool::new();
        let cluster = settings(&["lb1", "lb2"], None);
        let first = spool.clusters(std::slice::from_ref(&cluster));
        spool.add(&first, "lb1", "1700000000");
        spool.add(&first, "lb2", "1700000001");
        spool.add(&first, "odd/host name\n", "1700000011");
        spool.add(&first, "lb2", "1700000012");
        drop(first);
        let again = spool.clusters(std::slice::from_ref(&cluster));
        assert_eq!(again.open_windows(), 1);
        assert_eq!(spool.add(&again, "lb1", "1700000005"), Outcome::default());
        assert_eq!(again.late("web"), Some(1));
        assert_eq!(spool.add(&again, "lb1", "1700000013").emitted, ["1700000010.1000001"]);
        assert_eq!(spool.manifest("1700000010.1000001").members, names(&["lb1", "lb2"]));
        // A host outside the cluster never joins; a cluster round's host files are named safely.
        let other = spool.clusters(&[settings(&[], Some("host"))]);
        spool.add(&other, "odd/host name\n", "1700000021");
        other.expire(SystemTime::now() + Duration::from_secs(31));
        assert_eq!(
            testkit::dir_entries(&spool.src_dir().join("1700000020.1000002")),
            [
                "manifest.json",
                "odd%2Fhost%20name%0A~a.sock_info",
                "odd%2Fhost%20name%0A~a.sock_stat"
            ]
        );
        clear(&spool.src_dir()).unwrap();
        assert!(!windows_dir(&spool.src_dir()).exists());
        clear(&spool.src_dir()).unwrap();
    }

    #[test]
    fn sections_need_members_and_a_name_that_is_one_level_of_a_metric_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.conf");
        std::fs::write(
            &path,
            "[cluster:web]\nhosts = lb1 lb2\nwindow = 5\n[cluster:a.b]\nhost-pattern = ^lb\n[cluster:empty]\ngrace = 3\n\
             [kafka-rounds]\nenabled = true\nbrokers = 127.0.0.1:9092\n",
        )
        .unwrap();
        let config = Config::load(Some(&path), None).unwrap();
        let errors: Vec<String> = rules(&config).iter().map(ToString::to_string).collect();
        let at = |line: usize| format!("{}:{line}: ", path.display());
        let shipping = |line: usize, name: &str| {
            format!(
                "{}[cluster:{name}]: [kafka-rounds] enabled = true ships rounds unaggregated: add clusters up where they are processed (`source = kafka`)",
                at(line)
            )
        };
        assert_eq!(
            errors,
            [
                shipping(1, "web"),
                format!(
                    "{}[cluster:a.b]: the cluster's name \"a.b\" must be one level of a metric name: letters, digits, `_`, `:` and `-`, no dots or spaces",
                    at(4)
                ),
                shipping(4, "a.b"),
                format!(
                    "{}[cluster:empty]: set `hosts`, `host-pattern` or both: the cluster has no member",
                    at(6)
                ),
                shipping(6, "empty"),
            ]
        );
        let settings = ClusterSettings::from_config(&config).unwrap();
        assert_eq!(settings.len(), 3);
        assert_eq!(settings[0].name, "web");
        assert_eq!(settings[0].window_of(1_700_000_009), 1_700_000_005);
        assert_eq!(settings[1].grace, Duration::from_secs(30));
        assert_eq!(settings[2].grace, Duration::from_secs(3));
    }
}
