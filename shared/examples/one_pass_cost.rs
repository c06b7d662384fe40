//! Native cost of the one-pass logic per request (what `meshsight.wasm` runs between the host
//! calls): index the head, judge it, scan it for signatures, select, apply the rate cap, and
//! build the access-log verdict. Run: `cargo run --release -p meshsight-policy --example
//! one_pass_cost`; profile: `perf record -g target/release/examples/one_pass_cost`.

use std::time::Instant;

use meshsight_policy::allowlist::AllowList;
use meshsight_policy::audit::verdict;
use meshsight_policy::head::RequestHead;
use meshsight_policy::matching::{Peer, RequestFacts};
use meshsight_policy::mirror::copy::{Clock, CopyContext, MirrorCopy, MirrorWorker};
use meshsight_policy::mirror::{MirrorPolicy, MirrorRequest};

fn head() -> Vec<(String, String)> {
    [
        (":method", "GET"),
        (":path", "/public/api/v1/products/42"),
        (":authority", "shop.example.com"),
        (":scheme", "http"),
        ("user-agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36"),
        ("accept", "application/json, text/plain, */*"),
        ("accept-language", "en-US,en;q=0.9,de;q=0.8"),
        ("accept-encoding", "gzip, deflate, br"),
        ("cookie", "session=8f14e45fceea167a5a36dedd4bea2543; theme=dark; _ga=GA1.2.1234567890.1700000000"),
        ("authorization", "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyLTQyIiwic2NvcGUiOiJyZWFkIn0.c2lnbmF0dXJl"),
        ("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        ("referer", "https://shop.example.com/catalog?page=2"),
        ("x-forwarded-for", "203.0.113.7"),
        ("x-forwarded-proto", "http"),
        ("x-request-id", "0f8fad5b-d9cb-469f-a165-70867728950e"),
    ]
    .iter()
    .map(|(n, v)| (n.to_string(), v.to_string()))
    .collect()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let list = AllowList::from_json(
        br#"{"rules": [{"name": "public", "methods": ["GET"], "paths": ["/public/**"]}, {"name": "orders", "methods": ["POST"], "paths": ["/api/orders"]}]}"#,
    )?;
    let mirror = MirrorPolicy::from_json(
        br#"{"targets": {"ids": {"cluster": "sensor", "delivery": "dispatch"}}, "rules": [{"name": "sample", "action": {"type": "sample", "fraction": 0.01}}]}"#,
    )?;
    let mut worker = MirrorWorker::new(&mirror);
    let pairs = head();
    let n = 200_000u32;
    let mut t = [0u128; 5];
    let mut sink = 0usize;
    for i in 0..n {
        let t0 = Instant::now();
        let head = RequestHead::from_pairs(pairs.clone());
        let t1 = Instant::now();
        let facts = RequestFacts::new(
            head.method(),
            head.path(),
            head.authority(),
            head.scheme(),
            head.headers(),
            Peer::default(),
        );
        let judgement = list.judge_facts(&facts);
        let t2 = Instant::now();
        let req = MirrorRequest {
            method: head.method(),
            path: head.path(),
            authority: head.authority(),
            headers: head.headers(),
            peer: Peer::default(),
            normalized: Some(&facts),
        };
        let mut hits = mirror.new_hits();
        mirror.scan_head_remembering(&req, &mut hits, &mut worker.clean);
        let t3 = Instant::now();
        let mut copy = MirrorCopy::new();
        let mut cx = CopyContext {
            policy: &mirror,
            worker: &mut worker,
            clock: Clock::at(u64::from(i) * 1000),
        };
        let step = copy.head(&mut cx, &req, hits, true);
        let t4 = Instant::now();
        let entries = verdict::entries(&head, Some(&judgement.decision), step.decision());
        let t5 = Instant::now();
        sink += entries[0].bytes.len() + usize::from(judgement.rule.is_some());
        for (slot, d) in t
            .iter_mut()
            .zip([t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4])
        {
            *slot += d.as_nanos();
        }
    }
    let names = [
        "head index (incl. clone of pairs)",
        "facts + judge",
        "signature scan",
        "copy decision",
        "verdict entries",
    ];
    for (name, total) in names.iter().zip(t) {
        println!("{name:36} {:7.3} us", total as f64 / f64::from(n) / 1000.0);
    }
    println!(
        "total {:.3} us ({sink})",
        t.iter().sum::<u128>() as f64 / f64::from(n) / 1000.0
    );
    Ok(())
}
