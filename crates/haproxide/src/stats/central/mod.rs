//! Central processing: `process` with `[process] source = kafka` consumes
//! the rounds load balancers ship with `[kafka-rounds]`, as a member of
//! the consumer group `[kafka-rounds] group`, so that any number of
//! instances share a fleet's rounds (Kafka spreads the partitions; a host's
//! rounds stay in order on one of them).
//!
//! A round's parts are put together ([`assembly`]), unpacked and checked
//! ([`crate::stats::spool::archive`]) and written into `src-dir` as a round
//! of this instance's own spool, where the ordinary pipeline aggregates it
//! as if it were local: its manifest names its load balancer, so its
//! metrics carry that host's name. A round's offsets are committed only
//! when the pipeline is finished with it (every sink confirmed it, or it
//! was quarantined): delivery is at least once, and a crash or a rebalance
//! in the middle costs duplicates, never a gap. The rounds in `src-dir`
//! are therefore this instance's work in progress, not a store: they are
//! removed at start, since Kafka hands them out again.
//!
//! Consuming pauses while `rounds-waiting` rounds wait for the sinks (a
//! sink that is down holds rounds in Kafka, not in memory). A round whose
//! parts do not all come within `part-timeout` is given up (its sender,
//! not having had every part confirmed, sends it again whole); a round
//! sent twice whole is processed once when both sends reach the same
//! instance; a message that is no part, or a round that does not unpack,
//! is refused. Each is counted and logged.

pub mod assembly;

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::Path;
use std::process::ExitCode;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{ClientConfig, ClientContext, Offset, TopicPartitionList};
use tokio::sync::{mpsc, oneshot};

use crate::config::Config;
use crate::stats::cluster::{self, Finished};
use crate::stats::pipeline;
use crate::stats::sinks::kafka_rounds::{
    self, GROUP, MAX_ROUND_BYTES, PART_TIMEOUT, ROUNDS_WAITING, TOPIC, client_problems,
};
use crate::stats::spool::archive::unpack_round;
use crate::stats::spool::{self, Spool};
use assembly::{Added, Assembled, Assembler, PartHeader, Position};

/// `[kafka-rounds]`, as the consumer uses it.
pub struct CentralSettings {
    client: ClientConfig,
    topic: String,
    part_timeout: Duration,
    max_round_bytes: u64,
    rounds_waiting: usize,
}

impl CentralSettings {
    /// Reads `[kafka-rounds]`; the error names what is missing or refused.
    pub fn from_config(config: &Config) -> anyhow::Result<CentralSettings> {
        if let Some(problem) = client_problems(config).into_iter().next() {
            return Err(problem.into());
        }
        let group = config.get(&kafka_rounds::SECTION, &GROUP)?;
        let mut client = kafka_rounds::client_config(
            config,
            &[
                ("group.id", group.as_str()),
                ("auto.offset.reset", "earliest"),
                ("enable.partition.eof", "false"),
            ],
        )?;
        // Offsets are this module's to commit, never librdkafka's own.
        client
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false");
        Ok(CentralSettings {
            client,
            topic: config.get(&kafka_rounds::SECTION, &TOPIC)?,
            part_timeout: config.get(&kafka_rounds::SECTION, &PART_TIMEOUT)?,
            max_round_bytes: config.get(&kafka_rounds::SECTION, &MAX_ROUND_BYTES)?,
            rounds_waiting: config.get(&kafka_rounds::SECTION, &ROUNDS_WAITING)?,
        })
    }
}

/// Runs `process` on rounds from Kafka until a stop signal: the pipeline
/// as on a load balancer, fed by the consumer instead of `pull`.
pub async fn run(settings: pipeline::Settings, central: CentralSettings) -> anyhow::Result<ExitCode> {
    let src_dir = settings.src_dir().to_owned();
    remove_uncommitted(&src_dir)?;
    // Kafka hands out again every member round of a cluster window not delivered.
    cluster::clear(&src_dir)?;
    // Rounds of many hosts, in any order of their epochs, and cluster rounds:
    // one namer gives every name, never one twice.
    let namer = spool::Namer::open(&src_dir);
    let spool = Arc::new(Mutex::new(
        Spool::open(&src_dir, &spool::beside(&src_dir, "assembling"))?.named_by(Arc::clone(&namer)),
    ));
    let (finished_tx, finished_rx) = mpsc::unbounded_channel();
    let state = Arc::new(Mutex::new(State::default()));
    let consumer: StreamConsumer<Rebalancing> = central
        .client
        .create_with_context(Rebalancing {
            state: Arc::clone(&state),
            topic: central.topic.clone(),
        })
        .context("cannot create the Kafka consumer")?;
    consumer
        .subscribe(&[&central.topic])
        .with_context(|| format!("cannot subscribe to {}", central.topic))?;
    tracing::info!(topic = %central.topic, "consuming rounds from Kafka");
    let (stop_tx, stop_rx) = oneshot::channel();
    let consuming = tokio::spawn(consume(consumer, central, spool, state, finished_rx, stop_rx));
    let outcome = pipeline::run(settings.report_finished(finished_tx).named_by(namer), false).await;
    let _ = stop_tx.send(());
    match tokio::time::timeout(Duration::from_secs(10), consuming).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::error!("the Kafka consumer failed: {error}"),
        Err(_) => tracing::warn!("the Kafka consumer did not stop within 10 s"),
    }
    outcome
}

/// Removes the rounds a previous run put together and left in `src-dir`:
/// none of their offsets was committed, so Kafka hands them out again.
fn remove_uncommitted(src_dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(src_dir).with_context(|| format!("cannot create src-dir {}", src_dir.display()))?;
    let mut removed = 0;
    for entry in std::fs::read_dir(src_dir).with_context(|| format!("cannot list {}", src_dir.display()))? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let is_round = spool::round_epoch(name.trim_start_matches(pipeline::REMOVING)).is_some();
        if is_round && entry.file_type()?.is_dir() {
            std::fs::remove_dir_all(entry.path())
                .with_context(|| format!("cannot remove {}", entry.path().display()))?;
            removed += 1;
        }
    }
    if removed > 0 {
        tracing::info!(
            "removed {removed} round(s) an earlier run put together in {} but had not delivered: Kafka hands them out again",
            src_dir.display()
        );
    }
    Ok(())
}

/// How many finished rounds are remembered, to process a round sent twice once.
const REMEMBERED: usize = 4096;

/// What the consumer loop and the rebalance callbacks share.
#[derive(Default)]
struct State {
    assembler: Assembler,
    /// Rounds in `src-dir` by spool name: `(host, round)` and their messages.
    spooled: HashMap<String, ((String, String), Vec<Position>)>,
    /// Spooled rounds delivered that a cluster window still holds: they
    /// wait for no sink, so they do not count against `rounds-waiting`.
    held: HashSet<String>,
    /// The same, spool name by `(host, round)`.
    spool_names: HashMap<(String, String), String>,
    /// The last rounds finished with, oldest first.
    remembered: VecDeque<(String, String)>,
    remembered_set: HashSet<(String, String)>,
    counts: Counts,
}

/// What the consumer counts; logged at the end.
#[derive(Debug, Default)]
struct Counts {
    rounds: u64,
    duplicates: u64,
    refused: u64,
    given_up: u64,
}

impl State {
    /// What the pipeline finished with.
    fn finished(&mut self, finished: Finished) {
        match finished {
            Finished::Held(name) => {
                if self.spooled.contains_key(&name) {
                    self.held.insert(name);
                }
            }
            Finished::Released(name) => self.released(&name),
        }
    }

    /// Rounds waiting for the sinks.
    fn waiting(&self) -> usize {
        self.spooled.len() - self.held.len()
    }

    /// The round put in `src-dir` as `name` is finished with.
    fn released(&mut self, name: &str) {
        self.held.remove(name);
        let Some((key, positions)) = self.spooled.remove(name) else {
            return;
        };
        self.spool_names.remove(&key);
        self.assembler.release(&positions);
        if self.remembered_set.insert(key.clone()) {
            self.remembered.push_back(key);
        }
        while self.remembered.len() > REMEMBERED {
            if let Some(oldest) = self.remembered.pop_front() {
                self.remembered_set.remove(&oldest);
            }
        }
    }

    /// A complete round already in `src-dir` or finished with: its messages
    /// wait for that one, or are finished with now. `false` when it is new.
    fn absorb_duplicate(&mut self, round: &Assembled) -> bool {
        let key = (round.host.clone(), round.round.clone());
        if let Some(name) = self.spool_names.get(&key) {
            if let Some((_, positions)) = self.spooled.get_mut(name) {
                positions.extend_from_slice(&round.positions);
            }
        } else if self.remembered_set.contains(&key) {
            self.assembler.release(&round.positions);
        } else {
            return false;
        }
        self.counts.duplicates += 1;
        true
    }

    /// Forgets the revoked partitions' messages held by rounds in `src-dir`:
    /// they are no longer this instance's to commit.
    fn revoke(&mut self, partitions: &[i32]) -> Vec<Position> {
        for (_, positions) in self.spooled.values_mut() {
            positions.retain(|(partition, _)| !partitions.contains(partition));
        }
        self.assembler.revoke(partitions)
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    crate::runtime::unpoisoned(state.lock(), "the central consumer's state")
}

/// The consumer's context: at a rebalance, commits where the revoked
/// partitions stand and forgets them.
struct Rebalancing {
    state: Arc<Mutex<State>>,
    topic: String,
}

impl ClientContext for Rebalancing {}

impl ConsumerContext for Rebalancing {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(list) = rebalance {
            let partitions: Vec<i32> = list.elements().iter().map(|element| element.partition()).collect();
            let points = lock(&self.state).revoke(&partitions);
            tracing::info!("partitions {partitions:?} of {} revoked", self.topic);
            if !points.is_empty() {
                commit(consumer, &self.topic, &points, CommitMode::Sync);
            }
        }
    }

    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(list) => {
                let partitions: Vec<i32> = list.elements().iter().map(|element| element.partition()).collect();
                tracing::info!("partitions {partitions:?} of {} assigned", self.topic);
            }
            Rebalance::Error(error) => tracing::error!("rebalance failed: {error}"),
            Rebalance::Revoke(_) => {}
        }
    }
}

/// Commits `points` (partition, next offset to read) of `topic`.
fn commit<C: Consumer<X>, X: ConsumerContext>(consumer: &C, topic: &str, points: &[Position], mode: CommitMode) {
    let mut list = TopicPartitionList::new();
    for (partition, offset) in points {
        if let Err(error) = list.add_partition_offset(topic, *partition, Offset::Offset(*offset)) {
            tracing::error!("cannot commit partition {partition} at {offset}: {error}");
        }
    }
    match consumer.commit(&list, mode) {
        Ok(()) => tracing::debug!("committed {points:?}"),
        Err(error) => tracing::warn!("cannot commit {points:?}: {error}"),
    }
}

/// The consumer loop: messages in, rounds out into `src-dir`, offsets
/// committed as the pipeline finishes rounds; until `stop`.
async fn consume(
    consumer: StreamConsumer<Rebalancing>,
    settings: CentralSettings,
    spool: Arc<Mutex<Spool>>,
    state: Arc<Mutex<State>>,
    mut finished: mpsc::UnboundedReceiver<Finished>,
    mut stop: oneshot::Receiver<()>,
) {
    let topic = settings.topic.as_str();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut paused = false;
    loop {
        tokio::select! {
            biased;
            _ = &mut stop => break,
            Some(event) = finished.recv() => {
                lock(&state).finished(event);
                // More finished at once: one commit for them all.
                while let Ok(event) = finished.try_recv() {
                    lock(&state).finished(event);
                }
            }
            received = consumer.recv() => match received {
                Ok(message) => {
                    let position = (message.partition(), message.offset());
                    let header = PartHeader::read(|name| {
                        message
                            .headers()
                            .and_then(|headers| headers.iter().find(|header| header.key == name))
                            .and_then(|header| header.value)
                    });
                    let added = lock(&state).assembler.add(position, header, message.payload().unwrap_or_default(), Instant::now());
                    match added {
                        Ok(Added::Waiting) => {}
                        Ok(Added::Complete(round)) => {
                            put_in_spool(&spool, round, &state, settings.max_round_bytes).await;
                        }
                        Err(reason) => {
                            lock(&state).counts.refused += 1;
                            tracing::error!("message {position:?} of {topic} is not a part of a round: {reason}; skipped");
                        }
                    }
                }
                Err(error) => {
                    tracing::warn!("consuming {topic}: {error}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            },
            _ = tick.tick() => {
                let given_up = {
                    let mut state = lock(&state);
                    let given_up = state.assembler.expire(Instant::now(), settings.part_timeout);
                    state.counts.given_up += given_up.len() as u64;
                    given_up
                };
                for round in given_up {
                    tracing::error!(
                        "round {}/{}: {} of {} parts within part-timeout ({:?}); given up, the load balancer sends it again",
                        round.host, round.round, round.received, round.parts, settings.part_timeout
                    );
                }
            }
        }
        let (points, waiting) = {
            let mut state = lock(&state);
            (state.assembler.commit_points(), state.waiting())
        };
        if !points.is_empty() {
            commit(&consumer, topic, &points, CommitMode::Async);
        }
        if waiting >= settings.rounds_waiting && !paused {
            paused = set_paused(&consumer, true);
        } else if waiting < settings.rounds_waiting && paused {
            paused = !set_paused(&consumer, false);
        }
    }
    // Rounds finished while stopping, then a last commit.
    while let Ok(event) = finished.try_recv() {
        lock(&state).finished(event);
    }
    let points = lock(&state).assembler.commit_points();
    if !points.is_empty() {
        commit(&consumer, topic, &points, CommitMode::Sync);
    }
    let counts = std::mem::take(&mut lock(&state).counts);
    tracing::info!(
        rounds = counts.rounds,
        duplicates = counts.duplicates,
        refused = counts.refused,
        given_up = counts.given_up,
        "the Kafka consumer stopped"
    );
    // Leaving the group (librdkafka's close) lets the others take over at once.
    let _ = tokio::task::spawn_blocking(move || drop(consumer)).await;
}

/// Pauses or resumes fetching on every partition assigned; whether it did.
fn set_paused(consumer: &StreamConsumer<Rebalancing>, pause: bool) -> bool {
    let outcome = consumer.assignment().and_then(|assignment| {
        if pause {
            consumer.pause(&assignment)
        } else {
            consumer.resume(&assignment)
        }
    });
    match outcome {
        Ok(()) => {
            tracing::debug!(pause, "consuming paused or resumed for the sinks");
            true
        }
        Err(error) => {
            tracing::warn!("cannot pause or resume consuming: {error}");
            false
        }
    }
}

/// Unpacks a complete round into the spool, unless it is a duplicate or
/// refused.
async fn put_in_spool(spool: &Arc<Mutex<Spool>>, round: Assembled, state: &Arc<Mutex<State>>, limit: u64) {
    {
        let mut state = lock(state);
        for given_up in state.assembler.supersede(&round.host, &round.round) {
            state.counts.given_up += 1;
            tracing::warn!(
                "round {}/{}: an earlier send ({} of {} parts) is superseded by a whole one",
                given_up.host,
                given_up.round,
                given_up.received,
                given_up.parts
            );
        }
        if state.absorb_duplicate(&round) {
            tracing::info!("round {}/{}: already processed here, skipped", round.host, round.round);
            return;
        }
    }
    let Assembled {
        host,
        round: name,
        bytes,
        parts,
        positions,
    } = round;
    let writer = Arc::clone(spool);
    let (writer_host, writer_name) = (host.clone(), name.clone());
    let written = tokio::task::spawn_blocking(move || {
        let mut spool = crate::runtime::unpoisoned(writer.lock(), "the central spool");
        write_round(&mut spool, &writer_host, &writer_name, &bytes, limit)
    })
    .await
    .unwrap_or_else(|error| Err(format!("the round writer failed: {error}")));
    let mut state = lock(state);
    match written {
        Ok(spool_name) => {
            state.counts.rounds += 1;
            tracing::info!(
                "round {host}/{name}: {parts} part(s) from partition {} put together as {spool_name}",
                positions.first().map_or(-1, |(partition, _)| *partition)
            );
            state
                .spool_names
                .insert((host.clone(), name.clone()), spool_name.clone());
            state.spooled.insert(spool_name, ((host, name), positions));
        }
        Err(reason) => {
            state.counts.refused += 1;
            state.assembler.release(&positions);
            tracing::error!("round {host}/{name}: refused: {reason}");
        }
    }
}

/// Unpacks a round and delivers it into the spool; its spool name. Its
/// manifest names `host`, the host its messages came from.
fn write_round(spool: &mut Spool, host: &str, round: &str, bytes: &[u8], limit: u64) -> Result<String, String> {
    let epoch = spool::round_epoch(round).ok_or(format!("{round:?} is not a round name"))?;
    let files = unpack_round(bytes, limit)?;
    let staged = spool.begin_round(epoch).map_err(|error| format!("{error:#}"))?;
    let write = |name: &str, data: &[u8]| {
        let path = staged.path().join(name);
        std::fs::write(&path, data).map_err(|error| format!("cannot write {}: {error}", path.display()))
    };
    let mut manifest = spool::manifest::Manifest {
        round: round.to_owned(),
        ..Default::default()
    };
    for (name, data) in &files {
        if name == spool::MANIFEST_FILE {
            match spool::manifest::Manifest::parse(data) {
                Ok(shipped) => manifest = shipped,
                Err(error) => tracing::warn!("round {host}/{round}: its manifest is not one ({error}); replaced"),
            }
        } else {
            write(name, data)?;
        }
    }
    manifest.host = host.to_owned();
    write(spool::MANIFEST_FILE, manifest.to_text().as_bytes())?;
    let delivered = spool.deliver(staged).map_err(|error| format!("{error:#}"))?;
    Ok(delivered
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default())
}

/// `--once` reads a spool that `pull` fills; rounds from Kafka never end.
pub fn refuse_once() -> anyhow::Result<ExitCode> {
    bail!("--once processes the rounds in src-dir; with [process] source = kafka, process runs until a stop signal")
}
