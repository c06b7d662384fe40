#![cfg(feature = "e2e")]
//! Response rules in the real Envoy (one_pass.yaml with the HTTP audit sink, and
//! one_pass_access_log.yaml where Envoy's access logger renders the record): an upstream that
//! answers a Confluence OGNL exploit with `uid=0(root)`, and an egress-style request to a fake
//! metadata service answering AWS-shaped credentials, are recorded as succeeded with their
//! ATT&CK technique and Critical severity; the sensor's response copy links to the request's
//! copy by request id; the secret appears in no record and no copy; look-alikes (JSON with
//! `token` fields, a documentation page about /etc/passwd, a JWT that is not a service-account
//! token) do not fire. Most answers are compressed: a gzip AWS-credentials answer is flagged
//! like the plain one (found in the inflated body; the copy keeps the body as sent and leaves
//! out the excerpt it could not mask), and a gzip ordinary JSON answer is not. A response's
//! copy takes from the sensor's one rate budget: over it, it is counted and the record says so.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;
use std::time::{Duration, Instant};

use meshsight_rig::{send, Collector, EchoUpstream, Envoy, HttpRequest, Sensor};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(20);

const OGNL_PATH: &str = "/pages/createpage-entervariables.action?queryString=%5cu0027%2b%23%7b%40java.lang.Runtime%40getRuntime().exec(%27id%27)%7d%2b%5cu0027";
const ID_OUTPUT: &str =
    "<html><body><div class=\"error\">uid=0(root) gid=0(root) groups=0(root)\n</div></body></html>";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEYq1";
const TOKEN: &str = "IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQDsecret";
const KEY_ID: &str = "ASIAQWERTYUIOPASDFGH";

fn imds_answer() -> String {
    format!(
        "{{\n  \"Code\" : \"Success\",\n  \"Type\" : \"AWS-HMAC\",\n  \"AccessKeyId\" : \"{KEY_ID}\",\n  \"SecretAccessKey\" : \"{SECRET}\",\n  \"Token\" : \"{TOKEN}\",\n  \"Expiration\" : \"2026-12-07T16:00:00Z\"\n}}"
    )
}

/// A gzip member of `data`, with its trailer (CRC-32 and length), as a server sends it.
fn gzip(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];
    out.extend(miniz_oxide::deflate::compress_to_vec(data, 6));
    let mut crc = !0u32;
    for b in data {
        crc ^= u32::from(*b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    out.extend((!crc).to_le_bytes());
    out.extend((data.len() as u32).to_le_bytes());
    out
}

/// The plugin's configuration; `budget`: the sensor's `max_rps` and `burst`.
fn config(audit: &str, budget: (f64, u32)) -> String {
    let (max_rps, burst) = budget;
    format!(
        r#"{{
  "mirror": {{"targets": {{"ids": {{"cluster": "sensor", "delivery": "dispatch", "max_rps": {max_rps}, "burst": {burst}}}}},
             "responses": {{"paths": ["/docs/", "/api/"]}}}},
  "audit": {audit}
}}"#
    )
}

/// Every 12-byte window of the secret, so that no part of it survives.
fn assert_absent(what: &str, out: &[u8], secret: &str) {
    for w in secret.as_bytes().windows(12) {
        assert!(
            !out.windows(w.len()).any(|o| o == w),
            "{what}: {:?} leaked in {}",
            String::from_utf8_lossy(w),
            String::from_utf8_lossy(out)
        );
    }
}

fn techniques(record: &Value) -> Vec<String> {
    record["attacks"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x["technique"]["uid"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn exploit_output_and_stolen_credentials_are_recorded_as_succeeded() {
    let upstream = EchoUpstream::start();
    let sensor = Sensor::start();
    let collector = Collector::start();
    let audit = r#"{"format": "ocsf", "sink": {"http": {"cluster": "collector", "path": "/v1/audit", "flush_interval_ms": 100}}}"#;
    let envoy = Envoy::builder("envoy-config/e2e/one_pass.yaml")
        .upstream(&upstream)
        .sensor(&sensor)
        .collector(&collector)
        .var("MESHSIGHT_CONFIG", config(audit, (1000.0, 1000)))
        .start()
        .unwrap_or_else(|err| panic!("the plugin must start: {err}"));
    let other_jwt = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIn0.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";
    let look_alikes = [
        ("token-json", "/api/session", r#"{"token":"abc","csrf_token":"def","next_page_token":"x"}"#.to_string()),
        ("passwd-docs", "/docs/passwd", "<html><p>Each line of /etc/passwd reads like</p><pre>root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\nbin:x:2:2:bin:/bin:/usr/sbin/nologin\nsys:x:3:3:sys:/dev:/usr/sbin/nologin</pre></html>".to_string()),
        ("user-jwt", "/api/login", format!(r#"{{"access_token":"{other_jwt}","token_type":"Bearer"}}"#)),
    ];
    // The exploit that worked, the metadata answer, then the look-alikes.
    upstream.set_answer(Some(("text/html", ID_OUTPUT.as_bytes())));
    let r = send(
        envoy.port(),
        &HttpRequest::post(OGNL_PATH)
            .header("host", "wiki.example.com")
            .header("x-request-id", "ognl")
            .body("x=1"),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    upstream.set_answer(Some(("text/plain", imds_answer().as_bytes())));
    let r = send(
        envoy.port(),
        &HttpRequest::get("/latest/meta-data/iam/security-credentials/web-role")
            .header("host", "169.254.169.254")
            .header("x-request-id", "imds"),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    // The same credentials compressed, and an ordinary JSON answer compressed.
    let imds_gz = gzip(imds_answer().as_bytes());
    upstream.set_answer_encoding(Some("gzip"));
    upstream.set_answer(Some(("application/json", &imds_gz)));
    let r = send(
        envoy.port(),
        &HttpRequest::get("/latest/meta-data/iam/security-credentials/web-role")
            .header("host", "169.254.169.254")
            .header("accept-encoding", "gzip")
            .header("x-request-id", "imds-gz"),
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.body, imds_gz, "the client gets the body as sent");
    let ordinary =
        gzip(br#"{"items":[{"id":1,"name":"widget","token":"abc"}],"next_page_token":"x"}"#);
    upstream.set_answer(Some(("application/json", &ordinary)));
    let r = send(
        envoy.port(),
        &HttpRequest::get("/api/items")
            .header("host", "shop.example.com")
            .header("accept-encoding", "gzip")
            .header("x-request-id", "json-gz"),
    );
    assert_eq!(r.status, 200);
    upstream.set_answer_encoding(None);
    for (id, path, body) in &look_alikes {
        upstream.set_answer(Some(("application/json", body.as_bytes())));
        let r = send(
            envoy.port(),
            &HttpRequest::get(*path)
                .header("host", "shop.example.com")
                .header("x-request-id", id),
        );
        assert_eq!(r.status, 200, "{id}: {}", r.text());
    }
    let mut ids: Vec<String> = vec![
        "ognl".into(),
        "imds".into(),
        "imds-gz".into(),
        "json-gz".into(),
    ];
    ids.extend(look_alikes.iter().map(|(id, _, _)| id.to_string()));
    let records = collector.wait_for_records(&ids, WAIT).unwrap();
    for id in &ids {
        assert!(records.contains_key(id), "no record for {id}: {records:#?}");
    }

    let ognl = &records["ognl"];
    assert_eq!(ognl["severity_id"], 5, "{ognl:#}");
    assert_eq!(ognl["severity"], "Critical");
    assert_eq!(ognl["risk_level"], "Critical");
    assert!(
        ognl["risk_details"]
            .as_str()
            .unwrap()
            .starts_with("succeeded"),
        "{ognl:#}"
    );
    assert_eq!(techniques(ognl), ["T1190", "T1059"]);
    assert_eq!(
        ognl["unmapped"]["meshsight"]["response"]["outcome"],
        "succeeded"
    );

    let imds = &records["imds"];
    assert_eq!(imds["severity_id"], 5, "{imds:#}");
    assert!(
        techniques(imds).contains(&"T1552.005".to_string()),
        "{imds:#}"
    );
    let finding = &imds["unmapped"]["meshsight"]["response"]["findings"][0];
    assert_eq!(finding["rule"], "ms-resp-aws-imds-credentials");
    assert_eq!(finding["secret"]["sha256"].as_str().map(str::len), Some(12));

    // Compressed, the credentials are found all the same, in the inflated body.
    let imds_gz = &records["imds-gz"];
    assert_eq!(imds_gz["severity_id"], 5, "{imds_gz:#}");
    let response = &imds_gz["unmapped"]["meshsight"]["response"];
    assert_eq!(response["outcome"], "succeeded", "{imds_gz:#}");
    assert_eq!(
        response["findings"][0]["rule"],
        "ms-resp-aws-imds-credentials"
    );
    assert_eq!(response["findings"][0]["where"], "response_body.inflated");
    assert_eq!(
        response["findings"][0]["secret"]["sha256"], finding["secret"]["sha256"],
        "the same secret, the same short hash"
    );
    assert!(response.get("decoding").is_none(), "{imds_gz:#}");
    assert_eq!(response["mirrored"], true);

    for id in look_alikes.iter().map(|(id, _, _)| *id).chain(["json-gz"]) {
        let r = &records[id];
        assert_eq!(
            r["unmapped"]["meshsight"]["response"]["outcome"], "none",
            "{id}: {r:#}"
        );
        assert!(r.get("risk_level_id").is_none(), "{id}: {r:#}");
        assert_eq!(
            r["unmapped"]["meshsight"]["response"]["findings"],
            Value::Array(vec![]),
            "{id}"
        );
    }

    // The sensor: each exploit's request copy and its response copy, linked by request id.
    let deadline = Instant::now() + WAIT;
    let copies = loop {
        let copies = sensor.requests();
        let responses = copies
            .iter()
            .filter(|c| c.path == "/.meshsight/response")
            .count();
        if responses >= 3 || Instant::now() > deadline {
            break copies;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    for id in ["ognl", "imds", "imds-gz"] {
        let linked: Vec<&str> = copies
            .iter()
            .filter(|c| c.header("x-meshsight-mirror-request-id") == Some(id))
            .map(|c| c.path.as_str())
            .collect();
        assert!(linked.contains(&"/.meshsight/response"), "{id}: {linked:?}");
        assert!(
            linked.len() >= 2,
            "{id}: the request's copy and the response's: {linked:?}"
        );
    }
    let response_copy = copies
        .iter()
        .find(|c| {
            c.path == "/.meshsight/response"
                && c.header("x-meshsight-mirror-request-id") == Some("imds")
        })
        .unwrap();
    let body: Value = serde_json::from_slice(&response_copy.body).unwrap();
    assert_eq!(body["response"]["outcome"], "succeeded");
    assert!(
        body["excerpt"].as_str().unwrap().contains("<masked "),
        "{body:#}"
    );

    // The compressed answer's copy: the head as sent, no excerpt (compressed bytes cannot be
    // masked).
    let gz_copy = copies
        .iter()
        .find(|c| {
            c.path == "/.meshsight/response"
                && c.header("x-meshsight-mirror-request-id") == Some("imds-gz")
        })
        .unwrap();
    let body: Value = serde_json::from_slice(&gz_copy.body).unwrap();
    assert_eq!(
        body["response"]["findings"][0]["where"],
        "response_body.inflated"
    );
    assert_eq!(body["excerpt"], "", "{body:#}");
    assert!(body["headers"]
        .as_array()
        .unwrap()
        .iter()
        .any(|h| h["name"] == "content-encoding" && h["value"] == "gzip"));

    // The secret is in no record and no copy.
    let mut everything: Vec<u8> = Vec::new();
    for b in collector.bodies() {
        everything.extend_from_slice(&b);
    }
    for c in &copies {
        everything.extend_from_slice(&c.body);
        for (n, v) in &c.headers {
            everything.extend_from_slice(n.as_bytes());
            everything.extend_from_slice(v.as_bytes());
        }
    }
    for s in [SECRET, TOKEN, KEY_ID] {
        assert_absent("records and copies", &everything, s);
    }
    assert_eq!(
        envoy.settled_stat("meshsight_mirror_responses_succeeded", 3, WAIT),
        Some(3)
    );
    assert_eq!(
        envoy.settled_stat("meshsight_mirror_responses_scanned", 7, WAIT),
        Some(7)
    );
    assert_eq!(
        envoy.settled_stat("meshsight_mirror_responses_rate_limited", 0, WAIT),
        Some(0)
    );
}

#[test]
fn envoys_access_logger_writes_the_finding_from_the_verdict() {
    let upstream = EchoUpstream::start();
    let sensor = Sensor::start();
    let template =
        meshsight_rig::workspace_root().join("envoy-config/access-log/ocsf_http_activity.tmpl");
    let envoy = Envoy::builder("envoy-config/e2e/one_pass_access_log.yaml")
        .upstream(&upstream)
        .sensor(&sensor)
        // Three copies' budget: the exploit's request and response copies, the metadata
        // request's copy; its response's copy is over the sensor's rate.
        .var(
            "MESHSIGHT_CONFIG",
            config(r#"{"sink": "access_log"}"#, (0.01, 3)),
        )
        .var("ACCESS_LOG_TEMPLATE", template.display().to_string())
        .start()
        .unwrap_or_else(|err| panic!("the plugin must start: {err}"));
    upstream.set_answer(Some(("text/html", ID_OUTPUT.as_bytes())));
    let r = send(
        envoy.port(),
        &HttpRequest::post(OGNL_PATH)
            .header("host", "wiki.example.com")
            .header("x-request-id", "ognl")
            .body("x=1"),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    upstream.set_answer(Some(("text/plain", imds_answer().as_bytes())));
    let r = send(
        envoy.port(),
        &HttpRequest::get("/latest/meta-data/iam/security-credentials/web-role")
            .header("host", "169.254.169.254")
            .header("x-request-id", "imds"),
    );
    assert_eq!(r.status, 200);
    let log = envoy.run_dir().join("ocsf.log");
    let deadline = Instant::now() + WAIT;
    let lines: Vec<String> = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let lines: Vec<String> = text.lines().map(str::to_string).collect();
        if lines.len() >= 2 || Instant::now() > deadline {
            break lines;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(lines.len(), 2, "{lines:#?}");
    let python = meshsight_rig::tools_python().unwrap_or_else(|e| panic!("{e}"));
    let out = Command::new(python)
        .arg(meshsight_rig::workspace_root().join("scripts/validate_ocsf.py"))
        .arg(&log)
        .output()
        .expect("run validate_ocsf.py");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let records: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let by = |id: &str| {
        records
            .iter()
            .find(|r| r["http_request"]["uid"] == id)
            .unwrap()
    };
    let ognl = by("ognl");
    assert_eq!(ognl["severity_id"], 5, "{ognl:#}");
    assert_eq!(ognl["risk_level"], "Critical");
    assert_eq!(techniques(ognl), ["T1190", "T1059"]);
    let imds = by("imds");
    assert_eq!(
        imds["unmapped"]["meshsight"]["response"]["outcome"], "succeeded",
        "{imds:#}"
    );
    assert!(techniques(imds).contains(&"T1552.005".to_string()));
    // Over the sensor's one budget: counted, and the record says so as a request's would.
    assert_eq!(imds["unmapped"]["meshsight"]["mirror"]["mirrored"], true);
    assert_eq!(imds["unmapped"]["meshsight"]["response"]["mirrored"], false);
    assert_eq!(
        imds["unmapped"]["meshsight"]["response"]["reason"],
        "rate_limited"
    );
    assert_eq!(ognl["unmapped"]["meshsight"]["response"]["mirrored"], true);
    assert_eq!(
        envoy.settled_stat("meshsight_mirror_responses_rate_limited", 1, WAIT),
        Some(1)
    );
    assert_eq!(
        envoy.settled_stat("meshsight_mirror_rate_limited", 0, WAIT),
        Some(0)
    );
    let deadline = Instant::now() + WAIT;
    let copies = loop {
        let copies = sensor.requests();
        if copies.len() >= 3 || Instant::now() > deadline {
            break copies;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let responses: Vec<Option<&str>> = copies
        .iter()
        .filter(|c| c.path == "/.meshsight/response")
        .map(|c| c.header("x-meshsight-mirror-request-id"))
        .collect();
    assert_eq!(responses, [Some("ognl")], "{copies:#?}");
    let text = std::fs::read(&log).unwrap();
    for s in [SECRET, TOKEN, KEY_ID] {
        assert_absent("access log", &text, s);
    }
}
