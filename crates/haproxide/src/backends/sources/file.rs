//! A file as a discovery source: one `address:port [weight]` per line
//! (`[v6]:port` for IPv6, `#` comments, blank lines ignored), or a JSON
//! array of `{"address": …, "port": …, "weight": …}` when the file starts
//! with `[{` or `[]` (blanks allowed between: a line such as `[::1]:80`
//! starts with `[` too).
//!
//! The file's directory is watched with inotify; the file is read when it
//! was written and closed, or renamed into place (an editor's save), then
//! again once it has been quiet for [`SETTLE`], so a file still being
//! written is never taken for the whole list. A file that does not parse is
//! an error naming file and line, and the last good list stays published.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::mpsc;

use super::{Found, Published, Source, publish_if_changed};
use crate::runtime::watch::{DirEvent, watch_dir};
use crate::runtime::{ProblemChange, note_problem};

/// How long the file must stay unchanged after an event before it is read.
pub const SETTLE: Duration = Duration::from_millis(200);

/// The source.
#[derive(Debug)]
pub struct FileSource {
    path: PathBuf,
}

impl FileSource {
    /// A source reading `path`.
    pub fn new(path: PathBuf) -> FileSource {
        FileSource { path }
    }

    fn read(&self) -> Result<Vec<Found>, String> {
        let text = std::fs::read_to_string(&self.path).map_err(|error| format!("{}: {error}", self.path.display()))?;
        parse(&self.path, &text)
    }
}

impl Source for FileSource {
    fn describe(&self) -> String {
        format!("file {}", self.path.display())
    }

    fn run(self: Box<Self>, publish: Published) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(async move {
            let dir = self
                .path
                .parent()
                .filter(|dir| !dir.as_os_str().is_empty())
                .unwrap_or(Path::new("."))
                .to_owned();
            let name = self.path.file_name().map(|name| name.to_string_lossy().into_owned());
            let (events_tx, mut events) = mpsc::unbounded_channel();
            if let Err(error) = watch_dir(&dir, events_tx) {
                tracing::error!("{}: {error:#}; the file is not followed", self.describe());
                return;
            }
            let mut problem = None;
            let mut due = Some(tokio::time::Instant::now());
            while !publish.is_closed() {
                let settle = async {
                    match due {
                        Some(at) => tokio::time::sleep_until(at).await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    event = events.recv() => match event {
                        Some(DirEvent::Entry(entry)) if Some(&entry) != name.as_ref() => {}
                        Some(_) => due = Some(tokio::time::Instant::now() + SETTLE),
                        None => return,
                    },
                    () = settle => {
                        due = None;
                        match self.read() {
                            Ok(found) => {
                                if note_problem(&mut problem, None) == ProblemChange::Ended {
                                    tracing::info!("{}: readable again", self.describe());
                                }
                                if publish_if_changed(&publish, found) {
                                    tracing::debug!("{}: new list", self.describe());
                                }
                            }
                            Err(error) => {
                                if note_problem(&mut problem, Some(error.clone())) == ProblemChange::Began {
                                    tracing::error!("{error}; keeping the last list");
                                }
                            }
                        }
                    }
                }
            }
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonTarget {
    address: IpAddr,
    port: Option<u16>,
    weight: Option<u32>,
}

/// Reads a file's text (`path` is for the errors).
pub fn parse(path: &Path, text: &str) -> Result<Vec<Found>, String> {
    let is_json = text
        .trim_start()
        .strip_prefix('[')
        .is_some_and(|rest| rest.trim_start().starts_with(['{', ']']));
    if is_json {
        let targets: Vec<JsonTarget> = serde_json::from_str(text)
            .map_err(|error| format!("{}: not a JSON list of targets: {error}", path.display()))?;
        return Ok(targets
            .into_iter()
            .map(|target| Found {
                address: target.address,
                port: target.port,
                weight: target.weight,
            })
            .collect());
    }
    let mut found = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or_default().trim();
        if line.is_empty() {
            continue;
        }
        let bad = |why: &str| format!("{}:{}: {:?}: {why}", path.display(), index + 1, haproxy::excerpt(line));
        let mut words = line.split_whitespace();
        let endpoint = words.next().unwrap_or_default();
        let (address, port) = match endpoint.parse::<SocketAddr>() {
            Ok(socket) => (socket.ip(), Some(socket.port())),
            Err(_) => (
                // A bare address, or an IPv6 one in brackets: `[::1]`.
                endpoint
                    .strip_prefix('[')
                    .and_then(|inner| inner.strip_suffix(']'))
                    .and_then(|inner| inner.parse::<std::net::Ipv6Addr>().ok().map(IpAddr::V6))
                    .or_else(|| endpoint.parse::<IpAddr>().ok())
                    .ok_or_else(|| bad("expected an IP address, with :port or not ([v6]:port for IPv6)"))?,
                None,
            ),
        };
        let weight = match words.next() {
            None => None,
            Some(word) => Some(
                word.parse::<u32>()
                    .ok()
                    .filter(|weight| *weight <= 256)
                    .ok_or_else(|| bad("the weight must be a whole number from 0 to 256"))?,
            ),
        };
        if words.next().is_some() {
            return Err(bad("expected `address:port [weight]`"));
        }
        found.push(Found { address, port, weight });
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(address: &str, port: Option<u16>, weight: Option<u32>) -> Found {
        Found {
            address: address.parse().unwrap(),
            port,
            weight,
        }
    }

    #[test]
    fn lines_and_json() {
        let path = Path::new("/etc/haproxide/web.targets");
        let text = "# web servers\n10.0.0.1:8080\n\n[fd00::2]:8081 50   # half\n10.0.0.3\n";
        assert_eq!(
            parse(path, text).unwrap(),
            [
                found("10.0.0.1", Some(8080), None),
                found("fd00::2", Some(8081), Some(50)),
                found("10.0.0.3", None, None),
            ]
        );
        // An IPv6 address in brackets on the first line is a line, not JSON.
        assert_eq!(
            parse(path, "[::1]\n[fd00::2]:81 7\n").unwrap(),
            [found("::1", None, None), found("fd00::2", Some(81), Some(7))]
        );
        assert_eq!(parse(path, " [ ]\n").unwrap(), []);
        let json = r#"[{"address": "10.0.0.1", "port": 80, "weight": 3}, {"address": "::1"}]"#;
        assert_eq!(
            parse(path, json).unwrap(),
            [found("10.0.0.1", Some(80), Some(3)), found("::1", None, None)]
        );
    }

    #[test]
    fn errors_name_file_and_line() {
        let path = Path::new("web.targets");
        assert_eq!(
            parse(path, "10.0.0.1:80\nweb1.example:80\n").unwrap_err(),
            "web.targets:2: \"web1.example:80\": expected an IP address, with :port or not ([v6]:port for IPv6)"
        );
        assert_eq!(
            parse(path, "10.0.0.1:80 300\n").unwrap_err(),
            "web.targets:1: \"10.0.0.1:80 300\": the weight must be a whole number from 0 to 256"
        );
        // Brackets only around a whole IPv6 address (the fuzzer's `::1[`).
        for endpoint in ["::1[", "[::1", "[10.0.0.1]", "[[::1]]"] {
            assert_eq!(
                parse(path, &format!("{endpoint}\n")).unwrap_err(),
                format!("web.targets:1: {endpoint:?}: expected an IP address, with :port or not ([v6]:port for IPv6)")
            );
        }
        assert!(
            parse(path, "[{\"address\": \"10.0.0.1\"")
                .unwrap_err()
                .starts_with("web.targets: not a JSON list")
        );
    }
}
