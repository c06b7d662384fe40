//! Response rules in the module, natively: a response nobody asked to scan costs exactly the
//! host calls it cost before (none more); a scanned response's finding reaches the one audit
//! record (both sinks) and a copy linked by request id, and the secret reaches neither.
// Helpers outside `#[test]` functions are test code too.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

mod stats;
use proxy_wasm_test_host::{Action, Host};
use stats::counter;

/// The bench's one-pass policy shape, with `responses` given (or left out).
fn policy(audit: &str, responses: Option<&str>) -> String {
    let responses = responses.map_or(String::new(), |r| format!(r#", "responses": {r}"#));
    format!(
        r#"{{
  "allowlist": {{"mode": "enforce", "rules": [
    {{"name": "catalog-read", "methods": ["GET"], "paths": ["/api/v1/products/{{id}}"]}},
    {{"name": "wiki", "methods": ["GET", "POST"], "paths": ["/pages/**"]}},
    {{"name": "imds", "methods": ["GET"], "paths": ["/latest/**"]}}
  ]}},
  "mirror": {{
    "default_target": "ids",
    "targets": {{"ids": {{"cluster": "sensor", "delivery": "dispatch"}}}},
    "signatures": {{}}{responses}
  }},
  "audit": {audit}
}}"#
    )
}

const ACCESS_LOG: &str = r#"{"sink": "access_log"}"#;
const LOG_SINK: &str = r#"{"sink": "log"}"#;

const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEYq1";
const TOKEN: &str = "IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQDsecret";

fn imds_body() -> String {
    format!(
        r#"{{"Code":"Success","Type":"AWS-HMAC","AccessKeyId":"ASIAQWERTYUIOPASDFGH","SecretAccessKey":"{SECRET}","Token":"{TOKEN}","Expiration":"2026-12-07T16:00:00Z"}}"#
    )
}

fn start(config: String) -> Host {
    Host::builder(meshsight::register)
        .plugin_config(config)
        .start()
        .unwrap_or_else(|e| panic!("configure failed: {e}"))
}

/// One request through its whole life, the response's body in two chunks; the host calls.
fn exchange(host: &mut Host, authority: &str, path: &str, body: &str) -> (u32, Vec<&'static str>) {
    let id = host.new_http_stream();
    host.set_stream_property(id, &["connection", "id"], 7u64.to_le_bytes());
    let headers = [
        (":method", "GET"),
        (":path", path),
        (":authority", authority),
        (":scheme", "http"),
        ("x-request-id", "req-42"),
    ];
    assert_eq!(host.request_headers(id, &headers, true), Action::Continue);
    host.response_headers(
        id,
        &[(":status", "200"), ("content-type", "application/json")],
        body.is_empty(),
    );
    if !body.is_empty() {
        let (a, b) = body.split_at(body.len() / 2);
        assert_eq!(
            host.response_body(id, a.as_bytes(), false),
            Action::Continue
        );
        assert_eq!(host.response_body(id, b.as_bytes(), true), Action::Continue);
    }
    host.log(id);
    host.done(id);
    (id, host.host_calls(id))
}

/// The host calls of a kept-alive connection's second request under `config`, and the
/// number of responses it scanned.
fn second_request_calls(config: String) -> (Vec<&'static str>, Option<u64>) {
    let mut host = start(config);
    exchange(&mut host, "shop", "/api/v1/products/1", "{\"id\":1}");
    let (_, calls) = exchange(&mut host, "shop", "/api/v1/products/2", "{\"token\":\"x\"}");
    let scanned = counter(&mut host, "meshsight_mirror_responses_scanned");
    (calls, scanned)
}

#[test]
fn a_response_nobody_asked_to_scan_costs_no_host_call() {
    for sink in [ACCESS_LOG, LOG_SINK] {
        let (before, _) = second_request_calls(policy(sink, None));
        let (after, scanned) = second_request_calls(policy(sink, Some("{}")));
        eprintln!(
            "unscanned response ({sink}): {} host calls {after:?}",
            after.len()
        );
        assert_eq!(
            before, after,
            "a response nobody asked for must cost nothing more"
        );
        assert_eq!(scanned, Some(0));
    }
}

fn assert_absent(out: &[u8], secret: &str) {
    for w in secret.as_bytes().windows(12) {
        assert!(
            !out.windows(w.len()).any(|o| o == w),
            "{:?} leaked in {}",
            String::from_utf8_lossy(w),
            String::from_utf8_lossy(out)
        );
    }
}

#[test]
fn metadata_credentials_reach_the_record_and_the_copy_but_the_secret_does_not() {
    let mut host = start(policy(LOG_SINK, Some("{}")));
    let (_, calls) = exchange(
        &mut host,
        "169.254.169.254",
        "/latest/meta-data/iam/security-credentials/role",
        &imds_body(),
    );
    eprintln!(
        "scanned response (metadata host): {} host calls {calls:?}",
        calls.len()
    );
    let records = host.logs_containing("\"class_uid\":4002");
    assert_eq!(records.len(), 1, "{records:?}");
    let record: serde_json::Value = serde_json::from_str(&records[0]).unwrap();
    assert_eq!(
        record["unmapped"]["meshsight"]["response"]["outcome"],
        "succeeded"
    );
    assert_eq!(
        record["risk_details"].as_str().unwrap().split(':').next(),
        Some("succeeded")
    );
    // The request itself matched the built-in metadata signature: attempt and success meet.
    assert_eq!(
        record["unmapped"]["meshsight"]["mirror"]["signatures"][0],
        "cloud_metadata"
    );
    assert_eq!(record["severity_id"], 5);
    assert_eq!(record["attacks"][0]["technique"]["uid"], "T1552.005");
    // The copy: queued by the stream, sent on the root's tick.
    host.tick();
    let calls = host.http_calls();
    let copy = calls
        .iter()
        .find(|c| {
            c.headers
                .iter()
                .any(|(n, v)| n == ":path" && v == "/.meshsight/response")
        })
        .expect("a response copy");
    assert_eq!(copy.upstream, "sensor");
    assert!(copy
        .headers
        .iter()
        .any(|(n, v)| n == "x-meshsight-mirror-request-id" && v == "req-42"));
    let mut everything: Vec<u8> = Vec::new();
    for entry in host.logs() {
        everything.extend_from_slice(entry.message.as_bytes());
    }
    for c in host.http_calls() {
        everything.extend_from_slice(&c.body);
        for (n, v) in &c.headers {
            everything.extend_from_slice(n.as_bytes());
            everything.extend_from_slice(v.as_bytes());
        }
    }
    for s in [SECRET, TOKEN, "ASIAQWERTYUIOPASDFGH"] {
        assert_absent(&everything, s);
    }
    assert_eq!(
        counter(&mut host, "meshsight_mirror_responses_scanned"),
        Some(1)
    );
    assert_eq!(
        counter(&mut host, "meshsight_mirror_responses_succeeded"),
        Some(1)
    );
}

#[test]
fn an_exploit_that_worked_is_critical_in_the_access_log_verdict() {
    let mut host = start(policy(ACCESS_LOG, Some(r#"{"hosts": []}"#)));
    // A signature hit (the OGNL marker in a Confluence parameter), answered with `id` output.
    let path = "/pages/createpage-entervariables.action?queryString=%5cu0027%2b%23%7b%40java.lang.Runtime%40getRuntime().exec(%27id%27)%7d%2b%5cu0027";
    let (id, calls) = exchange(
        &mut host,
        "wiki",
        path,
        "<html><div>uid=0(root) gid=0(root) groups=0(root)\n</div></html>",
    );
    eprintln!(
        "scanned response (signature hit): {} host calls {calls:?}",
        calls.len()
    );
    let fragment = host
        .stream_property(id, &["meshsight_ocsf"])
        .expect("the verdict fragment");
    let text = String::from_utf8(fragment).unwrap();
    let v: serde_json::Value = serde_json::from_str(&format!("{{{text}}}}}")).unwrap();
    assert_eq!(v["severity_id"], 5);
    assert_eq!(v["severity"], "Critical");
    assert_eq!(v["risk_level"], "Critical");
    assert_eq!(
        v["unmapped"]["meshsight"]["response"]["outcome"],
        "succeeded"
    );
    let techniques: Vec<&str> = v["attacks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["technique"]["uid"].as_str().unwrap())
        .collect();
    assert_eq!(techniques, ["T1190", "T1059"]);
    assert_eq!(
        counter(&mut host, "meshsight_mirror_responses_succeeded"),
        Some(1)
    );
    // The same request answered with a page that shows nothing: attempted.
    let (id, _) = exchange(&mut host, "wiki", path, "<html>Page not found</html>");
    let text = String::from_utf8(host.stream_property(id, &["meshsight_ocsf"]).unwrap()).unwrap();
    let v: serde_json::Value = serde_json::from_str(&format!("{{{text}}}}}")).unwrap();
    assert_eq!(v["risk_details"], "attempted: no response finding");
    assert_eq!(v["severity_id"], 4);
    assert_eq!(
        counter(&mut host, "meshsight_mirror_responses_attempted"),
        Some(1)
    );
    assert_eq!(
        counter(&mut host, "meshsight_mirror_responses_scanned"),
        Some(2)
    );
}

/// A mirror whose one sensor takes one copy a second, `burst` at once.
fn rate_capped_policy(burst: u32) -> String {
    format!(
        r#"{{
  "mirror": {{
    "targets": {{"ids": {{"cluster": "sensor", "delivery": "dispatch", "max_rps": 1, "burst": {burst}}}}},
    "responses": {{}}
  }},
  "audit": {LOG_SINK}
}}"#
    )
}

/// The paths of the copies sent so far.
fn copy_paths(host: &Host) -> Vec<String> {
    host.http_calls()
        .iter()
        .filter_map(|c| {
            c.headers
                .iter()
                .find(|(n, _)| n == ":path")
                .map(|(_, v)| v.clone())
        })
        .collect()
}

#[test]
fn a_response_copy_over_the_sensors_rate_cap_is_counted_and_recorded() {
    let mut host = start(rate_capped_policy(1));
    // The metadata request matches a signature: its copy takes the one token, so its
    // response's copy finds the bucket empty.
    exchange(
        &mut host,
        "169.254.169.254",
        "/latest/meta-data/iam/security-credentials/role",
        &imds_body(),
    );
    host.tick();
    let paths = copy_paths(&host);
    assert_eq!(
        paths,
        ["/latest/meta-data/iam/security-credentials/role"],
        "the request's copy only"
    );
    assert_eq!(
        counter(&mut host, "meshsight_mirror_responses_rate_limited"),
        Some(1)
    );
    assert_eq!(
        counter(&mut host, "meshsight_mirror_responses_succeeded"),
        Some(1)
    );
    // Request copies have a counter of their own: this was not one.
    assert_eq!(counter(&mut host, "meshsight_mirror_rate_limited"), Some(0));
    let records = host.logs_containing("\"class_uid\":4002");
    let record: serde_json::Value = serde_json::from_str(&records[0]).unwrap();
    let response = &record["unmapped"]["meshsight"]["response"];
    assert_eq!(response["outcome"], "succeeded");
    assert_eq!(response["mirrored"], false);
    assert_eq!(response["reason"], "rate_limited");
    assert_eq!(record["unmapped"]["meshsight"]["mirror"]["mirrored"], true);
    drop(host);

    // With room for both, the response's copy goes and the record says so.
    let mut host = start(rate_capped_policy(2));
    exchange(
        &mut host,
        "169.254.169.254",
        "/latest/meta-data/iam/security-credentials/role",
        &imds_body(),
    );
    host.tick();
    assert!(copy_paths(&host).contains(&"/.meshsight/response".to_string()));
    assert_eq!(
        counter(&mut host, "meshsight_mirror_responses_rate_limited"),
        Some(0)
    );
    let records = host.logs_containing("\"class_uid\":4002");
    let record: serde_json::Value = serde_json::from_str(&records[0]).unwrap();
    assert_eq!(
        record["unmapped"]["meshsight"]["response"]["mirrored"],
        true
    );
}

/// A gzip member of `data`, with its trailer.
fn gzip(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];
    out.extend(miniz_oxide::deflate::compress_to_vec(data, 6));
    let crc = crc32(data);
    out.extend(crc.to_le_bytes());
    out.extend((data.len() as u32).to_le_bytes());
    out
}

/// CRC-32 (IEEE), for a gzip trailer a strict client accepts.
fn crc32(data: &[u8]) -> u32 {
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
    !crc
}

/// One request whose response is `body` (in three chunks) with `content-encoding: gzip`.
fn gzip_exchange(host: &mut Host, authority: &str, path: &str, body: &[u8]) {
    let id = host.new_http_stream();
    let headers = [
        (":method", "GET"),
        (":path", path),
        (":authority", authority),
        (":scheme", "http"),
        ("x-request-id", "req-gz"),
    ];
    assert_eq!(host.request_headers(id, &headers, true), Action::Continue);
    host.response_headers(
        id,
        &[
            (":status", "200"),
            ("content-type", "application/json"),
            ("content-encoding", "gzip"),
        ],
        false,
    );
    let chunks: Vec<&[u8]> = body.chunks(body.len().div_ceil(3)).collect();
    for (i, chunk) in chunks.iter().enumerate() {
        let last = i + 1 == chunks.len();
        assert_eq!(host.response_body(id, chunk, last), Action::Continue);
    }
    // The client gets the body as sent.
    host.log(id);
    host.done(id);
}

#[test]
fn gzip_metadata_credentials_are_found_inflated_and_the_secret_does_not_leave() {
    let mut host = start(policy(LOG_SINK, Some("{}")));
    gzip_exchange(
        &mut host,
        "169.254.169.254",
        "/latest/meta-data/iam/security-credentials/role",
        &gzip(imds_body().as_bytes()),
    );
    let records = host.logs_containing("\"class_uid\":4002");
    assert_eq!(records.len(), 1, "{records:?}");
    let record: serde_json::Value = serde_json::from_str(&records[0]).unwrap();
    let response = &record["unmapped"]["meshsight"]["response"];
    assert_eq!(response["outcome"], "succeeded", "{record:#}");
    assert_eq!(
        response["findings"][0]["rule"],
        "ms-resp-aws-imds-credentials"
    );
    assert_eq!(response["findings"][0]["where"], "response_body.inflated");
    assert!(response.get("decoding").is_none());
    assert_eq!(record["attacks"][0]["technique"]["uid"], "T1552.005");
    host.tick();
    let calls = host.http_calls();
    let copy = calls
        .iter()
        .find(|c| {
            c.headers
                .iter()
                .any(|(n, v)| n == ":path" && v == "/.meshsight/response")
        })
        .expect("a response copy");
    let body: serde_json::Value = serde_json::from_slice(&copy.body).unwrap();
    assert_eq!(
        body["response"]["findings"][0]["where"],
        "response_body.inflated"
    );
    // The copy names the body's encoding (the head as sent) and leaves the unmaskable
    // compressed excerpt out.
    assert!(body["headers"]
        .as_array()
        .unwrap()
        .iter()
        .any(|h| h["name"] == "content-encoding" && h["value"] == "gzip"));
    assert_eq!(body["excerpt"], "");
    let mut everything: Vec<u8> = Vec::new();
    for entry in host.logs() {
        everything.extend_from_slice(entry.message.as_bytes());
    }
    for c in host.http_calls() {
        everything.extend_from_slice(&c.body);
    }
    for s in [SECRET, TOKEN, "ASIAQWERTYUIOPASDFGH"] {
        assert_absent(&everything, s);
    }

    // A gzip stream cut short: named in the record, the response untouched.
    let whole = gzip(imds_body().as_bytes());
    gzip_exchange(
        &mut host,
        "169.254.169.254",
        "/latest/meta-data/iam/security-credentials/other",
        &whole[..whole.len() / 3],
    );
    let records = host.logs_containing("\"class_uid\":4002");
    let record: serde_json::Value = serde_json::from_str(records.last().unwrap()).unwrap();
    assert_eq!(
        record["unmapped"]["meshsight"]["response"]["decoding"], "body_encoding_broken",
        "{record:#}"
    );
    assert_eq!(
        counter(&mut host, "meshsight_mirror_responses_scanned"),
        Some(2)
    );
}
