//! The exchange: taking over the request head, trace ids.

use crate::audit::tests::{exchange, h, ocsf, policy};
use crate::audit::*;
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

#[test]
fn trace_id_comes_from_traceparent_or_b3() {
    let mut ex = HttpExchange::from_request_headers(h(&[(
        "x-b3-traceid",
        "80F198EE56343BA864FE8B2A57D3EFF7",
    )]));
    assert_eq!(
        ex.trace_id().as_deref(),
        Some("80f198ee56343ba864fe8b2a57d3eff7")
    );
    ex = HttpExchange::from_request_headers(h(&[("b3", "a3ce929d0e0e4736-00f067aa0ba902b7-1")]));
    assert_eq!(ex.trace_id().as_deref(), Some("a3ce929d0e0e4736"));
    ex = HttpExchange::from_request_headers(h(&[(
        "traceparent",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
    )]));
    assert_eq!(ex.trace_id(), None);
    ex = HttpExchange::from_request_headers(h(&[
        ("traceparent", "garbage"),
        ("x-b3-traceid", "xyz"),
    ]));
    assert_eq!(ex.trace_id(), None);
    let mut ex = exchange();
    ex.request_headers.retain(|(n, _)| n != "traceparent");
    let r = ocsf(ex, &policy("{}"));
    assert!(r["metadata"].get("correlation_uid").is_none());
    assert!(r.get("trace").is_none());
    assert_eq!(
        r["metadata"]["profiles"],
        serde_json::json!(["security_control"])
    );
}

#[test]
fn the_request_head_is_taken_over_without_its_pseudo_headers() {
    let ex = HttpExchange::from_request_headers(h(&[
        (":method", "POST"),
        (":scheme", "https"),
        (":authority", "a.example"),
        (":path", "/p?q=1"),
        (":protocol", "websocket"),
        ("user-agent", "ua"),
        ("x-request-id", "id-1"),
        ("accept", "*/*"),
    ]));
    assert_eq!(
        (
            ex.method.as_str(),
            ex.scheme.as_str(),
            ex.authority.as_str(),
            ex.path.as_str()
        ),
        ("POST", "https", "a.example", "/p?q=1")
    );
    assert_eq!(ex.request_id.as_deref(), Some("id-1"));
    assert_eq!(
        ex.request_headers,
        h(&[
            ("user-agent", "ua"),
            ("x-request-id", "id-1"),
            ("accept", "*/*")
        ]),
        "regular headers stay, in order"
    );
    let ex = HttpExchange::from_request_headers(h(&[("host", "b.example:8080"), (":path", "/")]));
    assert_eq!(
        ex.authority, "b.example:8080",
        "host stands in for a missing :authority"
    );
    assert_eq!(ex.request_headers, h(&[("host", "b.example:8080")]));
}

/// The one-pass trace id parser gives what the check-then-lowercase one gave.
#[test]
fn trace_id_parse_matches_the_check_then_copy_parser() {
    let old = |text: &str| -> Option<String> {
        if text.is_empty() || text.len() > 32 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        Some(text.to_ascii_lowercase())
    };
    let long = "0".repeat(33);
    for text in [
        "",
        "a",
        "80F198EE56343BA864FE8B2A57D3EFF7",
        "80f198ee56343ba8",
        "80f198ee56343ba864fe8b2a57d3eff7",
        long.as_str(),
        "80f198ee56343bg8",
        "80f198ee-6343ba8",
        "é0f198ee56343ba",
        "0123456789abcdefABCDEF",
    ] {
        assert_eq!(
            super::TraceId::parse(text).map(|t| t.as_str().to_string()),
            old(text),
            "{text:?}"
        );
    }
}

/// The trim that skips printable ends gives what `str::trim` gives.
#[test]
fn trim_matches_str_trim() {
    for v in [
        "",
        " ",
        "a",
        " a",
        "a ",
        "\ta\n",
        "\u{a0}a",
        "a\u{a0}",
        "\u{2028}x\u{3000}",
        "~x!",
        "\u{7f}x",
        "\u{1f}x",
    ] {
        assert_eq!(super::trim(v), v.trim(), "{v:?}");
    }
}

/// The exchange taken from the head copies only the headers a record reads, and the records
/// (OCSF and ECS, with and without recorded headers) are byte for byte those of the exchange
/// taken from all of the head's pairs.
#[test]
fn from_head_writes_the_records_of_from_request_headers() {
    use crate::head::RequestHead;
    let heads = [
        h(&[
            (":method", "GET"),
            (":scheme", "http"),
            (":authority", "shop.example.com:8080"),
            (":path", "/cart/items?id=7&token=s3cr3t&page=2"),
            ("user-agent", "curl/8.5.0"),
            ("accept", "*/*"),
            ("x-request-id", "5b6f1c2e-0000-4000-8000-000000000001"),
            (
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            ),
            ("x-forwarded-for", "203.0.113.7, 10.0.0.1"),
            ("authorization", "Bearer very-secret"),
            ("cookie", "session=abc"),
            ("referer", "https://a.example/x?token=t&b=1"),
            ("content-type", "application/json"),
        ]),
        // No `:authority` (the `host` header fills it), names not lowercase, repeats, B3.
        h(&[
            (":method", "POST"),
            (":path", "/p"),
            ("Host", "upper.example"),
            ("host", "lower.example"),
            ("host", "second.example"),
            ("User-Agent", "first"),
            ("user-agent", "second"),
            ("X-B3-TraceId", "80F198EE56343BA864FE8B2A57D3EFF7"),
            ("Accept", "x"),
            ("accept", "y"),
        ]),
        h(&[
            (":method", "GET"),
            (":path", "/"),
            (":authority", ""),
            ("b3", "80f198ee56343ba8-e457b5a2e4d86bd1-1"),
            ("x-forwarded-for", "not-an-ip, 10.0.0.1"),
        ]),
    ];
    let policies = [
        policy(r#"{"record_headers": ["accept", "referer", "content-type", "user-agent"]}"#),
        policy(r#"{"record_headers": []}"#),
        policy(r#"{"format": "ecs", "record_headers": ["accept", "host"]}"#),
    ];
    for pairs in &heads {
        let head = RequestHead::from_pairs(pairs.clone());
        for p in &policies {
            let all = HttpExchange::from_request_headers(head.to_pairs());
            let read = HttpExchange::from_head(&head, &p.record_headers);
            assert!(read.request_headers.len() <= all.request_headers.len());
            assert_eq!(
                (&read.method, &read.scheme, &read.authority, &read.path),
                (&all.method, &all.scheme, &all.authority, &all.path)
            );
            assert_eq!(read.request_id, all.request_id);
            for format in [AuditFormat::Ocsf, AuditFormat::Ecs] {
                assert_eq!(
                    AuditRecord::build(read.clone(), p).to_json_line(format),
                    AuditRecord::build(all.clone(), p).to_json_line(format),
                    "{pairs:?}"
                );
            }
        }
    }
}
