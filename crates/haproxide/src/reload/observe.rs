//! Seeing which HAProxy processes serve, before and after a reload: on the
//! master CLI (`show proc`: workers, old workers, the reload counters), or
//! for a standalone HAProxy from its pid file, or from the stats socket
//! alone (`show info` says the serving PID).
//!
//! A reload is verified when a new process serves — listed as the current
//! worker with the master's reload counter moved, or named by the pid file
//! — and answers on its socket with its own PID. A master whose failed
//! counter moved kept the old configuration.

use std::path::{Path, PathBuf};
use std::time::Duration;

use haproxy::{ClientOptions, Endpoint, RuntimeClient, ShowInfo, ShowProc};

/// What is watched.
#[derive(Debug, Clone)]
pub enum Observer {
    /// The master CLI.
    Master(RuntimeClient),
    /// A standalone HAProxy: its pid file, and its stats socket when known.
    PidFile {
        /// The pid file `-p` writes.
        path: PathBuf,
        /// Where the new process must answer.
        stats: Option<RuntimeClient>,
    },
    /// A worker's stats socket only.
    Stats(RuntimeClient),
}

/// The processes seen at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The processes that serve the current configuration.
    pub serving: Vec<u32>,
    /// Processes finishing their connections after an earlier reload,
    /// oldest first (known on the master CLI only).
    pub leaving: Vec<u32>,
    /// The master's reloads and failed reloads.
    pub reloads: Option<(u32, u32)>,
}

/// What the processes show after a reload was asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// New processes serve and answer.
    Serving {
        /// The new processes.
        new: Vec<u32>,
        /// Processes of the previous configurations still finishing.
        leaving: Vec<u32>,
    },
    /// HAProxy says the reload failed; the processes of before still serve.
    Kept(String),
    /// Nothing conclusive yet.
    Pending(String),
}

/// Options of the clients that watch.
pub fn client(path: &Path, read_timeout: Duration) -> RuntimeClient {
    RuntimeClient::new(
        Endpoint::Unix(path.to_owned()),
        ClientOptions {
            connect_timeout: Duration::from_secs(1),
            read_timeout,
            ..ClientOptions::default()
        },
    )
}

impl Observer {
    /// What serves now.
    pub async fn snapshot(&self) -> Result<Snapshot, String> {
        match self {
            Observer::Master(master) => {
                let proc = show_proc(master).await?;
                let mut old: Vec<&haproxy::ProcRow> = proc.old_workers().collect();
                old.sort_by_key(|row| std::cmp::Reverse(row.reloads));
                Ok(Snapshot {
                    serving: proc.workers().map(|row| row.pid).collect(),
                    leaving: old.iter().map(|row| row.pid).collect(),
                    reloads: Some((proc.master().reloads, proc.master().failed_reloads.unwrap_or(0))),
                })
            }
            Observer::PidFile { path, .. } => Ok(Snapshot {
                serving: read_pid_file(path)?
                    .into_iter()
                    .filter(|pid| is_running(*pid))
                    .collect(),
                leaving: Vec::new(),
                reloads: None,
            }),
            Observer::Stats(stats) => Ok(Snapshot {
                serving: vec![info_pid(stats, "").await?],
                leaving: Vec::new(),
                reloads: None,
            }),
        }
    }

    /// Compares what serves now with `before`.
    pub async fn verdict(&self, before: &Snapshot) -> Verdict {
        let now = match self.snapshot().await {
            Ok(now) => now,
            Err(error) => return Verdict::Pending(error),
        };
        if let (Some((_, failed_before)), Some((_, failed_now))) = (before.reloads, now.reloads)
            && failed_now > failed_before
        {
            return Verdict::Kept(format!(
                "the master counts a failed reload ({failed_now} failed, {failed_before} before)"
            ));
        }
        if let (Some((reloads_before, _)), Some((reloads_now, _))) = (before.reloads, now.reloads)
            && reloads_now <= reloads_before
        {
            return Verdict::Pending(format!("the master has not reloaded yet ({reloads_now} reloads)"));
        }
        let new: Vec<u32> = now
            .serving
            .iter()
            .copied()
            .filter(|pid| !before.serving.contains(pid))
            .collect();
        if new.is_empty() {
            return Verdict::Pending(format!("no new process yet (serving: {:?})", now.serving));
        }
        if let Err(error) = self.answers(&new).await {
            return Verdict::Pending(error);
        }
        let mut leaving = now.leaving.clone();
        for pid in &before.serving {
            if !leaving.contains(pid) && !now.serving.contains(pid) && is_running(*pid) {
                leaving.push(*pid);
            }
        }
        leaving.retain(|pid| is_running(*pid) || now.leaving.contains(pid));
        Verdict::Serving { new, leaving }
    }

    /// Whether one of the `new` processes answers with its own PID.
    async fn answers(&self, new: &[u32]) -> Result<(), String> {
        let (client, prefix) = match self {
            Observer::Master(master) => (master, format!("@!{} ", new[0])),
            Observer::PidFile { stats: Some(stats), .. } | Observer::Stats(stats) => (stats, String::new()),
            Observer::PidFile { stats: None, .. } => return Ok(()),
        };
        let pid = info_pid(client, &prefix).await?;
        if new.contains(&pid) {
            Ok(())
        } else {
            Err(format!("{} is still answered by PID {pid}", client.endpoint()))
        }
    }

    /// Where `show servers state` is asked, and with which prefix.
    pub fn state_source<'a>(&'a self, stats: Option<&'a RuntimeClient>) -> Option<(&'a RuntimeClient, &'static str)> {
        match (stats, self) {
            (Some(stats), _) => Some((stats, "")),
            (None, Observer::Master(master)) => Some((master, "@1 ")),
            (None, Observer::Stats(stats) | Observer::PidFile { stats: Some(stats), .. }) => Some((stats, "")),
            (None, Observer::PidFile { stats: None, .. }) => None,
        }
    }
}

async fn show_proc(master: &RuntimeClient) -> Result<ShowProc, String> {
    let reply = master.send("show proc").await.map_err(|error| error.to_string())?;
    ShowProc::parse(&reply.text()).map_err(|error| format!("{}: {error}", master.endpoint()))
}

/// The `Pid` a `show info` (with a master-CLI `prefix`) answers.
async fn info_pid(client: &RuntimeClient, prefix: &str) -> Result<u32, String> {
    let reply = client
        .send(&format!("{prefix}show info"))
        .await
        .map_err(|error| error.to_string())?;
    if let Some(refusal) = reply.cli_error() {
        return Err(format!("{}: {refusal}", client.endpoint()));
    }
    let info = ShowInfo::parse(&reply.text()).map_err(|error| format!("{}: {error}", client.endpoint()))?;
    info.int("Pid")
        .and_then(|pid| u32::try_from(pid).ok())
        .ok_or_else(|| format!("{}: show info has no Pid", client.endpoint()))
}

/// The PIDs in a pid file, one per line (HAProxy writes one per process).
pub fn read_pid_file(path: &Path) -> Result<Vec<u32>, String> {
    let text = std::fs::read_to_string(path).map_err(|error| format!("{}: {error}", path.display()))?;
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(|line| {
            line.parse::<u32>()
                .map_err(|_| format!("{}: {:?} is not a PID", path.display(), line))
        })
        .collect()
}

/// Whether `pid` is a live process (a zombie is not).
pub fn is_running(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // The state follows the parenthesised command name, which may hold spaces.
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next());
    !matches!(state, None | Some("Z" | "X"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pid_files_and_liveness() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("haproxy.pid");
        std::fs::write(&path, format!("{}\n\n", std::process::id())).unwrap();
        assert_eq!(read_pid_file(&path), Ok(vec![std::process::id()]));
        assert!(is_running(std::process::id()));
        std::fs::write(&path, "12 x\n").unwrap();
        assert_eq!(
            read_pid_file(&path),
            Err(format!("{}: \"12 x\" is not a PID", path.display()))
        );
        assert!(!is_running(u32::MAX));
    }
}
