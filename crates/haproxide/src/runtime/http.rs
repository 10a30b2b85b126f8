//! A small HTTP/1.1 responder for the daemons' own endpoints (`/metrics`,
//! `/healthz`): GET and HEAD only, one request per connection, the request
//! head bounded in size and time, so a slow or odd client costs nothing.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A response: status, content type and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// `200`, `404`, `503`.
    pub status: u16,
    /// The `Content-Type`.
    pub content_type: &'static str,
    /// The body: pieces sent one after the other, shared rather than
    /// copied (a large body is sent from where it already is).
    pub body: Vec<Arc<Vec<u8>>>,
}

impl Response {
    /// A plain-text response.
    pub fn text(status: u16, body: impl Into<String>) -> Response {
        Response {
            status,
            content_type: "text/plain; charset=utf-8",
            body: vec![Arc::new(body.into().into_bytes())],
        }
    }
}

/// What a route is told of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request<'a> {
    /// The method (`GET`), or empty.
    pub method: &'a str,
    /// The path, without the query.
    pub path: &'a str,
    /// The `Accept` header's value, or empty.
    pub accept: &'a str,
}

impl<'a> Request<'a> {
    /// Reads a request head (request line and headers, as the client sent
    /// them, lossily decoded); whatever it holds, a request comes out.
    pub fn parse(head: &'a str) -> Request<'a> {
        let mut lines = head.lines();
        let mut words = lines.next().unwrap_or_default().split_whitespace();
        let (method, target) = (words.next().unwrap_or_default(), words.next().unwrap_or_default());
        // A bare CR inside a line ends the value: it is one line, or nothing.
        let accept = lines
            .take_while(|line| !line.is_empty())
            .filter_map(|line| line.split_once(':'))
            .find(|(name, _)| name.trim().eq_ignore_ascii_case("accept"))
            .map_or("", |(_, value)| value.split('\r').next().unwrap_or_default().trim());
        Request {
            method,
            path: target.split('?').next().unwrap_or_default(),
            accept,
        }
    }
}

/// The longest request head read.
const MAX_HEAD: usize = 8192;
/// How long a client has to send its request head.
const HEAD_TIME: Duration = Duration::from_secs(5);
/// How long a client has to take the whole answer (a scrape of tens of
/// megabytes over a slow link included).
const ANSWER_TIME: Duration = Duration::from_secs(120);

/// The request head, or `None` when the client closes or sends too much.
async fn read_head(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !head.windows(4).any(|window| window == b"\r\n\r\n") && !head.windows(2).any(|window| window == b"\n\n") {
        let read = stream.read(&mut chunk).await.ok()?;
        if read == 0 || head.len() + read > MAX_HEAD {
            return None;
        }
        head.extend_from_slice(&chunk[..read]);
    }
    Some(head)
}

/// Answers every connection of `listener` with `route(request)`, until dropped.
pub async fn serve(listener: TcpListener, route: impl Fn(&Request<'_>) -> Response + Clone + Send + 'static) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let route = route.clone();
        tokio::spawn(async move {
            let _ = tokio::time::timeout(ANSWER_TIME, answer(stream, route)).await;
        });
    }
}

async fn answer(mut stream: TcpStream, route: impl Fn(&Request<'_>) -> Response) -> std::io::Result<()> {
    let Ok(Some(head)) = tokio::time::timeout(HEAD_TIME, read_head(&mut stream)).await else {
        return Ok(());
    };
    let head = String::from_utf8_lossy(&head);
    let request = Request::parse(&head);
    let response = match request.method {
        "GET" | "HEAD" => route(&request),
        _ => Response::text(405, "only GET and HEAD\n"),
    };
    let reason = match response.status {
        200 => "OK",
        404 => "Not Found",
        405 => "Method Not Allowed",
        503 => "Service Unavailable",
        _ => "",
    };
    let head = format!(
        "HTTP/1.1 {} {reason}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        response.status,
        response.content_type,
        response.body.iter().map(|piece| piece.len()).sum::<usize>()
    );
    stream.write_all(head.as_bytes()).await?;
    if request.method != "HEAD" {
        for piece in &response.body {
            stream.write_all(piece).await?;
        }
    }
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_real_prometheus_scrape_request_reads_as_what_it_asks() {
        let head = include_str!("../../../../fixtures/http/prometheus-2.42-scrape-request.txt");
        let request = Request::parse(head);
        assert_eq!(request.method, "GET");
        assert_eq!(request.path, "/metrics");
        assert_eq!(
            request.accept,
            "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
        );
        let odd = Request::parse("get /x?y=1 HTTP/1.0\naccept :  text/plain  \n\nAccept: later\n");
        assert_eq!((odd.method, odd.path, odd.accept), ("get", "/x", "text/plain"));
        assert_eq!(
            Request::parse(""),
            Request {
                method: "",
                path: "",
                accept: ""
            }
        );
        // Found by the http_request fuzz target: a bare CR ends the value.
        assert_eq!(Request::parse("GET / HTTP/1.1\r\nAccept: a\r\0b\r\n\r\n").accept, "a");
    }
}
