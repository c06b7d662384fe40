//! Native cost of one signature scan (head, a 1 KiB and a 16 KiB JSON body) with the built-in
//! pack and with 1,000 custom rules layered over it, and the heap its matching engine holds:
//! `cargo run --release -p meshsight-policy --example signature_scan_cost`. Each time is the
//! median of 9 rounds, so that a busy machine moves it less.
//!
//! On a machine too busy for times, count instructions instead: `signature_scan_cost ROW N
//! [CUSTOM]` runs only row `head`, `body` or `big` N times (with CUSTOM custom rules, 0 by
//! default), for `valgrind --tool=callgrind`; the difference of two Ns over their difference is
//! the instructions per scan.

use meshsight_policy::headers::HeaderBlock;
use meshsight_policy::mirror::{MirrorPolicy, MirrorRequest, Peer};
use std::hint::black_box;
use std::time::{Duration, Instant};

/// Median time per call of `f` over 9 rounds of `n` calls.
fn median(n: u32, mut f: impl FnMut() -> bool) -> Duration {
    let mut rounds: Vec<Duration> = (0..9)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..n {
                black_box(f());
            }
            t.elapsed() / n
        })
        .collect();
    rounds.sort();
    rounds[4]
}

/// A 16 KiB JSON order body, benign (as `automaton_cost` times).
fn body_16k() -> String {
    let mut body = String::from(r#"{"items":["#);
    let mut i = 0;
    while body.len() < 16384 - 64 {
        body.push_str(&format!(
            r#"{{"sku":"SKU-{i:05}","qty":{i},"name":"item number {i}","note":"leave at the door"}},"#
        ));
        i += 1;
    }
    body.push_str(r#"{}],"coupon":"WINTER-2026"}"#);
    body
}

fn policy(custom: usize) -> Result<MirrorPolicy, Box<dyn std::error::Error>> {
    let rules: Vec<String> = (0..custom)
        .map(|i| {
            let m = if i % 3 == 0 {
                format!(r#"{{"all":[["ioc-{i}-a"],["ioc-{i}-b","ioc-{i}-c"]]}}"#)
            } else {
                format!(r#"{{"any":["indicator-{i:04}","/bench/{i}/x"]}}"#)
            };
            format!(
                r#"{{"id":"c{i}","name":"c","category":"custom","severity":"low","in":["path","query","params","headers","body"],"match":{m}}}"#
            )
        })
        .collect();
    let json = format!(
        r#"{{"targets":{{"ids":{{"cluster":"s","delivery":"header"}}}},"signatures":{{"packs":[{{"pack":"p","rules":[{}]}}]}}}}"#,
        rules.join(",")
    );
    Ok(MirrorPolicy::from_json(json.as_bytes())?)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let headers: HeaderBlock = [
        (":authority", "shop.example.com"),
        (":method", "POST"),
        (":scheme", "http"),
        ("user-agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"),
        ("accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
        ("accept-language", "en-US,en;q=0.5"),
        ("content-type", "application/json"),
        ("cookie", "session=abcdef0123456789abcdef0123456789; theme=dark"),
        ("referer", "https://shop.example.com/catalog?page=1"),
        ("x-request-id", "6f1c2a34-9d2b-4e55-8c1a-0b7f5c2e9d11"),
        ("x-forwarded-for", "10.1.2.3"),
    ]
    .into_iter()
    .collect();
    let body = format!(
        r#"{{"items":[{}],"note":"leave at the door","coupon":"WINTER-2026"}}"#,
        (0..20)
            .map(|i| format!(r#"{{"sku":"SKU-{i:05}","qty":{i},"name":"item number {i}"}}"#))
            .collect::<Vec<_>>()
            .join(",")
    );
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [row, n, rest @ ..] = args.as_slice() {
        let n: u32 = n.parse()?;
        let custom: usize = rest.first().map_or(Ok(0), |c| c.parse())?;
        let p = policy(custom)?;
        let req = MirrorRequest {
            method: "POST",
            path: "/api/v1/orders/12345/items?page=2&sort=desc&q=shoes",
            authority: "shop.example.com",
            headers: &headers,
            peer: Peer::default(),
            normalized: None,
        };
        let big = body_16k();
        let mut any = false;
        for _ in 0..n {
            let mut hits = p.new_hits();
            match row.as_str() {
                "head" => p.scan_head(&req, &mut hits),
                "body" => p.scan_body(&req, body.as_bytes(), &mut hits),
                _ => p.scan_body(&req, big.as_bytes(), &mut hits),
            }
            any |= black_box(hits.any());
        }
        println!("{row} x {n}: hit {any}");
        return Ok(());
    }
    for custom in [0, 1000] {
        let t = Instant::now();
        let p = policy(custom)?;
        let compile = t.elapsed();
        let req = MirrorRequest {
            method: "POST",
            path: "/api/v1/orders/12345/items?page=2&sort=desc&q=shoes",
            authority: "shop.example.com",
            headers: &headers,
            peer: Peer::default(),
            normalized: None,
        };
        let n = 20_000u32;
        let mut any = false;
        let head = median(n, || {
            let mut hits = p.new_hits();
            p.scan_head(&req, &mut hits);
            any |= hits.any();
            any
        });
        let body_cost = median(n / 10, || {
            let mut hits = p.new_hits();
            p.scan_body(&req, body.as_bytes(), &mut hits);
            any |= hits.any();
            any
        });
        let big = body_16k();
        let big_cost = median(n / 100, || {
            let mut hits = p.new_hits();
            p.scan_body(&req, big.as_bytes(), &mut hits);
            any |= hits.any();
            any
        });
        println!(
            "built-in + {custom:>4} custom rules ({} rules): compile {compile:?}, engine heap {} B, head scan {head:?}, {} B JSON body scan {body_cost:?}, {} B JSON body scan {big_cost:?} (hit: {any})",
            p.signature_rule_ids().len(),
            p.signature_set().automaton_heap_bytes(),
            body.len(),
            big.len(),
        );
    }
    Ok(())
}
