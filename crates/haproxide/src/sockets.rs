//! Finding the runtime-API sockets of a directory (`--socket-dir`, `[pull] socket-dir`),
//! and naming sockets so that no two share a name.
//!
//! Every non-hidden entry that is a UNIX socket (symlinks followed) counts, in
//! name order. Entries that are not sockets are passed over; a symlink whose
//! target is gone is reported, because it usually means a socket moved.

use std::collections::HashMap;
use std::io;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

/// The sockets of a directory and what was passed over with a reason.
#[derive(Debug, Default)]
pub struct Discovery {
    /// Socket paths, sorted by name.
    pub sockets: Vec<PathBuf>,
    /// Entries that look like they were meant to be sockets but are not usable.
    pub skipped: Vec<(PathBuf, String)>,
}

/// Lists the sockets in `dir`.
pub fn discover(dir: &Path) -> io::Result<Discovery> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .filter(|entry| !entry.file_name().to_string_lossy().starts_with('.'))
        .map(|entry| entry.path())
        .collect();
    entries.sort();
    let mut found = Discovery::default();
    for path in entries {
        match std::fs::metadata(&path) {
            Ok(metadata) if metadata.file_type().is_socket() => found.sockets.push(path),
            Ok(_) => {}
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                found
                    .skipped
                    .push((path, "dangling symlink: its target does not exist".into()));
            }
            Err(error) => found.skipped.push((path, error.to_string())),
        }
    }
    Ok(found)
}

/// `items` named for display: each named once (a second with the same
/// `full` name is dropped), by its `short` name unless another shares it,
/// then by its `full` name.
pub fn labelled<T>(mut items: Vec<T>, full: impl Fn(&T) -> String, short: impl Fn(&T) -> String) -> Vec<(String, T)> {
    let mut seen = std::collections::HashSet::new();
    items.retain(|item| seen.insert(full(item)));
    let labels = distinct_names(items.iter().map(short).collect(), |index| full(&items[index]));
    labels.into_iter().zip(items).collect()
}

/// `short` names, except where two or more are equal: those take
/// `longer(index)` instead (a full path, say), so every name says which socket.
pub fn distinct_names(short: Vec<String>, longer: impl Fn(usize) -> String) -> Vec<String> {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for name in &short {
        *counts.entry(name).or_default() += 1;
    }
    let clashing: Vec<bool> = short.iter().map(|name| counts[name.as_str()] > 1).collect();
    short
        .into_iter()
        .zip(clashing)
        .enumerate()
        .map(|(index, (name, clashes))| if clashes { longer(index) } else { name })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clashing_short_names_take_the_longer_form() {
        let short = vec!["admin.sock".to_owned(), "b.sock".to_owned(), "admin.sock".to_owned()];
        let long = ["/run/a/admin.sock", "/run/b.sock", "/run/c/admin.sock"];
        assert_eq!(
            distinct_names(short, |index| long[index].to_owned()),
            ["/run/a/admin.sock", "b.sock", "/run/c/admin.sock"]
        );
    }
    use std::os::unix::net::UnixListener;

    #[test]
    fn finds_sockets_in_name_order_and_reports_dangling_links() {
        let dir = tempfile::tempdir().unwrap();
        let _b = UnixListener::bind(dir.path().join("b.sock")).unwrap();
        let _a = UnixListener::bind(dir.path().join("a.sock")).unwrap();
        let _hidden = UnixListener::bind(dir.path().join(".hidden.sock")).unwrap();
        std::fs::write(dir.path().join("notes.txt"), "x").unwrap();
        std::os::unix::fs::symlink(dir.path().join("gone.sock"), dir.path().join("link.sock")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("a.sock"), dir.path().join("c.sock")).unwrap();
        let found = discover(dir.path()).unwrap();
        let names: Vec<_> = found
            .sockets
            .iter()
            .map(|path| path.file_name().unwrap().to_str().unwrap())
            .collect();
        assert_eq!(names, ["a.sock", "b.sock", "c.sock"]);
        assert_eq!(found.skipped.len(), 1);
        assert!(found.skipped[0].0.ends_with("link.sock"));
        assert!(discover(&dir.path().join("missing")).is_err());
    }
}
