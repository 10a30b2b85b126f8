//! Where a runtime API listens: a UNIX socket path or a TCP `host:port`.
//!
//! Accepted spellings are those operators already use: a bare path
//! (`/run/haproxy/admin.sock`), `unix:///run/haproxy/admin.sock`,
//! `tcp://127.0.0.1:9999`, `tcp://[::1]:9999` and `tcp://lb1.example:9999`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// A runtime-API address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// A UNIX stream socket (`stats socket /path` or the master socket of `-S /path`).
    Unix(PathBuf),
    /// A TCP listener (`stats socket ipv4@host:port`).
    Tcp {
        /// Host name or address literal, IPv6 without brackets.
        host: String,
        /// TCP port.
        port: u16,
    },
}

/// Why an endpoint string was not understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid socket address {input:?}: {reason}")]
pub struct EndpointError {
    /// The text that was given.
    pub input: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl Endpoint {
    /// A short label for this endpoint: the socket's file name for UNIX sockets,
    /// `host:port` for TCP (IPv6 hosts without brackets, as haproxystats names its
    /// spool files, e.g. `fe80::1:4444`).
    pub fn short_name(&self) -> String {
        match self {
            Endpoint::Unix(path) => path
                .file_name()
                .map(|name| name.to_string_lossy().into_owned())
                .unwrap_or_else(|| path.display().to_string()),
            Endpoint::Tcp { host, port } => format!("{host}:{port}"),
        }
    }

    /// The socket path, for UNIX endpoints.
    pub fn unix_path(&self) -> Option<&Path> {
        match self {
            Endpoint::Unix(path) => Some(path),
            Endpoint::Tcp { .. } => None,
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Unix(path) => write!(f, "{}", path.display()),
            Endpoint::Tcp { host, port } if host.contains(':') => write!(f, "tcp://[{host}]:{port}"),
            Endpoint::Tcp { host, port } => write!(f, "tcp://{host}:{port}"),
        }
    }
}

impl From<PathBuf> for Endpoint {
    fn from(path: PathBuf) -> Self {
        Endpoint::Unix(path)
    }
}

impl FromStr for Endpoint {
    type Err = EndpointError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let fail = |reason| EndpointError {
            input: input.to_owned(),
            reason,
        };
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(fail("empty"));
        }
        if let Some(path) = trimmed.strip_prefix("unix://") {
            if path.is_empty() {
                return Err(fail("unix:// needs a socket path, e.g. unix:///run/haproxy/admin.sock"));
            }
            return Ok(Endpoint::Unix(PathBuf::from(path)));
        }
        if let Some(address) = trimmed.strip_prefix("tcp://") {
            let (host, port) = split_host_port(address)
                .ok_or_else(|| fail("tcp:// needs host:port, e.g. tcp://127.0.0.1:9999 or tcp://[::1]:9999"))?;
            let port = port
                .parse::<u16>()
                .ok()
                .filter(|port| *port != 0)
                .ok_or_else(|| fail("the port must be a number from 1 to 65535"))?;
            return Ok(Endpoint::Tcp {
                host: host.to_owned(),
                port,
            });
        }
        if trimmed.contains("://") {
            return Err(fail("unknown scheme: use a path, unix:///path or tcp://host:port"));
        }
        Ok(Endpoint::Unix(PathBuf::from(trimmed)))
    }
}

/// Splits `host:port` or `[v6]:port`; `None` when either part is missing.
fn split_host_port(address: &str) -> Option<(&str, &str)> {
    let (host, port) = if let Some(rest) = address.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        (host, after.strip_prefix(':')?)
    } else {
        address.rsplit_once(':')?
    };
    if host.is_empty() || port.is_empty() || (host.contains(':') && !address.starts_with('[')) {
        return None;
    }
    Some((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_spelling() {
        assert_eq!("/run/a.sock".parse(), Ok(Endpoint::Unix("/run/a.sock".into())));
        assert_eq!("unix:///run/a.sock".parse(), Ok(Endpoint::Unix("/run/a.sock".into())));
        assert_eq!(
            "tcp://127.0.0.1:5555".parse(),
            Ok(Endpoint::Tcp {
                host: "127.0.0.1".into(),
                port: 5555
            })
        );
        assert_eq!(
            "tcp://[::1]:4444".parse(),
            Ok(Endpoint::Tcp {
                host: "::1".into(),
                port: 4444
            })
        );
        assert_eq!(
            "tcp://lb1.example:80".parse(),
            Ok(Endpoint::Tcp {
                host: "lb1.example".into(),
                port: 80
            })
        );
    }

    #[test]
    fn rejects_malformed_addresses_with_a_reason() {
        for bad in [
            "",
            "unix://",
            "tcp://host",
            "tcp://:80",
            "tcp://h:0",
            "tcp://h:99999",
            "tcp://::1:80",
            "ftp://x",
        ] {
            let error = bad.parse::<Endpoint>().expect_err(bad);
            assert_eq!(error.input, bad);
        }
    }

    #[test]
    fn short_names_match_haproxystats_spool_names() {
        let unix: Endpoint = "unix:///var/run/admin1.sock".parse().unwrap();
        assert_eq!(unix.short_name(), "admin1.sock");
        let v4: Endpoint = "tcp://127.0.0.1:5555".parse().unwrap();
        assert_eq!(v4.short_name(), "127.0.0.1:5555");
        let v6: Endpoint = "tcp://[fe80::1]:4444".parse().unwrap();
        assert_eq!(v6.short_name(), "fe80::1:4444");
        assert_eq!(v6.to_string(), "tcp://[fe80::1]:4444");
    }
}
