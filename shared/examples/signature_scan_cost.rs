//! Native cost of one signature scan (head, and a 1 KiB JSON body) with the built-in pack and
//! with 1,000 custom rules layered over it: `cargo run --release -p meshsight-policy --example
//! signature_scan_cost`.

use meshsight_policy::headers::HeaderBlock;
use meshsight_policy::mirror::{MirrorPolicy, MirrorRequest, Peer};
use std::time::Instant;

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
        let n = 100_000u32;
        let t = Instant::now();
        let mut any = false;
        for _ in 0..n {
            let mut hits = p.new_hits();
            p.scan_head(&req, &mut hits);
            any |= hits.any();
        }
        let head = t.elapsed() / n;
        let t = Instant::now();
        for _ in 0..n / 10 {
            let mut hits = p.new_hits();
            p.scan_body(&req, body.as_bytes(), &mut hits);
            any |= hits.any();
        }
        let body_cost = t.elapsed() / (n / 10);
        println!(
            "built-in + {custom:>4} custom rules ({} rules): compile {compile:?}, head scan {head:?}, {} B JSON body scan {body_cost:?} (hit: {any})",
            p.signature_rule_ids().len(),
            body.len()
        );
    }
    Ok(())
}
