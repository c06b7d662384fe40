//! A raw HTTP/1.1 client: the request target is written byte for byte, never normalized, so
//! tests can send `/a/%2e%2e/b`, `//x`, `/a;b` or non-UTF-8 bytes and see what Envoy does.

use std::io::{self, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;

use super::http::{header_value, read_body, read_head, response_framing};

/// How long [`send`] waits for connect, write and the whole response unless told otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);

/// An HTTP/1.1 request to send with [`send`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// Method, sent as is (`GET`).
    pub method: String,
    /// Request target, sent byte for byte (it may be invalid UTF-8 or contain anything but
    /// CR/LF if a test wants that).
    pub target: Vec<u8>,
    /// Header fields in sending order. `host` defaults to `localhost` when absent;
    /// `content-length` is added for a non-empty body unless `content-length` or
    /// `transfer-encoding` is set; `connection: close` is added unless `connection` is set.
    pub headers: Vec<(String, String)>,
    /// Body bytes, sent as is.
    pub body: Vec<u8>,
    /// Deadline for connecting, writing and reading the response.
    pub timeout: Duration,
}

impl HttpRequest {
    /// A request with `method` and raw `target`.
    pub fn new(method: &str, target: impl AsRef<[u8]>) -> Self {
        Self {
            method: method.to_string(),
            target: target.as_ref().to_vec(),
            headers: Vec::new(),
            body: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// `GET target`.
    pub fn get(target: impl AsRef<[u8]>) -> Self {
        Self::new("GET", target)
    }

    /// `POST target`.
    pub fn post(target: impl AsRef<[u8]>) -> Self {
        Self::new("POST", target)
    }

    /// Adds a header field (kept in order; repeated names are sent repeatedly).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl AsRef<[u8]>) -> Self {
        self.body = body.as_ref().to_vec();
        self
    }

    /// Sets the deadline for the whole exchange.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The bytes put on the wire.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256 + self.body.len());
        out.extend_from_slice(self.method.as_bytes());
        out.push(b' ');
        out.extend_from_slice(&self.target);
        out.extend_from_slice(b" HTTP/1.1\r\n");
        let has = |name: &str| header_value(&self.headers, name).is_some();
        if !has("host") {
            out.extend_from_slice(b"host: localhost\r\n");
        }
        for (name, value) in &self.headers {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        let needs_length =
            !self.body.is_empty() || matches!(self.method.as_str(), "POST" | "PUT" | "PATCH");
        if needs_length && !has("content-length") && !has("transfer-encoding") {
            out.extend_from_slice(format!("content-length: {}\r\n", self.body.len()).as_bytes());
        }
        if !has("connection") {
            out.extend_from_slice(b"connection: close\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.body);
        out
    }
}

/// A response read by [`send`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Header fields in arrival order, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// Body bytes (chunked encoding removed).
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        header_value(&self.headers, name)
    }

    /// The body as text (lossy UTF-8).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON.
    pub fn json(&self) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }
}

/// Sends `request` to `127.0.0.1:port` and reads the response.
///
/// # Panics
/// When the exchange fails (connection refused, timeout, malformed response): in a test that is
/// the failure to report. Use [`try_send`] to handle the error.
#[allow(clippy::panic)]
pub fn send(port: u16, request: &HttpRequest) -> HttpResponse {
    match try_send(port, request) {
        Ok(response) => response,
        Err(err) => panic!(
            "HTTP {} {} to 127.0.0.1:{port} failed: {err}",
            request.method,
            String::from_utf8_lossy(&request.target)
        ),
    }
}

/// Sends `request` to `127.0.0.1:port` and reads the response.
pub fn try_send(port: u16, request: &HttpRequest) -> io::Result<HttpResponse> {
    try_send_raw(port, &request.method, &request.to_bytes(), request.timeout)
}

/// Writes `bytes` verbatim to `127.0.0.1:port` and reads one response to a request with
/// `method` (which decides whether a body follows). For requests [`HttpRequest`] cannot build.
pub fn try_send_raw(
    port: u16,
    method: &str,
    bytes: &[u8],
    timeout: Duration,
) -> io::Result<HttpResponse> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    stream.set_nodelay(true)?;
    stream.write_all(bytes)?;
    stream.flush()?;
    let mut reader = BufReader::new(stream);
    loop {
        let head = read_head(&mut reader)?.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed before a response",
            )
        })?;
        let status = parse_status(&head.start_line)?;
        if (100..200).contains(&status) && status != 101 {
            // 100 Continue and friends: the real response follows.
            continue;
        }
        let body = read_body(&mut reader, response_framing(&head, method, status)?)?;
        return Ok(HttpResponse {
            status,
            headers: head.headers,
            body,
        });
    }
}

fn parse_status(line: &str) -> io::Result<u16> {
    let mut parts = line.split_whitespace();
    let version = parts.next().unwrap_or("");
    let code = parts.next().unwrap_or("");
    if !version.starts_with("HTTP/1.") {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("not an HTTP/1.x status line: {line:?}"),
        ));
    }
    code.parse().map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("bad status line: {line:?}"),
        )
    })
}
