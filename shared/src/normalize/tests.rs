//! Unit tests for the normalizer: the issue's table, every rejection reason, edge cases, and
//! generated inputs (idempotence, canonical shape, never panicking).

use super::*;
use crate::test_rng::Rng;
use std::borrow::Cow;
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

fn path(raw: &str) -> String {
    match normalize_path(raw) {
        Ok(target) => target.path,
        Err(e) => panic!("{raw:?} rejected: {}", e.reason()),
    }
}

fn reason(raw: &str) -> &'static str {
    match normalize_path(raw) {
        Ok(target) => panic!("{raw:?} accepted as {:?}", target.path),
        Err(e) => e.reason(),
    }
}

// ---- the issue's table -------------------------------------------------------------------

#[test]
fn issue_table_paths() {
    assert_eq!(path("/info/../private"), "/private");
    assert_eq!(reason("/something%2F..%2Fadmin"), "encoded_slash");
    assert_eq!(path("/a//b"), "/a/b");
    assert_eq!(path("/app1/admin#foo"), "/app1/admin");
    assert_eq!(reason("/user/..;foo=bar/admin"), "dot_segment_parameter");
    assert_eq!(path("/public/./data/abc/../xyz"), "/public/data/xyz");
    assert_eq!(path("/some/%61%62%63"), "/some/abc");
    assert_eq!(reason("/foo%00.html"), "nul_or_control");
    assert_eq!(reason("/a%c0%afb"), "overlong_utf8");
    assert_eq!(reason("/a%252fb"), "double_encoding");
}

#[test]
fn issue_table_hosts() {
    let expected = NormalizedHost {
        name: "example.com".into(),
        port: None,
    };
    assert_eq!(
        normalize_host("Example.COM.", "https"),
        Ok(expected.clone())
    );
    assert_eq!(
        normalize_host("example.com:443", "https"),
        Ok(expected.clone())
    );
    assert_eq!(normalize_host("EXAMPLE.com.:443", "HTTPS"), Ok(expected));
}

// ---- canonical form ----------------------------------------------------------------------

#[test]
fn root_and_trailing_slashes() {
    assert_eq!(path("/"), "/");
    assert_eq!(path("//"), "/");
    assert_eq!(path("///a"), "/a");
    assert_eq!(path("/a/"), "/a/");
    assert_eq!(path("/a//"), "/a/");
    assert_eq!(path("/a/b"), "/a/b");
    assert_eq!(path("/a/b/"), "/a/b/");
}

#[test]
fn dot_segments() {
    assert_eq!(path("/."), "/");
    assert_eq!(path("/.."), "/");
    assert_eq!(path("/../.."), "/");
    assert_eq!(path("/../a"), "/a");
    assert_eq!(path("/a/."), "/a/");
    assert_eq!(path("/a/.."), "/");
    assert_eq!(path("/a/b/.."), "/a/");
    assert_eq!(path("/a/b/../"), "/a/");
    assert_eq!(path("/a/./b/./"), "/a/b/");
    assert_eq!(path("/a/b/c/../../d"), "/a/d");
    assert_eq!(path("/a/../../../b"), "/b");
    assert_eq!(path("/./a/../."), "/");
    // Not dot segments.
    assert_eq!(path("/.../a"), "/.../a");
    assert_eq!(path("/a./.b/..c/c../"), "/a./.b/..c/c../");
}

#[test]
fn encoded_dots_are_dots() {
    assert_eq!(path("/a/%2e%2e/b"), "/b");
    assert_eq!(path("/a/%2E%2e/b"), "/b");
    assert_eq!(path("/a/.%2E/b"), "/b");
    assert_eq!(path("/a/%2e/b"), "/a/b");
    assert_eq!(path("/%2e%2e"), "/");
    assert_eq!(path("/a/%2e%2e%2e"), "/a/...");
}

#[test]
fn unreserved_decoded_others_kept_uppercase() {
    assert_eq!(path("/%41%5a%61%7A%30%39"), "/AZaz09");
    assert_eq!(path("/%2D%2E%5F%7E"), "/-._~");
    assert_eq!(path("/%7e%7E"), "/~~");
    // Non-unreserved escapes stay encoded, hex uppercased.
    assert_eq!(path("/caf%c3%a9"), "/caf%C3%A9");
    assert_eq!(path("/caf%C3%A9"), "/caf%C3%A9");
    assert_eq!(path("/a%20b%3fc%23d%25e"), "/a%20b%3Fc%23d%25e");
    assert_eq!(path("/a%3bb%3Ab%40"), "/a%3Bb%3Ab%40");
    assert_eq!(path("/%e2%82%ac"), "/%E2%82%AC");
    assert_eq!(path("/%F0%9F%98%80"), "/%F0%9F%98%80");
}

#[test]
fn raw_characters_outside_pchar_are_encoded() {
    assert_eq!(path("/café"), "/caf%C3%A9");
    assert_eq!(
        path("/a b\"<>[]^`{|}"),
        "/a%20b%22%3C%3E%5B%5D%5E%60%7B%7C%7D"
    );
    // sub-delims, ':' and '@' are pchar and stay raw.
    assert_eq!(path("/!$&'()*+,;=:@"), "/!$&'()*+,;=:@");
    assert_eq!(path("/€"), "/%E2%82%AC");
}

#[test]
fn path_parameters_on_ordinary_segments_are_kept() {
    assert_eq!(path("/a;b=c/d"), "/a;b=c/d");
    assert_eq!(path("/;x/a"), "/;x/a");
    assert_eq!(path("/a/...;x/"), "/a/...;x/");
    assert_eq!(path("/a/x..;/"), "/a/x..;/");
}

#[test]
fn query_and_fragment() {
    let t = normalize_path("/a/../b?x=1&y=%2F#frag").unwrap();
    assert_eq!(t.path, "/b");
    assert_eq!(t.query, Some("x=1&y=%2F"));
    let t = normalize_path("/a?").unwrap();
    assert_eq!(t.query, Some(""));
    let t = normalize_path("/a").unwrap();
    assert_eq!(t.query, None);
    // '?' inside the fragment is not a query.
    let t = normalize_path("/a#b?c=1").unwrap();
    assert_eq!((t.path.as_str(), t.query), ("/a", None));
    // '#' ends the query; a second '?' belongs to the query.
    let t = normalize_path("/a?b?c#d?e").unwrap();
    assert_eq!(t.query, Some("b?c"));
    // What would be rejected in a path is fine in the query and the fragment...
    let t = normalize_path("/a?p=%2F..%5C%00%zz\\#%2F\\%").unwrap();
    assert_eq!(t.path, "/a");
    // ...except raw control characters.
    assert_eq!(reason("/a?x=\u{1}"), "nul_or_control");
    assert_eq!(reason("/a?x=\u{85}"), "nul_or_control");
    // Dot segments are resolved only in the path.
    let t = normalize_path("/a/.?/../b").unwrap();
    assert_eq!((t.path.as_str(), t.query), ("/a/", Some("/../b")));
}

#[test]
fn ordinary_paths_unchanged() {
    for p in [
        "/",
        "/index.html",
        "/api/v1/users/42",
        "/static/app.min.js",
        "/a-b_c~d.e/",
        "/search;jsessionid=abc",
        "/%C3%A9t%C3%A9",
        "/100%25",
    ] {
        assert_eq!(path(p), p);
    }
}

// ---- every rejection reason --------------------------------------------------------------

#[test]
fn encoded_slash_and_backslash() {
    for p in ["/a%2Fb", "/a%2fb", "/%2F", "/a/%2f/..", "/%2e%2e%2f"] {
        assert_eq!(reason(p), "encoded_slash", "{p}");
    }
    for p in ["/a%5Cb", "/a%5cb", "/..%5C..%5Cwindows"] {
        assert_eq!(reason(p), "encoded_backslash", "{p}");
    }
    for p in ["/a\\b", "\\a", "/..\\..\\x", "/a/\\"] {
        let got = normalize_path(p).map_err(|e| e.reason());
        let expected = if p.starts_with('/') {
            "backslash"
        } else {
            "not_origin_form"
        };
        assert_eq!(got, Err(expected), "{p}");
    }
}

#[test]
fn nul_and_control_characters() {
    for p in [
        "/foo%00.html",
        "/a%0a",
        "/a%0D%0Aset-cookie:x",
        "/a%09",
        "/a%1F",
        "/a%7f",
        "/a%7F",
        "/a%c2%80",
        "/a%C2%85",
        "/a%c2%9f",
        "/a\0",
        "/a\nb",
        "/a\tb",
        "/a\u{7f}",
        "/a\u{85}",
        "/a\u{9f}",
    ] {
        assert_eq!(reason(p), "nul_or_control", "{p:?}");
    }
    // U+00A0 is the first code point after the C1 block.
    assert_eq!(path("/a%c2%a0"), "/a%C2%A0");
    assert_eq!(path("/a\u{a0}"), "/a%C2%A0");
}

#[test]
fn invalid_percent_encoding() {
    for p in [
        "/%", "/a%", "/a%4", "/a%zz", "/a%g0", "/a%0g", "/%%41", "/a%-1", "/a% 1", "/%4/", "/a%%2F",
    ] {
        assert_eq!(reason(p), "invalid_percent_encoding", "{p}");
    }
}

#[test]
fn invalid_utf8() {
    for p in [
        "/a%80",          // stray continuation byte
        "/a%bf",          // stray continuation byte
        "/a%c3",          // truncated at the end
        "/a%c3/b",        // truncated by a separator
        "/a%c3b",         // truncated by an ASCII byte
        "/a%e2%82",       // truncated three-byte sequence
        "/a%ed%a0%80",    // UTF-16 surrogate
        "/a%f4%90%80%80", // beyond U+10FFFF
        "/a%f5%80%80%80",
        "/a%ff",
        "/a%fe",
        "/a%c3é", // escape followed by a raw multi-byte character
    ] {
        assert_eq!(reason(p), "invalid_utf8", "{p}");
    }
}

#[test]
fn overlong_utf8() {
    for p in [
        "/a%c0%afb",        // '/'
        "/a%C0%AE%C0%AE/x", // '..'
        "/a%c1%9c",         // '\'
        "/a%c0%80",         // NUL
        "/a%e0%80%af",      // three-byte '/'
        "/a%e0%9f%bf",      // largest overlong three-byte
        "/a%f0%80%80%af",   // four-byte '/'
        "/a%f0%8f%bf%bf",   // largest overlong four-byte
    ] {
        assert_eq!(reason(p), "overlong_utf8", "{p}");
    }
    // The smallest non-overlong forms are fine.
    assert_eq!(path("/%e0%a0%80"), "/%E0%A0%80");
    assert_eq!(path("/%f0%90%80%80"), "/%F0%90%80%80");
    assert_eq!(path("/%f4%8f%bf%bf"), "/%F4%8F%BF%BF");
}

#[test]
fn double_encoding() {
    for p in [
        "/a%252fb",
        "/a%252Fb",
        "/a%255cb",
        "/a%2500",
        "/a%252e%252e/b",
        "/a%2525",
        "/a%25252f",
        "/a%2520",
        "/a%253f",
        "/a%2523",
        "/a%253b",
        "/a%25c0%25af",
        // the inner digits themselves percent-encoded (unreserved, so decoded first)
        "/a%25%32%66",
        "/a%25%32%46",
        "/a%252%66",
    ] {
        assert_eq!(reason(p), "double_encoding", "{p}");
    }
    // Harmless even for a server that decodes twice.
    assert_eq!(path("/a%2541"), "/a%2541");
    assert_eq!(path("/a%257e"), "/a%257e");
    assert_eq!(path("/a%252D%255f"), "/a%252D%255f");
    // '%25' not followed by two hex digits is a literal percent sign.
    assert_eq!(path("/100%25"), "/100%25");
    assert_eq!(path("/100%25off"), "/100%25off");
    assert_eq!(path("/100%25/2f"), "/100%25/2f");
    assert_eq!(path("/100%252"), "/100%252");
}

#[test]
fn dot_segment_parameters() {
    for p in [
        "/user/..;foo=bar/admin",
        "/a/..;/b",
        "/a/.;/b",
        "/a/..;",
        "/..;",
        "/a/%2e%2e;x/b",
        "/a/..%3bx/b",
        "/a/..%3B/b",
        "/a/.%3b",
    ] {
        assert_eq!(reason(p), "dot_segment_parameter", "{p}");
    }
}

#[test]
fn ambiguous_dot_segment() {
    for p in ["/a//../b", "/a//..", "//..", "/a//b/../../c", "/a/.//../b"] {
        assert_eq!(reason(p), "ambiguous_dot_segment", "{p}");
    }
    // A '..' that only removes non-empty segments is fine even with '//' around.
    assert_eq!(path("/a//b/../c"), "/a/c");
    assert_eq!(path("/a/b/..//c"), "/a/c");
    assert_eq!(path("//a/.."), "/");
}

#[test]
fn not_origin_form() {
    for p in [
        "",
        "*",
        "a/b",
        "http://example.com/a",
        "example.com/a",
        "?a=b",
        "#frag",
        "%2Fa",
    ] {
        assert_eq!(reason(p), "not_origin_form", "{p}");
    }
}

#[test]
fn reasons_are_stable_snake_case_and_distinct() {
    let mut seen = std::collections::HashSet::new();
    for m in Malformed::ALL {
        let r = m.reason();
        assert!(
            r.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
            "{r}"
        );
        assert!(seen.insert(r), "duplicate reason {r}");
        assert!(!m.to_string().is_empty());
        let _: &dyn std::error::Error = &m;
    }
    assert_eq!(Malformed::EncodedSlash.reason(), "encoded_slash");
    assert_eq!(Malformed::NotOriginForm.reason(), "not_origin_form");
}

// ---- hosts -------------------------------------------------------------------------------

fn host(authority: &str, scheme: &str) -> (String, Option<u16>) {
    match normalize_host(authority, scheme) {
        Ok(h) => (h.name, h.port),
        Err(e) => panic!("{authority:?} rejected: {}", e.reason()),
    }
}

fn host_reason(authority: &str) -> &'static str {
    match normalize_host(authority, "http") {
        Ok(h) => panic!("{authority:?} accepted as {h:?}"),
        Err(e) => e.reason(),
    }
}

#[test]
fn hosts_and_default_ports() {
    assert_eq!(host("example.com", "http"), ("example.com".into(), None));
    assert_eq!(host("example.com:80", "http"), ("example.com".into(), None));
    assert_eq!(
        host("example.com:443", "http"),
        ("example.com".into(), Some(443))
    );
    assert_eq!(
        host("example.com:80", "https"),
        ("example.com".into(), Some(80))
    );
    assert_eq!(
        host("example.com:8080", "https"),
        ("example.com".into(), Some(8080))
    );
    assert_eq!(host("example.com:", "https"), ("example.com".into(), None));
    assert_eq!(
        host("example.com:80", "grpc"),
        ("example.com".into(), Some(80))
    );
    assert_eq!(
        host("API.Example.com.:08080", "http"),
        ("api.example.com".into(), Some(8080))
    );
    assert_eq!(
        host("my_svc.ns.svc.cluster.local", "http"),
        ("my_svc.ns.svc.cluster.local".into(), None)
    );
    assert_eq!(
        host("10.0.0.1:8443", "https"),
        ("10.0.0.1".into(), Some(8443))
    );
    assert_eq!(host("localhost", "http"), ("localhost".into(), None));
}

#[test]
fn ipv6_literals() {
    assert_eq!(host("[::1]", "http"), ("[::1]".into(), None));
    assert_eq!(host("[::1]:443", "https"), ("[::1]".into(), None));
    assert_eq!(host("[::1]:8080", "https"), ("[::1]".into(), Some(8080)));
    assert_eq!(
        host("[2001:DB8:0:0:0:0:0:1]", "http"),
        ("[2001:db8::1]".into(), None)
    );
    for bad in [
        "[::1",
        "[::1]x",
        "[::1]:",
        "[zz::1]",
        "[fe80::1%25eth0]",
        "[1.2.3.4]",
        "[]",
    ] {
        let got = normalize_host(bad, "http").map_err(|e| e.reason());
        assert!(got.is_err() || bad == "[::1]:", "{bad} {got:?}");
    }
    assert_eq!(host("[::1]:", "http"), ("[::1]".into(), None));
    assert_eq!(host_reason("::1"), "invalid_host");
    assert_eq!(host_reason("[::1]x"), "invalid_host");
    assert_eq!(host_reason("[fe80::1%25eth0]"), "invalid_host");
}

#[test]
fn rejected_hosts() {
    assert_eq!(host_reason(""), "empty_host");
    assert_eq!(host_reason("."), "empty_host");
    assert_eq!(host_reason(":80"), "empty_host");
    assert_eq!(host_reason("user@example.com"), "host_userinfo");
    assert_eq!(host_reason("user:pw@example.com:80"), "host_userinfo");
    for bad in [
        "example..com",
        ".example.com",
        "example.com..",
        "exa mple.com",
        "example.com/",
        "exam%70le.com",
        "ex\u{e4}mple.com",
        "*.example.com",
        "a:b:c",
    ] {
        assert_eq!(host_reason(bad), "invalid_host", "{bad}");
    }
    let long_label = format!("{}.com", "a".repeat(64));
    assert_eq!(host_reason(&long_label), "invalid_host");
    let long_name = format!("{}com", "abcdefghi.".repeat(26));
    assert_eq!(host_reason(&long_name), "invalid_host");
    for bad in [
        "example.com:0",
        "example.com:65536",
        "example.com:+80",
        "example.com:8o",
        "example.com:123456",
        "example.com:-1",
    ] {
        assert_eq!(host_reason(bad), "invalid_port", "{bad}");
    }
    assert_eq!(host("example.com:65535", "http").1, Some(65535));
}

// ---- query parameters --------------------------------------------------------------------

fn pairs(query: &str) -> Vec<(String, String)> {
    query_pairs(query)
        .map(|(n, v)| (n.into_owned(), v.into_owned()))
        .collect()
}

#[test]
fn query_pairs_decoding() {
    let p = |n: &str, v: &str| (n.to_string(), v.to_string());
    assert_eq!(pairs(""), vec![]);
    assert_eq!(pairs("a=1&b=2"), vec![p("a", "1"), p("b", "2")]);
    assert_eq!(pairs("a&&b=&=c"), vec![p("a", ""), p("b", ""), p("", "c")]);
    assert_eq!(
        pairs("q=a+b%20c&x%5By%5D=%C3%A9"),
        vec![p("q", "a b c"), p("x[y]", "é")]
    );
    assert_eq!(pairs("a=b=c"), vec![p("a", "b=c")]);
    // Undecodable: kept raw.
    assert_eq!(
        pairs("a=100%&b=%zz+1&c=%c0%af"),
        vec![p("a", "100%"), p("b", "%zz+1"), p("c", "%c0%af")]
    );
}

#[test]
fn query_pairs_borrow_when_nothing_to_decode() {
    for (name, value) in query_pairs("plain=value&other") {
        assert!(matches!(name, Cow::Borrowed(_)));
        assert!(matches!(value, Cow::Borrowed(_)));
    }
    let (name, value) = query_pairs("a%41=b+c").next().unwrap();
    assert!(matches!((&name, &value), (Cow::Owned(_), Cow::Owned(_))));
    assert_eq!((name.as_ref(), value.as_ref()), ("aA", "b c"));
}

// ---- generated inputs --------------------------------------------------------------------

/// Segment vocabulary for generated paths: dots in every spelling, escapes that decode or
/// must stay, separators in disguise, parameters, multi-byte characters.
const SEGMENTS: &[&str] = &[
    "a",
    "b",
    "cd",
    ".",
    "..",
    "%2e",
    "%2E%2e",
    ".%2e",
    "%61",
    "%41b",
    "",
    "%2F",
    "%5C",
    ";x",
    "..;x",
    "a;b=c",
    "%25",
    "%2541",
    "%252f",
    "%C3%A9",
    "%c3%a9",
    "é",
    "~",
    "%7E",
    "%7e",
    "...",
    "%20",
    " ",
    "%3B",
    "%3b",
    "..%3b",
    "%00",
    "%zz",
    "%",
    "%c0%af",
    "-_",
    "@:",
    "\\",
    "?q",
    "#f",
    "x%3Fy",
    "%e2%82%ac",
    "%2e%2e%2e",
];

fn generated_path(rng: &mut Rng) -> String {
    let segments = 1 + rng.below(6);
    let mut raw = String::new();
    for _ in 0..segments {
        raw.push('/');
        raw.push_str(SEGMENTS[rng.below(SEGMENTS.len())]);
        if rng.below(8) == 0 {
            raw.push_str(SEGMENTS[rng.below(SEGMENTS.len())]);
        }
    }
    if rng.below(4) == 0 {
        raw.push('/');
    }
    raw
}

#[test]
fn generated_paths_are_canonical_and_idempotent() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let (mut accepted, mut rejected) = (0, 0);
    for _ in 0..20_000 {
        let raw = generated_path(&mut rng);
        let Ok(first) = normalize_path(&raw) else {
            rejected += 1;
            continue;
        };
        accepted += 1;
        let p = &first.path;
        assert!(p.starts_with('/'), "{raw:?} -> {p:?}");
        for bad in ["//", "/./", "/../", "\\", "#", "?"] {
            assert!(!p.contains(bad), "{raw:?} -> {p:?} contains {bad:?}");
        }
        assert!(
            !p.ends_with("/.") && !p.ends_with("/.."),
            "{raw:?} -> {p:?}"
        );
        assert!(p.is_ascii(), "{raw:?} -> {p:?}");
        // Escapes are uppercase and never of an unreserved character.
        let bytes = p.as_bytes();
        for (at, _) in p.match_indices('%') {
            let hex = &bytes[at + 1..at + 3];
            assert!(
                hex.iter()
                    .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase()),
                "{p:?}"
            );
            let value = hex_pair(bytes, at + 1).unwrap();
            assert!(
                !(value.is_ascii_alphanumeric() || b"-._~".contains(&value)),
                "{p:?}"
            );
        }
        let again = normalize_path(p).unwrap_or_else(|e| panic!("{raw:?} -> {p:?} -> {e}"));
        assert_eq!(&again.path, p, "not idempotent for {raw:?}");
        // A query on the normalized path survives unchanged.
        let target = format!("{p}?k=v");
        let with_query = normalize_path(&target).unwrap();
        assert_eq!(with_query.query, Some("k=v"));
    }
    // The vocabulary must exercise both outcomes substantially.
    assert!(
        accepted > 2_000 && rejected > 2_000,
        "{accepted} {rejected}"
    );
}

#[test]
fn dot_segments_match_rfc3986_reference() {
    // Reference: RFC 3986 5.2.4 on the decoded segment list, then merging slashes; compared on
    // paths made only of plain, dot and empty segments, where the two must agree unless
    // a '..' removes an empty segment (rejected as ambiguous).
    fn reference(raw: &str) -> Option<String> {
        let segments: Vec<&str> = raw[1..].split('/').collect();
        let mut stack: Vec<&str> = Vec::new();
        for s in &segments {
            match *s {
                "." => {}
                ".." => {
                    if stack.pop() == Some("") {
                        return None;
                    }
                }
                s => stack.push(s),
            }
        }
        let mut out = format!("/{}", stack.join("/"));
        if matches!(segments.last(), Some(&"." | &"..")) {
            out.push('/');
        }
        while out.contains("//") {
            out = out.replace("//", "/");
        }
        Some(out)
    }
    let mut rng = Rng(7);
    let vocabulary = ["a", "b", ".", "..", ""];
    for _ in 0..20_000 {
        let mut raw = String::new();
        for _ in 0..1 + rng.below(7) {
            raw.push('/');
            raw.push_str(vocabulary[rng.below(vocabulary.len())]);
        }
        let ours = normalize_path(&raw).map(|t| t.path);
        match reference(&raw) {
            Some(expected) => assert_eq!(ours, Ok(expected), "{raw:?}"),
            None => assert_eq!(ours, Err(Malformed::AmbiguousDotSegment), "{raw:?}"),
        }
    }
}

#[test]
fn never_panics_on_arbitrary_input() {
    // Bytes biased towards the characters the normalizer cares about, then made into a &str
    // (invalid UTF-8 becomes U+FFFD, itself a multi-byte character).
    const INTERESTING: &[u8] = b"/%.;?#\\2eEfF5cC0aA\x00\x7f\xc0\xaf\xc3\xa9\xe0\x80";
    let mut rng = Rng(0xdead_beef_cafe_f00d);
    let mut accepted = 0;
    for _ in 0..100_000 {
        let len = rng.below(24);
        let mut bytes = Vec::with_capacity(len + 1);
        if rng.below(8) != 0 {
            bytes.push(b'/');
        }
        for _ in 0..len {
            let r = rng.next();
            bytes.push(if r & 3 == 0 {
                (r >> 8) as u8
            } else {
                INTERESTING[((r >> 8) as usize) % INTERESTING.len()]
            });
        }
        let input = String::from_utf8_lossy(&bytes);
        if let Ok(t) = normalize_path(&input) {
            accepted += 1;
            assert_eq!(
                normalize_path(&t.path).map(|a| a.path),
                Ok(t.path.clone()),
                "{input:?}"
            );
        }
        let _ = normalize_host(&input, "https");
        let _ = query_pairs(&input).count();
    }
    assert!(accepted > 1_000, "{accepted}");
}
