//! A single-instance lock: an exclusive `flock` on a file, taken without
//! waiting, that holds the holder's PID for the message a second instance
//! gets. The lock goes with the process (closing the file releases it), so
//! a crashed holder never leaves a stale lock behind.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use anyhow::{Context, bail};
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

/// The held lock; dropping it releases it.
#[derive(Debug)]
pub struct Held {
    _file: Flock<File>,
}

/// Takes the lock on `path` (created when missing, with its directory), or
/// says who holds it.
pub fn exclusive(path: &Path) -> anyhow::Result<Held> {
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the lock file's directory {}", dir.display()))?;
    }
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .with_context(|| format!("cannot open the lock file {}", path.display()))?;
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(mut locked) => {
            let mine = format!("{}\n", std::process::id());
            let written = locked
                .set_len(0)
                .and_then(|()| locked.seek(SeekFrom::Start(0)))
                .and_then(|_| locked.write_all(mine.as_bytes()));
            written.with_context(|| format!("cannot write {}", path.display()))?;
            Ok(Held { _file: locked })
        }
        Err((mut file, Errno::EWOULDBLOCK)) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            bail!("{} is held by PID {}", path.display(), holder.trim())
        }
        Err((_, errno)) => bail!("cannot lock {}: {}", path.display(), errno.desc()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_told_who_holds_it() {
        let dir = tempfile::tempdir().unwrap();
        // Its directory is made when missing.
        let path = dir.path().join("run/backends.lock");
        let held = exclusive(&path).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            format!("{}\n", std::process::id())
        );
        let second = exclusive(&path).unwrap_err().to_string();
        assert_eq!(
            second,
            format!("{} is held by PID {}", path.display(), std::process::id())
        );
        drop(held);
        exclusive(&path).unwrap();
    }
}
