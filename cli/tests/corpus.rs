//! The signature corpus (`shared/corpus/signatures.ndjson`) through the mirror policy with the
//! built-in pack: every exploit request is selected by a signature of its category, no benign
//! look-alike is selected. Per-category counts are printed (`--nocapture`). The corpus is read
//! as `meshsight signatures test` reads requests.
// Helpers outside `#[test]` functions are test code too.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use meshsight_cli::signatures::test_requests::{parse_requests, run, CorpusTally, TestRequest};
use meshsight_policy::headers::HeaderBlock;
use meshsight_policy::mirror::signatures::pack::{self, Pack};
use meshsight_policy::mirror::signatures::CleanPieces;
use meshsight_policy::mirror::signatures::SignatureSet;
use meshsight_policy::mirror::{MirrorPolicy, MirrorRequest, Peer};

const CORPUS: &str = include_str!("../../shared/corpus/signatures.ndjson");

fn corpus() -> Vec<TestRequest> {
    parse_requests(CORPUS.as_bytes()).unwrap_or_else(|e| panic!("{e}"))
}

/// The categories and rule ids the mirror's signatures select `r` for (empty: not selected by
/// a signature), its head scanned with `clean` (a worker's memory of clean pieces) when given.
fn mirrored_categories(
    policy: &MirrorPolicy,
    r: &TestRequest,
    clean: Option<&mut CleanPieces>,
) -> (Vec<String>, Vec<String>) {
    let mut headers = r.headers.clone();
    let authority = headers
        .iter()
        .find(|(k, _)| k == "host")
        .map_or("shop.example.com".to_string(), |(_, v)| v.clone());
    headers.push((":authority".into(), authority.clone()));
    let headers = HeaderBlock::from(headers);
    let req = MirrorRequest {
        method: &r.method,
        path: &r.path,
        authority: &authority,
        headers: &headers,
        peer: Peer::default(),
        normalized: None,
    };
    let mut hits = policy.new_hits();
    match clean {
        Some(clean) => policy.scan_head_remembering(&req, &mut hits, clean),
        None => policy.scan_head(&req, &mut hits),
    }
    if policy.wants_body(&req, &hits) && !r.body_bytes().is_empty() {
        policy.scan_body(&req, &r.body_bytes(), &mut hits);
    }
    let s = policy.select(&req, &hits);
    (s.signatures, s.signature_rules)
}

#[test]
fn every_exploit_is_mirrored_and_no_benign_look_alike_is() {
    let policy =
        MirrorPolicy::from_json(br#"{"targets":{"ids":{"cluster":"sensor","delivery":"header"}}}"#)
            .unwrap_or_else(|e| panic!("{e}"));
    let mut tally = CorpusTally::default();
    for r in corpus() {
        let (categories, rules) = mirrored_categories(&policy, &r, None);
        let category = r.category.as_deref().unwrap_or_default();
        let ok = match r.expect.as_deref().unwrap_or_default() {
            "hit" => categories.iter().any(|c| c == category),
            "miss" => categories.is_empty(),
            other => panic!("{:?}: expect must be hit or miss, not {other:?}", r.name),
        };
        tally.record(&r, ok, || {
            format!(
                "{:?} {} {}: got {categories:?} {rules:?}",
                r.name, r.method, r.path
            )
        });
    }
    print!("{}", tally.table("as expected"));
    if let Err(wrong) = tally.verdict() {
        panic!("{wrong}");
    }
}

/// A worker remembers the pieces it found clean and skips them next time. Scanning the whole
/// corpus through one memory, benign and hostile requests interleaved, forwards and backwards
/// and then again (every clean piece now remembered), must give each request exactly the hits
/// of a scan without memory: a piece that shares a header, a path or a parameter with a
/// benign request must still be caught for what it carries.
#[test]
fn remembering_clean_pieces_never_changes_a_verdict() {
    let policy =
        MirrorPolicy::from_json(br#"{"targets":{"ids":{"cluster":"sensor","delivery":"header"}}}"#)
            .unwrap_or_else(|e| panic!("{e}"));
    let requests = corpus();
    let fresh: Vec<_> = requests
        .iter()
        .map(|r| mirrored_categories(&policy, r, None))
        .collect();
    assert!(
        fresh.iter().any(|(c, _)| !c.is_empty()),
        "the corpus has hits"
    );
    let mut clean = CleanPieces::new();
    let order: Vec<usize> = (0..requests.len())
        .chain((0..requests.len()).rev())
        .chain(0..requests.len())
        .collect();
    for i in order {
        let remembered = mirrored_categories(&policy, &requests[i], Some(&mut clean));
        assert_eq!(
            remembered, fresh[i],
            "{:?} {} {}",
            requests[i].name, requests[i].method, requests[i].path
        );
    }
}

/// The bounded base64 view of parameter values, measured on the corpus before it may be on by
/// default (issue 22): with it on, every exploit must still be caught and the benign requests it
/// would copy are counted and printed (`--nocapture`). It stays off while that count is not 0.
#[test]
fn base64_parameter_view_measured_on_the_corpus() {
    let set = SignatureSet::new(pack::layer([Pack::builtin().unwrap()]), true).unwrap();
    let on = SignatureSet::new(pack::layer([Pack::builtin().unwrap()]), true)
        .unwrap()
        .with_base64_params(true);
    let (mut benign, mut benign_copied, mut exploits, mut caught, mut decoded_values) =
        (0, 0, 0, 0, 0);
    for r in corpus() {
        let off = run(&set, r.clone());
        let with = run(&on, r.clone());
        decoded_values += with.views.iter().filter(|v| v.ends_with("base64")).count();
        match r.expect.as_deref() {
            Some("miss") => {
                benign += 1;
                if with.hit() {
                    benign_copied += 1;
                    println!(
                        "benign copied with the base64 view: {:?} {:?}",
                        r.name, with.rules
                    );
                }
            }
            _ => {
                exploits += 1;
                caught += usize::from(with.hit());
                assert!(with.hit() || !off.hit(), "{:?}", r.name);
            }
        }
    }
    println!(
        "base64 parameter view: {caught}/{exploits} exploits caught, {benign_copied}/{benign} benign copied, {decoded_values} hits in a base64 view"
    );
    assert_eq!(caught, exploits);
    // The corpus has no base64-looking benign parameter, so also: 2,000 random tokens (24 to
    // 96 random bytes, base64) as a query parameter, as session ids and signed URLs carry them.
    let mut x = 0x2545_f491_4f6c_dd1d_u64;
    let mut token_copies = 0;
    for i in 0..2000 {
        let len = 24 + i % 73;
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 32) as u8
            })
            .collect();
        let token = base64_url(&bytes);
        let r = TestRequest {
            path: format!("/download?token={token}&id={i}"),
            ..parse_requests(br#"{"path":"/"}"#).unwrap().remove(0)
        };
        token_copies += usize::from(run(&on, r).hit());
    }
    println!("base64 parameter view: {token_copies}/2000 random tokens copied");
    // Off by default: the policy's signature set does not decode base64 parameters.
    let policy =
        MirrorPolicy::from_json(br#"{"targets":{"ids":{"cluster":"sensor","delivery":"header"}}}"#)
            .unwrap();
    let hidden = TestRequest {
        path: "/search?q=JHtqbmRpOmxkYXA6Ly94L2F9".into(),
        ..parse_requests(br#"{"path":"/"}"#).unwrap().remove(0)
    };
    assert_eq!(
        mirrored_categories(&policy, &hidden, None).0,
        Vec::<String>::new()
    );
    assert!(run(&on, hidden).hit());
}

/// URL-safe base64 without padding (the tokens of the measurement above).
fn base64_url(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().fold(0u32, |a, b| a << 8 | u32::from(*b)) << (8 * (3 - chunk.len()));
        for k in 0..=chunk.len() {
            out.push(char::from(A[(n >> (18 - 6 * k) & 63) as usize]));
        }
    }
    out
}
