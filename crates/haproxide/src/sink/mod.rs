//! Destinations of `process`: one small trait, one file per destination.
//!
//! A sink receives one snapshot's metrics (already rendered as Graphite
//! plaintext lines, which every current destination stores or forwards) and
//! returns once they are safely handed over. `process` deletes a snapshot's
//! directory only after every enabled sink returned `Ok`, so a failing sink
//! keeps the directory in the spool for a retry.

pub mod local_store;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// A boxed future a sink returns.
pub type Delivery<'a> = Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send + 'a>>;

/// One snapshot's output.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// The round's directory name (`1700000000` or `1700000000.1`).
    pub round: String,
    /// Its timestamp.
    pub timestamp: u64,
    /// `<prefix>.<path> <value> <timestamp>\n` lines, in chunks to be written in order.
    pub lines: Vec<String>,
    /// Number of lines.
    pub count: usize,
}

/// A destination of snapshots.
pub trait Sink: Send + Sync {
    /// Its name in logs (`local-store`, `graphite`).
    fn name(&self) -> &'static str;

    /// Hands `snapshot` over; `Ok` only once it is safe.
    fn deliver(&self, snapshot: Arc<Snapshot>) -> Delivery<'_>;
}
