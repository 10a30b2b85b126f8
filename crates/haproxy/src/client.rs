//! The runtime-API client: one command per connection, reply read to EOF.
//!
//! HAProxy's stats socket in non-interactive mode reads one command line, writes
//! the output (ending with an empty line) and closes the connection. The master
//! socket (`haproxy -W -S path`) behaves the same and routes a command prefixed
//! with `@N` (relative worker number), `@!PID` or `@` (the master itself) to that
//! process; an unknown target is answered with a one-line error
//! (`Can't find the target PID matching the prefix '@5'`), see [`Reply::cli_error`].
//! That answer is the whole reply: HAProxy 3.0's master CLI now and then keeps
//! the connection open after it (until its CLI timeout), so the client stops
//! reading once the line is in.
//!
//! The client half-closes its side after the command, as `socat` does: the
//! master CLI of HAProxy 2.6 keeps the connection open after its reply until
//! the client has shut down writing, so reading to EOF needs it.
//!
//! Connect and read have separate timeouts. The read timeout bounds each wait for
//! more reply bytes, not the whole reply, so a 30 MB `show stat` is not cut off
//! while it keeps flowing. Only the connect phase is retried: nothing has been
//! sent then, so a retry cannot run a command twice.

use std::borrow::Cow;
use std::io;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UnixStream};
use tokio::time::timeout;

use crate::Endpoint;

/// How many times a failed connect is tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retries {
    /// At most this many further attempts (0 = a single attempt).
    Limited(u32),
    /// Keep trying (haproxystats' `retries = -1`); bound the caller with a deadline.
    Forever,
}

/// Timeouts and retry policy of a [`RuntimeClient`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClientOptions {
    /// Bound on one connect attempt.
    pub connect_timeout: Duration,
    /// Bound on each wait for reply bytes once connected.
    pub read_timeout: Duration,
    /// Connect attempts after the first one.
    pub retries: Retries,
    /// Pause between connect attempts.
    pub retry_interval: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            connect_timeout: Duration::from_secs(1),
            read_timeout: Duration::from_secs(5),
            retries: Retries::Limited(0),
            retry_interval: Duration::from_millis(500),
        }
    }
}

/// Which socket failed and how.
#[derive(Debug, thiserror::Error)]
#[error("{endpoint}: {kind}")]
pub struct ClientError {
    /// The socket that was asked.
    pub endpoint: Endpoint,
    /// What happened.
    pub kind: ErrorKind,
}

/// The ways a runtime-API exchange fails.
#[derive(Debug, thiserror::Error)]
pub enum ErrorKind {
    /// The socket file does not exist.
    #[error("no such socket file (is HAProxy running, and is this its `stats socket` path?)")]
    NotFound,
    /// Nothing accepts connections there: a stale UNIX socket file, or a closed TCP port.
    #[error("connection refused: nothing is listening (stale socket file or stopped HAProxy?)")]
    Refused,
    /// The socket exists but this user may not connect to it.
    #[error("permission denied (check the `mode`/`user`/`group` of the `stats socket` line)")]
    PermissionDenied,
    /// A UNIX socket whose queue of pending connections is full: HAProxy is not
    /// accepting fast enough (overloaded, or stopped without closing its socket).
    #[error("the socket's queue of pending connections is full (HAProxy busy or hung?)")]
    Busy,
    /// No connection within the connect timeout.
    #[error("connect timed out after {0:?}")]
    ConnectTimeout(Duration),
    /// Connected, but the reply stalled for longer than the read timeout.
    #[error("no reply data for {timeout:?} (received {received} bytes before that)")]
    ReadTimeout {
        /// The read timeout in force.
        timeout: Duration,
        /// Bytes received before the stall.
        received: usize,
    },
    /// HAProxy closed the connection without writing anything.
    #[error("empty reply: HAProxy closed the connection without answering")]
    EmptyReply,
    /// The reply arrived but could not be written where it was going.
    #[error("cannot store the reply: {0}")]
    Store(io::Error),
    /// Any other I/O failure.
    #[error("{0}")]
    Io(#[from] io::Error),
}

impl ErrorKind {
    fn from_connect_error(error: io::Error) -> Self {
        match error.kind() {
            io::ErrorKind::NotFound => ErrorKind::NotFound,
            io::ErrorKind::ConnectionRefused => ErrorKind::Refused,
            io::ErrorKind::PermissionDenied => ErrorKind::PermissionDenied,
            io::ErrorKind::WouldBlock => ErrorKind::Busy,
            _ => ErrorKind::Io(error),
        }
    }
}

/// A complete reply as HAProxy sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    bytes: Vec<u8>,
}

/// First lines by which the runtime API says a command was not carried out.
const CLI_ERROR_PREFIXES: &[&str] = &["Unknown command", "Permission denied", UNKNOWN_TARGET];

/// The master CLI's one-line answer to a prefix naming no process.
const UNKNOWN_TARGET: &str = "Can't find the target PID";

impl Reply {
    /// Wraps bytes read from a socket or a saved file.
    pub fn new(bytes: Vec<u8>) -> Self {
        Reply { bytes }
    }

    /// The raw reply.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The raw reply, owned.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// The reply as text; invalid UTF-8 is replaced, never rejected.
    pub fn text(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.bytes)
    }

    /// The first line when the reply is one of the runtime API's refusals
    /// (unknown command, permission denied, unknown master-CLI target).
    pub fn cli_error(&self) -> Option<Cow<'_, str>> {
        let start = self.bytes.iter().position(|byte| !byte.is_ascii_whitespace())?;
        let rest = &self.bytes[start..];
        let first_line = rest.split(|byte| *byte == b'\n').next().unwrap_or(rest);
        let line = String::from_utf8_lossy(first_line);
        CLI_ERROR_PREFIXES
            .iter()
            .any(|prefix| line.starts_with(prefix))
            .then(|| Cow::Owned(line.trim_end().to_owned()))
    }
}

/// Sends runtime-API commands to one endpoint.
#[derive(Debug, Clone)]
pub struct RuntimeClient {
    endpoint: Endpoint,
    options: ClientOptions,
}

impl RuntimeClient {
    /// A client for `endpoint` with `options`.
    pub fn new(endpoint: Endpoint, options: ClientOptions) -> Self {
        RuntimeClient { endpoint, options }
    }

    /// The endpoint this client talks to.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// Sends `command` (a newline is added when missing) and returns the whole reply.
    pub async fn send(&self, command: &str) -> Result<Reply, ClientError> {
        let mut bytes = Vec::new();
        self.send_to(command, &mut bytes).await?;
        Ok(Reply::new(bytes))
    }

    /// Sends `command` and streams the reply into `sink` as it arrives, so a
    /// large `show stat` never sits in memory whole.
    pub async fn send_to<W>(&self, command: &str, sink: &mut W) -> Result<Transfer, ClientError>
    where
        W: AsyncWrite + Unpin + ?Sized,
    {
        self.exchange(command, sink).await.map_err(|kind| ClientError {
            endpoint: self.endpoint.clone(),
            kind,
        })
    }

    async fn exchange<W>(&self, command: &str, sink: &mut W) -> Result<Transfer, ErrorKind>
    where
        W: AsyncWrite + Unpin + ?Sized,
    {
        let mut line = String::with_capacity(command.len() + 1);
        line.push_str(command);
        if !line.ends_with('\n') {
            line.push('\n');
        }
        match self.connect_with_retries().await? {
            Connection::Unix(stream) => self.talk(stream, &line, sink).await,
            Connection::Tcp(stream) => self.talk(stream, &line, sink).await,
        }
    }

    async fn connect_with_retries(&self) -> Result<Connection, ErrorKind> {
        let mut attempt: u32 = 0;
        loop {
            match self.connect_once().await {
                Ok(connection) => return Ok(connection),
                Err(error) => {
                    let may_retry = match self.options.retries {
                        Retries::Forever => true,
                        Retries::Limited(limit) => attempt < limit,
                    };
                    if !may_retry {
                        return Err(error);
                    }
                    attempt = attempt.saturating_add(1);
                    tokio::time::sleep(self.options.retry_interval).await;
                }
            }
        }
    }

    async fn connect_once(&self) -> Result<Connection, ErrorKind> {
        let limit = self.options.connect_timeout;
        let connected = match &self.endpoint {
            Endpoint::Unix(path) => timeout(limit, UnixStream::connect(path))
                .await
                .map(|result| result.map(Connection::Unix)),
            Endpoint::Tcp { host, port } => timeout(limit, TcpStream::connect((host.as_str(), *port)))
                .await
                .map(|result| result.map(Connection::Tcp)),
        };
        match connected {
            Err(_elapsed) => Err(ErrorKind::ConnectTimeout(limit)),
            Ok(result) => result.map_err(ErrorKind::from_connect_error),
        }
    }

    async fn talk<S, W>(&self, mut stream: S, line: &str, sink: &mut W) -> Result<Transfer, ErrorKind>
    where
        S: AsyncRead + AsyncWrite + Unpin,
        W: AsyncWrite + Unpin + ?Sized,
    {
        let read_timeout = self.options.read_timeout;
        let stalled = |received| ErrorKind::ReadTimeout {
            timeout: read_timeout,
            received,
        };
        let send = async {
            stream.write_all(line.as_bytes()).await?;
            stream.shutdown().await
        };
        timeout(read_timeout, send)
            .await
            .map_err(|_| stalled(0))?
            .map_err(closed_early)?;
        let mut buffer = vec![0u8; 64 * 1024];
        let mut transfer = Transfer::default();
        let mut tail = [0u8; 2];
        loop {
            let received = usize::try_from(transfer.bytes).unwrap_or(usize::MAX);
            let read = timeout(read_timeout, stream.read(&mut buffer))
                .await
                .map_err(|_| stalled(received))?
                .map_err(|error| {
                    if received == 0 {
                        closed_early(error)
                    } else {
                        ErrorKind::Io(error)
                    }
                })?;
            if read == 0 {
                break;
            }
            let chunk = &buffer[..read];
            if transfer.first_line.len() < FIRST_LINE_LIMIT && !transfer.first_line.contains('\n') {
                let wanted = (FIRST_LINE_LIMIT - transfer.first_line.len()).min(chunk.len());
                transfer.first_line.push_str(&String::from_utf8_lossy(&chunk[..wanted]));
            }
            tail = match chunk {
                [.., a, b] => [*a, *b],
                [b] => [tail[1], *b],
                [] => tail,
            };
            sink.write_all(chunk).await.map_err(ErrorKind::Store)?;
            transfer.bytes += read as u64;
            if transfer.first_line.starts_with(UNKNOWN_TARGET) && transfer.first_line.ends_with('\n') {
                break;
            }
        }
        if transfer.bytes == 0 {
            return Err(ErrorKind::EmptyReply);
        }
        sink.flush().await.map_err(ErrorKind::Store)?;
        if let Some(end) = transfer.first_line.find('\n') {
            transfer.first_line.truncate(end);
        }
        transfer.complete = tail == *b"\n\n";
        Ok(transfer)
    }
}

/// The first bytes of a reply kept by [`Transfer::first_line`].
const FIRST_LINE_LIMIT: usize = 120;

/// What a streamed reply looked like.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Transfer {
    /// Bytes received and stored.
    pub bytes: u64,
    /// Whether the reply ended with the empty line HAProxy ends every complete
    /// reply with; a reply cut short by a crash or a reload does not.
    pub complete: bool,
    /// The reply's first line (at most 120 bytes), to recognise what it is.
    pub first_line: String,
}

/// A peer that resets the connection before answering anything has closed
/// without answering; other errors stay I/O errors.
fn closed_early(error: io::Error) -> ErrorKind {
    match error.kind() {
        io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe => ErrorKind::EmptyReply,
        _ => ErrorKind::Io(error),
    }
}

enum Connection {
    Unix(UnixStream),
    Tcp(TcpStream),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_unknown_target_is_the_whole_reply_even_on_a_connection_left_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.sock");
        let listener = tokio::net::UnixListener::bind(&path).unwrap();
        let server = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut command = [0u8; 64];
            let _ = stream.read(&mut command).await.unwrap();
            stream
                .write_all(b"Can't find the target PID matching the prefix '@7'\n")
                .await
                .unwrap();
            // As HAProxy 3.0 sometimes does: no close until its CLI timeout.
            tokio::time::sleep(Duration::from_secs(30)).await;
        });
        let options = ClientOptions {
            read_timeout: Duration::from_secs(20),
            ..ClientOptions::default()
        };
        let client = RuntimeClient::new(Endpoint::Unix(path), options);
        let started = std::time::Instant::now();
        let reply = tokio::time::timeout(Duration::from_secs(5), client.send("@7 show info"))
            .await
            .expect("the client does not wait for the close")
            .unwrap();
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!(
            reply.cli_error().as_deref(),
            Some("Can't find the target PID matching the prefix '@7'")
        );
        server.abort();
    }

    #[test]
    fn recognises_runtime_api_refusals() {
        let unknown =
            Reply::new(b"Unknown command, but maybe one of the following ones is a better match:\n  help\n".to_vec());
        assert_eq!(
            unknown.cli_error().as_deref(),
            Some("Unknown command, but maybe one of the following ones is a better match:")
        );
        let target = Reply::new(b"Can't find the target PID matching the prefix '@5'\n".to_vec());
        assert_eq!(
            target.cli_error().as_deref(),
            Some("Can't find the target PID matching the prefix '@5'")
        );
        let info = Reply::new(b"Name: HAProxy\nVersion: 2.6.12\n\n".to_vec());
        assert_eq!(info.cli_error(), None);
    }
}
