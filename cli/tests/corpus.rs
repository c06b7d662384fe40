//! The signature corpus (`shared/corpus/signatures.ndjson`) through the mirror policy with the
//! built-in pack: every exploit request is selected by a signature of its category, no benign
//! look-alike is selected. Per-category counts are printed (`--nocapture`). The corpus is read
//! as `meshsight signatures test` reads requests.
// Helpers outside `#[test]` functions are test code too.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use meshsight_cli::signatures::test_requests::{parse_requests, CorpusTally, TestRequest};
use meshsight_policy::headers::HeaderBlock;
use meshsight_policy::mirror::signatures::CleanPieces;
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
