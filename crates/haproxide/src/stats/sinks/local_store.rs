//! The `local-store` sink: each round's lines in `<dir>/<round>/stats`,
//! exactly as Graphite would receive them ([`Plaintext`]), written to a
//! temporary file that is fsynced and then renamed, so a reader never sees
//! half a file.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;

use super::plaintext::Plaintext;
use super::{Delivery, Sink, Snapshot};
use crate::config::declare::{self, DefaultValue, Key, Section};
use crate::stats::metrics::Batch;

/// `[local-store] dir`.
pub const DIR: Key<PathBuf> = Key::new(
    "dir",
    declare::PATH,
    DefaultValue::Fallback("${paths:base-dir}/local-store"),
    "where each round's lines go, as `<dir>/<round>/stats`",
);

/// `[local-store]`: the local-store sink, on when the section exists.
pub const SECTION: Section = Section::of(
    "local-store",
    "the local-store sink, on when the section exists",
    &[&DIR],
);

/// Writes rounds under a directory.
#[derive(Debug, Clone)]
pub struct LocalStore {
    dir: PathBuf,
    encoding: Arc<Plaintext>,
}

impl LocalStore {
    /// A store under `dir` (created on first use), writing lines as `encoding` makes them.
    pub fn new(dir: PathBuf, encoding: Arc<Plaintext>) -> LocalStore {
        LocalStore { dir, encoding }
    }
}

impl Sink for LocalStore {
    fn name(&self) -> &'static str {
        "local-store"
    }

    fn deliver(&self, snapshot: Arc<Snapshot>) -> Delivery<'_> {
        let dir = self.dir.join(&snapshot.round);
        let encoding = Arc::clone(&self.encoding);
        Box::pin(async move {
            tokio::task::spawn_blocking(move || write_atomically(&dir, &snapshot.batch, &encoding))
                .await
                .context("local-store writer stopped")?
        })
    }
}

fn write_atomically(dir: &Path, batch: &Batch, encoding: &Plaintext) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let temporary = dir.join(".stats.tmp");
    let target = dir.join("stats");
    let write = || -> std::io::Result<()> {
        let mut file = std::fs::File::create(&temporary)?;
        encoding.write_to(batch, &mut file)?;
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
    async fn writes_the_plaintext_lines_under_the_round_name() {
        use crate::stats::metrics::{Entity, Member};
        let dir = tempfile::tempdir().unwrap();
        let encoding = Arc::new(Plaintext {
            prefix: "lb.haproxy".into(),
            group_namespace: None,
            double_writes: false,
            per_round_host: None,
        });
        let store = LocalStore::new(dir.path().join("local-store"), encoding);
        let mut batch = Batch::new(1_700_000_000);
        batch
            .section(vec!["a".into(), "b".into()])
            .push(Member::ungrouped(Entity::Daemon), [1.0, 2.0]);
        store
            .deliver(Arc::new(Snapshot {
                round: "1700000000.1".into(),
                batch,
                dir: dir.path().join("src/1700000000.1"),
            }))
            .await
            .unwrap();
        let written = std::fs::read_to_string(dir.path().join("local-store/1700000000.1/stats")).unwrap();
        assert_eq!(
            written,
            "lb.haproxy.daemon.a 1 1700000000\nlb.haproxy.daemon.b 2 1700000000\n"
        );
        assert!(!dir.path().join("local-store/1700000000.1/.stats.tmp").exists());
    }
}
