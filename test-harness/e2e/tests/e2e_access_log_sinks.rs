#![cfg(feature = "e2e")]
//! Audit path (b) through every shipped access-log block (`envoy-config/access-log/`), in the
//! real Envoy of this run (`envoy-config/e2e/access_log_sinks.yaml`): the file logger, the
//! OpenTelemetry logger over OTLP/gRPC (every version) and over OTLP/HTTP (Envoy >= 1.40; older
//! Envoy must refuse `http_service` rather than ignore it). The verdict probe
//! (`test-harness/e2e/verdict-probe`) writes the verdict each request asks for; the OTLP exports
//! are decoded with the official `opentelemetry-proto` messages (`meshsight_rig::OtlpReceiver`).
//! Allowed, denied (local 403), would_deny, malformed, signature-alert, no-verdict-from-allowlist,
//! non-standard-method and quote/backslash-injection requests; every record of every logger
//! validates against OCSF 1.7.0 `http_activity` (`scripts/validate_ocsf.py`) and carries the
//! verdict, status, time, path and escaping its request calls for.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use meshsight_rig::{
    envoy_binary, envoy_version, send, try_send_raw, workspace_root, Envoy, EnvoyBuilder,
    HttpRequest, OtlpReceiver,
};
use serde_json::{json, Value};

const BLOCKS: &str = "envoy-config/access-log";
const TEMPLATE: &str = "envoy-config/e2e/access_log_sinks.yaml";

/// One request: id (its `x-request-id`), method, target, probe headers, expected status and
/// the verdict members its record must carry (value and JSON type).
struct Case {
    id: &'static str,
    method: &'static str,
    target: &'static str,
    headers: &'static [(&'static str, &'static str)],
    status: u16,
    verdict: Value,
}

fn cases() -> Vec<Case> {
    let verdict = |action: u64, disposition: u64, severity: u64, alert: bool, activity: u64| {
        json!({"action_id": action, "disposition_id": disposition, "severity_id": severity,
               "is_alert": alert, "activity_id": activity})
    };
    vec![
        Case {
            id: "allowed",
            method: "GET",
            target: "/api/items?token=secret",
            headers: &[("x-probe-outcome", "allowed")],
            status: 200,
            verdict: verdict(1, 1, 1, false, 3),
        },
        Case {
            id: "denied",
            method: "POST",
            target: "/admin",
            headers: &[("x-probe-outcome", "denied")],
            status: 403,
            verdict: verdict(2, 2, 3, false, 6),
        },
        Case {
            id: "would-deny",
            method: "PUT",
            target: "/monitored",
            headers: &[("x-probe-outcome", "would_deny")],
            status: 200,
            verdict: verdict(1, 20, 2, false, 7),
        },
        Case {
            id: "malformed",
            method: "GET",
            target: "/a%2fb",
            headers: &[("x-probe-outcome", "malformed")],
            status: 403,
            verdict: verdict(2, 25, 3, false, 3),
        },
        Case {
            id: "alert",
            method: "GET",
            target: "/search?q=${jndi:ldap://x/a}",
            headers: &[
                ("x-probe-outcome", "allowed"),
                ("x-probe-signature", "log4shell"),
            ],
            status: 200,
            verdict: verdict(1, 1, 4, true, 3),
        },
        Case {
            id: "observed",
            method: "DELETE",
            target: "/no-allowlist",
            headers: &[],
            status: 200,
            verdict: verdict(3, 17, 1, false, 2),
        },
        Case {
            id: "other-method",
            method: "PROPFIND",
            target: "/dav",
            headers: &[("x-probe-outcome", "allowed")],
            status: 200,
            verdict: verdict(1, 1, 1, false, 99),
        },
    ]
}

/// Sent raw: a quote and a backslash in the path and the user agent must stay inside their
/// JSON strings.
const INJECTION_ID: &str = "injection";
const INJECTION_REQUEST: &[u8] = b"GET /x\"y\\z HTTP/1.1\r\nHost: app.local\r\nUser-Agent: evil\",\"action_id\":1,\"x\":\"\\\r\nX-Probe-Outcome: denied\r\nX-Request-Id: injection\r\nConnection: close\r\n\r\n";

/// The template line each block must carry, byte for byte.
fn shipped_template() -> String {
    std::fs::read_to_string(
        workspace_root()
            .join(BLOCKS)
            .join("ocsf_http_activity.tmpl"),
    )
    .expect("ocsf_http_activity.tmpl")
    .trim()
    .to_string()
}

/// The format string a shipped block carries: file.yaml's `inline_string: |` literal block, or
/// the OpenTelemetry blocks' single-quoted `string_value: '...'`.
fn carried_template(block: &str) -> Option<String> {
    let lines: Vec<&str> = block.lines().collect();
    if let Some(at) = lines
        .iter()
        .position(|l| l.trim_start().starts_with("inline_string: |"))
    {
        let indent = |l: &str| l.len() - l.trim_start().len();
        let parent = indent(lines[at]);
        let body: Vec<&str> = lines[at + 1..]
            .iter()
            .take_while(|l| l.trim().is_empty() || indent(l) > parent)
            .map(|l| l.trim())
            .collect();
        return Some(body.join("\n").trim().to_string());
    }
    let line = lines
        .iter()
        .find(|l| l.trim_start().starts_with("string_value: '"))?;
    let quoted = line
        .trim()
        .strip_prefix("string_value: '")?
        .strip_suffix('\'')?;
    Some(quoted.replace("''", "'"))
}

#[test]
fn every_shipped_block_carries_the_one_template() {
    let template = shipped_template();
    for name in ["file.yaml", "otel_grpc.yaml", "otel_http.yaml"] {
        let block = std::fs::read_to_string(workspace_root().join(BLOCKS).join(name)).unwrap();
        assert_eq!(
            carried_template(&block).as_deref(),
            Some(template.as_str()),
            "{name} does not carry ocsf_http_activity.tmpl"
        );
    }
}

fn builder(receiver: &OtlpReceiver) -> EnvoyBuilder {
    Envoy::builder(TEMPLATE)
        .var("OTLP_HTTP_PORT", receiver.http_port().to_string())
        .var(
            "OTLP_GRPC_PORT",
            receiver.grpc_port().expect("gRPC port").to_string(),
        )
        .var(
            "OTLP_HTTP_URI",
            format!("http://127.0.0.1:{}/v1/logs", receiver.http_port()),
        )
}

fn include(builder: EnvoyBuilder, name: &str, block: &str, cluster: &str) -> EnvoyBuilder {
    builder.include(
        name,
        Path::new(BLOCKS).join(block),
        &[
            ("ACCESS_LOG_PATH", "${RUN_DIR}/access.ndjson"),
            ("OTLP_CLUSTER", cluster),
        ],
    )
}

/// Writes `lines` as NDJSON and runs the OCSF 1.7.0 schema check on them.
fn validate_ocsf(label: &str, lines: &[String], dir: &Path) -> Result<(), String> {
    let path = dir.join(format!("{label}.ndjson"));
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(&path, text).unwrap();
    let python = meshsight_rig::tools_python().unwrap_or_else(|e| panic!("{e}"));
    let out = Command::new(python)
        .arg(workspace_root().join("scripts/validate_ocsf.py"))
        .arg(&path)
        .output()
        .expect("run validate_ocsf.py");
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{label}: OCSF validation failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// Every check the records of one logger must pass; the failures, each naming the logger.
fn check(label: &str, lines: &[String], dir: &Path, cases: &[Case]) -> Vec<String> {
    let mut failures = Vec::new();
    let expected = cases.len() + 1;
    if lines.len() != expected {
        failures.push(format!(
            "{label}: {} records, expected {expected}",
            lines.len()
        ));
    }
    if let Err(e) = validate_ocsf(label, lines, dir) {
        failures.push(e);
        return failures;
    }
    let mut by_id = BTreeMap::new();
    for line in lines {
        let record: Value = serde_json::from_str(line).unwrap();
        let uid = record["http_request"]["uid"]
            .as_str()
            .unwrap_or("")
            .to_string();
        by_id.insert(uid, (record, line.clone()));
    }
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i128;
    for case in cases {
        let Some((record, line)) = by_id.get(case.id) else {
            failures.push(format!("{label}: no record for {}", case.id));
            continue;
        };
        for (key, value) in case.verdict.as_object().unwrap() {
            // serde_json's equality tells 1 from 1.0 and false from 0: the type is checked too.
            if &record[key] != value {
                failures.push(format!(
                    "{label}: {}: {key} = {}, expected {value}",
                    case.id, record[key]
                ));
            }
        }
        if record["http_response"]["code"] != json!(case.status) {
            failures.push(format!(
                "{label}: {}: code {} != {}",
                case.id, record["http_response"]["code"], case.status
            ));
        }
        match record["time"].as_u64() {
            Some(t) if (i128::from(t) - now_ms).abs() < 120_000 => {}
            _ => failures.push(format!(
                "{label}: {}: time {} is not epoch ms of now",
                case.id, record["time"]
            )),
        }
        let path = case.target.split('?').next().unwrap_or("");
        if record["http_request"]["url"]["path"] != json!(path) {
            failures.push(format!(
                "{label}: {}: path {}",
                case.id, record["http_request"]["url"]["path"]
            ));
        }
        if line.contains("secret") {
            failures.push(format!(
                "{label}: {}: the query string reached the record",
                case.id
            ));
        }
    }
    match by_id.get(INJECTION_ID) {
        None => failures.push(format!("{label}: no record for the injection request")),
        Some((record, _)) => {
            let got = (
                &record["action_id"],
                &record["http_request"]["url"]["path"],
                &record["http_request"]["user_agent"],
            );
            if got
                != (
                    &json!(2),
                    &json!("/x\"y\\z"),
                    &json!("evil\",\"action_id\":1,\"x\":\"\\"),
                )
            {
                failures.push(format!("{label}: injection request rendered as {record}"));
            }
        }
    }
    failures
}

/// The OCSF lines one transport delivered; failures for a record that is not a string body
/// tagged `event.name: ocsf.http_activity`, or an export that did not decode.
fn otlp_lines(exports: &[Value], transport: &str, failures: &mut Vec<String>) -> Vec<String> {
    let mut lines = Vec::new();
    for export in exports.iter().filter(|e| e["transport"] == transport) {
        if let Some(error) = export.get("error") {
            failures.push(format!("otlp-{transport}: did not decode: {error}"));
            continue;
        }
        if transport == "http"
            && (export["path"] != "/v1/logs"
                || !export["content_type"]
                    .as_str()
                    .unwrap_or("")
                    .contains("protobuf"))
        {
            failures.push(format!(
                "otlp-http: {} {}",
                export["path"], export["content_type"]
            ));
        }
        for record in export["records"].as_array().into_iter().flatten() {
            if record["attributes"]["event.name"] != "ocsf.http_activity" {
                failures.push(format!(
                    "otlp-{transport}: attribute event.name is {}",
                    record["attributes"]
                ));
            }
            match (record["body_kind"].as_str(), record["body"].as_str()) {
                (Some("string_value"), Some(body)) => lines.push(body.to_string()),
                _ => failures.push(format!(
                    "otlp-{transport}: body is not a string: {}",
                    record["body"]
                )),
            }
        }
    }
    lines
}

fn count_records(exports: &[Value], transport: &str) -> usize {
    exports
        .iter()
        .filter(|e| e["transport"] == transport)
        .map(|e| e["records"].as_array().map_or(0, Vec::len))
        .sum()
}

#[test]
fn every_logger_renders_valid_ocsf_records_around_the_verdict() {
    let version = envoy_version(&envoy_binary()).unwrap_or_else(|e| panic!("{e}"));
    let with_http = version >= (1, 40, 0);
    let receiver = OtlpReceiver::start("", true).unwrap_or_else(|e| panic!("{e}"));
    let mut failures = Vec::new();
    if !with_http {
        // Older Envoy has no OTLP/HTTP: the shipped block must be refused, not silently ignored.
        let refused = include(
            builder(&receiver)
                .var("ACCESS_LOG_FILE", "")
                .var("ACCESS_LOG_OTEL_GRPC", ""),
            "ACCESS_LOG_OTEL_HTTP",
            "otel_http.yaml",
            "otlp_http",
        )
        .validate();
        // Refused for a field it does not know (1.36 meets `buffer_flush_interval` or
        // `http_service` first, both top-level only since 1.40), not for anything else.
        // Protobuf doubles random spaces in its messages so that nobody matches them: collapse.
        let words = |e: &meshsight_rig::RigError| {
            e.to_string()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        };
        match refused {
            Err(e) if words(&e).contains("no such field") => {}
            Err(e) => failures.push(format!(
                "Envoy {version:?} refused otel_http.yaml, but not for an unknown field: {e}"
            )),
            Ok(()) => failures.push(format!(
                "Envoy {version:?} accepted http_service: use otel_http.yaml there"
            )),
        }
    }
    let mut config = include(builder(&receiver), "ACCESS_LOG_FILE", "file.yaml", "unused");
    config = include(
        config,
        "ACCESS_LOG_OTEL_GRPC",
        "otel_grpc.yaml",
        "otlp_grpc",
    );
    config = if with_http {
        include(
            config,
            "ACCESS_LOG_OTEL_HTTP",
            "otel_http.yaml",
            "otlp_http",
        )
    } else {
        config.var("ACCESS_LOG_OTEL_HTTP", "")
    };
    let envoy = config
        .start()
        .unwrap_or_else(|e| panic!("Envoy must start with the shipped blocks: {e}"));

    let cases = cases();
    for case in &cases {
        let mut request = HttpRequest::new(case.method, case.target)
            .header("x-request-id", case.id)
            .header("user-agent", "probe \"ua\" \\ 1.0")
            .header("host", "app.local:8080");
        for (name, value) in case.headers {
            request = request.header(name, value);
        }
        let got = send(envoy.port(), &request).status;
        if got != case.status {
            failures.push(format!(
                "{}: status {got}, expected {}",
                case.id, case.status
            ));
        }
    }
    let injected = try_send_raw(
        envoy.port(),
        "GET",
        INJECTION_REQUEST,
        Duration::from_secs(5),
    );
    if !matches!(injected, Ok(ref r) if r.status == 403) {
        failures.push(format!("injection request was not denied: {injected:?}"));
    }

    let expected = cases.len() + 1;
    let access_log = envoy.run_dir().join("access.ndjson");
    let file_lines = || -> Vec<String> {
        std::fs::read_to_string(&access_log)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    };
    let transports: &[&str] = if with_http {
        &["grpc", "http"]
    } else {
        &["grpc"]
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    let exports = receiver.wait_until(Duration::from_secs(15), |exports| {
        transports
            .iter()
            .all(|t| count_records(exports, t) >= expected)
    });
    while file_lines().len() < expected && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }

    let dir = envoy.run_dir();
    failures.extend(check("file", &file_lines(), &dir, &cases));
    for transport in transports {
        let lines = otlp_lines(&exports, transport, &mut failures);
        failures.extend(check(&format!("otlp-{transport}"), &lines, &dir, &cases));
    }
    assert!(
        failures.is_empty(),
        "Envoy {version:?}: {} failure(s):\n  {}\n(run dir {})",
        failures.len(),
        failures.join("\n  "),
        dir.display()
    );
    eprintln!(
        "Envoy {version:?}: {expected} requests, loggers file + otlp-{}: every record valid OCSF 1.7.0 with the expected verdict",
        transports.join(" + otlp-")
    );
}
