//! The HAProxy side of `backends`: which processes to change (every stats
//! socket given, every socket of a directory, or the current workers of a
//! master CLI, reached with `@!PID`), reading a backend's servers from them
//! by header name (`show servers state B`, and `show stat B 4 -1` for the
//! sessions of draining servers), and sending a change with the reply it
//! must get checked.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use haproxy::{ClientOptions, Endpoint, RuntimeClient, ServersState, ShowInfo, ShowProc, ShowStat};

use super::plan::ServerView;

/// Where the HAProxy processes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sockets {
    /// These stats sockets.
    List(Vec<Endpoint>),
    /// Every socket of this directory, looked at each pass.
    Dir(PathBuf),
    /// The current workers of this master CLI.
    Master(PathBuf),
}

/// One HAProxy process to change.
#[derive(Debug, Clone)]
pub struct Instance {
    /// What stays the same across reloads (the socket), for the controller's memory.
    pub key: String,
    /// For the log: the socket, and the worker PID behind a master CLI.
    pub label: String,
    client: RuntimeClient,
    prefix: String,
}

fn client(endpoint: Endpoint, timeout: Duration) -> RuntimeClient {
    RuntimeClient::new(
        endpoint,
        ClientOptions {
            connect_timeout: timeout,
            read_timeout: timeout,
            ..ClientOptions::default()
        },
    )
}

/// The processes `sockets` names now.
pub async fn instances(sockets: &Sockets, timeout: Duration) -> Result<Vec<Instance>, String> {
    let stats = |endpoint: Endpoint| Instance {
        key: endpoint.to_string(),
        label: endpoint.to_string(),
        client: client(endpoint, timeout),
        prefix: String::new(),
    };
    match sockets {
        Sockets::List(endpoints) => Ok(endpoints.iter().cloned().map(stats).collect()),
        Sockets::Dir(dir) => {
            let found = crate::sockets::discover(dir).map_err(|error| format!("{}: {error}", dir.display()))?;
            Ok(found.sockets.into_iter().map(Endpoint::Unix).map(stats).collect())
        }
        Sockets::Master(path) => {
            let master = client(Endpoint::Unix(path.clone()), timeout);
            let reply = master.send("show proc").await.map_err(|error| error.to_string())?;
            let proc = ShowProc::parse(&reply.text()).map_err(|error| format!("{}: {error}", path.display()))?;
            Ok(proc
                .workers()
                .map(|worker| Instance {
                    key: path.display().to_string(),
                    label: format!("{} @!{}", path.display(), worker.pid),
                    client: master.clone(),
                    prefix: format!("@!{} ", worker.pid),
                })
                .collect())
        }
    }
}

/// What a command must answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Nothing (an empty line).
    Nothing,
    /// A reply starting with one of these.
    OneOf(&'static [&'static str]),
}

/// A change HAProxy refused, or answered otherwise than expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// The command.
    pub command: String,
    /// What HAProxy said (or why it could not be asked).
    pub reply: String,
}

impl Instance {
    /// The client that reaches it.
    pub fn client(&self) -> &RuntimeClient {
        &self.client
    }

    /// The master-CLI prefix (`@!PID `) its commands need, or nothing.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Sends `command`; the reply's text.
    pub async fn ask(&self, command: &str) -> Result<String, String> {
        let reply = self
            .client
            .send(&format!("{}{command}", self.prefix))
            .await
            .map_err(|error| error.to_string())?;
        Ok(reply.text().into_owned())
    }

    /// Sends `command` and checks its reply.
    pub async fn change(&self, command: &str, expect: Expect) -> Result<String, Refused> {
        let refused = |reply: String| Refused {
            command: command.to_owned(),
            reply,
        };
        let reply = self.ask(command).await.map_err(refused)?;
        let text = reply.trim();
        let fine = match expect {
            Expect::Nothing => text.is_empty(),
            Expect::OneOf(starts) => starts.iter().any(|start| text.starts_with(start)),
        };
        if fine {
            Ok(text.to_owned())
        } else {
            Err(refused(text.to_owned()))
        }
    }

    /// The PID that answers.
    pub async fn pid(&self) -> Result<u32, String> {
        let reply = self.ask("show info").await?;
        ShowInfo::parse(&reply)
            .ok()
            .and_then(|info| info.int("Pid"))
            .and_then(|pid| u32::try_from(pid).ok())
            .ok_or_else(|| format!("show info has no Pid: {:?}", haproxy::excerpt(reply.trim())))
    }

    /// The servers of `backend`, with the sessions of those draining.
    pub async fn servers(&self, backend: &str) -> Result<Vec<ServerView>, String> {
        let reply = self.ask(&format!("show servers state {backend}")).await?;
        let state = ServersState::parse(&reply)
            .map_err(|_| format!("show servers state {backend}: {:?}", haproxy::excerpt(reply.trim())))?;
        let mut servers = Vec::with_capacity(state.rows().len());
        for row in state.rows() {
            let cell = |name: &str| state.get(row, name).unwrap_or("-");
            let number = |name: &str| cell(name).parse::<u64>().unwrap_or(0);
            servers.push(ServerView {
                name: cell("srv_name").to_owned(),
                address: cell("srv_addr").parse::<IpAddr>().ok(),
                port: u16::try_from(number("srv_port")).unwrap_or(0),
                admin: u32::try_from(number("srv_admin_state")).unwrap_or(0),
                weight: u32::try_from(number("srv_uweight")).unwrap_or(0),
                sessions: 0,
            });
        }
        if servers.iter().any(ServerView::draining) {
            let sessions = self.sessions(backend).await?;
            for server in &mut servers {
                server.sessions = sessions.get(&server.name).copied().unwrap_or(0);
            }
        }
        Ok(servers)
    }

    async fn sessions(&self, backend: &str) -> Result<HashMap<String, u64>, String> {
        let reply = self.ask(&format!("show stat {backend} 4 -1")).await?;
        let stat = ShowStat::parse(reply).map_err(|error| format!("show stat {backend}: {error}"))?;
        Ok(stat
            .rows()
            .filter(|row| row.pxname() == backend)
            .map(|row| {
                (
                    row.svname().to_string(),
                    row.int("scur").ok().flatten().unwrap_or(0).max(0) as u64,
                )
            })
            .collect())
    }
}
