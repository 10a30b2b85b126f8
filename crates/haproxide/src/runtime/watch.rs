//! Watching a directory with inotify, on a thread of its own, for entries
//! written (`IN_CLOSE_WRITE`) or renamed into it (`IN_MOVED_TO`): the two
//! moments a file is complete. `process` watches its spool with it, the file
//! discovery source of `backends` the directory of its file.

use std::path::Path;

use anyhow::Context;
use inotify::{EventMask, Inotify, WatchMask};
use tokio::sync::mpsc;

/// What the watching thread reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DirEvent {
    /// An entry of the directory, by name, was written or renamed in.
    Entry(String),
    /// Events were lost (the kernel queue overflowed): look at everything again.
    Rescan,
}

/// Sends `dir`'s events to `events` until the receiver is dropped.
pub fn watch_dir(dir: &Path, events: mpsc::UnboundedSender<DirEvent>) -> anyhow::Result<()> {
    let mut inotify = Inotify::init().context("cannot start inotify")?;
    inotify
        .watches()
        .add(dir, WatchMask::MOVED_TO | WatchMask::CLOSE_WRITE)
        .with_context(|| format!("cannot watch {}", dir.display()))?;
    std::thread::Builder::new().name("inotify".into()).spawn(move || {
        let mut buffer = [0u8; 16 * 1024];
        loop {
            let Ok(batch) = inotify.read_events_blocking(&mut buffer) else {
                return;
            };
            for event in batch {
                let report = if event.mask.contains(EventMask::Q_OVERFLOW) {
                    DirEvent::Rescan
                } else {
                    match event.name.and_then(|name| name.to_str()) {
                        Some(name) => DirEvent::Entry(name.to_owned()),
                        None => continue,
                    }
                };
                if events.send(report).is_err() {
                    return;
                }
            }
        }
    })?;
    Ok(())
}
