//! The `local-store` sink: each snapshot's lines in `<dir>/<round>/stats`,
//! exactly as Graphite would receive them, written to a temporary file that is
//! fsynced and then renamed, so a reader never sees half a file.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;

use super::{Delivery, Sink, Snapshot};

/// Writes snapshots under a directory.
#[derive(Debug, Clone)]
pub struct LocalStore {
    dir: PathBuf,
}

impl LocalStore {
    /// A store under `dir` (created on first use).
    pub fn new(dir: PathBuf) -> LocalStore {
        LocalStore { dir }
    }
}

impl Sink for LocalStore {
    fn name(&self) -> &'static str {
        "local-store"
    }

    fn deliver(&self, snapshot: Arc<Snapshot>) -> Delivery<'_> {
        let dir = self.dir.join(&snapshot.round);
        Box::pin(async move {
            tokio::task::spawn_blocking(move || write_atomically(&dir, &snapshot.lines))
                .await
                .context("local-store writer stopped")?
        })
    }
}

fn write_atomically(dir: &Path, chunks: &[String]) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let temporary = dir.join(".stats.tmp");
    let target = dir.join("stats");
    let write = || -> std::io::Result<()> {
        use std::io::Write;
        let mut file = std::fs::File::create(&temporary)?;
        for chunk in chunks {
            file.write_all(chunk.as_bytes())?;
        }
        file.sync_all()?;
        std::fs::rename(&temporary, &target)?;
        std::fs::File::open(dir)?.sync_all()
    };
    write().with_context(|| format!("cannot write {}", target.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn writes_stats_under_the_round_name() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path().join("local-store"));
        let snapshot = Snapshot {
            round: "1700000000.1".into(),
            timestamp: 1_700_000_000,
            lines: vec!["a 1 1700000000\n".into(), "b 2 1700000000\n".into()],
            count: 1,
        };
        store.deliver(Arc::new(snapshot)).await.unwrap();
        let written = std::fs::read_to_string(dir.path().join("local-store/1700000000.1/stats")).unwrap();
        assert_eq!(written, "a 1 1700000000\nb 2 1700000000\n");
        assert!(!dir.path().join("local-store/1700000000.1/.stats.tmp").exists());
    }
}
