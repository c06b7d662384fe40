use super::*;
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

#[test]
fn lookups_ignore_ascii_case_and_keep_order() {
    let headers = h(&[("X-Tag", "a"), ("accept", "*/*"), ("x-tag", "b")]);
    assert_eq!(header_value(&headers, "x-tag"), Some("a"));
    assert_eq!(header_value(&headers, "ACCEPT"), Some("*/*"));
    assert_eq!(header_value(&headers, "missing"), None);
    assert_eq!(
        header_values(&headers, "x-tag").collect::<Vec<_>>(),
        ["a", "b"]
    );
    assert_eq!(header_values(&headers, "missing").count(), 0);
}

#[test]
fn tokens() {
    for ok in ["x-request-id", "GET", "M-SEARCH", "a!#$%&'*+-.^_`|~9"] {
        assert!(is_token(ok), "{ok}");
    }
    for bad in ["", "a b", "a:b", "(x)", "é", "x\n"] {
        assert!(!is_token(bad), "{bad:?}");
    }
}

#[test]
fn authority_split_leniently() {
    assert_eq!(
        split_authority("shop.example.com"),
        ("shop.example.com", None)
    );
    assert_eq!(
        split_authority("shop.example.com:8080"),
        ("shop.example.com", Some("8080"))
    );
    assert_eq!(split_authority("host:"), ("host", Some("")));
    assert_eq!(
        split_authority("[2001:db8::1]:443"),
        ("2001:db8::1", Some("443"))
    );
    assert_eq!(split_authority("[2001:db8::1]"), ("2001:db8::1", None));
    assert_eq!(split_authority("[2001:db8::1"), ("[2001:db8::1", None));
    assert_eq!(
        split_authority("2001:db8::1"),
        ("2001:db8::1", None),
        "unbracketed v6 stays whole"
    );
    assert_eq!(split_authority("host:http"), ("host:http", None));
    assert_eq!(split_authority(""), ("", None));
}

#[test]
fn credential_and_hop_by_hop_lists() {
    for name in [
        "authorization",
        "Cookie",
        "PROXY-AUTHORIZATION",
        "set-cookie",
    ] {
        assert!(is_credential_header(name), "{name}");
    }
    assert!(!is_credential_header("x-api-key-hint"));
    for name in [
        "connection",
        "Transfer-Encoding",
        "te",
        "upgrade",
        "content-length",
    ] {
        assert!(is_hop_by_hop_header(name), "{name}");
    }
    assert!(!is_hop_by_hop_header("content-type"));
    // The two lists are disjoint and lowercase.
    for name in CREDENTIAL_HEADERS.iter().chain(HOP_BY_HOP_HEADERS.iter()) {
        assert_eq!(*name, name.to_ascii_lowercase());
    }
    assert!(!CREDENTIAL_HEADERS.iter().any(|c| is_hop_by_hop_header(c)));
}
