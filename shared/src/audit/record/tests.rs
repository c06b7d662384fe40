//! The record: disposition and severity, response flags, which headers are recorded and how
//! they are redacted.

use super::*;
use crate::audit::tests::{exchange, h, ocsf, policy};
use crate::audit::*;
use crate::decision::{AllowlistDecision, AllowlistOutcome};
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

#[test]
fn allowlist_decisions_map_to_action_and_disposition() {
    let cases = [
        (Some(AllowlistOutcome::Allowed), 1, 1, 1),
        (Some(AllowlistOutcome::Denied), 2, 2, 3),
        (Some(AllowlistOutcome::Malformed), 2, 25, 3),
        (Some(AllowlistOutcome::WouldDeny), 1, 20, 2),
        (None, 3, 17, 1),
    ];
    for (outcome, action, disp, severity) in cases {
        let mut ex = exchange();
        ex.allowlist = outcome.map(|o| AllowlistDecision {
            outcome: o,
            rule: None,
            reason: Some("no_rule_matched".into()),
        });
        if outcome == Some(AllowlistOutcome::Denied) {
            ex.status = Some(403);
        }
        let r = ocsf(ex, &policy("{}"));
        assert_eq!(r["action_id"], action, "{outcome:?}");
        assert_eq!(r["disposition_id"], disp, "{outcome:?}");
        assert_eq!(r["severity_id"], severity, "{outcome:?}");
        match outcome {
            Some(o) => assert_eq!(
                r["unmapped"]["meshsight"]["allowlist"]["outcome"],
                serde_json::json!(o.as_str())
            ),
            None => assert!(r["unmapped"]["meshsight"].get("allowlist").is_none()),
        }
    }
    let r = ocsf(exchange(), &policy("{}"));
    assert_eq!(r["firewall_rule"]["name"], "cart");
}

#[test]
fn response_flag_bits_name_envoy_flags() {
    assert_eq!(response_flag_names(0), Vec::<String>::new());
    assert_eq!(
        response_flag_names(1 << 1 | 1 << 8 | 1 << 28),
        vec!["UH", "NR", "DR"]
    );
}

#[test]
fn credential_headers_never_appear_even_when_listed_at_record_time() {
    let p = policy(r#"{"record_headers":["content-type","x-tenant"]}"#);
    let mut ex = exchange();
    ex.request_headers.push(("X-Tenant".into(), "acme".into()));
    ex.request_headers
        .push(("Proxy-Authorization".into(), "Basic zzz".into()));
    let rec = AuditRecord::build(ex, &p);
    for format in [AuditFormat::Ocsf, AuditFormat::Ecs] {
        let line = rec.to_json_line(format);
        for secret in ["very-secret", "session=abc", "sid=1", "Basic zzz", "s3cr3t"] {
            assert!(
                !line.contains(secret),
                "{secret} leaked in {format:?}: {line}"
            );
        }
        assert!(line.contains("acme"));
    }
    // Even an allow-list that somehow held a credential header would not record it.
    let mut allow = crate::name_set::NameSet::new();
    allow.insert("authorization".to_string());
    allow.insert("cookie".to_string());
    let kept = select_headers(
        &h(&[("authorization", "x"), ("Cookie", "y")]),
        &allow,
        &Default::default(),
    );
    assert!(kept.is_empty());
}

#[test]
fn referer_query_secrets_are_masked() {
    let p = policy(r#"{"record_headers":["referer"]}"#);
    let mut ex = exchange();
    ex.request_headers.push((
        "referer".into(),
        "https://a.example/cb?code=abc&state=1".into(),
    ));
    let r = ocsf(ex, &p);
    assert_eq!(
        r["http_request"]["http_headers"],
        serde_json::json!([{"name":"referer","value":"https://a.example/cb?code=REDACTED&state=1"}])
    );
}

#[test]
fn custom_redaction_list_replaces_the_default() {
    let p = policy(r#"{"redact_query_params":["Page"]}"#);
    let r = ocsf(exchange(), &p);
    assert_eq!(
        r["http_request"]["url"]["query_string"],
        "id=7&token=s3cr3t&page=REDACTED"
    );
}

#[test]
fn failure_and_abort_masks_are_the_named_flags() {
    let bits = |names: &[&str]| {
        RESPONSE_FLAGS
            .iter()
            .filter(|(_, n)| names.contains(n))
            .fold(0, |acc, (bit, _)| acc | bit)
    };
    assert_eq!(
        UPSTREAM_FAILURE_FLAGS,
        bits(&["UH", "UT", "UR", "UF", "UC", "UO", "URX", "UPE", "NC"])
    );
    assert_eq!(CLIENT_ABORT_FLAGS, bits(&["DC", "DR"]));
}

#[test]
fn the_record_borrows_what_redaction_leaves_unchanged() {
    let p = policy(r#"{"record_headers":["referer","x-tenant"]}"#);
    let mut ex = exchange();
    ex.path = "/a?page=2#frag".into();
    ex.request_headers
        .push(("referer".into(), "https://r/?page=1".into()));
    ex.request_headers.push(("X-Tenant".into(), "acme".into()));
    let rec = AuditRecord::build(ex, &p);
    assert_eq!(rec.url_path(), "/a");
    assert_eq!(rec.query(), Some("page=2"));
    assert!(rec.masked_query.is_none(), "nothing masked: no copy");
    assert_eq!(
        rec.request_headers().collect::<Vec<_>>(),
        vec![("referer", "https://r/?page=1"), ("x-tenant", "acme")]
    );
    assert_eq!(
        rec.request_headers[0].value, None,
        "unchanged value: no copy"
    );
    assert_eq!(rec.request_headers[1].name.as_deref(), Some("x-tenant"));
    assert_eq!(rec.hostname(), Some("shop.example.com"));
    assert_eq!(rec.port(), Some(8080));
    assert_eq!(rec.url_string(), "http://shop.example.com:8080/a?page=2");
    let mut line = String::from("prefix ");
    rec.write_json_line(AuditFormat::Ocsf, &mut line);
    assert_eq!(
        line,
        format!("prefix {}", rec.to_json_line(AuditFormat::Ocsf))
    );
}
