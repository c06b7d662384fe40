use super::*;

fn findings(rules: serde_json::Value) -> Vec<Finding> {
    let text = serde_json::json!({ "rules": rules }).to_string();
    let raw: RawPolicy = meshsight_policy::ConfigError::parse_json(text.as_bytes()).unwrap();
    // What check analyses has compiled.
    AllowList::try_from(raw.clone()).unwrap();
    analyse(&raw, false)
}

fn kinds(f: &[Finding]) -> Vec<(&str, &str)> {
    f.iter().map(|f| (f.rule.as_str(), f.kind)).collect()
}

#[test]
fn a_rule_under_a_wider_earlier_rule_is_shadowed() {
    let f = findings(serde_json::json!([
        {"name": "api", "methods": ["GET", "POST"], "paths": ["/api/**"]},
        {"name": "items", "methods": ["GET"], "paths": ["/api/v1/items/{id}"]},
        {"name": "exact", "paths": [{"exact": "/api/x"}], "methods": ["GET"]},
        {"name": "other", "methods": ["GET"], "paths": ["/other/{id}"]}
    ]));
    assert_eq!(
        kinds(&f),
        vec![("items", "shadowed"), ("exact", "shadowed")]
    );
    assert!(f[0].message.contains("rules[0] (api)"), "{}", f[0].message);
    assert_eq!(f[0].at, "rules[1]");
}

#[test]
fn narrower_earlier_rules_do_not_shadow() {
    let f = findings(serde_json::json!([
        {"name": "a", "methods": ["GET"], "paths": ["/api/**"], "sources": {"namespaces": ["web"]}},
        {"name": "b", "methods": ["GET"], "paths": ["/api/v1"]},
        {"name": "c", "methods": ["POST"], "hosts": ["a.example.com"], "paths": ["/x"]},
        {"name": "d", "methods": ["POST"], "hosts": ["b.example.com"], "paths": ["/x"]}
    ]));
    // b overlaps a (a request from `web` matches both) but is not shadowed: other sources.
    assert_eq!(kinds(&f), vec![("b", "overlap")]);
}

#[test]
fn wildcard_hosts_and_prefixes_shadow() {
    let f = findings(serde_json::json!([
        {"name": "any-sub", "hosts": ["*.example.com"], "paths": [{"prefix": "/static/"}]},
        {"name": "one-sub", "hosts": ["cdn.example.com"], "paths": ["/static/img/*"]}
    ]));
    assert_eq!(kinds(&f), vec![("one-sub", "shadowed")]);
}

#[test]
fn rules_that_can_never_match_are_named() {
    let f = findings(serde_json::json!([
        {"name": "host-header", "headers": [{"name": "Host", "exact": "a"}], "paths": ["/a"]},
        {"name": "contradiction", "paths": ["/b"], "query": [{"name": "x", "present": true}, {"name": "x", "absent": true}]}
    ]));
    assert!(f
        .iter()
        .any(|f| f.rule == "host-header" && f.kind == "never_matches"));
}

#[test]
fn pattern_coverage_follows_the_matcher() {
    let p = |s: &str| PathPattern::parse(s).unwrap();
    assert!(pattern_covers(&p("/a/**"), &p("/a/b/*")));
    assert!(pattern_covers(&p("/a/*"), &p("/a/b")));
    assert!(!pattern_covers(&p("/a/b"), &p("/a/*")));
    assert!(!pattern_covers(&p("/a/*"), &p("/a/*/c")));
    assert!(pattern_covers(&p("/**"), &p("/x/**")));
    assert!(!pattern_covers(&p("/a/*/**"), &p("/a/**")));
    assert!(patterns_may_meet(&p("/a/*"), &p("/*/b")));
    assert!(!patterns_may_meet(&p("/a/*"), &p("/b/*")));
    assert!(!patterns_may_meet(&p("/a/*"), &p("/a/*/c")));
}

const ORDERS: &str = "spiffe://cluster.local/ns/shop/sa/orders";
const CHECKOUT: &str = "spiffe://cluster.local/ns/shop/sa/checkout";
const WEB: &str = "spiffe://cluster.local/ns/shop/sa/web";
const PROMETHEUS: &str = "spiffe://cluster.local/ns/monitoring/sa/prometheus";

fn policy(rules: serde_json::Value) -> RawPolicy {
    let text = serde_json::json!({ "rules": rules }).to_string();
    let raw: RawPolicy = meshsight_policy::ConfigError::parse_json(text.as_bytes()).unwrap();
    AllowList::try_from(raw.clone()).unwrap();
    raw
}

/// Orders and checkout hit rule 0, web hits rule 1, prometheus rule 2, a kubelet probe rule 3.
fn shop_callers(rules: usize) -> RuleCallers {
    let mut c = RuleCallers::new(rules);
    for _ in 0..3 {
        c.add(Some(0), Some(ORDERS));
        c.add(Some(0), Some(CHECKOUT));
        c.add(Some(1), Some(WEB));
        c.add(Some(2), Some(PROMETHEUS));
        c.add(Some(3), None);
        c.add(None, Some(WEB));
    }
    c
}

#[test]
fn a_namespace_source_whose_other_principals_never_called_the_rule_is_named() {
    let raw = policy(serde_json::json!([
        {"name": "charges", "methods": ["POST"], "paths": ["/charges"], "sources": {"namespaces": ["shop"]}},
        {"name": "catalog", "methods": ["GET"], "paths": ["/products"], "sources": {"namespaces": ["shop"]}},
        {"name": "metrics", "methods": ["GET"], "paths": ["/metrics"], "sources": {"namespaces": ["monitoring"]}},
        {"name": "health", "methods": ["GET"], "paths": ["/healthz"]}
    ]));
    let c = shop_callers(4);
    assert_eq!(c.hits, vec![6, 3, 3, 3]);
    let f = unseen_sources(&raw, &c, false);
    assert_eq!(
        kinds(&f),
        vec![("charges", "unseen_source"), ("catalog", "unseen_source")]
    );
    assert_eq!(f[0].at, "rules[0]");
    assert_eq!(
        f[0].message,
        format!("admits every workload of namespace \"shop\": only {CHECKOUT}, {ORDERS} hit it, yet the records show {WEB} there never calling it (name principals: `meshsight learn --sources principals`)")
    );
    assert!(
        f[1].message.contains(&format!("only {WEB} hit it")),
        "{}",
        f[1].message
    );
    // monitoring has one principal and it called; health's callers had no identity.
}

#[test]
fn principals_that_never_called_the_rule_are_named() {
    let raw = policy(serde_json::json!([
        {"name": "charges", "methods": ["POST"], "paths": ["/charges"],
         "sources": {"principals": [ORDERS, CHECKOUT, WEB, "spiffe://cluster.local/ns/shop/sa/ghost"]}},
        {"name": "catalog", "methods": ["GET"], "paths": ["/products"],
         "sources": {"principals": ["spiffe://cluster.local/ns/shop/*"]}},
        {"name": "metrics", "methods": ["GET"], "paths": ["/metrics"],
         "sources": {"principals": ["spiffe://cluster.local/ns/ops/*"], "namespaces": ["monitoring"]}}
    ]));
    let f = unseen_sources(&raw, &shop_callers(4), true);
    let messages: Vec<&str> = f.iter().map(|f| f.message.as_str()).collect();
    assert_eq!(
        messages,
        vec![
            format!("admits principal {WEB}, which none of the 6 recorded requests that hit it came from: the records show it calling, but never this rule").as_str(),
            "admits principal spiffe://cluster.local/ns/shop/sa/ghost, which none of the 6 recorded requests that hit it came from: no record shows it at all",
            format!("admits every principal under spiffe://cluster.local/ns/shop/*: only {WEB} hit it, yet the records show {CHECKOUT}, {ORDERS} there never calling it (name principals: `meshsight learn --sources principals`)").as_str(),
            "admits every principal under spiffe://cluster.local/ns/ops/*, but none of the 3 recorded requests that hit it came from there",
        ]
    );
    assert!(f.iter().all(|f| f.at.starts_with("allowlist.rules[")));
}

#[test]
fn a_rule_without_sources_hit_only_by_mtls_peers_is_named() {
    let raw = policy(serde_json::json!([
        {"name": "charges", "methods": ["POST"], "paths": ["/charges"]},
        {"name": "unused", "methods": ["GET"], "paths": ["/unused"]},
        {"name": "metrics", "methods": ["GET"], "paths": ["/metrics"], "sources": {"cidrs": ["10.0.0.0/8"]}},
        {"name": "health", "methods": ["GET"], "paths": ["/healthz"]}
    ]));
    let mut c = shop_callers(4);
    c.hits[1] = 0;
    c.principals[1].clear();
    let f = unseen_sources(&raw, &c, false);
    // `unused` is never hit (never_hit says so); cidrs are not judged; health had a caller
    // without an identity.
    assert_eq!(kinds(&f), vec![("charges", "any_source")]);
    assert_eq!(
        f[0].message,
        format!("names no sources, so it admits any caller, but all 6 recorded requests that hit it came from 2 mTLS principal(s): {CHECKOUT}, {ORDERS} (name them in sources.principals)")
    );
}
