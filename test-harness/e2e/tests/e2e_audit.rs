#![cfg(feature = "e2e")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The audit filter in a real Envoy (`envoy-config/e2e/audit.yaml`: allowlist -> audit ->
//! router): every kind of request ends as exactly one record at the collector, each valid
//! against the OCSF 1.7.0 `http_activity` JSON Schema (checked by `scripts/validate_ocsf.py`
//! with the project's Python tools) and carrying the right decision; a collector outage loses
//! nothing uncounted and memory stays bounded; a slow collector does not fail clients; a bad
//! policy stops Envoy with the JSON path named.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use meshsight_rig::{send, Collector, CollectorBehavior, EchoUpstream, Envoy, HttpRequest};
use serde_json::Value;

const ALLOWLIST: &str = r#"{"mode":"enforce","rules":[
 {"name":"ok","methods":["GET","POST"],"paths":["/ok/**"]},
 {"name":"dead","methods":["GET"],"paths":["/dead/**"]},
 {"name":"nowhere","methods":["GET"],"paths":["/nowhere/**"]}]}"#;

fn one_line(json: &str) -> String {
    json.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn start_envoy(upstream: &EchoUpstream, collector: &Collector, audit: &str) -> Envoy {
    let dead_port = meshsight_rig::free_port().expect("a free port");
    Envoy::builder("envoy-config/e2e/audit.yaml")
        .var("ALLOWLIST_CONFIG", one_line(ALLOWLIST))
        .var("AUDIT_CONFIG", one_line(audit))
        .var("DEAD_PORT", dead_port.to_string())
        .upstream(upstream)
        .collector(collector)
        .start()
        .unwrap_or_else(|e| panic!("Envoy did not start: {e}"))
}

/// The project's Python tools (`make pytools`), or `$MESHSIGHT_PYTHON`.
fn python() -> PathBuf {
    meshsight_rig::tools_python().unwrap_or_else(|e| panic!("{e}"))
}

/// Writes the records to `dir` and validates them all against the OCSF 1.7.0 schema.
fn validate_ocsf(dir: &Path, records: &[String]) {
    assert!(!records.is_empty());
    let file = dir.join("audit-records.ndjson");
    std::fs::write(&file, records.join("\n") + "\n").unwrap();
    let out = Command::new(python())
        .arg(meshsight_rig::workspace_root().join("scripts/validate_ocsf.py"))
        .arg(&file)
        .output()
        .expect("run validate_ocsf.py");
    assert!(
        out.status.success(),
        "records fail the OCSF 1.7.0 http_activity schema:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn collected_lines(collector: &Collector) -> Vec<String> {
    collector
        .bodies()
        .iter()
        .flat_map(|b| {
            String::from_utf8_lossy(b)
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect()
}

fn wait_for_lines(collector: &Collector, n: usize, timeout: Duration) -> Vec<String> {
    let deadline = Instant::now() + timeout;
    loop {
        let lines = collected_lines(collector);
        if lines.len() >= n || Instant::now() >= deadline {
            return lines;
        }
        thread::sleep(Duration::from_millis(100));
    }
}

/// A meshsight counter or gauge; a missing one fails the test (a renamed metric must not read
/// as 0 and pass an `== 0` check).
fn stat(envoy: &Envoy, name: &str) -> u64 {
    envoy.stat(name).unwrap_or_else(|| {
        let ours: Vec<String> = envoy
            .stats()
            .into_keys()
            .filter(|k| k.contains("meshsight"))
            .collect();
        panic!("no stat {name}; meshsight stats: {ours:#?}")
    })
}

/// How long a counter may take to reach Envoy's stats: the module flushes its counts on its
/// root's tick (at most every 500 ms), so a read right after a request may be early.
const FLUSH_WAIT: Duration = Duration::from_secs(5);

/// [`stat`] once it reads `expected` (polled until then, up to [`FLUSH_WAIT`]); what it reads
/// at the deadline otherwise, for the caller's `assert_eq!` to show.
fn settled(envoy: &Envoy, name: &str, expected: u64) -> u64 {
    let _ = envoy.settled_stat(name, expected, FLUSH_WAIT);
    stat(envoy, name)
}

fn dropped(envoy: &Envoy) -> u64 {
    ["buffer_full", "retries_exhausted", "too_large", "shutdown"]
        .iter()
        .map(|r| stat(envoy, &format!("meshsight_audit_dropped_{r}")))
        .sum()
}

fn get(path: &str, id: &str) -> HttpRequest {
    HttpRequest::get(path)
        .header("host", "shop.example.com")
        .header("x-request-id", id)
        .header("authorization", "Bearer client-secret-e2e")
        .header("cookie", "session=cookie-secret-e2e")
        .header("user-agent", "e2e-audit/1")
}

/// Sends the headers and part of a body, then closes: Envoy sees a client abort.
fn aborted_post(port: u16, path: &str, id: &str) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nhost: shop.example.com\r\nx-request-id: {id}\r\ncontent-length: 1000\r\n\r\npartial"
    )
    .unwrap();
    s.flush().unwrap();
    // Let Envoy decode the headers and open the stream before the connection goes away.
    thread::sleep(Duration::from_millis(100));
    drop(s);
}

#[test]
fn every_kind_of_request_gives_one_valid_record_with_the_right_decision() {
    const N: usize = 5;
    let upstream = EchoUpstream::start();
    let collector = Collector::start();
    let envoy = start_envoy(
        &upstream,
        &collector,
        r#"{"record_headers":["content-type","user-agent"],
            "sink":{"http":{"cluster":"collector","path":"/v1/audit",
              "headers":{"authorization":"Bearer collector-token-e2e"},
              "flush_interval_ms":200,"batch_max_records":20}}}"#,
    );
    let port = envoy.port();
    for i in 0..N {
        assert_eq!(
            send(
                port,
                &get(
                    &format!("/ok/{i}?token=query-secret-e2e&q=1"),
                    &format!("ok-{i}")
                )
            )
            .status,
            200
        );
        assert_eq!(
            send(
                port,
                &get(&format!("/forbidden/{i}"), &format!("forbidden-{i}"))
            )
            .status,
            403
        );
        assert_eq!(
            send(
                port,
                &get(&format!("/nowhere/{i}"), &format!("nowhere-{i}"))
            )
            .status,
            404
        );
        assert_eq!(
            send(port, &get(&format!("/dead/{i}"), &format!("dead-{i}"))).status,
            503
        );
        aborted_post(port, &format!("/ok/abort/{i}"), &format!("abort-{i}"));
    }
    let total = 5 * N;
    let lines = wait_for_lines(&collector, total, Duration::from_secs(30));
    assert_eq!(
        lines.len(),
        total,
        "one record per request at the collector; Envoy log tail:\n{}",
        envoy.log_tail(40)
    );
    validate_ocsf(&envoy.run_dir(), &lines);

    let mut by_id: BTreeMap<String, Value> = BTreeMap::new();
    for line in &lines {
        for secret in ["client-secret-e2e", "cookie-secret-e2e", "query-secret-e2e"] {
            assert!(!line.contains(secret), "{secret} leaked: {line}");
        }
        let r: Value = serde_json::from_str(line).unwrap();
        let id = r["metadata"]["uid"]
            .as_str()
            .expect("metadata.uid")
            .to_string();
        assert!(
            by_id.insert(id.clone(), r).is_none(),
            "two records for {id}"
        );
    }
    for i in 0..N {
        let ok = &by_id[&format!("ok-{i}")];
        assert_eq!(ok["http_response"]["code"], 200);
        assert_eq!(
            (ok["action_id"].as_u64(), ok["disposition_id"].as_u64()),
            (Some(1), Some(1))
        );
        assert_eq!(ok["firewall_rule"]["name"], "ok");
        assert_eq!(ok["http_request"]["url"]["path"], format!("/ok/{i}"));
        assert_eq!(
            ok["http_request"]["url"]["query_string"],
            "token=REDACTED&q=1"
        );
        assert_eq!(ok["http_request"]["user_agent"], "e2e-audit/1");
        assert_eq!(ok["src_endpoint"]["ip"], "127.0.0.1");
        assert!(ok["http_request"]["length"].as_u64().unwrap() > 0);
        assert!(ok["http_response"]["length"].as_u64().unwrap() > 0);

        let denied = &by_id[&format!("forbidden-{i}")];
        assert_eq!(denied["http_response"]["code"], 403);
        assert_eq!(
            (
                denied["action_id"].as_u64(),
                denied["disposition_id"].as_u64()
            ),
            (Some(2), Some(2))
        );
        assert_eq!(
            denied["unmapped"]["meshsight"]["allowlist"]["outcome"],
            "denied"
        );

        let nowhere = &by_id[&format!("nowhere-{i}")];
        assert_eq!(nowhere["http_response"]["code"], 404);
        assert_eq!(nowhere["action_id"], 1);
        assert_eq!(nowhere["status_id"], 2);

        let dead = &by_id[&format!("dead-{i}")];
        assert_eq!(dead["http_response"]["code"], 503);
        assert_eq!(dead["action_id"], 1);
        assert_eq!(
            dead["unmapped"]["meshsight"]["upstream_failure"], true,
            "{dead}"
        );

        let abort = &by_id[&format!("abort-{i}")];
        assert!(abort.get("http_response").is_none(), "{abort}");
        assert_eq!(abort["activity_id"], 6);
        assert_eq!(
            abort["unmapped"]["meshsight"]["client_aborted"], true,
            "{abort}"
        );
    }
    // The collector saw the configured credentials; counters agree with what arrived.
    let req = &collector.requests()[0];
    assert_eq!(
        req.header("authorization"),
        Some("Bearer collector-token-e2e")
    );
    assert_eq!(req.header("content-type"), Some("application/x-ndjson"));
    assert_eq!(
        settled(&envoy, "meshsight_audit_records", total as u64),
        total as u64
    );
    assert_eq!(
        settled(&envoy, "meshsight_audit_delivered", total as u64),
        total as u64
    );
    assert_eq!(settled(&envoy, "meshsight_audit_buffered", 0), 0);
}

/// Waits until the filter has accounted for `sent` records: `records == sent` and
/// `delivered + dropped == sent`. Returns (records, delivered, dropped, buffered) then (or at
/// the timeout).
fn settle(envoy: &Envoy, sent: u64, timeout: Duration) -> (u64, u64, u64, u64) {
    let deadline = Instant::now() + timeout;
    loop {
        let now = (
            stat(envoy, "meshsight_audit_records"),
            stat(envoy, "meshsight_audit_delivered"),
            dropped(envoy),
            stat(envoy, "meshsight_audit_buffered"),
        );
        if (now.0 == sent && now.1 + now.2 == sent) || Instant::now() >= deadline {
            return now;
        }
        thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_collector_outage_loses_nothing_uncounted_and_memory_stays_bounded() {
    const DURING: u64 = 150;
    const AFTER: u64 = 20;
    let upstream = EchoUpstream::start();
    let mut collector = Collector::start();
    let collector_port = collector.port();
    let envoy = start_envoy(
        &upstream,
        &collector,
        r#"{"sink":{"http":{"cluster":"collector","timeout_ms":1000,"flush_interval_ms":100,
              "batch_max_records":20,"batch_max_bytes":16384,"max_buffer_bytes":32768,
              "max_retries":3,"backoff_initial_ms":200,"backoff_max_ms":1000}}}"#,
    );
    let port = envoy.port();
    let rss_before = envoy.rss_bytes().expect("Envoy RSS");

    // Down: records pile up against the 32 KiB bound, batches fail and are retried. The
    // buffer never holds more than max_buffer_bytes, at its peak or ever.
    const MAX_BUFFER_BYTES: u64 = 32768;
    collector.stop();
    let mut peak_buffered_bytes = 0;
    for i in 0..DURING {
        assert_eq!(
            send(port, &get(&format!("/ok/down-{i}"), &format!("down-{i}"))).status,
            200
        );
        let buffered_bytes = stat(&envoy, "meshsight_audit_buffered_bytes");
        assert!(
            buffered_bytes <= MAX_BUFFER_BYTES,
            "after record {i} the audit buffer holds {buffered_bytes} bytes > {MAX_BUFFER_BYTES}"
        );
        peak_buffered_bytes = peak_buffered_bytes.max(buffered_bytes);
    }
    eprintln!("outage: audit buffer peak {peak_buffered_bytes} of {MAX_BUFFER_BYTES} bytes");
    assert!(
        peak_buffered_bytes > MAX_BUFFER_BYTES / 2,
        "the outage should fill the buffer (peak {peak_buffered_bytes} bytes)"
    );
    // Back: whatever is still buffered gets through; every record is accounted for.
    let collector = Collector::start_on(collector_port).expect("collector back on its port");
    let (records, delivered, dropped_down, buffered) =
        settle(&envoy, DURING, Duration::from_secs(60));
    eprintln!(
        "outage: sent {DURING}, delivered {delivered}, dropped {dropped_down} (buffer_full {}, \
         retries_exhausted {}), retried {}, batches {}",
        stat(&envoy, "meshsight_audit_dropped_buffer_full"),
        stat(&envoy, "meshsight_audit_dropped_retries_exhausted"),
        stat(&envoy, "meshsight_audit_retried"),
        stat(&envoy, "meshsight_audit_batches_sent"),
    );
    assert_eq!(
        (records, delivered + dropped_down, buffered),
        (DURING, DURING, 0),
        "records = delivered + dropped after the outage"
    );
    assert!(
        dropped_down > 0,
        "the outage overflowed the 32 KiB buffer: drops must be counted"
    );

    // Up: with an empty queue and a healthy collector, every new record is delivered.
    for i in 0..AFTER {
        assert_eq!(
            send(port, &get(&format!("/ok/up-{i}"), &format!("up-{i}"))).status,
            200
        );
    }
    let (records, delivered, dropped_total, buffered) =
        settle(&envoy, DURING + AFTER, Duration::from_secs(30));
    assert_eq!(
        (records, delivered + dropped_total, buffered),
        (DURING + AFTER, DURING + AFTER, 0)
    );
    assert_eq!(
        dropped_total, dropped_down,
        "nothing dropped once the collector is back"
    );
    let lines = collected_lines(&collector);
    assert_eq!(
        lines.len() as u64,
        delivered,
        "what arrived is what was counted delivered"
    );
    let arrived: Vec<String> = lines
        .iter()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["metadata"]["uid"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    for i in 0..AFTER {
        assert!(
            arrived.contains(&format!("up-{i}")),
            "up-{i} did not arrive"
        );
    }
    validate_ocsf(&envoy.run_dir(), &lines);
    let rss_after = envoy.rss_bytes().expect("Envoy RSS");
    eprintln!("outage: Envoy RSS {rss_before} -> {rss_after} bytes");
    assert!(
        rss_after < rss_before + 64 * 1024 * 1024,
        "Envoy RSS grew from {rss_before} to {rss_after} bytes"
    );
}

#[test]
fn a_slow_collector_does_not_fail_clients_and_still_receives_everything() {
    const N: usize = 40;
    let upstream = EchoUpstream::start();
    let collector = Collector::start();
    collector.set_behavior(CollectorBehavior::Slow(Duration::from_secs(2)));
    let envoy = start_envoy(
        &upstream,
        &collector,
        r#"{"sink":{"http":{"cluster":"collector","timeout_ms":10000,"flush_interval_ms":100,
              "batch_max_records":10}}}"#,
    );
    for i in 0..N {
        assert_eq!(
            send(
                envoy.port(),
                &get(&format!("/ok/slow-{i}"), &format!("slow-{i}"))
            )
            .status,
            200
        );
    }
    let lines = wait_for_lines(&collector, N, Duration::from_secs(60));
    assert_eq!(lines.len(), N, "Envoy log tail:\n{}", envoy.log_tail(40));
    assert_eq!(
        settled(&envoy, "meshsight_audit_delivered", N as u64),
        N as u64
    );
    assert_eq!(settled(&envoy, "meshsight_audit_retried", 0), 0);
}

#[test]
fn a_hanging_collector_times_out_is_retried_then_counted_and_envoy_keeps_serving() {
    const N: u64 = 10;
    let upstream = EchoUpstream::start();
    let collector = Collector::start();
    collector.set_behavior(CollectorBehavior::Hang);
    let envoy = start_envoy(
        &upstream,
        &collector,
        r#"{"sink":{"http":{"cluster":"collector","timeout_ms":300,"flush_interval_ms":100,
              "batch_max_records":5,"max_retries":1,"backoff_initial_ms":50,"backoff_max_ms":100}}}"#,
    );
    for i in 0..N {
        assert_eq!(
            send(
                envoy.port(),
                &get(&format!("/ok/hang-{i}"), &format!("hang-{i}"))
            )
            .status,
            200
        );
    }
    let (records, delivered, dropped, buffered) = settle(&envoy, N, Duration::from_secs(30));
    assert_eq!(
        (records, delivered, dropped, buffered),
        (N, 0, N, 0),
        "every batch timed out twice and was dropped; Envoy log tail:\n{}",
        envoy.log_tail(40)
    );
    assert_eq!(
        settled(&envoy, "meshsight_audit_dropped_retries_exhausted", N),
        N
    );
    assert!(
        envoy
            .wait_for_stat("meshsight_audit_retried", N, Duration::from_secs(5))
            .is_some(),
        "at least {N} retried: {:?}",
        envoy.stat("meshsight_audit_retried")
    );
    // The VM survived the failed calls: the next request is still recorded and delivered.
    collector.set_behavior(CollectorBehavior::Ok);
    assert_eq!(
        send(envoy.port(), &get("/ok/after-hang", "after-hang")).status,
        200
    );
    let (records, delivered, _, _) = settle(&envoy, N + 1, Duration::from_secs(30));
    assert_eq!(
        (records, delivered),
        (N + 1, 1),
        "Envoy log tail:\n{}",
        envoy.log_tail(40)
    );
}

#[test]
fn log_sink_writes_one_valid_json_line_per_request_to_envoys_log() {
    let upstream = EchoUpstream::start();
    let collector = Collector::start();
    let envoy = start_envoy(&upstream, &collector, "{}");
    for i in 0..3 {
        assert_eq!(
            send(
                envoy.port(),
                &get(&format!("/ok/log-{i}"), &format!("log-{i}"))
            )
            .status,
            200
        );
    }
    assert_eq!(
        send(envoy.port(), &get("/forbidden/log", "log-denied")).status,
        403
    );
    assert!(
        envoy.wait_for_log("log-denied", Duration::from_secs(10)),
        "{}",
        envoy.log_tail(40)
    );
    let lines: Vec<String> = envoy
        .log()
        .lines()
        .filter_map(|l| l.find("{\"").map(|at| l[at..].to_string()))
        .collect();
    assert_eq!(lines.len(), 4, "{}", envoy.log_tail(40));
    validate_ocsf(&envoy.run_dir(), &lines);
    assert!(
        collector.requests().is_empty(),
        "the log sink sends nothing"
    );
    assert_eq!(settled(&envoy, "meshsight_audit_delivered", 4), 4);
}

#[test]
fn a_bad_policy_stops_envoy_naming_the_json_path() {
    let upstream = EchoUpstream::start();
    let collector = Collector::start();
    let dead_port = meshsight_rig::free_port().unwrap();
    let err = match Envoy::builder("envoy-config/e2e/audit.yaml")
        .var("ALLOWLIST_CONFIG", one_line(ALLOWLIST))
        .var(
            "AUDIT_CONFIG",
            r#"{"record_headers":["content-type","authorization"]}"#,
        )
        .var("DEAD_PORT", dead_port.to_string())
        .upstream(&upstream)
        .collector(&collector)
        .start()
    {
        Ok(_) => panic!("Envoy accepted a policy recording the authorization header"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("record_headers[1]"), "{err}");
}
