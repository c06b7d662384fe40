use super::*;
use crate::headers::{HeaderBlock, NO_HEADERS};
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

fn compile(json: &str) -> Result<RequestMatch, ConfigError> {
    let raw: RawRequestMatch = crate::ConfigError::parse_json(json.as_bytes()).unwrap();
    RequestMatch::compile("rules[0].request", Some(&raw))
}

fn facts<'a>(method: &'a str, path: &'a str, headers: &'a HeaderBlock) -> RequestFacts<'a> {
    RequestFacts::new(
        method,
        path,
        "api.example.com:8443",
        "https",
        headers,
        Peer::default(),
    )
}

#[test]
fn absent_matches_anything_and_empty_is_an_error() {
    let any = RequestMatch::compile("request", None).unwrap();
    assert!(any.matches(&facts("GET", "/", &NO_HEADERS)));
    assert!(
        any.matches(&facts("GET", "/%2f", &NO_HEADERS)),
        "even a malformed target"
    );
    let err = compile("{}").unwrap_err();
    assert_eq!(err.path, "rules[0].request");
    assert!(err.reason.contains("must not be empty"), "{err}");
    for field in ["methods", "hosts", "paths", "headers", "query"] {
        let err = compile(&format!(r#"{{"{field}":[]}}"#)).unwrap_err();
        assert_eq!(err.path, format!("rules[0].request.{field}"));
        assert!(err.reason.contains("must not be empty"), "{err}");
    }
}

#[test]
fn errors_name_the_entry_and_field() {
    let cases = [
        (
            r#"{"methods":["GET","get"]}"#,
            "rules[0].request.methods[1]",
            "did you mean \"GET\"",
        ),
        (
            r#"{"methods":["GET","GET"]}"#,
            "rules[0].request.methods[1]",
            "duplicate entry (same as rules[0].request.methods[0])",
        ),
        (
            r#"{"hosts":["Example.com","example.com."]}"#,
            "rules[0].request.hosts[1]",
            "duplicate entry",
        ),
        (
            r#"{"hosts":["a.*.com"]}"#,
            "rules[0].request.hosts[0]",
            "host pattern",
        ),
        (
            r#"{"paths":[{"prefix":"admin"}]}"#,
            "rules[0].request.paths[0].prefix",
            "must start with \"/\"",
        ),
        (
            r#"{"paths":["/a/../b"]}"#,
            "rules[0].request.paths[0]",
            "not in normalized form",
        ),
        (
            r#"{"headers":[{"name":"x-a"}]}"#,
            "rules[0].request.headers[0]",
            "needs exactly one of",
        ),
        (
            r#"{"headers":[{"name":"x a","present":true}]}"#,
            "rules[0].request.headers[0].name",
            "not a header name",
        ),
        (
            r#"{"query":[{"name":"a","present":false}]}"#,
            "rules[0].request.query[0].present",
            "can only be true",
        ),
    ];
    for (json, path, reason) in cases {
        let err = compile(json).unwrap_err();
        assert_eq!(err.path, path, "{json}: {err}");
        assert!(err.reason.contains(reason), "{json}: {err}");
    }
}

#[test]
fn every_named_condition_must_hold() {
    let m = compile(
        r#"{"methods":["POST"],"hosts":["*.example.com"],"paths":[{"prefix":"/admin/"}],
            "headers":[{"name":"x-debug","present":true}],"query":[{"name":"v","equals":"1"}]}"#,
    )
    .unwrap();
    assert!(m.needs_headers());
    let debug: HeaderBlock = [("x-debug", "1")].into_iter().collect();
    assert!(m.matches(&facts("POST", "/admin/x?v=1", &debug)));
    assert!(
        m.matches(&facts("POST", "/%61dmin/./x?v=1", &debug)),
        "normalized path"
    );
    assert!(!m.matches(&facts("GET", "/admin/x?v=1", &debug)));
    assert!(!m.matches(&facts("POST", "/admin/x?v=2", &debug)));
    assert!(!m.matches(&facts("POST", "/admin/x?v=1", &NO_HEADERS)));
    assert!(!m.matches(&facts("POST", "/adminx?v=1", &debug)));
    assert!(
        !m.matches(&facts("POST", "/admin/%2f?v=1", &debug)),
        "malformed"
    );
}

#[test]
fn a_query_constraint_never_holds_for_a_malformed_target() {
    let m = compile(r#"{"query":[{"name":"debug","absent":true}]}"#).unwrap();
    assert!(m.matches(&facts("GET", "/a", &NO_HEADERS)));
    assert!(!m.matches(&facts("GET", "/a%00", &NO_HEADERS)));
}
