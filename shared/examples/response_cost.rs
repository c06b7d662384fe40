//! Native cost of the response rules per response: deciding that a response is not scanned
//! (what every response nobody asked for pays: no host call, a few comparisons), and scanning a
//! 16 KB JSON answer (head, body, finding, masked excerpt), plain and gzip-compressed (inflated
//! first, within `max_response_bytes`). Run: `cargo run --release -p
//! meshsight-policy --example response_cost`.

use std::time::Instant;

use meshsight_policy::head::RequestHead;
use meshsight_policy::response::raw::RawResponses;
use meshsight_policy::response::ResponsePolicy;

fn head(authority: &str, path: &str) -> RequestHead {
    RequestHead::from_pairs(
        [
            (":method", "GET"),
            (":path", path),
            (":authority", authority),
            (":scheme", "http"),
            ("user-agent", "curl/8.5.0"),
            ("x-request-id", "5b6f1c2e-0000-4000-8000-000000000001"),
        ]
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect(),
    )
}

/// A 16 KB JSON list of products: ordinary data, with `token`-looking fields.
fn json_16k() -> String {
    let mut out = String::from("[");
    let mut i = 0;
    while out.len() < 16 * 1024 - 200 {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&format!(
            r#"{{"id":{i},"name":"product {i}","price":{}.99,"tags":["a","b"],"next_page_token":"t{i}","description":"A plain description of product number {i}."}}"#,
            i % 97
        ));
        i += 1;
    }
    out.push(']');
    out
}

fn per_iteration(n: u32, mut f: impl FnMut()) -> f64 {
    for _ in 0..n / 10 {
        f();
    }
    let start = Instant::now();
    for _ in 0..n {
        f();
    }
    start.elapsed().as_secs_f64() * 1e9 / f64::from(n)
}

fn main() {
    let raw: RawResponses = match meshsight_policy::ConfigError::parse_json(b"{}") {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1)
        }
    };
    let policy = match ResponsePolicy::compile(&raw, Vec::new()) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1)
        }
    };
    let ordinary = head("shop.example.com", "/api/v1/products?page=2");
    let ns = per_iteration(1_000_000, || {
        std::hint::black_box(policy.wants(std::hint::black_box(&ordinary), false));
    });
    println!("response nobody asked for: wants() = false in {ns:.0} ns, no host call");
    let body = json_16k();
    let headers = [
        ("content-type", "application/json"),
        ("content-length", "16384"),
    ];
    let metadata = head("169.254.169.254", "/latest/meta-data/");
    let ns = per_iteration(2_000, || {
        let mut scan = policy.scan_head(&metadata, 200, headers.iter().copied());
        scan.push_body(body.as_bytes());
        std::hint::black_box(policy.finish(&metadata, scan, false));
    });
    println!(
        "16 KB JSON response scanned ({} bytes): {:.1} us per response",
        body.len(),
        ns / 1000.0
    );
    let mut gz = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];
    gz.extend(miniz_oxide::deflate::compress_to_vec(body.as_bytes(), 6));
    gz.extend([0u8; 8]);
    let gz_headers = [
        ("content-type", "application/json"),
        ("content-encoding", "gzip"),
    ];
    let ns = per_iteration(2_000, || {
        let mut scan = policy.scan_head(&metadata, 200, gz_headers.iter().copied());
        scan.push_body(&gz);
        std::hint::black_box(policy.finish(&metadata, scan, false));
    });
    println!(
        "the same, gzip ({} bytes as sent): {:.1} us per response (inflated first)",
        gz.len(),
        ns / 1000.0
    );
}
