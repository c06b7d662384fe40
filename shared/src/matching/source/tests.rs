use super::*;
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

fn compile(json: &str) -> Result<SourceMatch, ConfigError> {
    let raw: RawSources = crate::ConfigError::parse_json(json.as_bytes()).unwrap();
    SourceMatch::compile("rules[0].sources", Some(&raw))
}

fn peer<'a>(address: Option<&str>, principal: Option<&'a str>) -> Peer<'a> {
    Peer::new(address.map(|a| a.parse().unwrap()), principal)
}

#[test]
fn absent_sources_match_any_peer() {
    let any = SourceMatch::compile("sources", None).unwrap();
    assert!(any.matches(&Peer::default()));
    assert!(!any.needs_address() && !any.needs_identity());
}

#[test]
fn empty_sources_and_empty_lists_are_refused() {
    let err = compile("{}").unwrap_err();
    assert_eq!(err.path, "rules[0].sources");
    assert!(err.reason.contains("must not be empty"), "{err}");
    for field in ["cidrs", "principals", "namespaces"] {
        let err = compile(&format!(r#"{{"{field}":[]}}"#)).unwrap_err();
        assert_eq!(err.path, format!("rules[0].sources.{field}"));
        assert!(err.reason.contains("must not be empty"), "{err}");
    }
}

#[test]
fn bad_entries_name_their_index() {
    let cases = [
        (
            r#"{"cidrs":["10.0.0.0/8","10.0.0.0/33"]}"#,
            "rules[0].sources.cidrs[1]",
            "is not a CIDR",
        ),
        (
            r#"{"cidrs":["10.1.2.3/8"]}"#,
            "rules[0].sources.cidrs[0]",
            "has host bits set; did you mean 10.0.0.0/8?",
        ),
        (
            r#"{"principals":["spiffe://*/ns/x"]}"#,
            "rules[0].sources.principals[0]",
            "is not a SPIFFE ID",
        ),
        (
            r#"{"namespaces":["ok","Payments"]}"#,
            "rules[0].sources.namespaces[1]",
            "\"Payments\" is not a namespace name",
        ),
        (
            r#"{"namespaces":["shop","shop"]}"#,
            "rules[0].sources.namespaces[1]",
            "duplicate entry",
        ),
    ];
    for (json, path, reason) in cases {
        let err = compile(json).unwrap_err();
        assert_eq!(err.path, path, "{json}");
        assert!(err.reason.contains(reason), "{json}: {err}");
    }
}

#[test]
fn cidrs_match_v4_v6_and_mapped_addresses() {
    let m = compile(r#"{"cidrs":["10.1.0.0/16","2001:db8::/32","192.0.2.7"]}"#).unwrap();
    assert!(m.needs_address() && !m.needs_identity());
    for (addr, want) in [
        ("10.1.2.3", true),
        ("10.2.0.1", false),
        ("2001:db8::1", true),
        ("::ffff:10.1.9.9", true),
        ("192.0.2.7", true),
        ("192.0.2.8", false),
    ] {
        assert_eq!(m.matches(&peer(Some(addr), None)), want, "{addr}");
    }
    assert!(!m.matches(&peer(None, None)));
}

#[test]
fn principals_exact_and_prefix() {
    let m = compile(
        r#"{"principals":["spiffe://cluster.local/ns/shop/sa/web","spiffe://cluster.local/ns/batch/*"]}"#,
    )
    .unwrap();
    for (id, want) in [
        ("spiffe://cluster.local/ns/shop/sa/web", true),
        ("spiffe://cluster.local/ns/shop/sa/web2", false),
        ("spiffe://cluster.local/ns/batch/sa/cron", true),
        ("spiffe://cluster.local/ns/batchx/sa/cron", false),
    ] {
        assert_eq!(m.matches(&peer(None, Some(id))), want, "{id}");
    }
    assert!(!m.matches(&peer(None, None)));
}

#[test]
fn namespaces_need_the_istio_workload_shape() {
    let m = compile(r#"{"namespaces":["payments"]}"#).unwrap();
    assert!(m.needs_identity());
    assert!(m.matches(&peer(None, Some("spiffe://td/ns/payments/sa/api"))));
    for id in [
        "spiffe://td/ns/payments-dev/sa/api",
        "spiffe://td/x/ns/payments/sa/api",
        "spiffe://td/ns/payments",
        "spiffe://td/ns/payments/sa/api/extra",
    ] {
        assert!(!m.matches(&peer(None, Some(id))), "{id}");
    }
    assert!(!m.matches(&peer(None, None)));
}

#[test]
fn every_named_kind_must_hold() {
    let m = compile(r#"{"cidrs":["10.0.0.0/8"],"namespaces":["shop"]}"#).unwrap();
    assert!(m.matches(&peer(Some("10.0.0.1"), Some("spiffe://td/ns/shop/sa/a"))));
    assert!(!m.matches(&peer(Some("11.0.0.1"), Some("spiffe://td/ns/shop/sa/a"))));
    assert!(!m.matches(&peer(Some("10.0.0.1"), Some("spiffe://td/ns/other/sa/a"))));
}

#[test]
fn an_identity_parsed_once_gives_the_same_peer_as_parsing_each_time() {
    for id in [
        "spiffe://cluster.local/ns/shop/sa/web",
        "spiffe://td/ns/a/sa/b",
        "spiffe://td/ns/a/sa/b/extra",
        "spiffe://td/workload",
        "not-a-spiffe-id",
        "",
    ] {
        let identity = PeerIdentity::new(id.to_string());
        assert_eq!(identity.is_none(), id.is_empty(), "{id:?}");
        let ip = Some("10.0.0.7".parse().unwrap());
        let cached = Peer::with_identity(ip, identity.as_ref());
        let parsed = Peer::new(ip, Some(id));
        assert_eq!(cached, parsed, "{id:?}");
        assert_eq!(
            identity.as_ref().and_then(PeerIdentity::namespace),
            crate::identity::spiffe_namespace(id),
            "{id:?}"
        );
    }
    let shop = PeerIdentity::new("spiffe://cluster.local/ns/shop/sa/web".into()).unwrap();
    assert_eq!(shop.namespace(), Some("shop"));
    assert_eq!(shop.id(), "spiffe://cluster.local/ns/shop/sa/web");
}
