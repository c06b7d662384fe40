use super::*;
use crate::decision::{AllowlistOutcome, Mode};
use crate::headers::{HeaderBlock, NO_HEADERS};
use crate::identity::{parse_socket_address, spiffe_namespace};
use crate::matching::Peer;
use crate::normalize::{NormalizedHost, NormalizedTarget};
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

fn compile(json: &str) -> AllowList {
    AllowList::from_json(json.as_bytes()).unwrap_or_else(|e| panic!("{json}: {e}"))
}

/// Compiles `json` expecting an error; returns it as `path: reason`.
fn refuse(json: &str) -> ConfigError {
    match AllowList::from_json(json.as_bytes()) {
        Ok(_) => panic!("accepted: {json}"),
        Err(e) => e,
    }
}

/// A policy with one rule whose body (without the name) is `rule`.
fn one_rule(rule: &str) -> String {
    format!(r#"{{"rules":[{{"name":"r",{rule}}}]}}"#)
}

fn assert_refused(json: &str, path: &str, reason_part: &str) {
    let err = refuse(json);
    assert_eq!(err.path, path, "{json}: {err}");
    assert!(err.reason.contains(reason_part), "{json}: {err}");
    assert!(err.to_string().starts_with(&format!("{path}: ")), "{err}");
}

/// Facts of an already-normalized request; `host` empty for none.
fn facts<'a>(method: &'a str, host: &'a str, path: &'a str) -> RequestFacts<'a> {
    RequestFacts {
        method,
        raw_path: path,
        target: Ok(NormalizedTarget {
            path: path.to_string(),
            query: None,
        }),
        host: Ok((!host.is_empty()).then(|| NormalizedHost {
            name: host.to_string(),
            port: None,
        })),
        headers: &NO_HEADERS,
        peer: Peer::default(),
    }
}

fn with_query<'a>(mut f: RequestFacts<'a>, query: Option<&'a str>) -> RequestFacts<'a> {
    if let Ok(target) = &mut f.target {
        target.query = query;
    }
    f
}

fn from_peer<'a>(address: Option<&str>, principal: Option<&'a str>) -> RequestFacts<'a> {
    RequestFacts {
        peer: Peer::new(
            address.and_then(parse_socket_address).map(|(ip, _)| ip),
            principal,
        ),
        ..facts("GET", "", "/")
    }
}

fn rule_of(list: &AllowList, request: &RequestFacts<'_>) -> Option<String> {
    list.matching_rule(request)
        .map(|i| list.rule_name(i).unwrap().to_string())
}

fn get(list: &AllowList, path: &str) -> Option<String> {
    rule_of(list, &facts("GET", "example.com", path))
}

// ---------------------------------------------------------------- compiler: accepted documents

#[test]
fn minimal_policy_defaults() {
    let list = compile(r#"{"rules":[]}"#);
    assert_eq!(list.mode(), Mode::Enforce);
    assert!(list.reject_malformed());
    assert!(
        list.rewrite_path(),
        "the upstream gets what was judged unless told otherwise"
    );
    assert_eq!(list.deny_response().status, 403);
    assert_eq!(list.malformed_response().status, 400);
    assert_eq!(list.rule_count(), 0);
    assert!(!list.needs_source_address());
    assert!(!list.needs_peer_identity());
    assert_eq!(get(&list, "/"), None);
}

#[test]
fn full_policy_compiles() {
    let list = compile(
        r#"{
        "mode": "monitor", "reject_malformed": false, "rewrite_path": true,
        "deny_response": {"status": 404, "body": "nope", "content_type": "text/plain"},
        "malformed_response": {"status": 422},
        "rules": [
          {"name": "api", "methods": ["GET", "POST"], "hosts": ["api.example.com", "*.example.org", "10.0.0.1", "[2001:DB8::1]"],
           "paths": ["/api/{version}/items/*", "/api/**", "/"],
           "query": [{"name": "token", "present": true}, {"name": "debug", "absent": true}, {"name": "v", "equals": "2"}],
           "sources": {"cidrs": ["10.0.0.0/8", "2001:db8::/32", "192.168.1.7"],
                       "principals": ["spiffe://cluster.local/ns/shop/sa/web", "spiffe://cluster.local/ns/ops/*"],
                       "namespaces": ["shop", "ops-1"]}},
          {"name": "health_check-2", "paths": ["/healthz"]}
        ]}"#,
    );
    assert_eq!(list.mode(), Mode::Monitor);
    assert!(!list.reject_malformed());
    assert!(list.rewrite_path());
    assert_eq!(list.deny_response().status, 404);
    assert_eq!(list.deny_response().content_type, "text/plain");
    assert_eq!(list.deny_response().body(Some("id")), b"nope");
    assert_eq!(list.malformed_response().status, 422);
    assert_eq!(
        list.rule_names().collect::<Vec<_>>(),
        ["api", "health_check-2"]
    );
    assert!(list.needs_source_address());
    assert!(list.needs_peer_identity());
}

// ---------------------------------------------------------------- compiler: every refusal

#[test]
fn refuses_unknown_fields_with_their_path() {
    assert_refused(r#"{"rules":[],"modee":"x"}"#, "modee", "unknown field");
    assert_refused(
        &one_rule(r#""pths":["/a"]"#),
        "rules[0].pths",
        "unknown field",
    );
    assert_refused(
        &one_rule(r#""query":[{"name":"a","present":true,"eq":"x"}]"#),
        "rules[0].query[0].eq",
        "unknown field",
    );
    assert_refused(
        &one_rule(r#""sources":{"cidr":["10.0.0.0/8"]}"#),
        "rules[0].sources.cidr",
        "unknown field",
    );
    assert_refused(
        r#"{"rules":[],"deny_response":{"status":403,"headers":{}}}"#,
        "deny_response.headers",
        "unknown field",
    );
}

#[test]
fn refuses_wrong_types_and_values() {
    assert_refused(r#"{"rules":[],"mode":"block"}"#, "mode", "unknown variant");
    assert_refused(
        &one_rule(r#""methods":"GET""#),
        "rules[0].methods",
        "expected a sequence",
    );
    assert_refused(
        r#"{"rules":[],"rewrite_path":"yes"}"#,
        "rewrite_path",
        "expected a boolean",
    );
    let err = refuse(r#"{"mode":"enforce"}"#);
    assert!(err.reason.contains("missing field `rules`"), "{err}");
    assert!(AllowList::from_json(b"[").is_err());
}

#[test]
fn refuses_bad_and_duplicate_rule_names() {
    for name in ["", "has space", "dots.are.stat.separators", &"x".repeat(65)] {
        let json = format!(r#"{{"rules":[{{"name":"{name}"}}]}}"#);
        assert_refused(&json, "rules[0].name", "must be 1 to 64 characters");
    }
    assert_refused(
        r#"{"rules":[{"name":"a"},{"name":"b"},{"name":"a"}]}"#,
        "rules[2].name",
        "duplicate rule name \"a\" (also rules[0])",
    );
}

#[test]
fn refuses_empty_lists() {
    for field in ["methods", "hosts", "paths", "query"] {
        let json = one_rule(&format!(r#""{field}":[]"#));
        assert_refused(&json, &format!("rules[0].{field}"), "must not be empty");
    }
    for field in ["cidrs", "principals", "namespaces"] {
        let json = one_rule(&format!(r#""sources":{{"{field}":[]}}"#));
        assert_refused(
            &json,
            &format!("rules[0].sources.{field}"),
            "must not be empty",
        );
    }
    assert_refused(
        &one_rule(r#""sources":{}"#),
        "rules[0].sources",
        "must not be empty",
    );
}

#[test]
fn refuses_bad_methods() {
    // Methods are case-sensitive: a standard method in another case can never match what
    // clients send, so it is refused with the spelling that was meant.
    for m in ["get", "Get"] {
        let json = one_rule(&format!(r#""methods":["POST","{m}"]"#));
        assert_refused(&json, "rules[0].methods[1]", "did you mean \"GET\"");
    }
    for m in ["", "GE T", "G/ET"] {
        let json = one_rule(&format!(r#""methods":["GET","{m}"]"#));
        assert_refused(&json, "rules[0].methods[1]", "must be an HTTP token");
    }
    assert_refused(
        &one_rule(r#""methods":["GET","GET"]"#),
        "rules[0].methods[1]",
        "duplicate entry",
    );
}

#[test]
fn refuses_bad_hosts() {
    for h in [
        "",
        "*",
        "*.",
        "a..b",
        "exa mple.com",
        "example.com:8080",
        "*.*.example.com",
        "api.*.example.com",
        "[zz::1]",
        "user@example.com",
        "ex/ample.com",
    ] {
        let json = one_rule(&format!(r#""hosts":["ok.example.com","{h}"]"#));
        assert_refused(&json, "rules[0].hosts[1]", "host pattern");
    }
    // Case and a trailing dot are folded, so these are the same host.
    assert_refused(
        &one_rule(r#""hosts":["Example.com","example.com."]"#),
        "rules[0].hosts[1]",
        "duplicate entry",
    );
}

#[test]
fn refuses_rest_wildcard_before_the_end_with_the_documented_message() {
    let json = r#"{"rules":[{"name":"a"},{"name":"b"},{"name":"c","paths":["/x/**/y"]}]}"#;
    assert_eq!(
        refuse(json).to_string(),
        r#"rules[2].paths[0]: "**" must be the last segment"#
    );
    assert_refused(
        &one_rule(r#""paths":["/a/**x/b"]"#),
        "rules[0].paths[0]",
        "last segment",
    );
}

#[test]
fn refuses_bad_path_patterns() {
    let cases = [
        ("api/x", "must start with \"/\""),
        ("", "must start with \"/\""),
        ("/a*b", "must be a whole segment"),
        ("/a/{id}x", "must be a whole segment"),
        ("/a/x{id}", "must be a whole segment"),
        ("/{}", "named segment"),
        ("/{1x}", "named segment"),
        ("/{a-b}", "named segment"),
        ("/{id}/{id}", "appears twice"),
        ("/a/../b", "not in normalized form"),
        ("/a/./b", "not in normalized form"),
        ("/a//b", "not in normalized form"),
        ("/%41", "not in normalized form"),
        ("/%c3%a9", "not in normalized form"),
        ("/a?x=1", "not in normalized form"),
        ("/a#frag", "not in normalized form"),
        ("/a%2Fb", "not in normalized form"),
        ("/a\\\\b", "not in normalized form"),
        ("/caf\u{e9}", "not in normalized form"),
    ];
    for (pattern, reason) in cases {
        let json = one_rule(&format!(
            r#""paths":["/ok",{}]"#,
            serde_json::json!(pattern)
        ));
        assert_refused(&json, "rules[0].paths[1]", reason);
    }
    assert_refused(
        &one_rule(r#""paths":["/a","/a"]"#),
        "rules[0].paths[1]",
        "duplicate entry",
    );
}

#[test]
fn refuses_bad_query_constraints() {
    let q = |c: &str| one_rule(&format!(r#""query":[{{"name":"ok","present":true}},{c}]"#));
    assert_refused(&q(r#"{"name":"a"}"#), "rules[0].query[1]", "exactly one of");
    assert_refused(
        &q(r#"{"name":"a","present":true,"equals":"x"}"#),
        "rules[0].query[1]",
        "exactly one of",
    );
    assert_refused(
        &q(r#"{"name":"a","present":true,"absent":true}"#),
        "rules[0].query[1]",
        "exactly one of",
    );
    assert_refused(
        &q(r#"{"name":"a","present":false}"#),
        "rules[0].query[1].present",
        "can only be true",
    );
    assert_refused(
        &q(r#"{"name":"a","absent":false}"#),
        "rules[0].query[1].absent",
        "can only be true",
    );
    assert_refused(
        &q(r#"{"name":"","present":true}"#),
        "rules[0].query[1].name",
        "must not be empty",
    );
}

#[test]
fn refuses_bad_cidrs() {
    for c in ["10.0.0.0/33", "10.0.0", "example.com", "::/129", ""] {
        let json = one_rule(&format!(r#""sources":{{"cidrs":["10.0.0.0/8","{c}"]}}"#));
        assert_refused(&json, "rules[0].sources.cidrs[1]", "is not a CIDR");
    }
    assert_refused(
        &one_rule(r#""sources":{"cidrs":["10.1.2.3/8"]}"#),
        "rules[0].sources.cidrs[0]",
        "host bits set; did you mean 10.0.0.0/8",
    );
}

#[test]
fn refuses_bad_principals() {
    let cases = [
        ("cluster.local/ns/a/sa/b", "does not start with spiffe://"),
        (
            "SPIFFE://cluster.local/ns/a",
            "does not start with spiffe://",
        ),
        (
            "spiffe://Cluster.Local/ns/a",
            "trust domain must be lowercase",
        ),
        ("spiffe:///ns/a", "trust domain must be lowercase"),
        ("spiffe://cluster.local", "has no path"),
        ("spiffe://cluster.local/ns//sa/b", "non-empty"),
        ("spiffe://cluster.local/ns/../sa/b", "non-empty"),
        ("spiffe://cluster.local/ns/sh*", "only as the last segment"),
        ("spiffe://cluster.local/*/sa/b", "only as the last segment"),
        ("spiffe://cluster.local/ns/a b", "only as the last segment"),
    ];
    for (p, reason) in cases {
        let json = one_rule(&format!(r#""sources":{{"principals":["{p}"]}}"#));
        assert_refused(&json, "rules[0].sources.principals[0]", reason);
    }
}

#[test]
fn refuses_bad_namespaces() {
    let long = "a".repeat(64);
    for n in ["Shop", "-shop", "shop-", "sh_op", "", long.as_str()] {
        let json = one_rule(&format!(r#""sources":{{"namespaces":["ok","{n}"]}}"#));
        assert_refused(
            &json,
            "rules[0].sources.namespaces[1]",
            "Kubernetes namespace",
        );
    }
}

#[test]
fn refuses_bad_responses() {
    for (field, default_ok) in [("deny_response", 403), ("malformed_response", 400)] {
        for status in [200, 302, 399, 600, 0] {
            let json = format!(r#"{{"rules":[],"{field}":{{"status":{status}}}}}"#);
            assert_refused(&json, &format!("{field}.status"), "between 400 and 599");
        }
        let big = "x".repeat(4097);
        let json = format!(r#"{{"rules":[],"{field}":{{"status":{default_ok},"body":"{big}"}}}}"#);
        assert_refused(&json, &format!("{field}.body"), "at most 4096");
        let json = format!(
            r#"{{"rules":[],"{field}":{{"status":{default_ok},"content_type":"text/plain\n"}}}}"#
        );
        assert_refused(&json, &format!("{field}.content_type"), "visible ASCII");
        let json =
            format!(r#"{{"rules":[],"{field}":{{"status":{default_ok},"content_type":""}}}}"#);
        assert_refused(&json, &format!("{field}.content_type"), "visible ASCII");
    }
}

#[test]
fn error_path_points_at_the_failing_rule_not_the_first() {
    let json = r#"{"rules":[{"name":"a","paths":["/a"]},{"name":"b","methods":["GET"],"paths":["/b","/c/{x"]}]}"#;
    assert_refused(json, "rules[1].paths[1]", "must be a whole segment");
}

// ---------------------------------------------------------------- matcher: paths

#[test]
fn exact_paths_distinguish_trailing_slash() {
    let list = compile(
        r#"{"rules":[{"name":"a","paths":["/a/b"]},{"name":"slash","paths":["/a/c/"]},{"name":"root","paths":["/"]}]}"#,
    );
    assert_eq!(get(&list, "/a/b").as_deref(), Some("a"));
    assert_eq!(get(&list, "/a/b/"), None);
    assert_eq!(get(&list, "/a/c/").as_deref(), Some("slash"));
    assert_eq!(get(&list, "/a/c"), None);
    assert_eq!(get(&list, "/").as_deref(), Some("root"));
    assert_eq!(get(&list, "/a"), None);
    assert_eq!(get(&list, "/A/b"), None, "paths are case-sensitive");
    assert_eq!(get(&list, "/a/b/c"), None);
}

#[test]
fn single_segment_wildcards_match_exactly_one_non_empty_segment() {
    let list = compile(
        r#"{"rules":[{"name":"star","paths":["/s/*"]},{"name":"named","paths":["/u/{user}/profile"]}]}"#,
    );
    assert_eq!(get(&list, "/s/x").as_deref(), Some("star"));
    assert_eq!(get(&list, "/s/"), None);
    assert_eq!(get(&list, "/s"), None);
    assert_eq!(get(&list, "/s/x/y"), None);
    assert_eq!(get(&list, "/u/alice/profile").as_deref(), Some("named"));
    assert_eq!(get(&list, "/u//profile"), None);
    assert_eq!(get(&list, "/u/alice/bob/profile"), None);
    assert_eq!(get(&list, "/u/alice"), None);
}

#[test]
fn rest_wildcard_matches_zero_or_more_segments() {
    let list = compile(
        r#"{"rules":[{"name":"api","paths":["/api/**"]},{"name":"deep","paths":["/x/*/y/**"]}]}"#,
    );
    for p in ["/api", "/api/", "/api/v1", "/api/v1/items/7/"] {
        assert_eq!(get(&list, p).as_deref(), Some("api"), "{p}");
    }
    assert_eq!(get(&list, "/apix"), None);
    assert_eq!(get(&list, "/"), None);
    assert_eq!(get(&list, "/x/1/y").as_deref(), Some("deep"));
    assert_eq!(get(&list, "/x/1/y/z/w").as_deref(), Some("deep"));
    assert_eq!(get(&list, "/x/1/z"), None);
    let all = compile(r#"{"rules":[{"name":"all","paths":["/**"]}]}"#);
    assert_eq!(get(&all, "/").as_deref(), Some("all"));
    assert_eq!(get(&all, "/any/thing").as_deref(), Some("all"));
}

#[test]
fn exact_and_wildcard_branches_are_both_explored() {
    // `/a/b/c` can only match through the `*` branch even though an exact `b` child exists.
    let list = compile(
        r#"{"rules":[{"name":"exact","paths":["/a/b/d"]},{"name":"wild","paths":["/a/*/c"]}]}"#,
    );
    assert_eq!(get(&list, "/a/b/c").as_deref(), Some("wild"));
    assert_eq!(get(&list, "/a/b/d").as_deref(), Some("exact"));
    assert_eq!(get(&list, "/a/z/d"), None);
}

#[test]
fn rule_without_paths_matches_every_path() {
    let list = compile(r#"{"rules":[{"name":"gets","methods":["GET"]}]}"#);
    assert_eq!(get(&list, "/").as_deref(), Some("gets"));
    assert_eq!(get(&list, "/x/y").as_deref(), Some("gets"));
    assert_eq!(rule_of(&list, &facts("POST", "example.com", "/")), None);
}

#[test]
fn encoded_reserved_characters_in_patterns_match_the_normalized_path() {
    let list = compile(r#"{"rules":[{"name":"colon","paths":["/a%3Ab/%C3%A9"]}]}"#);
    assert_eq!(get(&list, "/a%3Ab/%C3%A9").as_deref(), Some("colon"));
    assert_eq!(get(&list, "/a:b/%C3%A9"), None);
}

#[test]
fn exact_and_prefix_paths_are_indexed_like_patterns() {
    let list = compile(
        r#"{"rules":[
        {"name":"login","paths":[{"exact":"/login"}]},
        {"name":"orders","methods":["POST"],"paths":[{"prefix":"/api/orders"}]},
        {"name":"admin","paths":[{"prefix":"/admin/"}]},
        {"name":"star","paths":[{"exact":"/a*"}]},
        {"name":"root","methods":["DELETE"],"paths":[{"prefix":"/"}]}
        ]}"#,
    );
    assert_eq!(get(&list, "/login").as_deref(), Some("login"));
    assert_eq!(get(&list, "/login/"), None);
    let post = |path| rule_of(&list, &facts("POST", "example.com", path));
    assert_eq!(post("/api/orders").as_deref(), Some("orders"));
    assert_eq!(post("/api/ordersx").as_deref(), Some("orders"));
    assert_eq!(post("/api/orders/7/items").as_deref(), Some("orders"));
    assert_eq!(post("/api/order"), None);
    assert_eq!(get(&list, "/admin/").as_deref(), Some("admin"));
    assert_eq!(get(&list, "/admin/users/1").as_deref(), Some("admin"));
    assert_eq!(get(&list, "/admin"), None);
    assert_eq!(get(&list, "/a*").as_deref(), Some("star"));
    assert_eq!(get(&list, "/ab"), None, "a literal * in an exact path");
    assert_eq!(
        rule_of(&list, &facts("DELETE", "example.com", "/anything/at/all")).as_deref(),
        Some("root")
    );
}

#[test]
fn exact_and_prefix_paths_must_be_normalized() {
    assert_refused(
        &one_rule(r#""paths":[{"prefix":"admin"}]"#),
        "rules[0].paths[0].prefix",
        "must start with \"/\"",
    );
    assert_refused(
        &one_rule(r#""paths":[{"exact":"/%61dmin"}]"#),
        "rules[0].paths[0].exact",
        "not in normalized form",
    );
    assert_refused(
        &one_rule(r#""paths":[{"exact":"/a","prefix":"/b"}]"#),
        "rules[0].paths[0]",
        "needs exactly one of",
    );
}

#[test]
fn header_conditions_restrict_a_rule() {
    let list = compile(&one_rule(
        r#""paths":["/a"],"headers":[{"name":"x-tenant","exact":"acme"}]"#,
    ));
    assert!(list.needs_headers());
    let tenant: HeaderBlock = [("x-tenant", "acme")].into_iter().collect();
    let other: HeaderBlock = [("x-tenant", "evil")].into_iter().collect();
    let with = |headers| RequestFacts {
        headers,
        ..facts("GET", "", "/a")
    };
    assert_eq!(rule_of(&list, &with(&tenant)).as_deref(), Some("r"));
    assert_eq!(rule_of(&list, &with(&other)), None);
    assert_eq!(rule_of(&list, &with(&NO_HEADERS)), None);
    // `judge` reads no headers: such a rule fails closed there.
    let j = list.judge(&TargetRequest {
        method: "GET",
        path: "/a",
        ..TargetRequest::default()
    });
    assert_eq!(j.decision.outcome, AllowlistOutcome::Denied);
    assert!(!compile(&one_rule(r#""paths":["/a"]"#)).needs_headers());
}

#[test]
fn judge_facts_is_judge_with_facts_normalized_once() {
    let list = compile(
        r#"{"rewrite_path":true,"rules":[{"name":"a","hosts":["shop.example.com"],"paths":["/a/b"]}]}"#,
    );
    let facts = RequestFacts::new(
        "GET",
        "/a/./b?x=1",
        "Shop.Example.com:80",
        "http",
        &NO_HEADERS,
        Peer::default(),
    );
    let by_facts = list.judge_facts(&facts);
    let by_target = list.judge(&TargetRequest {
        method: "GET",
        path: "/a/./b?x=1",
        authority: "Shop.Example.com:80",
        scheme: "http",
        ..TargetRequest::default()
    });
    assert_eq!(by_facts, by_target);
    assert_eq!(by_facts.rule, Some(0));
    assert_eq!(by_facts.rewritten_path.as_deref(), Some("/a/b?x=1"));
    let malformed = RequestFacts::new("GET", "/a%2fb", "h", "http", &NO_HEADERS, Peer::default());
    let j = list.judge_facts(&malformed);
    assert!(j.malformed);
    assert_eq!(j.decision.reason.as_deref(), Some("encoded_slash"));
}

#[test]
fn trie_agrees_with_the_shared_matchers_on_prefixes_and_exact_paths() {
    // The index and `PathMatch::matches` (what the mirror uses) must select the same rule.
    let alphabet = ["a", "b", "ab", ""];
    let mut rng = Lcg(11);
    for round in 0..30 {
        let mut raws: Vec<crate::matching::RawPathMatch> = Vec::new();
        for _ in 0..(1 + rng.next(20)) {
            let len = 1 + rng.next(3);
            let segs: Vec<&str> = (0..len)
                .map(|i| match alphabet[rng.next(4)] {
                    "" if i + 1 < len => "a",
                    s => s,
                })
                .collect();
            let text = format!("/{}", segs.join("/"));
            let raw = match rng.next(3) {
                0 => crate::matching::RawPathMatch::Exact { exact: text },
                1 => crate::matching::RawPathMatch::Prefix { prefix: text },
                _ => crate::matching::RawPathMatch::Pattern(text),
            };
            if !raws.contains(&raw) {
                raws.push(raw);
            }
        }
        let rules: Vec<serde_json::Value> = raws
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let p = match p {
                    crate::matching::RawPathMatch::Pattern(s) => serde_json::json!(s),
                    crate::matching::RawPathMatch::Exact { exact } => {
                        serde_json::json!({ "exact": exact })
                    }
                    crate::matching::RawPathMatch::Prefix { prefix } => {
                        serde_json::json!({ "prefix": prefix })
                    }
                };
                serde_json::json!({"name": format!("r{i}"), "paths": [p]})
            })
            .collect();
        let list = compile(&serde_json::json!({ "rules": rules }).to_string());
        let matchers: Vec<crate::matching::PathMatch> = raws
            .iter()
            .map(|r| crate::matching::PathMatch::parse(r).unwrap())
            .collect();
        for _ in 0..200 {
            let len = 1 + rng.next(4);
            let segs: Vec<&str> = (0..len)
                .map(|i| match alphabet[rng.next(4)] {
                    "" if i + 1 < len => "b",
                    s => s,
                })
                .collect();
            let path = format!("/{}", segs.join("/"));
            let linear = matchers.iter().position(|m| m.matches(Some(&path)));
            assert_eq!(
                list.matching_rule(&facts("GET", "", &path)),
                linear,
                "round {round}: {path} against {raws:?}"
            );
        }
    }
}

// ---------------------------------------------------------------- matcher: other conditions

#[test]
fn methods_are_exact_and_case_sensitive() {
    let list = compile(&one_rule(r#""methods":["GET","PROPFIND"],"paths":["/a"]"#));
    assert!(list.matching_rule(&facts("GET", "", "/a")).is_some());
    assert!(list.matching_rule(&facts("PROPFIND", "", "/a")).is_some());
    assert!(list.matching_rule(&facts("get", "", "/a")).is_none());
    assert!(list.matching_rule(&facts("POST", "", "/a")).is_none());
}

#[test]
fn hosts_exact_and_wildcard() {
    let list = compile(
        r#"{"rules":[
        {"name":"exact","hosts":["Api.Example.com."],"paths":["/a"]},
        {"name":"wild","hosts":["*.example.org"],"paths":["/a"]},
        {"name":"v6","hosts":["[2001:0db8:0:0::1]"]},
        {"name":"v4","hosts":["10.1.2.3"]}
        ]}"#,
    );
    let at = |host: &str, path: &str| rule_of(&list, &facts("GET", host, path));
    assert_eq!(at("api.example.com", "/a").as_deref(), Some("exact"));
    assert_eq!(at("example.com", "/a"), None);
    assert_eq!(at("www.api.example.com", "/a"), None);
    assert_eq!(at("a.example.org", "/a").as_deref(), Some("wild"));
    assert_eq!(at("a.b.example.org", "/a").as_deref(), Some("wild"));
    assert_eq!(
        at("example.org", "/a"),
        None,
        "a wildcard needs a label before the suffix"
    );
    assert_eq!(at("badexample.org", "/a"), None);
    assert_eq!(at("a.example.org", "/b"), None);
    assert_eq!(at("[2001:db8::1]", "/x").as_deref(), Some("v6"));
    assert_eq!(at("10.1.2.3", "/x").as_deref(), Some("v4"));
    assert_eq!(
        at("", "/a"),
        None,
        "host rules never match a request without host"
    );
}

#[test]
fn first_rule_in_policy_order_wins_across_host_buckets() {
    let list = compile(
        r#"{"rules":[
        {"name":"any-host","paths":["/p/**"],"methods":["POST"]},
        {"name":"wild","hosts":["*.example.com"],"paths":["/p/*"]},
        {"name":"exact","hosts":["a.example.com"],"paths":["/p/x"]},
        {"name":"any-host-late","paths":["/p/x"]}
        ]}"#,
    );
    let at = |method: &str, host: &str| rule_of(&list, &facts(method, host, "/p/x"));
    assert_eq!(at("POST", "a.example.com").as_deref(), Some("any-host"));
    assert_eq!(at("GET", "a.example.com").as_deref(), Some("wild"));
    assert_eq!(at("GET", "other.net").as_deref(), Some("any-host-late"));
}

#[test]
fn candidate_that_fails_falls_through_to_later_rule_on_same_path() {
    let list = compile(
        r#"{"rules":[
        {"name":"writers","methods":["POST"],"paths":["/doc"]},
        {"name":"readers","methods":["GET"],"paths":["/doc"]}
        ]}"#,
    );
    assert_eq!(
        rule_of(&list, &facts("GET", "h", "/doc")).as_deref(),
        Some("readers")
    );
    assert_eq!(
        rule_of(&list, &facts("POST", "h", "/doc")).as_deref(),
        Some("writers")
    );
    assert_eq!(rule_of(&list, &facts("DELETE", "h", "/doc")), None);
}

#[test]
fn query_constraints() {
    let list = compile(&one_rule(
        r#""query":[{"name":"api key","present":true},{"name":"debug","absent":true},{"name":"v","equals":"2 b"}]"#,
    ));
    let q = |query: Option<&str>| {
        list.matching_rule(&with_query(facts("GET", "", "/"), query))
            .is_some()
    };
    assert!(q(Some("api+key=&v=2+b")));
    assert!(q(Some("v=2%20b&api%20key=x")));
    assert!(!q(None));
    assert!(!q(Some("v=2+b")), "api key missing");
    assert!(
        !q(Some("api+key=1&v=2+b&debug")),
        "debug present without value"
    );
    assert!(!q(Some("api+key=1&v=2+b&debug=0")));
    assert!(!q(Some("api+key=1&v=3")));
    assert!(!q(Some("api+key=1")), "equals needs the parameter");
    assert!(
        !q(Some("api+key=1&v=2+b&v=3")),
        "every occurrence must equal"
    );
    assert!(q(Some("api+key=1&v=2+b&v=2%20b")));
}

#[test]
fn cidr_sources() {
    let list = compile(&one_rule(
        r#""sources":{"cidrs":["10.0.0.0/8","2001:db8::/32","192.168.1.7"]}"#,
    ));
    let from = |addr: Option<&str>| list.matching_rule(&from_peer(addr, None)).is_some();
    assert!(from(Some("10.1.2.3:51234")));
    assert!(from(Some("[2001:db8::5]:443")));
    assert!(from(Some("[::ffff:10.9.9.9]:80")), "IPv4-mapped IPv6");
    assert!(from(Some("192.168.1.7:1")));
    assert!(from(Some("10.0.0.1")));
    assert!(!from(Some("192.168.1.8:1")));
    assert!(!from(Some("11.0.0.1:80")));
    assert!(!from(Some("garbage")));
    assert!(!from(None));
}

#[test]
fn principal_and_namespace_sources() {
    let list = compile(
        r#"{"rules":[
        {"name":"web","sources":{"principals":["spiffe://cluster.local/ns/shop/sa/web"]}},
        {"name":"ops","sources":{"principals":["spiffe://cluster.local/ns/ops/*"]}},
        {"name":"ns","sources":{"namespaces":["billing"]}}
        ]}"#,
    );
    let peer = |p: Option<&str>| rule_of(&list, &from_peer(None, p));
    assert_eq!(
        peer(Some("spiffe://cluster.local/ns/shop/sa/web")).as_deref(),
        Some("web")
    );
    assert_eq!(peer(Some("spiffe://cluster.local/ns/shop/sa/web2")), None);
    assert_eq!(
        peer(Some("spiffe://cluster.local/ns/ops/sa/x")).as_deref(),
        Some("ops")
    );
    assert_eq!(
        peer(Some("spiffe://cluster.local/ns/opsx/sa/x")),
        None,
        "prefix ends at a /"
    );
    assert_eq!(peer(Some("spiffe://other.domain/ns/ops/sa/x")), None);
    assert_eq!(
        peer(Some("spiffe://any.td/ns/billing/sa/api")).as_deref(),
        Some("ns")
    );
    assert_eq!(peer(Some("spiffe://any.td/ns/billing/x/api")), None);
    assert_eq!(peer(Some("spiffe://any.td/ns/billing")), None);
    assert_eq!(peer(None), None);
}

#[test]
fn every_named_source_kind_must_hold() {
    let list = compile(&one_rule(
        r#""sources":{"cidrs":["10.0.0.0/8"],"namespaces":["shop"]}"#,
    ));
    let req = |addr: &str, peer: &str| {
        list.matching_rule(&from_peer(Some(addr), Some(peer)))
            .is_some()
    };
    assert!(req("10.0.0.1:1", "spiffe://td/ns/shop/sa/a"));
    assert!(!req("11.0.0.1:1", "spiffe://td/ns/shop/sa/a"));
    assert!(!req("10.0.0.1:1", "spiffe://td/ns/other/sa/a"));
}

#[test]
fn spiffe_namespace_parses_only_the_kubernetes_shape() {
    assert_eq!(
        spiffe_namespace("spiffe://cluster.local/ns/shop/sa/web"),
        Some("shop")
    );
    assert_eq!(
        spiffe_namespace("spiffe://cluster.local/ns/shop/sa/web/x"),
        None
    );
    assert_eq!(spiffe_namespace("spiffe://cluster.local/ns/shop"), None);
    assert_eq!(spiffe_namespace("spiffe:///ns/shop/sa/web"), None);
    assert_eq!(spiffe_namespace("spiffe://td/ns//sa/web"), None);
    assert_eq!(spiffe_namespace("https://td/ns/shop/sa/web"), None);
}

/// A small deterministic generator (no `rand` in this crate: it must build for wasm32).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) % below as u64) as usize
    }
}

/// The obvious list scan, as the reference the trie must agree with.
fn reference_match(patterns: &[(Vec<&str>, bool)], path: &str) -> Option<usize> {
    let segs: Vec<&str> = path[1..].split('/').collect();
    patterns.iter().position(|(pat, rest)| {
        if *rest {
            segs.len() >= pat.len()
                && pat
                    .iter()
                    .zip(&segs)
                    .all(|(p, s)| *p == "*" && !s.is_empty() || p == s)
        } else {
            segs.len() == pat.len()
                && pat
                    .iter()
                    .zip(&segs)
                    .all(|(p, s)| *p == "*" && !s.is_empty() || p == s)
        }
    })
}

#[test]
fn trie_agrees_with_a_list_scan_on_random_policies() {
    let alphabet = ["a", "b", "c", ""];
    let mut rng = Lcg(7);
    for round in 0..40 {
        let mut patterns: Vec<(Vec<&str>, bool)> = Vec::new();
        let mut texts = Vec::new();
        for _ in 0..(1 + rng.next(60)) {
            let len = rng.next(4);
            let pat: Vec<&str> = (0..len)
                .map(|i| match rng.next(4) {
                    0 => "*",
                    // Empty exact segments are only valid last.
                    _ => match alphabet[rng.next(4)] {
                        "" if i + 1 < len => "a",
                        s => s,
                    },
                })
                .collect();
            let rest = rng.next(3) == 0 && pat.last() != Some(&"");
            let pat = if pat.is_empty() && !rest {
                vec![""]
            } else {
                pat
            };
            let text = format!(
                "/{}{}",
                pat.join("/"),
                if rest {
                    if pat.is_empty() {
                        "**"
                    } else {
                        "/**"
                    }
                } else {
                    ""
                }
            );
            if texts.contains(&text) {
                continue;
            }
            texts.push(text);
            patterns.push((pat, rest));
        }
        let rules: Vec<serde_json::Value> = texts
            .iter()
            .enumerate()
            .map(|(i, t)| serde_json::json!({"name": format!("r{i}"), "paths": [t]}))
            .collect();
        let json = serde_json::json!({ "rules": rules }).to_string();
        let list = compile(&json);
        for _ in 0..200 {
            let len = 1 + rng.next(4);
            let segs: Vec<&str> = (0..len)
                .map(|i| match alphabet[rng.next(4)] {
                    "" if i + 1 < len => "b",
                    s => s,
                })
                .collect();
            let path = format!("/{}", segs.join("/"));
            assert_eq!(
                list.matching_rule(&facts("GET", "", &path)),
                reference_match(&patterns, &path),
                "round {round}: {path} against {texts:?}"
            );
        }
    }
}

// ---------------------------------------------------------------- judge: normalize + decide

fn target<'a>(path: &'a str, authority: &'a str) -> TargetRequest<'a> {
    TargetRequest {
        method: "GET",
        path,
        authority,
        scheme: "http",
        ..TargetRequest::default()
    }
}

const TABLE_POLICY: &str = r#"{"rules":[
    {"name":"private","paths":["/private"]},
    {"name":"ab","paths":["/a/b"]},
    {"name":"app1-admin","paths":["/app1/admin"]},
    {"name":"public","paths":["/public/data/xyz"]},
    {"name":"abc","paths":["/some/abc"]},
    {"name":"host","hosts":["example.com"],"paths":["/h"]}
]}"#;

#[test]
fn normalization_table_judged_paths() {
    let list = compile(TABLE_POLICY);
    for (path, rule) in [
        ("/info/../private", "private"),
        ("/a//b", "ab"),
        ("/app1/admin#foo", "app1-admin"),
        ("/public/./data/abc/../xyz", "public"),
        ("/some/%61%62%63", "abc"),
    ] {
        let j = list.judge(&target(path, "x.test"));
        assert_eq!(j.decision.outcome, AllowlistOutcome::Allowed, "{path}");
        assert_eq!(j.decision.rule.as_deref(), Some(rule), "{path}");
        assert_eq!(j.rule, list.rule_names().position(|n| n == rule));
        assert!(j.response.is_none() && !j.malformed);
    }
}

#[test]
fn normalization_table_malformed_paths() {
    let list = compile(TABLE_POLICY);
    for (path, reason) in [
        ("/something%2F..%2Fadmin", "encoded_slash"),
        ("/user/..;foo=bar/admin", "dot_segment_parameter"),
        ("/foo%00.html", "nul_or_control"),
        ("/a%c0%afb", "overlong_utf8"),
        ("/a%252fb", "double_encoding"),
    ] {
        let j = list.judge(&target(path, "x.test"));
        assert_eq!(j.decision.outcome, AllowlistOutcome::Malformed, "{path}");
        assert_eq!(j.decision.reason.as_deref(), Some(reason), "{path}");
        assert!(j.malformed);
        assert_eq!(j.response.map(|r| r.status), Some(400));
        assert_eq!(j.rule, None);
    }
}

#[test]
fn normalization_table_hosts() {
    let list = compile(TABLE_POLICY);
    for (authority, scheme) in [
        ("Example.COM.", "http"),
        ("example.com:443", "https"),
        ("example.com:80", "http"),
        ("EXAMPLE.com:8080", "http"),
    ] {
        let j = list.judge(&TargetRequest {
            scheme,
            ..target("/h", authority)
        });
        assert_eq!(
            j.decision.rule.as_deref(),
            Some("host"),
            "{authority} {scheme}"
        );
    }
    assert_eq!(
        list.judge(&target("/h", "example.org")).decision.outcome,
        AllowlistOutcome::Denied
    );
    let bad_host = list.judge(&target("/h", "exa mple.com"));
    assert_eq!(bad_host.decision.outcome, AllowlistOutcome::Malformed);
    assert_eq!(bad_host.decision.reason.as_deref(), Some("invalid_host"));
}

#[test]
fn denied_in_enforce_would_deny_in_monitor() {
    let enforce = compile(r#"{"rules":[{"name":"a","paths":["/a"]}]}"#);
    let j = enforce.judge(&target("/b", "h"));
    assert_eq!(j.decision.outcome, AllowlistOutcome::Denied);
    assert_eq!(j.decision.reason.as_deref(), Some("no_rule_matched"));
    assert_eq!(j.decision.rule, None);
    assert_eq!(j.response.map(|r| r.status), Some(403));

    let monitor = compile(r#"{"mode":"monitor","rules":[{"name":"a","paths":["/a"]}]}"#);
    let j = monitor.judge(&target("/b", "h"));
    assert_eq!(j.decision.outcome, AllowlistOutcome::WouldDeny);
    assert_eq!(j.decision.reason.as_deref(), Some("no_rule_matched"));
    assert!(j.response.is_none());
    let j = monitor.judge(&target("/a", "h"));
    assert_eq!(j.decision.outcome, AllowlistOutcome::Allowed);
    assert_eq!(j.decision.rule.as_deref(), Some("a"));
}

#[test]
fn malformed_under_every_mode() {
    let path = "/a%2Fb";
    let monitor = compile(r#"{"mode":"monitor","rules":[{"name":"all"}]}"#);
    let j = monitor.judge(&target(path, "h"));
    assert_eq!(j.decision.outcome, AllowlistOutcome::WouldDeny);
    assert_eq!(j.decision.reason.as_deref(), Some("encoded_slash"));
    assert!(j.malformed && j.response.is_none() && j.rewritten_path.is_none());

    let lenient = compile(r#"{"reject_malformed":false,"rules":[{"name":"all"}]}"#);
    let j = lenient.judge(&target(path, "h"));
    assert_eq!(
        j.decision.outcome,
        AllowlistOutcome::Denied,
        "never allowed, even by allow-all"
    );
    assert_eq!(j.decision.reason.as_deref(), Some("encoded_slash"));
    assert_eq!(j.response.map(|r| r.status), Some(403));

    let custom = compile(r#"{"malformed_response":{"status":418},"rules":[]}"#);
    assert_eq!(
        custom.judge(&target(path, "h")).response.map(|r| r.status),
        Some(418)
    );
}

#[test]
fn rewrite_path_keeps_the_query_and_only_when_forwarding() {
    let list = compile(r#"{"rewrite_path":true,"rules":[{"name":"p","paths":["/private"]}]}"#);
    let j = list.judge(&target("/info/../private?x=%2F&y#frag", "h"));
    assert_eq!(j.rewritten_path.as_deref(), Some("/private?x=%2F&y"));
    assert_eq!(
        list.judge(&target("/private?q", "h")).rewritten_path,
        None,
        "already canonical"
    );
    assert_eq!(
        list.judge(&target("/x/../nope", "h")).rewritten_path,
        None,
        "denied"
    );
    let default = compile(r#"{"rules":[{"name":"p","paths":["/private"]}]}"#);
    assert_eq!(
        default
            .judge(&target("/info/../private", "h"))
            .rewritten_path
            .as_deref(),
        Some("/private"),
        "rewriting is the default"
    );
    let off = compile(r#"{"rewrite_path":false,"rules":[{"name":"p","paths":["/private"]}]}"#);
    assert_eq!(
        off.judge(&target("/info/../private", "h")).rewritten_path,
        None
    );
    let monitor = compile(r#"{"mode":"monitor","rewrite_path":true,"rules":[]}"#);
    assert_eq!(
        monitor
            .judge(&target("/a//b", "h"))
            .rewritten_path
            .as_deref(),
        Some("/a/b"),
        "monitor forwards what it judged"
    );
}

#[test]
fn judge_uses_sources_from_the_target_request() {
    let list = compile(
        r#"{"rules":[{"name":"mesh","sources":{"cidrs":["10.0.0.0/8"],"namespaces":["shop"]}}]}"#,
    );
    let j = list.judge(&TargetRequest {
        source_address: Some("10.1.1.1:4000"),
        peer_principal: Some("spiffe://cluster.local/ns/shop/sa/web"),
        ..target("/", "h")
    });
    assert_eq!(j.decision.rule.as_deref(), Some("mesh"));
    let j = list.judge(&TargetRequest {
        source_address: Some("10.1.1.1:4000"),
        peer_principal: Some(""),
        ..target("/", "h")
    });
    assert_eq!(j.decision.outcome, AllowlistOutcome::Denied);
}

#[test]
fn request_without_authority_matches_only_host_free_rules() {
    let list =
        compile(r#"{"rules":[{"name":"h","hosts":["a.test"]},{"name":"any","paths":["/x"]}]}"#);
    assert_eq!(
        list.judge(&target("/x", "")).decision.rule.as_deref(),
        Some("any")
    );
    assert_eq!(
        list.judge(&target("/y", "")).decision.outcome,
        AllowlistOutcome::Denied
    );
}

#[test]
fn default_deny_body_carries_only_error_and_request_id() {
    let list = compile(r#"{"rules":[]}"#);
    let body = list.deny_response().body(Some("abc-123"));
    assert_eq!(body, br#"{"error":"forbidden","request_id":"abc-123"}"#);
    let body = list.malformed_response().body(None);
    assert_eq!(body, br#"{"error":"bad_request","request_id":null}"#);
    let hostile = format!("\"}},\"x\":1{}", "é".repeat(200));
    let body = list.deny_response().body(Some(&hostile));
    let parsed: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(parsed.as_object().unwrap().len(), 2);
    assert!(parsed["request_id"].as_str().unwrap().len() <= 128);
}

#[test]
fn trust_domain_wide_principal_prefix() {
    let list = compile(&one_rule(
        r#""sources":{"principals":["spiffe://cluster.local/*"]}"#,
    ));
    let peer = |p: &str| list.matching_rule(&from_peer(None, Some(p))).is_some();
    assert!(peer("spiffe://cluster.local/ns/a/sa/b"));
    assert!(!peer("spiffe://cluster.localhost/ns/a/sa/b"));
    assert!(!peer("spiffe://other/ns/a/sa/b"));
}
