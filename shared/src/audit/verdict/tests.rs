use serde_json::Value;

use super::*;
use crate::decision::{AllowlistOutcome, MirrorDecision, MirrorReason};
use crate::head::RequestHead;
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

fn object(entry: &FilterStateEntry) -> Value {
    let text = std::str::from_utf8(&entry.bytes).unwrap();
    serde_json::from_str(&format!("{{{text}}}")).unwrap()
}

fn allow(outcome: AllowlistOutcome, rule: Option<&str>) -> AllowlistDecision {
    AllowlistDecision {
        outcome,
        rule: rule.map(str::to_string),
        reason: None,
    }
}

#[test]
fn allowed_get_is_informational_allowed() {
    let a = allow(AllowlistOutcome::Allowed, Some("public-api"));
    let v = object(&verdict_entry("GET", Some(&a), None));
    assert_eq!(v["activity_id"], 3);
    assert_eq!(v["activity_name"], "Get");
    assert_eq!(v["type_uid"], 400203);
    assert_eq!(v["type_name"], "HTTP Activity: Get");
    assert_eq!(v["severity_id"], 1);
    assert_eq!(v["severity"], "Informational");
    assert_eq!(
        (v["action_id"].as_u64(), v["disposition_id"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(v["is_alert"], false);
    assert_eq!(v["firewall_rule"]["name"], "public-api");
    assert_eq!(
        v["unmapped"]["meshsight"]["allowlist"]["outcome"],
        "allowed"
    );
}

#[test]
fn each_outcome_maps_like_path_a() {
    let cases = [
        (
            Some(AllowlistOutcome::Denied),
            (2, "Denied", 2, "Blocked", 3),
        ),
        (
            Some(AllowlistOutcome::Malformed),
            (2, "Denied", 25, "Rejected", 3),
        ),
        (
            Some(AllowlistOutcome::WouldDeny),
            (1, "Allowed", 20, "Count", 2),
        ),
        (None, (3, "Observed", 17, "Logged", 1)),
    ];
    for (outcome, (action_id, action, disposition_id, disposition, severity_id)) in cases {
        let a = outcome.map(|o| allow(o, None));
        let v = object(&verdict_entry("POST", a.as_ref(), None));
        assert_eq!(v["action_id"], action_id, "{outcome:?}");
        assert_eq!(v["action"], action);
        assert_eq!(v["disposition_id"], disposition_id);
        assert_eq!(v["disposition"], disposition);
        assert_eq!(v["severity_id"], severity_id);
        assert!(v.get("firewall_rule").is_none());
    }
}

#[test]
fn signature_is_a_high_alert_with_its_categories() {
    let m = MirrorDecision {
        mirrored: true,
        target: Some("ids".into()),
        reason: MirrorReason::Signature,
        rule: None,
        signatures: vec!["log4shell".into()],
        signature_rules: vec![],
        findings: Vec::new(),
    };
    let a = allow(AllowlistOutcome::Denied, None);
    let v = object(&verdict_entry("GET", Some(&a), Some(&m)));
    assert_eq!(v["is_alert"], true);
    assert_eq!(v["severity_id"], 4);
    assert_eq!(v["severity"], "High");
    assert_eq!(
        v["unmapped"]["meshsight"]["mirror"]["signatures"][0],
        "log4shell"
    );
    assert_eq!(v["unmapped"]["meshsight"]["allowlist"]["outcome"], "denied");
}

#[test]
fn decoding_findings_are_carried_without_an_alert() {
    let m = MirrorDecision {
        mirrored: false,
        target: None,
        reason: MirrorReason::NotSelected,
        rule: None,
        signatures: vec![],
        signature_rules: vec![],
        findings: vec!["body_inflate_bomb".into()],
    };
    let v = object(&verdict_entry("POST", None, Some(&m)));
    assert_eq!(
        v["unmapped"]["meshsight"]["mirror"]["findings"],
        serde_json::json!(["body_inflate_bomb"])
    );
    assert_eq!(v["is_alert"], false);
    assert_eq!(v["severity_id"], 1);
}

#[test]
fn unknown_method_is_other_and_kept_escaped() {
    let v = object(&verdict_entry("BR\"EW", None, None));
    assert_eq!(v["activity_id"], 99);
    assert_eq!(v["type_uid"], 400299);
    assert_eq!(v["activity_name"], "BR\"EW");
    assert_eq!(v["type_name"], "HTTP Activity: Other");
    assert_eq!(v["unmapped"]["meshsight"]["http_method"], "BR\"EW");
    let r = object(&request_entry("BR\"EW", "", "a", "/", None, None));
    assert!(r.get("http_method").is_none());
}

#[test]
fn request_strings_are_escaped_and_the_query_dropped() {
    let r = object(&request_entry(
        "GET",
        "http",
        "[::1]:8080",
        "/a\"b\\c\u{1}?token=secret",
        Some("curl \"x\"\t"),
        Some("id\n1"),
    ));
    assert_eq!(r["http_method"], "GET");
    assert_eq!(r["url"]["path"], "/a\"b\\c\u{1}");
    assert_eq!(r["url"]["hostname"], "::1");
    assert_eq!(r["url"]["port"], 8080);
    assert_eq!(r["url"]["scheme"], "http");
    assert_eq!(r["url"]["url_string"], "http://[::1]:8080/a\"b\\c\u{1}");
    assert_eq!(r["user_agent"], "curl \"x\"\t");
    assert_eq!(r["uid"], "id\n1");
    assert!(!std::str::from_utf8(&r.to_string().into_bytes())
        .unwrap()
        .contains("secret"));
}

#[test]
fn authority_without_port_or_scheme() {
    let r = object(&request_entry("GET", "", "example.com", "/", None, None));
    assert_eq!(r["url"]["hostname"], "example.com");
    assert!(r["url"].get("port").is_none());
    assert!(r["url"].get("scheme").is_none());
    assert_eq!(r["url"]["url_string"], "example.com/");
    assert!(r.get("user_agent").is_none() && r.get("uid").is_none());
    let odd = object(&request_entry("GET", "", "host:notaport", "/", None, None));
    assert_eq!(odd["url"]["hostname"], "host:notaport");
}

#[test]
fn one_entry_holds_the_verdict_and_opens_http_request_for_the_template() {
    let head = RequestHead::from_pairs(vec![
        (":method".into(), "GET".into()),
        (":scheme".into(), "http".into()),
        (":authority".into(), "a:8080".into()),
        (":path".into(), "/x?token=secret".into()),
        ("user-agent".into(), "ua\"1".into()),
        ("x-request-id".into(), "r-1".into()),
    ]);
    let allowed = allow(AllowlistOutcome::Allowed, Some("public"));
    let [entry] = entries(&head, Some(&allowed), None);
    assert_eq!(entry.name, "meshsight_ocsf");
    // As the template embeds it: record members before, Envoy's request fields after.
    let text = String::from_utf8(entry.bytes).unwrap();
    let record = format!("{{\"class_uid\":4002,{text},\"length\":0,\"version\":\"HTTP/1.1\"}}}}");
    let v: Value = serde_json::from_str(&record).unwrap_or_else(|e| panic!("{e}: {record}"));
    assert_eq!(v["disposition"], "Allowed");
    assert_eq!(v["firewall_rule"]["name"], "public");
    let req = &v["http_request"];
    assert_eq!(req["http_method"], "GET");
    assert_eq!(req["url"]["path"], "/x");
    assert_eq!(req["url"]["port"], 8080);
    assert_eq!(req["user_agent"], "ua\"1");
    assert_eq!(req["uid"], "r-1");
    assert_eq!(req["length"], 0);
    assert!(!record.contains("secret"));
}

#[test]
fn declarations_encode_declare_property_arguments() {
    let [(name, args)] = declarations();
    assert_eq!(name, "meshsight_ocsf");
    // name = 1 (len-delimited), type = 3 (String = 1), span = 5 (DownstreamRequest = 1).
    let mut expected = vec![0x0a, 14];
    expected.extend_from_slice(b"meshsight_ocsf");
    expected.extend_from_slice(&[0x18, 1, 0x28, 1]);
    assert_eq!(args, expected);
}

/// The byte scan that cuts the query and fragment gives what the char-set split gave.
#[test]
fn without_query_cuts_as_the_char_set_split_did() {
    for path in [
        "",
        "/",
        "/a/b",
        "/a?x=1",
        "/a#frag",
        "/a#f?x",
        "/a?x#f",
        "?only",
        "#only",
        "/é漢?😀",
        "/😀#é",
    ] {
        let old = path.split(['?', '#']).next().unwrap_or_default();
        assert_eq!(super::without_query(path), old, "{path:?}");
    }
}
