use super::*;
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

#[test]
fn pseudo_headers_and_request_id_are_found_once() {
    let head = RequestHead::from_pairs(pairs(&[
        (":method", "POST"),
        (":path", "/a?b=1"),
        (":authority", "shop.example.com:8080"),
        (":scheme", "https"),
        ("x-request-id", "r-1"),
        ("x-request-id", "r-2"),
        ("user-agent", "curl"),
    ]));
    assert_eq!(head.method(), "POST");
    assert_eq!(head.path(), "/a?b=1");
    assert_eq!(head.authority(), "shop.example.com:8080");
    assert_eq!(head.scheme(), "https");
    assert_eq!(head.request_id(), Some("r-1"), "the first value counts");
    assert_eq!(head.header("User-Agent"), Some("curl"));
    assert_eq!(head.headers().len(), 7);
}

#[test]
fn host_stands_in_for_a_missing_or_empty_authority() {
    let head = RequestHead::from_pairs(pairs(&[(":path", "/"), ("host", "legacy.example")]));
    assert_eq!(head.authority(), "legacy.example");
    let head = RequestHead::from_pairs(pairs(&[(":authority", ""), ("host", "h.example")]));
    assert_eq!(head.authority(), "h.example");
    let head = RequestHead::from_pairs(pairs(&[(":authority", "a.example"), ("host", "b")]));
    assert_eq!(head.authority(), "a.example");
}

#[test]
fn missing_values_are_empty_not_errors() {
    let head = RequestHead::from_pairs(Vec::new());
    assert_eq!(
        (head.method(), head.path(), head.authority(), head.scheme()),
        ("", "", "", "")
    );
    assert_eq!(head.request_id(), None);
}

#[test]
fn removing_a_header_reindexes_the_rest() {
    let mut head = RequestHead::from_pairs(pairs(&[
        ("x-meshsight-mirror", "ids"),
        (":method", "GET"),
        ("x-meshsight-mirror", "ids2"),
        (":path", "/p"),
    ]));
    head.remove("x-meshsight-mirror");
    assert_eq!(head.headers().len(), 2);
    assert_eq!((head.method(), head.path()), ("GET", "/p"));
    assert_eq!(head.to_pairs()[0].0, ":method");
}
