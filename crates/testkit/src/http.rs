//! A tiny real HTTP/1.x server on a loopback port, one per backend server
//! (or playing a service's health endpoint), and the client side of the
//! traffic helper.
//!
//! Every request is answered with the server's current response (by default
//! `200 OK` with the server's label as body) and the connection closed. The
//! accept loop runs on its own thread; it stops when the server is stopped or
//! dropped (a wake-up connection unblocks `accept`), and can be started again
//! on the same port.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// A status code and a body.
#[derive(Debug, Clone)]
struct Response {
    status: u16,
    content_type: &'static str,
    body: String,
}

/// What the serving thread shares with its [`HttpServer`].
struct Shared {
    response: Mutex<Response>,
    requests: AtomicU64,
    stopping: AtomicBool,
}

/// A loopback HTTP server answering every request with its current response.
pub struct HttpServer {
    port: u16,
    label: String,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl HttpServer {
    /// Binds 127.0.0.1 on a kernel-chosen port and starts serving `200` with
    /// the label as body.
    pub fn start(label: &str) -> HttpServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let mut server = HttpServer {
            port: listener.local_addr().expect("local addr").port(),
            label: label.to_owned(),
            shared: Arc::new(Shared {
                response: Mutex::new(Response {
                    status: 200,
                    content_type: "text/plain",
                    body: format!("{label}\n"),
                }),
                requests: AtomicU64::new(0),
                stopping: AtomicBool::new(false),
            }),
            thread: None,
        };
        server.serve(listener);
        server
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `backend/server` this server plays.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Requests answered so far.
    pub fn requests(&self) -> u64 {
        self.shared.requests.load(Ordering::SeqCst)
    }

    /// From now on answers `status` with `body` as JSON.
    pub fn respond_json(&self, status: u16, body: &str) {
        *self.shared.response.lock().expect("response lock") = Response {
            status,
            content_type: "application/json",
            body: body.to_owned(),
        };
    }

    /// Stops serving: the port refuses connections until [`HttpServer::restart`].
    pub fn stop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        let _ = super::connect(self.port);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }

    /// Serves again on the same port.
    pub fn restart(&mut self) {
        self.stop();
        let listener = TcpListener::bind(("127.0.0.1", self.port)).expect("bind the same port again");
        self.shared.stopping.store(false, Ordering::SeqCst);
        self.serve(listener);
    }

    fn serve(&mut self, listener: TcpListener) {
        let shared = Arc::clone(&self.shared);
        self.thread = Some(std::thread::spawn(move || serve(&listener, &shared)));
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn serve(listener: &TcpListener, shared: &Shared) {
    for stream in listener.incoming() {
        if shared.stopping.load(Ordering::SeqCst) {
            return;
        }
        let Ok(mut stream) = stream else { continue };
        let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(2)));
        let mut request = Vec::with_capacity(1024);
        let mut chunk = [0u8; 1024];
        while !request.windows(4).any(|window| window == b"\r\n\r\n") && request.len() < 64 * 1024 {
            match stream.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(read) => request.extend_from_slice(&chunk[..read]),
            }
        }
        if request.is_empty() {
            continue;
        }
        let Response {
            status,
            content_type,
            body,
        } = shared.response.lock().expect("response lock").clone();
        let reason = match status {
            200 => "OK",
            503 => "Service Unavailable",
            _ => "Status",
        };
        let response = format!(
            "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        if stream.write_all(response.as_bytes()).is_ok() {
            shared.requests.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// Sends one `GET path` to 127.0.0.1:`port` and returns the status code (0 on
/// a connection failure or an unreadable answer).
pub(crate) fn get_status(port: u16, path: &str) -> u16 {
    let Ok(mut stream) = super::connect(port) else { return 0 };
    let request = format!("GET {path} HTTP/1.0\r\nHost: test\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return 0;
    }
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0)
}

/// One HTTP/1.0 request to a loopback `port` (a chunked answer is put together),
/// `headers` being extra `Name: value\r\n` lines; the status and the body.
pub fn loopback_request(
    port: u16,
    method: &str,
    path: &str,
    headers: &str,
    body: &str,
) -> std::io::Result<(u16, String)> {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(std::time::Duration::from_secs(30)))?;
    write!(
        stream,
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let (head, content) = answer.split_once("\r\n\r\n").unwrap_or((answer.as_str(), ""));
    let chunked = head
        .lines()
        .any(|line| line.to_ascii_lowercase().replace(' ', "") == "transfer-encoding:chunked");
    Ok((status, if chunked { dechunk(content) } else { content.to_owned() }))
}

/// The body of a chunked answer (HAProxy's own services chunk even for HTTP/1.0).
fn dechunk(mut chunks: &str) -> String {
    let mut body = String::new();
    while let Some((size, rest)) = chunks.split_once("\r\n") {
        let size = usize::from_str_radix(size.split(';').next().unwrap_or_default().trim(), 16).unwrap_or(0);
        if size == 0 || rest.len() < size {
            break;
        }
        body.push_str(&rest[..size]);
        chunks = rest[size..].strip_prefix("\r\n").unwrap_or(&rest[size..]);
    }
    body
}
