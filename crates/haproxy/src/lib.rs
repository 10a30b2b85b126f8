//! Talking to HAProxy: the runtime-API client and parsers for what it answers.
//!
//! This crate knows HAProxy's interfaces and nothing else: no configuration
//! of its own, no daemons, no output formats of its own.
//!
//! - [`RuntimeClient`] sends one command to a stats socket or a master socket
//!   ([`Endpoint`]: UNIX path or TCP) and returns the whole [`Reply`].
//! - [`ShowStat`] parses `show stat` CSV by header name (HAProxy 1.5 to 3.x);
//!   [`StatReader`] reads the same rows from a file or socket part by part, for one
//!   pass over a reply of any size in little memory, splitting out all cells or
//!   only those a pass reads.
//! - [`ShowInfo`] parses `show info`.
//! - [`ServersState`] parses `show servers state`.
//! - [`ShowProc`] parses the master CLI's `show proc`, [`ReloadAnswer`] its
//!   answer to `reload`.
//! - [`cfg`] finds which files `-f` loads and the `global` section's
//!   `server-state-file` in HAProxy's own configuration.
//! - [`AgentReply`] is what an agent answers an `agent-check`, parsed and rendered.
//! - [`LogLine`] reads one of HAProxy's log datagrams (RFC 5424 with its
//!   structured data, RFC 3164, `local`), as bytes; [`scan`] is how it finds
//!   the ends of their short fields, and `show stat`'s commas, eight bytes at a
//!   time.
//!
//! ```
//! use haproxy::{ObjectType, ShowStat};
//!
//! let reply = "# pxname,svname,scur,stot,status,type,\n\
//!              fe_main,FRONTEND,2,81,OPEN,0,\n\
//!              be_app,s1,1,40,UP,2,\n\n";
//! let stat = ShowStat::parse(reply.to_owned()).unwrap();
//! let servers: Vec<_> = stat.rows().filter(|row| row.object_type() == ObjectType::Server).collect();
//! assert_eq!(servers[0].svname(), "s1");
//! assert_eq!(servers[0].int("stot"), Ok(Some(40)));
//! assert_eq!(servers[0].int("qcur"), Ok(None)); // a column this reply lacks
//! ```

mod agent;
pub mod cfg;
mod client;
mod endpoint;
mod info;
mod log;
mod master;
pub mod scan;
mod servers_state;
mod stat;

pub use agent::{AdminState, AgentReply, Health, ReplyError, Weight};
pub use client::{ClientError, ClientOptions, ErrorKind, Reply, Retries, RuntimeClient, Transfer};
pub use endpoint::{Endpoint, EndpointError};
pub use info::{InfoError, InfoValue, ShowInfo};
pub use log::{LogError, LogFormat, LogLine, SdElement, SdParam};
pub use master::{ProcKind, ProcRow, ReloadAnswer, ReloadRefused, ShowProc, ShowProcError};
pub use servers_state::{ServerStateRow, ServersState, ServersStateError};
pub use stat::{
    Header, ObjectType, ReadError, STATIC_FIELDS, ShowStat, StatError, StatReader, StatRow, ValueError, is_text_column,
};

/// At most the first 40 characters of untrusted `text`, with `…` when cut:
/// what errors quote of an input (always with `{:?}`, so it is escaped).
pub fn excerpt(text: &str) -> String {
    const LONGEST: usize = 40;
    let mut quoted: String = text.chars().take(LONGEST).collect();
    if text.chars().nth(LONGEST).is_some() {
        quoted.push('…');
    }
    quoted
}
