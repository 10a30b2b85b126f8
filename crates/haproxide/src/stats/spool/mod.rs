//! The spool that `pull` fills and `process` empties: its one owner of round
//! names, file names and the [`manifest`].
//!
//! A round is written into `tmp-dst-dir/<round>/`, every file fsynced, then the
//! directory is renamed into `dst-dir/<round>` (atomic on one filesystem, which
//! is checked at start) and `dst-dir` is fsynced. `<round>` is the epoch second
//! the round started, or `<epoch>.<n>` for further rounds within the same
//! second, so two rounds never share a name, even once `process` consumed
//! the earlier one: the last name delivered is kept in
//! `tmp-dst-dir/.last-round`, written before each delivery. Files are
//! `<name>_info` and `<name>_stat` as haproxystats writes them, plus
//! `manifest.json`, which says which sockets answered and which failed.

pub mod archive;
pub mod manifest;

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

/// The file of a round with a target's `show info` reply.
pub fn info_file(name: &str) -> String {
    format!("{name}{INFO_SUFFIX}")
}

/// The file of a round with a target's `show stat` reply.
pub fn stat_file(name: &str) -> String {
    format!("{name}{STAT_SUFFIX}")
}

const INFO_SUFFIX: &str = "_info";
const STAT_SUFFIX: &str = "_stat";

/// The file of a round that names the targets that failed.
pub const MANIFEST_FILE: &str = "manifest.json";

/// Why a round with nothing to process or ship is refused.
pub const NO_ROUND_FILE: &str = "no *_info or *_stat file";

/// `<parent>/<name of dir>.<suffix>`: a file or directory beside `dir`
/// (`incoming.quarantine`), on the same filesystem as a rule.
pub fn beside(dir: &Path, suffix: &str) -> PathBuf {
    let name = dir
        .file_name()
        .map_or_else(|| "spool".into(), |name| name.to_string_lossy());
    dir.with_file_name(format!("{name}.{suffix}"))
}

/// The file beside `dst-dir` that keeps the name of the last round `pull`
/// delivered (written as it delivers it: its time is the delivery's).
pub fn last_round_file(dst_dir: &Path) -> PathBuf {
    beside(dst_dir, "last-round")
}

/// The file beside `src-dir` that keeps the name of the last round `process`
/// delivered to every sink (written then: its time is the delivery's).
pub fn last_delivered_file(src_dir: &Path) -> PathBuf {
    beside(src_dir, "last-delivered")
}

/// The files of a round directory, by kind, each sorted by target name.
#[derive(Debug, Default)]
pub struct RoundListing {
    /// `(target name, path)` of the `show info` replies.
    pub infos: Vec<(String, PathBuf)>,
    /// `(target name, path)` of the `show stat` replies.
    pub stats: Vec<(String, PathBuf)>,
    /// `manifest.json`, when there is one.
    pub manifest: Option<PathBuf>,
    /// Entries named like round files that are not regular files (a
    /// symbolic link is never followed out of a round), with what they are.
    pub skipped: Vec<(String, &'static str)>,
}

impl RoundListing {
    /// Whether it has a `*_info` or `*_stat` file: something to process or ship.
    pub fn has_round_files(&self) -> bool {
        !self.infos.is_empty() || !self.stats.is_empty()
    }
}

/// Lists the files of the round directory `dir` (other files are passed over,
/// as haproxystats does). Only regular files count: a symbolic link is not
/// followed.
pub fn list_round(dir: &Path) -> io::Result<RoundListing> {
    let mut entries: Vec<(String, fs::FileType)> = fs::read_dir(dir)?
        .filter_map(Result::ok)
        .filter_map(|entry| Some((entry.file_name().into_string().ok()?, entry.file_type().ok()?)))
        .collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    let mut listing = RoundListing::default();
    for (name, kind) in entries {
        let path = dir.join(&name);
        let round_file = name.ends_with(INFO_SUFFIX) || name.ends_with(STAT_SUFFIX) || name == MANIFEST_FILE;
        if round_file && !kind.is_file() {
            let what = if kind.is_symlink() {
                "a symbolic link, not followed"
            } else {
                "not a regular file"
            };
            listing.skipped.push((name, what));
            continue;
        }
        if let Some(target) = name.strip_suffix(INFO_SUFFIX) {
            listing.infos.push((target.to_owned(), path));
        } else if let Some(target) = name.strip_suffix(STAT_SUFFIX) {
            listing.stats.push((target.to_owned(), path));
        } else if name == MANIFEST_FILE {
            listing.manifest = Some(path);
        }
    }
    Ok(listing)
}

/// The first sequence a [`Namer`] gives: far above any `pull` gives (the
/// count of its rounds within one second).
const NAMER_FIRST: u32 = 1_000_000;

/// Names the rounds that `process` writes into its own `src-dir` (rounds
/// from Kafka, cluster rounds): `<epoch>.<n>`, `n` from a counter kept in
/// `<src-dir>.last-sequence` that never goes back, from 1,000,000 up. So no
/// name is given twice in a `src-dir`, whatever the order of the epochs
/// (a sink that keys its output by round name, local-store, never writes
/// over an earlier round), and none is one `pull` gives.
#[derive(Debug)]
pub struct Namer {
    file: PathBuf,
    last: u32,
}

/// A [`Namer`] that several writers of one `src-dir` share.
pub type SharedNamer = std::sync::Arc<std::sync::Mutex<Namer>>;

impl Namer {
    /// The namer of `src_dir`, going on from the last sequence it gave.
    pub fn open(src_dir: &Path) -> SharedNamer {
        let file = beside(src_dir, "last-sequence");
        let last = fs::read_to_string(&file)
            .ok()
            .and_then(|text| text.trim().parse().ok())
            .unwrap_or(0);
        std::sync::Arc::new(std::sync::Mutex::new(Namer { file, last }))
    }

    /// The next sequence, recorded durably before it is given.
    pub fn advance(&mut self) -> anyhow::Result<u32> {
        let next = match self.last.checked_add(1) {
            Some(next) if next >= NAMER_FIRST => next,
            _ => NAMER_FIRST,
        };
        write_durably(&self.file, &format!("{next}\n"))
            .with_context(|| format!("cannot write {}", self.file.display()))?;
        self.last = next;
        Ok(next)
    }
}

/// The next sequence of a shared namer.
pub fn next_sequence(namer: &SharedNamer) -> anyhow::Result<u32> {
    crate::runtime::unpoisoned(namer.lock(), "the round namer").advance()
}

/// The two spool directories, checked to be on one filesystem.
#[derive(Debug)]
pub struct Spool {
    dst_dir: PathBuf,
    tmp_dir: PathBuf,
    /// The last round named: begun in this run, or delivered by an earlier one.
    last_round: Option<(u64, u32)>,
    /// Names rounds instead of the last round's name, when set.
    namer: Option<SharedNamer>,
}

impl Spool {
    /// Creates both directories when missing, refuses two filesystems, and
    /// removes rounds a previous run left unfinished in `tmp_dir`.
    pub fn open(dst_dir: &Path, tmp_dir: &Path) -> anyhow::Result<Spool> {
        for dir in [dst_dir, tmp_dir] {
            fs::create_dir_all(dir).with_context(|| format!("cannot create spool directory {}", dir.display()))?;
        }
        let device = |dir: &Path| fs::metadata(dir).map(|metadata| metadata.dev());
        let (dst_device, tmp_device) = (device(dst_dir)?, device(tmp_dir)?);
        if dst_device != tmp_device {
            bail!(
                "tmp-dst-dir {} and dst-dir {} are on different filesystems: rounds could not be moved \
                 into dst-dir atomically, so process might read half-copied rounds; put both on one filesystem",
                tmp_dir.display(),
                dst_dir.display()
            );
        }
        for leftover in subdirectories(tmp_dir)? {
            tracing::warn!(dir = %leftover.display(), "removing a round a previous run left unfinished");
            fs::remove_dir_all(&leftover).with_context(|| format!("cannot remove {}", leftover.display()))?;
        }
        let last_round = fs::read_to_string(last_round_file(dst_dir))
            .ok()
            .and_then(|name| parse_round_name(name.trim()));
        Ok(Spool {
            dst_dir: dst_dir.to_owned(),
            tmp_dir: tmp_dir.to_owned(),
            last_round,
            namer: None,
        })
    }

    /// The same spool, naming its rounds with `namer` (see [`Namer`]).
    pub fn named_by(self, namer: SharedNamer) -> Spool {
        Spool {
            namer: Some(namer),
            ..self
        }
    }

    /// The directory `process` consumes.
    pub fn dst_dir(&self) -> &Path {
        &self.dst_dir
    }

    /// Rounds waiting in `dst-dir` (its subdirectories); the error says which
    /// directory.
    pub fn queued_rounds(&self) -> io::Result<usize> {
        if !self.dst_dir.exists() {
            fs::create_dir_all(&self.dst_dir)?;
        }
        Ok(subdirectories(&self.dst_dir)?.len())
    }

    /// Bytes available to this user on the filesystem of `dst-dir`.
    pub fn free_bytes(&self) -> io::Result<u64> {
        let stats = nix::sys::statvfs::statvfs(&self.dst_dir).map_err(io::Error::from)?;
        Ok(stats.blocks_available().saturating_mul(stats.fragment_size()))
    }

    /// Creates the staging directory of a round started at `epoch`: `<epoch>`,
    /// or `<epoch>.<n>` when that name was taken in this second.
    pub fn begin_round(&mut self, epoch: u64) -> anyhow::Result<StagedRound> {
        let mut sequence = match (&self.namer, self.last_round) {
            (Some(namer), _) => next_sequence(namer)?,
            (None, Some((last_epoch, last_sequence))) if last_epoch == epoch => last_sequence + 1,
            (None, _) => 0,
        };
        loop {
            let name = round_name(epoch, sequence);
            let staging = self.tmp_dir.join(&name);
            if !self.dst_dir.join(&name).exists() {
                match fs::create_dir(&staging) {
                    Ok(()) => {
                        self.last_round = Some((epoch, sequence));
                        return Ok(StagedRound {
                            name,
                            position: (epoch, sequence),
                            staging,
                            delivered: false,
                        });
                    }
                    Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {}
                    Err(error) => {
                        return Err(error)
                            .with_context(|| format!("cannot create the staging directory {}", staging.display()));
                    }
                }
            }
            sequence = self.after(sequence)?;
        }
    }

    /// Moves a staged round into `dst-dir` and makes the move durable; where
    /// it went. Its name is recorded first, so that no later run names a
    /// round the same. Another writer of `dst-dir` (a cluster round, a
    /// second spool) may have taken the name since [`Spool::begin_round`]:
    /// the round then takes the next free one, never replacing a round.
    pub fn deliver(&mut self, mut round: StagedRound) -> anyhow::Result<PathBuf> {
        fsync_dir(&round.staging).with_context(|| format!("cannot fsync {}", round.staging.display()))?;
        let (epoch, first) = round.position;
        let mut tried = None;
        let (sequence, target) = move_in(&round.staging, &self.dst_dir, epoch, || {
            let sequence = match tried {
                None => first,
                Some(taken) => self.after(taken)?,
            };
            tried = Some(sequence);
            if self.namer.is_none() {
                self.record_last_round(&round_name(epoch, sequence))
                    .with_context(|| format!("cannot write {}", last_round_file(&self.dst_dir).display()))?;
            }
            Ok(sequence)
        })?;
        self.last_round = Some((epoch, sequence));
        round.delivered = true;
        for dir in [&self.dst_dir, &self.tmp_dir] {
            fsync_dir(dir).with_context(|| format!("cannot fsync {}", dir.display()))?;
        }
        Ok(target)
    }
}

/// Moves the directory `dir` into `dst_dir` as a round of `epoch`, under the
/// first name of the sequences `sequences` gives that no entry of `dst_dir`
/// has: atomic, and never replacing anything. The sequence and path it took.
pub fn move_in(
    dir: &Path,
    dst_dir: &Path,
    epoch: u64,
    mut sequences: impl FnMut() -> anyhow::Result<u32>,
) -> anyhow::Result<(u32, PathBuf)> {
    loop {
        let sequence = sequences()?;
        let target = dst_dir.join(round_name(epoch, sequence));
        match rename_no_replace(dir, &target) {
            Ok(()) => return Ok((sequence, target)),
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {}
            Err(error) => {
                return Err(error).with_context(|| format!("cannot move {} to {}", dir.display(), target.display()));
            }
        }
    }
}

/// `rename`, failing with `AlreadyExists` instead of replacing `to` (an
/// empty directory would be replaced silently by a plain rename). Where the
/// filesystem cannot say so atomically, `to` is checked first.
fn rename_no_replace(from: &Path, to: &Path) -> io::Result<()> {
    use nix::fcntl::{AT_FDCWD, RenameFlags, renameat2};
    match renameat2(AT_FDCWD, from, AT_FDCWD, to, RenameFlags::RENAME_NOREPLACE) {
        Ok(()) => Ok(()),
        Err(nix::errno::Errno::EINVAL | nix::errno::Errno::ENOSYS) => {
            if fs::symlink_metadata(to).is_ok() {
                return Err(io::ErrorKind::AlreadyExists.into());
            }
            fs::rename(from, to)
        }
        Err(errno) => Err(errno.into()),
    }
}

impl Spool {
    /// Writes `name` to the last-round file, durably.
    fn record_last_round(&self, name: &str) -> io::Result<()> {
        write_durably(&last_round_file(&self.dst_dir), &format!("{name}\n"))
    }

    /// The sequence to try after `taken`: the namer's next, or the one after.
    fn after(&self, taken: u32) -> anyhow::Result<u32> {
        match &self.namer {
            Some(namer) => next_sequence(namer),
            None => Ok(taken + 1),
        }
    }
}

/// Writes `text` to `path` aside, fsynced, then renamed over it.
fn write_durably(path: &Path, text: &str) -> io::Result<()> {
    let mut aside = path.as_os_str().to_owned();
    aside.push(".tmp");
    let mut file = fs::File::create(&aside)?;
    io::Write::write_all(&mut file, text.as_bytes())?;
    file.sync_all()?;
    fs::rename(&aside, path)
}

/// A round's epoch and sequence, from its name only: `<epoch>` or `<epoch>.<n>`.
fn parse_round_name(name: &str) -> Option<(u64, u32)> {
    let (epoch, sequence) = name.split_once('.').unwrap_or((name, "0"));
    let digits = |text: &str| !text.is_empty() && text.bytes().all(|byte| byte.is_ascii_digit());
    if !digits(epoch) || !digits(sequence) {
        return None;
    }
    Some((epoch.parse().ok()?, sequence.parse().ok()?))
}

/// A round's timestamp, from its name only: `<epoch>` or `<epoch>.<n>`.
pub fn round_epoch(name: &str) -> Option<u64> {
    parse_round_name(name).map(|(epoch, _)| epoch)
}

/// A round's place in the order: epoch, sequence, name.
pub type RoundKey = (u64, u64, String);

/// Sort key of a round name: oldest first.
pub fn round_order(name: &str) -> RoundKey {
    let (epoch, sequence) = name.split_once('.').unwrap_or((name, "0"));
    (
        epoch.parse().unwrap_or(u64::MAX),
        sequence.parse().unwrap_or(0),
        name.to_owned(),
    )
}

/// `<epoch>` for the first round of a second, `<epoch>.<n>` after it.
pub fn round_name(epoch: u64, sequence: u32) -> String {
    if sequence == 0 {
        epoch.to_string()
    } else {
        format!("{epoch}.{sequence}")
    }
}

/// A round being written; removed again unless it was delivered.
#[derive(Debug)]
pub struct StagedRound {
    name: String,
    /// `(epoch, sequence)` of `name`.
    position: (u64, u32),
    staging: PathBuf,
    delivered: bool,
}

impl StagedRound {
    /// The round's directory name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where its files are written.
    pub fn path(&self) -> &Path {
        &self.staging
    }
}

impl Drop for StagedRound {
    fn drop(&mut self) {
        if !self.delivered {
            let _ = fs::remove_dir_all(&self.staging);
        }
    }
}

fn subdirectories(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            found.push(entry.path());
        }
    }
    Ok(found)
}

fn fsync_dir(dir: &Path) -> io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn timestamps_come_only_from_round_names() {
        assert_eq!(round_epoch("1700000000"), Some(1_700_000_000));
        assert_eq!(round_epoch("1700000000.2"), Some(1_700_000_000));
        for bad in ["foo", "", "1700000000.", ".1", "17e8", "1700000000.x", "-1"] {
            assert_eq!(round_epoch(bad), None, "{bad}");
        }
        let mut names = vec!["1700000001", "1700000000.10", "1700000000.2", "1700000000"];
        names.sort_by_key(|name| round_order(name));
        assert_eq!(names, ["1700000000", "1700000000.2", "1700000000.10", "1700000001"]);
    }

    #[test]
    fn rounds_of_one_second_get_distinct_names_and_leftovers_are_removed() {
        let root = tempfile::tempdir().unwrap();
        let (dst, tmp) = (root.path().join("incoming"), root.path().join("incoming.tmp"));
        fs::create_dir_all(tmp.join("1699999999")).unwrap();
        let mut spool = Spool::open(&dst, &tmp).unwrap();
        assert!(
            !tmp.join("1699999999").exists(),
            "unfinished round of a previous run removed"
        );

        let first = spool.begin_round(1_700_000_000).unwrap();
        assert_eq!(first.name(), "1700000000");
        fs::write(first.path().join("a.sock_info"), "Name: HAProxy\n\n").unwrap();
        let delivered = spool.deliver(first).unwrap();
        assert_eq!(delivered, dst.join("1700000000"));
        assert!(delivered.join("a.sock_info").exists());

        let second = spool.begin_round(1_700_000_000).unwrap();
        assert_eq!(second.name(), "1700000000.1");
        let abandoned_path = second.path().to_owned();
        drop(second);
        assert!(!abandoned_path.exists(), "an undelivered round leaves nothing behind");
        assert_eq!(spool.begin_round(1_700_000_000).unwrap().name(), "1700000000.2");

        // A fresh spool (restart within the same second) skips names already in dst-dir.
        let mut restarted = Spool::open(&dst, &tmp).unwrap();
        assert_eq!(restarted.begin_round(1_700_000_000).unwrap().name(), "1700000000.1");
        assert_eq!(restarted.queued_rounds().unwrap(), 1);
        assert!(restarted.free_bytes().unwrap() > 0);
    }

    #[test]
    fn a_name_is_not_reused_once_its_round_was_consumed() {
        let root = tempfile::tempdir().unwrap();
        let (dst, tmp) = (root.path().join("incoming"), root.path().join("incoming.tmp"));
        let mut daemon = Spool::open(&dst, &tmp).unwrap();
        let round = daemon.begin_round(1_700_000_000).unwrap();
        daemon.deliver(round).unwrap();
        // process consumes it; then `pull --once` runs within the same second.
        fs::remove_dir(dst.join("1700000000")).unwrap();
        drop(daemon);
        let mut once = Spool::open(&dst, &tmp).unwrap();
        let round = once.begin_round(1_700_000_000).unwrap();
        assert_eq!(round.name(), "1700000000.1");
        once.deliver(round).unwrap();
        assert_eq!(
            fs::read_to_string(root.path().join("incoming.last-round")).unwrap(),
            "1700000000.1\n"
        );
        // A later second starts again at `<epoch>`.
        let mut next = Spool::open(&dst, &tmp).unwrap();
        assert_eq!(next.begin_round(1_700_000_001).unwrap().name(), "1700000001");
    }

    #[test]
    fn a_name_taken_after_begin_is_never_replaced() {
        let root = tempfile::tempdir().unwrap();
        let (dst, tmp) = (root.path().join("incoming"), root.path().join("incoming.tmp"));
        let mut spool = Spool::open(&dst, &tmp).unwrap();
        let round = spool.begin_round(1_700_000_000).unwrap();
        fs::write(round.path().join("a.sock_info"), "Name: HAProxy\n\n").unwrap();
        // Another writer takes the name, and the next, in the meantime:
        // one with a round in it, one empty (which a plain rename replaces).
        fs::create_dir_all(dst.join("1700000000")).unwrap();
        fs::write(dst.join("1700000000").join("b.sock_info"), "theirs").unwrap();
        fs::create_dir_all(dst.join("1700000000.1")).unwrap();
        let delivered = spool.deliver(round).unwrap();
        assert_eq!(delivered, dst.join("1700000000.2"));
        assert!(delivered.join("a.sock_info").exists());
        assert_eq!(
            fs::read_to_string(dst.join("1700000000").join("b.sock_info")).unwrap(),
            "theirs"
        );
        assert_eq!(testkit::dir_entries(&dst.join("1700000000.1")), Vec::<String>::new());
        assert_eq!(
            fs::read_to_string(root.path().join("incoming.last-round")).unwrap(),
            "1700000000.2\n"
        );
        assert_eq!(spool.begin_round(1_700_000_000).unwrap().name(), "1700000000.3");
    }

    #[test]
    fn a_namer_never_gives_a_name_twice_whatever_the_order_of_epochs() {
        let root = tempfile::tempdir().unwrap();
        let (dst, tmp) = (root.path().join("central"), root.path().join("central.assembling"));
        let namer = Namer::open(&dst);
        let mut spool = Spool::open(&dst, &tmp).unwrap().named_by(Arc::clone(&namer));
        let mut delivered = Vec::new();
        for epoch in [1_700_000_010, 1_700_000_000, 1_700_000_010] {
            let round = spool.begin_round(epoch).unwrap();
            let path = spool.deliver(round).unwrap();
            delivered.push(path.file_name().unwrap().to_string_lossy().into_owned());
            fs::remove_dir(path).unwrap();
        }
        assert_eq!(
            delivered,
            ["1700000010.1000000", "1700000000.1000001", "1700000010.1000002"]
        );
        // Another writer sharing it, and a restart, go on from there.
        assert_eq!(next_sequence(&namer).unwrap(), 1_000_003);
        drop((spool, namer));
        let mut restarted = Spool::open(&dst, &tmp).unwrap().named_by(Namer::open(&dst));
        assert_eq!(
            restarted.begin_round(1_700_000_000).unwrap().name(),
            "1700000000.1000004"
        );
        assert_eq!(
            fs::read_to_string(root.path().join("central.last-sequence")).unwrap(),
            "1000004\n"
        );
    }

    #[test]
    fn round_files_are_listed_by_kind() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "b.sock_stat",
            "a.sock_info",
            "a.sock_stat",
            "manifest.json",
            "notes.txt",
        ] {
            fs::write(dir.path().join(name), "").unwrap();
        }
        let listing = list_round(dir.path()).unwrap();
        let names = |files: &[(String, PathBuf)]| files.iter().map(|(name, _)| name.clone()).collect::<Vec<_>>();
        assert_eq!(names(&listing.infos), ["a.sock"]);
        assert_eq!(names(&listing.stats), ["a.sock", "b.sock"]);
        assert_eq!(listing.manifest, Some(dir.path().join("manifest.json")));
        assert_eq!(info_file("a.sock"), "a.sock_info");
        assert_eq!(stat_file("127.0.0.1:5555"), "127.0.0.1:5555_stat");
    }

    #[test]
    fn refuses_directories_on_two_filesystems() {
        let shm = Path::new("/dev/shm");
        let root = tempfile::tempdir().unwrap();
        let other = tempfile::tempdir_in(shm).unwrap();
        let same_device = fs::metadata(root.path()).unwrap().dev() == fs::metadata(shm).unwrap().dev();
        assert!(!same_device, "this test needs /dev/shm to be a filesystem of its own");
        let error = Spool::open(&root.path().join("in"), &other.path().join("tmp"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("are on different filesystems"), "{error}");
    }
}
