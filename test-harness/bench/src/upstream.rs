//! The bench's upstream: a minimal HTTP/1.1 keep-alive server on `127.0.0.1` that answers every
//! request with the same JSON body (a small one, or the one a scenario gives it) in one write,
//! with `TCP_NODELAY`.
//!
//! The rig's [`meshsight_rig::EchoUpstream`] records every request and echoes it back; that is what
//! tests want, but at bench rates it grows without bound and its separate head and body writes
//! meet delayed ACKs (about 40 ms per response on a reused connection). The bench measures Envoy
//! and the filters, so the upstream must cost as little as possible.

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// The body of every answer unless a scenario gives one ([`BenchUpstream::start_answering`]).
pub const BODY: &[u8] = br#"{"upstream":"meshsight-bench","ok":true}"#;

/// Largest request head accepted (a bench request is a few hundred bytes).
const MAX_HEAD_BYTES: usize = 64 * 1024;

struct Shared {
    answer: Vec<u8>,
    stopped: AtomicBool,
    requests: AtomicU64,
    body_bytes: AtomicU64,
    connections: Mutex<HashMap<u64, TcpStream>>,
    next_connection: AtomicU64,
}

/// A running bench upstream; dropping it stops it.
pub struct BenchUpstream {
    port: u16,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl BenchUpstream {
    /// Starts on a free `127.0.0.1` port, answering [`BODY`].
    pub fn start() -> io::Result<Self> {
        Self::start_answering(BODY)
    }

    /// Starts on a free `127.0.0.1` port, answering every request with `body`
    /// (`application/json`).
    pub fn start_answering(body: &[u8]) -> io::Result<Self> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        let port = listener.local_addr()?.port();
        let mut answer = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        answer.extend_from_slice(body);
        let shared = Arc::new(Shared {
            answer,
            stopped: AtomicBool::new(false),
            requests: AtomicU64::new(0),
            body_bytes: AtomicU64::new(0),
            connections: Mutex::new(HashMap::new()),
            next_connection: AtomicU64::new(0),
        });
        let acceptor = {
            let shared = Arc::clone(&shared);
            thread::Builder::new()
                .name(format!("bench-upstream-{port}"))
                .spawn(move || accept_loop(listener, &shared))?
        };
        Ok(Self {
            port,
            shared,
            acceptor: Some(acceptor),
        })
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Requests answered so far.
    pub fn requests(&self) -> u64 {
        self.shared.requests.load(Ordering::Relaxed)
    }

    /// Request-body bytes read so far (what Envoy passed on).
    pub fn body_bytes(&self) -> u64 {
        self.shared.body_bytes.load(Ordering::Relaxed)
    }
}

impl Drop for BenchUpstream {
    fn drop(&mut self) {
        self.shared.stopped.store(true, Ordering::SeqCst);
        // Wake the blocking accept() so the listener closes.
        let _ = TcpStream::connect_timeout(
            &SocketAddr::from((Ipv4Addr::LOCALHOST, self.port)),
            Duration::from_secs(1),
        );
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        let connections = match self.shared.connections.lock() {
            Ok(mut map) => map.drain().map(|(_, c)| c).collect::<Vec<_>>(),
            Err(poisoned) => poisoned.into_inner().drain().map(|(_, c)| c).collect(),
        };
        for connection in connections {
            let _ = connection.shutdown(Shutdown::Both);
        }
    }
}

fn accept_loop(listener: TcpListener, shared: &Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.stopped.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = stream else { continue };
        let _ = stream.set_nodelay(true);
        let id = shared.next_connection.fetch_add(1, Ordering::Relaxed);
        if let (Ok(clone), Ok(mut map)) = (stream.try_clone(), shared.connections.lock()) {
            map.insert(id, clone);
        }
        let shared = Arc::clone(shared);
        let _ = thread::Builder::new()
            .name("bench-upstream-connection".to_string())
            .spawn(move || {
                let _ = serve(stream, &shared);
                if let Ok(mut map) = shared.connections.lock() {
                    map.remove(&id);
                }
            });
    }
}

/// Serves one keep-alive connection until the peer closes it or sends something unexpected.
fn serve(stream: TcpStream, shared: &Shared) -> io::Result<()> {
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    loop {
        // Request head: the start line, then header lines up to an empty line.
        let mut head_bytes = 0;
        let mut content_length: u64 = 0;
        let mut close = false;
        let mut first = true;
        loop {
            line.clear();
            let n = reader.read_line(&mut line)?;
            if n == 0 {
                return Ok(());
            }
            head_bytes += n;
            if head_bytes > MAX_HEAD_BYTES {
                return Ok(());
            }
            let trimmed = line.trim_end();
            if first {
                first = false;
                continue;
            }
            if trimmed.is_empty() {
                break;
            }
            let Some((name, value)) = trimmed.split_once(':') else {
                return Ok(());
            };
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                content_length = value.parse().unwrap_or(0);
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                // Bench requests carry no chunked bodies; refuse rather than misparse.
                writer.write_all(b"HTTP/1.1 501 Not Implemented\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")?;
                return Ok(());
            } else if name.eq_ignore_ascii_case("connection") {
                close = value.eq_ignore_ascii_case("close");
            }
        }
        if content_length > 0 {
            let read = io::copy(&mut (&mut reader).take(content_length), &mut io::sink())?;
            shared.body_bytes.fetch_add(read, Ordering::Relaxed);
        }
        // Counted before the answer leaves, so a client that has its answer sees it counted.
        shared.requests.fetch_add(1, Ordering::Relaxed);
        writer.write_all(&shared.answer)?;
        if close || shared.stopped.load(Ordering::Relaxed) {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use meshsight_rig::{try_send, HttpRequest};

    #[test]
    fn answers_every_request_on_one_connection_and_counts_them() {
        let upstream = BenchUpstream::start().unwrap();
        let mut stream = TcpStream::connect(("127.0.0.1", upstream.port())).unwrap();
        stream
            .write_all(b"GET /a HTTP/1.1\r\nhost: x\r\n\r\nPOST /b HTTP/1.1\r\nhost: x\r\ncontent-length: 3\r\n\r\nabc")
            .unwrap();
        let mut reader = BufReader::new(stream);
        for _ in 0..2 {
            let mut status = String::new();
            reader.read_line(&mut status).unwrap();
            assert_eq!(status, "HTTP/1.1 200 OK\r\n");
            let mut length = 0;
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if line == "\r\n" {
                    break;
                }
                if let Some(v) = line.strip_prefix("content-length: ") {
                    length = v.trim().parse().unwrap();
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            assert_eq!(body, BODY);
        }
        assert_eq!(upstream.requests(), 2);
    }

    #[test]
    fn a_request_with_connection_close_gets_its_answer() {
        let upstream = BenchUpstream::start().unwrap();
        let response = try_send(upstream.port(), &HttpRequest::get("/x")).unwrap();
        assert_eq!(response.status, 200);
        assert_eq!(response.body, BODY);
    }

    #[test]
    fn answers_with_the_body_it_was_given_after_reading_a_request_body() {
        let answer = crate::bodies::ordinary_json(16_384);
        let upstream = BenchUpstream::start_answering(&answer).unwrap();
        let upload = crate::bodies::multipart_upload(65_536);
        let response = try_send(
            upstream.port(),
            &HttpRequest::post("/upload")
                .header("content-type", &crate::bodies::multipart_content_type())
                .body(&upload),
        )
        .unwrap();
        assert_eq!(response.status, 200);
        assert_eq!(response.body, answer);
        assert_eq!(upstream.requests(), 1);
        assert_eq!(upstream.body_bytes(), 65_536);
    }
}
