//! Native cost of the decoded body views (issue 22): a body scan of a 64 KiB multipart upload
//! and of gzip and deflate JSON bodies, each against the same request sent plain, with the
//! built-in pack and `max_body_bytes` 65536: `cargo run --release -p meshsight-policy --example
//! decode_scan_cost`.

use meshsight_policy::headers::HeaderBlock;
use meshsight_policy::mirror::{MirrorPolicy, MirrorRequest, Peer};
use miniz_oxide::deflate::{compress_to_vec, compress_to_vec_zlib};
use std::time::{Duration, Instant};

fn headers(content_type: &str, encoding: Option<&str>) -> HeaderBlock {
    let mut h = vec![
        (":authority".to_string(), "shop.example.com".to_string()),
        (":method".into(), "POST".into()),
        ("content-type".into(), content_type.to_string()),
        (
            "x-request-id".into(),
            "6f1c2a34-9d2b-4e55-8c1a-0b7f5c2e9d11".into(),
        ),
    ];
    if let Some(e) = encoding {
        h.push(("content-encoding".into(), e.to_string()));
    }
    HeaderBlock::from(h)
}

/// Mean body-scan time of `body` under `headers`, and whether anything hit.
fn cost(p: &MirrorPolicy, headers: &HeaderBlock, body: &[u8]) -> (Duration, bool) {
    let req = MirrorRequest {
        method: "POST",
        path: "/upload",
        authority: "shop.example.com",
        headers,
        peer: Peer::default(),
        normalized: None,
    };
    let n = 2000u32;
    let mut any = false;
    let t = Instant::now();
    for _ in 0..n {
        let mut hits = p.new_hits();
        p.scan_body(&req, body, &mut hits);
        any |= hits.any();
    }
    (t.elapsed() / n, any)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let p = MirrorPolicy::from_json(
        br#"{"targets":{"ids":{"cluster":"s","delivery":"header"}},"max_body_bytes":65536}"#,
    )?;
    // A 64 KiB upload: three text fields and an image-like binary part.
    let boundary = "----WebKitFormBoundaryAx7Ue2RJv9uX0dQk";
    let mut x = 0x9e37_79b9_7f4a_7c15_u64;
    let image: Vec<u8> = (0..64_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 40) as u8
        })
        .collect();
    let mut multipart = Vec::new();
    for (name, value) in [
        ("title", "Team offsite"),
        ("album", "2026"),
        ("public", "true"),
    ] {
        multipart.extend(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
                .bytes(),
        );
    }
    multipart.extend(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"photo.png\"\r\nContent-Type: image/png\r\n\r\n").bytes());
    multipart.extend(&image);
    multipart.extend(format!("\r\n--{boundary}--\r\n").bytes());
    let (plain, _) = cost(&p, &headers("application/octet-stream", None), &multipart);
    let (parts, hit) = cost(
        &p,
        &headers(&format!("multipart/form-data; boundary={boundary}"), None),
        &multipart,
    );
    println!(
        "{} B multipart upload: {parts:?} as multipart vs {plain:?} as an opaque body (hit: {hit})",
        multipart.len()
    );
    for items in [20, 400] {
        let json = format!(
            r#"{{"items":[{}],"note":"leave at the door"}}"#,
            (0..items)
                .map(|i| format!(r#"{{"sku":"SKU-{i:05}","qty":{i},"name":"item number {i}"}}"#))
                .collect::<Vec<_>>()
                .join(",")
        );
        let mut gzip = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];
        gzip.extend(compress_to_vec(json.as_bytes(), 6));
        gzip.extend([0u8; 8]);
        let zlib = compress_to_vec_zlib(json.as_bytes(), 6);
        let (plain, _) = cost(&p, &headers("application/json", None), json.as_bytes());
        let (gz, hit) = cost(&p, &headers("application/json", Some("gzip")), &gzip);
        let (df, _) = cost(&p, &headers("application/json", Some("deflate")), &zlib);
        println!(
            "{} B JSON body ({} B gzip): plain {plain:?}, gzip {gz:?}, deflate {df:?} (hit: {hit})",
            json.len(),
            gzip.len()
        );
    }
    Ok(())
}
