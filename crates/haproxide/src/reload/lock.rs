//! The reload lock: an exclusive `flock` on a file beside the master socket
//! or the pid file, so that two reloads of one HAProxy never overlap, and
//! the record in it of who holds it and how the last reload went, which
//! `min-interval` coalescing reads.
//!
//! The record is JSON, rewritten in place (the lock belongs to the file's
//! inode, so the file is never replaced). A record that cannot be read is
//! treated as no record: it only ever makes a reload happen that could have
//! been coalesced.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

/// How often a held lock is tried again.
const RETRY: Duration = Duration::from_millis(20);

/// What the lock file says.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The process that holds the lock now, if any.
    pub holder: Option<u32>,
    /// The last reload done under the lock.
    pub last: Option<LastReload>,
}

/// A reload done under the lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastReload {
    /// The `haproxide` process that did it.
    pub pid: u32,
    /// When it began (ms since the epoch); its validation read the files then.
    pub started_ms: u64,
    /// When it ended.
    pub finished_ms: u64,
    /// Whether the new configuration serves.
    pub ok: bool,
}

/// The held lock; dropping it releases it.
pub struct ReloadLock {
    file: Flock<File>,
    path: PathBuf,
    record: Record,
}

/// How the lock was taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acquired {
    /// How long it took.
    pub waited: Duration,
    /// Whether another process held it when it was first tried.
    pub contended: bool,
    /// The holder that was waited for, as its record said (a holder that
    /// had just taken the lock may not have written its PID yet).
    pub waited_for: Option<u32>,
}

/// Milliseconds since the epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
}

impl ReloadLock {
    /// Takes the lock on `path` (created when missing), waiting for as long
    /// as another process holds it.
    pub async fn acquire(path: &Path) -> Result<(ReloadLock, Acquired), String> {
        let started = Instant::now();
        let mut contended = false;
        let mut waited_for = None;
        let mut file = open(path)?;
        loop {
            match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                Ok(locked) => {
                    let mut lock = ReloadLock {
                        file: locked,
                        path: path.to_owned(),
                        record: Record::default(),
                    };
                    lock.record = lock.read();
                    lock.record.holder = Some(std::process::id());
                    lock.write()?;
                    let acquired = Acquired {
                        waited: started.elapsed(),
                        contended,
                        waited_for,
                    };
                    return Ok((lock, acquired));
                }
                Err((unlocked, Errno::EWOULDBLOCK)) => {
                    file = unlocked;
                    contended = true;
                    if waited_for.is_none() {
                        waited_for = read_record(&mut file).holder;
                    }
                    tokio::time::sleep(RETRY).await;
                }
                Err((_, errno)) => return Err(format!("{}: cannot lock: {}", path.display(), errno.desc())),
            }
        }
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The last reload done under the lock, before this one.
    pub fn last(&self) -> Option<&LastReload> {
        self.record.last.as_ref()
    }

    /// Records the reload this holder did; the lock is released on drop.
    pub fn finish(mut self, last: LastReload) -> Result<(), String> {
        self.record = Record {
            holder: None,
            last: Some(last),
        };
        self.write()
    }

    fn read(&mut self) -> Record {
        read_record(&mut self.file)
    }

    fn write(&mut self) -> Result<(), String> {
        let text = serde_json::to_string(&self.record).map_err(|error| error.to_string())?;
        let file: &mut File = &mut self.file;
        let written = file
            .set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)))
            .and_then(|_| file.write_all(text.as_bytes()))
            .and_then(|()| file.write_all(b"\n"));
        written.map_err(|error| format!("{}: cannot write: {error}", self.path.display()))
    }
}

impl Drop for ReloadLock {
    fn drop(&mut self) {
        // An interrupted holder leaves no claim behind; the lock itself is
        // released by closing the file.
        if self.record.holder == Some(std::process::id()) {
            self.record.holder = None;
            let _ = self.write();
        }
    }
}

fn open(path: &Path) -> Result<File, String> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|error| format!("{}: cannot open the reload lock: {error}", path.display()))
}

fn read_record(file: &mut File) -> Record {
    let mut text = String::new();
    if file.seek(SeekFrom::Start(0)).is_err() || file.read_to_string(&mut text).is_err() {
        return Record::default();
    }
    serde_json::from_str(&text).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_second_holder_waits_and_sees_the_first_ones_record() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("haproxy.pid.lock");
        let (first, acquired) = ReloadLock::acquire(&path).await.unwrap();
        assert_eq!((acquired.contended, acquired.waited_for), (false, None));
        assert_eq!(first.last(), None);
        let waiter = tokio::spawn({
            let path = path.clone();
            async move {
                ReloadLock::acquire(&path)
                    .await
                    .map(|(lock, acquired)| (lock.last().cloned(), acquired))
            }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!waiter.is_finished(), "the lock is exclusive");
        let last = LastReload {
            pid: 7,
            started_ms: 1_000,
            finished_ms: 2_000,
            ok: true,
        };
        first.finish(last.clone()).unwrap();
        let (seen, acquired) = waiter.await.unwrap().unwrap();
        assert_eq!(seen, Some(last));
        assert_eq!(
            (acquired.contended, acquired.waited_for),
            (true, Some(std::process::id()))
        );
        assert!(acquired.waited >= Duration::from_millis(100));
    }

    #[tokio::test]
    async fn an_unreadable_record_is_no_record() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lock");
        std::fs::write(&path, "not json\n").unwrap();
        let (lock, _) = ReloadLock::acquire(&path).await.unwrap();
        assert_eq!(lock.last(), None);
    }
}
