//! The signature automaton against the `aho-corasick` crate it replaced (kept as a
//! dev-dependency, the tests' oracle): heap bytes and scan time for the built-in pack's literals,
//! over the bench's request head and a 16 KiB body. `cargo run --release -p meshsight-policy
//! --example automaton_cost`; it also builds for `wasm32-wasip1`, to run under Node's WASI as
//! V8 runs the module.

use aho_corasick::{AhoCorasickBuilder, AhoCorasickKind, MatchKind};
use meshsight_policy::mirror::signatures::automaton::Automaton;
use meshsight_policy::mirror::signatures::pack::BUILTIN_PACK;
use meshsight_policy::mirror::MirrorPolicy;
use std::hint::black_box;
use std::time::{Duration, Instant};

/// The lower-cased, distinct literals of the built-in pack, as `SignatureSet` gives them.
fn builtin_literals() -> Result<Vec<String>, Box<dyn std::error::Error>> {
    let pack: serde_json::Value = serde_json::from_str(BUILTIN_PACK)?;
    let mut out: Vec<String> = Vec::new();
    for rule in pack["rules"].as_array().into_iter().flatten() {
        let m = &rule["match"];
        let groups = m["all"].as_array().into_iter().flatten();
        let strings = m["any"]
            .as_array()
            .into_iter()
            .flatten()
            .chain(m["none"].as_array().into_iter().flatten())
            .chain(groups.flat_map(|g| g.as_array().into_iter().flatten()));
        for s in strings.filter_map(|s| s.as_str()) {
            let s = s.to_ascii_lowercase();
            if !out.contains(&s) {
                out.push(s);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The bench's request head (v8-profile's), as the scan reads it: the path, then header lines.
fn bench_head() -> Vec<u8> {
    let lines = [
        "/api/v1/products/42?page=2&sort=price",
        "user-agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36",
        "accept: application/json, text/plain, */*",
        "accept-language: en-US,en;q=0.9,de;q=0.8",
        "accept-encoding: gzip, deflate, br",
        "cookie: session=8f14e45fceea167a5a36dedd4bea2543; theme=dark; _ga=GA1.2.1234567890.1700000000",
        "authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyLTQyIiwic2NvcGUiOiJyZWFkIn0.c2lnbmF0dXJl",
        "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "referer: https://shop.example.com/catalog?page=2",
        "x-forwarded-for: 203.0.113.7",
        "x-request-id: 6f1c1b1e-2b4f-4e55-9a57-6d0f5a8d2c11",
    ];
    lines.join("\n").into_bytes()
}

/// A 16 KiB JSON order body, benign.
fn body_16k() -> Vec<u8> {
    let mut body = String::from(r#"{"items":["#);
    let mut i = 0;
    while body.len() < 16384 - 64 {
        body.push_str(&format!(
            r#"{{"sku":"SKU-{i:05}","qty":{i},"name":"item number {i}","note":"leave at the door"}},"#
        ));
        i += 1;
    }
    body.push_str(r#"{}],"coupon":"WINTER-2026"}"#);
    body.into_bytes()
}

/// Median time per call of `f` and of `g` over 9 rounds of `n` calls each, alternated so that
/// a busy machine slows both alike.
fn time_pair(
    n: u32,
    mut f: impl FnMut() -> usize,
    mut g: impl FnMut() -> usize,
) -> (Duration, Duration) {
    let round = |h: &mut dyn FnMut() -> usize| {
        let t = Instant::now();
        for _ in 0..n {
            black_box(h());
        }
        t.elapsed() / n
    };
    let (mut a, mut b): (Vec<Duration>, Vec<Duration>) =
        (0..9).map(|_| (round(&mut f), round(&mut g))).unzip();
    a.sort();
    b.sort();
    (a[4], b[4])
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let literals = builtin_literals()?;
    let refs: Vec<&[u8]> = literals.iter().map(|s| s.as_bytes()).collect();
    let ours = Automaton::new(&refs)?;
    let theirs = AhoCorasickBuilder::new()
        .kind(Some(AhoCorasickKind::ContiguousNFA))
        .dense_depth(0)
        .ascii_case_insensitive(true)
        .match_kind(MatchKind::Standard)
        .build(&refs)?;
    let total: usize = refs.iter().map(|r| r.len()).sum();
    println!(
        "built-in pack: {} literals, {total} bytes, {} states",
        refs.len(),
        ours.states()
    );
    println!(
        "one automaton of all of them, heap bytes: ours {}, aho-corasick {}",
        ours.heap_bytes(),
        theirs.memory_usage()
    );
    let policy = MirrorPolicy::from_json(
        br#"{"targets":{"ids":{"cluster":"s","delivery":"header"}},"signatures":{}}"#,
    )?;
    println!(
        "the built-in pack's SignatureSet (one automaton, location classes, triggers), heap bytes: {}",
        policy.signature_set().automaton_heap_bytes()
    );
    for (name, text, n) in [
        ("bench request head", bench_head(), 200_000u32),
        ("16 KiB JSON body", body_16k(), 2_000),
    ] {
        let (a, b) = time_pair(
            n,
            || ours.find_overlapping_iter(&text).count(),
            || theirs.find_overlapping_iter(&text).count(),
        );
        println!(
            "{name} ({} B, {} matches): ours {a:?}, aho-corasick {b:?}",
            text.len(),
            ours.find_overlapping_iter(&text).count()
        );
    }
    Ok(())
}
