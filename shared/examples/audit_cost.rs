//! Native cost of the audit job per request: `HttpExchange::from_request_headers` +
//! `AuditRecord::build` + `to_json_line` for a GET with ten realistic headers and both
//! decisions set, under the Istio manifest's policy. Run it in release (and under
//! `perf record -g` to see where the time goes):
//!
//! ```text
//! cargo run --release -p meshsight-policy --example audit_cost [-- ITERATIONS [ocsf|ecs]]
//! ```
//!
//! Inputs (the header vectors, the decisions) are made before the clock starts: a caller holds
//! them already. What the record costs to build, render and drop is measured.

use std::hint::black_box;
use std::time::Instant;

use meshsight_policy::audit::{AuditFormat, AuditPolicy, AuditRecord, HttpExchange, PeerWorkload};
use meshsight_policy::decision::{
    AllowlistDecision, AllowlistOutcome, MirrorDecision, MirrorReason,
};

/// The audit policy of `envoy-config/istio/three-plugins/meshsight-three-plugins.yaml` with the
/// log sink (delivery is not timed).
const POLICY: &str = r#"{"format":"ocsf",
  "record_headers":["user-agent","content-type","x-request-id","x-forwarded-for"],
  "redact_query_params":["token","password","secret","api_key","access_token"],
  "sample_allowed":1.0}"#;

fn head() -> Vec<(String, String)> {
    [
        (":method", "GET"),
        (":scheme", "https"),
        (":authority", "shop.example.com"),
        (":path", "/api/v1/cart/items?page=2&sort=price"),
        (
            "user-agent",
            "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
        ),
        ("accept", "application/json, text/plain, */*"),
        ("accept-language", "en-US,en;q=0.5"),
        ("accept-encoding", "gzip, deflate, br"),
        ("cookie", "session=3f2a9c1b7e; theme=dark"),
        ("authorization", "Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig"),
        (
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ),
        ("x-request-id", "5b6f1c2e-0000-4000-8000-000000000001"),
        ("x-forwarded-for", "203.0.113.7, 10.0.0.1"),
        ("content-type", "application/json"),
    ]
    .iter()
    .map(|(n, v)| (n.to_string(), v.to_string()))
    .collect()
}

struct Inputs {
    head: Vec<(String, String)>,
    response: Vec<(String, String)>,
    allowlist: AllowlistDecision,
    mirror: MirrorDecision,
    source_address: String,
    destination_address: String,
    identity: String,
    peer: PeerWorkload,
    local: PeerWorkload,
}

fn inputs() -> Inputs {
    Inputs {
        head: head(),
        response: vec![
            (":status".into(), "200".into()),
            ("content-type".into(), "application/json".into()),
        ],
        allowlist: AllowlistDecision {
            outcome: AllowlistOutcome::Allowed,
            rule: Some("cart-read".into()),
            reason: None,
        },
        mirror: MirrorDecision {
            mirrored: false,
            target: None,
            reason: MirrorReason::NotSelected,
            rule: None,
            signatures: vec![],
            signature_rules: vec![],
            findings: Vec::new(),
        },
        source_address: "10.1.2.3:51234".into(),
        destination_address: "10.1.9.9:8080".into(),
        identity: "spiffe://cluster.local/ns/shop/sa/web".into(),
        peer: PeerWorkload {
            namespace: Some("shop".into()),
            workload: Some("web-v1".into()),
            service: Some("web".into()),
        },
        local: PeerWorkload {
            namespace: Some("shop".into()),
            workload: Some("cart-v2".into()),
            service: Some("cart".into()),
        },
    }
}

/// What the audit filter does at stream end, from inputs it already holds.
fn record(input: Inputs, policy: &AuditPolicy, format: AuditFormat) -> String {
    let mut ex = HttpExchange::from_request_headers(input.head);
    ex.response_headers = input.response;
    ex.protocol = Some("HTTP/1.1".into());
    ex.status = Some(200);
    ex.request_bytes = Some(412);
    ex.response_bytes = Some(1830);
    ex.start_ns = 1_700_000_000_000_000_000;
    ex.end_ns = 1_700_000_000_004_200_000;
    ex.source_address = Some(input.source_address);
    ex.destination_address = Some(input.destination_address);
    ex.source_peer = input.peer;
    ex.destination_peer = input.local;
    ex.peer_identity = Some(input.identity);
    ex.allowlist = Some(input.allowlist);
    ex.mirror = Some(input.mirror);
    ex.response_code_details = Some("via_upstream".into());
    let record = AuditRecord::build(ex, policy);
    if BUILD_ONLY.with(|b| b.get()) {
        return String::new();
    }
    if REUSE.with(|b| b.get()) {
        return LINE.with(|l| {
            let mut l = l.borrow_mut();
            l.clear();
            record.write_json_line(format, &mut l);
            String::new()
        });
    }
    record.to_json_line(format)
}

thread_local! {
    static REUSE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    static LINE: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
    static BUILD_ONLY: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn main() {
    let mut args = std::env::args().skip(1);
    let iterations: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(300_000);
    let mode = args.next();
    let format = match mode.as_deref() {
        Some("ecs") => AuditFormat::Ecs,
        _ => AuditFormat::Ocsf,
    };
    // `inputs`: only make and drop the inputs, so that `perf stat -e instructions:u,cycles:u`
    // of a run minus that of an `inputs` run is what the records cost, whatever the load.
    let inputs_only = mode.as_deref() == Some("inputs");
    // `build`: build the records without rendering them.
    BUILD_ONLY.with(|b| b.set(mode.as_deref() == Some("build")));
    // `reuse`: render into one buffer kept across records.
    REUSE.with(|b| b.set(mode.as_deref() == Some("reuse")));
    let policy = match AuditPolicy::from_json(POLICY.as_bytes()) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("bad policy: {e}");
            std::process::exit(1);
        }
    };
    let sample = record(inputs(), &policy, format);
    println!("{sample}");
    println!("{} bytes per record", sample.len());

    // Short batches, each timed: the machine is shared, so the median and the fastest batch
    // say more than the mean (a preempted batch only moves the mean).
    const BATCH: usize = 100;
    let mut per_batch = Vec::with_capacity(iterations / BATCH + 1);
    let mut done = 0;
    let mut bytes = 0usize;
    while done < iterations {
        let n = BATCH.min(iterations - done);
        let batch: Vec<Inputs> = (0..n).map(|_| inputs()).collect();
        let start = Instant::now();
        for input in batch {
            if inputs_only {
                drop(black_box(input));
                continue;
            }
            let line = record(black_box(input), &policy, format);
            bytes += black_box(line).len();
        }
        per_batch.push(start.elapsed().as_nanos() as f64 / n as f64);
        done += n;
    }
    per_batch.sort_by(f64::total_cmp);
    let mean = per_batch.iter().sum::<f64>() / per_batch.len() as f64;
    let median = per_batch[per_batch.len() / 2];
    let fastest = per_batch[0];
    println!(
        "{format:?}: {iterations} records ({bytes} bytes), per record: median {:.2} us, \
         fastest batch {:.2} us, mean {:.2} us",
        median / 1000.0,
        fastest / 1000.0,
        mean / 1000.0
    );
}
