//! The allowlist filter driven through the native proxy-wasm host: every policy feature, both
//! modes, the normalization table, bad policies, the decision in filter state and the counters.

// Test helpers (not `#[test]` fns themselves) fail the test by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod stats;
use meshsight_policy::decision::{
    AllowlistDecision, AllowlistOutcome, ALLOWLIST_DECISION_PROPERTY,
};
use proxy_wasm_test_host::{Action, Host, LogLevel};
use stats::counter;

const POLICY: &str = r#"{
  "rules": [
    {"name": "api-read", "methods": ["GET", "HEAD"], "paths": ["/api/**"]},
    {"name": "api-write", "methods": ["POST"], "hosts": ["api.example.com", "*.internal.example.com"], "paths": ["/api/{version}/orders"]},
    {"name": "healthz", "paths": ["/healthz"]},
    {"name": "private", "paths": ["/private"]},
    {"name": "ab", "paths": ["/a/b"]},
    {"name": "app1-admin", "paths": ["/app1/admin"]},
    {"name": "public-data", "paths": ["/public/data/xyz"]},
    {"name": "abc", "paths": ["/some/abc"]},
    {"name": "example-host", "hosts": ["example.com"], "paths": ["/by-host"]},
    {"name": "search", "paths": ["/search"], "query": [{"name": "q", "present": true}, {"name": "debug", "absent": true}, {"name": "format", "equals": "json"}]},
    {"name": "office", "paths": ["/office/**"], "sources": {"cidrs": ["10.0.0.0/8", "2001:db8::/32"]}},
    {"name": "web-peer", "paths": ["/peer/**"], "sources": {"principals": ["spiffe://cluster.local/ns/shop/sa/web", "spiffe://cluster.local/ns/ops/*"]}},
    {"name": "billing-ns", "paths": ["/billing/**"], "sources": {"namespaces": ["billing"]}},
    {"name": "never-used", "paths": ["/dead/rule"]}
  ]
}"#;

fn start(policy: &str) -> Host {
    Host::builder(meshsight::register)
        .property(&["plugin_root_id"], "meshsight_allowlist")
        .plugin_config(policy)
        .start()
        .unwrap_or_else(|e| panic!("{e}"))
}

fn with_mode(mode: &str) -> String {
    POLICY.replacen('{', &format!(r#"{{"mode": "{mode}","#), 1)
}

struct Sent {
    id: u32,
    action: Action,
}

fn send(host: &mut Host, method: &str, path: &str, authority: &str) -> Sent {
    send_with(host, method, path, authority, "http", &[])
}

fn send_with(
    host: &mut Host,
    method: &str,
    path: &str,
    authority: &str,
    scheme: &str,
    properties: &[(&[&str], &str)],
) -> Sent {
    let id = host.new_http_stream();
    for (p, v) in properties {
        host.set_stream_property(id, p, v);
    }
    let action = host.request_headers(
        id,
        &[
            (":method", method),
            (":path", path),
            (":authority", authority),
            (":scheme", scheme),
            ("x-request-id", "req-42"),
        ],
        true,
    );
    Sent { id, action }
}

fn decision(host: &Host, id: u32) -> AllowlistDecision {
    let bytes = host
        .stream_property(id, &[ALLOWLIST_DECISION_PROPERTY])
        .expect("decision written to filter state");
    serde_json::from_slice(&bytes).expect("decision JSON")
}

fn assert_allowed(host: &Host, sent: &Sent, rule: &str) {
    assert_eq!(sent.action, Action::Continue);
    assert!(host.local_response(sent.id).is_none());
    let d = decision(host, sent.id);
    assert_eq!(d.outcome, AllowlistOutcome::Allowed, "{d:?}");
    assert_eq!(d.rule.as_deref(), Some(rule));
}

fn assert_denied(host: &Host, sent: &Sent) {
    assert_eq!(sent.action, Action::Pause);
    let r = host.local_response(sent.id).expect("deny response");
    assert_eq!(r.status, 403);
    let d = decision(host, sent.id);
    assert_eq!(d.outcome, AllowlistOutcome::Denied, "{d:?}");
    assert_eq!(d.rule, None);
}

fn assert_malformed(host: &Host, sent: &Sent, reason: &str) {
    assert_eq!(sent.action, Action::Pause);
    let r = host.local_response(sent.id).expect("malformed response");
    assert_eq!(r.status, 400);
    let d = decision(host, sent.id);
    assert_eq!(d.outcome, AllowlistOutcome::Malformed);
    assert_eq!(d.reason.as_deref(), Some(reason));
}

#[test]
fn allowed_request_continues_and_records_rule_and_counters() {
    let mut host = start(POLICY);
    let sent = send(&mut host, "GET", "/api/v1/items", "shop.test");
    assert_allowed(&host, &sent, "api-read");
    assert_eq!(
        host.stream_property(sent.id, &[ALLOWLIST_DECISION_PROPERTY])
            .unwrap(),
        br#"{"outcome":"allowed","rule":"api-read"}"#
    );
    assert_eq!(counter(&mut host, "meshsight_allowlist_allowed"), Some(1));
    assert_eq!(counter(&mut host, "meshsight_allowlist_denied"), Some(0));
    assert_eq!(
        counter(&mut host, "meshsight_allowlist_rule_hits.api-read"),
        Some(1)
    );
    assert_eq!(
        counter(&mut host, "meshsight_allowlist_rule_hits.never-used"),
        Some(0),
        "dead rules show as zero"
    );
    let headers = host.request_header_map(sent.id);
    assert!(headers.contains(&(":path".into(), "/api/v1/items".into())));
    assert!(!host.route_cache_cleared(sent.id));
}

#[test]
fn denied_request_gets_a_403_that_reveals_nothing() {
    let mut host = start(POLICY);
    let sent = send(&mut host, "GET", "/admin/users", "shop.test");
    assert_denied(&host, &sent);
    let r = host.local_response(sent.id).unwrap();
    assert!(
        r.headers
            .contains(&("content-type".into(), "application/json".into())),
        "{:?}",
        r.headers
    );
    assert_eq!(r.body, br#"{"error":"forbidden","request_id":"req-42"}"#);
    let d = decision(&host, sent.id);
    assert_eq!(d.reason.as_deref(), Some("no_rule_matched"));
    assert_eq!(counter(&mut host, "meshsight_allowlist_denied"), Some(1));
    assert_eq!(counter(&mut host, "meshsight_allowlist_allowed"), Some(0));
    assert_eq!(counter(&mut host, "meshsight_allowlist_monitored"), Some(0));
}

#[test]
fn deny_without_request_id_has_null_id() {
    let mut host = start(POLICY);
    let id = host.new_http_stream();
    host.request_headers(
        id,
        &[
            (":method", "GET"),
            (":path", "/x"),
            (":authority", "h"),
            (":scheme", "http"),
        ],
        true,
    );
    assert_eq!(
        host.local_response(id).unwrap().body,
        br#"{"error":"forbidden","request_id":null}"#
    );
}

#[test]
fn deny_response_status_and_body_are_configurable() {
    let mut host = start(
        r#"{"deny_response":{"status":404,"body":"<h1>Not Found</h1>","content_type":"text/html"},
            "malformed_response":{"status":422},"rules":[]}"#,
    );
    let sent = send(&mut host, "GET", "/x", "h");
    let r = host.local_response(sent.id).unwrap();
    assert_eq!(r.status, 404);
    assert_eq!(r.body, b"<h1>Not Found</h1>");
    assert!(r
        .headers
        .contains(&("content-type".into(), "text/html".into())));
    let sent = send(&mut host, "GET", "/a%2fb", "h");
    let r = host.local_response(sent.id).unwrap();
    assert_eq!(r.status, 422);
    assert_eq!(r.body, br#"{"error":"bad_request","request_id":"req-42"}"#);
}

#[test]
fn monitor_mode_lets_everything_through_and_records_would_deny() {
    let mut host = start(&with_mode("monitor"));
    let sent = send(&mut host, "DELETE", "/admin", "h");
    assert_eq!(sent.action, Action::Continue);
    assert!(host.local_response(sent.id).is_none());
    let d = decision(&host, sent.id);
    assert_eq!(d.outcome, AllowlistOutcome::WouldDeny);
    assert_eq!(d.reason.as_deref(), Some("no_rule_matched"));
    assert_eq!(counter(&mut host, "meshsight_allowlist_monitored"), Some(1));
    assert_eq!(counter(&mut host, "meshsight_allowlist_denied"), Some(0));

    let sent = send(&mut host, "GET", "/healthz", "h");
    assert_allowed(&host, &sent, "healthz");
    assert_eq!(
        counter(&mut host, "meshsight_allowlist_rule_hits.healthz"),
        Some(1)
    );

    let sent = send(&mut host, "GET", "/a%2Fb", "h");
    assert_eq!(sent.action, Action::Continue);
    assert!(host.local_response(sent.id).is_none());
    let d = decision(&host, sent.id);
    assert_eq!(d.outcome, AllowlistOutcome::WouldDeny);
    assert_eq!(d.reason.as_deref(), Some("encoded_slash"));
    assert_eq!(counter(&mut host, "meshsight_allowlist_malformed"), Some(1));
    assert_eq!(counter(&mut host, "meshsight_allowlist_monitored"), Some(2));
}

#[test]
fn enforce_is_the_default_and_explicit_enforce_is_the_same() {
    let mut host = start(&with_mode("enforce"));
    let sent = send(&mut host, "DELETE", "/admin", "h");
    assert_denied(&host, &sent);
}

/// Request target, the rule that allows it, the path it was judged (and is forwarded) as.
const NORMALIZED: [(&str, &str, &str); 5] = [
    ("/info/../private", "private", "/private"),
    ("/a//b", "ab", "/a/b"),
    ("/app1/admin#foo", "app1-admin", "/app1/admin"),
    (
        "/public/./data/abc/../xyz",
        "public-data",
        "/public/data/xyz",
    ),
    ("/some/%61%62%63", "abc", "/some/abc"),
];

#[test]
fn without_rewrite_path_the_upstream_gets_the_target_as_sent() {
    let mut host = start(&POLICY.replacen('{', r#"{"rewrite_path": false,"#, 1));
    for (path, rule, _) in NORMALIZED {
        let sent = send(&mut host, "GET", path, "h");
        assert_allowed(&host, &sent, rule);
        assert!(host
            .request_header_map(sent.id)
            .contains(&(":path".into(), path.into())));
    }
}

#[test]
fn normalization_table_through_the_filter() {
    let mut host = start(POLICY);
    for (path, rule, judged) in NORMALIZED {
        let sent = send(&mut host, "GET", path, "h");
        assert_allowed(&host, &sent, rule);
        // By default the upstream gets the path that was judged.
        assert!(
            host.request_header_map(sent.id)
                .contains(&(":path".into(), judged.into())),
            "{path}"
        );
    }
    for (path, reason) in [
        ("/something%2F..%2Fadmin", "encoded_slash"),
        ("/user/..;foo=bar/admin", "dot_segment_parameter"),
        ("/foo%00.html", "nul_or_control"),
        ("/a%c0%afb", "overlong_utf8"),
        ("/a%252fb", "double_encoding"),
        ("/a%5Cb", "encoded_backslash"),
        ("/a\\b", "backslash"),
    ] {
        let sent = send(&mut host, "GET", path, "h");
        assert_malformed(&host, &sent, reason);
        assert_eq!(
            host.local_response(sent.id).unwrap().body,
            br#"{"error":"bad_request","request_id":"req-42"}"#
        );
    }
    assert_eq!(counter(&mut host, "meshsight_allowlist_malformed"), Some(7));
    assert_eq!(counter(&mut host, "meshsight_allowlist_allowed"), Some(5));
    assert_eq!(
        counter(&mut host, "meshsight_allowlist_denied"),
        Some(0),
        "malformed is not counted as denied"
    );
}

#[test]
fn hosts_are_compared_case_insensitively_without_default_port_or_trailing_dot() {
    let mut host = start(POLICY);
    for (authority, scheme) in [
        ("Example.COM.", "http"),
        ("example.com:443", "https"),
        ("example.com", "http"),
    ] {
        let sent = send_with(&mut host, "GET", "/by-host", authority, scheme, &[]);
        assert_allowed(&host, &sent, "example-host");
    }
    let sent = send(&mut host, "GET", "/by-host", "example.org");
    assert_denied(&host, &sent);
    let sent = send(&mut host, "GET", "/by-host", "bad host");
    assert_malformed(&host, &sent, "invalid_host");
}

#[test]
fn methods_and_wildcard_hosts() {
    let mut host = start(POLICY);
    let sent = send(&mut host, "POST", "/api/v2/orders", "api.example.com");
    assert_allowed(&host, &sent, "api-write");
    let sent = send(
        &mut host,
        "POST",
        "/api/v2/orders",
        "a.b.internal.example.com",
    );
    assert_allowed(&host, &sent, "api-write");
    let sent = send(&mut host, "POST", "/api/v2/orders", "internal.example.com");
    assert_denied(&host, &sent);
    let sent = send(&mut host, "POST", "/api/v2/orders", "other.example.com");
    assert_denied(&host, &sent);
    let sent = send(&mut host, "PUT", "/api/v2/orders", "api.example.com");
    assert_denied(&host, &sent);
    let sent = send(&mut host, "HEAD", "/api", "x");
    assert_allowed(&host, &sent, "api-read");
}

#[test]
fn query_constraints_through_the_filter() {
    let mut host = start(POLICY);
    let sent = send(&mut host, "GET", "/search?q=shoes&format=json", "h");
    assert_allowed(&host, &sent, "search");
    for path in [
        "/search?format=json",
        "/search?q=x&format=json&debug=1",
        "/search?q=x&format=xml",
        "/search?q=x&format=json&format=xml",
        "/search",
    ] {
        let sent = send(&mut host, "GET", path, "h");
        assert_denied(&host, &sent);
    }
    let sent = send(&mut host, "GET", "/search?q=a+b&%66ormat=%6Ason", "h");
    assert_allowed(&host, &sent, "search");
}

#[test]
fn cidr_sources_use_source_address() {
    let mut host = start(POLICY);
    let addr: &[&str] = &["source", "address"];
    for (a, allowed) in [
        ("10.1.2.3:51234", true),
        ("[2001:db8::7]:443", true),
        ("192.168.0.1:80", false),
    ] {
        let sent = send_with(&mut host, "GET", "/office/plan", "h", "http", &[(addr, a)]);
        if allowed {
            assert_allowed(&host, &sent, "office");
        } else {
            assert_denied(&host, &sent);
        }
    }
    let sent = send(&mut host, "GET", "/office/plan", "h");
    assert_denied(&host, &sent);
}

#[test]
fn principal_and_namespace_sources_use_the_mtls_peer_spiffe_id() {
    let mut host = start(POLICY);
    let san: &[&str] = &["connection", "uri_san_peer_certificate"];
    let cases = [
        (
            "/peer/x",
            "spiffe://cluster.local/ns/shop/sa/web",
            Some("web-peer"),
        ),
        ("/peer/x", "spiffe://cluster.local/ns/shop/sa/other", None),
        (
            "/peer/x",
            "spiffe://cluster.local/ns/ops/sa/deployer",
            Some("web-peer"),
        ),
        (
            "/peer/x",
            "spiffe://cluster.local/ns/opsx/sa/deployer",
            None,
        ),
        (
            "/billing/inv",
            "spiffe://cluster.local/ns/billing/sa/api",
            Some("billing-ns"),
        ),
        (
            "/billing/inv",
            "spiffe://cluster.local/ns/shop/sa/api",
            None,
        ),
    ];
    for (path, peer, rule) in cases {
        let sent = send_with(&mut host, "GET", path, "h", "https", &[(san, peer)]);
        match rule {
            Some(rule) => assert_allowed(&host, &sent, rule),
            None => assert_denied(&host, &sent),
        }
    }
    // Plaintext: no peer certificate, no identity.
    let sent = send(&mut host, "GET", "/billing/inv", "h");
    assert_denied(&host, &sent);
}

#[test]
fn rewrite_path_sends_the_normalized_path_upstream() {
    let mut host = start(
        r#"{"rewrite_path":true,"rules":[{"name":"private","paths":["/private"]},{"name":"api","paths":["/api/**"]}]}"#,
    );
    let sent = send(&mut host, "GET", "/info/../private?x=1&y=%2F#frag", "h");
    assert_allowed(&host, &sent, "private");
    assert!(host
        .request_header_map(sent.id)
        .contains(&(":path".into(), "/private?x=1&y=%2F".into())));
    assert!(host.route_cache_cleared(sent.id));
    let sent = send(&mut host, "GET", "/api/%7Euser//x", "h");
    assert!(host
        .request_header_map(sent.id)
        .contains(&(":path".into(), "/api/~user/x".into())));
    // Already canonical: untouched.
    let sent = send(&mut host, "GET", "/api/v1?q", "h");
    assert!(host
        .request_header_map(sent.id)
        .contains(&(":path".into(), "/api/v1?q".into())));
    assert!(!host.route_cache_cleared(sent.id));
}

#[test]
fn reject_malformed_false_still_never_allows_a_malformed_target() {
    let mut host = start(r#"{"reject_malformed":false,"rules":[{"name":"all"}]}"#);
    let sent = send(&mut host, "GET", "/a/..;x=y/admin", "h");
    assert_eq!(host.local_response(sent.id).unwrap().status, 403);
    let d = decision(&host, sent.id);
    assert_eq!(d.outcome, AllowlistOutcome::Denied);
    assert_eq!(d.reason.as_deref(), Some("dot_segment_parameter"));
    assert_eq!(counter(&mut host, "meshsight_allowlist_malformed"), Some(1));
    assert_eq!(counter(&mut host, "meshsight_allowlist_denied"), Some(1));
    let sent = send(&mut host, "GET", "/fine", "h");
    assert_allowed(&host, &sent, "all");
}

#[test]
fn rule_hit_counters_count_each_rule() {
    let mut host = start(POLICY);
    for _ in 0..3 {
        send(&mut host, "GET", "/healthz", "h");
    }
    send(&mut host, "GET", "/api/x", "h");
    assert_eq!(
        counter(&mut host, "meshsight_allowlist_rule_hits.healthz"),
        Some(3)
    );
    assert_eq!(
        counter(&mut host, "meshsight_allowlist_rule_hits.api-read"),
        Some(1)
    );
    assert_eq!(
        counter(&mut host, "meshsight_allowlist_rule_hits.private"),
        Some(0)
    );
    assert_eq!(counter(&mut host, "meshsight_allowlist_allowed"), Some(4));
}

#[test]
fn policy_load_is_logged() {
    let host = start(POLICY);
    assert_eq!(
        host.logs_containing("allowlist: 14 rules").len(),
        1,
        "{:?}",
        host.logs()
    );
}

fn refused(policy: &str) -> String {
    match Host::builder(meshsight::register)
        .property(&["plugin_root_id"], "meshsight_allowlist")
        .plugin_config(policy)
        .start()
    {
        Ok(_) => panic!("accepted: {policy}"),
        Err(e) => {
            assert_eq!(e.callback(), "proxy_on_configure");
            let errors: Vec<_> = e
                .logs()
                .iter()
                .filter(|l| l.level == LogLevel::Error)
                .map(|l| l.message.clone())
                .collect();
            assert_eq!(errors.len(), 1, "{e}");
            errors[0].clone()
        }
    }
}

#[test]
fn bad_policies_are_refused_with_the_json_path_in_the_log() {
    let log = refused(r#"{"rules":[{"name":"a"},{"name":"b"},{"name":"c","paths":["/x/**/y"]}]}"#);
    assert!(
        log.contains(r#"rules[2].paths[0]: "**" must be the last segment"#),
        "{log}"
    );
    let cases = [
        (
            r#"{"rules":[{"name":"a","methds":["GET"]}]}"#,
            "rules[0].methds: unknown field",
        ),
        (r#"{"rules":[],"mode":"block"}"#, "mode: unknown variant"),
        (
            r#"{"rules":[{"name":"a","sources":{"cidrs":["10.0.0.0/33"]}}]}"#,
            "rules[0].sources.cidrs[0]:",
        ),
        (
            r#"{"rules":[{"name":"a","sources":{"principals":["cluster.local/ns/a"]}}]}"#,
            "rules[0].sources.principals[0]:",
        ),
        (
            r#"{"rules":[{"name":"a","hosts":["*"]}]}"#,
            "rules[0].hosts[0]:",
        ),
        (
            r#"{"rules":[{"name":"a","paths":["/a/../b"]}]}"#,
            "rules[0].paths[0]: path pattern",
        ),
        (
            r#"{"rules":[],"deny_response":{"status":200}}"#,
            "deny_response.status: status 200",
        ),
        (
            r#"{"rules":[{"name":"a"},{"name":"a"}]}"#,
            "rules[1].name: duplicate rule name",
        ),
        (
            r#"{"rules":[{"name":"a","query":[{"name":"x"}]}]}"#,
            "rules[0].query[0]: exactly one of",
        ),
        ("", "EOF"),
        ("not json", "expected"),
    ];
    for (policy, needle) in cases {
        let log = refused(policy);
        assert!(log.contains(needle), "{policy}: {log}");
        assert!(log.starts_with("meshsight: invalid policy"), "{log}");
    }
}

#[test]
fn ten_thousand_rules_through_the_filter() {
    use meshsight_bench::synthetic::{synthetic_hit, synthetic_policy_json};
    let mut host = start(&synthetic_policy_json(10_000));
    for i in (0..10_000).step_by(97) {
        let (method, path) = synthetic_hit(i);
        let sent = send(&mut host, method, &path, "h");
        assert_allowed(&host, &sent, &format!("rule-{i}"));
        assert_eq!(
            counter(
                &mut host,
                &format!("meshsight_allowlist_rule_hits.rule-{i}")
            ),
            Some(1)
        );
    }
    let sent = send(&mut host, "GET", "/svc1/v1/items", "h");
    assert_denied(&host, &sent);
}
