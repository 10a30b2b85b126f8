//! Destinations of `process`: one small trait, one file per destination.
//!
//! A sink receives one round's typed metrics ([`Batch`]), encodes them its
//! own way (off the async runtime: encoding is CPU work), and returns once
//! they are safely handed over. `graphite`, `local-store` and `kafka`
//! (with `format = graphite`) write Graphite's [`plaintext`] lines;
//! `kafka-rounds` takes no metrics but ships the round's files as they are;
//! `prometheus` keeps the latest round for Prometheus to scrape. `process` deletes a snapshot's
//! directory only after every enabled sink returned `Ok`, so a failing sink
//! keeps the directory in the spool for a retry; [`Sink::recovered`] says when
//! to retry. Each sink gets the snapshots in round order, one at a time, from a
//! queue of its own: one sink being slow or down does not hold the others back.

pub mod graphite;
pub mod kafka;
pub mod kafka_rounds;
pub mod local_store;
pub mod plaintext;
pub mod prometheus;

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::stats::metrics::Batch;

/// A boxed future a sink returns.
pub type Delivery<'a> = Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send + 'a>>;

/// A boxed future that resolves when a sink may be tried again.
pub type Waiting<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// How long a sink that cannot tell when it recovered is left alone after a failure.
pub const RETRY_DELAY: Duration = Duration::from_secs(5);

/// Lines held in memory for a sink that sets no bound of its own.
pub const QUEUE_SIZE: usize = 1_000_000;

/// One round's metrics on their way to the sinks.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// The round's directory name (`1700000000` or `1700000000.1`).
    pub round: String,
    /// Its metrics: none when no sink takes them.
    pub batch: Batch,
    /// The round's directory in `src-dir`, there until every sink confirmed it.
    pub dir: PathBuf,
}

/// A destination of snapshots.
pub trait Sink: Send + Sync {
    /// Its name in logs (`local-store`, `graphite`).
    fn name(&self) -> &'static str;

    /// Starts what it runs in the background (a connection, say); called
    /// once, within the runtime, before the first delivery. Building a sink
    /// starts nothing.
    fn start(&self) {}

    /// Whether it takes a round's metrics. One that ships the round's files
    /// as they are (`kafka-rounds`) does not; when no sink does, `process`
    /// aggregates nothing.
    fn takes_metrics(&self) -> bool {
        true
    }

    /// Whether it takes the extended metrics too: the fields HAProxy's own
    /// Prometheus exporter has beyond haproxystats' lists, and the states
    /// ([`crate::stats::metrics::Batch::extended_sections`]).
    fn takes_extended_metrics(&self) -> bool {
        false
    }

    /// Whether its reader pulls from it (`prometheus`), so that it serves
    /// only while `process` runs: not after `--once`.
    fn pulled(&self) -> bool {
        false
    }

    /// Hands `snapshot` over; `Ok` only once it is safe.
    fn deliver(&self, snapshot: Arc<Snapshot>) -> Delivery<'_>;

    /// Resolves when, after a failed delivery, the sink may be tried again;
    /// by default after [`RETRY_DELAY`].
    fn recovered(&self) -> Waiting<'_> {
        Box::pin(tokio::time::sleep(RETRY_DELAY))
    }

    /// How many lines of rounds waiting for it may be held in memory; rounds
    /// beyond that wait in the spool until there is room.
    fn queue_size(&self) -> usize {
        QUEUE_SIZE
    }

    /// Counters of its own; `process` reports them as
    /// `haproxystats.<Name><counter>` (`GraphiteLinesSent`).
    fn self_metrics(&self) -> Vec<(&'static str, f64)> {
        Vec::new()
    }
}
