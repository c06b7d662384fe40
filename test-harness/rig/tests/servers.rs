//! The rig's helper servers and raw client, without Envoy: what a server records is exactly
//! what arrived on the wire, and each behaviour (status, hang, stop, fail, slow) holds.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::Duration;

use meshsight_rig::{
    send, sha256_hex, try_send, try_send_raw, Collector, CollectorBehavior, EchoUpstream,
    FileServer, HttpRequest, Sensor,
};

const WAIT: Duration = Duration::from_secs(10);

#[test]
fn echo_upstream_echoes_the_raw_request() {
    let upstream = EchoUpstream::start();
    let target = "/a/%2e%2E/b//c;x?q=%41&r";
    let response = send(
        upstream.port(),
        &HttpRequest::post(target)
            .header("host", "example.com")
            .header("x-one", "1")
            .header("x-one", "2")
            .body("hello body"),
    );
    assert_eq!(response.status, 200);
    assert_eq!(response.header("content-type"), Some("application/json"));
    let echo = response.json().expect("echo is JSON");
    assert_eq!(echo["method"], "POST");
    assert_eq!(echo["path"], target);
    assert_eq!(echo["headers"]["host"], "example.com");
    assert_eq!(echo["headers"]["x-one"], "1,2");
    assert_eq!(echo["body"], "hello body");

    let recorded = upstream.requests();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].method, "POST");
    assert_eq!(recorded[0].path, target);
    assert_eq!(recorded[0].header("X-One"), Some("1"));
    assert_eq!(recorded[0].body, b"hello body");
}

#[test]
fn echo_upstream_answers_with_the_status_it_is_told() {
    let upstream = EchoUpstream::start();
    upstream.set_status(503);
    let response = send(upstream.port(), &HttpRequest::get("/x"));
    assert_eq!(response.status, 503);
    assert_eq!(response.json().expect("json")["path"], "/x");
    upstream.set_status(200);
    assert_eq!(send(upstream.port(), &HttpRequest::get("/y")).status, 200);
    assert_eq!(upstream.wait_for(2, WAIT).len(), 2);
}

#[test]
fn servers_decode_chunked_bodies_and_keep_connections_alive() {
    let upstream = EchoUpstream::start();
    let mut stream = TcpStream::connect(("127.0.0.1", upstream.port())).expect("connect");
    stream.set_read_timeout(Some(WAIT)).expect("read timeout");
    stream
        .write_all(
            b"POST /one HTTP/1.1\r\nhost: h\r\ntransfer-encoding: chunked\r\n\r\n\
              5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nx-trailer: t\r\n\r\n\
              GET /two HTTP/1.1\r\nhost: h\r\nconnection: close\r\n\r\n",
        )
        .expect("write");
    let mut all = String::new();
    BufReader::new(stream)
        .read_to_string(&mut all)
        .expect("read both responses");
    assert_eq!(all.matches("HTTP/1.1 200 OK").count(), 2, "{all}");
    let recorded = upstream.requests();
    assert_eq!(recorded.len(), 2);
    assert_eq!(recorded[0].body, b"hello world");
    assert_eq!(recorded[1].path, "/two");
}

#[test]
fn client_sends_the_target_byte_for_byte_and_fills_defaults() {
    let request = HttpRequest::post(b"/%2F/\xff/..".as_slice()).body("abc");
    let bytes = request.to_bytes();
    let text = String::from_utf8_lossy(&bytes);
    assert!(
        bytes.starts_with(b"POST /%2F/\xff/.. HTTP/1.1\r\n"),
        "{text}"
    );
    assert!(text.contains("host: localhost\r\n"), "{text}");
    assert!(text.contains("content-length: 3\r\n"), "{text}");
    assert!(text.contains("connection: close\r\n"), "{text}");
    assert!(text.ends_with("\r\n\r\nabc"), "{text}");

    let custom = HttpRequest::get("/x")
        .header("Host", "a.example")
        .header("connection", "keep-alive")
        .to_bytes();
    let custom = String::from_utf8_lossy(&custom);
    assert!(!custom.contains("localhost"), "{custom}");
    assert!(!custom.contains("close"), "{custom}");
    assert!(!custom.contains("content-length"), "{custom}");

    let upstream = EchoUpstream::start();
    let response = try_send_raw(
        upstream.port(),
        "GET",
        b"GET /raw%00/x HTTP/1.1\r\nhost: h\r\nconnection: close\r\n\r\n",
        WAIT,
    )
    .expect("raw exchange");
    assert_eq!(response.status, 200);
    assert_eq!(upstream.requests()[0].path, "/raw%00/x");
}

#[test]
fn sensor_records_hangs_and_releases() {
    let sensor = Sensor::start();
    assert_eq!(send(sensor.port(), &HttpRequest::get("/m1")).status, 200);
    assert_eq!(sensor.wait_for(1, WAIT)[0].path, "/m1");

    sensor.set_hang(true);
    let timed_out = try_send(
        sensor.port(),
        &HttpRequest::get("/held").timeout(Duration::from_millis(300)),
    );
    assert!(
        timed_out.is_err(),
        "a hanging sensor must not answer: {timed_out:?}"
    );
    assert_eq!(
        sensor.requests().len(),
        2,
        "held requests are still recorded"
    );

    let port = sensor.port();
    let held = thread::spawn(move || try_send(port, &HttpRequest::get("/released")));
    assert_eq!(sensor.wait_for(3, WAIT).len(), 3);
    sensor.set_hang(false);
    let released = held
        .join()
        .expect("client thread")
        .expect("answered once released");
    assert_eq!(released.status, 200);
}

#[test]
fn stopped_sensor_refuses_and_closes_open_connections() {
    let mut sensor = Sensor::start();
    let port = sensor.port();
    // An idle keep-alive connection, as Envoy would pool it.
    let mut pooled = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    pooled
        .write_all(b"GET /first HTTP/1.1\r\nhost: h\r\n\r\n")
        .expect("write");
    pooled.set_read_timeout(Some(WAIT)).expect("timeout");
    let mut reader = BufReader::new(pooled.try_clone().expect("clone"));
    let mut status_line = String::new();
    reader.read_line(&mut status_line).expect("status line");
    assert!(status_line.starts_with("HTTP/1.1 200"), "{status_line}");
    assert_eq!(sensor.wait_for(1, WAIT).len(), 1);

    sensor.stop();
    let refused = try_send(
        port,
        &HttpRequest::get("/after").timeout(Duration::from_secs(2)),
    );
    assert!(
        refused.is_err(),
        "a stopped sensor must refuse: {refused:?}"
    );
    // The pooled connection was closed by the server: reading drains the rest then hits EOF.
    let mut rest = Vec::new();
    let eof = reader.read_to_end(&mut rest);
    assert!(eof.is_ok(), "{eof:?}");
    assert_eq!(sensor.requests().len(), 1);
}

#[test]
fn collector_accepts_fails_hangs_and_slows() {
    let collector = Collector::start();
    let port = collector.port();
    let post = |body: &str| HttpRequest::post("/v1/audit").body(body).timeout(WAIT);

    assert_eq!(send(port, &post("batch-1")).status, 200);

    collector.set_behavior(CollectorBehavior::Fail(503));
    assert_eq!(send(port, &post("refused")).status, 503);

    collector.set_behavior(CollectorBehavior::Slow(Duration::from_millis(200)));
    assert_eq!(send(port, &post("batch-2")).status, 200);

    collector.set_behavior(CollectorBehavior::Hang);
    let held = thread::spawn(move || try_send(port, &post("batch-3")));
    assert_eq!(collector.wait_for(4, WAIT).len(), 4);
    assert_eq!(
        collector.bodies().len(),
        2,
        "a held batch is not accepted yet"
    );
    collector.set_behavior(CollectorBehavior::Ok);
    assert_eq!(held.join().expect("thread").expect("answered").status, 200);

    let bodies = collector.wait_for_bodies(3, WAIT);
    assert_eq!(
        bodies,
        vec![
            b"batch-1".to_vec(),
            b"batch-2".to_vec(),
            b"batch-3".to_vec()
        ]
    );
    let methods_paths: Vec<_> = collector
        .requests()
        .into_iter()
        .map(|r| (r.body_text(), r.method, r.path))
        .collect();
    assert_eq!(methods_paths[1].0, "refused");
    assert!(methods_paths
        .iter()
        .all(|(_, m, p)| m == "POST" && p == "/v1/audit"));
}

#[test]
fn held_collector_request_gets_the_new_behaviour() {
    let collector = Collector::start();
    let port = collector.port();
    collector.set_behavior(CollectorBehavior::Hang);
    let held =
        thread::spawn(move || try_send(port, &HttpRequest::post("/b").body("x").timeout(WAIT)));
    assert_eq!(collector.wait_for(1, WAIT).len(), 1);
    collector.set_behavior(CollectorBehavior::Fail(500));
    assert_eq!(held.join().expect("thread").expect("answered").status, 500);
    assert!(collector.bodies().is_empty());
}

#[test]
fn head_responses_carry_no_body_and_keep_the_connection_usable() {
    let upstream = EchoUpstream::start();
    let mut stream = TcpStream::connect(("127.0.0.1", upstream.port())).expect("connect");
    stream.set_read_timeout(Some(WAIT)).expect("read timeout");
    stream
        .write_all(
            b"HEAD /h HTTP/1.1\r\nhost: h\r\n\r\nGET /after HTTP/1.1\r\nhost: h\r\nconnection: close\r\n\r\n",
        )
        .expect("write");
    let mut all = String::new();
    BufReader::new(stream)
        .read_to_string(&mut all)
        .expect("read both responses");
    let (head, get) = all.split_once("\r\n\r\n").expect("head response");
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{all}");
    assert!(head.contains("content-length:"), "{all}");
    assert!(
        get.starts_with("HTTP/1.1 200 OK"),
        "the GET follows at once: {all}"
    );
    assert!(get.contains("\"path\":\"/after\""), "{all}");
}

#[test]
fn file_server_serves_its_one_file_and_counts_fetches() {
    let body = b"\0asm\x01\0\0\0 module bytes".to_vec();
    let server = FileServer::start("/meshsight.wasm", "application/wasm", body.clone());
    assert_eq!(
        server.url(),
        format!("http://127.0.0.1:{}/meshsight.wasm", server.port())
    );
    let got = send(server.port(), &HttpRequest::get("/meshsight.wasm"));
    assert_eq!(got.status, 200);
    assert_eq!(got.header("content-type"), Some("application/wasm"));
    assert_eq!(got.body, body);
    let missing = send(server.port(), &HttpRequest::get("/other.wasm"));
    assert_eq!(missing.status, 404);
    let post = send(server.port(), &HttpRequest::post("/meshsight.wasm"));
    assert_eq!(post.status, 404, "only GET and HEAD fetch");
    assert_eq!(server.wait_for_fetches(1, WAIT), 1);
    let paths: Vec<String> = server.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, ["/meshsight.wasm", "/other.wasm", "/meshsight.wasm"]);
}

#[test]
fn sha256_hex_matches_the_published_test_vectors() {
    // FIPS 180-2 examples: "abc" and the empty message.
    assert_eq!(
        sha256_hex(b"abc").unwrap(),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    assert_eq!(
        sha256_hex(b"").unwrap(),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
}
