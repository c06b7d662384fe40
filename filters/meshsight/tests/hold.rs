//! Holding a request for its body (`hold_for_body`) is bounded: every held request is let go at
//! `hold_timeout_ms` (a denied one gets its reply, an allowed one goes on), whether or not its
//! body came, and a worker whose held requests never get a body (a proxy without
//! `allow_on_headers_stop_iteration`, as under an Istio WasmPlugin) stops holding, counts it
//! and warns once. Through the real SDK dispatcher in the native host; the host never hands a
//! body to a stream here unless the test says so, which is what Envoy without the option does.

// Helpers outside `#[test]` functions are test code too.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

mod stats;
use std::time::Duration;

use proxy_wasm_test_host::{Action, Host, HttpCall};
use stats::counter;

/// Enforce `GET /public/**`, copy signature hits to a dispatch sensor (denied requests are
/// held for their body), and with `header_target`, a header target that holds allowed requests
/// too.
fn policy(extra: &str) -> String {
    format!(
        r#"{{
  "allowlist": {{"mode": "enforce", "rules": [{{"name": "public", "methods": ["GET", "POST"], "paths": ["/public/**"]}}]}},
  "mirror": {{"targets": {{"ids": {{"cluster": "sensor", "delivery": "dispatch", "max_rps": 1000}}}},
             "hold_for_body": true{extra}}},
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

/// A POST head with a body to come (`end_of_stream` false).
fn post(host: &mut Host, path: &str) -> (u32, Action) {
    let id = host.new_http_stream();
    let headers = [
        (":method", "POST"),
        (":path", path),
        (":authority", "shop.example.com"),
        ("content-type", "application/x-www-form-urlencoded"),
        ("x-request-id", "held"),
    ];
    let action = host.request_headers(id, &headers, false);
    (id, action)
}

fn sensor_calls(host: &mut Host) -> Vec<HttpCall> {
    host.tick();
    host.http_calls()
        .into_iter()
        .filter(|c| c.upstream == "sensor")
        .collect()
}

const OGNL_FORM: &[u8] = b"queryString=%5Cu0027%2B%7BClass.forName%28%27javax.script.ScriptEngineManager%27%29.newInstance%28%29%7D%2B%5Cu0027";

#[test]
fn a_held_denied_request_without_its_body_gets_its_reply_at_the_timeout() {
    let mut host = start(&policy(r#", "hold_timeout_ms": 200"#));
    let (id, action) = post(&mut host, "/admin/users");
    assert_eq!(action, Action::Pause);
    assert!(host.local_response(id).is_none(), "held for the body");
    assert!(host
        .tick_period()
        .is_some_and(|p| p <= Duration::from_millis(10)));

    host.advance_time(Duration::from_millis(150));
    host.tick();
    assert!(host.local_response(id).is_none(), "not before the timeout");

    host.advance_time(Duration::from_millis(60));
    host.tick();
    assert_eq!(
        host.local_response(id).map(|r| r.status),
        Some(403),
        "answered at hold_timeout_ms although the body never came"
    );
    assert_eq!(
        counter(&mut host, "meshsight_mirror_hold_timeouts"),
        Some(1)
    );
    assert_eq!(counter(&mut host, "meshsight_mirror_hold_stopped"), Some(0));
    // The tick goes back to its idle period once nothing is held.
    assert!(host
        .tick_period()
        .is_some_and(|p| p > Duration::from_millis(10)));
    host.encode_local_response(id);
    host.log(id);
    host.done(id);
}

#[test]
fn a_held_denied_request_whose_body_comes_in_time_is_scanned_and_copied_once() {
    let mut host = start(&policy(""));
    let (id, _) = post(&mut host, "/pages/createpage-entervariables.action");
    host.advance_time(Duration::from_millis(50));
    host.tick();
    host.request_body(id, OGNL_FORM, true);
    assert_eq!(host.local_response(id).map(|r| r.status), Some(403));
    host.encode_local_response(id);
    host.log(id);
    host.done(id);
    // Long after: the hold was released with the body, nothing is let go twice.
    host.advance_time(Duration::from_secs(2));
    let calls = sensor_calls(&mut host);
    assert_eq!(calls.len(), 1, "copied with its body: {calls:?}");
    assert_eq!(calls[0].body, OGNL_FORM.to_vec());
    assert_eq!(
        counter(&mut host, "meshsight_mirror_hold_timeouts"),
        Some(0)
    );
}

#[test]
fn after_three_bodyless_timeouts_the_worker_stops_holding_and_says_so_once() {
    let mut host = start(&policy(""));
    for round in 0..3 {
        let (id, action) = post(&mut host, "/admin/users");
        assert_eq!(action, Action::Pause, "round {round}: held");
        assert!(host.local_response(id).is_none());
        host.advance_time(Duration::from_millis(260));
        host.tick();
        assert_eq!(host.local_response(id).map(|r| r.status), Some(403));
        host.encode_local_response(id);
        host.log(id);
        host.done(id);
    }
    assert_eq!(
        counter(&mut host, "meshsight_mirror_hold_timeouts"),
        Some(3)
    );
    assert_eq!(counter(&mut host, "meshsight_mirror_hold_stopped"), Some(1));
    let warnings: Vec<_> = host
        .logs()
        .iter()
        .filter(|e| e.message.contains("stops holding"))
        .map(|e| e.message.clone())
        .collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("allow_on_headers_stop_iteration"));

    // From now on a denied POST is answered at its head, its body unread.
    let (id, _) = post(&mut host, "/admin/users");
    assert_eq!(host.local_response(id).map(|r| r.status), Some(403));
    host.encode_local_response(id);
    host.log(id);
    host.done(id);
    host.advance_time(Duration::from_secs(1));
    host.tick();
    assert_eq!(counter(&mut host, "meshsight_mirror_hold_stopped"), Some(1));
}

#[test]
fn slow_bodies_that_do_arrive_do_not_stop_holding() {
    let mut host = start(&policy(r#", "hold_timeout_ms": 100"#));
    for _ in 0..5 {
        let (id, _) = post(&mut host, "/admin/users");
        // Some body arrives but not all of it before the timeout.
        host.request_body(id, b"a=1&", false);
        assert!(host.local_response(id).is_none());
        host.advance_time(Duration::from_millis(120));
        host.tick();
        assert_eq!(host.local_response(id).map(|r| r.status), Some(403));
        host.encode_local_response(id);
        host.log(id);
        host.done(id);
    }
    assert_eq!(
        counter(&mut host, "meshsight_mirror_hold_timeouts"),
        Some(5)
    );
    assert_eq!(counter(&mut host, "meshsight_mirror_hold_stopped"), Some(0));
    let (_, action) = post(&mut host, "/admin/users");
    assert_eq!(action, Action::Pause, "still holding");
}

#[test]
fn a_held_allowed_request_goes_on_at_the_timeout() {
    let config = r#"{
  "allowlist": {"mode": "enforce", "rules": [{"name": "public", "methods": ["POST"], "paths": ["/public/**"]}]},
  "mirror": {"targets": {"ids": {"cluster": "sensor", "delivery": "header"}},
             "hold_for_body": true, "hold_timeout_ms": 100}
}"#;
    let mut host = start(config);
    let (id, action) = post(&mut host, "/public/form");
    assert_eq!(action, Action::Pause, "held for the body");
    assert!(!host.request_continued(id));
    host.advance_time(Duration::from_millis(110));
    host.tick();
    assert!(host.request_continued(id), "resumed at the timeout");
    assert!(
        host.local_response(id).is_none(),
        "an allowed request is not answered"
    );
    // The body now flows; the stream finishes normally and nothing is let go twice.
    host.request_body(id, b"name=ana", true);
    host.response_headers(id, &[(":status", "200")], true);
    host.log(id);
    host.done(id);
    assert_eq!(
        counter(&mut host, "meshsight_mirror_hold_timeouts"),
        Some(1)
    );
}

#[test]
fn a_client_reset_while_held_leaves_nothing_to_let_go() {
    let mut host = start(&policy(""));
    let (id, _) = post(&mut host, "/admin/users");
    host.log(id);
    host.done(id);
    host.advance_time(Duration::from_secs(1));
    host.tick();
    assert_eq!(
        counter(&mut host, "meshsight_mirror_hold_timeouts"),
        Some(0)
    );
}
