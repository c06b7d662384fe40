//! Fixtures shared by the audit modules' tests (an exchange with every field set), and the
//! tests of the policy, query redaction, sampling and the delivery queue.

use super::*;
use crate::decision::{AllowlistDecision, AllowlistOutcome, MirrorDecision, MirrorReason};
use crate::error::ConfigError;
use crate::sampling::{in_sample, stable_hash};
use serde_json::Value;
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

pub(super) fn policy(json: &str) -> AuditPolicy {
    AuditPolicy::from_json(json.as_bytes()).unwrap()
}

pub(super) fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

pub(super) fn exchange() -> HttpExchange {
    let mut ex = HttpExchange::from_request_headers(h(&[
        (":method", "GET"),
        (":scheme", "http"),
        (":authority", "shop.example.com:8080"),
        (":path", "/cart/items?id=7&token=s3cr3t&page=2"),
        ("user-agent", "curl/8.5.0"),
        ("x-request-id", "5b6f1c2e-0000-4000-8000-000000000001"),
        (
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ),
        ("x-forwarded-for", "203.0.113.7, 10.0.0.1"),
        ("authorization", "Bearer very-secret"),
        ("cookie", "session=abc"),
        ("content-type", "application/json"),
    ]));
    ex.protocol = Some("HTTP/1.1".into());
    ex.status = Some(200);
    ex.response_headers = h(&[
        (":status", "200"),
        ("set-cookie", "sid=1"),
        ("content-type", "text/plain"),
    ]);
    ex.request_bytes = Some(321);
    ex.response_bytes = Some(654);
    ex.start_ns = 1_700_000_000_000_000_000;
    ex.end_ns = 1_700_000_000_012_500_000;
    ex.source_address = Some("10.1.2.3:51234".into());
    ex.destination_address = Some("10.1.9.9:8080".into());
    ex.source_peer = PeerWorkload {
        namespace: Some("shop".into()),
        workload: Some("web-v1".into()),
        service: Some("web".into()),
    };
    ex.peer_identity = Some("spiffe://cluster.local/ns/shop/sa/web".into());
    ex.allowlist = Some(AllowlistDecision {
        outcome: AllowlistOutcome::Allowed,
        rule: Some("cart".into()),
        reason: None,
    });
    ex.mirror = Some(MirrorDecision {
        mirrored: false,
        target: None,
        reason: MirrorReason::NotSelected,
        rule: None,
        signatures: vec![],
        signature_rules: vec![],
        findings: Vec::new(),
    });
    ex.response_code_details = Some("via_upstream".into());
    ex
}

pub(super) fn ocsf(ex: HttpExchange, p: &AuditPolicy) -> Value {
    AuditRecord::build(ex, p).to_ocsf()
}

// ---- policy -----------------------------------------------------------------------------

#[test]
fn empty_policy_means_ocsf_to_the_log_with_defaults() {
    let p = AuditPolicy::from_json(b"").unwrap();
    assert_eq!(p.format, AuditFormat::Ocsf);
    assert_eq!(p.sink, Sink::Log);
    assert_eq!(p.sample_allowed, 1.0);
    assert!(p.redact_query_params.contains("token"));
    assert!(p.redact_query_params.contains("client_secret"));
    assert!(p.record_headers.contains("content-type"));
    assert_eq!(AuditPolicy::from_json(b"{}").unwrap(), p);
}

#[test]
fn http_sink_compiles_with_defaults_and_overrides() {
    let p = policy(
        r#"{"format":"ecs","sink":{"http":{"cluster":"collector","path":"/v1/ingest",
            "headers":{"authorization":"Bearer t"},"timeout_ms":1500,"batch_max_records":10,
            "batch_max_bytes":4096,"flush_interval_ms":200,"max_buffer_bytes":65536,"max_retries":2,
            "backoff_initial_ms":10,"backoff_max_ms":40,"drop_policy":"drop_newest"}},
            "sample_allowed":0.25}"#,
    );
    assert_eq!(p.format, AuditFormat::Ecs);
    let Sink::Http(s) = &p.sink else {
        panic!("http sink expected")
    };
    assert_eq!(s.cluster, "collector");
    assert_eq!(s.authority, "collector");
    assert_eq!(s.path, "/v1/ingest");
    assert_eq!(
        s.headers,
        vec![("authorization".to_string(), "Bearer t".to_string())]
    );
    assert_eq!(s.timeout.as_millis(), 1500);
    assert_eq!(s.queue.batch_max_records, 10);
    assert_eq!(s.queue.max_retries, 2);
    assert_eq!(s.queue.drop_policy, DropPolicy::DropNewest);
    assert_eq!(s.queue.response_deadline_ms, 2500);
    assert_eq!(p.sample_allowed, 0.25);
    let d = policy(r#"{"sink":{"http":{"cluster":"c"}}}"#);
    let Sink::Http(s) = &d.sink else {
        panic!("http sink expected")
    };
    assert_eq!(s.path, "/");
    assert_eq!(s.queue.drop_policy, DropPolicy::DropOldest);
}

fn err(json: &str) -> ConfigError {
    AuditPolicy::from_json(json.as_bytes()).unwrap_err()
}

#[test]
fn bad_policies_are_refused_naming_the_json_path() {
    let cases = [
        (r#"{"formatt":"ocsf"}"#, "formatt"),
        (r#"{"format":"cef"}"#, "format"),
        (
            r#"{"record_headers":["content-type","Authorization"]}"#,
            "record_headers[1]",
        ),
        (r#"{"record_headers":["cookie"]}"#, "record_headers[0]"),
        (
            r#"{"record_headers":["x-ok","set-cookie"]}"#,
            "record_headers[1]",
        ),
        (
            r#"{"record_headers":["proxy-authorization"]}"#,
            "record_headers[0]",
        ),
        (r#"{"record_headers":["bad header"]}"#, "record_headers[0]"),
        (
            r#"{"redact_query_params":["a",""]}"#,
            "redact_query_params[1]",
        ),
        (r#"{"sample_allowed":1.5}"#, "sample_allowed"),
        (r#"{"sample_allowed":"all"}"#, "sample_allowed"),
        (r#"{"sink":"kafka"}"#, "sink"),
        (r#"{"sink":{"http":{"cluster":""}}}"#, "sink.http.cluster"),
        (
            r#"{"sink":{"http":{"cluster":"c","timeoutms":5}}}"#,
            "sink.http.timeoutms",
        ),
        (
            r#"{"sink":{"http":{"cluster":"c","timeout_ms":0}}}"#,
            "sink.http.timeout_ms",
        ),
        (
            r#"{"sink":{"http":{"cluster":"c","path":"ingest"}}}"#,
            "sink.http.path",
        ),
        (
            r#"{"sink":{"http":{"cluster":"c","batch_max_bytes":100,"max_buffer_bytes":10}}}"#,
            "sink.http.max_buffer_bytes",
        ),
        (
            r#"{"sink":{"http":{"cluster":"c","backoff_initial_ms":100,"backoff_max_ms":10}}}"#,
            "sink.http.backoff_max_ms",
        ),
        (
            r#"{"sink":{"http":{"cluster":"c","drop_policy":"drop_random"}}}"#,
            "sink.http.drop_policy",
        ),
        (
            r#"{"sink":{"http":{"cluster":"c","headers":{"X-Token":"t"}}}}"#,
            "sink.http.headers.X-Token",
        ),
        (
            r#"{"sink":{"http":{"cluster":"c","headers":{"x-token":"a\nb"}}}}"#,
            "sink.http.headers.x-token",
        ),
        (
            r#"{"sink":{"http":{"cluster":"c","headers":{"content-type":"x"}}}}"#,
            "sink.http.headers.content-type",
        ),
    ];
    for (json, path) in cases {
        let e = err(json);
        assert_eq!(e.path, path, "{json} -> {e}");
        assert!(e.to_string().starts_with(&format!("{path}: ")), "{e}");
    }
    assert!(err(r#"{"record_headers":["cookie"]}"#)
        .reason
        .contains("credentials"));
}

// ---- redaction --------------------------------------------------------------------------

#[test]
fn query_parameters_are_masked_by_name_case_and_encoding_insensitively() {
    let secrets: crate::name_set::NameSet = ["token", "password", "api_key"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let cases = [
        ("a=1&token=x", "a=1&token=REDACTED"),
        ("TOKEN=x;b=2", "TOKEN=REDACTED;b=2"),
        ("%74oken=x&b", "%74oken=REDACTED&b"),
        (
            "api%5Fkey=k&api_key[]=k2",
            "api%5Fkey=REDACTED&api_key[]=REDACTED",
        ),
        ("password=&x=password", "password=REDACTED&x=password"),
        ("token", "token"),
        ("a=1#token=x", "a=1"),
        ("", ""),
        ("%=x&%zz=y&token=%", "%=x&%zz=y&token=REDACTED"),
    ];
    for (query, expected) in cases {
        assert_eq!(redact_query(query, &secrets), expected, "{query}");
    }
}

// ---- sampling ---------------------------------------------------------------------------

#[test]
fn remarkable_requests_are_always_recorded() {
    let mut denied = exchange();
    denied.allowlist = Some(AllowlistDecision {
        outcome: AllowlistOutcome::Denied,
        rule: None,
        reason: None,
    });
    let mut would = exchange();
    would.allowlist = Some(AllowlistDecision {
        outcome: AllowlistOutcome::WouldDeny,
        rule: None,
        reason: None,
    });
    let mut malformed = exchange();
    malformed.allowlist = Some(AllowlistDecision {
        outcome: AllowlistOutcome::Malformed,
        rule: None,
        reason: None,
    });
    let mut sig = exchange();
    sig.mirror = Some(MirrorDecision {
        mirrored: true,
        target: Some("ids".into()),
        reason: MirrorReason::Signature,
        rule: None,
        signatures: vec!["sqli".into()],
        signature_rules: vec![],
        findings: Vec::new(),
    });
    let mut failed = exchange();
    failed.status = Some(502);
    let mut aborted = exchange();
    aborted.status = None;
    for ex in [denied, would, malformed, sig, failed, aborted] {
        assert_eq!(
            sample_verdict(&ex, 0.0),
            SampleVerdict::AlwaysRecorded,
            "{ex:?}"
        );
    }
    let mut client_error = exchange();
    client_error.status = Some(404);
    assert_eq!(
        sample_verdict(&client_error, 0.0),
        SampleVerdict::NotSampled
    );
    assert_eq!(sample_verdict(&exchange(), 0.0), SampleVerdict::NotSampled);
    assert_eq!(sample_verdict(&exchange(), 1.0), SampleVerdict::Sampled);
}

/// The policy judges with its own `sample_allowed`: what `sample_verdict` gives at that fraction.
#[test]
fn the_policy_judges_with_its_own_sampling_fraction() {
    let none = policy(r#"{"sample_allowed":0}"#);
    let all = policy(r#"{"sample_allowed":1}"#);
    assert_eq!(none.judge(&exchange()), SampleVerdict::NotSampled);
    assert_eq!(all.judge(&exchange()), SampleVerdict::Sampled);
    let mut failed = exchange();
    failed.status = Some(503);
    assert_eq!(none.judge(&failed), SampleVerdict::AlwaysRecorded);
    let fifth = policy(r#"{"sample_allowed":0.2}"#);
    for i in 0..200u32 {
        let mut ex = exchange();
        ex.request_id = Some(format!("req-{i}"));
        assert_eq!(fifth.judge(&ex), sample_verdict(&ex, 0.2), "req-{i}");
    }
}

#[test]
fn sampling_is_deterministic_on_the_request_id_and_near_the_fraction() {
    let mut kept = 0;
    for i in 0..10_000u32 {
        let mut ex = exchange();
        ex.request_id = Some(format!("req-{i}"));
        let v = sample_verdict(&ex, 0.2);
        assert_eq!(v, sample_verdict(&ex, 0.2), "same id, same verdict");
        if v.is_recorded() {
            kept += 1;
            // A request kept at 20% is also kept at any larger fraction.
            assert!(sample_verdict(&ex, 0.5).is_recorded());
        }
    }
    assert!((1800..=2200).contains(&kept), "kept {kept} of 10000 at 0.2");
    assert!(!in_sample(u64::MAX, 0.999_999));
    assert!(in_sample(0, 0.000_001));
    assert_ne!(stable_hash(b"req-1"), stable_hash(b"req-2"));
}

// ---- delivery queue ---------------------------------------------------------------------

fn limits() -> QueueLimits {
    QueueLimits {
        batch_max_records: 3,
        batch_max_bytes: 1000,
        flush_interval_ms: 100,
        max_buffer_bytes: 2000,
        max_retries: 2,
        backoff_initial_ms: 10,
        backoff_max_ms: 25,
        response_deadline_ms: 500,
        max_in_flight: 1,
        drop_policy: DropPolicy::DropOldest,
    }
}

fn rec(i: usize, size: usize) -> String {
    let mut s = format!("{{\"n\":{i}");
    while s.len() + 1 < size {
        s.push(' ');
    }
    s.push('}');
    s
}

#[test]
fn batches_leave_when_full_or_at_the_flush_interval() {
    let mut q = DeliveryQueue::new(limits(), 0);
    q.push(rec(1, 10));
    q.push(rec(2, 10));
    assert_eq!(q.poll(50), None, "neither full nor due");
    q.push(rec(3, 10));
    q.push(rec(4, 10));
    let b = q.poll(60).unwrap();
    assert_eq!(b.records, 3);
    assert_eq!(
        *b.body,
        format!("{}\n{}\n{}\n", rec(1, 10), rec(2, 10), rec(3, 10)).into_bytes()
    );
    assert_eq!(b.body.capacity(), b.body.len(), "the body is sized exactly");
    assert_eq!(q.poll(61), None, "one batch in flight at a time");
    assert!(q.delivered(b.id));
    assert_eq!(q.poll(100), None, "interval counts from the last flush");
    let b = q.poll(160).unwrap();
    assert_eq!(b.records, 1);
    assert!(q.delivered(b.id));
    let c = q.counters();
    assert_eq!(
        (c.records, c.delivered, c.buffered_records, c.buffered_bytes),
        (4, 4, 0, 0)
    );
}

#[test]
fn several_batches_can_be_in_flight_and_each_is_answered_on_its_own() {
    let mut l = limits();
    l.max_in_flight = 2;
    let mut q = DeliveryQueue::new(l, 0);
    for i in 0..9 {
        q.push(rec(i, 10));
    }
    let a = q.poll(0).unwrap();
    let b = q.poll(0).unwrap();
    assert_eq!(q.poll(0), None, "two out at most");
    assert_eq!(q.in_flight(), 2);
    assert_eq!((a.records, b.records), (3, 3));
    assert_ne!(a.id, b.id);
    q.failed(a.id, 0);
    assert!(q.delivered(b.id));
    let c = q.poll(1).unwrap();
    assert_eq!(c.records, 3, "b's slot is free: the next full batch leaves");
    assert_eq!(q.poll(9), None, "a waits for its backoff, c is out");
    let a2 = q.poll(10).unwrap();
    assert_eq!((a2.id, a2.attempt), (a.id, 1));
    assert!(q.delivered(a2.id) && q.delivered(c.id));
    let cs = q.counters();
    assert_eq!((cs.records, cs.delivered, cs.buffered_records), (9, 9, 0));
}

#[test]
fn batch_bytes_limit_splits_batches_but_a_big_record_goes_alone() {
    let mut l = limits();
    l.batch_max_records = 100;
    l.batch_max_bytes = 100;
    let mut q = DeliveryQueue::new(l, 0);
    q.push(rec(1, 40));
    q.push(rec(2, 40));
    q.push(rec(3, 150));
    let b = q.poll(0).unwrap();
    assert_eq!(b.records, 2);
    q.delivered(b.id);
    let b = q.poll(0).unwrap();
    assert_eq!(b.records, 1, "an oversized record still leaves, alone");
    assert_eq!(b.body.len(), 151, "150 bytes and its newline");
}

#[test]
fn failed_batches_are_retried_with_capped_exponential_backoff_then_dropped() {
    let mut q = DeliveryQueue::new(limits(), 0);
    for i in 0..3 {
        q.push(rec(i, 10));
    }
    let b = q.poll(0).unwrap();
    assert_eq!(q.failed(b.id, 5), None);
    assert_eq!(q.poll(14), None, "first backoff is 10 ms");
    let r1 = q.poll(15).unwrap();
    assert_eq!(
        (r1.id, r1.attempt, r1.body.clone()),
        (b.id, 1, b.body.clone())
    );
    assert!(
        std::rc::Rc::ptr_eq(&r1.body, &b.body),
        "a retry sends the kept body, not a copy"
    );
    assert_eq!(q.counters().retried, 3);
    assert_eq!(q.failed(r1.id, 20), None);
    assert_eq!(q.poll(39), None, "second backoff is 20 ms");
    let r2 = q.poll(40).unwrap();
    assert_eq!(r2.attempt, 2);
    assert_eq!(q.failed(r2.id, 41), Some(3), "max_retries reached: dropped");
    let c = q.counters();
    assert_eq!(
        (c.retried, c.dropped_retries_exhausted, c.buffered_records),
        (6, 3, 0)
    );
    assert!(c.balanced());
    assert_eq!(backoff_ms(&limits(), 0), 10);
    assert_eq!(backoff_ms(&limits(), 1), 20);
    assert_eq!(backoff_ms(&limits(), 2), 25, "capped");
    assert_eq!(backoff_ms(&limits(), 200), 25);
}

#[test]
fn a_retried_batch_can_still_be_delivered_and_stale_answers_are_ignored() {
    let mut q = DeliveryQueue::new(limits(), 0);
    q.push(rec(1, 10));
    let b = q.poll(200).unwrap();
    q.failed(b.id, 200);
    assert!(
        !q.delivered(b.id),
        "an answer while waiting to retry is stale"
    );
    let r = q.poll(210).unwrap();
    assert!(!q.delivered(r.id + 1));
    assert!(q.delivered(r.id));
    assert_eq!(q.counters().delivered, 1);
    assert_eq!(q.failed(r.id, 300), None, "unknown batch");
}

#[test]
fn an_unanswered_batch_fails_at_the_response_deadline() {
    let mut q = DeliveryQueue::new(limits(), 0);
    q.push(rec(1, 10));
    let b = q.poll(100).unwrap();
    assert_eq!(q.poll(599), None);
    assert_eq!(
        q.poll(600),
        None,
        "deadline passed: failed, now backing off"
    );
    let r = q.poll(610).unwrap();
    assert_eq!((r.id, r.attempt), (b.id, 1));
}

#[test]
fn buffer_bound_drop_oldest_keeps_the_newest() {
    let mut l = limits();
    l.max_buffer_bytes = 100;
    l.batch_max_bytes = 50;
    let mut q = DeliveryQueue::new(l, 0);
    for i in 0..4 {
        assert_eq!(q.push(rec(i, 24)), None);
    }
    assert_eq!(q.push(rec(4, 24)), Some((DropReason::BufferFull, 1)));
    let c = q.counters();
    assert_eq!(
        (c.buffered_records, c.buffered_bytes, c.dropped_buffer_full),
        (4, 100, 1)
    );
    let b = q.poll(1000).unwrap();
    assert!(
        String::from_utf8(b.body.to_vec())
            .unwrap()
            .starts_with(&rec(1, 24)),
        "record 0 was evicted"
    );
    assert_eq!(q.push(rec(9, 150)), Some((DropReason::TooLarge, 1)));
    assert!(q.counters().balanced());
}

#[test]
fn buffer_bound_drop_newest_keeps_the_oldest() {
    let mut l = limits();
    l.max_buffer_bytes = 100;
    l.batch_max_bytes = 50;
    l.drop_policy = DropPolicy::DropNewest;
    let mut q = DeliveryQueue::new(l, 0);
    for i in 0..4 {
        q.push(rec(i, 24));
    }
    assert_eq!(q.push(rec(4, 24)), Some((DropReason::BufferFull, 1)));
    let b = q.poll(1000).unwrap();
    assert!(String::from_utf8(b.body.to_vec())
        .unwrap()
        .starts_with(&rec(0, 24)));
    assert_eq!(q.counters().dropped_buffer_full, 1);
    assert!(q.counters().balanced());
}

#[test]
fn shutting_down_counts_what_was_still_buffered() {
    let mut q = DeliveryQueue::new(limits(), 0);
    for i in 0..5 {
        q.push(rec(i, 10));
    }
    let b = q.poll(0).unwrap();
    assert_eq!(b.records, 3);
    assert_eq!(q.shut_down(), 5, "3 in flight and 2 waiting");
    let c = q.counters();
    assert_eq!(
        (c.dropped_shutdown, c.buffered_records, c.buffered_bytes),
        (5, 0, 0)
    );
    assert!(c.balanced());
    assert!(
        !q.delivered(b.id),
        "the answer to a shut-down batch no longer counts"
    );
    assert!(q.counters().balanced());
}

#[test]
fn in_flight_bytes_count_against_the_bound() {
    let mut l = limits();
    l.max_buffer_bytes = 60;
    l.batch_max_bytes = 60;
    l.batch_max_records = 2;
    let mut q = DeliveryQueue::new(l, 0);
    q.push(rec(0, 25));
    q.push(rec(1, 25));
    let b = q.poll(0).unwrap();
    assert_eq!(b.records, 2);
    // 50 bytes in flight, 10 left: a 20-byte record cannot fit, even by evicting.
    assert_eq!(q.push(rec(2, 20)), Some((DropReason::BufferFull, 1)));
    assert!(q.counters().buffered_bytes <= 60);
    q.delivered(b.id);
    assert_eq!(q.push(rec(3, 20)), None);
    assert!(q.counters().balanced());
}

/// xorshift64*: a deterministic stream of operations for the property test.
struct Gen(u64);
impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[test]
fn counters_always_add_up_over_random_operation_sequences() {
    for seed in 1..=40u64 {
        let mut g = Gen(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let mut l = limits();
        l.max_buffer_bytes = 200 + g.below(800) as usize;
        l.batch_max_bytes = 50 + g.below(150) as usize;
        l.batch_max_bytes = l.batch_max_bytes.min(l.max_buffer_bytes);
        l.batch_max_records = 1 + g.below(8) as usize;
        l.max_retries = g.below(4) as u32;
        l.max_in_flight = 1 + g.below(3) as usize;
        l.drop_policy = if seed % 2 == 0 {
            DropPolicy::DropOldest
        } else {
            DropPolicy::DropNewest
        };
        let mut q = DeliveryQueue::new(l, 0);
        let mut now = 0u64;
        let mut outstanding: Vec<Batch> = Vec::new();
        let mut sent_lines = 0u64;
        for step in 0..3000 {
            match g.below(10) {
                0..=4 => {
                    q.push(rec(step, 5 + g.below(120) as usize));
                }
                5 | 6 => now += g.below(80),
                7 => {
                    while let Some(b) = q.poll(now) {
                        assert!(b.records >= 1);
                        assert_eq!(b.body.iter().filter(|c| **c == b'\n').count(), b.records);
                        sent_lines += b.records as u64;
                        outstanding.retain(|o| o.id != b.id);
                        outstanding.push(b);
                        assert!(q.in_flight() <= l.max_in_flight, "seed {seed}");
                    }
                }
                8 => {
                    if !outstanding.is_empty() {
                        let b = outstanding.remove(g.below(outstanding.len() as u64) as usize);
                        q.delivered(b.id);
                    }
                }
                _ => {
                    if !outstanding.is_empty() {
                        let b = outstanding.remove(g.below(outstanding.len() as u64) as usize);
                        q.failed(b.id, now);
                    }
                }
            }
            let c = q.counters();
            assert!(c.balanced(), "seed {seed} step {step}: {c:?}");
            assert!(
                c.buffered_bytes <= l.max_buffer_bytes as u64,
                "seed {seed}: {c:?}"
            );
        }
        let c = q.counters();
        assert!(c.records > 0 && sent_lines >= c.delivered);
        assert_eq!(
            c.dropped(),
            DropReason::ALL
                .iter()
                .map(|r| c.dropped_for(*r))
                .sum::<u64>()
        );
    }
}

#[test]
fn otlp_answers_drop_rejected_records_and_wait_for_retry_after() {
    let mut q = DeliveryQueue::new(limits(), 0);
    for i in 0..3 {
        q.push(format!("{{\"n\":{i}}}"));
    }
    let b = q.poll(1_000_000).expect("a batch");
    // partial_success: 1 of the batch's records rejected, the rest delivered.
    assert!(q.delivered_partially(b.id, 1));
    let c = q.counters();
    assert_eq!(c.dropped_rejected, 1);
    assert_eq!(c.delivered, b.records as u64 - 1);
    assert!(c.balanced());

    q.push("{\"n\":9}".into());
    let b = q.poll(3_000_000).expect("a batch");
    // 503 with Retry-After: 5 s, far beyond the backoff: not before.
    assert_eq!(q.failed_retry_after(b.id, 3_000_000, 5000), None);
    assert!(q.poll(3_000_000 + 4999).is_none());
    let again = q.poll(3_000_000 + 5000).expect("retried after Retry-After");
    assert_eq!(again.id, b.id);
    // 400: dropped for good, never retried.
    assert_eq!(q.rejected(b.id), Some(1));
    assert!(q.poll(10_000_000).is_none());
    let c = q.counters();
    assert_eq!(c.dropped_rejected, 2);
    assert_eq!(c.dropped_for(DropReason::Rejected), 2);
    assert!(c.balanced());
}
