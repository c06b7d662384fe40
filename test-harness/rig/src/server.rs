//! The helper servers Envoy talks to in end-to-end tests: an echoing upstream, a sensor that
//! receives mirrored traffic, a collector that receives audit batches and a file host that
//! serves a module to Envoy's remote fetch.
//!
//! Each is a small HTTP/1.1 server on a free `127.0.0.1` port, one thread per connection, that
//! records every request it reads. Keep-alive connections are honoured (Envoy pools them), and
//! stopping a server closes its listener *and* every open connection, so a stopped server looks
//! to Envoy like a dead host rather than a hanging one.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{self, BufReader, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::http::{header_value, read_body, read_head, reason_phrase, request_framing};

/// One request as a helper server read it off the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// Method, as received.
    pub method: String,
    /// Request target, raw, exactly as Envoy sent it.
    pub path: String,
    /// Header fields in arrival order, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// Body bytes (chunked encoding removed).
    pub body: Vec<u8>,
}

impl RecordedRequest {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        header_value(&self.headers, name)
    }

    /// The body as text (lossy UTF-8).
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// What a server does with a request it has read.
enum Reply {
    /// Answer now.
    Respond {
        status: u16,
        content_type: &'static str,
        /// `content-encoding` of the body, when it is compressed.
        encoding: Option<&'static str>,
        body: Vec<u8>,
    },
    /// Answer only once `hold` returns false (or close the connection when the server stops).
    Hold,
}

/// Behaviour hook of one server kind.
trait Handler: Send + Sync + 'static {
    /// Decides the reply; called after the request was recorded.
    fn reply(&self, request: &RecordedRequest) -> Reply;
    /// While true, held requests stay unanswered.
    fn hold(&self) -> bool {
        false
    }
    /// Delay before answering (slow collector).
    fn delay(&self) -> Option<Duration> {
        None
    }
}

/// State shared by a server's threads.
struct Shared {
    requests: Mutex<Vec<RecordedRequest>>,
    accepted: Mutex<Vec<RecordedRequest>>,
    changed: Condvar,
    stopped: AtomicBool,
    connections: Mutex<HashMap<u64, TcpStream>>,
    next_connection: AtomicU64,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking test thread must not hide what the servers recorded.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Shared {
    fn notify(&self) {
        // Take the lock so a waiter cannot miss the wake-up between its check and its wait.
        let _guard = lock(&self.requests);
        self.changed.notify_all();
    }

    /// Waits until `done(requests, accepted)` or `timeout`.
    fn wait_until(
        &self,
        timeout: Duration,
        done: impl Fn(&[RecordedRequest], &[RecordedRequest]) -> bool,
    ) {
        let deadline = Instant::now() + timeout;
        let mut requests = lock(&self.requests);
        loop {
            if done(&requests, &lock(&self.accepted)) {
                return;
            }
            let now = Instant::now();
            if now >= deadline {
                return;
            }
            let wait = (deadline - now).min(Duration::from_millis(100));
            requests = match self.changed.wait_timeout(requests, wait) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
    }
}

/// The generic server behind [`EchoUpstream`], [`Sensor`], [`Collector`] and [`FileServer`].
struct Server {
    port: u16,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl Server {
    /// Binds `127.0.0.1:port` (0: a free port).
    fn bind(port: u16, handler: Arc<dyn Handler>) -> io::Result<Self> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port))?;
        let port = listener.local_addr()?.port();
        let shared = Arc::new(Shared {
            requests: Mutex::new(Vec::new()),
            accepted: Mutex::new(Vec::new()),
            changed: Condvar::new(),
            stopped: AtomicBool::new(false),
            connections: Mutex::new(HashMap::new()),
            next_connection: AtomicU64::new(0),
        });
        let acceptor = {
            let shared = Arc::clone(&shared);
            thread::Builder::new()
                .name(format!("rig-server-{port}"))
                .spawn(move || accept_loop(listener, shared, handler))
                .ok()
        };
        Ok(Self {
            port,
            shared,
            acceptor,
        })
    }

    /// Binds a free port; binding port 0 on loopback failing is a broken machine.
    #[allow(clippy::panic)]
    fn start(handler: Arc<dyn Handler>) -> Self {
        match Self::bind(0, handler) {
            Ok(server) => server,
            Err(err) => panic!("cannot bind a helper server on 127.0.0.1: {err}"),
        }
    }

    fn stop(&mut self) {
        if self.shared.stopped.swap(true, Ordering::SeqCst) {
            return;
        }
        // Wake the blocking accept() so the listener is dropped and the port refuses.
        let _ = TcpStream::connect_timeout(
            &SocketAddr::from((Ipv4Addr::LOCALHOST, self.port)),
            Duration::from_secs(1),
        );
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        for (_, connection) in lock(&self.shared.connections).drain() {
            let _ = connection.shutdown(Shutdown::Both);
        }
        self.shared.notify();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>, handler: Arc<dyn Handler>) {
    for stream in listener.incoming() {
        if shared.stopped.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = stream else { continue };
        // Keep a handle so stop() can shut the connection down under a blocked reader.
        let id = shared.next_connection.fetch_add(1, Ordering::SeqCst);
        if let Ok(clone) = stream.try_clone() {
            lock(&shared.connections).insert(id, clone);
        }
        let shared = Arc::clone(&shared);
        let handler = Arc::clone(&handler);
        let _ = thread::Builder::new()
            .name("rig-connection".to_string())
            .spawn(move || {
                let _ = serve_connection(stream, &shared, handler.as_ref());
                lock(&shared.connections).remove(&id);
            });
    }
}

fn serve_connection(stream: TcpStream, shared: &Shared, handler: &dyn Handler) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    loop {
        let Some(head) = read_head(&mut reader)? else {
            return Ok(());
        };
        let body = read_body(&mut reader, request_framing(&head)?)?;
        let mut parts = head.start_line.splitn(3, ' ');
        let method = parts.next().unwrap_or("").to_string();
        let path = parts.next().unwrap_or("").to_string();
        let close = head
            .header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"));
        let request = RecordedRequest {
            method,
            path,
            headers: head.headers,
            body,
        };
        {
            let mut requests = lock(&shared.requests);
            requests.push(request.clone());
            shared.changed.notify_all();
        }
        // A held request is answered with whatever the behaviour is once the hold ends.
        let (status, content_type, encoding, body) = loop {
            match handler.reply(&request) {
                Reply::Respond {
                    status,
                    content_type,
                    encoding,
                    body,
                } => break (status, content_type, encoding, body),
                Reply::Hold => {
                    while handler.hold() {
                        if shared.stopped.load(Ordering::SeqCst) {
                            return Ok(());
                        }
                        thread::sleep(Duration::from_millis(20));
                    }
                }
            }
        };
        if let Some(delay) = handler.delay() {
            let deadline = Instant::now() + delay;
            while Instant::now() < deadline {
                if shared.stopped.load(Ordering::SeqCst) {
                    return Ok(());
                }
                thread::sleep(Duration::from_millis(10).min(deadline - Instant::now()));
            }
        }
        if shared.stopped.load(Ordering::SeqCst) {
            return Ok(());
        }
        if (200..300).contains(&status) {
            lock(&shared.accepted).push(request.clone());
            shared.notify();
        }
        let head = format!(
            "HTTP/1.1 {status} {}\r\ncontent-type: {content_type}\r\n{}content-length: {}\r\n{}\r\n",
            reason_phrase(status),
            encoding.map_or(String::new(), |e| format!("content-encoding: {e}\r\n")),
            body.len(),
            if close { "connection: close\r\n" } else { "" }
        );
        // One write per response: a head and body in two small writes meet Nagle's algorithm
        // and the peer's delayed ACK, which costs ~40 ms per response on a kept-alive connection.
        let mut response = head.into_bytes();
        // A response to HEAD announces its length but carries no body.
        if !request.method.eq_ignore_ascii_case("HEAD") {
            response.extend_from_slice(&body);
        }
        writer.write_all(&response)?;
        writer.flush()?;
        if close {
            return Ok(());
        }
    }
}

// ---------------------------------------------------------------------------------------------

struct EchoHandler {
    status: AtomicU16,
    /// A canned answer (content type, body) given instead of the echo.
    answer: Mutex<Option<(&'static str, Vec<u8>)>>,
    /// The canned answer's `content-encoding` (its body already encoded).
    encoding: Mutex<Option<&'static str>>,
}

impl Handler for EchoHandler {
    fn reply(&self, request: &RecordedRequest) -> Reply {
        if let Some((content_type, body)) = lock(&self.answer).clone() {
            return Reply::Respond {
                status: self.status.load(Ordering::SeqCst),
                content_type,
                encoding: *lock(&self.encoding),
                body,
            };
        }
        let mut headers = BTreeMap::<String, String>::new();
        for (name, value) in &request.headers {
            headers
                .entry(name.clone())
                .and_modify(|v| {
                    v.push(',');
                    v.push_str(value);
                })
                .or_insert_with(|| value.clone());
        }
        let echo = serde_json::json!({
            "method": request.method,
            "path": request.path,
            "headers": headers,
            "body": request.body_text(),
        });
        Reply::Respond {
            status: self.status.load(Ordering::SeqCst),
            content_type: "application/json",
            encoding: None,
            body: serde_json::to_vec(&echo).unwrap_or_default(),
        }
    }
}

/// The upstream service behind Envoy: answers every request with a JSON echo of what it
/// received, `{"method", "path" (raw), "headers" (object, names lower-cased, repeats joined
/// with ","), "body" (lossy UTF-8)}`, with status 200 unless [`EchoUpstream::set_status`].
pub struct EchoUpstream {
    server: Server,
    handler: Arc<EchoHandler>,
}

impl EchoUpstream {
    /// Starts on `127.0.0.1:port` (0: a free port), e.g. the demo's fixed ports.
    pub fn start_on(port: u16) -> io::Result<Self> {
        let handler = Arc::new(EchoHandler {
            status: AtomicU16::new(200),
            answer: Mutex::new(None),
            encoding: Mutex::new(None),
        });
        let server = Server::bind(port, handler.clone())?;
        Ok(Self { server, handler })
    }

    /// Starts on a free `127.0.0.1` port.
    pub fn start() -> Self {
        let handler = Arc::new(EchoHandler {
            status: AtomicU16::new(200),
            answer: Mutex::new(None),
            encoding: Mutex::new(None),
        });
        let server = Server::start(handler.clone());
        Self { server, handler }
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.server.port
    }

    /// Answers later requests with `status` (the echo body stays the same).
    pub fn set_status(&self, status: u16) {
        self.handler.status.store(status, Ordering::SeqCst);
    }

    /// Answers later requests with this canned body instead of the echo (`None`: the echo
    /// again), e.g. an exploited server's command output or a metadata service's credentials.
    pub fn set_answer(&self, answer: Option<(&'static str, &[u8])>) {
        *lock(&self.handler.answer) = answer.map(|(t, b)| (t, b.to_vec()));
    }

    /// Answers later canned answers with `content-encoding: <encoding>` (their bodies already
    /// encoded), e.g. a gzip-compressed API answer; `None`: no encoding.
    pub fn set_answer_encoding(&self, encoding: Option<&'static str>) {
        *lock(&self.handler.encoding) = encoding;
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.server.shared.requests).clone()
    }

    /// Waits up to `timeout` for at least `n` requests; returns all received so far.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<RecordedRequest> {
        self.server
            .shared
            .wait_until(timeout, |requests, _| requests.len() >= n);
        self.requests()
    }

    /// Stops serving: the port refuses connections and open connections are closed.
    pub fn stop(&mut self) {
        self.server.stop();
    }
}

// ---------------------------------------------------------------------------------------------

struct SensorHandler {
    hang: AtomicBool,
}

impl Handler for SensorHandler {
    fn reply(&self, _request: &RecordedRequest) -> Reply {
        if self.hang.load(Ordering::SeqCst) {
            Reply::Hold
        } else {
            Reply::Respond {
                status: 200,
                content_type: "text/plain",
                encoding: None,
                body: b"sensor ok".to_vec(),
            }
        }
    }

    fn hold(&self) -> bool {
        self.hang.load(Ordering::SeqCst)
    }
}

/// The IDS/SOC sensor that mirrored traffic is sent to: records every request and answers 200,
/// or holds requests unanswered ([`Sensor::set_hang`]), or is gone ([`Sensor::stop`]).
pub struct Sensor {
    server: Server,
    handler: Arc<SensorHandler>,
}

impl Sensor {
    /// Starts on `127.0.0.1:port` (0: a free port), e.g. the demo's fixed ports.
    pub fn start_on(port: u16) -> io::Result<Self> {
        let handler = Arc::new(SensorHandler {
            hang: AtomicBool::new(false),
        });
        let server = Server::bind(port, handler.clone())?;
        Ok(Self { server, handler })
    }

    /// Starts on a free `127.0.0.1` port.
    pub fn start() -> Self {
        let handler = Arc::new(SensorHandler {
            hang: AtomicBool::new(false),
        });
        let server = Server::start(handler.clone());
        Self { server, handler }
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.server.port
    }

    /// While `true`, requests are recorded but never answered; `false` releases held ones.
    pub fn set_hang(&self, hang: bool) {
        self.handler.hang.store(hang, Ordering::SeqCst);
    }

    /// Stops the sensor: the port then refuses connections, open connections are closed.
    pub fn stop(&mut self) {
        self.server.stop();
    }

    /// Every request received so far (including held ones), in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.server.shared.requests).clone()
    }

    /// The `x-request-id` of every copy received so far: which requests were copied.
    pub fn request_ids(&self) -> BTreeSet<String> {
        self.requests()
            .iter()
            .filter_map(|r| r.header("x-request-id").map(str::to_string))
            .collect()
    }

    /// Waits up to `timeout` for at least `n` requests; returns all received so far.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<RecordedRequest> {
        self.server
            .shared
            .wait_until(timeout, |requests, _| requests.len() >= n);
        self.requests()
    }
}

// ---------------------------------------------------------------------------------------------

/// How the [`Collector`] answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CollectorBehavior {
    /// 200 at once: the batch is accepted.
    Ok,
    /// Answer with this status (e.g. 503): the batch is refused.
    Fail(u16),
    /// Never answer (until the behaviour changes or the collector stops).
    Hang,
    /// Accept with 200 after this delay.
    Slow(Duration),
}

struct CollectorHandler {
    behavior: Mutex<CollectorBehavior>,
}

impl CollectorHandler {
    fn behavior(&self) -> CollectorBehavior {
        *lock(&self.behavior)
    }
}

impl Handler for CollectorHandler {
    fn reply(&self, _request: &RecordedRequest) -> Reply {
        match self.behavior() {
            CollectorBehavior::Fail(status) => Reply::Respond {
                status,
                content_type: "text/plain",
                encoding: None,
                body: b"collector refuses".to_vec(),
            },
            CollectorBehavior::Hang => Reply::Hold,
            CollectorBehavior::Ok | CollectorBehavior::Slow(_) => Reply::Respond {
                status: 200,
                content_type: "text/plain",
                encoding: None,
                body: b"accepted".to_vec(),
            },
        }
    }

    fn hold(&self) -> bool {
        self.behavior() == CollectorBehavior::Hang
    }

    fn delay(&self) -> Option<Duration> {
        match self.behavior() {
            CollectorBehavior::Slow(delay) => Some(delay),
            _ => None,
        }
    }
}

/// The audit collector: records every request; a POST answered with 2xx counts as an accepted
/// batch ([`Collector::bodies`]). Its answer is set with [`Collector::set_behavior`].
pub struct Collector {
    server: Server,
    handler: Arc<CollectorHandler>,
}

impl Collector {
    /// Starts on `127.0.0.1:port` (0: a free port), e.g. the demo's fixed ports.
    pub fn start_on(port: u16) -> io::Result<Self> {
        let handler = Arc::new(CollectorHandler {
            behavior: Mutex::new(CollectorBehavior::Ok),
        });
        let server = Server::bind(port, handler.clone())?;
        Ok(Self { server, handler })
    }

    /// Starts on a free `127.0.0.1` port, accepting (`CollectorBehavior::Ok`).
    pub fn start() -> Self {
        let handler = Arc::new(CollectorHandler {
            behavior: Mutex::new(CollectorBehavior::Ok),
        });
        let server = Server::start(handler.clone());
        Self { server, handler }
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.server.port
    }

    /// Changes how later (and currently held) requests are answered.
    pub fn set_behavior(&self, behavior: CollectorBehavior) {
        *lock(&self.handler.behavior) = behavior;
    }

    /// Stops the collector: the port then refuses connections, open connections are closed.
    pub fn stop(&mut self) {
        self.server.stop();
    }

    /// Every request received so far, accepted or not, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.server.shared.requests).clone()
    }

    /// Bodies of the POSTs the collector accepted (answered 2xx), in order.
    pub fn bodies(&self) -> Vec<Vec<u8>> {
        lock(&self.server.shared.accepted)
            .iter()
            .filter(|r| r.method.eq_ignore_ascii_case("POST"))
            .map(|r| r.body.clone())
            .collect()
    }

    /// The NDJSON records of the accepted bodies by `metadata.uid` (an audit record's request
    /// id), waiting up to `timeout` until every id in `ids` has one; `Err` names the first line
    /// that is not JSON.
    pub fn wait_for_records(
        &self,
        ids: &[String],
        timeout: Duration,
    ) -> Result<BTreeMap<String, serde_json::Value>, String> {
        let deadline = Instant::now() + timeout;
        loop {
            let mut records = BTreeMap::new();
            for body in self.bodies() {
                for line in String::from_utf8_lossy(&body)
                    .lines()
                    .filter(|l| !l.is_empty())
                {
                    let record: serde_json::Value = serde_json::from_str(line)
                        .map_err(|e| format!("collector got a non-JSON line ({e}): {line}"))?;
                    if let Some(uid) = record["metadata"]["uid"].as_str() {
                        records.insert(uid.to_string(), record);
                    }
                }
            }
            if Instant::now() >= deadline || ids.iter().all(|id| records.contains_key(id)) {
                return Ok(records);
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits up to `timeout` for at least `n` accepted bodies; returns all accepted so far.
    pub fn wait_for_bodies(&self, n: usize, timeout: Duration) -> Vec<Vec<u8>> {
        self.server.shared.wait_until(timeout, |_, accepted| {
            accepted
                .iter()
                .filter(|r| r.method.eq_ignore_ascii_case("POST"))
                .count()
                >= n
        });
        self.bodies()
    }

    /// Waits up to `timeout` for at least `n` requests (accepted or not); returns all so far.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<RecordedRequest> {
        self.server
            .shared
            .wait_until(timeout, |requests, _| requests.len() >= n);
        self.requests()
    }
}

// ---------------------------------------------------------------------------------------------

struct FileHandler {
    path: String,
    content_type: &'static str,
    body: Vec<u8>,
}

impl Handler for FileHandler {
    fn reply(&self, request: &RecordedRequest) -> Reply {
        let found = request.path == self.path
            && (request.method.eq_ignore_ascii_case("GET")
                || request.method.eq_ignore_ascii_case("HEAD"));
        if found {
            Reply::Respond {
                status: 200,
                content_type: self.content_type,
                encoding: None,
                body: self.body.clone(),
            }
        } else {
            Reply::Respond {
                status: 404,
                content_type: "text/plain",
                encoding: None,
                body: b"not found".to_vec(),
            }
        }
    }
}

/// A static file host (what Envoy's `vm_config.code.remote` fetches from): `GET <path>` answers
/// 200 with the bytes, anything else 404; every request is recorded.
pub struct FileServer {
    server: Server,
    path: String,
}

impl FileServer {
    /// Serves `body` as `content_type` at `path` (e.g. `/meshsight.wasm`) on a free port.
    pub fn start(path: &str, content_type: &'static str, body: Vec<u8>) -> Self {
        let handler = Arc::new(FileHandler {
            path: path.to_string(),
            content_type,
            body,
        });
        Self {
            server: Server::start(handler),
            path: path.to_string(),
        }
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.server.port
    }

    /// `http://127.0.0.1:<port><path>`, the file's URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}{}", self.server.port, self.path)
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.server.shared.requests).clone()
    }

    /// How many requests fetched the file (answered 200) so far.
    pub fn fetches(&self) -> usize {
        lock(&self.server.shared.accepted).len()
    }

    /// Waits up to `timeout` until the file was fetched at least `n` times; returns the count.
    pub fn wait_for_fetches(&self, n: usize, timeout: Duration) -> usize {
        self.server
            .shared
            .wait_until(timeout, |_, accepted| accepted.len() >= n);
        self.fetches()
    }
}

/// The SHA-256 of `bytes` as lower-case hex (what `code.remote.sha256` expects), computed by
/// coreutils' `sha256sum`, an implementation the test does not share with Envoy.
pub fn sha256_hex(bytes: &[u8]) -> io::Result<String> {
    use std::process::{Command, Stdio};
    let mut child = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    // sha256sum prints only at EOF: writing everything before reading cannot deadlock.
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(bytes)?;
    }
    let output = child.wait_with_output()?;
    let text = String::from_utf8_lossy(&output.stdout);
    let hex = text.split_whitespace().next().unwrap_or("");
    if output.status.success() && hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(hex.to_string())
    } else {
        Err(io::Error::other(format!("sha256sum printed {text:?}")))
    }
}
