//! The ECS rendering.

use crate::audit::tests::{exchange, policy};
use crate::audit::*;
use serde_json::Value;
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

#[test]
fn ecs_record_uses_ecs_field_names() {
    let p = policy(r#"{"format":"ecs"}"#);
    let line = AuditRecord::build(exchange(), &p).to_json_line(p.format);
    let r: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(r["@timestamp"], "2023-11-14T22:13:20.012Z");
    assert_eq!(r["ecs"]["version"], ECS_VERSION);
    assert_eq!(r["event"]["kind"], "event");
    assert_eq!(r["event"]["outcome"], "success");
    assert_eq!(r["event"]["duration"], 12_500_000);
    assert_eq!(r["event"]["id"], "5b6f1c2e-0000-4000-8000-000000000001");
    assert_eq!(r["http"]["request"]["method"], "GET");
    assert_eq!(r["http"]["response"]["status_code"], 200);
    assert_eq!(r["http"]["version"], "1.1");
    assert_eq!(r["url"]["query"], "id=7&token=REDACTED&page=2");
    assert_eq!(r["url"]["domain"], "shop.example.com");
    assert_eq!(r["source"]["ip"], "10.1.2.3");
    assert_eq!(r["source"]["port"], 51234);
    assert_eq!(r["trace"]["id"], "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(
        r["tls"]["client"]["x509"]["alternative_names"][0],
        "spiffe://cluster.local/ns/shop/sa/web"
    );
    assert_eq!(r["meshsight"]["source_peer"]["workload"], "web-v1");
    assert_eq!(r["rule"]["name"], "cart");
    assert!(!line.contains("very-secret") && !line.contains("s3cr3t") && !line.contains("sid=1"));
}

#[test]
fn ecs_record_names_the_decoding_findings() {
    let p = policy(r#"{"format":"ecs"}"#);
    let mut ex = exchange();
    ex.mirror = Some(crate::decision::MirrorDecision {
        mirrored: false,
        target: None,
        reason: crate::decision::MirrorReason::NotSelected,
        rule: None,
        signatures: Vec::new(),
        signature_rules: Vec::new(),
        findings: vec!["basic_credentials_invalid".into()],
    });
    let line = AuditRecord::build(ex, &p).to_json_line(p.format);
    let r: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(
        r["meshsight"]["mirror"]["findings"],
        serde_json::json!(["basic_credentials_invalid"])
    );
    assert_eq!(r["meshsight"]["mirror"]["reason"], "not_selected");
}

#[test]
fn rfc3339_formats_dates_across_eras() {
    assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
    assert_eq!(
        rfc3339_ms(951_782_400_123_000_000),
        "2000-02-29T00:00:00.123Z"
    );
    assert_eq!(
        rfc3339_ms(4_107_542_399_999_000_000),
        "2100-02-28T23:59:59.999Z"
    );
    // Every field zero-padded to its width (was the JSON writer's `push_padded` test), and the
    // last instant a u64 of ns can name (the year keeps four digits).
    assert_eq!(rfc3339_ms(3_723_007_000_000), "1970-01-01T01:02:03.007Z");
    assert_eq!(rfc3339_ms(u64::MAX), "2554-07-21T23:34:33.709Z");
}

#[test]
fn ecs_headers_are_sorted_by_name_and_repeats_joined_in_arrival_order() {
    let p = policy(r#"{"format":"ecs","record_headers":["x-b","x-a","x-c"]}"#);
    let mut ex = exchange();
    ex.request_headers.extend(crate::audit::tests::h(&[
        ("x-c", "3"),
        ("x-a", "first"),
        ("x-b", "2"),
        ("x-a", "second"),
        ("x-a", "third"),
    ]));
    let line = AuditRecord::build(ex, &p).to_json_line(p.format);
    let r: Value = serde_json::from_str(&line).unwrap();
    let headers = r["http"]["request"]["headers"].as_object().unwrap();
    assert_eq!(headers["x-a"], "first, second, third");
    assert_eq!(headers["x-b"], "2");
    assert_eq!(headers["x-c"], "3");
    let x_at = |n: &str| line.find(&format!("\"{n}\"")).unwrap();
    assert!(
        x_at("x-a") < x_at("x-b") && x_at("x-b") < x_at("x-c"),
        "{line}"
    );
}
