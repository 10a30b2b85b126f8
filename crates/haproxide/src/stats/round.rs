//! Reading one round directory of the spool: its `*_info` files (parsed here),
//! its `*_stat` files (streamed by the aggregation), and `manifest.json` when
//! pull wrote one. Which file is which is the [`spool`]'s to say.
//!
//! A file that cannot be parsed is left out with a reason naming the file and
//! line; a round with no usable file at all is quarantined by the caller.

use std::path::Path;

use haproxy::ShowInfo;

use super::aggregate::StatFile;
use super::spool::{self, manifest::Manifest};

/// The parsed contents of a round.
#[derive(Debug, Default)]
pub struct RoundFiles {
    /// `(socket name, show info)`, by socket name.
    pub infos: Vec<(String, ShowInfo)>,
    /// The `show stat` files, by socket name.
    pub stats: Vec<StatFile>,
    /// Sockets pull could not read, from `manifest.json`.
    pub failed_sockets: Option<Vec<String>>,
    /// The load balancer's host name, from `manifest.json` (when recorded);
    /// a cluster's name for a cluster's round.
    pub host: Option<String>,
    /// A cluster's round: the hosts it adds up, and those it lacks.
    pub members: Vec<String>,
    /// A cluster's round: the hosts it waited for in vain.
    pub missing: Vec<String>,
    /// Files left out, one line each.
    pub problems: Vec<String>,
}

/// Reads a round; `Err` when it holds no usable `*_info` and no `*_stat` file.
pub fn read_round(dir: &Path) -> Result<RoundFiles, String> {
    let listing = list(dir)?;
    let mut round = RoundFiles::default();
    for (name, what) in listing.skipped {
        round.problems.push(format!("{name}: {what}; left out"));
    }
    for (socket, path) in listing.infos {
        let name = spool::info_file(&socket);
        match std::fs::read(&path) {
            Ok(bytes) => match ShowInfo::parse(&String::from_utf8_lossy(&bytes)) {
                Ok(info) => round.infos.push((socket, info)),
                Err(error) => round.problems.push(format!("{name}: {error}; file left out")),
            },
            Err(error) => round
                .problems
                .push(format!("{name}: cannot read: {error}; file left out")),
        }
    }
    round.stats = listing
        .stats
        .into_iter()
        .map(|(socket, path)| StatFile { socket, path })
        .collect();
    if let Some(manifest) = read_manifest(listing.manifest.as_deref(), &mut round.problems) {
        round.failed_sockets = Some(manifest.failed);
        round.host = recorded_host(manifest.host);
        round.members = manifest.members;
        round.missing = manifest.missing;
    }
    if round.infos.is_empty() && round.stats.is_empty() {
        let reason = if round.problems.is_empty() {
            spool::NO_ROUND_FILE.to_owned()
        } else {
            round.problems.join("; ")
        };
        return Err(reason);
    }
    Ok(round)
}

/// Only the host a round's manifest records, and the problems met, for
/// sinks that ship the round's files without reading them; `Err` when it
/// has nothing to ship.
pub fn read_round_host(dir: &Path) -> Result<(Option<String>, Vec<String>), String> {
    let listing = list(dir)?;
    if !listing.has_round_files() {
        return Err(spool::NO_ROUND_FILE.into());
    }
    let mut problems = Vec::new();
    let host =
        read_manifest(listing.manifest.as_deref(), &mut problems).and_then(|manifest| recorded_host(manifest.host));
    Ok((host, problems))
}

fn list(dir: &Path) -> Result<spool::RoundListing, String> {
    spool::list_round(dir).map_err(|error| format!("cannot list {}: {error}", dir.display()))
}

/// The manifest at `path`, if there is one and it reads; a problem if it does not.
fn read_manifest(path: Option<&Path>, problems: &mut Vec<String>) -> Option<Manifest> {
    let manifest = Manifest::read(path?);
    if manifest.is_err() {
        problems.push(format!("{}: not a pull manifest; ignored", spool::MANIFEST_FILE));
    }
    manifest.ok()
}

/// The host a manifest records; pulls before it was recorded left it empty.
fn recorded_host(host: String) -> Option<String> {
    Some(host).filter(|host| !host.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_files_are_left_out_with_reasons_and_empty_rounds_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.sock_info"), "Name: HAProxy\nCurrConns: 3\n\n").unwrap();
        std::fs::write(
            dir.path().join("a.sock_stat"),
            "# pxname,svname,scur,\nfe,FRONTEND,1,\n\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("b.sock_info"), "garbage without colon\n").unwrap();
        std::fs::write(dir.path().join("b.sock_stat"), "# pxname,svname,scur,\nfe,FRONTEND,1").unwrap();
        std::fs::write(dir.path().join("manifest.json"), r#"{"failed":["c.sock"]}"#).unwrap();
        let round = read_round(dir.path()).unwrap();
        assert_eq!(round.infos.len(), 1);
        assert_eq!(
            round.stats.iter().map(|file| file.socket.as_str()).collect::<Vec<_>>(),
            ["a.sock", "b.sock"]
        );
        assert_eq!(round.failed_sockets, Some(vec!["c.sock".to_owned()]));
        assert_eq!(
            round.problems,
            ["b.sock_info: line 1: expected `Name: value`, found \"garbage without colon\"; file left out"]
        );
        let empty = tempfile::tempdir().unwrap();
        std::fs::write(empty.path().join("x.sock_info"), "\u{0}\u{1}binary").unwrap();
        let error = read_round(empty.path()).unwrap_err();
        assert!(
            error.starts_with("x.sock_info: line 1: expected `Name: value`"),
            "{error}"
        );
    }
}
