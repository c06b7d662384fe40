#![cfg(feature = "e2e")]
//! The audit HTTP sink with `"encoding": "otlp"` in the real Envoy
//! (`envoy-config/e2e/audit.yaml`), against a receiver that decodes with the official
//! `opentelemetry-proto` package (the rig's `OtlpReceiver`, `scripts/otlp_logs_receiver.py`):
//! POST `/v1/logs`, protobuf `ExportLogsServiceRequest`, the OCSF record as each log body;
//! OTLP/HTTP's retry rules: a 503 with `Retry-After` is retried no sooner than it says, a 400 is
//! never retried, and `partial_success` rejections are counted as dropped, all in counters that
//! add up.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use meshsight_rig as rig;
use meshsight_rig::{send, EchoUpstream, Envoy, HttpRequest, OtlpReceiver};

const ALLOWLIST: &str =
    r#"{"mode":"enforce","rules":[{"name":"ok","methods":["GET"],"paths":["/ok/**"]}]}"#;

fn start_envoy(upstream: &EchoUpstream, receiver: &OtlpReceiver) -> Envoy {
    let audit = r#"{"sink":{"http":{"cluster":"collector","encoding":"otlp","batch_max_records":1,"flush_interval_ms":50,"backoff_initial_ms":50,"backoff_max_ms":100,"max_retries":3,"max_in_flight_batches":1}}}"#;
    Envoy::builder("envoy-config/e2e/audit.yaml")
        .var("ALLOWLIST_CONFIG", ALLOWLIST)
        .var("AUDIT_CONFIG", audit)
        .var("DEAD_PORT", rig::free_port().unwrap().to_string())
        .var("COLLECTOR_PORT", receiver.http_port().to_string())
        .upstream(upstream)
        .start()
        .unwrap_or_else(|e| panic!("Envoy did not start: {e}"))
}

#[test]
fn otlp_logs_follow_the_retry_rules_and_count_rejections_as_dropped() {
    let upstream = EchoUpstream::start();
    // Batch 1: 503 Retry-After 1 s, then accepted; batch 2: 400 (never retried); batch 3:
    // accepted with its one record rejected; batch 4: accepted.
    let receiver = OtlpReceiver::start("503:retry-after=1,200,400,200:rejected=1,200", false)
        .unwrap_or_else(|e| panic!("{e}"));
    let envoy = start_envoy(&upstream, &receiver);
    let steps = [("/ok/1", 2), ("/ok/2", 3), ("/denied", 4), ("/ok/4", 5)];
    for (path, posts) in steps {
        let r = send(envoy.port(), &HttpRequest::get(path));
        assert!(r.status == 200 || r.status == 403, "{path}: {}", r.status);
        let got = receiver.wait_for(posts, Duration::from_secs(10));
        assert_eq!(got.len(), posts, "{path}: {got:#?}");
    }
    // Nothing more comes: the 400 is not retried, the rest were answered.
    std::thread::sleep(Duration::from_millis(1500));
    let posts = receiver.requests();
    assert_eq!(posts.len(), 5, "{posts:#?}");
    let statuses: Vec<u64> = posts
        .iter()
        .map(|p| p["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, vec![503, 200, 400, 200, 200]);
    // The retry honoured Retry-After (1 s), not the 50 ms backoff.
    let gap = posts[1]["at"].as_f64().unwrap() - posts[0]["at"].as_f64().unwrap();
    assert!(gap >= 0.95, "retried {gap:.3} s after a Retry-After: 1");
    assert_eq!(
        posts[0]["records"][0]["body"], posts[1]["records"][0]["body"],
        "the same batch again"
    );

    for p in &posts {
        assert!(
            p.get("error").is_none(),
            "opentelemetry-proto could not decode: {p}"
        );
        assert_eq!(p["path"], "/v1/logs");
        assert_eq!(p["content_type"], "application/x-protobuf");
        assert_eq!(p["resource"]["service.name"], "meshsight");
        assert_eq!(p["scope"][0], "meshsight.audit");
        let records = p["records"].as_array().unwrap();
        assert_eq!(records.len(), 1, "{p}");
        let lr = &records[0];
        let ocsf: serde_json::Value =
            serde_json::from_str(lr["body"].as_str().expect("a string body")).unwrap();
        assert_eq!(ocsf["class_uid"], 4002);
        assert_eq!(
            lr["time_unix_nano"].as_u64().unwrap(),
            ocsf["time"].as_u64().unwrap() * 1_000_000
        );
        assert!(lr["observed_time_unix_nano"].as_u64().unwrap() > 0);
        assert!(lr["severity_number"].as_u64().unwrap() >= 9);
        assert_eq!(lr["event_name"], "ocsf.http_activity");
        assert_eq!(lr["attributes"]["meshsight.schema"], "ocsf");
    }
    let denied: serde_json::Value =
        serde_json::from_str(posts[3]["records"][0]["body"].as_str().unwrap()).unwrap();
    assert_eq!(denied["http_request"]["url"]["path"], "/denied");
    assert_eq!(denied["action"], "Denied");

    // The module flushes its counters on its tick: each is polled until it reads its value.
    let stat = |n: &str, expected: u64| {
        envoy
            .settled_stat(n, expected, Duration::from_secs(5))
            .unwrap_or(0)
    };
    assert_eq!(stat("meshsight_audit_records", 4), 4);
    assert_eq!(stat("meshsight_audit_delivered", 2), 2, "batches 1 and 4");
    assert_eq!(
        stat("meshsight_audit_dropped_rejected", 2),
        2,
        "the 400's record and the partial_success rejection"
    );
    assert_eq!(stat("meshsight_audit_retried", 1), 1);
    assert_eq!(stat("meshsight_audit_dropped_retries_exhausted", 0), 0);
    assert_eq!(stat("meshsight_audit_buffered", 0), 0);
    assert_eq!(stat("meshsight_audit_batches_sent", 5), 5);
}
