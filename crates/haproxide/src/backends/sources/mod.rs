//! Where backends' servers come from. Every source is a task of its own
//! behind one trait, [`Source`]: it publishes the complete list of targets
//! it knows each time that list changes, into a `watch` channel the
//! backend's controller reads the latest value of. A source that fails keeps
//! its last list published (and says why, once); it never publishes an
//! empty list for an error.
//!
//! - [`consul`]: Consul's health endpoint, with blocking queries.
//! - [`aws`]: AWS Auto Scaling groups, polled.
//! - [`file`]: a file of `address:port [weight]` lines or JSON, watched with inotify.
//!
//! A new source (DNS, Kubernetes endpoints) is a module here implementing
//! [`Source`], with its keys in the `[backend:NAME]` declaration.

pub mod aws;
pub mod consul;
pub mod file;

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::time::Duration;

use tokio::sync::watch;

use crate::runtime::{ProblemChange, note_problem};

/// A server a source names; the port may come from the backend's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Found {
    /// Its address.
    pub address: IpAddr,
    /// Its port, when the source knows it.
    pub port: Option<u16>,
    /// Its weight, when the source gives one.
    pub weight: Option<u32>,
}

/// The latest complete list a source knows (`None` until its first answer).
pub type Published = watch::Sender<Option<Vec<Found>>>;

/// A discovery source.
pub trait Source: Send {
    /// What it asks, for the log (`consul 127.0.0.1:8500 service web`).
    fn describe(&self) -> String;

    /// Runs until the receiving side is gone, publishing each new list.
    fn run(self: Box<Self>, publish: Published) -> Pin<Box<dyn Future<Output = ()> + Send>>;
}

/// Publishes `found` (sorted, without duplicates) if it differs from what
/// was published; returns whether it did.
pub fn publish_if_changed(publish: &Published, mut found: Vec<Found>) -> bool {
    found.sort_unstable();
    found.dedup();
    publish.send_if_modified(|current| {
        if current.as_ref() == Some(&found) {
            return false;
        }
        *current = Some(found);
        true
    })
}

/// The first pause after a failed query; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// The longest pause after failures.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// How a querying source is doing: a problem is logged when it begins or
/// changes and when it ends, and failures back off.
#[derive(Debug)]
pub struct Health {
    problem: Option<String>,
    backoff: Duration,
}

impl Default for Health {
    fn default() -> Health {
        Health {
            problem: None,
            backoff: FIRST_BACKOFF,
        }
    }
}

impl Health {
    /// A query of `source` (its description) answered.
    pub fn answered(&mut self, source: &str) {
        if note_problem(&mut self.problem, None) == ProblemChange::Ended {
            tracing::info!("{source}: answers again");
        }
        self.backoff = FIRST_BACKOFF;
    }

    /// A query of `source` failed with `error`; returns how long to wait.
    pub fn failed(&mut self, source: &str, error: String) -> Duration {
        let pause = self.backoff;
        if note_problem(&mut self.problem, Some(error.clone())) == ProblemChange::Began {
            tracing::error!(
                "{source}: {error}; keeping the last list, trying again in {} s and backing off",
                pause.as_secs()
            );
        }
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        pause
    }
}

/// An HTTP error with its causes (`connection refused` is in a cause).
pub fn describe_http_error(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
