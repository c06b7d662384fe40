use super::*;
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

#[test]
fn spiffe_id_parts_of_an_istio_workload_id() {
    let id = SpiffeId::parse("spiffe://cluster.local/ns/shop/sa/web").unwrap();
    assert_eq!(id.trust_domain(), "cluster.local");
    assert_eq!(id.path(), "/ns/shop/sa/web");
    assert_eq!(id.namespace(), Some("shop"));
    assert_eq!(id.service_account(), Some("web"));
}

#[test]
fn spiffe_id_other_shapes_have_no_namespace() {
    for id in [
        "spiffe://cluster.local/ns/shop/sa/web/x",
        "spiffe://cluster.local/ns/shop",
        "spiffe://td/ns//sa/web",
        "spiffe://td/ns/shop/sa/",
        "spiffe://td/x/ns/shop/sa/web",
        "spiffe://td/ns/shop/account/web",
        "spiffe://td",
    ] {
        let parsed = SpiffeId::parse(id).unwrap();
        assert_eq!(parsed.namespace(), None, "{id}");
        assert_eq!(parsed.service_account(), None, "{id}");
        assert_eq!(spiffe_namespace(id), None, "{id}");
    }
    assert_eq!(SpiffeId::parse("spiffe://td").unwrap().path(), "");
}

#[test]
fn spiffe_id_needs_the_scheme_and_a_trust_domain() {
    for id in [
        "https://td/ns/shop/sa/web",
        "SPIFFE://td/ns/shop/sa/web",
        "spiffe:///ns/shop/sa/web",
        "spiffe://",
        "",
    ] {
        assert_eq!(SpiffeId::parse(id), None, "{id}");
    }
}

#[test]
fn principal_patterns_exact_and_prefix() {
    let exact = PrincipalPattern::parse("spiffe://cluster.local/ns/shop/sa/web").unwrap();
    assert!(exact.matches("spiffe://cluster.local/ns/shop/sa/web"));
    assert!(!exact.matches("spiffe://cluster.local/ns/shop/sa/web2"));
    let prefix = PrincipalPattern::parse("spiffe://cluster.local/ns/ops/*").unwrap();
    assert_eq!(
        prefix,
        PrincipalPattern::Prefix("spiffe://cluster.local/ns/ops/".to_string())
    );
    assert!(prefix.matches("spiffe://cluster.local/ns/ops/sa/x"));
    assert!(
        !prefix.matches("spiffe://cluster.local/ns/opsx/sa/x"),
        "prefix ends at a /"
    );
    assert!(!prefix.matches("spiffe://other.domain/ns/ops/sa/x"));
    let domain = PrincipalPattern::parse("spiffe://cluster.local/*").unwrap();
    assert!(domain.matches("spiffe://cluster.local/ns/a/sa/b"));
    assert!(!domain.matches("spiffe://cluster.localx/ns/a/sa/b"));
}

#[test]
fn principal_patterns_refused_with_a_reason() {
    let cases = [
        ("http://td/ns/a/sa/b", "does not start with spiffe://"),
        ("spiffe:/td/ns/a", "does not start with spiffe://"),
        ("spiffe://TD/x", "trust domain must be lowercase"),
        ("spiffe://td:8443/x", "trust domain must be lowercase"),
        ("spiffe://*/ns/x", "trust domain must be lowercase"),
        ("spiffe:///*", "trust domain must be lowercase"),
        ("spiffe://td", "has no path"),
        ("spiffe://td/", "non-empty"),
        ("spiffe://td/a/./b", "non-empty"),
        ("spiffe://td/a//*", "non-empty"),
        ("spiffe://td/a*/b", "only as the last segment"),
        ("spiffe://td/a/**", "only as the last segment"),
        ("spiffe://td/a%20b", "only as the last segment"),
    ];
    for (raw, reason) in cases {
        let err = PrincipalPattern::parse(raw).unwrap_err();
        assert!(err.to_string().contains(reason), "{raw}: {err}");
    }
}

#[test]
fn namespaces_are_dns_1123_labels() {
    for ok in ["shop", "a", "payments-dev", "a1", &"a".repeat(63)] {
        assert_eq!(check_namespace(ok), Ok(()), "{ok}");
    }
    for bad in [
        "Shop",
        "-shop",
        "shop-",
        "sh_op",
        "",
        "a/b",
        &"a".repeat(64),
    ] {
        assert_eq!(check_namespace(bad), Err(NamespaceError), "{bad}");
    }
}

#[test]
fn cidrs_and_bare_addresses() {
    assert_eq!(parse_cidr("10.0.0.0/8").unwrap().to_string(), "10.0.0.0/8");
    assert_eq!(parse_cidr("192.0.2.7").unwrap().to_string(), "192.0.2.7/32");
    assert_eq!(
        parse_cidr("2001:db8::1").unwrap().to_string(),
        "2001:db8::1/128"
    );
    for bad in ["10.0.0.0/33", "10.0.0", "example.com", "::/129", ""] {
        assert_eq!(parse_cidr(bad), Err(CidrError::Invalid), "{bad}");
    }
    let err = parse_cidr("10.1.2.3/8").unwrap_err();
    assert_eq!(err.to_string(), "host bits set; did you mean 10.0.0.0/8?");
}

#[test]
fn cidr_contains_counts_mapped_ipv6_as_ipv4() {
    let net = parse_cidr("10.0.0.0/8").unwrap();
    assert!(cidr_contains(&net, "10.9.9.9".parse().unwrap()));
    assert!(cidr_contains(&net, "::ffff:10.9.9.9".parse().unwrap()));
    assert!(!cidr_contains(&net, "11.0.0.1".parse().unwrap()));
    let v6 = parse_cidr("2001:db8::/32").unwrap();
    assert!(cidr_contains(&v6, "2001:db8::5".parse().unwrap()));
    assert!(!cidr_contains(&v6, "10.9.9.9".parse().unwrap()));
}

#[test]
fn socket_addresses_as_envoy_reports_them() {
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    assert_eq!(
        parse_socket_address("10.1.2.3:51234"),
        Some((ip("10.1.2.3"), Some(51234)))
    );
    assert_eq!(
        parse_socket_address("[2001:db8::1]:443"),
        Some((ip("2001:db8::1"), Some(443)))
    );
    assert_eq!(
        parse_socket_address("10.0.0.1"),
        Some((ip("10.0.0.1"), None))
    );
    assert_eq!(
        parse_socket_address("2001:db8::1"),
        Some((ip("2001:db8::1"), None))
    );
    assert_eq!(
        parse_socket_address("[2001:db8::1]"),
        Some((ip("2001:db8::1"), None))
    );
    assert_eq!(
        parse_socket_address(" 203.0.113.7 "),
        Some((ip("203.0.113.7"), None))
    );
    for bad in [
        "garbage",
        "",
        "10.0.0.1:99999",
        "[2001:db8::1",
        "example.com:80",
    ] {
        assert_eq!(parse_socket_address(bad), None, "{bad}");
    }
}
