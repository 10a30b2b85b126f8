//! `haproxide process`: the haproxystats-process successor.
//!
//! It watches `src-dir` with inotify for rounds renamed into it (`IN_MOVED_TO`;
//! a directory created in place is still being written and is ignored until
//! the next start). Only then does it scan the backlog, so no round can fall
//! between scan and watch. `workers` rounds are processed at a time: read
//! ([`crate::stats::round`]), aggregated into a typed batch
//! ([`crate::stats::aggregate`]), and handed in round order to each sink's
//! lane: a queue in memory, bounded by the sink's `queue-size`, that a task
//! of the sink's own delivers from; the sink encodes the batch its own way.
//! A slow or failing sink thus holds back no other; what does not fit, or
//! what a sink that is down lacks, waits in the spool and is read again
//! later, oldest first. Which round stands where is the [`ledger`]'s to
//! keep: a round directory is deleted only after every sink confirmed it. A
//! round that cannot be read at all is moved to the quarantine directory
//! with the reason, never retried in a loop. Under systemd it is ready once
//! the workers run, and pings the watchdog while none is stuck on a round.
//! SIGTERM/SIGHUP/SIGINT: no new rounds are started; the lanes get
//! `shutdown-timeout` to deliver what they hold, then exit 0 (the rest stays
//! in the spool).

pub mod ledger;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use regex::Regex;
use tokio::sync::{Notify, mpsc};

use crate::config::declare::{self, DefaultValue, Entries, Key, Parser, Section};
use crate::config::schema::section_location;
use crate::config::{Config, ConfigError};
use crate::runtime::notify::{Heartbeat, Supervisor};
use crate::runtime::shutdown::{Shutdown, within_grace};
use crate::runtime::watch::{DirEvent, watch_dir};
use crate::stats::aggregate::{Groups, Options, aggregate, seconds, summed_part};
use crate::stats::central;
use crate::stats::cluster::{ClusterSettings, Clusters, Finished, Outcome};
use crate::stats::metric_names::{
    BACKEND, BACKEND_AVG, BACKEND_AVG_TIME, FRONTEND, SERVER, SERVER_AVG, SERVER_AVG_TIME,
};
use crate::stats::metrics::Batch;
use crate::stats::round::{read_round, read_round_host};
use crate::stats::sinks::graphite::{self, Graphite, GraphiteSettings};
use crate::stats::sinks::kafka::{KafkaSink, KafkaSinkSettings};
use crate::stats::sinks::kafka_rounds::{self, KafkaRounds};
use crate::stats::sinks::local_store::{self, LocalStore};
use crate::stats::sinks::plaintext::{self, Plaintext, sanitize};
use crate::stats::sinks::prometheus::{Prometheus, PrometheusSettings};
use crate::stats::sinks::{Sink, Snapshot};
use crate::stats::spool::{self, SharedNamer, round_epoch};
use ledger::Ledger;

/// How long a worker may spend on one round (reading, aggregating, waiting
/// its turn behind earlier rounds) before it is called wedged: far past the
/// second or so the largest rounds take.
const ROUND_ALLOWANCE: Duration = Duration::from_secs(60);
/// How often an idle worker beats.
const IDLE_BEAT: Duration = Duration::from_secs(1);

/// `[process] workers`.
const WORKERS: Key<usize> = Key::new(
    "workers",
    declare::COUNT,
    DefaultValue::Builtin("4"),
    "rounds read and aggregated at the same time",
);
/// `[process] src-dir`.
const SRC_DIR: Key<PathBuf> = Key::new(
    "src-dir",
    declare::PATH,
    DefaultValue::Builtin("/var/lib/haproxystats/incoming"),
    "the spool `pull` delivers rounds into",
);
/// `[process] aggr-server-metrics`.
const AGGR_SERVER_METRICS: Key<bool> = Key::new(
    "aggr-server-metrics",
    declare::BOOL,
    DefaultValue::Builtin("false"),
    "also report each server name summed across all backends, as `server.<name>`",
);
/// `[process] per-process-metrics`.
const PER_PROCESS_METRICS: Key<bool> = Key::new(
    "per-process-metrics",
    declare::BOOL,
    DefaultValue::Builtin("false"),
    "also report each HAProxy process's `show info`, as `daemon.process.<n>`",
);
/// `[process] calculate-percentages`.
const CALCULATE_PERCENTAGES: Key<bool> = Key::new(
    "calculate-percentages",
    declare::BOOL,
    DefaultValue::Builtin("false"),
    "also report connection, rate and SSL usage as percentages of their limits",
);
/// `[process] liveness-check-interval`.
const LIVENESS_CHECK_INTERVAL: Key<Duration> = Key::new(
    "liveness-check-interval",
    declare::POSITIVE_SECONDS,
    DefaultValue::Builtin("10"),
    "how often haproxystats checked that its worker processes were alive",
)
.ignored("workers are tasks of one process, not processes to watch");

/// A metric list of `[process]`: names from `lists`.
const fn metric_list(
    name: &'static str,
    doc: &'static str,
    parse: fn(&str) -> Result<Vec<String>, String>,
) -> Key<Vec<String>> {
    Key::new(
        name,
        Parser {
            kind: "metric names",
            parse,
        },
        DefaultValue::Unset("haproxystats' list"),
        doc,
    )
}
/// `[process] frontend-metrics`.
const FRONTEND_METRICS: Key<Vec<String>> = metric_list(
    "frontend-metrics",
    "the frontend metrics to report, space-separated",
    |text| declare::names(text, &[FRONTEND]),
);
/// `[process] backend-metrics`.
const BACKEND_METRICS: Key<Vec<String>> = metric_list(
    "backend-metrics",
    "the backend metrics to report, space-separated; averaged ones are reported once, averaged",
    |text| declare::names(text, &[BACKEND, BACKEND_AVG, BACKEND_AVG_TIME]),
);
/// `[process] server-metrics`.
const SERVER_METRICS: Key<Vec<String>> = metric_list(
    "server-metrics",
    "the server metrics to report, space-separated; averaged ones are reported once, averaged",
    |text| declare::names(text, &[SERVER, SERVER_AVG, SERVER_AVG_TIME]),
);
/// `[process] exclude-frontends`.
const EXCLUDE_FRONTENDS: Key<PathBuf> = Key::new(
    "exclude-frontends",
    declare::PATH,
    DefaultValue::Unset("none"),
    "a file of frontend names not to report, one a line (`#` comments); read anew for every round",
);
/// `[process] exclude-backends`.
const EXCLUDE_BACKENDS: Key<PathBuf> = Key::new(
    "exclude-backends",
    declare::PATH,
    DefaultValue::Unset("none"),
    "a file of backend names whose backend and servers are not reported; read anew for every round",
);
/// `[process] quarantine-dir`.
const QUARANTINE_DIR: Key<PathBuf> = Key::new(
    "quarantine-dir",
    declare::PATH,
    DefaultValue::Unset("`<src-dir>.quarantine`"),
    "where rounds that cannot be read at all are moved, with the reason",
);
/// Where `process` takes its rounds from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `src-dir`, which `pull` fills on this host.
    Spool,
    /// Kafka, which load balancers' `[kafka-rounds]` fill ([`crate::stats::central`]).
    Kafka,
}

/// `[process] source`.
const SOURCE: Key<Source> = Key::new(
    "source",
    Parser {
        kind: "spool or kafka",
        parse: |text| Ok([Source::Spool, Source::Kafka][declare::choice(text, &["spool", "kafka"])?]),
    },
    DefaultValue::Fallback("spool"),
    "`spool`: rounds `pull` writes into `src-dir` here; `kafka`: every load balancer's rounds from `[kafka-rounds]`, as a member of its consumer group (`src-dir` then holds the rounds being processed)",
);
/// `[process] shutdown-timeout`.
const SHUTDOWN_TIMEOUT: Key<Duration> = Key::new(
    "shutdown-timeout",
    declare::SECONDS,
    DefaultValue::Fallback("5"),
    "seconds the sinks get after a stop signal to deliver what they hold; the rest stays in `src-dir`",
);

/// `[process]`, haproxystats-process's section.
pub const SECTION: Section = Section::of(
    "process",
    "how `process` reads and aggregates rounds",
    &[
        &SOURCE,
        &SRC_DIR,
        &WORKERS,
        &AGGR_SERVER_METRICS,
        &PER_PROCESS_METRICS,
        &CALCULATE_PERCENTAGES,
        &FRONTEND_METRICS,
        &BACKEND_METRICS,
        &SERVER_METRICS,
        &EXCLUDE_FRONTENDS,
        &EXCLUDE_BACKENDS,
        &QUARANTINE_DIR,
        &SHUTDOWN_TIMEOUT,
        &LIVENESS_CHECK_INTERVAL,
    ],
)
.with_rules(check_process);

/// The group rules, and a central `process` not shipping rounds back.
fn check_process(config: &Config) -> Vec<ConfigError> {
    let mut errors = check_groups(config);
    if config.get(&SECTION, &SOURCE).ok() == Some(Source::Kafka) {
        if kafka_rounds::enabled(config) {
            errors.push(ConfigError::Section {
                location: section_location(config, kafka_rounds::SECTION.name),
                section: kafka_rounds::SECTION.name.to_owned(),
                message: "enabled = true with [process] source = kafka would send the rounds consumed back to Kafka"
                    .into(),
            });
        } else {
            // With the sink on, [kafka-rounds]' own rule already says these.
            errors.extend(kafka_rounds::client_problems(config));
        }
    }
    errors
}

/// A group section: group names mapped to regular expressions.
const fn group_section(name: &'static str, doc: &'static str) -> Section {
    Section::of_entries(
        name,
        doc,
        Entries {
            doc: "a group name (one level of a metric name) = a regular expression; an entity goes in the group of the first pattern its (sanitised) name matches",
            check_key: declare::graphite_path_part,
            check: |pattern| {
                regex::Regex::new(pattern)
                    .map(drop)
                    .map_err(|error| format!("invalid regular expression: {error}"))
            },
        },
    )
}

/// `[frontend-groups]`.
pub const FRONTEND_GROUPS: Section = group_section("frontend-groups", "groups of frontends, by name");
/// `[backend-groups]`.
pub const BACKEND_GROUPS: Section = group_section(
    "backend-groups",
    "groups of backends (their servers and `TotalServers` with them), by name",
);
/// `[server-groups]`.
pub const SERVER_GROUPS: Section = group_section(
    "server-groups",
    "groups of servers across backends (`aggr-server-metrics`), by name",
);

/// `group-namespace` needs `group-namespace-double-writes` and a group
/// section; group sections need `group-namespace`.
fn check_groups(config: &Config) -> Vec<ConfigError> {
    let group_sections: Vec<&str> = [&FRONTEND_GROUPS, &BACKEND_GROUPS, &SERVER_GROUPS]
        .iter()
        .map(|section| section.name)
        .filter(|name| config.has_section(name))
        .collect();
    let section_error = |section: &str, message: &str| ConfigError::Section {
        location: section_location(config, section),
        section: section.to_owned(),
        message: message.to_owned(),
    };
    let mut errors = Vec::new();
    let graphite = graphite::SECTION.name;
    let namespace = config.string(graphite, plaintext::GROUP_NAMESPACE.name).ok().flatten();
    if namespace.is_some() {
        if config
            .ini()
            .lookup(graphite, plaintext::GROUP_NAMESPACE_DOUBLE_WRITES.name)
            .is_none()
        {
            errors.push(section_error(
                graphite,
                "group-namespace is set, so group-namespace-double-writes (true/false) is required",
            ));
        }
        if group_sections.is_empty() {
            errors.push(section_error(
                graphite,
                "group-namespace is set but there is no [frontend-groups], [backend-groups] or [server-groups] section",
            ));
        }
    } else {
        for section in group_sections {
            errors.push(section_error(section, "group sections need [graphite] group-namespace"));
        }
    }
    errors
}

/// `[process] src-dir` of a configuration (for the spool check).
pub fn configured_src_dir(config: &Config) -> Result<PathBuf, ConfigError> {
    config.get(&SECTION, &SRC_DIR)
}

/// `[process]` and what it needs from `[graphite]` and `[local-store]`.
pub struct Settings {
    src_dir: PathBuf,
    quarantine_dir: PathBuf,
    workers: usize,
    options: Options,
    exclude_frontends: Option<PathBuf>,
    exclude_backends: Option<PathBuf>,
    sinks: Vec<Box<dyn Sink>>,
    /// How long the sinks may go on delivering after a stop signal.
    shutdown_timeout: Duration,
    /// `[cluster:NAME]` sections.
    clusters: Vec<ClusterSettings>,
    /// What names the rounds this process writes into `src-dir` itself,
    /// when another writer (central processing) shares it.
    namer: Option<SharedNamer>,
    /// Told of every round that is finished with: confirmed by every sink,
    /// or quarantined, and released by the cluster rounds it went into
    /// (central processing commits its offsets then).
    finished: Option<mpsc::UnboundedSender<Finished>>,
}

impl Settings {
    /// Reads the configuration (checked with `Scope::Of(Program::Process)`)
    /// and builds the sinks it names; nothing starts before [`run`].
    pub fn from_config(config: &Config) -> anyhow::Result<Settings> {
        let src_dir = config.get(&SECTION, &SRC_DIR)?;
        let quarantine_dir = match config.get_opt(&SECTION, &QUARANTINE_DIR)? {
            Some(dir) => dir,
            None => spool::beside(&src_dir, "quarantine"),
        };
        let mut options = Options {
            per_process_metrics: config.get(&SECTION, &PER_PROCESS_METRICS)?,
            calculate_percentages: config.get(&SECTION, &CALCULATE_PERCENTAGES)?,
            aggr_server_metrics: config.get(&SECTION, &AGGR_SERVER_METRICS)?,
            groups: groups(config)?,
            ..Options::default()
        };
        if let Some(names) = config.get_opt(&SECTION, &FRONTEND_METRICS)? {
            options.frontend_metrics = names;
        }
        if let Some(names) = config.get_opt(&SECTION, &BACKEND_METRICS)? {
            options.backend_metrics = summed_part(&names, &[BACKEND_AVG, BACKEND_AVG_TIME]);
        }
        if let Some(names) = config.get_opt(&SECTION, &SERVER_METRICS)? {
            options.server_metrics = summed_part(&names, &[SERVER_AVG, SERVER_AVG_TIME]);
        }
        let plaintext = Arc::new(Plaintext::from_config(config)?);
        let mut sinks: Vec<Box<dyn Sink>> = Vec::new();
        if config.has_section(local_store::SECTION.name) {
            let dir = config.get(&local_store::SECTION, &local_store::DIR)?;
            sinks.push(Box::new(LocalStore::new(dir, Arc::clone(&plaintext))));
        }
        if let Some(graphite) = GraphiteSettings::from_config(config)? {
            sinks.push(Box::new(Graphite::new(graphite, Arc::clone(&plaintext))));
        }
        if let Some(kafka) = KafkaSinkSettings::from_config(config)? {
            sinks.push(Box::new(KafkaSink::new(kafka, Arc::clone(&plaintext))));
        }
        if let Some(rounds) = KafkaRounds::from_config(config)? {
            sinks.push(Box::new(rounds));
        }
        let clusters = ClusterSettings::from_config(config)?;
        let many_hosts = config.get(&SECTION, &SOURCE)? == Source::Kafka || !clusters.is_empty();
        if let Some(prometheus) = PrometheusSettings::from_config(config, many_hosts)? {
            sinks.push(Box::new(Prometheus::new(prometheus)));
        }
        if sinks.is_empty() {
            bail!(
                "no destination for the metrics: [graphite] enabled = false, no [local-store] section, [kafka], [kafka-rounds] and [prometheus] not enabled"
            );
        }
        Ok(Settings {
            src_dir,
            quarantine_dir,
            workers: config.get(&SECTION, &WORKERS)?,
            options,
            exclude_frontends: config.get_opt(&SECTION, &EXCLUDE_FRONTENDS)?,
            exclude_backends: config.get_opt(&SECTION, &EXCLUDE_BACKENDS)?,
            sinks,
            shutdown_timeout: config.get(&SECTION, &SHUTDOWN_TIMEOUT)?,
            clusters,
            namer: None,
            finished: None,
        })
    }

    /// Whether any sink takes the rounds' metrics; if none does, rounds are
    /// not aggregated.
    fn takes_metrics(&self) -> bool {
        self.sinks.iter().any(|sink| sink.takes_metrics())
    }

    /// The same settings, telling `finished` of every round once it is
    /// confirmed by every sink or quarantined: held while a cluster round
    /// still needs it, released once none does.
    pub fn report_finished(self, finished: mpsc::UnboundedSender<Finished>) -> Settings {
        Settings {
            finished: Some(finished),
            ..self
        }
    }

    /// The same settings, naming the cluster rounds with `namer`, which
    /// another writer of `src-dir` shares.
    pub fn named_by(self, namer: SharedNamer) -> Settings {
        Settings {
            namer: Some(namer),
            ..self
        }
    }

    /// `src-dir`.
    pub fn src_dir(&self) -> &Path {
        &self.src_dir
    }

    /// The same settings delivering to `sinks` instead of those the
    /// configuration names: for tests, and for programs that embed the pipeline.
    pub fn with_sinks(self, sinks: Vec<Box<dyn Sink>>) -> Settings {
        Settings { sinks, ..self }
    }

    /// The aggregation options of one snapshot: exclusion files are read anew
    /// for every snapshot, so edits apply without a restart.
    fn snapshot_options(&self, problems: &mut Vec<String>) -> Options {
        let mut options = self.options.clone();
        options.extended = self.sinks.iter().any(|sink| sink.takes_extended_metrics());
        options.exclude_frontends = read_exclusions(self.exclude_frontends.as_deref(), problems);
        options.exclude_backends = read_exclusions(self.exclude_backends.as_deref(), problems);
        options
    }
}

/// The group patterns, read only when `[graphite] group-namespace` is set.
fn groups(config: &Config) -> anyhow::Result<Groups> {
    if config
        .get_opt(&graphite::SECTION, &plaintext::GROUP_NAMESPACE)?
        .is_none()
    {
        return Ok(Groups::default());
    }
    let patterns = |section: &Section| -> anyhow::Result<Vec<(Arc<str>, Regex)>> {
        let Some(entries) = config.ini().section(section.name) else {
            return Ok(Vec::new());
        };
        entries
            .entries
            .iter()
            .map(|entry| {
                let pattern = config.string(section.name, &entry.key)?.unwrap_or_default();
                Ok((
                    Arc::from(entry.key.as_str()),
                    Regex::new(&pattern).with_context(|| format!("[{}] {}", section.name, entry.key))?,
                ))
            })
            .collect()
    };
    Ok(Groups {
        frontend: patterns(&FRONTEND_GROUPS)?,
        backend: patterns(&BACKEND_GROUPS)?,
        server: patterns(&SERVER_GROUPS)?,
    })
}

/// Names in an exclusion file, sanitised as the names they are matched against;
/// `#` lines and blank lines are skipped.
fn read_exclusions(path: Option<&Path>, problems: &mut Vec<String>) -> HashSet<String> {
    let Some(path) = path else { return HashSet::new() };
    match std::fs::read_to_string(path) {
        Ok(text) => text
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .map(|name| sanitize(name).into_owned())
            .collect(),
        Err(error) => {
            problems.push(format!(
                "{}: cannot read the exclusion list: {error}; nothing excluded",
                path.display()
            ));
            HashSet::new()
        }
    }
}

/// A round's output on its way to the sinks, with what its last log line needs.
struct Outgoing {
    snapshot: Arc<Snapshot>,
    /// Metrics with a value (Graphite lines, before group double writes):
    /// what lanes count against `queue-size`.
    lines: usize,
    started: Instant,
    problems: usize,
}

/// What workers and lanes share.
struct Shared {
    settings: Settings,
    ledger: Mutex<Ledger<Arc<Outgoing>>>,
    /// Workers wait here for rounds.
    wake: Notify,
    /// Workers wait here for their turn to hand a round to the lanes.
    turn: Notify,
    /// Lane `i` waits here for rounds.
    lane_wake: Vec<Notify>,
    stopping: AtomicBool,
    /// No more rounds will be handed to the lanes: they stop once empty.
    closing: AtomicBool,
    once: bool,
    quarantined: AtomicUsize,
    /// The clusters' open windows, when there are `[cluster:NAME]` sections.
    clusters: Option<Clusters>,
    /// Rounds that could neither be removed once delivered nor quarantined
    /// when unreadable: they stay in `src-dir`, and `--once` exits 1.
    stuck: AtomicUsize,
}

impl Shared {
    /// The ledger. Nothing panics while holding it; if something did, that
    /// is a bug: it is logged ([`crate::runtime::unpoisoned`]).
    fn ledger(&self) -> MutexGuard<'_, Ledger<Arc<Outgoing>>> {
        crate::runtime::unpoisoned(self.ledger.lock(), "the delivery ledger")
    }

    fn enqueue(&self, name: &str) {
        if self.ledger().offer(name) {
            self.wake.notify_one();
        }
    }

    /// Queues every entry of `src-dir`: round directories, and anything
    /// else, which is quarantined rather than left there unseen.
    fn scan(&self) -> anyhow::Result<()> {
        let entries = std::fs::read_dir(&self.settings.src_dir)
            .with_context(|| format!("cannot list {}", self.settings.src_dir.display()))?;
        for entry in entries.filter_map(Result::ok) {
            if let Ok(name) = entry.file_name().into_string() {
                self.enqueue(&name);
            }
        }
        Ok(())
    }

    /// The oldest waiting round and its ticket; `None` when stopping (or,
    /// with `--once`, when nothing is left to do).
    async fn next(&self) -> Option<(String, u64)> {
        loop {
            let notified = self.wake.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let idle = {
                let mut ledger = self.ledger();
                if self.stopping.load(Ordering::SeqCst) {
                    return None;
                }
                if let Some(taken) = ledger.take() {
                    return Some(taken);
                }
                // Rounds in flight may still queue parked ones again.
                self.once && ledger.idle()
            };
            if idle {
                // Cluster windows whose grace has passed are the last rounds.
                if self.expire_clusters() == 0 {
                    return None;
                }
                continue;
            }
            notified.await;
        }
    }

    fn done(&self, name: &str, ticket: u64) {
        self.ledger().finished(name, ticket);
        self.turn.notify_waiters();
        self.wake.notify_waiters();
    }

    /// Waits until every round taken before this one has been handed over (or given up).
    async fn wait_turn(&self, ticket: u64) {
        loop {
            let notified = self.turn.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.ledger().is_turn_of(ticket) {
                return;
            }
            notified.await;
        }
    }

    /// Hands a round to the lanes of the sinks that lack it (see [`Ledger::dispatch`]).
    fn dispatch(&self, outgoing: &Arc<Outgoing>) {
        let snapshot = &outgoing.snapshot;
        let dispatched = self.ledger().dispatch(&snapshot.round, outgoing.lines, outgoing);
        for sink in dispatched.lanes {
            self.lane_wake[sink].notify_one();
        }
        for (sink, queued) in dispatched.full {
            let target = &self.settings.sinks[sink];
            tracing::warn!(
                "round {}: {} has {queued} lines queued in memory (queue-size {}); the round waits in src-dir",
                snapshot.round,
                target.name(),
                target.queue_size()
            );
        }
    }

    /// Sink `sink` delivered the front of its lane (`ok`) or failed it; the
    /// round, if now confirmed by every sink, is returned for removal.
    fn settle(self: &Arc<Self>, sink: usize, ok: bool) -> Option<Arc<Outgoing>> {
        let settled = self.ledger().settle(sink, ok);
        if settled.went_down {
            self.watch_recovery(sink);
        }
        self.wake.notify_waiters();
        settled.removable
    }

    /// After sink `sink` failed: once it recovers, what it owes is retried.
    fn watch_recovery(self: &Arc<Self>, sink: usize) {
        if self.once {
            return;
        }
        let shared = Arc::clone(self);
        tokio::spawn(async move {
            shared.settings.sinks[sink].recovered().await;
            let owed = shared.ledger().recovered(sink);
            tracing::info!(
                "{} recovered: {owed} round(s) to deliver again",
                shared.settings.sinks[sink].name()
            );
            shared.wake.notify_waiters();
        });
    }

    /// Forgets a round that is gone (quarantined or removed): later rounds
    /// no longer wait for it.
    fn forget(&self, name: &str) {
        self.ledger().forget(name);
        self.wake.notify_waiters();
    }

    /// The removal of a delivered round is over: it may be taken again.
    fn removed(&self, name: &str) {
        self.ledger().removed(name);
        self.wake.notify_waiters();
    }

    /// Round `name` is finished with: the observer, if any, is told what
    /// that finishes (see [`Clusters::finished`]).
    fn finished(&self, name: &str) {
        // The clusters forget what holds `name` even when nobody observes.
        let finished = match &self.clusters {
            Some(clusters) => clusters.finished(name),
            None => vec![Finished::Released(name.to_owned())],
        };
        if let Some(observer) = &self.settings.finished {
            for event in finished {
                let _ = observer.send(event);
            }
        }
    }

    /// Queues the cluster rounds emitted, and tells the observer of the
    /// member rounds released.
    fn clusters_did(&self, outcome: Outcome) {
        for name in &outcome.emitted {
            self.enqueue(name);
        }
        if let Some(observer) = &self.settings.finished {
            for name in outcome.released {
                let _ = observer.send(Finished::Released(name));
            }
        }
    }

    /// Emits the cluster windows whose grace has passed; how many.
    fn expire_clusters(&self) -> usize {
        let Some(clusters) = &self.clusters else { return 0 };
        let outcome = clusters.expire(std::time::SystemTime::now());
        let emitted = outcome.emitted.len();
        self.clusters_did(outcome);
        emitted
    }

    fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.wake.notify_waiters();
    }

    /// Workers are gone: lanes finish what they hold and stop.
    fn close(&self) {
        self.closing.store(true, Ordering::SeqCst);
        for wake in &self.lane_wake {
            wake.notify_one();
        }
    }
}

/// Delivers the rounds of sink `sink`'s lane, one at a time and in order,
/// until the lane is closed and empty.
async fn run_lane(shared: Arc<Shared>, sink: usize) {
    let target = &shared.settings.sinks[sink];
    loop {
        let notified = shared.lane_wake[sink].notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let front = shared.ledger().front(sink);
        let Some(outgoing) = front else {
            if shared.closing.load(Ordering::SeqCst) {
                return;
            }
            notified.await;
            continue;
        };
        let outcome = target.deliver(Arc::clone(&outgoing.snapshot)).await;
        if let Err(error) = &outcome {
            tracing::error!(
                "round {}: {} failed: {error:#}; the round stays in src-dir for it",
                outgoing.snapshot.round,
                target.name()
            );
        }
        if let Some(delivered) = shared.settle(sink, outcome.is_ok()) {
            remove_round(&shared, &delivered).await;
        }
    }
}

/// Prefix of a confirmed round's directory while it is removed: renamed
/// first, so a crash mid-removal leaves no half round to be read again.
pub(crate) const REMOVING: &str = ".removing-";

/// Removes the directory of a round every sink confirmed.
async fn remove_round(shared: &Shared, outgoing: &Outgoing) {
    let name = &outgoing.snapshot.round;
    let path = shared.settings.src_dir.join(name);
    let doomed = shared.settings.src_dir.join(format!("{REMOVING}{name}"));
    let (record, delivered) = (spool::last_delivered_file(&shared.settings.src_dir), name.clone());
    let removal = tokio::task::spawn_blocking(move || -> Result<(), String> {
        std::fs::rename(&path, &doomed).map_err(|error| {
            format!(
                "cannot rename {} aside: {error}; it will be delivered again",
                path.display()
            )
        })?;
        std::fs::remove_dir_all(&doomed).map_err(|error| format!("cannot remove {}: {error}", doomed.display()))?;
        // What `check process` reads: the last round every sink confirmed.
        if let Err(error) = std::fs::write(&record, format!("{delivered}\n")) {
            tracing::warn!("cannot write {}: {error}", record.display());
        }
        Ok(())
    })
    .await;
    match removal {
        Ok(Ok(())) => tracing::info!(
            "round {name}: {} metrics delivered in {:.3} s{}",
            outgoing.lines,
            outgoing.started.elapsed().as_secs_f64(),
            if outgoing.problems == 0 {
                String::new()
            } else {
                format!(", {} problem(s)", outgoing.problems)
            }
        ),
        Ok(Err(error)) => {
            shared.stuck.fetch_add(1, Ordering::SeqCst);
            tracing::error!("round {name}: delivered, but {error}");
        }
        Err(error) => {
            shared.stuck.fetch_add(1, Ordering::SeqCst);
            tracing::error!("round {name}: delivered, but the removal task failed: {error}");
        }
    }
    shared.removed(name);
    shared.finished(name);
}

/// Finishes removals a crash interrupted.
fn remove_leftovers(src_dir: &Path) {
    let Ok(entries) = std::fs::read_dir(src_dir) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        if entry.file_name().to_string_lossy().starts_with(REMOVING)
            && let Err(error) = std::fs::remove_dir_all(entry.path())
        {
            tracing::error!("cannot remove {}: {error}", entry.path().display());
        }
    }
}

/// `haproxide process`: with `once`, the rounds present (exit 0 when all
/// were delivered), else until a stop signal.
pub fn main(config: &Config, once: bool) -> anyhow::Result<ExitCode> {
    let settings = Settings::from_config(config)?;
    match config.get(&SECTION, &SOURCE)? {
        Source::Spool => crate::runtime::run_daemon(config, &SECTION, run(settings, once)),
        Source::Kafka if once => central::refuse_once(),
        Source::Kafka => {
            let central = central::CentralSettings::from_config(config)?;
            crate::runtime::run_daemon(config, &SECTION, central::run(settings, central))
        }
    }
}

/// Runs `process`: `--once` handles the rounds present and exits (0 when all
/// succeeded); otherwise it runs until a stop signal. A stop signal ends
/// `--once` the same way: rounds in flight are finished within
/// `shutdown-timeout`, the rest stays in the spool, exit 0.
pub async fn run(settings: Settings, once: bool) -> anyhow::Result<ExitCode> {
    if settings.sinks.is_empty() {
        bail!("no destination for the metrics: no sink");
    }
    std::fs::create_dir_all(&settings.src_dir)
        .with_context(|| format!("cannot create src-dir {}", settings.src_dir.display()))?;
    let workers = settings.workers;
    let sinks = settings.sinks.len();
    let queue_sizes: Vec<usize> = settings.sinks.iter().map(|sink| sink.queue_size()).collect();
    // A sink's backlog is replayed twice `workers` rounds at a time.
    let ledger = Ledger::new(&queue_sizes, 2 * workers);
    let namer = settings
        .namer
        .clone()
        .unwrap_or_else(|| spool::Namer::open(&settings.src_dir));
    let clusters = Clusters::open(&settings.clusters, &settings.src_dir, namer)?;
    let shared = Arc::new(Shared {
        settings,
        ledger: Mutex::new(ledger),
        wake: Notify::new(),
        turn: Notify::new(),
        lane_wake: (0..sinks).map(|_| Notify::new()).collect(),
        stopping: AtomicBool::new(false),
        closing: AtomicBool::new(false),
        once,
        quarantined: AtomicUsize::new(0),
        clusters,
        stuck: AtomicUsize::new(0),
    });
    let (intake_tx, mut intake_rx) = mpsc::unbounded_channel();
    if !once {
        watch_dir(&shared.settings.src_dir, intake_tx)?;
    }
    remove_leftovers(&shared.settings.src_dir);
    shared.scan()?;
    tracing::info!(src_dir = %shared.settings.src_dir.display(), workers, "process started");
    for sink in shared.settings.sinks.iter().filter(|sink| once && sink.pulled()) {
        tracing::warn!(
            "{} is scraped, so it serves only while process runs: with --once, only until these rounds are done",
            sink.name()
        );
    }

    let mut lanes = tokio::task::JoinSet::new();
    for sink in 0..sinks {
        shared.settings.sinks[sink].start();
        lanes.spawn(run_lane(Arc::clone(&shared), sink));
    }
    // Each worker beats when it finishes a round and every second while
    // idle; one silent for longer than a round may take is wedged.
    let mut tasks = tokio::task::JoinSet::new();
    let mut heartbeats = Vec::new();
    for worker in 0..workers {
        let shared = Arc::clone(&shared);
        let heartbeat = Arc::new(Heartbeat::new(format!("worker {worker}"), Some(ROUND_ALLOWANCE)));
        heartbeats.push(Arc::clone(&heartbeat));
        tasks.spawn(async move {
            loop {
                heartbeat.beat();
                let Ok(next) = tokio::time::timeout(IDLE_BEAT, shared.next()).await else {
                    continue;
                };
                let Some((name, ticket)) = next else { break };
                handle(&shared, &name, ticket).await;
                shared.done(&name, ticket);
            }
        });
    }
    // Ready once the workers run: src-dir is watched and was scanned.
    let mut supervisor = (!once).then(|| Supervisor::heartbeats(heartbeats));
    // Until a stop signal (or, with --once, until no round is left): a stop
    // signal means the same with or without --once.
    let mut shutdown = Shutdown::listen()?;
    let mut signalled = false;
    let workers_done = async { while tasks.join_next().await.is_some() {} };
    tokio::pin!(workers_done);
    let mut cluster_tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            () = &mut workers_done => break,
            _ = cluster_tick.tick(), if shared.clusters.is_some() && !once => {
                shared.expire_clusters();
            }
            event = intake_rx.recv(), if !once => match event {
                // Directories renamed in are rounds; a file renamed in or
                // written in place is not, and is quarantined.
                Some(DirEvent::Entry(name)) => shared.enqueue(&name),
                Some(DirEvent::Rescan) => shared.scan()?,
                None => bail!("the inotify watch of {} stopped", shared.settings.src_dir.display()),
            },
            signal = shutdown.requested(), if !signalled => {
                tracing::info!("{signal}: stopping, finishing the rounds in flight");
                signalled = true;
                if let Some(supervisor) = supervisor.take() {
                    supervisor.stopping();
                }
                shared.stop();
            }
        }
    }
    shared.close();
    let flushing = async { while lanes.join_next().await.is_some() {} };
    if once && !signalled {
        flushing.await;
    } else if !within_grace(shared.settings.shutdown_timeout, flushing).await {
        tracing::warn!(
            "the sinks did not finish within shutdown-timeout ({:?}); what they had not confirmed stays in src-dir",
            shared.settings.shutdown_timeout
        );
        lanes.abort_all();
    }
    let undelivered = shared.ledger().undelivered();
    let quarantined = shared.quarantined.load(Ordering::SeqCst);
    let stuck = shared.stuck.load(Ordering::SeqCst);
    let (open_windows, cluster_holds) = shared
        .clusters
        .as_ref()
        .map_or((0, 0), |clusters| (clusters.open_windows(), clusters.holding()));
    tracing::info!(
        undelivered,
        quarantined,
        stuck,
        open_windows,
        cluster_holds,
        "process stopped"
    );
    Ok(
        if once && !signalled && (undelivered > 0 || quarantined > 0 || stuck > 0) {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        },
    )
}

/// Processes one round: read, aggregate, deliver in turn to the sinks that
/// have not confirmed it, delete once all have (or quarantine).
async fn handle(shared: &Arc<Shared>, name: &str, ticket: u64) {
    let settings = &shared.settings;
    let path = settings.src_dir.join(name);
    let Ok(metadata) = std::fs::symlink_metadata(&path) else {
        shared.forget(name); // gone
        return;
    };
    if !metadata.is_dir() {
        let what = if metadata.is_symlink() {
            "a symbolic link (not followed)"
        } else {
            "a file"
        };
        quarantine(shared, name, &format!("not a round directory but {what}"));
        return;
    }
    let Some(timestamp) = round_epoch(name) else {
        quarantine(
            shared,
            name,
            "the name is not a round (<epoch> or <epoch>.<n>), so it has no timestamp",
        );
        return;
    };
    let started = Instant::now();
    let worker = Arc::clone(shared);
    let read_path = path.clone();
    let round_name = name.to_owned();
    let computed = tokio::task::spawn_blocking(move || {
        if worker.settings.takes_metrics() {
            aggregated(&worker, &read_path, &round_name, timestamp)
        } else {
            unaggregated(&read_path, timestamp)
        }
    })
    .await;
    let (mut batch, problems) = match computed {
        Ok(Ok((batch, problems, outcome))) => {
            shared.clusters_did(outcome);
            (batch, problems)
        }
        Ok(Err(reason)) => {
            quarantine(shared, name, &reason);
            return;
        }
        Err(error) => {
            // A round that crashes the aggregation would crash it again: no retry loop.
            quarantine(shared, name, &format!("the aggregation failed on it: {error}"));
            return;
        }
    };
    for problem in &problems {
        tracing::warn!("round {name}: {problem}");
    }
    let lanes = shared.ledger().lane_metrics();
    for (sink, target) in settings.sinks.iter().enumerate() {
        let label = metric_label(target.name());
        let (queued, deferred) = lanes.get(sink).copied().unwrap_or_default();
        let lane = [("QueuedLines", queued as f64), ("LinesDeferred", deferred as f64)];
        for (metric, value) in target.self_metrics().into_iter().chain(lane) {
            batch.pipeline(&format!("{label}{metric}"), value);
        }
    }
    // This round's own wall-clock time (haproxystats wrote it into the next one).
    batch.pipeline("TotalWallClockTime", seconds(started));
    let lines = batch.len();
    let outgoing = Arc::new(Outgoing {
        snapshot: Arc::new(Snapshot {
            round: name.to_owned(),
            batch,
            dir: path,
        }),
        lines,
        started,
        problems: problems.len(),
    });
    shared.wait_turn(ticket).await;
    shared.dispatch(&outgoing);
}

/// What reading a round gave: its metrics, the problems met, and what the
/// clusters did with it.
type Computed = (Batch, Vec<String>, Outcome);

/// Reads and aggregates the round `name` in `dir`, and gives it to the
/// clusters it is a member of; `Err` when nothing in it could be used.
fn aggregated(shared: &Shared, dir: &Path, name: &str, timestamp: u64) -> Result<Computed, String> {
    let settings = &shared.settings;
    let round = read_round(dir)?;
    let mut problems = round.problems;
    let options = settings.snapshot_options(&mut problems);
    let mut batch = Batch::new(timestamp);
    if let Some(host) = round.host {
        batch.set_host(host);
    }
    let mut report = aggregate(&round.infos, &round.stats, &options, &mut batch);
    problems.append(&mut report.problems);
    if round.infos.is_empty() && report.stat_files_used == 0 {
        return Err(problems.join("; "));
    }
    if let Some(failed) = &round.failed_sockets {
        if !failed.is_empty() {
            problems.push(format!("partial round: pull could not read {}", failed.join(", ")));
        }
        batch.pipeline("FailedSockets", failed.len() as f64);
    }
    let mut outcome = Outcome::default();
    if let (Some(clusters), Some(host)) = (&shared.clusters, batch.host().map(str::to_owned)) {
        if round.members.is_empty() {
            outcome = clusters.add(&host, name, timestamp, dir);
        } else {
            batch.pipeline("ClusterHosts", round.members.len() as f64);
            batch.pipeline("ClusterHostsMissing", round.missing.len() as f64);
            if let Some(late) = clusters.late(&host) {
                batch.pipeline("ClusterLateRounds", late as f64);
            }
            if !round.missing.is_empty() {
                problems.push(format!(
                    "cluster round without {}, which had not sent within grace",
                    round.missing.join(", ")
                ));
            }
        }
    }
    Ok((batch, problems, outcome))
}

/// For sinks that take no metrics: only the round's host, from its
/// manifest; `Err` when it has no `*_info` or `*_stat` file to ship.
fn unaggregated(dir: &Path, timestamp: u64) -> Result<Computed, String> {
    let (host, problems) = read_round_host(dir)?;
    let mut batch = Batch::new(timestamp);
    if let Some(host) = host {
        batch.set_host(host);
    }
    Ok((batch, problems, Outcome::default()))
}

/// A sink's name as self-metrics spell it: `local-store` -> `LocalStore`.
fn metric_label(name: &str) -> String {
    name.split('-')
        .map(|word| {
            let mut chars = word.chars();
            chars
                .next()
                .map(|first| first.to_uppercase().chain(chars).collect::<String>())
                .unwrap_or_default()
        })
        .collect()
}

/// Moves an unreadable round beside `src-dir`, with the reason in a file.
fn quarantine(shared: &Shared, name: &str, reason: &str) {
    shared.forget(name);
    let settings = &shared.settings;
    let moved = (|| -> std::io::Result<PathBuf> {
        std::fs::create_dir_all(&settings.quarantine_dir)?;
        let mut target = settings.quarantine_dir.join(name);
        let mut sequence = 1;
        while target.exists() {
            target = settings.quarantine_dir.join(format!("{name}.{sequence}"));
            sequence += 1;
        }
        std::fs::rename(settings.src_dir.join(name), &target)?;
        let reason_file = if std::fs::symlink_metadata(&target)?.is_dir() {
            target.join("quarantine-reason.txt")
        } else {
            spool::beside(&target, "quarantine-reason.txt")
        };
        std::fs::write(reason_file, format!("{reason}\n"))?;
        Ok(target)
    })();
    match moved {
        Ok(target) => {
            shared.finished(name);
            let count = shared.quarantined.fetch_add(1, Ordering::SeqCst) + 1;
            tracing::error!(
                "round {name} quarantined in {} ({count} so far): {reason}",
                target.display()
            );
        }
        Err(error) => {
            shared.stuck.fetch_add(1, Ordering::SeqCst);
            tracing::error!(
                "round {name} cannot be read ({reason}) nor moved to {}: {error}; it stays in src-dir",
                settings.quarantine_dir.display()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The unit under dist/ lets process write where its defaults are.
    #[test]
    fn the_systemd_unit_allows_the_default_spool_and_local_store() {
        let unit = include_str!("../../../../../dist/systemd/haproxide-process.service");
        let config = Config::builtin();
        let src_dir = config.get(&SECTION, &SRC_DIR).unwrap();
        let local_store = config.get(&local_store::SECTION, &local_store::DIR).unwrap();
        let quarantine = spool::beside(&src_dir, "quarantine");
        let record = spool::last_delivered_file(&src_dir);
        crate::runtime::assert_unit_writes(unit, [quarantine, record, local_store, src_dir]);
    }
}
