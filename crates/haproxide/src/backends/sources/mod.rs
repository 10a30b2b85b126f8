//! Where backends' servers come from. Every source is a task of its own
//! behind one trait, [`Source`]: it publishes the complete list of targets
//! it knows each time that list changes, into a `watch` channel the
//! backend's controller reads the latest value of. A source that fails keeps
//! its last list published (and says why, once); it never publishes an
//! empty list for an error.
//!
//! - [`consul`]: Consul's health endpoint, with blocking queries.
//! - [`file`]: a file of `address:port [weight]` lines or JSON, watched with inotify.
//!
//! A new source (AWS Auto Scaling, DNS) is a file here implementing [`Source`],
//! with its keys in the `[backend:NAME]` declaration.

pub mod consul;
pub mod file;

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;

use tokio::sync::watch;

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
