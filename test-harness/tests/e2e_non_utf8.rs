#![cfg(feature = "e2e")]
//! A header value that is not UTF-8 (HTTP/1.1 allows obs-text bytes in values, and Envoy passes
//! them on) must not abort a filter's VM: the proxy-wasm SDK's string header accessors panic on
//! such bytes, and a panicked VM fails every later request on that worker.

use std::time::Duration;

use meshsight_test_harness::rig::{try_send_raw, Collector, EchoUpstream, Envoy, Sensor};

const ALLOWLIST: &str =
    r#"{"mode": "enforce", "rules": [{"name": "api", "methods": ["GET"], "paths": ["/api/**"]}]}"#;

const MIRROR: &str = r#"{
  "targets": {"sensor": {"cluster": "sensor", "delivery": "header", "max_rps": 1000}},
  "rules": [{"name": "orders", "request": {"paths": [{"prefix": "/api/orders"}]}, "action": {"type": "always"}}]
}"#;

const AUDIT: &str = r#"{"format": "ocsf", "sink": {"http": {"cluster": "collector", "path": "/v1/audit", "flush_interval_ms": 200}}}"#;

#[test]
fn a_latin1_header_value_passes_the_chain_and_later_requests_still_pass() {
    let upstream = EchoUpstream::start();
    let sensor = Sensor::start();
    let collector = Collector::start();
    let envoy = Envoy::builder("envoy-config/e2e/chain.yaml")
        .upstream(&upstream)
        .sensor(&sensor)
        .collector(&collector)
        .var("ALLOWLIST_CONFIG", ALLOWLIST)
        .var("MIRROR_CONFIG", MIRROR)
        .var("AUDIT_CONFIG", AUDIT)
        .start()
        .unwrap_or_else(|err| panic!("the chain must start: {err}"));
    let timeout = Duration::from_secs(10);
    let requests: [&[u8]; 3] = [
        b"GET /api/orders/1 HTTP/1.1\r\nhost: shop\r\nuser-agent: caf\xe9\r\n\r\n",
        b"GET /api/orders/2 HTTP/1.1\r\nhost: shop\r\nx-meshsight-mirror: \xff\r\n\r\n",
        b"GET /api/orders/3 HTTP/1.1\r\nhost: shop\r\n\r\n",
    ];
    for (i, bytes) in requests.iter().enumerate() {
        let response = try_send_raw(envoy.port(), "GET", bytes, timeout)
            .unwrap_or_else(|err| panic!("request {i}: no response: {err}"));
        assert_eq!(
            response.status,
            200,
            "request {i} answered {}; Envoy log:\n{}",
            response.status,
            envoy.log()
        );
    }
    let log = envoy.log();
    assert!(
        !log.contains("panicked"),
        "a filter panicked; Envoy log:\n{log}"
    );
    assert_eq!(
        upstream.requests().len(),
        3,
        "every request reached the upstream"
    );
}
