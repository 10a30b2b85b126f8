//! A tiny real HTTP/1.x server on a loopback port, one per backend server, and
//! the client side of the traffic helper.
//!
//! Every request is answered `200 OK` with the server's label as body and the
//! connection closed. The accept loop runs on its own thread and stops when the
//! server is dropped (a wake-up connection unblocks `accept`).

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;

/// A loopback HTTP server answering every request with 200.
pub struct HttpServer {
    port: u16,
    label: String,
    requests: Arc<AtomicU64>,
    stopping: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl HttpServer {
    /// Binds 127.0.0.1 on a kernel-chosen port and starts serving.
    pub fn start(label: &str) -> HttpServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("local addr").port();
        let requests = Arc::new(AtomicU64::new(0));
        let stopping = Arc::new(AtomicBool::new(false));
        let body = format!("{label}\n");
        let thread = {
            let requests = Arc::clone(&requests);
            let stopping = Arc::clone(&stopping);
            std::thread::spawn(move || serve(&listener, &body, &requests, &stopping))
        };
        HttpServer {
            port,
            label: label.to_owned(),
            requests,
            stopping,
            thread: Some(thread),
        }
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
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        let _ = super::connect(self.port);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve(listener: &TcpListener, body: &str, requests: &AtomicU64, stopping: &AtomicBool) {
    for stream in listener.incoming() {
        if stopping.load(Ordering::SeqCst) {
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
        let response = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        if stream.write_all(response.as_bytes()).is_ok() {
            requests.fetch_add(1, Ordering::SeqCst);
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
