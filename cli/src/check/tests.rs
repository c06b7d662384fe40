use super::*;

fn findings(rules: serde_json::Value) -> Vec<Finding> {
    let raw: RawPolicy = serde_json::from_value(serde_json::json!({ "rules": rules })).unwrap();
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
