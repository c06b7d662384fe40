//! The audit filter in the native proxy-wasm host: mapping from headers and properties,
//! redaction, sampling, batching, retries, the buffer bound and the counting invariant as seen
//! through the host's metrics, and refusal of bad policies.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod stats;
use stats::{counter, gauge};
use std::time::Duration;

use proxy_wasm_test_host::{Host, HttpCallResponse, Status};
use serde_json::Value;

const T0: u64 = 1_700_000_000_000_000_000;

fn start(config: &str) -> Host {
    Host::builder(meshsight::register)
        .property(&["plugin_root_id"], "meshsight_audit")
        .plugin_config(config)
        .time_nanos(T0)
        .start()
        .expect("configure")
}

fn le(n: i64) -> [u8; 8] {
    n.to_le_bytes()
}

/// One request through the filter, ending with `on_log`. `decision` is the allowlist's
/// decision JSON (filter state), `status` the response (None: client abort, no response).
fn request(
    host: &mut Host,
    path: &str,
    id: &str,
    decision: Option<&str>,
    status: Option<u16>,
) -> u32 {
    request_taking(host, path, id, decision, status, Duration::ZERO)
}

/// [`request`], the host clock moving `took` between the head and `on_log`.
fn request_taking(
    host: &mut Host,
    path: &str,
    id: &str,
    decision: Option<&str>,
    status: Option<u16>,
    took: Duration,
) -> u32 {
    let s = host.new_http_stream();
    host.set_stream_property(s, &["source", "address"], "10.1.2.3:51234");
    host.set_stream_property(s, &["destination", "address"], "10.1.9.9:8080");
    host.set_stream_property(
        s,
        &["connection", "uri_san_peer_certificate"],
        "spiffe://cluster.local/ns/shop/sa/web",
    );
    host.set_stream_property(s, &["request", "time"], le(T0 as i64));
    host.set_stream_property(s, &["request", "duration"], le(7_000_000));
    host.set_stream_property(s, &["request", "protocol"], "HTTP/1.1");
    host.set_stream_property(s, &["request", "total_size"], le(180));
    host.set_stream_property(s, &["downstream_peer", "namespace"], "shop");
    host.set_stream_property(s, &["downstream_peer", "workload"], "web-v1");
    host.set_stream_property(s, &["downstream_peer", "service"], "web");
    if let Some(d) = decision {
        host.set_stream_property(s, &["meshsight_allowlist"], d);
    }
    host.request_headers(
        s,
        &[
            (":method", "GET"),
            (":scheme", "http"),
            (":authority", "shop.example.com"),
            (":path", path),
            ("user-agent", "curl/8"),
            ("x-request-id", id),
            ("authorization", "Bearer top-secret"),
            ("cookie", "session=cookie-secret"),
            ("content-type", "application/json"),
            ("x-forwarded-for", "203.0.113.9"),
        ],
        true,
    );
    host.advance_time(took);
    match status {
        Some(code) => {
            let code_s = code.to_string();
            host.response_headers(
                s,
                &[
                    (":status", &code_s),
                    ("set-cookie", "sid=set-cookie-secret"),
                    ("content-type", "text/plain"),
                ],
                true,
            );
            host.set_stream_property(s, &["response", "code"], le(i64::from(code)));
            host.set_stream_property(s, &["response", "total_size"], le(99));
            host.set_stream_property(s, &["response", "code_details"], "via_upstream");
        }
        None => {
            host.set_stream_property(s, &["response", "code"], le(0));
            host.set_stream_property(s, &["response", "flags"], le(1 << 14));
            host.set_stream_property(
                s,
                &["response", "code_details"],
                "downstream_remote_disconnect",
            );
        }
    }
    host.log(s);
    host.done(s);
    s
}

fn logged_records(host: &Host) -> Vec<Value> {
    host.logs()
        .iter()
        .filter(|e| e.message.starts_with('{'))
        .map(|e| serde_json::from_str(&e.message).expect("a JSON record"))
        .collect()
}

const DENIED: &str = r#"{"outcome":"denied","reason":"no_rule_matched"}"#;
const ALLOWED: &str = r#"{"outcome":"allowed","rule":"cart"}"#;

#[test]
fn log_sink_writes_one_ocsf_line_per_request_from_headers_and_properties() {
    let mut host = start("{}");
    // The head reached the filter: start and end come from the host clock at the head and at
    // `on_log`, not from `request.time` and `request.duration` (set to other values here).
    request_taking(
        &mut host,
        "/cart?id=1&token=query-secret",
        "req-1",
        Some(ALLOWED),
        Some(200),
        Duration::from_millis(12),
    );
    request(&mut host, "/admin", "req-2", Some(DENIED), Some(403));
    let recs = logged_records(&host);
    assert_eq!(recs.len(), 2);
    let r = &recs[0];
    assert_eq!(r["class_uid"], 4002);
    assert_eq!(r["type_uid"], 400203);
    assert_eq!(r["start_time"], T0 / 1_000_000);
    assert_eq!(r["time"], T0 / 1_000_000 + 12);
    assert_eq!(r["duration"], 12);
    assert_eq!(r["metadata"]["uid"], "req-1");
    assert_eq!(r["http_request"]["url"]["hostname"], "shop.example.com");
    assert_eq!(r["http_request"]["url"]["port"], 80);
    assert_eq!(
        r["http_request"]["url"]["query_string"],
        "id=1&token=REDACTED"
    );
    assert_eq!(r["http_request"]["version"], "HTTP/1.1");
    assert_eq!(r["http_request"]["length"], 180);
    assert_eq!(r["http_request"]["x_forwarded_for"][0], "203.0.113.9");
    assert_eq!(r["http_response"]["code"], 200);
    assert_eq!(r["http_response"]["length"], 99);
    assert_eq!(
        r["http_response"]["http_headers"][0]["name"],
        "content-type"
    );
    assert_eq!(r["src_endpoint"]["ip"], "10.1.2.3");
    assert_eq!(r["src_endpoint"]["name"], "web-v1");
    assert_eq!(r["src_endpoint"]["domain"], "shop");
    assert_eq!(
        r["src_endpoint"]["owner"]["uid"],
        "spiffe://cluster.local/ns/shop/sa/web"
    );
    assert_eq!(r["dst_endpoint"]["port"], 8080);
    assert_eq!(
        (r["action_id"].as_u64(), r["disposition_id"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(r["firewall_rule"]["name"], "cart");
    let d = &recs[1];
    assert_eq!(
        (d["action_id"].as_u64(), d["disposition_id"].as_u64()),
        (Some(2), Some(2))
    );
    assert_eq!(d["http_response"]["code"], 403);
    assert_eq!(
        d["unmapped"]["meshsight"]["allowlist"]["reason"],
        "no_rule_matched"
    );
    assert_eq!(counter(&mut host, "meshsight_audit_records"), Some(2));
    assert_eq!(counter(&mut host, "meshsight_audit_delivered"), Some(2));
}

#[test]
fn a_request_whose_head_never_reached_the_filter_takes_its_times_from_envoy() {
    let mut host = start("{}");
    let s = host.new_http_stream();
    host.set_stream_property(s, &["request", "time"], le(T0 as i64 - 30_000_000));
    host.set_stream_property(s, &["request", "duration"], le(7_000_000));
    host.advance_time(Duration::from_millis(50));
    // An earlier filter answered: no request headers callback, only the stream's end.
    host.log(s);
    host.done(s);
    let recs = logged_records(&host);
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0]["start_time"], T0 / 1_000_000 - 30);
    assert_eq!(recs[0]["time"], T0 / 1_000_000 - 23);
    assert_eq!(recs[0]["duration"], 7);
}

/// One request on connection `id` (Envoy's `connection.id`) whose `request.protocol` says
/// `protocol`; returns the stream.
fn request_on_connection(host: &mut Host, id: i64, protocol: &str) -> u32 {
    let s = host.new_http_stream();
    host.set_stream_property(s, &["connection", "id"], le(id));
    host.set_stream_property(s, &["request", "protocol"], protocol);
    host.set_stream_property(s, &["source", "address"], "10.1.2.3:51234");
    host.set_stream_property(s, &["request", "total_size"], le(180));
    host.request_headers(
        s,
        &[
            (":method", "GET"),
            (":scheme", "http"),
            (":authority", "shop.example.com"),
            (":path", "/"),
            ("x-request-id", "r"),
        ],
        true,
    );
    host.response_headers(s, &[(":status", "200")], true);
    host.log(s);
    host.done(s);
    s
}

#[test]
fn the_protocol_is_read_once_per_connection_and_the_times_from_the_clock() {
    let mut host = start("{}");
    let first = request_on_connection(&mut host, 7, "HTTP/1.1");
    // The same connection: what it fixed is not asked again (a changed answer would show).
    let second = request_on_connection(&mut host, 7, "HTTP/2");
    let other = request_on_connection(&mut host, 8, "HTTP/2");
    let versions: Vec<_> = logged_records(&host)
        .iter()
        .map(|r| r["http_request"]["version"].clone())
        .collect();
    assert_eq!(versions, ["HTTP/1.1", "HTTP/1.1", "HTTP/2"]);
    let count = |s: u32, name: &str| host.host_calls(s).iter().filter(|c| **c == name).count();
    // Per request, once the connection is known: connection.id, the two decisions another
    // plugin may have left (this one runs only the audit), request.total_size,
    // response.total_size, upstream_peer.namespace, response.flags, response.code_details.
    assert_eq!(
        count(second, "proxy_get_property"),
        8,
        "{:?}",
        host.host_calls(second)
    );
    // The first request on a connection also reads what the connection fixes: source and
    // destination, the peer's principal (two places), its namespace, and the protocol.
    assert_eq!(
        count(first, "proxy_get_property"),
        14,
        "{:?}",
        host.host_calls(first)
    );
    assert_eq!(count(other, "proxy_get_property"), 14);
    // request.time and request.duration are never asked: the clock at the head and at the end.
    assert_eq!(count(second, "proxy_get_current_time_nanoseconds"), 2);
}

#[test]
fn credentials_never_reach_the_log() {
    let mut host = start(r#"{"record_headers":["content-type","user-agent"]}"#);
    request(
        &mut host,
        "/a?password=query-secret&x=1",
        "r",
        None,
        Some(200),
    );
    let all: String = host.logs().iter().map(|e| e.message.clone()).collect();
    for secret in [
        "top-secret",
        "cookie-secret",
        "set-cookie-secret",
        "query-secret",
    ] {
        assert!(!all.contains(secret), "{secret} leaked: {all}");
    }
    assert!(all.contains("password=REDACTED&x=1"));
}

#[test]
fn client_abort_and_mirror_decision_are_recorded() {
    let mut host = start("{}");
    let s = host.new_http_stream();
    host.set_stream_property(
        s,
        &["meshsight_mirror"],
        r#"{"mirrored":true,"target":"ids","reason":"signature","signatures":["log4shell"]}"#,
    );
    host.request_headers(
        s,
        &[
            (":method", "POST"),
            (":path", "/x"),
            (":authority", "a"),
            (":scheme", "http"),
        ],
        false,
    );
    host.set_stream_property(s, &["response", "flags"], le(1 << 14));
    host.log(s);
    let recs = logged_records(&host);
    assert_eq!(recs.len(), 1);
    let r = &recs[0];
    assert_eq!(r["activity_id"], 6);
    assert!(r.get("http_response").is_none());
    assert_eq!(r["unmapped"]["meshsight"]["client_aborted"], true);
    assert_eq!(r["unmapped"]["meshsight"]["mirror"]["reason"], "signature");
    assert_eq!(r["is_alert"], true);
}

#[test]
fn ecs_format_is_selectable() {
    let mut host = start(r#"{"format":"ecs"}"#);
    request(&mut host, "/a", "r-ecs", Some(ALLOWED), Some(200));
    let recs = logged_records(&host);
    assert_eq!(recs[0]["ecs"]["version"], "8.11.0");
    assert_eq!(recs[0]["http"]["response"]["status_code"], 200);
    assert_eq!(recs[0]["event"]["id"], "r-ecs");
}

#[test]
fn sampling_keeps_remarkable_requests_and_a_deterministic_share_of_the_rest() {
    let mut host = start(r#"{"sample_allowed":0.0}"#);
    request(&mut host, "/a", "r1", Some(ALLOWED), Some(200));
    request(&mut host, "/b", "r2", Some(DENIED), Some(403));
    request(
        &mut host,
        "/c",
        "r3",
        Some(r#"{"outcome":"would_deny"}"#),
        Some(200),
    );
    request(&mut host, "/d", "r4", Some(ALLOWED), Some(503));
    request(&mut host, "/e", "r5", Some(ALLOWED), None);
    let recs = logged_records(&host);
    let ids: Vec<&str> = recs
        .iter()
        .map(|r| r["metadata"]["uid"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["r2", "r3", "r4", "r5"]);
    assert_eq!(counter(&mut host, "meshsight_audit_not_sampled"), Some(1));
    assert_eq!(counter(&mut host, "meshsight_audit_records"), Some(4));
    drop(host); // one live Host per thread

    let mut a = Vec::new();
    for round in 0..2 {
        let mut host = start(r#"{"sample_allowed":0.3}"#);
        for i in 0..200 {
            request(
                &mut host,
                "/a",
                &format!("id-{i}"),
                Some(ALLOWED),
                Some(200),
            );
        }
        let kept: Vec<String> = logged_records(&host)
            .iter()
            .map(|r| r["metadata"]["uid"].as_str().unwrap().to_string())
            .collect();
        assert!((40..=80).contains(&kept.len()), "kept {}", kept.len());
        if round == 0 {
            a = kept;
        } else {
            assert_eq!(a, kept, "same request ids, same sample");
        }
    }
}

fn http_config(extra: &str) -> String {
    format!(
        r#"{{"sink":{{"http":{{"cluster":"collector","path":"/ingest","headers":{{"authorization":"Bearer collector-token"}},
        "timeout_ms":2000,"flush_interval_ms":1000,"backoff_initial_ms":100,"backoff_max_ms":400{extra}}}}}}}"#
    )
}

/// The audit's counters once the root's tick has flushed them.
fn counters(host: &mut Host) -> (u64, u64, u64, i64) {
    host.tick();
    let c = |n: &str| host.counter(n).unwrap_or(0);
    let dropped = c("meshsight_audit_dropped_buffer_full")
        + c("meshsight_audit_dropped_retries_exhausted")
        + c("meshsight_audit_dropped_too_large")
        + c("meshsight_audit_dropped_shutdown");
    (
        c("meshsight_audit_records"),
        c("meshsight_audit_delivered"),
        dropped,
        host.gauge("meshsight_audit_buffered").unwrap_or(0),
    )
}

fn assert_balanced(host: &mut Host) {
    let (records, delivered, dropped, buffered) = counters(host);
    assert_eq!(
        records,
        delivered + dropped + buffered as u64,
        "records={records} delivered={delivered} dropped={dropped} buffered={buffered}"
    );
}

#[test]
fn http_sink_batches_by_size_and_interval_with_configured_headers() {
    let mut host = start(&http_config(r#","batch_max_records":3"#));
    assert_eq!(host.tick_period(), Some(Duration::from_millis(100)));
    for i in 0..4 {
        request(&mut host, "/a", &format!("b-{i}"), Some(ALLOWED), Some(200));
    }
    assert!(
        host.http_calls().is_empty(),
        "nothing is sent outside a tick"
    );
    assert_eq!(gauge(&mut host, "meshsight_audit_buffered"), Some(4));
    host.tick();
    let calls = host.http_calls();
    assert_eq!(calls.len(), 1, "a full batch leaves at the next tick");
    let call = &calls[0];
    assert_eq!(call.upstream, "collector");
    assert_eq!(call.timeout, Duration::from_millis(2000));
    let header = |n: &str| {
        call.headers
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(header(":method"), Some("POST"));
    assert_eq!(header(":path"), Some("/ingest"));
    assert_eq!(header(":authority"), Some("collector"));
    assert_eq!(header("content-type"), Some("application/x-ndjson"));
    assert_eq!(header("authorization"), Some("Bearer collector-token"));
    let lines: Vec<Value> = call
        .body
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["metadata"]["uid"], "b-0");
    host.respond_http_call(call.token, HttpCallResponse::status("200", ""));
    assert_eq!(counter(&mut host, "meshsight_audit_delivered"), Some(3));
    // The fourth record is not a full batch: it waits for the flush interval.
    host.tick();
    assert!(host.http_calls().is_empty());
    host.advance_time(Duration::from_millis(1000));
    host.tick();
    let calls = host.http_calls();
    assert_eq!(calls.len(), 1);
    host.respond_http_call(calls[0].token, HttpCallResponse::status("204", ""));
    assert_eq!(counters(&mut host), (4, 4, 0, 0));
    assert_eq!(gauge(&mut host, "meshsight_audit_buffered_bytes"), Some(0));
}

#[test]
fn up_to_max_in_flight_batches_are_out_at_once() {
    let mut host = start(&http_config(
        r#","batch_max_records":2,"max_in_flight_batches":2"#,
    ));
    for i in 0..7 {
        request(&mut host, "/a", &format!("m-{i}"), None, Some(200));
    }
    host.tick();
    let calls = host.http_calls();
    assert_eq!(calls.len(), 2, "two full batches out, the rest waits");
    // The second answer comes first: each batch is settled on its own.
    host.respond_http_call(calls[1].token, HttpCallResponse::status("200", ""));
    assert_eq!(counter(&mut host, "meshsight_audit_delivered"), Some(2));
    let calls = host.http_calls();
    assert_eq!(calls.len(), 2, "the freed slot is used at once");
    for c in calls {
        host.respond_http_call(c.token, HttpCallResponse::status("200", ""));
    }
    host.advance_time(Duration::from_secs(1));
    host.tick();
    for c in host.http_calls() {
        host.respond_http_call(c.token, HttpCallResponse::status("200", ""));
    }
    assert_eq!(counters(&mut host), (7, 7, 0, 0));
}

#[test]
fn failed_batches_are_retried_with_backoff_then_delivered() {
    let mut host = start(&http_config(r#","batch_max_records":2"#));
    request(&mut host, "/a", "x1", None, Some(200));
    request(&mut host, "/a", "x2", None, Some(200));
    host.tick();
    let first = host.http_calls()[0].clone();
    host.respond_http_call(first.token, HttpCallResponse::status("503", ""));
    host.tick();
    assert!(host.http_calls().is_empty(), "backing off 100 ms");
    host.advance_time(Duration::from_millis(100));
    host.tick();
    let retry = host.http_calls()[0].clone();
    assert_eq!(retry.body, first.body, "the same batch is re-sent");
    assert_eq!(counter(&mut host, "meshsight_audit_retried"), Some(2));
    host.fail_http_call(retry.token); // reset/timeout: no headers
    host.advance_time(Duration::from_millis(199));
    host.tick();
    assert!(host.http_calls().is_empty(), "second backoff is 200 ms");
    host.advance_time(Duration::from_millis(1));
    host.tick();
    let again = host.http_calls()[0].clone();
    host.respond_http_call(again.token, HttpCallResponse::status("200", ""));
    assert_eq!(counters(&mut host), (2, 2, 0, 0));
    assert_eq!(counter(&mut host, "meshsight_audit_retried"), Some(4));
}

#[test]
fn batches_are_dropped_and_counted_after_max_retries() {
    let mut host = start(&http_config(r#","batch_max_records":1,"max_retries":2"#));
    request(&mut host, "/a", "d1", None, Some(200));
    for _ in 0..3 {
        host.advance_time(Duration::from_millis(1000));
        host.tick();
        let calls = host.http_calls();
        assert_eq!(calls.len(), 1);
        host.respond_http_call(calls[0].token, HttpCallResponse::status("500", ""));
        assert_balanced(&mut host);
    }
    assert_eq!(
        counter(&mut host, "meshsight_audit_dropped_retries_exhausted"),
        Some(1)
    );
    assert_eq!(counters(&mut host), (1, 0, 1, 0));
    assert!(!host.logs_containing("collector answered 500").is_empty());
}

#[test]
fn a_dispatch_that_fails_synchronously_is_retried() {
    let mut host = start(&http_config(r#","batch_max_records":1"#));
    host.set_http_call_error(Some(Status::BadArgument));
    request(&mut host, "/a", "s1", None, Some(200));
    host.tick();
    assert!(host.http_calls().is_empty());
    assert!(!host.logs_containing("cannot send a batch").is_empty());
    host.set_http_call_error(None);
    host.advance_time(Duration::from_millis(100));
    host.tick();
    let calls = host.http_calls();
    assert_eq!(calls.len(), 1);
    host.respond_http_call(calls[0].token, HttpCallResponse::status("200", ""));
    assert_eq!(counters(&mut host), (1, 1, 0, 0));
}

#[test]
fn buffer_bound_holds_while_the_collector_hangs() {
    let bound = 8 * 1024;
    let mut host = start(&http_config(&format!(
        r#","batch_max_records":5,"batch_max_bytes":4096,"max_buffer_bytes":{bound}"#
    )));
    for i in 0..60 {
        request(&mut host, "/a", &format!("h-{i}"), None, Some(200));
        host.tick(); // batches go out and never come back
        assert!(gauge(&mut host, "meshsight_audit_buffered_bytes").unwrap() <= bound);
        assert_balanced(&mut host);
    }
    let out = host.http_calls().len();
    assert!(
        (1..=4).contains(&out),
        "at most max_in_flight_batches (4) calls out: {out}"
    );
    let dropped = counter(&mut host, "meshsight_audit_dropped_buffer_full").unwrap();
    assert!(dropped > 0, "the bound forced drops");
    let (records, _, _, buffered) = counters(&mut host);
    assert_eq!(records, 60);
    assert!(buffered > 0);
}

#[test]
fn counting_invariant_holds_over_a_random_sequence_of_operations() {
    let mut host = start(&http_config(
        r#","batch_max_records":4,"batch_max_bytes":4096,"max_buffer_bytes":6000,"max_retries":1,"drop_policy":"drop_newest""#,
    ));
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for step in 0..600 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        match x % 6 {
            0 | 1 => {
                request(&mut host, "/r", &format!("p-{step}"), None, Some(200));
            }
            2 => host.advance_time(Duration::from_millis(x % 300)),
            3 => host.tick(),
            4 => {
                if let Some(c) = host.http_calls().first() {
                    host.respond_http_call(c.token, HttpCallResponse::status("200", ""));
                }
            }
            _ => {
                if let Some(c) = host.http_calls().first() {
                    if x % 2 == 0 {
                        host.respond_http_call(c.token, HttpCallResponse::status("503", ""));
                    } else {
                        host.fail_http_call(c.token);
                    }
                }
            }
        }
        assert_balanced(&mut host);
        assert!(gauge(&mut host, "meshsight_audit_buffered_bytes").unwrap() <= 6000);
    }
    let (records, delivered, dropped, _) = counters(&mut host);
    assert!(
        records > 100 && delivered > 0 && dropped > 0,
        "{records} {delivered} {dropped}"
    );
}

#[test]
fn bad_policies_are_refused_naming_the_json_path() {
    let cases = [
        (
            r#"{"record_headers":["cookie"]}"#,
            "record_headers[0]: \"cookie\" carries credentials",
        ),
        (
            r#"{"sink":{"http":{"cluster":"c","max_retries":-1}}}"#,
            "sink.http.max_retries",
        ),
        (
            r#"{"sink":{"http":{"clustr":"c"}}}"#,
            "sink.http.clustr: unknown field `clustr`",
        ),
        (
            r#"{"sample_allowed":2}"#,
            "sample_allowed: 2 is not a fraction",
        ),
        ("not json", "invalid policy"),
    ];
    for (config, needle) in cases {
        let Err(err) = Host::builder(meshsight::register)
            .property(&["plugin_root_id"], "meshsight_audit")
            .plugin_config(config)
            .start()
        else {
            panic!("{config} was accepted");
        };
        assert!(err.to_string().contains(needle), "{config}: {err}");
    }
}

// The demo's audit policy is checked in audit_demo_policy.rs.

#[test]
fn records_still_buffered_at_shutdown_are_counted_as_dropped() {
    let mut host = start(&http_config(r#","batch_max_records":2"#));
    for i in 0..3 {
        request(&mut host, "/a", &format!("z-{i}"), None, Some(200));
    }
    host.tick(); // two in flight, one waiting
    assert_eq!(host.http_calls().len(), 1);
    assert!(host.shutdown());
    assert_eq!(
        counter(&mut host, "meshsight_audit_dropped_shutdown"),
        Some(3)
    );
    assert_eq!(counters(&mut host), (3, 0, 3, 0));
    assert_eq!(gauge(&mut host, "meshsight_audit_buffered_bytes"), Some(0));
    assert!(!host
        .logs_containing("3 buffered records dropped at shutdown")
        .is_empty());
}

/// Starts the audit alone with Istio-shaped node metadata under `prefix` (`xds.node.metadata`
/// in Envoy 1.36 and 1.40, `node.metadata` in proxies that answer the old path).
fn start_with_node_metadata(prefix: &[&str], config: &str) -> Host {
    let at = |key: &[&'static str]| -> Vec<&str> { prefix.iter().chain(key).copied().collect() };
    Host::builder(meshsight::register)
        .property(&["plugin_root_id"], "meshsight_audit")
        .plugin_config(config)
        .property(&at(&["NAMESPACE"]), "payments")
        .property(&at(&["WORKLOAD_NAME"]), "ledger-v2")
        .property(
            &at(&["LABELS", "service.istio.io/canonical-name"]),
            "ledger",
        )
        .start()
        .expect("configure")
}

#[test]
fn destination_falls_back_to_this_workloads_node_metadata() {
    for prefix in [&["xds", "node", "metadata"][..], &["node", "metadata"][..]] {
        let mut host = start_with_node_metadata(prefix, "{}");
        request(&mut host, "/a", "n-1", None, Some(200));
        let r = &logged_records(&host)[0];
        assert_eq!(r["dst_endpoint"]["name"], "ledger-v2", "{prefix:?}");
        assert_eq!(r["dst_endpoint"]["svc_name"], "ledger", "{prefix:?}");
        assert_eq!(r["dst_endpoint"]["domain"], "payments", "{prefix:?}");
        drop(host);
    }
}

#[test]
fn the_log_sink_warns_when_envoy_would_hide_its_records() {
    let host = Host::builder(meshsight::register)
        .property(&["plugin_root_id"], "meshsight_audit")
        .plugin_config("{}")
        .log_level(proxy_wasm_test_host::LogLevel::Warn)
        .start()
        .expect("configure");
    assert_eq!(
        host.logs_containing("below Envoy's wasm log level").len(),
        1
    );
    drop(host);
    let host = start("{}");
    assert!(host
        .logs_containing("below Envoy's wasm log level")
        .is_empty());
}
