//! The OCSF rendering: class, activity, metadata, request, response, endpoints, failures.

use crate::audit::tests::{exchange, ocsf, policy};
use crate::audit::*;
use crate::decision::{MirrorDecision, MirrorReason};
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

#[test]
fn ocsf_record_carries_class_activity_and_metadata() {
    let p = policy("{}");
    let r = ocsf(exchange(), &p);
    assert_eq!(r["class_uid"], 4002);
    assert_eq!(r["category_uid"], 4);
    assert_eq!(r["activity_id"], 3);
    assert_eq!(r["type_uid"], 400203);
    assert_eq!(r["severity_id"], 1);
    assert_eq!(r["status_id"], 1);
    assert_eq!(r["time"], 1_700_000_000_012u64);
    assert_eq!(r["start_time"], 1_700_000_000_000u64);
    assert_eq!(r["duration"], 12);
    assert_eq!(r["metadata"]["version"], "1.7.0");
    assert_eq!(r["metadata"]["product"]["name"], "meshsight");
    assert_eq!(r["metadata"]["product"]["version"], PRODUCT_VERSION);
    assert_eq!(r["metadata"]["uid"], "5b6f1c2e-0000-4000-8000-000000000001");
    assert_eq!(
        r["metadata"]["correlation_uid"],
        "4bf92f3577b34da6a3ce929d0e0e4736"
    );
    assert_eq!(
        r["metadata"]["profiles"],
        serde_json::json!(["security_control", "trace"])
    );
    assert_eq!(r["trace"]["uid"], "4bf92f3577b34da6a3ce929d0e0e4736");
}

#[test]
fn ocsf_request_response_and_endpoints() {
    let r = ocsf(exchange(), &policy("{}"));
    let req = &r["http_request"];
    assert_eq!(req["http_method"], "GET");
    assert_eq!(req["url"]["hostname"], "shop.example.com");
    assert_eq!(req["url"]["port"], 8080);
    assert_eq!(req["url"]["scheme"], "http");
    assert_eq!(req["url"]["path"], "/cart/items");
    assert_eq!(req["url"]["query_string"], "id=7&token=REDACTED&page=2");
    assert_eq!(
        req["url"]["url_string"],
        "http://shop.example.com:8080/cart/items?id=7&token=REDACTED&page=2"
    );
    assert_eq!(req["user_agent"], "curl/8.5.0");
    assert_eq!(req["version"], "HTTP/1.1");
    assert_eq!(req["length"], 321);
    assert_eq!(
        req["x_forwarded_for"],
        serde_json::json!(["203.0.113.7", "10.0.0.1"])
    );
    assert_eq!(
        req["http_headers"],
        serde_json::json!([{"name":"content-type","value":"application/json"}])
    );
    let resp = &r["http_response"];
    assert_eq!(resp["code"], 200);
    assert_eq!(resp["length"], 654);
    assert_eq!(resp["latency"], 12);
    let src = &r["src_endpoint"];
    assert_eq!(src["ip"], "10.1.2.3");
    assert_eq!(src["port"], 51234);
    assert_eq!(src["name"], "web-v1");
    assert_eq!(src["svc_name"], "web");
    assert_eq!(src["domain"], "shop");
    assert_eq!(src["owner"]["uid"], "spiffe://cluster.local/ns/shop/sa/web");
    assert_eq!(src["owner"]["name"], "web");
    assert_eq!(src["owner"]["domain"], "shop");
    assert_eq!(r["dst_endpoint"]["ip"], "10.1.9.9");
    assert_eq!(r["dst_endpoint"]["port"], 8080);
}

#[test]
fn activity_follows_the_method_per_ocsf_1_7_0() {
    let expected = [
        ("CONNECT", 1),
        ("DELETE", 2),
        ("GET", 3),
        ("HEAD", 4),
        ("OPTIONS", 5),
        ("POST", 6),
        ("PUT", 7),
        ("TRACE", 8),
        ("PATCH", 9),
        ("PROPFIND", 99),
        ("get", 99),
    ];
    for (method, id) in expected {
        assert_eq!(activity_id(method), id, "{method}");
        let mut ex = exchange();
        ex.method = method.into();
        let r = ocsf(ex, &policy("{}"));
        assert_eq!(r["type_uid"], 400200 + id, "{method}");
        if id == 99 {
            assert!(r["http_request"].get("http_method").is_none());
            assert_eq!(r["unmapped"]["meshsight"]["http_method"], method);
            assert_eq!(r["activity_name"], method);
        } else {
            assert_eq!(r["http_request"]["http_method"], method);
        }
    }
}

#[test]
fn mirror_decision_with_reason_is_recorded_and_signatures_alert() {
    let mut ex = exchange();
    ex.mirror = Some(MirrorDecision {
        mirrored: true,
        target: Some("ids".into()),
        reason: MirrorReason::Signature,
        rule: None,
        signatures: vec!["log4shell".into()],
        signature_rules: vec!["ms-log4shell-jndi".into()],
        findings: Vec::new(),
    });
    let r = ocsf(ex, &policy("{}"));
    let m = &r["unmapped"]["meshsight"]["mirror"];
    assert_eq!(
        m["signature_rules"],
        serde_json::json!(["ms-log4shell-jndi"]),
        "the rule ids that fired are recorded"
    );
    assert_eq!(m["mirrored"], true);
    assert_eq!(m["reason"], "signature");
    assert_eq!(m["target"], "ids");
    assert_eq!(m["signatures"], serde_json::json!(["log4shell"]));
    assert_eq!(r["is_alert"], true);
    assert_eq!(r["severity_id"], 4);
    // The signature's ATT&CK technique, as an OCSF attack object.
    assert_eq!(r["attacks"][0]["technique"]["uid"], "T1190");
    assert_eq!(r["attacks"][0]["tactic"]["name"], "Initial Access");
    let plain = ocsf(exchange(), &policy("{}"));
    assert!(plain.get("attacks").is_none(), "no technique, no member");
    assert_eq!(
        plain["unmapped"]["meshsight"]["mirror"]["reason"],
        "not_selected"
    );
    assert!(plain.get("is_alert").is_none());
}

/// A decoding finding (a malformed multipart body, a broken compressed stream) is named in the
/// record whether or not the request was copied; it alone is no alert and does not raise the
/// severity (the request went on, scanned as far as it reads).
#[test]
fn decoding_findings_are_named_without_an_alert() {
    let mut ex = exchange();
    ex.mirror = Some(MirrorDecision {
        mirrored: false,
        target: None,
        reason: MirrorReason::NotSelected,
        rule: None,
        signatures: Vec::new(),
        signature_rules: Vec::new(),
        findings: vec!["multipart_malformed".into(), "body_encoding_broken".into()],
    });
    let r = ocsf(ex, &policy("{}"));
    assert_eq!(
        r["unmapped"]["meshsight"]["mirror"]["findings"],
        serde_json::json!(["multipart_malformed", "body_encoding_broken"])
    );
    assert!(r.get("is_alert").is_none());
    assert_eq!(r["severity_id"], 1);
    let plain = ocsf(exchange(), &policy("{}"));
    assert!(plain["unmapped"]["meshsight"]["mirror"]
        .get("findings")
        .is_none());
}

#[test]
fn failures_and_aborts_are_described() {
    let mut ex = exchange();
    ex.status = Some(503);
    ex.response_flags = 1 << 5 | 1 << 15; // UF, URX
    ex.response_code_details =
        Some("upstream_reset_before_response_started{connection_failure}".into());
    let r = ocsf(ex, &policy("{}"));
    assert_eq!(r["status_id"], 2);
    assert_eq!(r["status"], "Failure");
    assert_eq!(r["status_code"], "UF,URX");
    assert_eq!(r["http_response"]["code"], 503);
    assert_eq!(r["severity_id"], 2);
    assert_eq!(r["unmapped"]["meshsight"]["upstream_failure"], true);
    assert_eq!(r["unmapped"]["meshsight"]["client_aborted"], false);

    let mut ex = exchange();
    ex.status = None;
    ex.response_headers.clear();
    ex.response_flags = 1 << 14; // DC
    ex.response_code_details = Some("downstream_remote_disconnect".into());
    let r = ocsf(ex, &policy("{}"));
    assert!(r.get("http_response").is_none(), "no response was sent");
    assert_eq!(r["status_id"], 2);
    assert_eq!(r["unmapped"]["meshsight"]["client_aborted"], true);
    assert_eq!(
        r["unmapped"]["meshsight"]["response_flags"],
        serde_json::json!(["DC"])
    );
}

#[test]
fn odd_addresses_and_forwarded_for_stay_schema_safe() {
    let mut ex = exchange();
    ex.source_address = Some("[2001:db8::1]:443".into());
    ex.destination_address = Some("not an address".into());
    ex.authority = "[2001:db8::2]:8443".into();
    ex.request_headers.retain(|(n, _)| n != "x-forwarded-for");
    ex.request_headers
        .push(("x-forwarded-for".into(), "198.51.100.1, unknown".into()));
    let r = ocsf(ex, &policy("{}"));
    assert_eq!(r["src_endpoint"]["ip"], "2001:db8::1");
    assert_eq!(r["src_endpoint"]["port"], 443);
    assert!(r.get("dst_endpoint").is_none());
    assert_eq!(r["http_request"]["url"]["hostname"], "2001:db8::2");
    assert_eq!(r["http_request"]["url"]["port"], 8443);
    assert_eq!(
        r["http_request"]["x_forwarded_for"],
        serde_json::json!(["198.51.100.1"])
    );
    assert_eq!(
        r["unmapped"]["meshsight"]["x_forwarded_for_raw"],
        "198.51.100.1, unknown"
    );
}
