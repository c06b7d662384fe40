//! Prints, as one JSON object, what meshsight puts on the wire for SOC tools to read, taken from
//! the module itself run in the native proxy-wasm host rather than from its source text:
//! `copy_headers`, the `x-meshsight-mirror-*` headers `dispatch` copies carry when every
//! provenance input is present (mTLS peer, client `x-forwarded-for`, request id, a signature
//! hit, a rule, a cut body); `decision_header`, the header `header` delivery sets for the route;
//! `metrics`, every metric the one-pass plugin defines. `make integrations-check` checks
//! `envoy-config/integrations/` against it (`scripts/check_integrations.py`).
// An example is test code: a failure should stop it loudly.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use proxy_wasm_test_host::Host;

/// Every job on; copies by `dispatch`, a rule that always copies `POST /upload`, a body cut at
/// 8 bytes.
const POLICY: &str = r#"{
  "allowlist": {"mode": "monitor", "rules": [{"name": "any", "methods": ["GET", "POST"], "paths": ["/**"]}]},
  "mirror": {"targets": {"ids": {"cluster": "sensor", "delivery": "dispatch", "max_rps": 1000}},
             "rules": [{"name": "uploads", "request": {"paths": [{"exact": "/upload"}]}, "action": {"type": "always"}}],
             "max_body_bytes": 8},
  "audit": {}
}"#;

/// What `header` delivery sets on the request for the route (the route's match key).
const HEADER_POLICY: &str = r#"{"mirror": {"targets": {"ids": {"cluster": "sensor", "delivery": "header"}}, "rules": [{"name": "all", "action": {"type": "always"}}]}}"#;

fn start(policy: &str) -> Host {
    Host::builder(meshsight::register)
        .plugin_config(policy)
        .time_nanos(1_700_000_000_000_000_000)
        .start()
        .unwrap_or_else(|e| panic!("configure failed: {e}"))
}

/// A request from an mTLS peer that also claims an `x-forwarded-for`.
fn stream(host: &mut Host) -> u32 {
    let id = host.new_http_stream();
    host.set_stream_property(id, &["source", "address"], "10.1.2.3:5555");
    host.set_stream_property(
        id,
        &["connection", "uri_san_peer_certificate"],
        "spiffe://cluster.local/ns/shop/sa/web",
    );
    id
}

fn main() {
    let mut host = start(POLICY);
    let common = [
        (":authority", "shop.example.com"),
        (":scheme", "http"),
        ("x-forwarded-for", "203.0.113.9"),
    ];
    // A signature hit in the head.
    let id = stream(&mut host);
    let mut head = vec![
        (":method", "GET"),
        (":path", "/search?q=${jndi:ldap://x/a}"),
        ("x-request-id", "wire-1"),
    ];
    head.extend_from_slice(&common);
    host.request_headers(id, &head, true);
    // A rule hit whose body is longer than the copy may carry.
    let id = stream(&mut host);
    let mut head = vec![
        (":method", "POST"),
        (":path", "/upload"),
        ("x-request-id", "wire-2"),
        ("content-type", "application/octet-stream"),
    ];
    head.extend_from_slice(&common);
    host.request_headers(id, &head, false);
    host.request_body(id, b"0123456789abcdef", true);
    host.tick();
    let calls = host.http_calls();
    if calls.len() != 2 {
        panic!("expected two dispatch copies, got {}", calls.len());
    }
    let copy_headers: BTreeSet<String> = calls
        .iter()
        .flat_map(|call| {
            call.headers
                .iter()
                .map(|(name, _)| name.to_ascii_lowercase())
        })
        .filter(|name| name.starts_with("x-meshsight-mirror-"))
        .collect();
    let metrics: BTreeSet<String> = host.metrics().into_iter().map(|(name, _)| name).collect();
    // The SDK keeps one dispatcher per thread: one Host at a time.
    drop(host);

    let mut header_host = start(HEADER_POLICY);
    let id = header_host.new_http_stream();
    header_host.request_headers(
        id,
        &[
            (":method", "GET"),
            (":path", "/"),
            (":authority", "shop.example.com"),
            (":scheme", "http"),
        ],
        true,
    );
    let decision_header: Vec<String> = header_host
        .request_header_map(id)
        .into_iter()
        .map(|(name, _)| name)
        .filter(|name| name.starts_with("x-meshsight-mirror"))
        .collect();

    let contract = serde_json::json!({
        "copy_headers": copy_headers,
        "decision_header": decision_header,
        "metrics": metrics,
    });
    println!("{contract:#}");
}
