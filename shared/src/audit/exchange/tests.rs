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
